"""The ``dima_binconv`` route (seed 002 Fig. 4a) on the cycle model: the FA/FS step's
bit-serial add/sub chains against plain integers and ``golden.pim``, the 2n-cycle schedule, the
counted sum-bit writes, and a core without the route refusing its micro-op and write source.
The same chains run on the RTL core in ``cocotb_tests/test_core_dima.py``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cocotb_tests.test_core_dima import (
    buffer_image, chain_case, chain_program, golden_chain, readout_program, small_config,
)
from rtl.isa import Opcode, WriteSrc
from rtl.mtj_array import MacroCmd
from sim.compile import asm
from sim.hw.core_model import CoreModel, unpack_row
from sim.routes import get_route
from sim.routes.dima_binconv import addsub_program

SEED = 20261130


def _load(model, case, width, terms):
    for r, bits in sorted(case["rows"].items()):
        model.array_command(MacroCmd.WRITE, r, bits)
    for slot, word in enumerate(buffer_image(case, width, terms)):
        model.write_buffer(slot, word)


@pytest.mark.parametrize("n", [1, 2, 3, 8])
@pytest.mark.parametrize("corner", [None, "max", "zero"])
def test_chain_on_the_cycle_model(n, corner):
    rng = np.random.default_rng(SEED + n)
    config = dataclasses.replace(small_config(), operand_bits=max(n, 2))
    width = config.columns * config.subarrays_per_mat
    terms = 5
    model = CoreModel(config)
    model.write_table(0, 0, 0, 0)
    for trial in range(3):
        case = chain_case(rng, width, n, terms, corner=corner)
        np.testing.assert_array_equal(golden_chain(case, n), case["want"])
        _load(model, case, width, terms)
        run = model.run(chain_program(n, terms))
        assert not run.error, run.reason
        # every lane's result, from the array's cells (even columns of the last group)
        got = sum(unpack_row(model._cells[n * terms + b], width)[0::2].astype(np.int64) << b
                  for b in range(n))
        np.testing.assert_array_equal(got, case["want"], err_msg=f"n={n} trial {trial}")
        # the odd columns of the last group kept what the host wrote
        for b in range(n):
            np.testing.assert_array_equal(model.read_row(n * terms + b)[1::2],
                                          case["rows"][n * terms + b][1::2])
        # each sum bit is a real array write of the even columns
        assert run.counters["fa_step"] == run.counters["write_row"] == run.writes == n * terms
        assert run.bits_written == n * terms * width // 2
        # the on-chip readout the RTL test uses gives the same values
        out = model.run(readout_program(n * terms, n, width, terms)).out
        assert list(out[0::2]) == case["want"].tolist()


@pytest.mark.parametrize("n", [2, 3, 4, 8, 16])
def test_an_add_sub_takes_2n_cycles(n):
    config = dataclasses.replace(small_config(), operand_bits=8)
    model = CoreModel(config)
    body = addsub_program(0, n, n, 0)
    assert len(body) == 2 * n
    assert [i.op for i in body].count(Opcode.FA_STEP) == n
    assert [i.op for i in body].count(Opcode.WRITE_ROW) == n
    one = model.run(asm.assemble(body + [asm.halt()])).counters["cycles"]
    two = model.run(asm.assemble(body + addsub_program(0, n, n, 0) + [asm.halt()]))
    assert two.counters["cycles"] - one == 2 * n


def test_one_bit_add_needs_a_nop():
    assert [i.op for i in addsub_program(0, 1, 1, 0)] == [Opcode.FA_STEP, Opcode.NOP,
                                                         Opcode.WRITE_ROW]


@pytest.mark.parametrize("kw,match", [
    (dict(r0=0, d0=0, n=0, slot=0), r"^n must be an int >= 1, not 0$"),
    (dict(r0=-1, d0=0, n=4, slot=0), r"^r0 must be an int >= 0, not -1$"),
    (dict(r0=0, d0=0, n=4, slot=True), r"^slot must be an int >= 0, not True$"),
])
def test_addsub_program_refuses_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        addsub_program(**kw)


def test_a_core_without_the_route_flags_its_micro_op_and_source():
    config = dataclasses.replace(small_config(), routes=("abs_diff", "and_bitcount"))
    model = CoreModel(config)
    run = model.run(asm.assemble([asm.fa_step(a=0, b=0, imm=1), asm.halt()]))
    assert run.error and "FA_STEP is not implemented" in run.reason
    run = model.run(asm.assemble([asm.write_row(a=0, b=0, imm=WriteSrc.FA_FS.value),
                                  asm.halt()]))
    assert run.error and run.reason.endswith("is not a WriteSrc of this core (BUFFER, "
                                             "ABS_DIFF, TBUF)")


def test_the_route_maps_binarized_layers_and_refuses_adder_layers():
    from golden.model import bundled_model_path, load_model
    route = get_route("dima_binconv")
    model = load_model(bundled_model_path("digits_addnet"))
    mapped = [ly.kind for ly in model.layers if route.maps(ly)]
    assert mapped == ["bin_gconv2d"] * 4
    assert not any(route.maps(ly) for ly in model.layers if ly.kind != "bin_gconv2d")
    adder = load_model(bundled_model_path("digits_addernet"))
    assert not any(route.maps(ly) for ly in adder.layers if ly.is_adder)


def _subsel(first, count):
    from rtl.isa import MoveOp
    return asm.move(imm=MoveOp.SUBSEL.value, a=first, b=count, d=0)


@pytest.mark.parametrize("gated", [True, False])
def test_class_gate_keeps_the_other_class_rows(gated):
    """Seed 002's classes on a mat of 2 (subarray 0 class B, 1 class A) holding different random
    data: a chain behind ``MOVE SUBSEL a=1 b=1`` leaves every cell of subarray 0 as written and
    sums subarray 1's lanes; without the gate the same chain overwrites subarray 0's even
    columns with its lanes' sums (so the test can tell)."""
    rng = np.random.default_rng(SEED + 7)
    config = small_config()
    cols, n, terms = config.columns, config.operand_bits, 3
    width = cols * config.subarrays_per_mat
    model = CoreModel(config)
    case = chain_case(rng, width, n, terms)
    _load(model, case, width, terms)
    body = [_subsel(1, 1)] if gated else []
    for k in range(terms):
        body += addsub_program(n * k, n * (k + 1), n, k)
    res = model.run(asm.assemble(body + [asm.halt()]))
    assert not res.error, res.reason
    assert res.bits_written == n * terms * (cols // 2 if gated else width // 2)
    rows = n * (terms + 1)
    before = np.array([case["rows"][r] for r in range(rows)])
    after = np.array([model.read_row(r) for r in range(rows)])
    last = after[n * terms:]
    sums = (last[:, 0::2] * (1 << np.arange(n))[:, None]).sum(axis=0)
    assert sums[cols // 2:].tolist() == case["want"][cols // 2:].tolist()   # class A lanes
    assert np.array_equal(after[:, 1::2], before[:, 1::2])
    if gated:
        assert np.array_equal(after[:, :cols], before[:, :cols])
    else:
        assert sums[:cols // 2].tolist() == case["want"][:cols // 2].tolist()
        assert not np.array_equal(after[:, :cols], before[:, :cols])


def test_class_gate_senses_only_the_enabled_subarrays():
    """A READ behind ``SUBSEL a=1 b=1``: subarray 0's accumulator gets nothing (REQUANT d = 1
    reads 0), subarray 1's the popcount of its columns; the next run (start) enables all."""
    from rtl.column_reduce import ReduceOp
    from rtl.ppu import PpuMode, ppu_imm
    config = small_config()
    cols = config.columns
    model = CoreModel(config)
    model.write_table(0, 0, 0, 0)
    rng = np.random.default_rng(SEED + 8)
    row = rng.integers(0, 2, 2 * cols).astype(bool)
    model.array_command(MacroCmd.WRITE, 5, row)
    emit = ppu_imm(clear=True, emit=True, mode=PpuMode.LOGIT)
    sense = [asm.read(a=5, imm=ReduceOp.L1_FIRST.value), asm.requant(a=0, d=1, imm=emit),
             asm.requant(a=0, d=2, imm=emit), asm.halt()]
    res = model.run(asm.assemble([_subsel(1, 1)] + sense))
    assert not res.error, res.reason
    assert list(res.out) == [0, int(row[cols:].sum())]
    res = model.run(asm.assemble(sense))
    assert list(res.out) == [int(row[:cols].sum()), int(row[cols:].sum())]


@pytest.mark.parametrize("first,count", [(1, 2), (0, 0), (2, 1)])
def test_class_gate_out_of_the_mat_is_an_error(first, count):
    res = CoreModel(small_config()).run(asm.assemble([_subsel(first, count), asm.halt()]))
    assert res.error and f"MOVE SUBSEL a={first} b={count}" in res.reason


def test_subsel_needs_the_dima_route():
    """A core without ``dima_binconv`` has no class gate: SUBSEL is a bad MoveOp there."""
    config = dataclasses.replace(small_config(), routes=("abs_diff", "and_bitcount"),
                                 class_split=None)
    res = CoreModel(config).run(asm.assemble([_subsel(0, 1), asm.halt()]))
    assert res.error and "MOVE imm=11 is not a MoveOp" in res.reason
