"""Sense amplifiers of one subarray: read, AND with an operand on FU, 2-row AND / OR."""

from amaranth.hdl import Module
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

from rtl.config import check_config

__all__ = ["SenseMode", "SenseAmp"]


class SenseMode(enum.Enum, shape=2):
    """What the reference of the sense amplifier selects.

    ``READ``: the cell of row A (1-row activation). ``AND_FU``: row A AND the operand driven on
    the FU line from the weight buffer (seed 001 Table 1, OUT = W AND D). ``AND2`` / ``OR2``:
    rows A and B activated together, the reference between the two-cell resistance levels
    choosing AND or OR (seed 002 2-row activation).
    """
    READ   = 0
    AND_FU = 1
    AND2   = 2
    OR2    = 3


class SenseAmp(wiring.Component):
    """One sense amplifier per column, with its output latch.

    The array (or its behavioral model) presents the logical bits of the activated rows: the
    complementary storage of NAND-SPIN (AP = 0) is undone in the array model, not here. Sensing
    takes one cycle: with ``en`` high the result of ``mode`` is latched into ``out`` at the clock
    edge; with ``en`` low ``out`` keeps its value, as the SPCSA latch does.

    Parameters
    ----------
    config : AcceleratorConfig
        ``config.columns`` sense amplifiers are built.

    Members
    -------
    en : In(1)
        Sense strobe.
    mode : In(SenseMode)
        Function of this sensing.
    row_a : In(columns)
        Bit of the first activated row in each column.
    row_b : In(columns)
        Bit of the second activated row (``AND2`` / ``OR2``).
    fu : In(columns)
        Operand on the FU line of each column (``AND_FU``).
    out : Out(columns)
        Latched sense result; resets to 0.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`.
    """

    def __init__(self, *, config):
        self._config = check_config(config)
        n = config.columns
        super().__init__({
            "en":    In(1),
            "mode":  In(SenseMode),
            "row_a": In(n),
            "row_b": In(n),
            "fu":    In(n),
            "out":   Out(n),
        })

    @property
    def config(self):
        return self._config

    def elaborate(self, platform):
        m = Module()
        with m.If(self.en):
            with m.Switch(self.mode):
                with m.Case(SenseMode.READ):
                    m.d.sync += self.out.eq(self.row_a)
                with m.Case(SenseMode.AND_FU):
                    m.d.sync += self.out.eq(self.row_a & self.fu)
                with m.Case(SenseMode.AND2):
                    m.d.sync += self.out.eq(self.row_a & self.row_b)
                with m.Case(SenseMode.OR2):
                    m.d.sync += self.out.eq(self.row_a | self.row_b)
        return m
