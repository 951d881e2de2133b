"""sim.imac_energy: the analytical CPU-IMAC model against hand computations.

Every expected value is computed here from the stated constants (Horowitz ISSCC 2014: 0.2 pJ
8-bit multiply, 0.1 pJ 32-bit add, 70 pJ per instruction, 100 pJ per 64 bits of a 1 MB SRAM;
the IMAC circuit's 5 / 15 kOhm, +-1 V, 2 ns) and the networks' shapes written out by hand --
never from the module's own totals.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from golden import imac_net
from sim import imac_energy as ie
from sim import report

ROOT = Path(__file__).resolve().parents[1]
REL = 1e-12

E_MAC = (0.2 + 0.1 + 70 / 16) * 1e-12          # J per int8 MAC, 16 SIMD lanes
E_SRAM = 100e-12 / 8                            # J per byte
G_SYN = 1 / 5e3 + 1 / 15e3                      # S, g_pos + g_neg of one synapse
P_NEURON = 2.0 ** 2 / (8.49e3 + 25.46e3)        # W
P_AMP = 100e-6                                  # W


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
    r = ie.imac_layer(ly, ie.ImacParams(), window_s=2e-9, first=True, last=True)
    e = r["energy_by_component_j"]
    assert r["partitions"] == [1, 1] and r["amplifiers"] == 32
    assert e["crossbar"] == pytest.approx(1.0 ** 2 * 32 * 32 * G_SYN * 2e-9, rel=1e-9)
    assert e["amplifiers"] == pytest.approx(32 * P_AMP * 2e-9, rel=REL)
    assert e["neurons"] == pytest.approx(32 * P_NEURON * 2e-9, rel=REL)
    assert e["drivers"] == pytest.approx(32 * 64 * 1e-15 * 2.0 ** 2, rel=REL)
    assert e["output_sampling"] == pytest.approx(32 * 256 * 10e-15, rel=REL)
    # 32 inputs + bias = 33 rows: two horizontal partitions, amplifiers per partition
    ly = ie.Layer("fc", "fc", 32 * 40, 33 * 40, 32, 40, 32, 40)
    r = ie.imac_layer(ly, ie.ImacParams(), window_s=2e-9, first=False, last=False)
    assert r["partitions"] == [2, 2] and r["amplifiers"] == 80
    assert r["energy_by_component_j"]["drivers"] == 0
    assert r["energy_by_component_j"]["output_sampling"] == 0


def test_lenet_saving_mac_only_by_hand():
    """Bytes free: the saving is the FC MACs' CPU energy less IMAC's, over all MACs."""
    h = ie.headline()
    r = h["sensitivity"]["lenet_mac_only"]
    window = 3 * 2e-9
    synapses = 401 * 120 + 121 * 84 + 85 * 10
    amps = 13 * 120 + 4 * 84 + 3 * 10              # ceil(401/32), ceil(121/32), ceil(85/32)
    e_imac = (synapses * G_SYN * window + amps * P_AMP * window
              + (120 + 84 + 10) * P_NEURON * window
              + 401 * 4 * 64 * 1e-15 * 4.0           # 401 rows x 4 vertical partitions
              + 10 * 256 * 10e-15)
    e_cpu = 416_520 * E_MAC
    want = (58_920 * E_MAC - e_imac) / e_cpu
    assert r["energy_saving"] == pytest.approx(want, rel=1e-9)
    # never more than the FC layers' share of the MACs
    assert r["energy_saving"] < 58_920 / 416_520
    # latency: CPU-only all MACs; CPU-IMAC the conv MACs + 60 bytes + 3 x 2 ns + 8 ns sampling
    assert r["cpu_only"]["latency_s"] == pytest.approx(416_520 / 32e9, rel=REL)
    assert r["cpu_imac"]["latency_s"] == pytest.approx(
        357_600 / 32e9 + 60 / 64e9 + 6e-9 + 8e-9, rel=REL)


def test_headline_consistent_with_per_layer_sums():
    h = ie.headline()
    for key in ("lenet", "vgg"):
        r = h[key]
        e_cpu = sum(x["energy_j"] for x in r["cpu_only"]["per_layer"])
        e_split = sum(x["energy_j"] for x in r["cpu_imac"]["per_layer"])
        assert r["energy_saving"] == pytest.approx(1 - e_split / e_cpu, rel=REL)
        assert 0 < r["energy_saving"] < r["fc_energy_share_cpu_only"]
    # LeNet's weights (61,728 B) fit the 1 MB cache, VGG's conv weights (14.7 MB) do not
    assert h["lenet"]["cpu_only"]["weights_in_cache"] is True
    assert h["vgg"]["cpu_imac"]["conv_weights_in_cache"] is False
    assert h["seed_saving_pct"] == {"lenet": 6.5, "vgg": 10.0}
    assert set(h["sources"]) >= {"cpu.e_mult8_j", "cpu.e_instr_j", "imac.p_amp_w"}
    json.dumps(h)                                       # serialisable as it is


def test_cli(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "e.json"
    r = subprocess.run([sys.executable, "-m", "sim.imac_energy", "--json", str(out)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "seed 003: 6.5 %" in r.stdout and "seed 003: 10 %" in r.stdout
    assert json.loads(out.read_text())["lenet"]["macs"] == 416_520
    r = subprocess.run([sys.executable, "-m", "sim.imac_energy", "--json", str(tmp_path)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert r.stderr.startswith("error: --json") and "is a directory" in r.stderr


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
