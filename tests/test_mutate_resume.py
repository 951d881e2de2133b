"""sim.analysis.mutate stopped and resumed: a SIGTERM mid-run kills the running tests, leaves
the source and no temporary file behind and keeps the finished mutants in the report;
``--resume`` runs only the rest, and refuses a report made from other sources or options.

The tool runs as a subprocess on rtl/ppu.py with ``--tests`` naming a stand-in test (written
to a temporary directory): it passes on the unmutated copy and fails on any mutant (it compares
the copy's rtl/ppu.py with the working tree's hash), records its pid and whether the copy was
mutated, and sleeps, so that a signal can arrive while a mutant's tests run."""

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest

import sim.analysis.mutate as mutate

REPO = Path(__file__).resolve().parent.parent
PPU = REPO / "rtl" / "ppu.py"

FAKE_TEST = '''
import os, pathlib, time, hashlib


def test_stand_in():
    mutated = (hashlib.sha256(pathlib.Path("rtl/ppu.py").read_bytes()).hexdigest()
               != os.environ["FAKE_ORIGINAL"])
    marks = pathlib.Path(os.environ["FAKE_MARKS"])
    mark = marks / f"{time.monotonic_ns():024d}-{os.getpid()}"
    mark.write_text("mutant" if mutated else "base")
    time.sleep(float(os.environ["FAKE_SLEEP"]))
    assert not mutated
'''


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _setup(tmp_path, sleep):
    test = tmp_path / "fake" / "test_stand_in.py"
    test.parent.mkdir()
    test.write_text(FAKE_TEST)
    marks, tmp = tmp_path / "marks", tmp_path / "tmp"
    marks.mkdir()
    tmp.mkdir()
    env = dict(os.environ, FAKE_ORIGINAL=_sha(PPU), FAKE_MARKS=str(marks), FAKE_SLEEP=str(sleep),
               TMPDIR=str(tmp))
    return test, marks, tmp, env


def _cmd(test, out, *extra):
    return [sys.executable, "-m", "sim.analysis.mutate", "rtl/ppu.py", "--mutants", "3",
            "--tests", str(test), "--out", str(out), *extra]


def _marks(marks):
    return [(p.name.split("-")[1], p.read_text()) for p in sorted(marks.iterdir())]


def _wait(what, limit=240):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if what():
            return
        time.sleep(0.1)
    raise AssertionError("timed out waiting")


def _results(out):
    return [m for f in json.loads(out.read_text())["files"].values() for m in f["mutants"]]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_cleanly_and_resume_runs_the_rest(tmp_path, signum):
    test, marks, tmp, env = _setup(tmp_path, sleep=1.5)
    out = tmp_path / "out" / "m.json"
    before = _sha(PPU)
    proc = subprocess.Popen(_cmd(test, out), cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        # the unmutated run and one mutant finished, the second mutant's tests running
        _wait(lambda: out.exists() and len(_results(out)) == 1
              and [k for _, k in _marks(marks)] == ["base", "mutant", "mutant"])
        running = int(_marks(marks)[-1][0])
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 128 + signum, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"stopped by {signal.Signals(signum).name}" in lines[0], stderr
    assert "holds the 1 mutants finished" in lines[0], stderr
    with pytest.raises(ProcessLookupError):          # the running tests were killed
        os.kill(running, 0)
    assert _sha(PPU) == before                       # the source is never left mutated
    report = json.loads(out.read_text())             # valid, and holds the finished one
    assert report["partial"] is True and report["planned"] == 3
    first = _results(out)
    assert len(first) == 1 and first[0]["outcome"] == "killed"
    assert report["rtl_sha256"] == mutate.sources_digest("rtl")
    # no temporary file: neither the report's nor the copy of the repository
    assert [p.name for p in out.parent.iterdir() if p.name != "m-verilog"] == ["m.json"]
    assert list(tmp.iterdir()) == []

    if signum != signal.SIGTERM:
        return
    # --resume: the unmutated run again, then only the two mutants not finished
    n = len(_marks(marks))
    done = subprocess.run(_cmd(test, out, "--resume"), cwd=REPO, env=dict(env, FAKE_SLEEP="0"),
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [k for _, k in _marks(marks)[n:]] == ["base", "mutant", "mutant"]
    final = json.loads(out.read_text())
    assert "partial" not in final
    r = final["files"]["rtl/ppu.py"]
    assert r["run"] == r["killed"] == 3 and r["score"] == 1.0
    assert first[0] in r["mutants"]                   # kept as it was, not run again
    assert len({mutate._identity(m) for m in r["mutants"]}) == 3
    assert _sha(PPU) == before and list(tmp.iterdir()) == []
    # the sample of an uninterrupted run (seed 0), in its order
    sample = random.Random("0:rtl/ppu.py").sample(mutate.mutants_of(PPU), 3)
    assert [mutate._identity(m) for m in r["mutants"]] == [
        mutate._identity(asdict(m)) for m in sample]


def test_resume_refuses_another_run(tmp_path):
    test, marks, tmp, env = _setup(tmp_path, sleep=0)
    out = tmp_path / "m.json"
    subprocess.run(_cmd(test, out, "--mutants", "1"), cwd=REPO, env=env, capture_output=True,
                   text=True, timeout=240, check=True)
    good = out.read_text()

    def refused(args, what, edit=None):
        report = json.loads(good)
        if edit:
            edit(report)
        out.write_text(json.dumps(report))
        r = subprocess.run(_cmd(test, out, "--mutants", "1", "--resume", *args), cwd=REPO,
                           env=env, capture_output=True, text=True, timeout=240)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1 and what in lines[0], r.stderr
        assert json.loads(out.read_text()) == report          # left as it was

    refused(["--seed", "1"], "made with seed=0, this run has seed=1")
    refused([], "made from other rtl/ sources", lambda r: r.update(rtl_sha256="0" * 64))
    # the other fields, without a run each
    report = json.loads(good)
    for key, value, what in (("tests_sha256", "1" * 64, "made from other tests"),
                             ("sim", "verilator", "made with sim='icarus', this run has "
                                                  "sim='verilator'"),
                             ("lines", [5], "made with lines=[], this run has lines=[5]")):
        ident = {k: v for k, v in json.loads(good).items()
                 if k in ("rtl_sha256", "tests_sha256", "options")}
        if key in ident:
            ident[key] = value
        else:
            ident["options"][key] = value
        with pytest.raises(mutate.UserError, match=re.escape(what)):
            mutate.resume_check(report, ident, out)
    out.write_text("{not json")
    r = subprocess.run(_cmd(test, out, "--resume"), cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=240)
    assert r.returncode == 2 and "not a report of sim.analysis.mutate" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    # the same run resumed from a complete report runs no test at all
    out.write_text(good)
    n = len(_marks(marks))
    r = subprocess.run(_cmd(test, out, "--mutants", "1", "--resume"), cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=240)
    assert r.returncode == 0 and len(_marks(marks)) == n, r.stdout + r.stderr
    assert _results(out) == [m for f in json.loads(good)["files"].values()
                             for m in f["mutants"]]


def test_each_hand_judged_equivalent_matches_one_mutant():
    """Every entry of JUDGED_EQUIVALENT names exactly one mutant of today's source (a stale
    entry, after its file changed, fails here instead of silently matching nothing)."""
    for entry in mutate.JUDGED_EQUIVALENT:
        source = (REPO / entry["file"]).read_text()
        hits = [m for m in mutate.mutants_of(REPO / entry["file"])
                if mutate._judged_by_hand(source, m)[0] == "judged_equivalent"
                and m.col == entry["col"] and source.splitlines()[m.line - 1].strip()
                == entry["source"]]
        assert len(hits) == 1, (entry["source"], hits)


def test_hand_judged_equivalents_only_reclassify_survivors(monkeypatch):
    """A listed mutant whose tests pass is ``judged_equivalent`` with the entry's reason
    (``run`` proves nothing unless asked, ``prove``); the same
    mutant killed by a test stays ``killed`` (the list can hide no failing test)."""
    entry = mutate.JUDGED_EQUIVALENT[0]
    source = (REPO / entry["file"]).read_text()
    (m,) = [m for m in mutate.mutants_of(REPO / entry["file"])
            if mutate._judged_by_hand(source, m)[0] == "judged_equivalent" and m.col == entry["col"]
            and source.splitlines()[m.line - 1].strip() == entry["source"]]
    for verdict, want in (("survived", "judged_equivalent"), ("killed", "killed")):
        def fake_tests(workdir, tests, sim, timeout, programs, trace=None, traced=None,
                       verdict=verdict):
            return ("survived" if traced is not None else verdict), 0.0, ""

        monkeypatch.setattr(mutate, "_run_tests", fake_tests)
        monkeypatch.setattr(mutate, "verilog_digest", lambda work: {})
        report = mutate.run([entry["file"]], mutants=0, sim="icarus", seed=0, timeout=1,
                            lines={m.line}, log=lambda text: None)
        got = {(r["line"], r["col"], r["kind"], r["mutated"]): r
               for r in report["files"][entry["file"]]["mutants"]}
        r = got[(m.line, m.col, m.kind, m.mutated)]
        assert r["outcome"] == want, r
        if want == "judged_equivalent":
            assert entry["reason"] in r["equivalence"]


def test_rejudge_applies_the_hand_judged_list_to_todays_rtl_only():
    """``--rejudge`` (without proofs) turns a listed survivor of a report made from today's
    rtl/ into ``judged_equivalent``; a report of other rtl/ sources (its lines may name other
    code) keeps it a survivor."""
    entry = mutate.JUDGED_EQUIVALENT[-1]
    source = (REPO / entry["file"]).read_text()
    (m,) = [m for m in mutate.mutants_of(REPO / entry["file"])
            if mutate._judged_by_hand(source, m)[0] == "judged_equivalent" and m.col == entry["col"]
            and source.splitlines()[m.line - 1].strip() == entry["source"]]
    for rtl, want in ((mutate.sources_digest("rtl"), "judged_equivalent"),
                      ("0" * 64, "survived")):
        report = {"rtl_sha256": rtl, "files": {entry["file"]: {
            "tests": [], "sites": 1, "timeout_s": 1.0, **mutate.summarize(
                [{**asdict(m), "outcome": "survived", "seconds": 1.0, "output": ""}])}}}
        r = mutate.rejudge(report, log=lambda text: None)["files"][entry["file"]]
        assert r["mutants"][0]["outcome"] == want
        assert (r["score"], r["judged_equivalent"]) == (
            (None, 1) if want == "judged_equivalent" else (0.0, 0))


def test_from_index_leaves_out_the_first_of_the_sample(monkeypatch):
    """``from_index`` k runs the sample's mutants k.. in the sample's order: with an earlier
    report of the first k they are the whole sample."""
    monkeypatch.setattr(mutate, "_run_tests",
                        lambda workdir, tests, sim, timeout, programs, trace=None, traced=None:
                        ("survived" if traced is not None else "killed", 0.0, ""))
    monkeypatch.setattr(mutate, "verilog_digest", lambda work: {})

    def ids(k):
        report = mutate.run(["rtl/ppu.py"], mutants=4, sim="icarus", seed=3, timeout=1,
                            log=lambda text: None, from_index=k)
        return [mutate._identity(m) for m in report["files"]["rtl/ppu.py"]["mutants"]]

    whole = ids(0)
    assert len(whole) == 4 and ids(1) == whole[1:] and ids(4) == []


def test_rejudge_with_proofs_classes_proven_refuted_and_judged_apart(monkeypatch):
    """``rejudge(prove=True)``: a survivor ``prove_mutant`` proves is ``proven_equivalent``
    (the proof kept in the report); one it refutes stays ``survived`` even when
    JUDGED_EQUIVALENT lists it (a counterexample beats a hand judgement); one it cannot prove
    falls back to the list (``judged_equivalent``). The score leaves out only the first and
    last."""
    entry = mutate.JUDGED_EQUIVALENT[-1]
    source = (REPO / entry["file"]).read_text()
    (m,) = [m for m in mutate.mutants_of(REPO / entry["file"])
            if mutate._judged_by_hand(source, m)[0] == "judged_equivalent"
            and m.col == entry["col"] and source.splitlines()[m.line - 1].strip()
            == entry["source"]]
    for status, want in (("proven", "proven_equivalent"), ("refuted", "survived"),
                         ("not proven", "judged_equivalent")):
        proof = {"status": status, "method": "test", "configs": [
            {"config": "jeit_stt K=1", "result": f"{status}: test", "seconds": 0.0}]}
        monkeypatch.setattr(mutate, "prove_mutant", lambda mutant, log=None, proof=proof: proof)
        report = {"rtl_sha256": mutate.sources_digest("rtl"), "files": {entry["file"]: {
            "tests": [], "sites": 1, "timeout_s": 1.0, **mutate.summarize(
                [{**asdict(m), "outcome": "survived", "seconds": 1.0, "output": ""}])}}}
        r = mutate.rejudge(report, log=lambda text: None, prove=True)["files"][entry["file"]]
        got = r["mutants"][0]
        assert got["outcome"] == want and got["proof"]["status"] == status, got
        assert r["score"] == (0.0 if want == "survived" else None)
        assert r[want] == 1
