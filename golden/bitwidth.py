"""Weight and input bit widths of multiply layers (seed 001's <W:I> configurations).

Seed 001 (sec. 4.1, eq. 1) computes a multiply convolution bit-serially: with the input
``I = sum_n c_n(I) 2^n`` (N bits) and the weight ``W = sum_m c_m(W) 2^m`` (M bits)::

    I . W = sum_{n<N} sum_{m<M} 2^(n+m) bitcount(AND(c_n(I), c_m(W)))        (eq. 1)

so a dot product costs ``N * M`` AND + bit-count passes, and its evaluation (Fig. 12) sweeps
the precision ``<W:I>``. A model file (format 4, :mod:`golden.model`) gives a ``mul_conv2d`` or
``mul_linear`` layer its own widths:

* ``w_bits`` W in [1, 8]: the layer's int8 weights are W-bit two's complement numbers, in
  ``[-2**(W-1), 2**(W-1) - 1]`` (checked on load); plane W-1 is the sign plane, of weight
  ``-2**(W-1)`` (W = 1: the weights are 0 and -1). The seed's eq. 1 writes unsigned weights;
  ASSUMPTION: signed weights as the rest of the project's multiply layers (two's complement,
  the sign plane subtracted), which eq. 1 covers with ``s_m = -1`` on plane M-1.
* ``in_bits`` I in [1, 8]: the layer reads the I most significant bits of its 8-bit input
  codes, ``x_I = x >> (8 - I)`` (floor), so that the activation of real value ``s * x`` becomes
  ``(s * 2**(8-I)) * x_I``. ASSUMPTION: the I-bit activation is the top of the 8-bit code the
  previous layer's requantization writes (and the top of the 8-bit pixel for the first layer):
  the hardware then stores and gathers the usual 8-bit codes and its dot product takes only
  the I top bit-planes, with no change to the post-processing; the seed quantizes a layer's
  output to k bits by eq. 2 directly, which is the same staircase up to the rounding of the
  lowest 8 - I bits (format 5 has eq. 2 itself, below).

Absent arrays mean 8 (a file of format 1 to 3 keeps its meaning).

Seed 001's eq. 2 (format 5): a ``requant`` multiply layer with ``out_bits`` k writes k-bit
codes by the seed's quantizer::

    Q_o = round((Q_i - Q_min) * (2**k - 1) / (Q_max - Q_min))                   (eq. 2)

with ``Q_min`` and ``Q_max`` "the minimum and maximum values of the layer in the training
phase". Its integer form (:func:`eq2_requantize`) is the project's requantization with the
saturation at ``2**k - 1`` instead of 255::

    Q_o = min(max((acc * rq_mult + rq_bias + 2**(rq_shift-1)) >> rq_shift, 0), 2**k - 1)

where ``rq_mult / 2**rq_shift`` holds ``(2**k - 1) / (Q_max - Q_min)`` times the batch norm's
scale (eq. 3, folded as in every ``requant`` layer) times the accumulator's scale. The seed's
arithmetic and where it is silent:

* scale: ``(2**k - 1) / (Q_max - Q_min)``, precomputed ("could be calculated in advance");
  ``Q_max`` is the layer's maximum in training (:func:`eq2_scale`; ``sim.flows.train`` keeps a
  moving average of the batch maxima, as batch norm keeps its statistics: ASSUMPTION, the seed
  does not say how the maximum is tracked).
* ``Q_min = 0``. ASSUMPTION: the seed quantizes the layer's values and then applies batch norm
  and ReLU; an integer pipeline folds batch norm into the requantization, so the quantized
  value is the batch-normalized, rectified one, whose minimum is 0 (the ReLU); code 0 is then
  the real 0, so zero padding stays exact.
* rounding: half up (``+ 2**(shift-1)`` before the arithmetic shift). ASSUMPTION: the seed
  writes ``round`` without a tie rule; half up is the requantization's (and the in-array
  adder's) and differs from half-to-even only on exact ties.
* clipping: to ``[0, 2**k - 1]``. ASSUMPTION: the seed is silent on values beyond the training
  range; a k-bit code has no other value.

The layer reading those codes (``in_quant`` = ``"eq2"``, with ``in_bits`` = k) multiplies them
as they are (:func:`layer_input`), with no ``>> (8 - I)``; ``in_quant`` ``"top"`` (or absent)
keeps the top-bits reading above, which the bundled <W:I> models were trained with.

The integer accumulator is ``sum x_I * w``, exact; :func:`bitserial_dot` is eq. 1 term by
term, the reference that the hardware's plane-pair programs (``sim.routes.and_bitcount``)
follow.
"""

from __future__ import annotations

import numpy as np

from . import layers as L

__all__ = ["BITS_MIN", "BITS_MAX", "BIT_KINDS", "IN_QUANTS", "layer_bits", "check_bits",
           "input_planes", "weight_range", "check_weight_bits", "quantize_weight",
           "bitserial_dot", "eq2_requantize", "eq2_scale", "eq2_reference", "layer_input"]

#: The narrowest and widest operand of a multiply layer (seed 001's <W:I> from 1 to 8 bits).
BITS_MIN, BITS_MAX = 1, 8
#: The layer kinds that carry ``w_bits`` / ``in_bits`` (format-1 multiply kinds).
BIT_KINDS = ("mul_conv2d", "mul_linear")
#: How a layer reads its input codes (format 5 ``in_quant``): the top ``in_bits`` of 8-bit
#: codes, or the ``in_bits``-bit codes of eq. 2 as they are.
IN_QUANTS = ("top", "eq2")


def layer_bits(params: dict) -> tuple:
    """``(w_bits, in_bits)`` of a layer's ``params`` (8 for an absent array)."""
    return int(params.get("w_bits", BITS_MAX)), int(params.get("in_bits", BITS_MAX))


def check_bits(name: str, value) -> int:
    """``value`` as an int in [BITS_MIN, BITS_MAX]; a ValueError naming ``name`` otherwise."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer in [{BITS_MIN}, {BITS_MAX}], not {value!r}")
    if not BITS_MIN <= int(value) <= BITS_MAX:
        raise ValueError(f"{name} is {int(value)}; allowed: {BITS_MIN} to {BITS_MAX} bits")
    return int(value)


def weight_range(w_bits: int) -> tuple:
    """The W-bit two's complement range ``(-2**(W-1), 2**(W-1) - 1)``."""
    return -(1 << (w_bits - 1)), (1 << (w_bits - 1)) - 1


def check_weight_bits(name: str, weight: np.ndarray, w_bits: int) -> None:
    """Refuse a weight outside ``w_bits``' range: a ValueError naming ``name``, the first bad
    element, its value and the range."""
    lo, hi = weight_range(w_bits)
    w = np.asarray(weight)
    bad = np.argwhere((w < lo) | (w > hi))
    if bad.size:
        idx = tuple(int(v) for v in bad[0])
        raise ValueError(f"{name} must hold {w_bits}-bit two's complement weights in [{lo}, "
                         f"{hi}], but element {list(idx)} is {int(w[idx])} ({len(bad)} of "
                         f"{w.size} outside)")


def input_planes(x: np.ndarray, in_bits: int) -> np.ndarray:
    """The I-bit input codes ``x >> (8 - I)`` of uint8 codes ``x`` (uint8)."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"x must be uint8 activation codes, not {x.dtype}")
    return x >> np.uint8(BITS_MAX - in_bits) if in_bits < BITS_MAX else x


def quantize_weight(weight: np.ndarray, w_bits: int, *, per_channel: bool = True):
    """Symmetric W-bit quantization of float weights: ``(w_int int8, scale float64 [O])`` with
    ``w_int = clip(rint(w / scale), -(2**(W-1) - 1), 2**(W-1) - 1)`` and ``scale = max|w| /
    (2**(W-1) - 1)`` per output channel (``per_channel``) or over the tensor. Needs W >= 2 (a
    1-bit two's complement weight has no positive value)."""
    if not 2 <= w_bits <= BITS_MAX:
        raise ValueError(f"w_bits is {w_bits}; symmetric quantization needs 2 to {BITS_MAX}")
    w = np.asarray(weight, dtype=np.float64)
    o = w.shape[0]
    top = (1 << (w_bits - 1)) - 1
    if per_channel:
        s = np.maximum(np.abs(w.reshape(o, -1)).max(axis=1), 1e-30) / top
    else:
        s = np.full(o, max(float(np.abs(w).max()), 1e-30) / top)
    shape = (-1,) + (1,) * (w.ndim - 1)
    w_int = np.clip(np.rint(w / s.reshape(shape)), -top, top).astype(np.int8)
    return w_int, s


def bitserial_dot(x: np.ndarray, w: np.ndarray, w_bits: int, in_bits: int):
    """Eq. 1 of seed 001, pass by pass: ``(dots int64 [R, O], passes)``.

    ``x`` uint8 [R, K] I-bit codes (< 2**in_bits), ``w`` int8 [O, K] W-bit weights. Each of the
    ``w_bits * in_bits`` passes ANDs input plane n with weight plane m and bit-counts every
    (row, channel) pair; the pass is weighted ``2**(n+m)``, negated on the sign plane m = W-1.
    """
    x = np.asarray(x)
    w = np.asarray(w)
    if x.dtype != np.uint8 or w.dtype != np.int8 or x.ndim != 2 or w.ndim != 2 \
            or x.shape[1] != w.shape[1]:
        raise ValueError("x must be uint8 [R, K] and w int8 [O, K]")
    if np.any(x >> in_bits if in_bits < 8 else 0):
        raise ValueError(f"x holds codes of more than in_bits={in_bits} bits")
    check_weight_bits("w", w, w_bits)
    wu = w.astype(np.int64) & ((1 << w_bits) - 1)            # W-bit two's complement pattern
    xi = x.astype(np.int64)
    acc = np.zeros((x.shape[0], w.shape[0]), dtype=np.int64)
    passes = 0
    for n in range(in_bits):
        xp = (xi >> n) & 1                                    # input plane n: [R, K]
        for m in range(w_bits):
            wp = (wu >> m) & 1                                # weight plane m: [O, K]
            count = xp @ wp.T                                 # bitcount(AND(.)) per pair
            sign = -1 if m == w_bits - 1 else 1
            acc += sign * (count << (n + m))
            passes += 1
    return acc, passes


def eq2_requantize(acc: np.ndarray, mult: np.ndarray, bias: np.ndarray, shift: np.ndarray,
                   out_bits: int) -> np.ndarray:
    """Seed 001's eq. 2 to ``out_bits`` k bits in integers (module docstring): the requant
    ``golden.layers.requantize`` saturated at ``2**k - 1`` (uint8 codes in [0, 2**k - 1])."""
    k = check_bits("out_bits", out_bits)
    return np.minimum(L.requantize(acc, mult, bias, shift), np.uint8((1 << k) - 1))


def eq2_scale(q_max: float, out_bits: int, q_min: float = 0.0) -> float:
    """The real value of one eq.-2 code: ``(Q_max - Q_min) / (2**k - 1)`` (the inverse of
    eq. 2's precomputed factor); ``Q_max <= Q_min`` (an all-zero layer) gives ``1 / (2**k - 1)``,
    which any positive scale represents exactly."""
    k = check_bits("out_bits", out_bits)
    span = float(q_max) - float(q_min)
    return (span if span > 0 else 1.0) / ((1 << k) - 1)


def eq2_reference(q: np.ndarray, q_min: float, q_max: float, out_bits: int) -> np.ndarray:
    """Eq. 2 as the seed writes it, in float64 (round half up, clipped to [0, 2**k - 1]): the
    independent reference of :func:`eq2_requantize` in the tests."""
    k = check_bits("out_bits", out_bits)
    z = (np.asarray(q, dtype=np.float64) - q_min) * ((1 << k) - 1) / (q_max - q_min)
    return np.clip(np.floor(z + 0.5), 0, (1 << k) - 1).astype(np.int64)


def layer_input(x: np.ndarray, params: dict) -> np.ndarray:
    """The codes a multiply layer with ``params`` multiplies: ``x >> (8 - I)``
    (:func:`input_planes`; ``in_quant`` ``"top"`` or absent), or ``x`` itself when
    ``in_quant`` is ``"eq2"`` (the previous layer's I-bit eq.-2 codes; a code of more than I
    bits is a ValueError)."""
    in_bits = int(params.get("in_bits", BITS_MAX))
    if params.get("in_quant", "top") != "eq2":
        return input_planes(x, in_bits)
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise TypeError(f"x must be uint8 activation codes, not {x.dtype}")
    if x.size and int(x.max()) >> in_bits:
        raise ValueError(f"the input holds code {int(x.max())}, beyond the in_bits={in_bits}-bit "
                         f"eq. 2 codes this layer reads")
    return x
