"""Model format version 2: grouped / binarized layers and the eq.-3 output stage; version-1 files
keep loading bit-exact; every new field's load error, pinned."""

import json

import numpy as np
import pytest

import golden
from golden import datasets
from golden import layers as L
from golden.addnet import ADDNET_PAD, basic_block
from golden.model import (
    MODELS_DIR, Layer, ModelFormatError, accuracy, infer_int, layer_forward_float,
    layer_forward_int, load_model, make_model, model_arrays, save_model,
)
from golden.quantize import quant_thresholds


def _bn(o, rng=None):
    if rng is None:
        return dict(bn_gamma=np.ones(o, np.float32), bn_beta=np.zeros(o, np.float32),
                    bn_mean=np.zeros(o, np.float32), bn_var=np.ones(o, np.float32),
                    bn_eps=np.float64(1e-5))
    return dict(bn_gamma=rng.uniform(-2, 2, o).astype(np.float32),
                bn_beta=rng.uniform(-1, 1, o).astype(np.float32),
                bn_mean=rng.uniform(-50, 50, o).astype(np.float32),
                bn_var=rng.uniform(100, 2000, o).astype(np.float32), bn_eps=np.float64(1e-5))


def _rq(rng, o):
    return dict(rq_mult=np.full(o, 300, np.int32),
                rq_bias=rng.integers(0, 1 << 16, o).astype(np.int64),
                rq_shift=np.full(o, 12, np.int32))


def _q(rng, o):
    return dict(q_thresh=np.sort(rng.integers(-2000, 2000, (o, 255)), axis=1).astype(np.int64),
                q_sign=rng.choice(np.array([-1, 1], np.int8), o))


def _binw(rng, shape):
    return rng.choice(np.array([-1, 1], np.int8), shape)


def v2_model(rng=None):
    """mul_conv (requant) -> mul_gconv g2 (requant) -> adder_gconv depthwise ('quant') -> Add-Net
    basic block (bin depthwise m=2 pad 128, bin pointwise, both 'quant') -> avgpool -> flatten
    -> mul_linear."""
    rng = rng or np.random.default_rng(0)
    w0 = rng.integers(-128, 128, (4, 1, 3, 3)).astype(np.int8)
    w1 = rng.integers(-128, 128, (8, 2, 3, 3)).astype(np.int8)
    w2 = rng.integers(0, 256, (8, 1, 3, 3)).astype(np.uint8)
    w3 = _binw(rng, (16, 1, 3, 3))
    w4 = _binw(rng, (6, 16, 1, 1))
    w5 = rng.integers(-128, 128, (3, 24)).astype(np.int8)

    def f(w, o, **extra):
        return dict(weight=w.astype(np.float32), **_bn(o), **extra)

    q_float = dict(quant_tmax=np.float64(0.75))
    layers = [
        Layer("mul_conv2d", "requant", dict(weight=w0, stride=1, padding=1, **_rq(rng, 4)),
              f(w0, 4)),
        Layer("mul_gconv2d", "requant", dict(weight=w1, stride=1, padding=1, groups=2,
                                             pad_value=0, **_rq(rng, 8)), f(w1, 8)),
        Layer("adder_gconv2d", "quant", dict(weight=w2, stride=1, padding=1, groups=8,
                                             pad_value=0, **_q(rng, 8)),
              f(w2, 8, **q_float)),
        Layer("bin_gconv2d", "quant", dict(weight=w3, stride=1, padding=1, groups=8,
                                           pad_value=ADDNET_PAD, **_q(rng, 16)),
              f(w3, 16, alpha=np.full(16, 0.5, np.float32), **q_float)),
        Layer("bin_gconv2d", "quant", dict(weight=w4, stride=1, padding=0, groups=1,
                                           pad_value=0, **_q(rng, 6)),
              f(w4, 6, alpha=np.full(6, 0.25, np.float32), **q_float)),
        Layer("avg_pool2d", "", dict(kernel=2, stride=2)),
        Layer("flatten"),
        Layer("mul_linear", "logits", dict(weight=w5, bias=np.array([1, -2, 3], np.int32)),
              dict(weight=w5.astype(np.float32), bias=np.zeros(3, np.float32))),
    ]
    return make_model(name="v2", input_shape=(1, 4, 4), input_scale=1 / 255,
                      class_names=["a", "b", "c"], layers=layers)


def test_v2_round_trip_and_layer_by_layer(tmp_path):
    m = v2_model()
    save_model(m, tmp_path / "v2.npz")
    with np.load(tmp_path / "v2.npz") as z:
        assert int(z["spinpim_format"]) == 2
        assert int(z["layer3.groups"]) == 8 and int(z["layer3.pad_value"]) == 128
    m2 = load_model(tmp_path / "v2.npz")
    assert m2.shapes() == [(1, 4, 4), (4, 4, 4), (8, 4, 4), (8, 4, 4), (16, 4, 4), (6, 4, 4),
                           (6, 2, 2), (24,), (3,)]
    x = np.random.default_rng(1).integers(0, 256, (3, 1, 4, 4)).astype(np.uint8)
    outs = golden.infer_int(m2, x, trace=True)
    p = [ly.params for ly in m.layers]
    a0 = L.requantize(L.mul_conv2d(x, p[0]["weight"], padding=1), p[0]["rq_mult"],
                      p[0]["rq_bias"], p[0]["rq_shift"])
    a1 = L.requantize(L.mul_conv2d(a0, p[1]["weight"], padding=1, groups=2), p[1]["rq_mult"],
                      p[1]["rq_bias"], p[1]["rq_shift"])
    a2 = L.threshold_quantize(L.adder_conv2d(a1, p[2]["weight"], padding=1, groups=8),
                              p[2]["q_thresh"], p[2]["q_sign"])
    a4 = basic_block(a2, m.layers[3], m.layers[4])
    a6 = L.avg_pool2d(a4, 2).reshape(3, -1)
    a7 = L.add_bias(L.mul_linear(a6, p[7]["weight"]), p[7]["bias"])
    for got, exp in zip([outs[0], outs[1], outs[2], outs[4], outs[7]], [a0, a1, a2, a4, a7],
                        strict=True):
        assert got.dtype == exp.dtype and (got == exp).all()
    assert golden.infer_float(m2, x).shape == (3, 3)


def test_v1_model_is_still_written_as_version_1(tmp_path):
    m = load_model(MODELS_DIR / "digits_addernet.npz")
    with np.load(MODELS_DIR / "digits_addernet.npz") as z:
        assert int(z["spinpim_format"]) == 1
        stored = {k: z[k] for k in z.files}
    save_model(m, tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz") as z:
        again = {k: z[k] for k in z.files}
    assert sorted(again) == sorted(stored)
    for k, v in stored.items():
        assert again[k].dtype == v.dtype and np.array_equal(again[k], v), k


def test_v1_bundled_digits_model_unchanged():
    """Version-1 file through the version-2 reader: the accuracy recorded beside it, exactly."""
    try:
        images, labels = datasets.load_digits("test")
    except datasets.DatasetError as e:
        pytest.skip(f"digits not installed: {e}")
    model = load_model(MODELS_DIR / "digits_addernet.npz")
    meta = json.loads((MODELS_DIR / "digits_addernet.json").read_text())
    assert accuracy(infer_int(model, images), labels) == meta["int8_test_accuracy"]


def test_binarized_layer_integer_equals_float_reference():
    """alpha and BN folded into eq.-3 thresholds: integer codes == the float network's codes.

    The fold is derived here from the real values: a symmetric input code j is the real
    (2j - 255)/255 (padding code 128 included), so y = alpha * sum B * x_real
    = alpha * (2/255) * acc - alpha * sum B, and z = a * (y - mean) + beta.
    """
    rng = np.random.default_rng(3)
    c, m = 4, 4
    w = _binw(rng, (c * m, 1, 3, 3))
    alpha = rng.uniform(0.05, 1.0, c * m).astype(np.float32)
    bn = _bn(c * m, rng)
    a = bn["bn_gamma"].astype(np.float64) / np.sqrt(bn["bn_var"].astype(np.float64) + 1e-5)
    al = alpha.astype(np.float64)
    sum_b = w.reshape(c * m, -1).sum(axis=1).astype(np.float64)
    ratio = a * al * 2 / 255
    offset = bn["bn_beta"] - a * bn["bn_mean"].astype(np.float64) - a * al * sum_b
    bound = L.conv_acc_bound("bin", 9)
    thresh, sign = quant_thresholds(ratio, offset, 0.9, bound)
    layer = Layer("bin_gconv2d", "quant",
                  dict(weight=w, stride=1, padding=1, groups=c, pad_value=ADDNET_PAD,
                       q_thresh=thresh, q_sign=sign),
                  dict(weight=w.astype(np.float32), alpha=alpha, quant_tmax=np.float64(0.9),
                       **bn))
    x = rng.integers(0, 256, (8, c, 6, 6)).astype(np.uint8)
    got = layer_forward_int(layer, x)
    real = layer_forward_float(layer, (2.0 * x - 255) / 255, pad_real=(2.0 * 128 - 255) / 255)
    exp = np.rint((real + 1) * 255 / 2).astype(np.int64)
    assert len(np.unique(got)) > 50                      # the test exercises many codes
    assert (got.astype(np.int64) == exp).all()


# ----------------------------------------------------------------------------------------------
# load errors: one line, naming the array


def _arrays():
    return dict(model_arrays(v2_model()))


def _set(key, value):
    return lambda a: a.update({key: value})


def _setitem(key, idx, value):
    def f(a):
        a[key] = a[key].copy()
        a[key][idx] = value
    return f


@pytest.mark.parametrize("mutate,msg", [
    (_set("layer1.groups", np.int64(3)),
     r"array 'layer1.groups' is 3, which does not fit layer1.weight \[8, 2, 3, 3\] on a "
     r"4-channel input: groups 3 does not divide the 4 input channels"),
    (_set("layer1.groups", np.int64(4)),
     r"array 'layer1.groups' is 4, .*must be \[8, 1, kh, kw\], not \[8, 2, kh, kw\]"),
    (_set("layer1.groups", np.int64(0)), r"array 'layer1.groups' must be >= 1, not 0"),
    (_setitem("layer3.weight", (5, 0, 1, 2), 0),
     r"array 'layer3.weight' must hold only -1 and \+1 \(binarized, seed 002 eq. 2\), but "
     r"element \[5, 0, 1, 2\] is 0"),
    (_setitem("layer4.weight", (0, 3, 0, 0), 2),
     r"array 'layer4.weight' must hold only -1 and \+1 .* element \[0, 3, 0, 0\] is 2"),
    (lambda a: a.pop("layer3.float.alpha"),
     r"array 'layer3.float.alpha' is missing from"),
    (_setitem("layer3.float.alpha", 7, 0.0),
     r"array 'layer3.float.alpha' must be positive and finite \(seed 002 eq. 2: alpha = "
     r"E\|w\|\), but channel 7 is 0.0"),
    (_setitem("layer4.float.alpha", 2, -0.5),
     r"array 'layer4.float.alpha' must be positive and finite .* channel 2 is -0.5"),
    (_setitem("layer4.float.alpha", 0, np.nan),
     r"array 'layer4.float.alpha' must be positive and finite .* channel 0 is nan"),
    (_set("layer4.float.alpha", np.ones(5, np.float32)),
     r"array 'layer4.float.alpha' must have shape \(6,\), not \(5,\)"),
    (_set("layer3.float.alpha", np.ones(16, np.float64)),
     r"array 'layer3.float.alpha' must have dtype float32, not float64"),
    (_set("layer1.pad_value", np.int64(128)),
     r"array 'layer1.pad_value' is 128, but layer 1's input is not the output of a 'quant' "
     r"layer: padding an unsigned activation must insert 0"),
    (_set("layer3.pad_value", np.int64(256)),
     r"array 'layer3.pad_value' must be an activation code in \[0, 255\], not 256"),
    (_set("layer3.pad_value", np.int32(128)),
     r"array 'layer3.pad_value' must be an int64 scalar, not int32 \(\)"),
    (_setitem("layer3.q_thresh", (2, 100), -10 ** 9),
     r"array 'layer3.q_thresh' must be non-decreasing along each channel, but channel 2 "
     r"decreases"),
    (_setitem("layer4.q_sign", 1, 0),
     r"array 'layer4.q_sign' must hold only -1 and \+1, but channel 1 is 0"),
    (_set("layer4.q_thresh", np.zeros((6, 256), np.int64)),
     r"array 'layer4.q_thresh' must have shape \(6, 255\), not \(6, 256\)"),
    (_set("layer4.float.quant_tmax", np.float64(1.5)),
     r"array 'layer4.float.quant_tmax' must be in \(0, 1\] .*, not 1.5"),
    (_set("layer4.float.quant_tmax", np.float64(0.0)),
     r"array 'layer4.float.quant_tmax' must be in \(0, 1\]"),
    (_set("layer0.output", np.str_("quant")),
     r"array 'layer0.output' is 'quant'; allowed for mul_conv2d: requant, logits"),
    (_set("layer3.kind", np.str_("xnor_gconv2d")),
     r"array 'layer3.kind' is 'xnor_gconv2d'; allowed: .*bin_gconv2d"),
    (_set("spinpim_format", np.int64(1)),
     r"array 'layer1.kind' is 'mul_gconv2d', a format-2 kind, but 'spinpim_format' is 1"),
    (_set("layer4.extra", np.zeros(1)), r"array 'layer4.extra' is not part of format 2"),
])
def test_v2_load_errors_name_the_array(tmp_path, mutate, msg):
    arrays = _arrays()
    mutate(arrays)
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ModelFormatError, match=msg) as e:
        load_model(tmp_path / "m.npz")
    assert "\n" not in str(e.value)


def test_inconsistent_channel_multiplier_is_named(tmp_path):
    """A depthwise layer whose output channels are not a multiple of its groups: the channel
    multiplier O / groups is not an integer."""
    arrays = _arrays()
    rng = np.random.default_rng(0)
    arrays["layer3.weight"] = _binw(rng, (12, 1, 3, 3))
    arrays["layer3.float.weight"] = np.ones((12, 1, 3, 3), np.float32)
    for k in ("float.alpha", "float.bn_gamma", "float.bn_beta", "float.bn_mean",
              "float.bn_var", "q_sign"):
        arrays["layer3." + k] = arrays["layer3." + k][:12]
    arrays["layer3.q_thresh"] = arrays["layer3.q_thresh"][:12]
    arrays["layer4.weight"] = arrays["layer4.weight"][:, :12]
    arrays["layer4.float.weight"] = arrays["layer4.float.weight"][:, :12]
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ModelFormatError,
                       match=r"array 'layer3.groups' is 8, .*groups 8 does not divide the 12 "
                             r"output channels \(the channel multiplier out/groups must be an "
                             r"integer\)"):
        load_model(tmp_path / "m.npz")
