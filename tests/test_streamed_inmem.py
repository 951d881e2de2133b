"""In-memory post-processing of layers whose weights are streamed (issue 14, seed 001 sec. 4.2
eq. 2 / eq. 3 and Fig. 8 on a layer ``sim.compile.weight_stream`` streams): the channel tiles
write raw sums, after the last tile the layer's post-processing programs run in batches of rows
of lanes whose words the host writes into the stream region (``Stage.postproc_loads``).

Checked: every stage == golden (``golden.model.infer_int``) on the cycle model, the counting
mode == the cycle model counter for counter, the words the host writes (weights restated from
the weight shapes, post-processing words restated from the layers' requant parameters and the
module docstring of ``sim.compile.nand_postproc``: an all-ones word once, then per row of lanes
``m_bits`` scale + ``p_bits`` bias words) and their cost (``sim.compile.weight_stream``'s rule:
``ceil(bits / bus_bits)`` bus cycles and an SRAM write per word, the wire), and the refusals
(naming ``buffer_slots``, grouped layers, streamed + banded layers)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from golden.layers import conv_acc_bound
from golden.model import infer_int
from golden.pim import inmem_requant_bits
from rtl.config import preset
from sim.analysis.counting import count_model
from sim.compile import weight_stream
from sim.compile.compiler import CompileError, compile_model, run_compiled
from sim.hw.core_model import CoreModel
from tests.layer_models import assert_stages_equal_golden, grouped_model, random_model

SEED = 20261202

#: A chain: a convolution with a fused 2x2 max pool, a multiply convolution, a requant
#: FC-shaped convolution (its kernel the whole 4x4 input) and the logits (every stage but the
#: logits' in memory; in_memory builds all of it).
CHAIN = ((2, 8, 8), [("conv", "adder_conv2d", 6, 3, 1, 1), ("pool", "max", 2, 2),
                     ("conv", "mul_conv2d", 5, 3, 1, 1), ("conv", "mul_conv2d", 7, 4, 1, 0),
                     ("flatten",), ("linear", "adder_linear", 4)])
#: Channels of at most 16 buffer words (2 tiles on 16 columns): a 32-slot buffer streams
#: them, but its region holds no row of lanes' post-processing words.
TINY = ((2, 4, 4), [("conv", "adder_conv2d", 6, 3, 1, 1), ("pool", "max", 2, 2),
                    ("conv", "mul_conv2d", 5, 1, 1, 0), ("flatten",),
                    ("linear", "adder_linear", 4)])
#: Standalone layers (a residual add, global average pooling): the stream region is at most
#: half the buffer; mixed runs the add and the pooling on the PPU.
RESIDUAL = ((2, 8, 8), [("conv", "mul_conv2d", 8, 3, 1, 1), ("conv", "adder_conv2d", 8, 3, 1, 1),
                        ("add", 1), ("gap",), ("flatten",), ("linear", "mul_linear", 3)])


def _small(postproc, **kw):
    """nand_spin's core on a 16-column mat of one subarray (16 lanes a row)."""
    return dataclasses.replace(preset("nand_spin"), rows=256, columns=16, subarrays_per_mat=1,
                               mats=1, postproc=postproc, **kw)


def _model(spec, seed):
    rng = np.random.default_rng(seed)
    shape, layers = spec
    x = rng.integers(0, 256, (2, *shape)).astype(np.uint8)
    return random_model(layers, shape, rng, x[:1]), x


def _weight_words(model, width):
    """Buffer words of the streamed weights, from the shapes: ceil(fan-in / width) tiles x 8
    planes x output channels (nand_spin: no zero-skip dots)."""
    return sum(-(-math.prod(ly.params["weight"].shape[1:]) // width) * 8
               * ly.params["weight"].shape[0] for ly in model.layers if ly.is_compute)


def _postproc_words(layer, fan_in, lanes, width):
    """The host's post-processing words of one streamed in-memory layer, restated from
    ``sim.compile.nand_postproc``'s docstring: one shift S = max(shift) for all lanes (mult and
    bias scaled by 2**(S - shift)), p_bits = max(golden.pim.inmem_requant_bits, the sums' bits,
    S + 8 + 1), m_bits the bits of the largest multiplier residue mod 2**p_bits; an all-ones
    word, then m_bits + p_bits words per row of ``width`` lanes."""
    p = layer.params
    top = max(int(s) for s in p["rq_shift"])
    mult = [int(m) << (top - int(s)) for m, s in zip(p["rq_mult"], p["rq_shift"], strict=True)]
    bias = [int(b) << (top - int(s)) for b, s in zip(p["rq_bias"], p["rq_shift"], strict=True)]
    bound = conv_acc_bound(layer.acc_kind, fan_in)
    p_bits = max(inmem_requant_bits(bound, mult, bias, [top] * len(mult)),
                 (2 * bound).bit_length(), top + 8 + 1)
    m_bits = max(1, max((m % (1 << p_bits)).bit_length() for m in mult))
    return 1 + -(-lanes // width) * (m_bits + p_bits)


def _run(where, compiled, model, x):
    """Every stage == golden on the cycle model, the count == the cycle model; returns the
    last run."""
    core = CoreModel(compiled.config, subarrays=compiled.subarrays)
    golden = infer_int(model, x, trace=True)
    for i, img in enumerate(x):
        r = run_compiled(compiled, img, core, load_weights=i == 0)
        assert_stages_equal_golden(compiled, r, golden, i, where, SEED)
        c = count_model(compiled)
        diff = {k: (c.counters[k], v) for k, v in r.counters.items() if c.counters[k] != v}
        assert not diff, f"{where} image {i}: count != cycle model: {diff}"
    return r


@pytest.mark.parametrize("postproc", ["in_memory", "mixed"])
@pytest.mark.parametrize("buffer_slots", [64, 256])
def test_streamed_layers_in_memory_equal_golden_and_count(postproc, buffer_slots):
    """64 slots: one or two rows of lanes' words a batch; 256: more rows a batch."""
    model, x = _model(CHAIN, SEED)
    config = _small(postproc, buffer_slots=buffer_slots)
    compiled = compile_model(model, config, stream_weights=True)
    requant = [st for st in compiled.stages if st.output == "requant"]
    assert [st.postproc for st in requant] == ["in_memory"] * 3, compiled.ppu_fallbacks
    assert all(st.weight_loads and st.postproc_loads for st in requant)
    assert max(len(st.weight_loads) for st in requant) > 1, "no layer split into channel tiles"
    assert max(len(st.postproc_loads) for st in requant) > 1, "no layer in several batches"
    r = _run(f"{postproc} buffer {buffer_slots}", compiled, model, x)
    assert count_model(compiled).counters["bitcount"] > 0
    # the host's words: the weights and every in-memory layer's post-processing words
    width = compiled.width
    pp = sum(_postproc_words(model.layers[st.layer_index], st.fan_in, st.out_size, width)
             for st in requant)
    cost = weight_stream.cost(compiled)
    assert cost["postproc_slots"] == pp
    assert sum(s.weight_words for s in r.stages) == cost["slots"] == _weight_words(model, 16) + pp


def test_postproc_loads_are_charged_like_streamed_weights():
    """The in-memory stages' loads cost what streamed weights cost: a 16-bit word one bus
    cycle (128-bit bus), a weight-buffer SRAM write and its bits on the wire; in the count's
    latency and energy."""
    from sim.hw import sram
    from sim.hw.chip import PARAMS
    model, _ = _model(CHAIN, SEED)
    config = _small("in_memory", buffer_slots=64)
    compiled = compile_model(model, config, stream_weights=True)
    cost = weight_stream.cost(compiled)
    slots = _weight_words(model, 16) + cost["postproc_slots"]
    assert cost["postproc_slots"] > 0 and cost["slots"] == slots and cost["entries"] == 0
    assert cost["bus_cycles"] == slots * -(-16 // int(PARAMS["bus_bits"].value))
    buf = {m.name: m for m in sram.core_memories(compiled.config, 1)}["weight buffer"]
    assert cost["sram_j"] == pytest.approx(slots * sram.write_energy_pj(buf.words, buf.bits)
                                           * 1e-12, rel=1e-12)
    wire = slots * 16 * PARAMS["wire_fj_per_bit_mm"].value * weight_stream.wire_mm(
        compiled.config) * 1e-15
    assert cost["wire_j"] == pytest.approx(wire, rel=1e-12)
    a = count_model(compiled, model)
    assert a.estimate["cycles"] == a.counters["cycles"] + a.host["host_cycles"] + slots
    assert a.estimate["energy_per_op_j"]["host_weight_stream"] == cost["energy_j"]
    # the same model on the PPU streams the weights only
    ppu = weight_stream.cost(compile_model(model, _small("ppu", buffer_slots=64),
                                           stream_weights=True))
    assert ppu["slots"] == _weight_words(model, 16) and ppu["postproc_slots"] == 0


def test_requant_table_streamed_too():
    """A 4-entry requant table: the tiles' raw-sum entries (1, 0, 0) stream with them."""
    model, x = _model(CHAIN, SEED + 1)
    compiled = compile_model(model, _small("in_memory", buffer_slots=64, requant_channels=4),
                             stream_weights=True)
    requant = [st for st in compiled.stages if st.output == "requant"]
    assert all(st.postproc == "in_memory" for st in requant)
    for st in requant:
        assert all(t is not None and set(t[1]) == {(1, 0, 0)} for *_, t in st.weight_loads)
    _run("table streamed", compiled, model, x)


def test_standalone_layers_mixed():
    """With standalone layers (mixed: the add and the pooling on the PPU) the streamed
    convolutions are post-processed in memory."""
    model, x = _model(RESIDUAL, SEED + 2)
    compiled = compile_model(model, _small("mixed", buffer_slots=256), stream_weights=True)
    convs = [st for st in compiled.stages if st.kind.endswith("conv2d")]
    assert all(st.weight_loads and st.postproc == "in_memory" for st in convs)
    _run("residual mixed", compiled, model, x)


def test_region_too_small_refuses_in_memory_and_mixed_uses_the_ppu():
    """A stream region smaller than one row of lanes' words: in_memory names buffer_slots, its
    value and the size whose region holds the row; mixed puts such layers on the PPU and says
    why; == golden."""
    model, x = _model(TINY, SEED)
    config = _small("in_memory", buffer_slots=32)
    with pytest.raises(CompileError) as e:
        compile_model(model, config, stream_weights=True)
    msg = str(e.value)
    assert msg.startswith("layer 0 (adder_conv2d)"), msg
    assert e.value.field == "buffer_slots" and "buffer_slots is 32" in msg, msg
    assert "raise buffer_slots to at least" in msg and "stream region" in msg, msg
    need = e.value.size
    assert need > 32
    # the named size: compiles, in memory (the region then holds a row)
    big = compile_model(model, dataclasses.replace(config, buffer_slots=need),
                        stream_weights=True)
    assert all(st.weight_loads and st.postproc_loads for st in big.stages
               if st.output == "requant")
    mixed = compile_model(model, _small("mixed", buffer_slots=32), stream_weights=True)
    on_ppu = [st for st in mixed.stages if st.output == "requant" and st.postproc == "ppu"]
    assert on_ppu and all("buffer_slots" in st.postproc_reason for st in on_ppu)
    assert not any(st.postproc_loads for st in on_ppu)
    _run("mixed buffer 32", mixed, model, x)


def test_in_memory_refuses_grouped_and_banded_streamed_layers():
    rng = np.random.default_rng(SEED)
    shape, layers = (4, 6, 6), [("g", "mul_gconv2d", 6, 3, 1, 1, 2)]
    x = rng.integers(0, 256, (1, *shape)).astype(np.uint8)
    model = grouped_model(rng, x, layers)
    with pytest.raises(CompileError, match=r"layer 0 \(mul_gconv2d\).*grouped layer "
                                           r"\(2 groups"):
        compile_model(model, _small("in_memory", buffer_slots=64), stream_weights=True)
    # weights streamed and activations tiled in bands (3 x 16 x 16 input, a 256-word half)
    spec = ((3, 16, 16), [("conv", "adder_conv2d", 8, 3, 1, 1), ("pool", "max", 2, 2),
                          ("conv", "mul_conv2d", 10, 3, 2, 1),
                          ("conv", "adder_conv2d", 5, 2, 1, 0), ("flatten",),
                          ("linear", "adder_linear", 4)])
    model, x = _model(spec, SEED)
    with pytest.raises(CompileError, match=r"layer 0 \(adder_conv2d\).*weights are streamed "
                                           r".*activations are tiled in bands"):
        compile_model(model, _small("in_memory", buffer_slots=64, data_words=512),
                      stream_weights=True, tile_activations=True)
    compiled = compile_model(model, _small("mixed", buffer_slots=64, data_words=512),
                             stream_weights=True, tile_activations=True)
    st = compiled.stages[0]
    assert st.act_bands > 1 and st.postproc == "ppu"
    assert "weights streamed" in st.postproc_reason and "bands" in st.postproc_reason
    # the resident stages of the tiled model: in memory, their sums in a half's free words
    assert [s.postproc for s in compiled.stages[2:]] == ["in_memory", "ppu"]
    _run("mixed streamed + banded", compiled, model, x)
