"""Behavioural IMAC crossbar (seed 003) behind a macro interface: differential column currents.

The analog crossbar of binarized SOT-MRAM synapses is modelled in the fixed point of
``golden.imac``: each synapse is a pair of conductance codes (the I+ and I- devices, programmed
through a write port with whatever values device variation gave them), the inputs are signed
drive codes, and a column's output is the exact integer ``sum_r x[r] * (g_pos[r, c] -
g_neg[r, c])``. The periphery sees only :class:`ImacMacroSignature`, so a real analog macro
with an ADC-free current interface model could stand in for :class:`ImacCrossbar`.
"""

from amaranth.hdl import Const, Module, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

__all__ = ["ImacMacroSignature", "ImacCrossbar", "current_bits", "equals_const"]


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive int, not {value!r}")
    return value


def equals_const(value, constant):
    """``value == constant`` as a reduction: yosys trims the constant of an ``==`` (or makes a
    ``!value`` of it), which Verilator's WIDTH lint rejects."""
    return ~(value ^ Const(constant, len(value))).any()


def current_bits(*, rows, x_bits, g_bits):
    """Signed width that holds every column current of ``rows`` rows: ``|x| <= 2**(x_bits-1)``
    times ``|g_pos - g_neg| <= 2**g_bits - 1``, summed ``rows`` times, plus the sign."""
    worst = rows * (1 << (x_bits - 1)) * ((1 << g_bits) - 1)
    return worst.bit_length() + 1


class ImacMacroSignature(wiring.Signature):
    """The IMAC crossbar macro interface, seen from the periphery (the initiator).

    Programming: with ``we`` high at a rising edge, the synapse at (``w_row``, ``w_col``)
    takes the conductance codes ``w_g_pos`` (I+ device) and ``w_g_neg`` (I- device); an
    address outside the crossbar is ignored. Reading: with ``sample`` high at a rising edge,
    ``i_diff`` takes the column currents of the inputs ``x`` and the conductances *before* that
    edge (a synapse written at the same edge counts from the next sample); otherwise ``i_diff``
    holds. Reset clears ``i_diff``; conductances are non-volatile and keep their codes
    (power-up value 0: no device).

    Parameters
    ----------
    rows, columns : int
        Crossbar size (IMAC-Sim: 32 x 32).
    x_bits : int
        Signed input drive code width.
    g_bits : int
        Unsigned conductance code width.
    i_bits : int
        Signed column current width; at least :func:`current_bits` of the above.

    Members
    -------
    x : Out(ArrayLayout(signed(x_bits), rows))
        Input drive code of each row.
    sample : Out(1)
        Sample the column currents at this edge.
    we : Out(1)
        Program one synapse at this edge.
    w_row : Out(ceil_log2(rows))
    w_col : Out(ceil_log2(columns))
    w_g_pos, w_g_neg : Out(g_bits)
        Conductance codes of the I+ and I- device of the synapse being programmed.
    i_diff : In(ArrayLayout(signed(i_bits), columns))
        Differential column currents ``I+ - I-`` of the latest sample.

    Raises
    ------
    TypeError, ValueError
        A parameter is not a positive int, or ``i_bits`` is too narrow.
    """

    def __init__(self, *, rows, columns, x_bits, g_bits, i_bits):
        for name, value in (("rows", rows), ("columns", columns), ("x_bits", x_bits),
                            ("g_bits", g_bits), ("i_bits", i_bits)):
            _positive_int(name, value)
        need = current_bits(rows=rows, x_bits=x_bits, g_bits=g_bits)
        if i_bits < need:
            raise ValueError(f"i_bits must be at least {need} for {rows} rows of {x_bits}-bit "
                             f"inputs and {g_bits}-bit conductances, not {i_bits}")
        self._shape = (rows, columns, x_bits, g_bits, i_bits)
        super().__init__({
            "x":       Out(data.ArrayLayout(signed(x_bits), rows)),
            "sample":  Out(1),
            "we":      Out(1),
            "w_row":   Out(max(1, ceil_log2(rows))),
            "w_col":   Out(max(1, ceil_log2(columns))),
            "w_g_pos": Out(g_bits),
            "w_g_neg": Out(g_bits),
            "i_diff":  In(data.ArrayLayout(signed(i_bits), columns)),
        })

    rows = property(lambda self: self._shape[0])
    columns = property(lambda self: self._shape[1])
    x_bits = property(lambda self: self._shape[2])
    g_bits = property(lambda self: self._shape[3])
    i_bits = property(lambda self: self._shape[4])

    def __eq__(self, other):
        return isinstance(other, ImacMacroSignature) and self._shape == other._shape

    def __hash__(self):
        return hash((ImacMacroSignature, self._shape))

    def __repr__(self):
        r, c, x, g, i = self._shape
        return (f"ImacMacroSignature(rows={r}, columns={c}, x_bits={x}, g_bits={g}, "
                f"i_bits={i})")


class ImacCrossbar(wiring.Component):
    """Behavioural crossbar implementing :class:`ImacMacroSignature` (the macro's side).

    The arithmetic is ``golden.imac.crossbar_currents``; the widths are parameters (``rtl``
    does not import ``golden``: the tests pass ``golden.imac.FIXED``'s). Each device's code is
    a register; every column's sum is one combinational multiply-add tree sampled by
    ``sample``.

    Parameters
    ----------
    rows, columns, x_bits, g_bits, i_bits : int
        As :class:`ImacMacroSignature`.

    Members
    -------
    The flipped :class:`ImacMacroSignature`.
    """

    def __init__(self, *, rows, columns, x_bits, g_bits, i_bits):
        super().__init__(ImacMacroSignature(rows=rows, columns=columns, x_bits=x_bits,
                                            g_bits=g_bits, i_bits=i_bits).flip())

    def elaborate(self, platform):
        m = Module()
        sig = self.signature
        rows, cols, g_bits = sig.rows, sig.columns, sig.g_bits
        # The devices are non-volatile: reset does not touch them (reset_less).
        g_pos = [[Signal(g_bits, name=f"g_pos_{r}_{c}", reset_less=True) for c in range(cols)]
                 for r in range(rows)]
        g_neg = [[Signal(g_bits, name=f"g_neg_{r}_{c}", reset_less=True) for c in range(cols)]
                 for r in range(rows)]
        # Programming: one synapse per edge, addressed by row and column; an address outside
        # the crossbar matches no device and writes nothing.
        for r in range(rows):
            row_hit = self.we & equals_const(self.w_row, r)
            for c in range(cols):
                with m.If(row_hit & equals_const(self.w_col, c)):
                    m.d.sync += [g_pos[r][c].eq(self.w_g_pos), g_neg[r][c].eq(self.w_g_neg)]
        # Every product and partial sum is an i_bits-wide signal: the sum never exceeds it
        # (the signature checks i_bits), and operands of one width keep Verilator's WIDTH
        # lint quiet.
        wide = signed(sig.i_bits)
        with m.If(self.sample):
            for c in range(cols):
                total = None
                for r in range(rows):
                    term = Signal(wide, name=f"term_{r}_{c}")
                    m.d.comb += term.eq(self.x[r] * (g_pos[r][c] - g_neg[r][c]))
                    if total is None:
                        total = term
                    else:
                        acc = Signal(wide, name=f"acc_{r}_{c}")
                        m.d.comb += acc.eq(total + term)
                        total = acc
                m.d.sync += self.i_diff[c].eq(total)
        return m
