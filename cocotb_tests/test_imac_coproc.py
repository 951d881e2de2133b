"""The IMAC co-processor vs golden: a small MLP run from the host port, every output level and
the class compared with ``==`` against ``golden.imac.layer_fixed`` chained as the circuit
chains its layers (binarized inputs at +-x_max, neuron codes as the next inputs, a bias row at
+x_max) and ``golden.imac.classify``.

The host programs every synapse (device variation), then runs random input vectors; between
runs it rewrites a few synapses and writes outside the layers (which must change nothing).
``busy``/``done`` timing, the class, every output level and the write counter are checked.
"""

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block, start
from golden import imac
from rtl.imac_coproc import ImacCoproc
from sim.flows.imac_host import ImacHost

BLOCK = "imac_coproc"
F = imac.FIXED


async def check_run(host, p, signs):
    """One run: the cycle count, the last layer's levels and the class against golden."""
    cycles = await host.run(signs, max_cycles=100)
    assert cycles == 2 * len(host.shapes), cycles
    circuit = imac.ImacCircuit(xbar_rows=p["rows"], xbar_cols=p["columns"])
    want = host.golden(signs, p["gains"], circuit=circuit)[-1]
    levels = await host.read_levels(len(want))
    assert levels == want.tolist(), (f"{BLOCK}: levels rtl {levels} != golden "
                                     f"{want.tolist()} (seed {p['seed']}; rerun with "
                                     f"SPINPIM_SEED={p['seed']})")
    assert host.class_index() == int(imac.classify(want)), (levels, p["seed"])


@cocotb.test()
async def coproc_mlp_runs(dut):
    p = load_params()
    rng, _ = make_rng(p, "coproc_mlp_runs")
    await start(dut)
    host = ImacHost(dut, p["shapes"], p["bias"], name=BLOCK)
    host.idle()
    nrng = np.random.default_rng(rng.getrandbits(32))
    for k, (gp, _) in enumerate(host.g):
        w = nrng.choice(np.array([-1, 1]), size=gp.shape)
        g_pos, g_neg = imac.draw_conductances(w, sigma=0.05, seed=rng.getrandbits(32))
        g_pos, g_neg = imac.quantize_conductances(g_pos), imac.quantize_conductances(g_neg)
        for r in range(gp.shape[0]):
            for c in range(gp.shape[1]):
                await host.program(k, r, c, int(g_pos[r, c]), int(g_neg[r, c]))
    n_in = host.shapes[0][0]
    for run in range(p["runs"]):
        await check_run(host, p, [rng.choice((-1, 1)) for _ in range(n_in)])
        if run % 3 == 2:
            # Rewrite a synapse, and write outside every layer (ignored, but counted).
            k = rng.randrange(len(host.g))
            rows, cols = host.g[k][0].shape
            await host.program(k, rng.randrange(rows), rng.randrange(cols),
                               rng.randint(60_000, 210_000), rng.randint(60_000, 210_000))
            await host.program(k, rows + rng.randrange(4), 0, 1, 2)
            await host.program(len(host.g) % 2 ** len(dut.prog_layer), 0, 0, 1, 2)


# A small MLP on 16 x 4 crossbars: 33 sign inputs (two input words) -> 3 + bias -> 3; the first
# layer has 3 horizontal partitions (the last of one row), the second one, and both pad a
# column. Small on purpose: every synapse is a register pair and a multiplier in the
# simulation, and a 3-layer 40-8-6-4 network took over 15 minutes to compile in Verilator.
SHAPES = ((33, 3), (3, 3))
BIAS = (False, True)
GAINS = (30, 10)


@pytest.mark.sim
def test_imac_coproc(sim):
    rows, columns = 16, 4
    hpar = [-(-(i + b) // rows) for (i, _), b in zip(SHAPES, BIAS, strict=True)]
    dut = ImacCoproc(shapes=SHAPES, bias=BIAS, mults=[imac.amp_multiplier(g) for g in GAINS],
                     recips=[imac.mean_reciprocal(h) for h in hpar], x_max=F.x_max,
                     rows=rows, columns=columns, x_bits=F.x_bits, g_bits=F.g_bits,
                     i_bits=F.i_bits, shift=F.amp_shift, rail_bits=F.amp_frac_bits,
                     mean_shift=F.mean_shift, lut=imac.sigmoid_lut().tolist(),
                     out_bits=F.out_bits)
    run_block(dut, block=BLOCK, sim=sim, test_module=__name__,
              params={"shapes": SHAPES, "bias": BIAS, "gains": GAINS, "rows": rows,
                      "columns": columns, "runs": 12})
