"""The compiler half of route ``dima_binconv`` (``sim.compile.dima_map``, seed 002 Fig. 4b) on the
cycle
model: random binarized layers, the bundled Add-Net's own binarized layers (its weights, on
its real activations of test images, with requant outputs) and the whole bundled Add-Net at the
dima_sot preset's full mat == golden, the N FA_STEPs and N sum-bit writes of each add/sub, the
accumulator width, and the one-line refusal on a preset without the lanes. The same random
layers run on the RTL core in ``cocotb_tests/test_core_dimamap.py``.
"""

from __future__ import annotations


import dataclasses

import numpy as np
import pytest

from cocotb_tests.test_core import _bn, _requant
from cocotb_tests.test_core_dimamap import bin_cases, branch_model, small_config
from golden import datasets
from golden import layers as gl
from golden.model import Layer, bundled_model_path, infer_int, load_model, make_model
from rtl.config import preset
from sim.compile.compiler import CompileError, compile_model, propose_config, run_compiled
from sim.hw.core_model import CoreModel
from sim.compile.dima_map import acc_width

SEED = 20261130


def _run(model, config, x):
    """Compile, run every image on the cycle model; every stage == golden. Returns the
    compiled model and the last run."""
    compiled = compile_model(model, config)
    core = CoreModel(config, subarrays=compiled.subarrays, buffer_slots=compiled.buffer_slots,
                     channels=compiled.channels, out_depth=compiled.out_depth,
                     imem_depth=compiled.imem_depth)
    for i, image in enumerate(x):
        trace = infer_int(model, image[None], trace=True)
        res = run_compiled(compiled, image, core, load_weights=i == 0)
        for st, got in zip(compiled.stages, res.outputs, strict=True):
            want = np.asarray(trace[st.golden_index])[0]
            bad = np.argwhere(got != want)
            assert not bad.size, (f"{model.name} on {config.routes} x{compiled.subarrays}, "
                                  f"image {i} {st.name}: index {tuple(bad[0])} core "
                                  f"{got[tuple(bad[0])]} golden {want[tuple(bad[0])]} "
                                  f"(seed {SEED})")
    return compiled, res


def test_random_binarized_layers_equal_golden_on_the_cycle_model():
    rng = np.random.default_rng(SEED)
    for name, model, x in bin_cases(rng, 2):
        compiled, _ = _run(model, small_config(), x)
        for st in compiled.stages:      # binarized on the lanes; head, standalone pools on B
            want = "dima_binconv" if st.kind == "bin_gconv2d" else "dima_bitwise"
            assert st.route == want, (name, st.name, st.route)


def test_accumulator_width_never_overflows():
    for terms in (1, 2, 3, 9, 16, 17, 64, 1000):
        n = 1
        while (1 << (n - 1)) - 1 < 255 * terms:      # smallest signed width holding 255*terms
            n += 1
        assert acc_width(terms) == n


def _addnet_layer_model(model, index, x_in, rng):
    """The bundled Add-Net's layer ``index`` (its binarized weights, groups, padding) with a
    requant output stage fitted to its accumulators, and a small FC head."""
    ly = model.layers[index]
    p = ly.params
    acc = gl.bin_conv2d(x_in, p["weight"], stride=int(p["stride"]), padding=int(p["padding"]),
                        groups=int(p["groups"]))
    mult, bias, shift = _requant(acc, rng)
    o = p["weight"].shape[0]
    layer = Layer("bin_gconv2d", "requant", dict(
        weight=p["weight"], stride=int(p["stride"]), padding=int(p["padding"]),
        groups=int(p["groups"]), pad_value=0, rq_mult=mult, rq_bias=bias, rq_shift=shift),
        dict(weight=p["weight"].astype(np.float32), alpha=np.ones(o, np.float32), **_bn(o)))
    y = gl.requantize(acc, mult, bias, shift)
    w = rng.integers(-128, 128, (3, int(np.prod(y.shape[1:])))).astype(np.int8)
    head = Layer("mul_linear", "logits", dict(weight=w, bias=np.zeros(3, np.int32)),
                 dict(weight=w.astype(np.float32), bias=np.zeros(3, np.float32)))
    return make_model(name=f"addnet_layer{index}", input_shape=x_in.shape[1:],
                      input_scale=1 / 255, class_names=["0", "1", "2"],
                      layers=[layer, Layer("flatten"), head])


@pytest.mark.parametrize("index", [1, 2])
def test_addnet_binarized_layers_equal_golden_on_dima_sot(index):
    """digits_addnet's depthwise (m = 4) and pointwise layers, on its own activations of two
    test images, on the full dima_sot mat, with a requant output stage."""
    rng = np.random.default_rng(SEED + index)
    model = load_model(bundled_model_path("digits_addnet"))
    x, _ = datasets.load_dataset("digits", "test")
    trace = infer_int(model, x[:2], trace=True)
    x_in = np.asarray(trace[index - 1]).astype(np.uint8)
    sub = _addnet_layer_model(model, index, x_in, rng)
    compiled, res = _run(sub, propose_config(sub, preset("dima_sot")), x_in)
    st = compiled.stages[0]
    w = model.layers[index].params["weight"]
    fan_in = int(np.prod(w.shape[1:]))
    assert st.route == "dima_binconv" and st.dima.fan_in == fan_in
    assert st.dima.tiles * st.dima.terms >= fan_in
    assert (st.dima.terms + 1) * st.dima.acc_bits <= preset("dima_sot").rows
    # 2N cycles per N-bit add/sub: FA_STEP and FA_FS write-backs, N of each per add/sub
    ops = res.stages[0].micro_ops
    adds = st.dima.terms * st.out_channels * len(range(0, st.n_patches, st.dima.batch))
    assert ops["fa_step"] == ops["write_row"] - _gather_writes(st) == adds * st.dima.acc_bits


def _gather_writes(st) -> int:
    """Row writes of the gather parts: N per row group per run."""
    return len(st.chunks) * st.dima.terms * st.dima.acc_bits


def test_digits_addnet_runs_on_dima_sot_equal_golden():
    """The bundled Add-Net end to end on the full dima_sot mat (cycle model): inception and
    MLP on dima_bitwise (the bit-wise convolver), the four binarized
    layers on the FA/FS lanes with their eq.-3 outputs
    (the PPU's threshold stage) and padding code 128; every stage of three test images ==
    golden, every run's counters == the compiler's static profile (what ``python -m
    sim.compile.dima_map`` reports)."""
    model = load_model(bundled_model_path("digits_addnet"))
    x, _ = datasets.load_dataset("digits", "test")
    compiled, res = _run(model, propose_config(model, preset("dima_sot")), x[:3])
    assert [st.route for st in compiled.stages] == (
        ["dima_bitwise"] + ["dima_binconv"] * 4 + ["dima_bitwise"] * 2)
    assert [st.pad_value for st in compiled.stages[1:5]] == [0, 0, 128, 0]
    for st, run in zip(compiled.stages, res.stages, strict=True):
        assert run.micro_ops == st.micro_ops, st.name
    assert res.counters["fa_step"] == sum(
        st.dima.terms * st.out_channels * len(range(0, st.n_patches, st.dima.batch))
        * st.dima.acc_bits for st in compiled.stages[1:5])


def test_a_preset_without_the_lanes_names_the_layer_and_dima_sot():
    model = load_model(bundled_model_path("digits_addnet"))
    with pytest.raises(CompileError, match=r"^layer 1 \(bin_gconv2d\): no route of this "
                       r"configuration \(routes .*\) maps a bin_gconv2d layer; routes that do: "
                       r"dima_binconv \(presets that can: dima_sot\)$"):
        compile_model(model, preset("nand_spin"))


def test_standalone_pool_after_dima_layers_equals_golden():
    """digits_addnet with its pool replaced by a standalone one (1x1 stride 2, the same
    shape; the max pool of one element per window) after the binarized layers: the DIMA
    stages take sim.compile.layer_stages' data layout (input and output bases from it), every
    stage of two test images == golden on the full dima_sot mat."""
    import dataclasses

    from sim.compile import layer_stages
    model = load_model(bundled_model_path("digits_addnet"))
    pool = next(i for i, ly in enumerate(model.layers) if ly.kind == "avg_pool2d")
    assert model.layers[pool - 1].kind == "bin_gconv2d"
    odd = dataclasses.replace(model.layers[pool], kind="max_pool2d",
                              params={**model.layers[pool].params, "kernel": 1, "stride": 2})
    alt = dataclasses.replace(model, layers=model.layers[:pool] + (odd,)
                              + model.layers[pool + 1:])
    assert layer_stages.is_standalone(alt.layers, pool)
    x, _ = datasets.load_dataset("digits", "test")
    compiled, _ = _run(alt, propose_config(alt, preset("dima_sot")), x[:2])
    assert [st.layer_index for st in compiled.stages if st.route == "dima_binconv"] == [1, 2, 3, 4]
    assert pool in [st.layer_index for st in compiled.stages]


def test_binarized_branch_round_trips_through_the_model_file(tmp_path):
    """The branch's ``input`` array on a bin_gconv2d layer saves and loads (format 3 or
    later), and the loaded model's integer inference gives the same logits as the model in
    memory (whose layer 2 reads layer 0's 4 channels: its weights fit no other input)."""
    from golden.model import format_version, load_model, save_model
    rng = np.random.default_rng(SEED + 7)
    x = rng.integers(0, 256, (2, 2, 5, 5)).astype(np.uint8)
    model = branch_model(rng, x)
    assert format_version(model) >= 3
    save_model(model, tmp_path / "b.npz")
    back = load_model(tmp_path / "b.npz")
    assert int(back.layers[2].params["input"]) == 0
    assert np.array_equal(infer_int(back, x), infer_int(model, x))


@pytest.mark.parametrize("mat", [1, 2])
def test_binarized_branch_on_layer_stages_layout_equals_golden(mat):
    """A binarized layer that reads an earlier layer's output (a branch), then a residual add,
    on the small dima_sot core (both classes on one subarray, and the 7:2 split on 2): every
    stage of two random images == golden on the cycle model; the branch's input base is the
    depthwise layer's output tensor, which the pointwise stage did not overwrite."""
    from sim.compile import layer_stages
    rng = np.random.default_rng(SEED + 7)
    x = rng.integers(0, 256, (2, 2, 5, 5)).astype(np.uint8)
    model = branch_model(rng, x)
    assert layer_stages.has_branches(model.layers)
    cfg = dataclasses.replace(small_config(), subarrays_per_mat=mat)
    compiled, _ = _run(model, propose_config(model, cfg), x)
    st = {s.layer_index: s for s in compiled.stages}
    assert [st[i].route for i in (0, 1, 2)] == ["dima_binconv"] * 3
    assert st[2].in_base == st[0].out_base != st[1].out_base
