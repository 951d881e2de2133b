"""The seed-000 parallel full-adder array: the abs-diff lanes' difference bits summed
bit-serially by a tree of reconfigurable full adders, one bit of the L1 norm per cycle (route
``jeit_fa``)."""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.config import check_config

__all__ = ["FaMode", "FaArrayOp", "FaArray", "fa_cell", "tree_depth"]


class FaMode(enum.Enum, shape=1):
    """The function a reconfigurable full-adder cell is mapped to (seed 000: the cell's
    resistance-state mapping selects it): ``SUM`` a ^ b ^ c, ``CARRY`` the majority."""
    SUM   = 0
    CARRY = 1


class FaArrayOp(enum.Enum, shape=2):
    """Operation of the array in one cycle (0 is the idle ``HOLD``; a flush in progress steps
    the array on its own, below). ``STEP``: add difference plane ``d`` at the next bit
    position; ``FIRST``: the same at bit 0 of a new sum (carries in 0, sums cleared)."""
    HOLD  = 0
    STEP  = 1
    FIRST = 2


def fa_cell(mode: FaMode, a, b, c):
    """One reconfigurable full-adder cell in ``mode`` on (vectors of) bits a, b, c."""
    if mode is FaMode.SUM:
        return a ^ b ^ c
    return (a & b) | (a & c) | (b & c)


def tree_depth(columns: int) -> int:
    """Adder levels of the tree over ``columns`` inputs: ``ceil(log2 columns)``, the flush
    steps after the last input bit."""
    return ceil_log2(columns)


class FaArray(wiring.Component):
    """A bit-serial full-adder tree per subarray over its ``columns`` difference bits.

    Each subarray's ``columns`` inputs are summed by a balanced tree of ``columns - 1`` nodes
    (pairs of adjacent terms per level, an odd term passed up; ``ceil(log2 columns)``
    levels, as ``rtl.column_reduce.popcount_tree`` pairs them). A node is two reconfigurable
    full-adder cells on the same three inputs (its two operand bits and its carry latch),
    one mapped to ``SUM`` (passed up the tree) and one to ``CARRY`` (written into the node's
    own latch): the sum bit and the carry-chain update of every node in one cycle.

    One step (``STEP`` / ``FIRST``) adds difference plane b, bit b of every ``|x_k - w_k|``,
    LSB first: the tree's root gives bit b of the subarray's sum, written into bit b of its
    ``sums`` register. Bits above ``n - 1`` come from the carries: after the step of the last
    plane with ``last`` set, the array steps ``ceil(log2 columns)`` more cycles on its own with
    zero inputs (the flush; ``busy`` meanwhile); then ``sums`` holds the whole L1 norm of the
    subarray's terms, ``n + ceil(log2 columns)`` bits (mod ``2**acc_bits``). An input step
    during a flush ends the flush (``FIRST`` starts a new sum).

    Why lane registers and not the array (seed 000's "single-cycle carry-chain update"): the
    sum bit and the carries of a step must be stored in the cycle they are computed, every
    cycle; an STT-MRAM write takes longer than a clock (10 ns at 133 MHz, the stall table of
    ``jeit_stt``), so a sum or carry held in cells would cost a write, and a stall, per bit.

    Parameters
    ----------
    config : AcceleratorConfig
        ``config.columns`` inputs per subarray; ``sums`` are ``config.acc_bits`` wide.
    groups : int
        Subarrays in the mat (trees), default 1.

    Members
    -------
    op : In(FaArrayOp)
        Operation of this cycle.
    last : In(1)
        With ``STEP`` / ``FIRST``: the plane is the last, flush after it.
    d : In(groups * columns)
        The difference plane (mat column ``k * columns + j`` is input j of tree k).
    sums : Out(groups * acc_bits)
        Subarray k's sum in bits ``k * acc_bits ..``. Reset 0.
    busy : Out(1)
        A flush is in progress.

    Raises
    ------
    TypeError, ValueError
        ``config`` is not an ``AcceleratorConfig``; ``groups`` not a positive int.
    """

    def __init__(self, *, config, groups=1):
        self._config = cfg = check_config(config)
        if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be a positive int, not {groups!r}")
        self._groups = groups
        super().__init__({
            "op":   In(FaArrayOp),
            "last": In(1),
            "d":    In(groups * cfg.columns),
            "sums": Out(groups * cfg.acc_bits),
            "busy": Out(1),
        })

    @property
    def config(self):
        return self._config

    @property
    def groups(self):
        return self._groups

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        cols, acc_bits = cfg.columns, cfg.acc_bits
        depth = tree_depth(cols)
        step_in, first = Signal(), Signal()
        with m.Switch(self.op):
            with m.Case(FaArrayOp.STEP):
                m.d.comb += [step_in.eq(1), first.eq(0)]
            with m.Case(FaArrayOp.FIRST):
                m.d.comb += [step_in.eq(1), first.eq(1)]
            with m.Default():
                m.d.comb += [step_in.eq(0), first.eq(0)]
        flush_left = Signal(range(depth + 1), name="flush_left")
        active = Signal()
        m.d.comb += [self.busy.eq(flush_left.any()), active.eq(step_in | self.busy)]
        # Inputs: the plane on an input step, zeros during a flush.
        d = Signal(len(self.d))
        m.d.comb += d.eq(Mux(step_in, self.d, 0))
        pos = Signal(acc_bits, init=1, name="pos")          # one-hot: the bit of this step
        pos_now = Signal(acc_bits)
        m.d.comb += pos_now.eq(Mux(first, Const(1, acc_bits), pos))
        for k in range(self._groups):
            terms = d[k * cols:(k + 1) * cols]
            level = 0
            while len(terms) > 1:
                pairs = len(terms) // 2
                latch = Signal(pairs, name=f"carry{k}_{level}")
                a, b = terms[0:2 * pairs:2], terms[1:2 * pairs:2]
                c = Mux(first, 0, latch)
                s = Signal(pairs, name=f"sum{k}_{level}")
                m.d.comb += s.eq(fa_cell(FaMode.SUM, a, b, c))
                with m.If(active):
                    m.d.sync += latch.eq(fa_cell(FaMode.CARRY, a, b, c))
                # an odd term is passed up unchanged, last in the next level
                terms = s if len(terms) % 2 == 0 else Cat(s, terms[-1])
                level += 1
            sl = self.sums[k * acc_bits:(k + 1) * acc_bits]
            with m.If(active):
                m.d.sync += sl.eq(Mux(first, 0, sl) | Mux(terms[0], pos_now, 0))
        with m.If(active):
            m.d.sync += pos.eq(pos_now << 1)
        with m.If(step_in):
            m.d.sync += flush_left.eq(Mux(self.last, depth, 0))
        with m.Elif(self.busy):
            m.d.sync += flush_left.eq(flush_left - 1)
        return m
