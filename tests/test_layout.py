"""The layout of ``sim/`` (issue 10 item 4): the command line and shared helpers at the top, every
other module in a sub-package that says what it holds (``docs/architecture.rst``)."""

import importlib
from pathlib import Path

SIM = Path(__file__).resolve().parent.parent / "sim"
TOP_LEVEL = {"__init__", "cli", "config_file", "knobs", "util"}
PACKAGES = {"analysis", "compile", "flows", "hw", "routes"}


def test_only_the_command_line_and_shared_helpers_sit_at_the_top():
    top = {p.stem for p in SIM.glob("*.py")}
    extra = sorted(top - TOP_LEVEL)
    assert top == TOP_LEVEL, f"modules at the top of sim/ beyond {sorted(TOP_LEVEL)}: {extra}"


def test_every_sub_package_has_a_docstring_and_is_shipped():
    found = {p.parent.name for p in SIM.glob("*/__init__.py")}
    assert found == PACKAGES
    pyproject = (SIM.parent / "pyproject.toml").read_text()
    for name in sorted(found):
        mod = importlib.import_module(f"sim.{name}")
        assert mod.__doc__ and len(mod.__doc__.split()) >= 20, f"sim.{name} needs a paragraph"
        assert f'"sim.{name}"' in pyproject, f"pyproject.toml does not ship sim.{name}"


def test_every_sub_package_is_in_the_architecture_page():
    text = (SIM.parent / "docs" / "architecture.rst").read_text()
    for name in sorted(PACKAGES - {"routes"}):
        assert f"``sim.{name}``" in text, f"docs/architecture.rst does not describe sim.{name}"
