"""sim.analysis.synth's calibrated per-block fit (the logic of a mat at any K from per-block
syntheses at a few K) and the report's use of it, on hand-made syntheses: no Yosys needed.
Expected values are computed here from the hand-made areas (a line through two points)."""

import json

import pytest

from rtl.config import preset
from sim.analysis import synth

CONFIG = preset("nand_spin")

#: Hand-made per-block cell areas (um^2) of a core at K = 1, 2, 4: the controller and PPU do not
#: grow, one reduction per subarray of 300 um^2, the lanes 1000 per subarray, the core's own
#: logic 500 + 200 per subarray; at K = 4 the core's own logic is 40 um^2 over the line.
POINTS = {
    1: {"core": 700.0, "ctrl": 2000.0, "ppu": 900.0, "min_lane": 1000.0, "reduce": 300.0},
    2: {"core": 900.0, "ctrl": 2000.0, "ppu": 900.0, "min_lane": 2000.0, "reduce0": 300.0,
        "reduce1": 300.0},
    4: {"core": 1340.0, "ctrl": 2000.0, "ppu": 900.0, "min_lane": 4000.0,
        **{f"reduce{i}": 300.0 for i in range(4)}},
}


def _rep(k, flat=None):
    """The syntheses at K = k as write_fit takes them: per block, and flattened if given."""
    return {"blocks": {"preset": "nand_spin", "subarrays": k, "blocks": POINTS[k],
                       "seconds": 1.0}, "flat": flat}


def test_fit_lines_and_families():
    fit = synth.fit_blocks({1: POINTS[1], 2: POINTS[2]})
    f = fit["families"]
    assert fit["ks"] == [1, 2]
    assert (f["ctrl"]["a_um2"], f["ctrl"]["b_um2"]) == pytest.approx((2000.0, 0.0))
    assert (f["core"]["a_um2"], f["core"]["b_um2"]) == pytest.approx((500.0, 200.0))
    assert (f["reduce"]["a_um2"], f["reduce"]["b_um2"]) == pytest.approx((0.0, 300.0))
    assert f["reduce"]["per_subarray"] and not f["min_lane"]["per_subarray"]
    assert not f["ctrl"]["per_subarray"]


def test_fitted_areas_at_16_name_the_blocks_as_the_core_does():
    fit = synth.fit_blocks({1: POINTS[1], 2: POINTS[2]})
    got = synth.fitted_block_areas(fit, 16)
    assert got["ctrl"] == pytest.approx(2000.0) and got["ppu"] == pytest.approx(900.0)
    assert got["core"] == pytest.approx(500.0 + 200.0 * 16)
    assert got["min_lane"] == pytest.approx(16000.0)
    assert {f"reduce{i}" for i in range(16)} <= set(got) and "reduce" not in got
    assert got["reduce15"] == pytest.approx(300.0)
    one = synth.fitted_block_areas(fit, 1)
    assert "reduce" in one and "reduce0" not in one
    with pytest.raises(ValueError, match="k must be a positive int, not 0"):
        synth.fitted_block_areas(fit, 0)


def test_fit_errors_against_a_held_out_synthesis():
    fit = synth.fit_blocks({1: POINTS[1], 2: POINTS[2]})
    err = synth.fit_errors(fit, POINTS[4], 4)
    assert err["core"]["fitted_um2"] == pytest.approx(1300.0)
    assert err["core"]["error_pct"] == pytest.approx(100 * (1300 / 1340 - 1))
    assert err["reduce"]["error_pct"] == pytest.approx(0.0)
    total = 1340 + 2000 + 900 + 4000 + 1200
    assert err["total"]["synthesised_um2"] == pytest.approx(total)
    assert err["total"]["error_pct"] == pytest.approx(100 * ((total - 40) / total - 1))


def test_fit_needs_two_points_with_the_same_blocks():
    with pytest.raises(synth.SynthError, match="two or more K"):
        synth.fit_blocks({1: POINTS[1]})
    bad = dict(POINTS[2])
    bad["extra"] = 1.0
    with pytest.raises(synth.SynthError, match="different blocks"):
        synth.fit_blocks({1: POINTS[1], 2: bad})


@pytest.fixture
def fit_file(tmp_path):
    path = tmp_path / "fit.json"
    synth.write_fit("nand_spin", CONFIG, {1: _rep(1), 2: _rep(2)}, {4: _rep(4)}, path,
                    tool="Yosys test")
    return path


def test_write_and_load_fit(fit_file):
    data = json.loads(fit_file.read_text())
    entry = data["presets"]["nand_spin"]
    assert entry["fit_ks"] == [1, 2] and entry["rtl_hash"] == synth.rtl_hash()
    assert set(entry["points"]) == {"1", "2", "4"}
    assert entry["points"]["4"]["blocks"] == POINTS[4]
    logic, blocks, label = synth.load_fit("nand_spin", CONFIG, 16, fit_file)
    total = (500 + 200 * 16) + 2000 + 900 + 1000 * 16 + 300 * 16
    assert logic["area_um2"] == pytest.approx(total)
    assert logic["nand2_eq"] == pytest.approx(total / 0.798)
    assert label == "synthesised at K = 1, 2, fitted to K = 16"
    assert logic["fitted"]["class"] == "calibrated" and not logic["fitted"]["stale"]
    assert "K = 4: -0.42 %" in logic["fitted"]["source"]      # -40 / 9440 um^2 held out
    # the blocks in the form the report's block_areas reads
    areas = synth.block_areas(blocks)
    assert areas["ctrl"] == pytest.approx(2000.0) and areas["reduce7"] == pytest.approx(300.0)
    assert sum(areas.values()) == pytest.approx(total)


def test_load_fit_stale_and_other_config(fit_file, monkeypatch):
    monkeypatch.setattr(synth, "rtl_hash", lambda: "0123456789abcdef")
    logic, _, label = synth.load_fit("nand_spin", CONFIG, 16, fit_file)
    assert logic["fitted"]["stale"] and "(STALE: rtl/ has changed since; rtl hash " in label
    assert "0123456789abcdef now" in label
    monkeypatch.undo()
    import dataclasses
    other = dataclasses.replace(CONFIG, columns=64)
    assert synth.load_fit("nand_spin", other, 16, fit_file)[0] is None
    assert "another configuration" in synth.load_fit("nand_spin", other, 16, fit_file)[2]
    # the mat size is not part of the key: a fit serves every K
    assert synth.load_fit("nand_spin", dataclasses.replace(CONFIG, subarrays_per_mat=4), 4,
                          fit_file)[0] is not None
    assert synth.load_fit("jeit_stt", preset("jeit_stt"), 16, fit_file)[0] is None


def test_a_stored_k_is_its_synthesis(fit_file, tmp_path):
    """At a K the file holds, the synthesis itself (class derived): the flattened core's area
    when stored, else the blocks' sum; a preset stored at one K only has no fit."""
    logic, blocks, label = synth.load_fit("nand_spin", CONFIG, 4, fit_file)
    assert label == "synthesised at K = 4 (per block)"
    assert logic["area_um2"] == pytest.approx(sum(POINTS[4].values()))
    assert logic["fitted"]["class"] == "derived"
    assert synth.block_areas(blocks)["core"] == pytest.approx(1340.0)
    dima = preset("dima_sot")
    flat = {"area_um2": 5000.0, "cell_count": 3000, "macros": [{"name": "m"}], "seconds": 9.0}
    path = tmp_path / "one.json"
    synth.write_fit("dima_sot", dima, {1: {"blocks": None, "flat": flat}}, {}, path)
    logic, blocks, label = synth.load_fit("dima_sot", dima, 1, path)
    assert (logic["area_um2"], logic["cell_count"], blocks) == (5000.0, 3000, None)
    assert label == "synthesised at K = 1" and logic["fitted"]["class"] == "derived"
    assert logic["nand2_eq"] == pytest.approx(5000.0 / 0.798)
    got = synth.load_fit("dima_sot", dima, 2, path)
    assert got[:2] == (None, None) and "no fit to K = 2" in got[2]
    with pytest.raises(synth.SynthError, match="one point without validation"):
        synth.write_fit("dima_sot", dima, {1: {"blocks": None, "flat": flat}},
                        {2: {"blocks": None, "flat": flat}}, path)


def test_report_uses_the_fit_labelled(fit_file):
    """The report's area split and headline with a fitted logic: logic area = fitted cell area /
    placement density, the label on the note and on the headline basis; the CMOS logic and its
    leakage rows calibrated."""
    from sim.analysis import report
    from sim.hw import activity, energy
    logic, blocks, label = synth.load_fit("nand_spin", CONFIG, 16, fit_file)
    area = report._area(CONFIG, 16, None, "n", memories={"area_mm2": 1.0}, logic=logic)
    sp = area["mat_split"]
    util = energy.PERIPHERY["utilisation"].value
    assert sp["logic_mm2"] == pytest.approx(logic["area_um2"] / util * 1e-6)
    assert sp["logic_class"] == "calibrated" and label in sp["logic_note"]
    assert sp["macros_equal_sram_list"] is None
    act = {"recorded": True, "basis": "rec",
           "blocks": {"ctrl": {"bits": 10, "toggles": 100, "activity": 0.1}}}
    per_image = {"cycles": 100, "latency_s": 1e-6, "ops": 50, "energy_j": 1e-9}
    le = report._logic_energy(act, logic, blocks, per_image)
    # ctrl at 0.1, every other block at the mean of all traced signals (the same 0.1 here)
    fj = activity.PARAMS["switch_fj_per_um2"].value
    assert le["energy_j"] == pytest.approx(0.1 * 100 * logic["area_um2"] * fj * 1e-15)
    assert label in le["cell_area_basis"]
    split = {"rows": [{"name": "CMOS logic", "energy_j": 1e-9, "source": "s",
                       "class": "assumption"},
                      {"name": "leakage (CMOS logic)", "energy_j": None, "source": "s",
                       "class": "not modelled"}], "total_j": 1e-9}
    rows = {r["name"]: r for r in activity.logic_split(split, per_image, le)["rows"]}
    assert label in rows["CMOS logic"]["source"]
    assert rows["leakage (CMOS logic)"]["class"] == "calibrated"
    assert label in rows["leakage (CMOS logic)"]["source"]
    h = report._headline(per_image, {"dynamic_j": 0.0, "leakage_j": 0.0},
                         {"total_j": 2e-9}, le, act, logic)
    assert f"cell area {label} (calibrated)" in h["basis"]



@pytest.mark.parametrize("name", ["nand_spin", "jeit_stt", "imac_sot"])
def test_the_committed_fit_reproduces_its_validation(name):
    """The committed data file (sim/analysis/synth_fit.json, made by ``python -m
    sim.analysis.synth --preset P --write-fit --only blocks --fit-ks 1,2 --validate-at 4``): the
    line through its stored points, recomputed here from the stored per-block areas, predicts
    its held-out synthesis with the stored error, and within 10 %; the report's route to it
    serves the stored synthesis at a stored K and the labelled fit elsewhere."""
    config = preset(name)
    entry = json.loads(synth.FIT_PATH.read_text())["presets"][name]
    assert entry["fit_key"] == synth.fit_key(config)
    ks = [int(k) for k in entry["fit_ks"]]
    assert len(ks) >= 2 and entry["validation"]
    fit = synth.fit_blocks({k: entry["points"][str(k)]["blocks"] for k in ks})
    for vk, stored in entry["validation"].items():
        # by hand: the fitted total is the sum over block families of a + b K
        fitted = sum(max(0.0, f["a_um2"] + f["b_um2"] * int(vk))
                     for f in fit["families"].values())
        want = sum(entry["points"][vk]["blocks"].values())
        assert stored["total"]["fitted_um2"] == pytest.approx(fitted, rel=1e-6)
        assert stored["total"]["synthesised_um2"] == pytest.approx(want, rel=1e-6)
        assert abs(fitted / want - 1) < 0.10, (vk, fitted, want)
        logic = synth.load_fit(name, config, int(vk))[0]
        assert logic["fitted"]["class"] == "derived"
        assert logic["area_um2"] == pytest.approx(want, rel=1e-6)
    logic, _, label = synth.load_fit(name, config, 16)
    assert logic["fitted"]["class"] == "calibrated" and "fitted to K = 16" in label
    assert logic["area_um2"] == pytest.approx(
        sum(synth.fitted_block_areas(fit, 16).values()), rel=1e-9)


def test_the_committed_dima_synthesis_is_served_at_its_k():
    """dima_sot is stored flattened at its own K = 1 only (a mat of one 512-column subarray):
    served there, with its cell count; no fit to other K."""
    config = preset("dima_sot")
    entry = json.loads(synth.FIT_PATH.read_text())["presets"]["dima_sot"]
    flat = entry["points"]["1"]["flat"]
    logic, blocks, label = synth.load_fit("dima_sot", config, 1)
    assert logic["area_um2"] == pytest.approx(flat["area_um2"]) and blocks is None
    assert logic["cell_count"] == flat["cell_count"] and label.startswith("synthesised at K = 1")
    assert synth.load_fit("dima_sot", config, 2)[0] is None


def test_the_netlist_is_made_without_the_modules_left_out_of_its_hash():
    """``synth.NOT_NETLIST`` (the tools' command lines and file writing) may change without
    marking a committed synthesis stale only because elaborating the core never imports them:
    a fresh interpreter converts every preset's core at K = 1 and lists the ``rtl`` modules it
    loaded."""
    import subprocess
    import sys
    code = ("import dataclasses, sys\n"
            "from amaranth.back import verilog\n"
            "from rtl.config import preset, preset_names\n"
            "from rtl.core import Core\n"
            "for name in preset_names():\n"
            "    cfg = dataclasses.replace(preset(name), subarrays_per_mat=1)\n"
            "    verilog.convert(Core(config=cfg, subarrays=1, faults=False), name='core',\n"
            "                    emit_src=False)\n"
            "print(' '.join(sorted(m for m in sys.modules if m.startswith('rtl.'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=synth.REPO, timeout=600, check=True).stdout.split()
    loaded = {m.split(".", 1)[1] + ".py" for m in out}
    assert "core.py" in loaded and "isa.py" in loaded
    assert not loaded & set(synth.NOT_NETLIST), loaded & set(synth.NOT_NETLIST)
    names = {p.name for p in synth.netlist_sources()}
    assert loaded <= names and not names & set(synth.NOT_NETLIST)


def test_rtl_hash_ignores_comments_and_docstrings_not_code(tmp_path):
    """A comment or docstring edit in rtl/ leaves the committed syntheses current; a code
    edit, even of one constant, marks them stale; a file of NOT_NETLIST changes nothing."""
    import shutil
    shutil.copytree(synth.REPO / "rtl", tmp_path / "rtl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    base = synth.rtl_hash(tmp_path)
    assert base == synth.rtl_hash()
    core = tmp_path / "rtl" / "core.py"
    text = core.read_text()
    core.write_text(text.replace('"""', '"""A new first line of the docstring.\n', 1)
                    + "\n# a trailing comment\n")
    assert synth.rtl_hash(tmp_path) == base
    (tmp_path / "rtl" / "outputs.py").write_text("x = 1\n")
    assert synth.rtl_hash(tmp_path) == base
    core.write_text(text.replace("OFFSET_BITS + 1", "OFFSET_BITS + 2", 1))
    assert "OFFSET_BITS + 1" in text and synth.rtl_hash(tmp_path) != base


def test_a_presets_fields_change_its_fit_key_not_the_rtl_hash(tmp_path):
    """A preset's entry of ``rtl.config.PRESETS`` is left out of the rtl/ hash (each synthesis's
    configuration is in its fit key instead): editing one preset's size keeps every committed
    synthesis current by the hash, and only that preset's key changes; any other code edit of
    rtl/config.py still changes the hash."""
    import dataclasses
    import shutil
    shutil.copytree(synth.REPO / "rtl", tmp_path / "rtl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    base = synth.rtl_hash(tmp_path)
    path = tmp_path / "rtl" / "config.py"
    text = path.read_text()
    entry = text.index('    "jeit_stt": AcceleratorConfig(')
    edited = text[:entry] + text[entry:].replace("clock_mhz=133,", "clock_mhz=134,", 1)
    assert edited != text
    path.write_text(edited)
    assert synth.rtl_hash(tmp_path) == base
    faster = dataclasses.replace(preset("jeit_stt"), clock_mhz=134)
    assert synth.fit_key(faster) != synth.fit_key(preset("jeit_stt"))
    path.write_text(text.replace("MAX_SUBARRAYS = 64", "MAX_SUBARRAYS = 65", 1))
    assert "MAX_SUBARRAYS = 64" in text and synth.rtl_hash(tmp_path) != base
