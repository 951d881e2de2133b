"""Add-Net layers of golden (grouped, depthwise, pointwise, binarized convolution, the eq.-3
threshold quantizer, the basic block) against independent references: plain Python loops over
Python ints, the seed's eq. 3 evaluated directly, and torch's grouped conv2d when torch is
installed."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden import layers as L
from golden.addnet import ADDNET_PAD, basic_block, channel_multiplier, check_basic_block
from golden.model import Layer, quant_eq3
from golden.quantize import binarize, quant_thresholds


def naive_grouped_conv(x, w, stride, padding, groups, pad_value, term):
    """Loop over every index; output channel o reads input channels of group o // (O/groups)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    og = o // groups
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, ho, wo), dtype=object)
    for b in range(n):
        for oc in range(o):
            g = oc // og
            for i in range(ho):
                for j in range(wo):
                    acc = 0
                    for ci in range(cg):
                        ic = g * cg + ci
                        for di in range(kh):
                            for dj in range(kw):
                                r, s = i * stride + di - padding, j * stride + dj - padding
                                inside = 0 <= r < h and 0 <= s < wd
                                xv = int(x[b, ic, r, s]) if inside else pad_value
                                wv = int(w[oc, ci, di, dj])
                                acc += -abs(xv - wv) if term == "adder" else xv * wv
                    out[b, oc, i, j] = acc
    return out


def naive_threshold(acc, thresh, sign):
    out = np.zeros(acc.shape, dtype=object)
    for idx in np.ndindex(acc.shape):
        o = idx[1]
        v = int(sign[o]) * int(acc[idx])
        out[idx] = sum(1 for t in thresh[o] if v >= int(t))
    return out


def _weights(rng, kind, shape):
    if kind == "adder":
        return rng.integers(0, 256, shape).astype(np.uint8)
    if kind == "mul":
        return rng.integers(-128, 128, shape).astype(np.int8)
    return rng.choice(np.array([-1, 1], np.int8), shape)


CONV = {"adder": L.adder_conv2d, "mul": L.mul_conv2d, "bin": L.bin_conv2d}


@pytest.mark.parametrize("kind", ["adder", "mul", "bin"])
@pytest.mark.parametrize("c,o,groups", [(4, 6, 2), (3, 6, 3), (4, 4, 1), (6, 3, 3)])
@pytest.mark.parametrize("stride,padding,pad_value", [(1, 1, 0), (2, 1, 128), (1, 0, 7)])
def test_grouped_conv_matches_naive(kind, c, o, groups, stride, padding, pad_value):
    rng = np.random.default_rng([c, o, groups, stride, padding])
    x = rng.integers(0, 256, (2, c, 5, 5)).astype(np.uint8)
    w = _weights(rng, kind, (o, c // groups, 3, 3))
    got = CONV[kind](x, w, stride=stride, padding=padding, groups=groups, pad_value=pad_value)
    exp = naive_grouped_conv(x, w, stride, padding, groups, pad_value, kind)
    assert got.dtype == np.int64 and got.shape == exp.shape
    assert (got == exp.astype(np.int64)).all()


def test_corner_values_bin_and_adder():
    """All-255 inputs: a binarized layer's accumulator reaches +-fan_in*255 exactly."""
    x = np.full((1, 2, 3, 3), 255, np.uint8)
    w = np.ones((2, 1, 3, 3), np.int8)
    w[1] = -1
    got = L.bin_conv2d(x, w, groups=2)
    assert got[0, 0, 0, 0] == 9 * 255 and got[0, 1, 0, 0] == -9 * 255
    wa = np.zeros((2, 1, 3, 3), np.uint8)
    assert L.adder_conv2d(x, wa, groups=2)[0, 1, 0, 0] == -9 * 255


def test_depthwise_channel_order():
    """Output channel c*m + j is input channel c convolved with its j-th kernel (torch's order).

    1x1 kernels with value j + 1 make the expected output (j + 1) * x[c], read off x directly.
    """
    rng = np.random.default_rng(5)
    c, m = 3, 4
    x = rng.integers(0, 256, (2, c, 4, 4)).astype(np.uint8)
    w = np.array([[[[j + 1]]] for _ in range(c) for j in range(m)], np.int8)   # [c*m, 1, 1, 1]
    y = L.depthwise_conv2d(x, w, kind="mul", multiplier=m)
    assert y.shape == (2, c * m, 4, 4)
    for ch in range(c):
        for j in range(m):
            assert (y[:, ch * m + j] == (j + 1) * x[:, ch].astype(np.int64)).all()


def test_depthwise_binarized_signs_follow_channel_order():
    """Kernel j of channel c flips the sign when j is odd: y[c*m + j] = +-sum of x[c]'s window."""
    rng = np.random.default_rng(6)
    c, m = 2, 4
    x = rng.integers(0, 256, (1, c, 3, 3)).astype(np.uint8)
    w = np.array([[np.full((3, 3), -1 if j % 2 else 1)] for _ in range(c) for j in range(m)],
                 np.int8)
    y = L.depthwise_conv2d(x, w, kind="bin", multiplier=m)
    for ch in range(c):
        total = int(x[0, ch].astype(np.int64).sum())
        assert [int(v) for v in y[0, ch * m:(ch + 1) * m, 0, 0]] == [total, -total, total, -total]


def test_pointwise_is_a_1x1_combination():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 256, (2, 5, 3, 3)).astype(np.uint8)
    w = rng.choice(np.array([-1, 1], np.int8), (4, 5, 1, 1))
    y = L.pointwise_conv2d(x, w, kind="bin")
    for o in range(4):
        exp = sum(int(w[o, c, 0, 0]) * x[:, c].astype(np.int64) for c in range(5))
        assert (y[:, o] == exp).all()


def test_grouped_conv_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    for kind, groups, c, o in [("mul", 4, 4, 16), ("bin", 4, 4, 16), ("bin", 1, 16, 8),
                               ("mul", 2, 6, 4)]:
        x = rng.integers(0, 256, (2, c, 6, 6)).astype(np.uint8)
        w = _weights(rng, kind, (o, c // groups, 3, 3))
        got = CONV[kind](x, w, padding=1, groups=groups)
        ref = torch.nn.functional.conv2d(torch.from_numpy(x.astype(np.float64)),
                                         torch.from_numpy(w.astype(np.float64)),
                                         padding=1, groups=groups).numpy()
        # float64 sums of integers below 2**53 are exact
        assert (got == ref.astype(np.int64)).all()


@pytest.mark.parametrize("call,msg", [
    (lambda: L.mul_conv2d(np.zeros((1, 4, 3, 3), np.uint8), np.zeros((6, 2, 3, 3), np.int8),
                          groups=3), "groups 3 does not divide the 4 input channels"),
    (lambda: L.mul_conv2d(np.zeros((1, 4, 3, 3), np.uint8), np.zeros((6, 2, 3, 3), np.int8),
                          groups=4), r"groups 4 does not divide the 6 output channels"),
    (lambda: L.mul_conv2d(np.zeros((1, 4, 3, 3), np.uint8), np.zeros((4, 4, 3, 3), np.int8),
                          groups=2), r"must be \[4, 2, kh, kw\], not \[4, 4, kh, kw\]"),
    (lambda: L.mul_conv2d(np.zeros((1, 4, 3, 3), np.uint8), np.zeros((4, 4, 3, 3), np.int8),
                          groups=0), "groups must be >= 1, not 0"),
    (lambda: L.bin_conv2d(np.zeros((1, 1, 3, 3), np.uint8), np.zeros((1, 1, 3, 3), np.int8)),
     r"weight must hold only -1 and \+1 .* weight\[0, 0, 0, 0\] is 0"),
    (lambda: L.bin_conv2d(np.zeros((1, 1, 3, 3), np.uint8), np.ones((1, 1, 3, 3), np.int8),
                          padding=1, pad_value=256), r"pad_value must be an activation code"),
    (lambda: L.depthwise_conv2d(np.zeros((1, 3, 3, 3), np.uint8), np.ones((6, 1, 3, 3), np.int8),
                                kind="bin", multiplier=4),
     r"depthwise weight for 3 channels and multiplier 4 must be \[12, 1, kh, kw\]"),
    (lambda: L.pointwise_conv2d(np.zeros((1, 3, 3, 3), np.uint8),
                                np.ones((6, 3, 3, 3), np.int8), kind="bin"),
     r"pointwise weight must be \[O, C/groups, 1, 1\]"),
])
def test_grouped_layer_errors(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


# ----------------------------------------------------------------------------------------------
# threshold quantizer and eq. 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_quantize_matches_naive(seed):
    rng = np.random.default_rng(seed)
    acc = rng.integers(-3000, 3000, (3, 4, 2, 2)).astype(np.int64)
    thresh = np.sort(rng.integers(-3000, 3000, (4, 255)), axis=1).astype(np.int64)
    sign = np.array([1, -1, 1, -1], np.int8)
    got = L.threshold_quantize(acc, thresh, sign)
    assert got.dtype == np.uint8
    assert (got == naive_threshold(acc, thresh, sign).astype(np.uint8)).all()


def test_threshold_quantize_errors():
    acc = np.zeros((1, 2), np.int64)
    t = np.zeros((2, 255), np.int64)
    with pytest.raises(ValueError, match="sign must hold only -1 and"):
        L.threshold_quantize(acc, t, np.array([1, 0], np.int8))
    t[1, 10] = -1
    with pytest.raises(ValueError, match="thresh must be non-decreasing .* channel 1"):
        L.threshold_quantize(acc, t, np.array([1, 1], np.int8))
    with pytest.raises(ValueError, match=r"thresh must have shape \[O, 255\]"):
        L.threshold_quantize(acc, np.zeros((2, 254), np.int64), np.array([1, 1], np.int8))


def eq3_direct(z, tmax):
    """Seed 002 eq. 3, k = 8, written as in the paper, round half up; returns the real value."""
    k = 8
    v = (2 ** k - 1) * (np.tanh(z) / (2 * tmax) + 0.5)
    j = np.clip(np.floor(v + 0.5), 0, 2 ** k - 1)
    return 2 / (2 ** k - 1) * j - 1


def test_quant_eq3_codes_are_eq3():
    z = np.linspace(-4, 4, 2001)
    for tmax in (1.0, 0.9, 0.5):
        j = quant_eq3(z, tmax)
        assert (j == np.round(j)).all() and j.min() >= 0 and j.max() <= 255
        # the level index of eq. 3's value (real levels are 2/255 apart: rint recovers it)
        level = np.rint((eq3_direct(z, tmax) + 1) * 255 / 2)
        assert (j == level).all()
        assert j.min() == 0 and j.max() == 255
    assert quant_eq3(np.array([0.0]), 1.0)[0] == 128    # 127.5 rounds half up


@settings(max_examples=40, deadline=None)
@given(ratio=st.floats(-0.05, 0.05).filter(lambda r: abs(r) > 1e-4),
       offset=st.floats(-3, 3), tmax=st.floats(0.2, 1.0))
def test_quant_thresholds_give_eq3_for_every_accumulator(ratio, offset, tmax):
    """Every integer accumulator in range: thresholds == eq. 3 on the real value, except where
    eq. 3's rounding argument lies within float64 noise of a rounding boundary (there float64
    evaluation of eq. 3 itself is ambiguous)."""
    bound = 2000
    thresh, sign = quant_thresholds(np.array([ratio]), np.array([offset]), tmax, bound)
    acc = np.arange(-bound, bound + 1, dtype=np.int64).reshape(1, 1, -1)
    got = L.threshold_quantize(acc, thresh, sign)[0, 0].astype(np.int64)
    z = ratio * acc[0, 0].astype(np.float64) + offset
    exp = np.rint((eq3_direct(z, tmax) + 1) * 255 / 2).astype(np.int64)
    v = 255 * (np.tanh(z) / (2 * tmax) + 0.5) + 0.5
    # ambiguous: v within float noise of a code boundary 1 .. 255 (beyond, the code saturates)
    clear = (np.abs(v - np.rint(v)) > 1e-9) | (v < 0.5) | (v > 255.5)
    assert clear.sum() > 3900
    assert (got[clear] == exp[clear]).all()


def test_quant_thresholds_constant_channel():
    thresh, sign = quant_thresholds(np.array([0.0, 0.0]), np.array([0.0, -10.0]), 1.0, 100)
    acc = np.array([[-100, -100], [100, 100]], np.int64)
    got = L.threshold_quantize(acc, thresh, sign)
    assert got.tolist() == [[128, 0], [128, 0]]


def test_binarize_is_eq2():
    w = np.array([[0.5, -1.5, 0.0], [2.0, -0.1, 0.3]], np.float32)
    b, alpha = binarize(w)
    assert b.dtype == np.int8 and b.tolist() == [[1, -1, 1], [1, -1, 1]]
    assert alpha.dtype == np.float32
    assert alpha.tolist() == [np.float32(4.4 / 6)] * 2          # E|w| over the layer
    _, alpha_c = binarize(w, per_channel=True)
    assert alpha_c.tolist() == [np.float32(2.0 / 3), np.float32(2.4 / 3)]


# ----------------------------------------------------------------------------------------------
# basic block


def _quant_layer(rng, weight, groups, padding, pad_value):
    o = weight.shape[0]
    thresh = np.sort(rng.integers(-1500, 1500, (o, 255)), axis=1).astype(np.int64)
    sign = rng.choice(np.array([-1, 1], np.int8), o)
    bn = {k: np.ones(o, np.float32) for k in ("bn_gamma", "bn_var")}
    bn.update(bn_beta=np.zeros(o, np.float32), bn_mean=np.zeros(o, np.float32),
              bn_eps=np.float64(1e-5), quant_tmax=np.float64(1.0),
              alpha=np.ones(o, np.float32), weight=weight.astype(np.float32))
    return Layer("bin_gconv2d", "quant",
                 dict(weight=weight, stride=1, padding=padding, groups=groups,
                      pad_value=pad_value, q_thresh=thresh, q_sign=sign), bn)


def test_basic_block_matches_naive_composition():
    rng = np.random.default_rng(9)
    c, m, q = 3, 4, 5
    x = rng.integers(0, 256, (2, c, 5, 5)).astype(np.uint8)
    wd = rng.choice(np.array([-1, 1], np.int8), (c * m, 1, 3, 3))
    wp = rng.choice(np.array([-1, 1], np.int8), (q, c * m, 1, 1))
    dw = _quant_layer(rng, wd, c, 1, ADDNET_PAD)
    pw = _quant_layer(rng, wp, 1, 0, 0)
    assert check_basic_block(dw, pw, c) == m == channel_multiplier(dw, c)
    acc = naive_grouped_conv(x, wd, 1, 1, c, ADDNET_PAD, "bin")
    mid = naive_threshold(acc, dw.params["q_thresh"], dw.params["q_sign"])
    acc = naive_grouped_conv(mid, wp, 1, 0, 1, 0, "bin")
    exp = naive_threshold(acc, pw.params["q_thresh"], pw.params["q_sign"])
    got = basic_block(x, dw, pw)
    assert got.dtype == np.uint8 and (got == exp.astype(np.uint8)).all()


def test_basic_block_refuses_a_wrong_structure():
    rng = np.random.default_rng(10)
    wd = rng.choice(np.array([-1, 1], np.int8), (8, 1, 3, 3))
    wp = rng.choice(np.array([-1, 1], np.int8), (4, 8, 1, 1))
    dw = _quant_layer(rng, wd, 2, 1, ADDNET_PAD)
    pw = _quant_layer(rng, wp, 1, 0, 0)
    with pytest.raises(ValueError, match="a depthwise layer on 4 channels has groups 4"):
        check_basic_block(dw, pw, 4)
    with pytest.raises(ValueError, match=r"pw must be a pointwise layer on 16 channels"):
        check_basic_block(_quant_layer(rng, np.ones((16, 1, 3, 3), np.int8), 4, 1, 128), pw, 4)
    req = Layer("bin_gconv2d", "requant", dw.params, dw.float_params)
    with pytest.raises(ValueError, match="dw must be a bin_gconv2d layer with output 'quant'"):
        check_basic_block(req, pw, 2)


# ----------------------------------------------------------------------------------------------
# post-training quantization of a float Add-Net


def _float_addnet(rng):
    from golden.quantize import FloatLayer

    def bn(o):
        return dict(bn_gamma=rng.uniform(0.5, 2, o), bn_beta=rng.uniform(-0.5, 0.5, o),
                    bn_mean=rng.uniform(-0.5, 0.5, o), bn_var=rng.uniform(0.5, 2, o))

    def q(kind, w, groups, padding, pad_value):
        o = w.shape[0]
        return FloatLayer(kind, weight=w, padding=padding, groups=groups, pad_value=pad_value,
                          output="quant", quant_tmax=0.95, **bn(o))

    return [
        FloatLayer("mul_conv2d", weight=rng.normal(0, 0.5, (4, 1, 3, 3)), padding=1, **bn(4)),
        q("bin_gconv2d", rng.normal(0, 1, (8, 1, 3, 3)), 4, 1, 0),        # block 1 depthwise
        q("bin_gconv2d", rng.normal(0, 1, (4, 8, 1, 1)), 1, 0, 0),        # block 1 pointwise
        q("bin_gconv2d", rng.normal(0, 1, (8, 1, 3, 3)), 4, 1, ADDNET_PAD),
        q("bin_gconv2d", rng.normal(0, 1, (4, 8, 1, 1)), 1, 0, 0),
        FloatLayer("avg_pool2d", kernel=2, stride=2),
        FloatLayer("flatten"),
        FloatLayer("mul_linear", weight=rng.normal(0, 0.3, (6, 16)), **bn(6)),
        FloatLayer("mul_linear", weight=rng.normal(0, 0.3, (3, 6)), bias=rng.normal(0, 1, 3)),
    ]


def test_quantize_addnet_binarized_layers_are_exact():
    """Each binarized 'quant' layer of the quantized model, fed the integer codes of the layer
    before, outputs the float reference's eq.-3 codes of the same inputs: alpha, BN and the
    symmetric-code offset are folded without error."""
    from golden.model import infer_int, input_codes, layer_forward_float, pad_reals
    from golden.quantize import quantize_model

    rng = np.random.default_rng(11)
    images = rng.integers(0, 256, (64, 1, 4, 4)).astype(np.uint8)
    model = quantize_model(name="t", input_shape=(1, 4, 4), input_scale=1 / 255,
                           class_names="abc", layers=_float_addnet(rng), calib_images=images)
    assert [ly.output for ly in model.layers] == ["requant", "quant", "quant", "quant", "quant",
                                                  "", "", "requant", "logits"]
    assert input_codes(model)[3] == "symmetric" and input_codes(model)[1] == "unsigned"
    assert all(((b == 1) | (b == -1)).all()
               for b in (model.layers[k].params["weight"] for k in (1, 2, 3, 4)))
    trace = infer_int(model, images, trace=True)
    pads = pad_reals(model)
    for k in (2, 3, 4):          # layers whose input is symmetric codes (layer 1's is unsigned)
        real = (2.0 * trace[k - 1] - 255) / 255
        exp = layer_forward_float(model.layers[k], real, pad_real=pads[k])
        exp = np.rint((exp + 1) * 255 / 2).astype(np.int64)
        assert (trace[k].astype(np.int64) == exp).all(), k
        assert len(np.unique(trace[k])) > 20               # many codes exercised
    # the hidden mul_linear reads symmetric codes, its -1 offset folded into rq_bias: against
    # the float layer on the same inputs, with the output scale fitted from the data (int8
    # weights: a few codes of rounding; an unfolded offset would be off by tens of codes)
    hid = layer_forward_float(model.layers[7], (2.0 * trace[6] - 255) / 255)
    big = trace[7] > 20
    scale = np.median(hid[big] / trace[7][big])
    assert np.abs(trace[7] - np.clip(np.rint(hid / scale), 0, 255)).max() <= 3


@pytest.mark.parametrize("adder", [False, True])
@pytest.mark.parametrize("groups,pad_value", [(2, 0), (4, 128), (1, 9)])
def test_float_reference_grouped_conv_matches_naive(adder, groups, pad_value):
    """The float reference's grouped convolution on integer-valued data (exact in float64)."""
    from golden.model import _float_conv

    rng = np.random.default_rng([groups, pad_value])
    x = rng.integers(0, 256, (2, 4, 5, 5)).astype(np.uint8)
    w = _weights(rng, "adder" if adder else "mul", (8, 4 // groups, 3, 3))
    got = _float_conv(x.astype(np.float64), w.astype(np.float64), 1, 1, adder, groups,
                      float(pad_value))
    exp = naive_grouped_conv(x, w, 1, 1, groups, pad_value, "adder" if adder else "mul")
    assert (got == exp.astype(np.float64)).all()
