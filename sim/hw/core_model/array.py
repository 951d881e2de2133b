"""The mat's MTJ arrays with their sense amplifiers and fault LFSRs (``rtl.mtj_array``,
``rtl.sense_amp``, K subarrays in lock-step held as one row of W = K * C columns) and the
weight buffer that drives their FU line and write data: the S1 of ``rtl.core.Core``. Rows are
Python ints (column g at bit g). :class:`ArrayStage` has the host's array commands and buffer
writes, the write micro-ops (WRITE_ROW / ERASE / PROGRAM, their data source chosen as the core's
write multiplexer does), and the sensing faults, kept bit-sliced (32 row ints, plane j bit j of
every column's LFSR state). The cells, their write rules and the fault LFSRs are one
``golden.array.MtjArray`` (bit-packed rows), the semantics golden's callers use too; the
per-micro-op loop reads its packed rows directly for the one-row and two-row senses.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from golden.array import MtjArray, pack_row, supported_write_commands, unpack_row
from rtl.isa import Opcode, WriteSrc
from rtl.mtj_array import FAULT_THRESHOLD_BITS, LFSR_BITS, MacroCmd, rate_to_threshold

__all__ = ["ArrayResponse", "FaultState", "ArrayStage"]

_WRITE_ROW = Opcode.WRITE_ROW.value
_SRC_BUFFER, _SRC_TBUF = WriteSrc.BUFFER.value, WriteSrc.TBUF.value
_SRC_TBUF_ZS = WriteSrc.TBUF_ZS.value
_SRC_XW = WriteSrc.BIT_COUNTER_XW.value
_SRC_XWM = WriteSrc.BIT_COUNTER_XWM.value
#: The array's write commands in ``golden.array``'s words.
_WRITE_NAMES = {MacroCmd.WRITE: "write", MacroCmd.ERASE: "erase", MacroCmd.PROGRAM: "program"}


class ArrayResponse(NamedTuple):
    """What the array answers to a host write command (``rtl.mtj_array.MacroSignature``)."""
    error: bool
    program_without_erase: np.ndarray   # bool [columns]


class FaultState(NamedTuple):
    """The array's sensing-fault state (:attr:`CoreModel.fault_state`): ``enabled``
    (``fault_en``), the flip ``threshold`` (units of 2**-16) and every mat column's LFSR state
    (``lfsr``, uint64 [W] of 32-bit values, as ``golden.array.lfsr_column_seeds`` /
    ``fault_flips`` hold them)."""
    enabled: bool
    threshold: int
    lfsr: np.ndarray




class ArrayStage:
    """The array and weight-buffer part of :class:`~sim.hw.core_model.CoreModel`."""

    def _init_array(self, cfg) -> None:
        """The mat (``golden.array.MtjArray`` of ``rows x W`` cells, its write and fault
        semantics: power-up 0, NAND-SPIN cells count as programmed until their strip is
        erased), the buffer, the fault state (off, the RTL's reset values)."""
        self._mat = mat = MtjArray(
            rows=cfg.rows, columns=self.columns, technology=cfg.technology,
            mtjs_per_strip=cfg.mtjs_per_strip, fault_seed=cfg.fault_seed,
            fault_threshold=rate_to_threshold(cfg.read_fault_rate))
        self._array_writes = supported_write_commands(cfg.technology)
        # The packed rows, and the mat's packed commands, as the per-micro-op loop uses them.
        self._cells = mat.cells
        self._write_command = mat.write_command
        self._fault_flips = mat.fault_flip_row      # one faulted sensing: the flip mask
        self._buffer = [0] * self.buffer_slots
        # Array response to the latest write command.
        self._array_failed = False
        self._fault_en = False

    def write_buffer(self, slot: int, bits) -> None:
        """Write weight-buffer word ``slot`` (bool [W] or int)."""
        if not 0 <= slot < self.buffer_slots:
            raise ValueError(f"slot must be in [0, {self.buffer_slots}), not {slot}")
        self._buffer[slot] = pack_row(bits, self.columns)


    def set_faults(self, *, enable: bool, seed: int = 0, threshold: int = 0) -> None:
        """The array's sensing faults, as ``sim.flows.rtl_backend.CoreHost.set_faults`` drives them:
        reload every mat column's LFSR from ``seed`` (column ``g``: ``seed ^ g * 0x9E3779B9``
        mod 2**32, 0 becomes 1) and the flip threshold (probability in units of 2**-16,
        ``golden.array.rate_to_threshold``), then turn faults on or off.

        Raises
        ------
        TypeError, ValueError
            ``seed`` not an int in [0, 2**32) or ``threshold`` not an int in [0, 2**16).
        """
        for name, v, bits in (("seed", seed, LFSR_BITS), ("threshold", threshold,
                                                          FAULT_THRESHOLD_BITS)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{name} must be an int, not {v!r}")
            if not 0 <= v < 1 << bits:
                raise ValueError(f"{name} must be in [0, 2**{bits}), not {v!r}")
        self._load_faults(int(seed), int(threshold))
        self._fault_en = bool(enable)

    @property
    def fault_state(self) -> FaultState:
        """Whether faults are on, the threshold and every mat column's LFSR state."""
        return FaultState(self._fault_en, self._mat.threshold, self._mat.lfsr)

    def array_command(self, cmd, row: int, data=None, mask=None) -> ArrayResponse:
        """One array command from the host while idle (``rtl.mtj_array.MacroCmd``), to the
        whole mat row (W columns).

        WRITE (stt / sot / imac) sets the masked columns of ``row`` to ``data``; ERASE
        (nand_spin) clears the masked columns of ``row``'s strip; PROGRAM (nand_spin) ORs
        ``data & mask`` into ``row`` and reports the masked cells already programmed since
        their strip's last erase. A write the technology does not support, or a ``row`` not
        below ``rows``, is ignored with ``error``. Sense commands and NOP change nothing the
        host can see (a sense command with faults on advances the fault LFSRs, as in the
        array). ``data`` / ``mask``: bool [W] or int; default 0 / all ones. An error or
        a program-without-erase sets the core's sticky error.
        """
        cmd = MacroCmd(cmd)
        if not 0 <= row <= self._row_mask:
            raise ValueError(f"row must be in [0, {self._row_mask}] (the port's width), "
                             f"not {row}")
        data = 0 if data is None else pack_row(data, self.columns)
        mask = self._ones if mask is None else pack_row(mask, self.columns)
        if cmd not in (MacroCmd.WRITE, MacroCmd.ERASE, MacroCmd.PROGRAM):
            if self._fault_en and cmd is not MacroCmd.NOP:
                self._fault_flips()
            return ArrayResponse(False, np.zeros(self.columns, dtype=bool))
        err, pwe, why = self._array_write(cmd, row, data, mask)
        if self._zs and cmd is not MacroCmd.ERASE and row < self.rows:
            self._zflags[row] = False           # only a TBUF_ZS micro-op sets a zero flag
        if why:
            self._fail(f"host {cmd.name} row {row}: {why}")
        return ArrayResponse(err, unpack_row(pwe, self.columns))

    def read_row(self, row: int) -> np.ndarray:
        """The cells of ``row`` (a backdoor for tests), bool [W]."""
        return unpack_row(self._cells[row], self.columns)


    def read_buffer(self, slot: int) -> np.ndarray:
        """Weight-buffer word ``slot``, bool [W]."""
        return unpack_row(self._buffer[slot], self.columns)


    def _load_faults(self, seed: int, threshold: int) -> None:
        """``fault_load``: every mat column's LFSR from ``seed``, the threshold
        (``golden.array.MtjArray.load_faults``)."""
        self._mat.load_faults(seed, threshold)

    def _array_write(self, cmd, row, data, mask):
        """Apply a write command to the cells (``golden.array.MtjArray.write_command``).
        Returns (error, pwe bits, why-or-'')."""
        err, pwe = self._write_command(_WRITE_NAMES[cmd], row, data, mask)
        if err:
            self._array_failed = True
            if _WRITE_NAMES[cmd] not in self._array_writes:
                return True, 0, (f"{cmd.name} is not a write of technology "
                                 f"{self.config.technology!r}")
            return True, 0, f"row {row} is not below rows={self.rows}"
        self._array_failed = bool(pwe)
        if pwe:
            cols = [k for k in range(self.columns) if pwe >> k & 1]
            shown = ", ".join(map(str, cols[:8])) + (", ..." if len(cols) > 8 else "")
            return False, pwe, (f"PROGRAM hit cells programmed since their strip's last erase "
                                f"(columns {shown})")
        return False, 0, ""

    def _array_command(self, cmd, ra, data, code, a, c, mask=None) -> None:
        """A write command of a micro-op (``ra`` the row operand as the port truncates it;
        ``mask`` the columns written, default all)."""
        if ra < self.rows:
            _, _, why = self._array_write(cmd, ra, data,
                                          self._ones if mask is None else mask)
        else:
            self._array_failed = True
            why = f"row {ra} is not below rows={self.rows}"
        if why:
            self._fail(f"cycle {c}: {Opcode(code).name} row {a}: {why}")


    def _write_step(self):
        """The write micro-ops' S1 (WRITE_ROW / PROGRAM): ``write(code, imm, a, ra, b, c, d)``
        picks the data by ``imm`` (``WriteSrc``: the buffer word at slot b, a lane's output,
        transpose-buffer plane b) and the columns (a lane's source may write some only;
        ``BIT_COUNTER_XWM`` the lanes j whose lane ``(j + b) mod lanes`` of buffer slot d is
        set), and issues the array command; a closure over this run's tables (``_execute``)."""
        buf = self._buffer
        slots = self.buffer_slots
        n = self._n
        plane_mask = (1 << max(1, (n - 1).bit_length())) - 1
        lane_srcs, lane_masks, ones = self._lane_srcs, self._lane_masks, self._ones
        lanes = ones.bit_length()
        zs = self._zs
        fail = self._fail

        def write(code, imm, a, ra, b, c, d=0):
            wmask = self._en               # a lane's source may write some columns only
            # (and MOVE SUBSEL's disabled subarrays none)
            b_issued = b                   # (b is cut to the plane port's width below)
            if imm in (_SRC_XW, _SRC_XWM) and imm in lane_srcs:  # Fig. 10's cross-write
                if b >= lanes:
                    fail(f"cycle {c}: {Opcode(code).name} {WriteSrc(imm).name} b={b} is not "
                         f"below the {lanes} lanes")
                data = lane_srcs[imm](c, b)    # b beyond the lanes: as the RTL's shifter
                if imm == _SRC_XWM:            # the mask, rotated as the data
                    if d >= slots:
                        fail(f"cycle {c}: {Opcode(code).name} BIT_COUNTER_XWM mask slot d={d} "
                             f"is not below buffer_slots={slots}")
                    mw = buf[d & (slots - 1)]
                    wmask &= ((mw | mw << lanes) >> b) & ones
            elif imm == _SRC_BUFFER or imm in lane_srcs:
                if b >= slots:
                    fail(f"cycle {c}: {Opcode(code).name} slot b={b} is not below "
                         f"buffer_slots={slots}")
                if imm in lane_srcs:       # a lane's output, as at the start of cycle c
                    data = lane_srcs[imm](c)
                    wmask &= lane_masks.get(imm, ones)
                else:
                    data = buf[b & (slots - 1)]
            elif imm == _SRC_TBUF or (zs and imm == _SRC_TBUF_ZS):
                if b >= n:
                    fail(f"cycle {c}: {Opcode(code).name} transpose-buffer plane "
                         f"b={b} is not below operand_bits={n}")
                    b &= plane_mask
                data = self._tbuf_planes_at(c)[b] if b < n else 0
            else:                          # the core writes the buffer word at slot b
                fail(f"cycle {c}: {Opcode(code).name} imm={imm} is not a WriteSrc "
                     f"of this core (" + ", ".join(
                         WriteSrc(v).name for v in sorted(lane_srcs.keys() | {
                             _SRC_BUFFER, _SRC_TBUF})) + ")")
                data = buf[b & (slots - 1)]
            if zs:                         # a tile starts at plane 0 of the whole b
                self._zs_write(imm, a, b_issued, c)
            if code == _WRITE_ROW:
                cmd = MacroCmd.WRITE
                self._writes += 1
                self._bits_written += wmask.bit_count()
            else:
                cmd = MacroCmd.PROGRAM
                self._programs += 1
                self._bits_programmed += (data & wmask).bit_count()
            self._array_command(cmd, ra, data, code, a, c, wmask)

        return write
