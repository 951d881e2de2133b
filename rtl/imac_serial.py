"""The IMAC co-processor (seed 003) at network scale: the analog array evaluated one synapse per
cycle, for simulation.

``rtl.imac_coproc.ImacCoproc`` builds every synapse as a register pair with its own
multiplier, as the analog array computes all of them at once; a 3-layer 40-8-6-4 network of
those took over 15 minutes to compile in Verilator, so IMAC-Sim's 400-120-84-10 MLP (about
59,000 synapses) cannot be simulated that way. :class:`ImacSerialCoproc` is the same
co-processor with the same host operations and the same arithmetic (``golden.imac.
layer_fixed``, bit for bit): the synapses' conductance codes are held in one memory per layer
(non-volatile: reset does not clear them), and a sequencer walks every neuron's fan-in one row
per cycle, summing each 32-row partition's current exactly, passing it through the partition
amplifier (integer gain, saturation at the rails) as the partition ends, then taking the mean of
the partitions and the sigmoid table as the neuron's last row ends. The cycle count is the
simulation model's, not the analog circuit's (which settles a layer in one sampling time,
IMAC-Sim: 2 ns).

Neuron outputs are kept per layer and readable by the host (``out_layer``, ``out_addr``), so
that every layer's output levels can be compared with golden's.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.imac_coproc import COUNT_BITS, INPUT_WORD_BITS, check_mlp
from rtl.imac_crossbar import current_bits, equals_const
from rtl.imac_neuron import ImacNeuron

__all__ = ["ImacSerialCoproc", "INPUT_WORD_BITS", "COUNT_BITS", "MAX_PARTITIONS"]

#: Horizontal partitions a neuron combines at most (``golden.imac.MAX_PARTITIONS``).
MAX_PARTITIONS = 16


def _bits(n):
    return max(1, ceil_log2(n))


class ImacSerialCoproc(wiring.Component):
    """An IMAC MLP co-processor, evaluated serially (see the module docstring).

    Host side, one operation per cycle:

    * ``in_we``: input word ``in_addr`` takes ``in_data``; bit ``b`` is input ``32 * in_addr
      + b``, 1 for +1 (driven at ``+x_max``), 0 for -1 (``-x_max``).
    * ``prog_we``: the synapse of layer ``prog_layer``, row ``prog_row``, neuron ``prog_col``
      takes the conductance codes ``prog_g_pos`` / ``prog_g_neg`` (a SOT write of both
      devices); ``prog_count`` counts these commands (wrapping at ``2**32``). A bias row is
      the layer's last row, driven at ``+x_max``. Row and column address a power-of-two
      padded array: a row or column beyond the layer but within its address width writes a
      padding entry that is never read; one beyond the width writes nothing.
    * ``start``: run the network on the input vector. ``busy`` rises at the next edge and
      stays high for one cycle per synapse (``sum over layers of rows * neurons``), then
      ``done`` rises and stays high until the next ``start``. Programming while ``busy`` is
      not allowed (the result is undefined).
    * ``class_index``: the class of the latest run (the largest last-layer output, the lowest
      index among equal maxima); ``out_level``: output code ``out_addr`` of layer
      ``out_layer`` of the latest run (combinational; 0 beyond the layer).

    Parameters
    ----------
    shapes : sequence of (int, int)
        ``(inputs, outputs)`` per layer, inputs without the bias row.
    bias : sequence of bool
        Whether each layer has a bias row.
    mults, recips : sequence of int
        Per layer, the amplifier multiplier (``golden.imac.amp_multiplier``) and the
        partition-mean reciprocal (``golden.imac.mean_reciprocal`` of the layer's partitions).
    x_max : int
        Drive code of a full-scale input.
    rows : int
        Crossbar rows: the partition height (IMAC-Sim: 32), a power of two.
    x_bits, g_bits, i_bits, shift, rail_bits, mean_shift, lut, out_bits
        As ``rtl.imac_neuron.ImacNeuron`` and ``rtl.imac_crossbar.ImacCrossbar``.

    Raises
    ------
    ValueError
        Sequences of different lengths, shapes that do not chain, ``rows`` not a power of two,
        more than :data:`MAX_PARTITIONS` partitions in a layer, ``i_bits`` too narrow for a
        partition, and whatever ``rtl.imac_neuron.ImacNeuron`` raises for its
        parameters.
    """

    def __init__(self, *, shapes, bias, mults, recips, x_max, rows, x_bits, g_bits, i_bits,
                 shift, rail_bits, mean_shift, lut, out_bits):
        shapes, bias, mults, recips = check_mlp(shapes=shapes, bias=bias, mults=mults,
                                                recips=recips, x_max=x_max, x_bits=x_bits)
        n = len(shapes)
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1 or rows & (rows - 1):
            raise ValueError(f"rows must be a power of two, not {rows!r}")
        need = current_bits(rows=rows, x_bits=x_bits, g_bits=g_bits)
        if i_bits < need:
            raise ValueError(f"i_bits must be at least {need} for {rows} rows of {x_bits}-bit "
                             f"inputs and {g_bits}-bit conductances, not {i_bits}")
        for k, ((i, o), b) in enumerate(zip(shapes, bias, strict=True)):
            if i < 1 or o < 1:
                raise ValueError(f"layer {k} must have positive inputs and outputs, not "
                                 f"{(i, o)}")
            hpar = -(-(i + int(b)) // rows)
            if hpar > MAX_PARTITIONS:
                raise ValueError(f"layer {k} has {i + int(b)} input rows: {hpar} partitions of "
                                 f"{rows}, more than the {MAX_PARTITIONS} a neuron combines")
            # Validates mult, recip, lut and the widths as the neuron block does; it is not
            # elaborated (Amaranth's must-use check is silenced for it).
            ImacNeuron(partitions=hpar, columns=1, i_bits=i_bits, mult=mults[k], shift=shift,
                       rail_bits=rail_bits, recip=recips[k], mean_shift=mean_shift, lut=lut,
                       out_bits=out_bits)._MustUse__silence = True
        self._shapes, self._bias = shapes, bias
        self._mults, self._recips = mults, recips
        self._p = dict(x_max=x_max, rows=rows, x_bits=x_bits, g_bits=g_bits, i_bits=i_bits,
                       shift=shift, rail_bits=rail_bits, mean_shift=mean_shift,
                       out_bits=out_bits)
        self._lut = tuple(lut)
        words = -(-shapes[0][0] // INPUT_WORD_BITS)
        n_cls = shapes[-1][1]
        super().__init__({
            "in_we":       In(1),
            "in_addr":     In(_bits(words)),
            "in_data":     In(INPUT_WORD_BITS),
            "prog_we":     In(1),
            "prog_layer":  In(_bits(n)),
            "prog_row":    In(max(self.row_bits(k) for k in range(n))),
            "prog_col":    In(max(self.col_bits(k) for k in range(n))),
            "prog_g_pos":  In(g_bits),
            "prog_g_neg":  In(g_bits),
            "prog_count":  Out(COUNT_BITS),
            "start":       In(1),
            "busy":        Out(1),
            "done":        Out(1),
            "class_index": Out(_bits(n_cls)),
            "out_layer":   In(_bits(n)),
            "out_addr":    In(max(self.col_bits(k) for k in range(n))),
            "out_level":   Out(out_bits),
        })

    def fan_in(self, k):
        """Rows of layer ``k``, the bias row included."""
        return self._shapes[k][0] + int(self._bias[k])

    def row_bits(self, k):
        return _bits(self.fan_in(k))

    def col_bits(self, k):
        return _bits(self._shapes[k][1])

    @property
    def cycles_per_run(self):
        """Rising edges from the one that samples ``start`` to the one at which ``done``
        rises: one per synapse."""
        return sum(self.fan_in(k) * o for k, (_, o) in enumerate(self._shapes))

    def elaborate(self, platform):
        m = Module()
        p, n = self._p, len(self._shapes)
        x_shape, wide = signed(p["x_bits"]), signed(p["i_bits"])
        k_rail = p["rail_bits"]
        sum_bits = k_rail + 2 + MAX_PARTITIONS.bit_length()
        r_bits = ceil_log2(p["rows"])
        n_in = self._shapes[0][0]
        words = -(-n_in // INPUT_WORD_BITS)
        row_w = max(self.row_bits(k) for k in range(n))
        col_w = max(self.col_bits(k) for k in range(n))

        # -- host: input words, programming count ---------------------------------------------
        in_bits = Signal(words * INPUT_WORD_BITS)
        for w in range(words):
            with m.If(self.in_we & equals_const(self.in_addr, w)):
                m.d.sync += in_bits[w * INPUT_WORD_BITS:(w + 1) * INPUT_WORD_BITS].eq(
                    self.in_data)
        with m.If(self.prog_we):
            m.d.sync += self.prog_count.eq(self.prog_count + 1)

        # -- sequencer state ------------------------------------------------------------------
        layer = Signal(_bits(n))
        row = Signal(row_w)
        col = Signal(col_w)
        acc = Signal(wide)
        ampsum = Signal(signed(sum_bits))
        best = Signal(p["out_bits"])

        m.submodules.lut = lut = Memory(shape=p["out_bits"], depth=len(self._lut),
                                        init=self._lut)
        lut_rd = lut.read_port(domain="comb")

        # Per layer: the synapse read, the drive of the current row, the term, the flags.
        terms, amps, addrs, last_rows, part_ends, last_cols, y_mems = [], [], [], [], [], [], []
        acc_next = Signal(wide)
        ampsum_next = Signal(signed(sum_bits))
        for k in range(n):
            rb, cb = self.row_bits(k), self.col_bits(k)
            g = Memory(shape=2 * p["g_bits"], depth=1 << (rb + cb), init=[])
            m.submodules[f"g_{k}"] = g
            wr = g.write_port()
            hit = self.prog_we & equals_const(self.prog_layer, k)
            for addr, width in ((self.prog_row, rb), (self.prog_col, cb)):
                if len(addr) > width:
                    hit = hit & ~addr[width:].any()
            m.d.comb += [wr.en.eq(hit), wr.addr.eq(Cat(self.prog_row[:rb], self.prog_col[:cb])),
                         wr.data.eq(Cat(self.prog_g_pos, self.prog_g_neg))]
            rd = g.read_port(domain="comb")
            m.d.comb += rd.addr.eq(Cat(row[:rb], col[:cb]))
            g_pos, g_neg = rd.data[:p["g_bits"]], rd.data[p["g_bits"]:]

            i, o = self._shapes[k]
            if k == 0:
                # A full-width shift (a 1-bit slice of it trips Verilator's WIDTH lint).
                shifted = Signal(len(in_bits), name="in_shifted")
                m.d.comb += shifted.eq(in_bits >> row)
                drive = Mux(shifted[0], Const(p["x_max"], x_shape), Const(-p["x_max"], x_shape))
            else:
                prev = y_mems[k - 1]
                prd = prev.read_port(domain="comb")
                pb = ceil_log2(prev.depth)
                m.d.comb += prd.addr.eq(row[:pb])
                drive = Cat(prd.data, Const(0, p["x_bits"] - p["out_bits"])).as_signed()
            x = Signal(x_shape, name=f"x_{k}")
            if self._bias[k]:
                m.d.comb += x.eq(Mux(equals_const(row, i), Const(p["x_max"], x_shape), drive))
            else:
                m.d.comb += x.eq(drive)
            term = Signal(wide, name=f"term_{k}")
            m.d.comb += term.eq(x * (g_pos - g_neg))
            terms.append(term)

            scaled = ImacNeuron._round_shift(acc_next, self._mults[k], p["shift"])
            amp, _ = ImacNeuron._clip(m, scaled, k_rail, sum_bits, f"amp_{k}")
            amps.append(amp)
            mean = ImacNeuron._round_shift(ampsum_next, self._recips[k], p["mean_shift"])
            _, addr = ImacNeuron._clip(m, mean, k_rail, k_rail + 2, f"v_{k}")
            addrs.append(addr)
            last_row = Signal(name=f"last_row_{k}")
            part_end = Signal(name=f"part_end_{k}")
            last_col = Signal(name=f"last_col_{k}")
            m.d.comb += [last_row.eq(equals_const(row, self.fan_in(k) - 1)),
                         part_end.eq(last_row | (row[:r_bits].all() if r_bits else 1)),
                         last_col.eq(equals_const(col, o - 1))]
            last_rows.append(last_row)
            part_ends.append(part_end)
            last_cols.append(last_col)
            y = Memory(shape=p["out_bits"], depth=1 << cb, init=[])
            m.submodules[f"y_{k}"] = y
            y_mems.append(y)

        def pick(values, shape, name):
            """The value of the current layer (multiplexers of equal widths)."""
            out = Signal(shape, name=name)
            expr = values[-1]
            for k in range(n - 2, -1, -1):
                expr = Mux(equals_const(layer, k), values[k], expr)
            m.d.comb += out.eq(expr)
            return out

        term = pick(terms, wide, "term")
        m.d.comb += acc_next.eq(acc + term)
        amp = pick(amps, signed(sum_bits), "amp")
        m.d.comb += ampsum_next.eq(ampsum + amp)
        m.d.comb += lut_rd.addr.eq(pick(addrs, k_rail + 2, "lut_addr"))
        last_row = pick(last_rows, 1, "last_row")
        part_end = pick(part_ends, 1, "part_end")
        last_col = pick(last_cols, 1, "last_col")
        last_layer = equals_const(layer, n - 1)
        neuron_done = self.busy & last_row

        # Neuron outputs into their layer's memory; the class from the last layer's.
        for k, y in enumerate(y_mems):
            wr = y.write_port()
            m.d.comb += [wr.en.eq(neuron_done & equals_const(layer, k)),
                         wr.addr.eq(col[:self.col_bits(k)]), wr.data.eq(lut_rd.data)]
        with m.If(neuron_done & last_layer):
            # Strictly greater: an equal later output keeps the earlier index.
            with m.If(~col.any() | (lut_rd.data > best)):
                m.d.sync += [best.eq(lut_rd.data),
                             self.class_index.eq(col[:len(self.class_index)])]

        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), self.done.eq(0), layer.eq(0), row.eq(0), col.eq(0),
                         acc.eq(0), ampsum.eq(0)]
        with m.Elif(self.busy):
            m.d.sync += acc.eq(Mux(part_end, 0, acc_next))
            with m.If(last_row):
                m.d.sync += [ampsum.eq(0), row.eq(0)]
                with m.If(last_col):
                    m.d.sync += col.eq(0)
                    with m.If(last_layer):
                        m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                    with m.Else():
                        m.d.sync += layer.eq(layer + 1)
                with m.Else():
                    m.d.sync += col.eq(col + 1)
            with m.Else():
                m.d.sync += row.eq(row + 1)
                with m.If(part_end):
                    m.d.sync += ampsum.eq(ampsum_next)

        # -- host read of any layer's levels ---------------------------------------------------
        levels = []
        for k, y in enumerate(y_mems):
            rd = y.read_port(domain="comb")
            cb = self.col_bits(k)
            m.d.comb += rd.addr.eq(self.out_addr[:cb])
            ok = Const(1, 1)
            if len(self.out_addr) > cb:
                ok = ~self.out_addr[cb:].any()
            level = Signal(p["out_bits"], name=f"level_{k}")
            # Entries beyond the layer are never written: they read 0.
            m.d.comb += level.eq(Mux(ok, rd.data, 0))
            levels.append(level)
        expr = levels[-1]
        for k in range(n - 2, -1, -1):
            expr = Mux(equals_const(self.out_layer, k), levels[k], expr)
        m.d.comb += self.out_level.eq(expr)
        return m
