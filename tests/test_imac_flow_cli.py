"""sim.cli run on a CPU-IMAC network (sim.imac_flow): the golden path's report, and user
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
