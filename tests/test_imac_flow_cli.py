"""sim.cli run on a CPU-IMAC network (sim.flows.imac_flow): the golden path's report, and user
mistakes as one line with exit code 2 before any build."""

import json

import numpy as np
import pytest

from golden import datasets, imac, imac_net
from tests.test_cli import run_cli

NET = "fashion_lenet_imac"


@pytest.mark.parametrize("args,msg", [
    (["--backend", "rtl", "--preset", "nand_spin"],
     "--preset: a CPU-IMAC network runs on the imac_sot preset's IMAC co-processor, not "
     "'nand_spin'"),
    (["--imac-sigma", "0.3"], "--imac-sigma must be in [0, 0.25], not 0.3"),
    (["--imac-seed", "-1"], "--imac-seed must be >= 0, not -1"),
    (["--backend", "rtl", "--preset", "imac_sot", "--dataflow", "abs_diff"],
     "--dataflow: a CPU-IMAC network has no adder layers to route, not 'abs_diff'"),
    (["--dataset", "digits"], "--dataset: a CPU-IMAC network reads Fashion-MNIST, not 'digits'"),
    (["--backend", "rtl", "--preset", "imac_sot", "--sim", "xsim"],
     "--sim must be one of icarus, verilator"),
])
def test_imac_cli_user_errors(args, msg, tmp_path):
    r = run_cli("run", "--model", NET, "-n", "2", *args, "--report", str(tmp_path / "r.json"))
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "r.json").exists()


def test_imac_cli_golden_report(tmp_path):
    out = tmp_path / "rep.json"
    r = run_cli("run", "--model", NET, "-n", "40", "--imac-seed", "3", "--report", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    net = imac_net.load_net(imac_net.bundled_net_path(NET))
    x, y = datasets.load_fashion_mnist("test")
    x, y = x[:40], y[:40]
    ideal = imac.classify(imac_net.infer(net, x)[-1])
    varied = imac.classify(imac_net.infer(net, x, sigma=0.05, seed=3)[-1])
    assert rep["images"] == 40 and rep["imac_sigma"] == 0.05 and rep["imac_seed"] == 3
    assert rep["int_ideal_imac_accuracy"] == float(np.mean(ideal == y))
    assert rep["int_imac_variation_accuracy"] == float(np.mean(varied == y))
    assert "integer CPU + ideal IMAC (fixed)" in r.stdout


class _FakeRunner:
    """Stands in for cocotb's runner: reads the job as the cocotb test would and writes
    ``result`` (nothing when None)."""

    def __init__(self, result):
        self.result, self.calls = result, []

    def test(self, *, test_module, testcase, hdl_toplevel, build_dir, test_dir, **kw):
        from pathlib import Path
        self.calls.append((test_module, testcase, hdl_toplevel, Path(test_dir)))
        job = json.loads((Path(test_dir) / "imac_job.json").read_text())
        images = np.load(Path(test_dir) / job["images"])
        assert images.dtype == np.uint8 and job["seed"] == 4
        if self.result is not None:
            (Path(test_dir) / job["result"]).write_text(json.dumps(
                {**self.result, "n": int(len(images))}))


@pytest.mark.parametrize("result, message", [
    ({"error": None, "images": []}, None),
    ({"error": "image 0: AssertionError: IMAC layer 1 output 3: rtl 7 != golden 8"},
     "^image 0: AssertionError: IMAC layer 1 output 3: rtl 7 != golden 8$"),
    (None, "^the icarus simulation ended without .*result.json; see its output above$"),
])
def test_run_job_results_and_errors(tmp_path, result, message):
    """sim.flows.rtl_backend.run_job, which both RTL flows share: the job and images go into a
    directory of their own, removed afterwards; a missing result or one with an error is the
    caller's error class with the message."""
    from sim.flows.imac_flow import ImacRunError
    from sim.flows.rtl_backend import run_job
    runner = _FakeRunner(result)
    x = np.zeros((3, 1, 28, 28), dtype=np.int64)
    kw = dict(sim="icarus", build_dir=tmp_path, toplevel="imac_serial_tb",
              test_module="sim.flows.imac_flow", testcase="imac_inference",
              job_file="imac_job.json",
              job={"seed": 4}, images=x, error=ImacRunError)
    if message is None:
        res = run_job(runner, **kw)
        assert res["n"] == 3 and res["wall_seconds"] >= 0
    else:
        with pytest.raises(ImacRunError, match=message):
            run_job(runner, **kw)
    (module, case, top, run_dir), = runner.calls
    assert (module, case, top) == ("sim.flows.imac_flow", "imac_inference", "imac_serial_tb")
    assert run_dir.parent == tmp_path and not run_dir.exists()
