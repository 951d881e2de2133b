"""Random models with the format-3 and standalone layers (pools of any window, global average
pooling, residual additions, convolutions of any kernel / stride / padding), for the compiler's,
the cycle model's and the RTL's tests; the requantization of every layer is fitted to the
accumulators of the image it is built with, so the activations spread over [0, 255]."""

import numpy as np

from golden import layers as gl

from golden.model import Layer, infer_int, layer_forward_int, make_model


def fit_requant(acc, rng):
    """rq_mult / rq_bias / rq_shift spreading each channel's accumulators over ~[-20, 275]."""
    o = acc.shape[1]
    a = np.moveaxis(acc, 1, 0).reshape(o, -1)
    lo, hi = a.min(axis=1), a.max(axis=1)
    mult, shift, bias = np.zeros(o, np.int32), np.zeros(o, np.int32), np.zeros(o, np.int64)
    for c in range(o):
        span = int(hi[c] - lo[c]) + 1
        s = 16
        while s > 0 and 300 * (1 << s) // span > 32767:
            s -= 1
        m = max(1, 300 * (1 << s) // span)
        mult[c], bias[c], shift[c] = m, -int(lo[c]) * m - (20 << s), s
    return mult, bias, shift


def random_model(spec, in_shape, rng, x):
    """A validated model of the layers ``spec`` (tuples below) on input ``in_shape``, fitted to
    ``x`` (uint8 [1, *in_shape]).

    ``("conv", kind, out, k, stride, pad)`` (and ``("conv", ..., pad, src)``: a branch reading
    layer ``src``'s output, -1 the model input: ``golden.model``'s ``input`` array),
    ``("pool", "max" | "avg", k, stride)`` (and ``("pool", ..., stride, pad)``: a padded pool,
    ``golden.model`` format 6),
    ``("gap",)``, ``("flatten",)``, ``("add", back)`` (shortcut: the output ``back`` layers
    before this one's input; -1 the model input), ``("linear", kind, out)`` (the last: logits).
    """
    layers, outs, cur = [], [], x
    for i, item in enumerate(spec):
        tag = item[0]
        if tag == "conv":
            _, kind, out, k, stride, pad = item[:6]
            if len(item) > 6:
                cur = x if item[6] < 0 else outs[item[6]]
            w = (rng.integers(0, 256, (out, cur.shape[1], k, k)).astype(np.uint8)
                 if kind.startswith("adder") else
                 rng.integers(-128, 128, (out, cur.shape[1], k, k)).astype(np.int8))
            p = {"weight": w, "stride": stride, "padding": pad}
            acc = layer_forward_int(Layer(kind, "logits", {**p, "bias": np.zeros(out, np.int32)}),
                                    cur)
            p["rq_mult"], p["rq_bias"], p["rq_shift"] = fit_requant(acc, rng)
            if len(item) > 6:
                p["input"] = item[6]
            ly = Layer(kind, "requant", p, _float(w, out))
        elif tag == "pool":
            ly = Layer(f"{item[1]}_pool2d", "", {"kernel": item[2], "stride": item[3],
                                                 **({"padding": item[4]} if len(item) > 4
                                                    else {})})
        elif tag == "gap":
            ly = Layer("global_avg_pool2d")
        elif tag == "flatten":
            ly = Layer("flatten")
        elif tag == "add":
            src = i - 1 - item[1] if item[1] >= 0 else -1
            skip = x if src < 0 else outs[src]
            c = cur.shape[1]
            w = np.stack([rng.integers(1, 5, c), rng.integers(-2, 4, c)], axis=1).astype(np.int8)
            acc = (cur.astype(np.int64) * w[:, 0].reshape(1, -1, 1, 1)
                   + skip.astype(np.int64) * w[:, 1].reshape(1, -1, 1, 1))
            m, b, s = fit_requant(acc, rng)
            ly = Layer("add", "", {"weight": w, "source": src, "rq_mult": m, "rq_bias": b,
                                   "rq_shift": s})
        else:
            _, kind, out = item
            feats = cur.reshape(cur.shape[0], -1).shape[1]
            w = (rng.integers(0, 256, (out, feats)).astype(np.uint8)
                 if kind.startswith("adder") else
                 rng.integers(-128, 128, (out, feats)).astype(np.int8))
            ly = Layer(kind, "logits", {"weight": w, "bias": rng.integers(-99, 99, out)
                                        .astype(np.int32)},
                       {"weight": w.astype(np.float32), "bias": np.zeros(out, np.float32)})
        layers.append(ly)
        if tag == "add":
            cur = layer_forward_int(ly, cur, skip)
        else:
            cur = layer_forward_int(ly, cur)
        outs.append(cur)
    model = make_model(name="layers", input_shape=in_shape, input_scale=1 / 255,
                       class_names=[str(j) for j in range(cur.shape[1])], layers=layers)
    assert np.array_equal(infer_int(model, x), cur)
    return model


def _float(w, out):
    return {"weight": w.astype(np.float32),
            **{k: np.ones(out, np.float32) for k in ("bn_gamma", "bn_var")},
            **{k: np.zeros(out, np.float32) for k in ("bn_beta", "bn_mean")},
            "bn_eps": np.float64(1e-5)}


#: Small models, each with one of the new layer kinds (and fused pools kept where they apply).
SPECS = {
    "pool_first_max3s2": ((1, 9, 9), [("pool", "max", 3, 2), ("conv", "adder_conv2d", 2, 3, 1, 1),
                                      ("flatten",), ("linear", "mul_linear", 3)]),
    "conv_avg3s2_gap": ((2, 8, 8), [("conv", "mul_conv2d", 3, 3, 1, 1), ("pool", "avg", 3, 2),
                                   ("gap",), ("flatten",), ("linear", "adder_linear", 3)]),
    "conv5s2_max2s1_residual": ((1, 11, 11), [
        ("conv", "adder_conv2d", 2, 5, 2, 2), ("pool", "max", 2, 1),
        ("conv", "mul_conv2d", 2, 3, 1, 1), ("add", 1), ("flatten",),
        ("linear", "adder_linear", 3)]),
    "residual_on_input_max5": ((2, 10, 10), [
        ("conv", "mul_conv2d", 2, 3, 1, 1), ("add", -1), ("pool", "max", 5, 3),
        ("pool", "avg", 2, 2), ("flatten",), ("linear", "mul_linear", 2)]),
    "k11s3p5_avg3s2": ((2, 20, 20), [("conv", "adder_conv2d", 2, 11, 3, 5), ("pool", "avg", 3, 2),
                                    ("flatten",), ("linear", "mul_linear", 3)]),
    "projection_shortcut": ((2, 8, 8), [
        ("conv", "mul_conv2d", 2, 3, 1, 1), ("conv", "adder_conv2d", 4, 1, 2, 0),
        ("conv", "adder_conv2d", 4, 3, 2, 1, 0), ("conv", "mul_conv2d", 4, 3, 1, 1),
        ("add", 2), ("gap",), ("flatten",), ("linear", "mul_linear", 3)]),
    "k7s2p3_mul_max2s2_fused": ((1, 14, 14), [("conv", "mul_conv2d", 3, 7, 2, 3),
                                             ("pool", "max", 2, 2), ("flatten",),
                                             ("linear", "adder_linear", 2)]),
}


def grouped_model(rng, x, spec):
    """``spec``: ``("g", kind, out, k, stride, pad, groups)`` grouped convolutions, then a
    flatten and a multiply FC of 3 logits."""
    layers, cur = [], x
    for _, kind, out, k, stride, pad, groups in spec:
        c = cur.shape[1]
        shape = (out, c // groups, k, k)
        adder = kind.startswith("adder")
        w = (rng.integers(0, 256, shape).astype(np.uint8) if adder
             else rng.integers(-128, 128, shape).astype(np.int8))
        fwd = gl.adder_conv2d if adder else gl.mul_conv2d
        acc = fwd(cur, w, stride=stride, padding=pad, groups=groups)
        m, b, s = fit_requant(acc, rng)
        layers.append(Layer(kind, "requant", dict(weight=w, stride=stride, padding=pad,
                                                  groups=groups, pad_value=0, rq_mult=m,
                                                  rq_bias=b, rq_shift=s), _float(w, out)))
        cur = gl.requantize(acc, m, b, s)
    layers.append(Layer("flatten"))
    feats = int(np.prod(cur.shape[1:]))
    w = rng.integers(-128, 128, (3, feats)).astype(np.int8)
    layers.append(Layer("mul_linear", "logits", dict(weight=w, bias=np.zeros(3, np.int32)),
                        dict(weight=w.astype(np.float32), bias=np.zeros(3, np.float32))))
    return make_model(name="grouped", input_shape=x.shape[1:], input_scale=1 / 255,
                      class_names=["0", "1", "2"], layers=layers)


def with_bits(model, w_bits, in_bits):
    """``model`` with every multiply layer at seed 001's <W:I> (``golden.bitwidth``: the
    weights clipped to W-bit two's complement, the input's top I bits read)."""
    import dataclasses

    from golden.bitwidth import BIT_KINDS, weight_range
    lo, hi = weight_range(w_bits)
    layers = tuple(dataclasses.replace(ly, params=dict(
        ly.params, w_bits=w_bits, in_bits=in_bits,
        weight=np.clip(ly.params["weight"], lo, hi).astype(np.int8)))
        if ly.kind in BIT_KINDS else ly for ly in model.layers)
    return dataclasses.replace(model, layers=layers)


def assert_stages_equal_golden(compiled, result, golden_trace, i: int, where: str, seed) -> None:
    """Every stage output of ``result`` (``sim.compile.compiler.run_compiled`` on image ``i``)
    equals golden's (``infer_int(..., trace=True)``), else an assertion naming ``where``, the
    image, the stage, the first differing index, both values and ``seed``."""
    for st, y in zip(compiled.stages, result.outputs, strict=True):
        want = np.asarray(golden_trace[st.golden_index][i]).reshape(st.out_shape)
        bad = np.flatnonzero(y.ravel() != want.ravel())
        assert not bad.size, (f"{where} image {i} {st.name} index {bad[0]}: "
                              f"{y.ravel()[bad[0]]} != golden {want.ravel()[bad[0]]} "
                              f"(seed {seed})")
