"""Make's knobs (issue 17, class 8): errors name the knob the user typed (``sim.knobs``), MODEL
and DATASET are one shell word whatever they hold, ``make variation`` takes a model file with
DATASET."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim.knobs import parse, translate

REPO = Path(__file__).resolve().parent.parent
KNOBS = parse("--model=MODEL --dataset=DATASET -n=N --mat=MAT --preset=PRESETS")


@pytest.mark.parametrize("line, argv, want", [
    ("error: --model: unknown model 'foo'", ["--model", "foo"],
     "error: MODEL=foo: unknown model 'foo'"),
    ("error: -n 5000: only 1000 images; give -n between 1 and 1000", ["-n", "5000"],
     "error: N=5000: only 1000 images; give N between 1 and 1000"),
    ("error: --mat must be an integer in [1, 8], not '99'", ["--mat=99"],
     "error: MAT must be an integer in [1, 8], not '99'"),
    ("error: --preset must be one of a, b", ["--preset", "c"],
     "error: PRESETS must be one of a, b"),
    # only error lines, only whole flags
    ("note: --model foo", ["--model", "foo"], "note: --model foo"),
    ("error: --models 3", ["--model", "x"], "error: --models 3"),
])
def test_translate(line, argv, want):
    assert translate(line, KNOBS, argv) == want


def test_parse_ignores_malformed_words():
    assert parse("--model=MODEL junk =X -n= --dataset=DATASET") == {
        "--model": "MODEL", "--dataset": "DATASET"}


def _make(*args):
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    return subprocess.run(["make", "-s", "--no-print-directory", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def test_make_error_names_the_knob():
    r = _make("variation", "MODEL=foo")
    assert r.returncode == 2
    assert "error: MODEL=foo: unknown model 'foo'; one of" in r.stderr, r.stderr
    assert "--model" not in r.stderr


def test_make_model_is_one_shell_word(tmp_path):
    weird = tmp_path / "a b'c (1) *.npz"   # (a $ is make's own: write $$)
    r = _make("variation", f"MODEL={weird}")
    assert r.returncode == 2
    # the path reached the tool whole: not split at the space, globbed or cut at the quote
    assert f"MODEL={weird}: unknown model {str(weird)!r}" in r.stderr, r.stderr


def test_make_dataset_knob_is_checked():
    r = _make("variation", "MODEL=fashion_addernet", "DATASET=digits")
    assert r.returncode == 2
    assert "error: DATASET=digits: model 'fashion_addernet' is for fashion_mnist" in r.stderr


def test_variation_takes_a_model_file(tmp_path):
    """A model given by path (its name tells no data set) runs with --dataset; without it the
    error says what to give."""
    from golden.model import bundled_model_path
    model = tmp_path / "mine.npz"
    shutil.copy(bundled_model_path("digits_addernet"), model)
    out = tmp_path / "v"
    cmd = [sys.executable, "-m", "sim.analysis.variation", "--model", str(model), "-n", "10",
           "--cv", "0.1", "--seeds", "1", "--trials", "200", "--out", str(out)]
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "give --dataset" in r.stderr, r.stderr
    r = subprocess.run([*cmd, "--dataset", "digits"], cwd=REPO, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "v.json").is_file() and (tmp_path / "v.png").is_file()
    r = subprocess.run([*cmd, "--dataset", "fashion_mnist"], cwd=REPO, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "expects inputs [1, 8, 8]" in r.stderr, r.stderr


def test_make_sim_postproc_knob():
    """POSTPROC reaches ``sim.cli run --postproc`` (empty: the preset's own, no option); a bad
    value is one error line naming the knob, before any build."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "-s", "--no-print-directory", "sim", "POSTPROC=ppu"],
                         cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "--postproc ppu" in dry.stdout, dry.stdout
    dry = subprocess.run(["make", "-n", "-s", "--no-print-directory", "sim"], cwd=REPO,
                         capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0 and "--postproc" not in dry.stdout, dry.stdout
    r = _make("sim", "POSTPROC=bogus", "N=1")
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == ("error: POSTPROC must be one of ppu, in_memory, mixed, "
                                        "not 'bogus'"), r.stderr
