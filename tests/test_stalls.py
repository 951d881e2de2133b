"""Device timing: the stall table of ``AcceleratorConfig`` (validation, the presets' entries
against the device times of ``sim.hw.energy``), the holds of the cycle model against the
instruction-set reference (``sim.hw.isa_model.run_program`` with the holds given by hand or by the
rule restated cycle by cycle), compiled models under stalls, and the Verilog of a core whose
table is all ones (no stall logic). The RTL against the model: ``cocotb_tests/test_core.py``."""

import dataclasses
import math

import numpy as np
import pytest
from amaranth.back import verilog

from golden import datasets
from golden.model import bundled_model_path, infer_int, load_model
from rtl.config import MAX_STALL_CYCLES, PRESETS, STALL_OPS, AcceleratorConfig, preset
from rtl.core import Core
from rtl.isa import DATAPATH_OPS, OPERANDS, MoveOp, Opcode
from sim.compile import asm
from sim.hw import energy
from sim.compile.compiler import compile_model, program_profile, run_compiled
from sim.hw.core_model import CoreModel, expand_program
from sim.hw.isa_model import run_program

SEED = 13


def small(name="jeit_stt", **kw):
    return dataclasses.replace(preset(name), rows=64, columns=16, subarrays_per_mat=1, **kw)


# ---- the table ------------------------------------------------------------------------------

def test_default_table_is_all_ones_and_round_trips():
    cfg = AcceleratorConfig(technology="stt", rows=64, columns=16, subarrays_per_mat=1, mats=1,
                            clock_mhz=100, dataflow="abs_diff")
    assert cfg.stalls == dict.fromkeys(STALL_OPS, 1) and not cfg.has_stalls
    assert set(cfg.op_cycles.values()) == {1}
    part = dataclasses.replace(cfg, stall_table={"write": 3})
    assert part.stalls == {"read": 1, "write": 3, "erase": 1, "program": 1}
    assert part.has_stalls and part.op_cycles[Opcode.WRITE_ROW] == 3
    assert part.op_cycles[Opcode.READ] == part.op_cycles[Opcode.REQUANT] == 1
    # as_dict gives a dict (JSON reads it back equal), which makes the same configuration
    again = dataclasses.replace(cfg, stall_table=part.as_dict()["stall_table"])
    assert again == part and hash(again) == hash(part)
    assert dataclasses.replace(cfg, stall_table=[("write", 3)]) == part


@pytest.mark.parametrize(("table", "exc", "match"), [
    ({"write": 0}, ValueError, r"^stall_table\['write'\] must be a positive int of cycles in "
                               rf"\[1, {MAX_STALL_CYCLES}\] .*, not 0$"),
    ({"erase": -2}, ValueError, r"^stall_table\['erase'\] must be a positive int .*, not -2$"),
    ({"program": 1.5}, ValueError, r"^stall_table\['program'\] must be .*, not 1.5$"),
    ({"read": True}, ValueError, r"^stall_table\['read'\] must be .*, not True$"),
    ({"write": "2"}, ValueError, r"^stall_table\['write'\] must be .*, not '2'$"),
    ({"write": MAX_STALL_CYCLES + 1}, ValueError, r"^stall_table\['write'\] must be .*, not "
                                                  rf"{MAX_STALL_CYCLES + 1}$"),
    ({"sense": 2}, ValueError, r"^stall_table entry 'sense' is not a device operation; the "
                               r"entries are read, write, erase, program$"),
    (7, TypeError, r"^stall_table must be a dict operation -> cycles .*, not 7$"),
    ([1, 2], TypeError, r"^stall_table must be a dict operation -> cycles .*, not \[1, 2\]$"),
])
def test_bad_entries_name_the_entry(table, exc, match):
    with pytest.raises(exc, match=match):
        small(stall_table=table)


def test_presets_tables_are_the_device_times_over_the_clock():
    # Written out: only the STT write (10 ns) is slower than 133 MHz (7.52 ns).
    assert preset("jeit_stt").stalls == {"read": 1, "write": 2, "erase": 1, "program": 1}
    for name in ("nand_spin", "dima_sot", "imac_sot"):
        assert set(preset(name).stalls.values()) == {1}, name
    # And derived: ceil(t / period) of every time sim.hw.energy has for the technology.
    for name, cfg in PRESETS.items():
        times = energy.device_times_ns(cfg)
        want = {k: max(1, math.ceil(times[k] * cfg.clock_mhz / 1000)) if k in times else 1
                for k in STALL_OPS}
        assert cfg.stalls == want == energy.device_cycles(cfg), name


def test_energy_notes_say_whether_the_table_covers_the_device():
    stt = preset("jeit_stt")
    notes = energy.estimate(stt, {"cycles": 10}).notes
    assert notes == ["write takes 10 ns > clock period 7.5188 ns: 2 cycles, the core stalls "
                     "1 (stall_table)"]
    short = dataclasses.replace(stt, stall_table=None)
    assert "latency is optimistic" in energy.estimate(short, {"cycles": 10}).notes[0]
    assert energy.estimate(preset("nand_spin"), {"cycles": 10}).notes == []


# ---- the holds ------------------------------------------------------------------------------

def _hand_program():
    """Writes of 2 cycles and the holds, by hand: a write holds the micro-op right after it
    one cycle; a NOP or a LOOP between absorbs the busy cycle."""
    from rtl.column_reduce import ReduceOp as R
    instrs = [
        asm.write_row(a=0, b=0, imm=0),                         # k0: 0
        asm.read(a=0, imm=R.L1_FIRST.value),                    # k1: 1
        asm.write_row(a=1, b=1, imm=0),                         # k2: 0
        asm.nop(),
        asm.read(a=1, imm=R.ADD.value),                         # k3: 0
        asm.write_row(a=2, b=2, imm=0),                         # k4: 0
        asm.loop(count=3),
        asm.write_row(a=asm.rel(3), b=asm.rel(3), imm=0),       # k5 0, k6 1, k7 1
        asm.endloop(),
        asm.read(a=5, imm=R.ADD.value),                         # k8: 1
        asm.requant(a=0, d=0, imm=0b11011),                     # k9: 0 (clear, emit, LOGIT)
        asm.halt(),
    ]
    return asm.assemble(instrs), [0, 1, 0, 0, 0, 0, 1, 1, 1, 0]


def test_hand_program_holds_and_results():
    cfg = small()
    words, holds = _hand_program()
    core = CoreModel(cfg)
    rows = np.random.default_rng(SEED).integers(0, 2, (6, cfg.columns))
    for slot, row in enumerate(rows):
        core.write_buffer(slot, row)
    core.write_table(0, 0, 0, 0)
    res = core.run(words)
    assert not res.error, res.reason
    assert res.out == (int(rows[0].sum() + rows[1].sum() + rows[5].sum()),)
    want = run_program(words, stall=holds, depth=1024)
    assert list(res.counters.values()) == want.counters
    assert res.counters["stalls"] == 4
    assert program_profile(words, cfg) == (want.counters[0], res.counters)
    # without a stall table: the same result, 4 cycles less
    flat = CoreModel(dataclasses.replace(cfg, stall_table=None))
    for slot, row in enumerate(rows):
        flat.write_buffer(slot, row)
    flat.write_table(0, 0, 0, 0)
    again = flat.run(words)
    assert again.out == res.out and again.counters["stalls"] == 0
    assert again.counters["cycles"] == res.counters["cycles"] - 4


def _random_program(rng, ops, max_count: int = 3):
    """A random well-formed program of micro-ops (operands in range), NOPs and nested loops
    of 1 to ``max_count`` iterations (also tests/test_counting's programs)."""
    instrs, depth = [], 0
    for _ in range(int(rng.integers(5, 40))):
        r = rng.random()
        if r < 0.15 and depth < 3:
            instrs.append(asm.loop(count=int(rng.integers(1, max_count + 1))))
            depth += 1
        elif r < 0.3 and depth:
            instrs.append(asm.endloop())
            depth -= 1
        elif r < 0.4:
            instrs.append(asm.nop())
        else:
            op = ops[int(rng.integers(len(ops)))]
            fields = {k: int(rng.integers(0, 8)) for k in OPERANDS[op] if k in "abd"}
            if op is Opcode.MOVE:
                fields["imm"] = MoveOp.CLEAR.value
            instrs.append(asm.instr(op, **fields))
    instrs += [asm.endloop()] * depth + [asm.halt()]
    return asm.assemble(instrs)


def test_random_programs_hold_as_the_rule_says():
    """The rule restated cycle by cycle: micro-op k is offered when the controller gets to it
    (its cycle without stalls, shifted by the holds so far) and accepted when the array is
    free, ``op_cycles`` of the micro-op before after that one's acceptance."""
    rng = np.random.default_rng(SEED)
    ops = [Opcode.READ, Opcode.WRITE_ROW, Opcode.ERASE, Opcode.PROGRAM, Opcode.REQUANT,
           Opcode.MOVE, Opcode.FS_STEP]
    for table in ({"write": 2}, {"write": 3, "read": 2}, {"erase": 4, "program": 2}):
        cfg = small(stall_table=table)
        cycles_of = cfg.op_cycles
        for _ in range(40):
            words = _random_program(rng, ops)
            nominal: list = []
            base = run_program(words, depth=1024, issue_cycles=nominal)
            holds, shift, free = [], 0, 0
            for k, m in enumerate(base.trace):
                offered = nominal[k] + shift
                hold = max(0, free - offered)
                holds.append(hold)
                shift += hold
                free = offered + hold + cycles_of[m.op]
            want = run_program(words, stall=holds, depth=1024)
            (_, _, _, _, _, cyc), counters, error = CoreModel(cfg)._trace(words)
            assert not error and counters == want.counters, (table, words)
            accepted: list = []
            run_program(words, stall=holds, depth=1024, issue_cycles=accepted)
            assert list(cyc) == accepted
            assert program_profile(words, cfg)[1] == dict(zip(
                CoreModel(cfg).run(words).counters, want.counters, strict=True))
            assert expand_program(words, depth=1024) is not None


def test_compiled_digits_under_stalls_equal_golden():
    model = load_model(bundled_model_path("digits_addernet"))
    x, _ = datasets.load_dataset("digits", "test")
    cfg = preset("jeit_stt")
    flat_cfg = dataclasses.replace(cfg, stall_table=None)
    for k in (1, 4):
        compiled = compile_model(model, cfg, subarrays=k)
        flat = compile_model(model, flat_cfg, subarrays=k)
        core, core_flat = CoreModel(cfg, subarrays=k), CoreModel(flat_cfg, subarrays=k)
        for i, image in enumerate(x[:2]):
            trace = infer_int(model, image[None], trace=True)
            res = run_compiled(compiled, image, core, load_weights=i == 0)
            ref = run_compiled(flat, image, core_flat, load_weights=i == 0)
            assert (res.logits == trace[-1][0]).all() and (ref.logits == res.logits).all()
            c, f = res.counters, ref.counters
            # every abs-diff / plane write-back holds the micro-op after it one cycle
            assert 0 < c["stalls"] <= c["write_row"]
            assert c["cycles"] == f["cycles"] + c["stalls"] == compiled.cycles
            assert {k2: v for k2, v in c.items() if k2 not in ("cycles", "stalls")} == \
                {k2: v for k2, v in f.items() if k2 not in ("cycles", "stalls")}


# ---- the Verilog ----------------------------------------------------------------------------

def _core_verilog(cfg):
    """The Verilog of a tiny core of ``cfg`` (small memories: the stall logic is the same)."""
    cfg = dataclasses.replace(cfg, rows=16, columns=8)
    core = Core(config=cfg, faults=False, imem_depth=16, buffer_slots=4, channels=2,
                out_depth=16, offset_depth=4, patch_depth=4)
    return verilog.convert(core, name="core", emit_src=False)


@pytest.mark.parametrize("name", [n for n, c in PRESETS.items() if not c.has_stalls])
def test_all_ones_table_generates_no_stall_logic(name):
    """A preset whose table is all ones: ``ready`` is the constant 1 and there is no hold
    logic, so its Verilog is that of a core without stalls (checked byte for byte against the
    core before the stall table, at the commit that added it)."""
    cfg = small(name)
    v = _core_verilog(cfg)
    assert "assign issue__ready = 1'h1;" in v
    assert "stall_left" not in v and "array_busy" not in v


def test_stalled_core_has_the_hold_logic():
    v = _core_verilog(small("jeit_stt"))
    assert "stall_left" in v and "assign issue__ready = ~ array_busy;" in v
    slow = [op for op, c in preset("jeit_stt").op_cycles.items()
            if c > 1 and op in DATAPATH_OPS]
    assert Opcode.WRITE_ROW in slow
