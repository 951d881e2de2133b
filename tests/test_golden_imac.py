"""golden.imac: the fixed-point IMAC circuit against float64 physics and plain integer math."""

import math
import re

import numpy as np
import pytest

from golden import imac
from golden.imac import CIRCUIT, FIXED, ImacCircuit

# IMAC-Sim's MLP (LeNet's FC part) and its amplifier gains.
NODES = (400, 120, 84, 10)
GAINS = (30, 30, 10)

# Ideal conductance codes, by hand: 1 / 5 kOhm = 200000 nS, 1 / 15 kOhm = 66666.67 -> 66667 nS.
G_LOW_CODE, G_HIGH_CODE = 200_000, 66_667
DELTA_CODE = G_LOW_CODE - G_HIGH_CODE      # I+ - I- of one synapse per unit of w * x


def _rng(seed):
    return np.random.default_rng(seed)


def _weights(rng, n_in, n_out):
    return rng.choice(np.array([-1, 1]), size=(n_in, n_out))


def _layer_inputs(rng, batch, n_in, first):
    """Input codes of a layer: binarized +-x_max for the first, neuron codes 0..x_max after."""
    if first:
        return rng.choice(np.array([-1, 1]), size=(batch, n_in)) * FIXED.x_max
    return rng.integers(0, FIXED.x_max + 1, size=(batch, n_in))


# ----------------------------------------------------------------------------------------------
# Fixed point against float64 physics

def _error_bound_codes(g_pos, g_neg, gain, n_partitions, circuit=CIRCUIT, fmt=FIXED):
    """Worst-case |y_fixed - y_float| of one layer in output codes, both fed the same inputs.

    Derivation, stage by stage (volts unless stated; ``a`` = amplifier LSB, ``rail`` = 1024):

    1. conductances: each device's code is ``g / g_lsb`` rounded, off by <= ``g_lsb / 2``; a
       row's I+ - I- is off by <= ``|x| g_lsb`` and a partition of ``r`` rows at full-scale
       drive by ``dI <= r v_supply g_lsb``; the summed codes themselves are exact.
    2. amplifier: ``mult / 2**shift`` is the exact factor ``k`` rounded, off by
       <= ``2**-(shift+1)`` codes per current code, at most ``|i|max`` current codes; then a
       round half up (<= a/2). The float amplifier multiplies ``dI`` by ``gain R_in``.
       Clipping both to the same rails never increases a difference.
    3. mean of P partitions: the mean of the per-partition errors is bounded by their bound;
       the reciprocal ``round(2**16 / P)`` is off by <= 1/2, i.e. ``|sum| 2**-17`` codes with
       ``|sum| <= P rail``; then a round half up (<= a/2). The final clip to +-rail keeps the
       float mean (within +-v_supply) and so cannot increase the error.
    4. neuron: the logistic's slope is at most ``v_supply / (4 scale)`` per volt, the table
       entry is rounded (<= 1/2 output code).
    """
    r = circuit.xbar_rows
    a = circuit.v_supply * fmt.amp_lsb_v
    rail = 1 << fmt.amp_frac_bits
    i_lsb = circuit.v_supply * fmt.v_lsb * fmt.g_lsb_s
    d_i = r * circuit.v_supply * fmt.g_lsb_s
    g_diff_max = np.abs(g_pos - g_neg).max() / fmt.g_lsb_s + 1          # codes, rounded up
    i_code_max = r * fmt.x_max * g_diff_max
    e_amp = gain * circuit.amp_input_ohm * d_i + i_code_max * 2.0 ** -(fmt.amp_shift + 1) * a
    e_amp += a / 2
    assert i_lsb > 0
    e_mean = e_amp + n_partitions * rail * 2.0 ** -(fmt.mean_shift + 1) * a + a / 2
    slope = circuit.v_supply / (4 * circuit.neuron_scale_v)
    return 0.5 + fmt.x_max * slope * e_mean / circuit.v_supply


@pytest.mark.parametrize("sigma", [0.0, 0.05, 0.2])
@pytest.mark.parametrize("layer", [0, 1, 2])
def test_fixed_vs_float_error_bounded_per_layer(layer, sigma):
    """Each layer of the 400-120-84-10 MLP, fixed and float fed the same input voltages."""
    rng = _rng(100 + 10 * layer + int(sigma * 100))
    n_in, n_out = NODES[layer], NODES[layer + 1]
    w = _weights(rng, n_in + 1, n_out)                   # weights + bias row
    x = _layer_inputs(rng, 64, n_in, first=layer == 0)
    x = np.hstack([x, np.full((64, 1), FIXED.x_max)])    # the bias row at +v_supply
    g_pos, g_neg = imac.draw_conductances(w, sigma=sigma, seed=7)
    y_fixed = imac.layer_fixed(x, imac.quantize_conductances(g_pos),
                               imac.quantize_conductances(g_neg), GAINS[layer])
    y_float = imac.layer_float(x * (CIRCUIT.v_supply / FIXED.x_max), g_pos, g_neg, GAINS[layer])
    err = np.abs(y_fixed - y_float * (FIXED.x_max / CIRCUIT.v_supply)).max()
    bound = _error_bound_codes(g_pos, g_neg, GAINS[layer], math.ceil((n_in + 1) / 32))
    assert bound < 3.0          # the bound says something: under 3 of 255 output codes
    assert err <= bound, f"layer {layer}: error {err:.3f} codes > bound {bound:.3f}"


def test_fixed_vs_float_error_reaches_the_rounding_floor():
    """The fixed output is the float output rounded, not a coarser curve: over many neurons
    the largest error exceeds a third of an LSB (a test that could pass with a broken float
    reference equal to the fixed one would see 0)."""
    rng = _rng(5)
    w = _weights(rng, 32, 32)
    x = _layer_inputs(rng, 256, 32, first=False)
    g_pos, g_neg = imac.draw_conductances(w, sigma=0.05, seed=1)
    y_fixed = imac.layer_fixed(x, imac.quantize_conductances(g_pos),
                               imac.quantize_conductances(g_neg), 10)
    y_float = imac.layer_float(x / FIXED.x_max, g_pos, g_neg, 10)
    err = np.abs(y_fixed - y_float * FIXED.x_max)
    assert 1 / 3 < err.max() <= 1.5


# ----------------------------------------------------------------------------------------------
# Ideal devices against integer math

def test_ideal_conductance_codes():
    g_pos, g_neg = imac.draw_conductances(np.array([1, -1]))
    assert imac.quantize_conductances(g_pos).tolist() == [G_LOW_CODE, G_HIGH_CODE]
    assert imac.quantize_conductances(g_neg).tolist() == [G_HIGH_CODE, G_LOW_CODE]


@pytest.mark.parametrize("first", [True, False])
def test_ideal_partition_currents_are_the_integer_dot_product(first):
    """I+ - I- of every partition == DELTA * (x . w) over its rows, numpy integer matmul."""
    rng = _rng(11 + first)
    n_in, n_out = 401, 120
    w = _weights(rng, n_in, n_out)
    x = _layer_inputs(rng, 16, n_in, first)
    g_pos, g_neg = (imac.quantize_conductances(g) for g in imac.draw_conductances(w))
    _, i, amp = imac.layer_fixed(x, g_pos, g_neg, 30, return_stages=True)
    assert i.shape == (16, 13, n_out)
    for p in range(13):
        rows = slice(32 * p, 32 * (p + 1))
        dot = x[:, rows].astype(np.int64) @ w[rows].astype(np.int64)
        assert np.array_equal(i[:, p], DELTA_CODE * dot)
        assert np.array_equal(np.sign(amp[:, p]), np.sign(dot))


def test_ideal_single_partition_output_is_sign_consistent():
    """One partition, no bias: the neuron output is above mid-scale exactly when x . w > 0,
    at mid-scale (128 = round(255 / 2)) when it is 0, below when negative."""
    rng = _rng(3)
    w = _weights(rng, 32, 32)
    x = np.vstack([_layer_inputs(rng, 200, 32, first=False),
                   _layer_inputs(rng, 200, 32, first=True)])
    g_pos, g_neg = (imac.quantize_conductances(g) for g in imac.draw_conductances(w))
    y = imac.layer_fixed(x, g_pos, g_neg, 30)
    dot = x.astype(np.int64) @ w.astype(np.int64)
    assert (dot == 0).any() and (dot > 0).any() and (dot < 0).any()
    assert np.array_equal(np.sign(y - 128), np.sign(dot))


def test_sigmoid_lut_by_hand():
    lut = imac.sigmoid_lut()
    assert lut.shape == (2049,)
    assert lut[1024] == 128                  # 255 * 0.5 = 127.5, rounded half up
    assert lut[0] == 0 and lut[-1] == 255    # 255 * sigmoid(-+12)
    assert lut[1024 + 256] == 243            # 255 * sigmoid(0.25 V * 12) = 242.906
    assert lut[1024 - 256] == 12             # 255 * sigmoid(-3) = 12.094
    assert np.all(np.diff(lut) >= 0)


def test_amplifier_and_mean_constants_by_hand():
    # 30 * 1 kOhm * (1/255 V * 1 nS) / 2**-10 V * 2**32 = 517417.07
    assert imac.amp_multiplier(30) == 517417
    assert imac.amp_multiplier(10) == 172472   # 172472.36
    assert imac.mean_reciprocal(13) == 5041    # 65536 / 13 = 5041.23
    assert imac.mean_reciprocal(1) == 65536


# ----------------------------------------------------------------------------------------------
# Variation

def test_variation_is_seeded_and_reproducible():
    w = _weights(_rng(0), 64, 32)
    a = imac.draw_conductances(w, sigma=0.1, seed=42)
    b = imac.draw_conductances(w, sigma=0.1, seed=42)
    c = imac.draw_conductances(w, sigma=0.1, seed=43)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert not np.array_equal(a[0], c[0])
    x = np.ones((1, 64), dtype=np.int64)
    y1 = imac.run_mlp(x, [w], [30], sigma=0.1, seed=42)[0]
    y2 = imac.run_mlp(x, [w], [30], sigma=0.1, seed=42)[0]
    assert np.array_equal(y1, y2)


def test_variation_is_lognormal_with_the_stated_sigma():
    w = np.ones(200_000, dtype=np.int64)
    g_pos, g_neg = imac.draw_conductances(w, sigma=0.1, seed=9)
    log_r = np.log(1.0 / g_pos)
    assert abs(np.median(np.exp(log_r)) / 5e3 - 1) < 0.01
    assert abs(log_r.std() / 0.1 - 1) < 0.01
    assert abs(np.log(1.0 / g_neg).std() / 0.1 - 1) < 0.01
    assert np.corrcoef(np.log(g_pos), np.log(g_neg))[0, 1] < 0.01


def test_no_variation_ignores_the_seed():
    w = _weights(_rng(1), 8, 8)
    a = imac.draw_conductances(w, seed=1)
    b = imac.draw_conductances(w, seed=2)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


# ----------------------------------------------------------------------------------------------
# Partitioning

@pytest.mark.parametrize("impl", imac.IMPLEMENTATIONS)
def test_vertical_partitioning_does_not_change_the_result(impl):
    rng = _rng(21)
    w = _weights(rng, 64, 96)
    x = rng.choice(np.array([-1, 1]), size=(8, 64))
    narrow = imac.run_mlp(x, [w], [30], impl=impl, sigma=0.05, seed=4)[0]
    wide = imac.run_mlp(x, [w], [30], impl=impl, sigma=0.05, seed=4,
                        circuit=ImacCircuit(xbar_cols=128))[0]
    assert np.array_equal(narrow, wide)


def test_horizontal_partition_currents_add_up_to_the_unpartitioned_crossbar():
    rng = _rng(22)
    w = _weights(rng, 128, 16)
    x = _layer_inputs(rng, 8, 128, first=False)
    g_pos, g_neg = (imac.quantize_conductances(g)
                    for g in imac.draw_conductances(w, sigma=0.1, seed=2))
    _, parts, _ = imac.layer_fixed(x, g_pos, g_neg, 30, return_stages=True)
    _, whole, _ = imac.layer_fixed(x, g_pos, g_neg, 30, return_stages=True,
                                   circuit=ImacCircuit(xbar_rows=128))
    assert parts.shape[1] == 4 and whole.shape[1] == 1
    assert np.array_equal(parts.sum(axis=1), whole[:, 0])


# ----------------------------------------------------------------------------------------------
# Bad input: one line naming the value and the limit

def _raises_line(fn, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        fn()
    assert "\n" not in message


def test_bad_weight():
    w = np.ones((4, 3), dtype=np.int64)
    w[2, 1] = 0
    _raises_line(lambda: imac.run_mlp(np.ones((1, 4)), [w], [30]),
                 "weights[0][2, 1] must be -1 or +1 (binarized synapse), not 0")


def test_bad_input_value():
    _raises_line(lambda: imac.run_mlp([[1, 0.5]], [np.ones((2, 2))], [30]),
                 "inputs[0, 1] must be -1 or +1 (binarized synapse), not 0.5")


def test_layer_wider_than_partitioning_allows():
    w = np.ones((600, 4), dtype=np.int64)
    _raises_line(lambda: imac.run_mlp(np.ones((1, 600)), [w], [30], biases=[np.ones(4)]),
                 "layer 0 has 601 input rows: 19 horizontal partitions of 32, more than the 16 "
                 "a neuron combines")
    w = np.ones((4, 513), dtype=np.int64)
    _raises_line(lambda: imac.run_mlp(np.ones((1, 4)), [w], [30]),
                 "layer 0 has 513 neurons: 17 vertical partitions of 32, more than the 16 "
                 "allowed")


def test_sampling_shorter_than_settling():
    _raises_line(lambda: imac.run_mlp(np.ones((1, 2)), [np.ones((2, 2))], [30],
                                      sampling_ns=1.5),
                 "sampling time 1.5 ns is shorter than the settling time 2.0 ns")
    imac.run_mlp(np.ones((1, 2)), [np.ones((2, 2))], [30], sampling_ns=2.0)


def test_conductance_outside_code_range():
    _raises_line(lambda: imac.quantize_conductances([1e-4, 2e-3]),
                 "conductance 0.002 S exceeds the 20-bit code range 0.001048575 S")


def test_bad_sigma_and_shapes():
    _raises_line(lambda: imac.draw_conductances([1], sigma=0.3),
                 "sigma must be in [0, 0.25], not 0.3")
    _raises_line(lambda: imac.run_mlp(np.ones((1, 3)), [np.ones((2, 2))], [30]),
                 "weights[0] must have 3 rows, not shape (2, 2)")
    _raises_line(lambda: imac.run_mlp(np.ones((1, 2)), [np.ones((2, 2))], [30, 10]),
                 "gains must have one entry per layer (1), not 2")


def test_classify_takes_the_lowest_of_equal_maxima():
    y = np.array([[3, 7, 7, 1], [0, 0, 0, 0], [1, 2, 3, 4]])
    assert imac.classify(y).tolist() == [1, 0, 3]
