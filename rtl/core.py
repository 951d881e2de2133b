"""The accelerator core: controller, MTJ array, weight buffer, lanes, reduction and PPU in one
top level with a host interface."""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.abs_diff_lane import AbsDiffLane, AbsDiffOp
from rtl.column_reduce import ColumnReduce, ReduceOp
from rtl.config import check_config
from rtl.controller import Controller
from rtl.isa import COUNTER_BITS, N_COUNTERS, OPERAND_BITS, WORD_BITS, Opcode
from rtl.min_lane import MinLane, MinLaneOp
from rtl.mtj_array import FAULT_THRESHOLD_BITS, LFSR_BITS, MacroCmd, MtjArray
from rtl.ppu import Ppu

__all__ = ["Core", "CORE_OPS", "REDUCE_OPS", "BUFFER_OPS", "PIPELINE_DEPTH"]

#: Micro-ops the core executes; any other datapath opcode sets ``error``.
CORE_OPS = (Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
            Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.WRITE_ROW, Opcode.ERASE, Opcode.PROGRAM,
            Opcode.REQUANT)
#: Micro-ops whose sensed row goes to the reduction unit (``imm`` = ``ReduceOp``).
REDUCE_OPS = (Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
              Opcode.MIN_STEP)
#: Micro-ops that read the weight buffer at slot ``b``.
BUFFER_OPS = (Opcode.AND_FU, Opcode.MIN_STEP, Opcode.FS_STEP, Opcode.WRITE_ROW,
              Opcode.PROGRAM)
#: Stages after issue: a micro-op's last effect lands at the end of cycle issue + 2.
PIPELINE_DEPTH = 2

_ARRAY_OPS = CORE_OPS[:-1]   # all but REQUANT use the array


def _below(value, limit):
    """``value < limit``; for a power-of-two limit as a reduction of the high bits (yosys trims
    a constant operand, Verilator -Wall then warns WIDTHEXPAND)."""
    k = ceil_log2(limit)
    if 1 << k == limit:
        return ~value[k:].any() if k < len(value) else Const(1, 1)
    return value < limit


def _check_param(name, value, lo, hi, *, power_of_two=False):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")
    if not lo <= value <= hi or (power_of_two and value & (value - 1)):
        what = "a power of two" if power_of_two else "an int"
        raise ValueError(f"{name} must be {what} in [{lo}, {hi}], not {value!r}")


class Core(wiring.Component):
    """One subarray with its periphery under a controller: the unit that runs a compiled layer.

    Datapath, three stages, one micro-op per cycle (the core never stalls the controller):

    * **S1** (issue cycle): the array command and the weight-buffer read. The buffer
      (``buffer_slots`` words of ``columns`` bits, combinational read at slot ``b``) drives the
      array's FU line and the write data.
    * **S2**: the sensed row (the array answers the cycle after a sense command) and the
      buffer word registered in S1 feed the min lanes (``rtl.min_lane``) and the abs-diff lanes
      (``rtl.abs_diff_lane``).
    * **S3**: the reduction unit (``rtl.column_reduce``) and the PPU (``rtl.ppu``).

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
    FS_STEP    READ row a (x_b), buffer[b] (w_b)      abs-diff lanes: ``imm`` bit  -
                                                      1 DIFF else SIGN, bit 0
                                                      ``first``
    WRITE_ROW  WRITE row a, all columns; data =       -                            -
               abs-diff ``out`` if ``imm`` bit 0,
               else buffer[b]
    ERASE      ERASE the strip of row a               -                            -
    PROGRAM    PROGRAM row a, data as WRITE_ROW       -                            -
    REQUANT    -                                      -                            PPU step,
                                                                                   channel a
    ========== ====================================== ============================ ==============

    For the one-row reductions ``row_w`` and ``row_min`` are 0 (so ``L1_FIRST`` loads the
    popcount). Every other datapath opcode (FA_STEP, CMP_STEP, BITCOUNT, RELU, POOL, MOVE) is
    not implemented by this core and sets ``error``.

    Hazards the program must respect (the compiler ``sim.compiler`` does, the model
    ``sim.core_model`` checks nothing but computes the same): a WRITE_ROW / PROGRAM taking the
    abs-diff ``out`` reads it at its S1, so the write-back of the difference bit of an FS_STEP
    DIFF issued in cycle c must be issued in cycle c + 2 or later, before the next DIFF's S2;
    REQUANT reads the accumulator as left by every micro-op issued before it.

    ``error`` (sticky, cleared by ``start``): the controller's error, an unsupported micro-op,
    a row operand not below ``rows`` or a slot operand not below ``buffer_slots``, the array's
    error (a write not supported by the technology), a PROGRAM into a cell programmed since
    its strip's last erase, a channel not below ``channels`` or an output-memory overflow in
    the PPU. Array commands from the host set it too (check it before ``start``).

    Timing: ``start`` in an idle cycle starts the controller (``rtl.controller``) and clears
    the PPU's state and ``error``; ``busy`` stays high until the last micro-op has left the
    pipeline, ``done`` rises the cycle after. The counters are the controller's: ``cycles``
    counts the controller's busy cycles (the 2-cycle pipeline drain is not counted).

    Parameters
    ----------
    config : AcceleratorConfig
        The array (rows x columns, technology, strips, faults), widths of the lanes.
    imem_depth : int
        Instruction words, a power of two in [2, 65536]. Default 1024.
    buffer_slots : int
        Weight-buffer words of ``columns`` bits, a power of two in [2, 4096] (slot operands
        are 12-bit bases). Default 2048.
    channels : int
        Requantization table entries, in [1, 4096]. Default 256.
    out_depth : int
        Output-memory words of 32 bits, in [1, 65536]. Default 4096.

    Members
    -------
    prog_addr, prog_data, prog_we : In
        Host program write port (``rtl.controller.Controller``), ignored while busy.
    buf_we, buf_addr, buf_data : In
        Host weight-buffer write port, ignored while busy.
    tbl_we, tbl_addr, tbl_mult, tbl_shift, tbl_bias : In
        Host requantization-table write port (``rtl.ppu.Ppu``), ignored while busy.
    arr_valid, arr_cmd, arr_row, arr_data, arr_mask : In
        One array command from the host (``rtl.mtj_array.MacroCmd``), ignored while busy.
    fault_en, fault_load, fault_seed, fault_threshold : In
        The array's sensing-fault controls (``rtl.mtj_array.MacroSignature``); ``fault_load``
        is ignored while busy (a reload would cut a run's fault stream in two).
    out_raddr : In
        Output-memory word to show on ``out_rdata`` (combinational).
    out_rdata : Out(32)
    out_count : Out
        Words the PPU has written since ``start``.
    start : In(1)
    busy, done, error : Out(1)
    counter_sel : In, counter_value : Out(32)
        The controller's performance counters (``rtl.isa.counter_names``).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """

    def __init__(self, *, config, imem_depth=1024, buffer_slots=2048, channels=256,
                 out_depth=4096):
        self._config = cfg = check_config(config)
        _check_param("imem_depth", imem_depth, 2, 1 << 16, power_of_two=True)
        _check_param("buffer_slots", buffer_slots, 2, 4096, power_of_two=True)
        _check_param("channels", channels, 1, 4096)
        _check_param("out_depth", out_depth, 1, 1 << 16)
        self._imem_depth, self._buffer_slots = imem_depth, buffer_slots
        self._channels, self._out_depth = channels, out_depth
        cols = cfg.columns
        chan_bits = max(1, ceil_log2(channels))
        super().__init__({
            "prog_addr":       In(ceil_log2(imem_depth)),
            "prog_data":       In(WORD_BITS),
            "prog_we":         In(1),
            "buf_we":          In(1),
            "buf_addr":        In(ceil_log2(buffer_slots)),
            "buf_data":        In(cols),
            "tbl_we":          In(1),
            "tbl_addr":        In(chan_bits),
            "tbl_mult":        In(signed(16)),
            "tbl_shift":       In(6),
            "tbl_bias":        In(signed(48)),
            "arr_valid":       In(1),
            "arr_cmd":         In(MacroCmd),
            "arr_row":         In(max(1, ceil_log2(cfg.rows))),
            "arr_data":        In(cols),
            "arr_mask":        In(cols),
            "fault_en":        In(1),
            "fault_load":      In(1),
            "fault_seed":      In(LFSR_BITS),
            "fault_threshold": In(FAULT_THRESHOLD_BITS),
            "out_raddr":       In(max(1, ceil_log2(out_depth))),
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

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        cols, rows = cfg.columns, cfg.rows
        ones = Const((1 << cols) - 1, cols)

        m.submodules.ctrl = ctrl = Controller(config=cfg, imem_depth=self._imem_depth)
        m.submodules.array = array = MtjArray(config=cfg)
        m.submodules.min_lane = min_lane = MinLane(config=cfg)
        m.submodules.abs_lane = abs_lane = AbsDiffLane(config=cfg)
        m.submodules.reduce = red = ColumnReduce(config=cfg)
        m.submodules.ppu = ppu = Ppu(config=cfg, channels=self._channels,
                                     out_depth=self._out_depth)
        m.submodules.buffer = buffer = Memory(shape=cols, depth=self._buffer_slots, init=[])
        buf_w = buffer.write_port()
        buf_r = buffer.read_port(domain="comb")

        # The pipeline registers (valid, opcode, imm, operand a) of S2 and S3, and the data
        # they carry.
        v1, v2 = Signal(), Signal()
        op1, op2 = Signal(Opcode), Signal(Opcode)
        imm1, imm2 = Signal(len(ctrl.issue.imm)), Signal(len(ctrl.issue.imm))
        a1, a2 = Signal(OPERAND_BITS), Signal(OPERAND_BITS)
        w1, w2, x2 = Signal(cols), Signal(cols), Signal(cols)

        idle = ~ctrl.busy & ~v1 & ~v2
        start = self.start & idle
        m.d.comb += [
            self.busy.eq(~idle),
            ctrl.start.eq(start),
            ctrl.prog_addr.eq(self.prog_addr),
            ctrl.prog_data.eq(self.prog_data),
            ctrl.prog_we.eq(self.prog_we & idle),
            ctrl.counter_sel.eq(self.counter_sel),
            self.counter_value.eq(ctrl.counter_value),
            ctrl.issue.ready.eq(1),
            buf_w.addr.eq(self.buf_addr),
            buf_w.data.eq(self.buf_data),
            buf_w.en.eq(self.buf_we & idle),
            ppu.tbl_we.eq(self.tbl_we & idle),
            ppu.tbl_addr.eq(self.tbl_addr),
            ppu.tbl_mult.eq(self.tbl_mult),
            ppu.tbl_shift.eq(self.tbl_shift),
            ppu.tbl_bias.eq(self.tbl_bias),
            ppu.out_raddr.eq(self.out_raddr),
            self.out_rdata.eq(ppu.out_rdata),
            self.out_count.eq(ppu.out_count),
            ppu.clear.eq(start),
            array.fault_en.eq(self.fault_en),
            array.fault_load.eq(self.fault_load & idle),
            array.fault_seed.eq(self.fault_seed),
            array.fault_threshold.eq(self.fault_threshold),
        ]
        done_seen = Signal()
        with m.If(start):
            m.d.sync += done_seen.eq(0)
        with m.Elif(ctrl.done & idle):
            m.d.sync += done_seen.eq(1)
        m.d.comb += self.done.eq(done_seen)

        # ---- S1: the micro-op on the issue port -------------------------------------------
        issue = ctrl.issue
        op, imm = issue.op, issue.imm
        row_bits, slot_bits = len(array.row_a), ceil_log2(self._buffer_slots)
        m.d.comb += buf_r.addr.eq(issue.b[:slot_bits])
        w = buf_r.data
        write_data = Mux(imm[0], abs_lane.out, w)
        bad = Signal()
        row_ok = _below(issue.a, rows)
        row_b_ok = _below(issue.b, rows)
        slot_ok = _below(issue.b, self._buffer_slots)
        with m.If(issue.valid):
            with m.Switch(op):
                for code, cmd in ((Opcode.READ, MacroCmd.READ), (Opcode.SHIFT_ACC, MacroCmd.READ),
                                  (Opcode.MIN_STEP, MacroCmd.READ),
                                  (Opcode.FS_STEP, MacroCmd.READ),
                                  (Opcode.AND_FU, MacroCmd.AND_FU),
                                  (Opcode.AND2, MacroCmd.AND2), (Opcode.OR2, MacroCmd.OR2),
                                  (Opcode.WRITE_ROW, MacroCmd.WRITE),
                                  (Opcode.ERASE, MacroCmd.ERASE),
                                  (Opcode.PROGRAM, MacroCmd.PROGRAM)):
                    with m.Case(code):
                        m.d.comb += [array.cmd.eq(cmd), array.row_a.eq(issue.a[:row_bits]),
                                     array.row_b.eq(issue.b[:row_bits]), array.fu.eq(w),
                                     array.data.eq(write_data), array.mask.eq(ones)]
                        checks = ~row_ok
                        if code in (Opcode.AND2, Opcode.OR2):
                            checks = checks | ~row_b_ok
                        if code in BUFFER_OPS:
                            checks = checks | ~slot_ok
                        m.d.comb += bad.eq(checks)
                with m.Case(Opcode.REQUANT):
                    m.d.comb += [array.cmd.eq(MacroCmd.NOP), array.row_a.eq(0),
                                 array.row_b.eq(0), array.fu.eq(0), array.data.eq(0),
                                 array.mask.eq(0), bad.eq(0)]
                with m.Default():
                    m.d.comb += [array.cmd.eq(MacroCmd.NOP), array.row_a.eq(0),
                                 array.row_b.eq(0), array.fu.eq(0), array.data.eq(0),
                                 array.mask.eq(0), bad.eq(1)]
        with m.Elif(self.arr_valid & idle):
            m.d.comb += [array.cmd.eq(self.arr_cmd), array.row_a.eq(self.arr_row),
                         array.row_b.eq(0), array.fu.eq(0), array.data.eq(self.arr_data),
                         array.mask.eq(self.arr_mask), bad.eq(0)]
        with m.Else():
            m.d.comb += [array.cmd.eq(MacroCmd.NOP), array.row_a.eq(0), array.row_b.eq(0),
                         array.fu.eq(0), array.data.eq(0), array.mask.eq(0), bad.eq(0)]
        m.d.sync += [v1.eq(issue.valid), op1.eq(op), imm1.eq(imm), a1.eq(issue.a), w1.eq(w)]

        # ---- S2: lanes on the sensed row ----------------------------------------------------
        # Decodes are Switches that assign every flag in every case: yosys trims a constant
        # compared with ==, and Verilator -Wall then warns WIDTHEXPAND.
        is_min, is_fs, l1_first = Signal(), Signal(), Signal()
        with m.Switch(op1):
            with m.Case(Opcode.MIN_STEP):
                m.d.comb += [is_min.eq(v1), is_fs.eq(0)]
            with m.Case(Opcode.FS_STEP):
                m.d.comb += [is_min.eq(0), is_fs.eq(v1)]
            with m.Default():
                m.d.comb += [is_min.eq(0), is_fs.eq(0)]
        with m.Switch(imm1[:4]):          # the ReduceOp field, as the reduction unit sees it
            with m.Case(ReduceOp.L1_FIRST.value):
                m.d.comb += l1_first.eq(1)
            with m.Default():
                m.d.comb += l1_first.eq(0)
        m.d.comb += [
            min_lane.x_b.eq(array.sensed), min_lane.w_b.eq(w1),
            min_lane.op.eq(Mux(is_min, Mux(l1_first, MinLaneOp.START,
                                           MinLaneOp.STEP), MinLaneOp.HOLD)),
            abs_lane.x_b.eq(array.sensed), abs_lane.w_b.eq(w1), abs_lane.first.eq(imm1[0]),
            abs_lane.op.eq(Mux(is_fs, Mux(imm1[1], AbsDiffOp.DIFF, AbsDiffOp.SIGN),
                               AbsDiffOp.HOLD)),
        ]
        m.d.sync += [v2.eq(v1), op2.eq(op1), imm2.eq(imm1), a2.eq(a1), w2.eq(w1),
                     x2.eq(array.sensed)]

        # ---- S3: reduction and PPU ----------------------------------------------------------
        reduces, min3, requant3 = Signal(), Signal(), Signal()
        with m.Switch(op2):
            with m.Case(Opcode.MIN_STEP):
                m.d.comb += [reduces.eq(v2), min3.eq(v2), requant3.eq(0)]
            with m.Case(*REDUCE_OPS):
                m.d.comb += [reduces.eq(v2), min3.eq(0), requant3.eq(0)]
            with m.Case(Opcode.REQUANT):
                m.d.comb += [reduces.eq(0), min3.eq(0), requant3.eq(v2)]
            with m.Default():
                m.d.comb += [reduces.eq(0), min3.eq(0), requant3.eq(0)]
        chan_bits = len(ppu.channel)
        m.d.comb += [
            red.op.eq(Mux(reduces, imm2[:4], ReduceOp.HOLD)),
            red.row.eq(x2),
            red.row_w.eq(Mux(min3, w2, 0)),
            red.row_min.eq(Mux(min3, min_lane.min_b, 0)),
            ppu.op_valid.eq(requant3),
            ppu.imm.eq(imm2),
            ppu.channel.eq(a2[:chan_bits]),
            ppu.acc.eq(red.acc),
        ]
        chan_bad = requant3 & ~_below(a2, self._channels)

        # ---- error --------------------------------------------------------------------------
        dp_error = Signal()
        with m.If(start):
            m.d.sync += dp_error.eq(0)
        with m.Elif((issue.valid & bad) | chan_bad | array.error
                    | array.program_without_erase.any()):
            m.d.sync += dp_error.eq(1)
        m.d.comb += self.error.eq(dp_error | ctrl.error | ppu.error)
        return m
