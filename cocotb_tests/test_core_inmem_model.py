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
  the 4 requantized values and the rounding constant), an adder FC (logits).

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
    "maxpool": ((1, 6, 6), [("conv", "mul_conv2d", 2, 3, 1, 1), ("pool", "max", 2, 2),
                            ("conv", "adder_conv2d", 2, 3, 1, 1), ("flatten",),
                            ("linear", "mul_linear", 3)]),
    "avgpool": ((1, 4, 4), [("conv", "adder_conv2d", 2, 3, 1, 1), ("pool", "avg", 2, 2),
                            ("flatten",), ("linear", "adder_linear", 3)]),
}


#: The memories start small (a small build); the compiler raises what the models need. 256
#: buffer slots: every seed's weights and requantization words (about 150) with headroom.
SMALL_SIZES = {"data_words": 256, "buffer_slots": 256, "offset_entries": 64,
               "patch_entries": 128, "requant_channels": 16, "program_words": 512,
               "patch_mask_bits": 16}


def _model(seed, which):
    from tests.layer_models import random_model
    in_shape, spec = SPECS[which]
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, *in_shape), dtype=np.uint8)
    return random_model(spec, in_shape, rng, x)


def _config():
    """nand_spin cut to 2 subarrays of 128 x 16 with ``postproc='in_memory'``, the sizes the
    compiler proposes for both models (the same for every seed: they depend on the shapes, and
    on the requantization widths, which a 128-row subarray bounds)."""
    from sim.compile.compiler import propose_config
    from sim.compile.nand_postproc import with_postproc
    base = dataclasses.replace(preset("nand_spin"), rows=128, columns=16, subarrays_per_mat=2,
                               **SMALL_SIZES)
    cfg = with_postproc(base, "in_memory")
    for which in SPECS:
        cfg = propose_config(_model(0, which), cfg)
    return cfg


@cocotb.test()
async def core_inmem_maxpool_model(dut):
    """Max pool by Fig. 9 comparison, a pool-less requant layer and the logits: == golden."""
    await _check_model(dut, "maxpool")


@cocotb.test()
async def core_inmem_avgpool_model(dut):
    """Average pool by the in-memory addition, then the logits: == golden."""
    await _check_model(dut, "avgpool")


async def _check_model(dut, which):
    from sim.compile.compiler import compile_model
    p = load_params()
    rng_py, seed = make_rng(p, f"core_inmem_{which}")
    mseed = rng_py.getrandbits(64)
    model = _model(mseed, which)
    rng = np.random.default_rng(mseed + 1)
    x = rng.integers(0, 256, (p["images"], *model.input_shape)).astype(np.uint8)
    config = _config()
    compiled = compile_model(model, config)
    bitcounts = sum(st.micro_ops["bitcount"] for st in compiled.stages)
    assert bitcounts > 0, f"{BLOCK}: {which}: no BITCOUNT in the compiled programs"
    counters = await check_compiled_images(
        dut, config, model, compiled, x, seed=seed,
        where=f"{BLOCK}: {which} model (seed 001 in-memory post-processing)")
    dut._log.info("%s model: BITCOUNTs per image %s", which, [c["bitcount"] for c in counters])


@pytest.mark.sim
def test_core_inmem_model(sim):
    run_block(Core(config=_config(), faults=False), block=BLOCK, sim=sim, test_module=__name__,
              params={"images": 2})
