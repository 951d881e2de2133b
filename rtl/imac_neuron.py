"""IMAC neurons (seed 003): partition amplifiers, their mean, the SOT-MRAM sigmoid as a table.

One lane per column. For each horizontal partition ``p`` of the layer the column's
differential current ``i[p]`` goes through the partition's differential amplifier, an integer
gain and a saturation at the rails; the neuron input is the mean of the partition outputs
(IMAC-Sim ties the amplifier outputs together through equal resistors) and the sigmoid is a
lookup table. The arithmetic is ``golden.imac.amp_fixed`` and ``golden.imac.neuron_fixed``;
every constant is a parameter (``rtl`` does not import ``golden``: the tests pass golden's
:func:`~golden.imac.amp_multiplier`, :func:`~golden.imac.mean_reciprocal` and
:func:`~golden.imac.sigmoid_lut`).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["ImacNeuron"]


def _int_at_least(name, value, low):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < low:
        raise ValueError(f"{name} must be an int of at least {low}, not {value!r}")
    return value


class ImacNeuron(wiring.Component):
    """``columns`` IMAC neurons, each combining ``partitions`` amplified partition currents.

    With ``sample`` high at a rising edge, for every partition ``p`` and column ``c``::

        amp[p][c] = clip((i[p][c] * mult + 2**(shift-1)) >> shift, -rail, rail)
        v[c]      = clip((sum_p amp[p][c] * recip + 2**(mean_shift-1)) >> mean_shift,
                         -rail, rail)
        y[c]      = lut[v[c] + rail]

    (``>>`` arithmetic, ``rail = 2**rail_bits``) are registered; otherwise they hold. Reset
    clears them.

    Parameters
    ----------
    partitions : int
        Horizontal partitions combined per neuron (IMAC-Sim: ``ceil((fan-in + 1) / 32)``).
    columns : int
        Neurons (lanes).
    i_bits : int
        Signed width of a partition current.
    mult, shift : int
        Amplifier gain as ``mult / 2**shift`` output codes per current code.
    rail_bits : int
        The amplifier saturates at ``+-2**rail_bits`` codes (the supply rails).
    recip, mean_shift : int
        The mean over the partitions as ``* recip >> mean_shift``.
    lut : sequence of int
        The sigmoid table, ``2 * 2**rail_bits + 1`` entries in ``[0, 2**out_bits)``.
    out_bits : int
        Unsigned width of a neuron output.

    Members
    -------
    i : In(ArrayLayout(ArrayLayout(signed(i_bits), columns), partitions))
        Partition currents; ``i[p][c]`` at bits ``(p * columns + c) * i_bits`` of the flat port.
    sample : In(1)
        Register new outputs at this edge.
    amp : Out(ArrayLayout(ArrayLayout(signed(rail_bits + 2), columns), partitions))
        Amplifier outputs of the latest sample.
    y : Out(ArrayLayout(out_bits, columns))
        Neuron outputs of the latest sample.

    Raises
    ------
    TypeError, ValueError
        A parameter is not an int of its range, or ``lut`` has the wrong length or an entry
        outside ``[0, 2**out_bits)``.
    """

    def __init__(self, *, partitions, columns, i_bits, mult, shift, rail_bits, recip,
                 mean_shift, lut, out_bits):
        for name, value, low in (("partitions", partitions, 1), ("columns", columns, 1),
                                 ("i_bits", i_bits, 2), ("mult", mult, 1), ("shift", shift, 1),
                                 ("rail_bits", rail_bits, 1), ("recip", recip, 1),
                                 ("mean_shift", mean_shift, 1), ("out_bits", out_bits, 1)):
            _int_at_least(name, value, low)
        lut = tuple(lut)
        depth = 2 * (1 << rail_bits) + 1
        if len(lut) != depth:
            raise ValueError(f"lut must have {depth} entries (2 * 2**rail_bits + 1), "
                             f"not {len(lut)}")
        for k, entry in enumerate(lut):
            if isinstance(entry, bool) or not isinstance(entry, int) \
                    or not 0 <= entry < (1 << out_bits):
                raise ValueError(f"lut[{k}] must be an int in [0, {1 << out_bits}), "
                                 f"not {entry!r}")
        self._params = dict(partitions=partitions, columns=columns, i_bits=i_bits, mult=mult,
                            shift=shift, rail_bits=rail_bits, recip=recip,
                            mean_shift=mean_shift, out_bits=out_bits)
        self._lut = lut
        amp_shape = signed(rail_bits + 2)
        super().__init__({
            "i":      In(data.ArrayLayout(data.ArrayLayout(signed(i_bits), columns),
                                          partitions)),
            "sample": In(1),
            "amp":    Out(data.ArrayLayout(data.ArrayLayout(amp_shape, columns), partitions)),
            "y":      Out(data.ArrayLayout(out_bits, columns)),
        })

    @property
    def params(self):
        """The integer parameters, as a dict (a copy)."""
        return dict(self._params)

    @property
    def lut(self):
        return self._lut

    @staticmethod
    def _round_shift(value, factor, shift):
        """``(value * factor + 2**(shift-1)) >> shift`` (arithmetic: floor), exact, as
        ``(((value * factor) >> (shift-1)) + 1) >> 1``: the added constant is a 1-bit one."""
        prod = value * Const(factor, factor.bit_length())
        q = prod[shift - 1:].as_signed()              # prod >> (shift-1), a slice
        return (q.as_unsigned() + 1)[1:len(q)].as_signed()

    @staticmethod
    def _clip(m, value, k, width, name):
        """``clip(value, -2**k, 2**k)`` into a new ``signed(width)`` signal, and the table
        address ``clip + 2**k`` into a new ``k + 2``-bit one. Compared by bit reductions,
        not with constants (yosys trims a constant operand; Verilator's WIDTH lint), and
        selected by multiplexers of equal widths rather than a process: Icarus never runs an
        ``always @*`` whose inputs keep their initial value, and would leave it X."""
        n = len(value)
        neg = value[n - 1]
        at_or_over = ~neg & value[k:n - 1].any()        # value >= 2**k
        under = neg & ~value[k:].all()                  # value < -2**k
        clipped = Signal(signed(width), name=name)
        addr = Signal(k + 2, name=f"{name}_addr")
        # In range, value is in [-2**k, 2**k): bits k.. are its sign; + 2**k flips bit k.
        m.d.comb += [
            clipped.eq(Mux(at_or_over, Const(1 << k, signed(width)),
                           Mux(under, Const(-(1 << k), signed(width)),
                               value[:width].as_signed()))),
            addr.eq(Mux(at_or_over, Const(2 << k, k + 2),
                        Mux(under, Const(0, k + 2),
                            Cat(value[:k], ~value[k], Const(0, 1))))),
        ]
        return clipped, addr

    def elaborate(self, platform):
        # Why every net is as wide as it is: Verilator's WIDTH lint wants the operands of every
        # adder and comparison equally wide. The clipped amplifier outputs are built at the
        # width of their sum (a process output keeps its width; an extension inside an
        # expression would be folded back), so the adder chain adds equal widths.
        m = Module()
        p = self._params
        parts, cols, k = p["partitions"], p["columns"], p["rail_bits"]
        sum_bits = k + 2 + parts.bit_length()
        m.submodules.lut = lut = Memory(shape=p["out_bits"], depth=len(self._lut),
                                        init=self._lut)
        for c in range(cols):
            total = None
            for q in range(parts):
                scaled = self._round_shift(self.i[q][c], p["mult"], p["shift"])
                amp, _ = self._clip(m, scaled, k, sum_bits, f"amp_{q}_{c}")
                with m.If(self.sample):
                    m.d.sync += self.amp[q][c].eq(amp)
                if total is None:
                    total = amp
                else:
                    acc = Signal(signed(sum_bits), name=f"sum_{q}_{c}")
                    m.d.comb += acc.eq(total + amp)
                    total = acc
            mean = self._round_shift(total, p["recip"], p["mean_shift"])
            _, addr = self._clip(m, mean, k, k + 2, f"v_{c}")
            read = lut.read_port(domain="comb")
            m.d.comb += read.addr.eq(addr)
            with m.If(self.sample):
                m.d.sync += self.y[c].eq(read.data)
        return m
