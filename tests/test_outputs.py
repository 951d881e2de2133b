"""Output paths (rtl.outputs and every tool that writes late): a bad path is refused before any
work with one line and exit code 2, nothing that the tool did not create is ever removed, files
appear whole or not at all, and no temporary name is listed next to the outputs."""

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import rtl.export
import rtl.outputs
import rtl.synth
import sim.analysis.bench
import sim.cli
import sim.analysis.report
import sim.analysis.variation
from golden.model import load_model, save_model
from rtl.outputs import MARKER, OutputPathError, check_file, write_file, write_files
from tests.test_model_format import tiny_model

REPO = Path(__file__).resolve().parent.parent
EXPORTED = sorted([f"{b}.v" for b in rtl.export.BLOCKS] + ["lint.vlt", MARKER])


def _snapshot(root: Path) -> dict:
    """Every path under ``root`` with its bytes (None for a directory) and its mode."""
    out = {}
    for p in sorted(root.rglob("*")):
        data = None if p.is_dir() else p.read_bytes()
        out[str(p.relative_to(root))] = (data, stat.S_IMODE(p.lstat().st_mode))
    return out


def _user_files(root: Path) -> None:
    (root / "thesis.tex").write_text("\\section{years of work}\n")
    (root / ".hidden").write_bytes(b"\x00\x01")
    (root / "data").mkdir()
    (root / "data" / "run.csv").write_text("1,2,3\n")


@pytest.fixture
def fake_verilog(monkeypatch):
    """Export without Amaranth: each block's 'Verilog' names the block and the mat (the path
    handling is under test here; tests/test_export.py checks the real Verilog)."""
    calls = []

    def fake(block, config):
        calls.append(block)
        return f"// {block} mat {config.subarrays_per_mat}\n"

    monkeypatch.setattr(rtl.export, "verilog_of", fake)
    return calls


def _no_work(monkeypatch, module, name):
    def boom(*args, **kwargs):
        raise AssertionError(f"{module.__name__}.{name} ran before the output path was checked")

    monkeypatch.setattr(module, name, boom)


# ----------------------------------------------------------------------------------------------
# rtl.export: never deletes what it did not make


def test_export_out_dot_keeps_every_file(tmp_path, monkeypatch, capsys):
    _user_files(tmp_path)
    before = _snapshot(tmp_path)
    _no_work(monkeypatch, rtl.export, "verilog_of")
    monkeypatch.chdir(tmp_path)
    assert rtl.export.main(["--preset", "jeit_stt", "--mat", "1", "--out", "."]) == 2
    err = capsys.readouterr()
    assert err.out == ""
    assert err.err == ("python -m rtl.export: error: --out '.' is a directory with 3 entries "
                       "(e.g. '.hidden') that python -m rtl.export did not make; it would have "
                       "to replace them: give a new or empty directory, or remove this one "
                       "yourself\n")
    assert _snapshot(tmp_path) == before


def test_export_cli_out_dot_subprocess(tmp_path):
    """The reported data loss, as the user ran it."""
    _user_files(tmp_path)
    before = _snapshot(tmp_path)
    r = subprocess.run([sys.executable, "-m", "rtl.export", "--preset", "jeit_stt", "--mat", "1",
                        "--out", "."], cwd=tmp_path, capture_output=True, text=True,
                       env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.splitlines()) == 1 and "--out '.'" in r.stderr
    assert _snapshot(tmp_path) == before


DID_NOT_MAKE = (r"^--out '.*mine' is a directory with 1 entry \(e\.g\. '{}'\) that python -m "
                r"rtl\.export did not make; it would have to replace them: give a new or "
                r"empty directory, or remove this one yourself$")


@pytest.mark.parametrize("content, message", [
    ("notes.txt", DID_NOT_MAKE.format(r"notes\.txt")),
    (".git", DID_NOT_MAKE.format(r"\.git")),
    ("sub/", DID_NOT_MAKE.format("sub")),
    ("core.v", r"^--out '.*mine' holds only files named as python -m rtl\.export writes them "
               r"but no \.spinpim-outputs that says it made them \(an output from before the "
               r"marker\?\); check and remove it yourself, then run again$"),
])
def test_export_refuses_a_users_folder(tmp_path, fake_verilog, content, message):
    out = tmp_path / "mine"
    out.mkdir()
    if content.endswith("/"):
        (out / content).mkdir()
    else:
        (out / content).write_text("keep me")
    before = _snapshot(tmp_path)
    with pytest.raises(OutputPathError, match=message):
        rtl.export.export(rtl.export.preset("jeit_stt"), out, option="--out")
    assert fake_verilog == [], "Verilog generated before the path was checked"
    assert _snapshot(tmp_path) == before


def test_export_replaces_a_directory_it_made(tmp_path, fake_verilog, capsys):
    out = tmp_path / "v"
    assert rtl.export.main(["--preset", "jeit_stt", "--mat", "1", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == EXPORTED
    assert (out / "core.v").read_text() == "// core mat 1\n"
    (out / "ppu.v").unlink()                                # a file it wrote, removed
    (out / "core.v").write_text("// edited by hand")        # a file it wrote, edited
    assert rtl.export.main(["--preset", "jeit_stt", "--mat", "2", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == EXPORTED
    assert (out / "core.v").read_text() == "// core mat 2\n"
    assert (out / "ppu.v").read_text() == "// ppu mat 2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["v"], "staging directory left over"
    # A file the user added to it: refused, and the directory stays as it was.
    (out / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert rtl.export.main(["--preset", "jeit_stt", "--mat", "3", "--out", str(out)]) == 2
    assert capsys.readouterr().err == (f"python -m rtl.export: error: --out {str(out)!r} holds "
                                       f"'notes.txt', which python -m rtl.export did not write; "
                                       f"move it away or give a new or empty directory\n")
    assert _snapshot(tmp_path) == before


def test_export_fills_an_empty_directory_in_place(tmp_path, fake_verilog, monkeypatch):
    monkeypatch.chdir(tmp_path)
    inode = tmp_path.stat().st_ino
    paths = rtl.export.export(rtl.export.preset("nand_spin"), Path("."))
    assert [p.name for p in paths] == [f"{b}.v" for b in rtl.export.BLOCKS]
    assert sorted(p.name for p in tmp_path.iterdir()) == EXPORTED
    assert tmp_path.stat().st_ino == inode                  # the same directory, not replaced


def test_export_into_an_empty_directory_failing_leaves_it_empty(tmp_path, fake_verilog,
                                                                monkeypatch):
    out = tmp_path / "v"
    out.mkdir()
    real, count = os.replace, []

    def replace(src, dst):
        count.append(dst)
        if len(count) == 3:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(rtl.outputs.os, "replace", replace)
    with pytest.raises(OutputPathError, match=r"^--out '.*v': cannot write \(No space left"):
        rtl.export.export(rtl.export.preset("jeit_stt"), out, option="--out")
    assert len(count) == 3
    assert [p.name for p in tmp_path.iterdir()] == ["v"] and list(out.iterdir()) == []


def test_export_failure_leaves_nothing(tmp_path, monkeypatch):
    def half(block, config):
        if block == "core":
            raise KeyboardInterrupt
        return "// ok\n"

    monkeypatch.setattr(rtl.export, "verilog_of", half)
    with pytest.raises(KeyboardInterrupt):
        rtl.export.export(rtl.export.preset("jeit_stt"), tmp_path / "v")
    assert list(tmp_path.iterdir()) == []


def test_export_modes_follow_the_umask(tmp_path, fake_verilog):
    old = os.umask(0o022)
    try:
        rtl.export.export(rtl.export.preset("jeit_stt"), tmp_path / "v")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "v").stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "v").iterdir()} == {0o644}


# ----------------------------------------------------------------------------------------------
# Every tool: a bad output path fails before any work, in one line, exit code 2


def _read_only(monkeypatch, *paths):
    """Make ``paths`` unwritable for os.access (as root, chmod does not stop writes)."""
    real = os.access
    ro = {str(p) for p in paths}
    monkeypatch.setattr(rtl.outputs.os, "access",
                        lambda p, mode: False if str(p) in ro else real(p, mode))


#: tool -> (main, the expensive function that must not run, error prefix, option)
TOOLS = {
    "export": (rtl.export.main, (rtl.export, "verilog_of"), "python -m rtl.export: error: ",
               "--out"),
    "synth": (rtl.synth.main, (rtl.synth, "synthesize"), "python -m rtl.synth: error: ",
              "--out"),
    "run": (sim.cli.main, (sim.cli, "infer_int"), "error: ", "--report"),
    "bench": (sim.analysis.bench.main, (sim.analysis.bench, "bench_golden_inference"), "error: ",
              "--out"),
    "variation": (sim.analysis.variation.main, (sim.analysis.variation, "run"), "error: ", "--out"),
    "report": (sim.analysis.report.main, (sim.analysis.report, "_resolve_model"), "error: ",
               "--out"),
}


def _argv(tool: str, out: str) -> list:
    return {
        "export": ["--preset", "jeit_stt", "--mat", "1", "--out", out],
        "synth": ["--preset", "jeit_stt", "--out", out],
        "run": ["run", "--model", "digits_addernet", "-n", "5", "--report", out],
        "bench": ["--model-images", "0", "--out", out],
        "variation": ["--model", "digits_addernet", "-n", "5", "--cv", "0", "--out", out],
        "report": ["--backend", "model", "--preset", "nand_spin", "-n", "1", "--out", out],
    }[tool]


#: The tools whose output option names a directory.
DIRECTORY_OUT = ("export", "report")
CASES = ("directory instead of a file", "file instead of a directory", "unwritable directory",
         "missing parent that cannot be created", "read-only file")


def _bad_path(tool: str, case: str, root: Path, monkeypatch):
    """``(--out value, what the message must say)`` for one kind of bad path."""
    directory_out = tool in DIRECTORY_OUT
    if case == "directory instead of a file":
        target = root / "out.json"
        target.mkdir()
        if tool == "variation":                 # --out is a stem: STEM.json must be a file
            return str(root / "out"), f"{str(target)!r} is a directory; give a file path"
        return str(target), f"{str(target)!r} is a directory; give a file path"
    if case == "file instead of a directory":
        (root / "f").write_text("keep")
        if directory_out:
            return str(root / "f"), f"{str(root / 'f')!r} is a file, where a directory is needed"
        return (str(root / "f" / "out.json"), f"{str(root / 'f')!r} is a file, where a "
                                              f"directory is needed")
    if case == "unwritable directory":
        (root / "ro").mkdir()
        _read_only(monkeypatch, root / "ro")
        return str(root / "ro" / "out"), f"directory {str(root / 'ro')!r} is not writable"
    if case == "missing parent that cannot be created":
        _read_only(monkeypatch, root)
        return str(root / "a" / "b" / "out"), f"cannot create '{root / 'a' / 'b'}"
    if case == "read-only file":
        target = root / ("out.json" if tool != "variation" else "out.png")
        target.write_text("old")
        _read_only(monkeypatch, target)
        return (str(root / "out") if tool == "variation" else str(target)), "is read-only"
    raise AssertionError(case)


@pytest.mark.parametrize("tool, case", [
    (tool, case) for tool in TOOLS for case in CASES
    if tool not in DIRECTORY_OUT or case not in (CASES[0], CASES[-1])])
def test_bad_output_path_fails_before_any_work(tool, case, tmp_path, monkeypatch, capsys):
    main, (module, expensive), prefix, option = TOOLS[tool]
    out, says = _bad_path(tool, case, tmp_path, monkeypatch)
    _no_work(monkeypatch, module, expensive)
    before = _snapshot(tmp_path)
    assert main(_argv(tool, out)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"{prefix}{option} "), lines[0]
    assert says in lines[0], lines[0]
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize("tool, argv", [
    ("run", ["run", "--backend", "rtl", "--report"]),
    ("report", ["--backend", "rtl", "--out"]),
])
def test_rtl_backend_checks_the_path_before_the_toolchain(tool, argv, tmp_path, monkeypatch,
                                                          capsys):
    import sim.flows.rtl_backend
    _no_work(monkeypatch, sim.flows.rtl_backend, "check_sim")
    out = tmp_path / "out"
    if tool == "report":
        out.write_text("keep")                  # a file where the directory is needed
    else:
        out.mkdir()                             # a directory where the file is needed
    main = TOOLS[tool][0]
    assert main([*argv, str(out)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {argv[-1]} {str(out)!r} is a ")


# ----------------------------------------------------------------------------------------------
# Writing: whole files, temporary names no glob sees, the summary before the file


@pytest.mark.parametrize("tool, writer, argv, summary", [
    ("run", "write_json_atomic", ["run", "--model", "digits_addernet", "-n", "5", "--quiet"],
     "int8 accuracy"),
    ("bench", "write_json_atomic", ["--repeat", "1", "--images", "2", "--model-images", "0"],
     "images/s (best)"),
    ("variation", "_write_outputs", ["--model", "digits_addernet", "-n", "5", "--cv", "0",
                                     "--seeds", "1", "--trials", "10"], "acc mean"),
])
def test_summary_is_printed_before_the_output_is_written(tool, writer, argv, summary, tmp_path,
                                                         monkeypatch, capsys):
    main, _, _, option = TOOLS[tool]

    def fail(*args, **kwargs):
        raise OutputPathError(f"{option} 'x': cannot write (No space left on device)")

    monkeypatch.setattr(sys.modules[main.__module__], writer, fail)
    assert main([*argv, option, str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert summary in captured.out
    assert captured.err == f"error: {option} 'x': cannot write (No space left on device)\n"
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_a_symbolic_link(tmp_path, fake_verilog):
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "notes.txt").write_text("mine")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    before = _snapshot(tmp_path)
    with pytest.raises(OutputPathError, match="is a symbolic link"):
        rtl.export.export(rtl.export.preset("jeit_stt"), tmp_path / "link", option="--out")
    assert _snapshot(tmp_path) == before


def test_model_saved_through_staging_is_never_listed_by_the_bundled_glob(tmp_path,
                                                                         monkeypatch):
    """sim.flows.train saves the model this way: while golden.model.save_model writes its own
    temporary file, ``models/*.npz`` lists nothing new."""
    models = tmp_path / "models"
    models.mkdir()
    save_model(tiny_model(), models / "old.npz")
    seen = []
    real = np.savez_compressed

    def spy(f, **arrays):
        seen.append(sorted(p.name for p in models.glob("*.npz")))
        seen.append(sorted(p.name for p in models.glob("*.json")))
        real(f, **arrays)

    monkeypatch.setattr(np, "savez_compressed", spy)
    write_files({models / "new.npz": lambda tmp: save_model(tiny_model(), tmp),
                 models / "new.json": "{}\n"})
    assert seen == [["old.npz"], []]
    assert sorted(p.name for p in models.iterdir()) == ["new.json", "new.npz", "old.npz"]
    assert load_model(models / "new.npz").name == tiny_model().name


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")

    def half(tmp):
        tmp.write_text("new, half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_file(target, half)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_sigterm_while_writing_leaves_nothing(tmp_path):
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        pytest.skip("the test runner handles SIGTERM itself")

    def terminated(tmp):
        tmp.write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(SystemExit) as e:
        write_file(tmp_path / "r.json", terminated)
    assert e.value.code == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_file(tmp_path / "a.json", "{}\n")
        write_file(tmp_path / "b.npz", lambda tmp: save_model(tiny_model(), tmp))
    finally:
        os.umask(old)
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir()} == \
        {"a.json": 0o644, "b.npz": 0o644}


def test_staging_left_by_a_dead_process_is_removed_on_the_next_start(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f".r.json.{dead}-abc.spinpim-tmp"
    alive = tmp_path / f".r.json.{os.getpid()}-abc.spinpim-tmp"
    other = tmp_path / f".q.json.{dead}-abc.spinpim-tmp"
    for d in (stale, alive, other):
        d.mkdir()
        (d / "r.json").write_text("partial")
    check_file("--report", tmp_path / "r.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])
