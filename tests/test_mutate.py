"""sim.analysis.mutate without simulation: the mutation sites it finds, that a mutant changes
exactly
its span, that it never writes into the working tree, and its one-line usage errors."""

import ast
import re
import subprocess
import sys
from pathlib import Path

from sim.analysis.mutate import apply, mutants_of

REPO = Path(__file__).resolve().parent.parent

SOURCE = '''
from amaranth.hdl import Module, Mux, Signal


class Block:
    def __init__(self, width):
        if width < 1:
            raise ValueError(f"width must be >= 1, not {width}")   # never mutated
        self.width = width

    @property
    def size(self):
        return self.width + 1                                      # never mutated

    def elaborate(self, platform):
        m = Module()
        a, b, y = Signal(8), Signal(8), Signal(8)
        with m.If(a < b):
            m.d.comb += y.eq(Mux(a[0], a + b, ~b))
        with m.Else():
            m.d.comb += y.eq(a[2:5] & b)
        return m
'''


def test_sites_and_kinds(tmp_path):
    f = tmp_path / "rtl" / "block.py"
    f.parent.mkdir()
    f.write_text(SOURCE)
    ms = mutants_of(f, root=tmp_path)
    kinds = {m.kind for m in ms}
    for want in ("binop Add->Sub", "binop BitAnd->BitOr", "compare Lt->LtE", "drop Invert",
                 "Mux arms swapped", "m.If inverted", "slice lower +1", "slice upper -1",
                 "constant +1", "constant -1"):
        assert want in kinds, (want, sorted(kinds))
    lines = {m.line for m in ms}
    # __init__ (a parameter check) and the property are not hardware
    assert not lines & {7, 8, 9, 13}, sorted(lines)
    for m in ms:
        mutated = apply(SOURCE, m)
        ast.parse(mutated)                      # every mutant is valid Python
        assert mutated != SOURCE
        # only the span changed: the text before it is the same
        head = "".join(SOURCE.splitlines(keepends=True)[:m.line - 1])
        assert mutated.startswith(head)


def test_core_and_ppu_have_sites():
    assert len(mutants_of(REPO / "rtl" / "core.py")) > 200
    assert len(mutants_of(REPO / "rtl" / "ppu.py")) > 100


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "sim.analysis.mutate", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_usage_errors_are_one_line():
    for args, what in ((["rtl/core.py", "--sim", "xsim"], "SIM=xsim"),
                       (["golden/layers.py"], "golden/layers.py: must be a Python file under rtl/"),
                       (["rtl/core.py", "--mutants", "-1"], "MUTANTS=-1")):
        r = _cli(*args, "--out", "/dev/null/never")
        assert r.returncode == 2, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and what in lines[0], r.stderr


def test_unknown_file_without_tests_is_refused(tmp_path):
    r = _cli("rtl/isa.py", "--mutants", "1", "--out", str(tmp_path / "m.json"))
    assert r.returncode == 2 and "no covering tests known" in r.stderr, r.stderr
    assert not (tmp_path / "m.json").exists()


def test_survivor_with_unchanged_verilog_is_equivalent(monkeypatch):
    """A survivor whose tests wrote the same Verilog as the unmutated source is reported as
    equivalent and left out of the score; one whose Verilog differs is a survivor. The tests
    are replaced by a stand-in that 'generates Verilog' from one source line of rtl/ppu.py
    (line ``L``) and passes: mutants of line L change it, mutants of other lines do not."""
    import sim.analysis.mutate as mutate
    every = mutate.mutants_of(REPO / "rtl" / "ppu.py")
    line_a, line_b = sorted({m.line for m in every})[:2]

    def fake_tests(workdir, tests, sim, timeout, programs, **trace):
        src = (workdir / "rtl" / "ppu.py").read_text().splitlines()[line_a - 1]
        out = workdir / "build" / "sim" / "ppu" / "x"
        out.mkdir(parents=True, exist_ok=True)
        (out / "ppu.v").write_text(src)
        return "survived", 0.0, ""

    monkeypatch.setattr(mutate, "_run_tests", fake_tests)
    report = mutate.run(["rtl/ppu.py"], mutants=0, sim="icarus", seed=0, timeout=1,
                        lines={line_a, line_b}, log=lambda text: None)
    r = report["files"]["rtl/ppu.py"]
    by_line = {}
    for m in r["mutants"]:
        by_line.setdefault(m["line"], set()).add(m["outcome"])
    assert by_line[line_a] == {"survived"} and by_line[line_b] == {"equivalent"}, by_line
    assert r["equivalent"] == len(r["equivalents"]) > 0 and r["survived"] > 0
    assert r["score"] == 0.0 and r["score_raw"] == 0.0
    assert r["run"] == r["survived"] + r["equivalent"]


# -- the equivalence check: a known-equivalent mutant and known-killable ones ------------------

def _verilog(tmp_path, name, elaborate_body):
    """Verilog of a small Amaranth component (as the harness exports it: ``emit_src=False``)
    into ``tmp_path/name/blk.v``."""
    from amaranth.back import verilog
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Blk(wiring.Component):
        op: In(2)
        a: In(8)
        b: In(8)
        y: Out(8)
        acc: Out(8)

        def elaborate(self, platform):
            m = Module()
            elaborate_body(m, self)
            return m

    path = tmp_path / name / "blk.v"
    path.parent.mkdir(parents=True)
    path.write_text(verilog.convert(Blk(), name="blk", emit_src=False))
    return path


def _body(*, nop_b=0, init=0, acc_op="+", pad=0):
    """An ALU with an accumulator: op 0 is a NOP whose second operand is ``nop_b`` (unused:
    the NOP drives 0 whatever it is), op 1 adds, op 2 ands; the accumulator starts at ``init``
    and adds (or, mutated, subtracts) y each cycle; ``pad`` widens the sum by constant-zero
    bits that a slice drops again (a width mutation that changes nothing)."""
    from amaranth.hdl import Cat, Const, Signal

    def body(m, s):
        acc = Signal(8, init=init)
        operand = Signal(8)
        total = Signal(8 + 1 + pad)
        with m.Switch(s.op):
            with m.Case(0):
                m.d.comb += operand.eq(nop_b)
                m.d.comb += s.y.eq(0)
            with m.Case(1):
                m.d.comb += operand.eq(s.b)
                m.d.comb += s.y.eq(s.a + operand)
            with m.Default():
                m.d.comb += operand.eq(s.b)
                m.d.comb += s.y.eq(s.a & operand)
        m.d.comb += total.eq(Cat(acc, Const(0, 1 + pad)))
        m.d.sync += acc.eq((total[:8] + s.y) if acc_op == "+" else (total[:8] - s.y))
        m.d.comb += s.acc.eq(acc)
    return body


def test_equivalence_check_proves_equivalent_mutants(tmp_path):
    """A changed operand of the NOP (which drives nothing) and a wider, sliced-away sum are the
    same hardware at the ports although their Verilog differs: equivalent."""
    from sim.analysis.mutate import verilog_equivalent
    gold = _verilog(tmp_path, "gold", _body())
    for name, body in (("nop", _body(nop_b=3)), ("pad", _body(pad=2))):
        gate = _verilog(tmp_path, name, body)
        assert gate.read_bytes() != gold.read_bytes(), name
        same, why = verilog_equivalent(gold, gate, tmp_path)
        assert same, (name, why)


def test_equivalence_check_refuses_killable_mutants(tmp_path):
    """A changed reset value, an operator swapped in the accumulator, and the identical design
    under another port width are different hardware: never equivalent (soundness)."""
    from sim.analysis.mutate import verilog_equivalent
    gold = _verilog(tmp_path, "gold", _body())
    for name, body, reason in (("init", _body(init=1), "init value"),
                               ("sub", _body(acc_op="-"), "SAT proof over matched state failed")):
        gate = _verilog(tmp_path, name, body)
        same, why = verilog_equivalent(gold, gate, tmp_path)
        assert not same and reason in why, (name, why)
    assert verilog_equivalent(gold, gold, tmp_path) == (True, "identical Verilog")


def test_same_function_refuses_changed_ports():
    from sim.analysis.mutate import same_function
    a = {"ports": {"y": {"direction": "output", "bits": [2]}}, "cells": {}, "netnames": {}}
    b = {"ports": {"y": {"direction": "output", "bits": [2, 3]}}, "cells": {}, "netnames": {}}
    assert same_function(a, b) == (False, "the ports differ")
    # an output driven by nothing is a class of its own: not even equal to itself elsewhere
    assert same_function(a, a)[0] is False


def test_unmutated_run_records_the_lines_it_runs(tmp_path):
    """The tracing plugin of the unmutated run (``-p sim.analysis.mutate``) records the lines of the
    target file that ran and no others: the branch not taken stays out."""
    import json
    import os
    mod = tmp_path / "blockmod.py"
    mod.write_text("def build(flag):\n"        # 1
                   "    x = 1\n"               # 2
                   "    if flag:\n"            # 3
                   "        x = 2\n"           # 4
                   "    else:\n"               # 5
                   "        x = 3\n"           # 6
                   "    return x\n")           # 7
    (tmp_path / "test_block.py").write_text("from blockmod import build\n\n"
                                            "def test_build():\n    assert build(True) == 2\n")
    out = tmp_path / "lines.json"
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO}",
               SPINPIM_MUTATE_TRACE_FILE=str(mod), SPINPIM_MUTATE_TRACE_OUT=str(out))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        "-p", "sim.analysis.mutate", str(tmp_path / "test_block.py")], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    ran = set(json.loads(out.read_text()))
    assert {2, 3, 4, 7} <= ran and not ran & {6}, sorted(ran)


def test_uncovered_mutants_are_not_run(monkeypatch):
    """A mutant on lines the unmutated run never executed is reported ``uncovered`` without
    running its tests, and counts as not killed."""
    import json

    import sim.analysis.mutate as mutate
    every = mutate.mutants_of(REPO / "rtl" / "ppu.py")
    line_a, line_b = sorted({m.line for m in every})[:2]
    calls = []

    def fake_tests(workdir, tests, sim, timeout, programs, trace=None, traced=None):
        if traced is not None:                 # the unmutated run: only line_a ran
            traced.write_text(json.dumps([line_a]))
        else:
            calls.append(1)
        return ("survived" if traced is not None else "killed"), 0.0, ""

    monkeypatch.setattr(mutate, "_run_tests", fake_tests)
    report = mutate.run(["rtl/ppu.py"], mutants=0, sim="icarus", seed=0, timeout=1,
                        lines={line_a, line_b}, log=lambda text: None)
    r = report["files"]["rtl/ppu.py"]
    outcomes = {(m["line"], m["outcome"]) for m in r["mutants"]}
    assert outcomes == {(line_a, "killed"), (line_b, "uncovered")}, outcomes
    assert len(calls) == r["killed"] and r["uncovered"] == len(r["uncovered_mutants"]) > 0
    assert r["score"] == r["score_raw"] == round(r["killed"] / r["run"], 4) < 1


def test_the_mutant_time_limit_follows_the_unmutated_run(monkeypatch):
    """Without --timeout each mutant may run 3x as long as the passing unmutated tests (at
    least 60 s); the unmutated run itself is not cut short by that limit (under load the core's
    tests took longer than the old fixed 600 s, and every run then stopped before its first
    mutant). With --timeout, that value."""
    import json

    import sim.analysis.mutate as mutate
    assert mutate.mutant_timeout(None, 10.0) == 60.0
    assert mutate.mutant_timeout(None, 400.0) == 1200.0
    assert mutate.mutant_timeout(5, 400.0) == 5.0
    every = mutate.mutants_of(REPO / "rtl" / "ppu.py")
    line = sorted({m.line for m in every})[0]
    limits = []

    def fake_tests(workdir, tests, sim, timeout, programs, trace=None, traced=None):
        limits.append((traced is not None, timeout))
        if traced is not None:
            traced.write_text(json.dumps([line]))
            return "survived", 700.0, ""
        return "killed", 1.0, ""

    monkeypatch.setattr(mutate, "_run_tests", fake_tests)
    report = mutate.run(["rtl/ppu.py"], mutants=0, sim="icarus", seed=0, timeout=None,
                        lines={line}, log=lambda text: None)
    assert limits[0] == (True, mutate.BASELINE_TIMEOUT)
    assert {lim for unmutated, lim in limits[1:]} == {2100.0} and not any(
        unmutated for unmutated, _ in limits[1:])
    assert report["files"]["rtl/ppu.py"]["timeout_s"] == 2100.0


def test_a_bad_timeout_is_one_line(capsys):
    import sim.analysis.mutate as mutate
    assert mutate.main(["rtl/ppu.py", "--timeout", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--timeout 0.0: must be a number of seconds > 0" in err[0], err


def _mem_body(*, guard="<3", data_xor=0):
    """A memory of 3 words of 8 bits (addresses 0 .. 2 of a 2-bit address): written with b at
    address a[0:2] when op[0] and the ``guard`` on the address holds, read at a[2:4] into y.
    ``guard`` "<3" writes only inside the memory; "" also writes to address 3, beyond its end
    (which the memory ignores); "<2" drops the writes to address 2."""
    from amaranth.hdl import Const
    from amaranth.lib.memory import Memory

    def body(m, s):
        m.submodules.mem = mem = Memory(shape=8, depth=3, init=[])
        rd, wr = mem.read_port(domain="comb"), mem.write_port()
        waddr = s.a[0:2]
        ok = {"<3": waddr < 3, "<2": waddr < 2, "": Const(1)}[guard]
        m.d.comb += [wr.addr.eq(waddr), wr.data.eq(s.b ^ data_xor), wr.en.eq(s.op[0] & ok),
                     rd.addr.eq(s.a[2:4]), s.y.eq(rd.data), s.acc.eq(0)]
    return body


def test_writes_beyond_a_memory_are_no_ops(tmp_path):
    """Enabling the writes to addresses beyond a memory's end (as ``rtl/ppu.py``'s channel check
    mutated to always true does) changes nothing the memory keeps: equivalent. Dropping writes
    inside it, or writing other data, is different hardware: never equivalent (soundness)."""
    from sim.analysis.mutate import verilog_equivalent
    gold = _verilog(tmp_path, "gold", _mem_body())
    gate = _verilog(tmp_path, "beyond", _mem_body(guard=""))
    assert gate.read_bytes() != gold.read_bytes()
    same, why = verilog_equivalent(gold, gate, tmp_path)
    assert same and "SAT proof" in why, why
    for name, body in (("inside", _mem_body(guard="<2")), ("data", _mem_body(data_xor=1)),
                       ("both", _mem_body(guard="", data_xor=1))):
        gate = _verilog(tmp_path, name, body)
        same, why = verilog_equivalent(gold, gate, tmp_path)
        assert not same and "SAT proof over matched state failed" in why, (name, why)


def _anon_body(*, mask=False, acc_op="+", swap=False, init=0):
    """Registers with generated names only: ``sel`` is named, but ``_equals``-style logic
    (``~(sel ^ 0).any()``, as in ``rtl/core.py``) gives its bits an alias ``$N`` that sorts
    before ``sel``; ``r`` are two unnamed registers (``$signal``, ``$signal$9``). ``mask`` adds
    a no-op ``& 0xF`` before them: the same hardware, every generated number after it shifted.
    ``acc_op`` "-" subtracts 1 in r[1]'s input, ``swap`` swaps the two registers' inputs (not
    their uses), ``init`` is r[0]'s reset value: different hardware."""
    from amaranth.hdl import Const, Mux, Signal

    def body(m, s):
        sel = Signal(4)
        r = [Signal(8, init=init if k == 0 else 0) for k in range(2)]
        m.d.sync += sel.eq(Mux(s.op[0], (s.a[:4] & 0xF) if mask else s.a[:4], s.b[:4]))
        src = (s.a ^ s.b, s.a + sel)[::-1 if swap else 1]
        m.d.sync += [r[0].eq(src[0]), r[1].eq(src[1] if acc_op == "+" else src[1] - 1)]
        m.d.comb += [s.y.eq(Mux(~(sel ^ Const(0, 4)).any(), r[0], s.a)),
                     s.acc.eq(r[1] + r[0])]
    return body


def test_registers_with_generated_names_are_paired_soundly(tmp_path):
    """Generated register names (``$5``, ``$signal``) are renumbered by a mutant that adds an
    expression: a no-op mask is still proven the same hardware by the SAT proof over the
    state (the registers paired by their stable names, else by likeness and rank). A mutant
    that subtracts, that swaps two unnamed registers' inputs (paired in either order, the
    outputs differ) or that changes an unnamed register's reset value is never equivalent."""
    from sim.analysis.mutate import state_matched_equivalent, verilog_equivalent
    gold = _verilog(tmp_path, "gold", _anon_body())
    gate = _verilog(tmp_path, "mask", _anon_body(mask=True))
    text, masked = gold.read_text(), gate.read_text()
    # the case of rtl/core.py: a register's bits aliased by a generated name that shifts
    alias = [re.findall(r"assign \\(\$\d+)  = sel;", t) for t in (text, masked)]
    assert alias[0] and alias[1] and alias[0] != alias[1], alias
    assert "reg [7:0] \\$signal " in text
    same, why = state_matched_equivalent(gold, gate, "blk", tmp_path)
    assert same and "3 state cells matched, SAT proof" in why, why
    assert verilog_equivalent(gold, gate, tmp_path)[0]
    for name, body, reason in (("sub", _anon_body(acc_op="-"), "SAT proof over matched"),
                               ("swap", _anon_body(swap=True), "SAT proof over matched"),
                               ("init", _anon_body(init=1), "the state differs")):
        gate = _verilog(tmp_path, name, body)
        same, why = state_matched_equivalent(gold, gate, "blk", tmp_path)
        assert not same and reason in why, (name, why)
        same, why = verilog_equivalent(gold, gate, tmp_path)
        assert not same, (name, why)


def test_wilson_interval():
    """The 95 % Wilson interval against values computed by hand from its formula."""
    from sim.analysis.mutate import wilson
    assert wilson(0, 0) is None
    lo, hi = wilson(9, 10)          # p 0.9, z 1.96: centre 0.7890, half 0.1931 (by hand)
    assert abs(lo - 0.5958) < 1e-3 and abs(hi - 0.9821) < 1e-3, (lo, hi)
    assert wilson(10, 10)[1] == 1.0 and wilson(0, 5)[0] == 0.0


def test_the_unmutated_run_traces_every_python_process(tmp_path, monkeypatch):
    """The unmutated run traces the lines of the target in every Python process it starts (as
    the simulators' embedded Python, where the cocotb side runs), not only in pytest's: here a
    test runs one branch itself and the other in a child process; both are recorded, the
    line neither runs is not."""
    import sim.analysis.mutate as mutate
    mod = tmp_path / "blockmod.py"
    mod.write_text("def build(flag):\n"        # 1
                   "    if flag:\n"            # 2
                   "        return 2\n"        # 3
                   "    if flag is None:\n"    # 4
                   "        return 0\n"        # 5
                   "    return 3\n")           # 6
    (tmp_path / "test_block.py").write_text(
        "import subprocess, sys\nfrom blockmod import build\n\n"
        "def test_build():\n    assert build(True) == 2\n"
        "    r = subprocess.run([sys.executable, '-c', 'import blockmod; blockmod.build(False)'])\n"
        "    assert r.returncode == 0\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    traced = tmp_path / "lines.json"
    outcome, _, tail = mutate._run_tests(tmp_path, ["test_block.py"], "icarus", 120, 1,
                                         trace=mod, traced=traced)
    assert outcome == "survived", tail
    ran = mutate.traced_lines(traced)
    assert {2, 3, 4, 6} <= ran and 5 not in ran, sorted(ran)
