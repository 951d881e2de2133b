"""The AND + bit-count route (``and_bitcount``, seed 001 eq. 1): multiply layers.

``sum_k x_k w_k = sum_{m,n} 2^(m+n) s_n popcount(x^m AND w^n)`` over the bit-planes m of the
(unsigned) inputs and n of the (two's complement) weights, ``s_n = -1`` on the weights' sign
plane. Each plane pair is one ``AND_FU`` (the weight plane from the buffer on the FU line,
ANDed in the sense amplifiers with the input plane's row), reduced by the column popcount. The
pairs go in order of m + n descending (Horner: the first pair of each m + n group shifts the
accumulator). The accumulator holds the *negated* dot product: a pair on the sign plane is
added, every other pair subtracted, so the very first pair, (n-1, n-1), is a plain load
(``L1_FIRST``) and no clear cycle is needed.

Cycles per tile dot: n^2 (64 at 8 bits); array writes: none. A layer of seed 001's <W:I>
widths (``sim.compile.bit_widths``): the W * I pairs of the I top input planes (rows of planes
``8 - I ..  7``) and the W low weight planes, plane W - 1 the sign plane (:func:`bits_dot`).
"""

from __future__ import annotations

from golden.model import COMPUTE_KINDS
from rtl.column_reduce import ReduceOp
from rtl.isa import Opcode

from .base import Route, op, register_route

__all__ = ["AndBitcount", "bits_dot"]


class AndBitcount(Route):
    name = "and_bitcount"

    def maps(self, layer) -> bool:
        return layer.kind in COMPUTE_KINDS and not layer.is_adder

    def dot(self, stage, t, xrow, wslot, config) -> list:
        w_bits, in_bits = getattr(stage, "w_bits", stage.n), getattr(stage, "in_bits", stage.n)
        if (w_bits, in_bits) != (stage.n, stage.n):
            return bits_dot(stage.n, w_bits, in_bits, Opcode.AND_FU, xrow, wslot)
        return plane_pair_dot(stage.n, Opcode.AND_FU, xrow, wslot)


def bits_dot(n: int, w_bits: int, in_bits: int, opcode: Opcode, xrow, b) -> list:
    """The ``w_bits * in_bits`` micro-ops of a <W:I> dot (seed 001 eq. 1) on n-plane operands:
    input plane m of the I-bit input ``x >> (n - I)`` is row ``xrow(n - in_bits + m)``, weight
    plane k < W is ``b(k)``, k = W - 1 the sign plane; the order and reduce ops as
    :func:`plane_pair_dot`."""
    body, prev = [], None
    for m, k in sorted(((m, k) for m in range(in_bits) for k in range(w_bits)),
                       key=lambda mk: (-(mk[0] + mk[1]), -mk[1])):
        subtract = k != w_bits - 1     # accumulating -dot: the sign plane adds
        if prev is None:
            imm = ReduceOp.L1_FIRST
        elif m + k != prev:
            imm = ReduceOp.SHIFT_SUB if subtract else ReduceOp.SHIFT_ADD
        else:
            imm = ReduceOp.SUB if subtract else ReduceOp.ADD
        prev = m + k
        body.append(op(opcode, imm=imm.value, a=xrow(n - in_bits + m), b=b(k)))
    return body


def pair_order(n: int) -> list:
    """The ``(m, k)`` plane pairs (m of the input, k of the weight) in issue order: m + k
    descending, then k descending, so that each weight of 2**(m + k) is reached by shifting."""
    return sorted(((m, k) for m in range(n) for k in range(n)),
                  key=lambda mk: (-(mk[0] + mk[1]), -mk[1]))


def plane_pair_dot(n: int, opcode: Opcode, xrow, b) -> list:
    """The ``n^2`` micro-ops of a bit-plane dot (seed 001 eq. 1): ``opcode`` (``AND_FU`` with
    weight plane ``b(k)`` from the buffer, or ``AND2`` with weight row ``b(k)``) of input plane
    row ``xrow(m)``, reduced MSB pair first; the sign planes (k = n - 1 of the two's-complement
    weight) subtract, since the column reduce accumulates -dot."""
    return bits_dot(n, n, n, opcode, xrow, b)


register_route(AndBitcount())
