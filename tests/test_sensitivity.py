"""sim.analysis.sensitivity: each ASSUMPTION moved by 1/2 and 2 on a hand-made image, the changes
recomputed from the energy split and the clock."""

import math

import pytest

from rtl.config import preset
from sim.hw import energy, sram
from sim.analysis import sensitivity
from tests.test_report_stream import streamed  # noqa: F401  (the report of a streamed model)

CONFIG = preset("jeit_stt")
COUNTERS = {"cycles": 100, "stalls": 3, "write_row": 3, "read": 10, "requant": 2}
HOST = {"data_words": 5}
OPS = 1000


def _accesses():
    return {m.name: {"reads": 10, "writes": 2, "derived": "hand-made"}
            for m in sram.core_memories(CONFIG, 1)}


#: A made-up cycle-model rerun: the preset's table (write = 2 cycles) gives 1000 cycles, 5
#: stalls; each write cycle more or less adds or removes 10 cycles and 3 stalls.
RERUNS = []


def _rerun(table):
    RERUNS.append(table)
    w = 2 if table is None else table["write"]
    return {"cycles": 1000 + 10 * (w - 2), "stalls": 5 + 3 * (w - 2), "write_row": 3}


@pytest.fixture(scope="module")
def result():
    return sensitivity.sensitivity(CONFIG, subarrays=1, counters=COUNTERS, host=HOST,
                                   host_cycles=5, ops=OPS, accesses=_accesses(), rerun=_rerun)


def _sram_j(latency):
    mem = sram.memory_report(CONFIG, 1, _accesses(), latency)
    return mem["dynamic_j"] + mem["leakage_j"]


def test_baseline(result):
    clock = CONFIG.clock_mhz * 1e6
    latency = (100 + 5) / clock
    e = energy.estimate(CONFIG, COUNTERS, ops=OPS, columns_active=CONFIG.columns, host=HOST,
                        host_cycles=5).energy_j + _sram_j(latency)
    b = result["baseline"]
    assert b["latency_s"] == pytest.approx(latency, rel=1e-12)
    assert b["gops_per_w"] == pytest.approx(OPS / e / 1e9, rel=1e-12)


def test_stt_write_voltage_and_time(result):
    rows = {r["name"]: r for r in result["rows"]}
    split = energy.energy_split(CONFIG, COUNTERS, columns_active=CONFIG.columns, host=HOST)
    base = result["baseline"]
    e0 = OPS / base["gops_per_w"] / 1e9
    clock = CONFIG.clock_mhz * 1e6
    # E_write ~ V^2: x4 at 1.2 V, x1/4 at 0.3 V; the latency does not move.
    v = rows["stt.write_voltage_v"]
    assert v["value"] == 0.6
    assert v["high"]["gops_per_w"] == pytest.approx(
        OPS / (e0 + 3 * split["MRAM write"]) / 1e9, rel=1e-9)
    assert v["low"]["gops_per_w"] == pytest.approx(
        OPS / (e0 - 0.75 * split["MRAM write"]) / 1e9, rel=1e-9)
    assert v["high"]["latency_pct"] == 0
    # 20 ns: ceil(20 / 7.52) = 3 cycles per write, the rerun's +10 cycles; 5 ns: 1 cycle,
    # -10 cycles.
    t = rows["stt.write_ns"]
    assert t["high"]["latency_s"] == pytest.approx((100 + 10 + 5) / clock, rel=1e-12)
    assert t["low"]["latency_s"] == pytest.approx((100 - 10 + 5) / clock, rel=1e-12)
    assert t["high"]["stall_cycles"] == 6 and t["low"]["stall_cycles"] == 0
    assert {"read": 1, "write": 3, "erase": 1, "program": 1} in RERUNS
    lat = t["high"]["latency_s"]
    e_hi = e0 - _sram_j(base["latency_s"]) + split["MRAM write"] + _sram_j(lat)
    assert t["high"]["gops_per_w"] == pytest.approx(OPS / e_hi / 1e9, rel=1e-9)


def test_rows_are_the_energy_assumptions_sorted(result):
    names = [r["name"] for r in result["rows"]]
    assert "gate_toggle_fj" in names and "leakage_pw_per_bit" in names
    assert not set(names) & set(sensitivity.AREA_ONLY)
    headline = {name for _, name, _ in sensitivity.HEADLINE_CONSTANTS}
    assert all(r["source"].startswith("ASSUMPTION") or r["name"] in headline
               for r in result["rows"])
    # without the activity-based logic only the SRAM leakage of the headline constants moves
    assert "switch_fj_per_um2" not in names and "leak_nw_per_um2" not in names
    key = [max(abs(r[s][m]) for s in ("low", "high") for m in ("gops_per_w_pct",
                                                               "latency_pct"))
           for r in result["rows"]]
    assert key == sorted(key, reverse=True)
    for r in result["rows"]:
        assert r["low"]["value"] == pytest.approx(r["value"] / 2)
        assert r["high"]["value"] == pytest.approx(r["value"] * 2)
        assert math.isfinite(r["high"]["gops_per_w_pct"])
    # The tables are back as they were.
    assert energy.ARRAY["stt"]["write_voltage_v"].value == 0.6
    assert sram.PARAMS["leakage_pw_per_bit"].value == pytest.approx(
        sram.leakage_fit() * 1e3, rel=1e-12)


def test_activity_based_logic_and_its_constants():
    """With the logic energy from activity: the gate-count CMOS logic replaced by activity x
    cycles x area x switching energy per um^2, plus area x leakage per um^2 x latency; both
    constants moved by 1/2 and 2 move exactly those terms."""
    from sim.hw import activity
    logic = {"block_act": {"ctrl": {"bits": 10, "toggles": 50, "activity": 50 / (10 * 100)},
                           "array0": {"bits": 4, "toggles": 400, "activity": 1.0}},
             "flat_area_um2": 1000.0, "block_area_um2": None, "cycles": 100}
    res = sensitivity.sensitivity(CONFIG, subarrays=1, counters=COUNTERS, host=HOST,
                                  host_cycles=5, ops=OPS, accesses=_accesses(),
                                  rerun=_rerun, logic=logic)
    clock = CONFIG.clock_mhz * 1e6
    latency = (100 + 5) / clock
    fj = 0.1e3 / (0.5 * activity.PARAMS["add32_area_um2"].value)     # Horowitz add at p 1/2
    leak = 14.353185 / 0.532                                            # nW per um^2
    sw = 0.05 * 100 * 1000.0 * fj * 1e-15       # the array model's toggles are left out
    lk = 1000.0 * leak * 1e-9 * latency
    split = energy.energy_split(CONFIG, COUNTERS, columns_active=CONFIG.columns, host=HOST)
    e = (energy.estimate(CONFIG, COUNTERS, ops=OPS, columns_active=CONFIG.columns, host=HOST,
                         host_cycles=5).energy_j - split["CMOS logic"] + sw + lk
         + _sram_j(latency))
    assert res["baseline"]["gops_per_w"] == pytest.approx(OPS / e / 1e9, rel=1e-12)
    rows = {r["name"]: r for r in res["rows"]}
    assert rows["switch_fj_per_um2"]["high"]["gops_per_w"] == pytest.approx(
        OPS / (e + sw) / 1e9, rel=1e-9)
    assert rows["leak_nw_per_um2"]["low"]["gops_per_w"] == pytest.approx(
        OPS / (e - lk / 2) / 1e9, rel=1e-9)
    bits = sum(m.words * m.bits * max(1, m.read_ports) for m in sram.core_memories(CONFIG, 1)
               if m.kind == "sram")
    sram_leak = bits * sram.PARAMS["leakage_pw_per_bit"].value * 1e-12 * latency
    assert rows["leakage_pw_per_bit"]["high"]["gops_per_w"] == pytest.approx(
        OPS / (e + sram_leak) / 1e9, rel=1e-9)
    assert activity.PARAMS["switch_fj_per_um2"].value == pytest.approx(fj, rel=1e-12)


def test_bad_factor():
    with pytest.raises(ValueError, match="factor must be > 1"):
        sensitivity.sensitivity(CONFIG, subarrays=1, counters=COUNTERS, host=HOST,
                                host_cycles=5, ops=OPS, accesses=_accesses(), factor=1)


def test_moved_stall_table_needs_a_rerun():
    with pytest.raises(ValueError, match="stall table would move"):
        sensitivity.sensitivity(CONFIG, subarrays=1, counters=COUNTERS, host=HOST,
                                host_cycles=5, ops=OPS, accesses=_accesses())


def test_sram_access_energy_scale(result):
    """A factor on every SRAM access: the dynamic SRAM energy doubles or halves, leakage and
    latency stay."""
    row = next(r for r in result["rows"] if r["name"] == "access energy scale")
    base = result["baseline"]
    e0 = OPS / base["gops_per_w"] / 1e9
    dyn = sram.memory_report(CONFIG, 1, _accesses(), base["latency_s"])["dynamic_j"]
    assert dyn > 0
    assert row["high"]["gops_per_w"] == pytest.approx(OPS / (e0 + dyn) / 1e9, rel=1e-9)
    assert row["low"]["gops_per_w"] == pytest.approx(OPS / (e0 - dyn / 2) / 1e9, rel=1e-9)
    assert row["high"]["latency_pct"] == 0
    assert sram.read_energy_pj(1024, 64) == pytest.approx(
        sram.fit()[0] * (1024 * 64 / 8) ** sram.fit()[1], rel=1e-12)


# ---- a streamed model: the weight-streaming energy in every figure ---------------------------

#: A hand-made stream: 40 buffer words of 128 bits and 3 requant entries of 48 bits per image,
#: over a wire of 2.5 mm (the cost rule of sim.compile.weight_stream's docstring).
SLOTS, ENTRIES, WIDTH, ENTRY_BITS, WIRE_MM = 40, 3, 128, 48, 2.5


def _stream_parts():
    """(SRAM writes, wire) J of the hand-made stream under the current tables."""
    from sim.hw.chip import PARAMS
    mems = {m.name: m for m in sram.core_memories(CONFIG, 1)}
    buf, tbl = mems["weight buffer"], mems["requant table"]
    sram_j = (SLOTS * sram.write_energy_pj(buf.words, buf.bits)
              + ENTRIES * sram.write_energy_pj(tbl.words, tbl.bits)) * 1e-12
    wire_j = (SLOTS * WIDTH + ENTRIES * ENTRY_BITS) * PARAMS["wire_fj_per_bit_mm"].value \
        * WIRE_MM * 1e-15
    return sram_j, wire_j


def test_streamed_weights_energy_moves_with_its_constants(result):
    """The streamed weights' energy is in the baseline and in every row; the wire energy per
    bit and mm (an ASSUMPTION) is moved and moves exactly the wire part; the SRAM access
    factor moves the stream's SRAM writes with the other accesses."""
    sram_j, wire_j = _stream_parts()
    # Independently: 100 fJ per bit and mm (sim.hw.chip's ASSUMPTION) over 5,264 bits x 2.5 mm.
    assert wire_j == pytest.approx((40 * 128 + 3 * 48) * 100e-15 * 2.5, rel=1e-12)
    res = sensitivity.sensitivity(CONFIG, subarrays=1, counters=COUNTERS, host=HOST,
                                  host_cycles=5, ops=OPS, accesses=_accesses(), rerun=_rerun,
                                  stream=lambda: sum(_stream_parts()))
    e_plain = OPS / result["baseline"]["gops_per_w"] / 1e9     # the same image, no stream
    base = res["baseline"]
    assert base["weight_stream_j"] == pytest.approx(sram_j + wire_j, rel=1e-12)
    assert base["gops_per_w"] == pytest.approx(OPS / (e_plain + sram_j + wire_j) / 1e9,
                                               rel=1e-12)
    assert base["latency_s"] == result["baseline"]["latency_s"]
    rows = {r["name"]: r for r in res["rows"]}
    wire = rows["wire_fj_per_bit_mm"]
    assert wire["table"] == "sim.hw.chip.PARAMS" and wire["value"] == 100.0
    e0 = e_plain + sram_j + wire_j
    assert wire["high"]["gops_per_w"] == pytest.approx(OPS / (e0 + wire_j) / 1e9, rel=1e-9)
    assert wire["low"]["gops_per_w"] == pytest.approx(OPS / (e0 - wire_j / 2) / 1e9, rel=1e-9)
    assert wire["high"]["latency_pct"] == 0
    dyn = sram.memory_report(CONFIG, 1, _accesses(), base["latency_s"])["dynamic_j"]
    scale = rows["access energy scale"]
    assert scale["high"]["gops_per_w"] == pytest.approx(OPS / (e0 + dyn + sram_j) / 1e9,
                                                        rel=1e-9)
    # a row that does not touch the stream still carries it
    v = rows["stt.write_voltage_v"]
    assert v["high"]["weight_stream_j"] == pytest.approx(sram_j + wire_j, rel=1e-12)
    # without a stream the wire constant is not moved
    assert "wire_fj_per_bit_mm" not in {r["name"] for r in result["rows"]}
    from sim.hw.chip import PARAMS
    assert PARAMS["wire_fj_per_bit_mm"].value == 100.0


def test_report_sensitivity_counts_the_streamed_weights(streamed):  # noqa: F811
    """The report of a streamed model (tests/test_report_stream.py): its sensitivity baseline is
    the headline (gate-count basis: micro-ops + streamed weights + SRAM), and doubling the
    wire energy adds the stream's wire energy the report states."""
    _, rep, md, _ = streamed
    ws, base = rep["weight_stream"], rep["sensitivity"]["baseline"]
    assert ws["energy_j"] > 0
    assert base["weight_stream_j"] == pytest.approx(ws["energy_j"], rel=1e-12)
    assert base["energy_j"] == pytest.approx(rep["headline"]["energy_j"], rel=1e-9)
    wire = next(r for r in rep["sensitivity"]["rows"] if r["name"] == "wire_fj_per_bit_mm")
    assert wire["high"]["energy_j"] == pytest.approx(base["energy_j"] + ws["wire_j"], rel=1e-9)
    assert "count its bus cycles and this energy" in md
