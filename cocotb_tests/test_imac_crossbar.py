"""IMAC crossbar vs ``golden.imac.crossbar_currents``: every sample compared with ``==``.

Each cocotb test programs every synapse first (the devices are non-volatile and outlive the
reset at the start of a test), then drives inputs and compares the sampled column currents
with golden's on the golden conductance codes the test wrote. Stimulus: conductances drawn
by ``golden.imac.draw_conductances`` with device variation (a realistic layer) and fully random
codes over the whole 20-bit range; inputs binarized (+-255, the first layer), neuron levels
(0..255, hidden layers) and the whole signed 9-bit range; writes to addresses outside the
crossbar; writes in the same cycle as a sample; idle cycles without ``sample``.
"""

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from cocotb_tests.harness import load_params, make_rng, pack, run_block, start, unpack_signed
from golden import imac
from rtl.imac_crossbar import ImacCrossbar

BLOCK = "imac_crossbar"
F = imac.FIXED


class Bench:
    """Drives the crossbar; the golden conductance codes live here."""

    def __init__(self, dut, p, seed):
        self.dut, self.seed = dut, seed
        self.rows, self.cols = p["rows"], p["columns"]
        self.g_pos = np.zeros((self.rows, self.cols), dtype=np.int64)
        self.g_neg = np.zeros((self.rows, self.cols), dtype=np.int64)
        self.i_diff = [0] * self.cols          # the output register (reset: 0)
        self.samples = 0

    def idle(self):
        for name in ("x", "sample", "we", "w_row", "w_col", "w_g_pos", "w_g_neg"):
            getattr(self.dut, name).value = 0

    async def cycle(self, *, x=None, sample=False, write=None):
        """One clock: optional inputs + sample, optional ``(row, col, g_pos, g_neg)`` write;
        then the output is compared with golden."""
        dut = self.dut
        dut.sample.value = int(sample)
        if x is not None:
            dut.x.value = pack(x, F.x_bits)
        dut.we.value = int(write is not None)
        if write is not None:
            r, c, gp, gn = write
            dut.w_row.value, dut.w_col.value = r, c
            dut.w_g_pos.value, dut.w_g_neg.value = gp, gn
        if sample:
            # The sample sees the conductances before this edge's write.
            self.i_diff = imac.crossbar_currents(np.asarray(x), self.g_pos, self.g_neg).tolist()
        if write is not None and r < self.rows and c < self.cols:
            self.g_pos[r, c], self.g_neg[r, c] = gp, gn
        await FallingEdge(dut.clk)       # the rising edge acts in between
        got = unpack_signed(dut.i_diff.value.to_unsigned(), self.cols, F.i_bits)
        for c, (g, w) in enumerate(zip(got, self.i_diff, strict=True)):
            assert g == w, (f"{BLOCK}: column {c} after sample {self.samples}: rtl {g} != "
                            f"golden {w} (seed {self.seed}; rerun with SPINPIM_SEED={self.seed})")
        self.samples += int(sample)

    async def program(self, g_pos, g_neg):
        for r in range(self.rows):
            for c in range(self.cols):
                await self.cycle(write=(r, c, int(g_pos[r, c]), int(g_neg[r, c])))


def _inputs(rng, kind, rows):
    if kind == "binarized":
        return [rng.choice((-1, 1)) * F.x_max for _ in range(rows)]
    if kind == "levels":
        return [rng.randint(0, F.x_max) for _ in range(rows)]
    return [rng.randint(-(1 << (F.x_bits - 1)), (1 << (F.x_bits - 1)) - 1) for _ in range(rows)]


@cocotb.test()
async def crossbar_layer_with_variation(dut):
    """A binarized layer's conductances with device variation, then random inputs of every
    kind, samples interleaved with idle cycles (the output must hold)."""
    p = load_params()
    rng, seed = make_rng(p, "crossbar_layer_with_variation")
    await start(dut)
    bench = Bench(dut, p, seed)
    bench.idle()
    nrng = np.random.default_rng(rng.getrandbits(32))
    w = nrng.choice(np.array([-1, 1]), size=(bench.rows, bench.cols))
    g_pos, g_neg = imac.draw_conductances(w, sigma=0.1, seed=rng.getrandbits(32))
    await bench.program(imac.quantize_conductances(g_pos), imac.quantize_conductances(g_neg))
    for _ in range(p["steps"]):
        kind = rng.choice(("binarized", "levels", "full"))
        await bench.cycle(x=_inputs(rng, kind, bench.rows), sample=rng.random() < 0.8)


@cocotb.test()
async def crossbar_random_codes_and_writes(dut):
    """Random codes over the whole conductance range; random writes (also outside the
    crossbar, also in the cycle of a sample) between samples."""
    p = load_params()
    rng, seed = make_rng(p, "crossbar_random_codes_and_writes")
    await start(dut)
    bench = Bench(dut, p, seed)
    bench.idle()
    gmax = F.g_max_code
    codes = np.array([[rng.randint(0, gmax) for _ in range(bench.cols)]
                      for _ in range(2 * bench.rows)])
    await bench.program(codes[:bench.rows], codes[bench.rows:])
    row_span, col_span = 1 << p["row_bits"], 1 << p["col_bits"]
    for _ in range(p["steps"]):
        write = None
        if rng.random() < 0.5:
            write = (rng.randrange(row_span), rng.randrange(col_span),
                     rng.choice((0, gmax, rng.randint(0, gmax))),
                     rng.choice((0, gmax, rng.randint(0, gmax))))
        await bench.cycle(x=_inputs(rng, "full", bench.rows), sample=rng.random() < 0.7,
                          write=write)


@cocotb.test()
async def crossbar_extreme_currents(dut):
    """The widest currents, checked against hand values: every I+ device at the largest code,
    every I- device 0, all inputs -256 gives -rows * 256 * (2**20 - 1), and the reverse."""
    p = load_params()
    _, seed = make_rng(p, "crossbar_extreme_currents")
    await start(dut)
    bench = Bench(dut, p, seed)
    bench.idle()
    rows, cols, gmax = bench.rows, bench.cols, F.g_max_code
    full = np.full((rows, cols), gmax)
    none = np.zeros((rows, cols), dtype=np.int64)
    low = -(1 << (F.x_bits - 1))
    await bench.program(full, none)
    await bench.cycle(x=[low] * rows, sample=True)
    assert bench.i_diff == [-rows * 256 * (2 ** 20 - 1)] * cols
    await bench.program(none, full)
    await bench.cycle(x=[low] * rows, sample=True)
    assert bench.i_diff == [rows * 256 * (2 ** 20 - 1)] * cols


@pytest.mark.sim
# tiny: rows and columns not powers of two (writes outside the crossbar); rows32: one
# IMAC-Sim partition's 32 rows, the widest column sum, on 8 columns (columns are independent
# lanes; the full 32 x 32 takes about 4 minutes on Icarus for nothing more).
@pytest.mark.parametrize("shape", [(6, 3), (32, 8)], ids=["tiny", "rows32"])
def test_imac_crossbar(sim, shape):
    rows, columns = shape
    dut = ImacCrossbar(rows=rows, columns=columns, x_bits=F.x_bits, g_bits=F.g_bits,
                       i_bits=F.i_bits)
    sig = dut.signature
    steps = 200 if rows * columns < 100 else 100
    run_block(dut, block=BLOCK, sim=sim, test_module=__name__,
              params={"rows": rows, "columns": columns, "steps": steps,
                      "row_bits": sig.members["w_row"].shape,
                      "col_bits": sig.members["w_col"].shape})
