"""Seed 001's evaluation on its own networks: ``python -m sim.analysis.seed001_eval``
(``make seed001-eval``).

Seed 001 sec. 5.3 evaluates AlexNet, VGG-19 and ResNet-50 on a 64 MB chip with a 128-bit bus
(sec. 5.2) and prints Table 3 (throughput in FPS, capacity and area beside five other in-memory
accelerators) and Fig. 13 (the latency and energy breakdown of ResNet-50). This tool builds
those networks with random weights, compiles them for ``nand_spin`` and counts one image
(``sim.analysis.counting``: the cycle model's counters from the programs, validated against
the cycle model on small networks by ``tests/test_seed001_eval.py``), projects the 64 MB chip
(``sim.hw.chip.chip_model``) and writes the tables beside the seed's.

The networks (:data:`NETWORKS`): the layer shapes of ``sim.analysis.reference_nets`` (AlexNet,
ResNet-50; the quick ``lenet5`` and ``resnet20``) and VGG-19 (Simonyan and Zisserman 2015,
configuration E: 3x224x224, convolutions 64, 64, M, 128, 128, M, 256 x4, M, 512 x4, M,
512 x4, M, FC 4096, 4096, 1000), every convolution and FC a *multiply* layer (seed 001 is a
multiply CNN: AND and bit-count, eq. 1; the reference networks are AdderNets), each with the
``<W:I>`` bit widths (``golden.bitwidth``: ``w_bits``, ``in_bits``; weights drawn in the W-bit
range).

<W:I>: seed 001 does not print the setting of Table 3 or Fig. 13 (Fig. 12 sweeps <W:I> in a
figure whose values are not in the text; sec. 4.2: "quantization to 8-bit can achieve
comparable prediction accuracy"). ASSUMPTION: Table 3 and Fig. 13 are at <8:8>, the default
here; ``--wi`` takes others.

Sizes: the preset's own weight buffer and data memory (``buffer_slots``, ``data_words``), so
that a network's weights are streamed into each mat per image over the bus
(``sim.compile.weight_stream``) and its activations tiled through the chip-level store
(``sim.compile.act_tile``): the weight loading the seed's Fig. 11(b) says the bus width limits
is in the figures. The compiler's tables (offsets, patches, requant entries, program words)
are raised to what the network needs (:data:`TABLE_SIZES`, or the size options).

A network whose tables no core holds whole (VGG-19: the offset table holds every layer's
fan-in, 70,043 entries, the most a core has is 65,536) is compiled segment by segment
(:func:`segmented`: ``sim.compile.multi_mat`` with one mat, each compute layer with its pools a
program set of its own, tables reloaded per image when they do not fit together); its row says
so.

The chip (:func:`chip`): 64 MB of MRAM (seed 001 sec. 5.2 and Table 3's capacity) in mats of
the preset's size; ``nand_spin``'s mat is 16 subarrays of 256 x 128 bits (seed 001 sec. 5.2:
"4 x 4 subarrays with 256 rows and 128 columns in each mat") = 524,288 bits = 64 KiB, so
64 MiB / 64 KiB = 1,024 mats. Every mat runs the whole network on its own image; all share the
128-bit bus (``sim.hw.chip``: its images, programs, streamed weights and tiled activations per
image cross it), and FPS = min(mats / a mat's latency, bus rate / bits per image).

Breakdowns (:func:`breakdown`): energy by ``sim.hw.energy.CLASSES`` (the classes are Fig. 13's,
plus ``control``); latency by the same classes with the attribution rule of
:func:`latency_classes` (ASSUMPTION there). Batch normalization is folded into the
requantization (``sim.hw.energy.OP_CLASS``), so its row is 0 and the seed's 4.4 % / 5.1 % are in
our "quantization"; the table says so.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from dataclasses import dataclass

import numpy as np

from golden.model import Layer, make_model
from rtl.outputs import check_file, interruptible, json_text, write_files
from sim.util import UserError

__all__ = ["NETWORKS", "TABLE3", "FIG13", "seed_model", "evaluate", "chip", "packed_loads",
           "breakdown",
           "latency_classes", "report_lines", "main"]


class EvalError(UserError):
    """A bad argument of the seed 001 evaluation (the message names it)."""


# ---- the seed's figures, as printed ------------------------------------------------------------

#: Seed 001 Table 3, as printed: accelerator, technology, throughput (FPS), capacity (MB),
#: area (mm^2). The seed's own figures, quoted (not results of this project).
TABLE3 = (
    ("DRISA [36]", "DRAM", 51.7, 64, 117.2),
    ("PRIME [42]", "ReRAM", 9.4, 64, 78.2),
    ("STT-CiM [16]", "STT-MRAM", 45.6, 64, 57.7),
    ("MRIME [31]", "STT-MRAM", 52.3, 64, 55.6),
    ("IMCE [21]", "SOT-MRAM", 21.8, 64, 128.3),
    ("Proposed", "NAND-SPIN", 80.6, 64, 64.5),
)
TABLE3_SOURCE = "seed 001 Table 3"

#: Seed 001 sec. 5.3 (Fig. 13, ResNet-50), the percentages the text gives for each class of
#: sim.hw.energy.CLASSES (its names are the seed's).
FIG13 = {
    "latency": {"loading data": 38.4, "convolution": 33.9, "data transfer": 4.8,
                "comparison/pooling": 13.2, "batch normalization": 4.4, "quantization": 5.3},
    "energy": {"loading data": 32.6, "convolution": 35.5, "data transfer": 4.9,
               "comparison/pooling": 15.4, "batch normalization": 5.1, "quantization": 6.5},
}
FIG13_SOURCE = "seed 001 sec. 5.3 (Fig. 13, ResNet-50)"

#: The chip's MRAM capacity: seed 001 sec. 5.2 ("a 64 MB memory array") and Table 3.
CHIP_BYTES = 64 * 2 ** 20
#: The chip's bus: seed 001 sec. 5.2 ("a 128-bit bandwidth").
CHIP_BUS_BITS = 128
#: Fig. 11's sweeps, in FPS (the seed plots peak performance normalized to area): bus widths
#: (Fig. 11(b)) at 64 MB and capacities (Fig. 11(a)) on the 128-bit bus.
SWEEP_BUS_BITS = (32, 64, 128, 256, 512, 1024)
SWEEP_CAPACITY_MB = (16, 32, 64, 128, 256)


# ---- the networks ------------------------------------------------------------------------------

def _ref(name):
    def spec():
        from sim.analysis.reference_nets import specs
        return specs(name)
    return spec


#: name -> (description, builder of (input shape, layer specs) in reference_nets' notation,
#: in the seed's evaluation or a quick check).
NETWORKS = {
    "alexnet": ("AlexNet, 3x227x227", _ref("alexnet"), True),
    "vgg19": ("VGG-19, 3x224x224", _ref("vgg19"), True),
    "resnet50": ("ResNet-50, 3x224x224", _ref("resnet50"), True),
    "lenet5": ("LeNet-5, 1x32x32 (quick check, not in the seed)", _ref("lenet5"), False),
    "resnet20": ("ResNet-20, 3x32x32 (quick check, not in the seed)", _ref("resnet20_cifar"),
                 False),
}
SEED_NETWORKS = tuple(n for n, v in NETWORKS.items() if v[2])
QUICK_NETWORKS = ("lenet5",)


def _all_mul(layers):
    """The specs with every convolution and FC a multiply layer (residual blocks inside)."""
    out = []
    for s in layers:
        if s[0] == "res":
            out.append(("res", _all_mul(s[1]), _all_mul(s[2])))
        elif s[0] == "conv":
            out.append(tuple(s[:5]) + ("mul",))
        elif s[0] == "fc":
            out.append(tuple(s[:2]) + ("mul",))
        elif s[0] == "dw":
            raise EvalError("depthwise layers are adder layers here; no seed network has them")
        else:
            out.append(s)
    return out


def seed_model(name: str, w_bits: int = 8, in_bits: int = 8, seed: int = 0):
    """The random-weight multiply model of network ``name`` at ``<w_bits:in_bits>``: every
    multiply layer's int8 weights shifted right by ``8 - w_bits`` (so W-bit two's complement,
    uniform over the W-bit range) and its ``w_bits`` / ``in_bits`` set. The requantization is
    ``reference_nets``' (calibrated for 8-bit operands; the counts do not depend on it)."""
    from sim.analysis.reference_nets import build, count_only_budget
    if name not in NETWORKS:
        raise EvalError(f"network must be one of {', '.join(NETWORKS)}, not {name!r}")
    for what, v in (("w_bits", w_bits), ("in_bits", in_bits)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 8:
            raise EvalError(f"{what} must be an int in [1, 8], not {v!r}")
    shape, layers = NETWORKS[name][1]()
    with count_only_budget():
        base = build(f"seed001_{name}", seed, spec=(shape, _all_mul(layers)))
        out = []
        for ly in base.layers:
            if ly.kind in ("mul_conv2d", "mul_linear"):
                w = (ly.params["weight"].astype(np.int16) >> (8 - w_bits)).astype(np.int8)
                ly = Layer(ly.kind, ly.output, {**ly.params, "weight": w,
                                                "w_bits": np.int64(w_bits),
                                                "in_bits": np.int64(in_bits)},
                           ly.float_params)
            out.append(ly)
        return make_model(name=f"seed001_{name}_w{w_bits}i{in_bits}",
                          input_shape=base.input_shape, input_scale=base.input_scale,
                          class_names=base.class_names, layers=out)


# ---- sizes -------------------------------------------------------------------------------------

#: The core sizes every network here is compiled at (``rtl.config.SIZE_FIELDS``; the size
#: options override them). ASSUMPTION: one configuration for all networks, raised from the
#: preset's to what the compiler's refusals named on the seed's networks at <8:8> with weights
#: streamed and activations tiled (found by hand this session; ``propose_config`` would take
#: minutes per network): ``data_words`` 65,536 (VGG-19's second convolution: one band of one
#: output row needs 57,344 + 7,280 words), ``buffer_slots`` 8,192 (ResNet-50's standalone
#: layers in store mode need 4,736 slots at that data memory; weights beyond the buffer stream,
#: so the weight loading stays per image, as in seed 001 sec. 5.2: "the weight data were
#: transferred to subarrays through the bus and buffered in the buffer"), ``offset_entries``
#: 65,536 (ResNet-50: 58,849 entries; VGG-19 needs 70,043, beyond the most any core has),
#: ``requant_channels`` 1,024 (ResNet-50's shared add region: 592 asked at 512), ``patch_entries``
#: 16,384 (the patch-region rule: one unit's entries at most 1/16 of the table),
#: ``patch_mask_bits`` 128 (AlexNet's 11 x 11 kernel); ``program_words`` the preset's 1,024
#: (the longest chunk program: 397 words, AlexNet).
TABLE_SIZES = {"data_words": 65536, "buffer_slots": 8192, "offset_entries": 65536,
               "patch_entries": 16384, "requant_channels": 1024, "program_words": 1024,
               "patch_mask_bits": 128}

PRESET = "nand_spin"


def configuration(sizes: dict | None = None):
    """``nand_spin`` with :data:`TABLE_SIZES` and then ``sizes`` (field -> int)."""
    import dataclasses
    from rtl.config import preset
    return dataclasses.replace(preset(PRESET), **{**TABLE_SIZES, **(sizes or {})})


# ---- one network -------------------------------------------------------------------------------

def compile_and_count(model, config):
    """``(compiled, count)``: ``model`` compiled for one mat of ``config`` (weights streamed,
    activations tiled) and counted (``sim.analysis.counting.count_model``, with the energy
    estimate). Raises ``CompileError``."""
    from sim.analysis.counting import count_model
    from sim.analysis.reference_nets import count_only_budget
    from sim.compile.compiler import compile_model
    with count_only_budget():
        compiled = compile_model(model, config, stream_weights=True, tile_activations=True)
        return compiled, count_model(compiled, model)


@dataclass
class Part:
    """One program set a mat runs per image: the whole network (:func:`compile_and_count`) or
    one segment of it (:func:`segmented`). ``estimate``: ``sim.hw.energy.Report.to_dict()``
    with the streamed weights and activation moves (its ``cycles`` include every host and bus
    cycle); ``reload_bits`` / ``reload_j``: tables reloaded before the part (segments only;
    their cycles and energy are in ``estimate``'s ``cycles`` and ``energy_j``, not in its
    classes: ``sim.compile.multi_mat.count_partitioned``)."""
    compiled: object
    counters: dict
    estimate: dict
    data_words: float
    program_words: float
    reload_bits: int = 0
    reload_j: float = 0.0

    def bits(self) -> dict:
        """Bits the part moves over the bus per image, by kind (``sim.hw.chip``'s rule,
        :func:`sim.hw.chip.image_bus_bits`) and the tables reloaded before it."""
        from sim.hw.chip import image_bus_bits
        bits, _ = image_bus_bits(self.compiled.config, self.compiled, self.data_words,
                                 self.program_words)
        return {**bits, "tables reloaded": self.reload_bits}


def parts_of(compiled, res) -> list:
    """The one :class:`Part` of a whole-network count."""
    return [Part(compiled, res.counters, res.estimate, res.host["data_words"],
                 res.host["program_words"])]


def segmented(model, config) -> list:
    """:class:`Part` s of ``model`` compiled segment by segment for one mat
    (``sim.compile.multi_mat`` with M = 1: each compute layer with its pools is its own program
    set with its own tables, reloaded every image when the segments' do not fit together) and
    counted: for a network whose tables no core holds whole (VGG-19's offset table)."""
    from sim.analysis.reference_nets import count_only_budget
    from sim.compile import multi_mat as mm
    with count_only_budget():
        segs, compiled = mm.compile_partitioned(model, config, 1, stream_weights=True,
                                                tile_activations=True, counting_only=True)
        res = mm.count_partitioned(segs, compiled)
    out = []
    for row, seg in zip(compiled, res["segments"], strict=True):
        p = seg["mats"][0]
        rl = p["reload"] or {"bits": 0, "energy_j": 0.0}
        out.append(Part(row[0], p["counters"], p["estimate"], p["host"]["data_words"],
                        p["host"]["program_words"], rl["bits"], rl["energy_j"]))
    return out


def latency_classes(config, parts: list) -> dict:
    """Cycles of one image by ``sim.hw.energy.CLASSES``. ASSUMPTION (an attribution rule; the
    counters give issued micro-ops, not the cycle each took): a micro-op of opcode ``op``
    takes ``config.op_cycles[op]`` cycles (its issue and its device hold; no overlap) in its
    class (``sim.hw.energy.OP_CLASS``); the host's port and bus cycles (image and program
    words, streamed weights, activation moves to and from the store, reloaded tables) are
    "loading data", as their energy is; "control" is the rest (NOPs, LOOPs, HALTs, and the
    overlap the rule ignores), so the classes sum to the image's cycles."""
    from rtl.isa import Opcode
    from sim.hw.energy import CLASSES, OP_CLASS
    out = dict.fromkeys(CLASSES, 0)
    cyc = config.op_cycles
    for part in parts:
        for op in Opcode:
            if OP_CLASS[op] != "control":
                out[OP_CLASS[op]] += part.counters[op.name.lower()] * cyc.get(op, 1)
        out["loading data"] += part.estimate["cycles"] - part.counters["cycles"]
    out["control"] = sum(p.estimate["cycles"] for p in parts) - sum(out.values())
    return out


def memories(config, parts: list) -> dict:
    """The core's SRAMs for one image (``sim.hw.sram``, the weight buffer costed at the most
    slots a part fills, as ``sim.analysis.report`` costs it): ``dynamic_j`` (every part's
    accesses), ``leakage_j`` (over the image's latency), ``area_mm2``."""
    from sim.hw import sram
    big = max(parts, key=lambda p: len(p.compiled.buffer)).compiled
    cfg = sram.sized_config(config, big)
    latency = sum(p.estimate["latency_s"] for p in parts)
    dyn, rep = 0.0, None
    for i, p in enumerate(parts):
        acc = sram.access_counts(p.compiled, p.counters,
                                 host_data_words=int(round(p.data_words)),
                                 host_program_words=int(round(p.program_words)),
                                 host_reads=(int(p.compiled.stages[-1].out_channels)
                                             if i == len(parts) - 1 else 0))
        rep = sram.memory_report(cfg, p.compiled.subarrays, acc, latency)
        dyn += rep["dynamic_j"]
    return {"dynamic_j": dyn, "leakage_j": rep["leakage_j"], "area_mm2": rep["area_mm2"],
            "buffer_slots_costed": cfg.buffer_slots}


def packed_loads(compiled) -> dict:
    """The streamed weights of one image as *packed* loads (ASSUMPTION, a bound the seed's own
    loading suggests: seed 001 sec. 5.2 moves the weights over the 128-bit bus as data, W bits
    per weight): the bus carries each loaded channel's ``fan_in`` weights at ``w_bits`` bits,
    and a loader at the mat expands them into the buffer's padded rows (every plane of
    ``operand_bits``, the tile's unused columns zero, the zero-tile dots summed there; the
    loader's own cost is not modelled). ``sim.compile.weight_stream.cost`` sends the padded
    rows themselves, a mat row (``width`` bits) per plane, tile and channel. Returns ``bits``
    and ``bus_cycles`` per image (the requant entries, and the in-memory post-processing's
    words of a streamed layer, a bit per lane already, as ``weight_stream.cost`` counts them),
    and ``padded_bits`` / ``padded_bus_cycles``, ``weight_stream.cost``'s."""
    from rtl.ppu import BIAS_BITS, MULT_BITS, SHIFT_BITS
    from sim.compile.weight_stream import cost
    from sim.hw.chip import PARAMS
    bus = int(PARAMS["bus_bits"].value) * PARAMS["bus_transfers_per_cycle"].value
    entry_bits = MULT_BITS + SHIFT_BITS + BIAS_BITS
    bits = cycles = 0
    for st in compiled.stages:
        per_channel = st.tiles * (st.n + (st.zsum_base is not None))   # buffer words
        for _, _, image, table in st.weight_loads:
            channels, rest = divmod(len(image), per_channel)
            if rest:
                raise ValueError(f"{st.name}: a weight load of {len(image)} buffer words is "
                                 f"not whole channels of {per_channel}")
            w = channels * st.fan_in * st.w_bits
            e = 0 if table is None else len(table[1])
            bits += w + e * entry_bits
            cycles += math.ceil(w / bus) + e * math.ceil(entry_bits / bus)
        for _, _, image, _ in st.postproc_loads:   # in-memory post-processing: a bit per lane
            bits += len(image) * compiled.width     # already (sim.compile.weight_stream)
            cycles += len(image) * math.ceil(compiled.width / bus)
    padded = cost(compiled)
    return {"bits": bits, "bus_cycles": int(cycles), "padded_bits": padded["bits"],
            "padded_bus_cycles": padded["bus_cycles"]}


def chip(config, parts: list, mem: dict) -> dict:
    """The 64 MB chip (module docstring; ``sim.hw.chip``'s rule) from one mat's parts:
    :data:`CHIP_BYTES` of mats of the parts' size on the :data:`CHIP_BUS_BITS` bus at the core
    clock, FPS = min(mats / latency, bus rate / bits per image); the energy per image is the
    mat's (the parts' estimates, the reloaded tables, its SRAMs) + the bus wires of the image
    and program words (the streamed weights' and activation moves' wires are in the estimates
    already)."""
    import dataclasses
    from sim.hw import chip as _chip
    from sim.hw.energy import array_area_mm2
    k = parts[0].compiled.subarrays
    mat_bits = k * config.rows * config.columns
    mats = CHIP_BYTES * 8 // mat_bits
    cfg = dataclasses.replace(config, subarrays_per_mat=k, mats=mats)
    clock = cfg.clock_mhz * 1e6
    rate = CHIP_BUS_BITS * _chip.PARAMS["bus_transfers_per_cycle"].value * clock
    split: dict = {}
    for p in parts:
        for key, v in p.bits().items():
            split[key] = split.get(key, 0) + v
    bits = sum(split.values())
    latency = sum(p.estimate["latency_s"] for p in parts)
    compute_fps, bus_fps = mats / latency, rate / bits
    array_mm2 = array_area_mm2(cfg) / cfg.subarrays * k
    mat_mm2 = array_mm2 + mem["area_mm2"]
    wire = (_chip.PARAMS["wire_fj_per_bit_mm"].value * 1e-15
            * math.sqrt(mats * mat_mm2) / 2 * (split["image words"] + split["program words"]))
    e_split = {"micro-ops and loads (count; reloaded tables included)":
               sum(p.estimate["energy_j"] for p in parts),
               "SRAM dynamic": mem["dynamic_j"], "SRAM leakage": mem["leakage_j"],
               "bus wires of image and program words": wire}
    ops = sum(p.estimate["ops"] for p in parts)
    fps = min(compute_fps, bus_fps)
    per_bit = _chip.PARAMS["bus_transfers_per_cycle"].value * clock / bits
    # The other bound (ASSUMPTION, as sim.compile.multi_mat's broadcast): the mats run the
    # network in lock-step on their images, so one bus transfer of the streamed weights, the
    # programs and the reloaded tables reaches every mat; the images and activation moves stay
    # per mat.
    shared = split["streamed weights"] + split["program words"] + split["tables reloaded"]
    bc_bits = bits - shared + shared / mats
    bc_bus_fps = rate / bc_bits
    # Packed loads (packed_loads, ASSUMPTION there): the streamed weights at W bits each; the
    # mat's latency loses the padded rows' bus cycles too.
    pk = [packed_loads(p.compiled) for p in parts]
    pk_bits = bits - sum(q["padded_bits"] for q in pk) + sum(q["bits"] for q in pk)
    pk_lat = latency - sum(q["padded_bus_cycles"] - q["bus_cycles"] for q in pk) / clock
    pk_compute, pk_bus = mats / pk_lat, rate / pk_bits
    pk_shared = sum(q["bits"] for q in pk) + split["program words"] + split["tables reloaded"]
    pk_bc_bus = rate / (pk_bits - pk_shared + pk_shared / mats)
    bus_sweep = [{"bus_bits": w, "fps": min(compute_fps, w * per_bit),
                  "limit": "bus" if w * per_bit < compute_fps else "compute"}
                 for w in SWEEP_BUS_BITS]
    cap_sweep = [{"capacity_mb": mb, "mats": mb * 2 ** 23 // mat_bits,
                  "fps": min(mb * 2 ** 23 // mat_bits / latency, bus_fps),
                  "limit": "bus" if bus_fps < mb * 2 ** 23 // mat_bits / latency
                  else "compute"} for mb in SWEEP_CAPACITY_MB]
    return {
        "capacity_bytes": CHIP_BYTES, "mat_bits": mat_bits, "mats": mats,
        "mats_rule": f"{CHIP_BYTES * 8:,} bits (64 MB, seed 001 sec. 5.2) // {mat_bits:,} bits "
                     f"per mat ({k} subarrays x {config.rows} rows x {config.columns} columns)"
                     f" = {mats:,} mats",
        "bus_bits": CHIP_BUS_BITS, "clock_hz": clock, "bus_bits_per_s": rate,
        "bits_per_image": bits, "bits_per_image_split": split, "mat_latency_s": latency,
        "compute_bound_fps": compute_fps, "bus_bound_fps": bus_fps, "fps": fps,
        "limit": "bus" if bus_fps < compute_fps else "compute",
        "broadcast": {"bits_per_image": bc_bits, "bus_bound_fps": bc_bus_fps,
                      "fps": min(compute_fps, bc_bus_fps),
                      "limit": "bus" if bc_bus_fps < compute_fps else "compute",
                      "what": "the other bound: streamed weights, programs and reloaded "
                              "tables broadcast to every mat in lock-step (ASSUMPTION); "
                              "sim.hw.chip's rule (fps) sends each mat its own"},
        "packed": {"bits_per_image": pk_bits, "streamed_weight_bits": sum(q["bits"] for q in pk),
                   "mat_latency_s": pk_lat, "compute_bound_fps": pk_compute,
                   "bus_bound_fps": pk_bus, "fps": min(pk_compute, pk_bus),
                   "limit": "bus" if pk_bus < pk_compute else "compute",
                   "broadcast_fps": min(pk_compute, pk_bc_bus),
                   "broadcast_limit": "bus" if pk_bc_bus < pk_compute else "compute",
                   "what": "the streamed weights packed, W bits per weight, expanded into "
                           "the buffer's rows at the mat (ASSUMPTION: packed_loads); "
                           "broadcast_fps: packed and broadcast to every mat in lock-step"},
        "energy_per_image_j": sum(e_split.values()), "energy_split_j": e_split,
        "area_mm2": mats * mat_mm2, "mat_area_mm2": mat_mm2,
        "area_split_mm2": {"MTJ arrays": mats * array_mm2, "SRAM macros": mats * mem["area_mm2"],
                           "CMOS logic": None},
        "area_note": "MTJ arrays + SRAM macros (sim.hw.sram); the CMOS logic (PPU, "
                     "controller, popcount) is not counted (no synthesis at this configuration)",
        "gops": ops * fps / 1e9,
        "bus_sweep": bus_sweep, "capacity_sweep": cap_sweep,
        "chip_params": {k_: {"value": p.value, "unit": p.unit, "source": p.source}
                        for k_, p in _chip.PARAMS.items()},
    }


def breakdown(config, parts: list, mem: dict) -> dict:
    """Fig. 13's two breakdowns for one image on one mat: ``latency_cycles``
    (:func:`latency_classes`) and ``energy_j`` (``sim.hw.energy`` classes, reloaded tables in
    "loading data", the SRAMs a row of their own), with the part of "loading data" that is
    activation moves."""
    from sim.compile import act_tile
    from sim.hw.energy import CLASSES
    e = dict.fromkeys(CLASSES, 0.0)
    for p in parts:
        for k, v in p.estimate["energy_per_class_j"].items():
            e[k] += v
        e["loading data"] += p.reload_j
    e["SRAM (not a Fig. 13 class)"] = mem["dynamic_j"] + mem["leakage_j"]
    moves = [act_tile.cost(p.compiled) for p in parts]
    return {"latency_cycles": latency_classes(config, parts), "energy_j": e,
            "activation_moves": {"cycles": sum(m["bus_cycles"] for m in moves),
                                 "energy_j": sum(m["energy_j"] for m in moves)}}


#: The compiler's words for a table no core size holds whole: the network then runs segment by
#: segment (:func:`segmented`).
_WHOLE_REFUSAL = "no configuration holds that"


def evaluate(name: str, w_bits: int = 8, in_bits: int = 8, *, sizes: dict | None = None,
             seed: int = 0) -> dict:
    """One row: network ``name`` at ``<w_bits:in_bits>`` compiled (whole, or segment by
    segment when a table of the whole network exceeds every core size), counted, projected on
    the chip; ``status`` ``ok`` or ``refused`` (with ``reason``)."""
    from sim.compile.compiler import CompileError
    row = {"network": name, "w_bits": w_bits, "in_bits": in_bits, "preset": PRESET}
    config = configuration(sizes)
    t0 = time.perf_counter()
    model = seed_model(name, w_bits, in_bits, seed)
    try:
        try:
            compiled, res = compile_and_count(model, config)
            parts, mode = parts_of(compiled, res), "whole"
        except CompileError as e:
            if _WHOLE_REFUSAL not in str(e):
                raise
            row["whole_refusal"] = str(e)
            parts, mode = segmented(model, config), "segmented"
    except CompileError as e:
        return {**row, "status": "refused", "reason": str(e)}
    t1 = time.perf_counter()
    mem = memories(config, parts)
    lat = sum(p.estimate["latency_s"] for p in parts)
    ops = sum(p.estimate["ops"] for p in parts)
    energy = sum(p.estimate["energy_j"] for p in parts)
    counters: dict = {}
    for p in parts:
        for k, v in p.counters.items():
            counters[k] = counters.get(k, 0) + v
    row.update(status="ok", mode=mode, sizes={f: getattr(config, f) for f in TABLE_SIZES},
               subarrays=parts[0].compiled.subarrays, parts=len(parts),
               stages=sum(len(p.compiled.stages) for p in parts),
               mat={"cycles": counters["cycles"],
                    "cycles_with_host": sum(p.estimate["cycles"] for p in parts),
                    "ops": ops, "energy_j": energy, "latency_s": lat, "gops": ops / lat / 1e9,
                    "gops_per_w": ops / energy / 1e9},
               counters=counters, memories=mem, chip=chip(config, parts, mem),
               breakdown=breakdown(config, parts, mem), seconds=round(t1 - t0, 1))
    return row


# ---- tables ------------------------------------------------------------------------------------

#: Per Fig. 13 class: how ours compares (the table's last column).
COMPARABLE = {
    "loading data": "comparable: array writes of the gathered bit-planes (ERASE / PROGRAM) and "
                    "the host's loads (image, programs, streamed weights, activation moves)",
    "convolution": "comparable: AND + bit-count reads (eq. 1)",
    "data transfer": "partly: ours is the data-memory words moved into the transpose buffer "
                     "(MOVE / GATHER), the seed's the transfers between modules",
    "comparison/pooling": "not comparable: pools run in the CMOS post-processing unit "
                          "(nand_spin's postproc='mixed' puts a layer there when its weights "
                          "stream into a layer tiled in bands, its activations are tiled in "
                          "store mode or one band row cannot hold its raw sums: every pooled "
                          "layer of the seed's networks; VGG-19's conv1_1, conv2_1, conv3_1 and "
                          "its streamed fc6, fc7 requantize in memory)",
    "batch normalization": "not comparable: folded into the requantization (0 here)",
    "quantization": "not comparable: the CMOS post-processing unit's requantization and ReLU "
                    "(batch norm folded in), not the seed's in-array eq. 2",
    "control": "ours only: NOPs, loops, HALTs",
}


def _g(v, digits=3):
    return "-" if v is None else f"{v:.{digits}g}"


def table3_markdown(rows: list) -> str:
    """Table 3 as printed (quoted, source named) with our rows below it."""
    lines = ["| accelerator | technology | <W:I> / network | throughput (FPS) | capacity (MB) | "
             "area (mm^2) | source / limit |", "|---|---|---|---:|---:|---:|---|"]
    for acc, tech, fps, cap, area in TABLE3:
        lines.append(f"| {acc} | {tech} | not printed | {fps} | {cap} | {area} | "
                     f"{TABLE3_SOURCE} (as printed) |")
    for r in rows:
        net = NETWORKS[r["network"]][0].split(",")[0]
        wi = f"<{r['w_bits']}:{r['in_bits']}> {net}"
        if r["status"] != "ok":
            reason = r.get("reason", "").replace("|", "/")
            lines.append(f"| spinpim `nand_spin` | NAND-SPIN | {wi} | - | 64 | - | "
                         f"{reason or 'not run this session'} |")
            continue
        c = r["chip"]
        lines.append(
            f"| spinpim `nand_spin` | NAND-SPIN | {wi} | {_g(c['fps'])} | "
            f"{c['capacity_bytes'] / 2 ** 20:.0f} | {_g(c['area_split_mm2']['MTJ arrays'])} "
            f"arrays + {_g(c['area_split_mm2']['SRAM macros'])} SRAM | this tool: "
            f"{c['mats']:,} mats, {c['limit']}-bound (compute {_g(c['compute_bound_fps'])}, "
            f"bus {_g(c['bus_bound_fps'])} FPS; with weights and programs broadcast "
            f"{_g(c['broadcast']['fps'])} FPS, {c['broadcast']['limit']}-bound; with the "
            f"weights packed, W bits each, {_g(c['packed']['fps'])} FPS, "
            f"{c['packed']['limit']}-bound, packed and broadcast "
            f"{_g(c['packed']['broadcast_fps'])} FPS, {c['packed']['broadcast_limit']}-bound), "
            f"{_g(c['energy_per_image_j'] * 1e3)} mJ per "
            f"image" + ("; compiled segment by segment (its offset table exceeds every core)"
                        if r.get("mode") == "segmented" else "") + " |")
    return "\n".join(lines)


def _pct(part, total):
    return "-" if not total else f"{100 * part / total:.1f}"


def fig13_markdown(row: dict) -> str:
    """Fig. 13's breakdowns (the seed's percentages, quoted) beside one row's."""
    from sim.hw.energy import CLASSES
    b = row["breakdown"]
    lat, en = b["latency_cycles"], b["energy_j"]
    lt = sum(lat.values())
    et = sum(v for k, v in en.items() if k in CLASSES)
    net = NETWORKS[row["network"]][0].split(",")[0]
    lines = [f"Fig. 13 beside {net} <{row['w_bits']}:{row['in_bits']}> on one `nand_spin` mat "
             f"(per image: {lt:,} cycles, {_g(et * 1e3)} mJ in the classes; seed: "
             f"{FIG13_SOURCE}, quoted):", "",
             "| class | seed latency % | ours latency % | seed energy % | ours energy % | "
             "comparable? |", "|---|---:|---:|---:|---:|---|"]
    for cl in CLASSES:
        seed_l = FIG13["latency"].get(cl)
        seed_e = FIG13["energy"].get(cl)
        lines.append(f"| {cl} | {'-' if seed_l is None else seed_l} | {_pct(lat[cl], lt)} | "
                     f"{'-' if seed_e is None else seed_e} | {_pct(en[cl], et)} | "
                     f"{COMPARABLE[cl]} |")
    mv = b["activation_moves"]
    sram = en["SRAM (not a Fig. 13 class)"]
    lines += ["", f"Of \"loading data\": activation moves to and from the chip-level store "
              f"{_pct(mv['cycles'], lt)} % of the cycles and {_pct(mv['energy_j'], et)} % of "
              f"the energy. Not in the classes (not a Fig. 13 class): the core's SRAMs "
              f"(dynamic + leakage over the image's latency) {_g(sram * 1e3)} mJ per image, "
              f"{_pct(sram, et)} % of the classes' total."]
    return "\n".join(lines)


def fig11_markdown(rows: list) -> str:
    """Fig. 11's two sweeps in FPS (bus width at 64 MB, capacity on the 128-bit bus)."""
    head = ([f"{w}-bit bus" for w in SWEEP_BUS_BITS]
            + [f"{mb} MB" for mb in SWEEP_CAPACITY_MB])
    lines = ["Fig. 11's sweeps as FPS of the same chip rule (the seed plots peak performance "
             "normalized to area; its values are in the figure only): bus width at 64 MB "
             "(Fig. 11(b)), capacity on the 128-bit bus (Fig. 11(a)); b = bus-bound, "
             "c = compute-bound.", "",
             "| network | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for r in rows:
        c = r["chip"]
        cells = [f"{_g(x['fps'])} {x['limit'][0]}" for x in c["bus_sweep"]
                 + c["capacity_sweep"]]
        net = NETWORKS[r["network"]][0].split(",")[0]
        lines.append(f"| {net} <{r['w_bits']}:{r['in_bits']}> | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def markdown(rows: list, command: str) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    figs = [r for r in ok if r["network"] == "resnet50"] or ok[:1]
    parts = ["Seed 001 Table 3 beside a 64 MB `nand_spin` chip with a 128-bit bus (counting "
             "mode, random weights and inputs; weights streamed into each mat per image over "
             "the bus; area: MTJ arrays + SRAM macros, CMOS logic not counted):", "",
             table3_markdown(rows)]
    parts += ["", *[fig13_markdown(r) + "\n" for r in figs]]
    if ok:
        parts += [fig11_markdown(ok), ""]
    parts += [f"Made by `{command}`."]
    return "\n".join(parts) + "\n"


def report_lines(path="build/seed001_eval.md") -> list:
    """``sim.analysis.report``'s lines for ``nand_spin``: the tables of the last
    ``make seed001-eval`` (``path``), or how to make them."""
    from pathlib import Path
    p = Path(path)
    if not p.is_file():
        return ["Seed 001 Table 3 / Fig. 13 on AlexNet, VGG-19, ResNet-50: not made yet "
                "(`make seed001-eval`, about 10 min; `python -m sim.analysis.seed001_eval`)."]
    return [f"Seed 001 Table 3 / Fig. 13 (from `{path}`, made by `make seed001-eval`):", "",
            *p.read_text().rstrip("\n").splitlines()]


# ---- command line ------------------------------------------------------------------------------

def _wi(text: str) -> list:
    out = []
    for part in [t.strip() for t in text.split(",") if t.strip()] or [""]:
        try:
            w, i = (int(v) for v in part.split(":"))
        except ValueError:
            w = i = 0
        if not (1 <= w <= 8 and 1 <= i <= 8):
            raise EvalError(f"--wi must be comma-separated W:I pairs with W and I in [1, 8] "
                            f"(e.g. 8:8,4:4), not {text!r}")
        out.append((w, i))
    return out


def build_parser() -> argparse.ArgumentParser:
    from sim.config_file import size_option
    from rtl.config import SIZE_FIELDS
    p = argparse.ArgumentParser(prog="python -m sim.analysis.seed001_eval",
                                description=__doc__.splitlines()[0])
    p.add_argument("--networks", default=",".join(SEED_NETWORKS),
                   help=f"comma-separated networks (default the seed's: "
                   f"{', '.join(SEED_NETWORKS)}; all: {', '.join(NETWORKS)})")
    p.add_argument("--quick", action="store_true",
                   help=f"the quick check instead: {', '.join(QUICK_NETWORKS)} (seconds)")
    p.add_argument("--wi", default="8:8",
                   help="comma-separated <W:I> bit widths W:I (default 8:8, ASSUMPTION: the "
                   "seed does not print Table 3's)")
    p.add_argument("--seed", default="0", help="weight seed (default 0)")
    for name in TABLE_SIZES:
        lo, hi = SIZE_FIELDS[name][1:3]
        p.add_argument(size_option(name), dest=name, metavar="N", default=None,
                       help=f"core size (default {TABLE_SIZES[name]}, in [{lo}, {hi}])")
    p.add_argument("--json", default="build/seed001_eval.json",
                   help="JSON output (default build/seed001_eval.json)")
    p.add_argument("--md", default="build/seed001_eval.md",
                   help="Markdown output (default build/seed001_eval.md)")
    return p


def _sizes(args) -> dict:
    from rtl.config import SIZE_FIELDS
    out = {}
    for name in TABLE_SIZES:
        text = getattr(args, name)
        if text is None:
            continue
        _, lo, hi, pow2, _ = SIZE_FIELDS[name]
        try:
            v = int(text)
        except ValueError:
            v = -1
        if not lo <= v <= hi or (pow2 and v & (v - 1)):
            raise EvalError(f"--{name.replace('_', '-')} must be an int in [{lo}, {hi}]"
                            f"{' and a power of two' if pow2 else ''}, not {text!r}")
        out[name] = v
    return out


@interruptible("python -m sim.analysis.seed001_eval", "nothing was written")
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        from sim.analysis.reference_nets import _int, _names
        nets = list(QUICK_NETWORKS) if args.quick else _names("--networks", args.networks,
                                                               NETWORKS)
        wis = _wi(args.wi)
        seed = _int("--seed", args.seed, 0)
        sizes = _sizes(args)
        out_json = check_file("--json", args.json)
        out_md = check_file("--md", args.md)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    for net in nets:
        for w, i in wis:
            row = evaluate(net, w, i, sizes=sizes, seed=seed)
            rows.append(row)
            if row["status"] == "ok":
                c, m = row["chip"], row["mat"]
                print(f"{net:9s} <{w}:{i}> {m['cycles']:>14,} cycles {m['energy_j'] * 1e3:9.4g} "
                      f"mJ per mat image; chip {c['fps']:9.4g} FPS ({c['limit']}-bound) "
                      f"({row['seconds']} s)", flush=True)
            else:
                print(f"{net:9s} <{w}:{i}> refused: {row['reason']}", flush=True)
    command = shlex.join(["python", "-m", "sim.analysis.seed001_eval", *argv])
    doc = {"command": command, "preset": PRESET, "table3": {"source": TABLE3_SOURCE,
           "rows": [dict(zip(("accelerator", "technology", "fps", "capacity_mb", "area_mm2"),
                             r, strict=True)) for r in TABLE3]},
           "fig13": {"source": FIG13_SOURCE, **FIG13}, "rows": rows}
    write_files({out_json: json_text(doc), out_md: markdown(rows, command)}, option="--json")
    print(f"wrote {out_json} and {out_md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

