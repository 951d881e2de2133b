"""Padded max and average pooling (issue 15 item 2; ``golden.model`` format 6): golden against an
independent computation, the model format, and the compiled pools on the cycle model (== golden
on every stage, the counting mode == the cycle model on every counter), also with every tensor
in the chip-level store (``sim.compile.act_tile``)."""

import dataclasses
import math

import numpy as np
import pytest

from golden import layers as L
from golden.model import (Layer, ModelFormatError, format_version, infer_int,
                          layer_forward_float, load_model, make_model, model_arrays, save_model)
from rtl.config import preset
from sim.analysis.counting import count_model
from sim.compile.compiler import CompileError, compile_model, propose_config
from tests.layer_models import random_model
from tests.test_act_tile import _check as check_images

SEED = 20261201


def _by_hand(x, k, s, p, how):
    """Pooling by explicit loops over the windows, looking only at the elements inside the
    image (no padding value at all): the maximum of those; or their sum divided by k*k (the
    padding counts as zeros, PyTorch's count_include_pad) rounded half up."""
    n, c, h, w = x.shape
    ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    out = np.zeros((n, c, ho, wo), dtype=np.int64)
    for b in range(n):
        for ch in range(c):
            for i in range(ho):
                for j in range(wo):
                    vals = [int(x[b, ch, i * s - p + dy, j * s - p + dx])
                            for dy in range(k) for dx in range(k)
                            if 0 <= i * s - p + dy < h and 0 <= j * s - p + dx < w]
                    assert vals, "every window holds an input element"
                    if how == "max":
                        out[b, ch, i, j] = max(vals)
                    else:
                        t = sum(vals)
                        q, r = divmod(t, k * k)
                        out[b, ch, i, j] = q + (1 if 2 * r >= k * k else 0)
    return out


@pytest.mark.parametrize("k,s", [(1, 1), (2, 1), (2, 2), (3, 1), (3, 2), (4, 3), (5, 2)])
def test_golden_padded_pools_equal_the_loops(k, s):
    rng = np.random.default_rng(SEED + 10 * k + s)
    x = rng.integers(0, 256, (2, 3, 7, 9), dtype=np.uint8)
    x[0, 0] = 0                                     # a map of zeros: the max is 0, not padding
    x[1, 1, :3] = 255
    for p in range(k // 2 + 1):
        got = L.max_pool2d(x, k, s, padding=p)
        assert got.dtype == np.uint8
        assert np.array_equal(got, _by_hand(x, k, s, p, "max")), (k, s, p)
        got = L.avg_pool2d(x, k, s, padding=p)
        assert got.dtype == np.uint8
        assert np.array_equal(got, _by_hand(x, k, s, p, "avg")), (k, s, p)


def test_golden_padding_bound_is_one_line():
    x = np.zeros((1, 1, 8, 8), np.uint8)
    for f in (L.max_pool2d, L.avg_pool2d):
        with pytest.raises(ValueError, match=r"^padding must be in \[0, 1\] \(at most half the "
                                             r"kernel 3\), not 2$"):
            f(x, 3, 2, padding=2)
        with pytest.raises(ValueError, match=r"padding must be in \[0, 1\].*not -1"):
            f(x, 3, 2, padding=-1)


def test_float_reference_pads_max_with_minus_infinity_and_avg_with_zeros():
    """Negative reals: a max pool whose padding were 0 would output 0 at the border."""
    x = -1.0 - np.arange(2 * 5 * 5, dtype=np.float64).reshape(1, 2, 5, 5)
    mx = layer_forward_float(Layer("max_pool2d", "", {"kernel": 3, "stride": 2,
                                                      "padding": 1}), x)
    av = layer_forward_float(Layer("avg_pool2d", "", {"kernel": 3, "stride": 2,
                                                      "padding": 1}), x)
    for c in range(2):
        for i in range(3):
            for j in range(3):
                vals = [x[0, c, 2 * i - 1 + dy, 2 * j - 1 + dx] for dy in range(3)
                        for dx in range(3) if 0 <= 2 * i - 1 + dy < 5 and 0 <= 2 * j - 1 + dx < 5]
                assert mx[0, c, i, j] == max(vals)
                assert av[0, c, i, j] == pytest.approx(sum(vals) / 9)


def _pool_model(p=1, kind="max_pool2d"):
    rng = np.random.default_rng(SEED)
    side = 4 if p else 3                            # (7 + 2p - 3) // 2 + 1 (a bad p: any)
    w = rng.integers(-128, 128, (3, 2 * side * side)).astype(np.int8)
    pool = {"kernel": 3, "stride": 2, **({"padding": p} if p is not None else {})}
    return make_model(name="padded", input_shape=(2, 7, 7), input_scale=1 / 255,
                      class_names=["a", "b", "c"],
                      layers=[Layer(kind, "", pool), Layer("flatten"),
                              Layer("mul_linear", "logits",
                                    {"weight": w, "bias": np.zeros(3, np.int32)},
                                    {"weight": w.astype(np.float32),
                                     "bias": np.zeros(3, np.float32)})])


def test_model_format_padding_round_trip_and_old_files(tmp_path):
    m = _pool_model(1)
    assert m.shapes()[1] == (2, 4, 4)               # (7 + 2 - 3) // 2 + 1
    assert format_version(m) == 6
    save_model(m, tmp_path / "m.npz")
    back = load_model(tmp_path / "m.npz")
    assert back.layers[0].params["padding"] == 1
    x = np.random.default_rng(1).integers(0, 256, (3, 2, 7, 7), dtype=np.uint8)
    assert np.array_equal(infer_int(back, x), infer_int(m, x))
    old = _pool_model(None)                         # no padding array: format 1, as before
    assert format_version(old) == 1 and old.shapes()[1] == (2, 3, 3)
    save_model(old, tmp_path / "old.npz")
    assert "padding" not in load_model(tmp_path / "old.npz").layers[0].params


@pytest.mark.parametrize("edit,msg", [
    ({"layer0.padding": np.int64(2)},
     r"^array 'layer0.padding' is 2; a max_pool2d of kernel 3 allows padding in \[0, 1\]"),
    ({"layer0.padding": np.int64(-1)}, r"^array 'layer0.padding' is -1; .* \[0, 1\]"),
    ({"layer0.padding": np.int32(1)}, r"^array 'layer0.padding' must be an int64 scalar"),
    ({"layer0.padding": np.int64(1), "spinpim_format": np.int64(5)},
     r"^array 'layer0.padding' on a pool is a format-6 array, but 'spinpim_format' is 5"),
])
def test_model_format_bad_padding_is_one_line(tmp_path, edit, msg):
    a = model_arrays(_pool_model(1))
    a.update(edit)
    np.savez(tmp_path / "bad.npz", **a)
    with pytest.raises(ModelFormatError, match=msg) as e:
        load_model(tmp_path / "bad.npz")
    assert "\n" not in str(e.value)


def test_make_model_refuses_padding_above_half_the_kernel():
    with pytest.raises(ModelFormatError, match=r"'layer0.padding' is 2; a avg_pool2d of kernel 3"):
        _pool_model(2, "avg_pool2d")


# ---- compiled: cycle model == golden, count == cycle model ---------------------------------------

#: Padded pools of kernel 3 (stride 2 and 1), a padded 2x2 pool right after a convolution (not
#: fused: MAX4 / AVG4 hold no padding), a pool first (on the image), a 5x5 stride-3 max pool
#: with padding 2 (three MAX4 passes) and a 4x4 average pool with padding 2, and ResNet's stem
#: (7x7 stride 2, 3x3 stride-2 max pool, padding 1) before a residual block.
SPECS = {
    "max3s2p1_avg3s1p1": ((2, 9, 9), [("conv", "adder_conv2d", 3, 3, 1, 1),
                                       ("pool", "max", 3, 2, 1), ("pool", "avg", 3, 1, 1),
                                       ("flatten",), ("linear", "mul_linear", 3)]),
    "avg3s2p1_max3s1p1_first": ((2, 8, 8), [("pool", "avg", 3, 2, 1),
                                             ("conv", "mul_conv2d", 3, 3, 1, 1),
                                             ("pool", "max", 3, 1, 1), ("flatten",),
                                             ("linear", "adder_linear", 2)]),
    "conv_max2s2p1_avg2s2p1": ((1, 7, 7), [("conv", "mul_conv2d", 2, 3, 1, 1),
                                            ("pool", "max", 2, 2, 1), ("pool", "avg", 2, 2, 1),
                                            ("flatten",), ("linear", "mul_linear", 3)]),
    "max5s3p2_avg4s2p2": ((2, 11, 11), [("conv", "mul_conv2d", 3, 3, 1, 1),
                                        ("pool", "max", 5, 3, 2), ("pool", "avg", 4, 2, 2),
                                        ("flatten",), ("linear", "adder_linear", 3)]),
    "resnet_stem_block": ((3, 16, 16), [("conv", "mul_conv2d", 4, 7, 2, 3),
                                         ("pool", "max", 3, 2, 1),
                                         ("conv", "adder_conv2d", 4, 3, 1, 1), ("add", 1),
                                         ("gap",), ("flatten",), ("linear", "mul_linear", 3)]),
}


def _small(name, dataflow, subarrays):
    return dataclasses.replace(preset(name).with_dataflow(dataflow), rows=128, columns=16,
                               subarrays_per_mat=subarrays)


def _model(name, seed):
    rng = np.random.default_rng(seed)
    in_shape, spec = SPECS[name]
    x = rng.integers(0, 256, (2, *in_shape), dtype=np.uint8)
    return random_model(spec, in_shape, rng, x[:1]), x


def _check(model, compiled, x, where):
    """Every stage of every image == golden and the count == the cycle model on every counter
    (``tests.test_act_tile``'s check), and per stage on the last image."""
    r = check_images(model, x, compiled, compiled.subarrays, where)
    skipped = ([s.zero_skip.get("zs_tiles", 0) for s in r.stages]
               if compiled.config.zero_skip else None)
    for cs, rs in zip(count_model(compiled, skipped=skipped).stages, r.stages, strict=True):
        d = {k: (cs.counters.get(k), v) for k, v in rs.micro_ops.items()
             if cs.counters.get(k) != v}
        assert not d, f"{where} stage {cs.name}: count != cycle model {d}"


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("cfg", [("nand_spin", "write_free", 1), ("jeit_stt", "abs_diff", 2)])
def test_padded_pools_on_the_cycle_model_equal_golden_and_count(name, cfg):
    model, x = _model(name, SEED + sum(map(ord, name)) + cfg[2])
    config = propose_config(model, _small(*cfg))
    compiled = compile_model(model, config)
    pools = [st for st in compiled.stages if st.kind in ("max_pool2d", "avg_pool2d")]
    assert pools and all(model.layers[st.golden_index].params.get("padding") for st in pools)
    _check(model, compiled, x, f"{name} on {cfg}")


@pytest.mark.parametrize("name", ["max3s2p1_avg3s1p1", "avg3s2p1_max3s1p1_first",
                                  "max5s3p2_avg4s2p2"])
def test_padded_pools_in_store_units_equal_golden_and_count(name):
    """Every tensor in the chip-level store, the pools in units (the first unit's windows start
    in the padding, the last's end in it; the last model's small average pool in one)."""
    model, x = _model(name, SEED + 5)
    config = dataclasses.replace(preset("nand_spin"), rows=256, columns=16,
                                 subarrays_per_mat=1, mats=1, data_words=128,
                                 patch_entries=8192, offset_entries=4096)
    compiled = compile_model(model, config, tile_activations=True)
    units = [st.act_bands for st in compiled.stages if st.kind in ("max_pool2d", "avg_pool2d")]
    assert units and min(units) >= 1 and max(units) > 1, units     # in the store, units
    _check(model, compiled, x, f"{name} in store units")


def test_padded_avg_pool_needs_mask_bits_named():
    model = _pool_model(1, "avg_pool2d")            # the pool's 3x3 window is the only kernel
    config = propose_config(model, _small("nand_spin", "write_free", 1))
    assert config.patch_mask_bits >= 9
    with pytest.raises(CompileError, match=r"^layer 0 \(avg_pool2d\): a padded average pool's "
                                           r"window of 9 elements needs a patch-mask bit per "
                                           r"element, but patch_mask_bits is 8; raise "
                                           r"patch_mask_bits to at least 16"):
        compile_model(model, dataclasses.replace(config, patch_mask_bits=8))


# ---- reference networks -------------------------------------------------------------------------

@pytest.mark.parametrize("name,gmac", [("resnet18", 1.81), ("resnet50", 4.09)])
def test_resnet_stem_pool_is_padded_as_the_literature(name, gmac):
    """The stem: 7x7 stride 2 (112x112), a 3x3 stride-2 max pool with padding 1 (56x56, He et
    al. 2016 table 1's conv2_x size); the multiply-accumulates of every convolution and FC
    equal the published figures (torchvision's model table: ResNet-18 1.81 GFLOPS, ResNet-50
    4.09, counted as multiply-adds; He et al. table 1: ResNet-18 1.8 x 10**9), which the
    unpadded 55x55 pool would miss by 3.5 %."""
    from sim.analysis import reference_nets
    with reference_nets.count_only_budget():
        m = reference_nets.build(name)
        shapes = m.shapes()
    assert m.layers[1].kind == "max_pool2d" and m.layers[1].params["padding"] == 1
    assert shapes[1:3] == [(64, 112, 112), (64, 56, 56)]
    macs = sum(math.prod(shapes[i + 1]) * math.prod(ly.params["weight"].shape[1:])
               for i, ly in enumerate(m.layers) if ly.is_compute)
    assert abs(macs / 1e9 - gmac) < 0.005 * gmac, macs


def test_padded_pool_with_in_memory_postproc_is_refused_in_one_line():
    """In-memory post-processing (seed 001 sec. 4.2) pools only a fused 2x2 window: a padded
    pool is standalone, refused naming the layer and what runs it (postproc 'mixed' or
    'ppu')."""
    model, _ = _model("conv_max2s2p1_avg2s2p1", SEED)
    config = dataclasses.replace(_small("nand_spin", "write_free", 1), postproc="in_memory",
                                 routes=("write_free", "and_bitcount", "nand_inmem"))
    with pytest.raises(CompileError, match=r"^layer 1 \(max_pool2d\): postproc 'in_memory' .*"
                                           r"use postproc 'mixed' \(the PPU for such "
                                           r"layers\) or 'ppu'$") as e:
        compile_model(model, config)
    assert "\n" not in str(e.value)
