"""Cycle-exact Python model of the accelerator core (``rtl.core.Core``, ``build/core_spec.md``).

:class:`CoreModel` has the host interface of the RTL core (weight buffer, requantization table,
array commands, program + start) and executes a program the way the core does: the reference
controller ``sim.isa_model.run_program`` gives the issued micro-ops, their resolved operands and
the cycle each is issued in, and the datapath model plays each micro-op through the three
pipeline stages:

* S1 (issue cycle c): the array command and the weight-buffer read (``buffer[b]``, also the FU
  line), written rows visible to a sense in c + 1;
* S2 (c + 1): the min lanes (``rtl.min_lane``) and abs-diff lanes (``rtl.abs_diff_lane``) on the
  sensed row and the registered buffer word;
* S3 (c + 2): the reduction unit (``rtl.column_reduce``) and the PPU (``rtl.ppu``).

Every register updates at the end of its cycle. The stages of consecutive micro-ops overlap, but
all state except one register is read and written by a single stage, in issue order, so playing
the micro-ops one after the other through S1, S2, S3 is exact. The exception is the abs-diff
lanes' ``out``: written at the end of the S2 cycle of an FS_STEP DIFF (issue c, visible from
c + 2 on) and read at the S1 of a WRITE_ROW / PROGRAM with ``imm`` bit 0. The model keeps the
last two values of ``out`` with the issue cycle of the DIFF that wrote the newer one, so a
write-back issued one cycle after its DIFF takes the older value, as the hardware does.

Rows are bit vectors of ``columns`` bits, column k at bit k. Inside the model a row is a Python
``int`` (bitwise operators act on all columns at once and ``int.bit_count`` is the column
popcount): this is the column-parallel vectorisation, at a fraction of the per-operation cost of
a small numpy array, and the loop in Python runs over micro-ops only. At the host interface rows
are numpy bool arrays ``[columns]`` (or ints).

Output words are returned as the RTL's ``out_rdata`` shows them: unsigned 32-bit ints. A
requantized activation is a value in [0, 255]; a logit is the two's complement of a signed
32-bit number (:func:`signed32`).

Sensing faults (``rtl.mtj_array``, ``golden.array``): :meth:`CoreModel.set_faults` is the core's
``fault_seed`` / ``fault_threshold`` / ``fault_load`` / ``fault_en``. While enabled, every sense
command the array sees (READ for READ / SHIFT_ACC / MIN_STEP / FS_STEP, AND_FU, AND2, OR2,
including one from the host) advances every column's 32-bit LFSR by 16 steps and inverts the
sensed bit of each column whose 16 fresh bits are below the threshold; nothing else moves the
LFSRs. The LFSRs are kept bit-sliced, as 32 row ints (plane ``j`` holds bit ``j`` of every
column's state), so one sensing is a few dozen column-parallel int operations.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from golden.array import lfsr_column_seeds
from rtl.column_reduce import ReduceOp
from rtl.config import check_config
from rtl.isa import Opcode, counter_names, decode
from rtl.mtj_array import (
    FAULT_THRESHOLD_BITS, LFSR_BITS, LFSR_STEPS_PER_SENSE, LFSR_TAPS, MacroCmd,
    rate_to_threshold,
)

from .isa_model import run_program

__all__ = ["CoreModel", "CoreRun", "ArrayResponse", "FaultState", "signed32", "pack_row",
           "unpack_row",
           "PPU_CLEAR", "PPU_EMIT", "PPU_NEG", "PPU_MODE_LSB", "MODE_REQUANT", "MODE_MAX4",
           "MODE_AVG4", "MODE_LOGIT", "CORE_OPS"]

# PPU immediate (rtl.ppu): bit 0 CLEAR, bit 1 EMIT, bit 2 NEG, bits 3-4 mode.
PPU_CLEAR = 1
PPU_EMIT = 2
PPU_NEG = 4
PPU_MODE_LSB = 3
MODE_REQUANT, MODE_MAX4, MODE_AVG4, MODE_LOGIT = 0, 1, 2, 3

#: Requant table field ranges (rtl.ppu: signed 16-bit multiplier, 6-bit shift, signed 48-bit
#: bias; golden.layers.requantize keeps the shift in [0, 46]).
_MULT_BITS, _SHIFT_BITS, _BIAS_BITS = 16, 6, 48
_OUT_BITS = 32
_POOL_BITS = 10

#: Micro-ops the core implements; every other datapath opcode sets ``error``.
CORE_OPS = frozenset({Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
                      Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.WRITE_ROW, Opcode.ERASE,
                      Opcode.PROGRAM, Opcode.REQUANT})
_BUFFER_OPS = frozenset({Opcode.AND_FU, Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.WRITE_ROW,
                         Opcode.PROGRAM})
_L1_FIRST = ReduceOp.L1_FIRST.value
# Opcode values, for the per-micro-op loop.
_CORE_CODES = frozenset(op.value for op in CORE_OPS)
_BUFFER_CODES = frozenset(op.value for op in _BUFFER_OPS)
_WRITE_CODES = frozenset(op.value for op in (Opcode.WRITE_ROW, Opcode.ERASE, Opcode.PROGRAM))
_REQUANT, _ERASE, _WRITE_ROW = Opcode.REQUANT.value, Opcode.ERASE.value, Opcode.WRITE_ROW.value
_AND_FU, _AND2, _OR2 = Opcode.AND_FU.value, Opcode.AND2.value, Opcode.OR2.value
_MIN_STEP, _FS_STEP = Opcode.MIN_STEP.value, Opcode.FS_STEP.value


def signed32(word: int) -> int:
    """An unsigned 32-bit output word as the signed number it holds (a logit)."""
    word &= (1 << _OUT_BITS) - 1
    return word - (1 << _OUT_BITS) if word >> (_OUT_BITS - 1) else word


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
    (``fault_en``), the flip ``threshold`` (units of 2**-16) and every column's LFSR state
    (``lfsr``, uint64 [columns] of 32-bit values, as ``golden.array.lfsr_column_seeds`` /
    ``fault_flips`` hold them)."""
    enabled: bool
    threshold: int
    lfsr: np.ndarray


class CoreRun(NamedTuple):
    """Result of :meth:`CoreModel.run`.

    ``out``: the output words written since start, ``out[0 : out_count]``, unsigned 32-bit.
    ``counters``: the controller's counters by name (``rtl.isa.counter_names``); ``cycles`` is
    the controller's busy time, the core is done ``PIPELINE_DRAIN`` cycles later.
    ``error``: the core's sticky error at the end; ``reason``: the first cause, in words ("" if
    none). ``writes`` / ``erases`` / ``programs``: array write commands issued by micro-ops
    (equal to the counters ``write_row`` / ``erase`` / ``program``); ``bits_programmed``:
    cells the PROGRAM micro-ops switched to 1 (``data & mask``), ``bits_written``: cells the
    WRITE_ROW micro-ops drove.
    """
    out: tuple
    out_count: int
    counters: dict
    error: bool
    reason: str
    writes: int
    erases: int
    programs: int
    bits_programmed: int
    bits_written: int


#: Programs whose controller trace :meth:`CoreModel.run` keeps.
_TRACE_CACHE = 16

#: Cycles between the controller's done and the core's done (S2 and S3 of the last micro-op).
PIPELINE_DRAIN = 2


class CoreModel:
    """Numpy/Python model of ``rtl.core.Core``: same host interface, same results, same
    counters, same error conditions.

    Parameters
    ----------
    config : AcceleratorConfig
        Array size and technology (write semantics), ``acc_bits``.
    buffer_slots : int
        Weight-buffer words of ``columns`` bits. Default 2048.
    channels : int
        Requantization table entries. Default 256.
    out_depth : int
        Output-memory words of 32 bits. Default 4096.
    imem_depth : int
        Instruction words. Default 1024.

    State kept between runs as in the hardware: the array cells (non-volatile; power-up 0,
    NAND-SPIN cells count as programmed until their strip is erased), the buffer, the table,
    the output memory, the reduction accumulator and the lane registers. ``run`` (the core's
    ``start``) clears the PPU's partial sum, pool count and output pointer, and the sticky
    error; the array's response to the latest write command persists, so a failed host write
    before ``start`` makes the run end in error too (as the RTL: the error is set again in the
    cycle after ``start``). Sensing faults are off until :meth:`set_faults` turns them on;
    the LFSRs and the threshold start from the reset values of the RTL
    (``config.fault_seed``, ``rate_to_threshold(config.read_fault_rate)``).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range.
    """

    def __init__(self, config, *, buffer_slots: int = 2048, channels: int = 256,
                 out_depth: int = 4096, imem_depth: int = 1024):
        self.config = cfg = check_config(config)
        for name, value, lo, hi in (("buffer_slots", buffer_slots, 2, 4096),
                                    ("channels", channels, 1, 4096),
                                    ("out_depth", out_depth, 1, 1 << 16),
                                    ("imem_depth", imem_depth, 2, 1 << 16)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], not {value!r}")
        for name, value in (("buffer_slots", buffer_slots), ("imem_depth", imem_depth)):
            if value & (value - 1):
                raise ValueError(f"{name} must be a power of two, not {value!r}")
        self.buffer_slots, self.channels = buffer_slots, channels
        self.out_depth, self.imem_depth = out_depth, imem_depth
        self.columns, self.rows = cfg.columns, cfg.rows
        self._ones = (1 << cfg.columns) - 1
        self._nand = cfg.technology == "nand_spin"
        self._strip = cfg.mtjs_per_strip
        self._row_mask = (1 << max(1, (cfg.rows - 1).bit_length())) - 1
        self._chan_mask = (1 << max(1, (channels - 1).bit_length())) - 1
        self._acc_mod = 1 << cfg.acc_bits
        self._cells = [0] * cfg.rows
        self._marks = [self._ones] * cfg.rows if self._nand else None
        self._buffer = [0] * buffer_slots
        self._mult = [0] * channels
        self._shift = [0] * channels
        self._bias = [0] * channels
        self._out = [0] * out_depth
        # Datapath registers (reset 0; only the reset clears them).
        self._acc = 0                        # modulo 2**acc_bits
        self._min_b = self._decided = self._x_is_min = 0
        self._swap = self._borrow = 0
        self._out_new = self._out_old = 0    # abs-diff out: latest value and the one before
        self._out_new_cycle = -10            # issue cycle of the DIFF that wrote _out_new
        # PPU state.
        self._psum = 0
        self._pool = 0
        self._cnt = 0
        self._ptr = 0
        # Array response to the latest write command; sticky error.
        self._array_failed = False
        self.error = False
        self.reason = ""
        self._traces: dict = {}
        # Sensing faults: off; LFSRs and threshold at the RTL's reset values.
        self._fault_en = False
        self._load_faults(cfg.fault_seed, rate_to_threshold(cfg.read_fault_rate))

    # -- host interface ------------------------------------------------------------------------

    def write_buffer(self, slot: int, bits) -> None:
        """Write weight-buffer word ``slot`` (bool [columns] or int)."""
        if not 0 <= slot < self.buffer_slots:
            raise ValueError(f"slot must be in [0, {self.buffer_slots}), not {slot}")
        self._buffer[slot] = pack_row(bits, self.columns)

    def write_table(self, ch: int, mult: int, shift: int, bias: int) -> None:
        """Write requantization table entry ``ch``: multiplier (signed 16-bit), shift
        (unsigned 6-bit), bias (signed 48-bit)."""
        if not 0 <= ch < self.channels:
            raise ValueError(f"ch must be in [0, {self.channels}), not {ch}")
        for name, v, lo, hi in (
                ("mult", mult, -(1 << (_MULT_BITS - 1)), (1 << (_MULT_BITS - 1)) - 1),
                ("shift", shift, 0, (1 << _SHIFT_BITS) - 1),
                ("bias", bias, -(1 << (_BIAS_BITS - 1)), (1 << (_BIAS_BITS - 1)) - 1)):
            if not lo <= int(v) <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], not {v}")
        self._mult[ch], self._shift[ch], self._bias[ch] = int(mult), int(shift), int(bias)

    def set_faults(self, *, enable: bool, seed: int = 0, threshold: int = 0) -> None:
        """The array's sensing faults, as ``sim.rtl_backend.CoreHost.set_faults`` drives them:
        reload every column's LFSR from ``seed`` (column ``c``: ``seed ^ c * 0x9E3779B9`` mod
        2**32, 0 becomes 1) and the flip threshold (probability in units of 2**-16,
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
        """Whether faults are on, the threshold and every column's LFSR state."""
        states = np.zeros(self.columns, dtype=np.uint64)
        for j, plane in enumerate(self._lfsr):
            states |= unpack_row(plane, self.columns).astype(np.uint64) << np.uint64(j)
        return FaultState(self._fault_en, self._threshold, states)

    def array_command(self, cmd, row: int, data=None, mask=None) -> ArrayResponse:
        """One array command from the host while idle (``rtl.mtj_array.MacroCmd``).

        WRITE (stt / sot / imac) sets the masked columns of ``row`` to ``data``; ERASE
        (nand_spin) clears the masked columns of ``row``'s strip; PROGRAM (nand_spin) ORs
        ``data & mask`` into ``row`` and reports the masked cells already programmed since
        their strip's last erase. A write the technology does not support, or a ``row`` not
        below ``rows``, is ignored with ``error``. Sense commands and NOP change nothing the
        host can see (a sense command with faults on advances the fault LFSRs, as in the
        array). ``data`` / ``mask``: bool [columns] or int; default 0 / all ones. An error or
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
        if why:
            self._fail(f"host {cmd.name} row {row}: {why}")
        return ArrayResponse(err, unpack_row(pwe, self.columns))

    def read_row(self, row: int) -> np.ndarray:
        """The cells of ``row`` (a backdoor for tests), bool [columns]."""
        return unpack_row(self._cells[row], self.columns)

    def read_buffer(self, slot: int) -> np.ndarray:
        """Weight-buffer word ``slot``, bool [columns]."""
        return unpack_row(self._buffer[slot], self.columns)

    @property
    def acc(self) -> int:
        """The reduction unit's accumulator, as a signed ``acc_bits`` number."""
        a, m = self._acc, self._acc_mod
        return a - m if a >= m >> 1 else a

    @property
    def out_memory(self) -> tuple:
        """The whole output memory (unsigned 32-bit words)."""
        return tuple(self._out)

    def run(self, program_words) -> CoreRun:
        """Load ``program_words`` into the instruction memory, start, run to done.

        The controller's micro-op trace (``sim.isa_model.run_program``, which depends on the
        program alone) is computed once per program and kept for the next runs.

        Raises
        ------
        ValueError
            The program does not fit ``imem_depth`` words.
        """
        words = [int(w) for w in program_words]
        if len(words) > self.imem_depth:
            raise ValueError(f"the program has {len(words)} words but imem_depth is "
                             f"{self.imem_depth}")
        # start: clear the PPU state and the sticky error; a failed latest array write
        # raises it again.
        self._psum = self._pool = self._cnt = self._ptr = 0
        self.error, self.reason = False, ""
        if self._array_failed:
            self._fail("the latest array write command before start failed")
        self._writes = self._erases = self._programs = 0
        self._bits_programmed = self._bits_written = 0
        key = tuple(words)
        cached = self._traces.get(key)
        if cached is None:
            # The controller's trace depends on the program alone: compute it once per program
            # (the compiler reuses one program for all chunks of a shape, and every image).
            cycles: list = []
            run = run_program(words, depth=self.imem_depth, issue_cycles=cycles)
            if len(self._traces) >= _TRACE_CACHE:
                self._traces.pop(next(iter(self._traces)))
            steps = [(m.op.value, m.imm, m.a, m.b, c)
                     for m, c in zip(run.trace, cycles, strict=True)]
            cached = self._traces[key] = (run, steps)
        run, steps = cached
        self._execute(steps)
        if run.error:
            self._fail(f"controller error: {_controller_error(words, run)}")
        counters = dict(zip(counter_names(), run.counters, strict=True))
        return CoreRun(tuple(self._out[:self._ptr]), self._ptr, counters, self.error,
                       self.reason, self._writes, self._erases, self._programs,
                       self._bits_programmed, self._bits_written)

    # -- internals -----------------------------------------------------------------------------

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

    def _fail(self, why: str) -> None:
        if not self.error:
            self.error, self.reason = True, why
        # (later causes are not recorded: the reason names the first)

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

    def _execute(self, steps) -> None:
        """Play the micro-ops ``(opcode value, imm, a, b, issue cycle)`` through S1 - S3."""
        # Local aliases and integer opcodes: this loop runs once per micro-op.
        cells, buf = self._cells, self._buffer
        rows, row_mask = self.rows, self._row_mask
        slots = self.buffer_slots
        ones, acc_mod = self._ones, self._acc_mod
        faulty = self._fault_en
        for code, imm, a, b, c in steps:
            if code not in _CORE_CODES:
                self._fail(f"cycle {c}: micro-op {Opcode(code).name} is not implemented by "
                           f"the core")
                continue
            if code == _REQUANT:
                self._ppu_step(a, imm, c)
                continue
            # ---- S1: operand checks, array command, buffer read
            if a >= rows:
                self._fail(f"cycle {c}: {Opcode(code).name} row a={a} is not below "
                           f"rows={rows}")
            ra = a & row_mask
            if code in _BUFFER_CODES:
                if b >= slots:
                    self._fail(f"cycle {c}: {Opcode(code).name} slot b={b} is not below "
                               f"buffer_slots={slots}")
                w = buf[b & (slots - 1)]
            else:
                w = 0
            if code in _WRITE_CODES:
                if code == _ERASE:
                    cmd, data = MacroCmd.ERASE, 0
                    self._erases += 1
                else:
                    if imm & 1:    # the abs-diff lanes' out, as it was at the start of cycle c
                        data = self._out_new if self._out_new_cycle <= c - 2 else self._out_old
                    else:
                        data = w
                    if code == _WRITE_ROW:
                        cmd = MacroCmd.WRITE
                        self._writes += 1
                        self._bits_written += self.columns
                    else:
                        cmd = MacroCmd.PROGRAM
                        self._programs += 1
                        self._bits_programmed += data.bit_count()
                if ra < rows:
                    _, _, why = self._array_write(cmd, ra, data, ones)
                else:
                    self._array_failed = True
                    why = f"row {ra} is not below rows={rows}"
                if why:
                    self._fail(f"cycle {c}: {Opcode(code).name} row {a}: {why}")
                continue
            # sense commands
            x = cells[ra] if ra < rows else 0
            if code == _AND_FU:
                x &= w
            elif code == _AND2 or code == _OR2:
                if b >= rows:
                    self._fail(f"cycle {c}: {Opcode(code).name} row b={b} is not below "
                               f"rows={rows}")
                rb = b & row_mask
                y = cells[rb] if rb < rows else 0
                x = x & y if code == _AND2 else x | y
            if faulty:                         # the sense amplifiers' faults, after AND / OR
                x ^= self._fault_flips()
            # ---- S2: lanes
            if code == _MIN_STEP:
                differ = x ^ w
                if (imm & 0xF) == _L1_FIRST:  # START (the 4-bit ReduceOp): flags taken as 0
                    self._min_b = x & w
                    self._decided = differ
                    self._x_is_min = differ & ~x & ones
                else:                          # STEP
                    dd, xm = self._decided, self._x_is_min
                    nd = ~dd & ones
                    self._min_b = (dd & ((xm & x) | (~xm & w))) | (nd & x & w)
                    self._x_is_min = (dd & xm) | (nd & differ & ~x & ones)
                    self._decided = dd | differ
                row_w, row_min = w, self._min_b
            elif code == _FS_STEP:
                keep = 0 if imm & 1 else ones
                if imm & 2:                    # DIFF: big - small, difference bit to out
                    sw = self._swap
                    big = (sw & w) | (~sw & x)
                    small = (sw & x) | (~sw & w)
                    cin = self._borrow & keep
                    nb = ~big
                    self._out_old = self._out_new
                    self._out_new = (big ^ small ^ cin) & ones
                    self._out_new_cycle = c
                    self._borrow = ((nb & small) | (nb & cin) | (small & cin)) & ones
                else:                          # SIGN: the borrow of x - w into swap
                    cin = self._swap & keep
                    nx = ~x
                    self._swap = ((nx & w) | (nx & cin) | (w & cin)) & ones
                continue                       # S3: HOLD
            else:
                row_w = row_min = 0
            # ---- S3: reduction (ReduceOp = imm bits 0-3)
            rop = imm & 15
            if rop == 0 or rop > 10:           # HOLD and the unused codes
                continue
            p = x.bit_count()
            acc = self._acc
            if rop == 7 or rop == 8:           # L1_FIRST, L1_PLANE
                q = p + row_w.bit_count() - 2 * row_min.bit_count()
                acc = q if rop == 7 else 2 * acc + q
            elif rop == 1:                     # CLEAR
                acc = 0
            elif rop == 2:                     # ADD
                acc += p
            elif rop == 3:                     # SUB2
                acc -= 2 * p
            elif rop == 4:                     # SHIFT_ADD
                acc = 2 * acc + p
            elif rop == 5:                     # SHIFT_SUB2
                acc = 2 * acc - 2 * p
            elif rop == 6:                     # SHIFT
                acc = 2 * acc
            elif rop == 9:                     # SUB
                acc -= p
            else:                              # SHIFT_SUB
                acc = 2 * acc - p
            self._acc = acc % acc_mod

    def _ppu_step(self, a: int, imm: int, c: int) -> None:
        if a >= self.channels:
            self._fail(f"cycle {c}: REQUANT channel {a} is not below channels={self.channels}")
        ch = a & self._chan_mask
        if ch >= self.channels:
            return                                   # the step is dropped
        mod = self._acc_mod
        half = mod >> 1
        acc = self._acc - mod if self._acc >= half else self._acc
        s = (0 if imm & PPU_CLEAR else self._psum) + acc
        s = (s + half) % mod - half                  # wrap to signed acc_bits
        if not imm & PPU_EMIT:
            self._psum = s
            return
        self._psum = 0
        v = (-s + half) % mod - half if imm & PPU_NEG else s
        mode = (imm >> PPU_MODE_LSB) & 3
        bias = self._bias[ch]
        if mode == MODE_LOGIT:
            self._emit((v + bias) % (1 << _OUT_BITS), c)
            return
        shift = self._shift[ch]
        t = v * self._mult[ch] + bias + ((1 << (shift - 1)) if shift else 0)
        y = min(max(t >> shift, 0), 255)
        if mode == MODE_REQUANT:
            self._emit(y, c)
            return
        pool_mask = (1 << _POOL_BITS) - 1
        if self._cnt == 0:
            pooled = y
        elif mode == MODE_MAX4:
            pooled = max(self._pool, y)
        else:
            pooled = (self._pool + y) & pool_mask
        self._pool = pooled
        last = self._cnt == 3
        self._cnt = (self._cnt + 1) & 3
        if last:
            self._emit(pooled if mode == MODE_MAX4 else (pooled + 2) >> 2, c)

    def _emit(self, word: int, c: int) -> None:
        if self._ptr == self.out_depth:
            self._fail(f"cycle {c}: the PPU's output memory is full (out_depth="
                       f"{self.out_depth} words)")
            return
        self._out[self._ptr] = word
        self._ptr += 1


def _controller_error(words, run) -> str:
    """Why the controller stopped with an error, in words (best effort)."""
    from . import asm
    instrs = []
    for addr, w in enumerate(words):
        try:
            instrs.append(decode(w))
        except ValueError:
            return (f"undefined opcode {w & 31} at address {addr} (or the program ran off "
                    f"the end of instruction memory)")
    try:
        asm.check_program(instrs)
    except ValueError as e:
        return str(e)
    return f"the run ended in an error after {run.counters[0]} cycles"
