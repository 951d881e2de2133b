"""sim.hw.core_model.CoreModel: on-chip data movement and the mat (``docs/datapath.rst``).

Each test drives the host port, runs a hand-written program of the new micro-ops (MOVE
GATHER / CLEAR / SETPTR / ADDPTR, WRITE_ROW / PROGRAM from the transpose buffer, REQUANT's
addend select) and compares with values worked out in the test from the spec: the gathered
words, the rows written, the data-memory words, the error and its cause. The controller-trace
expansion is compared with the reference interpreter ``sim.hw.isa_model.run_program``.
"""

import dataclasses
import re

import numpy as np
import pytest

from golden.array import fault_flips
from rtl.column_reduce import ReduceOp
from rtl.config import preset
from rtl.routes import ROUTES
from rtl.isa import DATAPATH_OPS, Instr, MoveOp, Opcode, Operand, WriteSrc, encode
from rtl.mtj_array import MacroCmd, column_seed
from sim.compile import asm
from sim.hw.core_model import (
    MODE_LOGIT, PPU_CLEAR, PPU_EMIT, PPU_MODE_LSB, CoreModel, expand_program, signed32,
)
from sim.hw.isa_model import run_program
from tests.test_core_model import op

N = 8
LOGIT = PPU_CLEAR | PPU_EMIT | MODE_LOGIT << PPU_MODE_LSB
TBUF = WriteSrc.TBUF.value


def small(name="jeit_stt", *, rows=64, columns=16, subarrays=1):
    """A small preset with every route (hand-written programs of the whole instruction set)."""
    return dataclasses.replace(preset(name), rows=rows, columns=columns,
                               subarrays_per_mat=subarrays, routes=tuple(ROUTES))




def move(mop, *, a=0, b=0, d=0):
    return op(Opcode.MOVE, imm=mop.value, a=a, b=b, d=d)


def run(core, instrs):
    # in the core's word format (nand_spin's data_words 16384: 14-bit bases)
    return core.run(asm.assemble(list(instrs) + [asm.halt()],
                                 base_bits=core.config.isa_base_bits))


def bits_of(values, columns):
    """Plane q of column values: bool [N, columns]."""
    v = np.zeros(columns, dtype=np.int64)
    v[:len(values)] = values
    return ((v[None, :] >> np.arange(N)[:, None]) & 1).astype(bool)


# ---- GATHER ----------------------------------------------------------------------------------

def gather_core(**kw):
    core = CoreModel(small(), out_depth=64, offset_depth=8, patch_depth=4, **kw)
    dmem = [(i * 37 + 11) & 0xFF for i in range(64)]
    dmem[10] = 0x1A5                                  # bits above the 8 planes are not moved
    for i, v in enumerate(dmem):
        core.write_dmem(i, v)
    # a 2x2 window over rows of 8 words: offset, kpos
    for i, (off, kpos) in enumerate([(0, 0), (1, 1), (8, 2), (9, 3)]):
        core.write_offset(i, off, kpos)
    core.write_patch(0, 10, 0b1111)                   # every pixel inside
    core.write_patch(1, 0xFFFF, 0b1010)               # base -1: kpos 0 and 2 are padding
    core.write_patch(2, 60, 0b1111)                   # reaches beyond out_depth = 64
    return core, dmem


def test_gather_reads_the_data_memory_through_the_tables_with_padding():
    core, dmem = gather_core()
    prog = [asm.loop(count=4), move(MoveOp.GATHER, a=asm.rel(0), b=asm.rel(0), d=0),
            asm.endloop(),
            asm.loop(count=4), move(MoveOp.GATHER, a=asm.rel(4), b=asm.rel(0), d=1),
            asm.endloop(), asm.nop()]
    prog += [op(Opcode.WRITE_ROW, imm=TBUF, a=8 + q, b=q) for q in range(N)]
    res = run(core, prog)
    assert not res.error, res.reason
    # patch 0: words 10, 11, 18, 19; patch 1: (-1 + 1) mod 2**16 = 0 and (-1 + 9) = 8 where
    # the mask has kpos 1 and 3, 0 for the padding (its addresses -1 and 7 are never read)
    want = [0xA5, dmem[11], dmem[18], dmem[19], 0, dmem[0], 0, dmem[8]]
    planes = bits_of(want, 16)
    assert (core.read_tbuf() == planes).all()
    for q in range(N):
        assert (core.read_row(8 + q) == planes[q]).all(), q
    assert res.counters["move"] == 8 and res.counters["write_row"] == N == res.writes


def test_padding_beyond_the_data_memory_is_not_an_error():
    core, _ = gather_core()
    core.write_patch(3, 62, 0b0001)                   # only kpos 0 (address 62) is inside
    res = run(core, [asm.loop(count=4), move(MoveOp.GATHER, a=asm.rel(0), b=asm.rel(0), d=3),
                     asm.endloop()])
    assert not res.error, res.reason


@pytest.mark.parametrize("a, b, d, cause, column, word", [
    # the ports keep the low bits of an operand: column a mod 16, entry b mod 8 / d mod 4,
    # word address mod 64
    (17, 1, 0, "column a=17 is not below the mat's 16 columns", 1, 11),
    (2, 9, 0, "offset entry b=9 is not below offset_depth=8", 2, 11),
    (3, 1, 5, "patch entry d=5 is not below patch_depth=4", 3, 0),      # patch 1, kpos 1
    (4, 3, 2, r"address 69 \(patch entry 2 base 60 \+ offset entry 3 9\) is not below "
              r"out_depth=64", 4, 5),
])
def test_gather_errors_and_what_they_still_write(a, b, d, cause, column, word):
    core, dmem = gather_core()
    fill = [move(MoveOp.GATHER, a=j, b=0, d=0) for j in range(6)]     # every column 0xA5
    assert not run(core, fill).error
    res = run(core, [move(MoveOp.GATHER, a=a, b=b, d=d)])
    assert res.error
    assert re.search(cause, res.reason), res.reason
    want = [0xA5] * 6
    want[column] = dmem[word] & 0xFF
    assert (core.read_tbuf() == bits_of(want, 16)).all()


def test_clear_and_the_transpose_buffer_hazard():
    # GATHER / CLEAR land at the end of their S2 (issue + 1); a TBUF write reads at its S1:
    # one issued right after sees the buffer before, one two cycles after sees it after.
    core, dmem = gather_core()
    write = [op(Opcode.WRITE_ROW, imm=TBUF, a=20 + q, b=q) for q in range(N)]
    # GATHER in c, first write in c + 1: plane 0 is the old (all-zero) buffer, plane 1 (c + 2)
    # already has the gathered column
    res = run(core, [move(MoveOp.GATHER, a=3, b=0, d=0), *write])
    assert not res.error, res.reason
    new = bits_of([0, 0, 0, 0xA5], 16)
    assert not core.read_row(20).any()
    for q in range(1, N):
        assert (core.read_row(20 + q) == new[q]).all(), q
    # the buffer is not cleared by start; CLEAR in c: a write in c + 1 still sees column 3
    res = run(core, [move(MoveOp.CLEAR), op(Opcode.WRITE_ROW, imm=TBUF, a=30, b=0),
                     op(Opcode.WRITE_ROW, imm=TBUF, a=31, b=0)])
    assert not res.error, res.reason
    assert (core.read_row(30) == new[0]).all() and not core.read_row(31).any()
    assert not core.read_tbuf().any()


def test_gather_reads_a_word_the_ppu_writes_two_cycles_later():
    # REQUANT (issue c) writes the data memory at the end of its S3 (c + 2); a GATHER reads at
    # its S2: issued in c + 1 it gets the old word, in c + 2 the new one.
    core, dmem = gather_core()
    core.write_table(0, 0, 0, 100)                    # LOGIT: word = acc (0) + 100
    core.write_offset(5, 7, 0)
    core.write_patch(3, 0, 1)                         # word 7 = where SETPTR 7 puts the PPU
    emit = op(Opcode.REQUANT, imm=LOGIT, a=0)
    res = run(core, [move(MoveOp.SETPTR, a=7), emit, move(MoveOp.GATHER, a=0, b=5, d=3)])
    assert not res.error and core.read_dmem(7) == 100
    assert (core.read_tbuf() == bits_of([dmem[7]], 16)).all()
    core.write_dmem(7, dmem[7])
    res = run(core, [move(MoveOp.SETPTR, a=7), emit, asm.nop(),
                     move(MoveOp.GATHER, a=0, b=5, d=3)])
    assert not res.error
    assert (core.read_tbuf() == bits_of([100], 16)).all()


# ---- the PPU's write pointer -----------------------------------------------------------------

def pointer_core():
    core = CoreModel(small(), out_depth=16)
    for i in range(16):
        core.write_dmem(i, 0xDEAD)
    core.write_table(0, 0, 0, 100)
    return core


def test_setptr_addptr_place_the_ppu_words():
    core = pointer_core()
    emit = op(Opcode.REQUANT, imm=LOGIT, a=0)
    res = run(core, [emit, move(MoveOp.SETPTR, a=5), emit, move(MoveOp.ADDPTR, a=3), emit,
                     emit])
    assert not res.error, res.reason
    words = [core.read_dmem(i) for i in range(16)]
    want = [0xDEAD] * 16
    for i in (0, 5, 9, 10):                  # the pointer starts at 0; REQUANT and the MOVEs
        want[i] = 100                        # reach S3 in issue order
    assert words == want and res.out_count == core.out_count == 11
    assert res.out == tuple(want[:11])
    assert res.counters["move"] == 2 and res.counters["requant"] == 4
    # the pointer starts at 0 again; the memory persists
    res = run(core, [move(MoveOp.ADDPTR, a=2), emit])
    assert res.out_count == 3 and core.read_dmem(2) == 100 and core.read_dmem(9) == 100


def test_pointer_errors():
    emit = op(Opcode.REQUANT, imm=LOGIT, a=0)
    core = pointer_core()
    res = run(core, [move(MoveOp.SETPTR, a=16)])          # == out_depth: allowed
    assert not res.error and res.out_count == 16
    res = run(core, [move(MoveOp.SETPTR, a=16), emit])    # but no word fits
    assert res.error and "write pointer 16 is not below out_depth=16" in res.reason
    res = run(core, [move(MoveOp.SETPTR, a=17)])
    assert res.error and "SETPTR sets the write pointer to 17" in res.reason
    assert res.out_count == 16
    res = run(core, [move(MoveOp.SETPTR, a=10), move(MoveOp.ADDPTR, a=7), emit])
    assert res.error and "ADDPTR sets the write pointer to 17" in res.reason
    assert res.out_count == 16 and core.read_dmem(15) == 0xDEAD
    res = run(core, [op(Opcode.MOVE, imm=5), emit])
    assert res.error and "MOVE imm=5 is not a MoveOp" in res.reason
    assert core.read_dmem(0) == 100                       # the rest of the run goes on


# ---- WRITE_ROW / PROGRAM sources -------------------------------------------------------------

def test_write_sources_and_their_errors():
    core = CoreModel(small(), buffer_slots=4, offset_depth=2, patch_depth=2)
    core.write_dmem(0, 0b0100_0101)
    core.write_patch(0, 0, 1)
    assert not run(core, [move(MoveOp.GATHER, a=5, b=0, d=0)]).error    # column 5
    core.array_command(MacroCmd.WRITE, 3, np.ones(16, bool))
    assert not core.error
    core.write_buffer(1, np.eye(1, 16, 9)[0] > 0)
    col5 = np.arange(16) == 5
    # TBUF plane 6 with b = 6 >= buffer_slots: the slot check does not apply
    assert not run(core, [op(Opcode.WRITE_ROW, imm=TBUF, a=4, b=6)]).error
    assert (core.read_row(4) == col5).all()
    res = run(core, [op(Opcode.WRITE_ROW, imm=TBUF, a=3, b=N + 2)])
    assert res.error and "plane b=10 is not below operand_bits=8" in res.reason
    assert (core.read_row(3) == col5).all()              # b mod 8: plane 2
    res = run(core, [op(Opcode.WRITE_ROW, imm=TBUF, a=3, b=N + 1)])
    assert res.error and not core.read_row(3).any()      # plane 1 of 0b0100_0101
    core.array_command(MacroCmd.WRITE, 3, np.ones(16, bool))
    bad = max(v.value for v in WriteSrc) + 1            # the first value past the sources
    res = run(core, [op(Opcode.WRITE_ROW, imm=bad, a=3, b=1)])
    assert res.error and f"imm={bad} is not a WriteSrc" in res.reason
    # rtl.core writes the buffer word at slot b from an undefined source (its data mux's
    # default), not 0: slot 1 holds column 9
    assert (core.read_row(3) == (np.arange(16) == 9)).all()
    core.array_command(MacroCmd.WRITE, 3, np.ones(16, bool))
    res = run(core, [op(Opcode.WRITE_ROW, imm=WriteSrc.BUFFER.value, a=3, b=1)])
    assert not res.error and (core.read_row(3) == (np.arange(16) == 9)).all()


def test_program_from_the_transpose_buffer_on_nand_spin():
    core = CoreModel(small("nand_spin"), out_depth=8, offset_depth=2, patch_depth=2)
    core.write_dmem(0, 0b1011_0110)
    core.write_offset(0, 0, 0)
    core.write_patch(0, 0, 1)
    prog = [op(Opcode.ERASE, a=8), move(MoveOp.GATHER, a=7, b=0, d=0), asm.nop()]
    prog += [op(Opcode.PROGRAM, imm=TBUF, a=8 + q, b=q) for q in range(N)]
    res = run(core, prog)
    assert not res.error, res.reason
    for q in range(N):
        assert (core.read_row(8 + q) == (np.arange(16) == 7) * (0b1011_0110 >> q & 1)).all()
    assert res.programs == N and res.bits_programmed == bin(0b1011_0110).count("1")
    res = run(core, [op(Opcode.PROGRAM, imm=TBUF, a=8, b=0)])     # without an erase
    assert res.error and "programmed since" in res.reason


# ---- the mat: one accumulator per subarray, REQUANT's addend --------------------------------

def seg_sums(row, k):
    return np.asarray(row, dtype=np.int64).reshape(k, -1).sum(axis=1)


@pytest.mark.parametrize("k", [2, 4])
def test_requant_addend_selects_a_subarray_or_the_sum(k):
    rng = np.random.default_rng(30 + k)
    cfg = small(subarrays=k)
    core = CoreModel(cfg)
    w = core.columns
    assert w == 16 * k and core.subarrays == k and core.subarray_columns == 16
    r0, r1 = rng.integers(0, 2, (2, w)).astype(bool)
    r0[:16] = True                                        # segment 0 full, the last empty
    r0[-16:] = False
    core.array_command(MacroCmd.WRITE, 0, r0)
    core.array_command(MacroCmd.WRITE, 1, r1)
    core.write_table(0, 0, 0, 1000)
    prog = [op(Opcode.READ, imm=ReduceOp.L1_FIRST.value, a=0),
            op(Opcode.READ, imm=ReduceOp.SHIFT_ADD.value, a=1),
            op(Opcode.AND2, imm=ReduceOp.SUB2.value, a=0, b=1)]
    prog += [op(Opcode.REQUANT, imm=LOGIT, a=0, d=d) for d in range(k + 1)]
    res = run(core, prog)
    assert not res.error, res.reason
    per = 2 * seg_sums(r0, k) + seg_sums(r1, k) - 2 * seg_sums(r0 & r1, k)
    want = [int(per.sum())] + [int(v) for v in per]
    assert [signed32(v) - 1000 for v in res.out] == want
    assert core.accs == tuple(want[1:]) and core.acc == want[0]
    # d = K + 1: an error, the PPU does not step
    res = run(core, [op(Opcode.REQUANT, imm=LOGIT, a=0, d=k + 1)])
    assert res.error and f"addend d={k + 1}" in res.reason and res.out_count == 0


def test_write_free_l1_per_subarray():
    rng = np.random.default_rng(33)
    k = 4
    core = CoreModel(small("nand_spin", subarrays=k))
    w = core.columns
    x = rng.integers(0, 256, w)
    y = rng.integers(0, 256, w)
    x[:16], y[:16] = 0, 255                               # segment 0: every lane differs
    for s in range(0, N, 8):
        core.array_command(MacroCmd.ERASE, s)
    for q, bits in enumerate(bits_of(x, w)):
        core.array_command(MacroCmd.PROGRAM, q, bits)
    for q, bits in enumerate(bits_of(y, w)):
        core.write_buffer(q, bits)
    core.write_table(0, 0, 0, 0)
    prog = [op(Opcode.MIN_STEP, imm=(ReduceOp.L1_FIRST if q == N - 1 else
                                     ReduceOp.L1_PLANE).value, a=q, b=q)
            for q in range(N - 1, -1, -1)]
    prog += [op(Opcode.REQUANT, imm=LOGIT, a=0, d=d) for d in range(k + 1)]
    res = run(core, prog)
    assert not res.error, res.reason
    per = np.abs(x - y).reshape(k, -1).sum(axis=1)
    assert [signed32(v) for v in res.out] == [int(per.sum())] + [int(v) for v in per]
    assert per[0] == 16 * 255


def test_subarray_accumulators_over_a_long_run_of_reduces():
    # more reduce micro-ops than the model logs before folding them into the accumulators
    rng = np.random.default_rng(34)
    k = 2
    core = CoreModel(small(subarrays=k))
    r = rng.integers(0, 2, core.columns).astype(bool)
    core.array_command(MacroCmd.WRITE, 0, r)
    core.write_table(0, 0, 0, 0)
    prog = [op(Opcode.READ, imm=ReduceOp.CLEAR.value, a=0), asm.loop(count=700),
            op(Opcode.READ, imm=ReduceOp.ADD.value, a=0), asm.endloop(),
            op(Opcode.READ, imm=ReduceOp.SUB.value, a=0)]
    prog += [op(Opcode.REQUANT, imm=LOGIT, a=0, d=d) for d in (1, 2, 0)]
    res = run(core, prog)
    assert not res.error, res.reason
    per = 699 * seg_sums(r, k)
    assert [signed32(v) for v in res.out] == [int(per[0]), int(per[1]), int(per.sum())]
    # the accumulators survive start; a CLEAR forgets them
    add = op(Opcode.READ, imm=ReduceOp.ADD.value, a=0)
    res = run(core, [add, *(op(Opcode.REQUANT, imm=LOGIT, a=0, d=d) for d in (1, 2))])
    assert [signed32(v) for v in res.out] == [int(v) for v in 700 * seg_sums(r, k)]
    res = run(core, [op(Opcode.READ, imm=ReduceOp.CLEAR.value, a=0), add,
                     *(op(Opcode.REQUANT, imm=LOGIT, a=0, d=d) for d in (2, 1, 0))])
    p = seg_sums(r, k)
    assert [signed32(v) for v in res.out] == [int(p[1]), int(p[0]), int(p.sum())]


def test_faults_of_a_mat_are_those_of_one_wide_array():
    # K = 4 subarrays of 16 columns against one array of 64 columns, same seed: the same
    # LFSR per mat column (seeded column_seed(seed, g)), the same flips, the same rows.
    rng = np.random.default_rng(35)
    mat = CoreModel(small(subarrays=4))
    wide = CoreModel(small(columns=64))
    assert mat.columns == wide.columns == 64
    seed = mat.config.fault_seed
    reset = [column_seed(seed, g) for g in range(64)]
    assert mat.fault_state.lfsr.tolist() == reset == wide.fault_state.lfsr.tolist()
    data = rng.integers(0, 2, (2, 64)).astype(bool)
    seed, threshold = int(rng.integers(0, 1 << 32)), 20000
    prog = [op(Opcode.FS_STEP, imm=1, a=0, b=0)]
    for g in range(4):
        prog += [op(Opcode.FS_STEP, imm=3, a=1, b=0), op(Opcode.FS_STEP, imm=3, a=2, b=0),
                 op(Opcode.WRITE_ROW, imm=WriteSrc.ABS_DIFF.value, a=8 + 2 * g),
                 op(Opcode.WRITE_ROW, imm=WriteSrc.ABS_DIFF.value, a=9 + 2 * g)]
    for core in (mat, wide):
        core.array_command(MacroCmd.WRITE, 1, data[0])
        core.array_command(MacroCmd.WRITE, 2, data[1])
        core.set_faults(enable=True, seed=seed, threshold=threshold)
        assert not run(core, prog).error
    states = np.array([column_seed(seed, g) for g in range(64)], dtype=np.uint64)
    states, _ = fault_flips(states, threshold)                   # the SIGN's sensing
    for g in range(8):
        states, flips = fault_flips(states, threshold)
        want = data[g % 2] ^ flips.astype(bool)
        assert (mat.read_row(8 + g) == want).all() and (wide.read_row(8 + g) == want).all()
    assert (mat.fault_state.lfsr == states).all() and (wide.fault_state.lfsr == states).all()


# ---- host port ---------------------------------------------------------------------------------

def test_host_port_arguments():
    core = CoreModel(small(), out_depth=16, offset_depth=4, patch_depth=8)
    core.write_dmem(15, (1 << 32) - 1)
    assert core.read_dmem(15) == (1 << 32) - 1
    for call, match in ((lambda: core.write_dmem(16, 0), r"addr must be in \[0, 15\]"),
                        (lambda: core.write_dmem(0, 1 << 32), "value must be in"),
                        (lambda: core.write_dmem(0, -1), "value must be in"),
                        (lambda: core.read_dmem(16), "addr"),
                        (lambda: core.write_offset(4, 0, 0), r"index must be in \[0, 3\]"),
                        (lambda: core.write_offset(0, 1 << 16, 0), "offset"),
                        (lambda: core.write_offset(0, 0, 32), r"kpos must be in \[0, 31\]"),
                        (lambda: core.write_patch(8, 0, 0), r"index must be in \[0, 7\]"),
                        (lambda: core.write_patch(0, 0, 1 << 32), "mask")):
        with pytest.raises(ValueError, match=match):
            call()
    with pytest.raises(ValueError, match="offset_depth must be a power of two.* not 1000"):
        CoreModel(small(), offset_depth=1000)
    with pytest.raises(ValueError, match=r"subarrays must be in \[1, 64\], not 0"):
        CoreModel(small(), subarrays=0)
    with pytest.raises(TypeError, match="patch_depth must be an int"):
        CoreModel(small(), patch_depth=2.0)
    assert CoreModel(small(subarrays=3)).columns == 48           # default: subarrays_per_mat


# ---- the controller trace: expansion == the reference interpreter --------------------------

def random_program(rng, *, depth=4):
    """A well-formed random program: nested loops (some empty), NOPs, micro-ops with operands
    on open loop levels, HALT."""
    ops = list(DATAPATH_OPS)

    def operand(open_loops):
        if open_loops and rng.random() < 0.6:
            return Operand(int(rng.integers(0, 4096)), int(rng.integers(0, open_loops)),
                           int(rng.integers(-8, 8)) or 1)
        return Operand(int(rng.integers(0, 4096)))

    def block(open_loops, budget):
        out = []
        for _ in range(int(rng.integers(0, 4))):
            r = rng.random()
            if r < 0.3 and open_loops < depth and budget > 1:
                out.append(Instr(Opcode.LOOP, count=int(rng.integers(1, 4))))
                out += block(open_loops + 1, budget // 2)
                out.append(Instr(Opcode.ENDLOOP))
            elif r < 0.4:
                out.append(Instr(Opcode.NOP))
            else:
                out.append(Instr(ops[int(rng.integers(len(ops)))],
                                 imm=int(rng.integers(0, 32)), a=operand(open_loops),
                                 b=operand(open_loops), d=operand(open_loops)))
        return out
    return [encode(i) for i in block(0, 16) + [Instr(Opcode.HALT)]]


def check_expansion(words, depth):
    got = expand_program(words, depth=depth)
    assert got is not None
    (codes, imms, a, b, d, cyc), counters, error = got
    cycles = []
    ref = run_program(words, depth=depth, issue_cycles=cycles)
    assert not error and not ref.error
    assert counters == ref.counters
    assert cyc.tolist() == cycles
    assert list(zip(codes.tolist(), imms.tolist(), a.tolist(), b.tolist(), d.tolist(),
                    strict=True)) == [(m.op.value, m.imm, m.a, m.b, m.d) for m in ref.trace]


def test_expansion_equals_run_program_on_random_programs():
    rng = np.random.default_rng(36)
    for _ in range(150):
        words = random_program(rng)
        check_expansion(words, len(words) + 3)


def test_malformed_programs_are_left_to_run_program():
    halt, nop = encode(Instr(Opcode.HALT)), encode(Instr(Opcode.NOP))
    loop, end = encode(Instr(Opcode.LOOP, count=2)), encode(Instr(Opcode.ENDLOOP))
    rel = encode(Instr(Opcode.READ, a=Operand(0, 1, 1)))
    for words in ([nop], [end, halt], [loop, halt, end, halt], [loop, rel, end, halt],
                  [loop] * 5 + [end] * 5 + [halt], [21, halt]):
        assert expand_program(words, depth=16) is None, words
    # the model runs them through the interpreter: the same controller error as before
    core = CoreModel(small())
    res = core.run([loop, rel, end, halt])
    assert res.error and "loop level 1" in res.reason
    res = core.run([loop, nop, halt, end, halt])        # HALT inside a loop: ends there
    assert not res.error and res.counters["cycles"] == 3 and res.counters["halt"] == 1
