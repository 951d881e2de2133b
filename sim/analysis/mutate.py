"""Mutation testing of the generator (``make mutate``): do the tests catch a broken block?

A mutant is the source of one ``rtl/`` file with one small edit, as a hardware bug would make
it: an operator swapped (``+``/``-``, ``&``/``|``/``^``, ``<<``/``>>``, a comparison), a ``~``
dropped, an integer constant off by one, a slice bound moved, a ``Mux``'s arms swapped, an
``if`` / ``m.If`` condition inverted. Mutation sites are found with ``ast`` in the functions
that build hardware (``elaborate`` and the helpers it calls; not ``__init__``, properties,
or lines that raise); each mutant replaces the source text of one expression.

Every mutant runs in a temporary copy of the repository (``rtl``, ``sim``, ``golden``,
``cocotb_tests``, ``tests``, ``pyproject.toml``; never the working tree's files), with the tests
that cover the mutated file (:data:`COVERING`, or ``--tests``) on one simulator, stopping at
the first failure. A mutant is *killed* when the tests fail (a test's assertion, or the design
no longer elaborates or builds: the report keeps the last lines of pytest's output to tell
which) or when they run past ``--timeout`` seconds (``killed_timeout``, counted as killed: a
mutant that hangs the core is caught); it *survives* when they pass. A mutant on lines
that the unmutated run never executes (traced in every Python process of that run: the
pytest process, where the hardware is elaborated, and the simulators', where the cocotb side
runs and may call an ``rtl`` helper that encodes a test's stimulus; :func:`pytest_configure`)
is *uncovered*: no test builds or uses it, it is not run, and it counts as not killed.

A survivor is *equivalent* (left out of ``score``; ``score_raw`` counts it) when the hardware
its tests simulated is provably the unmutated hardware, file by file over every Verilog file
the tests wrote under ``build/sim`` (one design and its test bench per build directory, for
every configuration and simulator the tests build): each file is byte for byte the unmutated
one, or it is a design whose netlist computes the same function at its ports
(:func:`verilog_equivalent`: first :func:`state_matched_equivalent`, a SAT proof over the
state matched by name (registers with only generated names, which a mutant renumbers, by
likeness and rank), memories' writes compared by their effect, so a write beyond a
memory's end is none, as in the memory; else yosys turns both files into one-bit gates, memories and
flip-flops after its optimisations, :data:`YOSYS_FLOW`; :func:`same_function` then proves by
colour refinement that every output bit has the same cycle-by-cycle computation from the
inputs, constants and init values in both). The check is sound (it never calls a mutant that
changes a simulated output equivalent; ``tests/test_mutate.py`` has a killable mutant it
must refuse) but not complete: a survivor it cannot prove stays a survivor, and the report
says why (the first output bit not proven). The cocotb tests touch ports only
(``cocotb_tests/harness.py``), so the ports are all a test could see. An equivalent mutant may
still differ in a configuration no test builds. The score is ``killed / (run - equivalent)``;
``score_raw`` is ``killed / run`` (``run`` counts the uncovered). The report is rewritten
after every mutant (``"partial": true`` until the last), so a run stopped early still reports
the mutants done, a random sample themselves (they run in the sample's random order). With
``--judge-later`` the survivors' Verilog is only kept; ``--rejudge REPORT`` proves their
equivalence afterwards, without running tests. A survivor the check cannot prove may be
judged equivalent by a reviewer: :data:`JUDGED_EQUIVALENT` lists such mutants with the reason
(matched by source text, not line number; only survivors are matched, so an entry can hide no
failing test; ``--rejudge`` applies it to a report made from today's ``rtl/``).

Formal proof of a survivor (:func:`prove_mutant`; ``--prove judged`` or ``--prove
FILE:LINE:COL[:KIND]`` runs it alone into ``build/mutate/proofs.json``; ``make mutate`` runs it
on every survivor the tests' Verilog does not show equivalent, ``--no-prove`` leaves it out):
the core's Verilog is exported from the unmutated ``rtl/`` and from a temporary copy with the
mutant applied at small proof configurations (:data:`PROOF_CONFIGS`: every preset at 8 x 8
arrays, ``nand_spin`` with the ``nand_inmem`` route, ``jeit_stt`` also at two subarrays; the
core's memories at 2 entries, :data:`PROOF_SIZES`; no fault injection). At each where the
Verilog differs, yosys maps every memory to flip-flops (:data:`YOSYS_READ_MAPPED`: a read whose
data no output uses, as an MTJ array's read port during a NOP, is then no difference), pairs
both designs' registers and memory words with equal init (= reset) values, and proves with one
SAT call that equal state and inputs give equal outputs and next state
(:func:`state_matched_equivalent`): by induction, the outputs are equal in every cycle from
reset for every input sequence (unbounded, not a bounded check; a register without an init
value, such as the read-address register memory_map makes for a synchronous read port, is
assumed to start at the same value in both). Proven at every configuration
where the Verilog differs (and at least one): ``proven_equivalent``, with the method and the
configurations in the report. Not proven: a miter of both designs is searched for a
counterexample over :data:`BMC_CYCLES` cycles from reset (:data:`YOSYS_BMC`); found:
``refuted``, a real survivor that no :data:`JUDGED_EQUIVALENT` entry can hide. Every yosys run
is bounded (:data:`PROOF_TIMEOUT`, :data:`BMC_TIMEOUT`; ``nice -n 15``); past it: ``not proven``.
A proof holds at its configurations only: a mutant could differ at a size no proof
configuration has (the memories' 2 entries use one address bit). The score leaves out three
kinds of equivalents, counted apart: ``equivalent`` (the tests' Verilog identical or proven the
same), ``proven_equivalent`` and ``judged_equivalent`` (by hand, not proven).

Stopping and resuming: each finished mutant is written to the report at once, atomically (a
temporary file in the report's directory, then ``os.replace``; SIGINT and SIGTERM are held
during the write). On SIGTERM or SIGINT the running tests' process group is killed, the
temporary copy removed (the working tree's ``rtl/`` is never edited), and the tool exits
128 + the signal (143, 130) with one line saying how many mutants the report holds.
``--resume`` keeps the mutants already in ``--out`` and runs only the others; it refuses (one
line naming what differs) a report made from other ``rtl/`` sources (``rtl_sha256``), other
tests (``tests_sha256``: ``cocotb_tests/``, ``sim/``, ``golden/``) or other options
(``options``). ``--from-index K`` leaves out the first K mutants of each file's sample (run
by an earlier report).

The report (``build/mutate/mutate.json``, or ``--out``): per file the mutants run, the
counts, both scores, every survivor and every equivalent (line, the original and the mutated
text, why it is or is not equivalent), for a reviewer to judge. The unmutated Verilog and each
survivor's differing files stay in ``<report stem>-verilog/`` beside it (``--keep-verilog``).

Usage::

    python -m sim.analysis.mutate rtl/core.py rtl/ppu.py --mutants 30 --sim icarus --seed 0
    python -m sim.analysis.mutate rtl/core.py rtl/ppu.py --mutants 30 --resume  # after a stop
"""

from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from sim.util import UserError

__all__ = ["Mutant", "mutants_of", "apply", "run", "main", "COVERING", "verilog_digest",
           "same_function", "state_matched_equivalent", "verilog_equivalent", "judge",
           "summarize", "wilson", "traced_lines", "rejudge", "YOSYS_FLOW", "YOSYS_READ",
           "YOSYS_PROVE", "YOSYS_READ_MAPPED", "YOSYS_BMC", "PROOF_CONFIGS", "PROOF_SIZES",
           "prove_mutant", "refute", "export_core", "mutants_named", "EQUIVALENT_OUTCOMES"]

REPO = Path(__file__).resolve().parents[2]
#: What the temporary copy holds (the tests need nothing else).
COPY = ("rtl", "sim", "golden", "cocotb_tests", "tests", "pyproject.toml", "models")
#: Tests that cover each generator file (pytest node ids, relative to the repository).
COVERING = {
    # the random contract tests and every feature the core generates from its routes and
    # flags: fault injection, zero skipping, the bit-counter and FA/FS lanes, the FA array
    "rtl/core.py": ["cocotb_tests/test_core_random.py", "cocotb_tests/test_core_move.py",
                    "cocotb_tests/test_core_faults.py", "cocotb_tests/test_core_zero_skip.py",
                    "cocotb_tests/test_core_bitcount.py", "cocotb_tests/test_core_dima.py",
                    "cocotb_tests/test_core_jeit_fa.py"],
    "rtl/fa_array.py": ["cocotb_tests/test_core_jeit_fa.py"],
    "rtl/ppu.py": ["cocotb_tests/test_ppu.py", "cocotb_tests/test_ppu_threshold.py"],
}
#: Functions never mutated (parameter checks and plain accessors, not hardware).
SKIP_FUNCS = {"__init__", "_check_param", "_check_count", "_check_field"}

_BINOP_SWAPS = {ast.Add: [ast.Sub], ast.Sub: [ast.Add], ast.BitAnd: [ast.BitOr, ast.BitXor],
                ast.BitOr: [ast.BitAnd, ast.BitXor], ast.BitXor: [ast.BitOr],
                ast.LShift: [ast.RShift], ast.RShift: [ast.LShift], ast.Mult: [ast.Add],
                ast.FloorDiv: [ast.Mult], ast.Mod: [ast.FloorDiv]}
_CMP_SWAPS = {ast.Lt: [ast.LtE, ast.GtE], ast.LtE: [ast.Lt], ast.Gt: [ast.GtE, ast.LtE],
              ast.GtE: [ast.Gt], ast.Eq: [ast.NotEq], ast.NotEq: [ast.Eq]}


@dataclass(frozen=True)
class Mutant:
    """One edit: the source span (1-based lines, 0-based columns, as ``ast`` gives them) of
    an expression, its text and the text that replaces it."""
    file: str
    kind: str
    line: int
    col: int
    end_line: int
    end_col: int
    original: str
    mutated: str


def _hardware_functions(tree):
    """Function bodies that build hardware: every function but :data:`SKIP_FUNCS` and
    properties."""
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name not in SKIP_FUNCS:
            if any(isinstance(d, ast.Name) and d.id == "property" for d in node.decorator_list):
                continue
            yield node


def _skipped_spans(func):
    """Lines of statements not to mutate: raises, asserts, docstrings."""
    lines = set()
    for node in ast.walk(func):
        if isinstance(node, (ast.Raise, ast.Assert)):
            lines.update(range(node.lineno, node.end_lineno + 1))
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            lines.update(range(node.lineno, node.end_lineno + 1))
    return lines


def _variants(node):
    """``(kind, mutated node)`` for one expression node."""
    out = []
    if isinstance(node, ast.BinOp):
        for new in _BINOP_SWAPS.get(type(node.op), []):
            out.append((f"binop {type(node.op).__name__}->{new.__name__}",
                        ast.BinOp(node.left, new(), node.right)))
    elif isinstance(node, ast.Compare) and len(node.ops) == 1:
        for new in _CMP_SWAPS.get(type(node.ops[0]), []):
            out.append((f"compare {type(node.ops[0]).__name__}->{new.__name__}",
                        ast.Compare(node.left, [new()], node.comparators)))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Invert, ast.Not)):
        out.append((f"drop {type(node.op).__name__}", node.operand))
    elif (isinstance(node, ast.Constant) and type(node.value) is int):
        out.append(("constant +1", ast.Constant(node.value + 1)))
        if node.value > 0:
            out.append(("constant -1", ast.Constant(node.value - 1)))
    elif isinstance(node, ast.Slice):
        for name in ("lower", "upper"):
            bound = getattr(node, name)
            if bound is not None:
                for delta in (1, -1):
                    new = ast.Slice(node.lower, node.upper, node.step)
                    setattr(new, name, ast.BinOp(bound, ast.Add() if delta > 0 else ast.Sub(),
                                                 ast.Constant(1)))
                    out.append((f"slice {name} {delta:+d}", new))
    elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
          and node.func.id == "Mux" and len(node.args) == 3):
        a = node.args
        out.append(("Mux arms swapped", ast.Call(node.func, [a[0], a[2], a[1]], node.keywords)))
    return out


def _conditions(func):
    """``if`` tests and ``m.If`` / ``m.Elif`` conditions (inverted: ``not`` / ``~``)."""
    for node in ast.walk(func):
        if isinstance(node, ast.If):
            yield "if inverted", node.test, ast.UnaryOp(ast.Not(), node.test)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("If", "Elif") and len(node.args) == 1):
            yield (f"m.{node.func.attr} inverted", node.args[0],
                   ast.UnaryOp(ast.Invert(), node.args[0]))


def mutants_of(path: str | Path, *, root: Path = REPO) -> list[Mutant]:
    """Every mutant of one file, in source order."""
    path = Path(path)
    rel = str(path.resolve().relative_to(root.resolve()))
    source = path.read_text()
    tree = ast.parse(source)
    found, seen = [], set()

    # the source text of a node, as ast.get_source_segment gives it (which splits the whole
    # source on every call: minutes for the core's sites); columns are UTF-8 byte offsets
    split = [ln.encode() for ln in io.StringIO(source, newline="").readlines()]

    def text(node):
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return split[first][node.col_offset:node.end_col_offset].decode()
        return b"".join([split[first][node.col_offset:], *split[first + 1:last],
                         split[last][:node.end_col_offset]]).decode()

    def add(kind, node, new):
        if not hasattr(node, "lineno"):
            return
        key = (node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, kind)
        if key in seen:
            return
        seen.add(key)
        mutated = ast.unparse(new)
        if not isinstance(new, ast.Slice):
            mutated = f"({mutated})"
        found.append(Mutant(rel, kind, node.lineno, node.col_offset, node.end_lineno,
                            node.end_col_offset, text(node), mutated))

    for func in _hardware_functions(tree):
        skip = _skipped_spans(func)
        for node in ast.walk(func):
            if getattr(node, "lineno", None) in skip or isinstance(node, ast.FunctionDef):
                continue
            for kind, new in _variants(node):
                add(kind, node, new)
        for kind, node, new in _conditions(func):
            if node.lineno not in skip:
                add(kind, node, new)
    found.sort(key=lambda m: (m.line, m.col, m.kind))
    return found


def apply(source: str, mutant: Mutant) -> str:
    """``source`` with ``mutant``'s span replaced by its mutated text."""
    lines = source.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line.encode()))
    data = source.encode()
    start = offsets[mutant.line - 1] + mutant.col
    end = offsets[mutant.end_line - 1] + mutant.end_col
    return (data[:start] + mutant.mutated.encode() + data[end:]).decode()


def _copy_repo(dest: Path) -> None:
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.pyc", "sim_build", "build"))
        elif src.exists():
            shutil.copy2(src, dest / name)


#: Environment of a pytest run that records the lines of one file it executes
#: (:func:`pytest_configure`): the file, and where the JSON list of lines goes.
TRACE_FILE, TRACE_OUT = "SPINPIM_MUTATE_TRACE_FILE", "SPINPIM_MUTATE_TRACE_OUT"


#: Source of the line tracer (standard library only: it also runs as the ``sitecustomize`` of
#: every Python process of the unmutated run, :func:`_run_tests`, before any import of ours).
#: ``start(target, out)`` records the lines of the file ``target`` that run in this process
#: (every thread) and rewrites ``out``, a JSON list, atomically whenever a new line runs (a
#: simulator may end without running Python's exit handlers).
_TRACER = """
import json, os, sys, threading


def start(target, out):
    target = os.path.realpath(target)
    seen, codes = set(), {}

    def note(line):
        if line not in seen:
            seen.add(line)
            with open(out + ".part", "w") as f:
                json.dump(sorted(seen), f)
            os.replace(out + ".part", out)

    def local(frame, event, arg):
        if event == "line":
            note(frame.f_lineno)
        return local

    def calls(frame, event, arg):
        code = frame.f_code
        mine = codes.get(code)
        if mine is None:
            mine = codes[code] = os.path.realpath(code.co_filename) == target
        if mine:
            note(frame.f_lineno)
            return local
        return None

    sys.settrace(calls)
    threading.settrace(calls)
"""
#: The ``sitecustomize`` of the unmutated run: with :data:`TRACE_FILE` set, trace this process
#: into ``<TRACE_OUT>.pid-<pid>`` (the simulators' embedded Python, where the cocotb side runs).
_SITECUSTOMIZE = _TRACER + """

if os.environ.get("SPINPIM_MUTATE_TRACE_FILE") and os.environ.get("SPINPIM_MUTATE_TRACE_OUT"):
    start(os.environ["SPINPIM_MUTATE_TRACE_FILE"],
          os.environ["SPINPIM_MUTATE_TRACE_OUT"] + ".pid-" + str(os.getpid()))
"""


def pytest_configure(config):
    """Pytest hook (``-p sim.analysis.mutate``): with :data:`TRACE_FILE` set, record which lines
    of that file run in the pytest process (the elaboration) into :data:`TRACE_OUT`. The
    unmutated run of :func:`_run_tests` traces every Python process instead (the pytest
    process and the simulators', where the cocotb side runs: an ``rtl`` helper that encodes a
    test's stimulus) through a ``sitecustomize``. A mutant on lines that never ran in any of
    them builds the same hardware and drives the same stimulus in every test: it is
    *uncovered*, not run and not killed."""
    target, out = os.environ.get(TRACE_FILE), os.environ.get(TRACE_OUT)
    if not target or not out:
        return
    space: dict = {}
    exec(_TRACER, space)
    space["start"](target, out)


def traced_lines(out: Path) -> set | None:
    """The lines recorded under ``out`` (:data:`TRACE_OUT`) by every traced process of a run,
    ``None`` if none recorded any."""
    out = Path(out)
    files = [p for p in [out, *out.parent.glob(out.name + ".pid-*")]
             if p.is_file() and not p.name.endswith(".part")]
    if not files:
        return None
    return set().union(*(json.loads(p.read_text()) for p in files))


def _kill_group(proc) -> None:
    """SIGKILL the process group of ``proc`` (the tests and every simulator they started) and
    reap ``proc``; a group already gone is no error."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _run_tests(workdir: Path, tests: list[str], sim: str, timeout: float, programs: int,
               trace: Path | None = None, traced: Path | None = None):
    """``(outcome, seconds, tail of output)``: outcome ``survived``, ``killed``,
    ``killed_timeout``. With ``trace`` (a file) the lines of it that run in any Python process
    of the run are written under ``traced`` (:func:`traced_lines`)."""
    env = dict(os.environ, SIM=sim, PYTHONPATH=str(workdir), SPINPIM_SEED="1",
               SPINPIM_RANDOM_PROGRAMS=str(programs), PYTHONDONTWRITEBYTECODE="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if trace is not None:               # every Python process of the run: its sitecustomize
        site = Path(workdir) / ".mutate-trace"
        site.mkdir(exist_ok=True)
        (site / "sitecustomize.py").write_text(_SITECUSTOMIZE)
        for old in Path(traced).parent.glob(Path(traced).name + ".pid-*"):
            old.unlink()
        env.update({TRACE_FILE: str(trace), TRACE_OUT: str(traced),
                    "PYTHONPATH": f"{site}{os.pathsep}{workdir}"})
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", *tests]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return "killed_timeout", time.monotonic() - t0, ""
    except BaseException:               # Ctrl-C / SIGTERM (:class:`Stopped`): its own session
        _kill_group(proc)               # gets no SIGINT, stop it and the simulators it started
        raise
    took = time.monotonic() - t0
    tail = "\n".join(out.strip().splitlines()[-3:])
    return ("survived" if proc.returncode == 0 else "killed"), took, tail


def verilog_digest(workdir: Path) -> dict:
    """``{path: sha256}`` of every Verilog file the tests wrote under ``workdir/build/sim``
    (the hardware they simulated: the design and its bench, per build directory)."""
    root = Path(workdir) / "build" / "sim"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.v")) if p.is_file()}


#: Yosys script that turns one generated Verilog file into the netlist :func:`same_function`
#: compares: processes and hierarchy flattened, memories kept as cells, constant folding and
#: dead-logic removal (``opt``, ``opt_clean -purge``), widths reduced (``wreduce``), then
#: gates of one bit (``techmap``) and ``opt`` again. Every pass keeps the module's function at
#: its ports (yosys's optimisations preserve it, init values included).
YOSYS_FLOW = ("read_verilog -sv {src}; hierarchy -check -top {top}; proc; flatten; opt_clean; "
              "memory -nomap; opt; wreduce; opt_clean; techmap; opt; opt_clean -purge; "
              "write_json {out}")
#: Gates whose inputs commute (their input classes are compared as a multiset).
_COMMUTATIVE = {"$_AND_", "$_OR_", "$_XOR_", "$_NAND_", "$_NOR_", "$_XNOR_"}


def _netlist(verilog: Path, top: str, scratch: Path) -> dict:
    """The module ``top`` of ``verilog`` after :data:`YOSYS_FLOW` (yosys's JSON)."""
    yosys = shutil.which("yosys")
    if yosys is None:
        raise UserError("yosys not found on PATH: the equivalence check needs it "
                        "(Debian package yosys, make synth-deps)")
    out = scratch / f"{verilog.stem}.{os.getpid()}.json"
    script = YOSYS_FLOW.format(src=verilog, top=top, out=out)
    proc = subprocess.run([yosys, "-q", "-p", script], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"yosys failed on {verilog}: {proc.stderr.strip()[-300:]}")
    try:
        return json.loads(out.read_text())["modules"][top]
    finally:
        out.unlink(missing_ok=True)


def same_function(gold: dict, gate: dict) -> tuple[bool, str]:
    """Whether two netlists (:func:`_netlist`) compute the same function at their ports.

    Sound, not complete: ``True`` only when the ports are the same and every output bit of
    ``gate`` lands in the same class as the same bit of ``gold`` under colour refinement of
    both netlists together. A net's class starts from what drives it (an input port bit, a
    constant, or a cell: its type, parameters, output bit and the init value of that net) and
    is refined by the classes of the cell's inputs (in port order; as a multiset for gates whose
    inputs commute) until no class splits. Two nets in one class therefore have the same
    unrolled computation from the inputs, the constants and the init values, cycle by cycle
    (flip-flops and memories included: a memory cell's read data is refined by every input of
    the cell), so they carry the same value in every cycle of every input sequence. An undriven
    net is a class of its own. ``False`` says only that this argument did not prove it (the
    reason names the first differing port bit).
    """
    gp, tp = gold["ports"], gate["ports"]
    sig = {n: (p["direction"], len(p["bits"])) for n, p in gp.items()}
    if sig != {n: (p["direction"], len(p["bits"])) for n, p in tp.items()}:
        return False, "the ports differ"
    nets = []                              # per design: net bit -> (label, input net bits)
    for mod in (gold, gate):
        init = {}
        for net in mod.get("netnames", {}).values():
            value = net.get("attributes", {}).get("init")
            if isinstance(value, str) and set(value) <= set("01xz"):
                for j, bit in enumerate(net["bits"]):
                    if j < len(value):
                        init[bit] = value[len(value) - 1 - j]
        drive = {}
        for name, port in mod["ports"].items():
            if port["direction"] == "input":
                for j, bit in enumerate(port["bits"]):
                    drive[bit] = (("in", name, j), ())
        for cell in mod.get("cells", {}).values():
            dirs, conns = cell.get("port_directions", {}), cell["connections"]
            ins = tuple(b for p in sorted(conns) if dirs.get(p) == "input" for b in conns[p])
            params = tuple(sorted((k, str(v)) for k, v in cell.get("parameters", {}).items()))
            for p in sorted(conns):
                if dirs.get(p) == "output":
                    for j, bit in enumerate(conns[p]):
                        if isinstance(bit, int):
                            drive[bit] = ((cell["type"], params, p, j, init.get(bit),
                                           cell["type"] in _COMMUTATIVE), ins)
        nets.append(drive)
    # the nets the outputs depend on, in both designs; a node is (design, net bit)
    todo = [(d, b) for d, mod in enumerate((gold, gate)) for p in mod["ports"].values()
            if p["direction"] == "output" for b in p["bits"]]
    label, inputs = {}, {}
    while todo:
        node = todo.pop()
        if node in label:
            continue
        d, bit = node
        if isinstance(bit, str):                          # a constant bit "0" "1" "x" "z"
            label[node], inputs[node] = ("const", bit), ()
            continue
        if bit not in nets[d]:
            label[node], inputs[node] = ("undriven", d, bit), ()
            continue
        lab, ins = nets[d][bit]
        label[node], inputs[node] = lab, tuple((d, b) for b in ins)
        todo.extend(inputs[node])
    ids: dict = {}
    colour = {n: ids.setdefault(("l", lab), len(ids)) for n, lab in label.items()}
    classes = len(set(colour.values()))
    while True:
        new = {}
        for n, ins in inputs.items():
            cs = [colour[i] for i in ins]
            if label[n][-1] is True:                      # commuting gate inputs
                cs.sort()
            new[n] = ids.setdefault((colour[n], tuple(cs)), len(ids))
        count = len(set(new.values()))
        colour = new
        if count == classes:
            break
        classes = count
    for name, port in gp.items():
        if port["direction"] != "output":
            continue
        for j, (a, b) in enumerate(zip(port["bits"], tp[name]["bits"], strict=True)):
            if colour[(0, a)] != colour[(1, b)]:
                return False, f"output {name}[{j}] not proven the same"
    return True, "same function at the ports"


#: Yosys script that reads one generated Verilog file for :func:`state_matched_equivalent`:
#: processes and hierarchy flattened, memories collected into one cell each, no optimisation
#: (which could split or merge the registers of one design and not the other's).
YOSYS_READ = ("read_verilog -sv {src}; hierarchy -check -top {top}; proc; flatten; "
              "hierarchy -top {top}; opt_clean; memory_collect; opt_clean; write_json {out}")
#: Yosys script that proves the two cut netlists the same: a miter of both, optimised (identical
#: logic of the two merges), then one SAT proof over every value of the ports (inputs and the
#: state cut out), inputs defined, undefined bits modelled.
YOSYS_PROVE = ("read_json {src}; miter -equiv -flatten -make_outputs gold gate miter; "
               "hierarchy -top miter; opt; "
               "sat -verify -enable_undef -set-def-inputs -prove trigger 0 miter")


_CUT_CACHE: dict = {}


def _yosys_run(yosys: str, script: str, limit: float | None = None, nice: bool = False):
    """``yosys -q -p script`` (at ``nice -n 15`` if ``nice``): the completed process, or
    ``None`` when it ran past ``limit`` seconds (then it is killed, with its process group)."""
    cmd = (["nice", "-n", "15"] if nice and shutil.which("nice") else []) + [
        yosys, "-q", "-p", script]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None
    except BaseException:
        _kill_group(proc)
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _is_state(kind: str) -> bool:
    """Whether a yosys cell type keeps state (a flip-flop, latch or memory)."""
    k = kind.upper()
    return kind.startswith("$mem") or any(w in k for w in ("DFF", "LATCH", "$SR", "_SR_", "$FF",
                                                           "_FF_"))


def _cut_state(mod: dict) -> tuple[dict | None, str]:
    """``mod`` (yosys JSON after :data:`YOSYS_READ`) with every state cell cut out: its
    outputs become input ports ``cut_<hash of key>_<port>`` and its inputs output ports
    ``cut_<hash of key>_in_<port>``; ``(None, reason)`` when a state cell has no key (a
    memory cell other than ``$mem_v2``, or a cell that is not a yosys primitive). The key of a
    register is the stable net name of each of its output bits (:func:`_stable_name`); of a
    memory, its name. A register with a bit that has only generated names (Amaranth's ``$393``
    for an unnamed signal, renumbered by any mutant that adds or removes one) is keyed by
    :func:`_anonymous_keys`: its type, parameters, width and init value and its rank among the
    registers alike in the order of their generated names. Any pairing of the two designs'
    state keeps the proof sound (see :func:`state_matched_equivalent`); a wrong pairing only
    makes the SAT proof fail. Also returns, under ``"state"``, each key's type, parameters and
    init value, which must be the same in both designs."""
    canon = {}
    for name, net in mod.get("netnames", {}).items():
        if net.get("hide_name", 0) or not _stable_name(name):
            continue
        for j, bit in enumerate(net["bits"]):
            if isinstance(bit, int):
                canon[bit] = min(canon.get(bit, (name, j)), (name, j))
    init = {}
    for net in mod.get("netnames", {}).values():
        value = net.get("attributes", {}).pop("init", None)
        if isinstance(value, str):
            for j, bit in enumerate(net["bits"]):
                if j < len(value):
                    init[bit] = value[len(value) - 1 - j]
    ports, cells, state = dict(mod["ports"]), {}, {}
    anonymous = _anonymous_keys(mod, canon, init)
    for cname, cell in mod.get("cells", {}).items():
        kind = cell["type"]
        if not kind.startswith("$"):
            return None, f"an instance of {kind} (not flattened)"
        if not _is_state(kind):
            cells[cname] = cell
            continue
        dirs, conns = cell.get("port_directions", {}), cell["connections"]
        if kind.startswith("$mem"):
            if kind != "$mem_v2":
                return None, f"a memory cell {kind} not collected"
            key = f"mem {cell['parameters'].get('MEMID')}"
            out_bits = []
        else:
            out_bits = [b for p in conns if dirs.get(p) == "output" for b in conns[p]]
            key = anonymous.get(cname) or ("reg " + ",".join(f"{canon[b][0]}[{canon[b][1]}]"
                                                            for b in out_bits))
        if key in state:
            return None, f"two state cells with the key {key}"
        state[key] = (kind, sorted((k, str(v)) for k, v in cell.get("parameters", {}).items()),
                      [init.get(b) for b in out_bits])
        tag = "cut_" + hashlib.sha256(key.encode()).hexdigest()[:16]
        if kind == "$mem_v2":
            conns = _effective_writes(mod, cells, cname, cell)
        for p in sorted(conns):
            if dirs.get(p) == "output":
                ports[f"{tag}_{p}"] = {"direction": "input", "bits": conns[p]}
            elif dirs.get(p) == "input":
                ports[f"{tag}_in_{p}"] = {"direction": "output", "bits": conns[p]}
            else:
                return None, f"{kind} {cname}: port {p} of unknown direction"
    return {**mod, "ports": ports, "cells": cells, "state": state}, ""


def _stable_name(name: str) -> bool:
    """Whether a net name (yosys JSON) is one a mutant does not renumber: not yosys's own
    (``$procdff$12``) nor Amaranth's name of an unnamed signal (``$393``, ``\\$393`` in the
    Verilog)."""
    return not name.lstrip("\\").startswith("$")


def _anonymous_keys(mod: dict, canon: dict, init: dict) -> dict:
    """``{cell name: key}`` for the registers of ``mod`` with an output bit that has no stable
    name (not in ``canon``). Registers alike (type, parameters, width, init value) are ranked
    by their generated names (the numbers of the smallest first: Amaranth numbers unnamed
    signals in the order it creates them, which a mutant shifts but rarely reorders); the key
    is the likeness and the rank. Only the ranking is a guess: a register paired with a
    different one of the other design is no unsound step, the SAT proof then fails."""
    names: dict = {}
    for name, net in mod.get("netnames", {}).items():
        for bit in net["bits"]:
            if isinstance(bit, int):
                names.setdefault(bit, []).append(name)

    def order(name):
        digits = "".join(ch if ch.isdigit() else " " for ch in name).split()
        return tuple(int(d) for d in digits), name

    groups: dict = {}
    for cname, cell in mod.get("cells", {}).items():
        kind = cell["type"]
        if not kind.startswith("$") or not _is_state(kind) or kind.startswith("$mem"):
            continue
        dirs, conns = cell.get("port_directions", {}), cell["connections"]
        out_bits = [b for p in sorted(conns) if dirs.get(p) == "output" for b in conns[p]]
        if all(b in canon for b in out_bits):
            continue
        like = json.dumps([kind, sorted((k, str(v)) for k, v in
                                        cell.get("parameters", {}).items()),
                           [init.get(b) for b in out_bits]])
        rank = sorted(min((order(n) for n in names.get(b, ["~"])), default=order("~"))
                      for b in out_bits)
        groups.setdefault(like, []).append((rank, cname))
    keys = {}
    for like, members in groups.items():
        tag = hashlib.sha256(like.encode()).hexdigest()[:12]
        for i, (_, cname) in enumerate(sorted(members)):
            keys[cname] = f"anonymous reg {tag} #{i}"
    return keys


def _effective_writes(mod: dict, cells: dict, cname: str, mem: dict) -> dict:
    """The connections of the memory cell ``mem`` (``$mem_v2``) with its write ports' inputs
    replaced by what a write does to the memory, built from new cells added to ``cells``
    (nets numbered after ``mod``'s): per port, the enable bits ``en & in_range(addr)``, the
    address where any of them is set (else 0), and the data where its enable is set (else 0).

    A write to an address outside ``[OFFSET, OFFSET + SIZE)`` changes nothing (a Verilog
    array ignores it, as yosys's memory mapping does); nor do the address and data of a write
    whose enable is clear, nor a data bit whose enable bit is clear. Two designs whose effective
    writes are the same therefore move every memory to the same next state, so comparing these
    instead of the raw inputs keeps :func:`state_matched_equivalent` sound: it proves only
    what the memory itself cannot tell apart (a mutant that enables writes beyond the
    memory's end)."""
    def param(name):                     # yosys writes integers as binary strings
        v = mem["parameters"][name]
        return v if isinstance(v, int) else int(v, 2)

    width, abits, size = param("WIDTH"), param("ABITS"), param("SIZE")
    offset, ports = param("OFFSET"), param("WR_PORTS")
    conns = dict(mem["connections"])
    if ports == 0:
        return conns
    used = [b for m in (mod.get("netnames", {}).values()) for b in m["bits"]]
    used += [b for c in mod.get("cells", {}).values() for v in c["connections"].values()
             for b in v]
    used += [b for c in cells.values() for v in c["connections"].values() for b in v]
    fresh = iter(range(max([b for b in used if isinstance(b, int)] + [1]) + 1, 1 << 62))

    def new(n):
        return [next(fresh) for _ in range(n)]

    def cell(kind, a, b, y, **extra):
        params = {"A_SIGNED": 0, "B_SIGNED": 0, "A_WIDTH": len(a), "Y_WIDTH": len(y)}
        conn, dirs = {"A": a, "Y": y}, {"A": "input", "Y": "output"}
        if b is not None:
            params["B_WIDTH"], conn["B"], dirs["B"] = len(b), b, "input"
        else:
            params.pop("B_SIGNED")
        cells[f"$effective_write${cname}${len(cells)}"] = {
            "hide_name": 1, "type": kind, "parameters": params, "attributes": {},
            "port_directions": dirs, "connections": conn}

    def const(value, n):
        return [str((value >> j) & 1) for j in range(n)]

    en_all, addr_all, data_all = [], [], []
    for p in range(ports):
        en = conns["WR_EN"][p * width:(p + 1) * width]
        addr = conns["WR_ADDR"][p * abits:(p + 1) * abits]
        data = conns["WR_DATA"][p * width:(p + 1) * width]
        below, above = new(1), new(1)
        cell("$lt", addr, const(offset + size, abits + 1), below)
        if offset:
            cell("$ge", addr, const(offset, abits + 1), above)
        else:
            above = ["1"]
        inside = new(1)
        cell("$and", below, above, inside)
        en_eff, any_en = new(width), new(1)
        cell("$and", en, inside * width, en_eff)
        cell("$reduce_or", en_eff, None, any_en)
        addr_eff, data_eff = new(abits), new(width)
        cell("$and", addr, any_en * abits, addr_eff)
        cell("$and", data, en_eff, data_eff)
        en_all += en_eff
        addr_all += addr_eff
        data_all += data_eff
    return {**conns, "WR_EN": en_all, "WR_ADDR": addr_all, "WR_DATA": data_all}


def state_matched_equivalent(gold: Path, gate: Path, top: str, scratch: Path, *,
                             read: str = YOSYS_READ, limit: float | None = None,
                             nice: bool = False) -> tuple[bool, str]:
    """Whether two Verilog files of one design are the same function at the ports, by
    induction over matched state.

    Sound, not complete: ``True`` only when (1) both designs have the same state cells under
    the same keys (registers by the stable names of their bits, else by likeness and rank,
    :func:`_anonymous_keys`; memories by name) with the same type, parameters and init
    values, and (2) yosys's SAT solver proves, for every value
    of the inputs and of every state cell's outputs (the same in both), that every output port
    and every input of every state cell are the same in both (:func:`_cut_state`,
    :data:`YOSYS_PROVE`). By induction over the cycles both designs then start in the same
    state, see the same inputs and move to the same state, so their outputs agree in every
    cycle of every input sequence. The induction holds for any pairing of the state cells
    by key (it needs only that paired cells start alike and step alike), so how the keys are
    found decides what can be proven, never whether a proof is right. This proves what
    colour refinement cannot: a mutated operand of a NOP that selects a value no output uses
    in that cycle, a constant whose change a later operation masks. A memory's write ports
    are compared by what they do to it (:func:`_effective_writes`): a write beyond the
    memory's end, or the address and data of a disabled write, is no change, as in the
    memory itself.

    ``read`` is the yosys script that reads each file (:data:`YOSYS_READ`, or
    :data:`YOSYS_READ_MAPPED` for :func:`prove_mutant`); ``limit`` bounds each yosys run
    (seconds: past it the result is ``False``, "timed out"); ``nice`` runs yosys at
    ``nice -n 15``.
    """
    yosys = shutil.which("yosys")
    if yosys is None:
        raise UserError("yosys not found on PATH: the equivalence check needs it "
                        "(Debian package yosys, make synth-deps)")
    mods = []
    for src in (gold, gate):
        key = (hashlib.sha256(src.read_bytes()).hexdigest(), top, read)
        if key not in _CUT_CACHE:            # the baseline's file recurs for every mutant
            out = scratch / f"read.{os.getpid()}.json"
            proc = _yosys_run(yosys, read.format(src=src, top=top, out=out), limit, nice)
            if proc is None:
                return False, f"yosys timed out reading {src.name} (limit {limit:.0f} s)"
            if proc.returncode != 0:
                return False, f"yosys could not read {src.name}: {proc.stderr.strip()[-200:]}"
            _CUT_CACHE[key] = _cut_state(json.loads(out.read_text())["modules"][top])
            out.unlink(missing_ok=True)
        cut, why = _CUT_CACHE[key]
        if cut is None:
            return False, why
        mods.append(copy.deepcopy(cut))
    a, b = (m.pop("state") for m in mods)
    if set(a) != set(b):
        return False, f"the state differs: {sorted(set(a) ^ set(b))[:3]}"
    for key in a:
        if a[key] != b[key]:
            return False, f"state {key} differs in type, parameters or init value"
    both = scratch / f"cut.{os.getpid()}.json"
    both.write_text(json.dumps({"modules": {"gold": mods[0], "gate": mods[1]}}))
    try:
        proc = _yosys_run(yosys, YOSYS_PROVE.format(src=both), limit, nice)
    finally:
        both.unlink(missing_ok=True)
    if proc is None:
        return False, f"the SAT proof over matched state timed out (limit {limit:.0f} s)"
    if proc.returncode == 0:
        return True, f"same function at the ports ({len(a)} state cells matched, SAT proof)"
    return False, "the SAT proof over matched state failed"


def verilog_equivalent(gold: Path, gate: Path, scratch: Path) -> tuple[bool, str]:
    """Whether two Verilog files the tests wrote describe the same hardware at its ports:
    byte-identical, or a test bench (``*_tb.v``, written from the ports alone) identical, or a
    design whose netlists :func:`same_function` proves the same (the toplevel module is named
    like the file)."""
    a, b = Path(gold).read_bytes(), Path(gate).read_bytes()
    if a == b:
        return True, "identical Verilog"
    if Path(gold).stem.endswith("_tb"):
        return False, f"{Path(gold).name}: the test bench differs (the ports changed)"
    same, why = state_matched_equivalent(Path(gold), Path(gate), Path(gold).stem, scratch)
    if not same and not why.startswith("the SAT proof"):
        # the state did not match by name: colour refinement needs no names
        try:
            same, why2 = same_function(_netlist(Path(gold), Path(gold).stem, scratch),
                                       _netlist(Path(gate), Path(gate).stem, scratch))
        except RuntimeError as e:
            same, why2 = False, str(e)
        why = why2 if same else f"{why}; {why2}"
    return same, f"{Path(gold).name}: {why}"


def _keep_verilog(workdir: Path, dest: Path, paths) -> None:
    """Copy the Verilog files ``paths`` (relative to ``workdir/build/sim``) under ``dest``."""
    root = Path(workdir) / "build" / "sim"
    for rel in paths:
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / rel, dest / rel)


def judge(base_dir: Path, mutant_dir: Path, differing, cache=None) -> tuple[bool, str]:
    """Whether every file of ``differing`` (paths relative to both directories: the Verilog a
    survivor's tests wrote that is not the unmutated source's) is :func:`verilog_equivalent`
    to the baseline's; the reason names the first file that is not (or how many differ)."""
    cache = {} if cache is None else cache
    with tempfile.TemporaryDirectory(prefix="spinpim-equiv-") as scratch:
        # the smallest designs first: a mutant they tell apart fails fast
        for rel in sorted(differing, key=lambda r: ((Path(base_dir) / r).stat().st_size
                                                     if (Path(base_dir) / r).is_file() else 0, r)):
            gold, gate = Path(base_dir) / rel, Path(mutant_dir) / rel
            if not gold.is_file() or not gate.is_file():
                return False, f"{rel}: written by only one of the two runs"
            key = (gold.read_bytes(), gate.read_bytes())
            if key not in cache:
                cache[key] = verilog_equivalent(gold, gate, Path(scratch))
            same, why = cache[key]
            if not same:
                return False, f"{rel}: {why}"
    return True, (f"{len(differing)} Verilog files differ in text, each the same function at "
                  "its ports" if differing else "identical Verilog")


def _judge_survivor(work: Path, baseline: dict, keep: Path, i: int, now: bool = True):
    """``(outcome, extra report fields)`` of a mutant whose tests passed."""
    digest = verilog_digest(work)
    if digest == baseline:
        return "equivalent", {"equivalence": "identical Verilog"}
    if set(digest) != set(baseline):
        return "survived", {"equivalence": "not proven: the tests wrote other Verilog files"}
    differing = [p for p in digest if digest[p] != baseline[p]]
    mdir = keep / f"m{i:03d}"
    _keep_verilog(work, mdir, differing)
    kept = {"verilog": str(mdir), "differing": sorted(differing)}
    if not now:
        return "survived", {"equivalence": "not judged yet (--rejudge)", **kept}
    same, why = judge(keep / "baseline", mdir, differing)
    return ("equivalent" if same else "survived"), {
        "equivalence": why if same else f"not proven: {why}", **kept}


#: The unmutated run's own limit (seconds): it sets the mutants' default limit, so it may not
#: be cut short by it (``make mutate``'s core tests took over 17 min under load).
BASELINE_TIMEOUT = 6 * 3600.0


def mutant_timeout(timeout: float | None, unmutated_s: float) -> float:
    """The per-mutant limit: ``timeout`` if given, else 3x the unmutated run's time, at least
    60 s (ASSUMPTION: a mutant that runs three times as long as the passing tests is stuck)."""
    return float(timeout) if timeout is not None else max(60.0, 3.0 * unmutated_s)


#: Survivors judged equivalent by a reviewer where :func:`judge` cannot prove it (its check is
#: sound, not complete). A survivor matches an entry by its file, the stripped text of its
#: source line, its column, its kind and its mutated text (not the line number, which moves as
#: the file is edited), and becomes ``equivalent`` with the entry's reason. Only survivors are
#: matched: a listed mutant that some test kills is reported killed, so a wrong entry can hide
#: no test's failure; it can only leave a survivor out of ``score`` (``score_raw`` counts it).
#: An entry applies only where :func:`prove_mutant` neither proves nor refutes the survivor (or
#: proofs are off, ``--no-prove``); the outcome is then ``judged_equivalent``. Each of today's
#: four entries is proven at every proof configuration that generates it (``--prove judged``;
#: docs/assumptions.rst), so a run with proofs classes them ``proven_equivalent``.
_NOP_OPERANDS = ("MtjArray's NOP case holds sensed, error and program_without_erase and "
                 "enables no write port, so no operand of a NOP reaches an output (row_a / "
                 "row_b only address the combinational read ports, whose data nothing uses "
                 "then; fu, data and mask feed only the sense and write cases); the array "
                 "command is internal to the core")
JUDGED_EQUIVALENT = [
    {"file": "rtl/core.py",
     "source": "m.d.comb += array_cmd(MacroCmd.NOP, 0, 0, 0, 0, 0)", "col": 56,
     "after": "with m.Case(Opcode.MOVE):", "kind": "constant +1", "mutated": "(1)",
     "reason": f"row_a of a NOP array command (MOVE's S1): {_NOP_OPERANDS}"},
    {"file": "rtl/core.py",
     "source": "m.d.comb += array_cmd(MacroCmd.NOP, 0, 0, 0, 0, 0)", "col": 76,
     "after": "with m.Else():", "kind": "constant +1", "mutated": "(1)",
     "reason": f"mask of a NOP array command (BITCOUNT without a sense): {_NOP_OPERANDS}"},
    {"file": "rtl/core.py",
     "source": "m.d.comb += [reduces.eq(0), min3.eq(0), requant3.eq(0), ptr3.eq(v2)]",
     "col": 52, "after": "with m.Case(Opcode.MOVE):", "kind": "constant +1", "mutated": "(1)",
     "reason": "min3 during MOVE's S3 only routes w2 and the min lane's output to the reducers' "
               "row_w / row_min; reduces is 0 for MOVE, so every reducer's op is HOLD, which "
               "keeps acc and ignores row_w / row_min (ColumnReduce: only L1_FIRST / L1_PLANE "
               "read them); nothing else reads min3"},
    {"file": "rtl/core.py", "source": "g_sum = Signal(OFFSET_BITS + 1)", "col": 37,
     "kind": "constant -1", "mutated": "(0)",
     "reason": "GATHER's address sum one bit narrower: only g_sum[:OFFSET_BITS] is ever read "
               "(g_addr1), and the low OFFSET_BITS bits of base + offset are the same at either "
               "width; the dropped top bit is the carry nothing uses"},
]


def _judged_by_hand(source: str, m: Mutant) -> tuple[str, dict]:
    """``("judged_equivalent", fields)`` if the survivor ``m`` of ``source`` is in
    :data:`JUDGED_EQUIVALENT`, else ``("survived", {})``. ``after`` (if the entry has it) is the
    stripped text of the nearest ``with`` line above the mutant's line, which tells repeated
    lines apart."""
    lines = source.splitlines()
    text = lines[m.line - 1].strip()
    above = next((ln.strip() for ln in reversed(lines[:m.line - 1])
                  if ln.strip().startswith("with ")), "")
    for e in JUDGED_EQUIVALENT:
        if (e["file"], e["source"], e["col"], e["kind"], e["mutated"],
                e.get("after", above)) == (m.file, text, m.col, m.kind, m.mutated, above):
            return "judged_equivalent", {"equivalence": f"judged by hand (JUDGED_EQUIVALENT): "
                                                       f"{e['reason']}"}
    return "survived", {}


# ---- formal proof of a survivor at small configurations (prove_mutant) ----------------------

#: The configurations a survivor is proven at (:func:`prove_mutant`): ``(preset, routes added)``,
#: each cut to :data:`PROOF_FIELDS` and built with :data:`PROOF_SIZES`. Together they generate
#: every route's lanes and micro-ops (``jeit_stt``: abs_diff, jeit_fa, zero skipping and the
#: stall logic; ``nand_spin`` with ``nand_inmem``: the bit-counters, BITCOUNT and LOADPLANE;
#: ``dima_sot``: the DIMA routes; ``imac_sot``; then ``jeit_stt`` at two subarrays, for the code
#: that selects one subarray's result). ASSUMPTION: the smallest sizes that still generate each
#: block (8 x 8 arrays, the 2-entry memories the core accepts) keep the SAT problems small
#: enough for minutes on one core; a mutant is proven only at these configurations.
PROOF_CONFIGS = (("jeit_stt", (), 1), ("nand_spin", ("nand_inmem",), 1), ("dima_sot", (), 1),
                 ("imac_sot", (), 1), ("jeit_stt", (), 2))
#: Configuration fields of every proof configuration (the arrays' rows and columns; one mat).
PROOF_FIELDS = {"rows": 8, "columns": 8, "mats": 1}
#: Memory sizes of the core at a proof configuration (``rtl.core.Core``'s overrides): the
#: smallest it accepts, so that :data:`YOSYS_READ_MAPPED` maps every memory to few flip-flops.
PROOF_SIZES = {"imem_depth": 2, "buffer_slots": 2, "channels": 1, "out_depth": 2,
               "offset_depth": 2, "patch_depth": 2}
#: Seconds each yosys run of a proof may take (ASSUMPTION: the brief's bound of about ten
#: minutes at a small configuration; past it the mutant is "not proven").
PROOF_TIMEOUT = 600.0
#: Cycles from reset the bounded search for a counterexample covers (:data:`YOSYS_BMC`), and
#: the seconds it may take (ASSUMPTION: enough to load a one-word program, start it and see
#: its first micro-ops leave S3; the whole core unrolled further took over 10 min).
BMC_CYCLES, BMC_TIMEOUT = 8, 120.0
#: Yosys script that reads a proof configuration's Verilog for
#: :func:`state_matched_equivalent`: as :data:`YOSYS_READ`, but every memory mapped to
#: flip-flops and multiplexers (``memory_map``), so that a read whose data no output uses (the
#: MTJ array's combinational read ports during a NOP) is no difference, and each memory word is
#: a register matched like any other.
YOSYS_READ_MAPPED = ("read_verilog -sv {src}; hierarchy -check -top {top}; proc; flatten; "
                     "hierarchy -top {top}; opt_clean; memory -nomap; memory_map; opt_clean; "
                     "write_json {out}")
#: Yosys script of the bounded search for a counterexample (:func:`refute`): both designs read
#: as by :data:`YOSYS_READ_MAPPED`, a miter of them, and a SAT search, one cycle more at a
#: time up to ``{cycles}`` (the base case of temporal induction alone: a bounded model check),
#: from the initial state (every register's init value, which is its reset value; any register
#: without one starts at 0 in both) for inputs that make an output differ.
YOSYS_BMC = ("read_verilog -sv {gold}; hierarchy -check -top {top}; proc; flatten; "
             "memory -nomap; memory_map; opt_clean; rename {top} gold; design -stash gold; "
             "read_verilog -sv {gate}; hierarchy -check -top {top}; proc; flatten; "
             "memory -nomap; memory_map; opt_clean; rename {top} gate; design -stash gate; "
             "design -copy-from gold -as gold gold; design -copy-from gate -as gate gate; "
             "miter -equiv -flatten -make_outputs -ignore_gold_x gold gate miter; "
             "hierarchy -top miter; opt_clean; "
             "sat -verify -tempinduct -tempinduct-baseonly -maxsteps {cycles} -set-init-zero "
             "-set-def-inputs -prove trigger 0 miter")
#: Exports the core's Verilog at one proof configuration (run with ``PYTHONPATH`` at a copy
#: of ``rtl/``, the original or a mutant's): argv ``preset routes subarrays sizes out``.
_EXPORT = """
import dataclasses, json, sys
from amaranth.back import verilog
from rtl.config import preset
from rtl.core import Core
name, routes, k, fields, sizes, out = sys.argv[1:]
cfg = preset(name)
added = tuple(r for r in json.loads(routes) if r not in cfg.routes)
cfg = dataclasses.replace(cfg, **json.loads(fields), subarrays_per_mat=int(k),
                          routes=cfg.routes + added)
core = Core(config=cfg, subarrays=int(k), faults=False, **json.loads(sizes))
with open(out, "w") as f:
    f.write(verilog.convert(core, name="core", emit_src=False))
"""


def proof_config_name(preset_name: str, routes=(), subarrays: int = 1) -> str:
    """The name of a proof configuration in the report, e.g. ``nand_spin+nand_inmem K=1``."""
    return f"{preset_name}{''.join('+' + r for r in routes)} K={subarrays}"


def export_core(rtl_root: Path, config, dest: Path, limit: float = PROOF_TIMEOUT) -> str | None:
    """Write the core's Verilog at the proof configuration ``config`` (``(preset, routes,
    subarrays)``) as generated by the ``rtl/`` under ``rtl_root`` to ``dest``; ``None`` when it
    elaborates, else the last line of the error."""
    name, routes, k = config
    proc = subprocess.run(
        [sys.executable, "-c", _EXPORT, name, json.dumps(list(routes)), str(k),
         json.dumps(PROOF_FIELDS), json.dumps(PROOF_SIZES), str(dest)],
        env=dict(os.environ, PYTHONPATH=str(rtl_root), PYTHONDONTWRITEBYTECODE="1"),
        cwd=rtl_root, capture_output=True, text=True, timeout=limit)  # -c: cwd is sys.path[0]
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        return lines[-1] if lines else f"exit code {proc.returncode}"
    return None


def refute(gold: Path, gate: Path, top: str = "core", cycles: int = BMC_CYCLES,
           limit: float = PROOF_TIMEOUT) -> tuple[str, str]:
    """Search for inputs that make two designs' outputs differ within ``cycles`` cycles from
    their initial state (:data:`YOSYS_BMC`): ``("refuted", how)`` if yosys finds them (the
    mutant is not equivalent at this configuration), ``("no counterexample", ...)`` if none
    exists in that many cycles, ``("timed out", ...)`` past ``limit`` seconds."""
    yosys = shutil.which("yosys")
    if yosys is None:
        raise UserError("yosys not found on PATH: the equivalence proof needs it "
                        "(Debian package yosys, make synth-deps)")
    script = YOSYS_BMC.format(gold=gold, gate=gate, top=top, cycles=cycles)
    proc = _yosys_run(yosys, script, limit, nice=True)
    if proc is None:
        return "timed out", f"no counterexample within {limit:.0f} s"
    if proc.returncode == 0:
        return "no counterexample", f"outputs equal for every input in {cycles} cycles from reset"
    if "proof did fail" in proc.stderr:     # yosys: "Called with -verify and proof did fail!"
        return "refuted", (f"yosys found inputs that make an output differ within {cycles} "
                           "cycles from reset (miter, bounded sat)")
    raise RuntimeError(f"yosys failed: {proc.stderr.strip()[-300:]}")


def prove_mutant(m: Mutant, *, configs=PROOF_CONFIGS, limit: float = PROOF_TIMEOUT,
                 cycles: int = BMC_CYCLES, log=None, root: Path = REPO) -> dict:
    """Prove a mutant the same hardware as the unmutated source, or refute it, with yosys.

    For each configuration of ``configs`` (:data:`PROOF_CONFIGS`) the core's Verilog is
    exported from ``root``'s ``rtl/`` and from a temporary copy with the mutant applied
    (the working tree is never edited). Where the two differ, :func:`state_matched_equivalent`
    with :data:`YOSYS_READ_MAPPED` proves them the same at the core's ports: both designs'
    state (every register and, memories mapped, every memory word) paired, the same init
    (= reset) values, and a SAT proof that from any equal state and any equal inputs the
    outputs and the next state are equal. By induction from the initial state this holds in
    every cycle of every input sequence, reset included: an unbounded proof. If it fails,
    :func:`refute` searches for a counterexample of :data:`BMC_CYCLES` cycles from reset.

    Returns ``{"status", "method", "configs": [per configuration: name, result, seconds]}``,
    ``status`` one of ``proven`` (the Verilog differs at some configuration and is proven the
    same at every one where it differs), ``refuted`` (a counterexample from reset at one),
    ``not proven`` (neither, within ``limit`` seconds per yosys run), ``not generated`` (the
    mutated code is in no configuration's Verilog: nothing to prove), ``not elaborated``
    (the mutant does not elaborate at a configuration: it is different hardware).
    """
    if log is None:
        def log(text):
            print(text, flush=True)
    rel = m.file
    original = (root / rel).read_text()
    done, status = [], None
    with tempfile.TemporaryDirectory(prefix="spinpim-prove-") as tmp:
        tmp = Path(tmp)
        shutil.copytree(root / "rtl", tmp / "gate" / "rtl",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (tmp / "gate" / rel).write_text(apply(original, m))
        for config in configs:
            cname = proof_config_name(*config)
            gold, gate = tmp / f"gold-{len(done)}.v", tmp / f"gate-{len(done)}.v"
            t0 = time.monotonic()
            err = export_core(root, config, gold, limit)
            if err is not None:
                raise RuntimeError(f"the unmutated core does not elaborate at {cname}: {err}")
            err = export_core(tmp / "gate", config, gate, limit)
            if err is not None:
                entry = {"config": cname, "result": f"the mutant does not elaborate: {err}"}
                status = "not elaborated"
            elif gold.read_bytes() == gate.read_bytes():
                entry = {"config": cname, "result": "identical Verilog (mutated code not "
                                                    "generated here)"}
            else:
                same, why = state_matched_equivalent(gold, gate, "core", tmp,
                                                     read=YOSYS_READ_MAPPED, limit=limit,
                                                     nice=True)
                if same:
                    entry = {"config": cname, "result": f"proven: {why}"}
                else:
                    verdict, how = refute(gold, gate, "core", cycles, min(limit, BMC_TIMEOUT))
                    entry = {"config": cname, "result": f"not proven ({why}); {verdict}: {how}"}
                    status = "refuted" if verdict == "refuted" else "not proven"
            entry["seconds"] = round(time.monotonic() - t0, 1)
            done.append(entry)
            log(f"  {rel} line {m.line} {m.kind} at {cname}: {entry['result']} "
                f"({entry['seconds']} s)")
            if status is not None:
                break
    if status is None:
        status = ("proven" if any(e["result"].startswith("proven") for e in done)
                  else "not generated")
    return {"status": status, "method": PROOF_METHOD, "configs": done}


#: What :func:`prove_mutant` proves, for the report.
PROOF_METHOD = ("yosys: the core's Verilog of the unmutated and the mutated rtl/ at each proof "
                "configuration (PROOF_CONFIGS cut to PROOF_FIELDS, memories of PROOF_SIZES, no "
                "fault injection); memories mapped to flip-flops (YOSYS_READ_MAPPED); every "
                "register and memory word paired with equal init (= reset) values; a SAT proof "
                "(YOSYS_PROVE) that equal state and inputs give equal outputs and next state: by "
                "induction, equal outputs in every cycle from reset for every input sequence "
                "(unbounded); else a counterexample searched over BMC_CYCLES cycles from reset "
                "(YOSYS_BMC)")


def _refuted(fields: dict) -> bool:
    """Whether a mutant's report fields hold a proof that refuted it (a real survivor, which
    no hand judgement may call equivalent)."""
    return (fields.get("proof") or {}).get("status") == "refuted"


def _proof_outcome(m: Mutant, log=None) -> tuple[str, dict]:
    """``(outcome, report fields)`` of a survivor after :func:`prove_mutant`:
    ``proven_equivalent`` if proven, else ``survived`` (with the proof's result)."""
    try:
        proof = prove_mutant(m, log=log)
    except (RuntimeError, OSError, subprocess.SubprocessError) as e:
        return "survived", {"proof": {"status": "not proven", "error": str(e)[-300:]}}
    if proof["status"] == "proven":
        where = ", ".join(e["config"] for e in proof["configs"]
                          if e["result"].startswith("proven"))
        return "proven_equivalent", {"proof": proof,
                                     "equivalence": f"proven by yosys at {where}"}
    return "survived", {"proof": proof}


#: What a result is for (``--resume``): the mutant, not its position in a report.
_IDENTITY = ("file", "kind", "line", "col", "end_line", "end_col", "original", "mutated")


def _identity(entry: dict) -> tuple:
    return tuple(entry.get(k) for k in _IDENTITY)


def _finished(report: dict | None) -> dict:
    """``{identity: result}`` of every mutant result in ``report``."""
    return {_identity(r): r for f in (report or {}).get("files", {}).values()
            for r in f.get("mutants", [])}


def sources_digest(*dirs: str) -> str:
    """sha256 over the relative path and bytes of every ``.py`` file under ``dirs`` of the
    repository (this tool's own file left out: editing it changes no test's outcome)."""
    h = hashlib.sha256()
    me = Path(__file__).resolve()
    for d in dirs:
        for p in sorted((REPO / d).rglob("*.py")):
            if p.resolve() == me or "__pycache__" in p.parts:
                continue
            h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()


def run_identity(options: dict) -> dict:
    """The report fields ``--resume`` compares: the sources (``rtl_sha256`` the mutated
    generator, ``tests_sha256`` the tests and what they compare against) and the options."""
    return {"rtl_sha256": sources_digest("rtl"),
            "tests_sha256": sources_digest("cocotb_tests", "sim", "golden"),
            "options": options}


def resume_check(old: dict, identity: dict, path) -> None:
    """Refuse (:class:`UserError`, one line) to resume ``old`` when it was made from other
    sources or with other options than ``identity`` (:func:`run_identity`)."""
    for key, what in (("rtl_sha256", "rtl/ sources"),
                      ("tests_sha256", "tests (cocotb_tests/, sim/, golden/)")):
        if old.get(key) != identity[key]:
            raise UserError(f"--resume {path}: made from other {what} ({key} "
                            f"{str(old.get(key))[:12]} here {identity[key][:12]}); start over "
                            f"without --resume or with another --out")
    had = old.get("options") or {}
    for k, v in identity["options"].items():
        if had.get(k) != v:
            raise UserError(f"--resume {path}: made with {k}={had.get(k)!r}, this run has "
                            f"{k}={v!r}; use the same options or start over without --resume")


class Stopped(BaseException):
    """A SIGTERM or SIGINT reached :func:`main` (raised from its handler)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class _signals_held:
    """Hold SIGINT and SIGTERM while the block runs (a report write, the removal of the
    temporary copy): a signal then is delivered after it, never half-way through it."""

    def __enter__(self):
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})

    def __exit__(self, *exc):
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)
        return False


def _file_report(covering, every, limit, results) -> dict:
    return {"tests": covering, "sites": len(every), "timeout_s": limit, **summarize(results)}


def run(files, *, mutants: int, sim: str, seed: int, timeout: float | None, tests=None,
        programs: int = 60, lines=None, log=None, keep_dir: Path | None = None,
        progress=None, judge_now: bool = True, done: dict | None = None,
        from_index: int = 0, prove: bool = False) -> dict:
    """Mutate each of ``files`` (a sample of ``mutants`` per file, all if 0), run the covering
    tests on each mutant; return the report (a JSON-able dict). The sampled mutants run in the
    sample's random order, so the first k of them are a random sample too (``from_index`` k
    leaves out the first k, run by an earlier report); ``progress``, if given, is called with
    the report so far (``"partial": true``) after every mutant. With ``judge_now`` false a
    survivor's Verilog is only kept, for :func:`rejudge` later. ``done`` (a report of the same
    options and sources, :func:`resume_check`) gives results already finished: those mutants
    are not run again, a file whose sample is all done is not run at all. With ``prove`` a
    survivor the tests' Verilog does not show equivalent is given to :func:`prove_mutant`:
    proven, it is ``proven_equivalent``; else :data:`JUDGED_EQUIVALENT` may judge it."""
    if log is None:
        def log(text):
            print(text, flush=True)
    report = {"sim": sim, "seed": seed, "timeout_s": timeout, "files": {}}
    finished = _finished(done)
    work = Path(tempfile.mkdtemp(prefix="spinpim-mutate-"))
    try:
        _copy_repo(work)
        for f in files:
            rel = str(Path(f).resolve().relative_to(REPO))
            covering = tests or COVERING.get(rel)
            if not covering:
                raise UserError(f"{rel}: no covering tests known (they are for "
                                f"{', '.join(COVERING)}); name them with --tests")
            original = (REPO / rel).read_text()
            every = mutants_of(REPO / rel)
            if lines:
                every = [m for m in every if m.line in lines]
            sample = (random.Random(f"{seed}:{rel}").sample(every, min(mutants, len(every)))
                      if mutants else every)
            sample = sample[from_index:]
            # per sampled mutant its result, in the sample's order (None: not run yet)
            slots = [finished.get(_identity(asdict(m))) for m in sample]
            results = [r for r in slots if r is not None]

            if len(results) == len(sample):
                old = (done or {}).get("files", {}).get(rel, {})
                report["files"][rel] = _file_report(covering, every, old.get("timeout_s"),
                                                    results)
                log(f"{rel}: all {len(sample)} mutants done in the resumed report")
                continue
            # the unmutated copy must pass first: otherwise every mutant is "killed"
            traced = work / "traced-lines.json"
            traced.unlink(missing_ok=True)
            outcome, took, tail = _run_tests(work, covering, sim, BASELINE_TIMEOUT, programs,
                                             trace=work / rel, traced=traced)
            ran = traced_lines(traced)
            if outcome != "survived":
                raise UserError(f"{rel}: the covering tests fail without a mutation "
                                f"({outcome}): {tail}")
            limit = mutant_timeout(timeout, took)
            baseline = verilog_digest(work)
            # the unmutated Verilog, and each survivor's differing files, for the equivalence
            # check (kept under keep_dir for a reviewer, else in the temporary copy); a resumed
            # run keeps the earlier survivors' files
            keep = Path(keep_dir or work / "verilog-kept") / Path(rel).stem
            if not results:
                shutil.rmtree(keep, ignore_errors=True)
            _keep_verilog(work, keep / "baseline", baseline)
            log(f"{rel}: {len(sample)} of {len(every)} mutants ({len(results)} done before); "
                f"tests pass unmutated in {took:.0f} s")
            target = work / rel
            try:
                for i, m in enumerate(sample):
                    if slots[i] is not None:
                        continue
                    entry = {}
                    if ran is not None and not ran & set(range(m.line, m.end_line + 1)):
                        outcome, took = "uncovered", 0.0
                        entry = {"output": "no test runs these lines"}
                    else:
                        target.write_text(apply(original, m))
                        outcome, took, tail = _run_tests(work, covering, sim, limit, programs)
                        target.write_text(original)
                        entry = {"output": tail}
                        if outcome == "survived" and baseline:
                            outcome, more = _judge_survivor(work, baseline, keep,
                                                            i + from_index, judge_now)
                            entry.update(more)
                        if outcome == "survived" and prove:
                            outcome, more = _proof_outcome(m, log)
                            entry.update(more)
                        if outcome == "survived" and not _refuted(entry):
                            outcome, more = _judged_by_hand(original, m)
                            entry.update(more)
                    slots[i] = {**asdict(m), "outcome": outcome, "seconds": round(took, 1),
                                **entry}
                    results = [r for r in slots if r is not None]
                    log(f"  [{i + 1}/{len(sample)}] line {m.line} {m.kind}: {m.original!r} -> "
                        f"{m.mutated!r}: {outcome} ({took:.0f} s)")
                    if progress is not None:
                        progress({**report, "partial": True, "planned": len(sample),
                                  "files": {**report["files"], rel: _file_report(
                                      covering, every, limit, results)}})
            finally:
                target.write_text(original)
            report["files"][rel] = _file_report(covering, every, limit, results)
    finally:
        with _signals_held():
            shutil.rmtree(work, ignore_errors=True)
    return report


def wilson(k: int, n: int, z: float = 1.96) -> list | None:
    """The Wilson score interval ``[low, high]`` of a proportion of ``k`` in ``n`` (95 % for
    the default ``z``), ``None`` for ``n = 0``: the range of a file's mutation score that its
    sampled mutants support (``n`` the mutants judged, not the file's sites)."""
    if n <= 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return [round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)]


def summarize(results: list[dict]) -> dict:
    """The counts, ``score`` (killed / (run - the three kinds of :data:`EQUIVALENT_OUTCOMES`))
    with its 95 % Wilson interval
    ``score_ci95`` (:func:`wilson`), ``score_raw`` (killed / run), the
    survivors, the uncovered and the equivalents of one file's mutant results (an uncovered
    mutant counts as not killed in both scores)."""
    counts = {k: sum(r["outcome"] == k for r in results)
              for k in ("killed", "killed_timeout", "survived", "uncovered", "equivalent",
                        "proven_equivalent", "judged_equivalent")}
    killed = counts["killed"] + counts["killed_timeout"]
    judged = len(results) - sum(counts[k] for k in EQUIVALENT_OUTCOMES)
    return {"run": len(results), **counts,
            "score": round(killed / judged, 4) if judged else None,
            "score_ci95": wilson(killed, judged),
            "score_raw": round(killed / len(results), 4) if results else None,
            "survivors": [r for r in results if r["outcome"] == "survived"],
            "uncovered_mutants": [r for r in results if r["outcome"] == "uncovered"],
            "equivalents": [r for r in results if r["outcome"] in EQUIVALENT_OUTCOMES],
            "mutants": results}


#: Outcomes left out of ``score`` (``score_raw`` counts them): ``equivalent`` (the tests'
#: Verilog identical or proven the same, :func:`judge`), ``proven_equivalent`` (proven the
#: same at the small proof configurations, :func:`prove_mutant`), ``judged_equivalent`` (by a
#: reviewer, :data:`JUDGED_EQUIVALENT`; not proven).
EQUIVALENT_OUTCOMES = ("equivalent", "proven_equivalent", "judged_equivalent")


def rejudge(report: dict, log=print, prove: bool = False) -> dict:
    """``report`` with every survivor (and every mutant judged equivalent by hand) judged
    again, when the report was made from today's ``rtl/`` (whose source the mutants are
    applied to): with ``prove``, one that :func:`prove_mutant` proves becomes
    ``proven_equivalent``; else one in :data:`JUDGED_EQUIVALENT` becomes ``judged_equivalent``
    with its reason. Any other survivor whose differing Verilog was kept is judged by
    :func:`judge` (proven the same: ``equivalent``); scores recomputed."""
    same_rtl = report.get("rtl_sha256") == sources_digest("rtl")
    for rel, r in report["files"].items():
        cache: dict = {}
        for m in r["mutants"]:
            if m["outcome"] == "judged_equivalent":      # judged again below
                m["outcome"] = "survived"
            if m["outcome"] == "survived" and same_rtl:
                mutant = Mutant(**{k: m[k] for k in _IDENTITY})
                outcome, more = (_proof_outcome(mutant, log) if prove
                                 else ("survived", {}))
                if outcome == "survived" and not _refuted(more):
                    outcome, hand = _judged_by_hand((REPO / rel).read_text(), mutant)
                    more.update(hand)
                m.update(outcome=outcome, **more)
                if outcome != "survived":
                    log(f"{rel} line {m['line']} {m['kind']}: {outcome} ({m['equivalence']})")
            if m["outcome"] != "survived" or "verilog" not in m:
                continue
            mdir = Path(m["verilog"])
            same, why = judge(mdir.parent / "baseline", mdir, m["differing"], cache)
            if same:
                m["outcome"] = "equivalent"
            m["equivalence"] = why if same else f"not proven: {why}"
            log(f"{rel} line {m['line']} {m['kind']}: {m['outcome']} ({m['equivalence']})")
        report["files"][rel] = {**{k: v for k, v in r.items()
                                   if k in ("tests", "sites", "timeout_s")},
                              **summarize(r["mutants"])}
    return report


def _write_report(report: dict, out: Path) -> None:
    """Write ``report`` to ``out`` atomically: a temporary file in the same directory, then
    ``os.replace`` (a reader sees the old report or the new one, never part of one), with
    SIGINT / SIGTERM held meanwhile and the temporary file removed if the write fails."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with _signals_held():
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(json.dumps(report, indent=1) + "\n")
            mask = os.umask(0)              # mkstemp's 0600 -> an ordinary file's mode
            os.umask(mask)
            os.chmod(tmp, 0o666 & ~mask)
            os.replace(tmp, out)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _print_scores(report: dict, out: Path) -> None:
    for rel, r in report["files"].items():
        k = r["killed"] + r["killed_timeout"]
        proven, hand = r.get("proven_equivalent", 0), r.get("judged_equivalent", 0)
        same = r["equivalent"]
        print(f"{rel}: score {r['score']} (95 % Wilson interval {r.get('score_ci95')}; "
              f"{k} of {r['run'] - same - proven - hand} killed: "
              f"{r['killed']} by a failing test or build, {r['killed_timeout']} by the "
              f"timeout; left out as equivalent: {same} the same hardware in the tests' "
              f"Verilog, {proven} proven equivalent by yosys at the proof configurations, "
              f"{hand} judged equivalent by hand, not proven); "
              f"{r['survived']} survivors, {r['uncovered']} uncovered (no test runs the "
              f"line); score_raw {r['score_raw']} ({k} of {r['run']})")
    print(f"report: {out}")


def _rejudge_main(path: Path, prove: bool = False) -> int:
    try:
        report = json.loads(path.read_text())
        report["files"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"--rejudge {path}: not a report of sim.analysis.mutate ({e})") from None
    report = rejudge(report, prove=prove)
    _write_report(report, path)
    _print_scores(report, path)
    return 0


def mutants_named(specs) -> list[Mutant]:
    """The mutants ``specs`` names (``--prove``): ``judged`` is every :data:`JUDGED_EQUIVALENT`
    entry's mutant; ``FILE:LINE:COL`` every mutant at that site, ``FILE:LINE:COL:KIND`` the one
    of that kind. :class:`UserError` (one line) for a spec that names none."""
    found = []
    for spec in specs:
        if spec == "judged":
            for e in JUDGED_EQUIVALENT:
                source = (REPO / e["file"]).read_text()
                found += [m for m in mutants_of(REPO / e["file"])
                          if m.col == e["col"] and m.kind == e["kind"]
                          and _judged_by_hand(source, m)[1].get("equivalence", "").endswith(
                              e["reason"])]
            continue
        parts = spec.split(":", 3)
        if len(parts) < 3 or not parts[1].isdigit() or not parts[2].isdigit():
            raise UserError(f"--prove {spec}: must be 'judged' or FILE:LINE:COL[:KIND] "
                            "(e.g. rtl/core.py:937:56:constant +1)")
        if "\x00" in parts[0]:
            raise UserError(f"--prove {spec!r}: a file name cannot hold a NUL byte")
        path = (REPO / parts[0]).resolve()
        if not path.is_file() or path.suffix != ".py" or path.parent != REPO / "rtl":
            raise UserError(f"--prove {spec}: {parts[0]} must be a Python file under rtl/")
        hits = [m for m in mutants_of(path) if (m.line, m.col) == (int(parts[1]), int(parts[2]))
                and (len(parts) == 3 or m.kind == parts[3])]
        if not hits:
            raise UserError(f"--prove {spec}: no mutant there (sites are FILE:LINE:COL of "
                            "mutants_of; KIND as in a report, e.g. 'constant +1')")
        found += hits
    return found


def _prove_main(specs, out: Path) -> int:
    mutants = mutants_named(specs)
    results = []
    for m in mutants:
        print(f"{m.file} line {m.line} col {m.col} {m.kind}: {m.original!r} -> {m.mutated!r}",
              flush=True)
        t0 = time.monotonic()
        proof = prove_mutant(m)
        results.append({**asdict(m), **proof, "seconds": round(time.monotonic() - t0, 1)})
        print(f"  {proof['status']} ({results[-1]['seconds']} s)", flush=True)
    _write_report({"rtl_sha256": sources_digest("rtl"), "yosys": _yosys_version(),
                   "proofs": results}, out)
    print(f"proofs: {out}")
    return 0


def _yosys_version() -> str:
    yosys = shutil.which("yosys")
    if yosys is None:
        return "none"
    return subprocess.run([yosys, "-V"], capture_output=True, text=True).stdout.strip()


def _count_results(out: Path) -> int:
    try:
        return len(_finished(json.loads(out.read_text())))
    except (OSError, ValueError, AttributeError):
        return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.analysis.mutate",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="*", help="rtl/ files to mutate")
    ap.add_argument("--mutants", type=int, default=30,
                    help="mutants sampled per file (0: all of them); default 30")
    ap.add_argument("--sim", default="icarus", help="icarus (default) or verilator")
    ap.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    ap.add_argument("--timeout", type=float, default=None,
                    help="seconds per mutant before it counts as killed by timeout (default: 3x "
                         "the unmutated run's time, at least 60 s)")
    ap.add_argument("--tests", nargs="*", default=None,
                    help="pytest node ids to run instead of the covering tests")
    ap.add_argument("--programs", type=int, default=60,
                    help="random programs of cocotb_tests/test_core_random.py per mutant")
    ap.add_argument("--lines", type=int, nargs="*", default=None,
                    help="only the mutants on these source lines")
    ap.add_argument("--out", default=None,
                    help="JSON report (default build/mutate/mutate.json)")
    ap.add_argument("--keep-verilog", default=None,
                    help="directory for the unmutated Verilog and each survivor's differing "
                         "files (default: beside the report, <out stem>-verilog)")
    ap.add_argument("--judge-later", action="store_true",
                    help="keep each survivor's Verilog but prove no equivalence during the run "
                         "(a design's proof takes minutes); --rejudge the report afterwards")
    ap.add_argument("--rejudge", default=None, metavar="REPORT",
                    help="run no tests: judge the survivors of REPORT again (their kept "
                         "Verilog) with this version's equivalence check, rewrite REPORT")
    ap.add_argument("--from-index", type=int, default=0, metavar="K",
                    help="leave out the first K mutants of each file's sample (run by an "
                         "earlier report that has no --resume fields); default 0")
    ap.add_argument("--prove", nargs="+", default=None, metavar="MUTANT",
                    help="run no tests: prove mutants equivalent to the unmutated source with "
                         "yosys (prove_mutant) and write the results to --out (default "
                         "build/mutate/proofs.json); MUTANT is 'judged' (every "
                         "JUDGED_EQUIVALENT entry) or FILE:LINE:COL[:KIND] of a mutant")
    ap.add_argument("--no-prove", action="store_true",
                    help="do not try to prove the survivors equivalent (prove_mutant) during "
                         "the run or --rejudge")
    ap.add_argument("--resume", action="store_true",
                    help="keep the mutants already in --out (made from the same rtl/ and tests "
                         "with the same options, else refused) and run only the others")
    args = ap.parse_args(argv)
    # SIGTERM / SIGINT: stop the running tests (their process group), remove the temporary
    # copy, keep the report of the mutants finished (written after each), exit 128 + signal
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def stop(signum, frame):
        for s in handlers:                  # one stop: a second signal changes nothing
            signal.signal(s, signal.SIG_IGN)
        raise Stopped(signum)

    for s in handlers:
        signal.signal(s, stop)
    try:
        return _main(args)
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)


def _main(args) -> int:
    out = None
    try:
        if args.prove:
            return _prove_main(args.prove, Path(args.out) if args.out
                               else REPO / "build" / "mutate" / "proofs.json")
        if args.rejudge:
            return _rejudge_main(Path(args.rejudge), prove=not args.no_prove)
        if not args.files:
            raise UserError("no files to mutate: name rtl/ files (MUTATE_FILES) or --rejudge")
        if args.sim not in ("icarus", "verilator"):
            raise UserError(f"SIM={args.sim}: must be icarus or verilator")
        if args.mutants < 0:
            raise UserError(f"MUTANTS={args.mutants}: must be 0 (all) or more")
        if args.timeout is not None and not args.timeout > 0:
            raise UserError(f"--timeout {args.timeout}: must be a number of seconds > 0 "
                            "(leave it out for 3x the unmutated run's time)")
        for f in args.files:
            if "\x00" in f:
                raise UserError(f"{f!r}: a file name cannot hold a NUL byte; name Python files "
                                "under rtl/ (MUTATE_FILES)")
            p = Path(f).resolve()
            if not p.is_file() or p.suffix != ".py" or p.parent != REPO / "rtl":
                raise UserError(f"{f}: must be a Python file under rtl/ (MUTATE_FILES)")
        if args.from_index < 0:
            raise UserError(f"--from-index {args.from_index}: must be 0 or more")
        out = Path(args.out) if args.out else REPO / "build" / "mutate" / "mutate.json"
        ident = run_identity({
            "files": [str(Path(f).resolve().relative_to(REPO)) for f in args.files],
            "mutants": args.mutants, "sim": args.sim, "seed": args.seed,
            "timeout": args.timeout, "tests": args.tests, "programs": args.programs,
            "lines": sorted(set(args.lines or ())), "from_index": args.from_index,
            "judge_later": args.judge_later})
        done = None
        if args.resume and out.exists():
            try:
                done = json.loads(out.read_text())
                done["files"].items()
            except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
                raise UserError(f"--resume {out}: not a report of sim.analysis.mutate "
                                f"({e})") from None
            resume_check(done, ident, out)
        report = run(args.files, mutants=args.mutants, sim=args.sim, seed=args.seed,
                     timeout=args.timeout, tests=args.tests, programs=args.programs,
                     lines=set(args.lines or ()),
                     keep_dir=Path(args.keep_verilog) if args.keep_verilog
                     else out.with_name(f"{out.stem}-verilog"),
                     progress=lambda partial: _write_report({**ident, **partial}, out),
                     judge_now=not args.judge_later, done=done,
                     from_index=args.from_index,
                     prove=not args.judge_later and not args.no_prove)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (Stopped, KeyboardInterrupt) as e:
        signum = e.signum if isinstance(e, Stopped) else signal.SIGINT
        if args.rejudge:
            print(f"stopped by {signal.Signals(signum).name}: --rejudge {args.rejudge} left as "
                  "it was", file=sys.stderr)
            return 128 + signum
        if args.prove:
            print(f"stopped by {signal.Signals(signum).name}: yosys killed, temporary copy "
                  "removed, rtl/ unchanged; no proofs written", file=sys.stderr)
            return 128 + signum
        kept = "no report" if out is None or not out.exists() else (
            f"{out} holds the {_count_results(out)} mutants finished")
        print(f"stopped by {signal.Signals(signum).name}: tests killed, temporary copy removed, "
              f"rtl/ unchanged; {kept} (--resume runs the rest)", file=sys.stderr)
        return 128 + signum
    _write_report({**ident, **report}, out)
    _print_scores(report, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
