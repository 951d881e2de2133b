"""A model the default core sizes refuse, on a core configured for it (issue 15, item 1).

A random 1 x 64 x 64 input through a 7 x 7 stride-8 adder convolution and a multiply FC
(``tests.test_limits.big_input_model``): at the default sizes the compiler refuses it (two
data-memory regions of 4096 words do not fit ``data_words`` = 4096; a 49-term kernel does not
fit the 32-bit patch mask). Compiled for ``data_words`` = 8192 and ``patch_mask_bits`` = 64,
which make the core's instruction word 67 bits (13-bit operand bases: the convolution writes
its outputs from data-memory word 4096 on) and its patch-table words 80 bits, it runs on one
subarray of 128 x 16 (nand_spin, write-free): every stage of every image == golden
(``golden.model.layer_forward_int``), and the counters == the cycle model's and the compiler's
static profile.
"""

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import check_compiled_images, load_params, make_rng, run_block
from rtl.core import Core

BLOCK = "core"


def _config():
    from tests.test_limits import small_config
    return small_config("nand_spin", data_words=8192, patch_mask_bits=64)


@cocotb.test()
async def core_limits_big_input(dut):
    """The refused model, compiled for the larger sizes: every stage == golden."""
    from sim.compile.compiler import CompileError, compile_model
    from tests.test_limits import big_input_model, small_config
    p = load_params()
    rng_py, seed = make_rng(p, "core_limits_big_input")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    model, _ = big_input_model(rng)
    x = rng.integers(0, 256, (p["images"], *model.input_shape)).astype(np.uint8)
    config = _config()
    try:
        compile_model(model, small_config("nand_spin"))
    except CompileError as e:
        assert e.field == "data_words" and e.size == 8192, f"{BLOCK}: refused for {e}"
    else:
        raise AssertionError(f"{BLOCK}: the default sizes should refuse the model")
    compiled = compile_model(model, config)
    assert config.isa.word_bits == len(dut.prog_data) == 67
    await check_compiled_images(dut, config, model, compiled, x, seed=seed,
                                where=f"{BLOCK}: big-input model")


@pytest.mark.sim
def test_core_limits(sim):
    run_block(Core(config=_config(), faults=False), block=BLOCK, sim=sim, test_module=__name__,
              params={"case": "big_input", "images": 1})
