"""Energy / latency / area model: the sourced table, a hand-computed run, errors."""

import dataclasses
import json

import pytest

from rtl.config import preset
from rtl.isa import N_COUNTERS, Opcode, counter_index
from sim.compile import asm
from sim.hw import energy as E
from sim.hw.device import TECHNOLOGIES
from sim.hw.isa_model import run_program

UNITS = {"fJ", "ns", "V", "F^2", "nm", "um^2", "", "gates/lane", "gates/bit", "bit"}


@pytest.mark.parametrize("tech", TECHNOLOGIES)
def test_every_entry_has_value_unit_source(tech):
    for name, p in {**E.ARRAY[tech], **E.PERIPHERY}.items():
        assert isinstance(p.value, (int, float)) and p.value >= 0, (tech, name)
        assert p.source.strip(), (tech, name)
        assert p.source.startswith(("ASSUMPTION", "seed 00", "derived")), (tech, name)
        assert p.unit in UNITS, (tech, name, p.unit)
        # units in names agree with the unit column
        for suffix, unit in (("_fj", "fJ"), ("_ns", "ns"), ("_v", "V"), ("_nm", "nm"),
                             ("_um2", "um^2"), ("_f2", "F^2")):
            if name.endswith(suffix):
                assert p.unit == unit, (tech, name)


def test_seed_001_numbers():
    t = E.ARRAY["nand_spin"]
    assert t["read_fj"].value == 4.0 and t["read_ns"].value == 0.17
    assert t["erase_device_fj"].value == 180.0 and t["erase_ns_per_mtj"].value == 0.3
    assert t["program_device_fj"].value == 840.0 and t["program_ns"].value == 5.0
    assert t["program_bit_fj"].value == 840.0 / 8
    assert all(E.ARRAY[k]["sense_remainder_fj"].value < 4.0 for k in TECHNOLOGIES)


def _run(words):
    run = run_program(words)
    assert not run.error
    return run


def test_hand_computed_nand_spin():
    config = preset("nand_spin")
    words = asm.assemble([
        asm.erase(a=0),
        asm.loop(count=2), asm.program(a=asm.rel(0), b=0), asm.endloop(),
        asm.loop(count=3), asm.and_fu(a=asm.rel(0), b=1), asm.endloop(),
        asm.bitcount(a=0, b=0, d=0, imm=1),
        asm.halt(),
    ])
    run = _run(words)
    t, p = E.ARRAY["nand_spin"], E.PERIPHERY
    toggle = p["activity"].value * p["gate_toggle_fj"].value
    sense = p["sense_gates"].value
    lanes = config.columns * config.subarrays_per_mat
    per_lane_fj = (1 * t["erase_mtj_fj"].value * config.mtjs_per_strip
                   + 2 * (t["program_bit_fj"].value + sense * toggle)
                   + 3 * (t["and_fu_fj"].value + (sense + p["popcount_gates"].value) * toggle)
                   + 1 * (t["read_fj"].value + (sense + p["counter_gates_per_bit"].value
                                                * config.bit_counter_bits) * toggle))
    # each AND_FU also updates one accumulator per subarray (rtl.core reduces every AND)
    per_unit_fj = 3 * p["acc_gates_per_bit"].value * config.acc_bits * toggle
    r = E.estimate(config, run.counters)
    assert r.counts["erase"] == 1 and r.counts["program"] == 2 and r.counts["and_fu"] == 3
    assert r.energy_j == pytest.approx(
        (lanes * per_lane_fj + config.subarrays_per_mat * per_unit_fj) * 1e-15, rel=1e-12)
    assert r.latency_s == run.counters[0] / (config.clock_mhz * 1e6)
    assert r.energy_per_class_j["loading data"] == pytest.approx(
        lanes * (180.0 / 8 * 8 + 2 * (105.0 + sense * toggle)) * 1e-15, rel=1e-12)
    assert r.energy_per_class_j["control"] == 0.0
    assert sum(r.energy_per_class_j.values()) == pytest.approx(r.energy_j, rel=1e-12)
    assert set(r.energy_per_class_j) == set(E.CLASSES)
    # a dict of counts gives the same report
    d = {"cycles": run.counters[0], Opcode.ERASE: 1, "program": 2, "and_fu": 3, "bitcount": 1,
         "loop": 2, "endloop": run.counters[2 + Opcode.ENDLOOP.value], "halt": 1}
    assert E.estimate(config, d).energy_j == r.energy_j
    json.dumps(r.to_dict())


def test_columns_active_scales_lanes_and_units():
    # jeit_stt's core without its full-adder array (whose FS_STEP charge test_route_jeit_fa
    # checks): the abs-diff lanes alone
    config = dataclasses.replace(preset("jeit_stt"), dataflow="abs_diff",
                                 routes=("abs_diff", "and_bitcount"))
    c = {"cycles": 10, "shift_acc": 4, "fs_step": 2}
    one = E.estimate(config, c, columns_active=config.columns)
    full = E.estimate(config, c)
    assert full.energy_j == pytest.approx(one.energy_j * config.subarrays_per_mat, rel=1e-12)
    t, p = E.ARRAY["stt"], E.PERIPHERY
    toggle = p["activity"].value * p["gate_toggle_fj"].value
    # rtl.core: an FS_STEP senses x_b only (w_b from the buffer); its write-back is a
    # separate WRITE_ROW micro-op.
    fs = t["read_fj"].value + (p["sense_gates"].value + p["fa_fs_gates"].value) * toggle
    sa = config.columns * (t["read_fj"].value + (p["sense_gates"].value
                           + p["popcount_gates"].value) * toggle) \
        + p["acc_gates_per_bit"].value * config.acc_bits * toggle
    assert one.energy_j == pytest.approx((4 * sa + 2 * config.columns * fs) * 1e-15, rel=1e-12)


@pytest.mark.parametrize("name", ["jeit_stt", "nand_spin", "dima_sot", "imac_sot"])
def test_zero_counters_zero_energy(name):
    r = E.estimate(preset(name), [0] * N_COUNTERS)
    assert r.energy_j == 0.0 and r.latency_s == 0.0 and r.power_w == 0.0
    r = E.estimate(preset(name), {"cycles": 100, "nop": 50, "loop": 3, "endloop": 3, "halt": 1})
    assert r.energy_j == 0.0 and r.latency_s > 0


def test_gops_per_w_consistent():
    config = preset("dima_sot")
    r = E.estimate(config, {"cycles": 1000, "min_step": 800, "shift_acc": 100}, ops=4096)
    assert r.gops == pytest.approx(4096 / r.latency_s / 1e9, rel=1e-12)
    assert r.gops_per_w == pytest.approx(r.gops / r.power_w, rel=1e-12)
    assert r.power_w == pytest.approx(r.energy_j / r.latency_s, rel=1e-12)


def test_area_from_gate_counts():
    config = preset("nand_spin")
    p = E.PERIPHERY
    gates = {"blocks": {"fa_fs": {"cells": {"$_AND_": 10, "$_SDFFE_PP0P_": 2}},
                        "controller": {"cells": {"$_XOR_": 5}},
                        "mtj_array": {"cells": {"$_DFF_P_": 10 ** 6}}}}
    per_sub = 10 * p["gate_area_um2"].value + 2 * p["flop_area_um2"].value
    per_mat = 5 * p["gate_area_um2"].value
    want = (per_sub * config.subarrays + per_mat * config.mats) / p["utilisation"].value * 1e-6
    assert E.periphery_area_mm2(config, gates) == pytest.approx(want, rel=1e-12)
    t = E.ARRAY["nand_spin"]
    arr = config.capacity_bits * t["cell_f2"].value * (t["feature_nm"].value * 1e-3) ** 2 * 1e-6
    r = E.estimate(config, {"cycles": 10, "read": 5}, ops=100, gates=gates)
    assert r.array_mm2 == pytest.approx(arr, rel=1e-12)
    assert r.gops_per_mm2 == pytest.approx(r.gops / (arr + want), rel=1e-12)
    # seed 001 Table 3 ordering of density: STT < NAND-SPIN < SOT per bit
    f2 = {k: E.ARRAY[k]["cell_f2"].value for k in TECHNOLOGIES}
    assert f2["stt"] < f2["nand_spin"] < f2["sot"]


def test_bad_inputs():
    config = preset("nand_spin")
    with pytest.raises(ValueError, match=r"technology must be one of .*not 'mram'"):
        E.table("mram")
    with pytest.raises(ValueError, match=r"counters\['read'\] must be an int >= 0, not -1"):
        E.estimate(config, {"cycles": 1, "read": -1})
    bad = [5] + [0] * (N_COUNTERS - 1)
    bad[counter_index(Opcode.READ)] = -2
    with pytest.raises(ValueError, match=r"counters\[9\] \(read\) must be an int >= 0, not -2"):
        E.estimate(config, bad)
    with pytest.raises(ValueError, match=rf"counters must have {N_COUNTERS} entries.*not 3"):
        E.estimate(config, [1, 0, 0])
    with pytest.raises(ValueError, match="counters must include 'cycles'"):
        E.estimate(config, {"read": 1})
    with pytest.raises(ValueError, match="counters key must be an Opcode or one of"):
        E.estimate(config, {"cycles": 1, "fly": 1})
    for bad in (0, -5, 1.5):
        with pytest.raises(ValueError, match=rf"ops must be a positive int .*not {bad!r}"):
            E.estimate(config, {"cycles": 1}, ops=bad)
    with pytest.raises(ValueError, match=r"columns_active must be an int in \[1, \d+\].*not 0"):
        E.estimate(config, {"cycles": 1}, columns_active=0)
    with pytest.raises(ValueError, match=r"counters\['erase'\] must be 0 for technology 'stt'"):
        E.estimate(preset("jeit_stt"), {"cycles": 1, "erase": 1})
    with pytest.raises(ValueError, match=r"counters\['write_row'\] must be 0 .*'nand_spin'"):
        E.estimate(config, {"cycles": 1, "write_row": 1})
    with pytest.raises(TypeError, match="config must be an AcceleratorConfig"):
        E.estimate("nand_spin", {"cycles": 1})
    with pytest.raises(ValueError, match="gates must be an rtl.synth report"):
        E.periphery_area_mm2(config, {})


def test_report_is_a_dataclass_with_json():
    r = E.estimate(preset("imac_sot"), {"cycles": 3, "and_fu": 2}, ops=6)
    d = r.to_dict()
    assert {f.name for f in dataclasses.fields(r)} == set(d)
    assert json.loads(json.dumps(d))["energy_j"] == r.energy_j


def test_host_loads_charged_as_loading_data():
    config = preset("nand_spin")
    base = E.estimate(config, {"cycles": 100, "and_fu": 10})
    r = E.estimate(config, {"cycles": 100, "and_fu": 10}, host={"erase": 2, "program": 16},
                   host_cycles=18)
    t = E.ARRAY["nand_spin"]
    p = E.PERIPHERY
    toggle = p["activity"].value * p["gate_toggle_fj"].value
    want = config.columns * (2 * t["erase_mtj_fj"].value * config.mtjs_per_strip
                             + 16 * (t["program_bit_fj"].value + p["sense_gates"].value * toggle))
    assert r.energy_j - base.energy_j == pytest.approx(want * 1e-15, rel=1e-12)
    assert r.energy_per_class_j["loading data"] == pytest.approx(want * 1e-15, rel=1e-12)
    assert r.host_counts == {"erase": 2, "program": 16}
    assert r.latency_s == pytest.approx(118 / (config.clock_mhz * 1e6))
    with pytest.raises(ValueError,
                       match="host keys must be among write_row, erase, program, data_words"):
        E.estimate(config, {"cycles": 1}, host={"read": 1})
    with pytest.raises(ValueError, match=r"host\['write_row'\] must be 0 for technology"):
        E.estimate(config, {"cycles": 1}, host={"write_row": 1})


def test_move_and_requant_are_charged_once_per_mat_and_host_words_as_moves():
    """A MOVE (rtl.core: one 32-bit data-memory word over the mat's bus) and a REQUANT (the
    mat's one PPU) cost the same however many lanes are active; the host's image words cost
    one MOVE each, as loading data."""
    config = preset("nand_spin")
    p = E.PERIPHERY
    toggle = p["activity"].value * p["gate_toggle_fj"].value
    word_fj = p["move_gates"].value * 32 * toggle          # driver + receiver per bus bit
    # the mat's one PPU: a 16-bit multiply against acc_bits
    requant_fj = (p["acc_gates_per_bit"].value * config.acc_bits
                  * p["requant_mult_bits"].value * toggle)
    for lanes in (config.columns, 4 * config.columns):
        assert E.op_energy_fj(config, Opcode.MOVE, lanes) == pytest.approx(word_fj, rel=1e-12)
        assert E.op_energy_fj(config, Opcode.REQUANT, lanes) == pytest.approx(requant_fj,
                                                                              rel=1e-12)
    base = E.estimate(config, {"cycles": 50})
    r = E.estimate(config, {"cycles": 50, "move": 7}, host={"data_words": 5}, host_cycles=5)
    assert r.energy_j - base.energy_j == pytest.approx(12 * word_fj * 1e-15, rel=1e-12)
    assert r.energy_per_class_j["data transfer"] == pytest.approx(7 * word_fj * 1e-15,
                                                                 rel=1e-12)
    assert r.energy_per_class_j["loading data"] == pytest.approx(5 * word_fj * 1e-15,
                                                                rel=1e-12)
    assert r.host_counts == {"data_words": 5}


# ---- energy split and overrides (issue 16 items 5, 6) ----------------------------------------

def _r_mean(tech):
    from sim.hw.device import device
    d = device(tech)
    return d.access_ohm + (d.r_p_ohm + d.r_ap_ohm) / 2


def test_energy_split_hand_computed_stt():
    """MRAM read / write, CMOS logic and bus of a hand-made run on stt, each term from the
    seed / assumed constants and the device resistances, not from sim.hw.energy's derived rows."""
    config = preset("jeit_stt")
    lanes = 2 * config.columns
    counters = {"cycles": 10, "write_row": 3, "read": 5, "move": 2}
    host = {"data_words": 4}
    split = E.energy_split(config, counters, columns_active=lanes, host=host)
    p = E.PERIPHERY
    toggle = p["activity"].value * p["gate_toggle_fj"].value
    r = _r_mean("stt")
    write_fj = 0.6 ** 2 / r * 10e-9 * 1e15          # 0.6 V, 10 ns (ASSUMPTIONs of sim.hw.energy)
    sa_fj = 4.0 - 0.1 ** 2 / _r_mean("nand_spin") * 0.17e-9 * 1e15     # seed 001 read
    read_fj = sa_fj + 0.1 ** 2 / r * 0.17e-9 * 1e15
    sense, pop = p["sense_gates"].value, p["popcount_gates"].value
    acc = p["acc_gates_per_bit"].value * config.acc_bits
    assert split["MRAM write"] == pytest.approx(3 * lanes * write_fj * 1e-15, rel=1e-9)
    assert split["MRAM read"] == pytest.approx(5 * lanes * read_fj * 1e-15, rel=1e-9)
    logic = (3 * lanes * sense + 5 * (lanes * (sense + pop) + 2 * acc)) * toggle
    assert split["CMOS logic"] == pytest.approx(logic * 1e-15, rel=1e-9)
    bus = (2 + 4) * p["move_gates"].value * 32 * toggle
    assert split["bus"] == pytest.approx(bus * 1e-15, rel=1e-9)
    total = E.estimate(config, counters, columns_active=lanes, host=host).energy_j
    assert sum(split.values()) == pytest.approx(total, rel=1e-12)


def test_energy_split_nand_spin_program_and_erase_are_writes():
    config = preset("nand_spin")
    lanes = config.columns
    split = E.energy_split(config, {"cycles": 3, "erase": 1, "program": 2},
                           columns_active=lanes)
    # seed 001 sec. 5.1: 180 fJ per 8-MTJ strip erase, 840 fJ per 8-bit device program
    want = lanes * (180.0 + 2 * 840.0 / 8) * 1e-15
    assert split["MRAM write"] == pytest.approx(want, rel=1e-12)
    assert split["MRAM read"] == 0


def test_overridden_propagates_and_restores():
    base_w = E.ARRAY["stt"]["write_bit_fj"].value
    base_toggle = E.PERIPHERY["gate_toggle_fj"].value
    config = preset("jeit_stt")
    e0 = E.op_energy_fj(config, Opcode.WRITE_ROW, 128)
    with E.overridden(array={("stt", "write_voltage_v"): 1.2},
                      periphery={"gate_toggle_fj": 2 * base_toggle}):
        assert E.ARRAY["stt"]["write_bit_fj"].value == pytest.approx(4 * base_w, rel=1e-12)
        assert E.PERIPHERY["gate_toggle_fj"].value == 2 * base_toggle
        assert E.op_energy_fj(config, Opcode.WRITE_ROW, 128) > e0
    assert E.ARRAY["stt"]["write_bit_fj"].value == base_w
    assert E.PERIPHERY["gate_toggle_fj"].value == base_toggle
    assert E.op_energy_fj(config, Opcode.WRITE_ROW, 128) == e0
    with E.overridden(array={("stt", "write_ns"): 20.0}):
        assert E.device_cycles(config)["write"] == 3      # ceil(20 / 7.52)
    with pytest.raises(ValueError, match="over keys must be among"):
        with E.overridden(array={("stt", "read_fj"): 1.0}):
            pass
    with pytest.raises(ValueError, match="periphery keys must be among"):
        with E.overridden(periphery={"nope": 1.0}):
            pass
    assert E.ARRAY["stt"]["write_bit_fj"].value == base_w
