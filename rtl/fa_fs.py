"""Per-column full adder / full subtractor with its carry or borrow latch (seeds 000, 002)."""

from amaranth.hdl import Module
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["FaFsOp", "FaFs"]


class FaFsOp(enum.Enum, shape=3):
    """Operation of all FA/FS lanes in one cycle (0 is the idle ``HOLD``).

    ``ADD`` / ``SUB``: one full-adder / full-subtractor bit step, the latch as carry / borrow
    in and out (seed 002 3-column activation into the FA/FS unit). ``CLEAR``: latch to 0.
    ``SUM`` / ``CARRY``: the seed-000 reconfigurable full adder in sum mode (out = a^b^latch,
    latch kept) or carry mode (out = majority(a, b, latch), written into the latch: the
    single-cycle carry-chain update).
    """
    HOLD  = 0
    ADD   = 1
    SUB   = 2
    CLEAR = 3
    SUM   = 4
    CARRY = 5


class FaFs(wiring.Component):
    """One FA/FS unit per column, all lanes driven by one operation.

    Timing: every operation takes one cycle; ``out`` and ``latch`` are registers updated at the
    clock edge. An n-bit add or subtract of vertically stored operands is ``CLEAR`` then one
    ``ADD``/``SUB`` per bit, LSB first; the seed-002 schedule of 2 cycles per bit (2n cycles)
    interleaves each step with the write-back cycle of the array, during which this block sees
    ``HOLD``. The seed-000 route is ``SUM`` then ``CARRY`` per bit, also 2 cycles per bit. The
    final carry (borrow) stays in ``latch``.

    Parameters
    ----------
    config : AcceleratorConfig
        ``config.columns`` lanes are built.

    Members
    -------
    op : In(FaFsOp)
        Operation of this cycle.
    a : In(columns)
        First operand bit of each lane (the minuend for ``SUB``).
    b : In(columns)
        Second operand bit of each lane (the subtrahend for ``SUB``).
    out : Out(columns)
        Sum / difference (or, after ``CARRY``, carry) bit of the last operation. Reset 0.
    latch : Out(columns)
        Carry or borrow latch. Reset 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`.
    """

    def __init__(self, *, config):
        self._config = check_config(config)
        n = config.columns
        super().__init__({
            "op":    In(FaFsOp),
            "a":     In(n),
            "b":     In(n),
            "out":   Out(n),
            "latch": Out(n),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        a, b, c = self.a, self.b, self.latch
        s = a ^ b ^ c
        carry = (a & b) | (a & c) | (b & c)
        borrow = (~a & b) | (~a & c) | (b & c)
        with m.Switch(self.op):
            with m.Case(FaFsOp.ADD):
                m.d.sync += [self.out.eq(s), c.eq(carry)]
            with m.Case(FaFsOp.SUB):
                m.d.sync += [self.out.eq(s), c.eq(borrow)]
            with m.Case(FaFsOp.CLEAR):
                m.d.sync += c.eq(0)
            with m.Case(FaFsOp.SUM):
                m.d.sync += self.out.eq(s)
            with m.Case(FaFsOp.CARRY):
                m.d.sync += [self.out.eq(carry), c.eq(carry)]
            with m.Default():
                # HOLD and the unused codes 6, 7; spelled out so that the exported case is
                # complete (Verilator CASEINCOMPLETE otherwise).
                m.d.sync += [self.out.eq(self.out), c.eq(c)]
        return m
