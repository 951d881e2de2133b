"""sim.analysis.imac_variation: the IMAC variation sweep, run as the user runs it, on a few images.

Expected accuracies come from golden (``golden.imac_net.infer``), not from the module.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden import imac, imac_net
from golden.datasets import load_fashion_mnist
from sim.analysis import imac_variation as iv

ROOT = Path(__file__).resolve().parents[1]
N = 12


def _run(*args):
    return subprocess.run([sys.executable, "-m", "sim.analysis.imac_variation", *args], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def data():
    net = imac_net.load_net(imac_net.bundled_net_path("fashion_lenet_imac"))
    x, y = load_fashion_mnist("test")
    return net, x[:N], y[:N]


def test_two_sigmas(tmp_path, data):
    net, x, y = data
    out = tmp_path / "r" / "v"
    r = _run("-n", str(N), "--sigma", "0.1,0", "--spread", "0,0.05", "--slope", "0.3,0",
             "--seeds", "2", "--out", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.with_suffix(".json").read_text())
    assert {"model", "images", "seeds", "resistance_sigma", "neuron_spread", "neuron_slope",
            "command", "seconds"} <= set(rep)
    assert rep["model"] == "fashion_lenet_imac" and rep["images"] == N
    assert rep["seeds"] == [0, 1]
    pts = rep["resistance_sigma"]["points"]
    assert [p["sigma"] for p in pts] == [0.0, 0.1]          # sorted
    keys = {"accuracy", "accuracy_mean", "accuracy_std", "accuracy_min", "accuracy_max"}
    assert [p["slope_sigma"] for p in rep["neuron_slope"]["points"]] == [0.0, 0.3]
    for p in pts + rep["neuron_spread"]["points"] + rep["neuron_slope"]["points"]:
        assert keys <= set(p) and len(p["accuracy"]) == 2
        assert p["accuracy_min"] <= p["accuracy_mean"] <= p["accuracy_max"]
    # sigma 0 and spread 0: every seed gives golden's ideal accuracy
    ideal = float((imac.classify(imac_net.infer(net, x)[-1]) == y).mean())
    assert pts[0]["accuracy"] == [ideal, ideal]
    assert rep["neuron_spread"]["points"][0]["accuracy"] == [ideal, ideal]
    assert rep["neuron_slope"]["points"][0]["accuracy"] == [ideal, ideal]
    # sigma 0.1 seed s: golden's run_mlp with the same variation
    want = [float((imac.classify(imac_net.infer(net, x, sigma=0.1, seed=s)[-1]) == y).mean())
            for s in (0, 1)]
    assert pts[1]["accuracy"] == want
    png = out.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


def test_spread_zero_is_run_mlp(data):
    net, x, _ = data
    signs = imac_net.cpu_int(net, x)
    want = imac.run_mlp(signs, net.fc_weights, net.gains, biases=net.fc_biases, sigma=0.1,
                        seed=3)[-1]
    got = iv.run_spread(signs, net, sigma=0.1, seed=3, spread_v=0.0)
    assert np.array_equal(got, want)
    got = iv.run_spread(signs, net, sigma=0.1, seed=3, spread_v=0.0, slope_sigma=0.0)
    assert np.array_equal(got, want)


def _one_layer(net):
    return type(net)(name=net.name, input_shape=net.input_shape, input_scale=net.input_scale,
                     class_names=net.class_names,
                     arrays={**net.arrays, "fc.num_layers": np.int64(1),
                             "fc.gains": net.arrays["fc.gains"][:1]})


def _layer0_volts(net, signs):
    """Layer 0's neuron input in volts, from golden's amplifier codes (ideal devices)."""
    w, b, gain = net.fc_weights[0], net.fc_biases[0], net.gains[0]
    rows = np.vstack([w, b[None, :]])
    act = np.hstack([signs * 255, np.full((len(signs), 1), 255)])
    gp, gn = imac.draw_conductances(rows)
    _, _, amp = imac.layer_fixed(act, imac.quantize_conductances(gp),
                                 imac.quantize_conductances(gn), gain, return_stages=True)
    recip = round(2 ** 16 / amp.shape[1])
    return np.clip((amp.sum(axis=1) * recip + 2 ** 15) >> 16, -1024, 1024) / 1024.0


@pytest.mark.parametrize("slope", [0.3, 0.5])
def test_slope_scales_each_curve(data, slope):
    """Each neuron's logistic scale is 1/12 V times exp(slope * z), z drawn with
    default_rng([seed, layer, 1]); the curves stay centred."""
    net, x, _ = data
    signs = imac_net.cpu_int(net, x)
    v = _layer0_volts(net, signs)
    z = np.random.default_rng([7, 0, 1]).standard_normal(v.shape[1])
    scale = (1.0 / 12.0) * np.exp(slope * z)
    y = np.floor(255 * (1.0 / (1.0 + np.exp(-v / scale))) + 0.5)
    got = iv.run_spread(signs, _one_layer(net), sigma=0.0, seed=7, spread_v=0.0,
                        slope_sigma=slope)
    assert np.array_equal(got, y)
    assert not np.array_equal(got, imac.run_mlp(signs, net.fc_weights[:1], net.gains[:1],
                                                biases=net.fc_biases[:1])[-1])


def test_spread_shifts_each_curve(data):
    """A single-layer net, offsets drawn as the docstring says: each neuron's code is golden's
    curve centred on its own offset."""
    net, x, _ = data
    signs = imac_net.cpu_int(net, x)
    got = iv.run_spread(signs, net, sigma=0.0, seed=5, spread_v=0.2)
    assert not np.array_equal(got, imac.run_mlp(signs, net.fc_weights, net.gains,
                                                biases=net.fc_biases)[-1])
    # layer 0 by hand: amplifier codes from golden, then the shifted logistic per neuron
    w, b, gain = net.fc_weights[0], net.fc_biases[0], net.gains[0]
    rows = np.vstack([w, b[None, :]])
    act = np.hstack([signs * 255, np.full((len(signs), 1), 255)])
    gp, gn = imac.draw_conductances(rows)
    _, _, amp = imac.layer_fixed(act, imac.quantize_conductances(gp),
                                 imac.quantize_conductances(gn), gain, return_stages=True)
    z = np.random.default_rng([5, 0]).standard_normal(w.shape[1])
    recip = round(2 ** 16 / amp.shape[1])
    v = np.clip((amp.sum(axis=1) * recip + 2 ** 15) >> 16, -1024, 1024) / 1024.0
    y = np.floor(255 * (1.0 / (1.0 + np.exp(-(v - np.clip(0.2 * z, -1, 1)) / (1.0 / 12.0))))
                 + 0.5)
    one = type(net)(name=net.name, input_shape=net.input_shape, input_scale=net.input_scale,
                    class_names=net.class_names,
                    arrays={**net.arrays, "fc.num_layers": np.int64(1),
                            "fc.gains": net.arrays["fc.gains"][:1]})
    assert np.array_equal(iv.run_spread(signs, one, sigma=0.0, seed=5, spread_v=0.2), y)


@pytest.mark.parametrize("args, message", [
    (("--sigma", "0,0.3"), "--sigma: '0.3' is out of range; give a comma-separated list of "
                           "numbers in [0, 0.25]"),
    (("--sigma", "x"), "--sigma: cannot parse 'x'"),
    (("--spread", "-1"), "--spread: '-1' is out of range"),
    (("--slope", "0,2"), "--slope: '2' is out of range; give a comma-separated list of numbers "
                         "in [0, 1]"),
    (("-n", "0"), "-n must be an integer >= 1, not '0'"),
    (("-n", "20000"), "-n 20000: the fashion_mnist test split has only 10000 images"),
])
def test_bad_input_one_line(tmp_path, args, message):
    r = _run(*args, "--out", str(tmp_path / "v"))
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: ")
    assert message in r.stderr
    assert not list(tmp_path.iterdir())
