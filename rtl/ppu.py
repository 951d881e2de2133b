"""Post-processing unit: partial sums, requantization, 2x2 pooling, logits, the output memory."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.config import check_config
from rtl.isa import IMM_BITS

__all__ = [
    "PpuMode", "PPU_CLEAR", "PPU_EMIT", "PPU_NEG", "PPU_MODE_LSB", "ppu_imm", "Ppu",
    "MULT_BITS", "SHIFT_BITS", "BIAS_BITS", "OUT_WORD_BITS", "MAX_CHANNELS", "MAX_OUT_DEPTH",
    "PTR_VALUE_BITS", "THRESH_LEVELS", "THRESH_MODE_INDEX", "thresh_bits",
]

#: Requant table field widths: the widths of ``golden.layers.requantize`` (``RQ_MULT_BITS``,
#: ``RQ_BITS``); ``rtl/`` does not import ``golden/``, so ``tests/test_ppu_unit.py`` pins them
#: equal to the golden constants.
MULT_BITS = 16
SHIFT_BITS = 6
BIAS_BITS = 48
#: Width of an output memory word (a logit is a 32-bit two's complement number).
OUT_WORD_BITS = 32
#: Width of the pooling register: the sum of four 8-bit values.
POOL_BITS = 10
#: Width of the value of a pointer set / add (a resolved ISA operand).
PTR_VALUE_BITS = 16
#: Largest requant table and output memory.
MAX_CHANNELS = 4096
MAX_OUT_DEPTH = 65536

#: The threshold stage (seed 002 eq. 3, ``golden.layers.threshold_quantize``): thresholds per
#: channel (codes 0 .. 255), and the index of a channel's mode word in its threshold block.
THRESH_LEVELS = 255
THRESH_MODE_INDEX = 255


def thresh_bits(acc_bits: int) -> int:
    """Width of a stored threshold: ``acc_bits + 2`` signed bits, holding every threshold that
    can change a comparison with ``+-v`` (``v`` an ``acc_bits`` number) after the host clamps
    it to ``[-2**(acc_bits-1), 2**(acc_bits-1) + 1]``."""
    return acc_bits + 2


#: Bits of the PPU immediate (the ``imm`` of a ``REQUANT`` micro-op).
PPU_CLEAR = 1         # start a new partial sum: s = acc instead of psum + acc
PPU_EMIT = 2          # the partial sum is complete: produce an output and clear psum
PPU_NEG = 4           # negate the sum before the output stage (adder layers: y = -sum |x - w|)
PPU_MODE_LSB = 3      # bits 3-4: PpuMode


class PpuMode(enum.Enum, shape=2):
    """What an emitting step produces (bits 3-4 of the PPU immediate).

    ``REQUANT``: one requantized activation. ``MAX4`` / ``AVG4``: the maximum / the rounded
    average of four consecutive requantized activations (a 2x2 pooling window, ``cnt`` counts
    them), one word per four steps. ``LOGIT``: ``(v + bias) mod 2**32``, no requantization.
    """
    REQUANT = 0
    MAX4    = 1
    AVG4    = 2
    LOGIT   = 3


def ppu_imm(*, clear=False, emit=False, neg=False, mode=PpuMode.REQUANT) -> int:
    """The 5-bit PPU immediate of a ``REQUANT`` micro-op.

    Raises
    ------
    TypeError
        ``clear``, ``emit`` or ``neg`` is not a bool, or ``mode`` is not a :class:`PpuMode`.
    """
    for name, value in (("clear", clear), ("emit", emit), ("neg", neg)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, not {value!r}")
    if not isinstance(mode, PpuMode):
        raise TypeError(f"mode must be a PpuMode, not {mode!r}")
    return ((PPU_CLEAR if clear else 0) | (PPU_EMIT if emit else 0) | (PPU_NEG if neg else 0)
            | (mode.value << PPU_MODE_LSB))


def _check_count(name, value, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if not 1 <= value <= hi:
        raise ValueError(f"{name} must be an int in [1, {hi}], not {value!r}")


class Ppu(wiring.Component):
    """Post-processing unit: the S3 stage of a ``REQUANT`` micro-op (``docs/datapath.rst``).

    A step (``op_valid``) adds ``acc`` to the partial sum; an emitting step turns the sum into
    an output word appended to the output memory at ``ptr``. With ``imm`` bit 0 ``CLEAR``,
    bit 1 ``EMIT``, bit 2 ``NEG`` and bits 3-4 the :class:`PpuMode`, and the requant table
    entry ``mult``, ``shift``, ``bias`` of ``channel``::

        s = (0 if CLEAR else psum) + acc                 # acc_bits two's complement, wraps
        not EMIT:  psum <- s
        EMIT:      psum <- 0;  v = -s if NEG else s      # acc_bits, wraps
          LOGIT:   word = (v + bias) mod 2**32
          else:    y = clip((v * mult + bias + (2**(shift-1) if shift else 0)) >> shift, 0, 255)
            REQUANT  word = y
            MAX4     pool <- y if cnt == 0 else max(pool, y); word = that value when cnt == 3
            AVG4     pool <- y if cnt == 0 else pool + y;     word = (that value + 2) >> 2
                     when cnt == 3; both: cnt <- (cnt + 1) mod 4
          a word is written at out[ptr], ptr += 1; with ptr == out_depth nothing is written
          and error is set instead.

    The requantization is exact for every input (``golden.layers.requantize``, which refuses
    the inputs whose ``v * mult + bias + round`` leaves 48 bits; the hardware computes those
    exactly too, and also any shift up to 63). The pool register is 10 bits and compared and
    summed as an unsigned number in either mode, so a window of mixed MAX4 / AVG4 steps follows
    the formulas above step by step. ``REQUANT`` and ``LOGIT`` leave ``cnt`` and the pool.

    Threshold stage (``thresholds=True``; cores with route ``dima_binconv``): a channel whose
    mode word enables it replaces the requantization's ``y`` (in ``REQUANT`` / ``MAX4`` /
    ``AVG4``; ``LOGIT`` is unchanged) by ``y = #{i : sv >= thr[ch][i]}`` over its 255
    non-decreasing thresholds, ``sv = -v`` if the mode word's sign bit is set, else ``v``
    (seed 002 eq. 3 as ``golden.layers.threshold_quantize``). The 8-step successive
    approximation, MSB first (bit b: ``y |= 2**b`` if ``sv >= thr[y | 2**b - 1]``), is unrolled
    in the step's cycle over 8 banks, bank k holding the 2**k thresholds of search level k.
    Host port: ``thr_we``, ``thr_addr = ch << 8 | i``, ``thr_data`` (``thresh_bits`` signed):
    i < 255 threshold i, i = 255 the mode word (bit 0 enable, bit 1 sign -1); ignored for a
    channel not below ``channels``. Mode words reset... are not reset (memory, zeros: off).

    Timing: one step per cycle, no stall. ``s``, the product, the rounding shift, the clip,
    the pooling and the word are one combinational path from ``acc``, ``imm``, ``channel``
    (through the table read) and the state registers; ``psum``, the pool register, ``cnt``,
    ``ptr`` (``out_count``), ``error`` and the output memory word update at the clock edge
    ending the step's cycle, so a word written by a step is on ``out_rdata`` (combinational
    from ``out_raddr``) and counted by ``out_count`` from the next cycle on. A table write
    takes effect at the clock edge: a step in the same cycle reads the entry as it was.
    ``clear`` acts at the clock edge and takes precedence over a step in the same cycle (that
    step is dropped). A step whose ``channel`` is not below ``channels`` changes nothing but
    ``error``. Neither memory is reset (their initial contents are zeros); ``clear`` keeps the
    output memory's words until they are overwritten.

    Parameters
    ----------
    config : AcceleratorConfig
        ``config.acc_bits`` is the width of ``acc`` and of the partial sum.
    channels : int
        Requant table entries, in [1, 4096]. Default 256.
    out_depth : int
        Output memory words, in [1, 65536]. Default 4096.

    Members
    -------
    clear : In(1)
        Start of a run: ``psum``, ``cnt``, the pool register, ``ptr`` and ``error`` to 0.
    op_valid : In(1)
        A step this cycle.
    imm : In(5)
        Its immediate: ``PPU_CLEAR | PPU_EMIT | PPU_NEG | mode << PPU_MODE_LSB``
        (:func:`ppu_imm`).
    channel : In(max(1, ceil_log2(channels)))
        Its requant table entry.
    acc : In(signed(acc_bits))
        Its addend (the reduction unit's accumulator).
    tbl_we : In(1)
        Write the table entry ``tbl_addr`` at the clock edge (ignored when ``tbl_addr`` is not
        below ``channels``).
    tbl_addr : In(max(1, ceil_log2(channels)))
    tbl_mult : In(signed(16))
    tbl_shift : In(6)
        Meant to be in [0, 46] (``golden.layers.requantize``); 47 .. 63 shift exactly too.
    tbl_bias : In(signed(48))
    out_raddr : In(max(1, ceil_log2(out_depth)))
        Output memory read address.
    out_rdata : Out(32)
        The word at ``out_raddr`` (combinational; 0 beyond ``out_depth``).
    out_count : Out(ceil_log2(out_depth + 1))
        ``ptr``, the write address of the next word (words written since ``clear`` unless a
        pointer set / add moved it). Reset 0.
    g_raddr : In(max(1, ceil_log2(out_depth)))
        Second read address (the core's gather; the memory is the core's data memory).
    g_rdata : Out(32)
        The word at ``g_raddr`` (combinational; 0 beyond ``out_depth``).
    wr_en, wr_addr, wr_data : In
        Write a word (the host's port; the core drives it only while idle). A word due from
        a step in the same cycle wins.
    ptr_set, ptr_add : In(1)
        At the clock edge ``ptr = ptr_value`` or ``ptr = ptr + ptr_value``; a result above
        ``out_depth`` sets ``error`` and ``ptr = out_depth`` (every later word is an error).
        ``clear`` wins over them, and they win over a step in the same cycle (the core never
        issues both in one cycle; such a step's word, if any, is written at the old ``ptr``
        and the step changes nothing else).
    ptr_value : In(16)
    error : Out(1)
        Sticky until ``clear``: a word was due with ``ptr == out_depth``, a step named a
        channel not below ``channels``, or a pointer set / add went beyond ``out_depth``.
        Reset 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`, or ``channels`` /
        ``out_depth`` is not an int.
    ValueError
        ``channels`` is not in [1, 4096] or ``out_depth`` not in [1, 65536].
    """

    def __init__(self, *, config, channels=256, out_depth=4096, thresholds=False):
        self._config = check_config(config)
        self._thresholds = bool(thresholds)
        _check_count("channels", channels, MAX_CHANNELS)
        _check_count("out_depth", out_depth, MAX_OUT_DEPTH)
        self._channels, self._out_depth = channels, out_depth
        channel_bits = max(1, ceil_log2(channels))
        super().__init__({
            "clear":     In(1),
            "op_valid":  In(1),
            "imm":       In(IMM_BITS),
            "channel":   In(channel_bits),
            "acc":       In(signed(config.acc_bits)),
            "tbl_we":    In(1),
            "tbl_addr":  In(channel_bits),
            "tbl_mult":  In(signed(MULT_BITS)),
            "tbl_shift": In(SHIFT_BITS),
            "tbl_bias":  In(signed(BIAS_BITS)),
            "out_raddr": In(max(1, ceil_log2(out_depth))),
            "out_rdata": Out(OUT_WORD_BITS),
            "out_count": Out(ceil_log2(out_depth + 1)),
            "g_raddr":   In(max(1, ceil_log2(out_depth))),
            "g_rdata":   Out(OUT_WORD_BITS),
            "wr_en":     In(1),
            "wr_addr":   In(max(1, ceil_log2(out_depth))),
            "wr_data":   In(OUT_WORD_BITS),
            "ptr_set":   In(1),
            "ptr_add":   In(1),
            "ptr_value": In(PTR_VALUE_BITS),
            "error":     Out(1),
            **({"thr_we":   In(1),
                "thr_addr": In(channel_bits + 8),
                "thr_data": In(signed(thresh_bits(config.acc_bits)))}
               if self._thresholds else {}),
        })

    @property
    def config(self):
        return self._config

    def _threshold_stage(self, m, v, y, channel_ok):
        """The threshold stage (class docstring): overrides ``y`` where the channel's mode
        word enables it (a later comb assignment wins)."""
        acc_bits, channels = self._config.acc_bits, self._channels
        tb = thresh_bits(acc_bits)
        ch_bits = len(self.channel)
        w_ch = self.thr_addr[8:]
        w_i = self.thr_addr[:8]
        w_ok = Signal()
        m.d.comb += w_ok.eq(self.thr_we & ((w_ch < channels) if channels < 1 << ch_bits
                                           else Const(1)))
        code = Signal(9)                     # i + 1: its lowest set bit is its search level
        m.d.comb += code.eq(w_i + 1)
        m.submodules.qmode = qmode = Memory(shape=2, depth=max(channels, 2), init=[])
        qm_r, qm_w = qmode.read_port(domain="comb"), qmode.write_port()
        m.d.comb += [qm_r.addr.eq(self.channel), qm_w.addr.eq(w_ch),
                     qm_w.data.eq(self.thr_data[:2]),
                     qm_w.en.eq(w_ok & (w_i == THRESH_MODE_INDEX))]
        q_en = Signal()
        q_neg = Signal()
        m.d.comb += [q_en.eq(qm_r.data[0] & channel_ok), q_neg.eq(qm_r.data[1])]
        sv = Signal(signed(tb))              # +-v: acc_bits + 1 bits, as wide as a threshold
        with m.If(q_neg):
            m.d.comb += sv.eq(-v[:acc_bits].as_signed())
        with m.Else():
            m.d.comb += sv.eq(v[:acc_bits].as_signed())
        bits = []                            # decisions, MSB first
        for k in range(8):
            b = 7 - k
            bank = Memory(shape=tb, depth=max(channels << k, 2), init=[])
            m.submodules[f"thr{k}"] = bank
            rd, wr = bank.read_port(domain="comb"), bank.write_port()
            prefix = Cat(*reversed(bits)) if bits else None
            m.d.comb += [
                rd.addr.eq(Cat(prefix, self.channel) if bits else self.channel),
                wr.addr.eq(Cat(code[b + 1:8], w_ch) if k else w_ch),
                wr.data.eq(self.thr_data),
                wr.en.eq(w_ok & (~code[:b].any() if b else Const(1)) & code[b] & ~code[8]),
            ]
            d = Signal(name=f"thr_d{k}")
            m.d.comb += d.eq(sv >= rd.data.as_signed())
            bits.append(d)
        y_thr = Signal(8)
        m.d.comb += y_thr.eq(Cat(*reversed(bits)))
        with m.If(q_en):
            m.d.comb += y.eq(y_thr)

    @property
    def channels(self):
        return self._channels

    @property
    def out_depth(self):
        return self._out_depth

    def elaborate(self, platform):
        # Why the rounding adds 1 to a shift of 2t: (t + 2**(s-1)) >> s == ((2t >> s) + 1) >> 1
        # for every s >= 0 (s = 0: (2t + 1) >> 1 = t), so one variable arithmetic shifter
        # rounds without a 2**(s-1) term as wide as the largest shift; the pooling average
        # (p + 2) >> 2 == ((p >> 1) + 1) >> 1 likewise. Verilator -Wall wants the operands of
        # every adder, multiplier and comparison equally wide (an added constant may be 1'h1),
        # and every named net read: the operands are widened when they are assigned to a
        # signal of the full width (Amaranth folds a sign extension inside an expression back
        # into a narrower signed operand), and a named signal is a process output, a register
        # or a whole cell output (a slice of an adder is an anonymous expression).
        m = Module()
        acc_bits = self._config.acc_bits
        channels, depth = self._channels, self._out_depth
        clear_sum, emit, neg = self.imm[0], self.imm[1], self.imm[2]
        mode = self.imm[PPU_MODE_LSB:PPU_MODE_LSB + 2]

        # -- requant table (at least 2 words: a 0-bit memory address does not lint) --------
        # An entry is mult (bits 0-15), shift (16-21), bias (22-69), as a plain bit vector: a
        # struct-shaped memory port adds a named net per field that nothing reads.
        m.submodules.table = table = Memory(shape=MULT_BITS + SHIFT_BITS + BIAS_BITS,
                                            depth=max(channels, 2), init=[])
        tbl_r = table.read_port(domain="comb")
        tbl_w = table.write_port()
        m.d.comb += [
            tbl_r.addr.eq(self.channel),
            tbl_w.addr.eq(self.tbl_addr),
            tbl_w.data.eq(Cat(self.tbl_mult, self.tbl_shift, self.tbl_bias)),
        ]
        entry_mult = tbl_r.data[:MULT_BITS].as_signed()
        entry_shift = tbl_r.data[MULT_BITS:MULT_BITS + SHIFT_BITS]
        entry_bias = tbl_r.data[MULT_BITS + SHIFT_BITS:].as_signed()
        full_table = channels == 1 << len(self.channel)
        if full_table:
            channel_ok = Const(1)
            m.d.comb += tbl_w.en.eq(self.tbl_we)
        else:
            channel_ok = Signal()
            m.d.comb += [
                channel_ok.eq(self.channel < channels),
                tbl_w.en.eq(self.tbl_we & (self.tbl_addr < channels)),
            ]

        # -- partial sum (acc_bits, wrapping) ----------------------------------------------
        psum = Signal(signed(acc_bits))
        base = Signal(signed(acc_bits))
        m.d.comb += base.eq(Mux(clear_sum, 0, psum))
        s_wrapped = (base + self.acc)[:acc_bits].as_signed()
        # v = -s or s (acc_bits, wrapping), and the table entry, widened for the datapath.
        mul_bits = max(acc_bits + MULT_BITS, BIAS_BITS)   # |v * mult| + |bias| < 2**mul_bits
        v = Signal(signed(mul_bits))
        with m.If(neg):
            m.d.comb += v.eq((-s_wrapped)[:acc_bits].as_signed())
        with m.Else():
            m.d.comb += v.eq(s_wrapped)
        mult = Signal(signed(mul_bits))
        bias = Signal(signed(mul_bits))
        shift = Signal(SHIFT_BITS)
        with m.If(channel_ok):
            # A channel beyond the table reads as zeros (its step is dropped anyway).
            m.d.comb += [
                mult.eq(entry_mult),
                bias.eq(entry_bias),
                shift.eq(entry_shift),
            ]

        # -- requantization: t = v * mult + bias exactly, round, shift, clip to [0, 255] ----
        t = Signal(signed(mul_bits + 1))
        shifted = Signal(signed(mul_bits + 2))
        m.d.comb += [
            t.eq((v * mult)[:mul_bits].as_signed() + bias),
            shifted.eq(Cat(Const(0, 1), t).as_signed() >> shift),
        ]
        # shifted + 1 as an unsigned sum: the same bits (no overflow: shifted <= 2**(mul_bits
        # + 1) - 2); bits 1 .. mul_bits + 1 are (shifted + 1) >> 1, bit mul_bits + 1 its sign.
        rounded = shifted.as_unsigned() + 1
        y = Signal(POOL_BITS)                # the requantized activation, in [0, 255]
        with m.If(rounded[mul_bits + 1]):
            m.d.comb += y.eq(0)
        with m.Elif(rounded[9:mul_bits + 1].any()):
            m.d.comb += y.eq(255)
        with m.Else():
            m.d.comb += y.eq(rounded[1:9])

        if self._thresholds:
            self._threshold_stage(m, v, y, channel_ok)

        # -- 2x2 pooling: pool, cnt hold the window so far; pooled includes this step ------
        pool = Signal(POOL_BITS)
        pooled = Signal(POOL_BITS)
        cnt = Signal(2)
        later = cnt.any()                    # not the first step of a window
        avg = ((pooled >> 1) + 1) >> 1

        # -- the output word of an emitting step, straight onto the memory's write port ------
        # (the output memory has at least 2 words, as the table)
        m.submodules.out = out = Memory(shape=OUT_WORD_BITS, depth=max(depth, 2), init=[])
        out_r = out.read_port(domain="comb")
        out_w = out.write_port()
        due = Signal()                       # this emitting step produces a word
        word = Signal(OUT_WORD_BITS)
        pooling = Signal()
        with m.Switch(mode):
            with m.Case(PpuMode.REQUANT):
                m.d.comb += [word.eq(y), due.eq(1), pooling.eq(0), pooled.eq(y)]
            with m.Case(PpuMode.MAX4):
                m.d.comb += [word.eq(pooled), due.eq(cnt.all()), pooling.eq(1),
                             pooled.eq(Mux(later & (pool > y), pool, y))]
            with m.Case(PpuMode.AVG4):
                m.d.comb += [word.eq(avg), due.eq(cnt.all()), pooling.eq(1),
                             pooled.eq(Mux(later, pool + y, y))]
            with m.Case(PpuMode.LOGIT):
                # The low 32 bits of v + bias.
                m.d.comb += [word.eq(v[:OUT_WORD_BITS] + bias[:OUT_WORD_BITS]), due.eq(1),
                             pooling.eq(0), pooled.eq(y)]

        # -- output memory and state ---------------------------------------------------
        ptr = self.out_count
        full = Signal()
        step = Signal()
        m.d.comb += [
            full.eq(ptr == depth),
            step.eq(self.op_valid & ~self.clear & channel_ok),
        ]
        g_r = out.read_port(domain="comb")
        ppu_write = Signal()
        m.d.comb += [
            ppu_write.eq(step & emit & due & ~full),
            out_w.addr.eq(Mux(ppu_write, ptr, self.wr_addr)),
            out_w.en.eq(ppu_write | self.wr_en),
            out_r.addr.eq(self.out_raddr),
            g_r.addr.eq(self.g_raddr),
        ]
        with m.If(ppu_write):
            m.d.comb += out_w.data.eq(word)
        with m.Else():
            m.d.comb += out_w.data.eq(self.wr_data)
        if depth == 1 << len(self.out_raddr):
            m.d.comb += [self.out_rdata.eq(out_r.data), self.g_rdata.eq(g_r.data)]
        else:
            m.d.comb += [self.out_rdata.eq(Mux(self.out_raddr < depth, out_r.data, 0)),
                         self.g_rdata.eq(Mux(self.g_raddr < depth, g_r.data, 0))]

        # -- pointer set / add: the new value, widened so a sum above out_depth is seen -----
        # (Cat makes the widening explicit; a comparison with the constant depth would be
        # trimmed, so a power-of-two depth is checked on the bits.)
        wide = PTR_VALUE_BITS + 1
        old_ptr, value = Signal(wide), Signal(wide)
        new_ptr = Signal(wide + 1)
        # (A process keeps old_ptr and value as named full-width nets; ``clear`` in its
        # condition makes it run at every start: Icarus runs a process only when an input
        # changes, and ptr_add alone may stay 0 for the whole simulation.)
        with m.If(self.clear):
            m.d.comb += [old_ptr.eq(0), value.eq(0)]
        with m.Elif(self.ptr_add):
            m.d.comb += [old_ptr.eq(ptr), value.eq(self.ptr_value)]
        with m.Else():
            m.d.comb += [old_ptr.eq(0), value.eq(self.ptr_value)]
        m.d.comb += new_ptr.eq(old_ptr + value)
        # new_ptr > depth  <=>  not new_ptr < depth + 1, on the bits: the high bits zero and
        # the low k bits against a k-bit constant with its top bit set (nothing to trim).
        k = ceil_log2(depth + 1)
        beyond = Signal()
        if depth + 1 == 1 << k:
            m.d.comb += beyond.eq(new_ptr[k:].any())
        else:
            m.d.comb += beyond.eq(new_ptr[k:].any() | ~(new_ptr[:k] < Const(depth + 1, k)))

        with m.If(self.clear):
            m.d.sync += [psum.eq(0), pool.eq(0), cnt.eq(0), ptr.eq(0), self.error.eq(0)]
        with m.Elif(self.ptr_set | self.ptr_add):
            with m.If(beyond):
                m.d.sync += [ptr.eq(depth), self.error.eq(1)]
            with m.Else():
                m.d.sync += ptr.eq(new_ptr)
        if not full_table:
            with m.Elif(self.op_valid & ~channel_ok):
                m.d.sync += self.error.eq(1)
        with m.Elif(step & ~emit):
            m.d.sync += psum.eq(s_wrapped)
        with m.Elif(step):
            m.d.sync += psum.eq(0)
            with m.If(pooling):
                m.d.sync += [pool.eq(pooled), cnt.eq(cnt + 1)]
            with m.If(due & full):
                m.d.sync += self.error.eq(1)
            with m.Elif(due):
                m.d.sync += ptr.eq(ptr + 1)
        return m
