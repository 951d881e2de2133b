"""The top level of the cycle model, ``rtl.core.Core``: :class:`CoreModel` composes the
stages (controller, array and weight buffer, data movement, lanes and reduction, PPU, zero
skipping, bit-counters; one module each) behind the core's host interface, and
``CoreModel._execute`` is the datapath's wiring: it plays each micro-op of the controller's
trace, in issue order, through S1 (operand checks, the array command, the weight-buffer read,
the sense amplifiers), S2 (the lanes) and S3 (the reduction, the PPU), handing each micro-op to
the stage that executes it.
"""

from __future__ import annotations

from typing import NamedTuple

from rtl.config import check_config
from rtl.isa import Opcode, counter_names
from rtl.mtj_array import MacroCmd
from sim.hw.core_model.array import ArrayStage
from sim.hw.core_model.bit_counter import BitCounterStage
from sim.hw.core_model.controller import ControllerStage, _controller_error
from sim.hw.core_model.movement import MovementStage
from sim.hw.core_model.ppu import PpuStage, _check_int
from sim.hw.core_model.reduce import LaneReduceStage
from sim.hw.core_model.zero_skip import ZeroSkipStage

__all__ = ["CoreModel", "CoreRun", "CORE_OPS"]

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
_AND_FU, _AND2, _OR2 = Opcode.AND_FU.value, Opcode.AND2.value, Opcode.OR2.value
_MOVE = Opcode.MOVE.value
_BITCOUNT = Opcode.BITCOUNT.value


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


class CoreModel(ControllerStage, ArrayStage, MovementStage, LaneReduceStage, PpuStage,
                ZeroSkipStage, BitCounterStage):
    """Numpy/Python model of ``rtl.core.Core``: same host interface, same results, same
    counters, same error conditions.

    Parameters
    ----------
    config : AcceleratorConfig
        Subarray size (rows x columns) and technology (write semantics), ``operand_bits`` (the
        transpose buffer's planes), ``acc_bits``.
    subarrays : int or None
        Subarrays of the mat (K), in [1, 64]; default ``config.subarrays_per_mat``. Rows are
        W = K * ``config.columns`` bits wide (``columns``).
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
        self._row_mask = (1 << max(1, (cfg.rows - 1).bit_length())) - 1
        self.error = False                   # sticky error
        self.reason = ""
        self._init_controller()
        self._init_array(cfg)
        self._init_zero_skip(cfg)
        self._init_movement(cfg)
        self._init_lanes(cfg)
        self._init_ppu(cfg)
        self._en = self._ones

    def _subarray_columns(self, first: int, count: int) -> int:
        """The mat columns of subarrays ``first .. first + count - 1``, packed."""
        c = self.subarray_columns
        return ((1 << count * c) - 1) << first * c

    def run(self, program_words) -> CoreRun:
        """Load ``program_words`` into the instruction memory, start, run to done.

        The controller's micro-op trace depends on the program alone: it is expanded once per
        program (:func:`~sim.hw.core_model.expand_program`) and kept for the next runs.

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
        self._en = self._ones                    # MOVE SUBSEL's subarray enables (columns)
        self._emit_cycle = -10
        for lanes in self._lanes:
            lanes.start()
        self.error, self.reason = False, ""
        if self._array_failed:
            self._fail("the latest array write command before start failed")
        self._writes = self._erases = self._programs = 0
        self._bits_programmed = self._bits_written = 0
        self._zs_start()
        cached = self._program_trace(words)
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

    def _fail(self, why: str) -> None:
        if not self.error:
            self.error, self.reason = True, why
        # (later causes are not recorded: the reason names the first)

    def _execute(self, steps) -> None:
        """Play the micro-ops ``(opcode value, imm, a, b, d, issue cycle)`` through S1 - S3."""
        # Local aliases and integer opcodes: this loop runs once per micro-op; each stage's
        # work on it is a closure of the stage's module over this run's state.
        cells, buf = self._cells, self._buffer
        rows, row_mask = self.rows, self._row_mask
        slots = self.buffer_slots
        faulty = self._fault_en
        codes = self._codes
        zs = self._zs
        move, write = self._move_step(), self._write_step()
        datapath, ppu_step = self._datapath_step(), self._ppu_step
        for code, imm, a, b, d, c in steps:
            if code == _REQUANT:
                if zs and self._zs_taken:      # a skipped tile: the addend from slot b
                    self._requant_skipped(imm, a, b, d, c)
                else:
                    ppu_step(a, d, imm, c)
                continue
            if code == _MOVE:
                move(imm, a, b, d, c)
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
                write(code, imm, a, ra, b, c, d)
                continue
            if code == _ERASE:
                self._erases += 1
                self._array_command(MacroCmd.ERASE, ra, 0, code, a, c, self._en)
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
            en = self._en                      # MOVE SUBSEL: the enabled subarrays sense
            if faulty:                         # the sense amplifiers' faults, after AND / OR
                if en == self._ones:
                    x ^= self._fault_flips()
                else:                          # a disabled subarray's LFSRs do not step
                    mat = self._mat
                    old = mat.lfsr_planes
                    x ^= self._fault_flips() & en
                    mat.lfsr_planes = [(p & en) | (q & ~en)
                                       for p, q in zip(mat.lfsr_planes, old, strict=True)]
            x &= en
            # ---- S2, S3: the lanes, the reduction
            datapath(code, imm, x, w, c)
