"""Shared stimulus for the per-lane blocks: operand pairs for each corner case.

Used by the min-lane, abs-diff-lane, zero-detect and column-reduce testbenches, so that
every lane block sees the same corners.
"""

import numpy as np

#: Corner kinds; ``random`` also pins lanes 0-3 to (0, max), (max, 0), (max, max), (0, 0).
CORNERS = ("random", "zeros", "max", "equal", "single")


def operands(rng, n, bits, kind):
    """Per-lane x, w for one corner ``kind`` (lanes 0-3 of ``random`` hold the corners)."""
    top = (1 << bits) - 1
    x = np.array([rng.getrandbits(bits) for _ in range(n)], dtype=np.int64)
    w = np.array([rng.getrandbits(bits) for _ in range(n)], dtype=np.int64)
    if kind == "random":
        for i, (a, b) in enumerate([(0, top), (top, 0), (top, top), (0, 0)][:n]):
            x[i], w[i] = a, b
    elif kind == "zeros":
        x[:], w[:] = 0, 0
    elif kind == "max":
        x[:], w[:] = top, top
    elif kind == "equal":
        w[:] = x
    elif kind == "single":
        lane = rng.randrange(n)
        keep = np.arange(n) == lane
        x[~keep], w[~keep] = 0, 0
        if x[lane] == w[lane]:
            w[lane] = top - x[lane] if x[lane] != top - x[lane] else 0
    return x, w
