"""Sensing faults for golden integer inference: every sensed bit flips with probability ``ber``.

Fault model
-----------
A read fault is a wrong sense-amplifier decision: each bit that is sensed flips independently
with probability ``ber`` (a BER from :func:`sim.hw.device.ber`, or the array's
``read_fault_rate``). During integer inference (:func:`infer_int_with_faults`):

* ``"weights"`` -- every bit of every weight of a compute layer (uint8 adder weights, int8
  multiply weights, all 8 bits) is sensed once per call: one faulty copy of each layer's weights
  serves the whole batch (the weights are read from the array into the periphery / weight
  buffer, seed 001 sec. 3.2, and reused).
* ``"activations"`` -- every bit of every element of a compute layer's uint8 input (the image for
  the first layer, the previous layer's stored output after that) is sensed once per layer.
  Pooling and flattening run in the digital periphery on sensed data and are not faulted; nor
  are the logits.

Random numbers: uniform draws from :class:`numpy.random.Generator` streams seeded from ``seed``
(one stream for weights, one for activations, so turning one on does not move the other's
draws); a bit flips when its draw is below ``ber``. The draws do not depend on ``ber``, so for one
seed the flipped bits at a lower BER are a subset of those at a higher one.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from golden.model import COMPUTE_KINDS, Model, layer_forward_int

__all__ = ["WHERE", "flip_bits", "infer_int_with_faults"]

#: What :func:`infer_int_with_faults` can fault.
WHERE = ("weights", "activations")


def _check_ber(ber) -> float:
    if isinstance(ber, bool) or not isinstance(ber, (int, float, np.floating, np.integer)) \
            or not 0.0 <= ber <= 1.0:
        raise ValueError(f"ber must be a probability in [0, 1], not {ber!r}")
    return float(ber)


def flip_bits(values, bits: int, ber, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``values`` with each of the low ``bits`` bits of every element flipped
    independently with probability ``ber``.

    Parameters
    ----------
    values : numpy.ndarray
        uint8 or int8 (int8 is flipped in its two's-complement bits).
    bits : int
        Sensed bits per element, in [1, 8]; bits above stay as they are.
    ber : float
        Flip probability in [0, 1].
    rng : numpy.random.Generator
        Source of the ``values.size * bits`` uniform draws (taken bit 0 first).

    Raises
    ------
    TypeError
        ``values`` is not a uint8/int8 array or ``rng`` is not a Generator.
    ValueError
        ``bits`` or ``ber`` out of range.
    """
    if not isinstance(values, np.ndarray) or values.dtype not in (np.uint8, np.int8):
        raise TypeError(f"values must be a uint8 or int8 numpy array, not "
                        f"{getattr(values, 'dtype', type(values).__name__)}")
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 8:
        raise ValueError(f"bits must be an int in [1, 8], not {bits!r}")
    ber = _check_ber(ber)
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, not {type(rng).__name__}")
    u = values.view(np.uint8)
    draws = rng.random((int(bits),) + u.shape)
    flips = (draws < ber).astype(np.uint8)
    mask = np.zeros(u.shape, dtype=np.uint8)
    for b in range(int(bits)):
        mask |= flips[b] << np.uint8(b)
    return (u ^ mask).view(values.dtype)


def _check_where(where) -> frozenset:
    if isinstance(where, str) or not isinstance(where, (tuple, list, set, frozenset)) \
            or any(w not in WHERE for w in where):
        raise ValueError(f"where must be a tuple of names from {', '.join(WHERE)}, "
                         f"not {where!r}")
    return frozenset(where)


def infer_int_with_faults(model: Model, x: np.ndarray, ber, seed: int, *,
                          where=WHERE) -> np.ndarray:
    """Golden integer inference (:func:`golden.model.layer_forward_int`, layer by layer) with
    sensing faults at rate ``ber`` on the weights and/or the layer inputs (module docstring).

    Parameters
    ----------
    model : golden.model.Model
    x : numpy.ndarray
        uint8 [N, C, H, W] (or one image [C, H, W]).
    ber : float
        Bit flip probability in [0, 1]; 0 gives exactly :func:`golden.model.infer_int`.
    seed : int
        Seed of the fault streams, >= 0; the same seed gives the same output.
    where : tuple of str
        Any of ``"weights"``, ``"activations"``.

    Returns
    -------
    numpy.ndarray
        The last layer's output (int64 logits [N, K]).
    """
    if not isinstance(model, Model):
        raise TypeError(f"model must be a golden.model.Model, not {type(model).__name__}")
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise TypeError(f"x must be a uint8 numpy array, not "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim == 3:
        x = x[None]
    if x.shape[1:] != tuple(model.input_shape):
        raise ValueError(f"x must have shape [N, {', '.join(map(str, model.input_shape))}], "
                         f"not {list(x.shape)}")
    ber = _check_ber(ber)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, not {seed!r}")
    where = _check_where(where)
    rng_w = np.random.default_rng([int(seed), 0])
    rng_a = np.random.default_rng([int(seed), 1])
    cur = x
    saved = {-1: x}     # outputs an ``add`` layer reads as its shortcut (golden's chain rule)
    sources = ({int(ly.params["source"]) for ly in model.layers if ly.kind == "add"}
               | {int(ly.params["input"]) for ly in model.layers if "input" in ly.params})
    for i, layer in enumerate(model.layers):
        if "input" in layer.params:     # a branch (projection shortcut) reads an earlier output
            cur = saved[int(layer.params["input"])]
        if layer.kind in COMPUTE_KINDS:
            if "weights" in where:
                w = flip_bits(layer.params["weight"], 8, ber, rng_w)
                layer = replace(layer, params={**layer.params, "weight": w})
            if "activations" in where:
                cur = flip_bits(cur, 8, ber, rng_a)
        if layer.kind == "add":
            cur = layer_forward_int(layer, cur, saved[int(layer.params["source"])])
        else:
            cur = layer_forward_int(layer, cur)
        if i in sources:
            saved[i] = cur
    return cur
