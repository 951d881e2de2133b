"""Small helpers shared by the command-line tools in sim/."""

from __future__ import annotations

from pathlib import Path

# One error class for every tool's user mistakes, output paths included (rtl.outputs raises
# its subclass OutputPathError); it lives in rtl/ because rtl's tools raise it too.
from rtl.outputs import UserError, write_json

__all__ = ["UserError", "write_json_atomic", "MAX_MAT", "parse_mat"]


def write_json_atomic(path, data, *, option: str | None = None) -> Path:
    """Write ``data`` as indented JSON with sorted keys; the file appears complete or not at
    all, and no temporary file is ever listed next to it (:func:`rtl.outputs.write_json`)."""
    return write_json(path, data, sort_keys=True, option=option)


#: Most subarrays in one mat (``rtl.core.Core``'s ``subarrays``).
MAX_MAT = 64


def parse_mat(text) -> int | None:
    """``--mat``: None (each preset's ``subarrays_per_mat``) or an int in [1, MAX_MAT]; a
    UserError otherwise."""
    if text is None:
        return None
    try:
        k = int(text)
    except (TypeError, ValueError):
        k = 0
    if not 1 <= k <= MAX_MAT:
        raise UserError(f"--mat must be an integer in [1, {MAX_MAT}] (subarrays in lock-step), "
                        f"not {text!r}")
    return k
