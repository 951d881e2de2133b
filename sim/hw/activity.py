"""CMOS logic energy from measured switching activity, and logic leakage.

Toggle counts come from an RTL run (``sim.flows.rtl_backend.run_images(trace_file=...)``; the report
traces on Verilator only): on Verilator a SAIF file (``--trace-saif``: the simulator counts
every bit's toggles itself, the file's size is set by the signals, not the run's length, so a
whole image is cheap), on Icarus
a VCD read with pyvcd's tokenizer (:func:`read_vcd`: a bit's toggles are the changes of its
settled value from one time step to the next, what the SAIF counts). Both are exact; a test
checks them against a counter whose toggles are known (bit i of a counter that counted to V
toggled V >> i times) and against each other on the same design: equal but for the settling at
time 0 (the SAIF counts a bit that starts at 1 as a toggle from 0, the VCD's first value is
the reference: at most one toggle per bit over a whole run).

Per block (the core's instances below the test bench's ``dut``: controller, lanes, column
reductions, PPU; signals of the core itself are ``core``: issue pipeline, address generation,
transpose buffer, weight-buffer port), the measured activity factor is::

    activity = toggles of the block's RTL signal bits / (bits x cycles)

and the switching energy of the block's synthesised cells (:mod:`sim.analysis.synth`)::

    E_switch = activity x cycles x area_um2(block cells) x switch_fj_per_um2

(ASSUMPTION: a block's gates switch at the rate of its RTL signals; :data:`PARAMS`). Leakage is
``area_um2(all cells) x leak_nw_per_um2 x latency``. Every constant is in :data:`PARAMS` with
its source.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import defaultdict
from pathlib import Path

from sim.hw.device import Param

__all__ = ["PARAMS", "RECORDED", "recorded_activity", "trace_runner", "trace_args",
           "read_saif", "read_vcd", "read_toggles",
           "block_activity", "switch_energy_j", "leakage_w", "ADD32_CELLS"]

#: The 32-bit adder the switching energy is calibrated on: ``assign y = a + b`` (33-bit y)
#: through ``sim.analysis.synth.FLOW``: cell type -> count (tests/test_synth_core.py checks the flow
#: still gives it).
ADD32_CELLS = {"$_AND_": 15, "$_AOI3_": 20, "$_AOI4_": 6, "$_NAND_": 17, "$_NOR_": 14,
               "$_NOT_": 2, "$_OAI3_": 5, "$_OAI4_": 2, "$_OR_": 10, "$_XNOR_": 34,
               "$_XOR_": 29}


def _add32_area() -> float:
    from sim.analysis.synth import CELL_AREA_UM2
    return sum(n * CELL_AREA_UM2[t].value for t, n in ADD32_CELLS.items())


def _build_params() -> dict[str, Param]:
    add_pj, act = 0.1, 0.5
    area = _add32_area()
    inv_nw, inv_um2 = 14.353185, 0.532
    inv_n_um, inv_p_um = 0.415, 0.630
    return {
        "add32_pj": Param(add_pj, "pJ", "literature ref. [Horowitz, ISSCC 2014, 'Computing's "
                          "energy problem'] 45 nm, 0.9 V: a 32-bit integer add costs 0.1 pJ"),
        "add32_area_um2": Param(area, "um^2", "derived: sim.analysis.synth.FLOW (Yosys + ABC) on a "
                                "32-bit adder, 154 cells (sim.hw.activity.ADD32_CELLS) x the "
                                "NanGate 45 nm "
                                "cell areas of sim.analysis.synth.CELL_AREA_UM2"),
        "add32_activity": Param(act, "", "ASSUMPTION: random operands (Horowitz's figures are "
                                "for random data): a cell output toggles with p = 1/2 per add"),
        "switch_fj_per_um2": Param(add_pj * 1e3 / (act * area), "fJ/um^2", "calibrated: "
                                   "add32_pj / (add32_activity x add32_area_um2), the energy of "
                                   "one output toggle per um^2 of cell (cell capacitance grows "
                                   "with its area: ASSUMPTION)"),
        "inv_leak_nw": Param(inv_nw, "nW", "literature ref. [NanGate FreePDK45 Open Cell "
                             "Library, typical corner (1.1 V, 25 C)] INV_X1 cell_leakage_power "
                             "14.353185 nW"),
        "leak_nw_per_um2": Param(inv_nw / inv_um2, "nW/um^2", "derived: inv_leak_nw / INV_X1 "
                                 "area 0.532 um^2 (ASSUMPTION: leakage ~ cell area, i.e. "
                                 "transistor width)"),
        # The same INV_X1 figure per micrometre of OFF transistor width: the one leakage
        # source of the node, from which sim.hw.sram derives the SRAM bitcell's leakage.
        "inv_off_width_um": Param((inv_n_um + inv_p_um) / 2, "um", "literature ref. [NanGate "
                                  "FreePDK45 Open Cell Library, INV_X1 netlist] NMOS_VTL W = "
                                  f"{inv_n_um} um, PMOS_VTL W = {inv_p_um} um, L = 50 nm: the "
                                  "OFF device is the NMOS (input low) or the PMOS (input "
                                  "high), the cell's leakage is the mean over the two states"),
        "leak_nw_per_um_width": Param(inv_nw / ((inv_n_um + inv_p_um) / 2), "nW/um",
                                      "derived: inv_leak_nw / inv_off_width_um (leakage ~ OFF "
                                      "transistor width at the library's VTL threshold, 1.1 "
                                      "V, 25 C)"),
    }


#: Every constant of the logic energy and leakage, with its source.
PARAMS: dict[str, Param] = _build_params()


# -- a recorded measurement, for runs without a trace ------------------------------------------

#: One traced RTL run's toggles per block (``sim.analysis.report``'s ``_read_activity`` of its SAIF
#: file): ``{preset, subarrays, command, date, simulated_cycles, blocks: {name: {bits,
#: toggles}}}``; empty: no recording (runs without a trace keep the gate-count estimate).
RECORDED: dict = {
    "preset": "nand_spin", "subarrays": 4,
    "command": ("python -m sim.analysis.report --backend rtl -n 1 --sim verilator --preset "
                "nand_spin --mat 4"),
    "date": "2026-12-01, commit 57abe50 (the bit-counters in, post-processing mixed)",
    "simulated_cycles": 127767,
    "blocks": {
        "array0": {"bits": 16958, "toggles": 88444596},
        "array1": {"bits": 16958, "toggles": 66562128},
        "array2": {"bits": 16958, "toggles": 60905876},
        "array3": {"bits": 16958, "toggles": 59453645},
        "bit_counter": {"bits": 16901, "toggles": 23748008},
        "core": {"bits": 60535, "toggles": 245132242},
        "ctrl": {"bits": 3556, "toggles": 7640302},
        "min_lane": {"bits": 16389, "toggles": 108981166},
        "ppu": {"bits": 1624, "toggles": 11097932},
        "reduce0": {"bits": 2699, "toggles": 11875342},
        "reduce1": {"bits": 2699, "toggles": 7081934},
        "reduce2": {"bits": 2699, "toggles": 5369657},
        "reduce3": {"bits": 2699, "toggles": 4989794},
    },
}

def recorded_activity(preset: str, subarrays: int) -> dict | None:
    """Block activities of :data:`RECORDED` (one traced RTL run) for a run without toggle
    counts (the model backend, Icarus, an untraced build), in the form of
    ``sim.analysis.report``'s ``_read_activity``, with ``recorded`` True and its ``basis`` saying
    where it was measured and whether it is applied to another preset or mat (then an
    ASSUMPTION: that core's blocks switch as the recorded one's; a block the recording
    lacks takes the activity of all its signals, ``logic_energy``). None without a
    recording."""
    if not RECORDED:
        return None
    cycles = int(RECORDED["simulated_cycles"])
    blocks = {name: {"bits": b["bits"], "toggles": b["toggles"],
                     "activity": b["toggles"] / (b["bits"] * cycles)}
              for name, b in RECORDED["blocks"].items()}
    same = preset == RECORDED["preset"] and subarrays == RECORDED["subarrays"]
    where = (f"recorded on {RECORDED['preset']} at a mat of {RECORDED['subarrays']} "
             f"({RECORDED['command']}, {RECORDED['date']})")
    return {"file": None, "recorded": True, "simulated_cycles": cycles, "blocks": blocks,
            "basis": where + ("" if same else f", applied to {preset} at a mat of "
                              f"{subarrays} (ASSUMPTION: its blocks switch as the recorded "
                              "core's)")}


# -- runners: the toggle-counting builds ---------------------------------------------------------

@contextlib.contextmanager
def _waves_on():
    """cocotb's runner lets the ``WAVES`` environment variable override its ``waves``
    argument (``make`` exports ``WAVES=0``): a traced build or run needs it on."""
    old = os.environ.get("WAVES")
    os.environ["WAVES"] = "1"
    try:
        yield
    finally:
        if old is None:
            del os.environ["WAVES"]
        else:
            os.environ["WAVES"] = old


class _Traced:
    """Mixin of the trace runners: ``build`` and ``test`` with waves on whatever ``WAVES``
    says (:func:`_waves_on`)."""

    def build(self, *args, **kwargs):
        with _waves_on():
            return super().build(*args, **kwargs)

    def test(self, *args, **kwargs):
        with _waves_on():
            return super().test(*args, **kwargs)


def trace_runner(sim: str):
    """A cocotb runner for ``sim`` that counts toggles: Verilator (the ports-only runner of
    ``sim.flows.rtl_backend``) built with ``--trace-saif`` instead of ``--trace``; Icarus with its
    VCD dumper instead of FST. Both trace whatever the ``WAVES`` environment variable says."""
    from cocotb_tools.runner import get_runner

    from sim.flows.rtl_backend import _verilator_ports_only
    if sim == "verilator":
        base = _verilator_ports_only()

        class VerilatorSaif(_Traced, base):
            def _build_command(self):
                cmds = super()._build_command()
                cmds[0] = ["--trace-saif" if a == "--trace" else a for a in cmds[0]]
                return cmds
        return VerilatorSaif()
    base = type(get_runner(sim))

    class IcarusVcd(_Traced, base):
        def _test_command(self):
            cmds = super()._test_command()
            return [["-vcd" if a == "-fst" else a for a in c] for c in cmds]
    return IcarusVcd()


def trace_args(sim: str, path) -> dict:
    """The runner's ``test`` arguments that write the toggles of a :func:`trace_runner` build
    to ``path``."""
    path = str(Path(path).resolve())
    if sim == "verilator":
        return {"test_args": ["--trace", "--trace-file", path]}
    return {"plusargs": [f"+dumpfile_path={path}"]}


# -- readers -------------------------------------------------------------------------------------

_BIT = re.compile(r"^(.*?)\s*\[(\d+)\]$")


def _split_bit(name: str):
    m = _BIT.match(name)
    return (m.group(1), int(m.group(2))) if m else (name, None)


def read_saif(path) -> dict:
    """Toggle counts of a SAIF file: ``{(scope..., net, bit): TC}`` (bit None for a scalar),
    scopes from the outermost INSTANCE; and ``"duration"`` under the key ``None``."""
    text = Path(path).read_text()
    tokens = re.findall(r'\(|\)|"[^"]*"|[^\s()]+', text)
    out = {}
    stack: list = []             # the open lists' heads
    scopes: list = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if t == "(":
            head = tokens[i + 1] if i + 1 < n else ""
            if head == "INSTANCE":
                scopes.append(tokens[i + 2].strip('"'))
                stack.append("INSTANCE")
                i += 3
                continue
            if head == "DURATION":
                out[None] = int(float(tokens[i + 2]))
            if stack and stack[-1] == "NET" and head not in ("T0", "T1", "TX", "TZ", "TC",
                                                              "IG", "TB"):
                name = head.replace("\\", "")
                j, tc = i + 2, None
                depth = 1
                while depth:
                    if tokens[j] == "(":
                        depth += 1
                        if tokens[j + 1] == "TC":
                            tc = int(tokens[j + 2])
                    elif tokens[j] == ")":
                        depth -= 1
                    j += 1
                base, bit = _split_bit(name)
                out[(*scopes, base, bit)] = tc or 0
                i = j
                continue
            stack.append(head)
            i += 2
            continue
        if t == ")":
            if stack:
                if stack.pop() == "INSTANCE":
                    scopes.pop()
        i += 1
    return out


def read_vcd(path) -> dict:
    """Toggle counts of a VCD file (pyvcd's tokenizer): ``{(scope..., var, bit): toggles}``,
    a bit's toggles the changes of its settled value between time steps (x and z count as
    values: a change from x at the start is no toggle, the first value is the reference);
    ``"duration"`` (the last time) under the key None."""
    from vcd.reader import TokenKind, tokenize
    scopes: list = []
    vars_by_id: dict = defaultdict(list)     # id -> [(scope tuple, name, width, lsb)]
    last: dict = {}                          # id -> settled value string (MSB first)
    pending: dict = {}
    counts: dict = defaultdict(int)          # (id, bit offset) -> toggles
    widths: dict = {}
    t_last = 0

    def settle():
        for ident, val in pending.items():
            w = widths[ident]
            val = val.rjust(w, "0" if val[0] in "01" else val[0])[-w:]
            old = last.get(ident)
            if old is not None and old != val:
                for k in range(w):
                    if old[w - 1 - k] != val[w - 1 - k]:
                        counts[(ident, k)] += 1
            last[ident] = val
        pending.clear()

    with open(path, "rb") as f:
        for tok in tokenize(f):
            kind = tok.kind
            if kind is TokenKind.CHANGE_TIME:
                settle()
                t_last = tok.time_change
            elif kind is TokenKind.CHANGE_SCALAR:
                pending[tok.scalar_change.id_code] = tok.scalar_change.value
            elif kind is TokenKind.CHANGE_VECTOR:
                v = tok.vector_change.value
                pending[tok.vector_change.id_code] = (format(v, "b") if isinstance(v, int)
                                                      else str(v))
            elif kind is TokenKind.SCOPE:
                scopes.append(tok.scope.ident)
            elif kind is TokenKind.UPSCOPE:
                scopes.pop()
            elif kind is TokenKind.VAR:
                d = tok.var
                w = int(d.size)
                lsb = 0
                if d.bit_index is not None:
                    idx = d.bit_index
                    lsb = min(idx) if isinstance(idx, tuple) else int(idx)
                widths[d.id_code] = w
                vars_by_id[d.id_code].append((tuple(scopes), d.reference, w, lsb))
    settle()
    out = {None: t_last}
    for ident, names in vars_by_id.items():
        for scope, ref, w, lsb in names:
            for k in range(w):
                bit = None if (w == 1 and lsb == 0) else lsb + k
                out[(*scope, ref, bit)] = counts.get((ident, k), 0)
    return out


def read_toggles(path) -> dict:
    """:func:`read_saif` or :func:`read_vcd` by the file's first bytes."""
    with open(path, "rb") as f:
        head = f.read(256)
    return read_saif(path) if b"(SAIFILE" in head else read_vcd(path)


# -- energy --------------------------------------------------------------------------------------

def _below(key, marker: str):
    """The part of a toggle key below the scope ``marker`` (the bench's ``dut``), or None."""
    scopes = key[:-2]
    if marker not in scopes:
        return None
    return scopes[scopes.index(marker) + 1:], key[-2], key[-1]


def block_of(scopes: tuple, blocks=None) -> str:
    """The block a signal belongs to: the first instance below the core (``core`` for the
    core's own signals)."""
    return scopes[0] if scopes else "core"


def block_activity(toggles: dict, cycles: int, *, marker: str = "dut") -> dict:
    """Per block: ``{"bits", "toggles", "activity"}`` over the signal bits below ``marker``
    (the test bench's instance of the core), activity = toggles / (bits x cycles); names that
    two simulators spell alike are counted once."""
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles <= 0:
        raise ValueError(f"cycles must be a positive int, not {cycles!r}")
    seen = {}
    for key, tc in toggles.items():
        if key is None:
            continue
        below = _below(key, marker)
        if below is None:
            continue
        seen[below] = tc
    out: dict = {}
    for (scopes, _name, _bit), tc in sorted(seen.items(), key=lambda kv: str(kv[0])):
        b = out.setdefault(block_of(scopes), {"bits": 0, "toggles": 0})
        b["bits"] += 1
        b["toggles"] += tc
    for b in out.values():
        b["activity"] = b["toggles"] / (b["bits"] * cycles)
    return out


def switch_energy_j(activity: float, cycles: int, area_um2: float) -> float:
    """``activity x cycles x area_um2 x PARAMS['switch_fj_per_um2']`` in J."""
    return activity * cycles * area_um2 * PARAMS["switch_fj_per_um2"].value * 1e-15


def leakage_w(area_um2: float) -> float:
    """``area_um2 x PARAMS['leak_nw_per_um2']`` in W."""
    return area_um2 * PARAMS["leak_nw_per_um2"].value * 1e-9


_ARRAY = re.compile(r"array\d*")


def clock_cycles(toggles: dict, *, marker: str = "dut", clock: str = "clk") -> int:
    """Rising clock edges of a toggle file: the toggles of the core's ``clk`` // 2 (the bench
    starts it high, so every cycle is a fall and a rise)."""
    for key, tc in toggles.items():
        if key is not None and key[-2] == clock and key[-1] is None and key[:-2] \
                and key[-3] == marker:
            return tc // 2
    raise ValueError(f"the toggle file has no {marker}.{clock}")


def logic_energy(block_act: dict, *, flat_area_um2: float, block_area_um2: dict | None,
                 cycles: int, latency_s: float, ops: int) -> dict:
    """Switching energy per block and leakage of one image.

    ``block_act``: :func:`block_activity` of the traced run; ``flat_area_um2``: the cell area
    of the flattened core (``sim.analysis.synth``); ``block_area_um2``: cell area per block of the
    hierarchical synthesis (``sim.analysis.synth.block_areas``), scaled here to sum to
    ``flat_area_um2`` (None: the whole core as one block at the activity of all its logic's
    signals, the MTJ arrays' models left out);
    ``cycles``, ``latency_s``, ``ops``: one image's cycles, latency and operations.

    A block with cells but no traced signal takes the activity of all signals (said in its
    ``note``); a traced scope without cells (the MTJ arrays' behavioral models: MRAM, costed
    by ``sim.hw.energy``) is listed in ``untraced_scopes`` and costs nothing here.
    """
    if flat_area_um2 < 0 or cycles < 0 or latency_s < 0:
        raise ValueError("flat_area_um2, cycles and latency_s must be >= 0")
    # The mean over the logic: every traced scope but the MTJ arrays' behavioral models
    # (rtl.core's array / array<k>, blackboxes in sim.analysis.synth).
    logic_act = {k: b for k, b in block_act.items() if not _ARRAY.fullmatch(k)}
    bits = sum(b["bits"] for b in logic_act.values())
    tog = sum(b["toggles"] for b in logic_act.values())
    sim_cycles = {b["toggles"] / (b["bits"] * b["activity"]) for b in logic_act.values()
                  if b["activity"]}
    mean_act = (tog / bits / next(iter(sim_cycles))) if sim_cycles and bits else 0.0
    if block_area_um2:
        total = sum(block_area_um2.values())
        areas = {k: v * flat_area_um2 / total for k, v in block_area_um2.items()}
    else:
        areas = {"core (whole)": flat_area_um2}
    rows = []
    for name, area in areas.items():
        act = block_act.get(name) if block_area_um2 else None
        note = ""
        if act is None:
            a = mean_act
            note = ("activity of all the core's signals" if block_area_um2 is None
                    else "no traced signal: activity of all the core's signals")
        else:
            a = act["activity"]
        e = switch_energy_j(a, cycles, area)
        rows.append({"name": name, "area_um2": area, "activity": a,
                     "bits": None if act is None else act["bits"],
                     "toggles": None if act is None else act["toggles"],
                     "energy_j": e, "energy_per_op_j": e / ops if ops else None,
                     "note": note})
    energy = sum(r["energy_j"] for r in rows)
    leak = leakage_w(flat_area_um2)
    return {
        "blocks": rows, "energy_j": energy, "energy_per_op_j": energy / ops if ops else None,
        "mean_activity": mean_act, "leakage_w": leak, "leakage_j": leak * latency_s,
        "untraced_scopes": sorted(k for k in block_act
                                  if k not in areas and (block_area_um2 or _ARRAY.fullmatch(k))),
        "cycles": cycles, "latency_s": latency_s,
        "formula": "per block: activity x cycles x cell area x switch_fj_per_um2 "
                   "(sim.hw.activity.PARAMS); leakage: cell area x leak_nw_per_um2 x latency",
        "params": {k: {"value": p.value, "unit": p.unit, "source": p.source}
                   for k, p in PARAMS.items()},
    }


def logic_split(split: dict, per_image: dict, logic: dict) -> dict:
    """The report's energy split (``sim.analysis.report._energy_split`` without activity) with the
    CMOS logic row from :func:`logic_energy` and the logic leakage counted; the gate-count
    estimate (a per-gate-toggle constant at activity 1/2, ``sim.hw.energy.PERIPHERY``) moves to
    ``cmos_comparison`` with the ratio of the two."""
    rows = [dict(r) for r in split["rows"]]
    old = None
    # The cells: a synthesis of this core, or (``cell_area_basis``) the calibrated per-block
    # fit (sim.analysis.synth.load_fit), which makes the leakage calibrated too.
    cells = logic.get("cell_area_basis") or "synthesised cell area"
    for r in rows:
        if r["name"] == "CMOS logic":
            old = r["energy_j"]
            r.update(energy_j=logic["energy_j"], class_="calibrated",
                     source="calibrated: measured activity per block (RTL toggles) x cycles x "
                            f"{cells} x switch_fj_per_um2 (sim.hw.activity, fitted to "
                            "Horowitz ISSCC 2014's 45 nm 32-bit add)")
            r["class"] = r.pop("class_")
        elif r["name"] == "leakage (CMOS logic)":
            fitted = "cell_area_basis" in logic
            r.update(energy_j=logic["leakage_j"],
                     source=f"{'calibrated' if fitted else 'derived'}: {cells} x "
                     "leak_nw_per_um2 (NanGate FreePDK45 INV_X1 leakage per um^2) x latency "
                     "(sim.hw.activity)", **{"class": "calibrated" if fitted else "derived"})
    total = sum(r["energy_j"] or 0.0 for r in rows)
    out = dict(split)
    out.update(rows=rows, total_j=total, gops_per_w=per_image["ops"] / total / 1e9,
               note="MRAM leakage: none (non-volatile); the rows sum to the energy per image "
                    "with the memories, its CMOS logic row replaced by the measured activity's "
                    "and the logic leakage added (per_image energy_j + memories dynamic_j + "
                    "leakage_j - gate-count CMOS logic + logic_energy energy_j + leakage_j)")
    out["cmos_comparison"] = {
        "gate_count_estimate_j": old, "activity_j": logic["energy_j"],
        "ratio_estimate_over_activity": (old / logic["energy_j"]) if logic["energy_j"]
        else None,
        "estimate_source": "sim.hw.energy.PERIPHERY: textbook gates per lane x activity 1/2 x "
                           "gate_toggle_fj (ASSUMPTION)"}
    return out
