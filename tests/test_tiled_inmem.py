"""Seed 001's in-memory post-processing (sec. 4.2, ``sim.compile.nand_postproc``) of a model whose
activations are tiled (``sim.compile.act_tile``'s chain plan, issue 14): each band's raw sums after
its output in the data memory, requantized (eq. 2 / 3, ReLU) and pooled in the array band by
band. On the cycle model every stage == golden, the counting mode == the cycle model on every
counter, the host's moves == the cost model's; what cannot hold the sums stays on the PPU with
its reason (``mixed``) or is refused naming ``data_words`` (``in_memory``)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from rtl.config import preset
from sim.compile.compiler import CompileError, compile_model
from sim.compile.nand_postproc import postproc_summary
from tests.test_act_tile import CHAIN, SEED, _check, _model

#: A fused 2x2 average pool, a stride-2 convolution, a padded one, the logits.
AVG = ((2, 16, 16), [("conv", "mul_conv2d", 6, 3, 1, 1), ("pool", "avg", 2, 2),
                     ("conv", "adder_conv2d", 8, 3, 2, 1), ("conv", "mul_conv2d", 4, 3, 1, 1),
                     ("flatten",), ("linear", "mul_linear", 3)])


def _nand(mat: int, words: int, mode: str = "mixed"):
    """nand_spin on a small mat of ``mat`` subarrays (the lanes of its post-processing are the
    mat's columns) with ``words`` data-memory words."""
    return dataclasses.replace(preset("nand_spin"), rows=256, columns=16, subarrays_per_mat=mat,
                               mats=1, data_words=words, postproc=mode)


def _run(spec, mat, words, mode="mixed", seed=0):
    model, x = _model(spec, SEED + 14 + seed)
    config = _nand(mat, words, mode)
    compiled = compile_model(model, config, subarrays=mat, tile_activations=True)
    r = _check(model, x, compiled, mat, f"{spec[1][0]} mat {mat} {words} words {mode}")
    return model, compiled, r


def _ppu_and_mixed(config, subarrays: int) -> dict:
    """CHAIN compiled tiled with ``postproc`` ``ppu`` and ``mixed`` (mode -> compiled), each run
    on one image == golden, counting == cycle model."""
    model, x = _model(CHAIN, SEED + 14)
    out = {}
    for mode in ("ppu", "mixed"):
        out[mode] = compile_model(model, dataclasses.replace(config, postproc=mode),
                                  subarrays=subarrays, tile_activations=True)
        _check(model, x[:1], out[mode], subarrays, f"CHAIN {subarrays} subarrays {mode}")
    return out


def _patch_words(st):
    """Per band: the patch entries the host writes (the dot products' and the sums')."""
    return [m[4] for m in st.act_moves if m[1] == "patch"]


@pytest.mark.parametrize("mat,words,mode", [(2, 1024, "mixed"), (1, 1024, "in_memory"),
                                            (4, 1024, "mixed")])
def test_tiled_pooled_stage_in_memory(mat, words, mode):
    """CHAIN (3 x 16 x 16 image, a 3x3 convolution of 8 channels with a fused 2x2 max pool):
    the first stage is tiled (768 input words exceed a 512-word half) and post-processed in
    memory band by band, the resident ones too; only the logits on the PPU."""
    _, compiled, r = _run(CHAIN, mat, words, mode)
    st = compiled.stages
    assert st[0].act_bands > 1 and [s.act_bands for s in st[1:]] == [0, 0, 0]
    assert [s.postproc for s in st] == ["in_memory"] * 3 + ["ppu"], \
        [(s.name, s.postproc_reason) for s in st]
    s0 = st[0]
    cin, _, w = s0.in_shape
    o, hq, wq = s0.out_shape
    stores = [m for m in s0.act_moves if m[1] == "store"]
    band_rows = [m[4] // wq for m in stores[::o]]
    assert sum(band_rows) == hq and len(band_rows) == s0.act_bands
    # every band's patch entries: its 4 x (rows x Wq) dot-product patches, then 4 per row of
    # lanes of its O x rows x Wq outputs (the sums' entries)
    width = mat * 16
    assert _patch_words(s0) == [4 * rr * wq + 4 * math.ceil(o * rr * wq / width)
                                for rr in band_rows]
    # the band's layout: input from word 0 (Hs rows per channel), output after it, the raw
    # sums after the largest band's output, window position q of lane L at sums + 4 L + q
    hs = max(m[4] for m in s0.act_moves if m[1] == "load") // w
    assert s0.in_base == 0 and s0.out_base == cin * hs * w
    first = next(m[3] for m in s0.act_moves if m[1] == "patch")
    sums = [base for base, _ in first[4 * band_rows[0] * wq:]]
    assert sums[:4] == [s0.out_base + o * band_rows[0] * wq + q for q in range(4)]
    assert s0.out_base + o * band_rows[0] * wq + 4 * o * band_rows[0] * wq <= words
    # the bands' counters: BITCOUNTs of the requantization and the pool, no PPU requantize
    summ = postproc_summary(compiled, [s.micro_ops for s in r.stages])
    assert summ["in_memory_stages"] == 3
    assert summ["bitcount_requantize"] > 0 and summ["bitcount_pool"] > 0
    assert summ["ppu_requantize"] == 0
    assert r.stages[0].micro_ops["bitcount"] > 0


def test_tiled_unpooled_in_memory_and_the_band_without_room_on_the_ppu():
    """512 words: one band row of the pooled first stage with its raw sums needs 544 words, so
    it stays on the PPU with that reason (its PPU bands); the stride-2 convolution is tiled
    (2 bands) and in memory."""
    _, compiled, r = _run(CHAIN, 2, 512)
    st = compiled.stages
    assert st[0].postproc == "ppu" and st[0].act_bands > 1
    assert "one band of 1 output row with its raw sums" in st[0].postproc_reason
    assert st[1].act_bands == 2 and st[1].postproc == "in_memory" and st[1].pool is None
    assert st[2].postproc == "in_memory" and st[2].act_bands == 0
    assert r.stages[1].micro_ops["bitcount"] > 0
    assert r.stages[0].micro_ops["bitcount"] == 0 and r.stages[0].micro_ops["requant"] > 0
    # strict in_memory: the one-line refusal naming the layer and data_words
    model, _ = _model(CHAIN, SEED + 14)
    with pytest.raises(CompileError, match=r"^layer 0 \(adder_conv2d\): one band of 1 output "
                                           r"row with its raw sums \(postproc 'in_memory'.*"
                                           r"raise data_words to at least 1024"):
        compile_model(model, _nand(2, 512, "in_memory"), subarrays=2, tile_activations=True)


@pytest.mark.parametrize("mat", [1, 2])
def test_tiled_average_pool_in_memory(mat):
    """AVG: a tiled first stage with a fused 2x2 average pool (2 x 16 x 16 input, 6 x 16 x 16
    convolution output: bands), a tiled or resident stride-2 layer, all == golden."""
    _, compiled, r = _run(AVG, mat, 512, seed=mat)
    st = compiled.stages
    assert st[0].act_bands > 1 and st[0].pool == "avg" and st[0].postproc == "in_memory", \
        (st[0].act_bands, st[0].postproc_reason)
    assert all(s.postproc == "in_memory" for s in st[:-1]), \
        [(s.name, s.postproc_reason) for s in st]
    assert r.stages[0].micro_ops["bitcount"] > 0


def test_in_memory_bands_cost_more_bands_than_the_ppu():
    """The raw sums take data memory: the in-memory bands of a stage are at most as tall as
    the PPU's (ppu mode), and both give golden's outputs (checked above and here)."""
    got = {m: c.stages[0].act_bands for m, c in _ppu_and_mixed(_nand(2, 1024), 2).items()}
    assert got["mixed"] >= got["ppu"] >= 1, got


def test_store_mode_stays_on_the_ppu_with_its_reason():
    """A model with a standalone layer takes the store mode: not built in memory; ``mixed``
    runs its compute stages on the PPU naming it."""
    from tests.test_act_tile import STANDALONE
    model, _ = _model(STANDALONE, SEED)
    config = dataclasses.replace(_nand(2, 512), patch_entries=8192, offset_entries=4096)
    compiled = compile_model(model, config, subarrays=2, tile_activations=True)
    compute = [s for s in compiled.stages if s.kind.endswith(("conv2d", "linear"))
               and s.output == "requant"]
    assert compute and all(s.postproc == "ppu" and "store mode" in s.postproc_reason
                           for s in compute), [(s.name, s.postproc_reason) for s in compute]


#: A tiled first stage (1,728 input words exceed a 1,024-word half), then resident ones: the
#: 8-channel convolution's 512 sums and 64 positions do not fit its output half after its 512
#: outputs, so they go after its 128 input words in the input half.
HALVES = ((3, 24, 24), [("conv", "adder_conv2d", 2, 3, 1, 1), ("pool", "max", 2, 2),
                        ("conv", "mul_conv2d", 2, 5, 1, 0), ("conv", "adder_conv2d", 8, 3, 1, 1),
                        ("conv", "mul_conv2d", 2, 3, 2, 1), ("flatten",),
                        ("linear", "mul_linear", 3)])


def test_resident_stages_keep_their_sums_in_a_free_half():
    from sim.compile.compiler import _resident_sums
    _, compiled, r = _run(HALVES, 2, 2048, seed=5)
    st = compiled.stages
    assert st[0].act_bands > 1 and all(s.act_bands == 0 for s in st[1:])
    assert [s.postproc for s in st] == ["in_memory"] * 4 + ["ppu"]
    half = compiled.region
    assert half == 1024
    # layer 2: after its 128 outputs in the output half; layer 3: its 512 outputs leave too
    # little there (512 + 512 sums + 64 > 1024), so after its 128 inputs in the input half
    assert _resident_sums(st[1], half) == (st[1].out_base + 128, st[1].out_base + half)
    assert st[2].out_size == 512 and st[2].in_size == 128
    assert _resident_sums(st[2], half) == (st[2].in_base + 128, st[2].in_base + half)
    assert all(r.stages[i].micro_ops["bitcount"] > 0 for i in range(4))


def test_a_tiled_stage_that_falls_back_gets_the_ppu_bands():
    """Compiled for 2 subarrays of a 1-subarray mat, the in-memory programs refuse (32 lanes,
    the mat's 16 columns): ``mixed`` restarts with the stage on the PPU, banded as the PPU
    bands it (not the lower in-memory bands sized for its raw sums), and == golden."""
    both = _ppu_and_mixed(_nand(1, 1024), 2)
    st = both["mixed"].stages[0]
    assert st.postproc == "ppu" and "lanes must be an int in [1, 16], not 32" in \
        st.postproc_reason, st.postproc_reason
    bands = {m: [s.act_bands for s in c.stages] for m, c in both.items()}
    assert bands["mixed"] == bands["ppu"] and bands["ppu"][0] > 1, bands
