"""The source class of every number the figures rest on: ``seed`` (a seed paper, with its
section), ``literature`` (a cited paper or cell library), ``calibrated`` (fitted to cited
figures), ``derived`` (computed from other entries by a stated formula) or ``assumption``.

The class is read off the source text every :class:`sim.hw.device.Param` carries, by the
conventions the tables follow (:func:`source_class`); a source that follows none of them is an
error, so a new constant cannot slip in without one. :func:`source_rows` lists every constant
of the tables one preset's figures use: ``sim.hw.energy.ARRAY`` (its technology) and
``PERIPHERY``, ``sim.hw.sram.PARAMS`` and its fits (the access energy's and the leakage's
points, ``sim.hw.sram.OPENRAM_FREEPDK45_LEAKAGE``), ``sim.hw.device.PARAMETERS`` (its technology),
``sim.analysis.synth.CELL_AREA_UM2``, ``sim.hw.activity.PARAMS`` (logic switching energy and
leakage) and
``sim.hw.sram.BUFFER_PARAMS`` (the weight buffer sized to the model).
"""

from __future__ import annotations

from collections import Counter

from sim.hw.device import Param

__all__ = ["SOURCE_CLASSES", "source_class", "source_rows", "class_counts"]

#: The classes, strongest first.
SOURCE_CLASSES = ("seed", "literature", "calibrated", "derived", "assumption")


def source_class(source: str) -> str:
    """The class of a source text (:data:`SOURCE_CLASSES`).

    ``"ASSUMPTION..."`` -> assumption; ``"derived..."`` -> derived; ``"calibrated..."`` ->
    calibrated; a text with a reference ``"ref. ["`` (also a paper a seed cites) or starting
    ``"literature"`` -> literature; ``"seed ..."`` -> seed.

    Raises
    ------
    ValueError
        The text follows none of these conventions (or is not a string).
    """
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"source must be a non-empty string, not {source!r}")
    s = source.strip()
    low = s.lower()
    if s.startswith("ASSUMPTION"):
        return "assumption"
    if low.startswith("derived"):
        return "derived"
    if low.startswith("calibrated"):
        return "calibrated"
    if "ref. [" in s or low.startswith("literature"):
        return "literature"
    if low.startswith("seed"):
        return "seed"
    raise ValueError(f"source {s[:60]!r} has no class: it must start with 'seed', "
                     "'literature', 'calibrated', 'derived' or 'ASSUMPTION'")


def _row(table: str, name: str, p: Param, affects: str) -> dict:
    return {"table": table, "name": name, "value": p.value, "unit": p.unit,
            "source": p.source, "class": source_class(p.source), "affects": affects}


def source_rows(technology: str) -> list[dict]:
    """Every constant behind a preset of ``technology``: ``{table, name, value, unit, source,
    class, affects}`` (``affects``: energy, time, area, device or sensitivity: a bound the
    report shows as a sensitivity row, not in its figures)."""
    from sim.hw import energy, sram
    from sim.analysis import synth
    from sim.hw.device import PARAMETERS
    area_keys = {"cell_f2", "feature_nm", "gate_area_um2", "flop_area_um2", "utilisation"}
    time_keys = {"read_ns", "write_ns", "erase_ns_per_mtj", "program_ns"}
    rows = []
    for name, p in energy.ARRAY[technology].items():
        what = "area" if name in area_keys else "time" if name in time_keys else "energy"
        rows.append(_row(f"sim.hw.energy.ARRAY[{technology!r}]", name, p, what))
    for name, p in energy.PERIPHERY.items():
        rows.append(_row("sim.hw.energy.PERIPHERY", name, p,
                         "area" if name in area_keys else "energy"))
    for name, p in sram.PARAMS.items():
        what = ("area" if name in ("cell_um2", "array_efficiency") else
                "sensitivity" if name == "leakage_pw_per_bit_upper" else "energy")
        rows.append(_row("sim.hw.sram.PARAMS", name, p, what))
    # The characterised macros the SRAM leakage per bit is fitted to (sim.hw.sram.leakage_fit).
    for words, bits, mw, src in sram.OPENRAM_FREEPDK45_LEAKAGE:
        rows.append(_row("sim.hw.sram.OPENRAM_FREEPDK45_LEAKAGE", f"{words} x {bits}",
                         Param(mw, "mW", src), "energy"))
    a, b = sram.fit()
    fit_src = ("calibrated: least squares in log-log through the points of "
               "sim.hw.sram.HOROWITZ_45NM (literature ref. [Horowitz, ISSCC 2014])")
    rows.append(_row("sim.hw.sram fit", "a_pj", Param(a, "pJ", fit_src), "energy"))
    rows.append(_row("sim.hw.sram fit", "b", Param(b, "", fit_src), "energy"))
    for name, p in PARAMETERS[technology].items():
        rows.append(_row(f"sim.hw.device.PARAMETERS[{technology!r}]", name, p, "device"))
    for name, p in synth.CELL_AREA_UM2.items():
        rows.append(_row("sim.analysis.synth.CELL_AREA_UM2", name, p, "area"))
    from sim.hw import activity
    for name, p in activity.PARAMS.items():
        rows.append(_row("sim.hw.activity.PARAMS", name, p, "energy"))
    for name, p in sram.BUFFER_PARAMS.items():
        rows.append(_row("sim.hw.sram.BUFFER_PARAMS", name, p, "area"))
    return rows


def class_counts(rows) -> dict:
    """Rows per class, every class of :data:`SOURCE_CLASSES` present (0 if none)."""
    c = Counter(r["class"] for r in rows)
    return {k: c.get(k, 0) for k in SOURCE_CLASSES}
