"""Behavioural model of the IMAC analog MLP (seed 003), in fixed point and in float64 physics.

Seed 003 (IMAC, SOT-MRAM in-memory analog computing) computes the fully-connected layers of a
network inside SOT-MRAM crossbars: binarized synapses, sigmoidal SOT-MRAM neurons, no ADC
between layers. This module states that circuit twice:

* :func:`layer_fixed` / ``impl="fixed"`` -- integers of stated widths (:data:`FIXED`), the
  arithmetic the RTL (``rtl/imac_crossbar.py``, ``rtl/imac_neuron.py``) matches bit for bit;
* :func:`layer_float` / ``impl="float"`` -- the same circuit in float64 volts, siemens, amperes.

The circuit, one layer of ``n_in`` inputs and ``n_out`` neurons
----------------------------------------------------------------
* **Synapse** (IMAC-Sim, the seed authors' open circuit simulator): a weight ``w`` in {-1, +1}
  is a differential pair of devices on the I+ and I- lines of its column; ``w = +1`` puts the
  low resistance (5 kOhm) on I+ and the high one (15 kOhm) on I-, ``w = -1`` the reverse.
  Each device's resistance varies as ``R = R_nominal * exp(sigma * z)``, ``z`` standard normal
  from a seeded generator (lognormal: a resistance stays positive for every draw; ASSUMPTION,
  IMAC-Sim gives a percentage variation without its distribution).
* **Bias** (IMAC-Sim): optional, one more binarized row driven at ``+v_supply``, the last row
  of the fan-in.
* **Inputs**: the first layer's inputs are binarized, ``+-v_supply`` (IMAC-Sim feeds the sign of
  each input). A hidden layer's inputs are the previous layer's neuron output voltages, in
  ``[0, v_supply]``, multi-level: IMAC-Sim wires each neuron output straight to the next
  crossbar's input line, and the seed states no ADC between layers.
* **Horizontal partitions** (IMAC-Sim ``hpar = ceil((n_in + 1) / 32)``): the fan-in rows are cut
  into crossbars of ``xbar_rows``; each partition's I+ and I- lines go to the partition's own
  differential amplifier per column.
* **Differential amplifier** (IMAC-Sim subcircuit: op-amp with input resistors 1 kOhm and
  feedback ``gain`` kOhm): driven by the two line currents, its output is
  ``clip(gain * 1 kOhm * (I+ - I-), -v_supply, +v_supply)``. ASSUMPTION: the lines are ideal
  current sources into the amplifier (no line resistance, no wire parasitics), and the op-amp
  saturates at the +-1 V supply.
* **Combining the partitions** (IMAC-Sim connects every partition amplifier of a neuron to the
  neuron input through equal resistors): by Millman's theorem the neuron input is the **mean**
  of the partition amplifier outputs.
* **Vertical partitions** (IMAC-Sim ``vpar = ceil(n_out / 32)``): the neurons are cut into
  crossbars of ``xbar_cols`` columns. Each column's currents stay in their crossbar, so without
  wire parasitics vertical partitioning changes nothing; it only limits the layer width.
* **Neuron** (seed 003: sigmoidal SOT-MRAM neuron): ``v_out = v_supply / (1 + exp(-(v_in -
  offset) / scale))``. ``scale = 1/12 V`` is derived from IMAC-Sim's neuron subcircuit, an
  inverter with a resistive input (8.49 kOhm) and feedback (25.46 kOhm) pair: its gain in the
  linear region is the ratio, 3 V/V, and a logistic of amplitude 1 V has slope
  ``1 / (4 scale)`` at its centre. ``offset = 0`` (ASSUMPTION: a curve centred on a zero sum;
  IMAC-Sim's -0.4 V level shift sets the inverter's threshold, which we do not model). The
  subcircuit inverts; the inversion is the same circuit as swapping I+ and I- at the amplifier,
  so the non-inverting curve is used.
* **Sampling** (IMAC-Sim: 2 ns): the model is static. It refuses a sampling time shorter than
  ``ImacCircuit.settling_ns`` (ASSUMPTION 2 ns: IMAC-Sim's sampling time, the earliest
  instant at which the seed authors read their SPICE transient; we have no transient model to
  claim faster settling).

Fixed-point format (:data:`FIXED`)
----------------------------------
* **input drive** ``x``, 9 bits signed: LSB ``v_supply / 255`` V; the first layer
  ``+-255``, hidden layers the neuron code ``0..255``;
* **conductance** ``g``, 20 bits unsigned: LSB 1 nS, rounded half up from siemens;
* **partition current** ``i``, 36 bits signed: ``sum over rows x * (g_pos - g_neg)``, exact,
  LSB ``(v_supply / 255) * 1 nS``;
* **amplifier output** ``a``, 12 bits signed: ``clip((i * mult + 2**(shift-1)) >> shift,
  -1024, 1024)``, LSB ``2**-10`` V, with ``mult = round(gain * 1 kOhm * i_lsb / a_lsb *
  2**shift)`` and ``shift = 32``;
* **neuron input** ``v``, 12 bits signed: ``clip((sum_p a_p * recip + 2**15) >> 16, -1024,
  1024)``, ``recip = round(2**16 / P)``, LSB ``2**-10`` V;
* **neuron output** ``y``, 8 bits: ``lut[v + 1024]``, ``lut[k] = floor(255 * sigmoid(...) +
  0.5)`` over ``v`` in ``[-1, 1]`` V (2049 entries), LSB ``v_supply / 255``.

``>>`` is an arithmetic shift (floor), so each rounding is half up. The widths hold every value
the limits allow (:data:`MAX_PARTITIONS` partitions of ``xbar_rows`` rows); each operation
asserts it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "ImacCircuit", "FixedFormat", "CIRCUIT", "FIXED", "MAX_PARTITIONS", "IMPLEMENTATIONS",
    "check_weights", "check_sampling", "partitions", "draw_conductances",
    "quantize_conductances", "input_codes", "crossbar_currents", "amp_multiplier",
    "amp_fixed", "mean_reciprocal", "sigmoid_lut", "neuron_fixed", "layer_fixed",
    "layer_float", "run_mlp", "classify",
]

#: Horizontal partitions one neuron combines at most. ASSUMPTION: the 400-input first layer of
#: IMAC-Sim's 400-120-84-10 MLP (plus its bias row) takes 13; 16 is the next power of two.
MAX_PARTITIONS = 16

#: ``impl`` values of :func:`run_mlp`.
IMPLEMENTATIONS = ("fixed", "float")


@dataclass(frozen=True)
class ImacCircuit:
    """Physical constants of the IMAC circuit, each with its source.

    Parameters
    ----------
    r_low_ohm, r_high_ohm : float
        Synapse device resistances (IMAC-Sim: 5 kOhm / 15 kOhm).
    v_supply : float
        Supply, +-``v_supply`` volts; binarized input drive and amplifier rails (IMAC-Sim:
        +-1 V).
    xbar_rows, xbar_cols : int
        Crossbar size (IMAC-Sim: 32 x 32).
    amp_input_ohm : float
        Input resistor of the differential amplifier; its feedback resistor is
        ``gain * amp_input_ohm`` (IMAC-Sim subcircuit: 1 kOhm).
    neuron_scale_v : float
        Logistic scale of the neuron curve (derived from IMAC-Sim's neuron subcircuit, resistor
        ratio 25.46 kOhm / 8.49 kOhm = 3 V/V = ``1 / (4 scale)``: 1/12 V).
    neuron_offset_v : float
        Input voltage at the neuron curve's centre (ASSUMPTION: 0 V).
    settling_ns : float
        Shortest sampling time the model accepts (ASSUMPTION: IMAC-Sim's 2 ns sampling time).

    Raises
    ------
    ValueError
        A value is not positive, ``r_low_ohm >= r_high_ohm``, or the offset is outside the
        neuron's input range.
    """

    r_low_ohm: float = 5e3
    r_high_ohm: float = 15e3
    v_supply: float = 1.0
    xbar_rows: int = 32
    xbar_cols: int = 32
    amp_input_ohm: float = 1e3
    neuron_scale_v: float = 1.0 / 12.0
    neuron_offset_v: float = 0.0
    settling_ns: float = 2.0

    def __post_init__(self):
        for name in ("r_low_ohm", "r_high_ohm", "v_supply", "amp_input_ohm", "neuron_scale_v",
                     "settling_ns"):
            value = getattr(self, name)
            if not value > 0:
                raise ValueError(f"{name} must be positive, not {value!r}")
        for name in ("xbar_rows", "xbar_cols"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")
        if self.r_low_ohm >= self.r_high_ohm:
            raise ValueError(f"r_low_ohm must be below r_high_ohm ({self.r_high_ohm!r}), "
                             f"not {self.r_low_ohm!r}")
        if abs(self.neuron_offset_v) > self.v_supply:
            raise ValueError(f"neuron_offset_v must be within +-v_supply ({self.v_supply!r}), "
                             f"not {self.neuron_offset_v!r}")


@dataclass(frozen=True)
class FixedFormat:
    """Widths and LSBs of the fixed-point circuit (see the module docstring's table).

    Every value is a design choice of this model (ASSUMPTION), sized so that the worst-case
    error against float64 stays near one output LSB (``tests/test_golden_imac.py`` derives the
    bound): a 1 nS conductance LSB keeps the summed rounding of 32 rows below one amplifier
    LSB at gain 30.
    """

    x_max: int = 255           #: input code of full-scale drive, ``v_supply``
    x_bits: int = 9            #: signed input code width
    g_lsb_s: float = 1e-9      #: conductance LSB, siemens
    g_bits: int = 20           #: unsigned conductance code width
    i_bits: int = 36           #: signed partition current width
    amp_frac_bits: int = 10    #: amplifier output LSB ``2**-amp_frac_bits`` V
    amp_bits: int = 12         #: signed amplifier output / neuron input width
    amp_shift: int = 32        #: shift after the gain multiplier
    mult_bits: int = 24        #: unsigned gain multiplier width
    mean_shift: int = 16       #: shift after the partition-mean reciprocal
    out_bits: int = 8          #: unsigned neuron output width

    @property
    def v_lsb(self) -> float:
        """Input / neuron output LSB as a fraction of ``v_supply``."""
        return 1.0 / self.x_max

    @property
    def amp_lsb_v(self) -> float:
        """Amplifier output LSB in volts (for ``v_supply = 1``: the rail is ``2**amp_frac_bits``
        codes)."""
        return 2.0 ** -self.amp_frac_bits

    @property
    def g_max_code(self) -> int:
        return (1 << self.g_bits) - 1


#: The default circuit (IMAC-Sim's public parameters) and fixed-point format.
CIRCUIT = ImacCircuit()
#: The fixed-point format of this module (the list "Fixed-point format" above).
FIXED = FixedFormat()


# ----------------------------------------------------------------------------------------------
# Validation

def check_weights(weights, *, name: str = "weights") -> np.ndarray:
    """``weights`` as an int64 array after checking every entry is -1 or +1.

    Raises
    ------
    ValueError
        An entry is neither -1 nor +1 (the first one is named).
    """
    w = np.asarray(weights)
    bad = ~np.isin(w, (-1, 1))
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}{list(idx)} must be -1 or +1 (binarized synapse), "
                         f"not {w[idx].item()!r}")
    return w.astype(np.int64)


def check_sampling(sampling_ns: float, circuit: ImacCircuit = CIRCUIT) -> float:
    """``sampling_ns`` after checking it is not shorter than the stated settling time.

    Raises
    ------
    ValueError
        ``sampling_ns`` is below ``circuit.settling_ns``.
    """
    if not sampling_ns >= circuit.settling_ns:
        raise ValueError(f"sampling time {sampling_ns!r} ns is shorter than the settling time "
                         f"{circuit.settling_ns!r} ns")
    return float(sampling_ns)


def partitions(n_in: int, n_out: int, *, bias: bool, circuit: ImacCircuit = CIRCUIT,
               layer: int = 0) -> tuple[int, int]:
    """Horizontal and vertical partition counts of a layer (IMAC-Sim's ``hpar``, ``vpar``).

    Raises
    ------
    ValueError
        More than :data:`MAX_PARTITIONS` horizontal or vertical partitions.
    """
    rows = n_in + int(bias)
    hpar = -(-rows // circuit.xbar_rows)
    vpar = -(-n_out // circuit.xbar_cols)
    if hpar > MAX_PARTITIONS:
        raise ValueError(f"layer {layer} has {rows} input rows: {hpar} horizontal partitions "
                         f"of {circuit.xbar_rows}, more than the {MAX_PARTITIONS} a neuron "
                         "combines")
    if vpar > MAX_PARTITIONS:
        raise ValueError(f"layer {layer} has {n_out} neurons: {vpar} vertical partitions of "
                         f"{circuit.xbar_cols}, more than the {MAX_PARTITIONS} allowed")
    return hpar, vpar


def _check_range(name: str, values: np.ndarray, lo: int, hi: int) -> None:
    # The fixed-point widths are a contract: a value outside them is a bug of this model.
    if values.size and (values.min() < lo or values.max() > hi):
        raise AssertionError(f"{name} outside [{lo}, {hi}]: {values.min()}..{values.max()}")


# ----------------------------------------------------------------------------------------------
# Synapses

def _with_bias(weights: np.ndarray, bias) -> np.ndarray:
    """``[n_in (+1), n_out]`` rows of the crossbar: the weights, then the bias row if any."""
    if bias is None:
        return weights
    b = check_weights(bias, name="bias")
    if b.shape != (weights.shape[1],):
        raise ValueError(f"bias must have shape ({weights.shape[1]},), not {b.shape}")
    return np.vstack([weights, b[None, :]])


def draw_conductances(weights, *, sigma: float = 0.0, seed: int = 0,
                      circuit: ImacCircuit = CIRCUIT) -> tuple[np.ndarray, np.ndarray]:
    """Conductances (siemens) of the I+ and I- devices of each synapse, with variation.

    Parameters
    ----------
    weights : array of {-1, +1}, any shape
        One synapse per entry.
    sigma : float
        Lognormal sigma of each device's resistance, in [0, 0.25] (0: ideal devices).
    seed : int
        Seed of the :class:`numpy.random.Generator`; the I+ devices' normals are drawn first,
        then the I- devices', each in C order of ``weights``.

    Returns
    -------
    (g_pos, g_neg) : float64 arrays shaped like ``weights``.

    Raises
    ------
    ValueError
        A weight is not -1 or +1; ``sigma`` is outside [0, 0.25].
    """
    w = check_weights(weights)
    if not 0.0 <= sigma <= 0.25:
        raise ValueError(f"sigma must be in [0, 0.25], not {sigma!r}")
    r_pos = np.where(w > 0, circuit.r_low_ohm, circuit.r_high_ohm)
    r_neg = np.where(w > 0, circuit.r_high_ohm, circuit.r_low_ohm)
    if sigma > 0:
        rng = np.random.default_rng(seed)
        r_pos = r_pos * np.exp(sigma * rng.standard_normal(w.shape))
        r_neg = r_neg * np.exp(sigma * rng.standard_normal(w.shape))
    return 1.0 / r_pos, 1.0 / r_neg


def quantize_conductances(g, fmt: FixedFormat = FIXED) -> np.ndarray:
    """Conductance codes: ``floor(g / g_lsb + 0.5)`` as int64.

    Raises
    ------
    ValueError
        A code exceeds the ``g_bits`` range (the largest is named).
    """
    g = np.asarray(g, dtype=np.float64)
    code = np.floor(g / fmt.g_lsb_s + 0.5).astype(np.int64)
    if code.size and code.max() > fmt.g_max_code:
        raise ValueError(f"conductance {g.max():.9g} S exceeds the {fmt.g_bits}-bit code range "
                         f"{fmt.g_max_code * fmt.g_lsb_s:.9g} S")
    return code


def input_codes(x_sign, fmt: FixedFormat = FIXED) -> np.ndarray:
    """First-layer drive codes of binarized inputs: ``+-x_max`` for ``x_sign`` in {-1, +1}.

    Raises
    ------
    ValueError
        An input is neither -1 nor +1.
    """
    return check_weights(x_sign, name="inputs") * fmt.x_max


# ----------------------------------------------------------------------------------------------
# Fixed point: crossbar, amplifier, neuron

def crossbar_currents(x, g_pos, g_neg, fmt: FixedFormat = FIXED) -> np.ndarray:
    """Differential column currents ``sum_r x[..., r] * (g_pos[r, c] - g_neg[r, c])``, exact.

    One crossbar (or a stack of rows of any height); ``x`` is ``[..., rows]`` input codes,
    ``g_pos`` and ``g_neg`` are ``[rows, cols]`` conductance codes. Returns int64 ``[...,
    cols]`` in units of ``v_lsb * g_lsb``.
    """
    x = np.asarray(x, dtype=np.int64)
    g_pos = np.asarray(g_pos, dtype=np.int64)
    g_neg = np.asarray(g_neg, dtype=np.int64)
    _check_range("input code", x, -(1 << (fmt.x_bits - 1)), (1 << (fmt.x_bits - 1)) - 1)
    _check_range("conductance code", np.concatenate([g_pos.ravel(), g_neg.ravel()]), 0,
                 fmt.g_max_code)
    i = x @ (g_pos - g_neg)
    _check_range("partition current", i, -(1 << (fmt.i_bits - 1)), (1 << (fmt.i_bits - 1)) - 1)
    return i


def amp_multiplier(gain: float, *, circuit: ImacCircuit = CIRCUIT,
                   fmt: FixedFormat = FIXED) -> int:
    """Integer multiplier of the amplifier: ``gain * amp_input_ohm`` in current codes to output
    codes, times ``2**amp_shift``, rounded half up.

    Raises
    ------
    ValueError
        ``gain`` is not positive, or the multiplier does not fit ``mult_bits``.
    """
    if not gain > 0:
        raise ValueError(f"gain must be positive, not {gain!r}")
    i_lsb_a = circuit.v_supply * fmt.v_lsb * fmt.g_lsb_s
    a_lsb_v = circuit.v_supply * fmt.amp_lsb_v
    mult = math.floor(gain * circuit.amp_input_ohm * i_lsb_a / a_lsb_v * 2.0 ** fmt.amp_shift
                      + 0.5)
    if not 0 < mult < (1 << fmt.mult_bits):
        raise ValueError(f"gain {gain!r} gives amplifier multiplier {mult}, outside the "
                         f"{fmt.mult_bits}-bit range")
    return mult


def amp_fixed(i, mult: int, fmt: FixedFormat = FIXED) -> np.ndarray:
    """Amplifier output codes ``clip((i * mult + 2**(shift-1)) >> shift, -rail, +rail)``."""
    i = np.asarray(i, dtype=np.int64)
    rail = 1 << fmt.amp_frac_bits
    if (fmt.i_bits - 1) + int(mult).bit_length() < 62 and fmt.amp_shift < 62:
        # |i * mult| + 2**(shift-1) < 2**62: exact in int64 (the default format: 35 bits of
        # current times at most 24 of multiplier)
        _check_range("partition current", i, -(1 << (fmt.i_bits - 1)),
                     (1 << (fmt.i_bits - 1)) - 1)
        t = (i * np.int64(mult) + np.int64(1 << (fmt.amp_shift - 1))) >> np.int64(fmt.amp_shift)
        return np.clip(t, -rail, rail)
    # Python ints: i * mult may exceed int64 for the widest currents.
    flat = [(int(v) * mult + (1 << (fmt.amp_shift - 1))) >> fmt.amp_shift for v in i.ravel()]
    return np.clip(np.array(flat, dtype=np.int64).reshape(i.shape), -rail, rail)


def mean_reciprocal(n_partitions: int, fmt: FixedFormat = FIXED) -> int:
    """``round(2**mean_shift / n_partitions)``: the neuron's integer mean of the partitions.

    Raises
    ------
    ValueError
        ``n_partitions`` is outside [1, :data:`MAX_PARTITIONS`].
    """
    if not 1 <= n_partitions <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be in [1, {MAX_PARTITIONS}], not {n_partitions!r}")
    return ((1 << fmt.mean_shift) + n_partitions // 2) // n_partitions


def sigmoid_lut(circuit: ImacCircuit = CIRCUIT, fmt: FixedFormat = FIXED) -> np.ndarray:
    """The neuron curve as a table: entry ``k`` is the output code at ``(k - rail) * a_lsb``.

    Returns ``2 * rail + 1`` int64 entries in ``[0, x_max]`` (``rail = 2**amp_frac_bits``),
    ``floor(x_max * sigmoid((v - offset) / scale) + 0.5)``.
    """
    rail = 1 << fmt.amp_frac_bits
    v = np.arange(-rail, rail + 1, dtype=np.float64) * (circuit.v_supply * fmt.amp_lsb_v)
    y = 1.0 / (1.0 + np.exp(-(v - circuit.neuron_offset_v) / circuit.neuron_scale_v))
    return np.floor(fmt.x_max * y + 0.5).astype(np.int64)


def neuron_fixed(amp, lut, fmt: FixedFormat = FIXED) -> np.ndarray:
    """Neuron output codes from the partition amplifier codes ``amp[..., P, cols]``.

    ``v = clip((sum_p amp * recip + 2**(mean_shift-1)) >> mean_shift, -rail, rail)``, then
    ``lut[v + rail]``.
    """
    amp = np.asarray(amp, dtype=np.int64)
    n = amp.shape[-2]
    rail = 1 << fmt.amp_frac_bits
    total = amp.sum(axis=-2)
    v = (total * mean_reciprocal(n, fmt) + (1 << (fmt.mean_shift - 1))) >> fmt.mean_shift
    v = np.clip(v, -rail, rail)
    return np.asarray(lut, dtype=np.int64)[v + rail]


def _split_rows(a: np.ndarray, rows: int) -> list[np.ndarray]:
    """Cut axis 0 (the crossbar rows) of ``a`` into horizontal partitions of ``rows``."""
    return [a[s:s + rows] for s in range(0, a.shape[0], rows)]


def layer_fixed(x, g_pos, g_neg, gain: float, *, circuit: ImacCircuit = CIRCUIT,
                fmt: FixedFormat = FIXED, return_stages: bool = False):
    """One IMAC layer in fixed point.

    Parameters
    ----------
    x : int array ``[batch, rows]``
        Input codes, bias row (``x_max``) included if the layer has one.
    g_pos, g_neg : int array ``[rows, n_out]``
        Conductance codes.
    gain : float
        Differential amplifier gain of the layer.
    return_stages : bool
        Also return the partition currents ``[batch, P, n_out]`` and amplifier codes.

    Returns
    -------
    y : int64 ``[batch, n_out]`` neuron output codes in ``[0, x_max]`` (and the stages).
    """
    x = np.asarray(x, dtype=np.int64)
    mult = amp_multiplier(gain, circuit=circuit, fmt=fmt)
    r = circuit.xbar_rows
    # Vertical partitions are independent columns: computing all columns at once is the same.
    i = np.stack([crossbar_currents(x[:, s:s + r], gp, gn, fmt) for s, gp, gn in
                  zip(range(0, x.shape[1], r), _split_rows(np.asarray(g_pos), r),
                      _split_rows(np.asarray(g_neg), r), strict=True)], axis=1)
    amp = amp_fixed(i, mult, fmt)
    y = neuron_fixed(amp, sigmoid_lut(circuit, fmt), fmt)
    return (y, i, amp) if return_stages else y


def layer_float(v, g_pos, g_neg, gain: float, *, circuit: ImacCircuit = CIRCUIT,
                return_stages: bool = False):
    """The same layer in float64 physics: volts in, volts out.

    ``v`` is ``[batch, rows]`` input voltages, ``g_pos``/``g_neg`` conductances in siemens.
    Returns the neuron output voltages ``[batch, n_out]`` (and the partition currents in
    amperes ``[batch, P, n_out]`` and the amplifier outputs in volts).
    """
    v = np.asarray(v, dtype=np.float64)
    r = circuit.xbar_rows
    i = np.stack([v[:, s:s + r] @ (gp - gn) for s, gp, gn in
                  zip(range(0, v.shape[1], r), _split_rows(np.asarray(g_pos), r),
                      _split_rows(np.asarray(g_neg), r), strict=True)], axis=1)
    amp = np.clip(gain * circuit.amp_input_ohm * i, -circuit.v_supply, circuit.v_supply)
    v_in = amp.mean(axis=1)
    y = circuit.v_supply / (1.0 + np.exp(-(v_in - circuit.neuron_offset_v)
                                         / circuit.neuron_scale_v))
    return (y, i, amp) if return_stages else y


# ----------------------------------------------------------------------------------------------
# The MLP

def run_mlp(x_sign, weights, gains, *, biases=None, impl: str = "fixed", sigma: float = 0.0,
            seed: int = 0, sampling_ns: float = 2.0, circuit: ImacCircuit = CIRCUIT,
            fmt: FixedFormat = FIXED) -> list[np.ndarray]:
    """Run binarized inputs through an IMAC MLP; return every layer's neuron outputs.

    Parameters
    ----------
    x_sign : array ``[batch, n_0]`` of {-1, +1}
        Binarized inputs (IMAC-Sim: the sign of each input feature).
    weights : list of arrays ``[n_l, n_{l+1}]`` of {-1, +1}
        Binarized weight matrices, input-major (row = input, column = neuron).
    gains : list of float
        Differential amplifier gain per layer (IMAC-Sim: 30, 30, 10).
    biases : list of (array ``[n_{l+1}]`` of {-1, +1} or None), optional
        Binarized bias per layer, a row driven at ``+v_supply``.
    impl : {"fixed", "float"}
        Fixed point (codes, LSB ``v_supply / x_max``) or float64 physics (volts).
    sigma, seed : float, int
        Device variation (:func:`draw_conductances`); layer ``l`` draws with ``seed + l``.
    sampling_ns : float
        Sampling time; must not be shorter than ``circuit.settling_ns``.

    Returns
    -------
    list of arrays ``[batch, n_{l+1}]``, one per layer: int64 codes (fixed) or volts (float).

    Raises
    ------
    ValueError
        Non-binarized inputs, weights or biases; shapes that do not chain; a layer with more
        partitions than allowed; sampling shorter than the settling time; a conductance
        outside the code range.
    """
    check_sampling(sampling_ns, circuit)
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"impl must be one of {', '.join(IMPLEMENTATIONS)}, not {impl!r}")
    if len(gains) != len(weights):
        raise ValueError(f"gains must have one entry per layer ({len(weights)}), "
                         f"not {len(gains)}")
    biases = [None] * len(weights) if biases is None else list(biases)
    if len(biases) != len(weights):
        raise ValueError(f"biases must have one entry per layer ({len(weights)}), "
                         f"not {len(biases)}")
    x = check_weights(np.atleast_2d(x_sign), name="inputs")
    if impl == "fixed":
        act = x * fmt.x_max
        full = fmt.x_max
    else:
        act = x * circuit.v_supply
        full = circuit.v_supply
    outs = []
    for layer, (w, b, gain) in enumerate(zip(weights, biases, gains, strict=True)):
        w = check_weights(w, name=f"weights[{layer}]")
        if w.ndim != 2 or w.shape[0] != act.shape[1]:
            raise ValueError(f"weights[{layer}] must have {act.shape[1]} rows, not shape "
                             f"{w.shape}")
        partitions(w.shape[0], w.shape[1], bias=b is not None, circuit=circuit, layer=layer)
        rows = _with_bias(w, b)
        if b is not None:
            act = np.hstack([act, np.full((act.shape[0], 1), full, dtype=act.dtype)])
        g_pos, g_neg = draw_conductances(rows, sigma=sigma, seed=seed + layer, circuit=circuit)
        if impl == "fixed":
            act = layer_fixed(act, quantize_conductances(g_pos, fmt),
                              quantize_conductances(g_neg, fmt), gain, circuit=circuit,
                              fmt=fmt)
        else:
            act = layer_float(act, g_pos, g_neg, gain, circuit=circuit)
        outs.append(act)
    return outs


def classify(y) -> np.ndarray:
    """The class of each output vector: the index of its largest neuron output, the lowest
    index among equal maxima (ASSUMPTION: IMAC-Sim marks every maximum; one class is needed).

    ``y`` is ``[..., n_classes]`` (codes or volts); returns int64 ``[...]``.
    """
    return np.argmax(np.asarray(y), axis=-1).astype(np.int64)
