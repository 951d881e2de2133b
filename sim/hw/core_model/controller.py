"""The controller (``rtl.controller.Controller``) and the core's issue-port hold
(``rtl.core.Core._stall_logic``): a program's micro-op trace, i.e. each issued micro-op, its
operands as the address generators resolve them and the cycle it is issued in.
:func:`~sim.hw.core_model.expand_program` expands a well-formed program's loop nest with numpy
(exactly ``sim.hw.isa_model.run_program``, the instruction-by-instruction reference, which
:class:`ControllerStage` falls back to), :func:`~sim.hw.core_model.add_stalls` holds each
micro-op as long as the device operation before it keeps the array busy, and
:class:`ControllerStage` keeps the traces of recent programs (the trace depends on the program
alone, not on the data).
"""

from __future__ import annotations

import numpy as np

from rtl.isa import (
    BASE_BITS, COUNTER_CYCLES, COUNTER_STALLS, LOOP_DEPTH, N_COUNTERS, OPERAND_BITS, Opcode,
    counter_index, decode,
)
from sim.hw.isa_model import run_program

__all__ = ["expand_program", "add_stalls", "PIPELINE_DRAIN", "ControllerStage"]

#: Programs whose expanded controller trace :meth:`CoreModel.run` keeps, and the most micro-ops
#: kept over all of them.
_TRACE_CACHE = 256
_TRACE_CACHE_STEPS = 1 << 22

#: Cycles between the controller's done and the core's done (S2 and S3 of the last micro-op).
PIPELINE_DRAIN = 2

#: ``sim.hw.isa_model.run_program``'s guard: runs longer than this raise ``RuntimeError``.
_MAX_CYCLES = 10_000_000

_OPERAND_MASK = (1 << OPERAND_BITS) - 1
#: Micro-ops the vectorised expansion handles; longer programs go through ``run_program``.
_EXPAND_MAX_STEPS = 1 << 21



def expand_program(words, *, depth: int, loop_depth: int = LOOP_DEPTH,
                   base_bits: int = BASE_BITS, folds: bool = False):
    """The controller's trace of a well-formed program, expanded from its loop nest with numpy:
    exactly what ``sim.hw.isa_model.run_program(words, depth=depth)`` gives (no stalls), without
    interpreting instruction by instruction.

    Well-formed: ``sim.compile.asm.check_program`` passes, the first HALT lies outside every loop,
    the
    run takes at most ``run_program``'s ``max_cycles`` and issues at most
    ``_EXPAND_MAX_STEPS`` micro-ops.

    Parameters
    ----------
    words : sequence of int
        The program (instruction memory beyond it holds NOPs up to ``depth`` words).
    depth : int
        Instruction-memory words.
    loop_depth : int
        Nested loops the controller supports.
    base_bits : int
        Operand-base width of the words' format (``rtl.isa.IsaFormat``; 12 for every preset).
    folds : bool
        Also return, per issued micro-op, whether an ENDLOOP is folded into it (it is the last
        instruction of a loop's body; ``run_program``'s ``folds``).

    Returns
    -------
    tuple or None
        ``((codes, imms, a, b, d, issue_cycles), counters, error)``: arrays in issue order
        (operands resolved modulo 2**16), the controller's counters in index order
        (``rtl.isa.counter_names``), ``error`` False; with ``folds`` the pair of that and the
        flags (bool array in issue order). None if the program is not well-formed
        (``run_program`` is then the way).
    """
    instrs = []
    for w in list(words)[:depth]:
        try:
            ins = decode(int(w), base_bits)
        except ValueError:
            return None
        instrs.append(ins)
        if ins.op is Opcode.HALT:
            break
    else:
        return None                                   # no HALT: runs off the end
    # The loop nest: a block is a list of items, an item an Instr (NOP or micro-op) or
    # (count, block).
    root: list = []
    stack = [root]
    for ins in instrs[:-1]:
        if ins.op is Opcode.LOOP:
            if len(stack) - 1 == loop_depth:
                return None
            body: list = []
            stack[-1].append((ins.count, body))
            stack.append(body)
        elif ins.op is Opcode.ENDLOOP:
            if len(stack) == 1:
                return None
            stack.pop()
        else:
            for o in (ins.a, ins.b, ins.d):
                if o.stride and o.level >= len(stack) - 1:
                    return None
            stack[-1].append(ins)
    if len(stack) != 1:
        return None                                   # the HALT is inside a loop

    def period(count_body):
        """Cycles of one pass of a loop body, its ENDLOOP included (folded into a last NOP or
        micro-op, else a cycle of its own)."""
        body, cycles = count_body
        return cycles + (0 if body and not isinstance(body[-1], tuple) else 1)

    def size(items):
        """(micro-ops, cycles) of one pass of ``items``."""
        steps = cycles = 0
        for item in items:
            if isinstance(item, tuple):
                s, c = size(item[1])
                steps += item[0] * s
                cycles += 1 + item[0] * period((item[1], c))
            else:
                steps += item.op is not Opcode.NOP
                cycles += 1
        return steps, cycles

    steps, cycles = size(root)
    if steps > _EXPAND_MAX_STEPS or cycles + 1 > _MAX_CYCLES:
        return None
    counts = [0] * N_COUNTERS

    # A template row: code, imm, then per operand a, b, d: the loop it depends on (absolute
    # depth, 0 the outermost; -1 none), its constant part and its stride.
    def expand(items, level, mult):
        """Template rows and issue-cycle offsets of one pass of ``items`` (at ``level`` open
        loops, executed ``mult`` times in all), and its cycles."""
        rows: list = []
        offs: list = []
        parts: list = []
        c = 0

        def flush():
            if rows:
                parts.append((np.array(rows, dtype=np.int32), np.array(offs, dtype=np.int32)))
                rows.clear()
                offs.clear()

        last = len(items) - 1
        for k, item in enumerate(items):
            if isinstance(item, tuple):
                flush()
                count, body = item
                counts[counter_index(Opcode.LOOP)] += mult
                counts[counter_index(Opcode.ENDLOOP)] += mult * count
                tpl, toff, bc = expand(body, level + 1, mult * count)
                per = period((body, bc))
                if len(tpl):
                    m = len(tpl)
                    idx = np.repeat(np.arange(count, dtype=np.int32), m)
                    big = np.tile(tpl, (count, 1))
                    for o in range(3):
                        hit = big[:, 2 + o] == level
                        if hit.any():
                            big[:, 5 + o] += np.where(hit, big[:, 8 + o] * idx, 0)
                            big[hit, 2 + o] = -1
                    parts.append((big, np.tile(toff, count) + idx * per + (c + 1)))
                c += 1 + count * per
            else:
                if item.op is Opcode.NOP:
                    counts[counter_index(Opcode.NOP)] += mult
                else:
                    ops = (item.a, item.b, item.d)
                    rows.append([item.op.value, item.imm]
                                + [level - 1 - o.level if o.stride else -1 for o in ops]
                                + [o.base for o in ops] + [o.stride for o in ops]
                                + [int(level > 0 and k == last)])   # folds an ENDLOOP
                    offs.append(c)
                c += 1
        flush()
        if not parts:
            return np.zeros((0, 12), dtype=np.int32), np.zeros(0, dtype=np.int32), c
        return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
                c)

    tpl, offs, top = expand(root, 0, 1)
    assert top == cycles and len(tpl) == steps
    counts[counter_index(Opcode.HALT)] = 1
    counts[COUNTER_CYCLES] = cycles + 1
    codes = tpl[:, 0].astype(np.uint8)
    for code, k in enumerate(np.bincount(codes, minlength=len(Opcode))[:len(Opcode)].tolist()):
        counts[counter_index(Opcode(code))] += k
    mask = (1 << 32) - 1
    operands = [(tpl[:, 5 + o] & _OPERAND_MASK).astype(np.uint16) for o in range(3)]
    out = ((codes, tpl[:, 1].astype(np.uint8), *operands, offs),
           [v & mask for v in counts], False)
    return (out, tpl[:, 11].astype(bool)) if folds else out


def add_stalls(trace, counters, error, config):
    """A controller trace without stalls (:func:`expand_program`, ``run_program``) under the
    stall table of ``config`` (``AcceleratorConfig.op_cycles``): a micro-op of c cycles acts
    in the cycle it is accepted and keeps the array busy c - 1 more cycles, so the next
    micro-op is held until c cycles after it (control instructions in between count towards
    those c). Every later micro-op issues that much later; the held cycles are added to
    ``cycles`` and ``stalls``. Exactly ``sim.hw.isa_model.run_program(words, stall=...)`` with
    the k-th micro-op held ``max(0, t[k-1] + c[k-1] - t[k])`` cycles, t the cycles without
    stalls. Returns ``(trace, counters, error)`` like its input."""
    if not config.has_stalls:
        return trace, counters, error
    codes, imms, a, b, d, cyc = trace
    if len(cyc) < 2:
        return trace, counters, error
    extra = np.zeros(len(Opcode), dtype=np.int64)
    for op, c in config.op_cycles.items():
        extra[op.value] = c - 1
    t = np.asarray(cyc, dtype=np.int64)
    busy_until = t[:-1] + 1 + extra[np.asarray(codes[:-1], dtype=np.int64)]
    held = np.maximum(0, busy_until - t[1:])
    total = int(held.sum())
    if not total:
        return trace, counters, error
    t = t.copy()
    t[1:] += np.cumsum(held)
    counters = list(counters)
    mask = (1 << 32) - 1
    counters[COUNTER_CYCLES] = (counters[COUNTER_CYCLES] + total) & mask
    counters[COUNTER_STALLS] = (counters[COUNTER_STALLS] + total) & mask
    return (codes, imms, a, b, d, t), counters, error


def _controller_error(words, cycles, base_bits: int = BASE_BITS) -> str:
    """Why the controller stopped with an error, in words (best effort)."""
    from sim.compile import asm
    instrs = []
    for addr, w in enumerate(words):
        try:
            instrs.append(decode(w, base_bits))
        except ValueError:
            return (f"undefined opcode {w & 31} at address {addr} (or the program ran off "
                    f"the end of instruction memory)")
    try:
        asm.check_program(instrs)
    except ValueError as e:
        return str(e)
    return f"the run ended in an error after {cycles} cycles"


class ControllerStage:
    """The controller's side of :class:`~sim.hw.core_model.CoreModel`: each program's trace,
    expanded once and kept for the next runs (at most ``_TRACE_CACHE`` programs and
    ``_TRACE_CACHE_STEPS`` micro-ops)."""

    def _init_controller(self) -> None:
        self._traces: dict = {}
        self._trace_steps = 0

    def _program_trace(self, words: list) -> tuple:
        """``(trace, counters, error)`` of ``words`` (:meth:`_trace`), plus on a core with zero
        skipping the issue cycles and counters without stalls; from the cache if the program
        ran before."""
        key = tuple(words)
        cached = self._traces.get(key)
        if cached is None:
            cached = self._trace(words)
            if self._zs:                # the issue cycles without stalls (_execute_skipping)
                cached = cached + (self._unstalled,)
            steps = len(cached[0][0])
            while self._traces and (len(self._traces) >= _TRACE_CACHE
                                    or self._trace_steps + steps > _TRACE_CACHE_STEPS):
                old = self._traces.pop(next(iter(self._traces)))
                self._trace_steps -= len(old[0][0])
            if steps <= _TRACE_CACHE_STEPS:
                self._traces[key] = cached
                self._trace_steps += steps
        return cached

    def _trace(self, words):
        """``((codes, imms, a, b, d, issue cycles), counters, error)`` of ``words``, with the
        stalls of the configuration's stall table (:func:`add_stalls`)."""
        bb = self.config.isa_base_bits
        fast = expand_program(words, depth=self.imem_depth, base_bits=bb, folds=True)
        if fast is not None:
            fast, folds = fast
        else:
            cycles: list = []
            folds = []
            run = run_program(words, depth=self.imem_depth, issue_cycles=cycles, base_bits=bb,
                              folds=folds)
            arrays = tuple(np.array(v, dtype=np.int64) for v in (
                [m.op.value for m in run.trace], [m.imm for m in run.trace],
                [m.a for m in run.trace], [m.b for m in run.trace], [m.d for m in run.trace],
                cycles))
            fast = arrays, list(run.counters), run.error
        # zero skipping: the cycles without stalls, the micro-ops an ENDLOOP is folded into
        self._unstalled = (fast[0][5], fast[1], folds)
        return add_stalls(*fast, self.config)

