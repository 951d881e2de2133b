"""Reduction unit: population count of a bit-plane row across all columns, shift-accumulate."""

from amaranth.hdl import Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["ReduceOp", "ColumnReduce", "popcount_tree"]


class ReduceOp(enum.Enum, shape=3):
    """Operation of the reduction unit in one cycle (0 is the idle ``HOLD``).

    With ``p = popcount(row)``: ``ADD`` acc + p; ``SUB2`` acc - 2p; ``SHIFT_ADD`` 2 acc + p;
    ``SHIFT_SUB2`` 2 acc - 2p; ``SHIFT`` 2 acc; ``CLEAR`` 0. The shift doubles what was
    accumulated over the more significant planes before this plane's count is weighed in
    (MSB-first shift-accumulate).
    """
    HOLD       = 0
    CLEAR      = 1
    ADD        = 2
    SUB2       = 3
    SHIFT_ADD  = 4
    SHIFT_SUB2 = 5
    SHIFT      = 6


def popcount_tree(bits):
    """Balanced adder tree over the bits of ``bits`` (each sum one bit wider than its terms)."""
    terms = [bits[i] for i in range(len(bits))]
    while len(terms) > 1:
        pairs = [a + b for a, b in zip(terms[0::2], terms[1::2], strict=False)]
        terms = pairs + ([terms[-1]] if len(terms) % 2 else [])
    return terms[0]


class ColumnReduce(wiring.Component):
    """Population count of one bit-plane row across the ``columns`` lanes, shift-accumulated.

    The write-free L1 route (``golden.pim.l1_write_free``) forms
    ``sum_k |x_k - w_k| = sum_b 2**b (popcount(x_b) + popcount(w_b) - 2 popcount(min_b))``
    MSB first: ``CLEAR``, then per plane b = n-1 .. 0 the three rows ``x_b`` (``SHIFT_ADD``),
    ``w_b`` (``ADD``) and ``min_b`` (``SUB2``), i.e. ``acc = 2 acc + p(x_b) + p(w_b) - 2
    p(min_b)``. The seed-001 AND + bit-count convolution uses ``SHIFT_ADD`` / ``SHIFT`` alone.

    Arithmetic is modulo ``2**acc_bits`` (two's complement wrap-around): a partial sum may go
    below 0 or above ``2**acc_bits - 1`` in between; the final sum of |x - w| over ``columns``
    lanes of ``operand_bits`` bits is below ``2**(reduce_bits + operand_bits) <=
    2**acc_bits`` (checked by the configuration), so it comes out exact as an unsigned number.

    Timing: one row per cycle. ``popcount`` is combinational from ``row``; ``acc`` is a
    register updated at the clock edge with the operation of the cycle. An n-bit write-free L1
    takes 1 + 3n cycles in one unit (three rows per plane); three units, or the three row
    counts summed into one, take the n sense cycles the golden model counts.

    Parameters
    ----------
    config : AcceleratorConfig
        A row of ``config.columns`` bits; the count is ``config.reduce_bits`` wide, the
        accumulator ``config.acc_bits``.

    Members
    -------
    op : In(ReduceOp)
        Operation of this cycle.
    row : In(columns)
        The bit-plane row (one bit per lane), usually the sense amplifier or min lane output.
    popcount : Out(reduce_bits)
        Number of ones in ``row``.
    acc : Out(acc_bits)
        The accumulator, modulo ``2**acc_bits``. Reset 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`.
    """

    def __init__(self, *, config):
        self._config = check_config(config)
        super().__init__({
            "op":       In(ReduceOp),
            "row":      In(config.columns),
            "popcount": Out(config.reduce_bits),
            "acc":      Out(config.acc_bits),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        acc, width = self.acc, self._config.acc_bits
        # One adder, acc <- base + addend, both acc_bits wide: the op selects base (acc, 2 acc or
        # 0) and addend (0, p or -2p). The sum truncates to acc_bits: the wrap-around is the
        # documented modular arithmetic. The selections are full-width signals of their own so
        # that the exported adder sees equal operand widths (Verilator WIDTHEXPAND otherwise).
        base, addend = Signal(width), Signal(width)
        m.d.comb += self.popcount.eq(popcount_tree(self.row))
        p = self.popcount
        with m.Switch(self.op):
            with m.Case(ReduceOp.CLEAR):
                m.d.comb += [base.eq(0), addend.eq(0)]
            with m.Case(ReduceOp.ADD):
                m.d.comb += [base.eq(acc), addend.eq(p)]
            with m.Case(ReduceOp.SUB2):
                m.d.comb += [base.eq(acc), addend.eq(-(p << 1))]
            with m.Case(ReduceOp.SHIFT_ADD):
                m.d.comb += [base.eq(acc << 1), addend.eq(p)]
            with m.Case(ReduceOp.SHIFT_SUB2):
                m.d.comb += [base.eq(acc << 1), addend.eq(-(p << 1))]
            with m.Case(ReduceOp.SHIFT):
                m.d.comb += [base.eq(acc << 1), addend.eq(0)]
            with m.Default():
                # HOLD and the unused code 7 (spelled out: Verilator CASEINCOMPLETE otherwise).
                m.d.comb += [base.eq(acc), addend.eq(0)]
        m.d.sync += acc.eq(base + addend)
        return m
