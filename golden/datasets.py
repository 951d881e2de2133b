"""Offline data sets: Fashion-MNIST from IDX files, and scikit-learn's bundled digits.

Both loaders return ``(images, labels)`` with images as uint8 [N, 1, H, W] and labels as int64 [N].
"""

from __future__ import annotations

import gzip
import math
import os
from pathlib import Path

import numpy as np

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Environment variable that overrides :data:`FASHION_MNIST_DIR`.
FASHION_MNIST_ENV = "SPINPIM_FASHION_MNIST"
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")
SPLITS = ("train", "test")
DIGITS_TEST_SIZE = 360
#: Memory budget of one IDX file: at most this many bytes are read (decompressed). ASSUMPTION:
#: 256 MiB, 5x Fashion-MNIST's largest file (train images, 47 MB).
MAX_IDX_BYTES = 256 << 20


class DatasetError(RuntimeError):
    """A data set is missing or malformed; the message says how to fix it."""


def read_idx(path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) of unsigned bytes."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read(MAX_IDX_BYTES + 1)        # a gzip bomb stops at the budget
    except (OSError, EOFError) as e:
        raise DatasetError(f"cannot read IDX file {str(path)!r}: {e}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DatasetError(f"{str(path)!r} is not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DatasetError(f"{str(path)!r} holds IDX type 0x{data[2]:02x}; only unsigned bytes "
                           f"(0x08) are supported")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{str(path)!r} is truncated in its header")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    size = math.prod(dims)                          # exact: no int64 overflow
    extent = math.prod(max(d, 1) for d in dims)     # a zero dimension hides the others
    if max(size, extent) > MAX_IDX_BYTES or len(data) > MAX_IDX_BYTES:
        raise DatasetError(f"{str(path)!r} declares shape {dims} ({size} bytes of data); the "
                           f"memory budget allows at most {MAX_IDX_BYTES} bytes per IDX file "
                           f"(golden.datasets.MAX_IDX_BYTES)")
    if len(data) - header != size:
        raise DatasetError(f"{str(path)!r} should hold {size} bytes of data for shape {dims}, "
                           f"but holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def fashion_mnist_dir(path=None) -> Path:
    """The directory to read Fashion-MNIST from: ``path``, else $SPINPIM_FASHION_MNIST, else
    the Debian package's location."""
    if path is not None:
        return Path(path)
    env = os.environ.get(FASHION_MNIST_ENV)
    return Path(env) if env else FASHION_MNIST_DIR


def load_fashion_mnist(split: str = "test", path=None):
    """Fashion-MNIST ``split`` ('train' 60000 or 'test' 10000 images of 1x28x28).

    Raises DatasetError, saying how to install the data, when the files are absent.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    d = fashion_mnist_dir(path)
    prefix = "train" if split == "train" else "t10k"
    files = []
    for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
        cands = [d / f"{prefix}-{kind}.gz", d / f"{prefix}-{kind}"]
        found = next((c for c in cands if c.is_file()), None)
        if found is None:
            raise DatasetError(
                f"Fashion-MNIST file {prefix}-{kind}[.gz] not found in {str(d)!r}. Install it "
                f"with 'apt-get install dataset-fashion-mnist' (or 'make install'), or point "
                f"${FASHION_MNIST_ENV} at a directory holding the IDX files.")
        files.append(found)
    images = read_idx(files[0])
    labels = read_idx(files[1])
    if images.ndim != 3 or labels.ndim != 1 or images.shape[0] != labels.shape[0]:
        raise DatasetError(f"Fashion-MNIST {split} images {images.shape} and labels "
                           f"{labels.shape} do not match")
    bad = np.flatnonzero(labels >= len(FASHION_CLASSES))
    if bad.size:
        raise DatasetError(f"{str(files[1])!r}: the label of image {bad[0]} is "
                           f"{int(labels[bad[0]])}; "
                           f"Fashion-MNIST labels are class indices 0 .. "
                           f"{len(FASHION_CLASSES) - 1} ({bad.size} of {labels.size} are not)")
    return images[:, None, :, :].copy(), labels.astype(np.int64)


def load_digits(split: str = "test"):
    """scikit-learn's bundled 8x8 digits (1797 images, pixel values 0..16).

    The split is fixed: a seeded permutation, the last 360 images are 'test'. Pixels stay 0..16
    (a uint8 input with scale 1/16).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    from sklearn.datasets import load_digits as _sk_digits  # lazy: keeps `import golden` light

    d = _sk_digits()
    images = d.images.astype(np.uint8)[:, None, :, :]
    labels = d.target.astype(np.int64)
    order = np.random.default_rng(20261123).permutation(len(labels))
    cut = len(labels) - DIGITS_TEST_SIZE
    idx = order[:cut] if split == "train" else order[cut:]
    return images[idx].copy(), labels[idx].copy()


def load_dataset(name: str, split: str = "test"):
    """``name`` is 'fashion_mnist' or 'digits'."""
    if name == "fashion_mnist":
        return load_fashion_mnist(split)
    if name == "digits":
        return load_digits(split)
    raise ValueError(f"dataset must be 'fashion_mnist' or 'digits', not {name!r}")
