"""Reference behaviour of one MTJ array (subarray of MRAM cells) with its write semantics.

The state is a ``[rows, columns]`` array of *logical* bits. NAND-SPIN's complementary storage
(seed 001 Table 1: AP = logic 0, P = logic 1) is undone here: erase gives 0, program gives 1.
Nothing here knows about clocks; :class:`MtjArray` is the state, its methods are the commands.

Write semantics per technology
------------------------------
``stt`` (1T1MTJ, seed 000), ``sot`` (2T1R, seed 002, written through its separate write path
WWL/WBL) and ``imac`` (SOT-MRAM, seed 003): :meth:`MtjArray.write` writes ``data`` into one row
in the columns selected by ``mask`` (bipolar per-bit write: 0 and 1 both possible). The logical
result is the same for all three. ``erase`` and ``program`` are not supported.

``nand_spin`` (seed 001): the ``mtjs_per_strip`` MTJs of one column that share a heavy-metal
strip are the consecutive rows ``s*m .. s*m + m - 1`` of *strip* ``s`` (``m`` =
``mtjs_per_strip``; row ``r`` lies in strip ``r // m``, in slot ``r % m``). A row of NAND-SPIN
devices is therefore ``m`` consecutive rows across all columns, written by one erase and ``m``
programs (seed 001 section 3.2: 128 x 8 bits).

* :meth:`MtjArray.erase` (SOT): every MTJ of the strip holding ``row`` goes to AP = 0, in the
  columns of ``mask``.
* :meth:`MtjArray.program` (STT): in the columns of ``mask``, a 1 in ``data`` switches the MTJ
  of ``row`` to P = 1; a 0 leaves it as it is (no current, seed 001: "the MTJ maintains the AP
  state"). A program can only move AP -> P: ``bit |= data & mask``.
* ``write`` is not supported.

Program without erase. Each cell has a *programmed* flag: set by a program of its row in its
column (``mask`` 1, whatever the data bit), cleared by an erase of its strip in its column, and
set for every cell at power-up (a cell never erased can not be trusted to be AP). A program
raises ``program_without_erase[c]`` for each masked column ``c`` whose cell at ``row`` is
already *programmed*: its row was programmed before since the last erase of its strip, or the
strip was never erased. The write still happens (bits can only go to 1), so ``program 0b1010``
then ``program 0b0101`` without an erase flags every masked column and leaves ``0b1111``.

Every write command returns a :class:`WriteStatus`; ``error`` is set, and nothing changes,
when the technology does not support the command or ``row`` is not in ``[0, rows)``.

Reads (all technologies, as the sense amplifier sees them; see also :func:`golden.pim.sense`):
``read`` (1-row), ``and2`` / ``or2`` (2-row activation, seed 002), ``and_fu`` (row AND the
operand on FU, seed 001 Table 1). A row address outside ``[0, rows)`` senses as all 0.

Fault model (device variation on sensing; off by default)
---------------------------------------------------------
Each column ``c`` has its own 32-bit Fibonacci LFSR, polynomial ``x^32 + x^7 + x^6 + x^2 + 1``
(primitive, so maximal length; taps at state bits 31, 29, 25, 24). One *step* shifts the state
left by one and inserts ``s[31] ^ s[29] ^ s[25] ^ s[24]`` as the new bit 0. Loading seed ``S``
sets column ``c`` to ``(S ^ (c * 0x9E3779B9)) mod 2**32``, except that the all-zero lock-up
state becomes 1. On every sensing with faults enabled, every column's LFSR advances
:data:`LFSR_STEPS_PER_SENSE` = 16 steps, and the column's sensed bit (the sense amplifier's
output, after AND/OR) is inverted when the low 16 bits of the new state, an unsigned integer,
are below the *threshold*. The threshold is the flip probability in units of 2**-16:
``threshold = min(floor(p * 65536 + 1/2), 65535)`` (:func:`rate_to_threshold`); 0 never flips.
With faults disabled the LFSRs hold. Writes are not faulted here (``write_fault_rate`` is not
modelled by the array).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = [
    "TECHNOLOGIES", "COMMANDS", "SENSE_COMMANDS", "WRITE_COMMANDS",
    "LFSR_BITS", "LFSR_TAPS", "LFSR_STEPS_PER_SENSE", "FAULT_THRESHOLD_BITS",
    "COLUMN_SEED_STRIDE",
    "supported_write_commands", "rate_to_threshold", "lfsr_column_seeds", "lfsr_step",
    "fault_flips", "WriteStatus", "MtjArray",
]

#: Cell technologies, with their write commands (:func:`supported_write_commands`).
TECHNOLOGIES = ("stt", "nand_spin", "sot", "imac")
#: Commands that sense rows (the others write or do nothing).
SENSE_COMMANDS = ("read", "and_fu", "and2", "or2")
WRITE_COMMANDS = ("write", "erase", "program")
COMMANDS = ("nop",) + SENSE_COMMANDS + WRITE_COMMANDS

#: Width of each column's fault LFSR, and its taps (state bit indices XORed into the new bit 0):
#: x^32 + x^7 + x^6 + x^2 + 1 (primitive). Every tap lies at least 16 bits away from bit 0, so
#: the 16 bits of one sensing depend only on the previous state (a cheap leap in hardware).
LFSR_BITS = 32
LFSR_TAPS = (31, 29, 25, 24)
#: LFSR steps per faulted sensing: the compared value is made of fresh bits only.
LFSR_STEPS_PER_SENSE = 16
#: Width of the flip threshold: a probability in units of 2**-16.
FAULT_THRESHOLD_BITS = 16
#: Column c's seed is the loaded seed XOR c * this (mod 2**32); 0 becomes 1.
COLUMN_SEED_STRIDE = 0x9E3779B9

_MASK32 = (1 << LFSR_BITS) - 1


def supported_write_commands(technology: str) -> tuple[str, ...]:
    """Write commands the technology supports: ``erase``/``program`` or ``write``."""
    if technology not in TECHNOLOGIES:
        raise ValueError(f"technology must be one of {', '.join(TECHNOLOGIES)}, "
                         f"not {technology!r}")
    return ("erase", "program") if technology == "nand_spin" else ("write",)


def rate_to_threshold(p) -> int:
    """Flip probability ``p`` in [0, 1) as a 16-bit threshold: ``min(floor(p*65536 + 1/2),
    65535)``."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise ValueError(f"p must be a probability in [0, 1), not {p!r}")
    return min(int(p * (1 << FAULT_THRESHOLD_BITS) + 0.5), (1 << FAULT_THRESHOLD_BITS) - 1)


def lfsr_column_seeds(seed: int, columns: int) -> np.ndarray:
    """Initial LFSR state of every column for ``seed``: uint64 array of 32-bit states."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) \
            or not 0 <= seed <= _MASK32:
        raise ValueError(f"seed must be an int in [0, 2**32), not {seed!r}")
    c = np.arange(columns, dtype=np.uint64)
    k = (c * np.uint64(COLUMN_SEED_STRIDE)) & np.uint64(_MASK32)
    s = np.uint64(seed) ^ k
    return np.where(s == 0, np.uint64(1), s).astype(np.uint64)


def lfsr_step(states) -> np.ndarray:
    """One step of every column's LFSR (shift left, feedback into bit 0)."""
    s = np.asarray(states, dtype=np.uint64)
    fb = np.zeros_like(s)
    for t in LFSR_TAPS:
        fb ^= (s >> np.uint64(t)) & np.uint64(1)
    return ((s << np.uint64(1)) | fb) & np.uint64(_MASK32)


def fault_flips(states, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Advance every LFSR by one sensing; return ``(new_states, flips)``, flips uint8 0/1."""
    s = np.asarray(states, dtype=np.uint64)
    for _ in range(LFSR_STEPS_PER_SENSE):
        s = lfsr_step(s)
    low = s & np.uint64((1 << FAULT_THRESHOLD_BITS) - 1)
    return s, (low < np.uint64(threshold)).astype(np.uint8)


class WriteStatus(NamedTuple):
    """Response of a write command: per-column program-without-erase flags, and ``error``."""
    program_without_erase: np.ndarray
    error: bool


class MtjArray:
    """The bits of one MTJ array, its write commands, sensing, and the fault LFSRs.

    Parameters
    ----------
    rows, columns : int
        Array size (positive).
    technology : str
        One of :data:`TECHNOLOGIES`.
    mtjs_per_strip : int
        Rows per heavy-metal strip (``nand_spin``; a positive divisor of ``rows``); 1 otherwise.
    fault_seed : int
        Seed of the fault LFSRs at power-up and after :meth:`reset`, in [0, 2**32).
    fault_threshold : int
        Flip threshold at power-up and after :meth:`reset`, in [0, 2**16).

    Power-up state: every bit 0, every cell *programmed* (never erased), LFSRs from
    ``fault_seed``, threshold ``fault_threshold``.
    """

    def __init__(self, *, rows: int, columns: int, technology: str, mtjs_per_strip: int = 1,
                 fault_seed: int = 0, fault_threshold: int = 0):
        for name, v in (("rows", rows), ("columns", columns), ("mtjs_per_strip", mtjs_per_strip)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive int, not {v!r}")
        supported_write_commands(technology)
        if technology == "nand_spin":
            if rows % mtjs_per_strip:
                raise ValueError(f"mtjs_per_strip must divide rows={rows}, "
                                 f"not {mtjs_per_strip!r}")
        elif mtjs_per_strip != 1:
            raise ValueError(f"mtjs_per_strip must be 1 for technology {technology!r}, "
                             f"not {mtjs_per_strip!r}")
        self._check_threshold(fault_threshold)
        lfsr_column_seeds(fault_seed, 1)
        self.rows, self.columns, self.technology = rows, columns, technology
        self.mtjs_per_strip = mtjs_per_strip
        self.default_fault_seed, self.default_fault_threshold = fault_seed, fault_threshold
        self.bits = np.zeros((rows, columns), dtype=np.uint8)
        self.programmed = np.ones((rows, columns), dtype=np.uint8)
        self.reset()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _check_threshold(threshold):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) \
                or not 0 <= threshold < (1 << FAULT_THRESHOLD_BITS):
            raise ValueError(f"fault_threshold must be an int in [0, 65536), not {threshold!r}")

    def _vec(self, name, v, default):
        if v is None:
            return np.full(self.columns, default, dtype=np.uint8)
        a = np.asarray(v)
        if a.shape != (self.columns,) or a.dtype.kind not in "biu" or \
                (a.size and (a.min() < 0 or a.max() > 1)):
            raise ValueError(f"{name} must be {self.columns} bits 0/1, not {v!r}")
        return a.astype(np.uint8)

    def _in_range(self, row) -> bool:
        return 0 <= int(row) < self.rows

    def strip_of(self, row: int) -> int:
        """Strip (erase unit) holding ``row``: ``row // mtjs_per_strip``."""
        return int(row) // self.mtjs_per_strip

    def strip_rows(self, strip: int) -> range:
        """The rows sharing heavy-metal strip ``strip``."""
        m = self.mtjs_per_strip
        return range(strip * m, (strip + 1) * m)

    def row(self, row: int) -> np.ndarray:
        """The stored bits of ``row`` (all 0 outside ``[0, rows)``), no faults."""
        if not self._in_range(row):
            return np.zeros(self.columns, dtype=np.uint8)
        return self.bits[int(row)].copy()

    def _status(self, flags=None, error=False) -> WriteStatus:
        if flags is None:
            flags = np.zeros(self.columns, dtype=np.uint8)
        return WriteStatus(flags, error)

    def _refuse(self, command, row) -> bool:
        return command not in supported_write_commands(self.technology) \
            or not self._in_range(row)

    # -- fault LFSRs ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Reset of the periphery: LFSRs and threshold back to their defaults (bits kept)."""
        self.load_faults(self.default_fault_seed, self.default_fault_threshold)

    def load_faults(self, seed: int, threshold: int) -> None:
        """Load every column's LFSR from ``seed`` and the flip threshold."""
        self._check_threshold(threshold)
        self.lfsr = lfsr_column_seeds(seed, self.columns)
        self.threshold = int(threshold)

    # -- commands ------------------------------------------------------------------------------

    def write(self, row: int, data, mask=None) -> WriteStatus:
        """``stt`` / ``sot`` / ``imac``: ``bits[row] = data`` in the columns of ``mask``."""
        data, mask = self._vec("data", data, 0), self._vec("mask", mask, 1)
        if self._refuse("write", row):
            return self._status(error=True)
        r = int(row)
        self.bits[r] = np.where(mask == 1, data, self.bits[r])
        return self._status()

    def erase(self, row: int, mask=None) -> WriteStatus:
        """``nand_spin``: the strip holding ``row`` to AP = 0 in the columns of ``mask``."""
        mask = self._vec("mask", mask, 1)
        if self._refuse("erase", row):
            return self._status(error=True)
        rows = list(self.strip_rows(self.strip_of(row)))
        cols = mask == 1
        for r in rows:
            self.bits[r, cols] = 0
            self.programmed[r, cols] = 0
        return self._status()

    def program(self, row: int, data, mask=None) -> WriteStatus:
        """``nand_spin``: a 1 in ``data`` switches ``row`` to P = 1 in the columns of ``mask``;
        flags masked columns whose cell was programmed since its strip's last erase."""
        data, mask = self._vec("data", data, 0), self._vec("mask", mask, 1)
        if self._refuse("program", row):
            return self._status(error=True)
        r = int(row)
        flags = (self.programmed[r] & mask).astype(np.uint8)
        self.bits[r] |= data & mask
        self.programmed[r] |= mask
        return self._status(flags)

    def sense(self, mode: str, row_a: int, row_b: int = 0, fu=None, *,
              fault_en: bool = False) -> np.ndarray:
        """Sense-amplifier output per column; with ``fault_en`` the LFSRs advance and flip."""
        a, b = self.row(row_a), self.row(row_b)
        if mode == "read":
            out = a
        elif mode == "and_fu":
            out = a & self._vec("fu", fu, 1)
        elif mode == "and2":
            out = a & b
        elif mode == "or2":
            out = a | b
        else:
            raise ValueError(f"mode must be one of {', '.join(SENSE_COMMANDS)}, not {mode!r}")
        if fault_en:
            self.lfsr, flips = fault_flips(self.lfsr, self.threshold)
            out = out ^ flips
        return out.astype(np.uint8)

    def command(self, cmd: str, *, row_a: int = 0, row_b: int = 0, data=None, mask=None,
                fu=None, fault_en: bool = False):
        """Dispatch one macro command: a sense result (array), a :class:`WriteStatus`, or
        ``None`` for ``nop``."""
        if cmd == "nop":
            return None
        if cmd in SENSE_COMMANDS:
            return self.sense(cmd, row_a, row_b, fu, fault_en=fault_en)
        if cmd == "write":
            return self.write(row_a, data, mask)
        if cmd == "erase":
            return self.erase(row_a, mask)
        if cmd == "program":
            return self.program(row_a, data, mask)
        raise ValueError(f"cmd must be one of {', '.join(COMMANDS)}, not {cmd!r}")
