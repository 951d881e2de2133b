"""Per-column bit-counters: count sensed ones, shift out the LSB, clear (seed 001)."""

from amaranth.hdl import Cat, Const, Module
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["BitCounterOp", "BitCountOut", "BitCounter", "BITCOUNT_AND_FU", "BITCOUNT_OUT_LSB",
           "bitcount_imm", "bitcount_senses", "check_bitcount_imm"]


class BitCounterOp(enum.Enum, shape=2):
    """Operation of all bit-counters in one cycle (0 is the idle ``HOLD``)."""
    HOLD  = 0
    COUNT = 1
    SHIFT = 2
    CLEAR = 3


#: ``imm`` bit of a ``BITCOUNT`` micro-op (``rtl.core.Core``): the sense amplifiers AND row a
#: with the FU line driven from buffer slot b (seed 001 Table 1, Fig. 8b) instead of a 1-row
#: read of row a. Bits 0-1 are the :class:`BitCounterOp`, bits 3-4 the :class:`BitCountOut`.
BITCOUNT_AND_FU = 4
#: Lowest ``imm`` bit of a ``BITCOUNT``'s :class:`BitCountOut`.
BITCOUNT_OUT_LSB = 3


class BitCountOut(enum.Enum, shape=2):
    """The output multiplexer of a ``BITCOUNT`` micro-op (seed 001 Fig. 3: the sense
    amplifier's bit or the bit-counter's, per column), written into weight-buffer slot d in
    the micro-op's S2: ``NONE`` no write; ``SA`` the sensed row; ``NOT_SA`` its inverse (the
    Tag row's inverse of Fig. 9); ``LSB`` the counters' LSBs after the micro-op's operation."""
    NONE   = 0
    SA     = 1
    NOT_SA = 2
    LSB    = 3


def bitcount_imm(op, *, and_fu: bool = False, out=BitCountOut.NONE) -> int:
    """The ``imm`` of a ``BITCOUNT`` micro-op: the counters' operation ``op``, ``and_fu``
    (sense row a AND buffer[b]), the output multiplexer ``out`` into buffer slot d.

    The micro-op senses row a when ``op`` is ``COUNT`` or ``out`` is ``SA`` / ``NOT_SA``.

    Raises
    ------
    ValueError
        ``op`` ``HOLD`` with ``out`` ``NONE`` (a micro-op doing nothing), or ``and_fu`` on a
        micro-op that senses nothing.
    """
    op, out = BitCounterOp(op), BitCountOut(out)
    imm = op.value | (BITCOUNT_AND_FU if and_fu else 0) | out.value << BITCOUNT_OUT_LSB
    if not check_bitcount_imm(imm):
        if op is BitCounterOp.HOLD and out is BitCountOut.NONE:
            raise ValueError("BITCOUNT with op HOLD needs an out (SA, NOT_SA, LSB)")
        raise ValueError(f"BITCOUNT and_fu needs a sense (op COUNT or out SA / NOT_SA), not "
                         f"op {op.name} out {out.name}")
    return imm


def bitcount_senses(imm: int) -> bool:
    """Whether a ``BITCOUNT`` with ``imm`` senses row a (COUNT, or out SA / NOT_SA)."""
    out = imm >> BITCOUNT_OUT_LSB & 3
    return imm & 3 == BitCounterOp.COUNT.value or out in (BitCountOut.SA.value,
                                                          BitCountOut.NOT_SA.value)


def check_bitcount_imm(imm: int) -> bool:
    """Whether ``imm`` is a valid ``BITCOUNT`` imm: not HOLD without an out, no AND without a
    sense (:func:`bitcount_imm`)."""
    if imm & 3 == BitCounterOp.HOLD.value and imm >> BITCOUNT_OUT_LSB == 0:
        return False
    return not (imm & BITCOUNT_AND_FU) or bitcount_senses(imm)


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
