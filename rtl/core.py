"""The accelerator core: controller, MTJ array, weight buffer, lanes, reduction and PPU in one
top level with a host interface."""

import dataclasses

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.abs_diff_lane import AbsDiffLane, AbsDiffOp
from rtl.bit_counter import BitCounter, BitCounterOp, BitCountOut
from rtl.column_reduce import ColumnReduce, ReduceOp
from rtl.config import check_config
from rtl.controller import Controller
from rtl.fa_array import FaArray, FaArrayOp
from rtl.fa_fs import FaFs, FaFsOp
from rtl.isa import (
    AGU_ADDR_BITS, COUNTER_BITS, DATAPATH_OPS, N_COUNTERS, OFFSET_BITS,
    OPERAND_BITS, ZERO_SKIP_COUNTERS, MoveOp, Opcode, WriteSrc,
)
from rtl.min_lane import MinLane, MinLaneOp
from rtl.mtj_array import FAULT_THRESHOLD_BITS, LFSR_BITS, MacroCmd, MtjArray
from rtl.ppu import Ppu, thresh_bits
from rtl.routes import lanes_of, opcodes_of

__all__ = ["Core", "CORE_OPS", "REDUCE_OPS", "BUFFER_OPS", "PIPELINE_DEPTH"]

#: Micro-ops a core with every route executes; a core executes those of its routes
#: (:attr:`Core.ops`, ``rtl.routes.opcodes_of``), any other datapath opcode sets ``error``.
CORE_OPS = (Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
            Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.FA_STEP, Opcode.WRITE_ROW, Opcode.ERASE,
            Opcode.PROGRAM, Opcode.REQUANT, Opcode.MOVE, Opcode.BITCOUNT)
#: Micro-ops whose sensed row goes to the reduction unit (``imm`` = ``ReduceOp``).
REDUCE_OPS = (Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
              Opcode.MIN_STEP)
#: Micro-ops that read the weight buffer at slot ``b``.
BUFFER_OPS = (Opcode.AND_FU, Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.FA_STEP,
              Opcode.WRITE_ROW, Opcode.PROGRAM)
#: Stages after issue: a micro-op's last effect lands at the end of cycle issue + 2.
PIPELINE_DEPTH = 2


def _below(value, limit):
    """``value < limit``; for a power-of-two limit as a reduction of the high bits (yosys trims
    a constant operand, Verilator -Wall then warns WIDTHEXPAND)."""
    k = ceil_log2(limit)
    if 1 << k == limit:
        return ~value[k:].any() if k < len(value) else Const(1, 1)
    if k >= len(value):
        return value < limit
    # The low k bits against a k-bit constant whose top bit is set (nothing to trim).
    return ~value[k:].any() & (value[:k] < Const(limit, k))


def _equals(value, constant):
    """``value == constant`` as a reduction (yosys trims the constant of an ``==``, and
    Verilator -Wall then warns WIDTHEXPAND)."""
    return ~(value ^ Const(constant, len(value))).any()


def _check_param(name, value, lo, hi, *, power_of_two=False):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")
    if not lo <= value <= hi or (power_of_two and value & (value - 1)):
        what = "a power of two" if power_of_two else "an int"
        raise ValueError(f"{name} must be {what} in [{lo}, {hi}], not {value!r}")


class Core(wiring.Component):
    """A mat: ``subarrays`` subarrays in lock-step with their periphery under one controller,
    and the on-chip data movement between layers. The unit that runs a compiled network.

    The mat row is ``W = subarrays * columns`` bits: mat column ``k * columns + j`` is column
    ``j`` of subarray ``k`` (an :class:`~rtl.mtj_array.MtjArray` of ``rows x columns``, fault
    seeds those of mat column ``k * columns + j``). Every subarray gets the same array command
    and rows in the same cycle (with route ``dima_binconv``: every subarray ``MOVE SUBSEL``
    enabled, seed 002's class gate, ``_class_gate``); the weight buffer, the FU line, the lanes
    and the transpose buffer span the mat row. Each subarray has its own reduction unit
    (popcount of its ``columns`` columns, shift-accumulate); ``REQUANT`` hands the PPU one of
    them or their sum.

    The core is generated from ``config.routes`` (``rtl.routes``): the min lanes exist only
    if a route needs them (``write_free``), the abs-diff lanes likewise (``abs_diff``) and the
    FA/FS lanes (``dima_binconv``, ``rtl.fa_fs``, one per column pair) and the per-column
    bit-counters (``nand_inmem``, ``rtl.bit_counter``) and the full-adder array (``jeit_fa``,
    ``rtl.fa_array``, a bit-serial adder tree per subarray); a
    micro-op or write source of a route the configuration does not have is not implemented and
    sets ``error`` (:attr:`ops`, :attr:`lanes`).

    Datapath, three stages, one micro-op per cycle, except where the device is slower than
    the clock (device timing, below):

    * **S1** (issue cycle): the array command, the weight-buffer read (``buffer_slots`` words
      of W bits, combinational read at slot ``b``; it drives the FU line and the write data),
      the address tables of a GATHER.
    * **S2**: the sensed row (the array answers the cycle after a sense command) and the
      buffer word registered in S1 feed the min lanes (``rtl.min_lane``), the abs-diff lanes
      (``rtl.abs_diff_lane``) and the FA/FS lanes (``rtl.fa_fs``); a GATHER reads the data
      memory and writes the transpose buffer.
    * **S3**: the reduction units (``rtl.column_reduce``) and the PPU (``rtl.ppu``).

    Data memory: the PPU's output memory (``out_depth`` words of 32 bits) is also where the
    layers' activations live: the host writes the input image into it, the PPU writes each
    layer's outputs at its pointer, and GATHER reads them back. The transpose buffer holds
    ``n = operand_bits`` planes of W bits: GATHER puts the n bits of one activation into one
    column, and WRITE_ROW / PROGRAM with ``WriteSrc.TBUF`` write a plane as an array row: that
    is how a layer's im2col bit-plane rows are built on chip from the previous layer's outputs.
    GATHER's address comes from two tables the host loads with the weights: the offset table
    (an entry per term of a patch: ``offset``, ``kpos``) and the patch table (an entry per
    patch: ``base``, ``mask``): word ``(base + offset) mod 2**16`` if bit ``kpos`` of ``mask``
    is set, else 0 (the zero padding of a convolution).

    Micro-ops (operands a, b, d and imm resolved by the controller, ``rtl.isa``):

    ========== ====================================== ============================ ==============
    opcode     S1                                     S2                           S3
    ========== ====================================== ============================ ==============
    READ,      READ row a                             -                            reduce ``imm``
    SHIFT_ACC                                                                      of the row
    AND_FU     AND_FU row a, FU = buffer[b]           -                            reduce ``imm``
    AND2, OR2  AND2 / OR2 rows a, b                   -                            reduce ``imm``
    MIN_STEP   READ row a (x_b), buffer[b] (w_b)      min lanes: START if          reduce ``imm``
                                                      ``imm`` is L1_FIRST, else    with x_b, w_b,
                                                      STEP                         min_b
    FS_STEP    READ row a (x_b), buffer[b] (w_b)      abs-diff lanes: ``imm`` bit  ``jeit_fa``:
                                                      1 DIFF else SIGN, bit 0      DIFF with bit 2
                                                      ``first``                    steps the FA
                                                                                   array on the
                                                                                   lanes' out
    FA_STEP    READ row a (A_b even, X_b odd          FA/FS lane g on columns      -
               columns), buffer[b] (the signs)        2g, 2g+1: ADDSUB (ADDSUB0
                                                      if ``imm`` bit 0), subtract
                                                      if buffer bit 2g+1
    WRITE_ROW  WRITE row a, all columns; data by      -                            -
               ``imm`` (``WriteSrc``): BUFFER
               buffer[b], ABS_DIFF the abs-diff
               ``out``, TBUF transpose plane b,
               FA_FS the FA/FS lanes' ``out`` into
               the even columns only, BIT_COUNTER     BIT_COUNTER(_XW): the
               the counters' LSBs, BIT_COUNTER_XW     counters SHIFT right
               the LSBs rotated: column j gets
               column (j + b) mod width (b below
               width), BIT_COUNTER_XWM the same,
               column j written only if column
               (j + b) of buffer[d] is set
    ERASE      ERASE the strip of row a               -                            -
    PROGRAM    PROGRAM row a, data as WRITE_ROW       -                            -
    REQUANT    -                                      -                            PPU step,
                                                                                   channel a,
                                                                                   addend d
    BITCOUNT   if it senses (COUNT, or out SA /       bit-counters: ``imm`` bits   -
               NOT_SA): READ row a (AND_FU with       0-1; out (bits 3-4): buffer
               buffer[b] if ``imm`` bit 2); else      slot d = the sensed row, its
               no command                             inverse or the counters'
                                                      LSBs after the op
    MOVE       GATHER: tables b, d; SUBSEL: enable    GATHER: column a of the      SETPTR /
               subarrays a .. a + b - 1               transpose buffer; CLEAR      ADDPTR: PPU
                                                      it                           pointer, a
    ========== ====================================== ============================ ==============

    For the one-row reductions ``row_w`` and ``row_min`` are 0 (so ``L1_FIRST`` loads the
    popcount). On a core with the FA array (``jeit_fa``): an FS_STEP DIFF with ``imm`` bit 2
    steps the array in its S3 (bit 0 a new sum, bit 3 the last plane: the array then flushes
    ``ceil(log2 columns)`` more cycles on its own and the core stays busy until it is done);
    from then until the next reduce micro-op (any ``ReduceOp``, HOLD too) the subarrays' sums
    stand in for their accumulators as REQUANT's addend; a REQUANT reads them as left by the
    array steps of the cycles before its S3 (during a flush: the bits landed so far).
    REQUANT's addend: ``d = 0`` the sum of all the subarrays' accumulators (mod
    ``2**acc_bits``: the dot product over the whole mat row), ``d = k + 1`` subarray k's
    (``subarrays`` dot products side by side). Every other datapath opcode (CMP_STEP,
    RELU, POOL) is not implemented by this core and sets ``error``.

    Hazards the program must respect (the compiler ``sim.compile.compiler`` does, the model
    ``sim.hw.core_model`` checks nothing but computes the same): a WRITE_ROW / PROGRAM taking the
    abs-diff ``out`` reads it at its S1, so the write-back of the difference bit of an FS_STEP
    DIFF issued in cycle c must be issued in cycle c + 2 or later, before the next DIFF's S2
    (likewise a write from ``FA_FS`` and its FA_STEP); a write from ``BIT_COUNTER`` takes the
    counters' LSBs as left by every micro-op issued before it (the counter op in S2 is
    bypassed, ``BitCounter.lsb_next``), and shifts them in its S2; a BITCOUNT's buffer write
    (its S2) is forwarded to the buffer read of the micro-op issued the cycle after, so every
    micro-op sees the buffer as left by those issued before it;
    a WRITE_ROW / PROGRAM from the transpose buffer sees the GATHERs and CLEARs issued 2 or
    more cycles before it; a GATHER sees the words of REQUANTs issued 2 or more cycles before
    it; REQUANT reads the accumulators as left by every micro-op issued before it.

    ``error`` (sticky, cleared by ``start``): the controller's error, an unsupported micro-op
    or ``imm``, a row operand not below ``rows``, a slot operand not below ``buffer_slots``, a
    transpose plane not below ``operand_bits``, a GATHER column not below W or table entry not
    below the table's depth or data-memory word not below ``out_depth``, a REQUANT ``d`` above
    ``subarrays``, the arrays' error (a write not supported by the technology), a PROGRAM
    into a cell programmed since its strip's last erase, a channel not below ``channels``, an
    output-memory overflow or a pointer beyond ``out_depth`` in the PPU. Array commands from
    the host set it too (check it before ``start``).

    Device timing (``config.stall_table``, ``AcceleratorConfig.op_cycles``): a micro-op whose
    device operation takes c > 1 clock cycles (an STT write of 10 ns at 133 MHz: c = 2) acts
    in the cycle it is issued, like any other (its S1: the array command starts, the write
    data are taken), and keeps the array busy c - 1 more cycles, during which the next
    micro-op is held on the controller's issue port (``ready`` low: stalls, counted by the
    controller's ``stalls`` counter and in ``cycles``). Control instructions the controller
    executes meanwhile (NOP, LOOP, an unfolded ENDLOOP) count towards the c cycles. The
    hazard distances below are in cycles after the holds. A table of all ones generates no
    hold logic (``ready`` is constant 1).

    Zero skipping (``config.zero_skip`` only; no such hardware otherwise): a WRITE_ROW /
    PROGRAM from ``WriteSrc.TBUF_ZS`` writes the plane as ``TBUF`` and sets row a's zero flag
    if the whole transpose buffer is 0 (every other write of the row clears it); a ``MOVE
    SKIPZ`` (S1) whose row a has the flag makes the controller skip the next b instructions,
    and the REQUANTs after it take the low ``acc_bits`` bits of buffer slot b as the addend
    (sampled at their S1) until the next SKIPZ. Counters at indices ``N_COUNTERS ..``
    (``rtl.isa.ZERO_SKIP_COUNTERS``, cleared by ``start``): GATHERs and the zero words among
    them (S2), the operands gathered since the previous TBUF_ZS of plane 0 counted at a
    TBUF_ZS of plane 0 from an all-zero buffer, SKIPZ taken, and the sum of their d.

    Timing: ``start`` in an idle cycle starts the controller (``rtl.controller``) and clears
    the PPU's state (its pointer to 0) and ``error``; ``busy`` stays high until the last
    micro-op has left the pipeline and the array is no longer busy, ``done`` rises the cycle
    after. The counters are the controller's: ``cycles`` counts the controller's busy cycles
    (the 2-cycle pipeline drain, and a write still busy after the HALT, are not counted). The
    memories and the transpose buffer keep their contents across runs.

    Parameters
    ----------
    config : AcceleratorConfig
        The subarray (rows x columns, technology, strips, faults), widths of the lanes.
    subarrays : int or None
        Subarrays in the mat, in [1, 64]; default ``config.subarrays_per_mat``.
    imem_depth : int or None
        Instruction words, a power of two in [2, 65536]. Default ``config.program_words``.
    buffer_slots : int or None
        Weight-buffer words of W bits, a power of two in [2, 2**config.isa_base_bits] (slot
        operands are operand bases). Default ``config.buffer_slots``.
    channels : int or None
        Requantization table entries, in [1, 4096]. Default ``config.requant_channels``.
    out_depth : int or None
        Data (output) memory words of 32 bits, in [1, 65536]. Default ``config.data_words``.
    offset_depth, patch_depth : int or None
        Offset- and patch-table entries, powers of two in [2, 2**config.isa_base_bits].
        Default ``config.offset_entries`` and ``config.patch_entries``. (Every preset: 1024
        instruction words, 2048 slots, 256 channels, 4096 data words, 1024 + 2048 table
        entries, a 32-bit patch mask, 64-bit instruction words: ``rtl.config.SIZE_FIELDS``.)
    faults : bool
        Build the arrays' sensing-fault injection (default); without it the ``fault_*`` ports
        are ignored (``rtl.mtj_array.MtjArray``).

    Members
    -------
    prog_addr, prog_data, prog_we : In
        Host program write port (``rtl.controller.Controller``), ignored while busy.
    buf_we, buf_addr, buf_data : In
        Host weight-buffer write port (``buf_data`` W bits), ignored while busy.
    tbl_we, tbl_addr, tbl_mult, tbl_shift, tbl_bias : In
        Host requantization-table write port (``rtl.ppu.Ppu``), ignored while busy.
    thr_we, thr_addr, thr_data : In
        Only on a core with route ``dima_binconv``: the host port of the PPU's threshold stage
        (seed 002 eq. 3, ``rtl.ppu.Ppu``), ignored while busy.
    agu_we, agu_sel, agu_addr, agu_data : In
        Host address-table write port: ``agu_sel`` 0 the offset table (``agu_data`` =
        ``offset | kpos << 16``), 1 the patch table (``base | mask << 16``); ignored while
        busy or when ``agu_addr`` is not below the table's depth.
    dmem_we, dmem_waddr, dmem_wdata : In
        Host data-memory write port, ignored while busy.
    arr_valid, arr_cmd, arr_row, arr_data, arr_mask : In
        One array command from the host to every subarray (``rtl.mtj_array.MacroCmd``;
        ``arr_data`` and ``arr_mask`` W bits), ignored while busy.
    fault_en, fault_load, fault_seed, fault_threshold : In
        The arrays' sensing-fault controls (``rtl.mtj_array.MacroSignature``); ``fault_load``
        is ignored while busy (a reload would cut a run's fault stream in two).
    out_raddr : In
        Data-memory word to show on ``out_rdata`` (combinational).
    out_rdata : Out(32)
    out_count : Out
        The PPU's write pointer.
    start : In(1)
    busy, done, error : Out(1)
    counter_sel : In, counter_value : Out(32)
        The controller's performance counters (``rtl.isa.counter_names``).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """

    def __init__(self, *, config, subarrays=None, imem_depth=None, buffer_slots=None,
                 channels=None, out_depth=None, offset_depth=None, patch_depth=None,
                 faults=True):
        self._config = cfg = check_config(config)
        if subarrays is None:
            subarrays = cfg.subarrays_per_mat
        # The sizes default to the configuration's (rtl.config.SIZE_FIELDS); an override may
        # be smaller, or larger up to what the configuration's operand bases address.
        sizes = {"imem_depth": cfg.program_words, "buffer_slots": cfg.buffer_slots,
                 "channels": cfg.requant_channels, "out_depth": cfg.data_words,
                 "offset_depth": cfg.offset_entries, "patch_depth": cfg.patch_entries}
        given = {"imem_depth": imem_depth, "buffer_slots": buffer_slots, "channels": channels,
                 "out_depth": out_depth, "offset_depth": offset_depth,
                 "patch_depth": patch_depth}
        imem_depth, buffer_slots, channels, out_depth, offset_depth, patch_depth = (
            sizes[k] if v is None else v for k, v in given.items())
        top = 1 << cfg.isa_base_bits
        _check_param("subarrays", subarrays, 1, 64)
        _check_param("imem_depth", imem_depth, 2, 1 << 16, power_of_two=True)
        _check_param("buffer_slots", buffer_slots, 2, top, power_of_two=True)
        _check_param("channels", channels, 1, 4096)
        _check_param("out_depth", out_depth, 1, 1 << 16)
        _check_param("offset_depth", offset_depth, 2, top, power_of_two=True)
        _check_param("patch_depth", patch_depth, 2, top, power_of_two=True)
        if not isinstance(faults, bool):
            raise TypeError(f"faults must be a bool, not {faults!r}")
        self._subarrays, self._faults = subarrays, faults
        self._imem_depth, self._buffer_slots = imem_depth, buffer_slots
        self._channels, self._out_depth = channels, out_depth
        self._thresholds = "dima_binconv" in cfg.routes     # the PPU's threshold stage
        self._offset_depth, self._patch_depth = offset_depth, patch_depth
        width = subarrays * cfg.columns
        chan_bits = max(1, ceil_log2(channels))
        out_bits = max(1, ceil_log2(out_depth))
        super().__init__({
            "prog_addr":       In(ceil_log2(imem_depth)),
            "prog_data":       In(cfg.isa.word_bits),
            "prog_we":         In(1),
            "buf_we":          In(1),
            "buf_addr":        In(ceil_log2(buffer_slots)),
            "buf_data":        In(width),
            "tbl_we":          In(1),
            "tbl_addr":        In(chan_bits),
            "tbl_mult":        In(signed(16)),
            "tbl_shift":       In(6),
            "tbl_bias":        In(signed(48)),
            **({"thr_we":   In(1),
                "thr_addr": In(chan_bits + 8),
                "thr_data": In(signed(thresh_bits(cfg.acc_bits)))}
               if self._thresholds else {}),
            "agu_we":          In(1),
            "agu_sel":         In(1),
            "agu_addr":        In(max(AGU_ADDR_BITS, ceil_log2(max(offset_depth,
                                                                   patch_depth)))),
            "agu_data":        In(OFFSET_BITS + cfg.patch_mask_bits),
            "dmem_we":         In(1),
            "dmem_waddr":      In(out_bits),
            "dmem_wdata":      In(32),
            "arr_valid":       In(1),
            "arr_cmd":         In(MacroCmd),
            "arr_row":         In(max(1, ceil_log2(cfg.rows))),
            "arr_data":        In(width),
            "arr_mask":        In(width),
            "fault_en":        In(1),
            "fault_load":      In(1),
            "fault_seed":      In(LFSR_BITS),
            "fault_threshold": In(FAULT_THRESHOLD_BITS),
            "out_raddr":       In(out_bits),
            "out_rdata":       Out(32),
            "out_count":       Out(ceil_log2(out_depth + 1)),
            "start":           In(1),
            "busy":            Out(1),
            "done":            Out(1),
            "error":           Out(1),
            "counter_sel":     In(ceil_log2(N_COUNTERS)),
            "counter_value":   Out(COUNTER_BITS),
        })

    @property
    def config(self):
        return self._config

    @property
    def subarrays(self):
        return self._subarrays

    @property
    def lanes(self):
        """The lanes this core has (``rtl.routes.LANES``), from ``config.routes``."""
        return lanes_of(self._config.routes)

    @property
    def ops(self):
        """The datapath micro-ops this core executes (a frozenset of ``Opcode``)."""
        return opcodes_of(self._config.routes)

    @property
    def width(self):
        """Bits of a mat row: ``subarrays * config.columns``."""
        return self._subarrays * self._config.columns

    @property
    def imem_depth(self):
        return self._imem_depth

    @property
    def buffer_slots(self):
        return self._buffer_slots

    @property
    def channels(self):
        return self._channels

    @property
    def out_depth(self):
        return self._out_depth

    @property
    def offset_depth(self):
        return self._offset_depth

    @property
    def patch_depth(self):
        return self._patch_depth

    def _stall_logic(self, m, issue):
        """``(ready, fire, array_busy)`` of the issue port under the stall table.

        A micro-op of c > 1 cycles (``config.op_cycles``) acts in the cycle it is accepted (its
        S1: the array command starts, the write data are taken) and keeps the array busy c - 1
        more cycles: the next micro-op is held (``ready`` low) until c cycles after it. A table
        of all ones gives ``(1, issue.valid, None)`` and no logic at all: the Verilog of a core
        without stalls."""
        cfg = self._config
        if not cfg.has_stalls:
            return 1, issue.valid, None
        slow = {op: c for op, c in cfg.op_cycles.items() if c > 1 and op in DATAPATH_OPS}
        top = max(slow.values()) - 1
        left = Signal(range(top + 1), name="stall_left")    # busy cycles still to come
        width = len(left)
        # A continuous expression, not a Switch (see the decodes of S1 below).
        need = Const(0, width)
        for op, c in slow.items():
            need = Mux(_equals(issue.op.as_value(), op.value), Const(c - 1, width), need)
        busy, fire = Signal(name="array_busy"), Signal(name="stall_fire")
        m.d.comb += [busy.eq(left.any()), fire.eq(issue.valid & ~busy)]
        with m.If(fire):
            m.d.sync += left.eq(need)
        with m.Elif(busy):
            m.d.sync += left.eq((left - 1)[:width])
        return ~busy, fire, busy

    def _zero_skip_s1(self, m, zs, ctrl, fire, start, idle, mv, src, tbuf, row_bits):
        """Zero skipping (``config.zero_skip``), the issue stage: the rows' zero flags, a
        MOVE SKIPZ's test and the controller's ``skip``, the flag the REQUANTs sample, the
        counters (``rtl.isa.ZERO_SKIP_COUNTERS``) and their read-out."""
        issue, rows = ctrl.issue, self._config.rows
        m.submodules.zero_flags = flags = Memory(shape=1, depth=rows, init=[])
        flag_w, flag_r = flags.write_port(), flags.read_port(domain="comb")
        row_ok = _below(issue.a, rows)
        op = issue.op.as_value()
        skipz = _equals(op, Opcode.MOVE.value) & mv[MoveOp.SKIPZ]
        take = Signal(name="zs_take")
        m.d.comb += [flag_r.addr.eq(issue.a[:row_bits]),
                     take.eq(issue.valid & skipz & row_ok & flag_r.data),
                     ctrl.skip.eq(take)]
        # A row's zero flag: set by a TBUF_ZS write of an all-zero transpose buffer, cleared by
        # every other write of the row (micro-op or host).
        is_write = Const(0, 1)                     # a write micro-op this core executes
        for code in (Opcode.WRITE_ROW, Opcode.PROGRAM):
            if code in self.ops:
                is_write = is_write | _equals(op, code.value)
        tbuf_zero = Signal(name="zs_tbuf_zero")
        m.d.comb += tbuf_zero.eq(~Cat(*tbuf).any())
        cmd = self.arr_cmd.as_value()
        host_write = (self.arr_valid & idle & (_equals(cmd, MacroCmd.WRITE.value)
                                               | _equals(cmd, MacroCmd.PROGRAM.value)))
        with m.If(fire & is_write & row_ok):
            m.d.comb += [flag_w.addr.eq(issue.a[:row_bits]), flag_w.en.eq(1),
                         flag_w.data.eq(src[WriteSrc.TBUF_ZS] & tbuf_zero)]
        with m.Elif(host_write & _below(self.arr_row, rows)):
            m.d.comb += [flag_w.addr.eq(self.arr_row), flag_w.en.eq(1), flag_w.data.eq(0)]
        # The REQUANTs' flag: the latest SKIPZ taken; sampled at a REQUANT's S1, used in S3.
        rq1, rq2 = Signal(name="zs_rq1"), Signal(name="zs_rq2")
        zs["rq2"] = rq2
        with m.If(start):
            m.d.sync += zs["taken"].eq(0)
        with m.Elif(fire & skipz):
            m.d.sync += zs["taken"].eq(take)
        m.d.sync += [rq1.eq(zs["taken"]), rq2.eq(rq1)]
        # Counters, cleared by start.
        counters = [Signal(COUNTER_BITS, name=name) for name in ZERO_SKIP_COUNTERS]
        zs["counters"] = dict(zip(ZERO_SKIP_COUNTERS, counters, strict=True))
        zs["tile_ops"] = tile_ops = Signal(OPERAND_BITS, name="zs_tile_ops")
        zs["new_tile"] = new_tile = Signal(name="zs_new_tile")   # a TBUF_ZS of plane 0
        m.d.comb += new_tile.eq(fire & is_write & src[WriteSrc.TBUF_ZS] & ~issue.b.any())
        # The addends full width, assigned in a process (Verilator -Wall wants both operands
        # of + equally wide; a plain zero extension would be folded into the adder).
        tile_add, saved_add = Signal(COUNTER_BITS), Signal(COUNTER_BITS)
        skipped_tile, taken = new_tile & tbuf_zero, fire & take
        with m.If(skipped_tile):
            m.d.comb += tile_add.eq(tile_ops)
        with m.Else():
            m.d.comb += tile_add.eq(0)
        with m.If(taken):
            m.d.comb += saved_add.eq(issue.d)
        with m.Else():
            m.d.comb += saved_add.eq(0)
        one = Const(1, COUNTER_BITS)
        c = zs["counters"]
        with m.If(start):
            m.d.sync += [x.eq(0) for x in (c["zs_skipped"], c["zs_tiles"],
                                            c["zs_cycles_saved"])]
        with m.Else():
            with m.If(skipped_tile):
                m.d.sync += c["zs_skipped"].eq(c["zs_skipped"] + tile_add)
            with m.If(taken):
                m.d.sync += [c["zs_tiles"].eq(c["zs_tiles"] + one),
                             c["zs_cycles_saved"].eq(c["zs_cycles_saved"] + saved_add)]
        assert N_COUNTERS + len(counters) <= 1 << len(self.counter_sel)
        with m.Switch(self.counter_sel):
            for i, counter in enumerate(counters):
                with m.Case(N_COUNTERS + i):
                    m.d.comb += self.counter_value.eq(counter)
            with m.Default():
                m.d.comb += self.counter_value.eq(ctrl.counter_value)

    def _class_gate(self, m, arrays, a_cmd, fire, start, issue, mv):
        """Route ``dima_binconv``: the subarray enables (seed 002 sec. 3.2, class A and class B
        separate). ``MOVE SUBSEL`` (S1) enables subarrays ``a .. a + b - 1`` for the micro-ops
        issued after it (all at start); a micro-op's array command reaches the enabled
        subarrays only (the others get NOP: no sense, no write, no fault-LFSR step), the host's
        commands every subarray. Returns the sensed row as S2 sees it: 0 in the columns of the
        subarrays its micro-op did not enable."""
        k_sub = len(arrays)
        en = Signal(k_sub, name="sub_en", init=(1 << k_sub) - 1)
        en1 = Signal(k_sub, name="sub_en1", init=(1 << k_sub) - 1)
        gate = Signal(k_sub, name="sub_gate")
        hi = Signal(len(issue.a) + 1, name="subsel_hi")
        m.d.comb += [hi.eq(issue.a + issue.b), gate.eq(Mux(fire, en, (1 << k_sub) - 1))]
        set_en = fire & _equals(issue.op.as_value(), Opcode.MOVE.value) \
            & _equals(issue.imm, MoveOp.SUBSEL.value) & issue.b.any() & _below(hi, k_sub + 1)
        with m.If(start):
            m.d.sync += en.eq((1 << k_sub) - 1)
        with m.Elif(set_en):
            m.d.sync += en.eq(Cat(*[_below(issue.a, k + 1) & ~_below(hi, k + 1)
                                    for k in range(k_sub)]))
        m.d.sync += en1.eq(gate)
        for k, arr in enumerate(arrays):
            m.d.comb += arr.cmd.as_value().eq(Mux(gate[k], a_cmd.as_value(),
                                                  MacroCmd.NOP.value))
        sensed = Signal(len(arrays) * self._config.columns, name="sensed_gated")
        m.d.comb += sensed.eq(Cat(*[Mux(en1[k], arr.sensed, 0)
                                    for k, arr in enumerate(arrays)]))
        return sensed

    def _pad_register(self, m, start, v1, op1, imm1, a1, n):
        """The code a GATHER writes for a term outside the image: 0, or on a core with route
        ``dima_binconv`` the register ``MOVE SETPAD`` sets in its S2 (0 at start)."""
        if not self._thresholds:
            return Const(0, n)
        pad = Signal(n, name="pad_code")
        set_pad = Signal()
        m.d.comb += set_pad.eq(v1 & _equals(op1.as_value(), Opcode.MOVE.value)
                               & _equals(imm1, MoveOp.SETPAD.value))
        with m.If(start):
            m.d.sync += pad.eq(0)
        with m.Elif(set_pad):
            m.d.sync += pad.eq(a1[:n])
        return pad

    def _inmem_path(self, m, start, v1, op1, imm1, a1, d1, v2, op2, imm2, a2, d2, sensed,
                    tbuf, gather_value, g_valid1, ppu, pad_code):
        """Route ``nand_inmem``: the path of the layer sums into the array and of the
        in-memory outputs back to the data memory (``rtl.isa.MoveOp``, seed 001 sec. 4.2).
        S2: ``GSHIFT`` sets the gather shift (0 at start), a GATHER takes bits ``shift ..
        shift + n - 1`` of its word read as signed; ``LOADPLANE`` writes the sensed row into
        plane d. S3: ``SCATTER`` writes column a of the transpose buffer (as left by every
        micro-op issued before it) into data-memory word d through the host's write port (a
        REQUANT's word is written in its own S3, never the same cycle)."""
        n, width = len(tbuf), self.width
        is_move1 = v1 & _equals(op1.as_value(), Opcode.MOVE.value)
        gshift = Signal(5, name="gather_shift")
        with m.If(start):
            m.d.sync += gshift.eq(0)
        with m.Elif(is_move1 & _equals(imm1, MoveOp.GSHIFT.value) & _below(a1, 32)):
            m.d.sync += gshift.eq(a1[:5])
        m.d.comb += gather_value.eq(Mux(g_valid1, (ppu.g_rdata.as_signed() >> gshift)[:n],
                                        pad_code))
        with m.If(is_move1 & _equals(imm1, MoveOp.LOADPLANE.value)):
            for q, t in enumerate(tbuf):
                with m.If(_equals(d1, q)):
                    m.d.sync += t.eq(sensed)
        scatter = Signal(name="scatter3")
        column = Signal(n, name="scatter_column")
        col_bits = max(1, ceil_log2(width))
        onehot = Signal(width, name="scatter_onehot")      # as GATHER's column select
        m.d.comb += [
            scatter.eq(v2 & _equals(op2.as_value(), Opcode.MOVE.value)
                       & _equals(imm2, MoveOp.SCATTER.value) & _below(a2, width)
                       & _below(d2, self._out_depth)),
            onehot.eq(Const(1, width) << a2[:col_bits]),
            column.eq(Cat(*[(t & onehot).any() for t in tbuf])),
        ]
        with m.If(scatter):
            m.d.comb += [ppu.wr_en.eq(1), ppu.wr_addr.eq(d2[:len(ppu.wr_addr)]),
                         ppu.wr_data.eq(column)]

    def _zero_skip_s2(self, m, zs, start, is_gather, gather_value):
        """Zero skipping, S2: the zero-detect of each gathered operand (counters
        ``zs_operands``, ``zs_zero``) and the operands gathered since the latest TBUF_ZS of
        plane 0 (the next tile's)."""
        c, tile_ops = zs["counters"], zs["tile_ops"]
        one = Const(1, COUNTER_BITS)
        is_zero = Signal(name="zs_operand_zero")
        m.d.comb += is_zero.eq(is_gather & ~gather_value.any())
        base = Mux(zs["new_tile"], 0, tile_ops)
        with m.If(start):
            m.d.sync += [c["zs_operands"].eq(0), c["zs_zero"].eq(0), tile_ops.eq(0)]
        with m.Else():
            m.d.sync += tile_ops.eq(base + Mux(is_gather, Const(1, OPERAND_BITS),
                                               Const(0, OPERAND_BITS)))
            with m.If(is_gather):
                m.d.sync += c["zs_operands"].eq(c["zs_operands"] + one)
            with m.If(is_zero):
                m.d.sync += c["zs_zero"].eq(c["zs_zero"] + one)

    def _fa_array_s3(self, m, fat, abs_lane, v2, op2, imm2, reduces, accs):
        """Route ``jeit_fa``, S3: an FS_STEP DIFF with ``imm`` bit 2 steps the full-adder array
        (``rtl.fa_array``) on the difference bits its S2 left in the abs-diff lanes' ``out``
        (bit 0 a new sum, bit 3 the last plane); from then until a reduce micro-op, the
        subarrays' sums stand in for their accumulators as REQUANT's addend. Returns the
        addends per subarray."""
        acc_bits = self._config.acc_bits
        go, sel = Signal(name="fa_go"), Signal(name="fa_sel")
        with m.Switch(op2):
            with m.Case(Opcode.FS_STEP):
                m.d.comb += go.eq(v2 & imm2[1] & imm2[2])
            with m.Default():
                m.d.comb += go.eq(0)
        m.d.comb += [fat.d.eq(abs_lane.out), fat.last.eq(imm2[3]),
                     fat.op.eq(Mux(go, Mux(imm2[0], FaArrayOp.FIRST, FaArrayOp.STEP),
                                   FaArrayOp.HOLD))]
        with m.If(go):
            m.d.sync += sel.eq(1)
        with m.Elif(reduces):
            m.d.sync += sel.eq(0)
        return [Mux(sel, fat.sums[k * acc_bits:(k + 1) * acc_bits], acc)
                for k, acc in enumerate(accs)]

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        k_sub, cols, rows = self._subarrays, cfg.columns, cfg.rows
        width = k_sub * cols                        # the mat row: subarray k is k*cols ..
        n = cfg.operand_bits
        # the lanes see the mat row as one subarray (a mat narrower than the preset's, e.g.
        # 4 of nand_spin's 16, must not be re-checked at the preset's subarray count)
        wide_cfg = (cfg if k_sub == 1 else
                    dataclasses.replace(cfg, columns=width, subarrays_per_mat=1))
        ones = Const((1 << width) - 1, width)

        m.submodules.ctrl = ctrl = Controller(config=cfg, imem_depth=self._imem_depth)
        arrays = []
        for k in range(k_sub):
            arrays.append(MtjArray(config=cfg, first_column=k * cols, faults=self._faults))
            m.submodules[f"array{k}" if k_sub > 1 else "array"] = arrays[-1]
        lanes, ops = self.lanes, self.ops
        has_min, has_abs = "min" in lanes, "abs_diff" in lanes
        if has_min:
            m.submodules.min_lane = min_lane = MinLane(config=wide_cfg)
        if has_abs:
            m.submodules.abs_lane = abs_lane = AbsDiffLane(config=wide_cfg)
        has_fa = "fa_fs" in lanes
        has_bc = "bit_counter" in lanes
        if has_bc:                 # nand_inmem: the seed-001 per-column bit-counters
            m.submodules.bit_counter = bc = BitCounter(config=wide_cfg)
        if has_fa:                 # dima_binconv: one FA/FS lane per column pair (2g, 2g+1);
            # columns are a multiple of 8 (AcceleratorConfig), so the pairs never straddle.
            m.submodules.fa_lane = fa_lane = FaFs(config=cfg, lanes=width // 2)
        has_fat = "fa_array" in lanes
        if has_fat:                # jeit_fa: the seed-000 full-adder array, a tree per subarray
            m.submodules.fa_array = fat = FaArray(config=cfg, groups=k_sub)
        reds = []
        for k in range(k_sub):
            reds.append(ColumnReduce(config=cfg, l1_rows=has_min))
            m.submodules[f"reduce{k}" if k_sub > 1 else "reduce"] = reds[-1]
        m.submodules.ppu = ppu = Ppu(config=cfg, channels=self._channels,
                                     out_depth=self._out_depth, thresholds=self._thresholds)
        m.submodules.buffer = buffer = Memory(shape=width, depth=self._buffer_slots, init=[])
        buf_w = buffer.write_port()
        buf_r = buffer.read_port(domain="comb")
        m.submodules.otab = otab = Memory(shape=OFFSET_BITS + cfg.kpos_bits,
                                          depth=self._offset_depth, init=[])
        otab_w, otab_r = otab.write_port(), otab.read_port(domain="comb")
        m.submodules.ptab = ptab = Memory(shape=OFFSET_BITS + cfg.patch_mask_bits,
                                          depth=self._patch_depth, init=[])
        ptab_w, ptab_r = ptab.write_port(), ptab.read_port(domain="comb")
        tbuf = [Signal(width, name=f"tbuf{q}") for q in range(n)]

        # The mat's array command: every subarray gets the same one (lock-step).
        a_cmd = Signal(MacroCmd)
        row_bits = len(arrays[0].row_a)
        a_row_a, a_row_b = Signal(row_bits), Signal(row_bits)
        a_fu, a_data, a_mask = Signal(width), Signal(width), Signal(width)
        gated = self._thresholds    # dima_binconv: MOVE SUBSEL gates the subarrays' commands
        for k, arr in enumerate(arrays):
            sl = slice(k * cols, (k + 1) * cols)
            if not gated:
                m.d.comb += arr.cmd.eq(a_cmd)
            m.d.comb += [arr.row_a.eq(a_row_a), arr.row_b.eq(a_row_b),
                         arr.fu.eq(a_fu[sl]), arr.data.eq(a_data[sl]),
                         arr.mask.eq(a_mask[sl]),
                         arr.fault_en.eq(self.fault_en), arr.fault_seed.eq(self.fault_seed),
                         arr.fault_threshold.eq(self.fault_threshold)]
        sensed = Cat(*[arr.sensed for arr in arrays])
        arrays_error = Cat(*[arr.error for arr in arrays]).any()
        program_without_erase = Cat(*[arr.program_without_erase for arr in arrays]).any()

        # The pipeline registers (valid, opcode, imm, operands a and d) of S2 and S3, and the
        # data they carry.
        v1, v2 = Signal(), Signal()
        op1, op2 = Signal(Opcode), Signal(Opcode)
        imm1, imm2 = Signal(len(ctrl.issue.imm)), Signal(len(ctrl.issue.imm))
        a1, a2 = Signal(OPERAND_BITS), Signal(OPERAND_BITS)
        d1, d2 = Signal(OPERAND_BITS), Signal(OPERAND_BITS)
        w1, w2, x2 = Signal(width), Signal(width), Signal(width)
        g_addr1 = Signal(OFFSET_BITS)              # GATHER: the data-memory word, its use
        g_valid1 = Signal()

        # Device timing (config.stall_table): the micro-op on the issue port is accepted
        # (``fire``) when ``ready``; after one of c > 1 cycles the array is busy c - 1 cycles,
        # which hold the next micro-op (stalls) and keep the core busy.
        ready, fire, array_busy = self._stall_logic(m, ctrl.issue)
        idle = ~ctrl.busy & ~v1 & ~v2
        if array_busy is not None:
            idle = idle & ~array_busy
        if has_fat:                                 # the FA array's flush ends the run
            idle = idle & ~fat.busy
        start = self.start & idle
        host_agu = self.agu_we & idle
        m.d.comb += [
            self.busy.eq(~idle),
            ctrl.start.eq(start),
            ctrl.prog_addr.eq(self.prog_addr),
            ctrl.prog_data.eq(self.prog_data),
            ctrl.prog_we.eq(self.prog_we & idle),
            ctrl.counter_sel.eq(self.counter_sel),
            self.counter_value.eq(ctrl.counter_value),
            ctrl.issue.ready.eq(ready),
            buf_w.addr.eq(self.buf_addr),
            buf_w.data.eq(self.buf_data),
            buf_w.en.eq(self.buf_we & idle),
            otab_w.addr.eq(self.agu_addr),
            otab_w.data.eq(self.agu_data[:OFFSET_BITS + cfg.kpos_bits]),
            otab_w.en.eq(host_agu & ~self.agu_sel & _below(self.agu_addr, self._offset_depth)),
            ptab_w.addr.eq(self.agu_addr),
            ptab_w.data.eq(self.agu_data),
            ptab_w.en.eq(host_agu & self.agu_sel & _below(self.agu_addr, self._patch_depth)),
            ppu.tbl_we.eq(self.tbl_we & idle),
            ppu.tbl_addr.eq(self.tbl_addr),
            ppu.tbl_mult.eq(self.tbl_mult),
            ppu.tbl_shift.eq(self.tbl_shift),
            ppu.tbl_bias.eq(self.tbl_bias),
            ppu.out_raddr.eq(self.out_raddr),
            ppu.wr_en.eq(self.dmem_we & idle),
            ppu.wr_addr.eq(self.dmem_waddr),
            ppu.wr_data.eq(self.dmem_wdata),
            self.out_rdata.eq(ppu.out_rdata),
            self.out_count.eq(ppu.out_count),
            ppu.clear.eq(start),
        ]
        if self._thresholds:       # dima_binconv: the PPU's eq.-3 threshold stage
            m.d.comb += [ppu.thr_we.eq(self.thr_we & idle), ppu.thr_addr.eq(self.thr_addr),
                         ppu.thr_data.eq(self.thr_data)]
        for arr in arrays:
            m.d.comb += arr.fault_load.eq(self.fault_load & idle)
        done_seen = Signal()
        with m.If(start):
            m.d.sync += done_seen.eq(0)
        with m.Elif(ctrl.done & idle):
            m.d.sync += done_seen.eq(1)
        m.d.comb += self.done.eq(done_seen)

        # ---- S1: the micro-op on the issue port -------------------------------------------
        issue = ctrl.issue
        op, imm = issue.op, issue.imm
        slot_bits = ceil_log2(self._buffer_slots)
        # The buffer's read address: slot b, or slot d for a masked cross-write
        # (WriteSrc.BIT_COUNTER_XWM: b is its rotation, d the slot of the source lanes' mask).
        buf_addr = Signal(slot_bits)
        if has_bc:
            is_xwm = ((_equals(op.as_value(), Opcode.PROGRAM.value)
                       | _equals(op.as_value(), Opcode.WRITE_ROW.value))
                      & _equals(imm, WriteSrc.BIT_COUNTER_XWM.value))
            m.d.comb += buf_addr.eq(Mux(is_xwm, issue.d[:slot_bits], issue.b[:slot_bits]))
        else:
            m.d.comb += buf_addr.eq(issue.b[:slot_bits])
        m.d.comb += [buf_r.addr.eq(buf_addr),
                     otab_r.addr.eq(issue.b[:ceil_log2(self._offset_depth)]),
                     ptab_r.addr.eq(issue.d[:ceil_log2(self._patch_depth)])]
        w = buf_r.data
        if has_bc:       # a BITCOUNT's buffer write (its S2) forwarded to this S1's read
            bw_en, bw_addr, bw_data = Signal(), Signal(slot_bits), Signal(width)
            w_fwd = Signal(width)
            m.d.comb += w_fwd.eq(Mux(bw_en & (bw_addr == buf_addr), bw_data, w))
            w = w_fwd
        # The decodes of the new fields are continuous expressions (_equals), not Switches: a
        # process whose inputs keep their reset value for a whole run never runs in Icarus
        # (its outputs stay X).
        plane = Signal(width)                      # transpose-buffer plane b
        b_plane = issue.b[:max(1, ceil_log2(n))]
        pick = Const(0, width)
        for q in range(n):
            pick = Mux(_equals(b_plane, q), tbuf[q], pick)
        m.d.comb += plane.eq(pick)
        src = {v: _equals(imm, v.value) for v in WriteSrc}
        if cfg.zero_skip:                          # TBUF_ZS writes the plane as TBUF does
            src[WriteSrc.TBUF] = src[WriteSrc.TBUF] | src[WriteSrc.TBUF_ZS]
        write_data = Signal(width)
        src_bad = Signal()                         # WRITE_ROW / PROGRAM: a bad source
        lane_data = {}                             # the lanes' write sources
        if has_abs:
            lane_data[WriteSrc.ABS_DIFF] = abs_lane.out
        if has_fa:                                 # the sum bits into the even columns
            lane_data[WriteSrc.FA_FS] = Cat(*[Cat(fa_lane.out[g], Const(0, 1))
                                              for g in range(width // 2)])
        if has_bc:                                 # the LSBs, the S2 counter op bypassed
            lane_data[WriteSrc.BIT_COUNTER] = bc.lsb_next
            # Fig. 10's cross-write: lane j gets the LSB of lane (j + b) mod width
            xw = Signal(width)
            m.d.comb += xw.eq((Cat(bc.lsb_next, bc.lsb_next) >> issue.b)[:width])
        data, slot_src = w, src[WriteSrc.BUFFER]
        for v, d in lane_data.items():             # a missing lane's source is a bad source
            data, slot_src = Mux(src[v], d, data), slot_src | src[v]
        slot_bad = Mux(slot_src, ~_below(issue.b, self._buffer_slots), 1)
        if has_bc:                                 # BIT_COUNTER_XW(M): b below the lanes
            xw_src = src[WriteSrc.BIT_COUNTER_XW] | src[WriteSrc.BIT_COUNTER_XWM]
            data = Mux(xw_src, xw, data)
            slot_bad = Mux(src[WriteSrc.BIT_COUNTER_XWM],
                           ~_below(issue.b, width) | ~_below(issue.d, self._buffer_slots),
                           Mux(xw_src, ~_below(issue.b, width), slot_bad))
            # BIT_COUNTER_XWM's write mask: lane j is written if lane (j + b) mod width of
            # buffer slot d is set (the mask travels with the data over the same rotation)
            xw_mask = Signal(width)
            m.d.comb += xw_mask.eq((Cat(w, w) >> issue.b)[:width])
        m.d.comb += [
            write_data.eq(Mux(src[WriteSrc.TBUF], plane, data)),
            src_bad.eq(Mux(src[WriteSrc.TBUF], ~_below(issue.b, n), slot_bad)),
        ]
        write_mask = Signal(width)                 # FA_FS writes the even columns alone
        even = Const(sum(1 << 2 * g for g in range(width // 2)), width)
        lane_mask = Mux(src[WriteSrc.FA_FS], even, ones) if has_fa else ones
        if has_bc:
            lane_mask = Mux(src[WriteSrc.BIT_COUNTER_XWM], xw_mask, lane_mask)
        m.d.comb += write_mask.eq(lane_mask)
        # GATHER's address: patch base + term offset, used if the term's mask bit is set.
        g_offset = otab_r.data[:OFFSET_BITS]
        g_kpos = otab_r.data[OFFSET_BITS:]
        g_base = ptab_r.data[:OFFSET_BITS]
        g_mask = ptab_r.data[OFFSET_BITS:]
        g_sum = Signal(OFFSET_BITS + 1)
        g_use = Signal()
        use = Const(0, 1)
        for q in range(len(g_mask)):
            use = Mux(_equals(g_kpos, q), g_mask[q], use)
        m.d.comb += [g_sum.eq(g_base + g_offset), g_use.eq(use)]
        mv = {v: _equals(imm, v.value) for v in MoveOp}
        move_bad = Signal()
        move_ok = mv[MoveOp.CLEAR] | mv[MoveOp.SETPTR] | mv[MoveOp.ADDPTR]
        if cfg.zero_skip:                          # SKIPZ: a row operand below rows
            move_ok = move_ok | (mv[MoveOp.SKIPZ] & _below(issue.a, rows))
        if self._thresholds:                       # dima_binconv: SETPAD, SUBSEL
            move_ok = (move_ok | mv[MoveOp.SETPAD]
                       | (mv[MoveOp.SUBSEL] & issue.b.any()
                          & _below(issue.a + issue.b, k_sub + 1)))
        if has_bc:                # nand_inmem: GSHIFT, LOADPLANE, SCATTER (_inmem_path_s3)
            move_ok = (move_ok | (mv[MoveOp.GSHIFT] & _below(issue.a, 32))
                       | (mv[MoveOp.LOADPLANE] & _below(issue.a, rows) & _below(issue.d, n))
                       | (mv[MoveOp.SCATTER] & _below(issue.a, width)
                          & _below(issue.d, self._out_depth)))
        m.d.comb += move_bad.eq(
            Mux(mv[MoveOp.GATHER],
                ~_below(issue.a, width) | ~_below(issue.b, self._offset_depth)
                | ~_below(issue.d, self._patch_depth),
                ~move_ok))

        if gated:                  # seed 002's classes: only the enabled subarrays act
            sensed = self._class_gate(m, arrays, a_cmd, fire, start, issue, mv)

        def array_cmd(cmd, row_a, row_b, fu, data, mask):
            return [a_cmd.eq(cmd), a_row_a.eq(row_a), a_row_b.eq(row_b), a_fu.eq(fu),
                    a_data.eq(data), a_mask.eq(mask)]

        bad = Signal()
        row_ok = _below(issue.a, rows)
        zs = {"taken": Signal(name="zs_taken")} if cfg.zero_skip else {}
        row_b_ok = _below(issue.b, rows)
        slot_ok = _below(issue.b, self._buffer_slots)
        with m.If(fire):
            with m.Switch(op):
                for code, cmd in ((Opcode.READ, MacroCmd.READ), (Opcode.SHIFT_ACC, MacroCmd.READ),
                                  (Opcode.MIN_STEP, MacroCmd.READ),
                                  (Opcode.FS_STEP, MacroCmd.READ),
                                  (Opcode.FA_STEP, MacroCmd.READ),
                                  (Opcode.AND_FU, MacroCmd.AND_FU),
                                  (Opcode.AND2, MacroCmd.AND2), (Opcode.OR2, MacroCmd.OR2),
                                  (Opcode.WRITE_ROW, MacroCmd.WRITE),
                                  (Opcode.ERASE, MacroCmd.ERASE),
                                  (Opcode.PROGRAM, MacroCmd.PROGRAM)):
                    if code not in ops:             # no route of this core has its lanes
                        continue
                    with m.Case(code):
                        mask = (write_mask if code in (Opcode.WRITE_ROW, Opcode.PROGRAM)
                                else ones)
                        m.d.comb += array_cmd(cmd, issue.a[:row_bits], issue.b[:row_bits], w,
                                              write_data, mask)
                        checks = ~row_ok
                        if code in (Opcode.AND2, Opcode.OR2):
                            checks = checks | ~row_b_ok
                        if code in (Opcode.WRITE_ROW, Opcode.PROGRAM):
                            checks = checks | src_bad
                        elif code in BUFFER_OPS:
                            checks = checks | ~slot_ok
                        m.d.comb += bad.eq(checks)
                if Opcode.BITCOUNT in ops:  # nand_inmem: COUNT senses row a (AND FU)
                    with m.Case(Opcode.BITCOUNT):
                        # rtl.bit_counter: imm bits 0-1 the op, bit 2 AND_FU, 3-4 out
                        bc_count = _equals(imm[:2], BitCounterOp.COUNT.value)
                        bc_and = imm[2]
                        bc_out = imm[3:5]
                        bc_sense = bc_count | _equals(bc_out, BitCountOut.SA.value) \
                            | _equals(bc_out, BitCountOut.NOT_SA.value)
                        with m.If(bc_sense & bc_and):
                            m.d.comb += array_cmd(MacroCmd.AND_FU, issue.a[:row_bits], 0, w,
                                                  0, 0)
                        with m.Elif(bc_sense):
                            m.d.comb += array_cmd(MacroCmd.READ, issue.a[:row_bits], 0, 0,
                                                  0, 0)
                        with m.Else():
                            m.d.comb += array_cmd(MacroCmd.NOP, 0, 0, 0, 0, 0)
                        m.d.comb += bad.eq((~imm[:2].any() & ~bc_out.any())
                                           | (bc_and & ~bc_sense) | (bc_sense & ~row_ok)
                                           | (bc_and & ~slot_ok)
                                           | (bc_out.any() & ~_below(issue.d,
                                                                     self._buffer_slots)))
                with m.Case(Opcode.REQUANT):
                    m.d.comb += array_cmd(MacroCmd.NOP, 0, 0, 0, 0, 0)
                    m.d.comb += bad.eq(zs["taken"] & ~slot_ok if cfg.zero_skip else 0)
                with m.Case(Opcode.MOVE):
                    m.d.comb += array_cmd(MacroCmd.NOP, 0, 0, 0, 0, 0)
                    m.d.comb += bad.eq(move_bad)
                    if has_bc:              # LOADPLANE senses row a (nand_inmem)
                        with m.If(mv[MoveOp.LOADPLANE]):
                            m.d.comb += array_cmd(MacroCmd.READ, issue.a[:row_bits], 0, 0, 0, 0)
                with m.Default():
                    m.d.comb += array_cmd(MacroCmd.NOP, 0, 0, 0, 0, 0)
                    m.d.comb += bad.eq(1)
        with m.Elif(self.arr_valid & idle):
            m.d.comb += array_cmd(self.arr_cmd, self.arr_row, 0, 0, self.arr_data, self.arr_mask)
            m.d.comb += bad.eq(0)
        with m.Else():
            m.d.comb += array_cmd(MacroCmd.NOP, 0, 0, 0, 0, 0)
            m.d.comb += bad.eq(0)
        m.d.sync += [v1.eq(fire), op1.eq(op), imm1.eq(imm), a1.eq(issue.a),
                     d1.eq(issue.d), w1.eq(w), g_addr1.eq(g_sum[:OFFSET_BITS]),
                     g_valid1.eq(g_use)]
        if cfg.zero_skip:
            self._zero_skip_s1(m, zs, ctrl, fire, start, idle, mv, src, tbuf, row_bits)

        # ---- S2: lanes on the sensed row; the transpose buffer ------------------------------
        # Decodes are Switches that assign every flag in every case: yosys trims a constant
        # compared with ==, and Verilator -Wall then warns WIDTHEXPAND.
        is_min, is_fs, is_gather, is_clear, l1_first = (Signal(), Signal(), Signal(), Signal(),
                                                         Signal())
        with m.Switch(op1):
            if has_min:
                with m.Case(Opcode.MIN_STEP):
                    m.d.comb += [is_min.eq(v1), is_fs.eq(0), is_gather.eq(0), is_clear.eq(0)]
            if has_abs:
                with m.Case(Opcode.FS_STEP):
                    m.d.comb += [is_min.eq(0), is_fs.eq(v1), is_gather.eq(0), is_clear.eq(0)]
            with m.Case(Opcode.MOVE):
                m.d.comb += [is_min.eq(0), is_fs.eq(0),
                             is_gather.eq(v1 & _equals(imm1, MoveOp.GATHER.value)),
                             is_clear.eq(v1 & _equals(imm1, MoveOp.CLEAR.value))]
            with m.Default():
                m.d.comb += [is_min.eq(0), is_fs.eq(0), is_gather.eq(0), is_clear.eq(0)]
        with m.Switch(imm1[:4]):          # the ReduceOp field, as the reduction unit sees it
            with m.Case(ReduceOp.L1_FIRST.value):
                m.d.comb += l1_first.eq(1)
            with m.Default():
                m.d.comb += l1_first.eq(0)
        if has_min:
            m.d.comb += [
                min_lane.x_b.eq(sensed), min_lane.w_b.eq(w1),
                min_lane.op.eq(Mux(is_min, Mux(l1_first, MinLaneOp.START,
                                               MinLaneOp.STEP), MinLaneOp.HOLD)),
            ]
        if has_abs:
            m.d.comb += [
                abs_lane.x_b.eq(sensed), abs_lane.w_b.eq(w1), abs_lane.first.eq(imm1[0]),
                abs_lane.op.eq(Mux(is_fs, Mux(imm1[1], AbsDiffOp.DIFF, AbsDiffOp.SIGN),
                                   AbsDiffOp.HOLD)),
            ]
        if has_fa:                 # FA_STEP: lane g adds / subtracts column 2g+1 to column 2g
            is_fa = Signal()
            with m.Switch(op1):
                with m.Case(Opcode.FA_STEP):
                    m.d.comb += is_fa.eq(v1)
                with m.Default():
                    m.d.comb += is_fa.eq(0)
            m.d.comb += [
                fa_lane.a.eq(sensed[0::2]), fa_lane.b.eq(sensed[1::2]),
                fa_lane.sub.eq(w1[1::2]),
                fa_lane.op.eq(Mux(is_fa, Mux(imm1[0], FaFsOp.ADDSUB0, FaFsOp.ADDSUB),
                                  FaFsOp.HOLD)),
            ]
        if has_bc:                 # BITCOUNT: imm bits 0-1; a write from BIT_COUNTER shifts
            bc_op = bc.op.as_value()
            with m.Switch(op1):
                with m.Case(Opcode.BITCOUNT):
                    m.d.comb += bc_op.eq(Mux(v1, imm1[:2], BitCounterOp.HOLD.value))
                with m.Case(Opcode.WRITE_ROW, Opcode.PROGRAM):
                    m.d.comb += bc_op.eq(Mux(v1 & (_equals(imm1, WriteSrc.BIT_COUNTER.value)
                                                   | _equals(imm1,
                                                             WriteSrc.BIT_COUNTER_XW.value)
                                                   | _equals(imm1,
                                                             WriteSrc.BIT_COUNTER_XWM.value)),
                                             BitCounterOp.SHIFT.value,
                                             BitCounterOp.HOLD.value))
                with m.Default():
                    m.d.comb += bc_op.eq(BitCounterOp.HOLD.value)
            m.d.comb += bc.sensed.eq(sensed)
            # The output multiplexer into buffer slot d (BitCountOut): the sense amplifiers'
            # row, its inverse or the counters' LSBs after this op; it overrides the host port
            # (the host writes only when idle).
            bw_out = imm1[3:5]
            is_bc = Signal()
            with m.Switch(op1):
                with m.Case(Opcode.BITCOUNT):
                    m.d.comb += is_bc.eq(v1)
                with m.Default():
                    m.d.comb += is_bc.eq(0)
            m.d.comb += [
                bw_en.eq(is_bc & bw_out.any()),
                bw_addr.eq(d1[:slot_bits]),
                bw_data.eq(Mux(_equals(bw_out, BitCountOut.SA.value), sensed,
                               Mux(_equals(bw_out, BitCountOut.NOT_SA.value), ~sensed,
                                   bc.lsb_next))),
            ]
            with m.If(bw_en):
                m.d.comb += [buf_w.addr.eq(bw_addr), buf_w.data.eq(bw_data), buf_w.en.eq(1)]
        # GATHER: one word of the data memory into column a1 of every plane.
        out_bits = len(self.out_raddr)
        pad_code = self._pad_register(m, start, v1, op1, imm1, a1, n)
        gather_value = Signal(n)
        gather_bad = Signal()
        m.d.comb += [
            ppu.g_raddr.eq(g_addr1[:out_bits]),
            gather_value.eq(Mux(g_valid1, ppu.g_rdata[:n], pad_code)),
            gather_bad.eq(is_gather & g_valid1 & ~_below(g_addr1, self._out_depth)),
        ]
        # The column as a one-hot word (one shifter, then word-wide AND / OR per plane: a
        # per-bit case on the column would be W arms per plane).
        col_bits = max(1, ceil_log2(width))
        onehot = Signal(width)
        m.d.comb += onehot.eq(Const(1, width) << a1[:col_bits])
        with m.If(is_clear):
            m.d.sync += [t.eq(0) for t in tbuf]
        with m.Elif(is_gather):
            m.d.sync += [t.eq((t & ~onehot) | Mux(gather_value[q], onehot, 0))
                         for q, t in enumerate(tbuf)]
        if has_bc:                # nand_inmem: GSHIFT and LOADPLANE (S2), SCATTER (S3)
            self._inmem_path(m, start, v1, op1, imm1, a1, d1, v2, op2, imm2, a2, d2, sensed,
                             tbuf, gather_value, g_valid1, ppu, pad_code)
        m.d.sync += [v2.eq(v1), op2.eq(op1), imm2.eq(imm1), a2.eq(a1), d2.eq(d1), w2.eq(w1),
                     x2.eq(sensed)]
        if cfg.zero_skip:                   # the zero-detect of the gathered operand
            self._zero_skip_s2(m, zs, start, is_gather, gather_value)

        # ---- S3: reduction and PPU ----------------------------------------------------------
        reduces, min3, requant3, ptr3 = Signal(), Signal(), Signal(), Signal()
        with m.Switch(op2):
            if has_min:
                with m.Case(Opcode.MIN_STEP):
                    m.d.comb += [reduces.eq(v2), min3.eq(v2), requant3.eq(0), ptr3.eq(0)]
            with m.Case(*[op for op in REDUCE_OPS if op in ops]):
                m.d.comb += [reduces.eq(v2), min3.eq(0), requant3.eq(0), ptr3.eq(0)]
            with m.Case(Opcode.REQUANT):
                m.d.comb += [reduces.eq(0), min3.eq(0), requant3.eq(v2), ptr3.eq(0)]
            with m.Case(Opcode.MOVE):
                m.d.comb += [reduces.eq(0), min3.eq(0), requant3.eq(0), ptr3.eq(v2)]
            with m.Default():
                m.d.comb += [reduces.eq(0), min3.eq(0), requant3.eq(0), ptr3.eq(0)]
        accs = [red.acc for red in reds]
        if has_fat:
            accs = self._fa_array_s3(m, fat, abs_lane, v2, op2, imm2, reduces, accs)
        for k, red in enumerate(reds):
            sl = slice(k * cols, (k + 1) * cols)
            m.d.comb += [
                red.op.eq(Mux(reduces, imm2[:4], ReduceOp.HOLD)),
                red.row.eq(x2[sl]),
            ]
            if has_min:                    # the write-free route's second and third popcount
                m.d.comb += [red.row_w.eq(Mux(min3, w2[sl], 0)),
                             red.row_min.eq(Mux(min3, min_lane.min_b[sl], 0))]
        # REQUANT's addend: d = 0 the sum over the subarrays (the dot product across the mat;
        # every reduce op is linear), d = k + 1 subarray k's accumulator alone.
        acc_bits = cfg.acc_bits
        addend = Signal(signed(acc_bits))
        acc_sum = Signal(acc_bits)
        total = accs[0]
        for acc_k in accs[1:]:
            total = (total + acc_k)[:acc_bits]
        m.d.comb += acc_sum.eq(total)
        # (Continuous expressions, not a Switch: a process on d2 alone would never run in
        # Icarus when no program sets d, leaving d_bad at X.)
        d_bad = Signal()
        picked = acc_sum
        d_ok = _equals(d2, 0)
        for k, acc_k in enumerate(accs):
            hit = _equals(d2, k + 1)
            picked = Mux(hit, acc_k, picked)
            d_ok = d_ok | hit
        m.d.comb += [addend.eq(Mux(d_ok, picked, 0)), d_bad.eq(~d_ok)]
        if cfg.zero_skip:                   # a skipped tile: the precomputed dot (slot b)
            m.d.comb += addend.eq(Mux(zs["rq2"], w2[:acc_bits], Mux(d_ok, picked, 0)))
        chan_bits = len(ppu.channel)
        set3, add3 = Signal(), Signal()
        m.d.comb += [set3.eq(ptr3 & _equals(imm2, MoveOp.SETPTR.value)),
                     add3.eq(ptr3 & _equals(imm2, MoveOp.ADDPTR.value))]
        m.d.comb += [
            ppu.op_valid.eq(requant3 & ~d_bad),
            ppu.imm.eq(imm2),
            ppu.channel.eq(a2[:chan_bits]),
            ppu.acc.eq(addend),
            ppu.ptr_set.eq(set3),
            ppu.ptr_add.eq(add3),
            ppu.ptr_value.eq(a2),
        ]
        chan_bad = requant3 & (~_below(a2, self._channels) | d_bad)

        # ---- error --------------------------------------------------------------------------
        dp_error = Signal()
        with m.If(start):
            m.d.sync += dp_error.eq(0)
        with m.Elif((fire & bad) | chan_bad | gather_bad | arrays_error
                    | program_without_erase):
            m.d.sync += dp_error.eq(1)
        m.d.comb += self.error.eq(dp_error | ctrl.error | ppu.error)
        return m
