"""Bit-counters vs ``golden.pim.bitcounter_step``, cycle by cycle, plus seed-001 addition."""

import dataclasses

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from cocotb_tests.harness import (
    distinct_presets,
    first_mismatch,
    lanes,
    load_params,
    make_rng,
    pack,
    run_block,
    start,
    unpack,
)
from golden.pim import bitcounter_step
from rtl.bit_counter import BitCounter, BitCounterOp
from rtl.config import preset

BLOCK = "bit_counter"
GOLDEN_OP = {BitCounterOp.HOLD: "hold", BitCounterOp.COUNT: "count",
             BitCounterOp.SHIFT: "shift", BitCounterOp.CLEAR: "clear"}


class Model:
    """Golden state carried in Python; :meth:`step` drives the DUT and checks it."""

    def __init__(self, dut, n, width, seed):
        self.dut, self.n, self.width, self.seed = dut, n, width, seed
        self.count = np.zeros(n, dtype=np.int64)
        self.step_no = 0

    def check_state(self):
        got = unpack(self.dut.count.value.to_unsigned(), self.n, self.width)
        assert got == self.count.tolist(), first_mismatch(
            BLOCK, "count", got, self.count, self.seed, self.step_no)

    async def step(self, op, bits):
        """Check the state, apply ``op`` for one cycle; return the golden ``lsb_out``."""
        self.check_state()
        dut = self.dut
        dut.op.value = op.value
        dut.sensed.value = pack(bits)
        new, lsb = bitcounter_step(self.count, GOLDEN_OP[op],
                                   bits if op is BitCounterOp.COUNT else None)
        await cocotb.triggers.ReadOnly()
        got_lsb = lanes(dut.lsb.value.to_unsigned(), self.n)
        assert np.array_equal(got_lsb, lsb), first_mismatch(
            BLOCK, f"{op.name} lsb", got_lsb, lsb, self.seed, self.step_no)
        await FallingEdge(dut.clk)
        self.count = new
        self.step_no += 1
        self.check_state()
        return lsb


@cocotb.test()
async def bit_counter_random_ops(dut):
    """A random op sequence, every lane with its own random bits; never beyond capacity."""
    p = load_params()
    n, w = p["columns"], p["width"]
    rng, seed = make_rng(p, "bit_counter_random_ops")
    dut._log.info("bit_counter_random_ops: columns %d width %d seed %d", n, w, seed)
    await start(dut)
    model = Model(dut, n, w, seed)
    ops = list(BitCounterOp)
    full = (1 << w) - 1
    for _ in range(p["steps"]):
        op = rng.choices(ops, weights=[2, 6, 2, 1])[0]
        bits = np.array([rng.getrandbits(1) for _ in range(n)], dtype=np.uint8)
        bits[model.count >= full] = 0          # stay inside the counter's contract
        await model.step(op, bits)


@cocotb.test()
async def bit_counter_full_column(dut):
    """Count all ``rows`` ones of a column (the widest count), then shift every bit out."""
    p = load_params()
    n, w, rows = p["columns"], p["width"], p["rows"]
    seed = p["seed"]
    await start(dut)
    model = Model(dut, n, w, seed)
    ones = np.ones(n, dtype=np.uint8)
    # lane i counts rows - i ones (lane 0 the full column).
    for r in range(rows):
        await model.step(BitCounterOp.COUNT, (np.arange(n) < rows - r).astype(np.uint8) & ones)
    out = []
    for _ in range(w):
        out.append(await model.step(BitCounterOp.SHIFT, ones))
    value = [sum(int(out[b][i]) << b for b in range(w)) for i in range(n)]
    want = [max(rows - i, 0) for i in range(n)]
    assert value == want, first_mismatch(BLOCK, "shifted-out full count", value, want, seed)
    await model.step(BitCounterOp.COUNT, ones)
    await model.step(BitCounterOp.CLEAR, ones)
    await model.step(BitCounterOp.HOLD, ones)


@cocotb.test()
async def bit_counter_vertical_add(dut):
    """Seed 001 Fig. 8(a): add k vertical operands per column LSB first: count the k bits of a
    bit position, write the LSB out, shift the rest as the carry. Checked against ``sum``."""
    p = load_params()
    n, w, bits = p["columns"], p["width"], p["operand_bits"]
    rng, seed = make_rng(p, "bit_counter_vertical_add")
    k = min(4, (1 << (w - 1)) - 1)             # count + carry stays below 2**w
    await start(dut)
    model = Model(dut, n, w, seed)
    operands = [[rng.getrandbits(bits) for _ in range(n)] for _ in range(k)]
    result = [0] * n
    for b in range(bits + k.bit_length()):
        for x in operands:
            await model.step(BitCounterOp.COUNT,
                             np.array([(v >> b) & 1 for v in x], dtype=np.uint8))
        lsb = await model.step(BitCounterOp.SHIFT, np.zeros(n, dtype=np.uint8))
        for i in range(n):
            result[i] |= int(lsb[i]) << b
    want = [sum(x[i] for x in operands) for i in range(n)]
    assert result == want, first_mismatch(BLOCK, f"{k}-operand sum", result, want, seed)


@pytest.mark.sim
@pytest.mark.parametrize("size", ["tiny", "preset"])
@pytest.mark.parametrize("preset_name", distinct_presets("rows", "columns"))
def test_bit_counter(sim, preset_name, size):
    cfg = preset(preset_name)
    if size == "tiny":
        cfg = dataclasses.replace(cfg, rows=8, columns=8)
    run_block(BitCounter(config=cfg), block=BLOCK, sim=sim, test_module=__name__,
              params={"preset": preset_name, "rows": cfg.rows, "columns": cfg.columns,
                      "width": cfg.bit_counter_bits, "operand_bits": cfg.operand_bits,
                      "steps": 400})
