"""Analytical energy and latency of CPU-IMAC against CPU-only inference (seed 003):
``python -m sim.imac_energy [--json out.json]`` (``make imac-energy``).

Seed 003 runs a CNN's convolutions on a mobile CPU and its fully-connected (FC) layers on the
IMAC analog co-processor, and evaluates the split with architecture-level analytical models
(abstract: 6.5 % energy saving for LeNet on MNIST, 10 % for VGG on CIFAR-10). The seed's text
(an abstract) states none of its model's constants, so every constant below carries its own
source: literature by author / title / year, golden's circuit (``golden.imac.CIRCUIT``),
or ASSUMPTION with the reason.

Per layer
---------
CPU (:class:`CpuParams`), for a layer of ``M`` multiply-accumulates (MACs) moving ``B`` bytes:

* energy ``M * e_mac + B_sram * e_byte_sram + B_dram * e_byte_dram``;
* time ``max(M * t_mac, B_sram * t_byte_sram + B_dram * t_byte_dram)`` (roofline: compute and
  memory overlap; Williams, Waterman, Patterson, "Roofline: an insightful visual performance
  model for multicore architectures", CACM 2009).
* Bytes moved: the layer's int8 weights, its int8 inputs and its int8 outputs, each once per
  image. Activations stay in the cache (SRAM). The weights are read from the cache if ALL the
  weights the CPU holds (CPU-only: the whole network; CPU-IMAC: the conv layers) fit in
  ``cache_bytes``, else from DRAM (ASSUMPTION: a streaming inference that keeps nothing else in
  the cache, LRU over a network larger than the cache misses on every weight).
* Pooling, batch norm, ReLU and requantization are not counted (fewer than one op per output
  element, against 25 .. 4,608 MACs per output element here).

IMAC (:class:`ImacParams`, the circuit of ``golden.imac``), per FC layer of ``n_in`` inputs
(+ 1 bias row) and ``n_out`` neurons on ``hpar x vpar`` crossbars of 32 x 32
(``golden.imac.partitions``' arithmetic):

* crossbar: ``sum over synapses of v**2 * (g_pos + g_neg) * t_on``, the conductances from
  ``golden.imac.draw_conductances`` (5 kOhm / 15 kOhm: 266.7 uS per synapse, either sign),
  ``v`` the full supply on every row (an upper bound: hidden rows carry the neuron outputs,
  0 .. 1 V), the lines held at virtual ground by the amplifiers;
* ``t_on`` = the inference window = ``layers * sampling_ns`` (ASSUMPTION: every crossbar is
  biased for the whole window, and the chained layers settle one sampling time of 2 ns
  (IMAC-Sim) after the other; the co-processor's latency is that window);
* differential amplifiers: ``hpar * n_out`` (one per column per horizontal partition), each
  ``p_amp_w`` for ``t_on``;
* neurons: ``n_out``, each ``p_neuron_w`` for ``t_on``;
* input drivers: the first layer's rows (inputs and the bias row), each driving its row in the
  ``vpar`` crossbars: ``(2 v)**2 * c_cell * 2 * xbar_cols * vpar`` per row (a full -v to +v
  swing, ``2 * xbar_cols`` devices per row of a crossbar); hidden rows are driven by the
  neurons (their power above);
* output sampling: ``n_out`` 8-bit conversions of the last layer, ``2**8 * fom_adc_j`` each;
* interface: the packed input signs (1 bit each) in, the 8-bit output levels out, at the CPU's
  SRAM byte energy and time.

Programming the synapses is a one-time cost (non-volatile SOT-MRAM) and not charged per image.

The headline is ``saving = 1 - E(CPU-IMAC) / E(CPU-only)``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from golden import imac

__all__ = ["CpuParams", "ImacParams", "Layer", "PARAMS_SOURCES", "lenet_layers",
           "vgg_layers", "VGG16_CFG", "VGG_FC", "cpu_layer", "imac_layer", "evaluate",
           "headline", "summary_text", "main"]

_HOROWITZ = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
             "ISSCC 2014, 45 nm, 0.9 V")


@dataclass(frozen=True)
class CpuParams:
    """The mobile CPU's energy and time per MAC and per byte moved (sources in
    ``PARAMS_SOURCES``)."""

    e_mult8_j: float = 0.2e-12
    e_add32_j: float = 0.1e-12
    e_instr_j: float = 70e-12
    simd_lanes: int = 16
    clock_hz: float = 2.0e9
    e_byte_sram_j: float = 100e-12 / 8
    e_byte_dram_j: float = (1.3e-9 + 2.6e-9) / 2 / 8
    t_byte_sram_s: float = 1 / 64e9
    t_byte_dram_s: float = 1 / 12.8e9
    cache_bytes: int = 1 << 20

    @property
    def e_mac_j(self) -> float:
        """Datapath of one int8 MAC (8-bit multiply, 32-bit accumulate) plus the instruction
        overhead shared by the SIMD lanes."""
        return self.e_mult8_j + self.e_add32_j + self.e_instr_j / self.simd_lanes

    @property
    def t_mac_s(self) -> float:
        return 1.0 / (self.clock_hz * self.simd_lanes)


@dataclass(frozen=True)
class ImacParams:
    """The IMAC periphery's powers and the timing (sources in ``PARAMS_SOURCES``); the
    crossbar itself is ``golden.imac.CIRCUIT``."""

    sampling_ns: float = 2.0
    p_amp_w: float = 100e-6
    neuron_r_in_ohm: float = 8.49e3
    neuron_r_f_ohm: float = 25.46e3
    c_cell_f: float = 1e-15
    fom_adc_j: float = 10e-15
    adc_bits: int = 8
    t_adc_s: float = 8e-9
    circuit: imac.ImacCircuit = field(default=imac.CIRCUIT)

    @property
    def p_neuron_w(self) -> float:
        """The neuron subcircuit's resistive pair across the full swing ``2 v_supply``."""
        v = 2 * self.circuit.v_supply
        return v * v / (self.neuron_r_in_ohm + self.neuron_r_f_ohm)


#: Where every constant comes from.
PARAMS_SOURCES = {
    "cpu.e_mult8_j": f"{_HOROWITZ}: 8-bit integer multiply 0.2 pJ",
    "cpu.e_add32_j": f"{_HOROWITZ}: 32-bit integer add 0.1 pJ (the accumulate)",
    "cpu.e_instr_j": f"{_HOROWITZ}: about 70 pJ per instruction of a simple core (fetch, "
                     "decode, register file, control), the add itself 0.1 pJ",
    "cpu.simd_lanes": "ASSUMPTION: a 128-bit SIMD dot-product instruction (Armv8.2-A SDOT) "
                      "does 16 int8 MACs, sharing one instruction's overhead",
    "cpu.clock_hz": "ASSUMPTION: a 2 GHz mobile core issuing one SIMD MAC instruction per "
                    "cycle",
    "cpu.e_byte_sram_j": f"{_HOROWITZ}: 100 pJ per 64-bit read of a 1 MB SRAM (the cache)",
    "cpu.e_byte_dram_j": f"{_HOROWITZ}: DRAM 1.3-2.6 nJ per 64-bit access; ASSUMPTION the "
                         "midpoint",
    "cpu.t_byte_sram_s": "ASSUMPTION: 32 bytes per cycle from the cache at 2 GHz (64 GB/s)",
    "cpu.t_byte_dram_s": "ASSUMPTION: one LPDDR4-3200 x32 channel, 12.8 GB/s (JEDEC JESD209-4)",
    "cpu.cache_bytes": "ASSUMPTION: 1 MB, the SRAM size of Horowitz's figure (mobile L2 "
                       "caches are 0.5-2 MB)",
    "imac.circuit": "golden.imac.CIRCUIT: IMAC-Sim (the seed authors' circuit simulator) 5 / "
                    "15 kOhm devices, +-1 V, 32 x 32 crossbars",
    "imac.sampling_ns": "IMAC-Sim: 2 ns sampling time (golden.imac's settling time)",
    "imac.p_amp_w": "ASSUMPTION: 0.1 mW quiescent power of a GHz-bandwidth op-amp at 1 V; "
                    "the seed and IMAC-Sim (which simulates a SPICE op-amp) state none",
    "imac.neuron": "derived from IMAC-Sim's neuron subcircuit, its 8.49 kOhm input and "
                   "25.46 kOhm feedback resistors across the full 2 V swing (ASSUMPTION: "
                   "the inverter's own quiescent current and the MTJ divider are not counted)",
    "imac.c_cell_f": "ASSUMPTION: 1 fF of wire and junction capacitance per device on a row",
    "imac.fom_adc_j": "ASSUMPTION within B. Murmann, 'ADC Performance Survey 1997-2024' "
                      "(Walden figure of merit of SAR ADCs: a few to tens of fJ per step)",
    "imac.t_adc_s": "ASSUMPTION: an 8-bit SAR conversion, 8 cycles at 1 GHz, all outputs in "
                    "parallel",
    "imac.window": "ASSUMPTION: all crossbars biased for the whole window of layers x 2 ns",
}


@dataclass(frozen=True)
class Layer:
    """One compute layer: MACs and int8 bytes per image; ``n_in``/``n_out`` for FC layers."""

    name: str
    kind: str          #: "conv" or "fc"
    macs: int
    weight_bytes: int
    in_bytes: int
    out_bytes: int
    n_in: int = 0
    n_out: int = 0


def lenet_layers(net) -> list:
    """The layers of a :class:`golden.imac_net.ImacNet` (its conv shapes and FC shapes)."""
    from golden.imac_net import KERNEL, POOL
    c, h, w = net.input_shape
    w0, w1 = net.arrays["conv0.weight"], net.arrays["conv1.weight"]
    o0, o1 = w0.shape[0], w1.shape[0]
    k2 = KERNEL * KERNEL
    h1, w1_ = h // POOL - KERNEL + 1, w // POOL - KERNEL + 1
    layers = [
        Layer("conv0", "conv", o0 * h * w * c * k2, w0.size, c * h * w, o0 * h * w),
        Layer("conv1", "conv", o1 * h1 * w1_ * o0 * k2, w1.size,
              o0 * (h // POOL) * (w // POOL), o1 * h1 * w1_),
    ]
    for i, (n_in, n_out) in enumerate(net.fc_shapes):
        layers.append(Layer(f"fc{i}", "fc", n_in * n_out, (n_in + 1) * n_out, n_in, n_out,
                            n_in, n_out))
    return layers


#: VGG-16's convolutions for CIFAR-10 (3x3, padding 1; "M" a 2x2 max pool): 32x32 in, 512 out.
VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512,
             512, "M")
#: Its classifier (ASSUMPTION: S. Zagoruyko, '92.45% on CIFAR-10 in Torch', 2015, the
#: vgg_bn_drop model: 512-512-10).
VGG_FC = (512, 512, 10)


def vgg_layers(cfg=VGG16_CFG, fc=VGG_FC, *, input_shape=(3, 32, 32)) -> list:
    """Layers of a VGG-shaped network: 3x3 convolutions (padding 1) and pools, then FC."""
    c, h, w = input_shape
    layers, k = [], 0
    for v in cfg:
        if v == "M":
            h, w = h // 2, w // 2
            continue
        layers.append(Layer(f"conv{k}", "conv", v * h * w * c * 9, v * c * 9, c * h * w,
                            v * h * w))
        c, k = v, k + 1
    if c * h * w != fc[0]:
        raise ValueError(f"fc[0] must be the {c * h * w} features of the conv part, not "
                         f"{fc[0]}")
    for i, (n_in, n_out) in enumerate(zip(fc[:-1], fc[1:], strict=True)):
        layers.append(Layer(f"fc{i}", "fc", n_in * n_out, (n_in + 1) * n_out, n_in, n_out,
                            n_in, n_out))
    return layers


def cpu_layer(layer: Layer, cpu: CpuParams, *, weights_in_cache: bool) -> dict:
    """Energy and time of ``layer`` on the CPU."""
    act = layer.in_bytes + layer.out_bytes
    sram = act + (layer.weight_bytes if weights_in_cache else 0)
    dram = 0 if weights_in_cache else layer.weight_bytes
    e_mac = layer.macs * cpu.e_mac_j
    e_mem = sram * cpu.e_byte_sram_j + dram * cpu.e_byte_dram_j
    t_mac = layer.macs * cpu.t_mac_s
    t_mem = sram * cpu.t_byte_sram_s + dram * cpu.t_byte_dram_s
    return {"layer": layer.name, "kind": layer.kind, "on": "cpu", "macs": layer.macs,
            "sram_bytes": sram, "dram_bytes": dram, "energy_mac_j": e_mac,
            "energy_memory_j": e_mem, "energy_j": e_mac + e_mem,
            "latency_s": max(t_mac, t_mem),
            "bound": "compute" if t_mac >= t_mem else "memory"}


def _partitions(layer: Layer, circuit: imac.ImacCircuit) -> tuple:
    # golden.imac.partitions' arithmetic without its MAX_PARTITIONS limit: the limit is the
    # fixed-point model's (a neuron combines at most 16), not the circuit's energy.
    rows = layer.n_in + 1
    return -(-rows // circuit.xbar_rows), -(-layer.n_out // circuit.xbar_cols)


def imac_layer(layer: Layer, p: ImacParams, *, window_s: float, first: bool, last: bool,
               weights=None) -> dict:
    """Energy of one FC layer on IMAC over an inference window of ``window_s``.

    ``weights`` ``[n_in + 1, n_out]`` of +-1 (bias row last); None: any signs (without
    variation a synapse's ``g_pos + g_neg`` does not depend on its sign).
    """
    c = p.circuit
    if weights is None:
        # Without variation a synapse's g_pos + g_neg is the same for either sign.
        g_pos, g_neg = imac.draw_conductances(np.array([1]), circuit=c)
        n_syn = (layer.n_in + 1) * layer.n_out
        g_sum = float(g_pos[0] + g_neg[0]) * n_syn
    else:
        g_pos, g_neg = imac.draw_conductances(weights, circuit=c)
        g_sum = float(g_pos.sum() + g_neg.sum())
        n_syn = int(weights.size)
    hpar, vpar = _partitions(layer, c)
    amps = hpar * layer.n_out
    e = {
        "crossbar": c.v_supply ** 2 * g_sum * window_s,
        "amplifiers": amps * p.p_amp_w * window_s,
        "neurons": layer.n_out * p.p_neuron_w * window_s,
        "drivers": ((layer.n_in + 1) * vpar * 2 * c.xbar_cols * p.c_cell_f
                    * (2 * c.v_supply) ** 2) if first else 0.0,
        "output_sampling": layer.n_out * 2 ** p.adc_bits * p.fom_adc_j if last else 0.0,
    }
    return {"layer": layer.name, "kind": "fc", "on": "imac", "macs": layer.macs,
            "synapses": n_syn, "conductance_sum_s": g_sum,
            "partitions": [hpar, vpar], "amplifiers": amps, "neurons": layer.n_out,
            "energy_by_component_j": e, "energy_j": sum(e.values())}


def evaluate(layers: list, *, cpu: CpuParams = CpuParams(), imac_p: ImacParams = ImacParams(),
             fc_weights=None, name: str = "") -> dict:
    """CPU-only and CPU-IMAC energy and latency of ``layers`` per image.

    ``fc_weights``: per FC layer ``[n_in + 1, n_out]`` +-1 (the trained network's); random
    signs otherwise.
    """
    conv = [ly for ly in layers if ly.kind == "conv"]
    fc = [ly for ly in layers if ly.kind == "fc"]
    if not fc:
        raise ValueError(f"network {name!r} has no FC layer to run on IMAC")
    all_fit = sum(ly.weight_bytes for ly in layers) <= cpu.cache_bytes
    conv_fit = sum(ly.weight_bytes for ly in conv) <= cpu.cache_bytes
    cpu_only = [cpu_layer(ly, cpu, weights_in_cache=all_fit) for ly in layers]
    split = [cpu_layer(ly, cpu, weights_in_cache=conv_fit) for ly in conv]
    t_sample = imac.check_sampling(imac_p.sampling_ns, imac_p.circuit) * 1e-9
    window = len(fc) * t_sample
    for i, ly in enumerate(fc):
        w = None if fc_weights is None else fc_weights[i]
        split.append(imac_layer(ly, imac_p, window_s=window, first=i == 0,
                                last=i == len(fc) - 1, weights=w))
    in_bytes = math.ceil(fc[0].n_in / 8)
    out_bytes = fc[-1].n_out
    xfer = {"layer": "cpu<->imac", "kind": "transfer", "on": "cpu",
            "bytes": in_bytes + out_bytes,
            "energy_j": (in_bytes + out_bytes) * cpu.e_byte_sram_j,
            "latency_s": (in_bytes + out_bytes) * cpu.t_byte_sram_s}
    split.append(xfer)
    imac_latency = window + imac_p.t_adc_s
    e_cpu = sum(r["energy_j"] for r in cpu_only)
    e_split = sum(r["energy_j"] for r in split)
    t_cpu = sum(r["latency_s"] for r in cpu_only)
    t_split = (sum(r["latency_s"] for r in split if r["on"] == "cpu") + imac_latency)
    fc_cpu = [r for r in cpu_only if r["kind"] == "fc"]
    macs = sum(ly.macs for ly in layers)
    return {
        "network": name, "layers": [asdict(ly) for ly in layers],
        "cpu_only": {"per_layer": cpu_only, "energy_j": e_cpu, "latency_s": t_cpu,
                     "weights_in_cache": all_fit},
        "cpu_imac": {"per_layer": split, "energy_j": e_split, "latency_s": t_split,
                     "imac_latency_s": imac_latency, "imac_window_s": window,
                     "conv_weights_in_cache": conv_fit},
        "energy_saving": 1.0 - e_split / e_cpu,
        "latency_saving": 1.0 - t_split / t_cpu,
        "fc_mac_share": sum(ly.macs for ly in fc) / macs,
        "fc_energy_share_cpu_only": sum(r["energy_j"] for r in fc_cpu) / e_cpu,
        "macs": macs,
    }


def headline(net=None, *, cpu: CpuParams = CpuParams(),
             imac_p: ImacParams = ImacParams()) -> dict:
    """The seed's two comparisons on our networks: the bundled CPU-IMAC LeNet (its trained
    binarized weights) and a VGG-16-shaped CIFAR-10 network (random signs)."""
    from golden import imac_net
    if net is None:
        net = imac_net.load_net(imac_net.bundled_net_path("fashion_lenet_imac"))
    w = [np.vstack([wi, bi[None, :]]) for wi, bi in zip(net.fc_weights, net.fc_biases,
                                                        strict=True)]
    lenet = evaluate(lenet_layers(net), cpu=cpu, imac_p=imac_p, fc_weights=w, name=net.name)
    vgg = evaluate(vgg_layers(), cpu=cpu, imac_p=imac_p, name="vgg16_cifar10_shape")
    params = {f"cpu.{k}": v for k, v in asdict(cpu).items()}
    params.update({f"imac.{k}": v for k, v in asdict(imac_p).items() if k != "circuit"})
    params.update({"cpu.e_mac_j": cpu.e_mac_j, "cpu.t_mac_s": cpu.t_mac_s,
                   "imac.p_neuron_w": imac_p.p_neuron_w})
    mac_only = dataclasses.replace(cpu, e_byte_sram_j=0.0, e_byte_dram_j=0.0)
    sens = {
        "lenet_mac_only": evaluate(lenet_layers(net), cpu=mac_only, imac_p=imac_p,
                                   fc_weights=w, name=net.name + " (CPU energy per MAC only)"),
        "vgg_fc4096": evaluate(vgg_layers(fc=(512, 4096, 4096, 10)), cpu=cpu, imac_p=imac_p,
                               name="vgg16_cifar10_shape, classifier 512-4096-4096-10"),
    }
    return {"lenet": lenet, "vgg": vgg, "sensitivity": sens,
            "seed_saving_pct": {"lenet": 6.5, "vgg": 10.0},
            "seed_source": "seed 003 abstract (LeNet on MNIST, VGG on CIFAR-10)",
            "params": params, "sources": PARAMS_SOURCES}


def _si(v: float, unit: str) -> str:
    for prefix, f in (("", 1.0), ("m", 1e-3), ("u", 1e-6), ("n", 1e-9), ("p", 1e-12)):
        if abs(v) >= f:
            return f"{v / f:.3g} {prefix}{unit}"
    return f"{v / 1e-15:.3g} f{unit}"


def summary_text(h: dict) -> str:
    """The per-layer tables and the headline as text."""
    lines = []
    for key, label in (("lenet", "LeNet"), ("vgg", "VGG")):
        r = h[key]
        lines.append(f"{label} ({r['network']}): {r['macs']:,} MACs, FC "
                     f"{100 * r['fc_mac_share']:.1f} % of them")
        lines.append(f"  {'layer':<11} {'on':<5} {'MACs':>12} {'CPU-only E':>11} "
                     f"{'CPU-only t':>11} {'CPU-IMAC E':>11} {'CPU-IMAC t':>11}")
        split = {s["layer"]: s for s in r["cpu_imac"]["per_layer"]}
        for c in r["cpu_only"]["per_layer"]:
            s = split[c["layer"]]
            t = _si(s["latency_s"], "s") if "latency_s" in s else "(window)"
            lines.append(f"  {c['layer']:<11} {s['on']:<5} {c['macs']:>12,} "
                         f"{_si(c['energy_j'], 'J'):>11} {_si(c['latency_s'], 's'):>11} "
                         f"{_si(s['energy_j'], 'J'):>11} {t:>11}")
        x = split["cpu<->imac"]
        lines.append(f"  {'cpu<->imac':<11} {'cpu':<5} {'':>12} {'':>11} {'':>11} "
                     f"{_si(x['energy_j'], 'J'):>11} {_si(x['latency_s'], 's'):>11}")
        ci = r["cpu_imac"]
        lines.append(f"  IMAC window {_si(ci['imac_window_s'], 's')} + output sampling = "
                     f"{_si(ci['imac_latency_s'], 's')}")
        lines.append(f"  total: CPU-only {_si(r['cpu_only']['energy_j'], 'J')} "
                     f"{_si(r['cpu_only']['latency_s'], 's')}; CPU-IMAC "
                     f"{_si(ci['energy_j'], 'J')} {_si(ci['latency_s'], 's')}")
        lines.append(f"  energy saving {100 * r['energy_saving']:.1f} % (seed 003: "
                     f"{h['seed_saving_pct'][key]:g} %), latency saving "
                     f"{100 * r['latency_saving']:.1f} %; FC share of the CPU-only energy "
                     f"{100 * r['fc_energy_share_cpu_only']:.1f} % (the most any offload "
                     f"saves)")
    lines.append("Sensitivity:")
    for key, what in (("lenet_mac_only", "LeNet, CPU energy per MAC only (bytes free)"),
                      ("vgg_fc4096", "VGG-16 with VGG's original 4096-4096 classifier")):
        r = h["sensitivity"][key]
        lines.append(f"  {what}: energy saving {100 * r['energy_saving']:.1f} %, latency "
                     f"saving {100 * r['latency_saving']:.1f} %, FC {100 * r['fc_mac_share']:.2f}"
                     f" % of the MACs, {100 * r['fc_energy_share_cpu_only']:.1f} % of the "
                     "CPU-only energy")
    return "\n".join(lines)


def main(argv=None) -> int:
    from rtl.outputs import UserError, check_file, write_json
    p = argparse.ArgumentParser(prog="python -m sim.imac_energy",
                                description="Analytical CPU-IMAC vs CPU-only energy and latency "
                                            "(seed 003) for the bundled LeNet and a VGG shape.")
    p.add_argument("--json", default=None, help="also write the full result as JSON here")
    args = p.parse_args(argv)
    try:
        out = check_file("--json", args.json) if args.json else None
        h = headline()
        print(summary_text(h), flush=True)
        if out is not None:
            write_json(out, h, option="--json")
            print(f"wrote {out}")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
