"""Absolute-difference lanes, bit-serial LSB first: sign pass, then larger - smaller (seed 000)."""

from amaranth.hdl import Module, Mux
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["AbsDiffOp", "AbsDiffLane"]


class AbsDiffOp(enum.Enum, shape=2):
    """Operation of all abs-diff lanes in one cycle (0 is the idle ``HOLD``).

    ``SIGN``: one full-subtractor step of ``x - w`` whose borrow goes into ``swap`` (the sign
    pass keeps nothing else). ``DIFF``: one full-subtractor step of ``big - small``, the
    operands swapped by ``swap``, borrow in and out through ``borrow``, the difference bit into
    ``out``. ``CLEAR``: ``swap``, ``borrow`` and ``out`` to 0.
    """
    HOLD  = 0
    SIGN  = 1
    DIFF  = 2
    CLEAR = 3


class AbsDiffLane(wiring.Component):
    """One ``|x - w|`` lane per column: the seed-000 in-situ absolute difference.

    The procedure of ``golden.pim.abs_diff``, bit-serial and LSB first on vertically stored
    operands: (1) sign pass, ``SIGN`` for bits 0 .. n-1: ripple ``x - w`` through the full
    subtractor and keep only the borrow, so that afterwards ``swap`` is 1 iff x < w; (2)
    difference pass, ``DIFF`` for bits 0 .. n-1: ``big - small`` with ``big = w if swap else
    x``, ``small = x if swap else w``; each difference bit appears on ``out`` and is written
    back into the array during the next cycle, in which this block sees ``HOLD``. The final
    borrow is 0 by construction.

    ``first`` marks the step of bit 0 of a pass: the step then takes its borrow in as 0, so a
    pass needs no separate clear cycle. The full subtractor is the three gates of
    ``rtl.fa_fs`` reimplemented here, not an instance of :class:`~rtl.fa_fs.FaFs`: a lane
    needs two latches (the sign flag and the borrow) and the operand swap in front of the
    subtractor, and clearing the single ``FaFs`` latch between the passes would cost a cycle.

    Timing: every operation takes one cycle; ``out``, ``swap`` and ``borrow`` are registers
    updated at the clock edge. ``|x - w|`` of n bits takes n ``SIGN`` cycles, then n times
    ``DIFF`` + a write-back cycle: 3n cycles, the ``cycles`` of ``golden.pim.abs_diff``.

    Parameters
    ----------
    config : AcceleratorConfig
        ``config.columns`` lanes are built.

    Members
    -------
    op : In(AbsDiffOp)
        Operation of this cycle.
    first : In(1)
        This ``SIGN`` / ``DIFF`` step is bit 0 of its pass (borrow in 0).
    x_b : In(columns)
        Sensed bit of x in each lane (the current bit position).
    w_b : In(columns)
        Sensed bit of w in each lane.
    out : Out(columns)
        Difference bit of the last ``DIFF``: bit i of ``|x - w|`` after the ``DIFF`` of bit i.
        Reset 0.
    swap : Out(columns)
        Sign flag, the borrow of the sign pass: 1 iff x < w once the pass is done. Reset 0.
    borrow : Out(columns)
        Borrow latch of the difference pass. Reset 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`.
    """

    def __init__(self, *, config):
        self._config = check_config(config)
        n = config.columns
        super().__init__({
            "op":     In(AbsDiffOp),
            "first":  In(1),
            "x_b":    In(n),
            "w_b":    In(n),
            "out":    Out(n),
            "swap":   Out(n),
            "borrow": Out(n),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        n = self._config.columns
        x, w = self.x_b, self.w_b
        keep = Mux(self.first, 0, (1 << n) - 1)   # all lanes: borrow in forced to 0 on bit 0

        def fs_borrow(a, b, c):
            return (~a & b) | (~a & c) | (b & c)

        sign_in = self.swap & keep
        big = (self.swap & w) | (~self.swap & x)
        small = (self.swap & x) | (~self.swap & w)
        diff_in = self.borrow & keep
        with m.Switch(self.op):
            with m.Case(AbsDiffOp.HOLD):
                m.d.sync += [self.out.eq(self.out), self.swap.eq(self.swap),
                             self.borrow.eq(self.borrow)]
            with m.Case(AbsDiffOp.SIGN):
                m.d.sync += self.swap.eq(fs_borrow(x, w, sign_in))
            with m.Case(AbsDiffOp.DIFF):
                m.d.sync += [self.out.eq(big ^ small ^ diff_in),
                             self.borrow.eq(fs_borrow(big, small, diff_in))]
            with m.Case(AbsDiffOp.CLEAR):
                m.d.sync += [self.out.eq(0), self.swap.eq(0), self.borrow.eq(0)]
        return m
