"""sim.mutate without simulation: the mutation sites it finds, that a mutant changes exactly
its span, that it never writes into the working tree, and its one-line usage errors."""

import ast
import subprocess
import sys
from pathlib import Path

from sim.mutate import apply, mutants_of

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
    return subprocess.run([sys.executable, "-m", "sim.mutate", *args], cwd=REPO,
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
