"""Seed 001's <W:I> bit widths (``golden.bitwidth``, format 4 of ``golden.model``,
``sim.compile.bit_widths``): eq. 1 pass by pass against plain integer products, the format-4
arrays (round trip, old files, one-line errors), the quantizer, and compiled <W:I> layers on
the cycle model against golden, stage by stage, with W * I AND passes per tile dot and I plane
writes per gathered patch; the bundled <8:8> and <4:4> models' accuracy."""

import dataclasses
import os

import numpy as np
import pytest

from golden import bitwidth as bw
from golden.model import (
    Layer, ModelFormatError, format_version, infer_int, layer_forward_int, load_model,
    make_model, model_arrays, save_model,
)
from golden.quantize import FloatLayer, quantize_model
from rtl.config import preset
from sim.compile.bit_widths import rows_written
from sim.compile.compiler import CompileError, compile_model, run_compiled
from sim.hw.core_model import CoreModel

SEED = int(os.environ.get("SPINPIM_SEED", "20261130"))


def _weights(rng, shape, w_bits):
    lo, hi = bw.weight_range(w_bits)
    return rng.integers(lo, hi + 1, shape).astype(np.int8)


@pytest.mark.parametrize("w_bits,in_bits", [(1, 1), (2, 3), (4, 4), (3, 8), (8, 2), (8, 8)])
def test_eq1_pass_by_pass_is_the_integer_product(w_bits, in_bits):
    rng = np.random.default_rng(SEED + 8 * w_bits + in_bits)
    x = rng.integers(0, 1 << in_bits, (5, 37)).astype(np.uint8)
    w = _weights(rng, (4, 37), w_bits)
    w.flat[0] = bw.weight_range(w_bits)[0]                   # the most negative weight
    got, passes = bw.bitserial_dot(x, w, w_bits, in_bits)
    want = x.astype(np.int64) @ w.astype(np.int64).T
    assert passes == w_bits * in_bits
    bad = np.argwhere(got != want)
    assert not bad.size, (f"<{w_bits}:{in_bits}> at (row, channel) {bad[0].tolist()}: eq. 1 "
                          f"{got[tuple(bad[0])]} != {want[tuple(bad[0])]} (seed {SEED})")


def test_input_planes_are_the_top_bits():
    x = np.arange(256, dtype=np.uint8)
    for i in range(1, 9):
        assert (bw.input_planes(x, i).astype(int) == np.arange(256) // (1 << (8 - i))).all()


def _rq(acc, rng, top=255, s=12):
    """Requant parameters spreading each channel's accumulators over about [-20, 275] (for
    ``top`` 255; ``top`` 2**k - 1: about [-top/12, 1.1 * top])."""
    o = acc.shape[1]
    a = np.moveaxis(acc, 1, 0).reshape(o, -1)
    lo, hi = a.min(axis=1), a.max(axis=1)
    mult, bias, shift = np.zeros(o, np.int32), np.zeros(o, np.int64), np.zeros(o, np.int32)
    for c in range(o):
        span = int(hi[c] - lo[c]) + 1
        m = max(1, (top * 300 // 255 + 1) * (1 << s) // span)
        mult[c], bias[c], shift[c] = m, -int(lo[c]) * m - ((top * 20 // 255) << s), s
    return {"rq_mult": mult, "rq_bias": bias, "rq_shift": shift}


def _bn(w):
    o = w.shape[0]
    return {"weight": w.astype(np.float32), "bn_gamma": np.ones(o, np.float32),
            "bn_beta": np.zeros(o, np.float32), "bn_mean": np.zeros(o, np.float32),
            "bn_var": np.ones(o, np.float32), "bn_eps": np.float64(1e-5)}


def bits_model(rng, x, *, conv=(4, 4), fc=(2, 3), c_in=1, hw=6, out=3, eq2=None, shift=12):
    """mul_conv2d <conv> (3x3 pad 1) + max pool + flatten + mul_linear <fc> (logits), the
    requant fitted to ``x`` [1, c_in, hw, hw]. ``eq2`` k: the convolution quantizes to k-bit
    eq.-2 codes (``out_bits``) and the linear layer reads them (``in_quant`` eq2, ``in_bits``
    k, in place of ``fc[1]``); its requant shift is ``shift``."""
    w0 = _weights(rng, (out, c_in, 3, 3), conv[0])
    p0 = {"weight": w0, "stride": 1, "padding": 1, "w_bits": conv[0], "in_bits": conv[1]}
    acc = layer_forward_int(Layer("mul_conv2d", "logits", {**p0, "bias": np.zeros(out, np.int32)}),
                            x)
    top = 255 if eq2 is None else (1 << eq2) - 1
    l0 = Layer("mul_conv2d", "requant", {**p0, **_rq(acc, rng, top, shift),
                                         **({} if eq2 is None else {"out_bits": eq2})}, _bn(w0))
    feat = out * (hw // 2) ** 2
    w1 = _weights(rng, (4, feat), fc[0])
    p1 = {"w_bits": fc[0], "in_bits": fc[1]} if eq2 is None else \
        {"w_bits": fc[0], "in_bits": eq2, "in_quant": "eq2"}
    l1 = Layer("mul_linear", "logits", {"weight": w1, "bias": rng.integers(-99, 99, 4)
                                        .astype(np.int32), **p1},
               {"weight": w1.astype(np.float32), "bias": np.zeros(4, np.float32)})
    return make_model(name="bits", input_shape=(c_in, hw, hw), input_scale=1 / 255,
                      class_names="abcd", layers=[l0, Layer("max_pool2d", "", {"kernel": 2,
                                                                                "stride": 2}),
                                                  Layer("flatten"), l1])


def _independent(model, x):
    """The logits by loops of our own: conv of the top-I input bits, requant (eq. 2: clipped to
    k bits), pool, linear (of the top I bits, or of the eq.-2 codes as they are)."""
    l0, l1 = model.layers[0], model.layers[3]
    xi = x.astype(np.int64)[0] >> (8 - l0.params["in_bits"])
    c, h, w = xi.shape
    pad = np.zeros((c, h + 2, w + 2), np.int64)
    pad[:, 1:-1, 1:-1] = xi
    wt = l0.params["weight"].astype(np.int64)
    acc = np.zeros((wt.shape[0], h, w), np.int64)
    for o in range(wt.shape[0]):
        for y in range(h):
            for xx in range(w):
                acc[o, y, xx] = (pad[:, y:y + 3, xx:xx + 3] * wt[o]).sum()
    p = l0.params
    t = acc * p["rq_mult"].astype(np.int64)[:, None, None] + p["rq_bias"][:, None, None]
    s = p["rq_shift"].astype(np.int64)[:, None, None]
    t = (t + np.where(s > 0, 1 << np.maximum(s - 1, 0), 0)) >> s
    y = np.clip(t, 0, (1 << int(p.get("out_bits", 8))) - 1)
    y = y.reshape(y.shape[0], h // 2, 2, w // 2, 2).max(axis=(2, 4)).ravel()
    if l1.params.get("in_quant") != "eq2":
        y = y >> (8 - l1.params["in_bits"])
    return y @ l1.params["weight"].astype(np.int64).T + l1.params["bias"]


def test_integer_inference_reads_the_top_bits(tmp_path):
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x)
    assert (infer_int(model, x)[0] == _independent(model, x)).all()
    assert format_version(model) == 4
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert (back.layers[0].params["w_bits"], back.layers[0].params["in_bits"]) == (4, 4)
    assert (infer_int(back, x) == infer_int(model, x)).all()
    # without the arrays: 8 bits, a format-1 file, as before
    plain = dataclasses.replace(model, layers=tuple(
        dataclasses.replace(ly, params={k: v for k, v in ly.params.items()
                                        if k not in ("w_bits", "in_bits")})
        for ly in model.layers))
    assert format_version(plain) == 1


def _save_arrays(path, arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("edit,msg", [
    (lambda a: a.update({"layer0.w_bits": np.int64(0)}), "'layer0.w_bits' is 0; allowed: 1 to 8"),
    (lambda a: a.update({"layer0.in_bits": np.int64(9)}),
     "'layer0.in_bits' is 9; allowed: 1 to 8"),
    (lambda a: a.update({"layer0.w_bits": np.float64(4)}), "'layer0.w_bits' must be an int64"),
    (lambda a: a.update({"layer1.in_bits": np.int64(4)}), "only mul_conv2d and mul_linear"),
    (lambda a: a.update({"layer0.w_bits": np.int64(2)}),
     "'layer0.weight' must hold 2-bit two's complement weights in [-2, 1]"),
    (lambda a: a.update({"spinpim_format": np.int64(3)}),
     "'layer0.w_bits' is a format-4 array, but 'spinpim_format' is 3"),
])
def test_bad_bit_arrays_are_one_line_errors(tmp_path, edit, msg):
    rng = np.random.default_rng(SEED + 1)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    arrays = model_arrays(bits_model(rng, x))
    edit(arrays)
    with pytest.raises(ModelFormatError) as e:
        load_model(_save_arrays(tmp_path / "bad.npz", arrays))
    assert msg in str(e.value) and "\n" not in str(e.value)


def test_quantize_model_writes_w_bit_weights():
    rng = np.random.default_rng(SEED + 2)
    calib = rng.integers(0, 256, (8, 1, 6, 6)).astype(np.uint8)
    o = 3
    layers = [FloatLayer("mul_conv2d", weight=rng.normal(size=(o, 1, 3, 3)), padding=1,
                         bn_gamma=np.ones(o), bn_beta=np.zeros(o), bn_mean=np.zeros(o),
                         bn_var=np.ones(o), w_bits=3, in_bits=5),
              FloatLayer("max_pool2d", kernel=2, stride=2), FloatLayer("flatten"),
              FloatLayer("mul_linear", weight=rng.normal(size=(4, o * 9)), bias=np.zeros(4),
                         w_bits=2, in_bits=4)]
    m = quantize_model(name="q", input_shape=(1, 6, 6), input_scale=1 / 255, class_names="abcd",
                       layers=layers, calib_images=calib)
    w0, w3 = m.layers[0].params["weight"], m.layers[3].params["weight"]
    assert w0.min() >= -3 and w0.max() <= 3 and set(np.unique(w3)) <= {-1, 0, 1}
    assert bw.layer_bits(m.layers[0].params) == (3, 5)
    assert bw.layer_bits(m.layers[3].params) == (2, 4)


# ---- compiled on the cycle model ------------------------------------------------------------

def _cfg(name="nand_spin", columns=16, rows=128, subarrays=1):
    return dataclasses.replace(preset(name), rows=rows, columns=columns,
                               subarrays_per_mat=subarrays)


def run_checked(model, config, x, k):
    compiled = compile_model(model, config, subarrays=k)
    core = CoreModel(config, subarrays=k)
    res = run_compiled(compiled, x[0], core)
    trace = infer_int(model, x, trace=True)
    for stage, out in zip(compiled.stages, res.outputs, strict=True):
        want = np.asarray(trace[stage.golden_index])[0]
        got = np.asarray(out)
        bad = np.flatnonzero(got.ravel() != want.ravel())
        assert not bad.size, (f"stage {stage.name}: flat index {bad[0]}: core "
                              f"{got.ravel()[bad[0]]} != golden {want.ravel()[bad[0]]} "
                              f"(seed {SEED})")
    for stage, sr in zip(compiled.stages, res.stages, strict=True):
        assert sr.micro_ops == stage.micro_ops
    assert res.cycles == compiled.cycles
    return compiled, res


def _gather_programs(stage) -> int:
    """PROGRAM micro-ops of the stage's chunks that gather patches."""
    return sum(c.micro_ops["program"] for c in stage.chunks if c.patches)


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("conv,fc", [((4, 4), (2, 3)), ((1, 8), (8, 1)), ((8, 8), (8, 8))])
def test_bits_model_on_the_cycle_model_equals_golden(k, conv, fc):
    rng = np.random.default_rng(SEED + 10 * k + conv[0])
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x, conv=conv, fc=fc)
    compiled, res = run_checked(model, _cfg(subarrays=k), x, k)
    # W * I AND_FU passes per tile dot: the same mapping at <8:8> takes 64 per dot
    full = dataclasses.replace(model, layers=tuple(
        dataclasses.replace(ly, params={**ly.params, "w_bits": 8, "in_bits": 8})
        if "w_bits" in ly.params else ly for ly in model.layers))
    ref = compile_model(full, _cfg(subarrays=k), subarrays=k)
    for st, st8, (w, i) in zip(compiled.stages, ref.stages, (conv, fc), strict=True):
        assert (st.w_bits, st.in_bits) == (w, i)
        assert st.micro_ops["and_fu"] * 64 == \
            w * i * st8.micro_ops["and_fu"]
        # the gather writes only the I planes the dot reads (nand_spin: PROGRAM per plane row;
        # the chunks that gather patches: not the programs of seed 001's in-memory
        # post-processing, nand_spin's default, issue 14)
        assert _gather_programs(st) * 8 == i * _gather_programs(st8)
        assert sum(rows_written(st, c) for c in st.chunks if c.patches) == _gather_programs(st)
    if (conv, fc) != ((8, 8), (8, 8)):
        assert compiled.cycles < ref.cycles


def test_width_beyond_the_datapath_is_a_compile_error():
    rng = np.random.default_rng(SEED + 3)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x, conv=(4, 6))
    cfg = dataclasses.replace(_cfg(), operand_bits=4)
    with pytest.raises(CompileError) as e:
        compile_model(model, cfg, subarrays=1)
    assert str(e.value).startswith("layer 0 (mul_conv2d): in_bits is 6, but the datapath "
                                   "holds operand_bits=4")


def test_route_without_bit_widths_is_a_compile_error():
    rng = np.random.default_rng(SEED + 4)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x)
    cfg = preset("dima_sot")
    with pytest.raises(CompileError) as e:
        compile_model(model, cfg)
    assert "<W:I> = <4:4> is not built on route 'dima_bitwise'" in str(e.value)
    assert "layer 0 (mul_conv2d)" in str(e.value)


# ---- the bundled quantized multiply CNNs ----------------------------------------------------

@pytest.mark.parametrize("name,bits,floor", [("fashion_mulcnn_w8i8", 8, 0.88),
                                             ("fashion_mulcnn_w4i4", 4, 0.88)])
def test_bundled_bit_models_reproduce_their_accuracy(name, bits, floor):
    import json

    from golden import datasets
    from golden.model import MODELS_DIR, accuracy
    path = MODELS_DIR / f"{name}.npz"
    model = load_model(path)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert model.name == name and meta["W:I"] == f"{bits}:{bits}"
    compute = [ly for ly in model.layers if ly.kind in bw.BIT_KINDS]
    assert len(compute) == 4 and all(bw.layer_bits(ly.params) == (bits, bits) for ly in compute)
    try:
        images, labels = datasets.load_fashion_mnist("test")
    except datasets.DatasetError as e:
        pytest.skip(f"{name}: test data set not installed: {e}")
    acc = accuracy(infer_int(model, images), labels)
    assert meta["n_test"] == len(labels) == 10000
    assert acc == meta["int8_test_accuracy"] and acc >= floor, f"{name}: {acc}"


# ---- seed 001 eq. 2 as the activation quantizer (format 5) ---------------------------------

@pytest.mark.parametrize("k", [1, 3, 4, 8])
def test_eq2_integer_codes_are_the_seeds_formula(k):
    """With Q_min = 0 and Q_max = 2**k - 1 eq. 2's factor is 1, so the requant's exact
    dyadic value q = (acc*m + b) / 2**s goes into the seed's formula as it is (float64 exact)."""
    rng = np.random.default_rng(SEED + 30 + k)
    acc = rng.integers(-3000, 3000, (2, 5, 40)).astype(np.int64)
    m = rng.integers(1, 400, 5).astype(np.int32)
    s = rng.integers(0, 12, 5).astype(np.int32)
    b = rng.integers(-1 << 14, 1 << 14, 5).astype(np.int64)
    got = bw.eq2_requantize(acc, m, b, s, k)
    q = (acc * m[None, :, None] + b[None, :, None]) / 2.0 ** s[None, :, None]
    want = bw.eq2_reference(q, 0.0, float((1 << k) - 1), k)
    bad = np.argwhere(got != want)
    assert not bad.size, (f"eq. 2 k={k} at {bad[0].tolist()}: integer {got[tuple(bad[0])]} != "
                          f"seed formula {want[tuple(bad[0])]} (seed {SEED})")
    assert got.max() == (1 << k) - 1 and got.min() == 0       # both clips reached


def test_eq2_chain_reads_the_codes_as_they_are(tmp_path):
    rng = np.random.default_rng(SEED + 40)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x, conv=(4, 8), fc=(3, 8), eq2=3)
    trace = infer_int(model, x, trace=True)
    assert trace[0].max() <= 7 and trace[0].max() > 0
    assert (infer_int(model, x)[0] == _independent(model, x)).all()
    assert format_version(model) == 5
    save_model(model, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.layers[0].params["out_bits"] == 3 and back.layers[3].params["in_quant"] == "eq2"
    assert (infer_int(back, x) == infer_int(model, x)).all()


@pytest.mark.parametrize("edit,msg", [
    (lambda a: a.update({"layer3.out_bits": np.int64(4)}),
     "'layer3.out_bits' is given on a mul_linear layer with output 'logits'"),
    (lambda a: a.update({"layer0.out_bits": np.int64(9)}), "'layer0.out_bits' is 9; allowed"),
    (lambda a: a.update({"layer3.in_quant": np.str_("mid")}),
     "'layer3.in_quant' is 'mid'; allowed: top, eq2"),
    (lambda a: a.update({"layer3.in_quant": np.str_("top")}),
     "layer 3 (mul_linear) reads the 3-bit eq. 2 codes of layer 0, so array "
     "'layer3.in_quant' must be 'eq2'"),
    (lambda a: a.update({"layer3.in_bits": np.int64(4)}),
     "'layer3.in_bits' is 4, but its input is the 3-bit eq. 2 codes of layer 0"),
    (lambda a: a.pop("layer0.out_bits"),
     "'layer3.in_quant' is 'eq2', but layer 3's input is not the output of a layer with"),
    (lambda a: a.update({"spinpim_format": np.int64(4)}),
     "'layer0.out_bits' is a format-5 array, but 'spinpim_format' is 4"),
])
def test_bad_eq2_arrays_are_one_line_errors(tmp_path, edit, msg):
    rng = np.random.default_rng(SEED + 41)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    arrays = model_arrays(bits_model(rng, x, conv=(4, 8), fc=(3, 8), eq2=3))
    edit(arrays)
    with pytest.raises(ModelFormatError) as e:
        load_model(_save_arrays(tmp_path / "bad.npz", arrays))
    assert msg in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("k,shift", [(1, 12), (3, 12), (4, 2), (6, 0), (8, 9)])
def test_eq2_ppu_entry_tops_are_the_codes(k, shift):
    """The rewritten PPU entry's 8-bit word (the PPU's own formula, clip to 255), shifted
    right by 8 - k, is golden's eq.-2 code for every accumulator of a range."""
    from golden.layers import requantize
    from sim.compile.bit_widths import eq2_entry
    rng = np.random.default_rng(SEED + 50 + k)
    acc = np.arange(-5000, 5000, dtype=np.int64).reshape(1, 1, -1)
    for _ in range(20):
        m = int(rng.integers(-200, 400))
        b = int(rng.integers(-1 << 16, 1 << 16))
        e = eq2_entry(m, shift, b, k, 5000)
        assert not isinstance(e, str), e
        want = bw.eq2_requantize(acc, np.array([m], np.int32), np.array([b], np.int64),
                                 np.array([shift], np.int32), k)
        word = requantize(acc, np.array([e[0]], np.int32), np.array([e[2]], np.int64),
                          np.array([e[1]], np.int32))
        bad = np.flatnonzero((word >> (8 - k)) != want)
        assert not bad.size, (f"k={k} (m, s, b)=({m}, {shift}, {b}) -> {e}: acc "
                              f"{acc.ravel()[bad[0]]}: word >> {8 - k} = "
                              f"{word.ravel()[bad[0]] >> (8 - k)} != code {want.ravel()[bad[0]]}")


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("conv,fc,eq2,shift", [((4, 8), (2, 0), 4, 12), ((3, 4), (8, 0), 1, 12),
                                               ((8, 8), (8, 0), 8, 12), ((2, 8), (4, 0), 5, 1)])
def test_eq2_model_on_the_cycle_model_equals_golden(k, conv, fc, eq2, shift):
    """Stage by stage == golden's eq.-2 codes; the consumer's program is that of the top-bits
    reading at the same widths (the PPU writes the codes MSB-aligned)."""
    rng = np.random.default_rng(SEED + 60 + 10 * k + eq2)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x, conv=conv, fc=fc, eq2=eq2, shift=shift)
    trace = infer_int(model, x, trace=True)
    assert 0 < trace[1].max() <= (1 << eq2) - 1
    compiled, res = run_checked(model, _cfg(subarrays=k), x, k)
    assert [st.out_shift for st in compiled.stages] == [8 - eq2, 0]
    top = bits_model(np.random.default_rng(SEED + 60 + 10 * k + eq2), x, conv=conv,
                     fc=(fc[0], eq2), shift=shift)
    # the PPU's MSB-aligned codes (nand_spin's default post-processes layer 0 in memory,
    # issue 14, whose tables then shift the consumer's bases: run above, == golden)
    ppu = dataclasses.replace(_cfg(subarrays=k), postproc="ppu")
    compiled = compile_model(model, ppu, subarrays=k)
    ref = compile_model(top, ppu, subarrays=k)
    assert [c.program for c in compiled.stages[1].chunks] == \
        [c.program for c in ref.stages[1].chunks]


def test_eq2_refusals_are_compile_errors():
    rng = np.random.default_rng(SEED + 70)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x, conv=(4, 8), fc=(3, 8), eq2=3)
    avg = dataclasses.replace(model, layers=(model.layers[0], Layer(
        "avg_pool2d", "", {"kernel": 2, "stride": 2}), *model.layers[2:]))
    with pytest.raises(CompileError) as e:
        compile_model(avg, _cfg(), subarrays=1)
    assert str(e.value).startswith("layer 1 (avg_pool2d): it pools layer 0's eq. 2 codes")
    with pytest.raises(CompileError) as e:
        compile_model(model, _cfg(), subarrays=1, out_depth=64, tile_activations=True)
    assert "tile_activations: the model has eq. 2 layers" in str(e.value)
    from sim.compile.bit_widths import eq2_entry
    assert "beyond the PPU's 16-bit multiplier" in eq2_entry(20000, 0, 0, 2, 100)


def test_eq2_training_network_exports_format5():
    """``sim.flows.train``'s eq.-2 network (``fashion_mulcnn_w4i4_eq2``, untrained, two
    batches to set its moving maxima) exports a format-5 model: each producer's ``out_bits`` is
    its reader's ``in_bits``, whose scale is the reader's eq.-2 step (max / 15)."""
    torch = pytest.importorskip("torch")
    from golden.quantize import quantize_model
    from sim.flows import train as tr
    cfg = tr.CONFIGS["fashion_mulcnn_w4i4_eq2"]
    torch.manual_seed(SEED % 2**31)
    net = tr.Net(cfg["arch"], 0.1)
    net.train()
    for _ in range(2):
        net(torch.rand(16, 1, 28, 28))
    net.eval()
    fls = net.float_layers()
    rng = np.random.default_rng(SEED + 80)
    calib = rng.integers(0, 256, (4, 1, 28, 28)).astype(np.uint8)
    m = quantize_model(name="eq2", input_shape=(1, 28, 28), input_scale=1 / 255,
                       class_names=cfg["class_names"], layers=fls, calib_images=calib)
    assert format_version(m) == 5
    comp = [ly for ly in m.layers if ly.kind in bw.BIT_KINDS]
    assert [ly.params.get("out_bits") for ly in comp] == [4, 4, 4, None]
    assert [ly.params.get("in_quant", "top") for ly in comp] == ["top", "eq2", "eq2", "eq2"]
    q = [mod[0] if isinstance(mod, torch.nn.Sequential) else mod for mod in net.layers]
    q = [mod for mod in q if isinstance(mod, tr.QuantMul)]
    for f, nxt in zip([f for f in fls if f.w_bits], q[1:], strict=False):
        assert f.out_scale == pytest.approx(float(nxt.quant_in.scale))
    trace = infer_int(m, calib, trace=True)
    assert all(int(trace[i].max()) <= 15 for i, ly in enumerate(m.layers) if ly.kind in
               bw.BIT_KINDS[:1])


def test_eq2_streamed_requant_table_equals_golden():
    """A requant table streamed with the weights (``sim.compile.weight_stream``, 4 entries for
    7 channels) carries the eq.-2 layer's rewritten entries: every stage == golden."""
    rng = np.random.default_rng(SEED + 99)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x, conv=(4, 8), fc=(3, 0), eq2=3)
    compiled = compile_model(model, _cfg(), subarrays=1, channels=4, stream_weights=True)
    assert all(any(t is not None for _, _, _, t in st.weight_loads) for st in compiled.stages)
    res = run_compiled(compiled, x[0], CoreModel(compiled.config, subarrays=1))
    trace = infer_int(model, x, trace=True)
    for stage, out in zip(compiled.stages, res.outputs, strict=True):
        want = np.asarray(trace[stage.golden_index])[0].ravel()
        bad = np.flatnonzero(np.asarray(out).ravel() != want)
        assert not bad.size, (f"stage {stage.name}: flat index {bad[0]}: core "
                              f"{np.asarray(out).ravel()[bad[0]]} != golden {want[bad[0]]}")
