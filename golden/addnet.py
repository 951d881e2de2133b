"""The Add-Net basic block as a composition of golden layers (pure numpy, integer, exact).

Add-Net is the network of seed 002 (the DIMA paper: "a deep depthwise Convolutional Neural
Network (CNN) structure, called Add-Net, which uses binarized depthwise separable convolution",
with the Depthwise CNN In-Memory Accelerator on SOT-MRAM). Its block diagram (Fig. 2): an
inception block (3x3 spatial convolution, batch norm, ReLU, not binarized), N basic blocks,
average pooling and an MLP. A basic block is batch norm, the k-bit activation quantizer (eq. 3),
a depthwise convolution with channel multiplier m and a pointwise convolution, both with
binarized weights (eq. 2). In the chain of :mod:`golden.model`, where every compute layer ends
in its own output stage, one basic block is two layers::

    bin_gconv2d  3x3, groups = C, C -> C*m, pad_value 128   output 'quant' (BN, eq. 3)
    bin_gconv2d  1x1, groups = 1, C*m -> q                  output 'quant' (BN, eq. 3)

The BN + Quant that the seed places in front of a block's depthwise convolution is the output
stage of the layer before it (the previous block's pointwise layer), as in XNOR-Net's "BN before
the binarized convolution"; the first block reads the inception block's BN + ReLU output,
requantized to unsigned 8-bit. Where this differs from the seed:

* ASSUMPTION: a BN in front of the quantizer between the depthwise and the pointwise layer
  (eq. 1 puts only Quant there): with the tanh range T fixed for inference, a BN keeps each
  channel inside tanh's useful range, and it costs nothing in integer inference (it is folded
  into the thresholds).
* ASSUMPTION: padding inserts code 128, the real value 1/255 (the seed pads with 0, which is
  not one of eq. 3's 256 levels), see :mod:`golden.model`.
* The seed says Add-Net "refer[s] to the topology of ResNet" but describes no shortcut; the
  block here has none (a model is a straight chain).

Integer exactness: the binarized accumulator is an exact sum of added and subtracted codes,
alpha and BN live in the thresholds, and eq. 3 is a monotone staircase of the accumulator, so a
block's integer output equals eq. 3 applied to the real pre-activation, up to float64 rounding
of the thresholds when they are computed (:func:`golden.quantize.quant_thresholds`).
"""

from __future__ import annotations

import numpy as np

from . import layers as L
from .model import GROUPED_KINDS, Layer

__all__ = ["ADDNET_PAD", "channel_multiplier", "check_basic_block", "basic_block"]

#: Padding code of Add-Net's binarized convolutions: real value (2*128 - 255)/255 = 1/255 on
#: eq. 3's symmetric grid. ASSUMPTION (module docstring): the nearest code to the seed's 0,
#: rounded half up as everywhere in golden.
ADDNET_PAD = 128


def channel_multiplier(layer: Layer, in_channels: int) -> int:
    """The channel multiplier m of a depthwise layer (``groups == in_channels``), else ValueError.
    """
    w = layer.params["weight"]
    if layer.kind not in GROUPED_KINDS:
        raise ValueError(f"a depthwise layer is a grouped convolution, not {layer.kind}")
    if layer.groups != in_channels or w.shape[1] != 1 or w.shape[0] % in_channels:
        raise ValueError(f"a depthwise layer on {in_channels} channels has groups "
                         f"{in_channels} and a weight [{in_channels}*m, 1, kh, kw], not groups "
                         f"{layer.groups} and {list(w.shape)}")
    return w.shape[0] // in_channels


def check_basic_block(dw: Layer, pw: Layer, in_channels: int) -> int:
    """Check that ``dw``, ``pw`` form an Add-Net basic block on ``in_channels``; return m.

    ``dw``: ``bin_gconv2d``, depthwise (groups = C, weight [C*m, 1, kh, kw]); ``pw``:
    ``bin_gconv2d``, pointwise (weight [q, C*m, 1, 1], groups 1); both with output ``quant``.
    Raises ValueError naming the part that does not fit.
    """
    for name, ly in (("dw", dw), ("pw", pw)):
        if ly.kind != "bin_gconv2d" or ly.output != "quant":
            raise ValueError(f"{name} must be a bin_gconv2d layer with output 'quant', not "
                             f"{ly.kind} with output {ly.output!r}")
    m = channel_multiplier(dw, in_channels)
    wp = pw.params["weight"]
    if wp.shape[1:] != (in_channels * m, 1, 1) or pw.groups != 1:
        raise ValueError(f"pw must be a pointwise layer on {in_channels * m} channels (weight "
                         f"[q, {in_channels * m}, 1, 1], groups 1), not {list(wp.shape)} with "
                         f"groups {pw.groups}")
    return m


def basic_block(x: np.ndarray, dw: Layer, pw: Layer) -> np.ndarray:
    """Integer Add-Net basic block: depthwise then pointwise binarized convolution, each followed
    by its eq.-3 output stage.

    Parameters
    ----------
    x : uint8 [N, C, H, W]
        Codes of the block's input.
    dw, pw : Layer
        As :func:`check_basic_block` requires.

    Returns
    -------
    uint8 [N, q, Ho, Wo]: eq. 3 codes of the pointwise layer.
    """
    m = check_basic_block(dw, pw, x.shape[1])
    d, p = dw.params, pw.params
    acc = L.depthwise_conv2d(x, d["weight"], kind="bin", multiplier=m, stride=d["stride"],
                             padding=d["padding"], pad_value=d["pad_value"])
    mid = L.threshold_quantize(acc, d["q_thresh"], d["q_sign"])
    acc = L.pointwise_conv2d(mid, p["weight"], kind="bin")
    return L.threshold_quantize(acc, p["q_thresh"], p["q_sign"])
