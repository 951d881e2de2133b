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

The compiler (``sim.compile.compiler.compile_model`` with ``postproc='in_memory'``) emits all of it
per
``requant`` layer (:func:`plan_stage`): the layer's dot-product chunks write raw sums (LOGIT,
table entry mult 1, shift 0, bias 0) into a third data-memory region, then per row of lanes
and window position q a program gathers group q's sums into the array and requantizes them
(:func:`sums_in_program`, :func:`requant_program`, both with loops), and a last program pools
the groups (max: Fig. 9; average: :func:`avg_pool_program`) and scatters the outputs to the
stage's output words. Not built yet (:data:`NOT_BUILT`, a ``CompileError`` with ``in_memory``):
``quant`` layers (the PPU's threshold stage), residual ``add`` layers and standalone pools
(``sim.compile.layer_stages``). With ``postproc='mixed'`` (``nand_spin``'s default) the compiler
runs those on the PPU and the rest in memory, recording why per stage (:func:`not_built`,
:func:`postproc_summary`). With tiled activations (``sim.compile.act_tile``'s chain plan)
:func:`plan_stage` runs on each band's view, the band's sums after its output (``limit``). A
``logits`` layer keeps the PPU's LOGIT (the bias added to the sum: no requantization). A layer
whose weights are streamed (``sim.compile.weight_stream``, its docstring): the channel tiles
write the raw sums, the programs run after the last tile and read their words from the stream
region, which the host fills a batch of rows of lanes at a time (``Stage.postproc_loads``);
grouped layers and streamed layers tiled in bands stay on the PPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

import numpy as np

from rtl.bit_counter import BitCounterOp, BitCountOut, bitcount_imm
from rtl.config import POSTPROC_MODES as _MODES
from rtl.isa import MoveOp, Opcode, Operand, WriteSrc
from rtl.outputs import interruptible

from sim.routes.base import op
from sim.routes.nand_inmem import (_check_row, _check_rows, _check_width, _own_strips, _strips,
                                   _write)
from sim.routes.nand_inmem import erase_rows

__all__ = ["requant_words", "requant_program", "requant_cycles", "common_shift", "NOT_BUILT",
           "sums_in_program", "sums_in_cycles", "results_out_program", "results_out_cycles",
           "POSTPROC_MODES", "with_postproc", "refuse_in_memory", "not_built", "postproc_summary",
           "postproc_lines", "Layout", "layout",
           "measure_model", "main", "avg_pool_program", "StageLayout", "stage_layout",
           "plan_stage", "stream_words", "check_stages"]

#: Post-processing modes a configuration can name (``rtl.config.POSTPROC_MODES``).
POSTPROC_MODES = _MODES

#: What of a network the compiler cannot post-process in memory yet.
NOT_BUILT = ("in-memory post-processing of this layer is not built yet (built: requant "
             "convolutions and linear layers, with a fused 2x2 max or average pool; the "
             "logits layer keeps the PPU's LOGIT)")

_COUNT = bitcount_imm(BitCounterOp.COUNT)
_COUNT_AND = bitcount_imm(BitCounterOp.COUNT, and_fu=True)
_CLEAR = bitcount_imm(BitCounterOp.CLEAR)
_SHIFT = bitcount_imm(BitCounterOp.SHIFT)
_READ_TO = bitcount_imm(BitCounterOp.HOLD, out=BitCountOut.SA)
_CLEAR_NOT_TO = bitcount_imm(BitCounterOp.CLEAR, out=BitCountOut.NOT_SA)
_COUNT_AND_LSB_TO = bitcount_imm(BitCounterOp.COUNT, and_fu=True, out=BitCountOut.LSB)


def with_postproc(config, mode: str):
    """``config`` with ``postproc=mode`` (``in_memory`` and ``mixed`` add the route
    ``nand_inmem``).

    Raises
    ------
    UserError
        ``mode`` is not one of :data:`POSTPROC_MODES` (one line naming it).
    """
    from sim.util import UserError
    if mode not in POSTPROC_MODES:
        raise UserError(f"--postproc must be one of {', '.join(POSTPROC_MODES)}, not {mode!r}")
    routes = tuple(config.routes)
    if mode in ("in_memory", "mixed") and "nand_inmem" not in routes:
        routes += ("nand_inmem",)
    return dataclasses.replace(config, postproc=mode, routes=routes)


def not_built(model) -> dict:
    """The layers of ``model`` whose post-processing is not built in memory yet
    (:data:`NOT_BUILT`): a ``quant`` output, a residual ``add``, a standalone pool (not a 2x2
    stride-2 pool right after a requant convolution) or global average pooling, as ``{layer
    index: why}`` (``postproc='mixed'`` runs them on the PPU)."""
    from sim.compile import layer_stages
    layers = model.layers
    out = {}
    for i, ly in enumerate(layers):
        kind = getattr(ly, "output", None)
        if (kind == "quant" or ly.kind in ("add", "global_avg_pool2d")
                or (ly.kind in ("max_pool2d", "avg_pool2d")
                    and (layer_stages.is_standalone(layers, i)
                         or getattr(layers[i - 1], "output", None) != "requant"))):
            what = "a quant output" if kind == "quant" else ly.kind
            out[i] = f"layer {i} ({what}): {NOT_BUILT}"
    return out


def refuse_in_memory(model) -> None:
    """``sim.compile.compiler.compile_model`` with ``postproc='in_memory'``: a ``CompileError``
    naming the first layer the in-memory post-processing does not handle yet
    (:func:`not_built`); nothing for a model it handles."""
    from sim.compile.compiler import CompileError
    for i in not_built(model):
        ly = model.layers[i]
        raise CompileError(f"layer {i} ({ly.kind}): postproc 'in_memory' (seed 001 sec. "
                           f"4.2): {NOT_BUILT}; use postproc 'mixed' (the PPU for such "
                           f"layers) or 'ppu'")


def postproc_summary(compiled, stage_counters) -> dict:
    """Where ``compiled``'s stages are post-processed and what that costs per image:
    ``stage_counters`` one counter dict per stage (``rtl.isa.counter_names``; measured on the
    core or counted from the programs). ``bitcount``: BITCOUNT micro-ops of the in-memory
    stages (``requantize``: the in-memory add and multiply of eq. 2 / eq. 3, Fig. 8;
    ``pool``: the pooling programs, max pooling's comparison Fig. 9, from the static
    ``Stage.postproc_ops``); ``ppu_requantize``: REQUANT micro-ops of the stages the PPU
    post-processes, logits stages (LOGIT: the bias added, no requantization) apart in
    ``ppu_logit``; ``raw_sum_writes``: REQUANT micro-ops of the in-memory stages (the PPU's
    LOGIT writing a raw sum with a zero bias, no arithmetic); ``ppu_fallbacks``: ``[{stage,
    why}]`` (``CompiledModel.ppu_fallbacks``)."""
    stages = compiled.stages
    if len(stage_counters) != len(stages):
        raise ValueError(f"stage_counters must have one entry per stage ({len(stages)}), not "
                         f"{len(stage_counters)}")
    out = {"mode": compiled.config.postproc, "stages": len(stages), "in_memory_stages": 0,
           "bitcount": 0, "bitcount_requantize": 0, "bitcount_pool": 0, "ppu_requantize": 0,
           "ppu_logit": 0, "raw_sum_writes": 0,
           "ppu_fallbacks": [{"stage": n, "why": w} for n, w in compiled.ppu_fallbacks]}
    for st, c in zip(stages, stage_counters, strict=True):
        rq = c.get("requant", 0)
        if st.postproc == "in_memory":
            out["in_memory_stages"] += 1
            out["bitcount"] += c.get("bitcount", 0)
            out["raw_sum_writes"] += rq
            for part, ops in st.postproc_ops.items():
                out[f"bitcount_{part}"] += ops.get("bitcount", 0)
        elif st.output == "logits":
            out["ppu_logit"] += rq
        else:
            out["ppu_requantize"] += rq
    return out


def postproc_lines(summary: dict, indent: str = "  ") -> list:
    """:func:`postproc_summary` as text lines: the totals, then one line per stage the PPU
    post-processes although the mode is ``in_memory`` / ``mixed``, with the reason."""
    s = summary
    head = (f"post-processing {s['mode']}: {s['in_memory_stages']} of {s['stages']} stages in "
            f"memory (seed 001 sec. 4.2)")
    if s["in_memory_stages"]:
        head += (f": BITCOUNT {s['bitcount']:,.0f} per image ({s['bitcount_requantize']:,.0f} "
                 f"in-memory add/multiply of the requantization, {s['bitcount_pool']:,.0f} "
                 f"pooling compare/add), {s['raw_sum_writes']:,.0f} raw sums written by LOGIT")
    head += (f"; PPU requantize {s['ppu_requantize']:,.0f} per image, PPU LOGIT of logits "
             f"{s['ppu_logit']:,.0f}")
    return [head] + [f"{indent}on the PPU: {f['stage']}: {f['why']}" for f in s["ppu_fallbacks"]]


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


def _diagonal(x0: int, x_bits: int, m0: int, k: int, lo: int) -> list:
    """The counts ``AND(x_i, m_{k-i})`` for i = lo .. k (x sign-extended) as at most two
    loops: rows ``x0 + i`` with slots ``m0 + k - i`` while i < x_bits (a rises, b falls), then
    the sign row with the remaining slots; a run shorter than 3 stays straight-line."""
    from sim.compile.asm import endloop, loop
    out = []
    for first, last, a_step in ((lo, min(k, x_bits - 1), 1), (max(lo, x_bits), k, 0)):
        count = last - first + 1
        if count <= 0:
            continue
        a = x0 + min(first, x_bits - 1)
        if count < 3:
            out += [op(Opcode.BITCOUNT, imm=_COUNT_AND, a=a + a_step * j, b=m0 + k - first - j)
                    for j in range(count)]
        else:
            out += [loop(count=count),
                    op(Opcode.BITCOUNT, imm=_COUNT_AND, a=Operand(a, 0, a_step),
                       b=Operand(m0 + k - first, 0, -1)),
                    endloop()]
    return out


def requant_program(config, *, x0: int, x_bits: int, ones: int, m0: int, m_bits: int, c0: int,
                    p_bits: int, shift: int, t0: int, y0: int, slots, out_bits: int = 8,
                    loops: bool = False) -> list:
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
    loops : bool
        Emit each bit position's run of 3 or more product counts as a ``LOOP`` (the same
        micro-ops in the same order, a shorter program; each loop adds its LOOP's issue
        cycle): how the compiler emits it into the 1,024-word program memory.

    Returns
    -------
    list of Instr
        :func:`requant_cycles` micro-ops, back to back (``loops``: those plus the loops).

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
        lo = max(0, k - m_bits + 1)
        if loops:
            body += _diagonal(x0, x_bits, m0, k, lo)
        else:
            for i in range(lo, k + 1):
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
                    patch: int, loop: bool = False) -> list:
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

    With ``loop`` the GATHERs of a pass are one ``LOOP lanes`` (column ``j``, offset entry
    ``offset0 + j``; one more cycle per pass): how the compiler emits it.

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
    from sim.compile import asm
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
        if loop:
            body += [asm.loop(count=lanes),
                     op(Opcode.MOVE, imm=MoveOp.GATHER.value, a=Operand(0, 0, 1),
                        b=Operand(offset0, 0, 1), d=patch),
                     asm.endloop()]
        else:
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


def results_out_program(config, *, y0: int, lanes: int, addr: int, out_bits: int = 8,
                        loop: bool = False, plane0: int = 0) -> list:
    """Micro-ops that write the ``lanes`` in-memory outputs (rows ``y0 .. y0 + out_bits - 1``,
    one value per column, :func:`requant_program`) into data-memory words ``addr ..
    addr + lanes - 1``: the next layer's activations, where its GATHERs read them.

    ``MOVE LOADPLANE`` senses output row ``y0 + q`` into transpose-buffer plane q (a ``MOVE
    CLEAR`` first if ``out_bits < operand_bits``, so the planes above are 0), then ``MOVE
    SCATTER`` writes column j into word ``addr + j`` (zero-extended: an activation in [0,
    2**out_bits - 1]). With ``loop`` the SCATTERs are one ``LOOP lanes`` (one more cycle).
    ``plane0``: row ``y0 + q`` goes to plane ``plane0 + q`` instead (seed 001 eq. 2's k-bit
    codes MSB-aligned, ``plane0 = operand_bits - k``: ``sim.compile.bit_widths``).

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
    if isinstance(plane0, bool) or not isinstance(plane0, int) or not \
            0 <= plane0 <= n - out_bits:
        raise ValueError(f"plane0 must be an int in [0, {n - out_bits}] (out_bits={out_bits} "
                         f"of {n} planes), not {plane0!r}")
    _check_rows(config, "out", y0, out_bits)
    width = config.columns * config.subarrays_per_mat
    _check_width("lanes", lanes, hi=width)
    _check_row("addr", addr)
    if addr + lanes > config.data_words:
        raise ValueError(f"data-memory words {addr} .. {addr + lanes - 1} do not fit "
                         f"data_words={config.data_words}")
    body = [op(Opcode.MOVE, imm=MoveOp.CLEAR.value)] if out_bits < n else []
    body += [op(Opcode.MOVE, imm=MoveOp.LOADPLANE.value, a=y0 + q, d=plane0 + q)
             for q in range(out_bits)]
    if loop:
        from sim.compile.asm import endloop
        from sim.compile.asm import loop as loop_
        body += [loop_(count=lanes),
                 op(Opcode.MOVE, imm=MoveOp.SCATTER.value, a=Operand(0, 0, 1),
                    d=Operand(addr, 0, 1)),
                 endloop()]
    else:
        body += [op(Opcode.MOVE, imm=MoveOp.SCATTER.value, a=j, d=addr + j)
                 for j in range(lanes)]
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
                or int(nxt.params["stride"]) != 2 or int(nxt.params.get("padding", 0))):
            raise ValueError(f"layer {i} ({ly.kind}): the measurement needs an unpadded 2x2 "
                             f"stride-2 max pool after it")
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
                _add(inmem, cm.run(assemble(body + [halt()], base_bits=config.isa_base_bits)))
                ys.append(requantize(xs[g][None, :used].astype(np.int64),
                                     ly.params["rq_mult"][ch], ly.params["rq_bias"][ch],
                                     ly.params["rq_shift"][ch])[0])
            body, best = max_pool_program(config, lay.ys, 8, lay.groups, lay.tag, lay.result,
                                          lay.slots[0], lay.slots[1])
            _add(inmem, cm.run(assemble(body + [halt()], base_bits=config.isa_base_bits)))
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


def avg_pool_program(config, value_rows, n: int, ones: int, out0: int) -> list:
    """Micro-ops of the average of the 4 values of a 2x2 window per lane, rounded half up as
    ``golden.layers.avg_pool2d`` (``(sum + 2) >> 2``): the in-memory addition of seed 001 Fig. 8a
    with the rounding constant counted from the all-ones row ``ones`` at bit position 1; the two
    low bits of the sum fall off by ``SHIFT`` (no write) and bits 2 .. n + 1 are written into
    rows ``out0 ..`` (n rows: the average of n-bit values fits n bits). Cycles: E + 4 + 5n.

    Raises
    ------
    ValueError
        Not 4 values, bad rows or width, counters too narrow, on NAND-SPIN the output rows
        sharing a strip with another row group.
    """
    value_rows = list(value_rows)
    if len(value_rows) != 4:
        raise ValueError(f"value_rows must name the 4 values of a 2x2 window, not "
                         f"{len(value_rows)}")
    _check_width("n", n)
    for r in value_rows:
        _check_rows(config, "value", r, n)
    _check_rows(config, "ones", ones, 1)
    _check_rows(config, "out", out0, n)
    if (9).bit_length() > config.bit_counter_bits:        # 4 bits + the constant + a carry of 4
        raise ValueError(f"a count reaches 9, beyond the {config.bit_counter_bits}-bit "
                         f"bit-counters")
    _own_strips(config, {"out rows": (range(out0, out0 + n), True),
                         "values": ([r + b for r in value_rows for b in range(n)], False),
                         "ones row": ([ones], False)})
    body = erase_rows(config, out0, n, [])
    body.append(op(Opcode.BITCOUNT, imm=_CLEAR))
    for b in range(n + 2):
        if b < n:
            body += [op(Opcode.BITCOUNT, imm=_COUNT, a=r + b) for r in value_rows]
        if b == 1:
            body.append(op(Opcode.BITCOUNT, imm=_COUNT, a=ones))     # + 2: round half up
        body.append(op(Opcode.BITCOUNT, imm=_SHIFT) if b < 2 else _write(config, out0 + b - 2))
    return body


@dataclasses.dataclass(frozen=True)
class StageLayout:
    """Rows of a compiled layer's in-memory post-processing (:func:`stage_layout`), every group
    in strips of its own: ``x0`` the sums of one window position (gathered just before its
    requantization), ``ones`` the all-ones row, ``t0`` the affine map's rows, ``ys`` one output
    group per window position, ``tag`` / ``result`` / ``groups`` the max pool's (-1 / () if
    none), ``avg`` the average pool's output (-1 if none); ``rows`` the rows used."""

    x0: int
    ones: int
    t0: int
    ys: tuple
    tag: int
    result: int
    groups: tuple
    avg: int
    rows: int


def stage_layout(config, x_bits: int, t_rows: int, g: int, pool, out_bits: int = 8):
    """The :class:`StageLayout` of a layer with ``x_bits``-bit sums, ``t_rows`` rows of the
    affine map, ``g`` window positions (1 or 4) and ``pool`` (None, ``max``, ``avg``)."""
    m = config.mtjs_per_strip
    up = lambda r: -(-r // m) * m           # noqa: E731 - the next strip boundary
    ones = up(x_bits)
    t0 = up(ones + 1)
    y = up(t0 + t_rows)
    ys = tuple(y + up(out_bits) * i for i in range(g))
    end = ys[-1] + up(out_bits)
    tag = result = avg = -1
    groups = ()
    if pool == "max":
        tag, result = end, up(end + 1)
        groups = (up(result + 1), up(result + 1) + up(out_bits))
        end = groups[1] + up(out_bits)
    elif pool == "avg":
        avg, end = end, end + up(out_bits)
    return StageLayout(0, ones, t0, ys, tag, result, groups, avg, end)


def _find_run(entries: list, want: list):
    """The first index i with ``entries[i:i + len(want)] == want``, or None."""
    n = len(want)
    for i, e in enumerate(entries[:len(entries) - n + 1]):
        if e == want[0] and entries[i:i + n] == want:
            return i
    return None


def _affine(layer, fan_in: int) -> tuple:
    """``(bound, x_bits, out_bits, mult, bias, shift, p_bits, m_bits)`` of ``layer``'s
    in-memory requantization (module docstring): the accumulator bound, the sums' bits, the
    output bits (eq. 2), the common-shift affine map and its widths."""
    from golden.layers import ACT_BITS, conv_acc_bound
    from golden.pim import inmem_requant_bits
    bound = conv_acc_bound(layer.acc_kind, fan_in)
    x_bits = (2 * bound).bit_length()
    # seed 001 eq. 2 (sim.compile.bit_widths): k output rows, MSB-aligned in the words
    out_bits = ACT_BITS - int(layer.params.get("hw_out_shift", 0))
    m2, b2, s = common_shift(layer.params["rq_mult"], layer.params["rq_bias"],
                             layer.params["rq_shift"])
    p = max(inmem_requant_bits(bound, m2, b2, [s] * len(m2)), x_bits, s + out_bits + 1)
    m_bits = max(1, max((int(v) % (1 << p)).bit_length() for v in m2))
    return bound, x_bits, out_bits, m2, b2, s, p, m_bits


def stream_words(layer, fan_in: int) -> int:
    """The weight-buffer words one row of lanes of ``layer``'s in-memory post-processing
    needs in the stream region of a streamed layer (``sim.compile.weight_stream``): 4 scratch,
    the all-ones word, ``m_bits`` scale and ``p_bits`` bias words (0 for a layer that is not
    ``requant``)."""
    if getattr(layer, "output", None) != "requant":
        return 0
    *_, p, m_bits = _affine(layer, fan_in)
    return 5 + m_bits + p


def plan_stage(cmod, stage, layer, config, where: str, *, width: int, region: int, cursor,
               lists, imem_depth: int, sums_base: int, limit: int | None = None,
               stream: dict | None = None) -> tuple:
    """Compile the in-memory post-processing of one ``requant`` layer (``postproc='in_memory'``,
    seed 001 sec. 4.2; module docstring): fill ``stage.chunks`` and the tables, return the next
    ``(slot, offset entry, patch entry)``.

    Parameters
    ----------
    cmod : module
        ``sim.compile.compiler`` (its chunk planner, errors and size checks).
    stage : sim.compile.compiler.Stage
        The layer's stage, its table entries already appended (they become mult 1, shift 0,
        bias 0: the PPU's LOGIT writes the raw sum).
    layer : golden.model.Layer
    width : int
        Lanes of the mat row (``subarrays * columns``).
    region : int
        R: the data memory's two activation regions are words 0 .. 2R - 1.
    sums_base : int
        The first data-memory word of the raw sums, after every activation (2R; after the
        tensors of ``sim.compile.layer_stages``' layout when the model has standalone layers
        or branches): channel-major in the stage's patch order (window position q of lane L
        at ``sums_base + g L + q``).
    cursor : (int, int, int)
        The first free weight-buffer slot, offset-table entry, patch-table entry.
    lists : (images, offsets, patches, (mults, shifts, biases))
        The compiler's lists, appended to.
    imem_depth : int
        Program words.
    limit : int, optional
        The word the raw sums and the LOGIT chunks' write pointer must stay below (a tiled
        model, ``sim.compile.act_tile``: the data memory for a band, the end of a half's free
        words for a resident stage); None: the sums must end within ``data_words``.
    stream : dict, optional
        The layer's weights streamed (``sim.compile.weight_stream``, module docstring there):
        ``region`` (first slot, slots), ``table`` the requant table's stream region or None,
        ``weight``, ``route`` and ``buffer_for`` (the ``buffer_slots`` whose region holds a
        number of words). The dot products run as channel tiles
        (``weight_stream.build_streamed``, their raw-sum entries streamed when the table is),
        the programs read their words from the region, in batches of rows of lanes written by
        the host (``stage.postproc_loads``); the cursor's slot is returned unchanged.

    Anything that does not fit raises ``sim.compile.compiler``'s ``CompileError`` naming the layer,
    the
    quantity and the limit (for a size of the configuration, the field to raise and to what).
    """
    from golden.layers import ACT_BITS
    from sim.compile.asm import assemble, halt
    from sim.routes.nand_inmem import max_pool_program
    slot, obase, pbase = cursor
    images, offsets, patches, (mults, shifts, biases) = lists
    fail = cmod.CompileError
    o_ch = stage.out_channels
    if stream is None or stream["table"] is None:       # resident entries
        for i in range(len(mults) - o_ch, len(mults)):   # LOGIT: the raw sum
            mults[i], shifts[i], biases[i] = 1, 0, 0
    bound, x_bits, out_bits, m2, b2, s, p, m_bits = _affine(layer, stage.fan_in)
    if x_bits > 32 or p > 62:
        raise fail(f"{where}: postproc 'in_memory': sums of {x_bits} bits and an affine map "
                   f"of {p} bits, beyond 32 and 62 (the GATHER's word, the bit-counters' rows)")
    if (2 * (m_bits + 1)).bit_length() > config.bit_counter_bits:
        raise fail(f"{where}: postproc 'in_memory': {m_bits + 1} counts per bit position "
                   f"exceed the {config.bit_counter_bits}-bit bit-counters (rows={config.rows})")
    g = 4 if stage.pool else 1
    lanes_total = stage.out_size
    n_sums = o_ch * stage.n_patches
    assert n_sums == g * lanes_total, (where, n_sums, g, lanes_total)
    if limit is not None:
        _check_limit(cmod, where, config, sums_base, n_sums, n_sums, limit)
    elif sums_base + n_sums > config.data_words:
        cmod._too_small(f"{where}: its {n_sums} raw sums (postproc 'in_memory') need data "
                        f"words {sums_base} .. {sums_base + n_sums - 1} after the activations "
                        f"(the two regions of {region} words or the standalone layers' "
                        f"layout), but data_words is {config.data_words}",
                        "data_words", sums_base + n_sums)
    # The dot products as today's chunks, each REQUANT a LOGIT of the raw sum.
    view = dataclasses.replace(stage, output="logits", pool=None, group=1,
                               out_shape=(o_ch, stage.n_patches), out_base=sums_base,
                               dtype=np.int64, chunks=[], weight_loads=[])
    if stream is None:
        cmod._plan_chunks(view, config, where, imem_depth=imem_depth)
        entries = cmod._patch_entries(view)
    else:                       # channel tiles of raw sums (sim.compile.weight_stream)
        from sim.compile import weight_stream as _ws
        entries = _ws.build_streamed(cmod, view, stream["weight"], stream["route"], config,
                                     stream["region"], where, imem_depth=imem_depth,
                                     width=width, table=stream["table"], layer=layer,
                                     raw_sums=True)
    if limit is not None:       # the LOGIT chunks' write pointer's end (at most, when tiled)
        _check_limit(cmod, where, config, sums_base, n_sums,
                     max(ch.out_start for ch in view.chunks) + n_sums, limit)
    patches.extend(entries)
    pbase += stage.n_patches
    stage.chunks = view.chunks
    stage.weight_loads = view.weight_loads
    stage.postproc_loads = []
    if stream is not None:
        stage.buffer_base = view.buffer_base
    lay = stage_layout(config, x_bits, p - s, g, stage.pool, out_bits)
    if lay.rows > config.rows:
        raise fail(f"{where}: postproc 'in_memory' needs {lay.rows} array rows ({x_bits}-bit "
                   f"sums, {p - s} rows of the affine map, {g} output group(s) and the "
                   f"pooling's, strip-aligned), but rows={config.rows}")
    rows = math.ceil(lanes_total / width)
    per_row = m_bits + p
    chan = np.arange(lanes_total) // stage.positions

    def row_words(r):           # row of lanes r's scale and bias words (module docstring)
        words = np.zeros((per_row, width), bool)
        if cmod._SIZES_ONLY.get():
            return words
        ch = chan[r * width:(r + 1) * width]
        mw, cw = requant_words([m2[c] for c in ch], [b2[c] for c in ch], s, p, width)
        words[:len(mw)] = mw                             # the scale words above stay 0
        words[m_bits:] = cw
        return words

    if stream is None:
        ones_slot, par0 = slot + 4, slot + 5
        end = par0 + rows * per_row
        if end > config.buffer_slots:
            cmod._too_small(f"{where}: postproc 'in_memory' needs weight-buffer slots {slot} "
                            f".. {end - 1} (4 scratch, an all-ones word, {m_bits} scale + {p} "
                            f"bias words per row of lanes x {rows}), but buffer_slots is "
                            f"{config.buffer_slots}", "buffer_slots", end)
        cmod._base(where, "weight-buffer slot", end - 1)
        image = np.zeros((end - slot, width), bool)
        image[4] = True
        for r in range(rows):
            image[5 + r * per_row:5 + (r + 1) * per_row] = row_words(r)
        images.append(image if not cmod._SIZES_ONLY.get() else np.zeros_like(image))
        batch = rows
    else:                       # the stream region, a batch of rows at a time (weight_stream)
        base, size = stream["region"]
        ones_slot, par0 = base + 4, base + 5
        batch = (size - 5) // per_row
        if batch < 1:
            cmod._too_small(f"{where}: postproc 'in_memory' of a streamed layer "
                            f"(sim.compile.weight_stream) needs {5 + per_row} slots of the "
                            f"stream region for one row of lanes (4 scratch, an all-ones word, "
                            f"{m_bits} scale + {p} bias words), but the region has {size} "
                            f"(buffer_slots is {config.buffer_slots})", "buffer_slots",
                            stream["buffer_for"](5 + per_row))
        cmod._base(where, "weight-buffer slot", par0 + min(batch, rows) * per_row - 1)
        end = slot
    n_off = min(width, lanes_total)
    want = [(g * j, 0) for j in range(n_off)]
    off0 = _find_run(offsets, want)             # an earlier layer's entries, if they match
    if off0 is None:
        if obase + n_off > config.offset_entries:
            cmod._too_small(f"{where}: postproc 'in_memory' needs offset-table entries {obase} "
                            f".. {obase + n_off - 1} (one per lane), but offset_entries is "
                            f"{config.offset_entries}", "offset_entries", obase + n_off)
        offsets.extend(want)
        off0, obase = obase, obase + n_off
    if pbase + rows * g > config.patch_entries:
        cmod._too_small(f"{where}: postproc 'in_memory' needs patch-table entries {pbase} .. "
                        f"{pbase + rows * g - 1} (one per row of lanes and window position), "
                        f"but patch_entries is {config.patch_entries}", "patch_entries",
                        pbase + rows * g)
    patches.extend(((sums_base + g * r * width + q) % (1 << 16), 1)
                   for r in range(rows) for q in range(g))
    p0, pbase = pbase, pbase + rows * g
    cmod._base(where, "patch-table entry", pbase - 1)
    cmod._base(where, "offset-table entry", obase - 1)
    cmod._base(where, "data-memory address (SCATTER)", stage.out_base + lanes_total - 1)
    slots = tuple(range(ones_slot - 4, ones_slot))      # the programs' scratch
    wcode = Opcode.PROGRAM if config.technology == "nand_spin" else Opcode.WRITE_ROW
    ones_body = ([op(Opcode.ERASE, a=lay.ones)] if config.technology == "nand_spin" else [])
    ones_body.append(op(wcode, imm=WriteSrc.BUFFER.value, a=lay.ones, b=ones_slot))

    def add_chunk(body, what, n_out):
        instrs = body + [halt()]
        if len(instrs) > imem_depth:
            cmod._too_small(f"{where}: the in-memory post-processing program of {what} needs "
                            f"{len(instrs)} instruction words, but program_words is "
                            f"{imem_depth}", "program_words", len(instrs))
        words = tuple(assemble(instrs, base_bits=config.isa_base_bits))
        cycles, ops = cmod.program_profile(words, config)
        part = stage.postproc_ops.setdefault("pool" if what.endswith("pool") else "requantize",
                                             {})
        for k, v in ops.items():
            part[k] = part.get(k, 0) + int(v)
        stage.chunks.append(cmod.Chunk(
            stage=stage, index=len(stage.chunks), patch_start=0, patches=0, groups=0,
            partial=0, rows=tuple(range(lay.rows)), out_start=0, program=words, n_out=n_out,
            cycles=cycles, gather_cycles=0, max_cycles=cycles + cmod.PIPELINE_DRAIN + 64,
            micro_ops=ops))

    try:
        for r in range(rows):
            lanes = min(width, lanes_total - r * width)
            m0 = par0 + (r % batch) * per_row
            if stream is not None and r % batch == 0:    # the host writes the batch's words
                words = [row_words(j) for j in range(r, min(rows, r + batch))]
                if r == 0:                               # (the all-ones word: once)
                    words.insert(0, np.full((1, width), not cmod._SIZES_ONLY.get()))
                stage.postproc_loads.append((len(stage.chunks), par0 - (r == 0), np.concatenate(
                    words), None))
            out = dict(lanes=lanes, addr=stage.out_base + r * width, out_bits=out_bits,
                       loop=True, plane0=ACT_BITS - out_bits)
            for q in range(g):
                body = list(ones_body) if q == 0 else []
                body += sums_in_program(config, x0=lay.x0, x_bits=x_bits, lanes=lanes,
                                        offset0=off0, patch=p0 + r * g + q, loop=True)
                body += requant_program(config, x0=lay.x0, x_bits=x_bits, ones=lay.ones, m0=m0,
                                        m_bits=m_bits, c0=m0 + m_bits, p_bits=p, shift=s,
                                        t0=lay.t0, y0=lay.ys[q], slots=slots,
                                        out_bits=out_bits, loops=True)
                if g == 1:
                    body += results_out_program(config, y0=lay.ys[0], **out)
                add_chunk(body, f"row of lanes {r}, window position {q}",
                          lanes if g == 1 else 0)
            if g == 4:
                if stage.pool == "max":
                    body, best = max_pool_program(config, lay.ys, out_bits, lay.groups,
                                                  lay.tag, lay.result, slots[0], slots[1])
                else:
                    body, best = avg_pool_program(config, lay.ys, out_bits, lay.ones,
                                                  lay.avg), lay.avg
                body += results_out_program(config, y0=best, **out)
                add_chunk(body, f"row of lanes {r}, the {stage.pool} pool", lanes)
    except ValueError as e:
        raise fail(f"{where}: postproc 'in_memory': {e}") from None
    return end, obase, pbase


def _check_limit(cmod, where: str, config, sums_base: int, n_sums: int, reach: int,
                 limit: int) -> None:
    """:func:`plan_stage` in a tiled model: ``n_sums`` raw sums from ``sums_base`` and the
    write pointer ``reach`` words past it must stay below ``limit``; else ``data_words`` is
    too small (by the excess, twice it when ``limit`` ends a half of the data memory)."""
    over = sums_base + reach - limit
    if over > 0:
        grow = 1 if limit >= config.data_words else 2
        cmod._too_small(f"{where}: its {n_sums} raw sums (postproc '{config.postproc}') at data "
                        f"words {sums_base} .. {sums_base + n_sums - 1} and the write pointer's "
                        f"end ({sums_base + reach}) must stay below word {limit} (activations "
                        f"tiled: sim.compile.act_tile), but data_words is {config.data_words}",
                        "data_words", config.data_words + grow * over)


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


#: The data set of each bundled model (as ``sim.cli``'s).
_DATASETS = {"fashion_addernet": "fashion_mnist", "digits_addernet": "digits"}


def check_stages(compiled, res, trace, image: int, what: str, seed: str) -> None:
    """Raise ValueError at the first output of ``res`` (a ``run_compiled`` result of image
    ``image``) that differs from golden's ``trace``, naming ``what`` (the run), the stage, the
    image, the index, both values and ``seed``."""
    for st, y in zip(compiled.stages, res.outputs, strict=True):
        want = np.asarray(trace[st.golden_index])[image].reshape(y.shape)
        bad = np.flatnonzero(want.reshape(-1) != y.reshape(-1))
        if bad.size:
            j = int(bad[0])
            raise ValueError(f"{what}: {st.name}, image {image}: output {j} is "
                             f"{int(y.reshape(-1)[j])}, golden {int(want.reshape(-1)[j])} "
                             f"({seed})")


def measure_compiled(model, config, images, *, subarrays: int | None = None) -> dict:
    """Per post-processing mode, the compiled model run on the cycle model
    (``sim.hw.core_model.CoreModel``) for every image of ``images`` (uint8 [N, *input_shape]),
    every stage checked against ``golden.model.infer_int(trace=True)`` (integer ==).

    ``config``'s sizes are raised to what each mode needs (``sim.compile.compiler.propose_config``).

    Returns
    -------
    dict
        ``{mode: {"cycles": per image, "energy_j": per image (``sim.hw.energy.estimate`` of the
        counters), "counters": summed over the images, "config": the configuration,
        "chunks": core runs per image, "postproc_cycles" / "postproc_moves": the cycles and
        MOVEs of the in-memory programs per image (static; 0 for ``ppu``)}}`` for ``ppu`` and
        ``in_memory``.

    Raises
    ------
    ValueError
        A stage differs from golden (naming the mode, the stage, the image and the first
        differing value).
    """
    from golden.model import infer_int
    from sim.compile.compiler import compile_model, propose_config, run_compiled
    from sim.hw.core_model import CoreModel
    from sim.hw.energy import estimate
    images = np.asarray(images)
    trace = infer_int(model, images, trace=True)
    out = {}
    for mode in ("ppu", "in_memory"):
        cfg = propose_config(model, with_postproc(config, mode), subarrays=subarrays)
        compiled = compile_model(model, cfg, subarrays=subarrays)
        total: dict = {}
        energy = 0.0
        for i, x in enumerate(images):
            cm = CoreModel(cfg, subarrays=compiled.subarrays)
            res = run_compiled(compiled, x, cm)
            check_stages(compiled, res, trace, i, f"postproc {mode}", "seed 001")
            for k, v in res.counters.items():
                total[k] = total.get(k, 0) + int(v)
            energy += estimate(cfg, res.counters,
                               columns_active=cfg.columns * compiled.subarrays).energy_j
        n = len(images)
        # the in-memory programs are the chunks that compute no patch (plan_stage's)
        post = [ch for st in compiled.stages for ch in st.chunks if ch.patches == 0]
        out[mode] = {"cycles": total["cycles"] / n, "energy_j": energy / n, "counters": total,
                     "config": cfg, "chunks": sum(len(st.chunks) for st in compiled.stages),
                     "postproc_cycles": sum(ch.cycles for ch in post),
                     "postproc_moves": sum(ch.micro_ops["move"] for ch in post)}
    return out


@interruptible("python -m sim.compile.nand_postproc", "nothing was written (it only prints)")
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
    ap.add_argument("--compiled", type=int, default=0, metavar="N",
                    help="instead: compile the model both ways and run the first N test "
                         "images on the cycle model, every stage checked against golden; "
                         "cycles and energy per image, ppu vs in_memory")
    args = ap.parse_args(argv)
    if args.compiled:
        return _main_compiled(args)
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


def _main_compiled(args) -> int:
    from golden import datasets
    from golden.model import bundled_model_path, load_model
    from rtl.config import preset
    from sim.compile.compiler import CompileError
    try:
        config = preset(args.preset)
        model = load_model(bundled_model_path(args.model))
        if args.model not in _DATASETS:
            raise ValueError(f"--model: --compiled knows the data sets of "
                             f"{', '.join(_DATASETS)}, not {args.model!r}")
        x, _ = datasets.load_dataset(_DATASETS[args.model], "test")
        if not 1 <= args.compiled <= len(x):
            raise ValueError(f"--compiled {args.compiled}: the {_DATASETS[args.model]} test "
                             f"split has {len(x)} images; give --compiled between 1 and "
                             f"{len(x)}")
        res = measure_compiled(model, config, x[:args.compiled])
    except (ValueError, KeyError, OSError, CompileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    width = config.columns * config.subarrays_per_mat
    print(f"{args.model} on {args.preset} ({width} lanes), {args.compiled} test images on the "
          f"cycle model, every stage == golden; per image:")
    print("| postproc | cycles | energy nJ | core runs | BITCOUNT | REQUANT (LOGIT in "
          "memory) | MOVE | PROGRAM | ERASE |")
    print("|---|---|---|---|---|---|---|---|---|")
    n = args.compiled
    for mode, r in res.items():
        c = r["counters"]
        print(f"| {mode} | {r['cycles']:.0f} | {r['energy_j'] * 1e9:.2f} | {r['chunks']} | "
              f"{c.get('bitcount', 0) / n:.0f} | {c.get('requant', 0) / n:.0f} | "
              f"{c.get('move', 0) / n:.0f} | {c.get('program', 0) / n:.0f} | "
              f"{c.get('erase', 0) / n:.0f} |")
    im = res["in_memory"]
    print(f"in_memory: {im['cycles'] - im['postproc_cycles']:.0f} cycles of dot-product chunks "
          f"(one LOGIT per sum where ppu has a REQUANT), {im['postproc_cycles']} of in-memory "
          f"programs, {im['postproc_moves']} of them MOVEs (the sums in, the outputs out)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
