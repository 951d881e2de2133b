"""The ``jeit_fa`` route (seed 000's full-adder array) on the cycle model: compiled adder
models == golden stage by stage, the algorithm (``golden.pim.l1_fa_tree``) == plain integers,
the 2n + ceil(log2 C) cycles of a tile dot with no array write, the configuration's rules and
the energy it is charged. The same dots and layers run on the RTL core in
``cocotb_tests/test_core_jeit_fa.py``."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from cocotb_tests.test_core_jeit_fa import dot_body, dot_program, planes, small_config
from golden.model import Layer
from golden.pim import l1_fa_tree
from rtl.config import preset
from rtl.isa import Instr, Opcode
from rtl.mtj_array import MacroCmd
from sim.compile import asm
from sim.hw import energy as E
from sim.hw.core_model import CoreModel
from tests.test_compiler import make_layer, run_model_checked, single_layer_model

SEED = 20261130


@pytest.mark.parametrize("k_terms", [1, 2, 3, 7, 16, 17, 128])
@pytest.mark.parametrize("n", [1, 4, 8])
def test_l1_fa_tree_is_the_l1_norm(k_terms, n):
    rng = np.random.default_rng(SEED + 31 * k_terms + n)
    x = rng.integers(0, 1 << n, (5, k_terms))
    w = rng.integers(0, 1 << n, (5, k_terms))
    x[0], w[0] = (1 << n) - 1, 0                     # every term the largest difference
    got, steps = l1_fa_tree(x, w, n)
    assert got.tolist() == np.abs(x - w).sum(axis=1).tolist()
    depth = int(np.ceil(np.log2(k_terms))) if k_terms > 1 else 0
    assert steps == {"reads": 2 * n, "writes": 0, "cycles": 2 * n + depth, "bits_written": 0}


def test_l1_fa_tree_refuses_bad_operands():
    with pytest.raises(ValueError, match="n"):
        l1_fa_tree([1], [2], 0)
    with pytest.raises(ValueError):
        l1_fa_tree([256], [2], 8)


def _adder_model(rng, kind):
    if kind == "conv":
        x = rng.integers(0, 256, (1, 3, 6, 6)).astype(np.uint8)
        layers = [make_layer("adder_conv2d", rng, x, out_ch=4, padding=1)]
    else:
        x = rng.integers(0, 256, (1, 40)).astype(np.uint8)
        layers = [make_layer("adder_linear", rng, x, out_ch=5, output="logits")]
    return single_layer_model(layers, x.shape[1:]), x[0]


@pytest.mark.parametrize("kind", ["conv", "linear"])
@pytest.mark.parametrize("subarrays", [1, 2])
def test_compiled_adder_layers_match_golden(kind, subarrays):
    rng = np.random.default_rng(SEED + subarrays + (kind == "conv"))
    config = dataclasses.replace(small_config(), subarrays_per_mat=subarrays)
    model, x = _adder_model(rng, kind)
    compiled, res, _ = run_model_checked(model, config, x, SEED, subarrays=subarrays)
    assert {st.route for st in compiled.stages} == {"jeit_fa"}
    # no array write besides the rows the layer's inputs are built into
    abs_cfg = dataclasses.replace(config, dataflow="abs_diff")
    ref, ref_res, _ = run_model_checked(model, abs_cfg, x, SEED, subarrays=subarrays)
    assert res.counters["fs_step"] == ref_res.counters["fs_step"]
    assert res.counters["write_row"] < ref_res.counters["write_row"]
    assert res.counters["cycles"] < ref_res.counters["cycles"]


def test_a_tile_dot_takes_2n_plus_log2_columns_cycles():
    config = small_config()
    n, depth = config.operand_bits, int(np.log2(config.columns))
    model = CoreModel(config)
    body = dot_body(config)
    one = model.run(asm.assemble(body + [asm.halt()])).counters
    two = model.run(asm.assemble(body + body + [asm.halt()])).counters
    assert two["cycles"] - one["cycles"] == 2 * n + depth
    assert two["write_row"] == 0 and two["stalls"] == 0 and two["fs_step"] == 4 * n


def test_dot_on_the_cycle_model_is_golden():
    rng = np.random.default_rng(SEED)
    config = small_config()
    n, k, c = config.operand_bits, config.subarrays_per_mat, config.columns
    model = CoreModel(config)
    model.write_table(0, 0, 0, 0)
    for trial in range(5):
        x, w = rng.integers(0, 256, k * c), rng.integers(0, 256, k * c)
        xp, wp = planes(x, n), planes(w, n)
        for b in range(n):
            model.array_command(MacroCmd.WRITE, b, xp[b])
            model.write_buffer(b, wp[b])
        run = model.run(dot_program(config))
        assert not run.error, run.reason
        parts = [int(l1_fa_tree(x[i * c:(i + 1) * c], w[i * c:(i + 1) * c], n)[0])
                 for i in range(k)]
        assert list(run.out[:k + 1]) == [sum(parts)] + parts, f"trial {trial}"


def test_an_early_requant_reads_the_partial_sum():
    """A REQUANT whose S3 comes during the flush sees the bits landed so far (sum mod 2**t)."""
    config = dataclasses.replace(small_config(), subarrays_per_mat=1)
    n = config.operand_bits
    model = CoreModel(config)
    model.write_table(0, 0, 0, 0)
    x, w = np.full(config.columns, 255), np.zeros(config.columns, np.int64)
    for b, (xb, wb) in enumerate(zip(planes(x, n), planes(w, n), strict=True)):
        model.array_command(MacroCmd.WRITE, b, xb)
        model.write_buffer(b, wb)
    total = 255 * config.columns
    for early in range(5):
        out = model.run(dot_program(config, early=early)).out
        landed = n + 4 - early                    # bits in the register at the REQUANT's S3
        assert out[0] == total % (1 << landed), early


def test_configuration():
    config = preset("jeit_stt").with_dataflow("jeit_fa")
    # the route skips zero tiles as abs_diff does: with_dataflow keeps the preset's zero_skip
    assert config.routes == ("abs_diff", "and_bitcount", "jeit_fa") and config.zero_skip
    assert dataclasses.replace(preset("jeit_stt"), dataflow="jeit_fa",
                               routes=("jeit_fa", "and_bitcount")).zero_skip
    with pytest.raises(ValueError, match="zero_skip=True needs dataflow 'abs_diff' or "
                                         "'jeit_fa'"):
        dataclasses.replace(preset("jeit_stt"), dataflow="write_free",
                            routes=("write_free", "and_bitcount"))
    lean = dataclasses.replace(preset("jeit_stt"), dataflow="jeit_fa",
                               routes=("jeit_fa", "and_bitcount"), zero_skip=False)
    assert Opcode.FS_STEP.value in CoreModel(lean)._codes


def test_the_array_is_charged():
    fa = preset("jeit_stt")                                  # its dataflow is jeit_fa
    base = dataclasses.replace(fa, dataflow="abs_diff", routes=("abs_diff", "and_bitcount"))
    p = E.PERIPHERY
    extra = E.op_costs(fa)[Opcode.FS_STEP].lane_gates - E.op_costs(base)[Opcode.FS_STEP].lane_gates
    assert extra == p["fa_array_gates"].value


def test_dot_uses_no_scratch_rows():
    from sim.routes import get_route
    route = get_route("jeit_fa")
    assert route.scratch_rows(small_config()) == ()
    assert all(isinstance(i, Instr) for i in dot_body(small_config()))
    assert route.maps(Layer("adder_linear", "logits", {"weight": np.zeros((1, 1), np.uint8)}))


def test_route_compare_measures_both_routes(capsys):
    from sim.analysis.route_compare import main
    assert main(["--model", "digits_addernet", "-n", "1"]) == 0
    out = capsys.readouterr().out
    lines = {ln.split(" ")[0]: ln for ln in out.splitlines() if "cycles (" in ln}
    cycles = {df: int(lines[df].split(": ")[1].split(" ")[0]) for df in ("abs_diff", "jeit_fa")}
    assert cycles["jeit_fa"] < cycles["abs_diff"]


@pytest.mark.parametrize("argv, match", [
    (["-n", "0"], "^error: -n must be >= 1, not 0$"),
    (["--dataflow", "and_bitcount", "--model", "digits_addernet", "-n", "1"],
     "^error: .*dataflow 'and_bitcount' cannot map an adder layer"),
])
def test_route_compare_bad_input_is_one_line(argv, match, capsys):
    from sim.analysis.route_compare import main
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and re.match(match, err), err


def _unpipelined(monkeypatch):
    """The compiler without the route's software pipelining (the program it emitted before)."""
    from sim.routes import get_route
    monkeypatch.delattr(type(get_route("jeit_fa")), "pipeline")


@pytest.mark.parametrize("case", ["wide_2_tiles", "segmented_partial", "segmented_pool",
                                  "wide_flush_longer_than_sign"])
@pytest.mark.parametrize("zero_skip", [False, True])
def test_pipelined_loops_hide_the_flush(case, zero_skip, monkeypatch):
    """The software-pipelined compute loops (the next tile's SIGN pass during the array's
    flush) == golden stage by stage, with and without zero skipping (sparse inputs); without
    it, every pipelined tile dot but the last of each loop run saves the L flush NOPs."""
    rng = np.random.default_rng(SEED + 7 * len(case) + zero_skip)
    k, cols = 2, 16
    if case == "wide_2_tiles":                      # fan-in 36 > 32: 2 tiles, 25 patches
        x = rng.integers(0, 256, (1, 4, 5, 5)).astype(np.uint8)
        layers = [make_layer("adder_conv2d", rng, x, out_ch=3, padding=1)]
    elif case == "wide_flush_longer_than_sign":     # 512 columns: L = 9 > n = 8, one NOP pad
        k, cols = 1, 512
        x = rng.integers(0, 256, (1, 60, 3, 3)).astype(np.uint8)
        layers = [make_layer("adder_conv2d", rng, x, out_ch=2, padding=1)]
    else:                                           # fan-in 9 <= 16: groups of 2 patches
        x = rng.integers(0, 256, (1, 1, 5 if case == "segmented_partial" else 6,
                                  5 if case == "segmented_partial" else 6)).astype(np.uint8)
        layers = [make_layer("adder_conv2d", rng, x, out_ch=3, padding=1)]
        if case == "segmented_pool":
            layers.append(Layer("max_pool2d", "", {"kernel": 2, "stride": 2}))
    if zero_skip:                                   # whole zero tiles and single zero terms
        x[:, :, : x.shape[2] // 2] = 0
        x[:, -4:] = 0                               # (the 512-column case's second tile)
        x[rng.random(x.shape) < 0.3] = 0
    model = single_layer_model(layers, x.shape[1:])
    config = dataclasses.replace(small_config(), columns=cols, subarrays_per_mat=k,
                                 zero_skip=zero_skip)
    if cols == 512:
        config = dataclasses.replace(config, rows=64)
    compiled, res, _ = run_model_checked(model, config, x[0], SEED, subarrays=k)
    if zero_skip:
        assert res.zero_skip["zs_tiles"] > 0, "no tile dot was skipped: the case tests nothing"
        return
    stage = compiled.stages[0]
    with monkeypatch.context() as mp:
        _unpipelined(mp)
        _, ref, _ = run_model_checked(model, config, x[0], SEED, subarrays=k)
    depth = int(np.ceil(np.log2(cols)))
    hidden = min(depth, config.operand_bits)        # flush cycles a SIGN pass covers
    # pipelined tile dots and loop runs, by hand from the layer's shape and the chunking
    runs = dots = 0
    for ch in stage.chunks:
        # segmented: the partial group is chained after the full groups (if there are any)
        per = (ch.patches * stage.tiles if stage.mode == "wide"
               else ch.groups * (ch.groups > (ch.partial > 0)))
        runs += stage.out_channels * (per > 0)
        dots += stage.out_channels * per
    assert ref.counters["nop"] - res.counters["nop"] == hidden * (dots - runs) > 0
    assert ref.counters["fs_step"] == res.counters["fs_step"]
    saved = ref.counters["cycles"] - res.counters["cycles"]
    assert hidden * (dots - runs) <= saved <= hidden * (dots - runs) + 2 * runs, saved
