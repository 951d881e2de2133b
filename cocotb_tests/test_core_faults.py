"""Sensing faults end to end: the RTL core (``rtl.core``, faults in ``rtl.mtj_array``) against
the Python core model (``sim.hw.core_model.CoreModel``) with the same seed and threshold, every
stage output compared with ``==``.

Random compiled models (``cocotb_tests.test_core._case_models``: an adder convolution with a
multiply head, and a multiply convolution with an adder head, both ending in logits) run on a
small array (128 x 16), once per adder dataflow (write-free on a nand_spin mat of two subarrays,
whose faults are those of one array as wide as the mat; abs-diff on one jeit_stt subarray),
with a flip rate of 5 % per sensed bit. The faults are loaded once per model before the first
image; the second image continues the same LFSR streams, so any sense the two sides count
differently shows up. The faulty outputs must also differ from golden somewhere (the faults are
really on); a last image with the faults switched off must equal golden again.
"""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from golden.array import rate_to_threshold
from golden.model import infer_int
from rtl.config import preset
from rtl.core import Core
from sim.flows.rtl_backend import CoreHost, check_equal

BLOCK = "core"
SMALL = {"rows": 128, "columns": 16, "subarrays_per_mat": 1, "mats": 1}
#: Flip probability per sensed bit.
RATE = 0.05
#: Models of ``_case_models`` to run (adder and multiply layers, every sense micro-op the
#: compiler emits: MIN_STEP or FS_STEP + READ write-back, AND_FU).
CASES = ("adder_conv_maxpool", "conv_pool_flatten_linear")


def _small(name, dataflow, mat=1):
    from tests.test_limits import OLD_SIZES     # nand_spin's preset has larger ones of its own
    return dataclasses.replace(preset(name).with_dataflow(dataflow),
                               **{**SMALL, **OLD_SIZES, "subarrays_per_mat": mat})


CONFIGS = {
    "small-write_free-nand-mat2": lambda: _small("nand_spin", "write_free", 2),
    "small-abs_diff-stt": lambda: _small("jeit_stt", "abs_diff"),
}


def _first_difference(stage, got, want, what):
    """``None`` if equal, else a message naming the stage, the first index and both values."""
    got, want = np.asarray(got, dtype=np.int64), np.asarray(want, dtype=np.int64)
    if got.shape != want.shape:
        return f"stage {stage}: shape rtl {got.shape} != {what} {want.shape}"
    bad = np.flatnonzero(got.ravel() != want.ravel())
    if not bad.size:
        return None
    i = int(bad[0])
    where = tuple(int(v) for v in np.unravel_index(i, got.shape))
    return (f"stage {stage}: {bad.size} of {got.size} values differ; first at flat index {i} "
            f"{where}: rtl {int(got.ravel()[i])} != {what} {int(want.ravel()[i])}")


@cocotb.test()
async def core_faults_match_model(dut):
    """Faulty sensing: RTL stage outputs == CoreModel's, bit for bit, and != golden."""
    from cocotb_tests.test_core import _case_models
    from sim.compile.compiler import compile_model, load_compiled, run_compiled
    from sim.hw.core_model import CoreModel
    p = load_params()
    rng_py, seed = make_rng(p, "core_faults_match_model")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = CONFIGS[p["label"]]()
    threshold = rate_to_threshold(RATE)
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config)
    cases = [c for c in _case_models(rng, p["images"] + 1) if c[0] in CASES]
    assert [c[0] for c in cases] == list(CASES)
    for name, net, x in cases:
        fault_seed = rng_py.getrandbits(32)
        where = (f"{BLOCK}: {name} ({config.technology}, {config.dataflow}), fault seed "
                 f"{fault_seed:#010x}, threshold {threshold}")
        rerun = f"(seed {seed}; rerun with SPINPIM_SEED={seed})"
        compiled = compile_model(net, config)
        await host.load_compiled(compiled)
        load_compiled(compiled, model)
        await host.set_faults(enable=True, seed=fault_seed, threshold=threshold)
        model.set_faults(enable=True, seed=fault_seed, threshold=threshold)
        differs = 0
        for i, image in enumerate(x):
            last = i == len(x) - 1
            if last:      # faults off again: both must equal golden
                await host.set_faults(enable=False, seed=fault_seed, threshold=threshold)
                model.set_faults(enable=False, seed=fault_seed, threshold=threshold)
            rtl, counters = await host.infer(compiled, image, golden_trace=None)
            ref = run_compiled(compiled, image, model, load_weights=False)
            trace = [np.asarray(t)[0] for t in infer_int(net, image[None], trace=True)]
            for stage, got, want in zip(compiled.stages, rtl, ref.outputs, strict=True):
                msg = _first_difference(stage.name, got, want, "model")
                assert msg is None, f"{where}, image {i}: {msg} {rerun}"
                gold = np.asarray(trace[stage.golden_index]).reshape(stage.out_shape)
                if last:
                    try:
                        check_equal(stage.name, stage.golden_index, got, gold, seed)
                    except AssertionError as e:
                        raise AssertionError(f"{where}, image {i}, faults off: {e}") from None
                else:
                    differs += int((np.asarray(got) != gold).sum())
            assert counters == ref.counters, f"{where}, image {i}: counters {rerun}"
            dut._log.info("%s image %d%s: %d cycles; %d outputs differ from golden so far",
                          name, i, " (faults off)" if last else "", counters["cycles"], differs)
        assert differs, (f"{where}: with a {RATE:.0%} flip rate no output differs from golden: "
                         f"are the faults on? {rerun}")


@pytest.mark.sim
@pytest.mark.parametrize("label", list(CONFIGS))
def test_core_faults(sim, label):
    config = CONFIGS[label]()
    run_block(Core(config=config), block=BLOCK, sim=sim, test_module=__name__,
              params={"case": "faults", "label": label, "images": 2})
