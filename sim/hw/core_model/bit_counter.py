"""The per-column bit-counters of route ``nand_inmem`` (``rtl.bit_counter``, seed 001's
bit-counter primitives) as ``rtl.core.Core`` drives them: a BITCOUNT senses row a (ANDed with
buffer slot b if its ``imm`` says so) in S1, steps the counters in S2 (the lanes of
``sim.routes.nand_inmem.BitCounterLanes``) and writes its output (the sensed row, its inverse
or the counters' low bits) into buffer slot d; the core forwards that write to the next
micro-op's buffer read, which the model, playing micro-ops in order, gets for free.
"""

from __future__ import annotations

from rtl.bit_counter import (
    BITCOUNT_AND_FU, BITCOUNT_OUT_LSB, bitcount_senses, check_bitcount_imm,
)
from rtl.isa import Opcode

__all__ = ["BitCounterStage"]

_BITCOUNT = Opcode.BITCOUNT.value


class BitCounterStage:
    """The BITCOUNT micro-op of :class:`~sim.hw.core_model.CoreModel`."""

    def _bitcount(self, imm: int, a: int, b: int, d: int, c: int) -> None:
        """``BITCOUNT`` (``rtl.core.Core``, route ``nand_inmem``, ``imm`` as
        ``rtl.bit_counter.bitcount_imm``): senses row a (ANDed with buffer[b] if ``imm`` bit
        2) for COUNT or an out SA / NOT_SA; the counters step in S2
        (``sim.routes.nand_inmem.BitCounterLanes``) and the output multiplexer writes buffer
        slot d (the model plays micro-ops in order: the core's forwarding of that write)."""
        rows, slots = self.rows, self.buffer_slots
        if not check_bitcount_imm(imm):
            self._fail(f"cycle {c}: BITCOUNT imm={imm} is not a valid BITCOUNT imm "
                       f"(rtl.bit_counter.bitcount_imm: HOLD needs an out, AND_FU a sense)")
        and_fu, out = imm & BITCOUNT_AND_FU, imm >> BITCOUNT_OUT_LSB
        senses = bitcount_senses(imm)
        if and_fu and b >= slots:
            self._fail(f"cycle {c}: BITCOUNT slot b={b} is not below buffer_slots={slots}")
        if out and d >= slots:
            self._fail(f"cycle {c}: BITCOUNT out slot d={d} is not below buffer_slots={slots}")
        x = w = 0
        if senses:
            if a >= rows:
                self._fail(f"cycle {c}: BITCOUNT row a={a} is not below rows={rows}")
            ra = a & self._row_mask
            if and_fu:
                w = self._buffer[b & (slots - 1)]
                x = self._mat.sense_row("and_fu", ra, fu=w)
            else:
                x = self._mat.sense_row("read", ra)
            if self._fault_en:
                x ^= self._fault_flips()
        lanes = next(lm for lm in self._lanes if _BITCOUNT in lm.ops)
        lanes.ops[_BITCOUNT](imm, x, w, c)
        if out:
            self._buffer[d & (slots - 1)] = (x if out == 1 else (~x & self._ones) if out == 2
                                             else lanes.planes[0])
