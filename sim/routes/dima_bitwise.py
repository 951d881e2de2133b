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
"""

from __future__ import annotations

from golden.model import COMPUTE_KINDS
from rtl.isa import Opcode, Operand, WriteSrc

from .and_bitcount import pair_order, plane_pair_dot
from .base import Route, op, register_route

__all__ = ["DimaBitwise", "pair_order"]


class DimaBitwise(Route):
    name = "dima_bitwise"

    def maps(self, layer) -> bool:
        """Multi-bit multiply layers (the inception convolution, the MLP): the layers
        ``and_bitcount`` maps (binarized layers go to the binary-weight convolver,
        ``dima_binconv``)."""
        return layer.kind in COMPUTE_KINDS and not layer.is_adder

    def stage_scratch_rows(self, config, tiles: int) -> tuple:
        """The weight rows of a stage of ``tiles`` tiles: rows 0 .. ``tiles*n - 1``."""
        return tuple(range(tiles * config.operand_bits))

    def scratch_rows(self, config) -> tuple:
        """The weight rows of a one-tile stage (a caller that does not know the tiles)."""
        return self.stage_scratch_rows(config, 1)

    def channel_setup(self, stage, wslot, config) -> list:
        """The output channel's weight planes into the weight rows: ``WRITE_ROW imm = BUFFER
        b = wslot(t, k) a = t*n + k`` for every tile t and plane k (``wslot`` gives the buffer
        slot, an int or a loop-relative operand of the channel loop)."""
        n = stage.n
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
        rows :meth:`channel_setup` wrote; ``wslot`` is unused)."""
        return plane_pair_dot(stage.n, Opcode.AND2, xrow, lambda k: Operand(t * stage.n + k))

register_route(DimaBitwise())
