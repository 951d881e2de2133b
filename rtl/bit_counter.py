"""Per-column bit-counters: count sensed ones, shift out the LSB, clear (seed 001)."""

from amaranth.hdl import Cat, Const, Module
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["BitCounterOp", "BitCounter", "BITCOUNT_AND_FU", "bitcount_imm", "check_bitcount_imm"]


class BitCounterOp(enum.Enum, shape=2):
    """Operation of all bit-counters in one cycle (0 is the idle ``HOLD``)."""
    HOLD  = 0
    COUNT = 1
    SHIFT = 2
    CLEAR = 3


#: ``imm`` bit of a ``BITCOUNT`` micro-op (``rtl.core.Core``): the counted bit is the sense
#: amplifier's AND of row a with the FU line driven from buffer slot b (seed 001 Table 1, Fig.
#: 8b), instead of the 1-row read of row a. Bits 0-1 are the :class:`BitCounterOp`.
BITCOUNT_AND_FU = 4


def bitcount_imm(op, *, and_fu: bool = False) -> int:
    """The ``imm`` of a ``BITCOUNT`` micro-op: the counters' operation ``op`` (``COUNT``,
    ``SHIFT`` or ``CLEAR``), ``and_fu`` (``COUNT`` only) counting row a AND buffer[b].

    Raises
    ------
    ValueError
        ``op`` is ``HOLD`` (not a micro-op), or ``and_fu`` with an operation that senses nothing.
    """
    op = BitCounterOp(op)
    if op is BitCounterOp.HOLD:
        raise ValueError("BITCOUNT op must be COUNT, SHIFT or CLEAR, not HOLD")
    if and_fu and op is not BitCounterOp.COUNT:
        raise ValueError(f"BITCOUNT and_fu needs op COUNT (it senses), not {op.name}")
    return op.value | (BITCOUNT_AND_FU if and_fu else 0)


def check_bitcount_imm(imm: int) -> bool:
    """Whether ``imm`` is a valid ``BITCOUNT`` imm (:func:`bitcount_imm` makes them all:
    1 COUNT, 5 COUNT AND_FU, 2 SHIFT, 3 CLEAR)."""
    return imm in (1, 1 | BITCOUNT_AND_FU, 2, 3)


class BitCounter(wiring.Component):
    """One bit-counter per column, all driven by one operation.

    ``COUNT`` adds the lane's ``sensed`` bit to its count; ``SHIFT`` shifts the count right by
    one, its LSB leaving on ``lsb`` (the carry into the next bit position, seed 001 Fig. 8);
    ``CLEAR`` resets the count; ``HOLD`` keeps it. Each operation takes one cycle. ``lsb`` is
    combinational from the count, so during an operation it shows the LSB *before* it, as
    ``golden.pim.bitcounter_step`` returns it. ``lsb_next`` is the LSB *after* this cycle's
    operation (the count's bit 0 XOR ``sensed`` for ``COUNT``, its bit 1 for ``SHIFT``, 0 for
    ``CLEAR``): the core's write-back bypass (``rtl.core.Core``, ``WriteSrc.BIT_COUNTER``), so
    that the write word line can take the LSB of a count still being made.

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
    lsb_next : Out(columns)
        LSB of each count after this cycle's operation.
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
            "lsb_next": Out(n),
            "count":  Out(data.ArrayLayout(w, n)),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        counts = [self.count[i] for i in range(self._config.columns)]
        m.d.comb += [self.lsb[i].eq(c[0]) for i, c in enumerate(counts)]
        bit1 = [c[1] if len(c) > 1 else Const(0, 1) for c in counts]
        with m.Switch(self.op):
            with m.Case(BitCounterOp.HOLD):
                m.d.comb += self.lsb_next.eq(self.lsb)
            with m.Case(BitCounterOp.COUNT):
                m.d.comb += self.lsb_next.eq(self.lsb ^ self.sensed)
            with m.Case(BitCounterOp.SHIFT):
                m.d.comb += self.lsb_next.eq(Cat(*bit1))
            with m.Case(BitCounterOp.CLEAR):
                m.d.comb += self.lsb_next.eq(0)
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
