"""Fuzzing the inputs a user hands the tools (issue 17): model files, IDX data sets and command
lines, generated from their formats by hypothesis strategies (not a fixed list of bad cases).

The property, for every generated input: either a clean result or the tool's own one-line
error (``ModelFormatError`` / ``DatasetError`` in-process; exit code 2 and one ``error:`` line
from a command), and no file changed outside the output path. A model file that loads must also
run through inference: loading is the validation (class 4 of the issue: a file that loads and
then dies in inference).

Bounded for ``make test``: ``SPINPIM_FUZZ_EXAMPLES`` (default 25) examples per in-process
property, an eighth of that (at least 3) per command-line property, which starts a Python process
per example. ``make fuzz`` is the long profile (``FUZZ_EXAMPLES``, default 1000).
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from golden import datasets
from golden.model import ModelFormatError, bundled_model_path, infer_int, load_model

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("SPINPIM_FUZZ_EXAMPLES") or 25)
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))
SLOW = settings(SETTINGS, max_examples=max(3, EXAMPLES // 8))

#: The arrays of a valid model (the bundled digits AdderNet, the smallest): the fuzzer edits it.
with np.load(bundled_model_path("digits_addernet"), allow_pickle=False) as _z:
    BASE = {k: _z[k] for k in _z.files}
DIGITS = datasets.load_dataset("digits", "test")[0][:3]


# -- model files ------------------------------------------------------------------------------

def _values(dtype_kind):
    """Replacement values that are wrong in some way for a numeric array."""
    return st.sampled_from([np.nan, np.inf, -np.inf, -1, 0, 1, 2**31 - 1, -2**31, 2**40,
                            -2**62, 255, 256, -129, 1e30, 0.5])


@st.composite
def model_edits(draw):
    """A model's arrays with one to three edits of the kinds the format can be broken in."""
    arrays = dict(BASE)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(sorted(arrays)))
        a = arrays[key]
        how = draw(st.sampled_from(["drop", "dtype", "shape", "value", "scalar", "string",
                                    "extra", "empty"]))
        if how == "drop":
            del arrays[key]
        elif how == "dtype":
            to = draw(st.sampled_from(["int8", "uint8", "int16", "int32", "int64", "float32",
                                       "float64", "bool", "U3"]))
            try:
                arrays[key] = a.astype(to)
            except (ValueError, TypeError, OverflowError):
                arrays[key] = np.zeros(a.shape, dtype=to)
        elif how == "shape":
            shape = draw(st.lists(st.integers(0, 70), min_size=0, max_size=5))
            arrays[key] = np.zeros(shape, dtype=a.dtype if a.dtype.kind != "U" else "U3")
        elif how == "value" and a.dtype.kind in "iuf" and a.size:
            v = draw(_values(a.dtype.kind))
            b = a.astype(np.float64 if isinstance(v, float) else np.int64).copy()
            idx = draw(st.integers(0, a.size - 1))
            b.flat[idx] = v
            if a.dtype.kind == "f":
                arrays[key] = b.astype(a.dtype)
            else:
                arrays[key] = b                 # the value does not fit the original dtype
        elif how == "scalar":
            arrays[key] = np.array(draw(st.integers(-2**63, 2**63 - 1)))
        elif how == "string":
            arrays[key] = np.array(draw(st.text(max_size=12)))
        elif how == "extra":
            arrays[f"layer{draw(st.integers(0, 12))}.junk"] = np.zeros(3)
        elif how == "empty":
            arrays[key] = np.zeros((0,), dtype=a.dtype)
    return arrays


def _save(arrays, path: Path) -> None:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    path.write_bytes(buf.getvalue())


def _check_model_file(path: Path) -> str:
    """Load ``path``: a ModelFormatError, or a model inference runs on (digits images)."""
    try:
        model = load_model(path)
    except ModelFormatError as e:
        assert "\n" not in str(e), f"a multi-line error: {e}"
        return "refused"
    if tuple(model.input_shape) == DIGITS.shape[1:]:
        infer_int(model, DIGITS)          # must not raise: loading is the validation
    return "loaded"


@SETTINGS
@given(arrays=model_edits())
def test_model_files(tmp_path_factory, arrays):
    path = tmp_path_factory.mktemp("model") / "m.npz"
    _save(arrays, path)
    _check_model_file(path)


def _zip_with_member(path, name, member):
    buf = io.BytesIO()
    np.savez(buf, **{k: v for k, v in BASE.items() if k != name})
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr(f"{name}.npy", member)
    path.write_bytes(buf.getvalue())


@SETTINGS
@given(data=st.binary(max_size=600), name=st.sampled_from(["spinpim_format", "name",
                                                           "layer0.weight", "num_layers"]))
def test_model_zip_members(tmp_path_factory, data, name):
    """A zip whose member has the .npy magic and then arbitrary bytes (a broken header, a
    truncated array)."""
    path = tmp_path_factory.mktemp("zip") / "m.npz"
    _zip_with_member(path, name, np.lib.format.magic(1, 0) + data)
    _check_model_file(path)


def test_model_zip_member_without_npy_magic(tmp_path):
    """Found by this suite: numpy's NpzFile returns the raw bytes of a member without the .npy
    magic, and load_model failed with AttributeError ('bytes' object has no attribute 'dtype'),
    a traceback in every tool; now a one-line ModelFormatError."""
    path = tmp_path / "m.npz"
    _zip_with_member(path, "name", b"")
    _check_model_file(path)


# -- IDX data sets ----------------------------------------------------------------------------

@st.composite
def idx_files(draw):
    """IDX bytes from the format: magic (0, 0, type, ndim), big-endian dims, the data; each
    part right or wrong."""
    type_byte = draw(st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0D, 0x00]))
    dims = draw(st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)),
                         min_size=0, max_size=4))
    size = int(np.prod(dims, dtype=object)) if dims else 1
    n = draw(st.sampled_from(["exact", "short", "long"]))
    count = min(size, 4096) + {"exact": 0, "short": -1, "long": 3}[n]
    head = bytes([0, draw(st.sampled_from([0, 0, 1])), type_byte, len(dims)])
    head += b"".join(d.to_bytes(4, "big") for d in dims)
    if draw(st.booleans()):
        head = head[:draw(st.integers(0, len(head)))]
    body = bytes(draw(st.binary(min_size=max(count, 0), max_size=max(count, 0))))
    return head + body, dims, size


@SETTINGS
@given(spec=idx_files(), gz=st.booleans())
def test_idx_files(tmp_path_factory, spec, gz):
    data, dims, size = spec
    path = tmp_path_factory.mktemp("idx") / ("f.idx.gz" if gz else "f.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    try:
        arr = datasets.read_idx(path)
    except datasets.DatasetError as e:
        assert "\n" not in str(e)
        return
    assert list(arr.shape) == dims and arr.size == size and arr.dtype == np.uint8


@SETTINGS
@given(n=st.integers(0, 5), rows=st.integers(1, 4), labels=st.lists(st.integers(0, 255),
                                                                      max_size=6))
def test_fashion_directory(tmp_path_factory, n, rows, labels):
    """A Fashion-MNIST directory whose images and labels disagree in count, shape or range."""
    d = tmp_path_factory.mktemp("fashion")

    def idx(arr):
        arr = np.asarray(arr, np.uint8)
        return bytes([0, 0, 8, arr.ndim]) + b"".join(
            int(s).to_bytes(4, "big") for s in arr.shape) + arr.tobytes()

    (d / "t10k-images-idx3-ubyte").write_bytes(idx(np.zeros((n, rows, 28), np.uint8)))
    (d / "t10k-labels-idx1-ubyte").write_bytes(idx(labels))
    try:
        x, y = datasets.load_fashion_mnist("test", path=d)
    except datasets.DatasetError as e:
        assert "\n" not in str(e)
        return
    assert len(x) == len(y) == n == len(labels) and all(v <= 9 for v in labels)


# -- command lines ----------------------------------------------------------------------------

def _git_state():
    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=REPO,
                       capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else None


def _value():
    return st.one_of(st.sampled_from(["0", "-1", "1", "3", "all", "", "1e3", "2**40", "nan",
                                      "99999999999999999999", "digits", "fashion_mnist",
                                      "nand_spin", "jeit_stt", "write_free", "abs_diff",
                                      "icarus", "verilator", "..", "/", "-n"]),
                     st.text(alphabet="abc019-_./ ", max_size=8))


#: The options of ``sim.cli run`` with the golden backend (the rtl backend would build a
#: simulator per example): each present or not, with a value from :func:`_value`.
RUN_OPTIONS = ("--model", "--dataset", "-n", "--preset", "--dataflow", "--sim", "--mat")


@st.composite
def run_command_lines(draw):
    argv = ["run", "--backend", "golden", "--quiet"]
    for opt in RUN_OPTIONS:
        if draw(st.booleans()):
            argv += [opt, draw(_value())]
    if "--model" not in argv:
        argv += ["--model", "digits_addernet"]
    if "-n" not in argv:
        argv += ["-n", "5"]
    return argv


def _check_command(cmd, out_dir: Path, before):
    r = subprocess.run([sys.executable, "-m", *cmd], cwd=REPO, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode in (0, 2), (cmd, r.returncode, r.stderr[-2000:])
    if r.returncode == 2:
        lines = r.stderr.strip().splitlines()
        one_line = len(lines) == 1 and lines[0].startswith("error:")
        usage = bool(lines) and lines[0].startswith("usage:") and ": error: " in lines[-1]
        assert one_line or usage, (cmd, r.stderr)     # usage: argparse's own two lines
    assert _git_state() == before, f"{cmd}: changed files in the repository"
    left = {p.name for p in out_dir.rglob("*")} - {"m.npz", "r.json", "c.toml"}
    assert not left, f"{cmd}: files left beside the output: {sorted(left)}"
    return r


@SLOW
@given(argv=run_command_lines())
def test_run_command_lines(tmp_path_factory, argv):
    out = tmp_path_factory.mktemp("run")
    before = _git_state()
    n = argv[argv.index("-n") + 1]
    if n == "all":                       # the whole test split: correct, but slow
        argv[argv.index("-n") + 1] = "5"
    _check_command(["sim.cli", *argv, "--report", str(out / "r.json")], out, before)


@SLOW
@given(arrays=model_edits(), extra=st.sampled_from([[], ["--dataset", "digits"]]))
def test_run_on_malformed_model_files(tmp_path_factory, arrays, extra):
    out = tmp_path_factory.mktemp("runmodel")
    model = out / "m.npz"
    _save(arrays, model)
    before = _git_state()
    r = _check_command(["sim.cli", "run", "--backend", "golden", "--quiet", "--model",
                        str(model), "-n", "3", *extra, "--report", str(out / "r.json")],
                       out, before)
    if r.returncode == 0:
        assert (out / "r.json").is_file()


@pytest.mark.parametrize("argv", [
    ["sim.cli", "run", "--backend", "golden", "--model", "digits_addernet", "-n", "-3"],
    ["sim.cli", "run", "--backend", "golden", "--model", "/nonexistent/x.npz"],
])
def test_known_bad_command_lines_are_one_line(tmp_path, argv):
    """Two fixed examples of the command-line check itself."""
    before = _git_state()
    r = _check_command([*argv, "--report", str(tmp_path / "r.json")], tmp_path, before)
    assert r.returncode == 2


# -- configuration files (--config, sim.config_file) ------------------------------------------

def _toml_value(value) -> str:
    """``value`` as TOML text (strings as JSON-escaped basic strings: the same escapes)."""
    import json
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {float("inf"): "inf", float("-inf"): "-inf"}.get(value, "nan" if value != value
                                                                else repr(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    return str(value)                      # dates, times: already TOML literals


def _config_values():
    """Values a field may be given: from the configuration's types and ranges, right or wrong
    (ints at and beyond every bound, floats that are not finite, names, arrays, tables)."""
    from rtl.config import DATAFLOWS, STALL_OPS, TECHNOLOGIES, preset_names
    names = st.sampled_from([*DATAFLOWS, *TECHNOLOGIES, *preset_names(), *STALL_OPS, "",
                             "abs-diff", "NAND_SPIN"])
    ints = st.one_of(st.integers(-3, 70), st.sampled_from(
        [127, 128, 1023, 1024, 1025, 4095, 4096, 4097, 65535, 65536, 65537, 2**31, 2**32,
         2**63 - 1, -2**63]), st.integers(-2**63, 2**63 - 1))
    floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                       st.sampled_from([0.0, 1.0, 0.999999, 1e-300, 133.0, 10000.0, 10000.5]))
    scalars = st.one_of(ints, floats, st.booleans(), names, st.text(max_size=10),
                        st.sampled_from(["1979-05-27", "07:32:00", "1979-05-27T07:32:00Z"]))
    tables = st.dictionaries(st.one_of(st.sampled_from(list(STALL_OPS)), st.text(max_size=6)),
                             st.one_of(ints, floats, names), max_size=4)
    return st.recursive(st.one_of(scalars, tables),
                        lambda inner: st.lists(inner, max_size=4), max_leaves=6)


@st.composite
def config_files(draw):
    """The text of a configuration file: ``preset`` and configuration fields (or near
    misses) with values from :func:`_config_values`; or such a file with its bytes edited
    (cut, a byte changed, inserted or dropped, a nesting deeper than any parser's stack)."""
    from sim.config_file import CONFIG_KEYS
    keys = st.one_of(st.sampled_from(CONFIG_KEYS), st.sampled_from(
        ["row", "Rows", "data-words", "stalls", "seed", ""]), st.text(max_size=8))
    lines = []
    for key, value in draw(st.dictionaries(keys, _config_values(), max_size=6)).items():
        import json
        lines.append(f"{json.dumps(key)} = {_toml_value(value)}")
    text = "\n".join(lines).encode()
    how = draw(st.sampled_from(["as is", "as is", "cut", "flip", "insert", "drop", "deep",
                                "binary"]))
    if how == "cut" and text:
        text = text[:draw(st.integers(0, len(text) - 1))]
    elif how in ("flip", "insert", "drop") and text:
        i = draw(st.integers(0, len(text) - 1))
        byte = bytes([draw(st.integers(0, 255))])
        text = (text[:i] + byte + text[i + 1:] if how == "flip" else
                text[:i] + byte + text[i:] if how == "insert" else text[:i] + text[i + 1:])
    elif how == "deep":
        depth = draw(st.sampled_from([10, 1000, 5000]))
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a = ", "}")]))
        text += b"\nrows = " + (opener * depth + "1" + closer * depth).encode()
    elif how == "binary":
        text = draw(st.binary(max_size=200))
    return text


@SETTINGS
@given(text=config_files(), preset_name=st.sampled_from([None, "nand_spin", "jeit_stt"]))
def test_config_files(tmp_path_factory, text, preset_name):
    """Any configuration file: a valid configuration or a one-line ConfigError, never
    another exception."""
    from rtl.config import AcceleratorConfig
    from sim.config_file import ConfigError, load_config_file
    path = tmp_path_factory.mktemp("config") / "c.toml"
    path.write_bytes(text)
    try:
        name, config = load_config_file(path, preset_name=preset_name)
    except ConfigError as e:
        assert "\n" not in str(e), f"a multi-line error: {e}"
        assert str(e).startswith(f"--config {path}"), f"names no file: {e}"
        return
    assert isinstance(config, AcceleratorConfig)
    assert config == dataclasses.replace(config)      # it validates again, unchanged
    assert preset_name is None or name == preset_name


def test_config_file_nested_too_deep(tmp_path):
    """Found by this suite: an array nested some thousand levels deep made tomllib raise
    RecursionError, a traceback in every tool; now a one-line ConfigError."""
    from sim.config_file import ConfigError, load_config_file
    path = tmp_path / "c.toml"
    path.write_text("rows = " + "[" * 5000 + "1" + "]" * 5000 + "\n")
    with pytest.raises(ConfigError, match=r"^--config .*: not valid TOML: .*nest"):
        load_config_file(path)


@SLOW
@given(text=config_files())
def test_run_with_config_files(tmp_path_factory, text):
    """``sim.cli run --config FILE`` (golden backend): exit 0 or 2 with one error line."""
    out = tmp_path_factory.mktemp("runconfig")
    (out / "c.toml").write_bytes(text)
    before = _git_state()
    _check_command(["sim.cli", "run", "--backend", "golden", "--quiet", "--model",
                    "digits_addernet", "-n", "3", "--config", str(out / "c.toml"), "--report",
                    str(out / "r.json")], out, before)


def test_idx_zero_dimension_hiding_huge_ones(tmp_path):
    """Found by test_idx_files: a zero dimension makes the data size 0 while the others ask
    numpy for an impossible shape; refused by the memory budget, not a ValueError."""
    from golden.datasets import DatasetError, read_idx
    path = tmp_path / "bad.idx"
    path.write_bytes(b'\x00\x00\x08\x03\x00\x00\x00\x00\xb5\x04\xc4\x17\xb5\x05"Q')
    with pytest.raises(DatasetError, match=r"declares shape \[0, 3036988439, 3037012561\]"):
        read_idx(path)
