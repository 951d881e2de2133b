"""Compiler: a golden AdderNet (``golden.model.Model``) onto the core (``build/core_spec.md``).

Mapping
-------
Every compute layer (with a 2x2 stride-2 pool right after it fused in) becomes one
:class:`Stage`; ``flatten`` costs nothing (the next stage reads the previous output reshaped).
A stage computes ``O`` outputs for each of its patches (im2col windows of a convolution, or the
single input vector of a linear layer) with the patches *stationary* in the array and the
weights streamed from the weight buffer:

* array, per chunk of ``P`` patches: bit-planes of the patches, row
  ``row0 + (t*n + b)*P + p`` holds plane ``b`` (``n = operand_bits = 8`` planes, LSB = 0) of
  tile ``t`` of patch ``p``, column ``k`` the term ``t*columns + k`` of the patch (zero beyond
  the fan-in and for the padding); a layer has ``T = ceil(fan_in / columns)`` tiles.
* weight buffer, all layers resident at once: slot ``base + (t*n + b)*O + o`` holds plane ``b``
  of tile ``t`` of output channel ``o`` (multiply weights as two's complement bytes).
* requant table: channel ``ch0 + o``, a global index per layer (``rq_mult``, ``rq_shift``,
  ``rq_bias``; a logits layer: the bias).

The program of a chunk is ``LOOP O { LOOP P { tile 0 .. tile T-1 } }``: every operand is
``base + 1 * index`` of one loop level (rows: level 0 = the patch; slots and the channel:
level 1 = the output channel). Each tile is one dot product of ``columns`` terms, reduced in the
reduction unit's accumulator and handed to the PPU by a REQUANT: ``CLEAR`` on tile 0 (a new
partial sum), ``EMIT`` on tile T-1, ``NEG`` always (see below), mode ``REQUANT``, ``MAX4`` /
``AVG4`` (fused pool: the 4 patches of a pool window are consecutive, positions outside every
window are not computed) or ``LOGIT`` (the last layer). Outputs come out channel-major,
``out[o * (P / G) + j]``, G = 4 pooled, else 1.

Tile dot products by route:

* adder layer, dataflow ``write_free`` (n cycles, no array write): ``MIN_STEP`` on planes
  b = n-1 .. 0, ``L1_FIRST`` on the MSB plane (START of the min lanes, acc = q), ``L1_PLANE``
  on the others: acc = sum_k |x_k - w_k|.
* adder layer, dataflow ``abs_diff`` (seed 000; 4n cycles, n write-backs; + 1 ERASE per scratch
  strip on nand_spin): ``FS_STEP`` SIGN pass b = 0 .. n-1 (``first`` on b = 0), ``FS_STEP``
  DIFF pass with the write-back of each difference bit into scratch row ``b`` in the schedule
  DIFF(i), DIFF(i+1), WB(i), WB(i+1) (WB = ``WRITE_ROW`` ``imm`` bit 0; on nand_spin the scratch
  strip is erased first and WB = ``PROGRAM`` ``imm`` bit 0), then the scratch rows read MSB
  first by ``SHIFT_ACC`` (``L1_FIRST``: acc = p because row_w = row_min = 0; then
  ``SHIFT_ADD``). The scratch rows are rows 0 .. n-1 (strip-aligned, whole strips reserved).
* multiply layer (every dataflow; ``AND_FU`` + reduce, seed 001 eq. 1; 64 cycles): the 64
  plane pairs (m of x, n of w) in order of m + n descending (MSB first, Horner): the first pair
  of each m + n group with a ``SHIFT_*`` op, the others without shift. The accumulator holds
  the *negated* dot product: a pair on the weight's sign plane (n = 7, weight -2**7) is added
  (``ADD`` / ``SHIFT_ADD``), every other pair subtracted (``SUB`` / ``SHIFT_SUB``), so the very
  first pair, (7, 7), is a plain load ``L1_FIRST`` (acc = p) and no clear cycle is needed; the
  PPU's ``NEG`` restores the sign. Adder layers use ``NEG`` too: golden's adder accumulator is
  ``-sum |x - w|``.

Chunks: ``P`` patches so that the ``T*n*P`` data rows fit next to the scratch rows, the row
bases fit the ISA's 12 bits and the ``O*P/G`` outputs fit the output memory; ``P`` a multiple of
4 when pooled. One program per chunk shape (all full chunks share one, the last may differ).

Running: :func:`host_array_load` (the array commands that load a chunk's rows; used by both the
model runner and the RTL driver) and :func:`run_compiled` (a synchronous executor such as
``sim.core_model.CoreModel``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from golden import layers as L
from golden.model import COMPUTE_KINDS, Model
from rtl.column_reduce import ReduceOp
from rtl.config import check_config
from rtl.isa import (
    BASE_BITS, MAX_LOOP_COUNT, Instr, Opcode, Operand, counter_names, decode,
)
from rtl.mtj_array import MacroCmd

from . import asm
from .core_model import (
    MODE_AVG4, MODE_LOGIT, MODE_MAX4, MODE_REQUANT, PIPELINE_DRAIN, PPU_CLEAR, PPU_EMIT,
    PPU_MODE_LSB, PPU_NEG,
)
from .util import UserError

__all__ = [
    "CompileError", "RunError", "CompiledModel", "Stage", "Chunk", "compile_model",
    "host_array_load", "load_compiled", "run_compiled", "program_profile", "RunResult",
    "StageRun", "ADDER_DATAFLOWS",
]

#: Dataflows that can map an adder layer.
ADDER_DATAFLOWS = ("write_free", "abs_diff")
_BASE_MAX = (1 << BASE_BITS) - 1
_POOL_ORDER = ((0, 0), (0, 1), (1, 0), (1, 1))


class CompileError(UserError):
    """A model (or a layer of it) that can not be mapped onto the core; the message says which
    layer, which quantity, its value and the limit."""


class RunError(RuntimeError):
    """The executor reported an error while running a compiled chunk."""


# ---- program building ----------------------------------------------------------------------

def _opnd(v) -> Operand:
    return v if isinstance(v, Operand) else Operand(int(v))


def _op(opcode: Opcode, *, imm: int = 0, a=0, b=0, d=0) -> Instr:
    """A datapath instruction; operands are ints (absolute) or ``Operand`` (loop-relative),
    unused ones 0 (``rtl.isa.OPERANDS`` says what the core reads)."""
    return Instr(opcode, imm=imm, a=_opnd(a), b=_opnd(b), d=_opnd(d))


def _per_patch(base: int) -> Operand:
    return Operand(base, 0, 1)      # + patch index (level 0)


def _per_channel(base: int) -> Operand:
    return Operand(base, 1, 1)      # + output channel index (level 1)


def program_profile(words) -> tuple[int, dict]:
    """Controller cycles and counters of a well-formed program (``asm.check_program`` passes,
    no stalls), from its loop structure alone, by the timing of ``sim.isa_model``.

    Returns ``(cycles, counters)``, counters by name as ``rtl.isa.counter_names``.
    """
    counts = dict.fromkeys(counter_names(), 0)
    mult = [1]
    cycles = 0
    folds = False       # the previous instruction was a NOP or a micro-op
    for w in words:
        ins = decode(int(w))
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
    counts["cycles"] = cycles
    return cycles, counts


# ---- data structures -------------------------------------------------------------------------

@dataclass(eq=False)
class Chunk:
    """One run of the core: ``patches`` patches from ``patch_start`` (in the stage's patch
    order), loaded into ``rows``, computed by ``program``, ``n_out`` output words.

    ``cycles``: controller cycles of the run (exact); ``max_cycles``: a safe bound for a
    driver's timeout (cycles + pipeline drain + margin); ``micro_ops``: the counters of the
    run by name (static, from the program's structure).
    """
    stage: Stage = field(repr=False)
    index: int
    patch_start: int
    patches: int
    rows: tuple
    program: tuple
    n_out: int
    cycles: int
    max_cycles: int
    micro_ops: dict = field(repr=False)

    def row_image(self, stage_input) -> np.ndarray:
        """The bits of ``rows`` for ``stage_input`` (the stage's input, any integer array of
        ``stage.in_shape`` elements in [0, 255]): bool [len(rows), columns]."""
        st = self.stage
        x = st.patches(stage_input)[self.patch_start:self.patch_start + self.patches]
        n, cols = st.n, st.columns
        planes = (x.reshape(self.patches, st.tiles, cols)[..., None] >> np.arange(n)) & 1
        # [P, T, cols, n] -> [T, n, P, cols]: row (t*n + b)*P + p
        return planes.transpose(1, 3, 0, 2).reshape(-1, cols).astype(bool)

    @property
    def host_loads(self) -> dict:
        """Array commands of the host load (:func:`host_array_load`): ``writes``, ``erases``,
        ``programs``."""
        cfg = self.stage.config
        if cfg.technology != "nand_spin":
            return {"writes": len(self.rows), "erases": 0, "programs": 0}
        strips = {r - r % cfg.mtjs_per_strip for r in self.rows}
        return {"writes": 0, "erases": len(strips), "programs": len(self.rows)}

    @property
    def group_ids(self) -> np.ndarray:
        """Output positions (per channel, flat) this chunk produces, in output order."""
        g = self.stage.group
        start = self.patch_start // g
        return np.arange(start, start + self.patches // g)

    def scatter(self, words, stage_output) -> None:
        """Put the chunk's ``n_out`` output words (unsigned 32-bit, as read from the core)
        into ``stage_output`` (an integer array of ``stage.out_shape``, written in place)."""
        st = self.stage
        v = np.asarray([int(w) for w in words[:self.n_out]], dtype=np.int64)
        if len(v) != self.n_out:
            raise ValueError(f"{st.name} chunk {self.index}: {self.n_out} output words "
                             f"expected, got {len(v)}")
        if st.output == "logits":
            v = np.where(v >= 1 << 31, v - (1 << 32), v)
        flat = stage_output.reshape(st.out_channels, -1)
        if not np.shares_memory(flat, stage_output):
            raise ValueError("stage_output must be a contiguous array")
        flat[:, self.group_ids] = v.reshape(st.out_channels, -1)


@dataclass(eq=False)
class Stage:
    """One compute layer of the model (with a fused pool) as core runs.

    ``name``: e.g. ``layer1 adder_conv2d + layer2 max_pool2d``; ``layer_index``: the compute
    layer; ``golden_index``: the layer of ``golden.model.infer_int(trace=True)`` whose output
    this stage reproduces (the pool's when fused); ``in_shape`` / ``out_shape`` / ``dtype``:
    per image; ``route``: ``write_free`` / ``abs_diff`` / ``and_bitcount``; ``pool``: None,
    ``max`` or ``avg``; ``tiles`` T; ``n`` planes; ``group`` patches per output position (4
    pooled, else 1); ``buffer_base``, ``channel_base``: where its weights and table entries
    are; ``scratch_rows``: the abs-diff write-back rows; ``chunks``: the runs.
    """
    name: str
    layer_index: int
    golden_index: int
    kind: str
    output: str
    route: str
    pool: str | None
    in_shape: tuple
    out_shape: tuple
    dtype: type
    out_channels: int
    fan_in: int
    tiles: int
    n: int
    columns: int
    group: int
    buffer_base: int
    channel_base: int
    scratch_rows: tuple
    data_row0: int
    kernel: tuple = (1, 1)
    stride: int = 1
    padding: int = 0
    config: object = field(default=None, repr=False)
    order: np.ndarray = field(default=None, repr=False)   # patch -> output position (conv)
    chunks: list = field(default_factory=list, repr=False)

    def patches(self, stage_input) -> np.ndarray:
        """The stage's patches in patch order, zero-filled to ``tiles * columns`` terms: uint8
        [patches, tiles * columns]."""
        x = np.asarray(stage_input)
        if x.size != math.prod(self.in_shape):
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
        out = np.zeros((cols.shape[0], self.tiles * self.columns), dtype=np.uint8)
        out[:, :self.fan_in] = cols
        return out

    @property
    def cycles(self) -> int:
        """Controller cycles of all chunks (static)."""
        return sum(c.cycles for c in self.chunks)

    @property
    def host_loads(self) -> dict:
        """Array commands of the host loads of all chunks (static)."""
        total = {"writes": 0, "erases": 0, "programs": 0}
        for c in self.chunks:
            for k, v in c.host_loads.items():
                total[k] += v
        return total

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

    ``buffer``: bool [slots, columns], the weight-buffer image from slot 0; ``table``:
    ``(mult, shift, bias)`` tuples indexed by channel; ``stages``: one per compute layer;
    ``input_shape``: the model's input (C, H, W).
    """
    config: object
    buffer: np.ndarray
    table: tuple
    stages: list
    input_shape: tuple
    buffer_slots: int
    channels: int
    out_depth: int
    imem_depth: int

    @property
    def cycles(self) -> int:
        """Controller cycles of one image (static), all stages."""
        return sum(s.cycles for s in self.stages)


# ---- compiling -------------------------------------------------------------------------------

def _fail(where: str, msg: str):
    raise CompileError(f"{where}: {msg}")


def _weight_planes(weight: np.ndarray, tiles: int, columns: int, n: int) -> np.ndarray:
    """bool [T*n*O, columns]: slot (t*n + b)*O + o = plane b of tile t of channel o."""
    o = weight.shape[0]
    w2 = weight.reshape(o, -1).astype(np.int64) & ((1 << n) - 1)    # two's complement bytes
    full = np.zeros((o, tiles * columns), dtype=np.int64)
    full[:, :w2.shape[1]] = w2
    planes = (full.reshape(o, tiles, columns)[..., None] >> np.arange(n)) & 1   # O,T,cols,n
    return planes.transpose(1, 3, 0, 2).reshape(-1, columns).astype(bool)


def _tile_body(stage: Stage, t: int, patches: int, config) -> list:
    """Instructions of tile ``t`` of one output (inside ``LOOP O { LOOP P { ... } }``)."""
    n, out_ch, row0, wbase = stage.n, stage.out_channels, stage.data_row0, stage.buffer_base
    body = []

    def xrow(b):
        return _per_patch(row0 + (t * n + b) * patches)

    def wslot(b):
        return _per_channel(wbase + (t * n + b) * out_ch)

    if stage.route == "write_free":
        for b in range(n - 1, -1, -1):
            imm = ReduceOp.L1_FIRST if b == n - 1 else ReduceOp.L1_PLANE
            body.append(_op(Opcode.MIN_STEP, imm=imm.value, a=xrow(b), b=wslot(b)))
    elif stage.route == "abs_diff":
        scratch = stage.scratch_rows
        nand = config.technology == "nand_spin"
        if nand:
            for s in range(0, len(scratch), config.mtjs_per_strip):
                body.append(_op(Opcode.ERASE, a=scratch[s]))
        for b in range(n):                                        # SIGN pass, LSB first
            body.append(_op(Opcode.FS_STEP, imm=1 if b == 0 else 0, a=xrow(b), b=wslot(b)))
        wb = Opcode.PROGRAM if nand else Opcode.WRITE_ROW
        b = 0
        while b < n:                                              # DIFF pass + write-back
            pair = [b, b + 1] if b + 1 < n else [b]
            for i in pair:
                body.append(_op(Opcode.FS_STEP, imm=2 | (1 if i == 0 else 0), a=xrow(i),
                                b=wslot(i)))
            if len(pair) == 1:
                body.append(Instr(Opcode.NOP))
            for i in pair:
                body.append(_op(wb, imm=1, a=scratch[i], b=0))
            b += len(pair)
        for i in range(n - 1, -1, -1):                            # read back, MSB first
            imm = ReduceOp.L1_FIRST if i == n - 1 else ReduceOp.SHIFT_ADD
            body.append(_op(Opcode.SHIFT_ACC, imm=imm.value, a=scratch[i]))
    else:                                                         # AND + bit-count, signed w
        pairs = sorted(((m, k) for m in range(n) for k in range(n)),
                       key=lambda mk: (-(mk[0] + mk[1]), -mk[1]))
        prev = None
        for m, k in pairs:
            subtract = k != n - 1          # accumulating -dot: the sign plane adds
            if prev is None:
                imm = ReduceOp.L1_FIRST
            elif m + k != prev:
                imm = ReduceOp.SHIFT_SUB if subtract else ReduceOp.SHIFT_ADD
            else:
                imm = ReduceOp.SUB if subtract else ReduceOp.ADD
            prev = m + k
            body.append(_op(Opcode.AND_FU, imm=imm.value, a=xrow(m), b=wslot(k)))
    mode = (MODE_LOGIT if stage.output == "logits" else
            {None: MODE_REQUANT, "max": MODE_MAX4, "avg": MODE_AVG4}[stage.pool])
    ppu = ((PPU_CLEAR if t == 0 else 0) | (PPU_EMIT if t == stage.tiles - 1 else 0) | PPU_NEG
           | mode << PPU_MODE_LSB)
    body.append(_op(Opcode.REQUANT, imm=ppu, a=_per_channel(stage.channel_base)))
    return body


def _chunk_program(stage: Stage, patches: int, config) -> tuple:
    body = []
    for t in range(stage.tiles):
        body += _tile_body(stage, t, patches, config)
    instrs = [asm.loop(count=stage.out_channels), asm.loop(count=patches), *body,
              asm.endloop(), asm.endloop(), asm.halt()]
    return tuple(asm.assemble(instrs))


def _words_per_tile(route: str, n: int, config) -> int:
    if route == "write_free":
        return n + 1
    if route == "abs_diff":
        erases = (math.ceil(n / config.mtjs_per_strip)
                  if config.technology == "nand_spin" else 0)
        return erases + 4 * n + (n % 2) + 1
    return n * n + 1


def compile_model(model: Model, config, *, buffer_slots: int = 2048, channels: int = 256,
                  out_depth: int = 4096, imem_depth: int = 1024) -> CompiledModel:
    """Map ``model`` onto a core of ``config`` (see the module docstring).

    Parameters
    ----------
    model : golden.model.Model
    config : AcceleratorConfig
        ``dataflow`` chooses the route of adder layers (``write_free`` or ``abs_diff``).
    buffer_slots, channels, out_depth, imem_depth : int
        The core's weight-buffer words, requant table entries, output words, instruction words.

    Raises
    ------
    CompileError
        A layer the core can not run: an adder layer with dataflow ``and_bitcount``, a pool
        that is not a 2x2 stride-2 pool right after a convolution, weights that do not fit the
        buffer, too many channels, an accumulator wider than ``acc_bits``, a patch that needs
        more rows than the array has, a program longer than ``imem_depth``, a base beyond the
        ISA's 12 bits. The message names the layer, the quantity, its value and the limit.
    """
    config = check_config(config)
    if not isinstance(model, Model):
        raise TypeError(f"model must be a golden.model.Model, not {model!r}")
    n, cols = config.operand_bits, config.columns
    if n != L.ACT_BITS:
        raise CompileError(f"config operand_bits is {n}, but the golden model's activations "
                           f"and weights are {L.ACT_BITS}-bit: use operand_bits={L.ACT_BITS}")
    shapes = model.shapes()
    layers = model.layers
    plans = []                          # (compute index, pool index or None)
    i = 0
    while i < len(layers):
        ly = layers[i]
        where = f"layer {i} ({ly.kind})"
        if ly.kind == "flatten":
            i += 1
            continue
        if ly.kind not in COMPUTE_KINDS:
            prev = layers[i - 1].kind if i else "the model input"
            _fail(where, f"a pool must directly follow a convolution to be fused into the "
                  f"PPU (MAX4 / AVG4), but it follows {prev}")
        pool = None
        if i + 1 < len(layers) and layers[i + 1].kind in ("max_pool2d", "avg_pool2d"):
            pl = layers[i + 1]
            k, s = int(pl.params["kernel"]), int(pl.params["stride"])
            if not ly.is_conv:
                _fail(f"layer {i + 1} ({pl.kind})", "a pool must follow a convolution")
            if (k, s) != (2, 2):
                _fail(f"layer {i + 1} ({pl.kind})",
                      f"only kernel 2 stride 2 pools can be fused into the PPU (MAX4 / AVG4 "
                      f"reduce 4 consecutive outputs), not kernel {k} stride {s}")
            pool = i + 1
        if ly.is_adder and config.dataflow not in ADDER_DATAFLOWS:
            _fail(where, f"dataflow {config.dataflow!r} cannot map an adder layer (sum |x - w| "
                  f"is not an AND + bit-count); use dataflow "
                  f"{' or '.join(repr(d) for d in ADDER_DATAFLOWS)}")
        plans.append((i, pool))
        i += 1 if pool is None else 2

    needs = []
    for ci, _ in plans:
        w = layers[ci].params["weight"]
        needs.append((ci, layers[ci].kind, -(-int(np.prod(w.shape[1:])) // cols) * n * w.shape[0],
                      w.shape[0]))
    total = sum(x[2] for x in needs)
    if total > buffer_slots:
        parts = ", ".join(f"layer {ci} ({kind}) {k}" for ci, kind, k, _ in needs)
        raise CompileError(f"the model's weights need {total} weight-buffer slots (tiles x "
                           f"{n} planes x output channels: {parts}), but buffer_slots is "
                           f"{buffer_slots}; use more columns or a larger buffer")
    total = sum(x[3] for x in needs)
    if total > channels:
        raise CompileError(f"the model has {total} output channels in its compute layers, but "
                           f"the requant table has channels={channels} entries")
    stages, images = [], []
    slot, chan = 0, 0
    mults, shifts, biases = [], [], []
    for ci, pi in plans:
        ly = layers[ci]
        where = f"layer {ci} ({ly.kind})"
        w = ly.params["weight"]
        out_ch, fan_in = w.shape[0], int(np.prod(w.shape[1:]))
        tiles = -(-fan_in // cols)
        kind = "adder" if ly.is_adder else "mul"
        bound = L.conv_acc_bound(kind, fan_in)
        if bound > (1 << (config.acc_bits - 1)) - 1:
            _fail(where, f"the accumulator can reach {bound} (fan-in {fan_in}), which does not "
                  f"fit acc_bits={config.acc_bits} signed bits")
        route = config.dataflow if ly.is_adder else "and_bitcount"
        scratch = ()
        if route == "abs_diff":
            m = config.mtjs_per_strip
            scratch = tuple(range(-(-n // m) * m))[:n]
        data_row0 = -(-len(scratch) // config.mtjs_per_strip) * config.mtjs_per_strip
        # weight buffer and requant table
        need = tiles * n * out_ch
        if slot > _BASE_MAX or slot + (tiles * n - 1) * out_ch > _BASE_MAX:
            _fail(where, f"weight-buffer base {slot + (tiles * n - 1) * out_ch} exceeds the "
                  f"ISA's {BASE_BITS}-bit operand base (at most {_BASE_MAX})")
        images.append(_weight_planes(w, tiles, cols, n))
        if chan > _BASE_MAX:
            _fail(where, f"requant channel base {chan} exceeds the ISA's {BASE_BITS}-bit "
                  f"operand base (at most {_BASE_MAX})")
        if ly.output == "logits":
            mults += [1] * out_ch
            shifts += [0] * out_ch
            biases += [int(v) for v in ly.params["bias"]]
        else:
            mults += [int(v) for v in ly.params["rq_mult"]]
            shifts += [int(v) for v in ly.params["rq_shift"]]
            biases += [int(v) for v in ly.params["rq_bias"]]
        in_shape, conv_shape = tuple(shapes[ci]), tuple(shapes[ci + 1])
        out_shape = tuple(shapes[pi + 1]) if pi is not None else conv_shape
        pool = None if pi is None else layers[pi].kind[:3]
        name = f"layer{ci} {ly.kind}" + ("" if pi is None else f" + layer{pi} {layers[pi].kind}")
        stage = Stage(
            name=name, layer_index=ci, golden_index=ci if pi is None else pi, kind=ly.kind,
            output=ly.output, route=route, pool=pool, in_shape=in_shape, out_shape=out_shape,
            dtype=np.int64 if ly.output == "logits" else np.uint8, out_channels=out_ch,
            fan_in=fan_in, tiles=tiles, n=n, columns=cols, group=4 if pool else 1,
            buffer_base=slot, channel_base=chan, scratch_rows=scratch, data_row0=data_row0,
            config=config)
        slot += need
        chan += out_ch
        if ly.is_conv:
            stage.kernel = tuple(int(v) for v in w.shape[2:])
            stage.stride, stage.padding = int(ly.params["stride"]), int(ly.params["padding"])
            ho, wo = conv_shape[1:]
            if pool:
                hp, wp = out_shape[1:]
                stage.order = np.array([(2 * i + di) * wo + 2 * j + dj for i in range(hp)
                                        for j in range(wp) for di, dj in _POOL_ORDER])
            else:
                stage.order = np.arange(ho * wo)
            total = len(stage.order)
        else:
            total = 1
        _plan_chunks(stage, total, config, where, out_depth=out_depth, imem_depth=imem_depth)
        stages.append(stage)

    buffer = (np.concatenate(images) if images else np.zeros((0, cols), dtype=bool))
    return CompiledModel(config=config, buffer=buffer,
                         table=(tuple(mults), tuple(shifts), tuple(biases)), stages=stages,
                         input_shape=tuple(model.input_shape), buffer_slots=buffer_slots,
                         channels=channels, out_depth=out_depth, imem_depth=imem_depth)


def _plan_chunks(stage: Stage, total: int, config, where: str, *, out_depth: int,
                 imem_depth: int) -> None:
    """Split ``total`` patches into chunks and build their programs."""
    n, tiles, g, out_ch = stage.n, stage.tiles, stage.group, stage.out_channels
    per_patch = tiles * n
    free = config.rows - stage.data_row0
    if per_patch > free:
        extra = (f" + {stage.data_row0} abs-diff scratch rows" if stage.data_row0 else "")
        _fail(where, f"one patch needs {per_patch} array rows ({tiles} tiles x {n} planes)"
              f"{extra}, but the array has rows={config.rows}; use more columns or rows")
    p_rows = free // per_patch
    p_isa = (_BASE_MAX - stage.data_row0) // (per_patch - 1) if per_patch > 1 else p_rows
    p_out = out_depth // out_ch * g
    p = min(p_rows, p_isa, p_out, MAX_LOOP_COUNT, total) // g * g
    if p == 0:
        why = []
        if p_rows < g:
            why.append(f"{p_rows} patches fit the free rows ({free} rows, {per_patch} per "
                       f"patch)")
        if p_isa < g:
            why.append(f"{p_isa} patches fit the ISA's {BASE_BITS}-bit row bases")
        if p_out < g:
            why.append(f"{out_ch} output channels exceed out_depth={out_depth}")
        _fail(where, f"a chunk needs at least {g} patches (a pool window), but "
              + "; ".join(why or ["none fit"]))
    words = 5 + tiles * _words_per_tile(stage.route, n, config)
    if words > imem_depth:
        _fail(where, f"the program of one chunk needs {words} instruction words ({tiles} "
              f"tiles x {_words_per_tile(stage.route, n, config)} + 5), but imem_depth is "
              f"{imem_depth}; use more columns (fewer tiles) or a deeper instruction memory")
    programs = {}
    start, index = 0, 0
    while start < total:
        count = min(p, total - start)
        if count not in programs:
            prog = _chunk_program(stage, count, config)
            cycles, ops = program_profile(prog)
            programs[count] = (prog, cycles, ops)
        prog, cycles, ops = programs[count]
        rows = tuple(range(stage.data_row0, stage.data_row0 + per_patch * count))
        stage.chunks.append(Chunk(
            stage=stage, index=index, patch_start=start, patches=count, rows=rows,
            program=prog, n_out=out_ch * count // g, cycles=cycles,
            max_cycles=cycles + PIPELINE_DRAIN + 64, micro_ops=ops))
        start += count
        index += 1


# ---- running ---------------------------------------------------------------------------------

def host_array_load(config, rows, bits) -> list:
    """The array commands that load ``bits`` (bool [len(rows), columns]) into ``rows``.

    nand_spin: ERASE each strip any of the rows is in (data 0, mask all ones), then PROGRAM
    each row; every other technology: WRITE each row. Returns ``(MacroCmd, row, data, mask)``
    tuples, data and mask as bool [columns].
    """
    config = check_config(config)
    bits = np.asarray(bits, dtype=bool)
    rows = [int(r) for r in rows]
    if bits.shape != (len(rows), config.columns):
        raise ValueError(f"bits must have shape ({len(rows)}, {config.columns}), not "
                         f"{bits.shape}")
    ones = np.ones(config.columns, dtype=bool)
    if config.technology != "nand_spin":
        return [(MacroCmd.WRITE, r, bits[i], ones) for i, r in enumerate(rows)]
    m = config.mtjs_per_strip
    strips = sorted({r - r % m for r in rows})
    zeros = np.zeros(config.columns, dtype=bool)
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
    host_writes: int = 0            # array commands of the host loads
    host_erases: int = 0
    host_programs: int = 0
    write_backs: int = 0            # WRITE_ROW + PROGRAM micro-ops (abs-diff write-back)
    write_back_erases: int = 0      # ERASE micro-ops


@dataclass
class RunResult:
    """Result of :func:`run_compiled` for one image."""
    logits: np.ndarray
    outputs: list
    counters: dict
    stages: list
    host_writes: int
    host_erases: int
    host_programs: int

    @property
    def cycles(self) -> int:
        return self.counters["cycles"]


def load_compiled(compiled: CompiledModel, executor) -> None:
    """Load the weight buffer and the requant table through the executor's host port."""
    for slot, bits in enumerate(compiled.buffer):
        executor.write_buffer(slot, bits)
    for ch, (m, s, b) in enumerate(zip(*compiled.table, strict=True)):
        executor.write_table(ch, m, s, b)


def run_compiled(compiled: CompiledModel, x_image, executor, *,
                 load_weights: bool = True) -> RunResult:
    """Run one image (uint8, the model's input shape) through every stage on ``executor``.

    ``executor`` is synchronous with the host interface of ``sim.core_model.CoreModel``
    (``write_buffer``, ``write_table``, ``array_command``, ``run`` returning ``out``,
    ``error``, ``reason``, ``counters``). With ``load_weights`` (default) the buffer and the
    table are loaded first (:func:`load_compiled`).

    Raises
    ------
    RunError
        The executor reported an error (the message names the stage, the chunk, the reason).
    """
    if load_weights:
        load_compiled(compiled, executor)
    cur = np.asarray(x_image)
    outputs, runs = [], []
    totals = dict.fromkeys(counter_names(), 0)
    for stage in compiled.stages:
        y = np.zeros(stage.out_shape, dtype=np.int64)
        sr = StageRun(stage.name, stage.golden_index, micro_ops=dict.fromkeys(counter_names(), 0))
        for chunk in stage.chunks:
            cmds = host_array_load(compiled.config, chunk.rows, chunk.row_image(cur))
            for cmd, row, data, mask in cmds:
                executor.array_command(cmd, row, data, mask)
                sr.host_writes += cmd is MacroCmd.WRITE
                sr.host_erases += cmd is MacroCmd.ERASE
                sr.host_programs += cmd is MacroCmd.PROGRAM
            res = executor.run(chunk.program)
            if res.error:
                raise RunError(f"{stage.name} chunk {chunk.index}: the core reported an error: "
                               f"{res.reason}")
            chunk.scatter(res.out, y)
            for k, v in res.counters.items():
                sr.micro_ops[k] += v
                totals[k] += v
            sr.runs += 1
        sr.cycles = sr.micro_ops["cycles"]
        sr.write_backs = sr.micro_ops["write_row"] + sr.micro_ops["program"]
        sr.write_back_erases = sr.micro_ops["erase"]
        outputs.append(y.astype(stage.dtype))
        runs.append(sr)
        cur = y
    return RunResult(logits=outputs[-1], outputs=outputs, counters=totals, stages=runs,
                     host_writes=sum(s.host_writes for s in runs),
                     host_erases=sum(s.host_erases for s in runs),
                     host_programs=sum(s.host_programs for s in runs))
