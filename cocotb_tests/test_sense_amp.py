"""Sense amplifier vs ``golden.pim.sense``: random and exhaustive per-lane stimulus."""

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
from golden.pim import sense
from rtl.config import preset
from rtl.sense_amp import SenseAmp, SenseMode

BLOCK = "sense_amp"
GOLDEN_MODE = {SenseMode.READ: "read", SenseMode.AND_FU: "and_fu",
               SenseMode.AND2: "and2", SenseMode.OR2: "or2"}


async def _step(dut, n, seed, step, mode, en, a, b, fu, expect):
    """Drive one sensing at a falling edge; check ``out`` at the next one. Returns new out."""
    dut.mode.value = mode.value
    dut.en.value = en
    dut.row_a.value = pack(a)
    dut.row_b.value = pack(b)
    dut.fu.value = pack(fu)
    if en:
        expect = sense(GOLDEN_MODE[mode], a, b, fu)
    await FallingEdge(dut.clk)
    got = lanes(dut.out.value.to_unsigned(), n)
    assert np.array_equal(got, expect), first_mismatch(
        BLOCK, f"mode {mode.name} en {en} out", got, expect, seed, step)
    return expect


@cocotb.test()
async def sense_amp_random(dut):
    """Random modes, operands and strobes; ``out`` holds when ``en`` is low."""
    p = load_params()
    n = p["columns"]
    rng, seed = make_rng(p, "sense_amp_random")
    dut._log.info("sense_amp_random: columns %d, seed %d", n, seed)
    await start(dut)
    expect = np.zeros(n, dtype=np.uint8)
    assert dut.out.value.to_unsigned() == 0, f"{BLOCK}: out not 0 after reset (seed {seed})"
    for step in range(p["steps"]):
        mode = rng.choice(list(SenseMode))
        en = int(rng.random() < 0.8)
        a, b, fu = (np.array([rng.getrandbits(1) for _ in range(n)], dtype=np.uint8)
                    for _ in range(3))
        expect = await _step(dut, n, seed, step, mode, en, a, b, fu, expect)


@cocotb.test()
@cocotb.parametrize(mode=list(SenseMode))
async def sense_amp_truth_table(dut, mode):
    """Every lane sees every (row_a, row_b, fu) combination, then all-0 / all-1 rows."""
    p = load_params()
    n = p["columns"]
    seed = p["seed"]
    await start(dut)
    expect = np.zeros(n, dtype=np.uint8)
    for shift in range(8):
        combo = [(i + shift) % 8 for i in range(n)]
        a = np.array([c & 1 for c in combo], dtype=np.uint8)
        b = np.array([c >> 1 & 1 for c in combo], dtype=np.uint8)
        fu = np.array([c >> 2 & 1 for c in combo], dtype=np.uint8)
        expect = await _step(dut, n, seed, shift, mode, 1, a, b, fu, expect)
    for step, v in enumerate((0, 1, 0)):
        full = np.full(n, v, dtype=np.uint8)
        expect = await _step(dut, n, seed, 8 + step, mode, 1, full, full, full, expect)


@pytest.mark.sim
@pytest.mark.parametrize("columns", [8, None], ids=["c8", "cpreset"])
@pytest.mark.parametrize("preset_name", distinct_presets("columns"))
def test_sense_amp(sim, preset_name, columns):
    cfg = preset(preset_name)
    if columns is not None:
        cfg = dataclasses.replace(cfg, columns=columns)
    run_block(SenseAmp(config=cfg), block=BLOCK, sim=sim, test_module=__name__,
              params={"preset": preset_name, "columns": cfg.columns, "steps": 300})
