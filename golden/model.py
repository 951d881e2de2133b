"""AdderNet models: the file format, integer inference and the float reference.

A model is a straight chain of layers. It is stored as one ``.npz`` file, read with
``allow_pickle=False``; every array's name, shape and dtype is checked on load, and an error names
the array. Version 1 (below) holds the AdderNet layer kinds; version 2 adds the grouped and
binarized layers of Add-Net (see "Format version 2" further down). A file is written with the
lowest version that holds its layers, so a model of version-1 kinds is still a version-1 file.
The format (version 1):

==============================  ========  ==============  ==========================================
array                           dtype     shape           meaning
==============================  ========  ==============  ==========================================
``spinpim_format``              int64     ()              1
``name``                        str       ()              model name
``input_shape``                 int64     (3,)            C, H, W of one input image
``input_scale``                 float64   ()              real value of input = scale * uint8 pixel
``class_names``                 str       (K,)            one name per logit
``num_layers``                  int64     ()              L
``layer{i}.kind``               str       ()              one of :data:`KINDS`
``layer{i}.output``             str       ()              compute layers: ``requant`` or ``logits``
``layer{i}.weight``             (below)                   integer weights
``layer{i}.stride``             int64     ()              convolutions and pools
``layer{i}.padding``            int64     ()              convolutions
``layer{i}.kernel``             int64     ()              pools (square window)
``layer{i}.rq_mult``            int32     (O,)            requant multiplier, signed 16-bit
``layer{i}.rq_bias``            int64     (O,)            requant bias
``layer{i}.rq_shift``           int32     (O,)            requant right shift
``layer{i}.bias``               int32     (O,)            ``logits`` layers: integer bias
``layer{i}.float.weight``       float32   as weight       trained float weights
``layer{i}.float.bn_gamma``     float32   (O,)            ``requant`` layers: batch norm
``layer{i}.float.bn_beta``      float32   (O,)
``layer{i}.float.bn_mean``      float32   (O,)
``layer{i}.float.bn_var``       float32   (O,)
``layer{i}.float.bn_eps``       float64   ()
``layer{i}.float.bias``         float32   (O,)            ``logits`` layers: float bias
==============================  ========  ==============  ==========================================

Weights: ``adder_conv2d`` uint8 [O, C, kh, kw], ``mul_conv2d`` int8 [O, C, kh, kw],
``adder_linear`` uint8 [O, I], ``mul_linear`` int8 [O, I].

Values checked on load, besides names, dtypes and shapes (each a one-line error naming the
array or layer, and the channel): every float array is finite; ``bn_var`` >= 0 and ``bn_eps`` > 0;
``num_layers`` in [1, :data:`MAX_LAYERS`]; every bound integer inference relies on (the 32-bit
accumulator, the 48-bit requant datapath, and ``acc + bias`` of a ``logits`` layer within signed
32 bits for every input, so inference never overflows). Memory budgets: the zip members'
decompressed sizes, read from their headers before anything is decompressed, at most
:data:`MAX_FILE_BYTES` together; the largest tensor of one image in any layer (padded input,
unfolded patches, output) at most :data:`MAX_IMAGE_ELEMENTS` elements.

Semantics. A ``requant`` layer's output is ``requantize(acc, rq_mult, rq_bias, rq_shift)``: batch
norm, ReLU and 8-bit saturation folded into one integer step (:func:`golden.layers.requantize`).
A ``logits`` layer (only the last layer, and the last layer must be one) outputs ``acc + bias`` as
signed 32-bit integers. An adder layer's uint8 weights share the uint8 activations' scale (the only
way ``|sx*x - sw*w|`` factors into one scale); float weights outside [0, 255*scale] were
clipped into that range when quantizing and the exact per-channel change folded into ``rq_bias``
(for x >= 0, ``|x - w| = x + |w| = |x - 0| + |w|`` when w < 0, and symmetrically at the top).

Format version 2 (``spinpim_format`` 2) reads every version-1 file's arrays with the same
meaning and adds three layer kinds, :data:`GROUPED_KINDS`, and one output, ``quant``:

==============================  ========  ==============  ==========================================
array                           dtype     shape           meaning
==============================  ========  ==============  ==========================================
``layer{i}.kind``               str       ()              also ``adder_gconv2d``, ``mul_gconv2d``,
                                                          ``bin_gconv2d``
``layer{i}.weight``             varies    (O, C/g, h, w)  dtype by kind (below); g = groups
``layer{i}.stride``             int64     ()
``layer{i}.padding``            int64     ()
``layer{i}.groups``             int64     ()              grouped convolution (PyTorch's rule)
``layer{i}.pad_value``          int64     ()              activation code that padding inserts
``layer{i}.output``             str       ()              also ``quant`` (grouped kinds only)
``layer{i}.q_thresh``           int64     (O, 255)        ``quant``: non-decreasing thresholds
``layer{i}.q_sign``             int8      (O,)            ``quant``: -1 or +1
``layer{i}.float.alpha``        float32   (O,)            ``bin_gconv2d``: scale of eq. 2, > 0
``layer{i}.float.quant_tmax``   float64   ()              ``quant``: max abs tanh of eq. 3, (0, 1]
==============================  ========  ==============  ==========================================

Grouped kinds carry ``rq_*`` and BN (``requant``), ``bias`` (``logits``), or ``q_*`` and BN
(``quant``), plus ``float.weight``, as the version-1 kinds do. Weights: ``adder_gconv2d`` uint8,
``mul_gconv2d`` int8, ``bin_gconv2d`` int8 holding only -1 and +1. Depthwise convolution with
channel multiplier m is ``groups = C``, O = C*m (output channel ``c*m + j`` from input channel
``c``); pointwise is a 1x1 kernel (:mod:`golden.layers`). Checked on load, each with a one-line
error naming the array: ``groups`` divides the input channels and O, and the weight is
[O, C/groups, kh, kw]; a binarized weight holds only -1 and +1; ``float.alpha`` is present, finite
and positive; ``pad_value`` is a code in [0, 255], and not 0 only where the input is a ``quant``
output (an unsigned activation's only code with a known real value is 0); ``q_thresh`` is
non-decreasing per channel; ``q_sign`` is -1 or +1; ``quant_tmax`` in (0, 1].

Binarized layers (seed 002, Section 2.2, eq. 2: ``Bin(w) = alpha * sign(w)``, sign(0) = +1). The
integer accumulator is ``acc = sum B * x`` with ``B = weight`` in {-1, +1}; the real output is
``alpha[o] * r_x * acc + c_x[o]`` (``r_x``, ``c_x`` map the input codes to reals), so alpha is a
per-channel factor of the accumulator's real value, and it is folded into the output stage
exactly as batch norm's scale is: into ``rq_mult = round(a * alpha * r_x / s_out * 2**shift)``
(``requant``) or into the thresholds (``quant``). The integer pipeline never multiplies by alpha;
it is the stored float ``alpha`` that the float reference uses. The seed computes one alpha per
layer (E|w| over the layer); the format stores one per output channel, so that a layer-wise
alpha is the case of equal entries and XNOR-Net's per-filter alpha also fits.

Activation quantization (seed 002, eq. 3, k = 8 bits, "default as 8-bit" in Section 2.2)::

    Quant(z) = 2/(2**k - 1) * round((2**k - 1) * (tanh(z) / (2*T) + 1/2)) - 1

maps to 2**k levels in [-1, 1]. Its integer ``j = round(255 * (tanh(z)/(2*T) + 1/2))`` in [0, 255]
*is* our unsigned 8-bit activation code, with real value ``(2*j - 255) / 255`` ("symmetric" codes).
The seed's ``T = max|tanh(z)|`` is taken over each batch; integer inference needs a constant, so
``float.quant_tmax`` holds T fixed at export (ASSUMPTION: ``sim/flows/train.py`` keeps a moving
average of
the training batches' max, as batch norm keeps its statistics), and codes beyond it saturate to 0 or
255; ``round`` is half up. With ``z = BN(y)`` and ``y`` an affine function of the integer
accumulator, ``j`` is a monotone staircase of ``acc``, which ``q_thresh`` / ``q_sign`` state exactly
(:func:`golden.layers.threshold_quantize`); the thresholds are computed once in float64
(:func:`golden.quantize.quant_thresholds`). A following layer reads symmetric codes with its own
integer arithmetic unchanged: the real value ``(2*j - 255)/255`` is affine in ``j``, so the ``-1``
offset is a per-channel constant folded into that layer's bias when there is no padding, and padding
inserts ``pad_value`` (real ``(2*pad_value - 255)/255``), which keeps the offset a per-channel
constant with padding too. The seed pads with the real 0, which lies between two codes (127.5);
ASSUMPTION: Add-Net layers pad with code 128 (real 1/255), trained the same way, so integer
inference stays exact.

Format version 3 (``spinpim_format`` 3) reads every version-2 file's arrays with the same meaning
and adds two layer kinds, :data:`V3_KINDS`, so that a chain holds a ResNet:

==============================  ========  ==============  ==========================================
array                           dtype     shape           meaning
==============================  ========  ==============  ==========================================
``layer{i}.kind``               str       ()              also ``global_avg_pool2d``, ``add``
``layer{i}.source``             int64     ()              ``add``: the layer whose output is the
                                                          shortcut (-1: the model input), < i
``layer{i}.weight``             int8      (C, 2)          ``add``: main path / shortcut weights
``layer{i}.rq_mult``            int32     (C,)            ``add``: requant, as a ``requant`` layer
``layer{i}.rq_bias``            int64     (C,)
``layer{i}.rq_shift``           int32     (C,)
==============================  ========  ==============  ==========================================

``global_avg_pool2d`` (no arrays but its kind) averages each channel's H*W values, rounded half up
as ``avg_pool2d`` (:func:`golden.layers.global_avg_pool2d`), [C, H, W] -> [C, 1, 1]. ``add``
(:func:`golden.layers.residual_add`) takes the previous layer's output ``a`` (the main path) and
the output of layer ``source`` ``b`` (the shortcut; the same shape, checked on load) and outputs
``requantize(a * weight[c, 0] + b * weight[c, 1])`` per channel c, the ReLU of a ResNet block
included; the requant bound is checked on load as for a ``requant`` layer. Its float reference is
``max(a + b, 0)`` (an identity shortcut: the integer weights and requant state the scales).

Branches (format 3). A convolution (``adder_conv2d``, ``mul_conv2d``) may read another layer's
output than the previous one's, so that a shortcut can go through a projection (ResNet option B,
the AdderNet ResNet-20's downsampling shortcut: a 1x1 convolution of any stride with its batch
norm folded into its requant):

==============================  ========  ==============  ==========================================
array                           dtype     shape           meaning
==============================  ========  ==============  ==========================================
``layer{i}.input``              int64     ()              optional: the layer whose output this
                                                          convolution reads (-1: the model input),
                                                          < i; absent: layer i-1
==============================  ========  ==============  ==========================================

A ResNet block with a projection is ``p = proj(x)`` (``input`` absent: it reads the block input
x, layer i-1), ``conv1`` with ``input`` = i-1 (x again), ``conv2``, ``add`` with ``source`` = p's
index. A file without ``input`` arrays reads as before; checked on load (one-line error naming
the array): an int64 scalar, in [-1, i-1], on a format-1 convolution or a grouped one
(:data:`GROUPED_KINDS`, e.g. an Add-Net's binarized layer), in a format-3 file or later.
Option A shortcuts (strided identity, zero channels appended) are the case of a ``mul_conv2d``
1x1 projection with 0/1 weights and the identity requant; no layer of its own holds them.

Format version 4 (``spinpim_format`` 4) reads every version-3 file's arrays with the same
meaning and adds the bit widths of seed 001's <W:I> configurations (:mod:`golden.bitwidth`):

==============================  ========  ==============  ==========================================
array                           dtype     shape           meaning
==============================  ========  ==============  ==========================================
``layer{i}.w_bits``             int64     ()              optional, ``mul_conv2d`` / ``mul_linear``:
                                                          weight bits W in [1, 8] (absent: 8)
``layer{i}.in_bits``            int64     ()              optional, the same kinds: input bits I in
                                                          [1, 8] (absent: 8)
==============================  ========  ==============  ==========================================

A layer with ``in_bits`` I multiplies the top I bits of its input codes, ``x >> (8 - I)``; its
weights are W-bit two's complement numbers. Checked on load (one-line error naming the array):
int64 scalars in [1, 8], on those two kinds only, in a format-4 file; every weight in
``[-2**(W-1), 2**(W-1) - 1]``. The float reference ignores them (it is the trained float
network; a quantization-aware trainer reports its own float accuracy).

Format version 5 (``spinpim_format`` 5) reads every version-4 file's arrays with the same
meaning and adds seed 001's eq. 2 as a layer's activation quantizer (:mod:`golden.bitwidth`):

==============================  ========  ==============  ==========================================
array                           dtype     shape           meaning
==============================  ========  ==============  ==========================================
``layer{i}.out_bits``           int64     ()              optional, a ``requant`` ``mul_conv2d`` /
                                                          ``mul_linear``: its outputs are k-bit
                                                          eq.-2 codes, k in [1, 8] (absent: 8-bit
                                                          requant codes)
``layer{i}.in_quant``           str       ()              optional, ``mul_conv2d`` / ``mul_linear``:
                                                          ``top`` (absent: ``x >> (8 - I)``) or
                                                          ``eq2`` (the I-bit eq.-2 codes as they
                                                          are)
==============================  ========  ==============  ==========================================

A layer with ``out_bits`` k outputs ``min(requantize(acc), 2**k - 1)``
(:func:`golden.bitwidth.eq2_requantize`). Checked on load (one-line error naming the array):
``out_bits`` an int64 scalar in [1, 8] on a ``requant`` multiply layer; ``in_quant`` ``top`` or
``eq2`` on a multiply layer; a layer reads eq.-2 codes (through pools and flatten) exactly when
its ``in_quant`` is ``eq2``, and then its ``in_bits`` equals the producer's ``out_bits``; no
``add`` or ``global_avg_pool2d`` layer reads them.

Format version 6 (``spinpim_format`` 6) reads every version-5 file's arrays with the same
meaning and adds the padding of a pool (PyTorch's ``MaxPool2d`` / ``AvgPool2d`` ``padding``):

==============================  ========  ==============  ==========================================
array                           dtype     shape           meaning
==============================  ========  ==============  ==========================================
``layer{i}.padding``            int64     ()              optional, ``max_pool2d`` / ``avg_pool2d``:
                                                          rows and columns added on each side, in
                                                          [0, kernel // 2] (absent: 0)
==============================  ========  ==============  ==========================================

A max pool pads with a value below every code (PyTorch's -inf, so it never wins); an average
pool pads with zeros that count in the divisor ``kernel**2`` (PyTorch's default
``count_include_pad=True``), rounded half up as without padding (:func:`golden.layers.max_pool2d`,
:func:`golden.layers.avg_pool2d`). The bound ``kernel // 2`` is PyTorch's; it keeps an input
element in every window. Checked on load (one-line error naming the array): an int64 scalar in
[0, kernel // 2], on a pool, in a format-6 file; not on an average pool of a ``quant`` layer's
symmetric codes (its zero padding, code 0, is the real -1 there, not 0). A file is written as
format 6 exactly when a pool holds the array (a model built with ``padding`` 0 on a pool is
still format 6; build it without the array to stay readable by older versions).
"""

from __future__ import annotations

import math
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import bitwidth as _BW
from . import layers as L

#: The newest format version; :func:`load_model` reads every version in :data:`READ_VERSIONS`.
FORMAT_VERSION = 6
#: The format versions :func:`load_model` reads.
READ_VERSIONS = (1, 2, 3, 4, 5, 6)
#: Layer kinds of format version 1.
KINDS = ("adder_conv2d", "mul_conv2d", "adder_linear", "mul_linear",
         "max_pool2d", "avg_pool2d", "flatten")
#: Compute kinds of format version 1: the kinds that every tool (compiler, fault model, reports)
#: maps. The version-2 kinds are kept out of this tuple on purpose, so that a tool that does not
#: know them refuses them instead of mapping a grouped or binarized layer as a plain one.
COMPUTE_KINDS = KINDS[:4]
#: Layer kinds added by format version 2: grouped convolutions (depthwise and pointwise are
#: cases) with adder, multiply or binarized ({-1, +1}) weights.
GROUPED_KINDS = ("adder_gconv2d", "mul_gconv2d", "bin_gconv2d")
#: Layer kinds added by format version 3: global average pooling and the residual addition.
V3_KINDS = ("global_avg_pool2d", "add")
ALL_KINDS = KINDS + GROUPED_KINDS + V3_KINDS
ALL_COMPUTE_KINDS = COMPUTE_KINDS + GROUPED_KINDS
#: Outputs of format version 1; ``quant`` (seed 002 eq. 3) is added by version 2.
OUTPUTS = ("requant", "logits")
ALL_OUTPUTS = OUTPUTS + ("quant",)
MODELS_DIR = Path(__file__).resolve().parent / "models"

_WEIGHT_DTYPE = {"adder_conv2d": np.uint8, "mul_conv2d": np.int8,
                 "adder_linear": np.uint8, "mul_linear": np.int8,
                 "adder_gconv2d": np.uint8, "mul_gconv2d": np.int8, "bin_gconv2d": np.int8}
#: Accumulator bound kind (:func:`golden.layers.conv_acc_bound`) of each compute kind.
_ACC_KIND = {"adder_conv2d": "adder", "mul_conv2d": "mul", "adder_linear": "adder",
             "mul_linear": "mul", "adder_gconv2d": "adder", "mul_gconv2d": "mul",
             "bin_gconv2d": "bin"}
_INT_SCALARS = ("stride", "padding", "kernel", "groups", "pad_value", "source", "input",
                "w_bits", "in_bits", "out_bits")

#: Memory budget of one model file: the bytes its arrays take once decompressed, checked from
#: each zip member's header before anything is decompressed. ASSUMPTION: 256 MiB, about 1000x the
#: largest bundled model's arrays and 1 % of a 24 GiB machine.
MAX_FILE_BYTES = 256 << 20
#: Memory budget of inference: elements of the largest tensor one image needs in any layer (the
#: padded input, the unfolded patches ``Ho*Wo*C/g*kh*kw`` of a convolution, the output), checked
#: on load. ASSUMPTION: 2**20, about 70x the largest bundled model's (fashion_addernet: 14112);
#: the float reference holds it as float64 for a batch of up to 256 images, so at most 2 GiB.
MAX_IMAGE_ELEMENTS = 1 << 20
#: Most layers a model may have. ASSUMPTION: 1024, far above any model a core of this project
#: holds (the bundled ones have 5 to 9).
MAX_LAYERS = 1024
#: The signed 32-bit range of the logits (``golden.layers.ACC_BITS``).
_LOGIT_MIN, _LOGIT_MAX = -(1 << (L.ACC_BITS - 1)), (1 << (L.ACC_BITS - 1)) - 1


class ModelFormatError(ValueError):
    """A model file or model object violates the format; the message names the array."""


@dataclass(frozen=True)
class Layer:
    """One layer: its kind, integer parameters and float (trained) parameters.

    ``params`` holds the integer arrays and hyper-parameters (``weight``, ``stride``, ``padding``,
    ``kernel``, ``rq_mult``, ``rq_bias``, ``rq_shift``, ``bias``) as named in the file without the
    ``layer{i}.`` prefix; ``output`` is ``requant``/``logits`` for compute layers, else ``""``.
    """
    kind: str
    output: str = ""
    params: dict = field(default_factory=dict)
    float_params: dict = field(default_factory=dict)

    @property
    def is_adder(self) -> bool:
        return self.kind.startswith("adder")

    @property
    def is_conv(self) -> bool:
        """A format-1 convolution (``adder_conv2d``, ``mul_conv2d``)."""
        return self.kind.endswith("conv2d") and self.kind in COMPUTE_KINDS

    @property
    def is_compute(self) -> bool:
        """A convolution or linear layer of any format version."""
        return self.kind in ALL_COMPUTE_KINDS

    @property
    def is_grouped(self) -> bool:
        """A format-2 grouped convolution (``*_gconv2d``)."""
        return self.kind in GROUPED_KINDS

    @property
    def acc_kind(self) -> str:
        """``adder``, ``mul`` or ``bin``: the term of the accumulator (compute layers)."""
        return _ACC_KIND[self.kind]

    @property
    def groups(self) -> int:
        """Convolution groups (1 for every format-1 layer)."""
        return int(self.params.get("groups", 1))


@dataclass(frozen=True)
class Model:
    """A validated AdderNet: build one with :func:`load_model` or :func:`make_model`."""
    name: str
    input_shape: tuple
    input_scale: float
    class_names: tuple
    layers: tuple

    def shapes(self) -> list:
        """Per-sample output shape of every layer (the input shape first)."""
        return _infer_shapes(self)


def _fail(msg: str):
    raise ModelFormatError(msg)


def _scalar_int(v, name) -> int:
    a = np.asarray(v)
    if a.shape != () or a.dtype.kind not in "iu":
        _fail(f"array {name!r} must be an int64 scalar, not dtype {a.dtype} shape {a.shape}")
    return int(a)


def _layer_schema(kind: str, output: str, layer_in: tuple) -> dict:
    """name -> (dtype, shape or None); shape entries may be None (free). Checked in order."""
    s: dict = {}
    if kind in ALL_COMPUTE_KINDS:
        s["weight"] = (_WEIGHT_DTYPE[kind], None)
        if kind.endswith("conv2d"):
            s["stride"] = (np.int64, ())
            s["padding"] = (np.int64, ())
        if kind in GROUPED_KINDS:
            s["groups"] = (np.int64, ())
            s["pad_value"] = (np.int64, ())
        if kind == "bin_gconv2d":
            s["float.alpha"] = (np.float32, "O")
        if output in ("requant", "quant"):
            if output == "requant":
                s.update(rq_mult=(np.int32, "O"), rq_bias=(np.int64, "O"),
                         rq_shift=(np.int32, "O"))
            else:
                s.update(q_thresh=(np.int64, "Q"), q_sign=(np.int8, "O"),
                         **{"float.quant_tmax": (np.float64, ())})
            s.update({"float.weight": (np.float32, "W"), "float.bn_gamma": (np.float32, "O"),
                      "float.bn_beta": (np.float32, "O"), "float.bn_mean": (np.float32, "O"),
                      "float.bn_var": (np.float32, "O"), "float.bn_eps": (np.float64, ())})
        else:
            s.update({"bias": (np.int32, "O"), "float.weight": (np.float32, "W"),
                      "float.bias": (np.float32, "O")})
    elif kind in ("max_pool2d", "avg_pool2d"):
        s["kernel"] = (np.int64, ())
        s["stride"] = (np.int64, ())
    elif kind == "add":
        s.update(weight=(np.int8, None), source=(np.int64, ()), rq_mult=(np.int32, "O"),
                 rq_bias=(np.int64, "O"), rq_shift=(np.int32, "O"))
    return s


def _check_layer_arrays(i: int, layer: Layer) -> None:
    pre = f"layer{i}."
    schema = _layer_schema(layer.kind, layer.output, ())
    w = layer.params.get("weight")
    for name, (dtype, shape) in schema.items():
        src = layer.float_params if name.startswith("float.") else layer.params
        key = name[6:] if name.startswith("float.") else name
        if key not in src:
            _fail(f"array {pre + name!r} is missing (a {layer.kind} layer needs it)")
        a = src[key]
        if not isinstance(a, np.ndarray):
            a = np.asarray(a)
        if a.dtype != np.dtype(dtype):
            _fail(f"array {pre + name!r} must have dtype {np.dtype(dtype).name}, not {a.dtype}")
        if shape == "O":
            shape = (w.shape[0],)
        elif shape == "Q":
            shape = (w.shape[0], L.QUANT_LEVELS - 1)
        elif shape == "W":
            shape = w.shape
        if shape is not None and a.shape != shape:
            _fail(f"array {pre + name!r} must have shape {shape}, not {a.shape}")
    _check_float_values(pre, layer)
    _check_bit_widths(pre, layer)
    _check_pool_padding(pre, layer)
    if layer.kind in GROUPED_KINDS:
        _check_v2_values(pre, layer)


def pool_padding(layer: Layer) -> int:
    """A pool's ``padding`` (format 6; 0 when the array is absent)."""
    return int(layer.params.get("padding", 0))


def _int64_param(v, name: str) -> int:
    """An optional integer array given to :func:`make_model` as a Python / numpy int or an int64
    scalar array, as an int; else the one-line error naming it."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)):
        a = np.asarray(v)
        if a.shape != () or a.dtype != np.int64:
            _fail(f"{name} must be an int64 scalar, not {a.dtype} {a.shape}")
        v = int(a)
    return int(v)


def _check_pool_padding(pre: str, layer: Layer) -> None:
    """Format 6's pool ``padding``: an int in [0, kernel // 2] (PyTorch's bound), on a pool;
    a convolution's own ``padding`` is in its schema."""
    if layer.kind not in ("max_pool2d", "avg_pool2d") or "padding" not in layer.params:
        return
    name = f"array {pre + 'padding'!r}"
    v = _int64_param(layer.params["padding"], name)
    k = int(layer.params["kernel"])
    if k < 1:
        _fail(f"array {pre + 'kernel'!r} must be >= 1, not {k}")
    if not 0 <= int(v) <= k // 2:
        _fail(f"{name} is {int(v)}; a {layer.kind} of kernel {k} allows padding in "
              f"[0, {k // 2}] (at most half the kernel, PyTorch's bound)")


def _check_bit_widths(pre: str, layer: Layer) -> None:
    """Format 4's ``w_bits`` / ``in_bits`` (:mod:`golden.bitwidth`): on multiply kinds only,
    ints in [1, 8], and the weights within ``w_bits``."""
    for key in ("w_bits", "in_bits"):
        if key not in layer.params:
            continue
        if layer.kind not in _BW.BIT_KINDS:
            _fail(f"array {pre + key!r} is given on a {layer.kind} layer; only "
                  f"{' and '.join(_BW.BIT_KINDS)} layers take bit widths")
        try:
            _BW.check_bits(f"array {pre + key!r}", layer.params[key])
        except ValueError as e:
            _fail(str(e))
    if "out_bits" in layer.params:
        if layer.kind not in _BW.BIT_KINDS or layer.output != "requant":
            _fail(f"array {pre + 'out_bits'!r} is given on a {layer.kind} layer with output "
                  f"{layer.output!r}; only requant {' and '.join(_BW.BIT_KINDS)} layers take "
                  f"eq. 2 output bits")
        try:
            _BW.check_bits(f"array {pre + 'out_bits'!r}", layer.params["out_bits"])
        except ValueError as e:
            _fail(str(e))
    if "in_quant" in layer.params:
        q = layer.params["in_quant"]
        if layer.kind not in _BW.BIT_KINDS:
            _fail(f"array {pre + 'in_quant'!r} is given on a {layer.kind} layer; only "
                  f"{' and '.join(_BW.BIT_KINDS)} layers take it")
        if not isinstance(q, str) or q not in _BW.IN_QUANTS:
            _fail(f"array {pre + 'in_quant'!r} is {q!r}; allowed: "
                  f"{', '.join(_BW.IN_QUANTS)}")
    if "w_bits" in layer.params:
        try:
            _BW.check_weight_bits(f"array {pre + 'weight'!r}", layer.params["weight"],
                                  int(layer.params["w_bits"]))
        except ValueError as e:
            _fail(str(e))


def _check_float_values(pre: str, layer: Layer) -> None:
    """Every float array finite; the batch norm's variance >= 0 and ``eps`` > 0 (so that
    ``1 / sqrt(var + eps)`` is finite): values that would otherwise quantize without a word
    into a model that computes nonsense."""
    fp = layer.float_params
    for key in sorted(fp):
        a = np.asarray(fp[key])
        if a.dtype.kind != "f" or key in ("alpha", "quant_tmax"):   # own checks, format 2
            continue
        bad = np.argwhere(~np.isfinite(a))
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            where = f"element {list(idx)}" if a.ndim > 1 else (f"channel {idx[0]}" if idx
                                                                else "its value")
            _fail(f"array {pre + 'float.' + key!r} must hold finite numbers, but {where} is "
                  f"{float(a[idx])} ({len(bad)} of {a.size} not finite)")
    if "bn_var" in fp:
        var = np.asarray(fp["bn_var"])
        bad = np.flatnonzero(var < 0)
        if bad.size:
            _fail(f"array {pre + 'float.bn_var'!r} is a variance and must be >= 0, but channel "
                  f"{bad[0]} is {float(var[bad[0]])}")
        eps = float(fp["bn_eps"])
        if not eps > 0:
            _fail(f"array {pre + 'float.bn_eps'!r} must be > 0 (batch norm divides by "
                  f"sqrt(var + eps)), not {eps}")


def _acc_range(kind: str, fan_in: int) -> tuple:
    """The exact range of one accumulator (:func:`golden.layers.conv_acc_bound`'s terms): adder
    ``-sum|x - w|`` in [-255 F, 0]; binarized ``sum +-x`` in [-255 F, 255 F]; multiply
    ``sum x*w`` with x in [0, 255], w in [-128, 127]: [-255*128 F, 255*127 F]."""
    if kind == "adder":
        return -fan_in * L.ACT_MAX, 0
    if kind == "bin":
        return -fan_in * L.ACT_MAX, fan_in * L.ACT_MAX
    return -fan_in * L.ACT_MAX * 128, fan_in * L.ACT_MAX * 127


def _check_logits_bias(i: int, layer: Layer, fan_in: int) -> None:
    """``acc + bias`` of every channel fits the signed 32-bit logits for every input, so integer
    inference never overflows (:func:`golden.layers.add_bias`)."""
    lo, hi = _acc_range(layer.acc_kind, fan_in)
    blo, bhi = _LOGIT_MIN - lo, _LOGIT_MAX - hi
    bias = np.asarray(layer.params["bias"], dtype=np.int64)
    bad = np.flatnonzero((bias < blo) | (bias > bhi))
    if bad.size:
        ch = int(bad[0])
        b = int(bias[ch])
        reach = b + hi if b > bhi else b + lo
        _fail(f"array 'layer{i}.bias' channel {ch} is {b}: with the accumulator in [{lo}, {hi}] "
              f"({layer.kind}, fan-in {fan_in}) the logit can reach {reach}, outside the signed "
              f"{L.ACC_BITS}-bit range; allowed bias: [{blo}, {bhi}]")


def _check_size(i: int, ly: Layer, cin: tuple, cout: tuple) -> None:
    """Refuse layer ``i`` if one image needs more than :data:`MAX_IMAGE_ELEMENTS` elements in it
    (large padding or shapes), before any inference allocates them."""
    need = {"input": math.prod(cin), "output": math.prod(cout)}
    if ly.kind in ("max_pool2d", "avg_pool2d"):
        pd = pool_padding(ly)
        need["padded input"] = cin[0] * (cin[1] + 2 * pd) * (cin[2] + 2 * pd)
    if ly.kind.endswith("conv2d"):
        w = ly.params["weight"]
        pd = int(ly.params["padding"])
        need["padded input"] = cin[0] * (cin[1] + 2 * pd) * (cin[2] + 2 * pd)
        need["unfolded patches"] = cout[1] * cout[2] * cin[0] * w.shape[2] * w.shape[3]
    what, n = max(need.items(), key=lambda kv: kv[1])
    if n > MAX_IMAGE_ELEMENTS:
        _fail(f"layer{i} ({ly.kind}) needs {n} elements per image for its {what} (shape "
              f"{list(cin)} -> {list(cout)}); the memory budget allows at most "
              f"{MAX_IMAGE_ELEMENTS} (golden.model.MAX_IMAGE_ELEMENTS): reduce the padding or "
              f"the shapes")


def _check_v2_values(pre: str, layer: Layer) -> None:
    """Value checks of the format-2 arrays of one layer (dtypes and shapes already checked)."""
    p, fp = layer.params, layer.float_params
    g = int(p["groups"])
    if g < 1:
        _fail(f"array {pre + 'groups'!r} must be >= 1, not {g}")
    pv = int(p["pad_value"])
    if not 0 <= pv <= L.ACT_MAX:
        _fail(f"array {pre + 'pad_value'!r} must be an activation code in [0, {L.ACT_MAX}], "
              f"not {pv}")
    if layer.kind == "bin_gconv2d":
        w = p["weight"]
        bad = np.argwhere((w != 1) & (w != -1))
        if bad.size:
            idx = tuple(int(v) for v in bad[0])
            _fail(f"array {pre + 'weight'!r} must hold only -1 and +1 (binarized, seed 002 "
                  f"eq. 2), but element {list(idx)} is {int(w[idx])}")
        alpha = np.asarray(fp["alpha"])
        bad = np.flatnonzero(~(np.isfinite(alpha) & (alpha > 0)))
        if bad.size:
            _fail(f"array {pre + 'float.alpha'!r} must be positive and finite (seed 002 eq. 2: "
                  f"alpha = E|w|), but channel {bad[0]} is {float(alpha[bad[0]])}")
    if layer.output == "quant":
        try:
            L.check_thresholds(p["q_thresh"], p["q_sign"], f"array {pre + 'q_thresh'!r}",
                               f"array {pre + 'q_sign'!r}")
        except (TypeError, ValueError) as e:
            _fail(str(e))
        t = float(fp["quant_tmax"])
        if not (np.isfinite(t) and 0 < t <= 1):
            _fail(f"array {pre + 'float.quant_tmax'!r} must be in (0, 1] (the largest "
                  f"|tanh| of seed 002 eq. 3), not {t}")


def _infer_shapes(model: Model) -> list:
    shapes = [tuple(model.input_shape)]
    cur = tuple(model.input_shape)
    for i, ly in enumerate(model.layers):
        pre = f"layer{i}"
        p = ly.params
        try:
            if "input" in p:
                cur = _branch_input(i, ly, shapes)
            if ly.kind in ("adder_conv2d", "mul_conv2d"):
                w = p["weight"]
                if w.ndim != 4:
                    _fail(f"array {pre + '.weight'!r} must be 4-D [O, C, kh, kw], not {w.shape}")
                if len(cur) != 3 or cur[0] != w.shape[1]:
                    _fail(f"{pre} ({ly.kind}) expects input [{w.shape[1]}, H, W], gets {list(cur)}")
                st, pd = int(p["stride"]), int(p["padding"])
                cur = (w.shape[0], L.conv_output_size(cur[1], w.shape[2], st, pd),
                       L.conv_output_size(cur[2], w.shape[3], st, pd))
            elif ly.kind in GROUPED_KINDS:
                w = p["weight"]
                if w.ndim != 4:
                    _fail(f"array {pre + '.weight'!r} must be 4-D [O, C/groups, kh, kw], not "
                          f"{w.shape}")
                if len(cur) != 3:
                    _fail(f"{pre} ({ly.kind}) expects a [C, H, W] input, gets {list(cur)}")
                g = int(p["groups"])
                try:
                    L.check_groups(cur[0], w.shape[0], w.shape[1], g)
                except ValueError as e:
                    _fail(f"array {pre + '.groups'!r} is {g}, which does not fit "
                          f"{pre}.weight {list(w.shape)} on a {cur[0]}-channel input: {e}")
                st, pd = int(p["stride"]), int(p["padding"])
                cur = (w.shape[0], L.conv_output_size(cur[1], w.shape[2], st, pd),
                       L.conv_output_size(cur[2], w.shape[3], st, pd))
            elif ly.kind in ("adder_linear", "mul_linear"):
                w = p["weight"]
                if w.ndim != 2:
                    _fail(f"array {pre + '.weight'!r} must be 2-D [O, I], not {w.shape}")
                if len(cur) != 1 or cur[0] != w.shape[1]:
                    _fail(f"{pre} ({ly.kind}) expects input [{w.shape[1]}], gets {list(cur)}"
                          + (" (a flatten layer is missing)" if len(cur) == 3 else ""))
                cur = (w.shape[0],)
            elif ly.kind in ("max_pool2d", "avg_pool2d"):
                if len(cur) != 3:
                    _fail(f"{pre} ({ly.kind}) expects a [C, H, W] input, gets {list(cur)}")
                k, st = int(p["kernel"]), int(p["stride"])
                if k < 1:
                    _fail(f"array {pre + '.kernel'!r} must be >= 1, not {k}")
                pd = pool_padding(ly)
                cur = (cur[0], L.conv_output_size(cur[1], k, st, pd),
                       L.conv_output_size(cur[2], k, st, pd))
            elif ly.kind == "flatten":
                cur = (math.prod(cur),)
            elif ly.kind == "global_avg_pool2d":
                if len(cur) != 3:
                    _fail(f"{pre} ({ly.kind}) expects a [C, H, W] input, gets {list(cur)}")
                cur = (cur[0], 1, 1)
            elif ly.kind == "add":
                src, w = int(p["source"]), p["weight"]
                if not -1 <= src < i:
                    _fail(f"array {pre + '.source'!r} is {src}; it must name an earlier layer "
                          f"(in [-1, {i - 1}], -1 the model input)")
                if tuple(shapes[src + 1]) != cur:
                    _fail(f"{pre} (add): the shortcut, the output of "
                          f"{'the model input' if src < 0 else f'layer{src}'} "
                          f"{list(shapes[src + 1])}, must have the main path's shape {list(cur)}")
                if w.shape != (cur[0], 2):
                    _fail(f"array {pre + '.weight'!r} must have shape ({cur[0]}, 2) (main path, "
                          f"shortcut per channel), not {w.shape}")
        except ValueError as e:
            if isinstance(e, ModelFormatError):
                raise
            _fail(f"{pre} ({ly.kind}): {e}")
        _check_size(i, ly, shapes[layer_input(model.layers, i) + 1] if "input" in p
                    else shapes[-1], cur)
        shapes.append(cur)
    return shapes


def layer_input(layers, i: int) -> int:
    """The layer whose output layer ``i`` reads (-1: the model input): its ``input`` array
    (format 3, a branch such as a projection shortcut), else ``i - 1``."""
    return int(layers[i].params.get("input", i - 1))


def _branch_input(i: int, ly: Layer, shapes: list) -> tuple:
    """The input shape of layer ``i`` with an ``input`` array, after checking the array."""
    name = f"array 'layer{i}.input'"
    v = _int64_param(ly.params["input"], name)
    if ly.kind not in ("adder_conv2d", "mul_conv2d") + GROUPED_KINDS:
        _fail(f"{name} is given on a {ly.kind} layer; only adder_conv2d and mul_conv2d (and "
              f"the grouped {', '.join(GROUPED_KINDS)}) read another layer's output (a "
              f"branch, e.g. a projection shortcut)")
    if not -1 <= int(v) < i:
        _fail(f"{name} is {int(v)}; it must name an earlier layer (in [-1, {i - 1}], -1 the "
              f"model input)")
    return tuple(shapes[int(v) + 1])


def _validate(model: Model) -> Model:
    if len(model.input_shape) != 3 or min(model.input_shape) < 1:
        _fail(f"array 'input_shape' must hold 3 positive ints C, H, W, not {model.input_shape}")
    if not (np.isfinite(model.input_scale) and model.input_scale > 0):
        _fail(f"array 'input_scale' must be a positive finite number, not {model.input_scale}")
    if not model.layers:
        _fail("array 'num_layers' is 0: a model needs at least one layer")
    n = len(model.layers)
    for i, ly in enumerate(model.layers):
        _check_kind_output(i, n, ly.kind, ly.output)
        if "weight" not in ly.params and ly.kind in ALL_COMPUTE_KINDS:
            _fail(f"array 'layer{i}.weight' is missing (a {ly.kind} layer needs it)")
        _check_layer_arrays(i, ly)
    shapes = _infer_shapes(model)
    for i, (ly, code) in enumerate(zip(model.layers, input_codes(model), strict=True)):
        if ly.kind == "avg_pool2d" and pool_padding(ly) and code == "symmetric":
            _fail(f"array 'layer{i}.padding' is {pool_padding(ly)} on an average pool whose "
                  f"input is the output of a 'quant' layer: its zero padding is code 0, which "
                  f"is not the real 0 of symmetric codes; pad only unsigned activations")
        pv = int(ly.params.get("pad_value", 0))
        if pv and code != "symmetric":
            _fail(f"array 'layer{i}.pad_value' is {pv}, but layer {i}'s input is not the output "
                  f"of a 'quant' layer: padding an unsigned activation must insert 0")
    if len(shapes[-1]) != 1 or shapes[-1][0] != len(model.class_names):
        _fail(f"array 'class_names' has {len(model.class_names)} names but the model outputs "
              f"{list(shapes[-1])}")
    for i, ly in enumerate(model.layers):
        if ly.kind not in ALL_COMPUTE_KINDS:
            continue
        w = ly.params["weight"]
        fan_in = int(np.prod(w.shape[1:]))
        kind = ly.acc_kind
        try:
            L._assert_acc_fits(kind, fan_in)
            if ly.output == "requant":
                L.check_requant_bound(L.conv_acc_bound(kind, fan_in), ly.params["rq_mult"],
                                      ly.params["rq_bias"], ly.params["rq_shift"])
        except ValueError as e:
            _fail(f"layer{i} ({ly.kind}): {e}")
        if ly.output == "logits":
            _check_logits_bias(i, ly, fan_in)
    _check_eq2_chain(model)
    for i, ly in enumerate(model.layers):
        if ly.kind == "add":
            w = np.abs(ly.params["weight"].astype(np.int64)).sum(axis=1)
            try:
                L.check_requant_bound(L.ACT_MAX * int(w.max()), ly.params["rq_mult"],
                                      ly.params["rq_bias"], ly.params["rq_shift"])
            except ValueError as e:
                _fail(f"layer{i} (add): {e}")
    return model


def _check_eq2_chain(model: Model) -> None:
    """Format 5: a layer reads eq.-2 codes (through pools and flatten) exactly when its
    ``in_quant`` is ``eq2``, with ``in_bits`` equal to the producer's ``out_bits``."""
    made = {-1: None}                   # layer -> (producer, k) of the eq.-2 codes it outputs
    cur = None
    for i, ly in enumerate(model.layers):
        src = int(ly.params["input"]) if "input" in ly.params else i - 1
        cur = made[src]
        eq2 = ly.params.get("in_quant", "top") == "eq2"
        if ly.kind in _BW.BIT_KINDS:
            if eq2 and cur is None:
                _fail(f"array 'layer{i}.in_quant' is 'eq2', but layer {i}'s input is not the "
                      f"output of a layer with 'out_bits' (eq. 2 codes)")
            if cur is not None and not eq2:
                _fail(f"layer {i} ({ly.kind}) reads the {cur[1]}-bit eq. 2 codes of layer "
                      f"{cur[0]}, so array 'layer{i}.in_quant' must be 'eq2'")
            if cur is not None and int(ly.params.get("in_bits", _BW.BITS_MAX)) != cur[1]:
                _fail(f"array 'layer{i}.in_bits' is {int(ly.params.get('in_bits', 8))}, but its "
                      f"input is the {cur[1]}-bit eq. 2 codes of layer {cur[0]} ('out_bits' "
                      f"{cur[1]}): they must be equal")
        elif ly.kind in ALL_COMPUTE_KINDS or ly.kind in V3_KINDS:
            if cur is not None:
                _fail(f"layer {i} ({ly.kind}) reads the {cur[1]}-bit eq. 2 codes of layer "
                      f"{cur[0]}; only {' and '.join(_BW.BIT_KINDS)} layers read them")
        if ly.kind == "add" and made[int(ly.params["source"])] is not None:
            s = int(ly.params["source"])
            _fail(f"layer {i} (add) reads the eq. 2 codes of layer {s} as its shortcut; only "
                  f"{' and '.join(_BW.BIT_KINDS)} layers read them")
        if ly.kind in ALL_COMPUTE_KINDS or ly.kind in V3_KINDS:
            cur = (i, int(ly.params["out_bits"])) if "out_bits" in ly.params else None
        made[i] = cur


def _check_kind_output(i: int, n: int, kind: str, output: str) -> None:
    if kind not in ALL_KINDS:
        _fail(f"array 'layer{i}.kind' is {kind!r}; allowed: {', '.join(ALL_KINDS)}")
    if kind in ALL_COMPUTE_KINDS:
        allowed = ALL_OUTPUTS if kind in GROUPED_KINDS else OUTPUTS
        if output not in allowed:
            _fail(f"array 'layer{i}.output' is {output!r}; allowed for {kind}: "
                  f"{', '.join(allowed)}")
        if (output == "logits") != (i == n - 1):
            want = "logits" if i == n - 1 else "requant" + (
                " or 'quant'" if kind in GROUPED_KINDS else "")
            _fail(f"array 'layer{i}.output' is {output!r} but layer {i} of {n} must be "
                  f"'{want}' (only the last layer outputs logits)")
    elif i == n - 1:
        _fail(f"array 'layer{i}.kind' is {kind!r}, but the last layer must be a compute "
              f"layer with output 'logits'")


def input_codes(model: Model) -> list:
    """How each layer's input codes map to real values: ``"unsigned"`` (``scale * code``: the
    image and every ``requant`` output) or ``"symmetric"`` (``(2*code - 255)/255``: a ``quant``
    output, seed 002 eq. 3). Pools and flatten keep their input's mapping."""
    out, cur, made = [], "unsigned", {-1: "unsigned"}
    for i, ly in enumerate(model.layers):
        if "input" in ly.params:        # a branch reads an earlier layer's codes
            cur = made[int(ly.params["input"])]
        out.append(cur)
        if ly.kind in ALL_COMPUTE_KINDS:
            cur = "symmetric" if ly.output == "quant" else "unsigned"
        made[i] = cur
    return out


def format_version(model: Model) -> int:
    """The lowest format version that holds ``model`` (1 unless it has a format-2 layer)."""
    if any(ly.kind in ("max_pool2d", "avg_pool2d") and "padding" in ly.params
           for ly in model.layers):
        return 6
    if any("out_bits" in ly.params or "in_quant" in ly.params for ly in model.layers):
        return 5
    if any("w_bits" in ly.params or "in_bits" in ly.params for ly in model.layers):
        return 4
    if any(ly.kind in V3_KINDS or "input" in ly.params for ly in model.layers):
        return 3
    return 2 if any(ly.kind in GROUPED_KINDS for ly in model.layers) else 1


def make_model(*, name: str, input_shape, input_scale: float, class_names, layers) -> Model:
    """Build and validate a model from Python objects (raises ModelFormatError)."""
    m = Model(name=str(name), input_shape=tuple(int(v) for v in input_shape),
              input_scale=float(input_scale), class_names=tuple(str(c) for c in class_names),
              layers=tuple(layers))
    return _validate(m)


def load_model(path) -> Model:
    """Load and validate a model file; every problem raises ModelFormatError naming the array."""
    path = Path(path)
    try:
        is_dir, is_file = path.is_dir(), path.is_file()
    except OSError as e:        # a name longer than the file system allows (ENAMETOOLONG)
        _fail(f"model file {str(path)!r} cannot be read ({e.strerror})")
    if is_dir:
        _fail(f"model file {str(path)!r} is a directory; give the path of a .npz model file")
    if not is_file:
        _fail(f"model file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):
        _fail(f"model file {str(path)!r} is not a readable .npz file (not a zip archive)")
    _check_members(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower():
            _fail(f"model file {str(path)!r} holds an object array, which the format forbids")
        _fail(f"model file {str(path)!r} is not a readable .npz file: {e}")
    except Exception as e:  # zipfile.BadZipFile, OSError, EOFError: all mean "not an npz"
        _fail(f"model file {str(path)!r} is not a readable .npz file: {e}")
    for k, a in arrays.items():     # numpy returns a member without the .npy magic as bytes
        if not isinstance(a, np.ndarray):
            _fail(f"member {k!r} of model file {str(path)!r} is not a .npy array (no .npy "
                  f"header)")

    def get(name):
        if name not in arrays:
            _fail(f"array {name!r} is missing from {str(path)!r}")
        return arrays[name]

    def get_str(name):
        a = get(name)
        if a.dtype.kind != "U" or a.shape != ():
            _fail(f"array {name!r} must be a string scalar, not dtype {a.dtype} shape {a.shape}")
        return str(a)

    version = _scalar_int(get("spinpim_format"), "spinpim_format")
    if version not in READ_VERSIONS:
        _fail(f"array 'spinpim_format' is {version}; this spinpim reads versions "
              f"{' and '.join(map(str, READ_VERSIONS))}")
    shape = get("input_shape")
    if shape.dtype != np.int64 or shape.shape != (3,):
        _fail(f"array 'input_shape' must be int64 of shape (3,), not {shape.dtype} {shape.shape}")
    scale = get("input_scale")
    if scale.dtype != np.float64 or scale.shape != ():
        _fail(f"array 'input_scale' must be a float64 scalar, not {scale.dtype} {scale.shape}")
    names = get("class_names")
    if names.dtype.kind != "U" or names.ndim != 1:
        _fail(f"array 'class_names' must be a 1-D string array, not {names.dtype} {names.shape}")
    n = _scalar_int(get("num_layers"), "num_layers")
    if not 1 <= n <= MAX_LAYERS:
        held = sorted({k.split(".")[0] for k in arrays if k.startswith("layer")},
                      key=lambda t: (len(t), t))
        _fail(f"array 'num_layers' is {n}; it must be in [1, {MAX_LAYERS}] (the file holds "
              f"arrays of {len(held)} layers" + (f": {held[0]} .. {held[-1]})" if held else ")"))
    layers = []
    known = {"spinpim_format", "name", "input_shape", "input_scale", "class_names", "num_layers"}
    for i in range(n):
        pre = f"layer{i}."
        kind = get_str(pre + "kind")
        known.add(pre + "kind")
        if kind not in ALL_KINDS:
            _fail(f"array {pre + 'kind'!r} is {kind!r}; allowed: {', '.join(ALL_KINDS)}")
        if version < 3 and kind in V3_KINDS:
            _fail(f"array {pre + 'kind'!r} is {kind!r}, a format-3 kind, but 'spinpim_format' "
                  f"is {version}")
        if version == 1 and kind not in KINDS:
            _fail(f"array {pre + 'kind'!r} is {kind!r}, a format-2 kind, but 'spinpim_format' "
                  f"is 1")
        output = ""
        if kind in ALL_COMPUTE_KINDS:
            output = get_str(pre + "output")
            known.add(pre + "output")
        _check_kind_output(i, n, kind, output)
        params, fparams = {}, {}
        for name in _layer_schema(kind, output, ()):
            a = get(pre + name)
            known.add(pre + name)
            if name.startswith("float."):
                fparams[name[6:]] = a
            else:
                params[name] = a
        if pre + "input" in arrays:     # format 3, optional: a branch (projection shortcut)
            if version < 3:
                _fail(f"array {pre + 'input'!r} is a format-3 array, but 'spinpim_format' is "
                      f"{version}")
            params["input"] = get(pre + "input")
            known.add(pre + "input")
        for key in ("w_bits", "in_bits"):   # format 4, optional: <W:I> (golden.bitwidth)
            if pre + key in arrays:
                if version < 4:
                    _fail(f"array {pre + key!r} is a format-4 array, but 'spinpim_format' is "
                          f"{version}")
                params[key] = get(pre + key)
                known.add(pre + key)
        if kind in ("max_pool2d", "avg_pool2d") and pre + "padding" in arrays:   # format 6
            if version < 6:
                _fail(f"array {pre + 'padding'!r} on a pool is a format-6 array, but "
                      f"'spinpim_format' is {version}")
            params["padding"] = get(pre + "padding")
            known.add(pre + "padding")
        for key in ("out_bits", "in_quant"):    # format 5, optional: eq. 2 (golden.bitwidth)
            if pre + key in arrays:
                if version < 5:
                    _fail(f"array {pre + key!r} is a format-5 array, but 'spinpim_format' is "
                          f"{version}")
                params[key] = get_str(pre + key) if key == "in_quant" else get(pre + key)
                known.add(pre + key)
        for k in _INT_SCALARS:
            if k in params:
                if params[k].dtype != np.int64 or params[k].shape != ():
                    _fail(f"array {pre + k!r} must be an int64 scalar, not "
                          f"{params[k].dtype} {params[k].shape}")
                params[k] = int(params[k])
        layers.append(Layer(kind=kind, output=output, params=params, float_params=fparams))
    extra = sorted(set(arrays) - known)
    if extra:
        _fail(f"array {extra[0]!r} is not part of format {version} "
              f"(num_layers is {n}; unexpected arrays: {', '.join(extra[:5])})")
    return make_model(name=get_str("name"), input_shape=tuple(int(v) for v in shape),
                      input_scale=float(scale), class_names=tuple(str(c) for c in names),
                      layers=layers)


def _check_members(path: Path) -> None:
    """Check every member of the zip archive by its header before any is decompressed: a
    ``.npy`` name, and :data:`MAX_FILE_BYTES` for the decompressed sizes (one member and all)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        _fail(f"model file {str(path)!r} is not a readable .npz file: {e}")
    total = 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            _fail(f"model file {str(path)!r} holds {info.filename!r}, which is not an array "
                  f"(.npy); a model file holds only arrays")
        total += info.file_size
        if total > MAX_FILE_BYTES:
            _fail(f"model file {str(path)!r}: its arrays take {total} bytes once decompressed "
                  f"(at {info.filename!r}, {info.file_size} bytes, by the zip headers); the "
                  f"memory budget allows at most {MAX_FILE_BYTES} (golden.model.MAX_FILE_BYTES)")


def model_arrays(model: Model) -> dict:
    """The model as the dict of arrays that the file stores."""
    out = {"spinpim_format": np.int64(format_version(model)), "name": np.str_(model.name),
           "input_shape": np.array(model.input_shape, dtype=np.int64),
           "input_scale": np.float64(model.input_scale),
           "class_names": np.array(model.class_names, dtype=str),
           "num_layers": np.int64(len(model.layers))}
    for i, ly in enumerate(model.layers):
        pre = f"layer{i}."
        out[pre + "kind"] = np.str_(ly.kind)
        if ly.kind in ALL_COMPUTE_KINDS:
            out[pre + "output"] = np.str_(ly.output)
        for k, v in ly.params.items():
            out[pre + k] = np.int64(v) if k in _INT_SCALARS else v
        for k, v in ly.float_params.items():
            out[pre + "float." + k] = v
    return out


def save_model(model: Model, path) -> None:
    """Validate, then write atomically: a failed write never leaves a half-written file."""
    _validate(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A hidden name that ends in neither .npz nor .json: no glob of the project (the bundled
    # models are golden/models/*.npz) lists it, also not when a kill leaves it behind.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez_compressed(f, **model_arrays(model))
        os.chmod(tmp, 0o666 & ~_umask())        # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def bundled_model_path(name: str) -> Path:
    """Path of a committed model (``fashion_addernet``, ``digits_addernet``)."""
    known = sorted(p.stem for p in MODELS_DIR.glob("*.npz"))
    if name not in known:
        raise ValueError(f"model must be one of {', '.join(known) or '(none found)'}, "
                         f"not {name!r}")
    return MODELS_DIR / f"{name}.npz"


# ----------------------------------------------------------------------------------------------
# Integer inference


def layer_forward_int(layer: Layer, x: np.ndarray, skip: np.ndarray | None = None) -> np.ndarray:
    """One layer of integer inference; ``x`` is the uint8 output of the previous layer, ``skip``
    the output of layer ``source`` (``add`` layers only: the shortcut)."""
    p = layer.params
    k = layer.kind
    if k == "add":
        if skip is None:
            raise ModelFormatError("an add layer needs its shortcut input (skip=)")
        return L.residual_add(x, skip, p["weight"], p["rq_mult"], p["rq_bias"], p["rq_shift"])
    if k == "global_avg_pool2d":
        return L.global_avg_pool2d(x)
    if k == "adder_conv2d":
        acc = L.adder_conv2d(x, p["weight"], stride=p["stride"], padding=p["padding"])
    elif k == "mul_conv2d":
        x = _BW.layer_input(x, p)
        acc = L.mul_conv2d(x, p["weight"], stride=p["stride"], padding=p["padding"])
    elif k == "adder_linear":
        acc = L.adder_linear(x, p["weight"])
    elif k == "mul_linear":
        x = _BW.layer_input(x, p)
        acc = L.mul_linear(x, p["weight"])
    elif k in GROUPED_KINDS:
        conv = {"adder_gconv2d": L.adder_conv2d, "mul_gconv2d": L.mul_conv2d,
                "bin_gconv2d": L.bin_conv2d}[k]
        acc = conv(x, p["weight"], stride=p["stride"], padding=p["padding"], groups=p["groups"],
                   pad_value=p["pad_value"])
    elif k == "max_pool2d":
        return L.max_pool2d(x, p["kernel"], p["stride"], pool_padding(layer))
    elif k == "avg_pool2d":
        return L.avg_pool2d(x, p["kernel"], p["stride"], pool_padding(layer))
    elif k == "flatten":
        return x.reshape(x.shape[0], -1)
    else:  # pragma: no cover - excluded by validation
        raise ModelFormatError(f"unknown layer kind {k!r}")
    if layer.output == "logits":
        return L.add_bias(acc, p["bias"])
    if layer.output == "quant":
        return L.threshold_quantize(acc, p["q_thresh"], p["q_sign"])
    if "out_bits" in p:                 # seed 001 eq. 2 (format 5)
        return _BW.eq2_requantize(acc, p["rq_mult"], p["rq_bias"], p["rq_shift"],
                                  int(p["out_bits"]))
    return L.requantize(acc, p["rq_mult"], p["rq_bias"], p["rq_shift"])


def _check_input(model: Model, x: np.ndarray) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise TypeError(f"x must be a uint8 numpy array, not "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim == 3:
        x = x[None]
    if x.shape[1:] != tuple(model.input_shape):
        raise ValueError(f"x must have shape [N, {', '.join(map(str, model.input_shape))}], "
                         f"not {list(x.shape)}")
    return x


def infer_int(model: Model, x: np.ndarray, *, trace: bool = False, batch: int = 256):
    """Integer inference. ``x``: uint8 [N, C, H, W] (or one image [C, H, W]).

    Returns int64 logits [N, K]; with ``trace=True``, the list of every layer's output
    (``outputs[i]`` is the output of layer ``i``; the last entry is the logits).
    """
    x = _check_input(model, x)
    if trace:
        return _forward_chain(model.layers, x, layer_forward_int)
    logits = []
    for s in range(0, x.shape[0], batch):
        logits.append(_forward_chain(model.layers, x[s:s + batch], layer_forward_int)[-1])
    return np.concatenate(logits, axis=0)


def _forward_chain(layers, x, forward, kw=None) -> list:
    """Every layer's output in order; an ``add`` layer gets the output of its ``source``
    (the input ``x`` for -1) as ``skip``. Keeps only the outputs a later ``add`` reads."""
    keep = ({int(ly.params["source"]) for ly in layers if ly.kind == "add"}
            | {int(ly.params["input"]) for ly in layers if "input" in ly.params})
    outs, saved, cur = [], {-1: x}, x
    for i, ly in enumerate(layers):
        extra = dict(kw[i]) if kw else {}
        if ly.kind == "add":
            extra["skip"] = saved[int(ly.params["source"])]
        if "input" in ly.params:        # a branch (format 3): reads an earlier output
            cur = saved[int(ly.params["input"])]
        cur = forward(ly, cur, **extra)
        outs.append(cur)
        if i in keep:
            saved[i] = cur
    return outs


# ----------------------------------------------------------------------------------------------
# Float reference: the trained network, evaluated in float64 (BN in eval mode).


def _float_conv(x, w, stride, padding, adder, groups=1, pad_real=0.0):
    if groups > 1 and adder:
        cg, og = x.shape[1] // groups, w.shape[0] // groups
        return np.concatenate([_float_conv(x[:, g * cg:(g + 1) * cg], w[g * og:(g + 1) * og],
                                           stride, padding, adder, 1, pad_real)
                               for g in range(groups)], axis=1)
    o, cg, kh, kw = w.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                   constant_values=pad_real)
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]
    n, _, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)
    if groups > 1:                   # one batched matmul over the groups (layers.py's layout)
        kg, og = cg * kh * kw, o // groups
        wg = w.reshape(groups, og, kg).transpose(0, 2, 1)
        out = np.matmul(cols.reshape(-1, groups, kg).transpose(1, 0, 2), wg)
        return out.transpose(1, 0, 2).reshape(n, ho, wo, o).transpose(0, 3, 1, 2)
    w2 = w.reshape(o, -1)
    if adder:
        out = np.empty((cols.shape[0], o))
        step = 1 << 15
        for s in range(0, cols.shape[0], step):
            blk = np.ascontiguousarray(cols[s:s + step].T)          # K, rows
            acc = np.zeros((o, blk.shape[1]))
            for k in range(blk.shape[0]):
                acc += np.abs(blk[k][None, :] - w2[:, k][:, None])
            out[s:s + step] = -acc.T
    else:
        out = cols @ w2.T
    return out.reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def quant_eq3(z: np.ndarray, tmax: float) -> np.ndarray:
    """The seed's activation quantizer (seed 002, eq. 3) with k = 8 and a fixed ``T = tmax``.

    Returns the float64 codes ``j = clip(floor(255 * (tanh(z)/(2*T) + 1/2) + 1/2), 0, 255)``
    (``round`` half up); the quantized real value is ``(2*j - 255) / 255``.
    """
    v = L.ACT_MAX * (np.tanh(z) / (2.0 * tmax) + 0.5)
    return np.clip(np.floor(v + 0.5), 0, L.ACT_MAX)


def layer_forward_float(layer: Layer, x: np.ndarray, *, pad_real: float = 0.0,
                        skip: np.ndarray | None = None) -> np.ndarray:
    """One layer of the float reference (float64).

    ``pad_real`` is the real value that a convolution's padding inserts: 0 for an unsigned
    input, the real value of code ``pad_value`` for a ``quant`` output's codes (see
    :func:`infer_float`). A ``quant`` layer returns the real values ``(2*j - 255)/255``.
    """
    p, fp, k = layer.params, layer.float_params, layer.kind
    if k == "add":
        return np.maximum(x + skip, 0.0)
    if k == "global_avg_pool2d":
        return x.mean(axis=(2, 3), keepdims=True)
    if k in ("max_pool2d", "avg_pool2d"):
        kern, st, pd = p["kernel"], p["stride"], pool_padding(layer)
        if pd:      # PyTorch: -inf for a max pool, zeros counted in the mean for an average
            x = np.pad(x, ((0, 0), (0, 0), (pd, pd), (pd, pd)),
                       constant_values=-np.inf if k == "max_pool2d" else 0.0)
        win = np.lib.stride_tricks.sliding_window_view(x, (kern, kern), axis=(2, 3))
        win = win[:, :, ::st, ::st]
        return win.max(axis=(4, 5)) if k == "max_pool2d" else win.mean(axis=(4, 5))
    if k == "flatten":
        return x.reshape(x.shape[0], -1)
    if k == "bin_gconv2d":      # Bin(w) = alpha * sign(w) (eq. 2), the weight as binarized
        w = (p["weight"].astype(np.float64)
             * fp["alpha"].astype(np.float64).reshape(-1, 1, 1, 1))
    else:
        w = fp["weight"].astype(np.float64)
    if k.endswith("conv2d"):
        y = _float_conv(x, w, p["stride"], p["padding"], layer.is_adder, layer.groups, pad_real)
    elif layer.is_adder:
        y = _float_conv(x[:, :, None, None], w[:, :, None, None], 1, 0, True)[:, :, 0, 0]
    else:
        y = x @ w.T
    shape = (1, -1) + (1,) * (y.ndim - 2)
    if layer.output == "logits":
        return y + fp["bias"].astype(np.float64).reshape(shape)
    g, b = fp["bn_gamma"].astype(np.float64), fp["bn_beta"].astype(np.float64)
    mu, var = fp["bn_mean"].astype(np.float64), fp["bn_var"].astype(np.float64)
    a = g / np.sqrt(var + float(fp["bn_eps"]))
    y = (y - mu.reshape(shape)) * a.reshape(shape) + b.reshape(shape)
    if layer.output == "quant":
        return (2.0 * quant_eq3(y, float(fp["quant_tmax"])) - L.ACT_MAX) / L.ACT_MAX
    return np.maximum(y, 0.0)


def pad_reals(model: Model) -> list:
    """Per layer, the real value its padding inserts (:func:`layer_forward_float`'s
    ``pad_real``): code ``pad_value`` read with the layer's :func:`input_codes` mapping."""
    out = []
    for ly, code in zip(model.layers, input_codes(model), strict=True):
        pv = int(ly.params.get("pad_value", 0))
        out.append((2.0 * pv - L.ACT_MAX) / L.ACT_MAX if code == "symmetric" else 0.0)
    return out


def infer_float(model: Model, x: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """Float reference inference on uint8 input images (scaled by ``input_scale``)."""
    x = _check_input(model, x)
    pads = pad_reals(model)
    out = []
    for s in range(0, x.shape[0], batch):
        cur = x[s:s + batch].astype(np.float64) * model.input_scale
        kw = {i: {"pad_real": pr} for i, pr in enumerate(pads)}
        out.append(_forward_chain(model.layers, cur, layer_forward_float, kw)[-1])
    return np.concatenate(out, axis=0)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy; ties go to the lowest class index (numpy argmax)."""
    return float((np.argmax(logits, axis=1) == labels).mean())
