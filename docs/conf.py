"""Sphinx configuration of spinpim's design documents (``make docs``)."""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path[:0] = [str(DOCS.parent), str(DOCS / "_ext")]

project = "spinpim"
author = "the spinpim authors"
copyright = "the spinpim authors"
extensions = ["sphinx.ext.autodoc", "spinpim_sphinx"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []
# Warnings are errors (make docs: -W --keep-going), including a reference to nothing.
nitpicky = True
# Targets outside spinpim: no inventories are fetched (the build is offline).
nitpick_ignore_regex = [
    ("py:class", r"(numpy|np|pathlib|amaranth|collections|collections\.abc)\..*"),
    ("py:func", r"dataclasses\..*"),
]

autodoc_member_order = "bysource"
autodoc_mock_imports = ["torch"]
# numpydoc docstrings through napoleon; parameter types stay text (no cross-reference per word).
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_param = False
napoleon_use_rtype = False
napoleon_use_ivar = False
napoleon_custom_sections = [("Members", "params_style")]
