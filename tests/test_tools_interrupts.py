"""The measurement tools added after issue 17's Ctrl-C and output-path work (the CPU-IMAC and
DIMA tools, the route comparison, the NAND-SPIN mapping and post-processing measurements) behave
as the older tools do: every tool's main is interruptible (their Ctrl-C cases are in
tests/test_validation.py's table, with train_imac's missing torch), a bad count or name is one
line and exit code 2, and ``--json`` is checked before any work, and the ``--mat`` help states
each preset's range. On main at 5a05d85 these were tracebacks, a silently clamped count, or
``1 .. 64``."""

import ast
import importlib
from pathlib import Path

import pytest

from tests.test_validation import one_line_error

REPO = Path(__file__).resolve().parent.parent


def _tool_modules():
    """Every module under rtl/ and sim/ that runs as ``python -m`` (has a ``__main__`` block)."""
    for path in sorted([*REPO.glob("rtl/**/*.py"), *REPO.glob("sim/**/*.py")]):
        text = path.read_text()
        if '__name__ == "__main__"' in text and "def main(" in text:
            yield ".".join(path.relative_to(REPO).with_suffix("").parts), text


def test_every_tool_main_is_interruptible():
    """A new tool gets the same Ctrl-C / SIGTERM handling (rtl.outputs.interruptible). The
    mutation tool has its own (it stops its child test session first: tests/test_mutate_resume)."""
    missing = []
    for module, text in _tool_modules():
        if module == "sim.analysis.mutate":
            continue
        main = next(n for n in ast.parse(text).body
                    if isinstance(n, ast.FunctionDef) and n.name == "main")
        names = {ast.unparse(d).split("(")[0] for d in main.decorator_list}
        if "interruptible" not in names:
            missing.append(module)
    assert missing == []


def test_route_compare_checks_json_before_any_work(tmp_path, capsys, monkeypatch):
    from sim.analysis import route_compare

    def no_work(*a, **k):
        raise AssertionError("the comparison ran before --json was checked")
    monkeypatch.setattr(route_compare, "compare", no_work)
    (tmp_path / "out.json").mkdir()
    before = sorted(p.name for p in tmp_path.iterdir())
    assert route_compare.main(["-n", "1", "--json", str(tmp_path / "out.json")]) == 2
    assert one_line_error(capsys).startswith(f"error: --json {str(tmp_path / 'out.json')!r} "
                                             f"is a directory")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_route_compare_writes_its_json_whole(tmp_path, capsys):
    """A real comparison (one image, the smallest model) writes its JSON through the staging
    writer: the numbers printed are the numbers in the file, and no temporary name is left."""
    import json

    from sim.analysis import route_compare
    out = tmp_path / "cmp.json"
    assert route_compare.main(["--model", "digits_addernet", "-n", "1", "--json",
                               str(out)]) == 0
    rep = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert sorted(rep) == ["abs_diff", "jeit_fa"]
    for dataflow, r in rep.items():
        assert f"{dataflow} (zero_skip {r['zero_skip']}, mat of {r['subarrays']}): " \
               f"{r['cycles']:.0f} cycles" in printed, dataflow
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp.json"]


@pytest.mark.parametrize("module, argv, says", [
    ("sim.analysis.dima_repro", ["-n", "100000"],
     "-n 100000: the digits test split has 360 images; give -n between 1 and 360"),
    ("sim.analysis.dima_repro", ["-n", "0"],
     "-n 0: the digits test split has 360 images; give -n between 1 and 360"),
    ("sim.compile.nand_conv", ["--images", "100000"],
     "--images 100000: the digits test split has 360 images; give --images between 1 and 360"),
    ("sim.compile.nand_postproc", ["--model", "digits_addernet", "--compiled", "-3"],
     "--compiled -3: the digits test split has 360 images; give --compiled between 1 and 360"),
    ("sim.compile.dima_map", ["no_such_model"], "MODEL: model must be one of"),
    ("sim.compile.dima_map", ["digits_addnet", "no_such_preset"],
     "PRESET: unknown preset 'no_such_preset'"),
])
def test_counts_and_names_beyond_range_are_one_line(module, argv, says, capsys):
    """Before, these counts were cut to the test split silently (x[:n]; a negative one took all
    but the last images), and a bad name was a ValueError traceback."""
    mod = importlib.import_module(module)
    assert mod.main(argv) == 2
    assert says in one_line_error(capsys)


@pytest.mark.parametrize("module", ["sim.analysis.bench", "sim.analysis.variation"])
def test_mat_help_states_what_each_preset_accepts(module, capsys):
    """``--help`` gives each preset's --mat range (the 12-bit column addresses: 32 subarrays of
    128 columns, 8 of dima_sot's 512), not the bare 1 .. 64 that the tools refuse above 32."""
    mod = importlib.import_module(module)
    with pytest.raises(SystemExit):
        mod.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "1 .. 64" not in text
    for name, hi in (("nand_spin", 32), ("jeit_stt", 32), ("dima_sot", 8)):
        assert f"{hi} ({name})" in text, name


def test_a_closed_stdout_is_a_quiet_exit_141(tmp_path):
    """``tool | head``: the reader closes the pipe; the tool stops with 141 (128 + SIGPIPE),
    as a Unix tool does, and prints no BrokenPipeError traceback (found by the fuzz session)."""
    import subprocess
    import sys
    code = ("import sys\n"
            "from rtl.outputs import interruptible\n"
            "@interruptible('python -m demo', 'nothing was written')\n"
            "def main(argv=None):\n"
            "    for i in range(200000):\n"
            "        print('line', i)\n"
            "    return 0\n"
            "sys.exit(main())\n")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, cwd=Path(__file__).resolve().parents[1])
    assert p.stdout.readline() == b"line 0\n"
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err, err
