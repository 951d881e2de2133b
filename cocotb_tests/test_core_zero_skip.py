"""Zero skipping on the RTL core (``config.zero_skip``, ``rtl.isa.MoveOp.SKIPZ``): a small
``jeit_stt`` mat (two subarrays of 16 columns, the abs-diff lanes and the full-adder array: one
build for both zero-skipping dataflows, ``abs_diff`` and ``jeit_fa``) runs compiled networks on
each dataflow on inputs with random sparsity: single adder layers (segmented, one wide tile,
two wide tiles, a fused pool) and two adder layers in a row (the second's zero tiles built on
chip from the first's outputs). Every stage == golden (``golden.model.infer_int``); every
counter of the controller (cycles, stalls, every opcode: data-dependent now) and every zero-
skipping counter (``rtl.isa.ZERO_SKIP_COUNTERS``) == the cycle model's (``sim.hw.core_model``),
image by image; the cycles saved == the compiler's static count (no skip) less the cycles run;
and some tile dots are skipped (the test would not exercise skipping otherwise). The committed
digits model runs on a zero-skipping core in ``cocotb_tests/test_core.py``."""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from golden.model import Layer, infer_int, make_model
from rtl.config import ZERO_SKIP_DATAFLOWS, preset
from rtl.core import Core
from sim.flows.rtl_backend import CoreHost

BLOCK = "core"


#: The dataflows that can skip (``rtl.config.ZERO_SKIP_DATAFLOWS``), all run on one core.
DATAFLOWS = ZERO_SKIP_DATAFLOWS


def _config(dataflow="abs_diff"):
    """The small mat with every zero-skipping route; adder layers on ``dataflow``."""
    cfg = preset("jeit_stt")
    routes = cfg.routes + tuple(d for d in DATAFLOWS if d not in cfg.routes)
    return dataclasses.replace(cfg, rows=128, columns=16, subarrays_per_mat=2, mats=1,
                               routes=routes, dataflow=dataflow, zero_skip=True)


def _adder_model(rng, x, pool, second=False):
    """An adder convolution (3x3, padding 1, 3 channels; random requantization spreading the
    outputs over [0, 255]), an optional 2x2 pool, with ``second`` another adder convolution
    (its input built on chip from the first's outputs), a small multiply head (logits), on
    batch ``x`` (``cocotb_tests.test_core._layer``'s random layers)."""
    from cocotb_tests.test_core import _layer
    from golden import layers as gl
    conv, cur = _layer("adder_conv2d", rng, x, o=3)
    ls = [conv]
    if pool:
        ls.append(Layer(f"{pool}_pool2d", "", dict(kernel=2, stride=2)))
        cur = (gl.max_pool2d if pool == "max" else gl.avg_pool2d)(cur, 2, 2)
    if second:
        conv, cur = _layer("adder_conv2d", rng, cur, o=3)
        ls.append(conv)
    head, _ = _layer("mul_linear", rng, cur.reshape(len(cur), -1), o=3, output="logits")
    ls += [Layer("flatten"), head]
    return make_model(name="sparse_adder", input_shape=x.shape[1:], input_scale=1 / 255,
                      class_names=["0", "1", "2"], layers=ls)


def _sparse(rng, shape, count):
    """``count`` random inputs, half their values 0 (ReLU-like), the first 2 + i rows of input
    i all 0 (whole zero tiles)."""
    x = rng.integers(0, 256, (count, *shape)).astype(np.uint8)
    x[rng.random(x.shape) < 0.5] = 0
    for i in range(count):
        x[i, ..., :2 + i, :] = 0
    return x


async def _run(dut, host, config, name, model, images, seed):
    from sim.compile.compiler import compile_model, run_compiled
    from sim.hw.core_model import CoreModel
    compiled = compile_model(model, config)
    await host.load_compiled(compiled)
    ref = CoreModel(config, subarrays=compiled.subarrays)
    skipped = 0
    for i, image in enumerate(images):
        where = f"{BLOCK} zero skipping: {name}, image {i} (seed {seed}; rerun with " \
                f"SPINPIM_SEED={seed})"
        trace = [np.asarray(t)[0] for t in infer_int(model, image[None], trace=True)]
        try:
            _, counters = await host.infer(compiled, image, golden_trace=trace)
        except AssertionError as e:
            raise AssertionError(f"{where}: {e}") from None
        res = run_compiled(compiled, image, ref, load_weights=i == 0)
        assert counters == res.counters, (
            f"{where}: counters: rtl {counters}, cycle model {res.counters}")
        assert host.zero_skip_totals == res.zero_skip, (
            f"{where}: zero-skip counters: rtl {host.zero_skip_totals}, cycle model "
            f"{res.zero_skip}")
        saved = host.zero_skip_totals["zs_cycles_saved"]
        assert counters["cycles"] + saved == compiled.cycles, (
            f"{where}: {counters['cycles']} cycles + {saved} saved != the static "
            f"{compiled.cycles}")
        skipped += host.zero_skip_totals["zs_tiles"]
        dut._log.info("%s image %d: %d cycles, %s", name, i, counters["cycles"],
                      host.zero_skip_totals)
    return skipped


@cocotb.test()
async def core_zero_skip(dut):
    """Sparse adder layers == golden; every counter == the cycle model's."""
    p = load_params()
    rng_py, seed = make_rng(p, "core_zero_skip")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    host = CoreHost(dut, _config())
    await host.reset()
    for dataflow in DATAFLOWS:
        config = _config(dataflow)
        skipped = 0
        # fan-in 9: segmented (groups of 2 patches); 18: one wide tile of 32; 36: two tiles
        for c_in, pool in ((1, "max"), (2, None), (4, "avg")):
            images = _sparse(rng, (c_in, 6, 6), p["images"])
            model = _adder_model(rng, images, pool)
            skipped += await _run(dut, host, config, f"{dataflow}: adder_conv2d {c_in}->3",
                                  model, images, seed)
        # fan-in 9 over 5 x 5 patches: 12 groups of 2 and a partial group of 1 (jeit_fa
        # chains it after the full groups' loop); the bottom rows of image 0 all zero (its
        # partial group's tile is zero: skipped), of the others not
        images = _sparse(rng, (1, 5, 5), p["images"])
        images[0, :, 3:] = 0
        images[1:, :, 3:] = rng.integers(1, 256, images[1:, :, 3:].shape)
        skipped += await _run(dut, host, config, f"{dataflow}: adder_conv2d 1->3, partial "
                              "group", _adder_model(rng, images, None), images, seed)
        images = _sparse(rng, (2, 8, 8), p["images"])       # two adder layers, pooled
        model = _adder_model(rng, images, "max", second=True)
        skipped += await _run(dut, host, config, f"{dataflow}: adder_conv2d 2->3 + "
                              "max_pool2d + adder_conv2d", model, images, seed)
        assert skipped > 0, f"{BLOCK}: {dataflow}: no tile dot was skipped (seed {seed})"


@pytest.mark.sim
def test_core_zero_skip(sim):
    run_block(Core(config=_config(), faults=False), block=BLOCK, sim=sim,
              test_module=__name__, params={"case": "zero_skip", "images": 2})
