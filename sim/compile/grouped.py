"""Grouped and depthwise convolutions (``adder_gconv2d``, ``mul_gconv2d``: golden's format-2
kinds, PyTorch's ``groups`` rule) on the generic routes, mapped by
``sim.compile.compiler.compile_model``.

A grouped convolution of ``g`` groups (``C`` inputs, ``O`` outputs, ``C/g`` input channels and
``O/g`` output channels per group; depthwise: ``g = C``) is one stage computed as ``g``
convolutions of ``C/g`` input channels: the route of the plain kind (``adder_conv2d`` /
``mul_conv2d``: the configuration's adder dataflow, or the first route mapping a multiply
layer), per group a view of the stage with the group's ``O/g`` output channels
(``sim.compile.weight_stream.build_streamed``, which splits the stage's output channels into views:
by group, and with streaming also into channel tiles). The views share the patch-table entries
(the windows' top-left input pixel in channel 0, golden's flat layout); group ``gi``'s
offset-table entries are ``(gi*C/g + c)*H*W + ky*W + kx`` for its ``C/g * kh * kw`` terms, so
that the same patch gathers the group's own input channels. The weights of group ``gi`` are
its ``O/g`` channels' planes, resident one view after the other (or streamed). Each view
gathers its patches again: a depthwise layer of C channels gathers every window C times, one
channel each (no packing of several groups into one row: not built).

Padding inserts 0 (the gather's masked terms); ``pad_value`` other than 0 with padding is
refused (only the lanes mode's ``MOVE SETPAD`` inserts another code: not built for these
routes).
"""

from __future__ import annotations

import numpy as np

from golden.model import Layer

__all__ = ["GENERIC", "route_probe", "is_generic", "check", "offsets"]

#: The grouped kinds mapped on the generic routes (``bin_gconv2d``: seed 002's lanes).
GENERIC = ("adder_gconv2d", "mul_gconv2d")


def is_generic(layer) -> bool:
    """Whether ``layer`` is a grouped convolution this module maps."""
    return layer.kind in GENERIC


def route_probe(layer):
    """The layer the route is chosen for: a generic grouped layer as its plain kind."""
    if not is_generic(layer):
        return layer
    return Layer(layer.kind.replace("_gconv2d", "_conv2d"), layer.output,
                 {k: v for k, v in layer.params.items() if k not in ("groups", "pad_value")})


def check(layer, where: str, fail) -> None:
    """Refuse what is not built (module docstring) with ``fail(where, message)``."""
    pad, value = int(layer.params.get("padding", 0)), int(layer.params.get("pad_value", 0))
    if pad and value:
        fail(where, f"padding with pad_value={value} on a {layer.kind} layer is not built yet "
             f"(the gather pads with 0); use pad_value=0 or padding=0")


def offsets(layer, in_shape) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, kpos)`` of every group's terms, group-major (module docstring)."""
    w = layer.params["weight"]
    g = layer.groups
    c_in, h, wi = in_shape
    cg = c_in // g
    kh, kw = (int(v) for v in w.shape[2:])
    cc, yy, xx = np.meshgrid(np.arange(cg), np.arange(kh), np.arange(kw), indexing="ij")
    one = (cc * h * wi + yy * wi + xx).ravel()
    kpos = (yy * kw + xx).ravel()
    offs = np.concatenate([one + gi * cg * h * wi for gi in range(g)])
    return offs, np.tile(kpos, g)
