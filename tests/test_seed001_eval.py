"""sim.analysis.seed001_eval: the counts it uses == the cycle model's counters on a small
network at a non-8 <W:I> with weights streamed and activations tiled; the 64 MB chip's FPS
against a hand computation from stated inputs; the breakdowns add up; bad arguments are
one-line errors."""

import json
import math

import numpy as np
import pytest

from sim.analysis import seed001_eval as ev
from sim.compile import act_tile, weight_stream
from tests.test_counting import _check

#: Small sizes so that LeNet-5's weights stream and its activations tile (the paths the seed's
#: networks take at their sizes).
SMALL = {"buffer_slots": 64, "data_words": 1024}


@pytest.fixture(scope="module")
def lenet_w4i3():
    model = ev.seed_model("lenet5", 4, 3)
    compiled, res = ev.compile_and_count(model, ev.configuration(SMALL))
    return model, compiled, res


def test_model_is_the_seeds_kind_at_its_widths(lenet_w4i3):
    model, _, _ = lenet_w4i3
    mul = [ly for ly in model.layers if ly.is_compute]
    assert mul and all(ly.kind.startswith("mul_") for ly in mul)
    for ly in mul:
        assert int(ly.params["w_bits"]) == 4 and int(ly.params["in_bits"]) == 3
        w = ly.params["weight"]
        assert w.min() >= -8 and w.max() <= 7 and w.min() < 0 < w.max()


def test_count_equals_cycle_model_streamed_and_tiled(lenet_w4i3):
    """The counts the tool uses (``compile_and_count``) == the cycle model's counters, every
    stage and summed, and the logits == golden, on two random images."""
    model, compiled, res = lenet_w4i3
    assert res.host["weight_stream"]["slots"] > 0, "weights not streamed: test too weak"
    assert res.host["act_tile"]["loads"] > 0, "activations not tiled: test too weak"
    x = np.random.default_rng(7).integers(0, 256, (2, *model.input_shape), dtype=np.uint8)
    run = _check("seed001 lenet5 <4:3>", compiled, x, model)
    assert res.counters == run.counters         # the very count the tool's figures rest on
    assert [s.counters for s in res.stages] == [s.micro_ops for s in run.stages]


def test_fps_against_a_hand_computation(lenet_w4i3):
    """FPS = min(mats / latency, bus rate / bits per image), each input stated here: 64 MB
    over a mat of 16 x 256 x 128 bits, 128 bits per cycle at 133 MHz, the image's 32-bit data
    words, 64-bit program words, streamed weight and activation bits, latency = (counted
    cycles + every host and bus cycle) / 133 MHz."""
    model, compiled, res = lenet_w4i3
    config = ev.configuration(SMALL)
    parts = ev.parts_of(compiled, res)
    out = ev.chip(config, parts, ev.memories(config, parts))
    mats = 64 * 1024 * 1024 * 8 // (16 * 256 * 128)
    assert mats == 1024 == out["mats"]
    clock = 133e6
    latency = (res.counters["cycles"] + res.host["host_cycles"]
               + weight_stream.cost(compiled)["bus_cycles"]
               + act_tile.cost(compiled)["bus_cycles"]) / clock
    # the table sizes need 16-bit operand bases: 76-bit instruction words (64 + 3 bases x 4)
    assert config.isa_base_bits == 16
    bits = (res.host["data_words"] * 32 + res.host["program_words"] * 76
            + weight_stream.cost(compiled)["bits"] + act_tile.cost(compiled)["bits"])
    fps = min(mats / latency, 128 * clock / bits)
    assert out["fps"] == pytest.approx(fps, rel=1e-12)
    assert out["limit"] == ("bus" if 128 * clock / bits < mats / latency else "compute")
    assert out["bits_per_image"] == pytest.approx(bits, rel=1e-12)
    shared = weight_stream.cost(compiled)["bits"] + res.host["program_words"] * 76
    bc = min(mats / latency, 128 * clock / (bits - shared + shared / mats))
    assert out["broadcast"]["fps"] == pytest.approx(bc, rel=1e-12)
    assert out["broadcast"]["fps"] >= out["fps"]
    sweep = {x["bus_bits"]: x["fps"] for x in out["bus_sweep"]}
    assert sweep[128] == out["fps"]
    assert sweep[32] == pytest.approx(min(mats / latency, 32 * clock / bits), rel=1e-12)
    cap = {x["capacity_mb"]: (x["mats"], x["fps"]) for x in out["capacity_sweep"]}
    assert cap[64] == (1024, out["fps"])
    assert cap[16][0] == 256
    assert cap[16][1] == pytest.approx(min(256 / latency, 128 * clock / bits), rel=1e-12)


def test_packed_loads_carry_w_bits_per_weight(lenet_w4i3):
    """The packed bound: each streamed layer's weights cross the bus at W = 4 bits per weight,
    once per band of its output rows (each band streams the layer again), plus the requant
    entries at the PPU's 16 + 6 + 48 bits; the chip's packed FPS from those bits and the mat
    latency less the padded rows' bus cycles (one cycle per 128 bits of each load)."""
    model, compiled, res = lenet_w4i3
    config = ev.configuration(SMALL)
    entry_bits = 16 + 6 + 48
    weights = sum(model.layers[st.layer_index].params["weight"].size * 4 * max(1, st.act_bands)
                  for st in compiled.stages)
    padded = weight_stream.cost(compiled)
    got = ev.packed_loads(compiled)
    # a streamed layer post-processed in memory: its scale and bias words (a bit per lane
    # already) cross the bus as they are, a mat row each
    width = compiled.width
    pp_words = sum(len(img) for st in compiled.stages for _, _, img, _ in st.postproc_loads)
    assert got["bits"] == weights + padded["entries"] * entry_bits + pp_words * width
    assert got["padded_bits"] == padded["bits"] > 8 * got["bits"]   # 8 planes of 128 columns
    parts = ev.parts_of(compiled, res)
    out = ev.chip(config, parts, ev.memories(config, parts))
    clock, mats = 133e6, 1024
    cycles = padded["entries"] + pp_words * math.ceil(width / 128)    # 70 bits: a cycle each
    for st in compiled.stages:
        per_channel = model.layers[st.layer_index].params["weight"][0].size * 4
        for _, _, img, _ in st.weight_loads:
            channels = len(img) // (st.tiles * st.n)
            cycles += math.ceil(channels * per_channel / 128)
    latency = out["mat_latency_s"] - (padded["bus_cycles"] - cycles) / clock
    bits = out["bits_per_image"] - padded["bits"] + got["bits"]
    assert out["packed"]["mat_latency_s"] == pytest.approx(latency, rel=1e-12)
    assert out["packed"]["fps"] == pytest.approx(min(mats / latency, 128 * clock / bits),
                                                 rel=1e-12)
    assert out["packed"]["fps"] > out["fps"]


def test_fps_is_the_chip_models(lenet_w4i3):
    """On a whole network the tool's FPS is ``sim.hw.chip.chip_model``'s at 1,024 mats."""
    import dataclasses
    from sim.hw.chip import chip_model
    model, compiled, res = lenet_w4i3
    config = ev.configuration(SMALL)
    parts = ev.parts_of(compiled, res)
    out = ev.chip(config, parts, ev.memories(config, parts))
    ref = chip_model(dataclasses.replace(config, mats=1024), compiled,
                     latency_s=res.estimate["latency_s"], energy_j=res.estimate["energy_j"],
                     ops=res.ops, data_words=res.host["data_words"],
                     program_words=res.host["program_words"], mat_area_mm2=1.0, bus_bits=128)
    assert out["fps"] == pytest.approx(ref["images_per_second"], rel=1e-12)
    assert out["limit"] == ref["limit"]


def test_breakdowns_add_up(lenet_w4i3):
    model, compiled, res = lenet_w4i3
    config = ev.configuration(SMALL)
    parts = ev.parts_of(compiled, res)
    b = ev.breakdown(config, parts, ev.memories(config, parts))
    lat = b["latency_cycles"]
    assert sum(lat.values()) == round(res.estimate["latency_s"] * 133e6)
    assert all(v >= 0 for v in lat.values())
    assert lat["convolution"] == sum(res.counters[k] for k in ("and_fu", "bitcount", "read",
                                                               "and2", "or2", "fa_step",
                                                               "fs_step", "min_step",
                                                               "shift_acc"))
    classes = {k: v for k, v in b["energy_j"].items() if not k.startswith("SRAM")}
    assert sum(classes.values()) == pytest.approx(res.estimate["energy_j"], rel=1e-12)


def test_segmented_parts_add_up():
    """The segment-by-segment path (VGG-19's): one part per compute layer, its breakdowns sum
    to the parts' cycles and energy (reloaded tables included); the segments' counts against
    the cycle model are ``tests/test_multi_mat.py``'s."""
    model = ev.seed_model("lenet5", 3, 6)
    config = ev.configuration(SMALL)
    parts = ev.segmented(model, config)
    assert len(parts) == sum(1 for ly in model.layers if ly.is_compute)
    mem = ev.memories(config, parts)
    b = ev.breakdown(config, parts, mem)
    assert sum(b["latency_cycles"].values()) == sum(p.estimate["cycles"] for p in parts)
    classes = {k: v for k, v in b["energy_j"].items() if not k.startswith("SRAM")}
    assert sum(classes.values()) == pytest.approx(
        sum(p.estimate["energy_j"] for p in parts), rel=1e-12)
    c = ev.chip(config, parts, mem)
    assert c["bits_per_image"] == sum(sum(p.bits().values()) for p in parts)


def test_cli_quick_writes_json_and_markdown(tmp_path, capsys):
    j, m = tmp_path / "e.json", tmp_path / "e.md"
    assert ev.main(["--quick", "--wi", "2:5", "--json", str(j), "--md", str(m)]) == 0
    doc = json.loads(j.read_text())
    assert [r["status"] for r in doc["rows"]] == ["ok"]
    assert doc["table3"]["source"] == "seed 001 Table 3"
    text = m.read_text()
    assert "| Proposed | NAND-SPIN | not printed | 80.6 | 64 | 64.5 |" in text
    assert "<2:5> LeNet-5" in text and "seed latency %" in text


@pytest.mark.parametrize("argv, words", [
    (["--wi", "9:8"], "--wi"),
    (["--wi", "8"], "--wi"),
    (["--networks", "vgg16"], "--networks"),
    (["--networks", ""], "--networks"),
    (["--seed", "-1"], "--seed"),
    (["--data-words", "100"], "--data-words"),
    (["--requant-channels", "x"], "--requant-channels"),
])
def test_bad_args_one_line(argv, words, capsys):
    assert ev.main([*argv, "--json", "build/never.json"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and words in err and "\n" not in err, err


def test_seed_model_bad_widths():
    with pytest.raises(ev.EvalError, match="w_bits must be an int in"):
        ev.seed_model("lenet5", 0, 8)
    with pytest.raises(ev.EvalError, match="network must be one of"):
        ev.seed_model("vgg16")


def test_report_lines_from_the_markdown(tmp_path):
    assert "make seed001-eval" in ev.report_lines(tmp_path / "none.md")[0]
    md = tmp_path / "e.md"
    md.write_text("| a | b |\n")
    assert ev.report_lines(md)[-1] == "| a | b |"
