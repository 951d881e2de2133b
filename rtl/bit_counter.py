"""Per-column bit-counters: count sensed ones, shift out the LSB, clear (seed 001)."""

from amaranth.hdl import Module
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["BitCounterOp", "BitCounter"]


class BitCounterOp(enum.Enum, shape=2):
    """Operation of all bit-counters in one cycle (0 is the idle ``HOLD``)."""
    HOLD  = 0
    COUNT = 1
    SHIFT = 2
    CLEAR = 3


class BitCounter(wiring.Component):
    """One bit-counter per column, all driven by one operation.

    ``COUNT`` adds the lane's ``sensed`` bit to its count; ``SHIFT`` shifts the count right by
    one, its LSB leaving on ``lsb`` (the carry into the next bit position, seed 001 Fig. 8);
    ``CLEAR`` resets the count; ``HOLD`` keeps it. Each operation takes one cycle. ``lsb`` is
    combinational from the count, so during an operation it shows the LSB *before* it, as
    ``golden.pim.bitcounter_step`` returns it.

    A counter is ``config.bit_counter_bits`` wide: it holds the count of all ``rows`` ones of a
    column. Counting beyond ``2**bit_counter_bits - 1`` wraps around; the controller never asks
    for it.

    Parameters
    ----------
    config : AcceleratorConfig
        ``config.columns`` counters of ``config.bit_counter_bits`` bits are built.

    Members
    -------
    op : In(BitCounterOp)
        Operation of this cycle.
    sensed : In(columns)
        Bit to count in each column (``COUNT``), usually the sense amplifier output.
    lsb : Out(columns)
        LSB of each count.
    count : Out(ArrayLayout(bit_counter_bits, columns))
        The counts; lane ``i`` at bits ``i*bit_counter_bits`` of the flat Verilog port. Reset 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`.
    """

    def __init__(self, *, config):
        self._config = check_config(config)
        n, w = config.columns, config.bit_counter_bits
        super().__init__({
            "op":     In(BitCounterOp),
            "sensed": In(n),
            "lsb":    Out(n),
            "count":  Out(data.ArrayLayout(w, n)),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        counts = [self.count[i] for i in range(self._config.columns)]
        m.d.comb += [self.lsb[i].eq(c[0]) for i, c in enumerate(counts)]
        # One switch for all lanes (not one per lane): same logic, a much smaller netlist to
        # export. HOLD is spelled out so that the Verilog case is complete (Verilator
        # CASEINCOMPLETE otherwise).
        with m.Switch(self.op):
            with m.Case(BitCounterOp.HOLD):
                m.d.sync += [c.eq(c) for c in counts]
            with m.Case(BitCounterOp.COUNT):
                m.d.sync += [c.eq(c + self.sensed[i]) for i, c in enumerate(counts)]
            with m.Case(BitCounterOp.SHIFT):
                m.d.sync += [c.eq(c >> 1) for c in counts]
            with m.Case(BitCounterOp.CLEAR):
                m.d.sync += [c.eq(0) for c in counts]
        return m
