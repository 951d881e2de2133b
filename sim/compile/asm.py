"""Assembler and disassembler of the controller's instruction set (``rtl.isa``).

Build instructions with one function per opcode and keyword fields, then :func:`assemble`::

    from sim.compile import asm
    words = asm.assemble([
        asm.loop(count=8),                                   # b = 0 .. 7
        asm.fs_step(a=asm.rel(16), b=asm.rel(32), imm=0),
        asm.endloop(),
        asm.halt(),
    ])

An operand is an int (absolute) or :func:`rel` (``base + stride * index`` of a loop level, 0
the innermost). Every field is checked when the instruction is built; a bad one raises
``TypeError`` / ``ValueError`` naming the opcode, the field, the value and the allowed range.
"""

from __future__ import annotations

from collections.abc import Iterable

from rtl.isa import (
    BASE_BITS, CONTROL_OPS, LOOP_DEPTH, OPERANDS, OPTIONAL_OPERANDS, Instr, Opcode, Operand,
    decode, encode,
)

__all__ = [
    "rel", "instr", "assemble", "check_program", "disassemble", "disassemble_program",
    "nop", "halt", "loop", "endloop",
    "write_row", "erase", "program", "read", "and_fu", "and2", "or2", "fa_step", "fs_step",
    "cmp_step", "min_step", "bitcount", "shift_acc", "requant", "relu", "pool", "move",
]


def rel(base: int, *, stride: int = 1, level: int = 0) -> Operand:
    """A loop-relative operand ``base + stride * index[level]`` (level 0: innermost loop).
    Checked when used in an instruction."""
    return Operand(base, level, stride)


def instr(op: Opcode, **fields) -> Instr:
    """The instruction ``op`` with ``fields``, checked.

    Datapath opcodes take exactly the operands ``rtl.isa.OPERANDS[op]`` lists (a, b, d:
    required, int or :func:`rel`) and ``imm`` where listed (default 0); LOOP takes ``count``
    (1 .. 65536); NOP, HALT and ENDLOOP take nothing.

    Raises
    ------
    TypeError
        A field the opcode does not have, a missing operand, or a value of the wrong type.
    ValueError
        A value out of range.
    """
    op = Opcode(op)
    name = op.name
    if op in CONTROL_OPS:
        allowed = {"count"} if op is Opcode.LOOP else set()
        required = allowed
    else:
        allowed = set(OPERANDS[op])
        required = allowed - {"imm"} - set(OPTIONAL_OPERANDS.get(op, ()))
    for field in fields:
        if field not in allowed:
            has = ", ".join(sorted(allowed)) or "no fields"
            raise TypeError(f"{name}: unexpected field {field!r} ({name} has {has})")
    missing = sorted(required - set(fields))
    if missing:
        raise TypeError(f"{name}: missing field {missing[0]!r}")
    values = dict(fields)
    for o in "abd":
        if o in values:
            v = values[o]
            if isinstance(v, int) and not isinstance(v, bool):
                values[o] = Operand(v)
            elif not isinstance(v, Operand):
                raise TypeError(f"{name}: {o} must be an int or rel(...), not {v!r}")
    result = Instr(op, **values)
    try:
        result.check()
    except (TypeError, ValueError) as e:
        raise type(e)(f"{name}: {e}") from None
    return result


def nop() -> Instr:
    """No operation (1 cycle; folds a following ENDLOOP)."""
    return instr(Opcode.NOP)


def halt() -> Instr:
    """End the run."""
    return instr(Opcode.HALT)


def loop(*, count: int) -> Instr:
    """Run the instructions up to the matching :func:`endloop` ``count`` times (1 .. 65536)."""
    return instr(Opcode.LOOP, count=count)


def endloop() -> Instr:
    """Close the innermost loop."""
    return instr(Opcode.ENDLOOP)


def write_row(**f) -> Instr:
    """WRITE_ROW a=row, b=buffer slot."""
    return instr(Opcode.WRITE_ROW, **f)


def erase(**f) -> Instr:
    """ERASE a=row of the strip."""
    return instr(Opcode.ERASE, **f)


def program(**f) -> Instr:
    """PROGRAM a=row, b=buffer slot."""
    return instr(Opcode.PROGRAM, **f)


def read(**f) -> Instr:
    """READ a=row."""
    return instr(Opcode.READ, **f)


def and_fu(**f) -> Instr:
    """AND_FU a=row, b=buffer slot on FU."""
    return instr(Opcode.AND_FU, **f)


def and2(**f) -> Instr:
    """AND2 a=row, b=row."""
    return instr(Opcode.AND2, **f)


def or2(**f) -> Instr:
    """OR2 a=row, b=row."""
    return instr(Opcode.OR2, **f)


def fa_step(**f) -> Instr:
    """FA_STEP a, b=operand rows, d=sum row, imm=FaFsOp."""
    return instr(Opcode.FA_STEP, **f)


def fs_step(**f) -> Instr:
    """FS_STEP a, b=operand rows, d=difference row, imm=flags."""
    return instr(Opcode.FS_STEP, **f)


def cmp_step(**f) -> Instr:
    """CMP_STEP a, b=operand rows, imm=flags."""
    return instr(Opcode.CMP_STEP, **f)


def min_step(**f) -> Instr:
    """MIN_STEP a, b=operand rows, d=min row, imm=flags."""
    return instr(Opcode.MIN_STEP, **f)


def bitcount(**f) -> Instr:
    """BITCOUNT a=row, b=slot ANDed, d=slot written, imm=rtl.bit_counter.bitcount_imm."""
    return instr(Opcode.BITCOUNT, **f)


def shift_acc(**f) -> Instr:
    """SHIFT_ACC a=row, imm=ReduceOp."""
    return instr(Opcode.SHIFT_ACC, **f)


def requant(**f) -> Instr:
    """REQUANT a=channel, d=row, imm=accumulator."""
    return instr(Opcode.REQUANT, **f)


def relu(**f) -> Instr:
    """RELU a=row, imm=bits - 1."""
    return instr(Opcode.RELU, **f)


def pool(**f) -> Instr:
    """POOL a, b=rows, d=row, imm=max/min."""
    return instr(Opcode.POOL, **f)


def move(**f) -> Instr:
    """MOVE imm=MoveOp (GATHER a=tbuf column b=offset entry d=patch entry; CLEAR; SETPTR /
    ADDPTR a=value)."""
    return instr(Opcode.MOVE, **f)


def check_program(instrs: Iterable[Instr], *, loop_depth: int = LOOP_DEPTH) -> None:
    """Raise ``ValueError`` naming the first instruction (index, opcode) that would end the run
    in an error: an ENDLOOP with no open LOOP, loops nested deeper than ``loop_depth``, a
    loop-relative operand on a level that is not open, or no HALT. Execution visits the
    instructions in address order (loops only repeat), so this check is exact."""
    open_loops = 0
    for i, ins in enumerate(instrs):
        where = f"instruction {i} ({ins.op.name})"
        if ins.op is Opcode.HALT:
            return
        if ins.op is Opcode.LOOP:
            if open_loops == loop_depth:
                raise ValueError(f"{where}: loops nested deeper than loop_depth={loop_depth}")
            open_loops += 1
        elif ins.op is Opcode.ENDLOOP:
            if open_loops == 0:
                raise ValueError(f"{where}: ENDLOOP with no open LOOP")
            open_loops -= 1
        else:
            for o in "abd":
                operand = getattr(ins, o)
                if operand.stride and operand.level >= open_loops:
                    raise ValueError(f"{where}: {o} is relative to loop level {operand.level} "
                                     f"but only {open_loops} loops are open")
    raise ValueError("the program has no HALT: it would run off the end of memory")


def assemble(instrs: Iterable[Instr], *, check: bool = True,
             loop_depth: int = LOOP_DEPTH, base_bits: int = BASE_BITS) -> list[int]:
    """The words of ``instrs``; with ``check`` (default) :func:`check_program` first. The
    words are of the format of ``base_bits``-bit operand bases (``rtl.isa.IsaFormat``; a
    core's is ``config.isa_base_bits``, 12 for every preset but nand_spin's 14)."""
    instrs = list(instrs)
    if check:
        check_program(instrs, loop_depth=loop_depth)
    return [encode(i, base_bits) for i in instrs]


def _operand_text(o: Operand) -> str:
    if o.stride == 0:
        return str(o.base)
    sign = "+" if o.stride > 0 else "-"
    return f"{o.base}{sign}{abs(o.stride)}*i{o.level}"


def disassemble(word: int, base_bits: int = BASE_BITS) -> str:
    """One line of assembly for ``word``, e.g. ``and2 a=3+1*i0 b=40 imm=0`` (``iN``: index of
    loop level N, 0 innermost); ``.word 0x...`` for an undefined opcode. ``base_bits``: the
    words' format (:func:`assemble`)."""
    try:
        ins = decode(word, base_bits)
    except ValueError:
        return f".word {word:#018x}"
    name = ins.op.name.lower()
    if ins.op is Opcode.LOOP:
        return f"{name} count={ins.count}"
    if ins.op in CONTROL_OPS:
        return name
    parts = [f"{o}={_operand_text(getattr(ins, o))}" for o in "abd" if o in OPERANDS[ins.op]]
    if "imm" in OPERANDS[ins.op]:
        parts.append(f"imm={ins.imm}")
    return " ".join([name] + parts)


def disassemble_program(words: Iterable[int], base_bits: int = BASE_BITS) -> str:
    """A listing: address, word, assembly, loop bodies indented (``base_bits``: the words'
    format, :func:`assemble`)."""
    lines, indent = [], 0
    for addr, word in enumerate(words):
        text = disassemble(word, base_bits)
        if text == "endloop":
            indent = max(indent - 1, 0)
        lines.append(f"{addr:5d}  {word:016x}  {'  ' * indent}{text}")
        if text.startswith("loop "):
            indent += 1
    return "\n".join(lines)
