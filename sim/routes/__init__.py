"""Dataflow routes, one module each: the layers a route maps, the rows it reserves, the
micro-ops of its dot product, and how the cycle model executes its lanes' micro-ops.

``rtl.routes`` holds each route's hardware half (lanes, micro-ops); the core
(``rtl.core.Core``) and the cycle model (``sim.hw.core_model.CoreModel``) are generated from a
configuration's ``routes``; the compiler (``sim.compile.compiler``) maps each layer onto one of them
(:func:`route_for`). Routes of the seed systems: ``write_free`` (ours), ``abs_diff`` (seed
000), ``and_bitcount`` (seed 001 eq. 1), ``dima_binconv`` (seed 002 Fig. 4: the FA/FS step;
``bin_gconv2d`` layers, mapped by ``sim.compile.dima_map``), ``nand_inmem`` (seed 001 Fig. 8: the
per-column bit-counters' in-memory primitives, no layer mapped yet), ``jeit_fa`` (seed 000: the
abs-diff lanes' difference bits summed by the parallel full-adder array, an alternative to
``abs_diff``), ``dima_bitwise`` (seed 002 sec. 3.3 eq. 5: the bit-wise convolver, weight and
input planes both in the array, AND2 + bit-count; Add-Net's multi-bit layers on dima_sot).
"""

from __future__ import annotations

from rtl.config import PRESETS

# Importing a route's module registers it; in the order rtl.routes registers the hardware
# halves, so that messages list the routes in one order.
from . import abs_diff, write_free, and_bitcount, dima_binconv, nand_inmem, jeit_fa
from . import dima_bitwise
from .base import ROUTES, LaneModel, Route, get_route, op, register_route

__all__ = ["ROUTES", "Route", "LaneModel", "get_route", "register_route", "op", "route_for",
           "RouteError", "abs_diff", "and_bitcount", "write_free", "dima_binconv",
           "nand_inmem", "jeit_fa", "dima_bitwise"]


class RouteError(ValueError):
    """No route of the configuration maps a layer (the message names the layer and the routes
    and presets that would)."""


def _candidates(layer, config) -> tuple:
    """Route names that may compute ``layer`` on ``config``, in order of preference."""
    return (config.dataflow,) if layer.is_adder else config.routes


def route_for(layer, config, where: str) -> Route:
    """The route that computes ``layer`` on a core of ``config``.

    Adder layers take ``config.dataflow`` (the configuration's choice for them); every other
    layer the first route of ``config.routes`` that maps it.

    Raises
    ------
    RouteError
        No route of the configuration maps the layer; the message (prefixed ``where``) says
        which known routes and which presets would.
    """
    for name in _candidates(layer, config):
        route = get_route(name)
        if route.maps(layer):
            return route
    able = [r for r, route in ROUTES.items() if route.maps(layer)]
    presets = [p for p, cfg in PRESETS.items()
               if any(get_route(r).maps(layer) for r in _candidates(layer, cfg))]
    if not able:
        art = "an" if layer.kind[0] in "aeiou" else "a"
        head = (f"no route maps {art} {layer.kind} layer yet (known routes: "
                f"{', '.join(ROUTES)}); golden.model runs it, the core cannot")
    elif layer.is_adder:
        head = (f"dataflow {config.dataflow!r} cannot map an adder layer (sum |x - w|); use "
                f"dataflow {' or '.join(repr(r) for r in able)}")
    else:
        art = "an" if layer.kind[0] in "aeiou" else "a"
        head = (f"no route of this configuration (routes {', '.join(config.routes)}) maps "
                f"{art} {layer.kind} layer; routes that do: {', '.join(able) or 'none'}")
    tail = f" (presets that can: {', '.join(presets)})" if presets else ""
    raise RouteError(f"{where}: {head}{tail}")
