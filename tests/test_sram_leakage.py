"""The SRAM leakage per bit: a least-squares fit to OpenRAM's characterised FreePDK45 macros,
the earlier per-width figure kept as the upper bound (the report's sensitivity row)."""

import pytest

from sim.hw import sources, sram

# Transcribed from the Liberty files (VLSIDA/OpenRAM, lib/freepdk45/lib/
# sram_1rw_<bits>b_<words>w_1bank_freepdk45_TT_1p0V_25C.lib, leakage_power when CSb, mW):
# (words, bits, mW).
LIBERTY = [(256, 8, 0.011168618), (256, 32, 0.040298101), (512, 32, 0.077704284),
           (1024, 32, 0.15279765), (1024, 64, 0.30184115), (2048, 32, 0.306155),
           (1024, 128, 0.56084648)]


def test_points_are_the_liberty_files():
    assert [(w, b, mw) for w, b, mw, _ in sram.OPENRAM_FREEPDK45_LEAKAGE] == LIBERTY
    for w, b, _, src in sram.OPENRAM_FREEPDK45_LEAKAGE:
        assert f"sram_1rw_{b}b_{w}w_1bank_freepdk45_TT_1p0V_25C.lib" in src
        assert sources.source_class(src) == "literature"


def test_fit_through_the_origin():
    # sum(bits x W) / sum(bits^2), W in nW: 4.41 nW per bit, between the macros' own ratios.
    num = sum(w * b * mw * 1e6 for w, b, mw in LIBERTY)
    den = sum((w * b) ** 2 for w, b, _ in LIBERTY)
    assert sram.leakage_fit() == pytest.approx(num / den, rel=1e-12)
    assert sram.leakage_fit() == pytest.approx(4.414, abs=1e-3)
    ratios = [mw * 1e6 / (w * b) for w, b, mw in LIBERTY]
    assert min(ratios) < sram.leakage_fit() < max(ratios)
    assert sram.PARAMS["leakage_pw_per_bit"].value == pytest.approx(num / den * 1e3, rel=1e-12)
    # 1 Mbit leaks 4.63 mW; two read ports (a replicated array) twice that.
    assert sram.leakage_w(2 ** 14, 64) == pytest.approx(2 ** 20 * num / den * 1e-9, rel=1e-12)
    assert sram.leakage_w(2 ** 14, 64, read_ports=2) == pytest.approx(
        2 ** 21 * num / den * 1e-9, rel=1e-12)


def test_upper_bound_kept_with_its_source():
    # NanGate FreePDK45 INV_X1: 14.353185 nW over the mean of its OFF widths (0.415 and
    # 0.63 um), x the FreePDK45 bitcell's three standby OFF devices (205 + 90 + 135 nm).
    upper = sram.PARAMS["leakage_pw_per_bit_upper"]
    assert upper.value == pytest.approx(14.353185e3 / ((0.415 + 0.630) / 2) * 0.430,
                                        rel=1e-12)
    assert upper.value > 2 * sram.PARAMS["leakage_pw_per_bit"].value
    assert sources.source_class(upper.source) == "derived"
    assert sources.source_class(sram.PARAMS["leakage_pw_per_bit"].source) == "calibrated"
    rows = {(r["table"], r["name"]): r for r in sources.source_rows("nand_spin")}
    assert rows[("sim.hw.sram.PARAMS", "leakage_pw_per_bit_upper")]["affects"] == "sensitivity"
    assert rows[("sim.hw.sram.OPENRAM_FREEPDK45_LEAKAGE", "1024 x 128")]["value"] == 0.56084648
