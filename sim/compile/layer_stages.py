"""Layers beyond a convolution's fused 2x2 pool: standalone max / average pooling of any window
and stride, global average pooling and the residual addition (``golden.model`` format 3), mapped
onto the unchanged core by ``sim.compile.compiler.compile_model``, and the data-memory layout they
need.

Each such layer is one ``sim.compile.compiler.Stage`` whose chunks are *passes*: core runs built by
the compiler's own chunk planner (``sim.compile.compiler._plan_chunks``) on a view of the stage with
one
output channel, run on the multiply route (``and_bitcount``: ``sum x*w`` over a patch's terms,
exact). Patches are single windows gathered from the data memory through the patch and offset
tables as any convolution's (without padding every term is inside, so each entry's kernel
position is 0 and its mask 1; the patch mask's width limits no window). With seed 002's
``class_split`` the passes run on the multiply route's class, class B (the seed's sec. 3.3:
average pooling by the Sum and Shifter units of the class-B subarrays), their weight words
zero-extended to the mat.

* ``avg_pool2d`` (any kernel, stride) and ``global_avg_pool2d`` (the window is the whole map):
  one pass, a patch per output (channel-major, golden's flat layout), fan-in ``k`` = the window,
  every weight ``w``; the PPU's requantization ``clip((w*sum*m + b + 2**(s-1)) >> s)`` with
  ``(w, m, s, b)`` chosen by :func:`avg_requant` so that it equals golden's rounded-half-up mean
  ``floor((2*sum + k) / (2*k))`` for *every* sum in [0, 255*k] (checked exhaustively when
  compiling; a window for which no such entry exists is refused).
* padding (``golden.model`` format 6, p <= kernel // 2, so every window holds an input
  element): an average pool's patch entries are a padded convolution's (base the window's
  top-left element of the padded input, mod 2**16; offset ``ky*W + kx`` with kernel position
  ``ky*k + kx``; mask bit set iff the element is inside the image), so the gather reads the
  padding as 0 and the sum is over the input elements, divided by the whole window's ``k*k``:
  golden's ``count_include_pad`` mean exactly (the window's area must fit ``patch_mask_bits``).
  A max pool's padded elements are replaced by the window's first element inside the image
  (:func:`max_elems`): the maximum is idempotent, so each output is the maximum of its window's
  input elements, which is golden's (its padding, below every code, never wins). This needs no
  value range of the input (zero padding would too, for codes >= 0, but a repeated element is
  exact for any value and costs the same passes). A padded pool is never fused.
* ``max_pool2d`` (any kernel, stride): passes of the PPU's ``MAX4`` (the maximum of four
  consecutive steps): a patch is one element (fan-in 1, weight 1, requant entry ``(1, 0, 0)``:
  ``y = x``); pass 1 takes each window's elements in groups of four (the last group filled up
  by repeating its last element: the maximum is idempotent) and writes one word per group;
  each further pass does the same to the previous pass's words, until one word per window is
  left, written to the layer's output. Windows of up to 4 elements take one pass, up to 16 two.
* ``add``: per channel c one pass of fan-in 2 (the main path's element and the shortcut's,
  at offsets ``c*H*W`` and ``c*H*W + shortcut base - main base`` from a patch of channel 0's
  positions, one set of patch entries for all channels) with the weights ``weight[c]`` and the
  channel's requant entry: ``golden.layers.residual_add`` exactly.

Data memory (:class:`Layout`): every stage output and the model input is a tensor with a base;
a ``flatten`` is its input's tensor; a tensor lives from the stage that writes it to the last
stage that reads it (an ``add`` reads its shortcut too), and bases are assigned first-fit so
that tensors alive at the same time do not overlap; a max pool's intermediate words are two
scratch tensors alive during its stage. A 2x2 stride-2 pool right after a convolution stays
fused (``MAX4`` / ``AVG4``) unless the convolution's output is a shortcut or the pool is padded.

Branches (``golden.model``'s format-3 ``input`` array: a convolution that reads an earlier
layer's output, e.g. a ResNet's 1x1 stride-2 projection shortcut and the block's first
convolution, which both read the block input) are compute stages of the compiler's own routes
whose ``in_base`` is that layer's tensor; the layout keeps the tensor alive until its last reader
(``reads_of``), and a model with a branch always takes this layout.
"""

from __future__ import annotations

import math

import numpy as np

from golden import layers as L
from golden.model import Layer

__all__ = ["is_standalone", "Layout", "avg_requant", "build_stage", "layout_for", "finish",
           "reads_of", "has_branches", "pool_padding", "window", "windows", "avg_entries",
           "max_elems"]

_POOLS = ("max_pool2d", "avg_pool2d")


def _sources(layers) -> set:
    """Layers whose output a later layer reads besides the next one: an ``add``'s shortcut or
    a branch's input (``golden.model``'s ``input`` array, e.g. a projection shortcut)."""
    return ({int(ly.params["source"]) for ly in layers if ly.kind == "add"}
            | {int(ly.params["input"]) for ly in layers if "input" in ly.params})


def reads_of(layers, i: int) -> int:
    """The layer whose output layer ``i`` reads (-1: the model input): ``i - 1`` unless it
    is a branch (``golden.model.layer_input``)."""
    return int(layers[i].params.get("input", i - 1))


def has_branches(layers) -> bool:
    """Whether a layer reads another output than the previous layer's (these models need the
    layout of this module: the two-region layout holds only a chain)."""
    return any("input" in ly.params for ly in layers)


def is_standalone(layers, i: int) -> bool:
    """Whether layer ``i`` is mapped by this module (a stage of its own): a global average
    pool, an ``add``, or a pool that is not a 2x2 stride-2 pool fused into the convolution
    right before it (a convolution of any format, grouped ones on DIMA's lanes included,
    whose output no ``add`` reads)."""
    ly = layers[i]
    if ly.kind in ("global_avg_pool2d", "add"):
        return True
    if ly.kind not in _POOLS:
        return False
    prev = layers[i - 1] if i > 0 else None
    conv = prev is not None and (prev.is_conv or prev.is_grouped)
    fusable = (conv and i - 1 not in _sources(layers)
               and (int(ly.params["kernel"]), int(ly.params["stride"])) == (2, 2)
               and not pool_padding(ly))
    return not fusable


def pool_padding(ly) -> int:
    """A pool's ``padding`` (``golden.model`` format 6; 0 when absent)."""
    return int(ly.params.get("padding", 0))


def window(ly, in_shape) -> tuple:
    """``(kh, kw, stride, padding)`` of a standalone pool (a global average pool: the whole
    map, stride 1, no padding)."""
    _, h, w = in_shape
    if ly.kind == "global_avg_pool2d":
        return h, w, 1, 0
    k = int(ly.params["kernel"])
    return k, k, int(ly.params["stride"]), pool_padding(ly)


def windows(ly, in_shape, *, channels: int, row0: int, rows: int, wo: int, first: int = 0,
            hs: int | None = None) -> tuple:
    """The windows of pool ``ly`` (input ``in_shape`` = (C, H, W)) for output rows ``row0 ..
    row0 + rows - 1`` of ``channels`` channels, each ``wo`` wide, its input stored channel by
    channel, ``hs`` rows each (default H) from input row ``first``, at word 0 (input (c, y, x)
    at ``c*hs*W + (y - first)*W + x``). Returns ``(corner, elems, inside, kpos)``: per output
    (channel-major, then row, then column) the address of its window's top-left element (of
    the padded input: below 0 or outside a row where the window starts in the padding), the
    addresses of its ``kh*kw`` elements (row-major), whether each lies inside the image (not
    in the padding), and the element's kernel position ``ky*kw + kx``."""
    _, h, w = in_shape
    kh, kw, s, p = window(ly, in_shape)
    hs = h if hs is None else hs
    cc, yy, xx = np.meshgrid(np.arange(channels), np.arange(row0, row0 + rows),
                             np.arange(wo), indexing="ij")
    y0, x0 = (yy * s - p).ravel(), (xx * s - p).ravel()
    corner = cc.ravel() * hs * w + (y0 - first) * w + x0
    ky, kx = (v.ravel() for v in np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij"))
    elems = corner[:, None] + (ky * w + kx)[None, :]
    inside = (((y0[:, None] + ky) >= 0) & ((y0[:, None] + ky) < h)
              & ((x0[:, None] + kx) >= 0) & ((x0[:, None] + kx) < w))
    return corner, elems, inside, ky * kw + kx


def avg_entries(c, corner, inside, kpos, padding: int, where: str, config) -> tuple:
    """An averaging pass's patch entries ``(base, mask)`` and its terms' kernel positions.
    Without padding every term is inside: kernel position 0, mask 1 (the patch mask's width
    limits no window). With padding (``count_include_pad``: golden's ``avg_pool2d``) the
    entries are a convolution's (``sim.compile.compiler``'s gather tables): base the window's
    top-left element (mod 2**16), mask bit ``ky*kw + kx`` set iff that element is inside, so
    the padding reads as 0 and the sum is the window's input elements', divided by the whole
    window's ``kh*kw`` as golden divides; the window's area must fit ``patch_mask_bits``."""
    if not padding:
        return [(int(v) % c._ADDR_MOD, 1) for v in corner], np.zeros(len(kpos), np.int64)
    if len(kpos) > config.patch_mask_bits:
        c._too_small(f"{where}: a padded average pool's window of {len(kpos)} elements needs "
                     f"a patch-mask bit per element, but patch_mask_bits is "
                     f"{config.patch_mask_bits}", "patch_mask_bits", len(kpos))
    bit = np.array([1 << int(b) for b in kpos], dtype=object)   # Python ints: up to 121 bits
    mask = (inside.astype(object) * bit).sum(axis=1)
    return ([(int(b) % c._ADDR_MOD, int(m)) for b, m in zip(corner, mask, strict=True)],
            np.asarray(kpos, np.int64))


def max_elems(elems, inside) -> np.ndarray:
    """A max pool's window elements with every padded one replaced by the window's first
    element inside the image: the maximum is idempotent, so the maximum over the result is the
    maximum over the window's input elements, which is golden's ``max_pool2d`` with padding
    (a padding value below every code never wins; golden's bound ``padding <= kernel // 2``
    keeps an element inside every window). No padding: ``elems`` as they are."""
    if inside.all():
        return elems
    assert inside.any(axis=1).all(), "a window without an input element (padding > kernel // 2)"
    real = elems[np.arange(len(elems)), inside.argmax(axis=1)]
    return np.where(inside, elems, real[:, None])


def avg_requant(k: int, acc_bits: int):
    """``(w, m, s, b)``: a weight in [1, 127] and a requant entry (signed 16-bit ``m``, shift
    ``s``, bias ``b``) with ``clip((sum*w*m + b + 2**(s-1)) >> s, 0, 255) == floor((2*sum + k)
    / (2*k))`` for every ``sum`` in [0, 255*k] (golden's rounded average of ``k`` values), the
    accumulator ``w*sum`` within ``acc_bits`` signed bits and the datapath within
    ``golden.layers.RQ_BITS``; None if there is none. The smallest shift first, then the
    smallest weight."""
    sums = np.arange(L.ACT_MAX * k + 1, dtype=np.int64)
    q_all = (2 * sums + k) // (2 * k)
    # Within the sums of one quotient q, t = sum*w*m grows with the sum (w*m > 0): the lower
    # bound on b binds at the first sum of each q, the upper at the last. So the endpoints
    # decide for all sums, exactly.
    qs = np.unique(q_all)
    first = sums[np.searchsorted(q_all, qs, "left")]
    last = sums[np.searchsorted(q_all, qs, "right") - 1]
    mlim = (1 << (L.RQ_MULT_BITS - 1)) - 1
    for s in range(0, L.RQ_BITS - 1):
        half = (1 << (s - 1)) if s else 0
        for w in range(1, 128):
            if L.ACT_MAX * k * w > (1 << (acc_bits - 1)) - 1:
                break
            ideal = (1 << s) / (k * w)
            for m in sorted({math.floor(ideal), math.ceil(ideal)}):
                if not 1 <= m <= mlim:
                    continue
                lo = int((qs * (1 << s) - first * (w * m)).max()) - half
                hi = int(((qs + 1) * (1 << s) - last * (w * m)).min()) - half
                if lo < hi:
                    try:
                        L.check_requant_bound(L.ACT_MAX * k * w, np.array([m]), np.array([lo]),
                                              np.array([s]))
                    except ValueError:
                        continue
                    return w, m, s, lo
    return None


class Layout:
    """Data-memory bases of a model's tensors (module docstring).

    ``stages``: the stages in run order, each ``(golden index of its output, layers it reads
    (golden indices, -1 the input), scratch sizes)``; ``shapes``: ``model.shapes()``.
    ``base[t]``: the base of tensor t (a golden layer index or -1; ``("scratch", step, j)``
    for scratch); ``words``: the words they take.
    """

    def __init__(self, layers, shapes, stages):
        alias = {}
        for i, ly in enumerate(layers):
            alias[i] = alias[i - 1] if (ly.kind == "flatten" and i > 0) else (
                -1 if ly.kind == "flatten" else i)
        alias[-1] = -1
        self.alias = alias
        size = {-1: math.prod(shapes[0])}
        born, dies = {-1: -1}, {-1: -1}
        for step, (out, reads, scratch) in enumerate(stages):
            t = alias[out]
            size[t], born[t], dies[t] = math.prod(shapes[out + 1]), step, step
            for r in reads:
                dies[alias[r]] = max(dies[alias[r]], step)
            for j, n in enumerate(scratch):
                key = ("scratch", step, j)
                size[key], born[key], dies[key] = n, step, step
        placed: list = []                # (lo, hi, born, dies)
        self.base = {}
        for t in sorted(size, key=lambda t: (born[t], 0 if t == -1 else 1)):
            lo = 0
            for plo, phi, pb, pd in sorted(placed):
                overlap_time = not (dies[t] < pb or pd < born[t])
                if overlap_time and lo < phi and plo < lo + size[t]:
                    lo = phi
            placed.append((lo, lo + size[t], born[t], dies[t]))
            self.base[t] = lo
        self.words = max(hi for _, hi, _, _ in placed)

    def of(self, layer: int) -> int:
        """The base of golden layer ``layer``'s output (-1: the model input)."""
        return self.base[self.alias[layer]]


def _route(config, where, fail):
    """The multiply route (the passes' dots are ``sum x*w``), or a CompileError."""
    from sim.routes import RouteError, route_for
    probe = Layer("mul_conv2d", "requant", {"weight": np.ones((1, 1, 1, 1), np.int8)})
    try:
        return route_for(probe, config, where)
    except RouteError as e:
        fail(where, f"a standalone pool or add runs on the multiply route, which this "
             f"configuration does not map: add 'and_bitcount' to its routes ({e})")


def build_stage(c, *, model, li: int, layout: Layout, config, k: int, cursor: dict,
                imem_depth: int, step: int):
    """The ``sim.compile.compiler.Stage`` of layer ``li`` (``is_standalone``) with its passes as
    chunks. ``c`` is the ``sim.compile.compiler`` module (its Stage, planner and limit errors);
    ``cursor`` holds the next free ``slot``, ``chan``, ``obase``, ``pbase`` and gets the
    stage's ``images`` (weight-buffer rows), ``table`` entries, ``offsets``, ``patches``.
    """
    layers, shapes = model.layers, model.shapes()
    ly = layers[li]
    where = f"layer {li} ({ly.kind})"
    route = _route(config, where, c._fail)
    if "class_k" in cursor:     # a class split (seed 002): the route's class's subarrays only
        k = cursor["class_k"](route.name)
    n, cols = config.operand_bits, config.columns
    width = k * cols
    in_shape, out_shape = tuple(shapes[li]), tuple(shapes[li + 1])
    in_base, out_base = layout.of(li - 1), layout.of(li)
    scratch = route.scratch_rows(config)
    data_row0 = -(-len(scratch) // config.mtjs_per_strip) * config.mtjs_per_strip
    stage = c.Stage(
        name=f"layer{li} {ly.kind}", layer_index=li, golden_index=li, kind=ly.kind,
        output="requant", route=route.name, pool=None, mode="wide", in_shape=in_shape,
        out_shape=out_shape, dtype=np.uint8, out_channels=1, fan_in=1, tiles=1, n=n,
        subarrays=k, tile_width=width, group=1, buffer_base=cursor["slot"],
        channel_base=cursor["chan"], scratch_rows=scratch, data_row0=data_row0,
        in_base=in_base, out_base=out_base, offset_base=cursor["obase"],
        patch_base=cursor["pbase"], config=config)

    def run_pass(weight, offsets, entries, pass_out, pool, chan, shared=None, ahead=0,
                 kpos=None):
        """One pass: patches ``entries`` ((base, mask) in patch order), terms ``offsets``,
        weights ``weight`` (int8 [fan_in]), ``pool`` None / ``max`` (4 patches per word),
        requant channel ``chan``; its words from ``pass_out``. ``shared``: the patch-table
        base of an earlier pass of this stage with the same entries and shape (the same
        chunk plan, so the same table order): its entries are read, none are added.
        ``ahead``: passes of the same shape still to come in this stage, counted into a size
        this pass finds too small (so ``propose_config`` raises it once, not per pass).
        ``kpos``: the terms' kernel positions (default 0: every mask bit 0 set)."""
        pbase = cursor["pbase"] if shared is None else shared
        fan_in = len(offsets)
        mode = "segmented" if k > 1 and fan_in <= cols else "wide"
        tw = cols if mode == "segmented" else width
        tiles = -(-fan_in // tw)
        bound = L.conv_acc_bound("mul", fan_in)
        if bound > (1 << (config.acc_bits - 1)) - 1:
            c._fail(where, f"the accumulator can reach {bound} (fan-in {fan_in}), which does "
                    f"not fit acc_bits={config.acc_bits} signed bits")
        g = 4 if pool else 1
        view = c.Stage(
            name=stage.name, layer_index=li, golden_index=li, kind=ly.kind, output="requant",
            route=route.name, pool=pool, mode=mode, in_shape=in_shape,
            out_shape=(len(entries) // g,), dtype=np.uint8, out_channels=1, fan_in=fan_in,
            tiles=tiles, n=n, subarrays=k, tile_width=tw, group=g,
            buffer_base=cursor["slot"], channel_base=chan, scratch_rows=scratch,
            data_row0=data_row0, in_base=in_base, out_base=pass_out,
            offset_base=cursor["obase"], patch_base=pbase, config=config,
            order=np.arange(len(entries)))
        sizes = cursor["sizes"]
        for fld, n_need, what in (
                ("buffer_slots", cursor["slot"] + tiles * n * (1 + ahead),
                 "weight-buffer slots"),
                ("requant_channels", chan + 1 + ahead, "requant-table channels"),
                ("offset_entries", cursor["obase"] + fan_in * (1 + ahead),
                 "offset-table entries"),
                ("patch_entries", cursor["pbase"] + (0 if shared is not None else len(entries)),
                 "patch-table entries")):
            if n_need > sizes[fld]:
                c._too_small(f"{where}: the model needs {n_need} {what} up to this layer's "
                             f"pass" + (f" and the {ahead} like it after it" if ahead else "")
                             + f", but {fld} is {sizes[fld]}", fld, n_need)
        c._base(where, "weight-buffer slot", cursor["slot"] + tiles * n - 1)
        planes = c._weight_planes(np.asarray(weight, np.int8).reshape(1, -1), tiles, tw, n)
        image = np.tile(planes, (1, k)) if mode == "segmented" else planes
        cursor["images"].append(c._pad_to(image, cursor.get("width", image.shape[1])))
        cursor["slot"] += tiles * n
        kp = [0] * fan_in if kpos is None else [int(v) for v in kpos]
        cursor["offsets"] += [(int(o) % c._ADDR_MOD, q) for o, q in zip(offsets, kp,
                                                                          strict=True)]
        cursor["obase"] += fan_in
        c._plan_chunks(view, config, where, imem_depth=imem_depth)
        if shared is None:
            cursor["patches"] += c._table_order(view, entries)
            cursor["pbase"] += len(entries)
        for ch in view.chunks:
            ch.index = len(stage.chunks)
            stage.chunks.append(ch)
        cursor["ptr_end"] = max(cursor.get("ptr_end", 0),
                                max(pass_out + ch.out_start + view.positions
                                    for ch in view.chunks))

    if ly.kind in ("avg_pool2d", "global_avg_pool2d", "max_pool2d"):
        kh, kw, _, pad = window(ly, in_shape)
        corner, elems, inside, kpos = windows(ly, in_shape, channels=in_shape[0], row0=0,
                                              rows=out_shape[1], wo=out_shape[2])
        corner, elems = corner + in_base, elems + in_base
        win = elems[0] - corner[0]                              # the terms' offsets
        if ly.kind != "max_pool2d":
            found = avg_requant(kh * kw, config.acc_bits)
            if found is None:
                c._fail(where, f"no requant entry of the PPU (16-bit multiplier, weight up to "
                        f"127) rounds the average of {kh * kw} values exactly as golden does; "
                        f"a window of a power-of-two area runs (m = 1, shift log2 of the area)")
            wt, m, sh, b = found
            entries, kp = avg_entries(c, corner, inside, kpos, pad, where, config)
            if pad:
                stage.kernel = (kh, kw)         # propose_config: patch_mask_bits
            cursor["table"].append((m, sh, b))
            run_pass([wt] * (kh * kw), win, entries, out_base, None, cursor["chan"], kpos=kp)
            cursor["chan"] += 1
        else:
            cursor["table"].append((1, 0, 0))
            elems = max_elems(elems, inside)                  # [outputs, window] addresses
            scratch_bases = (layout.base.get(("scratch", step, 0)),
                             layout.base.get(("scratch", step, 1)))
            p = 0
            while True:
                groups = -(-elems.shape[1] // 4)
                full = np.concatenate([elems, np.repeat(elems[:, -1:], groups * 4
                                                        - elems.shape[1], axis=1)], axis=1)
                last = groups == 1
                dst = out_base if last else scratch_bases[p % 2]
                run_pass([1], [0], [(int(v) % c._ADDR_MOD, 1) for v in full.ravel()], dst,
                         "max", cursor["chan"])
                if last:
                    break
                elems = dst + np.arange(elems.shape[0] * groups).reshape(-1, groups)
                p += 1
            cursor["chan"] += 1
    else:                                   # add
        src = int(ly.params["source"])
        b_base = layout.of(src)
        ch_n = out_shape[0]
        per = math.prod(out_shape[1:])
        wts = ly.params["weight"]
        # The channels' passes share one set of patch entries (the main path's channel-0
        # positions); channel ch's terms sit at offsets ch*per and ch*per + (shortcut base -
        # main base).
        first = cursor["pbase"]
        entries = [((in_base + q) % c._ADDR_MOD, 1) for q in range(per)]
        for ch in range(ch_n):
            cursor["table"].append((int(ly.params["rq_mult"][ch]),
                                    int(ly.params["rq_shift"][ch]),
                                    int(ly.params["rq_bias"][ch])))
            run_pass([int(wts[ch, 0]), int(wts[ch, 1])],
                     [ch * per, b_base - in_base + ch * per], entries, out_base + ch * per,
                     None, cursor["chan"], shared=first if ch else None, ahead=ch_n - 1 - ch)
            cursor["chan"] += 1
    return stage


def scratch_sizes(layers, shapes, li: int) -> tuple:
    """Words of the two scratch tensors of a max pool's intermediate passes (none for other
    layers and for windows of at most 4 elements)."""
    ly = layers[li]
    if ly.kind != "max_pool2d":
        return ()
    outs = math.prod(shapes[li + 1])
    e = int(ly.params["kernel"]) ** 2
    sizes = []
    while e > 4:
        e = -(-e // 4)
        sizes.append(outs * e)
    return (sizes[0], sizes[1] if len(sizes) > 1 else 0) if sizes else ()


def _steps(model, plans, extras) -> list:
    """Run order: ``(layer index, golden index of the output, layers read, scratch sizes,
    plan or None)``."""
    layers, shapes = model.layers, model.shapes()
    out = [(ci, ci if pi is None else pi, (reads_of(layers, ci),), (), plan)
           for plan in plans for ci, pi in [plan[:2]]]
    for li in extras:
        reads = (li - 1,) + ((int(layers[li].params["source"]),)
                             if layers[li].kind == "add" else ())
        out.append((li, li, reads, scratch_sizes(layers, shapes, li), None))
    return sorted(out, key=lambda t: t[0])


def layout_for(model, plans, extras) -> Layout:
    """The data-memory layout of a model with standalone layers (``compile_model``'s plans:
    ``(compute index, fused pool index or None, route)``; ``extras``: standalone layer
    indices)."""
    steps = _steps(model, plans, extras)
    return Layout(model.layers, model.shapes(), [(o, r, s) for _, o, r, s, _ in steps])


def finish(c, *, model, config, k, layout, plans, extras, stages, cursor, sizes) -> list:
    """Build the standalone layers' stages after the compute stages (``cursor``: the next
    free slot, channel, table entries, and the lists to extend), check the totals against the
    configuration's sizes (``sizes``: field -> size), and return all stages in run order."""
    steps = _steps(model, plans, extras)
    cursor["sizes"] = sizes
    built = {}
    for step, (li, _, _, _, plan) in enumerate(steps):
        if plan is None:
            built[li] = build_stage(c, model=model, li=li, layout=layout, config=config, k=k,
                                    cursor=cursor, imem_depth=sizes["program_words"],
                                    step=step)
    by_layer = {st.layer_index: st for st in stages}
    by_layer.update(built)
    out = [by_layer[li] for li, *_ in steps]
    need = {"buffer_slots": (cursor["slot"], "weight-buffer slots"),
            "requant_channels": (cursor["chan"], "requant-table channels"),
            "offset_entries": (cursor["obase"], "offset-table entries"),
            "patch_entries": (cursor["pbase"], "patch-table entries")}
    ptr_end = max(st.out_base + ch.out_start + st.out_size for st in stages for ch in st.chunks)
    need["data_words"] = (max(layout.words, ptr_end, cursor.get("ptr_end", 0)),
                          "data-memory words (every live tensor, max-pool scratch and the "
                          "write pointer's last step)")
    for fld, (n, what) in need.items():
        if n > sizes[fld]:
            c._too_small(f"the model with its standalone layers (layers "
                         f"{', '.join(map(str, extras))}) needs {n} {what}, but {fld} is "
                         f"{sizes[fld]}", fld, n)
    return out
