"""Zero detectors vs ``(x == 0) | (w == 0)`` and the ``skipped`` count of
``golden.pim.zero_skip_l1``, plus a cycle-by-cycle model of the two flags."""

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
from golden.pim import to_bits, zero_skip_l1
from rtl.config import preset
from rtl.zero_detect import ZeroDetect, ZeroDetectOp

BLOCK = "zero_detect"


class Model:
    """The two "nonzero seen" flags per lane in Python; :meth:`step` drives and checks."""

    def __init__(self, dut, n, seed):
        self.dut, self.n, self.seed = dut, n, seed
        self.x_seen = np.zeros(n, dtype=np.uint8)
        self.w_seen = np.zeros(n, dtype=np.uint8)
        self.cycles = 0

    @property
    def skip(self):
        return (1 - (self.x_seen & self.w_seen)).astype(np.uint8)

    def check(self, what):
        got = lanes(self.dut.skip.value.to_unsigned(), self.n)
        assert np.array_equal(got, self.skip), first_mismatch(
            BLOCK, f"{what} skip", got, self.skip, self.seed, self.cycles)
        got_n, want_n = self.dut.skipped.value.to_unsigned(), int(self.skip.sum())
        assert got_n == want_n, (
            f"{BLOCK}: {what} skipped (all lanes) at step {self.cycles}: rtl {got_n} != model "
            f"{want_n} (seed {self.seed}; rerun with SPINPIM_SEED={self.seed})")

    async def step(self, op, first, x_b, w_b):
        dut = self.dut
        dut.op.value = op.value
        dut.first.value = int(first)
        dut.x_b.value = pack(x_b)
        dut.w_b.value = pack(w_b)
        if op is ZeroDetectOp.SCAN:
            keep = 0 if first else 1
            self.x_seen = (self.x_seen & keep) | x_b
            self.w_seen = (self.w_seen & keep) | w_b
        elif op is ZeroDetectOp.CLEAR:
            self.x_seen = np.zeros(self.n, dtype=np.uint8)
            self.w_seen = np.zeros(self.n, dtype=np.uint8)
        await FallingEdge(dut.clk)
        self.cycles += 1
        self.check(f"{op.name}{' first' if first else ''}")


def _rand_bits(rng, n, density=0.5):
    return np.array([rng.random() < density for _ in range(n)], dtype=np.uint8)


@cocotb.test()
async def zero_detect_random_ops(dut):
    """Random operations, ``first`` and sparse operand bits, checked every cycle."""
    p = load_params()
    n = p["columns"]
    rng, seed = make_rng(p, "zero_detect_random_ops")
    dut._log.info("zero_detect_random_ops: columns %d seed %d", n, seed)
    await start(dut)
    model = Model(dut, n, seed)
    model.check("reset")
    ops = list(ZeroDetectOp)
    for _ in range(p["steps"]):
        op = rng.choices(ops, weights=[2, 6, 1])[0]
        density = rng.choice([0.05, 0.2, 0.5])
        await model.step(op, rng.random() < 0.2, _rand_bits(rng, n, density),
                         _rand_bits(rng, n, density))


@cocotb.test()
@cocotb.parametrize(kind=[*CORNERS, "sparse"])
async def zero_detect_operands(dut, kind):
    """n-bit x, w per lane scanned (LSB first, then MSB first, no CLEAR between): ``skip`` ==
    ``(x == 0) | (w == 0)`` and ``skipped`` == ``zero_skip_l1``'s count."""
    p = load_params()
    n, bits = p["columns"], p["operand_bits"]
    rng, seed = make_rng(p, f"zero_detect_operands_{kind}")
    await start(dut)
    model = Model(dut, n, seed)
    for order in ("lsb_first", "msb_first"):
        x, w = operands(rng, n, bits, "random" if kind == "sparse" else kind)
        if kind == "sparse":
            x[[rng.random() < 0.4 for _ in range(n)]] = 0
            w[[rng.random() < 0.3 for _ in range(n)]] = 0
        xp, wp = to_bits(x, bits), to_bits(w, bits)
        planes = range(bits) if order == "lsb_first" else range(bits - 1, -1, -1)
        for i, b in enumerate(planes):
            await model.step(ZeroDetectOp.SCAN, i == 0, xp[b], wp[b])
        got = lanes(dut.skip.value.to_unsigned(), n)
        want = ((x == 0) | (w == 0)).astype(np.uint8)
        assert np.array_equal(got, want), first_mismatch(
            BLOCK, f"{kind} {order} skip", got, want, seed)
        _, skipped, _ = zero_skip_l1(x, w, n=bits)
        got_n = dut.skipped.value.to_unsigned()
        assert got_n == int(skipped), (
            f"{BLOCK}: {kind} {order} skipped (all lanes): rtl {got_n} != golden "
            f"{int(skipped)} (seed {seed}; rerun with SPINPIM_SEED={seed})")
        await model.step(ZeroDetectOp.HOLD, 0, _rand_bits(rng, n), _rand_bits(rng, n))


@pytest.mark.sim
@pytest.mark.parametrize("size", ["tiny", "preset"])
@pytest.mark.parametrize("preset_name", ["jeit_stt"])
def test_zero_detect(sim, preset_name, size):
    cfg = preset(preset_name)
    if size == "tiny":
        cfg = dataclasses.replace(cfg, columns=8, operand_bits=4)
    run_block(ZeroDetect(config=cfg), block=BLOCK, sim=sim, test_module=__name__,
              params={"preset": preset_name, "columns": cfg.columns,
                      "operand_bits": cfg.operand_bits, "steps": 300})
