"""Cycle-exact Python model of the accelerator core (``rtl.core.Core``, whose contract is
``docs/datapath.rst``).

:class:`CoreModel` has the host interface of the RTL core (weight buffer, requantization table,
array commands, data memory, gather tables, program + start) and executes a program the way the
core does: the controller's micro-op trace (each issued micro-op, its resolved operands and the
cycle it is issued in; ``sim.hw.isa_model.run_program`` is the reference, a vectorised expansion of
the loop nest gives the same for well-formed programs) is played through the datapath's three
pipeline stages:

* S1 (issue cycle c): the array command, the weight-buffer read (``buffer[b]``, also the FU
  line), the transpose-buffer read of a ``WRITE_ROW`` / ``PROGRAM`` from ``TBUF`` and the
  gather's table look-up; written rows are visible to a sense in c + 1;
* S2 (c + 1): the lanes of the configuration's routes (``sim.routes``: the min lanes of
  ``write_free``, the abs-diff lanes of ``abs_diff``, the FA/FS lanes of ``dima_binconv``) on
  the sensed row and the registered
  buffer word; the gather's data-memory read and its write
  into the transpose buffer, the transpose buffer's CLEAR;
* S3 (c + 2): the reduction unit (``rtl.column_reduce``), the PPU (``rtl.ppu``, writing the data
  memory) and the PPU's write pointer (``SETPTR`` / ``ADDPTR``).

Device timing: a micro-op whose device operation takes c > 1 cycles
(``config.stall_table``, ``AcceleratorConfig.op_cycles``) acts (its S1) in the cycle it is
issued and keeps the array busy c - 1 more cycles, during which the next micro-op is held on
the issue port; the trace's issue cycles are those after the holds (:func:`add_stalls`), and
the held cycles count in ``cycles`` and ``stalls``.

Every register updates at the end of its cycle. The stages of consecutive micro-ops overlap, but
all state except three is read and written by a single stage, in issue order, so playing the
micro-ops one after the other through S1, S2, S3 is exact. The three exceptions, each kept
exact:

* the abs-diff lanes' ``out``: written at the end of the S2 cycle of an FS_STEP DIFF (issue c,
  visible from c + 2 on) and read at the S1 of a WRITE_ROW / PROGRAM from ``ABS_DIFF``. The
  model keeps the last two values with the issue cycle of the DIFF that wrote the newer one
  (the FA/FS lanes' ``out``, FA_STEP and ``FA_FS``, likewise);
* the transpose buffer: written by GATHER / CLEAR at the end of their S2 (issue c, visible from
  c + 2 on), read at the S1 of a write from ``TBUF``. The model queues the GATHER / CLEAR
  effects and applies those issued two or more cycles before a ``TBUF`` write before it reads;
* the data memory: written by the PPU at the end of a REQUANT's S3 (issue c), read by a GATHER
  in its S2: a GATHER issued in c + 1 reads the word as it was before. The model keeps the
  latest PPU write (cycle, address, previous word).

The mat. The core is ``subarrays`` (K) subarrays of ``rows x config.columns`` (C) cells in
lock-step: one command addresses the same row of all of them, so the model holds the mat as
one array of width W = K*C (:attr:`CoreModel.columns`); mat column ``g = k*C + j`` is subarray
``k``'s column ``j`` and its fault LFSR is seeded ``rtl.mtj_array.column_seed(seed, g)``: the
faults are exactly those of one W-wide array. Every reduce micro-op updates the accumulator of
each subarray from its segment of the row (columns ``k*C .. k*C + C - 1``); REQUANT's operand d
picks the PPU's addend: 0 the sum of all K accumulators modulo ``2**acc_bits`` (every reduce is
linear, so this is one accumulator over the whole row, which is what the model keeps), ``k + 1``
accumulator ``k`` alone (the model derives the K accumulators from a log of the reduce
micro-ops since the last one that clears, when a REQUANT asks for one).

Rows are bit vectors of W bits, column g at bit g. Inside the model a row is a Python ``int``
(bitwise operators act on all columns at once and ``int.bit_count`` is the column popcount):
this is the column-parallel vectorisation, at a fraction of the per-operation cost of a small
numpy array, and the loop in Python runs over micro-ops only. At the host interface rows are
numpy bool arrays ``[W]`` (or ints).

Data memory (the PPU's output memory, ``out_depth`` words of 32 bits): the PPU writes its
outputs at its write pointer ``ptr`` (cleared by start, +1 per word, set by ``MOVE SETPTR`` /
``ADDPTR``); GATHER reads it; the host writes and reads it while idle (:meth:`write_dmem`,
:meth:`read_dmem`). Its contents persist across runs. Words are unsigned 32-bit ints: a
requantized activation is a value in [0, 255]; a logit is the two's complement of a signed
32-bit number (:func:`signed32`).

Gather (``MOVE GATHER``, operands a = transpose-buffer column, b = offset-table entry, d =
patch-table entry): with ``F = otab[b]`` and ``P = ptab[d]``, the word at ``(P.base + F.offset)
mod 2**16`` if bit ``F.kpos`` of ``P.mask`` is set, else 0 (zero padding), goes into column a
of the transpose buffer, bit q of the word into plane q (q < n = ``operand_bits``). A
``WRITE_ROW`` / ``PROGRAM`` with ``imm = WriteSrc.TBUF`` writes plane b into row a.

Error side effects (what an erroneous micro-op still does, as ``rtl.core.Core`` does it: an
operand is cut to the width of the port it drives): a GATHER in error still writes the
transpose buffer, with the table entries ``b mod offset_depth`` / ``d mod patch_depth``, the
word at ``addr mod 2**ceil(log2 out_depth)`` (0 if that is not below ``out_depth``) and the
column ``a mod 2**ceil(log2 W)`` (none if that is not below W); a SETPTR / ADDPTR in error sets
the pointer to ``out_depth`` (every later word errors); a MOVE with an undefined ``imm`` does
nothing; a WRITE_ROW / PROGRAM from a source the core does not have (``imm`` > 2, or a
lane's source without that lane) writes the buffer word at slot ``b mod buffer_slots``, from a
transpose-buffer plane not below n plane ``b mod 2**ceil(log2 n)`` (0 if that is not below n)
(the command is still issued, as for every other operand error); a REQUANT with d > K is
dropped (the PPU does not step).

Sensing faults (``rtl.mtj_array``, ``golden.array``): :meth:`CoreModel.set_faults` is the core's
``fault_seed`` / ``fault_threshold`` / ``fault_load`` / ``fault_en``. While enabled, every sense
command the array sees (READ for READ / SHIFT_ACC / MIN_STEP / FS_STEP / FA_STEP, AND_FU, AND2, OR2,
including one from the host) advances every column's 32-bit LFSR by 16 steps and inverts the
sensed bit of each column whose 16 fresh bits are below the threshold; nothing else moves the
LFSRs. The LFSRs are kept bit-sliced, as 32 row ints (plane ``j`` holds bit ``j`` of every
column's state), so one sensing is a few dozen column-parallel int operations.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from golden.array import lfsr_column_seeds
from rtl.bit_counter import (
    BITCOUNT_AND_FU, BITCOUNT_OUT_LSB, bitcount_senses, check_bitcount_imm,
)
from rtl.config import check_config
from rtl.isa import (
    BASE_BITS, LOOP_DEPTH, OFFSET_BITS, OPERAND_BITS, MoveOp, Opcode,
    WriteSrc, COUNTER_CYCLES, COUNTER_STALLS, N_COUNTERS, ZERO_SKIP_COUNTERS,
    counter_index, counter_names, decode,
)
from rtl.mtj_array import (
    FAULT_THRESHOLD_BITS, LFSR_BITS, LFSR_STEPS_PER_SENSE, LFSR_TAPS, MacroCmd,
    rate_to_threshold,
)
from rtl.routes import opcodes_of

from sim.hw.isa_model import run_program
from sim.routes import get_route

__all__ = ["CoreModel", "CoreRun", "ArrayResponse", "FaultState", "signed32", "pack_row",
           "unpack_row", "expand_program", "add_stalls",
           "PPU_CLEAR", "PPU_EMIT", "PPU_NEG", "PPU_MODE_LSB", "MODE_REQUANT", "MODE_MAX4",
           "MODE_AVG4", "MODE_LOGIT", "CORE_OPS", "PIPELINE_DRAIN"]

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

#: Micro-ops a core with every route implements; a core implements those of its routes
#: (``rtl.routes.opcodes_of(config.routes)``), every other datapath opcode sets ``error``.
CORE_OPS = frozenset({Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
                      Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.WRITE_ROW, Opcode.ERASE,
                      Opcode.PROGRAM, Opcode.REQUANT, Opcode.MOVE, Opcode.BITCOUNT})
# Opcode values, for the per-micro-op loop.
_CORE_CODES = frozenset(op.value for op in CORE_OPS)
_SLOT_CODES = frozenset(op.value for op in (Opcode.AND_FU, Opcode.MIN_STEP, Opcode.FS_STEP,
                                            Opcode.FA_STEP))
_WRITE_CODES = frozenset(op.value for op in (Opcode.WRITE_ROW, Opcode.PROGRAM))
_REQUANT, _ERASE, _WRITE_ROW = Opcode.REQUANT.value, Opcode.ERASE.value, Opcode.WRITE_ROW.value
_AND_FU, _AND2, _OR2 = Opcode.AND_FU.value, Opcode.AND2.value, Opcode.OR2.value
_MOVE = Opcode.MOVE.value
_BITCOUNT = Opcode.BITCOUNT.value
_SRC_BUFFER, _SRC_TBUF = WriteSrc.BUFFER.value, WriteSrc.TBUF.value
_SRC_TBUF_ZS, _SKIPZ = WriteSrc.TBUF_ZS.value, MoveOp.SKIPZ.value
_SETPAD = MoveOp.SETPAD.value
#: The in-memory post-processing's path (route nand_inmem; CoreModel._inmem_move).
_INMEM_MOVES = (MoveOp.GSHIFT.value, MoveOp.LOADPLANE.value, MoveOp.SCATTER.value)
_GATHER, _CLEAR, _SETPTR, _ADDPTR = (MoveOp.GATHER.value, MoveOp.CLEAR.value,
                                     MoveOp.SETPTR.value, MoveOp.ADDPTR.value)
_ADDR_MASK = (1 << OFFSET_BITS) - 1

#: Per ReduceOp code: (alpha, beta, l1): acc' = alpha * acc + beta * p, or + q for the L1 ops
#: (l1 True, q = p + |row_w| - 2 |row_min|). HOLD and the unused codes 11 .. 15 are absent.
_REDUCE_AFFINE = {1: (0, 0, False), 2: (1, 1, False), 3: (1, -2, False), 4: (2, 1, False),
                  5: (2, -2, False), 6: (2, 0, False), 7: (0, 1, True), 8: (2, 1, True),
                  9: (1, -1, False), 10: (2, -1, False)}
#: Reduce micro-ops logged before the subarray accumulators are brought up to date anyway.
_SEG_LOG_MAX = 512


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
    (``fault_en``), the flip ``threshold`` (units of 2**-16) and every mat column's LFSR state
    (``lfsr``, uint64 [W] of 32-bit values, as ``golden.array.lfsr_column_seeds`` /
    ``fault_flips`` hold them)."""
    enabled: bool
    threshold: int
    lfsr: np.ndarray


class CoreRun(NamedTuple):
    """Result of :meth:`CoreModel.run`.

    ``out``: the data memory's words ``0 .. out_count - 1`` at the end of the run (what the
    core's ``out_rdata`` shows for those addresses; :meth:`CoreModel.read_dmem` reads any
    word); ``out_count``: the PPU's write pointer at the end (the core's ``out_count``).
    ``counters``: the controller's counters by name (``rtl.isa.counter_names``); ``cycles`` is
    the controller's busy time, the core is done ``PIPELINE_DRAIN`` cycles later.
    ``error``: the core's sticky error at the end; ``reason``: the first cause, in words ("" if
    none). ``writes`` / ``erases`` / ``programs``: array write commands issued by micro-ops
    (equal to the counters ``write_row`` / ``erase`` / ``program``); ``bits_programmed``:
    cells the PROGRAM micro-ops switched to 1 (``data & mask``), ``bits_written``: cells the
    WRITE_ROW micro-ops drove. ``zero_skip``: on a core with ``config.zero_skip`` its
    counters by name (``rtl.isa.ZERO_SKIP_COUNTERS``), else empty.
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
    zero_skip: dict = {}


#: Programs whose expanded controller trace :meth:`CoreModel.run` keeps, and the most micro-ops
#: kept over all of them.
_TRACE_CACHE = 256
_TRACE_CACHE_STEPS = 1 << 22

#: Cycles between the controller's done and the core's done (S2 and S3 of the last micro-op).
PIPELINE_DRAIN = 2

#: ``sim.hw.isa_model.run_program``'s guard: runs longer than this raise ``RuntimeError``.
_MAX_CYCLES = 10_000_000


def _check_int(name, value, lo, hi, *, power_of_two=False):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value!r}")
    if power_of_two and value & (value - 1):
        raise ValueError(f"{name} must be a power of two in [{lo}, {hi}], not {value!r}")


class CoreModel:
    """Numpy/Python model of ``rtl.core.Core``: same host interface, same results, same
    counters, same error conditions.

    Parameters
    ----------
    config : AcceleratorConfig
        Subarray size (rows x columns) and technology (write semantics), ``operand_bits`` (the
        transpose buffer's planes), ``acc_bits``.
    subarrays : int or None
        Subarrays of the mat (K), in [1, 64]; default ``config.subarrays_per_mat``. Rows are
        W = K * ``config.columns`` bits wide (:attr:`columns`).
    buffer_slots : int or None
        Weight-buffer words of W bits, a power of two in [2, 2**isa_base_bits]. Default
        ``config.buffer_slots``.
    channels : int or None
        Requantization table entries, in [1, 4096]. Default ``config.requant_channels``.
    out_depth : int or None
        Data-memory (PPU output memory) words of 32 bits, in [1, 65536]. Default
        ``config.data_words``.
    offset_depth, patch_depth : int or None
        Offset- and patch-table entries of the gather, powers of two in [2,
        2**isa_base_bits]. Default ``config.offset_entries``, ``config.patch_entries``.
    imem_depth : int or None
        Instruction words, a power of two in [2, 65536]. Default ``config.program_words``.
        The words are of the configuration's format (``config.isa``), the patch masks
        ``config.patch_mask_bits`` wide.

    State kept between runs as in the hardware: the array cells (non-volatile; power-up 0,
    NAND-SPIN cells count as programmed until their strip is erased), the buffer, the tables,
    the data memory, the transpose buffer, the accumulators and the lane registers. ``run``
    (the core's ``start``) clears the PPU's partial sum, pool count and write pointer, and the
    sticky error; the array's response to the latest write command persists, so a failed host
    write before ``start`` makes the run end in error too (as the RTL: the error is set again in
    the cycle after ``start``). Sensing faults are off until :meth:`set_faults` turns them on;
    the LFSRs and the threshold start from the reset values of the RTL
    (``config.fault_seed``, ``rate_to_threshold(config.read_fault_rate)``).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """

    def __init__(self, config, *, subarrays: int | None = None, buffer_slots: int | None = None,
                 channels: int | None = None, out_depth: int | None = None,
                 offset_depth: int | None = None, patch_depth: int | None = None,
                 imem_depth: int | None = None):
        self.config = cfg = check_config(config)
        if subarrays is None:
            subarrays = cfg.subarrays_per_mat
        # The sizes default to the configuration's (rtl.config.SIZE_FIELDS); an override may
        # be smaller, or larger up to what the configuration's operand bases address.
        buffer_slots = cfg.buffer_slots if buffer_slots is None else buffer_slots
        channels = cfg.requant_channels if channels is None else channels
        out_depth = cfg.data_words if out_depth is None else out_depth
        offset_depth = cfg.offset_entries if offset_depth is None else offset_depth
        patch_depth = cfg.patch_entries if patch_depth is None else patch_depth
        imem_depth = cfg.program_words if imem_depth is None else imem_depth
        top = 1 << cfg.isa_base_bits
        _check_int("subarrays", subarrays, 1, 64)
        _check_int("buffer_slots", buffer_slots, 2, top, power_of_two=True)
        _check_int("channels", channels, 1, 4096)
        _check_int("out_depth", out_depth, 1, 1 << 16)
        _check_int("offset_depth", offset_depth, 2, top, power_of_two=True)
        _check_int("patch_depth", patch_depth, 2, top, power_of_two=True)
        _check_int("imem_depth", imem_depth, 2, 1 << 16, power_of_two=True)
        self.subarrays = k = int(subarrays)
        self.subarray_columns = cfg.columns
        self.buffer_slots, self.channels = buffer_slots, channels
        self.out_depth, self.imem_depth = out_depth, imem_depth
        self.offset_depth, self.patch_depth = offset_depth, patch_depth
        self.columns = w = k * cfg.columns
        self.rows = cfg.rows
        self._n = cfg.operand_bits
        self._ones = (1 << w) - 1
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
        # The PPU's threshold stage (cores with route dima_binconv; rtl.ppu.Ppu): per channel
        # 255 thresholds and the mode word (bit 0 enable, bit 1 sign -1), zeros at reset.
        self._has_thresh = "dima_binconv" in cfg.routes
        self._thresh = [[0] * 255 for _ in range(channels)] if self._has_thresh else []
        self._qmode = [0] * channels
        self._pad = 0
        self._has_bc = "nand_inmem" in cfg.routes     # MOVE GSHIFT / LOADPLANE / SCATTER
        self._gshift = 0
        self._out = [0] * out_depth
        self._off = [0] * offset_depth                # offset table: offset, kpos
        self._kpos = [0] * offset_depth
        self._pbase = [0] * patch_depth               # patch table: base, mask
        self._pmask = [0] * patch_depth
        # Transpose buffer: the column values (n bits each) and their planes (a cache).
        self._tb_dtype = np.dtype("<u1" if self._n <= 8 else "<u2" if self._n <= 16 else "<u4")
        self._tb_cols = np.zeros(w, dtype=self._tb_dtype)
        self._tb_planes = [0] * self._n
        self._tb_pending: list = []                   # (issue cycle, column or -1 CLEAR, value)
        # Datapath registers (reset 0; only the reset clears them).
        self._acc = 0                        # sum of the subarray accumulators, mod 2**acc_bits
        self._seg_base = [0] * k             # the subarray accumulators before _seg_log
        self._seg_log: list = []             # reduce micro-ops since: (rop, x, row_w, row_min)
        # The micro-ops of the configuration's routes, and their lanes (``sim.routes``): a
        # step per lane opcode, the write sources the lanes drive.
        self._codes = frozenset(op.value for op in opcodes_of(cfg.routes))
        self._lanes = [lm for lm in (get_route(r).lanes(self) for r in cfg.routes)
                       if lm is not None]
        self._lane_ops = {code: step for lm in self._lanes for code, step in lm.ops.items()}
        for code in self._lane_ops:        # lanes of several routes on one opcode: each steps
            steps = [lm.ops[code] for lm in self._lanes if code in lm.ops]
            if len(steps) > 1:
                self._lane_ops[code] = _chain_steps(steps)
        # A lane model whose sums stand in for the accumulators as REQUANT's addend (route
        # jeit_fa's full-adder array, ``sums_at(cycle)``) until the next reduce, else None.
        self._lane_acc = None
        self._lane_srcs = {src: data for lm in self._lanes
                           for src, data in lm.write_sources.items()}
        self._lane_masks = {src: mask for lm in self._lanes
                            for src, mask in lm.write_masks.items()}
        # PPU state.
        self._psum = 0
        self._pool = 0
        self._cnt = 0
        self._ptr = 0
        self._emit_cycle, self._emit_addr, self._emit_old = -10, -1, 0   # latest PPU write
        # Array response to the latest write command; sticky error.
        self._array_failed = False
        self.error = False
        self.reason = ""
        self._traces: dict = {}
        self._trace_steps = 0
        # Zero skipping (config.zero_skip, rtl.core.Core._zero_skip_s1): the rows' zero flags,
        # the latest SKIPZ's outcome, the counters, the operands gathered for the next tile.
        self._zs = cfg.zero_skip
        self._zflags = [False] * cfg.rows
        self._zs_taken = self._zs_take_now = False
        self._zs_counts = dict.fromkeys(ZERO_SKIP_COUNTERS, 0)
        self._zs_tile_ops, self._zs_last_gather = 0, -10
        # Sensing faults: off; LFSRs and threshold at the RTL's reset values.
        self._fault_en = False
        self._load_faults(cfg.fault_seed, rate_to_threshold(cfg.read_fault_rate))

    # -- host interface ------------------------------------------------------------------------

    def write_buffer(self, slot: int, bits) -> None:
        """Write weight-buffer word ``slot`` (bool [W] or int)."""
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

    def write_threshold(self, ch: int, index: int, value: int) -> None:
        """The PPU's threshold stage (a core with route ``dima_binconv``; ``rtl.ppu.Ppu``):
        threshold ``index`` (< 255) of channel ``ch``, a signed ``acc_bits + 2``-bit number,
        or with ``index`` 255 the channel's mode word (bit 0 enable, bit 1 sign -1).

        Raises
        ------
        ValueError
            No threshold stage, or an argument out of range.
        """
        if not self._has_thresh:
            raise ValueError("this core has no threshold stage (route dima_binconv)")
        _check_int("ch", ch, 0, self.channels - 1)
        _check_int("index", index, 0, 255)
        tb = self.config.acc_bits + 2
        if index == 255:
            _check_int("value", value, 0, 3)
            self._qmode[ch] = int(value)
        else:
            _check_int("value", value, -(1 << (tb - 1)), (1 << (tb - 1)) - 1)
            self._thresh[ch][index] = int(value)

    def write_dmem(self, addr: int, value: int) -> None:
        """Write data-memory word ``addr`` (the core's ``dmem_we`` / ``dmem_waddr`` /
        ``dmem_wdata``).

        Raises
        ------
        ValueError
            ``addr`` not in [0, out_depth) or ``value`` not in [0, 2**32).
        """
        _check_int("addr", addr, 0, self.out_depth - 1)
        _check_int("value", value, 0, (1 << _OUT_BITS) - 1)
        self._out[int(addr)] = int(value)

    def read_dmem(self, addr: int) -> int:
        """Data-memory word ``addr``, unsigned 32-bit (the core's ``out_raddr`` /
        ``out_rdata``).

        Raises
        ------
        ValueError
            ``addr`` not in [0, out_depth).
        """
        _check_int("addr", addr, 0, self.out_depth - 1)
        return self._out[int(addr)]

    def write_offset(self, index: int, offset: int, kpos: int) -> None:
        """Write offset-table entry ``index`` (``agu_sel`` 0): ``offset`` in [0, 2**16),
        ``kpos`` in [0, 32).

        Raises
        ------
        ValueError
            A value out of its range (the message names it).
        """
        _check_int("index", index, 0, self.offset_depth - 1)
        _check_int("offset", offset, 0, (1 << OFFSET_BITS) - 1)
        _check_int("kpos", kpos, 0, (1 << self.config.kpos_bits) - 1)
        self._off[int(index)], self._kpos[int(index)] = int(offset), int(kpos)

    def write_patch(self, index: int, base: int, mask: int) -> None:
        """Write patch-table entry ``index`` (``agu_sel`` 1): ``base`` in [0, 2**16), ``mask``
        in [0, 2**32).

        Raises
        ------
        ValueError
            A value out of its range (the message names it).
        """
        _check_int("index", index, 0, self.patch_depth - 1)
        _check_int("base", base, 0, (1 << OFFSET_BITS) - 1)
        _check_int("mask", mask, 0, (1 << self.config.patch_mask_bits) - 1)
        self._pbase[int(index)], self._pmask[int(index)] = int(base), int(mask)

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

    def read_tbuf(self) -> np.ndarray:
        """The transpose buffer (a backdoor for tests): bool [n, W], plane q at ``[q]``."""
        self._tbuf_settle()
        return np.stack([unpack_row(p, self.columns) for p in self._tbuf_planes_now()])

    @property
    def acc(self) -> int:
        """The sum of the subarrays' accumulators (REQUANT's addend with d = 0), as a signed
        ``acc_bits`` number."""
        a, m = self._acc, self._acc_mod
        return a - m if a >= m >> 1 else a

    @property
    def accs(self) -> tuple:
        """Each subarray's accumulator (REQUANT's addend with d = k + 1), signed ``acc_bits``
        numbers."""
        m = self._acc_mod
        return tuple(a - m if a >= m >> 1 else a for a in self._segments())

    @property
    def out_count(self) -> int:
        """The PPU's write pointer (the core's ``out_count``)."""
        return self._ptr

    @property
    def out_memory(self) -> tuple:
        """The whole data memory (unsigned 32-bit words)."""
        return tuple(self._out)

    def run(self, program_words) -> CoreRun:
        """Load ``program_words`` into the instruction memory, start, run to done.

        The controller's micro-op trace depends on the program alone: it is expanded once per
        program (:func:`expand_program`) and kept for the next runs.

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
        # raises it again. Every effect of the previous run has landed.
        self._psum = self._pool = self._cnt = self._ptr = 0
        self._pad = self._gshift = 0
        self._emit_cycle = -10
        for lanes in self._lanes:
            lanes.start()
        self.error, self.reason = False, ""
        if self._array_failed:
            self._fail("the latest array write command before start failed")
        self._writes = self._erases = self._programs = 0
        self._bits_programmed = self._bits_written = 0
        self._zs_taken = self._zs_take_now = False
        self._zs_counts = dict.fromkeys(ZERO_SKIP_COUNTERS, 0)
        self._zs_tile_ops, self._zs_last_gather = 0, -10
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
        (codes, imms, a, b, d, cyc), counters, error = cached[:3]
        if self._zs:                             # data-dependent: SKIPZ drops tile dots
            counters = self._execute_skipping(
                codes.tolist(), imms.tolist(), a.tolist(), b.tolist(), d.tolist(),
                cyc.tolist(), counters, cached[3])
        else:
            self._execute(zip(codes.tolist(), imms.tolist(), a.tolist(), b.tolist(),
                              d.tolist(), cyc.tolist(), strict=True))
        self._tbuf_settle()
        if error:
            self._fail(f"controller error: "
                       f"{_controller_error(words, counters[0], self.config.isa_base_bits)}")
        mask = (1 << 32) - 1
        return CoreRun(tuple(self._out[:self._ptr]), self._ptr,
                       dict(zip(counter_names(), counters, strict=True)), self.error,
                       self.reason, self._writes, self._erases, self._programs,
                       self._bits_programmed, self._bits_written,
                       {k: v & mask for k, v in self._zs_counts.items()} if self._zs else {})

    def _execute_skipping(self, codes, imms, a, b, d, cyc, counters, unstalled) -> list:
        """Play a trace with zero skipping: after a taken ``MOVE SKIPZ`` (issue cycle c) the
        next ``b`` micro-ops of the trace are not issued and everything after them issues
        earlier, the first of them in c + 1 + g (as the controller jumps, ``rtl.controller``),
        g the cycles of the control instructions between the window and that entry (NOPs:
        ``jeit_fa``'s flush; they are not skipped), taken from ``unstalled`` = ``(issue
        cycles, counters)`` without stalls. The skipped instructions are straight-line
        micro-ops (the compiler's tile dot), so they are ``b`` trace entries, and their cycles
        (with their stalls) are the others up to the next entry. Returns the counters with the
        skipped cycles, stalls and micro-ops taken out."""
        total = len(codes)
        end = counters[COUNTER_CYCLES] - 1              # the HALT's cycle
        cyc0, end0 = unstalled[0], unstalled[1][COUNTER_CYCLES] - 1
        dropped = [0] * len(Opcode)
        state = {"off": 0}

        def steps():
            i, off = 0, 0
            while i < total:
                yield codes[i], imms[i], a[i], b[i], d[i], cyc[i] - off
                if self._zs_take_now:
                    self._zs_take_now = False
                    j = min(i + 1 + b[i], total)
                    for k in range(i + 1, j):
                        dropped[codes[k]] += 1
                    g = (int(cyc0[j]) if j < total else end0) - int(cyc0[j - 1]) - 1
                    off += (cyc[j] if j < total else end) - cyc[i] - 1 - g
                    i = j
                else:
                    i += 1
            state["off"] = off

        self._execute(steps())
        off = state["off"]
        if not off:
            return counters
        counters = list(counters)
        counters[COUNTER_CYCLES] -= off
        counters[COUNTER_STALLS] -= off - sum(dropped)
        for code, k in enumerate(dropped):
            counters[counter_index(Opcode(code))] -= k
        return counters

    # -- internals -----------------------------------------------------------------------------

    def _trace(self, words):
        """``((codes, imms, a, b, d, issue cycles), counters, error)`` of ``words``, with the
        stalls of the configuration's stall table (:func:`add_stalls`)."""
        bb = self.config.isa_base_bits
        fast = expand_program(words, depth=self.imem_depth, base_bits=bb)
        if fast is None:
            cycles: list = []
            run = run_program(words, depth=self.imem_depth, issue_cycles=cycles, base_bits=bb)
            arrays = tuple(np.array(v, dtype=np.int64) for v in (
                [m.op.value for m in run.trace], [m.imm for m in run.trace],
                [m.a for m in run.trace], [m.b for m in run.trace], [m.d for m in run.trace],
                cycles))
            fast = arrays, list(run.counters), run.error
        self._unstalled = (fast[0][5], fast[1])   # zero skipping: cycles without stalls
        return add_stalls(*fast, self.config)

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

    # transpose buffer

    def _tbuf_apply(self, entries) -> None:
        cols = self._tb_cols
        for _, col, v in entries:
            if col == -1:
                cols[:] = 0
            elif col < -1:                   # LOADPLANE: row v into plane -2 - col
                q = -2 - col
                bit = self._tb_dtype.type(1 << q)
                cols &= ~bit
                cols |= unpack_row(v, self.columns).astype(self._tb_dtype) << q
            else:
                cols[col] = v
        self._tb_planes = None

    def _tbuf_settle(self) -> None:
        """Apply every queued GATHER / CLEAR (all have landed once the run is over)."""
        if self._tb_pending:
            self._tbuf_apply(self._tb_pending)
            self._tb_pending = []

    def _tbuf_planes_at(self, c: int) -> list:
        """The transpose buffer's planes as a micro-op issued in cycle ``c`` reads them at its
        S1: with the GATHER / CLEAR issued up to ``c - 2`` (the one in ``c - 1`` lands at the
        end of ``c``)."""
        pend = self._tb_pending
        if pend:
            keep = [pend.pop()] if pend[-1][0] >= c - 1 else []
            if pend:
                self._tbuf_apply(pend)
            self._tb_pending = keep
        return self._tbuf_planes_now()

    def _tbuf_planes_now(self) -> list:
        if self._tb_planes is None:
            w, n = self.columns, self._n
            raw = self._tb_cols.view(np.uint8).reshape(w, self._tb_dtype.itemsize)
            bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :n]
            packed = np.packbits(bits.T, axis=1, bitorder="little")
            self._tb_planes = [int.from_bytes(row.tobytes(), "little") for row in packed]
        return self._tb_planes

    # subarray accumulators

    def _segments(self) -> list:
        """Each subarray's accumulator (mod 2**acc_bits), from the log of reduce micro-ops."""
        k = self.subarrays
        if k == 1:
            return [self._acc]
        log = self._seg_log
        if not log:
            return self._seg_base
        m = self._acc_mod
        rows, coefs = [], []
        scale = 1                           # product of the alphas after the entry
        for rop, x, row_w, row_min in reversed(log):
            alpha, beta, l1 = _REDUCE_AFFINE[rop]
            if l1:
                rows += [x, row_w, row_min]
                coefs += [scale, scale, -2 * scale]
            elif beta:
                rows.append(x)
                coefs.append(beta * scale)
            scale = scale * alpha % m
        segs = self._seg_base
        if rows:
            w = self.columns
            nbytes = (w + 7) // 8
            raw = np.frombuffer(b"".join(r.to_bytes(nbytes, "little") for r in rows),
                                dtype=np.uint8)
            bits = np.unpackbits(raw, bitorder="little").reshape(len(rows), nbytes * 8)
            counts = bits[:, :w].reshape(len(rows), k, -1).sum(axis=2, dtype=np.int64)
            if m <= 1 << 32:                # |coef| < 2**33, counts <= 2**16: fits int64
                cf = np.array([c % m for c in coefs], dtype=np.int64)
                add = [int(v) for v in cf @ counts]
            else:
                cf = np.array([c % m for c in coefs], dtype=object)
                add = list(cf @ counts.astype(object))
        else:
            add = [0] * k
        segs = [(scale * s + v) % m for s, v in zip(segs, add, strict=True)]
        self._seg_base = segs
        log.clear()
        return segs

    def _execute(self, steps) -> None:
        """Play the micro-ops ``(opcode value, imm, a, b, d, issue cycle)`` through S1 - S3."""
        # Local aliases and integer opcodes: this loop runs once per micro-op.
        cells, buf = self._cells, self._buffer
        rows, row_mask = self.rows, self._row_mask
        slots = self.buffer_slots
        acc_mod = self._acc_mod
        faulty = self._fault_en
        width, n = self.columns, self._n
        nmask = (1 << n) - 1
        odepth, pdepth, out_depth = self.offset_depth, self.patch_depth, self.out_depth
        ooff, okpos, pbase, pmask, dmem = self._off, self._kpos, self._pbase, self._pmask, \
            self._out
        seg_log = self._seg_log if self.subarrays > 1 else None
        codes, lane_ops, lane_srcs = self._codes, self._lane_ops, self._lane_srcs
        zs, zflags, zc = self._zs, self._zflags, self._zs_counts
        # what the ports keep of an out-of-range operand (the error side effects)
        col_mask = (1 << max(1, (width - 1).bit_length())) - 1
        addr_mask = (1 << max(1, (out_depth - 1).bit_length())) - 1
        plane_mask = (1 << max(1, (n - 1).bit_length())) - 1
        for code, imm, a, b, d, c in steps:
            if code == _REQUANT:
                if zs and self._zs_taken:      # a skipped tile: the addend from slot b
                    if b >= slots:
                        self._fail(f"cycle {c}: REQUANT after a taken SKIPZ: slot b={b} is "
                                   f"not below buffer_slots={slots}")
                    self._ppu_step(a, d, imm, c, addend=buf[b & (slots - 1)] % acc_mod)
                else:
                    self._ppu_step(a, d, imm, c)
                continue
            if code == _MOVE:
                if imm == _GATHER:
                    # S1: the table look-up; S2: the data-memory read, the column write.
                    if a >= width or b >= odepth or d >= pdepth:
                        self._fail(f"cycle {c}: MOVE GATHER " + (
                            f"column a={a} is not below the mat's {width} columns"
                            if a >= width else
                            f"offset entry b={b} is not below offset_depth={odepth}"
                            if b >= odepth else
                            f"patch entry d={d} is not below patch_depth={pdepth}"))
                        a, b, d = a & col_mask, b & (odepth - 1), d & (pdepth - 1)
                    if pmask[d] >> okpos[b] & 1:
                        addr = (pbase[d] + ooff[b]) & _ADDR_MASK
                        if addr >= out_depth:
                            self._fail(f"cycle {c}: MOVE GATHER address {addr} (patch entry {d} "
                                       f"base {pbase[d]} + offset entry {b} {ooff[b]}) is not "
                                       f"below out_depth={out_depth}")
                            addr &= addr_mask
                        if addr == self._emit_addr and self._emit_cycle == c - 1:
                            v = self._emit_old     # the REQUANT of c - 1 writes after our read
                        else:
                            v = dmem[addr] if addr < out_depth else 0
                        gv = ((signed32(v) >> self._gshift) if self._gshift else v) & nmask
                    else:
                        gv = self._pad                 # padding (MOVE SETPAD, else 0)
                    if a < width:
                        self._tb_pending.append((c, a, gv))
                    if zs:                     # S2: the zero-detect, the tile's operands
                        zc["zs_operands"] += 1
                        zc["zs_zero"] += gv == 0
                        self._zs_tile_ops += 1
                        self._zs_last_gather = c
                elif imm == _CLEAR:
                    self._tb_pending.append((c, -1, 0))
                elif imm == _SETPAD and self._has_thresh:
                    self._pad = a & nmask
                elif imm in _INMEM_MOVES and self._has_bc:
                    self._inmem_move(imm, a, d, c)
                elif zs and imm == _SKIPZ:
                    if a >= rows:
                        self._fail(f"cycle {c}: MOVE SKIPZ row a={a} is not below rows={rows}")
                    take = a < rows and zflags[a]
                    self._zs_taken = take
                    if take:
                        self._zs_take_now = True
                        zc["zs_tiles"] += 1
                        zc["zs_cycles_saved"] += d
                elif imm == _SETPTR or imm == _ADDPTR:
                    new = a if imm == _SETPTR else self._ptr + a
                    if new > out_depth:
                        self._fail(f"cycle {c}: MOVE {MoveOp(imm).name} sets the write pointer "
                                   f"to {new}, beyond out_depth={out_depth}")
                        new = out_depth
                    self._ptr = new
                else:
                    self._fail(f"cycle {c}: MOVE imm={imm} is not a MoveOp (GATHER, CLEAR, "
                               f"SETPTR, ADDPTR)")
                continue
            if code not in codes:
                why = (f" (none of its routes {', '.join(self.config.routes)} has it)"
                       if code in _CORE_CODES else "")
                self._fail(f"cycle {c}: micro-op {Opcode(code).name} is not implemented by "
                           f"the core{why}")
                continue
            if code == _BITCOUNT:              # the bit-counters (route nand_inmem)
                self._bitcount(imm, a, b, d, c)
                continue
            # ---- S1: operand checks, array command, buffer read
            if a >= rows:
                self._fail(f"cycle {c}: {Opcode(code).name} row a={a} is not below "
                           f"rows={rows}")
            ra = a & row_mask
            if code in _WRITE_CODES:
                wmask = self._ones             # a lane's source may write some columns only
                b_issued = b                   # (b is cut to the plane port's width below)
                if imm == _SRC_BUFFER or imm in lane_srcs:
                    if b >= slots:
                        self._fail(f"cycle {c}: {Opcode(code).name} slot b={b} is not below "
                                   f"buffer_slots={slots}")
                    if imm in lane_srcs:   # a lane's output, as at the start of cycle c
                        data = lane_srcs[imm](c)
                        wmask = self._lane_masks.get(imm, self._ones)
                    else:
                        data = buf[b & (slots - 1)]
                elif imm == _SRC_TBUF or (zs and imm == _SRC_TBUF_ZS):
                    if b >= n:
                        self._fail(f"cycle {c}: {Opcode(code).name} transpose-buffer plane "
                                   f"b={b} is not below operand_bits={n}")
                        b &= plane_mask
                    data = self._tbuf_planes_at(c)[b] if b < n else 0
                else:                          # the core writes the buffer word at slot b
                    self._fail(f"cycle {c}: {Opcode(code).name} imm={imm} is not a WriteSrc "
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
                continue
            if code == _ERASE:
                self._erases += 1
                self._array_command(MacroCmd.ERASE, ra, 0, code, a, c)
                continue
            if code in _SLOT_CODES:
                if b >= slots:
                    self._fail(f"cycle {c}: {Opcode(code).name} slot b={b} is not below "
                               f"buffer_slots={slots}")
                w = buf[b & (slots - 1)]
            else:
                w = 0
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
            # ---- S2: the lanes of the micro-op's route (``sim.routes``)
            step = lane_ops.get(code)
            if step is not None:
                lane_rows = step(imm, x, w, c)
                if lane_rows is None:          # no reduction (S3: HOLD)
                    continue
                row_w, row_min = lane_rows
            else:
                row_w = row_min = 0
            # ---- S3: reduction (ReduceOp = imm bits 0-3), every subarray's accumulator
            self._lane_acc = None              # (any reduce micro-op, HOLD too: rtl.core)
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
            if seg_log is not None:            # the subarrays' accumulators, on demand
                if rop == 1 or rop == 7:       # these forget the accumulators
                    seg_log.clear()
                    self._seg_base = [0] * self.subarrays
                    if rop == 7:
                        seg_log.append((rop, x, row_w, row_min))
                else:
                    seg_log.append((rop, x, row_w, row_min))
                    if len(seg_log) > _SEG_LOG_MAX:
                        self._segments()

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
            x = self._cells[ra] if ra < rows else 0
            if and_fu:
                w = self._buffer[b & (slots - 1)]
                x &= w
            if self._fault_en:
                x ^= self._fault_flips()
        lanes = next(lm for lm in self._lanes if _BITCOUNT in lm.ops)
        lanes.ops[_BITCOUNT](imm, x, w, c)
        if out:
            self._buffer[d & (slots - 1)] = (x if out == 1 else (~x & self._ones) if out == 2
                                             else lanes.planes[0])

    def _inmem_move(self, imm: int, a: int, d: int, c: int) -> None:
        """``MOVE GSHIFT`` / ``LOADPLANE`` / ``SCATTER`` (route ``nand_inmem``, ``rtl.isa.
        MoveOp``): the gather shift (S2); row a sensed into transpose-buffer plane d (S2, as a
        GATHER lands); column a of the transpose buffer into data-memory word d (S3: it sees
        every micro-op issued before it, and a GATHER issued the cycle after reads the old
        word, as after a REQUANT)."""
        n, width, rows = self._n, self.columns, self.rows
        if imm == MoveOp.GSHIFT.value:
            if a >= 32:
                self._fail(f"cycle {c}: MOVE GSHIFT a={a} is not below 32")
            else:
                self._gshift = a
        elif imm == MoveOp.LOADPLANE.value:
            if a >= rows or d >= n:
                self._fail(f"cycle {c}: MOVE LOADPLANE " + (
                    f"row a={a} is not below rows={rows}" if a >= rows else
                    f"plane d={d} is not below operand_bits={n}"))
            ra = a & self._row_mask
            x = self._cells[ra] if ra < rows else 0
            if self._fault_en:
                x ^= self._fault_flips()
            if d < n:
                self._tb_pending.append((c, -2 - d, x))
        else:
            if a >= width or d >= self.out_depth:
                self._fail(f"cycle {c}: MOVE SCATTER " + (
                    f"column a={a} is not below the mat's {width} columns" if a >= width else
                    f"word d={d} is not below out_depth={self.out_depth}"))
                return
            self._tbuf_settle()
            self._emit_cycle, self._emit_addr, self._emit_old = c, d, self._out[d]
            self._out[d] = int(self._tb_cols[a])

    def _zs_write(self, imm, a, b, c) -> None:
        """Zero skipping at the S1 of a WRITE_ROW / PROGRAM of row ``a``: its zero flag
        (set by a TBUF_ZS of an all-zero transpose buffer, else cleared); a TBUF_ZS of plane 0
        starts a tile: the operands gathered for it (those issued up to c - 2) count as
        skipped if the buffer is all zero."""
        zero_src = imm == _SRC_TBUF_ZS
        tbuf_zero = zero_src and not any(self._tbuf_planes_at(c))
        if a < self.rows:
            self._zflags[a] = tbuf_zero
        if zero_src and b == 0:
            late = self._zs_last_gather == c - 1     # its S2 is this cycle: the next tile's
            seen = self._zs_tile_ops - late
            self._zs_tile_ops = int(late)
            if tbuf_zero:
                self._zs_counts["zs_skipped"] += seen

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

    def _ppu_step(self, a: int, d: int, imm: int, c: int, addend: int | None = None) -> None:
        if a >= self.channels:
            self._fail(f"cycle {c}: REQUANT channel {a} is not below channels={self.channels}")
        k = self.subarrays
        if d > k:
            self._fail(f"cycle {c}: REQUANT addend d={d} is not 0 (the sum) or a subarray "
                       f"1 .. {k}")
            return                                   # the step is dropped
        ch = a & self._chan_mask
        if ch >= self.channels:
            return                                   # the step is dropped
        mod = self._acc_mod
        half = mod >> 1
        if addend is not None:                       # zero skipping: the tile's slot
            acc = addend
        elif self._lane_acc is not None:             # jeit_fa: the FA array's sums (S3)
            sums = self._lane_acc.sums_at(c + 2)
            acc = sum(sums) % mod if d == 0 else sums[d - 1]
        else:
            acc = self._acc if d == 0 else self._segments()[d - 1]
        acc = acc - mod if acc >= half else acc
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
        if self._has_thresh and self._qmode[ch] & 1:     # eq. 3: successive approximation
            sv, thr, y = (-v if self._qmode[ch] & 2 else v), self._thresh[ch], 0
            for b in range(7, -1, -1):
                if sv >= thr[(y | 1 << b) - 1]:
                    y |= 1 << b
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
        ptr = self._ptr
        if ptr >= self.out_depth:
            self._fail(f"cycle {c}: the PPU's write pointer {ptr} is not below out_depth="
                       f"{self.out_depth} (the data memory is full)")
            return
        self._emit_cycle, self._emit_addr, self._emit_old = c, ptr, self._out[ptr]
        self._out[ptr] = word
        self._ptr = ptr + 1


# ---- the controller's trace, expanded ------------------------------------------------------

_OPERAND_MASK = (1 << OPERAND_BITS) - 1
#: Micro-ops the vectorised expansion handles; longer programs go through ``run_program``.
_EXPAND_MAX_STEPS = 1 << 21


def _chain_steps(steps):
    """One lane step that runs ``steps`` in order; the first reduction rows any returns."""
    def step(imm, x, w, c):
        out = None
        for s in steps:
            r = s(imm, x, w, c)
            out = r if out is None else out
        return out
    return step


def expand_program(words, *, depth: int, loop_depth: int = LOOP_DEPTH,
                   base_bits: int = BASE_BITS):
    """The controller's trace of a well-formed program, expanded from its loop nest with numpy:
    exactly what ``sim.hw.isa_model.run_program(words, depth=depth)`` gives (no stalls), without
    interpreting instruction by instruction.

    Well-formed: ``sim.compile.asm.check_program`` passes, the first HALT lies outside every loop,
    the
    run takes at most ``run_program``'s ``max_cycles`` and issues at most
    :data:`_EXPAND_MAX_STEPS` micro-ops.

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

    Returns
    -------
    tuple or None
        ``((codes, imms, a, b, d, issue_cycles), counters, error)``: arrays in issue order
        (operands resolved modulo 2**16), the controller's counters in index order
        (``rtl.isa.counter_names``), ``error`` False. None if the program is not well-formed
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

        for item in items:
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
                                + [o.base for o in ops] + [o.stride for o in ops])
                    offs.append(c)
                c += 1
        flush()
        if not parts:
            return np.zeros((0, 11), dtype=np.int32), np.zeros(0, dtype=np.int32), c
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
    return ((codes, tpl[:, 1].astype(np.uint8), *operands, offs),
            [v & mask for v in counts], False)


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
