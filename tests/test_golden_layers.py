"""golden.layers against an independent, deliberately naive implementation (plain Python loops
over Python ints), on random tensors and corner values."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from golden import layers as L

SEEDS = [0, 1, 2, 3]


def naive_conv(x, w, stride, padding, adder):
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (wd + 2 * padding - kw) // stride + 1
    out = np.zeros((n, o, ho, wo), dtype=object)
    for b in range(n):
        for oc in range(o):
            for i in range(ho):
                for j in range(wo):
                    acc = 0
                    for ic in range(c):
                        for di in range(kh):
                            for dj in range(kw):
                                r, s = i * stride + di - padding, j * stride + dj - padding
                                xv = int(x[b, ic, r, s]) if 0 <= r < h and 0 <= s < wd else 0
                                wv = int(w[oc, ic, di, dj])
                                acc += -abs(xv - wv) if adder else xv * wv
                    out[b, oc, i, j] = acc
    return out


def naive_requant(acc, mult, bias, shift):
    out = np.zeros(acc.shape, dtype=object)
    for idx in np.ndindex(acc.shape):
        o = idx[1]
        t = int(acc[idx]) * int(mult[o]) + int(bias[o])
        s = int(shift[o])
        if s:
            t = (t + 2 ** (s - 1)) // 2 ** s      # floor division: round half up
        out[idx] = min(max(t, 0), 255)
    return out


def naive_pool(x, k, stride, op):
    n, c, h, w = x.shape
    ho, wo = (h - k) // stride + 1, (w - k) // stride + 1
    out = np.zeros((n, c, ho, wo), dtype=object)
    for idx in np.ndindex(out.shape):
        b, ch, i, j = idx
        vals = [int(x[b, ch, i * stride + a, j * stride + d]) for a in range(k) for d in range(k)]
        if op == "max":
            out[idx] = max(vals)
        else:
            tot, cnt = sum(vals), len(vals)
            q, r = divmod(tot, cnt)
            out[idx] = q + (1 if 2 * r >= cnt else 0)    # round half up
    return out


def rand_u8(rng, shape, p_zero=0.2):
    a = rng.integers(0, 256, size=shape).astype(np.uint8)
    a[rng.random(shape) < p_zero] = 0                      # sparse, like post-ReLU maps
    return a


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stride,padding,k",
                         [(1, 0, 3), (1, 1, 3), (2, 1, 3), (2, 0, 2), (1, 0, 1)])
def test_adder_conv2d_matches_naive(seed, stride, padding, k):
    rng = np.random.default_rng(seed)
    x = rand_u8(rng, (2, 3, 6, 7))
    w = rand_u8(rng, (4, 3, k, k), p_zero=0.1)
    got = L.adder_conv2d(x, w, stride=stride, padding=padding)
    exp = naive_conv(x, w, stride, padding, adder=True)
    assert got.dtype == np.int64
    assert got.shape == exp.shape
    assert (got == exp.astype(np.int64)).all(), f"seed {seed}"


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stride,padding,k", [(1, 0, 3), (1, 1, 3), (2, 1, 3), (1, 1, 1)])
def test_mul_conv2d_matches_naive(seed, stride, padding, k):
    rng = np.random.default_rng(100 + seed)
    x = rand_u8(rng, (2, 2, 5, 6))
    w = rng.integers(-128, 128, size=(3, 2, k, k)).astype(np.int8)
    got = L.mul_conv2d(x, w, stride=stride, padding=padding)
    exp = naive_conv(x, w, stride, padding, adder=False)
    assert (got == exp.astype(np.int64)).all(), f"seed {seed}"


def test_conv_extremes():
    """All-255 inputs against all-0 adder weights and -128 multiply weights: the largest
    accumulator magnitudes the bound allows."""
    x = np.full((1, 4, 3, 3), 255, dtype=np.uint8)
    assert L.adder_conv2d(x, np.zeros((2, 4, 3, 3), np.uint8)).item(0) == -255 * 36
    assert L.mul_conv2d(x, np.full((2, 4, 3, 3), -128, np.int8)).item(0) == -255 * 128 * 36
    assert L.conv_acc_bound("adder", 36) == 255 * 36
    assert L.conv_acc_bound("mul", 36) == 255 * 128 * 36


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_layers_match_naive(seed):
    rng = np.random.default_rng(200 + seed)
    x = rand_u8(rng, (3, 17))
    wa = rand_u8(rng, (5, 17))
    wm = rng.integers(-128, 128, size=(5, 17)).astype(np.int8)
    exp_a = [[-sum(abs(int(a) - int(b)) for a, b in zip(xr, wr, strict=True)) for wr in wa]
             for xr in x]
    exp_m = [[sum(int(a) * int(b) for a, b in zip(xr, wr, strict=True)) for wr in wm] for xr in x]
    assert (L.adder_linear(x, wa) == np.array(exp_a)).all()
    assert (L.mul_linear(x, wm) == np.array(exp_m)).all()


@pytest.mark.parametrize("seed", SEEDS)
def test_requantize_matches_naive(seed):
    rng = np.random.default_rng(300 + seed)
    acc = rng.integers(-40000, 40000, size=(3, 6, 4, 4)).astype(np.int64)
    mult = rng.integers(-(2 ** 15), 2 ** 15, size=6).astype(np.int32)
    bias = rng.integers(-(2 ** 30), 2 ** 30, size=6).astype(np.int64)
    shift = rng.integers(0, 24, size=6).astype(np.int32)
    shift[0] = 0                                            # the no-rounding case
    got = L.requantize(acc, mult, bias, shift)
    assert got.dtype == np.uint8
    assert (got == naive_requant(acc, mult, bias, shift).astype(np.uint8)).all()


def test_requantize_rounds_half_up_and_saturates():
    acc = np.array([[1], [2], [3], [-1], [-2], [-3], [100000], [-100000]], dtype=np.int64)
    one = np.array([1], np.int32)
    got = L.requantize(acc, one, np.zeros(1, np.int64), one)     # acc / 2, half up
    # 0.5 -> 1, 1 -> 1, 1.5 -> 2, -0.5 -> 0, -1 -> clip 0, ... 50000 -> 255
    assert got[:, 0].tolist() == [1, 1, 2, 0, 0, 0, 255, 0]
    def one(acc, mult, bias, shift):
        return L.requantize(np.array([[acc]], np.int64), np.array([mult], np.int32),
                            np.array([bias], np.int64), np.array([shift], np.int32)).item()
    assert one(5, -3, 40, 2) == 6          # 25 / 4 = 6.25 -> 6
    assert one(5, -3, 42, 2) == 7          # 27 / 4 = 6.75 -> 7
    assert one(5, -3, 41, 2) == 7          # 26 / 4 = 6.5  -> 7 (half up)
    assert one(-5, 3, 41, 2) == 7          # negative product, positive total: same rounding
    assert one(0, 1, -6, 2) == 0           # -1.5 -> -1 (half up) -> ReLU 0


@given(st.integers(-(2 ** 20), 2 ** 20), st.integers(-(2 ** 15), 2 ** 15 - 1),
       st.integers(-(2 ** 40), 2 ** 40), st.integers(0, 40))
@settings(max_examples=300, deadline=None)
def test_requantize_property(acc, mult, bias, shift):
    got = L.requantize(np.array([[acc]], np.int64), np.array([mult], np.int32),
                       np.array([bias], np.int64), np.array([shift], np.int32))
    exp = naive_requant(np.array([[acc]], dtype=object), [mult], [bias], [shift])
    assert int(got.item()) == exp.item()


def test_requantize_refuses_overflow():
    with pytest.raises(ValueError, match=r"requant multiplier of channel 0 is 40000"):
        L.requantize(np.ones((1, 1), np.int64), np.array([40000], np.int32),
                     np.zeros(1, np.int64), np.zeros(1, np.int32))
    with pytest.raises(ValueError, match=r"requant shift of channel 0 is 50"):
        L.requantize(np.ones((1, 1), np.int64), np.array([1], np.int32),
                     np.zeros(1, np.int64), np.array([50], np.int32))
    with pytest.raises(ValueError, match=r"overflows the 48-bit requant datapath"):
        L.requantize(np.full((1, 1), 2 ** 33, np.int64), np.array([2 ** 15 - 1], np.int32),
                     np.zeros(1, np.int64), np.zeros(1, np.int32))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k,stride", [(2, 2), (3, 1), (3, 2), (2, 1)])
def test_pools_match_naive(seed, k, stride):
    rng = np.random.default_rng(400 + seed)
    x = rand_u8(rng, (2, 3, 7, 6))
    assert (L.max_pool2d(x, k, stride) == naive_pool(x, k, stride, "max").astype(np.uint8)).all()
    assert (L.avg_pool2d(x, k, stride) == naive_pool(x, k, stride, "avg").astype(np.uint8)).all()


def test_avg_pool_rounding_half_up():
    x = np.array([[[[1, 2], [0, 0]]]], dtype=np.uint8)      # 3 / 4 = 0.75 -> 1
    assert L.avg_pool2d(x, 2).item() == 1
    x = np.array([[[[1, 1], [0, 0]]]], dtype=np.uint8)      # 2 / 4 = 0.5 -> 1 (half up)
    assert L.avg_pool2d(x, 2).item() == 1
    x = np.array([[[[1, 0], [0, 0]]]], dtype=np.uint8)      # 0.25 -> 0
    assert L.avg_pool2d(x, 2).item() == 0
    x = np.full((1, 1, 2, 2), 255, np.uint8)
    assert L.avg_pool2d(x, 2).item() == 255


def test_relu():
    x = np.array([-5, 0, 7], dtype=np.int32)
    assert L.relu(x).tolist() == [0, 0, 7]
    assert L.relu(x).dtype == np.int32


def test_add_bias():
    acc = np.array([[10, -20]], np.int64)
    assert L.add_bias(acc, np.array([5, 5], np.int32)).tolist() == [[15, -15]]
    with pytest.raises(ValueError, match="logits overflow 32 bits"):
        L.add_bias(np.array([[2 ** 31 - 1]], np.int64), np.array([1], np.int32))


@pytest.mark.parametrize("call,exc,msg", [
    (lambda: L.adder_conv2d(np.zeros((1, 1, 3, 3), np.int8), np.zeros((1, 1, 3, 3), np.uint8)),
     TypeError, "x must have dtype uint8, not int8"),
    (lambda: L.adder_conv2d(np.zeros((1, 1, 3, 3), np.uint8), np.zeros((1, 1, 3, 3), np.int8)),
     TypeError, "weight must have dtype uint8, not int8"),
    (lambda: L.mul_conv2d(np.zeros((1, 1, 3, 3), np.uint8), np.zeros((1, 1, 3, 3), np.uint8)),
     TypeError, "weight must have dtype int8, not uint8"),
    (lambda: L.adder_conv2d(np.zeros((1, 2, 3, 3), np.uint8), np.zeros((1, 1, 3, 3), np.uint8)),
     ValueError, "x has 2 channels but weight expects 1"),
    (lambda: L.adder_conv2d(np.zeros((1, 1, 3, 3), np.uint8), np.zeros((1, 1, 5, 5), np.uint8)),
     ValueError, "kernel 5 with padding 0 does not fit an input of 3"),
    (lambda: L.adder_conv2d(np.zeros((1, 1, 3, 3), np.uint8), np.zeros((1, 1, 3, 3), np.uint8),
                            stride=0), ValueError, "stride must be >= 1, not 0"),
    (lambda: L.adder_conv2d(np.zeros((1, 1, 3, 3), np.uint8), np.zeros((1, 1, 3, 3), np.uint8),
                            padding=1.5), TypeError, "padding must be an int"),
    (lambda: L.adder_conv2d(np.zeros((1, 9_000_000, 1, 1), np.uint8),
                            np.zeros((1, 9_000_000, 1, 1), np.uint8)),
     ValueError, "fan-in 9000000 can reach 2295000000"),
    (lambda: L.mul_linear(np.zeros((1, 70000), np.uint8), np.zeros((1, 70000), np.int8)),
     ValueError, "overflows the 32-bit accumulator"),
    (lambda: L.max_pool2d(np.zeros((1, 1, 3, 3), np.uint8), 0), ValueError,
     "kernel must be a positive int, not 0"),
    (lambda: L.max_pool2d(np.zeros((1, 1, 3, 3), np.uint8), 4), ValueError,
     "kernel 4 with padding 0 does not fit an input of 3"),
])
def test_layer_errors(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
