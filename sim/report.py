"""Cycles, energy, throughput and area per preset, next to the seeds' published figures:
``python -m sim.report [--preset P ...] [--model fashion_addernet] [-n 2] [--backend rtl|model]``.

For each preset the tool runs the first ``n`` test images of the model on one core and writes
``<out>/report-<preset>.json``, ``<out>/report-<preset>-energy.png`` (energy per layer, stacked by
the seed-001 Fig. 13 classes), ``<out>/report-<preset>-latency.png`` (latency per layer, compute
vs host load) and, for all presets together, ``<out>/report.md``: one table, one row per preset,
with the seed's published figures, ours projected onto the seed's configuration, ours measured
on the shared workload, and why they differ.

What is measured
----------------
* Backend ``rtl`` (default): the generated core (``rtl.core.Core``) in Verilator or Icarus via
  :func:`sim.rtl_backend.run_images`; every stage output is compared with golden in the
  simulation. Backend ``model``: the same compiled program on the cycle-exact numpy core model
  (:func:`sim.compiler.run_compiled` with :class:`sim.core_model.CoreModel`), which gives
  bit-exactly the RTL's counters in a fraction of the time (the tests use it).
* Both are normalised to one record per stage (= per fused layer): the controller's counters
  (``rtl.isa.counter_names``), the host's array commands ``{write_row, erase, program}`` that
  loaded the stage's rows, and ``host_cycles`` := the number of those commands (the host port
  takes one row command per cycle). Loading the instruction memory, the requantization table
  and the weight buffer is configuration, done once per model and not per image: it is not
  counted (the RTL's own port-cycle count, which includes program loads, is kept in the JSON
  as ``rtl_port_cycles`` for reference).
* Counters are data-independent (the core does not skip zero operands, whatever
  ``config.zero_skip`` says: the compiler emits the same program for every image), but every
  figure is the mean over the ``n`` images anyway; ``data_independent`` in the JSON says
  whether the images' counters were indeed identical.

Energy and latency
------------------
Per stage, :func:`sim.energy.estimate` ``(config, counters, columns_active=config.columns,
host=..., host_cycles=..., ops=stage_ops)``: ``columns_active = config.columns`` because the
RTL core is ONE subarray (its own controller, its own reduction unit and PPU). Latency is
(controller cycles + host_cycles) / clock. Per image, the same call on the counters summed over
the stages (energy is linear in the counts, so it is the sum of the stages).

``stage_ops`` = 2 x (output elements of the golden compute layer) x (its fan-in): an L1 term
``|x - w|`` and its accumulation, or a multiply and its accumulation, are 2 ops (DESIGN.md). For
a convolution fused with a pool the count is the convolution's full output (the network's work,
as the papers count it), also where the pool floors (a 7 x 7 map pooled to 3 x 3): there the
core computes only the positions inside a pool window, and ``positions_computed`` in the JSON
says how many.

Projection and area
-------------------
The measured figures are those of one subarray. The *chip-scale projection* multiplies the
per-subarray throughput by ``config.subarrays`` (the preset's organisation, the seed's where
the seed gives one): every subarray runs its own image, perfectly in parallel, with no shared
bus, weight-buffer or controller bottleneck. That is an upper bound; energy per image and
GOPS/W do not change.

Area: the MTJ array of one subarray is ``sim.energy.array_area_mm2(config) / config.subarrays``.
When ``build/synth/<preset>.json`` (``make synth``, :mod:`rtl.synth`) exists and was made for the
same configuration, the periphery is :func:`sim.energy.periphery_area_mm2` on it: for one
subarray with its controller (the RTL core), and for the chip (every block per subarray, the
controller per mat). The synthesis counts have no logic minimisation (see :mod:`rtl.synth`), so
that periphery area is an upper bound. Without the file the area is the array's only, and the
report says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from golden import datasets
from golden.model import (
    COMPUTE_KINDS, ModelFormatError, bundled_model_path, infer_int, load_model,
)
from rtl.config import preset, preset_names
from rtl.isa import Opcode, counter_names
from sim import energy

from .util import UserError, write_json_atomic

__all__ = ["BACKENDS", "SEED_FIGURES", "stage_ops", "measure", "preset_report", "markdown",
           "main"]

REPO = Path(__file__).resolve().parent.parent
BACKENDS = ("rtl", "model")
SIMULATORS = ("verilator", "icarus")
HOST_KEYS = ("write_row", "erase", "program")
#: Which data set each bundled model was trained on (as ``sim.cli``).
MODEL_DATASET = {"fashion_addernet": "fashion_mnist", "digits_addernet": "digits"}
DATASETS = ("fashion_mnist", "digits")

# ----------------------------------------------------------------------------------------------
# The seeds' published figures, each with its seed file and section / table.

_S000 = "seed 000 (Wang et al., JEIT 2025, doi:10.11999/JEIT250627)"
_S001 = "seed 001 (Zhao et al., Sci China Inf Sci 2023, 66(4):142401)"
_S002 = "seed 002 (DIMA, SOT-MRAM depthwise CNN in-memory accelerator)"
_S003 = "seed 003 (IMAC, SOT-MRAM in-memory analog computing co-processor)"

#: preset -> {seed, paper, workload, figures: [{name, value, unit, source}], ...}.
SEED_FIGURES: dict[str, dict] = {
    "jeit_stt": {
        "seed": "000", "paper": _S000,
        "workload": "an AdderNet on CIFAR-10 (the abstract names no network), 40 nm CMOS, "
                    "133 MHz; array organisation not given",
        "figures": [
            {"name": "peak throughput", "value": 32.31, "unit": "GOPS",
             "source": "seed 000 abstract, 'Results and Discussions' and 'Conclusions' "
                       "(the paper's Table 2)"},
            {"name": "peak energy efficiency", "value": 494.56, "unit": "GOPS/W",
             "source": "seed 000 abstract, 'Results and Discussions' and 'Conclusions'"},
            {"name": "clock", "value": 133, "unit": "MHz",
             "source": "seed 000 abstract, 'Results and Discussions'"},
            {"name": "CIFAR-10 accuracy", "value": 90.66, "unit": "%",
             "source": "seed 000 abstract, 'Results and Discussions'"},
        ],
    },
    "nand_spin": {
        "seed": "001", "paper": _S001,
        "workload": "ImageNet CNNs: sec. 5.3 evaluates AlexNet / VGG 19 / ResNet 50; Table 3 "
                    "does not say which network its FPS is for; Fig. 13 is ResNet 50. 64 MB "
                    "array, 128-bit bus (sec. 5.2)",
        "figures": [
            {"name": "throughput", "value": 80.6, "unit": "FPS",
             "source": "seed 001 sec. 5.3, Table 3 ('Proposed')"},
            {"name": "capacity", "value": 64, "unit": "MB",
             "source": "seed 001 sec. 5.3, Table 3 (and sec. 5.2)"},
            {"name": "area", "value": 64.5, "unit": "mm^2",
             "source": "seed 001 sec. 5.3, Table 3"},
            {"name": "periphery area overhead on the array", "value": 8.9, "unit": "%",
             "source": "seed 001 sec. 5.3, 'Area'"},
        ],
        # Seed 001 sec. 5.3 'Energy/latency breakdown', Fig. 13 (ResNet 50), in % by class.
        "fig13_latency_pct": {"loading data": 38.4, "convolution": 33.9, "data transfer": 4.8,
                              "comparison/pooling": 13.2, "batch normalization": 4.4,
                              "quantization": 5.3},
        "fig13_energy_pct": {"loading data": 32.6, "convolution": 35.5, "data transfer": 4.9,
                             "comparison/pooling": 15.4, "batch normalization": 5.1,
                             "quantization": 6.5},
    },
    "dima_sot": {
        "seed": "002", "paper": _S002,
        "workload": "Add-Net (m = 4, 8-bit) vs a <1:8> CNN on SVHN resized to 40 x 40: 6 "
                    "bit-wise conv layers, 2 average pools, 2 MLP layers (sec. 4.4.1); 512 Mb "
                    "of 256 x 512 mats (sec. 4.4.2); results normalised to area (sec. 4.3)",
        "figures": [
            {"name": "energy efficiency vs the best ASIC (YodaNN-like)", "value": 1.4,
             "unit": "x", "source": "seed 002 abstract; sec. 4.5"},
            {"name": "speedup vs ASIC-64", "value": 15.7, "unit": "x",
             "source": "seed 002 abstract; sec. 4.6"},
            {"name": "energy efficiency vs the best processing-in-DRAM (1T1C-adder)",
             "value": 1.6, "unit": "x", "source": "seed 002 abstract; sec. 4.5"},
            {"name": "speedup vs the best processing-in-DRAM (1T1C-adder)", "value": 5.6,
             "unit": "x", "source": "seed 002 abstract; sec. 4.6"},
            {"name": "area overhead on the memory chip", "value": 2.8, "unit": "%",
             "source": "seed 002 sec. 4.3"},
        ],
    },
    "imac_sot": {
        "seed": "003", "paper": _S003,
        "workload": "CPU-IMAC: convolutions on a mobile CPU, FC layers on the analog SOT-MRAM "
                    "MLP; LeNet on MNIST and VGG on CIFAR-10 (abstract)",
        "figures": [
            {"name": "energy saving of CPU-IMAC, LeNet / MNIST", "value": 6.5, "unit": "%",
             "source": "seed 003 abstract"},
            {"name": "energy saving of CPU-IMAC, VGG / CIFAR-10", "value": 10.0, "unit": "%",
             "source": "seed 003 abstract"},
        ],
    },
}


# ----------------------------------------------------------------------------------------------
# Inputs

def _parse_n(text: str) -> int:
    try:
        n = int(text)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise UserError(f"-n must be an integer >= 1, not {text!r}")
    return n


def _check_presets(names) -> list:
    known = preset_names()
    out = []
    for name in names or known:
        if name not in known:
            raise UserError(f"--preset must be one of {', '.join(known)}, not {name!r}")
        if name not in out:
            out.append(name)
    return out


def _resolve_model(spec: str, dataset: str | None):
    """(model, model_path, data set name) for a bundled model name or a .npz path."""
    p = Path(spec)
    if p.suffix == ".npz":
        if not p.is_file():
            raise UserError(f"--model: no such model file {spec!r}")
        path, ds = p, MODEL_DATASET.get(p.stem)
    else:
        try:
            path = bundled_model_path(spec)
        except ValueError as e:
            raise UserError(f"--model: {e} (or give the path of a .npz model file)") from None
        ds = MODEL_DATASET.get(spec)
    if dataset is not None:
        if dataset not in DATASETS:
            raise UserError(f"--dataset must be one of {', '.join(DATASETS)}, not {dataset!r}")
        ds = dataset
    if ds is None:
        raise UserError(f"--dataset: cannot tell which data set {spec!r} belongs to; give "
                        f"--dataset {' or --dataset '.join(DATASETS)}")
    return load_model(path), path, ds


def _load_images(model, ds: str, n: int):
    try:
        x, y = datasets.load_dataset(ds, "test")
    except (ValueError, datasets.DatasetError) as e:
        raise UserError(str(e)) from None
    if x.shape[1:] != tuple(model.input_shape):
        raise UserError(f"--dataset: model {model.name!r} expects inputs "
                        f"{list(model.input_shape)}, data set {ds!r} has {list(x.shape[1:])}")
    if n > len(y):
        raise UserError(f"-n {n}: the {ds} test split has only {len(y)} images; give -n "
                        f"between 1 and {len(y)}")
    return x[:n], y[:n]


def _compile(model, name: str):
    from sim.compiler import compile_model
    config = preset(name)
    try:
        return config, compile_model(model, config)
    except UserError as e:          # CompileError
        raise UserError(f"--preset {name}: model {model.name!r} does not compile for it: "
                        f"{e}") from None


# ----------------------------------------------------------------------------------------------
# Operation counts

def stage_ops(model, layer_index: int) -> dict:
    """The golden compute layer ``layer_index``'s work: ``ops`` = 2 x out_elements x fan_in."""
    ly = model.layers[layer_index]
    if ly.kind not in COMPUTE_KINDS:
        raise ValueError(f"layer_index must name a compute layer, not {layer_index} "
                         f"({ly.kind})")
    out_shape = model.shapes()[layer_index + 1]
    w = ly.params["weight"]
    out_elements = math.prod(int(v) for v in out_shape)
    fan_in = math.prod(int(v) for v in w.shape[1:])
    return {"layer_index": layer_index, "kind": ly.kind, "out_shape": list(out_shape),
            "out_elements": out_elements, "fan_in": fan_in, "ops": 2 * out_elements * fan_in,
            "formula": "2 x out_elements x fan_in"}


def _positions_computed(model, stage) -> int:
    """Output elements the core computes for a stage: all, or those inside a fused pool's
    windows (2 x 2 stride 2: 4 per pooled output)."""
    shapes = model.shapes()
    if stage.pool is None:
        return math.prod(shapes[stage.layer_index + 1])
    return 4 * math.prod(shapes[stage.golden_index + 1])


# ----------------------------------------------------------------------------------------------
# Measuring

def _norm_stage(name, golden_index, counters, host, rtl_port_cycles=None) -> dict:
    names = counter_names()
    c = {k: int(counters.get(k, 0)) for k in names}
    h = {k: int(host.get(k, 0)) for k in HOST_KEYS}
    rec = {"name": name, "golden_index": int(golden_index), "counters": c, "host": h,
           "host_cycles": sum(h.values())}
    if rtl_port_cycles is not None:
        rec["rtl_port_cycles"] = int(rtl_port_cycles)
    return rec


def _measure_model(compiled, model, x) -> list:
    from sim.compiler import run_compiled
    from sim.core_model import CoreModel
    core = CoreModel(compiled.config)
    images = []
    for i, image in enumerate(x):
        res = run_compiled(compiled, image, core, load_weights=i == 0)
        stages = [_norm_stage(s.name, s.golden_index, s.micro_ops,
                              {"write_row": s.host_writes, "erase": s.host_erases,
                               "program": s.host_programs}) for s in res.stages]
        images.append({"logits": [int(v) for v in np.asarray(res.logits).ravel()],
                       "stages": stages})
    return images


def _measure_rtl(compiled, model_path, name, sim, x, quiet) -> list:
    from sim.rtl_backend import RtlRunError, run_images
    try:
        res = run_images(model_path=model_path, config=compiled.config, preset_name=name,
                         sim=sim, x=x, quiet=quiet)
    except RtlRunError as e:
        raise UserError(f"--preset {name}: the RTL run failed: {e}") from None
    images = []
    for im in res["images"]:
        stages = [_norm_stage(s["name"], s["golden_index"], s["counters"], s["host"],
                              s.get("host_cycles")) for s in im["stages"]]
        # run_images raises unless every stage of the image equalled golden in the simulation.
        images.append({"logits": [int(v) for v in im["logits"]], "stages": stages})
    if len(images) != len(x):
        raise UserError(f"--preset {name}: the RTL run returned {len(images)} of {len(x)} "
                        "images")
    return images


def measure(compiled, model, x, *, backend: str, model_path=None, preset_name: str = "",
            sim: str = "verilator", quiet: bool = True) -> list:
    """Run ``x`` on ``backend``; per image its logits, whether they equal golden
    (``golden.model.infer_int``) and the normalised stage records."""
    if backend == "model":
        images = _measure_model(compiled, model, x)
    else:
        images = _measure_rtl(compiled, model_path, preset_name, sim, x, quiet)
    golden = infer_int(model, x)
    want = [s.name for s in compiled.stages]
    for im, logits in zip(images, golden, strict=True):
        im["logits_equal_to_golden"] = im["logits"] == [int(v) for v in logits]
        got = [s["name"] for s in im["stages"]]
        if got != want:
            raise UserError(f"--preset {preset_name}: the {backend} run reported stages {got}, "
                            f"the compiled model has {want}")
    return images


# ----------------------------------------------------------------------------------------------
# Figures

def _average(values):
    """Mean of equal-shaped values: identical values stay as they are (exact), numbers are
    averaged, dicts per key, anything else is taken from the first."""
    first = values[0]
    if all(v == first for v in values[1:]):
        return first
    if isinstance(first, dict):
        return {k: _average([v[k] for v in values]) for k in first}
    if isinstance(first, (int, float)) and not isinstance(first, bool):
        if any(v is None for v in values):
            return None
        return sum(values) / len(values)
    return first


_KEEP = ("energy_j", "energy_per_class_j", "energy_per_op_j", "latency_s", "power_w",
         "cycles", "ops", "gops", "gops_per_w", "notes")


def _estimate(config, counters, host, ops) -> dict:
    rep = energy.estimate(config, counters, ops=ops, columns_active=config.columns, host=host,
                          host_cycles=sum(host.values()))
    d = rep.to_dict()
    out = {k: d[k] for k in _KEEP}
    clock_hz = config.clock_mhz * 1e6
    out["controller_cycles"] = int(counters["cycles"])
    out["host_cycles"] = int(sum(host.values()))
    out["compute_latency_s"] = counters["cycles"] / clock_hz
    out["host_latency_s"] = out["host_cycles"] / clock_hz
    return out


def _param_table(params: dict) -> dict:
    return {k: {"value": p.value, "unit": p.unit, "source": p.source}
            for k, p in params.items()}


def _energy_table(config) -> dict:
    return {
        "technology": config.technology,
        "array": _param_table(energy.ARRAY[config.technology]),
        "periphery": _param_table(energy.PERIPHERY),
        "columns_active": config.columns,
        "op_energy_fj": {op.name.lower(): energy.op_energy_fj(config, op, config.columns)
                         for op in Opcode},
        "op_class": {op.name.lower(): energy.OP_CLASS[op] for op in Opcode},
        "formula": "energy = sum over opcodes of count x op_energy_fj (over columns_active "
                   "lanes) + sum over host commands of count x op_energy_fj of that command "
                   "(one row of config.columns lanes); sim.energy module docstring",
    }


#: Configuration fields no block of ``rtl/`` reads (they steer the compiler, the energy model
#: and the reports): a gate-count file that differs from the preset only in these still holds.
_NON_HW_FIELDS = ("dataflow", "clock_mhz", "zero_skip")


def _load_gates(synth_dir: Path, name: str, config):
    """(gates or None, note) from ``synth_dir/<name>.json``."""
    path = Path(synth_dir) / f"{name}.json"
    if not path.is_file():
        return None, (f"{path} not found (run `make synth`): area is the MTJ array only, "
                      "without the periphery")
    try:
        gates = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the synthesis report ({e}); rerun `make synth` "
                        "or remove the file") from None
    made = gates.get("config") if isinstance(gates, dict) else None
    want = config.as_dict()
    differ = sorted(k for k in want if isinstance(made, dict) and made.get(k) != want[k])
    if [k for k in differ if k not in _NON_HW_FIELDS]:
        return None, (f"{path} was made for another configuration than preset {name!r} "
                      f"({', '.join(differ)} differ; rerun `make synth`): area is the MTJ "
                      "array only")
    try:
        energy.periphery_area_mm2(config, gates)
    except ValueError as e:
        raise UserError(f"{path}: not an rtl.synth report ({e}); rerun `make synth` or "
                        "remove the file") from None
    extra = "".join(f"; made with {k}={made[k]!r}, which the synthesized blocks do not "
                    f"depend on" for k in differ)
    return gates, (f"periphery from {path} (rtl.synth gate counts without logic "
                   f"minimisation: an upper bound{extra})")


def _area(config, gates, note: str) -> dict:
    one = dataclasses.replace(config, subarrays_per_mat=1, mats=1)
    sub_array = energy.array_area_mm2(config) / config.subarrays
    chip_array = energy.array_area_mm2(config)
    area = {"array_only": gates is None, "note": note,
            "subarray": {"array_mm2": sub_array, "periphery_mm2": None, "total_mm2": sub_array},
            "chip": {"array_mm2": chip_array, "periphery_mm2": None, "total_mm2": chip_array},
            "formula": "array: sim.energy.array_area_mm2(config) (capacity_bits x cell_f2 x "
                       "feature^2), / config.subarrays for one subarray; periphery: "
                       "sim.energy.periphery_area_mm2 on the rtl.synth gate counts, for one "
                       "subarray with its controller (config with 1 mat of 1 subarray) and for "
                       "the chip"}
    if gates is not None:
        for key, cfg in (("subarray", one), ("chip", config)):
            p = energy.periphery_area_mm2(cfg, gates)
            area[key]["periphery_mm2"] = p
            area[key]["total_mm2"] = area[key]["array_mm2"] + p
    return area


def preset_report(name: str, config, compiled, model, images, *, backend: str,
                  simulator: str | None, dataset: str, labels, gates=None,
                  gates_note: str = "") -> dict:
    """The report of one preset from the measured ``images`` (see the module docstring)."""
    clock_hz = config.clock_mhz * 1e6
    stages = []
    for si, st in enumerate(compiled.stages):
        ops = stage_ops(model, st.layer_index)
        measured = [{k: im["stages"][si][k] for k in
                     ("counters", "host", "host_cycles", "rtl_port_cycles")
                     if k in im["stages"][si]} for im in images]
        per_image = [_estimate(config, m["counters"], m["host"], ops["ops"]) for m in measured]
        tiles = -(-ops["fan_in"] // config.columns)
        stages.append({
            "name": st.name, "layer_index": st.layer_index, "golden_index": st.golden_index,
            "kind": st.kind, "route": st.route, "pool": st.pool, "chunks": len(st.chunks),
            "ops": ops, "positions_computed": _positions_computed(model, st),
            "lane_utilisation": ops["fan_in"] / (tiles * config.columns),
            "measured": measured,
            "data_independent": all(m["counters"] == measured[0]["counters"]
                                    and m["host"] == measured[0]["host"] for m in measured),
            "estimate": _average(per_image),
        })
    # Per image: one estimate on the counters summed over the stages.
    totals = []
    total_ops = sum(s["ops"]["ops"] for s in stages)
    for ii in range(len(images)):
        counters = dict.fromkeys(counter_names(), 0)
        host = dict.fromkeys(HOST_KEYS, 0)
        for s in stages:
            for k, v in s["measured"][ii]["counters"].items():
                counters[k] += v
            for k, v in s["measured"][ii]["host"].items():
                host[k] += v
        e = _estimate(config, counters, host, total_ops)
        e["counters"], e["host"] = counters, host
        totals.append(e)
    per_image = _average(totals)
    area = _area(config, gates, gates_note)
    sub_area = area["subarray"]["total_mm2"]
    measured_fig = {
        "basis": "one subarray (the RTL core: config.rows x config.columns, its controller, "
                 "reduction unit and PPU), one image at a time",
        "energy_j": per_image["energy_j"], "latency_s": per_image["latency_s"],
        "images_per_second": 1.0 / per_image["latency_s"],
        "gops": per_image["gops"], "gops_per_w": per_image["gops_per_w"],
        "power_w": per_image["power_w"], "area_mm2": sub_area,
        "gops_per_mm2": per_image["gops"] / sub_area,
        "area_is_array_only": area["array_only"],
    }
    n_sub = config.subarrays
    chip_area = area["chip"]["total_mm2"]
    projection = {
        "basis": f"chip-scale PROJECTION, an upper bound: the measured subarray's throughput x "
                 f"config.subarrays = {n_sub} ({config.mats} mats x {config.subarrays_per_mat} "
                 f"subarrays), each subarray on its own image, perfectly parallel (no shared "
                 f"bus, buffer or controller limits); energy per image and GOPS/W unchanged",
        "subarrays": n_sub,
        "capacity_mb": config.capacity_bits / 8 / 2 ** 20,
        "images_per_second": n_sub / per_image["latency_s"],
        "gops": per_image["gops"] * n_sub,
        "gops_per_w": per_image["gops_per_w"],
        "power_w": per_image["power_w"] * n_sub,
        "energy_per_image_j": per_image["energy_j"],
        "area_mm2": chip_area, "area_is_array_only": area["array_only"],
        "gops_per_mm2": per_image["gops"] * n_sub / chip_area,
    }
    lin = [s for s in stages if s["kind"].endswith("linear")]
    per_op = per_image["energy_per_op_j"]
    host_j = sum(per_op.get(f"host_{k}", 0.0) for k in HOST_KEYS)
    write_back_j = sum(per_op[k] for k in HOST_KEYS)
    shares = {
        "energy_pct": {k: 100 * v / per_image["energy_j"]
                       for k, v in per_image["energy_per_class_j"].items()},
        "host_load_energy_pct": 100 * host_j / per_image["energy_j"],
        "write_back_energy_pct": 100 * write_back_j / per_image["energy_j"],
        "latency_pct": {"compute (controller)": 100 * per_image["controller_cycles"]
                        / per_image["cycles"],
                        "loading data (host array commands)": 100 * per_image["host_cycles"]
                        / per_image["cycles"]},
        "fc_layers_energy_pct": 100 * sum(s["estimate"]["energy_j"] for s in lin)
                                / per_image["energy_j"],
        "mean_lane_utilisation": sum(s["lane_utilisation"] * s["ops"]["ops"] for s in stages)
                                 / total_ops,
    }
    return {
        "preset": name, "config": config.as_dict(), "model": model.name, "dataset": dataset,
        "split": "test", "images": len(images), "image_indices": list(range(len(images))),
        "labels": [int(v) for v in labels], "backend": backend, "simulator": simulator,
        "logits_equal_to_golden": [im["logits_equal_to_golden"] for im in images],
        "clock_hz": clock_hz,
        "method": {
            "columns_active": f"config.columns = {config.columns}: the RTL core is one subarray",
            "host_cycles": "number of host array commands (write_row + erase + program), one "
                           "row command per cycle; instruction, table and weight-buffer loads "
                           "are configuration, not counted",
            "ops": "2 x output elements x fan-in of each golden compute layer (a fused pool's "
                   "convolution: its full output)",
            "averaging": f"mean over {len(images)} image(s)",
        },
        "energy_table": _energy_table(config),
        "stages": stages,
        "per_image": per_image,
        "measured": measured_fig,
        "chip_projection": projection,
        "area": area,
        "shares": shares,
        "seed": SEED_FIGURES.get(name),
        "notes": per_image["notes"],
    }


# ----------------------------------------------------------------------------------------------
# Plots and the markdown table

def _short(stage_name: str) -> str:
    return stage_name.replace(" + ", "\n+ ")


def _plot_energy(rep: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stages = rep["stages"]
    x = np.arange(len(stages))
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    bottom = np.zeros(len(stages))
    for i, cls in enumerate(energy.CLASSES):
        vals = np.array([s["estimate"]["energy_per_class_j"][cls] for s in stages]) * 1e9
        if not vals.any():
            continue
        ax.bar(x, vals, bottom=bottom, label=cls, color=f"C{i}")
        bottom += vals
    ax.set_xticks(x, [_short(s["name"]) for s in stages], fontsize=7)
    ax.set_ylabel("energy per image (nJ)")
    ax.set_title(f"{rep['preset']}: {rep['model']}, energy per layer by class "
                 f"({rep['backend']}, one subarray)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _plot_latency(rep: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    stages = rep["stages"]
    x = np.arange(len(stages))
    comp = np.array([s["estimate"]["compute_latency_s"] for s in stages]) * 1e6
    host = np.array([s["estimate"]["host_latency_s"] for s in stages]) * 1e6
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    ax.bar(x, comp, label="compute (controller cycles)", color="C1")
    ax.bar(x, host, bottom=comp, label="host load (array row commands)", color="C0")
    ax.set_xticks(x, [_short(s["name"]) for s in stages], fontsize=7)
    ax.set_ylabel(f"latency per image (us at {rep['config']['clock_mhz']:g} MHz)")
    ax.set_title(f"{rep['preset']}: {rep['model']}, latency per layer "
                 f"({rep['backend']}, one subarray)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _g(v, digits: int = 3) -> str:
    """A number with ``digits`` significant digits, no exponent for ordinary magnitudes."""
    if v is None:
        return "n/a"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6 or a < 1e-3:
        return f"{v:.{digits - 1}e}"
    return f"{v:.{max(0, digits - 1 - int(math.floor(math.log10(a))))}f}"


def _si(v: float, unit: str) -> str:
    """``v`` (in ``unit``) with an SI prefix from p to (none), e.g. ``2.99 ms``."""
    for prefix, f in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("n", 1e-9)):
        if abs(v) >= f:
            return f"{_g(v / f)} {prefix}{unit}"
    return f"{_g(v / 1e-12)} p{unit}"


def _figures_text(seed: dict) -> str:
    lines = [f"{f['value']:g} {f['unit']} {f['name']} ({f['source']})" for f in seed["figures"]]
    lines.append(f"workload: {seed['workload']}")
    return "<br>".join(lines)


def _area_text(area: dict, gops: float) -> str:
    """``area``: one of the report's ``area`` entries (``subarray`` or ``chip``)."""
    a, p = area["array_mm2"], area["periphery_mm2"]
    text = f"area {_g(a)} mm^2 MTJ array ({_g(gops / a)} GOPS/mm^2)"
    if p is None:
        return text + ", periphery not counted (no gate counts)"
    return (text + f" + {_g(p)} mm^2 periphery, an upper bound ({_g(gops / (a + p))} "
            "GOPS/mm^2 on the sum)")


def _projected_text(rep: dict) -> str:
    p, pi = rep["chip_projection"], rep["per_image"]
    seed = rep["seed"] or {}
    lines = [f"PROJECTION x {p['subarrays']} subarrays ({_g(p['capacity_mb'])} MB): "
             f"{_g(p['gops'])} GOPS, {_g(p['gops_per_w'])} GOPS/W, "
             f"{_g(p['images_per_second'])} images/s, {_si(p['power_w'], 'W')}",
             _area_text(rep["area"]["chip"], p["gops"])]
    name = rep["preset"]
    if name == "jeit_stt":
        need = 32.31 / pi["gops"]
        lines.append(f"subarrays of ours needed for the published 32.31 GOPS: {_g(need)}")
    if name == "nand_spin":
        e, fig = rep["shares"]["energy_pct"], seed.get("fig13_energy_pct", {})
        lines.append("energy by class, ours vs Fig. 13(b): " + ", ".join(
            f"{k} {_g(e[k], 2)}% vs {fig.get(k, 0):g}%" for k in
            ("loading data", "convolution", "comparison/pooling", "quantization")))
        lat = rep["shares"]["latency_pct"]["loading data (host array commands)"]
        lines.append(f"latency share of loading data: {_g(lat, 2)}% vs Fig. 13(a) 38.4%")
    if name == "imac_sot":
        lines.append(f"energy share of the FC layers (what an IMAC-style offload could at most "
                     f"save): {_g(rep['shares']['fc_layers_energy_pct'], 2)}%")
    return "<br>".join(lines)


def _measured_text(rep: dict) -> str:
    m, pi = rep["measured"], rep["per_image"]
    return "<br>".join([
        f"{_si(pi['energy_j'], 'J')} / image, {_si(pi['latency_s'], 's')} / image "
        f"({pi['controller_cycles']:g} + {pi['host_cycles']:g} host cycles)",
        f"{_g(m['gops'])} GOPS, {_g(m['gops_per_w'])} GOPS/W, {_si(pi['power_w'], 'W')}",
        _area_text(rep["area"]["subarray"], m["gops"]),
    ])


def _why_text(rep: dict) -> str:
    cfg, sh, pi = rep["config"], rep["shares"], rep["per_image"]
    name = rep["preset"]
    host_e = sh["host_load_energy_pct"]
    host_t = sh["latency_pct"]["loading data (host array commands)"]
    common = [
        f"network: {rep['model']} on {rep['dataset']} ({_g(pi['ops'] / 1e6)} MOP / image), not "
        "the paper's network and data set",
        f"one subarray of {cfg['rows']} x {cfg['columns']} measured; the chip figure is a "
        "perfect-parallelism projection",
        f"host loading (every stage's input rows written into the array): {_g(host_t, 2)}% of "
        f"latency, {_g(host_e, 2)}% of energy",
        f"lanes busy on average {_g(100 * sh['mean_lane_utilisation'], 2)}% (fan-in / "
        "padded tile width: small first-layer kernels leave columns idle)",
    ]
    chip = rep["area"]["chip"]
    if chip["periphery_mm2"] is not None:
        common.append(f"periphery area = {_g(chip['periphery_mm2'] / chip['array_mm2'])} x the "
                      "MTJ array: the rtl.synth count holds every lane block (of every "
                      "dataflow) per subarray and a controller with its instruction memory as "
                      "flip-flops per mat, without logic minimisation (an upper bound)")
    if sh["write_back_energy_pct"]:
        common.append(f"abs-diff write-backs into the array (class 'loading data' in "
                      f"sim.energy): {_g(sh['write_back_energy_pct'], 2)}% of energy")
    if rep["notes"]:
        common.append("device operations slower than the clock (" + "; ".join(rep["notes"])
                      + "), but the core counts no stall cycles: latency is optimistic there")
    specific = {
        "jeit_stt": [
            "no zero skipping in the core (counters are data-independent); the paper's figures "
            "are peak values with sparsity-aware skipping",
            "abs_diff route: 4 n cycles and n write-backs per tile (STT write energy, "
            "ASSUMPTION 0.6 V / 10 ns: the seed gives none), vs the paper's single-cycle "
            "carry-chain full adder",
            "40 nm in the paper; array organisation of the projection is an ASSUMPTION "
            "(seed-001 subarrays and mats)",
        ],
        "nand_spin": [
            "the paper's FPS is for an ImageNet CNN (Table 3 does not say which), orders of "
            "magnitude more ops per frame than this model: frames per second do not compare, "
            "GOPS and the class shares do",
            "adder layers use the write-free route (ASSUMPTION: seed 001 has no L1 route); "
            "the paper's CNNs are multiply networks (AND + bit-count only)",
            "the paper's area has an 8.9% periphery overhead: its periphery is shared by many "
            "subarrays, ours is one full set per subarray",
            "the paper loads data over a 128-bit bus (38.4% of its latency); ours writes one "
            "128-column row per cycle, and the weights stay in the buffer",
            "no data transfer between subarrays, BN folded into the requantization: those "
            "Fig. 13 classes are 0 here",
        ],
        "dima_sot": [
            "the paper reports only ratios against its own ASIC / DRAM / ReRAM baselines; none "
            "is modelled here, so no ratio can be reproduced: our absolute numbers stand alone",
            "Add-Net's binarized depthwise-separable layers are not in this model; adder "
            "layers take the abs_diff (FA/FS) route",
            "SOT write: ASSUMPTION (seed-001 strip erase scaled to one MTJ)",
        ],
        "imac_sot": [
            "the paper's savings compare CPU-IMAC with a CPU; the analog MLP and the CPU are not "
            "modelled: every layer runs on the digital periphery here",
            "the FC-layer energy share is the most an offload of the FC layers could remove",
            "SOT-MRAM parameters: ASSUMPTION (the abstract gives none)",
        ],
    }
    return "<br>".join(f"- {t}" for t in common + specific.get(name, []))


def markdown(reports: list, command: str) -> str:
    """report.md: the side-by-side table and per-preset details."""
    r0 = reports[0]
    lines = [
        "# spinpim: measured vs published",
        "",
        f"Workload: `{r0['model']}` on the {r0['dataset']} test split, first {r0['images']} "
        f"image(s); backend `{r0['backend']}`"
        + (f" ({r0['simulator']})" if r0["simulator"] else "") + f". Command: `{command}`.",
        "",
        "*Measured* = one subarray (the RTL core), per image, host row loads included. "
        "*Projection* = measured per-subarray throughput x the preset's subarray count, "
        "assuming perfect parallelism over independent images: an upper bound. Ops = 2 per "
        "L1 term / MAC (and its accumulation), from the golden layer shapes. Energy: "
        "`sim.energy` (dynamic only; parameters and sources in each JSON's `energy_table`).",
        "",
        "| preset (seed) | published (source) | ours, projected on the seed's configuration "
        "| ours, measured on the shared workload | why they differ |",
        "|---|---|---|---|---|",
    ]
    for rep in reports:
        seed = rep["seed"]
        pub = _figures_text(seed) if seed else "n/a"
        sid = f" ({seed['seed']})" if seed else ""
        lines.append(f"| `{rep['preset']}`{sid} | {pub} | {_projected_text(rep)} | "
                     f"{_measured_text(rep)} | {_why_text(rep)} |")
    lines += ["", "## Per preset", ""]
    for rep in reports:
        pi, name = rep["per_image"], rep["preset"]
        lines += [f"### `{name}`", "",
                  f"Files: `report-{name}.json`, `report-{name}-energy.png`, "
                  f"`report-{name}-latency.png`. Logits equal to golden: "
                  f"{sum(rep['logits_equal_to_golden'])} / {rep['images']}. "
                  f"Area: {rep['area']['note']}.", "",
                  "| stage | ops | energy (nJ) | latency (us) | GOPS | GOPS/W |",
                  "|---|---|---|---|---|---|"]
        for s in rep["stages"]:
            e = s["estimate"]
            lines.append(f"| {s['name']} | {s['ops']['ops']} | {_g(e['energy_j'] * 1e9)} | "
                         f"{_g(e['latency_s'] * 1e6)} | {_g(e['gops'])} | "
                         f"{_g(e['gops_per_w'])} |")
        lines.append(f"| **image** | {pi['ops']} | {_g(pi['energy_j'] * 1e9)} | "
                     f"{_g(pi['latency_s'] * 1e6)} | {_g(pi['gops'])} | "
                     f"{_g(pi['gops_per_w'])} |")
        lines.append("")
        for s in rep["stages"]:
            done, full = s["positions_computed"], s["ops"]["out_elements"]
            if done != full:
                lines.append(f"{s['name']}: the ops count all {full} convolution outputs (the "
                             f"network's work); the core computes the {done} inside a pool "
                             f"window (the pool floors), so this stage's GOPS is "
                             f"{_g(full / done)} x the rate of work actually done.")
        cls = ", ".join(f"{k} {_g(v, 2)}%" for k, v in rep["shares"]["energy_pct"].items() if v)
        lines.append(f"Energy by class: {cls}.")
        if rep["notes"]:
            lines.append("Device timing: " + "; ".join(rep["notes"]) + ".")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Writing

def _tmp_for(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def _write_outputs(out: Path, reports: list, md: str) -> list:
    """Every file is rendered into a temp file first, then all are renamed into place."""
    staged = []             # (tmp, final)
    try:
        for rep in reports:
            for kind, plot in (("energy", _plot_energy), ("latency", _plot_latency)):
                final = out / f"report-{rep['preset']}-{kind}.png"
                tmp = _tmp_for(final)
                staged.append((tmp, final))
                plot(rep, tmp)
        final = out / "report.md"
        tmp = _tmp_for(final)
        staged.append((tmp, final))
        tmp.write_text(md)
        written = [write_json_atomic(out / f"report-{rep['preset']}.json", rep)
                   for rep in reports]
        mask = os.umask(0)
        os.umask(mask)
        for tmp, final in staged:
            os.chmod(tmp, 0o666 & ~mask)
            os.replace(tmp, final)
            written.append(final)
    finally:
        for tmp, _ in staged:
            if tmp.exists():
                tmp.unlink()
    return written


# ----------------------------------------------------------------------------------------------
# Command line

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.report",
                                description="Cycles, energy, GOPS, GOPS/W and area per preset, "
                                            "next to the seeds' published figures.")
    p.add_argument("--preset", action="extend", nargs="+", default=None,
                   help=f"presets (default all: {', '.join(preset_names())})")
    p.add_argument("--model", default="fashion_addernet",
                   help=f"bundled model ({', '.join(MODEL_DATASET)}) or a .npz model file")
    p.add_argument("--dataset", default=None,
                   help=f"{' or '.join(DATASETS)} (default: the bundled model's)")
    p.add_argument("-n", default="2", help="test images per preset (default 2)")
    p.add_argument("--backend", default="rtl",
                   help="rtl (the generated core in a simulator, default) or model (the "
                        "cycle-exact numpy core model)")
    p.add_argument("--sim", default="verilator", help="verilator or icarus (rtl backend)")
    p.add_argument("--out", default="build/reports", help="output directory")
    p.add_argument("--synth-dir", default=str(REPO / "build" / "synth"),
                   help="where `make synth` put <preset>.json gate counts")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    return p


def _summary(reports: list) -> str:
    lines = [f"{'preset':<10} {'energy/img':>11} {'latency/img':>11} {'GOPS':>8} "
             f"{'GOPS/W':>8} {'projected chip GOPS':>20}"]
    for r in reports:
        pi = r["per_image"]
        lines.append(f"{r['preset']:<10} {_si(pi['energy_j'], 'J'):>11} "
                     f"{_si(pi['latency_s'], 's'):>11} {_g(pi['gops']):>8} "
                     f"{_g(pi['gops_per_w']):>8} {_g(r['chip_projection']['gops']):>20}")
    return "\n".join(lines)


def run(args, argv) -> int:
    presets = _check_presets(args.preset)
    n = _parse_n(args.n)
    if args.backend not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, not {args.backend!r}")
    sim = None
    if args.backend == "rtl":
        if args.sim not in SIMULATORS:
            raise UserError(f"--sim must be one of {', '.join(SIMULATORS)}, not {args.sim!r}")
        from sim.rtl_backend import check_sim
        sim = check_sim(args.sim)
    model, model_path, ds = _resolve_model(args.model, args.dataset)
    x, y = _load_images(model, ds, n)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out must be a directory, not the file {str(out)!r}")
    # Compile for every preset and read the gate counts before anything runs.
    work = []
    for name in presets:
        config, compiled = _compile(model, name)
        gates, note = _load_gates(Path(args.synth_dir), name, config)
        work.append((name, config, compiled, gates, note))
    reports = []
    for name, config, compiled, gates, note in work:
        t0 = time.perf_counter()
        if not args.quiet:
            print(f"{name}: running {n} image(s) on the {args.backend} backend ...",
                  file=sys.stderr, flush=True)
        images = measure(compiled, model, x, backend=args.backend, model_path=model_path,
                         preset_name=name, sim=sim or "verilator", quiet=args.quiet)
        rep = preset_report(name, config, compiled, model, images, backend=args.backend,
                            simulator=sim, dataset=ds, labels=y, gates=gates, gates_note=note)
        rep["seconds"] = round(time.perf_counter() - t0, 2)
        reports.append(rep)
    command = shlex.join(["python", "-m", "sim.report", *argv])
    for rep in reports:
        rep["command"] = command
    try:
        written = _write_outputs(out, reports, markdown(reports, command))
    except OSError as e:
        raise UserError(f"--out {str(out)!r}: cannot write ({e.strerror or e})") from None
    print(_summary(reports))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        return run(args, argv)
    except (UserError, ModelFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
