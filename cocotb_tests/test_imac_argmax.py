"""IMAC output sampling vs ``golden.imac.classify``: class and value compared with ``==``.

Stimulus: neuron outputs of a real last layer (``golden.imac.run_mlp``, 84 -> 10 with gain 10,
device variation), random codes drawn from a few values so that equal maxima are common,
fully random codes, all-equal vectors and a single maximum at every position; cycles without
``sample`` (the outputs must hold).
"""

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from cocotb_tests.harness import load_params, make_rng, pack, run_block, start
from golden import imac
from rtl.imac_argmax import ImacArgmax

BLOCK = "imac_argmax"


class Bench:
    def __init__(self, dut, p, seed):
        self.dut, self.seed = dut, seed
        self.n, self.width = p["inputs"], p["width"]
        self.index, self.value = 0, 0
        self.cycles = 0

    async def cycle(self, y, sample=True):
        dut = self.dut
        dut.y.value = pack(y, self.width)
        dut.sample.value = int(sample)
        if sample:
            self.index = int(imac.classify(np.asarray(y)))
            self.value = int(y[self.index])
        await FallingEdge(dut.clk)
        got = (int(dut.index.value.to_unsigned()), int(dut.value.value.to_unsigned()))
        assert got == (self.index, self.value), (
            f"{BLOCK}: cycle {self.cycles}, y {list(y)}: rtl (index, value) {got} != golden "
            f"{(self.index, self.value)} (seed {self.seed}; rerun with SPINPIM_SEED={self.seed})")
        self.cycles += 1


@cocotb.test()
async def argmax_random_and_ties(dut):
    """Few-valued codes (ties), fully random codes, and idle cycles."""
    p = load_params()
    rng, seed = make_rng(p, "argmax_random_and_ties")
    await start(dut)
    bench = Bench(dut, p, seed)
    top = (1 << bench.width) - 1
    ties = 0
    for _ in range(p["steps"]):
        if rng.random() < 0.5:
            pool = [rng.randint(0, top) for _ in range(3)]
            y = [rng.choice(pool) for _ in range(bench.n)]
        else:
            y = [rng.randint(0, top) for _ in range(bench.n)]
        ties += y.count(max(y)) > 1
        await bench.cycle(y, sample=rng.random() < 0.85)
    assert ties > p["steps"] // 10, ties


@cocotb.test()
async def argmax_corners(dut):
    """All equal (class 0), and one maximum at every position over a zero or full background."""
    p = load_params()
    _, seed = make_rng(p, "argmax_corners")
    await start(dut)
    bench = Bench(dut, p, seed)
    n, top = bench.n, (1 << bench.width) - 1
    for fill in (0, top):
        await bench.cycle([fill] * n)
        assert bench.index == 0
    for k in range(n):
        y = [0] * n
        y[k] = top
        await bench.cycle(y)
        assert bench.index == k
        if top > 1:
            y = [top - 1] * n
            y[k] = top
            await bench.cycle(y)
            assert bench.index == k


@cocotb.test()
async def argmax_last_layer_outputs(dut):
    """Neuron outputs of a golden IMAC last layer (84 -> ``inputs``, gain 10, sigma 0.05),
    their top ``width`` bits when narrower than the neuron's output."""
    p = load_params()
    rng, seed = make_rng(p, "argmax_last_layer_outputs")
    await start(dut)
    bench = Bench(dut, p, seed)
    nrng = np.random.default_rng(rng.getrandbits(32))
    w = nrng.choice(np.array([-1, 1]), size=(84, bench.n))
    x = nrng.choice(np.array([-1, 1]), size=(p["steps"], 84))
    y = imac.run_mlp(x, [w], [10], sigma=0.05, seed=rng.getrandbits(32))[0]
    for row in y >> max(0, imac.FIXED.out_bits - bench.width):
        await bench.cycle(row.tolist())


# IMAC-Sim's 10 classes of 8-bit codes; 5 inputs of 2 bits for dense ties.
@pytest.mark.sim
@pytest.mark.parametrize("shape", [(10, 8), (5, 2)], ids=["classes10", "tiny"])
def test_imac_argmax(sim, shape):
    inputs, width = shape
    run_block(ImacArgmax(inputs=inputs, width=width), block=BLOCK, sim=sim,
              test_module=__name__, params={"inputs": inputs, "width": width, "steps": 300})
