"""sim.hw.sources: the source class of every constant, read off its source text."""

import pytest

from sim.hw import activity, energy, sources, sram
from sim.analysis import synth
from sim.hw.device import TECHNOLOGIES


@pytest.mark.parametrize("text, cls", [
    ("seed 001 sec. 5.1: 4.0 fJ for a read operation", "seed"),
    ("seed 001 ref. [Rho et al., ISSCC 2017] '4Gb LPDDR2 STT-MRAM'", "literature"),
    ("literature ref. [NanGate FreePDK45 Open Cell Library, 45 nm]", "literature"),
    ("calibrated: least squares through three points", "calibrated"),
    ("derived: = read_fj", "derived"),
    ("ASSUMPTION: no seed gives it", "assumption"),
])
def test_source_class(text, cls):
    assert sources.source_class(text) == cls


@pytest.mark.parametrize("text", ["", "  ", "from a datasheet", None, 3])
def test_source_without_class_is_an_error(text):
    with pytest.raises(ValueError, match="source"):
        sources.source_class(text)


@pytest.mark.parametrize("tech", TECHNOLOGIES)
def test_every_constant_has_a_class(tech):
    rows = sources.source_rows(tech)
    want = (len(energy.ARRAY[tech]) + len(energy.PERIPHERY) + len(sram.PARAMS) + 2
            + len(synth.CELL_AREA_UM2) + len(activity.PARAMS) + len(sram.BUFFER_PARAMS)
            + len(sram.OPENRAM_FREEPDK45_LEAKAGE))
    from sim.hw.device import PARAMETERS
    assert len(rows) == want + len(PARAMETERS[tech])
    assert {r["class"] for r in rows} <= set(sources.SOURCE_CLASSES)
    counts = sources.class_counts(rows)
    assert sum(counts.values()) == len(rows)
    # The seed-001 read and the NanGate cell areas are what they say they are.
    by = {(r["table"], r["name"]): r for r in rows}
    assert by[("sim.analysis.synth.CELL_AREA_UM2", "$_NAND_")]["class"] == "literature"
    assert by[("sim.hw.energy.PERIPHERY", "gate_toggle_fj")]["class"] == "assumption"
    assert by[("sim.hw.activity.PARAMS", "switch_fj_per_um2")]["class"] == "calibrated"
    assert by[("sim.hw.sram fit", "a_pj")]["class"] == "calibrated"
    if tech == "nand_spin":
        assert by[(f"sim.hw.energy.ARRAY[{tech!r}]", "read_fj")]["class"] == "seed"
    else:
        assert by[(f"sim.hw.energy.ARRAY[{tech!r}]", "read_fj")]["class"] == "derived"
