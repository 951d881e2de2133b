"""Reference interpreter of the instruction set: what ``rtl.controller.Controller`` issues and
counts, cycle for cycle, in plain Python.

Timing (the controller's documented contract): every executed instruction takes one cycle,
plus one per cycle a micro-op is held back by the datapath (a stall); an ENDLOOP directly after
a NOP or a micro-op is folded into it (zero cycles); the HALT or the erroneous instruction
takes its cycle too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

from rtl.isa import (
    COUNTER_BITS, COUNTER_CYCLES, COUNTER_STALLS, LOOP_DEPTH, N_COUNTERS,
    BASE_BITS, OP_BITS, OPERAND_BITS, Opcode, Operand, counter_index, decode,
)

__all__ = ["MicroOp", "Run", "run_program"]

#: Counter index of each opcode (``rtl.isa.counter_index``), looked up once.
_COUNTER_INDEX = {op: counter_index(op) for op in Opcode}


class MicroOp(NamedTuple):
    """One issued micro-op with resolved operands (what the issue port carries)."""
    op: Opcode
    imm: int
    a: int
    b: int
    d: int


class Run(NamedTuple):
    """Result of :func:`run_program`."""
    trace: list[MicroOp]
    counters: list[int]
    error: bool


def _stall_of(stall, k: int) -> int:
    if stall is None:
        return 0
    if callable(stall):
        return int(stall(k))
    return int(stall[k]) if k < len(stall) else 0


def run_program(words: Sequence[int], *, stall: Sequence[int] | Callable[[int], int] | None = None,
                depth: int | None = None, loop_depth: int = LOOP_DEPTH,
                max_cycles: int = 10_000_000, issue_cycles: list | None = None,
                base_bits: int = BASE_BITS, folds: list | None = None) -> Run:
    """Run ``words`` as the controller does, from address 0 until HALT or an error.

    Parameters
    ----------
    words : sequence of int
        The program; instruction memory beyond it holds 0 (NOP) up to ``depth`` words.
    stall : sequence of int, callable or None
        Cycles the datapath holds ``ready`` low for the k-th issued micro-op (``stall[k]``,
        missing entries 0, or ``stall(k)``); None: never.
    depth : int or None
        Instruction memory words (default ``len(words)``).
    loop_depth : int
        Nested loops the controller supports.
    max_cycles : int
        Give up (``RuntimeError``) beyond this many cycles: a guard for the tests.
    issue_cycles : list or None
        If a list, the cycle in which each issued micro-op is accepted by the datapath is
        appended to it, in trace order: 0 is the first cycle after ``start``, and a micro-op
        held by stalls is accepted in the last of its cycles. The datapath's pipeline stages
        follow from it (``sim.hw.core_model``).
    base_bits : int
        Operand-base width of the words' format (``rtl.isa.IsaFormat``; 12 for every preset).
    folds : list or None
        If a list, whether an ENDLOOP is folded into each issued micro-op is appended to it,
        in trace order (``sim.hw.core_model``'s zero skipping: a taken SKIPZ folds none).

    Returns
    -------
    Run
        ``trace``: the issued micro-ops in order; ``counters``: the controller's counters in
        index order (``rtl.isa.counter_names``), modulo 2**32; ``error``: the run ended in an
        error (past the end of memory, undefined opcode, LOOP nested too deep, ENDLOOP with no
        open loop, loop-relative operand on a level that is not open).
    """
    depth = len(words) if depth is None else depth
    if len(words) > depth:
        raise ValueError(f"words must fit in depth={depth}, not {len(words)} words")
    mem = list(words) + [0] * (depth - len(words))
    counters = [0] * N_COUNTERS
    trace: list[MicroOp] = []
    stack: list[list[int]] = []  # [start, index, last], innermost last
    pc, error = 0, False
    decoded: dict = {}   # address -> Instr: each word is decoded once, when first executed
    op_mask, endloop_code = (1 << OP_BITS) - 1, Opcode.ENDLOOP.value

    def count(op):
        counters[_COUNTER_INDEX[op]] += 1

    def end_loop(fallthrough):
        top = stack[-1]
        if top[1] != top[2]:
            top[1] += 1
            return top[0]
        stack.pop()
        return fallthrough

    def resolve(operand: Operand):
        if operand.stride == 0:
            return operand.base % (1 << OPERAND_BITS)
        if operand.level >= len(stack):
            return None
        index = stack[-1 - operand.level][1]
        return (operand.base + operand.stride * index) % (1 << OPERAND_BITS)

    while True:
        counters[COUNTER_CYCLES] += 1
        if counters[COUNTER_CYCLES] > max_cycles:
            raise RuntimeError(f"program still running after max_cycles={max_cycles}")
        if pc >= depth:
            error = True
            break
        instr = decoded.get(pc)
        if instr is None:
            try:
                instr = decoded[pc] = decode(mem[pc], base_bits)
            except ValueError:
                error = True
                break
        op = instr.op
        if op is Opcode.HALT:
            count(op)
            break
        if op is Opcode.LOOP:
            if len(stack) == loop_depth:
                error = True
                break
            count(op)
            stack.append([pc + 1, 0, instr.count - 1])
            pc += 1
            continue
        if op is Opcode.ENDLOOP:
            if not stack:
                error = True
                break
            count(op)
            pc = end_loop(pc + 1)
            continue
        if op is not Opcode.NOP:     # a datapath micro-op (control ops are handled above)
            a, b, d = resolve(instr.a), resolve(instr.b), resolve(instr.d)
            if a is None or b is None or d is None:
                error = True
                break
            hold = _stall_of(stall, len(trace))
            counters[COUNTER_CYCLES] += hold
            counters[COUNTER_STALLS] += hold
            trace.append(MicroOp(op, instr.imm, a, b, d))
            if issue_cycles is not None:
                issue_cycles.append(counters[COUNTER_CYCLES] - 1)
        count(op)
        # Fold an ENDLOOP that directly follows a NOP or a micro-op.
        fold = pc + 1 < depth and mem[pc + 1] & op_mask == endloop_code and bool(stack)
        if folds is not None and op is not Opcode.NOP:
            folds.append(fold)
        if fold:
            count(Opcode.ENDLOOP)
            pc = end_loop(pc + 2)
        else:
            pc += 1
    mask = (1 << COUNTER_BITS) - 1
    return Run(trace, [c & mask for c in counters], error)
