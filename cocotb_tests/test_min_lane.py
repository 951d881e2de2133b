"""Write-free min lanes vs ``golden.pim.min_lane_step`` every cycle, and n-bit MSB-first min."""

import dataclasses

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from cocotb_tests.harness import (
    first_mismatch,
    lanes,
    load_params,
    make_rng,
    pack,
    run_block,
    start,
)
from cocotb_tests.stimulus import CORNERS, operands
from golden.pim import min_lane_step, to_bits
from rtl.config import preset
from rtl.min_lane import MinLane, MinLaneOp

BLOCK = "min_lane"


class Model:
    """Golden ``min_b`` and flags carried in Python; :meth:`step` drives and checks the DUT."""

    def __init__(self, dut, n, seed):
        self.dut, self.n, self.seed = dut, n, seed
        zero = np.zeros(n, dtype=np.uint8)
        self.min_b, self.decided, self.x_is_min = zero, zero, zero
        self.cycles = 0

    def golden(self, op, x_b, w_b):
        zero = np.zeros(self.n, dtype=np.uint8)
        if op is MinLaneOp.START:
            self.min_b, self.decided, self.x_is_min = min_lane_step(x_b, w_b, zero, zero)
        elif op is MinLaneOp.STEP:
            self.min_b, self.decided, self.x_is_min = min_lane_step(
                x_b, w_b, self.decided, self.x_is_min)
        elif op is MinLaneOp.CLEAR:
            self.min_b, self.decided, self.x_is_min = zero, zero, zero

    async def step(self, op, x_b, w_b):
        dut = self.dut
        dut.op.value = op.value
        dut.x_b.value = pack(x_b)
        dut.w_b.value = pack(w_b)
        self.golden(op, x_b, w_b)
        await FallingEdge(dut.clk)
        self.cycles += 1
        for name in ("min_b", "decided", "x_is_min"):
            got = lanes(getattr(dut, name).value.to_unsigned(), self.n)
            want = getattr(self, name)
            assert np.array_equal(got, want), first_mismatch(
                BLOCK, f"{op.name} {name}", got, want, self.seed, self.cycles)
        return self.min_b


def _rand_bits(rng, n):
    return np.array([rng.getrandbits(1) for _ in range(n)], dtype=np.uint8)


@cocotb.test()
async def min_lane_random_ops(dut):
    """Random operations and operand bits, checked every cycle against ``min_lane_step``."""
    p = load_params()
    n = p["columns"]
    rng, seed = make_rng(p, "min_lane_random_ops")
    dut._log.info("min_lane_random_ops: columns %d seed %d", n, seed)
    await start(dut)
    model = Model(dut, n, seed)
    ops = list(MinLaneOp)
    for _ in range(p["steps"]):
        op = rng.choices(ops, weights=[2, 2, 6, 1])[0]
        await model.step(op, _rand_bits(rng, n), _rand_bits(rng, n))


@cocotb.test()
@cocotb.parametrize(kind=list(CORNERS))
async def min_lane_sweep(dut, kind):
    """Two back-to-back n-bit sweeps, MSB first (START, then STEP), idle cycles between.

    The min bits reassembled equal ``np.minimum(x, w)``; every cycle equals ``min_lane_step``.
    The second sweep follows the first without CLEAR: START alone must reset the flags.
    """
    p = load_params()
    n, bits = p["columns"], p["operand_bits"]
    rng, seed = make_rng(p, f"min_lane_sweep_{kind}")
    await start(dut)
    model = Model(dut, n, seed)
    zero = np.zeros(n, dtype=np.uint8)
    for sweep in range(2):
        x, w = operands(rng, n, bits, kind)
        xp, wp = to_bits(x, bits), to_bits(w, bits)
        start_cycle = model.cycles
        got = np.zeros(n, dtype=np.int64)
        for b in range(bits - 1, -1, -1):
            op = MinLaneOp.START if b == bits - 1 else MinLaneOp.STEP
            got |= (await model.step(op, xp[b], wp[b])).astype(np.int64) << b
        assert model.cycles - start_cycle == bits, f"{BLOCK}: sweep took more than n cycles"
        want = np.minimum(x, w)
        assert np.array_equal(got, want), first_mismatch(
            BLOCK, f"{kind} sweep {sweep} min(x, w)", got, want, seed)
        for _ in range(rng.randrange(3)):
            await model.step(MinLaneOp.HOLD, _rand_bits(rng, n), _rand_bits(rng, n))
    await model.step(MinLaneOp.CLEAR, zero, zero)


@pytest.mark.sim
@pytest.mark.parametrize("size", ["tiny", "preset"])
@pytest.mark.parametrize("preset_name", ["jeit_stt"])
def test_min_lane(sim, preset_name, size):
    cfg = preset(preset_name)
    if size == "tiny":
        cfg = dataclasses.replace(cfg, columns=8, operand_bits=4)
    run_block(MinLane(config=cfg), block=BLOCK, sim=sim, test_module=__name__,
              params={"preset": preset_name, "columns": cfg.columns,
                      "operand_bits": cfg.operand_bits, "steps": 300})
