"""sim.hw.core_model.CoreModel against the golden bit-level algorithms and layers.

Each test writes operands through the host port, runs a hand-written micro-op program built
from the datapath contract (``docs/datapath.rst``) and compares the output words (or the
written-back rows) with ``golden.pim`` / ``golden.layers``.
"""

import dataclasses

import numpy as np
import pytest

from golden import layers as L
from golden import pim
from rtl.column_reduce import ReduceOp
from rtl.config import preset
from rtl.routes import ROUTES
from rtl.isa import Instr, Opcode, Operand, counter_names
from rtl.mtj_array import MacroCmd
from sim.compile import asm
from sim.hw.core_model import (
    MODE_AVG4, MODE_LOGIT, MODE_MAX4, MODE_REQUANT, PPU_CLEAR, PPU_EMIT, PPU_MODE_LSB, PPU_NEG,
    CoreModel, pack_row, signed32, unpack_row,
)
from sim.hw.isa_model import run_program

N = 8


def small(name="jeit_stt", rows=64, columns=32, subarrays=1):
    """A small preset with every route (these tests run hand-written programs of the whole
    instruction set); ``subarrays`` (the mat, CoreModel's default K) 1 unless asked."""
    return dataclasses.replace(preset(name), rows=rows, columns=columns,
                               subarrays_per_mat=subarrays, routes=tuple(ROUTES))


def op(opcode, *, imm=0, a=0, b=0, d=0):
    def o(v):
        return v if isinstance(v, Operand) else Operand(v)
    return Instr(opcode, imm=int(imm), a=o(a), b=o(b), d=o(d))


def rel(base, level=0, stride=1):
    return Operand(base, level, stride)


def ppu(*, clear=False, emit=False, neg=False, mode=MODE_REQUANT):
    return (PPU_CLEAR * clear) | (PPU_EMIT * emit) | (PPU_NEG * neg) | (mode << PPU_MODE_LSB)


def run(core, instrs):
    # in the core's word format (nand_spin's data_words 16384: 14-bit bases)
    return core.run(asm.assemble(list(instrs) + [asm.halt()],
                                 base_bits=core.config.isa_base_bits))


def load_rows(core, rows_bits: dict):
    """Write rows {row: bool[columns]} the way the technology writes."""
    cfg = core.config
    if cfg.technology == "nand_spin":
        m = cfg.mtjs_per_strip
        for s in sorted({r - r % m for r in rows_bits}):
            assert not core.array_command(MacroCmd.ERASE, s).error
        for r, bits in rows_bits.items():
            resp = core.array_command(MacroCmd.PROGRAM, r, bits)
            assert not resp.error and not resp.program_without_erase.any()
    else:
        for r, bits in rows_bits.items():
            assert not core.array_command(MacroCmd.WRITE, r, bits).error


def planes(values):
    """uint8 values [columns] -> bool [8, columns], plane b = bit b (two's complement for int)."""
    return pim.to_bits(np.asarray(values).astype(np.int64) & 0xFF, N).astype(bool)


def corner_vectors(rng, columns, k):
    x = rng.integers(0, 256, (k, columns))
    w = rng.integers(0, 256, (k, columns))
    x[0], w[0] = 0, 255               # all lanes differ at the MSB
    x[1] = w[1]                       # all lanes equal
    x[2, ::2], w[2, 1::2] = 255, 0
    return x, w


# ---- write-free L1: MIN_STEP with L1_FIRST / L1_PLANE -------------------------------------

@pytest.mark.parametrize("tech", ["jeit_stt", "nand_spin"])
def test_min_step_l1_equals_golden(tech):
    rng = np.random.default_rng(1)
    cfg = small(tech)
    core = CoreModel(cfg)
    k = 6
    x, w = corner_vectors(rng, cfg.columns, k)
    # plane b of vector j: row b*k + j, buffer slot b*k + j
    rows = {}
    for j in range(k):
        for b, bits in enumerate(planes(x[j])):
            rows[b * k + j] = bits
        for b, bits in enumerate(planes(w[j])):
            core.write_buffer(b * k + j, bits)
    load_rows(core, rows)
    body = [op(Opcode.MIN_STEP, imm=(ReduceOp.L1_FIRST if b == N - 1 else ReduceOp.L1_PLANE).value,
               a=rel(b * k), b=rel(b * k)) for b in range(N - 1, -1, -1)]
    res = run(core, [asm.loop(count=k), *body,
                     op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=MODE_LOGIT), a=0),
                     asm.endloop()])
    assert not res.error, res.reason
    want, _ = pim.l1_write_free(x, w, N)
    assert list(res.out) == [int(v) for v in want]
    assert list(res.out) == [int(v) for v in np.abs(x - w).sum(axis=1)]
    # n cycles per L1, one REQUANT, LOOP once; nothing written into the array
    assert res.counters["cycles"] == 1 + k * (N + 1) + 1
    assert res.counters["min_step"] == k * N and res.writes == res.programs == 0


# ---- abs-diff: SIGN / DIFF passes and the write-back schedule -----------------------------

def abs_diff_program(cfg, *, x_row0, w_slot0, scratch0, delay_ok=True):
    """|x - w| into rows scratch0 + i; x plane i in row x_row0 + i, w plane i in buffer."""
    nand = cfg.technology == "nand_spin"
    prog = []
    if nand:
        prog.append(op(Opcode.ERASE, a=scratch0))
    prog += [op(Opcode.FS_STEP, imm=int(i == 0), a=x_row0 + i, b=w_slot0 + i) for i in range(N)]
    wb = Opcode.PROGRAM if nand else Opcode.WRITE_ROW

    def diff(i):
        return op(Opcode.FS_STEP, imm=2 | int(i == 0), a=x_row0 + i, b=w_slot0 + i)

    def write(i):
        return op(wb, imm=1, a=scratch0 + i, b=0)

    for i in range(0, N, 2):
        if delay_ok:     # the schedule of the spec: DIFF(i), DIFF(i+1), WB(i), WB(i+1)
            prog += [diff(i), diff(i + 1), write(i), write(i + 1)]
        else:            # write-back one cycle after its DIFF: too early
            prog += [diff(i), write(i), diff(i + 1), write(i + 1)]
    return prog


@pytest.mark.parametrize("tech", ["jeit_stt", "nand_spin"])
def test_abs_diff_write_back_gives_abs_diff_rows(tech):
    rng = np.random.default_rng(2)
    cfg = small(tech)
    core = CoreModel(cfg)
    x, w = corner_vectors(rng, cfg.columns, 4)
    for j in range(4):
        core_x = {16 + i: bits for i, bits in enumerate(planes(x[j]))}
        load_rows(core, core_x)
        for i, bits in enumerate(planes(w[j])):
            core.write_buffer(i, bits)
        prog = abs_diff_program(cfg, x_row0=16, w_slot0=0, scratch0=8)
        # read back MSB first: SHIFT_ACC L1_FIRST (acc = p) then SHIFT_ADD -> sum |x - w|
        prog += [op(Opcode.SHIFT_ACC, imm=(ReduceOp.L1_FIRST if i == N - 1
                                           else ReduceOp.SHIFT_ADD).value, a=8 + i)
                 for i in range(N - 1, -1, -1)]
        prog.append(op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=MODE_LOGIT)))
        res = run(core, prog)
        assert not res.error, res.reason
        got = pim.from_bits(np.stack([core.read_row(8 + i) for i in range(N)]).astype(np.uint8))
        want, steps = pim.abs_diff(x[j], w[j], N)
        assert (got == want).all(), (j, got, want)
        assert res.out == (int(want.sum()),)
        assert res.writes + res.programs == steps["writes"] == N
        assert res.erases == (1 if tech == "nand_spin" else 0)
        # 3n cycles of abs-diff (+ the erase), n read-back, 1 REQUANT, HALT; a micro-op
        # follows every write-back directly, and a write of c cycles (the stall table: STT 2)
        # holds it c - 1 cycles
        stalls = (res.writes + res.programs) * (cfg.stalls["write" if tech == "jeit_stt"
                                                           else "program"] - 1)
        assert res.counters["stalls"] == stalls == (N if tech == "jeit_stt" else 0)
        assert res.counters["cycles"] == 3 * N + N + 1 + 1 + res.erases + stalls


def test_write_back_one_cycle_after_diff_takes_the_previous_bit():
    # The spec: DIFF's out is updated at the end of its S2 (issue + 1); a write-back issued in
    # issue + 1 reads it at its S1 before that: it writes the previous difference bit.
    rng = np.random.default_rng(3)
    cfg = small("jeit_stt")
    core = CoreModel(cfg)
    x, w = corner_vectors(rng, cfg.columns, 3)
    j = 2
    load_rows(core, {16 + i: bits for i, bits in enumerate(planes(x[j]))})
    for i, bits in enumerate(planes(w[j])):
        core.write_buffer(i, bits)
    res = run(core, abs_diff_program(cfg, x_row0=16, w_slot0=0, scratch0=8))
    assert not res.error
    right = [core.read_row(8 + i) for i in range(N)]
    res = run(core, abs_diff_program(cfg, x_row0=16, w_slot0=0, scratch0=8, delay_ok=False))
    assert not res.error
    late = [core.read_row(8 + i) for i in range(N)]
    # row 0 got out as left by the previous run's last DIFF (bit 7), row i bit i - 1
    assert (late[0] == right[N - 1]).all()
    for i in range(1, N):
        assert (late[i] == right[i - 1]).all(), i


# ---- AND_FU + reduce: signed dot product ---------------------------------------------------

def test_and_fu_signed_dot_product():
    rng = np.random.default_rng(4)
    cfg = small("nand_spin")
    core = CoreModel(cfg)
    k = 5
    x = rng.integers(0, 256, (k, cfg.columns))
    w = rng.integers(-128, 128, (k, cfg.columns))
    w[0] = -128
    x[0] = 255
    zero_row = 63
    load_rows(core, {zero_row: np.zeros(cfg.columns, bool)})
    pairs = sorted(((m, n) for m in range(N) for n in range(N)), key=lambda p: -(p[0] + p[1]))
    direct, negated = [], []
    for j in range(k):
        load_rows(core, {8 * j + m: bits for m, bits in enumerate(planes(x[j]))})
        for n, bits in enumerate(planes(w[j])):
            core.write_buffer(8 * j + n, bits)
        # direct: CLEAR, then per m+n group SHIFT_*, the sign plane n = 7 subtracting
        prog = [op(Opcode.SHIFT_ACC, imm=ReduceOp.CLEAR.value, a=zero_row)]
        prev = None
        for m, n in pairs:
            sub = n == N - 1
            if m + n != prev:
                imm = ReduceOp.SHIFT_SUB if sub else ReduceOp.SHIFT_ADD
            else:
                imm = ReduceOp.SUB if sub else ReduceOp.ADD
            prev = m + n
            prog.append(op(Opcode.AND_FU, imm=imm.value, a=8 * j + m, b=8 * j + n))
        prog.append(op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=MODE_LOGIT)))
        res = run(core, prog)
        assert not res.error, res.reason
        direct.append(signed32(res.out[0]))
        # negated: (7, 7) loaded with L1_FIRST (acc = p), signs flipped, PPU NEG
        prog, prev = [], None
        for m, n in pairs:
            sub = n != N - 1
            if prev is None:
                imm = ReduceOp.L1_FIRST
            elif m + n != prev:
                imm = ReduceOp.SHIFT_SUB if sub else ReduceOp.SHIFT_ADD
            else:
                imm = ReduceOp.SUB if sub else ReduceOp.ADD
            prev = m + n
            prog.append(op(Opcode.AND_FU, imm=imm.value, a=8 * j + m, b=8 * j + n))
        prog.append(op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, neg=True,
                                               mode=MODE_LOGIT)))
        res = run(core, prog)
        assert not res.error, res.reason
        negated.append(signed32(res.out[0]))
    want, _ = pim.and_bitcount_dot(x, w, x_bits=8, w_bits=8, w_signed=True)
    assert direct == negated == [int(v) for v in want]
    assert direct == [int(v) for v in (x * w).sum(axis=1)]


def test_and2_or2_and_reduce_ops():
    rng = np.random.default_rng(5)
    cfg = small("jeit_stt")
    core = CoreModel(cfg)
    r = rng.integers(0, 2, (4, cfg.columns)).astype(bool)
    load_rows(core, dict(enumerate(r)))
    p = r.sum(axis=1)
    a2 = int((r[0] & r[1]).sum())
    o2 = int((r[2] | r[3]).sum())
    prog = [
        op(Opcode.READ, imm=ReduceOp.L1_FIRST.value, a=0),           # p0
        op(Opcode.READ, imm=ReduceOp.SHIFT_ADD.value, a=1),          # 2 p0 + p1
        op(Opcode.SHIFT_ACC, imm=ReduceOp.SUB2.value, a=2),          # - 2 p2
        op(Opcode.SHIFT_ACC, imm=ReduceOp.SHIFT.value, a=3),         # x 2
        op(Opcode.AND2, imm=ReduceOp.ADD.value, a=0, b=1),           # + |r0 & r1|
        op(Opcode.OR2, imm=ReduceOp.SHIFT_SUB2.value, a=2, b=3),     # 2 acc - 2 |r2 | r3|
        op(Opcode.READ, imm=ReduceOp.HOLD.value, a=0),
        op(Opcode.READ, imm=11, a=0),                                # unused code: HOLD
        op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=MODE_LOGIT)),
    ]
    res = run(core, prog)
    want = 2 * (2 * ((2 * p[0] + p[1]) - 2 * p[2]) + a2) - 2 * o2
    assert signed32(res.out[0]) == want and core.acc == want


# ---- PPU ----------------------------------------------------------------------------------

def load_acc(value, zero_row, one_row):
    """Micro-ops leaving ``value`` in the accumulator (one_row holds a single 1)."""
    prog = [op(Opcode.SHIFT_ACC, imm=ReduceOp.CLEAR.value, a=zero_row)]
    imm = (ReduceOp.SHIFT_SUB if value < 0 else ReduceOp.SHIFT_ADD).value
    for bit in bin(abs(value))[2:]:
        prog.append(op(Opcode.SHIFT_ACC, imm=imm, a=one_row if bit == "1" else zero_row))
    return prog


def ppu_core(rng, channels):
    cfg = small("jeit_stt")
    core = CoreModel(cfg, channels=channels)
    one = np.zeros(cfg.columns, bool)
    one[rng.integers(cfg.columns)] = True
    load_rows(core, {0: np.zeros(cfg.columns, bool), 1: one})
    mult = rng.integers(-300, 300, channels).astype(np.int32)
    shift = rng.integers(0, 12, channels).astype(np.int32)
    bias = rng.integers(-20000, 20000, channels).astype(np.int64)
    for ch in range(channels):
        core.write_table(ch, int(mult[ch]), int(shift[ch]), int(bias[ch]))
    return core, mult, shift, bias


@pytest.mark.parametrize("neg", [False, True])
def test_ppu_requant_equals_golden(neg):
    rng = np.random.default_rng(6)
    ch, k = 5, 6
    core, mult, shift, bias = ppu_core(rng, ch)
    acc = rng.integers(-3000, 3000, (ch, k))
    acc[0, 0], acc[1, 0] = 0, -1
    prog = []
    for o in range(ch):
        for i in range(k):
            # split into two partial sums: CLEAR without EMIT, then EMIT
            part = int(rng.integers(-500, 500))
            prog += load_acc(part, 0, 1)
            prog.append(op(Opcode.REQUANT, imm=ppu(clear=True, neg=neg), a=o))
            prog += load_acc(int(acc[o, i]) - part, 0, 1)
            prog.append(op(Opcode.REQUANT, imm=ppu(emit=True, neg=neg), a=o))
    res = run(core, prog)
    assert not res.error, res.reason
    v = -acc if neg else acc
    want = L.requantize(v[None].astype(np.int64), mult, bias, shift)[0]
    assert np.array_equal(np.array(res.out).reshape(ch, k), want)


@pytest.mark.parametrize("mode", [MODE_MAX4, MODE_AVG4])
def test_ppu_pool_equals_golden(mode):
    rng = np.random.default_rng(7)
    ch = 3
    core, mult, shift, bias = ppu_core(rng, ch)
    acc = rng.integers(-3000, 3000, (ch, 2, 4))       # 2 windows of 4 per channel
    prog = []
    for o in range(ch):
        for win in range(2):
            for i in range(4):
                prog += load_acc(int(acc[o, win, i]), 0, 1)
                prog.append(op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=mode), a=o))
    res = run(core, prog)
    assert not res.error, res.reason
    y = L.requantize(acc.reshape(1, ch, 8).astype(np.int64), mult, bias, shift)
    # window-major 2x2: [1, ch, 2 windows, 4] -> [1, ch, 2, 4] images of 2 x 2 each
    img = y.reshape(1, ch, 2, 2, 2).transpose(0, 1, 3, 2, 4).reshape(1, ch, 2, 4)
    pool = L.max_pool2d if mode == MODE_MAX4 else L.avg_pool2d
    want = pool(img, 2)                                   # [1, ch, 1, 2]
    assert np.array_equal(np.array(res.out).reshape(ch, 2), want[0, :, 0, :])


def test_ppu_logit_equals_add_bias():
    rng = np.random.default_rng(8)
    ch = 4
    core = CoreModel(small("jeit_stt"), channels=ch)
    load_rows(core, {0: np.zeros(core.columns, bool), 1: np.eye(1, core.columns, 3)[0] > 0})
    bias = rng.integers(-2**20, 2**20, ch).astype(np.int32)
    for o in range(ch):
        core.write_table(o, 0, 0, int(bias[o]))
    acc = rng.integers(-2**24, 2**24, ch)
    prog = []
    for o in range(ch):
        prog += load_acc(int(acc[o]), 0, 1)
        prog.append(op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=MODE_LOGIT), a=o))
    res = run(core, prog)
    want = L.add_bias(acc[None].astype(np.int64), bias)[0]
    assert [signed32(v) for v in res.out] == [int(v) for v in want]
    assert all(0 <= v < 2**32 for v in res.out)


def test_start_clears_pointer_and_output_memory_persists():
    core = CoreModel(small("jeit_stt"), out_depth=8)
    load_rows(core, {1: np.ones(core.columns, bool)})
    core.write_table(0, 1, 0, 0)
    emit = op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=MODE_LOGIT))
    res = run(core, [op(Opcode.READ, imm=ReduceOp.L1_FIRST.value, a=1), emit, emit])
    assert res.out == (core.columns, core.columns) and res.out_count == 2
    res = run(core, [op(Opcode.READ, imm=ReduceOp.CLEAR.value, a=1), emit])
    assert res.out == (0,) and core.out_memory[:3] == (0, core.columns, 0)
    assert [core.read_dmem(i) for i in range(3)] == [0, core.columns, 0]


# ---- errors --------------------------------------------------------------------------------

def test_unsupported_micro_op_is_an_error():
    core = CoreModel(small("jeit_stt"))
    res = run(core, [op(Opcode.CMP_STEP, a=0)])      # BITCOUNT is nand_inmem's now
    assert res.error and "CMP_STEP" in res.reason and "not implemented" in res.reason


def test_write_row_on_nand_spin_and_program_without_erase():
    core = CoreModel(small("nand_spin"))
    res = run(core, [op(Opcode.WRITE_ROW, a=3, b=0)])
    assert res.error and "WRITE" in res.reason and "nand_spin" in res.reason
    # power-up cells count as programmed: a PROGRAM before any ERASE is flagged
    resp = core.array_command(MacroCmd.PROGRAM, 9, np.ones(core.columns, bool))
    assert resp.program_without_erase.all() and core.error
    # the failed response persists: a run started now ends in error even if it erases (the
    # RTL samples the array's response in the cycle after start, before the ERASE's lands)
    assert run(core, [op(Opcode.ERASE, a=9)]).error
    assert not core.array_command(MacroCmd.ERASE, 9).error
    assert not run(core, []).error
    res = run(core, [op(Opcode.PROGRAM, a=10, b=0), op(Opcode.PROGRAM, a=10, b=0)])
    assert res.error and "programmed since" in res.reason


def test_host_erase_on_stt_is_an_error():
    core = CoreModel(small("jeit_stt"))
    resp = core.array_command(MacroCmd.ERASE, 0)
    assert resp.error and core.error
    # the failed response persists into the next run
    assert run(core, []).error
    assert not core.array_command(MacroCmd.WRITE, 0, np.zeros(core.columns, bool)).error
    assert not run(core, []).error


def test_operand_range_errors():
    core = CoreModel(small("jeit_stt"), channels=4, out_depth=2, buffer_slots=16)
    assert "not below rows" in run(core, [op(Opcode.READ, a=64)]).reason
    assert "buffer_slots" in run(core, [op(Opcode.AND_FU, a=0, b=16)]).reason
    assert "channels" in run(core, [op(Opcode.REQUANT, a=4, imm=ppu(emit=True))]).reason
    emit = op(Opcode.REQUANT, imm=ppu(emit=True))
    res = run(core, [emit, emit, emit])
    assert res.error and "data memory is full" in res.reason and res.out_count == 2


def test_controller_error_is_reported():
    core = CoreModel(small("jeit_stt"))
    res = core.run(asm.assemble([asm.read(a=1)], check=False))
    assert res.error and "HALT" in res.reason


def test_counters_are_the_controllers():
    words = asm.assemble([asm.loop(count=3), asm.loop(count=2),
                          op(Opcode.READ, imm=ReduceOp.ADD.value, a=rel(0)),
                          asm.endloop(), asm.endloop(), asm.halt()])
    res = CoreModel(small("jeit_stt")).run(words)
    assert res.counters == dict(zip(counter_names(), run_program(words).counters, strict=True))


def test_issue_cycles_follow_the_controller_timing():
    # LOOP 2 { LOOP 2 { READ } }: LOOP 0, LOOP 1, READ 2, READ 3 (ENDLOOP folded), outer
    # ENDLOOP 4 (not folded), LOOP 5, READ 6, READ 7, ENDLOOP 8, HALT 9.
    words = asm.assemble([asm.loop(count=2), asm.loop(count=2), asm.read(a=asm.rel(0)),
                          asm.endloop(), asm.endloop(), asm.halt()])
    cycles = []
    run = run_program(words, issue_cycles=cycles)
    assert cycles == [2, 3, 6, 7] and run.counters[0] == 10
    cycles = []
    run_program(words, stall=[2], issue_cycles=cycles)   # held 2 cycles, accepted in the last
    assert cycles == [4, 5, 8, 9]


def test_pack_unpack_row():
    rng = np.random.default_rng(9)
    bits = rng.integers(0, 2, 40).astype(bool)
    v = pack_row(bits, 40)
    assert all(((v >> k) & 1) == bits[k] for k in range(40))
    assert (unpack_row(v, 40) == bits).all()
    with pytest.raises(ValueError, match="shape"):
        pack_row(bits, 32)


# ---- sensing faults (rtl.mtj_array's LFSRs; golden.array reproduces them) -----------------

def _golden_faults(seed, columns):
    """golden.array's LFSR states for ``seed``, and a function giving the next flip mask."""
    from golden.array import fault_flips, lfsr_column_seeds
    state = {"s": lfsr_column_seeds(seed, columns)}

    def next_flips(threshold):
        state["s"], f = fault_flips(state["s"], threshold)
        return f.astype(bool)
    return state, next_flips


@pytest.mark.parametrize("threshold", [0, 1, 3277, 40000, 65535])
def test_fault_flip_masks_of_sensed_rows_equal_golden(threshold):
    # FS_STEP DIFF with first = 1 and swap = 0 makes the abs-diff lanes' out the sensed row
    # itself (big = x, small = w = 0, no borrow); the write-backs two cycles later store it, so
    # each stored row is the data row XOR that sensing's flip mask, column for column.
    rng = np.random.default_rng(11)
    cfg = small("jeit_stt")
    cols = cfg.columns
    core = CoreModel(cfg)
    data = rng.integers(0, 2, (2, cols)).astype(bool)
    load_rows(core, {0: np.zeros(cols, bool), 1: data[0], 2: data[1]})
    core.write_buffer(0, np.zeros(cols, bool))
    seed = int(rng.integers(0, 1 << 32))
    core.set_faults(enable=True, seed=seed, threshold=threshold)
    groups = 6
    prog = [op(Opcode.FS_STEP, imm=1, a=0, b=0)]              # SIGN: swap = ~x & 0 = 0
    for g in range(groups):
        prog += [op(Opcode.FS_STEP, imm=3, a=1, b=0), op(Opcode.FS_STEP, imm=3, a=2, b=0),
                 op(Opcode.WRITE_ROW, imm=1, a=8 + 2 * g), op(Opcode.WRITE_ROW, imm=1,
                                                              a=9 + 2 * g)]
    res = run(core, prog)
    assert not res.error, res.reason
    state, next_flips = _golden_faults(seed, cols)
    next_flips(threshold)                                      # the SIGN's sensing
    for g in range(groups):
        for i in range(2):
            want = data[i] ^ next_flips(threshold)
            got = core.read_row(8 + 2 * g + i)
            assert (got == want).all(), (g, i, got.astype(int), want.astype(int))
    # 1 + 2 * groups sensings, the writes moved nothing
    fs = core.fault_state
    assert fs.enabled and fs.threshold == threshold
    assert (fs.lfsr == state["s"]).all()
    if threshold == 0:
        assert all((core.read_row(8 + k) == data[k % 2]).all() for k in range(2 * groups))
    if threshold == 65535:        # every fresh value but 0xFFFF flips
        assert sum((core.read_row(8 + k) != data[k % 2]).sum() for k in range(2 * groups)) \
            > 0.99 * 2 * groups * cols


@pytest.mark.parametrize("tech", ["jeit_stt", "nand_spin"])
def test_every_sense_command_and_only_those_advance_the_lfsrs(tech):
    # Each sense micro-op reduces its faulty row with L1_FIRST (acc = popcount, for MIN_STEP
    # + |w| - 2 |x & w|) and a LOGIT emits it: the outputs are the per-sensing popcounts of
    # (row op row) ^ flips. Writes, erases and REQUANTs must not move the LFSRs.
    rng = np.random.default_rng(12)
    cfg = small(tech)
    cols = cfg.columns
    core = CoreModel(cfg)
    r = rng.integers(0, 2, (4, cols)).astype(bool)
    w = rng.integers(0, 2, (2, cols)).astype(bool)
    load_rows(core, dict(enumerate(r)))
    for s, bits in enumerate(w):
        core.write_buffer(s, bits)
    threshold = 16384
    seed = int(rng.integers(0, 1 << 32))
    core.set_faults(enable=True, seed=seed, threshold=threshold)
    first = ReduceOp.L1_FIRST.value
    emit = op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=MODE_LOGIT))
    nand = tech == "nand_spin"
    write = ([op(Opcode.ERASE, a=32), op(Opcode.PROGRAM, a=32, b=1)] if nand
             else [op(Opcode.WRITE_ROW, a=32, b=1)])
    senses = [   # (micro-op, its row before the faults, row_w for the reduction)
        (op(Opcode.READ, imm=first, a=0), r[0], None),
        (op(Opcode.SHIFT_ACC, imm=first, a=1), r[1], None),
        (op(Opcode.AND_FU, imm=first, a=2, b=1), r[2] & w[1], None),
        (op(Opcode.AND2, imm=first, a=0, b=3), r[0] & r[3], None),
        (op(Opcode.OR2, imm=first, a=1, b=2), r[1] | r[2], None),
        (op(Opcode.MIN_STEP, imm=first, a=3, b=0), r[3], w[0]),
        (op(Opcode.READ, imm=first, a=32), w[1], None),          # the row the writes stored
    ]
    prog = list(write)
    for micro, _, _ in senses:
        prog += [micro, emit]
    prog.append(op(Opcode.FS_STEP, imm=1, a=0, b=0))             # senses, no output
    res = run(core, prog)
    assert not res.error, res.reason
    state, next_flips = _golden_faults(seed, cols)
    want = []
    for _, row, row_w in senses:
        x = row ^ next_flips(threshold)
        v = int(x.sum())
        if row_w is not None:
            v += int(row_w.sum()) - 2 * int((x & row_w).sum())
        want.append(v)
    next_flips(threshold)                                        # the FS_STEP
    assert [signed32(v) for v in res.out] == want
    assert (core.fault_state.lfsr == state["s"]).all()
    # a program without sense commands leaves them where they are
    before = core.fault_state.lfsr.copy()
    assert not run(core, [*write, emit]).error
    assert (core.fault_state.lfsr == before).all()


def test_host_sense_commands_advance_the_lfsrs_host_writes_do_not():
    cfg = small("jeit_stt")
    core = CoreModel(cfg)
    core.set_faults(enable=True, seed=99, threshold=1000)
    state, next_flips = _golden_faults(99, cfg.columns)
    core.array_command(MacroCmd.WRITE, 3, np.ones(cfg.columns, bool))
    core.array_command(MacroCmd.NOP, 0)
    assert (core.fault_state.lfsr == state["s"]).all()
    for cmd in (MacroCmd.READ, MacroCmd.AND_FU, MacroCmd.AND2, MacroCmd.OR2):
        core.array_command(cmd, 3)
        next_flips(1000)
        assert (core.fault_state.lfsr == state["s"]).all(), cmd
    core.set_faults(enable=False, seed=99, threshold=1000)
    core.array_command(MacroCmd.READ, 3)
    assert (core.fault_state.lfsr == _golden_faults(99, cfg.columns)[0]["s"]).all()


def test_faults_off_by_default_and_results_unchanged_when_off():
    from golden.array import lfsr_column_seeds, rate_to_threshold
    rng = np.random.default_rng(13)
    cfg = dataclasses.replace(small("jeit_stt"), fault_seed=1234, read_fault_rate=0.25)
    x, w = corner_vectors(rng, cfg.columns, 4)
    x, w = x[3:], w[3:]                                   # a random pair
    prog = [op(Opcode.MIN_STEP, imm=(ReduceOp.L1_FIRST if b == N - 1
                                     else ReduceOp.L1_PLANE).value, a=b, b=b)
            for b in range(N - 1, -1, -1)]
    prog.append(op(Opcode.REQUANT, imm=ppu(clear=True, emit=True, mode=MODE_LOGIT)))
    want = int(np.abs(x[0] - w[0]).sum())

    def fresh():
        core = CoreModel(cfg)
        load_rows(core, dict(enumerate(planes(x[0]))))
        for b, bits in enumerate(planes(w[0])):
            core.write_buffer(b, bits)
        return core

    core = fresh()
    fs = core.fault_state                      # the RTL's reset values, faults off
    assert not fs.enabled and fs.threshold == rate_to_threshold(0.25)
    assert (fs.lfsr == lfsr_column_seeds(1234, cfg.columns)).all()
    assert run(core, prog).out == (want,)
    assert (core.fault_state.lfsr == fs.lfsr).all()           # off: the LFSRs hold
    # loaded but disabled: nothing changes
    core = fresh()
    core.set_faults(enable=False, seed=5, threshold=65535)
    assert run(core, prog).out == (want,)
    assert (core.fault_state.lfsr == lfsr_column_seeds(5, cfg.columns)).all()
    # enabled with threshold 0: the LFSRs run, nothing flips
    core = fresh()
    core.set_faults(enable=True, seed=5, threshold=0)
    assert run(core, prog).out == (want,)
    assert not (core.fault_state.lfsr == lfsr_column_seeds(5, cfg.columns)).all()
    # enabled with a high rate: the distance changes; reloading the seed repeats it exactly
    core = fresh()
    core.set_faults(enable=True, seed=5, threshold=30000)
    faulty = run(core, prog).out
    assert faulty != (want,)
    core.set_faults(enable=True, seed=5, threshold=30000)
    assert run(core, prog).out == faulty


def test_set_faults_arguments():
    core = CoreModel(small("jeit_stt"))
    with pytest.raises(ValueError, match="seed"):
        core.set_faults(enable=True, seed=1 << 32)
    with pytest.raises(ValueError, match="threshold"):
        core.set_faults(enable=True, threshold=1 << 16)
    with pytest.raises(TypeError, match="seed"):
        core.set_faults(enable=True, seed=1.5)
    with pytest.raises(TypeError):
        core.set_faults(True)                                   # keyword-only
    core.set_faults(enable=True, seed=0, threshold=7)           # seed 0: column 0 gets 1
    fs = core.fault_state
    assert fs.enabled and fs.threshold == 7 and int(fs.lfsr[0]) == 1


@pytest.mark.parametrize("subarrays", [1, 4])
def test_compiled_model_with_faults_is_deterministic_and_differs_from_golden(subarrays):
    from golden.array import rate_to_threshold
    from golden.model import Layer, infer_int, make_model
    from sim.compile.compiler import compile_model, load_compiled, run_compiled
    rng = np.random.default_rng(14)
    w1 = rng.integers(0, 256, (4, 2, 3, 3)).astype(np.uint8)
    w2 = rng.integers(-128, 128, (3, 4 * 4 * 4)).astype(np.int8)
    o = 4
    bn = dict(bn_gamma=np.ones(o, np.float32), bn_beta=np.zeros(o, np.float32),
              bn_mean=np.zeros(o, np.float32), bn_var=np.ones(o, np.float32),
              bn_eps=np.float64(1e-5))
    layers = [
        Layer("adder_conv2d", "requant",
              dict(weight=w1, stride=1, padding=1, rq_mult=np.full(o, 300, np.int32),
                   rq_bias=np.full(o, -300 * 600, np.int64), rq_shift=np.full(o, 8, np.int32)),
              dict(weight=w1.astype(np.float32), **bn)),
        Layer("flatten"),
        Layer("mul_linear", "logits", dict(weight=w2, bias=np.arange(3, dtype=np.int32)),
              dict(weight=w2.astype(np.float32), bias=np.zeros(3, np.float32))),
    ]
    model = make_model(name="faulty", input_shape=(2, 4, 4), input_scale=1 / 255,
                       class_names=["a", "b", "c"], layers=layers)
    x = rng.integers(0, 256, (2, 4, 4)).astype(np.uint8)
    for flow, tech in (("write_free", "nand_spin"), ("abs_diff", "jeit_stt")):
        cfg = dataclasses.replace(preset(tech), rows=128, columns=16,
                                  subarrays_per_mat=subarrays, mats=1, dataflow=flow)
        compiled = compile_model(model, cfg)
        trace = [np.asarray(t)[0] for t in infer_int(model, x[None], trace=True)]
        runs = []
        for enable in (False, True, True):
            core = CoreModel(cfg)
            load_compiled(compiled, core)
            core.set_faults(enable=enable, seed=77, threshold=rate_to_threshold(0.05))
            runs.append(run_compiled(compiled, x, core, load_weights=False))
        clean, faulty, again = runs
        for stage, y in zip(compiled.stages, clean.outputs, strict=True):
            want = np.asarray(trace[stage.golden_index]).reshape(stage.out_shape)
            assert (y == want).all(), (flow, stage.name)
        assert any((a != b).any() for a, b in zip(faulty.outputs, clean.outputs, strict=True))
        assert all((a == b).all() for a, b in zip(faulty.outputs, again.outputs, strict=True))
