"""The committed reference models: golden integer inference reproduces their recorded accuracy."""

import json

import numpy as np
import pytest

from golden import datasets
from golden.model import MODELS_DIR, accuracy, infer_float, infer_int, load_model

# name, loader, int8 floor, largest |float - int8| accuracy gap
CASES = [("fashion_addernet", datasets.load_fashion_mnist, 0.88, 0.005),
         ("digits_addernet", datasets.load_digits, 0.93, 0.011),
         ("digits_addnet", datasets.load_digits, 0.93, 0.02)]


@pytest.mark.parametrize("name,load,floor,gap", CASES, ids=[c[0] for c in CASES])
def test_committed_model_accuracy(name, load, floor, gap):
    try:
        images, labels = load("test")
    except datasets.DatasetError as e:
        pytest.skip(f"{name}: test data set not installed: {e}")
    model = load_model(MODELS_DIR / f"{name}.npz")
    meta = json.loads((MODELS_DIR / f"{name}.json").read_text())
    assert meta["n_test"] == len(labels) and meta["test_split"] == "test"
    logits = infer_int(model, images)
    assert logits.shape == (len(labels), len(model.class_names))
    int_acc = accuracy(logits, labels)
    assert int_acc >= floor, f"{name}: int8 accuracy {int_acc:.4f} below {floor}"
    # same integers -> same accuracy, to the last image
    assert int_acc == meta["int8_test_accuracy"]
    float_acc = accuracy(infer_float(model, images), labels)
    assert float_acc == pytest.approx(meta["float_test_accuracy"], abs=1e-12)
    assert abs(float_acc - int_acc) <= gap, f"{name}: float {float_acc:.4f} int8 {int_acc:.4f}"


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_committed_model_shape(name):
    model = load_model(MODELS_DIR / f"{name}.npz")
    assert model.name == name
    assert len(model.class_names) == 10
    kinds = [ly.kind for ly in model.layers]
    assert kinds[-1] == "mul_linear" and model.layers[-1].output == "logits"
    for ly in model.layers:
        if ly.is_adder:     # adder weights are uint8 on their input's scale
            assert ly.params["weight"].dtype == np.uint8
