"""IMAC neurons vs ``golden.imac.amp_fixed`` and ``golden.imac.neuron_fixed`` with ``==``.

The component is built with golden's constants (:func:`golden.imac.amp_multiplier`,
:func:`~golden.imac.mean_reciprocal`, :func:`~golden.imac.sigmoid_lut`, the widths of
``golden.imac.FIXED``). After every cycle both registered stages are compared: the partition
amplifier outputs and the neuron outputs. Stimulus: the currents of a real binarized layer
(``golden.imac.layer_fixed`` stages, device variation), currents of random magnitude over the
whole signed width (small ones stay in the amplifier's linear range, large ones saturate it),
zero and the extremes, and cycles without ``sample`` (the outputs must hold).
"""

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from cocotb_tests.harness import (
    load_params,
    make_rng,
    pack,
    run_block,
    start,
    unpack,
    unpack_signed,
)
from golden import imac
from rtl.imac_neuron import ImacNeuron

BLOCK = "imac_neuron"
F = imac.FIXED
AMP_BITS = F.amp_frac_bits + 2


class Bench:
    """Drives ``i`` and ``sample``; keeps golden's registered stages and compares them."""

    def __init__(self, dut, p, seed):
        self.dut, self.seed = dut, seed
        self.parts, self.cols = p["partitions"], p["columns"]
        self.mult = imac.amp_multiplier(p["gain"])
        self.lut = imac.sigmoid_lut()
        self.amp = np.zeros((self.parts, self.cols), dtype=np.int64)
        self.y = np.zeros(self.cols, dtype=np.int64)
        self.cycles = 0

    def _check(self, what, got, want):
        for k, (g, w) in enumerate(zip(got, np.ravel(want), strict=True)):
            assert g == int(w), (f"{BLOCK}: {what} element {k} at cycle {self.cycles}: rtl {g} "
                                 f"!= golden {int(w)} (seed {self.seed}; rerun with "
                                 f"SPINPIM_SEED={self.seed})")

    async def cycle(self, currents, sample=True):
        """``currents`` is ``[partitions][columns]``; one clock, then both stages checked."""
        dut = self.dut
        flat = [int(v) for row in currents for v in row]
        dut.i.value = pack(flat, F.i_bits)
        dut.sample.value = int(sample)
        if sample:
            self.amp = imac.amp_fixed(
                np.array(flat, dtype=np.int64).reshape(self.parts, self.cols), self.mult)
            self.y = imac.neuron_fixed(self.amp, self.lut)
        await FallingEdge(dut.clk)
        self._check("amp", unpack_signed(dut.amp.value.to_unsigned(), self.parts * self.cols,
                                         AMP_BITS), self.amp)
        self._check("y", unpack(dut.y.value.to_unsigned(), self.cols, F.out_bits), self.y)
        self.cycles += 1


@cocotb.test()
async def neuron_layer_currents(dut):
    """Partition currents of a binarized layer with variation, as the crossbars give them."""
    p = load_params()
    rng, seed = make_rng(p, "neuron_layer_currents")
    await start(dut)
    bench = Bench(dut, p, seed)
    nrng = np.random.default_rng(rng.getrandbits(32))
    rows = 32 * bench.parts
    w = nrng.choice(np.array([-1, 1]), size=(rows, bench.cols))
    g_pos, g_neg = imac.draw_conductances(w, sigma=0.1, seed=rng.getrandbits(32))
    g_pos, g_neg = imac.quantize_conductances(g_pos), imac.quantize_conductances(g_neg)
    for step in range(p["steps"]):
        if step % 2:
            x = nrng.choice(np.array([-1, 1]), size=(1, rows)) * F.x_max
        else:   # hidden-layer levels, mostly near mid-scale so that amplifiers stay linear
            x = np.clip(nrng.normal(128, 30, size=(1, rows)).round(), 0, F.x_max)
            x = x.astype(np.int64)
        _, i, _ = imac.layer_fixed(x, g_pos, g_neg, p["gain"], return_stages=True)
        await bench.cycle(i[0].tolist(), sample=rng.random() < 0.85)


@cocotb.test()
async def neuron_random_currents(dut):
    """Currents of random sign and magnitude (2**0 .. 2**(i_bits-1)), the corners included;
    golden's currents are checked to cover linear, saturated and zero amplifier outputs."""
    p = load_params()
    rng, seed = make_rng(p, "neuron_random_currents")
    await start(dut)
    bench = Bench(dut, p, seed)
    top = 1 << (F.i_bits - 1)
    corners = (0, 1, -1, top - 1, -top)
    seen = set()
    for _ in range(p["steps"]):
        cur = [[rng.choice(corners) if rng.random() < 0.1
                else rng.choice((-1, 1)) * rng.getrandbits(rng.randint(1, F.i_bits - 1))
                for _ in range(bench.cols)] for _ in range(bench.parts)]
        await bench.cycle(cur, sample=rng.random() < 0.9)
        rail = 1 << F.amp_frac_bits
        seen |= {"rail" if abs(a) == rail else "zero" if a == 0 else "linear"
                 for a in bench.amp.ravel()}
    assert seen == {"rail", "zero", "linear"}, seen


@cocotb.test()
async def neuron_hand_values(dut):
    """Hand values: no current gives mid-scale 128 (255 / 2 rounded half up); every partition
    at the positive extreme saturates to the rail, 1024, and the output to 255; the negative
    extreme gives -1024 and 0."""
    p = load_params()
    _, seed = make_rng(p, "neuron_hand_values")
    await start(dut)
    bench = Bench(dut, p, seed)
    top = 1 << (F.i_bits - 1)
    for value, amp, y in ((0, 0, 128), (top - 1, 1024, 255), (-top, -1024, 0)):
        await bench.cycle([[value] * bench.cols] * bench.parts)
        assert bench.amp.ravel().tolist() == [amp] * (bench.parts * bench.cols)
        assert bench.y.tolist() == [y] * bench.cols


# (partitions, columns, gain): IMAC-Sim's first layer (400 inputs + bias: 13 partitions, gain
# 30) on 4 neurons, and its last layer (84 inputs + bias: 3 partitions, gain 10) on 10.
@pytest.mark.sim
@pytest.mark.parametrize("layer", [(13, 4, 30), (3, 10, 10)], ids=["first", "last"])
def test_imac_neuron(sim, layer):
    partitions, columns, gain = layer
    dut = ImacNeuron(partitions=partitions, columns=columns, i_bits=F.i_bits,
                     mult=imac.amp_multiplier(gain), shift=F.amp_shift,
                     rail_bits=F.amp_frac_bits, recip=imac.mean_reciprocal(partitions),
                     mean_shift=F.mean_shift, lut=imac.sigmoid_lut().tolist(),
                     out_bits=F.out_bits)
    run_block(dut, block=BLOCK, sim=sim, test_module=__name__,
              params={"partitions": partitions, "columns": columns, "gain": gain,
                      "steps": 150})
