"""Reference networks: random-weight models with the layer shapes of the literature, built
through golden's model API, each compiled for every preset and counted
(``sim.analysis.counting``): ``python -m sim.analysis.reference_nets`` (``make count-ref``).

The networks, at the input sizes of their papers:

* ``lenet5``: LeNet-5 (LeCun et al. 1998, sec. II.B): 1x32x32, C1 5x5x6, S2 2x2 average
  subsampling, C3 5x5x16, S4, C5 5x5x120, F6 84, output 10;
* ``resnet20_cifar``: the CIFAR-10 ResNet-20 (He et al. 2016, sec. 4.2) as the AdderNet of
  seed 000's workload: 3x32x32, a 3x3x16 convolution, three stages of three basic blocks (two
  3x3 convolutions and an identity shortcut; 16, 32, 64 channels; the first convolution of
  stages 2 and 3 of stride 2, its shortcut a 1x1 stride-2 projection), global average pooling,
  FC 10;
* ``plain20_cifar``: ResNet-20's plain counterpart (He et al. 2016, sec. 4.2 and fig. 6: the
  same layers without the shortcuts);
* ``plain20_flat``: NOT a network of the literature: plain-20 with its global average pool
  left out (the FC reads the 64x8x8 map), the largest CIFAR-sized chain the compiler takes
  today; a workload for timing compile and count;
* ``vgg11``: VGG-11 (Simonyan and Zisserman 2015, configuration A): 3x224x224, convolutions
  64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M (3x3, padding 1; M a 2x2 stride-2 max
  pool), FC 4096, 4096, 1000;
* ``vgg19``: VGG-19 (the same paper, configuration E): convolutions 64, 64, M, 128, 128, M,
  256 x4, M, 512 x4, M, 512 x4, M, FC 4096, 4096, 1000 (seed 001 sec. 5.3 evaluates it);
* ``alexnet``: AlexNet (Krizhevsky et al. 2012, sec. 3.5, one tower with the two towers'
  channels): 3x227x227, 11x11 stride 4 x96, 3x3 stride-2 max pool, 5x5 x256 (padding 2), pool,
  3x3 x384, x384, x256, pool, FC 4096, 4096, 1000;
* ``resnet18`` / ``resnet50``: ResNet-18 / ResNet-50 (He et al. 2016, table 1): 3x224x224, 7x7
  stride-2 x64 (padding 3: 112x112), 3x3 stride-2 max pool with padding 1 (56x56, table 1's
  conv2_x size; torchvision's ``MaxPool2d(3, 2, padding=1)``; ``golden.model`` format 6), basic
  blocks [2, 2, 2, 2] (ResNet-18) or bottleneck blocks [3, 4, 6, 3] with expansion 4
  (ResNet-50), projection shortcuts where the shape changes, global average pooling, FC 1000;
* ``mobilenet_v1``: MobileNet-v1 (Howard et al. 2017, table 1): 3x224x224, 3x3 stride-2 x32,
  13 depthwise-separable blocks (3x3 depthwise + 1x1 pointwise), global average pooling,
  FC 1000.

Layer arithmetic: every convolution and hidden FC is an adder layer except the first
convolution and the last FC, which multiply (AdderNet, Chen et al. 2020, keeps the first and
last layers as multiplications); depthwise layers are ``adder_gconv2d`` with ``groups`` = C.
Weights are random (seeded). Requantization (ASSUMPTION: no trained statistics exist for
random weights): each channel maps its accumulator's mean to code 128 and one standard
deviation to 40 codes, so that a random image's activations spread over the code range rather
than saturate: measured on 16 random images propagated through the layers before it while the
layer is within golden's inference budget, else the mean and deviation of uniform random 8-bit
inputs and weights. The counts do not depend on it (zero skipping aside).

Residual blocks (``("res", branch, shortcut)``) become golden's format-3 layers: the
shortcut's projection first (a 1x1 adder convolution of the block's stride reading the block
input: option B, as the AdderNet ResNet-20 has it), then the branch, its first convolution
reading the block input (``golden.model``'s ``input`` array) when a projection precedes it, then
an ``add`` (weights 1 and 1, its requantization set as a compute layer's from ``a + b``) whose
``source`` is the projection or, for an identity shortcut, the block input.

Golden's inference memory budget (``golden.model.MAX_IMAGE_ELEMENTS``, 2**20 elements of one
image in a layer) refuses the 224x224 networks' first layers; the counting mode runs no
inference, so these networks are built with that budget raised to
:data:`COUNT_ONLY_ELEMENTS` (:func:`count_only_budget`), and what refuses them is then the
compiler's own limits. Networks small enough for the budget (LeNet-5) also run one random
image on the cycle model (``sim.hw.core_model``), compared with golden (``infer_int``) and with
the counting mode.

For each network and preset: the compiler's configuration proposal
(``sim.compile.compiler.propose_config``: every size the network needs raised to the smallest
allowed value; weights that no buffer holds streamed through the largest,
``sim.compile.weight_stream``, and activations that no data memory holds tiled through the largest
in bands of output rows, ``sim.compile.act_tile``, their bus cycles and energy in the figures), then
the counting mode's
cycles, energy, GOPS and GOPS/W, or the one-line
refusal.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import shlex
import sys
import time

import numpy as np

from golden import model as gm
from golden.model import Layer, ModelFormatError, make_model
from rtl.config import PRESETS, preset
from rtl.outputs import check_file, interruptible, json_text, write_files

from sim.util import UserError

__all__ = ["NETWORKS", "COUNT_ONLY_ELEMENTS", "RefNetError", "specs", "build",
           "count_only_budget", "evaluate", "main"]

#: Elements per image and layer allowed while building a network only to compile and count
#: it (no inference). ASSUMPTION: 2**28, above VGG-11's largest layer tensor (its first
#: convolution's 224*224*27 unfolded patches, about 1.4 M) with room for any network here.
COUNT_ONLY_ELEMENTS = 1 << 28


class RefNetError(UserError):
    """A reference network golden cannot express yet (the message says what is missing)."""


# ---- network descriptions ----------------------------------------------------------------------
# ("conv", out, k, stride, pad[, "mul"]), ("dw", k, stride, pad), ("maxpool", k, s[, pad]),
# ("avgpool", k, s[, pad]), ("gap",), ("flatten",), ("fc", out[, "mul"]),
# ("res", [branch], [short]).

def _lenet5():
    return (1, 32, 32), [("conv", 6, 5, 1, 0, "mul"), ("avgpool", 2, 2), ("conv", 16, 5, 1, 0),
                         ("avgpool", 2, 2), ("conv", 120, 5, 1, 0), ("flatten",),
                         ("fc", 84), ("fc", 10, "mul")]


def _basic(c_in, c, stride):
    short = [] if stride == 1 and c_in == c else [("conv", c, 1, stride, 0)]
    return ("res", [("conv", c, 3, stride, 1), ("conv", c, 3, 1, 1)], short)


def _bottleneck(c_in, c, stride):
    short = [] if stride == 1 and c_in == 4 * c else [("conv", 4 * c, 1, stride, 0)]
    return ("res", [("conv", c, 1, 1, 0), ("conv", c, 3, stride, 1),
                    ("conv", 4 * c, 1, 1, 0)], short)


def _resnet20():
    layers, c_in = [("conv", 16, 3, 1, 1, "mul")], 16
    for c, s in ((16, 1), (32, 2), (64, 2)):
        for b in range(3):
            layers.append(_basic(c_in, c, s if b == 0 else 1))
            c_in = c
    return (3, 32, 32), layers + [("gap",), ("flatten",), ("fc", 10, "mul")]


def _plain20(gap=True):
    layers = [("conv", 16, 3, 1, 1, "mul")]
    for c, s in ((16, 1), (32, 2), (64, 2)):
        for b in range(3):
            layers += [("conv", c, 3, s if b == 0 else 1, 1), ("conv", c, 3, 1, 1)]
    return (3, 32, 32), layers + ([("gap",)] if gap else []) + [("flatten",), ("fc", 10, "mul")]


def _resnet(blocks, bottleneck):
    layers = [("conv", 64, 7, 2, 3, "mul"), ("maxpool", 3, 2, 1)]
    c_in = 64
    for stage, (c, n) in enumerate(zip((64, 128, 256, 512), blocks, strict=True)):
        for b in range(n):
            s = 2 if stage and b == 0 else 1
            layers.append(_bottleneck(c_in, c, s) if bottleneck else _basic(c_in, c, s))
            c_in = 4 * c if bottleneck else c
    return (3, 224, 224), layers + [("gap",), ("flatten",), ("fc", 1000, "mul")]


def _vgg11():
    layers = []
    for i, v in enumerate((64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")):
        layers.append(("maxpool", 2, 2) if v == "M" else
                      ("conv", v, 3, 1, 1) + (("mul",) if i == 0 else ()))
    return (3, 224, 224), layers + [("flatten",), ("fc", 4096), ("fc", 4096),
                                    ("fc", 1000, "mul")]


def _vgg19():
    layers = []
    for i, v in enumerate((64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512,
                           512, "M", 512, 512, 512, 512, "M")):
        layers.append(("maxpool", 2, 2) if v == "M" else
                      ("conv", v, 3, 1, 1) + (("mul",) if i == 0 else ()))
    return (3, 224, 224), layers + [("flatten",), ("fc", 4096), ("fc", 4096),
                                    ("fc", 1000, "mul")]


def _alexnet():
    return (3, 227, 227), [("conv", 96, 11, 4, 0, "mul"), ("maxpool", 3, 2),
                           ("conv", 256, 5, 1, 2), ("maxpool", 3, 2), ("conv", 384, 3, 1, 1),
                           ("conv", 384, 3, 1, 1), ("conv", 256, 3, 1, 1), ("maxpool", 3, 2),
                           ("flatten",), ("fc", 4096), ("fc", 4096), ("fc", 1000, "mul")]


def _mobilenet_v1():
    layers = [("conv", 32, 3, 2, 1, "mul")]
    for c, s in ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1),
                 (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)):
        layers += [("dw", 3, s, 1), ("conv", c, 1, 1, 0)]
    return (3, 224, 224), layers + [("gap",), ("flatten",), ("fc", 1000, "mul")]


#: name -> (description, builder of (input shape, layer specs)).
NETWORKS = {
    "lenet5": ("LeNet-5, 1x32x32", _lenet5),
    "resnet20_cifar": ("ResNet-20 AdderNet, CIFAR 3x32x32", _resnet20),
    "plain20_cifar": ("plain-20 AdderNet (no shortcuts), 3x32x32", _plain20),
    "plain20_flat": ("plain-20 without its global pool (timing workload), 3x32x32",
                     lambda: _plain20(gap=False)),
    "vgg11": ("VGG-11, 3x224x224", _vgg11),
    "vgg19": ("VGG-19, 3x224x224", _vgg19),
    "alexnet": ("AlexNet, 3x227x227", _alexnet),
    "resnet18": ("ResNet-18, 3x224x224", lambda: _resnet((2, 2, 2, 2), False)),
    "resnet50": ("ResNet-50, 3x224x224", lambda: _resnet((3, 4, 6, 3), True)),
    "mobilenet_v1": ("MobileNet-v1, 3x224x224", _mobilenet_v1),
}


def specs(name: str):
    """``(input shape, layer specs)`` of network ``name`` (:data:`NETWORKS`)."""
    if name not in NETWORKS:
        raise RefNetError(f"network must be one of {', '.join(NETWORKS)}, not {name!r}")
    return NETWORKS[name][1]()


# ---- building ----------------------------------------------------------------------------------

#: Per accumulator kind: mean and standard deviation of one term for uniform random 8-bit
#: inputs and weights (ASSUMPTION, module docstring): adder ``-|x - w|`` with x, w uniform on
#: 0 .. 255 (mean 255/3, sd 255/sqrt(18)); multiply ``x * w`` with x on 0 .. 255 and w on
#: -128 .. 127 (mean 127.5 x -0.5, sd sqrt(E x^2 E w^2 - (E x E w)^2), E x^2 = 255 x 511 / 6,
#: E w^2 = 5461.5).
_TERM = {"adder": (-255 / 3, 255 / math.sqrt(18)),
         "mul": (127.5 * -0.5, math.sqrt(255 * 511 / 6 * 5461.5 - 63.75 ** 2))}


#: Golden's own inference budget (``golden.model.MAX_IMAGE_ELEMENTS`` as imported, before any
#: :func:`count_only_budget`): layers within it are calibrated on random images.
_INFER_BUDGET = gm.MAX_IMAGE_ELEMENTS
#: Random images the requantization of a layer within golden's budget is calibrated on.
_CAL_IMAGES = 16


def _requant(kind: str, fan_in: int, o: int):
    mean_t, sd_t = _TERM[kind]
    return _requant_of(np.full(o, mean_t * fan_in), np.full(o, sd_t * math.sqrt(fan_in)))


def _requant_of(mean: np.ndarray, sd: np.ndarray):
    """Per channel: the accumulator's ``mean`` to code 128, one ``sd`` to 40 codes."""
    mult, bias, shift = [], [], []
    for m, d in zip(mean.tolist(), sd.tolist(), strict=True):
        a, b, c = _requant_one(m, max(float(d), 1.0))
        mult.append(a)
        bias.append(b)
        shift.append(c)
    return (np.array(mult, np.int32), np.array(bias, np.int64), np.array(shift, np.int32))


def _requant_one(mean: float, sd: float):
    scale = 40.0 / sd
    shift = max(0, min(46, int(math.floor(math.log2((1 << 14) / scale)))))
    mult = max(1, min(32767, round(scale * (1 << shift))))
    return mult, (128 << shift) - round(mean * mult), shift


def _calibrate(layer: Layer, x: np.ndarray) -> Layer:
    """``layer`` with its requantization set from its accumulators on the images ``x``."""
    raw = {k: v for k, v in layer.params.items() if not k.startswith("rq_")}
    raw["bias"] = np.zeros(raw["weight"].shape[0], np.int32)
    acc = gm.layer_forward_int(Layer(layer.kind, "logits", raw), x).astype(np.float64)
    flat = np.moveaxis(acc, 1, 0).reshape(acc.shape[1], -1)
    m, b, s = _requant_of(flat.mean(axis=1), flat.std(axis=1))
    return Layer(layer.kind, layer.output, {**layer.params, "rq_mult": m, "rq_bias": b,
                                            "rq_shift": s}, layer.float_params)


def _compute(kind: str, w: np.ndarray, output: str, extra: dict) -> Layer:
    o = w.shape[0]
    acc = "adder" if kind.startswith("adder") else "mul"
    fan_in = int(np.prod(w.shape[1:]))
    params = {"weight": w, **extra}
    fw = np.broadcast_to(np.float32(0), w.shape)     # no float model: a zero view, no memory
    if output == "logits":
        params["bias"] = np.zeros(o, np.int32)
        fparams = {"weight": fw, "bias": np.zeros(o, np.float32)}
    else:
        params["rq_mult"], params["rq_bias"], params["rq_shift"] = _requant(acc, fan_in, o)
        fparams = {"weight": fw, "bn_gamma": np.ones(o, np.float32),
                   "bn_beta": np.zeros(o, np.float32), "bn_mean": np.zeros(o, np.float32),
                   "bn_var": np.ones(o, np.float32), "bn_eps": np.float64(1e-5)}
    return Layer(kind, output, params, fparams)


def _weights(rng, kind: str, shape) -> np.ndarray:
    if kind.startswith("adder"):
        return rng.integers(0, 256, shape, dtype=np.uint8)
    return rng.integers(-128, 128, shape, dtype=np.int16).astype(np.int8)


@contextlib.contextmanager
def count_only_budget():
    """Raise golden's per-image memory budget (``golden.model.MAX_IMAGE_ELEMENTS``) to
    :data:`COUNT_ONLY_ELEMENTS` inside the block: for building and compiling networks that
    are only counted, never inferred."""
    old = gm.MAX_IMAGE_ELEMENTS
    gm.MAX_IMAGE_ELEMENTS = max(old, COUNT_ONLY_ELEMENTS)
    try:
        yield
    finally:
        gm.MAX_IMAGE_ELEMENTS = old


def _flat(layers) -> list:
    """The specs with residual blocks expanded (module docstring): ``(spec, input)`` items,
    ``input`` the index a branch's first convolution reads (None: the previous item), and
    ``("add", source)`` items."""
    out = []
    for s in layers:
        if s[0] != "res":
            out.append((s, None))
            continue
        block_in = len(out) - 1
        _, branch, short = s
        for sc in short:
            out.append((sc, None))
        src = len(out) - 1 if short else block_in
        for j, b in enumerate(branch):
            out.append((b, block_in if short and j == 0 else None))
        out.append((("add", src), None))
    return out


def build(name: str, seed: int = 0, *, spec=None):
    """The random-weight ``golden.model.Model`` of network ``name`` (seeded); ``spec``: its
    ``(input shape, layer specs)`` instead of ``specs(name)`` (another tool's networks).

    Raises
    ------
    RefNetError
        Golden's validation refuses the network (its message).
    """
    shape, layers = specs(name) if spec is None else spec
    rng = np.random.default_rng(seed)
    out, cur = [], tuple(shape)
    cal = rng.integers(0, 256, (_CAL_IMAGES, *shape), dtype=np.uint8)   # calibration images
    flat = _flat(layers)
    last = max(i for i, (s, _) in enumerate(flat) if s[0] == "fc")
    shapes, cals = {-1: cur}, {-1: cal}      # per layer: output shape, calibration outputs
    for i, (s, src) in enumerate(flat):
        op = s[0]
        if src is not None:                  # a branch reading the block input
            cur, cal = shapes[src], cals.get(src)
        if op == "add":
            o = cur[0]
            w = np.ones((o, 2), np.int8)
            mean, sd = np.full(o, 256.0), np.full(o, 40.0 * math.sqrt(2))
            if cal is not None and cals.get(s[1]) is None:
                cal = None                   # the shortcut beyond golden's budget
            if cal is not None:
                tot = (cal.astype(np.float64) + cals[s[1]]).transpose(1, 0, 2, 3)
                mean, sd = tot.reshape(o, -1).mean(axis=1), tot.reshape(o, -1).std(axis=1)
            m, b, sh = _requant_of(mean, sd)
            out.append(Layer("add", "", {"weight": w, "source": np.int64(s[1]), "rq_mult": m,
                                         "rq_bias": b, "rq_shift": sh}))
            if cal is not None:
                cal = gm.layer_forward_int(out[-1], cal, cals[s[1]])
            shapes[i], cals[i] = cur, cal
            continue
        if op in ("conv", "dw"):
            if op == "conv":
                o, k, st, pd = s[1:5]
                kind = "mul_conv2d" if s[5:] == ("mul",) else "adder_conv2d"
                w = _weights(rng, kind, (o, cur[0], k, k))
                extra = {"stride": np.int64(st), "padding": np.int64(pd)}
                if src is not None:
                    extra["input"] = np.int64(src)
                out.append(_compute(kind, w, "requant", extra))
            else:
                k, st, pd = s[1:4]
                o = cur[0]
                w = _weights(rng, "adder", (o, 1, k, k))
                out.append(_compute("adder_gconv2d", w, "requant", {
                    "stride": np.int64(st), "padding": np.int64(pd),
                    "groups": np.int64(o), "pad_value": np.int64(0)}))
            new = (o, (cur[1] + 2 * pd - k) // st + 1, (cur[2] + 2 * pd - k) // st + 1)
            if cal is not None and new[1] * new[2] * cur[0] * k * k > _INFER_BUDGET:
                cal = None                 # beyond golden's budget: the analytic requant
            cur = new
        elif op in ("maxpool", "avgpool", "gap"):
            k, st = (cur[1], cur[1]) if op == "gap" else s[1:3]
            pd = s[3] if len(s) > 3 else 0
            kind = "max_pool2d" if op == "maxpool" else "avg_pool2d"
            out.append(Layer(kind, "", {"kernel": np.int64(k), "stride": np.int64(st),
                                        **({"padding": np.int64(pd)} if pd else {})}))
            cur = (cur[0], (cur[1] + 2 * pd - k) // st + 1, (cur[2] + 2 * pd - k) // st + 1)
        elif op == "flatten":
            out.append(Layer("flatten"))
            cur = (math.prod(cur),)
        else:                                            # fc
            o = s[1]
            kind = "mul_linear" if s[2:] == ("mul",) else "adder_linear"
            w = _weights(rng, kind, (o, cur[0]))
            out.append(_compute(kind, w, "logits" if i == last else "requant", {}))
            cur = (o,)
        if cal is not None:
            if out[-1].output == "requant":
                out[-1] = _calibrate(out[-1], cal)
            cal = gm.layer_forward_int(out[-1], cal)
        shapes[i], cals[i] = cur, cal
    try:
        return make_model(name=name, input_shape=shape, input_scale=1 / 255,
                          class_names=[str(c) for c in range(cur[0])], layers=out)
    except ModelFormatError as e:
        raise RefNetError(f"{name}: golden refuses the model: {e}") from None


# ---- evaluation --------------------------------------------------------------------------------

def _ops(model) -> int:
    """2 x output elements x fan-in over every compute layer (``sim.analysis.report.stage_ops``'s
    rule; depthwise layers by their own fan-in)."""
    shapes, total = model.shapes(), 0
    for i, ly in enumerate(model.layers):
        if ly.is_compute:
            w = ly.params["weight"]
            total += 2 * math.prod(shapes[i + 1]) * math.prod(w.shape[1:])
    return total


def evaluate(name: str, preset_name: str, *, seed: int = 0, check_images: int = 1,
             model=None, check_large: bool = False) -> dict:
    """One row of the table: network ``name`` on preset ``preset_name`` (its default mat),
    sized by ``propose_config``, counted; with ``check_images`` > 0 and a network inside
    golden's inference budget, that many random images on the cycle model too, compared with
    golden and with the counting mode (``check_large``: networks beyond the budget too,
    with it raised for golden's inference of their images). Returns a dict with ``status``
    ``ok`` or ``refused`` (and ``reason``)."""
    from sim.compile.compiler import CompileError, compile_model, propose_config
    from sim.analysis.counting import count_model, figures, stage_figures
    row = {"network": name, "preset": preset_name}
    config = preset(preset_name)
    t0 = time.perf_counter()
    with count_only_budget():            # no inference below: golden's budget does not apply
        try:
            if model is None:
                model = build(name, seed)
            row["ops"] = _ops(model)
            t1 = time.perf_counter()
            config = propose_config(model, config, stream_weights=True, tile_activations=True)
            t2 = time.perf_counter()
            compiled = compile_model(model, config, stream_weights=True, tile_activations=True)
        except CompileError as e:
            if e.field is None or e.size is not None or e.field == "data_words":
                return {**row, "status": "refused", "reason": str(e)}
            return _evaluate_segmented(row, model, preset(preset_name), str(e), t1)
        except RefNetError as e:
            return {**row, "status": "refused", "reason": str(e)}
        t3 = time.perf_counter()
        res = count_model(compiled, model)
        t4 = time.perf_counter()
    base = PRESETS[preset_name]
    changed = {f: getattr(config, f) for f in base.as_dict()
               if getattr(config, f) != getattr(base, f)}
    row.update(status="ok", subarrays=compiled.subarrays, proposed=changed,
               stages=len(compiled.stages),
               chunk_runs=sum(len(s.chunks) for s in compiled.stages),
               weight_stream={k: res.host["weight_stream"][k]
                              for k in ("slots", "entries", "bits", "bus_cycles",
                                        "energy_j")},
               act_tile={k: res.host["act_tile"][k]
                         for k in ("loads", "stores", "bus_cycles", "energy_j")},
               tiled_stages=sum(1 for s in compiled.stages if s.act_bands),
               **figures(res), seconds={"build": round(t1 - t0, 3),
                                        "propose_config": round(t2 - t1, 3),
                                        "compile": round(t3 - t2, 3),
                                        "count": round(t4 - t3, 3)})
    with count_only_budget():            # its shapes: a 224x224 network's are above the budget
        row["per_stage"] = stage_figures(res, compiled, model)
    if check_images:
        row["cycle_model"] = _check_on_cycle_model(model, compiled, res, check_images, seed,
                                                   large=check_large)
    return row


def _evaluate_segmented(row: dict, model, config, why: str, t1: float) -> dict:
    """``row`` for a network whose tables no core holds whole (``why``: the compiler's refusal,
    a table field beyond its largest size, e.g. VGG-19's 70,043 gather offsets): compiled
    segment by segment for one mat (``sim.compile.multi_mat`` with M = 1, each compute layer
    with its pools a program set of its own, its sizes proposed per segment, the tables of
    segments that do not fit together reloaded every image) and counted
    (``multi_mat.count_partitioned``: cycles, host and bus cycles, reloads and energy summed
    over the segments). ``cycles`` are the segments' compute cycles (the single mat's rows'
    rule); the latency has every host, bus and reload cycle. ``per_stage``: one row per
    segment."""
    from dataclasses import replace

    from rtl.config import SIZE_FIELDS
    from sim.compile import act_tile as _at
    from sim.compile import multi_mat as mm
    from sim.compile import weight_stream as _ws
    from sim.compile.compiler import CompileError, _size_for
    with count_only_budget():        # each segment's sizes proposed, then the most of each
        try:
            _, proposed = mm.compile_partitioned(model, config, 1, propose=True,
                                                 stream_weights=True, tile_activations=True,
                                                 counting_only=True)
            config = replace(config, **{f: max(getattr(r[0].config, f) for r in proposed)
                                        for f in SIZE_FIELDS})
            for _ in range(3):          # then raised where the segments fit together
                segs, compiled = mm.compile_partitioned(model, config, 1, stream_weights=True,
                                                        tile_activations=True,
                                                        counting_only=True)
                fits, need = mm._coresident(compiled, 0)
                up = {f: _size_for(f, n) for f, n in need.items()
                      if not fits[f] and _size_for(f, n) <= SIZE_FIELDS[f][2]}
                if not up:
                    break
                config = replace(config, **up)
        except (CompileError, mm.MultiMatError) as e:
            return {**row, "status": "refused",
                    "reason": f"{why}; segment by segment: {e}"}
        t3 = time.perf_counter()
        res = mm.count_partitioned(segs, compiled)
        t4 = time.perf_counter()
    comps = [r[0] for r in compiled]
    ws = [_ws.cost(c) for c in comps]
    at = [_at.cost(c) for c in comps]
    base = PRESETS[row["preset"]]
    proposed = {f: getattr(config, f) for f in base.as_dict()
                if getattr(config, f) != getattr(base, f)}
    reloads = [sg["mats"][0]["reload"] for sg in res["segments"]]
    row.update(status="ok", subarrays=comps[0].subarrays, proposed=proposed,
               segmented={"segments": len(segs), "why": why,
                          "reloaded": sum(1 for r in reloads if r),
                          "reload_bits": sum(r["bits"] for r in reloads if r),
                          "reload_energy_j": sum(r["energy_j"] for r in reloads if r)},
               stages=sum(len(c.stages) for c in comps),
               chunk_runs=sum(len(st.chunks) for c in comps for st in c.stages),
               weight_stream={k: sum(w[k] for w in ws)
                              for k in ("slots", "entries", "bits", "bus_cycles", "energy_j")},
               act_tile={k: sum(a[k] for a in at)
                         for k in ("loads", "stores", "bus_cycles", "energy_j")},
               tiled_stages=sum(1 for c in comps for st in c.stages if st.act_bands),
               cycles=res["counters"]["cycles"], stalls=res["counters"]["stalls"],
               ops=res["ops"], energy_j=res["energy_j"], latency_s=res["latency_s"],
               gops=res["gops"], gops_per_w=res["gops_per_w"],
               seconds={"build": 0.0, "propose_config": 0.0,
                        "compile": round(t3 - t1, 3), "count": round(t4 - t3, 3)})
    clock = config.clock_mhz * 1e6
    row["per_stage"] = [
        {"stage": f"segment {sg['index']} (layers {list(sg['layers'])})",
         "layer_index": list(sg["layers"])[0], "cycles": sg["compute_cycles"][0],
         "ops": sg["ops"], "energy_j": sg["energy_j"], "latency_s": sg["cycles"] / clock,
         "gops": sg["ops"] / (sg["cycles"] / clock) / 1e9,
         "gops_per_w": sg["ops"] / sg["energy_j"] / 1e9}
        for sg in res["segments"]]
    return row


def _check_on_cycle_model(model, compiled, res, n: int, seed: int, *,
                          large: bool = False) -> dict:
    """``n`` random images on the cycle model: logits == golden, counters == the count
    (``large``: a network beyond golden's inference budget too, the budget raised)."""
    if large:
        with count_only_budget():
            return _check_on_cycle_model(model, compiled, res, n, seed)
    from sim.compile.compiler import RunError, run_compiled
    from sim.hw.core_model import CoreModel
    from sim.analysis.counting import count_model, measure_skips
    try:
        gm.Model.shapes(model)          # inside golden's own inference budget?
    except ModelFormatError as e:
        return {"run": False, "reason": f"not run: {e}"}
    rng = np.random.default_rng(seed + 1)
    x = rng.integers(0, 256, (n, *model.input_shape), dtype=np.uint8)
    core = CoreModel(compiled.config, subarrays=compiled.subarrays)
    golden = gm.infer_int(model, x)
    out = {"run": True, "images": n, "logits_equal": True, "counters_equal": True}
    t0 = time.perf_counter()
    for i, img in enumerate(x):
        try:
            r = run_compiled(compiled, img, core, load_weights=i == 0)
        except RunError as e:
            return {"run": False, "error": True, "reason": f"the cycle model stopped: {e}"}
        out["logits_equal"] &= r.logits.tolist() == golden[i].tolist()
        want = res
        if compiled.config.zero_skip:
            skipped, _ = measure_skips(compiled, img[None], CoreModel(
                compiled.config, subarrays=compiled.subarrays))
            want = count_model(compiled, skipped=skipped)
        out["counters_equal"] &= r.counters == want.counters
    out["seconds_per_image"] = round((time.perf_counter() - t0) / n, 3)
    return out


def _fmt(v, unit=""):
    return "-" if v is None else f"{v:.3g}{unit}"


def markdown(rows: list) -> str:
    """The table as Markdown: one row per network and preset."""
    lines = ["| network | preset | cycles | energy (uJ) | latency (ms) | GOPS | GOPS/W | "
             "sizes raised / refusal |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        desc = NETWORKS[r["network"]][0]
        if r["status"] == "ok":
            prop = ", ".join(f"{k}={v}" for k, v in r["proposed"].items()) or "none"
            ws = r.get("weight_stream") or {}
            if ws.get("slots"):
                prop += (f"; weights streamed: {ws['slots']:,} buffer words and "
                         f"{ws['entries']:,} requant entries per image, "
                         f"{ws['bus_cycles']:,} bus cycles, {_fmt(ws['energy_j'] * 1e6)} uJ")
            at = r.get("act_tile") or {}
            if at.get("loads") or at.get("stores"):
                prop += (f"; activations tiled in {r['tiled_stages']} stages: "
                         f"{at['loads']:,} words loaded and {at['stores']:,} stored per image, "
                         f"{at['bus_cycles']:,} bus cycles, {_fmt(at['energy_j'] * 1e6)} uJ")
            sg = r.get("segmented")
            if sg:
                prop += (f"; compiled segment by segment on one mat ({sg['segments']} "
                         f"segments, sizes the most any segment was proposed; tables of "
                         f"{sg['reloaded']} reloaded every image, {sg['reload_bits']:,} bits, "
                         f"{_fmt(sg['reload_energy_j'] * 1e6)} uJ), as a whole: "
                         f"{sg['why'][:120]}".replace("|", "/"))
            cm = r.get("cycle_model") or {}
            if cm.get("run"):
                prop += (f"; cycle model: logits {'==' if cm['logits_equal'] else '!='} golden, "
                         f"counters {'==' if cm['counters_equal'] else '!='} count")
            elif cm.get("error"):
                prop += f"; {cm['reason'].replace('|', '/')}"
            lines.append(f"| {desc} | {r['preset']} | {r['cycles']:,} | "
                         f"{_fmt(r['energy_j'] * 1e6)} | {_fmt(r['latency_s'] * 1e3)} | "
                         f"{_fmt(r['gops'])} | {_fmt(r['gops_per_w'])} | {prop} |")
        else:
            reason = r["reason"].replace("|", "/")
            if len(reason) > 240:                  # the JSON has it whole
                reason = reason[:160] + " ... " + reason[-70:]
            lines.append(f"| {desc} | {r['preset']} | - | - | - | - | - | refused: {reason} |")
    return "\n".join(lines)


def per_layer_markdown(row: dict) -> str:
    """The per-stage table of one counted row (:func:`sim.analysis.counting.stage_figures`)."""
    lines = [f"{NETWORKS[row['network']][0]} on {row['preset']}, per stage (counting mode):", "",
             "| stage | cycles | ops | energy (nJ) | GOPS | GOPS/W |",
             "|---|---:|---:|---:|---:|---:|"]
    for s in row["per_stage"]:
        lines.append(f"| {s['stage']} | {s['cycles']:,} | {s['ops']:,} | "
                     f"{_fmt(s['energy_j'] * 1e9)} | {_fmt(s['gops'])} | "
                     f"{_fmt(s['gops_per_w'])} |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.reference_nets",
                                description=__doc__.splitlines()[0])
    p.add_argument("--networks", default=",".join(NETWORKS),
                   help=f"comma-separated networks (default all: {', '.join(NETWORKS)})")
    p.add_argument("--presets", default=",".join(PRESETS),
                   help=f"comma-separated presets (default all: {', '.join(PRESETS)})")
    p.add_argument("--seed", default="0", help="weight seed (default 0)")
    p.add_argument("--check-images", default="1",
                   help="random images per network on the cycle model where golden can infer "
                   "it (default 1; 0: none)")
    p.add_argument("--check-large", action="store_true",
                   help="run the --check-images images on the cycle model for networks beyond "
                   "golden's inference budget too (the 224x224 ones: about 10 minutes an "
                   "image for MobileNet-v1, longer for the others; not in make test)")
    p.add_argument("--per-layer", default="resnet20_cifar",
                   help="comma-separated networks whose per-stage cycles, energy, GOPS and "
                   "GOPS/W go into the Markdown too (default resnet20_cifar; the JSON has "
                   "every row's)")
    p.add_argument("--json", default="build/reports/reference-nets.json",
                   help="JSON output (default build/reports/reference-nets.json)")
    p.add_argument("--md", default="build/reports/reference-nets.md",
                   help="Markdown table output (default build/reports/reference-nets.md)")
    return p


def _names(option: str, text: str, allowed) -> list:
    names = [t.strip() for t in text.split(",") if t.strip()]
    bad = [t for t in names if t not in allowed]
    if bad or not names:
        raise UserError(f"{option} must be a comma-separated list of {', '.join(allowed)}, "
                        f"not {text!r}")
    return names


def _int(option: str, text: str, lo: int) -> int:
    try:
        v = int(text)
    except ValueError:
        v = lo - 1
    if v < lo:
        raise UserError(f"{option} must be an int >= {lo}, not {text!r}")
    return v


@interruptible("python -m sim.analysis.reference_nets", "nothing was written")
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        nets = _names("--networks", args.networks, NETWORKS)
        presets = _names("--presets", args.presets, PRESETS)
        seed = _int("--seed", args.seed, 0)
        check = _int("--check-images", args.check_images, 0)
        per_layer = ([] if not args.per_layer.strip() else
                     _names("--per-layer", args.per_layer, NETWORKS))
        out_json = check_file("--json", args.json)
        out_md = check_file("--md", args.md)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    rows = []
    for net in nets:
        model = None
        with count_only_budget():
            try:
                model = build(net, seed)
            except RefNetError:
                pass                                   # each row says why
        for p in presets:
            row = evaluate(net, p, seed=seed, check_images=check, model=model,
                           check_large=args.check_large)
            rows.append(row)
            if row["status"] == "ok":
                s = row["seconds"]
                cm = row.get("cycle_model") or {}
                note = ("" if not cm else
                         f"; cycle model: logits {'==' if cm['logits_equal'] else '!='} golden, "
                         f"counters {'==' if cm['counters_equal'] else '!='} count "
                         f"({cm['seconds_per_image']} s)" if cm.get("run") else
                         f"; {cm['reason']}")
                print(f"{net:15s} {p:9s} {row['cycles']:>14,} cycles  "
                      f"{row['energy_j'] * 1e6:10.4g} uJ  {row['gops']:8.3g} GOPS  "
                      f"{row['gops_per_w']:8.3g} GOPS/W  (propose {s['propose_config']} s, "
                      f"compile {s['compile']} s, count {s['count']} s){note}", flush=True)
            else:
                print(f"{net:15s} {p:9s} refused: {row['reason']}", flush=True)
    command = shlex.join(["python", "-m", "sim.analysis.reference_nets", *argv])
    tables = [per_layer_markdown(r) for r in rows
              if r["network"] in per_layer and r["status"] == "ok"]
    md = "\n\n".join([markdown(rows), *tables]) + f"\n\nMade by `{command}`.\n"
    write_files({out_json: json_text({"command": command, "seed": seed, "rows": rows}),
                 out_md: md}, option="--json")
    print(f"wrote {out_json} and {out_md}")
    bad = [r for r in rows if (r.get("cycle_model") or {}).get("error")
           or ((r.get("cycle_model") or {}).get("run")
               and not (r["cycle_model"]["logits_equal"] and r["cycle_model"]["counters_equal"]))]
    if bad:
        print(f"error: {len(bad)} network x preset runs on the cycle model failed or disagree "
              f"(see the table)", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
