"""Grouped and depthwise convolutions on the generic routes (sim.compile.grouped): random models
with
depthwise (groups = C, channel multipliers 1 and 2), grouped and pointwise layers, adder and
multiply, compiled for small cores of several presets and mats; every stage on the cycle model
== golden (``infer_int(trace=True)``), the counting mode == the cycle model counter for counter,
also with the weights streamed."""

import dataclasses

import numpy as np
import pytest

from golden.model import infer_int
from rtl.config import preset
from sim.compile.compiler import compile_model, run_compiled
from sim.hw.core_model import CoreModel
from sim.analysis.counting import count_model
from tests.layer_models import grouped_model

SEED = 20261130


_model = grouped_model


SPECS = {
    # depthwise 3x3 (multiplier 1), pointwise, depthwise stride 2 with multiplier 2
    "depthwise_separable": ((4, 7, 7), [("g", "adder_gconv2d", 4, 3, 1, 1, 4),
                                        ("g", "adder_gconv2d", 6, 1, 1, 0, 1),
                                        ("g", "mul_gconv2d", 12, 3, 2, 1, 6)]),
    # grouped multiply (2 groups of 2 -> 3), grouped adder without padding
    "grouped": ((4, 6, 6), [("g", "mul_gconv2d", 6, 3, 1, 1, 2),
                            ("g", "adder_gconv2d", 6, 3, 1, 0, 3)]),
}


def _run(where, compiled, model, x):
    core = CoreModel(compiled.config, subarrays=compiled.subarrays)
    for i, img in enumerate(x):
        r = run_compiled(compiled, img, core, load_weights=i == 0)
        trace = infer_int(model, img[None], trace=True)
        for st, y in zip(compiled.stages, r.outputs, strict=True):
            want = np.asarray(trace[st.golden_index][0]).reshape(st.out_shape)
            bad = np.flatnonzero(y.ravel() != want.ravel())
            assert not bad.size, (f"{where} image {i} {st.name} index {bad[0]}: "
                                  f"{y.ravel()[bad[0]]} != golden {want.ravel()[bad[0]]} "
                                  f"(seed {SEED})")
        skipped = ([s.zero_skip.get("zs_tiles", 0) for s in r.stages]
                   if compiled.config.zero_skip else None)
        c = count_model(compiled, skipped=skipped)
        diff = {k: (c.counters[k], v) for k, v in r.counters.items() if c.counters[k] != v}
        assert not diff, f"{where} image {i}: count != cycle model: {diff}"


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("preset_name,mat", [("jeit_stt", 1), ("nand_spin", 2),
                                             ("nand_spin", 1)])
def test_grouped_equals_golden_and_count(spec, preset_name, mat):
    rng = np.random.default_rng(SEED + mat + len(spec))
    shape, layers = SPECS[spec]
    x = rng.integers(0, 256, (2, *shape)).astype(np.uint8)
    model = _model(rng, x[:1], layers)
    config = dataclasses.replace(preset(preset_name), rows=256, columns=16,
                                 subarrays_per_mat=1, mats=1)
    compiled = compile_model(model, config, subarrays=mat)
    assert [st.kind for st in compiled.stages][:len(layers)] == [s[1] for s in layers]
    _run(f"{spec} {preset_name} mat {mat}", compiled, model, x)


def test_grouped_streamed():
    """A depthwise-separable model with its weights streamed: the groups split into channel
    tiles of the stream region."""
    rng = np.random.default_rng(SEED)
    shape, layers = SPECS["depthwise_separable"]
    x = rng.integers(0, 256, (1, *shape)).astype(np.uint8)
    model = _model(rng, x, layers)
    config = dataclasses.replace(preset("nand_spin"), rows=256, columns=16,
                                 subarrays_per_mat=1, mats=1, buffer_slots=128)
    compiled = compile_model(model, config, stream_weights=True)
    assert any(len(st.weight_loads) > 1 for st in compiled.stages)
    _run("depthwise_separable streamed", compiled, model, x)


def test_grouped_ops_in_the_count():
    """The count's ops: 2 x output elements x the per-group fan-in (C/g x kh x kw) per
    convolution, restated from the shapes."""
    rng = np.random.default_rng(SEED)
    shape, layers = SPECS["depthwise_separable"]
    x = rng.integers(0, 256, (1, *shape)).astype(np.uint8)
    model = _model(rng, x, layers)
    config = dataclasses.replace(preset("nand_spin"), rows=256, columns=16,
                                 subarrays_per_mat=1, mats=1)
    res = count_model(compile_model(model, config), model)
    # 4x7x7 dw 3x3 (fan-in 9), 6x7x7 pw (fan-in 4), 12x4x4 dw stride 2 (fan-in 9), FC 192 -> 3
    want = 2 * (4 * 49 * 9 + 6 * 49 * 4 + 12 * 16 * 9 + 3 * 192)
    assert res.ops == want

