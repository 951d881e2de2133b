"""Make's knobs in error messages: under ``make``, ``error: --model: unknown model 'foo'``
reads ``error: MODEL=foo: unknown model 'foo'``.

The Makefile exports ``SPINPIM_MAKE_KNOBS``: the command-line flags it fills from its knobs,
as ``FLAG=KNOB`` words (``--model=MODEL -n=N``). When it is set, importing ``sim`` wraps
``sys.stderr`` so that every line a tool prints starting with ``error:`` names the knob the
user typed instead of the flag: ``FLAG VALUE`` and ``FLAG:`` become ``KNOB=VALUE`` (the value
as given on the command line), any other mention of the flag becomes ``KNOB``. Everything else
passes unchanged, and the wrapper is a terminal when ``sys.stderr`` is (progress bars stay).
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["ENV", "parse", "translate", "install"]

#: The environment variable the Makefile sets.
ENV = "SPINPIM_MAKE_KNOBS"


def parse(text: str) -> dict[str, str]:
    """``{flag: knob}`` from ``"--model=MODEL -n=N"`` (malformed words are ignored)."""
    out = {}
    for word in text.split():
        flag, sep, knob = word.partition("=")
        if sep and flag.startswith("-") and knob:
            out[flag] = knob
    return out


def _value(flag: str, argv) -> str | None:
    """The value given to ``flag`` in ``argv`` (the last one), or None."""
    value = None
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg[len(flag) + 1:]
    return value


def translate(line: str, knobs: dict[str, str], argv) -> str:
    """``line`` with the flags of ``knobs`` replaced by their knobs (only an ``error:`` line)."""
    if not line.startswith("error:"):
        return line
    for flag, knob in sorted(knobs.items(), key=lambda kv: -len(kv[0])):
        value = _value(flag, argv)
        pattern = re.escape(flag) + r"(?![\w-])"
        named = knob if value is None else f"{knob}={value}"
        if value is not None:
            line = re.sub(pattern + r"(?: " + re.escape(value) + r"(?![\w.-])|(?=:))",
                          lambda _m, n=named: n, line)
        line = re.sub(r"(?<![\w-])" + pattern, lambda _m, k=knob: k, line)
    return line


class _KnobStderr:
    """``sys.stderr`` with :func:`translate` applied to each line written."""

    def __init__(self, stream, knobs, argv):
        self._stream, self._knobs, self._argv = stream, knobs, list(argv)
        self._line = ""

    def write(self, text):
        self._line += text
        if "\n" not in self._line:
            if not self._line.startswith("error:"[:len(self._line)]):
                self._stream.write(self._line)
                self._line = ""
            return len(text)
        *lines, self._line = self._line.split("\n")
        self._stream.write("".join(translate(ln, self._knobs, self._argv) + "\n"
                                   for ln in lines))
        return len(text)

    def flush(self):
        if self._line:
            self._stream.write(translate(self._line, self._knobs, self._argv))
            self._line = ""
        self._stream.flush()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def install() -> None:
    """Wrap ``sys.stderr`` if ``SPINPIM_MAKE_KNOBS`` is set (idempotent)."""
    knobs = parse(os.environ.get(ENV, ""))
    if knobs and not isinstance(sys.stderr, _KnobStderr) and sys.stderr is not None:
        sys.stderr = _KnobStderr(sys.stderr, knobs, sys.argv)
