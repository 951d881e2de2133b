"""Cocotb side of tests/test_energy_activity.py: a counter enabled for a number of cycles
drawn from the seed (disabled before and after); writes the value it reached to
``counted.json`` (the pytest side computes the toggles each bit must have from it)."""

import json

import cocotb
from cocotb.triggers import FallingEdge, ReadOnly, RisingEdge

from cocotb_tests.harness import load_params, make_rng
from sim.flows.rtl_backend import start_clock


@cocotb.test()
async def count_cycles(dut):
    params = load_params()
    start_clock(dut)
    dut.rst.value = 0
    dut.en.value = 0
    await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    n = make_rng(params, "count_cycles")[0].randrange(params["min_cycles"], params["max_cycles"])
    dut.en.value = 1
    for _ in range(n):
        await RisingEdge(dut.clk)
    await FallingEdge(dut.clk)
    dut.en.value = 0
    for _ in range(3):
        await RisingEdge(dut.clk)
    await ReadOnly()
    value = int(dut.count.value)
    assert value == n % (1 << params["bits"]), f"counter at {value} after {n} cycles"
    with open("counted.json", "w") as f:
        json.dump({"cycles": n, "value": value}, f)
