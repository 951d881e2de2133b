"""MTJ device models per technology: nominal resistances, variation, sense margins and the
Monte Carlo bit-error rate (BER) of each sensing mode.

Every device constant lives once, in :data:`PARAMETERS`, with the seed (number and table or
section) it comes from, or ``"ASSUMPTION: ..."`` and the reason where the seeds are silent.
Everything else (R_P, R_AP, references, margins) is derived from that table.

Cell and sensing model
----------------------
A cell on the read path is its MTJ (R_P or R_AP) in series with its access transistor R_T
(an assumption: no seed gives it). The sense amplifier compares the path resistance with a
reference path; the reference path holds a matched transistor, so

* ``read`` -- one cell: R_T + R_MTJ against R_T + (R_P + R_AP) / 2 (seed 001 sec. 3.2, SPCSA:
  R_ref = (R_H + R_L) / 2; seed 002 sec. 3.1 only says V_sense,P < V_ref < V_sense,AP and we
  use the same midpoint).
* ``and_fu`` -- seed 001 Table 1 / sec. 3.2 (2): the same current path as ``read``; the operand W
  drives FU, the transistor in series with the cell. W = 1 gives the read path; W = 0 turns the
  path off, R_path is open (infinite, off-state leakage ignored), the path never discharges and
  the SA outputs "0" whatever the cell holds: those inputs can not fail. Only with complementary
  storage (P = logic 1, seed 001 Fig. 4(c)) is "open path" the same answer as "0", so ``and_fu``
  is evaluated with P = 1 on every technology (rows used as AND_FU operands are stored
  complemented where a technology's read convention is AP = 1).
* ``and2`` / ``or2`` -- seed 002 sec. 3.1 2-row activation: the two cells with their access
  transistors in parallel, (R_T + R_1) // (R_T + R_2), against a reference at the midpoint of
  two adjacent nominal parallel values: between R_AP//R_P and R_AP//R_AP (separates "both AP"),
  or between R_P//R_P and R_AP//R_P (separates "both P"). With AP = logic 1 (seed 002) the first
  is AND and the second OR, exactly as in the seed; with P = logic 1 the roles swap.

The sign convention of a margin: ``R_path - R_ref`` when the correct output is on the high side,
``R_ref - R_path`` otherwise; positive means a nominal cell is sensed correctly.

Physics of the margins (checked by the tests). With a = R_T + R_AP and b = R_T + R_P the read
margin is (a - b) / 2 = (R_AP - R_P) / 2. The 2-row margins are a (a - b) / (4 (a + b)) (both-AP
reference) and b (a - b) / (4 (a + b)) (both-P reference): a parallel connection compresses the
window, each is less than half the read margin, and the both-P one is the smaller (b < a).

Variation
---------
Resistances are drawn as **normal** variables, because the seeds state a standard deviation
(seed 000: coefficient of variation of LRS and HRS; seed 002: sigma on RA and on TMR for a
Monte Carlo run), which is the Gaussian mismatch of a SPICE Monte Carlo. Two kinds:

* ``resistance`` (stt): R_P ~ N(R_P0, (cv_r_p R_P0)^2), R_AP ~ N(R_AP0, (cv_r_ap R_AP0)^2).
* ``ra_tmr`` (nand_spin, sot, imac): RA ~ N(RA0, (sigma_ra RA0)^2), TMR ~ N(TMR0,
  (sigma_tmr TMR0)^2), independent per cell; R_P = RA / A, R_AP = R_P (1 + TMR).

The access transistor and the reference are nominal (no variation): an assumption that keeps the
MTJ variation the seeds give as the only source. The ``cv`` argument of :func:`ber` overrides
both relative sigmas of a technology with one value (``cv=0`` is the nominal device). ``cv`` is
limited to [0, 0.25]: beyond, a normal resistance is negative with probability above 3e-5.

Monte Carlo: for every input combination, ``trials`` independent draws from one seeded
:class:`numpy.random.Generator`; the standard normals are drawn in a fixed order and scaled by
the sigmas, so one seed gives common random numbers across ``cv`` values.

Not used: seed 000's noise margin "NM ~ 50.5" (its unit and definition are not stated in the
abstract).
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

import numpy as np

from golden.array import SENSE_COMMANDS, TECHNOLOGIES, rate_to_threshold
from rtl.outputs import interruptible

__all__ = [
    "TECHNOLOGIES", "MODES", "DEFAULT_TRIALS", "MAX_TRIALS", "MAX_CV", "Param", "PARAMETERS",
    "DeviceModel",
    "SenseMargin", "BerResult", "device", "sense_margin", "ber", "ber_to_threshold", "main",
]

#: Sensing modes, in the golden array's words (:data:`golden.array.SENSE_COMMANDS`).
MODES = SENSE_COMMANDS

#: Monte Carlo trials per input combination: seed 002 sec. 3.1 ran 100000 trials.
DEFAULT_TRIALS = 100_000
#: Memory budget of :func:`ber`: at most this many trials. ASSUMPTION: 10**7 (100x the seed's):
#: the draws take about 125 bytes per trial at the peak (measured: every technology and mode at
#: 4*10**6 trials raised the peak RSS by 498 MiB), so at most about 1.3 GB.
MAX_TRIALS = 10_000_000

#: Largest relative sigma accepted (normal draws stay positive with probability > 1 - 3e-5).
MAX_CV = 0.25


@dataclass(frozen=True)
class Param:
    """One device constant: its value, unit and source (``"ASSUMPTION: ..."`` if assumed)."""
    value: float | str
    unit: str
    source: str

    @property
    def assumption(self) -> bool:
        return self.source.startswith("ASSUMPTION")


_TMR_001 = "seed 001 Table 2 (TMR 120%)"
_RA_001 = "seed 001 Table 2 (resistance-area product 5 Ohm um^2)"
_SIZE = ("ASSUMPTION: no seed gives the MTJ size; a 40 nm circular pillar, the common "
         "perpendicular-MTJ size at the seeds' 40-45 nm nodes")
_RT = ("ASSUMPTION: no seed gives the access transistor; 1 kOhm, the on-resistance of a "
       "minimum-width 45 nm NMOS at read bias")
_SIG_002 = "seed 002 sec. 3.1 (Monte Carlo: sigma = 5% on RA, sigma = 10% on TMR)"

#: THE device table: technology -> parameter name -> :class:`Param`.
PARAMETERS: dict[str, dict[str, Param]] = {
    "stt": {
        "variation_kind": Param("resistance", "", "seed 000 abstract gives CVs of LRS and HRS"),
        "logic_one": Param("AP", "", "ASSUMPTION: seed 000 abstract silent; seed 001 sec. 2.1 "
                           "convention, AP (high resistance) = logic 1"),
        "window_ohm": Param(5349.0, "Ohm", "seed 000 abstract (Results): resistance window "
                            "~5349 Ohm"),
        "tmr": Param(1.20, "", "ASSUMPTION: seed 000 gives a window but no TMR; " + _TMR_001
                     + ", the only TMR in the seeds"),
        "cv_r_p": Param(0.011, "", "seed 000 abstract (Results): CV of LRS ~1.1%"),
        "cv_r_ap": Param(0.012, "", "seed 000 abstract (Results): CV of HRS ~1.2%"),
        "access_ohm": Param(1000.0, "Ohm", _RT),
    },
    "nand_spin": {
        "variation_kind": Param("ra_tmr", "", "ASSUMPTION: seed 001 gives RA and TMR, no "
                                "variation; variation on RA and TMR as in seed 002 sec. 3.1"),
        "logic_one": Param("P", "", "seed 001 sec. 3.2 and Table 1: complementary storage, "
                           "AP = 0, P = 1"),
        "ra_ohm_um2": Param(5.0, "Ohm um^2", _RA_001),
        "tmr": Param(1.20, "", _TMR_001),
        "diameter_nm": Param(40.0, "nm", _SIZE),
        "sigma_ra": Param(0.05, "", "ASSUMPTION: seed 001 gives no variation; " + _SIG_002),
        "sigma_tmr": Param(0.10, "", "ASSUMPTION: seed 001 gives no variation; " + _SIG_002),
        "access_ohm": Param(1000.0, "Ohm", _RT),
    },
    "sot": {
        "variation_kind": Param("ra_tmr", "", _SIG_002),
        "logic_one": Param("AP", "", "seed 002 sec. 3.1: parallel = data 0, anti-parallel = "
                           "data 1"),
        "ra_ohm_um2": Param(5.0, "Ohm um^2", "ASSUMPTION: seed 002 gives no RA; " + _RA_001
                            + ", the other SOT-family seed"),
        "tmr": Param(1.20, "", "ASSUMPTION: seed 002 gives no TMR; " + _TMR_001),
        "diameter_nm": Param(40.0, "nm", _SIZE),
        "sigma_ra": Param(0.05, "", _SIG_002),
        "sigma_tmr": Param(0.10, "", _SIG_002),
        "access_ohm": Param(1000.0, "Ohm", _RT),
    },
    "imac": {
        "variation_kind": Param("ra_tmr", "", "ASSUMPTION: seed 003 is an abstract only; "
                                "SOT-MRAM like seed 002"),
        "logic_one": Param("AP", "", "ASSUMPTION: seed 003 abstract silent; as seed 002 "
                           "sec. 3.1"),
        "ra_ohm_um2": Param(5.0, "Ohm um^2", "ASSUMPTION: seed 003 abstract silent; " + _RA_001),
        "tmr": Param(1.20, "", "ASSUMPTION: seed 003 abstract silent; " + _TMR_001),
        "diameter_nm": Param(40.0, "nm", _SIZE),
        "sigma_ra": Param(0.05, "", "ASSUMPTION: seed 003 abstract silent; " + _SIG_002),
        "sigma_tmr": Param(0.10, "", "ASSUMPTION: seed 003 abstract silent; " + _SIG_002),
        "access_ohm": Param(1000.0, "Ohm", _RT),
    },
}

_VARIATION = {"resistance": ("cv_r_p", "cv_r_ap"), "ra_tmr": ("sigma_ra", "sigma_tmr")}

# Input combinations per mode, in a fixed order (the order of the Monte Carlo draws).
_COMBOS = {"read": ((0,), (1,)),
           "and_fu": ((0, 0), (0, 1), (1, 0), (1, 1)),      # (D stored, W on FU)
           "and2": ((0, 0), (0, 1), (1, 0), (1, 1)),
           "or2": ((0, 0), (0, 1), (1, 0), (1, 1))}


# ----------------------------------------------------------------------------------------------
# Validation

def _check_technology(technology) -> str:
    if not isinstance(technology, str) or technology not in TECHNOLOGIES:
        raise ValueError(f"technology must be one of {', '.join(TECHNOLOGIES)}, "
                         f"not {technology!r}")
    return technology


def _check_mode(mode) -> str:
    if not isinstance(mode, str) or mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    return mode


def _check_cv(cv):
    if cv is None:
        return None
    if isinstance(cv, bool) or not isinstance(cv, (int, float, np.floating, np.integer)) \
            or not math.isfinite(cv) or not 0.0 <= cv <= MAX_CV:
        raise ValueError(f"cv must be None or a number in [0, {MAX_CV}], not {cv!r}")
    return float(cv)


def _check_count(name, value, lo):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an int >= {lo}, not {value!r}")
    if name == "trials" and value > MAX_TRIALS:
        raise ValueError(f"trials must be an int in [1, {MAX_TRIALS}] (the memory budget: about "
                         f"125 bytes per trial, sim.hw.device.MAX_TRIALS), not {value!r}")
    return int(value)


# ----------------------------------------------------------------------------------------------
# Nominal device


@dataclass(frozen=True)
class DeviceModel:
    """The nominal MTJ of one technology, derived from :data:`PARAMETERS`.

    Members
    -------
    r_p_ohm, r_ap_ohm : float
        Nominal parallel / anti-parallel resistance. ``stt``: R_P = window / TMR, R_AP = R_P +
        window. Others: R_P = RA / (pi d^2 / 4), R_AP = R_P (1 + TMR).
    access_ohm : float
        Access transistor on-resistance in series with each cell.
    logic_one : str
        Resistance state holding logic 1 for ``read``/``and2``/``or2`` (``"P"`` or ``"AP"``).
    variation_kind : str
        ``"resistance"`` or ``"ra_tmr"`` (see the module docstring).
    sigma : tuple of float
        The two relative sigmas of that kind, as in the table.
    """
    technology: str
    r_p_ohm: float
    r_ap_ohm: float
    access_ohm: float
    logic_one: str
    variation_kind: str
    sigma: tuple
    tmr: float

    @property
    def window_ohm(self) -> float:
        return self.r_ap_ohm - self.r_p_ohm


def device(technology: str) -> DeviceModel:
    """The nominal device of ``technology`` (one of :data:`TECHNOLOGIES`)."""
    p = PARAMETERS[_check_technology(technology)]
    v = {k: q.value for k, q in p.items()}
    tmr = v["tmr"]
    if v["variation_kind"] == "resistance":
        r_p = v["window_ohm"] / tmr
        r_ap = r_p + v["window_ohm"]
    else:
        area_um2 = math.pi / 4 * (v["diameter_nm"] * 1e-3) ** 2
        r_p = v["ra_ohm_um2"] / area_um2
        r_ap = r_p * (1 + tmr)
    kind = v["variation_kind"]
    return DeviceModel(technology=technology, r_p_ohm=r_p, r_ap_ohm=r_ap,
                       access_ohm=v["access_ohm"], logic_one=v["logic_one"],
                       variation_kind=kind, sigma=tuple(v[n] for n in _VARIATION[kind]),
                       tmr=tmr)


# ----------------------------------------------------------------------------------------------
# Sensing: path resistances, references, expected sides

def _parallel(r1, r2):
    return r1 * r2 / (r1 + r2)


def _states(dev: DeviceModel, mode: str, combo: tuple) -> tuple:
    """(MTJ states of the activated cells, True if FU blocks the path, correct output high?)."""
    one = "P" if mode == "and_fu" else dev.logic_one
    zero = "AP" if one == "P" else "P"
    st = tuple(one if b else zero for b in combo)
    if mode == "read":
        y, cells, blocked = combo[0], st, False
    elif mode == "and_fu":
        y, cells, blocked = combo[0] & combo[1], st[:1], combo[1] == 0
    elif mode == "and2":
        y, cells, blocked = combo[0] & combo[1], st, False
    else:
        y, cells, blocked = combo[0] | combo[1], st, False
    return cells, blocked, (y == 1) == (one == "AP")


def _reference_ohm(dev: DeviceModel, mode: str) -> float:
    a = dev.access_ohm + dev.r_ap_ohm
    b = dev.access_ohm + dev.r_p_ohm
    if mode in ("read", "and_fu"):
        return dev.access_ohm + (dev.r_p_ohm + dev.r_ap_ohm) / 2
    both_ap = (_parallel(a, b) + a / 2) / 2     # between AP//P and AP//AP
    both_p = (b / 2 + _parallel(a, b)) / 2      # between P//P and AP//P
    and_separates_ap = dev.logic_one == "AP"    # AND singles out (1, 1)
    if mode == "and2":
        return both_ap if and_separates_ap else both_p
    return both_p if and_separates_ap else both_ap


def _path_ohm(dev: DeviceModel, cells, blocked, r_cells):
    """Path resistance from per-cell MTJ resistances (arrays or floats)."""
    if blocked:
        return np.full(np.shape(r_cells[0]), np.inf)
    paths = [dev.access_ohm + r for r in r_cells]
    return paths[0] if len(paths) == 1 else _parallel(paths[0], paths[1])


@dataclass(frozen=True)
class SenseMargin:
    """Nominal sense margin of one mode.

    Members
    -------
    reference_ohm : float
        The reference path resistance.
    per_input_ohm : dict
        Input combination -> signed margin (positive: sensed correctly); ``inf`` where FU
        blocks the path.
    margin_ohm : float
        The smallest margin over the inputs.
    relative : float
        ``margin_ohm / reference_ohm``.
    """
    technology: str
    mode: str
    reference_ohm: float
    per_input_ohm: dict
    margin_ohm: float
    relative: float


def sense_margin(technology: str, mode: str) -> SenseMargin:
    """Nominal sense margin of ``mode`` (one of :data:`MODES`) on ``technology``."""
    dev = device(technology)
    _check_mode(mode)
    ref = _reference_ohm(dev, mode)
    per = {}
    for combo in _COMBOS[mode]:
        cells, blocked, high = _states(dev, mode, combo)
        r = [dev.r_ap_ohm if s == "AP" else dev.r_p_ohm for s in cells]
        path = float(_path_ohm(dev, cells, blocked, r))
        per[combo] = path - ref if high else ref - path
    m = min(per.values())
    return SenseMargin(technology, mode, ref, per, m, m / ref)


# ----------------------------------------------------------------------------------------------
# Monte Carlo BER

@dataclass(frozen=True)
class BerResult:
    """Monte Carlo bit-error rate of one mode.

    Members
    -------
    per_input : dict
        Input combination -> fraction of the ``trials`` draws sensed wrongly.
    worst : float
        The largest per-input BER.
    average : float
        The mean over the input combinations (equiprobable inputs).
    sigma : tuple of float
        The relative sigmas used (the table's, or ``(cv, cv)``).
    """
    technology: str
    mode: str
    sigma: tuple
    trials: int
    seed: int
    per_input: dict
    worst: float
    average: float


def _draw_mtj(dev: DeviceModel, state: str, sigma, z):
    """MTJ resistance of ``state`` from standard normals z[0] (RA or R), z[1] (TMR)."""
    s0, s1 = sigma
    if dev.variation_kind == "resistance":
        if state == "P":
            return dev.r_p_ohm * (1 + s0 * z[0])
        return dev.r_ap_ohm * (1 + s1 * z[0])
    r_p = dev.r_p_ohm * (1 + s0 * z[0])
    if state == "P":
        return r_p
    return r_p * (1 + dev.tmr * (1 + s1 * z[1]))


def ber(technology: str, mode: str, *, cv=None, trials: int = DEFAULT_TRIALS,
        seed: int = 0) -> BerResult:
    """Monte Carlo BER of sensing ``mode`` on ``technology``.

    Parameters
    ----------
    technology : str
        One of :data:`TECHNOLOGIES`.
    mode : str
        One of :data:`MODES`.
    cv : float or None
        None: the technology's sigmas from :data:`PARAMETERS`; a number in [0, :data:`MAX_CV`]:
        both relative sigmas set to it.
    trials : int
        Draws per input combination, >= 1.
    seed : int
        Seed of the :class:`numpy.random.Generator`, >= 0.

    Raises
    ------
    ValueError
        Unknown technology or mode, ``cv`` out of range, ``trials`` < 1, ``seed`` < 0.
    """
    dev = device(technology)
    _check_mode(mode)
    cv = _check_cv(cv)
    trials = _check_count("trials", trials, 1)
    seed = _check_count("seed", seed, 0)
    sigma = dev.sigma if cv is None else (cv, cv)
    ref = _reference_ohm(dev, mode)
    rng = np.random.default_rng(seed)
    per = {}
    for combo in _COMBOS[mode]:
        cells, blocked, high = _states(dev, mode, combo)
        z = rng.standard_normal((len(combo), 2, trials))   # drawn for every cell, always
        r = [_draw_mtj(dev, s, sigma, z[i]) for i, s in enumerate(cells)]
        path = _path_ohm(dev, cells, blocked, r)
        wrong = path <= ref if high else path >= ref      # a tie is metastable: counted wrong
        per[combo] = int(np.count_nonzero(wrong)) / trials
    vals = list(per.values())
    return BerResult(technology, mode, tuple(sigma), trials, seed, per, max(vals),
                     sum(vals) / len(vals))


def ber_to_threshold(ber_value: float) -> int:
    """The array's 16-bit fault threshold for a flip probability (``config.read_fault_rate``):
    :func:`golden.array.rate_to_threshold`."""
    return rate_to_threshold(ber_value)


# ----------------------------------------------------------------------------------------------
# CLI: python -m sim.hw.device --technology stt

def _report(technology: str, trials: int, seed: int, cv) -> str:
    dev = device(technology)
    lines = [f"technology {technology}", "", f"{'parameter':<16} {'value':>12} {'unit':<9} source"]
    for name, p in PARAMETERS[technology].items():
        val = f"{p.value:.6g}" if isinstance(p.value, float) else str(p.value)
        lines.append(f"{name:<16} {val:>12} {p.unit:<9} {p.source}")
    lines += [f"{'r_p_ohm':<16} {dev.r_p_ohm:>12.6g} {'Ohm':<9} derived",
              f"{'r_ap_ohm':<16} {dev.r_ap_ohm:>12.6g} {'Ohm':<9} derived", ""]
    sig = "table" if cv is None else f"cv={cv}"
    lines.append(f"{'mode':<7} {'ref Ohm':>9} {'margin Ohm':>11} {'rel':>7} "
                 f"{'BER worst':>10} {'BER avg':>10}   ({sig}, {trials} trials, seed {seed})")
    for mode in MODES:
        m = sense_margin(technology, mode)
        b = ber(technology, mode, cv=cv, trials=trials, seed=seed)
        lines.append(f"{mode:<7} {m.reference_ohm:>9.1f} {m.margin_ohm:>11.1f} "
                     f"{m.relative:>7.4f} {b.worst:>10.3e} {b.average:>10.3e}")
    return "\n".join(lines)


@interruptible("python -m sim.hw.device", "nothing was written (it only prints)")
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m sim.hw.device",
                                 description="MTJ parameter table and sensing BER.")
    ap.add_argument("--technology", default="stt", help=f"one of {', '.join(TECHNOLOGIES)}")
    ap.add_argument("--trials", default=str(DEFAULT_TRIALS), help="Monte Carlo trials")
    ap.add_argument("--seed", default="0", help="random seed")
    ap.add_argument("--cv", default=None, help="override both relative sigmas")
    args = ap.parse_args(argv)
    try:
        try:
            trials = int(args.trials)
            seed = int(args.seed)
            cv = None if args.cv is None else float(args.cv)
        except ValueError as e:
            raise ValueError(f"--trials and --seed must be ints, --cv a number: {e}") from None
        _check_technology(args.technology)
        _check_count("trials", trials, 1)
        _check_count("seed", seed, 0)
        report = _report(args.technology, trials, seed, _check_cv(cv))
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
