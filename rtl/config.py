"""One configuration object per accelerator, and the named presets of the four seed systems.

Every block in ``rtl/`` (and the compiler, the energy model and the reports in ``sim/``) reads
its parameters from an :class:`AcceleratorConfig`; nothing re-derives a width or a count on its
own. The object is frozen and validated in ``__post_init__``, so an invalid configuration can not
exist, also not one made with :func:`dataclasses.replace`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

from rtl.isa import Opcode
from rtl.routes import ROUTES

__all__ = [
    "TECHNOLOGIES",
    "DATAFLOWS",
    "POSTPROC_MODES",
    "CONV_MAPS",
    "STALL_OPS",
    "MAX_STALL_CYCLES",
    "ZERO_SKIP_DATAFLOWS",
    "AcceleratorConfig",
    "PRESETS",
    "preset",
    "preset_names",
    "check_config",
    "SIZE_FIELDS",
]

#: Cell technologies: STT-MRAM 1T1MTJ (seed 000), NAND-SPIN (seed 001), SOT-MRAM 2T1R (seed 002),
#: SOT-MRAM analog in-memory computing (seed 003).
TECHNOLOGIES = ("stt", "nand_spin", "sot", "imac")

#: The known routes (``rtl.routes``), any of which a configuration may choose as the route of
#: its adder layers (sum |x - w|):
#: ``abs_diff``     -- the seed-000 route, |x - w| through the FA/FS lanes;
#: ``write_free``   -- sum x + sum w - 2 sum min(x, w), min found MSB-first by a two-flag lane,
#:                     nothing intermediate is written back into the array;
#: ``and_bitcount`` -- AND + bit-count + shift (seed 001 eq. 1): how every preset maps multiply
#:                     layers; as the dataflow of a configuration it maps no adder layer (the
#:                     compiler says so), for networks with multiply layers only;
#: ``jeit_fa``      -- seed 000's full-adder array: |x - w| in the abs-diff lanes, the difference
#:                     bits summed bit-serially by an adder tree per subarray, nothing written
#:                     back (an alternative to ``abs_diff`` for ``jeit_stt``; zero skipping too).
#: A route registered later (``rtl.routes.register_route``) is accepted too: validation reads
#: the registry, not this snapshot.
DATAFLOWS = tuple(ROUTES)

#: The device operations of the stall table (``AcceleratorConfig.stall_table``) and the micro-ops
#: that perform each, by what the instruction set says they do to the array (``rtl.isa.OPERANDS``):
#: ``read`` senses rows (FA_STEP senses the row of its operand bits; its sum bit is written by a
#: WRITE_ROW from ``WriteSrc.FA_FS``), ``write`` writes a row (RELU / POOL their results),
#: ``erase`` clears a NAND-SPIN strip, ``program`` programs a NAND-SPIN row. A micro-op of none
#: (REQUANT, MOVE: no array operation) always takes one cycle.
STALL_OPS: dict[str, tuple] = {
    "read": (Opcode.READ, Opcode.AND_FU, Opcode.AND2, Opcode.OR2, Opcode.FS_STEP,
             Opcode.FA_STEP, Opcode.CMP_STEP, Opcode.MIN_STEP, Opcode.BITCOUNT,
             Opcode.SHIFT_ACC),
    "write": (Opcode.WRITE_ROW, Opcode.RELU, Opcode.POOL),
    "erase": (Opcode.ERASE,),
    "program": (Opcode.PROGRAM,),
}

#: Largest entry of a stall table: an operation of more cycles is no longer a stall of the
#: pipeline (and the core's hold counter stays small).
MAX_STALL_CYCLES = 1024

_MAX_ROWS = 1 << 16
_MAX_COLUMNS = 1 << 16
_MAX_OPERAND_BITS = 32
_MAX_ACC_BITS = 64


#: Most subarrays in one mat: ``rtl.core.Core``'s ``subarrays`` limit.
MAX_SUBARRAYS = 64


def max_subarrays_per_mat(columns: int) -> int:
    """Most subarrays of ``columns`` columns in one mat: at most :data:`MAX_SUBARRAYS`, and the
    mat row (``subarrays * columns`` columns) within the column addresses of an instruction's
    operand base (``rtl.isa.BASE_BITS`` = 12 bits: 4096 columns), beyond which the compiler
    cannot place data (32 subarrays of 128 columns, 8 of 512)."""
    from rtl.isa import BASE_BITS
    return max(1, min(MAX_SUBARRAYS, (1 << BASE_BITS) // columns))


def mat_bound_reason(columns: int) -> str:
    """Why :func:`max_subarrays_per_mat` is what it is, for messages."""
    from rtl.isa import BASE_BITS
    return (f"a mat row of subarrays x {columns} columns within the ISA's {BASE_BITS}-bit "
            f"column addresses, at most {1 << BASE_BITS} columns, and at most {MAX_SUBARRAYS} "
            f"subarrays")


#: The core's memory and table sizes, each a field of :class:`AcceleratorConfig`: name ->
#: ``(default, lo, hi, power of two, what it is)``. The defaults are the sizes the core had
#: before they were configurable (ASSUMPTION: chosen then to hold the bundled models with
#: room; no seed gives them), so every preset's hardware is unchanged. The upper bounds are
#: the 16-bit resolved operands and data-memory addresses (``rtl.isa.OPERAND_BITS``,
#: ``rtl.isa.OFFSET_BITS``), the requant table's ``rtl.ppu.MAX_CHANNELS`` and a kernel of
#: 11 x 11 = 121 terms (``patch_mask_bits``); the instruction word widens with them
#: (``rtl.isa.IsaFormat``).
SIZE_FIELDS: dict[str, tuple] = {
    "data_words": (4096, 64, 1 << 16, True,
                   "data-memory words of 32 bits (the layers' activations, two regions)"),
    "buffer_slots": (2048, 2, 1 << 16, True,
                     "weight-buffer words of a mat row (every layer's weight planes)"),
    "offset_entries": (1024, 2, 1 << 16, True,
                       "gather offset-table entries (the sum of every layer's fan-in)"),
    "patch_entries": (2048, 2, 1 << 16, True,
                      "gather patch-table entries (the sum of every layer's patches)"),
    "requant_channels": (256, 1, 4096, False,
                         "requantization-table entries (the sum of every layer's output "
                         "channels)"),
    "program_words": (1024, 2, 1 << 16, True, "instruction-memory words (one chunk program)"),
    "patch_mask_bits": (32, 8, 128, True,
                        "bits of a gather patch mask (the largest kernel area kh x kw)"),
}


def _check_size(name, value):
    """A :data:`SIZE_FIELDS` entry: ``TypeError`` / one-line ``ValueError`` naming it."""
    _, lo, hi, pow2, _ = SIZE_FIELDS[name]
    what = "a power of two" if pow2 else "an int"
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be {what} in [{lo}, {hi}], not {value!r}")
    if not lo <= value <= hi or (pow2 and value & (value - 1)):
        raise ValueError(f"{name} must be {what} in [{lo}, {hi}], not {value!r}")


#: The most mats a configuration may have. ``mats`` only scales the chip projection's area and
#: energy (the generated core is one mat), so the bound guards against a typo, not a hardware
#: limit. ASSUMPTION: 65,536 mats is far beyond any published MRAM accelerator (seed 001's 64 MB
#: chip is 1,024 mats of ``nand_spin``'s 16 subarrays of 256 x 128 bits).
MAX_MATS = 1 << 16


def _check_int(name, value, *, lo, hi=None, multiple_of=1):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if value < lo or (hi is not None and value > hi) or value % multiple_of:
        what = "an int"
        if multiple_of > 1:
            what = f"a positive multiple of {multiple_of}"
        elif lo == 1 and hi is None:
            what = "a positive int"
        rng = f" in [{lo}, {hi}]" if hi is not None else ""
        raise ValueError(f"{name} must be {what}{rng}, not {value!r}")


def _check_choice(name, value, choices):
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {', '.join(choices)}; not {value!r}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def _check_bool(name, value):
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {value!r}")


def _stall_table(value) -> tuple:
    """``stall_table`` as the tuple of ``(operation, cycles)`` pairs in :data:`STALL_OPS`
    order, operations not given at 1; one-line errors naming the entry."""
    if value is None:
        value = {}
    if isinstance(value, (tuple, list)):
        try:
            value = dict(value)
        except (TypeError, ValueError):
            raise TypeError(f"stall_table must be a dict operation -> cycles (operations "
                            f"{', '.join(STALL_OPS)}), not {value!r}") from None
    if not isinstance(value, dict):
        raise TypeError(f"stall_table must be a dict operation -> cycles (operations "
                        f"{', '.join(STALL_OPS)}), not {value!r}")
    for key, cycles in value.items():
        if key not in STALL_OPS:
            raise ValueError(f"stall_table entry {key!r} is not a device operation; the "
                             f"entries are {', '.join(STALL_OPS)}")
        if isinstance(cycles, bool) or not isinstance(cycles, int) \
                or not 1 <= cycles <= MAX_STALL_CYCLES:
            raise ValueError(f"stall_table[{key!r}] must be a positive int of cycles in [1, "
                             f"{MAX_STALL_CYCLES}] (ceil(device time / clock period)), not "
                             f"{cycles!r}")
    return tuple((k, value.get(k, 1)) for k in STALL_OPS)


def _class_split(value):
    """``class_split`` as a tuple ``(a, b)``, or None (:class:`AcceleratorConfig`)."""
    if value is None:
        return None
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 1024
                  for v in value) and sum(value) > 0)
    if not ok:
        raise ValueError(f"class_split must be None or two ints (class A, class B) in "
                         f"[0, 1024], not both 0 (seed 002: 7:2 is (7, 2)), not {value!r}")
    return tuple(value)


def _check_rate(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, not {value!r}")
    if not (0.0 <= value < 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1), not {value!r}")


#: Dataflows whose tile dots the core can skip when their operands are all zero
#: (``zero_skip``): on ``abs_diff`` and ``jeit_fa`` a zero tile's dot is ``sum w``, a
#: precomputed buffer slot (both compute ``sum |x - w|`` in the abs-diff lanes).
ZERO_SKIP_DATAFLOWS = ("abs_diff", "jeit_fa")

#: Post-processing modes (``AcceleratorConfig.postproc``): ``ppu`` -- requantization, ReLU and
#: pooling in the CMOS post-processing unit (``rtl.ppu``; ASSUMPTION: a CMOS unit as every
#: digital accelerator has, the default of every preset but ``nand_spin``); ``in_memory`` --
#: in the array on the per-column bit-counters (seed 001 sec. 4.2: quantization eq. 2, batch
#: norm eq. 3, ReLU from the MSB, max pooling by comparison; ``sim.compile.nand_postproc``),
#: needs the route
#: ``nand_inmem``; a layer it is not built for is a CompileError; ``mixed`` -- ``in_memory``
#: for every layer it is built for, the PPU for the others (quant layers, residual adds,
#: standalone pools, tiled activations: ``sim.compile.nand_postproc.NOT_BUILT``), needs the
#: route ``nand_inmem`` too.
POSTPROC_MODES = ("ppu", "in_memory", "mixed")

#: Mappings of a multiply convolution (``AcceleratorConfig.conv_map``): ``gather`` -- the
#: compiler's chunks, every patch gathered into the array (the default of every preset);
#: ``fig10`` -- seed 001's data mapping (Fig. 7 / Fig. 10: the input's bit-planes stored once
#: per band, the weight sliding over them, the counts cross-written and added in memory, then
#: requantized in the array; ``sim.compile.nand_conv.compile_stage``), needs the route
#: ``nand_inmem``.
CONV_MAPS = ("gather", "fig10")


@dataclass(frozen=True, kw_only=True)
class AcceleratorConfig:
    """Parameters of one MRAM processing-in-memory accelerator.

    Parameters
    ----------
    technology : str
        Cell technology, one of :data:`TECHNOLOGIES`.
    rows : int
        Rows (word lines) per subarray; a positive multiple of 8 in [8, 65536].
    columns : int
        Columns (bit lines, hence sense amplifiers and periphery lanes) per subarray; a positive
        multiple of 8 in [8, 65536].
    subarrays_per_mat : int
        Subarrays working in lock-step in one mat; positive.
    mats : int
        Mats in the accelerator; positive.
    operand_bits : int
        Width of an activation / weight element, in [1, 32].
    acc_bits : int
        Width of an accumulator, in [reduce_bits + operand_bits, 64].
    clock_mhz : float
        Clock frequency of the periphery, in (0, 10000].
    dataflow : str
        The route of adder layers, one of the known routes (:data:`DATAFLOWS`); it must be
        one of ``routes``.
    routes : tuple of str or None
        The routes the core is generated for (``rtl.routes``): the lanes and micro-ops of
        exactly these routes are in its hardware, and the compiler maps each layer onto one of
        them. Distinct known route names, at least one. Default (``None``): ``dataflow`` and
        ``and_bitcount`` (the multiply layers' route).
    mtjs_per_strip : int
        MTJs sharing one heavy-metal strip (erased together): a power of two in [2, 64] that
        divides ``rows`` for ``nand_spin``, exactly 1 for every other technology.
    zero_skip : bool
        Skip the operations of zero operands (seed 000 sparsity-aware computing): a tile dot
        whose operands are all zero is not computed (``rtl.isa.MoveOp.SKIPZ``,
        ``docs/dataflows.rst``). Only with a dataflow in :data:`ZERO_SKIP_DATAFLOWS`.
    postproc : str
        Where a layer's sums are requantized, ReLU'd and pooled (:data:`POSTPROC_MODES`):
        ``ppu`` (default), ``in_memory`` (seed 001 sec. 4.2, needs route ``nand_inmem``;
        ``sim.compile.nand_postproc.plan_stage``; quant layers and standalone pools not built yet:
        a CompileError) or ``mixed`` (``in_memory`` where it is built, the PPU for the other
        layers; needs route ``nand_inmem``).
    conv_map : str
        How a multiply convolution is mapped (:data:`CONV_MAPS`): ``gather`` (default) or
        ``fig10`` (seed 001 Fig. 7 / Fig. 10, needs route ``nand_inmem``;
        ``sim.compile.nand_conv.compile_stage``; stride 1, groups 1, <8:8>, requant outputs).
    stall_table : dict or None
        Clock cycles a micro-op of each device operation (:data:`STALL_OPS`: ``read``,
        ``write``, ``erase``, ``program``) occupies the issue stage: ceil(device time / clock
        period), a positive int up to :data:`MAX_STALL_CYCLES`; an entry of c cycles holds the
        controller c - 1 cycles (stalls, counted by ``rtl.isa.COUNTER_STALLS``). Missing
        entries are 1; default (``None``) all 1, no stall. Stored as a tuple of ``(operation,
        cycles)`` pairs in :data:`STALL_OPS` order (:attr:`stalls` reads it as a dict).
    read_fault_rate : float
        Default probability that one sensed bit flips (device variation), in [0, 1).
    write_fault_rate : float
        Default probability that one programmed bit fails to switch, in [0, 1).
    fault_seed : int
        Default seed of the fault-injection random stream, in [0, 2**32).
    data_words, buffer_slots, offset_entries, patch_entries, requant_channels, \
program_words, patch_mask_bits : int
        The core's memory and table sizes (:data:`SIZE_FIELDS`: defaults 4096, 2048, 1024,
        2048, 256, 1024, 32; powers of two up to 65536, channels in [1, 4096], mask bits in
        [8, 128]). The instruction word's operand bases follow from them
        (:attr:`isa_base_bits`).
    class_split : tuple of two ints or None
        Seed 002's split of the mat's subarrays into class A (the binary-weight convolver:
        ``bin_gconv2d`` layers) and class B (the bit-wise convolver: every other layer), as a
        ratio ``(a, b)`` of ints >= 0, not both 0 (``sim.compile.dima_map.class_subarrays`` turns it
        into subarrays of a mat: on a mat of one subarray both classes share it). Default
        (``None``): no split, every stage on the whole mat.

    Raises
    ------
    TypeError
        A field has the wrong type (the message names the field and quotes the value).
    ValueError
        A field is out of range, or two fields contradict each other.
    """

    technology: str
    rows: int
    columns: int
    subarrays_per_mat: int
    mats: int
    operand_bits: int = 8
    acc_bits: int = 32
    clock_mhz: float
    dataflow: str
    routes: tuple | None = None
    mtjs_per_strip: int = 1
    zero_skip: bool = False
    postproc: str = "ppu"
    conv_map: str = "gather"
    stall_table: tuple | dict | None = None
    read_fault_rate: float = 0.0
    write_fault_rate: float = 0.0
    fault_seed: int = 0
    data_words: int = SIZE_FIELDS["data_words"][0]
    buffer_slots: int = SIZE_FIELDS["buffer_slots"][0]
    offset_entries: int = SIZE_FIELDS["offset_entries"][0]
    patch_entries: int = SIZE_FIELDS["patch_entries"][0]
    requant_channels: int = SIZE_FIELDS["requant_channels"][0]
    program_words: int = SIZE_FIELDS["program_words"][0]
    patch_mask_bits: int = SIZE_FIELDS["patch_mask_bits"][0]
    class_split: tuple | None = None

    def __post_init__(self):
        _check_choice("technology", self.technology, TECHNOLOGIES)
        _check_int("rows", self.rows, lo=8, hi=_MAX_ROWS, multiple_of=8)
        _check_int("columns", self.columns, lo=8, hi=_MAX_COLUMNS, multiple_of=8)
        from rtl.isa import BASE_BITS
        if self.columns > 1 << BASE_BITS:
            raise ValueError(f"columns must be at most {1 << BASE_BITS} (the instruction set's "
                             f"{BASE_BITS}-bit column addresses), not {self.columns!r}")
        _check_int("subarrays_per_mat", self.subarrays_per_mat, lo=1)
        if self.subarrays_per_mat > max_subarrays_per_mat(self.columns):
            raise ValueError(f"subarrays_per_mat must be in [1, "
                             f"{max_subarrays_per_mat(self.columns)}] "
                             f"({mat_bound_reason(self.columns)}), not "
                             f"{self.subarrays_per_mat!r}")
        _check_int("mats", self.mats, lo=1, hi=MAX_MATS)
        _check_int("operand_bits", self.operand_bits, lo=1, hi=_MAX_OPERAND_BITS)
        _check_int("acc_bits", self.acc_bits, lo=1, hi=_MAX_ACC_BITS)
        need = self.reduce_bits + self.operand_bits
        if self.acc_bits < need:
            raise ValueError(
                f"acc_bits must be at least reduce_bits + operand_bits = {need} for "
                f"columns={self.columns} and operand_bits={self.operand_bits}, "
                f"not {self.acc_bits!r}")
        if isinstance(self.clock_mhz, bool) or not isinstance(self.clock_mhz, (int, float)):
            raise TypeError(f"clock_mhz must be a number, not {self.clock_mhz!r}")
        if not (math.isfinite(self.clock_mhz) and 0 < self.clock_mhz <= 10_000):
            raise ValueError(f"clock_mhz must be in (0, 10000], not {self.clock_mhz!r}")
        _check_choice("dataflow", self.dataflow, tuple(ROUTES))
        routes = self.routes
        if routes is None:
            routes = tuple(dict.fromkeys((self.dataflow, "and_bitcount")))
        if not isinstance(routes, (tuple, list)) or not routes:
            raise TypeError(f"routes must be a non-empty tuple of route names "
                            f"({', '.join(ROUTES)}), not {self.routes!r}")
        for r in routes:
            if not isinstance(r, str) or r not in ROUTES:
                raise ValueError(f"routes must name known routes ({', '.join(ROUTES)}), "
                                 f"not {r!r}")
        if len(set(routes)) != len(routes):
            raise ValueError(f"routes must not repeat a route, not {tuple(routes)!r}")
        if self.dataflow not in routes:
            raise ValueError(
                f"dataflow {self.dataflow!r} must be one of routes {tuple(routes)!r} (the core "
                f"has only the hardware of its routes); add it to routes, or use "
                f"with_dataflow({self.dataflow!r})")
        object.__setattr__(self, "routes", tuple(routes))
        if self.technology == "nand_spin":
            m = self.mtjs_per_strip
            _check_int("mtjs_per_strip", m, lo=2, hi=64)
            if m & (m - 1) or self.rows % m:
                raise ValueError(
                    f"mtjs_per_strip must be a power of two in [2, 64] that divides "
                    f"rows={self.rows} for technology 'nand_spin', not {m!r}")
        else:
            _check_int("mtjs_per_strip", self.mtjs_per_strip, lo=1)
            if self.mtjs_per_strip != 1:
                raise ValueError(
                    f"mtjs_per_strip must be 1 for technology {self.technology!r} (only "
                    f"'nand_spin' shares a strip), not {self.mtjs_per_strip!r}")
        _check_bool("zero_skip", self.zero_skip)
        if self.zero_skip and self.dataflow not in ZERO_SKIP_DATAFLOWS:
            raise ValueError(
                f"zero_skip=True needs dataflow {' or '.join(map(repr, ZERO_SKIP_DATAFLOWS))} "
                f"(the dataflows whose tile dots the core skips), not dataflow "
                f"{self.dataflow!r}; set zero_skip=False")
        _check_choice("postproc", self.postproc, POSTPROC_MODES)
        if self.postproc in ("in_memory", "mixed") and "nand_inmem" not in self.routes:
            raise ValueError(f"postproc={self.postproc!r} needs the route 'nand_inmem' (the "
                             f"per-column bit-counters) in routes, not {self.routes!r}; add it "
                             f"or set postproc='ppu'")
        _check_choice("conv_map", self.conv_map, CONV_MAPS)
        if self.conv_map == "fig10" and "nand_inmem" not in self.routes:
            raise ValueError(f"conv_map='fig10' needs the route 'nand_inmem' (the per-column "
                             f"bit-counters) in routes, not {self.routes!r}; add it or set "
                             f"conv_map='gather'")
        object.__setattr__(self, "stall_table", _stall_table(self.stall_table))
        _check_rate("read_fault_rate", self.read_fault_rate)
        _check_rate("write_fault_rate", self.write_fault_rate)
        _check_int("fault_seed", self.fault_seed, lo=0, hi=(1 << 32) - 1)
        for name in SIZE_FIELDS:
            _check_size(name, getattr(self, name))
        object.__setattr__(self, "class_split", _class_split(self.class_split))

    # -- derived, read-only ------------------------------------------------------------------

    @property
    def bit_counter_bits(self) -> int:
        """Width of a per-column bit-counter: enough to count ``rows`` ones."""
        return self.rows.bit_length()

    @property
    def reduce_bits(self) -> int:
        """Width of a population count across the ``columns`` lanes of a subarray."""
        return self.columns.bit_length()

    @property
    def subarrays(self) -> int:
        """Subarrays in the whole accelerator."""
        return self.subarrays_per_mat * self.mats

    @property
    def strips_per_column(self) -> int:
        """Heavy-metal strips (erase units) per column."""
        return self.rows // self.mtjs_per_strip

    @property
    def capacity_bits(self) -> int:
        """Storage of the whole accelerator in bits."""
        return self.rows * self.columns * self.subarrays

    @property
    def isa_base_bits(self) -> int:
        """Width of an instruction's operand bases (``rtl.isa.IsaFormat``): the smallest in
        [``rtl.isa.BASE_BITS`` = 12, 16] that holds every row, mat column, weight-buffer
        slot, requant channel, gather-table entry and data-memory address of this core (12
        for every preset but nand_spin, whose 16384 data words need 14: a 70-bit word)."""
        from rtl.isa import BASE_BITS
        top = max(self.rows, self.subarrays_per_mat * self.columns, self.buffer_slots,
                  self.requant_channels, self.offset_entries, self.patch_entries,
                  self.data_words) - 1
        return max(BASE_BITS, top.bit_length())

    @property
    def isa(self):
        """The instruction format of this core: ``rtl.isa.isa_format(isa_base_bits)``."""
        from rtl.isa import isa_format
        return isa_format(self.isa_base_bits)

    @property
    def kpos_bits(self) -> int:
        """Bits of an offset-table entry's ``kpos`` (which patch-mask bit it reads)."""
        return self.patch_mask_bits.bit_length() - 1

    @property
    def clock_period_ns(self) -> float:
        """Clock period in nanoseconds."""
        return 1000.0 / self.clock_mhz

    @property
    def stalls(self) -> dict:
        """The stall table as a dict: device operation -> cycles (every :data:`STALL_OPS`
        entry)."""
        return dict(self.stall_table)

    @property
    def op_cycles(self) -> dict:
        """Cycles each datapath micro-op takes in the issue stage, from the stall table:
        ``Opcode`` -> cycles, 1 for a micro-op of no device operation (:data:`STALL_OPS`)."""
        table = dict(self.stall_table)
        cycles = dict.fromkeys((op for op in Opcode), 1)
        for name, ops in STALL_OPS.items():
            for op in ops:
                cycles[op] = table[name]
        return cycles

    @property
    def has_stalls(self) -> bool:
        """Whether any micro-op takes more than one cycle (the core then has its hold logic)."""
        return any(c > 1 for _, c in self.stall_table)

    def with_dataflow(self, dataflow: str) -> AcceleratorConfig:
        """This configuration with adder layers on ``dataflow``, its route added to ``routes``
        if the core does not have it yet (so the core is generated with its lanes);
        ``zero_skip`` stays on only if ``dataflow`` can skip (:data:`ZERO_SKIP_DATAFLOWS`)."""
        routes = self.routes if dataflow in self.routes else self.routes + (dataflow,)
        # Zero skipping exists on the abs_diff and jeit_fa routes: another dataflow turns it off.
        skip = self.zero_skip and dataflow in ZERO_SKIP_DATAFLOWS
        return replace(self, dataflow=dataflow, routes=routes, zero_skip=skip)

    def as_dict(self) -> dict:
        """The fields (not the derived properties) as a plain dict (the stall table as a
        dict, so that it reads back from JSON equal)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["stall_table"] = self.stalls
        return out


# Where a seed is silent the preset states its assumption in a comment starting "ASSUMPTION".
PRESETS: dict[str, AcceleratorConfig] = {
    # Seed 000 (JEIT 2025, STT-MRAM 1T1MTJ AdderNet): 133 MHz, in-situ |x - w| through the
    # reconfigurable full adder, sparsity-aware zero skipping.
    "jeit_stt": AcceleratorConfig(
        technology="stt",
        # ASSUMPTION: the abstract gives no array organisation; we take the seed-001 subarray
        # (256 x 128, 4x4 subarrays per mat, 1024 mats = 64 MB) so presets compare like for like.
        rows=256,
        columns=128,
        subarrays_per_mat=16,
        mats=1024,
        # ASSUMPTION: 8-bit operands and 32-bit accumulation, the golden integer AdderNet.
        operand_bits=8,
        acc_bits=32,
        clock_mhz=133,
        # Adder layers: the seed's in-situ |x - w| summed by its parallel full-adder array
        # (route jeit_fa; measured against abs_diff's write-back and popcount on the bundled
        # Fashion-MNIST AdderNet, mat of 16, 20 images, zero skipping on, the FA flush
        # software-pipelined, partial groups too: 70,637 vs 109,261 cycles and 1.46 vs 13.55 uJ
        # per image, `python -m sim.analysis.route_compare -n 20 --zero-skip`). abs_diff stays
        # selectable (with_dataflow("abs_diff"): same core);
        # AND + bit-count for the multiply layers (first convolution, classifier) that every
        # preset maps the same way.
        dataflow="jeit_fa",
        routes=("abs_diff", "and_bitcount", "jeit_fa"),
        mtjs_per_strip=1,
        # Seed 000's sparsity-aware skipping, on as the paper has it. Measured with the flush
        # pipelined (partial groups too) on the bundled Fashion-MNIST AdderNet, 100 test
        # images, mat of 16 (`python -m sim.analysis.zero_skip -n 100`, i.e. make zero-skip):
        # 70,701 cycles and 1,462 nJ (core micro-ops) per image against 69,573 and 1,478 nJ
        # without, +1.6 % cycles for -1.1 % energy (78 of 1,752 tile dots skipped: few whole
        # tiles are zero, each dot pays its SKIPZ cycle and a skipped one still runs its SIGN
        # pass). Kept on: GOPS/W, the seed's headline figure, is the better for it.
        zero_skip=True,
        # cycles = ceil(t / 7.52 ns) at 133 MHz. write: ceil(10 ns / 7.52 ns) = 2, the STT
        # write time of sim.hw.energy (ASSUMPTION there: seed 000 gives none; 10 ns, the STT
        # incubation delay, seed 001 sec. 2.1); read: 0.17 ns (seed 001 sec. 5.1) -> 1; erase,
        # program: no such operation on STT -> 1.
        stall_table={"read": 1, "write": 2, "erase": 1, "program": 1},
    ),
    # Seed 001 (Sci China Inf Sci 2023, NAND-SPIN): subarray 256 rows x 128 columns, 4x4
    # subarrays per mat, 64 MB array -> 64 MB / (16 x 256 x 128 bit) = 1024 mats; 8 MTJs per
    # heavy-metal strip; bitwise convolution by AND + bit-count (eq. 1).
    "nand_spin": AcceleratorConfig(
        technology="nand_spin",
        rows=256,
        columns=128,
        subarrays_per_mat=16,
        mats=1024,
        operand_bits=8,
        acc_bits=32,
        # ASSUMPTION: the seed gives latencies (read 0.17 ns, program 5 ns per bit) but no
        # periphery clock; we use the seed-000 133 MHz so cycle counts convert on one scale.
        clock_mhz=133,
        # Seed 001 maps multiply layers by AND + bit-count (every preset does that for multiply
        # layers); it has no L1 route of its own. ASSUMPTION: adder layers take the write-free
        # route, which uses the same periphery (sense + FU operand, column popcount) plus the
        # two-flag min lanes, and writes nothing back into the array.
        dataflow="write_free",
        # nand_inmem: the seed's per-column bit-counters (seed 001 sec. 4.2, Fig. 6), the
        # hardware of its in-memory post-processing below.
        routes=("write_free", "and_bitcount", "nand_inmem"),
        mtjs_per_strip=8,
        zero_skip=False,
        # Seed 001 sec. 4.2: a layer's sums are quantized (eq. 2), batch-normed (eq. 3), ReLU'd
        # (the MSB) and max-pooled (comparison, Fig. 9) in the array on the bit-counters, the
        # preset's paper's mechanism. "mixed", not the strict "in_memory": the layers the
        # in-memory path is not built for (quant layers, residual adds, standalone pools, tiled
        # activations; sim.compile.nand_postproc.NOT_BUILT) fall back to the PPU, so the preset
        # still runs ResNets and the seed-001 evaluation's networks. The PPU for every layer
        # stays selectable (with_postproc("ppu"), sim.cli run --postproc ppu) and is measured
        # beside it in README.md (cheaper on the bundled AdderNet: the seed's way costs more
        # cycles and energy there).
        postproc="mixed",
        # The sizes the in-memory post-processing needs (SIZE_FIELDS' defaults otherwise).
        # ASSUMPTION: the smallest powers of two with which every bundled model this preset
        # runs (fashion_addernet, digits_addernet, fashion_mulcnn_w4i4/_w8i8) has every layer
        # built in memory post-processed there, so that the report's GOPS/W, which charges the
        # bit-counters' area, is also the in-memory run's energy (docs/assumptions.rst, "The
        # nand_spin preset's sizes"; propose_config gives these for each model).
        # data_words: a layer's raw sums wait in the data memory, after the two activation
        # regions, for the bit-counters' in-array quantization (seed 001 keeps its partial
        # sums in the array; this core's sums come from the periphery's popcount): the first
        # 28x28x8 layer of the Fashion-MNIST models puts its 6,272 sums at words 3,136 ..
        # 9,407, above 8,192. It also widens the operand bases to 14 bits (a 70-bit word).
        data_words=16384,
        # offset_entries: an in-memory layer's gather offsets stay in the table beside the
        # PPU's ones; with the three Fashion-MNIST layers in memory the logits layer's 288
        # entries end at entry 2,081, above 2,048.
        offset_entries=4096,
        # cycles = ceil(t / 7.52 ns) at 133 MHz, seed 001 sec. 5.1: read 0.17 ns -> 1; program
        # 5 ns per bit (a PROGRAM micro-op programs one bit of each column) -> 1; erase 0.3 ns
        # per MTJ x 8 MTJs = 2.4 ns -> 1; write: no such operation on NAND-SPIN -> 1. All
        # ones: no stall.
        stall_table={"read": 1, "write": 1, "erase": 1, "program": 1},
    ),
    # Seed 002 (DIMA, SOT-MRAM 2T1R): 256 rows x 512 columns per mat, 2x2 mats per bank, 8x8
    # banks per group, 16 groups = 512 Mb -> 4 x 64 x 16 = 4096 mats of one subarray each;
    # 2-row AND/OR and 3-column activation into the FA/FS unit (n-bit add/sub in 2n cycles).
    "dima_sot": AcceleratorConfig(
        technology="sot",
        rows=256,
        columns=512,
        subarrays_per_mat=1,
        mats=4096,
        operand_bits=8,
        acc_bits=32,
        # ASSUMPTION: the seed states no clock; the seed-000 133 MHz (see nand_spin).
        clock_mhz=133,
        dataflow="abs_diff",
        # dima_binconv: the binary-weight convolver (seed 002 sec. 3.2, Fig. 4): the FA/FS
        # lanes, bin_gconv2d layers (sim.compile.dima_map), the PPU's eq.-3 threshold stage.
        # dima_bitwise: the bit-wise convolver (seed 002 sec. 3.3, eq. 5): AND2 of weight and
        # input planes both in the array, for the multi-bit layers (inception, MLP); listed
        # before and_bitcount so that those layers take it.
        routes=("abs_diff", "dima_bitwise", "and_bitcount", "dima_binconv"),
        # Seed 002 sec. 4.4.2: "the ratio of computational sub-array (class A: class B) is
        # obtained 7:2" (sim.compile.dima_map.class_subarrays: on the preset's mat of one subarray
        # both classes share it; a mat of K >= 2 puts round(2K/9), at least 1, on class B).
        class_split=(7, 2),

        mtjs_per_strip=1,
        zero_skip=False,
        # cycles = ceil(t / 7.52 ns) at 133 MHz: read 0.17 ns (ASSUMPTION in sim.hw.energy: seed
        # 001 sec. 5.1) -> 1; write 2.4 ns, the SOT write of sim.hw.energy (ASSUMPTION there: the
        # seed-001 strip erase pulse, 8 x 0.3 ns) -> 1; erase, program: none on SOT -> 1.
        stall_table={"read": 1, "write": 1, "erase": 1, "program": 1},
    ),
    # Seed 003 (IMAC, SOT-MRAM analog): an analog MLP co-processor for the fully-connected
    # layers, binarized synapses; the digital periphery here runs the multiply layers as
    # AND + bit-count.
    "imac_sot": AcceleratorConfig(
        technology="imac",
        # ASSUMPTION: the abstract gives no array size; the seed-001 subarray and mat counts.
        rows=256,
        columns=128,
        subarrays_per_mat=16,
        mats=1024,
        operand_bits=8,
        acc_bits=32,
        # ASSUMPTION: no clock in the abstract; the seed-000 133 MHz (see nand_spin).
        clock_mhz=133,
        # ASSUMPTION: the digital periphery runs the adder layers write-free (see nand_spin).
        dataflow="write_free",
        routes=("write_free", "and_bitcount"),
        mtjs_per_strip=1,
        zero_skip=False,
        # cycles = ceil(t / 7.52 ns) at 133 MHz, the SOT times of dima_sot (ASSUMPTION in
        # sim.hw.energy: seed 003 abstract silent): read 0.17 ns -> 1, write 2.4 ns -> 1.
        stall_table={"read": 1, "write": 1, "erase": 1, "program": 1},
    ),
}


def preset_names() -> tuple[str, ...]:
    """Names of the known presets, in a stable order."""
    return tuple(PRESETS)


def preset(name: str) -> AcceleratorConfig:
    """The named preset configuration.

    Parameters
    ----------
    name : str
        One of :func:`preset_names`.

    Raises
    ------
    TypeError
        ``name`` is not a str.
    ValueError
        ``name`` is not a known preset; the message lists the known ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"preset name must be a str, not {name!r}")
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(
            f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}") from None


def check_config(config) -> AcceleratorConfig:
    """Return ``config`` if it is an :class:`AcceleratorConfig`; blocks call this first.

    Raises
    ------
    TypeError
        ``config`` is something else.
    """
    if not isinstance(config, AcceleratorConfig):
        raise TypeError(f"config must be an AcceleratorConfig, not {config!r}")
    return config
