"""The write-free L1 route (``write_free``): adder layers without writing into the array.

``sum_k |x_k - w_k| = sum_k x_k + sum_k w_k - 2 sum_k min(x_k, w_k)``. Each lane finds
``min(x, w)`` MSB first from two flags (``decided``: the bits differed already; ``x_is_min``:
x was the smaller there): at plane b the lane's min bit is ``x_b`` or ``w_b`` of the smaller
operand once decided, else ``x_b AND w_b`` (``rtl.min_lane``). The reduction unit weighs the
three popcounts of a plane in one cycle: ``q = pop(x_b) + pop(w_b) - 2 pop(min_b)``,
``acc = q`` on the MSB plane (``L1_FIRST``) and ``acc = 2 acc + q`` below (``L1_PLANE``).

Cycles per tile dot: n (one ``MIN_STEP`` per plane, ``n = operand_bits``); array writes: none.
"""

from __future__ import annotations

from golden.model import COMPUTE_KINDS
from rtl.column_reduce import ReduceOp
from rtl.isa import Opcode

from .base import LaneModel, Route, op, register_route

__all__ = ["WriteFree", "MinLanes"]

_L1_FIRST = ReduceOp.L1_FIRST.value


class MinLanes(LaneModel):
    """The two-flag min lanes (``rtl.min_lane``) of every mat column."""

    def __init__(self, ones: int):
        super().__init__(ones)
        self.min_b = self.decided = self.x_is_min = 0
        self.ops = {Opcode.MIN_STEP.value: self.min_step}

    def min_step(self, imm, x, w, c):
        """``MIN_STEP``: START on ``L1_FIRST`` (flags taken as 0), else STEP."""
        ones = self._ones
        differ = x ^ w
        if (imm & 0xF) == _L1_FIRST:
            self.min_b = x & w
            self.decided = differ
            self.x_is_min = differ & ~x & ones
        else:
            dd, xm = self.decided, self.x_is_min
            nd = ~dd & ones
            self.min_b = (dd & ((xm & x) | (~xm & w))) | (nd & x & w)
            self.x_is_min = (dd & xm) | (nd & differ & ~x & ones)
            self.decided = dd | differ
        return w, self.min_b


class WriteFree(Route):
    name = "write_free"

    def maps(self, layer) -> bool:
        return layer.kind in COMPUTE_KINDS and layer.is_adder

    def dot(self, stage, t, xrow, wslot, config) -> list:
        n = stage.n
        return [op(Opcode.MIN_STEP,
                   imm=(ReduceOp.L1_FIRST if b == n - 1 else ReduceOp.L1_PLANE).value,
                   a=xrow(b), b=wslot(b))
                for b in range(n - 1, -1, -1)]

    def lanes(self, model) -> MinLanes:
        return MinLanes(model._ones)


register_route(WriteFree())
