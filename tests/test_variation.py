"""sim.analysis.variation: accuracy against device variation, run as the user runs it (a
subprocess)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden.datasets import load_dataset
from golden.model import bundled_model_path, infer_int, load_model
from rtl.config import preset
from sim.analysis import variation
from sim.compile.compiler import compile_model

ROOT = Path(__file__).resolve().parents[1]
N = 120
CVS = (0.0, 0.1, 0.2)


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sim.analysis.variation", *args], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
                          capture_output=True, text=True, timeout=60)


def test_digits_three_cv_points(tmp_path):
    out = tmp_path / "rep" / "var"
    r = _run("--model", "digits_addernet", "--cv", ",".join(map(str, CVS)), "-n", str(N),
             "--seeds", "2", "--trials", "4000", "--out", str(out), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.with_suffix(".json").read_text())
    assert [p["cv"] for p in rep["points"]] == list(CVS)
    assert rep["model"] == "digits_addernet" and rep["technology"] == "nand_spin"
    assert rep["mode"] == "read" and rep["images"] == N and rep["seeds"] == [0, 1]
    assert "--cv" in rep["command"]
    # CV 0: no variation, no errors, exactly the plain integer model's accuracy.
    x, y = load_dataset("digits", "test")
    plain = float((infer_int(load_model(bundled_model_path("digits_addernet")), x[:N])
                   .argmax(1) == y[:N]).mean())
    p0, plast = rep["points"][0], rep["points"][-1]
    assert p0["ber"] == 0.0
    assert p0["accuracy"] == [plain, plain]
    assert plast["ber"] > 0.0
    assert plast["accuracy_mean"] <= p0["accuracy_mean"]
    assert all(p["accuracy_min"] <= p["accuracy_mean"] <= p["accuracy_max"]
               for p in rep["points"])
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(f.name for f in out.parent.iterdir()) == ["var.json", "var.png"]
    assert "table" in r.stdout and np.isfinite(rep["seconds"])


@pytest.mark.parametrize("args, message", [
    (("--model", "nope"), "--model: unknown model 'nope'; one of fashion_addernet"),
    (("--technology", "pcm"), "--technology: unknown technology 'pcm'; one of stt"),
    (("--cv", "0,-0.1"), "--cv: '-0.1' is out of range; give a comma-separated list"),
    (("--cv", "0,abc"), "--cv: cannot parse 'abc' in '0,abc'"),
    (("--cv", "0.3"), "--cv: '0.3' is out of range; give a comma-separated list of "
                      "numbers in [0, 0.25]"),
    (("-n", "0"), "-n must be an integer >= 1, not '0'"),
    (("--rtl-cv", "0.3"), "--rtl-cv: '0.3' is out of range; give a comma-separated list"),
    (("--rtl-cv", "0.1,0.2"), "--rtl-cv must be one CV, not '0.1,0.2'"),
    (("--rtl-cv", "0.1", "--rtl-n", "0"), "--rtl-n must be an integer >= 1, not '0'"),
    (("--rtl-cv", "0.1", "--sim", "xsim"), "--sim must be one of icarus, verilator, not"),
    (("--rtl-cv", "0.1", "--backend", "spice"), "--backend must be one of rtl, model, not "
                                                "'spice'"),
    (("--mat", "0"), "--mat must be an integer in [1, 32] (subarrays in lock-step for preset "
                     "nand_spin: a mat row of subarrays x 128 columns within the ISA's 12-bit "
                     "column addresses, at most 4096 columns, and at most 64 subarrays), not '0'"),
    (("--rtl-cv", "0.1", "--mat", "x"), "--mat must be an integer in [1, 32] (subarrays in "
                                        "lock-step for preset nand_spin: "),
    (("--technology", "sot", "--mat", "9"), "--mat must be an integer in [1, 8] (subarrays in "
                                            "lock-step for preset dima_sot: a mat row of "
                                            "subarrays x 512 columns"),
    (("--seeds", "0"), "--seeds must be an integer >= 1, not '0'"),
    (("--seeds", "two"), "--seeds must be an integer >= 1, not 'two'"),
])
def test_bad_input(tmp_path, args, message):
    base = ("--model", "digits_addernet", "-n", "10", "--cv", "0", "--trials", "10")
    r = _run(*base, *args, "--out", str(tmp_path / "o" / "v"), cwd=ROOT)
    assert r.returncode == 2
    assert r.stderr.startswith("error: " + message), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert r.stdout == ""
    assert list(tmp_path.rglob("*")) == []


def test_spot_check_on_the_core_model_subprocess(tmp_path):
    """--rtl-cv with --backend model: the spot check's core is a mat of --mat subarrays; at
    CV 0.2 (BER ~5e-2) the sensing faults change every image's logits."""
    out = tmp_path / "var"
    r = _run("--model", "digits_addernet", "--cv", "0", "-n", "10", "--seeds", "1", "--trials",
             "2000", "--rtl-cv", "0.2", "--rtl-n", "2", "--backend", "model", "--mat", "4",
             "--out", str(out), cwd=ROOT)
    assert r.returncode == 0, r.stderr
    spot = json.loads(out.with_suffix(".json").read_text())["spot_check"]
    config = preset("nand_spin")
    compiled = compile_model(load_model(bundled_model_path("digits_addernet")), config,
                             subarrays=4)
    assert spot["backend"] == "model" and spot["preset"] == "nand_spin"
    assert spot["subarrays"] == 4 and spot["mat_columns"] == 4 * config.columns
    assert spot["stage_modes"] == [st.mode for st in compiled.stages]
    assert spot["images"] == 2 and spot["cv"] == 0.2 and spot["ber"] > 0.01
    assert spot["fault_threshold"] > 0 and spot["logits_equal_golden"] == 0.0
    assert "spot check (numpy core model, nand_spin, write_free, mat of 4 subarrays)" \
        in r.stdout


@pytest.mark.parametrize("mat", [1, 4])
def test_spot_check_without_variation_is_golden(mat):
    """CV 0: BER 0, fault threshold 0, so the core's logits are golden's, at K = 1 and K = 4."""
    spot = variation.rtl_spot_check(model_name="digits_addernet", technology="stt", cv=0.0,
                                    n=3, trials=100, backend="model", subarrays=mat)
    assert spot["preset"] == "jeit_stt" and spot["subarrays"] == mat
    assert spot["ber"] == 0.0 and spot["fault_threshold"] == 0
    assert spot["logits_equal_golden"] == 1.0 and spot["prediction_equal_golden"] == 1.0
    x, y = load_dataset("digits", "test")
    golden = infer_int(load_model(bundled_model_path("digits_addernet")), x[:3])
    assert spot["accuracy"] == spot["golden_accuracy"] == float((golden.argmax(1) == y[:3])
                                                                .mean())
