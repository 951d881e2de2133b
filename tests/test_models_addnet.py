"""The committed Add-Net reference models (format 2) have the seed's block structure, and their
binarized layers compute exactly what the float network computes."""

import json

import numpy as np
import pytest

from golden import datasets
from golden.addnet import ADDNET_PAD, check_basic_block
from golden.model import (
    MODELS_DIR, infer_int, input_codes, layer_forward_float, load_model, pad_reals,
)

# name, loader, basic blocks (accuracy against the JSON: tests/test_models.py)
CASES = [("digits_addnet", datasets.load_digits, 2)]


@pytest.mark.parametrize("name,load,blocks", CASES, ids=[c[0] for c in CASES])
def test_committed_addnet_structure(name, load, blocks):
    """Inception (mul_conv2d), ``blocks`` basic blocks of m = 4 (the seed's MNIST multiplier),
    average pooling, MLP; written as format 2."""
    with np.load(MODELS_DIR / f"{name}.npz") as z:
        assert int(z["spinpim_format"]) == 2
    model = load_model(MODELS_DIR / f"{name}.npz")
    kinds = [ly.kind for ly in model.layers]
    assert kinds == (["mul_conv2d"] + ["bin_gconv2d"] * (2 * blocks)
                     + ["avg_pool2d", "flatten", "mul_linear", "mul_linear"])
    meta = json.loads((MODELS_DIR / f"{name}.json").read_text())
    shapes = model.shapes()
    for b in range(blocks):
        dw, pw = model.layers[1 + 2 * b], model.layers[2 + 2 * b]
        assert check_basic_block(dw, pw, shapes[1 + 2 * b][0]) == 4 == meta["channel_multiplier"]
        assert dw.params["pad_value"] == (0 if b == 0 else ADDNET_PAD)
        alpha = dw.float_params["alpha"]
        assert (alpha == alpha[0]).all()             # layer-wise alpha, as the seed's eq. 2


@pytest.mark.parametrize("name,load,blocks", CASES, ids=[c[0] for c in CASES])
def test_committed_addnet_blocks_equal_float(name, load, blocks):
    """On the same input codes, every binarized layer's integer codes == the float network's."""
    try:
        images, _ = load("test")
    except datasets.DatasetError as e:
        pytest.skip(f"{name}: test data set not installed: {e}")
    model = load_model(MODELS_DIR / f"{name}.npz")
    trace = infer_int(model, images[:100], trace=True)
    codes, pads = input_codes(model), pad_reals(model)
    checked = 0
    for k, ly in enumerate(model.layers):
        if ly.kind != "bin_gconv2d" or codes[k] != "symmetric":
            continue
        real = (2.0 * trace[k - 1] - 255) / 255
        exp = layer_forward_float(ly, real, pad_real=pads[k])
        assert (trace[k].astype(np.int64) == np.rint((exp + 1) * 255 / 2)).all(), k
        checked += 1
    assert checked == 2 * blocks - 1
