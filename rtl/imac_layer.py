"""One IMAC layer (seed 003): partitioned crossbars feeding their neurons, as IMAC-Sim wires them.

The fan-in rows are cut into ``hpar`` horizontal partitions of ``rows`` rows and the neurons
into ``vpar`` vertical partitions of ``columns`` columns (IMAC-Sim's ``hpar`` and ``vpar``);
crossbar ``(p, v)`` is an :class:`~rtl.imac_crossbar.ImacCrossbar`, and the neurons of vertical
partition ``v`` are one :class:`~rtl.imac_neuron.ImacNeuron` combining the ``hpar`` partition
currents of each column. All crossbars compute at once, as in the analog array; the result is
``golden.imac.layer_fixed`` on a circuit of ``rows`` x ``columns`` crossbars.
"""

from amaranth.hdl import Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.imac_crossbar import ImacCrossbar, equals_const
from rtl.imac_neuron import ImacNeuron

__all__ = ["ImacLayer"]


class ImacLayer(wiring.Component):
    """An IMAC layer of ``inputs`` rows and ``outputs`` neurons on partitioned crossbars.

    Programming: with ``we`` high at a rising edge, the synapse of layer row ``w_row`` and
    neuron ``w_col`` takes the codes ``w_g_pos`` / ``w_g_neg`` (the high address bits select
    the crossbar, the low ones the synapse in it). Rows and columns beyond the layer are the
    last crossbars' padding: driven with 0 and never read, whatever they hold.

    Computing: ``sample`` high at a rising edge samples every crossbar's column currents of
    ``x``; one edge later the neurons sample those currents, and ``y`` and ``valid`` show the
    result from then on (``valid`` is high for the one cycle after the neurons' sample).

    Parameters
    ----------
    inputs, outputs : int
        Rows (bias row included) and neurons of the layer.
    rows, columns : int
        Crossbar size, powers of two (IMAC-Sim: 32 x 32).
    x_bits, g_bits, i_bits : int
        As :class:`~rtl.imac_crossbar.ImacMacroSignature`.
    mult, shift, rail_bits, recip, mean_shift, lut, out_bits
        As :class:`~rtl.imac_neuron.ImacNeuron` (``recip`` for ``ceil(inputs / rows)``
        partitions).

    Members
    -------
    x : In(ArrayLayout(signed(x_bits), inputs))
        Input drive codes.
    sample : In(1)
    we : In(1)
    w_row : In(ceil_log2(hpar * rows))
    w_col : In(ceil_log2(vpar * columns))
    w_g_pos, w_g_neg : In(g_bits)
    y : Out(ArrayLayout(out_bits, outputs))
        Neuron outputs.
    valid : Out(1)

    Raises
    ------
    TypeError, ValueError
        As the crossbar and the neuron; ``rows`` or ``columns`` not a power of two.
    """

    def __init__(self, *, inputs, outputs, rows, columns, x_bits, g_bits, i_bits, mult, shift,
                 rail_bits, recip, mean_shift, lut, out_bits):
        for name, value in (("inputs", inputs), ("outputs", outputs), ("rows", rows),
                            ("columns", columns)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        for name, value in (("rows", rows), ("columns", columns)):
            if value & (value - 1):
                raise ValueError(f"{name} must be a power of two, not {value!r}")
        self._hpar = -(-inputs // rows)
        self._vpar = -(-outputs // columns)
        self._xbar = dict(rows=rows, columns=columns, x_bits=x_bits, g_bits=g_bits,
                          i_bits=i_bits)
        self._neuron = dict(partitions=self._hpar, columns=columns, i_bits=i_bits, mult=mult,
                            shift=shift, rail_bits=rail_bits, recip=recip,
                            mean_shift=mean_shift, lut=lut, out_bits=out_bits)
        # Built here so that a bad parameter raises now, not at elaboration.
        ImacCrossbar(**self._xbar)
        ImacNeuron(**self._neuron)
        self._inputs, self._outputs = inputs, outputs
        super().__init__({
            "x":       In(data.ArrayLayout(signed(x_bits), inputs)),
            "sample":  In(1),
            "we":      In(1),
            "w_row":   In(max(1, ceil_log2(self._hpar * rows))),
            "w_col":   In(max(1, ceil_log2(self._vpar * columns))),
            "w_g_pos": In(g_bits),
            "w_g_neg": In(g_bits),
            "y":       Out(data.ArrayLayout(out_bits, outputs)),
            "valid":   Out(1),
        })

    @property
    def partitions(self):
        """``(hpar, vpar)``: horizontal and vertical partition counts."""
        return self._hpar, self._vpar

    def elaborate(self, platform):
        m = Module()
        rows, cols = self._xbar["rows"], self._xbar["columns"]
        r_bits, c_bits = ceil_log2(rows), ceil_log2(cols)
        neurons_sample = Signal()
        m.d.sync += [neurons_sample.eq(self.sample), self.valid.eq(neurons_sample)]
        for v in range(self._vpar):
            neuron = ImacNeuron(**self._neuron)
            m.submodules[f"neuron_{v}"] = neuron
            m.d.comb += neuron.sample.eq(neurons_sample)
            for p in range(self._hpar):
                xbar = ImacCrossbar(**self._xbar)
                m.submodules[f"xbar_{p}_{v}"] = xbar
                hit = self.we
                if self._hpar > 1:
                    hit = hit & equals_const(self.w_row[r_bits:], p)
                if self._vpar > 1:
                    hit = hit & equals_const(self.w_col[c_bits:], v)
                m.d.comb += [
                    xbar.sample.eq(self.sample),
                    xbar.we.eq(hit),
                    xbar.w_row.eq(self.w_row[:max(1, r_bits)]),
                    xbar.w_col.eq(self.w_col[:max(1, c_bits)]),
                    xbar.w_g_pos.eq(self.w_g_pos),
                    xbar.w_g_neg.eq(self.w_g_neg),
                ]
                # Padding rows beyond the layer are driven with 0: they carry no current.
                m.d.comb += [xbar.x[r].eq(self.x[p * rows + r])
                             for r in range(rows) if p * rows + r < self._inputs]
                m.d.comb += [neuron.i[p][c].eq(xbar.i_diff[c]) for c in range(cols)]
            m.d.comb += [self.y[v * cols + c].eq(neuron.y[c])
                         for c in range(cols) if v * cols + c < self._outputs]
        return m
