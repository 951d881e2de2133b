"""Behavioral MTJ array behind an MRAM macro interface: cells, sense amplifiers, write drivers.

The periphery talks to the array only through :class:`MacroSignature`. :class:`MtjArray` is a
behavioral model of it with each technology's write semantics and optional sensing faults; a
real MRAM macro that implements the same signature (same commands, same one-cycle latency) can
replace it without touching the periphery.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import enum, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from rtl.config import check_config

__all__ = [
    "MacroCmd", "MacroSignature", "MtjArray",
    "LFSR_BITS", "LFSR_TAPS", "LFSR_STEPS_PER_SENSE", "FAULT_THRESHOLD_BITS",
    "COLUMN_SEED_STRIDE", "rate_to_threshold", "column_seed",
]

#: Each column's fault LFSR: 32-bit Fibonacci, x^32 + x^7 + x^6 + x^2 + 1 (primitive); one step
#: shifts left and inserts the XOR of state bits 31, 29, 25, 24 as bit 0.
LFSR_BITS = 32
#: The taps of the LFSR (:data:`LFSR_BITS`).
LFSR_TAPS = (31, 29, 25, 24)
#: Steps per faulted sensing, so the compared 16 bits are all fresh.
LFSR_STEPS_PER_SENSE = 16
#: Flip threshold width: probability in units of 2**-16.
FAULT_THRESHOLD_BITS = 16
#: Column ``c`` is seeded with ``(seed ^ c * COLUMN_SEED_STRIDE) mod 2**32`` (0 becomes 1).
COLUMN_SEED_STRIDE = 0x9E3779B9


def rate_to_threshold(p):
    """Flip probability ``p`` in [0, 1) as the 16-bit threshold ``min(floor(p*65536 + 1/2),
    65535)``."""
    return min(int(p * (1 << FAULT_THRESHOLD_BITS) + 0.5), (1 << FAULT_THRESHOLD_BITS) - 1)


def column_seed(seed, column):
    """Initial LFSR state of ``column`` for ``seed``: ``seed ^ (column * COLUMN_SEED_STRIDE)``
    mod 2**32, or 1 instead of the all-zero lock-up state."""
    return ((seed ^ (column * COLUMN_SEED_STRIDE)) & ((1 << LFSR_BITS) - 1)) or 1


def _lfsr_fresh(state):
    """The :data:`LFSR_STEPS_PER_SENSE` new bits of ``state`` after as many steps.

    Every tap is at least ``LFSR_STEPS_PER_SENSE - 1`` bits above bit 0, so each new bit is the
    XOR of current bits only: new bit ``j`` (bit 0 the newest) is the XOR over taps ``t`` of
    ``state[t - 15 + j]``, i.e. one 16-bit slice per tap. The state after the steps is
    ``Cat(fresh, state[:16])``.
    """
    k = LFSR_STEPS_PER_SENSE
    assert min(LFSR_TAPS) >= k - 1
    fresh = state[LFSR_TAPS[0] - k + 1:LFSR_TAPS[0] + 1]
    for t in LFSR_TAPS[1:]:
        fresh = fresh ^ state[t - k + 1:t + 1]
    return fresh


class MacroCmd(enum.Enum, shape=3):
    """Command of one array cycle.

    Sense commands (result on ``sensed``): ``READ`` row A; ``AND_FU`` row A AND the FU operand
    (seed 001 Table 1); ``AND2`` / ``OR2`` rows A and B activated together (seed 002).
    Write commands (result on ``program_without_erase`` / ``error``): ``WRITE`` row A = data in
    the masked columns (``stt``, ``sot``, ``imac``); ``ERASE`` the strip holding row A to AP = 0
    in the masked columns and ``PROGRAM`` row A's masked 1-bits of data to P = 1
    (``nand_spin``). ``NOP`` does nothing.
    """
    NOP     = 0
    READ    = 1
    AND_FU  = 2
    AND2    = 3
    OR2     = 4
    WRITE   = 5
    ERASE   = 6
    PROGRAM = 7


class MacroSignature(wiring.Signature):
    """The MRAM macro interface, seen from the periphery (the initiator).

    One command per cycle, sampled at the rising clock edge; every output is a register
    updated at that edge (read latency 1 cycle: the result of a command issued in cycle ``t``
    is on the outputs in cycle ``t + 1``; a write is visible to a sense issued in ``t + 1``).
    ``sensed`` holds the result of the latest sense command, ``program_without_erase`` and
    ``error`` the response of the latest write command; ``NOP`` and the other kind of command
    leave them unchanged. Reset clears the outputs and reloads the fault defaults; the cells
    are non-volatile and keep their state (a command issued during reset still acts on them:
    drive ``NOP`` while in reset).

    Parameters
    ----------
    rows : int
        Rows of the array (positive); row addresses are ``ceil_log2(rows)`` bits wide.
    columns : int
        Columns of the array (positive).

    Members
    -------
    cmd : Out(MacroCmd)
        Command of this cycle.
    row_a : Out(ceil_log2(rows))
        Row of ``READ`` / ``AND_FU`` / ``WRITE`` / ``PROGRAM``, first row of ``AND2`` / ``OR2``,
        any row of the strip to ``ERASE``.
    row_b : Out(ceil_log2(rows))
        Second row of ``AND2`` / ``OR2``.
    data : Out(columns)
        Bits to ``WRITE`` / ``PROGRAM``, column ``c`` at bit ``c``.
    mask : Out(columns)
        Columns taking part in ``WRITE`` / ``ERASE`` / ``PROGRAM``.
    fu : Out(columns)
        Operand on the FU line of each column (``AND_FU``).
    sensed : In(columns)
        Sense amplifier outputs of the latest sense command (faults applied).
    program_without_erase : In(columns)
        Per column, the latest ``PROGRAM`` hit a cell already programmed since its strip's last
        erase (or never erased); 0 after any other write command.
    error : In(1)
        The latest write command was ignored: not supported by the technology, or row A is not
        below ``rows``.
    fault_en : Out(1)
        Sensing faults on: each sense command advances the LFSRs and flips the sensed bits
        whose random value is below the threshold. Off (0) by default.
    fault_load : Out(1)
        Load the LFSRs from ``fault_seed`` and the threshold from ``fault_threshold`` at this
        edge (a sense in the same cycle still uses the previous state).
    fault_seed : Out(32)
        Seed for ``fault_load``.
    fault_threshold : Out(16)
        Flip probability in units of 2**-16 for ``fault_load``.

    Raises
    ------
    TypeError, ValueError
        ``rows`` or ``columns`` is not a positive int.
    """

    def __init__(self, *, rows, columns):
        for name, value in (("rows", rows), ("columns", columns)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {value!r}")
            if value < 1:
                raise ValueError(f"{name} must be a positive int, not {value!r}")
        self._rows, self._columns = rows, columns
        addr = max(1, ceil_log2(rows))
        super().__init__({
            "cmd":                   Out(MacroCmd),
            "row_a":                 Out(addr),
            "row_b":                 Out(addr),
            "data":                  Out(columns),
            "mask":                  Out(columns),
            "fu":                    Out(columns),
            "sensed":                In(columns),
            "program_without_erase": In(columns),
            "error":                 In(1),
            "fault_en":              Out(1),
            "fault_load":            Out(1),
            "fault_seed":            Out(LFSR_BITS),
            "fault_threshold":       Out(FAULT_THRESHOLD_BITS),
        })

    @property
    def rows(self):
        return self._rows

    @property
    def columns(self):
        return self._columns

    def __eq__(self, other):
        return (isinstance(other, MacroSignature) and self.rows == other.rows
                and self.columns == other.columns)

    def __hash__(self):
        return hash((MacroSignature, self._rows, self._columns))

    def __repr__(self):
        return f"MacroSignature(rows={self._rows}, columns={self._columns})"


class MtjArray(wiring.Component):
    """Behavioral MTJ array implementing :class:`MacroSignature` (the macro's side).

    Write semantics, by ``config.technology``:

    * ``stt``, ``sot``, ``imac``: ``WRITE`` sets row A to ``data`` in the masked columns (SOT
      writes through its separate WWL/WBL path; the logical result is the same). ``ERASE`` and
      ``PROGRAM`` set ``error`` and change nothing.
    * ``nand_spin``: strip ``s`` is rows ``s*m .. s*m + m - 1`` (``m`` = ``mtjs_per_strip``).
      ``ERASE`` clears the strip holding row A in the masked columns (AP = logic 0, seed 001
      Table 1) and marks its cells erased. ``PROGRAM`` ORs ``data & mask`` into row A (AP -> P
      only; a 0 leaves the cell as it is), raises ``program_without_erase`` in every masked
      column whose cell was programmed since the strip's last erase (every cell counts as
      programmed at power-up), and marks the masked cells programmed. ``WRITE`` sets ``error``.

    A command whose row A is not below ``rows`` is ignored (``error`` for a write); a row
    address not below ``rows`` senses as 0. Sensing works the same for every technology.

    Faults (sensing only; ``config.write_fault_rate`` is not modelled): each column has a 32-bit
    LFSR (:data:`LFSR_TAPS`); with ``fault_en`` high a sense command advances all of them by 16
    steps and inverts column ``c``'s sensed bit when the low 16 bits of its new state are below
    the threshold. Reset values: LFSRs seeded with ``config.fault_seed``, threshold
    ``rate_to_threshold(config.read_fault_rate)``; ``fault_load`` reloads both. Column ``c``
    is seeded as column ``first_column + c`` (:func:`column_seed`), so the subarrays of a mat
    (``rtl.core.Core``) have the faults of one array as wide as the mat.

    Storage: one :class:`~amaranth.lib.memory.Memory` word per strip (``m * columns`` bits,
    ``rows / m`` words), read asynchronously and written back whole at the clock edge, so an
    erase of a whole strip is one write; ``nand_spin`` keeps the *programmed* marks in a second
    memory of the same shape (power-up value all 1). Memories are not reset.

    Parameters
    ----------
    config : AcceleratorConfig
        ``rows``, ``columns``, ``technology``, ``mtjs_per_strip``, ``fault_seed``,
        ``read_fault_rate``.
    first_column : int
        Mat column of this array's column 0, for the fault seeds. Default 0.
    faults : bool
        Build the fault injection (default). Without it the ``fault_*`` ports are ignored and
        nothing is ever flipped: a smaller, faster simulation for fault-free runs.

    Members
    -------
    The flipped :class:`MacroSignature` of ``config.rows`` x ``config.columns``.

    Raises
    ------
    TypeError
        ``config`` is not an :class:`~rtl.config.AcceleratorConfig`.
    ValueError
        ``first_column`` is not a non-negative int.
    """

    def __init__(self, *, config, first_column=0, faults=True):
        self._config = check_config(config)
        if isinstance(first_column, bool) or not isinstance(first_column, int) \
                or first_column < 0:
            raise ValueError(f"first_column must be a non-negative int, not {first_column!r}")
        if not isinstance(faults, bool):
            raise TypeError(f"faults must be a bool, not {faults!r}")
        self._first_column = first_column
        self._faults = faults
        super().__init__(MacroSignature(rows=config.rows, columns=config.columns).flip())

    @property
    def config(self):
        return self._config

    @staticmethod
    def _lane(vector, c):
        return vector[c * LFSR_BITS:(c + 1) * LFSR_BITS]

    def _fault_logic(self, m, cfg, n):
        """The per-column LFSRs; returns ``(fault, sensing)``: the flip mask of this cycle's
        sense and the signal the command decoder drives high on a sense command."""
        first = self._first_column
        lfsr = Signal(LFSR_BITS * n,
                      init=sum(column_seed(cfg.fault_seed, first + c) << (LFSR_BITS * c)
                               for c in range(n)))
        threshold = Signal(FAULT_THRESHOLD_BITS, init=rate_to_threshold(cfg.read_fault_rate))
        fault = Signal(n)
        sensing = Signal()
        lanes = [self._lane(lfsr, c) for c in range(n)]
        steps = LFSR_STEPS_PER_SENSE
        fresh = [Signal(steps, name=f"fresh_{c}") for c in range(n)]
        m.d.comb += [f.eq(_lfsr_fresh(s)) for f, s in zip(fresh, lanes, strict=True)]
        m.d.comb += fault.eq(Mux(self.fault_en, Cat(*[f < threshold for f in fresh]), 0))
        with m.If(self.fault_load):
            seeded = [self.fault_seed
                      ^ (((first + c) * COLUMN_SEED_STRIDE) & ((1 << LFSR_BITS) - 1))
                      for c in range(n)]
            m.d.sync += [
                threshold.eq(self.fault_threshold),
                lfsr.eq(Cat(*[Mux(s.any(), s, 1) for s in seeded])),
            ]
        with m.Elif(sensing & self.fault_en):
            m.d.sync += lfsr.eq(Cat(*[Cat(f, s[:-steps])
                                      for f, s in zip(fresh, lanes, strict=True)]))

        return fault, sensing

    def elaborate(self, platform):
        # Why a strip per memory word: a NAND-SPIN erase clears mtjs_per_strip rows at once;
        # with a strip in one word every command is one read-modify-write of one word, which
        # needs neither several write ports nor per-bit write enables.
        m = Module()
        cfg = self._config
        n, rows, per = cfg.columns, cfg.rows, cfg.mtjs_per_strip
        nand = cfg.technology == "nand_spin"
        slot_bits = ceil_log2(per)
        row_bits = len(self.row_a)

        m.submodules.cells = cells = Memory(shape=per * n, depth=rows // per, init=[])
        port_a = cells.read_port(domain="comb")
        port_b = cells.read_port(domain="comb")
        port_w = cells.write_port()

        def slots(word):
            return [word[k * n:(k + 1) * n] for k in range(per)]

        def select(word, addr, name):
            """Row ``addr`` of strip ``word``; 0 when ``addr`` is not below ``rows``."""
            out = Signal(n, name=name)
            valid = Const(1) if rows == 1 << row_bits else addr < rows
            if per == 1:
                m.d.comb += out.eq(Mux(valid, word, 0))
            else:
                with m.Switch(addr[:slot_bits]):
                    for k, w in enumerate(slots(word)):
                        with m.Case(k):
                            m.d.comb += out.eq(Mux(valid, w, 0))
            return out

        m.d.comb += [
            port_a.addr.eq(self.row_a[slot_bits:]),
            port_b.addr.eq(self.row_b[slot_bits:]),
            port_w.addr.eq(self.row_a[slot_bits:]),
        ]
        valid_a = Const(1) if rows == 1 << row_bits else self.row_a < rows
        bits_a = select(port_a.data, self.row_a, "bits_a")
        bits_b = select(port_b.data, self.row_b, "bits_b")
        # One-hot row A within its strip: which slot of the word a write changes.
        if per == 1:
            slot_a = Const(1, 1)
        else:
            slot_a = Signal(per)
            with m.Switch(self.row_a[:slot_bits]):
                for k in range(per):
                    with m.Case(k):
                        m.d.comb += slot_a.eq(1 << k)

        # -- faults: one LFSR per column, 16 steps per sensing ------------------------------
        if not self._faults:
            fault = Const(0, n)
            sensing = Signal()
        else:
            fault, sensing = self._fault_logic(m, cfg, n)
        # -- writes: read-modify-write of strip A's word -----------------------------------
        word = slots(port_a.data)
        keep = Signal(n)
        put = Signal(n)
        m.d.comb += [keep.eq(~self.mask), put.eq(self.data & self.mask)]
        if nand:
            m.submodules.marks = marks = Memory(shape=per * n, depth=rows // per,
                                                init=[(1 << (per * n)) - 1] * (rows // per))
            marks_r = marks.read_port(domain="comb")
            marks_w = marks.write_port()
            mark = slots(marks_r.data)
            m.d.comb += [marks_r.addr.eq(self.row_a[slot_bits:]),
                         marks_w.addr.eq(self.row_a[slot_bits:])]
            mark_a = select(marks_r.data, self.row_a, "mark_a")

        # -- outputs and write enables, by command -----------------------------------------
        supported = {MacroCmd.WRITE: not nand, MacroCmd.ERASE: nand, MacroCmd.PROGRAM: nand}
        sense = {
            MacroCmd.READ:   bits_a,
            MacroCmd.AND_FU: bits_a & self.fu,
            MacroCmd.AND2:   bits_a & bits_b,
            MacroCmd.OR2:    bits_a | bits_b,
        }
        # Every command value has its case (NOP holds), and each case first drives every
        # combinational output of the switch to 0: a signal assigned in only some cases would
        # give an incomplete Verilog case (Verilator CASEINCOMPLETE).
        idle = [sensing.eq(0), port_w.en.eq(0), port_w.data.eq(0)]
        if nand:
            idle += [marks_w.en.eq(0), marks_w.data.eq(0)]
        with m.Switch(self.cmd):
            with m.Case(MacroCmd.NOP):
                m.d.comb += idle
                m.d.sync += self.sensed.eq(self.sensed)
            for cmd, result in sense.items():
                with m.Case(cmd):
                    m.d.comb += idle
                    m.d.comb += sensing.eq(1)
                    m.d.sync += self.sensed.eq(result ^ fault)
            for cmd, ok in supported.items():
                with m.Case(cmd):
                    m.d.comb += idle
                    m.d.sync += self.sensed.eq(self.sensed)
                    if not ok:
                        m.d.sync += [self.error.eq(1), self.program_without_erase.eq(0)]
                        continue
                    m.d.sync += self.error.eq(~valid_a)
                    m.d.comb += port_w.en.eq(valid_a)
                    if cmd == MacroCmd.WRITE:
                        m.d.comb += port_w.data.eq(
                            Cat(*[Mux(slot_a[k], (w & keep) | put, w)
                                  for k, w in enumerate(word)]))
                        m.d.sync += self.program_without_erase.eq(0)
                    elif cmd == MacroCmd.ERASE:
                        m.d.comb += [
                            port_w.data.eq(Cat(*[w & keep for w in word])),
                            marks_w.en.eq(valid_a),
                            marks_w.data.eq(Cat(*[w & keep for w in mark])),
                        ]
                        m.d.sync += self.program_without_erase.eq(0)
                    else:
                        m.d.comb += [
                            port_w.data.eq(Cat(*[Mux(slot_a[k], w | put, w)
                                                 for k, w in enumerate(word)])),
                            marks_w.en.eq(valid_a),
                            marks_w.data.eq(Cat(*[Mux(slot_a[k], w | self.mask, w)
                                                  for k, w in enumerate(mark)])),
                        ]
                        m.d.sync += self.program_without_erase.eq(mark_a & self.mask)
        return m
