"""NAND-SPIN's in-memory primitives on the per-column bit-counters (``nand_inmem``, seed 001
sec. 4.1, Fig. 8).

Hardware (``rtl.routes``, ``rtl.bit_counter``): one bit-counter per mat column.
``BITCOUNT`` COUNT senses row a (a 1-row read, or with ``imm`` bit 2 the AND of row a with the
FU line driven from buffer slot b, seed 001 Table 1) and adds each column's bit to its counter;
SHIFT and CLEAR act on the counters alone. The column's output multiplexer picks the
bit-counter instead of the sense amplifier when a ``WRITE_ROW`` / ``PROGRAM`` takes
``WriteSrc.BIT_COUNTER``: the counters' LSBs are written through the write word line into row
a, and the counters shift right in the same micro-op (the LSB leaves, the rest is the carry
into the next bit position, Fig. 8). ``WriteSrc.BIT_COUNTER_XW`` is the same write-back
cross-written (Fig. 10's in-mat movement between subarrays): lane j of row a gets the LSB of
lane ``(j + b) mod lanes`` (``b`` below the lanes), the seed's "bit-counting results ...
written into different columns" (``sim.compile.nand_conv``). The write sees the counters as
left by every micro-op issued before it (the core bypasses the counter operation in flight),
so counts and write-backs issue back to back with no bubble. ``WriteSrc.BIT_COUNTER_XWM`` is
the cross-write through a write mask: lane j is programmed only if lane ``(j + b) mod lanes``
of buffer slot d is set (the mask rotates with the data), so a cross-write fills some columns
of a row and leaves the others unprogrammed for a later one (seed 001 Fig. 10: partial sums
"cross-written into different columns").

Data layout (seed 001 Fig. 8: "stores data element-by-element vertically"): an n-bit operand
of a lane sits in its column, bit b in row ``r0 + b``. Result rows are written back
bit by bit, LSB first. On NAND-SPIN (``technology="nand_spin"``) a write is a ``PROGRAM`` of
the 1-bits into an erased strip, so the result rows' strips are erased first (one ``ERASE``
per strip of ``mtjs_per_strip`` rows, the seed's "empty rows reserved for the results"); they
must not share a strip with an operand. Other technologies write with ``WRITE_ROW``.

Primitives (micro-op programs built by the functions below), each equal to
its ``golden.pim`` function:

* addition of k operands in one column (Fig. 8a, ``golden.pim.bitcounter_add``): per bit b,
  LSB first, the k bits are counted on top of the carry, then the LSB is written back as sum
  bit b; ``n + bit_length(k - 1)`` sum rows. Cycles: ``E + 1 + k n + n + bit_length(k - 1)``
  (E erases, one CLEAR, k n COUNTs, one write per sum row);
* multiplication by a scale shared by every lane (Fig. 8b, ``golden.pim.scale_multiply``):
  the scale's bit j is buffer slot ``s0 + j`` (all ones or all zeros: the buffer holds one
  multiplier); product bit k counts ``AND(a_i, s_{k-i})`` for every i, then writes the LSB.
  Cycles: ``E + 1 + a_bits * s_bits + a_bits + s_bits``.

* MSB-first comparison with a Tag and a Result row (Fig. 9, ``golden.pim.msb_first_compare``,
  :func:`compare_program`), the selective copy of the maximum or minimum
  (``golden.pim.max_select`` / ``min_select``, :func:`select_program`), max pooling by
  iterated comparison (``golden.pim.max_pool_compare``, :func:`max_pool_program`) and ReLU
  from the MSB (``golden.layers.relu``, :func:`relu_program`). These use the output
  multiplexer into the buffer: a ``BITCOUNT`` with an out (``rtl.bit_counter.BitCountOut``)
  writes the sensed row, its inverse or the counters' LSBs into buffer slot d, and the next
  micro-op reads the new word (the core forwards it).

The derivations and cycle formulas are in ``docs/dataflows.rst``.
"""

from __future__ import annotations

from rtl.bit_counter import BitCounterOp, BitCountOut, bitcount_imm
from rtl.isa import Opcode, WriteSrc

from .base import LaneModel, Route, op, register_route

__all__ = ["NandInmem", "BitCounterLanes", "add_program", "scale_program", "scale_words",
           "erase_rows", "add_cycles", "scale_cycles", "compare_program", "compare_cycles",
           "select_program", "select_cycles", "max_pool_program", "relu_program",
           "relu_cycles"]

_COUNT = bitcount_imm(BitCounterOp.COUNT)
_COUNT_AND = bitcount_imm(BitCounterOp.COUNT, and_fu=True)
_CLEAR = bitcount_imm(BitCounterOp.CLEAR)
_READ_TO = bitcount_imm(BitCounterOp.HOLD, out=BitCountOut.SA)
_CLEAR_NOT_TO = bitcount_imm(BitCounterOp.CLEAR, out=BitCountOut.NOT_SA)
_COUNT_AND_LSB_TO = bitcount_imm(BitCounterOp.COUNT, and_fu=True, out=BitCountOut.LSB)


class BitCounterLanes(LaneModel):
    """The per-column bit-counters (``rtl.bit_counter.BitCounter``) of the mat row, bit-sliced:
    ``planes[k]`` is the row of bit k of every column's count (``bits`` planes, counts wrap
    modulo ``2**bits`` as the RTL's do).

    The model plays micro-ops in issue order, so when a write from ``BIT_COUNTER`` asks for
    its data every earlier micro-op has counted: that is the core's bypass. The write's shift
    is applied right after (its S2 comes before the S2 of any later micro-op).
    """

    def __init__(self, ones: int, bits: int):
        super().__init__(ones)
        self.planes = [0] * bits
        self.ops = {Opcode.BITCOUNT.value: self.step}
        self.write_sources = {WriteSrc.BIT_COUNTER.value: self.write_back,
                              WriteSrc.BIT_COUNTER_XW.value: self.cross_write,
                              WriteSrc.BIT_COUNTER_XWM.value: self.cross_write}
        self._width = ones.bit_length()

    def step(self, imm, x, w, c):
        """``BITCOUNT``: COUNT adds the sensed row ``x`` (the core's ANDed it with ``w`` for
        ``imm`` bit 2), SHIFT, CLEAR; no reduction. ``imm`` bits 0-1 act even when the
        micro-op is flagged (as the RTL's S2 does)."""
        kind = imm & 3
        if kind == BitCounterOp.COUNT.value:
            carry = x
            for k, p in enumerate(self.planes):
                self.planes[k], carry = p ^ carry, p & carry
                if not carry:
                    break
        elif kind == BitCounterOp.SHIFT.value:
            self.planes = self.planes[1:] + [0]
        elif kind == BitCounterOp.CLEAR.value:
            self.planes = [0] * len(self.planes)
        return None

    def write_back(self, c: int) -> int:
        """The LSB row a write from ``BIT_COUNTER`` issued in cycle ``c`` writes; the counters
        shift right."""
        lsb = self.planes[0]
        self.planes = self.planes[1:] + [0]
        return lsb

    def cross_write(self, c: int, b: int) -> int:
        """The row a write from ``BIT_COUNTER_XW`` with rotation ``b`` writes (seed 001 Fig. 10,
        the cross-write): lane j gets the LSB of lane ``(j + b) mod lanes``; the counters shift
        right as for :meth:`write_back`. As ``rtl.core.Core``'s shifter, the LSBs twice side by
        side shifted right by b (a b at or beyond the lanes, an error, writes what that gives)."""
        lsb, w = self.write_back(c), self._width
        return ((lsb | lsb << w) >> b) & ((1 << w) - 1)

    def counts(self, width: int) -> list:
        """Every column's count, column order (for tests)."""
        return [sum(((p >> g) & 1) << k for k, p in enumerate(self.planes))
                for g in range(width)]


def _check_row(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise ValueError(f"{name} must be an int >= 0, not {v!r}")


def _check_width(name, v, hi=62):
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= hi:
        raise ValueError(f"{name} must be an int in [1, {hi}], not {v!r}")


def _strips(rows, m: int) -> set:
    return {r // m for r in rows}


def erase_rows(config, out0: int, out_bits: int, operand_rows) -> list:
    """The ``ERASE`` micro-ops that make rows ``out0 .. out0 + out_bits - 1`` writable on
    NAND-SPIN (one per strip), none on other technologies.

    Raises
    ------
    ValueError
        A result strip holds an operand row (the erase would destroy it), or the rows do not
        fit ``config.rows``.
    """
    out = range(out0, out0 + out_bits)
    if out0 + out_bits > config.rows:
        raise ValueError(f"result rows {out0} .. {out0 + out_bits - 1} do not fit "
                         f"rows={config.rows}")
    if config.technology != "nand_spin":
        return []
    m = config.mtjs_per_strip
    shared = sorted(_strips(out, m) & _strips(operand_rows, m))
    if shared:
        raise ValueError(f"result rows {out0} .. {out0 + out_bits - 1} share strip(s) "
                         f"{shared} ({m} rows each) with operand rows: erasing them would "
                         f"destroy the operands; put the results in strips of their own")
    return [op(Opcode.ERASE, a=s * m) for s in sorted(_strips(out, m))]


def _write(config, row: int):
    code = Opcode.PROGRAM if config.technology == "nand_spin" else Opcode.WRITE_ROW
    return op(code, imm=WriteSrc.BIT_COUNTER.value, a=row)


def add_program(config, operand_rows, n_bits: int, out0: int) -> list:
    """Micro-ops adding k operands in one column (seed 001 Fig. 8a; ``golden.pim.bitcounter_add``).

    Parameters
    ----------
    config : AcceleratorConfig
        Its technology picks the write-back (``PROGRAM`` after ``ERASE`` on NAND-SPIN).
    operand_rows : sequence of int
        First row of each operand (bit b in row ``r + b``), k >= 1.
    n_bits : int
        Operand width.
    out0 : int
        First row of the ``n_bits + bit_length(k - 1)`` sum rows.

    Returns
    -------
    list of Instr
        ``E + 1 + k * n_bits + n_bits + bit_length(k - 1)`` micro-ops, issued back to back.

    Raises
    ------
    ValueError
        No operand, a bad width or row, rows beyond ``config.rows``, a counter too narrow for
        the carry, result strips shared with operands.
    """
    _check_width("n_bits", n_bits)
    operand_rows = list(operand_rows)
    if not operand_rows:
        raise ValueError("operand_rows must name at least one operand")
    for r in operand_rows:
        _check_row("operand row", r)
        if r + n_bits > config.rows:
            raise ValueError(f"operand rows {r} .. {r + n_bits - 1} do not fit "
                             f"rows={config.rows}")
    _check_row("out0", out0)
    k = len(operand_rows)
    if (2 * k - 1).bit_length() > config.bit_counter_bits:
        raise ValueError(f"{k} operands: a count reaches {2 * k - 1}, beyond the "
                         f"{config.bit_counter_bits}-bit bit-counters")
    out_bits = n_bits + (k - 1).bit_length()
    src = [r + b for r in operand_rows for b in range(n_bits)]
    body = erase_rows(config, out0, out_bits, src)
    body.append(op(Opcode.BITCOUNT, imm=_CLEAR))
    for b in range(out_bits):
        if b < n_bits:
            body += [op(Opcode.BITCOUNT, imm=_COUNT, a=r + b) for r in operand_rows]
        body.append(_write(config, out0 + b))
    return body


def add_cycles(config, k: int, n_bits: int, out0: int) -> int:
    """Issue cycles of :func:`add_program` (module docstring)."""
    out_bits = n_bits + (k - 1).bit_length()
    erases = (len(_strips(range(out0, out0 + out_bits), config.mtjs_per_strip))
              if config.technology == "nand_spin" else 0)
    return erases + 1 + k * n_bits + out_bits


def scale_words(scale: int, scale_bits: int, width: int) -> list:
    """Buffer words of a shared scale: word j is all ones if bit j of ``scale`` is set."""
    _check_width("scale_bits", scale_bits)
    if isinstance(scale, bool) or not isinstance(scale, int) or not 0 <= scale < 1 << scale_bits:
        raise ValueError(f"scale must be an int in [0, {(1 << scale_bits) - 1}], not {scale!r}")
    ones = (1 << width) - 1
    return [ones if scale >> j & 1 else 0 for j in range(scale_bits)]


def scale_program(config, a0: int, a_bits: int, slot0: int, scale_bits: int,
                  out0: int) -> list:
    """Micro-ops multiplying every lane's ``a`` (rows ``a0 ..``) by the shared scale in buffer
    slots ``slot0 .. slot0 + scale_bits - 1`` (:func:`scale_words`), product into rows
    ``out0 .. out0 + a_bits + scale_bits - 1`` (seed 001 Fig. 8b; ``golden.pim.scale_multiply``).

    Returns
    -------
    list of Instr
        ``E + 1 + a_bits * scale_bits + a_bits + scale_bits`` micro-ops, back to back.

    Raises
    ------
    ValueError
        Bad widths, rows or slot; rows beyond ``config.rows``; result strips shared with the
        multiplicand; a counter too narrow for the column's carry.
    """
    _check_width("a_bits", a_bits)
    _check_width("scale_bits", scale_bits)
    for name, v in (("a0", a0), ("slot0", slot0), ("out0", out0)):
        _check_row(name, v)
    if a0 + a_bits > config.rows:
        raise ValueError(f"multiplicand rows {a0} .. {a0 + a_bits - 1} do not fit "
                         f"rows={config.rows}")
    terms = min(a_bits, scale_bits)
    if (2 * terms - 1).bit_length() > config.bit_counter_bits:
        raise ValueError(f"{terms} partial products per bit: beyond the "
                         f"{config.bit_counter_bits}-bit bit-counters")
    out_bits = a_bits + scale_bits
    body = erase_rows(config, out0, out_bits, range(a0, a0 + a_bits))
    body.append(op(Opcode.BITCOUNT, imm=_CLEAR))
    for k in range(out_bits):
        for i in range(max(0, k - scale_bits + 1), min(k, a_bits - 1) + 1):
            body.append(op(Opcode.BITCOUNT, imm=_COUNT_AND, a=a0 + i, b=slot0 + k - i))
        body.append(_write(config, out0 + k))
    return body


def scale_cycles(config, a_bits: int, scale_bits: int, out0: int) -> int:
    """Issue cycles of :func:`scale_program` (module docstring)."""
    out_bits = a_bits + scale_bits
    erases = (len(_strips(range(out0, out0 + out_bits), config.mtjs_per_strip))
              if config.technology == "nand_spin" else 0)
    return erases + 1 + a_bits * scale_bits + out_bits


def _rewrite(config, row: int) -> list:
    """Overwrite ``row`` with the counters' LSBs: on NAND-SPIN its strip is erased first (the
    caller keeps nothing else in it)."""
    if config.technology == "nand_spin":
        m = config.mtjs_per_strip
        return [op(Opcode.ERASE, a=row // m * m), _write(config, row)]
    return [_write(config, row)]


def _check_rows(config, name, r0, n):
    _check_row(name, r0)
    if r0 + n > config.rows:
        raise ValueError(f"{name} rows {r0} .. {r0 + n - 1} do not fit rows={config.rows}")


def _own_strips(config, named: dict) -> None:
    """Rows that are rewritten (erased first) on NAND-SPIN must sit in strips no other named
    row group uses: ``named`` maps a name to (rows, rewritten)."""
    if config.technology != "nand_spin":
        return
    m = config.mtjs_per_strip
    items = list(named.items())
    for i, (na, (ra, wa)) in enumerate(items):
        for nb, (rb, wb) in items[i + 1:]:
            if (wa or wb) and _strips(ra, m) & _strips(rb, m):
                raise ValueError(f"{na} and {nb} share strip(s) "
                                 f"{sorted(_strips(ra, m) & _strips(rb, m))} ({m} rows each) "
                                 f"and one of them is erased and rewritten: give it strips of "
                                 f"its own")


def compare_program(config, a0: int, b0: int, n: int, tag: int, result: int, s1: int,
                    s2: int) -> list:
    """Micro-ops comparing every lane's ``a`` (rows ``a0 ..``) and ``b`` (rows ``b0 ..``) MSB
    first with a Tag and a Result row (seed 001 Fig. 9; ``golden.pim.msb_first_compare``):
    row ``result`` ends as ``a > b`` per lane. Buffer slots ``s1``, ``s2`` are the two buffer
    rows of Fig. 9.

    Per bit i, MSB first: Tag read into ``s1`` and, inverted, into ``s2`` (two senses; the
    second also clears the counters); count ``AND(a_i, s2)``, ``AND(b_i, s2)`` and write the
    LSB (the lanes deciding now) into ``s2``; count ``AND(T, s1)`` and write the LSB into the
    Tag row; clear; count ``AND(a_i, s2)``, ``AND(R, s1)`` and write the LSB into the Result
    row. Tag and Result start at 0 (two writes of the cleared counters; on NAND-SPIN two
    erases, and every rewrite of Tag or Result erases its strip first).

    Raises
    ------
    ValueError
        Bad rows, slots or width; rows beyond ``config.rows``; equal slots; on NAND-SPIN Tag or
        Result sharing a strip with each other or with an operand.
    """
    _check_width("n", n)
    _check_rows(config, "a", a0, n)
    _check_rows(config, "b", b0, n)
    for name, v in (("tag", tag), ("result", result)):
        _check_rows(config, name, v, 1)
    for name, v in (("s1", s1), ("s2", s2)):
        _check_row(name, v)
    if s1 == s2:
        raise ValueError(f"s1 and s2 must be two buffer slots, not both {s1}")
    _own_strips(config, {"tag row": ([tag], True), "result row": ([result], True),
                         "a": (range(a0, a0 + n), False), "b": (range(b0, b0 + n), False)})
    if config.technology == "nand_spin":
        m = config.mtjs_per_strip
        body = [op(Opcode.ERASE, a=tag // m * m), op(Opcode.ERASE, a=result // m * m)]
    else:
        body = [op(Opcode.BITCOUNT, imm=_CLEAR), _write(config, tag), _write(config, result)]
    for i in range(n - 1, -1, -1):
        body += [op(Opcode.BITCOUNT, imm=_READ_TO, a=tag, d=s1),
                 op(Opcode.BITCOUNT, imm=_CLEAR_NOT_TO, a=tag, d=s2),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND, a=a0 + i, b=s2),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND_LSB_TO, a=b0 + i, b=s2, d=s2),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND, a=tag, b=s1)]
        body += _rewrite(config, tag)
        body += [op(Opcode.BITCOUNT, imm=_CLEAR),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND, a=a0 + i, b=s2),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND, a=result, b=s1)]
        body += _rewrite(config, result)
    return body


def compare_cycles(config, n: int) -> int:
    """Issue cycles of :func:`compare_program`: 2 + 12n on NAND-SPIN (two erases per bit),
    3 + 10n elsewhere."""
    return 2 + 12 * n if config.technology == "nand_spin" else 3 + 10 * n


def select_program(config, a0: int, b0: int, n: int, result: int, out0: int, s1: int, s2: int,
                   *, want_max: bool = True) -> list:
    """Micro-ops of the selective copy after :func:`compare_program` (``golden.pim.max_select``
    / ``min_select``): the Result row ``r`` into buffer slots ``s1`` (``r``) and ``s2`` (``NOT
    r``), then per bit i the counters count ``AND(a_i, s1)`` and ``AND(b_i, s2)`` (swapped for
    the minimum) and write the LSB into row ``out0 + i``; at most one of the two is 1, so the
    write's shift leaves the counters at 0. Cycles: E + 2 + 3n.

    Raises
    ------
    ValueError
        Bad rows or slots; on NAND-SPIN result rows sharing a strip with another row group.
    """
    _check_width("n", n)
    _check_rows(config, "a", a0, n)
    _check_rows(config, "b", b0, n)
    _check_rows(config, "result", result, 1)
    _check_rows(config, "out", out0, n)
    if s1 == s2:
        raise ValueError(f"s1 and s2 must be two buffer slots, not both {s1}")
    _own_strips(config, {"out": (range(out0, out0 + n), True),
                         "a": (range(a0, a0 + n), False), "b": (range(b0, b0 + n), False),
                         "result row": ([result], False)})
    body = [op(Opcode.BITCOUNT, imm=_READ_TO, a=result, d=s1),
            op(Opcode.BITCOUNT, imm=_CLEAR_NOT_TO, a=result, d=s2)]
    body += erase_rows(config, out0, n, [])
    first, second = (s1, s2) if want_max else (s2, s1)
    for i in range(n):
        body += [op(Opcode.BITCOUNT, imm=_COUNT_AND, a=a0 + i, b=first),
                 op(Opcode.BITCOUNT, imm=_COUNT_AND, a=b0 + i, b=second),
                 _write(config, out0 + i)]
    return body


def select_cycles(config, n: int, out0: int) -> int:
    """Issue cycles of :func:`select_program`."""
    erases = (len(_strips(range(out0, out0 + n), config.mtjs_per_strip))
              if config.technology == "nand_spin" else 0)
    return erases + 2 + 3 * n


def max_pool_program(config, value_rows, n: int, groups, tag: int, result: int, s1: int,
                     s2: int) -> tuple:
    """Micro-ops of the maximum of k values per lane by iterated comparison (seed 001 sec. 4.2,
    ``golden.pim.max_pool_compare``): the running maximum starts as the first value's rows;
    each further value is compared with it (:func:`compare_program`) and the larger one
    selectively copied (:func:`select_program`) into the other of the two row groups
    ``groups`` (ping-pong: the copy cannot overwrite the rows it reads).

    Returns
    -------
    (list of Instr, int)
        The micro-ops and the first row of the maximum (k = 1: the first value's rows, no
        micro-op).

    Raises
    ------
    ValueError
        No value; ``groups`` not two first rows; as :func:`compare_program` and
        :func:`select_program`.
    """
    value_rows = list(value_rows)
    if not value_rows:
        raise ValueError("value_rows must name at least one value")
    groups = list(groups)
    if len(groups) != 2:
        raise ValueError(f"groups must be two first rows (the ping-pong row groups), not "
                         f"{groups!r}")
    best, body = value_rows[0], []
    for j, cand in enumerate(value_rows[1:]):
        out0 = groups[j % 2]
        body += compare_program(config, cand, best, n, tag, result, s1, s2)
        body += select_program(config, cand, best, n, result, out0, s1, s2)
        best = out0
    return body, best


def relu_program(config, x0: int, n: int, out0: int, slot: int) -> list:
    """Micro-ops of ReLU on every lane's signed n-bit ``x`` (rows ``x0 ..``, two's complement):
    "the MSB of the input is read out first and used to determine whether to write zero" (seed
    001 sec. 4.2). The MSB row, inverted, goes to buffer slot ``slot`` (the sense clears the
    counters); per bit i the counters count ``AND(x_i, NOT msb)`` and write it into row
    ``out0 + i`` (a negative lane writes 0). Cycles: E + 1 + 2n; equals
    ``golden.layers.relu``.

    Raises
    ------
    ValueError
        Bad rows, slot or width; on NAND-SPIN result strips shared with the input.
    """
    _check_width("n", n)
    _check_rows(config, "x", x0, n)
    _check_rows(config, "out", out0, n)
    _check_row("slot", slot)
    body = [op(Opcode.BITCOUNT, imm=_CLEAR_NOT_TO, a=x0 + n - 1, d=slot)]
    body += erase_rows(config, out0, n, range(x0, x0 + n))
    for i in range(n):
        body += [op(Opcode.BITCOUNT, imm=_COUNT_AND, a=x0 + i, b=slot),
                 _write(config, out0 + i)]
    return body


def relu_cycles(config, n: int, out0: int) -> int:
    """Issue cycles of :func:`relu_program`."""
    erases = (len(_strips(range(out0, out0 + n), config.mtjs_per_strip))
              if config.technology == "nand_spin" else 0)
    return erases + 1 + 2 * n


class NandInmem(Route):
    name = "nand_inmem"

    def maps(self, layer) -> bool:
        """No layer through the compiler's chunks: the primitives are programs of their own
        (:func:`add_program`, :func:`scale_program`, :func:`compare_program`,
        :func:`select_program`, :func:`max_pool_program`, :func:`relu_program`), emitted as
        the in-memory post-processing of a layer whose dot products another route computed
        (``postproc='in_memory'``, ``sim.compile.nand_postproc.plan_stage``), and the seed's
        own convolution mapping (Fig. 7 / Fig. 10: the input's bit-planes stored once, the
        weight sliding over them, the counts cross-written by ``WriteSrc.BIT_COUNTER_XW`` and
        added in memory) is whole-layer programs that ``compile_model`` emits for a multiply
        convolution with ``conv_map='fig10'`` (``sim.compile.nand_conv.compile_stage``)."""
        return False

    def dot(self, stage, t, xrow, wslot, config) -> list:
        """There is no per-chunk dot product on this route (:meth:`maps` takes no layer, so
        the compiler never asks): a ``RouteError`` that names the whole-layer mapping."""
        from sim.routes import RouteError
        raise RouteError("route nand_inmem has no per-chunk dot product: a multiply "
                         "convolution on it is whole-layer programs, compiled with "
                         "conv_map='fig10' (sim.compile.nand_conv.compile_stage)")

    def lanes(self, model) -> BitCounterLanes:
        return BitCounterLanes(model._ones, model.config.bit_counter_bits)


register_route(NandInmem())
