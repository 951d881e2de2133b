"""How each ASSUMPTION moves GOPS/W and latency: every assumed constant of the energy, device
timing and SRAM models scaled by 1/f and f (f = 2 by default), the figures of one image
recomputed from its measured counters, one constant at a time.

The figures (:func:`figures`): energy = ``sim.hw.energy.estimate`` (the micro-ops' dynamic energy)
+ the SRAMs' dynamic energy and leakage over the image's latency (``sim.hw.sram.memory_report``),
GOPS/W = ops / energy, latency = (controller + host port) cycles / clock. A device time moves
the stall cycles when ceil(time / clock period) (``sim.hw.energy.device_cycles`` under the moved
time) differs from the preset's stall table: the stalls are not a simple product of micro-ops
and cycles (control instructions executed meanwhile hide part of a hold, ``rtl.core.Core``),
so the caller's ``rerun(stall_table)`` runs the program again on the cycle model with that
table and returns its counters; the change of every counter is added to the image's. The
SRAM accesses are the measured ones.

The constants moved: the assumed leaves of ``sim.hw.energy.ARRAY`` for the technology
(``sim.hw.energy.ARRAY_LEAVES``: everything derived from them follows), every ``PERIPHERY`` entry
whose source is an ASSUMPTION and that enters the energy (the area-only ones, gate and flop
area and placement density, move no figure here), and the numeric ASSUMPTIONs of
``sim.hw.sram.PARAMS`` that enter the energy (leakage per bit, write vs read), and a factor on
every SRAM access's energy (the ASSUMPTION that a w-bit access costs w/64 of the fitted 64-bit
figure, and the fit's extrapolation below 8 KB). Seed, literature
and calibrated constants are not moved; the device resistances (``sim.hw.device``) are not either
(a resistance enters the cell terms only through ``V^2 / R``, as the read and write voltages
do, which are moved).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

from sim.hw import energy, sram
from sim.hw.sources import source_class

__all__ = ["AREA_ONLY", "assumptions", "figures", "sensitivity"]

#: PERIPHERY / sram.PARAMS entries that only enter the area.
AREA_ONLY = ("gate_area_um2", "flop_area_um2", "utilisation", "array_efficiency", "cell_um2")


def assumptions(technology: str) -> list[dict]:
    """The moved constants: ``{key, table, name, value, unit, source}``; ``key`` is what
    the private ``_moved`` takes."""
    out = []
    for tech, name in energy.ARRAY_LEAVES:
        t = energy.ARRAY[technology if tech == "common" else tech]
        if tech not in ("common", technology):
            continue
        p = t[name]
        if source_class(p.source) == "assumption":
            out.append({"key": ("array", (tech, name)), "table": "sim.hw.energy.ARRAY",
                        "name": f"{technology}.{name}", "value": p.value, "unit": p.unit,
                        "source": p.source})
    for name, p in energy.PERIPHERY.items():
        if name in AREA_ONLY or source_class(p.source) != "assumption":
            continue
        out.append({"key": ("periphery", name), "table": "sim.hw.energy.PERIPHERY", "name": name,
                    "value": p.value, "unit": p.unit, "source": p.source})
    for name, p in sram.PARAMS.items():
        if name in AREA_ONLY or source_class(p.source) != "assumption" \
                or isinstance(p.value, str):
            continue
        out.append({"key": ("sram", name), "table": "sim.hw.sram.PARAMS", "name": name,
                    "value": p.value, "unit": p.unit, "source": p.source})
    # The SRAM access energy: the fit is calibrated, but an access of w bits costing w/64 of
    # the fitted 64-bit figure (PARAMS['bits_scaling']) and the extrapolation below 8 KB are
    # ASSUMPTIONs; a factor on every access's energy stands for them.
    out.append({"key": ("sram_scale", None), "table": "sim.hw.sram", "name": "access energy scale",
                "value": 1.0, "unit": "",
                "source": "ASSUMPTION: " + sram.PARAMS["bits_scaling"].source.split(": ", 1)[1]
                          + "; and the fit extrapolated below its smallest point (8 KB)"})
    return out


@contextmanager
def _moved(key, value):
    kind, name = key
    if kind == "array":
        with energy.overridden(array={name: value}):
            yield
    elif kind == "periphery":
        with energy.overridden(periphery={name: value}):
            yield
    elif kind == "sram_scale":
        saved = sram._A
        sram._A = saved * value
        try:
            yield
        finally:
            sram._A = saved
    else:
        saved = sram.PARAMS[name]
        sram.PARAMS[name] = dataclasses.replace(saved, value=value)
        try:
            yield
        finally:
            sram.PARAMS[name] = saved


def figures(config, *, subarrays: int, counters: dict, host: dict, host_cycles: int,
            ops: int, accesses: dict, rerun=None) -> dict:
    """Energy (micro-ops + SRAM dynamic + SRAM leakage), latency and GOPS/W of one image
    under the current tables (see the module docstring). ``rerun(stall_table) -> counters``
    and ``rerun(None)`` (the preset's table) give the counters whose difference a moved
    device time adds; without it a moved stall table is an error."""
    need = energy.device_cycles(config)
    c = dict(counters)
    if need != config.stalls:
        if rerun is None:
            raise ValueError(f"the stall table would move to {need}: give rerun")
        moved, base = rerun(need), rerun(None)
        for key in c:
            c[key] = int(c[key]) + int(moved.get(key, 0)) - int(base.get(key, 0))
    rep = energy.estimate(config, c, ops=ops, columns_active=subarrays * config.columns,
                          host=host, host_cycles=host_cycles)
    mem = sram.memory_report(config, subarrays, accesses, rep.latency_s)
    total = rep.energy_j + mem["dynamic_j"] + mem["leakage_j"]
    return {"energy_j": total, "latency_s": rep.latency_s, "gops_per_w": ops / total / 1e9,
            "gops": ops / rep.latency_s / 1e9, "stall_cycles": c["stalls"]}


def sensitivity(config, *, subarrays: int, counters: dict, host: dict, host_cycles: int,
                ops: int, accesses: dict, factor: float = 2.0, rerun=None) -> dict:
    """Every assumption (:func:`assumptions`) at value / ``factor`` and value x ``factor``:
    the figures (:func:`figures`) and their change against the baseline, in %; rows sorted by
    the largest change of GOPS/W or latency."""
    if not factor > 1:
        raise ValueError(f"factor must be > 1, not {factor!r}")
    args = dict(subarrays=subarrays, counters=counters, host=host, host_cycles=host_cycles,
                ops=ops, accesses=accesses, rerun=rerun)
    base = figures(config, **args)
    rows = []
    for a in assumptions(config.technology):
        row = {k: v for k, v in a.items() if k != "key"}
        for side, v in (("low", a["value"] / factor), ("high", a["value"] * factor)):
            with _moved(a["key"], v):
                f = figures(config, **args)
            row[side] = {"value": v, **f,
                         "gops_per_w_pct": 100 * (f["gops_per_w"] / base["gops_per_w"] - 1),
                         "latency_pct": 100 * (f["latency_s"] / base["latency_s"] - 1)}
        rows.append(row)
    rows.sort(key=lambda r: -max(abs(r[s][m]) for s in ("low", "high")
                                 for m in ("gops_per_w_pct", "latency_pct")))
    return {"factor": factor, "baseline": base, "rows": rows,
            "method": "one assumption at a time at value / factor and value x factor; the "
                      "image's measured counters; a moved device time that changes the stall "
                      "table adds the counter changes of a cycle-model rerun with that table "
                      "(sim.analysis.sensitivity module docstring)"}
