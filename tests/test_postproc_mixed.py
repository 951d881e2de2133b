"""Post-processing mode ``mixed`` (issue 14, nand_spin's default): seed 001's in-memory
post-processing (sec. 4.2) for every layer it is built for, the PPU for the others, each
fallback recorded with its reason; ``in_memory`` stays strict."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from golden.model import infer_int
from rtl.config import preset
from sim.analysis.counting import count_model
from sim.compile.compiler import CompileError, compile_model, propose_config, run_compiled
from sim.compile.nand_postproc import (NOT_BUILT, check_stages, postproc_lines,
                                       postproc_summary, with_postproc)
from sim.hw.core_model import CoreModel
from tests.layer_models import random_model

SEED = 1414

#: conv (adder) -> conv (multiply) -> residual add of layer 0's output -> conv + fused 2x2 max
#: pool -> flatten -> logits: every layer but the add (and the logits' LOGIT) in memory.
SPEC = [("conv", "adder_conv2d", 4, 3, 1, 1), ("conv", "mul_conv2d", 4, 3, 1, 1), ("add", 1),
        ("conv", "adder_conv2d", 3, 3, 1, 1), ("pool", "max", 2, 2), ("flatten",),
        ("linear", "mul_linear", 5)]


def _model_and_images(n=2):
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)
    return random_model(SPEC, (1, 8, 8), rng, x[:1]), x


def _nand(subarrays=2):
    """nand_spin's core on a small mat (its default post-processing: ``mixed``)."""
    return dataclasses.replace(preset("nand_spin"), subarrays_per_mat=subarrays)


def test_nand_spin_defaults_to_mixed_and_the_modes_validate():
    """nand_spin runs seed 001's way by default (route nand_inmem in its core); ``mixed``
    needs the route as ``in_memory`` does; ``with_postproc`` takes all three modes."""
    from sim.util import UserError
    cfg = preset("nand_spin")
    assert cfg.postproc == "mixed" and "nand_inmem" in cfg.routes
    bare = dataclasses.replace(cfg, postproc="ppu", routes=("write_free", "and_bitcount"))
    for mode in ("mixed", "in_memory"):
        with pytest.raises(ValueError, match=rf"^postproc='{mode}' needs the route 'nand_inmem'"):
            dataclasses.replace(bare, postproc=mode)
        got = with_postproc(bare, mode)
        assert got.postproc == mode and "nand_inmem" in got.routes
    with pytest.raises(ValueError, match=r"^postproc must be one of ppu, in_memory, mixed, "
                                         r"not 'cmos'$"):
        dataclasses.replace(cfg, postproc="cmos")
    with pytest.raises(UserError, match=r"^--postproc must be one of ppu, in_memory, mixed, "
                                        r"not 'x'$"):
        with_postproc(cfg, "x")
    assert with_postproc(cfg, "ppu").postproc == "ppu"


def test_mixed_runs_the_add_on_the_ppu_the_rest_in_memory():
    """The residual add (not built in memory) on the PPU with NOT_BUILT as its reason, the
    three requant convolutions in memory (the fused max pool by comparison), the logits by the
    PPU's LOGIT; every stage of every image == golden on the cycle model, and the counting
    mode equals the cycle model on every counter of every stage."""
    model, x = _model_and_images()
    cfg = propose_config(model, _nand(), subarrays=2)
    compiled = compile_model(model, cfg, subarrays=2)
    where = {st.name: (st.postproc, st.postproc_reason) for st in compiled.stages}
    assert [n for n, (p, _) in where.items() if p == "in_memory"] == [
        "layer0 adder_conv2d", "layer1 mul_conv2d", "layer3 adder_conv2d + layer4 max_pool2d"]
    assert where["layer2 add"] == ("ppu", f"layer 2 (add): {NOT_BUILT}")
    assert where["layer6 mul_linear"][0] == "ppu"
    assert where["layer6 mul_linear"][1].startswith("logits: the PPU's LOGIT")
    assert [n for n, _ in compiled.ppu_fallbacks] == ["layer2 add", "layer6 mul_linear"]
    trace = infer_int(model, x, trace=True)
    counted = count_model(compiled)
    for i, img in enumerate(x):
        res = run_compiled(compiled, img, CoreModel(cfg, subarrays=2))
        check_stages(compiled, res, trace, i, "postproc mixed", "issue 14")
        assert np.array_equal(res.logits, trace[-1][i])
        for sc, sr in zip(counted.stages, res.stages, strict=True):
            assert sc.counters == sr.micro_ops, sc.name
        assert counted.counters == res.counters
    # BITCOUNT only in the in-memory stages; the add's REQUANT the only PPU requantization
    summary = postproc_summary(compiled, [s.counters for s in counted.stages])
    add = next(s for s in counted.stages if s.name == "layer2 add")
    assert summary["in_memory_stages"] == 3 and summary["bitcount"] > 0
    assert summary["bitcount"] == counted.counters["bitcount"]
    assert summary["bitcount_requantize"] + summary["bitcount_pool"] == summary["bitcount"]
    assert summary["bitcount_pool"] > 0          # the max pool's comparison (Fig. 9)
    assert summary["ppu_requantize"] == add.counters["requant"] > 0
    lines = postproc_lines(summary)
    assert lines[0].startswith("post-processing mixed: 3 of 5 stages in memory")
    assert lines[1] == f"  on the PPU: layer2 add: layer 2 (add): {NOT_BUILT}"
    assert len(lines) == 3


def test_in_memory_is_strict_on_the_same_model():
    """``in_memory`` refuses the add in one line naming the layer."""
    model, _ = _model_and_images(1)
    with pytest.raises(CompileError) as e:
        compile_model(model, with_postproc(_nand(), "in_memory"), subarrays=2)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("layer 2 (add): postproc 'in_memory' (seed 001 sec. 4.2): "
                          "in-memory post-processing of this layer is not built yet"), msg


def test_mixed_falls_back_where_a_size_is_too_small_and_propose_raises_it():
    """On a core whose data memory holds the activations but not a layer's raw sums, that
    layer is on the PPU with the field to raise as its reason (and == golden);
    ``propose_config`` raises the field so that every built layer runs in memory."""
    model, x = _model_and_images(1)
    tiny = dataclasses.replace(_nand(), data_words=64)      # the smallest data memory
    ppu = propose_config(model, with_postproc(tiny, "ppu"), subarrays=2)
    mixed = with_postproc(ppu, "mixed")
    compiled = compile_model(model, mixed, subarrays=2)
    reasons = dict(compiled.ppu_fallbacks)
    small = [n for n, w in reasons.items() if "raise data_words to at least" in w]
    assert small, reasons
    res = run_compiled(compiled, x[0], CoreModel(mixed, subarrays=2))
    check_stages(compiled, res, infer_int(model, x, trace=True), 0, "postproc mixed", "issue 14")
    big = propose_config(model, mixed, subarrays=2)
    assert big.data_words > mixed.data_words
    assert [n for n, _ in compile_model(model, big, subarrays=2).ppu_fallbacks] == [
        "layer2 add", "layer6 mul_linear"]


def test_ppu_keeps_todays_mapping():
    """``postproc='ppu'`` on nand_spin's core: no stage in memory, no reason, no BITCOUNT."""
    model, _ = _model_and_images(1)
    cfg = propose_config(model, with_postproc(_nand(), "ppu"), subarrays=2)
    compiled = compile_model(model, cfg, subarrays=2)
    assert {st.postproc for st in compiled.stages} == {"ppu"}
    assert compiled.ppu_fallbacks == []
    assert count_model(compiled).counters["bitcount"] == 0


@pytest.mark.parametrize("buffer_slots,where", [(None, "in_memory"), (16, "ppu")])
def test_mixed_restarts_an_eq2_layer_found_on_the_ppu(buffer_slots, where):
    """An eq.-2 layer (k-bit codes) whose weights and requant table are streamed: in memory
    (sim.compile.weight_stream's channel tiles, then the post-processing words streamed) with
    the array's entries; with a stream region too small for a row of lanes' words (16 buffer
    slots) the compile restarts with the PPU's MSB-aligned entries for it. Both == golden."""
    from tests.test_bits import bits_model
    rng = np.random.default_rng(SEED + 2)
    x = rng.integers(0, 256, (1, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x, conv=(4, 8), fc=(3, 0), eq2=3)
    cfg = dataclasses.replace(preset("nand_spin"), rows=128, columns=16, subarrays_per_mat=1)
    compiled = compile_model(model, cfg, subarrays=1, channels=4, buffer_slots=buffer_slots,
                             stream_weights=True)
    st = compiled.stages[0]
    assert st.weight_loads, "weights not streamed: test too weak"
    assert st.postproc == where, st.postproc_reason
    if where == "ppu":
        assert "buffer_slots" in st.postproc_reason and "stream region" in st.postproc_reason
    else:
        assert st.postproc_loads
    res = run_compiled(compiled, x[0], CoreModel(compiled.config, subarrays=1))
    check_stages(compiled, res, infer_int(model, x, trace=True), 0, "postproc mixed", "eq. 2")


def test_mixed_moves_a_layer_to_the_ppu_when_a_later_one_runs_out_of_a_table():
    """digits_addernet on nand_spin with the default offset table (``SIZE_FIELDS``' 1024
    entries, the preset's before it had its own): in memory its early layers' offset entries
    leave too few for layer 6, which the PPU way fits; ``mixed`` does not refuse it but puts
    the last layers placed in memory before it on the PPU (the reason names the table and the
    size to raise) and runs == golden; ``propose_config`` sizes the core for all in memory."""
    from golden import datasets
    from golden.model import bundled_model_path, load_model
    from rtl.config import SIZE_FIELDS
    model = load_model(bundled_model_path("digits_addernet"))
    x, _ = datasets.load_dataset("digits", "test")
    cfg = dataclasses.replace(preset("nand_spin"),
                              offset_entries=SIZE_FIELDS["offset_entries"][0])
    compiled = compile_model(model, cfg)
    short = [n for n, w in compiled.ppu_fallbacks
             if "leaves too little of offset_entries" in w and "raise offset_entries" in w]
    assert short and any(st.postproc == "in_memory" for st in compiled.stages), \
        compiled.ppu_fallbacks
    res = run_compiled(compiled, x[0], CoreModel(cfg))
    check_stages(compiled, res, infer_int(model, x[:1], trace=True), 0, "postproc mixed",
                 "digits_addernet")
    big = compile_model(model, propose_config(model, cfg))
    assert [n for n, _ in big.ppu_fallbacks] == ["layer7 mul_linear"]


def test_report_lists_the_ppu_fallbacks(tmp_path):
    """``sim.analysis.report`` (cycle model) states nand_spin's post-processing mode and one line
    per stage on the PPU with its reason, as the compiled model records them."""
    import json

    from golden.model import bundled_model_path, load_model
    from sim.analysis import report
    assert report.main(["--backend", "model", "-n", "1", "--mat", "4", "--model",
                        "digits_addernet", "--preset", "nand_spin", "--out", str(tmp_path),
                        "--quiet"]) == 0
    model = load_model(bundled_model_path("digits_addernet"))
    compiled = compile_model(model, preset("nand_spin"), subarrays=4)
    rep = json.loads((tmp_path / "report-nand_spin.json").read_text())
    want = [{"stage": n, "why": w} for n, w in compiled.ppu_fallbacks]
    assert rep["postproc"]["mode"] == "mixed" and rep["postproc"]["ppu_fallbacks"] == want
    md = (tmp_path / "report.md").read_text()
    n_in = sum(st.postproc == "in_memory" for st in compiled.stages)
    assert f"Post-processing mixed: {n_in} stage(s) in memory (seed 001 sec. 4.2), on the PPU:" \
        in md
    for f in want:
        assert f"- {f['stage']}: {f['why']}" in md


def _bundled_nand_models():
    """The bundled models (``golden/models/*.npz``) that nand_spin's routes map, loaded."""
    from golden.model import MODELS_DIR, load_model
    out = {}
    for path in sorted(MODELS_DIR.glob("*.npz")):
        model = load_model(path)
        try:
            compile_model(model, with_postproc(preset("nand_spin"), "ppu"))
        except CompileError as e:
            assert "maps a bin_gconv2d layer" in str(e), e     # the DIMA Add-Nets only
            continue
        out[path.stem] = model
    return out


def test_the_presets_sizes_are_the_smallest_that_keep_every_built_layer_in_memory():
    """nand_spin's preset sizes (``data_words``, ``offset_entries``; docs/assumptions.rst):
    every bundled model it runs has the same stages in memory at the preset's sizes as at the
    sizes ``propose_config`` gives for all in memory, so no stage is on the PPU for a size; at
    half of either field some model sends a layer to the PPU naming that field."""
    from rtl.config import SIZE_FIELDS
    models = _bundled_nand_models()
    assert {"fashion_addernet", "digits_addernet"} <= set(models), sorted(models)
    cfg = preset("nand_spin")

    def on_ppu(config):
        return {name: dict(compile_model(m, config).ppu_fallbacks) for name, m in models.items()}

    own = on_ppu(cfg)
    for name, m in models.items():
        full = dict(compile_model(m, propose_config(m, cfg)).ppu_fallbacks)
        assert own[name] == full, (name, own[name], full)
        assert not any("raise" in why for why in own[name].values()), (name, own[name])
        assert any(st.postproc == "in_memory" for st in compile_model(m, cfg).stages), name
    for field in ("data_words", "offset_entries"):
        half = getattr(cfg, field) // 2
        assert half >= SIZE_FIELDS[field][0]
        short = on_ppu(dataclasses.replace(cfg, **{field: half}))
        named = [(n, st) for n, f in short.items() for st, why in f.items()
                 if f"raise {field} to at least" in why]
        assert named, (field, short)
