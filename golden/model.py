"""AdderNet models: the file format, integer inference and the float reference.

A model is a straight chain of layers. It is stored as one ``.npz`` file, read with
``allow_pickle=False``; every array's name, shape and dtype is checked on load, and an error names
the array. The format (version 1):

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

Semantics. A ``requant`` layer's output is ``requantize(acc, rq_mult, rq_bias, rq_shift)``: batch
norm, ReLU and 8-bit saturation folded into one integer step (:func:`golden.layers.requantize`).
A ``logits`` layer (only the last layer, and the last layer must be one) outputs ``acc + bias`` as
signed 32-bit integers. An adder layer's uint8 weights share the uint8 activations' scale (the only
way ``|sx*x - sw*w|`` factors into one scale); float weights outside [0, 255*scale] were clipped
into that range when quantizing and the exact per-channel change folded into ``rq_bias`` (for
x >= 0, ``|x - w| = x + |w| = |x - 0| + |w|`` when w < 0, and symmetrically at the top).
"""

from __future__ import annotations

import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import layers as L

FORMAT_VERSION = 1
#: Layer kinds of the format; the first four are compute layers.
KINDS = ("adder_conv2d", "mul_conv2d", "adder_linear", "mul_linear",
         "max_pool2d", "avg_pool2d", "flatten")
COMPUTE_KINDS = KINDS[:4]
OUTPUTS = ("requant", "logits")
MODELS_DIR = Path(__file__).resolve().parent / "models"

_WEIGHT_DTYPE = {"adder_conv2d": np.uint8, "mul_conv2d": np.int8,
                 "adder_linear": np.uint8, "mul_linear": np.int8}


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
        return self.kind.endswith("conv2d") and self.kind in COMPUTE_KINDS


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
    if kind in COMPUTE_KINDS:
        s["weight"] = (_WEIGHT_DTYPE[kind], None)
        if kind.endswith("conv2d"):
            s["stride"] = (np.int64, ())
            s["padding"] = (np.int64, ())
        if output == "requant":
            s.update(rq_mult=(np.int32, "O"), rq_bias=(np.int64, "O"), rq_shift=(np.int32, "O"))
            s.update({"float.weight": (np.float32, "W"), "float.bn_gamma": (np.float32, "O"),
                      "float.bn_beta": (np.float32, "O"), "float.bn_mean": (np.float32, "O"),
                      "float.bn_var": (np.float32, "O"), "float.bn_eps": (np.float64, ())})
        else:
            s.update({"bias": (np.int32, "O"), "float.weight": (np.float32, "W"),
                      "float.bias": (np.float32, "O")})
    elif kind in ("max_pool2d", "avg_pool2d"):
        s["kernel"] = (np.int64, ())
        s["stride"] = (np.int64, ())
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
        elif shape == "W":
            shape = w.shape
        if shape is not None and a.shape != shape:
            _fail(f"array {pre + name!r} must have shape {shape}, not {a.shape}")


def _infer_shapes(model: Model) -> list:
    shapes = [tuple(model.input_shape)]
    cur = tuple(model.input_shape)
    for i, ly in enumerate(model.layers):
        pre = f"layer{i}"
        p = ly.params
        try:
            if ly.kind in ("adder_conv2d", "mul_conv2d"):
                w = p["weight"]
                if w.ndim != 4:
                    _fail(f"array {pre + '.weight'!r} must be 4-D [O, C, kh, kw], not {w.shape}")
                if len(cur) != 3 or cur[0] != w.shape[1]:
                    _fail(f"{pre} ({ly.kind}) expects input [{w.shape[1]}, H, W], gets {list(cur)}")
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
                cur = (cur[0], L.conv_output_size(cur[1], k, st, 0),
                       L.conv_output_size(cur[2], k, st, 0))
            elif ly.kind == "flatten":
                cur = (int(np.prod(cur)),)
        except ValueError as e:
            if isinstance(e, ModelFormatError):
                raise
            _fail(f"{pre} ({ly.kind}): {e}")
        shapes.append(cur)
    return shapes


def _validate(model: Model) -> Model:
    if len(model.input_shape) != 3 or min(model.input_shape) < 1:
        _fail(f"array 'input_shape' must hold 3 positive ints C, H, W, not {model.input_shape}")
    if not (np.isfinite(model.input_scale) and model.input_scale > 0):
        _fail(f"array 'input_scale' must be a positive finite number, not {model.input_scale}")
    if not model.layers:
        _fail("array 'num_layers' is 0: a model needs at least one layer")
    n = len(model.layers)
    for i, ly in enumerate(model.layers):
        if ly.kind not in KINDS:
            _fail(f"array 'layer{i}.kind' is {ly.kind!r}; allowed: {', '.join(KINDS)}")
        if ly.kind in COMPUTE_KINDS:
            if ly.output not in OUTPUTS:
                _fail(f"array 'layer{i}.output' is {ly.output!r}; allowed: requant, logits")
            want = "logits" if i == n - 1 else "requant"
            if ly.output != want:
                _fail(f"array 'layer{i}.output' is {ly.output!r} but layer {i} of {n} must be "
                      f"{want!r} (only the last layer outputs logits)")
        elif i == n - 1:
            _fail(f"array 'layer{i}.kind' is {ly.kind!r}, but the last layer must be a compute "
                  f"layer with output 'logits'")
        if "weight" not in ly.params and ly.kind in COMPUTE_KINDS:
            _fail(f"array 'layer{i}.weight' is missing (a {ly.kind} layer needs it)")
        _check_layer_arrays(i, ly)
    shapes = _infer_shapes(model)
    if len(shapes[-1]) != 1 or shapes[-1][0] != len(model.class_names):
        _fail(f"array 'class_names' has {len(model.class_names)} names but the model outputs "
              f"{list(shapes[-1])}")
    for i, ly in enumerate(model.layers):
        if ly.kind not in COMPUTE_KINDS:
            continue
        w = ly.params["weight"]
        fan_in = int(np.prod(w.shape[1:]))
        kind = "adder" if ly.is_adder else "mul"
        try:
            L._assert_acc_fits(kind, fan_in)
            if ly.output == "requant":
                L.check_requant_bound(L.conv_acc_bound(kind, fan_in), ly.params["rq_mult"],
                                      ly.params["rq_bias"], ly.params["rq_shift"])
        except ValueError as e:
            _fail(f"layer{i} ({ly.kind}): {e}")
    return model


def make_model(*, name: str, input_shape, input_scale: float, class_names, layers) -> Model:
    """Build and validate a model from Python objects (raises ModelFormatError)."""
    m = Model(name=str(name), input_shape=tuple(int(v) for v in input_shape),
              input_scale=float(input_scale), class_names=tuple(str(c) for c in class_names),
              layers=tuple(layers))
    return _validate(m)


def load_model(path) -> Model:
    """Load and validate a model file; every problem raises ModelFormatError naming the array."""
    path = Path(path)
    if not path.is_file():
        _fail(f"model file {str(path)!r} does not exist")
    if not zipfile.is_zipfile(path):
        _fail(f"model file {str(path)!r} is not a readable .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as e:
        if "pickle" in str(e).lower():
            _fail(f"model file {str(path)!r} holds an object array, which the format forbids")
        _fail(f"model file {str(path)!r} is not a readable .npz file: {e}")
    except Exception as e:  # zipfile.BadZipFile, OSError, EOFError: all mean "not an npz"
        _fail(f"model file {str(path)!r} is not a readable .npz file: {e}")

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
    if version != FORMAT_VERSION:
        _fail(f"array 'spinpim_format' is {version}; this spinpim reads version {FORMAT_VERSION}")
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
    layers = []
    known = {"spinpim_format", "name", "input_shape", "input_scale", "class_names", "num_layers"}
    for i in range(n):
        pre = f"layer{i}."
        kind = get_str(pre + "kind")
        known.add(pre + "kind")
        if kind not in KINDS:
            _fail(f"array {pre + 'kind'!r} is {kind!r}; allowed: {', '.join(KINDS)}")
        output = ""
        if kind in COMPUTE_KINDS:
            output = get_str(pre + "output")
            known.add(pre + "output")
            if output not in OUTPUTS:
                _fail(f"array {pre + 'output'!r} is {output!r}; allowed: requant, logits")
            want = "logits" if i == n - 1 else "requant"
            if output != want:
                _fail(f"array {pre + 'output'!r} is {output!r} but layer {i} of {n} must be "
                      f"{want!r} (only the last layer outputs logits)")
        params, fparams = {}, {}
        for name in _layer_schema(kind, output, ()):
            a = get(pre + name)
            known.add(pre + name)
            if name.startswith("float."):
                fparams[name[6:]] = a
            else:
                params[name] = a
        for k in ("stride", "padding", "kernel"):
            if k in params:
                if params[k].dtype != np.int64 or params[k].shape != ():
                    _fail(f"array {pre + k!r} must be an int64 scalar, not "
                          f"{params[k].dtype} {params[k].shape}")
                params[k] = int(params[k])
        layers.append(Layer(kind=kind, output=output, params=params, float_params=fparams))
    extra = sorted(set(arrays) - known)
    if extra:
        _fail(f"array {extra[0]!r} is not part of format {FORMAT_VERSION} "
              f"(num_layers is {n}; unexpected arrays: {', '.join(extra[:5])})")
    return make_model(name=get_str("name"), input_shape=tuple(int(v) for v in shape),
                      input_scale=float(scale), class_names=tuple(str(c) for c in names),
                      layers=layers)


def model_arrays(model: Model) -> dict:
    """The model as the dict of arrays that the file stores."""
    out = {"spinpim_format": np.int64(FORMAT_VERSION), "name": np.str_(model.name),
           "input_shape": np.array(model.input_shape, dtype=np.int64),
           "input_scale": np.float64(model.input_scale),
           "class_names": np.array(model.class_names, dtype=str),
           "num_layers": np.int64(len(model.layers))}
    for i, ly in enumerate(model.layers):
        pre = f"layer{i}."
        out[pre + "kind"] = np.str_(ly.kind)
        if ly.kind in COMPUTE_KINDS:
            out[pre + "output"] = np.str_(ly.output)
        for k, v in ly.params.items():
            out[pre + k] = np.int64(v) if k in ("stride", "padding", "kernel") else v
        for k, v in ly.float_params.items():
            out[pre + "float." + k] = v
    return out


def save_model(model: Model, path) -> None:
    """Validate, then write atomically: a failed write never leaves a half-written file."""
    _validate(model)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp.npz", dir=path.parent)
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


def layer_forward_int(layer: Layer, x: np.ndarray) -> np.ndarray:
    """One layer of integer inference; ``x`` is the uint8 output of the previous layer."""
    p = layer.params
    k = layer.kind
    if k == "adder_conv2d":
        acc = L.adder_conv2d(x, p["weight"], stride=p["stride"], padding=p["padding"])
    elif k == "mul_conv2d":
        acc = L.mul_conv2d(x, p["weight"], stride=p["stride"], padding=p["padding"])
    elif k == "adder_linear":
        acc = L.adder_linear(x, p["weight"])
    elif k == "mul_linear":
        acc = L.mul_linear(x, p["weight"])
    elif k == "max_pool2d":
        return L.max_pool2d(x, p["kernel"], p["stride"])
    elif k == "avg_pool2d":
        return L.avg_pool2d(x, p["kernel"], p["stride"])
    elif k == "flatten":
        return x.reshape(x.shape[0], -1)
    else:  # pragma: no cover - excluded by validation
        raise ModelFormatError(f"unknown layer kind {k!r}")
    if layer.output == "logits":
        return L.add_bias(acc, p["bias"])
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
        outs, cur = [], x
        for ly in model.layers:
            cur = layer_forward_int(ly, cur)
            outs.append(cur)
        return outs
    logits = []
    for s in range(0, x.shape[0], batch):
        cur = x[s:s + batch]
        for ly in model.layers:
            cur = layer_forward_int(ly, cur)
        logits.append(cur)
    return np.concatenate(logits, axis=0)


# ----------------------------------------------------------------------------------------------
# Float reference: the trained network, evaluated in float64 (BN in eval mode).


def _float_conv(x, w, stride, padding, adder):
    o, c, kh, kw = w.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]
    n, _, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, c * kh * kw)
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


def layer_forward_float(layer: Layer, x: np.ndarray) -> np.ndarray:
    """One layer of the float reference (float64)."""
    p, fp, k = layer.params, layer.float_params, layer.kind
    if k in ("max_pool2d", "avg_pool2d"):
        kern, st = p["kernel"], p["stride"]
        win = np.lib.stride_tricks.sliding_window_view(x, (kern, kern), axis=(2, 3))
        win = win[:, :, ::st, ::st]
        return win.max(axis=(4, 5)) if k == "max_pool2d" else win.mean(axis=(4, 5))
    if k == "flatten":
        return x.reshape(x.shape[0], -1)
    w = fp["weight"].astype(np.float64)
    if k.endswith("conv2d"):
        y = _float_conv(x, w, p["stride"], p["padding"], layer.is_adder)
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
    return np.maximum(y, 0.0)


def infer_float(model: Model, x: np.ndarray, *, batch: int = 256) -> np.ndarray:
    """Float reference inference on uint8 input images (scaled by ``input_scale``)."""
    x = _check_input(model, x)
    out = []
    for s in range(0, x.shape[0], batch):
        cur = x[s:s + batch].astype(np.float64) * model.input_scale
        for ly in model.layers:
            cur = layer_forward_float(ly, cur)
        out.append(cur)
    return np.concatenate(out, axis=0)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy; ties go to the lowest class index (numpy argmax)."""
    return float((np.argmax(logits, axis=1) == labels).mean())
