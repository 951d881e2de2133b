"""sim.analysis.jeit: the seed-000 peak of a jeit_stt mat on the cycle model, against the compiler's
static cycle count and sim.hw.energy on the counters; the write-energy sweep."""

import math

import pytest

from rtl.config import preset
from sim.hw import energy
from sim.analysis import jeit
from sim.compile.compiler import compile_model

CONFIG = preset("jeit_stt")                         # dataflow jeit_fa, the FA array
#: The preset with adder layers on the abs-diff write-back route (same core).
ABS = CONFIG.with_dataflow("abs_diff")


@pytest.fixture(scope="module", params=[(CONFIG, 1), (CONFIG, 4), (ABS, 1)],
                ids=["jeit_fa-1", "jeit_fa-4", "abs_diff-1"])
def peak(request):
    config, k = request.param
    return k, jeit.peak(config, k), config


def test_dense_peak_every_lane_busy(peak):
    k, pk, config = peak
    d = pk["dense"]
    width = k * CONFIG.columns
    g = jeit.GROUPS
    assert pk["width"] == width and d["lane_utilisation"] == 1.0 and d["patches"] == g * k
    assert pk["ops"] == 2 * 4 * g * k * CONFIG.columns
    # The cycles of the dense run are the compiler's static compute cycles (no tile skipped).
    import numpy as np
    model = jeit._layer_model(config, k, 4, np.random.default_rng(0))
    st = compile_model(model, config, subarrays=k).stages[0]
    assert d["cycles"] == st.cycles - st.gather_cycles
    clock = CONFIG.clock_mhz * 1e6
    assert d["gops"] == pytest.approx(pk["ops"] / (d["cycles"] / clock) / 1e9, rel=1e-12)
    e = energy.estimate(config, d["counters"], columns_active=width).energy_j
    assert d["gops_per_w"] == pytest.approx(pk["ops"] / e / 1e9, rel=1e-12)
    # abs_diff writes n difference rows per dot; the FA array none (its sums are registers)
    assert d["counters"]["fs_step"] > 0
    assert (d["counters"]["write_row"] > 0) == (config.dataflow == "abs_diff")


def test_zero_input_skips_every_tile_dot(peak):
    k, pk, config = peak
    z, d = pk["zero"], pk["dense"]
    # abs_diff skips the whole dot; jeit_fa's pipelined loops only the DIFF pass (the SIGN
    # pass of each of the 4 channels x GROUPS dots runs before its SKIPZ)
    sign = config.operand_bits * 4 * jeit.GROUPS if config.dataflow == "jeit_fa" else 0
    assert z["counters"]["fs_step"] == sign and z["counters"]["write_row"] == 0
    assert z["cycles"] < d["cycles"] and z["energy_j"] < d["energy_j"]
    mixed = jeit._mixed(pk, 0.25, CONFIG.clock_mhz * 1e6)
    assert mixed["cycles"] == pytest.approx(0.75 * d["cycles"] + 0.25 * z["cycles"])
    assert mixed["energy_j"] == pytest.approx(0.75 * d["energy_j"] + 0.25 * z["energy_j"])


def test_write_sweep():
    counters = {"cycles": 1000, "write_row": 10, "fs_step": 20}
    rows = jeit.write_sweep(CONFIG, 1, measured_counters=counters, measured_host={},
                            measured_host_cycles=0, measured_ops=5000, sram_j=1e-9,
                            factors=(0.5, 1.0, 2.0))
    w0 = energy.ARRAY["stt"]["write_bit_fj"].value
    assert [r["write_bit_fj"] for r in rows] == pytest.approx([0.5 * w0, w0, 2 * w0])
    base = jeit.peak(CONFIG, 1)["dense"]["gops_per_w"]
    assert rows[1]["peak_gops_per_w"] == pytest.approx(base, rel=1e-12)
    e = energy.estimate(CONFIG, counters, columns_active=CONFIG.columns).energy_j + 1e-9
    assert rows[1]["measured_gops_per_w"] == pytest.approx(5000 / e / 1e9, rel=1e-12)
    # more write energy, fewer GOPS/W measured (its counters write rows); the FA array's peak
    # writes nothing (flat), abs_diff's writes every dot; the table is back afterwards
    m = [r["measured_gops_per_w"] for r in rows]
    assert m[0] > m[1] > m[2]
    assert rows[0]["peak_gops_per_w"] == pytest.approx(rows[2]["peak_gops_per_w"], rel=1e-12)
    ab = jeit.write_sweep(ABS, 1, measured_counters=counters, measured_host={},
                          measured_host_cycles=0, measured_ops=5000, sram_j=1e-9,
                          factors=(0.5, 1.0, 2.0))
    assert ab[0]["peak_gops_per_w"] > ab[1]["peak_gops_per_w"] > ab[2]["peak_gops_per_w"]
    assert energy.ARRAY["stt"]["write_bit_fj"].value == w0
    assert math.isclose(energy.ARRAY["stt"]["write_voltage_v"].value, 0.6)


def test_table_refuses_another_technology():
    with pytest.raises(ValueError, match="config must be an stt preset"):
        jeit.table(preset("nand_spin"), None, {})


def _variation_json(cv=jeit.SEED_CV, dataflow="jeit_fa", model="fashion_addernet") -> dict:
    """A JSON as ``sim.analysis.variation`` writes it (the fields the table reads), numbers made up
    for the reader only: the table must show them as they are."""
    return {"model": model, "dataset": "fashion_mnist", "images": 200, "technology": "stt",
            "trials": 20000, "seeds": [0], "command": jeit.VARIATION_COMMAND,
            "points": [{"cv": 0.0, "ber": 0.0, "accuracy_mean": 0.89},
                       {"cv": cv, "ber": 1e-6, "accuracy_mean": 0.885}],
            "spot_check": {"backend": "rtl", "simulator": "verilator", "subarrays": 1,
                           "dataflow": dataflow, "cv": cv, "ber": 1e-6, "images": 3,
                           "accuracy": 2 / 3, "golden_accuracy": 1.0}}


def test_variation_row_reads_a_fresh_run_and_refuses_others(tmp_path):
    import json
    import os
    src = tmp_path / "sim" / "hw" / "device.py"
    src.parent.mkdir(parents=True)
    src.write_text("# a source the JSON depends on\n")
    out = tmp_path / jeit.VARIATION_JSON
    # missing: refused, naming the command that writes it
    r = jeit.variation_row("fashion_addernet", "jeit_fa", repo=tmp_path)
    assert not r["ok"] and "missing" in r["why"] and jeit.VARIATION_COMMAND in r["why"]
    out.parent.mkdir(parents=True)
    out.write_text(json.dumps(_variation_json()))
    os.utime(src, (1, 1))                               # the source older than the JSON
    r = jeit.variation_row("fashion_addernet", "jeit_fa", repo=tmp_path)
    assert r["ok"], r
    assert [row["ours"] for row in r["rows"]] == pytest.approx([89.0, 88.5, 100 * 2 / 3])
    assert jeit.VARIATION_COMMAND in r["rows"][0]["figure"]
    # a source newer than the JSON: stale
    t = out.stat().st_mtime
    os.utime(src, (t + 10, t + 10))
    r = jeit.variation_row("fashion_addernet", "jeit_fa", repo=tmp_path)
    assert not r["ok"] and "stale" in r["why"] and "sim/hw/device.py" in r["why"]
    os.utime(src, (1, 1))
    # another run: another CV, route or model
    for kw, what in ((dict(cv=0.05), "CV"), (dict(dataflow="abs_diff"), "dataflow"),
                     (dict(model="digits_addernet"), "model")):
        out.write_text(json.dumps(_variation_json(**kw)))
        r = jeit.variation_row("fashion_addernet", "jeit_fa", repo=tmp_path)
        assert not r["ok"] and what in r["why"], (kw, r)
