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

__all__ = ["resolve_model", "run", "energy_terms", "full_energy", "TERMS", "measure_skips",
           "run_printed", "parse_skip", "table", "main"]


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
        tile_activations=False, chip_mats=None, skipped=None, images=None,
        logic=None) -> dict:
    """Partition ``model`` over ``mats`` mats, compile every slice and count it
    (``sim.compile.multi_mat.count_partitioned``, ``skipped`` its zero skipping); adds
    ``compile_seconds`` and ``count_seconds``.

    ``images`` (zero skipping only; not with ``skipped``): the skipped tile dots measured per
    slice on the cycle model over these images (:func:`measure_skips`; every mat's own slice
    is compiled for it, not one per slice width), their mean image counted; adds ``skipped``
    (the measured fractions, ``[segment][mat][stage]``) and ``measure_seconds``.

    Adds ``terms`` (:func:`energy_terms`, with ``logic``) and, from them, ``energy_full_j``
    and ``gops_per_w_full``: the energy on the single mat's headline basis (the micro-ops'
    ``energy_j`` above plus every mat's SRAMs and the leakage of all mats over the latency)."""
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
    res["terms"] = energy_terms(segs, compiled, res, logic)
    res["energy_full_j"] = full_energy(res["terms"])
    res["gops_per_w_full"] = res["ops"] / res["energy_full_j"] / 1e9
    res["compile_seconds"] = round(t1 - t0, 3)
    res["count_seconds"] = round(time.perf_counter() - t2, 3)
    res["subarrays"] = compiled[0][0].subarrays
    if images is not None:
        res["skipped"] = skipped
        res["measure_seconds"] = round(t2 - t1, 3)
        res["measured_images"] = len(images)
    return res


#: The energy terms of one image (:func:`energy_terms`), the single mat's headline's
#: (``sim.analysis.report``: micro-ops, the gate-count logic they contain, SRAM dynamic and
#: leakage, the activity-based logic and its leakage) and the partition's broadcasts.
TERMS = ("micro-ops", "gate-count logic", "SRAM dynamic", "SRAM leakage", "activity logic",
         "logic leakage", "broadcasts")


def full_energy(terms: dict) -> float:
    """The energy of ``terms`` (:data:`TERMS`) on the headline's basis: the micro-ops with
    their gate-count CMOS logic replaced by the activity-based logic where there is one
    (``terms['activity logic']`` not None), + SRAM dynamic and leakage, logic leakage and the
    broadcasts."""
    e = terms["micro-ops"] + terms["SRAM dynamic"] + terms["SRAM leakage"] + terms["broadcasts"]
    if terms["activity logic"] is not None:
        e += terms["activity logic"] + terms["logic leakage"] - terms["gate-count logic"]
    return e


def _mat_config(compiled, m: int):
    """The configuration the SRAMs of mat ``m`` are costed at: every size field the largest
    its slices were compiled with (one physical mat holds them all), the weight buffer at the
    slots its slices fill (``sim.hw.sram.buffer_sizing``'s rule, as the single mat's report
    costs it): all of them together when they fit the buffer together
    (``sim.compile.multi_mat``'s ``tables`` ASSUMPTION), else the largest one (reloaded)."""
    from dataclasses import replace
    from types import SimpleNamespace
    from rtl.config import SIZE_FIELDS
    from sim.compile.multi_mat import _coresident
    from sim.hw import sram
    slices = [row[m] for row in compiled]
    cfg = replace(slices[0].config, **{f: max(getattr(c.config, f) for c in slices)
                                       for f in SIZE_FIELDS})
    fits, need = _coresident(compiled, m)
    slots = (need["buffer_slots"] if fits["buffer_slots"]
             else max(len(c.buffer) for c in slices))
    filled = SimpleNamespace(buffer=range(slots), buffer_slots=cfg.buffer_slots)
    return replace(cfg, buffer_slots=sram.buffer_sizing(filled)["costed_slots"])


def energy_terms(segs, compiled, res, logic=None) -> dict:
    """The partition's energy per image by term (:data:`TERMS`), charged as the single mat's
    report charges one mat (``sim.analysis.report``'s headline), for every mat:

    * ``micro-ops``: ``res['energy_j']`` without the broadcasts (every mat's
      ``sim.hw.energy.estimate`` with its streamed weights and reloaded tables);
    * ``gate-count logic``: the CMOS logic those micro-ops contain
      (``sim.hw.energy.energy_split``, each stage over the columns it drives: seed 002's class
      gate, as the report splits one mat), replaced by ``activity logic`` when there is one;
    * ``SRAM dynamic``: every mat's memory accesses (``sim.hw.sram.access_counts`` of each of
      its slices: the slice's counters, its image and program words, its logits read by the
      host) at the energy per access of the mat's memories (``_mat_config``,
      ``sim.hw.sram.memory_report``);
    * ``SRAM leakage``: the leakage of all ``M`` mats' SRAMs over the partition's latency
      (every mat is powered while the image runs, also when it waits);
    * ``activity logic`` (with ``logic``, the single mat's ``sim.hw.activity.logic_energy``:
      its blocks' measured activity and cell area; else None): each block's activity x the
      mat's own cycles (its segments' counters and host-port cycles) x its area x
      ``switch_fj_per_um2``, summed over the mats. ASSUMPTION ``activity``: a mat's logic
      toggles at the single mat's measured activity per block while it computes, and not while
      it waits for the slowest mat or a broadcast (clock-gated);
    * ``logic leakage``: ``M`` x the mat's logic leakage power x the latency (None without
      ``logic``);
    * ``broadcasts``: their data-memory reads and writes and bus wire (already in
      ``res['energy_j']``).

    Returns ``{term: J}`` plus ``"per_mat"`` (per mat: ``cycles``, ``sram_dynamic_j``,
    ``sram_leakage_w``, ``buffer_slots`` costed) and ``"assumption"``."""
    from sim.compile.dima_map import stage_columns
    from sim.hw import activity, energy, sram
    mats = res["mats"]
    latency = res["latency_s"]
    bc = sum(s["broadcast"]["energy_j"] for s in res["segments"])
    gate = 0.0
    per_mat, seen = [], {}
    for m in range(mats):
        acc: dict = {}
        cycles = 0
        for seg, row, srow in zip(segs, compiled, res["segments"], strict=True):
            comp, p = row[m], srow["mats"][m]
            last = seg.index == len(segs) - 1
            host = {energy.HOST_DATA_WORDS: p["host"]["data_words"]}
            gate += energy.energy_split(comp.config, {"cycles": 0}, columns_active=comp.width,
                                        host=host)["CMOS logic"]
            for st, sc in zip(comp.stages, p["stages"], strict=True):   # each over the
                gate += energy.energy_split(                             # columns it drives
                    comp.config, sc["counters"], columns_active=stage_columns(
                        st, comp.width, comp.config.columns))["CMOS logic"]
            args = (p["host"]["data_words"], p["host"]["program_words"],
                    seg.slices[m][1] - seg.slices[m][0] if last else 0)
            key = (id(comp), tuple(sorted(p["counters"].items())), args)
            if key not in seen:         # mats of equal slices share one compiled slice
                seen[key] = sram.access_counts(comp, p["counters"], host_data_words=args[0],
                                               host_program_words=args[1],
                                               host_reads=args[2])
            a = seen[key]
            for name, v in a.items():
                got = acc.setdefault(name, {"reads": 0, "writes": 0, "derived": v["derived"]})
                got["reads"] += v["reads"]
                got["writes"] += v["writes"]
            cycles += p["estimate"]["cycles"]
        cfg = _mat_config(compiled, m)
        mem = sram.memory_report(cfg, compiled[0][m].subarrays, acc, latency)
        per_mat.append({"cycles": cycles, "sram_dynamic_j": mem["dynamic_j"],
                        "sram_leakage_w": mem["leakage_w"], "buffer_slots": cfg.buffer_slots})
    act = lgk = None
    if logic is not None:
        act = sum(activity.switch_energy_j(b["activity"], p["cycles"], b["area_um2"])
                  for p in per_mat for b in logic["blocks"])
        lgk = mats * logic["leakage_w"] * latency
    return {"micro-ops": res["energy_j"] - bc, "gate-count logic": gate,
            "SRAM dynamic": sum(p["sram_dynamic_j"] for p in per_mat),
            "SRAM leakage": sum(p["sram_leakage_w"] for p in per_mat) * latency,
            "activity logic": act, "logic leakage": lgk, "broadcasts": bc,
            "per_mat": per_mat,
            "assumption": "ASSUMPTION activity: a mat's logic toggles at the single mat's "
                          "measured activity per block during its own cycles and not while "
                          "it waits (clock-gated); every mat's SRAMs and logic leak over the "
                          "whole latency"}


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
    from sim.compile import multi_mat as mm
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
                store = mm.store_of(seg, lambda t, img=img, trace=trace:
                                    img if t < 0 else trace[t][0])
                r = run_compiled(comp, x_in.astype(np.uint8), core, load_weights=i == 0,
                                 store=store)
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
    if "terms" in res:
        t = res["terms"]
        lines.append(f"with every mat's SRAMs and all mats' leakage (energy_terms): "
                     f"{res['energy_full_j'] * 1e6:.4g} uJ, {res['gops_per_w_full']:.4g} GOPS/W "
                     "(" + ", ".join(f"{k} {v * 1e6:.4g}" for k, v in t.items()
                                     if k in TERMS and v is not None) + " uJ)")
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
                                 "gops_per_w", "energy_full_j", "gops_per_w_full",
                                 "compile_seconds", "count_seconds")}})
    except (UserError, ModelFormatError) as e:     # a bad --model file: one line
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("| preset | mats | cycles | latency (ms) | energy (uJ) | GOPS | GOPS/W | energy with "
          "SRAMs and leakage (uJ) | GOPS/W with them |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['preset']} | {r['mats']} | {r['cycles']:,} | {r['latency_s'] * 1e3:.4g} | "
              f"{r['energy_j'] * 1e6:.4g} | {r['gops']:.4g} | {r['gops_per_w']:.4g} | "
              f"{r['energy_full_j'] * 1e6:.4g} | {r['gops_per_w_full']:.4g} |")
    if out is not None:
        doc = {"command": shlex.join(["python", "-m", "sim.analysis.multi_mat", *argv]),
               "rows": rows}
        write_files({out: json_text(doc)}, option="--json")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
