"""A network on several mats: every compute layer's output channels split into one contiguous
slice per mat, all mats in parallel, each stage's output broadcast over the chip's bus to every
mat (issue 15 item 3; ``python -m sim.analysis.counting --mats M``).

Partition (:func:`partition`). The model's layers are cut into *segments*: a segment is one
compute layer (``adder_conv2d``, ``mul_conv2d``, ``adder_linear``, ``mul_linear``) with the
channel-wise layers after it (``max_pool2d``, ``avg_pool2d``, ``global_avg_pool2d``), and the
``flatten`` before it when it is a linear layer. For ``M`` mats the compute layer's ``O``
output channels (output neurons) are split into ``M`` contiguous slices, the first ``O mod M``
one channel larger (``numpy.array_split``'s rule). Mat ``m``'s program for the segment is the
segment with the compute layer's weights, requantization parameters (``rq_mult``, ``rq_shift``,
``rq_bias``) or logits ``bias`` cut to its slice, compiled for one mat by the existing
``sim.compile.compiler.compile_model``. A pool or global pool works channel by channel, so it
follows the slicing on the mat that computed its channels and nothing crosses the bus between
a compute layer and its pools. Every mat reads the segment's *whole* input (a convolution's
output channel reads every input channel; a linear neuron every input), so after a segment the
mats' slices are concatenated (channel order = golden's flat (C, H, W) order, so the flat
vector a linear layer reads is the same concatenation) and broadcast to every mat.

Grouped and depthwise convolutions (``adder_gconv2d``, ``mul_gconv2d``, ``bin_gconv2d``; ``g``
groups of ``O/g`` output and ``C/g`` input channels; one group: as a dense layer, by output
channel) are sliced by *whole groups*: the ``g`` groups are
split into ``M`` contiguous slices by the same rule (at most ``g`` mats), mat ``m`` gets its
groups' output channels and reads only its groups' input channels (``Segment.in_slices``; its
slice is a grouped convolution of fewer groups, compiled as any, ``sim.compile.grouped``). The
broadcast before it still carries the whole tensor (every mat listens; it keeps its channels).

Layers before the first compute layer (pools) join its segment and run on every mat, each on
the input it reads (the whole image, or its groups' channels before a grouped layer): every mat
needs the whole pooled tensor. ASSUMPTION ``pool_first``: the pool is repeated on every mat
(its cycles and energy counted on every mat) rather than run on one mat and its output
broadcast: no bus transfer and no wait, at the price of ``M`` times the pool's energy.

Residual ``add`` and branches. An ``add`` is elementwise per channel, so it is channel-wise as
a pool is: it joins the segment of the compute layer before it (its main path), and mat ``m``
adds its own channels. Its shortcut, and a branch's input (golden's ``input`` array: a
convolution reading an earlier layer's output, e.g. a projection shortcut and the block's first
convolution), must be a tensor every mat holds: the model input or an earlier segment's output
(a segment's last layer, broadcast); a shortcut inside the add's own segment (a sliced layer
after the compute layer) is on the same mat already. Anything else (an output inside another
segment, never broadcast) is refused. Traffic ASSUMPTION ``kept``: such a tensor costs no
transfer beyond its segment's broadcast (the image: segment 0's image load, then the whole
image to every mat); each mat keeps it in its data memory from that broadcast to its last
reader (``kept``), placed first-fit from the top of the data memory, and each slice's own
words (its stages' inputs, outputs and write-pointer steps, compiled from address 0) must stay
below the tensors kept while it runs, else a one-line CompileError names ``data_words`` and the
size to raise it to. A branch's segment reads its input where it is kept (the program's bases
relocated: the counters do not depend on them); the check still counts the segment's own input
region (an upper bound on the words). The slice of a segment with such an add is compiled with
the add reading its main path twice (a valid one-input model of the same shapes, so the same
program, tables and counters), then the add's shortcut terms in the offset table are pointed at
the kept tensor's channels (``_relocate``): the slice run on the cycle model with the kept
tensors in its data memory equals golden (``tests/test_multi_mat.py``).

Kept tensors with tiled activations (``_kept_in_store``). When some slice of the model has its
activations tiled (``sim.compile.act_tile``; or, with ``tile_activations``, when the data
memories cannot keep the tensors), the kept tensors live in the chip's activation store
instead (ASSUMPTION ``kept_in_store``: a segment's hand-off also reaches the store, as one bus
transfer reaches every mat, or goes there only, ``to_store`` below, and the store's own access
energy is not counted, as
``act_tile``'s), and nothing is kept in the data memories. Each reader loads what it reads:
an add in a slice in ``act_tile``'s store mode loads both operands from the store, and its
second operand's loads (its main path, the slice compiled reading it twice) are pointed at
the slice's channels of the kept tensor (``kept_key``); a resident slice's add has its
channels of the kept tensor loaded by the host into its data memory just before the add, at
the lowest address clear of the add's input and writes (``_free_region``; a CompileError
naming ``data_words`` when none fits), its shortcut terms relocated there; a branch's
resident first stage loads its whole input (the segment's input) from the store. A mat's
loads of its segment's input are the same words for every mat of its slice width (counted
once per width, broadcast); its stores, its own intermediate tensors' loads and its channels
of a kept tensor cross the shared bus as its own words, one mat after the other. The slices
run on the cycle model with the kept tensors in their store (``store_of``,
``run_compiled``'s ``store``) equal golden (``tests/test_multi_mat.py``). So ResNet-18/50 at
224 x 224 partition. Not built yet (a one-line MultiMatError): an add right after a flatten
or before the first compute layer.

Binarized grouped layers (``bin_gconv2d``, seed 002's FA/FS lanes, ``sim.compile.dima_map``)
are sliced as the other grouped layers: a depthwise one by whole groups, a pointwise one (one
group) by output channel, with their per-channel quantization thresholds and signs
(``q_thresh``, ``q_sign``); each slice is compiled for one mat as any.

A mat's slice is not a network of its own (golden's format wants a ``logits`` last layer; a
slice of a hidden layer ends in ``requant``), so it is a ``golden.model.Model`` built directly,
without ``golden.model.make_model``'s whole-network check; its layers are the model's, each
already validated, with fewer output channels.

Figures (:func:`count_partitioned`, the counting mode ``sim.analysis.counting``, per mat equal
to the cycle model counter for counter; ``tests/test_multi_mat.py``). Per segment ``s`` and mat
``m``: the counters of its programs (``sim.analysis.counting.count_model``), its host-port
cycles (the image's data words in segment 0, as the single mat; the program words loaded, with
the single mat's rule that a program already in the instruction memory is not loaded again;
streamed weights and tiled activations, ``sim.compile.weight_stream`` /
``sim.compile.act_tile``) and its energy (``sim.hw.energy.estimate`` as the counting mode).

* a segment's cycles = the slowest mat's (counters + host-port cycles of the image and the
  programs) + the tiled activations' loads of the segment's input and patch entries
  (``sim.compile.act_tile``) once per slice width (mats of equal slices load the same bands:
  broadcast) + every mat's own words one mat after the other over the one shared bus (streamed
  weights, ``sim.compile.weight_stream``; the tiled activations' stores and the loads of its
  own tensors and of its channels of a kept tensor; tables reloaded, below:
  ASSUMPTION, the bus carries one mat's words at a time) + the broadcast of the segment's output
  (segments but the last, ``M > 1``): ``max(N, ceil(32 N / bus_bits))`` = N cycles for N
  output words. The image and the programs: mats of equal slices run the same program words
  (only their weights differ), so they are broadcast as the output is (at most two distinct
  program sets per segment, 64-bit words on the 128-bit bus: within the ports' cycles).
  ASSUMPTION ``broadcast``: one bus transfer reaches every mat (every mat listens to the bus),
  and each mat's data memory takes one 32-bit word per cycle through its host port
  (``sim.compile.act_tile``'s rule), so the receiving port, not the 128-bit bus (seed 001
  sec. 5.2, ``sim.hw.chip.PARAMS``), sets the broadcast's cycles;
* energy = the sum over mats + each broadcast's: N data-memory reads at the mats that hold the
  words, N writes into each of the ``M`` mats (``sim.hw.sram``), and N x 32 bits over the bus
  wire (``sim.hw.chip.PARAMS["wire_fj_per_bit_mm"]`` x ``sim.compile.weight_stream.wire_mm``);
* the hand-off to readers in the activation store (:func:`segment_transfer`). A reader that
  loads the segment's output from the store (a tiled or store-mode slice of
  ``sim.compile.act_tile``: load moves of source -1, the slice's input; an add's shortcut
  when the kept tensors are in the store) does not read the broadcast in its data memory.
  ASSUMPTION ``to_store`` (:data:`TO_STORE`): when *every* reader loads from the store, the
  output goes to the store only: its words, less those the segment's own stores put there
  already (a tiled or store-mode last stage stores its whole output), read once at the mats
  that hold them, N cycles for N words (one 32-bit word per cycle at the sending port, the
  bus carrying one mat's words at a time) and the wire, no write into any data memory (the
  store's own access energy is not counted, as ``act_tile``'s); the reason: those words are
  read from the store by the readers' own loads (charged already, once per slice width), so
  a broadcast into every data memory would count them twice. When some readers read it in
  their data memories (resident slices; an add's shortcut kept in the data memories), the
  whole output is broadcast as above, but written only into *those* mats' data memories, and
  read at the mats only for the words not stored yet (the others come from the store);
* ``M = 1`` has no broadcast (the activations stay in the mat's data memory), so its figures
  are the single mat's (``sim.analysis.counting.count_model`` of the whole model) whenever the
  segment programs are the whole model's (a test checks this on the bundled models);
* the mats' transfers before a segment (image, programs) are not overlapped with the other
  mats' compute, nor a segment's compute with the broadcast before it (as the single mat adds
  its host cycles to its compute cycles): an upper bound on the latency.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from golden.model import Model, layer_input
from sim.util import UserError

__all__ = ["MultiMatError", "Segment", "program_words", "partition", "max_mats", "check_mats",
           "slices",
           "compile_partitioned", "count_partitioned", "resident", "reload_cost", "kept_key",
           "store_of", "broadcast_cost", "segment_transfer", "BROADCAST", "TO_STORE"]

#: Compute kinds a segment slices.
_SLICED = ("adder_conv2d", "mul_conv2d", "adder_linear", "mul_linear")
#: Grouped convolutions, sliced by whole groups (sim.compile.grouped maps them on one mat).
_GROUPED = ("adder_gconv2d", "mul_gconv2d", "bin_gconv2d")
#: Channel-wise layers that follow the slicing on their mat.
_CHANNEL_WISE = ("max_pool2d", "avg_pool2d", "global_avg_pool2d")
#: The per-output-channel integer arrays of a compute layer.
_PER_CHANNEL = ("weight", "rq_mult", "rq_shift", "rq_bias", "bias", "q_thresh", "q_sign")
#: The broadcast assumption (module docstring).
BROADCAST = ("ASSUMPTION: one bus transfer reaches every mat; each mat's data memory takes one "
             "32-bit word per cycle (its host port, as sim.compile.act_tile), so a broadcast of "
             "N words takes max(N, ceil(32 N / bus_bits)) = N cycles")
#: The hand-off to readers that load from the activation store (module docstring).
TO_STORE = ("ASSUMPTION: a segment's output goes to the chip's activation store only when "
            "every reader loads it from there (its words not stored yet by the segment's own "
            "stores, one 32-bit word per cycle, read once at the mats, no data-memory write); "
            "with readers that read it in their data memories, it is broadcast into those "
            "mats' only")


class MultiMatError(UserError):
    """A model or a mat count the partition cannot take (the message says which)."""


@dataclass
class Segment:
    """One segment of a partitioned model: ``layers`` (indices into the model: [flatten],
    compute layer, channel-wise layers), ``compute`` (the compute layer's index), ``last`` (the
    index whose output is the segment's), ``in_shape`` / ``out_shape`` (the whole segment's),
    ``slices`` (per mat ``(lo, hi)``: output channels ``lo .. hi - 1``), ``models`` (per mat
    the ``golden.model.Model`` of its slice) and ``in_slices`` (per mat ``(lo, hi)``: the input
    channels its slice reads, a grouped convolution's; None: every mat reads the whole
    input), ``reads`` (the layer whose output is the segment's input, -1 the model input: the
    previous layer's, or a branch's ``input``), ``shortcuts`` (per ``add`` whose shortcut is an
    earlier segment's output: ``(index of the add in the slice's layers, the shortcut's
    layer)``; the slice's add is compiled reading its main path twice and its shortcut terms
    relocated to the kept tensor, :func:`compile_partitioned`), ``keeps`` (set by
    :func:`compile_partitioned`: ``{layer (-1 the model input): data-memory base}`` of the
    tensors every mat keeps while the segment runs), ``in_store`` (set by
    :func:`compile_partitioned`: the kept tensors are in the activation store instead,
    ``kept_key``)."""
    index: int
    layers: tuple
    compute: int
    last: int
    in_shape: tuple
    out_shape: tuple
    slices: list
    models: list
    in_slices: list | None = None
    reads: int = -1
    shortcuts: tuple = ()
    keeps: dict = field(default_factory=dict)
    in_store: bool = False

    @property
    def out_words(self) -> int:
        """Words of the segment's whole output (what a broadcast carries)."""
        return math.prod(self.out_shape)


def _segments(model: Model) -> list:
    """``[(layer indices, compute index)]`` of ``model``, or a MultiMatError. Channel-wise
    layers before the first compute layer join its segment (every mat runs them on its
    input; module docstring)."""
    layers = model.layers
    segs, cur, pending = [], None, []
    for i, ly in enumerate(layers):
        where = f"layer {i} ({ly.kind})"
        if ly.kind in _SLICED or ly.kind in _GROUPED:
            if "input" in ly.params and pending:
                raise MultiMatError(f"--mats: {where} reads layer {int(ly.params['input'])}'s "
                                    f"output (a branch) after layer {pending[-1]} "
                                    f"({layers[pending[-1]].kind}): not built yet on several "
                                    f"mats")
            cur = [*pending, i]
            pending = []
            segs.append((cur, i))
        elif ly.kind in _CHANNEL_WISE:
            if pending and any(layers[j].kind == "flatten" for j in pending):
                raise MultiMatError(f"--mats: {where} follows a flatten: not built yet on "
                                    f"several mats")
            if cur is None:             # before the first compute layer: joins its segment
                pending.append(i)
            else:
                cur.append(i)
        elif ly.kind == "flatten":
            pending.append(i)
        elif ly.kind == "add":          # channel-wise: its main path is on the same mat
            if cur is None or pending:
                raise MultiMatError(f"--mats: {where} does not directly follow a compute "
                                    f"layer's segment (it follows "
                                    f"{layers[i - 1].kind if i else 'the model input'}): not "
                                    f"built yet on several mats")
            cur.append(i)
        else:
            raise MultiMatError(f"--mats: {where}: not built yet on several mats (only "
                                f"{', '.join(_SLICED + _GROUPED + _CHANNEL_WISE)} and flatten "
                                f"are partitioned)")
    if not segs:
        raise MultiMatError("--mats: the model has no compute layer to partition")
    if pending:
        raise MultiMatError("--mats: the model ends in a flatten: not built yet on several mats")
    return [(tuple(s), c) for s, c in segs]


def _units(layer) -> tuple:
    """``(units, outputs per unit, inputs per unit)`` a compute layer is sliced by: its groups
    for a grouped convolution (a group's ``O/g`` output channels read its ``C/g`` input
    channels), else its output channels (each reads the whole input: inputs per unit None)."""
    o = int(layer.params["weight"].shape[0])
    if layer.kind in _GROUPED and int(layer.params["groups"]) > 1:
        g = int(layer.params["groups"])
        return g, o // g, int(layer.params["weight"].shape[1])
    return o, 1, None           # (one group: every output channel reads the whole input)


def max_mats(model: Model) -> tuple:
    """``(mats, layer, what)``: the most mats ``model`` can be partitioned over, its narrowest
    compute layer's output channels (``what`` = ``"output channels"``) or, for a grouped
    convolution, groups (``"groups"``), and that layer's index; a MultiMatError for a model
    with a layer not built yet on several mats."""
    segs = _segments(model)
    n, c = min((_units(model.layers[c])[0], c) for _, c in segs)
    return n, c, ("groups" if model.layers[c].kind in _GROUPED
                  and int(model.layers[c].params["groups"]) > 1 else "output channels")


def check_mats(model: Model, mats, chip_mats: int | None = None) -> int:
    """``mats`` if it is an int in [1, the narrowest compute layer's output channels or, for a
    grouped convolution, groups] (:func:`max_mats`; and at
    most ``chip_mats``), else a one-line MultiMatError naming ``--mats``, the value and what is
    allowed."""
    narrow = max_mats(model)
    what = narrow[2]
    top = narrow[0] if chip_mats is None else min(narrow[0], chip_mats)
    why = (f"the narrowest compute layer, layer {narrow[1]}, has {narrow[0]} {what}"
           + (f"; the chip has {chip_mats} mats" if chip_mats is not None else ""))
    if isinstance(mats, str):
        try:
            mats = int(mats)
        except ValueError:
            raise MultiMatError(f"--mats must be an int in [1, {top}] ({why}), not "
                                f"{mats!r}") from None
    if isinstance(mats, bool) or not isinstance(mats, (int, np.integer)) \
            or not 1 <= mats <= top:
        raise MultiMatError(f"--mats must be an int in [1, {top}] ({why}), not {mats!r}")
    return int(mats)


def slices(channels: int, mats: int) -> list:
    """``[(lo, hi)]``: ``channels`` split into ``mats`` contiguous slices, the first
    ``channels mod mats`` one larger."""
    q, r = divmod(channels, mats)
    out, lo = [], 0
    for m in range(mats):
        hi = lo + q + (m < r)
        out.append((lo, hi))
        lo = hi
    return out


def _slice_layer(ly, lo: int, hi: int, groups: int | None = None):
    params = {k: (v[lo:hi] if k in _PER_CHANNEL else v) for k, v in ly.params.items()
              if k != "input"}      # a branch: the mat's slice reads its segment's input
    if groups is not None:
        params["groups"] = np.int64(groups)
    o = int(ly.params["weight"].shape[0])
    fparams = {k: (v[lo:hi] if getattr(v, "ndim", 0) and v.shape[0] == o else v)
               for k, v in ly.float_params.items()}
    return replace(ly, params=params, float_params=fparams)


def _check_read(model, idx, src: int, lasts, what: str, where: str) -> None:
    """A segment's input or an add's shortcut ``src`` must be a tensor every mat holds: the
    model input or an earlier segment's (broadcast) output; else a MultiMatError."""
    if src < 0 or (src in lasts and src < idx[0]):
        return
    name = "its input" if what == "reads" else "its shortcut"
    raise MultiMatError(f"--mats: {where} reads as {name} the output of layer {src} "
                        f"({model.layers[src].kind}), which is inside a segment (not broadcast "
                        f"to every mat): not built yet on several mats")


def _sub_layer(ly, i: int, idx, ci: int, lo: int, hi: int, groups):
    """Layer ``i`` of a segment (layers ``idx``, compute layer ``ci``) in mat slice ``lo ..
    hi - 1``: the compute layer and every add cut to the slice's channels; an add's
    ``source`` renumbered in the slice's layers, or, for a shortcut from outside the segment,
    its own main path (relocated after compiling: :func:`compile_partitioned`)."""
    if i == ci:
        return _slice_layer(ly, lo, hi, groups)
    if ly.kind != "add":
        return ly
    cut = _slice_layer(ly, lo, hi)
    src = int(ly.params["source"])
    local = src if ci <= src < i else i - 1
    cut.params["source"] = np.int64(local - idx[0])
    return cut


def partition(model: Model, mats) -> list:
    """The :class:`Segment` list of ``model`` on ``mats`` mats (module docstring).

    Raises
    ------
    MultiMatError
        A bad ``mats`` (:func:`check_mats`) or a layer not built yet on several mats.
    """
    mats = check_mats(model, mats)
    shapes = model.shapes()
    out = []
    found = _segments(model)
    lasts = {idx[-1] for idx, _ in found}
    for si, (idx, ci) in enumerate(found):
        ly = model.layers[ci]
        units, per_out, per_in = _units(ly)
        by_unit = slices(units, mats)
        sl = [(lo * per_out, hi * per_out) for lo, hi in by_unit]
        ins = [(lo * per_in, hi * per_in) for lo, hi in by_unit] if per_in else None
        reads = layer_input(model.layers, idx[0])     # a branch: an earlier layer's output
        in_shape = tuple(int(v) for v in shapes[reads + 1])
        _check_read(model, idx, reads, lasts, "reads", f"segment {si} (layers {list(idx)})")
        shortcuts = []
        for j, i in enumerate(idx):
            if model.layers[i].kind == "add":
                src = int(model.layers[i].params["source"])
                if not ci <= src < i:       # not a sliced layer of this segment: kept tensor
                    _check_read(model, idx, src, lasts, "add", f"layer {i} (add)")
                    shortcuts.append((j, src))
        models = []
        for m, (lo, hi) in enumerate(sl):
            groups = by_unit[m][1] - by_unit[m][0] if per_in else None
            layers = tuple(_sub_layer(model.layers[i], i, idx, ci, lo, hi, groups)
                           for i in idx)
            n_out = (hi - lo) if ly.output == "logits" else 0
            shape = (ins[m][1] - ins[m][0], *in_shape[1:]) if ins else in_shape
            models.append(Model(name=f"{model.name}.segment{si}.mat{m}",
                                input_shape=shape, input_scale=model.input_scale,
                                class_names=tuple(model.class_names[lo:hi]) if n_out else (),
                                layers=layers))
        out.append(Segment(si, idx, ci, idx[-1], in_shape,
                           tuple(shapes[idx[-1] + 1]), sl, models, ins, reads,
                           tuple(shortcuts)))
    return out


def compile_partitioned(model: Model, config, mats, *, subarrays: int | None = None,
                        propose: bool = False, stream_weights: bool = False,
                        tile_activations: bool = False, counting_only: bool = False) -> tuple:
    """``(segments, compiled)``: :func:`partition` and, per segment and mat, the
    ``sim.compile.compiler.CompiledModel`` of the mat's slice (``compiled[s][m]``), compiled for
    a mat of ``subarrays`` subarrays with ``config`` (with ``propose``: the sizes
    ``propose_config`` proposes for that slice).

    ``counting_only``: the mats of a segment whose slices have the same number of channels
    share one compiled slice (the first such mat's): the compiler's programs, table sizes and
    so every counter and energy of the counting mode depend on the layer's shapes, not on its
    weight values (which go into the weight buffer and the requant table only;
    ``tests/test_multi_mat.py`` checks the counts equal), so the counting mode compiles at most
    two slices per segment. Not for running the slices: the others' weights are not in it.
    With tensors kept for later layers (``kept``) and ``propose``, every slice is compiled
    for one data-memory size that holds its own words and the kept tensors (raised and
    recompiled until it does).

    Raises
    ------
    MultiMatError
        A bad ``mats`` or a layer not built yet on several mats. A slice the compiler
        refuses raises its ``CompileError``, the message prefixed with the segment, the mat and
        its channels.
    """
    from sim.compile.compiler import CompileError, compile_model, propose_config
    segs = partition(model, mats)

    def one(seg, m, cfg):
        try:
            if propose:
                cfg = propose_config(seg.models[m], cfg, subarrays=subarrays,
                                     stream_weights=stream_weights,
                                     tile_activations=tile_activations)
            return compile_model(seg.models[m], cfg, subarrays=subarrays,
                                 stream_weights=stream_weights,
                                 tile_activations=tile_activations)
        except CompileError as e:
            raise CompileError(f"{_where(seg, m)}: {e}") from None

    compiled = []
    for seg in segs:
        row, seen = [], {}
        for m in range(len(seg.models)):
            width = seg.slices[m][1] - seg.slices[m][0]
            if not (counting_only and width in seen):
                seen[width] = one(seg, m, config)
            row.append(seen[width])
        compiled.append(row)
    words = max(c.config.data_words for row in compiled for c in row)
    while True:     # propose: one data-memory size for every mat, holding the kept tensors
        if propose and kept(segs):
            redo = {}
            for seg, row in zip(segs, compiled, strict=True):
                for m, c in enumerate(row):
                    if c.config.data_words < words:
                        if id(c) not in redo:
                            redo[id(c)] = one(seg, m, replace(config, data_words=words))
                        row[m] = redo[id(c)]
        try:
            _place_kept(segs, compiled, words, tile_activations)
            return segs, compiled
        except CompileError as e:
            if not propose or getattr(e, "field", None) != "data_words" or e.size is None:
                raise
            words = e.size


def _where(seg, m: int) -> str:
    return (f"segment {seg.index} (layers {list(seg.layers)}) on mat {m} (output channels "
            f"{seg.slices[m][0]} .. {seg.slices[m][1] - 1})")


def kept(segs) -> dict:
    """The tensors the mats keep in their data memories for a later reader (module
    docstring): ``{layer (-1 the model input): (first, last segment it is kept through,
    words)}``: an add's shortcut from an earlier segment, a branch's input."""
    made = {seg.last: seg.index for seg in segs}
    shape = {seg.last: seg.out_shape for seg in segs}
    shape[-1] = segs[0].in_shape                            # the whole image
    reads: dict = {}                                        # tensor -> its last reader
    for seg in segs:
        branch = seg.index and seg.reads != segs[seg.index - 1].last
        for src in ([seg.reads] if branch else []) + [src for _, src in seg.shortcuts]:
            reads[src] = max(reads.get(src, 0), seg.index)
    return {t: (made.get(t, -1) + 1, last, math.prod(shape[t])) for t, last in reads.items()}


def _extent(comp) -> int:
    """Data-memory words a compiled slice uses from 0: the end of its stages' inputs and of
    every chunk's write-pointer steps (from the base of the chunk's own view: a standalone
    max pool's passes write into scratch tensors, ``sim.compile.layer_stages``)."""
    return max(max(st.in_base + st.in_size,
                   *(ch.stage.out_base + ch.out_start + ch.stage.out_size for ch in st.chunks))
               for st in comp.stages)


def _place_kept(segs, compiled, data_words: int, tile_activations: bool = False) -> None:
    """Place the kept tensors (``kept``) from the top of every mat's data memory (first
    fit, a tensor's words held from the segment after the one that makes it through its last
    reader), check that each slice's own words stay below them, and point every relocated add
    (``Segment.shortcuts``) at its shortcut's channels there: the shortcut term of channel
    ``ch`` reads ``base + (lo + ch) * H*W``. The counters do not depend on the offsets."""
    from sim.compile import act_tile as _at
    from sim.compile.compiler import _too_small
    from rtl.isa import OFFSET_BITS
    if kept(segs) and any(_at.cost(comp)["words"] for row in compiled for comp in row):
        _kept_in_store(segs, compiled, data_words)
        return
    if kept(segs) and tile_activations:     # the store when the data memories cannot keep them
        from sim.compile.compiler import CompileError
        try:
            _place_kept(segs, compiled, data_words)
        except CompileError as e:
            if getattr(e, "field", None) != "data_words":
                raise
            _kept_in_store(segs, compiled, data_words)
        return
    placed = {}                                 # tensor -> (first, last, top, words)
    for t, (first, last, words) in sorted(kept(segs).items()):
        top = 0
        for f2, l2, top2, w2 in sorted(placed.values(), key=lambda v: v[2]):
            if f2 <= last and first <= l2 and top < top2 + w2 and top2 < top + words:
                top = top2 + w2
        placed[t] = (first, last, top, words)
    base = {t: data_words - top - words for t, (_, _, top, words) in placed.items()}
    for seg, row in zip(segs, compiled, strict=True):
        seg.keeps = {t: base[t] for t, (f, l, _, _) in placed.items() if f <= seg.index <= l}
        low = min(seg.keeps.values(), default=None)
        for m, comp in enumerate(row):
            own = _extent(comp)
            if low is not None and (own > low or low < 0):
                need = own + data_words - low
                _too_small(f"{_where(seg, m)}: its {own} data-memory words and the "
                           f"{data_words - low} words of the tensors the mats keep for "
                           f"later layers need {need}, but data_words is {data_words}",
                           "data_words", need)
    done = set()
    for seg, row in zip(segs, compiled, strict=True):
        for m, comp in enumerate(row):
            if id(comp) not in done:    # (a slice shared by equal widths: counting only)
                done.add(id(comp))
                for j, src in seg.shortcuts:
                    _relocate(comp, j, base[src], seg.slices[m][0], 1 << OFFSET_BITS)


def kept_key(t: int) -> tuple:
    """The activation store's key of kept tensor ``t`` (a layer of the whole model, -1 the
    image) in a slice's loads (``_kept_in_store``; the slice's own tensors are keyed by
    its own layer indices, ``sim.compile.act_tile``)."""
    return ("kept", t)


def _kept_in_store(segs, compiled, data_words: int) -> None:
    """The kept tensors of a model some of whose slices have their activations tiled
    (module docstring, ASSUMPTION ``kept_in_store``): they live in the activation store, not
    in the data memories, and each reader loads what it reads from there. An add's shortcut:
    in a slice in the store mode of ``sim.compile.act_tile`` (the add loads both operands),
    the add's second operand's loads (its main path, compiled reading it twice) are pointed at
    the slice's channels of the kept tensor (``kept_key``); in a resident slice, the host
    loads the slice's channels of the kept tensor above the slice's own words before the add
    (a CompileError naming ``data_words`` when they do not fit) and the add's shortcut terms
    are relocated there (:func:`_relocate`). A branch's segment whose first stage does not
    load its input from the store gets a load of its whole input (the segment's input, the
    same for every mat)."""
    from sim.compile import act_tile as _at
    from sim.compile.compiler import _too_small
    from rtl.isa import OFFSET_BITS
    done = set()
    for seg, row in zip(segs, compiled, strict=True):
        seg.keeps = {}
        seg.in_store = True
        branch = seg.index and seg.reads != segs[seg.index - 1].last
        for m, comp in enumerate(row):
            if id(comp) in done:        # (a slice shared by equal widths: counting only)
                continue
            done.add(id(comp))
            lo = seg.slices[m][0]
            first = comp.stages[0]
            own = _extent(comp)
            if own > data_words and not _at.cost(comp)["words"]:   # a resident slice (the
                # compiler's layout check can miss a chunk's last write-pointer step)
                _too_small(f"{_where(seg, m)}: its chunks write up to data-memory word {own}, "
                           f"but data_words is {data_words}", "data_words", own)
            if branch and not _at.loads_before(first, 0):
                first.act_moves.insert(0, (0, "load", first.in_base, 0, first.in_size, -1))
            for j, src in seg.shortcuts:
                st = next(s for s in comp.stages if s.layer_index == j)
                per = math.prod(st.in_shape[1:])
                by_chunk: dict = {}     # store mode: per unit, main path loads, then
                for i, mv in enumerate(st.act_moves):   # the shortcut's (act_tile)
                    if mv[1] == "load":
                        by_chunk.setdefault(mv[0], []).append(i)
                if by_chunk:
                    moves = list(st.act_moves)
                    for group in by_chunk.values():
                        for i in group[len(group) // 2:]:
                            mv = moves[i]
                            moves[i] = (*mv[:3], mv[3] + lo * per, mv[4], kept_key(src))
                    st.act_moves = moves
                    continue
                words = st.out_shape[0] * per
                at = _free_region(comp, st, words, data_words)
                if at is None:
                    _too_small(f"{_where(seg, m)}: its {own} data-memory words and its "
                               f"{words} words of layer {src}'s output (its add's shortcut, "
                               f"loaded from the activation store) need {own + words}, but "
                               f"data_words is {data_words}", "data_words", own + words)
                st.act_moves.insert(0, (0, "load", at, lo * per, words, kept_key(src)))
                _relocate(comp, j, at - lo * per, lo, 1 << OFFSET_BITS)


def _free_region(comp, add, words: int, data_words: int):
    """The lowest data-memory address where ``words`` loaded just before the ``add`` stage of
    a resident slice stay untouched until the add has read them: clear of the add's input and
    of its chunks' writes (the stages before it are done: their regions are free), at a
    stage's base, the end of one of those regions or above the slice's own words; None if
    none fits ``data_words``."""
    busy = [(add.in_base, add.in_base + add.in_size),
            *((ch.stage.out_base, ch.stage.out_base + ch.out_start + ch.stage.out_size)
              for ch in add.chunks)]
    starts = sorted({0, _extent(comp), *(hi for _, hi in busy),
                     *(b for st in comp.stages for b in (st.in_base, st.out_base))})
    for a in starts:
        if a + words <= data_words and all(a + words <= lo or hi <= a for lo, hi in busy):
            return a
    return None


def store_of(seg, tensor) -> dict:
    """The activation store's kept tensors a slice of ``seg`` loads (``run_compiled``'s
    ``store``; empty unless ``seg.in_store``): ``{kept_key(t): tensor(t) flat}`` for every
    add's shortcut ``t``, ``tensor(t)`` the whole model's layer ``t`` output (-1 the image)."""
    if not seg.in_store:
        return {}
    return {kept_key(t): np.asarray(tensor(t), dtype=np.int64).reshape(-1)
            for _, t in seg.shortcuts}


def _relocate(comp, j: int, base: int, lo: int, mod: int) -> None:
    """Point the shortcut terms of slice layer ``j`` (an add compiled reading its main path
    twice: entries ``2 ch`` and ``2 ch + 1`` of its stage both ``ch * H*W``) at channel ``lo +
    ch`` of the kept tensor at ``base``: ``base + (lo + ch) * H*W - the stage's in_base``."""
    st = next(s for s in comp.stages if s.layer_index == j)
    per = math.prod(st.out_shape[1:])
    offs = list(comp.offsets)
    for ch in range(st.out_shape[0]):
        k = st.offset_base + 2 * ch
        if st.kind != "add" or offs[k] != offs[k + 1] or offs[k] != ((ch * per) % mod, 0):
            raise RuntimeError(f"multi_mat: the add stage of slice layer {j} does not have "
                               f"the offset entries it was compiled with (2 per channel)")
        offs[k + 1] = ((base + (lo + ch) * per - st.in_base) % mod, 0)
    comp.offsets = tuple(offs)


def program_words(compiled, loaded):
    """Program words the host loads for ``compiled``'s chunks with ``loaded`` the program in
    the instruction memory before (``sim.analysis.report.host_port_words``' rule); returns
    ``(words per stage, the program loaded last)``."""
    per_stage = []
    for stage in compiled.stages:
        words = 0
        for chunk in stage.chunks:
            program = tuple(int(w) for w in chunk.program)
            if program != loaded:
                words += len(program)
                loaded = program
        per_stage.append(words)
    return per_stage, loaded


def _mat_estimate(compiled, sub, counters, data_words: int, program_words: int,
                  stage_counters=None) -> dict:
    """``sim.hw.energy.estimate`` of one mat's segment as the counting mode's
    (``sim.analysis.counting``), with its host port's ``data_words`` and ``program_words``
    (and, with ``stage_counters``, seed 002's class gate: ``sim.compile.dima_map.gate_report``)."""
    from sim.compile import act_tile as _at
    from sim.compile import weight_stream as _ws
    from sim.hw import energy
    from sim.hw.energy import with_loading
    from sim.analysis.report import stage_ops
    ops = sum(stage_ops(sub, st.layer_index)["ops"] for st in compiled.stages)
    stream, act = _ws.cost(compiled), _at.cost(compiled)
    rep = energy.estimate(compiled.config, counters, ops=ops, columns_active=compiled.width,
                          host={"data_words": data_words},
                          host_cycles=data_words + program_words + stream["bus_cycles"]
                          + act["bus_cycles"])
    if stage_counters is not None:
        from sim.compile.dima_map import gate_report
        rep = gate_report(rep, compiled, stage_counters)
    est = rep.to_dict()
    if stream["slots"] or stream["entries"]:
        est = with_loading(est, "host_weight_stream", stream["energy_j"])
    return _at.with_cost(est, act)


def broadcast_cost(config, words: int, mats: int, subarrays: int,
                   read_words: int | None = None) -> dict:
    """Cycles and energy of broadcasting ``words`` data-memory words to ``mats`` mats
    (:data:`BROADCAST`): ``cycles``, ``bits``, ``energy_j`` (``sram_j`` + ``wire_j``).

    ``read_words``: of the ``words``, those read from a mat's data memory (default all of
    them); the others come from the activation store, whose own access energy is not counted
    (``sim.compile.act_tile``'s ASSUMPTION). ``mats = 0``: the words go to the store only
    (:data:`TO_STORE`): the reads and the wire, no data-memory write."""
    from sim.compile.weight_stream import wire_mm
    from sim.hw import sram
    from sim.hw.chip import PARAMS
    from sim.hw.energy import DATA_WORD_BITS
    if read_words is None:
        read_words = words
    if not 0 <= read_words <= words:
        raise ValueError(f"broadcast_cost: read_words must be in [0, words = {words}], "
                         f"not {read_words}")
    bus = int(PARAMS["bus_bits"].value) * PARAMS["bus_transfers_per_cycle"].value
    dm = {m.name: m for m in sram.core_memories(config, subarrays)}["data memory"]
    bits = words * DATA_WORD_BITS
    sram_j = (read_words * sram.read_energy_pj(dm.words, dm.bits)
              + words * mats * sram.write_energy_pj(dm.words, dm.bits)) * 1e-12
    wire_j = bits * PARAMS["wire_fj_per_bit_mm"].value * wire_mm(config) * 1e-15
    return {"words": words, "read_words": read_words, "mats": mats, "bits": bits,
            "cycles": max(words, math.ceil(bits / bus)),
            "bus_only_cycles": math.ceil(bits / bus), "sram_j": sram_j, "wire_j": wire_j,
            "energy_j": sram_j + wire_j}


def _loads_input(comp) -> bool:
    """Whether a slice loads its segment's input from the activation store (a load move of
    source -1, ``sim.compile.act_tile``: a tiled or store-mode first stage, or a branch's
    resident first stage given a load by ``_kept_in_store``) rather than reading it in its
    data memory."""
    return any(mv[1] == "load" and mv[5] == -1
               for st in comp.stages for mv in getattr(st, "act_moves", ()))


def _stored_words(comp) -> int:
    """Words of a slice's output its own moves put into the activation store: its last
    stage's output when its stores cover it (``sim.compile.act_tile.output_in_store``; a
    tiled or store-mode last stage), else 0."""
    from sim.compile import act_tile as _at
    last = comp.stages[-1]
    return last.out_size if getattr(last, "act_moves", None) and _at.output_in_store(last) \
        else 0


def segment_transfer(segs, compiled, index: int) -> dict:
    """What the hand-off of segment ``index``'s output to its readers costs (module
    docstring, :data:`BROADCAST` and :data:`TO_STORE`): :func:`broadcast_cost` of it, with
    ``resident_mats`` (the mats that read it in their data memories), ``stored`` (its words
    its own slices' stores put into the activation store) and ``to_store`` (True: no reader
    reads it in a data memory).

    The readers: every later segment that reads it as its input (the next segment, or a
    branch) and every ``add`` whose shortcut it is. A mat of a reading segment reads it in its
    data memory unless its slice loads its input from the store (a load move of source -1); an
    add's shortcut is read in the data memory of every mat unless the kept tensors are in the
    store (``Segment.in_store``: its channels are loaded from there). No mat in a data
    memory (an output no layer reads counts so too): the words not stored yet go to the
    store, read once at the mats that hold them and not written into any mat. Some: the
    whole output is broadcast into those mats' data memories only (the store listens, as
    ``kept_in_store``), read at the mats for the words not stored yet and from the store for
    the others. The last segment and ``M = 1``: nothing
    (no broadcast; one mat keeps its activations where its programs read them)."""
    seg = segs[index]
    mats = len(seg.slices)
    cfg = compiled[0][0].config
    sub = compiled[0][0].subarrays
    if mats == 1 or index == len(segs) - 1:
        return {**broadcast_cost(cfg, 0, mats, sub), "resident_mats": [], "stored": 0,
                "to_store": False}
    words = seg.out_words
    stored = min(words, sum(_stored_words(c) for c in compiled[index]))
    resident_mats = set()
    for reader, row in zip(segs[index + 1:], compiled[index + 1:], strict=True):
        if reader.reads == seg.last:
            resident_mats |= {m for m, c in enumerate(row) if not _loads_input(c)}
        if any(src == seg.last for _, src in reader.shortcuts) and not reader.in_store:
            resident_mats |= set(range(len(row)))
    if resident_mats:
        bc = broadcast_cost(cfg, words, len(resident_mats), sub, read_words=words - stored)
    else:
        bc = broadcast_cost(cfg, words - stored, 0, sub)
    return {**bc, "resident_mats": sorted(resident_mats), "stored": stored,
            "to_store": not resident_mats}


def resident(compiled) -> dict:
    """What one mat's slice keeps in the core between images: weight-buffer rows and requant
    entries outside the stream region (``sim.compile.weight_stream``), offset- and
    patch-table entries."""
    b, t = _regions(compiled)
    return {"buffer_slots": int(compiled.buffer.shape[0]) - b,
            "requant_channels": len(compiled.table[0]) - t,
            "offset_entries": len(compiled.offsets), "patch_entries": len(compiled.patches)}


def _regions(compiled) -> tuple:
    """The ends of the weight-buffer and requant-table stream regions (0: nothing streamed)."""
    ends_b = [b + len(img) for st in compiled.stages
              for _, b, img, _ in st.weight_loads + st.postproc_loads]
    ends_t = [t[0] + len(t[1]) for st in compiled.stages for *_, t in st.weight_loads
              if t is not None]
    return max(ends_b, default=0), max(ends_t, default=0)


def reload_cost(compiled, fields=None) -> dict:
    """Cycles and energy of loading ``compiled``'s resident contents (:func:`resident`; only
    those of ``fields``, default all) over the bus before it runs, as
    ``sim.compile.weight_stream`` charges streamed words: ``ceil(bits / bus_bits)`` cycles
    per buffer row, requant entry, offset and patch entry, their SRAM writes
    (``sim.hw.sram``) and the wire."""
    from rtl.isa import AGU_DATA_BITS, KPOS_BITS, OFFSET_BITS
    from rtl.ppu import BIAS_BITS, MULT_BITS, SHIFT_BITS
    from sim.compile.weight_stream import wire_mm
    from sim.hw import sram
    from sim.hw.chip import PARAMS
    r = {k: (v if fields is None or k in fields else 0)
         for k, v in resident(compiled).items()}
    bus = int(PARAMS["bus_bits"].value) * PARAMS["bus_transfers_per_cycle"].value
    mem = {m.name: m for m in sram.core_memories(compiled.config, compiled.subarrays)}
    parts = (("buffer_slots", "weight buffer", int(compiled.width)),
             ("requant_channels", "requant table", MULT_BITS + SHIFT_BITS + BIAS_BITS),
             ("offset_entries", "offset table", OFFSET_BITS + KPOS_BITS),
             ("patch_entries", "patch table", AGU_DATA_BITS))
    bits = sum(r[k] * b for k, _, b in parts)
    cycles = sum(r[k] * math.ceil(b / bus) for k, _, b in parts)
    sram_j = sum(r[k] * sram.write_energy_pj(mem[n].words, mem[n].bits)
                 for k, n, _ in parts) * 1e-12
    wire_j = bits * PARAMS["wire_fj_per_bit_mm"].value * wire_mm(compiled.config) * 1e-15
    return {**r, "bits": bits, "cycles": cycles, "energy_j": sram_j + wire_j}


def _coresident(compiled, m: int) -> tuple:
    """``(fits, need)``: per field, whether mat ``m``'s slices of every segment fit that table
    together (``need``: field -> the sum of the resident parts, plus the largest stream
    region, which the segments share)."""
    need: dict = {}
    for row in compiled:
        for k, v in resident(row[m]).items():
            need[k] = need.get(k, 0) + v
    regions = [_regions(row[m]) for row in compiled]
    need["buffer_slots"] += max(r[0] for r in regions)
    need["requant_channels"] += max(r[1] for r in regions)
    cfg = compiled[0][m].config
    return {k: v <= getattr(cfg, k) for k, v in need.items()}, need


def _own_act_cycles(compiled) -> int:
    """Bus cycles of a slice's tiled-activation moves that are its own (each mat's, over the
    shared bus one mat after the other): its stores and the loads of anything but its
    segment's input (source -1: the same words for every mat of its width, broadcast), i.e.
    its own intermediate tensors and its channels of a kept tensor; one 32-bit word per
    cycle at the bus (``sim.compile.act_tile.cost``'s rule)."""
    from sim.hw.chip import PARAMS
    from sim.hw.energy import DATA_WORD_BITS
    bus = int(PARAMS["bus_bits"].value) * PARAMS["bus_transfers_per_cycle"].value
    words = sum(mv[4] for st in compiled.stages for mv in getattr(st, "act_moves", ())
                if mv[1] == "store" or (mv[1] == "load" and mv[5] != -1))
    return int(words * math.ceil(DATA_WORD_BITS / bus))


def count_partitioned(segs, compiled, *, skipped=None) -> dict:
    """The counting mode's figures of a partitioned model for one image (module docstring).

    ``skipped``: zero skipping only (``sim.analysis.counting.count_model``'s ``skipped``): one
    fraction of tile dots skipped for every stage of every mat, or ``skipped[s][m]``: segment
    ``s``'s mat ``m``'s value (a fraction, or a list with one entry per stage of its program,
    e.g. the dots the cycle model skipped); None: none skipped (every stage at its worst
    case).

    Returns ``{"mats", "segments": [{"index", "layers", "slices", "mat_cycles", "cycles",
    "compute_cycles", "broadcast", "energy_j", "ops", "mats": [per mat: "counters", "stages",
    "host", "estimate"]}], "cycles", "counters" (summed over every mat), "energy_j",
    "latency_s", "ops", "gops", "gops_per_w", "assumptions"}``.
    """
    from sim.analysis.counting import count_model
    from sim.compile import act_tile as _at
    from sim.compile import weight_stream as _ws
    mats = len(segs[0].slices)
    image = kept(segs).get(-1, (0, 0, 0))[2]    # the whole image, kept for a later reader
    loaded = [None] * mats
    fits = [_coresident(compiled, m)[0] for m in range(mats)]
    rows, total = [], {}
    cycles = ops = 0
    energy_j = 0.0
    cfg0 = compiled[0][0].config
    for seg, row in zip(segs, compiled, strict=True):
        per_mat, counted, streams, shared_by_width = [], {}, {}, {}
        for m, (comp, sub) in enumerate(zip(row, seg.models, strict=True)):
            skip = skipped[seg.index][m] if isinstance(skipped, (list, tuple)) else skipped
            key = (id(comp), repr(skip))    # shared by mats of equal slices (counting_only)
            if key not in counted:
                counted[key] = count_model(comp, skipped=skip)
            res = counted[key]
            words, loaded[m] = program_words(comp, loaded[m])
            data = max(comp.stages[0].in_size, image) if seg.index == 0 else 0
            est = _mat_estimate(comp, sub, res.counters, data, sum(words),
                                [st.counters for st in res.stages])
            if id(comp) not in streams:     # over the shared bus: (its own, shared)
                act, mine = _at.cost(comp), _own_act_cycles(comp)
                own = _ws.cost(comp)["bus_cycles"] + mine
                streams[id(comp)] = (own, act["bus_cycles"] - mine)
            own, shared = streams[id(comp)]
            width = seg.slices[m][1] - seg.slices[m][0]
            shared_by_width[width] = shared     # equal slices: the same bands, broadcast
            rl = None
            short = [k for k, ok in fits[m].items() if not ok]
            if short:                       # those tables reloaded before it, every image
                rl = reload_cost(comp, short)
                est = dict(est, energy_j=est["energy_j"] + rl["energy_j"],
                           cycles=est["cycles"] + rl["cycles"])
            per_mat.append({"slice": list(seg.slices[m]), "counters": res.counters,
                            "stages": [{"name": s.name, "counters": s.counters}
                                       for s in res.stages],
                            "host": {"data_words": data, "program_words": sum(words),
                                     "stream_cycles": own + (rl["cycles"] if rl else 0),
                                     "shared_cycles": shared},
                            "reload": rl,
                            "estimate": est})
            for k, v in res.counters.items():
                total[k] = total.get(k, 0) + v
        bc = segment_transfer(segs, compiled, seg.index)
        stream = [p["host"]["stream_cycles"] for p in per_mat]
        mat_cycles = [p["estimate"]["cycles"] - st - p["host"]["shared_cycles"]
                      for p, st in zip(per_mat, stream, strict=True)]
        shared_cycles = sum(shared_by_width.values())
        seg_cycles = max(mat_cycles) + shared_cycles + sum(stream) + bc["cycles"]
        seg_e = sum(p["estimate"]["energy_j"] for p in per_mat) + bc["energy_j"]
        seg_ops = sum(p["estimate"]["ops"] for p in per_mat)
        rows.append({"index": seg.index, "layers": list(seg.layers),
                     "slices": [list(s) for s in seg.slices], "mat_cycles": mat_cycles,
                     "compute_cycles": [p["counters"]["cycles"] for p in per_mat],
                     "stream_cycles": stream, "shared_cycles": shared_cycles,
                     "cycles": seg_cycles, "broadcast": bc,
                     "energy_j": seg_e,
                     "ops": seg_ops, "mats": per_mat})
        cycles += seg_cycles
        energy_j += seg_e
        ops += seg_ops
    latency = cycles / (cfg0.clock_mhz * 1e6)
    return {"mats": mats, "segments": rows, "cycles": cycles, "counters": total,
            "energy_j": energy_j, "latency_s": latency, "ops": ops,
            "gops": ops / latency / 1e9, "gops_per_w": ops / energy_j / 1e9,
            "coresident": fits,
            "assumptions": {"broadcast": BROADCAST, "to_store": TO_STORE,
                            "tables": "ASSUMPTION: a mat keeps every segment's slice in its "
                                      "weight buffer and tables when they fit together (the "
                                      "bases relocated; counters do not depend on them); "
                                      "a table that does not is reloaded before each "
                                      "segment, every image",
                            "no_overlap": "ASSUMPTION: a segment's transfers and compute do "
                                          "not overlap (an upper bound on the latency)"}}
