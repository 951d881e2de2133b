"""``--option=--`` is the value ``--``, not an empty list (issue 17, found by
tests/test_fuzz_cli.py).

Python 3.11's argparse removes the first ``--`` from every action's argument strings, the
explicit value of ``--option=--`` included, so ``args.option`` became ``[]`` and every tool that
then read it as a name, a number or a path stopped with a ``TypeError`` or ``AttributeError``
traceback (``python -m sim.analysis.multi_mat --preset=--``: "unhashable type: 'list'"). Newer
Pythons keep the value; :func:`install` does the same on a Python that drops it (checked on a
throw-away parser, so a fixed argparse is left alone), and each tool's own validation then
refuses ``--`` with its one-line error. Installed when ``rtl.outputs`` is imported, which every
tool does (``rtl.export`` and ``rtl.synth`` as well as the ``sim`` tools); not part of any
netlist (``sim.analysis.synth.NOT_NETLIST``)."""

from __future__ import annotations

import argparse


def _drops_double_dash() -> bool:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--x")
    try:
        return p.parse_args(["--x=--"]).x == []
    except SystemExit:                      # pragma: no cover - another argparse
        return False


def install() -> None:
    """Keep ``--`` as an option's value (idempotent; nothing on an argparse that keeps it)."""
    get_values = argparse.ArgumentParser._get_values
    if getattr(get_values, "_spinpim_keeps_double_dash", False) or not _drops_double_dash():
        return

    def _get_values(self, action, arg_strings):
        # An optional's strings hold '--' only as the explicit value of --option=-- (a bare
        # '--' ends the option's values); the base removes the first '--', so one is put first.
        if action.option_strings and "--" in arg_strings:
            arg_strings = ["--", *arg_strings]
        return get_values(self, action, arg_strings)

    _get_values._spinpim_keeps_double_dash = True
    argparse.ArgumentParser._get_values = _get_values
