"""Weight streaming (sim.compile.weight_stream, ``compile_model(..., stream_weights=True)``): models
whose weights do not fit the buffer, run on the cycle model against golden (logits and every
stage output), the counting mode equal to the cycle model counter for counter, the streamed
buffer words equal to an independent count from the weight shapes, and the cost added to the
count's latency and energy."""

import dataclasses
import math

import numpy as np
import pytest

from golden.model import infer_int
from rtl.config import preset
from sim.compile import weight_stream
from sim.compile.compiler import CompileError, compile_model, propose_config, run_compiled
from sim.hw.core_model import CoreModel
from sim.analysis.counting import count_model
from tests.layer_models import assert_stages_equal_golden, random_model

SEED = 20261130

#: A chain (a fused pool, a wide FC) and a residual model (standalone layers: the stream
#: region shares the buffer with their passes).
SPECS = {
    "chain": ((2, 8, 8), [("conv", "adder_conv2d", 6, 3, 1, 1), ("pool", "max", 2, 2),
                          ("conv", "mul_conv2d", 5, 3, 1, 1), ("flatten",),
                          ("linear", "adder_linear", 4)]),
    "residual": ((2, 8, 8), [("conv", "mul_conv2d", 8, 3, 1, 1),
                             ("conv", "adder_conv2d", 8, 3, 1, 1), ("add", 1), ("gap",),
                             ("flatten",), ("linear", "mul_linear", 3)]),
}


def _small(name, **kw):
    """A 16-column mat of one subarray; post-processing on the PPU unless ``postproc`` is
    given (these tests count the streamed weights alone: a streamed layer post-processed in
    memory, nand_spin's default ``mixed``, also streams its post-processing words,
    ``tests/test_streamed_inmem.py``)."""
    kw.setdefault("postproc", "ppu")
    return dataclasses.replace(preset(name), rows=256, columns=16, subarrays_per_mat=1,
                               mats=1, **kw)


def _expected_slots(model, config, k):
    """Buffer words of every compute layer, from the weight shapes alone: ceil(fan-in /
    tile width) tiles x (8 planes + 1 zero-tile dot where zero-skipped) x output channels
    (the compiler's documented layout, restated)."""
    total = 0
    for ly in model.layers:
        if not ly.is_compute:
            continue
        w = ly.params["weight"]
        fan_in = math.prod(w.shape[1:])
        tw = config.columns if (k > 1 and fan_in <= config.columns) else k * config.columns
        adder = ly.kind.startswith("adder")
        zs = int(config.zero_skip and adder and k * config.columns >= 16)
        total += -(-fan_in // tw) * (8 + zs) * w.shape[0]
    return total


@pytest.mark.parametrize("spec", list(SPECS))
@pytest.mark.parametrize("preset_name,mat", [("jeit_stt", 1), ("nand_spin", 2)])
def test_streamed_model_equals_golden_and_count(spec, preset_name, mat):
    rng = np.random.default_rng(SEED + len(spec) + mat)
    shape, layers = SPECS[spec]
    x = rng.integers(0, 256, (2, *shape)).astype(np.uint8)
    model = random_model(layers, shape, rng, x[:1])
    config = _small(preset_name, buffer_slots=64)
    with pytest.raises(CompileError, match=r"raise buffer_slots to at least"):
        compile_model(model, config, subarrays=mat)
    # the other sizes proposed (the buffer: one that holds every weight), then a buffer of
    # less than that: the weights stream
    config = propose_config(model, config, subarrays=mat, stream_weights=True)
    want_slots = _expected_slots(model, config, mat)
    assert config.buffer_slots >= want_slots
    # (the chain: 64 slots, layers split into channel tiles; the residual model: the largest
    # size below it, room for the passes of its standalone layers beside the stream region)
    small = 64 if spec == "chain" else 1 << ((want_slots - 1).bit_length() - 1)
    config = dataclasses.replace(config, buffer_slots=small)
    compiled = compile_model(model, config, subarrays=mat, stream_weights=True)
    tiles = [len(st.weight_loads) for st in compiled.stages]
    assert max(tiles) > 1, f"{spec}: no layer was split into channel tiles: {tiles}"
    core = CoreModel(compiled.config, subarrays=mat)
    golden = infer_int(model, x, trace=True)
    for i, img in enumerate(x):
        r = run_compiled(compiled, img, core, load_weights=i == 0)
        assert_stages_equal_golden(compiled, r, golden, i, f"{spec} {preset_name}", SEED)
        skipped = ([s.zero_skip.get("zs_tiles", 0) for s in r.stages]
                   if config.zero_skip else None)
        c = count_model(compiled, skipped=skipped)
        diff = {k: (c.counters[k], v) for k, v in r.counters.items() if c.counters[k] != v}
        assert not diff, f"{spec} {preset_name} image {i}: count != cycle model: {diff}"
        streamed = sum(s.weight_words for s in r.stages)
        assert streamed == want_slots, (streamed, want_slots)
        assert weight_stream.cost(compiled)["slots"] == streamed


def test_stream_cost_in_the_count():
    rng = np.random.default_rng(SEED)
    shape, layers = SPECS["chain"]
    x = rng.integers(0, 256, (1, *shape)).astype(np.uint8)
    model = random_model(layers, shape, rng, x)
    # the PPU post-processes both (nand_spin's default, mixed, would post-process them in
    # memory, the streamed one's words streamed too: tests/test_streamed_inmem.py)
    config = _small("nand_spin", buffer_slots=64, postproc="ppu")
    streamed = compile_model(model, config, stream_weights=True)
    resident = compile_model(model, dataclasses.replace(config, buffer_slots=1024),
                             stream_weights=True)
    assert not any(st.weight_loads for st in resident.stages), "streamed although it fits"
    a, b = count_model(streamed, model), count_model(resident, model)
    cost = a.host["weight_stream"]
    slots = _expected_slots(model, config, 1)
    assert cost["slots"] == slots
    assert cost["bus_cycles"] == slots * -(-16 // 128)      # a 16-bit row: one bus transfer
    # the same programs but for the extra gathers of the channel tiles: the latency adds the
    # bus cycles, the energy the stream's
    assert a.estimate["cycles"] == a.counters["cycles"] + a.host["host_cycles"] + slots
    assert a.estimate["energy_j"] > b.estimate["energy_j"]
    assert cost["energy_j"] == pytest.approx(cost["sram_j"] + cost["wire_j"])
    assert a.estimate["energy_per_op_j"]["host_weight_stream"] == cost["energy_j"]


def test_one_channel_too_big_names_the_buffer():
    rng = np.random.default_rng(SEED)
    shape = (1, 1, 40)
    x = rng.integers(0, 256, (1, *shape)).astype(np.uint8)
    model = random_model([("flatten",), ("linear", "mul_linear", 3)], shape, rng, x)
    config = _small("jeit_stt", buffer_slots=16)     # one channel: 3 tiles x 8 planes = 24
    with pytest.raises(CompileError, match=r"one output channel's weights take 24 .*"
                       r"raise buffer_slots to at least 32"):
        compile_model(model, config, stream_weights=True)


@pytest.mark.parametrize("preset_name", ["jeit_stt", "nand_spin"])
def test_requant_table_streamed_with_the_weights(preset_name):
    """A requant table smaller than the model's channels: each channel tile's entries are
    loaded with its weights; golden, the count and the loaded entries (every compute layer's
    output channels, restated from the shapes) agree."""
    rng = np.random.default_rng(SEED + 7)
    shape, layers = SPECS["chain"]
    x = rng.integers(0, 256, (2, *shape)).astype(np.uint8)
    model = random_model(layers, shape, rng, x[:1])
    config = _small(preset_name, buffer_slots=64, requant_channels=4)
    with pytest.raises(CompileError, match=r"requant_channels=4 entries; raise "
                       r"requant_channels to at least 15"):
        compile_model(model, dataclasses.replace(config, buffer_slots=4096))
    compiled = compile_model(model, config, stream_weights=True)
    assert all(t is not None and len(t[1]) <= 4 for st in compiled.stages
               for *_, t in st.weight_loads)
    channels = sum(ly.params["weight"].shape[0] for ly in model.layers if ly.is_compute)
    core = CoreModel(compiled.config)
    golden = infer_int(model, x)
    for i, img in enumerate(x):
        r = run_compiled(compiled, img, core, load_weights=i == 0)
        assert r.logits.tolist() == golden[i].tolist(), f"{preset_name} image {i}"
        skipped = ([s.zero_skip.get("zs_tiles", 0) for s in r.stages]
                   if config.zero_skip else None)
        c = count_model(compiled, skipped=skipped)
        assert c.counters == r.counters
        assert sum(s.table_words for s in r.stages) == channels == 15
    cost = weight_stream.cost(compiled)
    assert cost["entries"] == channels
    assert cost["slots"] == _expected_slots(model, config, 1)


def _loop_proposal(model, config, mat, stream):
    """The proposal restated as one field per compile: compile, raise the field the error
    names to the size it names, repeat (streaming through the largest buffer and table)."""
    from rtl.config import SIZE_FIELDS
    while True:
        try:
            compile_model(model, config, subarrays=mat, stream_weights=stream)
            return config
        except CompileError as e:
            top = SIZE_FIELDS[e.field][2] if e.field else None
            if stream and e.size is None and e.field in ("buffer_slots", "requant_channels") \
                    and getattr(config, e.field) < top:
                config = dataclasses.replace(config, **{e.field: top})
                continue
            assert e.size is not None and e.size > getattr(config, e.field), str(e)
            config = dataclasses.replace(config, **{e.field: e.size})


@pytest.mark.parametrize("spec", list(SPECS))
def test_propose_raises_every_shortfall_in_one_pass(spec, monkeypatch):
    """Every size too small at once: the proposal equals the one-field-per-compile loop's, in
    fewer compiles."""
    import sim.compile.compiler as comp
    rng = np.random.default_rng(SEED + 3)
    shape, layers = SPECS[spec]
    x = rng.integers(0, 256, (1, *shape)).astype(np.uint8)
    model = random_model(layers, shape, rng, x)
    # the PPU: the loop restates the proposal from the compile's errors, and nand_spin's
    # default (mixed) puts a layer on the PPU where a size is short instead of an error (its
    # proposal: tests/test_postproc_mixed.py)
    config = _small("nand_spin", buffer_slots=2, requant_channels=1, offset_entries=2,
                    patch_entries=2, program_words=64, data_words=64, postproc="ppu")
    want = _loop_proposal(model, config, 1, False)
    calls = []
    real = comp.compile_model
    monkeypatch.setattr(comp, "compile_model", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = propose_config(model, config)
    changed = {f for f in ("buffer_slots", "requant_channels", "offset_entries",
                           "patch_entries", "program_words", "data_words")
               if getattr(want, f) != getattr(config, f)}
    assert len(changed) >= 4, changed
    assert got == want, {f: (getattr(got, f), getattr(want, f)) for f in changed}
    assert len(calls) <= 3 < len(changed) + 1, len(calls)


def test_chip_model_counts_the_streamed_words_on_the_bus():
    from sim.hw import chip
    rng = np.random.default_rng(SEED)
    shape, layers = SPECS["chain"]
    x = rng.integers(0, 256, (1, *shape)).astype(np.uint8)
    model = random_model(layers, shape, rng, x)
    config = _small("nand_spin", buffer_slots=64)
    compiled = compile_model(model, config, stream_weights=True)
    fig = dict(latency_s=1e-4, energy_j=1e-6, ops=1000, data_words=128, program_words=500,
               mat_area_mm2=0.5)
    c = chip.chip_model(config, compiled, **fig)
    got = c["bits_per_image"]
    # program words of 10 + 3 x (14 + 6) = 70 bits: nand_spin's data_words 16384, 14-bit bases
    assert got == 128 * 32 + 500 * 70 + _expected_slots(model, config, 1) * 16
    # every bus bit charged once, at the chip's wire: the stream's wire energy at the mat's
    # wire (in the mat's energy, as the report adds it) is taken out, by hand here
    stream_bits = _expected_slots(model, config, 1) * 16
    mat_wire_mm = weight_stream.wire_mm(config)
    chip_wire_mm = (c["organisation"]["mats"] * 0.5) ** 0.5 / 2
    want = (1e-6 - stream_bits * 100e-15 * mat_wire_mm + got * 100e-15 * chip_wire_mm)
    assert c["energy_per_image_j"] == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("preset_name", ["jeit_stt", "nand_spin", "imac_sot"])
def test_requant_table_streamed_beside_standalone_layers(preset_name):
    """A streamed requant table with standalone layers after it (an ``add``, a global average
    pool): their passes' entries are resident after the stream region and must be read where
    they were loaded. (Found on MobileNet-v1 on the cycle model: with every compute layer's
    entries streamed, the global pool's entry was loaded at entry 0 but read at the region's
    end, so the pool wrote zeros; the counters, data-independent, still equalled the count.)
    Every stage == golden on the cycle model."""
    rng = np.random.default_rng(SEED + 11)
    shape, layers = SPECS["residual"]
    x = rng.integers(0, 256, (2, *shape)).astype(np.uint8)
    model = random_model(layers, shape, rng, x[:1])
    config = _small(preset_name, buffer_slots=4096, requant_channels=18)
    compiled = compile_model(model, config, stream_weights=True)
    streamed = [st.name for st in compiled.stages for *_, t in st.weight_loads if t is not None]
    assert streamed, "the requant table was not streamed"
    extras = [st for st in compiled.stages if not st.weight_loads]
    assert extras, "no standalone stage reads a resident requant entry"
    core = CoreModel(compiled.config)
    golden = infer_int(model, x, trace=True)
    for i, img in enumerate(x):
        r = run_compiled(compiled, img, core, load_weights=i == 0)
        assert_stages_equal_golden(compiled, r, golden, i, preset_name, SEED + 11)
        assert count_model(compiled).counters == r.counters or config.zero_skip
