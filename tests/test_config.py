"""AcceleratorConfig: validation messages, presets, derived properties."""

import dataclasses

import pytest

from rtl.config import DATAFLOWS, PRESETS, TECHNOLOGIES, AcceleratorConfig, preset, preset_names

BASE = dict(technology="sot", rows=256, columns=128, subarrays_per_mat=4, mats=2, clock_mhz=100,
            dataflow="abs_diff")


def make(**kw):
    return AcceleratorConfig(**{**BASE, **kw})


def test_base_is_valid():
    cfg = make()
    assert cfg.operand_bits == 8 and cfg.acc_bits == 32 and cfg.mtjs_per_strip == 1


def test_keyword_only():
    with pytest.raises(TypeError):
        AcceleratorConfig("sot", 256, 128, 4, 2)  # positional use must fail


def test_frozen():
    cfg = make()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.rows = 8


@pytest.mark.parametrize(("kw", "exc", "match"), [
    (dict(technology="dram"), ValueError,
     r"^technology must be one of stt, nand_spin, sot, imac, not 'dram'$"),
    (dict(technology=3), TypeError, r"^technology must be a str, one of .*; not 3$"),
    (dict(columns=8192, subarrays_per_mat=1), ValueError,
     r"^columns must be at most 4096 \(the instruction set's 12-bit column addresses\), "
     r"not 8192$"),
    (dict(rows=250), ValueError, r"^rows must be a positive multiple of 8 in \[8, 65536\], "
                                 r"not 250$"),
    (dict(rows=0), ValueError, r"^rows must be a positive multiple of 8 .*, not 0$"),
    (dict(rows=1 << 17), ValueError, r"^rows must be .* not 131072$"),
    (dict(rows=256.0), TypeError, r"^rows must be an int, not 256\.0$"),
    (dict(rows=True), TypeError, r"^rows must be an int, not True$"),
    (dict(columns=12), ValueError, r"^columns must be a positive multiple of 8 .*, not 12$"),
    (dict(columns="128"), TypeError, r"^columns must be an int, not '128'$"),
    (dict(subarrays_per_mat=0), ValueError, r"^subarrays_per_mat must be a positive int, "
                                            r"not 0$"),
    (dict(mats=-1), ValueError, r"^mats must be an int in \[1, 65536\], not -1$"),
    (dict(mats=1 << 16 | 1), ValueError, r"^mats must be an int in \[1, 65536\], not 65537$"),
    (dict(routes=(["abs_diff"],)), ValueError, r"^routes must name known routes \(.*\), "
                                                r"not \['abs_diff'\]$"),
    (dict(mats=None), TypeError, r"^mats must be an int, not None$"),
    (dict(operand_bits=0), ValueError, r"^operand_bits must be an int in \[1, 32\], not 0$"),
    (dict(operand_bits=33), ValueError, r"^operand_bits must be an int in \[1, 32\], not 33$"),
    (dict(acc_bits=65), ValueError, r"^acc_bits must be an int in \[1, 64\], not 65$"),
    (dict(acc_bits=12), ValueError, r"^acc_bits must be at least reduce_bits \+ operand_bits "
                                    r"= 16 for columns=128 and operand_bits=8, not 12$"),
    (dict(clock_mhz=0), ValueError, r"^clock_mhz must be in \(0, 10000\], not 0$"),
    (dict(clock_mhz=float("nan")), ValueError, r"^clock_mhz must be in \(0, 10000\], not nan$"),
    (dict(clock_mhz="133"), TypeError, r"^clock_mhz must be a number, not '133'$"),
    (dict(dataflow="mac"), ValueError,
     r"^dataflow must be one of abs_diff, write_free, and_bitcount, dima_binconv, nand_inmem, "
     r"jeit_fa, dima_bitwise, not 'mac'$"),
    (dict(mtjs_per_strip=8), ValueError,
     r"^mtjs_per_strip must be 1 for technology 'sot' \(only 'nand_spin' shares a strip\), "
     r"not 8$"),
    (dict(technology="nand_spin", mtjs_per_strip=1), ValueError,
     r"^mtjs_per_strip must be an int in \[2, 64\], not 1$"),
    (dict(technology="nand_spin", mtjs_per_strip=6), ValueError,
     r"^mtjs_per_strip must be a power of two in \[2, 64\] that divides rows=256 for "
     r"technology 'nand_spin', not 6$"),
    (dict(technology="nand_spin", rows=24, mtjs_per_strip=16), ValueError,
     r"^mtjs_per_strip must be a power of two .* divides rows=24 .*, not 16$"),
    (dict(zero_skip=1), TypeError, r"^zero_skip must be a bool, not 1$"),
    (dict(read_fault_rate=1.0), ValueError,
     r"^read_fault_rate must be a probability in \[0, 1\), not 1\.0$"),
    (dict(write_fault_rate=-0.1), ValueError,
     r"^write_fault_rate must be a probability in \[0, 1\), not -0\.1$"),
    (dict(write_fault_rate="0"), TypeError, r"^write_fault_rate must be a float, not '0'$"),
    (dict(fault_seed=-1), ValueError, r"^fault_seed must be an int in \[0, 4294967295\], "
                                      r"not -1$"),
])
def test_invalid_field(kw, exc, match):
    with pytest.raises(exc, match=match):
        make(**kw)


def test_replace_is_validated():
    with pytest.raises(ValueError, match=r"^columns must be a positive multiple of 8"):
        dataclasses.replace(preset("nand_spin"), columns=100)


def test_derived():
    cfg = make(rows=256, columns=128)
    assert cfg.bit_counter_bits == 9       # 0..256 ones
    assert cfg.reduce_bits == 8            # 0..128 lanes
    assert make(rows=248).bit_counter_bits == 8
    assert make(columns=8).reduce_bits == 4
    assert cfg.subarrays == 8
    assert cfg.clock_period_ns == pytest.approx(10.0)
    assert cfg.capacity_bits == 256 * 128 * 8
    assert cfg.as_dict()["rows"] == 256
    with pytest.raises(AttributeError):
        cfg.bit_counter_bits = 3


def test_preset_values_from_seeds():
    j = preset("jeit_stt")
    # seed 000's full-adder array accumulates; its in-situ abs-diff write-back route is kept
    assert (j.technology, j.clock_mhz, j.dataflow, j.zero_skip) == ("stt", 133, "jeit_fa", True)
    assert "abs_diff" in j.routes and j.with_dataflow("abs_diff").routes == j.routes
    n = preset("nand_spin")
    assert (n.technology, n.rows, n.columns, n.subarrays_per_mat, n.mtjs_per_strip) == \
        ("nand_spin", 256, 128, 16, 8)
    assert n.capacity_bits == 64 * 2**20 * 8          # seed 001: 64 MB array
    assert n.strips_per_column == 32
    d = preset("dima_sot")
    assert (d.technology, d.rows, d.columns) == ("sot", 256, 512)
    assert d.capacity_bits == 512 * 2**20              # seed 002: 512 Mb
    assert preset("imac_sot").technology == "imac"


def test_presets_cover_technologies_and_are_valid():
    assert set(preset_names()) == {"jeit_stt", "nand_spin", "dima_sot", "imac_sot"}
    assert {p.technology for p in PRESETS.values()} == set(TECHNOLOGIES)
    assert {p.dataflow for p in PRESETS.values()} <= set(DATAFLOWS)
    for cfg in PRESETS.values():
        assert dataclasses.replace(cfg) == cfg


def test_unknown_preset_lists_known():
    with pytest.raises(ValueError, match=r"^unknown preset 'foo'; known presets: jeit_stt, "
                                         r"nand_spin, dima_sot, imac_sot$"):
        preset("foo")
    with pytest.raises(TypeError, match=r"^preset name must be a str, not 3$"):
        preset(3)
