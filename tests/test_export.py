"""rtl.export: byte-identical output, clean Verilator lint, one-line CLI errors."""

import dataclasses
import filecmp
import subprocess
import sys
from pathlib import Path

import pytest

from cocotb_tests.harness import HarnessError, check_verilator
from rtl.config import preset, preset_names
from rtl.export import BLOCKS, export

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def verilator():
    try:
        return check_verilator()
    except HarnessError as e:
        pytest.fail(str(e))


def _mat2(name):
    """The preset with a core of 2 subarrays: the generator loops over the subarrays, so 2
    exercises every path; the presets' 16 take about 50 s to convert and 40 s to lint each
    (``make verilog`` exports the preset's own mat)."""
    cfg = preset(name)
    return dataclasses.replace(cfg, subarrays_per_mat=min(2, cfg.subarrays_per_mat))


@pytest.mark.parametrize("name", preset_names())
def test_export_deterministic_and_lint_clean(name, tmp_path, verilator):
    first = export(_mat2(name), tmp_path / "a")
    export(_mat2(name), tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == \
        sorted([f"{b}.v" for b in BLOCKS] + ["lint.vlt"])
    for path in first:
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name
        # The toplevel carries the block's name.
        assert f"module {path.stem}(" in path.read_text()
        lint = subprocess.run([verilator, "--lint-only", "-Wall", "lint.vlt", path.name],
                              cwd=path.parent, capture_output=True, text=True)
        assert lint.returncode == 0, f"{name}/{path.name}: {lint.stderr}"
        assert "%Warning" not in lint.stderr and "%Error" not in lint.stderr, lint.stderr


def test_export_replaces_directory(tmp_path):
    out = tmp_path / "v"
    out.mkdir()
    (out / "stale.v").write_text("// old")
    export(_mat2("nand_spin"), out)
    assert not (out / "stale.v").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp dir left over"


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rtl.export", *args], cwd=cwd,
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_cli_writes_files_twice_identically(tmp_path):
    for out in ("x", "y"):
        r = _cli("--preset", "jeit_stt", "--mat", "1", "--out", out, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert not filecmp.dircmp(tmp_path / "x", tmp_path / "y").diff_files
    assert filecmp.cmpfiles(tmp_path / "x", tmp_path / "y", [f"{b}.v" for b in BLOCKS],
                            shallow=False)[0] == [f"{b}.v" for b in BLOCKS]


def test_cli_unknown_preset(tmp_path):
    r = _cli("--preset", "nope", "--out", "out", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stdout == ""
    assert r.stderr == ("python -m rtl.export: error: unknown preset 'nope'; known presets: "
                        "jeit_stt, nand_spin, dima_sot, imac_sot\n")
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_mat(tmp_path):
    r = _cli("--preset", "imac_sot", "--mat", "0", "--out", "out", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == ("python -m rtl.export: error: --mat must be an integer in [1, 64] "
                        "(subarrays in the core's mat), not '0'\n")
    assert list(tmp_path.iterdir()) == []


def test_cli_default_out(tmp_path):
    r = _cli("--preset", "imac_sot", "--mat", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "build" / "verilog" / "imac_sot").iterdir()) == \
        sorted([f"{b}.v" for b in BLOCKS] + ["lint.vlt"])
