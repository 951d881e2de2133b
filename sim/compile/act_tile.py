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
data memory while it runs). In this (chain) plan lanes routes in a model that needs tiling are
refused ("not built yet"), and so is a tiled linear layer (its one patch is the whole input);
in-memory post-processing is built (below). Models with standalone layers or branches take the
store mode below.
A grouped or depthwise layer (``sim.compile.grouped``) is banded the same way: its offset table
(every group's terms) built with ``Hs`` rows per channel, each band planned as
``sim.compile.weight_stream.build_streamed`` plans the layer (one view per group or channel
tile), its resident weights written once.

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

Standalone layers and branches (store mode, :func:`plan_store`): a model that takes
``sim.compile.layer_stages``' layout (standalone pools, ``add``, global average pooling, branches
reading an earlier output) and whose layout does not fit ``data_words`` keeps *every* tensor in the
store: each stage has the whole data memory to itself, loads what it reads from the store and
stores its output (ASSUMPTION: no stage-to-stage residency, the simplest plan; a resident chain
would save some of these moves). Every load names its source tensor (the golden index of the
output it reads, a ``flatten`` being its input's; -1 the image), so a branch or an ``add``'s
shortcut reading an earlier output is a load like any other. A compute stage whose input,
output and one channel's positions fit ``data_words`` is *whole* (input from word 0, output
after it, one load and one store, its patch entries resident); any other is banded as above.
A standalone layer is run in *units* of
``g`` channels x ``r`` output rows (:func:`build_standalone`): its output rows ``r0 .. r1``
need the input rows ``max(0, r0*s - p) .. min(H, (r1 - 1)*s - p + k)`` (the window's halo; p a
pool's padding, ``golden.model`` format 6, whose windows are ``sim.compile.layer_stages``'
``windows``: padded elements of a max pool replaced by one of its window's, masked ones of an
average pool), loaded channel by channel contiguously from word 0 (the ``add``'s second operand
after the first), the unit then being the layer itself on that sub-tensor: the passes of
``sim.compile.layer_stages`` (the ``MAX4`` passes of a max pool with their two scratch tensors
after the output, one averaging pass of an average or global pool, one fan-in-2 pass per
channel of an ``add``), the output after the input, stored channel by channel. Units of the same
shape (channels, rows, input rows: at most four per layer) run the same chunk programs and
read the same patch-table entries, which are resident, and passes with equal entries share
them across layers. The unit (``_unit``): the most output rows with one channel, then (when
that is the whole map) the most channels, such that the unit's input, output, scratch and the
write pointer's end fit ``data_words`` and one shape's patch entries fit ``patch_entries //
16`` (ASSUMPTION: leaves the rest of the table to the resident stages and the other standalone
layers; the compiler names ``patch_entries`` if the sum still does not fit). An ``add``'s
weights and requant entries are per channel: every ``add`` reads them from one shared region
of the largest unit's channels (buffer slots and requant entries after the resident ones), the
host writing a unit's channels' entries before its first chunk (``Stage.weight_loads``,
counted and costed as ``sim.compile.weight_stream``'s loads), so the table holds no ``add``'s
whole channel count. Not built yet: lanes layers, in-memory post-processing, splitting a compute
stage's bands by column, and a model whose untiled layout fits ``data_words`` but whose write
pointer's last step does not (the compiler asks for a larger ``data_words``).

In-memory post-processing (seed 001 sec. 4.2, ``sim.compile.nand_postproc``; chain plan only,
``postproc`` ``mixed`` or ``in_memory``): a tiled stage that may post-process in memory (a
requant convolution, not grouped, no streamed weights) is banded with room for its raw sums:
the band's input from word 0, its output at ``out_base = C*Hs*W``, its raw sums at ``sums =
out_base + O*rows*Wq`` (g = 4 per output with a fused 2x2 pool, else 1; window position q of
lane L at ``sums + g L + q``), ``rows`` the largest with ``C*Hs*W + O*rows*Wq + g*O*rows*Wq +
g*rows*Wq <= data_words`` (the last term: the LOGIT chunks' write pointer's end); if one row
does not fit, ``mixed`` bands it for the PPU and says why (``Plan.no_room``), ``in_memory``
names ``data_words``. Each band's view is compiled by ``nand_postproc.plan_stage``
(``_bands_in_memory``): its LOGIT chunks, then its requantization / pooling programs, which
SCATTER the band's output to ``out_base``; every address in them is band-independent, so bands
of equal height share programs and their buffer words (the per-lane scale and bias words: one
resident set per band height), the lane offsets are resident, and the band's patch region
holds its dot products' entries and then the ``g`` entries per row of lanes into the sums, all
written by the host per band (ASSUMPTION: the simplest; the sums' entries are the same for every
band of a height and could be resident). A resident stage of a tiled model keeps its sums in
the free words of its output half (after the output) or else of its input half
(``sim.compile.compiler._resident_sums``). Store mode stays on the PPU (its reason names it).

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

__all__ = ["Plan", "plan", "plan_store", "place_whole", "build_standalone",
           "finish_store", "alias", "resolve", "offset_rows", "build_tiled", "link",
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
        self.store = False                       # store mode (plan_store): every tensor stored
        self.units: dict[int, tuple] = {}        # standalone layer -> (channels, rows) a unit
        self.sums: dict[int, bool] = {}          # tiled si -> its bands hold raw sums (in memory)
        self.no_room: dict[int, str] = {}        # tiled si -> why its bands cannot hold them


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


def _fits(geo, rows: int, half: int, sums: bool = False) -> tuple:
    """(input words, pointer words) of the largest band of ``rows`` rows; ``sums``: with the
    raw sums of the in-memory post-processing after the output (module docstring)."""
    c, h, w, kh, kw, s, p, f, (o, hq, wq) = geo
    hs, _ = _bands(geo, rows)
    rows = min(rows, hq)
    if sums:
        # the output, then g = f*f sums per output, the LOGIT chunks' write pointer ending
        # below one position count (g x the band's outputs per channel) past the sums
        g = f * f
        return c * hs * w, o * rows * wq + g * o * rows * wq + g * rows * wq
    # the write pointer ends at out_base + a chunk's start + the band's output: below
    # out_base + (O + 1) x the band's positions
    return c * hs * w, (o + 1) * rows * wq


def _stages(model, plans, shapes, config, fail, store: bool = False):
    """Per planned compute stage: ``(si, pi, route, layer, where, in_shape, out_shape)``;
    in store mode refuses (not built yet) in-memory post-processing first (:func:`plan_store`;
    the chain plan :func:`plan` builds it)."""
    from sim.compile import layer_stages as _ls
    layers = model.layers
    if store and config.postproc == "in_memory":
        fail("the model", NOT_BUILT.format(what="in-memory post-processing (postproc="
                                                 "'in_memory')"))
    for si, (ci, pi, route) in enumerate(plans):
        ly = layers[ci]
        yield (si, pi, route, ly, f"layer {ci} ({ly.kind})",
               tuple(shapes[_ls.reads_of(layers, ci) + 1]),
               tuple(shapes[(ci if pi is None else pi) + 1]))


def _band(c, out, si, ly, in_shape, out_shape, pi, where, config, width: int = 0) -> None:
    """Plan stage ``si`` in bands of as many output rows as fit the whole data memory (input
    rows with the halo, output and the write pointer's end) into ``out``; a data memory too
    small for one row is the compiler's message to raise ``data_words``. ``width``: the lanes
    of a mat row when the stage may post-process in memory (module docstring, "In-memory
    post-processing"): the bands then hold its raw sums too (``out.sums``), unless one row of
    them does not fit (``out.no_room``; ``postproc='in_memory'`` raises ``data_words``)."""
    dw = config.data_words
    geo = _geometry(ly, in_shape, out_shape, pi is not None)
    g = 4 if pi is not None else 1
    if width:
        rows = next((r for r in range(out_shape[1], 0, -1)
                     if sum(_fits(geo, r, dw, sums=True)) <= dw), 0)
        if rows:
            out.sums[si] = True
            hs, bands = _bands(geo, rows)
            out.bands[si] = (rows, hs, bands)
            lanes = out_shape[0] * min(rows, out_shape[1]) * out_shape[2]
            out.patch_region = max(out.patch_region, min(rows, out_shape[1]) * out_shape[2] * g
                                   + g * -(-lanes // width))
            return
        words, ptr = _fits(geo, 1, dw, sums=True)
        why = (f"{where}: one band of 1 output row with its raw sums (postproc "
               f"'{config.postproc}', seed 001 sec. 4.2) needs {words} data-memory words for "
               f"its input rows and {ptr} for its output, sums and the write pointer's end, "
               f"but data_words is {dw}")
        if config.postproc == "in_memory":
            c._too_small(why, "data_words", words + ptr)
        out.no_room[si] = why
    rows = next((r for r in range(out_shape[1], 0, -1) if sum(_fits(geo, r, dw)) <= dw), 0)
    if rows == 0:
        words, ptr = _fits(geo, 1, dw)
        c._too_small(f"{where}: one band of 1 output row needs {words} data-memory words "
                     f"for its input rows (with the kernel's halo) and {ptr} for its "
                     f"output (and the write pointer's end), but data_words is {dw}",
                     "data_words", words + ptr)
    hs, bands = _bands(geo, rows)
    out.bands[si] = (rows, hs, bands)
    out.patch_region = max(out.patch_region, min(rows, out_shape[1]) * out_shape[2]
                           * (4 if pi is not None else 1))


def _check_patch_region(c, out, config) -> None:
    """The bands' patch entries must fit the patch table (else raise ``patch_entries``)."""
    if out.patch_region > config.patch_entries:
        c._too_small(f"the bands' patch-table region needs {out.patch_region} entries (one "
                     f"band's patches), but patch_entries is {config.patch_entries}",
                     "patch_entries", out.patch_region)


def plan(c, model, plans, shapes, config, fail, *, inmem=frozenset(), width: int = 0) -> Plan:
    """The tiling of every planned compute stage (module docstring); ``c`` is
    ``sim.compile.compiler``, ``plans`` its planned stages, ``fail(where, msg)``
    its error; ``inmem``: the stage indices that may post-process in memory (their bands hold
    the raw sums too), ``width`` the lanes of a mat row. Raises the compiler's CompileError for
    what is not built and (naming the layer, ``data_words`` and the size that holds one band)
    for a data memory too small for a band."""
    half = config.data_words // 2
    out = Plan(half)
    for si, pi, route, ly, where, in_shape, out_shape in _stages(model, plans, shapes,
                                                                 config, fail):
        # resident: the input fits its half, and so does the write pointer (the output plus a
        # chunk's start, less than one channel's positions)
        big = (math.prod(in_shape) > half
               or math.prod(out_shape) + math.prod(out_shape[1:]) > half)
        out.tiled[si] = big
        if not big:
            continue
        if route.name == "dima_binconv":
            fail(where, NOT_BUILT.format(what=f"a lanes layer (route {route.name})") + f": its "
                 f"activations ({math.prod(in_shape)} input, {math.prod(out_shape)} output "
                 f"words) exceed half the data memory ({half}); raise data_words")
        if not (ly.is_conv or ly.is_grouped):
            c._too_small(f"{where}: a linear layer's input ({math.prod(in_shape)} words) and "
                         f"output ({math.prod(out_shape)}) are one patch and can not be split "
                         f"into bands, but half the data memory is {half} words (data_words "
                         f"{config.data_words})", "data_words",
                         2 * max(math.prod(in_shape), math.prod(out_shape)))
        _band(c, out, si, ly, in_shape, out_shape, pi, where, config,
              width if si in inmem else 0)
    _check_patch_region(c, out, config)
    return out


def offset_rows(tplan, si: int, h: int) -> int:
    """The input rows per channel the offset table of stage ``si`` assumes: ``Hs`` for a
    tiled stage, else ``h``."""
    if tplan is None or si not in tplan.bands:
        return h
    return tplan.bands[si][1]


def build_tiled(c, stage, si: int, tplan, weight, route, config, stream, where: str, *,
                imem_depth: int, width: int, table=None, layer=None, groups: int = 1,
                images=None, inmem=None) -> list:
    """Plan the chunks of the tiled stage ``stage`` (stage index ``si``) band by band (module
    docstring), appended to ``stage.chunks`` (with ``stage.weight_loads`` when ``stream``),
    and its moves to ``stage.act_moves``; returns its resident patch-table entries (none:
    each band's are loaded with it). A grouped layer (``groups`` > 1,
    ``sim.compile.grouped``) is planned per band as ``sim.compile.weight_stream.build_streamed``
    plans it, its resident weights appended to ``images`` once (every band reads the same
    slots). ``inmem``: post-process each band in memory (``_bands_in_memory``)."""
    if inmem is not None:
        return _bands_in_memory(c, stage, si, tplan, config, where, imem_depth=imem_depth,
                                width=width, layer=layer, inmem=inmem)
    rows, hs, bands = tplan.bands[si]
    cin, h, w = stage.in_shape
    o, hq, wq = stage.out_shape
    stage.in_base, stage.out_base = 0, cin * hs * w     # the whole data memory (docstring)
    g = stage.group
    planned = {}            # (patches, rows) -> a band's chunks, weight loads, first tile's
    for r0, r1, a, b in bands:
        p0, p1 = r0 * wq * g, r1 * wq * g
        view = _band_view(stage, p0, p1, a, r1 - r0)
        key = (p1 - p0, r1 - r0)
        if key in planned:      # the same programs as an earlier band of as many patches
            chunks, loads, first_tile = planned[key]
            view.chunks = [replace(ch, stage=view) for ch in chunks]
            view.weight_loads = list(loads)
            part = c._patch_entries(replace(view, chunks=view.chunks[:first_tile]))
        elif stream is not None or groups > 1:
            from sim.compile import weight_stream as _ws
            part = _ws.build_streamed(c, view, weight, route, config, stream, where,
                                      imem_depth=imem_depth, width=width, table=table,
                                      layer=layer, groups=groups,
                                      images=images if not planned else [])
        else:
            c._plan_chunks(view, config, where, imem_depth=imem_depth)
            part = c._patch_entries(view)
        if key not in planned:
            tiles = [at for at, *_ in view.weight_loads]
            planned[key] = (list(view.chunks), list(view.weight_loads),
                            tiles[1] if len(tiles) > 1 else len(view.chunks) // groups)
        first, last = len(stage.chunks), len(stage.chunks) + len(view.chunks) - 1
        _band_moves(stage, first, last, part, (a, b, r0, r1, hs))
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


def _band_view(stage, p0: int, p1: int, a: int, rows: int, **extra):
    """The view of a band (module docstring): patches ``p0 .. p1`` of the stage's order, its
    input rows from ``a`` at word 0 (``in_base - a*W``), ``rows`` output rows, patch entries
    from 0, no chunks or moves yet."""
    o, _, wq = stage.out_shape
    return replace(stage, order=stage.order[p0:p1],
                   in_base=(stage.in_base - a * stage.in_shape[2]) % _ADDR_MOD,
                   out_shape=(o, rows, wq), patch_base=0, chunks=[], weight_loads=[],
                   act_moves=[], **extra)


def _band_moves(stage, first: int, last: int, part, geo) -> None:
    """A band's moves (module docstring): its patch entries and input rows before chunk
    ``first``, its output after chunk ``last``; ``geo``: ``(a, b, r0, r1, hs)``."""
    a, b, r0, r1, hs = geo
    cin, h, w = stage.in_shape
    o, hq, wq = stage.out_shape
    stage.act_moves.append((first, "patch", 0, tuple(part), len(part)))
    for ci in range(cin):
        stage.act_moves.append((first, "load", stage.in_base + ci * hs * w,
                                ci * h * w + a * w, (b - a) * w))
    n = (r1 - r0) * wq
    for oc in range(o):
        stage.act_moves.append((last, "store", stage.out_base + oc * n,
                                oc * hq * wq + r0 * wq, n))


def _bands_in_memory(c, stage, si: int, tplan, config, where: str, *, imem_depth: int,
                     width: int, layer, inmem: dict) -> list:
    """The tiled stage ``si`` with seed 001's in-memory post-processing per band (module
    docstring, "In-memory post-processing"): each band's view planned by
    ``sim.compile.nand_postproc.plan_stage`` (its LOGIT chunks writing the band's raw sums at
    ``sums = out_base + O x rows x Wq``, then its post-processing programs writing the band's
    output at ``out_base``), bands of equal height sharing programs and buffer words; the
    band's patch entries (the dot products', then the sums') written by the host per band.
    ``inmem``: ``nand`` (the module), ``cursor`` ``(slot, offset entry)`` (updated),
    ``lists`` ``(images, offsets, (mults, shifts, biases))``. Returns [] (every patch entry
    is a band's)."""
    nand = inmem["nand"]
    images, offsets, table = inmem["lists"]
    rows, hs, bands = tplan.bands[si]
    cin, h, w = stage.in_shape
    o, hq, wq = stage.out_shape
    g = stage.group
    stage.in_base, stage.out_base = 0, cin * hs * w     # the whole data memory (docstring)
    sums = stage.out_base + o * rows * wq
    stage.postproc_ops = {}
    planned = {}                # band rows -> (chunks, the sums' patch entries, ops)
    for r0, r1, a, b in bands:
        p0, p1 = r0 * wq * g, r1 * wq * g
        view = _band_view(stage, p0, p1, a, r1 - r0, postproc_ops={})
        if r1 - r0 not in planned:
            entries: list = []
            slot, obase = inmem["cursor"]
            slot, obase, _ = nand.plan_stage(
                c, view, layer, config, where, width=width, region=tplan.half,
                cursor=(slot, obase, 0), lists=(images, offsets, entries, table),
                imem_depth=imem_depth, sums_base=sums, limit=config.data_words)
            inmem["cursor"] = (slot, obase)
            planned[r1 - r0] = (list(view.chunks), entries[p1 - p0:], view.postproc_ops)
        chunks, post, ops = planned[r1 - r0]
        dots = [ch for ch in chunks if ch.patches]          # the LOGIT chunks (the rest: 0)
        dot_view = replace(view, output="logits", pool=None, group=1,
                           out_shape=(o, p1 - p0), chunks=dots)
        part = c._patch_entries(dot_view) + list(post)
        first = len(stage.chunks)
        _band_moves(stage, first, first + len(chunks) - 1, part, (a, b, r0, r1, hs))
        for name, d in ops.items():
            tot = stage.postproc_ops.setdefault(name, {})
            for k, v in d.items():
                tot[k] = tot.get(k, 0) + v
        for ch in chunks:
            stage.chunks.append(replace(ch, stage=view, index=len(stage.chunks)))
    return []


def link(stages, tplan, layers=None) -> None:
    """The whole-tensor moves between a resident and a tiled stage (module docstring), and
    every load's source tensor (:func:`resolve`)."""
    if tplan is None:
        return
    if tplan.store:                     # every stage's moves are its own (finish_store)
        resolve(stages, layers)
        return
    for si in range(len(stages) - 1):
        a, b = stages[si], stages[si + 1]
        ta, tb = tplan.tiled.get(si, False), tplan.tiled.get(si + 1, False)
        if ta and not tb:
            b.act_moves.insert(0, (0, "load", b.in_base, 0, b.in_size))
        elif tb and not ta:
            a.act_moves.append((len(a.chunks) - 1, "store", a.out_base, 0, a.out_size))
    resolve(stages, layers)


def resolve(stages, layers) -> None:
    """Name the source tensor of every load that does not (the stage's input: the golden
    index of the output it reads, :func:`alias`; -1 the image): ``(chunk index, "load",
    address, offset, words, source)``."""
    from sim.compile import layer_stages as _ls
    for st in stages:
        src = alias(layers, _ls.reads_of(layers, st.layer_index))
        st.act_moves = [m + (src,) if m[1] == "load" and len(m) == 5 else m
                        for m in st.act_moves]


def loads_before(stage, index: int) -> list:
    """``(data-memory address, tensor offset, words, source)`` the host loads before chunk
    ``index`` (``source``: the golden index of the tensor, -1 the image)."""
    return [m[2:] for m in getattr(stage, "act_moves", ()) if m[0] == index and m[1] == "load"]


def stores_after(stage, index: int) -> list:
    """``(data-memory address, output offset, words)`` the host stores after chunk ``index``."""
    return [m[2:5] for m in getattr(stage, "act_moves", ())
            if m[0] == index and m[1] == "store"]


def output_in_store(stage) -> bool:
    """Whether the stage's whole output is in the store after it ran (its stores cover it)."""
    return sum(m[4] for m in getattr(stage, "act_moves", ()) if m[1] == "store") \
        == stage.out_size


def input_in_store(compiled) -> bool:
    """Whether the first stage reads the image from the store (a tiled first stage)."""
    return any(m[1] == "load" for m in getattr(compiled.stages[0], "act_moves", ()))


def moved_words(compiled) -> list:
    """Per stage, ``(loaded, stored)`` data-memory words of one image."""
    return [(sum(m[4] for m in getattr(st, "act_moves", ()) if m[1] == "load"),
             sum(m[4] for m in getattr(st, "act_moves", ()) if m[1] == "store"))
            for st in compiled.stages]


def patch_loads(compiled) -> list:
    """Per stage, the patch-table entries the host writes per image (the bands')."""
    return [sum(m[4] for m in getattr(st, "act_moves", ()) if m[1] == "patch")
            for st in compiled.stages]


def patches_before(stage, index: int) -> list:
    """``(first entry, [(base, mask)])`` the host writes into the patch table before chunk
    ``index`` (a band's entries)."""
    return [m[2:4] for m in getattr(stage, "act_moves", ())
            if m[0] == index and m[1] == "patch"]


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


def run_loads(stage, index: int, write, store, write_patch=None) -> int:
    """Do the loads before chunk ``index``: ``write(address, value)`` for each word of the
    store's tensors (``store``: golden index -> flat words, -1 the image),
    ``write_patch(entry, base, mask)`` for each patch-table entry of a band; returns the
    words moved (patch entries not counted)."""
    moved = 0
    for e0, entries in patches_before(stage, index):
        for i, (base, mask) in enumerate(entries):
            write_patch(e0 + i, base, mask)
    for d, t, n, src in loads_before(stage, index):
        source = store[src]
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


# ---- models with standalone layers or branches: every tensor in the store ---------------------

def alias(layers, t: int) -> int:
    """The tensor layer ``t``'s output is (a ``flatten`` is its input's; -1 the image)."""
    while t >= 0 and layers[t].kind == "flatten":
        t -= 1
    return t


def plan_store(c, model, plans, extras, shapes, config, fail) -> Plan:
    """The store-mode tiling (module docstring, "Standalone layers and branches") of every
    planned compute stage and every standalone layer (``extras``); ``c``, ``plans``,
    ``fail`` as :func:`plan`. Refuses (not built yet) lanes layers, in-memory
    post-processing."""
    dw = config.data_words
    out = Plan(dw)
    out.store = True
    for si, pi, route, ly, where, in_shape, out_shape in _stages(model, plans, shapes,
                                                                 config, fail, store=True):
        if route.name == "dima_binconv":
            fail(where, NOT_BUILT.format(what=f"a lanes layer (route {route.name}) in a model "
                                              f"with standalone layers or branches"))
        whole = (math.prod(in_shape) + math.prod(out_shape) + math.prod(out_shape[1:]) <= dw)
        out.tiled[si] = not whole
        if whole:
            continue
        if not (ly.is_conv or ly.is_grouped):
            c._too_small(f"{where}: a linear layer's input ({math.prod(in_shape)} words) and "
                         f"output ({math.prod(out_shape)}) are one patch and can not be split "
                         f"into bands, but data_words is {dw}", "data_words",
                         math.prod(in_shape) + 2 * math.prod(out_shape))
        _band(c, out, si, ly, in_shape, out_shape, pi, where, config)
    _check_patch_region(c, out, config)
    out.units = {li: _unit(c, model, li, config, len(extras)) for li in extras}
    return out


def place_whole(stage) -> None:
    """A whole (not banded) compute stage in store mode: its input from word 0, its output
    right after it."""
    stage.in_base, stage.out_base = 0, stage.in_size


def _window(ly, in_shape):
    """``(operands, kh, kw, stride)`` of a standalone layer (an ``add`` reads two
    operands, elementwise)."""
    if ly.kind == "add":
        return 2, 1, 1, 1
    from sim.compile import layer_stages as _ls
    return (1, *_ls.window(ly, in_shape)[:3])


def _max_levels(e: int) -> list:
    """A max pool's elements per output at each pass's input (module docstring of
    ``sim.compile.layer_stages``): ``[e, ceil(e / 4), ...]`` down to at most 4."""
    out = [e]
    while out[-1] > 4:
        out.append(-(-out[-1] // 4))
    return out


def _unit_need(ly, in_shape, out_shape, g: int, r: int) -> tuple:
    """``(data-memory words, patch entries)`` of a unit of ``g`` channels and ``r`` output
    rows of a standalone layer (module docstring)."""
    ops, kh, kw, s = _window(ly, in_shape)
    _, h, w = in_shape
    wo = out_shape[2]
    hb = min(h, (r - 1) * s + kh)
    outs = g * r * wo
    if ly.kind == "max_pool2d":
        lv = _max_levels(kh * kw)
        scratch = [outs * e for e in lv[1:]][:2]
        entries = outs * sum(4 * -(-e // 4) for e in lv)
    else:
        scratch = []
        entries = r * w if ly.kind == "add" else outs
    words = ops * g * hb * w + outs + sum(scratch) + max([outs, *scratch])
    return words, entries


def _unit(c, model, li: int, config, n_extra: int) -> tuple:
    """``(g, r)``: channels and output rows of one unit of standalone layer ``li``: the most
    output rows (up to the whole map) with one channel, then the most channels, whose
    data-memory words fit ``data_words`` and whose patch entries fit
    ``patch_entries // 16`` (ASSUMPTION, module docstring)."""
    ly = model.layers[li]
    shapes = model.shapes()
    in_shape, out_shape = tuple(shapes[li]), tuple(shapes[li + 1])
    ch, ho = out_shape[0], out_shape[1]
    budget = max(1, config.patch_entries // 16)

    def ok(g, r):
        words, entries = _unit_need(ly, in_shape, out_shape, g, r)
        return words <= config.data_words and entries <= budget

    r = next((r for r in range(ho, 0, -1) if ok(1, r)), 0)
    if r == 0:
        words, entries = _unit_need(ly, in_shape, out_shape, 1, 1)
        if words > config.data_words:
            c._too_small(f"layer {li} ({ly.kind}): one channel's output row needs {words} "
                         f"data-memory words (its input rows, output and scratch), but "
                         f"data_words is {config.data_words}", "data_words", words)
        c._too_small(f"layer {li} ({ly.kind}): one channel's output row needs {entries} "
                     f"patch-table entries, more than a sixteenth of patch_entries "
                     f"({config.patch_entries})", "patch_entries", 16 * entries)
    g = 1
    if r == ho:
        lo, hi = 1, ch
        while lo < hi:                  # the words and entries grow with g
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if ok(mid, r) else (lo, mid - 1)
        g = lo
    return g, r


def _pass(c, stage, *, route, k, config, where, slot, chan, obase, fan_in, entries, out,
          pool, cursor, dedupe, imem_depth) -> tuple:
    """The chunks of one pass of a standalone layer's unit (``sim.compile.layer_stages``'
    passes) on resources the caller allocated: ``entries`` ``(base, mask)`` per patch (from
    data-memory word 0), ``out`` its first output word. A pass whose entries, fan-in, pool
    and mat equal an earlier one's (any stage's) reads that pass's patch-table entries (the
    same chunk plan, so the same table order); others append theirs. Returns ``(chunks, the
    write pointer's end)``."""
    n, cols = config.operand_bits, config.columns
    mode = "segmented" if k > 1 and fan_in <= cols else "wide"
    tw = cols if mode == "segmented" else k * cols
    g = 4 if pool else 1
    key = (tuple(entries), fan_in, pool, k, route.name)
    pbase = dedupe.get(key, cursor["pbase"])
    view = c.Stage(
        name=stage.name, layer_index=stage.layer_index, golden_index=stage.golden_index,
        kind=stage.kind, output="requant", route=route.name, pool=pool, mode=mode,
        in_shape=stage.in_shape, out_shape=(len(entries) // g,), dtype=np.uint8,
        out_channels=1, fan_in=fan_in, tiles=-(-fan_in // tw), n=n, subarrays=k,
        tile_width=tw, group=g, buffer_base=slot, channel_base=chan,
        scratch_rows=stage.scratch_rows, data_row0=stage.data_row0, in_base=0,
        out_base=out, offset_base=obase, patch_base=pbase, config=config,
        order=np.arange(len(entries)))
    c._plan_chunks(view, config, where, imem_depth=imem_depth)
    if key not in dedupe:
        dedupe[key] = pbase
        cursor["patches"] += c._table_order(view, entries)
        cursor["pbase"] += len(entries)
    return view.chunks, max(out + ch.out_start + view.positions for ch in view.chunks)


def _image(c, weight, k: int, config, cursor) -> np.ndarray:
    """The weight-buffer rows of one pass's weights (as ``sim.compile.layer_stages``)."""
    n, cols = config.operand_bits, config.columns
    fan_in = len(weight)
    seg = k > 1 and fan_in <= cols
    tw = cols if seg else k * cols
    planes = c._weight_planes(np.asarray(weight, np.int8).reshape(1, -1), -(-fan_in // tw),
                              tw, n)
    image = np.tile(planes, (1, k)) if seg else planes
    return c._pad_to(image, cursor.get("width", image.shape[1]))


def _alloc(c, cursor, where, *, slots=0, image=None, width=0, chans=(), offsets=(),
           kpos=None) -> tuple:
    """Allocate ``slots`` weight-buffer words (``image`` or zeros), requant entries
    ``chans`` and offset entries ``offsets`` at the cursor (zeros ``width`` columns wide);
    returns their first slot,
    channel and offset entry."""
    at = (cursor["slot"], cursor["chan"], cursor["obase"])
    if slots:
        c._base(where, "weight-buffer slot", cursor["slot"] + slots - 1)
        cursor["images"].append(image if image is not None else
                                np.zeros((slots, width), dtype=bool))
        cursor["slot"] += slots
    if chans:
        c._base(where, "requant channel base", cursor["chan"] + len(chans) - 1)
        cursor["table"] += list(chans)
        cursor["chan"] += len(chans)
    kpos = [0] * len(offsets) if kpos is None else kpos
    cursor["offsets"] += [(int(o) % _ADDR_MOD, int(q)) for o, q in zip(offsets, kpos,
                                                                        strict=True)]
    cursor["obase"] += len(offsets)
    return at


def build_standalone(c, *, model, li: int, config, k: int, cursor: dict, imem_depth: int,
                     unit: tuple, shared: dict):
    """The store-mode ``sim.compile.compiler.Stage`` of standalone layer ``li`` (module
    docstring): its units of ``unit = (g, r)`` channels and output rows, each loading its
    input rows (both operands of an ``add``) from the store, its passes, its output stored.
    ``cursor`` as ``sim.compile.layer_stages.build_stage``'s; ``shared``: ``dedupe`` (patch
    entries of the passes so far) and the ``add`` weight region (``add_slot``,
    ``add_chan``, ``add_g``)."""
    from golden import layers as L
    from sim.compile import layer_stages as _ls
    layers, shapes = model.layers, model.shapes()
    ly = layers[li]
    where = f"layer {li} ({ly.kind})"
    route = _ls._route(config, where, c._fail)
    if "class_k" in cursor:
        k = cursor["class_k"](route.name)
    n = config.operand_bits
    in_shape, out_shape = tuple(shapes[li]), tuple(shapes[li + 1])
    ch_n, h, w = in_shape
    _, ho, wo = out_shape
    ops, kh, kw, s = _window(ly, in_shape)
    pad = _ls.window(ly, in_shape)[3] if ops == 1 else 0
    scratch = route.scratch_rows(config)
    stage = c.Stage(
        name=f"layer{li} {ly.kind}", layer_index=li, golden_index=li, kind=ly.kind,
        output="requant", route=route.name, pool=None, mode="wide", in_shape=in_shape,
        out_shape=out_shape, dtype=np.uint8, out_channels=1, fan_in=1, tiles=1, n=n,
        subarrays=k, tile_width=k * config.columns, group=1, buffer_base=cursor["slot"],
        channel_base=cursor["chan"], scratch_rows=scratch,
        data_row0=-(-len(scratch) // config.mtjs_per_strip) * config.mtjs_per_strip,
        in_base=0, out_base=0, offset_base=cursor["obase"], patch_base=cursor["pbase"],
        config=config)
    g, r = unit
    ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    win = (ky * w + kx).ravel()
    for fan_in in ({kh * kw} if ly.kind != "max_pool2d" else {1}) | ({2} if ops == 2 else set()):
        bound = L.conv_acc_bound("mul", fan_in)
        if bound > (1 << (config.acc_bits - 1)) - 1:
            c._fail(where, f"the accumulator can reach {bound} (fan-in {fan_in}), which does "
                    f"not fit acc_bits={config.acc_bits} signed bits")
    if ly.kind in ("avg_pool2d", "global_avg_pool2d"):
        found = _ls.avg_requant(kh * kw, config.acc_bits)
        if found is None:
            c._fail(where, f"no requant entry of the PPU (16-bit multiplier, weight up to "
                    f"127) rounds the average of {kh * kw} values exactly as golden does; "
                    f"a window of a power-of-two area runs (m = 1, shift log2 of the area)")
        wt, m, sh, b = found
        img = _image(c, [wt] * (kh * kw), k, config, cursor)
        kp = (ky * kw + kx).ravel() if pad else None       # padded: masked terms (layer_stages)
        slot, chan, obase = _alloc(c, cursor, where, slots=len(img), image=img,
                                   chans=[(m, sh, b)], offsets=win, kpos=kp)
        if pad:
            stage.kernel = (kh, kw)             # propose_config: patch_mask_bits
    elif ly.kind == "max_pool2d":
        img = _image(c, [1], k, config, cursor)
        slot, chan, obase = _alloc(c, cursor, where, slots=len(img), image=img,
                                   chans=[(1, 0, 0)], offsets=[0])
    else:                                           # add: the shared region (module docstring)
        if "add_slot" not in shared:
            per = len(_image(c, [0, 0], k, config, cursor))
            shared["add_per"] = per
            shared["add_slot"], shared["add_chan"], _ = _alloc(
                c, cursor, where, slots=per * shared["add_g"],
                width=cursor.get("width", k * config.columns),
                chans=[(1, 0, 0)] * shared["add_g"])
        src = alias(layers, int(ly.params["source"]))
    main = alias(layers, li - 1)
    built = {}                                      # (gg, rr, hb) -> the unit's chunks
    dw = config.data_words
    for c0 in range(0, ch_n, g):
        gg = min(g, ch_n - c0)
        for r0 in range(0, ho, r):
            rr = min(r, ho - r0)
            a = max(0, r0 * s - pad)            # the unit's input rows a .. b - 1
            b = min(h, (r0 + rr - 1) * s - pad + kh)
            hb = b - a
            key = (gg, rr, hb, a - (r0 * s - pad))  # with padding: which rows are padding
            out = ops * gg * hb * w                 # the unit's output, after its input
            if key not in built:
                chunks, end = [], 0
                if ly.kind == "add":
                    per = rr * w
                    o0 = _alloc(c, cursor, where, offsets=[v for j in range(gg)
                                                           for v in (j * per, gg * hb * w
                                                                     + j * per)])[2]
                    entries = [(q, 1) for q in range(per)]
                    for j in range(gg):
                        part, e = _pass(c, stage, route=route, k=k, config=config,
                                        where=where, slot=shared["add_slot"]
                                        + j * shared["add_per"], chan=shared["add_chan"] + j,
                                        obase=o0 + 2 * j, fan_in=2, entries=entries,
                                        out=out + j * per, pool=None, cursor=cursor,
                                        dedupe=shared["dedupe"], imem_depth=imem_depth)
                        chunks += part
                        end = max(end, e)
                else:
                    corner, elems, inside, kpos = _ls.windows(
                        ly, in_shape, channels=gg, row0=r0, rows=rr, wo=wo, first=a, hs=hb)
                    if ly.kind != "max_pool2d":
                        entries = _ls.avg_entries(c, corner, inside, kpos, pad, where,
                                                  config)[0]
                        chunks, end = _pass(c, stage, route=route, k=k, config=config,
                                            where=where, slot=slot, chan=chan, obase=obase,
                                            fan_in=kh * kw, entries=entries, out=out,
                                            pool=None, cursor=cursor, dedupe=shared["dedupe"],
                                            imem_depth=imem_depth)
                    else:
                        outs = gg * rr * wo
                        elems = _ls.max_elems(elems, inside)
                        lv = _max_levels(kh * kw)
                        sc = (out + outs, out + outs + outs * (lv[1] if len(lv) > 1 else 0))
                        p = 0
                        while True:
                            groups = -(-elems.shape[1] // 4)
                            full = np.concatenate([elems, np.repeat(
                                elems[:, -1:], groups * 4 - elems.shape[1], axis=1)], axis=1)
                            last = groups == 1
                            dst = out if last else sc[p % 2]
                            part, e = _pass(c, stage, route=route, k=k, config=config,
                                            where=where, slot=slot, chan=chan, obase=obase,
                                            fan_in=1, entries=[(int(v), 1)
                                                               for v in full.ravel()],
                                            out=dst, pool="max", cursor=cursor,
                                            dedupe=shared["dedupe"], imem_depth=imem_depth)
                            chunks += part
                            end = max(end, e)
                            if last:
                                break
                            elems = dst + np.arange(outs * groups).reshape(-1, groups)
                            p += 1
                if end > dw:
                    c._too_small(f"{where}: a unit of {gg} channels and {rr} output rows "
                                 f"needs the write pointer up to word {end}, but data_words "
                                 f"is {dw}", "data_words", end)
                built[key] = chunks
            first = len(stage.chunks)
            for ch in built[key]:
                stage.chunks.append(replace(ch, index=len(stage.chunks)))
            last_i = len(stage.chunks) - 1
            if ly.kind == "add" and r0 == 0:        # the group's weights and requant entries
                img = np.concatenate([_image(c, [int(ly.params["weight"][ci, 0]),
                                                 int(ly.params["weight"][ci, 1])],
                                             k, config, cursor)
                                      for ci in range(c0, c0 + gg)])
                tbl = [(int(ly.params["rq_mult"][ci]), int(ly.params["rq_shift"][ci]),
                        int(ly.params["rq_bias"][ci])) for ci in range(c0, c0 + gg)]
                stage.weight_loads.append((first, shared["add_slot"], img,
                                           (shared["add_chan"], tbl)))
            for op, t in enumerate((main, src) if ops == 2 else (main,)):
                base = op * gg * hb * w
                if hb == h:                         # whole channels: one contiguous move
                    stage.act_moves.append((first, "load", base, c0 * h * w, gg * h * w, t))
                else:
                    stage.act_moves += [(first, "load", base + j * hb * w,
                                         (c0 + j) * h * w + a * w, hb * w, t)
                                        for j in range(gg)]
            if rr == ho:
                stage.act_moves.append((last_i, "store", out, c0 * ho * wo, gg * ho * wo))
            else:
                stage.act_moves += [(last_i, "store", out + j * rr * wo,
                                     (c0 + j) * ho * wo + r0 * wo, rr * wo) for j in range(gg)]
    stage.act_bands = -(-ch_n // g) * -(-ho // r)
    return stage


def finish_store(c, *, model, config, k, layout, plans, extras, stages, cursor, sizes,
                 tplan) -> list:
    """Store mode's ``sim.compile.layer_stages.finish``: build the standalone layers' stages
    (:func:`build_standalone`), give every whole compute stage its load and store, check the
    totals against ``sizes``, and return all stages in run order."""
    from sim.compile import layer_stages as _ls
    layers = model.layers
    steps = _ls._steps(model, plans, extras)
    shared = {"dedupe": {},
              "add_g": max([tplan.units[li][0] for li in extras if layers[li].kind == "add"],
                           default=0)}
    built = {li: build_standalone(c, model=model, li=li, config=config, k=k, cursor=cursor,
                                  imem_depth=sizes["program_words"], unit=tplan.units[li],
                                  shared=shared) for li in extras}
    for st in stages:
        if st.act_bands:
            continue
        src = alias(layers, _ls.reads_of(layers, st.layer_index))
        st.act_moves = [(0, "load", st.in_base, 0, st.in_size, src),
                        (len(st.chunks) - 1, "store", st.out_base, 0, st.out_size)]
        end = max(st.out_base + ch.out_start + st.out_size for ch in st.chunks)
        if end > sizes["data_words"]:
            c._too_small(f"{st.name}: its chunks' write pointer ends at word {end}, but "
                         f"data_words is {sizes['data_words']}", "data_words", end)
    by_layer = {st.layer_index: st for st in stages}
    by_layer.update(built)
    need = {"buffer_slots": (cursor["slot"], "weight-buffer slots"),
            "requant_channels": (cursor["chan"], "requant-table channels"),
            "offset_entries": (cursor["obase"], "offset-table entries"),
            "patch_entries": (cursor["pbase"], "patch-table entries")}
    for fld, (n, what) in need.items():
        if n > sizes[fld]:
            c._too_small(f"the model with its standalone layers (layers "
                         f"{', '.join(map(str, extras))}) needs {n} {what}, but {fld} is "
                         f"{sizes[fld]}", fld, n)
    return [by_layer[li] for li, *_ in steps]
