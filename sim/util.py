"""Small helpers shared by the command-line tools in sim/."""

from __future__ import annotations

import math
import os
from pathlib import Path

from rtl.config import MAX_SUBARRAYS, mat_bound_reason, max_subarrays_per_mat

# One error class for every tool's user mistakes, output paths included (rtl.outputs raises
# its subclass OutputPathError); it lives in rtl/ because rtl's tools raise it too.
from rtl.outputs import UserError, write_json

__all__ = ["UserError", "write_json_atomic", "MAX_MAT", "mat_range_help", "parse_mat",
           "check_waves", "parse_number_list"]


def write_json_atomic(path, data, *, option: str | None = None) -> Path:
    """Write ``data`` as indented JSON with sorted keys; the file appears complete or not at
    all, and no temporary file is ever listed next to it (:func:`rtl.outputs.write_json`)."""
    return write_json(path, data, sort_keys=True, option=option)


#: Most subarrays in one mat (``rtl.core.Core``'s ``subarrays``); a preset's own limit, from its
#: columns, may be lower (:func:`rtl.config.max_subarrays_per_mat`).
MAX_MAT = MAX_SUBARRAYS


def mat_range_help() -> str:
    """The ``--mat`` range of every preset, for a ``--help`` text: what :func:`parse_mat`
    accepts with that preset's configuration (``1 .. 32`` at 128 columns, ``1 .. 8`` for
    ``dima_sot``'s 512), not the bare :data:`MAX_MAT`."""
    from rtl.config import preset, preset_names
    return "1 .. " + ", ".join(f"{max_subarrays_per_mat(preset(n).columns)} ({n})"
                               for n in preset_names())


def parse_mat(text, config=None, preset: str | None = None) -> int | None:
    """``--mat``: None (each preset's ``subarrays_per_mat``) or an int in [1, K]; a UserError
    otherwise. K is :data:`MAX_MAT`, or with ``config`` the most subarrays a mat of that
    configuration's columns can have (:func:`rtl.config.max_subarrays_per_mat`), which the
    message explains (``preset`` names it)."""
    if text is None:
        return None
    hi, why = MAX_MAT, "subarrays in lock-step"
    if config is not None:
        hi = max_subarrays_per_mat(config.columns)
        why = (f"subarrays in lock-step{f' for preset {preset}' if preset else ''}: "
               f"{mat_bound_reason(config.columns)}")
    try:
        k = int(text)
    except (TypeError, ValueError):
        k = 0
    if not 1 <= k <= hi:
        raise UserError(f"--mat must be an integer in [1, {hi}] ({why}), not {text!r}")
    return k


#: Values of the ``WAVES`` environment variable that cocotb's runner accepts (case-insensitive).
WAVES_VALUES = ("0", "1", "no", "yes", "n", "y", "off", "on", "false", "true", "disable", "enable")


def check_waves() -> None:
    """The ``WAVES`` environment variable, which cocotb's runner reads when the RTL is built or
    run, holds a value it accepts (or none); a UserError before any work otherwise, instead of
    cocotb's traceback after the build."""
    value = os.environ.get("WAVES", "")
    if value and value.lower() not in WAVES_VALUES:
        raise UserError(f"WAVES (environment) must be 0 or 1 (or {', '.join(WAVES_VALUES[2:])}), "
                        f"not {value!r}")


def parse_number_list(option: str, text: str, hi: float, unit: str = "") -> list:
    """``"0,0.05"`` -> sorted distinct floats in [0, hi] for the command-line ``option``; a
    one-line UserError otherwise."""
    allowed = f"a comma-separated list of numbers in [0, {hi:g}]{unit}, e.g. 0,0.05,0.1"
    vals = []
    for item in str(text).split(","):
        try:
            v = float(item)
        except ValueError:
            raise UserError(f"{option}: cannot parse {item.strip()!r} in {text!r}; give "
                            f"{allowed}") from None
        if not math.isfinite(v) or not 0.0 <= v <= hi:
            raise UserError(f"{option}: {item.strip()!r} is out of range; give {allowed}")
        vals.append(v)
    return sorted(set(vals))
