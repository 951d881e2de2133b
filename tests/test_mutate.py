"""sim.analysis.mutate without simulation: the mutation sites it finds, that a mutant changes
exactly
its span, that it never writes into the working tree, and its one-line usage errors."""

import ast
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

    def fake_tests(workdir, tests, sim, timeout, programs):
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
