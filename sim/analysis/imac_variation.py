"""Accuracy of the CPU-IMAC network against IMAC device variation (seed 003):
``python -m sim.analysis.imac_variation [--sigma 0,0.05,...] [--spread 0,0.02,...]
[--slope 0,0.1,...]
[-n 1000] [--seeds 3] [--out build/reports/variation-imac-fashion_lenet_imac]``
(``make variation PRESET=imac_sot``).

The CPU part (golden's integer convolutions, :func:`golden.imac_net.cpu_int`) runs once; the
IMAC part runs in golden's fixed-point model for every point and seed:

* **Resistance sigma** (``--sigma``): every synapse device's resistance is
  ``R_nominal * exp(sigma * z)`` (``golden.imac.draw_conductances``; layer ``l`` drawn
  with seed ``seed + l``, as ``golden.imac.run_mlp`` does, which computes these points).
  golden.imac allows sigma in [0, 0.25] (the conductance codes' range), so the sweep does.
* **Neuron-curve spread** (``--spread``, volts): each neuron's sigmoid is shifted by its own
  offset ``clip(spread * z, -v_supply, +v_supply)``, ``z`` standard normal from
  ``numpy.random.default_rng([seed, layer])`` in neuron order (ASSUMPTION: the spread of the
  SOT-MRAM neuron's curve, whose centre is set by the devices' resistances and the inverter's
  threshold, modelled as a spread of the curve's centre; golden.imac's neuron has one curve for
  all neurons). Each neuron's curve is golden's own table
  (``golden.imac.sigmoid_lut`` with ``neuron_offset_v`` = its offset) applied by
  ``golden.imac.neuron_fixed`` to golden's amplifier codes (``golden.imac.layer_fixed``
  with ``return_stages``); the synapses at ``--spread-sigma`` (default 0). Spread 0 is
  exactly ``golden.imac.run_mlp``.
* **Neuron-slope spread** (``--slope``, lognormal sigma): each neuron's logistic scale is
  ``neuron_scale_v * exp(slope * z)``, ``z`` standard normal from
  ``numpy.random.default_rng([seed, layer, 1])`` in neuron order, curves centred (ASSUMPTION:
  the slope is set by the ratio of the neuron's feedback and input resistors, 25.46 / 8.49
  kOhm in IMAC-Sim, and the inverter's gain, whose mismatch scales it; lognormal keeps it
  positive, as golden's device variation does). Applied like the offsets, golden's table
  (``neuron_scale_v`` = the neuron's scale) per neuron, the synapses at ``--spread-sigma``.
  Slope 0 is exactly ``golden.imac.run_mlp``.

Seeds are 0 .. seeds-1. It writes ``<out>.json`` and ``<out>.png`` (both checked before any
work, written through :func:`rtl.outputs.write_files`) and prints a table.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

import numpy as np

from golden import datasets, imac, imac_net
from rtl.outputs import check_file, interruptible, json_text, write_files

from sim.util import UserError, parse_number_list

__all__ = ["MAX_SIGMA", "DEFAULT_SIGMAS", "DEFAULT_SPREADS", "DEFAULT_SLOPES", "run_spread",
           "run", "main"]

#: golden.imac.draw_conductances' largest sigma.
MAX_SIGMA = 0.25
DEFAULT_SIGMAS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25)
#: Neuron offset spreads in volts (the curve's logistic scale is 1/12 V = 0.083 V).
DEFAULT_SPREADS = (0.0, 0.02, 0.05, 0.1, 0.2)
MAX_SPREAD = 1.0
#: Neuron slope spreads (lognormal sigma of each neuron's logistic scale).
DEFAULT_SLOPES = (0.0, 0.1, 0.2, 0.3, 0.5)
MAX_SLOPE = 1.0


def run_spread(signs, net, *, sigma: float, seed: int, spread_v: float,
               slope_sigma: float = 0.0) -> np.ndarray:
    """Last-layer output codes of the IMAC MLP with per-neuron curve offsets and slopes
    (module docstring); ``signs`` ``[N, n_in]`` of +-1."""
    c, f = imac.CIRCUIT, imac.FIXED
    act = np.asarray(signs, dtype=np.int64) * f.x_max
    for layer, (w, b, gain) in enumerate(zip(net.fc_weights, net.fc_biases, net.gains,
                                             strict=True)):
        rows = np.vstack([w, b[None, :]])
        act = np.hstack([act, np.full((act.shape[0], 1), f.x_max, dtype=np.int64)])
        g_pos, g_neg = imac.draw_conductances(rows, sigma=sigma, seed=seed + layer)
        _, _, amp = imac.layer_fixed(act, imac.quantize_conductances(g_pos),
                                     imac.quantize_conductances(g_neg), gain,
                                     return_stages=True)
        z = np.random.default_rng([seed, layer]).standard_normal(w.shape[1])
        offsets = np.clip(spread_v * z, -c.v_supply, c.v_supply)
        z = np.random.default_rng([seed, layer, 1]).standard_normal(w.shape[1])
        scales = c.neuron_scale_v * np.exp(slope_sigma * z)
        act = np.stack([imac.neuron_fixed(amp[:, :, k:k + 1], imac.sigmoid_lut(
            dataclasses.replace(c, neuron_offset_v=float(o), neuron_scale_v=float(sc))))[:, 0]
            for k, (o, sc) in enumerate(zip(offsets, scales, strict=True))], axis=1)
    return act


def _stats(key, value, accs) -> dict:
    return {key: value, "accuracy": accs, "accuracy_mean": float(np.mean(accs)),
            "accuracy_std": float(np.std(accs)), "accuracy_min": min(accs),
            "accuracy_max": max(accs)}


def run(*, model: str, sigmas, spreads, n: int, seeds: int, spread_sigma: float = 0.0,
        slopes=()) -> dict:
    """Every point of both sweeps; the report without the command line."""
    from sim.flows.imac_flow import resolve_net
    net, _ = resolve_net(model)
    try:
        x, y = datasets.load_fashion_mnist("test")
    except datasets.DatasetError as e:
        raise UserError(str(e)) from None
    if n > len(y):
        raise UserError(f"-n {n}: the fashion_mnist test split has only {len(y)} images; give "
                        f"-n between 1 and {len(y)}")
    x, y = x[:n], y[:n]
    signs = np.concatenate([imac_net.cpu_int(net, x[s:s + 500]) for s in range(0, n, 500)])

    def acc(levels):
        return float((imac.classify(levels) == y).mean())

    res = [_stats("sigma", s, [acc(imac.run_mlp(signs, net.fc_weights, net.gains,
                                                biases=net.fc_biases, sigma=s,
                                                seed=k)[-1]) for k in range(seeds)])
           for s in sigmas]
    spr = [_stats("spread_v", v, [acc(run_spread(signs, net, sigma=spread_sigma, seed=k,
                                                 spread_v=v)) for k in range(seeds)])
           for v in spreads]
    slo = [_stats("slope_sigma", v, [acc(run_spread(signs, net, sigma=spread_sigma, seed=k,
                                                    spread_v=0.0, slope_sigma=v))
                                     for k in range(seeds)])
           for v in slopes]
    return {"model": net.name, "dataset": "fashion_mnist", "split": "test", "images": n,
            "impl": "golden.imac fixed point", "seeds": list(range(seeds)),
            "resistance_sigma": {"meaning": "lognormal sigma of every synapse device's "
                                            "resistance (golden.imac.draw_conductances)",
                                 "points": res},
            "neuron_spread": {"meaning": "sigma (V) of each neuron's sigmoid centre offset, "
                                         "clipped to +-v_supply (ASSUMPTION)",
                              "resistance_sigma": spread_sigma, "points": spr},
            "neuron_slope": {"meaning": "lognormal sigma of each neuron's logistic scale "
                                        "(its slope), curves centred (ASSUMPTION)",
                             "resistance_sigma": spread_sigma, "points": slo}}


def _plot(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.8), sharey=True)
    for ax, key, xkey, label, scale in (
            (axes[0], "resistance_sigma", "sigma", "resistance sigma (lognormal)", 1.0),
            (axes[1], "neuron_spread", "spread_v", "neuron curve offset sigma (mV)", 1e3),
            (axes[2], "neuron_slope", "slope_sigma", "neuron slope sigma (lognormal)", 1.0)):
        pts = report[key]["points"]
        if not pts:
            ax.set_visible(False)
            continue
        xs = np.array([p[xkey] for p in pts]) * scale
        ax.fill_between(xs, [100 * p["accuracy_min"] for p in pts],
                        [100 * p["accuracy_max"] for p in pts], alpha=0.3,
                        label="min-max over seeds")
        ax.errorbar(xs, [100 * p["accuracy_mean"] for p in pts],
                    yerr=[100 * p["accuracy_std"] for p in pts], fmt="o-", capsize=3,
                    label="mean +- std")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=8)
    axes[0].set_ylabel("accuracy (%)")
    fig.suptitle(f"{report['model']}: IMAC (golden fixed point) vs device variation, "
                 f"{report['images']} test images, {len(report['seeds'])} seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=110)
    plt.close(fig)


def _table(report: dict) -> str:
    lines = [f"{report['model']}: {report['images']} test images, seeds "
             f"{report['seeds'][0]}..{report['seeds'][-1]}, golden fixed point",
             f"{'resistance sigma':>17} {'mean':>8} {'std':>6} {'min':>7} {'max':>7}"]
    for p in report["resistance_sigma"]["points"]:
        lines.append(f"{p['sigma']:>17.3f} {100 * p['accuracy_mean']:>7.2f}% "
                     f"{100 * p['accuracy_std']:>5.2f} {100 * p['accuracy_min']:>6.2f}% "
                     f"{100 * p['accuracy_max']:>6.2f}%")
    lines.append(f"{'neuron spread (V)':>17} {'mean':>8} {'std':>6} {'min':>7} {'max':>7}"
                 f"   (synapse sigma {report['neuron_spread']['resistance_sigma']:g})")
    for p in report["neuron_spread"]["points"]:
        lines.append(f"{p['spread_v']:>17.3f} {100 * p['accuracy_mean']:>7.2f}% "
                     f"{100 * p['accuracy_std']:>5.2f} {100 * p['accuracy_min']:>6.2f}% "
                     f"{100 * p['accuracy_max']:>6.2f}%")
    if report["neuron_slope"]["points"]:
        lines.append(f"{'neuron slope sigma':>17} {'mean':>8} {'std':>6} {'min':>7} {'max':>7}"
                     f"   (synapse sigma {report['neuron_slope']['resistance_sigma']:g})")
    for p in report["neuron_slope"]["points"]:
        lines.append(f"{p['slope_sigma']:>17.3f} {100 * p['accuracy_mean']:>7.2f}% "
                     f"{100 * p['accuracy_std']:>5.2f} {100 * p['accuracy_min']:>6.2f}% "
                     f"{100 * p['accuracy_max']:>6.2f}%")
    return "\n".join(lines)


def _int(option: str, text) -> int:
    try:
        v = int(text)
    except (TypeError, ValueError):
        v = 0
    if v < 1:
        raise UserError(f"{option} must be an integer >= 1, not {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.imac_variation",
                                description="CPU-IMAC accuracy against IMAC device variation "
                                            "(golden fixed point).")
    p.add_argument("--model", default="fashion_lenet_imac", help="CPU-IMAC network")
    p.add_argument("--sigma", default=",".join(f"{v:g}" for v in DEFAULT_SIGMAS),
                   help=f"resistance sigmas in [0, {MAX_SIGMA}]")
    p.add_argument("--spread", default=",".join(f"{v:g}" for v in DEFAULT_SPREADS),
                   help=f"neuron curve offset sigmas in volts, [0, {MAX_SPREAD:g}]")
    p.add_argument("--slope", default=",".join(f"{v:g}" for v in DEFAULT_SLOPES),
                   help=f"neuron slope sigmas (lognormal), [0, {MAX_SLOPE:g}]")
    p.add_argument("--spread-sigma", default="0",
                   help="resistance sigma of the synapses during the spread sweep")
    p.add_argument("-n", default="1000", help="test images (default 1000)")
    p.add_argument("--seeds", default="3", help="seeds per point (default 3)")
    p.add_argument("--out", default=None,
                   help="output stem (default build/reports/variation-imac-MODEL)")
    return p


@interruptible("python -m sim.analysis.imac_variation",
               "no report or figure was written (files written before are unchanged)")
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    try:
        sigmas = parse_number_list("--sigma", args.sigma, MAX_SIGMA)
        spreads = parse_number_list("--spread", args.spread, MAX_SPREAD, " V")
        slopes = parse_number_list("--slope", args.slope, MAX_SLOPE)
        spread_sigma = parse_number_list("--spread-sigma", args.spread_sigma, MAX_SIGMA)
        if len(spread_sigma) != 1:
            raise UserError(f"--spread-sigma must be one number, not {args.spread_sigma!r}")
        n, seeds = _int("-n", args.n), _int("--seeds", args.seeds)
        out = Path(args.out or f"build/reports/variation-imac-{args.model}")
        json_path, png_path = Path(f"{out}.json"), Path(f"{out}.png")
        for path in (json_path, png_path):          # before the sweep
            check_file("--out", path, example=f"variation.{path.suffix[1:]}")
        t0 = time.perf_counter()
        report = run(model=args.model, sigmas=sigmas, spreads=spreads, n=n, seeds=seeds,
                     spread_sigma=spread_sigma[0], slopes=slopes)
        report["seconds"] = round(time.perf_counter() - t0, 2)
        report["command"] = shlex.join(["python", "-m", "sim.analysis.imac_variation", *argv])
        print(_table(report), flush=True)
        write_files({png_path: lambda tmp: _plot(report, tmp),
                     json_path: json_text(report)}, option="--out")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{report['seconds']:.1f} s; wrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
