"""Sphinx extension of spinpim's documents.

* ``spinpim-params``: the table of a parameter dict of ``sim.hw.device`` / ``sim.hw.energy``
  (:class:`sim.hw.device.Param` values), rendered from the code at build time, so the page can not
  disagree with the numbers the models use. Each row gets its source class (:func:`source_class`).
* Data docstrings (``#:`` comments) are prose: napoleon would read a first line such as
  "Width of X: 48 bits" as ``type: description`` and cross-reference "Width of X" as a class.
"""

from __future__ import annotations

import importlib

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

SOURCE_CLASSES = ("seed", "literature", "derived", "assumption")


def source_class(source: str) -> str:
    """The source class of a :class:`sim.hw.device.Param` source text.

    ``assumption`` (starts "ASSUMPTION"), ``derived`` (starts "derived"), ``literature`` (a
    reference cited by a seed: "ref. [...]"), else ``seed`` (a seed's section, table or
    abstract).
    """
    if source.startswith("ASSUMPTION"):
        return "assumption"
    if source.startswith("derived"):
        return "derived"
    if "ref. [" in source:
        return "literature"
    if source.startswith("seed"):
        return "seed"
    raise ValueError(f"source of unknown class (not seed, literature, derived or ASSUMPTION): "
                     f"{source!r}")


def _value(v) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", r"\|").replace("*", r"\*").replace("`", r"\`")


def param_table(title: str, params: dict) -> list[str]:
    """A ``list-table`` of ``params`` (name -> Param)."""
    out = [f".. list-table:: {title}", "   :header-rows: 1", "   :widths: 18 10 9 11 52", "",
           "   * - parameter", "     - value", "     - unit", "     - class", "     - source"]
    for name, p in params.items():
        out += [f"   * - ``{name}``", f"     - {_value(p.value)}", f"     - {_escape(p.unit)}",
                f"     - {source_class(p.source)}", f"     - {_escape(p.source)}"]
    return out + [""]


class ParamTable(SphinxDirective):
    """``.. spinpim-params:: module.NAME``: one table per technology for a dict technology ->
    name -> Param, one table for a dict name -> Param."""
    required_arguments = 1

    def run(self):
        module, _, attr = self.arguments[0].rpartition(".")
        table = getattr(importlib.import_module(module), attr)
        first = next(iter(table.values()))
        if isinstance(first, dict):
            lines = []
            for tech, params in table.items():
                lines += param_table(f"``{attr}['{tech}']``", params)
        else:
            lines = param_table(f"``{attr}``", table)
        node = nodes.container()
        self.state.nested_parse(StringList(lines, source=self.arguments[0]),
                                self.content_offset, node)
        return node.children


def _prose_data_docstring(app, what, name, obj, options, lines):
    # An empty type before the first colon: napoleon keeps the line as it is.
    if what in ("data", "attribute", "property") and lines and ":" in lines[0]:
        lines[0] = ": " + lines[0]


def setup(app):
    app.setup_extension("sphinx.ext.napoleon")
    # Before napoleon's own handler (priority 500).
    app.connect("autodoc-process-docstring", _prose_data_docstring, priority=400)
    app.add_directive("spinpim-params", ParamTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
