"""golden.imac_net: the bundled CPU-IMAC LeNet (seed 003) and its file format.

The recorded accuracies are reproduced by golden, the integer CPU part agrees with the float one
on the IMAC inputs, and a malformed file is refused with a
one-line error naming the array.
"""

import json
import math
import re

import numpy as np
import pytest

from golden import datasets, imac, imac_net
from golden import layers as L

NET = "fashion_lenet_imac"


@pytest.fixture(scope="module")
def net():
    return imac_net.load_net(imac_net.bundled_net_path(NET))


@pytest.fixture(scope="module")
def meta():
    return json.loads(imac_net.bundled_net_path(NET).with_suffix(".json").read_text())


@pytest.fixture(scope="module")
def test_set():
    return datasets.load_fashion_mnist("test")


def test_bundled_net_shape(net):
    # IMAC-Sim's FC part 400-120-84-10, its gains, binarized weights and bias rows.
    assert net.fc_shapes == [(400, 120), (120, 84), (84, 10)]
    assert net.gains == [30.0, 30.0, 10.0]
    for w, b in zip(net.fc_weights, net.fc_biases, strict=True):
        assert set(np.unique(w)) <= {-1, 1} and set(np.unique(b)) <= {-1, 1}
    assert net.arrays["conv0.weight"].shape == (6, 1, 5, 5)
    assert net.arrays["conv1.weight"].shape == (16, 6, 5, 5)


def test_recorded_accuracies_reproduce(net, meta, test_set):
    x, y = test_set
    acc = meta["test_accuracy"]
    assert meta["n_test"] == len(y)
    ideal = imac.classify(imac_net.infer(net, x)[-1])
    assert float((ideal == y).mean()) == acc["int_ideal_imac_fixed"]
    varied = imac.classify(imac_net.infer(net, x, sigma=meta["variation_sigma"],
                                          seed=meta["variation_seed"])[-1])
    assert float((varied == y).mean()) == acc["int_imac_fixed_variation"]
    flt = imac.classify(imac_net.infer(net, x, cpu="float", impl="float")[-1])
    assert float((flt == y).mean()) == acc["float"]
    # The network is a classifier, not chance, after quantization and with variation.
    assert acc["int_ideal_imac_fixed"] > 0.5 and acc["int_imac_fixed_variation"] > 0.5


def test_sign_direction_follows_batch_norm(net):
    """The sign stage's direction is the sign of BN's scale (the weight and activation scales
    are positive): a negative gamma flips the comparison."""
    a = net.arrays
    assert (np.where(a["conv1.float.bn_gamma"] >= 0, 1, -1) == a["conv1.dir"]).all()


def test_int_cpu_part_matches_float_signs_mostly(net, test_set):
    x = test_set[0][:200]
    same = (imac_net.cpu_int(net, x) == imac_net.cpu_float(net, x)).mean()
    assert same > 0.97, same


def _arrays(net):
    return {k: v.copy() for k, v in imac_net.net_arrays(net).items()}


def _load_fails(tmp_path, arrays, message):
    p = tmp_path / "bad.npz"
    with open(p, "wb") as f:
        np.savez(f, **arrays)
    with pytest.raises(imac_net.ImacNetFormatError, match="^" + re.escape(message) + "$"):
        imac_net.load_net(p)
    assert "\n" not in message


def test_round_trip(net, tmp_path):
    p = tmp_path / "n.npz"
    imac_net.save_net(net, p)
    back = imac_net.load_net(p)
    assert back.name == net.name and back.fc_shapes == net.fc_shapes
    for k, v in imac_net.net_arrays(net).items():
        assert np.array_equal(back.arrays[k], v), k


def test_bad_files(net, tmp_path):
    a = _arrays(net)
    a["fc1.weight"][3, 7] = 0
    _load_fails(tmp_path, a, "fc1.weight[3, 7] must be -1 or +1 (binarized synapse), not 0")
    a = _arrays(net)
    del a["conv1.thresh"]
    _load_fails(tmp_path, a, "conv1.thresh: missing")
    a = _arrays(net)
    a["fc0.weight"] = np.ones((400, 600), dtype=np.int8)
    a["fc0.bias"] = np.ones(600, dtype=np.int8)
    _load_fails(tmp_path, a, "layer 0 has 600 neurons: 19 vertical partitions of 32, more "
                             "than the 16 allowed")
    a = _arrays(net)
    a["conv0.weight"] = a["conv0.weight"].astype(np.int16)
    _load_fails(tmp_path, a, "conv0.weight: dtype must be int8, not int16")
    a = _arrays(net)
    a["fc.gains"] = np.array([30.0, -1.0, 10.0])
    _load_fails(tmp_path, a, "fc.gains: must be finite and positive")


def test_not_an_npz(tmp_path):
    p = tmp_path / "x.npz"
    p.write_text("no")
    with pytest.raises(imac_net.ImacNetFormatError, match="not a readable .npz file"):
        imac_net.load_net(p)


def test_acc_bound_of_convolutions(net):
    # The int32 accumulator of golden's multiply convolutions holds both layers.
    for key in ("conv0.weight", "conv1.weight"):
        fan_in = int(np.prod(net.arrays[key].shape[1:]))
        assert L.conv_acc_bound("mul", fan_in) < 2 ** 31
    assert math.isfinite(net.input_scale)


def test_a_truncated_zip(tmp_path):
    """A zip's local header and nothing else (an interrupted copy): zipfile's BadZipFile was a
    traceback."""
    p = tmp_path / "x.npz"
    p.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(imac_net.ImacNetFormatError, match="not a readable .npz file"):
        imac_net.load_net(p)
