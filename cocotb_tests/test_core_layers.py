"""Standalone pools, global average pooling and a residual block on the RTL core (issue 15, item
2; ``sim.compile.layer_stages``).

One random model on one small core (one subarray of 128 x 16, nand_spin, write-free; the sizes
``sim.compile.compiler.propose_config`` gives it): a 5 x 5 stride-2 adder convolution, a standalone
3 x 3
stride-1 max pool (two MAX4 passes), a multiply convolution, a residual ``add`` of the pool's
output, a standalone 2 x 2 stride-1 average pool, global average pooling and an adder FC. Every
stage of every image == golden (``golden.model.infer_int(trace=True)``), and the counters == the
cycle model's and the compiler's static profile. In the same core build (its sizes proposed for
both models), a ResNet block with a projection shortcut (``golden.model``'s format-3 ``input``
array; ``tests.layer_models.SPECS["projection_shortcut"]``): a multiply convolution, a 1x1
stride-2 adder projection of its output, a 3x3 stride-2 adder convolution reading that output
too, a multiply convolution, the ``add`` of the projection, global average pooling, an FC.
And a model whose weights do not fit the core's buffer (``sim.compile.weight_stream``): a 1x1 adder
convolution of 20 channels over 256 inputs (2,560 slots, the buffer has 2,048) streamed in two
channel tiles, the host writing each tile's weights before its chunks, and an FC (post-processed
on the PPU); the same model with the convolution post-processed in memory (nand_spin's
``mixed``, seed 001 sec. 4.2: the tiles' raw sums, then the programs after the last tile, the
host writing their scale and bias words into the stream region). And a
depthwise-separable model (``sim.compile.grouped``): a 3x3 depthwise adder convolution (groups = 4),
a
1x1 multiply convolution, a 3x3 stride-2 grouped multiply convolution (2 groups), an FC.
And, with every tensor in the chip-level store (``sim.compile.act_tile``'s store mode, 128 of the
build's words), the first model (its max pool in units of rows, the add's operands both loaded)
and the projection block (its branch and shortcut loaded from the store).
And a model whose activations do not fit a data memory of 256 words (``sim.compile.act_tile``;
compiled for 256 of the build's words): a 2 x 12 x 12 input, a 3x3 padded adder convolution
with a fused 2x2 max pool (in bands of output rows, the host loading each band's input rows and
patch-table entries and storing its outputs), a 3x3 stride-2 padded multiply convolution (tiled:
its input from the store, its output to it), and an FC (resident, its input loaded from the
store); both convolutions post-processed in memory band by band (nand_spin's ``mixed``, seed 001
sec. 4.2: each band's raw sums after its output, ``sim.compile.act_tile``).
And padded pools (``golden.model`` format 6, ``sim.compile.layer_stages``): a 3x3 padded adder
convolution, a 3x3 stride-2 max pool with padding 1 (two MAX4 passes, the padded window elements
replaced by one of the window's), a 3x3 stride-1 average pool with padding 1 (the masked gather,
divided by 9), an FC.
"""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import check_compiled_images, load_params, make_rng, run_block
from rtl.config import preset
from rtl.core import Core

BLOCK = "core"
IN_SHAPE = (1, 10, 10)
SPEC = [("conv", "adder_conv2d", 2, 5, 2, 2), ("pool", "max", 3, 1),
        ("conv", "mul_conv2d", 2, 3, 1, 1), ("add", 1), ("pool", "avg", 2, 1), ("gap",),
        ("flatten",), ("linear", "adder_linear", 3)]


GROUPED = ((4, 6, 6), [("g", "adder_gconv2d", 4, 3, 1, 1, 4),
                       ("g", "mul_gconv2d", 6, 1, 1, 0, 1),
                       ("g", "mul_gconv2d", 4, 3, 2, 1, 2)])
TILED = ((2, 12, 12), [("conv", "adder_conv2d", 4, 3, 1, 1), ("pool", "max", 2, 2),
                       ("conv", "mul_conv2d", 4, 3, 2, 1), ("flatten",),
                       ("linear", "adder_linear", 3)])
PADDED = ((1, 8, 8), [("conv", "adder_conv2d", 2, 3, 1, 1), ("pool", "max", 3, 2, 1),
                      ("pool", "avg", 3, 1, 1), ("flatten",), ("linear", "mul_linear", 3)])
STREAMED = ((256, 1, 1), [("conv", "adder_conv2d", 20, 1, 1, 0), ("flatten",),
                         ("linear", "mul_linear", 3)])


def _model(seed, which="layers"):
    from tests.layer_models import SPECS, grouped_model, random_model
    if which == "grouped":
        rng = np.random.default_rng(seed)
        x = rng.integers(0, 256, (1, *GROUPED[0]), dtype=np.uint8)
        return grouped_model(rng, x, GROUPED[1])
    in_shape, spec = {"layers": (IN_SHAPE, SPEC), "streamed": STREAMED,
                      "streamed_inmem": STREAMED, "tiled": TILED,
                      "tiled_layers": (IN_SHAPE, SPEC), "padded": PADDED}.get(
        which, SPECS["projection_shortcut"])
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, *in_shape), dtype=np.uint8)
    return random_model(spec, in_shape, rng, x)


def _config():
    """The configuration the compiler proposes for both models (the same for every seed: the
    sizes depend on the shapes only)."""
    from sim.compile.compiler import propose_config
    from tests.test_limits import OLD_SIZES     # propose from the old sizes, not the preset's
    base = dataclasses.replace(preset("nand_spin"), rows=128, columns=16, subarrays_per_mat=1,
                               **OLD_SIZES)
    config = propose_config(_model(0, "projection"), propose_config(_model(0), base))
    return propose_config(_model(0, "padded"), propose_config(_model(0, "grouped"), config))


@cocotb.test()
async def core_layers_random_model(dut):
    """Standalone pools, global average pooling and a residual block: every stage == golden."""
    await _check_model(dut, "layers", ["adder_conv2d", "max_pool2d", "mul_conv2d", "add",
                                       "avg_pool2d", "global_avg_pool2d", "adder_linear"])


@cocotb.test()
async def core_layers_projection_shortcut(dut):
    """A residual block whose shortcut is a 1x1 stride-2 projection: every stage == golden."""
    await _check_model(dut, "projection", ["mul_conv2d", "adder_conv2d", "adder_conv2d",
                                           "mul_conv2d", "add", "global_avg_pool2d",
                                           "mul_linear"])


@cocotb.test()
async def core_layers_streamed_weights(dut):
    """Weights streamed into the buffer per channel tile: every stage == golden."""
    await _check_model(dut, "streamed", ["adder_conv2d", "mul_linear"])


@cocotb.test()
async def core_layers_streamed_inmem(dut):
    """Weights streamed, the convolution post-processed in memory after its last channel tile
    (its words streamed too): every stage == golden."""
    await _check_model(dut, "streamed_inmem", ["adder_conv2d", "mul_linear"])


@cocotb.test()
async def core_layers_grouped(dut):
    """Depthwise, pointwise and grouped convolutions: every stage == golden."""
    await _check_model(dut, "grouped", ["adder_gconv2d", "mul_gconv2d", "mul_gconv2d",
                                        "mul_linear"])


@cocotb.test()
async def core_layers_padded_pools(dut):
    """Padded 3x3 max (stride 2) and average (stride 1) pools: every stage == golden."""
    await _check_model(dut, "padded", ["adder_conv2d", "max_pool2d", "avg_pool2d",
                                       "mul_linear"])


@cocotb.test()
async def core_layers_tiled_activations(dut):
    """Activations tiled through a 256-word data memory: every stage == golden."""
    await _check_model(dut, "tiled", ["adder_conv2d", "mul_conv2d", "adder_linear"])


@cocotb.test()
async def core_layers_tiled_standalone(dut):
    """The standalone pools and the residual add with every tensor in the store (128 words):
    every stage == golden."""
    await _check_model(dut, "tiled_layers", ["adder_conv2d", "max_pool2d", "mul_conv2d", "add",
                                             "avg_pool2d", "global_avg_pool2d", "adder_linear"])


@cocotb.test()
async def core_layers_tiled_projection(dut):
    """The projection-shortcut block with every tensor in the store (128 words; the branch and
    the add's shortcut loaded from it): every stage == golden."""
    await _check_model(dut, "tiled_projection", ["mul_conv2d", "adder_conv2d", "adder_conv2d",
                                                 "mul_conv2d", "add", "global_avg_pool2d",
                                                 "mul_linear"])


async def _check_model(dut, which, want_kinds):
    from sim.compile.compiler import compile_model
    p = load_params()
    rng_py, seed = make_rng(p, f"core_layers_{which}")
    mseed = rng_py.getrandbits(64)
    model = _model(mseed, which)
    rng = np.random.default_rng(mseed + 1)
    x = rng.integers(0, 256, (p["images"], *model.input_shape)).astype(np.uint8)
    config = _config()
    if which == "tiled":                # sim.compile.act_tile: 256 of the build's words
        compiled = compile_model(model, config, out_depth=256, tile_activations=True)
        bands = [st.act_bands for st in compiled.stages]
        assert bands[0] > 1 and bands[1] >= 1 and bands[2] == 0, (
            f"{BLOCK}: tiled model's bands per stage {bands}")
        where = [st.postproc for st in compiled.stages]     # seed 001 sec. 4.2 per band
        assert where == ["in_memory", "in_memory", "ppu"], (
            f"{BLOCK}: tiled model's post-processing per stage {where}")
    elif which.startswith("tiled_"):    # store mode (sim.compile.act_tile): 128 words
        compiled = compile_model(model, config, out_depth=128, tile_activations=True)
        units = {st.kind: st.act_bands for st in compiled.stages}
        assert units["add"] >= 1 and (units.get("max_pool2d", 2) > 1), (
            f"{BLOCK}: {which} model's units per stage {units}")
        assert all(st.act_moves for st in compiled.stages), (
            f"{BLOCK}: {which} model: a stage without store moves")
    elif which == "streamed":           # the PPU post-processes (the next case: in memory)
        compiled = compile_model(model, dataclasses.replace(config, postproc="ppu"),
                                 stream_weights=True)
    else:
        compiled = compile_model(model, config, stream_weights=which == "streamed_inmem")
    if which.startswith("streamed"):
        loads = [len(st.weight_loads) for st in compiled.stages]
        assert loads == [2, 1], f"{BLOCK}: streamed model's channel tiles per stage {loads}"
        where = [(st.postproc, bool(st.postproc_loads)) for st in compiled.stages]
        want = [("ppu", False)] * 2 if which == "streamed" else [("in_memory", True),
                                                                   ("ppu", False)]
        assert where == want, f"{BLOCK}: {which} model's post-processing per stage {where}"
    kinds = [st.kind for st in compiled.stages]
    assert kinds == want_kinds, f"{BLOCK}: {which} model stages {kinds}"
    await check_compiled_images(dut, config, model, compiled, x, seed=seed,
                                where=f"{BLOCK}: {which} model")


@pytest.mark.sim
def test_core_layers(sim):
    run_block(Core(config=_config(), faults=False), block=BLOCK, sim=sim, test_module=__name__,
              params={"case": "layers", "images": 1})


@cocotb.test()
async def core_layers_bit_widths(dut):
    """Seed 001's <W:I> widths (``golden.bitwidth``, issue 14 item 4): a <4:4> multiply
    convolution with a fused max pool and a <2:3> multiply FC, W * I AND passes per tile dot:
    every stage == golden, counters == cycle model == static profile. And seed 001's eq. 2 as
    the activation quantizer (format 5, issue 14): a <3:8> convolution writing 3-bit eq.-2 codes
    (the PPU stores them MSB-aligned, ``sim.compile.bit_widths``) read as they are by a <2:3>
    FC: its stage outputs == golden's eq.-2 codes."""
    from sim.compile.compiler import compile_model
    from tests.test_bits import bits_model
    p = load_params()
    rng_py, seed = make_rng(p, "core_layers_bit_widths")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    x = rng.integers(0, 256, (p["images"] + 1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x[:1], conv=(4, 4), fc=(2, 3))
    config = _config()
    compiled = compile_model(model, config)
    widths = [(st.kind, st.w_bits, st.in_bits) for st in compiled.stages]
    assert widths == [("mul_conv2d", 4, 4), ("mul_linear", 2, 3)], f"{BLOCK}: stages {widths}"
    await check_compiled_images(dut, config, model, compiled, x[1:], seed=seed,
                                where=f"{BLOCK}: <W:I> model")
    model = bits_model(rng, x[:1], conv=(3, 8), fc=(2, 0), eq2=3)
    compiled = compile_model(model, config)
    shifts = [(st.in_bits, st.out_shift) for st in compiled.stages]
    assert shifts == [(8, 5), (3, 0)], f"{BLOCK}: eq. 2 stages (in_bits, out_shift) {shifts}"
    await check_compiled_images(dut, config, model, compiled, x[1:], seed=seed,
                                where=f"{BLOCK}: eq. 2 <W:I> model")
