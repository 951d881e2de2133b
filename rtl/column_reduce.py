"""Reduction unit: population count of a bit-plane row across all columns, shift-accumulate."""

from amaranth.hdl import Module, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["ReduceOp", "ColumnReduce", "popcount_tree"]


class ReduceOp(enum.Enum, shape=4):
    """Operation of the reduction unit in one cycle (0 is the idle ``HOLD``).

    With ``p = popcount(row)``: ``ADD`` acc + p; ``SUB2`` acc - 2p; ``SHIFT_ADD`` 2 acc + p;
    ``SHIFT_SUB2`` 2 acc - 2p; ``SHIFT`` 2 acc; ``CLEAR`` 0. The shift doubles what was
    accumulated over the more significant planes before this plane's count is weighed in
    (MSB-first shift-accumulate). These ignore ``row_w`` and ``row_min``.

    The write-free L1 plane ops weigh all three rows in one cycle, with
    ``q = popcount(row) + popcount(row_w) - 2 popcount(row_min)``: ``L1_FIRST`` q (the MSB
    plane, the clear folded in); ``L1_PLANE`` 2 acc + q. With ``row_w`` and ``row_min`` held
    at 0, ``L1_FIRST`` loads ``p`` (a first plane without a separate clear cycle).

    ``SUB`` acc - p and ``SHIFT_SUB`` 2 acc - p weigh a plane of a two's complement operand's
    sign bit (AND + bit-count with signed weights, seed 001 eq. 1).
    """
    HOLD       = 0
    CLEAR      = 1
    ADD        = 2
    SUB2       = 3
    SHIFT_ADD  = 4
    SHIFT_SUB2 = 5
    SHIFT      = 6
    L1_FIRST   = 7
    L1_PLANE   = 8
    SUB        = 9
    SHIFT_SUB  = 10


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
    MSB first, one bit-plane per cycle: ``x_b`` on ``row``, ``w_b`` on ``row_w`` and ``min_b``
    on ``row_min``, ``L1_FIRST`` for the MSB plane (``acc = p(x_b) + p(w_b) - 2 p(min_b)``) and
    ``L1_PLANE`` for each further plane b = n-2 .. 0 (``acc = 2 acc + p(x_b) + p(w_b) - 2
    p(min_b)``). The same sum also runs one row per cycle on ``row`` alone: ``CLEAR``, then per
    plane ``x_b`` ``SHIFT_ADD``, ``w_b`` ``ADD``, ``min_b`` ``SUB2``. The seed-001 AND +
    bit-count convolution uses ``SHIFT_ADD`` / ``SHIFT`` alone.

    Arithmetic is modulo ``2**acc_bits`` (two's complement wrap-around): a partial sum may go
    below 0 or above ``2**acc_bits - 1`` in between; the final sum of ``|x - w|`` over ``columns``
    lanes of ``operand_bits`` bits is below ``2**(reduce_bits + operand_bits) <=
    2**acc_bits`` (checked by the configuration), so it comes out exact as an unsigned number.

    Timing: ``popcount`` is combinational from ``row``; ``acc`` is a register updated at the
    clock edge with the operation of the cycle. With ``L1_FIRST`` / ``L1_PLANE`` an n-bit
    write-free L1 over all ``columns`` lanes takes exactly n cycles, one per bit-plane: the n
    sense cycles the golden model counts, the bound of one row sensed per lane per cycle. One
    row per cycle (``CLEAR``, ``SHIFT_ADD`` / ``ADD`` / ``SUB2``) it takes 1 + 3n.

    Parameters
    ----------
    config : AcceleratorConfig
        A row of ``config.columns`` bits; the count is ``config.reduce_bits`` wide, the
        accumulator ``config.acc_bits``.
    l1_rows : bool
        Build ``row_w`` and ``row_min`` and their popcounts (default), which only the
        write-free route uses. Without them (a core with no ``write_free`` route) the two
        ports do not exist and ``L1_FIRST`` / ``L1_PLANE`` weigh ``row`` alone, as with the
        other two rows held at 0.

    Members
    -------
    op : In(ReduceOp)
        Operation of this cycle.
    row : In(columns)
        The bit-plane row (one bit per lane), usually the sense amplifier or min lane output.
    row_w : In(columns)
        Second row, counted only by ``L1_FIRST`` / ``L1_PLANE`` (the ``w_b`` plane); only with
        ``l1_rows``.
    row_min : In(columns)
        Third row, counted only by ``L1_FIRST`` / ``L1_PLANE``, weight -2 (the ``min_b`` plane);
        only with ``l1_rows``.
    popcount : Out(reduce_bits)
        Number of ones in ``row``.
    acc : Out(acc_bits)
        The accumulator, modulo ``2**acc_bits``. Reset 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`, or ``l1_rows`` not a
        bool.
    """

    def __init__(self, *, config, l1_rows=True):
        self._config = check_config(config)
        if not isinstance(l1_rows, bool):
            raise TypeError(f"l1_rows must be a bool, not {l1_rows!r}")
        self._l1_rows = l1_rows
        ports = {"op": In(ReduceOp), "row": In(config.columns)}
        if l1_rows:
            ports.update(row_w=In(config.columns), row_min=In(config.columns))
        ports.update(popcount=Out(config.reduce_bits), acc=Out(config.acc_bits))
        super().__init__(ports)

    @property
    def config(self):
        return self._config

    @property
    def l1_rows(self):
        """Whether ``row_w`` and ``row_min`` exist."""
        return self._l1_rows

    def elaborate(self, platform):
        m = Module()
        acc, width = self.acc, self._config.acc_bits
        # One adder, acc <- base + addend, both acc_bits wide: the op selects base (acc, 2 acc or
        # 0) and addend (0, p, -2p or the L1 plane q). The sum truncates to acc_bits: the
        # wrap-around is the documented modular arithmetic. The selections are full-width
        # signals of their own so that the exported adder sees equal operand widths (Verilator
        # WIDTHEXPAND otherwise).
        base, addend = Signal(width), Signal(width)
        m.d.comb += self.popcount.eq(popcount_tree(self.row))
        p = self.popcount
        # The L1 plane q = p(row) + p(row_w) - 2 p(row_min), in [-2 columns, 2 columns]: a
        # signed reduce_bits + 2 value, each adder one bit wider than its equally wide operands;
        # the mux sign-extends it to acc_bits (a negative q becomes its two's complement).
        if self._l1_rows:
            q = p + popcount_tree(self.row_w) - (popcount_tree(self.row_min) << 1)
        else:
            q = p
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
            with m.Case(ReduceOp.L1_FIRST):
                m.d.comb += [base.eq(0), addend.eq(q)]
            with m.Case(ReduceOp.L1_PLANE):
                m.d.comb += [base.eq(acc << 1), addend.eq(q)]
            with m.Case(ReduceOp.SUB):
                m.d.comb += [base.eq(acc), addend.eq(-p)]
            with m.Case(ReduceOp.SHIFT_SUB):
                m.d.comb += [base.eq(acc << 1), addend.eq(-p)]
            with m.Default():
                # HOLD and the unused codes 11 .. 15 (spelled out: Verilator CASEINCOMPLETE
                # otherwise).
                m.d.comb += [base.eq(acc), addend.eq(0)]
        m.d.sync += acc.eq(base + addend)
        return m
