"""sim.analysis.report streams the weights of a model whose weights do not fit the weight buffer
(``sim.compile.weight_stream``): the loads' bus cycles are in the latency, their SRAM writes
and bus wires in the energy; the run's logits equal golden.

Expected values: the streamed words counted here from the compiled stages' ``weight_loads``,
the bus of seed 001 sec. 5.2 (128 bits, one transfer per cycle), ``sim.hw.energy.estimate``
called here on the stored counters, and the SRAM write energies of ``sim.hw.sram`` with the
wire energy of ``sim.hw.chip`` per the cost rule of ``sim.compile.weight_stream``'s docstring.
"""

import contextlib
import dataclasses
import io
import json
import math

import numpy as np
import pytest

from golden.model import save_model
from rtl.config import preset
from rtl.ppu import BIAS_BITS, MULT_BITS, SHIFT_BITS
from sim.analysis import report
from sim.compile.compiler import compile_model
from sim.hw import energy, sram
from sim.util import UserError
from tests.layer_models import random_model

BUFFER = 32      # weight-buffer slots of the shrunk nand_spin: the model needs more


def _small_config(name):
    return dataclasses.replace(preset(name), buffer_slots=BUFFER)


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (1, 1, 8, 8)).astype(np.uint8)
    model = random_model([("conv", "mul_conv2d", 4, 3, 1, 1), ("flatten",),
                          ("linear", "mul_linear", 10)], (1, 8, 8), rng, x)
    base = tmp_path_factory.mktemp("stream")
    path = base / "small.npz"
    save_model(model, path)
    out = base / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(report, "preset", _small_config)       # the report's presets: a tiny buffer
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rc = report.main(["--backend", "model", "--model", str(path), "--dataset", "digits",
                              "-n", "1", "--preset", "nand_spin", "--mat", "1", "--out",
                              str(out), "--synth-dir", str(base / "synth"), "--quiet"])
    finally:
        mp.undo()
    assert rc == 0
    rep = json.loads((out / "report-nand_spin.json").read_text())
    md = (out / "report.md").read_text()
    return model, rep, md, path


def test_the_model_needs_streaming(streamed):
    model, *_ = streamed
    with pytest.raises(UserError, match="buffer_slots"):
        compile_model(model, _small_config("nand_spin"), subarrays=1)


def test_stream_cycles_and_energy_in_the_figures(streamed):
    model, rep, md, _ = streamed
    config = _small_config("nand_spin")
    compiled = compile_model(model, config, subarrays=1, stream_weights=True)
    slots = sum(len(img) for st in compiled.stages for _, _, img, _ in st.weight_loads)
    entries = sum(len(t[1]) for st in compiled.stages for *_, t in st.weight_loads
                  if t is not None)
    assert slots > 0
    width = compiled.width
    entry_bits = MULT_BITS + SHIFT_BITS + BIAS_BITS
    bus_cycles = slots * math.ceil(width / 128) + entries * math.ceil(entry_bits / 128)
    ws = rep["weight_stream"]
    assert (ws["slots"], ws["entries"], ws["bus_cycles"]) == (slots, entries, bus_cycles)
    assert all(rep["logits_equal_to_golden"])
    # The latency: controller cycles + host port words + the bus cycles of the streamed words.
    im = rep["measured_images"][0]
    pi = rep["per_image"]
    assert pi["host_cycles"] == im["host_cycles"] + bus_cycles
    # The energy: the micro-ops' at those host cycles + the streamed words' SRAM writes + wires.
    mems = {m.name: m for m in sram.core_memories(config, 1)}
    buf, tbl = mems["weight buffer"], mems["requant table"]
    from sim.hw.chip import PARAMS
    wire_mm = math.sqrt(energy.array_area_mm2(config)) / 2
    stream_j = ((slots * sram.write_energy_pj(buf.words, buf.bits)
                 + entries * sram.write_energy_pj(tbl.words, tbl.bits)) * 1e-12
                + (slots * width + entries * entry_bits)
                * PARAMS["wire_fj_per_bit_mm"].value * wire_mm * 1e-15)
    assert ws["energy_j"] == pytest.approx(stream_j, rel=1e-12)
    est = energy.estimate(config, im["counters"], ops=pi["ops"], columns_active=width,
                          host={"data_words": pi["host"]["data_words"]},
                          host_cycles=im["host_cycles"] + bus_cycles)
    assert pi["latency_s"] == pytest.approx(est.latency_s, rel=1e-12)
    assert pi["energy_j"] == pytest.approx(est.energy_j + stream_j, rel=1e-12)
    # In the split (its own row) and so in the headline; named in the markdown.
    rows = {r["name"]: r for r in rep["energy_split"]["rows"]}
    assert rows["weight streaming"]["energy_j"] == pytest.approx(stream_j, rel=1e-12)
    assert rep["energy_split"]["total_j"] == pytest.approx(
        rep["memories"]["energy_with_memories_j"], rel=1e-9)
    assert f"per image {slots:,} buffer words and {entries:,} requant entries, " \
           f"{bus_cycles:,} bus cycles" in md


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_streamed_on_the_rtl(streamed, tmp_path, sim):
    """The report's RTL run of the streamed model: the harness writes the streamed words through
    its port (one per cycle), the report charges the bus's cycles instead; counters, host cycles
    and logits as on the cycle model."""
    _, rep, _, path = streamed
    out = tmp_path / "out"
    mp = pytest.MonkeyPatch()
    mp.setattr(report, "preset", _small_config)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            rc = report.main(["--backend", "rtl", "--sim", sim, "--model", str(path),
                              "--dataset", "digits", "-n", "1", "--preset", "nand_spin",
                              "--mat", "1", "--out", str(out), "--synth-dir",
                              str(tmp_path / "synth"), "--quiet", "--no-activity"])
    finally:
        mp.undo()
    assert rc == 0
    rtl = json.loads((out / "report-nand_spin.json").read_text())
    assert all(rtl["logits_equal_to_golden"])
    assert rtl["measured_images"][0]["counters"] == rep["measured_images"][0]["counters"]
    assert rtl["per_image"]["host_cycles"] == rep["per_image"]["host_cycles"]
    assert rtl["weight_stream"] == rep["weight_stream"]


def test_a_model_that_fits_streams_nothing(tmp_path):
    from golden.model import bundled_model_path, load_model
    model = load_model(bundled_model_path("digits_addernet"))
    _, compiled = report._compile(model, "nand_spin", 1)
    assert not any(st.weight_loads for st in compiled.stages)


def test_make_report_model_part_names_report_mat():
    """Under make, an error of the model part of `make report` (run with REPORT_MAT) names
    REPORT_MAT, not MAT (the RTL part's knob)."""
    import shutil
    import subprocess
    from pathlib import Path
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run(["make", "-s", "--no-print-directory", "report", "REPORT_MAT=3x"],
                       cwd=root, capture_output=True, text=True, timeout=300)
    assert r.returncode != 0
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    from sim.util import MAX_MAT
    assert err == [f"error: REPORT_MAT must be an integer in [1, {MAX_MAT}] (subarrays in "
                   "lock-step), not '3x'"], r.stderr
