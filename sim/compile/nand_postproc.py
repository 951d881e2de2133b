"""In-memory post-processing of seed 001 (NAND-SPIN sec. 4.2) on the per-column bit-counters:
requantization (eq. 2 quantization and eq. 3 batch norm folded into one affine map), ReLU from
the MSB, saturation, and max pooling by iterated comparison.

Layout: a layer's accumulated sums sit in the array as bit-planes, one value per column (lane),
``x_bits``-bit two's complement, bit b in row ``x0 + b`` (seed 001 Fig. 8: "stores data
element-by-element vertically"). One program works on every lane of the mat row at once.

Parameters per lane (``golden.layers.requantize``'s ``mult``, ``bias``, ``shift``; the shift is
one per program, see :func:`common_shift`) go into the weight buffer (:func:`requant_words`):

* ``m_bits`` *scale words*: word j has bit g set iff bit j of lane g's ``mult mod 2**p_bits``
  is set (seed 001 Fig. 8b's multiplier in the buffer; a negative multiplier is its
  ``p_bits``-bit two's complement residue);
* ``p_bits`` *bias words*: bit k of ``(bias + 2**(shift-1)) mod 2**p_bits`` per lane (eq. 3's
  added constant with the rounding half folded in).

The seed's buffer holds one multiplier shared by the lanes; a word per bit position with a bit
per lane holds one multiplier per lane at the same cost (one buffer word per bit either way),
so lanes of different output channels can share a row. An all-ones row ``ones`` in the array
lets a count take a buffer word alone (``AND(ones, word)``).

Program (:func:`requant_program`; every count is a ``BITCOUNT`` COUNT with the AND on the FU
line, seed 001 Table 1):

1. ``ERASE`` the strips of the ``T`` rows and of the output rows (NAND-SPIN); ``CLEAR``.
2. Product and bias, LSB first (Fig. 8b and 8a in one pass): for k = 0 .. p_bits-1 count
   ``AND(x_i, m_{k-i})`` for every i with ``max(0, k - m_bits + 1) <= i <= k`` (x sign-extended:
   row ``x0 + min(i, x_bits - 1)``) and ``AND(ones, c_k)``; then for k < shift a ``SHIFT`` of
   the counters (the bit falls off: the shift of the result costs no write), for k >= shift a
   write-back of the LSB into row ``t0 + k - shift`` (the counters shift right with it). The
   rows ``t0 .. t0 + n - 1`` (n = p_bits - shift) hold ``t = (x mult + bias + half) >> shift``.
3. ReLU and saturation (the MSB of ``t``, row ``t0 + n - 1``, read first, seed 001 sec. 4.2):
   ``o`` = OR of rows ``out_bits .. n - 1`` of ``t`` into buffer slot ``o`` (the first row sensed
   into it, then per row r: ``CLEAR``, count r, ``AND(ones, o)``, ``AND(r, o)`` with the LSB
   written into o: ``LSB(r + o + r o) = r OR o``); ``nn = NOT msb`` (a sense inverted into the
   buffer, clearing the counters); ``ov = LSB(AND(msb, o) + AND(ones, o)) = o AND NOT msb``
   (t > 2**out_bits - 1); ``xs = LSB(AND(ones, nn) + AND(ones, ov)) = nn AND NOT ov`` (t in
   range); per output bit i, ``y_i = LSB(AND(t_i, xs) + AND(ones, ov))`` written into row
   ``y0 + i`` (at most one of the two is 1, so the write's shift leaves the counters at 0).

Cycles (no stalls; :func:`requant_cycles`)::

    E + 1 + sum_{k < p} (min(k + 1, m_bits) + 1) + p + 4 h + 4 + 3 out_bits

with E the erases (strips of the n ``T`` rows and of the ``out_bits`` output rows), h = n -
out_bits the rows above the output bits. Array writes: n + out_bits rows (the PPU writes none:
its output goes to the SRAM data memory).

Max pooling: the k requantized values of a window in k output row groups of the same column,
then ``sim.routes.nand_inmem.max_pool_program`` (Fig. 9 compare and selective copy, k - 1
rounds). Equal to the PPU's ``MAX4`` (requantize, then the maximum).

Every program equals ``golden.pim.inmem_requant`` (and, when ``p_bits >=
golden.pim.inmem_requant_bits(...)``, ``golden.layers.requantize``); the cycle model runs it in
``tests/test_nand_postproc.py``, the RTL core in ``cocotb_tests/test_core_bitcount.py``. The
derivation is in ``docs/dataflows.rst``.

The path between the layers and these programs (route ``nand_inmem`` cores only; ``rtl.isa.
MoveOp``): the PPU writes a layer's raw sums into the data memory in ``PpuMode.LOGIT`` with a
zero bias (a signed 32-bit word, no arithmetic), :func:`sums_in_program` gathers them into the
array ``operand_bits`` bit-planes per pass (``MOVE GSHIFT`` picks the pass's bits of the word),
:func:`results_out_program` senses the output rows into the transpose buffer (``MOVE
LOADPLANE``) and writes its columns back as data-memory words (``MOVE SCATTER``), where the next
layer's GATHERs read them. Cosimulated end to end in ``cocotb_tests/test_core_bitcount.py``
(``core_bitcount_path``).

Not built yet: the compiler does not emit the path and these programs for a network's layers
(row and slot allocation per layer, the parameter words in the buffer image, the tables);
see :data:`NOT_BUILT`.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

import numpy as np

from rtl.bit_counter import BitCounterOp, BitCountOut, bitcount_imm
from rtl.config import POSTPROC_MODES as _MODES
from rtl.isa import MoveOp, Opcode, WriteSrc

from sim.routes.base import op
from sim.routes.nand_inmem import (_check_row, _check_rows, _check_width, _own_strips, _strips,
                                   _write)

__all__ = ["requant_words", "requant_program", "requant_cycles", "common_shift", "NOT_BUILT",
           "sums_in_program", "sums_in_cycles", "results_out_program", "results_out_cycles",
           "POSTPROC_MODES", "with_postproc", "refuse_in_memory", "Layout", "layout",
           "measure_model", "main"]

#: Post-processing modes a configuration can name (``rtl.config.POSTPROC_MODES``).
POSTPROC_MODES = _MODES

#: Why the compiler cannot map a network's layers onto the in-memory post-processing yet.
NOT_BUILT = ("in-memory post-processing of a compiled network is not built yet: the core has "
             "the path (PPU LOGIT words, MOVE GSHIFT / LOADPLANE / SCATTER, "
             "sim.compile.nand_postproc.sums_in_program / results_out_program) "
             "but the compiler does "
             "not emit it and the in-memory programs per layer (rows, buffer words, tables)")

_COUNT = bitcount_imm(BitCounterOp.COUNT)
_COUNT_AND = bitcount_imm(BitCounterOp.COUNT, and_fu=True)
_CLEAR = bitcount_imm(BitCounterOp.CLEAR)
_SHIFT = bitcount_imm(BitCounterOp.SHIFT)
_READ_TO = bitcount_imm(BitCounterOp.HOLD, out=BitCountOut.SA)
_CLEAR_NOT_TO = bitcount_imm(BitCounterOp.CLEAR, out=BitCountOut.NOT_SA)
_COUNT_AND_LSB_TO = bitcount_imm(BitCounterOp.COUNT, and_fu=True, out=BitCountOut.LSB)


def with_postproc(config, mode: str):
    """``config`` with ``postproc=mode`` (``in_memory`` adds the route ``nand_inmem``).

    Raises
    ------
    UserError
        ``mode`` is not one of :data:`POSTPROC_MODES` (one line naming it).
    """
    from sim.util import UserError
    if mode not in POSTPROC_MODES:
        raise UserError(f"--postproc must be one of {', '.join(POSTPROC_MODES)}, not {mode!r}")
    routes = tuple(config.routes)
    if mode == "in_memory" and "nand_inmem" not in routes:
        routes += ("nand_inmem",)
    return dataclasses.replace(config, postproc=mode, routes=routes)


def refuse_in_memory(model) -> None:
    """``sim.compile.compiler.compile_model`` with ``postproc='in_memory'``: a ``CompileError``
    naming
    the first layer whose output would be post-processed in memory and why that is not built
    (:data:`NOT_BUILT`)."""
    from sim.compile.compiler import CompileError
    for i, ly in enumerate(model.layers):
        if getattr(ly, "output", None) in ("requant", "logits") or ly.kind == "add":
            raise CompileError(f"layer {i} ({ly.kind}): postproc 'in_memory' (seed 001 sec. "
                               f"4.2): {NOT_BUILT}; use postproc 'ppu'")
    raise CompileError("postproc 'in_memory': the model has no layer to post-process")


def common_shift(mult, bias, shift) -> tuple:
    """One shift for a row of lanes: lane g's ``mult``, ``bias`` scaled by ``2**(S - shift_g)``
    with S = max(shift). Exact: ``(x m 2**d + b 2**d + 2**(S-1)) >> S == (x m + b +
    2**(s-1)) >> s`` for d = S - s (s = 0 included: ``(v 2**S + 2**(S-1)) >> S = v``).

    Returns
    -------
    (list of int, list of int, int)
        The lanes' multipliers and biases, and S.
    """
    shift = [int(s) for s in shift]
    top = max(shift, default=0)
    return ([int(m) << (top - s) for m, s in zip(mult, shift, strict=True)],
            [int(b) << (top - s) for b, s in zip(bias, shift, strict=True)], top)


def _mult_bits(mult, p_bits: int) -> int:
    return max(1, max(((int(m) % (1 << p_bits)).bit_length() for m in mult), default=1))


def requant_words(mult, bias, shift: int, p_bits: int, width: int) -> tuple:
    """Buffer words of the per-lane parameters (module docstring).

    Parameters
    ----------
    mult, bias : sequences of int, one per lane (``len <= width``; missing lanes get 0)
    shift : int, in [0, p_bits - 1], shared by the lanes (:func:`common_shift`)
    p_bits : int, the width of the affine map's rows
    width : int, lanes (columns) of the mat row

    Returns
    -------
    (ndarray bool [m_bits, width], ndarray bool [p_bits, width])
        The scale words and the bias words.
    """
    _check_width("p_bits", p_bits)
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift < p_bits:
        raise ValueError(f"shift must be an int in [0, {p_bits - 1}], not {shift!r}")
    if len(mult) != len(bias) or len(mult) > width:
        raise ValueError(f"mult and bias must give one value per lane (at most {width}), not "
                         f"{len(mult)} and {len(bias)}")
    mod = 1 << p_bits
    half = (1 << (shift - 1)) if shift else 0
    ms = [int(m) % mod for m in mult] + [0] * (width - len(mult))
    cs = [(int(b) + half) % mod for b in bias] + [0] * (width - len(bias))
    m_bits = _mult_bits(mult, p_bits)
    mw = np.array([[(m >> j) & 1 for m in ms] for j in range(m_bits)], bool)
    cw = np.array([[(c >> k) & 1 for c in cs] for k in range(p_bits)], bool)
    return mw, cw


def requant_program(config, *, x0: int, x_bits: int, ones: int, m0: int, m_bits: int, c0: int,
                    p_bits: int, shift: int, t0: int, y0: int, slots, out_bits: int = 8) -> list:
    """Micro-ops of the in-memory requantization, ReLU and saturation of every lane (module
    docstring; ``golden.pim.inmem_requant``).

    Parameters
    ----------
    config : AcceleratorConfig
        Its technology picks the write (``PROGRAM`` after ``ERASE`` on NAND-SPIN).
    x0, x_bits : int
        Rows of the sums (two's complement, bit b in row ``x0 + b``).
    ones : int
        An all-ones row.
    m0, m_bits, c0 : int
        Buffer slots of the scale words (``m0 ..``, ``m_bits`` of them) and of the ``p_bits``
        bias words (``c0 ..``), :func:`requant_words`.
    p_bits, shift : int
        Width of the affine map and the shift.
    t0, y0 : int
        First of the ``p_bits - shift`` rows of ``t`` and of the ``out_bits`` output rows.
    slots : four ints
        Buffer slots o, nn, ov, xs of the ReLU and saturation.
    out_bits : int
        Output width (8: the next layer's activations).

    Returns
    -------
    list of Instr
        :func:`requant_cycles` micro-ops, back to back.

    Raises
    ------
    ValueError
        Bad widths, rows or slots; rows beyond ``config.rows``; ``p_bits - shift <= out_bits``
        (no row above the output bits: the saturation needs the sign); a counter too narrow
        for a bit position's count; on NAND-SPIN the ``t`` or output rows sharing a strip
        with another row group.
    """
    _check_width("x_bits", x_bits)
    _check_width("p_bits", p_bits)
    _check_width("m_bits", m_bits, hi=p_bits)
    _check_width("out_bits", out_bits)
    if x_bits > p_bits:
        raise ValueError(f"x_bits must be <= p_bits={p_bits}, not {x_bits}")
    if isinstance(shift, bool) or not isinstance(shift, int) or not 0 <= shift < p_bits:
        raise ValueError(f"shift must be an int in [0, {p_bits - 1}], not {shift!r}")
    terms = m_bits + 1
    if (2 * terms).bit_length() > config.bit_counter_bits:
        raise ValueError(f"{terms} counts per bit position reach {2 * terms}, beyond the "
                         f"{config.bit_counter_bits}-bit bit-counters")
    n = p_bits - shift
    if n <= out_bits:
        raise ValueError(f"p_bits - shift = {n} rows of t must exceed out_bits={out_bits} "
                         f"(the saturation reads the rows above the output bits)")
    _check_rows(config, "x", x0, x_bits)
    _check_rows(config, "ones", ones, 1)
    _check_rows(config, "t", t0, n)
    _check_rows(config, "out", y0, out_bits)
    for name, v in (("m0", m0), ("c0", c0)):
        _check_row(name, v)
    slots = list(slots)
    if len(slots) != 4 or len(set(slots)) != 4:
        raise ValueError(f"slots must be four distinct buffer slots (o, nn, ov, xs), not "
                         f"{slots!r}")
    for v in slots:
        _check_row("slot", v)
    words = set(range(m0, m0 + m_bits)) | set(range(c0, c0 + p_bits))
    if len(words) != m_bits + p_bits or words & set(slots):
        raise ValueError(f"buffer slots overlap: scale words {m0} .. {m0 + m_bits - 1}, bias "
                         f"words {c0} .. {c0 + p_bits - 1}, slots {slots}")
    _own_strips(config, {"t rows": (range(t0, t0 + n), True),
                         "out rows": (range(y0, y0 + out_bits), True),
                         "x": (range(x0, x0 + x_bits), False), "ones row": ([ones], False)})
    o, nn, ov, xs = slots
    body = []
    if config.technology == "nand_spin":
        m = config.mtjs_per_strip
        strips = _strips(range(t0, t0 + n), m) | _strips(range(y0, y0 + out_bits), m)
        body += [op(Opcode.ERASE, a=s * m) for s in sorted(strips)]
    body.append(op(Opcode.BITCOUNT, imm=_CLEAR))
    for k in range(p_bits):
        for i in range(max(0, k - m_bits + 1), k + 1):
            body.append(op(Opcode.BITCOUNT, imm=_COUNT_AND, a=x0 + min(i, x_bits - 1),
                           b=m0 + k - i))
        body.append(op(Opcode.BITCOUNT, imm=_COUNT_AND, a=ones, b=c0 + k))
        body.append(op(Opcode.BITCOUNT, imm=_SHIFT) if k < shift
                    else _write(config, t0 + k - shift))
    msb = t0 + n - 1
    body.append(op(Opcode.BITCOUNT, imm=_READ_TO, a=t0 + out_bits, d=o))
    for r in range(t0 + out_bits + 1, t0 + n):
        body += [op(Opcode.BITCOUNT, imm=_CLEAR),
                 op(Opcode.BITCOUNT, imm=_COUNT, a=r),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND, a=ones, b=o),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND_LSB_TO, a=r, b=o, d=o)]
    body += [op(Opcode.BITCOUNT, imm=_CLEAR_NOT_TO, a=msb, d=nn),
             op(Opcode.BITCOUNT, imm=_COUNT_AND, a=msb, b=o),
             op(Opcode.BITCOUNT, imm=_COUNT_AND_LSB_TO, a=ones, b=o, d=ov),
             op(Opcode.BITCOUNT, imm=_CLEAR),
             op(Opcode.BITCOUNT, imm=_COUNT_AND, a=ones, b=nn),
             op(Opcode.BITCOUNT, imm=_COUNT_AND_LSB_TO, a=ones, b=ov, d=xs),
             op(Opcode.BITCOUNT, imm=_CLEAR)]
    for i in range(out_bits):
        body += [op(Opcode.BITCOUNT, imm=_COUNT_AND, a=t0 + i, b=xs),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND, a=ones, b=ov),
                 _write(config, y0 + i)]
    return body


def requant_cycles(config, *, p_bits: int, m_bits: int, shift: int, t0: int, y0: int,
                   out_bits: int = 8) -> int:
    """Issue cycles of :func:`requant_program` (module docstring)."""
    n = p_bits - shift
    erases = (len(_strips(range(t0, t0 + n), config.mtjs_per_strip)
                  | _strips(range(y0, y0 + out_bits), config.mtjs_per_strip))
              if config.technology == "nand_spin" else 0)
    counts = sum(min(k + 1, m_bits) + 1 for k in range(p_bits))
    return erases + 1 + counts + p_bits + 4 * (n - out_bits) + 4 + 3 * out_bits


def _tbuf_write(config, row: int, plane: int):
    code = Opcode.PROGRAM if config.technology == "nand_spin" else Opcode.WRITE_ROW
    return op(code, imm=WriteSrc.TBUF.value, a=row, b=plane)


def sums_in_program(config, *, x0: int, x_bits: int, lanes: int, offset0: int,
                    patch: int) -> list:
    """Micro-ops that put ``lanes`` sums from the data memory into the array as bit-planes,
    one sum per column (the layout of :func:`requant_program`): the path of a layer's sums
    into the in-memory post-processing (route ``nand_inmem``).

    The sums are data-memory words as the PPU writes them in ``PpuMode.LOGIT`` with a zero
    bias (the raw accumulator sum, a signed 32-bit word; the PPU does no arithmetic on them).
    Sum j is the GATHER word of offset-table entry ``offset0 + j`` and patch-table entry
    ``patch`` (the host's tables, as for every GATHER). Per pass g of ``ceil(x_bits / n)``
    (n = ``operand_bits``): ``MOVE GSHIFT`` a = g n, a GATHER per lane into column j (bits
    g n .. g n + n - 1 of the word, sign included), the ERASEs of the pass's strips on
    NAND-SPIN (a NOP if none: a write from the transpose buffer sees the GATHERs issued 2 or
    more cycles before it), then a write per bit-plane into row ``x0 + g n + q``.

    Returns
    -------
    list of Instr
        :func:`sums_in_cycles` micro-ops (a NOP counts as one), back to back.

    Raises
    ------
    ValueError
        Bad widths, rows beyond ``config.rows``, more lanes than the mat's columns, or on
        NAND-SPIN ``x0`` not at a strip's start (the strips of x are erased: the rows after
        ``x0 + x_bits - 1`` in its last strip must hold nothing).
    """
    from sim.compile.asm import nop
    n = config.operand_bits
    _check_width("x_bits", x_bits, hi=32)
    _check_rows(config, "x", x0, x_bits)
    width = config.columns * config.subarrays_per_mat
    _check_width("lanes", lanes, hi=width)
    for name, v in (("offset0", offset0), ("patch", patch)):
        _check_row(name, v)
    m = config.mtjs_per_strip
    nand = config.technology == "nand_spin"
    if nand and x0 % m:
        raise ValueError(f"x0={x0} must start a strip ({m} rows): the passes erase the strips "
                         f"of x, which must hold nothing else")
    body, erased = [], set()
    for g in range(-(-x_bits // n)):
        rows = range(x0 + g * n, min(x0 + x_bits, x0 + (g + 1) * n))
        body.append(op(Opcode.MOVE, imm=MoveOp.GSHIFT.value, a=g * n))
        body += [op(Opcode.MOVE, imm=MoveOp.GATHER.value, a=j, b=offset0 + j, d=patch)
                 for j in range(lanes)]
        strips = (_strips(rows, m) - erased) if nand else set()
        erased |= strips
        body += [op(Opcode.ERASE, a=s * m) for s in sorted(strips)] or [nop()]
        body += [_tbuf_write(config, r, q) for q, r in enumerate(rows)]
    return body


def sums_in_cycles(config, *, x0: int, x_bits: int, lanes: int) -> int:
    """Issue cycles of :func:`sums_in_program`: per pass 1 + lanes + max(1, new strips) +
    its rows, so about ``ceil(x_bits / n) * (lanes + 2) + x_bits`` (n = ``operand_bits``)."""
    n, m = config.operand_bits, config.mtjs_per_strip
    total, erased = 0, set()
    for g in range(-(-x_bits // n)):
        rows = range(x0 + g * n, min(x0 + x_bits, x0 + (g + 1) * n))
        strips = (_strips(rows, m) - erased) if config.technology == "nand_spin" else set()
        erased |= strips
        total += 1 + lanes + max(1, len(strips)) + len(rows)
    return total


def results_out_program(config, *, y0: int, lanes: int, addr: int, out_bits: int = 8) -> list:
    """Micro-ops that write the ``lanes`` in-memory outputs (rows ``y0 .. y0 + out_bits - 1``,
    one value per column, :func:`requant_program`) into data-memory words ``addr ..
    addr + lanes - 1``: the next layer's activations, where its GATHERs read them.

    ``MOVE LOADPLANE`` senses output row ``y0 + q`` into transpose-buffer plane q (a ``MOVE
    CLEAR`` first if ``out_bits < operand_bits``, so the planes above are 0), then ``MOVE
    SCATTER`` writes column j into word ``addr + j`` (zero-extended: an activation in [0,
    2**out_bits - 1]).

    Returns
    -------
    list of Instr
        :func:`results_out_cycles` micro-ops, back to back.

    Raises
    ------
    ValueError
        ``out_bits`` above ``operand_bits``, rows beyond ``config.rows``, more lanes than the
        mat's columns, words beyond ``config.data_words``.
    """
    n = config.operand_bits
    _check_width("out_bits", out_bits, hi=n)
    _check_rows(config, "out", y0, out_bits)
    width = config.columns * config.subarrays_per_mat
    _check_width("lanes", lanes, hi=width)
    _check_row("addr", addr)
    if addr + lanes > config.data_words:
        raise ValueError(f"data-memory words {addr} .. {addr + lanes - 1} do not fit "
                         f"data_words={config.data_words}")
    body = [op(Opcode.MOVE, imm=MoveOp.CLEAR.value)] if out_bits < n else []
    body += [op(Opcode.MOVE, imm=MoveOp.LOADPLANE.value, a=y0 + q, d=q) for q in range(out_bits)]
    body += [op(Opcode.MOVE, imm=MoveOp.SCATTER.value, a=j, d=addr + j) for j in range(lanes)]
    return body


def results_out_cycles(config, *, lanes: int, out_bits: int = 8) -> int:
    """Issue cycles of :func:`results_out_program`: ``out_bits + lanes`` (+ 1 for the CLEAR
    if ``out_bits < operand_bits``)."""
    return out_bits + lanes + (out_bits < config.operand_bits)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Rows and slots of one row of lanes (strip-aligned: every group that is erased and
    rewritten has strips of its own). ``ys``: the k output groups; ``tag``, ``result``,
    ``groups``: the pooling's rows (k > 1); ``slots``: o, nn, ov, xs; ``m0``: the first scale
    word (the bias words follow the ``m_bits`` scale words)."""

    x0: int
    ones: int
    t0: int
    ys: tuple
    tag: int
    result: int
    groups: tuple
    slots: tuple = (0, 1, 2, 3)
    m0: int = 4


def layout(config, x_bits: int, p_bits: int, shift: int, k: int = 1, out_bits: int = 8) -> Layout:
    """Strip-aligned rows for k groups of sums of ``x_bits`` bits (:class:`Layout`).

    Raises
    ------
    ValueError
        The rows do not fit ``config.rows`` (the message gives the rows needed).
    """
    m = config.mtjs_per_strip
    up = lambda r: -(-r // m) * m           # noqa: E731 - the next strip boundary
    x0 = 0
    ones = up(x0 + k * x_bits)
    t0 = up(ones + 1)
    y = up(t0 + p_bits - shift)
    ys = tuple(y + up(out_bits) * i for i in range(k))
    tag = up(ys[-1] + out_bits)
    result = up(tag + 1)
    groups = (up(result + 1), up(result + 1) + up(out_bits))
    need = groups[1] + out_bits if k > 1 else ys[-1] + out_bits
    if need > config.rows:
        raise ValueError(f"the in-memory post-processing of {k} group(s) of {x_bits}-bit sums "
                         f"({p_bits}-bit affine map) needs {need} rows, beyond rows="
                         f"{config.rows}")
    return Layout(x0, ones, t0, ys, tag, result, groups)


def _x_rows(lay: Layout, x_bits: int, i: int) -> int:
    return lay.x0 + i * x_bits


def measure_model(model, config, *, seed: int = 0) -> list:
    """Post-processing cost of every ``requant`` layer of ``model`` with its 2x2 max pool, the
    PPU's way and the in-memory way, on the cycle model of ``config`` (a mat of
    ``columns * subarrays_per_mat`` lanes; the route ``nand_inmem`` is added).

    In memory: the layer's pooled outputs (channel-major, the positions inside a window) are
    the lanes; a row of lanes holds up to W of them, its 4 window sums in 4 groups of rows
    (random sums within the layer's accumulator bound), requantized one group after the other
    (:func:`requant_program`), then the maximum by Fig. 9 comparison
    (``sim.routes.nand_inmem.max_pool_program``); every output is checked against
    ``golden.layers.requantize`` (the PPU's arithmetic) and the maximum. Counters summed over
    the rows. The PPU: one ``REQUANT`` (``MAX4``) per computed value, issued one per cycle
    behind the dot products. Not counted on either side: putting the sums into the array
    and the outputs' way to the next layer (:func:`sums_in_cycles`,
    :func:`results_out_cycles`: about ``ceil(x_bits / n) * (lanes + 2) + x_bits`` and
    ``out_bits + lanes`` cycles per row of lanes, plus a LOGIT step per sum).

    Returns
    -------
    list of dict
        Per layer: ``layer``, ``values``, ``rows`` (rows of lanes), ``x_bits``, ``p_bits``,
        ``shift``, ``m_bits`` (the widest row's), ``inmem`` and ``ppu`` counter dicts.

    Raises
    ------
    ValueError
        A layer's rows do not fit the subarray, a requant layer not followed by a 2x2 stride-2
        max pool, or an in-memory output that differs from golden (a bug).
    """
    from golden.layers import conv_acc_bound, requantize
    from golden.pim import inmem_requant_bits

    from sim.compile.asm import assemble, halt
    from sim.hw.core_model import CoreModel, unpack_row
    from sim.routes.nand_inmem import max_pool_program

    routes = tuple(config.routes or ())
    if "nand_inmem" not in routes:
        config = dataclasses.replace(config, routes=routes + ("nand_inmem",))
    width = config.columns * config.subarrays_per_mat
    rng = np.random.default_rng(seed)
    shapes = model.shapes()
    out = []
    for i, ly in enumerate(model.layers):
        if getattr(ly, "output", None) != "requant":
            continue
        nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
        if (nxt is None or nxt.kind != "max_pool2d" or int(nxt.params["kernel"]) != 2
                or int(nxt.params["stride"]) != 2):
            raise ValueError(f"layer {i} ({ly.kind}): the measurement needs a 2x2 stride-2 max "
                             f"pool after it")
        c, h, w = shapes[i + 1]
        lanes_total = c * (h // 2) * (w // 2)
        chan = np.repeat(np.arange(c), (h // 2) * (w // 2))
        wt = ly.params["weight"]
        bound = conv_acc_bound(ly.acc_kind, int(np.prod(wt.shape[1:])))
        m2, b2, s = common_shift(ly.params["rq_mult"], ly.params["rq_bias"],
                                 ly.params["rq_shift"])
        p = inmem_requant_bits(bound, m2, b2, [s] * len(m2))
        x_bits = (2 * bound).bit_length()
        try:
            lay = layout(config, x_bits, p, s, k=4)
        except ValueError as e:
            raise ValueError(f"layer {i} ({ly.kind}): {e}") from None
        inmem: dict = {}
        m_widest = 0
        cm = CoreModel(config)
        ones = np.ones(width, bool)
        rows = math.ceil(lanes_total / width)
        for r in range(rows):
            ch = chan[r * width:(r + 1) * width]
            used = len(ch)
            mw, cw = requant_words([m2[j] for j in ch], [b2[j] for j in ch], s, p, width)
            m_widest = max(m_widest, len(mw))
            for j, word in enumerate(np.concatenate([mw, cw])):
                cm.write_buffer(lay.m0 + j, word)
            _host_row(cm, config, lay.ones, ones)
            xs = rng.integers(-bound, bound + 1, (4, width))
            ys = []
            for g in range(4):
                for b in range(x_bits):
                    _host_row(cm, config, _x_rows(lay, x_bits, g) + b,
                              ((xs[g] % (1 << x_bits)) >> b & 1).astype(bool))
                body = requant_program(config, x0=_x_rows(lay, x_bits, g), x_bits=x_bits,
                                       ones=lay.ones, m0=lay.m0, m_bits=len(mw),
                                       c0=lay.m0 + len(mw), p_bits=p, shift=s, t0=lay.t0,
                                       y0=lay.ys[g], slots=lay.slots)
                _add(inmem, cm.run(assemble(body + [halt()])))
                ys.append(requantize(xs[g][None, :used].astype(np.int64),
                                     ly.params["rq_mult"][ch], ly.params["rq_bias"][ch],
                                     ly.params["rq_shift"][ch])[0])
            body, best = max_pool_program(config, lay.ys, 8, lay.groups, lay.tag, lay.result,
                                          lay.slots[0], lay.slots[1])
            _add(inmem, cm.run(assemble(body + [halt()])))
            got = sum(unpack_row(cm._cells[best + b], width).astype(np.int64) << b
                      for b in range(8))[:used]
            want = np.max(ys, axis=0)
            bad = np.flatnonzero(got != want)
            if bad.size:
                j = int(bad[0])
                raise ValueError(f"layer {i}: in-memory output of lane {j} (row {r}) is "
                                 f"{int(got[j])}, golden {int(want[j])} (seed 001)")
        values = 4 * lanes_total
        out.append({"layer": i, "kind": ly.kind, "values": values, "rows": rows,
                    "x_bits": x_bits, "p_bits": p, "shift": s, "m_bits": m_widest,
                    "inmem": inmem, "ppu": {"requant": values, "cycles": values}})
    return out


def _host_row(cm, config, row: int, bits) -> None:
    """A host write of one row (erase its strip first on NAND-SPIN: the caller's strips hold
    nothing else that must survive)."""
    from rtl.mtj_array import MacroCmd
    if config.technology == "nand_spin":
        m = config.mtjs_per_strip
        if row % m == 0:
            cm.array_command(MacroCmd.ERASE, row)
        cm.array_command(MacroCmd.PROGRAM, row, bits)
    else:
        cm.array_command(MacroCmd.WRITE, row, bits)


def _add(total: dict, run) -> None:
    if run.error:
        raise ValueError(f"the in-memory post-processing program failed: {run.reason}")
    for k, v in run.counters.items():
        total[k] = total.get(k, 0) + int(v)


def main(argv=None) -> int:
    """``python -m sim.compile.nand_postproc --model fashion_addernet --preset nand_spin``: the
    post-processing cost per layer, PPU vs in memory (:func:`measure_model`), with energies
    from ``sim.hw.energy.estimate``."""
    from golden.model import bundled_model_path, load_model
    from rtl.config import preset

    from sim.hw.energy import estimate
    ap = argparse.ArgumentParser(prog="python -m sim.compile.nand_postproc",
                                 description=main.__doc__)
    ap.add_argument("--model", default="fashion_addernet")
    ap.add_argument("--preset", default="nand_spin")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        config = preset(args.preset)
        model = load_model(bundled_model_path(args.model))
        rows = measure_model(model, config, seed=args.seed)
    except (ValueError, KeyError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.model} on {args.preset}: post-processing (requantize + ReLU + 2x2 max pool) "
          f"of each requant layer; one mat, {config.columns * config.subarrays_per_mat} lanes")
    print("| layer | values | rows | x/p bits | PPU cycles | PPU energy nJ | in-mem cycles "
          "| BITCOUNT | PROGRAM | ERASE | in-mem energy nJ |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    tot = {"ppu_c": 0, "ppu_e": 0.0, "im_c": 0, "im_e": 0.0}
    for r in rows:
        im = {k: v for k, v in r["inmem"].items()}
        e_im = estimate(config, im).energy_j * 1e9
        e_pp = estimate(config, r["ppu"]).energy_j * 1e9
        tot["ppu_c"] += r["ppu"]["cycles"]
        tot["ppu_e"] += e_pp
        tot["im_c"] += im["cycles"]
        tot["im_e"] += e_im
        print(f"| {r['layer']} {r['kind']} | {r['values']} | {r['rows']} | {r['x_bits']}/"
              f"{r['p_bits']} | {r['ppu']['cycles']} | {e_pp:.3f} | {im['cycles']} | "
              f"{im.get('bitcount', 0)} | {im.get('program', 0) + im.get('write_row', 0)} | "
              f"{im.get('erase', 0)} | {e_im:.3f} |")
    print(f"| total | | | | {tot['ppu_c']} | {tot['ppu_e']:.3f} | {tot['im_c']} | | | | "
          f"{tot['im_e']:.3f} |")
    print("\nThe path (not in the table above): a LOGIT step per sum, then per row of lanes "
          "the 4 window groups gathered in (sums_in_cycles) and the pooled outputs scattered "
          "out (results_out_cycles)")
    print("| layer | LOGIT steps | path cycles |")
    print("|---|---|---|")
    path_total = 0
    for r in rows:
        lanes = min(config.columns * config.subarrays_per_mat, r["values"] // 4)
        path = r["rows"] * (4 * sums_in_cycles(config, x0=0, x_bits=r["x_bits"], lanes=lanes)
                            + results_out_cycles(config, lanes=lanes))
        path_total += path
        print(f"| {r['layer']} {r['kind']} | {r['values']} | {path} |")
    print(f"| total | {sum(r['values'] for r in rows)} | {path_total} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
