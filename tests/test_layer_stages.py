"""Standalone pools, global average pooling and residual additions through the compiler and the
cycle model, against golden (sim.compile.layer_stages)."""

import dataclasses
import os

import numpy as np
import pytest

from golden import layers as L
from golden.model import infer_int
from rtl.config import preset
from sim.compile.compiler import CompileError, compile_model, propose_config, run_compiled
from sim.hw.core_model import CoreModel
from sim.compile.layer_stages import avg_requant
from tests.layer_models import SPECS, random_model

SEED = int(os.environ.get("SPINPIM_SEED", "20261130"))


def check_equal(what, got, want, seed):
    got, want = np.asarray(got, dtype=np.int64), np.asarray(want, dtype=np.int64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != golden {want.shape}"
    bad = np.flatnonzero(got.ravel() != want.ravel())
    assert not bad.size, (f"{what}: {bad.size} of {got.size} values differ; first at flat index "
                          f"{bad[0]}: core {got.ravel()[bad[0]]} != golden "
                          f"{want.ravel()[bad[0]]} (seed {seed})")


def small(name, dataflow, subarrays):
    return dataclasses.replace(preset(name).with_dataflow(dataflow), rows=128, columns=16,
                               subarrays_per_mat=subarrays)


def run_checked(model, config, x, seed):
    config = propose_config(model, config)
    compiled = compile_model(model, config)
    res = run_compiled(compiled, x[0], CoreModel(config, subarrays=config.subarrays_per_mat))
    trace = infer_int(model, x, trace=True)
    for stage, out in zip(compiled.stages, res.outputs, strict=True):
        check_equal(f"stage {stage.name} (golden layer {stage.golden_index})", out,
                    trace[stage.golden_index][0], seed)
    saved = res.zero_skip.get("zs_cycles_saved", 0)   # zero skipping: data-dependent
    for stage, sr in zip(compiled.stages, res.stages, strict=True):
        assert saved or sr.micro_ops == stage.micro_ops, stage.name
    assert res.cycles + saved == compiled.cycles
    return compiled, res


@pytest.mark.parametrize("name", sorted(SPECS))
@pytest.mark.parametrize("cfg", [("nand_spin", "write_free", 1), ("jeit_stt", "abs_diff", 2),
                                 ("nand_spin", "write_free", 4)])
def test_random_models_equal_golden_on_the_cycle_model(name, cfg):
    seed = SEED + sum(map(ord, name)) + cfg[2]
    rng = np.random.default_rng(seed)
    in_shape, spec = SPECS[name]
    x = rng.integers(0, 256, (1, *in_shape), dtype=np.uint8)
    model = random_model(spec, in_shape, rng, x)
    compiled, _ = run_checked(model, small(*cfg), x, seed)
    want = [it for it in spec if it[0] != "flatten"]
    fused = sum(1 for a, b in zip(want, want[1:], strict=False)
                if a[0] == "conv" and b[0] == "pool" and b[2:4] == (2, 2))
    assert len(compiled.stages) == len(want) - fused


@pytest.mark.parametrize("k", [1, 2, 3, 4, 5, 7, 9, 11, 16, 25, 49, 121, 196])
def test_avg_requant_is_golden_rounding_for_every_sum(k):
    w, m, s, b = avg_requant(k, 32)
    sums = np.arange(255 * k + 1, dtype=np.int64)
    t = sums * w * m + b + ((1 << (s - 1)) if s else 0)
    got = np.clip(t >> s, 0, 255)
    # independent: round half up of sum / k by exact integer comparison
    want = np.array([(2 * v + k) // (2 * k) for v in sums.tolist()])
    assert np.array_equal(got, want), k
    assert -(1 << 15) <= m < (1 << 15) and 1 <= w <= 127


def test_done_when_7x7_3x32x32_residual_compiles_with_proposed_config_and_matches():
    """The issue's shapes: a 7x7 stride-2 kernel on a 3x32x32 input, a 3x3 stride-2 max pool,
    a residual block and global average pooling, one image, with the configuration
    ``propose_config`` gives for the jeit_stt preset."""
    seed = SEED + 7
    rng = np.random.default_rng(seed)
    spec = [("conv", "adder_conv2d", 8, 7, 2, 3), ("pool", "max", 3, 2),
            ("conv", "adder_conv2d", 8, 3, 1, 1), ("conv", "mul_conv2d", 8, 3, 1, 1),
            ("add", 2), ("gap",), ("flatten",), ("linear", "adder_linear", 10)]
    x = rng.integers(0, 256, (1, 3, 32, 32), dtype=np.uint8)
    model = random_model(spec, (3, 32, 32), rng, x)
    compiled, res = run_checked(model, preset("jeit_stt"), x, seed)
    assert [st.kind for st in compiled.stages] == ["adder_conv2d", "max_pool2d", "adder_conv2d",
                                                   "mul_conv2d", "add", "global_avg_pool2d",
                                                   "adder_linear"]
    check_equal("logits", res.logits, infer_int(model, x)[0], seed)


def test_limits_of_standalone_layers_name_the_field():
    rng = np.random.default_rng(3)
    in_shape, spec = SPECS["residual_on_input_max5"]
    x = rng.integers(0, 256, (1, *in_shape), dtype=np.uint8)
    model = random_model(spec, in_shape, rng, x)
    cfg = small("nand_spin", "write_free", 1)
    need = propose_config(model, cfg)
    with pytest.raises(CompileError, match=r"^the data memory needs \d+ words for the tensors "
                       r"alive at once \(standalone layers 1, 2, 3: .*data_words is 64; raise "
                       r"data_words to at least \d+ \(--data-words\)$"):
        compile_model(model, dataclasses.replace(need, data_words=64))
    assert L.global_avg_pool2d(x).shape == (1, 2, 1, 1)
