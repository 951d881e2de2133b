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
mutant that hangs the core is caught); it *survives* when they pass. A survivor whose
generated Verilog (every ``.v`` file the tests wrote under ``build/sim``) is byte for byte the
unmutated source's is ``equivalent``: the tests simulated the very same hardware, so no test
of these configurations can kill it (trivial compiler equivalence; such a mutant may still
differ in a configuration no test builds: the report lists them). The score is ``killed /
(run - equivalent)``; ``score_raw`` is ``killed / run``. The temporary copy is removed at the
end, also on Ctrl-C.

The report (``build/mutate/<file stem>.json``, or ``--out``): per file the mutants run, the
counts, the score ``killed / run`` and every survivor (line, the original and the mutated
text), for a reviewer to judge (some survivors are equivalent mutants: no test can kill them).

Usage::

    python -m sim.analysis.mutate rtl/core.py rtl/ppu.py --mutants 30 --sim icarus --seed 0
"""

from __future__ import annotations

import argparse
import ast
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

__all__ = ["Mutant", "mutants_of", "apply", "run", "main", "COVERING", "verilog_digest"]

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
    "rtl/ppu.py": ["cocotb_tests/test_ppu.py"],
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

    def text(node):
        return ast.get_source_segment(source, node) or ""

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


def _run_tests(workdir: Path, tests: list[str], sim: str, timeout: float, programs: int):
    """``(outcome, seconds, tail of output)``: outcome ``survived``, ``killed``,
    ``killed_timeout``."""
    env = dict(os.environ, SIM=sim, PYTHONPATH=str(workdir), SPINPIM_SEED="1",
               SPINPIM_RANDOM_PROGRAMS=str(programs), PYTHONDONTWRITEBYTECODE="1",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    cmd = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
           "-p", "no:randomly", *tests]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return "killed_timeout", time.monotonic() - t0, ""
    except BaseException:               # Ctrl-C: its own session gets no SIGINT, stop it
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    took = time.monotonic() - t0
    tail = "\n".join(out.strip().splitlines()[-3:])
    return ("survived" if proc.returncode == 0 else "killed"), took, tail


def verilog_digest(workdir: Path) -> dict:
    """``{path: sha256}`` of every Verilog file the tests wrote under ``workdir/build/sim``
    (the hardware they simulated: the design and its bench, per build directory)."""
    import hashlib
    root = Path(workdir) / "build" / "sim"
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.v")) if p.is_file()}


def run(files, *, mutants: int, sim: str, seed: int, timeout: float, tests=None,
        programs: int = 60, lines=None, log=None) -> dict:
    """Mutate each of ``files`` (a sample of ``mutants`` per file, all if 0), run the covering
    tests on each mutant; return the report (a JSON-able dict)."""
    if log is None:
        def log(text):
            print(text, flush=True)
    report = {"sim": sim, "seed": seed, "timeout_s": timeout, "files": {}}
    with tempfile.TemporaryDirectory(prefix="spinpim-mutate-") as tmp:
        work = Path(tmp)
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
            sample.sort(key=lambda m: (m.line, m.col))
            # the unmutated copy must pass first: otherwise every mutant is "killed"
            outcome, took, tail = _run_tests(work, covering, sim, timeout, programs)
            if outcome != "survived":
                raise UserError(f"{rel}: the covering tests fail without a mutation "
                                f"({outcome}): {tail}")
            baseline = verilog_digest(work)
            log(f"{rel}: {len(sample)} of {len(every)} mutants; tests pass unmutated "
                f"in {took:.0f} s")
            results = []
            target = work / rel
            try:
                for i, m in enumerate(sample):
                    target.write_text(apply(original, m))
                    outcome, took, tail = _run_tests(work, covering, sim, timeout, programs)
                    if outcome == "survived" and baseline and verilog_digest(work) == baseline:
                        outcome = "equivalent"
                    results.append({**asdict(m), "outcome": outcome, "seconds": round(took, 1),
                                    "output": tail})
                    log(f"  [{i + 1}/{len(sample)}] line {m.line} {m.kind}: {m.original!r} -> "
                        f"{m.mutated!r}: {outcome} ({took:.0f} s)")
            finally:
                target.write_text(original)
            counts = {k: sum(r["outcome"] == k for r in results)
                      for k in ("killed", "killed_timeout", "survived", "equivalent")}
            killed = counts["killed"] + counts["killed_timeout"]
            judged = len(results) - counts["equivalent"]
            report["files"][rel] = {
                "tests": covering, "sites": len(every), "run": len(results), **counts,
                "score": round(killed / judged, 4) if judged else None,
                "score_raw": round(killed / len(results), 4) if results else None,
                "survivors": [r for r in results if r["outcome"] == "survived"],
                "equivalents": [r for r in results if r["outcome"] == "equivalent"],
                "mutants": results,
            }
    return report


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.analysis.mutate",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("files", nargs="+", help="rtl/ files to mutate")
    ap.add_argument("--mutants", type=int, default=30,
                    help="mutants sampled per file (0: all of them); default 30")
    ap.add_argument("--sim", default="icarus", help="icarus (default) or verilator")
    ap.add_argument("--seed", type=int, default=0, help="sample seed (default 0)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds per mutant before it counts as killed by timeout")
    ap.add_argument("--tests", nargs="*", default=None,
                    help="pytest node ids to run instead of the covering tests")
    ap.add_argument("--programs", type=int, default=60,
                    help="random programs of cocotb_tests/test_core_random.py per mutant")
    ap.add_argument("--lines", type=int, nargs="*", default=None,
                    help="only the mutants on these source lines")
    ap.add_argument("--out", default=None, help="JSON report (default build/mutate/ALL.json)")
    args = ap.parse_args(argv)
    try:
        if args.sim not in ("icarus", "verilator"):
            raise UserError(f"SIM={args.sim}: must be icarus or verilator")
        if args.mutants < 0:
            raise UserError(f"MUTANTS={args.mutants}: must be 0 (all) or more")
        for f in args.files:
            p = Path(f).resolve()
            if not p.is_file() or p.suffix != ".py" or p.parent != REPO / "rtl":
                raise UserError(f"{f}: must be a Python file under rtl/ (MUTATE_FILES)")
        out = Path(args.out) if args.out else REPO / "build" / "mutate" / "mutate.json"
        report = run(args.files, mutants=args.mutants, sim=args.sim, seed=args.seed,
                     timeout=args.timeout, tests=args.tests, programs=args.programs,
                     lines=set(args.lines or ()))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: mutation run stopped, no report written, temporary copy removed",
              file=sys.stderr)
        return 130
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_text(json.dumps(report, indent=1) + "\n")
    tmp.replace(out)
    for rel, r in report["files"].items():
        k = r["killed"] + r["killed_timeout"]
        print(f"{rel}: score {r['score']} ({k} of {r['run'] - r['equivalent']} killed: "
              f"{r['killed']} by a failing test or build, {r['killed_timeout']} by the "
              f"timeout; {r['equivalent']} equivalent: the same Verilog as unmutated); "
              f"{r['survived']} survivors; score_raw {r['score_raw']} ({k} of {r['run']})")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
