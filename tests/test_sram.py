"""sim.hw.sram: the memory model against its published figures (typed here, not read from the
module), the list of memories against the memories the elaborated core really holds, and the
access counts of hand-written programs."""

import dataclasses
from collections import Counter

import pytest
from amaranth.hdl import Fragment, Shape
from amaranth.hdl._mem import MemoryInstance

from rtl.config import preset
from rtl.core import Core
from rtl.isa import Instr, MoveOp, Opcode, Operand, WriteSrc, encode
from sim.hw import sram

# Horowitz, ISSCC 2014, 45 nm: pJ per 64-bit access of an 8 KB, 32 KB and 1 MB cache.
PUBLISHED = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))


@pytest.mark.parametrize("nbytes, pj", PUBLISHED)
def test_fit_reproduces_published_points(nbytes, pj):
    words = nbytes * 8 // 64
    # Three points, two parameters: each within 15 % of the published figure.
    assert sram.read_energy_pj(words, 64) == pytest.approx(pj, rel=0.15)


def test_fit_is_a_square_root_law_and_monotonic():
    a, b = sram.fit()
    # log(20/10)/log(4) = 0.5 and log(100/20)/log(32) = 0.464: the slope lies between.
    assert 0.464 <= b <= 0.5
    sizes = [2 ** k for k in range(4, 21)]
    energies = [sram.read_energy_pj(n, 64) for n in sizes]
    assert all(x < y for x, y in zip(energies, energies[1:], strict=False))


def test_energy_scales_with_bits_accessed():
    # A 16 KB memory of 128-bit words: a word read costs twice a 64-bit read of it.
    full = sram.read_energy_pj(1024, 128)
    assert sram.read_energy_pj(1024, 128, access_bits=64) == pytest.approx(full / 2)
    assert sram.write_energy_pj(1024, 128) == pytest.approx(full)


def test_area_and_leakage_from_the_cell():
    # 1 Mbit: 2**20 x 0.346 um^2 (IEDM 2007 45 nm 6T cell) / 0.6 array efficiency.
    assert sram.area_um2(2 ** 14, 64) == pytest.approx(2 ** 20 * 0.346 / 0.6)
    assert sram.area_um2(2 ** 14, 64, read_ports=2) == pytest.approx(2 * 2 ** 20 * 0.346 / 0.6)
    # The leakage per bit of the OpenRAM FreePDK45 macros' fit (tests/test_sram_leakage.py):
    # 4.414 nW per bit, 1 Mbit leaks 4.63 mW.
    per_bit = sram.PARAMS["leakage_pw_per_bit"].value * 1e-12
    assert per_bit == pytest.approx(4.414e-9, abs=1e-12)
    assert sram.leakage_w(2 ** 14, 64) == pytest.approx(2 ** 20 * per_bit, rel=1e-12)
    assert sram.leakage_w(2 ** 14, 64, read_ports=2) == pytest.approx(2 ** 21 * per_bit,
                                                                      rel=1e-12)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_size_one_line_error(bad):
    with pytest.raises(ValueError, match="words must be a positive int"):
        sram.read_energy_pj(bad, 8)


def _memory_instances(core):
    """(instance path, depth, width) of every Memory in the elaborated core, the MTJ arrays'
    (the MRAM model) left out."""
    out = set()

    def walk(fr, path):
        for sub, name, *_ in fr.subfragments:
            p = path + (name,)
            if isinstance(sub, MemoryInstance) and not p[0].startswith("array"):
                out.add((".".join(p), sub._data.depth,
                         Shape.cast(sub._data.shape).width))
            walk(sub, p)
    walk(Fragment.get(core, None), ())
    return out


@pytest.mark.parametrize("name, k", [("jeit_stt", 2), ("nand_spin", 1)])
def test_core_memories_are_every_memory_of_the_core(name, k):
    cfg = dataclasses.replace(preset(name), subarrays_per_mat=k, mats=1)
    core = Core(config=cfg, subarrays=k, faults=False)
    listed = sram.core_memories(preset(name), k)
    macros = {(m.rtl, m.words, m.bits) for m in listed if m.kind == "sram"}
    assert macros == _memory_instances(core)
    flops = [m for m in listed if m.kind == "flops"]
    assert [(m.name, m.words, m.bits) for m in flops] == [
        ("transpose buffer", cfg.operand_bits, k * cfg.columns)]
    names = [m.name for m in listed]
    assert len(names) == len(set(names))


def _program(*instrs):
    return tuple(encode(i) for i in instrs)


def test_program_events_by_loop_multiplicity():
    a = Operand(0)
    prog = _program(
        Instr(Opcode.LOOP, count=3),
        Instr(Opcode.MOVE, imm=MoveOp.GATHER.value, a=a),
        Instr(Opcode.LOOP, count=4),
        Instr(Opcode.WRITE_ROW, imm=WriteSrc.TBUF.value, a=a),
        Instr(Opcode.ENDLOOP),
        Instr(Opcode.ENDLOOP),
        Instr(Opcode.AND_FU, a=a),
        Instr(Opcode.WRITE_ROW, imm=WriteSrc.BUFFER.value, a=a),
        Instr(Opcode.HALT),
    )
    ev = sram.program_events(prog)
    assert ev["move:gather"] == 3
    assert ev["write:tbuf"] == 12
    assert ev["write:buffer"] == 1
    assert ev["write_row"] == 13
    assert ev["and_fu"] == 1
    assert ev["loop"] == 1 + 3


def test_access_counts_and_the_counter_check():
    a = Operand(0)
    prog = _program(Instr(Opcode.LOOP, count=5),
                    Instr(Opcode.MOVE, imm=MoveOp.GATHER.value, a=a),
                    Instr(Opcode.ENDLOOP),
                    Instr(Opcode.MOVE, imm=MoveOp.CLEAR.value),
                    Instr(Opcode.AND_FU, a=a), Instr(Opcode.REQUANT, a=a), Instr(Opcode.HALT))
    chunk = type("C", (), {"program": prog, "n_out": 7})()
    compiled = type("M", (), {"stages": [type("S", (), {"chunks": [chunk]})()]})()
    counters = {"cycles": 40, "stalls": 3, "move": 6, "and_fu": 1, "requant": 1, "loop": 1,
                "endloop": 5, "halt": 1}
    acc = sram.access_counts(compiled, counters, host_data_words=10, host_program_words=7,
                             host_reads=2)
    assert acc["weight buffer"]["reads"] == 1
    assert acc["offset table"]["reads"] == acc["patch table"]["reads"] == 5
    assert acc["transpose buffer"]["writes"] == 6
    assert (acc["data memory"]["reads"], acc["data memory"]["writes"]) == (5 + 2, 7 + 10)
    assert acc["requant table"]["reads"] == 1
    assert acc["instruction memory"] == {**acc["instruction memory"], "reads": 37, "writes": 7}
    with pytest.raises(ValueError, match="counters\\['move'\\] = 9"):
        sram.access_counts(compiled, {**counters, "move": 9})


def test_memory_report_sums():
    mems = sram.core_memories(preset("nand_spin"), 4)
    acc = {m.name: {"reads": 10, "writes": 2, "derived": "test"} for m in mems}
    rep = sram.memory_report(preset("nand_spin"), 4, acc, 1e-3)
    assert [r["name"] for r in rep["memories"]] == [m.name for m in mems]
    buf = rep["memories"][0]
    assert (buf["words"], buf["bits"]) == (2048, 4 * 128)
    # The weight buffer, 128 KB of 512-bit words: 4 banks of 128 bits (32 KB each), each a
    # read of two 64-bit words of a 32 KB memory (E64 = a x 32768^b by the fit).
    a, b = sram.fit()
    want_pj = 4 * 2 * a * (2048 * 128 / 8) ** b
    assert buf["banks"] == 4
    assert buf["dynamic_j"] == pytest.approx(12 * want_pj * 1e-12)
    assert rep["memories"][2]["banks"] == 1     # the requant table is one macro
    assert rep["area_mm2"] == pytest.approx(sum(r["area_mm2"] or 0 for r in rep["memories"]))
    assert rep["leakage_j"] == pytest.approx(rep["leakage_w"] * 1e-3)
    assert Counter(r["kind"] for r in rep["memories"]) == Counter({"sram": 7, "flops": 1})


@pytest.mark.parametrize("bits, want", [(1, (1, 1)), (128, (1, 128)), (129, (2, 65)),
                                        (512, (4, 128)), (2048, (16, 128)), (300, (3, 100))])
def test_banks_of_at_most_the_macro_width(bits, want):
    assert sram.banks(bits) == want


def test_a_banked_read_is_cheaper_than_a_monolithic_one_by_banks_to_the_b():
    a, b = sram.fit()
    mono = sram.read_energy_pj(2048, 2048)
    banked = sram.banked_read_pj(2048, 2048)
    assert banked == pytest.approx(mono * 16 ** -b)
    assert sram.banked_read_pj(2048, 128) == sram.read_energy_pj(2048, 128)
