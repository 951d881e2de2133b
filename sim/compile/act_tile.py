"""Activation tiling: stages whose input or output does not fit the data memory run in *bands* of
output rows, their activations moved between the data memory and a chip-level activation store
by the host (``sim.compile.compiler.compile_model(..., tile_activations=True)``), and what the
moves cost.

The store (ASSUMPTION: the chip's memory outside the core -- the other mats' arrays or a DRAM --
reached over the chip's bus of ``sim.hw.chip.PARAMS["bus_bits"]``, seed 001 sec. 5.2: 128 bits; it
holds every tensor in golden's flat layout, and its own access energy is not counted: it depends on
what the store is, which the seeds do not say).

Plan (:func:`plan`): with tiling, the compiler's two regions are the halves of the data memory, ``R
= data_words // 2`` words each (ASSUMPTION: halves, the simplest split), stage s reading its input
at ``R * (s % 2)`` and writing at ``R * ((s + 1) % 2)`` as without tiling. A stage whose input and
output both fit ``R`` is *resident* (as without tiling; the write pointer's end, the output plus
less than one channel's positions, must fit its half too); any other is *tiled* and has the whole
data memory to itself: its band's input from word 0, its output right after the largest band's
input (its input comes from the store and its output goes there, so nothing else is alive in the
data memory while it runs). Only the compiler's two-region layout (a chain of compute stages with
fused 2x2 pools) is tiled: standalone layers (``sim.compile.layer_stages``), grouped convolutions,
lanes routes and in-memory post-processing in a model that needs tiling are refused ("not built
yet"), and so is a tiled linear layer (its one patch is the whole input).

Bands (:func:`build_tiled`): a tiled convolution of input (C, H, W), kernel kh x kw, stride s,
padding p, output (O, Hq, Wq) (Hq, Wq pooled when a 2x2 pool is fused, f = 2, else f = 1) is split
into bands of ``rows`` output rows. Band [r0, r1) needs the input rows ``a = max(0, r0*f*s - p) ..
b = min(H, (r1*f - 1)*s - p + kh)`` (the kernel's halo); they are loaded channel by channel from
word 0 (``in_base``) at a fixed stride of ``Hs`` rows per channel (``Hs`` the largest band's input
rows): input (c, y, x) at ``in_base + c*Hs*W + (y - a)*W + x``. The stage's offset table is built
with ``Hs`` for H (``offset = c*Hs*W + ky*W + kx``), the same for every band. Each band is a view
of the stage (the compiler's chunk planner, or ``sim.compile.weight_stream.build_streamed`` when
the weights stream, on a copy of the stage with the band's patches, ``in_base - a*W`` (mod 2**16;
the patch entries' bases then point at the band's rows, and their masks keep the image's own
padding), and the band's output shape (O, r1 - r0, Wq) at ``out_base = C*Hs*W``); its chunks, in
band order, are the stage's chunks. After a band's last chunk the host stores its output channel by
channel into the store (channel o of the band: ``out_base + o*(r1 - r0)*Wq``, ``(r1 - r0)*Wq``
words, to ``o*Hq*Wq + r0*Wq``). ``rows`` is the largest that keeps the band's input and the chunks'
write pointer's end (the band's output plus a chunk's start, less than one channel's positions of
the band: ``sim.compile.compiler``) within ``data_words``. A resident stage after a tiled one loads
its whole input from the store before its first chunk; a resident stage before a tiled one stores
its whole output after its last; a tiled first stage reads the image from the store (the host
writes the image there, as it would into the data memory).

The patch table: a tiled stage's patch entries are not resident; each band's (its view's entries,
in the order its chunks read them) are written by the host into a region of the table from entry 0
before the band's first chunk (``patch`` moves), the region as large as the largest band's patches,
the resident stages' entries after it.

The moves are ``Stage.act_moves``: ``(chunk index, kind, data-memory address, tensor offset,
words)``, kind ``load`` (before the chunk runs, from the stage's input tensor) or ``store`` (after
it ran, into the stage's output tensor); and ``(chunk index, "patch", first entry, entries,
count)``.

Cost (:func:`cost`): each moved word is a 32-bit data-memory word (``sim.hw.energy``'s
``DATA_WORD_BITS``) on the bus at ``bus_transfers_per_cycle``: ``ceil(32 / bus_bits)`` cycles per
word (ASSUMPTION: the data memory's host port takes one word per cycle, so four words do not share
one 128-bit transfer), and each band's patch entry (``rtl.isa.AGU_DATA_BITS``) one cycle, added to
the image's latency (ASSUMPTION: not overlapped with the compute, as
``sim.compile.weight_stream``). Energy per word: the data memory's SRAM write (load) or read
(store) (``sim.hw.sram``), the patch table's write, and the bus wires, bits x
``sim.hw.chip.PARAMS["wire_fj_per_bit_mm"]`` x ``sim.compile.weight_stream.wire_mm``.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

__all__ = ["Plan", "refuse_layout", "plan", "offset_rows", "build_tiled", "link",
           "loads_before", "stores_after", "patches_before", "output_in_store",
           "input_in_store", "moved_words", "patch_loads", "cost", "with_cost", "run_loads",
           "run_stores", "new_tensor", "NOT_BUILT"]

_ADDR_MOD = 1 << 16

#: What activation tiling does not map (module docstring).
NOT_BUILT = "activation tiling (sim.compile.act_tile) of {what} is not built yet"


class Plan:
    """Per stage index (compute stages, in order): ``tiled`` (bool), and for tiled ones the
    band rows and the input rows per channel ``Hs`` (:func:`plan`); ``half`` R."""

    def __init__(self, half: int):
        self.half = half
        self.tiled: dict[int, bool] = {}
        self.bands: dict[int, tuple] = {}        # si -> (rows, hs, [(r0, r1, a, b)])
        self.patch_region = 0                    # entries 0 .. of the bands' patch entries


def _geometry(layer, in_shape, out_shape, pooled: bool):
    c, h, w = in_shape
    kh, kw = (int(v) for v in layer.params["weight"].shape[2:])
    s, p = int(layer.params["stride"]), int(layer.params["padding"])
    return c, h, w, kh, kw, s, p, 2 if pooled else 1, out_shape


def _bands(geo, rows: int) -> tuple:
    c, h, w, kh, kw, s, p, f, (o, hq, wq) = geo
    bands = []
    for r0 in range(0, hq, rows):
        r1 = min(hq, r0 + rows)
        a, b = max(0, r0 * f * s - p), min(h, (r1 * f - 1) * s - p + kh)
        bands.append((r0, r1, a, b))
    hs = max(b - a for _, _, a, b in bands)
    return hs, bands


def _fits(geo, rows: int, half: int) -> tuple:
    """(input words, pointer words) of the largest band of ``rows`` rows."""
    c, h, w, kh, kw, s, p, f, (o, hq, wq) = geo
    hs, _ = _bands(geo, rows)
    rows = min(rows, hq)
    # the write pointer ends at out_base + a chunk's start + the band's output: below
    # out_base + (O + 1) x the band's positions
    return c * hs * w, (o + 1) * rows * wq


def refuse_layout(layout, extras, fail) -> None:
    """Refuse (not built yet) a model that takes ``sim.compile.layer_stages``' layout and does
    not fit the largest data memory (one that fits a smaller data memory than the
    configuration's is for the compiler's own message: raise ``data_words``)."""
    from rtl.config import SIZE_FIELDS
    top = SIZE_FIELDS["data_words"][2]
    if layout is not None and layout.words > top:
        fail("the model", NOT_BUILT.format(
            what=f"a model with standalone layers or branches (layers "
                 f"{', '.join(map(str, extras)) or 'with an input array'}: "
                 f"sim.compile.layer_stages' layout)")
             + f"; its tensors alive at once need {layout.words} data-memory words, more "
               f"than the largest data memory (data_words is at most {top})")


def plan(c, model, plans, shapes, config, fail) -> Plan:
    """The tiling of every planned compute stage (module docstring); ``c`` is
    ``sim.compile.compiler``, ``plans`` its planned stages, ``fail(where, msg)``
    its error. Raises the compiler's CompileError for what is not built and (naming the layer,
    ``data_words`` and the size that holds one band) for a data memory too small for a band."""
    from sim.compile import grouped as _gc
    from sim.compile import layer_stages as _ls
    layers = model.layers
    half = config.data_words // 2
    out = Plan(half)
    if config.postproc == "in_memory":
        fail("the model", NOT_BUILT.format(what="in-memory post-processing (postproc="
                                                 "'in_memory')"))
    for si, (ci, pi, route) in enumerate(plans):
        ly = layers[ci]
        where = f"layer {ci} ({ly.kind})"
        in_shape = tuple(shapes[_ls.reads_of(layers, ci) + 1])
        out_shape = tuple(shapes[(ci if pi is None else pi) + 1])
        # resident: the input fits its half, and so does the write pointer (the output plus a
        # chunk's start, less than one channel's positions)
        big = (math.prod(in_shape) > half
               or math.prod(out_shape) + math.prod(out_shape[1:]) > half)
        out.tiled[si] = big
        if not big:
            continue
        if route.name == "dima_binconv" or _gc.is_generic(ly):
            fail(where, NOT_BUILT.format(what=f"a {'grouped' if _gc.is_generic(ly) else 'lanes'}"
                                              f" layer (route {route.name})") + f": its "
                 f"activations ({math.prod(in_shape)} input, {math.prod(out_shape)} output "
                 f"words) exceed half the data memory ({half}); raise data_words")
        if not ly.is_conv:
            c._too_small(f"{where}: a linear layer's input ({math.prod(in_shape)} words) and "
                         f"output ({math.prod(out_shape)}) are one patch and can not be split "
                         f"into bands, but half the data memory is {half} words (data_words "
                         f"{config.data_words})", "data_words",
                         2 * max(math.prod(in_shape), math.prod(out_shape)))
        geo = _geometry(ly, in_shape, out_shape, pi is not None)
        rows = 0
        for r in range(out_shape[1], 0, -1):
            words, ptr = _fits(geo, r, half)
            if words + ptr <= config.data_words:
                rows = r
                break
        if rows == 0:
            words, ptr = _fits(geo, 1, half)
            c._too_small(f"{where}: one band of 1 output row needs {words} data-memory words "
                         f"for its input rows (with the kernel's halo) and {ptr} for its "
                         f"output (and the write pointer's end), but data_words is "
                         f"{config.data_words}", "data_words", words + ptr)
        hs, bands = _bands(geo, rows)
        out.bands[si] = (rows, hs, bands)
        out.patch_region = max(out.patch_region, min(rows, out_shape[1]) * out_shape[2]
                               * (4 if pi is not None else 1))
    if out.patch_region > config.patch_entries:
        c._too_small(f"the bands' patch-table region needs {out.patch_region} entries (one "
                     f"band's patches), but patch_entries is {config.patch_entries}",
                     "patch_entries", out.patch_region)
    return out


def offset_rows(tplan, si: int, h: int) -> int:
    """The input rows per channel the offset table of stage ``si`` assumes: ``Hs`` for a
    tiled stage, else ``h``."""
    if tplan is None or si not in tplan.bands:
        return h
    return tplan.bands[si][1]


def build_tiled(c, stage, si: int, tplan, weight, route, config, stream, where: str, *,
                imem_depth: int, width: int, table=None, layer=None) -> list:
    """Plan the chunks of the tiled stage ``stage`` (stage index ``si``) band by band (module
    docstring), appended to ``stage.chunks`` (with ``stage.weight_loads`` when ``stream``),
    and its moves to ``stage.act_moves``; returns its resident patch-table entries (none:
    each band's are loaded with it)."""
    rows, hs, bands = tplan.bands[si]
    cin, h, w = stage.in_shape
    o, hq, wq = stage.out_shape
    stage.in_base, stage.out_base = 0, cin * hs * w     # the whole data memory (docstring)
    g = stage.group
    planned = {}            # (patches, rows) -> a band's chunks, weight loads, first tile's
    for r0, r1, a, b in bands:
        p0, p1 = r0 * wq * g, r1 * wq * g
        view = replace(stage, order=stage.order[p0:p1],
                       in_base=(stage.in_base - a * w) % _ADDR_MOD,
                       out_shape=(o, r1 - r0, wq), patch_base=0,
                       chunks=[], weight_loads=[], act_moves=[])
        key = (p1 - p0, r1 - r0)
        if key in planned:      # the same programs as an earlier band of as many patches
            chunks, loads, first_tile = planned[key]
            view.chunks = [replace(ch, stage=view) for ch in chunks]
            view.weight_loads = list(loads)
            part = c._patch_entries(replace(view, chunks=view.chunks[:first_tile]))
        elif stream is not None:
            from sim.compile import weight_stream as _ws
            part = _ws.build_streamed(c, view, weight, route, config, stream, where,
                                      imem_depth=imem_depth, width=width, table=table,
                                      layer=layer)
        else:
            c._plan_chunks(view, config, where, imem_depth=imem_depth)
            part = c._patch_entries(view)
        if key not in planned:
            tiles = [at for at, *_ in view.weight_loads]
            planned[key] = (list(view.chunks), list(view.weight_loads),
                            tiles[1] if len(tiles) > 1 else len(view.chunks))
        first, last = len(stage.chunks), len(stage.chunks) + len(view.chunks) - 1
        stage.act_moves.append((first, "patch", 0, tuple(part), len(part)))
        for ci in range(cin):
            stage.act_moves.append((first, "load", stage.in_base + ci * hs * w,
                                    ci * h * w + a * w, (b - a) * w))
        n = (r1 - r0) * wq
        for oc in range(o):
            stage.act_moves.append((last, "store", stage.out_base + oc * n,
                                    oc * hq * wq + r0 * wq, n))
        for at, b_, img, tbl in view.weight_loads:
            stage.weight_loads.append((at + first, b_, img, tbl))
        for ch in view.chunks:
            end = stage.out_base + ch.out_start + o * (r1 - r0) * wq
            if end > config.data_words:     # the bands are sized for it (module docstring)
                c._too_small(f"{where}: a band's write pointer ends at word {end}, but "
                             f"data_words is {config.data_words}", "data_words", end)
            ch.index = len(stage.chunks)
            stage.chunks.append(ch)
    if stream is not None:
        stage.buffer_base = stream[0]
    return []


def link(stages, tplan) -> None:
    """The whole-tensor moves between a resident and a tiled stage (module docstring)."""
    if tplan is None:
        return
    for si in range(len(stages) - 1):
        a, b = stages[si], stages[si + 1]
        ta, tb = tplan.tiled.get(si, False), tplan.tiled.get(si + 1, False)
        if ta and not tb:
            b.act_moves.insert(0, (0, "load", b.in_base, 0, b.in_size))
        elif tb and not ta:
            a.act_moves.append((len(a.chunks) - 1, "store", a.out_base, 0, a.out_size))


def loads_before(stage, index: int) -> list:
    """``(data-memory address, input offset, words)`` the host loads before chunk ``index``."""
    return [(d, t, n) for at, k, d, t, n in getattr(stage, "act_moves", ())
            if at == index and k == "load"]


def stores_after(stage, index: int) -> list:
    """``(data-memory address, output offset, words)`` the host stores after chunk ``index``."""
    return [(d, t, n) for at, k, d, t, n in getattr(stage, "act_moves", ())
            if at == index and k == "store"]


def output_in_store(stage) -> bool:
    """Whether the stage's whole output is in the store after it ran (its stores cover it)."""
    return sum(n for _, k, _, _, n in getattr(stage, "act_moves", ()) if k == "store") \
        == stage.out_size


def input_in_store(compiled) -> bool:
    """Whether the first stage reads the image from the store (a tiled first stage)."""
    return any(k == "load" for _, k, *_ in getattr(compiled.stages[0], "act_moves", ()))


def moved_words(compiled) -> list:
    """Per stage, ``(loaded, stored)`` data-memory words of one image."""
    return [(sum(n for _, k, _, _, n in getattr(st, "act_moves", ()) if k == "load"),
             sum(n for _, k, _, _, n in getattr(st, "act_moves", ()) if k == "store"))
            for st in compiled.stages]


def patch_loads(compiled) -> list:
    """Per stage, the patch-table entries the host writes per image (the bands')."""
    return [sum(n for _, k, _, _, n in getattr(st, "act_moves", ()) if k == "patch")
            for st in compiled.stages]


def patches_before(stage, index: int) -> list:
    """``(first entry, [(base, mask)])`` the host writes into the patch table before chunk
    ``index`` (a band's entries)."""
    return [(d, t) for at, k, d, t, _ in getattr(stage, "act_moves", ())
            if at == index and k == "patch"]


def cost(compiled) -> dict:
    """What one image's moves cost (module docstring): ``loads``, ``stores`` (words),
    ``bits``, ``bus_cycles``, ``energy_j`` (``sram_j`` + ``wire_j``), the sources, and
    ``per_stage`` the same per stage."""
    from sim.compile.weight_stream import wire_mm
    from sim.hw import sram
    from sim.hw.chip import PARAMS
    from rtl.isa import AGU_DATA_BITS
    from sim.hw.energy import DATA_WORD_BITS
    bus = int(PARAMS["bus_bits"].value) * PARAMS["bus_transfers_per_cycle"].value
    mem = {m.name: m for m in sram.core_memories(compiled.config, compiled.subarrays)}
    dm = mem["data memory"]
    wire = PARAMS["wire_fj_per_bit_mm"].value * wire_mm(compiled.config) * 1e-15

    pt = mem["patch table"]

    def one(ld, stv, pe):
        words = ld + stv
        bits = words * DATA_WORD_BITS + pe * AGU_DATA_BITS
        sram_j = (ld * sram.write_energy_pj(dm.words, dm.bits)
                  + stv * sram.read_energy_pj(dm.words, dm.bits)
                  + pe * sram.write_energy_pj(pt.words, pt.bits)) * 1e-12
        return {"loads": ld, "stores": stv, "words": words, "patch_entries": pe, "bits": bits,
                "bus_cycles": int(words * math.ceil(DATA_WORD_BITS / bus)
                                  + pe * math.ceil(AGU_DATA_BITS / bus)),
                "energy_j": sram_j + bits * wire, "sram_j": sram_j, "wire_j": bits * wire}

    per_stage = [one(ld, stv, pe) for (ld, stv), pe in zip(moved_words(compiled),
                                                           patch_loads(compiled), strict=True)]
    out = one(sum(p["loads"] for p in per_stage), sum(p["stores"] for p in per_stage),
              sum(p["patch_entries"] for p in per_stage))
    out.update(per_stage=per_stage, sources={
        "store": "ASSUMPTION: a chip-level activation store over the chip's bus "
                 "(sim.compile.act_tile); its own access energy is not counted",
        "bus_bits": PARAMS["bus_bits"].source,
        "bus_cycles": "ASSUMPTION: one 32-bit word per cycle (the data memory's host port), "
                      "one patch-table entry per cycle",
        "wire_fj_per_bit_mm": PARAMS["wire_fj_per_bit_mm"].source,
        "sram": "sim.hw.sram write (load) / read (store) energy of the data memory, write "
                "energy of the patch table"})
    return out


def with_cost(est: dict, act: dict) -> dict:
    """``sim.hw.energy.Report.to_dict()`` with the moves' energy added (their cycles are in
    the host cycles already) to the energy, the class "loading data" and GOPS/W."""
    if not act["words"] and not act["patch_entries"]:
        return est
    from sim.hw.energy import with_loading
    return with_loading(est, "host_activation_moves", act["energy_j"])


def run_loads(stage, index: int, write, source, write_patch=None) -> int:
    """Do the loads before chunk ``index``: ``write(address, value)`` for each word of
    ``source`` (the stage's input tensor, flat words), ``write_patch(entry, base, mask)`` for
    each patch-table entry of a band; returns the words moved (patch entries not counted)."""
    moved = 0
    for e0, entries in patches_before(stage, index):
        for i, (base, mask) in enumerate(entries):
            write_patch(e0 + i, base, mask)
    for d, t, n in loads_before(stage, index):
        for i in range(n):
            write(d + i, int(source[t + i]))
        moved += n
    return moved


def run_stores(stage, index: int, read, target) -> int:
    """Do the stores after chunk ``index``: ``target[offset + i] = read(address + i)``;
    returns the words moved."""
    moved = 0
    for d, t, n in stores_after(stage, index):
        for i in range(n):
            target[t + i] = int(read(d + i))
        moved += n
    return moved


def new_tensor(stage):
    """The store's copy of the stage's output (flat int64 words), or None if not stored."""
    return np.zeros(stage.out_size, dtype=np.int64) if output_in_store(stage) else None
