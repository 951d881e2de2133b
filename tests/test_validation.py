"""Bad input of every class (issue 17: silent wrong results, tracebacks for user mistakes,
resource bounds, ranges that lie, misleading messages): each is refused with one line that names
the parameter, array or layer, the bad value and what is allowed; the command lines exit with
code 2 (130 for Ctrl-C) and print no traceback."""

import dataclasses
import gzip
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from golden import datasets
from golden import model as M
from golden.model import ModelFormatError, bundled_model_path, load_model, model_arrays

REPO = Path(__file__).resolve().parent.parent


def one_line_error(capsys) -> str:
    """The captured stderr: exactly one line, no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def digits_arrays() -> dict:
    return dict(model_arrays(load_model(bundled_model_path("digits_addernet"))))


def write_npz(path: Path, arrays: dict) -> Path:
    """Write ``arrays`` as an .npz file without any validation (a hand-made model file)."""
    np.savez(path, **arrays)
    return path


def logits_layer(arrays) -> int:
    return int(arrays["num_layers"]) - 1


def cli_run(*args):
    from sim.cli import main
    return main(["run", "--quiet", *args])


# ----------------------------------------------------------------------------------------------
# Silent wrong results: non-finite float parameters, a negative variance


@pytest.mark.parametrize("name, index, value, match", [
    ("float.weight", (0, 0), np.nan, r"'layer{i}\.float\.weight' must hold finite numbers, but "
                                     r"element \[0, 0(, 0, 0)?\] is nan"),
    ("float.weight", (1, 0), np.inf, r"'layer{i}\.float\.weight' must hold finite numbers, but "
                                     r"element \[1, 0(, 0, 0)?\] is inf"),
    ("float.bn_gamma", (2,), -np.inf, r"'layer{i}\.float\.bn_gamma' must hold finite numbers, "
                                      r"but channel 2 is -inf"),
    ("float.bn_var", (3,), np.nan, r"'layer{i}\.float\.bn_var' must hold finite numbers, but "
                                   r"channel 3 is nan"),
    ("float.bn_var", (1,), -0.5, r"'layer{i}\.float\.bn_var' is a variance and must be >= 0, "
                                 r"but channel 1 is -0.5"),
    ("float.bn_eps", (), 0.0, r"'layer{i}\.float\.bn_eps' must be > 0 .* not 0.0"),
    ("float.bias", (4,), np.nan, r"'layer{i}\.float\.bias' must hold finite numbers, but "
                                 r"channel 4 is nan"),
])
def test_non_finite_float_parameters_are_refused(tmp_path, capsys, name, index, value, match):
    arrays = digits_arrays()
    i = logits_layer(arrays) if name == "float.bias" else 0
    key = f"layer{i}.{name}"
    a = np.array(arrays[key])
    idx = index if a.ndim else ()
    if name == "float.weight":
        idx = index + (0,) * (a.ndim - 2)
    a[idx] = value
    arrays[key] = a
    path = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(ModelFormatError, match=match.format(i=i)):
        load_model(path)
    assert cli_run("--model", str(path), "--dataset", "digits", "-n", "2",
                   "--report", str(tmp_path / "r.json")) == 2
    line = one_line_error(capsys)
    assert key in line
    assert not (tmp_path / "r.json").exists()


# ----------------------------------------------------------------------------------------------
# Every bound inference relies on, checked at load: the logits bias


def test_logits_bias_near_int32_max_is_refused_at_load(tmp_path, capsys):
    arrays = digits_arrays()
    i = logits_layer(arrays)
    bias = np.array(arrays[f"layer{i}.bias"])
    bias[7] = np.iinfo(np.int32).max - 10
    arrays[f"layer{i}.bias"] = bias
    path = write_npz(tmp_path / "big_bias.npz", arrays)
    w = arrays[f"layer{i}.weight"]
    fan_in = int(np.prod(w.shape[1:]))
    # an independent bound: mul_linear terms x*w with x in [0, 255] and w in [-128, 127]
    hi = fan_in * 255 * 127
    with pytest.raises(ModelFormatError, match=(
            rf"array 'layer{i}\.bias' channel 7 is {bias[7]}: .*fan-in {fan_in}.* can reach "
            rf"{int(bias[7]) + hi}, outside the signed 32-bit range; allowed bias: "
            rf"\[{-(1 << 31) + fan_in * 255 * 128}, {(1 << 31) - 1 - hi}\]")):
        load_model(path)
    assert cli_run("--model", str(path), "--dataset", "digits", "-n", "2",
                   "--report", str(tmp_path / "r.json")) == 2
    assert f"layer{i}.bias' channel 7" in one_line_error(capsys)


def test_logits_bias_at_the_allowed_edge_loads_and_infers(tmp_path):
    """The bound is exact: the largest allowed bias loads and inference does not overflow."""
    arrays = digits_arrays()
    i = logits_layer(arrays)
    fan_in = int(np.prod(arrays[f"layer{i}.weight"].shape[1:]))
    bias = np.array(arrays[f"layer{i}.bias"])
    bias[0] = (1 << 31) - 1 - fan_in * 255 * 127
    arrays[f"layer{i}.bias"] = bias
    m = load_model(write_npz(tmp_path / "edge.npz", arrays))
    x, _ = datasets.load_digits("test")
    logits = M.infer_int(m, x[:4])
    assert logits.shape == (4, 10)


# ----------------------------------------------------------------------------------------------
# Resource bounds: sizes against the memory budget, zip members by their header


def test_padding_that_needs_too_much_memory_is_refused(tmp_path, capsys):
    arrays = digits_arrays()
    arrays["layer0.padding"] = np.int64(100_000)
    path = write_npz(tmp_path / "pad.npz", arrays)
    with pytest.raises(ModelFormatError, match=(
            rf"layer0 \(\w+\) needs \d+ elements per image for its \w[\w ]*\w .*at most "
            rf"{M.MAX_IMAGE_ELEMENTS} \(golden.model.MAX_IMAGE_ELEMENTS\)")):
        load_model(path)
    assert cli_run("--model", str(path), "--dataset", "digits") == 2
    assert "memory budget" in one_line_error(capsys)


def test_zip_members_are_checked_by_header_before_decompressing(tmp_path, monkeypatch):
    """A member whose header says it decompresses beyond the budget: refused without
    decompressing it (np.load is never reached). The file is small, its member is not."""
    path = tmp_path / "bomb.npz"
    size = M.MAX_FILE_BYTES + (1 << 20)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("spinpim_format.npy", "w", force_zip64=True) as f:
            chunk = bytes(1 << 20)
            for _ in range(size >> 20):
                f.write(chunk)
    assert path.stat().st_size < size // 100

    def boom(*a, **k):
        raise AssertionError("np.load reached: a member was decompressed before its check")
    monkeypatch.setattr(np, "load", boom)
    with pytest.raises(ModelFormatError, match=(
            rf"its arrays take {size} bytes once decompressed \(at 'spinpim_format.npy', "
            rf"{size} bytes, by the zip headers\); the memory budget allows at most "
            rf"{M.MAX_FILE_BYTES}")):
        load_model(path)


def test_zip_member_that_is_not_an_array_is_refused(tmp_path):
    path = write_npz(tmp_path / "m.npz", digits_arrays())
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", "hello")
    with pytest.raises(ModelFormatError, match="holds 'notes.txt', which is not an array"):
        load_model(path)


# ----------------------------------------------------------------------------------------------
# Misleading messages


def test_num_layers_out_of_range_names_num_layers(tmp_path):
    arrays = digits_arrays()
    n = int(arrays["num_layers"])
    arrays["num_layers"] = np.int64(-5)
    with pytest.raises(ModelFormatError, match=(
            rf"array 'num_layers' is -5; it must be in \[1, {M.MAX_LAYERS}\] \(the file holds "
            rf"arrays of {n} layers: layer0 .. layer{n - 1}\)")):
        load_model(write_npz(tmp_path / "m.npz", arrays))


def test_a_directory_as_model_is_called_a_directory(tmp_path, capsys):
    d = tmp_path / "models.npz"
    d.mkdir()
    assert cli_run("--model", str(d), "--dataset", "digits") == 2
    assert "is a directory; give the path of a .npz model file" in one_line_error(capsys)


# ----------------------------------------------------------------------------------------------
# Data sets: labels, IDX sizes


def write_idx(path: Path, data: np.ndarray) -> None:
    head = bytes([0, 0, 8, data.ndim]) + b"".join(int(d).to_bytes(4, "big")
                                                   for d in data.shape)
    with gzip.open(path, "wb") as f:
        f.write(head + data.astype(np.uint8).tobytes())


def test_labels_outside_the_classes_are_refused(tmp_path, capsys, monkeypatch):
    rng = np.random.default_rng(3)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz",
              rng.integers(0, 256, (5, 28, 28)).astype(np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([0, 9, 12, 3, 200]))
    with pytest.raises(datasets.DatasetError, match=(
            r"the label of image 2 is 12; Fashion-MNIST labels are class indices 0 .. 9 "
            r"\(2 of 5 are not\)")):
        datasets.load_fashion_mnist("test", tmp_path)
    monkeypatch.setenv(datasets.FASHION_MNIST_ENV, str(tmp_path))
    assert cli_run("--model", "fashion_addernet", "-n", "all",
                   "--report", str(tmp_path / "r.json")) == 2
    assert "label of image 2 is 12" in one_line_error(capsys)
    assert not (tmp_path / "r.json").exists()


def test_idx_header_sizes_are_exact_integers(tmp_path):
    """Dimensions whose product overflows int64 are reported with their exact size."""
    path = tmp_path / "huge-idx3-ubyte"
    dims = [0xFFFFFFFF] * 3
    path.write_bytes(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in dims))
    size = 0xFFFFFFFF ** 3
    with pytest.raises(datasets.DatasetError, match=(
            rf"declares shape \[{dims[0]}, {dims[1]}, {dims[2]}\] \({size} bytes of data\); "
            rf"the memory budget allows at most {datasets.MAX_IDX_BYTES} bytes")):
        datasets.read_idx(path)


# ----------------------------------------------------------------------------------------------
# Command lines: a too-large -n, the golden backend's rtl options, --mat ranges


def test_run_refuses_too_large_n(tmp_path, capsys):
    n = len(datasets.load_digits("test")[1])
    assert cli_run("--model", "digits_addernet", "-n", str(n + 1),
                   "--report", str(tmp_path / "r.json")) == 2
    assert one_line_error(capsys) == (f"error: -n {n + 1}: the digits test split has only {n} "
                                      f"images; give -n between 1 and {n}, or 'all'")
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("args, msg", [
    (("--preset", "nope"), "--preset must be one of jeit_stt, nand_spin, dima_sot, imac_sot, "
                           "not 'nope'"),
    (("--sim", "modelsim"), "--sim must be one of icarus, verilator, not 'modelsim'"),
    (("--mat", "0"), "--mat must be an integer in [1, 32] (subarrays in lock-step for preset "
                     "nand_spin"),
    (("--preset", "dima_sot", "--mat", "9"), "--mat must be an integer in [1, 8] (subarrays in "
                                             "lock-step for preset dima_sot"),
    (("--dataflow", "sideways"), "--dataflow: dataflow must be one of"),
])
def test_golden_backend_refuses_bad_rtl_options(tmp_path, capsys, args, msg):
    assert cli_run("--model", "digits_addernet", "-n", "2", *args,
                   "--report", str(tmp_path / "r.json")) == 2
    assert msg in one_line_error(capsys)
    assert not (tmp_path / "r.json").exists()


def test_mat_range_is_what_the_compiler_can_do():
    """For every preset the --mat range ends where compilation starts to fail (an independent
    check: the compiler's own CompileError, not the range function)."""
    from rtl.config import preset, preset_names
    from sim.compile.compiler import CompileError, compile_model
    from sim.util import UserError, parse_mat
    import dataclasses

    from tests.test_limits import OLD_SIZES
    model = load_model(bundled_model_path("digits_addernet"))
    for name in preset_names():
        # at the old sizes' 12-bit operand bases, the column addresses the range is made of
        # (nand_spin's own data memory widens its bases to 14 bits, which would place more
        # columns than the range allows: the range stays the 12-bit one)
        config = dataclasses.replace(preset(name), **OLD_SIZES)
        assert config.isa_base_bits == 12
        hi = next(k for k in range(64, 0, -1) if _compiles(model, config, k))
        assert parse_mat(str(hi), config, name) == hi
        with pytest.raises(UserError, match=rf"--mat must be an integer in \[1, {hi}\] .*"
                                            rf"for preset {name}.*not '{hi + 1}'"):
            parse_mat(str(hi + 1), config, name)
        with pytest.raises(CompileError):
            compile_model(model, config, subarrays=hi + 1)


def _compiles(model, config, k) -> bool:
    from sim.compile.compiler import CompileError, compile_model
    try:
        compile_model(model, config, subarrays=k)
    except CompileError:
        return False
    return True


def test_subarrays_per_mat_has_an_upper_bound():
    from rtl.config import preset
    for name, hi in (("nand_spin", 32), ("dima_sot", 8)):
        dataclasses.replace(preset(name), subarrays_per_mat=hi)
        with pytest.raises(ValueError, match=rf"subarrays_per_mat must be in \[1, {hi}\] "
                                             rf"\(a mat row .* 4096 columns.*not {hi + 1}"):
            dataclasses.replace(preset(name), subarrays_per_mat=hi + 1)


def test_export_refuses_a_too_large_mat_up_front(tmp_path, capsys):
    from rtl.export import main
    out = tmp_path / "v"
    assert main(["--preset", "nand_spin", "--mat", "64", "--out", str(out)]) == 2
    line = one_line_error(capsys)
    assert "--mat must be an integer in [1, 32] for preset nand_spin" in line
    assert "not '64'" in line
    assert not out.exists()


def test_variation_refuses_too_large_rtl_n_and_mat_before_the_sweep(tmp_path, capsys,
                                                                      monkeypatch):
    from sim.analysis import variation

    def no_sweep(**kw):
        raise AssertionError("the sweep ran before the options were checked")
    monkeypatch.setattr(variation, "run", no_sweep)
    out = str(tmp_path / "v")
    n = len(datasets.load_digits("test")[1])
    assert variation.main(["--model", "digits_addernet", "--rtl-cv", "0.1", "--rtl-n",
                           str(n + 1), "--backend", "model", "--out", out]) == 2
    assert one_line_error(capsys) == (f"error: --rtl-n {n + 1}: the digits test split has only "
                                      f"{n} images; give --rtl-n between 1 and {n}")
    assert variation.main(["--model", "digits_addernet", "--technology", "sot", "--mat", "9",
                           "--out", out]) == 2
    assert "--mat must be an integer in [1, 8] (subarrays in lock-step for preset dima_sot" \
        in one_line_error(capsys)


def test_trials_beyond_the_memory_budget_are_refused(tmp_path, capsys):
    from sim.hw import device
    from sim.analysis import variation
    big = str(device.MAX_TRIALS + 1)
    assert variation.main(["--model", "digits_addernet", "--trials", big,
                           "--out", str(tmp_path / "v")]) == 2
    assert f"--trials must be an integer in [1, {device.MAX_TRIALS}] (the memory budget" \
        in one_line_error(capsys)
    assert device.main(["--trials", big]) == 2
    assert f"trials must be an int in [1, {device.MAX_TRIALS}] (the memory budget" \
        in one_line_error(capsys)
    with pytest.raises(ValueError, match="memory budget"):
        device.ber("stt", "read", trials=device.MAX_TRIALS + 1)


# ----------------------------------------------------------------------------------------------
# Tracebacks for user mistakes: the rtl backend on a model file not named .npz, WAVES, torch


def test_rtl_backend_takes_a_model_file_not_named_npz(tmp_path, capsys, monkeypatch):
    """The rtl backend runs the model file it was given (any name, as the golden backend
    reads it); the simulation itself is replaced by golden's logits here."""
    import sim.flows.rtl_backend as rb
    from golden import infer_int
    path = tmp_path / "my_model.bin"
    path.write_bytes(bundled_model_path("digits_addernet").read_bytes())
    seen = {}

    def fake_run_images(*, model_path, x, **kw):
        seen["model_path"] = Path(model_path)
        m = load_model(model_path)
        return {"images": [{"logits": [int(v) for v in row], "counters": {"cycles": 1},
                            "host_cycles": 0, "host_words": 0} for row in infer_int(m, x)],
                "wall_seconds": 1.0}
    monkeypatch.setattr(rb, "run_images", fake_run_images)
    monkeypatch.setattr(rb, "check_sim", lambda sim: sim)
    assert cli_run("--model", str(path), "--dataset", "digits", "-n", "2", "--backend", "rtl",
                   "--mat", "1", "--report", str(tmp_path / "r.json")) == 0
    assert seen["model_path"] == path
    assert (tmp_path / "r.json").is_file()


@pytest.mark.parametrize("value", ["2", "maybe"])
def test_bad_waves_is_refused_before_any_build(monkeypatch, capsys, value, tmp_path):
    from sim.flows.rtl_backend import check_sim
    from sim.util import UserError
    monkeypatch.setenv("WAVES", value)
    with pytest.raises(UserError, match=rf"WAVES \(environment\) must be 0 or 1 .*not "
                                        rf"'{value}'"):
        check_sim("icarus")
    assert cli_run("--model", "digits_addernet", "--backend", "rtl", "--sim", "icarus",
                   "--report", str(tmp_path / "r.json")) == 2
    assert "WAVES (environment) must be 0 or 1" in one_line_error(capsys)


@pytest.mark.parametrize("value", ["", "0", "1", "yes", "OFF"])
def test_valid_waves_values_pass(monkeypatch, value):
    from sim.util import check_waves
    monkeypatch.setenv("WAVES", value)
    check_waves()


@pytest.mark.parametrize("module, target", [("sim.flows.train", "make train"),
                                            ("sim.flows.train_imac", "make train-imac")])
def test_train_without_torch_is_one_line(tmp_path, module, target):
    """``python -m sim.flows.train`` (and ``sim.flows.train_imac``, whose import was unguarded
    until chk17) where torch cannot be imported (a stand-in package that fails the import, as a
    missing one does): one line saying how to install it, exit code 2."""
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake.parent), str(REPO)])}
    model = ["--model", "digits_addernet"] if module == "sim.flows.train" else []
    r = subprocess.run([sys.executable, "-m", module, *model, "--out", str(tmp_path / "out")],
                       capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"python -m {module}: error: training needs torch")
    assert f"'{target}'" in lines[0]
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------------------------
# Ctrl-C in every tool: one line, exit code 130


def _interrupt(*a, **k):
    raise KeyboardInterrupt


@pytest.mark.parametrize("module, target, argv, kept", [
    ("sim.cli", "golden.datasets.load_dataset", ["run", "--model", "digits_addernet"],
     "no report was written"),
    ("sim.analysis.variation", "sim.analysis.variation.run", ["--model", "digits_addernet"],
     "no report or figure was written"),
    ("sim.analysis.report", "sim.analysis.report._load_images", ["--preset", "nand_spin"],
     "no report was written"),
    ("sim.analysis.bench", "sim.analysis.bench.bench_golden_inference", [],
     "no results were written"),
    ("sim.hw.device", "sim.hw.device._report", [], "nothing was written"),
    ("rtl.export", "rtl.export.export", ["--preset", "nand_spin"], "--out is unchanged"),
    ("rtl.synth", "rtl.synth.synthesize", ["--preset", "nand_spin"], "no report was written"),
    # tools added after the first round (tracebacks until chk17)
    ("sim.hw.imac_energy", "sim.hw.imac_energy.headline", [], "no JSON was written"),
    ("sim.analysis.imac_variation", "sim.analysis.imac_variation.run", ["-n", "5"],
     "no report or figure was written"),
    ("sim.analysis.dima_repro", "sim.analysis.dima_repro.table", [],
     "nothing was written (it only prints)"),
    ("sim.analysis.route_compare", "sim.analysis.route_compare.compare", ["-n", "1"],
     "no JSON was written"),
    ("sim.compile.dima_map", "sim.compile.compiler.propose_config", [],
     "nothing was written (it only prints)"),
    ("sim.compile.nand_conv", "sim.compile.nand_conv.measure_layers", ["--images", "1"],
     "nothing was written (it only prints)"),
    ("sim.compile.nand_postproc", "sim.compile.nand_postproc.measure_model", [],
     "nothing was written (it only prints)"),
])
def test_ctrl_c_is_one_line_and_exit_130(tmp_path, capsys, monkeypatch, module, target, argv,
                                         kept):
    import importlib
    mod = importlib.import_module(module)
    owner, attr = target.rsplit(".", 1)
    monkeypatch.setattr(importlib.import_module(owner), attr, _interrupt)
    monkeypatch.chdir(tmp_path)             # the default outputs go under build/ here
    assert mod.main(argv) == 130
    line = one_line_error(capsys)
    assert line.startswith(f"python -m {module}") and "interrupted (Ctrl-C)" in line
    assert kept in line
    files = [p for p in tmp_path.rglob("*") if not p.is_dir()]
    assert files == []


@pytest.mark.parametrize(("signame", "code", "what"), [
    ("SIGINT", 130, "interrupted (Ctrl-C)"),
    # A job scheduler's kill; before, Python's default handler ended the process with no word.
    ("SIGTERM", 143, "terminated (SIGTERM)"),
])
def test_a_real_signal_is_one_line_and_keeps_nothing(tmp_path, signame, code, what):
    """The signal while the variation sweep runs (sent by a timer once main is running): one
    line, the signal's exit code, no partial file."""
    out = tmp_path / "v"
    # SIGINT as a terminal gives it: a shell without job control starts background commands
    # (``make test &``, ``nohup ... &``) with SIGINT ignored, which Python then keeps, and the
    # sweep would run to its end (seen in a fresh-clone CI started that way)
    script = ("import os, signal, sys, threading\n"
              "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
              "from sim.analysis import variation\n"
              f"threading.Timer(1.5, lambda: os.kill(os.getpid(), signal.{signame})).start()\n"
              f"sys.exit(variation.main(['--model', 'digits_addernet', '-n', '360', '--seeds', "
              f"'200', '--out', {str(out)!r}]))\n")
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       cwd=REPO, timeout=300)
    assert r.returncode == code, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        f"python -m sim.analysis.variation: {what}; no report or figure was written "
        "(files written before are unchanged)"]
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []


def test_accumulator_overflow_message_reads_an_adder_layer():
    from golden import layers as L
    with pytest.raises(ValueError, match=r"^an adder layer with fan-in 9000000 can reach "
                                         r"2295000000, which overflows the 32-bit accumulator"):
        L._assert_acc_fits("adder", 9_000_000)
    with pytest.raises(ValueError, match=r"^a mul layer with fan-in"):
        L._assert_acc_fits("mul", 9_000_000)


def test_report_and_bench_check_mat_against_every_preset(tmp_path, capsys):
    from sim.analysis import bench, report
    assert report.main(["--mat", "9", "--backend", "model", "-n", "1",
                        "--out", str(tmp_path / "r")]) == 2
    assert "--mat must be an integer in [1, 8] (subarrays in lock-step for preset dima_sot" \
        in one_line_error(capsys)
    assert bench.main(["--mat", "33", "--out", str(tmp_path / "b.json")]) == 2
    assert "--mat must be an integer in [1, 32] (subarrays in lock-step for preset" \
        in one_line_error(capsys)
    assert [p for p in tmp_path.rglob("*") if not p.is_dir()] == []
