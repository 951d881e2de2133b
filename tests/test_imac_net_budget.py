"""Resource bounds of CPU-IMAC network files (``golden.imac_net``, issue 17 class 5): the sizes
a file asks for are checked against the stated budgets before anything is allocated, with a
one-line ``ImacNetFormatError``."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

from golden import imac_net
from golden.imac_net import ImacNetFormatError

NET = "fashion_lenet_imac"


def _arrays():
    with np.load(imac_net.bundled_net_path(NET), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _save(arrays, path, extra=None):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    if extra:
        with zipfile.ZipFile(buf, "a", compression=zipfile.ZIP_DEFLATED) as z:
            for name, data in extra.items():
                z.writestr(name, data)
    path.write_bytes(buf.getvalue())


def _refused(path, match):
    with pytest.raises(ImacNetFormatError, match=match) as e:
        imac_net.load_net(path)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_bundled_net_is_within_the_budgets():
    arrays = _arrays()
    assert sum(a.nbytes for a in arrays.values()) < imac_net.MAX_FILE_BYTES // 1000
    imac_net.load_net(imac_net.bundled_net_path(NET))


def test_zip_bomb_refused_by_its_headers_before_decompression(tmp_path, monkeypatch):
    """A member that decompresses to more than the budget (here lowered to 1 MiB: 4 MiB of
    zeros, a few kB in the file) is refused from the zip headers: nothing is decompressed
    (np.load never runs)."""
    path = tmp_path / "bomb.npz"
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.zeros(4 << 20, np.uint8))
    _save(_arrays(), path, {"conv0.pad.npy": buf.getvalue()})
    assert path.stat().st_size < 1 << 20

    def no_load(*a, **k):
        raise AssertionError("np.load ran: the archive was decompressed")
    monkeypatch.setattr(imac_net, "MAX_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(imac_net.np, "load", no_load)
    msg = _refused(path, r"memory budget allows at most 1048576 "
                         r"\(golden.imac_net.MAX_FILE_BYTES\)")
    assert "conv0.pad.npy" in msg


def test_npy_header_claiming_more_than_its_member(tmp_path):
    """An .npy header whose shape needs a terabyte (numpy would allocate it before reading)
    in a member of a few bytes."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "|i1", "fortran_order": False,
                                                  "shape": (1 << 40,)})
    arrays = _arrays()
    del arrays["conv0.weight"]
    path = tmp_path / "big.npz"
    _save(arrays, path, {"conv0.weight.npy": header.getvalue()
                         + b"\0" * 16})
    _refused(path, r"'conv0.weight.npy' claims shape \(1099511627776,\) .* but holds \d+ bytes")


@pytest.mark.parametrize("data", [b"", b"\x93NUMPY\x09\x00", b"\x93NUMPY\x01\x00\xff\xff{"])
def test_broken_npy_header(tmp_path, data):
    arrays = _arrays()
    del arrays["name"]
    path = tmp_path / "h.npz"
    _save(arrays, path, {"name.npy": data})
    _refused(path, r"array 'name.npy' has no readable .npy header")


def test_member_that_is_not_an_array(tmp_path):
    path = tmp_path / "x.npz"
    _save(_arrays(), path, {"notes.txt": b"hello"})
    _refused(path, r"holds 'notes.txt', which is not an array")


@pytest.mark.parametrize("shape", [(1, 4096, 4096), (200, 60, 60), (1, 2**40, 2**40)])
def test_input_shape_beyond_the_image_budget(tmp_path, shape):
    """An input shape whose convolutions would need more than MAX_IMAGE_ELEMENTS elements per
    image is refused at load, before inference allocates anything (the conv weights must fit
    the channel count C, so the first layer's C is changed with them)."""
    arrays = _arrays()
    c = shape[0]
    arrays["input_shape"] = np.array(shape, np.int64)
    for key in ("conv0.weight", "conv0.float.weight"):
        w = arrays[key]
        arrays[key] = np.zeros((w.shape[0], c, *w.shape[2:]), w.dtype)
    path = tmp_path / "wide.npz"
    _save(arrays, path)
    _refused(path, r"^input_shape: .* elements per image in the conv\d (patches|output|padded "
                   r"input); the memory budget allows at most 1048576")


def test_image_budget_counts_exactly():
    """The largest tensor of the bundled LeNet (28x28, 6 and 16 channels): conv0's patches,
    28 * 28 * 1 * 25 = 19600 elements; the budget check accepts it and refuses one element
    less of budget."""
    imac_net._check_image_elements((1, 28, 28), 6, 16)
    old = imac_net.MAX_IMAGE_ELEMENTS
    try:
        imac_net.MAX_IMAGE_ELEMENTS = 19600
        imac_net._check_image_elements((1, 28, 28), 6, 16)
        imac_net.MAX_IMAGE_ELEMENTS = 19599
        with pytest.raises(ImacNetFormatError, match="needs 19600 elements per image in the "
                                                     "conv0 patches"):
            imac_net._check_image_elements((1, 28, 28), 6, 16)
    finally:
        imac_net.MAX_IMAGE_ELEMENTS = old
