"""Post-processing unit vs a reference built from ``golden.layers``: requantization by
``requantize``, 2x2 pooling windows by ``max_pool2d`` / ``avg_pool2d``, logits by ``add_bias``
(then taken modulo 2**32). Every cycle the output pointer, the error flag and the word at the
previous cycle's pointer (just written, or required unchanged) are compared with ``==``; each
test first reads the output memory as the previous test left it (the memories are not reset),
so that its final read of the whole memory also finds a stray write. Stimulus: layer-like runs
with realistic requant parameters, the corners of every field (shift 0 / 46 / beyond, mult
-32768 / 32767, bias at +-2**47, acc at +-2**(acc_bits-1), saturation on both sides), fully
random cycles (random immediates, clears, out-of-range channels, table writes during steps)
and output-memory overflow."""

import dataclasses

import cocotb
import numpy as np
import pytest
from cocotb.triggers import FallingEdge, ReadOnly

from cocotb_tests.harness import load_params, make_rng, run_block, start
from golden.layers import add_bias, avg_pool2d, max_pool2d, requantize
from rtl.config import preset
from rtl.ppu import PPU_CLEAR, PPU_EMIT, PPU_MODE_LSB, PPU_NEG, Ppu, PpuMode, ppu_imm

BLOCK = "ppu"
WORD_MASK = (1 << 32) - 1
POOLS = {PpuMode.MAX4: max_pool2d, PpuMode.AVG4: avg_pool2d}


def wrap(value, bits):
    """``value`` as a ``bits``-bit two's complement number."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


# -- reference (no cocotb in here) -----------------------------------------------------------

class PpuRef:
    """The PPU (``rtl.ppu.Ppu``, ``docs/datapath.rst``) on Python integers; the arithmetic is
    golden's.

    ``golden.layers.requantize`` refuses inputs whose ``v * mult + bias + round`` can leave its
    48-bit bound (and shifts beyond 46); the PPU computes them exactly, so for those alone the
    reference evaluates the formula of ``requantize``'s docstring on Python integers. Likewise
    ``add_bias`` takes an int32 bias and asserts a 32-bit result; beyond that the logit is the
    plain sum. A pooling window whose four steps are all ``MAX4`` or all ``AVG4`` is pooled by
    golden's 2x2 pooling; a mixed window follows the spec's register updates step by step.
    ``coverage`` counts which of these paths (and which outcomes) the stimulus reached.
    """

    def __init__(self, acc_bits, channels, out_depth):
        self.acc_bits, self.channels, self.out_depth = acc_bits, channels, out_depth
        # The memories are not reset, and all cocotb tests of a run share one simulation: a
        # test writes the table before it uses it, and reads the output memory first
        # (Bench.snapshot), so that a word no step writes must keep its value.
        self.table = [None] * channels           # (mult, shift, bias)
        self.out = [None] * out_depth
        self.coverage = dict.fromkeys(
            ("golden_requant", "exact_requant", "y_0", "y_255", "y_mid", "golden_pool",
             "mixed_pool", "golden_logit", "wide_logit", "overflow", "bad_channel", "clear",
             "pointer_set", "pointer_add", "pointer_beyond", "host_write"), 0)
        self.clear()
        self.coverage["clear"] = 0

    def clear(self):
        self.psum = self.pool = self.cnt = self.ptr = self.error = 0
        self.window = []
        self.coverage["clear"] += 1

    def write_table(self, channel, mult, shift, bias):
        if channel < self.channels:
            self.table[channel] = (mult, shift, bias)

    def requant(self, v, mult, shift, bias):
        try:
            y = int(requantize(np.array([[v]], dtype=np.int64), np.array([mult], dtype=np.int32),
                               np.array([bias], dtype=np.int64),
                               np.array([shift], dtype=np.int32))[0, 0])
            self.coverage["golden_requant"] += 1
        except ValueError:
            half = (1 << (shift - 1)) if shift else 0
            y = min(max((v * mult + bias + half) >> shift, 0), 255)
            self.coverage["exact_requant"] += 1
        self.coverage["y_0" if y == 0 else "y_255" if y == 255 else "y_mid"] += 1
        return y

    def logit(self, v, bias):
        word = None
        if -(1 << 31) <= bias < 1 << 31:
            try:
                word = int(add_bias(np.array([[v]], dtype=np.int64),
                                    np.array([bias], dtype=np.int32))[0, 0])
                self.coverage["golden_logit"] += 1
            except ValueError:       # the logit leaves 32 bits
                pass
        if word is None:
            word = v + bias
            self.coverage["wide_logit"] += 1
        return word & WORD_MASK

    def _emit(self, word):
        if self.ptr == self.out_depth:
            self.error = 1
            self.coverage["overflow"] += 1
        else:
            self.out[self.ptr] = word
            self.ptr += 1

    def pointer(self, op, value):
        """A pointer set (``op`` "set") or add ("add") of ``value``."""
        new = value if op == "set" else self.ptr + value
        if new > self.out_depth:
            self.error, self.ptr = 1, self.out_depth
            self.coverage["pointer_beyond"] += 1
        else:
            self.ptr = new
            self.coverage["pointer_" + op] += 1

    def host_write(self, addr, word):
        if addr < self.out_depth:
            self.out[addr] = word
            self.coverage["host_write"] += 1

    def step(self, imm, channel, acc):
        """One ``op_valid`` cycle (the table as it was before this cycle's host write)."""
        if channel >= self.channels:
            self.error = 1
            self.coverage["bad_channel"] += 1
            return
        mode = PpuMode((imm >> PPU_MODE_LSB) & 3)
        s = wrap((0 if imm & PPU_CLEAR else self.psum) + acc, self.acc_bits)
        if not imm & PPU_EMIT:
            self.psum = s
            return
        self.psum = 0
        v = wrap(-s, self.acc_bits) if imm & PPU_NEG else s
        mult, shift, bias = self.table[channel]
        if mode is PpuMode.LOGIT:
            self._emit(self.logit(v, bias))
            return
        y = self.requant(v, mult, shift, bias)
        if mode is PpuMode.REQUANT:
            self._emit(y)
            return
        if self.cnt == 0:
            self.window, self.pool = [], y
        elif mode is PpuMode.MAX4:
            self.pool = max(self.pool, y)
        else:
            self.pool += y
        self.window.append((mode, y))
        if self.cnt == 3:
            modes = {m for m, _ in self.window}
            if modes == {mode}:
                win = np.array([y for _, y in self.window], dtype=np.uint8).reshape(1, 1, 2, 2)
                word = int(POOLS[mode](win, 2)[0, 0, 0, 0])
                self.coverage["golden_pool"] += 1
            else:
                word = self.pool if mode is PpuMode.MAX4 else (self.pool + 2) >> 2
                self.coverage["mixed_pool"] += 1
            self._emit(word)
        self.cnt = (self.cnt + 1) % 4


# -- bench -----------------------------------------------------------------------------------

class Bench:
    """Drives one cycle at a time and checks the state the previous cycles left."""

    def __init__(self, dut, p, seed):
        self.dut, self.seed = dut, seed
        self.acc_bits, self.channels, self.depth = p["acc_bits"], p["channels"], p["out_depth"]
        self.ref = PpuRef(self.acc_bits, self.channels, self.depth)
        self.channel_span = 1 << len(dut.channel)
        self.raddr_span = 1 << len(dut.out_raddr)
        self.cycles = 0
        self.last = "reset"
        self.write_addr = 0      # where the last cycle's write went (or would have gone)
        # Idle inputs before the reset: the previous test may have left a step driven, and
        # the reset does not stop a memory write.
        for name in ("clear", "op_valid", "imm", "channel", "acc", "tbl_we", "out_raddr",
                     "g_raddr", "wr_en", "wr_addr", "wr_data", "ptr_set", "ptr_add",
                     "ptr_value"):
            getattr(dut, name).value = 0

    def _fail(self, what, got, want):
        return (f"{BLOCK}: {what} at cycle {self.cycles} (after {self.last}): rtl {got} != "
                f"golden {want} (seed {self.seed}; rerun with SPINPIM_SEED={self.seed})")

    def expected_word(self, addr):
        """The word at ``addr``: 0 beyond the memory, None before :meth:`snapshot`."""
        return self.ref.out[addr] if addr < self.depth else 0

    async def snapshot(self):
        """Take the output memory as the previous tests left it (one read per cycle)."""
        for addr in range(self.depth):
            self.dut.out_raddr.value = addr
            await ReadOnly()
            self.ref.out[addr] = self.dut.out_rdata.value.to_unsigned()
            await FallingEdge(self.dut.clk)

    async def cycle(self, *, clear=0, step=None, table=None, probe=None, pointer=None,
                    host=None, probe2=None):
        """``step`` = (imm, channel, acc) or None; ``table`` = (addr, mult, shift, bias) or
        None; ``probe``: the output address read this cycle (default: the pointer of the last
        cycle, where its word went if it wrote one and which must be unchanged otherwise);
        ``pointer`` = ("set" | "add", value) or None (never with a step: the core does not
        issue both); ``host`` = (addr, word) or None, a host write (never with a step: the
        core drives it only while idle); ``probe2``: the address on the second read port."""
        dut, ref = self.dut, self.ref
        assert step is None or (pointer is None and host is None)
        dut.ptr_set.value = int(pointer is not None and pointer[0] == "set")
        dut.ptr_add.value = int(pointer is not None and pointer[0] == "add")
        dut.ptr_value.value = pointer[1] if pointer is not None else 0
        dut.wr_en.value = int(host is not None)
        dut.wr_addr.value = host[0] if host is not None else 0
        dut.wr_data.value = host[1] if host is not None else 0
        dut.g_raddr.value = probe2 if probe2 is not None else 0
        dut.clear.value = clear
        dut.op_valid.value = int(step is not None)
        imm, channel, acc = step if step is not None else (0, 0, 0)
        dut.imm.value = imm
        dut.channel.value = channel
        dut.acc.value = acc & ((1 << self.acc_bits) - 1)
        dut.tbl_we.value = int(table is not None)
        if table is not None:
            addr, mult, shift, bias = table
            dut.tbl_addr.value = addr
            dut.tbl_mult.value = mult & 0xFFFF
            dut.tbl_shift.value = shift
            dut.tbl_bias.value = bias & ((1 << 48) - 1)
        if probe is None:
            probe = self.write_addr
        self.write_addr = min(ref.ptr, self.depth - 1)
        dut.out_raddr.value = probe
        await ReadOnly()
        got = dut.out_count.value.to_unsigned()
        assert got == ref.ptr, self._fail("out_count", got, ref.ptr)
        got = int(dut.error.value)
        assert got == ref.error, self._fail("error", got, ref.error)
        want = self.expected_word(probe)
        if want is not None:
            got = dut.out_rdata.value.to_unsigned()
            assert got == want, self._fail(f"out word {probe}", got, want)
        if probe2 is not None:
            want = self.expected_word(probe2)
            got = dut.g_rdata.value.to_unsigned()
            assert got == want, self._fail(f"second-port word {probe2}", got, want)
        # The same order as the hardware: clear wins over a step; the step reads the table as
        # it was; the host write lands at the edge.
        if clear:
            ref.clear()
            self.last = "clear"
        elif pointer is not None:
            ref.pointer(*pointer)
            self.last = f"pointer {pointer[0]} {pointer[1]}"
        elif step is not None:
            entry = ref.table[channel] if channel < self.channels else None
            ref.step(imm, channel, acc)
            self.last = (f"step imm {imm:#04x} channel {channel} acc {acc} entry "
                         f"(mult, shift, bias) {entry}")
        else:
            self.last = "idle"
        if table is not None:
            ref.write_table(*table)
        if host is not None:
            ref.host_write(*host)
            self.last += f", host write {host[1]:#x} at {host[0]}"
        await FallingEdge(dut.clk)
        self.cycles += 1

    async def write_table(self, entries):
        for addr, entry in enumerate(entries):
            await self.cycle(table=(addr, *entry))

    async def check_memory(self):
        """Read every address (also those beyond ``out_depth``, which read 0)."""
        for addr in range(max(self.depth, self.raddr_span)):
            await self.cycle(probe=addr)


# -- stimulus --------------------------------------------------------------------------------

def realistic_entry(rng, acc_bits, logit=False):
    """Requant parameters like those of a quantized layer: |mult| in [2**12, 2**15), a shift
    that maps a typical acc_bits-wide sum onto 8 bits, a bias of a few output steps; with
    ``logit`` a bias that fits the int32 of ``golden.layers.add_bias``."""
    mult = rng.randrange(1 << 12, 1 << 15) * rng.choice((1, 1, 1, -1))
    shift = rng.randrange(max(0, acc_bits - 10), min(46, acc_bits + 4) + 1)
    bits = 20 if logit else min(shift + 7, 46)
    return mult, shift, rng.randrange(-(1 << bits), 1 << bits)


def is_logit_channel(channel):
    """Channels whose realistic entry has a logit bias (one in four, channel 0 among them)."""
    return channel % 4 == 0


def corner_entry(rng):
    mult = rng.choice((-32768, 32767, -1, 0, 1, rng.randrange(-32768, 32768)))
    shift = rng.choice((0, 0, 1, 46, 46, rng.randrange(47), rng.randrange(47),
                        rng.randrange(47, 64)))
    bias = rng.choice((-(1 << 47), (1 << 47) - 1, 0, -1, 1, 1 << 31, -(1 << 31), (1 << 31) - 1,
                       rng.randrange(-(1 << 47), 1 << 47), rng.randrange(-(1 << 20), 1 << 20)))
    return mult, shift, bias


def corner_acc(rng, bits):
    top = 1 << (bits - 1)
    return rng.choice((-top, top - 1, -top + 1, 0, 1, -1, rng.randrange(-top, top)))


def target_sum(rng, entry, acc_bits):
    """A sum whose requantization lands near [0, 255] (and now and then saturates)."""
    mult, shift, bias = entry
    top = 1 << (acc_bits - 1)
    want = rng.randrange(-40, 300)
    v = ((want << shift) - bias) // mult if mult else rng.randrange(-top, top)
    return min(max(v + rng.randrange(-2, 3), -top), top - 1)


def modes_for(rng, weights=(4, 2, 2, 1)):
    return rng.choices(list(PpuMode), weights=weights)[0]


def output_run(rng, bench, channel, mode, neg):
    """One output: 1-4 partial sums (CLEAR on the first) that sum to a realistic target."""
    acc_bits = bench.acc_bits
    top = 1 << (acc_bits - 1)
    if mode is PpuMode.LOGIT:
        k = min(acc_bits - 2, 28)
        v = rng.randrange(-(1 << k), 1 << k)
    else:
        v = target_sum(rng, bench.ref.table[channel], acc_bits)
    s = wrap(-v, acc_bits) if neg else v
    parts = rng.randrange(1, 5)
    accs = [rng.randrange(-top // 4, top // 4) for _ in range(parts - 1)]
    accs.append(wrap(s - sum(accs), acc_bits))
    steps = []
    for i, acc in enumerate(accs):
        last = i == parts - 1
        steps.append((ppu_imm(clear=i == 0, emit=last, neg=neg and last, mode=mode),
                      channel, acc))
    return steps


def coverage_report(dut, name, ref):
    dut._log.info("%s coverage: %s", name, ", ".join(f"{k} {v}" for k, v in ref.coverage.items()))


# -- tests -----------------------------------------------------------------------------------

@cocotb.test()
async def ppu_layer_runs(dut):
    """Layer-like runs: realistic table, outputs of 1-4 partial sums (CLEAR first, EMIT last,
    NEG for adder layers), REQUANT rows, whole MAX4 / AVG4 windows, LOGIT rows (on the channels
    with a logit bias); the first four runs take each mode once. Idle cycles and a few table
    rewrites in between."""
    p = load_params()
    rng, seed = make_rng(p, "ppu_layer_runs")
    bench = Bench(dut, p, seed)
    await start(dut)
    await bench.snapshot()
    acc_bits, channels = p["acc_bits"], p["channels"]
    await bench.write_table([realistic_entry(rng, acc_bits, is_logit_channel(ch))
                             for ch in range(channels)])
    await bench.cycle(clear=1)
    logit_channels = [ch for ch in range(channels) if is_logit_channel(ch)]
    for run in range(p["runs"]):
        mode = list(PpuMode)[run] if run < len(PpuMode) else modes_for(rng)
        neg = rng.random() < 0.5
        outputs = 4 * rng.randrange(1, 4) if mode in POOLS else rng.randrange(1, 6)
        for _ in range(outputs):
            channel = rng.choice(logit_channels) if mode is PpuMode.LOGIT else \
                rng.randrange(channels)
            for step in output_run(rng, bench, channel, mode, neg):
                await bench.cycle(step=step)
            if rng.random() < 0.2:
                await bench.cycle()
        if rng.random() < 0.3:
            ch = rng.randrange(channels)
            await bench.cycle(table=(ch, *realistic_entry(rng, acc_bits, is_logit_channel(ch))))
        if bench.ref.ptr + 16 > bench.depth:
            await bench.cycle(clear=1)
    await bench.check_memory()
    cov = bench.ref.coverage
    coverage_report(dut, "ppu_layer_runs", bench.ref)
    assert cov["y_mid"] > 0 and cov["golden_pool"] > 0 and cov["golden_logit"] > 0, (
        f"{BLOCK}: layer runs missed a case: {cov} (seed {seed})")


@cocotb.test()
async def ppu_corners(dut):
    """Corner table entries and corner sums: shift 0, 1, 46 and 47-63, mult -32768 / 32767 /
    -1 / 0 / 1, bias at +-2**47 and +-2**31, acc at +-2**(acc_bits-1) with wrapping partial
    sums and negation; saturation at 0 and 255 both required."""
    p = load_params()
    rng, seed = make_rng(p, "ppu_corners")
    bench = Bench(dut, p, seed)
    await start(dut)
    await bench.snapshot()
    acc_bits, channels = p["acc_bits"], p["channels"]
    await bench.write_table([corner_entry(rng) for _ in range(channels)])
    await bench.cycle(clear=1)
    for n in range(p["steps"]):
        emit = rng.random() < 0.6
        imm = ppu_imm(clear=rng.random() < 0.5, emit=emit, neg=rng.random() < 0.5,
                      mode=modes_for(rng, (4, 1, 1, 2)))
        await bench.cycle(step=(imm, rng.randrange(channels), corner_acc(rng, acc_bits)))
        if n % 8 == 7:
            await bench.cycle(table=(rng.randrange(channels), *corner_entry(rng)))
        if bench.ref.ptr == bench.depth:
            await bench.cycle(clear=1)
    await bench.check_memory()
    cov = bench.ref.coverage
    coverage_report(dut, "ppu_corners", bench.ref)
    assert cov["y_0"] > 0 and cov["y_255"] > 0 and cov["exact_requant"] > 0 \
        and cov["wide_logit"] > 0, f"{BLOCK}: corners missed a case: {cov} (seed {seed})"


@cocotb.test()
async def ppu_random_cycles(dut):
    """Every input random every cycle: any immediate, channels beyond the table, clear pulses
    (also together with a step, which it must drop), host table writes in the same cycle as a
    step (which must see the old entry), writes to addresses beyond the table (ignored), reads
    beyond the output memory (0). Small output memories overflow."""
    p = load_params()
    rng, seed = make_rng(p, "ppu_random_cycles")
    bench = Bench(dut, p, seed)
    await start(dut)
    await bench.snapshot()
    acc_bits, channels = p["acc_bits"], p["channels"]
    span = bench.channel_span
    await bench.write_table([realistic_entry(rng, acc_bits, rng.random() < 0.25)
                             if rng.random() < 0.5 else corner_entry(rng)
                             for _ in range(channels)])
    for _ in range(p["steps"]):
        table = None
        if rng.random() < 0.3:
            entry = realistic_entry(rng, acc_bits, rng.random() < 0.25) if rng.random() < 0.5 \
                else corner_entry(rng)
            table = (rng.randrange(span), *entry)
        step = None
        if rng.random() < 0.8:
            ch = rng.randrange(channels, span) if span > channels and rng.random() < 0.1 \
                else rng.randrange(channels)
            acc = corner_acc(rng, acc_bits) if rng.random() < 0.3 else \
                rng.randrange(-(1 << (acc_bits - 1)), 1 << (acc_bits - 1))
            step = (rng.randrange(32), ch, acc)
        probe = rng.randrange(bench.raddr_span) if rng.random() < 0.2 else None
        await bench.cycle(clear=int(rng.random() < 0.03), step=step, table=table, probe=probe)
    await bench.check_memory()
    coverage_report(dut, "ppu_random_cycles", bench.ref)


@cocotb.test()
async def ppu_saturation_top_bit(dut):
    """Requantizations whose ``t = v * mult + bias`` is just above ``2**(mul_bits - 1)`` with
    shift 0 (bias at its maximum, ``v * mult`` in [1, 256]): the rounded value's only high bit
    set is bit ``mul_bits``, below its sign bit, and the output must saturate to 255 (a
    saturation check that skips that bit gives the low 8 bits instead). Also the same sums
    just below the bound (no saturation from that bit)."""
    p = load_params()
    rng, seed = make_rng(p, "ppu_saturation_top_bit")
    bench = Bench(dut, p, seed)
    await start(dut)
    await bench.snapshot()
    acc_bits, channels = p["acc_bits"], p["channels"]
    top = min(256, (1 << (acc_bits - 1)) - 1)
    await bench.write_table([(1, 0, (1 << 47) - 1)] + [(-1, 0, -(1 << 47))] * (channels - 1))
    await bench.cycle(clear=1)
    for _ in range(40):
        for ch in (0, min(1, channels - 1)):
            v = rng.randrange(1, top + 1)
            await bench.cycle(step=(ppu_imm(clear=True, emit=True), ch, v))
            await bench.cycle(step=(ppu_imm(clear=True, emit=True, neg=True), ch, v))
            if bench.ref.ptr + 2 > bench.depth:
                await bench.cycle(clear=1)
    await bench.check_memory()
    coverage_report(dut, "ppu_saturation_top_bit", bench.ref)
    assert bench.ref.coverage["y_255"] > 0 and bench.ref.coverage["y_0"] > 0, (
        f"{BLOCK}: top-bit sums missed saturation: {bench.ref.coverage} (seed {seed})")


@cocotb.test()
async def ppu_pointer_and_ports(dut):
    """The write pointer set and moved (SETPTR / ADDPTR of ``rtl.core``) between REQUANT /
    LOGIT words, including to exactly ``out_depth`` (no error until a word is due) and beyond
    it (error, pointer pinned at ``out_depth``); host writes into the memory (the input image)
    and reads through the second port (the gather), checked against the reference every
    cycle; clear after an error."""
    p = load_params()
    rng, seed = make_rng(p, "ppu_pointer_and_ports")
    bench = Bench(dut, p, seed)
    await start(dut)
    await bench.snapshot()
    acc_bits, channels, depth = p["acc_bits"], p["channels"], p["out_depth"]
    await bench.write_table([realistic_entry(rng, acc_bits, is_logit_channel(ch))
                             for ch in range(channels)])
    await bench.cycle(clear=1)
    span = bench.raddr_span
    wraps = 0
    for _ in range(p["steps"]):
        r = rng.random()
        probe2 = rng.randrange(span)
        if r < 0.15:
            value = rng.choice((0, depth, depth + 1, rng.randrange(depth),
                                rng.randrange(1 << 16)))
            await bench.cycle(pointer=("set", value), probe2=probe2)
        elif r < 0.3:
            # also the whole 16-bit range: a sum beyond 2**16 (an ADDPTR of a wrapped
            # operand, 65535 = -1) must be flagged, not wrap back below out_depth
            value = rng.choice((0, 1, depth - bench.ref.ptr, depth - bench.ref.ptr + 1,
                                rng.randrange(8), (1 << 16) - 1,
                                (1 << 16) - max(bench.ref.ptr, 1), rng.randrange(1 << 16)))
            wraps += bench.ref.ptr + value >= 1 << 16
            await bench.cycle(pointer=("add", max(value, 0)), probe2=probe2)
        elif r < 0.5:
            await bench.cycle(host=(rng.randrange(span), rng.randrange(1 << 32)),
                              probe2=probe2)
        elif r < 0.95:
            mode = rng.choice((PpuMode.REQUANT, PpuMode.LOGIT))
            channel = rng.choice([ch for ch in range(channels) if is_logit_channel(ch)]) \
                if mode is PpuMode.LOGIT else rng.randrange(channels)
            for step in output_run(rng, bench, channel, mode, rng.random() < 0.5):
                await bench.cycle(step=step, probe2=probe2)
        else:
            await bench.cycle(clear=1, probe2=probe2)
    await bench.check_memory()
    cov = bench.ref.coverage
    coverage_report(dut, "ppu_pointer_and_ports", bench.ref)
    assert cov["pointer_set"] and cov["pointer_add"] and cov["pointer_beyond"] \
        and cov["host_write"] and wraps, (
            f"{BLOCK}: pointer / port test missed a case: {cov}, {wraps} 16-bit wraps "
            f"(seed {seed})")


@cocotb.test()
async def ppu_fill(dut):
    """Fill the whole output memory with REQUANT / LOGIT words, then 3 more: each sets the
    sticky error and writes nothing (pointer stays at out_depth); a non-emitting step and a
    pooling step short of its fourth leave the error as is. Clear resets pointer and error,
    keeps the contents, and the next run overwrites from address 0."""
    p = load_params()
    rng, seed = make_rng(p, "ppu_fill")
    bench = Bench(dut, p, seed)
    await start(dut)
    await bench.snapshot()
    acc_bits, channels, depth = p["acc_bits"], p["channels"], p["out_depth"]
    await bench.write_table([realistic_entry(rng, acc_bits) for _ in range(channels)])
    top = 1 << (acc_bits - 1)
    for _ in range(depth + 3):
        mode = rng.choice((PpuMode.REQUANT, PpuMode.LOGIT))
        await bench.cycle(step=(ppu_imm(clear=True, emit=True, mode=mode),
                                rng.randrange(channels), rng.randrange(-top, top)))
    assert bench.ref.error == 1 and bench.ref.ptr == depth, f"{BLOCK}: fill did not overflow"
    await bench.cycle(step=(ppu_imm(clear=True), 0, 5))
    await bench.cycle(step=(ppu_imm(emit=True, mode=PpuMode.MAX4), 0, 5))
    await bench.check_memory()
    await bench.cycle(clear=1)
    for _ in range(3):
        await bench.cycle(step=(ppu_imm(clear=True, emit=True), rng.randrange(channels),
                                rng.randrange(-top, top)))
    await bench.check_memory()


# -- pytest ----------------------------------------------------------------------------------

def _config(size):
    cfg = preset("jeit_stt")
    if size == "tiny":
        # The narrowest accumulator the configuration allows; a table that does not fill its
        # address space (channel 3 is out of range) and a 5-word output memory that overflows.
        return dataclasses.replace(cfg, columns=8, operand_bits=4, acc_bits=8), 3, 5
    if size == "wide":
        # A 40-bit accumulator: a product wider than golden's 48-bit datapath, logits from the
        # low 32 bits of a wider sum; an output memory of 2**6 - 1 words (the pointer's range
        # check on the bits alone: out_depth + 1 a power of two; tiny's 5 and preset's 4096
        # take the other two forms).
        return dataclasses.replace(cfg, acc_bits=40), 20, 63
    return cfg, 256, 4096


@pytest.mark.sim
@pytest.mark.parametrize("size", ["tiny", "wide", "preset"])
def test_ppu(sim, size):
    cfg, channels, out_depth = _config(size)
    run_block(Ppu(config=cfg, channels=channels, out_depth=out_depth), block=BLOCK, sim=sim,
              test_module=__name__,
              params={"size": size, "acc_bits": cfg.acc_bits, "channels": channels,
                      "out_depth": out_depth, "runs": 60, "steps": 400})
