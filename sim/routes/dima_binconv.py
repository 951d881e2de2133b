"""The DIMA binary-weight convolver's FA/FS step (``dima_binconv``, seed 002 sec. 3.2, Fig. 4a).

Layout (3-column activation, seed 002 sec. 3.1): the mat's columns pair up, (2g, 2g+1) feed
FA/FS lane g. An n-bit operand pair sits in n rows, bit b in row ``r0 + b``: the accumulator
``A`` in the even column 2g, the input ``X`` in the odd column 2g+1, so one sensed row brings
both bits of every lane at once. The weight buffer holds a *sign word*: bit 2g+1 set means
lane g's {-1, +1} weight is -1, and the lane subtracts its input (the seed's "combined batch":
the kernel's sign decides add or subtract of the input, no multiplier).

Micro-ops of one n-bit add/sub ``S = A +- X mod 2**n`` into rows ``d0 + b`` (even columns):

* ``FA_STEP`` a = ``r0 + b``, b = the sign word's slot, imm bit 0 on b = 0 (carry / borrow in
  0): the lanes compute ``S_b`` and keep the carry (``ADD``) or borrow (``SUB``) in their latch
  (``rtl.fa_fs``, ``ADDSUB`` / ``ADDSUB0``), out from the S2 of the step (issue c, visible c + 2);
* ``WRITE_ROW`` a = ``d0 + b``, imm = ``WriteSrc.FA_FS``: ``S_b`` written into the even columns
  of row ``d0 + b`` (the odd columns keep their cells): one real array write per bit.

One sense cycle and one write cycle per bit, as the seed's 2n (Fig. 4a). The write of bit b
must be issued 2 cycles after its FA_STEP at the earliest and before the FA_STEP of bit b + 1
reaches S2's out, so the program software-pipelines them (:func:`addsub_program`):
``FA_0 FA_1 WB_0 FA_2 WB_1 .. FA_{n-1} WB_{n-2} WB_{n-1}``: 2n micro-ops issued back to back,
2n cycles per n-bit add/sub for n >= 2 (n = 1 needs one NOP: 3 cycles). ``d0 = r0`` adds in
place; with ``d0`` another row group whose odd columns hold the next input, K terms chain
through K row groups without moving data.

The compiler half (seed 002 Fig. 4b) is :mod:`sim.compile.dima_map`: a ``bin_gconv2d`` layer
(depthwise with channel multiplier m, pointwise, any grouped case) maps onto the lanes of the
mat (the class A role), one output position's partial sum per lane, its K terms chained through
K row groups by :meth:`DimaBinconv.dot`.
"""

from __future__ import annotations

from rtl.isa import Instr, Opcode, Operand, WriteSrc

from .base import LaneModel, Route, op, register_route

__all__ = ["DimaBinconv", "FaFsLanes", "addsub_program", "even_columns"]


def even_columns(width: int) -> int:
    """The row with the even columns of a ``width``-column mat set (the lanes' A columns)."""
    return sum(1 << 2 * g for g in range(width // 2))


class FaFsLanes(LaneModel):
    """The FA/FS lanes (``rtl.fa_fs`` in ``ADDSUB`` mode) of every column pair, lane g at bit
    2g of the model's rows.

    Their ``out`` (the latest sum bits) is written at the end of the S2 cycle of an FA_STEP
    (issue c, visible from c + 2) and read at the S1 of a write from ``FA_FS``: the model
    keeps the last two values and the issue cycle of the step that wrote the newer one.
    """

    def __init__(self, ones: int):
        super().__init__(ones)
        self._even = even_columns(ones.bit_length())
        self.latch = 0
        self.out_new = self.out_old = 0
        self.out_new_cycle = -10
        self.ops = {Opcode.FA_STEP.value: self.fa_step}
        self.write_sources = {WriteSrc.FA_FS.value: self.out_at}
        self.write_masks = {WriteSrc.FA_FS.value: self._even}

    def start(self) -> None:
        self.out_new_cycle = -10

    def fa_step(self, imm, x, w, c):
        """``FA_STEP``: lane g adds (sign bit ``w[2g+1]`` 0) or subtracts (1) ``x[2g+1]`` to /
        from ``x[2g]``, carry / borrow in 0 when ``imm`` bit 0 is set; no reduction."""
        e = self._even
        a, b, s = x & e, (x >> 1) & e, (w >> 1) & e
        cin = 0 if imm & 1 else self.latch
        carry = (a & b) | (a & cin) | (b & cin)
        na = ~a & e
        borrow = (na & b) | (na & cin) | (b & cin)
        self.out_old = self.out_new
        self.out_new = a ^ b ^ cin
        self.out_new_cycle = c
        self.latch = ((s & borrow) | (~s & carry)) & e
        return None

    def out_at(self, c: int) -> int:
        """The lanes' ``out`` (at the even columns) as a write issued in cycle ``c`` reads it."""
        return self.out_new if self.out_new_cycle <= c - 2 else self.out_old


def addsub_program(r0: int, d0: int, n: int, slot: int) -> list:
    """The micro-ops of one n-bit add/sub: rows ``r0 .. r0 + n - 1`` (A even, X odd columns)
    through the FA/FS lanes, signs from buffer slot ``slot``, sums into the even columns of
    rows ``d0 .. d0 + n - 1``; 2n micro-ops for n >= 2, 3 for n = 1 (module docstring).
    ``slot`` may also be a loop-relative ``rtl.isa.Operand`` (a compiled program's sign word
    of the loop's output channel).

    Raises
    ------
    ValueError
        ``n`` below 1, or a negative row or slot.
    """
    for name, v, lo in (("n", n, 1), ("r0", r0, 0), ("d0", d0, 0), ("slot", slot, 0)):
        if name == "slot" and isinstance(v, Operand):
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name} must be an int >= {lo}, not {v!r}")

    def fa(b):
        return op(Opcode.FA_STEP, imm=int(b == 0), a=r0 + b, b=slot)

    def wb(b):
        return op(Opcode.WRITE_ROW, imm=WriteSrc.FA_FS.value, a=d0 + b)

    if n == 1:
        return [fa(0), Instr(Opcode.NOP), wb(0)]
    body = [fa(0), fa(1), wb(0)]
    for b in range(2, n):
        body += [fa(b), wb(b - 1)]
    return body + [wb(n - 1)]


class DimaBinconv(Route):
    name = "dima_binconv"

    def maps(self, layer) -> bool:
        """Binarized ({-1, +1}) convolutions, ``bin_gconv2d`` (seed 002 Fig. 4b)."""
        return layer.kind == "bin_gconv2d"

    def dot(self, stage, t, xrow, wslot, config) -> list:
        """The chain of one output channel's partial sums on every lane of a stage mapped by
        :mod:`sim.compile.dima_map` (``stage.dima``: F_t terms of N bits): add/sub j' reads row
        group
        ``xrow(j')`` (N rows from there: the partial sum in the even, term j' of each lane in
        the odd columns) with the sign word at slot ``wslot(j')`` and writes its sum into the
        even columns of group ``xrow(j' + 1)``; ``2 * N * F_t`` cycles. ``t`` is unused (the
        lanes hold every tile of the fan-in side by side)."""
        plan = stage.dima
        body = []
        for j in range(plan.terms):
            body += addsub_program(xrow(j), xrow(j + 1), plan.acc_bits, wslot(j))
        return body

    def lanes(self, model) -> FaFsLanes:
        return FaFsLanes(model._ones)


register_route(DimaBinconv())
