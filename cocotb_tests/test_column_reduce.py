"""Reduction unit vs plain integer arithmetic every cycle, and the write-free L1 of
``golden.pim.l1_write_free`` from the planes of x, w and ``min_lane_step``'s min: one row per
cycle (1 + 3n cycles), and all three rows per cycle with ``L1_FIRST`` / ``L1_PLANE`` (n cycles,
the golden model's sense cycles)."""

import dataclasses

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge, ReadOnly

from cocotb_tests.harness import load_params, make_rng, pack, run_block, start
from cocotb_tests.stimulus import CORNERS, operands
from golden.pim import l1_write_free, min_lane_step, to_bits
from rtl.column_reduce import ColumnReduce, ReduceOp
from rtl.config import preset

BLOCK = "column_reduce"

#: op -> (factor on the accumulator: 0 clears, 1 keeps, 2 shifts left by one; weights of the
#: popcounts of row, row_w, row_min).
MEANING = {ReduceOp.HOLD:       (1, (0, 0, 0)),  ReduceOp.CLEAR:      (0, (0, 0, 0)),
           ReduceOp.ADD:        (1, (1, 0, 0)),  ReduceOp.SUB2:       (1, (-2, 0, 0)),
           ReduceOp.SHIFT_ADD:  (2, (1, 0, 0)),  ReduceOp.SHIFT_SUB2: (2, (-2, 0, 0)),
           ReduceOp.SHIFT:      (2, (0, 0, 0)),  ReduceOp.L1_FIRST:   (0, (1, 1, -2)),
           ReduceOp.L1_PLANE:   (2, (1, 1, -2)),  ReduceOp.SUB:        (1, (-1, 0, 0)),
           ReduceOp.SHIFT_SUB:  (2, (-1, 0, 0))}


class Model:
    """The accumulator as a Python int modulo 2**acc_bits; :meth:`step` drives and checks."""

    def __init__(self, dut, n, acc_bits, seed, l1_rows=True):
        self.dut, self.n, self.seed, self.l1_rows = dut, n, seed, l1_rows
        self.mod = 1 << acc_bits
        self.acc = 0
        self.cycles = 0

    def _fail(self, what, got, want):
        return (f"{BLOCK}: {what} (all lanes) at step {self.cycles}: rtl {got} != model {want} "
                f"(seed {self.seed}; rerun with SPINPIM_SEED={self.seed})")

    async def step(self, op, row, row_w, row_min):
        dut = self.dut
        dut.op.value = op.value
        dut.row.value = pack(row)
        if self.l1_rows:
            dut.row_w.value = pack(row_w)
            dut.row_min.value = pack(row_min)
        else:                      # no such ports: the L1 ops weigh row alone
            row_w = row_min = np.zeros_like(row_w)
        counts = [int(sum(int(b) for b in r)) for r in (row, row_w, row_min)]
        await ReadOnly()
        got = dut.popcount.value.to_unsigned()
        assert got == counts[0], self._fail(f"{op.name} popcount", got, counts[0])
        factor, weights = MEANING[op]
        plane = sum(wt * c for wt, c in zip(weights, counts, strict=True))
        self.acc = (factor * self.acc + plane) % self.mod
        await FallingEdge(dut.clk)
        self.cycles += 1
        got = dut.acc.value.to_unsigned()
        assert got == self.acc, self._fail(f"{op.name} acc", got, self.acc)


def _rand_row(rng, n, density):
    return np.array([rng.random() < density for _ in range(n)], dtype=np.uint8)


def _rand_rows(rng, n):
    """Three random rows (row, row_w, row_min), each of a random density incl. all-0 / all-1."""
    return [_rand_row(rng, n, rng.choice([0.0, 0.5, 0.9, 1.0])) for _ in range(3)]


@cocotb.test()
async def column_reduce_random_ops(dut):
    """Random operations on three random rows (also all-0 / all-1), wrapping modulo
    2**acc_bits; the one-row ops must ignore ``row_w`` and ``row_min``."""
    p = load_params()
    n = p["columns"]
    rng, seed = make_rng(p, "column_reduce_random_ops")
    dut._log.info("column_reduce_random_ops: columns %d acc_bits %d seed %d", n,
                  p["acc_bits"], seed)
    await start(dut)
    model = Model(dut, n, p["acc_bits"], seed, p["l1_rows"])
    ops = list(ReduceOp)
    for _ in range(p["steps"]):
        op = rng.choices(ops, weights=[1, 1, 3, 3, 3, 3, 2, 2, 3, 3, 3])[0]
        await model.step(op, *_rand_rows(rng, n))


@cocotb.test()
@cocotb.parametrize(kind=list(CORNERS))
async def column_reduce_write_free_l1(dut, kind):
    """``sum |x - w|`` over the lanes one row per cycle: CLEAR, then per plane (MSB first) x_b
    SHIFT_ADD, w_b ADD, min_b SUB2, the min planes from ``golden.pim.min_lane_step`` (random
    rows on row_w / row_min, which these ops ignore). Twice, with idle cycles."""
    p = load_params()
    n, bits = p["columns"], p["operand_bits"]
    rng, seed = make_rng(p, f"column_reduce_write_free_l1_{kind}")
    await start(dut)
    model = Model(dut, n, p["acc_bits"], seed, p["l1_rows"])
    for run in range(2):
        x, w = operands(rng, n, bits, kind)
        xp, wp = to_bits(x, bits), to_bits(w, bits)
        decided = x_is_min = np.zeros(n, dtype=np.uint8)
        await model.step(ReduceOp.CLEAR, *_rand_rows(rng, n))
        for b in range(bits - 1, -1, -1):
            min_b, decided, x_is_min = min_lane_step(xp[b], wp[b], decided, x_is_min)
            await model.step(ReduceOp.SHIFT_ADD, xp[b], *_rand_rows(rng, n)[1:])
            await model.step(ReduceOp.ADD, wp[b], *_rand_rows(rng, n)[1:])
            await model.step(ReduceOp.SUB2, min_b, *_rand_rows(rng, n)[1:])
        want = int(np.abs(x - w).sum())
        golden, _ = l1_write_free(x, w, bits)
        assert int(golden) == want, f"{BLOCK}: golden l1_write_free disagrees with numpy"
        got = dut.acc.value.to_unsigned()
        assert got == want, (f"{BLOCK}: {kind} run {run} write-free L1 (all lanes): rtl {got} "
                             f"!= golden {want} (seed {seed}; rerun with SPINPIM_SEED={seed})")
        for _ in range(rng.randrange(3)):
            await model.step(ReduceOp.HOLD, *_rand_rows(rng, n))


@cocotb.test()
@cocotb.parametrize(kind=list(CORNERS))
async def column_reduce_l1_planes(dut, kind):
    """``sum |x - w|`` over the lanes one bit-plane per cycle: per plane (MSB first) x_b on row,
    w_b on row_w, min_b (``golden.pim.min_lane_step``) on row_min; L1_FIRST for the MSB plane,
    L1_PLANE after. Exactly n cycles, the sense cycles ``golden.pim.l1_write_free`` reports.
    Twice; before each run a few random ops leave a nonzero acc that L1_FIRST must discard."""
    p = load_params()
    n, bits = p["columns"], p["operand_bits"]
    rng, seed = make_rng(p, f"column_reduce_l1_planes_{kind}")
    await start(dut)
    model = Model(dut, n, p["acc_bits"], seed, p["l1_rows"])
    for run in range(2):
        for _ in range(1 + rng.randrange(3)):
            op = rng.choice([ReduceOp.HOLD, ReduceOp.ADD, ReduceOp.SHIFT_ADD, ReduceOp.L1_PLANE])
            await model.step(op, *_rand_rows(rng, n))
        x, w = operands(rng, n, bits, kind)
        xp, wp = to_bits(x, bits), to_bits(w, bits)
        decided = x_is_min = np.zeros(n, dtype=np.uint8)
        start_cycle = model.cycles
        for b in range(bits - 1, -1, -1):
            min_b, decided, x_is_min = min_lane_step(xp[b], wp[b], decided, x_is_min)
            op = ReduceOp.L1_FIRST if b == bits - 1 else ReduceOp.L1_PLANE
            await model.step(op, xp[b], wp[b], min_b)
        cycles = model.cycles - start_cycle
        want = int(np.abs(x - w).sum())
        golden, steps = l1_write_free(x, w, bits)
        assert int(golden) == want, f"{BLOCK}: golden l1_write_free disagrees with numpy"
        if not p["l1_rows"]:       # without row_w / row_min the planes weigh x alone: sum x
            want = int(x.sum()) % (1 << p["acc_bits"])
        got = dut.acc.value.to_unsigned()
        assert got == want, (f"{BLOCK}: {kind} run {run} L1_FIRST/L1_PLANE L1 (all lanes): rtl "
                             f"{got} != numpy {want} (seed {seed}; rerun with "
                             f"SPINPIM_SEED={seed})")
        assert cycles == steps["reads"] == bits, (
            f"{BLOCK}: {kind} run {run} L1 took {cycles} cycles, golden sense cycles "
            f"{steps['reads']}, operand_bits {bits}")


@pytest.mark.sim
@pytest.mark.parametrize("size, l1_rows", [("tiny", True), ("preset", True), ("tiny", False)])
@pytest.mark.parametrize("preset_name", ["jeit_stt"])
def test_column_reduce(sim, preset_name, size, l1_rows):
    cfg = preset(preset_name)
    if size == "tiny":
        # The narrowest accumulator the configuration allows, so the random ops wrap often.
        cfg = dataclasses.replace(cfg, columns=8, operand_bits=4, acc_bits=8)
    # l1_rows=False: the reduction of a core without the write-free route (no row_w, row_min)
    run_block(ColumnReduce(config=cfg, l1_rows=l1_rows), block=BLOCK, sim=sim,
              test_module=__name__,
              params={"preset": preset_name, "columns": cfg.columns,
                      "operand_bits": cfg.operand_bits, "acc_bits": cfg.acc_bits,
                      "steps": 300, "l1_rows": l1_rows})
