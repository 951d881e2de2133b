"""The seed-000 abs-diff route (``abs_diff``): |x - w| in the lanes, written back, bit-counted.

Per tile dot (``n = operand_bits``):

1. a SIGN pass, ``FS_STEP`` b = 0 .. n-1 (``first`` on b = 0): each lane's borrow chain of
   ``x - w``; the final borrow (``swap``) says ``x < w``;
2. a DIFF pass, ``FS_STEP`` b = 0 .. n-1 with the larger minus the smaller operand, each
   difference bit written back into scratch row b (``WRITE_ROW`` / on NAND-SPIN ``PROGRAM``
   after an ``ERASE`` of the scratch strips, from ``WriteSrc.ABS_DIFF``), scheduled
   DIFF(i), DIFF(i+1), WB(i), WB(i+1) to keep one micro-op per cycle (the difference bit of a
   DIFF issued in cycle c can be written from c + 2); with reads slower than a cycle (a
   ``stall_table`` ``read`` of 2 or more) DIFF(i), WB(i), as the read's own hold spaces them;
3. the scratch rows read MSB first by ``SHIFT_ACC`` (``L1_FIRST``: acc = popcount, then
   ``SHIFT_ADD``): acc = sum_k |x_k - w_k|.

Cycles per tile dot: 4n (+ 1 NOP when n is odd), + 1 ``ERASE`` per scratch strip on NAND-SPIN;
array writes: n rows.
"""

from __future__ import annotations

from golden.model import COMPUTE_KINDS
from rtl.column_reduce import ReduceOp
from rtl.isa import Instr, Opcode, WriteSrc

from .base import LaneModel, Route, op, register_route

__all__ = ["AbsDiff", "AbsDiffLanes"]


class AbsDiffLanes(LaneModel):
    """The abs-diff lanes (``rtl.abs_diff_lane``) of every mat column.

    Their ``out`` (the latest difference bits) is written at the end of the S2 cycle of a
    DIFF (issue c, visible from c + 2) and read at the S1 of a write from ``ABS_DIFF``: the
    model keeps the last two values and the issue cycle of the DIFF that wrote the newer one.
    """

    def __init__(self, ones: int):
        super().__init__(ones)
        self.swap = self.borrow = 0
        self.out_new = self.out_old = 0
        self.out_new_cycle = -10
        self.ops = {Opcode.FS_STEP.value: self.fs_step}
        self.write_sources = {WriteSrc.ABS_DIFF.value: self.out_at}

    def start(self) -> None:
        self.out_new_cycle = -10

    def fs_step(self, imm, x, w, c):
        """``FS_STEP``: ``imm`` bit 1 DIFF else SIGN, bit 0 ``first``; no reduction."""
        ones = self._ones
        keep = 0 if imm & 1 else ones
        if imm & 2:                            # DIFF: big - small, difference bit to out
            sw = self.swap
            big = (sw & w) | (~sw & x)
            small = (sw & x) | (~sw & w)
            cin = self.borrow & keep
            nb = ~big
            self.out_old = self.out_new
            self.out_new = (big ^ small ^ cin) & ones
            self.out_new_cycle = c
            self.borrow = ((nb & small) | (nb & cin) | (small & cin)) & ones
        else:                                  # SIGN: the borrow of x - w into swap
            cin = self.swap & keep
            nx = ~x
            self.swap = ((nx & w) | (nx & cin) | (w & cin)) & ones
        return None

    def out_at(self, c: int) -> int:
        """The lanes' ``out`` as a write issued in cycle ``c`` reads it."""
        return self.out_new if self.out_new_cycle <= c - 2 else self.out_old


class AbsDiff(Route):
    name = "abs_diff"

    def maps(self, layer) -> bool:
        return layer.kind in COMPUTE_KINDS and layer.is_adder

    def scratch_rows(self, config) -> tuple:
        """Rows 0 .. n-1, whole strips reserved on NAND-SPIN (erased as a unit)."""
        n, m = config.operand_bits, config.mtjs_per_strip
        return tuple(range(-(-n // m) * m))[:n]

    def dot(self, stage, t, xrow, wslot, config) -> list:
        n = stage.n
        scratch = stage.scratch_rows
        nand = config.technology == "nand_spin"
        body = []
        if nand:
            for s in range(0, len(scratch), config.mtjs_per_strip):
                body.append(op(Opcode.ERASE, a=scratch[s]))
        for b in range(n):                                        # SIGN pass, LSB first
            body.append(op(Opcode.FS_STEP, imm=1 if b == 0 else 0, a=xrow(b), b=wslot(b)))
        wb = Opcode.PROGRAM if nand else Opcode.WRITE_ROW
        # A DIFF's bits are written from its issue + 2 on, until the next DIFF's are: with
        # one-cycle reads DIFF(b), DIFF(b+1), WB(b), WB(b+1) meets both; a read of s >= 2
        # cycles holds DIFF(b+1) until after DIFF(b)'s window, so each DIFF is written
        # straight after it (its own hold puts the write at issue + s >= 2).
        step = 2 if config.op_cycles[Opcode.FS_STEP] == 1 else 1
        b = 0
        while b < n:                                              # DIFF pass + write-back
            pair = [b, b + 1] if step == 2 and b + 1 < n else [b]
            for i in pair:
                body.append(op(Opcode.FS_STEP, imm=2 | (1 if i == 0 else 0), a=xrow(i),
                               b=wslot(i)))
            if len(pair) == 1 and step == 2:
                body.append(Instr(Opcode.NOP))
            for i in pair:
                body.append(op(wb, imm=WriteSrc.ABS_DIFF.value, a=scratch[i], b=0))
            b += len(pair)
        for i in range(n - 1, -1, -1):                            # read back, MSB first
            imm = ReduceOp.L1_FIRST if i == n - 1 else ReduceOp.SHIFT_ADD
            body.append(op(Opcode.SHIFT_ACC, imm=imm.value, a=scratch[i]))
        return body

    def lanes(self, model) -> AbsDiffLanes:
        return AbsDiffLanes(model._ones)


register_route(AbsDiff())
