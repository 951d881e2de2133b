"""Controller: fetches the micro-op program (``rtl.isa``), runs hardware loops, issues micro-ops."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.config import check_config
from rtl.isa import (
    COUNT_BITS, COUNT_LSB, COUNTER_BITS, COUNTER_CYCLES, COUNTER_STALLS, DATAPATH_OPS,
    IMM_BITS, LOOP_DEPTH, N_COUNTERS, OP_BITS, OPERAND_BITS, Opcode,
    counter_index,
)

__all__ = ["MicroOpSignature", "Controller"]


class MicroOpSignature(wiring.Signature):
    """One issued micro-op with resolved operands, seen from the controller (the initiator).

    A micro-op is transferred in a cycle with ``valid`` and ``ready`` both high. While
    ``valid`` is high and ``ready`` low the controller holds the micro-op and every field
    unchanged (a stall). ``valid`` does not depend on ``ready``; ``ready`` may depend on
    ``valid`` and the fields.

    Members
    -------
    valid : Out(1)
        A datapath micro-op is offered in this cycle.
    op : Out(Opcode)
        Its opcode (one of ``rtl.isa.DATAPATH_OPS`` while ``valid``).
    imm : Out(IMM_BITS)
        Its immediate, as in the instruction.
    a, b, d : Out(OPERAND_BITS)
        Its operands, resolved: ``(base + stride * index[level]) mod 2**OPERAND_BITS``.
    ready : In(1)
        The datapath accepts the micro-op at the end of this cycle.
    """

    def __init__(self):
        super().__init__({
            "valid": Out(1),
            "op":    Out(Opcode),
            "imm":   Out(IMM_BITS),
            "a":     Out(OPERAND_BITS),
            "b":     Out(OPERAND_BITS),
            "d":     Out(OPERAND_BITS),
            "ready": In(1),
        })


class Controller(wiring.Component):
    """Micro-op sequencer with zero-overhead hardware loops and performance counters.

    The host writes a program of instruction words (``rtl.isa``; 64 bits, wider for a
    configuration of wide operand bases, ``config.isa``) into the instruction memory while
    the controller is idle, then pulses ``start``. The controller runs from address 0 until a
    ``HALT`` (``done``) or an error (``done`` and ``error``): running past the last address,
    an undefined opcode, a ``LOOP`` beyond ``loop_depth`` nested loops, an ``ENDLOOP`` with no
    open loop, or a loop-relative operand naming a level that is not open. An erroneous
    instruction issues nothing. Every program ends (there are no jumps, every loop is finite),
    unless the datapath holds ``ready`` low for ever.

    Timing, in clock cycles while ``busy``: every instruction takes 1 cycle, plus 1 per cycle
    that ``ready`` holds a micro-op back (a stall). An ``ENDLOOP`` right after a ``NOP`` or a
    micro-op is folded into it and takes no cycle (zero-overhead loop: a body of k micro-ops
    takes k cycles per iteration); an ``ENDLOOP`` right after ``LOOP`` or ``ENDLOOP`` takes 1
    cycle per execution. ``LOOP`` takes 1 cycle each time it is entered, ``HALT`` 1 cycle. The
    first instruction executes in the cycle after ``start``; ``done`` rises the cycle after
    the last one. ``sim.hw.isa_model.run_program`` implements exactly this timing.

    Why two memories: the instruction word at ``pc + 1`` is needed only to know whether it is
    an ``ENDLOOP`` (for folding); a 1-bit shadow memory written alongside holds that bit. Both
    read synchronously from the *next* pc computed in this cycle, so a taken loop-back has no
    bubble.

    Parameters
    ----------
    config : AcceleratorConfig
        The accelerator: its instruction format (``config.isa``, the word and operand-base
        widths) and instruction-memory depth (``config.program_words``).
    imem_depth : int or None
        Instruction memory words: a power of two in [2, 65536]. Default
        ``config.program_words`` (1024 in every preset).
    loop_depth : int
        Nested hardware loops, in [1, ``rtl.isa.LOOP_DEPTH``]. Default ``LOOP_DEPTH`` (4).

    Members
    -------
    prog_addr : In(ceil_log2(imem_depth))
        Host program write address.
    prog_data : In(config.isa.word_bits)
        Host program write data, one instruction word.
    prog_we : In(1)
        Write ``prog_data`` at ``prog_addr`` this cycle; ignored while ``busy``.
    start : In(1)
        Start a run from address 0 (ignored while ``busy``); clears the counters, ``done``
        and ``error``. A word written in the same cycle is already seen.
    busy : Out(1)
        A run is in progress.
    done : Out(1)
        The last run has ended (stays high until the next ``start``).
    error : Out(1)
        The last run ended in an error (see above).
    counter_sel : In(ceil_log2(rtl.isa.N_COUNTERS))
        Counter to read: ``rtl.isa.COUNTER_CYCLES`` (cycles while busy), ``COUNTER_STALLS``
        (cycles a micro-op was held), ``counter_index(op)`` (micro-ops issued / control
        instructions executed, a folded ``ENDLOOP`` included). Reset 0; 32 bits, wrapping.
    counter_value : Out(32)
        The selected counter (combinational; 0 for an index beyond the last counter).
    issue : Out(MicroOpSignature)
        The micro-op issue port to the datapath.
    skip : In(1)
        Only with ``config.zero_skip``: the datapath takes the micro-op on the issue port as a
        taken ``MOVE SKIPZ`` (``rtl.isa.MoveOp``): the controller goes on at pc + 1 + b
        (resolved) instead of pc + 1 (the skipped instructions take no cycle and are not
        counted; no ENDLOOP is folded into the SKIPZ).

    Raises
    ------
    TypeError, ValueError
        A parameter of the wrong type or out of range (the message names it).
    """

    def __init__(self, *, config, imem_depth=None, loop_depth=LOOP_DEPTH):
        self._config = check_config(config)
        if imem_depth is None:                   # the configuration's instruction memory
            imem_depth = self._config.program_words
        for name, value, lo, hi in (("imem_depth", imem_depth, 2, 1 << 16),
                                    ("loop_depth", loop_depth, 1, LOOP_DEPTH)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], not {value!r}")
        if imem_depth & (imem_depth - 1):
            raise ValueError(f"imem_depth must be a power of two in [2, 65536], "
                             f"not {imem_depth!r}")
        self._imem_depth, self._loop_depth = imem_depth, loop_depth
        # Zero skipping (config.zero_skip): the datapath's ``skip`` takes a MOVE SKIPZ.
        skip_port = {"skip": In(1)} if self._config.zero_skip else {}
        super().__init__({**skip_port,
            "prog_addr":     In(ceil_log2(imem_depth)),
            "prog_data":     In(self._config.isa.word_bits),
            "prog_we":       In(1),
            "start":         In(1),
            "busy":          Out(1),
            "done":          Out(1),
            "error":         Out(1),
            "counter_sel":   In(ceil_log2(N_COUNTERS)),
            "counter_value": Out(COUNTER_BITS),
            "issue":         Out(MicroOpSignature()),
        })

    @property
    def config(self):
        return self._config

    @property
    def imem_depth(self):
        return self._imem_depth

    @property
    def loop_depth(self):
        return self._loop_depth

    def elaborate(self, platform):
        m = Module()
        depth, levels = self._imem_depth, self._loop_depth
        aw = ceil_log2(depth)
        pcw = aw + 1  # pc reaches depth + 1 at most (a fold at the last address)
        # Verilator -Wall wants both operands of +, == and < equally wide: constants are given
        # the width of the signal they meet, comparisons with 0 are reductions, and the decode
        # is one Switch that assigns every flag in every case.

        m.submodules.imem = imem = Memory(shape=self._config.isa.word_bits, depth=depth,
                                          init=[])
        m.submodules.endmem = endmem = Memory(shape=1, depth=depth, init=[])
        imem_w = imem.write_port()
        end_w = endmem.write_port()
        imem_r = imem.read_port(transparent_for=(imem_w,))
        end_r = endmem.read_port(transparent_for=(end_w,))

        running = self.busy
        end_word = Signal()
        with m.Switch(self.prog_data[:OP_BITS]):
            with m.Case(Opcode.ENDLOOP.value):
                m.d.comb += end_word.eq(1)
            with m.Default():
                m.d.comb += end_word.eq(0)
        m.d.comb += [
            imem_w.addr.eq(self.prog_addr),
            imem_w.data.eq(self.prog_data),
            imem_w.en.eq(self.prog_we & ~running),
            end_w.addr.eq(self.prog_addr),
            end_w.data.eq(end_word),
            end_w.en.eq(self.prog_we & ~running),
        ]

        pc, next_pc = Signal(pcw), Signal(pcw)
        pc_1 = (pc + 1)[:pcw]
        pc_2 = (pc_1 + 1)[:pcw]
        after = (next_pc + 1)[:pcw]
        end_ok = Signal()                # the word after pc exists (is below depth)
        m.d.comb += [imem_r.addr.eq(next_pc[:aw]), end_r.addr.eq(after[:aw])]
        m.d.sync += [pc.eq(next_pc), end_ok.eq(~after[aw:].any())]
        ir = self._config.isa.layout(imem_r.data)      # rtl.isa.WORD_LAYOUT at 12-bit bases
        count_m1 = imem_r.data[COUNT_LSB:COUNT_LSB + COUNT_BITS]
        end_next = Signal()              # the word after pc is an ENDLOOP
        m.d.comb += end_next.eq(end_r.data & end_ok)

        # Decode: one flag per opcode (counters) and per class.
        hits = {op: Signal(name=f"is_{op.name.lower()}") for op in Opcode}
        is_dp, is_undefined = Signal(), Signal()
        with m.Switch(ir.op):
            for op in Opcode:
                with m.Case(op):
                    m.d.comb += [h.eq(o is op) for o, h in hits.items()]
                    m.d.comb += [is_dp.eq(op in DATAPATH_OPS), is_undefined.eq(0)]
            with m.Default():
                m.d.comb += [h.eq(0) for h in hits.values()]
                m.d.comb += [is_dp.eq(0), is_undefined.eq(1)]

        # Loop stack, entry 0 the innermost open loop; push shifts down, pop shifts up.
        # ``opened`` is a thermometer code: bit i set = entry i holds an open loop.
        opened = Signal(levels)
        lp_start = [Signal(pcw, name=f"loop_start_{i}") for i in range(levels)]
        lp_index = [Signal(COUNT_BITS, name=f"loop_index_{i}") for i in range(levels)]
        lp_last = [Signal(COUNT_BITS, name=f"loop_last_{i}") for i in range(levels)]
        index_1 = (lp_index[0] + 1)[:COUNT_BITS]

        # Operand resolution: (base + stride * index[level]) mod 2**OPERAND_BITS.
        # Modulo 2**OPERAND_BITS throughout: the stride sign-extends to OPERAND_BITS bits, and
        # the low bits of a product or sum depend only on the low bits of the operands.
        wide = unsigned(OPERAND_BITS)
        bads = []
        for name in "abd":
            level, stride = ir[f"{name}_level"], ir[f"{name}_stride"]
            # Full-width operands assigned in a process, so that the exported adder and
            # multiplier see equal widths (Verilator WIDTHEXPAND otherwise).
            base_w, index_w, stride_w = (Signal(wide, name=f"{name}_{what}")
                                         for what in ("base", "index", "stride"))
            level_open = Signal(name=f"{name}_level_open")
            with m.Switch(level):
                for i in range(LOOP_DEPTH):
                    with m.Case(i):
                        m.d.comb += [base_w.eq(ir[f"{name}_base"]), stride_w.eq(stride)]
                        if i < levels:
                            m.d.comb += [index_w.eq(lp_index[i]), level_open.eq(opened[i])]
                        else:
                            m.d.comb += [index_w.eq(0), level_open.eq(0)]
            product = (stride_w * index_w)[:wide.width]
            m.d.comb += getattr(self.issue, name).eq((base_w + product)[:wide.width])
            bads.append(stride.any() & ~level_open)
        bad = Signal()
        m.d.comb += [
            bad.eq(bads[0] | bads[1] | bads[2]),
            self.issue.op.eq(ir.op),
            self.issue.imm.eq(ir.imm),
        ]

        # Counters.
        counters = [Signal(COUNTER_BITS, name=f"counter_{i}") for i in range(N_COUNTERS)]
        count_en, count_end = Signal(), Signal()  # count ir.op / a folded ENDLOOP
        stalled = Signal()
        with m.Switch(self.counter_sel):
            for i, counter in enumerate(counters):
                with m.Case(i):
                    m.d.comb += self.counter_value.eq(counter)
            with m.Default():
                m.d.comb += self.counter_value.eq(0)

        def finish(error):
            m.d.sync += [running.eq(0), self.done.eq(1), self.error.eq(error)]
            m.d.comb += next_pc.eq(0)

        def end_loop(fallthrough):
            with m.If(lp_index[0] != lp_last[0]):
                m.d.sync += lp_index[0].eq(index_1)
                m.d.comb += next_pc.eq(lp_start[0])
            with m.Else():
                m.d.sync += opened.eq(opened[1:])
                for i in range(levels - 1):
                    m.d.sync += [lp_start[i].eq(lp_start[i + 1]),
                                 lp_index[i].eq(lp_index[i + 1]),
                                 lp_last[i].eq(lp_last[i + 1])]
                m.d.comb += next_pc.eq(fallthrough)

        def advance():
            m.d.comb += count_en.eq(1)
            with m.If(end_next & opened[0]):
                m.d.comb += count_end.eq(1)
                end_loop(pc_2)
            with m.Else():
                m.d.comb += next_pc.eq(pc_1)

        def skip_to(otherwise):
            """A taken MOVE SKIPZ (``skip``): on to pc + 1 + b (resolved), no ENDLOOP folded; a
            target beyond the memory ends the run in error (as running off the end)."""
            wide_pc = max(pcw, OPERAND_BITS) + 1
            here, count = Signal(wide_pc), Signal(wide_pc)
            m.d.comb += [here.eq(pc_1), count.eq(self.issue.b)]
            target = (here + count)[:wide_pc]
            with m.If(self.skip):
                m.d.comb += [count_en.eq(1),
                             next_pc.eq(Mux(target[aw:].any(), Const(depth, pcw),
                                            target[:pcw]))]
            with m.Else():
                otherwise()

        with m.If(running):
            m.d.comb += next_pc.eq(pc)
            with m.If(pc[aw:].any()):
                finish(1)
            with m.Elif(is_undefined):
                finish(1)
            with m.Elif(hits[Opcode.NOP]):
                advance()
            with m.Elif(hits[Opcode.HALT]):
                m.d.comb += count_en.eq(1)
                finish(0)
            with m.Elif(hits[Opcode.LOOP]):
                with m.If(opened[levels - 1]):
                    finish(1)
                with m.Else():
                    m.d.comb += [count_en.eq(1), next_pc.eq(pc_1)]
                    m.d.sync += [opened.eq(Cat(Const(1, 1), opened[:levels - 1])),
                                 lp_start[0].eq(pc_1), lp_index[0].eq(0),
                                 lp_last[0].eq(count_m1)]
                    for i in range(levels - 1):
                        m.d.sync += [lp_start[i + 1].eq(lp_start[i]),
                                     lp_index[i + 1].eq(lp_index[i]),
                                     lp_last[i + 1].eq(lp_last[i])]
            with m.Elif(hits[Opcode.ENDLOOP]):
                with m.If(~opened[0]):
                    finish(1)
                with m.Else():
                    m.d.comb += count_en.eq(1)
                    end_loop(pc_1)
            with m.Elif(is_dp):
                with m.If(bad):
                    finish(1)
                with m.Else():
                    m.d.comb += self.issue.valid.eq(1)
                    with m.If(self.issue.ready):
                        if self._config.zero_skip:
                            skip_to(advance)
                        else:
                            advance()
                    with m.Else():
                        m.d.comb += stalled.eq(1)
        with m.Else():
            m.d.comb += next_pc.eq(0)
            with m.If(self.start):
                m.d.sync += [running.eq(1), self.done.eq(0), self.error.eq(0), opened.eq(0)]
                m.d.sync += [c.eq(0) for c in counters]

        one = Const(1, COUNTER_BITS)
        with m.If(running):
            m.d.sync += counters[COUNTER_CYCLES].eq(counters[COUNTER_CYCLES] + one)
            with m.If(stalled):
                m.d.sync += counters[COUNTER_STALLS].eq(counters[COUNTER_STALLS] + one)
            for op in Opcode:
                i = counter_index(op)
                hit = count_en & hits[op]
                if op is Opcode.ENDLOOP:
                    hit = hit | count_end
                with m.If(hit):
                    m.d.sync += counters[i].eq(counters[i] + one)
        return m
