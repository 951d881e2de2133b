"""Reference behaviour of one MTJ array (subarray of MRAM cells) with its write semantics.

The state is a ``[rows, columns]`` array of *logical* bits. NAND-SPIN's complementary storage
(seed 001 Table 1: AP = logic 0, P = logic 1) is undone here: erase gives 0, program gives 1.
Nothing here knows about clocks; :class:`MtjArray` is the state, its methods are the commands.

Rows are bit-packed: a row is a Python ``int`` with column ``c`` at bit ``c``
(:func:`pack_row`, :func:`unpack_row`), so a command acts on every column at once with bitwise
operators. The packed commands (:meth:`MtjArray.write_command`, :meth:`MtjArray.sense_row`,
:meth:`MtjArray.fault_flip_row`) are the semantics; the array-valued ones (``write``,
``erase``, ``program``, ``sense``, ``command``) convert 0/1 vectors and call them. The
cycle-exact model of the core (``sim.hw.core_model``) holds its mat in one :class:`MtjArray` and
uses the packed commands.

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
    "fault_flips", "pack_row", "unpack_row", "WriteStatus", "MtjArray",
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

    Attributes
    ----------
    cells : list of int
        Row ``r``'s bits, packed (column ``c`` at bit ``c``).
    marks : list of int
        Row ``r``'s *programmed* flags, packed.
    lfsr_planes : list of int
        The fault LFSRs bit-sliced: plane ``j`` (32 of them) holds bit ``j`` of every column's
        state, packed (:attr:`lfsr` gives the states per column).
    threshold : int
        The flip threshold.
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
        self._ones = (1 << columns) - 1
        self._writes = supported_write_commands(technology)
        self.cells = [0] * rows
        self.marks = [self._ones] * rows
        self.reset()

    # -- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _check_threshold(threshold):
        if isinstance(threshold, bool) or not isinstance(threshold, (int, np.integer)) \
                or not 0 <= threshold < (1 << FAULT_THRESHOLD_BITS):
            raise ValueError(f"fault_threshold must be an int in [0, 65536), not {threshold!r}")

    def _vec(self, name, v, default):
        """A 0/1 vector argument of the array-valued commands, packed."""
        if v is None:
            return self._ones if default else 0
        a = np.asarray(v)
        if a.shape != (self.columns,) or a.dtype.kind not in "biu" or \
                (a.size and (a.min() < 0 or a.max() > 1)):
            raise ValueError(f"{name} must be {self.columns} bits 0/1, not {v!r}")
        return pack_row(a, self.columns)

    def _unpack(self, value: int) -> np.ndarray:
        return unpack_row(value, self.columns).astype(np.uint8)

    def _in_range(self, row) -> bool:
        return 0 <= int(row) < self.rows

    @property
    def bits(self) -> np.ndarray:
        """The stored bits, uint8 ``[rows, columns]`` (a copy)."""
        return np.array([self._unpack(v) for v in self.cells], dtype=np.uint8)

    @property
    def programmed(self) -> np.ndarray:
        """The *programmed* flags, uint8 ``[rows, columns]`` (a copy)."""
        return np.array([self._unpack(v) for v in self.marks], dtype=np.uint8)

    def strip_of(self, row: int) -> int:
        """Strip (erase unit) holding ``row``: ``row // mtjs_per_strip``."""
        return int(row) // self.mtjs_per_strip

    def strip_rows(self, strip: int) -> range:
        """The rows sharing heavy-metal strip ``strip``."""
        m = self.mtjs_per_strip
        return range(strip * m, (strip + 1) * m)

    def row(self, row: int) -> np.ndarray:
        """The stored bits of ``row`` (all 0 outside ``[0, rows)``), no faults."""
        return self._unpack(self.cells[int(row)] if self._in_range(row) else 0)

    # -- fault LFSRs ---------------------------------------------------------------------------

    def reset(self) -> None:
        """Reset of the periphery: LFSRs and threshold back to their defaults (bits kept)."""
        self.load_faults(self.default_fault_seed, self.default_fault_threshold)

    def load_faults(self, seed: int, threshold: int) -> None:
        """Load every column's LFSR from ``seed`` and the flip threshold."""
        self._check_threshold(threshold)
        states = lfsr_column_seeds(seed, self.columns)
        self.lfsr_planes = [pack_row((states >> np.uint64(j)) & np.uint64(1), self.columns)
                            for j in range(LFSR_BITS)]
        self.threshold = int(threshold)

    @property
    def lfsr(self) -> np.ndarray:
        """Every column's LFSR state, uint64 [columns] of 32-bit values (as
        :func:`lfsr_column_seeds` and :func:`fault_flips` hold them)."""
        states = np.zeros(self.columns, dtype=np.uint64)
        for j, plane in enumerate(self.lfsr_planes):
            states |= unpack_row(plane, self.columns).astype(np.uint64) << np.uint64(j)
        return states

    def fault_flip_row(self) -> int:
        """One faulted sensing: advance every column's LFSR by :data:`LFSR_STEPS_PER_SENSE`
        steps and return the columns whose sensed bit flips, packed (:func:`fault_flips` for
        all columns at once).

        Every tap ``t`` is at least 15 bits above bit 0, so the 16 new bits are XORs of current
        bits only: new bit ``j`` (bit 0 the newest) is the XOR over the taps of bit
        ``t - 15 + j``, and the state after the steps is the fresh bits below the old low 16.
        The flip is ``fresh < threshold``, an unsigned 16-bit compare done plane by plane from
        the MSB.
        """
        k = LFSR_STEPS_PER_SENSE
        planes = self.lfsr_planes
        fresh = []
        for j in range(k):
            f = 0
            for t in LFSR_TAPS:
                f ^= planes[t - k + 1 + j]
            fresh.append(f)
        self.lfsr_planes = fresh + planes[:LFSR_BITS - k]
        thr, ones = self.threshold, self._ones
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

    # -- commands, packed (the semantics) ------------------------------------------------------

    def write_command(self, cmd: str, row: int, data: int = 0, mask: int | None = None) \
            -> tuple[bool, int]:
        """One write command (``write``, ``erase`` or ``program``) on packed rows: ``data`` and
        ``mask`` are ints of ``columns`` bits (not checked; ``mask`` default all columns).
        Returns ``(error, program_without_erase)``, the flags packed; with ``error`` (the
        technology does not support ``cmd`` or ``row`` is not in ``[0, rows)``) nothing
        changes."""
        if cmd not in self._writes or not 0 <= row < self.rows:
            return True, 0
        if mask is None:
            mask = self._ones
        cells = self.cells
        if cmd == "write":
            cells[row] = (cells[row] & ~mask) | (data & mask)
            return False, 0
        marks = self.marks
        if cmd == "erase":
            m = self.mtjs_per_strip
            first = row - row % m
            keep = ~mask
            for r in range(first, first + m):
                cells[r] &= keep
                marks[r] &= keep
            return False, 0
        pwe = marks[row] & mask
        cells[row] |= data & mask
        marks[row] |= mask
        return False, pwe

    def sense_row(self, mode: str, row_a: int, row_b: int = 0, fu: int | None = None) -> int:
        """The sense amplifiers' output, packed, without faults: ``read`` row a, ``and_fu`` row
        a AND ``fu`` (packed, default all ones), ``and2`` / ``or2`` rows a and b. A row outside
        ``[0, rows)`` senses as 0."""
        rows, cells = self.rows, self.cells
        a = cells[row_a] if 0 <= row_a < rows else 0
        if mode == "read":
            return a
        if mode == "and_fu":
            return a & (self._ones if fu is None else fu)
        b = cells[row_b] if 0 <= row_b < rows else 0
        if mode == "and2":
            return a & b
        if mode == "or2":
            return a | b
        raise ValueError(f"mode must be one of {', '.join(SENSE_COMMANDS)}, not {mode!r}")

    # -- commands, on 0/1 vectors --------------------------------------------------------------

    def _status(self, error: bool, flags: int) -> WriteStatus:
        return WriteStatus(self._unpack(flags), error)

    def write(self, row: int, data, mask=None) -> WriteStatus:
        """``stt`` / ``sot`` / ``imac``: ``bits[row] = data`` in the columns of ``mask``."""
        data, mask = self._vec("data", data, 0), self._vec("mask", mask, 1)
        err, flags = self.write_command("write", int(row), data, mask)
        return self._status(err, flags)

    def erase(self, row: int, mask=None) -> WriteStatus:
        """``nand_spin``: the strip holding ``row`` to AP = 0 in the columns of ``mask``."""
        mask = self._vec("mask", mask, 1)
        err, flags = self.write_command("erase", int(row), 0, mask)
        return self._status(err, flags)

    def program(self, row: int, data, mask=None) -> WriteStatus:
        """``nand_spin``: a 1 in ``data`` switches ``row`` to P = 1 in the columns of ``mask``;
        flags masked columns whose cell was programmed since its strip's last erase."""
        data, mask = self._vec("data", data, 0), self._vec("mask", mask, 1)
        err, flags = self.write_command("program", int(row), data, mask)
        return self._status(err, flags)

    def sense(self, mode: str, row_a: int, row_b: int = 0, fu=None, *,
              fault_en: bool = False) -> np.ndarray:
        """Sense-amplifier output per column; with ``fault_en`` the LFSRs advance and flip."""
        fu = self._vec("fu", fu, 1) if mode == "and_fu" else None
        out = self.sense_row(mode, int(row_a), int(row_b), fu)
        if fault_en:
            out ^= self.fault_flip_row()
        return self._unpack(out)

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
