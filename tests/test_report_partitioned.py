"""The report's partitioned section (``sim.analysis.report.partitioned``: the model over the mats
of one bank of the preset's own chip organisation) and ``python -m sim.analysis.counting --mats M
--measure N`` (zero skipping measured per slice).

Expected values come from elsewhere than the code under test: the number of mats from the
model's layer shapes and ``sim.hw.chip.PARAMS``; the partition's figures from
``sim.analysis.multi_mat.run`` called here (with zero skipping: every mat's slice run here on the
cycle model, ``sim.hw.core_model.CoreModel``, on golden's inputs, its skipped dots counted by
``sim.compile.multi_mat.count_partitioned``); one mat from the whole model compiled as one
program and counted (``sim.analysis.counting.count_model``) and from the report's own cycle-model
run.
"""

import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest

from golden import datasets
from golden.model import COMPUTE_KINDS, bundled_model_path, infer_int, load_model
from rtl.config import preset
from sim.analysis import counting, report
from sim.analysis import multi_mat as amm
from sim.analysis.counting import count_model
from sim.compile import multi_mat as mm
from sim.compile.compiler import compile_model, run_compiled
from sim.compile.weight_stream import wire_mm
from sim.hw import energy, sram
from sim.hw.chip import PARAMS
from sim.hw.core_model import CoreModel
from tests.partition_energy import assert_terms, logic_terms, macro_slots, memories, whole_terms

MAT = 4                     # small mats: the report's --mat
CASES = (("digits_addernet", "nand_spin"), ("fashion_addernet", "jeit_stt"))
REL = 1e-12


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """``{(model, preset): (report JSON, report.md)}``: one report run per case, one image on
    the cycle model, mats of ``MAT`` subarrays."""
    out = {}
    for name, p in CASES:
        d = tmp_path_factory.mktemp(f"{name}-{p}")
        with contextlib.redirect_stdout(io.StringIO()):
            assert report.main(["--backend", "model", "--model", name, "-n", "1", "--preset",
                                p, "--mat", str(MAT), "--out", str(d), "--quiet"]) == 0
        out[name, p] = (json.loads((d / f"report-{p}.json").read_text()),
                        (d / "report.md").read_text())
    return out


def _image(name):
    ds = {"digits_addernet": "digits", "fashion_addernet": "fashion_mnist"}[name]
    return datasets.load_dataset(ds, "test")[0][:1]


def _slices_measured(model, config, mats, x):
    """Every mat's own slice run on the cycle model on golden's input of its segment (the
    tensors kept for later layers in its data memory): ``(segments, compiled, skipped dots
    per segment, mat and stage, summed cycle-model counters)``."""
    segs, compiled = mm.compile_partitioned(model, config, mats, subarrays=MAT,
                                            stream_weights=True)
    trace = infer_int(model, x[None], trace=True)
    skipped, total = [], {}
    for seg, row in zip(segs, compiled, strict=True):
        x_in = (x if seg.reads < 0 else trace[seg.reads][0]).astype(np.uint8)
        ins = seg.in_slices or [(0, len(x_in))] * len(row)
        skipped.append([])
        for comp, (lo, hi) in zip(row, ins, strict=True):
            core = CoreModel(comp.config, subarrays=comp.subarrays)
            for t, base in seg.keeps.items():
                for i, v in enumerate((x if t < 0 else trace[t][0]).reshape(-1).tolist()):
                    core.write_dmem(base + i, int(v))
            store = mm.store_of(seg, lambda t: x if t < 0 else trace[t][0])
            r = run_compiled(comp, x_in[lo:hi], core, store=store)
            skipped[-1].append([s.zero_skip.get("zs_tiles", 0) for s in r.stages])
            for k, v in r.counters.items():
                total[k] = total.get(k, 0) + v
    return segs, compiled, skipped, total


@pytest.mark.parametrize("name,preset_name", CASES)
def test_section_equals_multi_mat_run(runs, name, preset_name):
    """M = the smallest of one bank's mats, the chip's and the model's narrowest compute layer
    (its output channels, from the layer shapes); the partitioned row == the partition counted
    here; the other rows are the report's single mat and chip figures."""
    rep, md = runs[name, preset_name]
    p = rep["partitioned"]
    model = load_model(bundled_model_path(name))
    config = preset(preset_name)
    narrow = min(int(ly.params["weight"].shape[0]) for ly in model.layers
                 if ly.kind in COMPUTE_KINDS)
    bank = int(PARAMS["mats_per_bank"].value)
    want_m = min(bank, config.subarrays // MAT, narrow)
    assert want_m == narrow == 8        # both models' first layer: 8 channels, below a bank
    assert p["mats"] == want_m and p["refused"] is None
    assert len(p["limited_by"]) == 1 and p["limited_by"][0].startswith("the model")
    assert f"{narrow} output channels" in p["limited_by"][0]
    x = _image(name)
    if config.zero_skip:    # the dots each mat's slice skipped on the cycle model
        segs, compiled, skipped, _ = _slices_measured(model, config, want_m, x[0])
        if name == "fashion_addernet":
            assert sum(map(sum, (k for row in skipped for k in row))) > 0, "nothing skipped"
        want = mm.count_partitioned(segs, compiled, skipped=skipped)
    else:
        want = amm.run(model, config, want_m, subarrays=MAT, stream_weights=True)
    single, part, chip = p["rows"]
    assert part["mats"] == want_m
    assert part["cycles"] == want["cycles"]
    assert part["latency_s"] == pytest.approx(want["latency_s"], rel=REL)
    assert part["gops"] == pytest.approx(want["gops"], rel=REL)
    assert part["latency_s"] == pytest.approx(want["cycles"] / (config.clock_mhz * 1e6),
                                              rel=REL)
    bc = sum(s["broadcast"]["cycles"] for s in want["segments"])
    assert p["bus"]["broadcast_cycles"] == bc > 0
    pi, c = rep["per_image"], rep["chip"]
    assert (single["cycles"], single["energy_micro_ops_j"], single["gops_per_w_micro_ops"]) \
        == (pi["cycles"], pi["energy_j"], pi["gops_per_w"])
    assert single["energy_j"] == pytest.approx(rep["headline"]["energy_j"], rel=REL)
    assert part["energy_micro_ops_j"] == pytest.approx(
        want["energy_j"] - sum(s["broadcast"]["energy_j"] for s in want["segments"]), rel=REL)
    assert (chip["mats"], chip["gops"], chip["energy_j"]) == \
        (config.subarrays // MAT, c["gops"], c["energy_per_image_j"])
    assert [r["class"] for r in p["rows"]] == ["measured", "assumption", "assumption"]
    sec = md.split(f"### `{preset_name}`")[1]
    assert f"| partitioned over {want_m} mats of one bank | {want_m} | {want['cycles']:,} |" \
        in sec
    assert "Not charged by the partition:" in sec and "weight loading" in sec


def test_partition_energy_terms(runs):
    """M = 8 (fashion_addernet on jeit_stt): every energy term of the partition row computed
    here from the slices' counters (the cycle model's skips), their image and program words and
    the energy model's per-access constants: each mat's SRAMs at its own accesses, all eight
    mats' SRAM and logic leakage over the partition's latency, each mat's logic at the report's
    measured activity over its own cycles, the broadcasts."""
    rep, md = runs["fashion_addernet", "jeit_stt"]
    part = rep["partitioned"]["rows"][1]
    model = load_model(bundled_model_path("fashion_addernet"))
    config = preset("jeit_stt")
    segs, compiled, skipped, _ = _slices_measured(model, config, 8, _image("fashion_addernet")[0])
    want = mm.count_partitioned(segs, compiled, skipped=skipped)
    assert all(all(f.values()) for f in want["coresident"])    # every slice resident
    latency = part["cycles"] / (config.clock_mhz * 1e6)
    micro = dyn = leak = gate = 0.0
    cycles = []
    for m in range(8):
        acc, loaded, cyc = {}, None, 0
        for seg, row in zip(segs, compiled, strict=True):
            comp = row[m]
            assert not comp.stages[0].weight_loads      # nothing streamed: all resident
            c = count_model(comp, skipped=skipped[seg.index][m]).counters
            words, loaded = mm.program_words(comp, loaded)
            data = comp.stages[0].in_size if seg.index == 0 else 0
            last = seg.index == len(segs) - 1
            a = sram.access_counts(comp, c, host_data_words=data,
                                          host_program_words=sum(words),
                                          host_reads=(seg.slices[m][1] - seg.slices[m][0])
                                          if last else 0)
            for k, v in a.items():
                got = acc.setdefault(k, {"reads": 0, "writes": 0})
                got["reads"] += v["reads"]
                got["writes"] += v["writes"]
            est = energy.estimate(config, c, columns_active=comp.width,
                                         host={"data_words": data})
            micro += est.energy_j
            gate += energy.energy_split(config, c, columns_active=comp.width,
                                               host={"data_words": data})["CMOS logic"]
            cyc += c["cycles"] + data + sum(words)
        slots = macro_slots(sum(len(row[m].buffer) for row in compiled))
        d, lk = memories(dataclasses.replace(config, buffer_slots=slots), MAT, acc, latency)
        dyn, leak = dyn + d, leak + lk
        cycles.append(cyc)
    act, lgk = logic_terms(rep["logic_energy"], cycles, latency)
    assert act is not None      # the report's headline is activity-based at this mat
    bc = 0.0
    for seg in segs[:-1]:       # a read per word, a write into each of the 8 mats, the wire
        dm = next(x for x in sram.core_memories(config, MAT) if x.name == "data memory")
        e = sram.banked_read_pj(dm.words, dm.bits)
        bc += seg.out_words * e * (1 + 8 * sram.PARAMS["write_vs_read"].value) * 1e-12
        bc += (seg.out_words * 32 * PARAMS["wire_fj_per_bit_mm"].value
               * wire_mm(config) * 1e-15)
    assert_terms(part["terms"], {"micro-ops": micro, "gate-count logic": gate,
                                 "SRAM dynamic": dyn, "SRAM leakage": leak,
                                 "activity logic": act, "logic leakage": lgk,
                                 "broadcasts": bc}, rel=1e-9)
    assert part["energy_j"] == pytest.approx(micro - gate + act + lgk + dyn + leak + bc,
                                             rel=1e-9)
    assert part["gops_per_w"] == pytest.approx(part["gops"] * latency / part["energy_j"],
                                               rel=1e-9)
    assert "Energy per image by term (nJ" in md


@pytest.mark.parametrize("name,preset_name", CASES)
def test_one_mat_is_the_single_mat(runs, name, preset_name):
    """M = 1: the section's figures == the whole model compiled as one program and counted
    (with the dots the report's run skipped) == the report's own cycle-model run, term by
    term. On nand_spin both run its ``mixed`` post-processing: at the preset's own sizes the
    whole model keeps every layer the in-memory path is built for in memory, as M = 1's
    segments (each with its own tables) do (``tests/test_postproc_mixed.py``)."""
    rep, _ = runs[name, preset_name]
    model = load_model(bundled_model_path(name))
    config = preset(preset_name)
    x = _image(name)
    p = report.partitioned(preset_name, model, MAT, rep, images=x, mats=1)
    assert p["mats"] == 1 and p["limited_by"] == ["given"]
    part = p["rows"][1]
    comp = compile_model(model, config, subarrays=MAT, stream_weights=True)
    skipped = ([s["measured"][0]["zero_skip"]["zs_tiles"] for s in rep["stages"]]
               if config.zero_skip else None)
    whole = count_model(comp, model, skipped=skipped)
    assert part["cycles"] == whole.estimate["cycles"]
    assert part["energy_micro_ops_j"] == pytest.approx(whole.estimate["energy_j"], rel=REL)
    # every term of the headline: the whole model's, with the report's measured logic
    want = whole_terms(model, comp, whole, rep["logic_energy"])
    assert want["activity logic"] is not None
    assert_terms(part["terms"], want)
    # and the report's own single mat, term by term
    assert part["cycles"] == rep["per_image"]["cycles"]
    assert_terms(part["terms"], report.single_terms(rep))
    assert_terms(p["rows"][0]["terms"], want)
    assert part["energy_j"] == pytest.approx(p["rows"][0]["energy_j"], rel=REL)
    assert part["energy_j"] == pytest.approx(rep["headline"]["energy_j"], rel=REL)
    assert p["bus"]["broadcast_cycles"] == 0


def test_not_partitionable_gives_the_reason(runs):
    """A model several mats do not run yet (an add whose shortcut is a convolution's output
    inside another segment, before its pool: never broadcast): one line in the table instead
    of a crash; the other rows stay."""
    from tests.layer_models import random_model
    rep, _ = runs["digits_addernet", "nand_spin"]
    rng = np.random.default_rng(20261201)
    x = rng.integers(0, 256, (1, 2, 6, 6), dtype=np.uint8)
    model = random_model([("conv", "adder_conv2d", 3, 3, 1, 1), ("pool", "max", 1, 1),
                          ("conv", "mul_conv2d", 3, 3, 1, 1), ("add", 2), ("flatten",),
                          ("linear", "mul_linear", 3)], (2, 6, 6), rng, x)
    p = report.partitioned("nand_spin", model, MAT, dict(rep), images=None)
    assert p["mats"] is None and "inside a segment" in p["refused"]
    assert "not built yet" in p["refused"]
    assert "\n" not in p["refused"]
    lines = report._partitioned_lines({"partitioned": p})
    row = [ln for ln in lines if ln.startswith("| partitioned over one bank |")]
    assert len(row) == 1 and f"not partitioned: {p['refused']}" in row[0]
    assert [r["name"] for r in p["rows"]][0] == "one mat (measured)"


def test_counting_measure_with_mats(tmp_path, capsys):
    """``--mats 2 --measure N``: per slice the dots the cycle model skipped on the first N
    test images; with N = 1 the count == every slice's cycle-model counters summed."""
    model = load_model(bundled_model_path("fashion_addernet"))
    config = preset("jeit_stt")
    x = datasets.load_dataset("fashion_mnist", "test")[0][:2]
    out = tmp_path / "c.json"
    assert counting.main(["--model", "fashion_addernet", "--preset", "jeit_stt", "--mat",
                          str(MAT), "--mats", "2", "--measure", "1", "--json", str(out)]) == 0
    assert "skips measured per slice on 1 image(s)" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    segs, compiled, sk0, total = _slices_measured(model, config, 2, x[0])
    assert sum(map(sum, (k for row in sk0 for k in row))) > 0, "nothing skipped"
    assert doc["counters"] == total
    # two images: the mean of each slice's skipped dots, as fractions of its dots
    _, _, sk1, _ = _slices_measured(model, config, 2, x[1])
    res = amm.run(model, config, 2, subarrays=MAT, images=x)
    for s, row in enumerate(compiled):
        for m, comp in enumerate(row):
            dots = [st.dots for st in count_model(comp).stages]
            want = [(a + b) / (2 * d) if d else 0.0
                    for a, b, d in zip(sk0[s][m], sk1[s][m], dots, strict=True)]
            assert res["skipped"][s][m] == pytest.approx(want, rel=REL)
    assert res["measured_images"] == 2


@pytest.mark.parametrize("argv,message", [
    (["--preset", "nand_spin", "--measure", "1"],
     "--measure: the configuration has no zero skipping"),
    (["--preset", "jeit_stt", "--measure", "1", "--skip", "0.5"],
     "give --skip or --measure, not both"),
    (["--preset", "jeit_stt", "--measure", "0"], "--measure must be an int in [1, 10000]"),
])
def test_counting_measure_with_mats_errors(capsys, argv, message):
    assert counting.main(["--model", "fashion_addernet", "--mats", "2", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err
