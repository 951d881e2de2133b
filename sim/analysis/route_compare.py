"""Compare adder dataflows on one preset: ``python -m sim.analysis.route_compare``.

Compiles a model for each dataflow (``--dataflow``, default ``abs_diff`` and ``jeit_fa``) on
the preset (default ``jeit_stt``), runs ``-n`` test images on the cycle model
(``sim.hw.core_model``, which the cocotb tests hold equal to the RTL cycle for cycle), checks the
logits against golden with ``==``, and prints per dataflow and image: cycles (and stalls),
micro-ops by opcode, array writes and the dynamic energy (``sim.hw.energy.estimate`` on the
counters, the mat's columns active), in total and per stage. Each dataflow runs on a core
without the other compared routes (the preset's other routes kept). Both run with the preset's zero
skipping off unless ``--zero-skip`` (both can skip), so that the two accumulations are
compared on the same work.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from golden.model import infer_int
from rtl.config import preset, preset_names
from rtl.outputs import check_file, interruptible, write_json

from sim.util import UserError

__all__ = ["compare", "main"]


def compare(model, x, config_name: str, dataflows, *, mat: int | None = None,
            zero_skip: bool = False) -> dict:
    """Per dataflow: the per-image averages of cycles, stalls, micro-ops, energy, and per
    stage cycles and energy (the model ``model`` on images ``x``)."""
    from sim.hw import energy as E
    from sim.compile.compiler import compile_model, run_compiled
    from sim.hw.core_model import CoreModel
    out = {}
    for df in dataflows:
        base = preset(config_name)
        config = base.with_dataflow(df)
        # each dataflow on a core without the other compared routes' lanes (jeit_stt lists
        # both abs_diff and jeit_fa; the energy model charges a core's lanes on its micro-ops)
        config = dataclasses.replace(config, routes=tuple(
            r for r in config.routes if r == df or r not in dataflows))
        if not zero_skip and config.zero_skip:
            config = dataclasses.replace(config, zero_skip=False)
        k = config.subarrays_per_mat if mat is None else mat
        compiled = compile_model(model, config, subarrays=k)
        core = CoreModel(config, subarrays=k)
        cols = config.columns * k
        totals: dict = {}
        stages: dict = {}
        for i, image in enumerate(x):
            res = run_compiled(compiled, image, core, load_weights=i == 0)
            want = infer_int(model, image[None])[0]
            if not np.array_equal(np.asarray(res.logits).ravel(), np.asarray(want).ravel()):
                raise AssertionError(f"{df}: image {i}: logits {res.logits} != golden {want}")
            for key, v in res.counters.items():
                totals[key] = totals.get(key, 0) + v
            for sr in res.stages:
                st = stages.setdefault(sr.name, {"cycles": 0, "energy_j": 0.0,
                                                 "route": next(s.route for s in compiled.stages
                                                               if s.name == sr.name)})
                st["cycles"] += sr.cycles
                st["energy_j"] += E.estimate(config, sr.micro_ops,
                                             columns_active=cols).energy_j
        n = len(x)
        rep = E.estimate(config, totals, columns_active=cols)
        out[df] = {
            "zero_skip": config.zero_skip, "subarrays": k,
            "cycles": totals["cycles"] / n, "stalls": totals["stalls"] / n,
            "micro_ops": {key: v / n for key, v in sorted(totals.items())
                          if v and key not in ("cycles", "stalls")},
            "energy_j": rep.energy_j / n,
            "latency_s": rep.latency_s / n,
            "stages": {name: {"route": s["route"], "cycles": s["cycles"] / n,
                              "energy_j": s["energy_j"] / n} for name, s in stages.items()},
        }
    return out


def _text(rep: dict, n: int, command: str) -> str:
    lines = [f"# {command}", f"# per image, mean over {n} images, cycle model == golden"]
    for df, r in rep.items():
        lines.append(f"{df} (zero_skip {r['zero_skip']}, mat of {r['subarrays']}): "
                     f"{r['cycles']:.0f} cycles ({r['stalls']:.0f} stalls), "
                     f"{r['energy_j'] * 1e9:.3f} nJ, {r['latency_s'] * 1e6:.2f} us")
        lines.append("  micro-ops: " + ", ".join(f"{k} {v:.0f}"
                                                 for k, v in r["micro_ops"].items()))
        for name, s in r["stages"].items():
            lines.append(f"  {name} [{s['route']}]: {s['cycles']:.0f} cycles, "
                         f"{s['energy_j'] * 1e9:.3f} nJ")
    return "\n".join(lines)


@interruptible("python -m sim.analysis.route_compare", "no JSON was written")
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.analysis.route_compare", description=__doc__)
    ap.add_argument("--model", default="fashion_addernet", help="a bundled model name")
    ap.add_argument("--preset", default="jeit_stt", choices=preset_names())
    ap.add_argument("--dataflow", nargs="+", default=["abs_diff", "jeit_fa"])
    ap.add_argument("-n", type=int, default=5, help="test images (>= 1)")
    ap.add_argument("--mat", type=int, default=None, help="subarrays in the mat")
    ap.add_argument("--zero-skip", action="store_true",
                    help="keep the preset's zero skipping on the dataflows that have it")
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args(argv)
    try:
        if args.n < 1:
            raise UserError(f"-n must be >= 1, not {args.n}")
        out = check_file("--json", args.json) if args.json else None    # before any work
        from sim.analysis.report import _load_images, _resolve_model
        model, _, ds = _resolve_model(args.model, None)
        x, _ = _load_images(model, ds, args.n)
        rep = compare(model, x, args.preset, args.dataflow, mat=args.mat,
                      zero_skip=args.zero_skip)
    except (UserError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    command = "python -m sim.analysis.route_compare " + " ".join(argv or sys.argv[1:])
    print(_text(rep, args.n, command), flush=True)
    if out is not None:
        try:
            write_json(out, rep, option="--json")
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
