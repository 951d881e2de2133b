"""The compiler half of route ``dima_binconv``: binarized convolutions (``bin_gconv2d``) on the
FA/FS lanes of the mat (seed 002 sec. 3.2, Fig. 4b; the hardware half is
``sim.routes.dima_binconv`` and ``rtl.fa_fs``).

Called by ``sim.compile.compiler.compile_model`` for every layer whose route is ``dima_binconv``
(depthwise with a channel multiplier m, pointwise, any grouped case). The mat plays the seed's
class A subarrays: every subarray of the mat holds lanes (column pairs), and a layer keeps no
multiplier busy: each term adds or subtracts one input code.

Lanes and terms
---------------
An output ``(o, position)`` is ``sum_j s_{o,j} x_j`` over the fan-in ``F = C/groups * kh * kw``
(im2col order ``(c, ky, kx)``, ``s`` in {-1, +1}). The fan-in is cut into ``T`` tiles of
``F_t = ceil(F / T)`` terms; lane ``(k, t, i)`` (subarray k, tile t, lane set i, mat column pair
``k*C/2 + t*P_k + i``, ``P_k = floor(C / 2 / T)`` lane sets per subarray) holds the partial sum
of tile t of one position. Its terms are chained through ``F_t + 1`` row groups of ``N`` rows
(group j' from row ``j'*N``, bit b in row ``j'*N + b``): group j' holds term ``t*F_t + j'`` of
each lane in the odd column (zero-extended to N bits; 0 beyond the fan-in) and, once add/sub
j' - 1 wrote it, the partial sum in the even column; group 0's even columns are 0. Add/sub j'
(``sim.routes.dima_binconv.addsub_program``, 2N cycles) reads group j' and writes group
j' + 1's even columns, its sign word from the weight buffer (bit ``2*lane + 1`` set where the
lane's weight is -1: the seed's "combined batch", the kernel's sign picks add or subtract).

Accumulator width: a partial sum of ``F_t`` terms ``+-x``, ``x`` an 8-bit code in [0, 255],
lies in ``[-255 F_t, 255 F_t]`` after every add/sub, so ``N = bit_length(255 F_t) + 1``
two's complement bits never overflow (the lanes compute mod ``2**N``); ``T`` is the smallest
number of tiles whose ``(F_t + 1) * N`` rows fit the array (and the ISA's row bases).

Reading out: the ``T`` lanes of one position sit at the same lane set i of each tile. The FU
line word ``mask_i`` (even columns of lane set i, every tile, every subarray) ANDs the sum
rows, and the column reduce adds them: ``AND_FU`` MSB first, ``L1_FIRST`` on the sign bit then
``SHIFT_SUB`` (acc = ``-sum_t partial_t``, the sign bit weighing ``-2**(N-1)`` in every lane),
N cycles for K positions at once (one per subarray's accumulator), then ``REQUANT d = k + 1``
with ``NEG`` hands each to the PPU (requant, a fused 2x2 pool, or logits, as every stage).
Position ``i*K + k`` of a batch is lane set i of subarray k.

Programs: one per (batch of ``P = K*P_k`` positions, group g): the gather part writes the
group's F terms of the batch's positions into the odd columns (``MOVE CLEAR``, ``GATHER`` per
lane, the 8 planes from the transpose buffer, rows 8 .. N-1 from an all-zero buffer slot),
then ``LOOP O/groups`` output channels of the group: the chain (``DimaBinconv.dot``, the
sign slot a loop operand), the read-out of every position, ``ADDPTR`` to the next channel's
outputs. The patches stay in the array for all the group's channels (depthwise: the m kernels
of one input channel, pointwise: every output channel).

Weight buffer of a stage (from its base): ``F_t * O`` sign words (slot ``j'*O + o``), ``P_k``
masks, one zero word. Offset table: ``groups * F`` entries (entry ``g*F + j`` the offset of
term j of group g's channels, the gather restricted to the group's channels). Patch table:
per batch, segment-major (entry ``batch start + sum_{k'<k} count_k' + i``).

Output stage: ``requant``, a fused 2x2 pool, ``logits``, or Add-Net's ``quant`` (seed 002
eq. 3) by the PPU's threshold stage (``rtl.ppu.Ppu``, cores with this route; the thresholds
clamped by ``threshold_words``). Padding inserts the layer's ``pad_value`` (Add-Net: 128):
``MOVE SETPAD`` at the start of the gather part.

Limits, each a ``CompileError`` naming the layer: a ``nand_spin`` core (the FA/FS write-back
is a ``WRITE_ROW``), a configuration without ``and_bitcount``'s ``AND_FU`` (the read-out), a
fan-in whose tiles need more lanes or rows than the mat has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from golden import layers as L
from rtl.column_reduce import ReduceOp
from rtl.isa import MAX_LOOP_COUNT, MoveOp, Opcode, Operand, WriteSrc
from rtl.routes import opcodes_of
from rtl.outputs import interruptible

from sim.compile import asm
from sim.hw.core_model import MODE_AVG4, MODE_LOGIT, MODE_MAX4, MODE_REQUANT, PIPELINE_DRAIN, \
    PPU_CLEAR, PPU_EMIT, PPU_MODE_LSB, PPU_NEG
from sim.routes import get_route
from sim.routes import op as _op

__all__ = ["DimaPlan", "acc_width", "plan_layer", "slots_needed", "build_stage",
           "MODE_NAME", "class_subarrays", "check_classes", "compare_bitwise", "stage_class",
           "stage_energy", "ungated_energy", "load_energy", "class_gate", "gate_classes",
           "stage_columns", "gate_report"]

#: :attr:`sim.compile.compiler.Stage.mode` of a stage on the FA/FS lanes.
MODE_NAME = "lanes"
_POOL_ORDER = ((0, 0), (0, 1), (1, 0), (1, 1))
_ADDR_MOD = 1 << 16


def acc_width(terms: int) -> int:
    """Two's complement bits of a partial sum of ``terms`` binarized terms ``+-x``, x in
    [0, 255]: ``bit_length(255 * terms) + 1`` (module docstring)."""
    return (L.ACT_MAX * terms).bit_length() + 1


@dataclass(frozen=True)
class DimaPlan:
    """How a layer sits on the lanes: ``fan_in`` F, ``tiles`` T, ``terms`` F_t per tile,
    ``acc_bits`` N, ``lane_sets`` P_k per subarray, ``batch`` P positions per program,
    ``groups``, ``group_out`` output channels per group, ``slots`` weight-buffer words."""
    fan_in: int
    tiles: int
    terms: int
    acc_bits: int
    lane_sets: int
    batch: int
    groups: int
    group_out: int
    slots: int

    @property
    def rows(self) -> int:
        """Array rows of one batch: F_t + 1 groups of N rows."""
        return (self.terms + 1) * self.acc_bits


def class_subarrays(config, k: int) -> tuple | None:
    """``(K_A, K_B)``: the subarrays of a mat of ``k`` that are class A (the binary-weight
    convolver, the last K_A subarrays) and class B (the bit-wise convolver and every other
    route, the first K_B), from ``config.class_split`` ``(a, b)`` (seed 002 sec. 3.2 and
    4.4.2); None without a split. ``k == 1``: both classes share the one subarray (1 each,
    for a non-zero part; ASSUMPTION: every DIMA subarray computes in both modes, the classes
    differ only in add-on units, seed 002 sec. 3.2). ``k >= 2``: ``K_B = round(k*b/(a+b))``
    kept in [1, k - 1] when both parts are non-zero (7:2 on 2 subarrays: 1 + 1); a zero part
    gets no subarray."""
    split = config.class_split
    if split is None:
        return None
    a, b = split
    if k == 1:
        return int(a > 0), int(b > 0)
    if not a or not b:
        return (k, 0) if b == 0 else (0, k)
    kb = min(k - 1, max(1, round(k * b / (a + b))))
    return k - kb, kb


def check_classes(config, k: int, layers: list) -> None:
    """A CompileError if ``config.class_split`` leaves a layer of ``layers`` (``(index,
    layer, route name)``) no subarray of a mat of ``k``."""
    ks = class_subarrays(config, k)
    if ks is None:
        return
    for ci, ly, route in layers:
        cls = "A" if route == "dima_binconv" else "B"
        if ks["AB".index(cls)] == 0:
            what = ("binary-weight convolver: depthwise / pointwise bin_gconv2d layers"
                    if cls == "A" else "bit-wise convolver: inception / MLP layers")
            _fail(f"layer {ci} ({ly.kind})",
                  f"class_split={config.class_split} leaves class {cls} ({what}) no subarray "
                  f"of the mat of {k}; allowed: a class_split (a, b) whose class-{cls} part is "
                  f"> 0, e.g. the seed's (7, 2)")


def _fail(where: str, msg: str):
    from sim.compile.compiler import CompileError
    raise CompileError(f"{where}: {msg}")


def plan_layer(layer, in_shape, config, subarrays: int, pooled: bool, where: str) -> DimaPlan:
    """The lane plan of ``layer`` (a ``bin_gconv2d``) on a mat of ``subarrays`` subarrays of
    ``config``; a CompileError names the layer and the limit it exceeds."""
    _check_layer(layer, config, where)
    w = layer.params["weight"]
    o, f = int(w.shape[0]), int(np.prod(w.shape[1:]))
    g = layer.groups
    from sim.routes.dima_bitwise import row_limit     # below resident weight rows
    rows = min(row_limit(config), 1 << config.isa_base_bits)
    best = 0
    for terms in range(1, f + 1):
        if (terms + 1) * acc_width(terms) > rows:
            break
        best = terms
    if best == 0:
        _fail(where, f"one binarized term needs {2 * acc_width(1)} array rows (2 groups of "
              f"{acc_width(1)}-bit operands), but the array has rows={config.rows}")
    tiles = -(-f // best)
    terms = -(-f // tiles)
    lanes = config.columns // 2
    if tiles > lanes:
        _fail(where, f"the fan-in {f} needs {tiles} lanes per position ({best} terms per "
              f"lane fit rows={config.rows}), but a subarray has {lanes} lanes "
              f"(columns={config.columns}); use more rows or columns")
    sets = min(lanes // tiles, MAX_LOOP_COUNT)
    if pooled:
        step = 4 // math.gcd(subarrays, 4)
        sets = sets // step * step
        if sets == 0:
            _fail(where, f"a batch needs a 2x2 pool window (4 positions), but {subarrays} "
                  f"subarrays of {lanes // tiles} lane sets hold fewer")
    return DimaPlan(fan_in=f, tiles=tiles, terms=terms, acc_bits=acc_width(terms),
                    lane_sets=sets, batch=subarrays * sets, groups=g, group_out=o // g,
                    slots=terms * o + sets + 1)


def slots_needed(layer, in_shape, config, subarrays: int, pooled: bool, where: str) -> int:
    """Weight-buffer words of ``layer``'s stage (sign words, masks, the zero word)."""
    return plan_layer(layer, in_shape, config, subarrays, pooled, where).slots


def _check_layer(layer, config, where: str) -> None:
    if config.technology == "nand_spin":
        _fail(where, "the FA/FS sum bits are written back by WRITE_ROW, which nand_spin "
              "arrays do not have (use preset dima_sot)")
    if Opcode.AND_FU not in opcodes_of(config.routes):
        _fail(where, f"the read-out of the lanes' sums uses AND_FU (route and_bitcount), "
              f"which routes {', '.join(config.routes)} do not have")


def threshold_words(layer, chan0: int, config) -> list:
    """``(channel, sign, thresholds)`` of a ``quant`` layer's channels from ``chan0``: each
    threshold clamped to ``[-2**(a-1), 2**(a-1) + 1]`` (a = ``acc_bits``), which changes no
    comparison with ``sign * v`` for ``v`` an a-bit accumulator (``rtl.ppu.thresh_bits``)."""
    half = 1 << (config.acc_bits - 1)
    th = np.clip(layer.params["q_thresh"].astype(np.int64), -half, half + 1)
    return [(chan0 + o, int(sg), tuple(int(v) for v in th[o]))
            for o, sg in enumerate(layer.params["q_sign"].tolist())]


def _buffer_image(w2: np.ndarray, plan: DimaPlan, config, k: int, off: int = 0,
                  width: int | None = None) -> np.ndarray:
    """bool [slots, width]: sign words (slot j'*O + o), masks (P_k), the zero word; the
    stage's k subarrays from subarray ``off`` of the mat (``width`` its row, default k*C)."""
    o, f = w2.shape
    c = config.columns
    width = k * c if width is None else width
    img = np.zeros((plan.slots, width), dtype=bool)
    neg = np.zeros((o, plan.tiles * plan.terms), dtype=bool)
    neg[:, :f] = w2 < 0
    neg = neg.reshape(o, plan.tiles, plan.terms)                       # O, T, F_t
    sets = np.arange(plan.lane_sets)
    for seg in range(k):
        for t in range(plan.tiles):
            cols = (off + seg) * c + 2 * (t * plan.lane_sets + sets)   # even column of a lane
            for jp in range(plan.terms):
                img[jp * o:(jp + 1) * o][:, cols + 1] = neg[:, t, jp][:, None]
            img[plan.terms * o + sets, cols] = True
    return img


def _positions_order(in_shape, kernel, stride, padding, pooled) -> tuple:
    """(order, conv (Ho, Wo)): output positions in patch order (pool windows consecutive)."""
    _, h, wi = in_shape
    kh, kw = kernel
    ho = L.conv_output_size(h, kh, stride, padding)
    wo = L.conv_output_size(wi, kw, stride, padding)
    if pooled:
        order = np.array([(2 * i + di) * wo + 2 * j + dj for i in range(ho // 2)
                          for j in range(wo // 2) for di, dj in _POOL_ORDER], dtype=np.int64)
    else:
        order = np.arange(ho * wo, dtype=np.int64)
    return order, (ho, wo)


def _by_patch(stage) -> list:
    """(base, mask) of every patch in patch order (``sim.compile.compiler`` module docstring)."""
    _, h, w = stage.in_shape
    kh, kw = stage.kernel
    s, p = stage.stride, stage.padding
    conv_w = (w + 2 * p - kw) // s + 1
    y0 = (stage.order // conv_w) * s - p
    x0 = (stage.order % conv_w) * s - p
    base = (stage.in_base + y0 * w + x0) % _ADDR_MOD
    ky, kx = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    inside = ((y0[:, None] + ky.ravel() >= 0) & (y0[:, None] + ky.ravel() < h)
              & (x0[:, None] + kx.ravel() >= 0) & (x0[:, None] + kx.ravel() < w))
    mask = (inside.astype(np.int64) << (ky * kw + kx).ravel()).sum(axis=1)
    return list(zip(base.tolist(), mask.tolist(), strict=True))


def _seg_counts(count: int, k: int) -> list:
    """Positions of a batch of ``count`` per subarray (position i*K + k in subarray k)."""
    return [len(range(seg, count, k)) for seg in range(k)]


def _patch_entries(stage) -> list:
    """The stage's patch-table entries in table order (per batch, segment-major)."""
    by_patch = _by_patch(stage)
    plan, k = stage.dima, stage.subarrays
    entries = []
    for p0 in range(0, stage.n_patches, plan.batch):
        count = min(plan.batch, stage.n_patches - p0)
        for seg in range(k):
            entries += [by_patch[p0 + i * k + seg] for i in range(len(range(seg, count, k)))]
    return entries


def _move(mop: MoveOp, *, a=0, b=0, d=0):
    return _op(Opcode.MOVE, imm=mop.value, a=a, b=b, d=d)


def _program(stage, p0: int, count: int, grp: int, config, where: str) -> tuple[list, int]:
    """The instructions of the run (batch from position ``p0`` of ``count`` positions, group
    ``grp``) and how many of them are the gather part."""
    from sim.compile.compiler import _base
    plan, k, c = stage.dima, stage.subarrays, config.columns
    n, nb, fan = stage.n, plan.acc_bits, plan.fan_in
    o_all, og = stage.out_channels, plan.group_out
    sbase, mbase = stage.buffer_base, stage.buffer_base + plan.terms * o_all
    zero = mbase + plan.lane_sets
    counts = _seg_counts(count, k)
    offs = [sum(counts[:s]) for s in range(k)]
    pbase = stage.patch_base + p0
    row0 = stage.data_row0
    off = stage.class_offset               # the first class-A subarray of the mat

    def row(jp, q):
        return _base(where, "data row", row0 + jp * nb + q)

    instrs = []
    pad = int(stage.pad_value)
    if pad and stage.padding:                               # the padding code (Add-Net: 128)
        instrs.append(_move(MoveOp.SETPAD, a=pad))
    for jp in range(plan.terms):                            # gather: row group j'
        instrs.append(_move(MoveOp.CLEAR))
        for t in range(plan.tiles):
            j = t * plan.terms + jp
            if j >= fan:
                continue                                     # beyond the fan-in: x = 0
            for seg in range(k):
                if not counts[seg]:
                    continue
                instrs += [asm.loop(count=counts[seg]),
                           _move(MoveOp.GATHER,
                                 a=Operand(_base(where, "transpose-buffer column",
                                                 (off + seg) * c + 2 * t * plan.lane_sets + 1),
                                           0, 2),
                                 b=_base(where, "offset-table entry",
                                         stage.offset_base + grp * fan + j),
                                 d=Operand(_base(where, "patch-table entry",
                                                 pbase + offs[seg]), 0, 1)),
                           asm.endloop()]
        instrs.append(asm.nop())
        instrs += [_op(Opcode.WRITE_ROW, imm=WriteSrc.TBUF.value, b=q, a=row(jp, q))
                   for q in range(n)]
        instrs += [_op(Opcode.WRITE_ROW, imm=WriteSrc.BUFFER.value,
                       b=_base(where, "weight-buffer slot", zero), a=row(jp, q))
                   for q in range(n, nb)]
    gather_len = len(instrs)
    g = stage.group
    positions = stage.positions
    instrs.append(_move(MoveOp.SETPTR, a=_base(
        where, "data-memory write pointer (SETPTR)",
        stage.out_base + grp * og * positions + p0 // g)))
    instrs.append(asm.loop(count=og))
    instrs += get_route(stage.route).dot(
        stage, 0, lambda jp: _base(where, "data row", row0 + jp * nb),
        lambda jp: Operand(_base(where, "weight-buffer slot", sbase + jp * o_all + grp * og),
                           0, 1), config)
    mode = (MODE_LOGIT if stage.output == "logits" else
            {None: MODE_REQUANT, "max": MODE_MAX4, "avg": MODE_AVG4}[stage.pool])
    ppu = PPU_CLEAR | PPU_EMIT | PPU_NEG | mode << PPU_MODE_LSB
    chan = _base(where, "requant channel base", stage.channel_base + grp * og)

    def readout(slot, level):
        ops = [_op(Opcode.AND_FU, imm=(ReduceOp.L1_FIRST if b == nb - 1
                                       else ReduceOp.SHIFT_SUB).value,
                   a=row(plan.terms, b), b=slot) for b in range(nb - 1, -1, -1)]
        return ops

    full, r = count // k, count % k
    if full:
        instrs.append(asm.loop(count=full))
        instrs += readout(Operand(_base(where, "weight-buffer slot", mbase), 0, 1), 1)
        instrs += [_op(Opcode.REQUANT, imm=ppu, a=Operand(chan, 1, 1), d=off + s + 1)
                   for s in range(k)]
        instrs.append(asm.endloop())
    if r:
        instrs += readout(_base(where, "weight-buffer slot", mbase + full), 0)
        instrs += [_op(Opcode.REQUANT, imm=ppu, a=Operand(chan, 0, 1), d=off + s + 1)
                   for s in range(r)]
    step = positions - count // g
    if step:
        instrs.append(_move(MoveOp.ADDPTR, a=_base(where, "write-pointer step (ADDPTR)",
                                                   step)))
    instrs += [asm.endloop(), asm.halt()]
    return instrs, gather_len


def build_stage(stage_cls, chunk_cls, *, layer, in_shape, config, subarrays: int,
                pooled: bool, where: str, fields: dict, imem_depth: int, offset: int = 0,
                width: int | None = None) -> tuple:
    """The stage of ``layer`` on the lanes and its buffer image: ``(stage, image, offsets)``.

    ``fields``: the :class:`sim.compile.compiler.Stage` fields the compiler decided (name, indices,
    shapes, bases); ``stage_cls`` / ``chunk_cls``: ``Stage`` / ``Chunk``. ``offsets``: the
    stage's ``(offset, kpos)`` offset-table entries. The stage's chunks (one run per batch and
    group) are planned, its patch entries are :func:`stage_patch_entries`.
    """
    from sim.compile.compiler import _too_small, program_profile
    plan = plan_layer(layer, in_shape, config, subarrays, pooled, where)
    w = layer.params["weight"]
    kh, kw = (int(v) for v in w.shape[2:])
    if kh * kw > config.patch_mask_bits:
        _too_small(f"{where}: the kernel area {kh}x{kw} = {kh * kw} exceeds the patch "
                   f"mask's {config.patch_mask_bits} bits", "patch_mask_bits", kh * kw)
    stride, padding = int(layer.params["stride"]), int(layer.params["padding"])
    order, _ = _positions_order(in_shape, (kh, kw), stride, padding, pooled)
    stage = stage_cls(mode=MODE_NAME, tiles=plan.tiles, tile_width=plan.terms,
                      kernel=(kh, kw), stride=stride, padding=padding, order=order,
                      scratch_rows=(), data_row0=0, **fields)
    stage.dima = plan
    stage.class_offset = offset
    stage.pad_value = int(layer.params.get("pad_value", 0))
    # offsets: entry g*F + j, term j = (c, ky, kx) of group g's channels
    c_in, h, wi = in_shape
    cg = c_in // plan.groups
    gg, cc, yy, xx = np.meshgrid(np.arange(plan.groups), np.arange(cg), np.arange(kh),
                                 np.arange(kw), indexing="ij")
    offs = ((gg * cg + cc) * h * wi + yy * wi + xx).ravel()
    kpos = (yy * kw + xx).ravel()
    if int(offs.max()) >= _ADDR_MOD:
        _fail(where, f"the gather offset {int(offs.max())} does not fit the offset table's "
              f"16 bits")
    offsets = list(zip(offs.tolist(), kpos.tolist(), strict=True))
    image = _buffer_image(w.reshape(w.shape[0], -1).astype(np.int64), plan, config,
                          subarrays, offset, width)
    index = 0
    for p0 in range(0, stage.n_patches, plan.batch):
        count = min(plan.batch, stage.n_patches - p0)
        for grp in range(plan.groups):
            instrs, gather_len = _program(stage, p0, count, grp, config, where)
            if len(instrs) > imem_depth:
                _too_small(f"{where}: the program of chunk {index} needs {len(instrs)} "
                           f"instruction words ({gather_len} gather, "
                           f"{len(instrs) - gather_len} compute), but program_words is "
                           f"{imem_depth}", "program_words", len(instrs))
            words = tuple(asm.assemble(instrs, base_bits=config.isa_base_bits))
            cycles, ops = program_profile(words, config)
            chunk = chunk_cls(stage=stage, index=index, patch_start=p0, patches=count,
                              groups=1, partial=0,
                              rows=tuple(range(plan.terms * plan.acc_bits)),
                              out_start=p0 // stage.group, program=words,
                              n_out=plan.group_out * count // stage.group, cycles=cycles,
                              gather_cycles=0, max_cycles=cycles + PIPELINE_DRAIN + 64,
                              micro_ops=ops)
            chunk.gather_cycles = program_profile(words[:gather_len] + (words[-1],),
                                                  config)[0] - 1
            stage.chunks.append(chunk)
            index += 1
    return stage, image, offsets


def stage_patch_entries(stage) -> list:
    """The patch-table entries of a stage on the lanes, in table order."""
    return _patch_entries(stage)


@interruptible("python -m sim.compile.dima_map", "nothing was written (it only prints)")
def main(argv=None) -> int:
    """``python -m sim.compile.dima_map [MODEL] [PRESET] [--mat=K] [--compare]``: the per-image
    cycles,
    DIMA counters and energy (per stage, per class, :func:`stage_energy`) of a bundled
    Add-Net's compiled programs (their static profile, which every run equals:
    ``tests/test_dima_map.py``) and its load programs; ``--mat=K``: a mat of K subarrays
    (default the configuration's); ``--compare``: the multi-bit layers on both of their routes
    (:func:`compare_bitwise`)."""
    import sys

    from golden.model import bundled_model_path, load_model
    from rtl.config import preset

    from sim.compile.compiler import CompileError, compile_model, propose_config
    from sim.util import UserError, parse_mat
    tool = "python -m sim.compile.dima_map"
    args = list(sys.argv[1:] if argv is None else argv)
    flags = [a for a in args if a.startswith("--")]
    args = [a for a in args if not a.startswith("--")]
    # Before, an unknown flag (--mats=4, --compare=1) or a third word was ignored silently.
    unknown = [f for f in flags if f != "--compare" and not f.startswith("--mat=")] + args[2:]
    if unknown:
        print(f"{tool}: error: unknown argument {unknown[0]!r}; usage: {tool} [MODEL] [PRESET] "
              f"[--mat=K] [--compare]", file=sys.stderr)
        return 2
    name = args[0] if args else "digits_addnet"
    preset_name = args[1] if len(args) > 1 else "dima_sot"
    try:
        cfg = preset(preset_name)
    except ValueError as e:                 # an unknown preset name
        print(f"{tool}: error: PRESET: {e}", file=sys.stderr)
        return 2
    mats = [f for f in flags if f.startswith("--mat=")]
    try:                                    # the preset's range (a ValueError traceback before)
        mat = parse_mat(mats[-1][6:], cfg, preset_name) if mats else None
    except UserError as e:
        print(f"{tool}: error: {e}", file=sys.stderr)
        return 2
    try:
        model = load_model(bundled_model_path(name))
    except ValueError as e:                 # an unknown model name (one line, not a traceback)
        print(f"{tool}: error: MODEL: {e}", file=sys.stderr)
        return 2
    try:
        cfg = propose_config(model, cfg, subarrays=mat)
        compiled = compile_model(model, cfg, subarrays=mat)
    except (CompileError, ValueError) as e:  # a model the preset cannot hold: one line
        print(f"{tool}: error: {name} on {preset_name}"
              f"{'' if mat is None else f' --mat={mat}'} does not compile: {e}", file=sys.stderr)
        return 2
    print(f"{name} on {cfg.technology} {cfg.rows}x{cfg.columns} x{compiled.subarrays} "
          f"(static profile of the compiled programs)")
    total, energy = 0, 0.0
    by_kind: dict = {}
    for st in compiled.stages:
        ops = st.micro_ops
        rep = stage_energy(cfg, st, ops, compiled.width)
        total += st.cycles
        energy += rep.energy_j
        kind = "binarized (FA/FS lanes)" if st.route == "dima_binconv" else \
            f"{st.kind} ({st.route})"
        by_kind[kind] = by_kind.get(kind, 0.0) + rep.energy_j
        extra = ""
        if st.dima is not None:
            d = st.dima
            adds = ops["fa_step"] // d.acc_bits
            chain = 2 * ops["fa_step"]          # FA_STEP + its write-back, back to back
            extra = (f"; T={d.tiles} F_t={d.terms} N={d.acc_bits} batch={d.batch}: "
                     f"{adds} add/subs (each on all lanes) of {d.acc_bits} bits "
                     f"(2N = {2 * d.acc_bits} cycles each), {ops['fa_step']} FA_STEP, "
                     f"{ops['fa_step']} sum-bit writes; "
                     f"cycles: gather {st.gather_cycles}, add/sub chains {chain}, read-out "
                     f"and rest {st.cycles - st.gather_cycles - chain}")
        print(f"  {st.name}: {st.cycles} cycles, {rep.energy_j * 1e9:.2f} nJ,"
              f" {len(st.chunks)} runs{extra}")
    print(f"  per image: {total} cycles ({total / cfg.clock_mhz:.1f} us at {cfg.clock_mhz} MHz), "
          f"{energy * 1e9:.2f} nJ")
    for kind, e in by_kind.items():
        print(f"    energy {kind}: {e * 1e9:.2f} nJ")
    busy_a = sum(st.cycles for st in compiled.stages if st.route in CLASS_A_ROUTES)
    busy_b = sum(st.cycles for st in compiled.stages if st.route in CLASS_B_ROUTES)
    and2 = sum(st.micro_ops["and2"] for st in compiled.stages)
    print(f"    class A (FA/FS lanes) busy {busy_a} cycles, class B (bit-wise convolver / "
          f"and_bitcount) busy {busy_b} cycles, {and2} AND2 senses (per-stage cycles: the "
          f"classes are roles of the one mat)")
    for cls in ("A", "B"):
        sts = [st for st in compiled.stages if stage_class(st) == cls]
        if sts:
            e = sum(stage_energy(cfg, st, st.micro_ops, compiled.width).energy_j for st in sts)
            whole = sum(ungated_energy(cfg, st, st.micro_ops, compiled.width).energy_j
                        for st in sts)
            print(f"    energy class {cls}: {e * 1e9:.2f} nJ per image (its "
                  f"{sts[0].subarrays} of {compiled.subarrays} subarrays, MOVE SUBSEL; "
                  f"without the class gate, the whole mat: {whole * 1e9:.2f} nJ)")
    lc, lops, le = load_energy(compiled)
    print(f"    model load (resident weight rows, once): {lops['write_row']} row writes, "
          f"{lc} cycles, {le * 1e9:.2f} nJ ({len(compiled.load_programs)} load programs)")
    if "--compare" in flags:
        compare_bitwise(model, cfg, subarrays=mat)
    return 0


#: Routes whose stages are class A (binary-weight convolver) / class B (bit-wise convolver,
#: or the FU-line AND of and_bitcount on a configuration without it) work (seed 002 sec. 3.2).
CLASS_A_ROUTES = ("dima_binconv",)
CLASS_B_ROUTES = ("dima_bitwise", "and_bitcount")


def stage_class(stage) -> str | None:
    """``"A"`` or ``"B"``: the class of subarrays a stage's route works on (seed 002 sec. 3.2),
    None for a route of neither."""
    return "A" if stage.route in CLASS_A_ROUTES else "B" if stage.route in CLASS_B_ROUTES \
        else None


def class_gate(config, stage, k: int) -> tuple | None:
    """``(first, count)``: the subarrays a stage's programs enable by ``MOVE SUBSEL``
    (``rtl.core.Core``, seed 002 sec. 3.2: class A and class B are separate subarrays) on a
    mat of ``k``: its class's (class A the last ``stage.subarrays``, class B the first), when
    the configuration splits the classes, its core has the gate (route ``dima_binconv``) and
    the class is not the whole mat; else None (the stage drives every subarray)."""
    cls = stage_class(stage)
    if (config.class_split is None or "dima_binconv" not in config.routes or cls is None
            or stage.subarrays >= k):
        return None
    return (k - stage.subarrays if cls == "A" else 0), stage.subarrays


def subsel_instr(gate):
    """The ``MOVE SUBSEL`` of a gate ``(first, count)`` (:func:`class_gate`)."""
    return _move(MoveOp.SUBSEL, a=gate[0], b=gate[1])


def gate_classes(compiled) -> None:
    """Put each class stage of ``compiled`` on its class's subarrays (:func:`class_gate`):
    every chunk's program starts with the gate's ``MOVE SUBSEL`` (one cycle, counted in the
    gather part), its static profile recomputed; the stage records the gate
    (``stage.class_gate``), which :func:`stage_energy` charges. A program that no longer fits
    ``program_words`` is the compiler's one-line CompileError. Called by ``compile_model``."""
    from sim.compile.compiler import _too_small, program_profile
    config, k = compiled.config, compiled.subarrays
    done = set()
    for st in compiled.stages:
        gate = class_gate(config, st, k)
        st.class_gate = gate
        if gate is None:
            continue
        word = asm.assemble([subsel_instr(gate), asm.halt()],
                            base_bits=config.isa_base_bits)[0]
        for ch in st.chunks:
            if id(ch) in done:
                continue
            done.add(id(ch))
            words = (word,) + tuple(ch.program)
            if len(words) > compiled.imem_depth:
                _too_small(f"{st.name}: the program of chunk {ch.index} with its class gate "
                           f"(MOVE SUBSEL) needs {len(words)} instruction words, but "
                           f"program_words is {compiled.imem_depth}", "program_words",
                           len(words))
            cycles, ops = program_profile(words, config)
            ch.max_cycles += cycles - ch.cycles
            ch.gather_cycles += cycles - ch.cycles
            ch.program, ch.cycles, ch.micro_ops = words, cycles, ops


def stage_columns(stage, mat_columns: int, columns: int) -> int:
    """The columns a stage's micro-ops drive: its class's subarrays (``columns`` each) when
    its programs gate the classes (``stage.class_gate``, :func:`gate_classes`), else the whole
    mat's ``mat_columns``."""
    gate = getattr(stage, "class_gate", None)
    return mat_columns if gate is None else gate[1] * columns


def stage_energy(config, stage, micro_ops, mat_columns: int):
    """``sim.hw.energy.estimate`` of a stage's micro-ops over the columns they drive
    (:func:`stage_columns`): with seed 002's class split each class stage enables its own
    subarrays only (``MOVE SUBSEL``, ``rtl.core.Core``: the others neither sense nor write),
    so it is charged over its class's subarrays, as the seed organises the mat (sec. 3.2,
    Fig. 3a); any other stage over the whole mat's ``mat_columns`` (``CompiledModel.width``).
    The energy basis of the counting mode and of ``sim.analysis.report`` (:func:`gate_report`;
    ``docs/dataflows.rst``, "Energy basis of the classes"). The ungated core, every subarray
    driven by every micro-op, is :func:`ungated_energy`, a labelled comparison."""
    from sim.hw.energy import estimate
    return estimate(config, micro_ops, columns_active=stage_columns(stage, mat_columns,
                                                                    config.columns))


def ungated_energy(config, stage, micro_ops, mat_columns: int):
    """The stage's micro-ops charged over the whole mat's ``mat_columns``: what a core without
    the class gate (every subarray gets every array command) would spend; a comparison
    figure, labelled as such wherever it is shown (the SUBSEL cycle is in ``micro_ops``, a
    MOVE)."""
    from sim.hw.energy import estimate
    return estimate(config, micro_ops, columns_active=mat_columns)


def gate_report(rep, compiled, stage_counters):
    """``rep`` (a ``sim.hw.energy.Report`` over ``compiled.width`` of counters that include
    the stages' ``stage_counters``, in ``compiled.stages`` order) with each gated stage's
    micro-ops charged over its class's columns instead (:func:`stage_energy`): energy per
    opcode, per class, total, power and GOPS/W; ``rep`` itself when no stage is gated. The
    energy being linear in the counts, this is the sum of the stages' :func:`stage_energy`
    (plus what ``rep`` charges besides: the host's loads)."""
    from sim.hw.energy import estimate
    config, width = compiled.config, compiled.width
    for st, counters in zip(compiled.stages, stage_counters, strict=True):
        cols = stage_columns(st, width, config.columns)
        if cols == width:
            continue
        full = estimate(config, counters, columns_active=width)
        part = estimate(config, counters, columns_active=cols)
        for key, e in full.energy_per_op_j.items():
            rep.energy_per_op_j[key] -= e - part.energy_per_op_j[key]
        for key, e in full.energy_per_class_j.items():
            rep.energy_per_class_j[key] -= e - part.energy_per_class_j[key]
        rep.energy_j -= full.energy_j - part.energy_j
    rep.power_w = rep.energy_j / rep.latency_s if rep.latency_s else 0.0
    if rep.ops is not None:
        rep.gops_per_w = rep.ops / rep.energy_j / 1e9 if rep.energy_j else float("inf")
    return rep


def load_energy(compiled):
    """``(cycles, micro-ops, energy_j)`` of the model's load programs (the resident weight rows
    of the bit-wise convolver, once per model load), costed over the whole mat
    (:func:`stage_energy`)."""
    from sim.routes.dima_bitwise import load_profile
    cycles, ops = load_profile(compiled)
    by_name = {st.name: st for st in compiled.stages}
    e = sum(stage_energy(compiled.config, by_name[r.stage], r.micro_ops,
                         compiled.width).energy_j for r in compiled.load_programs)
    return cycles, ops, e


def compare_bitwise(model, cfg, out=print, subarrays: int | None = None) -> dict:
    """The multi-bit layers (inception, MLP) of ``model`` on ``cfg`` (a mat of ``subarrays``,
    default the configuration's) by the bit-wise convolver (route ``dima_bitwise``, its weight
    rows resident where the array has spare rows; ``dima_bitwise/ch``: rewritten per output
    channel and chunk) and by ``and_bitcount`` (the same configuration without
    ``dima_bitwise``): per stage and variant, cycles, array row writes (``WRITE_ROW``) per
    image, AND2 / AND_FU senses, energy (:func:`stage_energy` of the static profile, which
    every run equals) and the row writes of the load programs (once per model load). Returns
    ``{variant: {stage name: (cycles, writes, and2, and_fu, energy_j, load_writes)}}``."""
    from sim.compile.compiler import compile_model
    from sim.routes import dima_bitwise
    variants = {"dima_bitwise": (cfg, True), "dima_bitwise/ch": (cfg, False),
                "and_bitcount": (replace(cfg, routes=tuple(r for r in cfg.routes
                                                           if r != "dima_bitwise")), True)}
    table = {}
    for label, (c, resident) in variants.items():
        token = dima_bitwise.RESIDENT.set(resident)
        try:
            compiled = compile_model(model, c, subarrays=subarrays)
        finally:
            dima_bitwise.RESIDENT.reset(token)
        loads = {r.stage: r.micro_ops["write_row"] for r in compiled.load_programs}
        table[label] = {}
        for st in compiled.stages:
            if st.route not in CLASS_B_ROUTES:
                continue
            ops = st.micro_ops
            table[label][st.name] = (st.cycles, ops["write_row"], ops["and2"], ops["and_fu"],
                                     stage_energy(c, st, ops, compiled.width).energy_j,
                                     loads.get(st.name, 0))
    out("  multi-bit layers, bit-wise convolver (dima_bitwise: weight rows resident where the "
        "array has spare rows; /ch: rewritten per output channel and chunk) vs and_bitcount "
        "(per image; 'load': row writes once per model load):")
    for name in table["dima_bitwise"]:
        for label in variants:
            cy, wr, a2, af, e, ld = table[label][name]
            out(f"    {name:32s} {label:15s} {cy:8d} cycles {wr:6d} row writes {a2:7d} AND2 "
                f"{af:7d} AND_FU {e * 1e9:9.2f} nJ  load {ld:5d} row writes")
    return table


if __name__ == "__main__":
    raise SystemExit(main())
