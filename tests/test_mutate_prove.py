"""sim.analysis.mutate's formal proof of a survivor (``prove_mutant``, ``--prove``): memories
mapped to flip-flops make an unused read no difference, the proof is sound (a different design
is never proven, and the bounded search from reset refutes it), and the core's mutants are
exported at the proof configurations. Needs Debian's yosys (``make synth-deps``); the proofs on
the whole core take minutes and run only with ``SPINPIM_SYNTH_TESTS=1`` (``make synth-test``)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sim.analysis import mutate
from tests.test_mutate import _verilog

REPO = Path(__file__).resolve().parent.parent
needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None,
                                 reason="the equivalence proof needs Debian's yosys "
                                        "(make synth-deps)")
slow_core = pytest.mark.skipif(
    os.environ.get("SPINPIM_SYNTH_TESTS") != "1" or shutil.which("yosys") is None,
    reason="proofs on the whole core (minutes): SPINPIM_SYNTH_TESTS=1 and Debian's yosys "
           "(make synth-test)")


def _mem_verilog(tmp_path, name, *, nop_addr=0, op2_data_xor=0, acc_sub=False, init=(1, 2)):
    """A 4-word memory with a combinational read port, in test_mutate's small component: op 0
    is a NOP that points the read port at ``nop_addr`` and drives 0 (the read data unused), op
    1 reads word a, op 2 writes b (xor ``op2_data_xor``) to word a; an accumulator adds
    (``acc_sub``: subtracts) y; the memory's first words start as ``init``."""
    from amaranth.hdl import Signal
    from amaranth.lib.memory import Memory

    def body(m, s):
        m.submodules.mem = mem = Memory(shape=8, depth=4, init=list(init))
        rd, wr = mem.read_port(domain="comb"), mem.write_port()
        acc = Signal(8)
        with m.Switch(s.op):
            with m.Case(0):
                m.d.comb += [rd.addr.eq(nop_addr), s.y.eq(0)]
            with m.Case(1):
                m.d.comb += [rd.addr.eq(s.a[:2]), s.y.eq(rd.data)]
            with m.Case(2):
                m.d.comb += [rd.addr.eq(0), wr.addr.eq(s.a[:2]),
                             wr.data.eq(s.b ^ op2_data_xor), wr.en.eq(1), s.y.eq(0)]
            with m.Default():
                m.d.comb += [rd.addr.eq(0), s.y.eq(0)]
        m.d.sync += acc.eq(acc - s.y if acc_sub else acc + s.y)
        m.d.comb += s.acc.eq(acc)

    return _verilog(tmp_path, name, body)


@needs_yosys
def test_a_nop_read_address_is_proven_only_with_memories_mapped(tmp_path):
    """The NOP's read address (as the core's NOP array command's row_a) reaches no output: with
    the memory cut as state its address is compared and the proof fails; mapped to flip-flops
    (YOSYS_READ_MAPPED) it is proven the same hardware."""
    gold = _mem_verilog(tmp_path, "gold")
    gate = _mem_verilog(tmp_path, "nop", nop_addr=1)
    assert gate.read_bytes() != gold.read_bytes()
    same, why = mutate.state_matched_equivalent(gold, gate, "blk", tmp_path)
    assert not same, why
    same, why = mutate.state_matched_equivalent(gold, gate, "blk", tmp_path,
                                                read=mutate.YOSYS_READ_MAPPED, limit=120)
    assert same, why


@needs_yosys
def test_different_designs_are_never_proven_and_are_refuted_from_reset(tmp_path):
    """Other data written, the accumulator subtracting, or another initial memory word (the
    mapped memory keeps its init values): not proven with memories mapped, and
    the bounded search finds inputs that make an output differ within BMC_CYCLES cycles from
    reset (the checker can fail). A design and itself: no counterexample."""
    gold = _mem_verilog(tmp_path, "gold")
    for name, kw in (("data", {"op2_data_xor": 4}), ("sub", {"acc_sub": True}),
                     ("init", {"init": (1, 3)})):
        gate = _mem_verilog(tmp_path, name, **kw)
        same, why = mutate.state_matched_equivalent(gold, gate, "blk", tmp_path,
                                                    read=mutate.YOSYS_READ_MAPPED, limit=120)
        assert not same, (name, why)
        verdict, how = mutate.refute(gold, gate, "blk", cycles=4, limit=120)
        assert verdict == "refuted", (name, how)
    same_gate = _mem_verilog(tmp_path, "again")
    assert mutate.refute(gold, same_gate, "blk", cycles=4, limit=120)[0] == "no counterexample"


def test_prove_names_mutants_or_refuses_in_one_line():
    """``--prove judged`` names one mutant per JUDGED_EQUIVALENT entry; a bad spec is a
    one-line error with exit 2."""
    assert len(mutate.mutants_named(["judged"])) == len(mutate.JUDGED_EQUIVALENT)
    for spec, want in (("rtl/core.py:x:1", "FILE:LINE:COL"), ("golden/x.py:1:1", "under rtl/"),
                       ("rtl/core.py:1:0", "no mutant there")):
        r = subprocess.run([sys.executable, "-m", "sim.analysis.mutate", "--prove", spec],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and want in r.stderr, (spec, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_a_mutant_not_generated_at_a_configuration_is_not_proven(tmp_path):
    """A mutant whose code the proof configuration does not generate (identical Verilog) is
    ``not generated``, never proven: there is nothing the proof saw."""
    source = (REPO / "rtl/core.py").read_text()
    judged = mutate.mutants_named(["judged"])
    bitcount = next(m for m in judged
                    if "BITCOUNT" in mutate._judged_by_hand(source, m)[1]["equivalence"])
    proof = mutate.prove_mutant(bitcount, configs=(("jeit_stt", (), 1),), log=lambda t: None)
    assert proof["status"] == "not generated", proof


@slow_core
def test_the_move_nop_row_operand_is_proven_equivalent_at_a_proof_configuration():
    """The core's MOVE NOP with row_a 1 instead of 0 (JUDGED_EQUIVALENT's first entry): proven
    the same hardware at jeit_stt K=1 (minutes)."""
    (m,) = [m for m in mutate.mutants_named(["judged"]) if m.col == 56]
    proof = mutate.prove_mutant(m, configs=(("jeit_stt", (), 1),), log=lambda t: None)
    assert proof["status"] == "proven", proof
    assert proof["configs"][0]["result"].startswith("proven: same function at the ports")


@slow_core
def test_an_inverted_busy_output_is_refuted_on_the_core():
    """The core's ``busy`` output with its ``~`` dropped differs from the first cycle after
    reset: never proven, and the counterexample search from reset finds it."""
    source = (REPO / "rtl/core.py").read_text()
    (m,) = [m for m in mutate.mutants_of(REPO / "rtl/core.py") if m.kind == "drop Invert"
            and "self.busy.eq(~idle)" in source.splitlines()[m.line - 1]]
    proof = mutate.prove_mutant(m, configs=(("imac_sot", (), 1),), log=lambda t: None)
    assert proof["status"] == "refuted", proof
    assert "output differ" in proof["configs"][0]["result"]


def test_the_score_line_counts_proven_and_judged_equivalents_apart(capsys):
    """The score leaves out all three kinds of equivalent; the printed line names each count."""
    results = [{"outcome": o} for o in ["killed"] * 6 + ["survived"] * 2 + ["equivalent"]
               + ["proven_equivalent"] * 3 + ["judged_equivalent"]]
    r = mutate.summarize(results)
    assert (r["score"], r["proven_equivalent"], r["judged_equivalent"]) == (0.75, 3, 1)
    assert r["score_raw"] == round(6 / 13, 4) and len(r["equivalents"]) == 5
    mutate._print_scores({"files": {"rtl/core.py": r}}, Path("x.json"))
    line = capsys.readouterr().out.splitlines()[0]
    assert "6 of 8 killed" in line and "3 proven equivalent by yosys" in line
    assert "1 judged equivalent by hand, not proven" in line and "1 the same hardware" in line
