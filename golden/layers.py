"""Integer AdderNet layers: the bit-exact statement of what the accelerator computes.

Every function takes and returns numpy integer arrays and states its arithmetic exactly: no
floats, no implicit rounding. Activations are unsigned 8-bit (``uint8``); adder-layer weights are
unsigned 8-bit (they share the activations' scale, see :mod:`golden.model`); multiply
layer weights are signed 8-bit (``int8``). Accumulators are signed integers of at most
:data:`ACC_BITS` bits: each layer derives the largest magnitude its accumulator can reach from its
shape and asserts that it fits *before* computing, so an overflow is a refused layer, never a
wrapped result.

Tensor layout is NCHW for feature maps and OCKK for convolution weights, as in PyTorch.

Grouped convolution (format version 2) follows PyTorch's ``groups``: the C input channels and the
O output channels are split into ``g`` equal consecutive groups; output channel ``o`` sees only
the input channels of group ``o // (O/g)``, so a weight is [O, C/g, kh, kw]. Depthwise
convolution with channel multiplier ``m`` is the case ``g = C``, ``O = C*m``: output channel
``c*m + j`` (j in [0, m)) is input channel ``c`` convolved with its j-th kernel (seed 002,
Section 2.1: "each channel of input tensor performs convolution with m kernels ... which produces
p*m feature maps"; the order is PyTorch's ``groups=C``). Pointwise convolution is a 1x1 kernel.
Binarized weights (``bin_conv2d``) are int8 in {-1, +1}: the accumulator is a sum of added and
subtracted activations, no multiplication (seed 002, Section 2.2, eq. 2; the scale ``alpha``
never enters the integer accumulator, it is folded into the output stage, see
:mod:`golden.model`).
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
#: Output codes of the seed's k-bit activation quantizer with k = ACT_BITS (seed 002, eq. 3, and
#: Section 2.2: "default as 8-bit"): codes 0 .. 2**k - 1, so 2**k - 1 thresholds per channel.
QUANT_LEVELS = 1 << ACT_BITS

__all__ = [
    "ACC_BITS", "ACT_BITS", "ACT_MAX", "RQ_BITS", "RQ_MULT_BITS", "QUANT_LEVELS",
    "adder_conv2d", "mul_conv2d", "bin_conv2d", "adder_linear", "mul_linear",
    "depthwise_conv2d", "pointwise_conv2d", "threshold_quantize",
    "requantize", "relu", "max_pool2d", "avg_pool2d", "add_bias",
    "conv_acc_bound", "check_requant_bound", "conv_output_size",
    "global_avg_pool2d", "residual_add", "ADD_WEIGHT_BOUND", "check_pool_padding",
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
    An adder term ``|x - w|`` with x, w in [0, 255] is at most 255; a binarized term +-x
    (``bin``) is at most 255 in magnitude; a multiply term x * w with x in [0, 255] and w in
    [-128, 127] is at most 255 * 128 in magnitude.
    """
    if kind in ("adder", "bin"):
        return fan_in * ACT_MAX
    if kind == "mul":
        return fan_in * ACT_MAX * 128
    raise ValueError(f"kind must be 'adder', 'bin' or 'mul', not {kind!r}")


def _assert_acc_fits(kind: str, fan_in: int) -> None:
    bound = conv_acc_bound(kind, fan_in)
    limit = (1 << (ACC_BITS - 1)) - 1
    _require(bound <= limit,
             f"{'an' if kind[0] in 'aeiou' else 'a'} {kind} layer with fan-in {fan_in} can "
             f"reach {bound}, which overflows the "
             f"{ACC_BITS}-bit accumulator (at most {limit})")


def _im2col(x: np.ndarray, kh: int, kw: int, stride: int, padding: int, pad_value: int = 0):
    """[N, C, H, W] -> ([N, Ho*Wo, C*kh*kw], Ho, Wo); padding holds the code ``pad_value``."""
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                   constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]                       # N, C, Ho, Wo, kh, kw
    n, c, ho, wo = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n, ho * wo, c * kh * kw), ho, wo


def _check_conv(x, w, w_dtype, stride, padding, groups=1, pad_value=0):
    _check_int_array("x", x, (np.uint8,))
    _check_int_array("weight", w, (w_dtype,))
    _require(x.ndim == 4, f"x must be 4-D [N, C, H, W], not shape {x.shape}")
    _require(w.ndim == 4, f"weight must be 4-D [O, C/groups, kh, kw], not shape {w.shape}")
    for name, v in (("stride", stride), ("padding", padding), ("groups", groups),
                    ("pad_value", pad_value)):
        if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
            raise TypeError(f"{name} must be an int, not {v!r}")
    check_groups(x.shape[1], w.shape[0], w.shape[1], groups)
    _require(0 <= pad_value <= ACT_MAX,
             f"pad_value must be an activation code in [0, {ACT_MAX}], not {pad_value}")
    conv_output_size(x.shape[2], w.shape[2], stride, padding)
    conv_output_size(x.shape[3], w.shape[3], stride, padding)


def check_groups(in_channels: int, out_channels: int, weight_in: int, groups: int) -> None:
    """Check a grouped convolution's channel counts (PyTorch's ``groups`` rule).

    ``groups`` must be >= 1 and divide both ``in_channels`` and ``out_channels`` (for depthwise
    convolution, ``groups = in_channels`` and ``out_channels / groups`` is the channel multiplier
    m), and the weight's second axis must be ``in_channels / groups``.

    Raises
    ------
    ValueError
        naming the value that does not fit.
    """
    _require(groups >= 1, f"groups must be >= 1, not {groups}")
    _require(groups > 1 or weight_in == in_channels,
             f"x has {in_channels} channels but weight expects {weight_in}")
    _require(in_channels % groups == 0,
             f"groups {groups} does not divide the {in_channels} input channels")
    _require(out_channels % groups == 0,
             f"groups {groups} does not divide the {out_channels} output channels (the channel "
             f"multiplier out/groups must be an integer)")
    _require(weight_in == in_channels // groups,
             f"x has {in_channels} channels, so a weight with groups {groups} must be "
             f"[{out_channels}, {in_channels // groups}, kh, kw], not [{out_channels}, "
             f"{weight_in}, kh, kw]")


def _grouped(fn, x, weight, groups):
    """Apply the ungrouped kernel ``fn(x_group, w_group)`` to each group; concatenate on axis 1."""
    if groups == 1:
        return fn(x, weight)
    cg, og = x.shape[1] // groups, weight.shape[0] // groups
    return np.concatenate([fn(x[:, g * cg:(g + 1) * cg], weight[g * og:(g + 1) * og])
                           for g in range(groups)], axis=1)


# Rows of the im2col matrix processed at once (bounds the temporaries to a few tens of MiB).
_CHUNK_ROWS = 1 << 16


def adder_conv2d(x: np.ndarray, weight: np.ndarray, *, stride: int = 1, padding: int = 0,
                 groups: int = 1, pad_value: int = 0) -> np.ndarray:
    """Adder convolution: ``Y[n,o,h,w] = -sum_{c,i,j} |X[n,c,h*s+i-p,w*s+j-p] - W[o,c,i,j]|``.

    Parameters
    ----------
    x : uint8 [N, C, H, W]
    weight : uint8 [O, C/groups, kh, kw]
    stride, padding : int
    groups : int
        Grouped convolution (module docstring); 1 is the plain convolution of format 1.
    pad_value : int
        The activation code that padding inserts (format 1: 0, the real value 0), so a padded
        term contributes ``|pad_value - w|``.

    Returns
    -------
    int64 [N, O, Ho, Wo], values in [-C/groups*kh*kw*255, 0].
    """
    _check_conv(x, weight, np.uint8, stride, padding, groups, pad_value)
    _assert_acc_fits("adder", int(np.prod(weight.shape[1:])))
    return _grouped(lambda xg, wg: _adder_conv(xg, wg, stride, padding, pad_value), x, weight,
                    groups)


def _adder_conv(x, weight, stride, padding, pad_value):
    o, c, kh, kw = weight.shape
    cols, ho, wo = _im2col(x, kh, kw, stride, padding, pad_value)      # N, L, K
    n, L, K = cols.shape
    w2 = weight.reshape(o, K).astype(np.int16)
    flat = cols.reshape(n * L, K)
    out = np.empty((n * L, o), dtype=np.int64)
    # One kernel tap at a time over a [O, rows] block: contiguous, and no [rows, O, K] temporary.
    # int32 partial sums are exact: the bound asserted by the caller is below 2**31.
    for s in range(0, n * L, _CHUNK_ROWS):
        blk = np.ascontiguousarray(flat[s:s + _CHUNK_ROWS].T).astype(np.int16)   # K, rows
        acc = np.zeros((o, blk.shape[1]), dtype=np.int32)
        for k in range(K):
            acc += np.abs(blk[k][None, :] - w2[:, k][:, None])
        out[s:s + _CHUNK_ROWS] = acc.T
    return -out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def _dot_conv(x, weight, stride, padding, pad_value):
    o, c, kh, kw = weight.shape
    cols, ho, wo = _im2col(x, kh, kw, stride, padding, pad_value)
    n, L, K = cols.shape
    # Exact in int64: every product and partial sum is below 2**31 (asserted by the caller).
    out = cols.reshape(n * L, K).astype(np.int64) @ weight.reshape(o, K).astype(np.int64).T
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


# Rows of the im2col matrix per batched matmul of a grouped layer (float64 temporaries of a few
# tens of MiB).
_GROUP_CHUNK_ROWS = 1 << 14


def _grouped_dot_conv(x, weight, stride, padding, pad_value, groups):
    """All groups of a multiply / binarized convolution in one batched matmul per row chunk.

    The im2col column ``c*kh*kw + k`` puts group ``g``'s inputs in the contiguous block
    ``[g*kg, (g+1)*kg)``, ``kg = C/groups*kh*kw``; output channel ``g*(O/groups) + j``. float64
    is exact here: every product and partial sum is an integer below 2**31 (asserted by the
    caller), far below 2**53.
    """
    o, cg, kh, kw = weight.shape
    cols, ho, wo = _im2col(x, kh, kw, stride, padding, pad_value)     # N, L, C*kh*kw
    n, L, _ = cols.shape
    kg, og = cg * kh * kw, o // groups
    flat = cols.reshape(n * L, groups, kg)
    wg = weight.reshape(groups, og, kg).transpose(0, 2, 1).astype(np.float64)   # g, kg, og
    out = np.empty((n * L, o), dtype=np.int64)
    for s in range(0, n * L, _GROUP_CHUNK_ROWS):
        a = flat[s:s + _GROUP_CHUNK_ROWS].transpose(1, 0, 2).astype(np.float64)  # g, rows, kg
        out[s:s + _GROUP_CHUNK_ROWS] = np.matmul(a, wg).transpose(1, 0, 2).reshape(-1, o)
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def _dot(x, weight, stride, padding, pad_value, groups):
    if groups == 1:                  # format 1's path, unchanged
        return _dot_conv(x, weight, stride, padding, pad_value)
    return _grouped_dot_conv(x, weight, stride, padding, pad_value, groups)


def mul_conv2d(x: np.ndarray, weight: np.ndarray, *, stride: int = 1, padding: int = 0,
               groups: int = 1, pad_value: int = 0) -> np.ndarray:
    """Multiply convolution: ``Y[n,o,h,w] = sum_{c,i,j} X[n,c,...] * W[o,c,i,j]``.

    Parameters
    ----------
    x : uint8 [N, C, H, W]
    weight : int8 [O, C/groups, kh, kw]
    stride, padding, groups, pad_value : int
        As in :func:`adder_conv2d`.

    Returns
    -------
    int64 [N, O, Ho, Wo]
    """
    _check_conv(x, weight, np.int8, stride, padding, groups, pad_value)
    _assert_acc_fits("mul", int(np.prod(weight.shape[1:])))
    return _dot(x, weight, stride, padding, pad_value, groups)


def check_binary(name: str, weight: np.ndarray) -> None:
    """Raise ValueError if ``weight`` holds a value other than -1 and +1 (seed 002, eq. 2)."""
    bad = (weight != 1) & (weight != -1)
    if bad.any():
        idx = tuple(int(v) for v in np.argwhere(bad)[0])
        raise ValueError(f"{name} must hold only -1 and +1 (binarized, seed 002 eq. 2), but "
                         f"{name}{list(idx)} is {int(weight[idx])}")


def bin_conv2d(x: np.ndarray, weight: np.ndarray, *, stride: int = 1, padding: int = 0,
               groups: int = 1, pad_value: int = 0) -> np.ndarray:
    """Binarized-weight convolution: ``Y[n,o,h,w] = sum_{c,i,j} B[o,c,i,j] * X[n,c,...]``.

    ``B`` in {-1, +1}: each term adds or subtracts one activation, as the seed's binary-weight
    convolver does by flipping the input's sign (seed 002, Section 3.2). The scale ``alpha`` of
    eq. 2 is not applied here (it belongs to the output stage).

    Parameters
    ----------
    x : uint8 [N, C, H, W]
    weight : int8 [O, C/groups, kh, kw], every element -1 or +1
    stride, padding, groups, pad_value : int
        As in :func:`adder_conv2d`.

    Returns
    -------
    int64 [N, O, Ho, Wo], values in [-C/groups*kh*kw*255, C/groups*kh*kw*255].
    """
    _check_conv(x, weight, np.int8, stride, padding, groups, pad_value)
    check_binary("weight", weight)
    _assert_acc_fits("bin", int(np.prod(weight.shape[1:])))
    return _dot(x, weight, stride, padding, pad_value, groups)


_CONV = {"adder": adder_conv2d, "mul": mul_conv2d, "bin": bin_conv2d}


def depthwise_conv2d(x: np.ndarray, weight: np.ndarray, *, kind: str, multiplier: int,
                     stride: int = 1, padding: int = 0, pad_value: int = 0) -> np.ndarray:
    """Depthwise convolution with channel multiplier ``m``: grouped with ``groups = C``.

    Output channel ``c*m + j`` is input channel ``c`` convolved with kernel ``weight[c*m + j, 0]``
    (seed 002, Section 2.1 and Fig. 1; PyTorch's ``groups=C`` order).

    Parameters
    ----------
    x : uint8 [N, C, H, W]
    weight : [C*m, 1, kh, kw], dtype of ``kind`` (adder uint8, mul int8, bin int8 +-1)
    kind : ``"adder"``, ``"mul"`` or ``"bin"``
    multiplier : int
        The channel multiplier m >= 1.
    """
    if kind not in _CONV:
        raise ValueError(f"kind must be 'adder', 'mul' or 'bin', not {kind!r}")
    _require(isinstance(multiplier, (int, np.integer)) and multiplier >= 1,
             f"multiplier must be an int >= 1, not {multiplier!r}")
    c = x.shape[1] if getattr(x, "ndim", 0) == 4 else -1
    _require(getattr(weight, "ndim", 0) == 4 and weight.shape[:2] == (c * multiplier, 1),
             f"a depthwise weight for {c} channels and multiplier {multiplier} must be "
             f"[{c * multiplier}, 1, kh, kw], not {list(getattr(weight, 'shape', ()))}")
    return _CONV[kind](x, weight, stride=stride, padding=padding, groups=c,
                       pad_value=pad_value)


def pointwise_conv2d(x: np.ndarray, weight: np.ndarray, *, kind: str,
                     groups: int = 1) -> np.ndarray:
    """Pointwise (1x1) convolution: every output channel a combination of the input channels at
    one position (seed 002, Section 2.1). ``weight``: [O, C/groups, 1, 1] of ``kind``'s dtype."""
    if kind not in _CONV:
        raise ValueError(f"kind must be 'adder', 'mul' or 'bin', not {kind!r}")
    _require(getattr(weight, "ndim", 0) == 4 and weight.shape[2:] == (1, 1),
             f"a pointwise weight must be [O, C/groups, 1, 1], not "
             f"{list(getattr(weight, 'shape', ()))}")
    return _CONV[kind](x, weight, groups=groups)


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


def check_thresholds(thresh: np.ndarray, sign: np.ndarray, name: str = "q_thresh",
                     sign_name: str = "q_sign") -> None:
    """Check the parameters of :func:`threshold_quantize` (dtype, shape, sign, order).

    Raises
    ------
    TypeError, ValueError
        naming the array and, for order and sign, the first offending channel.
    """
    _check_int_array(name, thresh, (np.int64,))
    _check_int_array(sign_name, sign, (np.int8,))
    _require(thresh.ndim == 2 and thresh.shape[1] == QUANT_LEVELS - 1,
             f"{name} must have shape [O, {QUANT_LEVELS - 1}], not {thresh.shape}")
    _require(sign.shape == (thresh.shape[0],),
             f"{sign_name} must have shape [{thresh.shape[0]}], not {sign.shape}")
    bad = np.flatnonzero((sign != 1) & (sign != -1))
    _require(bad.size == 0, f"{sign_name} must hold only -1 and +1, but channel "
             f"{bad[0] if bad.size else 0} is {int(sign[bad[0]]) if bad.size else 0}")
    down = np.flatnonzero((np.diff(thresh, axis=1) < 0).any(axis=1))
    _require(down.size == 0, f"{name} must be non-decreasing along each channel, but channel "
             f"{down[0] if down.size else 0} decreases")


def threshold_quantize(acc: np.ndarray, thresh: np.ndarray, sign: np.ndarray) -> np.ndarray:
    """Monotone per-channel staircase from the accumulator to an 8-bit code (seed 002, eq. 3).

    For channel ``o`` (axis 1)::

        y = #{ i in [0, 255) : sign[o] * acc >= thresh[o, i] }        # a code in [0, 255]

    Any non-decreasing (``sign = +1``) or non-increasing (``sign = -1``) map from the integer
    accumulator to the 256 codes is one such staircase, exactly; :mod:`golden.model` uses it for
    the seed's tanh quantizer (eq. 3) after batch norm. Hardware finds ``y`` by an 8-step binary
    search over the sorted thresholds (successive approximation: one comparison per output bit,
    MSB first), which gives the same count.

    Parameters
    ----------
    acc : int64 [N, O, ...]
    thresh : int64 [O, 255], non-decreasing along axis 1
    sign : int8 [O], -1 or +1

    Returns
    -------
    uint8 [N, O, ...]
    """
    _check_int_array("acc", acc, (np.int64,))
    check_thresholds(thresh, sign, "thresh", "sign")
    o = acc.shape[1]
    _require(thresh.shape[0] == o, f"thresh must have {o} channels, not {thresh.shape[0]}")
    out = np.empty(acc.shape, dtype=np.uint8)
    for ch in range(o):
        a = acc[:, ch] * np.int64(sign[ch])
        out[:, ch] = np.searchsorted(thresh[ch], a, side="right")
    return out


def relu(x: np.ndarray) -> np.ndarray:
    """ReLU on signed integers: ``max(x, 0)``, same dtype."""
    if not isinstance(x, np.ndarray) or x.dtype.kind not in "iu":
        raise TypeError("x must be an integer numpy array")
    return np.maximum(x, 0).astype(x.dtype)


def check_pool_padding(kernel: int, padding) -> int:
    """``padding`` of a pool as an int in [0, kernel // 2] (PyTorch's bound for ``MaxPool2d`` /
    ``AvgPool2d``), else ValueError. The bound keeps at least one input element in every
    window: window y covers rows ``y*s - p .. y*s - p + kernel - 1`` of the input; its first
    row is at most ``H + p - kernel <= H - 1`` (floor mode: the window ends within the padded
    input) and its last row at least ``kernel - 1 - p >= 0``, both as ``p <= kernel - 1``."""
    _require(isinstance(padding, (int, np.integer)) and not isinstance(padding, bool),
             f"padding must be an int, not {padding!r}")
    _require(0 <= padding <= kernel // 2,
             f"padding must be in [0, {kernel // 2}] (at most half the kernel {kernel}), "
             f"not {padding}")
    return int(padding)


def _check_pool(x, kernel, stride, padding=0):
    _check_int_array("x", x, (np.uint8,))
    _require(x.ndim == 4, f"x must be 4-D [N, C, H, W], not shape {x.shape}")
    _require(isinstance(kernel, (int, np.integer)) and kernel >= 1,
             f"kernel must be a positive int, not {kernel!r}")
    stride = kernel if stride is None else stride
    padding = check_pool_padding(kernel, padding)
    conv_output_size(x.shape[2], kernel, stride, padding)
    conv_output_size(x.shape[3], kernel, stride, padding)
    return stride, padding


def _pool_windows(x, kernel, stride, padding=0, pad_value=0):
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                   constant_values=pad_value)
    win = np.lib.stride_tricks.sliding_window_view(x, (kernel, kernel), axis=(2, 3))
    return win[:, :, ::stride, ::stride]


def max_pool2d(x: np.ndarray, kernel: int, stride: int | None = None,
               padding: int = 0) -> np.ndarray:
    """Max pooling over ``kernel x kernel`` windows (stride defaults to kernel; a partial
    window at the edge is dropped, as in PyTorch's floor mode). uint8 in and out.

    ``padding`` p in [0, kernel // 2] (PyTorch's bound) pads each side with a value that never
    wins, PyTorch's -inf: in the integer domain any value below every code, here -1 (the codes
    are in [0, 255]). The bound keeps at least one input element in every window
    (:func:`check_pool_padding`), so each output is the maximum of its window's input elements,
    exactly PyTorch's ``MaxPool2d(kernel, stride, padding)`` on the same codes (and, the code
    mapping being monotone, on their real values).
    """
    stride, padding = _check_pool(x, kernel, stride, padding)
    if not padding:
        return _pool_windows(x, kernel, stride).max(axis=(4, 5))
    out = _pool_windows(x.astype(np.int16), kernel, stride, padding, -1).max(axis=(4, 5))
    return out.astype(np.uint8)


def avg_pool2d(x: np.ndarray, kernel: int, stride: int | None = None,
               padding: int = 0) -> np.ndarray:
    """Average pooling, rounded half up: ``floor((2*sum + k) / (2*k))`` with ``k = kernel**2``.

    For a power-of-two ``k`` this is ``(sum + k/2) >> log2(k)``. uint8 in and out.
    ``padding`` p in [0, kernel // 2] pads each side with zeros that count in the divisor
    (PyTorch's default ``count_include_pad=True``): ``sum`` is over the window's input
    elements, ``k`` stays ``kernel**2``, rounded as without padding.
    """
    stride, padding = _check_pool(x, kernel, stride, padding)
    k = kernel * kernel
    total = _pool_windows(x, kernel, stride, padding).sum(axis=(4, 5), dtype=np.int64)
    return ((2 * total + k) // (2 * k)).astype(np.uint8)


def global_avg_pool2d(x: np.ndarray) -> np.ndarray:
    """Global average pooling, rounded half up as :func:`avg_pool2d`: ``floor((2*sum + k) /
    (2*k))`` over each channel's ``k = H*W`` values. uint8 [N, C, H, W] in, uint8 [N, C, 1, 1]
    out (PyTorch's ``AdaptiveAvgPool2d(1)`` shape; a ``flatten`` makes it [N, C])."""
    _check_int_array("x", x, (np.uint8,))
    _require(x.ndim == 4, f"x must be 4-D [N, C, H, W], not shape {x.shape}")
    k = x.shape[2] * x.shape[3]
    total = x.sum(axis=(2, 3), dtype=np.int64, keepdims=True)
    return ((2 * total + k) // (2 * k)).astype(np.uint8)


#: Largest magnitude of a residual addition's accumulator: ``|a*wa + b*wb|`` with a, b in
#: [0, 255] and the int8 weights ``wa``, ``wb`` in [-128, 127].
ADD_WEIGHT_BOUND = 2 * ACT_MAX * 128


def residual_add(a: np.ndarray, b: np.ndarray, weight: np.ndarray, mult: np.ndarray,
                 bias: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """Residual addition with requantization (a ResNet shortcut), per channel ``c`` (axis 1)::

        acc = a * weight[c, 0] + b * weight[c, 1]        # exact, |acc| <= 2*255*128
        y   = requantize(acc, mult, bias, shift)         # round half up, ReLU, clip to 255

    ``a`` is the main path, ``b`` the shortcut (both uint8 activations of the same shape);
    ``weight`` (int8 [C, 2]) brings the two to a common scale (their real scales' ratio), and
    the requantization (:func:`requantize`) to the output's scale, with the ReLU of the block.

    Parameters
    ----------
    a, b : uint8 [N, C, ...], the same shape
    weight : int8 [C, 2]
    mult, bias, shift : as :func:`requantize`, [C]

    Returns
    -------
    uint8 [N, C, ...]
    """
    _check_int_array("a", a, (np.uint8,))
    _check_int_array("b", b, (np.uint8,))
    _check_int_array("weight", weight, (np.int8,))
    _require(a.shape == b.shape, f"the shortcut b {list(b.shape)} must have the main path's "
             f"shape {list(a.shape)}")
    _require(a.ndim >= 2, f"a must be [N, C, ...], not shape {a.shape}")
    c = a.shape[1]
    _require(weight.shape == (c, 2), f"weight must have shape [{c}, 2], not {weight.shape}")
    shape = (1, c) + (1,) * (a.ndim - 2)
    wa = weight[:, 0].astype(np.int64).reshape(shape)
    wb = weight[:, 1].astype(np.int64).reshape(shape)
    acc = a.astype(np.int64) * wa + b.astype(np.int64) * wb
    return requantize(acc, mult, bias, shift)
