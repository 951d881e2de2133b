"""Bit-level processing-in-MRAM algorithms of the seed papers, on bit-planes as hardware does them.

Conventions. A *bit-plane* array holds bits as uint8 0/1. ``to_bits(x, n)`` gives planes
LSB-first: ``planes[b]`` is bit ``b`` of every element of ``x``. "Lanes" are array columns: every
primitive below works element-wise on whole rows of lanes at once, as the per-column periphery
does. Nothing here knows about clocks; step counts are returned where the papers state them.

Primitives (the per-column periphery, one sensing or one logic step):

* :func:`sense` -- the sense amplifier: 1-row read, AND with an operand driven on FU (seed 001
  Table 1), 2-row AND / OR by reference choice (seed 002).
* :func:`fa_step`, :func:`fs_step` -- one full-adder / full-subtractor step with its carry or
  borrow latch (seed 002 FA/FS unit).
* :func:`fa_reconf` -- the seed-000 reconfigurable full adder in ``sum`` or ``carry`` mode.
* :func:`bitcounter_step` -- the per-column bit-counter: count, shift out the LSB, clear (seed 001).
"""

from __future__ import annotations

import numpy as np

SENSE_MODES = ("read", "and_fu", "and2", "or2")
BITCOUNTER_OPS = ("count", "shift", "clear", "hold")
FA_MODES = ("sum", "carry")


def _bits(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold integer bits 0/1, not dtype {a.dtype}")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise ValueError(f"{name} must hold only bits 0 and 1, found values in "
                         f"[{a.min()}, {a.max()}]")
    return a.astype(np.uint8)


def to_bits(x, n: int, *, signed: bool = False) -> np.ndarray:
    """Bit-planes of integers ``x``, LSB first: shape ``(n,) + x.shape``, uint8 0/1.

    Unsigned: x must lie in [0, 2**n). Signed: two's complement, x in [-2**(n-1), 2**(n-1)).
    """
    if not isinstance(n, (int, np.integer)) or n < 1 or n > 62:
        raise ValueError(f"n must be an int in [1, 62], not {n!r}")
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise TypeError(f"x must be an integer array, not dtype {x.dtype}")
    x = x.astype(np.int64)
    lo, hi = (-(1 << (n - 1)), (1 << (n - 1)) - 1) if signed else (0, (1 << n) - 1)
    if x.size and (x.min() < lo or x.max() > hi):
        kind = "signed" if signed else "unsigned"
        raise ValueError(f"x must fit {n} {kind} bits [{lo}, {hi}], found values in "
                         f"[{x.min()}, {x.max()}]")
    u = x & ((1 << n) - 1)
    return np.stack([(u >> b) & 1 for b in range(n)]).astype(np.uint8)


def from_bits(planes, *, signed: bool = False) -> np.ndarray:
    """Inverse of :func:`to_bits`: planes ``(n, ...)`` LSB first -> int64 values."""
    planes = _bits("planes", planes).astype(np.int64)
    n = planes.shape[0]
    val = np.zeros(planes.shape[1:], dtype=np.int64)
    for b in range(n):
        val += planes[b] << b
    if signed:
        val -= planes[n - 1] << n
    return val


def sense(mode: str, row_a, row_b=None, fu=None) -> np.ndarray:
    """Sense-amplifier output per column.

    ``read``: row_a. ``and_fu``: row_a AND fu, fu the operand driven on FU from the weight buffer
    (seed 001 Table 1: OUT = W AND D). ``and2`` / ``or2``: 2-row activation, row_a AND/OR row_b,
    chosen by the reference resistance (seed 002).
    """
    if mode not in SENSE_MODES:
        raise ValueError(f"mode must be one of {', '.join(SENSE_MODES)}, not {mode!r}")
    a = _bits("row_a", row_a)
    if mode == "read":
        return a
    if mode == "and_fu":
        if fu is None:
            raise ValueError("mode 'and_fu' needs fu")
        return a & _bits("fu", fu)
    if row_b is None:
        raise ValueError(f"mode {mode!r} needs row_b")
    b = _bits("row_b", row_b)
    return a & b if mode == "and2" else a | b


def fa_step(a, b, cin):
    """One full-adder step: ``a + b + cin = s + 2*cout``. Returns ``(s, cout)``."""
    a, b, c = _bits("a", a), _bits("b", b), _bits("cin", cin)
    return a ^ b ^ c, (a & b) | (a & c) | (b & c)


def fs_step(a, b, bin_):
    """One full-subtractor step: ``a - b - bin = d - 2*bout``. Returns ``(d, bout)``."""
    a, b, c = _bits("a", a), _bits("b", b), _bits("bin", bin_)
    na = a ^ 1
    return a ^ b ^ c, (na & b) | (na & c) | (b & c)


def fa_reconf(mode: str, a, b, cin) -> np.ndarray:
    """Seed-000 reconfigurable full adder: ``sum`` mode gives a^b^cin, ``carry`` mode the
    majority (the carry out), each in one cycle."""
    if mode not in FA_MODES:
        raise ValueError(f"mode must be one of {', '.join(FA_MODES)}, not {mode!r}")
    s, c = fa_step(a, b, cin)
    return s if mode == "sum" else c


def bitcounter_step(count, op: str, bit=None):
    """Per-column bit-counter (seed 001). Returns ``(new_count, lsb_out)``.

    ``count``: add ``bit`` (0/1) to the count. ``shift``: output the LSB and shift the count right
    (the carry into the next bit position, Fig. 8). ``clear``: reset to 0. ``hold``: no change.
    ``lsb_out`` is the count's LSB before the operation.
    """
    if op not in BITCOUNTER_OPS:
        raise ValueError(f"op must be one of {', '.join(BITCOUNTER_OPS)}, not {op!r}")
    count = np.asarray(count, dtype=np.int64)
    lsb = (count & 1).astype(np.uint8)
    if op == "count":
        if bit is None:
            raise ValueError("op 'count' needs bit")
        return count + _bits("bit", bit), lsb
    if op == "shift":
        return count >> 1, lsb
    if op == "clear":
        return np.zeros_like(count), lsb
    return count, lsb
