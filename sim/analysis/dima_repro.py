"""Seed 002 (DIMA, Add-Net on SOT-MRAM) reproduction table: the seed's figures beside ours on the
bundled Add-Net (``golden/models/<name>.npz``, default ``digits_addnet``) on the ``dima_sot``
core.

``python -m sim.analysis.dima_repro [--model NAME] [--mat K] [-n N]`` prints it (and ``make report``
puts it into ``report.md`` for ``dima_sot``). Rows, each with where its seed figure comes from:

* **Cycles per n-bit add/sub** (seed sec. 3.2, Fig. 4a: 2n): measured on the cycle model
  (``sim.hw.core_model.CoreModel``, cycle-for-cycle the RTL core) as the cycles that one more
  ``sim.routes.dima_binconv.addsub_program`` adds to a program, for n = 8 (the seed's operand
  width) and for every accumulator width the compiled Add-Net uses.
* **Model size** (weights only, as the seed's Table 1 counts them; BN, thresholds and alpha
  are not counted on either side): (a) the basic blocks: our binarized depthwise + pointwise
  weights (1 bit each) against the 3x3 spatial convolution C -> q each block replaces, in float
  32-bit and in 8 bits (the 8-bit AdderNet's weights), and the seed's closed form of Table 1
  (``m/(q*32) + m/(kh*kw*32)``) on our shapes; beside the seed's Fig. 6b figure (88.7 %
  reduction against the 32-bit CNN at m = 4, sec. 4.2). (b) The whole network: ours (binarized
  blocks, the int8 inception layer and MLP) against the same topology with spatial
  convolutions in float (the seed's Table 2 'Comp. Rate', 64x) and in 8 bits (the seed gives
  the 8-bit comparison only as the plot Fig. 6c).
* **Accuracy** (seed Table 2, MNIST: baseline CNN 99.46 %, Add-Net 99.45 %; Table 3, SVHN, the
  channel-multiplier sweep): our Add-Net at m = 1, 2, 4, 8 and our spatial-convolution
  baseline of the same topology, from ``golden/models/<name>_msweep.json``
  (``python -m sim.flows.train --model NAME --sweep-m``); compared as the difference to the baseline
  (the data sets differ).
* **Energy per image by layer kind and by class**: the Add-Net run image by image on the cycle
  model (every logit == golden), each stage's micro-ops costed by
  ``sim.compile.dima_map.stage_energy`` (``sim.hw.energy.estimate`` over the columns of the
  stage's class: each class stage enables its own subarrays by ``MOVE SUBSEL``, the others
  neither sense nor write, as the seed's separate class A / class B subarrays; the basis of
  the counting mode and ``sim.analysis.report``, which give the same figure), the input image's
  host words apart, summed by kind (inception and MLP on the bit-wise convolver
  ``dima_bitwise``, class B; depthwise and pointwise binarized layers on the
  FA/FS lanes ``dima_binconv``, class A) and by class; the load programs (resident weight rows
  of the bit-wise convolver, once per model load) apart. Beside it, labelled as a comparison,
  the core without the class gate: every micro-op charged over the whole mat
  (``sim.compile.dima_map.ungated_energy``). The
  seed gives no such split: its energy figures (Fig. 9) are frames per joule per area and
  ratios against ASIC / DRAM / ReRAM / GPU baselines, none of which is modelled here; those
  rows say so.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from golden.model import MODELS_DIR, Model, bundled_model_path, infer_int, load_model
from rtl.outputs import interruptible

__all__ = ["SEED", "ADDNETS", "HOST_KIND", "addsub_cycles", "size_rows", "accuracy_rows",
           "energy_by_kind", "table", "markdown_lines", "main"]

#: The seed's figures, each with its section / table / figure.
SEED = {
    "cycles_per_addsub": ("2n", "seed 002 sec. 3.2, Fig. 4a ('n-bit add/sub operations ... in "
                                "2 x n cycles')"),
    "block_reduction_vs_fp32_m4": (88.7, "seed 002 sec. 4.2, Fig. 6b (one conv layer, m = 4)"),
    "block_reduction_vs_fp32_m1": (97.2, "seed 002 sec. 4.2, Fig. 6b (one conv layer, m = 1)"),
    "block_reduction_vs_int8": (None, "seed 002 sec. 4.2, Fig. 6c: a plot, no number in the "
                                      "text"),
    "comp_rate_vs_fp32": (64.0, "seed 002 Table 2, 'Comp. Rate' (Add-Net vs baseline CNN)"),
    "mnist_baseline": (99.46, "seed 002 Table 2 (MNIST, baseline CNN)"),
    "mnist_addnet": (99.45, "seed 002 Table 2 (MNIST, Add-Net)"),
    "svhn_spatial_fp32": (94.29, "seed 002 Table 3 (SVHN, spatial conv., 32-bit)"),
    "svhn_m": ({1: 93.82, 2: 94.61, 4: 94.73, 8: 94.84, 16: 95.02},
               "seed 002 Table 3 (SVHN, Add-Net, 1-bit weights, 8-bit inputs; m = 16 has "
               "8-bit weights)"),
    "ratios": [
        ("energy efficiency vs the best ASIC (YodaNN-like)", 1.4, "seed 002 abstract; sec. 4.5"),
        ("energy efficiency vs DRAM 1T1C-adder (DRISA-like)", 1.6, "seed 002 sec. 4.5"),
        ("energy efficiency vs DRAM 3T1C", 1.9, "seed 002 sec. 4.5"),
        ("energy saving vs ReRAM (Prime-like)", 8.4, "seed 002 sec. 4.5"),
        ("speedup vs ASIC-64", 15.7, "seed 002 abstract; sec. 4.6"),
        ("speedup vs DRAM 1T1C-adder", 5.6, "seed 002 sec. 4.6"),
        ("speedup vs ReRAM", 11.2, "seed 002 sec. 4.6"),
    ],
}

#: The bundled Add-Nets the table runs (``--model``; ``make report --model`` one of them: its own).
ADDNETS = ("digits_addnet", "fashion_addnet")

#: Bits per weight of each layer kind in the size count.
_BITS = {"bin_gconv2d": 1, "mul_conv2d": 8, "mul_linear": 8, "mul_gconv2d": 8,
         "adder_conv2d": 8, "adder_linear": 8, "adder_gconv2d": 8}


# ----------------------------------------------------------------------------------------------
# Cycles per add/sub

def addsub_cycles(config, n: int) -> int:
    """Cycles one n-bit add/sub adds to a program on the cycle model of ``config``: the
    difference between a program with two and one ``addsub_program``."""
    import dataclasses

    from sim.compile import asm
    from sim.hw.core_model import CoreModel
    from sim.routes.dima_binconv import addsub_program
    cfg = dataclasses.replace(config, operand_bits=max(config.operand_bits, 2))
    core = CoreModel(cfg, subarrays=1)
    one = core.run(asm.assemble(addsub_program(0, n, n, 0) + [asm.halt()]))
    two = core.run(asm.assemble(addsub_program(0, n, n, 0) + addsub_program(n, 2 * n, n, 0)
                                + [asm.halt()]))
    for r in (one, two):
        if r.error:
            raise RuntimeError(f"add/sub of {n} bits on the cycle model: {r.reason}")
    return int(two.counters["cycles"] - one.counters["cycles"])


# ----------------------------------------------------------------------------------------------
# Model size

def _blocks(model: Model) -> list:
    """``(dw, pw, p, m, q, kh, kw)`` of every basic block (depthwise + pointwise bin_gconv2d)."""
    out, layers = [], model.layers
    for i, ly in enumerate(layers[:-1]):
        nxt = layers[i + 1]
        if ly.kind == "bin_gconv2d" and nxt.kind == "bin_gconv2d" and ly.groups > 1:
            wd, wp = ly.params["weight"], nxt.params["weight"]
            p = ly.groups
            m = wd.shape[0] // p
            out.append((ly, nxt, p, m, wp.shape[0], wd.shape[2], wd.shape[3]))
    return out


def size_rows(model: Model) -> dict:
    """Weight bits of ``model`` (an Add-Net) and of the networks it is compared with."""
    blocks = _blocks(model)
    if not blocks:
        raise ValueError(f"model {model.name!r} has no Add-Net basic block (a depthwise "
                         f"bin_gconv2d followed by a pointwise one)")
    ours = sum(dw.params["weight"].size + pw.params["weight"].size
               for dw, pw, *_ in blocks)                        # 1 bit each
    spatial = sum(kh * kw * p * q for _, _, p, _, q, kh, kw in blocks)   # weights
    formula = [m / (q * 32) + m / (kh * kw * 32) for _, _, p, m, q, kh, kw in blocks]
    block_bits = {id(ly) for dw, pw, *_ in blocks for ly in (dw, pw)}
    rest = sum(ly.params["weight"].size * _BITS[ly.kind] for ly in model.layers
               if "weight" in ly.params and id(ly) not in block_bits)
    rest_weights = sum(ly.params["weight"].size for ly in model.layers
                       if "weight" in ly.params and id(ly) not in block_bits)
    total_ours = ours + rest
    total_fp32 = 32 * (spatial + rest_weights)
    total_int8 = 8 * (spatial + rest_weights)
    return {
        "blocks": len(blocks), "multiplier": blocks[0][3],
        "block_bits_ours": int(ours), "block_bits_fp32": int(32 * spatial),
        "block_bits_int8": int(8 * spatial),
        "block_reduction_vs_fp32_pct": 100 * (1 - ours / (32 * spatial)),
        "block_reduction_vs_int8_pct": 100 * (1 - ours / (8 * spatial)),
        "table1_formula_reduction_pct": 100 * (1 - float(np.mean(formula))),
        "total_bits_ours": int(total_ours), "total_bits_fp32": int(total_fp32),
        "total_bits_int8": int(total_int8),
        "compression_vs_fp32": total_fp32 / total_ours,
        "compression_vs_int8": total_int8 / total_ours,
    }


# ----------------------------------------------------------------------------------------------
# Accuracy

def accuracy_rows(name: str) -> dict | None:
    """The m sweep of ``<name>_msweep.json`` (None if it was not trained)."""
    path = MODELS_DIR / f"{name}_msweep.json"
    if not path.is_file():
        return None
    sw = json.loads(path.read_text())
    base = sw["spatial_baseline"]["float_test_accuracy"]
    rows = []
    seed_m, _ = SEED["svhn_m"]
    seed_base, _ = SEED["svhn_spatial_fp32"]
    for r in sw["multipliers"]:
        m = r["m"]
        rows.append({"m": m, "float": 100 * r["float_test_accuracy"],
                     "int8": 100 * r["int8_test_accuracy"],
                     "delta_int8_vs_baseline": 100 * (r["int8_test_accuracy"] - base),
                     "seed_svhn": seed_m.get(m),
                     "seed_delta_vs_baseline": (seed_m[m] - seed_base) if m in seed_m else None})
    return {"file": path.name, "command": sw["command"], "epochs": sw["epochs"],
            "n_test": sw["n_test"], "dataset": sw["dataset"],
            "baseline_float": 100 * base, "baseline_parameters":
                sw["spatial_baseline"]["parameters"], "rows": rows}


# ----------------------------------------------------------------------------------------------
# Energy by layer kind

#: The kind of the input image's data-memory words (the host writes them, one MOVE each).
HOST_KIND = "input image into the data memory (host words)"


def _kind(stage, model: Model) -> str:
    ly = model.layers[stage.layer_index]
    if ly.kind == "bin_gconv2d":
        return "binarized depthwise (class A, FA/FS lanes)" if ly.groups > 1 else \
            "binarized pointwise (class A, FA/FS lanes)"
    if ly.kind.endswith("pool2d"):      # seed 002 sec. 3.3: average pooling by Sum and Shifter
        return f"{ly.kind} (class B, bit-wise convolver's sum and shift)"
    if ly.kind.endswith("conv2d"):
        return "inception (class B, bit-wise convolver)"
    return "MLP (class B, bit-wise convolver)"


def energy_by_kind(model: Model, config, x: np.ndarray, *, subarrays: int | None = None) -> dict:
    """Run ``x`` (uint8 [N, C, H, W]) through ``model`` compiled for ``config`` (sizes raised
    by ``propose_config``) on the cycle model; per image: cycles and energy summed by layer
    kind and by class. Raises AssertionError if a logit differs from golden.

    Energy basis: each stage's class (``sim.compile.dima_map.stage_energy``), as the counting
    mode and ``sim.analysis.report``: each stage's measured micro-ops over the columns it
    enables (a class stage its class's subarrays, any other the whole mat), the
    input image's data-memory words (the host's, one MOVE each) apart, so ``energy_j`` is the
    energy ``python -m sim.analysis.counting --propose`` and ``python -m sim.analysis.report
    --propose`` give for the same model and mat. ``ungated_energy_j`` (and each class's
    ``ungated_energy_j``): the core without the class gate, every stage charged over the whole
    mat (``sim.compile.dima_map.ungated_energy``), a comparison figure."""
    from sim.compile.compiler import compile_model, propose_config, run_compiled
    from sim.hw.core_model import CoreModel
    from sim.hw.energy import estimate
    from sim.compile.dima_map import load_energy, stage_class, stage_energy, ungated_energy
    config = propose_config(model, config, subarrays=subarrays)
    compiled = compile_model(model, config, subarrays=subarrays)
    core = CoreModel(config, subarrays=compiled.subarrays, buffer_slots=compiled.buffer_slots,
                     channels=compiled.channels, out_depth=compiled.out_depth,
                     imem_depth=compiled.imem_depth)
    want = infer_int(model, x)
    kinds: dict = {}
    classes = {c: {"energy_j": 0.0, "ungated_energy_j": 0.0, "cycles": 0,
                   "subarrays": st.subarrays}
               for st in compiled.stages if (c := stage_class(st)) is not None}
    total_e, total_c, ungated_e = 0.0, 0, 0.0
    for i, image in enumerate(x):
        res = run_compiled(compiled, image, core, load_weights=i == 0)
        got = np.asarray(res.logits).ravel().tolist()
        if got != np.asarray(want[i]).ravel().tolist():
            raise AssertionError(f"{model.name} image {i}: core logits {got} != golden "
                                 f"{np.asarray(want[i]).tolist()}")
        words = sum(run.host_words for run in res.stages)
        if words:                       # the input image into the data memory (the host's)
            e = estimate(config, {"cycles": 0}, host={"data_words": words}).energy_j
            k = kinds.setdefault(HOST_KIND, {"energy_j": 0.0, "cycles": 0})
            k["energy_j"] += e / len(x)
            total_e += e / len(x)
            ungated_e += e / len(x)
        for st, run in zip(compiled.stages, res.stages, strict=True):
            e = stage_energy(config, st, run.micro_ops, compiled.width).energy_j
            es = ungated_energy(config, st, run.micro_ops, compiled.width).energy_j
            if stage_class(st) is not None:
                classes[stage_class(st)]["energy_j"] += e / len(x)
                classes[stage_class(st)]["ungated_energy_j"] += es / len(x)
                classes[stage_class(st)]["cycles"] += run.micro_ops["cycles"] / len(x)
            k = kinds.setdefault(_kind(st, model), {"energy_j": 0.0, "cycles": 0})
            k["energy_j"] += e / len(x)
            k["cycles"] += run.micro_ops["cycles"] / len(x)
            total_e += e / len(x)
            ungated_e += es / len(x)
            total_c += run.micro_ops["cycles"] / len(x)
    for k in (*kinds.values(), *classes.values()):
        k["energy_pct"] = 100 * k["energy_j"] / total_e
    for k in classes.values():
        k["ungated_energy_pct"] = 100 * k["ungated_energy_j"] / ungated_e
    lc, lops, le = load_energy(compiled)
    return {"images": len(x), "subarrays": compiled.subarrays, "clock_mhz": config.clock_mhz,
            "technology": config.technology, "kinds": kinds, "classes": classes,
            "load": {"cycles": lc, "row_writes": lops["write_row"], "energy_j": le,
                     "programs": len(compiled.load_programs)},
            "energy_j": total_e, "ungated_energy_j": ungated_e,
            "cycles": total_c, "frames_per_joule": 1 / total_e,
            "acc_bits": sorted({st.dima.acc_bits for st in compiled.stages
                                if st.dima is not None})}


# ----------------------------------------------------------------------------------------------
# The table

def table(config, *, model_name: str = "digits_addnet", images: int = 1,
          subarrays: int | None = None) -> dict:
    """Every row of the reproduction table (see the module docstring) for ``model_name`` on
    ``config`` (the ``dima_sot`` preset) with a mat of ``subarrays`` (default the preset's)."""
    from golden import datasets
    from sim.cli import MODEL_DATASET
    model = load_model(bundled_model_path(model_name))
    x, _ = datasets.load_dataset(MODEL_DATASET[model_name], "test")
    en = energy_by_kind(model, config, x[:images], subarrays=subarrays)
    widths = sorted({8, *en["acc_bits"]})
    return {
        "model": model_name, "dataset": MODEL_DATASET[model_name],
        "cycles_per_addsub": [{"n": n, "ours": addsub_cycles(config, n), "seed": 2 * n}
                              for n in widths],
        "size": size_rows(model), "accuracy": accuracy_rows(model_name), "energy": en,
        "seed": SEED,
    }


def _g(v, digits: int = 3) -> str:
    return "n/a" if v is None else f"{v:.{digits}g}"


def markdown_lines(t: dict) -> list:
    """The table as markdown lines (report.md and the command line)."""
    s, e = t["size"], t["energy"]
    src = {k: v[1] for k, v in SEED.items() if k != "ratios"}
    lines = [f"Seed 002 reproduction table (`sim.analysis.dima_repro`): "
             f"`{t['model']}` ({t['dataset']}) "
             f"compiled for this preset, {e['images']} test image(s) on the cycle model, mat of "
             f"{e['subarrays']} subarrays, {e['technology']}, every logit == golden.", "",
             "| figure | ours | seed 002 | source of the seed figure |", "|---|---|---|---|"]
    for r in t["cycles_per_addsub"]:
        lines.append(f"| cycles per {r['n']}-bit add/sub (FA/FS lanes, cycle model) | "
                     f"{r['ours']} | 2n = {r['seed']} | {src['cycles_per_addsub']} |")
    m = s["multiplier"]
    seed_red = SEED["block_reduction_vs_fp32_m4"][0] if m == 4 else None
    lines += [
        f"| weight storage reduction of a basic block (m = {m}) vs its float 3x3 spatial conv "
        f"| {_g(s['block_reduction_vs_fp32_pct'])} % ({s['block_bits_ours']} vs "
        f"{s['block_bits_fp32']} bits; Table 1's formula on our shapes: "
        f"{_g(s['table1_formula_reduction_pct'])} %) | {_g(seed_red)} % | "
        f"{src['block_reduction_vs_fp32_m4']} |",
        f"| weight storage reduction of a basic block vs an 8-bit spatial conv (the 8-bit "
        f"AdderNet's) | {_g(s['block_reduction_vs_int8_pct'])} % ({s['block_bits_int8']} bits) "
        f"| no number | {src['block_reduction_vs_int8']} |",
        f"| model size reduction, whole network vs the same topology with float spatial convs "
        f"| {_g(s['compression_vs_fp32'])}x ({s['total_bits_ours']} vs {s['total_bits_fp32']} "
        f"bits, of ours {s['total_bits_ours'] - s['block_bits_ours']} in the int8 inception "
        f"layer and MLP) | {SEED['comp_rate_vs_fp32'][0]:g}x | "
        f"{src['comp_rate_vs_fp32']} |",
        f"| model size reduction, whole network vs the 8-bit AdderNet of the same topology | "
        f"{_g(s['compression_vs_int8'])}x ({s['total_bits_int8']} bits) | not given | the seed "
        f"compares only against a float CNN (Table 2) and the 8-bit CNN plot Fig. 6c |",
    ]
    a = t["accuracy"]
    if a is None:
        lines.append(f"| accuracy, Add-Net vs spatial-conv baseline | not trained (python -m "
                     f"sim.flows.train --model {t['model']} --sweep-m) | | |")
    else:
        r4 = next((r for r in a["rows"] if r["m"] == 4), a["rows"][-1])
        mn_a, mn_b = SEED["mnist_addnet"][0], SEED["mnist_baseline"][0]
        sv_a, sv_b = SEED["svhn_m"][0][4], SEED["svhn_spatial_fp32"][0]
        lines.append(
            f"| accuracy, Add-Net (m = {r4['m']}, int8) vs a float spatial-conv baseline of the "
            f"same topology ({a['dataset']}, {a['n_test']} test images, {a['epochs']} epochs) "
            f"| {_g(r4['int8'], 4)} % vs {_g(a['baseline_float'], 4)} % "
            f"({r4['delta_int8_vs_baseline']:+.2f} points) | MNIST {mn_a} % vs {mn_b} % "
            f"({mn_a - mn_b:+.2f}); SVHN m = 4 {sv_a} % vs {sv_b} % ({sv_a - sv_b:+.2f}) | "
            f"{src['mnist_baseline']}; "
            f"{src['svhn_m']} |")
    lines.append(f"| energy per image (each class stage's micro-ops charged over its "
                 f"class's subarrays of the {e['subarrays']}, MOVE SUBSEL gating the others, as "
                 f"`make count` and `make report`) | "
                 f"{e['energy_j'] * 1e9:.4g} nJ ({e['frames_per_joule']:.4g} "
                 f"frames/J), {e['cycles']:.0f} cycles | no absolute figure (Fig. 9: frames/J "
                 f"per area, a plot) | seed 002 sec. 4.5, Fig. 9 |")
    for kind, k in e["kinds"].items():
        cyc = f", {k['cycles']:.0f} cycles" if k["cycles"] else ""
        lines.append(f"| of it: {kind} | {k['energy_j'] * 1e9:.4g} nJ ({k['energy_pct']:.1f} "
                     f"%){cyc} | no split given | seed 002 sec. 4.5 |")
    names = {"A": "binary-weight convolver (FA/FS lanes)", "B": "bit-wise convolver"}
    for cls, k in sorted(e.get("classes", {}).items()):
        lines.append(f"| of it: class {cls}, the {names[cls]}, its stages (on {k['subarrays']} "
                     f"of {e['subarrays']} subarrays, the others gated) | "
                     f"{k['energy_j'] * 1e9:.4g} nJ "
                     f"({k['energy_pct']:.1f} %), {k['cycles']:.0f} cycles | no split given; "
                     f"class A : class B = 7 : 2 subarrays | seed 002 sec. 3.2, 4.4.2 |")
    if e.get("ungated_energy_j") is not None:
        lines.append(f"| comparison, without the class gate: energy per image with every "
                     f"micro-op charged over the whole mat (not this core's cost: MOVE SUBSEL "
                     f"keeps the other class's subarrays from sensing and writing) | "
                     f"{e['ungated_energy_j'] * 1e9:.4g} nJ ("
                     + ", ".join(f"class {c} {k['ungated_energy_j'] * 1e9:.4g} nJ"
                                 for c, k in sorted(e.get("classes", {}).items()))
                     + ") | separate class A / class B subarrays, no energy split | seed 002 "
                       "sec. 3.2, Fig. 3a |")
    ld = e.get("load")
    if ld is not None:
        lines.append(f"| model load: resident weight rows of the bit-wise convolver (once, not "
                     f"per image) | {ld['row_writes']} row writes, {ld['cycles']} cycles, "
                     f"{ld['energy_j'] * 1e9:.4g} nJ ({ld['programs']} load programs; none "
                     f"where no rows are spare) | weights mapped into the sub-array, no count "
                     f"| seed 002 sec. 3.3, Fig. 5 |")
    for name, v, where in SEED["ratios"]:
        lines.append(f"| {name} | not modelled: a ratio against a baseline this project does "
                     f"not model | {v:g}x | {where} |")
    if a is not None:
        lines += ["", f"Accuracy against the channel multiplier m (seed Table 3's experiment on "
                  f"{a['dataset']}; `{a['command']}`, {a['epochs']} epochs, {a['n_test']} test "
                  f"images; the float spatial-conv baseline: {_g(a['baseline_float'], 4)} %, "
                  f"{a['baseline_parameters']} parameters):", "",
                  "| m | ours float | ours int8 | ours int8 - baseline | seed SVHN | seed - "
                  "seed baseline |", "|---|---|---|---|---|---|"]
        for r in a["rows"]:
            sd = r["seed_delta_vs_baseline"]
            lines.append(f"| {r['m']} | {r['float']:.2f} % | {r['int8']:.2f} % | "
                         f"{r['delta_int8_vs_baseline']:+.2f} | {_g(r['seed_svhn'], 4)} % | "
                         f"{'n/a' if sd is None else f'{sd:+.2f}'} |")
    return lines


@interruptible("python -m sim.analysis.dima_repro", "nothing was written (it only prints)")
def main(argv=None) -> int:
    """``python -m sim.analysis.dima_repro``: print the reproduction table."""
    from golden import datasets
    from rtl.config import preset
    from rtl.outputs import UserError
    from sim.cli import MODEL_DATASET
    p = argparse.ArgumentParser(prog="python -m sim.analysis.dima_repro",
                                description="Seed 002 reproduction table (dima_sot).")
    p.add_argument("--model", default="digits_addnet",
                   help="a bundled Add-Net (digits_addnet, fashion_addnet)")
    p.add_argument("-n", type=int, default=1, help="test images on the cycle model (default 1)")
    p.add_argument("--mat", type=int, default=None,
                   help="subarrays of the mat (default: the preset's)")
    args = p.parse_args(argv)
    try:
        if args.model not in MODEL_DATASET:
            raise UserError(f"--model must be one of {', '.join(MODEL_DATASET)}, not "
                            f"{args.model!r}")
        test = len(datasets.load_dataset(MODEL_DATASET[args.model], "test")[1])
        if not 1 <= args.n <= test:
            raise UserError(f"-n {args.n}: the {MODEL_DATASET[args.model]} test split has "
                            f"{test} images; give -n between 1 and {test}")
        from sim.util import parse_mat      # dima_sot's range: a CompileError line before
        mat = None if args.mat is None else parse_mat(args.mat, preset("dima_sot"), "dima_sot")
        t = table(preset("dima_sot"), model_name=args.model, images=args.n, subarrays=mat)
    except (UserError, ValueError, datasets.DatasetError) as e:
        print(f"python -m sim.analysis.dima_repro: error: {e}", file=sys.stderr)
        return 2
    print("\n".join(markdown_lines(t)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
