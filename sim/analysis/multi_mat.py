"""A network partitioned over several mats, counted (``sim.compile.multi_mat``): one output-channel
slice per mat, all mats in parallel, each stage's output broadcast to every mat;
``python -m sim.analysis.multi_mat`` sweeps mat counts, ``python -m sim.analysis.counting
--mats M`` counts one (``--measure N``: zero skipping measured per slice on the cycle model,
:func:`measure_skips`), ``make report`` counts one bank of each preset's chip
(``sim.analysis.report.partitioned``).

The model is a bundled model, a ``.npz`` file or ``refnet:NAME``, a random-weight reference
network of ``sim.analysis.reference_nets`` (e.g. ``refnet:vgg11``). The mat counts are checked
against the model (at most the narrowest compute layer's output channels, or groups for a
grouped convolution) and the preset's chip
(at most its mats, ``sim.hw.chip.organisation``).
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import time

from golden.model import ModelFormatError
from rtl.outputs import check_file, interruptible, json_text, write_files
from sim.util import UserError

__all__ = ["resolve_model", "run", "measure_skips", "run_printed", "parse_skip", "table", "main"]


def resolve_model(spec: str):
    """``(model, budget)``: the model of ``spec`` (bundled name, ``.npz`` path or
    ``refnet:NAME``) and the context its counting runs in (a reference network's
    ``count_only_budget``: its shapes are above golden's inference budget)."""
    if spec.startswith("refnet:"):
        from sim.analysis import reference_nets as rn
        with rn.count_only_budget():
            try:
                return rn.build(spec[len("refnet:"):]), rn.count_only_budget
            except rn.RefNetError as e:
                raise UserError(f"--model: {e}") from None
    from sim.cli import _resolve_model
    return _resolve_model(spec)[0], contextlib.nullcontext


def run(model, config, mats, *, subarrays=None, propose=False, stream_weights=False,
        tile_activations=False, chip_mats=None, skipped=None, images=None) -> dict:
    """Partition ``model`` over ``mats`` mats, compile every slice and count it
    (``sim.compile.multi_mat.count_partitioned``, ``skipped`` its zero skipping); adds
    ``compile_seconds`` and ``count_seconds``.

    ``images`` (zero skipping only; not with ``skipped``): the skipped tile dots measured per
    slice on the cycle model over these images (:func:`measure_skips`; every mat's own slice
    is compiled for it, not one per slice width), their mean image counted; adds ``skipped``
    (the measured fractions, ``[segment][mat][stage]``) and ``measure_seconds``."""
    from sim.compile import multi_mat as mm
    mats = mm.check_mats(model, mats, chip_mats)
    if images is not None:
        if skipped is not None:
            raise UserError("give --skip or --measure, not both")
        _need_zero_skip("--measure", config)
    t0 = time.perf_counter()
    segs, compiled = mm.compile_partitioned(model, config, mats, subarrays=subarrays,
                                            propose=propose, stream_weights=stream_weights,
                                            tile_activations=tile_activations,
                                            counting_only=images is None)
    t1 = time.perf_counter()
    if images is not None:
        skipped = measure_skips(model, segs, compiled, images)
    t2 = time.perf_counter()
    res = mm.count_partitioned(segs, compiled, skipped=skipped)
    res["compile_seconds"] = round(t1 - t0, 3)
    res["count_seconds"] = round(time.perf_counter() - t2, 3)
    res["subarrays"] = compiled[0][0].subarrays
    if images is not None:
        res["skipped"] = skipped
        res["measure_seconds"] = round(t2 - t1, 3)
        res["measured_images"] = len(images)
    return res


def measure_skips(model, segs, compiled, images) -> list:
    """Zero skipping measured per slice: ``skipped[s][m]``, per stage of segment ``s``'s slice
    on mat ``m``, the fraction of its tile dots (``sim.analysis.counting.count_model``'s
    ``dots``) the cycle model skipped, summed over ``images`` and divided by their number and
    the dots (the mean image, as ``python -m sim.analysis.counting --measure`` on one mat).
    Each mat's slice runs on ``sim.hw.core_model.CoreModel`` with what the mat holds on the
    chip: its segment's input from golden's trace (the image, or the broadcast output of the
    layer it reads; its groups' input channels for a grouped layer) and the tensors kept for
    later layers at their bases (``Segment.keeps``). A dot is skipped when its gathered tile is
    all zero, so a slice's skips follow from its own input and the slices it computes
    (``compiled`` must hold every mat's own slice: ``compile_partitioned`` without
    ``counting_only``). The input :func:`sim.compile.multi_mat.count_partitioned` takes."""
    import numpy as np
    from golden.model import infer_int
    from sim.analysis.counting import count_model
    from sim.compile.compiler import run_compiled
    from sim.hw.core_model import CoreModel
    images = np.asarray(images)
    traces = [infer_int(model, img[None], trace=True) for img in images]
    out = []
    for seg, row in zip(segs, compiled, strict=True):
        ins = seg.in_slices or [None] * len(row)
        per_mat = []
        for m, comp in enumerate(row):
            core = CoreModel(comp.config, subarrays=comp.subarrays)
            sums = [0] * len(comp.stages)
            for i, (img, trace) in enumerate(zip(images, traces, strict=True)):
                x_in = np.asarray(img if seg.reads < 0 else trace[seg.reads][0])
                if ins[m] is not None:
                    x_in = x_in[ins[m][0]:ins[m][1]]
                for t, base in seg.keeps.items():       # the tensors kept for later layers
                    kept = np.asarray(img if t < 0 else trace[t][0]).reshape(-1)
                    for j, v in enumerate(kept.tolist()):
                        core.write_dmem(base + j, int(v))
                r = run_compiled(comp, x_in.astype(np.uint8), core, load_weights=i == 0)
                for si, sr in enumerate(r.stages):
                    sums[si] += sr.zero_skip.get("zs_tiles", 0)
            dots = [st.dots for st in count_model(comp).stages]
            per_mat.append([k / (len(images) * d) if d else 0.0
                            for k, d in zip(sums, dots, strict=True)])
        out.append(per_mat)
    return out


def _need_zero_skip(option: str, config) -> None:
    """A one-line UserError naming ``option`` unless ``config`` has zero skipping."""
    if not config.zero_skip:
        from sim.analysis.counting import _zero_skip_presets
        raise UserError(f"{option}: the configuration has no zero skipping (zero_skip is off; "
                        f"only {', '.join(_zero_skip_presets())} skip)")


def run_printed(model, config, mats, args, name: str, where: str, *, subarrays=None,
                skipped=None, images=None):
    """:func:`run` with the options of ``args`` (``propose``, ``stream_weights``,
    ``tile_activations``) and ``skipped`` at the preset's chip (``sim.hw.chip.organisation``),
    its result printed; a model that does not compile is a UserError starting with ``where``
    (the options the user gave); ``images``: zero skipping measured per slice on them
    (:func:`run`). Returns ``(result, the chip's mats)``."""
    from sim.compile.compiler import CompileError
    from sim.hw.chip import organisation
    chip = organisation(config, subarrays or config.subarrays_per_mat)["mats"]
    try:
        res = run(model, config, mats, subarrays=subarrays, propose=args.propose,
                  stream_weights=args.stream_weights,
                  tile_activations=args.tile_activations, chip_mats=chip, skipped=skipped,
                  images=images)
    except CompileError as e:
        raise UserError(f"{where}: model {model.name!r} does not compile: {e}") from None
    of = f" of {subarrays} subarrays" if subarrays else ""
    measured = (f", skips measured per slice on {res['measured_images']} image(s) in "
                f"{res['measure_seconds']} s" if images is not None else "")
    print(f"{model.name} on {name}, {res['mats']} of the chip's {chip} mats{of} "
          f"(compile {res['compile_seconds']} s, count {res['count_seconds']} s{measured})")
    print(table(res))
    return res, chip


def table(res: dict) -> str:
    """Per segment: the slowest and fastest mat, the broadcast, the energy; then the totals."""
    lines = []
    for s in res["segments"]:
        mc = s["mat_cycles"]
        lines.append(f"  segment {s['index']} layers {s['layers']}: {len(mc)} mats, "
                     f"{max(mc):,} cycles slowest mat ({min(mc):,} fastest), broadcast "
                     f"{s['broadcast']['cycles']:,} cycles, {s['cycles']:,} cycles, "
                     f"{s['energy_j'] * 1e6:.4g} uJ")
    lines.append(f"total on {res['mats']} mats: {res['cycles']:,} cycles, latency "
                 f"{res['latency_s'] * 1e3:.4g} ms, energy {res['energy_j'] * 1e6:.4g} uJ, "
                 f"{res['ops']:,} ops, {res['gops']:.4g} GOPS, {res['gops_per_w']:.4g} GOPS/W")
    return "\n".join(lines)


def parse_skip(text, config):
    """``--skip`` with ``--mats``: None, or one fraction in [0, 1] of tile dots skipped for
    every stage of every mat on a configuration with zero skipping; else a one-line
    UserError."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise UserError(f"--skip with --mats must be one fraction in [0, 1] (for every stage "
                        f"of every mat), not {text!r}")
    _need_zero_skip("--skip", config)
    return value


def _mats_list(text: str) -> list:
    try:
        vals = [int(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if not vals:
        raise UserError(f"--mats must be comma-separated ints (e.g. 1,4,16), not {text!r}")
    return vals


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.multi_mat",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fashion_addernet",
                   help="bundled model name, path of a .npz model file, or refnet:NAME "
                   "(sim.analysis.reference_nets)")
    p.add_argument("--preset", action="append", default=None,
                   help="accelerator preset, repeatable (default: nand_spin)")
    p.add_argument("--mats", default="1,4,16", help="mat counts, comma-separated")
    p.add_argument("--propose", action="store_true",
                   help="raise every size each slice needs (propose_config)")
    p.add_argument("--stream-weights", action="store_true", help="as sim.analysis.counting")
    p.add_argument("--tile-activations", action="store_true", help="as sim.analysis.counting")
    p.add_argument("--skip", default=None, metavar="F",
                   help="zero skipping: the fraction of tile dots skipped in every stage of "
                   "every mat (presets with zero skipping only); default none skipped")
    from sim.config_file import add_size_options
    add_size_options(p)
    p.add_argument("--json", default=None, help="write the rows as JSON to this path")
    return p


@interruptible("python -m sim.analysis.multi_mat", "nothing was written")
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    from rtl.config import PRESETS, SIZE_FIELDS
    from sim.config_file import resolve_config
    rows = []
    try:
        out = check_file("--json", args.json) if args.json else None
        presets = args.preset or ["nand_spin"]
        for name in presets:
            if name not in PRESETS:
                raise UserError(f"--preset must be one of {', '.join(PRESETS)}, not {name!r}")
        mats = _mats_list(args.mats)
        model, budget = resolve_model(args.model)
        for name in presets:
            name, config = resolve_config(
                preset_name=name, config_file=args.config,
                sizes={f: getattr(args, f) for f in SIZE_FIELDS}, conv_map=args.conv_map)
            skipped = parse_skip(args.skip, config)
            for m in mats:
                with budget():
                    res, chip = run_printed(model, config, m, args, name,
                                            f"--preset {name} --mats {m}", skipped=skipped)
                rows.append({"model": model.name, "preset": name, "mats": m,
                             "chip_mats": chip, **{k: res[k] for k in (
                                 "cycles", "latency_s", "energy_j", "ops", "gops",
                                 "gops_per_w", "compile_seconds", "count_seconds")}})
    except (UserError, ModelFormatError) as e:     # a bad --model file: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("| preset | mats | cycles | latency (ms) | energy (uJ) | GOPS | GOPS/W |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['preset']} | {r['mats']} | {r['cycles']:,} | {r['latency_s'] * 1e3:.4g} | "
              f"{r['energy_j'] * 1e6:.4g} | {r['gops']:.4g} | {r['gops_per_w']:.4g} |")
    if out is not None:
        doc = {"command": shlex.join(["python", "-m", "sim.analysis.multi_mat", *argv]),
               "rows": rows}
        write_files({out: json_text(doc)}, option="--json")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
