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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.bench", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="build/bench/bench.json")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--images", type=int, default=2000)
    args = p.parse_args(argv)
    try:
        if args.repeat < 1 or args.images < 1:
            raise UserError(f"--repeat and --images must be >= 1, not {args.repeat} and "
                            f"{args.images}")
        results = bench_golden_inference(args.repeat, args.images)
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
        else:
            print(f"{r['name']:40s} {r['images_per_second_best']:10.0f} images/s (best), "
                  f"{r['images_per_second_median']:10.0f} (median)")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
