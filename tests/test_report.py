"""sim.report on the numpy core model: every figure recomputed here from the stored counters,
the golden layer shapes and the energy table; the CLI's errors.

Expected values come from the model's shapes, the compiled programs' static structure
(``Stage.cycles`` / ``micro_ops`` / chunk rows), ``sim.energy.estimate`` called here on the
counters the report stored, and the sourced constants of ``sim.energy`` -- never from the
report's own numbers.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden.model import (
    COMPUTE_KINDS, Layer, bundled_model_path, load_model, make_model, save_model,
)
from rtl.config import preset
from sim import energy, report
from sim.compiler import compile_model

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("nand_spin", "jeit_stt")
MODEL = "digits_addernet"
REL = 1e-12
# A made-up gate-count report for nand_spin: 10 gates + 2 flip-flops per subarray block and
# 100 gates in the controller.
GATES = {"blocks": {"sense_amp": {"cells": {"$_AND_": 10, "$_DFF_P_": 2}},
                    "controller": {"cells": {"$_OR_": 100}}}}


def _run(*args):
    return subprocess.run([sys.executable, "-m", "sim.report", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("report")
    synth = base / "synth"
    synth.mkdir()
    (synth / "nand_spin.json").write_text(json.dumps(GATES))     # jeit_stt: none
    out = base / "out"
    args = ["--backend", "model", "--model", MODEL, "-n", "1", "--out", str(out),
            "--synth-dir", str(synth), "--quiet"]
    for p in PRESETS:
        args += ["--preset", p]
    r = _run(*args)
    assert r.returncode == 0, r.stderr
    return out, r


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


def test_files(run_dir):
    out, r = run_dir
    names = sorted(f.name for f in out.iterdir())
    want = ["report.md"] + sorted(
        f"report-{p}{s}" for p in PRESETS for s in (".json", "-energy.png", "-latency.png"))
    assert names == sorted(want)                    # and no temp file left behind
    for p in PRESETS:
        for s in ("energy", "latency"):
            png = (out / f"report-{p}-{s}.png").read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000
    md = (out / "report.md").read_text()
    assert md.count("\n| `") == len(PRESETS)       # one table row per preset
    assert "seed 001 sec. 5.3, Table 3" in md and "80.6 FPS" in md and "32.31 GOPS" in md
    assert "PROJECTION" in md and "nand_spin" in r.stdout


@pytest.mark.parametrize("name", PRESETS)
def test_figures_recomputed(run_dir, name):
    out, _ = run_dir
    rep = json.loads((out / f"report-{name}.json").read_text())
    config = preset(name)
    model = load_model(bundled_model_path(MODEL))
    compiled = compile_model(model, config)
    clock_hz = config.clock_mhz * 1e6
    assert rep["images"] == 1 and rep["logits_equal_to_golden"] == [True]

    golden_ops = _golden_ops(model)
    stages = rep["stages"]
    assert [s["layer_index"] for s in stages] == [i for i, _ in golden_ops]
    sum_e = sum_cycles = sum_host = 0
    for s, st, (_, ops) in zip(stages, compiled.stages, golden_ops, strict=True):
        assert s["ops"]["ops"] == ops
        m = s["measured"][0]
        # Counters: the static structure of the compiled program (no zero skipping).
        assert m["counters"] == st.micro_ops
        assert m["counters"]["cycles"] == st.cycles
        # Host array commands: one per loaded row, plus one erase per strip on nand_spin.
        rows = sum(len(c.rows) for c in st.chunks)
        if name == "nand_spin":
            strips = sum(len({r - r % config.mtjs_per_strip for r in c.rows})
                         for c in st.chunks)
            assert m["host"] == {"write_row": 0, "erase": strips, "program": rows}
        else:
            assert m["host"] == {"write_row": rows, "erase": 0, "program": 0}
        host_cycles = sum(m["host"].values())
        assert m["host_cycles"] == host_cycles
        want = energy.estimate(config, m["counters"], ops=ops, columns_active=config.columns,
                               host=m["host"], host_cycles=host_cycles)
        e = s["estimate"]
        assert e["energy_j"] == pytest.approx(want.energy_j, rel=REL)
        for cls in energy.CLASSES:
            assert e["energy_per_class_j"][cls] == pytest.approx(want.energy_per_class_j[cls],
                                                                 rel=REL, abs=0)
        assert sum(e["energy_per_class_j"].values()) == pytest.approx(e["energy_j"], rel=1e-9)
        latency = (m["counters"]["cycles"] + host_cycles) / clock_hz
        assert e["latency_s"] == pytest.approx(latency, rel=REL)
        assert e["gops"] == pytest.approx(ops / latency / 1e9, rel=REL)
        assert e["gops_per_w"] == pytest.approx(ops / want.energy_j / 1e9, rel=REL)
        sum_e += want.energy_j
        sum_cycles += m["counters"]["cycles"]
        sum_host += host_cycles

    # Per image: the sum of the stages.
    pi = rep["per_image"]
    total_ops = sum(o for _, o in golden_ops)
    latency = (sum_cycles + sum_host) / clock_hz
    assert pi["ops"] == total_ops
    assert pi["energy_j"] == pytest.approx(sum_e, rel=1e-9)
    assert sum(pi["energy_per_class_j"].values()) == pytest.approx(pi["energy_j"], rel=1e-9)
    assert pi["latency_s"] == pytest.approx(latency, rel=REL)
    assert sum_cycles == compiled.cycles
    assert pi["gops"] == pytest.approx(total_ops / latency / 1e9, rel=REL)
    assert pi["gops_per_w"] == pytest.approx(total_ops / sum_e / 1e9, rel=1e-9)

    # Chip projection: x (subarrays per mat x mats), GOPS/W unchanged.
    subarrays = config.subarrays_per_mat * config.mats
    proj = rep["chip_projection"]
    assert proj["subarrays"] == subarrays
    assert proj["gops"] == pytest.approx(subarrays * total_ops / latency / 1e9, rel=REL)
    assert proj["images_per_second"] == pytest.approx(subarrays / latency, rel=REL)
    assert proj["gops_per_w"] == pytest.approx(pi["gops_per_w"], rel=REL)

    # Area: one subarray's MTJ array from the sourced cell size, and the made-up gate counts.
    a = energy.ARRAY[config.technology]
    sub_array_mm2 = (config.rows * config.columns * a["cell_f2"].value
                     * (a["feature_nm"].value * 1e-3) ** 2 * 1e-6)
    area = rep["area"]
    assert area["subarray"]["array_mm2"] == pytest.approx(sub_array_mm2, rel=1e-9)
    assert area["chip"]["array_mm2"] == pytest.approx(sub_array_mm2 * subarrays, rel=1e-9)
    if name == "nand_spin":
        p = energy.PERIPHERY
        block_um2 = 10 * p["gate_area_um2"].value + 2 * p["flop_area_um2"].value
        ctrl_um2 = 100 * p["gate_area_um2"].value
        util = p["utilisation"].value
        assert not area["array_only"]
        assert area["subarray"]["periphery_mm2"] == pytest.approx(
            (block_um2 + ctrl_um2) / util * 1e-6, rel=1e-9)
        assert area["chip"]["periphery_mm2"] == pytest.approx(
            (block_um2 * subarrays + ctrl_um2 * config.mats) / util * 1e-6, rel=1e-9)
    else:
        assert area["array_only"] and area["subarray"]["periphery_mm2"] is None
        assert "not found" in area["note"]
    assert rep["measured"]["gops_per_mm2"] == pytest.approx(
        total_ops / latency / 1e9 / area["subarray"]["total_mm2"], rel=REL)
    # The energy table the figures used, with sources.
    assert rep["energy_table"]["array"]["read_fj"]["value"] == a["read_fj"].value
    assert all(v["source"] for v in rep["energy_table"]["array"].values())


# ---- errors ---------------------------------------------------------------------------------

def _big_model(path):
    """A model whose 300 logit channels do not fit the core (buffer slots and channels)."""
    o, i = 300, 64
    rng = np.random.default_rng(0)
    w = rng.integers(-128, 128, (o, i)).astype(np.int8)
    layers = [Layer(kind="flatten"),
              Layer(kind="mul_linear", output="logits",
                    params={"weight": w, "bias": np.zeros(o, np.int32)},
                    float_params={"weight": w.astype(np.float32),
                                  "bias": np.zeros(o, np.float32)})]
    save_model(make_model(name="big", input_shape=(1, 8, 8), input_scale=1 / 16,
                          class_names=[str(k) for k in range(o)], layers=layers), path)
    return path


@pytest.mark.parametrize("args, message", [
    (("--preset", "nope"), "--preset must be one of jeit_stt, nand_spin, dima_sot, imac_sot, "
                           "not 'nope'"),
    (("--preset", "nand_spin", "pcm"), "--preset must be one of jeit_stt, nand_spin, "
                                       "dima_sot, imac_sot, not 'pcm'"),
    (("-n", "0"), "-n must be an integer >= 1, not '0'"),
    (("-n", "two"), "-n must be an integer >= 1, not 'two'"),
    (("--backend", "spice"), "--backend must be one of rtl, model, not 'spice'"),
    (("--backend", "rtl", "--sim", "modelsim"), "--sim must be one of verilator, icarus, "
                                                "not 'modelsim'"),
    (("--model", "nope"), "--model: model must be one of digits_addernet, fashion_addernet, "
                          "not 'nope' (or give the path of a .npz model file)"),
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
    model = _big_model(tmp_path / "big.npz")
    out = tmp_path / "out"
    rc = report.main(["--backend", "model", "--model", str(model), "--dataset", "digits",
                      "--preset", "nand_spin", "--out", str(out), "-n", "1"])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("error: --preset nand_spin: model 'big' does not compile for it: ")
    assert err.count("\n") == 1 and not out.exists()


def test_cli_error_subprocess_no_traceback(tmp_path):
    out = tmp_path / "out"
    r = _run("--backend", "model", "-n", "0", "--out", str(out))
    assert r.returncode == 2
    assert r.stderr == "error: -n must be an integer >= 1, not '0'\n"
    assert "Traceback" not in r.stderr and not out.exists()


def test_stage_ops_rejects_a_pool():
    model = load_model(bundled_model_path(MODEL))
    pool = next(i for i, ly in enumerate(model.layers) if ly.kind.endswith("pool2d"))
    with pytest.raises(ValueError, match=rf"^layer_index must name a compute layer, not "
                                         rf"{pool} \(max_pool2d\)$"):
        report.stage_ops(model, pool)
    assert math.isfinite(report.stage_ops(model, 0)["ops"])


def test_out_must_be_a_directory(tmp_path, capsys):
    out = tmp_path / "out"
    out.write_text("x")
    rc = report.main(["--backend", "model", "--model", MODEL, "-n", "1", "--preset",
                      "nand_spin", "--out", str(out)])
    assert rc == 2
    assert capsys.readouterr().err == f"error: --out must be a directory, not the file " \
                                      f"{str(out)!r}\n"
    assert out.read_text() == "x" and sorted(tmp_path.iterdir()) == [out]
