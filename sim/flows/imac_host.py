"""The host side of an IMAC co-processor in a running cocotb simulation (seed 003).

:class:`ImacHost` drives the host ports that ``rtl.imac_coproc.ImacCoproc`` and
``rtl.imac_serial.ImacSerialCoproc`` share: it programs synapses (and keeps the conductance
codes it wrote, so that a test can chain ``golden.imac.layer_fixed`` over them), writes the
binarized input vector, starts a run and waits for ``done``, and reads output levels and the
class. Used by ``cocotb_tests/test_imac_coproc.py``, ``cocotb_tests/test_imac_serial.py`` and
the CPU-IMAC flow (:mod:`sim.flows.imac_flow`), as ``sim.flows.rtl_backend.CoreHost`` is by the
core's.

Every host operation takes one clock cycle: the ports are set after a falling edge and the
co-processor takes them at the next rising edge.
"""

from __future__ import annotations

import numpy as np

from golden import imac

__all__ = ["ImacHost", "INPUT_WORD_BITS"]

#: Sign bits per host input word (``rtl.imac_coproc.INPUT_WORD_BITS``).
INPUT_WORD_BITS = 32
_INPUTS = ("in_we", "in_addr", "in_data", "prog_we", "prog_layer", "prog_row", "prog_col",
           "prog_g_pos", "prog_g_neg", "start", "out_addr")


class ImacHost:
    """Host of one IMAC co-processor.

    Parameters
    ----------
    dut : cocotb handle
        The co-processor (or its test bench, with the same ports).
    shapes : sequence of (int, int)
        ``(inputs, outputs)`` per layer, inputs without the bias row.
    bias : sequence of bool
        Whether each layer has a bias row (its last row).
    name : str
        Block name in failure messages.

    Attributes
    ----------
    g : list
        Per layer, ``[g_pos, g_neg]``: the conductance codes ``[rows, outputs]`` written so
        far (0 before).
    writes : int
        Synapse-write commands issued (``prog_count`` counts the same, addresses outside a
        layer included).
    """

    def __init__(self, dut, shapes, bias, *, name: str = "imac"):
        self.dut, self.name = dut, name
        self.shapes = [tuple(int(v) for v in s) for s in shapes]
        self.bias = [bool(b) for b in bias]
        self.g = [[np.zeros((i + b, o), dtype=np.int64) for _ in range(2)]
                  for (i, o), b in zip(self.shapes, self.bias, strict=True)]
        self.writes = 0
        # The serial co-processor reads every layer's levels (out_layer), the parallel one
        # only the last layer's.
        self.inputs = _INPUTS + (("out_layer",) if hasattr(dut, "out_layer") else ())

    def idle(self) -> None:
        """Every host input to 0 (no operation)."""
        for name in self.inputs:
            getattr(self.dut, name).value = 0

    async def reset(self) -> None:
        """Start the clock (``sim.flows.rtl_backend.start_clock``), idle the inputs, hold ``rst``
        for two cycles; returns after the falling edge that releases it."""
        from cocotb.triggers import ClockCycles, FallingEdge

        from sim.flows.rtl_backend import start_clock
        self.period_ns = start_clock(self.dut)
        self.idle()
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    async def tick(self) -> None:
        """One cycle: the next falling edge, then every input idle."""
        from cocotb.triggers import FallingEdge
        await FallingEdge(self.dut.clk)
        self.idle()

    def _record(self, layer, row, col, gp, gn) -> None:
        if layer < len(self.g) and row < self.g[layer][0].shape[0] \
                and col < self.g[layer][0].shape[1]:
            self.g[layer][0][row, col], self.g[layer][1][row, col] = gp, gn
        self.writes += 1

    async def program(self, layer: int, row: int, col: int, gp: int, gn: int) -> None:
        """One synapse write (an address outside the layer too: the co-processor ignores it
        but counts it); then checks ``prog_count``."""
        d = self.dut
        d.prog_we.value, d.prog_layer.value = 1, layer
        d.prog_row.value, d.prog_col.value = row, col
        d.prog_g_pos.value, d.prog_g_neg.value = gp, gn
        self._record(layer, row, col, gp, gn)
        await self.tick()
        self.check_count()

    async def program_layers(self, codes) -> None:
        """Write every synapse of every layer, one per cycle (column by column, rows inside),
        ``codes`` a ``(g_pos, g_neg)`` pair of ``[rows, outputs]`` code arrays per layer;
        ``prog_count`` is checked once at the end."""
        from cocotb.triggers import FallingEdge
        d = self.dut
        for k, (gp, gn) in enumerate(codes):
            gp, gn = np.asarray(gp, dtype=np.int64), np.asarray(gn, dtype=np.int64)
            if gp.shape != self.g[k][0].shape or gn.shape != gp.shape:
                raise ValueError(f"{self.name}: layer {k} codes must have shape "
                                 f"{self.g[k][0].shape}, not {gp.shape} / {gn.shape}")
            d.prog_we.value, d.prog_layer.value = 1, k
            for c in range(gp.shape[1]):
                d.prog_col.value = c
                for r in range(gp.shape[0]):
                    d.prog_row.value = r
                    d.prog_g_pos.value = int(gp[r, c])
                    d.prog_g_neg.value = int(gn[r, c])
                    await FallingEdge(d.clk)
            self.g[k] = [gp.copy(), gn.copy()]
            self.writes += gp.size
        self.idle()
        await FallingEdge(d.clk)
        self.check_count()

    def check_count(self) -> None:
        got = int(self.dut.prog_count.value)
        if got != self.writes % (1 << len(self.dut.prog_count)):
            raise AssertionError(f"{self.name}: prog_count {got} != {self.writes} synapse "
                                 "writes")

    async def write_inputs(self, signs) -> None:
        """The input vector, +-1 per input, as words of sign bits (1 for +1)."""
        d = self.dut
        bits = np.asarray(signs) > 0
        for w in range(-(-bits.size // INPUT_WORD_BITS)):
            chunk = bits[INPUT_WORD_BITS * w:INPUT_WORD_BITS * (w + 1)]
            d.in_we.value, d.in_addr.value = 1, w
            d.in_data.value = sum(1 << b for b, s in enumerate(chunk) if s)
            await self.tick()

    async def run(self, signs, *, poll: bool = True, max_cycles: int = 1 << 20) -> int:
        """Write ``signs``, start, wait for ``done``; return the rising edges from the one
        that samples ``start`` to the one at which ``done`` rises.

        With ``poll`` the host looks at every cycle and requires ``busy`` high until
        ``done`` (and low with it); without, it sleeps until ``done`` rises (one Python
        wake-up per run instead of per cycle).
        """
        from cocotb.triggers import FallingEdge, RisingEdge
        from cocotb.utils import get_sim_time
        d = self.dut
        await self.write_inputs(signs)
        d.start.value = 1
        if poll:
            await self.tick()
            ticks = 1
            while not int(d.done.value):
                if not int(d.busy.value):
                    raise AssertionError(f"{self.name}: busy low before done")
                await self.tick()
                ticks += 1
                if ticks > max_cycles:
                    raise AssertionError(f"{self.name}: no done after {max_cycles} cycles")
            if int(d.busy.value):
                raise AssertionError(f"{self.name}: busy high with done")
            return ticks - 1
        await RisingEdge(d.clk)
        t_start = get_sim_time("ns")
        await FallingEdge(d.clk)
        self.idle()
        if not int(d.done.value):
            await RisingEdge(d.done)
        cycles = round((get_sim_time("ns") - t_start) / self.period_ns)
        await FallingEdge(d.clk)
        return cycles

    async def read_levels(self, n: int, *, layer: int | None = None) -> list[int]:
        """Output codes at addresses ``0 .. n - 1`` (of ``layer`` on the serial
        co-processor), one address per cycle."""
        from cocotb.triggers import FallingEdge
        d = self.dut
        levels = []
        for c in range(n):
            if layer is not None:
                d.out_layer.value = layer
            d.out_addr.value = c
            await FallingEdge(d.clk)
            levels.append(int(d.out_level.value))
        self.idle()
        return levels

    def class_index(self) -> int:
        return int(self.dut.class_index.value)

    def golden(self, signs, gains, *, circuit: imac.ImacCircuit = imac.CIRCUIT,
               fmt: imac.FixedFormat = imac.FIXED) -> list[np.ndarray]:
        """Every layer's output codes by ``golden.imac.layer_fixed`` over the codes written
        so far, chained as the circuit chains its layers (inputs at ``+-x_max``, neuron
        codes as the next inputs, a bias row at ``+x_max``)."""
        act = np.asarray([signs], dtype=np.int64) * fmt.x_max
        outs = []
        for (gp, gn), b, gain in zip(self.g, self.bias, gains, strict=True):
            if b:
                act = np.hstack([act, [[fmt.x_max]]])
            act = imac.layer_fixed(act, gp, gn, gain, circuit=circuit, fmt=fmt)
            outs.append(act[0])
        return outs
