"""The report names files relative to the project (no absolute path of the machine it ran on),
and its headline carries the SRAM leakage's upper bound as a sensitivity row."""

import pytest

from sim.analysis import report
from sim.hw import sram

VCD = """$timescale 1ns $end
$scope module top $end
$scope module dut $end
$var wire 1 ! clk $end
$var wire 2 " x [1:0] $end
$upscope $end
$upscope $end
$enddefinitions $end
#0
1!
b00 "
#1
0!
b01 "
#2
1!
#3
0!
b10 "
#4
1!
"""


def _headline(activity):
    per_image = {"ops": 1000, "energy_j": 2e-9}
    memories = {"dynamic_j": 1e-9, "leakage_j": 3e-9}
    split = {"total_j": 7e-9}
    return report._headline(per_image, memories, split, {"energy_j": 1e-9}, activity,
                            {"area_um2": 1.0}), memories


def test_toggle_file_named_relative_to_the_project(tmp_path, monkeypatch):
    monkeypatch.setattr(report, "REPO", tmp_path)
    trace = tmp_path / "build" / "activity" / "nand_spin-mat4-verilator.vcd"
    trace.parent.mkdir(parents=True)
    trace.write_text(VCD)
    act = report._read_activity(trace)
    assert act["file"] == "build/activity/nand_spin-mat4-verilator.vcd"
    assert act["simulated_cycles"] == 2     # 4 clock toggles after the first value
    h, _ = _headline(act)
    assert "toggles of this run's RTL simulation (build/activity/nand_spin-mat4-verilator.vcd)" \
        in h["basis"]
    assert str(tmp_path) not in h["basis"]
    # A file outside the project keeps its path as given.
    outside = tmp_path.parent / f"{tmp_path.name}-elsewhere.vcd"
    outside.write_text(VCD)
    try:
        assert report._read_activity(outside)["file"] == str(outside)
    finally:
        outside.unlink()


def test_headline_has_the_sram_leakage_upper_bound_row():
    h, memories = _headline({"file": "build/activity/x.saif", "blocks": {}})
    assert h["energy_j"] == pytest.approx(7e-9)
    row = next(r for r in h["rows"] if r["name"] == "sensitivity: SRAM leakage at its upper "
                                                     "bound")
    ratio = (sram.PARAMS["leakage_pw_per_bit_upper"].value
             / sram.PARAMS["leakage_pw_per_bit"].value)
    assert ratio == pytest.approx(14.353185 / ((0.415 + 0.630) / 2) * 0.430 / 4.41410538,
                                  rel=1e-6)
    assert row["energy_j"] == pytest.approx(7e-9 + 3e-9 * (ratio - 1), rel=1e-12)
    assert row["gops_per_w"] == pytest.approx(1000 / row["energy_j"] / 1e9, rel=1e-12)
    # The headline stays the central figure.
    assert memories["energy_with_memories_j"] == pytest.approx(7e-9)
