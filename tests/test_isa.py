"""rtl.isa word format, sim.compile.asm assembler / disassembler, sim.hw.isa_model interpreter on
hand-written programs with hand-computed traces and counters."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rtl.config import preset
from rtl.controller import Controller
from rtl.isa import (
    CONTROL_OPS, COUNTER_CYCLES, COUNTER_STALLS, DATAPATH_OPS, FIELDS, N_COUNTERS, OPERANDS,
    WORD_BITS, WORD_LAYOUT, Instr, Opcode, Operand, counter_index, counter_names, decode, encode,
)
from sim.compile import asm
from sim.hw.isa_model import MicroOp, run_program

operands = st.builds(Operand, st.integers(0, 4095), st.integers(0, 3), st.integers(-8, 7))


@st.composite
def instructions(draw, op):
    if op is Opcode.LOOP:
        return Instr(op, count=draw(st.integers(1, 65536)))
    if op in CONTROL_OPS:
        return Instr(op)
    return Instr(op, imm=draw(st.integers(0, 31)), a=draw(operands), b=draw(operands),
                 d=draw(operands))


@pytest.mark.parametrize("op", list(Opcode), ids=lambda op: op.name)
@given(data=st.data())
def test_encode_decode_round_trip(op, data):
    ins = data.draw(instructions(op))
    word = encode(ins)
    assert 0 <= word < 1 << WORD_BITS
    assert word & 0x1F == op.value
    assert decode(word) == ins
    assert encode(decode(word)) == word


def test_field_table_matches_layout():
    assert [(n, o) for n, o, _, _ in FIELDS] == [(n, f.offset) for n, f in WORD_LAYOUT]
    assert WORD_LAYOUT.size == WORD_BITS


def test_known_word():
    ins = Instr(Opcode.AND2, imm=3, a=Operand(5, 1, -2), b=Operand(4095, 3, 7),
                d=Operand(1, 0, -8))
    # op 9 | imm 3<<5 | a: 5<<10, 1<<22, 0xE<<24 | b: 0xFFF<<28, 3<<40, 7<<42 | d: 1<<46, 8<<60
    want = (9 | 3 << 5 | 5 << 10 | 1 << 22 | 0xE << 24 | 0xFFF << 28 | 3 << 40 | 7 << 42
            | 1 << 46 | 8 << 60)
    assert encode(ins) == want
    assert encode(Instr(Opcode.LOOP, count=65536)) == 2 | 0xFFFF << 10


def test_decode_errors():
    with pytest.raises(ValueError, match=r"undefined opcode 21 in word 0x0000000000000015"):
        decode(21)
    with pytest.raises(ValueError, match=r"word must be in \[0, 18446744073709551615\], not -1"):
        decode(-1)


@pytest.mark.parametrize("call, exc, message", [
    (lambda: asm.read(a=4096), ValueError, "READ: a.base must be in [0, 4095], not 4096"),
    (lambda: asm.read(a=-1), ValueError, "READ: a.base must be in [0, 4095], not -1"),
    (lambda: asm.and2(a=asm.rel(1, stride=8), b=0), ValueError,
     "AND2: a.stride must be in [-8, 7], not 8"),
    (lambda: asm.and2(a=0, b=asm.rel(1, level=4)), ValueError,
     "AND2: b.level must be in [0, 3], not 4"),
    (lambda: asm.fa_step(a=0, b=0, imm=32), ValueError,
     "FA_STEP: imm must be in [0, 31], not 32"),
    (lambda: asm.loop(count=0), ValueError, "LOOP: count must be in [1, 65536], not 0"),
    (lambda: asm.loop(count=65537), ValueError, "LOOP: count must be in [1, 65536], not 65537"),
    (lambda: asm.loop(count=2.0), TypeError, "LOOP: count must be an int in [1, 65536], not 2.0"),
    (lambda: asm.read(a=5, b=3), TypeError, "READ: unexpected field 'b' (READ has a, imm)"),
    (lambda: asm.erase(a=5, imm=1), TypeError, "ERASE: unexpected field 'imm' (ERASE has a)"),
    (lambda: asm.and2(a=1), TypeError, "AND2: missing field 'b'"),
    (lambda: asm.instr(Opcode.HALT, count=2), TypeError,
     "HALT: unexpected field 'count' (HALT has no fields)"),
    (lambda: asm.read(a="7"), TypeError, "READ: a must be an int or rel(...), not '7'"),
])
def test_assembler_errors(call, exc, message):
    with pytest.raises(exc) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize("program, message", [
    ([asm.endloop(), asm.halt()], "instruction 0 (ENDLOOP): ENDLOOP with no open LOOP"),
    ([asm.loop(count=2)] * 5 + [asm.halt()],
     "instruction 4 (LOOP): loops nested deeper than loop_depth=4"),
    ([asm.loop(count=2), asm.read(a=asm.rel(0, level=1)), asm.endloop(), asm.halt()],
     "instruction 1 (READ): a is relative to loop level 1 but only 1 loops are open"),
    ([asm.read(a=1)], "the program has no HALT: it would run off the end of memory"),
])
def test_check_program(program, message):
    with pytest.raises(ValueError) as info:
        asm.assemble(program)
    assert str(info.value) == message


def test_every_datapath_op_has_an_assembler_function():
    for op in DATAPATH_OPS:
        fields = {o: 1 for o in OPERANDS[op]}
        assert getattr(asm, op.name.lower())(**fields) == asm.instr(op, **fields)


def test_disassemble():
    assert asm.disassemble(encode(asm.loop(count=3))) == "loop count=3"
    assert asm.disassemble(encode(asm.halt())) == "halt"
    word = encode(asm.pool(a=asm.rel(16), b=asm.rel(40, stride=-2, level=2), d=9, imm=1))
    assert asm.disassemble(word) == "pool a=16+1*i0 b=40-2*i2 d=9 imm=1"
    assert asm.disassemble(31) == ".word 0x000000000000001f"


def R(a):
    """The expected READ micro-op of row ``a``."""
    return MicroOp(Opcode.READ, 0, a, 0, 0)


def counters(**kw):
    want = [0] * N_COUNTERS
    for name, value in kw.items():
        want[counter_names().index(name)] = value
    return want


def test_halt_only():
    run = run_program(asm.assemble([asm.halt()]))
    assert run == ([], counters(cycles=1, halt=1), False)


def test_nested_3x2():
    # for i in 0..2: for j in 0..1: READ 10 + 2i + j   (i: level 1, j: level 0)
    words = asm.assemble([
        asm.loop(count=3),
        asm.loop(count=2),
        asm.read(a=asm.rel(10)),
        asm.and2(a=asm.rel(20, stride=2, level=1), b=asm.rel(30, stride=-1, level=0)),
        asm.endloop(),
        asm.endloop(),
        asm.halt(),
    ])
    run = run_program(words)
    want = []
    for i in range(3):
        for j in range(2):
            want += [R(10 + j), MicroOp(Opcode.AND2, 0, 20 + 2 * i, 30 - j, 0)]
    assert run.trace == want
    # cycles: LOOP 1 + inner LOOP 3 + body 2 x 6 (inner ENDLOOP folded) + outer ENDLOOP 3
    # (not folded: it follows an ENDLOOP) + HALT 1 = 20.
    assert run.counters == counters(cycles=20, loop=4, endloop=9, read=6, and2=6, halt=1)
    assert not run.error


def test_stalls_add_cycles():
    words = asm.assemble([asm.loop(count=2), asm.read(a=asm.rel(0)), asm.endloop(),
                          asm.halt()])
    run = run_program(words, stall=[3, 1])
    assert run.trace == [R(0), R(1)]
    assert run.counters[COUNTER_CYCLES] == 1 + 2 + 1 + 4
    assert run.counters[COUNTER_STALLS] == 4
    assert run_program(words, stall=lambda k: 2).counters[COUNTER_STALLS] == 4


def test_operands_wrap_modulo_2_16():
    words = asm.assemble([asm.loop(count=3), asm.read(a=asm.rel(1, stride=-1)), asm.endloop(),
                          asm.halt()])
    assert run_program(words).trace == [R(1), R(0), R(65535)]


def test_max_count_loop():
    words = asm.assemble([asm.loop(count=65536), asm.nop(), asm.endloop(), asm.halt()])
    run = run_program(words)
    assert run.counters == counters(cycles=65538, loop=1, nop=65536, endloop=65536, halt=1)


@pytest.mark.parametrize("program, cycles, issued", [
    ([asm.endloop(), asm.halt()], 1, 0),
    ([asm.loop(count=1)] * 5, 5, 0),
    ([asm.read(a=1), asm.read(a=asm.rel(0)), asm.halt()], 2, 1),
    ([asm.read(a=1)] * 4, 5, 4),                       # runs off the end of a 4-word memory
    # LOOP 1 + READ x 2 (the matching ENDLOOP folded) + the unmatched ENDLOOP 1
    ([asm.loop(count=2), asm.read(a=1), asm.endloop(), asm.endloop(), asm.halt()], 4, 2),
])
def test_errors(program, cycles, issued):
    run = run_program(asm.assemble(program, check=False))
    assert run.error
    assert run.counters[COUNTER_CYCLES] == cycles
    assert len(run.trace) == issued == run.counters[counter_index(Opcode.READ)]


def test_undefined_opcode_is_an_error():
    run = run_program([encode(asm.read(a=1)), 0x1F])
    assert run.error and run.trace == [R(1)] and run.counters[COUNTER_CYCLES] == 2


def test_controller_parameters():
    cfg = preset("jeit_stt")
    with pytest.raises(ValueError, match=r"^imem_depth must be a power of two in \[2, 65536\], "
                                         r"not 48$"):
        Controller(config=cfg, imem_depth=48)
    with pytest.raises(ValueError, match=r"^loop_depth must be in \[1, 4\], not 5$"):
        Controller(config=cfg, loop_depth=5)
    with pytest.raises(TypeError, match=r"^imem_depth must be an int, not '8'$"):
        Controller(config=cfg, imem_depth="8")
    with pytest.raises(TypeError, match=r"^config must be an AcceleratorConfig"):
        Controller(config=None)
