"""One IMAC layer (partitioned crossbars + neurons) vs ``golden.imac.layer_fixed`` with ``==``.

The golden circuit is ``golden.imac`` with the same crossbar size as the component, so the
horizontal partitions, their ragged last one and the padding columns are golden's. Every cycle
compares ``y`` and ``valid`` with a model of the two-stage timing (crossbars sample, then the
neurons). Stimulus: a binarized layer with device variation, then streams of inputs of every
kind with random ``sample``; synapses rewritten between and during samples; a fresh layer of
random conductance codes.
"""

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from cocotb_tests.harness import load_params, make_rng, pack, run_block, start, unpack
from golden import imac
from rtl.imac_layer import ImacLayer

BLOCK = "imac_layer"
F = imac.FIXED


class Bench:
    """Drives the layer, holds golden's conductances and the timing model of ``y``."""

    def __init__(self, dut, p, seed):
        self.dut, self.seed = dut, seed
        self.n_in, self.n_out, self.gain = p["inputs"], p["outputs"], p["gain"]
        self.circuit = imac.ImacCircuit(xbar_rows=p["rows"], xbar_cols=p["columns"])
        self.g_pos = np.zeros((self.n_in, self.n_out), dtype=np.int64)
        self.g_neg = np.zeros((self.n_in, self.n_out), dtype=np.int64)
        self.stage1 = np.zeros(self.n_out, dtype=np.int64)   # golden y of the crossbars' sample
        self.neurons_sample = 0
        self.y = np.zeros(self.n_out, dtype=np.int64)
        self.valid = 0
        self.cycles = 0

    def golden(self, x):
        return imac.layer_fixed(np.asarray([x]), self.g_pos, self.g_neg, self.gain,
                                circuit=self.circuit)[0]

    async def cycle(self, x=None, sample=False, write=None):
        dut = self.dut
        if x is not None:
            dut.x.value = pack(x, F.x_bits)
        dut.sample.value = int(sample)
        dut.we.value = int(write is not None)
        if write is not None:
            r, c, gp, gn = write
            dut.w_row.value, dut.w_col.value = r, c
            dut.w_g_pos.value, dut.w_g_neg.value = gp, gn
        # One edge of the timing model; the crossbars' sample sees the synapses before it.
        new_y = self.stage1 if self.neurons_sample else self.y
        self.valid, self.y = self.neurons_sample, new_y
        if sample:
            self.stage1 = self.golden(x)
        self.neurons_sample = int(sample)
        if write is not None:
            self.g_pos[r, c], self.g_neg[r, c] = gp, gn
        await FallingEdge(dut.clk)
        got = unpack(dut.y.value.to_unsigned(), self.n_out, F.out_bits)
        for k, (g, w) in enumerate(zip(got, self.y, strict=True)):
            assert g == int(w), (f"{BLOCK}: neuron {k} at cycle {self.cycles}: rtl {g} != "
                                 f"golden {int(w)} (seed {self.seed}; rerun with "
                                 f"SPINPIM_SEED={self.seed})")
        assert int(dut.valid.value) == self.valid, f"{BLOCK}: valid at cycle {self.cycles}"
        self.cycles += 1

    async def program(self, g_pos, g_neg):
        for r in range(self.n_in):
            for c in range(self.n_out):
                await self.cycle(write=(r, c, int(g_pos[r, c]), int(g_neg[r, c])))


def _inputs(rng, n):
    kind = rng.randrange(3)
    if kind == 0:
        return [rng.choice((-1, 1)) * F.x_max for _ in range(n)]
    if kind == 1:
        return [rng.randint(0, F.x_max) for _ in range(n)]
    return [rng.randint(100, 156) for _ in range(n)]     # near mid-scale: linear amplifiers


@cocotb.test()
async def layer_binarized_with_variation(dut):
    """A binarized layer with variation, then a stream of inputs, rewrites now and then."""
    p = load_params()
    rng, seed = make_rng(p, "layer_binarized_with_variation")
    await start(dut)
    bench = Bench(dut, p, seed)
    nrng = np.random.default_rng(rng.getrandbits(32))
    w = nrng.choice(np.array([-1, 1]), size=(bench.n_in, bench.n_out))
    g_pos, g_neg = imac.draw_conductances(w, sigma=0.05, seed=rng.getrandbits(32))
    await bench.program(imac.quantize_conductances(g_pos), imac.quantize_conductances(g_neg))
    for _ in range(p["steps"]):
        write = None
        if rng.random() < 0.1:
            r, c = rng.randrange(bench.n_in), rng.randrange(bench.n_out)
            flip = -w[r, c]
            w[r, c] = flip
            gp, gn = (imac.quantize_conductances(g)
                      for g in imac.draw_conductances(np.array([flip])))
            write = (r, c, int(gp[0]), int(gn[0]))
        await bench.cycle(x=_inputs(rng, bench.n_in), sample=rng.random() < 0.7, write=write)
    await bench.cycle()
    await bench.cycle()


@cocotb.test()
async def layer_random_codes(dut):
    """Random conductance codes (small, so that amplifiers are not always saturated)."""
    p = load_params()
    rng, seed = make_rng(p, "layer_random_codes")
    await start(dut)
    bench = Bench(dut, p, seed)
    codes = np.array([[rng.randint(190_000, 210_000) for _ in range(bench.n_out)]
                      for _ in range(2 * bench.n_in)])
    await bench.program(codes[:bench.n_in], codes[bench.n_in:])
    for _ in range(p["steps"]):
        await bench.cycle(x=_inputs(rng, bench.n_in), sample=rng.random() < 0.7)


# (inputs, outputs, rows, columns, gain): 3 x 2 partitions with a ragged last one of each
# kind; and a layer that fills one crossbar exactly.
@pytest.mark.sim
@pytest.mark.parametrize("layer", [(20, 6, 8, 4, 30), (8, 4, 8, 4, 10)],
                         ids=["partitioned", "single"])
def test_imac_layer(sim, layer):
    inputs, outputs, rows, columns, gain = layer
    hpar = -(-inputs // rows)
    dut = ImacLayer(inputs=inputs, outputs=outputs, rows=rows, columns=columns,
                    x_bits=F.x_bits, g_bits=F.g_bits, i_bits=F.i_bits,
                    mult=imac.amp_multiplier(gain), shift=F.amp_shift,
                    rail_bits=F.amp_frac_bits, recip=imac.mean_reciprocal(hpar),
                    mean_shift=F.mean_shift, lut=imac.sigmoid_lut().tolist(),
                    out_bits=F.out_bits)
    assert dut.partitions == (hpar, -(-outputs // columns))
    run_block(dut, block=BLOCK, sim=sim, test_module=__name__,
              params={"inputs": inputs, "outputs": outputs, "rows": rows, "columns": columns,
                      "gain": gain, "steps": 120})
