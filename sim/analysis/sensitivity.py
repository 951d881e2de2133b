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
``sim.hw.sram.PARAMS`` that enter the energy (write vs read), and a factor on
every SRAM access's energy (the ASSUMPTION that a w-bit access costs w/64 of the fitted 64-bit
figure, and the fit's extrapolation below 8 KB). Whatever their class, the constants of the
headline's logic energy and of both leakages move too (:data:`HEADLINE_CONSTANTS`: the
switching energy per um^2 and the logic leakage per um^2 of ``sim.hw.activity.PARAMS`` when the
figures have the activity-based logic energy, the SRAM leakage per bit always). Other
seed, literature and calibrated constants are not moved; nor are the device resistances
(``sim.hw.device``: a resistance enters the cell terms only through ``V^2 / R``, as the read
and write voltages do, which are moved).

A model whose weights are streamed (``sim.compile.weight_stream``): the caller's ``stream()``
gives the streamed weights' energy per image (buffer and requant-table writes + bus wires,
``sim.compile.weight_stream.cost``) under the current tables; it is added to every figure's
energy, recomputed under each moved constant (the SRAM access-energy factor and write vs read
move its SRAM writes), and the wire energy per bit and mm (``sim.hw.chip.PARAMS
['wire_fj_per_bit_mm']``, an ASSUMPTION that enters these figures only through it) is moved
too. Its bus cycles are in the host cycles the caller gives (the bus width and rate,
``sim.hw.chip.PARAMS``, are not moved here: they set the chip model's figures).
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager

from sim.hw import energy, sram
from sim.hw.sources import source_class

__all__ = ["AREA_ONLY", "HEADLINE_CONSTANTS", "STREAM_CONSTANTS", "assumptions", "figures",
           "sensitivity"]

#: PERIPHERY / sram.PARAMS entries that only enter the area.
AREA_ONLY = ("gate_area_um2", "flop_area_um2", "utilisation", "array_efficiency", "cell_um2")


#: The constants of the headline's logic energy and of both leakages, moved whatever their
#: class (calibrated or derived: each rests on a chain of ASSUMPTIONs, ``sim.hw.activity``,
#: ``sim.hw.sram``): ``(table, name, needs the activity-based logic)``.
HEADLINE_CONSTANTS = (("activity", "switch_fj_per_um2", True),
                      ("activity", "leak_nw_per_um2", True),
                      ("sram", "leakage_pw_per_bit", False))


#: The ``sim.hw.chip.PARAMS`` entries that enter the streamed weights' energy (moved when the
#: figures have a ``stream``).
STREAM_CONSTANTS = ("wire_fj_per_bit_mm",)


def assumptions(technology: str, *, logic: bool = False, stream: bool = False) -> list[dict]:
    """The moved constants: ``{key, table, name, value, unit, source}``; ``key`` is what
    the private ``_moved`` takes. ``logic``: the figures have the activity-based logic
    energy (:func:`figures`' ``logic``), so its constants move too; ``stream``: they have
    the streamed weights' energy (:func:`figures`' ``stream``), so the ASSUMPTIONs of
    :data:`STREAM_CONSTANTS` move too."""
    from sim.hw import activity, chip
    out = []
    for name in STREAM_CONSTANTS if stream else ():
        p = chip.PARAMS[name]
        if source_class(p.source) == "assumption":
            out.append({"key": ("chip", name), "table": "sim.hw.chip.PARAMS", "name": name,
                        "value": p.value, "unit": p.unit, "source": p.source})
    for table, name, needs_logic in HEADLINE_CONSTANTS:
        if needs_logic and not logic:
            continue
        p = (activity.PARAMS if table == "activity" else sram.PARAMS)[name]
        out.append({"key": (table, name), "table": f"sim.{table}.PARAMS", "name": name,
                    "value": p.value, "unit": p.unit, "source": p.source})
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
                or isinstance(p.value, str) or name == "leakage_pw_per_bit":
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
    elif kind in ("activity", "chip"):
        from sim.hw import activity, chip
        params = (activity if kind == "activity" else chip).PARAMS
        saved = params[name]
        params[name] = dataclasses.replace(saved, value=value)
        try:
            yield
        finally:
            params[name] = saved
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
            ops: int, accesses: dict, rerun=None, logic: dict | None = None,
            stream=None) -> dict:
    """Energy (micro-ops + SRAM dynamic + SRAM leakage), latency and GOPS/W of one image
    under the current tables (see the module docstring). ``rerun(stall_table) -> counters``
    and ``rerun(None)`` (the preset's table) give the counters whose difference a moved
    device time adds; without it a moved stall table is an error.

    ``logic``: ``{block_act, flat_area_um2, block_area_um2, cycles}``, the inputs of
    ``sim.hw.activity.logic_energy``: the micro-ops' gate-count CMOS logic is then replaced
    by the activity-based switching energy and the logic leakage is added (the report's
    headline basis); None: the gate-count estimate, no logic leakage.

    ``stream``: ``stream() -> J``, the streamed weights' energy of one image under the current
    tables (the report: ``sim.compile.weight_stream.cost(compiled)["energy_j"]``), added to the
    energy (``weight_stream_j`` in the result); None: nothing streamed."""
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
    basis = "gate-count logic estimate + SRAM dynamic and leakage"
    if logic is not None:
        from sim.hw import activity
        gate = energy.energy_split(config, c, columns_active=subarrays * config.columns,
                                   host=host)["CMOS logic"]
        le = activity.logic_energy(logic["block_act"], flat_area_um2=logic["flat_area_um2"],
                                   block_area_um2=logic["block_area_um2"],
                                   cycles=logic["cycles"], latency_s=rep.latency_s, ops=ops)
        total += le["energy_j"] + le["leakage_j"] - gate
        basis = "activity-based logic + logic leakage + SRAM dynamic and leakage"
    stream_j = 0.0
    if stream is not None:
        stream_j = float(stream())
        total += stream_j
        basis += " + streamed weights (buffer and requant writes, bus wires)"
    return {"energy_j": total, "weight_stream_j": stream_j, "latency_s": rep.latency_s,
            "gops_per_w": ops / total / 1e9,
            "gops": ops / rep.latency_s / 1e9, "stall_cycles": c["stalls"], "basis": basis}


def sensitivity(config, *, subarrays: int, counters: dict, host: dict, host_cycles: int,
                ops: int, accesses: dict, factor: float = 2.0, rerun=None,
                logic: dict | None = None, stream=None) -> dict:
    """Every assumption (:func:`assumptions`) at value / ``factor`` and value x ``factor``:
    the figures (:func:`figures`) and their change against the baseline, in %; rows sorted by
    the largest change of GOPS/W or latency."""
    if not factor > 1:
        raise ValueError(f"factor must be > 1, not {factor!r}")
    args = dict(subarrays=subarrays, counters=counters, host=host, host_cycles=host_cycles,
                ops=ops, accesses=accesses, rerun=rerun, logic=logic, stream=stream)
    base = figures(config, **args)
    rows = []
    for a in assumptions(config.technology, logic=logic is not None,
                         stream=stream is not None):
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
                      "table adds the counter changes of a cycle-model rerun with that table; "
                      "a streamed model's weight-streaming energy recomputed under each moved "
                      "constant (sim.analysis.sensitivity module docstring)"}
