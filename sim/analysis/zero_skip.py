"""Measure zero skipping (seed 000's sparsity-aware skipping, ``config.zero_skip``) on the
cycle model: ``python -m sim.analysis.zero_skip`` (``make zero-skip``).

For a model and N test images, the same network is compiled twice for a zero-skip preset
(``jeit_stt`` by default, whose adder layers take its ``dataflow``: route ``jeit_fa``, seed
000's full-adder array, ``sim.routes.jeit_fa``): with zero skipping, where an all-zero tile
dot's DIFF pass (and, unless it is software-pipelined, its SIGN pass) is skipped by
``MOVE SKIPZ`` (``docs/dataflows.rst``, "Zero skipping"), and with ``zero_skip=False``. Both
run on ``sim.hw.core_model.CoreModel``, which agrees cycle for cycle with the RTL
(``cocotb_tests/test_core_zero_skip.py``). The tool prints and writes (JSON) per image: the
fraction of zero operands, per layer and in all; operands and tile dots skipped; cycles saved
(the core's counters, ``rtl.isa.ZERO_SKIP_COUNTERS``); cycles with and without zero skipping,
and of the zero-skip programs if no tile were skipped (their one SKIPZ cycle per tile dot);
the core's energy (``sim.hw.energy.estimate`` of the counters) with and without.
Every image's logits are compared with golden (``golden.model.infer_int``).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time

from golden import datasets
from golden.model import ModelFormatError, infer_int
from rtl.config import PRESETS, ZERO_SKIP_DATAFLOWS, preset
from rtl.outputs import check_file, interruptible, json_text, write_files

from sim.cli import _resolve_model
from sim.compile.compiler import CompileError, compile_model, run_compiled
from sim.hw.core_model import CoreModel
from sim.util import UserError, parse_mat

__all__ = ["measure", "lane_gating_estimate", "main"]

#: Presets whose configuration has zero skipping on.
ZERO_SKIP_PRESETS = tuple(n for n, c in PRESETS.items() if c.zero_skip)


def lane_gating_estimate(config, compiled, stage_zs: dict, n_images: int) -> dict:
    """Energy that gating the lanes of single zero terms would save per image (NOT BUILT: an
    estimate of the energy model, ``sim.hw.energy``). A zero activation's term ``|0 - w| = w``
    still has to be summed, so a gated lane could only skip its own part of every
    ``FS_STEP`` of the tile dot: the column's MTJ read and sense amplifier (ASSUMPTION: gated
    per column) and the abs-diff / FS lane (the sign is known, the difference is ``w``),
    while the row read, the full-adder array (``jeit_fa``) and the ``abs_diff`` write-backs
    and bit-count run as before. Per stage on a zero-skip route: the zero operands gathered
    into tiles that are computed (``zs_zero - zs_skipped``), each a lane of ``2n`` FS_STEPs in
    every output channel's dot. ``stage_zs``: the stages' zero-skipping counters summed over
    ``n_images``."""
    from rtl.isa import Opcode
    from rtl.routes import lanes_of
    from sim.hw import energy as E
    cost = E.op_costs(config)[Opcode.FS_STEP]
    toggle = E.PERIPHERY["activity"].value * E.PERIPHERY["gate_toggle_fj"].value
    kept = E.PERIPHERY["fa_array_gates"].value if "fa_array" in lanes_of(config.routes) else 0
    per_lane_step_fj = cost.lane_array_fj + (cost.lane_gates - kept) * toggle
    lane_steps = 0
    for st in compiled.stages:
        c = stage_zs.get(st.name, {})
        if st.route in ZERO_SKIP_DATAFLOWS and c:
            terms = c.get("zs_zero", 0) - c.get("zs_skipped", 0)
            lane_steps += terms * st.out_channels * 2 * st.n
    return {"built": False, "lane_steps_per_image": lane_steps / n_images,
            "fj_per_lane_step": per_lane_step_fj,
            "energy_j_per_image": lane_steps * per_lane_step_fj * 1e-15 / n_images}


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
    total, stages, mismatches, counters, counters_off = {}, {}, [], {}, {}
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
        for k, v in r_on.counters.items():
            counters[k] = counters.get(k, 0) + v
        for k, v in r_off.counters.items():
            counters_off[k] = counters_off.get(k, 0) + v
        for st in r_on.stages:
            acc = stages.setdefault(st.name, {})
            for k, v in st.zero_skip.items():
                acc[k] = acc.get(k, 0) + v
    n = len(x)

    def frac(c):
        return c.get("zs_zero", 0) / max(1, c.get("zs_operands", 0))

    from sim.hw import energy as E
    gating = lane_gating_estimate(config, comp_on, stages, n)
    e_on = E.estimate(config, counters, columns_active=mat * config.columns).energy_j / n
    e_off = E.estimate(off, counters_off, columns_active=mat * config.columns).energy_j / n
    gating["share_of_dynamic_energy"] = gating["energy_j_per_image"] / e_on
    return {
        "images": n, "subarrays": mat, "dataflow": config.dataflow,
        "logits_equal_to_golden": not mismatches,
        "lane_gating_estimate": gating,
        "mismatches": mismatches[:10],
        "per_image": {k: v / n for k, v in total.items()},
        "zero_operand_fraction": frac(total),
        "cycles_per_image": cyc_on / n,
        "cycles_per_image_without_zero_skip": cyc_off / n,
        "cycles_if_no_tile_skipped": comp_on.cycles,
        "cycle_change": cyc_on / cyc_off - 1.0,
        "energy_j_per_image": e_on, "energy_j_per_image_without_zero_skip": e_off,
        "energy_change": e_on / e_off - 1.0,
        "stages": {name: {"zero_operand_fraction": frac(c),
                          **{k: v / n for k, v in c.items()}} for name, c in stages.items()},
    }


def _table(r: dict) -> str:
    p = r["per_image"]
    lines = [f"{r['images']} images, mat of {r['subarrays']}, adder layers on "
             f"{r['dataflow']}, logits == golden: "
             f"{'yes' if r['logits_equal_to_golden'] else 'NO'}",
             f"zero operands {100 * r['zero_operand_fraction']:.1f} % "
             f"({p.get('zs_zero', 0):.0f} of {p.get('zs_operands', 0):.0f} per image); "
             f"skipped per image: {p.get('zs_skipped', 0):.0f} operands, "
             f"{p.get('zs_tiles', 0):.1f} tile dots, {p.get('zs_cycles_saved', 0):.0f} cycles",
             f"cycles per image: {r['cycles_per_image']:.0f} with zero skipping, "
             f"{r['cycles_per_image_without_zero_skip']:.0f} without "
             f"({100 * r['cycle_change']:+.1f} %); {r['cycles_if_no_tile_skipped']} if no "
             f"tile were skipped",
             f"core energy per image (sim.hw.energy.estimate of the counters): "
             f"{r['energy_j_per_image'] * 1e9:.1f} nJ with zero skipping, "
             f"{r['energy_j_per_image_without_zero_skip'] * 1e9:.1f} nJ without "
             f"({100 * r['energy_change']:+.1f} %)"]
    g = r["lane_gating_estimate"]
    lines.append(f"lane gating of single zero terms (NOT BUILT; energy-model estimate, "
                 "sim.analysis.zero_skip.lane_gating_estimate): "
                 f"{g['lane_steps_per_image']:.0f} lane "
                 f"steps of {g['fj_per_lane_step']:.3g} fJ = "
                 f"{g['energy_j_per_image'] * 1e9:.3g} nJ per image "
                 f"({100 * g['share_of_dynamic_energy']:.3g} % of the dynamic energy)")
    for name, s in r["stages"].items():
        lines.append(f"  {name:40s} zero {100 * s['zero_operand_fraction']:5.1f} %  tiles "
                     f"skipped {s.get('zs_tiles', 0):7.1f}  cycles saved "
                     f"{s.get('zs_cycles_saved', 0):8.0f}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.zero_skip",
                                description=" ".join(__doc__.split("\n\n")[0].split()))
    p.add_argument("--preset", default="jeit_stt",
                   help="a preset with zero skipping (" + ", ".join(
                       f"{n}: adder layers on route {PRESETS[n].dataflow}"
                       for n in ZERO_SKIP_PRESETS) + ")")
    p.add_argument("--dataflow", default=None,
                   help="the adder layers' route, one that can skip (" + ", ".join(
                       ZERO_SKIP_DATAFLOWS) + "; default the preset's)")
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
        if args.dataflow is not None:
            if args.dataflow not in ZERO_SKIP_DATAFLOWS:
                raise UserError(f"--dataflow must be a dataflow that can skip zero tiles "
                                f"({', '.join(ZERO_SKIP_DATAFLOWS)}), not {args.dataflow!r}")
            config = config.with_dataflow(args.dataflow)
        mat = parse_mat(args.mat, config, args.preset) or config.subarrays_per_mat
        model, ds_name, _ = _resolve_model(args.model)
        ds_name = args.dataset or ds_name
        if ds_name not in ("fashion_mnist", "digits"):
            raise UserError(f"--dataset must be fashion_mnist or digits, not {ds_name!r}")
        out = check_file("--out", args.out or
                         f"build/reports/zero-skip-{args.preset}-{model.name}"
                         f"{'' if args.dataflow is None else '-' + args.dataflow}.json")
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
    except (UserError, ModelFormatError) as e:     # a bad --model file: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0 if report["logits_equal_to_golden"] else 1


if __name__ == "__main__":
    sys.exit(main())
