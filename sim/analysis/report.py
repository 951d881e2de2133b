"""Cycles, energy, throughput and area per preset, next to the seeds' published figures:
``python -m sim.analysis.report [--preset P ...] [--model fashion_addernet] [-n 2]
[--backend rtl|model]
[--mat K] [--propose]``.

For each preset the tool runs the first ``n`` test images of the model on one mat and writes
``<out>/report-<preset>.json``, ``<out>/report-<preset>-energy.png`` (energy per layer, stacked by
the seed-001 Fig. 13 classes), ``<out>/report-<preset>-latency.png`` (latency per layer: on-chip
row building, compute, host port) and, for all presets together, ``<out>/report.md``: one
table, one row per preset, with the seed's published figures, ours projected onto the seed's
configuration, ours measured on the shared workload, and why they differ.

What is measured
----------------
The basis is ONE MAT of ``K`` subarrays (``--mat K``, default the preset's
``subarrays_per_mat``): ``rtl.core.Core(config, subarrays=K)``, K subarrays of ``config.rows x
config.columns`` in lock-step (a row of ``W = K * config.columns`` columns), one controller, one
accumulator per subarray, one PPU and its data memory. The model is compiled for that mat
(``sim.compile.compiler.compile_model(..., subarrays=K)``; with ``--propose`` for the preset
with every size the model needs raised, ``sim.compile.compiler.propose_config``, e.g. an Add-Net's
weight buffer on ``dima_sot``); every stage runs ``segmented`` (K
patches
side by side, one per subarray) or ``wide`` (one patch over the W columns).

* Backend ``rtl`` (default): the generated core in Verilator or Icarus via
  :func:`sim.flows.rtl_backend.run_images` ``(..., subarrays=K)``; every stage output is compared
  with
  golden in the simulation. Backend ``model``: the same compiled programs on the cycle-exact
  numpy core model (:func:`sim.compile.compiler.run_compiled` with
  ``sim.hw.core_model.CoreModel(config,
  subarrays=K)``), which gives bit-exactly the RTL's counters in a fraction of the time (the
  tests use it).
* Per image the host writes only the input image into the data memory (``host_words`` 32-bit
  words, one per port cycle) and runs each chunk's program; the programs build their own array
  rows ON CHIP (an erase of the chunk's strips on nand_spin, MOVE GATHERs from the data memory
  into the transpose buffer, WRITE_ROW / PROGRAM of its bit-planes) and the PPU writes every
  stage's outputs back into the data memory for the next stage's gathers. No array row comes
  from the host.
* Both backends are normalised to one record per stage (= per fused layer): the controller's
  counters (``rtl.isa.counter_names``), ``host = {"data_words": d}`` (the image's words,
  stage 0 only) and ``host_cycles`` := the host port cycles while the stage ran = ``d`` + the
  words of every chunk program the host loaded for it. A program is loaded only when it
  differs from the one in the instruction memory (``sim.flows.rtl_backend.CoreHost.load_program``),
  and the loaded program persists from one image to the next: at image 0 nothing is loaded,
  and each later image starts with the previous image's last program loaded
  (:func:`host_port_words` reproduces that rule for the model backend; for the rtl backend the
  RTL's own count is checked against it). Loading the weight buffer, the requantization table
  and the gather tables is configuration, done once per model and not per image: not counted.
  Unless the model's weights do not fit the buffer: the model is compiled with
  ``stream_weights=True`` (``sim.compile.weight_stream``; a model that fits compiles as
  without) and the streamed buffer words and requant entries of every image cross the chip's
  bus (``sim.compile.weight_stream.cost``): their bus cycles are added to each stage's host
  cycles (the RTL harness's port writes them one per cycle: checked, then replaced) and their
  energy is the split's row "weight streaming" (``weight_stream`` in the JSON).
* Counters are data-independent except with ``config.zero_skip`` (``jeit_stt``: a tile dot
  whose operands are all zero is skipped, ``docs/dataflows.rst``); every figure is the mean
  over the ``n`` images; ``data_independent`` in the JSON says whether the images' counters
  were identical.

Energy and latency
------------------
Per stage, :func:`sim.hw.energy.estimate` ``(config, counters, columns_active=K*config.columns,
host={"data_words": d}, host_cycles=..., ops=stage_ops)``: ``columns_active`` is the mat
width because the counters are one controller's, which drives the K subarrays in lock-step
(with seed 002's class split a class stage enables its own class's subarrays only, ``MOVE
SUBSEL``, and is charged over those: ``sim.compile.dima_map.stage_columns``; MOVE micro-ops are
charged once per mat, the image's words as one MOVE each, class "loading
data"; program loads cost port cycles, no modelled energy). Latency is (controller cycles +
host_cycles) / clock, the controller cycles including the core's stall cycles for device
timing (``stall_cycles``: the configuration's stall table, ``docs/datapath.rst``). Per image,
the same call on the counters summed over the stages (energy is linear in the counts, so it is
the sum of the stages). The controller cycles split into
*row building* (the erase and gather part of each chunk program: its static profile,
``sim.compile.compiler.program_profile``, which equals ``Chunk.gather_cycles``) and *compute* (the
rest).

``stage_ops`` = 2 x (output elements of the golden compute layer) x (its fan-in): an L1 term
``|x - w|`` and its accumulation, or a multiply and its accumulation, are 2 ops
(``docs/assumptions.rst``). For a convolution fused with a pool the count is the convolution's
full output (the network's work, as the papers count it), also where the pool floors (a 7 x 7
map pooled to 3 x 3): there the core computes only the positions inside a pool window, and
``positions_computed`` in the JSON says how many.

``lane_utilisation`` per stage = (fan-in x patches) / (W x tiles x row sets): a ``wide`` stage
has one row set per patch and T tiles of W columns; a ``segmented`` stage has one row set per
group of K patches (segment k = patch k, a tile of ``config.columns``), so a partial last group
and a fan-in below ``config.columns`` leave lanes idle.

Projection and area
-------------------
The measured figures are those of one mat. The *chip-scale projection* multiplies the per-mat
throughput by ``config.subarrays // K`` mats of ours: every mat runs its own image, perfectly in
parallel, with no shared bus or host bottleneck. That is an upper bound; energy per image and
GOPS/W do not change. The *chip model* (``sim.hw.chip``) puts the shared bus and the weight
loading into that projection. The *partitioned* section (:func:`partitioned`) runs the model the
other way on the same organisation: split by output channel over the mats of one bank
(``sim.compile.multi_mat``, counted by ``sim.analysis.multi_mat.run``; zero skipping measured per
slice on the run's images), one image at a time, beside the single mat and the chip, each row
with its energy basis and source class, and what crosses the bus uncharged said under it.

Area: the MTJ array of one mat is ``K x sim.hw.energy.array_area_mm2(config) / config.subarrays``.
When ``build/synth/<preset>.json`` (``make synth``, :mod:`rtl.synth`) exists and was made for the
same configuration, the periphery is :func:`sim.hw.energy.periphery_area_mm2` on it: for one mat
(every block per subarray x K, one controller), and for the chip (the mats of the projection).
The synthesis counts have no logic minimisation (see :mod:`rtl.synth`), so that periphery area
is an upper bound. Without the file the area is the array's only, and the report says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from golden import datasets
from golden.model import (
    COMPUTE_KINDS, ModelFormatError, bundled_model_path, infer_int, load_model,
)
from rtl.config import preset, preset_names
from rtl.isa import MoveOp, Opcode, counter_names, decode
from rtl.outputs import check_dir, check_file, interruptible, json_text, write_files
from sim.compile import bit_widths as _bw
from sim.hw import energy
from sim.hw.energy import HOST_DATA_WORDS

from sim.util import UserError, mat_range_help, parse_mat

__all__ = ["BACKENDS", "SEED_FIGURES", "SPREAD_KEYS", "spread", "stage_ops", "host_port_words",
           "row_build_profile", "measure", "preset_report", "partitioned", "single_terms",
           "markdown", "main"]

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ("rtl", "model")
SIMULATORS = ("verilator", "icarus")
#: Which data set each bundled model was trained on (as ``sim.cli``).
MODEL_DATASET = {"fashion_addernet": "fashion_mnist", "digits_addernet": "digits",
                 # the Add-Nets (seed 002) need --propose on dima_sot (its preset buffer)
                 "digits_addnet": "digits", "fashion_addnet": "fashion_mnist"}
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


def _compile(model, name: str, mat: int | None, propose: bool = False):
    from sim.compile.compiler import compile_model, propose_config
    config = preset(name)
    k = config.subarrays_per_mat if mat is None else mat
    try:
        if propose:     # --propose: every size the model needs raised (as the counting mode's)
            config = propose_config(model, config, subarrays=k, stream_weights=True)
        # Weights no buffer holds at once are streamed into it while the image runs (as
        # sim.analysis.counting --stream-weights does); a model that fits compiles as without.
        return config, compile_model(model, config, subarrays=k, stream_weights=True)
    except UserError as e:          # CompileError
        hint = "" if propose else " (--propose raises the sizes the model needs)"
        raise UserError(f"--preset {name} --mat {k}: model {model.name!r} does not compile for "
                        f"it: {e}{hint}") from None


# ----------------------------------------------------------------------------------------------
# Operation counts, host port words, row building

#: Layers that run as stages of their own (``sim.compile.layer_stages``): per output element, the
#: terms it combines and the formula of ``ops``. A pool counts one op (compare or add) per
#: window element, the residual add 2 per weighted term as a MAC does (ASSUMPTION: the
#: papers count no pooling ops; these follow the compute layers' rule of one op per term
#: combined and are small beside them).
_STANDALONE_OPS = {
    "max_pool2d": lambda ly, s: (int(ly.params["kernel"]) ** 2, "out_elements x kernel^2"),
    "avg_pool2d": lambda ly, s: (int(ly.params["kernel"]) ** 2, "out_elements x kernel^2"),
    "global_avg_pool2d": lambda ly, s: (int(s[1]) * int(s[2]), "out_elements x H x W"),
    "add": lambda ly, s: (2, "2 x out_elements x 2 (main path and shortcut, each weighted)"),
}


def stage_ops(model, layer_index: int) -> dict:
    """The golden layer ``layer_index``'s work: ``ops`` = 2 x out_elements x fan_in for a
    compute layer; a standalone pool or add: :data:`_STANDALONE_OPS`. A binarized
    ``bin_gconv2d`` term (seed 002: the weight's sign picks add or subtract) and its
    accumulation are 2 ops as a MAC's (ASSUMPTION: the project's one rule for every kind; the
    seed's Table 1 counts the add/sub alone, half of it)."""
    ly = model.layers[layer_index]
    if ly.kind in _STANDALONE_OPS:      # a stage of its own (sim.compile.layer_stages)
        in_shape, out_shape = model.shapes()[layer_index:layer_index + 2]
        out_elements = math.prod(int(v) for v in out_shape)
        terms, formula = _STANDALONE_OPS[ly.kind](ly, in_shape)
        return {"layer_index": layer_index, "kind": ly.kind, "out_shape": list(out_shape),
                "out_elements": out_elements, "fan_in": terms,
                "ops": 2 * out_elements * terms if ly.kind == "add" else out_elements * terms,
                "formula": formula}
    from sim.compile.grouped import GENERIC            # grouped: fan_in per group's output
    if ly.kind not in COMPUTE_KINDS and ly.kind not in GENERIC and ly.kind != "bin_gconv2d":
        raise ValueError(f"layer_index must name a compute layer or a standalone pool / add, "
                         f"not {layer_index} ({ly.kind})")
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


def host_port_words(compiled, images: int) -> list:
    """The host port's words (one per port cycle) for ``images`` consecutive images, per image
    and stage, as ``sim.flows.rtl_backend.CoreHost`` spends them: ``[[{"data_words": d,
    "program_words": p}, ... per stage], ... per image]``.

    ``d``: the image's data-memory words (``stages[0].in_size``) in stage 0, else 0. ``p``: the
    words of every chunk program loaded while the stage ran. A program is loaded only when it
    differs from the one in the instruction memory; that memory holds nothing before image 0
    and keeps an image's last program into the next image (so a model of one chunk loads its
    program once, at image 0).

    Raises
    ------
    ValueError
        ``images`` is not an int >= 0.
    """
    if isinstance(images, bool) or not isinstance(images, int) or images < 0:
        raise ValueError(f"images must be an int >= 0, not {images!r}")
    from sim.compile.multi_mat import program_words
    loaded = None
    out = []
    for _ in range(images):
        words, loaded = program_words(compiled, loaded)
        out.append([{"data_words": stage.in_size if si == 0 else 0, "program_words": w}
                    for si, (stage, w) in enumerate(zip(compiled.stages, words, strict=True))])
    return out


def row_build_profile(stage) -> tuple[int, dict]:
    """Controller cycles and counters of a stage's on-chip row building, all chunks: the erase
    and gather part of each chunk program (every instruction before the compute part's first
    ``MOVE SETPTR``), profiled by :func:`sim.compile.compiler.program_profile` as a program of its
    own
    (the HALT that profile needs is taken out again)."""
    from sim.compile.compiler import program_profile
    total = dict.fromkeys(counter_names(), 0)
    for chunk in stage.chunks:
        words = tuple(int(w) for w in chunk.program)
        bits = stage.config.isa_base_bits       # the word's format (wider with big memories)
        end = next((i for i, w in enumerate(words)
                    if (ins := decode(w, bits)).op is Opcode.MOVE
                    and ins.imm == MoveOp.SETPTR.value), None)
        if end is None:     # seed 001's in-memory post-processing (no dot product): none
            continue
        _, counts = program_profile(words[:end] + (words[-1],), stage.config)   # + the HALT
        counts["halt"] -= 1
        counts["cycles"] -= 1
        for k, v in counts.items():
            total[k] += v
    return total["cycles"], total


# ----------------------------------------------------------------------------------------------
# Measuring

def _stage_record(name, golden_index, counters, data_words: int, program_words: int,
                  zero_skip=None) -> dict:
    names = counter_names()
    return {"name": name, "golden_index": int(golden_index),
            "counters": {k: int(counters.get(k, 0)) for k in names},
            "host": {HOST_DATA_WORDS: int(data_words)},
            "host_program_words": int(program_words),
            "host_cycles": int(data_words) + int(program_words),
            # rtl.isa.ZERO_SKIP_COUNTERS of the stage (empty without config.zero_skip)
            "zero_skip": {k: int(v) for k, v in (zero_skip or {}).items()}}


def _measure_model(compiled, x) -> list:
    from sim.compile.compiler import run_compiled
    from sim.hw.core_model import CoreModel
    core = CoreModel(compiled.config, subarrays=compiled.subarrays)
    port = host_port_words(compiled, len(x))
    images = []
    for i, image in enumerate(x):
        res = run_compiled(compiled, image, core, load_weights=i == 0)
        stages = [_stage_record(s.name, s.golden_index, s.micro_ops, s.host_words,
                                p["program_words"], getattr(s, "zero_skip", {}))
                  for s, p in zip(res.stages, port[i], strict=True)]
        images.append({"logits": [int(v) for v in np.asarray(res.logits).ravel()],
                       "counters": {k: int(v) for k, v in res.counters.items()},
                       "host_words": int(res.host_words), "stages": stages})
    return images


def _measure_rtl(compiled, model_path, name, sim, x, quiet, trace_file=None) -> list:
    from sim.flows.rtl_backend import RtlRunError, run_images
    k = compiled.subarrays
    try:
        res = run_images(model_path=model_path, config=compiled.config, preset_name=name,
                         sim=sim, x=x, quiet=quiet, subarrays=k, trace_file=trace_file,
                         stream_weights=True)       # as _compile
    except RtlRunError as e:
        raise UserError(f"--preset {name} --mat {k}: the RTL run failed: {e}") from None
    if len(res["images"]) != len(x):
        raise UserError(f"--preset {name} --mat {k}: the RTL run returned "
                        f"{len(res['images'])} of {len(x)} images")
    port = host_port_words(compiled, len(x))
    from sim.compile import weight_stream as _ws
    # The harness writes a streamed buffer word or requant entry per port cycle; the report
    # charges the chip bus's cycles for them instead (_with_stream).
    loads = [a + b for a, b in zip(_ws.streamed_slots(compiled), _ws.streamed_entries(compiled),
                                   strict=True)]
    images = []
    for i, im in enumerate(res["images"]):
        if len(im["stages"]) != len(compiled.stages):
            raise UserError(f"--preset {name} --mat {k}: the RTL run reported "
                            f"{len(im['stages'])} stages, the compiled model has "
                            f"{len(compiled.stages)}")
        stages = []
        for si, (s, p) in enumerate(zip(im["stages"], port[i], strict=True)):
            data = int(im["host_words"]) if si == 0 else 0
            want = p["data_words"] + p["program_words"] + loads[si]
            if s["host_cycles"] != want:
                raise UserError(f"--preset {name} --mat {k}: image {i}, stage {s['name']}: the "
                                f"RTL's host port spent {s['host_cycles']} cycles, the report's "
                                f"rule (sim.analysis.report.host_port_words + streamed weight "
                                f"words) gives {want}")
            stages.append(_stage_record(s["name"], s["golden_index"], s["counters"], data,
                                        s["host_cycles"] - data - loads[si],
                                        s.get("zero_skip")))
        # run_images raises unless every stage of the image equalled golden in the simulation.
        images.append({"logits": [int(v) for v in im["logits"]],
                       "counters": {c: int(v) for c, v in im["counters"].items()},
                       "host_words": int(im["host_words"]), "stages": stages})
    return images


def measure(compiled, model, x, *, backend: str, model_path=None, preset_name: str = "",
            sim: str = "verilator", quiet: bool = True, trace_file=None) -> list:
    """Run ``x`` on ``backend`` (a mat of ``compiled.subarrays``); per image its logits,
    whether they equal golden (``golden.model.infer_int``), the run's counters and host words,
    and the normalised stage records (whose counters sum to the run's: checked).
    ``trace_file`` (rtl backend): count the toggles of the run there (:mod:`sim.hw.activity`)."""
    if backend == "model":
        images = _measure_model(compiled, x)
    else:
        images = _measure_rtl(compiled, model_path, preset_name, sim, x, quiet, trace_file)
    golden = infer_int(model, x)
    want = [s.name for s in compiled.stages]
    where = f"--preset {preset_name} --mat {compiled.subarrays}: the {backend} run"
    for i, (im, logits) in enumerate(zip(images, golden, strict=True)):
        im["logits_equal_to_golden"] = im["logits"] == [int(v) for v in logits]
        got = [s["name"] for s in im["stages"]]
        if got != want:
            raise UserError(f"{where} reported stages {got}, the compiled model has {want}")
        summed = dict.fromkeys(counter_names(), 0)
        for s in im["stages"]:
            for k, v in s["counters"].items():
                summed[k] += v
        if summed != {k: im["counters"].get(k, 0) for k in summed}:
            raise UserError(f"{where}: image {i}'s stage counters sum to {summed}, its counters "
                            f"are {im['counters']}")
        data = sum(s["host"][HOST_DATA_WORDS] for s in im["stages"])
        if data != im["host_words"]:
            raise UserError(f"{where}: image {i}'s stages count {data} host data words, the "
                            f"run {im['host_words']}")
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


#: The per-image figures whose spread over the images the report gives (:func:`spread`).
SPREAD_KEYS = ("energy_j", "latency_s", "cycles", "controller_cycles", "stall_cycles", "gops",
               "gops_per_w")


def spread(values) -> dict:
    """``{"min", "mean", "max", "std", "n"}`` of a list of numbers (``std``: the sample
    standard deviation, ddof = 1; 0.0 for one value)."""
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("values must hold at least one number")
    n = len(vals)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return {"min": min(vals), "mean": mean, "max": max(vals), "std": std, "n": n}


def _spreads(estimates: list, zero_skip: list) -> dict:
    """The spread of :data:`SPREAD_KEYS` of per-image ``estimates`` and of the zero-skipping
    counters (``rtl.isa.ZERO_SKIP_COUNTERS``, with ``zero_fraction`` = zs_zero /
    zs_operands) of per-image ``zero_skip`` dicts."""
    out = {key: spread([e[key] for e in estimates]) for key in SPREAD_KEYS}
    names = sorted({k for z in zero_skip for k in z})
    for key in names:
        out[key] = spread([z.get(key, 0) for z in zero_skip])
    if "zs_operands" in names:
        out["zero_fraction"] = spread([z.get("zs_zero", 0) / max(1, z.get("zs_operands", 0))
                                       for z in zero_skip])
    return out


_KEEP = ("energy_j", "energy_per_class_j", "energy_per_op_j", "latency_s", "power_w",
         "cycles", "ops", "gops", "gops_per_w", "notes")


def _estimate(config, counters, host, host_cycles, ops, *, lanes: int,
              row_build_cycles: int, gate: tuple | None = None) -> dict:
    rep = energy.estimate(config, counters, ops=ops, columns_active=lanes, host=host,
                          host_cycles=host_cycles)
    if gate is not None:            # (compiled, per-stage counters): seed 002's class gate
        from sim.compile.dima_map import gate_report
        rep = gate_report(rep, *gate)
    d = rep.to_dict()
    out = {k: d[k] for k in _KEEP}
    clock_hz = config.clock_mhz * 1e6
    controller = int(counters["cycles"])
    out["controller_cycles"] = controller
    out["stall_cycles"] = int(counters.get("stalls", 0))
    out["row_build_cycles"] = int(row_build_cycles)
    out["compute_cycles"] = controller - int(row_build_cycles)
    out["host_cycles"] = int(host_cycles)
    out["controller_latency_s"] = controller / clock_hz
    out["row_build_latency_s"] = out["row_build_cycles"] / clock_hz
    out["compute_latency_s"] = out["compute_cycles"] / clock_hz
    out["host_latency_s"] = out["host_cycles"] / clock_hz
    return out


def _with_stream(est: dict, part: dict) -> dict:
    """An :func:`_estimate` (its host cycles already holding the streamed words' bus cycles)
    with the streamed weights' energy (``sim.compile.weight_stream.cost``: buffer and requant
    table writes + bus wires) added to the energy, the class "loading data", the op
    ``host_weight_stream``, power and GOPS/W; unchanged when nothing is streamed."""
    est = dict(est)
    est["weight_stream_cycles"] = int(part["bus_cycles"])
    est["weight_stream_j"] = float(part["energy_j"])
    if not part["slots"] and not part["entries"]:
        return est
    return energy.with_loading(est, "host_weight_stream", part["energy_j"])


def _param_table(params: dict) -> dict:
    return {k: {"value": p.value, "unit": p.unit, "source": p.source}
            for k, p in params.items()}


def _energy_table(config, lanes: int) -> dict:
    return {
        "technology": config.technology,
        "array": _param_table(energy.ARRAY[config.technology]),
        "periphery": _param_table(energy.PERIPHERY),
        "columns_active": lanes,
        "op_energy_fj": {op.name.lower(): energy.op_energy_fj(config, op, lanes)
                         for op in Opcode},
        "host_data_word_fj": energy.op_energy_fj(config, Opcode.MOVE, config.columns),
        "op_class": {op.name.lower(): energy.OP_CLASS[op] for op in Opcode},
        "formula": "energy = sum over opcodes of count x op_energy_fj over columns_active = K "
                   "x config.columns lanes (the mat in lock-step; MOVE once per mat) + host "
                   "data words x host_data_word_fj (a MOVE: one word over the mat's bus), class "
                   "'loading data'; sim.hw.energy module docstring",
    }


#: Configuration fields no block of ``rtl/`` reads (they steer the compiler, the energy model
#: and the reports): a gate-count file that differs from the preset only in these still holds.
_NON_HW_FIELDS = ("dataflow", "clock_mhz")


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
    # As JSON reads it back (routes a list, not a tuple): a tuple never equals the file's list.
    want = json.loads(json.dumps(config.as_dict()))
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


def _memories(config, compiled, images, per_image) -> dict:
    """The core's memories per image (:mod:`sim.hw.sram`): sizes, accesses, energy, leakage over
    the image's latency, area; and the image's energy and GOPS/W with them."""
    from sim.hw import sram
    counters = {key: int(round(v)) for key, v in per_image["counters"].items()}
    program_words = round(sum(sum(s["host_program_words"] for s in im["stages"])
                              for im in images) / len(images))
    acc = sram.access_counts(compiled, counters,
                             host_data_words=int(round(per_image["host"][HOST_DATA_WORDS])),
                             host_program_words=program_words,
                             host_reads=len(images[0]["logits"]))
    rep = sram.memory_report(config, compiled.subarrays, acc, per_image["latency_s"])
    total = per_image["energy_j"] + rep["dynamic_j"] + rep["leakage_j"]
    rep["energy_with_memories_j"] = total
    rep["gops_per_w_with_memories"] = per_image["ops"] / total / 1e9
    return rep


def _chip(config, compiled, images, per_image: dict, memories: dict,
          mat_area_mm2: float) -> dict:
    """:func:`sim.hw.chip.chip_model` (and its bus-width sweep) from the mat's figures."""
    from sim.hw import chip
    program_words = sum(sum(s["host_program_words"] for s in im["stages"])
                        for im in images) / len(images)
    figures = dict(latency_s=per_image["latency_s"],
                   energy_j=memories["energy_with_memories_j"], ops=per_image["ops"],
                   data_words=per_image["host"][HOST_DATA_WORDS], program_words=program_words,
                   mat_area_mm2=mat_area_mm2)
    out = chip.chip_model(config, compiled, **figures)
    out["bus_sweep"] = chip.bus_sweep(config, compiled, **figures)
    return out


def _energy_split(config, per_image: dict, memories: dict, logic: dict | None = None) -> dict:
    """Energy per image split into MRAM read / write, SRAM dynamic, CMOS logic, bus and
    leakage, each with the source class of what it rests on (``sim.hw.energy.SPLIT_ROWS``);
    with ``logic`` (:func:`sim.hw.activity.logic_energy` of the run) the CMOS logic row is the
    measured activity's and the logic leakage is counted, the gate-count estimate kept in
    ``cmos_comparison``."""
    if logic is not None:
        from sim.hw.activity import logic_split
        return logic_split(_energy_split(config, per_image, memories), per_image, logic)
    e = per_image["energy_split_j"]
    # MRAM read and write: seed 001 sec. 5.1 figures on nand_spin; elsewhere the read is
    # derived from them (and the read-voltage / device ASSUMPTIONs), the write assumed.
    seeded = config.technology == "nand_spin"
    cls = {"MRAM read": "seed" if seeded else "derived",
           "MRAM write": "seed" if seeded else "assumption",
           "CMOS logic": "assumption", "bus": "assumption"}
    rows = [{"name": k, "energy_j": e[k], "source": energy.SPLIT_ROWS[k], "class": cls[k]}
            for k in e]
    if per_image.get("weight_stream_j"):
        rows.append({"name": "weight streaming", "energy_j": per_image["weight_stream_j"],
                     "source": "sim.compile.weight_stream.cost: the streamed buffer words and "
                               "requant entries' SRAM writes (calibrated) + the bus wires' "
                               "bits x wire_fj_per_bit_mm x wire length (ASSUMPTION)",
                     "class": "assumption"})
    rows.append({"name": "SRAM dynamic", "energy_j": memories["dynamic_j"],
                 "source": "calibrated: sim.hw.sram fit to Horowitz ISSCC 2014 (45 nm) SRAM "
                           "access energies; write = read (ASSUMPTION)", "class": "calibrated"})
    rows.append({"name": "leakage (SRAM)", "energy_j": memories["leakage_j"],
                 "source": "calibrated: sim.hw.sram leakage_pw_per_bit (least squares fit to "
                           "OpenRAM's characterised FreePDK45 SRAM macros, "
                           "sim.hw.sram.OPENRAM_FREEPDK45_LEAKAGE) x bits x latency",
                 "class": "calibrated"})
    rows.append({"name": "leakage (CMOS logic)", "energy_j": None,
                 "source": "not modelled yet (issue 16 item 3: activity and leakage of the "
                           "synthesised logic)", "class": "not modelled"})
    total = sum(r["energy_j"] or 0.0 for r in rows)
    return {"rows": rows, "total_j": total,
            "gops_per_w": per_image["ops"] / total / 1e9,
            "note": "MRAM leakage: none (non-volatile); the rows sum to the energy per image "
                    "with the memories (per_image energy_j + memories dynamic_j + leakage_j)"}


def _headline(per_image: dict, memories: dict, split: dict, logic_energy: dict | None,
              activity: dict | None, logic: dict | None) -> dict:
    """The energy per image and GOPS/W the report leads with, and the basis of each figure.

    With a logic energy from activity (:func:`sim.hw.activity.logic_energy`: the run's toggles or
    a recorded measurement, and a cached synthesis), the headline is the energy split's
    total: micro-ops with the CMOS logic row replaced by the activity-based switching energy,
    + logic leakage + SRAM dynamic and leakage. Without one, the gate-count CMOS estimate
    (ASSUMPTION) + SRAM, logic leakage not counted. Both are kept as rows (``rows``), with
    the micro-op-only figure, so the bases can be compared. Writes the headline into
    ``memories['energy_with_memories_j']`` / ``gops_per_w_with_memories`` (what the chip
    model and the markdown use) and keeps the gate-count total there as
    ``energy_with_memories_gate_count_j``."""
    ops = per_image["ops"]
    gate_total = per_image["energy_j"] + memories["dynamic_j"] + memories["leakage_j"]
    rows = [{"name": "micro-ops only", "energy_j": per_image["energy_j"],
             "basis": "sim.hw.energy.estimate: MRAM read/write, gate-count CMOS logic "
                      "(ASSUMPTION), bus; no SRAM, no leakage"},
            {"name": "gate-count logic + memories", "energy_j": gate_total,
             "basis": "micro-ops (CMOS logic = textbook gates per lane x activity 1/2 x "
                      "gate_toggle_fj, ASSUMPTION) + SRAM dynamic + SRAM leakage; logic "
                      "leakage not counted"}]
    if logic_energy is not None:
        recorded = bool(activity and activity.get("recorded"))
        src = (activity["basis"] if recorded else
               "toggles of this run's RTL simulation (" + activity["file"] + ")")
        how = "recorded measurement" if recorded else "measured"
        cells = "synthesised cell area"
        if logic and logic.get("fitted"):      # no synthesis at this K: the calibrated fit
            cells = f"cell area {logic['fitted']['label']} (calibrated)"
        basis = (f"activity-based logic energy ({how}: {src}) x {cells} x "
                 f"switch_fj_per_um2 + logic leakage ({cells} x "
                 "leak_nw_per_um2) + SRAM dynamic + SRAM leakage + MRAM and bus micro-ops")
        rows.append({"name": "activity-based logic + leakage + memories",
                     "energy_j": split["total_j"], "basis": basis})
        energy_j, cls = split["total_j"], "recorded activity" if recorded else "measured activity"
    else:
        why = ("no cached synthesis of this core (make synth PRESET=<preset> MAT=<K>) and "
               "no committed one or calibrated fit (sim/analysis/synth_fit.json)"
               if logic is None else "no toggle count (model backend without a recorded "
               "measurement for this core, --no-activity or --sim icarus)")
        basis = ("gate-count CMOS logic estimate (ASSUMPTION) + SRAM dynamic + SRAM leakage; "
                 f"logic leakage not counted ({why})")
        energy_j, cls = gate_total, "gate-count estimate"
    rows.append(_leakage_upper_row(energy_j, memories))
    for r in rows:
        r["gops_per_w"] = ops / r["energy_j"] / 1e9
    memories["energy_with_memories_gate_count_j"] = gate_total
    memories["gops_per_w_with_memories_gate_count"] = ops / gate_total / 1e9
    memories["energy_with_memories_j"] = energy_j
    memories["gops_per_w_with_memories"] = ops / energy_j / 1e9
    memories["headline_basis"] = basis
    return {"energy_j": energy_j, "gops_per_w": ops / energy_j / 1e9, "basis": basis,
            "kind": cls, "rows": rows}


def _leakage_upper_row(energy_j: float, memories: dict) -> dict:
    """The sensitivity row of the headline: its energy with the SRAM leakage at its upper bound
    (``sim.hw.sram.PARAMS['leakage_pw_per_bit_upper']`` instead of ``leakage_pw_per_bit``;
    the leakage is linear in it, so the SRAM leakage energy scales by their ratio)."""
    from sim.hw import sram
    central = sram.PARAMS["leakage_pw_per_bit"].value
    upper = sram.PARAMS["leakage_pw_per_bit_upper"].value
    return {"name": "sensitivity: SRAM leakage at its upper bound",
            "energy_j": energy_j + memories["leakage_j"] * (upper / central - 1.0),
            "basis": f"the headline with the SRAM leakage at {upper / 1e3:.3g} nW per bit "
                     "(sim.hw.sram leakage_pw_per_bit_upper: NanGate FreePDK45 low-threshold "
                     "leakage per um of OFF width x the bitcell's OFF width, an upper bound) "
                     f"instead of {central / 1e3:.3g} (the OpenRAM FreePDK45 macros' fit)",
            "sensitivity": True}


def _rel(path) -> str:
    """``path`` relative to the project (the JSON and the report name no absolute path of
    this machine), or as given when it lies outside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(REPO))
    except ValueError:
        return str(p)


def _sources(config) -> dict:
    """Every constant the figures of ``config`` rest on, with its source class
    (:mod:`sim.hw.sources`)."""
    from sim.hw import sources
    rows = sources.source_rows(config.technology)
    return {"rows": rows, "class_counts": sources.class_counts(rows),
            "classes": list(sources.SOURCE_CLASSES)}


def _rerun(config, compiled, model, image):
    """``rerun(stall_table)``: the counters of ``image`` on the cycle model of ``config`` with
    that stall table (None: the preset's), compiled again for it; memoised."""
    from sim.compile.compiler import compile_model, run_compiled
    from sim.hw.core_model import CoreModel
    done = {}

    def run(table):
        key = None if table is None else tuple(sorted(table.items()))
        if key not in done:
            cfg = config if table is None else dataclasses.replace(config, stall_table=table)
            comp = compile_model(model, cfg, subarrays=compiled.subarrays)
            res = run_compiled(comp, image, CoreModel(cfg, subarrays=compiled.subarrays))
            done[key] = {k: int(v) for k, v in res.counters.items()}
        return done[key]
    return run


def _sens_logic(activity, logic, blocks, per_image):
    """The inputs :func:`sim.analysis.sensitivity.figures` needs to recompute the activity-based
    logic energy and leakage under moved constants, or None (the headline is then the
    gate-count estimate's)."""
    if activity is None or logic is None:
        return None
    from sim.analysis.synth import block_areas
    return {"block_act": activity["blocks"], "flat_area_um2": logic["area_um2"],
            "block_area_um2": None if blocks is None else block_areas(blocks),
            "cycles": int(round(per_image["cycles"]))}


def _sensitivity(config, compiled, model, per_image: dict, memories: dict,
                 first_image=None, logic=None) -> dict:
    """:func:`sim.analysis.sensitivity.sensitivity` on the image's (mean, rounded) counters; a moved
    stall table is rerun on the cycle model with ``first_image``."""
    from sim.analysis import sensitivity
    rerun = None if first_image is None else _rerun(config, compiled, model, first_image)
    counters = {key: int(round(v)) for key, v in per_image["counters"].items()}
    host = {k: int(round(v)) for k, v in per_image["host"].items()}
    acc = {m["name"]: {"reads": m["reads"], "writes": m["writes"],
                       "derived": m["accesses_derived"]} for m in memories["memories"]}
    stream = None
    if per_image.get("weight_stream_j"):     # recomputed under every moved constant
        from sim.compile import weight_stream as _ws

        def stream():
            return _ws.cost(compiled)["energy_j"]
    return sensitivity.sensitivity(config, subarrays=compiled.subarrays, counters=counters,
                                   host=host, host_cycles=int(round(per_image["host_cycles"])),
                                   ops=per_image["ops"], accesses=acc, rerun=rerun,
                                   logic=logic, stream=stream)


def _logic_energy(activity, logic, blocks, per_image):
    """:func:`sim.hw.activity.logic_energy` of one image from the traced run's ``activity``
    (block activities) and the cached syntheses, or None without them."""
    if activity is None or logic is None:
        return None
    from sim.hw import activity as act
    from sim.analysis.synth import block_areas
    le = act.logic_energy(activity["blocks"], flat_area_um2=logic["area_um2"],
                          block_area_um2=None if blocks is None else block_areas(blocks),
                          cycles=int(round(per_image["cycles"])),
                          latency_s=per_image["latency_s"], ops=per_image["ops"])
    if logic.get("fitted"):     # no synthesis at this mat: the calibrated per-block fit
        le["cell_area_basis"] = f"cell area {logic['fitted']['label']} (calibrated fit)"
    return le


def _trace_path(name: str, k: int, sim: str) -> Path:
    """Where the report's RTL run counts its toggles (:mod:`sim.hw.activity`)."""
    ext = "saif" if sim == "verilator" else "vcd"
    return REPO / "build" / "activity" / f"{name}-mat{k}-{sim}.{ext}"


def _read_activity(path: Path) -> dict:
    """Block activities of a toggle file (:func:`sim.hw.activity.block_activity`)."""
    from sim.hw import activity as act
    toggles = act.read_toggles(path)
    cycles = act.clock_cycles(toggles)
    return {"file": _rel(path), "simulated_cycles": cycles,
            "blocks": act.block_activity(toggles, cycles),
            "basis": "every clock cycle of the RTL run (host loading of the weights, tables "
                     "and programs included), toggles of every RTL signal bit below the core "
                     "(Verilator: SAIF, --trace-saif; Icarus: VCD)"}


def _load_logic(synth_dir: Path, name: str, config, k: int):
    """The cached whole-core synthesis (:mod:`sim.analysis.synth`) of ``name`` at K = ``k``, or
    None."""
    from sim.analysis import synth
    return synth.load_cached(Path(synth_dir), name, config, k)


def _area(config, k: int, gates, note: str, *, memories: dict | None = None,
          logic: dict | None = None) -> dict:
    mats = config.subarrays // k
    sub_mm2 = energy.array_area_mm2(config) / config.subarrays
    mat_mm2 = sub_mm2 * k
    area = {"array_only": gates is None, "note": note,
            "mat": {"subarrays": k, "array_mm2": mat_mm2, "periphery_mm2": None,
                    "total_mm2": mat_mm2},
            "chip": {"mats": mats, "subarrays": mats * k, "array_mm2": mat_mm2 * mats,
                     "periphery_mm2": None, "total_mm2": mat_mm2 * mats},
            "formula": "array: sim.hw.energy.array_area_mm2(config) (capacity_bits x cell_f2 x "
                       "feature^2) / config.subarrays x K for one mat; periphery: "
                       "sim.hw.energy.periphery_area_mm2 on the rtl.synth gate counts for one mat "
                       "(a config of 1 mat of K subarrays: every block x K, one controller); "
                       "chip: the projection's mats x one mat"}
    if gates is not None:
        mat_cfg = dataclasses.replace(config, subarrays_per_mat=k, mats=1)
        p = energy.periphery_area_mm2(mat_cfg, gates)
        area["mat"]["periphery_mm2"] = p
        area["mat"]["total_mm2"] = mat_mm2 + p
        area["chip"]["periphery_mm2"] = p * mats
        area["chip"]["total_mm2"] = (mat_mm2 + p) * mats
    # The split a reviewer reads: MTJ array, SRAM macros (sim.hw.sram), minimised logic
    # (sim.analysis.synth: the core as instantiated, Yosys + ABC, memories as macros).
    sram_mm2 = None if memories is None else memories["area_mm2"]
    split = {"array_mm2": mat_mm2, "sram_mm2": sram_mm2, "logic_mm2": None,
             "logic_nand2_eq": None, "logic_note": "no cached synthesis of this core (run "
             "`make synth PRESET=<preset> MAT=<K>`, sim.analysis.synth) and no committed one "
             "or calibrated fit (sim/analysis/synth_fit.json): logic not counted"}
    if logic is not None:
        from sim.analysis import synth
        split["logic_mm2"] = synth.logic_area_um2(logic) * 1e-6
        split["logic_nand2_eq"] = logic["nand2_eq"]
        from sim.hw import sram
        listed = sorted((m.rtl, m.words, m.bits) for m in sram.core_memories(config, k)
                        if m.kind == "sram")
        fitted = logic.get("fitted")
        if fitted:          # no synthesis at this K: the calibrated per-block fit, labelled
            split["macros_equal_sram_list"] = None
            split["logic_class"] = fitted["class"]
            split["logic_note"] = (f"{fitted['label']}: {logic['nand2_eq']:.0f} NAND2 eq "
                                   f"(NanGate 45 nm cell areas) / placement density, the sum "
                                   f"of the blocks' cell areas; {fitted['source']}")
        else:
            split["macros_equal_sram_list"] = listed == sorted(
                (m["name"], m["words"], m["bits"]) for m in logic["macros"])
            split["logic_class"] = "derived"
            split["logic_note"] = (f"{logic['tool']}, {logic['cell_count']} cells, "
                                   f"{logic['nand2_eq']:.0f} NAND2 eq (NanGate 45 nm cell "
                                   "areas) / placement density; memories as macros, MTJ "
                                   "arrays as blackboxes")
    parts = [v for v in (mat_mm2, sram_mm2, split["logic_mm2"]) if v is not None]
    split["total_mm2"] = sum(parts)
    split["periphery_pct_of_total"] = (100 * (split["total_mm2"] - mat_mm2)
                                       / split["total_mm2"])
    area["mat_split"] = split
    area["chip_split"] = {key: (None if v is None else v * mats)
                          for key, v in split.items() if key.endswith("_mm2")}
    return area


def _op_energy_j(config, counts: dict, ops, lanes: int) -> float:
    """Energy of ``counts[op]`` issues of each of ``ops`` over ``lanes`` columns."""
    return sum(counts[op.name.lower()] * energy.op_energy_fj(config, op, lanes)
               for op in ops) * 1e-15


_ARRAY_WRITES = (Opcode.WRITE_ROW, Opcode.ERASE, Opcode.PROGRAM)


def preset_report(name: str, config, compiled, model, images, *, backend: str,
                  simulator: str | None, dataset: str, labels, gates=None,
                  gates_note: str = "", logic: dict | None = None, first_image=None,
                  activity: dict | None = None, blocks: dict | None = None) -> dict:
    """The report of one preset from the measured ``images`` (see the module docstring);
    ``first_image``: the input of image 0, which the sensitivity study reruns on the cycle
    model when a moved device time changes the stall table (:mod:`sim.analysis.sensitivity`)."""
    clock_hz = config.clock_mhz * 1e6
    k, lanes = compiled.subarrays, compiled.width
    from sim.compile import dima_map as _dm     # seed 002's class gate: a stage's columns
    from sim.compile import weight_stream as _ws
    stream = _ws.cost(compiled)     # streamed weights per image: bus cycles and energy
    stages = []
    for si, st in enumerate(compiled.stages):
        ops = stage_ops(model, st.layer_index)
        rb_cycles, rb_counters = row_build_profile(st)
        rb = energy.estimate(config, rb_counters,
                             columns_active=_dm.stage_columns(st, lanes, config.columns))
        measured = [{key: im["stages"][si][key] for key in
                     ("counters", "host", "host_program_words", "host_cycles", "zero_skip")}
                    for im in images]
        part = stream["per_stage"][si]
        per_image = [_with_stream(_estimate(config, m["counters"], m["host"],
                                            m["host_cycles"] + part["bus_cycles"], ops["ops"],
                                            lanes=_dm.stage_columns(st, lanes, config.columns),
                                            row_build_cycles=rb_cycles), part)
                     for m in measured]
        row_sets = sum(c.groups for c in st.chunks)
        stages.append({
            "name": st.name, "layer_index": st.layer_index, "golden_index": st.golden_index,
            "kind": st.kind, "route": st.route, "pool": st.pool, "mode": st.mode,
            "tile_width": st.tile_width, "tiles": st.tiles, "fan_in": st.fan_in,
            "patches": st.n_patches, "row_sets": row_sets, "chunks": len(st.chunks),
            "rows_built": sum(_bw.rows_written(st, c) for c in st.chunks),
            "ops": ops, "positions_computed": _positions_computed(model, st),
            "lane_utilisation": st.fan_in * st.n_patches / (lanes * st.tiles * row_sets),
            "row_build": {"cycles": rb_cycles, "counters": rb_counters,
                          "energy_j": rb.energy_j,
                          "array_write_energy_j": _op_energy_j(config, rb_counters,
                                                               _ARRAY_WRITES,
                                                               _dm.stage_columns(
                                                                   st, lanes,
                                                                   config.columns))},
            "static_cycles": st.cycles,
            "cycles_equal_static": all(m["counters"]["cycles"] == st.cycles for m in measured),
            "measured": measured,
            "data_independent": all(m["counters"] == measured[0]["counters"]
                                    and m["host"] == measured[0]["host"] for m in measured),
            "estimate": _average(per_image),
            "spread": _spreads(per_image, [m["zero_skip"] for m in measured]),
        })
    # Per image: one estimate on the counters summed over the stages.
    totals = []
    total_ops = sum(s["ops"]["ops"] for s in stages)
    rb_total = sum(s["row_build"]["cycles"] for s in stages)
    for ii in range(len(images)):
        counters = dict.fromkeys(counter_names(), 0)
        host = {HOST_DATA_WORDS: 0}
        host_cycles = 0
        for s in stages:
            m = s["measured"][ii]
            for key, v in m["counters"].items():
                counters[key] += v
            host[HOST_DATA_WORDS] += m["host"][HOST_DATA_WORDS]
            host_cycles += m["host_cycles"]
        e = _with_stream(_estimate(config, counters, host, host_cycles + stream["bus_cycles"],
                                   total_ops, lanes=lanes, row_build_cycles=rb_total,
                                   gate=(compiled, [s["measured"][ii]["counters"]
                                                    for s in stages])), stream)
        e["counters"], e["host"] = counters, host
        # the split per stage, each over the columns it drives (seed 002's class gate), so
        # it sums to the energy above; the host's words once
        split = energy.energy_split(config, {"cycles": 0}, columns_active=lanes, host=host)
        for st, s in zip(compiled.stages, stages, strict=True):
            part = energy.energy_split(config, s["measured"][ii]["counters"],
                                       columns_active=_dm.stage_columns(st, lanes,
                                                                        config.columns))
            split = {key: v + part[key] for key, v in split.items()}
        e["energy_split_j"] = split
        totals.append(e)
    per_image = _average(totals)
    zs_images = []
    for ii in range(len(images)):
        z: dict = {}
        for st in stages:
            for key, v in st["measured"][ii]["zero_skip"].items():
                z[key] = z.get(key, 0) + v
        zs_images.append(z)
    per_image_spread = _spreads(totals, zs_images)
    # The SRAMs costed at the weight buffer the model needs (sim.hw.sram.sized_config), not the
    # configuration's buffer_slots (the RTL run's).
    from sim.hw import sram
    mem_config = sram.sized_config(config, compiled)
    memories = _memories(mem_config, compiled, images, per_image)
    memories["weight_buffer_sizing"] = sram.buffer_sizing(compiled)
    logic_energy = _logic_energy(activity, logic, blocks, per_image)
    split = _energy_split(config, per_image, memories, logic_energy)
    headline = _headline(per_image, memories, split, logic_energy, activity, logic)
    sens = _sensitivity(mem_config, compiled, model, per_image, memories, first_image,
                        _sens_logic(activity, logic, blocks, per_image))
    area = _area(config, k, gates, gates_note, memories=memories, logic=logic)
    # With the whole core synthesised (sim.analysis.synth), the area is the split (MTJ array + SRAM
    # macros + minimised logic); the textbook per-block estimate stays beside it in the JSON.
    synthesised = area["mat_split"]["logic_mm2"] is not None
    mat_area = area["mat_split"]["total_mm2"] if synthesised else area["mat"]["total_mm2"]
    measured_fig = {
        "basis": f"one mat of K = {k} subarrays in lock-step (the RTL core: {k} x "
                 f"{config.rows} x {config.columns}, a {lanes}-column row, one controller, "
                 f"{k} accumulators, one PPU and data memory), one image at a time",
        "energy_j": per_image["energy_j"], "latency_s": per_image["latency_s"],
        "images_per_second": 1.0 / per_image["latency_s"],
        "gops": per_image["gops"], "gops_per_w": per_image["gops_per_w"],
        "gops_per_w_basis": "micro-op dynamic energy only (sim.hw.energy.estimate: MRAM, "
                            "gate-count CMOS logic, bus), no SRAM, no leakage",
        "headline_energy_j": headline["energy_j"],
        "headline_gops_per_w": headline["gops_per_w"],
        "headline_basis": headline["basis"],
        "power_w": per_image["power_w"], "area_mm2": mat_area,
        "gops_per_mm2": per_image["gops"] / mat_area,
        "area_is_array_only": area["array_only"] and not synthesised,
    }
    # The chip's mats: MTJ array + SRAM macros (+ the synthesised logic when cached).
    chip = _chip(mem_config, compiled, images, per_image, memories,
                 area["mat_split"]["total_mm2"])
    mats = config.subarrays // k
    used = mats * k
    idle = config.subarrays - used
    chip_area = (area["chip_split"]["total_mm2"] if synthesised
                 else area["chip"]["total_mm2"])
    projection = {
        "basis": f"chip-scale PROJECTION, an upper bound: the measured mat's throughput x "
                 f"{mats} mats of ours (config.subarrays = {config.subarrays} ({config.mats} "
                 f"mats x {config.subarrays_per_mat} subarrays) // K = {k}"
                 + (f", {idle} subarrays left idle" if idle else "")
                 + "), each mat on its own image, perfectly parallel (no shared bus or host "
                   "port limits); energy per image and GOPS/W unchanged",
        "mats": mats, "subarrays_per_mat": k, "subarrays": used, "idle_subarrays": idle,
        "capacity_mb": config.capacity_bits * used / config.subarrays / 8 / 2 ** 20,
        "images_per_second": mats / per_image["latency_s"],
        "gops": per_image["gops"] * mats,
        "gops_per_w": per_image["gops_per_w"],
        "power_w": per_image["power_w"] * mats,
        "energy_per_image_j": per_image["energy_j"],
        "area_mm2": chip_area, "area_is_array_only": area["array_only"] and not synthesised,
        "gops_per_mm2": per_image["gops"] * mats / chip_area,
    }
    lin = [s for s in stages if s["kind"].endswith("linear")]
    e_img = per_image["energy_j"]
    host_j = per_image["energy_per_op_j"].get(f"host_{HOST_DATA_WORDS}", 0.0)
    rb_j = sum(s["row_build"]["energy_j"] for s in stages)
    # abs-diff write-backs and their scratch erases: the array writes outside the row building
    rb_counts = {op.name.lower(): sum(s["row_build"]["counters"][op.name.lower()]
                                      for s in stages) for op in _ARRAY_WRITES}
    wb_counts = {key: per_image["counters"][key] - v for key, v in rb_counts.items()}
    write_back_j = _op_energy_j(config, wb_counts, _ARRAY_WRITES, lanes)
    cyc = per_image["cycles"]
    shares = {
        "energy_pct": {key: 100 * v / e_img
                       for key, v in per_image["energy_per_class_j"].items()},
        "host_load_energy_pct": 100 * host_j / e_img,
        "row_build_energy_pct": 100 * rb_j / e_img,
        "write_back_energy_pct": 100 * write_back_j / e_img,
        "latency_pct": {
            "host port (image and program words)": 100 * per_image["host_cycles"] / cyc,
            "row building on chip (erase, gather, plane writes)":
                100 * per_image["row_build_cycles"] / cyc,
            "compute (controller)": 100 * per_image["compute_cycles"] / cyc,
        },
        "fc_layers_energy_pct": 100 * sum(s["estimate"]["energy_j"] for s in lin) / e_img,
        "mean_lane_utilisation": sum(s["lane_utilisation"] * s["ops"]["ops"] for s in stages)
                                 / total_ops,
    }
    return {
        "preset": name, "config": config.as_dict(), "model": model.name, "dataset": dataset,
        "split": "test", "images": len(images), "image_indices": list(range(len(images))),
        "labels": [int(v) for v in labels], "backend": backend, "simulator": simulator,
        "subarrays": k, "mat_columns": lanes,
        "logits_equal_to_golden": [im["logits_equal_to_golden"] for im in images],
        "measured_images": [{"logits": im["logits"], "counters": im["counters"],
                             "host_words": im["host_words"],
                             "host_cycles": sum(s["host_cycles"] for s in im["stages"])}
                            for im in images],
        "clock_hz": clock_hz,
        "method": {
            "basis": f"one mat of K = {k} subarrays in lock-step, W = K x config.columns = "
                     f"{lanes} columns (--mat; default the preset's subarrays_per_mat)",
            "columns_active": f"K x config.columns = {k} x {config.columns} = {lanes}: the "
                              "counters are one controller's, which drives the K subarrays in "
                              "lock-step",
            "host": f"{HOST_DATA_WORDS}: the image's data-memory words (stage 0), each charged "
                    "as a MOVE; the array rows are built on chip (row_build), none by the host",
            "host_cycles": "host port cycles while the stage ran: its data words + the words "
                           "of every chunk program loaded for it (loaded only when it differs "
                           "from the program in the instruction memory, which is empty before "
                           "image 0 and keeps an image's last program into the next; "
                           "sim.analysis.report.host_port_words); weight buffer, requant table and "
                           "gather tables are configuration, not counted",
            "row_build": "the erase and gather part of each chunk program (everything before "
                         "the compute part's MOVE SETPTR), static profile by "
                         "sim.compile.compiler.program_profile "
                         "(sim.analysis.report.row_build_profile)",
            "lane_utilisation": "fan_in x patches / (W x tiles x row sets): wide = one row set "
                                "per patch, T tiles of W columns; segmented = one row set per "
                                "group of K patches, one tile (K segments of config.columns)",
            "ops": "2 x output elements x fan-in of each golden compute layer (a fused pool's "
                   "convolution: its full output)",
            "averaging": f"mean over {len(images)} image(s) (the first {len(images)} of the "
                         "test split); per_image_spread and each stage's spread give min, "
                         "mean, max and the sample std (ddof = 1) of the per-image figures",
        },
        "energy_table": _energy_table(config, lanes),
        "weight_stream": {key: stream[key] for key in ("slots", "entries", "bits", "bus_cycles",
                                                       "energy_j", "sram_j", "wire_j",
                                                       "wire_mm", "sources")},
        "memories": memories,
        "stages": stages,
        "postproc": {"mode": config.postproc,       # issue 14: sim.compile.nand_postproc
                     "in_memory": [st.name for st in compiled.stages if st.postproc != "ppu"],
                     "ppu_fallbacks": [{"stage": n, "why": w}
                                       for n, w in compiled.ppu_fallbacks]},
        "per_image": per_image,
        "per_image_spread": per_image_spread,
        "energy_split": split,
        "headline": headline,
        "logic_energy": logic_energy,
        "activity": activity,
        "sources": _sources(config),
        "sensitivity": sens,
        "measured": measured_fig,
        "chip_projection": projection,
        "chip": chip,
        "area": area,
        "shares": shares,
        "seed": SEED_FIGURES.get(name),
        "notes": per_image["notes"],
        "jeit_table": None,
        # Seed 003's headline comes from its analytical CPU-IMAC model, not from this run.
        "cpu_imac_model": _cpu_imac_model() if name == "imac_sot" else None,
    }


def _cpu_imac_model() -> dict:
    """:func:`sim.hw.imac_energy.headline`: CPU-IMAC vs CPU-only, analytical (seed 003)."""
    from sim.hw import imac_energy
    return imac_energy.headline()


# ----------------------------------------------------------------------------------------------
# Plots and the markdown table

def _subarrays(k: int) -> str:
    return f"{k} subarray" + ("" if k == 1 else "s")


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
                 f"({rep['backend']}, one mat of {_subarrays(rep['subarrays'])})", fontsize=9)
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
    build = np.array([s["estimate"]["row_build_latency_s"] for s in stages]) * 1e6
    comp = np.array([s["estimate"]["compute_latency_s"] for s in stages]) * 1e6
    host = np.array([s["estimate"]["host_latency_s"] for s in stages]) * 1e6
    fig, ax = plt.subplots(figsize=(7.0, 4.2))
    ax.bar(x, build, label="row building on chip (erase, MOVE GATHER, plane writes)",
           color="C2")
    ax.bar(x, comp, bottom=build, label="compute (controller cycles)", color="C1")
    ax.bar(x, host, bottom=build + comp, label="host port (image and program words)",
           color="C0")
    ax.set_xticks(x, [_short(s["name"]) for s in stages], fontsize=7)
    ax.set_ylabel(f"latency per image (us at {rep['config']['clock_mhz']:g} MHz)")
    ax.set_title(f"{rep['preset']}: {rep['model']}, latency per layer "
                 f"({rep['backend']}, one mat of {_subarrays(rep['subarrays'])})", fontsize=9)
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


def _area_text(area: dict, gops: float, split: dict | None = None) -> str:
    """``area``: one of the report's ``area`` entries (``mat`` or ``chip``); ``split`` the
    matching ``mat_split`` / ``chip_split``: used when it has the synthesised logic."""
    a, p = area["array_mm2"], area["periphery_mm2"]
    if split is not None and split.get("logic_mm2") is not None:
        total = split["total_mm2"]
        return (f"area {_g(total)} mm^2 = {_g(a)} MTJ array + {_g(split['sram_mm2'])} SRAM "
                f"(sim.hw.sram) + {_g(split['logic_mm2'])} logic (sim.analysis.synth, Yosys + ABC) "
                f"({_g(gops / total)} GOPS/mm^2); old textbook periphery estimate: "
                + ("n/a" if p is None else f"{_g(p)} mm^2"))
    text = f"area {_g(a)} mm^2 MTJ array ({_g(gops / a)} GOPS/mm^2)"
    if p is None:
        return text + ", periphery not counted (no gate counts)"
    return (text + f" + {_g(p)} mm^2 periphery, an upper bound ({_g(gops / (a + p))} "
            "GOPS/mm^2 on the sum)")


def _projected_text(rep: dict) -> str:
    p, pi = rep["chip_projection"], rep["per_image"]
    seed = rep["seed"] or {}
    lines = [f"PROJECTION x {p['mats']} mats of {_subarrays(p['subarrays_per_mat'])} "
             f"({_g(p['capacity_mb'])} MB): "
             f"{_g(p['gops'])} GOPS, {_g(p['gops_per_w'])} GOPS/W, "
             f"{_g(p['images_per_second'])} images/s, {_si(p['power_w'], 'W')}",
             _area_text(rep["area"]["chip"], p["gops"], rep["area"]["chip_split"])]
    name = rep["preset"]
    if name == "jeit_stt":
        need = 32.31 / pi["gops"]
        lines.append(f"mats of ours ({_subarrays(p['subarrays_per_mat'])} each) needed for the "
                     f"published 32.31 GOPS: {_g(need)}")
    if name == "nand_spin":
        e, fig = rep["shares"]["energy_pct"], seed.get("fig13_energy_pct", {})
        lines.append("energy by class, ours vs Fig. 13(b): " + ", ".join(
            f"{k} {_g(e[k], 2)}% vs {fig.get(k, 0):g}%" for k in
            ("loading data", "convolution", "data transfer", "comparison/pooling",
             "quantization")))
        lat = rep["shares"]["latency_pct"]
        host_t = lat["host port (image and program words)"]
        build_t = lat["row building on chip (erase, gather, plane writes)"]
        lines.append(f"latency share of loading data (host port {_g(host_t, 2)}% + on-chip row "
                     f"building {_g(build_t, 2)}%): {_g(host_t + build_t, 2)}% vs Fig. 13(a) "
                     f"38.4%")
    if name == "imac_sot":
        lines.append(f"energy share of the FC layers (what an IMAC-style offload could at most "
                     f"save): {_g(rep['shares']['fc_layers_energy_pct'], 2)}%")
        cm = rep.get("cpu_imac_model")
        if cm:      # the analytical CPU-IMAC model (sim.hw.imac_energy, make imac-energy)
            for key, label in (("lenet", "LeNet (our fashion_lenet_imac)"),
                               ("vgg", "VGG-16-shaped CIFAR-10")):
                r = cm[key]
                lines.append(f"CPU-IMAC vs CPU-only, analytical, {label}: energy saving "
                             f"{_g(100 * r['energy_saving'], 2)}% vs the seed's "
                             f"{cm['seed_saving_pct'][key]:g}%, latency "
                             f"{_si(r['cpu_only']['latency_s'], 's')} -> "
                             f"{_si(r['cpu_imac']['latency_s'], 's')}")
    return "<br>".join(lines)


def _measured_text(rep: dict) -> str:
    m, pi = rep["measured"], rep["per_image"]
    return "<br>".join([
        f"{_si(pi['energy_j'], 'J')} / image, {_si(pi['latency_s'], 's')} / image "
        f"({pi['controller_cycles']:g} controller cycles, {pi['row_build_cycles']:g} of them "
        f"building rows, {pi['stall_cycles']:g} stalls for device timing, + "
        f"{pi['host_cycles']:g} host port cycles)",
        f"{_g(m['gops'])} GOPS, {_g(m['gops_per_w'])} GOPS/W micro-ops only, "
        f"{_si(pi['power_w'], 'W')}",
        f"**headline** {_g(rep['headline']['gops_per_w'])} GOPS/W, "
        f"{_si(rep['headline']['energy_j'], 'J')} / image ({rep['headline']['kind']}: "
        f"{rep['headline']['basis']})",
        f"gate-count logic + SRAMs, for comparison: "
        f"{_g(rep['memories']['gops_per_w_with_memories_gate_count'])} GOPS/W",
        _area_text(rep["area"]["mat"], m["gops"], rep["area"]["mat_split"]),
    ])


def _why_text(rep: dict) -> str:
    cfg, sh, pi = rep["config"], rep["shares"], rep["per_image"]
    name = rep["preset"]
    host_e = sh["host_load_energy_pct"]
    lat = sh["latency_pct"]
    host_t = lat["host port (image and program words)"]
    build_t = lat["row building on chip (erase, gather, plane writes)"]
    k = rep["subarrays"]
    modes = ", ".join(f"{s['mode']}" for s in rep["stages"])
    common = [
        f"network: {rep['model']} on {rep['dataset']} ({_g(pi['ops'] / 1e6)} MOP / image), not "
        "the paper's network and data set",
        f"one mat of {_subarrays(k)} of {cfg['rows']} x {cfg['columns']} in lock-step measured "
        f"(stage modes: {modes}); the chip figure is a perfect-parallelism projection over "
        f"{rep['chip_projection']['mats']} such mats",
        f"host port (the image's {pi['host'][HOST_DATA_WORDS]:g} words + the chunk programs): "
        f"{_g(host_t, 2)}% of latency, {_g(host_e, 2)}% of energy",
        f"rows built on chip (erase, MOVE GATHER from the data memory, WRITE_ROW / PROGRAM of "
        f"the bit-planes): {_g(build_t, 2)}% of latency, "
        f"{_g(sh['row_build_energy_pct'], 2)}% of energy",
        f"lanes busy on average {_g(100 * sh['mean_lane_utilisation'], 2)}% (fan-in x patches "
        "/ (mat width x tiles x row sets): small kernels and partial groups leave columns "
        "idle)",
    ]
    chip = rep["area"]["chip"]
    if chip["periphery_mm2"] is not None:
        common.append(f"periphery area = {_g(chip['periphery_mm2'] / chip['array_mm2'])} x the "
                      "MTJ array: the rtl.synth count holds every lane block (of every "
                      "dataflow) per subarray and a controller with its instruction memory as "
                      "flip-flops per mat, without logic minimisation (an upper bound)")
    split = rep["area"]["mat_split"]
    if split["logic_mm2"] is not None:
        common.append("with the core synthesised as instantiated "
                      "(sim.analysis.synth: Yosys + ABC, "
                      f"{_g(split['logic_nand2_eq'])} NAND2 eq) and its memories as SRAM macros "
                      f"(sim.hw.sram): SRAM {_g(split['sram_mm2'] / split['array_mm2'])} x "
                      "and logic "
                      f"{_g(split['logic_mm2'] / split['array_mm2'])} x the MTJ array of the mat, "
                      f"periphery {_g(split['periphery_pct_of_total'], 3)}% of the mat's area")
    if sh["write_back_energy_pct"]:
        common.append(f"abs-diff write-backs into the array (class 'loading data' in "
                      f"sim.hw.energy): {_g(sh['write_back_energy_pct'], 2)}% of energy")
    if rep["notes"]:
        common.append("device operations slower than the clock (" + "; ".join(rep["notes"])
                      + f"): {_g(pi['stall_cycles'])} stall cycles per image, "
                      f"{_g(100 * pi['stall_cycles'] / max(1, pi['controller_cycles']), 2)}% "
                      "of the controller cycles, in the latency")
    specific = {
        "jeit_stt": [
            "zero skipping in the core skips a tile dot only when all its operands are zero "
            "(MOVE SKIPZ; counters data-dependent, spread below); the paper's figures are peak "
            "values with sparsity-aware skipping: see the seed 000 reproduction table",
            "jeit_fa route: the abs-diff lanes' difference bits summed by a bit-serial "
            "full-adder tree per subarray (our reading of the paper's single-cycle carry-chain "
            "full-adder array; 2 n + log2(columns) cycles per tile, no write-back); the "
            "abs_diff write-back route (4 n cycles, n STT writes per tile: write energy "
            "ASSUMPTION 0.6 V / 10 ns, the seed gives none) is DATAFLOW=abs_diff",
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
            "subarrays, ours has a reduction unit per subarray and a controller, PPU and data "
            "memory per mat",
            "the paper loads data over a 128-bit bus (38.4% of its latency); our host writes "
            "only the image (one 32-bit word per cycle) and the chunk programs, the rows are "
            "built on chip (one MOVE GATHER per word, then a write per bit-plane), and the "
            "weights stay in the buffer",
            "'data transfer' here is the on-chip MOVE (data memory to transpose buffer), not a "
            "transfer between subarrays; BN is folded into the requantization, so that Fig. 13 "
            "class is 0 here",
        ],
        "dima_sot": [
            "the paper reports only ratios against its own ASIC / DRAM / ReRAM baselines; none "
            "is modelled here, so no ratio can be reproduced: our absolute numbers stand alone "
            "(the seed 002 reproduction table below puts ours beside the seed's on the Add-Net)",
            "this report's shared workload is the 8-bit AdderNet (its adder layers on the "
            "abs_diff route); the seed's Add-Net (binarized depthwise-separable layers on the "
            "FA/FS lanes, seed 002 Fig. 4) runs with make sim PRESET=dima_sot and is costed by "
            "python -m sim.compile.dima_map (cycles, DIMA counters, energy per layer kind)",
            "SOT write: ASSUMPTION (seed-001 strip erase scaled to one MTJ)",
        ],
        "imac_sot": [
            "the measured columns run every layer on the digital periphery; the CPU-IMAC "
            "savings come from the analytical model sim.hw.imac_energy (its constants and sources "
            "in the JSON's cpu_imac_model), not from this run",
            "the FC-layer energy share is the most an offload of the FC layers could remove",
            "SOT-MRAM parameters: ASSUMPTION (the abstract gives none)",
        ],
    }
    return "<br>".join(f"- {t}" for t in common + specific.get(name, []))


def _mmm(sp: dict, scale: float = 1.0, digits: int = 3) -> str:
    """``min / mean / max (std)`` of a :func:`spread` entry, times ``scale``."""
    return (f"{_g(sp['min'] * scale, digits)} / {_g(sp['mean'] * scale, digits)} / "
            f"{_g(sp['max'] * scale, digits)} ({_g(sp['std'] * scale, digits)})")


def _spread_lines(rep: dict) -> list:
    """The per-stage and per-image spread over the images (min / mean / max (std))."""
    zs = "zs_operands" in rep["per_image_spread"]
    head = "| stage | controller cycles | stall cycles | energy (nJ) | latency (us) | GOPS/W |"
    rule = "|---|---|---|---|---|---|"
    if zs:
        head += " zero operands (%) | tile dots skipped | cycles saved |"
        rule += "---|---|---|"
    n = rep["images"]
    lines = ["", f"Spread over the {n} image(s), min / mean / max (sample std)"
             + ("; counters are data-dependent with zero skipping (config.zero_skip)" if zs
                else "; the counters do not depend on the data without zero skipping") + ":",
             "", head, rule]
    rows = [(s["name"], s["spread"]) for s in rep["stages"]]
    rows.append(("**image**", rep["per_image_spread"]))
    for name, sp in rows:
        line = (f"| {name} | {_mmm(sp['controller_cycles'])} | {_mmm(sp['stall_cycles'])} | "
                f"{_mmm(sp['energy_j'], 1e9)} | {_mmm(sp['latency_s'], 1e6)} | "
                f"{_mmm(sp['gops_per_w'])} |")
        if zs:
            line += (" n/a | n/a | n/a |" if "zero_fraction" not in sp else
                     f" {_mmm(sp['zero_fraction'], 100)} | {_mmm(sp['zs_tiles'])} | "
                     f"{_mmm(sp['zs_cycles_saved'])} |")
        lines.append(line)
    lines.append("")
    return lines


def _jeit_lines(rep: dict) -> list:
    """Seed 000's reproduction table (sim.analysis.jeit)."""
    t = rep["jeit_table"]
    pk, ch = t["peak"], t["chip"]
    lines = ["Seed 000 reproduction table "
             f"(`sim.analysis.jeit`, `report-{rep['preset']}-stt-write.png`), "
             f"one mat of {t['mat_size']} (subarrays x rows x columns). Peak: {pk['layer']}, "
             f"every lane busy, on the cycle model, compute micro-ops only (no row building, "
             f"host port or SRAM); the tile-skip fraction is the measured run's "
             f"({_g(t['tile_dots_skipped_per_image'])} of {t['tile_dots_per_image']} tile dots "
             f"per image). Seed figures: {t['seed_source']}.", "",
             "| figure | ours | seed 000 | ours / seed |", "|---|---|---|---|"]
    for r in t["rows"]:
        lines.append(f"| {r['figure']} | {_g(r['ours'])} {r['unit']} | {r['seed']:g} "
                     f"{r['unit']} | {_g(r['ours'] / r['seed'])} |")
    lines += ["", f"Chip size implied: 32.31 GOPS takes {_g(ch['mats_for_seed_gops_at_peak'])} "
              f"mats of ours at the peak ({_g(ch['area_for_seed_gops_at_peak_mm2'])} mm^2 of "
              f"MTJ array + SRAM), {_g(ch['mats_for_seed_gops_measured'])} at the measured "
              f"rate ({_g(ch['area_for_seed_gops_measured_mm2'])} mm^2). Not in this table: "
              f"{t['not_built']}.", "",
              "STT write energy (ASSUMPTION, the seed gives none) swept:", "",
              "| write energy / bit (fJ) | x the assumed | peak GOPS/W | measured GOPS/W (with "
              "SRAMs) |", "|---|---|---|---|"]
    for r in t["write_sweep"]:
        lines.append(f"| {_g(r['write_bit_fj'])} | {r['factor']:g} | "
                     f"{_g(r['peak_gops_per_w'])} | {_g(r['measured_gops_per_w'])} |")
    return lines


def _plot_stt_write(rep: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    t = rep["jeit_table"]
    sw = t["write_sweep"]
    x = [r["write_bit_fj"] for r in sw]
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    ax.plot(x, [r["peak_gops_per_w"] for r in sw], "o-", label="peak (every lane busy)")
    ax.plot(x, [r["measured_gops_per_w"] for r in sw], "s--",
            label=f"measured, {rep['model']} (with SRAMs)")
    ax.axhline(494.56, color="k", lw=0.8, ls=":", label="seed 000: 494.56 GOPS/W")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("STT write energy per bit (fJ; ASSUMPTION, the seed gives none)")
    ax.set_ylabel("GOPS/W")
    ax.set_title(f"{rep['preset']}: GOPS/W vs STT write energy, one mat of {t['mat_size']}",
                 fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _chip_lines(rep: dict) -> list:
    """The chip model (sim.hw.chip): organisation, bus, weight loading, throughput."""
    c = rep["chip"]
    o, w = c["organisation"], c["weight_loading"]
    own = ("the preset's own organisation" if o["own_organisation"] else
           f"NOT the preset's own {rep['config']['subarrays_per_mat']}-subarray mat")
    lines = [f"Chip model (`sim.hw.chip`, `report-{rep['preset']}-chip.png`): {o['mats']} mats of "
             f"{o['mat_size']} ({own}) in {o['banks']} banks of {o['mats_per_bank']} mats on "
             f"one {o['bus_bits']}-bit bus"
             + (f", {o['idle_subarrays']} subarrays idle" if o["idle_subarrays"] else "") + ". "
             f"Per image {_g(c['bits_per_image'])} bits cross the bus (image + programs). "
             f"Compute bound {_g(c['compute_bound_images_per_s'])} images/s, bus bound "
             f"{_g(c['bus_bound_images_per_s'])} images/s: **{c['limit']}-limited**, "
             f"{_g(c['images_per_second'])} images/s, {_g(c['gops'])} GOPS, "
             f"{_g(c['gops_per_w'])} GOPS/W (bus wires {_si(c['bus_energy_per_image_j'], 'J')} "
             f"per image), {_g(c['area_mm2'])} mm^2 (MTJ arrays + SRAMs"
             + (" + logic" if rep["area"]["mat_split"]["logic_mm2"] is not None else
                ", logic not counted") + f"), {_si(c['power_w'], 'W')}.",
             f"Weight loading (once per model): {_g(w['bits_per_mat']['total'])} bits per mat "
             f"({w['bits_per_mat']['buffer_rows']} buffer rows + tables), "
             f"{_si(w['seconds'], 's')} and {_si(w['energy_j'], 'J')} for all mats; a batch of "
             f"one image per mat right after it: {_g(c['batch']['gops'])} GOPS, "
             f"{_g(c['batch']['gops_per_w'])} GOPS/W. Constants and sources in the JSON's "
             "`chip.params`.",
             "", "| bus width (bit) | GOPS | images/s | limit | bus utilisation |",
             "|---|---|---|---|---|"]
    for r in c["bus_sweep"]:
        lines.append(f"| {r['bus_bits']} | {_g(r['gops'])} | {_g(r['images_per_second'])} | "
                     f"{r['limit']} | {_g(100 * r['bus_utilisation'], 3)}% |")
    return lines


# ----------------------------------------------------------------------------------------------
# The presets' own chip organisation, partitioned: the model over the mats of one bank

#: What crosses the chip's bus that ``sim.compile.multi_mat`` does not charge per image.
PARTITION_NOT_CHARGED = (
    "the one-time weight loading of every mat's resident slice (weight-buffer rows, requant, "
    "offset and patch tables), as the single mat's per-image figures leave it out "
    "(sim.hw.chip charges it once per model: weight_loading)",
    "the bus-wire energy of the image and program words (their host-port cycles are in the "
    "latency, the image's words are charged as MOVEs, the program words have no modelled "
    "energy, as on the single mat; sim.hw.chip charges both at the chip's wire)",
    "the logic's switching while a mat waits for the slowest mat or a broadcast (ASSUMPTION "
    "activity: clock-gated; every mat's SRAMs and logic leak over the whole latency, charged)",
    "the broadcasts' and streamed words' wire is sim.compile.weight_stream.wire_mm (half the "
    "side of the MTJ array's area), not sim.hw.chip's chip-area wire",
)


def partitioned(name: str, model, k: int, rep: dict, *, propose: bool = False, images=None,
                mats: int | None = None) -> dict:
    """The model of ``rep`` partitioned over the mats of one bank of the preset's own chip
    organisation (``sim.hw.chip.organisation`` at mats of ``k`` subarrays; issue 15 item 3):
    ``M`` = the smallest of ``sim.hw.chip.PARAMS['mats_per_bank']``, the chip's mats and
    what the model allows (``sim.compile.multi_mat.max_mats``), or ``mats``; counted by
    ``sim.analysis.multi_mat.run`` (the counting mode; weights streamed where they do not fit,
    as the report compiles; ``propose`` as ``--propose``; with zero skipping the skipped dots
    measured per slice on the cycle model over ``images``). Returns the rows the markdown
    prints (one mat as measured, the partition, the data-parallel chip of ``rep['chip']``),
    each with its energy basis and source class, the bus as the partition charges it and
    what it does not charge; a model or preset that cannot be partitioned gives ``refused``
    (one line) instead."""
    from sim.analysis import multi_mat as amm
    from sim.compile import multi_mat as mm
    from sim.hw.chip import PARAMS, organisation
    config = preset(name)
    org = organisation(config, k)
    bank = int(PARAMS["mats_per_bank"].value)
    pi, c = rep["per_image"], rep["chip"]
    backend = rep["backend"] + (f", {rep['simulator']}" if rep.get("simulator") else "")
    terms = single_terms(rep)
    e1 = amm.full_energy(terms)
    single = {"name": "one mat (measured)", "mats": 1, "cycles": pi["cycles"],
              "latency_s": pi["latency_s"], "images_per_second": 1.0 / pi["latency_s"],
              "energy_j": e1, "gops": pi["gops"], "gops_per_w": pi["ops"] / e1 / 1e9,
              "energy_micro_ops_j": pi["energy_j"], "gops_per_w_micro_ops": pi["gops_per_w"],
              "terms": terms, "energy_basis": _basis(terms),
              "class": "measured",
              "source": f"this report's run ({backend} backend), the mean of "
                        f"{rep['images']} image(s)"}
    chip_row = {"name": f"data-parallel chip, one image per mat ({c['limit']}-limited)",
                "mats": c["organisation"]["mats"], "cycles": pi["cycles"],
                "latency_s": pi["latency_s"], "images_per_second": c["images_per_second"],
                "energy_j": c["energy_per_image_j"], "gops": c["gops"],
                "gops_per_w": c["gops_per_w"],
                "energy_basis": "the headline (micro-ops, SRAMs, leakage, logic) + the chip "
                                "bus wires of the image, program, streamed and moved words",
                "class": "assumption",
                "source": "sim.hw.chip.chip_model on the one mat's figures (its PARAMS: bus "
                          "width and clock, wire energy, no broadcast of programs)"}
    out = {"basis": f"the model's compute layers split by output channel (groups) over the "
                    f"mats of one bank (sim.hw.chip: {org['mats']} mats of {k} subarrays in "
                    f"{org['banks']} bank(s) of {bank}), one image at a time; "
                    "sim.compile.multi_mat, counted by sim.analysis.multi_mat.run",
           "mats": None, "limits": {}, "limited_by": [], "refused": None,
           "not_charged": list(PARTITION_NOT_CHARGED)}
    row = {"name": "partitioned over one bank", "mats": None}
    try:
        most, layer, what = mm.max_mats(model)
        out["limits"] = {"one bank": bank, "the chip": org["mats"],
                         f"the model (layer {layer} has {most} {what})": most}
        m = min(out["limits"].values()) if mats is None else mats
        out["limited_by"] = ([n for n, v in out["limits"].items() if v == m]
                             if mats is None else ["given"])
        res = amm.run(model, config, m, subarrays=k, propose=propose, stream_weights=True,
                      chip_mats=org["mats"],
                      images=images if config.zero_skip and images is not None else None,
                      logic=rep.get("logic_energy"))
    except UserError as e:      # MultiMatError, CompileError, CountError: one line
        out["refused"] = " ".join(str(e).removeprefix("--mats: ").split())
        row["refused"] = out["refused"]
        out["rows"] = [single, row, chip_row]
        return out
    segs = res["segments"]
    bc = [s["broadcast"] for s in segs]
    reload_j = sum((p["reload"] or {}).get("energy_j", 0.0) for s in segs for p in s["mats"])
    out["mats"] = m
    out["bus"] = {
        "broadcast_words": sum(b["words"] for b in bc),
        "broadcast_cycles": sum(b["cycles"] for b in bc),
        "broadcast_energy_j": sum(b["energy_j"] for b in bc),
        "broadcast_sram_j": sum(b["sram_j"] for b in bc),
        "broadcast_wire_j": sum(b["wire_j"] for b in bc),
        "own_words_cycles": sum(sum(s["stream_cycles"]) for s in segs),
        "shared_cycles": sum(s["shared_cycles"] for s in segs),
        "reload_energy_j": reload_j,
        "image_words": sum(p["host"]["data_words"] for s in segs for p in s["mats"]),
        "program_words": sum(p["host"]["program_words"] for s in segs for p in s["mats"]),
        "charged": "each segment's output but the last's broadcast to the mats that read it "
                   "in their data memories (cycles: one 32-bit word per cycle into each data "
                   "memory; energy: a data-memory read per word not in the activation store "
                   "yet, a write per word into each of those mats, the bus wire), or, when "
                   "every reader loads it from the activation store, sent there only (its "
                   "words not stored yet; no write into a mat); every mat's own "
                   "words (streamed weights, tables reloaded when a mat's slices do not fit "
                   "together) one mat after the other over the one bus, their SRAM writes and "
                   "wire; the image and program words as host-port cycles of every mat",
    }
    out["segments"] = [{k2: v for k2, v in s.items() if k2 != "mats"} for s in segs]
    out["assumptions"] = res["assumptions"]
    out["skipped"] = res.get("skipped")
    out["seconds"] = {key: res[key] for key in ("compile_seconds", "count_seconds",
                                                "measure_seconds") if key in res}
    row.update({"name": f"partitioned over {m} mats of one bank", "mats": m,
                "cycles": res["cycles"], "latency_s": res["latency_s"],
                "images_per_second": 1.0 / res["latency_s"],
                "energy_j": res["energy_full_j"], "gops": res["gops"],
                "gops_per_w": res["gops_per_w_full"],
                "energy_micro_ops_j": res["energy_j"] - res["terms"]["broadcasts"],
                "gops_per_w_micro_ops": res["ops"] / (res["energy_j"]
                                                      - res["terms"]["broadcasts"]) / 1e9,
                "terms": {k2: v for k2, v in res["terms"].items() if k2 in amm.TERMS},
                "energy_basis": "every mat's " + _basis(res["terms"]) + "; all mats leak "
                                "over the partition's latency; + tables reloaded + the "
                                "broadcasts' data-memory reads and writes and bus wire",
                "class": "assumption",
                "source": "counting mode (sim.compile.multi_mat.count_partitioned: every mat "
                          "== the cycle model, counter for counter) on the ASSUMPTIONs "
                          "broadcast, tables, no_overlap"
                          + (", activity (sim.analysis.multi_mat.energy_terms)"
                             if res["terms"]["activity logic"] is not None else "")
                          + (f"; skipped dots measured per slice on the cycle model over "
                             f"{len(images)} image(s)" if res.get("skipped") else "")})
    out["rows"] = [single, row, chip_row]
    return out


def single_terms(rep: dict) -> dict:
    """The single mat's energy per image by term (``sim.analysis.multi_mat.TERMS``) as this
    report's headline charges it: the micro-ops, the gate-count CMOS logic in them, the SRAMs'
    dynamic energy and leakage (``memories``), the activity-based logic and its leakage
    (``logic_energy``, None without one); no broadcast."""
    le = rep.get("logic_energy")
    return {"micro-ops": rep["per_image"]["energy_j"],
            "gate-count logic": rep["per_image"]["energy_split_j"]["CMOS logic"],
            "SRAM dynamic": rep["memories"]["dynamic_j"],
            "SRAM leakage": rep["memories"]["leakage_j"],
            "activity logic": None if le is None else le["energy_j"],
            "logic leakage": None if le is None else le["leakage_j"], "broadcasts": 0.0}


def _basis(terms: dict) -> str:
    """The energy basis of a row of the partitioned section, from its ``terms``."""
    if terms["activity logic"] is None:
        return ("the headline's: micro-ops (gate-count CMOS logic, ASSUMPTION) + streamed "
                "weights + SRAM dynamic + SRAM leakage; logic leakage not counted")
    return ("the headline's: micro-ops with the CMOS logic at the measured activity per block "
            "+ streamed weights + SRAM dynamic + SRAM leakage + logic leakage")


def _partitioned_lines(rep: dict) -> list:
    """The partitioned section (:func:`partitioned`), beside one mat and the chip."""
    p = rep.get("partitioned")
    if not p:
        return []
    if p["refused"]:
        why = f"not partitioned: {p['refused']}"
    else:
        lim = ", ".join(f"{n} {v}" for n, v in p["limits"].items())
        why = (f"M = {p['mats']}, limited by {' and '.join(p['limited_by'])} (limits: "
               f"{lim})")
    lines = ["", f"Partitioned over one bank (`sim.compile.multi_mat`, issue 15 item 3): "
                 f"{p['basis']}; {why}. One mat and the partition charge the same energy "
                 "terms (the headline's, listed under the table), the chip adds its bus wires; "
                 "GOPS of the partition and of one mat are one image at a time, the chip's "
                 "its throughput.",
             "", "| organisation | mats | latency (cycles) | latency (us) | images/s | energy "
                 "per image (nJ) | GOPS | GOPS/W | energy basis | class | source |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in p["rows"]:
        if r.get("refused"):
            lines.append(f"| {r['name']} | | not partitioned: {r['refused']} | | | | | | | "
                         "| |")
            continue
        lines.append(f"| {r['name']} | {r['mats']} | {r['cycles']:,.0f} | "
                     f"{_g(r['latency_s'] * 1e6)} | {_g(r['images_per_second'])} | "
                     f"{_g(r['energy_j'] * 1e9)} | {_g(r['gops'])} | {_g(r['gops_per_w'])} | "
                     f"{r['energy_basis']} | {r['class']} | {r['source']} |")
    named = [r for r in p["rows"] if r.get("terms")]
    lines += ["", "Energy per image by term (nJ; the headline replaces the gate-count CMOS "
                  "logic inside the micro-ops by the activity-based logic where there is one): "
              + "; ".join(f"{r['name']}: " + ", ".join(
                  f"{t} {'-' if v is None else _g(v * 1e9)}" for t, v in r["terms"].items())
                  for r in named) + "."]
    if not p["refused"]:
        b = p["bus"]
        lines += ["", f"Bus of the partition per image: broadcasts {b['broadcast_words']:,} "
                      f"words, {b['broadcast_cycles']:,} cycles, "
                      f"{_si(b['broadcast_energy_j'], 'J')} (data memories "
                      f"{_si(b['broadcast_sram_j'], 'J')}, wire {_si(b['broadcast_wire_j'], 'J')}"
                      f"); every mat's own words one after the other "
                      f"{b['own_words_cycles']:,} cycles (tables reloaded "
                      f"{_si(b['reload_energy_j'], 'J')}); {b['image_words']:,} image and "
                      f"{b['program_words']:,} program words into the mats (summed over them) "
                      "as host-port cycles. Charged: "
                      f"{b['charged']}."]
    lines.append("Not charged by the partition: " + "; ".join(p["not_charged"]) + ".")
    return lines


def _plot_chip(rep: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    c = rep["chip"]
    sw = c["bus_sweep"]
    x = [r["bus_bits"] for r in sw]
    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    ax.plot(x, [r["gops"] for r in sw], "o-", label="steady state")
    ax.plot(x, [r["batch_gops"] for r in sw], "s--", label="one image per mat after the "
            "weight loading")
    ax.axvline(c["organisation"]["bus_bits"], color="k", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("bus width (bit)")
    ax.set_ylabel("chip GOPS")
    o = c["organisation"]
    ax.set_title(f"{rep['preset']}: chip of {o['mats']} mats of {o['mat_size']}\n"
                 f"in {o['banks']} banks on one bus (cf. seed 001 Fig. 11(b))", fontsize=8)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _headline_lines(rep: dict) -> list:
    """The headline figure and the figures on the other bases (comparison rows)."""
    h = rep["headline"]
    lines = [f"Headline energy per image: {_si(h['energy_j'], 'J')}, {_g(h['gops_per_w'])} "
             f"GOPS/W ({h['kind']}). Each basis:", "",
             "| basis | energy per image (nJ) | GOPS/W | what it counts |", "|---|---|---|---|"]
    for r in h["rows"]:
        mark = " (headline)" if r["energy_j"] == h["energy_j"] else ""
        lines.append(f"| {r['name']}{mark} | {_g(r['energy_j'] * 1e9)} | {_g(r['gops_per_w'])} "
                     f"| {r['basis']} |")
    return lines


def _stream_lines(rep: dict) -> list:
    """The streamed weights' per-image cost (none: no lines)."""
    ws = rep.get("weight_stream") or {}
    if not ws.get("slots") and not ws.get("entries"):
        return []
    return ["", f"Weights streamed (`sim.compile.weight_stream`: the model's weights do not fit "
                f"the weight buffer at once): per image {ws['slots']:,} buffer words and "
                f"{ws['entries']:,} requant entries, {ws['bus_cycles']:,} bus cycles "
                f"({_si(ws['bus_cycles'] / rep['clock_hz'], 's')}, in the latency) and "
                f"{_si(ws['energy_j'], 'J')} (SRAM writes {_si(ws['sram_j'], 'J')}, bus wires "
                f"{_si(ws['wire_j'], 'J')}; in the energy, row \"weight streaming\"). The "
                "sensitivity table's figures count its bus cycles and this energy, recomputed "
                "under each moved constant (sim.analysis.sensitivity)."]


def _split_lines(rep: dict) -> list:
    """Energy per image by kind, each row with its source class."""
    sp = rep["energy_split"]
    total = sp["total_j"]
    lines = ["Energy per image by kind (source class of what each row rests on):", "",
             "| kind | energy (nJ) | share | class | source |", "|---|---|---|---|---|"]
    for r in sp["rows"]:
        e = r["energy_j"]
        lines.append(f"| {r['name']} | {'n/a' if e is None else _g(e * 1e9)} | "
                     f"{'n/a' if e is None else _g(100 * e / total, 3) + '%'} | {r['class']} "
                     f"| {r['source']} |")
    lines.append(f"| **all** | {_g(total * 1e9)} | 100% | | GOPS/W {_g(sp['gops_per_w'])} |")
    return lines + _logic_lines(rep)


def _logic_lines(rep: dict) -> list:
    """CMOS logic per block from the measured activity (sim.hw.activity), beside the old
    gate-count estimate."""
    le, act = rep.get("logic_energy"), rep.get("activity")
    if le is None:
        why = ("the run was not traced (model backend, --sim icarus or --no-activity) and "
               "no recorded measurement applies" if act is None else
               "no cached synthesis of this core (make synth PRESET=<preset> MAT=<K>)")
        return ["", f"CMOS logic from activity: not measured ({why}); the CMOS logic row is "
                    "the gate-count estimate (ASSUMPTION) and the logic leakage is not counted."]
    cmp = rep["energy_split"]["cmos_comparison"]
    lines = ["", f"CMOS logic per block (mat of {_subarrays(rep['subarrays'])}): activity = "
                 f"toggles / (RTL signal bits x cycles) over the {act['simulated_cycles']} "
                 f"simulated cycles of " + ("a RECORDED run, not this one" if act.get("recorded")
                                            else "the run")
                 + f" ({act['basis']}); energy = {le['formula']}:", "",
             "| block | cell area (um^2) | signal bits | activity | energy (nJ) | fJ/op | note |",
             "|---|---|---|---|---|---|---|"]
    for b in le["blocks"]:
        lines.append(f"| {b['name']} | {_g(b['area_um2'])} | {b['bits'] or 'n/a'} | "
                     f"{_g(b['activity'])} | {_g(b['energy_j'] * 1e9)} | "
                     f"{_g(b['energy_per_op_j'] * 1e15)} | {b['note']} |")
    lines.append(f"| **all** | {_g(sum(b['area_um2'] for b in le['blocks']))} | | "
                 f"{_g(le['mean_activity'])} (all signals) | {_g(le['energy_j'] * 1e9)} | "
                 f"{_g(le['energy_per_op_j'] * 1e15)} | |")
    ratio = cmp["ratio_estimate_over_activity"]
    lines += ["", f"The old gate-count estimate ({cmp['estimate_source']}) gives "
                  f"{_g(cmp['gate_count_estimate_j'] * 1e9)} nJ, "
                  + ("n/a" if ratio is None else f"{_g(ratio)}x") + " the measured-activity "
                  f"figure. Logic leakage: {_g(le['leakage_w'] * 1e6)} uW x "
                  f"{_si(le['latency_s'], 's')} = {_g(le['leakage_j'] * 1e9)} nJ. Scopes "
                  "traced without synthesised cells (MTJ array models, costed as MRAM): "
                  + (", ".join(le["untraced_scopes"]) or "none") + "."]
    return lines


def _sensitivity_lines(rep: dict) -> list:
    """The sensitivity table: each ASSUMPTION at / f and x f."""
    sens = rep["sensitivity"]
    f, b = sens["factor"], sens["baseline"]
    lines = ["Sensitivity "
             f"(`sim.analysis.sensitivity`, `report-{rep['preset']}-tornado.png`): each "
             f"ASSUMPTION at 1/{f:g} and {f:g} x its value, one at a time, on the image's "
             f"counters; baseline GOPS/W {_g(b['gops_per_w'])} ({b['basis']}), latency "
             f"{_si(b['latency_s'], 's')}. Change in %:", "",
             f"| assumption | value | GOPS/W at /{f:g} | GOPS/W at x{f:g} | latency at /{f:g} "
             f"| latency at x{f:g} |", "|---|---|---|---|---|---|"]
    for r in sens["rows"]:
        lo, hi = r["low"], r["high"]
        lines.append(f"| {r['table']} {r['name']} | {r['value']:g} {r['unit']} | "
                     f"{lo['gops_per_w_pct']:+.3g} | {hi['gops_per_w_pct']:+.3g} | "
                     f"{lo['latency_pct']:+.3g} | {hi['latency_pct']:+.3g} |")
    return lines


def _source_lines(rep: dict) -> list:
    """Every constant behind the figures with its source class (sim.hw.sources)."""
    src = rep["sources"]
    counts = ", ".join(f"{k} {v}" for k, v in src["class_counts"].items())
    lines = [f"Sources of the constants (`sim.hw.sources`; {counts}):", "",
             "| table | name | value | unit | class | affects | source |",
             "|---|---|---|---|---|---|---|"]
    for r in src["rows"]:
        v = r["value"]
        v = _g(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
        lines.append(f"| {r['table']} | {r['name']} | {v} | {r['unit']} | {r['class']} | "
                     f"{r['affects']} | {r['source']} |")
    return lines


def _plot_tornado(rep: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    sens = rep["sensitivity"]
    rows = sens["rows"][:12][::-1]
    f = sens["factor"]
    labels = [f"{r['name']} ({r['value']:g} {r['unit']})".replace(" )", ")") for r in rows]
    y = np.arange(len(rows))
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 0.35 * len(rows) + 1.6), sharey=True)
    for ax, metric, title in ((axes[0], "gops_per_w_pct", "GOPS/W change (%)"),
                              (axes[1], "latency_pct", "latency change (%)")):
        lo = np.array([r["low"][metric] for r in rows])
        hi = np.array([r["high"][metric] for r in rows])
        ax.barh(y, lo, color="C0", label=f"value / {f:g}")
        ax.barh(y, hi, color="C3", label=f"value x {f:g}", alpha=0.8)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_xlabel(title, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(y, labels, fontsize=7)
    axes[0].legend(fontsize=7)
    b = sens["baseline"]
    fig.suptitle(f"{rep['preset']}: sensitivity to each ASSUMPTION (+-{f:g}x), one mat of "
                 f"{_subarrays(rep['subarrays'])}; baseline {_g(b['gops_per_w'])} GOPS/W, "
                 f"{_si(b['latency_s'], 's')}", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _memory_lines(rep: dict) -> list:
    """The memory table of one preset (sim.hw.sram)."""
    mem = rep["memories"]
    lines = ["Memories of the mat (`sim.hw.sram`: energy fit to Horowitz ISSCC 2014 45 nm SRAM "
             "figures, area from the 45 nm 6T cell; constants and sources in the JSON's "
             "`memories.params`), per image:", "",
             "| memory | words x bits | KB | kind | reads | writes | pJ / read | dynamic (nJ) | "
             "leakage (uW) | area (mm^2) | accesses from |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for m in mem["memories"]:
        leak = "in logic" if m["leakage_w"] is None else _g(m["leakage_w"] * 1e6)
        area = "in logic" if m["area_mm2"] is None else _g(m["area_mm2"])
        note = f" ({m['note']})" if m["note"] else ""
        lines.append(f"| {m['name']} | {m['words']} x {m['bits']} | {_g(m['kbytes'])} | "
                     f"{m['kind']} | {m['reads']} | {m['writes']} | {_g(m['read_pj'])} | "
                     f"{_g(m['dynamic_j'] * 1e9)} | {leak} | {area}{note} | "
                     f"{m['accesses_derived']} |")
    pi = rep["per_image"]
    lines.append(f"| **all** | | {_g(sum(m['kbytes'] for m in mem['memories']))} | | | | | "
                 f"{_g(mem['dynamic_j'] * 1e9)} | {_g(mem['leakage_w'] * 1e6)} | "
                 f"{_g(mem['area_mm2'])} | |")
    lines += ["", f"Energy per image with the memories (dynamic {_si(mem['dynamic_j'], 'J')} + "
              f"leakage {_si(mem['leakage_j'], 'J')}): "
              f"{_si(mem['energy_with_memories_j'], 'J')} on the headline's basis "
              f"({mem['headline_basis']}), {_si(mem['energy_with_memories_gate_count_j'], 'J')} "
              f"with the gate-count logic estimate, vs {_si(pi['energy_j'], 'J')} micro-ops "
              f"only; GOPS/W {_g(mem['gops_per_w_with_memories'])} (headline) vs "
              f"{_g(mem['gops_per_w_with_memories_gate_count'])} (gate count) vs "
              f"{_g(pi['gops_per_w'])} (micro-ops only)."]
    wb = mem.get("weight_buffer_sizing")
    if wb:
        lines += ["", f"Weight buffer costed at {wb['costed_slots']} slots ({wb['rule']}); the "
                      f"configuration's buffer_slots is {wb['configured_slots']} (the RTL run's "
                      "buffer)."]
    return lines


def _area_split_lines(rep: dict) -> list:
    """Area of one mat: MTJ array, SRAM, synthesised logic, beside the old estimate."""
    a = rep["area"]
    sp = a["mat_split"]
    logic = "not counted" if sp["logic_mm2"] is None else f"{_g(sp['logic_mm2'])} mm^2"
    old = a["mat"]["periphery_mm2"]
    return [f"Area of the mat: MTJ array {_g(sp['array_mm2'])} mm^2, SRAM "
            f"{_g(sp['sram_mm2'])} mm^2, logic {logic} ({sp['logic_note']}); total "
            f"{_g(sp['total_mm2'])} mm^2, periphery {_g(sp['periphery_pct_of_total'], 3)}% of "
            "it. Old estimate of the periphery (textbook gate counts per block, memories as "
            "flip-flops, no minimisation): "
            + ("n/a (no rtl.synth file)" if old is None else f"{_g(old)} mm^2") + "."]


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
        "*Measured* = one mat of K subarrays in lock-step (the RTL core; K per preset in the "
        "table, `--mat`), per image: the host writes the image into the data memory and runs "
        "the chunk programs (its port cycles included), the programs build every array row on "
        "chip (MOVE GATHER + WRITE_ROW / PROGRAM micro-ops). *Projection* = measured per-mat "
        "throughput x (the preset's subarrays / K) mats, assuming perfect parallelism over "
        "independent images: an upper bound. Ops = 2 per L1 term / MAC (and its "
        "accumulation), from the golden layer shapes. Energy: `sim.hw.energy` over the mat's "
        "K x columns lanes (dynamic only; parameters and sources in each JSON's "
        "`energy_table`).",
        "",
        "| preset (seed) | published (source) | ours, projected on the seed's configuration "
        "| ours, measured on the shared workload | why they differ |",
        "|---|---|---|---|---|",
    ]
    for rep in reports:
        seed = rep["seed"]
        pub = _figures_text(seed) if seed else "n/a"
        sid = f" ({seed['seed']})" if seed else ""
        lines.append(f"| `{rep['preset']}`{sid}, K = {rep['subarrays']} | {pub} | "
                     f"{_projected_text(rep)} | "
                     f"{_measured_text(rep)} | {_why_text(rep)} |")
    lines += ["", "## Per preset", ""]
    for rep in reports:
        pi, name = rep["per_image"], rep["preset"]
        lines += [f"### `{name}`", "",
                  f"Files: `report-{name}.json`, `report-{name}-energy.png`, "
                  f"`report-{name}-latency.png`. Logits equal to golden: "
                  f"{sum(rep['logits_equal_to_golden'])} / {rep['images']}. "
                  f"Area: {rep['area']['note']}.", "",
                  f"One mat of {_subarrays(rep['subarrays'])} ({rep['mat_columns']} columns).",
                  "",
                  "| stage | mode | lanes busy | ops | energy (nJ) | latency (us) | of it row "
                  "building (us) | GOPS | GOPS/W |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for s in rep["stages"]:
            e = s["estimate"]
            lines.append(f"| {s['name']} | {s['mode']} | {_g(100 * s['lane_utilisation'])}% | "
                         f"{s['ops']['ops']} | {_g(e['energy_j'] * 1e9)} | "
                         f"{_g(e['latency_s'] * 1e6)} | {_g(e['row_build_latency_s'] * 1e6)} | "
                         f"{_g(e['gops'])} | {_g(e['gops_per_w'])} |")
        lines.append(f"| **image** | | {_g(100 * rep['shares']['mean_lane_utilisation'])}% | "
                     f"{pi['ops']} | {_g(pi['energy_j'] * 1e9)} | "
                     f"{_g(pi['latency_s'] * 1e6)} | {_g(pi['row_build_latency_s'] * 1e6)} | "
                     f"{_g(pi['gops'])} | {_g(pi['gops_per_w'])} |")
        lines.append("")
        for s in rep["stages"]:
            done, full = s["positions_computed"], s["ops"]["out_elements"]
            if done != full:
                lines.append(f"{s['name']}: the ops count all {full} convolution outputs (the "
                             f"network's work); the core computes the {done} inside a pool "
                             f"window (the pool floors), so this stage's GOPS is "
                             f"{_g(full / done)} x the rate of work actually done.")
        pp = rep.get("postproc") or {"mode": "ppu", "in_memory": [], "ppu_fallbacks": []}
        lines.append(f"Post-processing {pp['mode']}: {len(pp['in_memory'])} stage(s) in memory "
                     f"(seed 001 sec. 4.2){', on the PPU:' if pp['ppu_fallbacks'] else '.'}")
        lines += [f"- {f['stage']}: {f['why']}" for f in pp["ppu_fallbacks"]]
        lines += _spread_lines(rep)
        cls = ", ".join(f"{k} {_g(v, 2)}%" for k, v in rep["shares"]["energy_pct"].items() if v)
        lines.append(f"Energy by class: {cls}.")
        lines += [""] + _memory_lines(rep) + [""] + _area_split_lines(rep)
        if rep.get("jeit_table"):
            lines += [""] + _jeit_lines(rep)
        if rep.get("dima_table"):
            from sim.analysis import dima_repro
            lines += [""] + dima_repro.markdown_lines(rep["dima_table"])
        if name == "nand_spin":         # seed 001 Table 3 / Fig. 13 (make seed001-eval)
            from sim.analysis import seed001_eval
            lines += [""] + seed001_eval.report_lines()
        lines += [""] + _chip_lines(rep)
        lines += _partitioned_lines(rep)
        lines += [""] + _headline_lines(rep) + _stream_lines(rep)
        lines += [""] + _split_lines(rep) + [""] + _sensitivity_lines(rep)
        lines += [""] + _source_lines(rep)
        if rep["notes"]:
            lines.append("Device timing: " + "; ".join(rep["notes"]) + ".")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Writing

def _output_files(out: Path, presets: list) -> list:
    """Every file the report writes into ``out``."""
    return [out / "report.md", *(out / f"report-{name}{end}" for name in presets
                                 for end in (".json", "-energy.png", "-latency.png",
                                             "-tornado.png", "-chip.png")),
            *(out / f"report-{name}-stt-write.png" for name in presets if name == "jeit_stt")]


def _write_outputs(out: Path, reports: list, md: str) -> list:
    """Every file is rendered first, then all are renamed into place
    (:func:`rtl.outputs.write_files`)."""
    writers = {out / "report.md": md}
    for rep in reports:
        name = rep["preset"]
        writers[out / f"report-{name}.json"] = json_text(rep)
        writers[out / f"report-{name}-energy.png"] = lambda tmp, rep=rep: _plot_energy(rep, tmp)
        writers[out / f"report-{name}-latency.png"] = lambda tmp, rep=rep: _plot_latency(rep, tmp)
        writers[out / f"report-{name}-tornado.png"] = lambda tmp, rep=rep: _plot_tornado(rep, tmp)
        writers[out / f"report-{name}-chip.png"] = lambda tmp, rep=rep: _plot_chip(rep, tmp)
        if rep.get("jeit_table"):
            writers[out / f"report-{name}-stt-write.png"] = \
                lambda tmp, rep=rep: _plot_stt_write(rep, tmp)
    return write_files(writers, option="--out")


# ----------------------------------------------------------------------------------------------
# Command line

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.report",
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
    p.add_argument("--mat", default=None,
                   help=f"subarrays in lock-step in the measured mat, {mat_range_help()} (default: "
                        "each preset's subarrays_per_mat)")
    p.add_argument("--propose", action="store_true",
                   help="raise every size the model needs above the preset's "
                        "(sim.compile.compiler.propose_config, as make count's --propose), "
                        "e.g. the weight buffer of an Add-Net on dima_sot")
    p.add_argument("--out", default="build/reports", help="output directory")
    p.add_argument("--synth-dir", default=str(REPO / "build" / "synth"),
                   help="where `make synth` put <preset>.json gate counts")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-activity", action="store_true",
                   help="rtl backend on verilator: run the untraced build; with it, and on "
                        "any run without toggle counts, no recorded activity either (the CMOS "
                        "logic energy stays the gate-count estimate, logic leakage not "
                        "counted). Without it an untraced run (model backend, --sim icarus, "
                        "which never traces: a VCD of an image is too large) uses the recorded "
                        "measurement sim.hw.activity.RECORDED, labelled")
    return p


def _summary(reports: list) -> str:
    lines = [f"{'preset':<10} {'K':>3} {'energy/img':>11} {'latency/img':>11} {'GOPS':>8} "
             f"{'GOPS/W':>8} {'GOPS/W min..max':>17} {'headline GOPS/W':>16} "
             f"{'projected chip GOPS':>20}  headline basis"]
    for r in reports:
        pi, sp = r["per_image"], r["per_image_spread"]["gops_per_w"]
        rng = f"{_g(sp['min'])}..{_g(sp['max'])}"
        lines.append(f"{r['preset']:<10} {r['subarrays']:>3} {_si(pi['energy_j'], 'J'):>11} "
                     f"{_si(pi['latency_s'], 's'):>11} {_g(pi['gops']):>8} "
                     f"{_g(pi['gops_per_w']):>8} {rng:>17} "
                     f"{_g(r['headline']['gops_per_w']):>16} "
                     f"{_g(r['chip_projection']['gops']):>20}  {r['headline']['kind']}")
    n = reports[0]["images"] if reports else 0
    lines.append(f"(means over {n} image(s); GOPS/W: micro-ops only, min..max over the images; "
                 "headline GOPS/W: with the SRAMs, leakage and the logic energy of the basis "
                 "named, report.md)")
    return "\n".join(lines)


def run(args, argv) -> int:
    presets = _check_presets(args.preset)
    n = _parse_n(args.n)
    mat = parse_mat(args.mat)
    if mat is not None:                         # within every chosen preset's limit
        for name in presets:
            parse_mat(args.mat, preset(name), name)
    if args.backend not in BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(BACKENDS)}, not {args.backend!r}")
    out = check_dir("--out", args.out)          # before the toolchain, the data and any run
    for path in _output_files(out, presets):
        check_file("--out", path)
    sim = None
    if args.backend == "rtl":
        if args.sim not in SIMULATORS:
            raise UserError(f"--sim must be one of {', '.join(SIMULATORS)}, not {args.sim!r}")
        from sim.flows.rtl_backend import check_sim
        sim = check_sim(args.sim)
    model, model_path, ds = _resolve_model(args.model, args.dataset)
    x, y = _load_images(model, ds, n)
    # Compile for every preset and read the gate counts before anything runs.
    work = []
    for name in presets:
        config, compiled = _compile(model, name, mat, args.propose)
        gates, note = _load_gates(Path(args.synth_dir), name, config)
        logic = _load_logic(Path(args.synth_dir), name, config, compiled.subarrays)
        from sim.analysis.synth import load_cached_blocks, load_fit
        blocks = load_cached_blocks(Path(args.synth_dir), name, config, compiled.subarrays)
        if logic is None:       # no synthesis at this mat: the calibrated fit, when there is one
            fit_logic, fit_blocks, _ = load_fit(name, config, compiled.subarrays)
            if fit_logic is not None:
                logic, blocks = fit_logic, fit_blocks
        if gates is None and logic is not None:     # the note is about the old estimate only
            note = (f"{note.split(' (run')[0].split(' was made')[0]}: no textbook gate-count "
                    "estimate of the periphery to compare (the area's logic is "
                    f"{(logic.get('fitted') or {}).get('label') or 'the cached Yosys synthesis'})")
        work.append((name, config, compiled, gates, note, logic, blocks))
    reports = []
    for name, config, compiled, gates, note, logic, blocks in work:
        t0 = time.perf_counter()
        if not args.quiet:
            print(f"{name}: running {n} image(s) on a mat of {_subarrays(compiled.subarrays)}, "
                  f"{args.backend} backend ...",
                  file=sys.stderr, flush=True)
        # Toggles on Verilator only (a SAIF file: counts per bit); Icarus' VCD of a whole
        # image would be gigabytes (sim.hw.activity reads it, for small runs).
        trace = (None if args.backend != "rtl" or args.no_activity or sim != "verilator"
                 else _trace_path(name, compiled.subarrays, sim))
        if trace is not None:
            trace.parent.mkdir(parents=True, exist_ok=True)
        images = measure(compiled, model, x, backend=args.backend, model_path=model_path,
                         preset_name=name, sim=sim or "verilator", quiet=args.quiet,
                         trace_file=trace)
        if trace is not None:
            act_in = _read_activity(trace)
        else:       # no toggles of this run: the recorded measurement (sim.hw.activity.RECORDED)
            from sim.hw.activity import recorded_activity
            act_in = None if args.no_activity else recorded_activity(name, compiled.subarrays)
        rep = preset_report(name, config, compiled, model, images, backend=args.backend,
                            simulator=sim, dataset=ds, labels=y, gates=gates, gates_note=note,
                            logic=logic, first_image=x[0], activity=act_in, blocks=blocks)
        if name == "jeit_stt":      # seed 000's reproduction table (issue 13 item 4)
            from sim.analysis import jeit
            rep["jeit_table"] = jeit.table(config, compiled, rep)
        if name == "dima_sot":      # seed 002's reproduction table (issue 11 item 5)
            from sim.analysis import dima_repro
            rep["dima_table"] = dima_repro.table(
                config, subarrays=compiled.subarrays,
                **({"model_name": model.name} if model.name in dima_repro.ADDNETS else {}))
        # the presets' own chip organisation: the model over the mats of one bank
        rep["partitioned"] = partitioned(name, model, compiled.subarrays, rep,
                                         propose=args.propose, images=x)
        rep["seconds"] = round(time.perf_counter() - t0, 2)
        reports.append(rep)
    command = shlex.join(["python", "-m", "sim.analysis.report", *argv])
    for rep in reports:
        rep["command"] = command
    print(_summary(reports), flush=True)       # kept if writing the files fails
    written = _write_outputs(out, reports, markdown(reports, command))
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


@interruptible("python -m sim.analysis.report", "no report was written (files written before are "
               "unchanged)")
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
