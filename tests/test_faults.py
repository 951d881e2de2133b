"""Sensing-fault model for golden integer inference."""

import math

import numpy as np
import pytest

from golden import datasets
from golden.model import (
    COMPUTE_KINDS, accuracy, bundled_model_path, infer_int, layer_forward_int, load_model,
)
from sim.hw.faults import flip_bits, infer_int_with_faults


@pytest.fixture(scope="module")
def model():
    return load_model(bundled_model_path("digits_addernet"))


@pytest.fixture(scope="module")
def digits():
    try:
        return datasets.load_digits("test")
    except datasets.DatasetError as e:          # pragma: no cover - depends on the install
        pytest.skip(f"digits test set not installed: {e}")


def _popcount(a):
    return int(np.unpackbits(a.view(np.uint8)).sum())


# -- flip_bits ---------------------------------------------------------------------------------

def test_flip_half_the_bits():
    n_elem, bits = 50_000, 8
    v = np.random.default_rng(5).integers(0, 256, n_elem, dtype=np.uint8)
    out = flip_bits(v, bits, 0.5, np.random.default_rng(6))
    n = n_elem * bits
    flipped = _popcount(out ^ v)
    assert abs(flipped - n / 2) <= 5 * math.sqrt(n / 4)
    per_bit = np.unpackbits((out ^ v)[:, None], axis=1, bitorder="little").sum(axis=0)
    assert np.all(np.abs(per_bit - n_elem / 2) <= 5 * math.sqrt(n_elem / 4))


def test_flip_rate_small_ber():
    n, p = 400_000, 0.01
    v = np.zeros(n // 8, dtype=np.int8)
    out = flip_bits(v, 8, p, np.random.default_rng(1))
    assert out.dtype == np.int8
    assert abs(_popcount(out) - n * p) <= 5 * math.sqrt(n * p * (1 - p))


def test_flip_edges_and_dtypes():
    v = np.arange(-128, 128, dtype=np.int8)
    keep = v.copy()
    assert np.array_equal(flip_bits(v, 8, 0.0, np.random.default_rng(0)), v)
    assert np.array_equal(flip_bits(v, 8, 1.0, np.random.default_rng(0)), ~v)
    low3 = flip_bits(v, 3, 1.0, np.random.default_rng(0))
    assert low3.dtype == np.int8 and np.array_equal(low3, v ^ np.int8(0b111))
    some = flip_bits(v.view(np.uint8), 3, 0.5, np.random.default_rng(0))
    assert np.array_equal(some & 0xF8, v.view(np.uint8) & 0xF8)        # high bits untouched
    assert np.array_equal(v, keep)                                     # input not modified


def test_flip_same_seed_same_flips_and_nested():
    v = np.zeros(10_000, dtype=np.uint8)
    a = flip_bits(v, 8, 0.1, np.random.default_rng(3))
    b = flip_bits(v, 8, 0.1, np.random.default_rng(3))
    c = flip_bits(v, 8, 0.3, np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert np.array_equal(a & c, a)         # the flips at 0.1 are a subset of those at 0.3


@pytest.mark.parametrize("args,exc,match", [
    ((np.zeros(4, np.int16), 8, 0.1), TypeError, r"values must be a uint8 or int8 .* int16"),
    ((np.zeros(4, np.uint8), 9, 0.1), ValueError, r"bits must be an int in \[1, 8\], not 9"),
    ((np.zeros(4, np.uint8), 0, 0.1), ValueError, r"bits must be an int in \[1, 8\], not 0"),
    ((np.zeros(4, np.uint8), 8, -0.1), ValueError, r"ber must be a probability in \[0, 1\], "
                                                   r"not -0.1"),
    ((np.zeros(4, np.uint8), 8, 1.5), ValueError, r"ber must be .* not 1.5"),
])
def test_flip_bad_inputs(args, exc, match):
    with pytest.raises(exc, match=match):
        flip_bits(*args, np.random.default_rng(0))


def test_flip_bad_rng():
    with pytest.raises(TypeError, match=r"rng must be a numpy.random.Generator, not int"):
        flip_bits(np.zeros(4, np.uint8), 8, 0.1, 3)


# -- inference ---------------------------------------------------------------------------------

def test_ber_zero_is_exact(model, digits):
    x, _ = digits
    ref = infer_int(model, x)
    assert np.array_equal(infer_int_with_faults(model, x, 0.0, 0), ref)
    assert np.array_equal(infer_int_with_faults(model, x, 0, 9, where=("weights",)), ref)
    assert np.array_equal(infer_int_with_faults(model, x, 0.5, 9, where=()), ref)


def test_weights_only_at_ber_one_inverts_every_weight(model, digits):
    x = digits[0][:40]
    cur = x
    for ly in model.layers:                 # the expectation, built by hand
        if ly.kind in COMPUTE_KINDS:
            ly = type(ly)(ly.kind, ly.output, {**ly.params, "weight": ~ly.params["weight"]},
                          ly.float_params)
        cur = layer_forward_int(ly, cur)
    got = infer_int_with_faults(model, x, 1.0, 4, where=("weights",))
    assert np.array_equal(got, cur)


def test_same_seed_same_output(model, digits):
    x = digits[0][:100]
    a = infer_int_with_faults(model, x, 0.02, 17)
    b = infer_int_with_faults(model, x, 0.02, 17)
    c = infer_int_with_faults(model, x, 0.02, 18)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("seed", [0, 1])
def test_accuracy_degrades_with_ber(model, digits, seed):
    x, y = digits
    acc = [accuracy(infer_int_with_faults(model, x, ber, seed), y)
           for ber in (0.0, 1e-3, 1e-2, 1e-1)]
    assert acc[0] == accuracy(infer_int(model, x), y) > 0.95
    assert acc[0] >= acc[1] >= acc[2] >= acc[3]
    assert acc[2] <= acc[0] - 0.2          # 1% flipped bits ruin the 8-bit network
    assert acc[3] < 0.3                    # 10%: near chance (10 classes)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(ber=-0.5), ValueError, r"ber must be a probability in \[0, 1\], not -0.5"),
    (dict(seed=-2), ValueError, r"seed must be an int >= 0, not -2"),
    (dict(where=("bias",)), ValueError, r"where must be a tuple of names from weights, "
                                        r"activations, not \('bias',\)"),
    (dict(where="weights"), ValueError, r"where must be .* not 'weights'"),
    (dict(x=np.zeros((2, 1, 8, 8), np.float32)), TypeError, r"x must be a uint8 .* float32"),
    (dict(x=np.zeros((2, 1, 4, 4), np.uint8)), ValueError, r"x must have shape \[N, 1, 8, 8\]"),
])
def test_inference_bad_inputs(model, kwargs, exc, match):
    args = dict(x=np.zeros((2, 1, 8, 8), np.uint8), ber=0.1, seed=0, where=("weights",))
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        infer_int_with_faults(model, args["x"], args["ber"], args["seed"], where=args["where"])


def test_ber_zero_is_exact_on_a_residual_model():
    """A model with a residual ``add`` (format 3): the shortcut is followed as golden follows
    it, so ber 0 gives exactly golden's inference, and faults still run."""
    from tests.layer_models import random_model
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (2, 1, 8, 8)).astype(np.uint8)
    model = random_model([("conv", "mul_conv2d", 4, 3, 1, 1), ("conv", "adder_conv2d", 4, 3, 1, 1),
                          ("add", 0), ("gap",), ("flatten",), ("linear", "mul_linear", 10)],
                         (1, 8, 8), rng, x[:1])
    assert np.array_equal(infer_int_with_faults(model, x, 0.0, seed=1), infer_int(model, x))
    y = infer_int_with_faults(model, x, 0.05, seed=1)
    assert y.shape == (2, 10)
