"""The serial IMAC co-processor vs golden: a small MLP run from the host port, every output
level of every layer and the class compared with ``==`` against ``golden.imac.layer_fixed``
chained as the circuit chains its layers (binarized inputs at +-x_max, neuron codes as the next
inputs, a bias row at +x_max) and ``golden.imac.classify``.

The host programs every synapse (device variation, and a few extreme codes), then runs random
input vectors; between runs it rewrites a few synapses and writes outside the layers (which
must change nothing). ``busy``/``done`` timing, the class, every level and the write counter
are checked.
"""

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block, start
from golden import imac
from rtl.imac_serial import ImacSerialCoproc
from sim.flows.imac_host import ImacHost

BLOCK = "imac_serial"
F = imac.FIXED


async def check_run(host, p, signs):
    """One run: the cycle count, every layer's levels (and two addresses beyond each layer,
    which read 0) and the class against golden."""
    cycles = await host.run(signs, max_cycles=10_000)
    synapses = sum((i + b) * o for (i, o), b in zip(host.shapes, host.bias, strict=True))
    assert cycles == synapses, (cycles, synapses)
    want = host.golden(signs, p["gains"], circuit=imac.ImacCircuit(xbar_rows=p["rows"]))
    for k, w in enumerate(want):
        levels = await host.read_levels(len(w) + 2, layer=k)
        assert levels == w.tolist() + [0, 0], (
            f"{BLOCK}: layer {k} levels rtl {levels} != golden {w.tolist()} + [0, 0] "
            f"(seed {p['seed']}; rerun with SPINPIM_SEED={p['seed']})")
    assert host.class_index() == int(imac.classify(want[-1])), (want[-1], p["seed"])


@cocotb.test()
async def serial_mlp_runs(dut):
    p = load_params()
    rng, _ = make_rng(p, "serial_mlp_runs")
    await start(dut)
    host = ImacHost(dut, p["shapes"], p["bias"], name=BLOCK)
    host.idle()
    nrng = np.random.default_rng(rng.getrandbits(32))
    for k, (gp, _) in enumerate(host.g):
        w = nrng.choice(np.array([-1, 1]), size=gp.shape)
        g_pos, g_neg = imac.draw_conductances(w, sigma=0.1, seed=rng.getrandbits(32))
        g_pos, g_neg = imac.quantize_conductances(g_pos), imac.quantize_conductances(g_neg)
        # Extreme codes: the widest current a row can carry, both signs.
        g_pos[0, 0], g_neg[0, 0] = F.g_max_code, 0
        g_pos[-1, -1], g_neg[-1, -1] = 0, F.g_max_code
        for r in range(gp.shape[0]):
            for c in range(gp.shape[1]):
                await host.program(k, r, c, int(g_pos[r, c]), int(g_neg[r, c]))
    n_in = host.shapes[0][0]
    for run in range(p["runs"]):
        signs = [rng.choice((-1, 1)) for _ in range(n_in)]
        if run == 0:
            signs = [1] * n_in
        await check_run(host, p, signs)
        if run % 3 == 2:
            # Rewrite a synapse, and write outside every layer (ignored, but counted).
            k = rng.randrange(len(host.g))
            rows, cols = host.g[k][0].shape
            await host.program(k, rng.randrange(rows), rng.randrange(cols),
                               rng.randint(60_000, 210_000), rng.randint(60_000, 210_000))
            await host.program(k, rows + rng.randrange((1 << len(dut.prog_row)) - rows), 0, 1, 2)
            await host.program(len(host.g) % 2 ** len(dut.prog_layer), 0, 0, 1, 2)


# A small MLP on 16-row partitions: 35 sign inputs (two input words) -> 5 -> 3 + bias -> 3;
# the first layer has 3 partitions (the last of 3 rows), the hidden ones 1, the last a bias row.
SHAPES = ((35, 5), (5, 3), (3, 3))
BIAS = (False, False, True)
GAINS = (30, 30, 10)


def build(shapes=SHAPES, bias=BIAS, gains=GAINS, rows=16):
    hpar = [-(-(i + b) // rows) for (i, _), b in zip(shapes, bias, strict=True)]
    return ImacSerialCoproc(shapes=shapes, bias=bias,
                            mults=[imac.amp_multiplier(g) for g in gains],
                            recips=[imac.mean_reciprocal(h) for h in hpar], x_max=F.x_max,
                            rows=rows, x_bits=F.x_bits, g_bits=F.g_bits, i_bits=F.i_bits,
                            shift=F.amp_shift, rail_bits=F.amp_frac_bits,
                            mean_shift=F.mean_shift, lut=imac.sigmoid_lut().tolist(),
                            out_bits=F.out_bits)


@pytest.mark.sim
def test_imac_serial(sim):
    run_block(build(), block=BLOCK, sim=sim, test_module=__name__,
              params={"shapes": SHAPES, "bias": BIAS, "gains": GAINS, "rows": 16, "runs": 9})
