"""sim.compile.multi_mat / sim.analysis.multi_mat: a network partitioned over several mats, one
output-channel slice per mat.

Expected values come from golden (``golden.model.infer_int`` traces: each mat's slice of a
segment == golden's output channels of that segment, the concatenation == golden's whole
output) and from the cycle model (``sim.hw.core_model.CoreModel``: every counter of every mat's
stages == the counting mode's); M = 1 against the counting mode of the whole model compiled as
one program (``sim.analysis.counting.count_model``), an independent compile.
"""

import dataclasses

import numpy as np
import pytest

from golden.model import Layer, bundled_model_path, infer_int, load_model
from rtl.config import preset
from sim.analysis import counting, multi_mat as amm
from sim.analysis.counting import count_model
from sim.compile import multi_mat as mm
from sim.compile.compiler import compile_model, run_compiled
from sim.hw.core_model import CoreModel
from tests.layer_models import random_model

SEED = 20261130


def _diff(got: dict, want: dict) -> dict:
    return {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}


def _check_partition(model, config, mats, x, *, subarrays=None, where=""):
    """Every mat's slice of every segment on the cycle model: outputs == golden's channels,
    their concatenation == golden's segment output, counters == the counting mode's."""
    segs, compiled = mm.compile_partitioned(model, config, mats, subarrays=subarrays)
    trace = infer_int(model, x[None], trace=True)
    res = mm.count_partitioned(segs, compiled) if not config.zero_skip else None
    for seg, row in zip(segs, compiled, strict=True):
        first = seg.layers[0]
        x_in = (x if first == 0 else trace[first - 1][0]).astype(np.uint8)
        want = trace[seg.last][0]
        parts = []
        for m, (comp, (lo, hi)) in enumerate(zip(row, seg.slices, strict=True)):
            w = f"{where} seed {SEED} segment {seg.index} mat {m} channels {lo}..{hi - 1}"
            r = run_compiled(comp, x_in, CoreModel(comp.config, subarrays=comp.subarrays))
            got = np.asarray(r.outputs[-1]).reshape(hi - lo, *want.shape[1:])
            bad = np.argwhere(got != want[lo:hi])
            assert not len(bad), (f"{w}: index {tuple(bad[0])}: mat {got[tuple(bad[0])]} != "
                                  f"golden {want[lo:hi][tuple(bad[0])]}")
            parts.append(got)
            skipped = ([s.zero_skip.get("zs_tiles", 0) for s in r.stages]
                       if comp.config.zero_skip else None)
            c = count_model(comp, skipped=skipped)
            for si, (cs, rs) in enumerate(zip(c.stages, r.stages, strict=True)):
                d = _diff(cs.counters, rs.micro_ops)
                assert not d, f"{w} stage {si}: counting mode != cycle model: {d}"
            if res is not None:         # the partitioned count's own counters, per mat
                d = _diff(res["segments"][seg.index]["mats"][m]["counters"], r.counters)
                assert not d, f"{w}: count_partitioned != cycle model: {d}"
        whole = np.concatenate(parts, axis=0)
        assert np.array_equal(whole, want), f"{where} segment {seg.index}: concatenation != golden"
    return segs


@pytest.mark.parametrize("preset_name", ["nand_spin", "jeit_stt"])
@pytest.mark.parametrize("mats", [3, 4])
def test_bundled_slices_equal_golden_and_counters(preset_name, mats):
    model = load_model(bundled_model_path("digits_addernet"))
    x = np.random.default_rng(SEED).integers(0, 256, model.input_shape, dtype=np.uint8)
    segs = _check_partition(model, preset(preset_name), mats, x, subarrays=4,
                            where=f"digits_addernet {preset_name} M={mats}")
    assert len(segs) == 5 and all(len(s.slices) == mats for s in segs)


def test_bundled_segments():
    """digits_addernet: conv | conv+pool | conv+pool | flatten+linear | linear."""
    model = load_model(bundled_model_path("digits_addernet"))
    segs = mm.partition(model, 2)
    assert [s.layers for s in segs] == [(0,), (1, 2), (3, 4), (5, 6), (7,)]
    assert [s.slices for s in segs][0] == [(0, 4), (4, 8)]
    assert segs[-1].slices == [(0, 5), (5, 10)]


@pytest.mark.parametrize("mats", [1, 2, 3])
def test_random_models(mats):
    """Random layers: a fused pool, a standalone 3x3 stride-2 pool, a global pool, linear
    layers, uneven slices (M = 3)."""
    rng = np.random.default_rng(SEED + mats)
    config = dataclasses.replace(preset("nand_spin"), rows=128, columns=32,
                                 subarrays_per_mat=2, mats=32)
    x = rng.integers(0, 256, (1, 3, 12, 12), dtype=np.uint8)
    model = random_model([("conv", "adder_conv2d", 6, 3, 1, 1), ("pool", "max", 2, 2),
                          ("conv", "mul_conv2d", 7, 3, 1, 1), ("pool", "max", 3, 2),
                          ("conv", "adder_conv2d", 5, 1, 1, 0), ("gap",), ("flatten",),
                          ("linear", "mul_linear", 4)], (3, 12, 12), rng, x)
    _check_partition(model, config, mats, x[0], where=f"random model M={mats}")


@pytest.mark.parametrize("preset_name", ["nand_spin", "jeit_stt"])
@pytest.mark.parametrize("name", ["fashion_addernet", "digits_addernet"])
def test_one_mat_is_the_single_mat(preset_name, name):
    """M = 1: cycles, every counter, ops and energy == the whole model compiled as one program
    and counted (no broadcast: the activations stay in the mat)."""
    model = load_model(bundled_model_path(name))
    config = preset(preset_name)
    whole = count_model(compile_model(model, config), model)
    res = amm.run(model, config, 1)
    assert res["counters"] == whole.counters
    assert res["cycles"] == whole.estimate["cycles"]
    assert res["ops"] == whole.ops
    assert res["energy_j"] == pytest.approx(whole.estimate["energy_j"], rel=1e-12)
    assert all(s["broadcast"]["cycles"] == 0 for s in res["segments"])


def test_broadcast_and_totals():
    """M = 4: a segment's cycles = its slowest mat's + the broadcast of its output words (one
    word per cycle); the energies and ops add up over mats and segments."""
    model = load_model(bundled_model_path("fashion_addernet"))
    res = amm.run(model, preset("nand_spin"), 4)
    shapes = model.shapes()
    for s in res["segments"]:
        words = int(np.prod(shapes[s["layers"][-1] + 1]))
        last = s["index"] == len(res["segments"]) - 1
        assert s["broadcast"]["words"] == (0 if last else words)
        assert s["cycles"] == max(s["mat_cycles"]) + s["broadcast"]["cycles"]
        assert s["stream_cycles"] == [0] * 4
        assert s["broadcast"]["cycles"] == s["broadcast"]["words"]
    assert res["cycles"] == sum(s["cycles"] for s in res["segments"])
    assert res["energy_j"] == pytest.approx(sum(s["energy_j"] for s in res["segments"]))
    assert res["ops"] == count_model(compile_model(model, preset("nand_spin")), model).ops


@pytest.mark.parametrize("bad", [0, 9, -1, 2.5, True, "x", None])
def test_bad_mats(bad):
    model = load_model(bundled_model_path("fashion_addernet"))   # narrowest: 8 channels
    with pytest.raises(mm.MultiMatError) as e:
        mm.partition(model, bad)
    msg = str(e.value)
    assert "\n" not in msg and "--mats" in msg and "[1, 8]" in msg and repr(bad) in msg


def test_not_built_yet():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 2, 6, 6), dtype=np.uint8)
    model = random_model([("conv", "adder_conv2d", 2, 3, 1, 1), ("add", -1), ("flatten",),
                          ("linear", "mul_linear", 3)], (2, 6, 6), rng, x)
    with pytest.raises(mm.MultiMatError, match=r"layer 1 \(add\): not built yet"):
        mm.partition(model, 2)
    pool_first = dataclasses.replace(model, layers=(Layer("max_pool2d", "", {
        "kernel": 2, "stride": 2}),) + model.layers[:1])
    with pytest.raises(mm.MultiMatError, match="before the first compute layer"):
        mm.partition(pool_first, 1)


def test_cli(capsys, tmp_path):
    assert counting.main(["--model", "digits_addernet", "--mats", "2", "--json",
                          str(tmp_path / "c.json")]) == 0
    out = capsys.readouterr().out
    assert "2 of the chip's 1024 mats" in out and "total on 2 mats" in out
    assert counting.main(["--model", "digits_addernet", "--mats", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--mats must be an int in [1, 8]" in err
    assert amm.main(["--model", "digits_addernet", "--mats", "1,2", "--preset", "jeit_stt"]) == 0
    assert "| jeit_stt | 2 |" in capsys.readouterr().out
    assert amm.main(["--mats", "1,a"]) == 2
    assert "--mats must be" in capsys.readouterr().err


@pytest.mark.parametrize("preset_name", ["nand_spin", "jeit_stt"])
def test_counting_only_shares_equal_slices(preset_name):
    """counting_only (one compile per slice width): the same figures, segment by segment and
    mat by mat, as compiling every mat's slice with its own weights."""
    model = load_model(bundled_model_path("fashion_addernet"))
    config = preset(preset_name)
    full = mm.count_partitioned(*mm.compile_partitioned(model, config, 3))
    segs, shared = mm.compile_partitioned(model, config, 3, counting_only=True)
    assert len({id(c) for c in shared[0]}) == 2            # 8 channels: widths 3, 3, 2
    got = mm.count_partitioned(segs, shared)
    assert got["cycles"] == full["cycles"] and got["counters"] == full["counters"]
    assert got["energy_j"] == pytest.approx(full["energy_j"], rel=1e-12)
    for gs, fs in zip(got["segments"], full["segments"], strict=True):
        assert gs["mat_cycles"] == fs["mat_cycles"]
        assert [p["counters"] for p in gs["mats"]] == [p["counters"] for p in fs["mats"]]


def test_streamed_weights_share_the_bus():
    """Weights streamed (a 64-slot buffer): M = 1 == the single mat's count with streaming; on
    2 mats each mat's streamed words cross the shared bus one mat after the other."""
    model = load_model(bundled_model_path("digits_addernet"))
    config = dataclasses.replace(preset("nand_spin"), buffer_slots=64)
    whole = count_model(compile_model(model, config, stream_weights=True), model)
    one = amm.run(model, config, 1, stream_weights=True)
    assert whole.host["weight_stream"]["bus_cycles"] > 0
    assert one["cycles"] == whole.estimate["cycles"] and one["counters"] == whole.counters
    assert one["energy_j"] == pytest.approx(whole.estimate["energy_j"], rel=1e-12)
    two = amm.run(model, config, 2, stream_weights=True)
    for s in two["segments"]:
        assert s["shared_cycles"] == 0          # no activation tiled
        assert s["cycles"] == (max(s["mat_cycles"]) + sum(s["stream_cycles"])
                               + s["broadcast"]["cycles"])
        assert s["mat_cycles"] == [p["estimate"]["cycles"] - p["host"]["stream_cycles"]
                                   for p in s["mats"]]
    assert sum(sum(s["stream_cycles"]) for s in two["segments"]) > 0


def test_tiled_activations_load_bands_once_per_slice_width():
    """Activations tiled (data_words 1024): on 2 mats of equal slices the bands' loads and patch
    entries cross the bus once (broadcast), each mat's stores one mat after the other."""
    from sim.compile import act_tile
    model = load_model(bundled_model_path("fashion_addernet"))
    config = dataclasses.replace(preset("nand_spin"), data_words=1024)
    segs, comp = mm.compile_partitioned(model, config, 2, tile_activations=True)
    res = mm.count_partitioned(segs, comp)
    tiled = 0
    for s, row in zip(res["segments"], comp, strict=True):
        costs = [act_tile.cost(c) for c in row]
        tiled += sum(c["words"] for c in costs)
        assert s["shared_cycles"] == costs[0]["bus_cycles"] - costs[0]["stores"]
        assert s["stream_cycles"] == [c["stores"] for c in costs]
        assert s["cycles"] == (max(s["mat_cycles"]) + s["shared_cycles"]
                               + sum(s["stream_cycles"]) + s["broadcast"]["cycles"])
    assert tiled > 0
