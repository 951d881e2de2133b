"""Format-3 layers of golden (global average pooling, residual addition) against straightforward
loops with exact rational arithmetic, and the model file's checks of them."""

from fractions import Fraction

import numpy as np
import pytest

from golden import layers as L
from golden.model import (
    Layer, ModelFormatError, format_version, infer_float, infer_int, load_model, make_model,
    model_arrays, save_model,
)


def round_half_up(q: Fraction) -> int:
    return int((q + Fraction(1, 2)) // 1)


@pytest.mark.parametrize("seed", range(4))
def test_global_avg_pool_matches_exact_mean(seed):
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 8)), int(rng.integers(1, 8))
    x = rng.integers(0, 256, (2, 3, h, w), dtype=np.uint8)
    got = L.global_avg_pool2d(x)
    assert got.shape == (2, 3, 1, 1) and got.dtype == np.uint8
    for n in range(2):
        for c in range(3):
            total = sum(int(v) for v in x[n, c].ravel())
            assert int(got[n, c, 0, 0]) == round_half_up(Fraction(total, h * w)), (seed, n, c)


def test_global_avg_pool_rounds_half_up():
    x = np.array([[[[1, 2]]], [[[254, 255]]]], dtype=np.uint8)   # means 1.5, 254.5
    assert L.global_avg_pool2d(x).ravel().tolist() == [2, 255]


def naive_requant(acc, m, b, s):
    t = acc * m + b + ((1 << (s - 1)) if s else 0)
    return min(max(t >> s, 0), 255)


@pytest.mark.parametrize("seed", range(4))
def test_residual_add_matches_loop(seed):
    rng = np.random.default_rng(seed)
    c = 3
    a = rng.integers(0, 256, (2, c, 3, 4), dtype=np.uint8)
    b = rng.integers(0, 256, (2, c, 3, 4), dtype=np.uint8)
    w = rng.integers(-128, 128, (c, 2), dtype=np.int8)
    mult = rng.integers(-300, 300, c).astype(np.int32)
    bias = rng.integers(-5000, 5000, c).astype(np.int64)
    shift = rng.integers(0, 10, c).astype(np.int32)
    got = L.residual_add(a, b, w, mult, bias, shift)
    for idx in np.ndindex(a.shape):
        ch = idx[1]
        acc = int(a[idx]) * int(w[ch, 0]) + int(b[idx]) * int(w[ch, 1])
        assert int(got[idx]) == naive_requant(acc, int(mult[ch]), int(bias[ch]),
                                              int(shift[ch])), (seed, idx)


def test_residual_add_errors():
    a = np.zeros((1, 2, 2, 2), np.uint8)
    w = np.ones((2, 2), np.int8)
    rq = (np.ones(2, np.int32), np.zeros(2, np.int64), np.zeros(2, np.int32))
    with pytest.raises(ValueError, match=r"shortcut b \[1, 2, 2, 3\] must have the main"):
        L.residual_add(a, np.zeros((1, 2, 2, 3), np.uint8), w, *rq)
    with pytest.raises(ValueError, match=r"weight must have shape \[2, 2\]"):
        L.residual_add(a, a, np.ones((3, 2), np.int8), *rq)


def resnet_block_model(rng, source=0):
    """conv(1 -> 2, 3x3 pad 1) -> conv(2 -> 2) -> add(source) -> gap -> flatten -> linear."""
    def conv(cin, cout):
        p = {"weight": rng.integers(0, 256, (cout, cin, 3, 3), dtype=np.uint8),
             "stride": 1, "padding": 1, "rq_mult": np.full(cout, 3, np.int32),
             "rq_bias": np.full(cout, 9000, np.int64), "rq_shift": np.full(cout, 4, np.int32)}
        fp = {"weight": p["weight"].astype(np.float32),
              **{k: np.ones(cout, np.float32) for k in ("bn_gamma", "bn_var")},
              **{k: np.zeros(cout, np.float32) for k in ("bn_beta", "bn_mean")},
              "bn_eps": np.float64(1e-5)}
        return Layer("adder_conv2d", "requant", p, fp)
    add = Layer("add", "", {"weight": np.array([[1, 1], [2, -1]], np.int8), "source": source,
                            "rq_mult": np.array([1, 1], np.int32),
                            "rq_bias": np.zeros(2, np.int64),
                            "rq_shift": np.array([1, 0], np.int32)})
    lin_w = rng.integers(-128, 128, (3, 2), dtype=np.int8)
    lin = Layer("mul_linear", "logits", {"weight": lin_w, "bias": np.zeros(3, np.int32)},
                {"weight": lin_w.astype(np.float32), "bias": np.zeros(3, np.float32)})
    return make_model(name="res", input_shape=(1, 5, 5), input_scale=1 / 255,
                      class_names=("a", "b", "c"),
                      layers=[conv(1, 2), conv(2, 2), add, Layer("global_avg_pool2d"),
                              Layer("flatten"), lin])


def test_model_with_residual_block_infers_and_round_trips(tmp_path):
    rng = np.random.default_rng(5)
    model = resnet_block_model(rng)
    assert format_version(model) == 3
    x = rng.integers(0, 256, (2, 1, 5, 5), dtype=np.uint8)
    trace = infer_int(model, x, trace=True)
    want_add = L.residual_add(trace[1], trace[0], model.layers[2].params["weight"],
                              *(model.layers[2].params[k] for k in ("rq_mult", "rq_bias",
                                                                    "rq_shift")))
    assert np.array_equal(trace[2], want_add)
    assert np.array_equal(trace[3], L.global_avg_pool2d(trace[2]))
    assert np.array_equal(infer_int(model, x), trace[-1])
    path = tmp_path / "res.npz"
    save_model(model, path)
    back = load_model(path)
    assert np.array_equal(infer_int(back, x), trace[-1])
    assert infer_float(back, x).shape == (2, 3)


def _bad(tmp_path, edit):
    rng = np.random.default_rng(1)
    arrays = model_arrays(resnet_block_model(rng))
    edit(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("edit, msg", [
    (lambda a: a.update({"layer2.source": np.int64(2)}),
     r"array 'layer2.source' is 2; it must name an earlier layer \(in \[-1, 1\]"),
    (lambda a: a.update({"layer2.source": np.int64(-1)}),
     r"layer2 \(add\): the shortcut, the output of the model input \[1, 5, 5\], must have "
     r"the main path's shape \[2, 5, 5\]"),
    (lambda a: a.update({"layer2.weight": np.ones((2, 3), np.int8)}),
     r"array 'layer2.weight' must have shape \(2, 2\)"),
    (lambda a: a.update({"layer2.rq_shift": np.array([50, 0], np.int32)}),
     r"layer2 \(add\): requant shift of channel 0 is 50"),
    (lambda a: a.update({"spinpim_format": np.int64(2)}),
     r"array 'layer2.kind' is 'add', a format-3 kind, but 'spinpim_format' is 2"),
    (lambda a: a.pop("layer2.source"), r"array 'layer2.source' is missing"),
])
def test_bad_v3_files_are_refused_in_one_line(tmp_path, edit, msg):
    with pytest.raises(ModelFormatError, match=msg) as e:
        load_model(_bad(tmp_path, edit))
    assert "\n" not in str(e.value)
