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
    single-cycle carry-chain update). ``ADDSUB``: lane by lane ``ADD`` or ``SUB`` as ``sub``
    says (the seed-002 binary-weight convolver: the sign of each lane's weight picks add or
    subtract of its input); ``ADDSUB0``: the same with carry / borrow in 0 (bit 0 of an
    add/sub: no separate ``CLEAR`` cycle).
    """
    HOLD  = 0
    ADD   = 1
    SUB   = 2
    CLEAR = 3
    SUM   = 4
    CARRY = 5
    ADDSUB = 6
    ADDSUB0 = 7


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
        ``config.columns`` lanes are built, unless ``lanes`` says otherwise.
    lanes : int or None
        Number of lanes (default ``config.columns``); the core's ``dima_binconv`` route has
        one per column pair.

    Members
    -------
    op : In(FaFsOp)
        Operation of this cycle.
    a : In(lanes)
        First operand bit of each lane (the minuend for ``SUB``).
    b : In(lanes)
        Second operand bit of each lane (the subtrahend for ``SUB``).
    sub : In(lanes)
        ``ADDSUB`` / ``ADDSUB0``: lane g subtracts if bit g is set, else adds.
    out : Out(lanes)
        Sum / difference (or, after ``CARRY``, carry) bit of the last operation. Reset 0.
    latch : Out(lanes)
        Carry or borrow latch. Reset 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`.
    """

    def __init__(self, *, config, lanes=None):
        self._config = check_config(config)
        n = config.columns if lanes is None else lanes
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"lanes must be a positive int, not {lanes!r}")
        super().__init__({
            "op":    In(FaFsOp),
            "a":     In(n),
            "b":     In(n),
            "sub":   In(n),
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
        # ADDSUB0: carry / borrow in 0, so sum a ^ b, carry a & b, borrow ~a & b.
        s0 = a ^ b
        c0 = (~self.sub & a & b) | (self.sub & ~a & b)
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
            with m.Case(FaFsOp.ADDSUB):
                m.d.sync += [self.out.eq(s),
                             c.eq((~self.sub & carry) | (self.sub & borrow))]
            with m.Case(FaFsOp.ADDSUB0):
                m.d.sync += [self.out.eq(s0), c.eq(c0)]
            with m.Default():
                # HOLD; spelled out so that the exported case is complete (Verilator
                # CASEINCOMPLETE otherwise).
                m.d.sync += [self.out.eq(self.out), c.eq(c)]
        return m
