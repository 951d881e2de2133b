"""Accuracy against device variation: ``python -m sim.analysis.variation --model fashion_addernet
--technology nand_spin``.

For each coefficient of variation (CV) the tool takes the Monte Carlo bit-error rate of the
``read`` sensing mode (:func:`sim.hw.device.ber`), then runs golden int8 inference with every sensed
weight and activation bit flipped at that rate (:func:`sim.hw.faults.infer_int_with_faults`) over
several fault seeds, on the first N test images. It writes ``<out>.json`` and ``<out>.png`` and
prints a table.

Which BER
---------
* Mode: ``read``. The dataflow reads weights and stored activations from the array one row at a
  time (:mod:`sim.hw.faults`: "weights" and "activations"), which is the 1-row ``read`` of
  :mod:`sim.hw.device`; the in-array logic modes (``and_fu``, ``and2``, ``or2``) are not in that
  fault model.
* Rate: the ``average`` of :class:`sim.hw.device.BerResult`, the mean over a stored 0 and a stored
  1.
  The fault model flips every bit with one probability whatever its value, so with equiprobable
  bits the mean is the expected flip rate; the ``worst`` (one state only) is in the JSON too.
* CV: ``ber(..., cv=c)`` sets BOTH relative sigmas of the technology to ``c``. For the ``ra_tmr``
  technologies (nand_spin, sot, imac) that is sigma_RA / RA = c and sigma_TMR / TMR = c; for
  ``stt`` it is the CV of R_P and of R_AP. The table's own sigmas (nand_spin: 5% RA, 10% TMR,
  seed 002 sec. 3.1) are not one CV; they are evaluated once more as the ``table`` row.
  ``cv`` is limited to [0, :data:`sim.hw.device.MAX_CV`].
* Monte Carlo: ``--trials`` draws per stored value (default :data:`sim.hw.device.DEFAULT_TRIALS`,
  seed 002's count, about 10 ms per CV), device seed 0 for every CV (common random numbers, so
  the BER grows smoothly with CV).

Fault seeds are 0 .. seeds-1; for one seed the flipped bits at a lower BER are a subset of those
at a higher one (:mod:`sim.hw.faults`), so the curves are monotone per seed up to the classifier's
own non-monotonicity.

Spot check on the core
----------------------
``--rtl-cv CV`` also runs the first ``--rtl-n`` images on the core of the technology's preset
(:data:`TECH_PRESET`), a mat of ``--mat K`` subarrays (default the preset's
``subarrays_per_mat``), with the array's own sensing faults at the ``read`` BER of that CV
(:func:`rtl_spot_check`): ``--backend rtl`` (default) in the RTL built with the fault injection
(``--sim``), checked stage by stage against ``sim.hw.core_model.CoreModel`` under the same
faults; ``--backend model`` on that core model alone. The result goes into the JSON as
``spot_check``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from golden import datasets
from golden.array import TECHNOLOGIES
from golden.model import ModelFormatError, bundled_model_path, infer_int, load_model
from rtl.outputs import check_file, interruptible, json_text, write_files
from sim.hw.device import DEFAULT_TRIALS, MAX_CV, MAX_TRIALS, ber
from sim.hw.faults import infer_int_with_faults

from sim.cli import MODEL_DATASET
from sim.util import UserError, mat_range_help, parse_mat, parse_number_list

__all__ = ["MODE", "DEFAULT_CVS", "parse_cvs", "run", "main"]

#: The sensing mode whose BER the dataflow sees (module docstring).
MODE = "read"

#: Default CV points for nand_spin ``read``: zero errors up to 0.05, the first errors at 0.06
#: (BER ~1e-5), accuracy falling from 0.08 and near chance at 0.20 (BER ~6e-2).
DEFAULT_CVS = (0.0, 0.04, 0.05, 0.06, 0.07, 0.08, 0.09, 0.10, 0.11, 0.12, 0.14, 0.16, 0.20)


def parse_cvs(text: str) -> list:
    """``"0,0.05,0.1"`` -> sorted distinct floats in [0, MAX_CV]; a UserError otherwise."""
    return parse_number_list("--cv", text, MAX_CV)


def _parse_int(option: str, text: str, hi: int | None = None, why: str = "") -> int:
    try:
        v = int(text)
    except ValueError:
        v = 0
    if v < 1 or (hi is not None and v > hi):
        rng = ">= 1" if hi is None else f"in [1, {hi}]{why}"
        raise UserError(f"{option} must be an integer {rng}, not {text!r}")
    return v


#: Data sets a model file given by path may name (``golden.datasets``).
DATASETS = ("fashion_mnist", "digits")
#: ``--model`` given as a model file: ``{spec: (path, data set)}`` (bundled names are not here).
_MODEL_FILES: dict = {}


def _model_path(name: str) -> Path:
    return _MODEL_FILES[name][0] if name in _MODEL_FILES else bundled_model_path(name)


def _model_dataset(name: str) -> str:
    return _MODEL_FILES[name][1] if name in _MODEL_FILES else MODEL_DATASET[name]


def _resolve_model_arg(spec: str, dataset) -> None:
    """``--model``: a bundled name, or the path of a ``.npz`` model file whose data set is
    ``--dataset`` (or told by its file name, as ``sim.cli run`` does)."""
    if dataset is not None and dataset not in DATASETS:
        raise UserError(f"--dataset: unknown data set {dataset!r}; one of {', '.join(DATASETS)}")
    if spec in MODEL_DATASET and not Path(spec).exists():
        if dataset not in (None, MODEL_DATASET[spec]):
            raise UserError(f"--dataset {dataset}: model {spec!r} is for "
                            f"{MODEL_DATASET[spec]}")
        return
    path = Path(spec)
    if not path.is_file():
        raise UserError(f"--model: unknown model {spec!r}; one of "
                        f"{', '.join(MODEL_DATASET)}, or the path of a .npz model file")
    ds = dataset or MODEL_DATASET.get(path.stem)
    if ds is None:
        raise UserError(f"--dataset: cannot tell which data set {spec!r} belongs to; give "
                        f"--dataset {' or --dataset '.join(DATASETS)}")
    _MODEL_FILES[spec] = (path, ds)


def _check_inputs(args):
    _resolve_model_arg(args.model, args.dataset)
    if args.technology not in TECHNOLOGIES:
        raise UserError(f"--technology: unknown technology {args.technology!r}; one of "
                        f"{', '.join(TECHNOLOGIES)}")
    cvs = list(DEFAULT_CVS) if args.cv is None else parse_cvs(args.cv)
    return (cvs, _parse_int("-n", args.n), _parse_int("--seeds", args.seeds),
            _parse_int("--trials", args.trials, MAX_TRIALS,
                       " (the memory budget of the Monte Carlo draws, about 125 bytes per trial: "
                       "sim.hw.device.MAX_TRIALS)"))


def _accuracies(model, x, y, rate: float, seeds: int) -> list:
    return [float((infer_int_with_faults(model, x, rate, s).argmax(1) == y).mean())
            for s in range(seeds)]


def _point(model, x, y, technology, cv, trials, seeds) -> dict:
    b = ber(technology, MODE, cv=cv, trials=trials, seed=0)
    acc = _accuracies(model, x, y, b.average, seeds)
    return {"cv": cv, "sigma": list(b.sigma), "ber": b.average, "ber_worst": b.worst,
            "accuracy": acc, "accuracy_mean": float(np.mean(acc)),
            "accuracy_min": min(acc), "accuracy_max": max(acc)}


def run(*, model_name, technology, cvs, n, seeds, trials) -> dict:
    """Evaluate every CV point; returns the report (without the command line)."""
    model = load_model(_model_path(model_name))
    ds = _model_dataset(model_name)
    try:
        x, y = datasets.load_dataset(ds, "test")
    except (ValueError, datasets.DatasetError) as e:
        raise UserError(str(e)) from None
    if n > len(y):
        raise UserError(f"-n {n}: the {ds} test split has only {len(y)} images; "
                        f"give -n between 1 and {len(y)}")
    if x.shape[1:] != tuple(model.input_shape):
        raise UserError(f"--model: {model_name!r} expects inputs {list(model.input_shape)}, "
                        f"data set {ds!r} has {list(x.shape[1:])} (--dataset)")
    x, y = x[:n], y[:n]
    points = [_point(model, x, y, technology, cv, trials, seeds) for cv in cvs]
    table = _point(model, x, y, technology, None, trials, seeds)
    table["cv"] = None
    return {"model": model_name, "dataset": ds, "split": "test", "images": n,
            "technology": technology, "mode": MODE, "ber_statistic": "average",
            "cv_meaning": "both relative sigmas of the technology set to cv "
                          "(ra_tmr: sigma_RA/RA and sigma_TMR/TMR; resistance: CV of R_P, R_AP)",
            "trials": trials, "device_seed": 0, "seeds": list(range(seeds)),
            "points": points, "table_sigma": table}


#: The preset whose core spot-checks each technology in RTL.
TECH_PRESET = {"nand_spin": "nand_spin", "stt": "jeit_stt", "sot": "dima_sot",
               "imac": "imac_sot"}


#: Backends of the spot check: the RTL in a simulator, or the cycle-exact numpy core model that
#: the RTL is checked against (fast; the tests use it).
SPOT_BACKENDS = ("rtl", "model")


def _compile_for_spot_check(model, config, name: str, subarrays: int):
    from sim.compile.compiler import CompileError, compile_model
    try:
        return compile_model(model, config, subarrays=subarrays)
    except CompileError as e:
        raise UserError(f"--mat {subarrays}: model {model.name!r} does not compile for preset "
                        f"{name}: {e}") from None


def _model_spot_logits(compiled, x, faults: dict) -> np.ndarray:
    """Logits of ``x`` on ``sim.hw.core_model.CoreModel`` with the array's sensing faults, in the
    order ``sim.flows.rtl_backend`` drives the RTL: load the weights and tables, set the faults (the
    LFSRs start from the seed once), then the images one after the other."""
    from sim.compile.compiler import load_compiled, run_compiled
    from sim.hw.core_model import CoreModel
    core = CoreModel(compiled.config, subarrays=compiled.subarrays)
    load_compiled(compiled, core)
    core.set_faults(enable=True, **faults)
    return np.array([np.asarray(run_compiled(compiled, image, core, load_weights=False).logits)
                     .ravel() for image in x], dtype=np.int64)


def rtl_spot_check(*, model_name, technology, cv, n, sim="verilator", trials, seed=0,
                   backend: str = "rtl", subarrays: int | None = None) -> dict:
    """Run the first ``n`` test images on the core of ``technology``'s preset (a mat of
    ``subarrays``, default the preset's ``subarrays_per_mat``) with the array's sensing faults
    at the ``read`` BER of ``cv``; return the spot-check record.

    The core flips every *sensed* bit (``rtl.mtj_array``'s per-column LFSRs, one per mat
    column): each stored activation row is sensed once per output channel (write-free), or
    more often (abs-diff: sign and difference passes and the written-back differences;
    multiply layers: once per weight plane), while :mod:`sim.hw.faults` flips each activation and
    weight bit once. So the core sees more flips than the numpy model at one BER, and its
    accuracy is lower; the record holds both.

    ``backend`` ``rtl``: the RTL built with the fault injection
    (:func:`sim.flows.rtl_backend.run_images` ``(..., faults=..., subarrays=...)``, a build of its
    own), in which every stage of every image is checked bit for bit against
    ``sim.hw.core_model.CoreModel(config, subarrays=...)`` under the same faults. ``model``: that
    core model alone, driven the same way (the same logits, in seconds).
    """
    from rtl.config import preset
    from rtl.mtj_array import rate_to_threshold
    from sim.flows.rtl_backend import RtlRunError, run_images
    if backend not in SPOT_BACKENDS:
        raise UserError(f"--backend must be one of {', '.join(SPOT_BACKENDS)}, not "
                        f"{backend!r}")
    name = TECH_PRESET[technology]
    config = preset(name)
    k = config.subarrays_per_mat if subarrays is None else subarrays
    model = load_model(_model_path(model_name))
    compiled = _compile_for_spot_check(model, config, name, k)
    x, y = datasets.load_dataset(_model_dataset(model_name), "test")
    x, y = x[:n], y[:n]
    b = ber(technology, MODE, cv=cv, trials=trials, seed=0)
    threshold = rate_to_threshold(b.average)
    faults = {"seed": seed + 1, "threshold": threshold}   # LFSR seed 0 is mapped to 1 anyway
    t0 = time.perf_counter()
    if backend == "rtl":
        try:
            res = run_images(model_path=_model_path(model_name), config=config,
                             preset_name=name, sim=sim, x=x, faults=faults, quiet=True,
                             subarrays=k)
        except RtlRunError as e:
            raise UserError(f"RTL spot check failed: {e}") from None
        logits = np.array([im["logits"] for im in res["images"]], dtype=np.int64)
        golden = np.array([im["golden_logits"] for im in res["images"]], dtype=np.int64)
        wall = res["wall_seconds"]
    else:
        logits = _model_spot_logits(compiled, x, faults)
        golden = np.asarray(infer_int(model, x), dtype=np.int64)
        wall = time.perf_counter() - t0
    numpy_acc = _accuracies(model, x, y, b.average, 3)
    return {"backend": backend, "preset": name, "dataflow": config.dataflow,
            "simulator": sim if backend == "rtl" else None,
            "subarrays": k, "mat_columns": k * config.columns,
            "stage_modes": [st.mode for st in compiled.stages], "cv": cv,
            "ber": b.average, "fault_threshold": threshold, "fault_seed": faults["seed"],
            "images": int(len(y)),
            "accuracy": float((logits.argmax(1) == y).mean()),
            "golden_accuracy": float((golden.argmax(1) == y).mean()),
            "prediction_equal_golden": float((logits.argmax(1) == golden.argmax(1)).mean()),
            "logits_equal_golden": float((logits == golden).all(axis=1).mean()),
            "numpy_fault_model_accuracy": numpy_acc,
            # rtl: run_images raised unless every stage equalled the core model
            "equals_core_model": True if backend == "rtl" else None,
            "wall_seconds": wall}


def _plot(report: dict, path: Path) -> None:
    """Render the figure as PNG into ``path``."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pts = report["points"]
    cv = np.array([p["cv"] for p in pts]) * 100
    fig, (ax, bx) = plt.subplots(2, 1, sharex=True, figsize=(6.4, 6.0),
                                 gridspec_kw={"height_ratios": [2, 1]})
    ax.fill_between(cv, [100 * p["accuracy_min"] for p in pts],
                    [100 * p["accuracy_max"] for p in pts], alpha=0.3, label="min-max over seeds")
    ax.plot(cv, [100 * p["accuracy_mean"] for p in pts], "o-", label="mean")
    ax.set_ylabel("int8 accuracy (%)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    ax.set_title(f"{report['model']} on {report['technology']}: {report['images']} test images, "
                 f"{len(report['seeds'])} fault seeds", fontsize=10)
    b = np.array([p["ber"] for p in pts])
    nz = b > 0
    bx.semilogy(cv[nz], b[nz], "s-", color="C3")
    bx.set_ylabel(f"'{report['mode']}' BER (avg)")
    bx.set_xlabel("CV: relative sigma of RA and TMR (%)" if report["technology"] != "stt"
                  else "CV: relative sigma of R_P and R_AP (%)")
    bx.grid(alpha=0.3, which="both")
    if (~nz).any():
        bx.text(0.01, 0.92, f"BER = 0 (< 1/{report['trials']}) at CV <= "
                f"{cv[~nz].max():g}%", transform=bx.transAxes, fontsize=8, va="top")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _write_outputs(report: dict, json_path: Path, png_path: Path) -> None:
    """Both files are rendered first, then renamed into place (:func:`rtl.outputs.write_files`)."""
    write_files({png_path: lambda tmp: _plot(report, tmp),
                 json_path: json_text(report)}, option="--out")


def _table(report: dict) -> str:
    lines = [f"{report['model']} on {report['technology']}, mode '{report['mode']}', "
             f"{report['images']} images, {len(report['seeds'])} fault seeds, "
             f"{report['trials']} Monte Carlo trials",
             f"{'CV':>6} {'BER avg':>10} {'BER worst':>10} {'acc mean':>9} {'min':>7} {'max':>7}"]
    for p in report["points"] + [report["table_sigma"]]:
        cv = "table" if p["cv"] is None else f"{p['cv']:.3f}"
        lines.append(f"{cv:>6} {p['ber']:>10.3e} {p['ber_worst']:>10.3e} "
                     f"{100 * p['accuracy_mean']:>8.2f}% {100 * p['accuracy_min']:>6.2f}% "
                     f"{100 * p['accuracy_max']:>6.2f}%")
    sig = report["table_sigma"]["sigma"]
    lines.append(f"(table: the technology's own sigmas {sig[0]:g} / {sig[1]:g})")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.variation",
                                description="int8 accuracy against MTJ device variation.")
    p.add_argument("--model", default="fashion_addernet",
                   help=", ".join(MODEL_DATASET) + ", or the path of a .npz model file")
    p.add_argument("--dataset", default=None,
                   help="data set of a model file (default: told by its name); "
                        + ", ".join(DATASETS))
    p.add_argument("--technology", default="nand_spin", help=", ".join(TECHNOLOGIES))
    p.add_argument("--cv", default=None,
                   help=f"comma-separated CVs in [0, {MAX_CV}] (default "
                        f"{','.join(f'{c:g}' for c in DEFAULT_CVS)})")
    p.add_argument("-n", default="1000", help="number of test images (default 1000)")
    p.add_argument("--seeds", default="3", help="fault seeds per CV (default 3)")
    p.add_argument("--trials", default=str(DEFAULT_TRIALS),
                   help=f"Monte Carlo trials per stored value (default {DEFAULT_TRIALS})")
    p.add_argument("--out", default=None,
                   help="output stem (default build/reports/variation-MODEL-TECHNOLOGY)")
    p.add_argument("--rtl-cv", default=None,
                   help="also spot-check this CV on the core with the array's fault injection "
                        "(the technology's preset; RTL in Verilator: takes minutes)")
    p.add_argument("--rtl-n", default="20", help="images of the spot check (default 20)")
    p.add_argument("--sim", default="verilator", help="simulator of the RTL spot check")
    p.add_argument("--mat", default=None,
                   help=f"subarrays in lock-step of the spot check's core, {mat_range_help()} "
                        "(default: the preset's subarrays_per_mat)")
    p.add_argument("--backend", default="rtl",
                   help="backend of the spot check: rtl (default) or model (the cycle-exact "
                        "numpy core model the RTL is checked against)")
    return p


def _test_images(model_name: str) -> int:
    """Images in the test split of ``model_name``'s data set (a UserError if it is missing)."""
    try:
        return len(datasets.load_dataset(_model_dataset(model_name), "test")[1])
    except (ValueError, datasets.DatasetError) as e:
        raise UserError(str(e)) from None


@interruptible("python -m sim.analysis.variation", "no report or figure was written (files written "
               "before are unchanged)")
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        cvs, n, seeds, trials = _check_inputs(args)
        if args.rtl_cv is not None:     # checked before the numpy sweep, which takes a while
            try:
                rtl_cv = parse_cvs(args.rtl_cv)
            except UserError as e:
                raise UserError(str(e).replace("--cv:", "--rtl-cv:")) from None
            if len(rtl_cv) != 1:
                raise UserError(f"--rtl-cv must be one CV, not {args.rtl_cv!r}")
            rtl_n = _parse_int("--rtl-n", args.rtl_n)
            n_test = _test_images(args.model)
            if rtl_n > n_test:
                raise UserError(f"--rtl-n {rtl_n}: the {_model_dataset(args.model)} test split "
                                f"has only {n_test} images; give --rtl-n between 1 and "
                                f"{n_test}")
            if args.backend not in SPOT_BACKENDS:
                raise UserError(f"--backend must be one of {', '.join(SPOT_BACKENDS)}, not "
                                f"{args.backend!r}")
            if args.backend == "rtl":
                from sim.flows.rtl_backend import check_sim
                check_sim(args.sim)
        from rtl.config import preset
        name = TECH_PRESET[args.technology]
        mat = parse_mat(args.mat, preset(name), name)
        out = Path(args.out or f"build/reports/variation-{Path(args.model).stem}-"
                              f"{args.technology}")
        json_path, png_path = Path(f"{out}.json"), Path(f"{out}.png")
        for path in (json_path, png_path):          # before the sweep, which takes a while
            check_file("--out", path, example=f"variation.{path.suffix[1:]}")
        t0 = time.perf_counter()
        report = run(model_name=args.model, technology=args.technology, cvs=cvs, n=n,
                     seeds=seeds, trials=trials)
        if args.rtl_cv is not None:
            report["spot_check"] = rtl_spot_check(
                model_name=args.model, technology=args.technology, cv=rtl_cv[0], n=rtl_n,
                sim=args.sim, trials=trials, backend=args.backend, subarrays=mat)
        report["seconds"] = round(time.perf_counter() - t0, 2)
        report["command"] = shlex.join(["python", "-m", "sim.analysis.variation", *argv])
    except (UserError, ModelFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(_table(report))
    spot = report.get("spot_check")
    if spot:
        how = (f"RTL in {spot['simulator']}" if spot["backend"] == "rtl"
               else "numpy core model")
        same = ("; every stage == sim.hw.core_model under the same faults"
                if spot["backend"] == "rtl" else "")
        print(f"spot check ({how}, {spot['preset']}, {spot['dataflow']}, mat of "
              f"{spot['subarrays']} subarrays): CV {spot['cv']:g}, BER {spot['ber']:.3e}, "
              f"{spot['images']} images: accuracy {100 * spot['accuracy']:.1f} % (golden "
              f"{100 * spot['golden_accuracy']:.1f} %, numpy fault model "
              f"{100 * float(np.mean(spot['numpy_fault_model_accuracy'])):.1f} %){same}")
    sys.stdout.flush()              # the table is kept if writing the files fails
    try:
        _write_outputs(report, json_path, png_path)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{report['seconds']:.1f} s; wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
