"""sim.hw.imac_energy: the analytical CPU-IMAC model against hand computations.

Every expected value is computed here from the stated constants (Horowitz ISSCC 2014: 0.2 pJ
8-bit multiply, 0.1 pJ 32-bit add, 70 pJ per instruction, 100 pJ per 64 bits of a 1 MB SRAM;
the IMAC circuit's 5 / 15 kOhm, +-1 V, 2 ns; Ramkaj et al. JSSC 2018: 34.4 fJ per conversion
step, 1.25 GS/s; the SOT write of sim.hw.energy, 22.5 fJ and 2.4 ns per device), the networks'
shapes written out by hand and golden's neuron levels -- never from the module's own totals.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from golden import datasets, imac_net
from sim.hw import imac_energy as ie
from sim.analysis import report

ROOT = Path(__file__).resolve().parents[1]
REL = 1e-12

E_MAC = (0.2 + 0.1 + 70 / 16) * 1e-12          # J per int8 MAC, 16 SIMD lanes
E_SRAM = 100e-12 / 8                            # J per byte
G_SYN = 1 / 5e3 + 1 / 15e3                      # S, g_pos + g_neg of one synapse
R_NEURON = 8.49e3 + 25.46e3                     # Ohm, the neuron's resistive pair
P_NEURON = 2.0 ** 2 / R_NEURON                  # W, across the full 2 V swing


def p_amp(gain, abs_a=1.0):
    """One amplifier: quiescent 4 I_D across 2 V, g_m / I_D = 10, g_m settling 8 bits + 1/2
    LSB into 10 fF in 2 ns at noise gain 1 + gain; plus the output stage's feedback current
    |a| / (gain kOhm) from the 1 V rail."""
    gm = (1 + gain) * math.log(2 ** 9) * 10e-15 / 2e-9
    return 2.0 * 4 * gm / 10 + 1.0 * abs_a / (gain * 1e3)


P_AMP = p_amp(30.0)                             # W, gain 30, output at the rail
E_ADC = 2 ** 8 * 34.4e-15                       # J per 8-bit conversion
T_ADC = 1 / 1.25e9                              # s
E_WRITE = 22.5e-15                              # J per SOT device write
T_WRITE = 2.4e-9                                # s per synapse write
E_DRAM = 1.95e-9 / 8                            # J per byte
IMAGES = 100                                    # test images for the hidden-row levels


@pytest.fixture(scope="module")
def headline():
    return ie.headline(images=IMAGES)


def _net():
    return imac_net.load_net(imac_net.bundled_net_path("fashion_lenet_imac"))


def test_lenet_macs_by_hand():
    layers = ie.lenet_layers(_net())
    # conv0: 6 x 28 x 28 outputs x 1 x 5 x 5; conv1: 16 x 10 x 10 x 6 x 5 x 5; FC 400-120-84-10
    assert [(ly.name, ly.macs) for ly in layers] == [
        ("conv0", 117_600), ("conv1", 240_000), ("fc0", 48_000), ("fc1", 10_080),
        ("fc2", 840)]
    r = ie.evaluate(layers, name="lenet")
    assert r["macs"] == 416_520
    assert r["fc_mac_share"] == pytest.approx(58_920 / 416_520, rel=REL)


def test_vgg16_macs_by_hand():
    # (C_in, C_out, output side) of VGG-16's 13 convolutions on 32 x 32, 3 x 3 kernels
    convs = [(3, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16), (128, 256, 8),
             (256, 256, 8), (256, 256, 8), (256, 512, 4), (512, 512, 4), (512, 512, 4),
             (512, 512, 2), (512, 512, 2), (512, 512, 2)]
    want = [9 * ci * co * h * h for ci, co, h in convs] + [512 * 512, 512 * 10]
    assert [ly.macs for ly in ie.vgg_layers()] == want
    with pytest.raises(ValueError, match="fc\\[0\\] must be the 512 features"):
        ie.vgg_layers(fc=(400, 10))


def test_cpu_layer_by_hand():
    conv0 = ie.lenet_layers(_net())[0]
    r = ie.cpu_layer(conv0, ie.CpuParams(), weights_in_cache=True)
    # 150 weight bytes + 1 x 28 x 28 input bytes + 6 x 28 x 28 output bytes, from the cache
    assert r["sram_bytes"] == 150 + 784 + 4704 and r["dram_bytes"] == 0
    assert r["energy_j"] == pytest.approx(117_600 * E_MAC + 5638 * E_SRAM, rel=REL)
    # compute bound: 117,600 MACs / (16 x 2 GHz) against 5638 bytes / 64 GB/s
    assert r["latency_s"] == pytest.approx(117_600 / 32e9, rel=REL) and r["bound"] == "compute"
    r = ie.cpu_layer(conv0, ie.CpuParams(), weights_in_cache=False)
    assert r["dram_bytes"] == 150
    assert r["energy_j"] == pytest.approx(117_600 * E_MAC + 5488 * E_SRAM
                                          + 150 * 1.95e-9 / 8, rel=REL)


def test_imac_layer_by_hand():
    # 31 inputs + the bias row = one 32 x 32 crossbar; window 2 ns
    ly = ie.Layer("fc", "fc", 31 * 32, 32 * 32, 31, 32, 31, 32)
    r = ie.imac_layer(ly, ie.ImacParams(), window_s=2e-9, first=True, last=True, gain=30.0)
    e = r["energy_by_component_j"]
    assert r["partitions"] == [1, 1] and r["amplifiers"] == 32
    assert e["crossbar"] == pytest.approx(1.0 ** 2 * 32 * 32 * G_SYN * 2e-9, rel=1e-9)
    assert e["amplifiers"] == pytest.approx(32 * P_AMP * 2e-9, rel=REL)
    assert e["neurons"] == pytest.approx(32 * P_NEURON * 2e-9, rel=REL)
    assert e["drivers"] == pytest.approx(32 * 64 * 1e-15 * 2.0 ** 2, rel=REL)
    assert e["output_sampling"] == pytest.approx(32 * E_ADC, rel=REL)
    # Rows at a quarter of the supply squared (0.5 V), the bias row at the full supply.
    r = ie.imac_layer(ly, ie.ImacParams(), window_s=2e-9, first=False, last=False,
                      gain=30.0, row_v2=[0.25] * 31 + [1.0], neuron_v2=0.5, amp_abs_v=0.25)
    e = r["energy_by_component_j"]
    assert e["neurons"] == pytest.approx(32 * 0.5 / R_NEURON * 2e-9, rel=REL)
    assert e["amplifiers"] == pytest.approx(32 * p_amp(30.0, 0.25) * 2e-9, rel=REL)
    assert r["energy_by_component_j"]["crossbar"] == pytest.approx(
        (31 * 0.25 + 1) * 32 * G_SYN * 2e-9, rel=1e-9)
    assert r["crossbar_full_supply_j"] == pytest.approx(32 * 32 * G_SYN * 2e-9, rel=1e-9)
    with pytest.raises(ValueError, match=r"row_v2 of fc must be 32 values in \[0, 1\] V\^2"):
        ie.imac_layer(ly, ie.ImacParams(), window_s=2e-9, first=False, last=False,
                      gain=30.0, row_v2=[1.5] * 32)
    with pytest.raises(ValueError, match=r"neuron_v2 of fc must be in \[0, 4\] V\^2"):
        ie.imac_layer(ly, ie.ImacParams(), window_s=2e-9, first=False, last=False,
                      gain=30.0, neuron_v2=5.0)
    # 32 inputs + bias = 33 rows: two horizontal partitions, amplifiers per partition
    ly = ie.Layer("fc", "fc", 32 * 40, 33 * 40, 32, 40, 32, 40)
    r = ie.imac_layer(ly, ie.ImacParams(), window_s=2e-9, first=False, last=False, gain=10.0)
    assert r["partitions"] == [2, 2] and r["amplifiers"] == 80
    assert r["energy_by_component_j"]["drivers"] == 0
    assert r["energy_by_component_j"]["output_sampling"] == 0


def _hidden_row_sums():
    """Sum over each hidden layer's input rows of the mean squared drive (V^2), from golden's
    levels of the bundled network over the first IMAGES test images (code / 255 volts)."""
    x, _ = datasets.load_fashion_mnist("test")
    levels = imac_net.infer(_net(), x[:IMAGES])
    return [float(((lv / 255.0) ** 2).mean(axis=0).sum()) for lv in levels[:2]]


def _golden_neuron_levels():
    """Per layer, from golden's fixed-point stages of the bundled network over the first
    IMAGES test images: the mean of (v_in + v_out)^2 (v_in the partition mean of the
    amplifier codes x 2^-10 V, v_out the code / 255 V) and the mean |a| (V); the outputs
    checked against golden.imac_net.infer."""
    from golden import imac
    net = _net()
    x, _ = datasets.load_fashion_mnist("test")
    act = imac_net.cpu_int(net, x[:IMAGES]) * 255
    want = imac_net.infer(net, x[:IMAGES])
    out = []
    for li, (w, b, gain) in enumerate(zip(net.fc_weights, net.fc_biases, net.gains,
                                          strict=True)):
        act = np.hstack([act, np.full((act.shape[0], 1), 255)])
        gp, gn = imac.draw_conductances(np.vstack([w, b[None, :]]))
        y, _, amp = imac.layer_fixed(act, imac.quantize_conductances(gp),
                                     imac.quantize_conductances(gn), gain, return_stages=True)
        assert (y == want[li]).all()
        n_part = amp.shape[1]
        recip = round(2 ** 16 / n_part)
        v = np.clip((amp.sum(axis=1) * recip + 2 ** 15) >> 16, -1024, 1024)
        out.append((float((((v / 1024.0) + y / 255.0) ** 2).mean()),
                    float(np.abs(amp / 1024.0).mean())))
        act = y
    return out


def test_lenet_saving_mac_only_by_hand(headline):
    """Bytes free: the saving is the FC MACs' CPU energy less IMAC's, over all MACs."""
    r = headline["sensitivity"]["lenet_mac_only"]
    window = 3 * 2e-9
    v1, v2 = _hidden_row_sums()
    # fc0: 401 rows at +-1 V; fc1, fc2: their rows at the previous neuron levels, bias at 1 V
    xbar = G_SYN * window * (401 * 120 + (v1 + 1) * 84 + (v2 + 1) * 10)
    # ceil(401/32), ceil(121/32), ceil(85/32) partitions; gains 30, 30, 10 (the bundled net)
    lv = _golden_neuron_levels()
    amps = sum(p * n * p_amp(g, a) for p, n, g, (_, a) in
               zip((13, 4, 3), (120, 84, 10), _net().gains, lv, strict=True))
    neurons = sum(n * nv2 / R_NEURON for n, (nv2, _) in zip((120, 84, 10), lv, strict=True))
    assert all(0 < nv2 < 4.0 for nv2, _ in lv)          # inside the full-swing bound
    e_imac = (xbar + amps * window
              + neurons * window
              + 401 * 4 * 64 * 1e-15 * 4.0           # 401 rows x 4 vertical partitions
              + 10 * E_ADC)
    e_cpu = 416_520 * E_MAC
    want = (58_920 * E_MAC - e_imac) / e_cpu
    assert r["energy_saving"] == pytest.approx(want, rel=1e-9)
    # never more than the FC layers' share of the MACs
    assert r["energy_saving"] < 58_920 / 416_520
    # latency: CPU-only all MACs; CPU-IMAC the conv MACs + 60 bytes + 3 x 2 ns + the sampling
    assert r["cpu_only"]["latency_s"] == pytest.approx(416_520 / 32e9, rel=REL)
    assert r["cpu_imac"]["latency_s"] == pytest.approx(
        357_600 / 32e9 + 60 / 64e9 + 6e-9 + T_ADC, rel=REL)
    # The hidden rows carry less than the full supply: below the old upper bound.
    assert r["crossbar_energy_j"] == pytest.approx(xbar, rel=1e-9)
    assert r["crossbar_energy_j"] < r["crossbar_full_supply_energy_j"] == pytest.approx(
        G_SYN * window * (401 * 120 + 121 * 84 + 85 * 10), rel=1e-9)


def test_programming_by_hand(headline):
    """One network load: two device writes per synapse, one bit per weight from DRAM."""
    r = headline["lenet"]
    pr = r["programming"]
    synapses = 401 * 120 + 121 * 84 + 85 * 10            # 59,134
    assert pr["device_writes"] == 2 * synapses and pr["weight_bytes_from_dram"] == 7392
    e_load = 2 * synapses * E_WRITE + 7392 * E_DRAM
    assert pr["energy_j"] == pytest.approx(e_load, rel=REL)
    assert pr["latency_s"] == pytest.approx(synapses * T_WRITE + 7392 / 12.8e9, rel=REL)
    assert pr["energy_per_image_j"] == pytest.approx(e_load / 10_000, rel=REL)
    e_cpu, e_split = r["cpu_only"]["energy_j"], r["cpu_imac"]["energy_j"]
    assert r["energy_saving_with_programming"] == pytest.approx(
        1 - (e_split + e_load / 10_000) / e_cpu, rel=REL)
    assert r["break_even_images"] == pytest.approx(e_load / (e_cpu - e_split), rel=REL)


def test_random_row_levels():
    """Random inputs through random weights: the first layer's rows at the full supply, the
    hidden ones at neuron levels inside it, every bias row at the full supply; seeded."""
    v2 = ie.random_row_v2((40, 20, 3), (30.0, 10.0), vectors=8, seed=5)
    assert [a.shape for a in v2] == [(41,), (21,)]
    assert (v2[0] == 1.0).all() and v2[1][-1] == 1.0
    assert ((0 < v2[1][:-1]) & (v2[1][:-1] < 1)).all()
    again = ie.random_row_v2((40, 20, 3), (30.0, 10.0), vectors=8, seed=5)
    assert all((a == b).all() for a, b in zip(v2, again, strict=True))
    with pytest.raises(ValueError, match=r"^gains must have one entry per layer \(2\), not 1$"):
        ie.random_row_v2((40, 20, 3), (30.0,))
    with pytest.raises(ValueError, match=r"^vectors must be a positive int, not 0$"):
        ie.random_row_v2((40, 20, 3), (30.0, 10.0), vectors=0)


def test_headline_consistent_with_per_layer_sums(headline):
    h = headline
    for key in ("lenet", "vgg"):
        r = h[key]
        e_cpu = sum(x["energy_j"] for x in r["cpu_only"]["per_layer"])
        e_split = sum(x["energy_j"] for x in r["cpu_imac"]["per_layer"])
        assert r["energy_saving"] == pytest.approx(1 - e_split / e_cpu, rel=REL)
        assert 0 < r["energy_saving"] < r["fc_energy_share_cpu_only"]
        # the old model, every row at the full supply, is a lower bound of the saving
        upper = h["sensitivity"][f"{key}_full_supply_rows"]
        assert upper["energy_saving"] < r["energy_saving"]
        assert upper["cpu_imac"]["energy_j"] - r["cpu_imac"]["energy_j"] == pytest.approx(
            r["crossbar_full_supply_energy_j"] - r["crossbar_energy_j"], rel=1e-6)
    # LeNet's weights (61,728 B) fit the 1 MB cache, VGG's conv weights (14.7 MB) do not
    assert h["lenet"]["cpu_only"]["weights_in_cache"] is True
    assert h["vgg"]["cpu_imac"]["conv_weights_in_cache"] is False
    assert h["seed_saving_pct"] == {"lenet": 6.5, "vgg": 10.0}
    assert set(h["sources"]) >= {"cpu.e_mult8_j", "cpu.e_instr_j", "imac.p_amp_w",
                                 "imac.amp_load_f", "imac.neuron"}
    # the old upper bound: rows at the full supply, neurons at the full swing, amplifier
    # outputs at the rail -- a lower saving than the levels give
    for key in ("lenet", "vgg"):
        assert h["sensitivity"][f"{key}_full_swing"]["energy_saving"] < h[key]["energy_saving"]
    json.dumps(h)                                       # serialisable as it is


def test_cli(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "e.json"
    r = subprocess.run([sys.executable, "-m", "sim.hw.imac_energy", "--json", str(out),
                        "--images", "20"], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert "seed 003: 6.5 %" in r.stdout and "seed 003: 10 %" in r.stdout
    assert "neuron levels of 20 test images" in r.stdout
    assert json.loads(out.read_text())["lenet"]["macs"] == 416_520
    r = subprocess.run([sys.executable, "-m", "sim.hw.imac_energy", "--json", str(tmp_path)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: --json") and "is a directory" in r.stderr
    for bad in ("0", "10001", "many"):
        r = subprocess.run([sys.executable, "-m", "sim.hw.imac_energy", "--images", bad],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr == (
            f"error: --images must be an integer in [1, 10000], not {bad!r}\n")


def test_in_report_for_imac_sot(tmp_path):
    out = tmp_path / "rep"
    rc = report.main(["--backend", "model", "--model", "digits_addernet", "-n", "1",
                      "--preset", "imac_sot", "--mat", "1", "--out", str(out), "--quiet"])
    assert rc == 0
    rep = json.loads((out / "report-imac_sot.json").read_text())
    assert rep["cpu_imac_model"]["lenet"]["macs"] == 416_520
    md = (out / "report.md").read_text()
    saving = 100 * rep["cpu_imac_model"]["lenet"]["energy_saving"]
    assert "CPU-IMAC vs CPU-only, analytical, LeNet" in md and "the seed's 6.5%" in md
    assert f"energy saving {report._g(saving, 2)}%" in md


def test_bad_parameters_one_line():
    layers = ie.lenet_layers(_net())
    with pytest.raises(ValueError, match=r"^sampling time 1\.0 ns is shorter than the settling "
                                         r"time 2\.0 ns$"):
        ie.evaluate(layers, imac_p=ie.ImacParams(sampling_ns=1.0))
    with pytest.raises(ValueError, match="network 'convs' has no FC layer to run on IMAC"):
        ie.evaluate(layers[:2], name="convs")
    with pytest.raises(ValueError, match=r"^row_v2 must have one entry per FC layer \(3\), "
                                         r"not 2$"):
        ie.evaluate(layers, row_v2=[None, None])
