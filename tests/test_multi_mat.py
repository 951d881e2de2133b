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

from golden import layers as gl
from golden.model import (Layer, bundled_model_path, infer_int, layer_forward_int, load_model,
                          make_model)
from rtl.config import preset
from sim.analysis import counting, multi_mat as amm
from sim.analysis.counting import count_model
from sim.compile import multi_mat as mm
from sim.compile.compiler import compile_model, propose_config, run_compiled
from sim.hw.core_model import CoreModel
from tests.layer_models import _float, fit_requant, random_model
from tests.partition_energy import assert_terms, whole_terms

SEED = 20261130


def _diff(got: dict, want: dict) -> dict:
    return {k: (got.get(k), want[k]) for k in want if got.get(k) != want[k]}


#: A logic of two blocks (activity, cell area) and a leakage power, to check the
#: activity-based terms' arithmetic (the report passes its measured ``logic_energy``).
LOGIC = {"blocks": [{"activity": 0.02, "area_um2": 50_000.0},
                    {"activity": 0.08, "area_um2": 6_000.0}], "leakage_w": 2e-5}


def _one_mat_is_the_single_mat(model, config, **kw):
    """M = 1: cycles, every counter, ops and energy of ``sim.analysis.multi_mat.run`` == the
    whole model compiled as one program and counted, and so is every energy term of the
    single mat's headline (SRAMs, leakage, the activity-based logic of :data:`LOGIC`); returns
    the run."""
    comp = compile_model(model, config)
    whole = count_model(comp, model, **kw)
    res = amm.run(model, config, 1, logic=LOGIC, **kw)
    assert res["counters"] == whole.counters
    assert res["ops"] == whole.ops
    assert res["cycles"] == whole.estimate["cycles"]
    assert res["energy_j"] == pytest.approx(whole.estimate["energy_j"], rel=1e-12)
    want = whole_terms(model, comp, whole, LOGIC)
    assert_terms(res["terms"], want)
    assert want["SRAM dynamic"] > 0 and want["SRAM leakage"] > 0 and want["activity logic"] > 0
    assert res["energy_full_j"] == pytest.approx(
        want["micro-ops"] - want["gate-count logic"] + want["activity logic"]
        + want["logic leakage"] + want["SRAM dynamic"] + want["SRAM leakage"], rel=1e-12)
    return res


def _check_partition(model, config, mats, x, *, subarrays=None, where="", **kw):
    """Every mat's slice of every segment on the cycle model: outputs == golden's channels,
    their concatenation == golden's segment output, counters == the counting mode's (``kw``:
    ``compile_partitioned``'s options; the kept tensors in the data memory, or in the
    activation store with tiled activations)."""
    segs, compiled = mm.compile_partitioned(model, config, mats, subarrays=subarrays, **kw)
    trace = infer_int(model, x[None], trace=True)
    runs = []                           # per segment, per mat: the cycle model's run
    for seg, row in zip(segs, compiled, strict=True):
        x_in = (x if seg.reads < 0 else trace[seg.reads][0]).astype(np.uint8)
        ins = seg.in_slices or [(0, len(x_in))] * len(seg.slices)
        want = trace[seg.last][0]
        parts = []
        for m, (comp, (lo, hi)) in enumerate(zip(row, seg.slices, strict=True)):
            w = f"{where} seed {SEED} segment {seg.index} mat {m} channels {lo}..{hi - 1}"
            core = CoreModel(comp.config, subarrays=comp.subarrays)
            for t, base in seg.keeps.items():   # the tensors kept for later layers
                for i, v in enumerate((x if t < 0 else trace[t][0]).reshape(-1).tolist()):
                    core.write_dmem(base + i, int(v))
            store = mm.store_of(seg, lambda t: x if t < 0 else trace[t][0])
            r = run_compiled(comp, x_in[ins[m][0]:ins[m][1]], core, store=store)
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
            runs.append((seg.index, m, r, skipped, w))
        whole = np.concatenate(parts, axis=0)
        assert np.array_equal(whole, want), f"{where} segment {seg.index}: concatenation != golden"
    measured = None                     # zero skipping: the dots each mat's stages skipped
    if config.zero_skip:
        measured = [[None] * len(seg.slices) for seg in segs]
        for si, m, _, skipped, _ in runs:
            measured[si][m] = skipped
    res = mm.count_partitioned(segs, compiled, skipped=measured)
    for si, m, r, _, w in runs:         # the partitioned count's own counters, per mat
        d = _diff(res["segments"][si]["mats"][m]["counters"], r.counters)
        assert not d, f"{w}: count_partitioned != cycle model: {d}"
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
    # sized for the model: nand_spin post-processes in memory (issue 14) where its data memory
    # and tables hold the raw sums and programs, in the whole model and in the segments alike
    config = propose_config(model, preset(preset_name))
    res = _one_mat_is_the_single_mat(model, config)
    assert all(s["broadcast"]["cycles"] == 0 for s in res["segments"])


def test_broadcast_and_totals():
    """M = 4: a segment's cycles = its slowest mat's + the broadcast of its output words (one
    word per cycle); the energies and ops add up over mats and segments."""
    model = load_model(bundled_model_path("fashion_addernet"))
    # sized for the whole model (nand_spin's in-memory post-processing, issue 14: its tables
    # then hold every segment's, nothing reloaded)
    config = propose_config(model, preset("nand_spin"))
    res = amm.run(model, config, 4)
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
    assert res["ops"] == count_model(compile_model(model, config), model).ops


@pytest.mark.parametrize("bad", [0, 9, -1, 2.5, True, "x", None])
def test_bad_mats(bad):
    model = load_model(bundled_model_path("fashion_addernet"))   # narrowest: 8 channels
    with pytest.raises(mm.MultiMatError) as e:
        mm.partition(model, bad)
    msg = str(e.value)
    assert "\n" not in msg and "--mats" in msg and "[1, 8]" in msg and repr(bad) in msg


def test_not_built_yet():
    """An add whose shortcut is inside another segment (a convolution's output before its
    pool: never broadcast) is refused in one line; so is a branch reading such a tensor."""
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 2, 6, 6), dtype=np.uint8)
    model = random_model([("conv", "adder_conv2d", 3, 3, 1, 1), ("pool", "max", 1, 1),
                          ("conv", "mul_conv2d", 3, 3, 1, 1), ("add", 2), ("flatten",),
                          ("linear", "mul_linear", 3)], (2, 6, 6), rng, x)
    with pytest.raises(mm.MultiMatError, match=r"layer 3 \(add\) reads as its shortcut the "
                                               r"output of layer 0 \(adder_conv2d\), which is "
                                               r"inside a segment"):
        mm.partition(model, 2)
    model = random_model([("conv", "adder_conv2d", 3, 3, 1, 1), ("pool", "max", 1, 1),
                          ("conv", "mul_conv2d", 3, 3, 1, 1, 0), ("flatten",),
                          ("linear", "mul_linear", 3)], (2, 6, 6), rng, x)
    with pytest.raises(mm.MultiMatError, match=r"segment 1 \(layers \[2\]\) reads as its "
                                               r"input the output of layer 0"):
        mm.partition(model, 1)


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
    2 mats each mat's streamed words cross the shared bus one mat after the other. (The PPU
    post-processes: the streamed words are the weights alone.)"""
    model = load_model(bundled_model_path("digits_addernet"))
    config = dataclasses.replace(preset("nand_spin"), buffer_slots=64, postproc="ppu")
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


def _grouped_model(spec, in_shape, rng, x):
    """A validated model of ``spec``: ``("conv", kind, out, k, stride, pad)``, ``("gconv",
    kind, out, k, stride, pad, groups)`` (golden's format-2 grouped kinds; depthwise: groups =
    the input channels), ``("pool", "max" | "avg", k, stride)``, ``("gap",)``, ``("flatten",)``,
    ``("linear", kind, out)`` (the last: logits); each requantization fitted to ``x``."""
    layers, cur = [], x
    for item in spec:
        tag = item[0]
        if tag in ("conv", "gconv"):
            _, kind, out, k, st, pad = item[:6]
            g = item[6] if tag == "gconv" else 1
            shape = (out, cur.shape[1] // g, k, k)
            adder = kind.startswith("adder")
            w = (rng.integers(0, 256, shape).astype(np.uint8) if adder
                 else rng.integers(-128, 128, shape).astype(np.int8))
            acc = (gl.adder_conv2d if adder else gl.mul_conv2d)(cur, w, stride=st, padding=pad,
                                                                 groups=g)
            m, b, sh = fit_requant(acc, rng)
            p = dict(weight=w, stride=st, padding=pad, rq_mult=m, rq_bias=b, rq_shift=sh)
            if tag == "gconv":
                p.update(groups=g, pad_value=0)
            ly = Layer(kind, "requant", p, _float(w, out))
        elif tag == "pool":
            ly = Layer(f"{item[1]}_pool2d", "", {"kernel": item[2], "stride": item[3]})
        elif tag in ("gap", "flatten"):
            ly = Layer("global_avg_pool2d" if tag == "gap" else "flatten")
        else:
            _, kind, out = item
            w = rng.integers(-128, 128, (out, int(np.prod(cur.shape[1:])))).astype(np.int8)
            ly = Layer(kind, "logits", dict(weight=w, bias=rng.integers(-99, 99, out)
                                            .astype(np.int32)),
                       dict(weight=w.astype(np.float32), bias=np.zeros(out, np.float32)))
        layers.append(ly)
        cur = layer_forward_int(ly, cur)
    return make_model(name="grouped", input_shape=in_shape, input_scale=1 / 255,
                      class_names=[str(j) for j in range(cur.shape[1])], layers=layers)


#: A depthwise-separable network: a pool before the first compute layer, a 3x3 convolution,
#: a 3x3 depthwise (groups = 6) and a 1x1 pointwise layer with a fused pool, a grouped
#: convolution of 4 groups of 2 channels with stride 2, a global pool and a linear layer.
_DS_SPEC = [("pool", "max", 2, 1), ("conv", "mul_conv2d", 6, 3, 1, 1),
            ("gconv", "adder_gconv2d", 6, 3, 1, 1, 6), ("conv", "adder_conv2d", 8, 1, 1, 0),
            ("pool", "max", 2, 2), ("gconv", "mul_gconv2d", 8, 3, 2, 1, 4), ("gap",),
            ("flatten",), ("linear", "mul_linear", 3)]


def _small_config():
    return dataclasses.replace(preset("nand_spin"), rows=128, columns=32, subarrays_per_mat=2,
                               mats=32)


@pytest.mark.parametrize("mats", [1, 2, 3])
def test_grouped_and_pool_first(mats):
    """Grouped / depthwise layers sliced by whole groups (mat m reads only its groups' input
    channels; M = 3: uneven, 2 + 2 + 2 of the depthwise layer's 6 groups but 2 + 1 + 1 of the
    4-group layer's) and a pool before the first compute layer (every mat pools the whole
    input): every mat's slice == golden's channels, the concatenation == golden's, the
    counting mode == the cycle model, counter for counter."""
    rng = np.random.default_rng(SEED + 10 * mats)
    x = rng.integers(0, 256, (1, 3, 12, 12), dtype=np.uint8)
    model = _grouped_model(_DS_SPEC, (3, 12, 12), rng, x)
    segs = _check_partition(model, _small_config(), mats, x[0],
                            where=f"depthwise-separable M={mats}")
    assert [s.layers for s in segs] == [(0, 1), (2,), (3, 4), (5, 6), (7, 8)]
    assert segs[0].in_slices is None and segs[2].in_slices is None
    dw, g4 = mm.slices(6, mats), mm.slices(4, mats)
    assert segs[1].in_slices == dw and segs[1].slices == dw             # 1 channel per group
    assert segs[3].in_slices == [(2 * lo, 2 * hi) for lo, hi in g4]    # 2 inputs per group
    assert segs[3].slices == [(2 * lo, 2 * hi) for lo, hi in g4]
    for s in segs:
        for sub, (lo, hi) in zip(s.models, s.slices, strict=True):
            ly = sub.layers[s.layers.index(s.compute)]
            assert ly.params["weight"].shape[0] == hi - lo
            if s.in_slices:
                assert sub.input_shape[0] == int(ly.params["groups"]) * ly.params[
                    "weight"].shape[1]


@pytest.mark.parametrize("mats", [1, 3])
def test_pool_before_a_depthwise_first_layer(mats):
    """A pool before a depthwise first layer: each mat pools only its groups' channels."""
    rng = np.random.default_rng(SEED + mats)
    x = rng.integers(0, 256, (1, 3, 8, 8), dtype=np.uint8)
    model = _grouped_model([("pool", "avg", 2, 2), ("gconv", "adder_gconv2d", 3, 3, 1, 1, 3),
                            ("flatten",), ("linear", "mul_linear", 3)], (3, 8, 8), rng, x)
    segs = _check_partition(model, _small_config(), mats, x[0], where=f"pool-first dw M={mats}")
    assert segs[0].layers == (0, 1) and segs[0].in_slices == mm.slices(3, mats)
    assert [sub.input_shape for sub in segs[0].models] == [(hi - lo, 8, 8)
                                                           for lo, hi in segs[0].in_slices]


def test_grouped_one_mat_is_the_single_mat():
    """M = 1 on the depthwise-separable network: cycles, every counter, ops and energy == the
    whole model compiled as one program and counted."""
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 3, 12, 12), dtype=np.uint8)
    model = _grouped_model(_DS_SPEC, (3, 12, 12), rng, x)
    config = _small_config()
    _one_mat_is_the_single_mat(model, config)


def test_grouped_mats_bounded_by_groups():
    """At most as many mats as the narrowest layer's groups (each mat gets whole groups)."""
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 4, 6, 6), dtype=np.uint8)
    model = _grouped_model([("gconv", "adder_gconv2d", 8, 3, 1, 1, 2), ("flatten",),
                            ("linear", "mul_linear", 5)], (4, 6, 6), rng, x)
    assert len(mm.partition(model, 2)) == 2
    with pytest.raises(mm.MultiMatError, match=r"\[1, 2\] \(the narrowest compute layer, "
                                               r"layer 0, has 2 groups\), not 3"):
        mm.partition(model, 3)


@pytest.mark.parametrize("mats", [1, 2, 3])
def test_branches(mats):
    """A branch (a convolution reading an earlier layer's output, golden's ``input`` array):
    its segment reads that tensor, which every mat holds (it was broadcast)."""
    rng = np.random.default_rng(SEED + 20 * mats)
    x = rng.integers(0, 256, (1, 2, 8, 8), dtype=np.uint8)
    model = random_model([("conv", "mul_conv2d", 4, 3, 1, 1), ("conv", "adder_conv2d", 5, 3, 1, 1),
                          ("conv", "adder_conv2d", 3, 3, 2, 1, 0), ("pool", "max", 2, 2),
                          ("conv", "mul_conv2d", 3, 1, 1, 0, -1), ("flatten",),
                          ("linear", "mul_linear", 3)], (2, 8, 8), rng, x)
    segs = _check_partition(model, _small_config(), mats, x[0], where=f"branches M={mats}")
    assert [(s.layers, s.reads) for s in segs] == [((0,), -1), ((1,), 0), ((2, 3), 0),
                                                    ((4,), -1), ((5, 6), 4)]
    assert all("input" not in sub.layers[0].params for s in segs for sub in s.models)


#: Residual networks (tests.layer_models): a projection block (the 1x1 stride-2 projection, the
#: branch's first convolution reading the block input, an add of the projection) with a global
#: pool; an identity block after a standalone pool (its shortcut the pool's output, which is
#: also the next segment's input); a tensor read as a shortcut and then by a branch; an add of
#: the model input.
_RESIDUAL = {
    "projection": ((2, 8, 8), [
        ("conv", "mul_conv2d", 4, 3, 1, 1), ("conv", "adder_conv2d", 6, 1, 2, 0),
        ("conv", "adder_conv2d", 6, 3, 2, 1, 0), ("conv", "mul_conv2d", 6, 3, 1, 1),
        ("add", 2), ("gap",), ("flatten",), ("linear", "mul_linear", 3)]),
    "identity": ((1, 11, 11), [
        ("conv", "adder_conv2d", 4, 5, 2, 2), ("pool", "max", 2, 1),
        ("conv", "mul_conv2d", 4, 3, 1, 1), ("conv", "adder_conv2d", 4, 3, 1, 1), ("add", 2),
        ("flatten",), ("linear", "adder_linear", 3)]),
    "shortcut_then_branch": ((2, 6, 6), [
        ("conv", "mul_conv2d", 3, 3, 1, 1), ("conv", "adder_conv2d", 3, 3, 1, 1), ("add", 1),
        ("conv", "mul_conv2d", 4, 3, 2, 1, 0), ("flatten",), ("linear", "mul_linear", 3)]),
    "input_shortcut": ((3, 6, 6), [
        ("conv", "mul_conv2d", 3, 3, 1, 1), ("add", -1), ("pool", "max", 3, 3), ("flatten",),
        ("linear", "mul_linear", 3)]),
}


def _residual(name, seed):
    shape, spec = _RESIDUAL[name]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, *shape), dtype=np.uint8)
    return random_model(spec, shape, rng, x), x


@pytest.mark.parametrize("mats", [1, 2, 3])
@pytest.mark.parametrize("name", list(_RESIDUAL))
def test_residual(name, mats):
    """Adds sliced by channel with their main path's segment (each mat adds its own channels),
    the shortcut read from the copy every mat keeps (the segment output broadcast, or the
    image); branches reading the block input: every mat's slice on the cycle model == golden's
    channels, their concatenation == golden's, the counting mode == the cycle model."""
    model, x = _residual(name, SEED + mats)
    segs = _check_partition(model, _small_config(), mats, x[0], where=f"{name} M={mats}")
    want = {"projection": ([((0,), -1, ()), ((1,), 0, ()), ((2,), 0, ()),
                            ((3, 4, 5), 2, ((1, 1),)), ((6, 7), 5, ())],
                           {0: (1, 2, 256), 1: (2, 3, 96)}),
            "identity": ([((0, 1), -1, ()), ((2,), 1, ()), ((3, 4), 2, ((1, 1),)),
                          ((5, 6), 4, ())], {1: (1, 2, 100)}),  # 4 x 5 x 5
            "shortcut_then_branch": ([((0,), -1, ()), ((1, 2), 0, ((1, 0),)), ((3,), 0, ()),
                                      ((4, 5), 3, ())], {0: (1, 2, 108)}),   # kept to its last
            "input_shortcut": ([((0, 1, 2), -1, ((1, -1),)), ((3, 4), 2, ())],
                               {-1: (0, 0, 108)})}[name]
    assert [(s.layers, s.reads, s.shortcuts) for s in segs] == want[0]
    assert mm.kept(segs) == want[1]


@pytest.mark.parametrize("name", list(_RESIDUAL))
def test_residual_one_mat_is_the_single_mat(name):
    """M = 1 on the residual networks: cycles, every counter, ops and energy == the whole model
    compiled as one program (its own data layout) and counted."""
    model, _ = _residual(name, SEED)
    config = _small_config()
    _one_mat_is_the_single_mat(model, config)


def test_kept_tensors_need_data_words():
    """The tensors the mats keep sit above each slice's own words: a data memory too small for
    both is refused in one line naming data_words and the size to raise it to, which runs."""
    from sim.compile.compiler import CompileError
    model, x = _residual("projection", SEED)
    small = dataclasses.replace(_small_config(), data_words=512)
    with pytest.raises(CompileError) as e:
        mm.compile_partitioned(model, small, 2)
    msg = str(e.value)
    assert "\n" not in msg and "data_words is 512" in msg
    assert e.value.field == "data_words" and e.value.size > 512
    need = e.value.size
    _check_partition(model, dataclasses.replace(small, data_words=need), 2, x[0],
                     where="projection at the data_words asked for")
    _, comp = mm.compile_partitioned(model, small, 2, propose=True)    # raised to one size
    assert {c.config.data_words for row in comp for c in row} == {need}


def test_zero_skipping_measured_on_several_mats():
    """Zero skipping (jeit_stt) on a data-set image: every mat's slice on the cycle model ==
    golden, and the partitioned count with the dots each mat's stages skipped == the cycle
    model, counter for counter (tiles are skipped: the path is exercised)."""
    from golden import datasets
    model = load_model(bundled_model_path("fashion_addernet"))
    x, _ = datasets.load_dataset("fashion_mnist", "test")
    config = preset("jeit_stt")
    segs, compiled = mm.compile_partitioned(model, config, 2)
    _check_partition(model, config, 2, x[0], where="fashion_addernet jeit_stt M=2")
    skips = [sum(s.zero_skip["zs_tiles"] for s in run_compiled(
        c, x[0] if seg.reads < 0 else infer_int(model, x[:1], trace=True)[seg.reads][0],
        CoreModel(c.config, subarrays=c.subarrays)).stages)
        for seg, row in zip(segs, compiled, strict=True) for c in row]
    assert sum(skips) > 0, "no tile skipped: the skip path is untested"


@pytest.mark.parametrize("fraction", [0.0, 0.5, 1.0])
def test_skip_fraction_one_mat_is_the_single_mat(fraction):
    """--skip F with --mats 1 == the single mat's count with F; more skipped, fewer cycles."""
    model = load_model(bundled_model_path("fashion_addernet"))
    config = preset("jeit_stt")
    _one_mat_is_the_single_mat(model, config, skipped=fraction)
    two = amm.run(model, config, 2, skipped=fraction)
    none = amm.run(model, config, 2)
    assert (two["cycles"] < none["cycles"]) == (fraction > 0)


def test_cli_skip_with_mats(capsys):
    assert counting.main(["--model", "fashion_addernet", "--preset", "jeit_stt", "--mats", "2",
                          "--skip", "0.5"]) == 0
    assert "total on 2 mats" in capsys.readouterr().out
    for argv, want in ((["--skip", "0.5,0.2"], "--skip with --mats must be one fraction in "
                                                "[0, 1] (for every stage of every mat), not "
                                                "'0.5,0.2'"),
                       (["--skip", "2"], "not '2'")):
        assert counting.main(["--model", "fashion_addernet", "--preset", "jeit_stt",
                              "--mats", "2", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and want in err, err
    assert counting.main(["--model", "fashion_addernet", "--mats", "2", "--skip", "0.5"]) == 2
    assert "no zero skipping" in capsys.readouterr().err
    assert amm.main(["--model", "fashion_addernet", "--preset", "jeit_stt", "--mats", "1,2",
                     "--skip", "1"]) == 0
    assert "| jeit_stt | 2 |" in capsys.readouterr().out
    assert amm.main(["--model", "fashion_addernet", "--mats", "2", "--skip", "x"]) == 2
    assert "--skip with --mats must be one fraction" in capsys.readouterr().err


#: A residual network whose first layers need tiled activations at ``data_words = 1024``
#: and whose later block (an identity add, then a projection block: a 1x1 stride-2
#: projection and a branch reading the block input) is resident: its adds' shortcuts and the
#: branch's input come from the activation store into the data memory.
_TILED_THEN_RESIDENT = ((2, 16, 16), [
    ("conv", "mul_conv2d", 8, 3, 1, 1), ("conv", "adder_conv2d", 4, 3, 2, 1),
    ("conv", "mul_conv2d", 4, 3, 1, 1), ("add", 1), ("conv", "adder_conv2d", 4, 1, 2, 0),
    ("conv", "mul_conv2d", 4, 3, 2, 1, 3), ("add", 1), ("flatten",),
    ("linear", "mul_linear", 3)])


def _own_words(comp) -> int:
    """The tiled-activation words a slice moves for itself: its stores and every load but
    its segment input's (source -1)."""
    return sum(mv[4] for st in comp.stages for mv in st.act_moves
               if mv[1] == "store" or (mv[1] == "load" and mv[5] != -1))


@pytest.mark.parametrize("name,data_words,mats", [
    ("projection", 128, 2), ("shortcut_then_branch", 128, 3), ("input_shortcut", 128, 2),
    ("tiled_then_resident", 1024, 1), ("tiled_then_resident", 1024, 2)])
def test_kept_tensors_in_the_store(name, data_words, mats):
    """Tensors kept for later layers in a model some of whose slices have their activations
    tiled live in the activation store: an add in the store mode loads its shortcut's
    channels from there, a resident add has them loaded into its data memory and its offsets
    pointed there, a resident branch loads its input. Every mat's slice on the cycle model
    (the kept tensors in its store only, nothing kept in its data memory) == golden's
    channels, the concatenation == golden's, every counter == the counting mode's; a mat's
    own bus words are its stores and its loads of anything but its segment's input."""
    if name == "tiled_then_resident":
        shape, spec = _TILED_THEN_RESIDENT
        rng = np.random.default_rng(SEED + mats)
        x = rng.integers(0, 256, (1, *shape), dtype=np.uint8)
        model = random_model(spec, shape, rng, x)
    else:
        model, x = _residual(name, SEED + mats)
    config = dataclasses.replace(_small_config(), data_words=data_words)
    segs = _check_partition(model, config, mats, x[0], where=f"{name} M={mats} store",
                            tile_activations=True)
    assert all(s.in_store and not s.keeps for s in segs)
    segs, compiled = mm.compile_partitioned(model, config, mats, tile_activations=True)
    keyed = [mv for row in compiled for c in row for st in c.stages for mv in st.act_moves
             if mv[1] == "load" and isinstance(mv[5], tuple)]
    assert {mv[5] for mv in keyed} == {mm.kept_key(t) for s in segs for _, t in s.shortcuts}
    if name == "tiled_then_resident":   # the later block resident: whole loads before the add
        late = [row for s, row in zip(segs, compiled, strict=True) if s.index >= 2]
        assert all(not c.stages[0].act_moves or c.stages[0].act_moves[0][5] == -1
                   for row in late for c in row)
        branch = next(s for s in segs if s.index and s.reads != segs[s.index - 1].last)
        assert branch.layers == (5, 6) and branch.reads == 3
        first = compiled[branch.index][0].stages[0]
        assert first.act_moves == [(0, "load", first.in_base, 0, first.in_size, -1)]
    res = mm.count_partitioned(segs, compiled)
    from sim.compile import weight_stream as _ws
    for seg, row in zip(segs, compiled, strict=True):
        for m, comp in enumerate(row):
            p = res["segments"][seg.index]["mats"][m]["host"]
            assert p["stream_cycles"] == _ws.cost(comp)["bus_cycles"] + _own_words(comp)


def test_kept_shortcut_needs_data_words_in_store_mode():
    """A resident add whose shortcut channels, loaded from the store, do not fit beside its
    own words: one line naming data_words and the size that holds both."""
    from sim.compile.compiler import CompileError
    shape, spec = _TILED_THEN_RESIDENT      # its first block 6 channels wide: 816 own words
    spec = [spec[0], ("conv", "adder_conv2d", 6, 3, 2, 1), ("conv", "mul_conv2d", 6, 3, 1, 1),
            *spec[3:]]
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, *shape), dtype=np.uint8)
    model = random_model(spec, shape, rng, x)
    config = dataclasses.replace(_small_config(), data_words=1024)
    with pytest.raises(CompileError) as e:
        mm.compile_partitioned(model, config, 1, tile_activations=True)
    msg = str(e.value)
    assert "\n" not in msg and "activation store" in msg
    assert "384 words of layer 1's output" in msg       # 6 channels x 8 x 8
    assert "raise data_words to at least 2048" in msg
    segs = _check_partition(model, dataclasses.replace(config, data_words=2048), 1, x[0],
                            tile_activations=True)    # which runs (everything resident then)
    assert segs


@pytest.mark.parametrize("mats", [2, 3, 10])
def test_binarized_grouped(mats):
    """``digits_addnet`` (seed 002's Add-Net: depthwise and pointwise ``bin_gconv2d`` layers on
    the FA/FS lanes, ``dima_sot``) partitioned: the depthwise layers by whole groups, the
    pointwise ones (one group) by output channel, their quantization thresholds and signs cut
    with them; every mat's slice on the cycle model == golden's channels, the concatenation ==
    golden's, every counter == the counting mode's (10 mats: the logits' 10 outputs, the most
    it allows)."""
    from golden import datasets
    model = load_model(bundled_model_path("digits_addnet"))
    assert mm.max_mats(model)[0] == 10
    config = propose_config(model, preset("dima_sot"))
    x = datasets.load_dataset("digits", "test")[0][:1]
    segs = _check_partition(model, config, mats, x[0], where=f"digits_addnet M={mats}")
    for s in segs:
        ly = model.layers[s.compute]
        if ly.kind != "bin_gconv2d":
            continue
        g = int(ly.params["groups"])
        for sub, (lo, hi) in zip(s.models, s.slices, strict=True):
            cut = sub.layers[s.layers.index(s.compute)]
            assert np.array_equal(cut.params["q_thresh"], ly.params["q_thresh"][lo:hi])
            assert np.array_equal(cut.params["q_sign"], ly.params["q_sign"][lo:hi])
            if g > 1:               # whole groups: 4 output channels and 1 input each
                assert (hi - lo) % (ly.params["weight"].shape[0] // g) == 0
                assert int(cut.params["groups"]) == (hi - lo) // (ly.params["weight"].shape[0]
                                                                  // g)


def test_binarized_grouped_one_mat_is_the_single_mat():
    """M = 1 on ``digits_addnet`` (``dima_sot``): every ``bin_gconv2d`` stage (with the pool
    fused after the last) counts as in the whole model compiled as one program, counter for
    counter. (Its multiply layers, on route ``dima_bitwise``, do not: that route lays out
    its resident weight rows per program, so a layer compiled alone takes other rows than in
    the whole model's array.)"""
    model = load_model(bundled_model_path("digits_addnet"))
    config = propose_config(model, preset("dima_sot"))
    whole = count_model(compile_model(model, config))
    want = {st.name.replace("layer", "", 1).split()[0]: st.counters for st in whole.stages}
    segs, compiled = mm.compile_partitioned(model, config, 1)
    seen = 0
    for seg, row in zip(segs, compiled, strict=True):
        if model.layers[seg.compute].kind != "bin_gconv2d":
            continue
        got = count_model(row[0]).stages
        assert len(got) == 1
        assert got[0].counters == want[str(seg.compute)], seg.layers
        seen += 1
    assert seen == 4


def test_kept_tensors_in_the_store_measured_skips():
    """Zero skipping (jeit_stt) with the kept tensors in the activation store:
    ``sim.analysis.multi_mat.run(images=...)`` (``measure_skips``) runs every mat's slice with
    its kept tensors in its store (without them its loads fail), and its count with the dots
    measured == every slice's cycle-model counters summed, run here. (This network's tiles
    are not all-zero, so none is skipped; test_zero_skipping_measured_on_several_mats
    exercises the skips.)"""
    model, x = _residual("projection", SEED + 2)
    config = dataclasses.replace(preset("jeit_stt"), rows=128, columns=32, subarrays_per_mat=2,
                                 mats=32, data_words=128)
    _check_partition(model, config, 2, x[0], where="projection jeit_stt store",
                     tile_activations=True)
    segs, compiled = mm.compile_partitioned(model, config, 2, tile_activations=True)
    assert all(s.in_store for s in segs)
    trace = infer_int(model, x, trace=True)
    total = {}
    for seg, row in zip(segs, compiled, strict=True):
        x_in = (x[0] if seg.reads < 0 else trace[seg.reads][0]).astype(np.uint8)
        for comp in row:
            r = run_compiled(comp, x_in, CoreModel(comp.config, subarrays=comp.subarrays),
                             store=mm.store_of(seg, lambda t: x[0] if t < 0 else trace[t][0]))
            for k, v in r.counters.items():
                total[k] = total.get(k, 0) + v
    res = amm.run(model, config, 2, tile_activations=True, images=x)
    assert res["counters"] == total


#: A resident first segment (2 channels), a segment in ``act_tile``'s store mode (a
#: convolution and a standalone pool: every stage loads its input from the activation store
#: and stores its output), a banded segment (a convolution with a fused pool, its input too
#: large for half of a 512-word data memory) and a resident classifier.
_TILED_SEGMENTS = ((2, 8, 8), [
    ("conv", "adder_conv2d", 2, 3, 1, 1), ("conv", "mul_conv2d", 8, 3, 1, 1),
    ("pool", "max", 3, 1, 1), ("conv", "adder_conv2d", 8, 3, 1, 1), ("pool", "max", 2, 2),
    ("flatten",), ("linear", "mul_linear", 3)])


def test_tiled_segment_input_reaches_the_mats_once():
    """A segment whose readers all load it from the activation store goes to the store only
    (ASSUMPTION ``to_store``): its words not stored yet by its own stores, one per cycle, a
    data-memory read each and the wire, no write into any mat; a segment read by resident
    slices keeps its broadcast into their data memories. The words charged == the words
    moved, worked out here from the tensor shapes and the slices' moves; less than the old
    broadcast of every output into every mat; without tiling the broadcast is the old one;
    M = 1 has no hand-off."""
    from sim.compile.weight_stream import wire_mm
    from sim.hw import sram
    from sim.hw.chip import PARAMS
    shape, spec = _TILED_SEGMENTS
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, *shape), dtype=np.uint8)
    model = random_model(spec, shape, rng, x)
    shapes = model.shapes()
    config = dataclasses.replace(_small_config(), data_words=512)
    _check_partition(model, config, 2, x[0], where="tiled segments M=2", tile_activations=True)
    segs, compiled = mm.compile_partitioned(model, config, 2, tile_activations=True)
    assert [s.layers for s in segs] == [(0,), (1, 2), (3, 4), (5, 6)]
    res = mm.count_partitioned(segs, compiled)

    def per_word(cfg):
        """Joules of a data-memory read, a write and a word over the bus wire."""
        dm = next(m for m in sram.core_memories(cfg, compiled[0][0].subarrays)
                  if m.name == "data memory")
        return (sram.read_energy_pj(dm.words, dm.bits) * 1e-12,
                sram.write_energy_pj(dm.words, dm.bits) * 1e-12,
                32 * PARAMS["wire_fj_per_bit_mm"].value * wire_mm(cfg) * 1e-15)

    rd, wr, wire = per_word(config)

    def moves(comp, kind, src=None):
        return sum(mv[4] for st in comp.stages for mv in st.act_moves
                   if mv[1] == kind and (src is None or mv[5] == src))

    assert not any(st.act_moves for c in compiled[0] + compiled[3] for st in c.stages)
    # every mat of segments 1 and 2 loads (at least) its whole input from the store
    assert all(moves(c, "load", -1) >= np.prod(shapes[1]) for c in compiled[1])
    assert all(moves(c, "load", -1) >= np.prod(shapes[3]) for c in compiled[2])
    from_store = {1: True, 2: True, 3: False}      # segment -> its mats load their input
    old_cycles = old_j = new_cycles = 0
    for seg, s in zip(segs[:-1], res["segments"], strict=False):
        words = int(np.prod(shapes[seg.last + 1]))
        stored = sum(sum(mv[4] for mv in c.stages[-1].act_moves if mv[1] == "store")
                     for c in compiled[seg.index])
        assert stored == {0: 0, 1: words, 2: words}[seg.index]
        b = s["broadcast"]
        if from_store[seg.index + 1]:           # to the store only
            moved, want_j = words - stored, (words - stored) * (rd + wire)
            assert b["to_store"] and b["resident_mats"] == []
        else:                                   # broadcast into both mats
            moved, want_j = words, (words - stored) * rd + words * (2 * wr + wire)
            assert b["resident_mats"] == [0, 1]
        assert b["words"] == b["cycles"] == moved
        assert b["energy_j"] == pytest.approx(want_j, rel=1e-12)
        assert s["cycles"] == (max(s["mat_cycles"]) + s["shared_cycles"]
                               + sum(s["stream_cycles"]) + moved)
        old_cycles += words
        old_j += words * (rd + 2 * wr + wire)
        new_cycles += moved
        if seg.index < 2:
            assert b["energy_j"] < words * (rd + 2 * wr + wire)
    assert new_cycles == 128 + 0 + 128 < old_cycles == 128 + 512 + 128
    assert sum(s["broadcast"]["energy_j"] for s in res["segments"]) < old_j
    # resident readers everywhere (no tiling): the old broadcast, every word into both mats
    whole = dataclasses.replace(_small_config(), patch_entries=8192)   # (the pool's windows)
    segs, compiled = mm.compile_partitioned(model, whole, 2)
    assert not any(st.act_moves for row in compiled for c in row for st in c.stages)
    res = mm.count_partitioned(segs, compiled)
    rd, wr, wire = per_word(whole)
    for seg, s in zip(segs[:-1], res["segments"], strict=False):
        words = int(np.prod(shapes[seg.last + 1]))
        b = s["broadcast"]
        assert (b["words"], b["cycles"], b["resident_mats"]) == (words, words, [0, 1])
        assert b["energy_j"] == pytest.approx(words * (rd + 2 * wr + wire), rel=1e-12)
    # M = 1: no hand-off; a segment's cycles are its mat's
    segs, compiled = mm.compile_partitioned(model, config, 1, tile_activations=True)
    res = mm.count_partitioned(segs, compiled)
    for s in res["segments"]:
        assert (s["broadcast"]["words"], s["broadcast"]["energy_j"]) == (0, 0.0)
        assert s["cycles"] == s["mat_cycles"][0] + s["shared_cycles"] + s["stream_cycles"][0]
