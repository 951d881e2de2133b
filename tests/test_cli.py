"""sim.cli and sim.analysis.bench: user mistakes give one line and exit 2, never a traceback or a
half-written report; a real run reports what golden measures."""

import json
import subprocess
import sys

import numpy as np
import pytest

from golden import datasets, infer_int, load_model
from golden.model import bundled_model_path, save_model
from tests.test_model_format import tiny_model


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "sim.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.parametrize("args,msg", [
    (["run", "--model", "nope"], "--model: model must be one of"),
    (["run", "-n", "0"], "-n must be a positive integer or 'all', not '0'"),
    (["run", "-n", "ten"], "-n must be a positive integer or 'all', not 'ten'"),
    (["run", "--backend", "rtl", "--preset", "nope"], "--preset must be one of jeit_stt, "),
    (["run", "--backend", "rtl", "--sim", "xsim"], "--sim must be one of icarus, verilator, "),
    (["run", "--backend", "rtl", "--dataflow", "mac"], "--dataflow: dataflow must be one of "),
    (["run", "--backend", "rtl", "--mat", "0"], "--mat must be an integer in [1, 32] "
                                                "(subarrays in lock-step for preset nand_spin: "),
    (["run", "--backend", "rtl", "--mat", "four"], "--mat must be an integer in [1, 32] "),
])
def test_cli_user_errors(args, msg, tmp_path):
    r = run_cli(*args, "--report", str(tmp_path / "r.json"))
    assert r.returncode == 2
    assert msg in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r.json").exists()


def test_cli_model_file_errors(tmp_path):
    (tmp_path / "bad.npz").write_bytes(b"junk")
    r = run_cli("run", "--model", str(tmp_path / "bad.npz"), "--dataset", "digits")
    assert r.returncode == 2 and "is not a readable .npz file" in r.stderr
    assert "Traceback" not in r.stderr
    save_model(tiny_model(), tmp_path / "tiny.npz")
    r = run_cli("run", "--model", str(tmp_path / "tiny.npz"))
    assert r.returncode == 2 and "cannot tell which data set" in r.stderr
    r = run_cli("run", "--model", str(tmp_path / "tiny.npz"), "--dataset", "digits")
    assert r.returncode == 2 and "expects inputs [1, 4, 4], data set 'digits' has [1, 8, 8]" \
        in r.stderr


def test_cli_run_digits_reports_golden(tmp_path):
    out = tmp_path / "rep.json"
    r = run_cli("run", "--model", "digits_addernet", "-n", "all", "--report", str(out),
                "--quiet")
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    x, y = datasets.load_digits("test")
    logits = infer_int(load_model(bundled_model_path("digits_addernet")), x)
    assert rep["images"] == 360
    assert rep["int8_accuracy"] == float((logits.argmax(1) == y).mean())
    assert "int8 accuracy" in r.stdout and str(out) in r.stdout


def test_bench_rejects_bad_arguments(tmp_path):
    r = subprocess.run([sys.executable, "-m", "sim.analysis.bench", "--repeat", "0", "--out",
                        str(tmp_path / "b.json")], capture_output=True, text=True)
    assert r.returncode == 2 and "--repeat and --images must be >= 1" in r.stderr
    assert not (tmp_path / "b.json").exists()


def test_accuracy_helper_ties_go_to_lowest_index():
    from golden import accuracy
    assert accuracy(np.array([[1, 1], [0, 2]]), np.array([0, 1])) == 1.0
