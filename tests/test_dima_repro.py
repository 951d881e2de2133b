"""Seed 002's reproduction table (``sim.analysis.dima_repro``): every computed column against an
independent computation (the seed's 2n, weight counts read straight from the model file and
the Add-Net's known shapes, the sweep file's accuracies, the energy of the whole run's
counters), and the table in ``make report``'s markdown for dima_sot."""

from __future__ import annotations

import json

import numpy as np
import pytest

from golden import datasets
from golden.model import MODELS_DIR, bundled_model_path, load_model
from rtl.config import preset
from sim.analysis import dima_repro
from sim.hw.energy import estimate


@pytest.mark.parametrize("n", [2, 8, 13])
def test_cycles_per_addsub_are_the_seeds_2n(n):
    # seed 002 sec. 3.2, Fig. 4a: an n-bit add/sub in 2 x n cycles
    assert dima_repro.addsub_cycles(preset("dima_sot"), n) == 2 * n


def _weights_from_file(path):
    """(kind, weight) of every layer with a weight, from the .npz arrays themselves."""
    with np.load(path) as z:
        n = int(z["num_layers"])
        return [(str(z[f"layer{i}.kind"]), z[f"layer{i}.weight"]) for i in range(n)
                if f"layer{i}.weight" in z.files]


def test_size_rows_of_digits_addnet_against_its_file_and_shapes():
    path = bundled_model_path("digits_addnet")
    layers = _weights_from_file(path)
    # digits_addnet: inception 1 -> 16 3x3, 2 blocks of dw 16 -> 64 (3x3) + pw 64 -> 16, MLP
    # 256 -> 64 -> 10 (README); the blocks' replacement: a 3x3 spatial conv 16 -> 16 each
    binarized = sum(w.size for k, w in layers if k == "bin_gconv2d")
    rest = sum(w.size for k, w in layers if k != "bin_gconv2d")
    assert binarized == 2 * (16 * 4 * 9 + 16 * 64)
    assert rest == 16 * 9 + 256 * 64 + 64 * 10
    spatial = 2 * 9 * 16 * 16
    s = dima_repro.size_rows(load_model(path))
    assert s["blocks"] == 2 and s["multiplier"] == 4
    assert s["block_bits_ours"] == binarized
    assert s["block_bits_fp32"] == 32 * spatial and s["block_bits_int8"] == 8 * spatial
    assert s["block_reduction_vs_fp32_pct"] == pytest.approx(100 * (1 - binarized / (32 * spatial)))
    assert s["block_reduction_vs_int8_pct"] == pytest.approx(100 * (1 - binarized / (8 * spatial)))
    # seed 002 Table 1: Add-Net / CNN memory = m/(q*32) + m/(kh*kw*32), here m = 4, q = 16
    assert s["table1_formula_reduction_pct"] == pytest.approx(100 * (1 - (4 / 512 + 4 / 288)))
    assert s["total_bits_ours"] == binarized + 8 * rest
    assert s["compression_vs_fp32"] == pytest.approx(32 * (spatial + rest) / (binarized + 8 * rest))
    assert s["compression_vs_int8"] == pytest.approx(8 * (spatial + rest) / (binarized + 8 * rest))


def test_size_rows_refuses_a_model_without_basic_blocks():
    with pytest.raises(ValueError, match=r"^model 'digits_addernet' has no Add-Net basic block"):
        dima_repro.size_rows(load_model(bundled_model_path("digits_addernet")))


def test_accuracy_rows_against_the_sweep_file_and_seed_table3():
    a = dima_repro.accuracy_rows("digits_addnet")
    sw = json.loads((MODELS_DIR / "digits_addnet_msweep.json").read_text())
    assert [r["m"] for r in a["rows"]] == [1, 2, 4, 8]
    base = sw["spatial_baseline"]["float_test_accuracy"]
    # seed 002 Table 3 (SVHN): spatial conv. 32-bit 94.29; Add-Net m = 1, 2, 4, 8
    seed = {1: 93.82, 2: 94.61, 4: 94.73, 8: 94.84}
    for r, f in zip(a["rows"], sw["multipliers"], strict=True):
        assert r["int8"] == pytest.approx(100 * f["int8_test_accuracy"])
        assert r["delta_int8_vs_baseline"] == pytest.approx(
            100 * (f["int8_test_accuracy"] - base))
        assert r["seed_delta_vs_baseline"] == pytest.approx(seed[r["m"]] - 94.29)


def test_sweep_parameter_counts_follow_the_architecture():
    """The sweep file's parameter counts == the Add-Net's (inception 1 -> 16, 2 blocks of a
    16 -> 16m depthwise 3x3 and a 16m -> 16 pointwise, each with BN's 2 per channel, MLP
    256 -> 64 (BN) -> 10 with bias) and the spatial baseline's (a 16 -> 16 3x3 conv per
    block)."""
    sw = json.loads((MODELS_DIR / "digits_addnet_msweep.json").read_text())
    outer = 16 * 9 + 2 * 16 + 256 * 64 + 2 * 64 + 64 * 10 + 10
    for r in sw["multipliers"]:
        m = r["m"]
        assert r["parameters"] == outer + 2 * (16 * m * 9 + 2 * 16 * m + 16 * m * 16 + 2 * 16)
    assert sw["spatial_baseline"]["parameters"] == outer + 2 * (16 * 16 * 9 + 2 * 16)


def test_energy_by_kind_adds_up_to_the_whole_run():
    """The per-kind energies sum to the energy of the whole run's counters (one estimate, not
    per stage), and the four Add-Net layer kinds and the image's host words each appear."""
    from sim.compile.compiler import compile_model, propose_config, run_compiled
    from sim.hw.core_model import CoreModel
    model = load_model(bundled_model_path("digits_addnet"))
    x, _ = datasets.load_dataset("digits", "test")
    config = preset("dima_sot")
    e = dima_repro.energy_by_kind(model, config, x[:1], subarrays=2)
    assert set(e["kinds"]) == {
        "inception (class B, bit-wise convolver)", "binarized depthwise (class A, FA/FS lanes)",
        "binarized pointwise (class A, FA/FS lanes)", "MLP (class B, bit-wise convolver)",
        dima_repro.HOST_KIND}
    cfg = propose_config(model, config, subarrays=2)
    compiled = compile_model(model, cfg, subarrays=2)
    res = run_compiled(compiled, x[0], CoreModel(cfg, subarrays=2,
                                                 buffer_slots=compiled.buffer_slots,
                                                 channels=compiled.channels,
                                                 out_depth=compiled.out_depth,
                                                 imem_depth=compiled.imem_depth))
    # class basis (docs/dataflows.rst, "Energy basis"): the 7:2 split of a mat of 2 gives each
    # class one subarray and every stage of this model is a class stage gated to it, so the
    # run's counters over one subarray's columns, plus the image's 8 x 8 = 64 data-memory words
    # (a MOVE each)
    gated = estimate(cfg, res.counters, columns_active=cfg.columns, host={"data_words": 64})
    assert e["kinds"][dima_repro.HOST_KIND]["energy_j"] == pytest.approx(
        estimate(cfg, {"cycles": 0}, host={"data_words": 64}).energy_j, rel=1e-12)
    assert sum(k["energy_j"] for k in e["kinds"].values()) == pytest.approx(gated.energy_j,
                                                                           rel=1e-9)
    assert e["energy_j"] == pytest.approx(gated.energy_j, rel=1e-9)
    assert e["cycles"] == res.counters["cycles"]
    assert sum(k["energy_pct"] for k in e["kinds"].values()) == pytest.approx(100)
    assert e["frames_per_joule"] == pytest.approx(1 / gated.energy_j, rel=1e-9)
    # by class: the stages of each route over its one subarray; the core without the gate (a
    # comparison): over the whole mat's 2 x columns
    for cls, routes in (("A", {"dima_binconv"}), ("B", {"dima_bitwise"})):
        ops = {k: sum(r.micro_ops[k] for st, r in zip(compiled.stages, res.stages, strict=True)
                      if st.route in routes) for k in res.counters}
        own = estimate(cfg, ops, columns_active=cfg.columns)
        mat = estimate(cfg, ops, columns_active=2 * cfg.columns)
        assert e["classes"][cls]["energy_j"] == pytest.approx(own.energy_j, rel=1e-9), cls
        assert e["classes"][cls]["ungated_energy_j"] == pytest.approx(mat.energy_j, rel=1e-9)
        assert e["classes"][cls]["subarrays"] == 1
    assert e["ungated_energy_j"] > e["energy_j"]
    assert e["load"]["row_writes"] == 0     # 221 of 256 rows taken by the pointwise lanes


def test_stage_energy_charges_only_the_class_subarrays():
    """On a mat of 4 split 7:2 (3 class-A subarrays, the last; 1 class-B, the first): every
    program of a stage starts with its class's MOVE SUBSEL, and the energy basis
    (stage_energy) is its estimate over its class's columns (3 x 512 or 1 x 512); the ungated
    comparison the whole mat's 4 x 512."""
    from rtl.isa import MoveOp, Opcode, decode
    from sim.compile.compiler import compile_model, propose_config
    from sim.compile.dima_map import stage_energy, ungated_energy
    model = load_model(bundled_model_path("digits_addnet"))
    cfg = propose_config(model, preset("dima_sot"), subarrays=4)
    compiled = compile_model(model, cfg, subarrays=4)
    seen = set()
    for st in compiled.stages:
        k, first = (3, 1) if st.route == "dima_binconv" else (1, 0)
        seen.add(k)
        for ch in st.chunks:
            ins = decode(ch.program[0], base_bits=cfg.isa_base_bits)
            assert (ins.op, ins.imm, ins.a.base, ins.b.base) == (
                Opcode.MOVE, MoveOp.SUBSEL.value, first, k), st.name
        got = stage_energy(cfg, st, st.micro_ops, compiled.width).energy_j
        assert got == pytest.approx(
            estimate(cfg, st.micro_ops, columns_active=k * cfg.columns).energy_j, rel=1e-12)
        mat = estimate(cfg, st.micro_ops, columns_active=4 * cfg.columns).energy_j
        assert ungated_energy(cfg, st, st.micro_ops, compiled.width).energy_j == \
            pytest.approx(mat, rel=1e-12)
        assert got < mat
    assert seen == {1, 3}


def test_count_report_and_table_give_one_energy(tmp_path):
    """One energy basis (each class stage over its class's subarrays, docs/dataflows.rst):
    digits_addnet on dima_sot at a mat of 2 costs the same per image in the counting mode
    (``--propose``), the report (``--propose``, model backend) and the seed-002 table, and that
    figure is the independent estimate of the cycle model's counters over 1 x columns (each
    class has one subarray, every stage is a class stage) plus the image's 64 words."""
    from sim.analysis import counting, report
    from sim.compile.compiler import compile_model, propose_config, run_compiled
    from sim.hw.core_model import CoreModel
    model = load_model(bundled_model_path("digits_addnet"))
    x, _ = datasets.load_dataset("digits", "test")
    cfg = propose_config(model, preset("dima_sot"), subarrays=2)
    compiled = compile_model(model, cfg, subarrays=2)
    res = run_compiled(compiled, x[0], CoreModel(cfg, subarrays=2))
    want = estimate(cfg, res.counters, columns_active=cfg.columns,    # one class subarray
                    host={"data_words": 64}).energy_j                 # each (7:2 on 2)
    counted = counting.count_model(compiled, model).estimate["energy_j"]
    table = dima_repro.energy_by_kind(model, preset("dima_sot"), x[:1], subarrays=2)
    out = tmp_path / "out"
    assert report.main(["--backend", "model", "--model", "digits_addnet", "-n", "1",
                        "--preset", "dima_sot", "--mat", "2", "--propose", "--out", str(out),
                        "--synth-dir", str(tmp_path), "--quiet"]) == 0
    rep = json.loads((out / "report-dima_sot.json").read_text())
    assert rep["model"] == "digits_addnet" and rep["logits_equal_to_golden"] == [True]
    assert rep["config"]["buffer_slots"] == cfg.buffer_slots
    for name, got in (("count", counted), ("report", rep["per_image"]["energy_j"]),
                      ("dima_repro", table["energy_j"]),
                      ("report's dima table", rep["dima_table"]["energy"]["energy_j"])):
        assert got == pytest.approx(want, rel=1e-9), (name, got, want)
    assert rep["dima_table"]["model"] == "digits_addnet"
    # the report's read / write / logic / bus split sums to the same energy
    assert sum(rep["per_image"]["energy_split_j"].values()) == pytest.approx(want, rel=1e-9)


def test_report_without_propose_refuses_an_addnet_in_one_line(tmp_path, capsys):
    from sim.analysis import report
    assert report.main(["--backend", "model", "--model", "digits_addnet", "-n", "1",
                        "--preset", "dima_sot", "--out", str(tmp_path / "out"),
                        "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: --preset dima_sot --mat 1: model "
                                               "'digits_addnet' does not compile for it: ")
    assert err.endswith("(--propose raises the sizes the model needs)")


def test_markdown_names_every_seed_ratio_as_not_modelled():
    t = {"model": "digits_addnet", "dataset": "digits",
         "cycles_per_addsub": [{"n": 8, "ours": 16, "seed": 16}],
         "size": dima_repro.size_rows(load_model(bundled_model_path("digits_addnet"))),
         "accuracy": dima_repro.accuracy_rows("digits_addnet"),
         "energy": {"images": 1, "subarrays": 1, "technology": "sot", "energy_j": 1e-6,
                    "cycles": 10, "frames_per_joule": 1e6,
                    "kinds": {"x": {"energy_j": 1e-6, "energy_pct": 100.0, "cycles": 10}}}}
    md = "\n".join(dima_repro.markdown_lines(t))
    for name, v, where in dima_repro.SEED["ratios"]:
        assert f"| {name} | not modelled" in md and f"| {v:g}x | {where} |" in md
    assert "| cycles per 8-bit add/sub (FA/FS lanes, cycle model) | 16 | 2n = 16 |" in md
    assert "| 4 |" in md and "94.73 %" in md


def test_report_has_the_table_for_dima_sot(tmp_path):
    from sim.analysis import report
    out = tmp_path / "out"
    assert report.main(["--backend", "model", "--model", "digits_addernet", "-n", "1",
                        "--preset", "dima_sot", "--mat", "1", "--out", str(out),
                        "--synth-dir", str(tmp_path), "--quiet"]) == 0
    md = (out / "report.md").read_text()
    assert "Seed 002 reproduction table (`sim.analysis.dima_repro`): `digits_addnet`" in md
    rep = json.loads((out / "report-dima_sot.json").read_text())
    assert [r["ours"] for r in rep["dima_table"]["cycles_per_addsub"]] == [
        2 * r["n"] for r in rep["dima_table"]["cycles_per_addsub"]]


def test_cli_refuses_an_unknown_model(capsys):
    assert dima_repro.main(["--model", "nope"]) == 2
    assert capsys.readouterr().err.startswith(
        "python -m sim.analysis.dima_repro: error: --model must be one of ")


@pytest.mark.parametrize("args,message", [
    (["--model", "digits_addnet", "--sweep-m", "--multiplier", "2"],
     "python -m sim.flows.train: error: --sweep-m trains every m of the sweep; "
     "leave out --multiplier"),
    (["--model", "digits_addernet", "--sweep-m"],
     "python -m sim.flows.train: error: --sweep-m applies to one Add-Net model (digits_addnet, "
     "fashion_addnet), not --model digits_addernet"),
])
def test_sweep_m_refuses_bad_input_in_one_line(tmp_path, args, message):
    import subprocess
    import sys
    pytest.importorskip("torch")
    r = subprocess.run([sys.executable, "-m", "sim.flows.train", *args, "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and r.stderr.strip() == message
    assert list(tmp_path.iterdir()) == []
