"""Format 3 branches (``golden.model``'s ``layer{i}.input``): a ResNet block with a 1x1
stride-2 projection shortcut (option B), golden's integer inference against an independent
loop-by-loop computation, the file round trip, older files, and one-line errors on bad arrays."""

import numpy as np
import pytest

from golden.model import (
    Layer, ModelFormatError, bundled_model_path, format_version, infer_float, infer_int,
    load_model, make_model, model_arrays, save_model,
)

SEED = 20261130


def _rq(o):
    return {"rq_mult": np.full(o, 3, np.int32), "rq_bias": np.full(o, 1 << 12, np.int64),
            "rq_shift": np.full(o, 4, np.int32)}


def _bn(w):
    o = w.shape[0]
    return {"weight": w.astype(np.float32), "bn_gamma": np.ones(o, np.float32),
            "bn_beta": np.zeros(o, np.float32), "bn_mean": np.zeros(o, np.float32),
            "bn_var": np.ones(o, np.float32), "bn_eps": np.float64(1e-5)}


def _block(rng, proj_kind="adder_conv2d"):
    """conv0 (2 -> 2, 3x3) | proj (1x1 stride 2, 2 -> 4, reads conv0) | conv1 (3x3 stride 2,
    reads conv0: ``input`` = 0) | conv2 | add (source = proj) | flatten | FC."""
    w0 = rng.integers(-128, 128, (2, 2, 3, 3)).astype(np.int8)
    wp = (rng.integers(0, 256, (4, 2, 1, 1)).astype(np.uint8) if proj_kind == "adder_conv2d"
          else rng.integers(-128, 128, (4, 2, 1, 1)).astype(np.int8))
    w1 = rng.integers(0, 256, (4, 2, 3, 3)).astype(np.uint8)
    w2 = rng.integers(-128, 128, (4, 4, 3, 3)).astype(np.int8)
    wf = rng.integers(-128, 128, (3, 4 * 3 * 3)).astype(np.int8)
    wa = np.array([[1, 1], [2, 1], [1, -1], [3, 2]], np.int8)
    rq0 = {"rq_mult": np.full(2, 1, np.int32), "rq_bias": np.full(2, 1 << 15, np.int64),
           "rq_shift": np.full(2, 8, np.int32)}
    rq_adder = {"rq_mult": np.full(4, 2, np.int32), "rq_bias": np.full(4, 4000, np.int64),
                "rq_shift": np.full(4, 4, np.int32)}
    rq_p = rq_adder if proj_kind == "adder_conv2d" else {
        "rq_mult": np.full(4, 1, np.int32), "rq_bias": np.full(4, 1 << 14, np.int64),
        "rq_shift": np.full(4, 7, np.int32)}
    layers = [
        Layer("mul_conv2d", "requant", {"weight": w0, "stride": 1, "padding": 1, **rq0}, _bn(w0)),
        Layer(proj_kind, "requant", {"weight": wp, "stride": 2, "padding": 0, **rq_p}, _bn(wp)),
        Layer("adder_conv2d", "requant", {"weight": w1, "stride": 2, "padding": 1, "input": 0,
                                          **rq_adder}, _bn(w1)),
        Layer("mul_conv2d", "requant", {"weight": w2, "stride": 1, "padding": 1, **rq0 | {
            "rq_mult": np.full(4, 1, np.int32), "rq_bias": np.full(4, 1 << 16, np.int64),
            "rq_shift": np.full(4, 9, np.int32)}}, _bn(w2)),
        Layer("add", "", {"weight": wa, "source": 1, **_rq(4)}),
        Layer("flatten"),
        Layer("mul_linear", "logits", {"weight": wf, "bias": np.zeros(3, np.int32)},
              {"weight": wf.astype(np.float32), "bias": np.zeros(3, np.float32)}),
    ]
    return make_model(name="proj", input_shape=(2, 6, 6), input_scale=1 / 255,
                      class_names=["a", "b", "c"], layers=layers)


def _conv_loops(x, w, stride, pad, adder):
    """One image [C, H, W], weight [O, C, kh, kw]: plain loops, int64 (independent of
    golden.layers)."""
    c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xp = np.zeros((c, h + 2 * pad, wd + 2 * pad), np.int64)
    xp[:, pad:pad + h, pad:pad + wd] = x
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((o, ho, wo), np.int64)
    for oc in range(o):
        for y in range(ho):
            for xx in range(wo):
                win = xp[:, y * stride:y * stride + kh, xx * stride:xx * stride + kw]
                wi = w[oc].astype(np.int64)
                out[oc, y, xx] = -np.abs(win - wi).sum() if adder else (win * wi).sum()
    return out


def _rq_loops(acc, m, b, s):
    out = np.zeros(acc.shape, np.int64)
    for c in range(acc.shape[0]):
        half = (1 << (int(s[c]) - 1)) if s[c] else 0
        t = (acc[c] * int(m[c]) + int(b[c]) + half) >> int(s[c])
        out[c] = np.clip(t, 0, 255)
    return out


def test_projection_block_equals_independent_loops():
    rng = np.random.default_rng(SEED)
    for proj_kind in ("adder_conv2d", "mul_conv2d"):
        model = _block(rng, proj_kind)
        x = rng.integers(0, 256, (2, 2, 6, 6), dtype=np.uint8)
        got = infer_int(model, x, trace=True)
        ly = model.layers
        def conv(i, inp, ly=ly):
            p = ly[i].params
            acc = _conv_loops(inp, p["weight"], p["stride"], p["padding"],
                              ly[i].kind.startswith("adder"))
            return _rq_loops(acc, p["rq_mult"], p["rq_bias"], p["rq_shift"])
        for n in range(2):
            a0 = conv(0, x[n].astype(np.int64))
            proj = conv(1, a0)
            a1 = conv(2, a0)             # reads layer 0, not layer 1 (the projection)
            a2 = conv(3, a1)
            wa = ly[4].params["weight"].astype(np.int64)
            acc = a2 * wa[:, 0, None, None] + proj * wa[:, 1, None, None]
            add = _rq_loops(acc, *(ly[4].params[k] for k in ("rq_mult", "rq_bias", "rq_shift")))
            logits = ly[6].params["weight"].astype(np.int64) @ add.ravel()
            for i, want in ((1, proj), (2, a1), (3, a2), (4, add)):
                assert np.array_equal(got[i][n], want), (proj_kind, n, i)
            assert got[-1][n].tolist() == logits.tolist(), (proj_kind, n)
        assert model.shapes()[2:5] == [(4, 3, 3), (4, 3, 3), (4, 3, 3)]
        assert np.isfinite(infer_float(model, x)).all()


def test_round_trip_and_older_files(tmp_path):
    model = _block(np.random.default_rng(SEED + 1))
    assert format_version(model) == 3
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.layers[2].params["input"] == 0 and "input" not in back.layers[3].params
    x = np.random.default_rng(2).integers(0, 256, (3, 2, 6, 6), dtype=np.uint8)
    assert np.array_equal(infer_int(back, x), infer_int(model, x))
    old = load_model(bundled_model_path("fashion_addernet"))     # a format-1 file still loads
    assert format_version(old) == 1


@pytest.mark.parametrize("edit, pattern", [
    (lambda a: a.update({"layer2.input": np.int64(3)}),
     r"^array 'layer2.input' is 3; it must name an earlier layer \(in \[-1, 1\]"),
    (lambda a: a.update({"layer2.input": np.int32(0)}),
     r"^array 'layer2.input' must be an int64 scalar, not int32 \(\)$"),
    (lambda a: a.update({"layer2.input": np.array([0, 1])}),
     r"^array 'layer2.input' must be an int64 scalar, not int64 \(2,\)$"),
    (lambda a: a.update({"layer5.input": np.int64(3)}),
     r"^array 'layer5.input' is given on a flatten layer; only adder_conv2d and mul_conv2d"),
    (lambda a: a.update({"layer2.input": np.int64(1)}),
     r"^layer2 \(adder_conv2d\) expects input \[2, H, W\], gets \[4, 3, 3\]$"),
    (lambda a: a.update({"spinpim_format": np.int64(2)}),
     r"^array 'layer4.kind' is 'add', a format-3 kind|^array 'layer2.input' is a format-3"),
])
def test_bad_input_arrays_are_one_line_errors(tmp_path, edit, pattern):
    arrays = model_arrays(_block(np.random.default_rng(SEED + 2)))
    edit(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(ModelFormatError, match=pattern) as e:
        load_model(path)
    assert "\n" not in str(e.value)
