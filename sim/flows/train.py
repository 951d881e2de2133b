"""Train the reference AdderNets in float (torch) and export them int8-quantized.

    python -m sim.flows.train --model
    fashion_addernet|digits_addernet|digits_addnet|fashion_addnet|all
                        [--seed 0] [--epochs N] [--out DIR] [--multiplier M | --sweep-m]

Writes ``DIR/<name>.npz`` (:func:`golden.model.save_model`, quantized by
:func:`golden.quantize.quantize_model`) and ``DIR/<name>.json`` (seed, epochs, accuracies
measured by the golden model on the full test split, training time, torch version,
architecture). Deterministic for a given seed, torch version and thread count (--threads).

Adder layers follow AdderNet (Chen et al., CVPR 2020): the forward pass is
``Y = -sum|X - W|`` (``torch.cdist(p=1)`` on unfolded patches); the backward pass uses the
full-precision gradient ``dY/dW = X - W``, the HardTanh-clipped ``dY/dX = clamp(W - X, -1, 1)``
and the adaptive per-layer scaling ``eta * sqrt(numel(W)) / ||grad_W||_2`` of W's gradient.

Add-Net models (``*_addnet``) follow seed 002 (the DIMA / Add-Net paper), Section 2.2 and 4.1:
an inception block (3x3 multiply convolution, BN, ReLU), basic blocks of a binarized depthwise
(channel multiplier m) and a binarized pointwise convolution, each followed by BN and the k-bit
activation quantizer (eq. 3, k = 8), average pooling and an MLP. Forward: weights binarized as
eq. 2 with the layer-wise ``alpha = E|w|`` recomputed every batch; eq. 3 with ``T = max|tanh|``
of the batch (an exponential moving average of it is the fixed ``T`` of inference and export).
Backward: the straight-through estimator of eq. 4, the gradient passed where the quantizer's
input lies in [-1, 1] and zero elsewhere, for weights and activations alike. Adam, learning rate
0.001 reduced to 0.0001 (seed Section 4.1.1; ASSUMPTION: a cosine decay between the two, the
seed does not say how). The block structure is that of :mod:`golden.addnet`.

Quantized multiply CNNs (``fashion_mulcnn_w8i8``, ``fashion_mulcnn_w4i4``: seed 001's <W:I>
configurations, :mod:`golden.bitwidth`) train quantization-aware: every multiply layer's
weights are fake-quantized to W bits (symmetric, per output channel; the logits layer per
tensor) and its input to the I top bits of the 8-bit code, ``floor(round(x/s)/2**(8-I))``, as
the integer model computes it (:class:`QuantInput`); the straight-through estimator passes the
gradient inside the codes' range. ``s`` is the input image's scale for the first layer and, for
the others, a moving average (momentum 0.1, ASSUMPTION as batch norm's) of the batch's
99.9th-percentile activation / 255, exported as the producing layer's requant scale
(``FloatLayer.out_scale``). The float accuracy is the trained network's in torch (fake
quantization included).

``fashion_mulcnn_w4i4_eq2`` (not bundled) is the <4:4> network with seed 001's eq. 2 as the
activation quantizer between layers (``golden.bitwidth``, format 5): a layer after the first
reads ``clip(round(x / s), 0, 2**I - 1)`` with ``s = Q_max / (2**I - 1)``, ``Q_max`` a moving
average (momentum 0.1) of the batch maxima (eq. 2: "the maximum ... of the layer in the
training phase"; ASSUMPTION: the moving average, as batch norm's statistics), and the producing
layer exports ``out_bits`` I with that scale; the first layer reads the top I bits of the image.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as _e:                   # torch is the optional extra 'train'
    if __name__ != "__main__":
        raise
    print(f"python -m sim.flows.train: error: training needs torch, which is not installed ({_e}); "
          f"install it with 'make train' or \"pip install -e '.[train]'\"", file=sys.stderr)
    sys.exit(2)

from golden import datasets
from golden.addnet import ADDNET_PAD
from golden.layers import ACT_MAX
from golden.model import MODELS_DIR, accuracy, infer_float, infer_int, save_model
from golden.quantize import FloatLayer, quantize_model
from rtl.outputs import UserError, check_dir, check_file, interruptible, json_text, write_files

# ----------------------------------------------------------------------------------------------
# Architectures: golden layer kinds. Every compute layer but the last is followed by BN + ReLU.


def _conv(kind, cin, cout, k=3, stride=1, padding=1):
    return {"kind": kind, "in": cin, "out": cout, "k": k, "stride": stride, "padding": padding}


def _lin(kind, cin, cout):
    return {"kind": kind, "in": cin, "out": cout}


def _addnet(channels, blocks, m, pool, features, hidden):
    """Add-Net (seed 002, Fig. 2): inception 1 -> channels, ``blocks`` basic blocks of a 3x3
    depthwise (multiplier m) and a pointwise binarized layer, average pooling, MLP. The
    arguments are kept in ``arch[0]["addnet"]`` so that ``--multiplier`` can rebuild it."""
    arch = [dict(_conv("mul_conv2d", 1, channels),
                 addnet=(channels, blocks, m, pool, features, hidden))]
    for b in range(blocks):
        # the first block reads the inception's unsigned (ReLU) codes: padding inserts 0 there
        arch.append({"kind": "bin_gconv2d", "in": channels, "out": channels * m, "k": 3,
                     "stride": 1, "padding": 1, "groups": channels,
                     "pad_value": 0 if b == 0 else ADDNET_PAD, "output": "quant"})
        arch.append({"kind": "bin_gconv2d", "in": channels * m, "out": channels, "k": 1,
                     "stride": 1, "padding": 0, "groups": 1, "pad_value": 0, "output": "quant"})
    return arch + [{"kind": "avg_pool2d", "kernel": pool, "stride": pool}, {"kind": "flatten"},
                   _lin("mul_linear", features, hidden), _lin("mul_linear", hidden, 10)]


_POOL = {"kind": "max_pool2d", "kernel": 2, "stride": 2}
_AVG = {"kind": "avg_pool2d", "kernel": 2, "stride": 2}
_FLAT = {"kind": "flatten"}

CONFIGS = {
    "fashion_addernet": {
        "dataset": "fashion_mnist",
        "input_scale": 1.0 / 255.0,
        "class_names": datasets.FASHION_CLASSES,
        "arch": [_conv("adder_conv2d", 1, 8), _POOL, _conv("adder_conv2d", 8, 16), _POOL,
                 _conv("adder_conv2d", 16, 32), _POOL, _FLAT, _lin("mul_linear", 288, 10)],
        "epochs": 10, "batch": 128, "lr": 0.1, "eta": 0.1, "wd": 5e-4,
        "calib": 2000, "select": 5000,
    },
    "digits_addernet": {
        "dataset": "digits",
        "input_scale": 1.0 / 16.0,
        "class_names": tuple(str(i) for i in range(10)),
        "arch": [_conv("mul_conv2d", 1, 8), _conv("adder_conv2d", 8, 16), _POOL,
                 _conv("adder_conv2d", 16, 16), _AVG, _FLAT, _lin("adder_linear", 64, 32),
                 _lin("mul_linear", 32, 10)],
        "epochs": 60, "batch": 32, "lr": 0.1, "eta": 0.1, "wd": 5e-4,
        "calib": None, "select": None,
    },
    # Small Add-Net for fast tests: the seed's MNIST block (16 channels, m = 4) twice on 8x8
    # digits. ASSUMPTION: 2 blocks, pool 2, 64 hidden neurons and batch 32 scale the seed's MNIST
    # configuration down to 8x8 images and 1,437 training images.
    "digits_addnet": {
        "dataset": "digits",
        "input_scale": 1.0 / 16.0,
        "class_names": tuple(str(i) for i in range(10)),
        "arch": _addnet(16, 2, 4, 2, 16 * 4 * 4, 64),
        "epochs": 60, "batch": 32, "optimizer": "adam", "lr": 1e-3, "lr_end": 1e-4,
        "calib": None, "select": None,
    },
    # The seed's MNIST configuration (Section 4.1.2: 16 input channels, 5 basic blocks, 128
    # hidden neurons, batch 64, 3x3 kernels, channel multiplier 4) on Fashion-MNIST.
    # ASSUMPTION: average pooling 4x4 (28 -> 7) before the MLP; the seed does not give its size.
    # ASSUMPTION: two passes over the full 60,000 training images (1,876 batches; a batch takes
    # about 1.2 s of one thread's CPU, so about 40 CPU-min); the seed gives no epoch count.
    # Calibration on 500 and percentile selection on 250 training images; the test accuracies
    # on the full test split of 10,000 images, the float one from torch (eval mode, the same
    # network), the int8 one from golden (golden's 28x28 depthwise layers take about 50 ms of
    # CPU per image). check_images: the int8 accuracy on the first test images, which
    # tests/test_models_addnet.py recomputes from the file.
    "fashion_addnet": {
        "dataset": "fashion_mnist",
        "input_scale": 1.0 / 255.0,
        "class_names": datasets.FASHION_CLASSES,
        "arch": _addnet(16, 5, 4, 4, 16 * 7 * 7, 128),
        "epochs": 2, "batch": 64, "optimizer": "adam", "lr": 1e-3, "lr_end": 1e-4,
        "calib": 500, "select": 250, "progress": 16,
        "float_eval": "torch", "check_images": 300,
    },
}
# Quantized multiply CNNs (seed 001 <W:I>): fashion_addernet's topology with multiply layers.
# ASSUMPTION: Adam 1e-3 -> 1e-4 (cosine) for 8 epochs, as the Add-Net models' optimizer.
for _w, _i in ((8, 8), (4, 4)):
    CONFIGS[f"fashion_mulcnn_w{_w}i{_i}"] = {
        "dataset": "fashion_mnist",
        "input_scale": 1.0 / 255.0,
        "class_names": datasets.FASHION_CLASSES,
        "arch": [dict(a, w_bits=_w, in_bits=_i) if "out" in a else a for a in
                 (_conv("mul_conv2d", 1, 8), _POOL, _conv("mul_conv2d", 8, 16), _POOL,
                  _conv("mul_conv2d", 16, 32), _POOL, _FLAT, _lin("mul_linear", 288, 10))],
        "epochs": 8, "batch": 128, "optimizer": "adam", "lr": 1e-3, "lr_end": 1e-4,
        "calib": 2000, "select": 5000, "percentiles": (100.0,), "float_eval": "torch",
    }
# The <4:4> network with eq. 2 between layers (module docstring); not bundled.
CONFIGS["fashion_mulcnn_w4i4_eq2"] = dict(CONFIGS["fashion_mulcnn_w4i4"], arch=[
    dict(a, in_quant="eq2") if "out" in a and i else a
    for i, a in enumerate(CONFIGS["fashion_mulcnn_w4i4"]["arch"])])
#: Channel multipliers of ``--sweep-m`` (seed 002 Table 3 sweeps m = 1 .. 16; 16 is left out:
#: its depthwise layers cost 4x those of m = 4 on the shared CPU).
SWEEP_M = (1, 2, 4, 8)
#: The models committed in golden/models, which ``--model all`` (``make train``) retrains.
BUNDLED = ("fashion_addernet", "digits_addernet", "digits_addnet", "fashion_addnet",
           "fashion_mulcnn_w8i8", "fashion_mulcnn_w4i4")
#: Output-scale percentiles tried at export; the best int8 accuracy on held-out train data wins.
PERCENTILES = (99.9, 99.99, 99.999, 100.0)


# ----------------------------------------------------------------------------------------------
# Adder layers


class AdderFunction(torch.autograd.Function):
    """``Y[r, o] = -sum_k |X[r, k] - W[o, k]|`` with AdderNet's gradients."""

    @staticmethod
    def forward(ctx, cols, weight, eta):
        ctx.save_for_backward(cols, weight)
        ctx.eta = eta
        return -torch.cdist(cols, weight, p=1)

    @staticmethod
    def backward(ctx, grad):
        cols, weight = ctx.saved_tensors
        grad_x = grad_w = None
        if ctx.needs_input_grad[1]:
            # sum_r g[r, o] * (X[r, k] - W[o, k]): full-precision gradient, as two matmuls.
            grad_w = grad.t() @ cols - weight * grad.sum(0)[:, None]
            norm = grad_w.norm()
            if norm > 0:
                grad_w = grad_w * (ctx.eta * math.sqrt(grad_w.numel()) / norm)
        if ctx.needs_input_grad[0]:
            o, k = weight.shape
            grad_x = torch.empty_like(cols)
            step = max(1, (1 << 18) // (o * k))      # cache-sized chunks: ~10x faster than one
            for s in range(0, cols.shape[0], step):
                d = (weight[None] - cols[s:s + step, None, :]).clamp_(-1.0, 1.0)
                grad_x[s:s + step] = torch.bmm(grad[s:s + step, None, :], d).squeeze(1)
        return grad_x, grad_w, None


class AdderConv2d(nn.Module):
    def __init__(self, cin, cout, k, stride, padding, eta):
        super().__init__()
        self.k, self.stride, self.padding, self.eta = k, stride, padding, eta
        self.weight = nn.Parameter(torch.empty(cout, cin, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        n, _, h, w = x.shape
        o = self.weight.shape[0]
        ho = (h + 2 * self.padding - self.k) // self.stride + 1
        wo = (w + 2 * self.padding - self.k) // self.stride + 1
        cols = F.unfold(x, self.k, padding=self.padding, stride=self.stride)   # N, C*k*k, L
        cols = cols.transpose(1, 2).reshape(n * ho * wo, -1)
        y = AdderFunction.apply(cols, self.weight.view(o, -1), self.eta)
        return y.view(n, ho * wo, o).transpose(1, 2).reshape(n, o, ho, wo)


class AdderLinear(nn.Module):
    def __init__(self, cin, cout, eta):
        super().__init__()
        self.eta = eta
        self.weight = nn.Parameter(torch.empty(cout, cin))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        return AdderFunction.apply(x, self.weight, self.eta)


def _ste_clip(r, forward):
    """Value ``forward``, gradient of eq. 4: passed where |r| <= 1, zero elsewhere."""
    rc = r.clamp(-1.0, 1.0)
    return rc + (forward - rc).detach()


class BinConv2d(nn.Module):
    """Binarized-weight grouped convolution: ``Bin(w) = E|w| * sign(w)`` (seed 002 eq. 2, the
    layer-wise alpha), STE (eq. 4) to the latent real weights; padding inserts ``pad_real``."""

    def __init__(self, cin, cout, k, stride, padding, groups, pad_real):
        super().__init__()
        self.stride, self.padding, self.groups, self.pad_real = stride, padding, groups, pad_real
        self.weight = nn.Parameter(torch.empty(cout, cin // groups, k, k))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x):
        w = self.weight
        sign = torch.where(w >= 0, 1.0, -1.0)
        wb = _ste_clip(w, sign) * w.abs().mean()
        if self.padding:
            p = self.padding
            x = F.pad(x, (p, p, p, p), value=self.pad_real)
        return F.conv2d(x, wb, stride=self.stride, groups=self.groups)


class QuantAct(nn.Module):
    """Seed 002 eq. 3 with k = 8: ``(2*j - 255)/255``, ``j = round(255*(tanh(z)/(2T) + 1/2))``
    (round half up, as golden), STE of eq. 4. Training: ``T`` is the batch's max |tanh|; its
    moving average (momentum 0.1, ASSUMPTION as BN's) is the fixed ``T`` of evaluation."""

    def __init__(self, momentum=0.1):
        super().__init__()
        self.momentum = momentum
        self.register_buffer("tmax", torch.tensor(1.0))

    def forward(self, z):
        t = torch.tanh(z)
        if self.training:
            m = t.detach().abs().max().clamp_min(1e-6)
            with torch.no_grad():
                self.tmax.mul_(1 - self.momentum).add_(self.momentum * m)
        else:
            m = self.tmax
        j = torch.floor(ACT_MAX * (t / (2 * m) + 0.5) + 0.5).clamp(0, ACT_MAX)
        return _ste_clip(z, (2 * j - ACT_MAX) / ACT_MAX)


def _ste_range(x, lo, hi, forward):
    """Value ``forward``, gradient 1 where ``lo <= x <= hi`` and 0 elsewhere."""
    xc = torch.minimum(torch.maximum(x, lo), hi) if torch.is_tensor(lo) else x.clamp(lo, hi)
    return xc + (forward - xc).detach()


class QuantInput(nn.Module):
    """The input of a <W:I> multiply layer (golden.bitwidth): ``s * 2**(8-I) * floor(c /
    2**(8-I))`` with the 8-bit code ``c = clip(round(x / s), 0, 255)``; ``s`` fixed (the image's
    scale) or a moving average of the batch's 99.9th percentile / 255 (module docstring)."""

    def __init__(self, in_bits, scale=None, momentum=0.1, eq2=False):
        super().__init__()
        self.in_bits, self.fixed, self.momentum = in_bits, scale is not None, momentum
        self.eq2 = eq2                   # seed 001 eq. 2: I-bit codes of s = Q_max / (2**I - 1)
        self.register_buffer("scale", torch.tensor(1.0 if scale is None else float(scale)))
        self.register_buffer("seen", torch.tensor(False))

    def forward(self, x):
        if self.training and not self.fixed:
            with torch.no_grad():
                flat = x.detach().flatten()
                q = torch.quantile(flat[:1 << 20], 0.999).clamp_min(1e-6) / ACT_MAX
                if self.eq2:
                    q = flat.max().clamp_min(1e-6) / ((1 << self.in_bits) - 1)
                if bool(self.seen):
                    self.scale.mul_(1 - self.momentum).add_(self.momentum * q)
                else:
                    self.scale.copy_(q)
                    self.seen.fill_(True)
        s = self.scale
        if self.eq2:
            top = float((1 << self.in_bits) - 1)
            xq = torch.round(x / s).clamp(0, top) * s
            return _ste_range(x, 0.0, top * float(s), xq)
        step = float(1 << (8 - self.in_bits))
        code = torch.round(x / s).clamp(0, ACT_MAX)
        xq = torch.floor(code / step) * step * s
        return _ste_range(x, 0.0, float(ACT_MAX) * float(s), xq)


class QuantMul(nn.Module):
    """A multiply convolution or linear layer with W-bit symmetric fake-quantized weights
    (golden.bitwidth.quantize_weight: per output channel, or per tensor for the logits layer)
    and a :class:`QuantInput`."""

    def __init__(self, layer, w_bits, in_bits, per_channel, in_scale, eq2=False):
        super().__init__()
        self.layer, self.w_bits, self.per_channel = layer, w_bits, per_channel
        self.quant_in = QuantInput(in_bits, in_scale, eq2=eq2)

    def forward(self, x):
        w = self.layer.weight
        top = (1 << (self.w_bits - 1)) - 1
        a = w.detach().abs()
        m = a.reshape(w.shape[0], -1).amax(1) if self.per_channel else a.amax().expand(w.shape[0])
        s = (m.clamp_min(1e-30) / top).reshape((-1,) + (1,) * (w.ndim - 1))
        wq = w + (torch.clamp(torch.round(w / s), -top, top) * s - w).detach()
        x = self.quant_in(x)
        if isinstance(self.layer, nn.Conv2d):
            return F.conv2d(x, wq, None, self.layer.stride, self.layer.padding)
        return F.linear(x, wq, self.layer.bias)


class Net(nn.Module):
    """The float network of an architecture list (see CONFIGS)."""

    def __init__(self, arch, eta):
        super().__init__()
        self.arch = arch
        mods = []
        for i, a in enumerate(arch):
            kind, last = a["kind"], i == len(arch) - 1
            if kind == "adder_conv2d":
                m = AdderConv2d(a["in"], a["out"], a["k"], a["stride"], a["padding"], eta)
            elif kind == "mul_conv2d":
                m = nn.Conv2d(a["in"], a["out"], a["k"], a["stride"], a["padding"], bias=False)
            elif kind == "bin_gconv2d":
                # padding inserts the real value of code pad_value: 0 on unsigned (ReLU) codes,
                # (2*pad_value - 255)/255 on eq.-3 codes (golden.model.pad_reals)
                pad_real = (2.0 * a["pad_value"] - ACT_MAX) / ACT_MAX if a["pad_value"] else 0.0
                m = BinConv2d(a["in"], a["out"], a["k"], a["stride"], a["padding"],
                              a["groups"], pad_real)
            elif kind == "adder_linear":
                m = AdderLinear(a["in"], a["out"], eta)
            elif kind == "mul_linear":
                m = nn.Linear(a["in"], a["out"], bias=last)
            elif kind == "max_pool2d":
                m = nn.MaxPool2d(a["kernel"], a["stride"])
            elif kind == "avg_pool2d":
                m = nn.AvgPool2d(a["kernel"], a["stride"])
            else:
                m = nn.Flatten()
            # <W:I> (golden.bitwidth); the first reads the image. A wrapper of the layer built
            # above: as an elif of the pools it had replaced every layer without bit widths
            # (every conv and linear of the other models) by a Flatten.
            if "w_bits" in a:
                m = QuantMul(m, a["w_bits"], a["in_bits"], not last,
                             1.0 / ACT_MAX if i == 0 else None, a.get("in_quant") == "eq2")
            if "out" in a and not last:
                bn = nn.BatchNorm2d(a["out"]) if kind.endswith("conv2d") else \
                    nn.BatchNorm1d(a["out"])
                act = QuantAct() if a.get("output") == "quant" else nn.ReLU()
                m = nn.Sequential(m, bn, act)
            mods.append(m)
        self.layers = nn.ModuleList(mods)

    def forward(self, x):
        for m in self.layers:
            x = m(x)
        return x

    def float_layers(self) -> list:
        """The trained network as golden.quantize.FloatLayer descriptions."""
        out = []
        for i, (a, m) in enumerate(zip(self.arch, self.layers, strict=True)):
            kind = a["kind"]
            if kind in ("max_pool2d", "avg_pool2d"):
                out.append(FloatLayer(kind, kernel=a["kernel"], stride=a["stride"]))
            elif kind == "flatten":
                out.append(FloatLayer(kind))
            elif isinstance(m, nn.Sequential):
                conv, bn = m[0], m[1]
                extra = {}
                if kind == "bin_gconv2d":
                    extra = dict(groups=a["groups"], pad_value=a["pad_value"], output="quant",
                                 quant_tmax=min(float(m[2].tmax), 1.0))
                if isinstance(conv, QuantMul):
                    extra = dict(w_bits=conv.w_bits, in_bits=conv.quant_in.in_bits,
                                 out_scale=self._next_scale(i), **self._eq2_fields(i, conv))
                    conv = conv.layer
                out.append(FloatLayer(
                    kind, weight=_np(conv.weight), stride=a.get("stride", 1),
                    padding=a.get("padding", 0), bn_gamma=_np(bn.weight), bn_beta=_np(bn.bias),
                    bn_mean=_np(bn.running_mean), bn_var=_np(bn.running_var), bn_eps=bn.eps,
                    **extra))
            elif isinstance(m, QuantMul):
                out.append(FloatLayer(kind, weight=_np(m.layer.weight), bias=_np(m.layer.bias),
                                      w_bits=m.w_bits, in_bits=m.quant_in.in_bits,
                                      **self._eq2_fields(i, m)))
            else:
                out.append(FloatLayer(kind, weight=_np(m.weight), bias=_np(m.bias)))
        return out

    def _eq2_fields(self, i: int, q) -> dict:
        """Eq. 2 (seed 001): ``in_quant`` of QuantMul ``q`` (layer i) and ``out_bits`` when the
        next <W:I> layer reads eq.-2 codes."""
        out = {"in_quant": "eq2"} if q.quant_in.eq2 else {}
        for m in self.layers[i + 1:]:
            nq = m[0] if isinstance(m, nn.Sequential) else m
            if isinstance(nq, QuantMul):
                if nq.quant_in.eq2:
                    out["out_bits"] = nq.quant_in.in_bits
                break
        return out

    def _next_scale(self, i: int):
        """The input scale the next <W:I> layer after layer ``i`` learned (its requant scale)."""
        for m in self.layers[i + 1:]:
            q = m[0] if isinstance(m, nn.Sequential) else m
            if isinstance(q, QuantMul):
                return float(q.quant_in.scale)
        return None


def _np(t):
    return t.detach().cpu().numpy().astype(np.float32)


def architecture_text(arch) -> list:
    out = []
    for i, a in enumerate(arch):
        k, last = a["kind"], i == len(arch) - 1
        if k.endswith("conv2d"):
            s = f"{k} {a['in']}->{a['out']} {a['k']}x{a['k']} stride {a['stride']} " \
                f"pad {a['padding']}"
            if "groups" in a:
                s += f" groups {a['groups']} pad code {a['pad_value']}"
        elif k.endswith("linear"):
            s = f"{k} {a['in']}->{a['out']}"
        elif k.endswith("pool2d"):
            s = f"{k} {a['kernel']} stride {a['stride']}"
        else:
            s = k
        if "out" in a:
            s += " (logits, bias)" if last else (
                ", BN, eq.-3 quant" if a.get("output") == "quant" else ", BN, ReLU")
        out.append(s)
    return out


# ----------------------------------------------------------------------------------------------
# Training


def _to_tensor(images, scale):
    return torch.from_numpy(images.astype(np.float32) * np.float32(scale))


@torch.no_grad()
def _eval(net, x, y, batch=1000):
    net.eval()
    correct = 0
    for s in range(0, x.shape[0], batch):
        correct += (net(x[s:s + batch]).argmax(1) == y[s:s + batch]).sum().item()
    return correct / x.shape[0]


def _with_multiplier(cfg: dict, m: int) -> dict:
    """An Add-Net configuration with channel multiplier ``m`` (seed 002 Table 3's sweep)."""
    channels, blocks, _, pool, features, hidden = cfg["arch"][0]["addnet"]
    return dict(cfg, arch=_addnet(channels, blocks, m, pool, features, hidden))


def _spatial_baseline(cfg: dict) -> dict:
    """The baseline CNN of seed 002 sec. 4.1.2 on an Add-Net's topology: every basic block
    replaced by one 3x3 spatial multiply convolution C -> C (BN, ReLU), in float, "without any
    quantization", the hyper-parameters unchanged."""
    channels, blocks, _, pool, features, hidden = cfg["arch"][0]["addnet"]
    arch = ([_conv("mul_conv2d", 1, channels)]
            + [_conv("mul_conv2d", channels, channels) for _ in range(blocks)]
            + [{"kind": "avg_pool2d", "kernel": pool, "stride": pool}, {"kind": "flatten"},
               _lin("mul_linear", features, hidden), _lin("mul_linear", hidden, 10)])
    return dict(cfg, arch=arch)


def train_model(name: str, seed: int, epochs: int | None, out_dir: Path,
                multiplier: int | None = None, *, baseline: bool = False,
                write: bool = True) -> dict:
    """Train ``name`` (``multiplier``: an Add-Net's m; ``baseline``: its spatial-convolution
    baseline, float only, not exported) and, with ``write``, save the model and its JSON."""
    cfg = CONFIGS[name]
    if multiplier is not None:
        cfg = _with_multiplier(cfg, multiplier)
    if baseline:
        cfg = _spatial_baseline(cfg)
    epochs = cfg["epochs"] if epochs is None else epochs
    torch.manual_seed(seed)
    np.random.seed(seed)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)

    tr_img, tr_lab = datasets.load_dataset(cfg["dataset"], "train")
    te_img, te_lab = datasets.load_dataset(cfg["dataset"], "test")
    xtr, ytr = _to_tensor(tr_img, cfg["input_scale"]), torch.from_numpy(tr_lab)
    xte, yte = _to_tensor(te_img, cfg["input_scale"]), torch.from_numpy(te_lab)
    subset = None
    if cfg.get("train_subset") and cfg["train_subset"] < len(tr_lab):
        # a seeded subset for training; calibration and selection below draw from the rest
        subset = np.random.default_rng(seed + 1).permutation(len(tr_lab))
        held = subset[cfg["train_subset"]:]
        subset = np.sort(subset[:cfg["train_subset"]])
        xtr, ytr = xtr[torch.from_numpy(subset)], ytr[torch.from_numpy(subset)]

    net = Net(cfg["arch"], cfg.get("eta", 0.0))
    n_params = sum(p.numel() for p in net.parameters())
    print(f"{name}{' spatial baseline' if baseline else ''}: {len(ytr)} train / "
          f"{len(te_lab)} test images, {n_params} parameters, {epochs} epochs, seed {seed}"
          + (f", m = {multiplier}" if multiplier is not None else ""), flush=True)
    steps = epochs * math.ceil(len(ytr) / cfg["batch"])
    if cfg.get("optimizer") == "adam":
        opt = torch.optim.Adam(net.parameters(), lr=cfg["lr"])
        end = cfg["lr_end"] / cfg["lr"]
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: end + (1 - end) * 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    else:
        opt = torch.optim.SGD(net.parameters(), lr=cfg["lr"], momentum=0.9, nesterov=True,
                              weight_decay=cfg["wd"])
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    t0 = time.perf_counter()
    for ep in range(epochs):
        net.train()
        perm = torch.randperm(len(ytr), generator=gen)
        tot_loss, correct = 0.0, 0
        for s in range(0, len(ytr), cfg["batch"]):
            idx = perm[s:s + cfg["batch"]]
            xb, yb = xtr[idx], ytr[idx]
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            if cfg.get("progress") and (s // cfg["batch"] + 1) % cfg["progress"] == 0:
                print(f"    batch {s // cfg['batch'] + 1}/{math.ceil(len(ytr) / cfg['batch'])}"
                      f": loss {loss.item():.4f}  ({time.perf_counter() - t0:.0f} s)", flush=True)
        test_acc = _eval(net, xte, yte)
        print(f"  epoch {ep + 1:3d}/{epochs}: loss {tot_loss / len(ytr):.4f}  "
              f"train acc {correct / len(ytr):.4f}  test acc {test_acc:.4f}  "
              f"({time.perf_counter() - t0:.0f} s)", flush=True)
    train_seconds = time.perf_counter() - t0
    net.eval()
    if baseline:
        acc = _eval(net, xte, yte)
        return {"seed": seed, "epochs": epochs, "float_test_accuracy": acc,
                "n_test": int(len(te_lab)), "train_seconds": round(train_seconds, 1),
                "architecture": architecture_text(cfg["arch"]), "parameters": n_params,
                "evaluated_by": "torch, eval mode (float, not exported)"}

    # Export: pick the output-scale percentile with the best int8 accuracy on train images that
    # are not the calibration images (digits: too few images, calibrate and select on all).
    t1 = time.perf_counter()
    order = rng.permutation(len(tr_lab))
    if subset is not None:
        order = rng.permutation(held)
    if cfg["calib"] is None:
        cal_idx = sel_idx = order
    else:
        cal_idx = order[:cfg["calib"]]
        sel_idx = order[cfg["calib"]:cfg["calib"] + cfg["select"]]
    flayers = net.float_layers()
    best = None
    for pct in cfg.get("percentiles", PERCENTILES):
        model = quantize_model(name=name, input_shape=tr_img.shape[1:],
                               input_scale=cfg["input_scale"], class_names=cfg["class_names"],
                               layers=flayers, calib_images=tr_img[cal_idx], percentile=pct)
        acc = accuracy(infer_int(model, tr_img[sel_idx]), tr_lab[sel_idx])
        print(f"  percentile {pct}: int8 accuracy {acc:.4f} on {len(sel_idx)} train images",
              flush=True)
        if best is None or acc > best[0]:
            best = (acc, pct, model)
    _, pct, model = best
    n_all = len(te_lab)
    if cfg.get("test_images"):
        te_img, te_lab = te_img[:cfg["test_images"]], te_lab[:cfg["test_images"]]
    if cfg.get("float_eval") == "torch":
        float_acc = _eval(net, xte[:len(te_lab)], yte[:len(te_lab)])
    else:
        float_acc = accuracy(infer_float(model, te_img), te_lab)
    int_pred = infer_int(model, te_img).argmax(1)
    int_acc = float((int_pred == te_lab).mean())
    meta = {"seed": seed, "epochs": epochs, "float_test_accuracy": float_acc,
            "int8_test_accuracy": int_acc, "test_split": "test", "n_test": int(len(te_lab)),
            "train_seconds": round(train_seconds, 1), "torch_version": torch.__version__,
            "architecture": architecture_text(cfg["arch"]), "parameters": n_params,
            "calibration_percentile": pct, "torch_threads": torch.get_num_threads()}
    if "addnet" in cfg["arch"][0]:
        meta["channel_multiplier"] = cfg["arch"][0]["addnet"][2]
    if "w_bits" in cfg["arch"][0]:     # seed 001 <W:I> (golden.bitwidth)
        meta["W:I"] = f"{cfg['arch'][0]['w_bits']}:{cfg['arch'][0]['in_bits']}"
        meta["integer_accuracy_note"] = ("int8_test_accuracy: the golden integer model at "
                                         "these <W:I> bit widths")
    if cfg.get("float_eval") == "torch":
        meta["float_evaluated_by"] = "torch, eval mode (the trained network, not the export)"
    if len(te_lab) < n_all:
        meta["test_split"] = f"test, the first {len(te_lab)} of {n_all} images"
    if cfg.get("check_images"):
        k = cfg["check_images"]
        meta["int8_correct_first_test_images"] = [k, int((int_pred[:k] == te_lab[:k]).sum())]
    if subset is not None:
        meta["train_images"] = int(len(subset))
        meta["train_subset"] = (f"{len(subset)} of {len(tr_lab)} training images, "
                                f"numpy default_rng(seed + 1).permutation's first "
                                f"{len(subset)}; calibration and percentile selection on "
                                f"the others")
    if not write:
        print(f"{name} m = {meta.get('channel_multiplier')}: float test accuracy "
              f"{float_acc:.4f}, int8 test accuracy {int_acc:.4f}", flush=True)
        return meta
    # Both files are staged in a hidden directory and renamed together: the bundled-model glob
    # (golden/models/*.npz) never lists a temporary file, and a kill leaves no partial file.
    write_files({out_dir / f"{name}.npz": lambda tmp: save_model(model, tmp),
                 out_dir / f"{name}.json": json_text(meta, sort_keys=False)}, option="--out")
    print(f"{name}: float test accuracy {float_acc:.4f}, int8 test accuracy {int_acc:.4f} "
          f"(golden, {len(te_lab)} images); training {train_seconds:.1f} s, export "
          f"{time.perf_counter() - t1:.1f} s; wrote {out_dir / (name + '.npz')}", flush=True)
    return meta


def sweep_m(name: str, seed: int, epochs: int | None, out_dir: Path) -> dict:
    """Seed 002 Table 3's experiment on our data: ``name`` (an Add-Net) trained at every channel
    multiplier of :data:`SWEEP_M` and its spatial-convolution baseline
    (:func:`_spatial_baseline`), same seed and epochs; writes ``<name>_msweep.json`` (no model
    file) and returns it."""
    t0 = time.perf_counter()
    rows = []
    for m in SWEEP_M:
        meta = train_model(name, seed, epochs, out_dir, m, write=False)
        rows.append({"m": m, "parameters": meta["parameters"],
                     "float_test_accuracy": meta["float_test_accuracy"],
                     "int8_test_accuracy": meta["int8_test_accuracy"],
                     "train_seconds": meta["train_seconds"]})
    base = train_model(name, seed, epochs, out_dir, baseline=True, write=False)
    cfg = CONFIGS[name]
    out = {"model": name, "dataset": cfg["dataset"], "seed": seed,
           "epochs": cfg["epochs"] if epochs is None else epochs, "n_test": base["n_test"],
           "command": f"python -m sim.flows.train --model {name} --sweep-m --seed {seed}"
                      + (f" --epochs {epochs}" if epochs is not None else ""),
           "torch_version": torch.__version__, "torch_threads": torch.get_num_threads(),
           "source": "seed 002 sec. 4.1.3, Table 3 (SVHN there)",
           "multipliers": rows, "spatial_baseline": base,
           "seconds": round(time.perf_counter() - t0, 1)}
    write_files({out_dir / f"{name}_msweep.json": json_text(out, sort_keys=False)},
                option="--out")
    print(f"{name}: m sweep (seed {seed}, {out['epochs']} epochs, {out['n_test']} test images)")
    for r in rows:
        print(f"  m = {r['m']}: {r['parameters']} parameters, float "
              f"{100 * r['float_test_accuracy']:.2f} %, int8 {100 * r['int8_test_accuracy']:.2f} %")
    print(f"  spatial baseline (float): {base['parameters']} parameters, "
          f"{100 * base['float_test_accuracy']:.2f} %; wrote {out_dir / (name + '_msweep.json')}",
          flush=True)
    return out


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


@interruptible("python -m sim.flows.train", "models finished before are kept; the one in training "
               "was not written (no partial file is left)")
def main(argv=None) -> int:
    p = _Parser(prog="python -m sim.flows.train", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, choices=[*CONFIGS, "all"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None,
                   help="default: per model (fashion_addernet 10, digits 60, fashion_addnet 1 over "
                        "a subset)")
    p.add_argument("--out", type=Path, default=MODELS_DIR)
    p.add_argument("--multiplier", type=int, default=None,
                   help="Add-Net models: channel multiplier m of every depthwise layer "
                        "(default 4, the seed's)")
    p.add_argument("--sweep-m", action="store_true",
                   help="Add-Net models: train at m = " + ", ".join(map(str, SWEEP_M))
                        + " and the spatial-convolution baseline (seed 002 Table 3), write "
                        "<model>_msweep.json instead of the model")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads (default 1: on a shared 2-core machine two threads ran "
                        "6x slower than one)")
    args = p.parse_args(argv)
    if args.epochs is not None and args.epochs < 1:
        p.error(f"--epochs must be >= 1, not {args.epochs}")
    if args.seed < 0:
        p.error(f"--seed must be >= 0, not {args.seed}")
    if args.threads < 1:
        p.error(f"--threads must be >= 1, not {args.threads}")
    if args.multiplier is not None:
        if args.multiplier < 1:
            p.error(f"--multiplier must be >= 1, not {args.multiplier}")
        if args.model not in CONFIGS or "addnet" not in CONFIGS[args.model]["arch"][0]:
            p.error(f"--multiplier applies to one Add-Net model (digits_addnet, "
                    f"fashion_addnet), not --model {args.model}")
    if args.sweep_m:
        if args.multiplier is not None:
            p.error("--sweep-m trains every m of the sweep; leave out --multiplier")
        if args.model not in CONFIGS or "addnet" not in CONFIGS[args.model]["arch"][0]:
            p.error(f"--sweep-m applies to one Add-Net model (digits_addnet, fashion_addnet), "
                    f"not --model {args.model}")
    names = list(BUNDLED) if args.model == "all" else [args.model]
    ends = ("_msweep.json",) if args.sweep_m else (".npz", ".json")
    try:                                        # before any training
        check_dir("--out", args.out)
        for name in names:
            for end in ends:
                check_file("--out", args.out / f"{name}{end}")
    except UserError as e:
        p.error(str(e))
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    try:
        for name in names:
            if args.sweep_m:
                sweep_m(name, args.seed, args.epochs, args.out)
            else:
                train_model(name, args.seed, args.epochs, args.out, args.multiplier)
    except datasets.DatasetError as e:
        print(f"python -m sim.flows.train: error: {e}", file=sys.stderr)
        return 1
    except UserError as e:
        print(f"python -m sim.flows.train: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
