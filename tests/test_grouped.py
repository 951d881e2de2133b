"""Grouped and depthwise convolutions on the generic routes (sim.grouped): random models with
depthwise (groups = C, channel multipliers 1 and 2), grouped and pointwise layers, adder and
multiply, compiled for small cores of several presets and mats; every stage on the cycle model
== golden (``infer_int(trace=True)``), the counting mode == the cycle model counter for counter,
also with the weights streamed."""

import dataclasses

import numpy as np
import pytest

from golden import layers as gl
from golden.model import Layer, infer_int, make_model
from rtl.config import preset
from sim.compiler import compile_model, run_compiled
from sim.core_model import CoreModel
from sim.counting import count_model
from tests.layer_models import _float, fit_requant

SEED = 20261130


def _model(rng, x, spec):
    """``spec``: ``("g", kind, out, k, stride, pad, groups)`` grouped convolutions, then a
    flatten and a multiply FC of 3 logits."""
    layers, cur = [], x
    for _, kind, out, k, stride, pad, groups in spec:
        c = cur.shape[1]
        shape = (out, c // groups, k, k)
        adder = kind.startswith("adder")
        w = (rng.integers(0, 256, shape).astype(np.uint8) if adder
             else rng.integers(-128, 128, shape).astype(np.int8))
        fwd = gl.adder_conv2d if adder else gl.mul_conv2d
        acc = fwd(cur, w, stride=stride, padding=pad, groups=groups)
        m, b, s = fit_requant(acc, rng)
        layers.append(Layer(kind, "requant", dict(weight=w, stride=stride, padding=pad,
                                                  groups=groups, pad_value=0, rq_mult=m,
                                                  rq_bias=b, rq_shift=s), _float(w, out)))
        cur = gl.requantize(acc, m, b, s)
    layers.append(Layer("flatten"))
    feats = int(np.prod(cur.shape[1:]))
    w = rng.integers(-128, 128, (3, feats)).astype(np.int8)
    layers.append(Layer("mul_linear", "logits", dict(weight=w, bias=np.zeros(3, np.int32)),
                        dict(weight=w.astype(np.float32), bias=np.zeros(3, np.float32))))
    return make_model(name="grouped", input_shape=x.shape[1:], input_scale=1 / 255,
                      class_names=["0", "1", "2"], layers=layers)


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

