"""Energy, latency and area model: from a run's performance counters to joules, seconds, GOPS,
GOPS/W and, with ``rtl.synth`` gate counts, mm^2 and GOPS/mm^2.

Every constant lives once, in :data:`ARRAY` (per technology) or :data:`PERIPHERY` (CMOS, shared
by all technologies), as a :class:`sim.hw.device.Param` with its seed and section, ``"derived:
..."`` and the formula, or ``"ASSUMPTION: ..."`` and the reason. Resistances come from
:func:`sim.hw.device.device`, never re-typed.

Reading of seed 001 sec. 5.1
----------------------------
"it costs 180 fJ to erase a NAND-SPIN device with eight MTJs, with average 0.3 ns for each MTJ,
and 840 fJ to program a NAND-SPIN device, with 5 ns for each bit." The two clauses are built
alike: an energy per *device* (the 8-MTJ strip) and a time per *MTJ / bit*. We read 840 fJ as
programming a whole device (its 8 bits): 105 fJ per programmed bit, 5 ns per bit. (The other
reading, 840 fJ per bit, makes a program 8x dearer; the often quoted "840 fJ program vs 4 fJ
read" compares the device figure with a one-bit read.) The erase of a strip takes 8 x 0.3 = 2.4 ns.

Micro-op cost model
-------------------
An issued micro-op acts on ``lanes`` = ``columns_active`` columns (default: every column of
every subarray of one mat, ``columns * subarrays_per_mat``: the counters are one controller's,
and one controller drives a mat in lock-step) and on ``units = lanes / columns`` subarrays
(their reduction / post-processing unit). Its energy is::

    lanes * (senses * E_sense + writes * E_write + lane_gates * activity * E_toggle)
    + units * (unit_writes * E_write + unit_gates * activity * E_toggle)

with the terms of :func:`op_costs` (which array access, how many gates toggle; every count a
:data:`PERIPHERY` entry) and the energies of :data:`ARRAY`. ``ERASE`` costs a strip per lane,
``PROGRAM`` a bit per lane: an upper bound, since only the 1-bits draw STT current. The costs
are those of ``rtl.core``: a sensed row of READ / AND_FU / AND2 / OR2 / MIN_STEP goes through
the column popcount into the accumulator; MIN_STEP and FS_STEP sense one row (w_b comes from
the weight buffer); the abs-diff write-back is its own WRITE_ROW / PROGRAM micro-op; REQUANT
writes the output SRAM, not the array. ``FA_STEP`` (route ``dima_binconv``) senses one row and
steps one FA/FS lane per column pair; its sum-bit write-back is its own WRITE_ROW, charged as a
full-row write (an upper bound, 2x the cells: it drives the even columns only, and the
counters do not say which source a WRITE_ROW wrote). Control instructions (NOP, HALT, LOOP,
ENDLOOP) cost no datapath
energy. The host's loads (``estimate(host=...)``: array commands, or the data-memory words
of the input image) cost the same energy as the micro-op (WRITE_ROW / ERASE / PROGRAM, MOVE)
per command, in the class "loading data". ``MOVE`` (rtl.core's on-chip data movement: a
data-memory word over the mat's bus into the transpose buffer) is charged once per mat
(:attr:`OpCost.mat_gates`), not per lane; the rows it builds are written by WRITE_ROW / PROGRAM
micro-ops, charged as array writes. Only dynamic energy is modelled
(MRAM has no standby leakage; periphery leakage is not modelled).

Latency is ``cycles / clock_mhz``. A device operation slower than the clock stalls the core:
the configuration's stall table (``AcceleratorConfig.stall_table``) gives the cycles each
operation takes, ceil(device time / clock period) of the times here
(:func:`device_cycles`), and the stall cycles are in ``cycles`` (and in ``stalls``, the
counter of their own). :attr:`Report.notes` lists the operations slower than one clock period
and says whether the table covers them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from rtl.config import AcceleratorConfig, check_config
from rtl.isa import (
    COUNTER_CYCLES, COUNTER_STALLS, N_COUNTERS, Opcode, counter_index, counter_names,
)
from rtl.routes import lanes_of
from sim.hw.device import TECHNOLOGIES, Param, device

__all__ = [
    "ARRAY", "ARRAY_LEAVES", "overridden", "PERIPHERY", "CLASSES", "OP_CLASS", "ARRAY_ONLY_OPS",
    "HOST_OPS", "HOST_DATA_WORDS",
    "DATA_WORD_BITS", "OpCost", "table",
    "op_costs",
    "op_energy_fj", "SPLIT_ROWS", "energy_split", "device_times_ns", "device_cycles",
    "periphery_area_mm2", "array_area_mm2", "Report", "estimate", "with_loading",
]

_S001 = "seed 001 sec. 5.1"
_READ_V = 0.1
_RV = ("ASSUMPTION: no seed gives a read bias; 0.1 V, a usual MTJ read voltage well below "
       "the switching voltage (read disturb)")


def _mean_path_ohm(technology: str) -> float:
    """Mean read-path resistance: access transistor + (R_P + R_AP) / 2 (sim.hw.device)."""
    d = device(technology)
    return d.access_ohm + (d.r_p_ohm + d.r_ap_ohm) / 2


def _cell_fj(technology: str, volts: float, ns: float, paths: int = 1) -> float:
    """V^2 / R * t in fJ over ``paths`` parallel mean cell paths."""
    return volts ** 2 * paths / _mean_path_ohm(technology) * ns * 1e-9 * 1e15


#: The assumed leaves of :data:`ARRAY` a sensitivity study may move (``_build_array(over)``):
#: ``(technology or "common", name)``; every other entry is a seed figure or derived from these.
ARRAY_LEAVES = (("common", "read_voltage_v"), ("stt", "write_voltage_v"), ("stt", "write_ns"),
                ("stt", "read_ns"), ("sot", "read_ns"), ("sot", "write_bit_fj"),
                ("sot", "write_ns"), ("imac", "read_ns"), ("imac", "write_bit_fj"),
                ("imac", "write_ns"))


def _build_array(over: Mapping | None = None) -> dict[str, dict[str, Param]]:
    """The :data:`ARRAY` table; ``over`` replaces the values of :data:`ARRAY_LEAVES` entries
    (``{(technology, name): value}``) and everything derived from them follows."""
    over = dict(over or {})
    bad = [k for k in over if k not in ARRAY_LEAVES]
    if bad:
        raise ValueError(f"over keys must be among {ARRAY_LEAVES}, not {bad[0]!r}")

    def o(tech, name, default):
        return float(over.get((tech, name), default))

    read_fj, read_ns = 4.0, 0.17
    erase_dev_fj, erase_ns_mtj, mtjs_dev = 180.0, 0.3, 8
    program_dev_fj, program_ns = 840.0, 5.0
    rv = o("common", "read_voltage_v", _READ_V)
    # The seed-001 read energy splits into the cell's conduction V^2/R t and the rest (sense
    # amplifier, bit line), which is CMOS at the same 45 nm node for every technology.
    sa_fj = read_fj - _cell_fj("nand_spin", rv, read_ns)
    erase_mtj_fj = erase_dev_fj / mtjs_dev
    program_bit_fj = program_dev_fj / mtjs_dev
    stt_v, stt_ns = o("stt", "write_voltage_v", 0.6), o("stt", "write_ns", 10.0)
    common = {
        "read_voltage_v": Param(rv, "V", _RV),
        "sense_remainder_fj": Param(sa_fj, "fJ", f"derived: {_S001} read 4.0 fJ minus the "
                                    "nand_spin cell term V^2/R_mean*t (sense amp + bit line)"),
    }

    def sensing(tech, seeded):
        t_rd = read_ns if seeded else o(tech, "read_ns", read_ns)
        cell = _cell_fj(tech, rv, t_rd)
        rd = (Param(read_fj, "fJ", f"{_S001}: 4.0 fJ for a read operation") if seeded else
              Param(sa_fj + cell, "fJ", "derived: sense_remainder_fj + read_voltage_v^2 / "
                    "R_mean * read_ns, R_mean = access + (R_P + R_AP)/2 from sim.hw.device"))
        return {
            "read_fj": rd,
            "read_ns": Param(t_rd, "ns", f"{_S001}: 0.17 ns for a read operation" if seeded
                             else f"ASSUMPTION: the seeds give no read time; {_S001} 0.17 ns"),
            "and_fu_fj": Param(rd.value, "fJ", "derived: = read_fj; seed 001 sec. 3.2, the AND "
                               "setting is the read setting with FU driven by the operand "
                               "(an upper bound: FU = 0 cuts the path)"),
            "sense2_fj": Param(sa_fj + _cell_fj(tech, rv, t_rd, paths=2), "fJ",
                               "derived: 2-row activation (seed 002 sec. 3.1), "
                               "sense_remainder_fj + 2 parallel cell paths V^2 * 2/R_mean * t"),
        }

    def area(cell_f2, f2_src, nm, nm_src):
        return {"cell_f2": Param(cell_f2, "F^2", f2_src),
                "feature_nm": Param(nm, "nm", nm_src)}

    f2_1t = ("seed 001 ref. [Rho et al., ISSCC 2017] '4Gb LPDDR2 STT-MRAM with compact 9F2 "
             "1T1MTJ cell', cited in seed 001 sec. 2.1 (1T1MTJ: area set by the transistor)")
    f2_2t = ("ASSUMPTION: 2T1R (seed 001 sec. 2.1: SOT-MRAM 'poor integration density because "
             "it contains two transistors'); twice the 9F^2 1T1MTJ cell, 18 F^2")
    nm45 = "ASSUMPTION: no node in the seed; the seed-001 45 nm PDK"
    sot_write = Param(o("sot", "write_bit_fj", erase_mtj_fj), "fJ",
                      "ASSUMPTION: seed 001 sec. 5.1 erase 180 fJ per 8-MTJ strip scaled to a "
                      "one-MTJ strip (same heavy metal, seed 001 Table 2, and current density: "
                      "energy ~ strip length) = 22.5 fJ per bit")
    sot_ns = Param(o("sot", "write_ns", mtjs_dev * erase_ns_mtj), "ns",
                   "ASSUMPTION: the seed-001 strip erase pulse (8 x 0.3 ns); the same current "
                   "density switches in the same time")
    return {
        "stt": {
            **common, **sensing("stt", False),
            "write_voltage_v": Param(stt_v, "V", "ASSUMPTION: seed 000 gives none; 0.6 V, below "
                                     "MgO breakdown (~1 V), ~75 uA through R_mean, a 40 nm "
                                     "STT critical current"),
            "write_ns": Param(stt_ns, "ns", "ASSUMPTION: seed 000 gives none; 10 ns, STT "
                              "incubation delay (seed 001 sec. 2.1: STT write latency is long)"),
            "write_bit_fj": Param(_cell_fj("stt", stt_v, stt_ns), "fJ", "derived: "
                                  "write_voltage_v^2 / R_mean * write_ns"),
            **area(9.0, f2_1t, 40.0, "seed 000 abstract (Results): 40 nm CMOS process"),
        },
        "nand_spin": {
            **common, **sensing("nand_spin", True),
            "erase_device_fj": Param(erase_dev_fj, "fJ", f"{_S001}: 180 fJ to erase a NAND-SPIN "
                                     "device with eight MTJs"),
            "erase_mtj_fj": Param(erase_mtj_fj, "fJ", "derived: erase_device_fj / 8; a strip "
                                  "of mtjs_per_strip MTJs costs mtjs_per_strip x this "
                                  "(ASSUMPTION: energy ~ strip length)"),
            "erase_ns_per_mtj": Param(erase_ns_mtj, "ns", f"{_S001}: average 0.3 ns for each "
                                      "MTJ (a strip: mtjs_per_strip x 0.3 ns)"),
            "program_device_fj": Param(program_dev_fj, "fJ", f"{_S001}: 840 fJ to program a "
                                       "NAND-SPIN device (read as the whole 8-bit device)"),
            "program_bit_fj": Param(program_bit_fj, "fJ", "derived: program_device_fj / 8 "
                                    "(see the module docstring for the reading)"),
            "program_ns": Param(program_ns, "ns", f"{_S001}: 5 ns for each bit"),
            "write_bit_fj": Param(erase_mtj_fj + program_bit_fj, "fJ", "derived: a write-back "
                                  "bit = erase_mtj_fj + program_bit_fj (its share of the strip "
                                  "erase, then the program)"),
            "write_ns": Param(program_ns, "ns", "derived: = program_ns (the erase is shared)"),
            **area(9.0 * (mtjs_dev + 2) / mtjs_dev,
                   "ASSUMPTION: seed 001 sec. 1 / 2.1, one transistor per MTJ plus the shared "
                   "PT/NT pair per 8-MTJ strip: 9F^2 x (8 + 2) / 8; between STT and SOT as in "
                   "seed 001 sec. 5.3 Table 3", 45.0, f"{_S001}: 45 nm CMOS PDK"),
        },
        "sot": {
            **common, **sensing("sot", False),
            "write_bit_fj": sot_write, "write_ns": sot_ns,
            **area(18.0, f2_2t, 45.0, nm45),
        },
        "imac": {
            **common, **sensing("imac", False),
            "write_bit_fj": Param(o("imac", "write_bit_fj", erase_mtj_fj), "fJ",
                                  "ASSUMPTION: seed 003 abstract silent; SOT-MRAM write as sot "
                                  "(22.5 fJ per bit)"),
            "write_ns": Param(o("imac", "write_ns", mtjs_dev * erase_ns_mtj), "ns",
                              "ASSUMPTION: seed 003 abstract silent; as sot"),
            **area(18.0, "ASSUMPTION: seed 003 abstract silent; SOT-MRAM 2T1R as sot, 18 F^2",
                   45.0, nm45),
        },
    }


#: THE per-technology table: technology -> name -> :class:`sim.hw.device.Param`.
ARRAY: dict[str, dict[str, Param]] = _build_array()

_G45 = "ASSUMPTION: textbook gate count per lane, "
@contextmanager
def overridden(array: Mapping | None = None, periphery: Mapping | None = None):
    """Within the ``with`` block, :data:`ARRAY` is rebuilt with ``array`` (``{(technology or
    "common", name): value}`` over :data:`ARRAY_LEAVES`, everything derived follows) and the
    :data:`PERIPHERY` entries named in ``periphery`` (``{name: value}``) have those values; both
    tables are restored afterwards (a sensitivity study: :mod:`sim.analysis.sensitivity`)."""
    bad = [k for k in (periphery or {}) if k not in PERIPHERY]
    if bad:
        raise ValueError(f"periphery keys must be among {', '.join(PERIPHERY)}, not {bad[0]!r}")
    new_array = _build_array(array)
    saved_a, saved_p = {k: dict(v) for k, v in ARRAY.items()}, dict(PERIPHERY)
    try:
        for tech, tab in new_array.items():
            ARRAY[tech].clear()
            ARRAY[tech].update(tab)
        for k, v in (periphery or {}).items():
            p = PERIPHERY[k]
            PERIPHERY[k] = Param(v, p.unit, p.source)
        yield
    finally:
        for tech, tab in saved_a.items():
            ARRAY[tech].clear()
            ARRAY[tech].update(tab)
        PERIPHERY.clear()
        PERIPHERY.update(saved_p)


#: CMOS periphery constants, shared by every technology (45 nm reference).
PERIPHERY: dict[str, Param] = {
    "gate_toggle_fj": Param(1.0, "fJ", "ASSUMPTION: 45 nm, 1.0 V; a gate output with fan-out 2 "
                            "and local wire ~2 fF, 1/2 C V^2 = 1 fJ per toggle"),
    "activity": Param(0.5, "", "ASSUMPTION: random data, a gate output toggles with p = 1/2"),
    "gate_area_um2": Param(1.064, "um^2", "ASSUMPTION: 45 nm 2-input gate (NanGate 45 nm open "
                           "cell library AND2_X1 ~1.06 um^2), for every non-storage cell"),
    "flop_area_um2": Param(4.522, "um^2", "ASSUMPTION: 45 nm flip-flop (NanGate 45 nm DFF_X1 "
                           "~4.5 um^2), for every flip-flop / latch cell"),
    "utilisation": Param(0.7, "", "ASSUMPTION: 70% placement density of standard cells"),
    "sense_gates": Param(2, "gates/lane", _G45 + "sense-mode mux + output latch"),
    "fa_fs_gates": Param(7, "gates/lane", _G45 + "full adder/subtractor (5) + latch + mux"),
    "fa_array_gates": Param(7, "gates/lane", _G45 + "jeit_fa full-adder tree, C - 1 nodes per "
                            "C lanes: a SUM and a CARRY cell (5) + carry latch + first mux"),
    "cmp_gates": Param(6, "gates/lane", _G45 + "two decided flags, XOR, AND-OR update"),
    "min_gates": Param(8, "gates/lane", _G45 + "cmp_gates + min-bit select mux + enable"),
    "counter_gates_per_bit": Param(3, "gates/bit", _G45 + "bit-counter: half adder (2) + flop, "
                                   "times bit_counter_bits"),
    "popcount_gates": Param(5, "gates/lane", _G45 + "a popcount tree over C inputs holds ~C "
                            "full adders (5 gates each)"),
    "acc_gates_per_bit": Param(6, "gates/bit", "ASSUMPTION: accumulator adder (5) + flop per "
                               "acc_bits bit, per subarray"),
    "requant_mult_bits": Param(16, "bit", "ASSUMPTION: requantization multiplier of "
                               "2 x operand_bits = 16 bits against acc_bits"),
    "relu_negative_fraction": Param(0.5, "", "ASSUMPTION: half of the elements negative, each "
                                    "cleared in all operand_bits bits"),
    "move_gates": Param(2, "gates/lane", _G45 + "bus driver + receiver"),
}

#: Seed 001 sec. 5.3 Fig. 13 breakdown classes, plus ``control``.
CLASSES = ("loading data", "convolution", "data transfer", "comparison/pooling",
           "batch normalization", "quantization", "control")

#: Class of each opcode. An opcode has one class whatever layer it ran in; batch normalization
#: is folded into the per-channel requantization (golden integer pipeline), so it stays 0.
OP_CLASS: dict[Opcode, str] = {
    Opcode.NOP: "control", Opcode.HALT: "control", Opcode.LOOP: "control",
    Opcode.ENDLOOP: "control",
    Opcode.WRITE_ROW: "loading data", Opcode.ERASE: "loading data",
    Opcode.PROGRAM: "loading data",
    Opcode.READ: "convolution", Opcode.AND_FU: "convolution", Opcode.AND2: "convolution",
    Opcode.OR2: "convolution", Opcode.FA_STEP: "convolution", Opcode.FS_STEP: "convolution",
    Opcode.MIN_STEP: "convolution", Opcode.BITCOUNT: "convolution",
    Opcode.SHIFT_ACC: "convolution",
    Opcode.CMP_STEP: "comparison/pooling", Opcode.POOL: "comparison/pooling",
    Opcode.MOVE: "data transfer",
    Opcode.REQUANT: "quantization", Opcode.RELU: "quantization",
}

#: Array commands only some technologies have (rtl.mtj_array.MacroCmd).
ARRAY_ONLY_OPS: dict[Opcode, tuple[str, ...]] = {
    Opcode.ERASE: ("nand_spin",), Opcode.PROGRAM: ("nand_spin",),
    Opcode.WRITE_ROW: ("stt", "sot", "imac"),
}


@dataclass(frozen=True)
class OpCost:
    """What one issued micro-op does per lane, per unit (subarray) and once per mat (the data
    memory and its bus); energies in fJ."""
    lane_array_fj: float = 0.0
    lane_gates: float = 0.0
    unit_array_fj: float = 0.0
    unit_gates: float = 0.0
    mat_gates: float = 0.0


def table(technology: str) -> dict[str, Param]:
    """The :data:`ARRAY` entries of ``technology`` (one of :data:`TECHNOLOGIES`)."""
    if not isinstance(technology, str) or technology not in ARRAY:
        raise ValueError(f"technology must be one of {', '.join(TECHNOLOGIES)}, "
                         f"not {technology!r}")
    return ARRAY[technology]


def _v(name: str) -> float:
    return PERIPHERY[name].value


def op_costs(config: AcceleratorConfig, *, reads_only: bool = False) -> dict[Opcode, OpCost]:
    """The :class:`OpCost` of every opcode for ``config`` (control opcodes: all zero);
    ``reads_only``: with every array write energy (write, erase, program) taken as 0, the
    sensing part alone (:func:`energy_split`)."""
    a = {k: p.value for k, p in ARRAY[config.technology].items()}
    if reads_only:
        for key in ("write_bit_fj", "erase_mtj_fj", "program_bit_fj"):
            if key in a:
                a[key] = 0.0
    rd, wr, n = a["read_fj"], a["write_bit_fj"], config.operand_bits
    sense = _v("sense_gates")
    costs = {op: OpCost() for op in Opcode}
    # rtl.core: every sensed row goes through the column popcount into the accumulator
    # (READ / AND_FU / AND2 / OR2 / MIN_STEP, imm = ReduceOp); MIN_STEP and FS_STEP sense x_b
    # only (w_b comes from the weight buffer), MIN_STEP counts three rows; an FS_STEP DIFF's
    # write-back is its own WRITE_ROW / PROGRAM micro-op, counted as such.
    pop, acc = _v("popcount_gates"), _v("acc_gates_per_bit") * config.acc_bits
    costs.update({
        Opcode.READ: OpCost(rd, sense + pop, 0.0, acc),
        Opcode.AND_FU: OpCost(a["and_fu_fj"], sense + pop, 0.0, acc),
        Opcode.AND2: OpCost(a["sense2_fj"], sense + pop, 0.0, acc),
        Opcode.OR2: OpCost(a["sense2_fj"], sense + pop, 0.0, acc),
        Opcode.WRITE_ROW: OpCost(wr, sense),
        # one FA/FS lane per column pair (rtl.core, dima_binconv): half a lane per column
        Opcode.FA_STEP: OpCost(rd, sense + 0.5 * _v("fa_fs_gates")),
        Opcode.FS_STEP: OpCost(rd, sense + _v("fa_fs_gates")),
        Opcode.CMP_STEP: OpCost(2 * rd, 2 * sense + _v("cmp_gates")),
        Opcode.MIN_STEP: OpCost(rd, sense + _v("min_gates") + 3 * pop, 0.0, acc),
        Opcode.BITCOUNT: OpCost(rd, sense + _v("counter_gates_per_bit")
                                * config.bit_counter_bits),
        Opcode.SHIFT_ACC: OpCost(rd, sense + _v("popcount_gates"), 0.0,
                                 _v("acc_gates_per_bit") * config.acc_bits),
        # One PPU per mat (rtl.core): charged once per REQUANT, not per subarray. It writes
        # its word to the data memory, not to the array: the next layer's rows are built by
        # MOVE GATHERs and written by WRITE_ROW / PROGRAM micro-ops.
        Opcode.REQUANT: OpCost(mat_gates=_v("acc_gates_per_bit") * config.acc_bits
                               * _v("requant_mult_bits")),
        Opcode.RELU: OpCost(rd + _v("relu_negative_fraction") * n * wr, sense),
        Opcode.POOL: OpCost(2 * n * rd + n * wr, n * (2 * sense + _v("cmp_gates"))),
        # rtl.core MOVE: a GATHER carries one 32-bit data-memory word over the mat's bus into
        # a column of the transpose buffer, once per mat (CLEAR / SETPTR / ADDPTR are charged
        # the same: an upper bound).
        Opcode.MOVE: OpCost(mat_gates=_v("move_gates") * DATA_WORD_BITS),
    })
    if "fa_array" in lanes_of(config.routes):
        # jeit_fa (rtl.fa_array): every FS_STEP of a core with the array is charged its tree
        # step and a sum-register update like an accumulator's: 2n FS_STEPs per tile dot
        # against n + ceil(log2 C) tree steps (n >= log2 C), an upper bound.
        costs[Opcode.FS_STEP] = OpCost(rd, sense + _v("fa_fs_gates") + _v("fa_array_gates"),
                                       0.0, acc)
    if config.technology == "nand_spin":
        costs[Opcode.ERASE] = OpCost(a["erase_mtj_fj"] * config.mtjs_per_strip)
        costs[Opcode.PROGRAM] = OpCost(a["program_bit_fj"], sense)
    return costs


def op_energy_fj(config: AcceleratorConfig, op: Opcode, lanes: int) -> float:
    """Energy of one issued ``op`` over ``lanes`` active columns, in fJ (the module formula)."""
    c = op_costs(config)[Opcode(op)]
    units = lanes / config.columns
    toggle = _v("activity") * _v("gate_toggle_fj")
    return (lanes * (c.lane_array_fj + c.lane_gates * toggle)
            + units * (c.unit_array_fj + c.unit_gates * toggle) + c.mat_gates * toggle)


#: The rows of :func:`energy_split` and the source class of the constants each rests on.
SPLIT_ROWS = {
    "MRAM read": "seed (seed 001 sec. 5.1 read 4.0 fJ / 0.17 ns) and derived from it with the "
                 "read-voltage and device ASSUMPTIONs on the other technologies",
    "MRAM write": "seed (nand_spin: seed 001 sec. 5.1 erase / program) or derived from "
                  "ASSUMPTIONs (stt: write voltage and time; sot / imac: scaled seed-001 erase)",
    "CMOS logic": "ASSUMPTION: gate counts per lane x activity x energy per toggle (PERIPHERY)",
    "bus": "ASSUMPTION: MOVE, one data-memory word over the mat's bus (move_gates per bit x "
           "activity x energy per toggle), and the host's image words charged the same",
}


def energy_split(config: AcceleratorConfig, counters, *, columns_active: int,
                 host: Mapping | None = None) -> dict[str, float]:
    """The dynamic energy of :func:`estimate` (same arguments) split into ``MRAM read``,
    ``MRAM write`` (the array terms: sensing, and write / erase / program), ``CMOS logic``
    (the gate toggles of every micro-op but MOVE) and ``bus`` (MOVE and the host's data
    words), in J; the four sum to :attr:`Report.energy_j`."""
    c = _counters_list(counters)
    full, reads = op_costs(config), op_costs(config, reads_only=True)
    toggle = _v("activity") * _v("gate_toggle_fj")
    out = dict.fromkeys(SPLIT_ROWS, 0.0)

    def add(op, n, lanes):
        f, r = full[op], reads[op]
        units = lanes / config.columns
        arr = lanes * f.lane_array_fj + units * f.unit_array_fj
        rd = lanes * r.lane_array_fj + units * r.unit_array_fj
        gates = (lanes * f.lane_gates + units * f.unit_gates + f.mat_gates) * toggle
        out["MRAM read"] += n * rd * 1e-15
        out["MRAM write"] += n * (arr - rd) * 1e-15
        out["bus" if op is Opcode.MOVE else "CMOS logic"] += n * gates * 1e-15

    for op in Opcode:
        add(op, c[counter_index(op)], columns_active)
    for key, n in (host or {}).items():
        op = Opcode.MOVE if key == HOST_DATA_WORDS else Opcode[key.upper()]
        add(op, int(n), config.columns)
    return out


# ----------------------------------------------------------------------------------------------
# Area

_FLOP_MARKS = ("DFF", "DLATCH", "FF_", "SR_")
#: Blocks of which the core has one per mat (``rtl.core.Core``), not one per subarray.
PER_MAT_BLOCKS = ("controller", "ppu")


def _cell_area_um2(cell_type: str) -> float:
    flop = any(m in cell_type.upper() for m in _FLOP_MARKS)
    return _v("flop_area_um2") if flop else _v("gate_area_um2")


def array_area_mm2(config: AcceleratorConfig) -> float:
    """MTJ array area: capacity_bits x cell_f2 x feature^2 (decoders and drivers not counted)."""
    a = ARRAY[config.technology]
    f_um = a["feature_nm"].value * 1e-3
    return config.capacity_bits * a["cell_f2"].value * f_um ** 2 * 1e-6


def periphery_area_mm2(config: AcceleratorConfig, gates: Mapping) -> float:
    """Periphery area from gate counts per block.

    ``gates``: an ``rtl.synth`` report (``{"blocks": {name: {"cells": {type: n}}}}``) or
    ``{name: {type: n}}``. Every block counts once per subarray, ``controller`` and ``ppu``
    once per mat (``rtl.core``: one controller and one PPU per mat); ``mtj_array`` is skipped
    (the array is :func:`array_area_mm2`).
    Cells: flip-flops and latches at ``flop_area_um2``, the rest at ``gate_area_um2``, divided
    by ``utilisation``.
    """
    blocks = gates.get("blocks", gates) if isinstance(gates, Mapping) else None
    if not isinstance(blocks, Mapping) or not blocks:
        raise ValueError(f"gates must be an rtl.synth report or a dict block -> cell counts, "
                         f"not {gates!r}")
    total_um2 = 0.0
    for name, block in blocks.items():
        if name == "mtj_array":
            continue
        cells = block.get("cells", block) if isinstance(block, Mapping) else None
        if not isinstance(cells, Mapping):
            raise ValueError(f"gates[{name!r}] must map cell type -> count, not {block!r}")
        um2 = 0.0
        for cell_type, n in cells.items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise ValueError(f"gates[{name!r}][{cell_type!r}] must be an int >= 0, "
                                 f"not {n!r}")
            um2 += n * _cell_area_um2(cell_type)
        total_um2 += um2 * (config.mats if name in PER_MAT_BLOCKS else config.subarrays)
    return total_um2 / _v("utilisation") * 1e-6


# ----------------------------------------------------------------------------------------------
# Estimate

@dataclass
class Report:
    """Result of :func:`estimate` (SI units; energies are dynamic only).

    Members
    -------
    counts : dict
        Opcode name (lower case) -> issued count.
    host_counts : dict
        Host array commands (``write_row`` / ``erase`` / ``program``) -> count.
    energy_per_op_j, energy_per_class_j : dict
        Energy per opcode name and per :data:`CLASSES` entry.
    energy_j, latency_s, power_w : float
        Total energy, cycles / clock, energy / latency.
    gops, gops_per_w : float or None
        With ``ops``: ops / latency / 1e9 and ops / energy / 1e9 (= gops / power_w).
    array_mm2, periphery_mm2, area_mm2, gops_per_mm2 : float or None
        With ``gates``.
    notes : list of str
        Device operations slower than one clock period: the stalls of the stall table, or
        that the table does not cover them (latency optimistic).
    stalls : int
        Cycles the core held a micro-op for device timing (part of ``cycles``).
    """
    technology: str
    clock_mhz: float
    columns_active: int
    cycles: int
    stalls: int
    counts: dict
    energy_per_op_j: dict
    energy_per_class_j: dict
    energy_j: float
    latency_s: float
    power_w: float
    ops: int | None = None
    gops: float | None = None
    gops_per_w: float | None = None
    array_mm2: float | None = None
    periphery_mm2: float | None = None
    area_mm2: float | None = None
    gops_per_mm2: float | None = None
    notes: list = field(default_factory=list)
    host_counts: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-able dict of every member."""
        return asdict(self)


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int >= 0, not {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be an int >= 0, not {value!r}")
    return value


def _counters_list(counters) -> list[int]:
    names = counter_names()
    if isinstance(counters, Mapping):
        out = [0] * N_COUNTERS
        for key, value in counters.items():
            if isinstance(key, Opcode):
                idx = counter_index(key)
            elif isinstance(key, str) and key.lower() in names:
                idx = names.index(key.lower())
            else:
                raise ValueError(f"counters key must be an Opcode or one of {', '.join(names)}, "
                                 f"not {key!r}")
            out[idx] = _check_count(f"counters[{key!r}]", value)
        if "cycles" not in {k for k in counters if isinstance(k, str)}:
            raise ValueError("counters must include 'cycles' (the latency is cycles / clock)")
        return out
    if isinstance(counters, (str, bytes)) or not isinstance(counters, Sequence):
        raise TypeError(f"counters must be a list of {N_COUNTERS} ints or a dict, "
                        f"not {counters!r}")
    if len(counters) != N_COUNTERS:
        raise ValueError(f"counters must have {N_COUNTERS} entries (rtl.isa.counter_names), "
                         f"not {len(counters)}")
    return [_check_count(f"counters[{i}] ({names[i]})", v) for i, v in enumerate(counters)]


HOST_OPS = (Opcode.WRITE_ROW, Opcode.ERASE, Opcode.PROGRAM)
#: Bits of a data-memory word (``rtl.ppu.OUT_WORD_BITS``).
DATA_WORD_BITS = 32
#: ``estimate(host=...)`` key of the data-memory words the host writes (the input image),
#: each charged as a MOVE (one word over the mat's bus).
HOST_DATA_WORDS = "data_words"


def estimate(config: AcceleratorConfig, counters, *, ops: int | None = None,
             columns_active: int | None = None, gates: Mapping | None = None,
             host: Mapping | None = None, host_cycles: int = 0) -> Report:
    """Energy, latency, throughput and (with ``gates``) area of one run.

    Parameters
    ----------
    config : AcceleratorConfig
        The accelerator (technology, clock, sizes).
    counters : list of int or dict
        The controller's counters in index order (``rtl.isa.counter_names``; as
        ``sim.hw.isa_model.Run.counters``), or a dict opcode (``Opcode`` or lower-case name) ->
        count that includes ``"cycles"`` (``"stalls"`` optional).
    ops : int or None
        Operations the run computed (2 per L1 term ``|x - w|`` and its accumulation), > 0.
    columns_active : int or None
        Columns each datapath micro-op activates, in [1, columns * subarrays]; default
        ``columns * subarrays_per_mat`` (one mat in lock-step).
    gates : mapping or None
        Gate counts per block (``rtl.synth`` report) for :func:`periphery_area_mm2`.
    host : mapping or None
        What the host loaded: array commands (``"write_row"``, ``"erase"``, ``"program"`` ->
        count), each over one row of ``config.columns`` columns and charged as that micro-op,
        and ``"data_words"`` (:data:`HOST_DATA_WORDS`), data-memory words (the input image)
        each charged as a MOVE; reported under ``host_<name>`` in
        :attr:`Report.energy_per_op_j` and in the class "loading data".
    host_cycles : int
        Cycles of the host's port traffic (image words, programs), added to ``cycles`` for
        the latency.

    Raises
    ------
    TypeError, ValueError
        Not a config; counters of the wrong length, type or sign, or without cycles; ``ops``
        or ``columns_active`` out of range; a non-zero count of an array command the
        technology does not have (:data:`ARRAY_ONLY_OPS`); cycles = 0 with ops given.
    """
    check_config(config)
    table(config.technology)
    c = _counters_list(counters)
    max_lanes = config.columns * config.subarrays
    if columns_active is None:
        columns_active = config.columns * config.subarrays_per_mat
    if isinstance(columns_active, bool) or not isinstance(columns_active, int) \
            or not 1 <= columns_active <= max_lanes:
        raise ValueError(f"columns_active must be an int in [1, {max_lanes}] (columns x "
                         f"subarrays), not {columns_active!r}")
    if ops is not None and (isinstance(ops, bool) or not isinstance(ops, int) or ops <= 0):
        raise ValueError(f"ops must be a positive int (2 per L1 term), not {ops!r}")
    for op, techs in ARRAY_ONLY_OPS.items():
        if c[counter_index(op)] and config.technology not in techs:
            raise ValueError(
                f"counters[{op.name.lower()!r}] must be 0 for technology "
                f"{config.technology!r}, not {c[counter_index(op)]}: {op.name} is an array "
                f"command of {', '.join(techs)} only")

    counts, per_op, per_class = {}, {}, dict.fromkeys(CLASSES, 0.0)
    for op in Opcode:
        n = c[counter_index(op)]
        e = n * op_energy_fj(config, op, columns_active) * 1e-15
        counts[op.name.lower()] = n
        per_op[op.name.lower()] = e
        per_class[OP_CLASS[op]] += e
    host_counts = {}
    for key, n in (host or {}).items():
        names = {op.name.lower(): op for op in HOST_OPS}
        names[HOST_DATA_WORDS] = Opcode.MOVE
        if key not in names:
            raise ValueError(f"host keys must be among {', '.join(names)}, not {key!r}")
        n = _check_count(f"host[{key!r}]", n)
        op = names[key]
        if n and op in ARRAY_ONLY_OPS and config.technology not in ARRAY_ONLY_OPS[op]:
            raise ValueError(f"host[{key!r}] must be 0 for technology {config.technology!r}, "
                             f"not {n}")
        e = n * op_energy_fj(config, op, config.columns) * 1e-15
        host_counts[key] = n
        per_op[f"host_{key}"] = e
        per_class["loading data"] += e
    energy = sum(per_op.values())
    cycles = c[COUNTER_CYCLES] + _check_count("host_cycles", host_cycles)
    latency = cycles / (config.clock_mhz * 1e6)
    if ops is not None and cycles == 0:
        raise ValueError("counters['cycles'] must be > 0 when ops is given, not 0")
    power = energy / latency if latency else 0.0
    rep = Report(technology=config.technology, clock_mhz=config.clock_mhz,
                 columns_active=columns_active, cycles=cycles, stalls=c[COUNTER_STALLS],
                 counts=counts, energy_per_op_j=per_op, energy_per_class_j=per_class,
                 energy_j=energy, latency_s=latency, power_w=power, ops=ops,
                 notes=_slow_ops(config), host_counts=host_counts)
    if ops is not None:
        rep.gops = ops / latency / 1e9
        rep.gops_per_w = ops / energy / 1e9 if energy else math.inf
    if gates is not None:
        rep.array_mm2 = array_area_mm2(config)
        rep.periphery_mm2 = periphery_area_mm2(config, gates)
        rep.area_mm2 = rep.array_mm2 + rep.periphery_mm2
        if rep.gops is not None:
            rep.gops_per_mm2 = rep.gops / rep.area_mm2
    return rep


def with_loading(est: dict, op: str, energy_j: float) -> dict:
    """A copy of ``Report.to_dict()`` ``est`` with ``energy_j`` of host loading (streamed
    weights, tiled activations: their cycles are in the host cycles already) added to the
    energy, to the op ``op`` and the class "loading data", with power and GOPS/W updated."""
    est = dict(est)
    est["energy_per_op_j"] = {**est["energy_per_op_j"], op: energy_j}
    est["energy_per_class_j"] = {**est["energy_per_class_j"], "loading data":
                                 est["energy_per_class_j"].get("loading data", 0.0) + energy_j}
    est["energy_j"] += energy_j
    if est.get("latency_s"):
        est["power_w"] = est["energy_j"] / est["latency_s"]
    if est.get("ops"):
        est["gops_per_w"] = est["ops"] / est["energy_j"] / 1e9
    return est


def device_times_ns(config: AcceleratorConfig) -> dict[str, float]:
    """The device time of each operation of the stall table (``rtl.config.STALL_OPS``) that
    the technology has, in ns, from :data:`ARRAY`: ``read`` (``read_ns``), ``write``
    (``write_ns``; not on nand_spin), ``erase`` (``erase_ns_per_mtj`` x ``mtjs_per_strip``) and
    ``program`` (``program_ns``) on nand_spin."""
    a = ARRAY[config.technology]
    times = {"read": a["read_ns"].value}
    if config.technology == "nand_spin":
        times["erase"] = a["erase_ns_per_mtj"].value * config.mtjs_per_strip
        times["program"] = a["program_ns"].value
    else:
        times["write"] = a["write_ns"].value
    return times


def device_cycles(config: AcceleratorConfig) -> dict[str, int]:
    """The stall table the device times imply at the configuration's clock: operation ->
    ceil(device time / clock period) (:func:`device_times_ns`; 1 for an operation the
    technology does not have). The presets' ``stall_table`` must equal it (a test checks)."""
    period = config.clock_period_ns
    # A time that is a whole number of periods up to float rounding is that many cycles.
    need = {k: max(1, math.ceil(t / period - 1e-9)) for k, t in device_times_ns(config).items()}
    return {k: need.get(k, 1) for k in config.stalls}


def _slow_ops(config: AcceleratorConfig) -> list[str]:
    period = config.clock_period_ns
    table = config.stalls
    notes = []
    for k, t in device_times_ns(config).items():
        need = max(1, math.ceil(t / period - 1e-9))
        if need > table[k]:
            notes.append(f"{k} takes {t:g} ns > {table[k]} clock period(s) of {period:g} ns "
                         f"(stall_table[{k!r}] = {table[k]}, needs {need}): latency is "
                         "optimistic")
        elif t > period:
            notes.append(f"{k} takes {t:g} ns > clock period {period:g} ns: "
                         f"{table[k]} cycles, the core stalls {table[k] - 1} (stall_table)")
    return notes
