"""Abs-diff lanes vs ``golden.pim.fs_step`` every cycle and ``golden.pim.abs_diff`` (value and
cycle count) for n-bit operands."""

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
from golden.pim import abs_diff, from_bits, fs_step, to_bits
from rtl.abs_diff_lane import AbsDiffLane, AbsDiffOp
from rtl.config import preset

BLOCK = "abs_diff_lane"


class Model:
    """Golden ``out`` / ``swap`` / ``borrow`` from ``fs_step``; :meth:`step` drives and checks."""

    def __init__(self, dut, n, seed):
        self.dut, self.n, self.seed = dut, n, seed
        zero = np.zeros(n, dtype=np.uint8)
        self.out, self.swap, self.borrow = zero, zero, zero
        self.cycles = 0

    def golden(self, op, first, x_b, w_b):
        zero = np.zeros(self.n, dtype=np.uint8)
        if op is AbsDiffOp.SIGN:
            _, self.swap = fs_step(x_b, w_b, zero if first else self.swap)
        elif op is AbsDiffOp.DIFF:
            big = np.where(self.swap, w_b, x_b)
            small = np.where(self.swap, x_b, w_b)
            self.out, self.borrow = fs_step(big, small, zero if first else self.borrow)
        elif op is AbsDiffOp.CLEAR:
            self.out, self.swap, self.borrow = zero, zero, zero

    async def step(self, op, first, x_b, w_b):
        dut = self.dut
        dut.op.value = op.value
        dut.first.value = int(first)
        dut.x_b.value = pack(x_b)
        dut.w_b.value = pack(w_b)
        self.golden(op, first, x_b, w_b)
        await FallingEdge(dut.clk)
        self.cycles += 1
        for name in ("out", "swap", "borrow"):
            got = lanes(getattr(dut, name).value.to_unsigned(), self.n)
            want = getattr(self, name)
            assert np.array_equal(got, want), first_mismatch(
                BLOCK, f"{op.name}{' first' if first else ''} {name}", got, want, self.seed,
                self.cycles)
        return self.out


def _rand_bits(rng, n):
    return np.array([rng.getrandbits(1) for _ in range(n)], dtype=np.uint8)


@cocotb.test()
async def abs_diff_lane_random_ops(dut):
    """Random operations, ``first`` and operand bits, checked every cycle."""
    p = load_params()
    n = p["columns"]
    rng, seed = make_rng(p, "abs_diff_lane_random_ops")
    dut._log.info("abs_diff_lane_random_ops: columns %d seed %d", n, seed)
    await start(dut)
    model = Model(dut, n, seed)
    ops = list(AbsDiffOp)
    for _ in range(p["steps"]):
        op = rng.choices(ops, weights=[2, 4, 4, 1])[0]
        await model.step(op, rng.random() < 0.25, _rand_bits(rng, n), _rand_bits(rng, n))


@cocotb.test()
@cocotb.parametrize(kind=list(CORNERS))
async def abs_diff_lane_abs_diff(dut, kind):
    """n-bit ``|x - w|`` per lane, twice back to back: n SIGN cycles, then n times DIFF + the
    write-back cycle (HOLD). Equals ``golden.pim.abs_diff`` and ``np.abs(x - w)``, in exactly the
    golden cycle count; ``swap`` after the sign pass is ``x < w``, the last borrow is 0."""
    p = load_params()
    n, bits = p["columns"], p["operand_bits"]
    rng, seed = make_rng(p, f"abs_diff_lane_abs_diff_{kind}")
    await start(dut)
    model = Model(dut, n, seed)
    for run in range(2):
        x, w = operands(rng, n, bits, kind)
        xp, wp = to_bits(x, bits), to_bits(w, bits)
        start_cycle = model.cycles
        for b in range(bits):
            await model.step(AbsDiffOp.SIGN, b == 0, xp[b], wp[b])
        want_swap = (x < w).astype(np.uint8)
        assert np.array_equal(model.swap, want_swap), first_mismatch(
            BLOCK, f"{kind} run {run} sign flag", model.swap, want_swap, seed)
        rows = []
        for b in range(bits):
            rows.append(await model.step(AbsDiffOp.DIFF, b == 0, xp[b], wp[b]))
            # Write-back cycle: the array stores ``out``; the lane holds, its inputs are junk.
            await model.step(AbsDiffOp.HOLD, rng.getrandbits(1), _rand_bits(rng, n),
                             _rand_bits(rng, n))
        got = from_bits(np.stack(rows))
        golden, steps = abs_diff(x, w, bits)
        want = np.abs(x - w)
        assert np.array_equal(golden, want), f"{BLOCK}: golden abs_diff disagrees with numpy"
        assert np.array_equal(got, want), first_mismatch(
            BLOCK, f"{kind} run {run} |x - w|", got, want, seed)
        assert not model.borrow.any(), f"{BLOCK}: larger minus smaller borrowed (seed {seed})"
        cycles = model.cycles - start_cycle
        assert cycles == steps["cycles"] == 3 * bits, (
            f"{BLOCK}: drove {cycles} cycles, golden abs_diff counts {steps['cycles']}")


@pytest.mark.sim
@pytest.mark.parametrize("size", ["tiny", "preset"])
@pytest.mark.parametrize("preset_name", ["jeit_stt"])
def test_abs_diff_lane(sim, preset_name, size):
    cfg = preset(preset_name)
    if size == "tiny":
        cfg = dataclasses.replace(cfg, columns=8, operand_bits=4)
    run_block(AbsDiffLane(config=cfg), block=BLOCK, sim=sim, test_module=__name__,
              params={"preset": preset_name, "columns": cfg.columns,
                      "operand_bits": cfg.operand_bits, "steps": 300})
