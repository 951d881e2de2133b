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

Seed 001's eq. 2 (``out_bits`` k, ``golden.bitwidth.eq2_requantize``) needs no PPU change: the
PPU stores a k-bit code MSB-aligned in its 8-bit word. :func:`hardware_model` rewrites the
layer's requant entries ``(m, s, b)`` into ``(m, s - j, b + 2**(s-1) - 2**(s-j-1))`` with
``j = 8 - k`` (``2**(s-j-1)`` read as 0 when ``s = j``), so the PPU's own rounding and clip to
[0, 255] write ``u = clip(floor((acc*m + b + 2**(s-1)) / 2**(s-j)), 0, 255)``, and ``u >> j``
is exactly ``min(requantize(acc), 2**k - 1)``: nested floors of power-of-two divisions are one
floor, and clipping u to 255 clips ``u >> j`` to ``2**k - 1``. A layer with ``s < j`` first
scales ``m`` and ``b`` by ``2**(j - s)`` (refused when ``m`` leaves 16 bits). The consumer
(``in_quant`` eq2, ``in_bits`` k) reads the k top planes of u, which is the program of the
top-bits reading (:func:`planes`) unchanged; the fused 2x2 max pool (MAX4) takes the maximum of
the u, whose top bits are the maximum code. With ``postproc='in_memory'`` the in-array
requantization saturates at ``2**k - 1`` (seed 001 sec. 4.2, its own ``out_bits``) and the
k output rows are scattered into the top k planes of the words (the low planes 0), so the
consumer's program is the same. ``Stage.read_output`` shifts the words right by
``out_shift`` = j, so the stage outputs compare with golden's eq.-2 codes.

Refused (``CompileError`` naming the layer): an average pool (fused AVG4 or standalone) or a
standalone pool reading eq.-2 codes (the average of the u is not the average of the codes;
not built), and activation tiling of a model with eq. 2 (the activation store would hold the
shifted codes, not the words; not built).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from golden import layers as L
from golden.bitwidth import BIT_KINDS, BITS_MAX, layer_bits

__all__ = ["ROUTES", "check_model", "check_route", "stage_bits", "planes", "rows_written",
           "hardware_model", "has_eq2", "eq2_entry"]

#: The private parameter of a :func:`hardware_model` layer: ``8 - out_bits``, the right shift
#: from the PPU's word to the eq.-2 code.
HW_SHIFT = "hw_out_shift"

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
    return {"w_bits": w, "in_bits": i, "out_shift": int(ly.params.get(HW_SHIFT, 0))}


def planes(stage, n: int) -> range:
    """The bit-planes of the gathered codes a stage writes into the array: the ``in_bits`` top
    planes of ``n`` (all n for an 8-bit stage)."""
    return range(n - min(getattr(stage, "in_bits", n), n), n)


def rows_written(stage, chunk) -> int:
    """The data rows of ``chunk`` its gather part writes: of each patch's (tile's) ``n`` plane
    rows, the :func:`planes` ones."""
    return len(chunk.rows) * len(planes(stage, stage.n)) // stage.n


def has_eq2(model) -> bool:
    """Whether a layer of ``model`` quantizes its output by eq. 2 (``out_bits``)."""
    return any("out_bits" in ly.params or HW_SHIFT in ly.params for ly in model.layers)


def eq2_entry(mult: int, shift: int, bias: int, out_bits: int, acc_bound: int):
    """The PPU entry ``(m, s', b')`` whose word's top ``out_bits`` bits are the eq.-2 code of
    ``(mult, shift, bias)`` (module docstring), or a str saying why there is none."""
    j = BITS_MAX - out_bits
    m, s, b = int(mult), int(shift), int(bias)
    if s < j:                           # scale up: the same ratio with shift j
        m, b, s = m << (j - s), b << (j - s), j
        if not -(1 << (L.RQ_MULT_BITS - 1)) <= m < 1 << (L.RQ_MULT_BITS - 1):
            return (f"its multiplier {mult} with shift {shift} scaled to shift {j} is {m}, "
                    f"beyond the PPU's {L.RQ_MULT_BITS}-bit multiplier")
    s2 = s - j
    b2 = b + ((1 << (s - 1)) if s else 0) - ((1 << (s2 - 1)) if s2 else 0)
    try:
        L.check_requant_bound(acc_bound, np.array([m], np.int32), np.array([b2], np.int64),
                              np.array([s2], np.int32))
    except ValueError as e:
        return str(e)
    return m, s2, b2


def hardware_model(model, error, *, in_memory=False):
    """``model`` with every eq.-2 layer's requant entries as the PPU runs them (module
    docstring), for the compiler only (its golden meaning is not that of the file); ``model``
    itself when it has no eq. 2. Refuses (``error``) what is not built. ``in_memory``
    (``postproc='in_memory'``): the entries stay as they are, the in-array requantization
    saturates at ``2**k - 1`` itself (``sim.compile.nand_postproc.plan_stage``); only the
    shift ``HW_SHIFT`` is set. ``in_memory`` may also be a set of layer indices: those layers
    so, the others as the PPU runs them (``postproc='mixed'``)."""
    if not has_eq2(model):
        return model
    from golden.model import Model
    from sim.compile import layer_stages as _ls
    layers = list(model.layers)
    eq2_from = {-1: None}               # layer -> the eq.-2 producer whose codes it outputs
    for i, ly in enumerate(layers):
        src = int(ly.params["input"]) if "input" in ly.params else i - 1
        prod = eq2_from.get(src)
        if prod is not None and ly.kind in ("max_pool2d", "avg_pool2d", "global_avg_pool2d"):
            if ly.kind != "max_pool2d" or _ls.is_standalone(layers, i):
                raise error(f"layer {i} ({ly.kind}): it pools layer {prod}'s eq. 2 codes, which "
                            f"the PPU stores MSB-aligned in 8-bit words; of those pools only a "
                            f"fused 2x2 max pool (MAX4) is built")
        eq2_from[i] = (i if "out_bits" in ly.params else None) if ly.is_compute else prod
        if "out_bits" not in ly.params:
            continue
        k = int(ly.params["out_bits"])
        params = {key: v for key, v in ly.params.items() if key != "out_bits"}
        if in_memory is True or (not isinstance(in_memory, bool) and i in in_memory):
            layers[i] = dataclasses.replace(ly, params={**params, HW_SHIFT: BITS_MAX - k})
            continue
        bound = L.conv_acc_bound(ly.acc_kind, int(np.prod(ly.params["weight"].shape[1:])))
        entries = []
        for ch, e in enumerate(zip(ly.params["rq_mult"], ly.params["rq_shift"],
                                   ly.params["rq_bias"], strict=True)):
            got = eq2_entry(*e, k, bound)
            if isinstance(got, str):
                raise error(f"layer {i} ({ly.kind}): channel {ch}'s eq. 2 requant entry has no "
                            f"PPU form with {k}-bit codes MSB-aligned: {got}")
            entries.append(got)
        m, s, b = (np.array(v, dt) for v, dt in zip(zip(*entries, strict=True),
                                                    (np.int32, np.int32, np.int64), strict=True))
        params.update(rq_mult=m, rq_shift=s, rq_bias=b, **{HW_SHIFT: BITS_MAX - k})
        layers[i] = dataclasses.replace(ly, params=params)
    return Model(name=model.name, input_shape=model.input_shape,
                 input_scale=model.input_scale, class_names=model.class_names,
                 layers=tuple(layers))
