"""The .npz model format: round trip, inference through a model, and every error path."""

import subprocess
import sys
import zipfile

import numpy as np
import pytest

import golden
from golden import layers as L
from golden.model import Layer, ModelFormatError, load_model, make_model, model_arrays, save_model


def tiny_model(rng=None):
    """mul_conv -> adder_conv -> maxpool -> avgpool -> flatten -> adder_linear -> mul_linear."""
    rng = rng or np.random.default_rng(0)

    def bn(o):
        return dict(bn_gamma=np.ones(o, np.float32), bn_beta=np.zeros(o, np.float32),
                    bn_mean=np.zeros(o, np.float32), bn_var=np.ones(o, np.float32),
                    bn_eps=np.float64(1e-5))

    def rq(o, sign):
        return dict(rq_mult=np.full(o, sign * 300, np.int32),
                    rq_bias=rng.integers(0, 1 << 16, o).astype(np.int64),
                    rq_shift=np.full(o, 12, np.int32))

    w0 = rng.integers(-128, 128, (4, 1, 3, 3)).astype(np.int8)
    w1 = rng.integers(0, 256, (6, 4, 3, 3)).astype(np.uint8)
    w2 = rng.integers(0, 256, (5, 6)).astype(np.uint8)
    w3 = rng.integers(-128, 128, (3, 5)).astype(np.int8)
    layers = [
        Layer("mul_conv2d", "requant", dict(weight=w0, stride=1, padding=1, **rq(4, 1)),
              dict(weight=w0.astype(np.float32), **bn(4))),
        Layer("adder_conv2d", "requant", dict(weight=w1, stride=1, padding=1, **rq(6, -1)),
              dict(weight=w1.astype(np.float32), **bn(6))),
        Layer("max_pool2d", "", dict(kernel=2, stride=2)),
        Layer("avg_pool2d", "", dict(kernel=2, stride=2)),
        Layer("flatten"),
        Layer("adder_linear", "requant", dict(weight=w2, **rq(5, -1)),
              dict(weight=w2.astype(np.float32), **bn(5))),
        Layer("mul_linear", "logits", dict(weight=w3, bias=np.array([1, -2, 3], np.int32)),
              dict(weight=w3.astype(np.float32), bias=np.zeros(3, np.float32))),
    ]
    return make_model(name="tiny", input_shape=(1, 4, 4), input_scale=1 / 255,
                      class_names=["a", "b", "c"], layers=layers)


def test_round_trip_and_layer_by_layer(tmp_path):
    m = tiny_model()
    p = tmp_path / "tiny.npz"
    save_model(m, p)
    m2 = load_model(p)
    assert m2.shapes() == [(1, 4, 4), (4, 4, 4), (6, 4, 4), (6, 2, 2), (6, 1, 1), (6,), (5,),
                           (3,)]
    x = np.random.default_rng(1).integers(0, 256, (5, 1, 4, 4)).astype(np.uint8)
    outs = golden.infer_int(m2, x, trace=True)
    # recompute every layer by hand from golden.layers: the pipeline wires them as documented
    p0, p1 = m.layers[0].params, m.layers[1].params
    a0 = L.requantize(L.mul_conv2d(x, p0["weight"], padding=1), p0["rq_mult"], p0["rq_bias"],
                      p0["rq_shift"])
    a1 = L.requantize(L.adder_conv2d(a0, p1["weight"], padding=1), p1["rq_mult"],
                      p1["rq_bias"], p1["rq_shift"])
    a3 = L.avg_pool2d(L.max_pool2d(a1, 2), 2).reshape(5, -1)
    p5, p6 = m.layers[5].params, m.layers[6].params
    a5 = L.requantize(L.adder_linear(a3, p5["weight"]), p5["rq_mult"], p5["rq_bias"],
                      p5["rq_shift"])
    a6 = L.add_bias(L.mul_linear(a5, p6["weight"]), p6["bias"])
    for got, exp in zip([outs[0], outs[1], outs[5], outs[6]], [a0, a1, a5, a6], strict=True):
        assert got.dtype == exp.dtype and (got == exp).all()
    assert (golden.infer_int(m2, x, batch=2) == a6).all()
    assert golden.infer_float(m2, x).shape == (5, 3)


def test_save_is_deterministic(tmp_path):
    m = tiny_model()
    save_model(m, tmp_path / "a.npz")
    a = load_model(tmp_path / "a.npz")
    assert all(np.array_equal(v, model_arrays(a)[k]) for k, v in model_arrays(m).items())


def _write(path, arrays):
    np.savez(path, **arrays)
    return path


def _arrays():
    return dict(model_arrays(tiny_model()))


@pytest.mark.parametrize("mutate,msg", [
    (lambda a: a.pop("layer1.weight"), r"array 'layer1.weight' is missing"),
    (lambda a: a.pop("input_scale"), r"array 'input_scale' is missing"),
    (lambda a: a.update({"layer1.weight": a["layer1.weight"].astype(np.int8)}),
     r"array 'layer1.weight' must have dtype uint8, not int8"),
    (lambda a: a.update({"layer0.rq_mult": np.zeros(3, np.int32)}),
     r"array 'layer0.rq_mult' must have shape \(4,\), not \(3,\)"),
    (lambda a: a.update({"layer1.float.bn_var": np.ones(6, np.float64)}),
     r"array 'layer1.float.bn_var' must have dtype float32, not float64"),
    (lambda a: a.update({"layer2.kind": np.str_("min_pool2d")}),
     r"array 'layer2.kind' is 'min_pool2d'; allowed: adder_conv2d"),
    (lambda a: a.update({"layer0.output": np.str_("logits")}),
     r"layer 0 of 7 must be 'requant'"),
    (lambda a: a.update({"spinpim_format": np.int64(7)}),
     r"array 'spinpim_format' is 7; this spinpim reads versions 1 and 2 and 3 and 4 and 5 and 6"),
    (lambda a: a.update({"input_shape": np.array([1, 4, 4], np.int32)}),
     r"array 'input_shape' must be int64 of shape \(3,\)"),
    (lambda a: a.update({"input_shape": np.array([2, 4, 4], np.int64)}),
     r"layer0 \(mul_conv2d\) expects input \[1, H, W\], gets \[2, 4, 4\]"),
    (lambda a: a.update({"class_names": np.array(["a", "b"])}),
     r"array 'class_names' has 2 names but the model outputs \[3\]"),
    (lambda a: a.update({"layer0.stride": np.float64(1)}),
     r"array 'layer0.stride' must be an int64 scalar"),
    (lambda a: a.update({"extra": np.zeros(1)}), r"array 'extra' is not part of format 1"),
    (lambda a: a.update({"layer0.rq_mult": np.full(4, 40000, np.int32)}),
     r"layer0 \(mul_conv2d\): requant multiplier of channel 0 is 40000"),
    (lambda a: a.update({"layer2.kernel": np.int64(9)}),
     r"layer2 \(max_pool2d\): kernel 9 with padding 0 does not fit an input of 4"),
    (lambda a: a.update({"num_layers": np.int64(4)}),
     r"array 'layer4.kind' is not part of format 1|last layer must be a compute layer"),
])
def test_load_errors_name_the_array(tmp_path, mutate, msg):
    arrays = _arrays()
    mutate(arrays)
    with pytest.raises(ModelFormatError, match=msg):
        load_model(_write(tmp_path / "m.npz", arrays))


def test_load_refuses_pickled_objects(tmp_path):
    arrays = _arrays()
    arrays["name"] = np.array(["tiny"], dtype=object)
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(ModelFormatError, match="object array, which the format forbids"):
        load_model(tmp_path / "m.npz")


def test_load_refuses_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ModelFormatError, match="does not exist"):
        load_model(tmp_path / "nope.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError, match="is not a readable .npz file"):
        load_model(tmp_path / "bad.npz")
    with zipfile.ZipFile(tmp_path / "trunc.npz", "w") as z:
        z.writestr("name.npy", b"\x93NUMPY garbage")
    with pytest.raises(ModelFormatError, match="not a readable .npz file|is missing"):
        load_model(tmp_path / "trunc.npz")


def test_save_never_leaves_a_partial_file(tmp_path, monkeypatch):
    m = tiny_model()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(OSError, match="disk full"):
        save_model(m, tmp_path / "out.npz")
    assert list(tmp_path.iterdir()) == []


def test_make_model_validates():
    m = tiny_model()
    bad = list(m.layers[:-1])                       # ends on a requant layer
    with pytest.raises(ModelFormatError, match="must be 'logits'"):
        make_model(name="x", input_shape=(1, 4, 4), input_scale=1.0, class_names=["a"] * 5,
                   layers=bad)
    with pytest.raises(ModelFormatError, match="input_scale' must be a positive finite"):
        make_model(name="x", input_shape=(1, 4, 4), input_scale=0.0, class_names="abc",
                   layers=m.layers)


def test_infer_input_errors():
    m = tiny_model()
    with pytest.raises(TypeError, match="x must be a uint8 numpy array, not float64"):
        golden.infer_int(m, np.zeros((1, 1, 4, 4)))
    with pytest.raises(ValueError, match=r"x must have shape \[N, 1, 4, 4\], not \[1, 1, 5, 4\]"):
        golden.infer_int(m, np.zeros((1, 1, 5, 4), np.uint8))


def test_import_golden_is_pure():
    """`import golden` pulls in no HDL, simulator or torch (run in a fresh interpreter)."""
    code = ("import sys, golden, golden.datasets, golden.pim; "
            "bad = sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'amaranth', 'cocotb', 'cocotb_tools', 'rtl', 'sim', 'sklearn'}); "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
