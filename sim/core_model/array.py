"""The mat's MTJ arrays with their sense amplifiers and fault LFSRs (``rtl.mtj_array``,
``rtl.sense_amp``, K subarrays in lock-step held as one row of W = K * C columns) and the
weight buffer that drives their FU line and write data: the S1 of ``rtl.core.Core``. Rows are
Python ints (column g at bit g). :class:`ArrayStage` has the host's array commands and buffer
writes, the write micro-ops (WRITE_ROW / ERASE / PROGRAM, their data source chosen as the core's
write multiplexer does), and the sensing faults, kept bit-sliced (32 row ints, plane j bit j of
every column's LFSR state).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from golden.array import lfsr_column_seeds
from rtl.isa import Opcode, WriteSrc
from rtl.mtj_array import (
    FAULT_THRESHOLD_BITS, LFSR_BITS, LFSR_STEPS_PER_SENSE, LFSR_TAPS, MacroCmd,
)

__all__ = ["ArrayResponse", "FaultState", "pack_row", "unpack_row", "ArrayStage"]

_WRITE_ROW = Opcode.WRITE_ROW.value
_SRC_BUFFER, _SRC_TBUF = WriteSrc.BUFFER.value, WriteSrc.TBUF.value
_SRC_TBUF_ZS = WriteSrc.TBUF_ZS.value


def pack_row(bits, columns: int) -> int:
    """A row given as a bool / 0-1 array of ``columns`` entries (or an int) as an int with
    column k at bit k.

    Raises
    ------
    ValueError
        The array does not have ``columns`` entries, or the int does not fit ``columns`` bits.
    """
    if isinstance(bits, (int, np.integer)) and not isinstance(bits, bool):
        v = int(bits)
        if v < 0 or v >> columns:
            raise ValueError(f"a row as an int must be in [0, 2**{columns}), not {v}")
        return v
    a = np.asarray(bits)
    if a.shape != (columns,):
        raise ValueError(f"a row must have shape ({columns},), not {a.shape}")
    return int.from_bytes(np.packbits(a.astype(bool), bitorder="little").tobytes(), "little")


def unpack_row(value: int, columns: int) -> np.ndarray:
    """Inverse of :func:`pack_row`: bool [columns]."""
    nbytes = (columns + 7) // 8
    raw = np.frombuffer(int(value).to_bytes(nbytes, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:columns].astype(bool)


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
    """The array and weight-buffer part of :class:`~sim.core_model.CoreModel`."""

    def _init_array(self, cfg) -> None:
        """Cells (power-up 0; NAND-SPIN cells count as programmed until their strip is erased),
        buffer, fault state (off, the RTL's reset values)."""
        self._nand = cfg.technology == "nand_spin"
        self._strip = cfg.mtjs_per_strip
        self._cells = [0] * cfg.rows
        self._marks = [self._ones] * cfg.rows if self._nand else None
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
        """The array's sensing faults, as ``sim.rtl_backend.CoreHost.set_faults`` drives them:
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
        states = np.zeros(self.columns, dtype=np.uint64)
        for j, plane in enumerate(self._lfsr):
            states |= unpack_row(plane, self.columns).astype(np.uint64) << np.uint64(j)
        return FaultState(self._fault_en, self._threshold, states)

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
        """``fault_load``: LFSR planes from ``seed``, the threshold."""
        states = lfsr_column_seeds(seed, self.columns)
        self._lfsr = [pack_row((states >> np.uint64(j)) & np.uint64(1), self.columns)
                      for j in range(LFSR_BITS)]
        self._threshold = threshold

    def _fault_flips(self) -> int:
        """One faulted sensing: advance every LFSR by 16 steps; return the flip mask (a row).

        Every tap ``t`` is at least 15 bits above bit 0, so the 16 new bits are XORs of current
        bits only: new bit ``j`` (bit 0 the newest) is the XOR over the taps of bit
        ``t - 15 + j``, and the state after the steps is the fresh bits below the old low 16
        (``rtl.mtj_array._lfsr_fresh``). The flip is ``fresh < threshold``, an unsigned
        16-bit compare done plane by plane from the MSB.
        """
        k = LFSR_STEPS_PER_SENSE
        planes = self._lfsr
        fresh = []
        for j in range(k):
            f = 0
            for t in LFSR_TAPS:
                f ^= planes[t - k + 1 + j]
            fresh.append(f)
        self._lfsr = fresh + planes[:LFSR_BITS - k]
        thr, ones = self._threshold, self._ones
        lt, eq = 0, ones
        for j in range(FAULT_THRESHOLD_BITS - 1, -1, -1):
            if thr >> j & 1:
                lt |= eq & ~fresh[j]
                eq &= fresh[j]
            else:
                eq &= ~fresh[j]
            if not eq:
                break
        return lt & ones


    def _array_write(self, cmd, row, data, mask):
        """Apply a write command to the cells. Returns (error, pwe bits, why-or-'')."""
        tech = self.config.technology
        supported = (not self._nand) if cmd is MacroCmd.WRITE else self._nand
        if not supported:
            self._array_failed = True
            return True, 0, f"{cmd.name} is not a write of technology {tech!r}"
        if row >= self.rows:
            self._array_failed = True
            return True, 0, f"row {row} is not below rows={self.rows}"
        pwe = 0
        cells = self._cells
        if cmd is MacroCmd.WRITE:
            cells[row] = (cells[row] & ~mask) | (data & mask)
        elif cmd is MacroCmd.ERASE:
            first = row - row % self._strip
            keep = ~mask
            for r in range(first, first + self._strip):
                cells[r] &= keep
                self._marks[r] &= keep
        else:
            pwe = self._marks[row] & mask
            cells[row] |= data & mask
            self._marks[row] |= mask
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
        """The write micro-ops' S1 (WRITE_ROW / PROGRAM): ``write(code, imm, a, ra, b, c)``
        picks the data by ``imm`` (``WriteSrc``: the buffer word at slot b, a lane's output,
        transpose-buffer plane b) and the columns (a lane's source may write some only), and
        issues the array command; a closure over this run's tables (``_execute``)."""
        buf = self._buffer
        slots = self.buffer_slots
        n = self._n
        plane_mask = (1 << max(1, (n - 1).bit_length())) - 1
        lane_srcs, lane_masks, ones = self._lane_srcs, self._lane_masks, self._ones
        zs = self._zs
        fail = self._fail

        def write(code, imm, a, ra, b, c):
            wmask = ones                   # a lane's source may write some columns only
            b_issued = b                   # (b is cut to the plane port's width below)
            if imm == _SRC_BUFFER or imm in lane_srcs:
                if b >= slots:
                    fail(f"cycle {c}: {Opcode(code).name} slot b={b} is not below "
                         f"buffer_slots={slots}")
                if imm in lane_srcs:       # a lane's output, as at the start of cycle c
                    data = lane_srcs[imm](c)
                    wmask = lane_masks.get(imm, ones)
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
