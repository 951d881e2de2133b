"""FA/FS lanes vs ``golden.pim`` fa_step / fs_step / fa_reconf, and bit-serial n-bit add/sub
(also lane by lane add-or-subtract, ``ADDSUB``, against ``golden.pim.fa_fs_addsub``)."""

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
)
from golden.pim import fa_fs_addsub, fa_reconf, fa_step, fs_step
from rtl.config import preset
from rtl.fa_fs import FaFs, FaFsOp

BLOCK = "fa_fs"


class Model:
    """Golden ``out`` / ``latch`` carried in Python; :meth:`step` drives and checks the DUT."""

    def __init__(self, dut, n, seed):
        self.dut, self.n, self.seed = dut, n, seed
        self.out = np.zeros(n, dtype=np.uint8)
        self.latch = np.zeros(n, dtype=np.uint8)
        self.cycles = 0

    def golden(self, op, a, b, sub):
        c = self.latch
        if op in (FaFsOp.ADDSUB, FaFsOp.ADDSUB0):
            if op is FaFsOp.ADDSUB0:
                c = np.zeros(self.n, dtype=np.uint8)
            s_a, c_a = fa_step(a, b, c)
            s_s, c_s = fs_step(a, b, c)
            self.out = np.where(sub == 1, s_s, s_a).astype(np.uint8)
            self.latch = np.where(sub == 1, c_s, c_a).astype(np.uint8)
        elif op is FaFsOp.ADD:
            self.out, self.latch = fa_step(a, b, c)
        elif op is FaFsOp.SUB:
            self.out, self.latch = fs_step(a, b, c)
        elif op is FaFsOp.SUM:
            self.out = fa_reconf("sum", a, b, c)
        elif op is FaFsOp.CARRY:
            self.out = self.latch = fa_reconf("carry", a, b, c)
        elif op is FaFsOp.CLEAR:
            self.latch = np.zeros(self.n, dtype=np.uint8)

    async def step(self, op, a, b, sub=None):
        dut = self.dut
        sub = np.zeros(self.n, dtype=np.uint8) if sub is None else sub
        dut.op.value = op.value
        dut.a.value = pack(a)
        dut.b.value = pack(b)
        dut.sub.value = pack(sub)
        self.golden(op, a, b, sub)
        await FallingEdge(dut.clk)
        self.cycles += 1
        for name, want in (("out", self.out), ("latch", self.latch)):
            got = lanes(getattr(dut, name).value.to_unsigned(), self.n)
            assert np.array_equal(got, want), first_mismatch(
                BLOCK, f"{op.name} {name}", got, want, self.seed, self.cycles)
        return self.out


def _rand_bits(rng, n):
    return np.array([rng.getrandbits(1) for _ in range(n)], dtype=np.uint8)


@cocotb.test()
async def fa_fs_random_ops(dut):
    """Random operations and operand bits, checked every cycle."""
    p = load_params()
    n = p["columns"]
    rng, seed = make_rng(p, "fa_fs_random_ops")
    dut._log.info("fa_fs_random_ops: columns %d seed %d", n, seed)
    await start(dut)
    model = Model(dut, n, seed)
    ops = list(FaFsOp)
    for _ in range(p["steps"]):
        op = rng.choices(ops, weights=[2, 3, 3, 1, 3, 3, 3, 2])[0]
        await model.step(op, _rand_bits(rng, n), _rand_bits(rng, n), _rand_bits(rng, n))


@cocotb.test()
@cocotb.parametrize(kind=["add", "sub", "reconf"])
async def fa_fs_ripple(dut, kind):
    """n-bit add / subtract of random per-lane operands, LSB first, 2 cycles per bit.

    ``add`` / ``sub``: ADD or SUB then HOLD (the array's write-back cycle, seed 002).
    ``reconf``: SUM then CARRY (seed 000). Lanes 0-3 hold the corners (max + 1, 0 - max,
    max + max, 0 + 0). The result is the golden bit chain and also the plain integer.
    """
    p = load_params()
    n, bits = p["columns"], p["operand_bits"]
    rng, seed = make_rng(p, f"fa_fs_ripple_{kind}")
    top = (1 << bits) - 1
    xs = [rng.getrandbits(bits) for _ in range(n)]
    ys = [rng.getrandbits(bits) for _ in range(n)]
    for i, (x, y) in enumerate([(top, 1), (0, top), (top, top), (0, 0)][:n]):
        xs[i], ys[i] = x, y
    await start(dut)
    model = Model(dut, n, seed)
    zero = np.zeros(n, dtype=np.uint8)
    await model.step(FaFsOp.CLEAR, zero, zero)
    start_cycle = model.cycles
    result, chain_c = [0] * n, zero
    chain = [0] * n
    for bit in range(bits):
        a = np.array([(x >> bit) & 1 for x in xs], dtype=np.uint8)
        b = np.array([(y >> bit) & 1 for y in ys], dtype=np.uint8)
        if kind == "reconf":
            s = await model.step(FaFsOp.SUM, a, b)
            await model.step(FaFsOp.CARRY, a, b)
            g_s, chain_c = fa_step(a, b, chain_c)
        else:
            op = FaFsOp.ADD if kind == "add" else FaFsOp.SUB
            s = await model.step(op, a, b)
            await model.step(FaFsOp.HOLD, zero, zero)
            g_s, chain_c = (fa_step if kind == "add" else fs_step)(a, b, chain_c)
        for i in range(n):
            result[i] |= int(s[i]) << bit
            chain[i] |= int(g_s[i]) << bit
    assert model.cycles - start_cycle == 2 * bits
    sign = -1 if kind == "sub" else 1
    got = [r + sign * (int(model.latch[i]) << bits) for i, r in enumerate(result)]
    gold = [r + sign * (int(chain_c[i]) << bits) for i, r in enumerate(chain)]
    want = [x - y if kind == "sub" else x + y for x, y in zip(xs, ys, strict=True)]
    assert gold == want, f"{BLOCK}: golden bit chain disagrees with integer {kind}"
    assert got == want, first_mismatch(BLOCK, f"{bits}-bit {kind}", got, want, seed)


@cocotb.test()
async def fa_fs_addsub_ripple(dut):
    """Lane by lane n-bit add or subtract (random signs), ADDSUB0 on bit 0 then ADDSUB, each
    step followed by the write-back's HOLD: 2n cycles, == ``golden.pim.fa_fs_addsub`` == the
    integers mod 2**n."""
    p = load_params()
    n, bits = p["columns"], p["operand_bits"]
    rng, seed = make_rng(p, "fa_fs_addsub_ripple")
    xs = np.array([rng.getrandbits(bits) for _ in range(n)], dtype=np.int64)
    ys = np.array([rng.getrandbits(bits) for _ in range(n)], dtype=np.int64)
    sub = _rand_bits(rng, n)
    await start(dut)
    model = Model(dut, n, seed)
    zero = np.zeros(n, dtype=np.uint8)
    result = np.zeros(n, dtype=np.int64)
    for bit in range(bits):
        a = ((xs >> bit) & 1).astype(np.uint8)
        b = ((ys >> bit) & 1).astype(np.uint8)
        op = FaFsOp.ADDSUB0 if bit == 0 else FaFsOp.ADDSUB
        s = await model.step(op, a, b, sub)
        await model.step(FaFsOp.HOLD, zero, zero)
        result |= s.astype(np.int64) << bit
    assert model.cycles == 2 * bits
    want = np.where(sub == 1, xs - ys, xs + ys) % (1 << bits)
    assert np.array_equal(fa_fs_addsub(xs, ys, sub, bits)[0], want), \
        f"{BLOCK}: golden fa_fs_addsub disagrees with the integers"
    assert np.array_equal(result, want), first_mismatch(BLOCK, f"{bits}-bit add/sub",
                                                        result.tolist(), want.tolist(), seed)


@pytest.mark.sim
@pytest.mark.parametrize("size", ["tiny", "preset"])
@pytest.mark.parametrize("preset_name", distinct_presets("columns", "operand_bits"))
def test_fa_fs(sim, preset_name, size):
    cfg = preset(preset_name)
    if size == "tiny":
        cfg = dataclasses.replace(cfg, columns=8, operand_bits=4)
    run_block(FaFs(config=cfg), block=BLOCK, sim=sim, test_module=__name__,
              params={"preset": preset_name, "columns": cfg.columns,
                      "operand_bits": cfg.operand_bits, "steps": 300})
