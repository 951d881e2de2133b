"""The seeds' bit-level PIM algorithms in golden.pim against plain integer arithmetic.

Every expected value comes from numpy integer arithmetic (``+``, ``*``, ``np.abs``,
``np.maximum``, ...) on int64, never from golden.pim. Small widths are exhaustive (all value
pairs, several lane counts); wide widths (8, 12, 16 bits) are property-tested with hypothesis.
"""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from golden import layers, pim

SMALL = (1, 2, 3, 4)
WIDE = st.sampled_from([8, 12, 16])
RNG = np.random.default_rng(20240601)


def all_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (a, b) with a, b in [0, 2**n), one pair per lane."""
    a, b = np.meshgrid(np.arange(1 << n), np.arange(1 << n), indexing="ij")
    return a.ravel(), b.ravel()


def all_tuples(n: int, k: int) -> np.ndarray:
    """Every k-tuple of n-bit values, as [k, lanes]."""
    return np.array(list(itertools.product(range(1 << n), repeat=k)), dtype=np.int64).T


def chunks(size: int, lanes: int | None):
    """Slices that split ``size`` lanes into calls of ``lanes`` lanes (None: one call)."""
    step = size if lanes is None else lanes
    return [slice(s, s + step) for s in range(0, size, step)]


def uint_arrays(n: int, shape):
    return arrays(np.int64, shape, elements=st.integers(0, (1 << n) - 1))


def sint_arrays(n: int, shape):
    return arrays(np.int64, shape, elements=st.integers(-(1 << (n - 1)), (1 << (n - 1)) - 1))


# ---- and_bitcount_dot / conv2d / linear ------------------------------------------------------


@pytest.mark.parametrize("w_signed", [False, True])
@pytest.mark.parametrize("w_bits", SMALL)
@pytest.mark.parametrize("x_bits", SMALL)
def test_and_bitcount_dot_exhaustive(x_bits, w_bits, w_signed):
    # Every pair of length-2 vectors (x0, x1) . (w0, w1): one dot product per lane.
    xs = all_tuples(x_bits, 2).T                                  # [X, 2]
    w_lo = -(1 << (w_bits - 1)) if w_signed else 0
    w_vals = np.arange(w_lo, w_lo + (1 << w_bits))
    ws = np.array(list(itertools.product(w_vals, repeat=2)), dtype=np.int64)   # [W, 2]
    y, steps = pim.and_bitcount_dot(xs[:, None, :], ws[None, :, :], x_bits=x_bits,
                                    w_bits=w_bits, w_signed=w_signed)
    expected = xs[:, None, 0] * ws[None, :, 0] + xs[:, None, 1] * ws[None, :, 1]
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, expected)
    pairs = x_bits * w_bits
    assert steps == {"reads": 2 * pairs, "counts": 2 * pairs, "shifts": pairs,
                     "clears": pairs, "writes": 0}


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_and_bitcount_dot_wide(data):
    x_bits, w_bits = data.draw(WIDE), data.draw(WIDE)
    w_signed = data.draw(st.booleans())
    lanes, k = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 5))
    x = data.draw(uint_arrays(x_bits, (lanes, k)))
    w = data.draw(sint_arrays(w_bits, (lanes, k)) if w_signed else uint_arrays(w_bits, (lanes, k)))
    y, _ = pim.and_bitcount_dot(x, w, x_bits=x_bits, w_bits=w_bits, w_signed=w_signed)
    np.testing.assert_array_equal(y, (x * w).sum(axis=-1))


def test_and_bitcount_dot_extremes():
    x = np.full((3, 7), 255)
    w = np.full((3, 7), -128)
    y, _ = pim.and_bitcount_dot(x, w, x_bits=8, w_bits=8, w_signed=True)
    np.testing.assert_array_equal(y, np.full(3, 7 * 255 * -128))
    y, _ = pim.and_bitcount_dot(x, np.full((3, 7), 255), x_bits=8, w_bits=8)
    np.testing.assert_array_equal(y, np.full(3, 7 * 255 * 255))
    y, _ = pim.and_bitcount_dot(np.zeros((1, 4), np.uint8), np.full((1, 4), 127), x_bits=8,
                                w_bits=8, w_signed=True)
    np.testing.assert_array_equal(y, [0])


@pytest.mark.parametrize("shape,o,k,stride,padding", [
    ((2, 3, 7, 7), 4, 3, 1, 0),
    ((1, 2, 6, 5), 3, 3, 2, 1),
    ((2, 1, 5, 5), 2, 1, 1, 0),
    ((1, 4, 4, 4), 5, 2, 2, 2),
])
def test_and_bitcount_conv2d_equals_mul_conv2d(shape, o, k, stride, padding):
    x = RNG.integers(0, 256, shape).astype(np.uint8)
    w = RNG.integers(-128, 128, (o, shape[1], k, k)).astype(np.int8)
    y, steps = pim.and_bitcount_conv2d(x, w, stride=stride, padding=padding)
    ref = layers.mul_conv2d(x, w, stride=stride, padding=padding)
    assert y.shape == ref.shape
    np.testing.assert_array_equal(y, ref)
    assert steps["reads"] == 64 * shape[1] * k * k


def test_and_bitcount_conv2d_extremes():
    x = np.full((1, 2, 3, 3), 255, np.uint8)
    for fill in (-128, 127, 0):
        w = np.full((2, 2, 3, 3), fill, np.int8)
        y, _ = pim.and_bitcount_conv2d(x, w, padding=1)
        np.testing.assert_array_equal(y, layers.mul_conv2d(x, w, padding=1))


def test_and_bitcount_linear_equals_mul_linear():
    x = RNG.integers(0, 256, (5, 33)).astype(np.uint8)
    w = RNG.integers(-128, 128, (4, 33)).astype(np.int8)
    x[0] = 255
    w[0] = -128
    y, steps = pim.and_bitcount_linear(x, w)
    np.testing.assert_array_equal(y, layers.mul_linear(x, w))
    np.testing.assert_array_equal(y, x.astype(np.int64) @ w.astype(np.int64).T)
    assert steps["reads"] == 64 * 33 and steps["writes"] == 0


# ---- bitcounter_add ------------------------------------------------------------------------


@pytest.mark.parametrize("n,k,lanes", [
    (n, k, lanes) for n in SMALL for k in (1, 2, 3) for lanes in (1, 7, None)
    if n * k <= 12 and (lanes != 1 or n * k <= 8)            # 1-lane calls: at most 256 of them
])
def test_bitcounter_add_exhaustive(n, k, lanes):
    ops = all_tuples(n, k)
    out = np.concatenate([pim.bitcounter_add(ops[:, s], n)[0]
                          for s in chunks(ops.shape[1], lanes)])
    np.testing.assert_array_equal(out, ops.sum(axis=0))
    _, steps = pim.bitcounter_add(ops, n)
    rows = n + (k - 1).bit_length()
    assert steps == {"reads": k * n, "counts": k * n, "shifts": rows, "writes": rows,
                     "bits_written": rows * ops.shape[1]}


def test_bitcounter_add_fig8a_rows():
    # Fig. 8a: two 2-bit vectors, 3 rows reserved for the sum.
    _, steps = pim.bitcounter_add(np.array([[3, 1, 2], [3, 2, 0]]), 2)
    assert steps["writes"] == 3


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_bitcounter_add_wide(data):
    n = data.draw(WIDE)
    k, lanes = data.draw(st.integers(1, 12)), data.draw(st.integers(1, 8))
    ops = data.draw(uint_arrays(n, (k, lanes)))
    out, _ = pim.bitcounter_add(ops, n)
    np.testing.assert_array_equal(out, ops.sum(axis=0))


def test_bitcounter_add_corners():
    np.testing.assert_array_equal(pim.bitcounter_add(np.zeros((4, 3), np.uint8), 8)[0], [0] * 3)
    np.testing.assert_array_equal(pim.bitcounter_add(np.full((9, 2), 255), 8)[0], [9 * 255] * 2)
    np.testing.assert_array_equal(pim.bitcounter_add(np.array([[5]]), 3)[0], [5])


# ---- scale_multiply ------------------------------------------------------------------------


@pytest.mark.parametrize("lanes", [1, 5, None])
@pytest.mark.parametrize("scale_bits", SMALL)
@pytest.mark.parametrize("a_bits", SMALL)
def test_scale_multiply_exhaustive(a_bits, scale_bits, lanes):
    a = np.arange(1 << a_bits)
    for scale in range(1 << scale_bits):
        out = np.concatenate([pim.scale_multiply(a[s], scale, a_bits=a_bits,
                                                 scale_bits=scale_bits)[0]
                              for s in chunks(a.size, lanes)])
        np.testing.assert_array_equal(out, a * scale)
    _, steps = pim.scale_multiply(a, 1, a_bits=a_bits, scale_bits=scale_bits)
    rows = a_bits + scale_bits
    assert steps == {"reads": a_bits * scale_bits, "counts": a_bits * scale_bits,
                     "shifts": rows, "writes": rows, "bits_written": rows * a.size}


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_scale_multiply_wide(data):
    a_bits, scale_bits = data.draw(WIDE), data.draw(WIDE)
    a = data.draw(uint_arrays(a_bits, (data.draw(st.integers(1, 8)),)))
    scale = data.draw(st.integers(0, (1 << scale_bits) - 1))
    out, _ = pim.scale_multiply(a, scale, a_bits=a_bits, scale_bits=scale_bits)
    np.testing.assert_array_equal(out, a * scale)


def test_scale_multiply_corners():
    a = np.array([0, 65535, 1])
    np.testing.assert_array_equal(
        pim.scale_multiply(a, 65535, a_bits=16, scale_bits=16)[0], a * 65535)
    np.testing.assert_array_equal(
        pim.scale_multiply(a, 0, a_bits=16, scale_bits=16)[0], [0, 0, 0])
    np.testing.assert_array_equal(
        pim.scale_multiply(np.uint8(200), np.int64(3), a_bits=8, scale_bits=2)[0], 600)


# ---- comparison, max/min select, max pooling -----------------------------------------------


@pytest.mark.parametrize("lanes", [1, 6, None])
@pytest.mark.parametrize("n", SMALL)
def test_compare_and_select_exhaustive(n, lanes):
    a, b = all_pairs(n)
    parts = chunks(a.size, lanes)
    gt = np.concatenate([pim.msb_first_compare(a[s], b[s], n)[0] for s in parts])
    hi = np.concatenate([pim.max_select(a[s], b[s], n)[0] for s in parts])
    lo = np.concatenate([pim.min_select(a[s], b[s], n)[0] for s in parts])
    assert gt.dtype == np.uint8
    np.testing.assert_array_equal(gt, (a > b).astype(np.uint8))   # equal lanes: 0
    np.testing.assert_array_equal(hi, np.maximum(a, b))
    np.testing.assert_array_equal(lo, np.minimum(a, b))


def test_compare_steps_and_lane_shape():
    a, b = all_pairs(3)
    gt, steps = pim.msb_first_compare(a.reshape(8, 8), b.reshape(8, 8), 3)
    np.testing.assert_array_equal(gt, (a > b).reshape(8, 8))
    assert steps == {"reads": 18, "counts": 15, "clears": 6, "buffer_writes": 9, "writes": 8,
                     "bits_written": 8 * 64}
    _, one = pim.msb_first_compare(a[:1], b[:1], 3)
    assert {k: v for k, v in one.items() if k != "bits_written"} == \
        {k: v for k, v in steps.items() if k != "bits_written"}
    _, sel = pim.max_select(a, b, 3)
    assert sel["writes"] == 8 + 3 and sel["reads"] == 18 + 1 + 6 and sel["buffer_writes"] == 11


@pytest.mark.parametrize("n,k", [(1, 4), (2, 3), (3, 3), (4, 3), (4, 1)])
def test_max_pool_compare_exhaustive(n, k):
    vals = all_tuples(n, k)
    out, steps = pim.max_pool_compare(vals, n)
    np.testing.assert_array_equal(out, vals.max(axis=0))
    _, one_round = pim.max_select(vals[0], vals[0], n)
    assert steps == {key: (k - 1) * v for key, v in one_round.items()}


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_compare_select_pool_wide(data):
    n = data.draw(WIDE)
    lanes = data.draw(st.integers(1, 10))
    vals = data.draw(uint_arrays(n, (data.draw(st.integers(1, 5)), lanes)))
    b = data.draw(uint_arrays(n, (lanes,)))
    a = vals[0]
    np.testing.assert_array_equal(pim.msb_first_compare(a, b, n)[0], (a > b).astype(np.uint8))
    np.testing.assert_array_equal(pim.max_select(a, b, n)[0], np.maximum(a, b))
    np.testing.assert_array_equal(pim.min_select(a, b, n)[0], np.minimum(a, b))
    np.testing.assert_array_equal(pim.max_pool_compare(vals, n)[0], vals.max(axis=0))


def test_compare_corners():
    top = (1 << 16) - 1
    a = np.array([0, top, top, 0, 32768])
    b = np.array([0, top, 0, top, 32767])
    np.testing.assert_array_equal(pim.msb_first_compare(a, b, 16)[0], [0, 0, 1, 0, 1])
    np.testing.assert_array_equal(pim.max_select(a, b, 16)[0], np.maximum(a, b))
    np.testing.assert_array_equal(pim.min_select(a, b, 16)[0], np.minimum(a, b))
    np.testing.assert_array_equal(pim.max_pool_compare(np.zeros((3, 1), np.uint8), 8)[0], [0])


# ---- FA/FS add and subtract --------------------------------------------------------------


@pytest.mark.parametrize("lanes", [1, 5, None])
@pytest.mark.parametrize("n", SMALL)
def test_fa_fs_exhaustive(n, lanes):
    a, b = all_pairs(n)
    parts = chunks(a.size, lanes)
    total = np.concatenate([pim.fa_fs_add(a[s], b[s], n)[0] for s in parts])
    subs = [pim.fa_fs_sub(a[s], b[s], n) for s in parts]
    diff = np.concatenate([d for d, _, _ in subs])
    borrow = np.concatenate([bo for _, bo, _ in subs]).astype(np.int64)
    np.testing.assert_array_equal(total, a + b)
    np.testing.assert_array_equal(diff, (a - b) % (1 << n))
    np.testing.assert_array_equal(borrow, (a < b).astype(np.int64))
    np.testing.assert_array_equal(a - b, diff - borrow * (1 << n))
    for steps in (pim.fa_fs_add(a, b, n)[1], pim.fa_fs_sub(a, b, n)[2]):
        assert steps == {"reads": n, "writes": n, "cycles": 2 * n,
                         "bits_written": (n + 1) * a.size}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_fa_fs_wide(data):
    n = data.draw(WIDE)
    lanes = data.draw(st.integers(1, 16))
    a, b = data.draw(uint_arrays(n, (lanes,))), data.draw(uint_arrays(n, (lanes,)))
    np.testing.assert_array_equal(pim.fa_fs_add(a, b, n)[0], a + b)
    diff, borrow, _ = pim.fa_fs_sub(a, b, n)
    np.testing.assert_array_equal(a - b, diff - borrow.astype(np.int64) * (1 << n))
    assert ((diff >= 0) & (diff < (1 << n))).all()


@pytest.mark.parametrize("n", SMALL)
def test_fa_fs_addsub_exhaustive(n):
    # every (a, b) pair, each once added and once subtracted, lanes mixing both signs
    a, b = all_pairs(n)
    a, b = np.concatenate([a, a]), np.concatenate([b, b])
    sub = np.repeat(np.array([0, 1], np.uint8), a.size // 2)
    got, steps = pim.fa_fs_addsub(a, b, sub, n)
    np.testing.assert_array_equal(got, np.where(sub == 1, a - b, a + b) % (1 << n))
    assert steps == {"reads": n, "writes": n, "cycles": 2 * n, "bits_written": n * a.size}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_fa_fs_addsub_wide_accumulates(data):
    # the binary-weight convolver: acc + sum_k s_k x_k, one add/sub per term, == integers
    n = data.draw(WIDE)
    lanes = data.draw(st.integers(1, 16))
    terms = data.draw(st.integers(1, 9))
    acc0 = data.draw(uint_arrays(n, (lanes,)))
    acc = acc0
    want = acc0.astype(np.int64)
    for _ in range(terms):
        x = data.draw(uint_arrays(n - 2, (lanes,))).astype(np.int64)
        s = data.draw(arrays(np.uint8, (lanes,), elements=st.integers(0, 1)))
        acc, steps = pim.fa_fs_addsub(acc, x, s, n)
        want = want + np.where(s == 1, -x, x)
        assert steps["cycles"] == 2 * n
    np.testing.assert_array_equal(acc, want % (1 << n))


def test_fa_fs_addsub_refuses_bad_sign():
    with pytest.raises(ValueError, match="subtract must hold only bits"):
        pim.fa_fs_addsub(np.array([1]), np.array([1]), np.array([2]), 4)


def test_fa_fs_corners():
    top = np.array([(1 << 16) - 1])
    np.testing.assert_array_equal(pim.fa_fs_add(top, top, 16)[0], 2 * top)
    d, bo, _ = pim.fa_fs_sub(np.array([0]), top, 16)
    assert (int(d[0]), int(bo[0])) == (1, 1)
    d, bo, _ = pim.fa_fs_sub(np.zeros(3, np.uint8), np.zeros(3, np.uint8), 8)
    np.testing.assert_array_equal(d, [0, 0, 0])
    np.testing.assert_array_equal(bo, [0, 0, 0])


# ---- abs_diff, l1_fa, zero skipping ---------------------------------------------------------


@pytest.mark.parametrize("lanes", [1, 9, None])
@pytest.mark.parametrize("n", SMALL)
def test_abs_diff_exhaustive(n, lanes):
    x, w = all_pairs(n)
    out = np.concatenate([pim.abs_diff(x[s], w[s], n)[0] for s in chunks(x.size, lanes)])
    np.testing.assert_array_equal(out, np.abs(x - w))
    _, steps = pim.abs_diff(x, w, n)
    assert steps == {"reads": 2 * n, "writes": n, "cycles": 3 * n, "bits_written": n * x.size}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_abs_diff_wide(data):
    n = data.draw(WIDE)
    lanes = data.draw(st.integers(1, 16))
    x, w = data.draw(uint_arrays(n, (lanes,))), data.draw(uint_arrays(n, (lanes,)))
    np.testing.assert_array_equal(pim.abs_diff(x, w, n)[0], np.abs(x - w))


def vector_pairs(n: int, k: int):
    """Every pair of k-term n-bit vectors, as x, w of shape [pairs, k]."""
    v = all_tuples(n, k).T
    x = np.repeat(v, len(v), axis=0)
    w = np.tile(v, (len(v), 1))
    return x, w


@pytest.mark.parametrize("n,k", [(1, 3), (2, 2), (3, 2), (4, 1)])
def test_l1_routes_exhaustive(n, k):
    x, w = vector_pairs(n, k)
    expected = np.abs(x - w).sum(axis=-1)
    acc_bits = (k * ((1 << n) - 1)).bit_length()                 # the narrowest that holds it
    l1, steps_fa = pim.l1_fa(x, w, n, acc_bits)
    np.testing.assert_array_equal(l1, expected)
    assert steps_fa["writes"] == k * (n + acc_bits)
    assert steps_fa["cycles"] == k * (3 * n + 2 * acc_bits)
    assert steps_fa["bits_written"] == k * (n + acc_bits) * len(x)
    l1, steps_wf = pim.l1_write_free(x, w, n)
    np.testing.assert_array_equal(l1, expected)
    assert steps_wf == {"reads": n, "writes": 0, "bits_written": 0, "popcounts": 3 * n,
                        "shifts": n, "cycles": n}
    l1, skipped, computed = pim.zero_skip_l1(x, w, n=n)
    np.testing.assert_array_equal(l1, expected)
    np.testing.assert_array_equal(skipped, ((x == 0) | (w == 0)).sum(axis=-1))
    np.testing.assert_array_equal(skipped + computed, np.full(len(x), k))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_l1_routes_wide(data):
    n = data.draw(WIDE)
    outs, k = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 40))
    x = data.draw(uint_arrays(n, (outs, k)))
    w = data.draw(uint_arrays(n, (outs, k)))
    expected = np.abs(x - w).sum(axis=-1)
    np.testing.assert_array_equal(pim.l1_write_free(x, w, n)[0], expected)
    l1, skipped, computed = pim.zero_skip_l1(x, w, n=n)
    np.testing.assert_array_equal(l1, expected)
    np.testing.assert_array_equal(skipped, ((x == 0) | (w == 0)).sum(axis=-1))
    assert (skipped + computed == k).all()
    kk = min(k, 6)                                                  # l1_fa is term-serial
    np.testing.assert_array_equal(pim.l1_fa(x[:, :kk], w[:, :kk], n, 24)[0],
                                  np.abs(x[:, :kk] - w[:, :kk]).sum(axis=-1))


def test_l1_broadcast_and_corners():
    x = RNG.integers(0, 256, (3, 1, 10))
    w = RNG.integers(0, 256, (1, 4, 10))
    expected = np.abs(x - w).sum(axis=-1)
    assert expected.shape == (3, 4)
    np.testing.assert_array_equal(pim.l1_write_free(x, w, 8)[0], expected)
    np.testing.assert_array_equal(pim.l1_fa(x, w, 8, 12)[0], expected)
    np.testing.assert_array_equal(pim.zero_skip_l1(x, w)[0], expected)
    top = np.full((1, 16), 255)
    zero = np.zeros((1, 16), np.uint8)
    for a, b in ((top, zero), (zero, top), (top, top), (zero, zero)):
        ref = np.abs(a.astype(np.int64) - b).sum(axis=-1)
        np.testing.assert_array_equal(pim.l1_write_free(a, b, 8)[0], ref)
        np.testing.assert_array_equal(pim.l1_fa(a, b, 8, 12)[0], ref)
        np.testing.assert_array_equal(pim.zero_skip_l1(a, b)[0], ref)
    _, skipped, computed = pim.zero_skip_l1(zero, zero)
    assert (int(skipped[0]), int(computed[0])) == (16, 0)
    _, skipped, computed = pim.zero_skip_l1(top, top)
    assert (int(skipped[0]), int(computed[0])) == (0, 16)
    np.testing.assert_array_equal(pim.l1_write_free([7], [2], 3)[0], 5)   # single lane


def test_zero_skip_sparse():
    x = RNG.integers(0, 256, (5, 64)) * (RNG.random((5, 64)) < 0.5)
    w = RNG.integers(0, 256, (5, 64)) * (RNG.random((5, 64)) < 0.7)
    l1, skipped, computed = pim.zero_skip_l1(x, w)
    np.testing.assert_array_equal(l1, np.abs(x - w).sum(axis=-1))
    np.testing.assert_array_equal(computed, ((x != 0) & (w != 0)).sum(axis=-1))
    assert skipped.dtype == np.int64 and (skipped > 0).all()


# ---- min_lane_step ---------------------------------------------------------------------------


@pytest.mark.parametrize("n", SMALL)
def test_min_lane_step_gives_min_and_flags(n):
    x, w = all_pairs(n)
    decided = np.zeros(x.size, np.uint8)
    x_is_min = np.zeros(x.size, np.uint8)
    mins = np.zeros(x.size, np.int64)
    for b in range(n - 1, -1, -1):
        min_b, decided, x_is_min = pim.min_lane_step((x >> b) & 1, (w >> b) & 1, decided,
                                                     x_is_min)
        mins += min_b.astype(np.int64) << b
    np.testing.assert_array_equal(mins, np.minimum(x, w))
    np.testing.assert_array_equal(decided, (x != w).astype(np.uint8))
    np.testing.assert_array_equal(x_is_min, (x < w).astype(np.uint8))


def test_min_lane_step_truth_table():
    # x_b, w_b, decided, x_is_min -> min_b, decided', x_is_min'
    table = {
        (0, 0, 0, 0): (0, 0, 0), (1, 1, 0, 0): (1, 0, 0),
        (0, 1, 0, 0): (0, 1, 1), (1, 0, 0, 0): (0, 1, 0),
        (0, 1, 1, 1): (0, 1, 1), (1, 0, 1, 1): (1, 1, 1),
        (0, 1, 1, 0): (1, 1, 0), (1, 0, 1, 0): (0, 1, 0),
        (1, 1, 1, 0): (1, 1, 0), (0, 0, 1, 1): (0, 1, 1),
    }
    ins = np.array(list(table), dtype=np.uint8).T
    outs = np.array(list(table.values()), dtype=np.uint8).T
    got = pim.min_lane_step(*ins)
    for g, e in zip(got, outs, strict=True):
        assert g.dtype == np.uint8
        np.testing.assert_array_equal(g, e)


# ---- the write-free route beats the FA route on writes, not on correctness ------------------


def test_write_free_spends_no_writes_and_fewer_reads():
    x = RNG.integers(0, 256, (2, 32))
    w = RNG.integers(0, 256, (2, 32))
    l1_a, s_fa = pim.l1_fa(x, w, 8, 14)
    l1_b, s_wf = pim.l1_write_free(x, w, 8)
    np.testing.assert_array_equal(l1_a, l1_b)
    assert s_wf["writes"] == 0 and s_fa["writes"] == 32 * (8 + 14)
    assert s_wf["reads"] == 8 < s_fa["reads"]


# ---- error paths ---------------------------------------------------------------------------

U4 = np.array([1, 2])


def _err(exc, msg, fn, *args, **kwargs):
    return pytest.param(exc, msg, fn, args, kwargs, id=f"{fn.__name__}-{msg[:30]}")


ERRORS = [
    _err(TypeError, "n must be an int, not 2.0", pim.fa_fs_add, U4, U4, 2.0),
    _err(TypeError, "n must be an int, not True", pim.abs_diff, U4, U4, True),
    _err(ValueError, "n must be an int in [1, 62], not 0", pim.fa_fs_sub, U4, U4, 0),
    _err(ValueError, "n must be an int in [1, 62], not 63", pim.msb_first_compare, U4, U4, 63),
    _err(TypeError, "a must be an integer array, not dtype float64", pim.fa_fs_add,
         np.array([1.0, 2.0]), U4, 4),
    _err(ValueError, "b must fit 2 unsigned bits [0, 3], found values in [1, 4]",
         pim.max_select, U4, np.array([1, 4]), 2),
    _err(ValueError, "x must fit 3 unsigned bits [0, 7], found values in [-1, 2]",
         pim.abs_diff, np.array([-1, 2]), U4, 3),
    _err(ValueError, "a and b must have the same shape (one element per lane), not (2,) and "
         "(3,)", pim.min_select, U4, np.array([1, 2, 3]), 4),
    _err(ValueError, "x and w must have the same shape", pim.abs_diff, U4, np.array([1]), 4),
    # and_bitcount_dot
    _err(TypeError, "x_bits must be an int, not None", pim.and_bitcount_dot, U4, U4,
         x_bits=None, w_bits=4),
    _err(ValueError, "w_bits must be an int in [1, 62], not 0", pim.and_bitcount_dot, U4, U4,
         x_bits=4, w_bits=0),
    _err(TypeError, "w_signed must be a bool, not 1", pim.and_bitcount_dot, U4, U4, x_bits=4,
         w_bits=4, w_signed=1),
    _err(ValueError, "w must fit 2 signed bits [-2, 1], found values in [1, 2]",
         pim.and_bitcount_dot, U4, U4, x_bits=2, w_bits=2, w_signed=True),
    _err(ValueError, "x_bits + w_bits + bit_length(K) must be <= 62, not 31 + 31 + 2 (K = 2)",
         pim.and_bitcount_dot, U4, U4, x_bits=31, w_bits=31),
    _err(ValueError, "x must have at least one axis [..., K], not shape ()",
         pim.and_bitcount_dot, np.int64(1), U4, x_bits=4, w_bits=4),
    _err(ValueError, "x and w must have the same last axis K, not shapes (2,) and (3,)",
         pim.and_bitcount_dot, U4, np.array([1, 2, 3]), x_bits=4, w_bits=4),
    _err(ValueError, "the leading axes of x (2, 2) and w (3, 2) do not broadcast",
         pim.l1_write_free, np.ones((2, 2), np.int64), np.ones((3, 2), np.int64), 4),
    _err(TypeError, "weight must have dtype int8, not uint8", pim.and_bitcount_conv2d,
         np.zeros((1, 1, 3, 3), np.uint8), np.zeros((1, 1, 3, 3), np.uint8)),
    _err(ValueError, "x has 3 features but weight expects 2", pim.and_bitcount_linear,
         np.zeros((1, 3), np.uint8), np.zeros((1, 2), np.int8)),
    # bitcounter_add
    _err(TypeError, "n_bits must be an int, not '8'", pim.bitcounter_add, U4[None], "8"),
    _err(ValueError, "operands must have shape [k, ...] with k >= 1 operands, not shape (0, 3)",
         pim.bitcounter_add, np.zeros((0, 3), np.int64), 4),
    _err(ValueError, "operands must have shape [k, ...] with k >= 1 operands, not shape ()",
         pim.bitcounter_add, np.int64(3), 4),
    _err(ValueError, "n_bits + bit_length(k - 1) must be <= 62, not 63 (n_bits 62, k 2)",
         pim.bitcounter_add, np.zeros((2, 1), np.int64), 62),
    _err(ValueError, "operands must fit 2 unsigned bits [0, 3], found values in [1, 5]",
         pim.bitcounter_add, np.array([[1, 5]]), 2),
    # scale_multiply
    _err(TypeError, "scale must be an int, not 1.5", pim.scale_multiply, U4, 1.5, a_bits=4,
         scale_bits=4),
    _err(TypeError, "scale must be an int, not True", pim.scale_multiply, U4, True, a_bits=4,
         scale_bits=4),
    _err(ValueError, "scale must be in [0, 15] (4 unsigned bits), not 16", pim.scale_multiply,
         U4, 16, a_bits=4, scale_bits=4),
    _err(ValueError, "scale must be in [0, 15] (4 unsigned bits), not -1", pim.scale_multiply,
         U4, -1, a_bits=4, scale_bits=4),
    _err(ValueError, "a_bits + scale_bits must be <= 62, not 63", pim.scale_multiply, U4, 1,
         a_bits=32, scale_bits=31),
    _err(ValueError, "a_bits must be an int in [1, 62], not -3", pim.scale_multiply, U4, 1,
         a_bits=-3, scale_bits=4),
    # max_pool_compare
    _err(ValueError, "values must have shape [k, ...] with k >= 1, not shape (0, 2)",
         pim.max_pool_compare, np.zeros((0, 2), np.int64), 4),
    _err(TypeError, "values must be an integer array, not dtype bool", pim.max_pool_compare,
         np.zeros((2, 2), bool), 4),
    # l1 routes
    _err(ValueError, "acc_bits must be >= 5 to hold 2 terms of 4 bits, not 4", pim.l1_fa,
         U4, U4, 4, 4),
    _err(TypeError, "acc_bits must be an int, not 16.0", pim.l1_fa, U4, U4, 4, 16.0),
    _err(ValueError, "n + 1 + bit_length(K) must be <= 62, not 61 + 1 + 2 (K = 2)",
         pim.l1_write_free, U4, U4, 61),
    _err(ValueError, "n + 1 + bit_length(K) must be <= 62, not 61 + 1 + 2 (K = 2)",
         pim.zero_skip_l1, U4, U4, n=61),
    _err(TypeError, "n must be an int, not None", pim.zero_skip_l1, U4, U4, n=None),
    _err(ValueError, "w must fit 8 unsigned bits [0, 255], found values in [0, 256]",
         pim.zero_skip_l1, U4, np.array([0, 256])),
    # min_lane_step (the primitives' bit checks)
    _err(ValueError, "decided must hold only bits 0 and 1, found values in [0, 2]",
         pim.min_lane_step, [0, 1], [1, 1], [0, 2], [0, 0]),
    _err(TypeError, "x_is_min must hold integer bits 0/1, not dtype float64",
         pim.min_lane_step, [0, 1], [1, 1], [0, 0], [0.0, 1.0]),
]


@pytest.mark.parametrize("exc,msg,fn,args,kwargs", ERRORS)
def test_error_messages(exc, msg, fn, args, kwargs):
    with pytest.raises(exc, match=re.escape(msg)):
        fn(*args, **kwargs)


def test_golden_pim_imports_only_numpy():
    import ast
    import pathlib

    tree = ast.parse(pathlib.Path(pim.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            roots.add(node.module.split(".")[0])
    assert roots <= {"__future__", "numpy"}
