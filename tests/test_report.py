"""sim.analysis.report on the numpy core model: every figure recomputed here from the stored
counters,
the golden layer shapes and the energy table; the CLI's errors.

Expected values come from the model's shapes, the compiled programs' static structure
(``Stage.cycles`` / ``micro_ops`` / ``gather_cycles``, the chunks' programs and patches),
``sim.hw.energy.estimate`` called here on the counters the report stored, golden inference and
the sourced constants of ``sim.hw.energy`` -- never from the report's own numbers.
"""

import contextlib
import dataclasses
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from golden.datasets import load_dataset
from golden.model import (
    COMPUTE_KINDS, bundled_model_path, infer_int, load_model, save_model,
)
from rtl.config import preset
from rtl.isa import Opcode
from sim.hw import energy
from sim.analysis import report
from sim.compile.compiler import compile_model

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("nand_spin", "jeit_stt")
MODEL = "digits_addernet"
IMAGES = 2
#: The report runs: --mat (None = the presets' subarrays_per_mat, 16 for both) -> presets.
#: They run in-process (``report.main``, the CLI's entry point: a subprocess would spend most
#: of its time importing); test_cli_error_subprocess_no_traceback runs the module as a user.
RUNS = {None: PRESETS, 1: ("jeit_stt",), 4: ("nand_spin",)}
CASES = [(mat, name) for mat, names in RUNS.items() for name in names]
REL = 1e-12
# A made-up gate-count report for nand_spin: 10 gates + 2 flip-flops per subarray block and
# 100 gates in the controller.
GATES = {"blocks": {"sense_amp": {"cells": {"$_AND_": 10, "$_DFF_P_": 2}},
                    "controller": {"cells": {"$_OR_": 100}}}}


def _run(*args):
    return subprocess.run([sys.executable, "-m", "sim.analysis.report", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
                          capture_output=True, text=True, timeout=120)


def _mat_id(mat):
    return f"mat{mat or 'default'}"


def _report_run(base, mat):
    """``(out directory, stdout, mat, presets)`` of the report run with ``--mat mat``."""
    base.mkdir()
    synth = base / "synth"
    synth.mkdir()
    (synth / "nand_spin.json").write_text(json.dumps(GATES))     # jeit_stt: none
    out = base / "out"
    args = ["--backend", "model", "--model", MODEL, "-n", str(IMAGES), "--out", str(out),
            "--synth-dir", str(synth), "--quiet"]
    for p in RUNS[mat]:
        args += ["--preset", p]
    if mat is not None:
        args += ["--mat", str(mat)]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        assert report.main(args) == 0
    return out, stdout.getvalue(), mat, RUNS[mat]


@pytest.fixture(scope="module")
def report_runs(tmp_path_factory):
    """The report runs, each made once per test process on first use (not a parametrized
    fixture: under xdist its tests interleave and the runs would be repeated)."""
    base = tmp_path_factory.mktemp("report")
    done = {}

    def get(mat):
        if mat not in done:
            done[mat] = _report_run(base / _mat_id(mat), mat)
        return done[mat]
    return get


def _golden_ops(model):
    """2 x output elements x fan-in of every compute layer, in order."""
    shapes = model.shapes()
    ops = []
    for i, ly in enumerate(model.layers):
        if ly.kind in COMPUTE_KINDS:
            out = int(np.prod(shapes[i + 1]))
            fan_in = int(np.prod(ly.params["weight"].shape[1:]))
            ops.append((i, 2 * out * fan_in))
    return ops


def _program_loads(compiled, images):
    """Per image and stage, the program words the host loads: every chunk program in run
    order, loaded unless it equals the one loaded before it (none before image 0)."""
    previous, out = None, []
    for _ in range(images):
        row = []
        for st in compiled.stages:
            words = 0
            for ch in st.chunks:
                if previous is None or list(ch.program) != list(previous):
                    words += len(ch.program)
                previous = ch.program
            row.append(words)
        out.append(row)
    return out


def _lane_utilisation(st, k, columns):
    """fan-in x patches over the lanes the stage's row sets offer."""
    if st.mode == "segmented":
        row_sets = sum(-(-ch.patches // k) for ch in st.chunks)     # groups of K patches
        return st.fan_in * st.n_patches / (k * columns * row_sets)
    tiles = -(-st.fan_in // (k * columns))
    return st.fan_in / (tiles * k * columns)


@pytest.mark.parametrize("mat", list(RUNS), ids=_mat_id)
def test_files(report_runs, mat):
    out, stdout, mat, presets = report_runs(mat)
    names = sorted(f.name for f in out.iterdir())
    want = ["report.md"] + sorted(
        f"report-{p}{s}" for p in presets
        for s in (".json", "-energy.png", "-latency.png", "-tornado.png", "-chip.png")) + (
        ["report-jeit_stt-stt-write.png"] if "jeit_stt" in presets else [])
    assert names == sorted(want)                    # and no temp file left behind
    for p in presets:
        for s in ("energy", "latency", "tornado", "chip"):
            png = (out / f"report-{p}-{s}.png").read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    md = (out / "report.md").read_text()
    assert md.count("\n| `") == len(presets)       # one table row per preset
    assert "PROJECTION" in md and all(p in stdout for p in presets)
    k = mat or 16
    assert f"One mat of {k} subarray{'s' if k > 1 else ''} ({k * 128} columns)" in md
    if "nand_spin" in presets:
        assert "seed 001 sec. 5.3, Table 3" in md and "80.6 FPS" in md
        assert f"`nand_spin` (001), K = {k} |" in md
    if "jeit_stt" in presets:
        assert "32.31 GOPS" in md and f"`jeit_stt` (000), K = {k} |" in md
    assert "host array commands" not in md and "one subarray" not in md


@pytest.mark.parametrize("mat, name", CASES, ids=[f"{_mat_id(m)}-{n}" for m, n in CASES])
def test_figures_recomputed(report_runs, mat, name):
    out = report_runs(mat)[0]
    rep = json.loads((out / f"report-{name}.json").read_text())
    config = preset(name)
    k = config.subarrays_per_mat if mat is None else mat
    width = k * config.columns
    model = load_model(bundled_model_path(MODEL))
    compiled = compile_model(model, config, subarrays=k)
    clock_hz = config.clock_mhz * 1e6
    x, _ = load_dataset("digits", "test")
    golden = infer_int(model, x[:IMAGES])
    assert rep["images"] == IMAGES and rep["logits_equal_to_golden"] == [True] * IMAGES
    assert [im["logits"] for im in rep["measured_images"]] == golden.tolist()

    # The basis: one mat of K subarrays, every micro-op over its K x columns lanes.
    assert rep["subarrays"] == k and rep["mat_columns"] == width
    assert rep["energy_table"]["columns_active"] == width
    assert rep["energy_table"]["op_energy_fj"]["min_step"] == pytest.approx(
        energy.op_energy_fj(config, Opcode.MIN_STEP, width), rel=REL)

    golden_ops = _golden_ops(model)
    stages = rep["stages"]
    assert [s["layer_index"] for s in stages] == [i for i, _ in golden_ops]
    assert [s["mode"] for s in stages] == [st.mode for st in compiled.stages]
    if k > 1:
        assert {s["mode"] for s in stages} == {"segmented", "wide"}
    loads = _program_loads(compiled, IMAGES)
    in_size = math.prod(model.input_shape)
    sum_e = sum_cycles = sum_host = sum_build = 0
    for si, (s, st, (_, ops)) in enumerate(zip(stages, compiled.stages, golden_ops,
                                               strict=True)):
        assert s["ops"]["ops"] == ops
        assert s["lane_utilisation"] == pytest.approx(
            _lane_utilisation(st, k, config.columns), rel=REL)
        assert s["row_build"]["cycles"] == st.gather_cycles
        for ii, m in enumerate(s["measured"]):
            # Counters: the static structure of the compiled program (no zero skipping).
            assert m["counters"] == st.micro_ops
            assert m["counters"]["cycles"] == st.cycles
            # Host: the image's words in stage 0, the loaded programs' words.
            assert m["host"] == {"data_words": in_size if si == 0 else 0}
            assert m["host_program_words"] == loads[ii][si]
            assert m["host_cycles"] == m["host"]["data_words"] + loads[ii][si]
        m = s["measured"][0]
        host_cycles = m["host_cycles"]
        want = energy.estimate(config, m["counters"], ops=ops, columns_active=width,
                               host=m["host"], host_cycles=host_cycles)
        e = s["estimate"]
        if loads[0][si] == loads[-1][si]:
            assert e["energy_j"] == pytest.approx(want.energy_j, rel=REL)
            for cls in energy.CLASSES:
                assert e["energy_per_class_j"][cls] == pytest.approx(
                    want.energy_per_class_j[cls], rel=REL, abs=0)
            latency = (m["counters"]["cycles"] + host_cycles) / clock_hz
            assert e["latency_s"] == pytest.approx(latency, rel=REL)
            assert e["gops"] == pytest.approx(ops / latency / 1e9, rel=REL)
            assert e["gops_per_w"] == pytest.approx(ops / want.energy_j / 1e9, rel=REL)
            assert e["row_build_latency_s"] + e["compute_latency_s"] + e["host_latency_s"] \
                == pytest.approx(latency, rel=1e-9)
        assert sum(e["energy_per_class_j"].values()) == pytest.approx(e["energy_j"], rel=1e-9)
        sum_e += want.energy_j
        sum_cycles += m["counters"]["cycles"]
        sum_host += host_cycles
        sum_build += st.gather_cycles

    # Per image: the stages' counters sum to the run's, and the figures to the stages'.
    for ii, im in enumerate(rep["measured_images"]):
        summed = dict.fromkeys(im["counters"], 0)
        for s in stages:
            for key, v in s["measured"][ii]["counters"].items():
                summed[key] += v
        assert summed == im["counters"]
        assert im["counters"]["cycles"] == compiled.cycles
        assert im["host_words"] == in_size
        assert im["host_cycles"] == in_size + sum(loads[ii])
    pi = rep["per_image"]
    total_ops = sum(o for _, o in golden_ops)
    latency = (sum_cycles + sum_host) / clock_hz
    assert pi["ops"] == total_ops
    assert pi["host"] == {"data_words": in_size}
    assert pi["row_build_cycles"] == sum_build == compiled.gather_cycles
    assert sum(pi["energy_per_class_j"].values()) == pytest.approx(pi["energy_j"], rel=1e-9)
    assert sum(rep["shares"]["latency_pct"].values()) == pytest.approx(100, rel=1e-9)
    if loads[0] == loads[-1]:
        assert pi["energy_j"] == pytest.approx(sum_e, rel=1e-9)
        assert pi["latency_s"] == pytest.approx(latency, rel=REL)
        assert pi["gops"] == pytest.approx(total_ops / latency / 1e9, rel=REL)
        assert pi["gops_per_w"] == pytest.approx(total_ops / sum_e / 1e9, rel=1e-9)

    # Chip projection: x (config.subarrays // K) mats, GOPS/W unchanged.
    mats = config.subarrays_per_mat * config.mats // k
    proj = rep["chip_projection"]
    assert proj["mats"] == mats and proj["subarrays_per_mat"] == k
    assert proj["gops"] == pytest.approx(mats * pi["gops"], rel=REL)
    assert proj["images_per_second"] == pytest.approx(mats / pi["latency_s"], rel=REL)
    assert proj["gops_per_w"] == pytest.approx(pi["gops_per_w"], rel=REL)

    # Area: one mat's MTJ array from the sourced cell size, and the made-up gate counts.
    a = energy.ARRAY[config.technology]
    sub_array_mm2 = (config.rows * config.columns * a["cell_f2"].value
                     * (a["feature_nm"].value * 1e-3) ** 2 * 1e-6)
    area = rep["area"]
    assert area["mat"]["array_mm2"] == pytest.approx(sub_array_mm2 * k, rel=1e-9)
    assert area["chip"]["array_mm2"] == pytest.approx(sub_array_mm2 * k * mats, rel=1e-9)
    if name == "nand_spin":
        p = energy.PERIPHERY
        block_um2 = 10 * p["gate_area_um2"].value + 2 * p["flop_area_um2"].value
        ctrl_um2 = 100 * p["gate_area_um2"].value
        util = p["utilisation"].value
        assert not area["array_only"]
        assert area["mat"]["periphery_mm2"] == pytest.approx(
            (block_um2 * k + ctrl_um2) / util * 1e-6, rel=1e-9)
        assert area["chip"]["periphery_mm2"] == pytest.approx(
            (block_um2 * k + ctrl_um2) * mats / util * 1e-6, rel=1e-9)
    else:
        assert area["array_only"] and area["mat"]["periphery_mm2"] is None
        assert "not found" in area["note"]
    # With the logic synthesised (cached, or committed: sim.analysis.synth.load_fit) the mat's
    # area is the split's (MTJ array + SRAM + logic).
    synthesised = area["mat_split"]["logic_mm2"] is not None
    mat_mm2 = area["mat_split"]["total_mm2"] if synthesised else area["mat"]["total_mm2"]
    assert rep["measured"]["gops_per_mm2"] == pytest.approx(pi["gops"] / mat_mm2, rel=REL)
    # The energy table the figures used, with sources.
    assert rep["energy_table"]["array"]["read_fj"]["value"] == a["read_fj"].value
    assert all(v["source"] for v in rep["energy_table"]["array"].values())


def _fake(*stages):
    """A compiled model whose stages run the given chunk programs (tuples of words)."""
    return SimpleNamespace(stages=[
        SimpleNamespace(in_size=10 + i, chunks=[SimpleNamespace(program=p) for p in progs])
        for i, progs in enumerate(stages)])


@pytest.mark.parametrize("mat, name", CASES, ids=[f"{_mat_id(m)}-{n}" for m, n in CASES])
def test_report_lists_every_memory(report_runs, mat, name):
    """Every memory of sim.hw.sram.core_memories in the JSON and as a row of report.md, with
    accesses recomputed from the counters and the golden shapes, and the area split."""
    from sim.hw import sram
    out = report_runs(mat)[0]
    rep = json.loads((out / f"report-{name}.json").read_text())
    config = preset(name)
    k = config.subarrays_per_mat if mat is None else mat
    # The weight buffer costed at the slots the compiled model fills, rounded up to a
    # power-of-two depth of at least 16 words (sim.hw.sram.BUFFER_PARAMS), not buffer_slots.
    used = len(compile_model(load_model(bundled_model_path(MODEL)), config,
                             subarrays=k).buffer)
    slots = 16
    while slots < used:
        slots *= 2
    sizing = rep["memories"]["weight_buffer_sizing"]
    assert (sizing["needed_slots"], sizing["costed_slots"], sizing["configured_slots"]) == (
        used, slots, config.buffer_slots)
    want = sram.core_memories(dataclasses.replace(config, buffer_slots=slots), k)
    mem = rep["memories"]
    rows = {m["name"]: m for m in mem["memories"]}
    assert [(m["name"], m["words"], m["bits"]) for m in mem["memories"]] == [
        (m.name, m.words, m.bits) for m in want]
    assert rows["weight buffer"]["bits"] == k * config.columns
    md = (out / "report.md").read_text()
    for m in want:
        assert f"| {m.name} | {m.words} x {m.bits} |" in md, m.name
    c = rep["per_image"]["counters"]
    assert rows["requant table"]["reads"] == c["requant"]
    assert rows["instruction memory"]["reads"] == c["cycles"] - c["stalls"]
    assert rows["weight buffer"]["reads"] >= c["and_fu"] + c["min_step"] + c["fs_step"]
    # The PPU writes every stage's output (pooled where a pool is fused) once; the host the
    # image.
    model = load_model(bundled_model_path(MODEL))
    shapes = model.shapes()
    outputs = sum(math.prod(shapes[s["golden_index"] + 1]) for s in rep["stages"])
    image = math.prod(model.input_shape)
    # a stage post-processed in memory (nand_spin's default, issue 14) writes its raw sums
    # too, one per convolution output (LOGIT), before the SCATTERs write its output
    inmem = set(rep["postproc"]["in_memory"])
    sums = sum(math.prod(shapes[s["layer_index"] + 1]) for s in rep["stages"]
               if s["name"] in inmem)
    assert rows["data memory"]["writes"] == outputs + image + sums
    for r in mem["memories"]:
        assert r["dynamic_j"] == pytest.approx((r["reads"] * r["read_pj"] + r["writes"]
                                                * r["write_pj"]) * 1e-12, rel=REL)
    total = rep["per_image"]["energy_j"] + mem["dynamic_j"] + mem["leakage_j"]
    # the gate-count basis; the headline is it only without a logic synthesis or fit
    assert mem["energy_with_memories_gate_count_j"] == pytest.approx(total, rel=REL)
    split = rep["area"]["mat_split"]
    assert split["sram_mm2"] == pytest.approx(sum(r["area_mm2"] or 0 for r in mem["memories"]),
                                              rel=REL)
    # No synthesis in the test's --synth-dir: the committed one or the calibrated fit
    # (sim/analysis/synth_fit.json) when it has this preset, labelled; else no logic.
    from sim.analysis import synth
    fitted = synth.load_fit(name, config, k)[0]
    if fitted is None:
        assert split["logic_mm2"] is None and "make synth" in split["logic_note"]
    else:
        util = energy.PERIPHERY["utilisation"].value
        assert split["logic_mm2"] == pytest.approx(fitted["area_um2"] / util * 1e-6, rel=REL)
        assert fitted["fitted"]["label"] in split["logic_note"]


def test_host_port_words_program_persists_across_images():
    a, b = (1, 2, 3), (4, 5)
    # One program for the whole model: loaded once, at image 0.
    assert report.host_port_words(_fake([a]), 3) == [
        [{"data_words": 10, "program_words": 3}], [{"data_words": 10, "program_words": 0}],
        [{"data_words": 10, "program_words": 0}]]
    # a, a, b: the second a is skipped; the next image starts with b loaded, so a reloads.
    assert report.host_port_words(_fake([a, a], [b]), 2) == [
        [{"data_words": 10, "program_words": 3}, {"data_words": 0, "program_words": 2}]] * 2
    # b ends image 0 and starts image 1: not reloaded there.
    assert report.host_port_words(_fake([b], [a, b]), 2) == [
        [{"data_words": 10, "program_words": 2}, {"data_words": 0, "program_words": 5}],
        [{"data_words": 10, "program_words": 0}, {"data_words": 0, "program_words": 5}]]
    assert report.host_port_words(_fake([a]), 0) == []
    with pytest.raises(ValueError, match=r"^images must be an int >= 0, not -1$"):
        report.host_port_words(_fake([a]), -1)


# ---- errors ---------------------------------------------------------------------------------

def _wide_kernel_model(path):
    """A model no core of nand_spin runs, streamed weights or not: a 7x7 kernel (49 positions)
    exceeds the patch mask's 32 bits. (Weights or channels beyond the buffer and the requant
    table no longer refuse: the report streams them, tests/test_report_stream.py.)"""
    from tests.layer_models import random_model
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 1, 8, 8)).astype(np.uint8)
    model = random_model([("conv", "mul_conv2d", 2, 7, 1, 0), ("flatten",),
                          ("linear", "mul_linear", 10)], (1, 8, 8), rng, x)
    save_model(model, path)
    return path, model.name


@pytest.mark.parametrize("args, message", [
    (("--preset", "nope"), "--preset must be one of jeit_stt, nand_spin, dima_sot, imac_sot, "
                           "not 'nope'"),
    (("--preset", "nand_spin", "pcm"), "--preset must be one of jeit_stt, nand_spin, "
                                       "dima_sot, imac_sot, not 'pcm'"),
    (("-n", "0"), "-n must be an integer >= 1, not '0'"),
    (("-n", "two"), "-n must be an integer >= 1, not 'two'"),
    (("--mat", "0"), "--mat must be an integer in [1, 64] (subarrays in lock-step), not '0'"),
    (("--mat", "65"), "--mat must be an integer in [1, 64] (subarrays in lock-step), not '65'"),
    (("--mat", "four"), "--mat must be an integer in [1, 64] (subarrays in lock-step), not "
                        "'four'"),
    (("--backend", "spice"), "--backend must be one of rtl, model, not 'spice'"),
    (("--backend", "rtl", "--sim", "modelsim"), "--sim must be one of verilator, icarus, "
                                                "not 'modelsim'"),
    (("--model", "nope"), "--model: model must be one of digits_addernet, digits_addnet, "
                          "fashion_addernet, fashion_addnet, fashion_mulcnn_w4i4, "
                          "fashion_mulcnn_w8i8, not 'nope' (or give the path of a "
                          ".npz model file)"),
    (("--model", MODEL, "-n", "361"), "-n 361: the digits test split has only 360 images; "
                                      "give -n between 1 and 360"),
    (("--model", MODEL, "--dataset", "cifar"), "--dataset must be one of fashion_mnist, "
                                               "digits, not 'cifar'"),
])
def test_cli_errors(tmp_path, capsys, args, message):
    out = tmp_path / "out"
    rc = report.main(["--backend", "model", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert rc == 2
    assert err == f"error: {message}\n"
    assert not out.exists()


def test_model_that_does_not_compile(tmp_path, capsys):
    model, mname = _wide_kernel_model(tmp_path / "wide.npz")
    out = tmp_path / "out"
    rc = report.main(["--backend", "model", "--model", str(model), "--dataset", "digits",
                      "--preset", "nand_spin", "--out", str(out), "-n", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith(f"error: --preset nand_spin --mat 16: model {mname!r} does not "
                          "compile for it: layer 0 (mul_conv2d): the kernel area 7x7 = 49 "
                          "exceeds the patch mask's 32 bits"), err
    assert err.count("\n") == 1 and not out.exists()


def test_cli_error_subprocess_no_traceback(tmp_path):
    out = tmp_path / "out"
    r = _run("--backend", "model", "-n", "0", "--out", str(out))
    assert r.returncode == 2
    assert r.stderr == "error: -n must be an integer >= 1, not '0'\n"
    assert "Traceback" not in r.stderr and not out.exists()


def test_stage_ops_rejects_a_flatten():
    model = load_model(bundled_model_path(MODEL))
    flat = next(i for i, ly in enumerate(model.layers) if ly.kind == "flatten")
    with pytest.raises(ValueError, match=rf"^layer_index must name a compute layer or a "
                                         rf"standalone pool / add, not {flat} \(flatten\)$"):
        report.stage_ops(model, flat)
    assert math.isfinite(report.stage_ops(model, 0)["ops"])


def test_stage_ops_and_report_of_standalone_layers(tmp_path):
    """A format-3 model (standalone 3x3 stride-2 max pool, residual add, global average pool)
    is reported end to end; its stand-alone stages count the ops their formulas state."""
    from tests.layer_models import random_model
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (1, 1, 8, 8)).astype(np.uint8)
    model = random_model([("conv", "mul_conv2d", 4, 3, 1, 1), ("pool", "max", 3, 2),
                          ("conv", "adder_conv2d", 4, 3, 1, 1), ("add", 0), ("gap",),
                          ("flatten",), ("linear", "mul_linear", 10)], (1, 8, 8), rng, x)
    # 8x8 -> 3x3 by a 3x3 stride-2 pool: 4 x 3 x 3 outputs of 9 terms each
    assert report.stage_ops(model, 1)["ops"] == 4 * 3 * 3 * 9
    assert report.stage_ops(model, 3)["ops"] == 2 * (4 * 3 * 3) * 2
    assert report.stage_ops(model, 4)["ops"] == 4 * (3 * 3)
    path = tmp_path / "m3.npz"
    save_model(model, path)
    out = tmp_path / "out"
    r = _run("--backend", "model", "--model", str(path), "--dataset", "digits", "-n", "1",
             "--preset", "nand_spin", "--mat", "1", "--out", str(out))
    assert r.returncode == 0, r.stderr
    data = json.loads((out / "report-nand_spin.json").read_text())
    kinds = [st["kind"] for st in data["stages"]]
    assert {"max_pool2d", "add", "global_avg_pool2d"} <= set(kinds), kinds


def test_out_must_be_a_directory(tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("x")
    rc = report.main(["--backend", "model", "--model", MODEL, "-n", "1", "--preset",
                      "nand_spin", "--out", str(out)])
    assert rc == 2
    assert capsys.readouterr().err == f"error: --out {str(out)!r} is a file, where a " \
                                      f"directory is needed; give a directory path\n"
    assert out.read_text() == "x" and sorted(tmp_path.iterdir()) == [out]


def test_gate_file_of_the_same_config_is_used(tmp_path):
    """A gate-count file made for the preset (its config as JSON: routes a list) is read, one
    of another configuration is not."""
    config = preset("nand_spin")
    (tmp_path / "nand_spin.json").write_text(json.dumps({**GATES, "config": config.as_dict()}))
    gates, note = report._load_gates(tmp_path, "nand_spin", config)
    assert gates is not None and "periphery from" in note
    other = {**config.as_dict(), "columns": 256}
    (tmp_path / "nand_spin.json").write_text(json.dumps({**GATES, "config": other}))
    gates, note = report._load_gates(tmp_path, "nand_spin", config)
    assert gates is None and "columns" in note


def test_memories_under_zero_skipping(tmp_path):
    """jeit_stt skips all-zero tile dots (config.zero_skip): its counters fall below the
    programs' static counts, which sim.hw.sram's counter check refused (a ValueError from
    `make report PRESET=jeit_stt`); the zero-flag memory is listed with its accesses."""
    out = tmp_path / "out"
    assert report.main(["--backend", "model", "--preset", "jeit_stt", "--mat", "2",
                        "--model", MODEL, "--dataset", "digits", "-n", "2",
                        "--out", str(out)]) == 0
    d = json.loads((out / "report-jeit_stt.json").read_text())
    mems = {m["name"]: m for m in d["memories"]["memories"]}
    c = d["per_image"]["counters"]
    assert mems["zero flags"]["writes"] == round(c["write_row"] + c.get("program", 0))
    assert mems["zero flags"]["reads"] > 0
    assert mems["weight buffer"]["reads"] >= round(c["fs_step"])


# ---- issue 16: spread over images, energy split, sources, sensitivity, chip -----------------

def _spread(values):
    v = np.array(values, float)
    return (v.min(), v.mean(), v.max(), v.std(ddof=1) if len(v) > 1 else 0.0)


@pytest.mark.parametrize("mat, name", CASES, ids=[f"{_mat_id(m)}-{n}" for m, n in CASES])
def test_spread_over_images(report_runs, mat, name):
    """min / mean / max / std of every stage's and the image's energy, latency and GOPS/W,
    recomputed per image from the stored counters by sim.hw.energy.estimate."""
    out = report_runs(mat)[0]
    rep = json.loads((out / f"report-{name}.json").read_text())
    config = preset(name)
    k = rep["subarrays"]
    width = k * config.columns
    clock_hz = config.clock_mhz * 1e6
    totals = []
    for s in rep["stages"]:
        es, lat = [], []
        for m in s["measured"]:
            r = energy.estimate(config, m["counters"], ops=s["ops"]["ops"], columns_active=width,
                                host=m["host"], host_cycles=m["host_cycles"])
            es.append(r.energy_j)
            lat.append((m["counters"]["cycles"] + m["host_cycles"]) / clock_hz)
        totals.append((es, lat))
        sp = s["spread"]
        for key, vals in (("energy_j", es), ("latency_s", lat),
                          ("gops_per_w", [s["ops"]["ops"] / e / 1e9 for e in es])):
            want = _spread(vals)
            got = (sp[key]["min"], sp[key]["mean"], sp[key]["max"], sp[key]["std"])
            assert got == pytest.approx(want, rel=1e-9, abs=1e-30), (s["name"], key)
        assert sp["energy_j"]["n"] == IMAGES
        assert sp["stall_cycles"]["mean"] == pytest.approx(
            np.mean([m["counters"]["stalls"] for m in s["measured"]]))
    e_img = [sum(t[0][i] for t in totals) for i in range(IMAGES)]
    sp = rep["per_image_spread"]["energy_j"]
    assert (sp["min"], sp["max"]) == pytest.approx((min(e_img), max(e_img)), rel=1e-9)
    md = (out / "report.md").read_text()
    assert f"Spread over the {IMAGES} image(s), min / mean / max (sample std)" in md
    if config.zero_skip:
        zs = rep["per_image_spread"]
        ops = [sum(s["measured"][i]["zero_skip"]["zs_operands"] for s in rep["stages"])
               for i in range(IMAGES)]
        zero = [sum(s["measured"][i]["zero_skip"]["zs_zero"] for s in rep["stages"])
                for i in range(IMAGES)]
        assert zs["zero_fraction"]["mean"] == pytest.approx(
            np.mean([z / o for z, o in zip(zero, ops, strict=True)]), rel=1e-12)
        assert "zero operands (%)" in md
    else:
        assert "zero_fraction" not in rep["per_image_spread"]


@pytest.mark.parametrize("mat, name", CASES, ids=[f"{_mat_id(m)}-{n}" for m, n in CASES])
def test_energy_split_sources_sensitivity_chip(report_runs, mat, name):
    out = report_runs(mat)[0]
    rep = json.loads((out / f"report-{name}.json").read_text())
    md = (out / "report.md").read_text()
    config = preset(name)
    # The split sums to the energy with the memories; every row has a class.
    sp = rep["energy_split"]
    mem = rep["memories"]
    assert sp["total_j"] == pytest.approx(mem["energy_with_memories_j"], rel=1e-9)
    assert {r["name"] for r in sp["rows"]} >= {"MRAM read", "MRAM write", "SRAM dynamic",
                                                "CMOS logic", "bus", "leakage (SRAM)"}
    assert all(r["class"] for r in sp["rows"])
    assert "| MRAM write |" in md and "| bus |" in md
    # Every constant behind the figures, with its class, in the JSON and the markdown.
    from sim.hw import sources
    rows = rep["sources"]["rows"]
    assert len(rows) == len(sources.source_rows(config.technology))
    for r in rows:
        assert r["class"] == sources.source_class(r["source"])
        assert f"| {r['table']} | {r['name']} |" in md
    # Sensitivity: the baseline is the split's GOPS/W when the counters are the same per image.
    sens = rep["sensitivity"]
    if all(s["data_independent"] for s in rep["stages"]):
        assert sens["baseline"]["gops_per_w"] == pytest.approx(sp["gops_per_w"], rel=1e-9)
    from sim.analysis.sensitivity import HEADLINE_CONSTANTS
    moved = {n for _, n, _ in HEADLINE_CONSTANTS}
    assert sens["rows"] and all(r["source"].startswith("ASSUMPTION") or r["name"] in moved
                                for r in sens["rows"])
    assert "leakage_pw_per_bit" in {r["name"] for r in sens["rows"]}
    # The headline names its basis; the gate-count total stays beside it.
    h = rep["headline"]
    assert h["energy_j"] == pytest.approx(mem["energy_with_memories_j"], rel=1e-12)
    assert "gate-count logic + memories" in {r["name"] for r in h["rows"]}
    assert f"GOPS/W ({h['kind']})" in md
    assert f"report-{name}-tornado.png" in md
    # Chip: the preset's array as mats of K, the bus bound from the bits per image.
    c = rep["chip"]
    k = rep["subarrays"]
    assert c["organisation"]["mats"] == config.subarrays // k
    assert c["organisation"]["own_organisation"] == (k == config.subarrays_per_mat)
    words = np.mean([im["host_cycles"] for im in rep["measured_images"]])
    data = rep["per_image"]["host"]["data_words"]
    # program words of 64 bits, 70 on nand_spin (data_words 16384: 14-bit operand bases,
    # 10 + 3 x (14 + 6))
    bits = data * 32 + (words - data) * (70 if name == "nand_spin" else 64)
    assert c["bits_per_image"] == pytest.approx(bits, rel=1e-12)
    assert c["bus_bound_images_per_s"] == pytest.approx(
        128 * config.clock_mhz * 1e6 / bits, rel=1e-12)
    assert c["compute_bound_images_per_s"] == pytest.approx(
        config.subarrays // k / rep["per_image"]["latency_s"], rel=1e-12)
    assert f"Chip model (`sim.hw.chip`, `report-{name}-chip.png`): " in md
    assert f"mats of {k} x {config.rows} x {config.columns}" in md


def test_sensitivity_reruns_a_moved_stall_table(report_runs):
    """jeit_stt, write time x 2 (20 ns: 3 cycles at 133 MHz instead of 2): the latency moves by
    the cycles of image 0 on the cycle model with that stall table, run here."""
    import dataclasses

    from sim.compile.compiler import run_compiled
    from sim.hw.core_model import CoreModel
    out = report_runs(1)[0]
    rep = json.loads((out / "report-jeit_stt.json").read_text())
    row = next(r for r in rep["sensitivity"]["rows"] if r["name"] == "stt.write_ns")
    config = preset("jeit_stt")
    model = load_model(bundled_model_path(MODEL))
    x, _ = load_dataset("digits", "test")
    cycles = {}
    for w in (2, 3):
        cfg = dataclasses.replace(config, stall_table={**config.stalls, "write": w})
        comp = compile_model(model, cfg, subarrays=1)
        cycles[w] = run_compiled(comp, x[0], CoreModel(cfg, subarrays=1)).counters["cycles"]
    assert cycles[3] > cycles[2]
    pi = rep["per_image"]
    want = (round(pi["counters"]["cycles"]) + cycles[3] - cycles[2]
            + round(pi["host_cycles"])) / (config.clock_mhz * 1e6)
    assert row["high"]["latency_s"] == pytest.approx(want, rel=1e-12)
    assert row["high"]["latency_pct"] > 0


@pytest.mark.parametrize("mat", [None, 1], ids=_mat_id)
def test_jeit_reproduction_table(report_runs, mat):
    from sim.hw import sram
    out = report_runs(mat)[0]
    rep = json.loads((out / "report-jeit_stt.json").read_text())
    t = rep["jeit_table"]
    config = preset("jeit_stt")
    k = rep["subarrays"]
    assert t["subarrays"] == k
    seeds = {r["unit"]: r["seed"] for r in t["rows"]}
    assert seeds == {"GOPS": 32.31, "GOPS/W": 494.56}
    measured = [r for r in t["rows"] if r["figure"].startswith("measured average GOPS,")]
    assert measured[0]["ours"] == pytest.approx(rep["per_image"]["gops"], rel=1e-12)
    model = load_model(bundled_model_path(MODEL))
    compiled = compile_model(model, config, subarrays=k)
    dots = sum(sram.program_events(ch.program)["move:skipz"] for st in compiled.stages
               for ch in st.chunks)
    assert t["tile_dots_per_image"] == dots > 0
    skipped = np.mean([sum(s["measured"][i]["zero_skip"]["zs_tiles"] for s in rep["stages"])
                       for i in range(IMAGES)])
    assert t["peak_at_measured_sparsity"]["skip_fraction"] == pytest.approx(skipped / dots)
    assert t["chip"]["mats_for_seed_gops_at_peak"] == pytest.approx(
        32.31 / t["peak"]["dense"]["gops"], rel=1e-12)
    # the preset's FA array beside the abs-diff write-back route of the same core
    assert t["dataflow"] == config.dataflow == "jeit_fa"
    assert t["peak"]["dense"]["counters"]["write_row"] == 0
    assert t["peak_abs_diff"]["dense"]["counters"]["write_row"] > 0
    md = (out / "report.md").read_text()
    assert "Seed 000 reproduction table (`sim.analysis.jeit`" in md
    assert "| peak GOPS, every lane busy, every operand non-zero |" in md
    assert (out / "report-jeit_stt-stt-write.png").read_bytes()[:4] == b"\x89PNG"
