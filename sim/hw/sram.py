"""The core's SRAMs and register files: size, energy per access, leakage and area.

Which memories, and how large: :func:`core_memories`, THE one place that reads the sizes (from
``rtl.core.Core`` as instantiated for the configuration and mat: its depth properties and the
field widths of ``rtl.isa`` / ``rtl.ppu``). Every memory the core instantiates is listed; the
MTJ arrays' ``Memory`` objects (``rtl.mtj_array``) are the behavioral model of the MRAM macro,
costed by ``sim.hw.energy``, not SRAM.

Model: a calibrated fit to published 45 nm SRAM figures, chosen because it is the presets' node
(seed 001's 45 nm PDK; seed 000's 40 nm is close) and the figures are public and widely used
(:data:`PARAMS` has every constant with its source):

* read energy per 64-bit access E64 = a x (capacity in bytes)^b, least squares in log-log
  through the three 45 nm cache figures of Horowitz, ISSCC 2014 (8 KB 10 pJ, 32 KB 20 pJ, 1 MB
  100 pJ per 64-bit access; :data:`HOROWITZ_45NM`); b comes out near 1/2, the square-root
  growth of bit-line and word-line length with capacity. An access of ``w`` bits costs
  E64 x w / 64 (ASSUMPTION: energy proportional to the bits sensed); a write costs a read
  (ASSUMPTION). Below 8 KB the fit is extrapolated (stated on each such memory);
* a memory wider than a macro (``PARAMS['macro_max_bits']``, 128 bits, ASSUMPTION) is banks
  side by side, all read together (:func:`banks`): a read of the weight buffer's mat-row word
  costs the banks' reads of their slices (:func:`banked_read_pj`), (banks)^-b of one read of
  a monolithic array of the whole capacity (about 1/3.7 at 16 banks);
* area = bits x 6T cell area / array efficiency, x read ports beyond one (ASSUMPTION: extra
  read ports by replicating the array, the usual way to add read ports);
* leakage = bits x leakage per bit x read ports, the leakage per bit a calibrated fit (least
  squares through the origin, :func:`leakage_fit`) to OpenRAM's characterised FreePDK45
  macros (:data:`OPENRAM_FREEPDK45_LEAKAGE`: 2 to 128 Kbit, the FreePDK45 6T cell and its
  periphery, 4.4 nW per bit); the earlier figure derived from the logic library's leakage per
  um of OFF width over the bitcell's OFF devices (11.8 nW per bit, an upper bound: the
  library's devices are low-threshold) is kept as ``leakage_pw_per_bit_upper``, the report's
  sensitivity row.

The transpose buffer is a flip-flop register file in the RTL (bit-addressed by GATHER): its
area and clock energy are logic, counted by the synthesis (:mod:`sim.analysis.synth`); its accesses
are costed per bit as an SRAM of its size (ASSUMPTION, see :data:`PARAMS`).

Accesses (:func:`access_counts`) come from the controller's counters where they say enough
(REQUANT: one requant-table read; busy cycles: instruction fetches) and otherwise from the
compiled programs (:func:`program_events`: the write source of each WRITE_ROW / PROGRAM, the
MOVE kind, by loop multiplicity) and the compiler's chunks (words the PPU writes).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from dataclasses import dataclass

from rtl.config import AcceleratorConfig, check_config
from rtl.isa import (
    AGU_DATA_BITS, BASE_BITS, KPOS_BITS, OFFSET_BITS, MoveOp, Opcode, WriteSrc,
    decode,
)
from rtl.ppu import BIAS_BITS, MULT_BITS, OUT_WORD_BITS, SHIFT_BITS
from sim.hw.device import Param

__all__ = ["HOROWITZ_45NM", "OPENRAM_FREEPDK45_LEAKAGE", "PARAMS", "fit", "leakage_fit",
           "read_energy_pj", "write_energy_pj", "banks", "banked_read_pj", "area_um2",
           "leakage_w", "MemorySpec", "core_memories", "program_events", "access_counts",
           "memory_report", "BUFFER_PARAMS", "buffer_sizing", "sized_config"]

_H = ("literature ref. [M. Horowitz, 'Computing's energy problem (and what we can do about "
      "it)', ISSCC 2014], Fig. 1.1.9, 45 nm, 0.9 V: cache (64-bit access) ")
#: The published points: (capacity in bytes, pJ per 64-bit access, source).
HOROWITZ_45NM = ((8 * 1024, 10.0, _H + "8 KB: 10 pJ"),
                 (32 * 1024, 20.0, _H + "32 KB: 20 pJ"),
                 (1024 * 1024, 100.0, _H + "1 MB: 100 pJ"))

_OR = ("literature ref. [OpenRAM (github VLSIDA/OpenRAM), lib/freepdk45/lib/"
       "sram_1rw_{b}b_{w}w_1bank_freepdk45_TT_1p0V_25C.lib, commit {c}]: FreePDK45 macro "
       "{w} x {b}, TT 1.0 V 25 C, leakage_power when CSb (deselected) {mw} mW")
_C1, _C2 = "e6d6680da1f6", "bf7d846e5f99"
#: OpenRAM's characterised FreePDK45 SRAM macros (one bank, one read-write port):
#: (words, bits, deselected leakage in mW, source); the ``leakage_power`` of each Liberty file.
OPENRAM_FREEPDK45_LEAKAGE = tuple(
    (w, b, mw, _OR.format(w=w, b=b, c=c, mw=mw)) for w, b, mw, c in (
        (256, 8, 0.011168618, _C1), (256, 32, 0.040298101, _C1),
        (512, 32, 0.077704284, _C2), (1024, 32, 0.15279765, _C2),
        (1024, 64, 0.30184115, _C2), (2048, 32, 0.306155, _C2),
        (1024, 128, 0.56084648, _C1)))


def leakage_fit() -> float:
    """nW per bit: least squares through the origin of leakage against bits over
    :data:`OPENRAM_FREEPDK45_LEAKAGE` (sum(bits x leakage) / sum(bits^2))."""
    xs = [w * b for w, b, _, _ in OPENRAM_FREEPDK45_LEAKAGE]
    ys = [mw * 1e6 for _, _, mw, _ in OPENRAM_FREEPDK45_LEAKAGE]       # mW -> nW
    return sum(x * y for x, y in zip(xs, ys, strict=True)) / sum(x * x for x in xs)


def _leak_per_width() -> float:
    from sim.hw.activity import PARAMS as LOGIC
    return LOGIC["leak_nw_per_um_width"].value


#: Every constant of the model with its source.
PARAMS: dict[str, Param] = {
    "cell_um2": Param(0.346, "um^2", "literature ref. [K. Mistry et al., 'A 45nm logic "
                      "technology with high-k + metal gate transistors ...', IEDM 2007]: 0.346 "
                      "um^2 6T SRAM cell"),
    "array_efficiency": Param(0.6, "", "ASSUMPTION: cell area / macro area of a compiled SRAM "
                              "macro of a few to hundreds of KB (decoders, sense amplifiers, "
                              "I/O: about 40%); no public 45 nm macro datasheet at our sizes"),
    "fit_points": Param(len(HOROWITZ_45NM), "points", _H + "8 KB 10 pJ, 32 KB 20 pJ, 1 MB "
                        "100 pJ (HOROWITZ_45NM; E64 = a x bytes^b fitted through them)"),
    "bitcell_off_width_um": Param(0.430, "um", "literature ref. [OpenRAM, VLSIDA, "
                                  "technology/freepdk45/sp_lib/cell_1rw.sp: the FreePDK45 6T "
                                  "cell, pull-down NMOS 205 nm, pull-up PMOS 90 nm, access NMOS "
                                  "135 nm, L = 50 nm]: in standby (word line low, bit lines "
                                  "precharged high) three devices are OFF with the full supply "
                                  "across them: the pull-down of the side holding 1, the "
                                  "pull-up and the access device of the side holding 0 "
                                  "(205 + 90 + 135 nm)"),
    "leakage_pw_per_bit": Param(leakage_fit() * 1e3, "pW/bit", "calibrated: least squares "
                                "through the origin of leakage against bits over the seven "
                                "one-bank macros of OPENRAM_FREEPDK45_LEAKAGE (literature ref. "
                                "[OpenRAM, VLSIDA, lib/freepdk45/lib/: characterised "
                                "FreePDK45 SRAM macros, TT 1.0 V 25 C, leakage_power when CSb], "
                                "2 to 128 Kbit, 4.28 to 5.45 nW per bit each, the macro's "
                                "periphery included): a characterisation of the FreePDK45 6T "
                                "cell itself (its standard-threshold devices) in macros of the "
                                "core's sizes (was the upper bound leakage_pw_per_bit_upper)"),
    "leakage_pw_per_bit_upper": Param(_leak_per_width() * 0.430 * 1e3, "pW/bit", "derived: "
                                      "sim.hw.activity.PARAMS['leak_nw_per_um_width'] (NanGate "
                                      "FreePDK45 INV_X1 leakage per um of OFF width, the source "
                                      "of the logic leakage too) x bitcell_off_width_um. The "
                                      "library's devices are low-threshold (VTL), the bitcell's "
                                      "standard-threshold (VTG): an UPPER bound for the cell, "
                                      "kept as the report's sensitivity row (the headline at "
                                      "this leakage per bit), not in the headline"),
    "bits_scaling": Param("linear", "", "ASSUMPTION: an access of w bits costs w/64 of the "
                          "64-bit figure (bit-line and sense-amplifier energy per bit sensed)"),
    "write_vs_read": Param(1.0, "", "ASSUMPTION: a write costs a read (the source gives reads)"),
    "macro_max_bits": Param(128, "bits", "ASSUMPTION: SRAM compilers build macros up to about "
                            "128-144 bits wide; a wider memory (the weight buffer: a mat row "
                            "per word) is side-by-side banks of at most this width, all "
                            "accessed together, so a read costs the banks' reads, not one "
                            "read of a monolithic array of the whole capacity"),
    "extra_read_port": Param("replicate", "", "ASSUMPTION: each read port beyond one is a copy "
                             "of the array (area and leakage x read ports, energy per access "
                             "unchanged)"),
    "flop_file": Param("sram-fit", "", "ASSUMPTION: the transpose buffer (flip-flops) costs per "
                       "bit accessed what an SRAM of its size does; its area, clock and leakage "
                       "are logic (sim.analysis.synth)"),
}

#: The weight buffer costed at the size the compiled model needs (:func:`sized_config`).
BUFFER_PARAMS: dict[str, Param] = {
    "macro_min_words": Param(16, "words", "ASSUMPTION: SRAM compilers offer power-of-two depths "
                             "from 16 words; the weight buffer is costed at the slots the "
                             "compiled model fills rounded up to such a depth (the core's "
                             "buffer_slots is a power of two too: rtl.core)"),
}


def buffer_sizing(compiled) -> dict:
    """The weight-buffer slots the compiled model fills (``compiled.buffer``, all layers
    resident from slot 0), the depth a macro offers for them (a power of two, at least
    ``BUFFER_PARAMS['macro_min_words']``) and the configuration's ``buffer_slots``."""
    needed = int(len(compiled.buffer))
    low = int(BUFFER_PARAMS["macro_min_words"].value)
    costed = max(low, 1 << max(0, (needed - 1).bit_length()))
    return {"needed_slots": needed, "costed_slots": costed,
            "configured_slots": int(compiled.buffer_slots),
            "rule": f"the model's {needed} slots rounded up to a power of two >= {low} "
                    "(BUFFER_PARAMS['macro_min_words'], ASSUMPTION)"}


def sized_config(config: AcceleratorConfig, compiled) -> AcceleratorConfig:
    """``config`` with ``buffer_slots`` = :func:`buffer_sizing`'s costed depth: the memories
    costed at what the model needs (the RTL run keeps the configured buffer; only the
    addresses' width differs)."""
    return dataclasses.replace(config, buffer_slots=buffer_sizing(compiled)["costed_slots"])


def fit() -> tuple[float, float]:
    """``(a, b)`` of E64 = a x bytes^b pJ, least squares on log E64 vs log bytes through
    :data:`HOROWITZ_45NM`."""
    xs = [math.log(c) for c, _, _ in HOROWITZ_45NM]
    ys = [math.log(e) for _, e, _ in HOROWITZ_45NM]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = sxy / sum((x - mx) ** 2 for x in xs)
    return math.exp(my - b * mx), b


_A, _B = fit()


def _check_size(words, bits):
    for name, v in (("words", words), ("bits", bits)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, not {v!r}")


def read_energy_pj(words: int, bits: int, access_bits: int | None = None) -> float:
    """pJ of one read of ``access_bits`` (default a word of ``bits``) from a ``words`` x
    ``bits`` memory."""
    _check_size(words, bits)
    w = bits if access_bits is None else access_bits
    return _A * (words * bits / 8) ** _B * w / 64


def write_energy_pj(words: int, bits: int, access_bits: int | None = None) -> float:
    """pJ of one write: a read's (``PARAMS['write_vs_read']``)."""
    return PARAMS["write_vs_read"].value * read_energy_pj(words, bits, access_bits)


def banks(bits: int) -> tuple[int, int]:
    """``(banks, bits per bank)`` of a memory ``bits`` wide built from macros of at most
    ``PARAMS['macro_max_bits']`` bits (ASSUMPTION there)."""
    widest = max(1, int(PARAMS["macro_max_bits"].value))
    n = -(-bits // widest)
    return n, -(-bits // n)


def banked_read_pj(words: int, bits: int) -> float:
    """pJ of a read of a whole ``bits``-wide word of a ``words`` x ``bits`` memory built of
    :func:`banks`: each bank reads its slice."""
    n, per = banks(bits)
    return n * read_energy_pj(words, per)


def area_um2(words: int, bits: int, read_ports: int = 1) -> float:
    """Macro area: bits x cell / efficiency x max(1, read ports)."""
    _check_size(words, bits)
    return (words * bits * PARAMS["cell_um2"].value / PARAMS["array_efficiency"].value
            * max(1, read_ports))


def leakage_w(words: int, bits: int, read_ports: int = 1) -> float:
    """Standby leakage in W: bits x leakage per bit x max(1, read ports)."""
    _check_size(words, bits)
    return words * bits * PARAMS["leakage_pw_per_bit"].value * 1e-12 * max(1, read_ports)


@dataclass(frozen=True)
class MemorySpec:
    """One memory of the core: ``words`` x ``bits``, its ports, ``kind`` ``"sram"`` (a macro)
    or ``"flops"`` (a register file synthesised as logic), the RTL instance and what it
    holds."""
    name: str
    rtl: str
    words: int
    bits: int
    read_ports: int
    write_ports: int
    kind: str
    holds: str

    @property
    def kbytes(self) -> float:
        return self.words * self.bits / 8 / 1024


def core_memories(config: AcceleratorConfig, subarrays: int | None = None,
                  **core_kwargs) -> list[MemorySpec]:
    """Every SRAM and register file of the core for ``config`` and a mat of ``subarrays``
    (default the configuration's ``subarrays_per_mat``), sizes as the core instantiates them.

    The one function that reads memory sizes: today from ``rtl.core.Core``'s constructor
    parameters (``core_kwargs``, else its defaults) and the widths of ``rtl.isa`` and
    ``rtl.ppu``.
    """
    from rtl.core import Core
    check_config(config)
    k = config.subarrays_per_mat if subarrays is None else subarrays
    cfg = dataclasses.replace(config, subarrays_per_mat=k, mats=1)
    core = Core(config=cfg, subarrays=k, **core_kwargs)
    # Built only to read its sizes, never elaborated: no UnusedElaboratable warning for it
    # (Amaranth's own mark of a used elaboratable).
    core._MustUse__used = True
    w = core.width
    return [
        MemorySpec("weight buffer", "buffer", core.buffer_slots, w, 1, 1, "sram",
                   "weight rows and FU operands, one mat row per slot"),
        MemorySpec("data memory", "ppu.out", max(core.out_depth, 2), OUT_WORD_BITS, 2, 1,
                   "sram", "the image and every layer's activations (host read port + GATHER "
                   "read port)"),
        MemorySpec("requant table", "ppu.table", max(core.channels, 2),
                   MULT_BITS + SHIFT_BITS + BIAS_BITS, 1, 1, "sram",
                   "per-channel multiplier, shift and bias"),
        MemorySpec("offset table", "otab", core.offset_depth, OFFSET_BITS + KPOS_BITS, 1, 1,
                   "sram", "GATHER: offset and kernel position per patch term"),
        MemorySpec("patch table", "ptab", core.patch_depth, AGU_DATA_BITS, 1, 1, "sram",
                   "GATHER: base address and padding mask per patch"),
        MemorySpec("instruction memory", "ctrl.imem", core.imem_depth, cfg.isa.word_bits, 1, 1,
                   "sram", "the chunk program (64-bit words, wider where the configuration's "
                   "sizes widen the operand bases: rtl.isa.IsaFormat)"),
        MemorySpec("ENDLOOP flags", "ctrl.endmem", core.imem_depth, 1, 1, 1, "sram",
                   "one bit per instruction word: is it an ENDLOOP (read one word ahead)"),
        MemorySpec("transpose buffer", "tbuf", cfg.operand_bits, w, 1, 1, "flops",
                   "operand_bits bit-planes of a mat row, built by GATHER"),
    ] + ([MemorySpec("zero flags", "zero_flags", cfg.rows, 1, 1, 1, "sram",
                     "zero skipping (config.zero_skip): one flag per array row, set by a "
                     "TBUF_ZS write of an all-zero transpose buffer, tested by MOVE SKIPZ")]
         if cfg.zero_skip else [])


def program_events(words, base_bits: int = BASE_BITS) -> Counter:
    """Executions of each micro-op kind in a program, by loop multiplicity (the program is
    straight-line code with counted loops, ``rtl.isa``, of ``base_bits``-bit operand bases:
    ``config.isa_base_bits``): ``"<op>"`` per opcode, plus
    ``"write:<source>"`` for WRITE_ROW / PROGRAM by ``WriteSrc`` and ``"move:<kind>"`` by
    ``MoveOp``."""
    ev = Counter()
    mult = [1]
    for w in words:
        ins = decode(int(w), base_bits)
        m = mult[-1]
        ev[ins.op.name.lower()] += m
        if ins.op is Opcode.HALT:
            break
        if ins.op is Opcode.LOOP:
            mult.append(m * ins.count)
        elif ins.op is Opcode.ENDLOOP:
            mult.pop()
        elif ins.op in (Opcode.WRITE_ROW, Opcode.PROGRAM):
            ev[f"write:{WriteSrc(ins.imm).name.lower()}"] += m
        elif ins.op is Opcode.MOVE:
            ev[f"move:{MoveOp(ins.imm).name.lower()}"] += m
    return ev


_BUFFER_READERS = ("and_fu", "min_step", "fs_step", "fa_step", "write:buffer")


def access_counts(compiled, counters: dict, *, host_data_words: int = 0,
                  host_program_words: int = 0, host_reads: int = 0) -> dict:
    """Reads and writes of each memory of :func:`core_memories` for one run of every chunk of
    ``compiled`` (one image): ``{name: {"reads", "writes", "derived"}}``.

    ``counters``: the run's controller counters summed over the stages (``cycles``,
    ``stalls``, per opcode); the per-opcode sums of :func:`program_events` must equal them
    (ValueError otherwise). ``host_*``: the host port's data-memory writes (the image),
    instruction words loaded, data-memory reads (the logits).
    """
    ev = Counter()
    n_out = 0
    cfg = getattr(compiled, "config", None)
    base = BASE_BITS if cfg is None else cfg.isa_base_bits
    for stage in compiled.stages:
        for chunk in stage.chunks:
            ev.update(program_events(chunk.program, base))
            n_out += int(chunk.n_out)
    # With zero skipping (config.zero_skip) a taken MOVE SKIPZ drops a tile dot's micro-ops:
    # the counters are then at most the programs' static counts, and the per-source splits
    # below (write:<source>, move:<kind>) are static, an upper bound.
    skipping = bool(getattr(getattr(compiled, "config", None), "zero_skip", False))
    for op in Opcode:
        name = op.name.lower()
        if name in counters and op not in (Opcode.HALT,) and (
                counters[name] > ev[name] if skipping else counters[name] != ev[name]):
            raise ValueError(f"counters[{name!r}] = {counters[name]}, the programs execute "
                             f"{ev[name]}: the counters are not of these programs")
    fetches = int(counters["cycles"]) - int(counters.get("stalls", 0))
    gathers, clears = ev["move:gather"], ev["move:clear"]
    prog = "program words (sim.compile.compiler chunks, by loop multiplicity)"
    # opcode-level reads from the counters where the counters have them (exact, also when
    # zero skipping drops micro-ops), the per-source split from the programs
    ops = Counter({k: int(counters.get(k, ev[k])) for k in _BUFFER_READERS if ":" not in k})
    ops["write:buffer"] = ev["write:buffer"]
    upper = " (static: an upper bound under zero skipping)" if skipping else ""
    out = {
        "weight buffer": {"reads": sum(ops[k] for k in _BUFFER_READERS), "writes": 0,
                          "derived": "reads: AND_FU, MIN_STEP, FS_STEP, FA_STEP (their "
                                     "counters) and WRITE_ROW / PROGRAM from WriteSrc.BUFFER "
                                     f"(the {prog}{upper}); writes: loaded once per model, "
                                     "not per image"},
        "data memory": {"reads": gathers + host_reads, "writes": n_out + host_data_words,
                        "derived": f"reads: MOVE GATHERs ({prog}) + the host's logit reads; "
                                   "writes: the words the PPU writes (sum of the chunks' n_out) "
                                   "+ the image's words from the host"},
        "requant table": {"reads": int(counters.get("requant", 0)), "writes": 0,
                          "derived": "reads: the REQUANT counter; writes: loaded once per "
                                     "model"},
        "offset table": {"reads": gathers, "writes": 0,
                         "derived": f"reads: MOVE GATHERs ({prog}); writes: once per model"},
        "patch table": {"reads": gathers, "writes": 0,
                        "derived": f"reads: MOVE GATHERs ({prog}); writes: once per model"},
        "instruction memory": {"reads": fetches, "writes": host_program_words,
                               "derived": "reads: one fetch per controller cycle that is no "
                                          "stall (cycles - stalls counters); writes: the "
                                          "program words the host loaded"},
        "ENDLOOP flags": {"reads": fetches, "writes": host_program_words,
                          "derived": "as the instruction memory"},
        "transpose buffer": {"reads": ev["write:tbuf"], "writes": gathers + clears,
                             "derived": f"reads: WRITE_ROW / PROGRAM from WriteSrc.TBUF (one "
                                        f"plane); writes: MOVE GATHER (one column of "
                                        f"operand_bits bits) and CLEAR ({prog})"},
    }
    if skipping:
        writes = int(counters.get("write_row", 0)) + int(counters.get("program", 0))
        out["zero flags"] = {
            "reads": ev["move:skipz"], "writes": writes,
            "derived": f"reads: MOVE SKIPZ ({prog}; never inside a skipped dot); writes: every "
                       "WRITE_ROW / PROGRAM (their counters) sets or clears its row's flag"}
        out["transpose buffer"]["reads"] += ev["write:tbuf_zs"]
    return out


def memory_report(config: AcceleratorConfig, subarrays: int, accesses: dict,
                  latency_s: float, **core_kwargs) -> dict:
    """Per memory: size, accesses, energy per access, dynamic energy, leakage power and
    energy over ``latency_s``, area; and the totals. ``accesses`` as :func:`access_counts`."""
    small = HOROWITZ_45NM[0][0]
    rows = []
    for m in core_memories(config, subarrays, **core_kwargs):
        acc = accesses[m.name]
        if m.kind == "flops":           # a plane read is a word; a GATHER writes a column
            e_rd = read_energy_pj(m.words, m.bits)
            e_wr = write_energy_pj(m.words, m.bits, access_bits=m.words)
            area = leak = None
        else:
            e_rd = banked_read_pj(m.words, m.bits)
            e_wr = PARAMS["write_vs_read"].value * e_rd
            area = area_um2(m.words, m.bits, m.read_ports) * 1e-6
            leak = leakage_w(m.words, m.bits, m.read_ports)
        dyn = (acc["reads"] * e_rd + acc["writes"] * e_wr) * 1e-12
        rows.append({
            **dataclasses.asdict(m), "kbytes": m.kbytes,
            "reads": acc["reads"], "writes": acc["writes"], "accesses_derived": acc["derived"],
            "read_pj": e_rd, "write_pj": e_wr, "dynamic_j": dyn,
            "leakage_w": leak, "leakage_j": None if leak is None else leak * latency_s,
            "area_mm2": area,
            "banks": 1 if m.kind == "flops" else banks(m.bits)[0],
            "note": ("area, clock and leakage in the logic synthesis" if m.kind == "flops"
                     else "" if m.words * banks(m.bits)[1] / 8 >= small else
                     f"below the fit's smallest point ({small // 1024} KB): extrapolated"),
        })
    return {
        "memories": rows,
        "dynamic_j": sum(r["dynamic_j"] for r in rows),
        "leakage_j": sum(r["leakage_j"] or 0.0 for r in rows),
        "leakage_w": sum(r["leakage_w"] or 0.0 for r in rows),
        "area_mm2": sum(r["area_mm2"] or 0.0 for r in rows),
        "fit": {"a_pj": _A, "b": _B, "formula": "E64 = a x bytes^b pJ per 64-bit access, least "
                "squares through " + "; ".join(s for *_, s in HOROWITZ_45NM)},
        "params": {k: {"value": p.value, "unit": p.unit, "source": p.source}
                   for k, p in PARAMS.items()},
        "latency_s": latency_s,
    }
