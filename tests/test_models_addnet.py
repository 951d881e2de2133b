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
CASES = [("digits_addnet", datasets.load_digits, 2),
         ("fashion_addnet", datasets.load_fashion_mnist, 5)]


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


#: fashion_addnet's int8 accuracy on the first 300 Fashion-MNIST test images, as measured when
#: it was trained (279 of 300, 93.0 %, ``python -m sim.flows.train --model fashion_addnet``,
#: 2 epochs on the 60,000 training images); the expected count is that measurement, not a value
#: of the code under test.
FASHION_CORRECT = 279


def test_fashion_addnet_int8_accuracy_recomputed_from_the_file():
    """Golden integer inference of the committed file on the first 300 test images gets the
    count measured at training (the JSON records it), and its recorded accuracies are the
    seed's MNIST configuration's on Fashion-MNIST (5 blocks, m = 4, 128 hidden)."""
    try:
        images, labels = datasets.load_fashion_mnist("test")
    except datasets.DatasetError as e:
        pytest.skip(f"fashion_addnet: test data set not installed: {e}")
    model = load_model(MODELS_DIR / "fashion_addnet.npz")
    meta = json.loads((MODELS_DIR / "fashion_addnet.json").read_text())
    k, correct = meta["int8_correct_first_test_images"]
    assert (k, correct) == (300, FASHION_CORRECT)
    got = int((infer_int(model, images[:k]).argmax(1) == labels[:k]).sum())
    assert got == FASHION_CORRECT, f"fashion_addnet: {got} of {k} correct, measured {correct}"
    assert model.layers[-1].params["weight"].shape == (10, 128)
    assert meta["channel_multiplier"] == 4 and "train_subset" not in meta
    assert meta["epochs"] == 2 and meta["n_test"] == 10000 and meta["test_split"] == "test"


@pytest.mark.parametrize("name", ["digits_addnet", "fashion_addnet"])
def test_training_network_has_the_parameters_it_was_trained_with(name):
    """``sim.flows.train.Net`` of the model's architecture has the parameter count its JSON
    recorded when it was trained (``make train`` rebuilds it from the same architecture; a
    Net that dropped a layer, e.g. a convolution replaced by a Flatten, trains something
    else)."""
    pytest.importorskip("torch")
    from sim.flows.train import CONFIGS, Net
    meta = json.loads((MODELS_DIR / f"{name}.json").read_text())
    net = Net(CONFIGS[name]["arch"], CONFIGS[name].get("eta", 0.0))
    assert sum(p.numel() for p in net.parameters()) == meta["parameters"]
