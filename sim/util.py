"""Small helpers shared by the command-line tools in sim/."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


class UserError(Exception):
    """A mistake in what the user asked for: printed as one line, exit code 2, no traceback."""


def write_json_atomic(path, data) -> Path:
    """Write ``data`` as indented JSON; the file appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)            # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


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
