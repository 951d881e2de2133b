"""Fuzzing every tool's command line (issue 17): argv drawn from the tool's own argparse parser.

Every module under ``rtl/`` and ``sim/`` that runs as ``python -m`` with a ``main(argv)`` is a
tool (the same discovery as tests/test_tools_interrupts.py). For each, hypothesis draws command
lines from the tool's parser itself, so an option added tomorrow is fuzzed without editing this
file: the parser's actions give the option strings, ``nargs``, ``type``, ``choices``, flags and
required options, and a value is drawn valid (a name from ``choices`` or from the project's
names, a number near the default), at a boundary (0, -1, the 64-bit edges) or malformed (the
wrong type, empty, huge, NaN, a directory, a missing or unwritable path, an unknown option).

Getting the parser without rewriting the tools, most of which build it inside ``main``: a first
call of ``main([])`` runs with ``argparse.ArgumentParser.parse_args`` replaced by a function
that raises :class:`_Parser` carrying the parser (a ``BaseException``, so neither the tool's
``except`` clauses nor ``rtl.outputs.interruptible`` catch it); nothing before ``parse_args``
does work. A tool without an argparse parser (``sim.compile.dima_map`` parses ``sys.argv`` by
hand) gets argv from the shared vocabulary of names, numbers and ``--name=value`` flags.

Then ``main(argv)`` runs in this process (a subprocess per example would be far too slow) with
the working directory a fresh temporary directory, and the property is: the exit code is 0 or 2
(argparse's ``SystemExit(2)`` counts), on 2 the standard error is the tool's one error line (a
line with ``error:``; for argparse's own errors the usage lines and then ``<prog>: error:``) and
no traceback, and no file in the repository changed (``git status`` and the mtimes under
``build/``, which git ignores).

What is covered is the argument validation, up to the work: a valid command line would go on to
simulate, synthesize, train or count for seconds to hours, so each tool's first heavy call (the
:data:`WORK` table, the same entry points as tests/test_validation.py's Ctrl-C table) is replaced
by one that raises :class:`_Work`, which counts as clean: validation accepted the command line.
The work itself, with valid arguments, is tested by each tool's own tests.

Bounded for ``make test``: :data:`EXAMPLES` command lines per tool (``SPINPIM_FUZZ_EXAMPLES``
divided by 3, at least 4; 8 at the default 25); ``make fuzz FUZZ_EXAMPLES=1000`` runs 333 per
tool.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import math
import re
import os
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = max(4, int(os.environ.get("SPINPIM_FUZZ_EXAMPLES") or 25) // 3)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


class _Parser(BaseException):
    """Raised by the stand-in ``parse_args``: carries the tool's parser."""

    def __init__(self, parser):
        super().__init__()
        self.parser = parser


class _Work(BaseException):
    """Raised by a tool's heavy entry point: validation accepted the command line."""


def _work(*a, **k):
    raise _Work


#: Each tool's heavy entry points (module attributes), replaced by :func:`_work`. A tool not in
#: this table fails :func:`test_every_tool_has_its_work_bounded`.
WORK = {
    "rtl.export": ["rtl.export.export"],
    "rtl.synth": ["rtl.synth.synthesize"],
    "sim.cli": ["sim.cli.infer_int", "sim.flows.imac_flow.cmd_run_imac"],
    # training starts with torch's thread setting (after every check of the arguments)
    "sim.flows.train": ["torch.set_num_threads"],
    "sim.flows.train_imac": ["torch.set_num_threads"],
    "sim.hw.imac_energy": ["sim.hw.imac_energy.headline"],
    "sim.hw.device": ["sim.hw.device._report"],
    "sim.analysis.imac_variation": ["sim.analysis.imac_variation.run"],
    "sim.analysis.multi_mat": ["sim.analysis.multi_mat.run_printed"],
    "sim.analysis.report": ["sim.analysis.report._load_images"],
    "sim.analysis.variation": ["sim.analysis.variation.run",
                               "sim.analysis.variation.rtl_spot_check"],
    "sim.analysis.dima_repro": ["sim.analysis.dima_repro.table"],
    "sim.analysis.bench": ["sim.analysis.bench.bench_golden_inference"],
    "sim.analysis.seed001_eval": ["sim.analysis.seed001_eval.evaluate"],
    "sim.analysis.mutate": ["sim.analysis.mutate.run", "sim.analysis.mutate._rejudge_main"],
    "sim.analysis.counting": ["sim.compile.compiler.compile_model",
                              "sim.compile.compiler.propose_config",
                              "sim.analysis.multi_mat.run_printed"],
    "sim.analysis.reference_nets": ["sim.analysis.reference_nets.build",
                                    "sim.analysis.reference_nets.evaluate"],
    "sim.analysis.route_compare": ["sim.analysis.route_compare.compare"],
    "sim.analysis.synth": ["sim.analysis.synth.synthesize_core",
                           "sim.analysis.synth.synthesize_core_blocks",
                           "sim.analysis.synth.write_fit"],
    "sim.analysis.zero_skip": ["sim.analysis.zero_skip.measure"],
    "sim.compile.dima_map": ["sim.compile.compiler.propose_config"],
    "sim.compile.nand_conv": ["sim.compile.nand_conv.measure_layers",
                              "sim.compile.nand_conv._main_network"],
    "sim.compile.nand_postproc": ["sim.compile.nand_postproc.measure_model",
                                  "sim.compile.nand_postproc.measure_compiled"],
}


def tool_modules() -> list[str]:
    """Every module under rtl/ and sim/ that runs as ``python -m`` with a ``main``
    (``tests.test_tools_interrupts``' discovery)."""
    from tests.test_tools_interrupts import _tool_modules
    return [module for module, _ in _tool_modules()]


def test_every_tool_has_its_work_bounded():
    """A new tool is fuzzed too: it needs its heavy entry points in :data:`WORK`, and each
    named entry point exists (a renamed one would let the fuzz run real work)."""
    assert sorted(WORK) == tool_modules()
    for targets in WORK.values():
        for target in targets:
            owner, attr = target.rsplit(".", 1)
            try:
                mod = importlib.import_module(owner)
            except ImportError:         # torch is optional (the training tools say so)
                continue
            assert callable(getattr(mod, attr)), target


def capture_parser(module: str):
    """The tool's argparse parser (see the module docstring), or None when it has none."""
    mod = importlib.import_module(module)

    def grab(self, args=None, namespace=None):
        raise _Parser(self)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", grab)
        for target in WORK[module]:
            owner, attr = target.rsplit(".", 1)
            with contextlib.suppress(ImportError):
                mp.setattr(importlib.import_module(owner), attr, _work)
        try:
            with contextlib.redirect_stdout(io.StringIO()), \
                    contextlib.redirect_stderr(io.StringIO()):
                mod.main([])
        except _Parser as p:
            return p.parser
        except (_Work, SystemExit):
            return None
    return None


# -- values -----------------------------------------------------------------------------------

def _names() -> dict[str, list[str]]:
    """The project's names by kind (the key is what an option's dest contains: ``--preset``,
    ``--presets`` and ``--model`` find theirs), and ``""``: all of them, for any str option."""
    from golden.model import MODELS_DIR
    from rtl.config import DATAFLOWS, TECHNOLOGIES, preset_names
    from sim.analysis.reference_nets import NETWORKS
    kinds = {"preset": list(preset_names()), "model": sorted(p.stem for p in
                                                            MODELS_DIR.glob("*.npz")),
             "dataset": ["digits", "fashion_mnist"], "dataflow": list(DATAFLOWS),
             "technology": list(TECHNOLOGIES), "sim": ["icarus", "verilator"],
             "network": sorted(NETWORKS), "backend": ["golden", "rtl", "model", "core_model"]}
    kinds[""] = sorted({n for v in kinds.values() for n in v} | {"all", "flat", "blocks"})
    return kinds


def _sane_names(action: argparse.Action, names: dict[str, list[str]]) -> list[str]:
    """The values ``action`` most likely means: the names its help lists after "one of", else
    those of the kind its dest names, else small numbers and powers of two (the sizes and
    counts that are str options, checked by the tool)."""
    m = re.search(r"one or more of ([\w, ]+)|one of ([\w, ]+)", action.help or "")
    if m:
        listed = [w for w in re.split(r"[, ]+", m.group(1) or m.group(2)) if w and w != "or"]
        if listed:
            return listed
    for kind, values in names.items():
        if kind and kind in action.dest:
            return values
    return ["1", "2", "4", "8", "64", "256", "1024"]


#: Paths, relative to the working directory (a temporary directory holding ``adir/``, an
#: existing directory, and ``ro/``, a directory nobody may write), or absolute ones that cannot
#: be written.
PATHS = ["out.json", "sub/deeper/out.json", "adir", "adir/", ".", "..", "ro/out.json",
         "/nonexistent/dir/out.json", "/", "/dev/null", "", " ", "-", "out", "a" * 250,
         "out.json\x01", "adir/x.npz", "missing.npz", "ro", "a" * 300, "a\x00b",
         "a" * 300 + ".npz"]

#: A file name longer than the file system allows (NAME_MAX 255): stat raises OSError
#: (ENAMETOOLONG), which rtl.outputs.check_file and sim.cli._resolve_model let through as a
#: traceback until they checked it (:func:`test_output_paths_the_file_system_cannot_hold`).
OVERLONG = "a" * 300

NUMBERS = ["0", "-1", "1", "2", "3", "4", "8", "32", "33", "64", "65", "360", "361", "10000",
           "10001", "2147483648", "9223372036854775807", "9223372036854775808",
           "99999999999999999999999", "-9223372036854775809", "1e3", "1e308", "1e309", "0.5",
           "-0.5", "0.25", "0.26", "nan", "inf", "-inf", "0x10", "1_000", " 3", "3 ", "", "x",
           "1,2", "1,,2", ",", "0,0", "1,2,3,4,5,6,7,8"]


def _number_near(default) -> st.SearchStrategy[str]:
    """Numbers at and around ``default`` (when it is one) and the fixed boundaries."""
    near = []
    with contextlib.suppress(TypeError, ValueError, OverflowError):
        d = float(default)
        if math.isfinite(d):
            near = [str(v) for v in {d, d - 1, d + 1, -d, d * 1000}]
            near += [str(int(v)) for v in {d, d - 1, d + 1, -d, d * 1000}]
    return st.one_of(st.sampled_from(NUMBERS + near), st.integers(-2**70, 2**70).map(str))


def _value(action: argparse.Action, names: list[str], sane: bool) -> st.SearchStrategy[str]:
    """One value for ``action``: from its choices, type and default, right or wrong; ``sane``:
    only values a user would mean (a choice, a project name, a small number near the default,
    a fresh output path), so that validation is passed often enough to be tested too."""
    numeric = action.type in (int, float) or _number_like(action.default)
    pathlike = isinstance(action.type, type) and issubclass(action.type, os.PathLike)
    if sane:
        if action.choices:
            return st.sampled_from([str(c) for c in action.choices])
        if numeric:
            near = {1, 2}
            with contextlib.suppress(TypeError, ValueError, OverflowError):
                d = float(action.default)
                if math.isfinite(d) and d == int(d):
                    near |= {int(d), int(d) + 1, max(0, int(d) - 1)}
            return st.sampled_from(sorted(str(v) for v in near))
        if pathlike or "out" in action.dest or action.dest in ("json", "md", "report"):
            return st.sampled_from(["out.json", "sub/out.json", "adir"])
        return st.sampled_from(_sane_names(action, names))
    junk = st.one_of(st.sampled_from(["", "-", "--", "-n", "--help-me", "\x00", "é", "none",
                                      "None", "true"]),
                     st.text(alphabet="abc019-_./,: ", max_size=10))
    parts = [junk, st.sampled_from(PATHS)]
    if action.choices:
        parts += [st.sampled_from([str(c) for c in action.choices])] * 4
    if numeric:
        parts += [_number_near(action.default)] * 4
    else:
        parts += [st.sampled_from(_sane_names(action, names))] * 2
        parts += [st.sampled_from(names[""]), _number_near(action.default)]
    if pathlike:
        parts += [st.sampled_from(PATHS)] * 4
    return st.one_of(*parts)


def _number_like(value) -> bool:
    if isinstance(value, bool) or value is None:
        return False
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _nargs_count(action, draw, sane: bool) -> int:
    n = action.nargs
    if n is None:
        return 1
    if isinstance(n, int):
        if sane:
            return n
        return draw(st.sampled_from([n, n, n, max(0, n - 1), n + 1]))
    if n == "?":
        return draw(st.integers(0, 1))
    if n == "*":
        return draw(st.integers(0, 3))
    if n == "+":
        return draw(st.sampled_from([1, 1, 2] if sane else [1, 1, 2, 3, 0]))
    return 1


@st.composite
def command_lines(draw, parser: argparse.ArgumentParser | None, names: list[str],
                  sane: bool | None = None):
    """argv for ``parser``: each optional action present or not (a required one nearly always),
    in any order, with values from :func:`_value`; the positionals after; sometimes an unknown
    option. A sub-command parser (``sim.cli``) picks a sub-command and recurses. Half of the
    command lines are ``sane`` (see :func:`_value`), the others anything."""
    if sane is None:
        sane = draw(st.booleans())
    if parser is None:                  # a hand-made argv parser: the shared vocabulary
        word = st.one_of(st.sampled_from(names[""]), st.sampled_from(NUMBERS),
                         _number_near(4).map(lambda v: f"--mat={v}"),
                         st.sampled_from(["--compare", "--mat", "--mat=", "--nope", "-n"]))
        return draw(st.lists(word, max_size=4))
    argv: list[str] = []
    pieces: list[list[str]] = []
    positionals: list[str] = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            continue
        if isinstance(action, argparse._SubParsersAction):
            name = draw(st.sampled_from(sorted(action.choices)))
            positionals += [name, *draw(command_lines(action.choices[name], names, sane))]
            continue
        if not action.option_strings:
            for _ in range(_nargs_count(action, draw, sane)):
                positionals.append(draw(_value(action, names, sane)))
            continue
        present = draw(st.integers(0, 9)) > (0 if action.required else 7 if sane else 5)
        if not present:
            continue
        opt = draw(st.sampled_from(action.option_strings))
        if action.nargs == 0:                       # store_true / store_false / store_const
            pieces.append([opt] * draw(st.sampled_from([1, 1, 1, 2])))
            continue
        values = [draw(_value(action, names, sane))
                  for _ in range(_nargs_count(action, draw, sane))]
        if len(values) == 1 and opt.startswith("--") and draw(st.booleans()):
            pieces.append([f"{opt}={values[0]}"])
        else:
            pieces.append([opt, *values])
    pieces = draw(st.permutations(pieces))
    for piece in pieces:
        argv += piece
    if not sane and draw(st.integers(0, 9)) == 0:
        pieces.append([draw(st.sampled_from(["--no-such-option", "-Z", "--", "---x"]))])
        argv += pieces[-1]
    return [*argv, *positionals] if not positionals or draw(st.integers(0, 4)) else \
        [*positionals, *argv]


# -- the property -----------------------------------------------------------------------------

def repo_state():
    """What the tools could change in the repository: git's view of the tracked and untracked
    files, and the files under build/ (ignored by git) with their sizes and mtimes, but for
    build/sim/: the simulators' build directories, which the cocotb tests of the other xdist
    worker write at the same time (the first fresh-clone CI of this suite failed on them); no
    fuzzed tool writes there before its work, which is stubbed."""
    r = subprocess.run(["git", "--no-optional-locks", "status", "--porcelain",
                        "--untracked-files=all"], cwd=REPO,
                       capture_output=True, text=True, check=True)
    build = {}
    for root, dirs, files in os.walk(REPO / "build"):
        if Path(root) == REPO / "build":
            dirs[:] = [d for d in dirs if d != "sim"]
        for f in files:
            with contextlib.suppress(OSError):
                s = os.stat(os.path.join(root, f))
                build[os.path.join(root, f)] = (s.st_size, s.st_mtime_ns)
    return r.stdout, build


def check_error_output(err: str, prog: str | None, argv) -> None:
    """Exit code 2: the tool's one error line, or argparse's usage and its error line."""
    assert "Traceback" not in err, (argv, err)
    lines = err.strip().splitlines()
    assert lines, f"{argv}: exit code 2 and nothing on stderr"
    if lines[0].startswith("usage:"):                   # argparse's own error
        assert lines[-1].startswith(prog) and ": error: " in lines[-1], (argv, err)
        return
    assert len(lines) == 1 and "error: " in lines[0], (argv, err)


def run_tool(module: str, argv: list[str], prog: str | None) -> tuple[int | str, str]:
    """``main(argv)`` in a fresh temporary working directory with the work stubbed: the exit
    code (or "work" when validation passed) and the standard error."""
    mod = importlib.import_module(module)
    err = io.StringIO()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        for target in WORK[module]:
            owner, attr = target.rsplit(".", 1)
            with contextlib.suppress(ImportError):
                mp.setattr(importlib.import_module(owner), attr, _work)
        (Path(tmp) / "adir").mkdir()
        (Path(tmp) / "ro").mkdir(mode=stat.S_IRUSR | stat.S_IXUSR)
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                code = mod.main(list(argv))
        except _Work:
            code = "work"
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        finally:
            os.chdir(cwd)
            (Path(tmp) / "ro").chmod(stat.S_IRWXU)
    return code, err.getvalue()


#: Values a tool is known to mishandle in a file this suite does not change (another helper
#: edits it): left out of the fuzz, each with a strict-xfail tripwire below that fails once it
#: is fixed, to take it out of here.
KNOWN_GAPS: dict = {}


@pytest.mark.parametrize("module", sorted(WORK))
def test_command_lines(module):
    """Every tool: exit code 0 or 2 (or validation passed), one error line, the repository
    unchanged."""
    if module.startswith("sim.flows.train"):
        pytest.importorskip("torch", reason="the training tools need the optional extra 'train'")
    parser = capture_parser(module)
    prog = parser.prog if parser is not None else None
    names = _names()
    before = repo_state()

    @SETTINGS
    @given(argv=command_lines(parser, names))
    def check(argv):
        assume(not any(text in a for text in KNOWN_GAPS.get(module, ()) for a in argv))
        code, err = run_tool(module, argv, prog)
        assert code in ("work", 0, 2), (module, argv, code, err[-3000:])
        if code == 2:
            check_error_output(err, prog, argv)
        assert repo_state() == before, f"{module} {argv}: changed files in the repository"

    check()


def test_parsers_are_captured():
    """The capture trick finds a parser for every tool but the hand-parsed dima_map (else the
    fuzz would silently fall back to the shared vocabulary)."""
    import importlib.util
    tools = [m for m in sorted(WORK) if not m.startswith("sim.flows.train")
             or importlib.util.find_spec("torch") is not None]
    missing = [m for m in tools if capture_parser(m) is None]
    assert missing == ["sim.compile.dima_map"]


# -- what this suite found (each fixed; the regression tests) ---------------------------------

def _sim_tools_with_parsers():
    for module in sorted(WORK):
        if module.startswith("sim.flows.train"):                 # torch
            continue
        parser = capture_parser(module)
        if parser is not None:
            yield module, parser


def test_double_dash_as_an_option_value_is_refused_in_one_line():
    """Found by this suite: ``--option=--`` gave the option ``[]`` (Python 3.11's argparse
    drops the first ``--`` of every action's strings), and 40 options of 14 tools then stopped
    with a TypeError or AttributeError traceback (``sim.analysis.multi_mat --preset=--``:
    "unhashable type: 'list'"). rtl.argparse_fix keeps it as the value ``--``, which each tool
    refuses. Every str-valued option of every sim tool, taken from its parser."""
    checked = 0
    for module, parser in _sim_tools_with_parsers():
        sub = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        head, parser = ((["run"], sub[0].choices["run"]) if sub else ([], parser))
        required = [x for a in parser._actions if a.required and a.option_strings
                    for x in (a.option_strings[-1], "nand_spin")]
        for action in parser._actions:
            if (action.option_strings and action.option_strings[-1].startswith("--")
                    and action.nargs != 0 and action.type not in (int, float)
                    and not isinstance(action, argparse._HelpAction)):
                argv = [*head, *required, f"{action.option_strings[-1]}=--"]
                code, err = run_tool(module, argv, parser.prog)
                assert code in ("work", 0, 2), (module, argv, code, err)
                if code == 2:
                    check_error_output(err, parser.prog, argv)
                checked += 1
    assert checked >= 40


def test_argparse_fix_keeps_the_other_double_dashes():
    """The fix changes ``--option=--`` only: a bare ``--`` still ends the options."""
    import rtl.outputs  # noqa: F401  (installs rtl.argparse_fix, as every tool does)
    p = argparse.ArgumentParser()
    p.add_argument("--x")
    p.add_argument("--y", nargs="+")
    p.add_argument("rest", nargs="*")
    assert p.parse_args(["--x=--"]).x == "--"
    assert p.parse_args(["--y=--"]).y == ["--"]
    assert vars(p.parse_args(["--y", "a", "--", "b"])) == {"x": None, "y": ["a"], "rest": ["b"]}
    assert p.parse_args(["--", "--x"]).rest == ["--x"]


def test_zero_skip_missing_model_file_is_one_line(tmp_path, capsys, monkeypatch):
    """Found by this suite: a --model file that does not exist was a ModelFormatError
    traceback (the tool caught only UserError)."""
    from sim.analysis import zero_skip
    from tests.test_validation import one_line_error
    monkeypatch.chdir(tmp_path)
    assert zero_skip.main(["--model", "adir/x.npz"]) == 2
    assert one_line_error(capsys) == "error: model file 'adir/x.npz' does not exist"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, says", [
    (["--mat=0"], "--mat must be an integer in [1, 8] (subarrays in lock-step for preset "
                  "dima_sot"),
    (["--mat=1000"], "not '1000'"),
    (["--mat=x"], "not 'x'"),
    (["--mats=4"], "unknown argument '--mats=4'; usage: python -m sim.compile.dima_map [MODEL] "
                   "[PRESET] [--mat=K] [--compare]"),
    (["digits_addnet", "dima_sot", "extra"], "unknown argument 'extra'"),
    (["fashion_addnet", "nand_spin"], "fashion_addnet on nand_spin does not compile: layer 1 "
                                      "(bin_gconv2d): no route"),
])
def test_dima_map_arguments_are_checked(argv, says, capsys):
    """Found by probing what the fuzz stubs (dima_map parses its argv by hand): --mat=0 or -1
    was a ValueError traceback from the compiler, --mat=1000 a CompileError traceback, an
    unknown flag or a third word was ignored silently, and a model the preset cannot hold was a
    CompileError traceback."""
    from sim.compile import dima_map
    from tests.test_validation import one_line_error
    assert dima_map.main(argv) == 2
    line = one_line_error(capsys)
    assert line.startswith("python -m sim.compile.dima_map: error: ") and says in line, line


@pytest.mark.parametrize("module, argv, says", [
    ("sim.compile.nand_conv", ["--layers", "-1", "--images", "1"],
     "error: --layers must be an integer in [0, 8] (0: all of digits_addernet's 8 layers), "
     "not -1"),
    ("sim.compile.nand_conv", ["--layers", "9", "--images", "1"], "not 9"),
    ("sim.analysis.dima_repro", ["--mat", "1000"],
     "python -m sim.analysis.dima_repro: error: --mat must be an integer in [1, 8] (subarrays "
     "in lock-step for preset dima_sot"),
    ("sim.analysis.dima_repro", ["--mat", "0"], "not 0"),
])
def test_counts_beyond_range_before_the_work(module, argv, says, capsys, monkeypatch):
    """Found by probing what the fuzz stubs: nand_conv's --layers -1 took all but the last
    layer and --layers 100 all of them (a silent slice); dima_repro's --mat 0 was the config's
    "subarrays must be a positive int", --mat 1000 a message about a transpose-buffer column.
    Refused now before the work (which is stubbed to show it)."""
    mod = importlib.import_module(module)
    for target in WORK[module]:
        owner, attr = target.rsplit(".", 1)
        monkeypatch.setattr(importlib.import_module(owner), attr, _work)
    from tests.test_validation import one_line_error
    assert mod.main(argv) == 2
    line = one_line_error(capsys)
    assert says in line, line


def test_config_path_with_a_nul_byte_is_one_line():
    """Found by this suite (``sim.analysis.counting --config $'\\x00'``): a NUL in the path
    made ``Path.read_bytes`` raise ValueError ("embedded null byte"), a traceback in every tool
    with --config."""
    from sim.config_file import ConfigError, load_config_file
    with pytest.raises(ConfigError, match=r"^--config \x00: cannot read the file \(embedded "
                                          r"null byte\)$"):
        load_config_file("\x00")


@pytest.mark.parametrize("model", ["", "adir", "missing.npz"])
def test_multi_mat_bad_model_file_is_one_line(model, tmp_path, capsys, monkeypatch):
    """Found by this suite: a --model that is a directory or a missing file was a
    ModelFormatError traceback (the tool caught only UserError)."""
    from sim.analysis import multi_mat
    from tests.test_validation import one_line_error
    monkeypatch.chdir(tmp_path)
    (tmp_path / "adir").mkdir()
    assert multi_mat.main(["--model", model]) == 2
    assert one_line_error(capsys).startswith("error: model file ")
    assert [p.name for p in tmp_path.iterdir()] == ["adir"]


def test_overlong_model_names_are_one_line(capsys, tmp_path, monkeypatch):
    """Found by this suite: a --model file name longer than NAME_MAX made ``Path.is_dir``
    raise OSError (ENAMETOOLONG) in golden.model.load_model and in sim.flows.imac_flow's
    check of every ``sim.cli run --model``: a traceback; now a ModelFormatError, and not a
    CPU-IMAC network."""
    from golden.model import ModelFormatError, load_model
    from sim import cli
    from sim.flows.imac_flow import is_imac_model
    from tests.test_validation import one_line_error
    with pytest.raises(ModelFormatError, match=r"^model file 'a{300}\.npz' cannot be read "
                                               r"\(File name too long\)$"):
        load_model(OVERLONG + ".npz")
    assert not is_imac_model(OVERLONG)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "--backend", "golden", "--model", OVERLONG + ".npz"]) == 2
    assert one_line_error(capsys).endswith("cannot be read (File name too long)")


@pytest.mark.parametrize("where, path", [("rtl.outputs.check_file", OVERLONG),
                                         ("rtl.outputs.check_file", "a\x00b"),
                                         ("rtl.outputs.check_dir", OVERLONG + "/x"),
                                         ("rtl.outputs.check_dir", "a\x00b"),
                                         ("rtl.outputs.check_file", "a/" * 2100 + "x"),
                                         ("sim.cli._resolve_model", OVERLONG)])
def test_output_paths_the_file_system_cannot_hold(where, path):
    """Found by this suite: a name over NAME_MAX was an OSError traceback (before any work) and
    a NUL byte was accepted (the writer's ValueError traceback after the work); now one
    UserError naming the path and the limit."""
    from rtl.outputs import UserError
    owner, attr = where.rsplit(".", 1)
    f = getattr(importlib.import_module(owner), attr)
    with pytest.raises(UserError, match=r"NUL byte|at most (255|4096)|model"):
        f("--out", path) if attr.startswith("check_") else f(path)


def test_mutate_refuses_a_nul_file_name_in_one_line():
    """Found by this suite: sim.analysis.mutate resolved its file names before checking them,
    and a NUL byte was pathlib's ValueError traceback."""
    code, err = run_tool("sim.analysis.mutate", ["a\x00b"], "python -m sim.analysis.mutate")
    assert code == 2
    check_error_output(err, "python -m sim.analysis.mutate", ["a\x00b"])
    assert "NUL byte" in err
