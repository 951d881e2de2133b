"""Integer AdderNet layers: the bit-exact statement of what the accelerator computes.

Every function takes and returns numpy integer arrays and states its arithmetic exactly: no
floats, no implicit rounding. Activations are unsigned 8-bit (``uint8``); adder-layer weights are
unsigned 8-bit (they share the activations' scale, see :mod:`golden.model`); multiply
layer weights are signed 8-bit (``int8``). Accumulators are signed integers of at most
:data:`ACC_BITS` bits: each layer derives the largest magnitude its accumulator can reach from its
shape and asserts that it fits *before* computing, so an overflow is a refused layer, never a
wrapped result.

Tensor layout is NCHW for feature maps and OCKK for convolution weights, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

#: Width of the signed accumulator of a convolution or linear layer (hardware register width).
ACC_BITS = 32
#: Width of the signed requantization multiplier.
RQ_MULT_BITS = 16
#: Width of the signed requantization datapath: ``acc * mult + bias + round`` must fit.
RQ_BITS = 48
#: Activations are unsigned integers of this width.
ACT_BITS = 8
ACT_MAX = (1 << ACT_BITS) - 1

__all__ = [
    "ACC_BITS", "ACT_BITS", "ACT_MAX", "RQ_BITS", "RQ_MULT_BITS",
    "adder_conv2d", "mul_conv2d", "adder_linear", "mul_linear",
    "requantize", "relu", "max_pool2d", "avg_pool2d", "add_bias",
    "conv_acc_bound", "check_requant_bound", "conv_output_size",
]


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def _check_int_array(name: str, a, dtypes: tuple) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, not {type(a).__name__}")
    if a.dtype not in dtypes:
        allowed = " or ".join(np.dtype(d).name for d in dtypes)
        raise TypeError(f"{name} must have dtype {allowed}, not {a.dtype}")
    return a


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution or pooling window along one axis."""
    _require(stride >= 1, f"stride must be >= 1, not {stride}")
    _require(padding >= 0, f"padding must be >= 0, not {padding}")
    out = (size + 2 * padding - kernel) // stride + 1
    _require(out >= 1, f"kernel {kernel} with padding {padding} does not fit an input of {size}")
    return out


def conv_acc_bound(kind: str, fan_in: int) -> int:
    """The largest magnitude the accumulator of one output can reach.

    ``fan_in`` is the number of terms summed (C*kh*kw for a convolution, I for a linear layer).
    An adder term ``|x - w|`` with x, w in [0, 255] is at most 255; a multiply term x * w with x in
    [0, 255] and w in [-128, 127] is at most 255 * 128 in magnitude.
    """
    if kind == "adder":
        return fan_in * ACT_MAX
    if kind == "mul":
        return fan_in * ACT_MAX * 128
    raise ValueError(f"kind must be 'adder' or 'mul', not {kind!r}")


def _assert_acc_fits(kind: str, fan_in: int) -> None:
    bound = conv_acc_bound(kind, fan_in)
    limit = (1 << (ACC_BITS - 1)) - 1
    _require(bound <= limit,
             f"a {kind} layer with fan-in {fan_in} can reach {bound}, which overflows the "
             f"{ACC_BITS}-bit accumulator (at most {limit})")


def _im2col(x: np.ndarray, kh: int, kw: int, stride: int, padding: int):
    """[N, C, H, W] -> ([N, Ho*Wo, C*kh*kw], Ho, Wo), zero padding (0 is the real value 0)."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]                       # N, C, Ho, Wo, kh, kw
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho * wo, c * kh * kw), ho, wo


def _check_conv(x, w, w_dtype, stride, padding):
    _check_int_array("x", x, (np.uint8,))
    _check_int_array("weight", w, (w_dtype,))
    _require(x.ndim == 4, f"x must be 4-D [N, C, H, W], not shape {x.shape}")
    _require(w.ndim == 4, f"weight must be 4-D [O, C, kh, kw], not shape {w.shape}")
    _require(x.shape[1] == w.shape[1],
             f"x has {x.shape[1]} channels but weight expects {w.shape[1]}")
    for name, v in (("stride", stride), ("padding", padding)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, not {v!r}")
    conv_output_size(x.shape[2], w.shape[2], stride, padding)
    conv_output_size(x.shape[3], w.shape[3], stride, padding)


# Rows of the im2col matrix processed at once (bounds the temporaries to a few tens of MiB).
_CHUNK_ROWS = 1 << 16


def adder_conv2d(x: np.ndarray, weight: np.ndarray, *, stride: int = 1,
                 padding: int = 0) -> np.ndarray:
    """Adder convolution: ``Y[n,o,h,w] = -sum_{c,i,j} |X[n,c,h*s+i-p,w*s+j-p] - W[o,c,i,j]|``.

    Parameters
    ----------
    x : uint8 [N, C, H, W]
    weight : uint8 [O, C, kh, kw]
    stride, padding : int
        Padding inserts zeros, the real value 0, so a padded term contributes ``|0 - w| = w``.

    Returns
    -------
    int64 [N, O, Ho, Wo], values in [-C*kh*kw*255, 0].
    """
    _check_conv(x, weight, np.uint8, stride, padding)
    o, c, kh, kw = weight.shape
    _assert_acc_fits("adder", c * kh * kw)
    cols, ho, wo = _im2col(x, kh, kw, stride, padding)      # N, L, K
    n, L, K = cols.shape
    w2 = weight.reshape(o, K).astype(np.int16)
    flat = cols.reshape(n * L, K)
    out = np.empty((n * L, o), dtype=np.int64)
    # One kernel tap at a time over a [O, rows] block: contiguous, and no [rows, O, K] temporary.
    # int32 partial sums are exact: the bound asserted above is below 2**31.
    for s in range(0, n * L, _CHUNK_ROWS):
        blk = np.ascontiguousarray(flat[s:s + _CHUNK_ROWS].T).astype(np.int16)   # K, rows
        acc = np.zeros((o, blk.shape[1]), dtype=np.int32)
        for k in range(K):
            acc += np.abs(blk[k][None, :] - w2[:, k][:, None])
        out[s:s + _CHUNK_ROWS] = acc.T
    return -out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def mul_conv2d(x: np.ndarray, weight: np.ndarray, *, stride: int = 1,
               padding: int = 0) -> np.ndarray:
    """Multiply convolution: ``Y[n,o,h,w] = sum_{c,i,j} X[n,c,...] * W[o,c,i,j]``.

    Parameters
    ----------
    x : uint8 [N, C, H, W]
    weight : int8 [O, C, kh, kw]

    Returns
    -------
    int64 [N, O, Ho, Wo]
    """
    _check_conv(x, weight, np.int8, stride, padding)
    o, c, kh, kw = weight.shape
    _assert_acc_fits("mul", c * kh * kw)
    cols, ho, wo = _im2col(x, kh, kw, stride, padding)
    n, L, K = cols.shape
    # Exact in int64: every product and partial sum is below 2**31 (asserted above).
    out = cols.reshape(n * L, K).astype(np.int64) @ weight.reshape(o, K).astype(np.int64).T
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def _check_linear(x, w, w_dtype):
    _check_int_array("x", x, (np.uint8,))
    _check_int_array("weight", w, (w_dtype,))
    _require(x.ndim == 2, f"x must be 2-D [N, I], not shape {x.shape}")
    _require(w.ndim == 2, f"weight must be 2-D [O, I], not shape {w.shape}")
    _require(x.shape[1] == w.shape[1],
             f"x has {x.shape[1]} features but weight expects {w.shape[1]}")


def adder_linear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Adder fully-connected layer: ``Y[n,o] = -sum_i |X[n,i] - W[o,i]|``; uint8 x, uint8 weight."""
    _check_linear(x, weight, np.uint8)
    _assert_acc_fits("adder", weight.shape[1])
    y = adder_conv2d(x[:, :, None, None], weight[:, :, None, None])
    return y[:, :, 0, 0]


def mul_linear(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Multiply fully-connected layer: ``Y[n,o] = sum_i X[n,i] * W[o,i]``; uint8 x, int8 weight."""
    _check_linear(x, weight, np.int8)
    _assert_acc_fits("mul", weight.shape[1])
    return x.astype(np.int64) @ weight.astype(np.int64).T


def add_bias(acc: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Logits of the last layer: ``acc + bias[o]`` on axis 1, asserted to fit in ACC_BITS."""
    _check_int_array("bias", bias, (np.int32,))
    _require(bias.ndim == 1 and bias.shape[0] == acc.shape[1],
             f"bias must have shape [{acc.shape[1]}], not {bias.shape}")
    shape = (1, -1) + (1,) * (acc.ndim - 2)
    y = acc.astype(np.int64) + bias.astype(np.int64).reshape(shape)
    lo, hi = -(1 << (ACC_BITS - 1)), (1 << (ACC_BITS - 1)) - 1
    _require(bool(((y >= lo) & (y <= hi)).all()), f"logits overflow {ACC_BITS} bits")
    return y


def check_requant_bound(acc_bound: int, mult: np.ndarray, bias: np.ndarray,
                        shift: np.ndarray) -> None:
    """Assert that ``|acc * mult| + |bias| + 2**(shift-1)`` fits the RQ_BITS-bit datapath.

    Raises ValueError naming the first channel that can overflow, and the parameter ranges.
    """
    mult = np.asarray(mult, dtype=np.int64)
    bias = np.asarray(bias, dtype=np.int64)
    shift = np.asarray(shift, dtype=np.int64)
    mlim = 1 << (RQ_MULT_BITS - 1)
    for ch in range(mult.shape[0]):
        m, b, s = int(mult[ch]), int(bias[ch]), int(shift[ch])
        _require(-mlim <= m < mlim,
                 f"requant multiplier of channel {ch} is {m}, outside the signed "
                 f"{RQ_MULT_BITS}-bit range [{-mlim}, {mlim - 1}]")
        _require(0 <= s < RQ_BITS - 1,
                 f"requant shift of channel {ch} is {s}, outside [0, {RQ_BITS - 2}]")
        worst = acc_bound * abs(m) + abs(b) + ((1 << (s - 1)) if s else 0)
        _require(worst < (1 << (RQ_BITS - 1)),
                 f"requant of channel {ch} (mult {m}, bias {b}, shift {s}) can reach {worst}, "
                 f"which overflows the {RQ_BITS}-bit requant datapath")


def requantize(acc: np.ndarray, mult: np.ndarray, bias: np.ndarray,
               shift: np.ndarray) -> np.ndarray:
    """Per-channel requantization with ReLU and 8-bit saturation (BN folded in).

    For channel ``o`` (axis 1)::

        t = acc * mult[o] + bias[o]                      # exact, signed RQ_BITS bits
        t = (t + 2**(shift[o]-1)) >> shift[o]            # arithmetic shift: round half up
                                                         #   (shift 0: t unchanged)
        y = min(max(t, 0), 255)                          # saturation at 0 is the ReLU

    Parameters
    ----------
    acc : int64 [N, O, ...]
    mult : int32 [O], signed RQ_MULT_BITS-bit
    bias : int64 [O]
    shift : int32 [O], in [0, RQ_BITS - 2]

    Returns
    -------
    uint8 [N, O, ...]
    """
    _check_int_array("acc", acc, (np.int64,))
    _check_int_array("mult", mult, (np.int32,))
    _check_int_array("bias", bias, (np.int64,))
    _check_int_array("shift", shift, (np.int32,))
    o = acc.shape[1]
    for name, a in (("mult", mult), ("bias", bias), ("shift", shift)):
        _require(a.shape == (o,), f"{name} must have shape [{o}], not {a.shape}")
    acc_bound = int(np.abs(acc).max()) if acc.size else 0
    check_requant_bound(acc_bound, mult, bias, shift)
    shape = (1, o) + (1,) * (acc.ndim - 2)
    m = mult.astype(np.int64).reshape(shape)
    b = bias.astype(np.int64).reshape(shape)
    s = shift.astype(np.int64).reshape(shape)
    half = np.where(s > 0, np.left_shift(1, np.maximum(s - 1, 0)), 0)
    t = np.right_shift(acc * m + b + half, s)
    return np.clip(t, 0, ACT_MAX).astype(np.uint8)


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU on signed integers: ``max(x, 0)``, same dtype."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
        raise TypeError("x must be an integer numpy array")
    return np.maximum(x, 0).astype(x.dtype)


def _check_pool(x, kernel, stride):
    _check_int_array("x", x, (np.uint8,))
    _require(x.ndim == 4, f"x must be 4-D [N, C, H, W], not shape {x.shape}")
    _require(isinstance(kernel, (int, np.integer)) and kernel >= 1,
             f"kernel must be a positive int, not {kernel!r}")
    stride = kernel if stride is None else stride
    conv_output_size(x.shape[2], kernel, stride, 0)
    conv_output_size(x.shape[3], kernel, stride, 0)
    return stride


def _pool_windows(x, kernel, stride):
    win = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))
    return win[:, :, ::stride, ::stride]


def max_pool2d(x: np.ndarray, kernel: int, stride: int | None = None) -> np.ndarray:
    """Max pooling over ``kernel x kernel`` windows (stride defaults to kernel, no padding;
    a partial window at the edge is dropped, as in PyTorch's floor mode). uint8 in and out."""
    stride = _check_pool(x, kernel, stride)
    return _pool_windows(x, kernel, stride).max(axis=(4, 5))


def avg_pool2d(x: np.ndarray, kernel: int, stride: int | None = None) -> np.ndarray:
    """Average pooling, rounded half up: ``floor((2*sum + k) / (2*k))`` with ``k = kernel**2``.

    For a power-of-two ``k`` this is ``(sum + k/2) >> log2(k)``. uint8 in and out.
    """
    stride = _check_pool(x, kernel, stride)
    k = kernel * kernel
    total = _pool_windows(x, kernel, stride).sum(axis=(4, 5), dtype=np.int64)
    return ((2 * total + k) // (2 * k)).astype(np.uint8)
