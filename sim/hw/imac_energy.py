"""Analytical energy and latency of CPU-IMAC against CPU-only inference (seed 003):
``python -m sim.hw.imac_energy [--json out.json]`` (``make imac-energy``).

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

* crossbar: ``sum over rows r of mean(v_r**2) * sum over the row's synapses of (g_pos +
  g_neg) * t_on``, the conductances from ``golden.imac.draw_conductances`` (5 kOhm / 15 kOhm:
  266.7 uS per synapse, either sign), the lines held at virtual ground by the amplifiers.
  ``v_r`` is the row's actual drive: ``+-v_supply`` on the first layer's rows and on every bias
  row, the previous layer's neuron output on a hidden layer's rows, its square averaged over
  the images (:func:`lenet_row_v2`: golden's fixed-point levels of the bundled LeNet over
  Fashion-MNIST test images; :func:`random_row_v2`: golden's float64 circuit on random inputs
  and weights for a network without data). ``row_v2=None`` charges the full supply on every
  row, the upper bound the model used before;
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
* output sampling: ``n_out`` 8-bit conversions of the last layer, ``2**8 * fom_adc_j`` each
  (Walden figure of merit);
* interface: the packed input signs (1 bit each) in, the 8-bit output levels out, at the CPU's
  SRAM byte energy and time.

Programming the synapses (:func:`programming`) is a cost per network load (SOT-MRAM is
non-volatile), reported separately: both devices of every synapse written once
(``e_write_device_j`` each; the host port takes one synapse per operation, both devices at once,
``t_write_device_s``) and the binarized weights read once from DRAM (one bit each, the CPU's
DRAM byte energy). Per image it is that energy over ``images_per_load`` images; the number of
images after which one load has paid for itself is the break-even.

The headline is ``saving = 1 - E(CPU-IMAC) / E(CPU-only)`` per image, the programming not
included; ``saving_with_programming`` adds the per-image share of one load.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

from golden import imac
from rtl.outputs import interruptible

from sim.hw import energy

__all__ = ["CpuParams", "ImacParams", "Layer", "PARAMS_SOURCES", "lenet_layers",
           "vgg_layers", "VGG16_CFG", "VGG_FC", "cpu_layer", "imac_layer", "evaluate",
           "lenet_levels", "random_levels", "lenet_row_v2", "random_row_v2", "programming",
           "headline", "summary_text", "main",
           "LEVEL_IMAGES", "RANDOM_VECTORS"]

#: Test images whose neuron levels set the LeNet's hidden-row voltages (``--images``).
LEVEL_IMAGES = 1000
#: Random input vectors through a network without data (VGG). A hidden layer's mean squared
#: level is averaged over ``RANDOM_VECTORS * n_out`` samples (8,192 for VGG's 512 neurons):
#: seeds 0-2 at 16 vectors and at 200 agree within 2 %.
RANDOM_VECTORS = 16

_HOROWITZ = ("M. Horowitz, 'Computing's energy problem (and what we can do about it)', "
             "ISSCC 2014, 45 nm, 0.9 V")
_RAMKAJ = ("A. T. Ramkaj, M. Strackx, M. S. J. Steyaert, F. Tavernier, 'A 1.25-GS/s 7-b SAR "
           "ADC with 36.4-dB SNDR at 5 GHz using switch-bootstrapping, USPC DAC and "
           "triple-tail comparator in 28-nm CMOS', IEEE JSSC 53(7), 2018")
#: The SOT-MRAM device write of the imac technology (sim.hw.energy's table and its source).
_SOT_WRITE = energy.ARRAY["imac"]["write_bit_fj"]
_SOT_WRITE_NS = energy.ARRAY["imac"]["write_ns"]


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
    amp_settle_bits: int = 8
    amp_load_f: float = 10e-15
    amp_gm_over_id: float = 10.0
    amp_current_factor: float = 4.0
    neuron_r_in_ohm: float = 8.49e3
    neuron_r_f_ohm: float = 25.46e3
    c_cell_f: float = 1e-15
    fom_adc_j: float = 34.4e-15
    adc_bits: int = 8
    t_adc_s: float = 1 / 1.25e9
    e_write_device_j: float = _SOT_WRITE.value * 1e-15
    t_write_device_s: float = _SOT_WRITE_NS.value * 1e-9
    images_per_load: int = 10_000
    circuit: imac.ImacCircuit = field(default=imac.CIRCUIT)

    @property
    def p_neuron_w(self) -> float:
        """The neuron subcircuit's resistive pair across the full swing ``2 v_supply`` (the
        upper bound; :func:`imac_layer` charges the actual levels when it has them)."""
        v = 2 * self.circuit.v_supply
        return v * v / (self.neuron_r_in_ohm + self.neuron_r_f_ohm)

    def amp_gm_s(self, gain: float) -> float:
        """Input-pair transconductance an amplifier of closed-loop ``gain`` needs to settle
        to half an LSB of ``amp_settle_bits`` within one sampling time into ``amp_load_f``:
        a one-pole loop settles as exp(-t / tau), tau = C_L (1 + gain) / g_m (noise gain
        1 + gain of the 1 kOhm / gain kOhm feedback), so g_m = (1 + gain) ln(2**(bits + 1))
        C_L / t_s."""
        if not gain > 0:
            raise ValueError(f"gain must be positive, not {gain!r}")
        return ((1 + gain) * math.log(2 ** (self.amp_settle_bits + 1)) * self.amp_load_f
                / (self.sampling_ns * 1e-9))

    def p_amp_w(self, gain: float) -> float:
        """Quiescent power of one differential amplifier of ``gain``: its supply current
        ``amp_current_factor`` x the input device's I_D = g_m / (g_m / I_D), across the
        rails (2 v_supply)."""
        i_d = self.amp_gm_s(gain) / self.amp_gm_over_id
        return 2 * self.circuit.v_supply * self.amp_current_factor * i_d


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
    "imac.p_amp_w": "derived (ImacParams.p_amp_w): the quiescent power an amplifier needs to "
                    "settle in one 2 ns sampling time (IMAC-Sim) to half an LSB of 8 bits "
                    "(amp_settle_bits, ASSUMPTION: the neuron levels' 8-bit codes) at its "
                    "noise gain 1 + gain (gains 30 / 30 / 10, IMAC-Sim) into amp_load_f: "
                    "g_m = (1 + gain) ln(2**9) C_L / t_s, I_D = g_m / (g_m/I_D), supply current "
                    "amp_current_factor x I_D across the +-1 V rails: 0.77 mW at gain 30, 0.27 "
                    "mW at gain 10. The seed and IMAC-Sim (a SPICE op-amp) state no "
                    "per-amplifier power, and none was found in the literature searched (the "
                    "neuron paper, Amin et al., 'MRAM-based analog sigmoid function for "
                    "in-memory computing', arXiv:2204.09918, gives power ratios in its "
                    "abstract); was 0.1 mW, an ASSUMPTION",
    "imac.amp_settle_bits": "ASSUMPTION: the amplifier settles to half an LSB of the 8-bit "
                            "neuron levels (golden.imac.FIXED.out_bits)",
    "imac.amp_load_f": "ASSUMPTION: 10 fF at each amplifier output (the combining resistor to "
                       "the neuron input, the neuron's inverter gate and the wire)",
    "imac.amp_gm_over_id": "ASSUMPTION: g_m / I_D = 10 V^-1, a 45 nm input pair in moderate "
                           "inversion (weak inversion reaches about 25, strong about 5)",
    "imac.amp_current_factor": "ASSUMPTION: a two-stage op-amp draws 4 I_D (the input pair's "
                               "tail 2 I_D and an output stage of the same current)",
    "imac.amp_output": "derived: each amplifier's output stage sources the feedback current "
                       "|a| / (gain x 1 kOhm) (golden.imac: input 1 kOhm, feedback gain kOhm) "
                       "from the v_supply rail, |a| its output level averaged over the images "
                       "(golden's fixed point for LeNet, float64 on random inputs for VGG); "
                       "the full rail without levels",
    "imac.neuron": "derived from IMAC-Sim's neuron subcircuit, an inverter between an 8.49 "
                   "kOhm input and a 25.46 kOhm feedback resistor: the pair carries (v_in - "
                   "v_out) / (R_in + R_f), v_in the inverting circuit's input (minus golden's "
                   "non-inverting neuron input, golden.imac) and v_out the neuron level, "
                   "(v_in + v_out)**2 averaged over the neurons and images (golden's fixed "
                   "point for LeNet, its float64 circuit on random inputs for VGG); the full 2 "
                   "V swing without levels, the upper bound the model charged before "
                   "(ASSUMPTION: the inverter's own quiescent current and the MTJ divider are "
                   "not counted)",
    "imac.c_cell_f": "ASSUMPTION: 1 fF of wire and junction capacitance per device on a row",
    "imac.fom_adc_j": f"{_RAMKAJ}: Walden figure of merit 34.4 fJ per conversion step at "
                      "Nyquist (3.56 mW at 1.25 GS/s, 1 V), a GHz single-channel SAR; "
                      "ASSUMPTION: the same figure at 8 bits (2**8 steps per conversion)",
    "imac.t_adc_s": f"{_RAMKAJ}: 1.25 GS/s, one conversion per 0.8 ns; ASSUMPTION: one such "
                    "converter per output, all in parallel, 8 bits at the same rate",
    "imac.e_write_device_j": f"sim.hw.energy, technology imac: {_SOT_WRITE.source}",
    "imac.t_write_device_s": f"sim.hw.energy, technology imac: {_SOT_WRITE_NS.source}",
    "imac.images_per_load": "ASSUMPTION: the weights are programmed once per 10,000 images "
                            "(a pass over the Fashion-MNIST test split); the break-even count "
                            "in the report does not depend on it",
    "imac.row_levels": "lenet: golden's fixed-point neuron levels of the bundled network "
                       "(golden.imac_net.infer, ideal devices) over the first --images "
                       "Fashion-MNIST test images; vgg: golden.imac.layer_float over random "
                       "+-1 inputs and weights (ASSUMPTION: no trained VGG here; gains 30 per "
                       "hidden layer and 10 for the last, IMAC-Sim's pattern)",
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
               gain: float, weights=None, row_v2=None, neuron_v2=None,
               amp_abs_v=None) -> dict:
    """Energy of one FC layer on IMAC over an inference window of ``window_s``.

    ``gain``: the layer's amplifier gain. ``weights`` ``[n_in + 1, n_out]`` of +-1 (bias row
    last); None: any signs (without variation a synapse's ``g_pos + g_neg`` does not depend
    on its sign). ``row_v2`` ``[n_in + 1]``: each row's mean squared drive in V**2 (bias row
    last); None: the full supply on every row (an upper bound for a hidden layer).
    ``neuron_v2``: the mean over neurons and images of ``(v_in + v_out)**2``, the square of
    the voltage across the neuron's resistive pair (:func:`lenet_levels`); None: the full
    swing ``(2 v_supply)**2``. ``amp_abs_v``: the mean ``|a|`` of the amplifier outputs;
    None: ``v_supply``.
    """
    c = p.circuit
    full_v2 = (2 * c.v_supply) ** 2
    neuron_v2 = full_v2 if neuron_v2 is None else float(neuron_v2)
    amp_abs_v = c.v_supply if amp_abs_v is None else float(amp_abs_v)
    if not 0 <= neuron_v2 <= full_v2:
        raise ValueError(f"neuron_v2 of {layer.name} must be in [0, {full_v2:g}] V^2, not "
                         f"{neuron_v2!r}")
    if not 0 <= amp_abs_v <= c.v_supply:
        raise ValueError(f"amp_abs_v of {layer.name} must be in [0, {c.v_supply:g}] V, not "
                         f"{amp_abs_v!r}")
    rows = layer.n_in + 1
    if weights is None:
        # Without variation a synapse's g_pos + g_neg is the same for either sign.
        g_pos, g_neg = imac.draw_conductances(np.array([1]), circuit=c)
        n_syn = rows * layer.n_out
        g_row = np.full(rows, float(g_pos[0] + g_neg[0]) * layer.n_out)
    else:
        if np.shape(weights) != (rows, layer.n_out):
            raise ValueError(f"weights of {layer.name} must have shape {(rows, layer.n_out)}, "
                             f"not {np.shape(weights)}")
        g_pos, g_neg = imac.draw_conductances(weights, circuit=c)
        g_row = (g_pos + g_neg).sum(axis=1)
        n_syn = int(np.size(weights))
    if row_v2 is None:
        row_v2 = np.full(rows, c.v_supply ** 2)
    row_v2 = np.asarray(row_v2, dtype=np.float64)
    if row_v2.shape != (rows,) or not (0 <= row_v2).all() or (row_v2 > c.v_supply ** 2).any():
        raise ValueError(f"row_v2 of {layer.name} must be {rows} values in [0, "
                         f"{c.v_supply ** 2:g}] V^2")
    g_sum = float(g_row.sum())
    hpar, vpar = _partitions(layer, c)
    amps = hpar * layer.n_out
    p_amp = p.p_amp_w(gain) + c.v_supply * amp_abs_v / (gain * c.amp_input_ohm)
    p_neuron = neuron_v2 / (p.neuron_r_in_ohm + p.neuron_r_f_ohm)
    e = {
        "crossbar": float(row_v2 @ g_row) * window_s,
        "amplifiers": amps * p_amp * window_s,
        "neurons": layer.n_out * p_neuron * window_s,
        "drivers": ((layer.n_in + 1) * vpar * 2 * c.xbar_cols * p.c_cell_f
                    * (2 * c.v_supply) ** 2) if first else 0.0,
        "output_sampling": layer.n_out * 2 ** p.adc_bits * p.fom_adc_j if last else 0.0,
    }
    return {"layer": layer.name, "kind": "fc", "on": "imac", "macs": layer.macs,
            "synapses": n_syn, "conductance_sum_s": g_sum,
            "crossbar_full_supply_j": c.v_supply ** 2 * g_sum * window_s,
            "row_v2_mean": float(row_v2.mean()), "gain": float(gain),
            "amp_quiescent_w": p.p_amp_w(gain), "amp_abs_v": amp_abs_v,
            "neuron_v2": neuron_v2, "neuron_w": p_neuron,
            "partitions": [hpar, vpar], "amplifiers": amps, "neurons": layer.n_out,
            "energy_by_component_j": e, "energy_j": sum(e.values())}


def programming(fc: list, imac_p: ImacParams, cpu: CpuParams) -> dict:
    """Energy and time of one network load: every synapse's two devices written, the
    binarized weights (one bit each, bias rows included) read from DRAM."""
    synapses = sum((ly.n_in + 1) * ly.n_out for ly in fc)
    weight_bytes = math.ceil(synapses / 8)
    e_dev = 2 * synapses * imac_p.e_write_device_j
    e_read = weight_bytes * cpu.e_byte_dram_j
    return {"synapses": synapses, "device_writes": 2 * synapses,
            "weight_bytes_from_dram": weight_bytes, "energy_devices_j": e_dev,
            "energy_weights_read_j": e_read, "energy_j": e_dev + e_read,
            "latency_s": synapses * imac_p.t_write_device_s + weight_bytes * cpu.t_byte_dram_s,
            "images_per_load": imac_p.images_per_load,
            "energy_per_image_j": (e_dev + e_read) / imac_p.images_per_load}


def evaluate(layers: list, *, cpu: CpuParams = CpuParams(), imac_p: ImacParams = ImacParams(),
             fc_weights=None, row_v2=None, neuron_v2=None, amp_abs_v=None, gains=None,
             name: str = "") -> dict:
    """CPU-only and CPU-IMAC energy and latency of ``layers`` per image, and the programming
    of the synapses per network load.

    ``fc_weights``: per FC layer ``[n_in + 1, n_out]`` +-1 (the trained network's); random
    signs otherwise. ``row_v2``, ``neuron_v2``, ``amp_abs_v``: per FC layer, the levels of
    :func:`lenet_levels` (:func:`lenet_levels`, :func:`random_levels`); None: the full supply
    on every row, the full swing on every neuron and amplifier. ``gains``: per FC layer
    (default IMAC-Sim's pattern, 30 per hidden layer and 10 for the last).
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
    gains = _gains(len(fc)) if gains is None else list(gains)
    for name_, per in (("fc_weights", fc_weights), ("row_v2", row_v2),
                       ("neuron_v2", neuron_v2), ("amp_abs_v", amp_abs_v), ("gains", gains)):
        if per is not None and len(per) != len(fc):
            raise ValueError(f"{name_} must have one entry per FC layer ({len(fc)}), not "
                             f"{len(per)}")
    for i, ly in enumerate(fc):
        def at(per, i=i):
            return None if per is None else per[i]
        split.append(imac_layer(ly, imac_p, window_s=window, first=i == 0,
                                last=i == len(fc) - 1, gain=gains[i], weights=at(fc_weights),
                                row_v2=at(row_v2), neuron_v2=at(neuron_v2),
                                amp_abs_v=at(amp_abs_v)))
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
    prog = programming(fc, imac_p, cpu)
    gain = e_cpu - e_split
    return {
        "network": name, "layers": [asdict(ly) for ly in layers],
        "cpu_only": {"per_layer": cpu_only, "energy_j": e_cpu, "latency_s": t_cpu,
                     "weights_in_cache": all_fit},
        "cpu_imac": {"per_layer": split, "energy_j": e_split, "latency_s": t_split,
                     "imac_latency_s": imac_latency, "imac_window_s": window,
                     "conv_weights_in_cache": conv_fit},
        "energy_saving": 1.0 - e_split / e_cpu,
        "programming": prog,
        "energy_saving_with_programming": 1.0 - (e_split + prog["energy_per_image_j"]) / e_cpu,
        "break_even_images": prog["energy_j"] / gain if gain > 0 else None,
        "crossbar_energy_j": sum(r["energy_by_component_j"]["crossbar"] for r in split
                                 if r["on"] == "imac"),
        "crossbar_full_supply_energy_j": sum(r["crossbar_full_supply_j"] for r in split
                                             if r["on"] == "imac"),
        "latency_saving": 1.0 - t_split / t_cpu,
        "fc_mac_share": sum(ly.macs for ly in fc) / macs,
        "fc_energy_share_cpu_only": sum(r["energy_j"] for r in fc_cpu) / e_cpu,
        "macs": macs,
    }


def _levels(v_rows, v_in, v_out, amp_v, circuit: imac.ImacCircuit) -> dict:
    """One layer's drive and levels in volts over a batch: each row's mean squared drive
    (``v_rows`` ``[N, rows]``, bias row included), the mean square of the voltage across the
    neuron's resistive pair (``v_in + v_out``: the inverting circuit's input is minus
    golden's neuron input, :data:`PARAMS_SOURCES` ``imac.neuron``) and the mean ``|a|`` of
    the amplifier outputs ``amp_v``."""
    return {"row_v2": np.mean(np.asarray(v_rows, dtype=np.float64) ** 2, axis=0),
            "neuron_v2": float(np.mean((np.asarray(v_in) + np.asarray(v_out)) ** 2)),
            "amp_abs_v": float(np.mean(np.abs(amp_v)))}


def lenet_levels(net, x, *, circuit: imac.ImacCircuit = imac.CIRCUIT,
                 fmt: imac.FixedFormat = imac.FIXED, batch: int = 500) -> list:
    """Per IMAC layer of ``net`` (a :class:`golden.imac_net.ImacNet`, every layer with a bias
    row), over the images ``x``, golden's fixed point (ideal devices): ``{row_v2,
    neuron_v2, amp_abs_v, levels}`` (``_levels``; ``levels`` the neuron output codes,
    the same as ``golden.imac_net.infer``'s). Drive of a row: the first layer's binarized
    inputs at ``+-v_supply``, a hidden layer's at the previous neuron's code ``y / x_max *
    v_supply``, the bias row at ``+v_supply``; the neuron input is the partition mean of the
    amplifier codes as ``golden.imac.neuron_fixed`` forms it (LSB ``amp_lsb_v``)."""
    from golden import imac_net
    x = np.asarray(x)
    lsb_v = circuit.v_supply * fmt.amp_lsb_v
    rail = 1 << fmt.amp_frac_bits
    conds = []
    for w, b in zip(net.fc_weights, net.fc_biases, strict=True):
        g_pos, g_neg = imac.draw_conductances(np.vstack([w, np.asarray(b)[None, :]]),
                                              circuit=circuit)
        conds.append((imac.quantize_conductances(g_pos, fmt),
                      imac.quantize_conductances(g_neg, fmt)))
    sums = None
    n = 0
    for s0 in range(0, x.shape[0], batch):
        act = imac.input_codes(imac_net.cpu_int(net, x[s0:s0 + batch]), fmt)
        per = []
        for (gp, gn), gain in zip(conds, net.gains, strict=True):
            act = np.hstack([act, np.full((act.shape[0], 1), fmt.x_max, dtype=np.int64)])
            y, _, amp = imac.layer_fixed(act, gp, gn, gain, circuit=circuit, fmt=fmt,
                                         return_stages=True)
            p = amp.shape[1]
            v = (amp.sum(axis=1) * imac.mean_reciprocal(p, fmt)
                 + (1 << (fmt.mean_shift - 1))) >> fmt.mean_shift
            v = np.clip(v, -rail, rail)
            k = act.shape[0]
            lv = _levels(act * (circuit.v_supply / fmt.x_max), v * lsb_v,
                         y * (circuit.v_supply / fmt.x_max), amp * lsb_v, circuit)
            per.append({"row_v2": lv["row_v2"] * k, "neuron_v2": lv["neuron_v2"] * k,
                        "amp_abs_v": lv["amp_abs_v"] * k, "levels": [y]})
            act = y
        if sums is None:
            sums = per
        else:
            for a, b in zip(sums, per, strict=True):
                for key in ("row_v2", "neuron_v2", "amp_abs_v"):
                    a[key] = a[key] + b[key]
                a["levels"] += b["levels"]
        n += act.shape[0]
    return [{"row_v2": a["row_v2"] / n, "neuron_v2": a["neuron_v2"] / n,
             "amp_abs_v": a["amp_abs_v"] / n, "levels": np.concatenate(a["levels"])}
            for a in sums]


def lenet_row_v2(net, x, *, circuit: imac.ImacCircuit = imac.CIRCUIT,
                 fmt: imac.FixedFormat = imac.FIXED) -> list:
    """Per IMAC layer of ``net``, each row's mean squared drive in V**2 over the images ``x``
    (:func:`lenet_levels`' ``row_v2``)."""
    return [lv["row_v2"] for lv in lenet_levels(net, x, circuit=circuit, fmt=fmt)]


def random_levels(fc, gains, *, vectors: int = RANDOM_VECTORS, seed: int = 0,
                  circuit: imac.ImacCircuit = imac.CIRCUIT, chunk: int = 512) -> list:
    """:func:`lenet_levels` for an MLP without data: ``vectors`` random +-1 input vectors
    through random +-1 weights and biases (seeded), each layer golden's float64 circuit
    (``golden.imac.layer_float``, ideal devices; any number of partitions, which the fixed
    point limits). ``fc`` is the widths ``(n_0, n_1, ..., n_L)``. Per layer ``{row_v2,
    neuron_v2, amp_abs_v}``."""
    if len(gains) != len(fc) - 1:
        raise ValueError(f"gains must have one entry per layer ({len(fc) - 1}), not "
                         f"{len(gains)}")
    if isinstance(vectors, bool) or not isinstance(vectors, int) or vectors < 1:
        raise ValueError(f"vectors must be a positive int, not {vectors!r}")
    return [{k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in lv.items()}
            for lv in _random_levels(tuple(int(n) for n in fc), tuple(float(g) for g in gains),
                                     int(vectors), int(seed), circuit, int(chunk))]


def random_row_v2(fc, gains, *, vectors: int = RANDOM_VECTORS, seed: int = 0,
                  circuit: imac.ImacCircuit = imac.CIRCUIT, chunk: int = 512) -> list:
    """Each row's mean squared drive per layer of :func:`random_levels`."""
    return [lv["row_v2"] for lv in random_levels(fc, gains, vectors=vectors, seed=seed,
                                                 circuit=circuit, chunk=chunk)]


@functools.lru_cache(maxsize=8)
def _random_levels(fc, gains, vectors, seed, circuit, chunk):
    # Cached: the 4096-wide classifier draws 33 million conductances.
    rng = np.random.default_rng(seed)
    v = rng.choice(np.array([-1.0, 1.0]), size=(vectors, fc[0])) * circuit.v_supply
    out = []
    for n_out, gain in zip(fc[1:], gains, strict=True):
        x = np.hstack([v, np.full((vectors, 1), circuit.v_supply)])
        y = np.empty((vectors, n_out))
        v_in = np.empty((vectors, n_out))
        amp_abs = 0.0
        # Columns are independent neurons: a few at a time keeps the conductances small.
        for c0 in range(0, n_out, chunk):
            cols = min(chunk, n_out - c0)
            w = rng.choice(np.array([-1, 1]), size=(x.shape[1], cols))
            g_pos, g_neg = imac.draw_conductances(w, circuit=circuit)
            yc, _, amp = imac.layer_float(x, g_pos, g_neg, gain, circuit=circuit,
                                          return_stages=True)
            y[:, c0:c0 + cols] = yc
            v_in[:, c0:c0 + cols] = amp.mean(axis=1)
            amp_abs += float(np.abs(amp).sum())
        lv = _levels(x, v_in, y, np.zeros(1), circuit)
        lv["amp_abs_v"] = amp_abs / (vectors * n_out * (-(-x.shape[1] // circuit.xbar_rows)))
        out.append(lv)
        v = y
    return out


def _gains(n_layers: int) -> list:
    # IMAC-Sim's pattern (30, 30, 10): 30 per hidden layer, 10 for the last.
    return [30.0] * (n_layers - 1) + [10.0]


def headline(net=None, *, cpu: CpuParams = CpuParams(), imac_p: ImacParams = ImacParams(),
             images: int = LEVEL_IMAGES) -> dict:
    """The seed's two comparisons on our networks: the bundled CPU-IMAC LeNet (its trained
    binarized weights, the hidden rows at its neuron levels over the first ``images``
    Fashion-MNIST test images) and a VGG-16-shaped CIFAR-10 network (random signs and
    inputs)."""
    from golden import datasets, imac_net
    if net is None:
        net = imac_net.load_net(imac_net.bundled_net_path("fashion_lenet_imac"))
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ValueError(f"images must be a positive int, not {images!r}")
    x, _ = datasets.load_fashion_mnist("test")
    lv = lenet_levels(net, x[:images], circuit=imac_p.circuit)
    lk = {"row_v2": [v["row_v2"] for v in lv], "neuron_v2": [v["neuron_v2"] for v in lv],
          "amp_abs_v": [v["amp_abs_v"] for v in lv], "gains": net.gains}
    w = [np.vstack([wi, bi[None, :]]) for wi, bi in zip(net.fc_weights, net.fc_biases,
                                                        strict=True)]
    lenet = evaluate(lenet_layers(net), cpu=cpu, imac_p=imac_p, fc_weights=w, **lk,
                     name=net.name)
    lenet["level_images"] = min(images, len(x))

    def rand(fc):
        r = random_levels(fc, _gains(len(fc) - 1), circuit=imac_p.circuit)
        return {"row_v2": [v["row_v2"] for v in r], "neuron_v2": [v["neuron_v2"] for v in r],
                "amp_abs_v": [v["amp_abs_v"] for v in r]}
    vk = rand(VGG_FC)
    vgg = evaluate(vgg_layers(), cpu=cpu, imac_p=imac_p, **vk, name="vgg16_cifar10_shape")
    params = {f"cpu.{k}": v for k, v in asdict(cpu).items()}
    params.update({f"imac.{k}": v for k, v in asdict(imac_p).items() if k != "circuit"})
    params.update({"cpu.e_mac_j": cpu.e_mac_j, "cpu.t_mac_s": cpu.t_mac_s,
                   "imac.p_neuron_full_swing_w": imac_p.p_neuron_w,
                   "imac.p_amp_w_gain30": imac_p.p_amp_w(30.0),
                   "imac.p_amp_w_gain10": imac_p.p_amp_w(10.0)})
    mac_only = dataclasses.replace(cpu, e_byte_sram_j=0.0, e_byte_dram_j=0.0)
    fc4096 = (512, 4096, 4096, 10)
    no_rows = {k: v for k, v in lk.items() if k != "row_v2"}
    sens = {
        "lenet_mac_only": evaluate(lenet_layers(net), cpu=mac_only, imac_p=imac_p,
                                   fc_weights=w, **lk,
                                   name=net.name + " (CPU energy per MAC only)"),
        "vgg_fc4096": evaluate(vgg_layers(fc=fc4096), cpu=cpu, imac_p=imac_p, **rand(fc4096),
                               name="vgg16_cifar10_shape, classifier 512-4096-4096-10"),
        "lenet_full_supply_rows": evaluate(lenet_layers(net), cpu=cpu, imac_p=imac_p,
                                           fc_weights=w, **no_rows,
                                           name=net.name + " (every row at the full supply)"),
        "vgg_full_supply_rows": evaluate(vgg_layers(), cpu=cpu, imac_p=imac_p,
                                         neuron_v2=vk["neuron_v2"], amp_abs_v=vk["amp_abs_v"],
                                         name="vgg16_cifar10_shape (every row at the full "
                                              "supply)"),
        "lenet_full_swing": evaluate(lenet_layers(net), cpu=cpu, imac_p=imac_p, fc_weights=w,
                                     gains=net.gains,
                                     name=net.name + " (rows at the full supply, neurons at "
                                                     "the full 2 V swing, amplifiers at the "
                                                     "rail: the old upper bound)"),
        "vgg_full_swing": evaluate(vgg_layers(), cpu=cpu, imac_p=imac_p,
                                   name="vgg16_cifar10_shape (full supply, full swing)"),
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
        rows = (f"rows at the neuron levels of {r['level_images']} test images"
                if "level_images" in r else "rows at random-input levels")
        lines.append(f"  IMAC crossbars {_si(r['crossbar_energy_j'], 'J')} ({rows}; every "
                     f"row at the full supply: {_si(r['crossbar_full_supply_energy_j'], 'J')})")
        lines.append(f"  energy saving {100 * r['energy_saving']:.1f} % (seed 003: "
                     f"{h['seed_saving_pct'][key]:g} %), latency saving "
                     f"{100 * r['latency_saving']:.1f} %; FC share of the CPU-only energy "
                     f"{100 * r['fc_energy_share_cpu_only']:.1f} % (the most any offload "
                     f"saves)")
        pr = r["programming"]
        be = r["break_even_images"]
        lines.append(f"  programming per network load: {_si(pr['energy_j'], 'J')} "
                     f"({pr['device_writes']:,} device writes "
                     f"{_si(pr['energy_devices_j'], 'J')} + {pr['weight_bytes_from_dram']:,} "
                     f"weight bytes from DRAM {_si(pr['energy_weights_read_j'], 'J')}), "
                     f"{_si(pr['latency_s'], 's')}; per image over {pr['images_per_load']:,} "
                     f"images {_si(pr['energy_per_image_j'], 'J')}, saving with it "
                     f"{100 * r['energy_saving_with_programming']:.1f} %; break-even after "
                     + (f"{be:.2f} images" if be is not None else "never"))
    lines.append("Sensitivity:")
    for key, what in (("lenet_mac_only", "LeNet, CPU energy per MAC only (bytes free)"),
                      ("vgg_fc4096", "VGG-16 with VGG's original 4096-4096 classifier"),
                      ("lenet_full_supply_rows", "LeNet, every crossbar row at the full "
                                                 "supply (upper bound)"),
                      ("vgg_full_supply_rows", "VGG, every crossbar row at the full supply "
                                               "(upper bound)"),
                      ("lenet_full_swing", "LeNet, rows, neurons and amplifiers at full "
                                           "swing (upper bound)"),
                      ("vgg_full_swing", "VGG, rows, neurons and amplifiers at full swing "
                                         "(upper bound)")):
        r = h["sensitivity"][key]
        lines.append(f"  {what}: energy saving {100 * r['energy_saving']:.1f} %, latency "
                     f"saving {100 * r['latency_saving']:.1f} %, FC {100 * r['fc_mac_share']:.2f}"
                     f" % of the MACs, {100 * r['fc_energy_share_cpu_only']:.1f} % of the "
                     "CPU-only energy")
    return "\n".join(lines)


@interruptible("python -m sim.hw.imac_energy", "no JSON was written")
def main(argv=None) -> int:
    from rtl.outputs import UserError, check_file, write_json
    p = argparse.ArgumentParser(prog="python -m sim.hw.imac_energy",
                                description="Analytical CPU-IMAC vs CPU-only energy and latency "
                                            "(seed 003) for the bundled LeNet and a VGG shape.")
    p.add_argument("--json", default=None, help="also write the full result as JSON here")
    p.add_argument("--images", default=str(LEVEL_IMAGES),
                   help="Fashion-MNIST test images whose neuron levels set the LeNet's hidden "
                        f"crossbar rows (1..10000, default {LEVEL_IMAGES})")
    args = p.parse_args(argv)
    from golden.datasets import DatasetError
    try:
        out = check_file("--json", args.json) if args.json else None
        try:
            images = int(args.images)
        except ValueError:
            images = 0
        if not 1 <= images <= 10_000:
            raise UserError(f"--images must be an integer in [1, 10000], not {args.images!r}")
        h = headline(images=images)
        print(summary_text(h), flush=True)
        if out is not None:
            write_json(out, h, option="--json")
            print(f"wrote {out}")
    except (UserError, DatasetError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
