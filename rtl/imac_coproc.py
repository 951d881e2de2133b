"""The IMAC co-processor (seed 003): an analog MLP of :class:`~rtl.imac_layer.ImacLayer` behind a
host interface, with the input drivers, the layer sequencing and the class output.

The host (the "CPU" of CPU-IMAC) programs synapses, writes the binarized input vector as
32-bit words of sign bits, starts, waits for ``done`` and reads the class and the last layer's
output levels. Inside, layer ``l + 1`` samples when layer ``l``'s outputs become valid (no ADC
between layers: the neuron codes drive the next crossbar's rows), and the class is the
largest last-layer output (:class:`~rtl.imac_argmax.ImacArgmax`).
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.imac_argmax import ImacArgmax
from rtl.imac_crossbar import equals_const
from rtl.imac_layer import ImacLayer

__all__ = ["ImacCoproc", "INPUT_WORD_BITS", "COUNT_BITS", "check_mlp"]

#: Width of a host input word (32 sign bits).
INPUT_WORD_BITS = 32
#: Width of the synapse-write counter.
COUNT_BITS = 32


def check_mlp(*, shapes, bias, mults, recips, x_max, x_bits):
    """The network parameters both IMAC co-processors take (``ImacCoproc`` and
    ``rtl.imac_serial.ImacSerialCoproc``), checked; returns ``(shapes, bias, mults, recips)``
    as tuples (``shapes`` as tuples of ints).

    Raises
    ------
    ValueError
        No layer, per-layer sequences of another length than ``shapes``, shapes that do not
        chain (layer ``l + 1``'s inputs are layer ``l``'s outputs), ``x_max`` outside the
        positive range of ``x_bits`` signed bits.
    """
    shapes, bias = tuple(tuple(int(v) for v in s) for s in shapes), tuple(bias)
    mults, recips = tuple(mults), tuple(recips)
    n = len(shapes)
    if n < 1:
        raise ValueError("shapes must name at least one layer")
    for name, seq in (("bias", bias), ("mults", mults), ("recips", recips)):
        if len(seq) != n:
            raise ValueError(f"{name} must have one entry per layer ({n}), not {len(seq)}")
    for k in range(1, n):
        if shapes[k][0] != shapes[k - 1][1]:
            raise ValueError(f"layer {k} has {shapes[k][0]} inputs, layer {k - 1} "
                             f"{shapes[k - 1][1]} outputs")
    if not 0 < x_max < (1 << (x_bits - 1)):
        raise ValueError(f"x_max must be in [1, {(1 << (x_bits - 1)) - 1}], not {x_max!r}")
    return shapes, bias, mults, recips


class ImacCoproc(wiring.Component):
    """An IMAC MLP co-processor.

    Host side, one operation per cycle:

    * ``in_we``: input word ``in_addr`` takes ``in_data``; bit ``b`` is input ``32 * in_addr
      + b``, 1 for +1 (driven at ``+x_max``), 0 for -1 (``-x_max``).
    * ``prog_we``: the synapse of layer ``prog_layer``, row ``prog_row``, neuron ``prog_col``
      takes the conductance codes ``prog_g_pos`` / ``prog_g_neg`` (a SOT write of both
      devices); ``prog_count`` counts these commands (wrapping at ``2**32``), for the energy
      of programming. A bias row is the layer's last row, driven at ``+x_max``; an address
      outside the layer writes nothing.
    * ``start``: run the network on the input vector. ``busy`` is high until ``done`` rises,
      at the ``2 * layers``-th rising edge after the one that samples ``start`` (each layer:
      crossbars, then neurons); ``done`` stays high until the next ``start``.
    * ``class_index``: the class of the latest run; ``out_level``: the last layer's output
      code ``out_addr`` (combinational).

    Parameters
    ----------
    shapes : sequence of (int, int)
        ``(inputs, outputs)`` per layer, inputs without the bias row; layer ``l + 1`` has
        layer ``l``'s outputs as inputs.
    bias : sequence of bool
        Whether each layer has a bias row.
    mults, recips : sequence of int
        Per layer, the amplifier multiplier and the partition-mean reciprocal
        (:class:`~rtl.imac_neuron.ImacNeuron`).
    x_max : int
        Drive code of a full-scale input (+-``x_max`` for a binarized input, and the bias).
    rows, columns, x_bits, g_bits, i_bits, shift, rail_bits, mean_shift, lut, out_bits
        As :class:`~rtl.imac_layer.ImacLayer`, the same for every layer.

    Raises
    ------
    ValueError
        The per-layer sequences differ in length or the shapes do not chain; and whatever
        :class:`~rtl.imac_layer.ImacLayer` raises.
    """

    def __init__(self, *, shapes, bias, mults, recips, x_max, rows, columns, x_bits, g_bits,
                 i_bits, shift, rail_bits, mean_shift, lut, out_bits):
        shapes, bias, mults, recips = check_mlp(shapes=shapes, bias=bias, mults=mults,
                                                recips=recips, x_max=x_max, x_bits=x_bits)
        n = len(shapes)
        self._shapes, self._bias, self._x_max = shapes, bias, x_max
        self._layers = [
            dict(inputs=i + int(b), outputs=o, rows=rows, columns=columns, x_bits=x_bits,
                 g_bits=g_bits, i_bits=i_bits, mult=mu, shift=shift, rail_bits=rail_bits,
                 recip=rc, mean_shift=mean_shift, lut=lut, out_bits=out_bits)
            for (i, o), b, mu, rc in zip(shapes, bias, mults, recips, strict=True)]
        built = [ImacLayer(**kw) for kw in self._layers]      # validates now
        n_in, n_cls = shapes[0][0], shapes[-1][1]
        words = -(-n_in // INPUT_WORD_BITS)
        row_bits = max(len(b.w_row) for b in built)
        col_bits = max(len(b.w_col) for b in built)
        self._argmax = dict(inputs=n_cls, width=out_bits)
        super().__init__({
            "in_we":       In(1),
            "in_addr":     In(max(1, ceil_log2(words))),
            "in_data":     In(INPUT_WORD_BITS),
            "prog_we":     In(1),
            "prog_layer":  In(max(1, ceil_log2(n))),
            "prog_row":    In(row_bits),
            "prog_col":    In(col_bits),
            "prog_g_pos":  In(g_bits),
            "prog_g_neg":  In(g_bits),
            "prog_count":  Out(COUNT_BITS),
            "start":       In(1),
            "busy":        Out(1),
            "done":        Out(1),
            "class_index": Out(max(1, ceil_log2(n_cls))),
            "out_addr":    In(max(1, ceil_log2(n_cls))),
            "out_level":   Out(out_bits),
        })

    def elaborate(self, platform):
        m = Module()
        n_in = self._shapes[0][0]
        words = -(-n_in // INPUT_WORD_BITS)
        in_bits = Signal(words * INPUT_WORD_BITS)

        # -- host: input words, synapse programming and its count --------------------------
        for w in range(words):
            with m.If(self.in_we & equals_const(self.in_addr, w)):
                m.d.sync += in_bits[w * INPUT_WORD_BITS:(w + 1) * INPUT_WORD_BITS].eq(
                    self.in_data)
        with m.If(self.prog_we):
            m.d.sync += self.prog_count.eq(self.prog_count + 1)

        x_shape = signed(self._layers[0]["x_bits"])
        plus, minus = Const(self._x_max, x_shape), Const(-self._x_max, x_shape)
        layers = []
        for k, kw in enumerate(self._layers):
            layer = ImacLayer(**kw)
            m.submodules[f"layer_{k}"] = layer
            layers.append(layer)
            # An address wider than this layer's ports must not alias into it.
            hit = self.prog_we & equals_const(self.prog_layer, k)
            for addr, port in ((self.prog_row, layer.w_row), (self.prog_col, layer.w_col)):
                if len(addr) > len(port):
                    hit = hit & ~addr[len(port):].any()
            m.d.comb += [
                layer.we.eq(hit),
                layer.w_row.eq(self.prog_row),
                layer.w_col.eq(self.prog_col),
                layer.w_g_pos.eq(self.prog_g_pos),
                layer.w_g_neg.eq(self.prog_g_neg),
            ]
            # -- input drivers: sign bits to +-x_max, neuron codes as they are, bias +x_max
            n = self._shapes[k][0]
            for r in range(n):
                if k == 0:
                    # A multiplexer, not a process (Icarus, see rtl.imac_argmax).
                    m.d.comb += layer.x[r].eq(Mux(in_bits[r], plus, minus))
                else:
                    m.d.comb += layer.x[r].eq(layers[k - 1].y[r])
            if self._bias[k]:
                m.d.comb += layer.x[n].eq(self._x_max)
            # -- sequencing: each layer samples when the previous one's outputs are valid
            m.d.comb += layer.sample.eq(self.start if k == 0 else layers[k - 1].valid)

        # -- output sampling: the class, the levels, done -------------------------------------
        m.submodules.argmax = argmax = ImacArgmax(**self._argmax)
        last = layers[-1]
        n_cls = self._shapes[-1][1]
        m.d.comb += [argmax.y[c].eq(last.y[c]) for c in range(n_cls)]
        m.d.comb += [argmax.sample.eq(last.valid), self.class_index.eq(argmax.index)]
        # The argmax registers the class at the edge where done rises.
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), self.done.eq(0)]
        with m.Elif(last.valid):
            m.d.sync += [self.busy.eq(0), self.done.eq(1)]
        with m.Switch(self.out_addr):
            for c in range(n_cls):
                with m.Case(c):
                    m.d.comb += self.out_level.eq(last.y[c])
            if n_cls < (1 << len(self.out_addr)):
                with m.Default():
                    m.d.comb += self.out_level.eq(0)
        return m
