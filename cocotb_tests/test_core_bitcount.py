"""Seed 001's in-memory primitives on the core's per-column bit-counters (route ``nand_inmem``,
``rtl.bit_counter``), both simulators.

A small NAND-SPIN mat with the route: 2 subarrays of 64 x 16 (32 bit-counters), strips of 8
rows. Per trial the host erases every strip and programs the operands' bit rows; the core runs

* addition of k operands in one column (Fig. 8a, ``sim.routes.nand_inmem.add_program``) for
  k = 2 and 3: operands in strips 0 .. k - 1, the sum rows in strips of their own (erased by
  the program, written back by PROGRAM from ``WriteSrc.BIT_COUNTER``);
* multiplication by a shared scale from the buffer (Fig. 8b, ``scale_program``);
* MSB-first comparison with Tag and Result rows (Fig. 9, ``compare_program``), the selective
  copy of the maximum and of the minimum (``select_program``), max pooling of 4 values by
  iterated comparison (``max_pool_program``) and ReLU from the MSB (``relu_program``): these
  write the sensed row, its inverse and the counters' LSBs into the buffer (the output
  multiplexer, ``BitCountOut``) and read them back in the next micro-op (forwarded);

then reads every result column back on chip (AND_FU with a one-hot FU word, shift-add MSB
first, one LOGIT word per column: ``cocotb_tests.test_core_dima.readout_program``) and
compares it with ``golden.pim`` (``bitcounter_add``, ``scale_multiply``, ``msb_first_compare``,
``max_select``, ``min_select``, ``max_pool_compare``) and ``golden.layers.relu`` (integer ==),
the counters with the cycle model (``sim.hw.core_model``) and the cycles with the route's formula.
Corner cases: every operand 2**n - 1 (the longest carries) and 0; scales 0 and 2**n - 1.

The post-processing of ``sim.compile.nand_postproc`` runs on sums in the array
(``core_bitcount_postproc``)
and through the whole path (``core_bitcount_path``: sums from the data memory into the array,
the requantization, the outputs back into the data memory).
"""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from cocotb_tests.test_core_dima import readout_program
from golden.layers import relu
from golden.pim import (
    bitcounter_add, max_pool_compare, max_select, min_select, msb_first_compare, scale_multiply,
)
from rtl.config import preset
from rtl.core import Core
from rtl.mtj_array import MacroCmd
from sim.compile import asm
from sim.routes.nand_inmem import (
    add_cycles, add_program, compare_cycles, compare_program, max_pool_program, relu_cycles,
    relu_program, scale_cycles, scale_program, scale_words, select_cycles, select_program,
)

BLOCK = "core_bitcount"
#: A small mat of the nand_spin preset: 2 subarrays of 64 x 16 (strips of 8 rows).
SMALL = {"rows": 64, "columns": 16, "subarrays_per_mat": 2, "mats": 1}
#: Buffer slots of the test core (scale words, then one one-hot word per column).
SLOTS = 64
SEED_PAPER = "seed 001"
#: Rows of the Fig. 9 primitives: values in strips 0-3, Tag, Result, two ping-pong groups.
VALUES, TAG, RESULT, GROUPS = (0, 8, 16, 24), 32, 40, (48, 56)
#: Buffer slots of Fig. 9's two buffer rows and of ReLU's inverted MSB (after the one-hots).
S1, S2, S_RELU = 40, 41, 42


def small_config():
    """The nand_spin preset (its routes include ``nand_inmem``) cut to :data:`SMALL`, at the old
    sizes (``tests.test_limits.OLD_SIZES``: the preset's larger data memory widens the
    instruction word, and these programs are hand-written for 12-bit bases)."""
    from tests.test_limits import OLD_SIZES
    return dataclasses.replace(preset("nand_spin"), **SMALL, **OLD_SIZES)


def small_core(config):
    return Core(config=config, faults=False, buffer_slots=SLOTS, out_depth=64)


def operand_rows(config, k: int, n: int) -> list:
    """First row of operand i: strip-aligned, one strip group each."""
    m = config.mtjs_per_strip
    per = -(-n // m) * m
    return [i * per for i in range(k)]


def result_row(config, k: int, n: int) -> int:
    """First sum / product row: the first strip after the operands."""
    rows = operand_rows(config, k, n)
    return rows[-1] + -(-n // config.mtjs_per_strip) * config.mtjs_per_strip


def load_commands(config, width: int, values, rows) -> list:
    """Host array commands: erase every strip, program operand i's bits into rows
    ``rows[i] + b``."""
    ones = np.ones(width, bool)
    cmds = [(MacroCmd.ERASE, s, np.zeros(width, bool), ones)
            for s in range(0, config.rows, config.mtjs_per_strip)]
    n = config.operand_bits
    for v, r0 in zip(values, rows, strict=True):
        for b in range(n):
            cmds.append((MacroCmd.PROGRAM, r0 + b, ((np.asarray(v) >> b) & 1).astype(bool),
                         ones))
    return cmds


def buffer_image(width: int, scale: int, n: int) -> np.ndarray:
    """Slots 0 .. n - 1 the scale's words, slots n .. n + width - 1 one-hot column words."""
    words = np.array([[(w >> g) & 1 for g in range(width)] for w in scale_words(scale, n, width)],
                     bool)
    return np.concatenate([words, np.eye(width, dtype=bool)])


def cases(rng, width: int, n: int, trials: int):
    """(name, operands [4, W], scale): corners first, then random (with some equal values,
    and lanes that differ only in the LSB, for the comparison)."""
    top = (1 << n) - 1
    yield "max", np.full((4, width), top, np.int64), top
    yield "zero", np.zeros((4, width), np.int64), 0
    for t in range(trials):
        v = rng.integers(0, top + 1, (4, width))
        v[1, : width // 4] = v[0, : width // 4]
        v[1, width // 4: width // 2] = v[0, width // 4: width // 2] ^ 1
        yield f"random{t}", v, int(rng.integers(0, top + 1))


def check_values(prim, got, want, case, where):
    for j, (g, w) in enumerate(zip(got, want, strict=True)):
        assert int(g) == int(w), (
            f"{BLOCK} {prim} ({case}): column {j}: rtl {int(g)} != golden {int(w)} "
            f"({SEED_PAPER}) {where}")


@cocotb.test()
async def core_bitcount_primitives(dut):
    """Addition (k = 2, 3) and scaling on the bit-counters == golden.pim; counters == the
    cycle model; cycles == the route's formula."""
    from sim.hw.core_model import CoreModel
    from sim.flows.rtl_backend import CoreHost
    p = load_params()
    rng_py, seed = make_rng(p, "core_bitcount_primitives")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = small_config()
    width = config.columns * config.subarrays_per_mat
    n = config.operand_bits
    host = CoreHost(dut, config)
    await host.reset()
    await host.write_table([0], [0], [0])
    model = CoreModel(config, buffer_slots=SLOTS, out_depth=64)
    model.write_table(0, 0, 0, 0)
    halt_cycles = model.run(asm.assemble([asm.halt()])).counters["cycles"]
    where = f"(seed {seed}, rerun with SPINPIM_SEED={seed})"

    async def run_both(words, what, max_cycles):
        counters = await host.run(words, max_cycles=max_cycles)
        modelled = model.run(words)
        assert not modelled.error, f"{BLOCK} {what}: model error {modelled.reason}"
        assert counters == modelled.counters, (
            f"{BLOCK} {what}: rtl counters {counters} != model {modelled.counters} {where}")
        return counters

    async def readout(row0, bits, case, prim):
        words = readout_program(row0, bits, width, n)
        await run_both(words, f"{prim} readout ({case})", (bits + 2) * width + 16)
        got = await host.read_outputs(width)
        assert list(model.out_memory[:width]) == got, (
            f"{BLOCK} {prim} readout ({case}): rtl {got} != model "
            f"{list(model.out_memory[:width])} {where}")
        return got

    for case, values, scale in cases(rng, width, n, p["trials"]):
        buf = buffer_image(width, scale, n)
        await host.write_buffer(buf)
        for slot, word in enumerate(buf):
            model.write_buffer(slot, word)
        for k in (2, 3):
            rows = operand_rows(config, k, n)
            out0 = result_row(config, k, n)
            cmds = load_commands(config, width, values[:k], rows)
            await host.array_commands(cmds)
            for cmd, r, bits, mask in cmds:
                model.array_command(cmd, r, bits, mask)
            body = add_program(config, rows, n, out0)
            counters = await run_both(asm.assemble(body + [asm.halt()]), f"add k={k} ({case})",
                                      4 * len(body) + 16)
            assert counters["cycles"] == add_cycles(config, k, n, out0) + halt_cycles, (
                f"{BLOCK} add k={k}: {counters['cycles']} cycles, formula "
                f"{add_cycles(config, k, n, out0)} + HALT {halt_cycles} {where}")
            assert counters["bitcount"] == 1 + k * n, counters
            want, _ = bitcounter_add(values[:k], n)
            got = await readout(out0, n + (k - 1).bit_length(), case, f"add k={k}")
            check_values(f"addition of {k} operands (Fig. 8a)", got, want, case, where)
        # multiplication: the multiplicand is operand 0 (still in rows 0 .. n - 1)
        out0 = result_row(config, 2, n)
        body = scale_program(config, 0, n, 0, n, out0)
        counters = await run_both(asm.assemble(body + [asm.halt()]), f"scale ({case})",
                                  4 * len(body) + 16)
        assert counters["cycles"] == scale_cycles(config, n, n, out0) + halt_cycles, (
            f"{BLOCK} scale: {counters['cycles']} cycles, formula "
            f"{scale_cycles(config, n, n, out0)} + HALT {halt_cycles} {where}")
        want, _ = scale_multiply(values[0], scale, a_bits=n, scale_bits=n)
        got = await readout(out0, 2 * n, case, "scale")
        check_values(f"multiplication by the shared scale {scale} (Fig. 8b)", got, want, case,
                     where)
        # Fig. 9: compare values 0 and 1, select max and min, pool all 4, ReLU of value 2
        cmds = load_commands(config, width, values, list(VALUES))
        await host.array_commands(cmds)
        for cmd, r, bits, mask in cmds:
            model.array_command(cmd, r, bits, mask)
        a, b = VALUES[0], VALUES[1]
        body = compare_program(config, a, b, n, TAG, RESULT, S1, S2)
        counters = await run_both(asm.assemble(body + [asm.halt()]), f"compare ({case})",
                                  2 * len(body) + 16)
        assert counters["cycles"] == compare_cycles(config, n) + halt_cycles, counters
        want, _ = msb_first_compare(values[0], values[1], n)
        got = await readout(RESULT, 1, case, "compare")
        check_values("comparison a > b (Fig. 9)", got, want, case, where)
        for want_max, gold in ((True, max_select), (False, min_select)):
            prim = "max" if want_max else "min"
            body = select_program(config, a, b, n, RESULT, GROUPS[0], S1, S2,
                                  want_max=want_max)
            counters = await run_both(asm.assemble(body + [asm.halt()]),
                                      f"{prim} select ({case})", 2 * len(body) + 16)
            assert counters["cycles"] == select_cycles(config, n, GROUPS[0]) + halt_cycles
            want, _ = gold(values[0], values[1], n)
            got = await readout(GROUPS[0], n, case, f"{prim} select")
            check_values(f"{prim} selection (Fig. 9)", got, want, case, where)
        body, best = max_pool_program(config, VALUES, n, GROUPS, TAG, RESULT, S1, S2)
        await run_both(asm.assemble(body + [asm.halt()]), f"max pool ({case})",
                       2 * len(body) + 16)
        want, _ = max_pool_compare(values, n)
        got = await readout(best, n, case, "max pool")
        check_values("max pooling of 4 values by iterated comparison", got, want, case, where)
        signed = np.where(values[2] >= 1 << (n - 1), values[2] - (1 << n), values[2])
        body = relu_program(config, VALUES[2], n, GROUPS[1], S_RELU)
        counters = await run_both(asm.assemble(body + [asm.halt()]), f"relu ({case})",
                                  2 * len(body) + 16)
        assert counters["cycles"] == relu_cycles(config, n, GROUPS[1]) + halt_cycles
        got = await readout(GROUPS[1], n, case, "relu")
        check_values("ReLU from the MSB", got, relu(signed), case, where)
        dut._log.info("%s: add k=2,3, scale x %d, compare, max/min, max pool of 4, ReLU agree "
                      "with golden", case, scale)


#: In-memory post-processing (seed 001 sec. 4.2, ``sim.compile.nand_postproc``) in the 64 rows:
#: sums in strip 0, the all-ones row in strip 1, t in strips 2-3, four output groups in strips 4-7;
#: the pooling then reuses strips 0-3 (Tag, Result, ping-pong groups). Slots: o, nn, ov, xs
#: 0-3, scale words from 40, bias words after them (8 .. 39 are the readout's one-hots).
PP_X, PP_ONES, PP_T, PP_YS = 0, 8, 16, (32, 40, 48, 56)
PP_SLOTS, PP_M0 = (0, 1, 2, 3), 40
#: Width of the affine map's rows and the shift: sums of 8 bits, per-lane multipliers in
#: [-7, 7], biases in [-512, 512] reach 128 * 7 + 512 + 1 < 2**11 (so 12 rows with the sign);
#: shift 1 leaves 11 rows of t, so the saturation at 255 is reached.
PP_P, PP_SHIFT = 12, 1


def rows_commands(config, width: int, row0: int, values, bits: int) -> list:
    """Host commands: erase the strips of rows ``row0 .. row0 + bits - 1``, program the two's
    complement bits of ``values`` (one per column) into them."""
    m, ones = config.mtjs_per_strip, np.ones(width, bool)
    v = np.asarray(values, np.int64) % (1 << bits)
    cmds = [(MacroCmd.ERASE, s * m, np.zeros(width, bool), ones)
            for s in sorted({(row0 + b) // m for b in range(bits)})]
    return cmds + [(MacroCmd.PROGRAM, row0 + b, ((v >> b) & 1).astype(bool), ones)
                   for b in range(bits)]


@cocotb.test()
async def core_bitcount_postproc(dut):
    """Requantization, ReLU from the MSB and saturation of sums in the array (seed 001 eq. 2 /
    eq. 3 folded, ``sim.compile.nand_postproc.requant_program``), four groups, then max pooling of
    them by iterated comparison: == ``golden.layers.requantize`` (the PPU's arithmetic) and
    ``golden.pim.inmem_requant``; counters == the cycle model; cycles == the formula."""
    from golden.layers import requantize
    from golden.pim import inmem_requant, inmem_requant_bits
    from sim.hw.core_model import CoreModel
    from sim.compile.nand_postproc import requant_cycles, requant_program, requant_words
    from sim.flows.rtl_backend import CoreHost
    p = load_params()
    rng_py, seed = make_rng(p, "core_bitcount_postproc")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = small_config()
    width = config.columns * config.subarrays_per_mat
    n = config.operand_bits
    host = CoreHost(dut, config)
    await host.reset()
    await host.write_table([0], [0], [0])
    model = CoreModel(config, buffer_slots=SLOTS, out_depth=64)
    model.write_table(0, 0, 0, 0)
    halt_cycles = model.run(asm.assemble([asm.halt()])).counters["cycles"]
    where = f"(seed {seed}, rerun with SPINPIM_SEED={seed})"

    async def both(cmds=(), words=None, what=""):
        await host.array_commands(list(cmds))
        for cmd, r, bits, mask in cmds:
            model.array_command(cmd, r, bits, mask)
        if words is None:
            return None
        counters = await host.run(words, max_cycles=4 * len(words) + 64)
        modelled = model.run(words)
        assert not modelled.error, f"{BLOCK} {what}: model error {modelled.reason}"
        assert counters == modelled.counters, (
            f"{BLOCK} {what}: rtl counters {counters} != model {modelled.counters} {where}")
        return counters

    async def readout(row0, bits, what):
        await both(words=readout_program(row0, bits, width, n), what=f"{what} readout")
        got = await host.read_outputs(width)
        assert list(model.out_memory[:width]) == got, (f"{BLOCK} {what} readout: rtl {got} "
                                                       f"!= model {model.out_memory[:width]}")
        return got

    for trial in range(p["trials"]):
        mult = rng.integers(-7, 8, width).astype(np.int32)
        bias = rng.integers(-512, 513, width).astype(np.int64)
        shift = np.full(width, PP_SHIFT, np.int32)
        assert inmem_requant_bits(128, mult, bias, shift) <= PP_P
        mw, cw = requant_words(mult, bias, PP_SHIFT, PP_P, width)
        image = np.concatenate([buffer_image(width, 0, n), mw, cw])
        assert len(buffer_image(width, 0, n)) == PP_M0 and len(image) <= SLOTS
        await host.write_buffer(image)
        for slot, word in enumerate(image):
            model.write_buffer(slot, word)
        await both(rows_commands(config, width, PP_ONES, np.ones(width, np.int64), 1))
        xs = rng.integers(-128, 128, (4, width))
        xs[0, :3] = (-128, 127, 0)
        ppu = []
        for k, y0 in enumerate(PP_YS):
            body = requant_program(config, x0=PP_X, x_bits=n, ones=PP_ONES, m0=PP_M0,
                                   m_bits=len(mw), c0=PP_M0 + len(mw), p_bits=PP_P,
                                   shift=PP_SHIFT, t0=PP_T, y0=y0, slots=PP_SLOTS)
            counters = await both(rows_commands(config, width, PP_X, xs[k], n),
                                  asm.assemble(body + [asm.halt()]), f"requant {k}")
            formula = requant_cycles(config, p_bits=PP_P, m_bits=len(mw), shift=PP_SHIFT,
                                     t0=PP_T, y0=y0)
            assert counters["cycles"] == formula + halt_cycles, (
                f"{BLOCK} requant: {counters['cycles']} cycles, formula {formula} + HALT "
                f"{halt_cycles} {where}")
            assert counters["requant"] == 0, counters
            got = await readout(y0, 8, f"requant {k}")
            want = requantize(xs[k][None, :].astype(np.int64), mult, bias, shift)[0]
            check_values("in-memory requantization + ReLU (sec. 4.2) vs the PPU's", got, want,
                         f"trial {trial} group {k}", where)
            check_values("in-memory requantization vs golden.pim.inmem_requant", got,
                         inmem_requant(xs[k], mult, bias, PP_SHIFT, x_bits=n, p_bits=PP_P),
                         f"trial {trial} group {k}", where)
            ppu.append(want)
        body, best = max_pool_program(config, PP_YS, 8, (PP_T, PP_T + 8), PP_X, PP_ONES,
                                      PP_SLOTS[0], PP_SLOTS[1])
        await both(words=asm.assemble(body + [asm.halt()]), what="max pool of requants")
        got = await readout(best, 8, "max pool of requants")
        check_values("max pooling of 4 requantized sums (the PPU's MAX4)", got,
                     np.max(ppu, axis=0), f"trial {trial}", where)
        dut._log.info("trial %d: in-memory requantization of 4 groups and their max pool "
                      "agree with golden", trial)


#: The path into and out of the array (``sim.compile.nand_postproc.sums_in_program`` /
#: ``results_out_program``): 15-bit sums (two gather passes of 8 planes) in data-memory words
#: 0 .. 31, in rows 0 .. 14 (strips 0-1); the all-ones row in strip 2, t from strip 3, the
#: output rows in strip 5; the outputs back into words 32 .. 63. Slots: o, nn, ov, xs 0-3,
#: the scale words from 4, the bias words after them.
PATH_X_BITS, PATH_SHIFT = 15, 6
PATH_X, PATH_ONES, PATH_T, PATH_Y, PATH_OUT = 0, 16, 24, 40, 32


def path_case(rng, width: int):
    """Random sums (every lane's full 15-bit range, with the extremes), per-lane multipliers
    in [-7, 7], biases in [-4096, 4096], one shift: ``(xs, mult, bias, shift, p_bits)``."""
    from golden.pim import inmem_requant_bits
    lo, hi = -(1 << (PATH_X_BITS - 1)), (1 << (PATH_X_BITS - 1)) - 1
    xs = rng.integers(lo, hi + 1, width)
    xs[:3] = (lo, hi, 0)
    mult = rng.integers(-7, 8, width).astype(np.int32)
    bias = rng.integers(-4096, 4097, width).astype(np.int64)
    shift = np.full(width, PATH_SHIFT, np.int32)
    return xs, mult, bias, shift, inmem_requant_bits(-lo, mult, bias, shift)


def path_program(config, width: int, m_bits: int, p_bits: int) -> list:
    """The sums' way in, the requantization, the outputs' way out (one run)."""
    from sim.compile.nand_postproc import requant_program, results_out_program, sums_in_program
    return (sums_in_program(config, x0=PATH_X, x_bits=PATH_X_BITS, lanes=width, offset0=0,
                            patch=0)
            + requant_program(config, x0=PATH_X, x_bits=PATH_X_BITS, ones=PATH_ONES, m0=4,
                              m_bits=m_bits, c0=4 + m_bits, p_bits=p_bits, shift=PATH_SHIFT,
                              t0=PATH_T, y0=PATH_Y, slots=(0, 1, 2, 3))
            + results_out_program(config, y0=PATH_Y, lanes=width, addr=PATH_OUT))


@cocotb.test()
async def core_bitcount_path(dut):
    """The path of seed 001's in-memory post-processing through the core: 32 raw sums in the
    data memory (``PpuMode.LOGIT`` words) gathered 8 bit-planes per pass (``MOVE GSHIFT``)
    into the array, requantized there (``requant_program``), the 8 output rows sensed into
    the transpose buffer (``MOVE LOADPLANE``) and scattered back into the data memory (``MOVE
    SCATTER``): == ``golden.layers.requantize``; data memory, counters == the cycle model;
    cycles == the formulas."""
    from golden.layers import requantize
    from sim.hw.core_model import CoreModel
    from sim.compile.nand_postproc import (
        requant_cycles, requant_words, results_out_cycles, sums_in_cycles,
    )
    from sim.flows.rtl_backend import CoreHost
    p = load_params()
    rng_py, seed = make_rng(p, "core_bitcount_path")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = small_config()
    width = config.columns * config.subarrays_per_mat
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config, buffer_slots=SLOTS, out_depth=64)
    halt_cycles = model.run(asm.assemble([asm.halt()])).counters["cycles"]
    where = f"(seed {seed}, rerun with SPINPIM_SEED={seed})"
    offsets, patches = [(j, 0) for j in range(width)], [(0, 1)]
    await host.write_tables(offsets, patches)
    for j, (off, kpos) in enumerate(offsets):
        model.write_offset(j, off, kpos)
    model.write_patch(0, *patches[0])
    ones = rows_commands(config, width, PATH_ONES, np.ones(width, np.int64), 1)
    await host.array_commands(ones)
    for cmd, r, bits, mask in ones:
        model.array_command(cmd, r, bits, mask)
    for trial in range(p["trials"]):
        xs, mult, bias, shift, p_bits = path_case(rng, width)
        mw, cw = requant_words(mult, bias, PATH_SHIFT, p_bits, width)
        image = np.concatenate([np.zeros((4, width), bool), mw, cw])
        assert len(image) <= SLOTS
        await host.write_buffer(image)
        for slot, word in enumerate(image):
            model.write_buffer(slot, word)
        words = [int(v) & 0xFFFF_FFFF for v in xs]     # what LOGIT writes (signed 32-bit)
        await host.write_dmem(0, words)
        for j, v in enumerate(words):
            model.write_dmem(j, v)
        prog = asm.assemble(path_program(config, width, len(mw), p_bits) + [asm.halt()])
        counters = await host.run(prog, max_cycles=4 * len(prog) + 64)
        modelled = model.run(prog)
        assert not modelled.error, f"{BLOCK} path: model error {modelled.reason} {where}"
        assert counters == modelled.counters, (
            f"{BLOCK} path: rtl counters {counters} != model {modelled.counters} {where}")
        formula = (sums_in_cycles(config, x0=PATH_X, x_bits=PATH_X_BITS, lanes=width)
                   + requant_cycles(config, p_bits=p_bits, m_bits=len(mw), shift=PATH_SHIFT,
                                    t0=PATH_T, y0=PATH_Y)
                   + results_out_cycles(config, lanes=width))
        assert counters["cycles"] == formula + halt_cycles, (
            f"{BLOCK} path: {counters['cycles']} cycles, formulas {formula} + HALT "
            f"{halt_cycles} {where}")
        assert counters["requant"] == 0, counters
        got = await host.read_dmem(PATH_OUT, width)
        assert got == [model.read_dmem(PATH_OUT + j) for j in range(width)], (
            f"{BLOCK} path: rtl data memory {got} != model {where}")
        want = requantize(xs[None, :].astype(np.int64), mult, bias, shift)[0]
        check_values("sums in, in-memory requantization, outputs out (the PPU's arithmetic)",
                     got, want, f"trial {trial}, p_bits {p_bits}", where)
        dut._log.info("trial %d: %d sums through the array and back agree with golden",
                      trial, width)


@cocotb.test()
async def core_bitcount_path_bad(dut):
    """A GSHIFT of 32 or more, a LOADPLANE beyond the rows or planes, a SCATTER beyond the
    columns or the data memory raise error on both models, with equal counters."""
    from rtl.isa import MoveOp
    from sim.hw.core_model import CoreModel
    from sim.flows.rtl_backend import CoreHost
    config = small_config()
    width = config.columns * config.subarrays_per_mat
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config, buffer_slots=SLOTS, out_depth=64)
    for imm, a, d in ((MoveOp.GSHIFT, 32, 0), (MoveOp.LOADPLANE, config.rows, 0),
                      (MoveOp.LOADPLANE, 0, config.operand_bits),
                      (MoveOp.SCATTER, width, 0), (MoveOp.SCATTER, 0, 64)):
        words = asm.assemble([asm.move(imm=imm.value, a=a, b=0, d=d), asm.halt()])
        counters, error = await host.run_raw(words, max_cycles=32)
        modelled = model.run(words)
        assert error and modelled.error, (
            f"{BLOCK}: MOVE {imm.name} a={a} d={d}: rtl error {error}, model error "
            f"{modelled.error}")
        assert counters == modelled.counters, (counters, modelled.counters)


@cocotb.test()
async def core_bitcount_bad_imm(dut):
    """A BITCOUNT that does nothing (HOLD, no out) or ANDs without a sense raises error on
    both models, and so does an out slot d beyond the buffer."""
    from sim.hw.core_model import CoreModel
    from sim.flows.rtl_backend import CoreHost
    config = small_config()
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config, buffer_slots=SLOTS, out_depth=64)
    for imm, d in ((0, 0), (6, 0), (28, 0), (31, 0), (8, SLOTS)):
        words = asm.assemble([asm.bitcount(imm=imm, a=0, b=0, d=d), asm.halt()])
        counters, error = await host.run_raw(words, max_cycles=32)
        modelled = model.run(words)
        assert error and modelled.error, (
            f"{BLOCK}: BITCOUNT imm={imm}: rtl error {error}, model error {modelled.error}")
        assert counters == modelled.counters, (counters, modelled.counters)


@pytest.mark.sim
def test_core_bitcount(sim):
    config = small_config()
    run_block(small_core(config), block=BLOCK, sim=sim, test_module=__name__,
              params={"trials": 2})
