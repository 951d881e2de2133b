"""The seed-000 full-adder-array route (``jeit_fa``): ``|x - w|`` in the abs-diff lanes,
the difference bits summed by the parallel full-adder array, nothing written back.

Seed 000 accumulates the L1 norm in "a scalable parallel full-adder array" of reconfigurable
full adders (sum and carry modes by resistance-state mapping, single-cycle carry-chain update).
Here (``rtl.fa_array``) each subarray has a bit-serial adder tree over its columns, a node
being a SUM cell and a CARRY cell on the same inputs, so that a node's sum bit goes up the
tree and its carry latch updates in the same cycle. Per tile dot (``n = operand_bits``,
``C`` columns per subarray, ``L = ceil(log2 C)``):

1. a SIGN pass, ``FS_STEP`` b = 0 .. n-1 (``first`` on b = 0), as ``abs_diff``'s;
2. a DIFF pass, ``FS_STEP`` b = 0 .. n-1 with ``imm`` bit 2 (add into the array; ``first``
   on b = 0 starts a new sum, bit 3 on b = n-1 starts the flush): each step's difference
   plane (the lanes' ``out`` after its S2) steps the array in its S3, bit b of each
   subarray's sum into its sum register;
3. ``L`` NOPs: the array flushes its carries on its own (bits n .. n+L-1 of the sum).

The REQUANT after the dot takes the subarrays' sums in place of the accumulators (until the
next reduce micro-op). Cycles per tile dot: 2n + L, no array write (``abs_diff``: 4n (+ 1 if n
is odd), n of them STT writes that stall a cycle each on ``jeit_stt``, and n reads back).

Zero skipping (``config.zero_skip``, ``docs/dataflows.rst``): as on ``abs_diff``, a ``MOVE
SKIPZ`` before the dot jumps over its 2n FS_STEPs when the tile's inputs are all zero, and the
REQUANT takes ``sum w`` from a buffer slot. The L flush NOPs stay after the skipped window
(``sim.compile.compiler._skipped``): a skipped dot costs 1 + L cycles instead of 2n + L.

Software pipelining (:meth:`JeitFa.pipeline`, on the compiler's loop of tile dots): the flush
needs no micro-op, and the REQUANT reads the sums in its S3, so the next tile's SIGN pass (which
neither steps the array nor is a reduce micro-op, ``rtl.core.Core._fa_array_s3``) runs while the
array flushes, before the REQUANT of the tile that is flushing: ``SIGN(0) ; LOOP count-1 {
DIFF(t) ; SIGN(t + 1) ; REQUANT(t) ... } ; the last iteration with the flush NOPs``, where the
SIGN after the last tile of an iteration is tile 0's of the next iteration (the loop's
relative operands one step on) and the last iteration is peeled out of the loop (its operands
made absolute). The REQUANT still issues L + 1 cycles after the last DIFF step (``max(0, L -
n)`` NOPs pad a SIGN pass shorter than the flush). Cycles per tile dot: 2n, the flush hidden,
except for the last tile of each loop run. A segmented chunk's partial group (its last, fewer
than K patches, written after the loop of full groups) is chained after the loop's peeled last
iteration (``tail``): its SIGN pass runs during that tile's flush, so the flush is hidden there
too and the loop run ends with the partial group's flush; a chunk of a partial group only has no
loop to chain to and keeps the plain dot. With zero skipping the SKIPZ jumps over the DIFF
pass only (n micro-ops; the SIGN pass of a tile ran before its SKIPZ and cannot be skipped
after the fact): a skipped tile costs 1 + n cycles (the next SIGN pass) instead of 1 + L.
"""

from __future__ import annotations

from golden.model import COMPUTE_KINDS
from rtl.fa_array import tree_depth
from rtl.isa import Instr, MoveOp, Opcode, Operand

from .abs_diff import AbsDiffLanes
from .base import Route, op, register_route

__all__ = ["JeitFa", "FaArrayLanes", "ACC", "LAST"]

#: FS_STEP ``imm`` bits of the route: add the difference plane into the array; last plane.
ACC, LAST = 4, 8


class FaArrayLanes(AbsDiffLanes):
    """The abs-diff lanes and the full-adder array (``rtl.fa_array``) of a mat.

    The abs-diff state is that of ``sim.routes.abs_diff.AbsDiffLanes`` (a core with the
    ``abs_diff`` route too runs both models' ``FS_STEP`` on the same inputs, which keeps them
    equal). The array is modelled by its sums, not node by node: a bit-serial adder tree's
    output bit t is bit t of the sum of its inputs so far (a node's carry latch has weight
    ``2**(t+1)`` after step t), so subarray k's register after ``steps`` steps is ``S_k mod
    2**min(steps, acc_bits)``, ``S_k`` the sum of ``popcount_k(plane) << position`` over the
    input steps since the last ``first``. Steps land at the end of their S3 (issue c + 2); the
    flush steps of cycles after the last plane are applied when an event (a step, a read)
    comes at a later cycle. ``golden.pim.l1_fa_tree`` computes the tree node by node.
    """

    def __init__(self, model):
        super().__init__(model._ones)
        self._model = model
        k, c = model.subarrays, model.subarray_columns
        self._masks = [((1 << c) - 1) << (g * c) for g in range(k)]
        self._depth = tree_depth(c)
        self._acc_bits = model.config.acc_bits
        self.sums = [0] * k                 # S_k (unbounded)
        self.steps = 0                      # steps since the last first (position of the next)
        self.flush_from, self.flush_left = 0, 0
        self.ops = {Opcode.FS_STEP.value: self.fs_acc_step}

    def start(self) -> None:
        super().start()
        # the core is not idle (start is ignored) until a flush has ended: apply it whole
        self.steps += self.flush_left
        self.flush_left = 0

    def _flush_until(self, cycle: int) -> None:
        """Apply the flush steps of cycles before ``cycle``."""
        k = min(max(cycle - self.flush_from, 0), self.flush_left)
        self.steps += k
        self.flush_from += k
        self.flush_left -= k

    def fs_acc_step(self, imm, x, w, c):
        """``FS_STEP`` (S2), and with ``imm`` bits 1 and 2 the array's step in its S3."""
        self.fs_step(imm, x, w, c)
        if imm & 2 and imm & ACC:
            s3 = c + 2
            self._flush_until(s3)
            self.flush_left = 0
            d = self.out_new
            if imm & 1:
                self.sums = [(d & m).bit_count() for m in self._masks]
                self.steps = 1
            else:
                t = self.steps
                self.sums = [s + ((d & m).bit_count() << t)
                             for s, m in zip(self.sums, self._masks, strict=True)]
                self.steps = t + 1
            if imm & LAST:
                self.flush_from, self.flush_left = s3 + 1, self._depth
            self._model._lane_acc = self
        return None

    def sums_at(self, cycle: int) -> list:
        """The subarrays' sum registers as an S3 in ``cycle`` reads them."""
        self._flush_until(cycle)
        keep = (1 << min(self.steps, self._acc_bits)) - 1
        return [s & keep for s in self.sums]


class JeitFa(Route):
    name = "jeit_fa"

    def maps(self, layer) -> bool:
        return layer.kind in COMPUTE_KINDS and layer.is_adder

    def dot(self, stage, t, xrow, wslot, config) -> list:
        n = stage.n
        body = [op(Opcode.FS_STEP, imm=1 if b == 0 else 0, a=xrow(b), b=wslot(b))
                for b in range(n)]                                  # SIGN pass, LSB first
        for b in range(n):                                          # DIFF pass into the array
            imm = 2 | ACC | (1 if b == 0 else 0) | (LAST if b == n - 1 else 0)
            body.append(op(Opcode.FS_STEP, imm=imm, a=xrow(b), b=wslot(b)))
        body += [Instr(Opcode.NOP)] * tree_depth(config.columns)    # the array's flush
        return body

    def lanes(self, model) -> FaArrayLanes:
        return FaArrayLanes(model)

    def pipeline(self, loop: list, stage, config, tail: list = ()) -> list:
        """``loop`` = ``LOOP count { tile dots with their REQUANTs } ENDLOOP`` (the compiler's
        compute loop: per tile ``[MOVE SKIPZ]``, this route's dot, one or more REQUANTs) as
        the software-pipelined program of the module docstring, with the same results; the
        loop's level-0 operands step by their stride per iteration, level 1 is the enclosing
        loop. ``tail``: tile dots with their REQUANTs that follow the loop, written outside it
        (a segmented chunk's partial group): chained after the peeled last iteration, the
        first one's SIGN pass during the flush of the loop's last tile."""
        n, depth = stage.n, tree_depth(config.columns)
        if not (loop and loop[0].op is Opcode.LOOP and loop[-1].op is Opcode.ENDLOOP):
            raise ValueError("jeit_fa.pipeline: not a LOOP ... ENDLOOP")
        count = loop[0].count
        tiles = _tile_dots(loop[1:-1], n, depth)
        pad = [Instr(Opcode.NOP)] * max(0, depth - n)
        skip_cycles = n * config.op_cycles.get(Opcode.FS_STEP, 1)

        def chain(tiles: list, after) -> list:
            """The tiles, each one's DIFF pass followed by the next one's SIGN pass (``after``
            for the last; None: its flush NOPs) and then its REQUANTs."""
            out = []
            for t, (skipz, _, diff, flush, reqs) in enumerate(tiles):
                if skipz is not None:       # the DIFF pass only: the SIGN pass ran already
                    out.append(op(Opcode.MOVE, imm=MoveOp.SKIPZ.value, a=skipz.a, b=n,
                                  d=skip_cycles))
                out += diff
                nxt = tiles[t + 1][1] if t + 1 < len(tiles) else after
                out += flush if nxt is None else nxt + pad
                out += reqs
            return out

        def at(index) -> list:
            """The tiles of iteration ``index``, written outside the loop."""
            def f(o):
                return _outside(o, index)
            return [(None if skipz is None else _shift(skipz, f),
                     *([_shift(x, f) for x in part] for part in parts))
                    for skipz, *parts in tiles]

        prog = at(0)[0][1]
        if count > 1:                       # the SIGN after the last tile: tile 0's, one on
            prog += ([Instr(Opcode.LOOP, count=count - 1)]
                     + chain(tiles, [_shift(x, _next) for x in tiles[0][1]])
                     + [Instr(Opcode.ENDLOOP)])
        return prog + chain(at(count - 1) + _tile_dots(list(tail), n, depth), None)


def _tile_dots(body: list, n: int, depth: int) -> list:
    """``body`` (per tile ``[MOVE SKIPZ]``, the route's dot, its REQUANTs) as a list of
    ``(skipz or None, SIGN pass, DIFF pass, flush NOPs, REQUANTs)``."""
    tiles, i = [], 0
    while i < len(body):
        skipz = None
        if body[i].op is Opcode.MOVE and body[i].imm == MoveOp.SKIPZ.value:
            skipz, i = body[i], i + 1
        dot = body[i:i + 2 * n + depth]
        reqs = []
        j = i + 2 * n + depth
        while j < len(body) and body[j].op is Opcode.REQUANT:
            reqs.append(body[j])
            j += 1
        if (len(dot) != 2 * n + depth or not reqs
                or any(x.op is not Opcode.FS_STEP for x in dot[:2 * n])
                or any(x.op is not Opcode.NOP for x in dot[2 * n:])
                or any(x.imm & 2 for x in dot[:n])
                or not all(x.imm & ACC for x in dot[n:2 * n])):
            raise ValueError(f"jeit_fa.pipeline: body entry {i} is not a tile dot of "
                             f"{n} SIGN, {n} DIFF steps, {depth} NOPs and its REQUANTs")
        tiles.append((skipz, dot[:n], dot[n:2 * n], dot[2 * n:], reqs))
        i = j
    return tiles


def _next(o: Operand) -> Operand:
    """``o`` one iteration of the innermost loop on."""
    return Operand(o.base + o.stride, 0, o.stride) if o.stride and o.level == 0 else o


def _outside(o: Operand, index: int) -> Operand:
    """``o`` of iteration ``index`` of the innermost loop, written outside that loop."""
    if not o.stride:
        return o
    if o.level == 0:
        return Operand(o.base + o.stride * index, 0, 0)
    return Operand(o.base, o.level - 1, o.stride)


def _shift(x: Instr, f) -> Instr:
    return Instr(x.op, imm=x.imm, a=f(x.a), b=f(x.b), d=f(x.d), count=x.count)


register_route(JeitFa())
