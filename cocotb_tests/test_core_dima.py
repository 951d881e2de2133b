"""The DIMA FA/FS step inside the core (route ``dima_binconv``, seed 002 Fig. 4a), both simulators.

A chain of K n-bit add/subs per lane: row group 0 holds the accumulator A (even columns) and
input X_0 (odd columns), group k the input X_k; add/sub k reads group k, the sign of each
lane's {-1, +1} weight (buffer slot k) picks add or subtract, and each sum bit is written into
the even columns of group k + 1 (the odd columns, and every cell the chain does not write,
hold random junk that must survive). The even columns of group K then hold
``(A + sum_k s_k X_k) mod 2**n`` per lane, read back on chip (AND_FU with a one-hot FU word,
shift-add MSB first, a LOGIT word per column) and compared with plain integer arithmetic and
``golden.pim.fa_fs_addsub``; the counters are compared with the cycle model
(``sim.hw.core_model``) and the cycles of one add/sub (a program with K adds minus one with
K - 1) must be 2n, the seed's figure.
"""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from golden.pim import fa_fs_addsub
from rtl.column_reduce import ReduceOp
from rtl.config import preset
from rtl.core import Core
from rtl.isa import MoveOp
from rtl.mtj_array import MacroCmd
from rtl.ppu import PpuMode, ppu_imm
from sim.compile import asm
from sim.routes.dima_binconv import addsub_program

BLOCK = "core_dima"
#: A small mat of the dima_sot preset: 2 subarrays of 64 x 16 (16 FA/FS lanes).
SMALL = {"rows": 64, "columns": 16, "subarrays_per_mat": 2, "mats": 1}


def small_config():
    """The dima_sot preset, cut to :data:`SMALL` (its routes, dima_binconv included)."""
    return dataclasses.replace(preset("dima_sot"), **SMALL)


def chain_case(rng, width: int, n: int, terms: int, *, corner: str | None = None) -> dict:
    """Operands, signs and row images of a chain of ``terms`` add/subs on ``width // 2`` lanes.

    ``corner``: ``"max"`` (every value 2**n - 1), ``"zero"`` (every value 0), with signs
    alternating by lane; None random. Returns a dict: ``a0`` [L], ``x`` [terms, L], ``sub``
    [terms, L] (uint8), ``rows`` {row: bool [width]} to write, ``want`` [L] (plain integers).
    """
    lanes = width // 2
    if corner == "max":
        a0 = np.full(lanes, (1 << n) - 1, np.int64)
        x = np.full((terms, lanes), (1 << n) - 1, np.int64)
    elif corner == "zero":
        a0, x = np.zeros(lanes, np.int64), np.zeros((terms, lanes), np.int64)
    else:
        a0 = rng.integers(0, 1 << n, lanes)
        x = rng.integers(0, 1 << n, (terms, lanes))
    if corner is None:
        sub = rng.integers(0, 2, (terms, lanes)).astype(np.uint8)
    else:
        sub = np.tile(np.arange(lanes) % 2, (terms, 1)).astype(np.uint8)
    rows = {}
    for k in range(terms + 1):
        even = a0 if k == 0 else rng.integers(0, 1 << n, lanes)       # junk beyond group 0
        odd = x[k] if k < terms else rng.integers(0, 1 << n, lanes)   # junk in the last group
        for b in range(n):
            bits = np.zeros(width, bool)
            bits[0::2] = (even >> b) & 1
            bits[1::2] = (odd >> b) & 1
            rows[n * k + b] = bits
    want = (a0 + np.where(sub == 1, -x, x).sum(axis=0)) % (1 << n)
    return {"a0": a0, "x": x, "sub": sub, "rows": rows, "want": want}


def sign_words(sub, width: int) -> np.ndarray:
    """Buffer image of the sign words: slot k, bit 2g + 1 = lane g subtracts in add/sub k."""
    words = np.zeros((len(sub), width), bool)
    words[:, 1::2] = sub == 1
    return words


def chain_program(n: int, terms: int) -> list:
    """Words of the chain: add/sub k reads group k, writes group k + 1, signs in slot k."""
    body = []
    for k in range(terms):
        body += addsub_program(n * k, n * (k + 1), n, k)
    return asm.assemble(body + [asm.halt()])


def readout_program(row0: int, n: int, width: int, slot0: int) -> list:
    """Words that emit the n-bit value of every column of rows ``row0 ..`` (bit b in row
    ``row0 + b``), column j's one-hot FU word in buffer slot ``slot0 + j``: one LOGIT word per
    column, column order."""
    body = []
    for j in range(width):
        for b in range(n - 1, -1, -1):
            rop = ReduceOp.L1_FIRST if b == n - 1 else ReduceOp.SHIFT_ADD
            body.append(asm.and_fu(a=row0 + b, b=slot0 + j, imm=rop.value))
        body.append(asm.requant(a=0, d=0, imm=ppu_imm(clear=True, emit=True,
                                                      mode=PpuMode.LOGIT)))
    return asm.assemble(body + [asm.halt()])


def buffer_image(case, width: int, terms: int) -> np.ndarray:
    """Sign words in slots 0 .. terms - 1, then one-hot words, column j in slot terms + j."""
    return np.concatenate([sign_words(case["sub"], width), np.eye(width, dtype=bool)])


def golden_chain(case, n: int) -> np.ndarray:
    """The chain through ``golden.pim.fa_fs_addsub``, one add/sub per term."""
    acc = case["a0"]
    for xk, sk in zip(case["x"], case["sub"], strict=True):
        acc, _ = fa_fs_addsub(acc, xk, sk, n)
    return acc


async def host_and_model(dut, config):
    """The RTL core's host (reset, requant entry 0 zeroed) and a cycle model of ``config``
    (likewise)."""
    from sim.hw.core_model import CoreModel
    from sim.flows.rtl_backend import CoreHost
    host = CoreHost(dut, config)
    await host.reset()
    await host.write_table([0], [0], [0])
    model = CoreModel(config)
    model.write_table(0, 0, 0, 0)
    return host, model


async def load_chain(host, model, case, width: int, terms: int) -> None:
    """A chain case's rows and buffer (signs, one-hot words) into the RTL core and the model."""
    buf = buffer_image(case, width, terms)
    writes = [(MacroCmd.WRITE, r, bits, np.ones(width, bool))
              for r, bits in sorted(case["rows"].items())]
    await host.array_commands(writes)
    await host.write_buffer(buf)
    for cmd, r, bits, mask in writes:
        model.array_command(cmd, r, bits, mask)
    for slot, word in enumerate(buf):
        model.write_buffer(slot, word)


@cocotb.test()
async def core_fa_fs_chain(dut):
    """Random and corner chains: results == integers == golden, odd columns kept, counters ==
    the cycle model, cycles per n-bit add/sub == 2n."""
    p = load_params()
    rng_py, seed = make_rng(p, "core_fa_fs_chain")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = small_config()
    width = config.columns * config.subarrays_per_mat
    n, terms = p["n"], p["terms"]
    host, model = await host_and_model(dut, config)
    where = f"(seed {seed}, rerun with SPINPIM_SEED={seed})"
    cycles_of = {}
    for t, corner in enumerate(["max", "zero"] + [None] * p["trials"]):
        case = chain_case(rng, width, n, terms, corner=corner)
        assert np.array_equal(golden_chain(case, n), case["want"]), \
            f"{BLOCK}: golden.pim.fa_fs_addsub disagrees with integer arithmetic {where}"
        await load_chain(host, model, case, width, terms)
        for k in (terms - 1, terms):          # the chain one add short, then in full
            words = chain_program(n, k)
            counters = await host.run(words, max_cycles=4 * n * terms + 16)
            modelled = model.run(words)
            assert not modelled.error, f"{BLOCK}: model error {modelled.reason}"
            assert counters == modelled.counters, (
                f"{BLOCK}: chain of {k} add/subs, trial {t}: rtl counters {counters} != "
                f"model {modelled.counters} {where}")
            assert counters["fa_step"] == counters["write_row"] == n * k, counters
            assert modelled.bits_written == n * k * (width // 2), modelled.bits_written
            cycles_of[k] = counters["cycles"]
        assert cycles_of[terms] - cycles_of[terms - 1] == 2 * n, (
            f"{BLOCK}: one {n}-bit add/sub took {cycles_of[terms] - cycles_of[terms - 1]} "
            f"cycles, not 2n = {2 * n} {where}")
        await host.run(readout_program(n * terms, n, width, terms), max_cycles=(n + 2) * width
                       + 16)
        got = await host.read_outputs(width)
        odd_want = [int(sum(int(case["rows"][n * terms + b][j]) << b for b in range(n)))
                    for j in range(width)]
        for j in range(width):
            want = int(case["want"][j // 2]) if j % 2 == 0 else odd_want[j]
            what = (f"lane {j // 2} result" if j % 2 == 0 else
                    f"odd column {j} (must keep its cells)")
            assert got[j] == want, (
                f"{BLOCK}: trial {t} ({corner or 'random'}), {what}: rtl {got[j]} != "
                f"{want} (a0 {int(case['a0'][j // 2])}, x {case['x'][:, j // 2].tolist()}, "
                f"subtract {case['sub'][:, j // 2].tolist()}) {where}")
        dut._log.info("trial %d (%s): %d add/subs of %d bits, %d cycles for the chain, "
                      "%d per add/sub", t, corner or "random", terms, n, cycles_of[terms],
                      cycles_of[terms] - cycles_of[terms - 1])


def subsel(first: int, count: int):
    """``MOVE SUBSEL``: the array commands after it reach subarrays ``first .. first + count
    - 1`` only (seed 002's class gate, ``rtl.core.Core``)."""
    return asm.move(imm=MoveOp.SUBSEL.value, a=first, b=count, d=0)


@cocotb.test()
async def core_class_gate(dut):
    """Seed 002's class gate on a mat of 2 (subarray 0 class B, subarray 1 class A), both
    holding different random data: a chain gated to subarray 1 leaves every cell of subarray
    0 as written (its even columns of the last group too, which the ungated chain overwrites)
    and puts the sums into subarray 1's lanes; a sense gated to subarray 1 gives subarray 0's
    accumulator nothing (REQUANT d = 1 reads 0, d = 2 the popcount of subarray 1's columns);
    SUBSEL out of the mat sets error; outputs, counters and error == the cycle model."""
    p = load_params()
    rng_py, seed = make_rng(p, "core_class_gate")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = small_config()
    cols = config.columns
    width = cols * config.subarrays_per_mat
    n, terms = p["n"], p["terms"]
    host, model = await host_and_model(dut, config)
    where = f"(seed {seed}, rerun with SPINPIM_SEED={seed})"
    case = chain_case(rng, width, n, terms)
    await load_chain(host, model, case, width, terms)

    async def both(instrs, max_cycles, outputs=0):
        words = asm.assemble(instrs + [asm.halt()])
        counters = await host.run(words, max_cycles=max_cycles)
        modelled = model.run(words)
        assert not modelled.error, f"{BLOCK}: model error {modelled.reason}"
        assert counters == modelled.counters, (
            f"{BLOCK}: rtl counters {counters} != model {modelled.counters} {where}")
        got = await host.read_outputs(outputs) if outputs else []
        assert got == list(modelled.out[:outputs]), (
            f"{BLOCK}: rtl outputs {got} != model {list(modelled.out[:outputs])} {where}")
        return counters, got

    chain = []
    for k in range(terms):
        chain += addsub_program(n * k, n * (k + 1), n, k)
    counters, _ = await both([subsel(1, 1)] + chain, 4 * n * terms + 16)
    assert counters["fa_step"] == counters["write_row"] == n * terms, counters
    rows = n * (terms + 1)
    for k in range(terms + 1):             # group k read back, n bits per column
        await host.run(readout_program(n * k, n, width, terms), max_cycles=(n + 2) * width
                       + 16)
        got = await host.read_outputs(width)
        for j in range(width):
            if k and j >= cols and j % 2 == 0:     # subarray 1's lanes: the partial sums
                g = j // 2
                want = int(case["a0"][g] + sum(-case["x"][i, g] if case["sub"][i, g] else
                                               case["x"][i, g] for i in range(k))) % (1 << n)
                what = f"class-A lane {g} after {k} add/subs"
            else:                          # every other cell as written
                want = sum(int(case["rows"][n * k + b][j]) << b for b in range(n))
                what = f"column {j} ({'class B, gated off' if j < cols else 'class A'})"
            assert got[j] == want, (
                f"{BLOCK}: group {k}, {what}: rtl {got[j]} != {want} {where}")
            mod = sum(int(model.read_row(n * k + b)[j]) << b for b in range(n))
            assert mod == want, f"{BLOCK}: group {k}, {what}: model {mod} != {want} {where}"
    # a gated sense: subarray 0's reduction sees 0
    r, fresh = rows, rng.integers(0, 2, width).astype(bool)    # a row no chain touched
    await host.array_commands([(MacroCmd.WRITE, r, fresh, np.ones(width, bool))])
    model.array_command(MacroCmd.WRITE, r, fresh, np.ones(width, bool))
    emit = ppu_imm(clear=True, emit=True, mode=PpuMode.LOGIT)
    _, sums = await both([subsel(1, 1), asm.read(a=r, imm=ReduceOp.L1_FIRST.value),
                          asm.requant(a=0, d=1, imm=emit), asm.requant(a=0, d=2, imm=emit)],
                         32, outputs=2)
    assert sums == [0, int(fresh[cols:].sum())], (
        f"{BLOCK}: gated READ of row {r}: accumulators {sums} {where}")
    for first, count in ((1, 2), (0, 0), (2, 1)):   # out of the mat of 2, or none: error
        words = asm.assemble([subsel(first, count), asm.halt()])
        _, error = await host.run_raw(words, max_cycles=32)
        modelled = model.run(words)
        assert error and modelled.error, (
            f"{BLOCK}: SUBSEL a={first} b={count}: rtl error {error}, model "
            f"{modelled.error} {where}")
    dut._log.info("class gate: %d add/subs on subarray 1 left subarray 0's %d rows as "
                  "written", terms, rows)


@pytest.mark.sim
def test_core_dima(sim):
    config = small_config()
    run_block(Core(config=config, faults=False), block=BLOCK, sim=sim, test_module=__name__,
              params={"n": config.operand_bits, "terms": 4, "trials": 3})
