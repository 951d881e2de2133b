"""DIMA's in-memory bit-wise convolver (``dima_bitwise``, seed 002 sec. 3.3, Fig. 5, eq. 5):
the multi-bit-weight layers of Add-Net (the inception convolution and the MLP) on class B
subarrays.

``I * W = sum_{m,n} 2^(m+n) s_n bitcount(and(C_n(W), C_m(I)))`` over the bit-planes m of the
(unsigned) inputs and n of the (two's complement) weights, ``s_n = -1`` on the weights' sign
plane. Unlike ``and_bitcount`` (seed 001: the weight plane ANDed from the FU line), both
operands are *in the array*, as the seed maps them: the weight planes ``C_n(W)`` of the
output channel in rows of the subarray, the patch's input planes ``C_m(I)`` in the following
rows, and every plane pair is one two-row activation (``AND2``, seed 002 sec. 3.1: the sense
amplifier's AND reference between R_AP//R_P and R_AP//R_AP), its column popcount the
Bit-Counter, the reduction unit's shift the Shifter, its accumulator the Sum unit (the
``rtl.column_reduce`` of every subarray: the route needs no lane of its own, and its core is
the one of its other routes).

Layout and program (the compiler's ``wide`` / ``segmented`` data layout, ``sim.compile.compiler``):

* weight rows: rows ``t*n + k`` (k = 0 .. n-1, t = 0 .. T-1; :meth:`DimaBitwise.stage_scratch_rows`,
  the data rows follow), plane k of tile t of the current output channel;
* at the top of the output-channel loop (:meth:`DimaBitwise.channel_setup`): ``T*n``
  ``WRITE_ROW imm = BUFFER`` copy the channel's weight planes from the weight buffer into the
  weight rows (real, counted array writes: the SOT write of each plane); every patch of the
  chunk reuses them;
* the tile dot (:meth:`DimaBitwise.dot`): the ``n^2`` pairs ``AND2 a = xrow(m), b = t*n + k``
  in order of m + n descending (Horner, as ``and_bitcount``: the first pair of each m + n
  group shifts, the accumulator holds the *negated* dot: the sign-plane pairs add, the others
  subtract, the first pair a plain ``L1_FIRST`` load).

Cycles per tile dot: n^2 (64 at 8 bits); array writes: ``T*n`` per output channel and chunk
(the weights), besides the gather's ``n`` per row of patches (the activations), which every
route has. Rows: ``T*n`` fewer for the patches than ``and_bitcount``.

Resident weights (the seed's in-memory kernels, sec. 3.3: the weights sit in the class-B
subarray, the inputs are mapped next to them): where the array has spare rows, a stage's
weight planes stay in the array from the model load on (:func:`plan_residency`,
:func:`with_resident_weights`). A resident stage's planes are rows ``base + (t*n + k)*O + o``
(plane-major, stride 1 over the output channels, as its buffer slots) at the top of the array,
written once by the model's load programs (``LOOP T*n*O: WRITE_ROW imm = BUFFER``, run by
``sim.compile.compiler.load_compiled`` after the buffer; :class:`LoadRun`, counted apart from the
images); its chunks have no weight writes and no scratch rows, and every stage's data rows stay
below the resident rows (:func:`row_limit`). Spare rows: the resident rows plus the largest
row use of every stage that stays as it was (the binary-weight convolver's lanes, the stages
not made resident) fit ``rows``, and each resident stage still fits one chunk (a pool window
of patches); among the subsets of stages that fit, the one saving the most weight writes per
image. A row no program of the model writes is the only row that keeps a weight across
images: every ``WRITE_ROW`` from the transpose buffer drives the whole mat row, every
subarray's columns (``sim.hw.core_model``; with seed 002's class gate, ``MOVE SUBSEL``, every
enabled subarray's: the rule, kept from before the gate, is stricter than it needs now).
"""

from __future__ import annotations

import contextvars
import itertools
import math
from dataclasses import dataclass

from golden.model import COMPUTE_KINDS
from rtl.isa import MAX_LOOP_COUNT, Opcode, Operand, WriteSrc
from sim.compile import asm
from sim.routes.and_bitcount import pair_order, plane_pair_dot
from sim.routes.base import Route, op, register_route

__all__ = ["DimaBitwise", "pair_order", "Residency", "LoadRun", "plan_residency",
           "row_limit", "with_resident_weights", "load_profile"]


@dataclass(frozen=True)
class Residency:
    """Which stages keep their weight planes in the array: ``bases`` maps a stage's layer
    index to its first resident row; ``limit``: the first resident row of all (every data row
    of every stage is below it)."""
    bases: dict
    limit: int


@dataclass(frozen=True)
class LoadRun:
    """One load program (run once per model load, before any image): ``program`` its words,
    ``stage`` the stage name, ``cycles`` / ``micro_ops`` its static profile (which every run
    equals), ``max_cycles`` a bound for a host's wait."""
    stage: str
    program: tuple
    cycles: int
    micro_ops: dict
    max_cycles: int


#: The residency of the compile in progress (the second pass of :func:`with_resident_weights`).
_PLAN: contextvars.ContextVar = contextvars.ContextVar("dima_bitwise_residency", default=None)
#: False: never resident (``compare_bitwise``'s per-channel variant).
RESIDENT: contextvars.ContextVar = contextvars.ContextVar("dima_bitwise_resident", default=True)


def row_limit(config) -> int:
    """The rows a stage's data may use: ``config.rows``, or below the resident weight rows
    while a compile with resident weights runs."""
    plan = _PLAN.get()
    return config.rows if plan is None else plan.limit


def _resident_base(stage):
    plan = _PLAN.get()
    return None if plan is None else plan.bases.get(stage.layer_index)


class DimaBitwise(Route):
    name = "dima_bitwise"

    def maps(self, layer) -> bool:
        """Multi-bit multiply layers (the inception convolution, the MLP): the layers
        ``and_bitcount`` maps (binarized layers go to the binary-weight convolver,
        ``dima_binconv``)."""
        return layer.kind in COMPUTE_KINDS and not layer.is_adder

    def stage_scratch_rows(self, config, tiles: int, layer: int | None = None) -> tuple:
        """The weight rows of a stage of ``tiles`` tiles: rows 0 .. ``tiles*n - 1``; none for
        layer ``layer`` when its weights are resident (module docstring)."""
        plan = _PLAN.get()
        if plan is not None and layer in plan.bases:
            return ()
        return tuple(range(tiles * config.operand_bits))

    def scratch_rows(self, config) -> tuple:
        """The weight rows of a one-tile stage (a caller that does not know the tiles)."""
        return self.stage_scratch_rows(config, 1)

    def channel_setup(self, stage, wslot, config) -> list:
        """The output channel's weight planes into the weight rows: ``WRITE_ROW imm = BUFFER
        b = wslot(t, k) a = t*n + k`` for every tile t and plane k (``wslot`` gives the buffer
        slot, an int or a loop-relative operand of the channel loop)."""
        n = stage.n
        if _resident_base(stage) is not None:        # written once, by the load program
            return []
        if len(stage.scratch_rows) < stage.tiles * n:
            from sim.compile.compiler import CompileError
            raise CompileError(
                f"{stage.name}: route dima_bitwise needs {stage.tiles * n} weight rows for "
                f"{stage.tiles} tiles, but the stage reserved {len(stage.scratch_rows)} (a "
                f"standalone layer's pass wider than the mat is not built yet on this route; "
                f"list and_bitcount before dima_bitwise in routes)")
        return [op(Opcode.WRITE_ROW, imm=WriteSrc.BUFFER.value, b=wslot(t, k), a=t * n + k)
                for t in range(stage.tiles) for k in range(n)]

    def dot(self, stage, t, xrow, wslot, config) -> list:
        """``n^2`` AND2 of input plane row ``xrow(m)`` and weight row ``t*n + k`` (the weight
        rows :meth:`channel_setup` wrote; ``wslot`` is unused), or on a resident stage the
        row ``base + (t*n + k)*O + o`` (``o`` at the channel loop's level of ``wslot``)."""
        base = _resident_base(stage)
        if base is None:
            return plane_pair_dot(stage.n, Opcode.AND2, xrow,
                                  lambda k: Operand(t * stage.n + k))
        o = stage.out_channels

        def wrow(k):
            w = wslot(k)
            return Operand(base + (t * stage.n + k) * o, w.level, 1)
        return plane_pair_dot(stage.n, Opcode.AND2, xrow, wrow)


def _one_weight_set(stage) -> bool:
    """Whether every chunk of ``stage`` reads the weights of :func:`_weight_rows`: a compute
    layer (T*n planes per output channel) or a standalone pool (``sim.compile.layer_stages``:
    its passes, one output channel each, carry the same weights). Not an ``add``: its passes
    are one per channel, each with the channel's own two weights, which one resident set of
    ``T*n`` rows would give every channel as channel 0's."""
    return stage.kind != "add"


def _weight_rows(stage) -> int:
    return stage.tiles * stage.n * stage.out_channels


def _used_rows(stage) -> int:
    """The rows a stage's programs touch (from row 0): its lanes' rows, or its scratch and
    data rows."""
    if stage.dima is not None:
        return stage.dima.rows
    top = max((max(c.rows) + 1 for c in stage.chunks if c.rows), default=0)
    return max(top, len(stage.scratch_rows), stage.data_row0)


def _min_rows(stage) -> int:
    """The rows a resident stage needs for one chunk: a pool window of patches."""
    g = stage.group
    if stage.mode == "wide":
        return stage.tiles * stage.n * g
    return stage.n * (g // math.gcd(stage.subarrays, g))


def plan_residency(compiled) -> Residency | None:
    """The stages of ``compiled`` (a ``sim.compile.compiler.CompiledModel`` without residency) whose
    weights become resident (module docstring), or None when no subset fits or helps."""
    config = compiled.config
    rows = min(config.rows, 1 << config.isa_base_bits)
    cands = [st for st in compiled.stages if st.route == "dima_bitwise"
             and _weight_rows(st) <= MAX_LOOP_COUNT and _one_weight_set(st)]
    if not cands or not RESIDENT.get():
        return None
    best, best_key = None, (0, 0)
    pool = cands if len(cands) <= 12 else sorted(cands, key=_weight_rows)[:12]
    for r in range(1, len(pool) + 1):
        for sub in itertools.combinations(pool, r):
            chosen = {id(s) for s in sub}
            need = sum(_weight_rows(s) for s in sub)
            low = max([_used_rows(s) for s in compiled.stages if id(s) not in chosen]
                      + [_min_rows(s) for s in sub])
            if need + low > rows:
                continue
            saved = sum(_weight_rows(s) * len(s.chunks) for s in sub)
            key = (saved, -need)
            if key > best_key:
                best, best_key = sub, key
    if best is None:
        return None
    bases, row = {}, rows
    for s in best:
        row -= _weight_rows(s)
        bases[s.layer_index] = row
    return Residency(bases=bases, limit=row)


def _load_runs(compiled, plan: Residency) -> tuple:
    """The load programs of the resident stages: per stage (after its class gate, ``MOVE
    SUBSEL``, with seed 002's class split) ``LOOP T*n*O: WRITE_ROW imm = BUFFER b = slot a =
    row`` (slot and row both stride 1), ``HALT``."""
    from sim.compile.compiler import program_profile
    from sim.hw.core_model import PIPELINE_DRAIN
    from sim.compile.dima_map import class_gate, subsel_instr
    config = compiled.config
    runs = []
    for st in compiled.stages:
        base = plan.bases.get(st.layer_index)
        if base is None or st.route != "dima_bitwise":
            continue
        gate = class_gate(config, st, compiled.subarrays)    # class B's subarrays only
        instrs = ([] if gate is None else [subsel_instr(gate)]) + [
                  asm.loop(count=_weight_rows(st)),
                  op(Opcode.WRITE_ROW, imm=WriteSrc.BUFFER.value,
                     b=Operand(st.buffer_base, 0, 1), a=Operand(base, 0, 1)),
                  asm.endloop(), asm.halt()]
        words = tuple(asm.assemble(instrs, base_bits=config.isa_base_bits))
        cycles, ops = program_profile(words, config)
        runs.append(LoadRun(stage=st.name, program=words, cycles=cycles, micro_ops=ops,
                            max_cycles=cycles + PIPELINE_DRAIN + 64))
    return tuple(runs)


def with_resident_weights(compiled, recompile):
    """``compiled`` (``sim.compile.compiler.compile_model``'s result) with the weights of the
    bit-wise convolver's stages resident where the array has spare rows: ``recompile()`` (the
    same compile) runs again under the plan of :func:`plan_residency`, its ``load_programs``
    set; ``compiled`` itself when nothing becomes resident. Inside that second compile it
    returns its argument with the load programs."""
    plan = _PLAN.get()
    if plan is not None:
        compiled.load_programs = _load_runs(compiled, plan)
        return compiled
    if "dima_bitwise" not in {st.route for st in compiled.stages}:
        return compiled
    plan = plan_residency(compiled)
    if plan is None:
        return compiled
    token = _PLAN.set(plan)
    try:
        return recompile()
    finally:
        _PLAN.reset(token)


def load_profile(compiled) -> tuple[int, dict]:
    """Cycles and counters of a compiled model's load programs (once per model load)."""
    from rtl.isa import counter_names
    total = dict.fromkeys(counter_names(), 0)
    for run in getattr(compiled, "load_programs", ()):
        for k, v in run.micro_ops.items():
            total[k] += v
    return total["cycles"], total

register_route(DimaBitwise())
