"""Seed 001's in-memory post-processing of whole compiled networks on the RTL core (issue 14,
item 2; ``sim.compile.compiler`` with ``postproc='in_memory'``,
``sim.compile.nand_postproc.plan_stage``), both
simulators.

One small NAND-SPIN core (2 subarrays of 128 x 16, strips of 8 rows, routes ``write_free``,
``and_bitcount`` and ``nand_inmem``; the sizes ``sim.compile.compiler.propose_config`` gives both
models). Two random models, every layer of each post-processed in the array:

* ``maxpool``: a multiply convolution with a fused 2x2 max pool (requantization of the 4 window
  positions, then Fig. 9's comparison in memory), an adder convolution with no pool (18 lanes in
  one row), a multiply FC (logits: the PPU's LOGIT adds the bias);
* ``avgpool``: an adder convolution with a fused 2x2 average pool (the in-memory addition of
  the 4 requantized values and the rounding constant), an adder FC (logits);
* ``fig10``, ``fig10avg``: seed 001's data mapping compiled into the network
  (``conv_map='fig10'``, ``sim.compile.nand_conv.compile_stage``): two mapped multiply
  convolutions in a row, the second max-pooled in memory, then a multiply FC by the gather
  route; a mapped layer average-pooled in memory, then an adder FC;
* ``fig10w4i4``: ``fig10`` at seed 001's <4:4> (4-bit weights, the top 4 bits of each input:
  the mapping's 4 weight planes, 4 input planes in 4-block bands, two combining levels).

Every stage of every image == golden (``golden.model.infer_int(trace=True)``, integer ==), and
the counters (cycles included) == the cycle model's and the compiler's static profile.
"""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import check_compiled_images, load_params, make_rng, run_block
from rtl.config import preset
from rtl.core import Core

BLOCK = "core_inmem_model"
SPECS = {
    # seed 001's data mapping in the compiled network (conv_map='fig10'): two mapped layers
    # in a row (the second with a fused max pool), then the logits by the gather route
    "fig10": ((1, 2, 2), [("conv", "mul_conv2d", 2, 3, 1, 1), ("conv", "mul_conv2d", 2, 2, 1, 1),
                          ("pool", "max", 2, 2), ("flatten",), ("linear", "mul_linear", 3)]),
    # ... a mapped layer with a fused average pool, then an adder FC
    "fig10avg": ((1, 2, 2), [("conv", "mul_conv2d", 2, 3, 1, 1), ("pool", "avg", 2, 2),
                             ("flatten",), ("linear", "adder_linear", 3)]),
    "maxpool": ((1, 6, 6), [("conv", "mul_conv2d", 2, 3, 1, 1), ("pool", "max", 2, 2),
                            ("conv", "adder_conv2d", 2, 3, 1, 1), ("flatten",),
                            ("linear", "mul_linear", 3)]),
    "avgpool": ((1, 4, 4), [("conv", "adder_conv2d", 2, 3, 1, 1), ("pool", "avg", 2, 2),
                            ("flatten",), ("linear", "adder_linear", 3)]),
}
#: seed 001's <W:I> (tests.layer_models.with_bits) of a model: spec, bits
BITS = {"fig10w4i4": ("fig10", (4, 4))}


#: The memories start small (a small build); the compiler raises what the models need. 256
#: buffer slots: every seed's weights and requantization words (about 150) with headroom.
SMALL_SIZES = {"data_words": 256, "buffer_slots": 256, "offset_entries": 64,
               "patch_entries": 128, "requant_channels": 16, "program_words": 512,
               "patch_mask_bits": 16}


def _model(seed, which):
    from tests.layer_models import random_model, with_bits
    base, bits = BITS.get(which, (which, None))
    in_shape, spec = SPECS[base]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, *in_shape), dtype=np.uint8)
    model = random_model(spec, in_shape, rng, x)
    return model if bits is None else with_bits(model, *bits)


def _config():
    """nand_spin cut to 2 subarrays of 128 x 16 with ``postproc='in_memory'``, the sizes the
    compiler proposes for both models (the same for every seed: they depend on the shapes, and
    on the requantization widths, which a 128-row subarray bounds)."""
    from sim.compile.compiler import propose_config
    from sim.compile.nand_postproc import with_postproc
    base = dataclasses.replace(preset("nand_spin"), rows=128, columns=16, subarrays_per_mat=2,
                               **SMALL_SIZES)
    cfg = with_postproc(base, "in_memory")
    for which in (*SPECS, *BITS):
        fig10 = which.startswith("fig10")
        cfg = dataclasses.replace(propose_config(_model(0, which), _mapped(cfg, fig10)),
                                  conv_map="gather")
    return cfg


def _mapped(config, fig10: bool):
    """``config`` with ``conv_map='fig10'`` (seed 001's data mapping) or as it is."""
    return dataclasses.replace(config, conv_map="fig10") if fig10 else config


@cocotb.test()
async def core_inmem_maxpool_model(dut):
    """Max pool by Fig. 9 comparison, a pool-less requant layer and the logits: == golden."""
    await _check_model(dut, "maxpool")


@cocotb.test()
async def core_inmem_avgpool_model(dut):
    """Average pool by the in-memory addition, then the logits: == golden."""
    await _check_model(dut, "avgpool")


@cocotb.test()
async def core_inmem_fig10_model(dut):
    """Seed 001's Fig. 7 / Fig. 10 mapping compiled into the whole network (two mapped layers,
    the second max-pooled in memory, then the gather route's logits): == golden."""
    await _check_model(dut, "fig10")


@cocotb.test()
async def core_inmem_fig10_avgpool_model(dut):
    """A mapped layer average-pooled in memory, then an adder FC: == golden."""
    await _check_model(dut, "fig10avg")


@cocotb.test()
async def core_inmem_fig10_w4i4_model(dut):
    """The mapping at seed 001's <4:4> (issue 14 item 4): 4 weight planes, the input's top 4
    planes loaded on chip, two combining levels: == golden."""
    await _check_model(dut, "fig10w4i4")


async def _check_model(dut, which):
    from sim.compile.compiler import compile_model
    p = load_params()
    rng_py, seed = make_rng(p, f"core_inmem_{which}")
    mseed = rng_py.getrandbits(64)
    model = _model(mseed, which)
    rng = np.random.default_rng(mseed + 1)
    x = rng.integers(0, 256, (p["images"], *model.input_shape)).astype(np.uint8)
    config = _mapped(_config(), which.startswith("fig10"))
    compiled = compile_model(model, config)
    if which.startswith("fig10"):
        mapped = [st.name for st in compiled.stages if st.route == "nand_inmem"]
        assert mapped, f"{BLOCK}: {which}: no layer compiled by the Fig. 10 mapping"
    bitcounts = sum(st.micro_ops["bitcount"] for st in compiled.stages)
    assert bitcounts > 0, f"{BLOCK}: {which}: no BITCOUNT in the compiled programs"
    counters = await check_compiled_images(
        dut, config, model, compiled, x, seed=seed,
        where=f"{BLOCK}: {which} model (seed 001 in-memory post-processing)")
    dut._log.info("%s model: BITCOUNTs per image %s", which, [c["bitcount"] for c in counters])


#: Seed 001's data mapping (Fig. 7 / Fig. 10, ``sim.compile.nand_conv``) on the same build:
#: (C, H, W, O, k, padding); 8 input planes of a 4-column padded row fill the 32 lanes.
FIG10_LAYERS = [(1, 2, 2, 2, 3, 1), (2, 4, 4, 2, 2, 0)]


@cocotb.test()
async def core_inmem_fig10_conv(dut):
    """Multiply convolutions by the seed's data mapping: input bit-planes written once, the
    weight sliding over them (AND + per-column bit-count), the counts cross-written
    (``WriteSrc.BIT_COUNTER_XW``) and added in memory; the sums, read out of the array through
    the transpose buffer, == ``golden.layers.mul_conv2d``; counters == the cycle model and the
    static profile."""
    from golden.layers import mul_conv2d
    from rtl.mtj_array import MacroCmd
    from sim.compile import asm
    from sim.compile.nand_conv import (
        buffer_words, conv_programs, input_commands, plan, profile, read_sums,
    )
    from sim.compile.nand_postproc import results_out_program
    from sim.flows.rtl_backend import CoreHost
    from sim.hw.core_model import CoreModel
    p = load_params()
    rng_py, seed = make_rng(p, "core_inmem_fig10")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = _config()
    lanes = config.columns * config.subarrays_per_mat
    where = f"(seed {seed}, rerun with SPINPIM_SEED={seed})"
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config)
    halt = model.run(asm.assemble([asm.halt()])).counters["cycles"]
    ones = np.ones(lanes, bool)
    for li, (C, H, W, O, k, pad) in enumerate(FIG10_LAYERS):
        x = rng.integers(0, 256, (C, H, W)).astype(np.uint8)
        w = rng.integers(-128, 128, (O, C, k, k)).astype(np.int8)
        x.flat[0], w.flat[0], w.flat[1] = 255, -128, 127
        cmap = plan(config, (C, H, W), w, padding=pad, where=f"fig10 layer {li}")
        cmds = [(MacroCmd.ERASE, s, np.zeros(lanes, bool), ones)
                for s in range(0, config.rows, config.mtjs_per_strip)]
        cmds += [(MacroCmd.PROGRAM, r, bits, ones) for r, bits in input_commands(cmap, x)]
        await host.array_commands(cmds)
        for cmd, r, bits, mask in cmds:
            model.array_command(cmd, r, bits, mask)
        image = np.zeros((cmap.mask + 1, lanes), bool)
        for slot, word in buffer_words(cmap).items():
            image[slot] = word
        await host.write_buffer(image)
        for slot, word in enumerate(image):
            model.write_buffer(slot, word)
        progs = conv_programs(cmap, w, config)
        static = profile(progs)
        total: dict = {}
        for j, prog in enumerate(progs):
            words = asm.assemble(prog + [asm.halt()])
            counters = await host.run(words, max_cycles=2 * len(words) + 64)
            modelled = model.run(words)
            assert not modelled.error, f"{BLOCK} fig10 layer {li} program {j}: {modelled.reason}"
            assert counters == modelled.counters, (
                f"{BLOCK} fig10 layer {li} program {j}: rtl counters {counters} != model "
                f"{modelled.counters} {where}")
            for key, v in counters.items():
                total[key] = total.get(key, 0) + v
        for key in ("bitcount", "program", "erase"):
            assert total[key] == static[key], (f"{BLOCK} fig10 layer {li}: {key} {total[key]} "
                                               f"!= static profile {static[key]}")
        assert total["cycles"] == static["cycles"] + len(progs) * halt, (total, static)
        # the sums' rows out through the transpose buffer, 8 rows per pass
        n = config.operand_bits
        rows = {}
        for b0 in range(0, cmap.q * cmap.groups, n):
            grp, k0 = divmod(b0, cmap.q) if cmap.groups > 1 else (0, b0)
            bits = min(n, cmap.q - k0)
            r0 = cmap.out0 + grp * cmap.out_stride + k0
            words = asm.assemble(results_out_program(config, y0=r0, lanes=lanes, addr=0,
                                                     out_bits=bits) + [asm.halt()])
            counters = await host.run(words, max_cycles=2 * len(words) + 64)
            assert counters == model.run(words).counters
            got = await host.read_dmem(0, lanes)
            want = [model.read_dmem(j) for j in range(lanes)]
            assert got == want, f"{BLOCK} fig10 layer {li} rows {r0}..: rtl {got} != model {want}"
            for i in range(bits):
                rows[r0 + i] = np.array([(v >> i) & 1 for v in got], bool)
        got = read_sums(cmap, rows.__getitem__)
        want = mul_conv2d(x[None], w, padding=pad)[0]
        bad = np.argwhere(got != want)
        assert not bad.size, (f"{BLOCK} fig10 layer {li}: sum {tuple(bad[0])} rtl "
                              f"{got[tuple(bad[0])]} != golden mul_conv2d "
                              f"{want[tuple(bad[0])]} (seed 001 Fig. 10) {where}")
        dut._log.info("fig10 layer %d: %s sums == golden, %d cycles", li, want.shape,
                      total["cycles"])


@pytest.mark.sim
def test_core_inmem_model(sim):
    run_block(Core(config=_config(), faults=False), block=BLOCK, sim=sim, test_module=__name__,
              params={"images": 2})
