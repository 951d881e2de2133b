"""Seed 001's <W:I> bit widths (``golden.bitwidth``) in the compiler.

A ``mul_conv2d`` / ``mul_linear`` layer with ``w_bits`` W and ``in_bits`` I keeps the data
layout of every multiply stage (``sim.compile.compiler``): the array rows hold the 8 bit-planes
of the gathered 8-bit codes, the weight buffer the 8 planes of the int8 weights. Its tile dot
(``sim.routes.and_bitcount``) takes only the I top input planes (``x >> (8 - I)``: plane
``8 - I + m`` of the code is plane m of the I-bit input) and the W low weight planes (plane
W - 1 the sign plane: a W-bit weight's planes W - 1 .. 7 are equal), W * I ``AND_FU`` + column
reduce passes instead of 64 (seed 001 eq. 1). Nothing else changes: the PPU, the gathers and the
cycle model run the program as it is.

Refused with a ``CompileError`` (``sim.compile.compiler``) naming the layer, the value and the
limit: a width above the datapath's ``operand_bits`` (the bit-planes one operand has in the
array and the weight buffer), and a layer with widths below 8 on a route whose dot does not
take them (:data:`ROUTES`).

The gather part of a chunk program writes only the planes the dot reads (:func:`planes`: the I
top planes of the codes), so a <W:I> stage also has 8 - I fewer array writes per patch (and
tile); the rows of the other planes stay as the erase (nand_spin) or an earlier chunk left them
and are never read.
"""

from __future__ import annotations

from golden.bitwidth import BIT_KINDS, BITS_MAX, layer_bits

__all__ = ["ROUTES", "check_model", "check_route", "stage_bits", "planes", "rows_written"]

#: The routes whose tile dot takes a stage's ``w_bits`` / ``in_bits``.
ROUTES = ("and_bitcount",)


def _narrow(ly) -> bool:
    return ly.kind in BIT_KINDS and layer_bits(ly.params) != (BITS_MAX, BITS_MAX)


def check_model(model, config, error) -> None:
    """Refuse (``error``: the CompileError class) the first multiply layer of ``model`` whose
    weight or input bits exceed ``config.operand_bits``."""
    for i, ly in enumerate(model.layers):
        if ly.kind not in BIT_KINDS:
            continue
        for name, v in zip(("w_bits", "in_bits"), layer_bits(ly.params), strict=True):
            if v > config.operand_bits:
                raise error(f"layer {i} ({ly.kind}): {name} is {v}, but the datapath holds "
                            f"operand_bits={config.operand_bits} bit-planes per operand (at "
                            f"most {config.operand_bits} bits)")


def check_route(ly, route_name: str, where: str, error) -> None:
    """Refuse a layer with widths below 8 on a route not in :data:`ROUTES`."""
    if _narrow(ly) and route_name not in ROUTES:
        w, i = layer_bits(ly.params)
        raise error(f"{where}: <W:I> = <{w}:{i}> is not built on route {route_name!r} (its "
                    f"dot takes all {BITS_MAX} bit-planes of both operands); routes with bit "
                    f"widths: {', '.join(ROUTES)}")


def stage_bits(ly) -> dict:
    """The ``Stage`` fields ``w_bits`` and ``in_bits`` of compute layer ``ly``."""
    w, i = layer_bits(ly.params) if ly.kind in BIT_KINDS else (BITS_MAX, BITS_MAX)
    return {"w_bits": w, "in_bits": i}


def planes(stage, n: int) -> range:
    """The bit-planes of the gathered codes a stage writes into the array: the ``in_bits`` top
    planes of ``n`` (all n for an 8-bit stage)."""
    return range(n - min(getattr(stage, "in_bits", n), n), n)


def rows_written(stage, chunk) -> int:
    """The data rows of ``chunk`` its gather part writes: of each patch's (tile's) ``n`` plane
    rows, the :func:`planes` ones."""
    return len(chunk.rows) * len(planes(stage, stage.n)) // stage.n
