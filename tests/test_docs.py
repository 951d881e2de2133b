"""The design documents (``docs/``, ``make docs``) against the code they describe.

The site itself is built with warnings as errors by ``make docs`` (and ``make test``); these
tests check what a build cannot: the generated instruction-set tables are those of ``rtl/isa.py``,
the "how to add a preset" walkthrough works as written, the import rule of the architecture page
holds, and no file points at a document outside the repository.
"""

import ast
import dataclasses
import os
import re
from pathlib import Path

import numpy as np
import pytest

from docs import gen_isa
from docs.preset_example import CONFIG, NAME
from golden.datasets import load_digits
from golden.model import bundled_model_path, infer_int, load_model
from rtl import config as rtl_config
from rtl.config import preset, preset_names
from rtl.export import verilog_of
from sim.compile.compiler import compile_model, run_compiled
from sim.hw.core_model import CoreModel

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def test_isa_tables_are_generated_from_rtl_isa():
    committed = gen_isa.OUTPUT.read_text()
    assert committed == gen_isa.isa_tables(), (
        "docs/isa_tables.inc differs from rtl/isa.py: run python -m docs.gen_isa and commit it")


def test_isa_tables_cover_every_opcode_and_counter():
    text = gen_isa.isa_tables()
    from rtl.isa import Opcode, counter_names
    for op in Opcode:
        assert f"   * - {op.value}\n     - ``{op.name}``" in text, op.name
    for i, name in enumerate(counter_names()):
        assert f"   * - {i}\n     - ``{name}``" in text, name


def test_gen_isa_check_flags_a_stale_file(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "isa_tables.inc"
    stale.write_text(gen_isa.isa_tables().replace("``MIN_STEP``", "``MIN``"))
    monkeypatch.setattr(gen_isa, "OUTPUT", stale)
    assert gen_isa.main(["--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    stale.write_text(gen_isa.isa_tables())
    assert gen_isa.main(["--check"]) == 0


# ---- "How to add a preset", step by step -----------------------------------------------------

def test_add_preset_page_shows_the_tested_example():
    page = (DOCS / "add_preset.rst").read_text()
    assert ".. literalinclude:: preset_example.py" in page
    assert f'preset("{NAME}")' in page and f"PRESET={NAME}" in page
    # The page says the example is jeit_stt with three fields changed.
    assert CONFIG == dataclasses.replace(preset("jeit_stt"), dataflow="write_free",
                                         routes=("write_free", "and_bitcount"),
                                         zero_skip=False)


def test_add_preset_walkthrough(monkeypatch):
    # Step 2: register it; the name is then known to every command.
    monkeypatch.setitem(rtl_config.PRESETS, NAME, CONFIG)
    assert NAME in preset_names()
    config = preset(NAME)
    assert config is CONFIG
    # Step 3: make verilog (one block), then the model on the numpy core model vs golden.
    assert "module min_lane(" in verilog_of("min_lane", config)
    model = load_model(bundled_model_path("digits_addernet"))
    compiled = compile_model(model, config, subarrays=4)
    assert {s.route for s in compiled.stages} == {"write_free", "and_bitcount"}
    x, _ = load_digits("test")
    image = x[0]
    result = run_compiled(compiled, image, CoreModel(config, subarrays=4))
    trace = infer_int(model, image[None], trace=True)
    for stage, out in zip(compiled.stages, result.outputs, strict=True):
        want = trace[stage.golden_index][0].reshape(stage.out_shape)
        assert np.array_equal(out, want), stage.name
    assert result.cycles == compiled.cycles


def test_preset_validation_as_the_page_describes():
    with pytest.raises(ValueError, match=r"^acc_bits must be at least reduce_bits \+ "
                       r"operand_bits = 16 .*not 8$"):
        dataclasses.replace(CONFIG, acc_bits=8)
    with pytest.raises(ValueError, match=r"^mtjs_per_strip must be 1 for technology 'stt'"):
        dataclasses.replace(CONFIG, mtjs_per_strip=8)
    with pytest.raises(TypeError, match=r"^rows must be an int, not '256'$"):
        dataclasses.replace(CONFIG, rows="256")



# ---- the dataflows page's table of micro-ops per tile dot product ----------------------------

def _per_dot(compiled):
    """Per route: tile dots, and the micro-ops of the dots (the gather part's row writes and
    strip erases taken out), summed over every chunk (not the programs of seed 001's in-memory
    post-processing, nand_spin's default: they compute no dot)."""
    out = {}
    for stage in compiled.stages:
        for chunk in stage.chunks:
            if stage.postproc == "in_memory" and not chunk.patches:
                continue
            ops = chunk.micro_ops
            strips = -(-len(chunk.rows) // compiled.config.mtjs_per_strip)
            erases = ops["erase"] - (strips if compiled.config.technology == "nand_spin" else 0)
            got = {"dots": stage.out_channels * stage.tiles * chunk.groups,
                   "min_step": ops["min_step"], "fs_step": ops["fs_step"],
                   "shift_acc": ops["shift_acc"], "and_fu": ops["and_fu"],
                   "write_backs": ops["write_row"] + ops["program"] - len(chunk.rows),
                   "erases": erases}
            acc = out.setdefault(stage.route, dict.fromkeys(got, 0))
            for key, value in got.items():
                acc[key] += value
    return out


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("name, dataflow", [("nand_spin", "write_free"),
                                            ("jeit_stt", "abs_diff"),
                                            ("nand_spin", "abs_diff")])
def test_micro_ops_per_tile_dot_as_documented(name, dataflow, k):
    config = preset(name).with_dataflow(dataflow)
    n, m = config.operand_bits, config.mtjs_per_strip
    nand = config.technology == "nand_spin"
    routes = _per_dot(compile_model(load_model(bundled_model_path("digits_addernet")), config,
                                    subarrays=k))
    assert set(routes) == {dataflow, "and_bitcount"}
    # write_free: n MIN_STEP, nothing written; and_bitcount: n * n AND_FU, nothing written.
    # abs_diff: n + n FS_STEP, n write-backs, n SHIFT_ACC (4n), one ERASE per scratch strip
    # on NAND-SPIN.
    documented = {
        "write_free": {"min_step": n, "write_backs": 0, "erases": 0},
        "abs_diff": {"fs_step": 2 * n, "write_backs": n, "shift_acc": n,
                     "erases": -(-n // m) if nand else 0},
        "and_bitcount": {"and_fu": n * n, "write_backs": 0, "erases": 0},
    }
    for route, got in routes.items():
        per_dot = {key: got[key] / got["dots"] for key in documented[route]}
        assert per_dot == documented[route], route
        cycles = sum(v for key, v in per_dot.items() if key != "erases")
        assert cycles == {"write_free": n, "abs_diff": 4 * n, "and_bitcount": n * n}[route]


# ---- the parameter tables of the assumptions page --------------------------------------------

def test_every_device_and_energy_parameter_has_a_source_class():
    import sys
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        from spinpim_sphinx import SOURCE_CLASSES, source_class
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    from sim.hw.device import PARAMETERS
    from sim.hw.energy import ARRAY, PERIPHERY
    seen = set()
    for params in [*PARAMETERS.values(), *ARRAY.values(), PERIPHERY]:
        for name, p in params.items():
            cls = source_class(p.source)
            assert cls in SOURCE_CLASSES, name
            assert (cls == "assumption") == p.assumption, name
            seen.add(cls)
    assert seen == set(SOURCE_CLASSES)
    with pytest.raises(ValueError, match="source of unknown class"):
        source_class("calibrated against SPICE")


# ---- the architecture page's import rule -----------------------------------------------------

def _imported_packages(package: str) -> dict[str, set]:
    found = {}
    for path in sorted((ROOT / package).glob("*.py")):
        tops = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                tops |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops.add(node.module.split(".")[0])
        found[path.name] = tops
    return found


@pytest.mark.parametrize("package, forbidden", [("golden", {"rtl", "sim"}),
                                                ("rtl", {"golden", "sim"})])
def test_import_rule(package, forbidden):
    for name, tops in _imported_packages(package).items():
        assert not tops & forbidden, f"{package}/{name} imports {sorted(tops & forbidden)}"


# ---- no document outside the repository ------------------------------------------------------

# Built from parts so that this file does not match itself.
OUTSIDE = re.compile(r"\.\./" + "shared" + "|" + r"\b(" + "|".join(
    ("DESIGN", "core_spec", "move_spec")) + r")\.md\b")
TEXT_SUFFIXES = {".py", ".md", ".rst", ".inc", ".toml", ".txt", ".cfg"}


def _project_files():
    """The project's text files: not the venv, build outputs, caches or VCS data."""
    for top, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not (d.startswith(".") or d.endswith(".egg-info")
                                                or d in ("build", "__pycache__", "sim_build")))
        for name in sorted(files):
            path = Path(top, name)
            if path.suffix in TEXT_SUFFIXES or name == "Makefile":
                yield path.relative_to(ROOT), path


def test_no_reference_to_documents_outside_the_repository():
    hits = [f"{rel}:{i}: {line.strip()}" for rel, path in _project_files()
            for i, line in enumerate(path.read_text().splitlines(), 1) if OUTSIDE.search(line)]
    assert not hits, "references to files outside the repository:\n" + "\n".join(hits)


def test_outside_reference_pattern_matches():
    for text in ("see DESIGN" ".md", "build/core_spec" ".md", "(``build/move_spec" ".md``)",
                 "../" "shared/x"):
        assert OUTSIDE.search(text), text
    assert not OUTSIDE.search("docs/dataflows.rst")
