"""Bit-level processing-in-MRAM algorithms of the seed papers, on bit-planes as hardware does them.

Conventions. A *bit-plane* array holds bits as uint8 0/1. ``to_bits(x, n)`` gives planes
LSB-first: ``planes[b]`` is bit ``b`` of every element of ``x``. "Lanes" are array columns: every
primitive below works element-wise on whole rows of lanes at once, as the per-column periphery
does. Nothing here knows about clocks; step counts are returned where the papers state them.

Primitives (the per-column periphery, one sensing or one logic step):

* :func:`sense` -- the sense amplifier: 1-row read, AND with an operand driven on FU (seed 001
  Table 1), 2-row AND / OR by reference choice (seed 002).
* :func:`fa_step`, :func:`fs_step` -- one full-adder / full-subtractor step with its carry or
  borrow latch (seed 002 FA/FS unit).
* :func:`fa_reconf` -- the seed-000 reconfigurable full adder in ``sum`` or ``carry`` mode.
* :func:`bitcounter_step` -- the per-column bit-counter: count, shift out the LSB, clear (seed 001).

Algorithms (compositions of the primitives, one call per per-column step, loops over bit
positions, numpy over lanes): :func:`and_bitcount_dot` / :func:`and_bitcount_conv2d` /
:func:`and_bitcount_linear` (bitwise convolution), :func:`bitcounter_add`,
:func:`scale_multiply`, :func:`msb_first_compare` / :func:`max_select` / :func:`min_select` /
:func:`max_pool_compare`, :func:`inmem_requant` (seed 001); :func:`fa_fs_add` / :func:`fa_fs_sub` /
:func:`fa_fs_addsub` (seed 002);
:func:`abs_diff` / :func:`l1_fa` / :func:`l1_fa_tree` / :func:`zero_skip_l1` /
:func:`zero_skip_tile` (seed 000);
:func:`min_lane_step` /
:func:`l1_write_free` (the write-free L1 route, ``docs/dataflows.rst``).

Step counts. Each algorithm returns, besides its result, a dict ``steps`` of what the hardware
spends. Every entry counts *lock-step operations*: one operation acts on all lanes at once, so
the numbers do not grow with the lane count (except ``bits_written``). Keys, where they apply::

    reads          sense cycles: one row sensed by the SAs of all lanes (1-row read, AND with FU,
                   or a multi-column activation whose SAs fire in the same cycle).
    writes         array write cycles: one bit written back into one MRAM row in every lane.
    bits_written   MTJ cells written: writes times the number of lanes (the energy driver).
    buffer_writes  rows written into the CMOS weight/operand buffer (not MRAM).
    counts         bit-counter count operations (one bit added to every lane's counter).
    shifts         bit-counter shift-outs, or shift-accumulate steps of a reduction.
    clears         bit-counter clears.
    popcounts      population counts of one bit-plane across lanes (reduction unit).
    cycles         clock cycles where the paper states them (FA/FS: one per read, one per write).
"""

from __future__ import annotations

import numpy as np

from . import layers as L

SENSE_MODES = ("read", "and_fu", "and2", "or2")
BITCOUNTER_OPS = ("count", "shift", "clear", "hold")
FA_MODES = ("sum", "carry")


def _bits(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold integer bits 0/1, not dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise ValueError(f"{name} must hold only bits 0 and 1, found values in "
                         f"[{a.min()}, {a.max()}]")
    return a.astype(np.uint8)


def to_bits(x, n: int, *, signed: bool = False) -> np.ndarray:
    """Bit-planes of integers ``x``, LSB first: shape ``(n,) + x.shape``, uint8 0/1.

    Unsigned: x must lie in [0, 2**n). Signed: two's complement, x in [-2**(n-1), 2**(n-1)).
    """
    if not isinstance(n, (int, np.integer)) or n < 1 or n > 62:
        raise ValueError(f"n must be an int in [1, 62], not {n!r}")
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"x must be an integer array, not dtype {x.dtype}")
    x = x.astype(np.int64)
    lo, hi = (-(1 << (n - 1)), (1 << (n - 1)) - 1) if signed else (0, (1 << n) - 1)
    if x.size and (x.min() < lo or x.max() > hi):
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"x must fit {n} {kind} bits [{lo}, {hi}], found values in "
                         f"[{x.min()}, {x.max()}]")
    u = x & ((1 << n) - 1)
    return np.stack([(u >> b) & 1 for b in range(n)]).astype(np.uint8)


def from_bits(planes, *, signed: bool = False) -> np.ndarray:
    """Inverse of :func:`to_bits`: planes ``(n, ...)`` LSB first -> int64 values."""
    planes = _bits("planes", planes).astype(np.int64)
    n = planes.shape[0]
    val = np.zeros(planes.shape[1:], dtype=np.int64)
    for b in range(n):
        val += planes[b] << b
    if signed:
        val -= planes[n - 1] << n
    return val


def sense(mode: str, row_a, row_b=None, fu=None) -> np.ndarray:
    """Sense-amplifier output per column.

    ``read``: row_a. ``and_fu``: row_a AND fu, fu the operand driven on FU from the weight buffer
    (seed 001 Table 1: OUT = W AND D). ``and2`` / ``or2``: 2-row activation, row_a AND/OR row_b,
    chosen by the reference resistance (seed 002).
    """
    if mode not in SENSE_MODES:
        raise ValueError(f"mode must be one of {', '.join(SENSE_MODES)}, not {mode!r}")
    a = _bits("row_a", row_a)
    if mode == "read":
        return a
    if mode == "and_fu":
        if fu is None:
            raise ValueError("mode 'and_fu' needs fu")
        return a & _bits("fu", fu)
    if row_b is None:
        raise ValueError(f"mode {mode!r} needs row_b")
    b = _bits("row_b", row_b)
    return a & b if mode == "and2" else a | b


def fa_step(a, b, cin):
    """One full-adder step: ``a + b + cin = s + 2*cout``. Returns ``(s, cout)``."""
    a, b, c = _bits("a", a), _bits("b", b), _bits("cin", cin)
    return a ^ b ^ c, (a & b) | (a & c) | (b & c)


def fs_step(a, b, bin_):
    """One full-subtractor step: ``a - b - bin = d - 2*bout``. Returns ``(d, bout)``."""
    a, b, c = _bits("a", a), _bits("b", b), _bits("bin", bin_)
    na = a ^ 1
    return a ^ b ^ c, (na & b) | (na & c) | (b & c)


def fa_reconf(mode: str, a, b, cin) -> np.ndarray:
    """Seed-000 reconfigurable full adder: ``sum`` mode gives a^b^cin, ``carry`` mode the
    majority (the carry out), each in one cycle."""
    if mode not in FA_MODES:
        raise ValueError(f"mode must be one of {', '.join(FA_MODES)}, not {mode!r}")
    s, c = fa_step(a, b, cin)
    return s if mode == "sum" else c


def bitcounter_step(count, op: str, bit=None):
    """Per-column bit-counter (seed 001). Returns ``(new_count, lsb_out)``.

    ``count``: add ``bit`` (0/1) to the count. ``shift``: output the LSB and shift the count right
    (the carry into the next bit position, Fig. 8). ``clear``: reset to 0. ``hold``: no change.
    ``lsb_out`` is the count's LSB before the operation.
    """
    if op not in BITCOUNTER_OPS:
        raise ValueError(f"op must be one of {', '.join(BITCOUNTER_OPS)}, not {op!r}")
    count = np.asarray(count, dtype=np.int64)
    lsb = (count & 1).astype(np.uint8)
    if op == "count":
        if bit is None:
            raise ValueError("op 'count' needs bit")
        return count + _bits("bit", bit), lsb
    if op == "shift":
        return count >> 1, lsb
    if op == "clear":
        return np.zeros_like(count), lsb
    return count, lsb


# --------------------------------------------------------------------------------------------
# Bit-level algorithms of the seeds, built from the primitives above.
# --------------------------------------------------------------------------------------------

#: Widest operand the algorithms accept: every intermediate stays exact in int64.
MAX_BITS = 62


def _check_width(name: str, n, *, lo: int = 1, hi: int = MAX_BITS) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {n!r}")
    if not lo <= n <= hi:
        raise ValueError(f"{name} must be an int in [{lo}, {hi}], not {n}")
    return int(n)


def _check_values(name: str, a, n: int, *, signed: bool = False) -> np.ndarray:
    """Integer array ``a`` whose values fit ``n`` (un)signed bits, as int64."""
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must be an integer array, not dtype {a.dtype}")
    lo, hi = (-(1 << (n - 1)), (1 << (n - 1)) - 1) if signed else (0, (1 << n) - 1)
    if a.size and (int(a.min()) < lo or int(a.max()) > hi):
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"{name} must fit {n} {kind} bits [{lo}, {hi}], found values in "
                         f"[{a.min()}, {a.max()}]")
    return a.astype(np.int64)


def _same_shape(na: str, a: np.ndarray, nb: str, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{na} and {nb} must have the same shape (one element per lane), "
                         f"not {a.shape} and {b.shape}")


def _vectors(na: str, a: np.ndarray, nb: str, b: np.ndarray) -> tuple:
    """Broadcast shape of the leading axes of two ``[..., K]`` operands, and K."""
    for name, v in ((na, a), (nb, b)):
        if v.ndim < 1:
            raise ValueError(f"{name} must have at least one axis [..., K], not shape {v.shape}")
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"{na} and {nb} must have the same last axis K, not shapes "
                         f"{a.shape} and {b.shape}")
    try:
        lead = np.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    except ValueError:
        raise ValueError(f"the leading axes of {na} {a.shape} and {nb} {b.shape} do not "
                         f"broadcast") from None
    return lead, a.shape[-1]


def _check_sum_fits(n: int, k_terms: int) -> None:
    """Sums of K terms of n bits (and twice that, transiently) must stay exact in int64."""
    if n + 1 + k_terms.bit_length() > MAX_BITS:
        raise ValueError(f"n + 1 + bit_length(K) must be <= {MAX_BITS}, not {n} + 1 + "
                         f"{k_terms.bit_length()} (K = {k_terms})")


def _lanes(shape) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _steps(**kw) -> dict:
    return {k: int(v) for k, v in kw.items()}


def _add_steps(total: dict, part: dict) -> dict:
    for k, v in part.items():
        total[k] = total.get(k, 0) + v
    return total


def _lsb(count) -> np.ndarray:
    """Peek at the bit-counter's LSB (the ``hold`` operation leaves the count unchanged)."""
    return bitcounter_step(count, "hold")[1]


# ---- seed 001 eq. 1 / seed 002 eq. 5: bitwise convolution ---------------------------------


def and_bitcount_dot(x, w, *, x_bits: int, w_bits: int, w_signed: bool = False):
    """Dot products over the last axis by AND, bit-count and shift (seed 001 eq. 1, 002 eq. 5).

    ``x . w = sum_n sum_m 2**(n+m) * bitcount(AND(c_n(x), c_m(w)))`` where ``c_n(x)`` is bit-plane
    ``n`` of ``x``. With ``w_signed`` the weight is two's complement and its MSB plane carries
    weight ``-2**(w_bits-1)``, so that plane's counts are subtracted.

    Per plane pair (n, m) every lane's bit-counter is cleared, then counts the K AND results
    ``sense("and_fu", c_n(x)[k], fu=c_m(w)[k])`` (the weight bit is driven on FU from the buffer),
    then the count is shift-accumulated by ``n + m`` into the lane's result.

    Parameters
    ----------
    x : integer array [..., K], values in [0, 2**x_bits)
    w : integer array [..., K], values in [0, 2**w_bits), or in [-2**(w_bits-1), 2**(w_bits-1))
        if ``w_signed``. The leading axes of x and w broadcast; each result element is a lane.
    x_bits, w_bits : int
        Operand widths, each >= 1, with ``x_bits + w_bits + bit_length(K) <= 62``.
    w_signed : bool

    Returns
    -------
    y : int64 array, the broadcast leading shape of x and w
    steps : dict
        ``reads`` = ``counts`` = x_bits * w_bits * K (AND senses, each counted),
        ``shifts`` = ``clears`` = x_bits * w_bits (one shift-accumulate per plane pair),
        ``writes`` = 0.

    Raises
    ------
    TypeError
        Non-integer operands or widths, non-bool ``w_signed``.
    ValueError
        Widths out of range, values that do not fit them, mismatched shapes.
    """
    x_bits = _check_width("x_bits", x_bits)
    w_bits = _check_width("w_bits", w_bits)
    if not isinstance(w_signed, (bool, np.bool_)):
        raise TypeError(f"w_signed must be a bool, not {w_signed!r}")
    x = _check_values("x", x, x_bits)
    w = _check_values("w", w, w_bits, signed=bool(w_signed))
    lead, k_terms = _vectors("x", x, "w", w)
    if x_bits + w_bits + k_terms.bit_length() > MAX_BITS:
        raise ValueError(f"x_bits + w_bits + bit_length(K) must be <= {MAX_BITS}, not "
                         f"{x_bits} + {w_bits} + {k_terms.bit_length()} (K = {k_terms})")
    xp = to_bits(x, x_bits)
    wp = to_bits(w, w_bits, signed=bool(w_signed))
    y = np.zeros(lead, dtype=np.int64)
    for n in range(x_bits):
        for m in range(w_bits):
            count, _ = bitcounter_step(np.zeros(lead, dtype=np.int64), "clear")
            for k in range(k_terms):
                bit = sense("and_fu", xp[n][..., k], fu=wp[m][..., k])
                count, _ = bitcounter_step(count, "count", bit)
            if w_signed and m == w_bits - 1:
                y -= count << (n + m)
            else:
                y += count << (n + m)
    pairs = x_bits * w_bits
    return y, _steps(reads=pairs * k_terms, counts=pairs * k_terms, shifts=pairs, clears=pairs,
                     writes=0)


def and_bitcount_conv2d(x: np.ndarray, weight: np.ndarray, *, stride: int = 1,
                        padding: int = 0):
    """Multiply convolution as a bitwise AND + bit-count convolution; equals
    :func:`golden.layers.mul_conv2d` exactly.

    Parameters
    ----------
    x : uint8 [N, C, H, W]
        Unsigned ``ACT_BITS``-bit activations.
    weight : int8 [O, C, kh, kw]
        Signed 8-bit weights (two's complement: the MSB plane has weight -128).
    stride, padding : int
        As in :func:`golden.layers.mul_conv2d` (zero padding).

    Returns
    -------
    y : int64 [N, O, Ho, Wo]
    steps : dict
        Those of :func:`and_bitcount_dot` with K = C*kh*kw; all output positions are lanes.

    Raises
    ------
    TypeError, ValueError
        As :func:`golden.layers.mul_conv2d`.
    """
    L._check_conv(x, weight, np.int8, stride, padding)
    o, c, kh, kw = weight.shape
    L._assert_acc_fits("mul", c * kh * kw)
    cols, ho, wo = L._im2col(x, kh, kw, stride, padding)       # N, Ho*Wo, K
    w2 = weight.reshape(o, c * kh * kw)
    y, steps = and_bitcount_dot(cols[:, :, None, :], w2[None, None], x_bits=L.ACT_BITS,
                                w_bits=np.iinfo(np.int8).bits, w_signed=True)
    return y.reshape(x.shape[0], ho, wo, o).transpose(0, 3, 1, 2), steps


def and_bitcount_linear(x: np.ndarray, weight: np.ndarray):
    """Multiply fully-connected layer by AND + bit-count; equals :func:`golden.layers.mul_linear`.

    Parameters
    ----------
    x : uint8 [N, I]
    weight : int8 [O, I]

    Returns
    -------
    y : int64 [N, O]
    steps : dict
        Those of :func:`and_bitcount_dot` with K = I.

    Raises
    ------
    TypeError, ValueError
        As :func:`golden.layers.mul_linear`.
    """
    L._check_linear(x, weight, np.int8)
    L._assert_acc_fits("mul", weight.shape[1])
    return and_bitcount_dot(x[:, None, :], weight[None], x_bits=L.ACT_BITS,
                            w_bits=np.iinfo(np.int8).bits, w_signed=True)


# ---- seed 001 Fig. 8: addition and multiplication with the bit-counter ---------------------


def bitcounter_add(operands, n_bits: int):
    """Multi-operand addition in one column with the bit-counter (seed 001 Fig. 8a).

    The k operands of a lane are stored vertically in the same column. For each bit position b,
    LSB first, the k bits ``c_b(operand_i)`` are read one after the other and counted into the
    lane's bit-counter, which still holds the carry of position b-1; the counter's LSB is shifted
    out and written back as sum bit b, the rest stays as the carry. After bit ``n_bits - 1`` the
    counter holds at most ``k - 1``, so ``bit_length(k - 1)`` more shift/write steps empty it
    (Fig. 8a: two 2-bit operands, 3 sum rows).

    Parameters
    ----------
    operands : integer array [k, ...], k >= 1, values in [0, 2**n_bits)
        Operand i of every lane is ``operands[i]``; the trailing axes are lanes.
    n_bits : int
        Operand width, with ``n_bits + bit_length(k - 1) <= 62``.

    Returns
    -------
    total : int64 array, ``operands.shape[1:]``, equal to ``operands.sum(axis=0)``
    steps : dict
        ``reads`` = ``counts`` = k * n_bits; ``shifts`` = ``writes`` = n_bits + bit_length(k-1)
        (one sum row each); ``bits_written`` = writes * lanes.

    Raises
    ------
    TypeError
        Non-integer ``operands`` or ``n_bits``.
    ValueError
        ``n_bits`` out of range, values that do not fit, an operand array without operands.
    """
    n_bits = _check_width("n_bits", n_bits)
    ops = _check_values("operands", operands, n_bits)
    if ops.ndim < 1 or ops.shape[0] < 1:
        raise ValueError(f"operands must have shape [k, ...] with k >= 1 operands, not shape "
                         f"{ops.shape}")
    k = ops.shape[0]
    out_bits = n_bits + (k - 1).bit_length()
    if out_bits > MAX_BITS:
        raise ValueError(f"n_bits + bit_length(k - 1) must be <= {MAX_BITS}, not {out_bits} "
                         f"(n_bits {n_bits}, k {k})")
    planes = to_bits(ops, n_bits)                              # [n_bits, k, ...]
    count = np.zeros(ops.shape[1:], dtype=np.int64)
    sum_rows = []
    for b in range(out_bits):
        if b < n_bits:
            for i in range(k):
                count, _ = bitcounter_step(count, "count", sense("read", planes[b, i]))
        count, lsb = bitcounter_step(count, "shift")
        sum_rows.append(lsb)                                    # WWL: sum bit b
    assert not count.any(), "bit-counter not empty after the last sum row"
    total = from_bits(np.stack(sum_rows))
    return total, _steps(reads=k * n_bits, counts=k * n_bits, shifts=out_bits, writes=out_bits,
                         bits_written=out_bits * _lanes(ops.shape[1:]))


def scale_multiply(a, scale, *, a_bits: int, scale_bits: int):
    """Multiply every lane by one shared scale with AND + bit-count (seed 001 Fig. 8b).

    The multiplicand ``a`` is stored vertically in each lane's column, the scale's bits ``s_j`` sit
    in the buffer. Product bit k (LSB first) is the LSB of the bit-counter after counting, on top
    of the carry left from bit k-1, every ``sense("and_fu", c_i(a), fu=s_j)`` with ``i + j = k``;
    the LSB is shifted out and written back, the rest is the carry. All ``a_bits * scale_bits``
    ANDs are performed, also those with ``s_j = 0`` (the buffer row is just 0).

    Parameters
    ----------
    a : integer array, values in [0, 2**a_bits); each element is a lane
    scale : int in [0, 2**scale_bits), shared by all lanes (the buffer holds one multiplier)
    a_bits, scale_bits : int
        Widths, ``a_bits + scale_bits <= 62``.

    Returns
    -------
    product : int64 array, ``a.shape``, equal to ``a * scale``
    steps : dict
        ``reads`` = ``counts`` = a_bits * scale_bits; ``shifts`` = ``writes`` = a_bits +
        scale_bits (one product row each); ``bits_written`` = writes * lanes.

    Raises
    ------
    TypeError
        Non-integer ``a``, ``scale`` or widths.
    ValueError
        Widths out of range, values that do not fit them.
    """
    a_bits = _check_width("a_bits", a_bits)
    scale_bits = _check_width("scale_bits", scale_bits)
    if a_bits + scale_bits > MAX_BITS:
        raise ValueError(f"a_bits + scale_bits must be <= {MAX_BITS}, not {a_bits + scale_bits}")
    if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)):
        raise TypeError(f"scale must be an int, not {scale!r}")
    if not 0 <= scale < (1 << scale_bits):
        raise ValueError(f"scale must be in [0, {(1 << scale_bits) - 1}] ({scale_bits} unsigned "
                         f"bits), not {scale}")
    a = _check_values("a", a, a_bits)
    ap = to_bits(a, a_bits)
    s_bits = [np.uint8((int(scale) >> j) & 1) for j in range(scale_bits)]   # buffer rows
    out_bits = a_bits + scale_bits
    count = np.zeros(a.shape, dtype=np.int64)
    rows = []
    for k in range(out_bits):
        for i in range(max(0, k - scale_bits + 1), min(k, a_bits - 1) + 1):
            bit = sense("and_fu", ap[i], fu=s_bits[k - i])
            count, _ = bitcounter_step(count, "count", bit)
        count, lsb = bitcounter_step(count, "shift")
        rows.append(lsb)                                        # WWL: product bit k
    assert not count.any(), "bit-counter not empty after the last product row"
    return from_bits(np.stack(rows)), _steps(
        reads=a_bits * scale_bits, counts=a_bits * scale_bits, shifts=out_bits, writes=out_bits,
        bits_written=out_bits * _lanes(a.shape))


# ---- seed 001 Fig. 9: comparison, max/min selection, max pooling ---------------------------


def msb_first_compare(a, b, n: int):
    """Compare two vertically stored vectors MSB first with AND + bit-count (seed 001 Fig. 9).

    Rows Tag (``T``, "this lane is decided") and Result (``R``) start at 0. For each bit i from
    the MSB down, with two buffer rows ``buf1``, ``buf2``:

    1. read ``T``; write ``buf1 = T`` and ``buf2 = NOT T`` into the buffer;
    2. count ``AND(a_i, buf2)`` and ``AND(b_i, buf2)``: the LSB is ``d = (a_i XOR b_i) AND NOT T``
       ("the two bits read out are different" in a lane not decided yet); write ``buf2 = d``;
       count ``AND(T, buf1)`` (= T) on top, so the LSB becomes ``T OR d``; write it to the Tag
       row; clear the counters;
    3. count ``AND(a_i, buf2)`` and ``AND(R, buf1)``: a lane deciding now takes ``a_i`` (1 iff
       a > b there), a lane decided earlier keeps ``R``; write the LSB to the Result row; clear.

    Ambiguity resolved: the text says step 3 ANDs "the MSBs (vector B)" with the buffer and that
    a final Result of 1 means "A is greater than or equals B, A/B is the max/min". With B's bits
    the Result would flag b > a, contradicting that selection rule; with A's bits (used here) the
    Result is ``a > b`` and the rule "Result 1: A/B is max/min, else B/A" selects correctly. Lanes
    with ``a == b`` never differ, so their Result stays 0 (and the rule selects b, equal to a):
    the Result is *strictly greater*, not greater-or-equal.

    Parameters
    ----------
    a, b : integer arrays of the same shape, values in [0, 2**n); each element is a lane
    n : int, width in [1, 62]

    Returns
    -------
    a_gt_b : uint8 array, ``a.shape``: 1 where a > b, 0 where a <= b (the Result row)
    steps : dict, per bit: ``reads`` 6 (Tag read + 5 AND senses), ``counts`` 5, ``clears`` 2,
        ``buffer_writes`` 3, ``writes`` 2 (Tag and Result rows); plus ``writes`` 2 to reset Tag
        and Result first. ``bits_written`` = writes * lanes.

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit n bits, shapes that differ.
    """
    n = _check_width("n", n)
    a = _check_values("a", a, n)
    b = _check_values("b", b, n)
    _same_shape("a", a, "b", b)
    ap, bp = to_bits(a, n), to_bits(b, n)
    tag = np.zeros(a.shape, dtype=np.uint8)                    # reset rows (2 writes)
    result = np.zeros(a.shape, dtype=np.uint8)
    zero = np.zeros(a.shape, dtype=np.int64)
    for i in range(n - 1, -1, -1):
        # step 1: Tag and its inverse into the buffer
        t = sense("read", tag)
        buf1, buf2 = t, t ^ 1
        # step 2: which undecided lanes differ at bit i; update Tag
        count, _ = bitcounter_step(zero, "clear")
        count, _ = bitcounter_step(count, "count", sense("and_fu", ap[i], fu=buf2))
        count, _ = bitcounter_step(count, "count", sense("and_fu", bp[i], fu=buf2))
        buf2 = _lsb(count)
        count, _ = bitcounter_step(count, "count", sense("and_fu", tag, fu=buf1))
        tag = _lsb(count)
        count, _ = bitcounter_step(count, "clear")
        # step 3: new Result = a_i in lanes deciding now, old Result in lanes decided before
        count, _ = bitcounter_step(count, "count", sense("and_fu", ap[i], fu=buf2))
        count, _ = bitcounter_step(count, "count", sense("and_fu", result, fu=buf1))
        result = _lsb(count)
    writes = 2 + 2 * n
    return result, _steps(reads=6 * n, counts=5 * n, clears=2 * n, buffer_writes=3 * n,
                          writes=writes, bits_written=writes * _lanes(a.shape))


def _select(a, b, n: int, *, want_max: bool):
    n = _check_width("n", n)
    a = _check_values("a", a, n)
    b = _check_values("b", b, n)
    _same_shape("a", a, "b", b)
    gt, steps = msb_first_compare(a, b, n)
    # Selective copy: the Result row and its inverse go to the buffer, then per bit
    # out_i = LSB(count(AND(a_i, sel_a)) + count(AND(b_i, sel_b))), written back.
    r = sense("read", gt)
    sel_a, sel_b = (r, r ^ 1) if want_max else (r ^ 1, r)
    ap, bp = to_bits(a, n), to_bits(b, n)
    zero = np.zeros(a.shape, dtype=np.int64)
    rows = []
    for i in range(n):
        count, _ = bitcounter_step(zero, "clear")
        count, _ = bitcounter_step(count, "count", sense("and_fu", ap[i], fu=sel_a))
        count, _ = bitcounter_step(count, "count", sense("and_fu", bp[i], fu=sel_b))
        rows.append(_lsb(count))
    lanes = _lanes(a.shape)
    copy = _steps(reads=1 + 2 * n, counts=2 * n, clears=n, buffer_writes=2, writes=n,
                  bits_written=n * lanes)
    return from_bits(np.stack(rows)), _add_steps(steps, copy)


def max_select(a, b, n: int):
    """Lane-wise ``max(a, b)``: :func:`msb_first_compare`, then a selective copy.

    The Result row ``r`` (a > b) is read and written to the buffer as ``r`` and ``NOT r``; per
    bit, LSB first, the counter counts ``AND(a_i, r)`` and ``AND(b_i, NOT r)`` and its LSB is
    written back as bit i of the maximum, then cleared.

    Parameters
    ----------
    a, b : integer arrays of the same shape, values in [0, 2**n)
    n : int, width in [1, 62]

    Returns
    -------
    out : int64 array, equal to ``np.maximum(a, b)``
    steps : dict, those of :func:`msb_first_compare` plus the copy: ``reads`` 1 + 2n,
        ``counts`` 2n, ``clears`` n, ``buffer_writes`` 2, ``writes`` n, ``bits_written`` n * lanes.

    Raises
    ------
    TypeError, ValueError
        As :func:`msb_first_compare`.
    """
    return _select(a, b, n, want_max=True)


def min_select(a, b, n: int):
    """Lane-wise ``min(a, b)``: as :func:`max_select` with the buffer rows swapped
    (``AND(a_i, NOT r)`` and ``AND(b_i, r)``). Equals ``np.minimum(a, b)``; same steps."""
    return _select(a, b, n, want_max=False)


def max_pool_compare(values, n: int):
    """Maximum over axis 0 by iterative in-memory comparison (seed 001 section 4.2 pooling).

    The running maximum starts as ``values[0]`` in place; each further candidate is compared
    with it and the larger one selectively copied into the running maximum's rows
    (:func:`max_select`), so k values take k - 1 compare-and-copy rounds.

    Parameters
    ----------
    values : integer array [k, ...], k >= 1, values in [0, 2**n); trailing axes are lanes
    n : int, width in [1, 62]

    Returns
    -------
    out : int64 array ``values.shape[1:]``, equal to ``values.max(axis=0)``
    steps : dict, the sum over the k - 1 rounds of :func:`max_select`'s steps
        (all zero for k = 1).

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit, an array without values.
    """
    n = _check_width("n", n)
    vals = _check_values("values", values, n)
    if vals.ndim < 1 or vals.shape[0] < 1:
        raise ValueError(f"values must have shape [k, ...] with k >= 1, not shape {vals.shape}")
    best = vals[0]
    steps = dict.fromkeys(("reads", "counts", "clears", "buffer_writes", "writes",
                           "bits_written"), 0)
    for cand in vals[1:]:
        best, s = max_select(best, cand, n)
        _add_steps(steps, s)
    return best, steps


# ---- seed 001 sec. 4.2: quantization (eq. 2), batch norm (eq. 3), ReLU in memory -----------


def inmem_requant(x, mult, bias, shift, *, x_bits: int, p_bits: int, out_bits: int = 8):
    """Requantization the seed-001 way, in the array: an affine map, a shift, ReLU, saturation.

    Seed 001 sec. 4.2 quantizes a layer's sums with eq. 2, ``Q_o = round((Q_i - Q_min) (2**k -
    1) / (Q_max - Q_min))``, then batch-normalizes with eq. 3, ``I_o = (I_i - mu) gamma /
    sqrt(sigma**2 + eps) + beta``; both are affine with parameters "calculated and stored in
    advance", performed "through in-memory addition and multiplication". Folded at compile time
    into one integer affine map per lane (the same ``mult``, ``bias``, ``shift`` as
    ``golden.layers.requantize``), the arithmetic the array does is, with every value held in
    ``p_bits``-bit two's complement rows::

        t = (x * mult + bias + 2**(shift-1)) mod 2**p_bits     # Fig. 8b multiply + Fig. 8a
                                                                #   add, one column, LSB first
        t = t - 2**p_bits if t >= 2**(p_bits-1)                # the row p_bits - 1 is the sign
        t = t >> shift                                          # rows shift .. p_bits-1: round
                                                                #   half up (shift 0: none)
        y = 0 if t < 0 else min(t, 2**out_bits - 1)             # ReLU from the MSB (sec. 4.2),
                                                                #   saturation

    Where this differs from today's requantization (``golden.layers.requantize``, the CMOS PPU):
    only in the width. The PPU computes ``t`` exactly in ``RQ_BITS`` = 48 bits; the array keeps
    ``p_bits`` rows, so ``t`` wraps modulo ``2**p_bits``. The two are equal whenever
    ``|x * mult + bias + 2**(shift-1)| < 2**(p_bits-1)`` (:func:`inmem_requant_bits` gives the
    smallest such width for an accumulator bound). The rounding (half up, by adding
    ``2**(shift-1)`` before the shift) and the saturation at 0 and ``2**out_bits - 1`` are the
    PPU's. The seed's eq. 2 has no saturation (it assumes ``Q_min <= Q_i <= Q_max``);
    ASSUMPTION: values outside the range saturate, as the PPU's do, so both modes agree.

    Parameters
    ----------
    x : integer array, values fit ``x_bits`` signed bits (the accumulated sums, one per lane)
    mult, bias, shift : integer arrays broadcastable to ``x`` (per-lane parameters; ``mult``
        signed, ``shift`` in [0, p_bits - 1])
    x_bits, p_bits : int, in [1, 62]; ``x_bits <= p_bits``
    out_bits : int in [1, p_bits - 1]

    Returns
    -------
    int64 array, the broadcast shape of the arguments, values in [0, 2**out_bits - 1]

    Raises
    ------
    TypeError, ValueError
        Bad widths, values that do not fit, a shift out of range.
    """
    x_bits = _check_width("x_bits", x_bits)
    p_bits = _check_width("p_bits", p_bits)
    out_bits = _check_width("out_bits", out_bits, hi=max(1, p_bits - 1))
    if x_bits > p_bits:
        raise ValueError(f"x_bits must be <= p_bits={p_bits}, not {x_bits}")
    x = _check_values("x", x, x_bits, signed=True)
    mult = np.asarray(mult)
    bias = np.asarray(bias)
    shift = np.asarray(shift)
    for name, a in (("mult", mult), ("bias", bias), ("shift", shift)):
        if a.dtype.kind not in "iu":
            raise TypeError(f"{name} must be an integer array, not dtype {a.dtype}")
    if shift.size and (int(shift.min()) < 0 or int(shift.max()) >= p_bits):
        raise ValueError(f"shift must be in [0, {p_bits - 1}], found values in "
                         f"[{shift.min()}, {shift.max()}]")
    mod = 1 << p_bits
    m = mult.astype(object) % mod          # exact: Python ints, the residues the rows hold
    s = shift.astype(np.int64)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    c = (bias.astype(object) + half.astype(object)) % mod
    t = (x.astype(object) * m + c) % mod
    t = np.where(t >= mod >> 1, t - mod, t)
    t = np.right_shift(np.asarray(t, dtype=object), s.astype(object))
    top = (1 << out_bits) - 1
    return np.asarray(np.minimum(np.maximum(t, 0), top), dtype=np.int64)


def inmem_requant_bits(acc_bound: int, mult, bias, shift) -> int:
    """Smallest ``p_bits`` with which :func:`inmem_requant` equals ``golden.layers.requantize``
    for every ``|x| <= acc_bound``: ``bit_length(max(acc_bound |mult| + |bias| +
    2**(shift-1))) + 1`` (the sign row), at least ``max(shift) + 2``."""
    mult = np.abs(np.asarray(mult, dtype=object))
    bias = np.abs(np.asarray(bias, dtype=object))
    shift = np.asarray(shift, dtype=np.int64)
    half = np.array([(1 << (int(v) - 1)) if v > 0 else 0 for v in shift.ravel()],
                    dtype=object).reshape(shift.shape)
    worst = int(np.max(int(acc_bound) * mult + bias + half)) if mult.size else 0
    return max(worst.bit_length() + 1, int(shift.max(initial=0)) + 2)


# ---- seed 002 Fig. 4a: FA/FS add and subtract, 2n cycles ------------------------------------


def _fa_fs(a, b, n: int, *, subtract: bool):
    n = _check_width("n", n)
    a = _check_values("a", a, n)
    b = _check_values("b", b, n)
    _same_shape("a", a, "b", b)
    ap, bp = to_bits(a, n), to_bits(b, n)
    latch = np.zeros(a.shape, dtype=np.uint8)
    rows = []
    step = fs_step if subtract else fa_step
    for i in range(n):
        # read cycle: 3-column activation senses a_i, b_i (and the carry/borrow cell) at once
        ai, bi = sense("read", ap[i]), sense("read", bp[i])
        s, latch = step(ai, bi, latch)
        rows.append(s)                                          # write cycle: result bit i
    lanes = _lanes(a.shape)
    steps = _steps(reads=n, writes=n, cycles=2 * n, bits_written=(n + 1) * lanes)
    return from_bits(np.stack(rows)), latch, steps


def fa_fs_add(a, b, n: int):
    """n-bit addition through the FA/FS unit, LSB first, in 2n cycles (seed 002 Fig. 4a).

    Per bit i one read cycle (3-column activation: ``a_i``, ``b_i`` and the carry reach the
    CMOS full adder, :func:`fa_step`) and one write cycle (sum bit ``S_i`` written back; the carry
    stays in the latch for bit i+1). The last write cycle also stores the carry out ``C_n``, as
    Fig. 4a produces ``C3 S3 S2 S1 S0`` from 4-bit operands in 8 cycles.

    Parameters
    ----------
    a, b : integer arrays of the same shape, values in [0, 2**n)
    n : int, width in [1, 62]

    Returns
    -------
    total : int64 array, ``a + b`` (n + 1 bits: ``C_n S_{n-1} .. S_0``)
    steps : dict, ``reads`` n, ``writes`` n, ``cycles`` 2n, ``bits_written`` (n + 1) * lanes.

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit n bits, shapes that differ.
    """
    s, carry, steps = _fa_fs(a, b, n, subtract=False)
    return s + (carry.astype(np.int64) << n), steps


def fa_fs_sub(a, b, n: int):
    """n-bit subtraction ``a - b`` through the FA/FS unit (:func:`fs_step`), LSB first, in 2n
    cycles: as :func:`fa_fs_add` with the borrow latch in place of the carry.

    Parameters
    ----------
    a, b : integer arrays of the same shape, values in [0, 2**n)
    n : int, width in [1, 62]

    Returns
    -------
    diff : int64 array, ``(a - b) mod 2**n``
    borrow : uint8 array, the borrow out: ``a - b == diff - borrow * 2**n`` (1 iff a < b)
    steps : dict, as :func:`fa_fs_add` (the borrow out is stored with the last difference bit).

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit n bits, shapes that differ.
    """
    d, borrow, steps = _fa_fs(a, b, n, subtract=True)
    return d, borrow, steps


def fa_fs_addsub(a, b, subtract, n: int):
    """Lane by lane ``a + b`` or ``a - b`` mod 2**n through the FA/FS unit, LSB first, in 2n
    cycles: the seed-002 binary-weight convolver's step (Fig. 4a; sec. 3.2: the sign of each
    lane's {-1, +1} weight picks addition or subtraction of its input).

    Per bit i one read cycle (``a_i`` and ``b_i`` sensed together, 3-column activation) whose
    lane computes :func:`fa_step` where ``subtract`` is 0 and :func:`fs_step` where it is 1,
    the carry / borrow staying in the lane's latch (0 into bit 0), and one write cycle that
    writes the sum bit ``S_i`` back into the array. No carry out is stored: the result wraps
    mod 2**n (a two's complement accumulator of n bits).

    Parameters
    ----------
    a, b : integer arrays of the same shape, values in [0, 2**n)
        ``a`` the accumulator, ``b`` the input (two's complement patterns of n bits).
    subtract : integer array of the same shape, 0 (add) or 1 (subtract)
    n : int, width in [1, 62]

    Returns
    -------
    total : int64 array, ``(a + b) mod 2**n`` or ``(a - b) mod 2**n`` per lane
    steps : dict, ``reads`` n, ``writes`` n, ``cycles`` 2n, ``bits_written`` n * lanes.

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit n bits, ``subtract`` not 0/1, shapes that differ.
    """
    n = _check_width("n", n)
    a = _check_values("a", a, n)
    b = _check_values("b", b, n)
    sub = _bits("subtract", subtract)
    _same_shape("a", a, "b", b)
    _same_shape("a", a, "subtract", sub)
    ap, bp = to_bits(a, n), to_bits(b, n)
    latch = np.zeros(a.shape, dtype=np.uint8)
    rows = []
    for i in range(n):
        ai, bi = sense("read", ap[i]), sense("read", bp[i])     # read cycle
        s_add, c_add = fa_step(ai, bi, latch)
        s_sub, c_sub = fs_step(ai, bi, latch)
        rows.append(np.where(sub == 1, s_sub, s_add).astype(np.uint8))   # write cycle
        latch = np.where(sub == 1, c_sub, c_add).astype(np.uint8)
    steps = _steps(reads=n, writes=n, cycles=2 * n, bits_written=n * _lanes(a.shape))
    return from_bits(np.stack(rows)), steps


# ---- seed 000: in-situ absolute difference, FA accumulation, zero skipping ------------------


def abs_diff(x, w, n: int):
    """Lane-wise ``|x - w|`` with the FS unit: sign pass, then larger minus smaller.

    Seed 000 gives only the idea (in-situ absolute difference); this is the precise definition:

    1. sign pass, n read cycles, no writes: ripple ``x - w`` LSB first through :func:`fs_step`
       and keep only the borrow out ``B`` (1 iff x < w) in the lane's flag;
    2. difference pass, n read + n write cycles: ripple again with the lane's operand swap
       selected by ``B`` (``big = w if B else x``, ``small = x if B else w``) and write each
       difference bit back. The final borrow is 0 by construction.

    Parameters
    ----------
    x, w : integer arrays of the same shape, values in [0, 2**n)
    n : int, width in [1, 62]

    Returns
    -------
    d : int64 array, ``|x - w|`` (n bits)
    steps : dict, ``reads`` 2n, ``writes`` n, ``cycles`` 3n, ``bits_written`` n * lanes.

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit n bits, shapes that differ.
    """
    n = _check_width("n", n)
    x = _check_values("x", x, n)
    w = _check_values("w", w, n)
    _same_shape("x", x, "w", w)
    xp, wp = to_bits(x, n), to_bits(w, n)
    swap = np.zeros(x.shape, dtype=np.uint8)
    for i in range(n):                                          # sign pass
        _, swap = fs_step(sense("read", xp[i]), sense("read", wp[i]), swap)
    borrow = np.zeros(x.shape, dtype=np.uint8)
    rows = []
    for i in range(n):                                          # difference pass
        xi, wi = sense("read", xp[i]), sense("read", wp[i])
        big = np.where(swap, wi, xi)
        small = np.where(swap, xi, wi)
        d, borrow = fs_step(big, small, borrow)
        rows.append(d)
    assert not borrow.any(), "larger minus smaller borrowed"
    return from_bits(np.stack(rows)), _steps(reads=2 * n, writes=n, cycles=3 * n,
                                             bits_written=n * _lanes(x.shape))


def l1_fa(x, w, n: int, acc_bits: int):
    """``sum_k |x[..., k] - w[..., k]|`` by the seed-000 dataflow: abs-diff, then FA accumulate.

    Every output is a lane. For each term k in turn the lane computes ``d = |x_k - w_k|`` with
    :func:`abs_diff` (d is written into the array), then adds d into its ``acc_bits``-bit
    accumulator through the FA, LSB first: per accumulator bit one read cycle (``acc_i``, ``d_i``
    -- 0 above bit n-1 -- and the carry, :func:`fa_step`) and one write cycle (the new ``acc_i``).
    Every written-back bit is an MRAM write: this is the cost a write-free route avoids.

    Parameters
    ----------
    x, w : integer arrays [..., K], values in [0, 2**n); leading axes broadcast
    n : int, width in [1, 62]
    acc_bits : int
        Accumulator width in [1, 62]; must hold ``K * (2**n - 1)`` (an overflow is refused).

    Returns
    -------
    l1 : int64 array, the broadcast leading shape
    steps : dict, per term: :func:`abs_diff`'s steps plus ``reads`` acc_bits, ``writes``
        acc_bits, ``cycles`` 2 * acc_bits; ``bits_written`` = writes * lanes. For K terms:
        ``writes`` = K * (n + acc_bits), ``cycles`` = K * (3n + 2 acc_bits).

    Raises
    ------
    TypeError, ValueError
        Bad widths, values that do not fit, shapes that do not match, an accumulator too narrow.
    """
    n = _check_width("n", n)
    acc_bits = _check_width("acc_bits", acc_bits)
    x = _check_values("x", x, n)
    w = _check_values("w", w, n)
    lead, k_terms = _vectors("x", x, "w", w)
    need = (k_terms * ((1 << n) - 1)).bit_length()
    if acc_bits < need:
        raise ValueError(f"acc_bits must be >= {need} to hold {k_terms} terms of {n} bits, "
                         f"not {acc_bits}")
    xb, wb = (np.broadcast_to(v, lead + (k_terms,)) for v in (x, w))
    acc = [np.zeros(lead, dtype=np.uint8) for _ in range(acc_bits)]
    zero = np.zeros(lead, dtype=np.uint8)
    steps = dict.fromkeys(("reads", "writes", "cycles", "bits_written"), 0)
    for k in range(k_terms):
        d, s = abs_diff(xb[..., k], wb[..., k], n)
        _add_steps(steps, s)
        dp = to_bits(d, n)
        carry = zero
        for i in range(acc_bits):
            ai = sense("read", acc[i])
            di = sense("read", dp[i]) if i < n else zero
            acc[i], carry = fa_step(ai, di, carry)
        assert not carry.any(), "accumulator overflow"
        _add_steps(steps, _steps(reads=acc_bits, writes=acc_bits, cycles=2 * acc_bits,
                                 bits_written=acc_bits * _lanes(lead)))
    return from_bits(np.stack(acc)), steps


def l1_fa_tree(x, w, n: int):
    """``sum_k |x[..., k] - w[..., k]|`` by the seed-000 parallel full-adder array, bit-serial.

    The K terms' ``|x_k - w_k|`` come from :func:`abs_diff` as bit-planes, LSB first (no
    write-back: each difference bit goes straight into the array). The array is a balanced tree
    of K - 1 nodes (adjacent terms paired level by level, an odd term passed up last), each
    node two reconfigurable full adders (:func:`fa_reconf`) on its two input bits and its carry
    latch: the ``sum`` cell's output goes up the tree, the ``carry`` cell's into the latch, both
    in the cycle of the step (the single-cycle carry-chain update). Step b adds plane b; the
    root's output is bit b of the sum. After the n planes, ``L = ceil(log2 K)`` steps with zero
    inputs flush the carries (bits n .. n + L - 1); every latch is then 0.

    Parameters
    ----------
    x, w : integer arrays [..., K], values in [0, 2**n); leading axes broadcast
    n : int, width in [1, 62]

    Returns
    -------
    l1 : int64 array, the broadcast leading shape
    steps : dict, ``reads`` 2n (the sign and difference passes), ``writes`` 0, ``cycles``
        2n + L, ``bits_written`` 0.

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit n bits, shapes that do not match.
    """
    n = _check_width("n", n)
    x = _check_values("x", x, n)
    w = _check_values("w", w, n)
    lead, k_terms = _vectors("x", x, "w", w)
    xb, wb = (np.broadcast_to(v, lead + (k_terms,)) for v in (x, w))
    d, _ = abs_diff(xb, wb, n)
    planes = to_bits(d, n)                                   # [n, ..., K]
    depth = int(np.ceil(np.log2(k_terms))) if k_terms > 1 else 0
    latches: list = []                                       # per level: [..., pairs]
    size = k_terms
    while size > 1:
        latches.append(np.zeros(lead + (size // 2,), dtype=np.uint8))
        size = size // 2 + size % 2
    zero = np.zeros(lead + (k_terms,), dtype=np.uint8)
    out = []
    for b in range(n + depth):
        terms = planes[b] if b < n else zero
        for lvl, c in enumerate(latches):
            p = c.shape[-1]
            a, bb = terms[..., 0:2 * p:2], terms[..., 1:2 * p:2]
            s = fa_reconf("sum", a, bb, c)
            latches[lvl] = fa_reconf("carry", a, bb, c)
            terms = s if terms.shape[-1] % 2 == 0 else np.concatenate(
                [s, terms[..., -1:]], axis=-1)
        out.append(terms[..., 0])
    assert not any(c.any() for c in latches), "carries left after the flush"
    return from_bits(np.stack(out)), _steps(reads=2 * n, writes=0, cycles=2 * n + depth,
                                            bits_written=0)


def _l1_operands(x, w, n):
    """``(n, x, w)`` of an L1 tile: the width and both operands checked (values in
    [0, 2**n), shapes that broadcast, a sum of K terms that fits) and broadcast to [..., K]."""
    n = _check_width("n", n)
    x = _check_values("x", x, n)
    w = _check_values("w", w, n)
    lead, k_terms = _vectors("x", x, "w", w)
    _check_sum_fits(n, k_terms)
    return n, *(np.broadcast_to(v, lead + (k_terms,)) for v in (x, w))


def zero_skip_l1(x, w, *, n: int = L.ACT_BITS):
    """Sparsity-aware ``sum_k |x[..., k] - w[..., k]|`` (seed 000 zero skipping).

    A term with ``x == 0`` contributes ``w`` and a term with ``w == 0`` contributes ``x``, with no
    lane operation (both zero: contributes 0); only the other terms go through :func:`abs_diff`.

    Parameters
    ----------
    x, w : integer arrays [..., K], values in [0, 2**n); leading axes broadcast
    n : int, keyword, width in [1, 62] (default ``ACT_BITS``)

    Returns
    -------
    l1 : int64 array, the broadcast leading shape
    skipped : int64 array, same shape: terms with a zero operand
    computed : int64 array, same shape: terms that needed an abs-diff (``skipped + computed
        == K``)

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit, shapes that do not match.
    """
    n, xb, wb = _l1_operands(x, w, n)
    k_terms = xb.shape[-1]
    skip = (xb == 0) | (wb == 0)
    terms = np.where(xb == 0, wb, np.where(wb == 0, xb, 0))
    work = ~skip
    d, _ = abs_diff(xb[work], wb[work], n)
    terms[work] = d
    skipped = skip.sum(axis=-1, dtype=np.int64)
    return terms.sum(axis=-1, dtype=np.int64), skipped, k_terms - skipped


def zero_skip_tile(x, w, *, n: int = L.ACT_BITS, fa_tree: bool = False):
    """The core's zero-skipping rule (``docs/dataflows.rst``, seed 000 sparsity-aware skipping)
    for one tile dot ``sum_k |x[..., k] - w[..., k]|``: a tile whose x are all zero is not
    computed; its dot is ``sum_k w[..., k]`` (``|0 - w| = w``), a number known from the
    weights alone. Every other tile goes through :func:`abs_diff` term by term, its terms
    summed as integers or, with ``fa_tree``, by the full-adder array (:func:`l1_fa_tree`, the
    ``jeit_fa`` route: the same rule, a skipped tile's array steps not taken).

    Parameters
    ----------
    x, w : integer arrays [..., K] (a tile of K terms), values in [0, 2**n); leading axes
        broadcast
    n : int, keyword, width in [1, 62] (default ``ACT_BITS``)
    fa_tree : bool, keyword, sum the computed tiles by :func:`l1_fa_tree` (default False)

    Returns
    -------
    l1 : int64 array, the broadcast leading shape: the tile dot
    skipped : bool array, same shape: the tile was skipped (all its x are 0)

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit, shapes that do not match.
    """
    n, xb, wb = _l1_operands(x, w, n)
    skipped = np.asarray(~xb.any(axis=-1))
    l1 = np.asarray(wb.sum(axis=-1, dtype=np.int64))         # the skipped tiles' dot
    work = ~skipped
    if work.any() and fa_tree:
        l1[work], _ = l1_fa_tree(xb[work], wb[work], n)
    elif work.any():
        d, _ = abs_diff(xb[work], wb[work], n)
        l1[work] = d.sum(axis=-1, dtype=np.int64)
    return l1, skipped


# ---- the write-free L1 route (docs/dataflows.rst): MSB-first min lanes, bit-plane popcounts --


def min_lane_step(x_b, w_b, decided, x_is_min):
    """One MSB-first step of the write-free min lane: bit b of ``min(x, w)`` and the new flags.

    Before a lane's operands differ (``decided == 0``) the min bit is ``x_b AND w_b`` (the bits
    are equal, or differ for the first time, when the 0 belongs to the min); at the first
    differing bit the lane sets ``decided`` and ``x_is_min = NOT x_b``; afterwards the min bit is
    ``x_b`` if ``x_is_min`` else ``w_b``. Start every lane with both flags 0 at the MSB.

    Parameters
    ----------
    x_b, w_b : bit arrays (0/1), bit b of x and of w in every lane
    decided, x_is_min : bit arrays, the lane's flags before this step

    Returns
    -------
    min_b, decided, x_is_min : uint8 bit arrays (broadcast shape)

    Raises
    ------
    TypeError, ValueError
        Inputs that are not integer 0/1 bits.
    """
    x_b, w_b = _bits("x_b", x_b), _bits("w_b", w_b)
    decided, x_is_min = _bits("decided", decided), _bits("x_is_min", x_is_min)
    differ = x_b ^ w_b
    min_b = np.where(decided, np.where(x_is_min, x_b, w_b), x_b & w_b).astype(np.uint8)
    new_x_is_min = np.where(decided, x_is_min, differ & (x_b ^ 1)).astype(np.uint8)
    return min_b, decided | differ, new_x_is_min


def l1_write_free(x, w, n: int):
    """``sum_k |x[..., k] - w[..., k]|`` with no array write (the write-free route, in
    ``docs/dataflows.rst``).

    ``|x - w| = x + w - 2 min(x, w)``. The terms of one output sit in the lanes (the last axis);
    for each bit-plane b, MSB first, one sense cycle gives every lane ``x_b`` and ``w_b`` (x and
    w in two columns of the lane, each with its SA), :func:`min_lane_step` gives ``min_b``, and
    the reduction unit population-counts the three planes across the lanes and shift-accumulates
    ``popcount(x_b) + popcount(w_b) - 2 popcount(min_b)`` (``acc = 2 acc + plane``), so
    ``L1 = sum_b 2**b (popcount(x_b) + popcount(w_b) - 2 popcount(min_b))``.

    Parameters
    ----------
    x, w : integer arrays [..., K], values in [0, 2**n); leading axes broadcast
    n : int, width in [1, 62]

    Returns
    -------
    l1 : int64 array, the broadcast leading shape
    steps : dict, ``reads`` n (one sense cycle per bit-plane), ``writes`` 0, ``bits_written``
        0, ``popcounts`` 3n, ``shifts`` n (shift-accumulates), ``cycles`` n.

    Raises
    ------
    TypeError, ValueError
        Bad ``n``, values that do not fit, shapes that do not match.
    """
    n = _check_width("n", n)
    x = _check_values("x", x, n)
    w = _check_values("w", w, n)
    lead, k_terms = _vectors("x", x, "w", w)
    _check_sum_fits(n, k_terms)
    xp = to_bits(np.broadcast_to(x, lead + (k_terms,)), n)
    wp = to_bits(np.broadcast_to(w, lead + (k_terms,)), n)
    decided = np.zeros(lead + (k_terms,), dtype=np.uint8)
    x_is_min = decided
    acc = np.zeros(lead, dtype=np.int64)
    for b in range(n - 1, -1, -1):
        xb, wb = sense("read", xp[b]), sense("read", wp[b])
        min_b, decided, x_is_min = min_lane_step(xb, wb, decided, x_is_min)
        plane = (xb.sum(axis=-1, dtype=np.int64) + wb.sum(axis=-1, dtype=np.int64)
                 - 2 * min_b.sum(axis=-1, dtype=np.int64))
        acc = 2 * acc + plane
    return acc, _steps(reads=n, writes=0, bits_written=0, popcounts=3 * n, shifts=n, cycles=n)
