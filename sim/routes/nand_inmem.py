"""NAND-SPIN's in-memory primitives on the per-column bit-counters (``nand_inmem``, seed 001
sec. 4.1, Fig. 8).

Hardware (``rtl.routes``, ``rtl.bit_counter``): one bit-counter per mat column.
``BITCOUNT`` COUNT senses row a (a 1-row read, or with ``imm`` bit 2 the AND of row a with the
FU line driven from buffer slot b, seed 001 Table 1) and adds each column's bit to its counter;
SHIFT and CLEAR act on the counters alone. The column's output multiplexer picks the
bit-counter instead of the sense amplifier when a ``WRITE_ROW`` / ``PROGRAM`` takes
``WriteSrc.BIT_COUNTER``: the counters' LSBs are written through the write word line into row
a, and the counters shift right in the same micro-op (the LSB leaves, the rest is the carry
into the next bit position, Fig. 8). The write sees the counters as left by every micro-op
issued before it (the core bypasses the counter operation in flight), so counts and
write-backs issue back to back with no bubble.

Data layout (seed 001 Fig. 8: "stores data element-by-element vertically"): an n-bit operand
of a lane sits in its column, bit b in row ``r0 + b``. Result rows are written back
bit by bit, LSB first. On NAND-SPIN (``technology="nand_spin"``) a write is a ``PROGRAM`` of
the 1-bits into an erased strip, so the result rows' strips are erased first (one ``ERASE``
per strip of ``mtjs_per_strip`` rows, the seed's "empty rows reserved for the results"); they
must not share a strip with an operand. Other technologies write with ``WRITE_ROW``.

Primitives (micro-op programs, :func:`add_program`, :func:`scale_program`), each equal to
its ``golden.pim`` function:

* addition of k operands in one column (Fig. 8a, ``golden.pim.bitcounter_add``): per bit b,
  LSB first, the k bits are counted on top of the carry, then the LSB is written back as sum
  bit b; ``n + bit_length(k - 1)`` sum rows. Cycles: ``E + 1 + k n + n + bit_length(k - 1)``
  (E erases, one CLEAR, k n COUNTs, one write per sum row);
* multiplication by a scale shared by every lane (Fig. 8b, ``golden.pim.scale_multiply``):
  the scale's bit j is buffer slot ``s0 + j`` (all ones or all zeros: the buffer holds one
  multiplier); product bit k counts ``AND(a_i, s_{k-i})`` for every i, then writes the LSB.
  Cycles: ``E + 1 + a_bits * s_bits + a_bits + s_bits``.

Comparison with Tag and Result rows (Fig. 9), max pooling and ReLU need the buffer written
from the sense amplifiers and counters, or a write masked by them: not built yet.
"""

from __future__ import annotations

from rtl.bit_counter import BitCounterOp, bitcount_imm
from rtl.isa import Opcode, WriteSrc

from .base import LaneModel, Route, op, register_route

__all__ = ["NandInmem", "BitCounterLanes", "add_program", "scale_program", "scale_words",
           "erase_rows", "add_cycles", "scale_cycles"]

_COUNT = bitcount_imm(BitCounterOp.COUNT)
_COUNT_AND = bitcount_imm(BitCounterOp.COUNT, and_fu=True)
_CLEAR = bitcount_imm(BitCounterOp.CLEAR)


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
        self.write_sources = {WriteSrc.BIT_COUNTER.value: self.write_back}

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


class NandInmem(Route):
    name = "nand_inmem"

    def maps(self, layer) -> bool:
        """No layer: the primitives are programs of their own (:func:`add_program`,
        :func:`scale_program`); the in-memory post-processing mode that would map layers onto
        them is not built yet."""
        return False

    def dot(self, stage, t, xrow, wslot, config) -> list:
        raise NotImplementedError("route nand_inmem maps no layer yet: its primitives are "
                                  "add_program / scale_program, the in-memory "
                                  "post-processing mode is not built")

    def lanes(self, model) -> BitCounterLanes:
        return BitCounterLanes(model._ones, model.config.bit_counter_bits)


register_route(NandInmem())
