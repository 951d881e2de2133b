"""spinpim command line: ``python -m sim.cli run --model fashion_addernet -n 200``.

``run`` evaluates a model on its data set's test split and writes a JSON report: the golden
integer model and the float reference (their accuracies and agreement), and with
``--backend rtl`` the compiled model on the generated core (``rtl.core``) in Icarus or Verilator:
its agreement with golden (every stage of every image is compared), cycles per image, micro-op
counts, array writes and the simulator's speed. ``--mat K`` simulates a mat of K subarrays in
lock-step (default: the preset's ``subarrays_per_mat``).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

from golden import datasets
from golden.model import ModelFormatError, bundled_model_path, infer_float, infer_int, load_model
from rtl.outputs import check_file, interruptible

from rtl.config import SIZE_FIELDS

from sim.config_file import add_size_options, resolve_config, size_option
from sim.util import UserError, parse_mat, write_json_atomic

BACKENDS = ("golden", "rtl")
#: Which data set each bundled model was trained on.
MODEL_DATASET = {"fashion_addernet": "fashion_mnist", "digits_addernet": "digits",
                 "digits_addnet": "digits", "fashion_addnet": "fashion_mnist",
                 "fashion_mulcnn_w8i8": "fashion_mnist", "fashion_mulcnn_w4i4": "fashion_mnist"}


def _resolve_model(spec: str):
    """``(model, data set name or None, path)`` of a model file path or a bundled name."""
    p = Path(spec)
    try:
        exists = p.exists()
    except (OSError, ValueError):   # a name over NAME_MAX, a NUL byte: no such file
        exists = False
    if p.suffix == ".npz" or exists:
        return load_model(p), MODEL_DATASET.get(p.stem), p
    try:
        path = bundled_model_path(spec)
    except ValueError as e:
        raise UserError(f"--model: {e} (or give the path of a .npz model file)") from None
    return load_model(path), MODEL_DATASET.get(spec), path


def _parse_n(text: str) -> int | None:
    if text == "all":
        return None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise UserError(f"-n must be a positive integer or 'all', not {text!r}")
    return n


def cmd_run(args) -> int:
    from sim.flows.imac_flow import cmd_run_imac, is_imac_model
    args.explicit_preset, args.preset = args.preset, args.preset or "nand_spin"
    if is_imac_model(args.model):         # a CPU-IMAC network (seed 003): sim/flows/imac_flow.py
        sizes = [size_option(f) for f in SIZE_FIELDS if getattr(args, f) is not None]
        if args.config is not None or sizes:
            raise UserError(f"{(['--config'] if args.config else sizes)[0]}: a CPU-IMAC "
                            f"network runs on the IMAC co-processor, which has none of the "
                            f"core's memories to size")
        return cmd_run_imac(args)
    n = _parse_n(args.n)
    # An explicit --report is checked before the simulator toolchain, the default one (named
    # after the model) as soon as the model is loaded: both before any data or inference.
    out = check_file("--report", args.report, example="report.json") if args.report else None
    # The options of the rtl backend are checked with the golden backend too (which does not
    # use them): a mistake is refused, not ignored. Only the rtl backend needs the simulator.
    rtl_config = _config_of(args, need_sim=args.backend == "rtl")
    mat = parse_mat(args.mat, rtl_config, args.preset) or rtl_config.subarrays_per_mat
    config = rtl_config if args.backend == "rtl" else None
    model, ds_name, model_path = _resolve_model(args.model)
    if args.propose and config is not None:     # the core's sizes from the model (issue 11)
        config = proposed_config(model, config, mat, args.preset)
    if out is None:
        tag = (args.backend if config is None else
               f"rtl-{args.preset}-{config.dataflow}-mat{mat}")
        out = check_file("--report", f"build/reports/{model.name}-{tag}.json")
    ds_name = args.dataset or ds_name
    if ds_name is None:
        raise UserError(f"--dataset: cannot tell which data set {args.model!r} belongs to; "
                        f"give --dataset fashion_mnist or --dataset digits")
    try:
        x, y = datasets.load_dataset(ds_name, "test")
    except (ValueError, datasets.DatasetError) as e:
        raise UserError(str(e)) from None
    if x.shape[1:] != tuple(model.input_shape):
        raise UserError(f"model {model.name!r} expects inputs {list(model.input_shape)}, data set "
                        f"{ds_name!r} has {list(x.shape[1:])}")
    if n is not None:
        if n > len(y):
            raise UserError(f"-n {n}: the {ds_name} test split has only {len(y)} images; give "
                            f"-n between 1 and {len(y)}, or 'all'")
        x, y = x[:n], y[:n]
    from tqdm import tqdm

    logits, flogits = [], []
    t0 = time.perf_counter()
    step = 100
    with tqdm(total=len(y), desc=f"{model.name} [{args.backend}]", unit="img",
              disable=args.quiet or not sys.stderr.isatty()) as bar:
        for s in range(0, len(y), step):
            logits.append(infer_int(model, x[s:s + step]))
            bar.update(min(step, len(y) - s))
    t_int = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in range(0, len(y), step):
        flogits.append(infer_float(model, x[s:s + step]))
    t_float = time.perf_counter() - t0
    logits, flogits = np.concatenate(logits), np.concatenate(flogits)
    pred, fpred = logits.argmax(1), flogits.argmax(1)
    report = {
        "model": model.name, "dataset": ds_name, "split": "test", "images": int(len(y)),
        "backend": args.backend,
        "int8_accuracy": float((pred == y).mean()),
        "float_accuracy": float((fpred == y).mean()),
        "int8_float_prediction_agreement": float((pred == fpred).mean()),
        "golden_images_per_second": len(y) / t_int,
        "float_images_per_second": len(y) / t_float,
        "host": {"python": platform.python_version(), "machine": platform.machine()},
    }
    rtl = None
    if args.backend == "rtl":
        rtl = _run_rtl(args, config, mat, model, model_path, x, logits)
        report["rtl"] = rtl
    print(f"model {model.name} on {ds_name} test split, {len(y)} images, backend {args.backend}")
    print(f"  int8 accuracy      {100 * report['int8_accuracy']:.2f} %")
    print(f"  float accuracy     {100 * report['float_accuracy']:.2f} %")
    print(f"  int8 == float pred {100 * report['int8_float_prediction_agreement']:.2f} %")
    print(f"  golden speed       {report['golden_images_per_second']:.0f} images/s")
    if rtl is not None:
        _print_rtl(rtl)
    sys.stdout.flush()              # the summary is kept if writing the report fails
    write_json_atomic(out, report, option="--report")
    print(f"report: {out}")
    return 0


def _config_of(args, *, need_sim: bool = True):
    from sim.flows.rtl_backend import SIMULATORS, check_sim
    if need_sim:
        check_sim(args.sim)
    elif args.sim not in SIMULATORS:
        raise UserError(f"--sim must be one of {', '.join(SIMULATORS)}, not {args.sim!r}")
    # The preset, then the --config file, then --dataflow and the size options
    # (sim.config_file); the preset the file names is the run's preset.
    args.preset, config = resolve_config(
        preset_name=getattr(args, "explicit_preset", args.preset), config_file=args.config,
        sizes={f: getattr(args, f) for f in SIZE_FIELDS}, dataflow=args.dataflow,
        conv_map=args.conv_map)
    # issue 14 item 2 (sim.compile.nand_postproc)
    if getattr(args, "postproc", None):
        from sim.compile.nand_postproc import with_postproc
        config = with_postproc(config, args.postproc)
    return config


def proposed_config(model, config, mat: int, preset_name: str):
    """``config`` with the sizes the model needs on a mat of ``mat`` subarrays
    (``sim.compile.compiler.propose_config``: each size raised to the smallest allowed value that
    holds
    the model, sizes that suffice kept); prints what changed. A model that no size makes fit
    is a one-line UserError."""
    from sim.compile.compiler import CompileError, propose_config
    try:
        new = propose_config(model, config, subarrays=mat)
    except CompileError as e:
        raise UserError(f"--propose: --preset {preset_name} --mat {mat}: {e}") from None
    changed = [f"{f} {getattr(config, f)} -> {getattr(new, f)}" for f in SIZE_FIELDS
               if getattr(new, f) != getattr(config, f)]
    print(f"--propose: {', '.join(changed) or 'the configured sizes hold the model'}",
          flush=True)
    return new


def _run_rtl(args, config, mat, model, model_path, x, golden_logits) -> dict:
    from sim.compile.compiler import CompileError, compile_model
    from sim.flows.rtl_backend import RtlRunError, run_images
    try:
        # a model that does not map fails here, before any build
        compiled = compile_model(model, config, subarrays=mat)
    except CompileError as e:
        raise UserError(f"--preset {args.preset} --mat {mat}: {e}") from None
    try:
        res = run_images(model_path=model_path, config=config, preset_name=args.preset,
                         sim=args.sim, x=x, quiet=args.quiet, subarrays=mat)
    except RtlRunError as e:
        raise UserError(f"RTL run failed: {e}") from None
    images = res["images"]
    logits = np.array([im["logits"] for im in images], dtype=np.int64)
    same = (logits == golden_logits[:len(images)]).all(axis=1) if len(images) else []
    agree = float(np.mean(same)) if len(images) else 0.0
    totals = {}
    for im in images:
        for k, v in im["counters"].items():
            totals[k] = totals.get(k, 0) + v
    n = max(1, len(images))
    cycles = totals.get("cycles", 0)
    # Rows the programs build from the data memory (static: every chunk's data rows); every
    # other array write is an abs-diff write-back.
    from sim.compile.bit_widths import rows_written   # <W:I> stages write I of n planes
    # (seed 001's in-memory post-processing programs, nand_spin's default, gather no patch:
    # their rows, the raw sums' bit-planes, the affine map's and the results, are static)
    built = sum(rows_written(st, c) for st in compiled.stages for c in st.chunks
                if not (st.postproc == "in_memory" and c.patches == 0))
    inmem = sum(ops.get("program", 0) + ops.get("write_row", 0) for st in compiled.stages
                for ops in st.postproc_ops.values())
    writes = (totals.get("write_row", 0) + totals.get("program", 0)) / n
    return {
        "preset": args.preset, "dataflow": config.dataflow, "simulator": args.sim,
        "subarrays": mat, "mat_columns": mat * config.columns,
        "core_sizes": {f: getattr(config, f) for f in SIZE_FIELDS},
        "instruction_word_bits": config.isa.word_bits,
        "stage_modes": {st.name: st.mode for st in compiled.stages},
        "images": len(images), "logits_equal_to_golden": agree,
        "cycles_per_image": cycles / n,
        "host_cycles_per_image": sum(im["host_cycles"] for im in images) / n,
        "host_data_words_per_image": sum(im["host_words"] for im in images) / n,
        "array_writes_per_image": {
            "rows_built_on_chip": built,
            "in_memory_postproc_rows": inmem,
            "write_backs": writes - built - inmem,
            "strip_erases": totals.get("erase", 0) / n,
        },
        "stall_cycles_per_image": totals.get("stalls", 0) / n,
        "stall_table": config.stalls,
        "micro_ops_per_image": {k: v / n for k, v in totals.items()
                                if k not in ("cycles", "stalls")},
        "simulated_cycles_per_second": cycles / res["wall_seconds"],
        "images_per_second": len(images) / res["wall_seconds"],
        "wall_seconds": res["wall_seconds"],
        **({"zero_skip": _zero_skip_summary(config, mat, model, compiled, images),
            "cycle_model": _cycle_model_check(config, mat, compiled, x, images)}
           if config.zero_skip else {}),
        **({"dima": _dima_summary(compiled, images)}
           if any(st.route == "dima_binconv" for st in compiled.stages) else {}),
        "postproc": _postproc_summary(compiled, images),
    }


def _postproc_summary(compiled, images) -> dict:
    """``sim.compile.nand_postproc.postproc_summary`` of the measured per-stage counters, per
    image (None without them)."""
    from sim.compile.nand_postproc import postproc_summary
    if not images or any("stages" not in im for im in images):
        return None
    n = len(images)
    per_stage = [{} for _ in compiled.stages]
    for im in images:
        for c, row in zip(per_stage, im["stages"], strict=True):
            for k, v in row["counters"].items():
                c[k] = c.get(k, 0) + v / n
    return postproc_summary(compiled, per_stage)


def _dima_summary(compiled, images) -> dict:
    """The DIMA counters per image (route ``dima_binconv``, seed 002): from each image's
    per-stage counters (measured) and the compiled plan (add/subs, their width N, the gather's
    row writes). Class A / class B busy cycles: the cycles of the stages on the FA/FS lanes /
    on the bit-wise convolver (``dima_bitwise``, or ``and_bitcount`` without it); AND2 senses:
    the two-row ANDs of the bit-wise convolver (the core has no per-class counter: the
    classes are roles of the one mat, each stage runs on the whole mat)."""
    n = max(1, len(images))
    dstages = {st.name: st for st in compiled.stages if st.route == "dima_binconv"}
    out = {"stages": {}, "class_a_busy_cycles": 0, "class_b_busy_cycles": 0, "and2_senses": 0}
    for im in images:
        for row in im["stages"]:
            c = row["counters"]
            if row["name"] in dstages:
                out["class_a_busy_cycles"] += c["cycles"] / n
            elif row["route"] in ("dima_bitwise", "and_bitcount"):
                out["class_b_busy_cycles"] += c["cycles"] / n
            out["and2_senses"] += c["and2"] / n
    for name, st in dstages.items():
        d = st.dima
        adds = d.terms * st.out_channels * len(range(0, st.n_patches, d.batch))
        gather_writes = len(st.chunks) * d.terms * d.acc_bits
        fa = sum(r["counters"]["fa_step"] for im in images for r in im["stages"]
                 if r["name"] == name) / n
        wr = sum(r["counters"]["write_row"] for im in images for r in im["stages"]
                 if r["name"] == name) / n - gather_writes
        out["stages"][name] = {"acc_bits": d.acc_bits, "add_subs": adds, "fa_steps": fa,
                               "sum_bit_writes": wr,
                               "cycles_per_add_sub": (fa + wr) / adds if adds else 0.0,
                               "cycles": st.cycles}
    return out


def _cycle_model_check(config, mat, compiled, x, images) -> dict:
    """The RTL's counters of each image (data-dependent with zero skipping) against the cycle
    model's (``sim.hw.core_model``) on the same image: the images whose counters are all
    equal, and the first that differs."""
    from sim.compile.compiler import run_compiled
    from sim.hw.core_model import CoreModel
    ref = CoreModel(config, subarrays=mat)
    equal, first = 0, None
    for i, im in enumerate(images):
        want = run_compiled(compiled, x[i], ref, load_weights=i == 0).counters
        if dict(want) == im["counters"]:
            equal += 1
        elif first is None:
            diff = {k: (im["counters"].get(k), v) for k, v in want.items()
                    if im["counters"].get(k) != v}
            first = f"image {i}: (rtl, cycle model) {diff}"
    return {"images": len(images), "counters_equal": equal, "first_difference": first}


def _zero_skip_summary(config, mat, model, compiled, images) -> dict:
    """Zero skipping (``config.zero_skip``) per image, measured by the core's counters
    (``rtl.isa.ZERO_SKIP_COUNTERS``): operands gathered and the zero ones per stage, operands
    and tile dots skipped, cycles saved; beside them the cycles of the same programs without a
    skip (the compiler's static count, SKIPZ included) and of the programs compiled without
    zero skipping (no SKIPZ)."""
    import dataclasses

    from sim.compile.compiler import compile_model
    n = max(1, len(images))

    def per_image(counts):
        return {k: v / n for k, v in counts.items()}

    total: dict = {}
    stages: dict = {}
    for im in images:
        for k, v in im["zero_skip"].items():
            total[k] = total.get(k, 0) + v
        for st in im["stages"]:
            acc = stages.setdefault(st["name"], {})
            for k, v in st["zero_skip"].items():
                acc[k] = acc.get(k, 0) + v
    plain = compile_model(model, dataclasses.replace(config, zero_skip=False), subarrays=mat)
    return {
        **per_image(total),
        "zero_operand_fraction": total.get("zs_zero", 0) / max(1, total.get("zs_operands", 0)),
        "cycles_if_no_tile_skipped": compiled.cycles,
        "cycles_without_zero_skip": plain.cycles,
        "stages": {name: {**per_image(c), "zero_operand_fraction":
                          c.get("zs_zero", 0) / max(1, c.get("zs_operands", 0))}
                   for name, c in stages.items()},
    }


def _print_rtl(rtl: dict) -> None:
    print(f"  RTL ({rtl['simulator']}, preset {rtl['preset']}, dataflow {rtl['dataflow']}, "
          f"mat of {rtl['subarrays']} subarrays = {rtl['mat_columns']} columns): "
          f"{rtl['images']} images, every stage of every image == golden")
    print(f"    agreement with golden  {100 * rtl['logits_equal_to_golden']:.2f} % of images "
          "(logits equal)")
    print(f"    cycles per image       {rtl['cycles_per_image']:.0f} (+ "
          f"{rtl['host_cycles_per_image']:.0f} host cycles: "
          f"{rtl['host_data_words_per_image']:.0f} image words and the programs)")
    slow = ", ".join(f"{k} {c}" for k, c in rtl["stall_table"].items() if c > 1)
    print(f"    stall cycles per image {rtl['stall_cycles_per_image']:.0f} (of the cycles; "
          f"device operations of more than one cycle: {slow or 'none'})")
    ops = ", ".join(f"{k} {v:.0f}" for k, v in rtl["micro_ops_per_image"].items() if v)
    print(f"    micro-ops per image    {ops}")
    w = rtl["array_writes_per_image"]
    pp = (f"{w['in_memory_postproc_rows']:.0f} rows of the in-memory post-processing, "
          if w["in_memory_postproc_rows"] else "")
    print(f"    array writes per image {w['rows_built_on_chip']:.0f} rows built on chip from the "
          f"data memory, {pp}{w['write_backs']:.0f} write-back rows, {w['strip_erases']:.0f} strip "
          "erases (the host writes no array row)")
    print(f"    simulator speed        {rtl['simulated_cycles_per_second']:.0f} cycles/s, "
          f"{rtl['images_per_second']:.2f} images/s")
    from sim.compile.nand_postproc import postproc_lines
    for line in postproc_lines(rtl["postproc"], indent="      ") if rtl["postproc"] else ():
        print(f"    {line}")
    dima = rtl.get("dima")
    if dima:
        print(f"    DIMA (seed 002)        class A (FA/FS lanes) busy "
              f"{dima['class_a_busy_cycles']:.0f} cycles, class B (bit-wise convolver) busy "
              f"{dima['class_b_busy_cycles']:.0f} cycles per image (per-stage cycles; one mat), "
              f"{dima['and2_senses']:.0f} AND2 senses")
        for name, d in dima["stages"].items():
            print(f"      {name:40s} {d['add_subs']} add/subs of N={d['acc_bits']} bits: "
                  f"{d['cycles_per_add_sub']:.1f} cycles each (2N = {2 * d['acc_bits']}), "
                  f"{d['fa_steps']:.0f} FA/FS steps, {d['sum_bit_writes']:.0f} sum-bit writes")
    zs = rtl.get("zero_skip")
    if zs:
        print(f"    zero skipping          {100 * zs['zero_operand_fraction']:.1f} % of "
              f"{zs['zs_operands']:.0f} operands zero; {zs['zs_skipped']:.0f} operands and "
              f"{zs['zs_tiles']:.0f} tile dots skipped; {zs['zs_cycles_saved']:.0f} cycles "
              f"saved per image (no tile skipped: {zs['cycles_if_no_tile_skipped']}; compiled "
              f"without zero skipping: {zs['cycles_without_zero_skip']})")
        for name, st in zs["stages"].items():
            print(f"      {name:40s} {100 * st['zero_operand_fraction']:5.1f} % zero operands,"
                  f" {st['zs_tiles']:.0f} tile dots / {st['zs_cycles_saved']:.0f} cycles "
                  "skipped")
    cm = rtl.get("cycle_model")
    if cm:
        print(f"    cycle model            every counter (cycles too) equal to the RTL's on "
              f"{cm['counters_equal']} of {cm['images']} images"
              + (f"; first difference {cm['first_difference']}" if cm["first_difference"]
                 else ""))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.cli", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="evaluate a model on its test split")
    r.add_argument("--model", default="fashion_addernet",
                   help="bundled model name or path of a .npz model file")
    r.add_argument("--dataset", choices=("fashion_mnist", "digits"),
                   help="data set (default: the one the bundled model was trained on)")
    r.add_argument("-n", default="200", help="number of test images, or 'all'")
    r.add_argument("--backend", choices=BACKENDS, default="golden")
    r.add_argument("--preset", default=None, help="accelerator preset (rtl backend; default "
                   "the --config file's, else nand_spin)")
    r.add_argument("--dataflow", help="override the preset's dataflow for adder layers "
                   "(write_free, abs_diff or jeit_fa)")
    r.add_argument("--sim", default="verilator", help="icarus or verilator (rtl backend)")
    r.add_argument("--postproc", help="post-processing (default: the preset's; nand_spin's is "
                   "mixed): ppu, in_memory (seed 001 sec. 4.2 on the bit-counters, route "
                   "nand_inmem; layers it cannot run yet are refused by the compiler with one "
                   "line) or mixed (in memory where built, the PPU for the other layers)")
    r.add_argument("--mat", help="subarrays in lock-step in the simulated mat (rtl backend; "
                   "default: the preset's subarrays_per_mat)")
    add_size_options(r)
    r.add_argument("--propose", action="store_true",
                   help="rtl backend: raise every core size the model needs to the smallest "
                   "that holds it (sim.compile.compiler.propose_config), after the options above")
    r.add_argument("--report", help="JSON report path (default build/reports/MODEL-golden.json "
                   "or MODEL-rtl-PRESET-DATAFLOW-matK.json)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument("--imac-sigma", type=float, default=0.05,
                   help="CPU-IMAC networks: device variation of the synapses (lognormal "
                   "sigma, default 0.05)")
    r.add_argument("--imac-seed", type=int, default=0,
                   help="CPU-IMAC networks: seed of the variation (default 0)")
    r.set_defaults(func=cmd_run)
    return p


@interruptible("python -m sim.cli", "no report was written (files written before are unchanged)")
def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ModelFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
