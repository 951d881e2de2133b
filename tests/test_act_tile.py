"""Activation tiling (sim.compile.act_tile, ``compile_model(..., tile_activations=True)``): models
whose activations do not fit the data memory, run on the cycle model in bands of output rows
against golden (logits and every stage output), the counting mode equal to the cycle model
counter for counter, the host's moves equal to the cost model's, and a data memory too small
for one band refused naming the layer, the field and the size that holds it."""

import dataclasses

import numpy as np
import pytest

from golden.model import infer_int
from rtl.config import preset
from sim.analysis.counting import count_model
from sim.compile import act_tile
from sim.compile.compiler import CompileError, compile_model, run_compiled
from sim.hw.core_model import CoreModel
from tests.layer_models import assert_stages_equal_golden, random_model

SEED = 20261130

#: Padded convolutions (3x3, a fused 2x2 max pool, stride 2, an unpadded 2x2) and a last FC.
CHAIN = ((3, 16, 16), [("conv", "adder_conv2d", 8, 3, 1, 1), ("pool", "max", 2, 2),
                       ("conv", "mul_conv2d", 10, 3, 2, 1), ("conv", "adder_conv2d", 5, 2, 1, 0),
                       ("flatten",), ("linear", "adder_linear", 4)])


def _small(name, **kw):
    return dataclasses.replace(preset(name), rows=256, columns=16, subarrays_per_mat=1,
                               mats=1, **kw)


def _model(spec, seed):
    rng = np.random.default_rng(seed)
    shape, layers = spec
    x = rng.integers(0, 256, (2, *shape)).astype(np.uint8)
    return random_model(layers, shape, rng, x[:1]), x


def _check(model, x, compiled, mat, where):
    core = CoreModel(compiled.config, subarrays=mat)
    golden = infer_int(model, x, trace=True)
    for i, img in enumerate(x):
        r = run_compiled(compiled, img, core, load_weights=i == 0)
        assert_stages_equal_golden(compiled, r, golden, i, where, SEED)
        skipped = ([s.zero_skip.get("zs_tiles", 0) for s in r.stages]
                   if compiled.config.zero_skip else None)
        c = count_model(compiled, skipped=skipped)
        diff = {k: (c.counters[k], v) for k, v in r.counters.items() if c.counters[k] != v}
        assert not diff, f"{where} image {i}: count != cycle model: {diff}"
        cost = act_tile.cost(compiled)
        assert [s.act_words for s in r.stages] == [p["words"] for p in cost["per_stage"]]
    return r


@pytest.mark.parametrize("preset_name,mat", [("jeit_stt", 1), ("nand_spin", 2)])
def test_tiled_model_equals_golden_and_count(preset_name, mat):
    model, x = _model(CHAIN, SEED + mat)
    config = _small(preset_name, data_words=512)
    with pytest.raises(CompileError, match=r"raise data_words to at least 2048"):
        compile_model(model, config, subarrays=mat)     # two regions of 3 x 16 x 16 = 768
    compiled = compile_model(model, config, subarrays=mat, tile_activations=True)
    bands = [st.act_bands for st in compiled.stages]
    # 768 input words and 8 x 16 x 16 conv outputs (512 pooled) exceed a 256-word half: the
    # first two stages are tiled, the last two resident
    assert min(bands[:2]) > 1 and bands[2:] == [0, 0], bands
    _check(model, x, compiled, mat, f"{preset_name} mat {mat}")
    # every output word of a tiled stage stored once, every input word loaded at least once
    for st, (ld, stv) in zip(compiled.stages, act_tile.moved_words(compiled), strict=True):
        if st.act_bands:
            assert stv == st.out_size and ld >= st.in_size, (st.name, ld, stv)


def test_tiled_with_streamed_weights():
    model, x = _model(CHAIN, SEED + 7)
    config = _small("nand_spin", data_words=512, buffer_slots=64)
    compiled = compile_model(model, config, subarrays=1, tile_activations=True,
                             stream_weights=True)
    st = compiled.stages[0]
    assert st.act_bands > 1 and len(st.weight_loads) > st.act_bands, (
        st.act_bands, len(st.weight_loads))
    _check(model, x, compiled, 1, "nand_spin streamed")


def test_one_band_too_big_names_the_layer_and_size():
    model, x = _model(CHAIN, SEED)
    config = _small("jeit_stt", data_words=256)
    with pytest.raises(CompileError) as e:
        compile_model(model, config, subarrays=1, tile_activations=True)
    msg = str(e.value)
    # one pooled output row: 2 conv rows, 4 input rows of 3 x 16 = 192 words > a 128 half
    assert msg.startswith("layer 0 (adder_conv2d)") and "192" in msg, msg
    assert "raise data_words to at least 512 (--data-words)" in msg, msg
    assert (e.value.field, e.value.size) == ("data_words", 512)
    compile_model(model, dataclasses.replace(config, data_words=512), subarrays=1,
                  tile_activations=True)


#: Standalone layers and a branch (store mode): a 3x3 stride-1 max pool (two MAX4 passes), an add
#: of the pool's output, a 2x2 stride-1 average pool, a stride-2 convolution reading layer 0's
#: output (a branch), an add of the branch and the output before it (both operands loaded),
#: global average pooling, an FC.
STANDALONE = ((2, 16, 16), [("conv", "mul_conv2d", 4, 3, 1, 1), ("pool", "max", 3, 1),
                            ("conv", "adder_conv2d", 4, 3, 1, 1), ("add", 1),
                            ("pool", "avg", 2, 1), ("conv", "adder_conv2d", 4, 3, 2, 1, 0),
                            ("add", 0), ("gap",), ("flatten",), ("linear", "mul_linear", 3)])
#: A stem as ResNet's (a stride-2 3x3 max pool after a convolution), a 5x5 stride-2 max pool
#: (three MAX4 passes), a 2x2 stride-2 average pool after it (not fused: it follows a pool),
#: and a global pool whose 48 x 3 x 3 input
#: is split by channels.
POOLS = ((3, 32, 32), [("conv", "adder_conv2d", 6, 3, 1, 1), ("pool", "max", 3, 2),
                       ("conv", "mul_conv2d", 24, 1, 1, 0), ("pool", "max", 5, 2),
                       ("pool", "avg", 2, 2),
                       ("conv", "mul_conv2d", 48, 1, 1, 0), ("gap",), ("flatten",),
                       ("linear", "adder_linear", 3)])


def _store_words(compiled):
    """Every stored word once; every loaded word in range of its source."""
    for st, (ld, stv) in zip(compiled.stages, act_tile.moved_words(compiled), strict=True):
        assert stv == st.out_size and ld >= st.in_size, (st.name, ld, stv)


@pytest.mark.parametrize("preset_name,mat,words", [("jeit_stt", 1, 256), ("nand_spin", 2, 512)])
def test_standalone_layers_tiled_equal_golden_and_count(preset_name, mat, words):
    model, x = _model(STANDALONE, SEED + mat)
    config = _small(preset_name, data_words=words, patch_entries=8192, offset_entries=4096)
    with pytest.raises(CompileError, match=r"raise data_words to at least"):
        compile_model(model, config, subarrays=mat)
    compiled = compile_model(model, config, subarrays=mat, tile_activations=True)
    units = {st.kind: st.act_bands for st in compiled.stages}
    # every standalone layer in more than one unit but the global pool's 4 x 8 x 8 (jeit_stt:
    # 2 units of 2 channels in 256 words)
    assert min(units[k] for k in ("max_pool2d", "add", "avg_pool2d")) > 1, units
    assert units["global_avg_pool2d"] == (2 if words == 256 else 1), units
    adds = [st for st in compiled.stages if st.kind == "add"]
    assert all(st.weight_loads for st in adds), "an add's weights are loaded per unit"
    _check(model, x, compiled, mat, f"{preset_name} mat {mat} standalone")
    _store_words(compiled)


@pytest.mark.parametrize("preset_name", ["jeit_stt", "nand_spin"])
def test_strided_pools_and_split_global_pool_tiled(preset_name):
    model, x = _model(POOLS, SEED + 3)
    config = _small(preset_name, data_words=512, patch_entries=8192, offset_entries=4096)
    compiled = compile_model(model, config, subarrays=1, tile_activations=True)
    units = [(st.kind, st.act_bands) for st in compiled.stages if st.kind.endswith("pool2d")]
    assert [k for k, _ in units] == ["max_pool2d", "max_pool2d", "avg_pool2d",
                                     "global_avg_pool2d"], units
    assert all(n > 1 for _, n in units), units
    _check(model, x, compiled, 1, f"{preset_name} strided pools")
    _store_words(compiled)


def _dw_model(seed, shape=(4, 16, 16)):
    """A depthwise 3x3 adder layer, a 2-group 3x3 stride-2 multiply layer, a standalone 3x3
    max pool, an FC (sim.compile.grouped's layers)."""
    from golden.model import Layer, make_model
    from tests.layer_models import grouped_model
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (2, *shape), dtype=np.uint8)
    g = grouped_model(rng, x[:1], [("g", "adder_gconv2d", 4, 3, 1, 1, 4),
                                   ("g", "mul_gconv2d", 6, 3, 2, 1, 2)]).layers[:2]
    fc = rng.integers(-128, 128, (3, 6 * 6 * 6)).astype(np.int8)
    layers = [*g, Layer("max_pool2d", "", {"kernel": 3, "stride": 1}), Layer("flatten"),
              Layer("mul_linear", "logits", {"weight": fc, "bias": np.zeros(3, np.int32)},
                    {"weight": fc.astype(np.float32), "bias": np.zeros(3, np.float32)})]
    return make_model(name="dw", input_shape=shape, input_scale=1 / 255,
                      class_names=["0", "1", "2"], layers=layers), x


@pytest.mark.parametrize("preset_name,mat", [("jeit_stt", 1), ("nand_spin", 2)])
def test_grouped_layers_in_bands(preset_name, mat):
    """Depthwise and grouped layers whose input and output do not fit the data memory, in
    bands (store mode: a standalone max pool follows): == golden, count == cycle model."""
    model, x = _dw_model(SEED + mat)
    config = _small(preset_name, data_words=512, patch_entries=8192, offset_entries=4096,
                    program_words=4096)
    compiled = compile_model(model, config, subarrays=mat, tile_activations=True)
    bands = [(st.kind, st.act_bands) for st in compiled.stages]
    assert bands[0][0] == "adder_gconv2d" and bands[0][1] > 1, bands
    _check(model, x, compiled, mat, f"{preset_name} mat {mat} grouped in bands")
    _store_words(compiled)


def test_grouped_layer_chain_in_bands():
    """The same grouped layers in a chain (no standalone layer: the two-region plan), with
    streamed weights."""
    from golden.model import make_model
    model, x = _dw_model(SEED)
    chain = make_model(name="dwc", input_shape=model.input_shape, input_scale=1 / 255,
                       class_names=["0", "1", "2"], layers=list(model.layers[:2])
                       + [model.layers[3], _fc(model, 6 * 8 * 8)])
    config = _small("nand_spin", data_words=1024, buffer_slots=256, program_words=4096)
    compiled = compile_model(chain, config, subarrays=1, tile_activations=True,
                             stream_weights=True)
    assert compiled.stages[0].act_bands > 1 and compiled.stages[0].weight_loads
    _check(chain, x, compiled, 1, "nand_spin grouped chain in bands, streamed")


def _fc(model, feats):
    from golden.model import Layer
    w = np.random.default_rng(SEED).integers(-128, 128, (3, feats)).astype(np.int8)
    return Layer("mul_linear", "logits", {"weight": w, "bias": np.zeros(3, np.int32)},
                 {"weight": w.astype(np.float32), "bias": np.zeros(3, np.float32)})


def test_in_memory_postproc_of_the_chain_plan_is_built():
    """In-memory post-processing of a tiled chain is built (tests/test_tiled_inmem.py); a
    band too small for its raw sums is the one-line ``data_words`` refusal of strict
    ``in_memory``."""
    model, _ = _model(CHAIN, SEED)
    config = _small("nand_spin", data_words=512, postproc="in_memory",
                    routes=("write_free", "and_bitcount", "nand_inmem"))
    with pytest.raises(CompileError, match=r"^layer 0 \(adder_conv2d\): one band of 1 output "
                                           r"row with its raw sums .* raise data_words to at "
                                           r"least 1024"):
        compile_model(model, config, subarrays=1, tile_activations=True)


def test_moves_in_the_count_and_the_chip_model():
    from sim.hw import chip
    model, _ = _model(CHAIN, SEED)
    config = _small("jeit_stt", data_words=512)
    compiled = compile_model(model, config, subarrays=1, tile_activations=True)
    res = count_model(compiled, model)
    cost = act_tile.cost(compiled)
    words = sum(ld + stv for ld, stv in act_tile.moved_words(compiled))
    # each band's patch-table entries written with it: every patch of a tiled stage once
    entries = sum(st.n_patches for st in compiled.stages if st.act_bands)
    assert cost["words"] == words > 0 and cost["patch_entries"] == entries > 0
    assert cost["bus_cycles"] == words + entries         # one word (entry) per cycle
    est = res.estimate
    clock = config.clock_mhz * 1e6
    # the latency: the core's cycles, the host port's words (image, programs) and the moves
    want = res.counters["cycles"] + res.host["host_cycles"] + words + entries
    assert est["latency_s"] * clock == pytest.approx(want)
    figs = dict(latency_s=1e-3, energy_j=1e-6, ops=1000, data_words=0, program_words=0,
                mat_area_mm2=1.0)
    assert chip.chip_model(config, compiled, **figs)["bits_per_image"] == words * 32 + entries * 48


def test_bundled_model_tiled_equals_golden():
    """The bundled Fashion-MNIST AdderNet in a data memory of 1,024 words (it needs 4,096
    untiled): one random image, every stage == golden, the count == the cycle model."""
    from golden.model import bundled_model_path, load_model
    model = load_model(bundled_model_path("fashion_addernet"))
    config = preset("nand_spin")
    with pytest.raises(CompileError, match=r"raise data_words to at least 4096"):
        compile_model(model, config, out_depth=1024)
    compiled = compile_model(model, config, out_depth=1024, tile_activations=True)
    assert any(st.act_bands > 1 for st in compiled.stages)
    x = np.random.default_rng(SEED).integers(0, 256, (1, *model.input_shape)).astype(np.uint8)
    _check(model, x, compiled, compiled.subarrays, "fashion_addernet nand_spin 1024 words")
