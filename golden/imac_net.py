"""A CPU-IMAC network (seed 003): integer convolutions on the CPU, an IMAC MLP for the FC layers.

Seed 003 splits a CNN between a mobile CPU, which runs the convolutions, and the IMAC
co-processor, which runs the fully-connected layers in analog (``golden.imac``). This module
holds such a network of LeNet's shape (the seed's LeNet, with the FC part 400-120-84-10 of
IMAC-Sim, the seed authors' open circuit simulator):

* CPU part (integer, :mod:`golden.layers`): ``conv0`` 5x5 multiply convolution with padding 2,
  batch norm, ReLU, 8-bit requantization (:func:`golden.layers.requantize`); 2x2 max pooling;
  ``conv1`` 5x5 multiply convolution without padding, batch norm, then the **sign** that the
  IMAC inputs need (IMAC-Sim drives each input with ``+-v_supply``), as an integer threshold
  on the accumulator; 2x2 max pooling of the signs; flatten (channel, row, column: 400).
* IMAC part: ``golden.imac.run_mlp`` with binarized weights and binarized bias rows.

Golden's model format (:mod:`golden.model`) has no sign output and must end in a logits
layer, so the network has a file format of its own (below). ASSUMPTION: the conv part is
LeNet-5's (6 and 16 channels, 5x5 kernels; "same" padding in the first layer so that 28x28
Fashion-MNIST images give the 16 x 5 x 5 = 400 features of the FC part, as LeNet's 32x32
input does without padding).

The sign of ``y = a * r * acc + b`` (``a``, ``b`` batch norm, ``r`` the scale of the
accumulator) is stated exactly on the integer accumulator: ``+1`` iff ``acc >= thresh`` where
``dir = +1`` (``a * r > 0``), iff ``acc <= thresh`` where ``dir = -1``; sign(0) = +1. Pooling
the signs (max) is pooling before the sign, because the sign is monotone.

File format (``.npz``, ``allow_pickle=False``; ``imac_net_format`` 1):

==============================  ========  ==============  ======================================
array                           dtype     shape           meaning
==============================  ========  ==============  ======================================
``imac_net_format``             int64     ()              1
``name``                        str       ()              network name
``input_shape``                 int64     (3,)            C, H, W
``input_scale``                 float64   ()              real input = scale * uint8 pixel
``class_names``                 str       (K,)
``conv0.weight``                int8      (O0, C, 5, 5)   symmetric per-channel int8
``conv0.rq_mult``               int32     (O0,)           requantization (BN, ReLU)
``conv0.rq_bias``               int64     (O0,)
``conv0.rq_shift``              int32     (O0,)
``conv1.weight``                int8      (O1, O0, 5, 5)
``conv1.thresh``                int64     (O1,)           sign threshold on the accumulator
``conv1.dir``                   int8      (O1,)           +1 or -1
``conv{i}.float.weight``        float32   as weight       trained float weights
``conv{i}.float.bn_*``          float32   (O,)            gamma, beta, mean, var
``conv{i}.float.bn_eps``        float64   ()
``fc.num_layers``               int64     ()              L
``fc{l}.weight``                int8      (n_l, n_l+1)    +-1, input-major (row = input)
``fc{l}.bias``                  int8      (n_l+1,)        +-1, a bias row at +v_supply
``fc.gains``                    float64   (L,)            amplifier gain per layer
==============================  ========  ==============  ======================================
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import imac
from . import layers as L

__all__ = ["ImacNet", "ImacNetFormatError", "FORMAT_VERSION", "KERNEL", "POOL", "load_net",
           "MAX_FILE_BYTES", "MAX_IMAGE_ELEMENTS",
           "make_net", "save_net", "net_arrays", "cpu_int", "cpu_float", "infer",
           "bundled_net_path"]

FORMAT_VERSION = 1
#: Convolution kernel (LeNet-5: 5x5) and max pooling window (2x2, stride 2).
KERNEL = 5
POOL = 2
_BN = ("bn_gamma", "bn_beta", "bn_mean", "bn_var")
# A folder of their own: golden/models/*.npz are golden.model files (golden.model.bundled_model_path
# lists them), these are not.
MODELS_DIR = Path(__file__).resolve().parent / "models" / "imac"


#: Memory budget of one network file: the bytes its arrays take once decompressed, checked from
#: each zip member's header before anything is decompressed. ASSUMPTION: 256 MiB, the budget of
#: golden.model's format (``golden.model.MAX_FILE_BYTES``), about 3000x the bundled LeNet's
#: arrays (77 kB).
MAX_FILE_BYTES = 256 << 20
#: Memory budget of inference: elements of the largest tensor one image needs in the CPU part
#: (a convolution's padded input, its unfolded patches ``H*W*C*5*5``, its output), checked on
#: load from ``input_shape`` and the channel counts. ASSUMPTION: 2**20, about 50x the bundled
#: LeNet's (28x28 Fashion-MNIST: 19600), as ``golden.model.MAX_IMAGE_ELEMENTS``.
MAX_IMAGE_ELEMENTS = 1 << 20


class ImacNetFormatError(ValueError):
    """A CPU-IMAC network file or object violates the format; the message names the array."""


@dataclass(frozen=True)
class ImacNet:
    """A validated CPU-IMAC network (see the module docstring); ``arrays`` keyed as in the
    file. Build one with :func:`load_net` or :func:`make_net`."""

    name: str
    input_shape: tuple
    input_scale: float
    class_names: tuple
    arrays: dict

    @property
    def fc_weights(self) -> list:
        return [self.arrays[f"fc{i}.weight"].astype(np.int64) for i in range(self.fc_layers)]

    @property
    def fc_biases(self) -> list:
        return [self.arrays[f"fc{i}.bias"].astype(np.int64) for i in range(self.fc_layers)]

    @property
    def gains(self) -> list:
        return [float(g) for g in self.arrays["fc.gains"]]

    @property
    def fc_layers(self) -> int:
        return int(self.arrays["fc.num_layers"])

    @property
    def fc_shapes(self) -> list:
        """``(inputs, outputs)`` of every IMAC layer (inputs without the bias row)."""
        return [tuple(int(v) for v in w.shape) for w in self.fc_weights]


def _fail(msg):
    raise ImacNetFormatError(msg)


def _need(a: dict, key: str, dtype, shape) -> np.ndarray:
    if key not in a:
        _fail(f"{key}: missing")
    v = np.asarray(a[key])
    if v.dtype != np.dtype(dtype):
        _fail(f"{key}: dtype must be {np.dtype(dtype)}, not {v.dtype}")
    if shape is not None and v.shape != tuple(shape):
        _fail(f"{key}: shape must be {tuple(shape)}, not {v.shape}")
    return v


def _validate(a: dict) -> ImacNet:
    if int(_need(a, "imac_net_format", np.int64, ())) != FORMAT_VERSION:
        _fail(f"imac_net_format: must be {FORMAT_VERSION}, not {int(a['imac_net_format'])}")
    shape = tuple(int(v) for v in _need(a, "input_shape", np.int64, (3,)))
    c, h, w = shape
    w0 = _need(a, "conv0.weight", np.int8, None)
    if w0.ndim != 4 or w0.shape[1:] != (c, KERNEL, KERNEL):
        _fail(f"conv0.weight: shape must be (O, {c}, {KERNEL}, {KERNEL}), not {w0.shape}")
    o0 = w0.shape[0]
    for k, dt in (("rq_mult", np.int32), ("rq_bias", np.int64), ("rq_shift", np.int32)):
        _need(a, f"conv0.{k}", dt, (o0,))
    w1 = _need(a, "conv1.weight", np.int8, None)
    if w1.ndim != 4 or w1.shape[1:] != (o0, KERNEL, KERNEL):
        _fail(f"conv1.weight: shape must be (O, {o0}, {KERNEL}, {KERNEL}), not {w1.shape}")
    o1 = w1.shape[0]
    _need(a, "conv1.thresh", np.int64, (o1,))
    d = _need(a, "conv1.dir", np.int8, (o1,))
    if not np.isin(d, (-1, 1)).all():
        _fail("conv1.dir: must hold only -1 and +1")
    for i, (wi, o) in enumerate(((w0, o0), (w1, o1))):
        _need(a, f"conv{i}.float.weight", np.float32, wi.shape)
        for k in _BN:
            _need(a, f"conv{i}.float.{k}", np.float32, (o,))
        _need(a, f"conv{i}.float.bn_eps", np.float64, ())
    # Feature count: conv0 keeps H, W (padding 2), pool, conv1 valid, pool.
    hh, ww = (h // POOL - KERNEL + 1) // POOL, (w // POOL - KERNEL + 1) // POOL
    if hh < 1 or ww < 1:
        _fail(f"input_shape: {shape} is too small for two 5x5 convolutions and pools")
    _check_image_elements(shape, o0, o1)
    n = _scalar(a, "fc.num_layers")
    if n < 1:
        _fail(f"fc.num_layers: must be >= 1, not {n}")
    gains = _need(a, "fc.gains", np.float64, (n,))
    if not (np.isfinite(gains).all() and (gains > 0).all()):
        _fail("fc.gains: must be finite and positive")
    fan = o1 * hh * ww
    for i in range(n):
        wi = _need(a, f"fc{i}.weight", np.int8, None)
        if wi.ndim != 2 or wi.shape[0] != fan:
            _fail(f"fc{i}.weight: shape must be ({fan}, n), not {wi.shape}")
        try:
            imac.check_weights(wi, name=f"fc{i}.weight")
            imac.check_weights(_need(a, f"fc{i}.bias", np.int8, (wi.shape[1],)),
                               name=f"fc{i}.bias")
            imac.partitions(wi.shape[0], wi.shape[1], bias=True, layer=i)
        except ValueError as e:
            _fail(str(e))
        fan = wi.shape[1]
    names = tuple(str(s) for s in np.asarray(a.get("class_names", [])).ravel())
    if len(names) != fan:
        _fail(f"class_names: must have {fan} entries (the last IMAC layer), not {len(names)}")
    scale = float(_need(a, "input_scale", np.float64, ()))
    if not (np.isfinite(scale) and scale > 0):
        _fail(f"input_scale: must be finite and positive, not {scale}")
    keys = {k: np.asarray(a[k]) for k in a}
    return ImacNet(name=str(np.asarray(a.get("name", ""))), input_shape=shape,
                   input_scale=scale, class_names=names, arrays=keys)


def _check_image_elements(shape, o0: int, o1: int) -> None:
    """Refuse a network whose CPU part needs more than :data:`MAX_IMAGE_ELEMENTS` elements
    in one tensor of one image (exact integers: no product can overflow)."""
    c, h, w = (int(v) for v in shape)
    h1, w1 = h // POOL - KERNEL + 1, w // POOL - KERNEL + 1        # conv1's output
    sizes = {"conv0 padded input": c * (h + KERNEL - 1) * (w + KERNEL - 1),
             "conv0 patches": h * w * c * KERNEL * KERNEL, "conv0 output": o0 * h * w,
             "conv1 patches": h1 * w1 * o0 * KERNEL * KERNEL, "conv1 output": o1 * h1 * w1}
    what, n = max(sizes.items(), key=lambda kv: kv[1])
    if n > MAX_IMAGE_ELEMENTS:
        _fail(f"input_shape: {tuple(shape)} with {o0} and {o1} channels needs {n} elements per "
              f"image in the {what}; the memory budget allows at most {MAX_IMAGE_ELEMENTS} "
              f"(golden.imac_net.MAX_IMAGE_ELEMENTS)")


def _check_members(path) -> None:
    """Every zip member by its header, before any is decompressed: a ``.npy`` name, and
    :data:`MAX_FILE_BYTES` for the decompressed sizes together."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        raise ImacNetFormatError(f"{path}: not a readable .npz file ({e})") from None
    total = 0
    for info in infos:
        if not info.filename.endswith(".npy"):
            _fail(f"{path}: holds {info.filename!r}, which is not an array (.npy); a network "
                  f"file holds only arrays")
        total += info.file_size
        if total > MAX_FILE_BYTES:
            _fail(f"{path}: its arrays take at least {total} bytes once decompressed (at "
                  f"{info.filename!r}, {info.file_size} bytes, by the zip headers); the memory "
                  f"budget allows at most {MAX_FILE_BYTES} (golden.imac_net.MAX_FILE_BYTES)")
    # numpy allocates the shape an .npy header states before it reads the data: a header
    # that claims more than its member holds is refused from the header alone
    with zipfile.ZipFile(path) as zf:
        for info in infos:
            try:
                with zf.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = {(1, 0): np.lib.format.read_array_header_1_0,
                            (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read is None:
                        raise ValueError(f".npy version {version} is not 1.0 or 2.0")
                    shape, _, dtype = read(f)
            except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError,
                    TypeError) as e:
                _fail(f"{path}: array {info.filename!r} has no readable .npy header ({e})")
            need = int(np.prod(shape, dtype=object)) * dtype.itemsize if shape else \
                dtype.itemsize
            if need > info.file_size:
                _fail(f"{path}: array {info.filename!r} claims shape {shape} of {dtype} "
                      f"({need} bytes) but holds {info.file_size} bytes")


def _scalar(a, key):
    return int(_need(a, key, np.int64, ()))


def make_net(*, name, input_shape, input_scale, class_names, arrays) -> ImacNet:
    """A validated :class:`ImacNet` from the arrays of the file format (without the header)."""
    a = dict(arrays)
    a.update(imac_net_format=np.int64(FORMAT_VERSION), name=np.str_(name),
             input_shape=np.asarray(input_shape, dtype=np.int64),
             input_scale=np.float64(input_scale),
             class_names=np.asarray([str(s) for s in class_names]))
    return _validate(a)


def net_arrays(net: ImacNet) -> dict:
    """The arrays of the file, header included."""
    return dict(net.arrays)


def save_net(net: ImacNet, path) -> None:
    """Write ``net`` as an ``.npz`` file (``np.savez``: the name gets no suffix added when it
    already ends in ``.npz``)."""
    with open(path, "wb") as f:
        np.savez(f, **net_arrays(net))


def load_net(path) -> ImacNet:
    """Read and validate a CPU-IMAC network file.

    Raises
    ------
    ImacNetFormatError
        A missing or malformed array (named), a file that is not an ``.npz`` archive, or a
        network beyond the memory budgets (:data:`MAX_FILE_BYTES` by the zip headers, before
        anything is decompressed; :data:`MAX_IMAGE_ELEMENTS`).
    """
    _check_members(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            a = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise ImacNetFormatError(f"{path}: not a readable .npz file ({e})") from None
    return _validate(a)


def bundled_net_path(name: str) -> Path:
    """Path of a committed CPU-IMAC network (``golden/models/imac/<name>.npz``)."""
    path = MODELS_DIR / f"{name}.npz"
    if not path.is_file():
        raise ValueError(f"CPU-IMAC network {name!r} is not bundled ({path.name} missing)")
    return path


# ----------------------------------------------------------------------------------------------
# Inference

def _check_images(net: ImacNet, x) -> np.ndarray:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8:
        raise TypeError(f"x must be a uint8 numpy array, not "
                        f"{getattr(x, 'dtype', type(x).__name__)}")
    if x.ndim == 3:
        x = x[None]
    if x.shape[1:] != net.input_shape:
        raise ValueError(f"x must have shape [N, {', '.join(map(str, net.input_shape))}], "
                         f"not {list(x.shape)}")
    return x


def cpu_int(net: ImacNet, x, *, trace: bool = False):
    """The CPU part in integers: uint8 images ``[N, C, H, W]`` to the IMAC input signs
    ``[N, features]`` (int64, -1 or +1). With ``trace``, also the stages as a dict."""
    a = net.arrays
    x = _check_images(net, x)
    acc0 = L.mul_conv2d(x, a["conv0.weight"], stride=1, padding=KERNEL // 2)
    y0 = L.requantize(acc0, a["conv0.rq_mult"], a["conv0.rq_bias"], a["conv0.rq_shift"])
    p0 = L.max_pool2d(y0, POOL, POOL)
    acc1 = L.mul_conv2d(p0, a["conv1.weight"], stride=1, padding=0)
    t = a["conv1.thresh"].reshape(1, -1, 1, 1)
    d = a["conv1.dir"].reshape(1, -1, 1, 1)
    bit = np.where(d > 0, acc1 >= t, acc1 <= t).astype(np.uint8)
    p1 = L.max_pool2d(bit, POOL, POOL)
    signs = 2 * p1.reshape(p1.shape[0], -1).astype(np.int64) - 1
    if trace:
        return signs, {"conv0": y0, "pool0": p0, "conv1_acc": acc1, "pool1": p1}
    return signs


def _conv_float(x, w, padding):
    o, _, kh, kw = w.shape
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    n, _, ho, wo = win.shape[:4]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * ho * wo, -1)
    return (cols @ w.reshape(o, -1).T).reshape(n, ho, wo, o).transpose(0, 3, 1, 2)


def _bn(net, i, y):
    a = net.arrays
    g, b = (a[f"conv{i}.float.{k}"].astype(np.float64) for k in ("bn_gamma", "bn_beta"))
    mu, var = (a[f"conv{i}.float.{k}"].astype(np.float64) for k in ("bn_mean", "bn_var"))
    s = g / np.sqrt(var + float(a[f"conv{i}.float.bn_eps"]))
    return (y - mu.reshape(1, -1, 1, 1)) * s.reshape(1, -1, 1, 1) + b.reshape(1, -1, 1, 1)


def _pool_float(x):
    win = np.lib.stride_tricks.sliding_window_view(x, (POOL, POOL), axis=(2, 3))
    return win[:, :, ::POOL, ::POOL].max(axis=(4, 5))


def cpu_float(net: ImacNet, x) -> np.ndarray:
    """The CPU part of the trained float network (float64): the IMAC input signs."""
    a = net.arrays
    x = _check_images(net, x).astype(np.float64) * net.input_scale
    y0 = np.maximum(_bn(net, 0, _conv_float(x, a["conv0.float.weight"].astype(np.float64),
                                            KERNEL // 2)), 0.0)
    y1 = _bn(net, 1, _conv_float(_pool_float(y0), a["conv1.float.weight"].astype(np.float64),
                                 0))
    s = np.where(y1 >= 0, 1, -1)
    p = _pool_float(s)
    return p.reshape(p.shape[0], -1).astype(np.int64)


def infer(net: ImacNet, x, *, cpu: str = "int", impl: str = "fixed", sigma: float = 0.0,
          seed: int = 0, batch: int = 500) -> list:
    """Run images through the CPU part and the IMAC MLP; return every IMAC layer's outputs.

    Parameters
    ----------
    cpu : {"int", "float"}
        The integer CPU part (:func:`cpu_int`) or the trained float one (:func:`cpu_float`).
    impl, sigma, seed
        As ``golden.imac.run_mlp``: ``"fixed"`` codes or ``"float"`` volts; device
        variation.

    Returns
    -------
    list of arrays ``[N, n_l]``, one per IMAC layer; ``golden.imac.classify`` of the last
    gives the classes.
    """
    if cpu not in ("int", "float"):
        raise ValueError(f"cpu must be 'int' or 'float', not {cpu!r}")
    x = _check_images(net, x)
    outs = None
    for s in range(0, x.shape[0], batch):
        xb = x[s:s + batch]
        signs = cpu_int(net, xb) if cpu == "int" else cpu_float(net, xb)
        o = imac.run_mlp(signs, net.fc_weights, net.gains, biases=net.fc_biases, impl=impl,
                         sigma=sigma, seed=seed)
        outs = o if outs is None else [np.concatenate([p, q]) for p, q in zip(outs, o,
                                                                             strict=True)]
    return outs
