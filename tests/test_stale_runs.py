"""Leftovers of killed RTL runs (issue 17, class 7): ``sim.flows.rtl_backend.run_job`` works in a
``run-*`` directory under the core's build and removes it at the end; a run killed by SIGKILL
cannot, so the next run removes the job directories whose process is gone, and nothing else
(a user's ``run-*`` directory, a concurrent run's job)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

from sim.flows.rtl_backend import RUN_OWNER, RUN_PREFIX, remove_stale_runs, run_job

REPO = Path(__file__).resolve().parent.parent


class _Runner:
    """Stands in for cocotb's runner: writes the result file the job names."""

    def test(self, *, test_dir, **_):
        job = json.loads((Path(test_dir) / "job.json").read_text())
        (Path(test_dir) / job["result"]).write_text(json.dumps({"ok": 1}))


def _run(build_dir):
    return run_job(_Runner(), sim="icarus", build_dir=build_dir, toplevel="core",
                   test_module="x", testcase="x", job_file="job.json", job={}, images=[[0]])


def _dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_killed_run_leaves_a_directory_the_next_run_removes(tmp_path):
    """A process killed (SIGKILL) inside run_job's simulation leaves its run directory; the
    next run_job on the same build removes it and works as before."""
    code = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        from sim.flows.rtl_backend import run_job
        class Killer:
            def test(self, **_):
                os.kill(os.getpid(), signal.SIGKILL)
        run_job(Killer(), sim="icarus", build_dir=Path({str(tmp_path)!r}), toplevel="core",
                test_module="x", testcase="x", job_file="job.json", job={{}}, images=[[0]])
    """)
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(REPO)})
    assert r.returncode == -signal.SIGKILL, r.stderr
    left = list(tmp_path.glob(RUN_PREFIX + "*"))
    assert len(left) == 1 and (left[0] / "job.json").is_file(), left
    assert _run(tmp_path)["ok"] == 1
    assert not left[0].exists(), "the killed run's directory is still there"
    assert list(tmp_path.glob(RUN_PREFIX + "*")) == []


def test_only_dead_runs_of_this_host_are_removed(tmp_path):
    host = socket.gethostname()

    def job_dir(name, owner=None, extra="job.json"):
        d = tmp_path / name
        d.mkdir()
        (d / extra).write_text("{}")
        if owner is not None:
            (d / RUN_OWNER).write_text(owner)
        return d

    dead = job_dir("run-dead", f"{host} {_dead_pid()}")
    live = job_dir("run-live", f"{host} {os.getpid()}")           # a concurrent run
    other_host = job_dir("run-elsewhere", f"not-{host} {_dead_pid()}")
    user = job_dir("run-mine", None, "notes.txt")                  # a user's directory
    garbled = job_dir("run-garbled", "x y z")
    not_run = job_dir("results-old", f"{host} {_dead_pid()}")      # not a job directory
    link = tmp_path / "run-link"
    link.symlink_to(dead)
    assert remove_stale_runs(tmp_path) == [dead]
    for d in (live, other_host, user, garbled, not_run):
        assert d.is_dir() and any(d.iterdir()), d
    assert link.is_symlink()
    assert remove_stale_runs(tmp_path / "missing") == []
