"""Output sampling of IMAC's last layer (seed 003): the class as the largest neuron output."""

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["ImacArgmax"]


class ImacArgmax(wiring.Component):
    """The index and value of the largest of ``inputs`` neuron output codes (``golden.imac.
    classify``): with ``sample`` high at a rising edge, ``index`` and ``value`` take the
    largest ``y[k]`` and its ``k``, the lowest ``k`` among equal maxima; otherwise they hold.
    Reset clears them.

    The last layer's neuron outputs are already digital codes in this model (the sigmoid
    table of :class:`~rtl.imac_neuron.ImacNeuron` plays the small ADC), so sampling them is a
    comparator chain.

    Parameters
    ----------
    inputs : int
        Neuron outputs compared (the classes; IMAC-Sim's MLP: 10).
    width : int
        Unsigned width of a neuron output code.

    Members
    -------
    y : In(ArrayLayout(width, inputs))
        Neuron output codes.
    sample : In(1)
        Register a new result at this edge.
    index : Out(max(1, ceil_log2(inputs)))
        The class of the latest sample.
    value : Out(width)
        Its neuron output code.

    Raises
    ------
    TypeError, ValueError
        ``inputs`` or ``width`` is not a positive int.
    """

    def __init__(self, *, inputs, width):
        for name, value in (("inputs", inputs), ("width", width)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        self._inputs, self._width = inputs, width
        super().__init__({
            "y":      In(data.ArrayLayout(width, inputs)),
            "sample": In(1),
            "index":  Out(max(1, ceil_log2(inputs))),
            "value":  Out(width),
        })

    @property
    def inputs(self):
        return self._inputs

    @property
    def width(self):
        return self._width

    def elaborate(self, platform):
        m = Module()
        best, best_k = self.y[0], Const(0, len(self.index))
        for k in range(1, self._inputs):
            # Strictly greater: an equal later output keeps the earlier index.
            # Multiplexers of equal widths, not a process: Icarus never runs an always @*
            # whose inputs keep their initial value, and would leave the index X.
            value = Signal(self._width, name=f"best_{k}")
            index = Signal(len(self.index), name=f"best_k_{k}")
            later = self.y[k] > best
            m.d.comb += [value.eq(Mux(later, self.y[k], best)),
                         index.eq(Mux(later, Const(k, len(self.index)), best_k))]
            best, best_k = value, index
        with m.If(self.sample):
            m.d.sync += [self.value.eq(best), self.index.eq(best_k)]
        return m
