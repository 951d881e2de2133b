"""Weight streaming: compute layers whose weights do not fit the weight buffer at once are
loaded into it while the image runs, a tile of output channels at a time
(``sim.compiler.compile_model(..., stream_weights=True)``), and what the loads cost.

Plan (:func:`region`): when the compute layers' weight-buffer slots (``sim.compiler``'s
``_slots_of``: tiles x planes (+ zero-tile dots) x output channels) add up to more than
``buffer_slots``, *every* compute layer on a generic route is streamed (ASSUMPTION: the
simplest policy; keeping the layers that fit resident would save their per-image loads and is
not built). The buffer is split into a *stream region*, slots ``0 .. S - 1``, and the resident
slots after it (seed 002's lanes layers, ``dima_binconv``, stay resident, and so do the
passes of ``sim.layer_stages``). ``S`` is the largest streamed layer's slots, at most the
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
writes its image (``Stage.weight_loads``: ``(chunk index, first slot, image)``), in every
image: the buffer holds the last tile when the image ends.

Cost (:func:`cost`): the streamed buffer words of one image, each ``W`` bits (the mat's row),
cross the chip's bus of :data:`sim.chip.PARAMS` ``bus_bits`` (seed 001 sec. 5.2: 128 bits)
at ``bus_transfers_per_cycle`` (ASSUMPTION there: one per core cycle): ``ceil(W / bus_bits)``
cycles per word, added to the image's latency (ASSUMPTION: not overlapped with the compute:
the core's buffer has one write port and the controller reads it during a run). Energy per
word: the weight buffer's SRAM write (``sim.sram.write_energy_pj`` of the configuration's
buffer) and the bus wires, ``W`` bits x :data:`sim.chip.PARAMS` ``wire_fj_per_bit_mm`` x
:data:`WIRE_MM` of the array (ASSUMPTION: the wire from the chip's I/O to the mat is half the
side of the configuration's MRAM array, ``sim.energy.array_area_mm2``, square; the chip model's
own rule with the array's area for the chip's).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

__all__ = ["region", "build_streamed", "streamed_slots", "cost", "wire_mm", "loads_before"]


def region(need: list, routes: list, buffer_slots: int, extras: bool):
    """``(first slot, slots)`` of the stream region (module docstring), from the planned
    stages' slots ``need`` and their route names ``routes``."""
    fixed = sum(u for u, r in zip(need, routes, strict=True) if r == "dima_binconv")
    avail = buffer_slots - fixed
    if extras:
        avail //= 2
    largest = max((u for u, r in zip(need, routes, strict=True) if r != "dima_binconv"),
                  default=0)
    return 0, max(1, min(largest, avail))


def build_streamed(c, stage, weight, route, config, stream, where: str, *, imem_depth: int,
                   width: int, groups: int = 1, images=None) -> list:
    """Split ``stage`` (a compute stage built by ``sim.compiler.compile_model``, chunks not
    yet planned) into views of its output channels and plan each view's chunks, appended to
    ``stage.chunks``; returns the stage's patch-table entries (every view reads the same).
    ``c`` is the ``sim.compiler`` module.

    With ``stream`` (the stream region, ``(first slot, slots)``): channel tiles of the region
    (module docstring), each tile's buffer image in ``stage.weight_loads``. Without: the views
    are resident from ``stage.buffer_base``, their images appended to ``images``. ``groups``
    > 1 (a grouped convolution, ``sim.grouped``): a view never spans two groups, and group g's
    views read the offset-table entries from ``stage.offset_base + g * fan_in`` (its input
    channels)."""
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
                           channel_base=stage.channel_base + o0,
                           out_base=stage.out_base + o0 * positions,
                           offset_base=stage.offset_base + g * stage.fan_in, zsum_base=zsum,
                           chunks=[], weight_loads=[])
            c._plan_chunks(view, config, where, imem_depth=imem_depth)
            if entries is None:
                entries = c._patch_entries(view)
            if stream is not None:
                stage.weight_loads.append((len(stage.chunks), base, np.concatenate(image)))
            else:
                images += image
                base += per_ch * (o1 - o0)
            for ch in view.chunks:
                ch.index = len(stage.chunks)
                stage.chunks.append(ch)
    if stream is not None:
        stage.buffer_base = stream[0]
    return entries


def loads_before(stage, chunk_index: int) -> list:
    """``(first slot, image)`` of the loads the host does before chunk ``chunk_index``."""
    return [(b, img) for at, b, img in stage.weight_loads if at == chunk_index]


def streamed_slots(compiled) -> list:
    """Per stage, the buffer words the host writes per image (0: resident)."""
    return [sum(len(img) for _, _, img in st.weight_loads) for st in compiled.stages]


def wire_mm(config) -> float:
    """The bus wire's length to the mat (module docstring), mm."""
    from sim.energy import array_area_mm2
    return math.sqrt(array_area_mm2(config)) / 2


def cost(compiled) -> dict:
    """What one image's weight loads cost (module docstring): ``slots`` (buffer words),
    ``bits``, ``bus_cycles``, ``energy_j`` (``sram_j`` + ``wire_j``), the parameters and
    their sources, and per stage the slots."""
    from sim import sram
    from sim.chip import PARAMS
    config = compiled.config
    per_stage = streamed_slots(compiled)
    slots = sum(per_stage)
    width = int(compiled.width)
    bus = int(PARAMS["bus_bits"].value) * PARAMS["bus_transfers_per_cycle"].value
    cycles = slots * math.ceil(width / bus)
    buf = {m.name: m for m in sram.core_memories(config, compiled.subarrays)}["weight buffer"]
    sram_j = slots * sram.write_energy_pj(buf.words, buf.bits) * 1e-12
    length = wire_mm(config)
    wire_j = slots * width * PARAMS["wire_fj_per_bit_mm"].value * length * 1e-15
    return {"slots": slots, "bits": slots * width, "bus_cycles": int(cycles),
            "energy_j": sram_j + wire_j, "sram_j": sram_j, "wire_j": wire_j,
            "wire_mm": length, "per_stage_slots": per_stage,
            "sources": {"bus_bits": PARAMS["bus_bits"].source,
                        "bus_transfers_per_cycle": PARAMS["bus_transfers_per_cycle"].source,
                        "wire_fj_per_bit_mm": PARAMS["wire_fj_per_bit_mm"].source,
                        "wire_mm": "ASSUMPTION: half the side of the square MRAM array "
                                   "(sim.weight_stream)",
                        "sram": "sim.sram.write_energy_pj of the weight buffer"}}
