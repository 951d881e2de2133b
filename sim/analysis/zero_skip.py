"""Measure zero skipping (seed 000's sparsity-aware skipping, ``config.zero_skip``) on the
cycle model: ``python -m sim.analysis.zero_skip`` (``make zero-skip``).

For a model and N test images, the same network is compiled twice for a zero-skip preset
(``jeit_stt`` by default): with zero skipping, where an all-zero tile dot is skipped by
``MOVE SKIPZ`` (``docs/dataflows.rst``, "Zero skipping"), and with ``zero_skip=False``. Both
run on ``sim.hw.core_model.CoreModel``, which agrees cycle for cycle with the RTL
(``cocotb_tests/test_core_zero_skip.py``). The tool prints and writes (JSON) per image: the
fraction of zero operands, per layer and in all; operands and tile dots skipped; cycles saved
(the core's counters, ``rtl.isa.ZERO_SKIP_COUNTERS``); cycles with and without zero skipping,
and of the zero-skip programs if no tile were skipped (their one SKIPZ cycle per tile dot).
Every image's logits are compared with golden (``golden.model.infer_int``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time

from golden import datasets
from golden.model import infer_int
from rtl.config import PRESETS, preset
from rtl.outputs import check_file, interruptible, json_text, write_files

from sim.cli import _resolve_model
from sim.compile.compiler import CompileError, compile_model, run_compiled
from sim.hw.core_model import CoreModel
from sim.util import UserError, parse_mat

__all__ = ["measure", "main"]

#: Presets whose configuration has zero skipping on.
ZERO_SKIP_PRESETS = tuple(n for n, c in PRESETS.items() if c.zero_skip)


def measure(model, x, config, mat: int) -> dict:
    """Zero skipping of ``model`` on images ``x`` under ``config`` (zero_skip on) against the
    same configuration without it, on a mat of ``mat`` subarrays (cycle model)."""
    off = dataclasses.replace(config, zero_skip=False)
    try:
        comp_on = compile_model(model, config, subarrays=mat)
        comp_off = compile_model(model, off, subarrays=mat)
    except CompileError as e:
        raise UserError(f"model {model.name!r} does not compile: {e}") from None
    core_on, core_off = CoreModel(config, subarrays=mat), CoreModel(off, subarrays=mat)
    golden = infer_int(model, x)
    total, stages, mismatches = {}, {}, []
    cyc_on = cyc_off = 0
    for i, img in enumerate(x):
        r_on = run_compiled(comp_on, img, core_on, load_weights=i == 0)
        r_off = run_compiled(comp_off, img, core_off, load_weights=i == 0)
        for name, r in (("zero_skip", r_on), ("no zero_skip", r_off)):
            if r.logits.tolist() != golden[i].tolist():
                mismatches.append(f"image {i} ({name}): core {r.logits.tolist()} != golden "
                                  f"{golden[i].tolist()}")
        cyc_on += r_on.cycles
        cyc_off += r_off.cycles
        for k, v in r_on.zero_skip.items():
            total[k] = total.get(k, 0) + v
        for st in r_on.stages:
            acc = stages.setdefault(st.name, {})
            for k, v in st.zero_skip.items():
                acc[k] = acc.get(k, 0) + v
    n = len(x)

    def frac(c):
        return c.get("zs_zero", 0) / max(1, c.get("zs_operands", 0))

    return {
        "images": n, "subarrays": mat, "logits_equal_to_golden": not mismatches,
        "mismatches": mismatches[:10],
        "per_image": {k: v / n for k, v in total.items()},
        "zero_operand_fraction": frac(total),
        "cycles_per_image": cyc_on / n,
        "cycles_per_image_without_zero_skip": cyc_off / n,
        "cycles_if_no_tile_skipped": comp_on.cycles,
        "cycle_change": cyc_on / cyc_off - 1.0,
        "stages": {name: {"zero_operand_fraction": frac(c),
                          **{k: v / n for k, v in c.items()}} for name, c in stages.items()},
    }


def _table(r: dict) -> str:
    p = r["per_image"]
    lines = [f"{r['images']} images, mat of {r['subarrays']}, logits == golden: "
             f"{'yes' if r['logits_equal_to_golden'] else 'NO'}",
             f"zero operands {100 * r['zero_operand_fraction']:.1f} % "
             f"({p.get('zs_zero', 0):.0f} of {p.get('zs_operands', 0):.0f} per image); "
             f"skipped per image: {p.get('zs_skipped', 0):.0f} operands, "
             f"{p.get('zs_tiles', 0):.1f} tile dots, {p.get('zs_cycles_saved', 0):.0f} cycles",
             f"cycles per image: {r['cycles_per_image']:.0f} with zero skipping, "
             f"{r['cycles_per_image_without_zero_skip']:.0f} without "
             f"({100 * r['cycle_change']:+.1f} %); {r['cycles_if_no_tile_skipped']} if no "
             f"tile were skipped"]
    for name, s in r["stages"].items():
        lines.append(f"  {name:40s} zero {100 * s['zero_operand_fraction']:5.1f} %  tiles "
                     f"skipped {s.get('zs_tiles', 0):7.1f}  cycles saved "
                     f"{s.get('zs_cycles_saved', 0):8.0f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.zero_skip",
                                description=__doc__.split("\n")[0])
    p.add_argument("--preset", default="jeit_stt",
                   help=f"a preset with zero skipping ({', '.join(ZERO_SKIP_PRESETS)})")
    p.add_argument("--model", default="fashion_addernet",
                   help="bundled model name or .npz path (default fashion_addernet)")
    p.add_argument("--dataset", default=None, help="fashion_mnist or digits (default: the model's)")
    p.add_argument("-n", default="100", help="test images (default 100)")
    p.add_argument("--mat", default=None, help="subarrays per mat (default the preset's)")
    p.add_argument("--out", default=None,
                   help="JSON path (default build/reports/zero-skip-<preset>-<model>.json)")
    return p


@interruptible("python -m sim.analysis.zero_skip", "no results were written")
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        if args.preset not in ZERO_SKIP_PRESETS:
            raise UserError(f"--preset must be a preset with zero skipping "
                            f"({', '.join(ZERO_SKIP_PRESETS)}), not {args.preset!r}")
        config = preset(args.preset)
        mat = parse_mat(args.mat, config, args.preset) or config.subarrays_per_mat
        model, ds_name, _ = _resolve_model(args.model)
        ds_name = args.dataset or ds_name
        if ds_name not in ("fashion_mnist", "digits"):
            raise UserError(f"--dataset must be fashion_mnist or digits, not {ds_name!r}")
        out = check_file("--out", args.out or
                         f"build/reports/zero-skip-{args.preset}-{model.name}.json")
        try:
            x, _ = datasets.load_dataset(ds_name, "test")
        except (ValueError, datasets.DatasetError) as e:
            raise UserError(str(e)) from None
        if x.shape[1:] != tuple(model.input_shape):
            raise UserError(f"model {model.name!r} expects inputs {list(model.input_shape)}, "
                            f"data set {ds_name!r} has {list(x.shape[1:])}")
        try:
            n = int(args.n)
        except ValueError:
            n = 0
        if not 1 <= n <= len(x):
            raise UserError(f"-n must be an integer in [1, {len(x)}] (the {ds_name} test "
                            f"split), not {args.n!r}")
        t0 = time.perf_counter()
        report = measure(model, x[:n], config, mat)
        report.update(preset=args.preset, model=model.name, dataset=ds_name,
                      seconds=round(time.perf_counter() - t0, 2),
                      command=shlex.join(["python", "-m", "sim.analysis.zero_skip", *argv]))
        print(_table(report), flush=True)
        write_files({out: json_text(report)}, option="--out")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0 if report["logits_equal_to_golden"] else 1


if __name__ == "__main__":
    sys.exit(main())
