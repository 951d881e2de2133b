"""Weight streaming: compute layers whose weights do not fit the weight buffer at once are
loaded into it while the image runs, a tile of output channels at a time
(``sim.compile.compiler.compile_model(..., stream_weights=True)``), and what the loads cost.

Plan (:func:`region`): when the compute layers' weight-buffer slots (``sim.compile.compiler``'s
``_slots_of``: tiles x planes (+ zero-tile dots) x output channels) add up to more than
``buffer_slots``, *every* compute layer on a generic route is streamed (ASSUMPTION: the
simplest policy; keeping the layers that fit resident would save their per-image loads and is
not built). The buffer is split into a *stream region*, slots ``0 .. S - 1``, and the resident
slots after it (seed 002's lanes layers, ``dima_binconv``, stay resident, and so do the
passes of ``sim.compile.layer_stages``). ``S`` is the largest streamed layer's slots, at most the
buffer less the resident lanes layers; with standalone layers (pools, ``add``) at most half of
that (ASSUMPTION: their passes' slots are known only once they are built; half the buffer is
left to them).

Channel tiles (:func:`build_streamed`): a streamed layer of ``O`` output channels, ``u`` slots
per channel (tiles x (planes + zero-tile dot)), is split into tiles of ``floor(S / u)``
channels. Each channel tile is the layer's own stage restricted to those channels (the
compiler's chunk planner on a view with ``out_channels`` the tile's, its weights at slot 0, its
requant channels and output words those of the tile's channels, ``out_base + o0 * H*W`` in
golden's channel-major layout); the view's chunks, in tile order, are the stage's chunks. So
every channel tile gathers the layer's patches again (the chunk programs are gather + compute;
the host cannot write the buffer while a program runs). Before a tile's first chunk the host
writes its image (``Stage.weight_loads``: ``(chunk index, first slot, image, table)``), in
every image: the buffer holds the last tile when the image ends.

The requant table likewise (:func:`table_region`): when the compute layers' output channels
exceed ``requant_channels`` (with ``stream_weights``), the table's entries ``0 .. T - 1`` are a
stream region (``T`` the table, half of it with standalone layers, whose passes' entries stay
resident after it), a channel tile holds at most ``T`` channels, and its entries are written
with its weights (``table``: ``(first entry, [(mult, shift, bias)])``).

In-memory post-processing of a streamed layer (``postproc`` ``in_memory`` or ``mixed``, seed 001
sec. 4.2, ``sim.compile.nand_postproc.plan_stage``): the channel tiles' chunks write *raw sums*
(LOGIT, requant entries ``(1, 0, 0)``, streamed with the tiles when the table is) into the data
memory after the activations; after the last tile the layer's post-processing programs run, as
the resident layer's, in *batches* of rows of lanes. ASSUMPTION: post-processing after the last
tile, not per tile (the programs work on a mat row of lanes, which spans channels of several
tiles, and the sums of a tile would have to leave the array before the next tile's dot products
reuse its rows; one pass over the sums after the last tile needs neither). Before each batch the
host writes the words its programs read into the stream region (``Stage.postproc_loads``, as
``weight_loads``: ``(chunk index, first slot, image, None)``): the all-ones word (first batch
only: slot ``first + 4``, no weight is written after it) and per row of lanes its ``m_bits``
scale and ``p_bits`` bias words (slots ``first + 5 ..``); slots ``first .. first + 3`` are the
programs' scratch (written by the programs before they are read). A batch is as many rows as
the region holds; the region must hold one row (``4 + 1 + m_bits + p_bits`` words; :func:`region`
makes it that large when the buffer allows, ``least``), else ``in_memory`` raises
``buffer_slots`` (:func:`buffer_for`) and ``mixed`` post-processes the layer on the PPU. Not built
(``in_memory`` refuses, ``mixed`` uses the PPU): grouped layers and streamed layers whose
activations are tiled in bands (``sim.compile.act_tile``).

Cost (:func:`cost`): the streamed buffer words of one image (the in-memory post-processing's
words too, charged alike), each ``W`` bits (the mat's row), and requant entries (``rtl.ppu``
``MULT_BITS + SHIFT_BITS + BIAS_BITS`` bits each) cross the chip's bus of
``sim.hw.chip.PARAMS["bus_bits"]`` (seed 001 sec. 5.2: 128 bits) at
``bus_transfers_per_cycle`` (ASSUMPTION there: one per core cycle): ``ceil(bits / bus_bits)``
cycles per word (entry), added to the image's latency (ASSUMPTION: not overlapped with the
compute: the core's buffer has one write port and the controller reads it during a run).
Energy per word: the weight buffer's (requant table's) SRAM write (``sim.hw.sram.write_energy_pj``
of the configuration's memory) and the bus wires, its bits x
``sim.hw.chip.PARAMS["wire_fj_per_bit_mm"]`` x :func:`wire_mm` (ASSUMPTION: the wire from the
chip's I/O to the mat is half the side of the configuration's MRAM array,
``sim.hw.energy.array_area_mm2``, square; the chip model's own rule with the array's area for the
chip's).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

__all__ = ["region", "buffer_for", "table_region", "build_streamed", "streamed_slots",
           "streamed_entries", "postproc_slots", "cost", "wire_mm", "loads_before"]


def region(need: list, routes: list, buffer_slots: int, extras: bool, least: int = 0):
    """``(first slot, slots)`` of the stream region (module docstring), from the planned
    stages' slots ``need`` and their route names ``routes``; ``least``: the words one row of
    lanes' in-memory post-processing needs there (0: none), the region at least that large
    when the buffer allows it."""
    fixed = sum(u for u, r in zip(need, routes, strict=True) if r == "dima_binconv")
    avail = buffer_slots - fixed
    if extras:
        avail //= 2
    largest = max((u for u, r in zip(need, routes, strict=True) if r != "dima_binconv"),
                  default=0)
    return 0, max(1, min(max(largest, least), avail))


def buffer_for(words: int, need: list, routes: list, extras: bool) -> int:
    """The ``buffer_slots`` whose stream region (:func:`region`) holds ``words`` slots: the
    resident lanes layers' slots plus ``words`` (twice ``words`` with standalone layers)."""
    fixed = sum(u for u, r in zip(need, routes, strict=True) if r == "dima_binconv")
    return fixed + words * (2 if extras else 1)


def table_region(total: int, channels: int, extras: bool):
    """``(first entry, entries)`` of the requant table's stream region (module docstring):
    the whole table, or half of it with standalone layers (their passes' entries are
    resident after it)."""
    return 0, max(1, channels // 2 if extras else channels)


def _entries(layer, o0: int, o1: int, raw: bool = False) -> list:
    """The requant entries ``(mult, shift, bias)`` of ``layer``'s channels o0 .. o1 - 1 (a
    logits layer: ``(1, 0, bias)``; ``raw``: ``(1, 0, 0)``, the LOGIT writing the raw sum for
    the in-memory post-processing)."""
    p = layer.params
    if raw:
        return [(1, 0, 0)] * (o1 - o0)
    if layer.output == "logits":
        return [(1, 0, int(b)) for b in p["bias"][o0:o1]]
    return [(int(m), int(s), int(b)) for m, s, b in zip(
        p["rq_mult"][o0:o1], p["rq_shift"][o0:o1], p["rq_bias"][o0:o1], strict=True)]


def build_streamed(c, stage, weight, route, config, stream, where: str, *, imem_depth: int,
                   width: int, groups: int = 1, images=None, table=None, layer=None,
                   raw_sums: bool = False) -> list:
    """Split ``stage`` (a compute stage built by ``sim.compile.compiler.compile_model``, chunks not
    yet planned) into views of its output channels and plan each view's chunks, appended to
    ``stage.chunks``; returns the stage's patch-table entries (every view reads the same).
    ``c`` is the ``sim.compile.compiler`` module.

    With ``stream`` (the stream region, ``(first slot, slots)``): channel tiles of the region
    (module docstring), each tile's buffer image in ``stage.weight_loads``. Without: the views
    are resident from ``stage.buffer_base``, their images appended to ``images``. ``groups``
    > 1 (a grouped convolution, ``sim.compile.grouped``): a view never spans two groups, and group
    g's
    views read the offset-table entries from ``stage.offset_base + g * fan_in`` (its input
    channels). With ``table`` (the requant table's stream region) the tile's requant entries
    (of ``layer``) are loaded with its weights, into the region from its first entry;
    ``raw_sums``: the entries are ``(1, 0, 0)`` (the raw sums of the in-memory
    post-processing, ``sim.compile.nand_postproc.plan_stage``)."""
    n, tiles, kp, tw = stage.n, stage.tiles, stage.subarrays, stage.tile_width
    zs = c._zero_skips(route, config, kp * config.columns)
    per_ch = tiles * (n + zs)
    out_ch = stage.out_channels
    og = out_ch // groups
    if stream is not None:
        base, size = stream
        per_tile = size // per_ch
        if per_tile < 1:
            c._too_small(f"{where}: one output channel's weights take {per_ch} weight-buffer "
                         f"slots ({tiles} tiles x {n + zs} words), but the stream region has "
                         f"{size} (buffer_slots is {config.buffer_slots})", "buffer_slots",
                         config.buffer_slots + per_ch - size)
        if table is not None:
            per_tile = min(per_tile, table[1])
    else:
        base, per_tile = stage.buffer_base, og
    positions = stage.positions
    entries = None
    for g in range(groups):
        for o0 in range(g * og, (g + 1) * og, per_tile):
            o1 = min((g + 1) * og, o0 + per_tile)
            w = weight[o0:o1]
            planes = c._weight_planes(w, tiles, tw, n)
            image = [c._pad_to(np.tile(planes, (1, kp)) if stage.mode == "segmented"
                               else planes, width)]
            zsum = None
            if zs:
                zsum = base + tiles * n * (o1 - o0)
                image.append(c._pad_to(c._zero_tile_dots(w, tiles, tw, kp * config.columns),
                                       width))
            c._base(where, "weight-buffer slot", base + per_ch * (o1 - o0) - 1)
            view = replace(stage, out_channels=o1 - o0,
                           out_shape=(o1 - o0, *stage.out_shape[1:]), buffer_base=base,
                           channel_base=(stage.channel_base + o0 if table is None
                                         else table[0]),
                           out_base=stage.out_base + o0 * positions,
                           offset_base=stage.offset_base + g * stage.fan_in, zsum_base=zsum,
                           chunks=[], weight_loads=[])
            c._plan_chunks(view, config, where, imem_depth=imem_depth)
            if entries is None:
                entries = c._patch_entries(view)
            if stream is not None:
                tbl = None if table is None else (table[0], _entries(layer, o0, o1, raw_sums))
                stage.weight_loads.append((len(stage.chunks), base, np.concatenate(image),
                                           tbl))
            else:
                images += image
                base += per_ch * (o1 - o0)
            for ch in view.chunks:
                ch.index = len(stage.chunks)
                stage.chunks.append(ch)
    if stream is not None:
        stage.buffer_base = stream[0]
    return entries


def _loads(stage) -> list:
    """The stage's host writes of the buffer: its weights' and its in-memory
    post-processing's (module docstring)."""
    return list(stage.weight_loads) + list(getattr(stage, "postproc_loads", ()))


def loads_before(stage, chunk_index: int) -> list:
    """``(first slot, image, table)`` of the loads the host does before chunk
    ``chunk_index`` (``table``: ``(first channel, [(mult, shift, bias)])`` or None), the
    weights' first, then the in-memory post-processing's words."""
    return [(b, img, t) for at, b, img, t in _loads(stage) if at == chunk_index]


def streamed_slots(compiled) -> list:
    """Per stage, the buffer words the host writes per image (0: resident), the in-memory
    post-processing's words of a streamed layer included."""
    return [sum(len(img) for _, _, img, _ in _loads(st)) for st in compiled.stages]


def postproc_slots(compiled) -> list:
    """Per stage, the buffer words of those the host writes per image for its in-memory
    post-processing (``Stage.postproc_loads``; 0: none)."""
    return [sum(len(img) for _, _, img, _ in getattr(st, "postproc_loads", ()))
            for st in compiled.stages]


def streamed_entries(compiled) -> list:
    """Per stage, the requant-table entries the host writes per image."""
    return [sum(len(t[1]) for *_, t in st.weight_loads if t is not None)
            for st in compiled.stages]


def wire_mm(config) -> float:
    """The bus wire's length to the mat (module docstring), mm."""
    from sim.hw.energy import array_area_mm2
    return math.sqrt(array_area_mm2(config)) / 2


def cost(compiled) -> dict:
    """What one image's loads cost (module docstring): ``slots`` (buffer words, the in-memory
    post-processing's of which in ``postproc_slots``), ``entries`` (requant-table entries),
    ``bits``, ``bus_cycles``, ``energy_j`` (``sram_j`` +
    ``wire_j``), the parameters and their sources, and ``per_stage`` the same per stage."""
    from rtl.ppu import BIAS_BITS, MULT_BITS, SHIFT_BITS
    from sim.hw import sram
    from sim.hw.chip import PARAMS
    config = compiled.config
    width = int(compiled.width)
    entry_bits = MULT_BITS + SHIFT_BITS + BIAS_BITS
    bus = int(PARAMS["bus_bits"].value) * PARAMS["bus_transfers_per_cycle"].value
    mem = {m.name: m for m in sram.core_memories(config, compiled.subarrays)}
    buf, tbl = mem["weight buffer"], mem["requant table"]
    length = wire_mm(config)
    wire = PARAMS["wire_fj_per_bit_mm"].value * length * 1e-15          # J per bit

    def one(slots, entries):
        bits = slots * width + entries * entry_bits
        sram_j = (slots * sram.write_energy_pj(buf.words, buf.bits)
                  + entries * sram.write_energy_pj(tbl.words, tbl.bits)) * 1e-12
        return {"slots": slots, "entries": entries, "bits": bits,
                "bus_cycles": int(slots * math.ceil(width / bus)
                                  + entries * math.ceil(entry_bits / bus)),
                "energy_j": sram_j + bits * wire, "sram_j": sram_j, "wire_j": bits * wire}

    per_stage = [one(s_, e_) for s_, e_ in zip(streamed_slots(compiled),
                                               streamed_entries(compiled), strict=True)]
    for p, pp in zip(per_stage, postproc_slots(compiled), strict=True):
        p["postproc_slots"] = pp
    out = one(sum(p["slots"] for p in per_stage), sum(p["entries"] for p in per_stage))
    out.update(postproc_slots=sum(p["postproc_slots"] for p in per_stage), wire_mm=length,
               per_stage=per_stage,
               sources={"bus_bits": PARAMS["bus_bits"].source,
                        "bus_transfers_per_cycle": PARAMS["bus_transfers_per_cycle"].source,
                        "wire_fj_per_bit_mm": PARAMS["wire_fj_per_bit_mm"].source,
                        "wire_mm": "ASSUMPTION: half the side of the square MRAM array "
                                   "(sim.compile.weight_stream)",
                        "sram": "sim.hw.sram.write_energy_pj of the weight buffer and the "
                                "requant table"})
    return out
