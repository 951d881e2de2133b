"""Write-free min lanes: min(x, w) found MSB first from two flags per lane.

The route they serve and its derivation: ``docs/dataflows.rst``.
"""

from amaranth.hdl import Module
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["MinLaneOp", "MinLane"]


class MinLaneOp(enum.Enum, shape=2):
    """Operation of all min lanes in one cycle (0 is the idle ``HOLD``).

    ``START``: the step of the MSB plane, with both flags taken as 0 (a new sweep starts without
    a separate clear cycle). ``STEP``: the step of every following plane, with the flags as they
    are. ``CLEAR``: both flags to 0, ``min_b`` to 0.
    """
    HOLD  = 0
    START = 1
    STEP  = 2
    CLEAR = 3


class MinLane(wiring.Component):
    """One min lane per column: bit ``b`` of ``min(x, w)`` from bit ``b`` of x and w, MSB first.

    Each lane keeps two flags. While its operands agree on every bit seen so far
    (``decided == 0``) the min bit is ``x_b AND w_b``; at the first bit where they differ the
    lane sets ``decided`` and ``x_is_min = NOT x_b``; afterwards the min bit is ``x_b`` if
    ``x_is_min`` else ``w_b``. Nothing is written back into the array: the min planes go
    straight to the reduction unit (``sum |x - w| = sum x + sum w - 2 sum min(x, w)``). This is
    ``golden.pim.min_lane_step``.

    Timing: one bit-plane per cycle, MSB first: ``START`` with plane n-1, then ``STEP`` with
    planes n-2 .. 0, so an n-bit min takes n cycles. ``min_b``, ``decided`` and ``x_is_min``
    are registers updated at the clock edge: after the cycle of plane b, ``min_b`` holds bit b
    of ``min(x, w)`` and the flags hold their values after plane b. ``HOLD`` keeps all three.

    Parameters
    ----------
    config : AcceleratorConfig
        ``config.columns`` lanes are built.

    Members
    -------
    op : In(MinLaneOp)
        Operation of this cycle.
    x_b : In(columns)
        Sensed bit of x in each lane (the current plane).
    w_b : In(columns)
        Bit of w in each lane (the current plane).
    min_b : Out(columns)
        Bit of ``min(x, w)`` of the last stepped plane. Reset 0.
    decided : Out(columns)
        The lane's operands have differed in a plane seen so far. Reset 0.
    x_is_min : Out(columns)
        Valid when ``decided``: x is the smaller operand. Reset 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`.
    """

    def __init__(self, *, config):
        self._config = check_config(config)
        n = config.columns
        super().__init__({
            "op":       In(MinLaneOp),
            "x_b":      In(n),
            "w_b":      In(n),
            "min_b":    Out(n),
            "decided":  Out(n),
            "x_is_min": Out(n),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        x, w = self.x_b, self.w_b
        differ = x ^ w
        # The same bitwise logic for all lanes at once (whole-vector operators, one netlist).
        # START is STEP with both flags forced to 0: then min_b = x & w, x_is_min = differ & ~x.
        d, xm = self.decided, self.x_is_min
        step_min = (d & ((xm & x) | (~xm & w))) | (~d & x & w)
        step_x_is_min = (d & xm) | (~d & differ & ~x)
        with m.Switch(self.op):
            with m.Case(MinLaneOp.HOLD):
                m.d.sync += [self.min_b.eq(self.min_b), self.decided.eq(self.decided),
                             self.x_is_min.eq(self.x_is_min)]
            with m.Case(MinLaneOp.START):
                m.d.sync += [self.min_b.eq(x & w), self.decided.eq(differ),
                             self.x_is_min.eq(differ & ~x)]
            with m.Case(MinLaneOp.STEP):
                m.d.sync += [self.min_b.eq(step_min), self.decided.eq(d | differ),
                             self.x_is_min.eq(step_x_is_min)]
            with m.Case(MinLaneOp.CLEAR):
                m.d.sync += [self.min_b.eq(0), self.decided.eq(0), self.x_is_min.eq(0)]
        return m
