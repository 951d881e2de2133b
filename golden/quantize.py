"""Post-training quantization of a float AdderNet into a :class:`golden.model.Model` (pure numpy).

The float network is a straight chain of :class:`FloatLayer` descriptions (the kinds of
:data:`golden.model.KINDS`) with trained float weights and eval-mode batch-norm statistics. The
quantizer walks the chain once, running the float reference
(:func:`golden.model.layer_forward_float`) on uint8 calibration images to fix every requant layer's
output scale, and writes integer parameters that reproduce the float network on the integer grid:

Activation scales
    Every activation tensor is uint8 with one per-tensor scale ``s``: the input's is
    ``input_scale``; a requant layer's output scale is ``s_out = P / 255`` where ``P`` is the
    ``percentile``-th percentile (default 99.99) of that layer's post-ReLU float output over all
    calibration activations (zeros included). Values above ``255 * s_out`` saturate. Pools and
    flatten keep their input's scale (max-pool commutes with the monotone quantizer; the integer
    average pool rounds half up where the float one is exact). ``percentile=100`` uses the
    maximum; a lower one trades clipping of rare large values for resolution: the caller can
    compare a few on held-out data (``sim/flows/train.py`` does).

Adder layers (``adder_conv2d``, ``adder_linear``)
    ``|s_x*x - s_w*w|`` only factors as ``s*|x - w|`` when ``s_w == s_x``, so the uint8 weights
    live on their input's scale ``s_in``. A float weight ``w`` is clipped into ``[0, 255*s_in]``
    and the change folded exactly into the bias: for a real input ``x`` in ``[0, 255*s_in]``,
    ``|x - w| = |x - 0| + |w|`` when ``w < 0`` and ``|x - w| = |x - 255*s_in| + (w - 255*s_in)``
    when ``w > 255*s_in``. Per output channel ``c_o`` = sum of those excesses, so
    ``Y_real = -sum|x - w| = s_in * acc - c_o`` with ``acc = -sum|x_int - w_int|``, exact up to
    rounding the clipped weight to the grid (padding zeros are the real value 0 and obey the same
    identity).

Multiply layers (``mul_conv2d``, ``mul_linear``)
    int8 weights, symmetric: a hidden (requant) layer has one scale per output channel
    ``s_w[o] = max|w[o]| / 127``; the last (``logits``) layer one per-tensor scale
    ``s_w = max|w| / 127``, so all logits share the scale ``s_x * s_w`` and their argmax is the
    float one's up to rounding. Its int32 bias is ``round(b / (s_x * s_w))``.
    ``Y_real = s_in * s_w[o] * acc``.

Requantization (BN in eval mode, ReLU, uint8 saturation)
    With ``a = gamma / sqrt(var + eps)`` and ``b = beta - a*mean``, a requant layer's output is
    ``out_int = round((a*Y_real + b) / s_out)`` clipped to [0, 255], i.e. with ``Y_real = r_y * acc
    + c_y`` a real ratio ``ratio = a * r_y / s_out`` and offset ``off = (a*c_y + b) / s_out``. It
    is written as ``rq_mult = round(ratio * 2**shift)``, ``rq_bias = round(off * 2**shift)`` with,
    per channel, the largest ``shift <= 46`` for which ``|rq_mult| < 2**15`` and the 48-bit bound
    of :func:`golden.layers.check_requant_bound` (worst case accumulator from
    :func:`golden.layers.conv_acc_bound`) holds. The offset is first limited to the range beyond
    which the output saturates for every possible accumulator (this changes no output and keeps a
    dead or always-on channel's bias inside the datapath).

Add-Net layers (format 2, seed 002)
    ``bin_gconv2d`` weights are binarized by eq. 2 (:func:`binarize`): int8 signs and
    ``alpha``, with ``Y_real = s_in * alpha[o] * acc``, so alpha enters ``rq_mult`` or the
    thresholds like BN's scale does. A layer with ``output="quant"`` ends in eq. 3 with the fixed
    range ``quant_tmax``: its 255 thresholds per channel come from :func:`quant_thresholds`, and
    its output codes are symmetric, real ``(2*j - 255)/255``, with no calibration (eq. 3 fixes
    the range). A multiply or binarized layer reading symmetric codes folds the offset -1 into
    its bias or thresholds (:func:`quantize_model`).

Imports numpy and :mod:`golden` only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bitwidth as _BW
from . import layers as L
from .model import (ALL_COMPUTE_KINDS, ALL_KINDS, GROUPED_KINDS, Layer, Model,
                    layer_forward_float, make_model, quant_eq3)

__all__ = ["FloatLayer", "DEFAULT_PERCENTILE", "MAX_SHIFT", "quantize_model",
           "fold_adder_weights", "requant_params", "output_scale", "binarize",
           "quant_thresholds"]

#: Default percentile of post-ReLU calibration activations that maps to uint8 255.
DEFAULT_PERCENTILE = 99.99
#: Largest requant shift (``golden.layers.check_requant_bound`` allows shifts < RQ_BITS - 1).
MAX_SHIFT = L.RQ_BITS - 2
_MULT_LIM = 1 << (L.RQ_MULT_BITS - 1)
_RQ_LIM = 1 << (L.RQ_BITS - 1)


@dataclass
class FloatLayer:
    """One layer of the trained float network.

    ``weight``: float [O, C, kh, kw] (convolutions) or [O, I] (linear layers). Hidden compute
    layers carry eval-mode batch norm (``bn_gamma``, ``bn_beta``, ``bn_mean``, ``bn_var`` of shape
    [O], ``bn_eps``) followed by ReLU; the last layer must be a ``mul_linear`` that outputs logits
    and carries ``bias`` [O] instead. ``stride`` and
    ``padding`` apply to convolutions and pools, ``kernel`` and ``stride`` to pools.

    Format-2 kinds (:data:`golden.model.GROUPED_KINDS`) also take ``groups`` and ``pad_value``;
    ``output="quant"`` replaces the ReLU by seed 002's eq.-3 quantizer with the fixed range
    ``quant_tmax``; a ``bin_gconv2d`` layer's weight is the latent float weight, binarized by
    :func:`binarize` (layer-wise alpha, as the seed) unless ``alpha`` is given.

    Bit widths (format 4, :mod:`golden.bitwidth`, seed 001's <W:I>): a ``mul_conv2d`` /
    ``mul_linear`` layer with ``w_bits`` W quantizes its weights to W bits (symmetric, W >= 2),
    with ``in_bits`` I reads the top I bits of its 8-bit input codes (the scale of its input
    grows by ``2**(8 - I)``); ``None`` leaves the array out (8 bits). ``out_scale``, if given,
    is the real value of one output code of a ``requant`` layer (a quantization-aware trainer's
    own scale) in place of the calibration percentile's.

    Eq. 2 (format 5, :mod:`golden.bitwidth`): ``out_bits`` k on a ``requant`` multiply layer
    quantizes its output to k-bit codes of scale ``out_scale`` (or, without it, the calibration
    images' maximum over ``2**k - 1``: eq. 2's ``Q_max``); ``in_quant="eq2"`` on the next
    multiply layer reads them as they are (its input scale is the producer's, not grown by
    ``2**(8 - I)``).
    """
    kind: str
    weight: np.ndarray | None = None
    stride: int = 1
    padding: int = 0
    kernel: int = 2
    bn_gamma: np.ndarray | None = None
    bn_beta: np.ndarray | None = None
    bn_mean: np.ndarray | None = None
    bn_var: np.ndarray | None = None
    bn_eps: float = 1e-5
    bias: np.ndarray | None = None
    groups: int = 1
    pad_value: int = 0
    output: str = "requant"
    quant_tmax: float | None = None
    alpha: np.ndarray | None = None
    w_bits: int | None = None
    in_bits: int | None = None
    out_scale: float | None = None
    out_bits: int | None = None
    in_quant: str | None = None


def _f32(a, name) -> np.ndarray:
    if a is None:
        raise ValueError(f"float layer parameter {name!r} is missing")
    return np.ascontiguousarray(np.asarray(a, dtype=np.float32))


def _float_params(fl: FloatLayer, logits: bool) -> dict:
    fp = {"weight": _f32(fl.weight, "weight")}
    o = fp["weight"].shape[0]
    if logits:
        fp["bias"] = _f32(fl.bias if fl.bias is not None else np.zeros(o), "bias")
    else:
        for k in ("bn_gamma", "bn_beta", "bn_mean", "bn_var"):
            fp[k] = _f32(getattr(fl, k), k)
        fp["bn_eps"] = np.float64(fl.bn_eps)
    for k, v in fp.items():
        if k not in ("weight", "bn_eps") and v.shape != (o,):
            raise ValueError(f"float layer parameter {k!r} must have shape ({o},), not {v.shape}")
    return fp


def _float_layer(fl: FloatLayer, logits: bool) -> Layer:
    """A :class:`golden.model.Layer` holding only what layer_forward_float needs."""
    if fl.kind not in ALL_KINDS:
        raise ValueError(f"layer kind must be one of {', '.join(ALL_KINDS)}, not {fl.kind!r}")
    if fl.kind in ("max_pool2d", "avg_pool2d"):
        params = {"kernel": int(fl.kernel), "stride": int(fl.stride)}
        if fl.padding:                  # format 6 (golden.model): only when padded
            params["padding"] = int(fl.padding)
        return Layer(kind=fl.kind, params=params)
    if fl.kind == "flatten":
        return Layer(kind="flatten")
    params = {}
    if fl.kind.endswith("conv2d"):
        params = {"stride": int(fl.stride), "padding": int(fl.padding)}
    fp = _float_params(fl, logits)
    output = "logits" if logits else fl.output
    if fl.kind in GROUPED_KINDS:
        params.update(groups=int(fl.groups), pad_value=int(fl.pad_value))
    elif output not in ("requant", "logits"):
        raise ValueError(f"a {fl.kind} layer outputs 'requant' (hidden) or 'logits' (last), "
                         f"not {output!r}")
    if output == "quant":
        if fl.quant_tmax is None:
            raise ValueError("float layer parameter 'quant_tmax' is missing")
        fp["quant_tmax"] = np.float64(fl.quant_tmax)
    if fl.kind == "bin_gconv2d":
        b, alpha = binarize(fp["weight"])
        params["weight"] = b
        fp["alpha"] = alpha if fl.alpha is None else _f32(fl.alpha, "alpha")
    return Layer(kind=fl.kind, output=output, params=params, float_params=fp)


def fold_adder_weights(weight: np.ndarray, s_in: float):
    """Clip adder weights into ``[0, 255*s_in]`` and quantize them on the input's grid.

    Returns ``(w_int, c)``: uint8 weights of ``weight``'s shape and the float64 per-output-channel
    constant ``c[o]`` = sum over the channel's weights of ``-w`` (``w < 0``) and
    ``w - 255*s_in`` (``w > 255*s_in``), so that for every real input ``x`` in ``[0, 255*s_in]``:
    ``-sum|x - w| = -sum|x - w_clipped| - c[o]`` exactly, and ``w_clipped ~= s_in * w_int``.
    """
    w = np.asarray(weight, dtype=np.float64)
    top = L.ACT_MAX * s_in
    o = w.shape[0]
    w2 = w.reshape(o, -1)
    excess = np.where(w2 < 0, -w2, 0.0) + np.where(w2 > top, w2 - top, 0.0)
    c = excess.sum(axis=1)
    w_int = np.clip(np.rint(np.clip(w, 0.0, top) / s_in), 0, L.ACT_MAX).astype(np.uint8)
    return w_int, c


def _ratio_offset(ratio, offset):
    ratio = np.asarray(ratio, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    if ratio.shape != offset.shape or ratio.ndim != 1:
        raise ValueError("ratio and offset must be 1-D arrays of one shape")
    if not (np.isfinite(ratio).all() and np.isfinite(offset).all()):
        raise ValueError("ratio and offset must be finite")
    return ratio, offset


def requant_params(ratio, offset, acc_bound: int):
    """Integer ``(rq_mult int32, rq_bias int64, rq_shift int32)`` for ``out = ratio*acc + offset``.

    Per channel, the largest shift <= MAX_SHIFT with ``|mult| < 2**15`` and
    ``acc_bound*|mult| + |bias| + 2**(shift-1) < 2**47``. ``offset`` is first limited to
    ``+-(acc_bound*|ratio| + 2*256)``, beyond which the output saturates for every accumulator.
    Raises ValueError if a channel admits no shift (only for absurd ``ratio``).
    """
    ratio, offset = _ratio_offset(ratio, offset)
    n = ratio.shape[0]
    mult = np.zeros(n, dtype=np.int32)
    bias = np.zeros(n, dtype=np.int64)
    shift = np.zeros(n, dtype=np.int32)
    for ch in range(n):
        r = float(ratio[ch])
        lim = acc_bound * abs(r) + 2 * 256
        off = min(max(float(offset[ch]), -lim), lim)
        for s in range(MAX_SHIFT, -1, -1):
            m = int(np.rint(r * 2.0 ** s))
            if abs(m) >= _MULT_LIM:
                continue
            b = int(np.rint(off * 2.0 ** s))
            worst = acc_bound * abs(m) + abs(b) + ((1 << (s - 1)) if s else 0)
            if worst < _RQ_LIM:
                mult[ch], bias[ch], shift[ch] = m, b, s
                break
        else:
            raise ValueError(f"channel {ch}: no requant shift fits ratio {r!r} and offset {off!r}")
    L.check_requant_bound(acc_bound, mult, bias, shift)
    return mult, bias, shift


def binarize(weight: np.ndarray, *, per_channel: bool = False):
    """Binarize float weights as seed 002's eq. 2: ``Bin(w) = E|w| * sign(w)``, sign(0) = +1.

    Returns ``(b, alpha)``: int8 ``b`` in {-1, +1} of ``weight``'s shape and float32 ``alpha``
    [O] > 0. ``per_channel=False`` (the seed: "the mean of the absolute value of weights in
    layer l as the layer-wise scaling factor") gives every channel the layer's E|w|;
    ``per_channel=True`` one E|w| per output channel (XNOR-Net's per-filter scale). A zero
    mean (all-zero weights) becomes the smallest positive float32, so alpha stays positive.
    """
    w = np.asarray(weight, dtype=np.float64)
    o = w.shape[0]
    b = np.where(w >= 0, 1, -1).astype(np.int8)
    if per_channel:
        alpha = np.abs(w.reshape(o, -1)).mean(axis=1)
    else:
        alpha = np.full(o, np.abs(w).mean() if w.size else 0.0)
    alpha = np.maximum(alpha.astype(np.float32), np.finfo(np.float32).tiny)
    return b, alpha


def quant_thresholds(ratio, offset, tmax: float, acc_bound: int):
    """Thresholds ``(q_thresh int64 [O, 255], q_sign int8 [O])`` of seed 002's eq. 3.

    For ``z = ratio[o] * acc + offset[o]`` (the batch-normed real value of the accumulator), the
    code ``j = quant_eq3(z, tmax)`` (:func:`golden.model.quant_eq3`) is ``>= i`` exactly when
    ``tanh(z) >= tmax * (2i - 256) / 255``, i.e. ``z >= zeta_i = atanh(tmax * (2i - 256)/255)``
    (i = 1 .. 255), i.e. ``sign(ratio) * acc >= ceil((zeta_i - offset) / |ratio|)``. So
    :func:`golden.layers.threshold_quantize` with these thresholds gives eq. 3's code for every
    integer accumulator, up to float64 rounding of a threshold that falls on an integer. A
    channel with ``ratio == 0`` outputs the constant code of ``offset``. Thresholds are limited
    to ``[-(acc_bound + 1), acc_bound + 1]``, beyond which they are always or never passed.
    """
    ratio, offset = _ratio_offset(ratio, offset)
    if not (np.isfinite(tmax) and 0 < tmax <= 1):
        raise ValueError(f"tmax must be in (0, 1], not {tmax}")
    lim = int(acc_bound) + 1
    i = np.arange(1, L.QUANT_LEVELS, dtype=np.float64)
    zeta = np.arctanh(tmax * (2 * i - L.QUANT_LEVELS) / L.ACT_MAX)           # [255], increasing
    thresh = np.empty((ratio.shape[0], L.QUANT_LEVELS - 1), dtype=np.int64)
    sign = np.where(ratio < 0, -1, 1).astype(np.int8)
    for ch in range(ratio.shape[0]):
        r, off = float(ratio[ch]), float(offset[ch])
        if r == 0:
            j0 = int(quant_eq3(np.float64(off), tmax))
            thresh[ch] = np.where(np.arange(1, L.QUANT_LEVELS) <= j0, -lim, lim)
        else:
            t = np.ceil((zeta - off) / abs(r))
            thresh[ch] = np.clip(t, -lim, lim).astype(np.int64)
    return thresh, sign


def output_scale(y: np.ndarray, percentile: float = DEFAULT_PERCENTILE) -> float:
    """Scale mapping the ``percentile``-th percentile of post-ReLU activations ``y`` to 255."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], not {percentile}")
    p = float(np.percentile(y, percentile)) if y.size else 0.0
    if not p > 0:  # all-zero layer: any positive scale is exact
        p = float(np.max(y)) if y.size and np.max(y) > 0 else 1.0
    return p / L.ACT_MAX


def _fan_in(w: np.ndarray) -> int:
    return int(np.prod(w.shape[1:]))


def quantize_model(*, name: str, input_shape, input_scale: float, class_names, layers,
                   calib_images: np.ndarray, percentile: float = DEFAULT_PERCENTILE,
                   batch: int = 256) -> Model:
    """Quantize a float network (a list of :class:`FloatLayer`) into a validated Model.

    ``calib_images``: uint8 [N, C, H, W] images whose float activations fix the output scales
    (see the module docstring). ``percentile`` may be one number or one per requant layer.

    After a ``quant`` layer the codes are symmetric: real ``s_in * code + z_in`` with
    ``s_in = 2/255``, ``z_in = -1`` (seed 002 eq. 3). A multiply or binarized layer reading them
    keeps its integer arithmetic: ``Y_real = r_y * acc + c_y`` with ``c_y[o] = z_in * s_w[o] *
    sum(w_int[o])`` (``alpha[o]`` in place of ``s_w`` for binarized weights), exact because
    padding inserts a code too; adder layers cannot read them (``|x - w|`` has no such split).
    """
    calib = np.asarray(calib_images)
    if calib.dtype != np.uint8 or calib.ndim != 4 or calib.shape[0] < 1:
        raise ValueError("calib_images must be a non-empty uint8 array [N, C, H, W]")
    if tuple(calib.shape[1:]) != tuple(int(v) for v in input_shape):
        raise ValueError(f"calib_images have shape {calib.shape[1:]}, the model input "
                         f"{tuple(input_shape)}")
    layers = list(layers)
    if not layers:
        raise ValueError("a model needs at least one layer")
    n_rq = sum(1 for fl in layers[:-1] if fl.kind in ALL_COMPUTE_KINDS and fl.output == "requant")
    pcts = np.broadcast_to(np.asarray(percentile, dtype=np.float64), (n_rq,)) if n_rq else []
    cur = calib.astype(np.float64) * float(input_scale)
    s_in, z_in = float(input_scale), 0.0
    out_layers, rq_i = [], 0
    for i, fl in enumerate(layers):
        last = i == len(layers) - 1
        flayer = _float_layer(fl, logits=last)
        if fl.kind not in ALL_COMPUTE_KINDS:
            out_layers.append(flayer)
            cur = _forward(flayer, cur, batch)
            continue
        fp = flayer.float_params
        w = fp["weight"].astype(np.float64)
        o = w.shape[0]
        adder = fl.kind.startswith("adder")
        pad_real = s_in * int(flayer.params.get("pad_value", 0)) + z_in   # the padded code
        if adder and z_in:
            raise ValueError(f"layer {i} ({fl.kind}) reads the symmetric codes of a 'quant' "
                             f"layer, which an adder layer cannot (|x - w| does not split off "
                             f"the offset)")
        if adder:
            w_int, c = fold_adder_weights(w, s_in)
            r_y, c_y = np.full(w.shape[0], s_in), -c
        elif fl.kind == "bin_gconv2d":
            w_int = flayer.params["weight"]
            alpha = fp["alpha"].astype(np.float64)
            r_y, c_y = s_in * alpha, np.zeros(o)
            if z_in:
                c_y = z_in * alpha * w_int.reshape(o, -1).sum(axis=1)
        elif fl.w_bits is not None or fl.in_bits is not None:   # <W:I> (golden.bitwidth)
            s_in, w_int, s_w = _bit_widths(fl, w, s_in, z_in, last, flayer.params)
            r_y, c_y = s_in * s_w, np.zeros(o)
        else:
            if last:
                s_w = np.full(o, max(float(np.abs(w).max()), 1e-30) / 127.0)
            else:
                s_w = np.maximum(np.abs(w.reshape(o, -1)).max(axis=1), 1e-30) / 127.0
            shape = (-1,) + (1,) * (w.ndim - 1)
            w_int = np.clip(np.rint(w / s_w.reshape(shape)), -127, 127).astype(np.int8)
            r_y, c_y = s_in * s_w, np.zeros(o)
            if z_in:
                c_y = z_in * s_w * w_int.reshape(o, -1).astype(np.float64).sum(axis=1)
        params = dict(flayer.params, weight=w_int)
        if last:
            if adder or fl.kind == "bin_gconv2d":
                raise ValueError("the last (logits) layer must be a mul_linear layer")
            b = fp["bias"].astype(np.float64) / (s_in * s_w)
            if z_in:
                b = (fp["bias"].astype(np.float64) + c_y) / (s_in * s_w)
            if np.abs(b).max(initial=0) >= 2 ** 31 - 1:
                raise ValueError("logits bias does not fit int32")
            params["bias"] = np.rint(b).astype(np.int32)
            out_layers.append(Layer(kind=fl.kind, output="logits", params=params,
                                    float_params=fp))
            break
        cur = _forward(flayer, cur, batch, pad_real)
        a = fp["bn_gamma"].astype(np.float64) / np.sqrt(fp["bn_var"].astype(np.float64)
                                                       + float(fp["bn_eps"]))
        b = fp["bn_beta"].astype(np.float64) - a * fp["bn_mean"].astype(np.float64)
        acc_bound = L.conv_acc_bound(flayer.acc_kind, _fan_in(w))
        if flayer.output == "quant":
            thresh, sign = quant_thresholds(a * r_y, a * c_y + b, float(fp["quant_tmax"]),
                                            acc_bound)
            params.update(q_thresh=thresh, q_sign=sign)
            out_layers.append(Layer(kind=fl.kind, output="quant", params=params,
                                    float_params=fp))
            s_in, z_in = 2.0 / L.ACT_MAX, -1.0
            continue
        s_out = (output_scale(cur, float(pcts[rq_i])) if fl.out_scale is None
                 else float(fl.out_scale))
        if fl.out_bits is not None:      # eq. 2: k-bit codes, Q_max the calibration maximum
            params["out_bits"] = _BW.check_bits("out_bits", fl.out_bits)
            if fl.out_scale is None:
                s_out = _BW.eq2_scale(float(np.max(cur, initial=0.0)), fl.out_bits)
        rq_i += 1
        mult, rbias, shift = requant_params(a * r_y / s_out, (a * c_y + b) / s_out, acc_bound)
        params.update(rq_mult=mult, rq_bias=rbias, rq_shift=shift)
        out_layers.append(Layer(kind=fl.kind, output="requant", params=params, float_params=fp))
        s_in, z_in = s_out, 0.0
    return make_model(name=name, input_shape=input_shape, input_scale=input_scale,
                      class_names=class_names, layers=out_layers)


def _bit_widths(fl: FloatLayer, w: np.ndarray, s_in: float, z_in: float, last: bool,
                params: dict) -> tuple:
    """A multiply layer's ``(input scale, w_int, s_w)`` at ``fl.w_bits`` / ``fl.in_bits``; the
    two arrays go into ``params`` (format 4)."""
    if fl.kind not in _BW.BIT_KINDS or z_in:
        raise ValueError(f"bit widths are for {' and '.join(_BW.BIT_KINDS)} layers reading "
                         f"unsigned codes, not {fl.kind}")
    wb = _BW.check_bits("w_bits", 8 if fl.w_bits is None else fl.w_bits)
    ib = _BW.check_bits("in_bits", 8 if fl.in_bits is None else fl.in_bits)
    w_int, s_w = _BW.quantize_weight(w, wb, per_channel=not last)
    params.update(w_bits=wb, in_bits=ib)
    if fl.in_quant == "eq2":            # the producer's k-bit eq.-2 codes, as they are
        params["in_quant"] = "eq2"
        return s_in, w_int, s_w
    return s_in * float(1 << (_BW.BITS_MAX - ib)), w_int, s_w


def _forward(layer: Layer, x: np.ndarray, batch: int, pad_real: float = 0.0) -> np.ndarray:
    return np.concatenate([layer_forward_float(layer, x[s:s + batch], pad_real=pad_real)
                           for s in range(0, x.shape[0], batch)], axis=0)
