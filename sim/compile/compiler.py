"""Compiler: a golden AdderNet (``golden.model.Model``) onto the core (``rtl.core.Core``;
``docs/architecture.rst``, ``docs/dataflows.rst``).

Mapping
-------
Every compute layer (with a 2x2 stride-2 pool right after it fused in) becomes one
:class:`Stage` (other pools, global average pooling and ``add``: ``sim.compile.layer_stages``);
``flatten`` costs nothing (the next stage reads the previous output as the flat
vector it is). A stage computes ``O`` outputs for each of its patches (im2col windows of a
convolution, or the single input vector of a linear layer) with the patches *stationary* in
the array and the weights streamed from the weight buffer. The image goes into the core once;
from then on every activation moves on chip: each chunk program gathers its own patches from
the data memory into the array, and the PPU writes the outputs back into the data memory,
where the next stage's gathers find them.

The mat: ``K`` subarrays (``subarrays``, default ``config.subarrays_per_mat``) of ``C =
config.columns`` columns in lock-step, a row of ``W = K*C`` columns. Per stage, the *mode*:

* ``segmented`` when K > 1 and the fan-in fits one subarray (``fan_in <= C``): tile width C,
  one tile; a row holds K patches, patch k of a *group* in segment k (mat columns ``k*C ..
  k*C + C - 1``); the weights are replicated into every segment of a buffer word; each
  subarray's accumulator holds its patch's dot product and ``REQUANT d = k + 1`` hands it to
  the PPU.
* ``wide`` otherwise: tile width W, ``T = ceil(fan_in / W)`` tiles, one patch per row set;
  ``REQUANT d = 0`` takes the sum of all accumulators (the dot product over the W columns).

Data memory (the PPU's output memory, ``out_depth`` words of 32 bits): stage s reads its input
at ``stage.in_base`` and writes its output at ``stage.out_base``, in golden's flat layout
((C, H, W) row-major: value (c, pos) at ``base + c*H*W + pos``; a logits stage writes int32
words). Stage 0 reads at 0; the regions alternate between 0 and R (R = the largest flat size
of any stage input or output), so ``stages[s + 1].in_base == stages[s].out_base``.

Gather tables (:attr:`CompiledModel.offsets`, :attr:`CompiledModel.patches`; a stage's entries
start at ``Stage.offset_base`` / ``Stage.patch_base``): a convolution with input (C, H, W),
kernel kh x kw, stride s, padding p has an offset entry per term ``j = (c, ky, kx)`` (row-major)
``offset = c*H*W + ky*W + kx``, ``kpos = ky*kw + kx``, and a patch entry per output position
(y, x) it computes: ``base = (in_base + (y*s - p)*W + (x*s - p)) mod 2**16``, mask bit
``ky*kw + kx`` set iff the input pixel ``(y*s - p + ky, x*s - p + kx)`` lies inside the image
(the others read as 0: the padding). A linear layer has one patch (``base = in_base``, mask 1)
and offset ``j``, kpos 0 for term j. Patch entries are in patch order for ``wide`` stages and
segment-major per chunk for ``segmented`` ones (entry ``chunk start + k*G + g`` = patch
``g*K + k`` of the chunk's G full groups, then the last partial group's patches in order).

Array and buffers:

* array, per chunk: rows ``row0 ..`` (after the abs-diff scratch strips) hold bit-planes
  (``n = operand_bits = 8`` planes, LSB = 0). ``wide``: row ``row0 + (t*n + q)*P + p`` holds
  plane q of tile t of patch p (P patches), column j the term ``t*W + j`` (0 beyond the
  fan-in and for the padding). ``segmented``: row ``row0 + q*G' + g`` holds plane q of group g
  (G' groups in the chunk), mat column ``k*C + j`` term j of the group's patch k (0 beyond the
  fan-in, and in the segments a last, partial group leaves empty).
* weight buffer (``W``-bit words), all layers resident at once: slot ``base + (t*n + q)*O + o``
  holds plane q of tile t of output channel o (multiply weights as two's complement bytes;
  ``segmented``: the C-column tile repeated K times).
* requant table: channel ``ch0 + o``, a global index per layer (``rq_mult``, ``rq_shift``,
  ``rq_bias``; a logits layer: the bias).

Programs
--------
One program per chunk: ``[erase] + gather part + compute part``.

* erase (nand_spin): one ERASE per strip of the chunk's data rows (``LOOP S { ERASE a =
  last strip - m * index }``), before the gather part programs them.
* gather part, ``wide``: ``LOOP P { for t in tiles: [MOVE CLEAR if the tile is not full]
  LOOP cols_t { MOVE GATHER a = j, b = offset_base + t*W + j, d = patch_base + patch_start +
  p } NOP; n x WRITE_ROW / PROGRAM imm = TBUF b = q a = row0 + (t*n + q)*P + p }`` (j the
  innermost index, p the patch loop's). The NOP keeps the first plane write two cycles after
  the last GATHER (the transpose buffer is written at a GATHER's S2).
  ``segmented``: ``LOOP G { [CLEAR if fan_in < C]; for k in 0 .. K-1: LOOP fan_in { GATHER a
  = k*C + j, b = offset_base + j, d = patch_base + start + k*G + g }; NOP; n x write a = row0 +
  q*G' + g }`` (G' the chunk's groups), then, in the last chunk of a stage whose patches are
  not a multiple of K, the partial group (r < K patches) with absolute rows: CLEAR, r gather
  loops, NOP, n writes.
* compute part: ``MOVE SETPTR a = out_base + first output position of the chunk``; ``wide``:
  ``LOOP O { LOOP P { tile 0 .. tile T-1 } ; MOVE ADDPTR a = H*W - P/g }``, ``segmented``:
  ``LOOP O { LOOP G { dot of the group ; REQUANT d=1 .. d=K } ; [partial group: dot ;
  REQUANT d=1 .. d=r] ; ADDPTR }``; HALT. ``H*W`` is the stage's output positions per channel,
  g = 4 pooled, else 1; the ADDPTR is left out when its operand is 0. Every operand is
  ``base + 1 * index`` of one loop level (rows: the patch / group; slots and the channel: the
  output channel). The PPU writes channel o's outputs of the chunk at ``out_base + o*H*W +
  first position ..``, in patch order.

Each tile is one dot product of W (or C) terms, reduced in the accumulators and handed to the
PPU by a REQUANT: ``CLEAR`` on tile 0 (a new partial sum), ``EMIT`` on tile T-1, ``NEG`` always
(see below), mode ``REQUANT``, ``MAX4`` / ``AVG4`` (fused pool: the 4 patches of a pool window
are consecutive, positions outside every window are not computed) or ``LOGIT`` (the last
layer).

Tile dot products by route (each route is a module of ``sim.routes``; the adder layers take
the configuration's ``dataflow``, every other layer the first of its ``routes`` that maps it):

* adder layer, dataflow ``write_free`` (n cycles, no array write): ``MIN_STEP`` on planes
  b = n-1 .. 0, ``L1_FIRST`` on the MSB plane (START of the min lanes, acc = q), ``L1_PLANE``
  on the others: acc = sum_k |x_k - w_k|.
* adder layer, dataflow ``abs_diff`` (seed 000; 4n cycles, n write-backs; + 1 ERASE per scratch
  strip on nand_spin): ``FS_STEP`` SIGN pass b = 0 .. n-1 (``first`` on b = 0), ``FS_STEP``
  DIFF pass with the write-back of each difference bit into scratch row ``b`` in the schedule
  DIFF(i), DIFF(i+1), WB(i), WB(i+1) (WB = ``WRITE_ROW`` ``imm = ABS_DIFF``; on nand_spin the
  scratch strip is erased first and WB = ``PROGRAM``), then the scratch rows read MSB first by
  ``SHIFT_ACC`` (``L1_FIRST``: acc = p because row_w = row_min = 0; then ``SHIFT_ADD``). The
  scratch rows are rows 0 .. n-1 (strip-aligned, whole strips reserved).
* multiply layer (every dataflow; ``AND_FU`` + reduce, seed 001 eq. 1; 64 cycles): the 64
  plane pairs (m of x, n of w) in order of m + n descending (MSB first, Horner): the first pair
  of each m + n group with a ``SHIFT_*`` op, the others without shift. The accumulator holds
  the *negated* dot product: a pair on the weight's sign plane (n = 7, weight -2**7) is added
  (``ADD`` / ``SHIFT_ADD``), every other pair subtracted (``SUB`` / ``SHIFT_SUB``), so the very
  first pair, (7, 7), is a plain load ``L1_FIRST`` (acc = p) and no clear cycle is needed; the
  PPU's ``NEG`` restores the sign. Adder layers use ``NEG`` too: golden's adder accumulator is
  ``-sum |x - w|``.

Chunks: as many patches (groups) as fit the rows next to the scratch rows, with every data row
below ``2**config.isa_base_bits`` (absolute rows are operand bases: 4096 in every preset); a
multiple of 4 patches when pooled.

Limits (each a :class:`CompileError` naming the layer, the quantity, its value and the limit):
the configuration's sizes (``rtl.config.SIZE_FIELDS``) -- weight-buffer slots
(``buffer_slots``), requant channels (``requant_channels``), offset- and patch-table entries
(``offset_entries``, ``patch_entries``), the data memory's two regions (``2R <= data_words``),
the kernel area (``patch_mask_bits``), program words (``program_words``) -- each message
ending in the field to raise, the smallest size that holds the model, and its command-line
option (``raise data_words to at least 8192 (--data-words)``); and rows per patch. The operand
bases are as wide as the sizes need (``config.isa_base_bits``), so they limit nothing the
memories hold.

Running: :func:`load_compiled` (buffer, requant table, gather tables) and :func:`run_compiled`
(the image into the data memory, then every chunk program; a synchronous executor such as
``sim.hw.core_model.CoreModel``). A driver of the RTL does the same with
:meth:`CompiledModel.input_words`, :attr:`CompiledModel.offset_words` /
:attr:`CompiledModel.patch_words` (the 48-bit table words) and :meth:`Stage.read_output`.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache, partial

import numpy as np

from golden import layers as L
from golden.model import Model
from rtl.config import SIZE_FIELDS, ZERO_SKIP_DATAFLOWS, check_config
from rtl.isa import (
    BASE_BITS, MAX_LOOP_COUNT, OFFSET_BITS, STRIDE_BITS, Instr, MoveOp, Opcode,
    COUNTER_STALLS, Operand, WriteSrc, counter_names, encode,
)
from rtl.mtj_array import MacroCmd

from sim.compile import asm
from sim.compile import bit_widths as _bw
from sim.compile import grouped as _gc
from sim.compile import layer_stages as _ls
from sim.hw.isa_model import run_program
from sim.routes import RouteError, get_route, route_for
from sim.routes import op as _op
from sim.hw.core_model import (
    MODE_AVG4, MODE_LOGIT, MODE_MAX4, MODE_REQUANT, PIPELINE_DRAIN, PPU_CLEAR, PPU_EMIT,
    add_stalls, expand_program,
    PPU_MODE_LSB, PPU_NEG,
)
from sim.util import UserError

__all__ = [
    "CompileError", "RunError", "CompiledModel", "Stage", "Chunk", "compile_model",
    "host_array_load", "load_compiled", "run_compiled", "program_profile", "RunResult",
    "StageRun", "MAT_MODES", "propose_config",
]

#: Dataflows that can map an adder layer.
#: How a stage uses the mat (module docstring).
MAT_MODES = ("segmented", "wide", "lanes")
_POOL_ORDER = ((0, 0), (0, 1), (1, 0), (1, 1))
_ADDR_MOD = 1 << OFFSET_BITS


class CompileError(UserError):
    """A model (or a layer of it) that can not be mapped onto the core; the message says which
    layer, which quantity, its value and the limit. Where a size of the configuration is too
    small, ``field`` names it (``rtl.config.SIZE_FIELDS``) and ``size`` is the smallest value
    that holds the model's need (None if no allowed value does); otherwise both are None."""
    field: str | None = None
    size: int | None = None


class RunError(RuntimeError):
    """The executor reported an error while running a compiled chunk."""


# ---- program building ----------------------------------------------------------------------

def _move(op: MoveOp, *, a=0, b=0, d=0) -> Instr:
    return _op(Opcode.MOVE, imm=op.value, a=a, b=b, d=d)


@lru_cache(maxsize=1 << 16)
def _encoded(ins: Instr, base_bits: int) -> int:
    """``rtl.isa.encode`` of ``ins``, remembered: a network's chunk programs repeat a few
    thousand distinct instructions many times."""
    return encode(ins, base_bits)


def _assemble(instrs: list, base_bits: int) -> tuple:
    """``asm.assemble(instrs, base_bits=base_bits)`` as a tuple, each distinct instruction
    encoded once (:func:`_encoded`)."""
    asm.check_program(instrs)
    return tuple(_encoded(ins, base_bits) for ins in instrs)


#: :func:`program_profile`'s results by program and the configuration fields they depend on
#: (chunk programs repeat across a stage's bands and views and across compiles of a model).
_PROFILES: dict = {}
_PROFILES_MAX_WORDS = 1 << 21       # emptied above this many words (tens of MB)
_profiled_words = [0]


def program_profile(words, config=None) -> tuple[int, dict]:
    """Controller cycles and counters of a well-formed program (``asm.check_program`` passes),
    from its loop structure alone, by the timing of ``sim.hw.isa_model``: without ``config`` no
    stalls; with it, each micro-op held ``config.op_cycles[op] - 1`` cycles by the core's
    device timing (``AcceleratorConfig.stall_table``), counted in ``stalls`` and ``cycles``.

    Returns ``(cycles, counters)``, counters by name as ``rtl.isa.counter_names``.
    """
    words = tuple(int(w) for w in words)
    # all it reads of the configuration: the word format, the stall table, zero skipping
    key = (words, None if config is None else
           (config.isa_base_bits, config.stall_table, config.zero_skip))
    hit = _PROFILES.get(key)
    if hit is None:
        if _profiled_words[0] + len(words) > _PROFILES_MAX_WORDS:
            _PROFILES.clear()
            _profiled_words[0] = 0
        hit = _PROFILES[key] = _program_profile(words, config)
        _profiled_words[0] += len(words)
    return hit[0], dict(hit[1])


def _program_profile(words: tuple, config) -> tuple[int, dict]:
    from sim.analysis.counting import CountError, _decode, count_program    # (imports this)
    counts = dict.fromkeys(counter_names(), 0)
    mult = [1]
    cycles = 0
    folds = False       # the previous instruction was a NOP or a micro-op
    bb = config.isa_base_bits if config is not None else None
    for w in words:
        ins = _decode(w, BASE_BITS if bb is None else bb)
        m = mult[-1]
        name = ins.op.name.lower()
        if ins.op is Opcode.HALT:
            counts[name] += 1
            cycles += 1
            break
        counts[name] += m
        if ins.op is Opcode.LOOP:
            cycles += m
            mult.append(m * ins.count)
            folds = False
        elif ins.op is Opcode.ENDLOOP:
            cycles += 0 if folds else m
            mult.pop()
            folds = False
        else:
            cycles += m
            folds = True
    if config is not None and config.has_stalls:
        # The holds depend on what lies between a slow micro-op and the next one: from the
        # loop nest (sim.analysis.counting.count_program, equal to the cycle model's counters, in
        # time
        # linear in the words), or for a program it cannot parse from the expanded trace
        # (sim.hw.core_model.add_stalls, the core's rule).
        words = list(words)
        try:
            counts["stalls"] = count_program(words, config).counters["stalls"]
            cycles += counts["stalls"]
            counts["cycles"] = cycles
            return cycles, counts
        except CountError:
            pass
        fast = expand_program(words, depth=max(2, len(words)), base_bits=bb)
        if fast is None:
            issue: list = []
            run = run_program(words, depth=max(2, len(words)), issue_cycles=issue, base_bits=bb)
            fast = ((np.array([m.op.value for m in run.trace], dtype=np.int64),) + (None,) * 4
                    + (np.array(issue, dtype=np.int64),), run.counters, run.error)
        _, counters, _ = add_stalls(*fast, config)
        counts["stalls"] = counters[COUNTER_STALLS]
        cycles += counts["stalls"]
    counts["cycles"] = cycles
    return cycles, counts


# ---- data structures -------------------------------------------------------------------------

@dataclass(eq=False)
class Chunk:
    """One run of the core: ``patches`` patches from ``patch_start`` (in the stage's patch
    order), gathered into ``rows`` and computed by ``program``; it writes ``n_out`` output
    words, ``n_out / out_channels`` per channel from output position ``out_start``.

    ``groups``: row sets (``segmented``: groups of K patches, the last ``partial`` patches
    short of K if ``partial``; ``wide``: one per patch). ``cycles``: controller cycles of the
    run (exact); ``gather_cycles``: those of the erase and the gather part; ``max_cycles``: a
    safe bound for a driver's timeout (cycles + pipeline drain + margin); ``micro_ops``: the
    counters of the run by name (static, from the program's structure).
    """
    stage: Stage = field(repr=False)
    index: int
    patch_start: int
    patches: int
    groups: int
    partial: int
    rows: tuple
    out_start: int
    program: tuple
    n_out: int
    cycles: int
    gather_cycles: int
    max_cycles: int
    micro_ops: dict = field(repr=False)

    def row_image(self, stage_input) -> np.ndarray:
        """What the gather part writes into ``rows`` for ``stage_input`` (the stage's input,
        any integer array of ``stage.in_shape`` elements in [0, 255]): bool [len(rows), W]."""
        st = self.stage
        x = st.patches(stage_input)[self.patch_start:self.patch_start + self.patches]
        n, w = st.n, st.subarrays * st.tile_width if st.mode == "segmented" else st.tile_width
        if st.mode == "segmented":
            full = np.zeros((self.groups * st.subarrays, st.tile_width), dtype=np.uint8)
            full[:self.patches] = x
            x = full.reshape(self.groups, 1, w)          # [G, T = 1, W]: segment k = patch k
        else:
            x = x.reshape(self.patches, st.tiles, w)
        planes = (x[..., None] >> np.arange(n)) & 1     # [P, T, W, n] -> [T, n, P, W]
        return planes.transpose(1, 3, 0, 2).reshape(-1, w).astype(bool)


@dataclass(eq=False)
class Stage:
    """One compute layer of the model (with a fused pool) as core runs.

    ``name``: e.g. ``layer1 adder_conv2d + layer2 max_pool2d``; ``layer_index``: the compute
    layer; ``golden_index``: the layer of ``golden.model.infer_int(trace=True)`` whose output
    this stage reproduces (the pool's when fused); ``in_shape`` / ``out_shape`` / ``dtype``:
    per image; ``route``: ``write_free`` / ``abs_diff`` / ``and_bitcount``; ``pool``: None,
    ``max`` or ``avg``; ``mode``: ``segmented`` / ``wide`` (:data:`MAT_MODES`);
    ``subarrays`` K; ``tile_width``: columns per tile (C segmented, W = K*C wide); ``tiles`` T;
    ``n`` planes; ``group`` patches per output position (4 pooled, else 1); ``buffer_base``,
    ``channel_base``: where its weights and table entries are; ``offset_base``,
    ``patch_base``: its first gather-table entries; ``in_base`` / ``out_base``: its input and
    output in the data memory; ``scratch_rows``: the abs-diff write-back rows; ``data_row0``:
    the first data row; ``chunks``: the runs; ``postproc``: where its sums are post-processed,
    ``ppu`` or ``in_memory`` (seed 001 sec. 4.2, ``sim.compile.nand_postproc``), and
    ``postproc_reason``: with ``postproc='in_memory'`` / ``'mixed'``, why a stage is on the PPU
    (None otherwise).
    """
    name: str
    layer_index: int
    golden_index: int
    kind: str
    output: str
    route: str
    pool: str | None
    mode: str
    in_shape: tuple
    out_shape: tuple
    dtype: type
    out_channels: int
    fan_in: int
    tiles: int
    n: int
    subarrays: int
    tile_width: int
    group: int
    buffer_base: int
    channel_base: int
    scratch_rows: tuple
    data_row0: int
    in_base: int = 0
    out_base: int = 0
    offset_base: int = 0
    patch_base: int = 0
    kernel: tuple = (1, 1)
    stride: int = 1
    padding: int = 0
    config: object = field(default=None, repr=False)
    order: np.ndarray = field(default=None, repr=False)   # patch -> output position (conv)
    zsum_base: int | None = None    # zero skipping: slot of tile 0 channel 0's zero-tile dot
    dima: object = field(default=None, repr=False)  # lanes mode: sim.compile.dima_map.DimaPlan
    pad_value: int = 0              # the code padding inserts (MOVE SETPAD; lanes mode)
    w_bits: int = 8                 # <W:I> of a multiply layer (sim.compile.bit_widths)
    in_bits: int = 8
    out_shift: int = 0              # eq. 2: word >> out_shift is the code (bit_widths)
    chunks: list = field(default_factory=list, repr=False)
    #: Weight streaming (``sim.compile.weight_stream``): ``(chunk index, first slot, image, table)``
    #: host writes of the buffer (and of the requant table: ``(first channel, [(m, s, b)])``
    #: or None) before that chunk runs, every image; empty when resident.
    weight_loads: list = field(default_factory=list, repr=False)
    #: In-memory post-processing of a streamed layer (``sim.compile.weight_stream``): the host
    #: writes of its programs' words into the stream region, as ``weight_loads``.
    postproc_loads: list = field(default_factory=list, repr=False)
    #: Activation tiling (``sim.compile.act_tile``): ``(chunk index, "load" / "store", data-memory
    #: address, tensor offset, words)`` host moves between the data memory and the activation
    #: store, every image; ``act_bands``: the bands of a tiled stage (0: resident).
    act_moves: list = field(default_factory=list, repr=False)
    act_bands: int = 0
    postproc: str = "ppu"
    postproc_reason: str | None = None
    #: In memory: the micro-ops per image of its post-processing programs by part,
    #: ``{"requantize": {op: count}, "pool": {op: count}}`` (static: the programs are
    #: data-independent; ``sim.compile.nand_postproc.plan_stage``).
    postproc_ops: dict = field(default_factory=dict, repr=False)

    @property
    def in_size(self) -> int:
        """Words of the stage's input in the data memory."""
        return math.prod(self.in_shape)

    @property
    def out_size(self) -> int:
        """Words of the stage's output in the data memory."""
        return math.prod(self.out_shape)

    @property
    def positions(self) -> int:
        """Output positions per channel (H*W of the output; 1 for a linear layer)."""
        return self.out_size // self.out_channels

    @property
    def n_patches(self) -> int:
        """Patches the stage computes."""
        return 1 if self.order is None else len(self.order)

    def read_output(self, words) -> np.ndarray:
        """The stage's output from its ``out_size`` data-memory words from ``out_base``
        (unsigned 32-bit, as the core's ``out_rdata`` shows them): an array of ``out_shape``,
        dtype ``self.dtype`` (a logits stage's words as signed 32-bit numbers).

        Raises
        ------
        ValueError
            Not ``out_size`` words, or a requantized word not in [0, 255].
        """
        v = np.asarray([int(w) for w in words], dtype=np.int64)
        if v.shape != (self.out_size,):
            raise ValueError(f"{self.name}: {self.out_size} output words expected, got "
                             f"{v.size}")
        if self.output == "logits":
            v = np.where(v >= 1 << 31, v - (1 << 32), v)
        else:
            bad = np.flatnonzero((v < 0) | (v > L.ACT_MAX))
            if bad.size:
                raise ValueError(f"{self.name}: output word {bad[0]} (address "
                                 f"{self.out_base + bad[0]}) is {v[bad[0]]}, not an activation "
                                 f"in [0, {L.ACT_MAX}]")
            v = v >> self.out_shift
        return v.reshape(self.out_shape).astype(self.dtype)

    def patches(self, stage_input) -> np.ndarray:
        """The stage's patches in patch order, zero-filled to ``tiles * tile_width`` terms:
        uint8 [patches, tiles * tile_width]."""
        x = np.asarray(stage_input)
        if x.size != self.in_size:
            raise ValueError(f"{self.name}: input of {x.size} values, expected shape "
                             f"{self.in_shape}")
        x = x.reshape(self.in_shape)
        if x.dtype.kind not in "iu" or (x.size and (x.min() < 0 or x.max() > L.ACT_MAX)):
            raise ValueError(f"{self.name}: input must hold integers in [0, {L.ACT_MAX}]")
        x = x.astype(np.uint8)
        if self.kind.endswith("conv2d"):
            p, s = self.padding, self.stride
            if p:
                x = np.pad(x, ((0, 0), (p, p), (p, p)))
            win = np.lib.stride_tricks.sliding_window_view(x, self.kernel, axis=(1, 2))
            win = win[:, ::s, ::s]                                  # C, Ho, Wo, kh, kw
            c, ho, wo = win.shape[:3]
            cols = win.transpose(1, 2, 0, 3, 4).reshape(ho * wo, -1)[self.order]
        else:
            cols = x.reshape(1, -1)
        out = np.zeros((cols.shape[0], self.tiles * self.tile_width), dtype=np.uint8)
        out[:, :self.fan_in] = cols
        return out

    @property
    def cycles(self) -> int:
        """Controller cycles of all chunks (static)."""
        return sum(c.cycles for c in self.chunks)

    @property
    def gather_cycles(self) -> int:
        """Controller cycles of the erase and gather parts of all chunks (static)."""
        return sum(c.gather_cycles for c in self.chunks)

    @property
    def micro_ops(self) -> dict:
        """Counters of all chunks summed (static)."""
        total = dict.fromkeys(counter_names(), 0)
        for c in self.chunks:
            for k, v in c.micro_ops.items():
                total[k] += v
        return total


@dataclass(eq=False)
class CompiledModel:
    """A model mapped onto the core.

    ``subarrays`` K and ``width`` W = K * ``config.columns``: the mat. ``buffer``: bool [slots,
    W], the weight-buffer image from slot 0; ``table``: ``(mults, shifts, biases)`` indexed by
    channel; ``offsets``: ``(offset, kpos)`` per offset-table entry from 0; ``patches``:
    ``(base, mask)`` per patch-table entry from 0; ``stages``: one per compute layer;
    ``input_shape``: the model's input (C, H, W); ``region``: R, the words of each data-memory
    region; the core's sizes the model was compiled for.
    """
    config: object
    subarrays: int
    width: int
    buffer: np.ndarray
    table: tuple
    offsets: tuple
    patches: tuple
    stages: list
    input_shape: tuple
    region: int
    buffer_slots: int
    channels: int
    out_depth: int
    imem_depth: int
    offset_depth: int
    patch_depth: int
    #: The PPU's threshold stage (seed 002 eq. 3, ``quant`` outputs): ``(channel, sign,
    #: thresholds)`` per such channel, thresholds clamped to the stage's range
    #: (``sim.compile.dima_map.threshold_words``); empty without ``quant`` layers.
    thresholds: tuple = ()
    #: Programs run once per model load, after the buffer (``sim.routes.dima_bitwise``'s
    #: resident weight rows): ``LoadRun`` s, counted apart from the images.
    load_programs: tuple = ()

    @property
    def cycles(self) -> int:
        """Controller cycles of one image (static), all stages."""
        return sum(s.cycles for s in self.stages)

    @property
    def ppu_fallbacks(self) -> list:
        """``(stage name, why)`` of every stage whose post-processing the PPU does although the
        configuration's ``postproc`` is ``in_memory`` or ``mixed`` (empty with ``ppu``)."""
        return [(st.name, st.postproc_reason) for st in self.stages
                if st.postproc == "ppu" and st.postproc_reason]

    @property
    def gather_cycles(self) -> int:
        """Controller cycles of one image spent in the erase and gather parts (static)."""
        return sum(s.gather_cycles for s in self.stages)

    @property
    def offset_words(self) -> tuple:
        """The offset-table entries as the core's 48-bit ``agu_data``: ``offset | kpos <<
        16``."""
        return tuple(off | kpos << OFFSET_BITS for off, kpos in self.offsets)

    @property
    def patch_words(self) -> tuple:
        """The patch-table entries as the core's 48-bit ``agu_data``: ``base | mask << 16``."""
        return tuple(base | mask << OFFSET_BITS for base, mask in self.patches)

    def input_words(self, x_image) -> np.ndarray:
        """The data-memory words of an image (integers in [0, 255] of ``input_shape``): uint32
        [in_size], to write from ``stages[0].in_base``.

        Raises
        ------
        ValueError
            ``x_image`` has the wrong number of values or values outside [0, 255].
        """
        x = np.asarray(x_image)
        if x.size != math.prod(self.input_shape):
            raise ValueError(f"x_image must have {math.prod(self.input_shape)} values (shape "
                             f"{self.input_shape}), not {x.size}")
        if x.dtype.kind not in "iu" or (x.size and (x.min() < 0 or x.max() > L.ACT_MAX)):
            raise ValueError(f"x_image must hold integers in [0, {L.ACT_MAX}]")
        return x.reshape(-1).astype(np.uint32)


# ---- compiling -------------------------------------------------------------------------------

def _fail(where: str, msg: str):
    raise CompileError(f"{where}: {msg}")


#: Operand-base width of the configuration being compiled (``config.isa_base_bits``), set by
#: :func:`compile_model` before it builds any program.
_ISA_BITS: contextvars.ContextVar[int] = contextvars.ContextVar("isa_base_bits",
                                                               default=BASE_BITS)


def _base(where: str, what: str, value: int) -> int:
    """``value`` as an operand base of the configuration's format (``config.isa_base_bits``
    bits, 12 for every preset), or a CompileError naming ``what``."""
    bits = _ISA_BITS.get()
    if not 0 <= value < 1 << bits:
        _fail(where, f"{what} {value} exceeds the ISA's {bits}-bit operand base (at most "
              f"{(1 << bits) - 1})")
    return value


def _size_for(field: str, need: int) -> int:
    """The smallest allowed value of the size ``field`` (``rtl.config.SIZE_FIELDS``) that
    holds ``need``; above the field's maximum if none does."""
    _, lo, _, pow2, _ = SIZE_FIELDS[field]
    return max(lo, 1 << max(0, need - 1).bit_length()) if pow2 else max(lo, need)


def _too_small(msg: str, field: str, need: int, tail: str = ""):
    """Raise the CompileError ``msg; raise <field> to at least <size> (--<flag>)<tail>``: the
    configuration field that holds ``need``, its smallest allowed size that does, and the
    command-line option that sets it (or that no size of it can). The error carries
    ``field`` and ``size`` (None when no size can) for :func:`propose_config`."""
    size, hi = _size_for(field, need), SIZE_FIELDS[field][2]
    flag = "--" + field.replace("_", "-")
    if size > hi:
        err = CompileError(f"{msg}; no configuration holds that ({field} is at most {hi}, "
                           f"{flag}){tail}")
        err.field, err.size = field, None
    else:
        err = CompileError(f"{msg}; raise {field} to at least {size} ({flag}){tail}")
        err.field, err.size = field, size
    raise err


#: Set while :func:`propose_config` compiles: only the sizes and refusals of the compile are
#: used, so the weight images are zeros of their shapes (:func:`_weight_planes`,
#: :func:`_zero_tile_dots`), and the chunk programs of :func:`_plan_chunks` are checked as
#: ``asm.assemble`` checks them but their words are zeros (as many) and not profiled (cycles 0,
#: no counters); no size or refusal depends on the weights' values, the words or the profiles.
_SIZES_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("sizes_only", default=False)

#: Set while :func:`_propose` compiles: ``postproc='mixed'`` then raises a size a layer's
#: in-memory post-processing needs (so that the proposal holds it) instead of putting that
#: layer on the PPU.
_PROPOSING: contextvars.ContextVar[bool] = contextvars.ContextVar("proposing", default=False)


def _weight_planes(weight: np.ndarray, tiles: int, columns: int, n: int) -> np.ndarray:
    """bool [T*n*O, columns]: slot (t*n + b)*O + o = plane b of tile t of channel o."""
    o = weight.shape[0]
    if _SIZES_ONLY.get():
        return np.zeros((tiles * n * o, columns), dtype=bool)
    w2 = weight.reshape(o, -1)
    dt = next(t for t in (np.uint8, np.uint16, np.uint32, np.uint64) if n <= 8 * t().itemsize)
    full = np.zeros((o, tiles * columns), dtype=dt)                  # two's complement words
    full[:, :w2.shape[1]] = w2.astype(dt) & dt((1 << n) - 1)     # (a cast wraps modulo)
    full = np.ascontiguousarray(full.reshape(o, tiles, columns).transpose(1, 0, 2))  # T,O,cols
    # bit by bit into the output (O x T x cols words at a time, no 64-bit intermediates:
    # a large layer's planes are ~1 GB otherwise)
    out = np.empty((tiles, n, o, columns), dtype=bool)
    for b in range(n):
        np.not_equal(full & dt(1 << b), 0, out=out[:, b])
    return out.reshape(-1, columns)


def _zero_skips(route, config, width: int) -> int:
    """1 if the stage's tile dots are zero-skipped (``config.zero_skip``, the ``abs_diff`` and
    ``jeit_fa`` routes: a SKIPZ before each dot, a buffer slot per tile and channel), else 0.
    Not on a mat row too narrow for a zero-tile dot (W terms of ``2**n - 1``) in a buffer word
    (W < 16)."""
    fits = (width * ((1 << config.operand_bits) - 1)).bit_length() <= width
    return int(bool(config.zero_skip) and route.name in ZERO_SKIP_DATAFLOWS and fits)


def _zero_tile_dots(weight: np.ndarray, tiles: int, columns: int, width: int) -> np.ndarray:
    """bool [T*O, width]: slot t*O + o holds ``sum_k w[o, k]`` over tile t (``columns``
    terms), the dot ``sum_k |x_k - w_k|`` of an all-zero tile (``golden.pim.zero_skip_tile``),
    as an unsigned number in bits 0 .. (the REQUANT addend of a skipped tile)."""
    o = weight.shape[0]
    if _SIZES_ONLY.get():
        return np.zeros((tiles * o, width), dtype=bool)
    w2 = weight.reshape(o, -1)
    full = np.zeros((o, tiles * columns), dtype=np.uint8)
    full[:, :w2.shape[1]] = w2.astype(np.uint8)                    # & 0xFF (a cast wraps)
    sums = full.reshape(o, tiles, columns).sum(axis=2, dtype=np.int64).T.reshape(-1)  # [T*O]
    bits = min(width, 62)
    assert int(sums.max(initial=0)) < 1 << bits, "a zero-tile dot wider than a buffer word"
    out = np.zeros((sums.size, width), dtype=bool)
    out[:, :bits] = (sums[:, None] >> np.arange(bits)) & 1
    return out


def _skipped(stage: Stage, body: list, xrow0, config) -> list:
    """``body`` (a tile dot) preceded by ``MOVE SKIPZ a = xrow0 b = len(body) d = its
    cycles`` on a zero-skipped stage: the controller skips the dot if the tile's plane-0 row
    was written from an all-zero transpose buffer. The dot is straight-line micro-ops (what
    the cycle model assumes); ``d``: one cycle each plus the holds of the stall table.
    Trailing NOPs (``jeit_fa``'s flush of the full-adder array) stay after the skipped range:
    the cycle model's skip drops micro-ops only, and a skipped dot's REQUANT takes the slot."""
    if stage.zsum_base is None:
        return body
    flush = len(body)
    while flush and body[flush - 1].op is Opcode.NOP:
        flush -= 1
    body, tail = body[:flush], body[flush:]
    assert all(ins.op not in (Opcode.NOP, Opcode.LOOP, Opcode.ENDLOOP, Opcode.HALT)
               for ins in body), "a zero-skipped dot must be micro-ops only"
    cycles = sum(config.op_cycles.get(ins.op, 1) for ins in body)
    if body and tail:                   # the last micro-op's hold runs on during the NOPs
        last = config.op_cycles.get(body[-1].op, 1)
        cycles += max(last, 1 + len(tail)) - len(tail) - last
    return [_move(MoveOp.SKIPZ, a=xrow0, b=len(body), d=cycles)] + body + tail


def _dot(stage: Stage, t: int, xrow, wslot, config) -> list:
    """The micro-ops of the dot product of tile ``t`` by the stage's route (``sim.routes``):
    rows ``xrow(b)``, buffer slots ``wslot(b)`` of plane b (ints or loop-relative operands)."""
    return get_route(stage.route).dot(stage, t, xrow, wslot, config)


def _pipelined(stage: Stage, loop: list, config, tail: list = ()) -> list:
    """``loop`` (``LOOP { tile dots, REQUANTs } ENDLOOP``) and the straight-line tile dots
    ``tail`` after it (a segmented chunk's partial group) software-pipelined by the stage's
    route if it has a ``pipeline`` (``jeit_fa``: the next tile's SIGN pass while the array
    flushes, ``sim.routes.jeit_fa``), else ``loop + tail``."""
    pipe = getattr(get_route(stage.route), "pipeline", None)
    return loop + list(tail) if pipe is None else pipe(loop, stage, config, tail=list(tail))


def _requant(stage: Stage, t: int, channel, d: int, zsum=0) -> Instr:
    mode = (MODE_LOGIT if stage.output == "logits" else
            {None: MODE_REQUANT, "max": MODE_MAX4, "avg": MODE_AVG4}[stage.pool])
    ppu = ((PPU_CLEAR if t == 0 else 0) | (PPU_EMIT if t == stage.tiles - 1 else 0) | PPU_NEG
           | mode << PPU_MODE_LSB)
    return _op(Opcode.REQUANT, imm=ppu, a=channel, b=zsum, d=d)


def _zsum(stage: Stage, t: int, level: int):
    """REQUANT's b on a zero-skipped stage: the slot of tile t's zero-tile dot of the channel
    (the channel loop at ``level``); 0 (unused) elsewhere."""
    if stage.zsum_base is None:
        return 0
    return Operand(_base("", "weight-buffer slot", stage.zsum_base + t * stage.out_channels),
                   level, 1)


def _erase_rows(first: int, count: int, config) -> list:
    """ERASE every strip of rows ``first .. first + count - 1`` (``first`` strip-aligned)."""
    m = config.mtjs_per_strip
    strips = -(-count // m)
    if strips == 1:
        return [_op(Opcode.ERASE, a=first)]
    if m <= 1 << (STRIDE_BITS - 1):                    # a stride of -m reaches every strip
        return [asm.loop(count=strips),
                _op(Opcode.ERASE, a=Operand(first + (strips - 1) * m, 0, -m)), asm.endloop()]
    return [_op(Opcode.ERASE, a=first + s * m) for s in range(strips)]


def _write_plane(config) -> Opcode:
    return Opcode.PROGRAM if config.technology == "nand_spin" else Opcode.WRITE_ROW


def _chunk_program(stage: Stage, chunk: Chunk, config, where: str) -> tuple[list, int]:
    """The instructions of ``chunk`` and how many of them are the erase and gather parts."""
    n, k, tw = stage.n, stage.subarrays, stage.tile_width
    out_ch, row0, wbase = stage.out_channels, stage.data_row0, stage.buffer_base
    tbuf = (WriteSrc.TBUF if stage.zsum_base is None else WriteSrc.TBUF_ZS).value
    wb = _write_plane(config)
    instrs = []
    if config.technology == "nand_spin":
        instrs += _erase_rows(row0, len(chunk.rows), config)
    obase = stage.offset_base
    pbase = _base(where, "patch-table entry", stage.patch_base + chunk.patch_start)
    if stage.mode == "wide":
        p = chunk.patches
        instrs.append(asm.loop(count=p))
        for t in range(stage.tiles):
            cols = min(tw, stage.fan_in - t * tw)
            if cols < tw:
                instrs.append(_move(MoveOp.CLEAR))
            instrs += [asm.loop(count=cols),
                       _move(MoveOp.GATHER, a=Operand(0, 0, 1),
                             b=Operand(_base(where, "offset-table entry", obase + t * tw), 0, 1),
                             d=Operand(pbase, 1, 1)),
                       asm.endloop(), asm.nop()]
            instrs += [_op(wb, imm=tbuf, b=q, a=Operand(
                _base(where, "data row", row0 + (t * n + q) * p), 0, 1))
                for q in _bw.planes(stage, n)]
        instrs.append(asm.endloop())
    else:
        g_full, r, g_all = chunk.groups - (1 if chunk.partial else 0), chunk.partial, chunk.groups
        if g_full:
            instrs.append(asm.loop(count=g_full))
            if stage.fan_in < tw:
                instrs.append(_move(MoveOp.CLEAR))
            for s in range(k):
                instrs += [asm.loop(count=stage.fan_in),
                           _move(MoveOp.GATHER,
                                 a=Operand(_base(where, "transpose-buffer column", s * tw), 0, 1),
                                 b=Operand(obase, 0, 1),
                                 d=Operand(_base(where, "patch-table entry", pbase + s * g_full),
                                           1, 1)),
                           asm.endloop()]
            instrs.append(asm.nop())
            instrs += [_op(wb, imm=tbuf, b=q, a=Operand(
                _base(where, "data row", row0 + q * g_all), 0, 1)) for q in _bw.planes(stage, n)]
            instrs.append(asm.endloop())
        if r:
            instrs.append(_move(MoveOp.CLEAR))
            for s in range(r):
                instrs += [asm.loop(count=stage.fan_in),
                           _move(MoveOp.GATHER,
                                 a=Operand(_base(where, "transpose-buffer column", s * tw), 0, 1),
                                 b=Operand(obase, 0, 1),
                                 d=_base(where, "patch-table entry", pbase + k * g_full + s)),
                           asm.endloop()]
            instrs.append(asm.nop())
            instrs += [_op(wb, imm=tbuf, b=q, a=_base(where, "data row",
                                                      row0 + q * g_all + g_full))
                       for q in _bw.planes(stage, n)]
    gather_len = len(instrs)
    # compute part
    m = chunk.n_out // out_ch
    instrs.append(_move(MoveOp.SETPTR, a=_base(where, "data-memory write pointer (SETPTR)",
                                               stage.out_base + chunk.out_start)))
    instrs.append(asm.loop(count=out_ch))
    setup = getattr(get_route(stage.route), "channel_setup", None)
    if setup is not None:           # the channel's weights into the array (dima_bitwise)
        instrs += setup(stage, lambda t, b: Operand(_base(
            where, "weight-buffer slot", wbase + (t * n + b) * out_ch), 0, 1), config)
    if stage.mode == "wide":
        p = chunk.patches
        i0 = len(instrs)
        instrs.append(asm.loop(count=p))
        for t in range(stage.tiles):
            xrow = (lambda b, t=t: Operand(  # noqa: E731
                _base(where, "data row", row0 + (t * n + b) * p), 0, 1))
            instrs += _skipped(stage, _dot(
                stage, t, xrow,
                lambda b, t=t: Operand(_base(where, "weight-buffer slot",
                                             wbase + (t * n + b) * out_ch), 1, 1),
                config), xrow(0), config)
            instrs.append(_requant(stage, t, Operand(stage.channel_base, 1, 1), 0,
                                   _zsum(stage, t, 1)))
        instrs.append(asm.endloop())
        instrs[i0:] = _pipelined(stage, instrs[i0:], config)
    else:
        if g_full:
            i0 = len(instrs)
            instrs.append(asm.loop(count=g_full))
            xrow = lambda b: Operand(_base(where, "data row", row0 + b * g_all), 0, 1)  # noqa: E731
            instrs += _skipped(stage, _dot(stage, 0, xrow,
                                           lambda b: Operand(_base(where, "weight-buffer slot",
                                                                   wbase + b * out_ch), 1, 1),
                                           config), xrow(0), config)
            instrs += [_requant(stage, 0, Operand(stage.channel_base, 1, 1), s + 1,
                                _zsum(stage, 0, 1))
                       for s in range(k)]
            instrs.append(asm.endloop())
        i1 = len(instrs)            # the partial group: pipelined after the full groups
        if r:
            xrow = lambda b: _base(where, "data row", row0 + b * g_all + g_full)  # noqa: E731
            instrs += _skipped(stage, _dot(stage, 0, xrow,
                                           lambda b: Operand(_base(where, "weight-buffer slot",
                                                                   wbase + b * out_ch), 0, 1),
                                           config), xrow(0), config)
            instrs += [_requant(stage, 0, Operand(stage.channel_base, 0, 1), s + 1,
                                _zsum(stage, 0, 0))
                       for s in range(r)]
        if g_full:
            instrs[i0:] = _pipelined(stage, instrs[i0:i1], config, instrs[i1:])
    step = stage.positions - m
    if step:
        instrs.append(_move(MoveOp.ADDPTR, a=_base(where, "write-pointer step (ADDPTR)", step)))
    instrs += [asm.endloop(), asm.halt()]
    return instrs, gather_len


#: ``compile_model``'s size arguments -> the configuration fields they override.
_SIZE_ARGS = {"buffer_slots": "buffer_slots", "channels": "requant_channels",
              "out_depth": "data_words", "imem_depth": "program_words",
              "offset_depth": "offset_entries", "patch_depth": "patch_entries"}


def compile_model(model: Model, config, *, subarrays: int | None = None,
                  buffer_slots: int | None = None, channels: int | None = None,
                  out_depth: int | None = None, imem_depth: int | None = None,
                  offset_depth: int | None = None,
                  patch_depth: int | None = None,
                  stream_weights: bool = False,
                  tile_activations: bool = False, _ppu: dict | None = None,
                  _placed: list | None = None) -> CompiledModel:
    """Map ``model`` onto a core of ``config`` (see the module docstring).

    Parameters
    ----------
    model : golden.model.Model
    config : AcceleratorConfig
        ``dataflow`` chooses the route of adder layers (``write_free`` or ``abs_diff``).
    subarrays : int or None
        Subarrays of the mat (K), default ``config.subarrays_per_mat``.
    buffer_slots, channels, out_depth, imem_depth, offset_depth, patch_depth : int or None
        The core's weight-buffer words, requant table entries, data-memory words, instruction
        words, offset- and patch-table entries: overrides of the configuration's
        ``buffer_slots``, ``requant_channels``, ``data_words``, ``program_words``,
        ``offset_entries``, ``patch_entries`` (``rtl.config.SIZE_FIELDS``; validated as
        those). Default (None): the configuration's. The compiled model's ``config`` is the
        configuration with the overrides.
    stream_weights : bool
        When the compute layers' weights do not fit ``buffer_slots`` at once: load them into
        the buffer per layer (per tile of output channels) while the image runs, instead of
        refusing (``sim.compile.weight_stream``). Default False.
    tile_activations : bool
        When a stage's input or output does not fit half the data memory: run it in bands of
        output rows whose activations the host moves between the data memory and a chip-level
        activation store (``sim.compile.act_tile``), instead of refusing; a model with
        standalone layers or branches then keeps every tensor in the store. Default False.
    _ppu, _placed : dict or None, list or None
        Internal (``postproc='mixed'``): layer index -> why its post-processing is on the PPU
        (an eq.-2 layer found not to fit in memory after its requant entries were chosen, or
        the last layer placed in memory when a size runs out later: the compile restarts with
        it on the PPU); the layers placed in memory so far.

    ``config.postproc`` (``rtl.config.POSTPROC_MODES``): ``ppu``, every layer's post-processing
    on the PPU; ``in_memory``, every ``requant`` layer's in the array (seed 001 sec. 4.2,
    ``sim.compile.nand_postproc.plan_stage``), a layer it is not built for a CompileError;
    ``mixed``, in the array where it is built and fits the core, the PPU for the other layers,
    each stage's ``postproc_reason`` saying why (:attr:`CompiledModel.ppu_fallbacks`; a size
    of the configuration too small for a layer's in-memory path is such a reason, naming the
    field to raise, and :func:`propose_config` raises it so that the layer runs in memory).

    Raises
    ------
    TypeError
        ``model`` is not a ``golden.model.Model`` or ``subarrays`` not an int.
    ValueError
        ``subarrays`` is not positive, or an override is not a valid size.
    CompileError
        A layer the core can not run: an adder layer with dataflow ``and_bitcount``, an
        average window no requant entry rounds exactly (``sim.compile.layer_stages``; every pool
        that is not a fused 2x2 stride-2 one is a stage of its own), weights that do not fit the
        buffer, too many channels, an accumulator wider than ``acc_bits``, a kernel area above
        32, gather tables deeper than the core's, data-memory regions larger than
        ``out_depth``, a patch that needs more rows than the array has, a program longer than
        ``imem_depth``, a base beyond the configuration's operand bases. The message names
        the layer, the quantity, its value and the limit, and where a size of the
        configuration is too small, the field to raise, to what, and its command-line option.
    """
    config = check_config(config)
    if not isinstance(model, Model):
        raise TypeError(f"model must be a golden.model.Model, not {model!r}")
    again = partial(compile_model, model, config, subarrays=subarrays, buffer_slots=buffer_slots,
                    channels=channels, out_depth=out_depth, imem_depth=imem_depth,
                    offset_depth=offset_depth, patch_depth=patch_depth,
                    stream_weights=stream_weights, tile_activations=tile_activations)
    # issue 14 item 2: sim.compile.nand_postproc
    pmode = config.postproc
    ppu_why = dict(_ppu or {})          # layer index -> why the PPU post-processes it
    if pmode == "mixed" and _placed is None and not _PROPOSING.get():
        placed: list = []               # mixed never refuses a size the PPU way fits: the
        try:                            # last layer placed in memory goes to the PPU instead
            return again(_ppu=ppu_why, _placed=placed)
        except CompileError as e:
            if e.field is None or not placed:
                raise
            short = {li: (f"layer {li}: in memory it leaves too little of {e.field} for the "
                          f"layers after it ({e}); propose_config raises it") for li in placed}
            again(_ppu={**ppu_why, **short}, _placed=[])   # the PPU way must fit: else raises
            return again(_ppu={**ppu_why, placed[-1]: short[placed[-1]]})
    if pmode != "ppu":
        from sim.compile import nand_postproc as _np
        if pmode == "in_memory":
            _np.refuse_in_memory(model)
        for li, why in _np.not_built(model).items():
            ppu_why.setdefault(li, why)
    eq2_layers = {i for i, ly in enumerate(model.layers) if "out_bits" in ly.params}
    model0 = model
    _ISA_BITS.set(config.isa_base_bits)
    args = {"buffer_slots": buffer_slots, "channels": channels, "out_depth": out_depth,
            "imem_depth": imem_depth, "offset_depth": offset_depth, "patch_depth": patch_depth}
    given = {_SIZE_ARGS[a]: v for a, v in args.items()
             if v is not None and v != getattr(config, _SIZE_ARGS[a])}
    if given:
        config = replace(config, **given)
        _ISA_BITS.set(config.isa_base_bits)
    buffer_slots, channels, out_depth = (config.buffer_slots, config.requant_channels,
                                         config.data_words)
    imem_depth, offset_depth, patch_depth = (config.program_words, config.offset_entries,
                                             config.patch_entries)
    if subarrays is None:
        subarrays = config.subarrays_per_mat
    if isinstance(subarrays, bool) or not isinstance(subarrays, int):
        raise TypeError(f"subarrays must be an int, not {subarrays!r}")
    if subarrays < 1:
        raise ValueError(f"subarrays must be a positive int, not {subarrays!r}")
    k = subarrays
    n, cols = config.operand_bits, config.columns
    width = k * cols
    _bw.check_model(model, config, CompileError)
    model = _bw.hardware_model(model, CompileError,     # eq. 2: its PPU entries
                               in_memory=(pmode == "in_memory" if pmode != "mixed" else
                                          frozenset(eq2_layers - set(ppu_why))))
    if n != L.ACT_BITS:
        raise CompileError(f"config operand_bits is {n}, but the golden model's activations "
                           f"and weights are {L.ACT_BITS}-bit: use operand_bits={L.ACT_BITS}")
    shapes = model.shapes()
    layers = model.layers
    plans = []                          # (compute index, pool index or None)
    # layers sim.compile.layer_stages maps (standalone pools, add)
    extras = []
    i = 0
    while i < len(layers):
        ly = layers[i]
        where = f"layer {i} ({ly.kind})"
        if ly.kind == "flatten":
            i += 1
            continue
        if _ls.is_standalone(layers, i):
            extras.append(i)
            i += 1
            continue
        if ly.kind in ("max_pool2d", "avg_pool2d"):
            prev = layers[i - 1].kind if i else "the model input"
            _fail(where, f"a pool must directly follow a convolution to be fused into the "
                  f"PPU (MAX4 / AVG4), but it follows {prev}")
        try:                            # grouped: the plain kind's route (sim.compile.grouped)
            route = route_for(_gc.route_probe(ly), config, where)
        except RouteError as e:
            raise CompileError(str(e)) from None
        if _gc.is_generic(ly):
            _gc.check(ly, where, _fail)
        _bw.check_route(ly, route.name, where, CompileError)
        pool = None
        if (i + 1 < len(layers) and layers[i + 1].kind in ("max_pool2d", "avg_pool2d")
                and not _ls.is_standalone(layers, i + 1)):
            pl = layers[i + 1]
            ks, s = int(pl.params["kernel"]), int(pl.params["stride"])
            if not ly.kind.endswith("conv2d"):
                _fail(f"layer {i + 1} ({pl.kind})", "a pool must follow a convolution")
            if (ks, s) != (2, 2):
                _fail(f"layer {i + 1} ({pl.kind})",
                      f"only kernel 2 stride 2 pools can be fused into the PPU (MAX4 / AVG4 "
                      f"reduce 4 consecutive outputs), not kernel {ks} stride {s}")
            pool = i + 1
        plans.append((i, pool, route))
        i += 1 if pool is None else 2
    if not plans:
        raise CompileError("the model has no compute layer (convolution or linear) to map")

    from sim.compile import dima_map as _dm      # seed 002's class A : class B split of the mat
    _dm.check_classes(config, k, [(ci, layers[ci], r.name) for ci, _, r in plans])
    kof = {r.name: _class_k(_dm, config, k, r.name) for _, _, r in plans}
    infos = []                          # per plan: fan_in, out_ch, mode, tile width, tiles
    for ci, _, r in plans:
        w = layers[ci].params["weight"]
        fan_in = int(np.prod(w.shape[1:]))
        kp = kof[r.name][0]
        mode = "segmented" if kp > 1 and fan_in <= cols else "wide"
        tw = cols if mode == "segmented" else kp * cols
        infos.append((fan_in, int(w.shape[0]), mode, tw, -(-fan_in // tw)))
    need = [_slots_of(layers, shapes, plan, info, config, kof[plan[2].name][0],
                      kof[plan[2].name][0] * cols)
            for plan, info in zip(plans, infos, strict=True)]
    total = sum(need)
    # sim.compile.weight_stream: (first slot, slots) of the region
    stream = None
    least = 0                           # one row of lanes' in-memory post-processing words
    if pmode != "ppu" and stream_weights:
        least = max((_np.stream_words(layers[ci], fan_in)
                     for (ci, _, r), (fan_in, *_) in zip(plans, infos, strict=True)
                     if r.name != "dima_binconv" and ci not in ppu_why
                     and not (_gc.is_generic(layers[ci]) and layers[ci].groups > 1)
                     and not (config.conv_map == "fig10" and layers[ci].kind == "mul_conv2d")),
                    default=0)
    if total > buffer_slots and stream_weights:
        from sim.compile import weight_stream as _ws
        stream = _ws.region(need, [r.name for _, _, r in plans], buffer_slots, bool(extras),
                            least)
    if total > buffer_slots and stream is None:
        parts = ", ".join(f"layer {ci} ({layers[ci].kind}) {u}"
                          for (ci, _, _), u in zip(plans, need, strict=True))
        zs = " (+ 1 zero-tile dot on zero-skipped layers)" if config.zero_skip else ""
        _too_small(f"the model's weights need {total} weight-buffer slots (tiles x {n} planes"
                   f"{zs} x output channels: {parts}), but buffer_slots is {buffer_slots}",
                   "buffer_slots", total, ", or use more columns")
    total = sum(o for _, o, _, _, _ in infos)
    tstream = None                      # the requant table streamed too: (first, entries)
    if total > channels and stream_weights:
        from sim.compile import weight_stream as _ws
        tstream = _ws.table_region(total, channels, bool(extras))
        if stream is None:              # the table streams with its layers' weights
            stream = _ws.region(need, [r.name for _, _, r in plans], buffer_slots,
                                bool(extras), least)
    if total > channels and tstream is None:
        _too_small(f"the model has {total} output channels in its compute layers, but the "
                   f"requant table has requant_channels={channels} entries",
                   "requant_channels", total)
    # data-memory regions: the largest stage input or output
    sizes = []
    for ci, pi, _ in plans:
        last = ci if pi is None else pi
        sizes += [(math.prod(shapes[_ls.reads_of(layers, ci) + 1]),
                   f"layer {ci} ({layers[ci].kind}) input"),
                  (math.prod(shapes[last + 1]), f"layer {last} ({layers[last].kind}) output")]
    region, what = max(sizes, key=lambda s: s[0])
    layout = (_ls.layout_for(model, plans, extras) if extras or _ls.has_branches(layers)
              else None)
    tplan = None                        # activation tiling (sim.compile.act_tile)
    if tile_activations and (layout.words > out_depth if layout is not None
                             else 2 * region > out_depth):
        from sim.compile import act_tile as _at
        if _bw.has_eq2(model):
            raise CompileError("tile_activations: the model has eq. 2 layers (out_bits), whose "
                               "MSB-aligned words the activation store does not keep; not "
                               "built yet")
        if layout is None:              # the chain plan; bands of the stages that may
            inmem = set() if pmode == "ppu" or stream is not None else {   # run in memory
                si for si, (ci, _, r) in enumerate(plans)                  # hold raw sums
                if r.name != "dima_binconv" and layers[ci].is_conv
                and not (config.conv_map == "fig10" and layers[ci].kind == "mul_conv2d")
                and _ppu_reason(ppu_why.get(ci), layers[ci], None,
                                layers[ci].groups if _gc.is_generic(layers[ci]) else 1,
                                None, si) is None}
            tplan = _at.plan(sys.modules[__name__], model, plans, shapes, config, _fail,
                             inmem=inmem, width=width)
            region = tplan.half
        else:                           # standalone layers, branches: every tensor stored
            tplan = _at.plan_store(sys.modules[__name__], model, plans, extras, shapes,
                                   config, _fail)
    if layout is not None and layout.words > out_depth and tplan is None:
        _too_small(f"the data memory needs {layout.words} words for the tensors alive at once "
                   f"(standalone layers {', '.join(map(str, extras))}: sim.compile.layer_stages' "
                   f"layout), but data_words is {out_depth}", "data_words", layout.words)
    if layout is None and 2 * region > out_depth:
        _too_small(f"the data memory needs two regions of {region} words (the largest stage "
                   f"input or output, the {what}), {2 * region} words, but data_words is "
                   f"{out_depth}", "data_words", 2 * region)

    stages, images, thresholds = [], [], []
    slot = chan = obase = pbase = 0
    if stream is not None:              # the stream region first, resident slots after it
        slot = stream[0] + stream[1]    # (zeros in the image: ``buffer`` is from slot 0)
        images.append(np.zeros((slot, width), dtype=bool))
    mults, shifts, biases = [], [], []
    if tstream is not None:             # likewise the table's (identity entries until loaded):
        chan = tstream[0] + tstream[1]  # the resident entries after it sit at their channels
        mults, shifts, biases = [1] * chan, [0] * chan, [0] * chan
    offsets, patches = [], []
    if tplan is not None:               # the bands' patch-table region (sim.compile.act_tile)
        pbase = tplan.patch_region
        patches += [(0, 0)] * pbase
    for si, ((ci, pi, route), (fan_in, out_ch, mode, tw, tiles)) in enumerate(
            zip(plans, infos, strict=True)):
        ly = layers[ci]
        where = f"layer {ci} ({ly.kind})"
        w = ly.params["weight"]
        kind = ly.acc_kind
        bound = L.conv_acc_bound(kind, fan_in)
        if bound > (1 << (config.acc_bits - 1)) - 1:
            _fail(where, f"the accumulator can reach {bound} (fan-in {fan_in}), which does not "
                  f"fit acc_bits={config.acc_bits} signed bits")
        scratch = route.scratch_rows(config)
        if hasattr(route, "stage_scratch_rows"):     # rows that depend on the tiles
            scratch = route.stage_scratch_rows(config, tiles, ci)
        data_row0 = -(-len(scratch) // config.mtjs_per_strip) * config.mtjs_per_strip
        kp, koff = kof[route.name]              # the stage's class: subarrays, first one
        if route.name == "dima_binconv":          # seed 002 Fig. 4b: sim.compile.dima_map
            slot, chan, obase, pbase = _dima_stage(
                stages, images, (mults, shifts, biases, thresholds), offsets, patches, ly=ly,
                ci=ci,
                pi=pi, si=si, layers=layers, shapes=shapes, config=config, k=kp,
                region=region, bases=(slot, chan, obase, pbase), where=where,
                depths=(offset_depth, patch_depth, imem_depth), class_at=(koff, width),
                layout=layout)
            continue
        # weight buffer and requant table
        fig10 = config.conv_map == "fig10" and ly.kind == "mul_conv2d"  # sim.compile.nand_conv
        if stream is not None:          # loaded per channel tile below, not resident
            resident_slot, slot = slot, stream[0]
        groups = ly.groups if _gc.is_generic(ly) else 1     # views per group (sim.compile.grouped)
        if stream is None and not fig10:    # streamed: each channel tile's (weight_stream)
            _base(where, "weight-buffer slot", slot + (tiles * n - 1) * out_ch)
        if stream is None and groups == 1 and not fig10:  # (streamed / grouped: per view)
            planes = _weight_planes(w, tiles, tw, n)
            images.append(_pad_to(np.tile(planes, (1, kp)) if mode == "segmented" else planes,
                                  width))
        zsum_base = None
        # slot zsum_base + t*O + o: tile t's sum of w (streamed: sim.compile.weight_stream's own)
        if stream is None and groups == 1 and _zero_skips(route, config, kp * cols) and not fig10:
            zsum_base = slot + tiles * n * out_ch
            _base(where, "weight-buffer slot", zsum_base + tiles * out_ch - 1)
            images.append(_pad_to(_zero_tile_dots(w, tiles, tw, kp * cols), width))
        _base(where, "requant channel base", chan)
        if tstream is not None:         # streamed with the weights (sim.compile.weight_stream)
            resident_chan, chan = chan, tstream[0]
        elif ly.output == "logits":
            mults += [1] * out_ch
            shifts += [0] * out_ch
            biases += [int(v) for v in ly.params["bias"]]
        else:
            mults += [int(v) for v in ly.params["rq_mult"]]
            shifts += [int(v) for v in ly.params["rq_shift"]]
            biases += [int(v) for v in ly.params["rq_bias"]]
        in_shape, conv_shape = tuple(shapes[_ls.reads_of(layers, ci) + 1]), tuple(shapes[ci + 1])
        out_shape = tuple(shapes[pi + 1]) if pi is not None else conv_shape
        pool = None if pi is None else layers[pi].kind[:3]
        name = f"layer{ci} {ly.kind}" + ("" if pi is None else f" + layer{pi} {layers[pi].kind}")
        stage = Stage(
            name=name, layer_index=ci, golden_index=ci if pi is None else pi, kind=ly.kind,
            output=ly.output, route=route.name, pool=pool, mode=mode, in_shape=in_shape,
            out_shape=out_shape, dtype=np.int64 if ly.output == "logits" else np.uint8,
            out_channels=out_ch, fan_in=fan_in, tiles=tiles, n=n, subarrays=kp, tile_width=tw,
            group=4 if pool else 1, buffer_base=slot, channel_base=chan, scratch_rows=scratch,
            data_row0=data_row0, in_base=region * (si % 2), out_base=region * ((si + 1) % 2),
            offset_base=obase, patch_base=pbase, config=config, zsum_base=zsum_base,
            **_bw.stage_bits(ly))
        if layout is not None:          # standalone layers: sim.compile.layer_stages' data layout
            stage.in_base = layout.of(_ls.reads_of(layers, ci))
            stage.out_base = layout.of(stage.golden_index)
        if tplan is not None and tplan.store:   # its own data memory (sim.compile.act_tile)
            _at.place_whole(stage)
        if fig10:                       # seed 001 Fig. 7 / Fig. 10 (issue 14 item 3)
            from sim.compile.nand_conv import compile_stage
            slot, obase, pbase = compile_stage(
                sys.modules[__name__], stage, ly, config, where, width=width, region=region,
                cursor=(slot, obase, pbase), lists=(images, offsets, patches),
                imem_depth=imem_depth, refuse=(
                    "weights streamed" if stream is not None else
                    "activations tiled" if tplan is not None else
                    "standalone layers or branches (sim.compile.layer_stages' data layout)"
                    if layout is not None else "groups" if groups > 1 else
                    f"{k} subarrays, not the configuration's {config.subarrays_per_mat}"
                    if k != config.subarrays_per_mat else None))
            chan += out_ch
            if stream is not None:
                slot = resident_slot
            stage.postproc = "in_memory"        # requantized in the array (nand_conv)
            stages.append(stage)
            continue
        slot += tiles * (n + _zero_skips(route, config, kp * cols)) * out_ch
        chan += out_ch
        # offset table: one entry per term (per group's terms: sim.compile.grouped)
        if obase + fan_in * groups > offset_depth:
            _too_small(f"{where}: its {fan_in * groups} offset-table entries (from entry "
                       f"{obase}) need {obase + fan_in * groups}, but offset_entries is "
                       f"{offset_depth}", "offset_entries", obase + fan_in * groups)
        if ly.is_conv or _gc.is_generic(ly):
            kh, kw = (int(v) for v in w.shape[2:])
            if kh * kw > config.patch_mask_bits:
                _too_small(f"{where}: the kernel area {kh}x{kw} = {kh * kw} exceeds the patch "
                           f"mask's {config.patch_mask_bits} bits", "patch_mask_bits", kh * kw)
            stage.kernel = (kh, kw)
            stage.stride, stage.padding = int(ly.params["stride"]), int(ly.params["padding"])
            c_in, h, wi = in_shape
            if tplan is not None:       # a band's rows per channel (sim.compile.act_tile)
                h = _at.offset_rows(tplan, si, h)
            cc, yy, xx = np.meshgrid(np.arange(c_in), np.arange(kh), np.arange(kw),
                                     indexing="ij")
            offs = (cc * h * wi + yy * wi + xx).ravel()
            kpos = (yy * kw + xx).ravel()
            if groups > 1:              # (h: a band's rows per channel when tiled)
                offs, kpos = _gc.offsets(ly, (c_in, h, wi))
            ho, wo = conv_shape[1:]
            if pool:
                hp, wp = out_shape[1:]
                stage.order = np.array([(2 * i + di) * wo + 2 * j + dj for i in range(hp)
                                        for j in range(wp) for di, dj in _POOL_ORDER])
            else:
                stage.order = np.arange(ho * wo)
        else:
            offs, kpos = np.arange(fan_in), np.zeros(fan_in, dtype=np.int64)
        if int(offs.max()) >= _ADDR_MOD:
            _fail(where, f"the gather offset {int(offs.max())} does not fit the offset "
                  f"table's {OFFSET_BITS} bits")
        offsets += list(zip(offs.tolist(), kpos.tolist(), strict=True))
        obase += fan_in * groups
        # chunks, then the patch table in the order the chunk programs read it
        if pbase + stage.n_patches > patch_depth and not (tplan and tplan.tiled.get(si)):
            _too_small(f"{where}: its {stage.n_patches} patch-table entries (from entry "
                       f"{pbase}) need {pbase + stage.n_patches}, but patch_entries is "
                       f"{patch_depth}", "patch_entries", pbase + stage.n_patches)
        if pmode == "in_memory" and groups > 1:
            _fail(where, f"in-memory post-processing (postproc='in_memory') of a grouped layer "
                         f"({groups} groups, sim.compile.grouped) is not built yet; use "
                         f"postproc='ppu' or 'mixed'")
        if pmode == "in_memory" and stream is not None and tplan is not None \
                and tplan.tiled.get(si):
            _fail(where, "in-memory post-processing (postproc='in_memory') of a layer whose "
                         "weights are streamed (sim.compile.weight_stream) and whose "
                         "activations are tiled in bands (sim.compile.act_tile) is not built "
                         "yet; use postproc='ppu' or 'mixed'")
        why = (None if pmode == "ppu" else
               _ppu_reason(ppu_why.get(ci), ly, stream, groups, tplan, si))
        if why is not None and ci in eq2_layers and ci not in ppu_why:
            # its requant entries were kept for the array (hardware_model): restart with
            # the PPU's (mixed; in_memory refused such a layer above)
            return again(_ppu={**ppu_why, ci: why}, _placed=_restart(_placed))
        if pmode != "ppu" and why is None:  # issue 14, seed 001 sec. 4.2 (nand_postproc)
            mark = (len(images), len(offsets), len(patches), mults[-out_ch:],
                    shifts[-out_ch:], biases[-out_ch:])
            try:
                if tplan is not None and tplan.tiled.get(si):   # per band (act_tile)
                    stage.act_bands = len(tplan.bands[si][2])
                    box = {"nand": _np, "cursor": (slot, obase),
                           "lists": (images, offsets, (mults, shifts, biases))}
                    patches += _at.build_tiled(sys.modules[__name__], stage, si, tplan, w,
                                               route, config, None, where,
                                               imem_depth=imem_depth, width=width, layer=ly,
                                               inmem=box)
                    slot, obase = box["cursor"]
                else:
                    sums_base, limit = (2 * region if layout is None else layout.words), None
                    if tplan is not None:   # resident in a tiled model: a half's free words
                        sums_base, limit = _resident_sums(stage, region)
                    streamed = None     # channel tiles, then batches (weight_stream)
                    if stream is not None:
                        from sim.compile import weight_stream as _ws
                        streamed = {"region": stream, "table": tstream, "weight": w,
                                    "route": route, "buffer_for": partial(
                                        _ws.buffer_for, need=need,
                                        routes=[r.name for _, _, r in plans],
                                        extras=bool(extras))}
                    slot, obase, pbase = _np.plan_stage(
                        sys.modules[__name__], stage, ly, config, where, width=width,
                        region=region, cursor=(slot, obase, pbase),
                        lists=(images, offsets, patches, (mults, shifts, biases)),
                        imem_depth=imem_depth, sums_base=sums_base, limit=limit,
                        stream=streamed)
                    if stream is not None:
                        slot = resident_slot
                    if tstream is not None:
                        chan = resident_chan
                stage.postproc = "in_memory"
                if _placed is not None:
                    _placed.append(ci)
                stages.append(stage)
                continue
            except CompileError as e:   # mixed: what the in-memory path can not do -> the PPU
                if pmode != "mixed" or (e.size is not None and _PROPOSING.get()):
                    raise               # (propose_config raises a size the array needs)
                if ci in eq2_layers or (tplan is not None and tplan.sums.get(si)):
                    # eq. 2: its requant entries were kept for the array; tiled: its bands
                    # were sized for the raw sums (act_tile), the PPU's hold more rows
                    return again(_ppu={**ppu_why, ci: str(e)}, _placed=_restart(_placed))
                why = str(e)
                del images[mark[0]:], offsets[mark[1]:], patches[mark[2]:]
                mults[-out_ch:], shifts[-out_ch:], biases[-out_ch:] = mark[3:]
                stage.chunks, stage.postproc_ops = [], {}
                stage.weight_loads, stage.postproc_loads = [], []
        stage.postproc_reason = why
        if tplan is not None and tplan.tiled.get(si):     # bands (sim.compile.act_tile)
            stage.act_bands = len(tplan.bands[si][2])
            patches += _at.build_tiled(sys.modules[__name__], stage, si, tplan, w, route, config,
                                       stream, where, imem_depth=imem_depth, width=width,
                                       table=tstream, layer=ly, groups=groups, images=images)
            slot = resident_slot if stream is not None else slot
            chan = resident_chan if tstream is not None else chan
            stages.append(stage)
            continue
        if stream is not None or groups > 1:    # views: channel tiles, groups
            from sim.compile import weight_stream as _ws
            patches += _ws.build_streamed(sys.modules[__name__], stage, w, route, config,
                                          stream, where, imem_depth=imem_depth, width=width,
                                          groups=groups, images=images, table=tstream,
                                          layer=ly)
            if stream is not None:
                slot = resident_slot
            if tstream is not None:
                chan = resident_chan
        else:
            _plan_chunks(stage, config, where, imem_depth=imem_depth)
            patches += _patch_entries(stage)
        pbase += stage.n_patches
        stages.append(stage)

    if layout is not None:
        cursor = {"slot": slot, "chan": chan, "obase": obase, "pbase": pbase, "images": images,
                  "table": [], "offsets": offsets, "patches": patches}
        if config.class_split is not None:      # seed 002 sec. 3.3: pools on class B's Sum
            cursor.update(width=width, class_k=lambda r: _class_k(_dm, config, k, r)[0])
        finish = _ls.finish if tplan is None else partial(_at.finish_store, tplan=tplan)
        stages = finish(
            sys.modules[__name__], model=model, config=config, k=k, layout=layout, plans=plans,
            extras=extras, stages=stages, cursor=cursor,
            sizes={"buffer_slots": buffer_slots, "requant_channels": channels,
                   "offset_entries": offset_depth, "patch_entries": patch_depth,
                   "data_words": out_depth, "program_words": imem_depth})
        for m_, s_, b_ in cursor["table"]:
            mults.append(m_)
            shifts.append(s_)
            biases.append(b_)
        if pmode != "ppu":              # the standalone layers: the PPU (nand_postproc.NOT_BUILT)
            for st in stages:
                if st.layer_index in extras:
                    st.postproc_reason = ppu_why.get(st.layer_index, _np.NOT_BUILT)
    if layout is None:
        # A chunk's last ADDPTR leaves the write pointer out_start words past its stage's
        # output (out_base + out_start + out_size); the core flags a pointer past data_words
        # even when nothing is written there (sim.compile.layer_stages checks its own layout).
        end, st_end = max(((st.out_base + ch.out_start + st.out_size, st)
                           for st in stages for ch in st.chunks if not st.act_bands),
                          key=lambda e: e[0], default=(0, None))
        if end > out_depth:
            _too_small(f"{st_end.name}: its chunks' write pointer ends at word {end} (the "
                       f"output at {st_end.out_base}, {st_end.out_size} words, and a chunk's "
                       f"last step), but data_words is {out_depth}", "data_words", end)
    if tplan is not None:
        _at.link(stages, tplan, layers)
    used = sum(len(im) for im in images)   # the in-memory post-processing's words too
    if used > buffer_slots:
        _too_small(f"the weight buffer needs {used} slots (the weights and seed 001's in-memory "
                   f"post-processing words), but buffer_slots is {buffer_slots}",
                   "buffer_slots", used)
    buffer = np.concatenate(images)
    compiled = CompiledModel(config=config, subarrays=k, width=width, buffer=buffer,
                         table=(tuple(mults), tuple(shifts), tuple(biases)),
                         offsets=tuple(offsets), patches=tuple(patches), stages=stages,
                         input_shape=tuple(model.input_shape), region=region,
                         buffer_slots=buffer_slots, channels=channels, out_depth=out_depth,
                         imem_depth=imem_depth, offset_depth=offset_depth,
                         patch_depth=patch_depth, thresholds=tuple(thresholds))
    _dm.gate_classes(compiled)                   # seed 002: each class on its own subarrays
    from sim.routes import dima_bitwise as _db   # weight rows resident where rows are spare
    return _db.with_resident_weights(compiled, lambda: compile_model(
        model0, config, subarrays=k, stream_weights=stream_weights,
        tile_activations=tile_activations, _ppu=ppu_why,  # the same compile (sizes in config)
        _placed=None if _placed is None else []))


def _restart(placed):
    """``placed`` emptied for a compile that starts again (None stays None)."""
    if placed is not None:
        placed.clear()
    return placed


def _resident_sums(stage, half: int) -> tuple:
    """``(sums_base, limit)``: where a resident stage of a tiled model (``sim.compile.act_tile``'s
    chain plan: its input in one half of the data memory, its output in the other, nothing
    else alive) keeps its raw sums: after its output in the output half if they and the
    write pointer's end (below one position count past them) fit there, else after its input
    in the input half (``nand_postproc.plan_stage`` refuses, naming ``data_words``, if that
    does not fit either)."""
    reach = stage.out_channels * stage.n_patches + stage.n_patches
    for base, end in ((stage.out_base + stage.out_size, stage.out_base + half),
                      (stage.in_base + stage.in_size, stage.in_base + half)):
        if base + reach <= end:
            return base, end
    return stage.out_base + stage.out_size, stage.out_base + half


def _ppu_reason(why, layer, stream, groups: int, tplan, si: int = -1) -> str | None:
    """With ``postproc`` ``in_memory`` or ``mixed``: why a compute layer's post-processing is on
    the PPU, or None (in the array, seed 001 sec. 4.2); ``why``: the model-level reason
    (``sim.compile.nand_postproc.not_built``) or None; ``si`` the stage index (a tiled
    stage's bands may have no room for the raw sums: ``tplan.no_room``)."""
    if why is not None:
        return why
    if layer.output == "logits":
        return ("logits: the PPU's LOGIT adds the bias to the sum (no requantization; as with "
                "postproc 'in_memory')")
    if groups > 1:
        return (f"grouped ({groups} groups, sim.compile.grouped): in-memory post-processing of "
                f"such a layer is not built yet")
    if tplan is not None and tplan.store:
        return ("activations tiled in store mode (sim.compile.act_tile: standalone layers or "
                "branches): in-memory post-processing of such a model is not built yet")
    if stream is not None and tplan is not None and tplan.tiled.get(si):
        return ("weights streamed (sim.compile.weight_stream) and activations tiled in bands "
                "(sim.compile.act_tile): in-memory post-processing of such a layer is not "
                "built yet")
    if tplan is not None and tplan.tiled.get(si) and not tplan.sums.get(si):
        return tplan.no_room.get(si, "activations tiled (sim.compile.act_tile): its bands "
                                     "hold no raw sums")
    return None


def _slots_of(layers, shapes, plan, info, config, k: int, width: int) -> int:
    """Weight-buffer words of one planned stage: tiles x planes (+ zero-tile dots) x output
    channels, or on the FA/FS lanes ``sim.compile.dima_map``'s sign words, masks and zero word."""
    ci, pi, route = plan
    _, o, _, _, t = info
    if route.name == "dima_binconv":
        from sim.compile import dima_map
        return dima_map.slots_needed(layers[ci], tuple(shapes[ci]), config, k, pi is not None,
                                     f"layer {ci} ({layers[ci].kind})")
    return t * (config.operand_bits + _zero_skips(route, config, width)) * o


def _class_k(dm, config, k: int, route: str) -> tuple:
    """(subarrays, first subarray) of a stage on ``route`` on a mat of ``k``: with seed 002's
    ``class_split`` (``sim.compile.dima_map.class_subarrays``) and k >= 2, ``dima_binconv`` on the
    class-A subarrays (the last K_A), the AND routes on class B (the first K_B: their zero
    weight columns leave the class-A accumulators 0); every other stage on the whole mat."""
    ks = dm.class_subarrays(config, k)
    if ks is None or k == 1:
        return k, 0
    if route == "dima_binconv":
        return ks[0], ks[1]
    return (ks[1], 0) if route in ("dima_bitwise", "and_bitcount") else (k, 0)


def _pad_to(image: np.ndarray, width: int) -> np.ndarray:
    """A buffer image [slots, w <= width] zero-extended to the mat's ``width`` columns."""
    if image.shape[1] == width:
        return image
    out = np.zeros((image.shape[0], width), dtype=image.dtype)
    out[:, :image.shape[1]] = image
    return out


def _dima_stage(stages, images, table, offsets, patches, *, ly, ci, pi, si, layers, shapes,
                config, k, region, bases, where, depths, class_at=(0, None),
                layout=None) -> tuple:
    """Append the stage of a ``bin_gconv2d`` layer on the FA/FS lanes (``sim.compile.dima_map``):
    its
    buffer image, requant entries, offset and patch entries; returns the next bases
    ``(slot, chan, obase, pbase)``. ``layout``: ``sim.compile.layer_stages``' data layout of a
    model with standalone layers or branches (the stage's input and output bases from it),
    None for the two-region layout."""
    from sim.compile import dima_map
    slot, chan, obase, pbase = bases
    offset_depth, patch_depth, imem_depth = depths
    out_ch = int(ly.params["weight"].shape[0])
    _base(where, "requant channel base", chan)
    if ly.output == "logits":
        table[0].extend([1] * out_ch)
        table[1].extend([0] * out_ch)
        table[2].extend(int(v) for v in ly.params["bias"])
    elif ly.output == "requant":
        table[0].extend(int(v) for v in ly.params["rq_mult"])
        table[1].extend(int(v) for v in ly.params["rq_shift"])
        table[2].extend(int(v) for v in ly.params["rq_bias"])
    elif ly.output == "quant":                   # the PPU's threshold stage, eq. 3
        for t in range(3):
            table[t].extend([0] * out_ch)
        table[3].extend(dima_map.threshold_words(ly, chan, config))
    in_shape, conv_shape = tuple(shapes[_ls.reads_of(layers, ci) + 1]), tuple(shapes[ci + 1])
    out_shape = tuple(shapes[pi + 1]) if pi is not None else conv_shape
    pool = None if pi is None else layers[pi].kind[:3]
    name = f"layer{ci} {ly.kind}" + ("" if pi is None else f" + layer{pi} {layers[pi].kind}")
    fan_in = int(np.prod(ly.params["weight"].shape[1:]))
    fields = dict(
        name=name, layer_index=ci, golden_index=ci if pi is None else pi, kind=ly.kind,
        output=ly.output, route="dima_binconv", pool=pool, in_shape=in_shape,
        out_shape=out_shape, dtype=np.int64 if ly.output == "logits" else np.uint8,
        out_channels=out_ch, fan_in=fan_in, n=config.operand_bits, subarrays=k,
        group=4 if pool else 1, buffer_base=slot, channel_base=chan,
        in_base=region * (si % 2), out_base=region * ((si + 1) % 2), offset_base=obase,
        patch_base=pbase, config=config)
    if layout is not None:              # standalone layers: sim.compile.layer_stages' data layout
        fields.update(in_base=layout.of(_ls.reads_of(layers, ci)),
                      out_base=layout.of(fields["golden_index"]))
    stage, image, offs = dima_map.build_stage(
        Stage, Chunk, layer=ly, in_shape=in_shape, config=config, subarrays=k,
        pooled=pool is not None, where=where, fields=fields, imem_depth=imem_depth,
        offset=class_at[0], width=class_at[1])
    _base(where, "weight-buffer slot", slot + len(image) - 1)
    if obase + len(offs) > offset_depth:
        _too_small(f"{where}: its {len(offs)} offset-table entries (from entry {obase}) need "
                   f"{obase + len(offs)}, but offset_entries is {offset_depth}",
                   "offset_entries", obase + len(offs))
    if pbase + stage.n_patches > patch_depth:
        _too_small(f"{where}: its {stage.n_patches} patch-table entries (from entry "
                   f"{pbase}) need {pbase + stage.n_patches}, but patch_entries is "
                   f"{patch_depth}", "patch_entries", pbase + stage.n_patches)
    images.append(image)
    offsets += offs
    patches += dima_map.stage_patch_entries(stage)
    stages.append(stage)
    return slot + len(image), chan + out_ch, obase + len(offs), pbase + stage.n_patches


def propose_config(model: Model, config, *, subarrays: int | None = None,
                   stream_weights: bool = False, tile_activations: bool = False):
    """``config`` with each size the model needs raised to the smallest allowed value that
    holds it (``rtl.config.SIZE_FIELDS``; sizes that suffice are kept): compile, raise the
    field a :class:`CompileError` names, repeat. With ``stream_weights``, weights that no
    buffer size holds are streamed (``compile_model(..., stream_weights=True)``, which the
    proposal is then for) through the largest buffer. With ``tile_activations``, activations
    that no data memory holds are tiled (``sim.compile.act_tile``) through the largest.

    Its compiles are for sizes and refusals only (:data:`_SIZES_ONLY`: no weight images, no
    program profiles), each cheaper than a full compile of the model; the
    proposal is the one full compiles give (``tests/test_propose_speed.py``).

    Raises
    ------
    CompileError
        The model needs something no size provides (an unsupported layer, more rows per
        patch than the array has, a size beyond its field's maximum): the compiler's
        message.
    """
    with _flag(_SIZES_ONLY):
        return _propose(model, config, subarrays, stream_weights, tile_activations)


@contextlib.contextmanager
def _flag(var):
    """``var`` (a bool ContextVar) True inside the block."""
    token = var.set(True)
    try:
        yield
    finally:
        var.reset(token)


def _propose(model, config, subarrays, stream_weights, tile_activations):
    with _flag(_PROPOSING):
        return _propose_sizes(model, config, subarrays, stream_weights, tile_activations)


def _propose_sizes(model, config, subarrays, stream_weights, tile_activations):
    config = check_config(config)
    config = _one_pass(model, config, subarrays, stream_weights, tile_activations)
    while True:                 # every step raises one field: at most a few dozen steps
        try:
            compile_model(model, config, subarrays=subarrays, stream_weights=stream_weights,
                          tile_activations=tile_activations)
            return config
        except CompileError as e:
            top = SIZE_FIELDS["buffer_slots"][2]
            if (stream_weights and e.field == "buffer_slots" and e.size is None
                    and config.buffer_slots < top):     # stream through the largest buffer
                config = replace(config, buffer_slots=top)
                continue
            top = SIZE_FIELDS["requant_channels"][2]
            if (stream_weights and e.field == "requant_channels" and e.size is None
                    and config.requant_channels < top):     # and the largest table
                config = replace(config, requant_channels=top)
                continue
            if e.field is None or e.size is None or e.size <= getattr(config, e.field):
                raise
            config = replace(config, **{e.field: e.size})


def _one_pass(model, config, subarrays, stream_weights, tile_activations=False):
    """``config`` with every size the model uses when compiled with the largest sizes
    (``rtl.config.SIZE_FIELDS``' maxima) raised to hold it, at once; ``config`` unchanged if
    that compile fails (the caller's loop then reports the first shortfall). The sizes depend
    a little on each other (the operand bases widen with them, and so may the chunks), so
    :func:`propose_config` compiles the result and raises what is still short."""
    top = replace(config, **{f: SIZE_FIELDS[f][2] for f in SIZE_FIELDS})
    try:
        compiled = compile_model(model, top, subarrays=subarrays, stream_weights=stream_weights,
                                 tile_activations=tile_activations)
    except (CompileError, ValueError):  # the loop below reports it (ValueError: a config)
        return config
    stages = compiled.stages
    used = {
        "buffer_slots": len(compiled.buffer),
        "requant_channels": len(compiled.table[0]),
        "offset_entries": len(compiled.offsets), "patch_entries": len(compiled.patches),
        "program_words": max(len(ch.program) for st in stages for ch in st.chunks),
        "data_words": max(max(st.in_base + st.in_size, st.out_base + st.out_size,
                              *(st.out_base + ch.out_start + st.out_size for ch in st.chunks))
                          for st in stages),
        "patch_mask_bits": max([math.prod(st.kernel) for st in stages] + [1]),
    }
    layers = model.layers
    if not _ls.has_branches(layers) and not any(_ls.is_standalone(layers, i)
                                                for i in range(len(layers))):
        used["data_words"] = max(used["data_words"], 2 * compiled.region)   # two regions
    raised = {}
    for f, n in used.items():
        size = min(_size_for(f, n), SIZE_FIELDS[f][2])
        if size > getattr(config, f):
            raised[f] = size
    return replace(config, **raised) if raised else config


def _patch_entries(stage: Stage) -> list:
    """The stage's patch-table entries ``(base, mask)`` in table order."""
    if not stage.kind.endswith("conv2d"):
        return [(stage.in_base % _ADDR_MOD, 1)]
    _, h, w = stage.in_shape
    kh, kw = stage.kernel
    s, p = stage.stride, stage.padding
    conv_w = (w + 2 * p - kw) // s + 1
    y0 = (stage.order // conv_w) * s - p                   # top-left input pixel of each patch
    x0 = (stage.order % conv_w) * s - p
    base = (stage.in_base + y0 * w + x0) % _ADDR_MOD
    ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    inside = ((y0[:, None] + ky.ravel() >= 0) & (y0[:, None] + ky.ravel() < h)
              & (x0[:, None] + kx.ravel() >= 0) & (x0[:, None] + kx.ravel() < w))
    # Python ints: a kernel above 63 terms (up to 11 x 11 = 121) overflows int64 masks.
    bit = np.array([1 << int(b) for b in (ky * kw + kx).ravel()], dtype=object)
    mask = (inside.astype(object) * bit).sum(axis=1)
    return _table_order(stage, list(zip(base.tolist(), mask.tolist(), strict=True)))


def _table_order(stage, by_patch) -> list:
    """Per-patch entries in the order the stage's chunk programs read them: as they are in
    ``wide`` mode, segment-major per chunk in ``segmented`` mode (also the order of
    ``sim.compile.layer_stages``' passes)."""
    if stage.mode == "wide":
        return list(by_patch)
    entries = []
    k = stage.subarrays
    for ch in stage.chunks:
        g_full = ch.groups - (1 if ch.partial else 0)
        for seg in range(k):
            entries += [by_patch[ch.patch_start + g * k + seg] for g in range(g_full)]
        entries += by_patch[ch.patch_start + g_full * k:ch.patch_start + ch.patches]
    return entries


def _pool_chunk_hint(stage: Stage, config, free: int) -> str:
    """What would make a pool window's patches fit one chunk (issue 15's "Bad input": a layer a
    preset cannot run names what would make it run): the rows, and in ``wide`` mode the
    smallest mat whose wider tiles need fewer rows per patch."""
    g, n, k = stage.group, stage.n, stage.subarrays
    below = config.rows - free          # rows the stage cannot use (resident or scratch rows)
    if stage.mode == "wide":
        need = below + g * stage.tiles * n
        cols = stage.tile_width // k
        from rtl.config import max_subarrays_per_mat
        mats = [m for m in range(k + 1, max_subarrays_per_mat(cols) + 1)
                if g * -(-stage.fan_in // (m * cols)) * n <= free]
        mat = f", or a mat of at least {mats[0]} subarrays" if mats else ""
        return f"; it would fit with rows >= {need}{mat}"
    step = g // math.gcd(k, g)
    return f"; it would fit with rows >= {below + step * n}"


def _plan_chunks(stage: Stage, config, where: str, *, imem_depth: int) -> None:
    """Split the stage's patches into chunks and build their programs."""
    n, tiles, g, out_ch = stage.n, stage.tiles, stage.group, stage.out_channels
    total = stage.n_patches
    k = stage.subarrays
    from sim.routes.dima_bitwise import row_limit      # below any resident weight rows
    free = row_limit(config) - stage.data_row0
    extra = (f" + {stage.data_row0} {stage.route.replace('_', '-')} scratch rows"
             if stage.data_row0 else "")
    isa_rows = (1 << config.isa_base_bits) - stage.data_row0   # every data row a base
    if stage.mode == "wide":
        per_patch = tiles * n
        if per_patch > free:
            _fail(where, f"one patch needs {per_patch} array rows ({tiles} tiles x {n} planes)"
                  f"{extra}, but the array has rows={config.rows}; use more columns or rows")
        cap_rows, cap_isa = free // per_patch, isa_rows // per_patch
        p = min(cap_rows, cap_isa, MAX_LOOP_COUNT, total) // g * g
        unit = "patches"
    else:
        if n > free:
            _fail(where, f"one group of {k} patches needs {n} array rows ({n} planes){extra}, "
                  f"but the array has rows={config.rows}")
        cap_rows, cap_isa = free // n, isa_rows // n
        groups = min(cap_rows, cap_isa, MAX_LOOP_COUNT)
        if groups * k < total:                          # several chunks: K*G % g == 0
            step = g // math.gcd(k, g)
            groups = groups // step * step
        p = min(groups * k, total)
        unit = f"patches ({k} per group of {n} rows)"
    if p == 0:
        _fail(where, f"a chunk needs at least {g} patches (a pool window), but {cap_rows} "
              f"{unit} fit the free rows ({free} rows) and {cap_isa} the ISA's "
              f"{config.isa_base_bits}-bit "
              f"row bases" + _pool_chunk_hint(stage, config, free))
    start, index = 0, 0
    while start < total:
        count = min(p, total - start)
        if stage.mode == "wide":
            groups, partial, used = count, 0, tiles * n * count
        else:
            groups, partial = -(-count // k), count % k
            used = n * groups
        chunk = Chunk(stage=stage, index=index, patch_start=start, patches=count,
                      groups=groups, partial=partial,
                      rows=tuple(range(stage.data_row0, stage.data_row0 + used)),
                      out_start=start // g, program=(), n_out=out_ch * count // g, cycles=0,
                      gather_cycles=0, max_cycles=0, micro_ops={})
        instrs, gather_len = _chunk_program(stage, chunk, config, where)
        if len(instrs) > imem_depth:
            compute = len(instrs) - gather_len
            _too_small(f"{where}: the program of chunk {index} needs {len(instrs)} "
                       f"instruction words ({gather_len} erase + gather, {compute} compute), "
                       f"but program_words is {imem_depth}", "program_words", len(instrs),
                       ", or use more columns (fewer tiles)")
        if _SIZES_ONLY.get():           # encode's checks, placeholder words (of the count)
            asm.check_program(instrs)
            for ins in instrs:
                ins.check(config.isa_base_bits)
            chunk.program, cycles, ops, gather = (0,) * len(instrs), 0, {}, 0
        else:
            words = chunk.program = _assemble(instrs, config.isa_base_bits)
            cycles, ops = program_profile(words, config)
            gather = program_profile(words[:gather_len] + (words[-1],), config)[0] - 1
        chunk.cycles, chunk.micro_ops, chunk.gather_cycles = cycles, ops, gather
        chunk.max_cycles = cycles + PIPELINE_DRAIN + 64
        stage.chunks.append(chunk)
        start += count
        index += 1


# ---- running ---------------------------------------------------------------------------------

def host_array_load(config, rows, bits, *, subarrays: int = 1) -> list:
    """The array commands that load ``bits`` (bool [len(rows), W], W = ``subarrays *
    config.columns``) into ``rows``: a utility for tests and drivers (the compiled programs
    gather their rows on chip).

    nand_spin: ERASE each strip any of the rows is in (data 0, mask all ones), then PROGRAM
    each row; every other technology: WRITE each row. Returns ``(MacroCmd, row, data, mask)``
    tuples, data and mask as bool [W].

    Raises
    ------
    ValueError
        ``bits`` does not have the shape ``(len(rows), W)``.
    """
    config = check_config(config)
    width = subarrays * config.columns
    bits = np.asarray(bits, dtype=bool)
    rows = [int(r) for r in rows]
    if bits.shape != (len(rows), width):
        raise ValueError(f"bits must have shape ({len(rows)}, {width}), not {bits.shape}")
    ones = np.ones(width, dtype=bool)
    if config.technology != "nand_spin":
        return [(MacroCmd.WRITE, r, bits[i], ones) for i, r in enumerate(rows)]
    m = config.mtjs_per_strip
    strips = sorted({r - r % m for r in rows})
    zeros = np.zeros(width, dtype=bool)
    return ([(MacroCmd.ERASE, s, zeros, ones) for s in strips]
            + [(MacroCmd.PROGRAM, r, bits[i], ones) for i, r in enumerate(rows)])


@dataclass
class StageRun:
    """Measured statistics of one stage of one image."""
    name: str
    golden_index: int
    cycles: int = 0                 # controller cycles, all chunks
    runs: int = 0                   # chunks run (core starts)
    micro_ops: dict = field(default_factory=dict)
    host_words: int = 0             # data-memory words the host wrote (the image, stage 0)
    write_backs: int = 0            # WRITE_ROW + PROGRAM micro-ops (planes, abs-diff bits)
    write_back_erases: int = 0      # ERASE micro-ops (data strips, abs-diff scratch strips)
    zero_skip: dict = field(default_factory=dict)   # rtl.isa.ZERO_SKIP_COUNTERS, summed
    weight_words: int = 0           # buffer words the host streamed in (sim.compile.weight_stream)
    table_words: int = 0            # requant entries the host streamed in (likewise)
    act_words: int = 0              # data-memory words moved to/from the activation store
                                    # (sim.compile.act_tile)


@dataclass
class RunResult:
    """Result of :func:`run_compiled` for one image: the logits, every stage's output, the
    counters summed over all runs, per-stage statistics and the data-memory words the host
    wrote; ``zero_skip``: the zero-skipping counters summed (empty without zero skipping)."""
    logits: np.ndarray
    outputs: list
    counters: dict
    stages: list
    host_words: int
    zero_skip: dict = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return self.counters["cycles"]


def _ws_loads(stage, index: int) -> list:
    if not stage.weight_loads and not stage.postproc_loads:
        return []
    from sim.compile.weight_stream import loads_before
    return loads_before(stage, index)


def load_compiled(compiled: CompiledModel, executor) -> None:
    """Load the weight buffer, the requant table and the gather tables through the executor's
    host port (``write_buffer``, ``write_table``, ``write_offset``, ``write_patch``; and
    ``write_threshold`` for the thresholds of ``quant`` layers)."""
    for slot, bits in enumerate(compiled.buffer):
        executor.write_buffer(slot, bits)
    for ch, (m, s, b) in enumerate(zip(*compiled.table, strict=True)):
        executor.write_table(ch, m, s, b)
    for i, (off, kpos) in enumerate(compiled.offsets):
        executor.write_offset(i, off, kpos)
    for i, (base, mask) in enumerate(compiled.patches):
        executor.write_patch(i, base, mask)
    for ch, index, value in _threshold_writes(compiled):
        executor.write_threshold(ch, index, value)
    for run in compiled.load_programs:         # resident weight rows (sim.routes.dima_bitwise)
        res = executor.run(run.program)
        if res.error:
            raise RunError(f"load program of {run.stage}: the core reported an error: "
                           f"{res.reason}")


def _threshold_writes(compiled: CompiledModel) -> list:
    """``(channel, index, value)`` host writes of the PPU's threshold stage: the 255
    thresholds and the mode word (index 255: enable, bit 1 the sign -1) of each channel; on a
    core with the stage, mode word 0 for the model's other channels."""
    writes = []
    for ch, sign, th in compiled.thresholds:
        writes += [(ch, i, int(v)) for i, v in enumerate(th)]
        writes.append((ch, 255, 1 | (2 if sign < 0 else 0)))
    if "dima_binconv" in compiled.config.routes:   # the other channels: stage off (a model
        quant = {ch for ch, _, _ in compiled.thresholds}   # loaded before may have set it)
        writes += [(ch, 255, 0) for ch in range(len(compiled.table[0])) if ch not in quant]
    return writes


def run_compiled(compiled: CompiledModel, x_image, executor, *,
                 load_weights: bool = True, store: dict | None = None) -> RunResult:
    """Run one image (uint8, the model's input shape) through every stage on ``executor``.

    ``executor`` is synchronous with the host interface of ``sim.hw.core_model.CoreModel``
    (``write_buffer``, ``write_table``, ``write_offset``, ``write_patch``, ``write_dmem``,
    ``read_dmem``, ``run`` returning ``error``, ``reason``, ``counters``). With
    ``load_weights`` (default) the buffer and the tables are loaded first
    (:func:`load_compiled`). The image goes into the data memory at ``stages[0].in_base``;
    each stage's output is read back from its ``out_base`` after its chunks ran. ``store``:
    tensors already in the activation store (key -> flat words), e.g. a partitioned slice's
    kept tensors (``sim.compile.multi_mat.kept_key``).

    Raises
    ------
    RunError
        The executor reported an error (the message names the stage, the chunk, the reason),
        or a stage's output words are not activations.
    """
    if load_weights:
        load_compiled(compiled, executor)
    words = compiled.input_words(x_image)
    base = compiled.stages[0].in_base
    from sim.compile import act_tile as _at     # activation tiling: the store's tensors
    store = {**(store or {}), -1: words.astype(np.int64)}   # golden index -> the store's copy
    for i, v in enumerate(words.tolist() if not _at.input_in_store(compiled) else ()):
        executor.write_dmem(base + i, v)
    outputs, runs = [], []
    totals = dict.fromkeys(counter_names(), 0)
    zs_totals: dict = {}
    for si, stage in enumerate(compiled.stages):
        sr = StageRun(stage.name, stage.golden_index, micro_ops=dict.fromkeys(counter_names(), 0),
                      host_words=len(words) if si == 0 else 0)
        target = _at.new_tensor(stage)      # the store's copy of a tiled stage's output
        for chunk in stage.chunks:
            for b, img, tbl in _ws_loads(stage, chunk.index):     # sim.compile.weight_stream
                for i, bits in enumerate(img):
                    executor.write_buffer(b + i, bits)
                sr.weight_words += len(img)
                if tbl is not None:
                    ch0, entries = tbl
                    for i, (m_, s_, b_) in enumerate(entries):
                        executor.write_table(ch0 + i, m_, s_, b_)
                    sr.table_words += len(entries)
            sr.act_words += _at.run_loads(stage, chunk.index, executor.write_dmem, store,
                                          executor.write_patch)
            res = executor.run(chunk.program)
            if res.error:
                raise RunError(f"{stage.name} chunk {chunk.index}: the core reported an error: "
                               f"{res.reason}")
            sr.act_words += _at.run_stores(stage, chunk.index, executor.read_dmem, target)
            for k, v in res.counters.items():
                sr.micro_ops[k] += v
                totals[k] += v
            for k, v in getattr(res, "zero_skip", {}).items():
                sr.zero_skip[k] = sr.zero_skip.get(k, 0) + v
                zs_totals[k] = zs_totals.get(k, 0) + v
            sr.runs += 1
        sr.cycles = sr.micro_ops["cycles"]
        sr.write_backs = sr.micro_ops["write_row"] + sr.micro_ops["program"]
        sr.write_back_erases = sr.micro_ops["erase"]
        try:
            y = stage.read_output(target if target is not None else
                                  [executor.read_dmem(stage.out_base + i)
                                   for i in range(stage.out_size)])
        except ValueError as e:
            raise RunError(str(e)) from None
        store[stage.golden_index] = np.asarray(y, dtype=np.int64).reshape(-1) & 0xFFFFFFFF
        outputs.append(y)
        runs.append(sr)
    return RunResult(logits=outputs[-1], outputs=outputs, counters=totals, stages=runs,
                     host_words=len(words), zero_skip=zs_totals)
