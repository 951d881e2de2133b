"""A chip of mats: mats x banks on one shared bus, the bus width and the weight loading counted
(seed 001 sec. 5.2 and Fig. 11: the bus width limits the performance).

Organisation (:func:`organisation`): the preset's array, ``config.subarrays`` subarrays, as
``config.subarrays // K`` mats of K subarrays (K: the measured mat; the preset's own
``subarrays_per_mat`` by default), grouped into banks of :data:`PARAMS` ``mats_per_bank``; all
banks share one bus of ``bus_bits`` (seed 001 sec. 3: banks share the chip's I/O; sec. 5.2: a
128-bit bandwidth). Each mat runs the whole network on its own image (the weights of every
layer resident in its weight buffer, as the compiler maps them).

What crosses the bus:

* once per model, into every mat: the weight buffer rows the model uses, the requantization
  table, the offset and patch tables (:func:`weight_bits`): the *weight loading*;
* per image, into its mat: the image's data-memory words (32 bits each) and the instruction
  words of every chunk program loaded for it (64 bits each, wider where the configuration's
  sizes widen the operand bases, ``config.isa.word_bits``;
  ``sim.analysis.report.host_port_words``),
  each mat separately (ASSUMPTION ``broadcast``: no broadcast of programs), and the streamed
  weight-buffer words and requant entries of a model whose weights do not fit the buffer
  (``sim.compile.weight_stream.cost``; the weight loading then writes the resident part only),
  and the data-memory words of a model whose activations are tiled
  (``sim.compile.act_tile.cost``: loaded from and stored to the chip's activation store).

Throughput (:func:`chip_model`): images per second = min(compute bound = mats / the mat's
latency per image, bus bound = bus_bits x clock / bits per image); the smaller names the
limit. A *batch* of one image per mat after the weight loading takes load time + max(mat
latency, mats x bits per image / (bus_bits x clock)). Energy per image = the mat's (micro-ops +
SRAMs) + the bus wires' (bits x :data:`PARAMS` ``wire_fj_per_bit_mm`` x the mean wire length),
each bit once: the mat's energy already holds the streamed weights' and moved activations'
wires at the mat's wire length (``sim.hw.energy.with_loading``), which the chip's wire replaces
(before, those bits were charged at both); the weight loading adds the buffer and table writes
(``sim.hw.sram``) and their wire energy once.
"""

from __future__ import annotations

import math

from rtl.isa import AGU_DATA_BITS, KPOS_BITS, OFFSET_BITS
from rtl.ppu import BIAS_BITS, MULT_BITS, SHIFT_BITS
from sim.hw.device import Param
from sim.hw.energy import DATA_WORD_BITS

__all__ = ["PARAMS", "organisation", "weight_bits", "image_bus_bits", "chip_model",
           "bus_sweep"]

#: Every constant of the chip model with its source.
PARAMS: dict[str, Param] = {
    "bus_bits": Param(128, "bit", "seed 001 sec. 5.2: 'a 64 MB memory array and a 128-bit "
                      "bandwidth' (Fig. 11(b): the bus width sets the peak performance)"),
    "mats_per_bank": Param(16, "mats", "ASSUMPTION: a bank is seed 001 sec. 5.2's group of "
                           "4 x 4 mats (the paper names the bank level, sec. 3, but gives no "
                           "mats per bank)"),
    "bus_transfers_per_cycle": Param(1, "1/cycle", "ASSUMPTION: the bus moves bus_bits once "
                                     "per core clock cycle (the seeds give no bus clock)"),
    "wire_fj_per_bit_mm": Param(100.0, "fJ/(bit mm)", "ASSUMPTION: 45 nm global wire ~0.2 "
                                "fF/um at 1.0 V, C V^2 = 200 fJ per bit and mm for a full "
                                "swing, x activity 1/2 (random data)"),
    "wire_length": Param("sqrt(area)/2", "mm", "ASSUMPTION: the mean distance from the "
                         "chip's I/O to a mat is half the side of a square chip (H-tree from "
                         "its centre)"),
    "broadcast": Param("none", "", "ASSUMPTION: every mat's image and program words cross the "
                       "bus separately (no broadcast of the programs all mats share: an upper "
                       "bound on the bus traffic)"),
}


def organisation(config, k: int) -> dict:
    """Mats of ``k`` subarrays, banks and the bus of the chip of ``config``."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= config.subarrays:
        raise ValueError(f"k must be an int in [1, {config.subarrays}], not {k!r}")
    mats = config.subarrays // k
    per_bank = int(PARAMS["mats_per_bank"].value)
    return {"subarrays_per_mat": k, "mats": mats, "banks": -(-mats // per_bank),
            "mats_per_bank": per_bank, "bus_bits": int(PARAMS["bus_bits"].value),
            "idle_subarrays": config.subarrays - mats * k,
            "own_organisation": k == config.subarrays_per_mat,
            "mat_size": f"{k} x {config.rows} x {config.columns} (subarrays x rows x columns)"}


def weight_bits(compiled) -> dict:
    """Bits loaded into one mat once per model: buffer rows used x mat width, requant entries,
    offset- and patch-table entries (``sim.compile.compiler.CompiledModel``)."""
    buffer = int(compiled.buffer.shape[0]) * int(compiled.width)
    table = len(compiled.table[0]) * (MULT_BITS + SHIFT_BITS + BIAS_BITS)
    offsets = len(compiled.offsets) * (OFFSET_BITS + KPOS_BITS)
    patches = len(compiled.patches) * AGU_DATA_BITS
    return {"buffer": buffer, "requant table": table, "offset table": offsets,
            "patch table": patches, "total": buffer + table + offsets + patches,
            "buffer_rows": int(compiled.buffer.shape[0])}


def image_bus_bits(config, compiled, data_words: float, program_words: float):
    """``(bits by kind, wire_j)``: the bits one image moves over the bus into and out of its
    mat (module docstring): ``image words`` (32 bits each), ``program words`` (the
    configuration's instruction width, ``config.isa.word_bits``), ``streamed weights``
    (``sim.compile.weight_stream.cost``) and ``activation moves`` (``sim.compile.act_tile.cost``);
    ``wire_j`` the last two's wire energy at the mat's wire, which the mat's energy already
    holds (``sim.hw.energy.with_loading``)."""
    bits = {"image words": data_words * DATA_WORD_BITS,
            "program words": program_words * config.isa.word_bits,
            "streamed weights": 0, "activation moves": 0}
    wire_j = 0.0
    stages = getattr(compiled, "stages", ())
    if any(getattr(st, "weight_loads", None) for st in stages):
        from sim.compile.weight_stream import cost as _stream_cost
        c = _stream_cost(compiled)
        bits["streamed weights"] = c["bits"]
        wire_j += c["wire_j"]
    if any(getattr(st, "act_moves", None) for st in stages):
        from sim.compile.act_tile import cost as _act_cost
        c = _act_cost(compiled)
        bits["activation moves"] = c["bits"]
        wire_j += c["wire_j"]
    return bits, wire_j


def chip_model(config, compiled, *, latency_s: float, energy_j: float, ops: int,
               data_words: float, program_words: float, mat_area_mm2: float,
               bus_bits: int | None = None) -> dict:
    """The chip figures (module docstring) from one mat's measured figures per image:
    ``latency_s`` and ``energy_j`` (with its SRAMs, and with the streamed weights' and moved
    activations' loading energy as :func:`sim.hw.energy.with_loading` adds it: their wire
    energy at the mat's wire is replaced by the chip's), ``ops``, the host words per image
    (``data_words``, ``program_words``) and the mat's area."""
    from sim.hw import sram
    k = compiled.subarrays
    org = organisation(config, k)
    if bus_bits is not None:
        org["bus_bits"] = bus_bits
    mats, bus = org["mats"], org["bus_bits"]
    clock_hz = config.clock_mhz * 1e6
    rate = bus * PARAMS["bus_transfers_per_cycle"].value * clock_hz     # bits / s
    by_kind, loaded_wire_j = image_bus_bits(config, compiled, data_words, program_words)
    image_bits = sum(by_kind.values())
    compute_ips = mats / latency_s
    bus_ips = rate / image_bits if image_bits else math.inf
    ips = min(compute_ips, bus_ips)
    area = mats * mat_area_mm2
    wire_mm = math.sqrt(area) / 2
    wire_j_per_bit = PARAMS["wire_fj_per_bit_mm"].value * wire_mm * 1e-15
    bus_j = image_bits * wire_j_per_bit
    e_img = energy_j - loaded_wire_j + bus_j
    wb = weight_bits(compiled)
    load_s = mats * wb["total"] / rate
    mem = {m.name: m for m in sram.core_memories(config, k)}
    buf = mem["weight buffer"]
    load_j_mat = (wb["buffer_rows"] * sram.write_energy_pj(buf.words, buf.bits)
                  + len(compiled.table[0]) * sram.write_energy_pj(
                      mem["requant table"].words, mem["requant table"].bits)
                  + len(compiled.offsets) * sram.write_energy_pj(
                      mem["offset table"].words, mem["offset table"].bits)
                  + len(compiled.patches) * sram.write_energy_pj(
                      mem["patch table"].words, mem["patch table"].bits)) * 1e-12
    load_j = mats * (load_j_mat + wb["total"] * wire_j_per_bit)
    batch_s = load_s + max(latency_s, mats * image_bits / rate)
    return {
        "organisation": org,
        "clock_hz": clock_hz,
        "bus_bits_per_s": rate,
        "bits_per_image": image_bits,
        "compute_bound_images_per_s": compute_ips,
        "bus_bound_images_per_s": bus_ips,
        "images_per_second": ips,
        "limit": "bus" if bus_ips < compute_ips else "compute",
        "bus_utilisation": ips / bus_ips if image_bits else 0.0,
        "gops": ops * ips / 1e9,
        "energy_per_image_j": e_img,
        "bus_energy_per_image_j": bus_j,
        "loading_wire_in_mat_energy_j": loaded_wire_j,
        "power_w": e_img * ips,
        "gops_per_w": ops / e_img / 1e9,
        "area_mm2": area,
        "gops_per_mm2": ops * ips / 1e9 / area,
        "wire_mm": wire_mm,
        "weight_loading": {"bits_per_mat": wb, "seconds": load_s, "energy_j": load_j,
                           "energy_per_mat_j": load_j / mats},
        "batch": {"images": mats, "seconds": batch_s, "images_per_second": mats / batch_s,
                  "gops": ops * mats / batch_s / 1e9,
                  "gops_per_w": ops * mats / (mats * e_img + load_j) / 1e9,
                  "what": "one image per mat right after the weight loading"},
        "params": {k: {"value": p.value, "unit": p.unit, "source": p.source}
                   for k, p in PARAMS.items()},
    }


def bus_sweep(config, compiled, widths=(32, 64, 128, 256, 512, 1024, 2048), **figures) -> list:
    """:func:`chip_model` at each bus width (seed 001 Fig. 11(b)): ``[{bus_bits, gops,
    images_per_second, limit, bus_utilisation}]``."""
    out = []
    for w in widths:
        c = chip_model(config, compiled, bus_bits=w, **figures)
        out.append({"bus_bits": w, "gops": c["gops"], "limit": c["limit"],
                    "images_per_second": c["images_per_second"],
                    "bus_utilisation": c["bus_utilisation"],
                    "batch_gops": c["batch"]["gops"]})
    return out
