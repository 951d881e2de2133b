"""Benchmarks: ``python -m sim.analysis.bench --out build/bench/bench.json``.

Speed is measured here, never asserted in tests. The golden benchmarks run their workload
``--repeat`` times and report the best and median wall time, so a noisy machine shows as a
spread. The core benchmarks run the Fashion model on the numpy core model
(``--model-images``) and on the RTL in a simulator (``--rtl-images``), each on a mat of
``--mat K`` subarrays (default: the preset's ``subarrays_per_mat``), and record per preset the
mat (subarrays, columns, stage modes), the controller cycles per image, the share of them spent
building rows on chip (the chunk programs' erase and gather parts), images/s and simulated
cycles/s (for the RTL also the host port cycles per image).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import numpy as np

from golden import datasets
from golden.model import bundled_model_path, infer_float, infer_int, load_model
from rtl.outputs import check_file, interruptible

from sim.util import UserError, mat_range_help, parse_mat, write_json_atomic


def _timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)


def bench_golden_inference(repeat: int, images: int) -> list:
    out = []
    for name, ds in (("fashion_addernet", "fashion_mnist"), ("digits_addernet", "digits")):
        try:
            model = load_model(bundled_model_path(name))
            x, _ = datasets.load_dataset(ds, "test")
        except (ValueError, datasets.DatasetError) as e:
            out.append({"name": f"golden_int/{name}", "skipped": str(e)})
            continue
        x = x[:images]
        for label, fn in (("golden_int", infer_int), ("golden_float", infer_float)):
            best, med = _timed(lambda fn=fn, m=model, x=x: fn(m, x), repeat)
            out.append({"name": f"{label}/{name}", "images": int(len(x)),
                        "best_s": best, "median_s": med,
                        "images_per_second_best": len(x) / best,
                        "images_per_second_median": len(x) / med})
    return out


#: The presets (and the route of their adder layers, each preset's own ``dataflow``: the RTL
#: benchmark runs the preset as it is) the core benchmarks run.
CORE_PRESETS = (("nand_spin", "write_free"), ("jeit_stt", "jeit_fa"))


def _compile(model, config, name, mat):
    """``(K, compiled)``: the Fashion model on a mat of ``mat`` (None: the preset's)."""
    from sim.compile.compiler import CompileError, compile_model
    k = config.subarrays_per_mat if mat is None else mat
    try:
        return k, compile_model(model, config, subarrays=k)
    except CompileError as e:
        raise UserError(f"--mat {k}: the Fashion model does not compile for {name}: "
                        f"{e}") from None


def _mat_record(config, compiled, cycles: int, images: int) -> dict:
    """The mat and the per-image cycle figures shared by the core benchmarks."""
    return {"subarrays": compiled.subarrays, "mat_columns": compiled.width,
            "stage_modes": [st.mode for st in compiled.stages],
            "cycles_per_image": cycles / images,
            "gather_share_of_cycles": compiled.gather_cycles / compiled.cycles}


def bench_core_model(images: int, mat: int | None = None) -> list:
    """The cycle-exact numpy core model (sim.hw.core_model) on the Fashion model, per preset
    route, on a mat of ``mat`` subarrays (default: the preset's ``subarrays_per_mat``)."""

    from rtl.config import preset
    from sim.compile.compiler import load_compiled, run_compiled
    from sim.hw.core_model import CoreModel
    model = load_model(bundled_model_path("fashion_addernet"))
    x, _ = datasets.load_dataset("fashion_mnist", "test")
    out = []
    for name, dataflow in CORE_PRESETS:
        config = preset(name).with_dataflow(dataflow)
        k, compiled = _compile(model, config, name, mat)
        core = CoreModel(config, subarrays=k)
        load_compiled(compiled, core)
        t0 = time.perf_counter()
        cycles = 0
        for image in x[:images]:
            cycles += run_compiled(compiled, image, core, load_weights=False).counters["cycles"]
        wall = time.perf_counter() - t0
        out.append({"name": f"core_model/fashion_addernet/{name}-{dataflow}/mat{k}",
                    "images": images, **_mat_record(config, compiled, cycles, images),
                    "seconds": wall, "images_per_second": images / wall,
                    "simulated_cycles_per_second": cycles / wall,
                    "note": "cycles = the controller's (the model has no host port); "
                            "gather share = erase + gather parts of the chunk programs "
                            "(sim.compile.compiler.CompiledModel.gather_cycles) / all cycles"})
    return out


def bench_rtl(images: int, sim: str, mat: int | None = None) -> list:
    """The generated core in a simulator (sim.flows.rtl_backend, the make sim path) on the Fashion
    model, on a mat of ``mat`` subarrays (default: the preset's ``subarrays_per_mat``): wall
    time of the simulation (the build is not timed; a cached build is reused)."""
    from rtl.config import preset
    from sim.flows.rtl_backend import RtlRunError, check_sim, run_images
    check_sim(sim)
    model_path = bundled_model_path("fashion_addernet")
    model = load_model(model_path)
    x, _ = datasets.load_dataset("fashion_mnist", "test")
    out = []
    for name, _ in CORE_PRESETS:
        config = preset(name)
        k, compiled = _compile(model, config, name, mat)
        try:
            # run_images builds (or reuses) the core under its lock, outside wall_seconds
            res = run_images(model_path=model_path, config=config, preset_name=name, sim=sim,
                             x=x[:images], quiet=True, subarrays=k)
        except RtlRunError as e:
            raise UserError(f"RTL benchmark on {name} (mat of {k}) failed: {e}") from None
        cycles = sum(im["counters"]["cycles"] for im in res["images"])
        host = sum(im["host_cycles"] for im in res["images"])
        wall = res["wall_seconds"]
        out.append({"name": f"rtl/{sim}/fashion_addernet/{name}-{config.dataflow}/mat{k}",
                    "images": images, **_mat_record(config, compiled, cycles, images),
                    "host_cycles_per_image": host / images,
                    "seconds": wall, "images_per_second": images / wall,
                    "simulated_cycles_per_second": (cycles + host) / wall,
                    "note": "wall time of the cocotb run (simulator start, compile of the model, "
                            "weight and table loads, golden check per image included); "
                            "simulated cycles = controller + host port; gather share = erase + "
                            "gather parts of the chunk programs / controller cycles"})
    return out


@interruptible("python -m sim.analysis.bench", "no results were written (files written before are "
               "unchanged)")
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.bench",
                                description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/bench/bench.json", help="output JSON file")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--model-images", type=int, default=3,
                   help="images for the numpy core model benchmark (0: skip)")
    p.add_argument("--rtl-images", type=int, default=0,
                   help="images for the RTL benchmark (0, the default: skip; make bench: 5)")
    p.add_argument("--sim", default="verilator", help="simulator of the RTL benchmark")
    p.add_argument("--mat", default=None,
                   help=f"subarrays in lock-step of the core benchmarks, {mat_range_help()} "
                        "(default: each preset's subarrays_per_mat)")
    args = p.parse_args(argv)
    try:
        mat = parse_mat(args.mat)
        if mat is not None:                     # within every benchmarked preset's limit
            from rtl.config import preset
            for name, _ in CORE_PRESETS:
                parse_mat(args.mat, preset(name), name)
        check_file("--out", args.out, example="bench.json")        # before any benchmark
        if args.repeat < 1 or args.images < 1:
            raise UserError(f"--repeat and --images must be >= 1, not {args.repeat} and "
                            f"{args.images}")
        if args.model_images < 0 or args.rtl_images < 0:
            raise UserError(f"--model-images and --rtl-images must be >= 0, not "
                            f"{args.model_images} and {args.rtl_images}")
        results = bench_golden_inference(args.repeat, args.images)
        if args.model_images:
            results += bench_core_model(args.model_images, mat)
        if args.rtl_images:
            results += bench_rtl(args.rtl_images, args.sim, mat)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = {"host": {"python": platform.python_version(), "machine": platform.machine(),
                       "numpy": np.__version__},
              "results": results}
    for r in results:
        if "skipped" in r:
            print(f"{r['name']:56s} skipped: {r['skipped']}")
        elif "simulated_cycles_per_second" in r:
            print(f"{r['name']:56s} {r['images_per_second']:10.2f} images/s, "
                  f"{r['simulated_cycles_per_second']:10.0f} simulated cycles/s, "
                  f"{r['cycles_per_image']:8.0f} cycles/image "
                  f"({100 * r['gather_share_of_cycles']:.1f} % gather)")
        else:
            print(f"{r['name']:56s} {r['images_per_second_best']:10.0f} images/s (best), "
                  f"{r['images_per_second_median']:10.0f} (median)")
    sys.stdout.flush()              # the results are kept if writing the file fails
    try:
        write_json_atomic(args.out, report, option="--out")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
