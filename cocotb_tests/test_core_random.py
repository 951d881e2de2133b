"""The core's instruction-level contract (``rtl.core.Core``, ``rtl.isa``) under random
micro-op programs, against the cycle model (``sim.hw.core_model.CoreModel``) with ``==``.

One small core (a mat of two 16 x 16 STT subarrays with every route, small memories, some of
them of a size that is not a power of two) runs many random programs in one build. Each
program starts from random host state loaded into both (array rows, weight buffer,
requantization table, data memory, gather tables; each subarray gets its own random data, so a
micro-op that picks one subarray's result is told apart from its neighbour's) and mixes
every micro-op of the instruction set, loops with strided operands, every ``ReduceOp`` code
(and the unused ones) in every opcode that takes one, every PPU immediate, REQUANT's ``d`` on
each subarray and on the sum, BITCOUNT with every valid ``imm`` (the bit-counters of route
``nand_inmem``: op, AND_FU, out into a buffer slot) and writes from ``WriteSrc.BIT_COUNTER``,
zero skipping (the core is ``jeit_stt``'s, ``config.zero_skip``: ``TBUF_ZS`` writes that set a
row's zero flag, surely or as the gathered data make it, and ``MOVE SKIPZ`` over a window of
straight-line micro-ops, among them ``jeit_fa`` dots into the full-adder array, the window
maybe last in a loop's body (its ENDLOOP folded), maybe NOPs after the window as the array's
flush or a loop right after it, then REQUANTs that take the addend from slot b when it was
taken),
with operands uniform in their range and weighted at both ends.

A third of the programs carry one operand at or beyond an encoded range the core must flag
(rows, buffer slots, transpose-buffer planes, write sources, gather column / table entries /
data-memory address, REQUANT channel and ``d``, the write pointer, undefined MoveOps,
opcodes the core does not execute or that are undefined, a stride on a loop level that is not
open, an array write the technology does not support, a BITCOUNT ``imm`` that is not valid or
its row / slot / out slot beyond, a SKIPZ row beyond, a REQUANT's slot beyond after a SKIPZ
surely taken); the expected ``error`` comes from
those ranges as ``rtl.core.Core``'s docstring states them (computed here, not by the model),
and the model and the core must both agree with it.

After each program a fixed probe program reads every accumulator, every array row per
subarray, every transpose-buffer plane, every weight-buffer slot and the bit-counters' low bits
into the data memory. After each run of either program the whole data memory, the write
pointer, ``error`` and every performance counter of the core (the zero-skipping ones too) must
equal the model's. A mismatch names the run's seed, the program, the
instruction that produced the value (found by replaying prefixes of the program on the
model), both values.
"""

import copy
import dataclasses
import os
import random

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from rtl.column_reduce import ReduceOp
from rtl.config import preset
from rtl.core import Core
from rtl.isa import (
    BASE_BITS, CONTROL_OPS, DATAPATH_OPS, LOOP_DEPTH, OP_BITS, OPERAND_BITS, Instr, MoveOp,
    Opcode, Operand, WriteSrc, encode,
)
from rtl.mtj_array import MacroCmd
from rtl.ppu import PPU_EMIT, PPU_MODE_LSB, PpuMode
from rtl.routes import ROUTES, opcodes_of, write_sources_of

BLOCK = "core"
K = 2                     # subarrays in the mat
#: The core's sizes: small memories, channels and out_depth not powers of two (the range
#: checks of a non-power-of-two limit differ from a power of two's).
SIZES = dict(imem_depth=128, buffer_slots=8, channels=5, out_depth=120, offset_depth=8,
             patch_depth=8)
MAX_CYCLES = 4000
#: Random programs per run (``SPINPIM_RANDOM_PROGRAMS`` overrides: ``sim.analysis.mutate``
#: runs fewer).
PROGRAMS = int(os.environ.get("SPINPIM_RANDOM_PROGRAMS") or 120)
#: Opcodes that take a ReduceOp in imm bits 0-3 (``rtl.isa.OPERANDS``).
REDUCE = (Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
          Opcode.MIN_STEP)
#: Opcodes whose b operand is a weight-buffer slot (writes: by their source).
SLOT_B = (Opcode.AND_FU, Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.FA_STEP)
#: Write sources whose b is a transpose-buffer plane (the others': a weight-buffer slot).
PLANE_SOURCES = (WriteSrc.TBUF.value, WriteSrc.TBUF_ZS.value)
#: Opcodes whose a operand is an array row.
ROW_A = (*REDUCE, Opcode.FS_STEP, Opcode.FA_STEP, Opcode.WRITE_ROW, Opcode.ERASE,
         Opcode.PROGRAM)


def _config():
    # STT: WRITE_ROW is the write (2 cycles at the preset's clock: the stall logic is in the
    # build), ERASE / PROGRAM are writes the technology does not support (errors).
    return dataclasses.replace(preset("jeit_stt"), rows=16, columns=16, subarrays_per_mat=K,
                               mats=1, routes=tuple(ROUTES))


class Contract:
    """The ranges the core's docstring promises, for one configuration and size."""

    def __init__(self, config):
        self.rows = config.rows
        self.width = K * config.columns
        self.n = config.operand_bits
        self.slots = SIZES["buffer_slots"]
        self.channels = SIZES["channels"]
        self.out_depth = SIZES["out_depth"]
        self.odepth, self.pdepth = SIZES["offset_depth"], SIZES["patch_depth"]
        self.ops = frozenset(opcodes_of(config.routes))
        # a zero-skip core (config.zero_skip) also writes planes by TBUF_ZS (rtl.core.Core)
        self.srcs = frozenset(s.value for s in write_sources_of(config.routes)) | (
            {WriteSrc.TBUF_ZS.value} if config.zero_skip else set())
        self.writes = ((Opcode.WRITE_ROW,) if config.technology != "nand_spin"
                       else (Opcode.ERASE, Opcode.PROGRAM))
        self.zero_skip = config.zero_skip

    def b_limit(self, src):
        """Where a write's b must stay below: planes (TBUF, TBUF_ZS), the lanes
        (BIT_COUNTER_XW(M)'s rotation), else the buffer slots."""
        return (self.n if src in PLANE_SOURCES else self.width
                if src in (WriteSrc.BIT_COUNTER_XW.value, WriteSrc.BIT_COUNTER_XWM.value)
                else self.slots)

    @staticmethod
    def bitcount_senses(imm):
        """A BITCOUNT senses row a for op COUNT (imm bits 0-1 = 1) or out SA / NOT_SA (bits
        3-4 = 1, 2): ``rtl.core.Core``'s table."""
        return imm & 3 == 1 or imm >> 3 in (1, 2)

    @staticmethod
    def bitcount_valid(imm):
        """Not op HOLD with out NONE (a micro-op doing nothing), no AND_FU (bit 2) on a
        BITCOUNT that senses nothing."""
        return not (imm & 3 == 0 and imm >> 3 == 0) and (
            not imm & 4 or Contract.bitcount_senses(imm))

    def expected_error(self, trace, tables, controller_error):
        """``(error, why)`` of a run whose micro-op trace (``sim.hw.isa_model.run_program``) is
        ``trace``: the first operand out of its range, as ``rtl.core.Core`` lists them."""
        if controller_error:
            return True, "controller error"
        offsets, patches = tables
        ptr, cnt = 0, 0
        # Zero skipping: a SKIPZ is surely taken when its row's last write was a TBUF_ZS
        # micro-op right after a CLEAR of the transpose buffer (Generator.skipz_taken).
        sure_flag, since_clear, taken = set(), None, False
        for i, m in enumerate(trace):
            op, imm, a, b, d = m.op, m.imm, m.a, m.b, m.d
            where = f"micro-op {i} {op.name} a={a} b={b} d={d} imm={imm}"
            if op not in self.ops:
                return True, f"{where}: not executed by this core"
            if op is Opcode.BITCOUNT:
                if not self.bitcount_valid(imm):
                    return True, f"{where}: not a valid BITCOUNT imm"
                if imm & 4 and b >= self.slots:
                    return True, f"{where}: AND_FU slot b not below {self.slots}"
                if imm >> 3 and d >= self.slots:
                    return True, f"{where}: out slot d not below {self.slots}"
                if self.bitcount_senses(imm) and a >= self.rows:
                    return True, f"{where}: row a not below {self.rows}"
            if op in (Opcode.WRITE_ROW, Opcode.PROGRAM):
                if imm == WriteSrc.TBUF_ZS.value and since_clear == i - 1:
                    sure_flag.add(a)
                else:
                    sure_flag.discard(a)
            if op is Opcode.MOVE and imm == MoveOp.CLEAR.value:
                since_clear = i
            if op in ROW_A and a >= self.rows:
                return True, f"{where}: row a not below {self.rows}"
            if op in (Opcode.AND2, Opcode.OR2) and b >= self.rows:
                return True, f"{where}: row b not below {self.rows}"
            if op in SLOT_B and b >= self.slots:
                return True, f"{where}: slot b not below {self.slots}"
            if op in (Opcode.WRITE_ROW, Opcode.PROGRAM):
                if imm not in self.srcs:
                    return True, f"{where}: not a write source of this core"
                limit = self.b_limit(imm)
                if b >= limit:
                    return True, f"{where}: b not below {limit}"
                if imm == WriteSrc.BIT_COUNTER_XWM.value and d >= self.slots:
                    return True, f"{where}: mask slot d not below {self.slots}"
            if op in (Opcode.WRITE_ROW, Opcode.ERASE, Opcode.PROGRAM) and op not in self.writes:
                return True, f"{where}: a write the technology does not support"
            if op is Opcode.REQUANT:
                if a >= self.channels or d > K:
                    return True, f"{where}: channel or d out of range"
                if b >= self.slots:       # the generator gives no other REQUANT such a b
                    assert self.zero_skip and taken, f"{where}: generator: b beyond slots"
                    return True, f"{where}: the addend's slot b after a taken SKIPZ"
                if imm & PPU_EMIT:
                    mode = imm >> PPU_MODE_LSB & 3
                    pool = mode in (PpuMode.MAX4.value, PpuMode.AVG4.value)
                    emits = not pool or cnt == 3
                    if pool:
                        cnt = (cnt + 1) & 3
                    if emits:
                        if ptr >= self.out_depth:
                            return True, f"{where}: the data memory is full"
                        ptr += 1
            if op is Opcode.MOVE:
                if imm == MoveOp.GATHER.value:
                    if a >= self.width or b >= self.odepth or d >= self.pdepth:
                        return True, f"{where}: GATHER operand out of range"
                    off, kpos = offsets[b]
                    base, mask = patches[d]
                    if mask >> kpos & 1 and (base + off) % (1 << 16) >= self.out_depth:
                        return True, f"{where}: GATHER address beyond the data memory"
                elif imm in (MoveOp.SETPTR.value, MoveOp.ADDPTR.value):
                    ptr = a if imm == MoveOp.SETPTR.value else ptr + a
                    if ptr > self.out_depth:
                        return True, f"{where}: pointer beyond the data memory"
                elif imm == MoveOp.SKIPZ.value and self.zero_skip:
                    if a >= self.rows:
                        return True, f"{where}: SKIPZ row a not below {self.rows}"
                    taken = a in sure_flag
                elif imm != MoveOp.CLEAR.value:
                    return True, f"{where}: not a MoveOp"
        return False, ""


#: Kinds of injected errors (one per bad program), each an operand at or beyond a range.
BAD_KINDS = ("bitcount_imm", "bitcount_slot", "bitcount_out", "bitcount_row", "skipz_row",
             "slot_forwarded",
             "skipz_slot", "row_a", "row_b", "rows_both", "gather_ab", "gather_ad", "gather_bd",
             "gather_abd",
             "slot", "mask_slot", "plane", "src", "gather_col",
             "gather_b", "gather_d", "gather_addr", "channel", "d", "setptr", "addptr", "full",
             "moveop", "not_executed", "undefined", "stride_level", "tech_write", "wrap",
             "two_errors")


class Generator:
    """Random programs (lists of ``rtl.isa.Instr``) and host state for one contract."""

    def __init__(self, contract, rng: random.Random, codes: dict):
        self.c, self.rng = contract, rng
        self.codes = codes      # per reduce opcode, the next ReduceOp code (all in turn)

    # -- values ---------------------------------------------------------------------------

    def inside(self, limit):
        """A value in [0, limit), a third of the time one of its ends."""
        r = self.rng.random()
        if r < 0.17:
            return 0
        if r < 0.34:
            return limit - 1
        return self.rng.randrange(limit)

    def beyond(self, limit, bits):
        """A value at or beyond ``limit`` that fits a ``bits``-wide base: the limit itself, the
        limit plus the port's width (aliases to a valid value when cut), or any."""
        port = 1 << max(1, (limit - 1).bit_length())
        choices = [limit, limit + port, (1 << bits) - 1, self.rng.randrange(limit, 1 << bits)]
        return min(self.rng.choice(choices), (1 << bits) - 1)

    def operand(self, limit, count=None, level=0):
        """An operand in range for every iteration of the loop around it (``count``
        iterations of loop ``level``; None outside loops)."""
        rng = self.rng
        if count is None or count == 1 or rng.random() < 0.3:
            return Operand(self.inside(limit))
        for _ in range(8):
            s = rng.choice([s for s in range(-8, 8) if s])
            span = s * (count - 1)
            lo, hi = max(0, -span), min(limit - 1, (1 << BASE_BITS) - 1) - max(0, span)
            if lo <= hi:
                return Operand(rng.randint(lo, hi), level, s)
        return Operand(self.inside(limit))

    def junk(self):
        """An operand the opcode does not use: anything absolute."""
        return Operand(self.rng.randrange(1 << BASE_BITS)) if self.rng.random() < 0.3 \
            else Operand()

    # -- micro-ops ------------------------------------------------------------------------

    #: The micro-ops of a skipped tile dot (straight-line datapath micro-ops, no REQUANT or
    #: MOVE), as :meth:`micro_op` weights them.
    TILE_OPS = (Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
                Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.FA_STEP, Opcode.WRITE_ROW,
                Opcode.BITCOUNT)

    def micro_op(self, count=None, level=0, op=None, kind=None):
        """One in-range datapath micro-op of the core (of opcode ``op``, a MOVE of ``kind``,
        if given)."""
        rng, c = self.rng, self.c
        op = op or rng.choice([
                         Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
                         Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.FS_STEP, Opcode.FA_STEP,
                         Opcode.FA_STEP, Opcode.WRITE_ROW, Opcode.WRITE_ROW, Opcode.REQUANT,
                         Opcode.REQUANT, Opcode.REQUANT, Opcode.MOVE, Opcode.MOVE,
                         Opcode.BITCOUNT, Opcode.BITCOUNT])
        row = self.operand(c.rows, count, level)
        if op in REDUCE:
            b = (self.operand(c.rows, count, level) if op in (Opcode.AND2, Opcode.OR2)
                 else self.operand(c.slots, count, level) if op in SLOT_B else self.junk())
            code = self.codes[op] = (self.codes.get(op, -1) + 1) % 16
            return Instr(op, imm=code | rng.randrange(2) << 4, a=row, b=b, d=self.junk())
        if op in (Opcode.FS_STEP, Opcode.FA_STEP):
            return Instr(op, imm=rng.randrange(32), a=row, b=self.operand(c.slots, count, level),
                         d=self.junk())
        if op is Opcode.WRITE_ROW:
            src = rng.choice(sorted(c.srcs))
            limit = c.b_limit(src)
            d = (self.operand(c.slots, count, level) if src == WriteSrc.BIT_COUNTER_XWM.value
                 else self.junk())        # XWM: d is the mask's slot
            return Instr(op, imm=src, a=row, b=self.operand(limit, count, level), d=d)
        if op is Opcode.BITCOUNT:
            return self.bitcount(row, count, level)
        if op is Opcode.REQUANT:
            # b is the addend's slot after a taken SKIPZ (zero skipping): in range there
            b = self.operand(c.slots, count, level) if c.zero_skip else self.junk()
            return Instr(op, imm=rng.randrange(32), a=self.operand(c.channels, count, level),
                         b=b, d=self.operand(K + 1, count, level))
        kind = kind or rng.choice([MoveOp.GATHER, MoveOp.GATHER, MoveOp.GATHER, MoveOp.CLEAR,
                                   MoveOp.SETPTR, MoveOp.ADDPTR])
        if kind is MoveOp.GATHER:
            return Instr(op, imm=kind.value, a=self.operand(c.width, count, level),
                         b=self.operand(c.odepth, count, level),
                         # the last patch entry is beyond the data memory: in a clean
                         # program every kpos the offsets use is masked there (padding, no
                         # error), in a gather_addr program none is (an error)
                         d=self.operand(c.pdepth, count, level))
        if kind is MoveOp.CLEAR:
            return Instr(op, imm=kind.value, a=self.junk(), b=self.junk(), d=self.junk())
        value = rng.randrange(0, 40) if kind is MoveOp.SETPTR else rng.randrange(0, 8)
        return Instr(op, imm=kind.value, a=Operand(value), b=self.junk(), d=self.junk())

    def bitcount(self, row, count=None, level=0, imm=None):
        """A BITCOUNT (route nand_inmem) with a valid imm (op, AND_FU, out), its operands in
        range where it uses them: row a if it senses, slot b if AND_FU, slot d if out."""
        c = self.c
        if imm is None:
            imm = self.rng.choice([v for v in range(32) if c.bitcount_valid(v)])
        return Instr(Opcode.BITCOUNT, imm=imm,
                     a=row if c.bitcount_senses(imm) else self.junk(),
                     b=self.operand(c.slots, count, level) if imm & 4 else self.junk(),
                     d=self.operand(c.slots, count, level) if imm >> 3 else self.junk())

    def skipz_taken(self, row):
        """Words that surely set row ``row``'s zero flag: a CLEAR of the transpose buffer,
        two NOPs (a WRITE_ROW from it sees the CLEARs issued 2 or more cycles before), a
        WRITE_ROW from ``TBUF_ZS`` of any plane."""
        return [Instr(Opcode.MOVE, imm=MoveOp.CLEAR.value), Instr(Opcode.NOP),
                Instr(Opcode.NOP), Instr(Opcode.WRITE_ROW, imm=WriteSrc.TBUF_ZS.value,
                                         a=Operand(row), b=Operand(self.inside(self.c.n)))]

    def skip_group(self):
        """Zero skipping (``MoveOp.SKIPZ``): often a row's zero flag surely set (or maybe,
        after a few GATHERs), then a SKIPZ of a row over the next ``b`` instructions, which
        are straight-line datapath micro-ops (the tile dot; no REQUANT or MOVE: the contract
        counts the data memory's words and the pointer on the static trace), then REQUANTs
        that take the addend from slot b if it was taken."""
        rng, c = self.rng, self.c
        row = self.inside(c.rows)
        out = []
        r = rng.random()
        if r < 0.5:
            out += self.skipz_taken(row)
        elif r < 0.75:                   # a flag set or cleared by what the GATHERs bring
            out += [Instr(Opcode.MOVE, imm=MoveOp.CLEAR.value)]
            out += [self.micro_op(op=Opcode.MOVE, kind=MoveOp.GATHER)
                    for _ in range(rng.randint(1, 3))]
            out += [Instr(Opcode.NOP), Instr(Opcode.WRITE_ROW, imm=WriteSrc.TBUF_ZS.value,
                                             a=Operand(row), b=Operand(self.inside(c.n)))]
        skip = rng.randint(0, 3)
        tile = [self.micro_op(op=rng.choice(self.TILE_OPS)) for _ in range(skip)]
        if rng.random() < 0.3:          # a jeit_fa dot: DIFF steps into the array, the last LAST
            skip = rng.randint(1, 3)
            tile = [self.micro_op(op=Opcode.FS_STEP) for _ in range(skip)]
            for q, ins in enumerate(tile):
                imm = 2 | 4 | (1 if q == 0 else 0) | (8 if q == skip - 1 else 0)
                tile[q] = Instr(Opcode.FS_STEP, imm=imm, a=ins.a, b=ins.b, d=ins.d)
        skipz = Instr(Opcode.MOVE, imm=MoveOp.SKIPZ.value,
                      a=Operand(row if rng.random() < 0.8 else self.inside(c.rows)),
                      b=Operand(skip), d=Operand(rng.randrange(1 << BASE_BITS)))
        r = rng.random()
        if r < 0.25:
            # the window (or the SKIPZ itself, b = 0) last in a loop's body: its ENDLOOP is
            # folded into the window's last micro-op when nothing is skipped, and takes a cycle
            # of its own after a taken SKIPZ (the controller jumps to it; rtl.controller)
            out += [Instr(Opcode.LOOP, count=rng.randint(1, 3)), skipz, *tile,
                    Instr(Opcode.ENDLOOP)]
        else:
            out += [skipz, *tile]
        # then NOPs (not skipped: jeit_fa's flush of its full-adder array, which the compiler
        # leaves after the window) or a loop, and a micro-op: the cycle model takes the control
        # instructions' cycles from the trace without stalls
        if rng.random() < 0.4:
            out += [Instr(Opcode.NOP)] * rng.randint(1, 4)
        elif 0.25 <= r < 0.45:         # a LOOP right after the window
            count = rng.randint(1, 3)
            out += [Instr(Opcode.LOOP, count=count),
                    *[self.micro_op(count, op=rng.choice(self.TILE_OPS))
                      for _ in range(rng.randint(1, 2))],
                    Instr(Opcode.ENDLOOP)]
        out += [self.micro_op(op=Opcode.REQUANT) for _ in range(rng.randint(1, 2))]
        return out

    def bad_op(self, kind):
        """One micro-op (or a few words) with an operand at or beyond its range."""
        rng, c = self.rng, self.c
        bits = BASE_BITS
        ok_row, ok_slot = Operand(self.inside(c.rows)), Operand(self.inside(c.slots))
        if kind == "bitcount_imm":
            imm = rng.choice([v for v in range(32) if not c.bitcount_valid(v)])
            return [self.bitcount(ok_row, imm=imm)]
        if kind in ("bitcount_slot", "bitcount_out", "bitcount_row"):
            need = {"bitcount_slot": lambda v: v & 4, "bitcount_out": lambda v: v >> 3,
                    "bitcount_row": c.bitcount_senses}[kind]
            ins = self.bitcount(ok_row, imm=rng.choice(
                [v for v in range(32) if c.bitcount_valid(v) and need(v)]))
            field = {"bitcount_slot": "b", "bitcount_out": "d", "bitcount_row": "a"}[kind]
            limit = c.rows if kind == "bitcount_row" else c.slots
            return [dataclasses.replace(ins, **{field: Operand(self.beyond(limit, bits))})]
        if kind == "slot_forwarded":  # a slot beyond that aliases (mod slots) the slot a
            # BITCOUNT wrote the cycle before: the core forwards that write to this read too
            s = self.inside(c.slots)
            out = rng.choice([o for o in range(32) if c.bitcount_valid(o) and o >> 3])
            op = rng.choice([*SLOT_B, Opcode.WRITE_ROW])
            return [dataclasses.replace(self.bitcount(ok_row, imm=out), d=Operand(s)),
                    Instr(op, imm=WriteSrc.BUFFER.value if op is Opcode.WRITE_ROW
                          else rng.randrange(32), a=ok_row,
                          b=Operand(s + c.slots * rng.choice([1, 2, 3])))]
        if kind == "skipz_row":
            return [Instr(Opcode.MOVE, imm=MoveOp.SKIPZ.value,
                          a=Operand(self.beyond(c.rows, bits)), b=Operand(rng.randint(0, 2)))]
        if kind == "skipz_slot":       # a taken SKIPZ, then a REQUANT with the slot beyond
            row = self.inside(c.rows)
            return [*self.skipz_taken(row),
                    Instr(Opcode.MOVE, imm=MoveOp.SKIPZ.value, a=Operand(row), b=Operand(0)),
                    Instr(Opcode.REQUANT, imm=rng.randrange(32),
                          a=Operand(self.inside(c.channels)),
                          b=Operand(self.beyond(c.slots, bits)),
                          d=Operand(self.inside(K + 1)))]
        if kind == "row_a":
            op = rng.choice(ROW_A[:-2] if Opcode.WRITE_ROW in c.writes else ROW_A)
            src = WriteSrc.BUFFER.value if op in (Opcode.WRITE_ROW, Opcode.PROGRAM) else None
            return [Instr(op, imm=src if src is not None else rng.randrange(32),
                          a=Operand(self.beyond(c.rows, bits)),
                          b=ok_row if op in (Opcode.AND2, Opcode.OR2) else ok_slot)]
        if kind == "row_b":
            return [Instr(rng.choice([Opcode.AND2, Opcode.OR2]), imm=rng.randrange(32),
                          a=ok_row, b=Operand(self.beyond(c.rows, bits)))]
        if kind == "rows_both":        # two operands out of range at once
            return [Instr(rng.choice([Opcode.AND2, Opcode.OR2]), imm=rng.randrange(32),
                          a=Operand(self.beyond(c.rows, bits)),
                          b=Operand(self.beyond(c.rows, bits)))]
        if kind in ("gather_ab", "gather_ad", "gather_bd", "gather_abd"):   # two or three
            bad = kind.split("_")[1]                                       # at once
            a = Operand(self.beyond(c.width, bits) if "a" in bad else 0)
            b = Operand(self.beyond(c.odepth, bits) if "b" in bad else 0)
            d = Operand(self.beyond(c.pdepth, bits) if "d" in bad else 0)
            return [Instr(Opcode.MOVE, imm=MoveOp.GATHER.value, a=a, b=b, d=d)]
        if kind == "slot":
            op = rng.choice([*SLOT_B, Opcode.WRITE_ROW])
            imm = (rng.choice([s for s in c.srcs if s not in PLANE_SOURCES])
                   if op is Opcode.WRITE_ROW else rng.randrange(32))
            return [Instr(op, imm=imm, a=ok_row, b=Operand(self.beyond(
                c.b_limit(imm) if op is Opcode.WRITE_ROW else c.slots, bits)))]
        if kind == "plane":
            return [Instr(Opcode.WRITE_ROW, imm=rng.choice([p for p in PLANE_SOURCES
                                                            if p in c.srcs]),
                          a=ok_row, b=Operand(self.beyond(c.n, bits)))]
        if kind == "mask_slot":    # BIT_COUNTER_XWM: its mask's slot d beyond the buffer
            return [Instr(Opcode.WRITE_ROW, imm=WriteSrc.BIT_COUNTER_XWM.value, a=ok_row,
                          b=Operand(self.inside(c.width)),
                          d=Operand(self.beyond(c.slots, bits)))]
        if kind == "src":
            srcs = [v for v in range(32) if v not in c.srcs]
            return [Instr(Opcode.WRITE_ROW, imm=rng.choice(srcs), a=ok_row, b=Operand(0))]
        if kind.startswith("gather"):
            a, b, d = (Operand(self.inside(c.width)), Operand(self.inside(c.odepth)),
                       Operand(self.inside(c.pdepth - 1)))
            if kind == "gather_col":
                a = Operand(self.beyond(c.width, bits))
            elif kind == "gather_b":
                b = Operand(self.beyond(c.odepth, bits))
            elif kind == "gather_d":
                d = Operand(self.beyond(c.pdepth, bits))
            else:                       # the last patch entry points beyond the data memory
                d = Operand(c.pdepth - 1)
            return [Instr(Opcode.MOVE, imm=MoveOp.GATHER.value, a=a, b=b, d=d)]
        if kind == "channel":
            return [Instr(Opcode.REQUANT, imm=rng.randrange(32),
                          a=Operand(self.beyond(c.channels, bits)), d=Operand(self.inside(K + 1)))]
        if kind == "d":
            return [Instr(Opcode.REQUANT, imm=rng.randrange(32),
                          a=Operand(self.inside(c.channels)), d=Operand(self.beyond(K + 1, bits)))]
        if kind == "setptr":
            return [Instr(Opcode.MOVE, imm=MoveOp.SETPTR.value,
                          a=Operand(self.beyond(c.out_depth + 1, bits)))]
        if kind == "addptr":
            return [Instr(Opcode.MOVE, imm=MoveOp.SETPTR.value, a=Operand(c.out_depth - 3)),
                    Instr(Opcode.MOVE, imm=MoveOp.ADDPTR.value,
                          a=Operand(rng.choice([4, 5, 4095])))]
        if kind == "full":             # the pointer at out_depth is fine until a word comes
            emit = PPU_EMIT | PpuMode.LOGIT.value << PPU_MODE_LSB
            return [Instr(Opcode.MOVE, imm=MoveOp.SETPTR.value, a=Operand(c.out_depth - 1)),
                    Instr(Opcode.REQUANT, imm=emit, a=Operand(0)),
                    Instr(Opcode.REQUANT, imm=emit, a=Operand(0))]
        if kind == "moveop":
            return [Instr(Opcode.MOVE, imm=rng.choice(
                sorted(set(range(32)) - {v.value for v in MoveOp})))]
        if kind == "not_executed":
            missing = [op for op in DATAPATH_OPS if op not in c.ops]
            return [Instr(rng.choice(missing), imm=rng.randrange(32), a=ok_row, b=ok_slot)]
        if kind == "undefined":
            codes = [v for v in range(1 << OP_BITS) if v not in {op.value for op in Opcode}]
            return [rng.choice(codes) | rng.getrandbits(64 - OP_BITS) << OP_BITS]
        if kind == "stride_level":    # a stride on a level no loop has opened
            return [Instr(Opcode.READ, imm=2, a=Operand(0, level=rng.randrange(LOOP_DEPTH),
                                                        stride=rng.choice([-1, 1, 3])))]
        if kind == "tech_write":
            bad = [op for op in (Opcode.WRITE_ROW, Opcode.ERASE, Opcode.PROGRAM)
                   if op not in c.writes]
            return [Instr(rng.choice(bad), imm=WriteSrc.BUFFER.value, a=ok_row, b=Operand(0))]
        if kind == "two_errors":       # two causes in one run: datapath or PPU, then the
            # PPU or the controller (last: the controller stops at its error)
            k1 = rng.choice([k for k in BAD_KINDS if k not in (
                "wrap", "two_errors", "gather_addr", "undefined", "stride_level")])
            k2 = rng.choice([k for k in ("undefined", "stride_level", "full") if k != k1])
            return self.bad_op(k1) + self.bad_op(k2)
        assert kind == "wrap", kind     # a negative stride past 0 wraps to 65535, 65534, ..
        return [Instr(Opcode.LOOP, count=3),
                Instr(Opcode.READ, imm=2, a=Operand(1, 0, -1)),
                Instr(Opcode.ENDLOOP)]

    def program(self, bad_kind=None):
        """A program (list of Instr or raw words) ending with HALT; ``bad_kind`` inserts one
        bad micro-op (:data:`BAD_KINDS`) at a random point outside loops."""
        rng = self.rng
        body, joints = [], [0]       # joints: where a bad op may go (outside loops, groups)
        for _ in range(rng.randint(6, 22)):
            r = rng.random()
            if r < 0.22:                # a loop: 1 .. 3 micro-ops, maybe one loop inside
                count = rng.randint(1, 4)
                inner = [self.micro_op(count) for _ in range(rng.randint(1, 3))]
                if rng.random() < 0.3:
                    c2 = rng.randint(1, 3)
                    inner += [Instr(Opcode.LOOP, count=c2),
                              *[self.micro_op(c2) for _ in range(rng.randint(1, 2))],
                              Instr(Opcode.ENDLOOP)]
                if rng.random() < 0.2:
                    inner.insert(rng.randrange(len(inner) + 1), Instr(Opcode.NOP))
                body += [Instr(Opcode.LOOP, count=count), *inner, Instr(Opcode.ENDLOOP)]
            elif r < 0.27:
                body.append(Instr(Opcode.NOP))
            elif r < 0.33 and self.c.zero_skip:
                body += self.skip_group()
            else:
                body.append(self.micro_op())
            joints.append(len(body))
        if bad_kind is not None:
            at = rng.choice(joints)
            body[at:at] = self.bad_op(bad_kind)
        return [*body, Instr(Opcode.HALT)]

    # -- host state -----------------------------------------------------------------------

    def host_state(self, bad_gather):
        """Random array rows, buffer words, table entries, data memory, gather tables.
        Every patch entry but the last points into the data memory for every offset entry;
        the last points beyond it (used by GATHERs only where ``bad_gather``), or, for
        clean programs, beyond it with every used kpos masked (no error)."""
        rng, c = self.rng, self.c
        rows = [rng.getrandbits(c.width) for _ in range(c.rows)]
        slots = [rng.getrandbits(c.width) for _ in range(c.slots)]
        table = [(rng.randint(-(1 << 15), (1 << 15) - 1), rng.randrange(64),
                  rng.randint(-(1 << 20), 1 << 20)) for _ in range(c.channels)]
        dmem = [rng.getrandbits(32) for _ in range(c.out_depth)]
        max_off = 60
        offsets = [(rng.randrange(max_off), rng.randrange(32)) for _ in range(c.odepth)]
        patches = [(rng.randrange(c.out_depth - max_off), rng.getrandbits(32))
                   for _ in range(c.pdepth - 1)]
        used = 0
        for _, kpos in offsets:
            used |= 1 << kpos
        if bad_gather:
            patches.append((rng.randrange(c.out_depth, 1 << 16), 0xFFFF_FFFF))
        else:
            patches.append((rng.randrange(c.out_depth, 1 << 16),
                            rng.getrandbits(32) & ~used))
        return rows, slots, table, dmem, offsets, patches


def _words(program):
    return [w if isinstance(w, int) else encode(w) for w in program]


def _probe(contract):
    """Every accumulator (d = 0 .. K), every array row per subarray, every transpose-buffer
    plane, every weight-buffer slot (BITCOUNT writes them) and the bit-counters' LSBs four
    times (each shifts them right) per subarray (written into row 0 first), as LOGIT words of
    channel 0."""
    from sim.compile import asm
    logit = PPU_EMIT | 1 | PpuMode.LOGIT.value << PPU_MODE_LSB
    emit = [asm.requant(a=0, d=d, imm=logit) for d in range(1, K + 1)]
    read0 = asm.read(a=0, imm=ReduceOp.L1_FIRST.value)
    out = [asm.requant(a=0, d=d, imm=logit) for d in range(K + 1)]
    # loops (the probe must fit the small instruction memory), one row / plane / slot each
    out += [asm.loop(count=contract.rows), asm.read(a=asm.rel(0), imm=ReduceOp.L1_FIRST.value),
            *emit, asm.endloop()]
    for src, count in ((WriteSrc.TBUF, contract.n), (WriteSrc.BUFFER, contract.slots)):
        out += [asm.loop(count=count), asm.write_row(a=0, b=asm.rel(0), imm=src.value), read0,
                *emit, asm.endloop()]
    out += [asm.loop(count=4), asm.write_row(a=0, b=0, imm=WriteSrc.BIT_COUNTER.value), read0,
            *emit, asm.endloop()]
    return asm.assemble([*out, asm.halt()])


def _row_bits(value, width):
    return np.array([(value >> i) & 1 for i in range(width)], dtype=np.uint8)


async def _load(host, model, contract, state):
    rows, slots, table, dmem, offsets, patches = state
    w = contract.width
    ones = np.ones(w, np.uint8)
    await host.array_commands([(MacroCmd.WRITE, r, _row_bits(v, w), ones)
                               for r, v in enumerate(rows)])
    for r, v in enumerate(rows):
        model.array_command(MacroCmd.WRITE, r, v)
    await host.write_buffer([_row_bits(v, w) for v in slots])
    for s, v in enumerate(slots):
        model.write_buffer(s, v)
    await host.write_table(*zip(*table, strict=True))
    for ch, (m, s, b) in enumerate(table):
        model.write_table(ch, m, s, b)
    await host.write_dmem(0, dmem)
    for i, v in enumerate(dmem):
        model.write_dmem(i, v)
    if sum(rows) % 2:                   # either table last: a write into the wrong one shows
        await host.write_tables(offsets, patches)
    else:
        await host.write_tables([], patches)
        await host.write_tables(offsets, [])
    for i, (off, kpos) in enumerate(offsets):
        model.write_offset(i, off, kpos)
    for i, (base, mask) in enumerate(patches):
        model.write_patch(i, base, mask)


async def _host_noise(dut, rng, cycles=3):
    """Random values on the host's address and data ports with every write enable low: the
    core must ignore them (nothing is written: the model is not told)."""
    from cocotb.triggers import FallingEdge
    ports = ("prog_addr", "prog_data", "buf_addr", "buf_data", "tbl_addr", "tbl_mult",
             "tbl_shift", "tbl_bias", "agu_sel", "agu_addr", "agu_data", "dmem_waddr",
             "dmem_wdata", "arr_cmd", "arr_row", "arr_data", "arr_mask")
    for _ in range(cycles):
        for name in ports:
            port = getattr(dut, name)
            # addresses mostly inside the small memories (a stray write must land somewhere)
            bits = min(len(port), 3) if name.endswith("addr") and rng.random() < 0.8 \
                else len(port)
            port.value = rng.getrandbits(bits)
        await FallingEdge(dut.clk)


#: The host's write enables (every one is ignored while the core is busy, ``rtl.core.Core``).
WRITE_ENABLES = ("prog_we", "buf_we", "tbl_we", "agu_we", "dmem_we", "arr_valid")
#: The data and address ports those enables take.
HOST_PORTS = ("prog_addr", "prog_data", "buf_addr", "buf_data", "tbl_addr", "tbl_mult",
              "tbl_shift", "tbl_bias", "agu_sel", "agu_addr", "agu_data", "dmem_waddr",
              "dmem_wdata", "arr_cmd", "arr_row", "arr_data", "arr_mask")


async def _writes_while_busy(dut, rng, stop):
    """Until ``stop[0]``: at each falling edge, if the core shows ``busy``, random host writes
    (every enable high at random, random data, addresses mostly inside the small memories)
    that the core must ignore (the model is not told); when it is not busy, every enable low.
    ``busy`` is registered state, so it is the same at the rising edge that samples them."""
    from cocotb.triggers import FallingEdge
    busy_cycles = 0
    while not stop[0]:
        await FallingEdge(dut.clk)
        busy = bool(dut.busy.value)
        busy_cycles += busy
        for name in HOST_PORTS:
            port = getattr(dut, name)
            bits = min(len(port), 3) if name.endswith("addr") and rng.random() < 0.8 \
                else len(port)
            port.value = rng.getrandbits(bits)
        for name in WRITE_ENABLES:
            getattr(dut, name).value = int(busy and rng.random() < 0.5)
    for name in WRITE_ENABLES:
        getattr(dut, name).value = 0
    stop.append(busy_cycles)


def _first_instr(before, words, changed):
    """Index of the first instruction after which the model, replaying ``words[:i + 1]`` and a
    HALT from the state ``before``, satisfies ``changed(model, run)``; None if none does."""
    halt = encode(Instr(Opcode.HALT))
    for i in range(len(words)):
        m = copy.deepcopy(before)
        run = m.run([*words[:i + 1], halt])
        if changed(m, run):
            return i
    return None


async def _compare(host, model, before, words, what, tag, rng=None):
    """Run ``words`` on both; every data-memory word, the pointer, error and counters ==.
    With ``rng``, random host writes while the core is busy (:func:`_writes_while_busy`)."""
    from sim.compile import asm
    if rng is not None:
        await host.load_program(words)
        stop = [False]
        noise = cocotb.start_soon(_writes_while_busy(host.dut, rng, stop))
    counters, error = await host.run_raw(words, max_cycles=MAX_CYCLES)
    if rng is not None:
        stop[0] = True
        await noise
        assert stop[1] > 0, f"{tag}: {what}: busy never seen high during the run"
        await host._realign()
    ref = model.run(words)
    got_mem = await host.read_dmem(0, model.out_depth)
    want_mem = list(model.out_memory)
    listing = "\n" + asm.disassemble_program(words)

    def where(pred):
        i = _first_instr(before, words, pred)
        return "no single instruction" if i is None else \
            f"instruction {i} ({asm.disassemble(words[i])})"

    if error != ref.error:
        at = where(lambda m, run: run.error) if ref.error else "the model raises none"
        raise AssertionError(f"{tag}: {what}: error: rtl {int(error)} != model {int(ref.error)} "
                             f"(model: {ref.reason or 'no error'}; {at}){listing}")
    for addr, (g, w) in enumerate(zip(got_mem, want_mem, strict=True)):
        if g != w:
            old = before.read_dmem(addr)
            at = where(lambda m, run, a=addr, v=w, o=old: m.read_dmem(a) == v != o)
            raise AssertionError(f"{tag}: {what}: data word {addr} (written by {at}): rtl {g} "
                                 f"!= model {w}{listing}")
    count = int(host.dut.out_count.value)
    assert count == ref.out_count, (
        f"{tag}: {what}: write pointer: rtl {count} != model {ref.out_count}{listing}")
    for name, v in ref.counters.items():
        assert counters[name] == v, (
            f"{tag}: {what}: counter {name}: rtl {counters[name]} != model {v}{listing}")
    for name, v in ref.zero_skip.items():     # the zero-skipping counters (config.zero_skip)
        got = host.last_zero_skip[name]
        assert got == v, f"{tag}: {what}: counter {name}: rtl {got} != model {v}{listing}"
    return ref


async def _skipz_folds_no_endloop(host, model, tag):
    """A directed case: a window last in a loop's body (the SKIPZ itself when b = 0) taken
    three times. The controller folds no ENDLOOP into a taken SKIPZ and jumps to the ENDLOOP,
    which takes a cycle of its own: 12 cycles, counted by hand (CLEAR, two NOPs, the TBUF_ZS
    write of 2 cycles whose second is the LOOP's, then SKIPZ + ENDLOOP three times, HALT)."""
    for skip in (0, 1):
        words = _words([
            Instr(Opcode.MOVE, imm=MoveOp.CLEAR.value), Instr(Opcode.NOP), Instr(Opcode.NOP),
            Instr(Opcode.WRITE_ROW, imm=WriteSrc.TBUF_ZS.value, a=Operand(0), b=Operand(0)),
            Instr(Opcode.LOOP, count=3),
            Instr(Opcode.MOVE, imm=MoveOp.SKIPZ.value, a=Operand(0), b=Operand(skip)),
            *[Instr(Opcode.READ, imm=2, a=Operand(1))] * skip,
            Instr(Opcode.ENDLOOP), Instr(Opcode.HALT)])
        before = copy.deepcopy(model)
        ref = await _compare(host, model, before, words, f"SKIPZ b={skip} last in a loop", tag)
        assert (ref.counters["cycles"], ref.zero_skip["zs_tiles"]) == (12, 3), (
            f"{tag}: SKIPZ b={skip} last in a loop: model cycles {ref.counters['cycles']}, "
            f"tiles {ref.zero_skip['zs_tiles']} != 12, 3 (counted by hand)")


@cocotb.test()
async def core_random_programs(dut):
    """Random micro-op programs, in range and one operand beyond: rtl == cycle model, and the
    error flag == the contract's ranges."""
    from sim.hw.core_model import CoreModel
    from sim.hw.isa_model import run_program
    from sim.flows.rtl_backend import CoreHost
    p = load_params()
    _, seed = make_rng(p, "core_random_programs")
    config = _config()
    contract = Contract(config)
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config, subarrays=K, **SIZES)
    probe = _probe(contract)
    await _skipz_folds_no_endloop(host, model, f"{BLOCK} (seed {seed})")
    seen = {(op, code): 0 for op in REDUCE for code in range(16)}
    kinds = {k: 0 for k in BAD_KINDS}
    errors, codes = 0, {}
    for index in range(p["programs"]):
        rng = random.Random(f"{seed}:{index}")
        gen = Generator(contract, rng, codes)
        # The first programs cycle through every bad kind, then a third of them are bad.
        bad = (BAD_KINDS[index // 2] if index < 2 * len(BAD_KINDS) and index % 2
               else rng.choice(BAD_KINDS) if rng.random() < 0.33 else None)
        state = gen.host_state(bad_gather=bad == "gather_addr")
        for _ in range(20):   # an in-range program may still fill the data memory: redraw
            words = _words(gen.program(bad))
            trace = run_program(words, depth=SIZES["imem_depth"])
            want_error, why = contract.expected_error(trace.trace, state[4:], trace.error)
            if want_error == (bad is not None):
                break
        tag = (f"{BLOCK}: program {index} (seed {seed}; rerun with SPINPIM_SEED={seed}), "
               f"{bad or 'in range'}")
        await _load(host, model, contract, state)
        await _host_noise(dut, rng)
        before = copy.deepcopy(model)
        ref = await _compare(host, model, before, words, "program", tag, rng=rng)
        assert ref.error == want_error, (
            f"{tag}: the model's error {ref.error} ({ref.reason}) != the contract's "
            f"{want_error} ({why or 'every operand in range'})")
        assert want_error == (bad is not None), f"{tag}: the contract says {why or 'no error'}"
        errors += want_error
        if bad:
            kinds[bad] += 1
        for m in trace.trace:
            if m.op in REDUCE:
                seen[(m.op, m.imm & 15)] += 1
        before = copy.deepcopy(model)
        await _compare(host, model, before, probe, "probe after the program", tag)
    missing = [f"{op.name} {code}" for (op, code), n in seen.items() if not n]
    # a short run (sim.analysis.mutate) need not cover them all
    if p["programs"] < 100:
        dut._log.info("reduce codes never issued: %s", missing)
        missing = []
    assert not missing, f"{BLOCK}: reduce codes never issued (more programs?): {missing}"
    if p["programs"] >= 2 * len(BAD_KINDS):
        assert all(kinds.values()), f"{BLOCK}: bad kinds never run: {kinds}"
    dut._log.info("%d programs (%d with an error), every reduce code in every reduce opcode",
                  p["programs"], errors)


@pytest.mark.sim
def test_core_random(sim):
    config = _config()
    assert not set(CONTROL_OPS) & set(REDUCE)
    assert OPERAND_BITS == 16
    run_block(Core(config=config, subarrays=K, faults=False, **SIZES), block=BLOCK, sim=sim,
              test_module=__name__, params={"case": "random", "programs": PROGRAMS})
