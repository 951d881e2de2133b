"""MTJ array model vs ``golden.array``: every command, cycle by cycle, per technology.

One golden :class:`~golden.array.MtjArray` lives as long as the simulation (the cells are
non-volatile, so they outlive the reset at the start of each cocotb test); every command is
applied to both and the registered outputs (``sensed``, ``program_without_erase``, ``error``)
are compared with ``==`` one cycle later. Corner cases also check hand-written values.
"""

import dataclasses

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge

from cocotb_tests.harness import (
    lanes,
    load_params,
    make_rng,
    pack,
    run_block,
    start,
)
from golden.array import MtjArray as GoldenArray
from golden.array import rate_to_threshold
from rtl.config import preset
from rtl.mtj_array import MacroCmd, MtjArray

BLOCK = "mtj_array"

#: Technology -> (preset it comes from, rows, columns) of the simulated array: small, and rows
#: not a power of two for ``stt`` so that out-of-range row addresses are exercised.
SHAPES = {
    "stt":       ("jeit_stt", 24, 16),
    "nand_spin": ("nand_spin", 32, 16),
    "sot":       ("dima_sot", 16, 24),
}
#: Fault defaults of the simulated configs (what reset loads): off unless fault_en is driven.
READ_FAULT_RATE = 0.05
FAULT_SEED = 0x2468ACE1

GOLDEN_NAME = {MacroCmd.NOP: "nop", MacroCmd.READ: "read", MacroCmd.AND_FU: "and_fu",
               MacroCmd.AND2: "and2", MacroCmd.OR2: "or2", MacroCmd.WRITE: "write",
               MacroCmd.ERASE: "erase", MacroCmd.PROGRAM: "program"}
SENSE = (MacroCmd.READ, MacroCmd.AND_FU, MacroCmd.AND2, MacroCmd.OR2)


class Model:
    """The golden array plus the output latches; :meth:`step` drives, steps and checks."""

    def __init__(self, p):
        self.n, self.rows, self.tech = p["columns"], p["rows"], p["technology"]
        self.per = p["mtjs_per_strip"]
        self.gold = GoldenArray(rows=self.rows, columns=self.n, technology=self.tech,
                                mtjs_per_strip=self.per, fault_seed=p["fault_seed"],
                                fault_threshold=rate_to_threshold(p["read_fault_rate"]))
        self.commands = 0
        self.reset()

    def reset(self):
        self.gold.reset()
        self.sensed = np.zeros(self.n, dtype=np.uint8)
        self.pwe = np.zeros(self.n, dtype=np.uint8)
        self.error = 0

    def attach(self, dut, seed):
        self.dut, self.seed, self.cycles = dut, seed, 0

    def idle(self):
        dut = self.dut
        for name in ("cmd", "row_a", "row_b", "data", "mask", "fu", "fault_en", "fault_load",
                     "fault_seed", "fault_threshold"):
            getattr(dut, name).value = 0

    async def step(self, cmd, *, row_a=0, row_b=0, data=0, mask=0, fu=0, fault_en=0,
                   load=None):
        dut, n = self.dut, self.n
        dut.cmd.value = cmd.value
        dut.row_a.value, dut.row_b.value = row_a, row_b
        dut.data.value, dut.mask.value, dut.fu.value = data, mask, fu
        dut.fault_en.value = fault_en
        dut.fault_load.value = load is not None
        dut.fault_seed.value, dut.fault_threshold.value = load if load is not None else (0, 0)
        out = self.gold.command(GOLDEN_NAME[cmd], row_a=row_a, row_b=row_b,
                                data=lanes(data, n), mask=lanes(mask, n), fu=lanes(fu, n),
                                fault_en=bool(fault_en))
        if load is not None:                 # a sense in the same cycle used the old state
            self.gold.load_faults(*load)
        if cmd in SENSE:
            self.sensed = out
        elif cmd is not MacroCmd.NOP:
            self.pwe, self.error = out.program_without_erase, int(out.error)
        self.commands += cmd is not MacroCmd.NOP
        await FallingEdge(dut.clk)
        self.cycles += 1
        what = f"step {self.cycles} {cmd.name} row_a {row_a} row_b {row_b}"
        rerun = f"(seed {self.seed}; rerun with SPINPIM_SEED={self.seed})"
        for name, want in (("sensed", self.sensed), ("program_without_erase", self.pwe)):
            got = lanes(getattr(dut, name).value.to_unsigned(), n)
            bad = np.flatnonzero(got != want)
            assert not bad.size, (f"{BLOCK}: {what}: {name} column {bad[0]}: rtl {got[bad[0]]} "
                                  f"!= golden {want[bad[0]]}; {bad.size} columns differ {rerun}")
        got = int(dut.error.value)
        assert got == self.error, f"{BLOCK}: {what}: error rtl {got} != golden {self.error} {rerun}"
        return pack(self.sensed), pack(self.pwe), self.error


_MODEL = None


async def begin(dut, test_name):
    """Reset the DUT (cells keep their state) and the model; the model is created at the first
    call, i.e. at power-up."""
    global _MODEL
    p = load_params()
    rng, seed = make_rng(p, test_name)
    dut._log.info("%s: %s %dx%d seed %d", test_name, p["technology"], p["rows"], p["columns"],
                  seed)
    if _MODEL is None:
        _MODEL = Model(p)
    _MODEL.attach(dut, seed)
    _MODEL.idle()
    await start(dut)
    _MODEL.reset()
    return _MODEL, rng, p


def _ones(n):
    return (1 << n) - 1


@cocotb.test()
async def power_up(dut):
    """nand_spin: a program before any erase flags every masked column; others: the write
    commands each technology refuses set ``error``."""
    model, rng, p = await begin(dut, "power_up")
    n, full = model.n, _ones(model.n)
    fresh = model.commands == 0
    if model.tech == "nand_spin":
        for strip in range(model.rows // model.per):
            mask = rng.getrandbits(n) | 1
            _, pwe, err = await model.step(MacroCmd.PROGRAM, row_a=strip * model.per,
                                           data=rng.getrandbits(n), mask=mask)
            if fresh:
                assert pwe == mask and err == 0, (
                    f"{BLOCK}: program at power-up, strip {strip}: flags {pwe:#x}, want "
                    f"{mask:#x} (every masked column)")
        _, _, err = await model.step(MacroCmd.WRITE, row_a=0, data=full, mask=full)
        assert err == 1
    else:
        for cmd in (MacroCmd.ERASE, MacroCmd.PROGRAM):
            _, pwe, err = await model.step(cmd, row_a=1, data=full, mask=full)
            assert err == 1 and pwe == 0, f"{BLOCK}: {cmd.name} on {model.tech}: error {err}"
        _, _, err = await model.step(MacroCmd.WRITE, row_a=1, data=0x5A5A & full, mask=full)
        assert err == 0


@cocotb.test()
async def random_commands(dut):
    """Random commands, rows (in and out of range), data, masks, FU operands, with faults
    switched on and reseeded at random; checked every cycle."""
    model, rng, p = await begin(dut, "random_commands")
    n, addr_span = model.n, 1 << len(dut.row_a)
    cmds = list(MacroCmd)
    if model.tech == "nand_spin":
        weights = [1, 3, 2, 2, 2, 1, 2, 4]
    else:
        weights = [1, 3, 2, 2, 2, 4, 1, 1]
    fault_on = False
    for _ in range(p["steps"]):
        cmd = rng.choices(cmds, weights=weights)[0]
        if rng.random() < 0.05:
            fault_on = not fault_on

        def row():
            return rng.randrange(addr_span) if rng.random() < 0.1 else rng.randrange(model.rows)

        mask = _ones(n) if rng.random() < 0.5 else rng.getrandbits(n)
        load = None
        if rng.random() < 0.03:
            load = (rng.getrandbits(32), rng.choice([0, 1, 3000, 30000, 65535,
                                                     rng.getrandbits(16)]))
        await model.step(cmd, row_a=row(), row_b=row(), data=rng.getrandbits(n), mask=mask,
                         fu=rng.getrandbits(n), fault_en=int(fault_on), load=load)


@cocotb.test()
async def corner_cases(dut):
    """Hand-written expectations: erase then program, program without erase, masked writes,
    2-row AND/OR of the same row, AND with FU, NOP and writes holding ``sensed``."""
    model, rng, p = await begin(dut, "corner_cases")
    n, full, per = model.n, _ones(model.n), model.per
    a = 0b1010_0110_1100_0011 & full
    b = 0b0101_1001_0011_1100 & full

    async def read(row):
        return (await model.step(MacroCmd.READ, row_a=row))[0]

    if model.tech == "nand_spin":
        base = per                                       # strip 1
        _, pwe, err = await model.step(MacroCmd.ERASE, row_a=base + per - 1, mask=full)
        assert (pwe, err) == (0, 0)
        for r in range(base, base + per):
            assert await read(r) == 0, f"{BLOCK}: row {r} after erase of its strip"
        _, pwe, _ = await model.step(MacroCmd.PROGRAM, row_a=base + 1, data=a, mask=full)
        assert pwe == 0 and await read(base + 1) == a
        _, pwe, _ = await model.step(MacroCmd.PROGRAM, row_a=base + 1, data=b, mask=full)
        assert pwe == full, f"{BLOCK}: program without erase: flags {pwe:#x}, want {full:#x}"
        assert await read(base + 1) == a | b, f"{BLOCK}: program must not clear bits"
        # Masked erase of the strip (through another of its rows), then program again.
        low = _ones(n // 2)
        await model.step(MacroCmd.ERASE, row_a=base, mask=low)
        assert await read(base + 1) == (a | b) & ~low & full
        _, pwe, _ = await model.step(MacroCmd.PROGRAM, row_a=base + 1, data=a, mask=full)
        assert pwe == full & ~low, f"{BLOCK}: flags {pwe:#x} after masked erase"
        # Erase, then program every row of the strip once: no flag, each row reads back.
        await model.step(MacroCmd.ERASE, row_a=base, mask=full)
        for i, r in enumerate(range(base, base + per)):
            _, pwe, _ = await model.step(MacroCmd.PROGRAM, row_a=r, data=(a >> i) | 1,
                                         mask=full)
            assert pwe == 0, f"{BLOCK}: row {r}: flag after erase {pwe:#x}"
        for i, r in enumerate(range(base, base + per)):
            assert await read(r) == ((a >> i) | 1) & full
        row_x, row_y = base, base + 1
    else:
        await model.step(MacroCmd.WRITE, row_a=3, data=a, mask=full)
        assert await read(3) == a
        half = _ones(n // 2)
        await model.step(MacroCmd.WRITE, row_a=3, data=b, mask=half)
        assert await read(3) == (a & ~half) | (b & half), f"{BLOCK}: masked write"
        await model.step(MacroCmd.WRITE, row_a=4, data=b, mask=full)
        if model.rows < 1 << len(dut.row_a):                # a row address beyond the array
            _, pwe, err = await model.step(MacroCmd.WRITE, row_a=model.rows, data=full,
                                           mask=full)
            assert (pwe, err) == (0, 1), f"{BLOCK}: write to row {model.rows}: error {err}"
        row_x, row_y = 3, 4
    x, y = await read(row_x), await read(row_y)
    for cmd, rb, want in ((MacroCmd.AND2, row_x, x), (MacroCmd.OR2, row_x, x),
                          (MacroCmd.AND2, row_y, x & y), (MacroCmd.OR2, row_y, x | y)):
        got = (await model.step(cmd, row_a=row_x, row_b=rb))[0]
        assert got == want, f"{BLOCK}: {cmd.name} rows {row_x},{rb}: {got:#x} != {want:#x}"
    got = (await model.step(MacroCmd.AND_FU, row_a=row_x, fu=b))[0]
    assert got == x & b
    # NOP and write commands hold sensed; sense commands hold the write status.
    for cmd in (MacroCmd.NOP, MacroCmd.WRITE, MacroCmd.ERASE, MacroCmd.PROGRAM):
        assert (await model.step(cmd, row_a=row_x, data=0, mask=0))[0] == x & b
    if model.rows < 1 << len(dut.row_a):
        assert (await model.step(MacroCmd.OR2, row_a=model.rows, row_b=model.rows))[0] == 0


@cocotb.test()
async def fault_injection(dut):
    """Fixed fault seed: RTL flips exactly the bits golden flips, at about the programmed rate;
    with fault_en low nothing flips and the LFSRs hold."""
    model, rng, p = await begin(dut, "fault_injection")
    n, full = model.n, _ones(model.n)
    pattern = rng.getrandbits(n)
    if model.tech == "nand_spin":
        await model.step(MacroCmd.ERASE, row_a=0, mask=full)
        await model.step(MacroCmd.PROGRAM, row_a=0, data=pattern, mask=full)
    else:
        await model.step(MacroCmd.WRITE, row_a=0, data=pattern, mask=full)
    stored = pattern
    for _ in range(20):
        assert (await model.step(MacroCmd.READ, row_a=0, fault_en=0))[0] == stored
    rate = 0.125
    await model.step(MacroCmd.NOP, load=(0xC0FFEE11, rate_to_threshold(rate)))
    reads, flips = p["fault_reads"], 0
    for i in range(reads):
        en = int(i % 10 != 9)                            # every tenth read without faults
        sensed = (await model.step(MacroCmd.READ, row_a=0, fault_en=en))[0]
        if not en:
            assert sensed == stored, f"{BLOCK}: a bit flipped with fault_en low"
        flips += bin(sensed ^ stored).count("1")
    faulted = (reads - reads // 10) * n
    observed = flips / faulted
    dut._log.info("fault_injection: %d flips in %d sensed bits: %.4f (programmed %.4f)",
                  flips, faulted, observed, rate)
    assert abs(observed - rate) < 0.03, (
        f"{BLOCK}: observed flip rate {observed:.4f} far from the programmed {rate}")


@pytest.mark.sim
@pytest.mark.parametrize("technology", list(SHAPES))
def test_mtj_array(sim, technology):
    name, rows, columns = SHAPES[technology]
    cfg = dataclasses.replace(preset(name), rows=rows, columns=columns,
                              read_fault_rate=READ_FAULT_RATE, fault_seed=FAULT_SEED)
    run_block(MtjArray(config=cfg), block=BLOCK, sim=sim, test_module=__name__,
              params={"technology": technology, "rows": rows, "columns": columns,
                      "mtjs_per_strip": cfg.mtjs_per_strip, "read_fault_rate": READ_FAULT_RATE,
                      "fault_seed": FAULT_SEED, "steps": 600, "fault_reads": 300})


# -- the macro interface and the constants RTL and golden must share (no simulator) ---------------

# The components built here are only inspected, never elaborated.
@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_macro_signature():
    from amaranth.lib import wiring

    from rtl.mtj_array import MacroSignature

    sig = MacroSignature(rows=24, columns=16)
    assert sig == MacroSignature(rows=24, columns=16) != MacroSignature(rows=32, columns=16)
    widths = {name: member.shape for name, member in sig.members.items()}
    assert widths["row_a"] == widths["row_b"] == 5 and widths["cmd"] is MacroCmd
    assert {k: widths[k] for k in ("data", "mask", "fu")} == {"data": 16, "mask": 16, "fu": 16}
    assert (widths["fault_seed"], widths["fault_threshold"]) == (32, 16)
    outs = {name for name, m in sig.members.items() if m.flow == wiring.Out}
    assert outs == {"cmd", "row_a", "row_b", "data", "mask", "fu", "fault_en", "fault_load",
                    "fault_seed", "fault_threshold"}
    cfg = dataclasses.replace(preset("jeit_stt"), rows=24, columns=16)
    assert MtjArray(config=cfg).signature == sig.flip()
    with pytest.raises(ValueError, match="rows must be a positive int, not 0"):
        MacroSignature(rows=0, columns=8)
    with pytest.raises(TypeError, match="columns must be an int, not '8'"):
        MacroSignature(rows=8, columns="8")
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig"):
        MtjArray(config=None)


def test_fault_constants_match_golden():
    import golden.array as g
    import rtl.mtj_array as r

    for name in ("LFSR_BITS", "LFSR_TAPS", "LFSR_STEPS_PER_SENSE", "FAULT_THRESHOLD_BITS",
                 "COLUMN_SEED_STRIDE"):
        assert getattr(r, name) == getattr(g, name), name
    for p in (0.0, 0.05, 0.125, 1 / 3, 0.99999):
        assert r.rate_to_threshold(p) == g.rate_to_threshold(p), p
    for seed in (0, 1, 0x9E3779B9, 0xFFFFFFFF, FAULT_SEED):
        assert [r.column_seed(seed, c) for c in range(5)] == \
            [int(v) for v in g.lfsr_column_seeds(seed, 5)], seed
