"""The ``nand_inmem`` route (seed 001 Fig. 8) on the cycle model: in-memory addition of k
operands and multiplication by a shared scale on the per-column bit-counters, against
``golden.pim`` (integer ==), their cycle formulas, the bad inputs of the program builders, and
a core without the route refusing BITCOUNT and the BIT_COUNTER write source. The same programs
run on the RTL core in ``cocotb_tests/test_core_bitcount.py``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cocotb_tests.test_core_bitcount import (
    load_commands, operand_rows, result_row, small_config,
)
from golden.layers import relu
from golden.pim import (
    bitcounter_add, max_pool_compare, max_select, min_select, msb_first_compare, scale_multiply,
)
from rtl.bit_counter import BitCounterOp, BitCountOut, bitcount_imm
from rtl.config import preset
from rtl.isa import Opcode, WriteSrc
from rtl.mtj_array import MacroCmd
from sim.compile import asm
from sim.hw.core_model import CoreModel, unpack_row
from sim.routes.nand_inmem import (
    add_cycles, add_program, compare_cycles, compare_program, max_pool_program, relu_cycles,
    relu_program, scale_cycles, scale_program, scale_words, select_cycles, select_program,
)

SEED = 20261130


def stt_config():
    """A small jeit_stt mat with the route: writes are WRITE_ROW (2-cycle stalls)."""
    cfg = preset("jeit_stt")
    return dataclasses.replace(cfg, rows=64, columns=16, subarrays_per_mat=2, mats=1,
                               routes=cfg.routes + ("nand_inmem",))


def load(model, config, width, values, rows):
    if config.technology == "nand_spin":
        for cmd, r, bits, mask in load_commands(config, width, values, rows):
            model.array_command(cmd, r, bits, mask)
    else:
        for v, r0 in zip(values, rows, strict=True):
            for b in range(config.operand_bits):
                model.array_command(MacroCmd.WRITE, r0 + b, ((v >> b) & 1).astype(bool))


def column_values(model, row0, bits, width):
    return sum(unpack_row(model._cells[row0 + b], width).astype(np.int64) << b
               for b in range(bits))


def check(prim, got, want, where):
    for j, (g, w) in enumerate(zip(got, want, strict=True)):
        assert int(g) == int(w), (f"nand_inmem {prim}: column {j}: model {int(g)} != golden "
                                  f"{int(w)} (seed 001) {where}")


@pytest.mark.parametrize("cfg_of", [small_config, stt_config], ids=["nand_spin", "stt"])
@pytest.mark.parametrize("k", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("corner", [None, "max", "zero"])
def test_addition_equals_golden(cfg_of, k, corner):
    config = cfg_of()
    rng = np.random.default_rng(SEED + k)
    width, n = config.columns * config.subarrays_per_mat, config.operand_bits
    rows = operand_rows(config, k, n)
    out0 = result_row(config, k, n)
    model = CoreModel(config)
    halt = model.run(asm.assemble([asm.halt()])).counters["cycles"]
    for trial in range(3):
        top = (1 << n) - 1
        values = (rng.integers(0, top + 1, (k, width)) if corner is None else
                  np.full((k, width), top if corner == "max" else 0, np.int64))
        load(model, config, width, values, rows)
        body = add_program(config, rows, n, out0)
        run = model.run(asm.assemble(body + [asm.halt()]))
        assert not run.error, run.reason
        out_bits = n + (k - 1).bit_length()
        want, steps = bitcounter_add(values, n)
        check(f"addition of {k} operands", column_values(model, out0, out_bits, width), want,
              f"({config.technology}, {corner or 'random'}, trial {trial})")
        # micro-ops: the seed's counts (golden's steps) plus the clear and the erases
        assert run.counters["bitcount"] == 1 + steps["counts"]
        writes = run.counters["program"] + run.counters["write_row"]
        assert writes == steps["writes"] == out_bits
        if not config.has_stalls:
            assert run.counters["cycles"] == add_cycles(config, k, n, out0) + halt
        # the operands are intact
        for i, r0 in enumerate(rows):
            check("operand kept", column_values(model, r0, n, width), values[i], "")


@pytest.mark.parametrize("cfg_of", [small_config, stt_config], ids=["nand_spin", "stt"])
@pytest.mark.parametrize("a_bits, s_bits", [(8, 8), (8, 3), (3, 8), (1, 1), (5, 6)])
def test_scale_multiply_equals_golden(cfg_of, a_bits, s_bits):
    config = cfg_of()
    rng = np.random.default_rng(SEED + 10 * a_bits + s_bits)
    width, n = config.columns * config.subarrays_per_mat, config.operand_bits
    model = CoreModel(config)
    halt = model.run(asm.assemble([asm.halt()])).counters["cycles"]
    out0 = result_row(config, 1, n)
    for scale in [0, (1 << s_bits) - 1] + [int(v) for v in rng.integers(0, 1 << s_bits, 3)]:
        a = rng.integers(0, 1 << a_bits, width)
        load(model, config, width, [a], [0])
        for j, w in enumerate(scale_words(scale, s_bits, width)):
            model.write_buffer(j, w)
        body = scale_program(config, 0, a_bits, 0, s_bits, out0)
        run = model.run(asm.assemble(body + [asm.halt()]))
        assert not run.error, run.reason
        want, steps = scale_multiply(a, scale, a_bits=a_bits, scale_bits=s_bits)
        check(f"multiplication by {scale}", column_values(model, out0, a_bits + s_bits, width),
              want, f"({config.technology}, {a_bits}x{s_bits} bits)")
        assert run.counters["bitcount"] == 1 + steps["counts"]
        if not config.has_stalls:
            assert run.counters["cycles"] == scale_cycles(config, a_bits, s_bits, out0) + halt


@pytest.mark.parametrize("cfg_of", [small_config, stt_config], ids=["nand_spin", "stt"])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_compare_select_pool_relu_equal_golden(cfg_of, n):
    """Fig. 9 and ReLU: values in strips 0-3, Tag 32, Result 40, groups 48 / 56, slots 0-2."""
    config = cfg_of()
    rng = np.random.default_rng(SEED + n)
    width = config.columns * config.subarrays_per_mat
    model = CoreModel(config)
    halt = model.run(asm.assemble([asm.halt()])).counters["cycles"]
    rows = [0, 8, 16, 24]
    top = (1 << n) - 1
    trials = [np.full((4, width), top), np.zeros((4, width), np.int64)]
    for _ in range(4):
        v = rng.integers(0, top + 1, (4, width))
        v[1, :8] = v[0, :8]                                 # equal lanes: Result 0
        trials.append(v)
    for t, values in enumerate(trials):
        where = f"({config.technology}, n={n}, trial {t})"
        load(model, config, width, values, rows)
        # load() programs operand_bits rows; the primitives read the low n
        values = values & top
        run = model.run(asm.assemble(compare_program(config, 0, 8, n, 32, 40, 0, 1)
                                     + [asm.halt()]))
        assert not run.error, run.reason
        want, steps = msb_first_compare(values[0], values[1], n)
        check("comparison", column_values(model, 40, 1, width), want, where)
        if config.technology == "nand_spin":    # the two resets are erases, every
            assert run.counters["erase"] == steps["writes"]  # rewrite erases first
            assert run.counters["program"] == steps["writes"] - 2
        else:                                   # Tag and Result rows
            assert run.counters["write_row"] == steps["writes"]
        if not config.has_stalls:
            assert run.counters["cycles"] == compare_cycles(config, n) + halt
        for want_max, gold in ((True, max_select), (False, min_select)):
            body = select_program(config, 0, 8, n, 40, 48, 0, 1, want_max=want_max)
            run = model.run(asm.assemble(body + [asm.halt()]))
            assert not run.error, run.reason
            check("max" if want_max else "min", column_values(model, 48, n, width),
                  gold(values[0], values[1], n)[0], where)
            if not config.has_stalls:
                assert run.counters["cycles"] == select_cycles(config, n, 48) + halt
        for k in (1, 2, 4):
            body, best = max_pool_program(config, rows[:k], n, (48, 56), 32, 40, 0, 1)
            run = model.run(asm.assemble(body + [asm.halt()]))
            assert not run.error, run.reason
            check(f"max pool of {k}", column_values(model, best, n, width),
                  max_pool_compare(values[:k], n)[0], where)
        signed = np.where(values[2] >= 1 << (n - 1), values[2] - (1 << n), values[2])
        run = model.run(asm.assemble(relu_program(config, 16, n, 56, 2) + [asm.halt()]))
        assert not run.error, run.reason
        check("relu", column_values(model, 56, n, width), relu(signed), where)
        if not config.has_stalls:
            assert run.counters["cycles"] == relu_cycles(config, n, 56) + halt


def test_fig9_builders_refuse_bad_input():
    config = small_config()
    with pytest.raises(ValueError, match=r"^tag row and result row share strip\(s\) \[4\]"):
        compare_program(config, 0, 8, 8, 32, 33, 0, 1)
    with pytest.raises(ValueError, match=r"^tag row and a share strip\(s\) \[0\]"):
        compare_program(config, 0, 8, 8, 7, 40, 0, 1)
    with pytest.raises(ValueError, match=r"^s1 and s2 must be two buffer slots, not both 3$"):
        compare_program(config, 0, 8, 8, 32, 40, 3, 3)
    with pytest.raises(ValueError, match=r"^out and b share strip\(s\) \[1\]"):
        select_program(config, 0, 8, 8, 40, 12, 0, 1)
    with pytest.raises(ValueError, match=r"^groups must be two first rows"):
        max_pool_program(config, [0, 8], 8, [48], 32, 40, 0, 1)
    with pytest.raises(ValueError, match=r"^value_rows must name at least one value$"):
        max_pool_program(config, [], 8, [48, 56], 32, 40, 0, 1)
    with pytest.raises(ValueError, match=r"^result rows 4 .. 11 share strip"):
        relu_program(config, 0, 8, 4, 0)
    with pytest.raises(ValueError, match=r"^x rows 60 .. 67 do not fit rows=64$"):
        relu_program(config, 60, 8, 0, 0)


def test_eight_bit_formulas():
    """The cycle formulas at the seed's 8 bits on a NAND-SPIN mat (strips of 8 rows)."""
    config = small_config()
    # two operands: 2 erases (9 sum rows), 1 clear, 16 counts, 9 writes
    assert add_cycles(config, 2, 8, 16) == 2 + 1 + 16 + 9
    assert len(add_program(config, [0, 8], 8, 16)) == 28
    # 8 x 8 bits: 2 erases (16 product rows), 1 clear, 64 ANDs counted, 16 writes
    assert scale_cycles(config, 8, 8, 8) == 2 + 1 + 64 + 16
    assert len(scale_program(config, 0, 8, 0, 8, 8)) == 83


def test_counters_wrap_like_the_rtl():
    """Counting more ones than 2**bit_counter_bits - 1 wraps (rtl.bit_counter); the builders
    refuse programs that would."""
    config = dataclasses.replace(small_config(), rows=16)     # 5-bit counters
    assert config.bit_counter_bits == 5
    model = CoreModel(config)
    for s in (0, 8):
        model.array_command(MacroCmd.ERASE, s)
    model.array_command(MacroCmd.PROGRAM, 0, np.ones(32, bool))
    body = ([asm.bitcount(imm=bitcount_imm(BitCounterOp.CLEAR), a=0, b=0, d=0)]
            + [asm.bitcount(imm=bitcount_imm(BitCounterOp.COUNT), a=0, b=0, d=0)] * 33
            + [asm.program(a=8, b=0, imm=WriteSrc.BIT_COUNTER.value)])
    run = model.run(asm.assemble(body + [asm.halt()]))
    assert not run.error, run.reason
    assert model.read_row(8).all()                  # 33 mod 32 = 1: LSB 1
    with pytest.raises(ValueError, match=r"^17 operands: a count reaches 33, beyond"):
        add_program(config, [0] * 17, 1, 8)


@pytest.mark.parametrize("call, match", [
    (lambda c: add_program(c, [], 8, 32), r"^operand_rows must name at least one operand$"),
    (lambda c: add_program(c, [0, 8], 0, 32), r"^n_bits must be an int in \[1, 62\], not 0$"),
    (lambda c: add_program(c, [0, 60], 8, 32), r"^operand rows 60 .. 67 do not fit rows=64$"),
    (lambda c: add_program(c, [0, 8], 8, 12),
     r"^result rows 12 .. 20 share strip\(s\) \[1\] \(8 rows each\) with operand rows"),
    (lambda c: add_program(c, [0, 8], 8, 60), r"^result rows 60 .. 68 do not fit rows=64$"),
    (lambda c: scale_program(c, 0, 8, 0, 8, 4), r"share strip\(s\) \[0\]"),
    (lambda c: scale_words(8, 3, 32), r"^scale must be an int in \[0, 7\], not 8$"),
])
def test_builders_refuse_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call(small_config())


@pytest.mark.parametrize("instr", [
    asm.bitcount(imm=bitcount_imm(BitCounterOp.COUNT), a=0, b=0, d=0),
    asm.write_row(a=0, b=0, imm=WriteSrc.BIT_COUNTER.value),
])
def test_core_without_the_route_refuses_its_micro_op_and_source(instr):
    config = dataclasses.replace(preset("jeit_stt"), rows=64, columns=16, subarrays_per_mat=1)
    run = CoreModel(config).run(asm.assemble([instr, asm.halt()]))
    assert run.error
    assert ("BITCOUNT is not implemented by the core (none of its routes" in run.reason
            if instr.op is Opcode.BITCOUNT else
            "imm=4 is not a WriteSrc of this core (BUFFER, ABS_DIFF, TBUF)" in run.reason)


@pytest.mark.parametrize("imm, d, why", [
    (0, 0, "imm=0 is not a valid BITCOUNT imm"), (6, 0, "imm=6 is not a valid BITCOUNT imm"),
    (28, 0, "imm=28 is not a valid BITCOUNT imm"),
    (8, 2048, "out slot d=2048 is not below buffer_slots=2048"),
])
def test_bad_bitcount_is_an_error(imm, d, why):
    run = CoreModel(small_config()).run(asm.assemble([asm.bitcount(imm=imm, a=0, b=0, d=d),
                                                      asm.halt()]))
    assert run.error and f"BITCOUNT {why}" in run.reason


def test_bitcount_imm_refuses_nothing_and_and_without_sense():
    with pytest.raises(ValueError, match="op HOLD needs an out"):
        bitcount_imm(BitCounterOp.HOLD)
    with pytest.raises(ValueError, match="and_fu needs a sense"):
        bitcount_imm(BitCounterOp.SHIFT, and_fu=True)
    with pytest.raises(ValueError, match="and_fu needs a sense"):
        bitcount_imm(BitCounterOp.HOLD, and_fu=True, out=BitCountOut.LSB)
    assert bitcount_imm(BitCounterOp.HOLD, out=BitCountOut.SA) == 8


def test_the_route_has_no_per_chunk_dot_and_the_compiler_emits_fig10():
    """The route maps no layer through the compiler's chunks (its dot is a one-line
    RouteError naming the whole-layer mapping), a configuration with ``dataflow='nand_inmem'``
    gets the compiler's one-line error, and ``conv_map='fig10'`` compiles a multiply
    convolution into whole-layer programs on the route (the bit-exact runs are below)."""
    from golden.model import bundled_model_path, load_model
    from sim.compile.compiler import CompileError, compile_model
    from sim.routes import RouteError, get_route
    route = get_route("nand_inmem")
    assert not route.maps(None)
    with pytest.raises(RouteError, match=r"^route nand_inmem has no per-chunk dot product: .* "
                                         r"conv_map='fig10'"):
        route.dot(None, 0, None, None, None)
    cfg = preset("nand_spin").with_dataflow("nand_inmem")
    with pytest.raises(CompileError, match=r"^layer 1 \(adder_conv2d\): dataflow 'nand_inmem' "
                                           r"cannot map an adder layer"):
        compile_model(load_model(bundled_model_path("digits_addernet")), cfg, subarrays=1)
    model, _ = compiled_model("plain", 0)
    compiled = compile_model(model, _fig10_config(model))
    st = compiled.stages[0]
    assert st.route == "nand_inmem" and st.chunks
    assert st.micro_ops["bitcount"] > 0 and st.micro_ops["requant"] == 0
    assert compiled.stages[1].route == "and_bitcount"        # the logits: the gather route


# ---- the cross-write and seed 001's data mapping (Fig. 7 / Fig. 10, sim.compile.nand_conv)

def _bits(model, row, width):
    return unpack_row(model._cells[row], width).astype(bool)


@pytest.mark.parametrize("b", [0, 1, 5, 31])
def test_cross_write_rotates_the_lsbs(b):
    """``WriteSrc.BIT_COUNTER_XW``: lane j gets the LSB of lane (j + b) mod lanes (np.roll of
    the counted row, an independent computation), and the counters shift as for
    ``BIT_COUNTER``."""
    config = small_config()
    width = config.columns * config.subarrays_per_mat
    rng = np.random.default_rng(SEED + b)
    a, c = rng.integers(0, 2, width).astype(bool), rng.integers(0, 2, width).astype(bool)
    model = CoreModel(config)
    for s in (0, 8, 16):
        model.array_command(MacroCmd.ERASE, s)
    model.array_command(MacroCmd.PROGRAM, 0, a)
    model.array_command(MacroCmd.PROGRAM, 1, c)
    xw = WriteSrc.BIT_COUNTER_XW.value
    body = [asm.bitcount(imm=bitcount_imm(BitCounterOp.CLEAR), a=0, b=0, d=0),
            asm.bitcount(imm=bitcount_imm(BitCounterOp.COUNT), a=0, b=0, d=0),
            asm.bitcount(imm=bitcount_imm(BitCounterOp.COUNT), a=1, b=0, d=0),
            asm.program(a=8, b=b, imm=xw), asm.program(a=16, b=b, imm=xw)]
    run = model.run(asm.assemble(body + [asm.halt()]))
    assert not run.error, run.reason
    total = a.astype(int) + c.astype(int)
    for row, bit in ((8, 0), (16, 1)):
        want = np.roll((total >> bit) & 1, -b).astype(bool)
        got = _bits(model, row, width)
        assert (got == want).all(), (f"cross-write b={b} bit {bit}: lanes "
                                     f"{np.flatnonzero(got != want)[:4]} differ from np.roll")


def test_cross_write_refuses_b_beyond_the_lanes():
    config = small_config()
    width = config.columns * config.subarrays_per_mat
    model = CoreModel(config)
    model.array_command(MacroCmd.ERASE, 0)
    run = model.run(asm.assemble([asm.program(a=0, b=width,
                                              imm=WriteSrc.BIT_COUNTER_XW.value), asm.halt()]))
    assert run.error and f"BIT_COUNTER_XW b={width} is not below the {width} lanes" in run.reason


@pytest.mark.parametrize("b", [0, 3, 17])
def test_masked_cross_write_programs_only_the_rotated_mask(b):
    """``WriteSrc.BIT_COUNTER_XWM``: as ``BIT_COUNTER_XW`` (np.roll of the counted row), but
    lane j is programmed only if lane (j + b) of the mask word (buffer slot d) is set; two
    writes with complementary masks fill one row without an erase between them (their union is
    the whole np.roll, no program-without-erase); a third write over lanes already programmed
    is flagged, naming the first column."""
    config = small_config()
    width = config.columns * config.subarrays_per_mat
    rng = np.random.default_rng(SEED + 100 + b)
    a = rng.integers(0, 2, width).astype(bool)
    m1 = rng.integers(0, 2, width).astype(bool)
    m2 = ~m1
    model = CoreModel(config)
    for s in (0, 8):
        model.array_command(MacroCmd.ERASE, s)
    model.array_command(MacroCmd.PROGRAM, 0, a)
    model.write_buffer(1, m1)
    model.write_buffer(2, m2)
    xwm = WriteSrc.BIT_COUNTER_XWM.value
    count = asm.bitcount(imm=bitcount_imm(BitCounterOp.COUNT), a=0, b=0, d=0)
    clear = asm.bitcount(imm=bitcount_imm(BitCounterOp.CLEAR), a=0, b=0, d=0)
    body = [clear, count, asm.program(a=8, b=b, d=1, imm=xwm),
            clear, count, count, asm.program(a=8, b=b, d=2, imm=xwm)]
    run = model.run(asm.assemble(body + [asm.halt()]))
    assert not run.error, run.reason
    assert run.counters["program"] == 2
    lanes1 = np.roll(m1, -b)
    # the first write: a through m1 alone; the second (a counted twice, LSB 0) through m2
    want = np.roll(a, -b) & lanes1
    got = _bits(model, 8, width)
    assert (got == want).all(), f"b={b}: lanes {np.flatnonzero(got != want)[:4]} differ"
    # a written through each mask in turn into an erased row: the whole np.roll
    model.array_command(MacroCmd.ERASE, 16)
    run = model.run(asm.assemble([clear, count, asm.program(a=16, b=b, d=2, imm=xwm),
                                  clear, count, asm.program(a=16, b=b, d=1, imm=xwm),
                                  asm.halt()]))
    assert not run.error, run.reason
    assert (_bits(model, 16, width) == np.roll(a, -b)).all()   # the union of the two masks
    col = int(np.flatnonzero(lanes1)[0])
    run = model.run(asm.assemble([clear, count, asm.program(a=8, b=b, d=1, imm=xwm),
                                  asm.halt()]))
    assert run.error and "programmed since their strip's last erase" in run.reason
    assert f"columns {col}" in run.reason


def test_masked_cross_write_refuses_a_mask_slot_beyond_the_buffer():
    config = small_config()
    model = CoreModel(config)
    model.array_command(MacroCmd.ERASE, 0)
    slots = model.buffer_slots
    run = model.run(asm.assemble([asm.program(a=0, b=1, d=slots,
                                              imm=WriteSrc.BIT_COUNTER_XWM.value), asm.halt()]))
    assert run.error and (f"BIT_COUNTER_XWM mask slot d={slots} is not below "
                          f"buffer_slots={slots}") in run.reason


def fig10_run(config, shape, *, seed, bands=1, corner=None, bits=(8, 8)):
    """Plan, load, run one multiply convolution by the Fig. 10 mapping on the cycle model:
    (sums, golden sums, summed counters, static profile, programs, map). ``bits``: seed
    001's <W:I> (W-bit weights, the input's top I bits, ``golden.bitwidth``)."""
    from golden.bitwidth import layer_input, weight_range
    from golden.layers import mul_conv2d
    from sim.compile.nand_conv import (
        buffer_words, conv_programs, input_commands, plan, profile, read_sums,
    )
    C, H, W, O, k, pad = shape
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (C, H, W)).astype(np.uint8)
    w_bits, in_bits = bits
    lo, hi = weight_range(w_bits)
    w = rng.integers(lo, hi + 1, (O, C, k, k)).astype(np.int8)
    if corner == "max":                      # the widest sums: every product 255 * -128
        x[:], w[:] = 255, lo
    elif corner == "mixed":
        x.flat[::2], w.flat[::3], w.flat[1::3] = 255, lo, hi
    cmap = plan(config, (C, H, W), w, padding=pad, bands=bands, where="test layer",
                w_bits=w_bits, in_bits=in_bits)
    width = cmap.lanes
    model = CoreModel(config)
    for s in range(0, config.rows, config.mtjs_per_strip):
        model.array_command(MacroCmd.ERASE, s)
    for r, bits in input_commands(cmap, x):
        model.array_command(MacroCmd.PROGRAM, r, bits)
    for slot, word in buffer_words(cmap).items():
        model.write_buffer(slot, word)
    progs = conv_programs(cmap, w, config)
    total: dict = {}
    for prog in progs:      # in the core's word format (the preset's: 70 bits)
        run = model.run(asm.assemble(prog + [asm.halt()], base_bits=config.isa_base_bits))
        assert not run.error, run.reason
        for key, v in run.counters.items():
            total[key] = total.get(key, 0) + v
    got = read_sums(cmap, lambda r: _bits(model, r, width))
    want = mul_conv2d(layer_input(x, {"in_bits": in_bits})[None], w, padding=pad)[0]
    return got, want, total, profile(progs), progs, cmap


def small128():
    """:func:`small_config` with 128 rows (the cocotb build of
    ``cocotb_tests/test_core_inmem_model.py``: 2 subarrays of 128 x 16)."""
    return dataclasses.replace(small_config(), rows=128)


def _nand_spin_inmem():
    return preset("nand_spin")          # its routes include nand_inmem (issue 14)


@pytest.mark.parametrize("cfg_of, shape, bands", [
    (small128, (1, 2, 2, 2, 3, 1), 1),              # 8 planes x 4 columns = the 32 lanes
    (small128, (2, 4, 4, 2, 2, 0), 1),              # two channels, 2x2 kernel, no padding
    (small128, (1, 3, 2, 1, 2, 1), 1),              # H != W
    (_nand_spin_inmem, (1, 8, 8, 2, 3, 1), 1),      # digits layer 0's shape, no duplication
    (_nand_spin_inmem, (1, 8, 8, 2, 3, 1), 0),      # ... in 8 bands (halo rows duplicated)
    (_nand_spin_inmem, (3, 6, 6, 2, 3, 1), 3),      # 3 channels, 3 bands of 2 output rows
], ids=["small-3x3", "small-2ch-2x2", "small-3x2", "nand_spin-digits0", "nand_spin-8bands",
        "nand_spin-3ch-3bands"])
@pytest.mark.parametrize("corner", [None, "max", "mixed"])
def test_fig10_conv_equals_golden(cfg_of, shape, bands, corner):
    """Seed 001's data mapping: every sum == ``golden.layers.mul_conv2d``; the counters == the
    static profile (cycles: one per micro-op, plus a HALT per program); the input stored once
    (1 band) or with the halo rows of the bands."""
    config = cfg_of()
    seed = SEED + sum(shape) + bands
    got, want, total, static, progs, cmap = fig10_run(config, shape, seed=seed, bands=bands,
                                                     corner=corner)
    bad = np.argwhere(got != want)
    assert not bad.size, (f"Fig. 10 mapping {shape}: sum {tuple(bad[0])} model "
                          f"{got[tuple(bad[0])]} != golden {want[tuple(bad[0])]} (seed 001)")
    halt = CoreModel(config).run(asm.assemble([asm.halt()])).counters["cycles"]
    assert total["cycles"] == static["cycles"] + len(progs) * halt
    for key in ("bitcount", "program", "erase"):
        assert total[key] == static[key], (key, total[key], static[key])
    assert total["requant"] == total["move"] == total["and_fu"] == 0
    C, H, W, O, k, pad = shape
    if bands == 1:
        assert cmap.stored_rows == H + 2 * pad       # every input bit stored once
    else:
        assert cmap.bands > 1 and cmap.stored_rows > H + 2 * pad


@pytest.mark.parametrize("cfg_of, shape, bits", [
    (small128, (1, 2, 2, 2, 3, 1), (4, 4)),         # two levels, 4-block bands
    (small128, (2, 4, 4, 2, 2, 0), (2, 3)),         # 3 planes in 4 blocks (block 3 empty)
    (small128, (1, 3, 2, 1, 2, 1), (1, 1)),         # no level: the plane sum is the dot
    (small128, (1, 2, 2, 2, 3, 1), (8, 2)),         # one level
    (small128, (1, 2, 2, 2, 3, 1), (3, 8)),         # 3 weight planes, the 8-bit input
    (_nand_spin_inmem, (1, 8, 8, 2, 3, 1), (4, 4)),  # digits layer 0's shape at <4:4>
    (_nand_spin_inmem, (3, 6, 6, 2, 3, 1), (5, 6)),  # three levels at 6 bits
], ids=["small-w4i4", "small-w2i3", "small-w1i1", "small-w8i2", "small-w3i8",
        "nand_spin-w4i4", "nand_spin-w5i6"])
@pytest.mark.parametrize("corner", [None, "max", "mixed"])
def test_fig10_conv_bit_widths_equal_golden(cfg_of, shape, bits, corner):
    """Seed 001's <W:I> on the Fig. 10 mapping (issue 14 item 4): every sum == golden's
    ``mul_conv2d`` of the input's top I bits with the W-bit weights; W weight planes (plane
    W - 1 negative), ceil(log2 I) levels, a band of 2**levels blocks; the counters == the
    static profile; narrower operands cost fewer micro-ops than <8:8> on the same layer."""
    config = cfg_of()
    seed = SEED + sum(shape) + sum(bits)
    got, want, total, static, progs, cmap = fig10_run(config, shape, seed=seed, bands=0,
                                                     corner=corner, bits=bits)
    bad = np.argwhere(got != want)
    assert not bad.size, (f"Fig. 10 mapping {shape} at <W:I> = <{bits[0]}:{bits[1]}>: sum "
                          f"{tuple(bad[0])} model {got[tuple(bad[0])]} != golden "
                          f"{want[tuple(bad[0])]} (seed {seed}, seed 001)")
    halt = CoreModel(config).run(asm.assemble([asm.halt()])).counters["cycles"]
    assert total["cycles"] == static["cycles"] + len(progs) * halt
    assert (cmap.w_bits, cmap.in_bits) == bits
    assert cmap.levels == (bits[1] - 1).bit_length()
    blocks = 1 << cmap.levels
    assert cmap.band_lanes >= blocks * cmap.Wp
    assert cmap.rb == -(-cmap.Ho // min(cmap.lanes // (blocks * cmap.Wp), cmap.Ho))
    if corner is None:
        wide = fig10_run(config, shape, seed=seed, bands=0, corner=None)[3]
        assert static["cycles"] < wide["cycles"], (bits, static["cycles"], wide["cycles"])


@pytest.mark.parametrize("change, match", [
    (dict(stride=2), r"^layer 3 \(mul_conv2d\): the Fig. 10 mapping is built for stride 1, "
                     r"not 2 \(not built yet"),
    (dict(shape=(1, 4, 3, 1, 2, 1)), r"^layer 3 \(mul_conv2d\): the Fig. 10 mapping puts 8 "
                                     r"blocks of a padded row of 5 columns side by side \(its 8 "
                                     r"input bit-planes\): 8 x 5 = 40 lanes, the mat has 32$"),
    # 7 input bits take 8 blocks (three levels), so the row of 5 does not fit either
    (dict(shape=(1, 4, 3, 1, 2, 1), bits=(8, 7)),
     r"^layer 3 \(mul_conv2d\): the Fig. 10 mapping puts 8 blocks of a padded row of 5 columns "
     r"side by side \(its 7 input bit-planes\): 8 x 5 = 40 lanes, the mat has 32$"),
    (dict(bits=(0, 8)), r"^layer 3 \(mul_conv2d\): the Fig. 10 mapping takes w_bits in \[1, 8\], "
                        r"not 0$"),
    (dict(bits=(8, 9)), r"^layer 3 \(mul_conv2d\): the Fig. 10 mapping takes in_bits in \[1, 8\], "
                        r"not 9$"),
    (dict(bits=(1, 8)), r"^layer 3 \(mul_conv2d\): a weight of 1 \.\. 1 is not a 1-bit two's "
                        r"complement number \(-1 \.\. 0\)$"),
    # 4 channels x 4 band rows = 16 input rows; 8 x 3 periods x bit_length(12) = 96 operand
    # rows; sums of 255 x 36 need 15 bits: two regions and the output rows of 16 each
    (dict(shape=(4, 2, 2, 1, 3, 1)), r"^layer 3 \(mul_conv2d\): the Fig. 10 mapping needs 160 "
                                     r"rows \(input 16, operands 96, two regions and 1 output "
                                     r"group\(s\) of 15-bit sums\), the subarray has rows=128$"),
    (dict(bands=2), r"^layer 3 \(mul_conv2d\): bands must be an int in \[1, 1\]"),
    (dict(config=lambda: dataclasses.replace(preset("jeit_stt"), rows=64, columns=16,
                                             subarrays_per_mat=2)),
     r"^layer 3 \(mul_conv2d\): the Fig. 10 mapping runs on a nand_spin core with route "
     r"nand_inmem, not technology 'stt'"),
])
def test_fig10_refuses_what_it_cannot_map(change, match):
    from sim.compile.compiler import CompileError
    from sim.compile.nand_conv import plan
    C, H, W, O, k, pad = change.get("shape", (1, 2, 2, 1, 3, 1))
    w = np.ones((O, C, k, k), np.int8)
    config = change.get("config", small128)()
    w_bits, in_bits = change.get("bits", (8, 8))
    with pytest.raises(CompileError, match=match):
        plan(config, (C, H, W), w, padding=pad, stride=change.get("stride", 1),
             bands=change.get("bands", 1), where="layer 3 (mul_conv2d)", w_bits=w_bits,
             in_bits=in_bits)


def test_fig10_on_the_bundled_network_equals_golden():
    """``sim.compile.nand_conv.measure_layers`` on digits_addernet's multiply convolution (its
    layer 0) in 8 bands: the sums ``==`` ``golden.layers.mul_conv2d`` of a test image and the
    in-memory requantization and ReLU of them, where they are, ``==`` the golden trace (both
    checked inside; a mismatch raises); the counters ``==`` the static profile."""
    from golden import datasets
    from golden.model import bundled_model_path, load_model
    from sim.compile.nand_conv import conv_programs, measure_layers, profile
    model = load_model(bundled_model_path("digits_addernet"))
    x, _ = datasets.load_dataset("digits", "test")
    config = _nand_spin_inmem()
    (row,) = measure_layers(model, config, x[:1], bands=0)
    assert row["layer"] == 0 and row["map"].bands == 8
    progs = conv_programs(row["map"], model.layers[0].params["weight"], config)
    static = profile(progs)
    assert row["conv"]["cycles"] == static["cycles"] + len(progs)       # a HALT per program
    assert row["conv"]["program"] == static["program"]
    assert row["post"]["bitcount"] > 0 and row["post"]["requant"] == 0


# ---- the mapping compiled into the whole network (conv_map='fig10', compile_stage)

#: Small multiply CNNs on the 32-lane test core (8 planes x 4 padded columns): two mapped
#: layers in a row, the second max-pooled; a layer with no pool and two channels; an
#: average pool and an adder FC; 10 output channels in two output groups with a pool.
FIG10_SPECS = {
    "two-layers-max": ((1, 2, 2), [("conv", "mul_conv2d", 2, 3, 1, 1),
                                   ("conv", "mul_conv2d", 2, 2, 1, 1), ("pool", "max", 2, 2),
                                   ("flatten",), ("linear", "mul_linear", 3)]),
    "plain": ((2, 4, 4), [("conv", "mul_conv2d", 2, 2, 1, 0), ("flatten",),
                          ("linear", "mul_linear", 3)]),
    "avg": ((1, 2, 2), [("conv", "mul_conv2d", 2, 3, 1, 1), ("pool", "avg", 2, 2),
                        ("flatten",), ("linear", "adder_linear", 3)]),
    "two-groups": ((1, 2, 2), [("conv", "mul_conv2d", 10, 3, 1, 1), ("pool", "max", 2, 2),
                               ("flatten",), ("linear", "mul_linear", 3)]),
}


def compiled_model(which, seed, images=1):
    from tests.layer_models import random_model
    in_shape, spec = FIG10_SPECS[which]
    rng = np.random.default_rng(SEED + seed)
    x = rng.integers(0, 256, (images, *in_shape)).astype(np.uint8)
    return random_model(spec, in_shape, rng, x[:1]), x


def _fig10_config(model, conv_map="fig10", postproc="ppu"):
    from sim.compile.compiler import propose_config
    cfg = dataclasses.replace(small128(), conv_map=conv_map, postproc=postproc)
    return propose_config(model, cfg)


def _run_checked(model, cfg, x, what):
    """Every stage of every image == golden; the counters == the static profile, and the
    counting mode's (``sim.analysis.counting.count_model``) == the cycle model's, every
    counter."""
    from golden.model import infer_int
    from sim.analysis.counting import count_model
    from sim.compile.compiler import compile_model, run_compiled
    compiled = compile_model(model, cfg)
    counted = count_model(compiled).counters
    trace = infer_int(model, x, trace=True)
    static = {}
    for st in compiled.stages:
        for k, v in st.micro_ops.items():
            static[k] = static.get(k, 0) + v
    for i in range(len(x)):
        res = run_compiled(compiled, x[i], CoreModel(cfg))
        for st, y in zip(compiled.stages, res.outputs, strict=True):
            want = np.asarray(trace[st.golden_index])[i].reshape(y.shape)
            bad = np.flatnonzero(want.reshape(-1) != y.reshape(-1))
            assert not bad.size, (f"{what}: {st.name} ({st.route}), image {i}: output "
                                  f"{bad[0]} is {y.reshape(-1)[bad[0]]}, golden "
                                  f"{want.reshape(-1)[bad[0]]} (seed {SEED}, seed 001 Fig. 10)")
        for k in ("cycles", "bitcount", "program", "erase", "move", "requant"):
            assert res.counters[k] == static[k], (what, k, res.counters[k], static[k])
        diff = {k: (counted.get(k), v) for k, v in res.counters.items() if counted.get(k) != v}
        assert not diff, f"{what}: counting != cycle model (counted, modelled): {diff}"
    return compiled


@pytest.mark.parametrize("postproc", ["ppu", "in_memory"])
@pytest.mark.parametrize("which", list(FIG10_SPECS))
def test_compiled_fig10_network_equals_golden(which, postproc):
    """``compile_model`` with ``conv_map='fig10'``: every stage of 2 random images == golden
    (the mapped layers' input loaded from the data memory into bit-planes on chip, their
    sums requantized, pooled and scattered in memory; the other layers by their routes, with
    either post-processing), and the cycle model's counters == the compiler's profile."""
    model, x = compiled_model(which, len(which), images=2)
    compiled = _run_checked(model, _fig10_config(model, postproc=postproc), x, which)
    mapped = [st for st in compiled.stages if st.kind == "mul_conv2d"]
    assert mapped and all(st.route == "nand_inmem" for st in mapped)
    for st in mapped:
        mo = st.micro_ops
        assert mo["bitcount"] > 0 and mo["requant"] == 0 and mo["program"] > 0, (st.name, mo)


@pytest.mark.parametrize("postproc", ["ppu", "in_memory"])
@pytest.mark.parametrize("which, bits", [("two-layers-max", (4, 4)), ("plain", (2, 3)),
                                         ("avg", (8, 1))])
def test_compiled_fig10_bit_widths_equal_golden(which, bits, postproc):
    """The Fig. 10 mapping at seed 001's <W:I> in the compiled network (issue 14 item 4):
    every stage of 2 random images == golden (the input's top I planes loaded on chip, W
    weight planes), the counters == the profile and == the counting mode's; fewer cycles in
    the mapped layers than at <8:8>."""
    from sim.compile.compiler import compile_model
    from tests.layer_models import with_bits
    model, x = compiled_model(which, len(which), images=2)
    narrow = with_bits(model, *bits)
    compiled = _run_checked(narrow, _fig10_config(narrow, postproc=postproc), x,
                            f"{which} <{bits[0]}:{bits[1]}>")
    mapped = [st for st in compiled.stages if st.kind == "mul_conv2d"]
    assert mapped and all(st.route == "nand_inmem" for st in mapped)
    wide = compile_model(model, _fig10_config(model, postproc=postproc))
    cyc = lambda c: sum(st.micro_ops["cycles"] for st in c.stages    # noqa: E731
                        if st.kind == "mul_conv2d")
    assert cyc(compiled) < cyc(wide), (which, bits, cyc(compiled), cyc(wide))


def test_compiled_fig10_default_is_the_gather_route():
    """The default ``conv_map`` is ``gather``: the same model compiles as before."""
    from sim.compile.compiler import compile_model
    model, _ = compiled_model("plain", 0)
    compiled = compile_model(model, _fig10_config(model, conv_map="gather"))
    assert small128().conv_map == "gather"
    assert all(st.route != "nand_inmem" for st in compiled.stages)


def _refusal_model(change):
    from tests.layer_models import random_model
    spec = [("conv", "mul_conv2d", 2, 3, change.get("stride", 1), 1), ("flatten",),
            ("linear", "mul_linear", 3)]
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 1, 2, 2)).astype(np.uint8)
    return random_model(spec, (1, 2, 2), rng, x)


@pytest.mark.parametrize("change, match", [
    (dict(stride=2), r"^layer 0 \(mul_conv2d\): the Fig. 10 mapping is built for stride 1, "
                     r"not 2 \(not built yet"),
    (dict(out_bits=4), r"^layer 0 \(mul_conv2d\): conv_map 'fig10' with eq.-2 output codes "
                       r"\(out_bits\) is not built yet .*; use conv_map 'gather'$"),
    (dict(subarrays=1), r"^layer 0 \(mul_conv2d\): conv_map 'fig10' with 1 subarrays, not the "
                        r"configuration's 2 is not built yet"),
])
def test_compiled_fig10_refuses_what_is_not_built(change, match):
    """What the compiled mapping does not do is a one-line CompileError, "not built yet"."""
    from sim.compile.compiler import CompileError, compile_model
    model = _refusal_model(change)
    if "out_bits" in change:
        ly = model.layers[0]
        ly = dataclasses.replace(ly, params=dict(ly.params, out_bits=change["out_bits"]))
        model = dataclasses.replace(model, layers=(ly, *model.layers[1:]))
    cfg = dataclasses.replace(small128(), conv_map="fig10", data_words=4096,
                              buffer_slots=2048, program_words=4096)
    with pytest.raises(CompileError, match=match):
        compile_model(model, cfg, subarrays=change.get("subarrays"))


def test_conv_map_is_validated():
    """A bad ``conv_map`` or ``fig10`` without the bit-counters: a one-line ValueError."""
    with pytest.raises(ValueError, match=r"^conv_map must be one of gather, fig10, not 'fig7'$"):
        dataclasses.replace(small128(), conv_map="fig7")
    with pytest.raises(ValueError, match=r"^conv_map='fig10' needs the route 'nand_inmem'"):
        dataclasses.replace(preset("nand_spin"), conv_map="fig10", postproc="ppu",
                            routes=("write_free", "and_bitcount"))


def test_compiled_fig10_on_the_bundled_network_equals_golden():
    """digits_addernet whole (its multiply layer 0 by the Fig. 10 mapping, the adder layers
    and the logits by their routes) on nand_spin at mat 4, one test image: every stage ==
    golden (``sim.compile.nand_conv.measure_network`` checks each stage against
    ``golden.model.infer_int``'s trace and raises on a mismatch), both conv maps."""
    from golden import datasets
    from golden.model import bundled_model_path, load_model
    from sim.compile.nand_conv import measure_network
    model = load_model(bundled_model_path("digits_addernet"))
    x, _ = datasets.load_dataset("digits", "test")
    config = dataclasses.replace(_nand_spin_inmem(), subarrays_per_mat=4)
    rows = measure_network(model, config, x[:1])
    assert rows["fig10"]["stages"][0][1] == "nand_inmem"
    assert rows["gather"]["stages"][0][1] == "and_bitcount"
    assert [s[1] for s in rows["fig10"]["stages"][1:]] == [s[1] for s in
                                                         rows["gather"]["stages"][1:]]
