"""The example route of the walkthrough ``docs/add_route.rst``, which includes this file.

``tests/test_routes.py`` follows the walkthrough with it: it registers the route, compiles a
model whose first layer the route maps, runs it on the numpy core model against golden, and
generates the core of a configuration that has only this route.
"""

from __future__ import annotations

import numpy as np

from golden.model import COMPUTE_KINDS
from rtl.column_reduce import ReduceOp
from rtl.isa import Opcode
from rtl.routes import RouteHardware
from rtl.routes import register_route as register_hardware
from sim.routes import Route, op, register_route

#: The name under which the walkthrough registers the route.
NAME = "ones_sum"

# begin hardware
#: The route's hardware half: no lane, no micro-op beyond the base set (READ and the reduction
#: unit), so the core needs no change at all.
HARDWARE = RouteHardware(
    name="ones_sum",
    summary="multiply layers whose weights are all +1: the sum of the inputs, by READ and "
            "the column popcount, no weight on the FU line")
# end hardware


# begin route
class OnesSum(Route):
    """Multiply layers whose weights are all +1 (a sum written as a layer): the dot product is
    the sum of the inputs. Per tile: the accumulator cleared, then each input plane, MSB first,
    READ and popcounted into ``acc = 2 acc - p``, so that the accumulator holds the negated
    sum as every route leaves it (the PPU's NEG restores the sign). n + 1 cycles, no writes.
    """

    name = "ones_sum"

    def maps(self, layer) -> bool:
        # COMPUTE_KINDS: the ungrouped convolutions and linear layers the compiler lays out
        return (layer.kind in COMPUTE_KINDS and not layer.is_adder
                and bool(np.all(layer.params["weight"] == 1)))

    def dot(self, stage, t, xrow, wslot, config) -> list:
        n = stage.n
        body = [op(Opcode.READ, imm=ReduceOp.CLEAR.value, a=xrow(n - 1))]
        body += [op(Opcode.READ, imm=ReduceOp.SHIFT_SUB.value, a=xrow(b))
                 for b in range(n - 1, -1, -1)]
        return body
# end route


def register() -> Route:
    """Register both halves (the walkthrough's last step); returns the route."""
    register_hardware(HARDWARE)
    return register_route(OnesSum())
