"""Post-training quantization (golden.quantize): exact clip-and-fold, requant bounds, tracking."""

import subprocess
import sys

import numpy as np
import pytest

from golden import layers as L
from golden.model import Layer, accuracy, infer_float, infer_int, layer_forward_float
from golden.quantize import (MAX_SHIFT, FloatLayer, fold_adder_weights, quantize_model,
                             requant_params)


def _l1_float(x, w, padding):
    """-sum|x - w| in float64, conv with zero padding; x [N,C,H,W], w [O,C,k,k]."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, w.shape[2:], axis=(2, 3))
    # win: N, C, Ho, Wo, k, k
    d = np.abs(win[:, None] - w[None, :, :, None, None])        # N, O, C, Ho, Wo, k, k
    return -d.sum(axis=(2, 5, 6))


@pytest.mark.parametrize("s", [0.02, 1 / 255, 0.37])
def test_adder_clip_and_fold_is_exact(s):
    rng = np.random.default_rng(1)
    # weights on the grid, a third of them below 0 or above 255*s
    w = s * rng.integers(-120, 380, size=(5, 3, 3, 3)).astype(np.float64)
    assert (w < 0).any() and (w > 255 * s).any()
    x_int = rng.integers(0, 256, size=(4, 3, 6, 7)).astype(np.uint8)
    x_int[0, :, 0, :] = 255          # include both ends of the range
    x_int[1, :, :, 0] = 0
    w_int, c = fold_adder_weights(w, s)
    assert w_int.dtype == np.uint8 and w_int.shape == w.shape
    acc = L.adder_conv2d(x_int, w_int, stride=1, padding=1)
    y_q = s * acc - c[None, :, None, None]
    y_f = _l1_float(s * x_int.astype(np.float64), w, padding=1)
    np.testing.assert_allclose(y_q, y_f, rtol=1e-12, atol=1e-9 * 255 * s * 27)
    # the excess is really folded: without c the outputs differ
    assert np.abs(s * acc - y_f).max() > 1.0 * s


def test_adder_linear_fold_is_exact():
    rng = np.random.default_rng(2)
    s = 0.05
    w = s * rng.integers(-300, 600, size=(7, 20)).astype(np.float64)
    x_int = rng.integers(0, 256, size=(50, 20)).astype(np.uint8)
    w_int, c = fold_adder_weights(w, s)
    y_q = s * L.adder_linear(x_int, w_int) - c[None]
    y_f = -np.abs(s * x_int[:, None, :].astype(np.float64) - w[None]).sum(axis=2)
    np.testing.assert_allclose(y_q, y_f, rtol=1e-12, atol=1e-9)


def test_fold_in_range_weights_has_no_constant():
    s = 0.1
    w = s * np.arange(0, 256, dtype=np.float64).reshape(4, 64)
    w_int, c = fold_adder_weights(w, s)
    assert np.array_equal(w_int.reshape(-1), np.arange(256))
    assert np.all(c == 0)


@pytest.mark.parametrize("kind,fan_in", [("adder", 9), ("adder", 288), ("mul", 9),
                                         ("mul", 288), ("adder", 4096)])
def test_requant_params_satisfy_bounds(kind, fan_in):
    rng = np.random.default_rng(3)
    n = 64
    ratio = rng.choice([-1, 1], n) * 10.0 ** rng.uniform(-9, 2, n)
    offset = rng.normal(0, 1, n) * 10.0 ** rng.uniform(-2, 6, n)
    ratio[:3] = 0.0                       # dead channels
    offset[3] = 1e12                      # always saturated channel
    bound = L.conv_acc_bound(kind, fan_in)
    mult, bias, shift = requant_params(ratio, offset, bound)
    assert mult.dtype == np.int32 and bias.dtype == np.int64 and shift.dtype == np.int32
    L.check_requant_bound(bound, mult, bias, shift)
    assert np.all(np.abs(mult) < 2 ** 15)
    assert np.all((shift >= 0) & (shift <= MAX_SHIFT))
    for ch in range(n):
        m, sh = int(mult[ch]), int(shift[ch])
        assert abs(m - ratio[ch] * 2.0 ** sh) <= 0.5         # mult is ratio rounded at shift
        if sh < MAX_SHIFT:          # maximal: one more bit breaks a bound
            m2 = int(np.rint(ratio[ch] * 2.0 ** (sh + 1)))
            b2 = int(np.rint(np.clip(offset[ch], -bound * abs(ratio[ch]) - 512,
                                     bound * abs(ratio[ch]) + 512) * 2.0 ** (sh + 1)))
            worst = bound * abs(m2) + abs(b2) + (1 << sh)
            assert abs(m2) >= 2 ** 15 or worst >= 2 ** 47
    # requantize computes round(ratio*acc + offset) up to the multiplier's precision
    acc = rng.integers(-bound, 1 if kind == "adder" else bound, size=(200, n)).astype(np.int64)
    out = L.requantize(acc, mult, bias, shift).astype(np.float64)
    ref = np.clip(ratio[None] * acc + offset[None], 0, 255)
    err = np.abs(out - ref) - 0.5
    tol = bound * np.abs(mult / 2.0 ** shift - ratio) + np.abs(bias / 2.0 ** shift - offset) \
        * (np.abs(offset) < bound * np.abs(ratio) + 512)
    assert np.all(err <= tol[None] + 1e-6)


def test_requant_params_rejects_bad_input():
    with pytest.raises(ValueError):
        requant_params(np.array([np.nan]), np.array([0.0]), 100)
    with pytest.raises(ValueError):
        requant_params(np.array([1.0, 2.0]), np.array([0.0]), 100)


def _pre_bn(fl: FloatLayer, x):
    """Output of fl's convolution before BN (two ReLU passes with gamma = +-1)."""
    o = fl.weight.shape[0]
    params = {"stride": fl.stride, "padding": fl.padding} if fl.kind.endswith("conv2d") else {}
    outs = []
    for g in (1.0, -1.0):
        fp = {"weight": fl.weight.astype(np.float32), "bn_gamma": np.full(o, g, np.float32),
              "bn_beta": np.zeros(o, np.float32), "bn_mean": np.zeros(o, np.float32),
              "bn_var": np.ones(o, np.float32), "bn_eps": np.float64(0.0)}
        outs.append(layer_forward_float(Layer(fl.kind, "requant", params, fp), x))
    return outs[0] - outs[1]


def _random_model(rng, calib):
    """A tiny float network with every layer kind; BN statistics from the calibration data."""
    specs = [FloatLayer("mul_conv2d", rng.normal(0, 0.5, (4, 1, 3, 3)), padding=1),
             FloatLayer("adder_conv2d", rng.uniform(-0.5, 2.5, (6, 4, 3, 3)), padding=1),
             FloatLayer("max_pool2d", kernel=2, stride=2),
             FloatLayer("adder_conv2d", rng.uniform(-0.5, 2.5, (8, 6, 3, 3)), padding=1),
             FloatLayer("avg_pool2d", kernel=2, stride=2),
             FloatLayer("flatten"),
             FloatLayer("adder_linear", rng.uniform(-0.5, 2.5, (12, 32))),
             FloatLayer("mul_linear", rng.normal(0, 1, (5, 12)), bias=rng.normal(0, 0.5, 5))]
    x = calib.astype(np.float64) / 16
    for fl in specs:
        if fl.kind in ("mul_conv2d", "adder_conv2d", "adder_linear"):
            y = _pre_bn(fl, x)
            axes = (0, 2, 3) if y.ndim == 4 else (0,)
            o = fl.weight.shape[0]
            fl.bn_mean, fl.bn_var = y.mean(axis=axes), y.var(axis=axes) + 1e-3
            fl.bn_gamma, fl.bn_beta = rng.uniform(0.5, 1.5, o), rng.uniform(-0.3, 0.8, o)
            fl.weight = fl.weight.astype(np.float32)
        if fl.kind == "mul_linear":
            break
        kind_params = {"kernel": fl.kernel, "stride": fl.stride} if "pool" in fl.kind else {}
        if fl.kind in ("mul_conv2d", "adder_conv2d", "adder_linear"):
            a = fl.bn_gamma / np.sqrt(fl.bn_var + fl.bn_eps)
            shape = (1, -1) + (1,) * (y.ndim - 2)
            x = np.maximum((y - fl.bn_mean.reshape(shape)) * a.reshape(shape)
                           + fl.bn_beta.reshape(shape), 0)
        else:
            x = layer_forward_float(Layer(fl.kind, "", kind_params), x)
    return specs


def test_quantized_random_model_tracks_float():
    rng = np.random.default_rng(4)
    calib = rng.integers(0, 17, size=(300, 1, 8, 8)).astype(np.uint8)
    specs = _random_model(rng, calib)
    model = quantize_model(name="tiny", input_shape=(1, 8, 8), input_scale=1 / 16,
                           class_names="abcde", layers=specs, calib_images=calib)
    kinds = [ly.kind for ly in model.layers]
    assert kinds == ["mul_conv2d", "adder_conv2d", "max_pool2d", "adder_conv2d", "avg_pool2d",
                     "flatten", "adder_linear", "mul_linear"]
    for ly in model.layers:
        if ly.output == "requant":
            fan_in = int(np.prod(ly.params["weight"].shape[1:]))
            L.check_requant_bound(L.conv_acc_bound("adder" if ly.is_adder else "mul", fan_in),
                                  ly.params["rq_mult"], ly.params["rq_bias"],
                                  ly.params["rq_shift"])
    test = rng.integers(0, 17, size=(500, 1, 8, 8)).astype(np.uint8)
    li, lf = infer_int(model, test), infer_float(model, test)
    # the net is not degenerate: its float argmax uses several classes
    assert len(np.unique(lf.argmax(1))) >= 3
    agree = accuracy(li, lf.argmax(1))
    assert agree >= 0.9, agree
    # int logits are the float logits on one common scale
    s = (li * lf).sum() / (li * li).sum()
    assert s > 0
    rel = np.abs(s * li - lf).max() / np.abs(lf).max()
    assert rel < 0.1, rel


def test_quantize_rejects_bad_calibration():
    rng = np.random.default_rng(5)
    calib = rng.integers(0, 17, size=(50, 1, 8, 8)).astype(np.uint8)
    specs = _random_model(rng, calib)
    with pytest.raises(ValueError):
        quantize_model(name="t", input_shape=(1, 8, 8), input_scale=1 / 16, class_names="abcde",
                       layers=specs, calib_images=calib.astype(np.float32))
    with pytest.raises(ValueError):
        quantize_model(name="t", input_shape=(1, 8, 8), input_scale=1 / 16, class_names="abcde",
                       layers=specs, calib_images=calib[:, :, :4])


def test_quantize_imports_no_torch():
    code = ("import sys, golden.quantize; bad = [m for m in ('torch', 'amaranth', 'cocotb', "
            "'sim', 'rtl') if m in sys.modules]; assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
