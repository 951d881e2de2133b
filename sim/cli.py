"""spinpim command line: ``python -m sim.cli run --model fashion_addernet -n 200``.

``run`` evaluates a model on its data set's test split and writes a JSON report. Today it runs
the golden integer model (and the float reference, to report their agreement); the RTL backend
arrives with the accelerator top level, and asking for it says so instead of guessing.
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

from .util import UserError, write_json_atomic

BACKENDS = ("golden", "rtl")
#: Which data set each bundled model was trained on.
MODEL_DATASET = {"fashion_addernet": "fashion_mnist", "digits_addernet": "digits"}


def _resolve_model(spec: str):
    p = Path(spec)
    if p.suffix == ".npz" or p.exists():
        return load_model(p), MODEL_DATASET.get(p.stem)
    try:
        path = bundled_model_path(spec)
    except ValueError as e:
        raise UserError(f"--model: {e} (or give the path of a .npz model file)") from None
    return load_model(path), MODEL_DATASET.get(spec)


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
    if args.backend == "rtl":
        raise UserError("--backend rtl: the accelerator top level is not built yet (it is the "
                        "issue 'The accelerator end to end'); use --backend golden")
    n = _parse_n(args.n)
    model, ds_name = _resolve_model(args.model)
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
    out = Path(args.report or f"build/reports/{model.name}-{args.backend}.json")
    write_json_atomic(out, report)
    print(f"model {model.name} on {ds_name} test split, {len(y)} images, backend {args.backend}")
    print(f"  int8 accuracy      {100 * report['int8_accuracy']:.2f} %")
    print(f"  float accuracy     {100 * report['float_accuracy']:.2f} %")
    print(f"  int8 == float pred {100 * report['int8_float_prediction_agreement']:.2f} %")
    print(f"  golden speed       {report['golden_images_per_second']:.0f} images/s")
    print("  RTL                not run: the accelerator top level is not built yet")
    print(f"report: {out}")
    return 0


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
    r.add_argument("--report", help="JSON report path (default build/reports/MODEL-BACKEND.json)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (UserError, ModelFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
