"""The CPU-IMAC flow end to end (``make sim PRESET=imac_sot``), on both simulators: the bundled
``fashion_lenet_imac`` network, its CPU part in golden and its IMAC layers on the RTL
co-processor (``rtl.imac_serial``) with device variation. ``sim.flows.imac_flow``'s cocotb test
compares every level of every IMAC layer with ``golden.imac.run_mlp`` (and stops at the first
difference); here the classes it read back are checked against golden's, computed again
independently, and the cycle count against the synapse count.

Kept cheap: one image on Icarus, two on Verilator; the build (about 59,000 synapses in
memories) is the one ``make sim PRESET=imac_sot`` uses and is reused while the Verilog is
unchanged.
"""

import os
import random

import numpy as np
import pytest

from golden import datasets, imac, imac_net
from sim.flows.imac_flow import make_coproc, run_images

NET = "fashion_lenet_imac"
# Images per simulator: Icarus runs about 60,000 host writes (programming) and 60,000 cycles
# per image at a few thousand cycles/s, so it checks one image; Verilator two.
IMAGES = {"icarus": 1, "verilator": 2}


@pytest.mark.sim
def test_imac_flow_end_to_end(sim):
    n = IMAGES[sim]
    path = imac_net.bundled_net_path(NET)
    net = imac_net.load_net(path)
    x, _ = datasets.load_fashion_mnist("test")
    seed = int(os.environ.get("SPINPIM_SEED") or random.SystemRandom().randrange(1 << 16))
    start = seed % (len(x) - n)
    x = x[start:start + n]
    print(f"imac flow on {sim}: images {start}..{start + n - 1}, variation seed {seed} "
          f"(rerun with SPINPIM_SEED={seed})")
    res = run_images(net_path=path, sim=sim, x=x, sigma=0.05, seed=seed, quiet=True)
    images = res["images"]
    assert len(images) == n, res
    assert all(im["agree"] for im in images)
    want = imac.classify(imac_net.infer(net, x, sigma=0.05, seed=seed)[-1])
    got = np.array([im["class"] for im in images])
    assert got.tolist() == want.tolist(), (f"classes rtl {got.tolist()} != golden "
                                           f"{want.tolist()} (seed {seed})")
    synapses = sum((i + 1) * o for i, o in net.fc_shapes)
    assert make_coproc(net).cycles_per_run == synapses
    assert [im["cycles"] for im in images] == [synapses] * n
    assert res["synapse_writes"] == synapses
