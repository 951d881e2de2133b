"""Benchmarks: ``python -m sim.bench --out build/bench/bench.json``.

Speed is measured here, never asserted in tests. Each benchmark runs its workload ``--repeat``
times and reports the best and median wall time, so a noisy machine shows as a spread.
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

from .util import UserError, write_json_atomic


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


def bench_core_model(images: int) -> list:
    """The cycle-exact numpy core model (sim.core_model) on the Fashion model, per preset route."""
    import dataclasses

    from rtl.config import preset
    from sim.compiler import compile_model, load_compiled, run_compiled
    from sim.core_model import CoreModel
    model = load_model(bundled_model_path("fashion_addernet"))
    x, _ = datasets.load_dataset("fashion_mnist", "test")
    out = []
    for name, dataflow in (("nand_spin", "write_free"), ("jeit_stt", "abs_diff")):
        config = dataclasses.replace(preset(name), dataflow=dataflow)
        compiled = compile_model(model, config)
        core = CoreModel(config)
        load_compiled(compiled, core)
        t0 = time.perf_counter()
        cycles = 0
        for image in x[:images]:
            cycles += run_compiled(compiled, image, core, load_weights=False).counters["cycles"]
        wall = time.perf_counter() - t0
        out.append({"name": f"core_model/fashion_addernet/{name}-{dataflow}",
                    "images": images, "seconds": wall, "images_per_second": images / wall,
                    "simulated_cycles_per_second": cycles / wall})
    return out


def bench_rtl(images: int, sim: str) -> list:
    """The generated core in a simulator (sim.rtl_backend, the make sim path) on the Fashion
    model: wall time of the simulation (the build is not timed; a cached build is reused)."""
    from rtl.config import preset
    from sim.rtl_backend import RtlRunError, build_core, check_sim, run_images
    check_sim(sim)
    x, _ = datasets.load_dataset("fashion_mnist", "test")
    out = []
    for name in ("nand_spin", "jeit_stt"):
        config = preset(name)
        build_core(config, preset_name=name, sim=sim)     # outside the timing
        try:
            res = run_images(model_path=bundled_model_path("fashion_addernet"), config=config,
                             preset_name=name, sim=sim, x=x[:images], quiet=True)
        except RtlRunError as e:
            raise UserError(f"RTL benchmark on {name} failed: {e}") from None
        cycles = sum(im["counters"]["cycles"] for im in res["images"])
        host = sum(im["host_cycles"] for im in res["images"])
        out.append({"name": f"rtl/{sim}/fashion_addernet/{name}-{config.dataflow}",
                    "images": images, "seconds": res["wall_seconds"],
                    "images_per_second": images / res["wall_seconds"],
                    "simulated_cycles_per_second": (cycles + host) / res["wall_seconds"],
                    "note": "wall time of the cocotb run (simulator start, compile of the model, "
                            "golden check per image included); cycles = core + host port"})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/bench/bench.json")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--model-images", type=int, default=3,
                   help="images for the numpy core model benchmark (0: skip)")
    p.add_argument("--rtl-images", type=int, default=0,
                   help="images for the RTL benchmark (0, the default: skip; make bench: 5)")
    p.add_argument("--sim", default="verilator", help="simulator of the RTL benchmark")
    args = p.parse_args(argv)
    try:
        if args.repeat < 1 or args.images < 1:
            raise UserError(f"--repeat and --images must be >= 1, not {args.repeat} and "
                            f"{args.images}")
        if args.model_images < 0 or args.rtl_images < 0:
            raise UserError(f"--model-images and --rtl-images must be >= 0, not "
                            f"{args.model_images} and {args.rtl_images}")
        results = bench_golden_inference(args.repeat, args.images)
        if args.model_images:
            results += bench_core_model(args.model_images)
        if args.rtl_images:
            results += bench_rtl(args.rtl_images, args.sim)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = {"host": {"python": platform.python_version(), "machine": platform.machine(),
                       "numpy": np.__version__},
              "results": results}
    write_json_atomic(args.out, report)
    for r in results:
        if "skipped" in r:
            print(f"{r['name']:40s} skipped: {r['skipped']}")
        elif "simulated_cycles_per_second" in r:
            print(f"{r['name']:40s} {r['images_per_second']:10.2f} images/s, "
                  f"{r['simulated_cycles_per_second']:10.0f} simulated cycles/s")
        else:
            print(f"{r['name']:40s} {r['images_per_second_best']:10.0f} images/s (best), "
                  f"{r['images_per_second_median']:10.0f} (median)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
