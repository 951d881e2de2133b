"""Seed 000 (JEIT, STT-MRAM AdderNet accelerator) reproduction table: our ``jeit_stt`` mat beside
the paper's 32.31 GOPS and 494.56 GOPS/W (abstract; 'Results and Discussions').

* **Peak** (:func:`peak`), computed the way a peak is computed: one adder layer whose fan-in is
  the mat's width W (every lane busy, one tile), every operand non-zero, run on the cycle model
  (``sim.hw.core_model.CoreModel``, which agrees cycle for cycle with the RTL); only the compute
  part counts (the on-chip row building, ``sim.analysis.report.row_build_profile``, and the host
  port
  are left out, as a peak leaves out data loading). GOPS = 2 x W x channels / (compute cycles /
  clock); energy = ``sim.hw.energy.estimate`` of the compute micro-ops (the SRAM reads of the
  weight buffer are not in it: they are in the measured row).
* **Peak with the measured sparsity**: the same layer with an all-zero input (every tile dot
  skipped by MOVE SKIPZ) gives the cycles and energy of a skipped dot; mixed with the dense
  one by the fraction of tile dots the measured run skipped (zero skipping skips a tile dot
  only when all its operands are zero, ``docs/dataflows.rst``).
* **Peak of the other route**: with the preset's dataflow ``jeit_fa`` (the full-adder array),
  the same peak of dataflow ``abs_diff`` (difference bits written back and bit-counted) on the
  same core, so that both of the seed's accumulations stay measured.
* **Measured**: the report's average over its images on the workload (``sim.analysis.report``).
* **STT write energy**: the assumed write energy (``sim.hw.energy.ARRAY['stt']``, 0.6 V / 10 ns:
  the seed gives none) scaled by :data:`WRITE_FACTORS`; the peak and the measured GOPS/W at each.
* **Chip size**: the mats of ours (and their area) that 32.31 GOPS takes at our peak and at our
  measured rate.
* **Accuracy under the seed's variation** (:func:`variation_row`): read from the JSON that
  :data:`VARIATION_COMMAND` (``sim.analysis.variation``) writes, never typed in: the numpy fault
  model's
  accuracy at CV 0 and at the seed's CV (1.2 %, its HRS figure, the larger of 1.1 % LRS / 1.2 %
  HRS, on both resistances: ``sim.analysis.variation``'s ``cv``) with the BER of that CV, and the
  spot check of the ``jeit_stt`` core with the array's fault injection at that BER in the RTL
  (Verilator; every stage equal to the cycle model under the same faults). A JSON older than
  any source it depends on (:data:`VARIATION_SOURCES`, ``make``'s rule), or written by another
  command (model, technology, CV, backend, dataflow), is refused: the table then says why and
  which command refreshes it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from golden.model import Layer, Model, infer_int
from sim.hw import energy

__all__ = ["SEED_GOPS", "SEED_GOPS_PER_W", "WRITE_FACTORS", "SEED_CV", "VARIATION_COMMAND",
           "VARIATION_JSON", "VARIATION_SOURCES", "peak", "write_sweep", "variation_row", "table"]

REPO = Path(__file__).resolve().parents[2]

#: Seed 000 abstract, 'Results and Discussions' and 'Conclusions' (the paper's Table 2).
SEED_GOPS = 32.31
SEED_GOPS_PER_W = 494.56
#: Factors on the STT write energy per bit for the sweep.
WRITE_FACTORS = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0)


#: Seed 000, 'Results and Discussions': CV of R_P 1.1 %, of R_AP 1.2 % (the larger on both).
SEED_CV = 0.012
#: The command whose JSON (:data:`VARIATION_JSON`) the accuracy row is read from.
VARIATION_COMMAND = ("python -m sim.analysis.variation --model fashion_addernet --technology stt "
                     "--cv 0,0.012 -n 200 --seeds 1 --trials 20000 --rtl-cv 0.012 --rtl-n 3 "
                     "--mat 1")
#: Where that command writes its JSON (relative to the repository).
VARIATION_JSON = Path("build/reports/variation-fashion_addernet-stt.json")
#: What that JSON depends on (globs under the repository): the RTL, golden, the model file,
#: the device and fault models, the compiler, its routes and the core model.
VARIATION_SOURCES = ("rtl/*.py", "golden/*.py", "golden/models/fashion_addernet*",
                     "sim/analysis/variation.py", "sim/hw/device.py", "sim/hw/faults.py",
                     "sim/compile/compiler.py",
                     "sim/hw/core_model.py", "sim/hw/isa_model.py", "sim/compile/layer_stages.py",
                     "sim/flows/rtl_backend.py", "sim/routes/*.py")


def variation_row(model_name: str, dataflow: str, *, path=None, repo=REPO) -> dict:
    """The accuracy-under-variation figures for the table from the JSON of
    :data:`VARIATION_COMMAND` (``path``, default :data:`VARIATION_JSON` under ``repo``):
    ``{"ok": True, "rows": [...], "command": ...}``, or ``{"ok": False, "why": ...}`` if it
    is missing, stale (older than a file of :data:`VARIATION_SOURCES`) or not the run the
    table needs (model ``model_name``, technology stt, CV :data:`SEED_CV` among the points,
    an RTL spot check at that CV on dataflow ``dataflow``)."""
    path = Path(repo) / (VARIATION_JSON if path is None else path)
    refresh = f"run `{VARIATION_COMMAND}`, then the report again"
    if not path.is_file():
        return {"ok": False, "why": f"{path.name} is missing: {refresh}"}
    try:
        rep = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return {"ok": False, "why": f"{path} is unreadable ({e}): {refresh}"}
    newer = [p for g in VARIATION_SOURCES for p in sorted(Path(repo).glob(g))
             if p.is_file() and p.stat().st_mtime > path.stat().st_mtime]
    if newer:
        return {"ok": False, "why": f"{path.name} is stale ({newer[0].relative_to(repo)} is "
                                    f"newer): {refresh}"}
    spot = rep.get("spot_check") or {}
    pts = {p.get("cv"): p for p in rep.get("points", [])}
    wrong = [f"{k} {got!r} (wanted {want!r})" for k, got, want in (
        ("model", rep.get("model"), model_name), ("technology", rep.get("technology"), "stt"),
        ("spot-check CV", spot.get("cv"), SEED_CV), ("spot-check backend", spot.get("backend"),
                                                      "rtl"),
        ("spot-check dataflow", spot.get("dataflow"), dataflow),
        ("CV points", sorted(c for c in pts if c is not None)[:1] + [SEED_CV in pts],
         [0.0, True])) if got != want]
    if wrong:
        return {"ok": False, "why": f"{path.name} is another run ({'; '.join(wrong)}): {refresh}"}
    p0, p1 = pts[0.0], pts[SEED_CV]
    src = f"`{rep.get('command', '?')}`"
    rows = [
        {"figure": f"accuracy, numpy fault model, CV 0, {rep['images']} test images of "
                   f"{rep['dataset']} (the seed's is CIFAR-10: not the same data set); these "
                   f"three rows from {path.name}, written by {src}",
         "ours": 100 * p0["accuracy_mean"], "seed": 90.66, "unit": "%"},
        {"figure": f"accuracy under the seed's variation (CV {100 * SEED_CV:g} % on R_P and "
                   f"R_AP: 'read' BER {p1['ber']:.3g} in {rep['trials']} trials), numpy fault "
                   f"model, {rep['images']} images, {len(rep['seeds'])} fault seed(s)",
         "ours": 100 * p1["accuracy_mean"], "seed": 90.66, "unit": "%"},
        {"figure": f"accuracy under the seed's variation on the RTL ({spot['simulator']}, mat of "
                   f"{spot['subarrays']}, route {spot['dataflow']}) with the array's fault "
                   f"injection at BER {spot['ber']:.3g}, {spot['images']} images (golden "
                   f"{100 * spot['golden_accuracy']:g} %; every stage == the cycle model)",
         "ours": 100 * spot["accuracy"], "seed": 90.66, "unit": "%"},
    ]
    return {"ok": True, "rows": rows, "command": src, "json": path.name}


#: The peak layer: an adder convolution of IN_CHANNELS x KERNEL x KERNEL = 128 terms per output
#: (a subarray's columns on every preset), stride 1 over an input of GROUPS x K patches
#: (K subarrays; the input small enough for the data memory), GROUPS patches per subarray: the
#: route ``jeit_fa`` hides the full-adder array's flush behind the next dot's SIGN pass in a
#: loop of dots (``sim.routes.jeit_fa``), so a steady-state peak needs several dots per loop
#: run; with 8 the one flush left exposed per output channel is 1/8 of a flush per dot.
IN_CHANNELS, KERNEL, GROUPS = 8, 4, 8


def _peak_input(k: int, groups: int) -> tuple:
    """The peak layer's input: ``groups`` rows of ``k`` output positions (stride 1)."""
    return (IN_CHANNELS, groups + KERNEL - 1, k + KERNEL - 1)


def _layer_model(config, k: int, channels: int, rng, groups: int = GROUPS):
    """``adder_conv2d`` of fan-in ``config.columns`` over an input of ``groups`` x k patches
    (``groups`` per subarray: every lane of the mat busy in each segmented row set), then a
    small multiply classifier (its own stage, not counted)."""
    if IN_CHANNELS * KERNEL * KERNEL != config.columns:
        raise ValueError(f"config.columns must be {IN_CHANNELS * KERNEL * KERNEL} for the peak "
                         f"layer, not {config.columns}")
    w = rng.integers(1, 256, (channels, IN_CHANNELS, KERNEL, KERNEL)).astype(np.uint8)
    conv = Layer(kind="adder_conv2d", output="requant",
                 params={"weight": w, "stride": 1, "padding": 0,
                         "rq_mult": np.ones(channels, np.int32),
                         "rq_bias": np.zeros(channels, np.int64),
                         "rq_shift": np.full(channels, 8, np.int32)})
    wl = rng.integers(-128, 128, (2, channels * k * groups)).astype(np.int8)
    fc = Layer(kind="mul_linear", output="logits",
               params={"weight": wl, "bias": np.zeros(2, np.int32)})
    # A bare Model, as the compiler's tests build one: integer parameters only (the float
    # parameters a trained model file carries play no part in the integer pipeline).
    return Model(name="peak", input_shape=_peak_input(k, groups),
                 input_scale=1.0,
                 class_names=("0", "1"), layers=(conv, Layer(kind="flatten"), fc))


def _compute_run(config, k: int, model, x) -> dict:
    """Counters of the compute part of the peak layer's stage on input ``x`` (cycle model),
    logits checked against golden."""
    from sim.compile.compiler import compile_model, run_compiled
    from sim.hw.core_model import CoreModel
    from sim.analysis.report import row_build_profile
    compiled = compile_model(model, config, subarrays=k)
    res = run_compiled(compiled, x, CoreModel(config, subarrays=k))
    want = infer_int(model, x[None])[0]
    if np.asarray(res.logits).ravel().tolist() != np.asarray(want).ravel().tolist():
        raise AssertionError(f"peak layer: core logits {np.asarray(res.logits).tolist()} != "
                             f"golden {np.asarray(want).tolist()}")
    stage = compiled.stages[0]
    _, rb = row_build_profile(stage)
    total = {key: int(v) for key, v in res.stages[0].micro_ops.items()}
    return {"counters": {key: total[key] - int(rb.get(key, 0)) for key in total},
            "mode": stage.mode, "tiles": stage.tiles, "fan_in": stage.fan_in,
            "patches": stage.n_patches}


def peak(config, k: int, *, channels: int = 4, groups: int = GROUPS, seed: int = 0) -> dict:
    """Peak GOPS and GOPS/W of one mat of ``k`` subarrays (module docstring): ``dense`` (every
    operand non-zero) and ``zero`` (every tile dot skipped), each with its compute counters,
    cycles, energy, GOPS and GOPS/W."""
    rng = np.random.default_rng(seed)
    model = _layer_model(config, k, channels, rng, groups)
    width = k * config.columns
    ops = 2 * channels * groups * k * config.columns     # patches x channels x fan-in, x 2
    clock = config.clock_mhz * 1e6
    out = {"width": width, "channels": channels, "groups": groups, "ops": ops, "seed": seed,
           "layer": f"adder_conv2d {IN_CHANNELS} -> {channels} channels, {KERNEL} x {KERNEL} "
                    f"kernel, stride 1, input {' x '.join(map(str, _peak_input(k, groups)))}: "
                    f"{groups * k} patches of fan-in {config.columns}, {groups} per subarray"}
    shape = _peak_input(k, groups)
    for name, x in (("dense", rng.integers(1, 256, shape).astype(np.uint8)),
                    ("zero", np.zeros(shape, np.uint8))):
        run = _compute_run(config, k, model, x)
        c = run["counters"]
        rep = energy.estimate(config, c, ops=ops, columns_active=width)
        out[name] = {"counters": c, "cycles": c["cycles"], "energy_j": rep.energy_j,
                     "gops": ops / (c["cycles"] / clock) / 1e9,
                     "gops_per_w": ops / rep.energy_j / 1e9, "mode": run["mode"],
                     "tiles": run["tiles"], "patches": run["patches"],
                     "lane_utilisation": run["fan_in"] * run["patches"]
                     / (width * -(-run["patches"] // k))}        # per row set of k patches
    return out


def _mixed(pk: dict, s: float, clock: float) -> dict:
    d, z = pk["dense"], pk["zero"]
    cycles = (1 - s) * d["cycles"] + s * z["cycles"]
    e = (1 - s) * d["energy_j"] + s * z["energy_j"]
    return {"skip_fraction": s, "cycles": cycles, "energy_j": e,
            "gops": pk["ops"] / (cycles / clock) / 1e9, "gops_per_w": pk["ops"] / e / 1e9}


def write_sweep(config, k: int, *, measured_counters: dict, measured_host: dict,
                measured_host_cycles: int, measured_ops: int, sram_j: float,
                factors=WRITE_FACTORS) -> list:
    """GOPS/W at each factor on the STT write energy per bit (the write voltage moved by
    sqrt(factor): E ~ V^2): the dense peak and the measured image (micro-ops + the SRAMs'
    ``sram_j``, which the write energy does not move)."""
    v0 = energy.ARRAY["stt"]["write_voltage_v"].value
    rows = []
    for f in factors:
        with energy.overridden(array={("stt", "write_voltage_v"): v0 * math.sqrt(f)}):
            pk = peak(config, k)
            e = energy.estimate(config, measured_counters, ops=measured_ops,
                                columns_active=k * config.columns, host=measured_host,
                                host_cycles=measured_host_cycles).energy_j + sram_j
            rows.append({"factor": f,
                         "write_bit_fj": energy.ARRAY["stt"]["write_bit_fj"].value,
                         "peak_gops_per_w": pk["dense"]["gops_per_w"],
                         "measured_gops_per_w": measured_ops / e / 1e9})
    return rows


def table(config, compiled, rep: dict) -> dict:
    """The reproduction table of a ``jeit_stt`` report ``rep``
    (``sim.analysis.report.preset_report``)
    for its mat (``compiled.subarrays``)."""
    from sim.hw import sram
    if config.technology != "stt":
        raise ValueError(f"config must be an stt preset (jeit_stt), not {config.technology!r}")
    k = compiled.subarrays
    clock = config.clock_mhz * 1e6
    pk = peak(config, k)
    dots = sum(sram.program_events(ch.program)["move:skipz"] for st in compiled.stages
               for ch in st.chunks)
    skipped = rep["per_image_spread"].get("zs_tiles", {"mean": 0.0})["mean"]
    s = skipped / dots if dots else 0.0
    sparse = _mixed(pk, s, clock)
    pi, mem = rep["per_image"], rep["memories"]
    counters = {key: int(round(v)) for key, v in pi["counters"].items()}
    host = {key: int(round(v)) for key, v in pi["host"].items()}
    sweep = write_sweep(config, k, measured_counters=counters, measured_host=host,
                        measured_host_cycles=int(round(pi["host_cycles"])),
                        measured_ops=pi["ops"], sram_j=mem["dynamic_j"] + mem["leakage_j"])
    mat_mm2 = rep["area"]["mat_split"]["total_mm2"]
    measured_gops = pi["gops"]
    measured_gpw = mem["gops_per_w_with_memories"]
    rows = [
        {"figure": "peak GOPS, every lane busy, every operand non-zero",
         "ours": pk["dense"]["gops"], "seed": SEED_GOPS, "unit": "GOPS"},
        {"figure": "peak GOPS/W, every lane busy, every operand non-zero (micro-ops)",
         "ours": pk["dense"]["gops_per_w"], "seed": SEED_GOPS_PER_W, "unit": "GOPS/W"},
        {"figure": f"peak GOPS at the measured tile-skip fraction {100 * s:.3g}%",
         "ours": sparse["gops"], "seed": SEED_GOPS, "unit": "GOPS"},
        {"figure": f"peak GOPS/W at the measured tile-skip fraction {100 * s:.3g}% (micro-ops)",
         "ours": sparse["gops_per_w"], "seed": SEED_GOPS_PER_W, "unit": "GOPS/W"},
    ]
    alt = None
    if config.dataflow != "abs_diff":    # the seed's in-situ write-back route, on the same core
        alt = peak(config.with_dataflow("abs_diff"), k)
        rows += [
            {"figure": "peak GOPS, dataflow abs_diff (difference bits written back and "
                       "bit-counted), every operand non-zero",
             "ours": alt["dense"]["gops"], "seed": SEED_GOPS, "unit": "GOPS"},
            {"figure": "peak GOPS/W, dataflow abs_diff, every operand non-zero (micro-ops)",
             "ours": alt["dense"]["gops_per_w"], "seed": SEED_GOPS_PER_W, "unit": "GOPS/W"},
        ]
    rows += [
        {"figure": f"measured average GOPS, {rep['model']}, {rep['images']} image(s)",
         "ours": measured_gops, "seed": SEED_GOPS, "unit": "GOPS"},
        {"figure": f"measured average GOPS/W with the SRAMs, {rep['model']}",
         "ours": measured_gpw, "seed": SEED_GOPS_PER_W, "unit": "GOPS/W"},
        {"figure": f"measured average GOPS/W, micro-ops only, {rep['model']}",
         "ours": pi["gops_per_w"], "seed": SEED_GOPS_PER_W, "unit": "GOPS/W"},
    ]
    var = variation_row(rep["model"], config.dataflow)
    if var["ok"]:
        rows += var["rows"]
    chip = {
        "mats_for_seed_gops_at_peak": SEED_GOPS / pk["dense"]["gops"],
        "mats_for_seed_gops_measured": SEED_GOPS / measured_gops,
        "mat_area_mm2": mat_mm2,
        "area_for_seed_gops_at_peak_mm2": SEED_GOPS / pk["dense"]["gops"] * mat_mm2,
        "area_for_seed_gops_measured_mm2": SEED_GOPS / measured_gops * mat_mm2,
    }
    return {"subarrays": k, "mat_size": f"{k} x {config.rows} x {config.columns}",
            "peak": pk, "peak_abs_diff": alt, "dataflow": config.dataflow,
            "tile_dots_per_image": dots, "tile_dots_skipped_per_image": skipped,
            "peak_at_measured_sparsity": sparse, "rows": rows, "write_sweep": sweep,
            "chip": chip,
            "seed_source": "seed 000 abstract, 'Results and Discussions' and 'Conclusions': "
                           "32.31 GOPS, 494.56 GOPS/W at 133 MHz, 40 nm",
            "variation": var,
            "not_built": ("the seed's CIFAR-10 accuracy (its images are not available here: "
                          "the accuracy rows are on the report's model and data set)"
                          if var["ok"] else
                          f"accuracy under the seed's variation: {var['why']}")}
