"""MTJ device model: parameter table, nominal margins, Monte Carlo BER, errors, CLI."""

import math

import pytest

from golden.array import rate_to_threshold as golden_rate_to_threshold
from rtl.mtj_array import rate_to_threshold as rtl_rate_to_threshold
from sim.hw import device as D

TECHS = D.TECHNOLOGIES
MODES = D.MODES


def _q(z):
    """Upper normal tail P(Z > z)."""
    return 0.5 * math.erfc(z / math.sqrt(2))


# -- the table ---------------------------------------------------------------------------------

@pytest.mark.parametrize("tech", TECHS)
def test_every_parameter_has_a_source(tech):
    params = D.PARAMETERS[tech]
    assert params
    for name, p in params.items():
        assert isinstance(p.source, str) and p.source.strip(), (tech, name)
        assert isinstance(p.unit, str)
        assert p.source.startswith("ASSUMPTION") or "seed 00" in p.source, (tech, name)


def test_assumption_flags_follow_the_seeds():
    P = D.PARAMETERS
    # given by a seed
    assert not P["stt"]["window_ohm"].assumption and not P["stt"]["cv_r_p"].assumption
    assert not P["nand_spin"]["tmr"].assumption and not P["nand_spin"]["ra_ohm_um2"].assumption
    assert not P["sot"]["sigma_ra"].assumption and not P["sot"]["sigma_tmr"].assumption
    # not given by any seed
    for tech in TECHS:
        assert P[tech]["access_ohm"].assumption
    assert P["stt"]["tmr"].assumption and P["sot"]["tmr"].assumption
    # seed 003 is an abstract: everything numeric for imac is assumed
    assert all(p.assumption for n, p in P["imac"].items())


def test_derived_resistances():
    stt = D.device("stt")
    assert stt.r_ap_ohm - stt.r_p_ohm == pytest.approx(5349.0)            # seed 000 window
    assert stt.r_ap_ohm / stt.r_p_ohm - 1 == pytest.approx(1.20)          # assumed TMR
    ns = D.device("nand_spin")
    area_um2 = math.pi / 4 * 0.040 ** 2
    assert ns.r_p_ohm * area_um2 == pytest.approx(5.0)                    # seed 001 RA
    assert ns.r_ap_ohm / ns.r_p_ohm == pytest.approx(2.20)                # seed 001 TMR 120%
    assert D.device("nand_spin").logic_one == "P" and D.device("sot").logic_one == "AP"


# -- nominal margins -----------------------------------------------------------------------------

@pytest.mark.parametrize("tech", TECHS)
def test_margins_physics(tech):
    dev = D.device(tech)
    m = {mode: D.sense_margin(tech, mode) for mode in MODES}
    for mode, sm in m.items():
        assert sm.margin_ohm > 0 and 0 < sm.relative < 1, mode
        assert all(v > 0 for v in sm.per_input_ohm.values()), mode
    # 1-row: half the window on both sides of R_ref = (R_P + R_AP) / 2
    assert m["read"].margin_ohm == pytest.approx(dev.window_ohm / 2)
    assert m["read"].reference_ohm == pytest.approx(
        dev.access_ohm + (dev.r_p_ohm + dev.r_ap_ohm) / 2)
    # and_fu: W = 1 is a read, W = 0 blocks the path (can not fail)
    assert m["and_fu"].margin_ohm == pytest.approx(m["read"].margin_ohm)
    assert math.isinf(m["and_fu"].per_input_ohm[(0, 0)])
    assert math.isinf(m["and_fu"].per_input_ohm[(1, 0)])
    # 2-row: the parallel connection compresses the window (a = R_T + R_AP, b = R_T + R_P)
    a, b = dev.access_ohm + dev.r_ap_ohm, dev.access_ohm + dev.r_p_ohm
    both_ap = a * (a - b) / (4 * (a + b))
    both_p = b * (a - b) / (4 * (a + b))
    if dev.logic_one == "AP":       # seed 002: AND separates AP//AP, OR separates P//P
        assert m["and2"].margin_ohm == pytest.approx(both_ap)
        assert m["or2"].margin_ohm == pytest.approx(both_p)
        assert m["or2"].margin_ohm < m["and2"].margin_ohm
    else:                           # P = 1: the roles swap
        assert m["and2"].margin_ohm == pytest.approx(both_p)
        assert m["or2"].margin_ohm == pytest.approx(both_ap)
        assert m["and2"].margin_ohm < m["or2"].margin_ohm
    for mode in ("and2", "or2"):
        assert m[mode].margin_ohm < m["read"].margin_ohm / 2
        assert m[mode].relative < m["read"].relative


# -- Monte Carlo -------------------------------------------------------------------------------

@pytest.mark.parametrize("tech", TECHS)
@pytest.mark.parametrize("mode", MODES)
def test_zero_variation_no_errors(tech, mode):
    r = D.ber(tech, mode, cv=0, trials=2000, seed=3)
    assert r.worst == 0 and r.average == 0
    assert all(v == 0 for v in r.per_input.values())
    assert len(r.per_input) == (2 if mode == "read" else 4)


@pytest.mark.parametrize("tech", TECHS)
@pytest.mark.parametrize("mode", MODES)
def test_ber_grows_with_cv(tech, mode):
    grid = (0.0, 0.02, 0.05, 0.08, 0.12, 0.16, 0.2, 0.25)
    res = [D.ber(tech, mode, cv=cv, trials=20_000, seed=1) for cv in grid]
    avg = [r.average for r in res]
    worst = [r.worst for r in res]
    assert avg == sorted(avg) and worst == sorted(worst)
    assert avg[0] == 0 and avg[-1] > 0.01
    for r in res:
        assert r.worst >= r.average
        assert r.average == pytest.approx(sum(r.per_input.values()) / len(r.per_input))


def test_and_fu_blocked_inputs_never_fail():
    r = D.ber("nand_spin", "and_fu", cv=0.25, trials=20_000, seed=2)
    assert r.per_input[(0, 0)] == 0 and r.per_input[(1, 0)] == 0
    assert r.per_input[(0, 1)] > 0 and r.per_input[(1, 1)] > 0


@pytest.mark.parametrize("tech,combo,state", [("stt", (0,), "P"), ("stt", (1,), "AP"),
                                              ("sot", (0,), "P")])
def test_read_ber_matches_normal_tail(tech, combo, state):
    # stt: R ~ N(R0, (cv R0)^2) per state; sot P state: R_P = RA / A with RA normal. Either way
    # the error is a normal tail at (R_ref - R_P0) = (R_AP0 - R_ref) = window / 2.
    cv, n = 0.25, 200_000
    dev = D.device(tech)
    r0 = dev.r_p_ohm if state == "P" else dev.r_ap_ohm
    p = _q((dev.window_ohm / 2) / (cv * r0))
    got = D.ber(tech, "read", cv=cv, trials=n, seed=7).per_input[combo]
    bound = 5 * math.sqrt(p * (1 - p) / n)
    assert abs(got - p) <= bound, (got, p, bound)


def test_seed_determinism():
    a = D.ber("sot", "or2", cv=0.15, trials=5000, seed=11)
    b = D.ber("sot", "or2", cv=0.15, trials=5000, seed=11)
    c = D.ber("sot", "or2", cv=0.15, trials=5000, seed=12)
    assert a == b
    assert a.per_input != c.per_input


def test_default_variation_is_the_table():
    r = D.ber("stt", "read", trials=10, seed=0)
    assert r.sigma == (0.011, 0.012) and r.trials == 10
    assert D.ber("sot", "and2", trials=10).sigma == (0.05, 0.10)


def test_threshold_reuses_the_array_mapping():
    for p in (0.0, 1e-5, 2.6e-4, 0.01, 0.5, 0.99999):
        assert D.ber_to_threshold(p) == golden_rate_to_threshold(p) == rtl_rate_to_threshold(p)
    assert D.ber_to_threshold(0.5) == 32768


# -- errors ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,match", [
    (dict(technology="dram"), r"technology must be one of stt, nand_spin, sot, imac, not 'dram'"),
    (dict(mode="xor"), r"mode must be one of read, and_fu, and2, or2, not 'xor'"),
    (dict(cv=-0.01), r"cv must be None or a number in \[0, 0.25\], not -0.01"),
    (dict(cv=0.3), r"cv must be None or a number in \[0, 0.25\], not 0.3"),
    (dict(cv=float("nan")), r"cv must be .* not nan"),
    (dict(trials=0), r"trials must be an int >= 1, not 0"),
    (dict(trials=2.5), r"trials must be an int >= 1, not 2.5"),
    (dict(seed=-1), r"seed must be an int >= 0, not -1"),
])
def test_bad_inputs(kwargs, match):
    args = dict(technology="stt", mode="read", cv=None, trials=10, seed=0)
    args.update(kwargs)
    tech, mode = args.pop("technology"), args.pop("mode")
    with pytest.raises(ValueError, match=match):
        D.ber(tech, mode, **args)


def test_bad_inputs_margin_and_device():
    with pytest.raises(ValueError, match=r"mode must be one of .* not 'nand'"):
        D.sense_margin("stt", "nand")
    with pytest.raises(ValueError, match=r"technology must be one of .* not None"):
        D.device(None)


# -- CLI ---------------------------------------------------------------------------------------

def test_cli_table(capsys):
    assert D.main(["--technology", "sot", "--trials", "1000"]) == 0
    out = capsys.readouterr().out
    for name in D.PARAMETERS["sot"]:
        assert name in out
    for mode in MODES:
        assert f"\n{mode} " in out
    assert "ASSUMPTION" in out


@pytest.mark.parametrize("argv,what", [(["--technology", "dram"], "'dram'"),
                                       (["--trials", "0"], "trials"),
                                       (["--cv", "abc"], "abc"),
                                       (["--cv", "-1"], "-1")])
def test_cli_bad_input(capsys, argv, what):
    assert D.main(argv) == 2
    cap = capsys.readouterr()
    assert cap.out == ""
    lines = cap.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and what in lines[0]
