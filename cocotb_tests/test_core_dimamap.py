"""Binarized layers (``bin_gconv2d``) compiled onto the core's FA/FS lanes (route
``dima_binconv``, ``sim.compile.dima_map``; seed 002 Fig. 4b), both simulators.

Random small layers -- depthwise 3x3 with channel multiplier m in {1, 2} (padding, a fused 2x2
pool, stride 2), pointwise 1x1 with a fan-in that needs several tiles of lanes, a grouped
case, two Add-Net basic blocks with eq.-3 outputs (the PPU's threshold stage) and padding
code 128 (``MOVE SETPAD``), standalone max and average pools between and after binarized
layers (``sim.compile.layer_stages``' data layout, the pools on the class-B subarray), a branch
(a binarized 3x3 layer reading the depthwise layer's output, then a residual ``add`` of the two
paths, :func:`branch_model`) -- each followed by a small multiply FC head (route
``dima_bitwise``); every stage of every image == ``golden.model.infer_int``, and the counters
== the cycle model's and the compiler's static profile (``cocotb_tests.test_core._run_cases``).
Random multi-bit layers (an inception-like convolution, MLPs) on the bit-wise convolver (route
``dima_bitwise``) likewise, with the weight rows resident (written by the load programs, once
per case) and with the per-channel writes. One core build: a dima_sot mat of 2 subarrays of
128 x 16 (8 FA/FS lanes each), split by the preset's ``class_split`` into one class-A subarray
(the FA/FS lanes' layers) and one class-B subarray (the bit-wise convolver's), each stage's
runs gated onto its class's subarray (``MOVE SUBSEL``).
"""

import dataclasses
import os

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from cocotb_tests.test_core import _bn, _requant, _run_cases
from golden import layers as gl
from golden.model import Layer, make_model
from rtl.config import preset
from rtl.core import Core

BLOCK = "core_dimamap"
#: A small mat of the dima_sot preset: 2 subarrays of 128 x 16; its class_split (7, 2) puts
#: the binarized layers on subarray 1 (class A), the multi-bit ones on subarray 0 (class B),
#: whose weight rows (dima_bitwise) need the 128 rows for a 5-tile FC head.
SMALL = {"rows": 128, "columns": 16, "subarrays_per_mat": 2, "mats": 1}


def small_config():
    """The dima_sot preset cut to :data:`SMALL`."""
    return dataclasses.replace(preset("dima_sot"), **SMALL)


def bin_layer(rng, x, *, o, k=3, groups=1, stride=1, padding=0, output="requant",
              pad_value=0):
    """A random ``bin_gconv2d`` layer on batch ``x`` (uint8 [N, C, H, W]): weights in {-1, +1},
    requant parameters spread over the golden accumulators, or (``quant``, seed 002 eq. 3)
    255 sorted random thresholds over their range and a random sign per channel; returns it
    and its golden output."""
    c = x.shape[1]
    w = np.where(rng.integers(0, 2, (o, c // groups, k, k)) == 1, 1, -1).astype(np.int8)
    acc = gl.bin_conv2d(x, w, stride=stride, padding=padding, groups=groups,
                        pad_value=pad_value)
    params = dict(weight=w, stride=stride, padding=padding, groups=groups, pad_value=pad_value)
    fparams = dict(weight=w.astype(np.float32), alpha=np.ones(o, np.float32))
    if output == "quant":
        sign = np.where(rng.integers(0, 2, o) == 1, 1, -1).astype(np.int8)
        flat = np.moveaxis(acc, 1, 0).reshape(o, -1) * sign[:, None]
        lo, hi = flat.min(1) - 3, flat.max(1) + 3
        th = np.sort(rng.integers(lo[:, None], hi[:, None] + 1, (o, 255)), axis=1)
        th[:, :4] = np.minimum(th[:, :4], lo[:, None] - 1 - (1 << 40))  # far out of range
        params.update(q_thresh=th.astype(np.int64), q_sign=sign)
        y = gl.threshold_quantize(acc, th.astype(np.int64), sign)
        fparams.update(_bn(o), quant_tmax=np.float64(1.0))
    elif output == "requant":
        mult, bias, shift = _requant(acc, rng)
        params.update(rq_mult=mult, rq_bias=bias, rq_shift=shift)
        y = gl.requantize(acc, mult, bias, shift)
        fparams.update(_bn(o))
    else:
        bias = rng.integers(-1000, 1000, o).astype(np.int32)
        params.update(bias=bias)
        y = gl.add_bias(acc, bias)
        fparams.update(bias=np.zeros(o, np.float32))
    return Layer("bin_gconv2d", output, params, fparams), y


def bin_cases(rng, n_images):
    """(name, model, images) of the random binarized cases (module docstring)."""
    cases = []

    def case(name, shape, specs):
        x = rng.integers(0, 256, (n_images, *shape)).astype(np.uint8)
        layers, cur = [], x
        for spec in specs:
            if spec[0] in ("avg_pool2d", "max_pool2d"):   # ("avg_pool2d",): the 2x2 one
                kernel, stride = spec[1:] if len(spec) > 1 else (2, 2)
                layers.append(Layer(spec[0], "", dict(kernel=kernel, stride=stride)))
                cur = getattr(gl, spec[0])(cur, kernel, stride)
                continue
            layer, cur = bin_layer(rng, cur, **spec[1])
            layers.append(layer)
        if True:                        # a small multiply FC head (the logits layer)
            w = rng.integers(-128, 128, (3, int(np.prod(cur.shape[1:])))).astype(np.int8)
            layers += [Layer("flatten"), Layer("mul_linear", "logits", dict(
                weight=w, bias=rng.integers(-1000, 1000, 3).astype(np.int32)),
                dict(weight=w.astype(np.float32), bias=np.zeros(3, np.float32)))]
        cases.append((name, make_model(name=name, input_shape=shape, input_scale=1 / 255,
                                       class_names=["0", "1", "2"],
                                       layers=layers), x))

    case("depthwise_m1", (3, 5, 5), [("bin", dict(o=3, groups=3, padding=1))])
    case("depthwise_m2_pool", (2, 6, 6), [("bin", dict(o=4, groups=2, padding=1)),
                                          ("avg_pool2d",)])
    case("depthwise_m2_stride2", (3, 7, 7), [("bin", dict(o=6, groups=3, stride=2))])
    case("pointwise_tiled", (20, 3, 3), [("bin", dict(o=5, k=1))])
    case("grouped_block", (4, 4, 4), [("bin", dict(o=8, groups=4, padding=1)),
                                      ("bin", dict(o=4, k=1, groups=2))])
    case("addnet_blocks_quant_pad128", (2, 5, 5),
         [("bin", dict(o=4, groups=2, padding=1, output="quant")),
          ("bin", dict(o=3, k=1, output="quant")),
          ("bin", dict(o=6, groups=3, padding=1, output="quant", pad_value=128)),
          ("bin", dict(o=2, k=1, output="quant")), ("avg_pool2d",)])
    # standalone pools between and after binarized layers (sim.compile.layer_stages' data
    # layout, as fashion_addnet's 4x4 average pool): a 3x3 stride-1 max pool (two MAX4
    # passes through scratch) and a 3x3 stride-1 average pool (a window of 9: no power of 2)
    case("blocks_standalone_pools", (2, 6, 6),
         [("bin", dict(o=4, groups=2, padding=1, output="quant")), ("max_pool2d", 3, 1),
          ("bin", dict(o=3, k=1)), ("avg_pool2d", 3, 1)])
    xb = rng.integers(0, 256, (n_images, 2, 5, 5)).astype(np.uint8)
    cases.append(("branch_residual_add", branch_model(rng, xb), xb))
    return cases


def branch_model(rng, x):
    """Binarized layers with a branch (``golden.model``'s ``input`` array) on
    ``sim.compile.layer_stages``' layout: a depthwise layer (m = 2, eq.-3 output), a pointwise
    one, a second binarized 3x3 layer (padding code 128) that reads the depthwise layer's
    output again instead of the pointwise one's, the ``add`` of the two paths (shortcut: the
    pointwise output), a small multiply head."""
    from tests.layer_models import fit_requant
    l0, y0 = bin_layer(rng, x, o=4, groups=2, padding=1, output="quant")
    l1, y1 = bin_layer(rng, y0, o=3, k=1)
    l2, y2 = bin_layer(rng, y0, o=3, padding=1, pad_value=128)
    l2 = dataclasses.replace(l2, params={**l2.params, "input": 0})     # reads layer 0
    w = np.stack([rng.integers(1, 5, 3), rng.integers(-2, 4, 3)], axis=1).astype(np.int8)
    acc = (y2.astype(np.int64) * w[:, 0].reshape(1, -1, 1, 1)
           + y1.astype(np.int64) * w[:, 1].reshape(1, -1, 1, 1))
    m, b, s = fit_requant(acc, rng)
    add = Layer("add", "", {"weight": w, "source": 1, "rq_mult": m, "rq_bias": b,
                            "rq_shift": s})
    y3 = gl.residual_add(y2, y1, w, m, b, s)
    hw = rng.integers(-128, 128, (3, int(np.prod(y3.shape[1:])))).astype(np.int8)
    head = Layer("mul_linear", "logits", dict(weight=hw, bias=np.zeros(3, np.int32)),
                 dict(weight=hw.astype(np.float32), bias=np.zeros(3, np.float32)))
    return make_model(name="bin_branch", input_shape=x.shape[1:], input_scale=1 / 255,
                      class_names=["0", "1", "2"], layers=[l0, l1, l2, add, Layer("flatten"),
                                                           head])


@cocotb.test()
async def core_dima_layers(dut):
    """Random binarized layers on the FA/FS lanes == golden (module docstring)."""
    p = load_params()
    if p.get("case", "layers") != "layers":
        return
    rng_py, seed = make_rng(p, "core_dima_layers")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    await _run_cases(dut, bin_cases(rng, p["images"]), small_config(), seed)


def bitwise_cases(rng, n_images):
    """(name, model, images) of random multi-bit multiply layers for the bit-wise convolver
    (route ``dima_bitwise``, seed 002 sec. 3.3): an inception-like 3x3 convolution with
    padding and a fused 2x2 pool (``segmented``: a patch per subarray), a stride-2 one, an
    MLP of two linear layers whose first fan-in needs two ``wide`` tiles of the 2 x 16-column
    mat, and a one-output-channel linear layer."""
    from cocotb_tests.test_core import _layer
    cases = []

    def case(name, shape, specs):
        x = rng.integers(0, 256, (n_images, *shape)).astype(np.uint8)
        layers, cur = [], x
        for kind, kw in specs:
            if kind == "avg_pool2d":
                layers.append(Layer("avg_pool2d", "", dict(kernel=2, stride=2)))
                cur = gl.avg_pool2d(cur, 2, 2)
            elif kind == "flatten":
                layers.append(Layer("flatten"))
                cur = cur.reshape(cur.shape[0], -1)
            else:
                layer, cur = _layer(kind, rng, cur, **kw)
                layers.append(layer)
        cases.append((name, make_model(name=name, input_shape=shape, input_scale=1 / 255,
                                       class_names=[str(i) for i in range(cur.shape[1])],
                                       layers=layers), x))

    case("inception_pool_mlp", (1, 6, 6),
         [("mul_conv2d", dict(o=3)), ("avg_pool2d", {}), ("flatten", {}),
          ("mul_linear", dict(o=4)), ("mul_linear", dict(o=3, output="logits"))])
    case("conv_stride2", (2, 5, 5), [("mul_conv2d", dict(o=2, stride=2, padding=0)),
                                     ("flatten", {}), ("mul_linear", dict(o=2,
                                                                          output="logits"))])
    case("mlp_two_tiles", (40, 1, 1), [("flatten", {}), ("mul_linear", dict(o=5)),
                                       ("mul_linear", dict(o=1, output="logits"))])
    return cases


@cocotb.test()
async def core_dima_bitwise(dut):
    """Random multi-bit multiply layers on the bit-wise convolver (route dima_bitwise: AND2
    of weight and input planes both in the array) == golden, counters == the cycle model's
    and the compiler's profile (same core build as the binarized layers)."""
    p = load_params()
    if p.get("case", "layers") != "layers":
        return
    rng_py, seed = make_rng(p, "core_dima_bitwise")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    cases = bitwise_cases(rng, p["images"])
    await _run_cases(dut, cases, small_config(), seed)
    # the cases above ran with weight rows resident where the 128 rows have spare ones (the
    # load programs in CoreHost.load_compiled, once per case); now the same cases with the
    # per-channel writes, on the same core
    from sim.compile.compiler import compile_model
    from sim.routes import dima_bitwise
    assert any(compile_model(m, small_config()).load_programs for _, m, _ in cases), (
        "no case has resident weight rows: the load programs are not exercised")
    token = dima_bitwise.RESIDENT.set(False)
    try:
        await _run_cases(dut, cases, small_config(), seed)
    finally:
        dima_bitwise.RESIDENT.reset(token)


@cocotb.test()
async def core_dima_addnet(dut):
    """The bundled Add-Net (digits_addnet) on the full dima_sot core: every stage == golden,
    counters == the cycle model's (a measurement run, not in CI: SPINPIM_DIMA_FULL=1)."""
    p = load_params()
    if p.get("case") != "addnet":
        return
    from golden import datasets
    from golden.model import bundled_model_path, load_model
    from sim.compile.compiler import propose_config
    _, seed = make_rng(p, "core_dima_addnet")
    model = load_model(bundled_model_path("digits_addnet"))
    x, _ = datasets.load_dataset("digits", "test")
    config = propose_config(model, preset("dima_sot"))
    await _run_cases(dut, [("digits_addnet", model, x[:p["images"]])], config, seed)


@pytest.mark.sim
def test_core_dimamap(sim):
    run_block(Core(config=small_config(), faults=False), block=BLOCK, sim=sim,
              test_module=__name__, params={"images": 2, "case": "layers"})


@pytest.mark.sim
@pytest.mark.skipif(not os.environ.get("SPINPIM_DIMA_FULL"),
                    reason="full-size dima_sot core (a measurement, not in CI): "
                           "SPINPIM_DIMA_FULL=1")
def test_core_dimamap_addnet_full(sim):
    from golden.model import bundled_model_path, load_model
    from sim.compile.compiler import propose_config
    model = load_model(bundled_model_path("digits_addnet"))
    config = propose_config(model, preset("dima_sot"))
    run_block(Core(config=config, faults=False), block=BLOCK + "_full", sim=sim,
              test_module=__name__, params={"images": 1, "case": "addnet"})
