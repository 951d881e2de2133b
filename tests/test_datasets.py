"""Data set loaders: IDX parsing on files written here, the installed Fashion-MNIST, digits, and
every error path."""

import gzip
import struct

import numpy as np
import pytest

from golden import datasets as D


def write_idx(path, arr, *, compress=False, dtype_code=0x08, truncate=0):
    header = struct.pack(">BBBB", 0, 0, dtype_code, arr.ndim)
    header += b"".join(struct.pack(">I", d) for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if truncate:
        data = data[:-truncate]
    (gzip.open if compress else open)(path, "wb").write(data)
    return path


@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path, compress):
    a = np.random.default_rng(0).integers(0, 256, (5, 3, 4)).astype(np.uint8)
    p = write_idx(tmp_path / ("a.idx" + (".gz" if compress else "")), a, compress=compress)
    assert (D.read_idx(p) == a).all()


def test_read_idx_errors(tmp_path):
    a = np.zeros((2, 2), np.uint8)
    with pytest.raises(D.DatasetError, match="only unsigned bytes"):
        D.read_idx(write_idx(tmp_path / "f.idx", a, dtype_code=0x0D))
    with pytest.raises(D.DatasetError, match="should hold 4 bytes of data for shape \\[2, 2\\]"):
        D.read_idx(write_idx(tmp_path / "t.idx", a, truncate=1))
    (tmp_path / "x.idx").write_bytes(b"\x01\x02\x03")
    with pytest.raises(D.DatasetError, match="not an IDX file"):
        D.read_idx(tmp_path / "x.idx")
    with pytest.raises(D.DatasetError, match="cannot read IDX file"):
        D.read_idx(tmp_path / "missing.idx")


def test_fashion_mnist_from_a_directory(tmp_path):
    imgs = np.random.default_rng(1).integers(0, 256, (7, 28, 28)).astype(np.uint8)
    labels = np.arange(7, dtype=np.uint8) % 10
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs, compress=True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    x, y = D.load_fashion_mnist("test", path=tmp_path)
    assert x.shape == (7, 1, 28, 28) and x.dtype == np.uint8 and (x[:, 0] == imgs).all()
    assert y.dtype == np.int64 and (y == labels).all()


def test_fashion_mnist_env_override(tmp_path, monkeypatch):
    monkeypatch.setenv(D.FASHION_MNIST_ENV, str(tmp_path))
    with pytest.raises(D.DatasetError) as e:
        D.load_fashion_mnist("train")
    msg = str(e.value)
    assert str(tmp_path) in msg and "apt-get install dataset-fashion-mnist" in msg
    assert D.FASHION_MNIST_ENV in msg


def test_fashion_mnist_mismatched_files(tmp_path):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.zeros(4, np.uint8))
    with pytest.raises(D.DatasetError, match="do not match"):
        D.load_fashion_mnist("test", path=tmp_path)


def test_installed_fashion_mnist():
    try:
        x, y = D.load_fashion_mnist("test")
    except D.DatasetError as e:
        pytest.skip(str(e))
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert np.bincount(y).tolist() == [1000] * 10
    xt, yt = D.load_fashion_mnist("train")
    assert xt.shape == (60000, 1, 28, 28) and np.bincount(yt).tolist() == [6000] * 10


def test_digits_split_is_fixed_and_disjoint():
    xtr, ytr = D.load_digits("train")
    xte, yte = D.load_digits("test")
    assert xte.shape == (360, 1, 8, 8) and xtr.shape == (1437, 1, 8, 8)
    assert xte.dtype == np.uint8 and int(xte.max()) == 16
    x2, y2 = D.load_digits("test")
    assert (x2 == xte).all() and (y2 == yte).all()
    tr = {x.tobytes() + bytes([y]) for x, y in zip(xtr, ytr, strict=True)}
    te = [x.tobytes() + bytes([y]) for x, y in zip(xte, yte, strict=True)]
    # sklearn's digits has a handful of exact duplicate images; the split itself is disjoint
    assert sum(t in tr for t in te) < 10


@pytest.mark.parametrize("call,msg", [
    (lambda: D.load_fashion_mnist("val"), "split must be one of train, test, not 'val'"),
    (lambda: D.load_digits("dev"), "split must be one of train, test, not 'dev'"),
    (lambda: D.load_dataset("cifar10"), "dataset must be 'fashion_mnist' or 'digits'"),
])
def test_bad_arguments(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()
