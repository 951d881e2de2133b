"""Controller vs ``sim.hw.isa_model.run_program``: random nested-loop programs loaded through the
host port and run freely under random ``ready`` stalls, plus corner and error programs. The
issued micro-ops, the counters and the error flag are compared with ``==``."""

import dataclasses

import cocotb
import pytest
from cocotb.triggers import FallingEdge, RisingEdge, Timer

from cocotb_tests.harness import load_params, make_rng, run_block, start
from rtl.config import preset
from rtl.controller import Controller
from rtl.isa import (
    DATAPATH_OPS, IMM_BITS, N_COUNTERS, OPERANDS, Opcode, counter_names,
)
from sim.compile import asm
from sim.hw.isa_model import MicroOp, run_program

BLOCK = "controller"


class Bench:
    """Host driver (program load, start, counter read) and the datapath side of the issue port:
    holds ``ready`` low ``stalls[k]`` cycles for the k-th micro-op and records each transfer."""

    def __init__(self, dut, p, seed):
        self.dut, self.depth, self.levels, self.seed = dut, p["imem_depth"], p["loop_depth"], seed

    async def load(self, words):
        dut = self.dut
        words = list(words) + [0] * (self.depth - len(words))
        for addr, word in enumerate(words):
            dut.prog_addr.value = addr
            dut.prog_data.value = word
            dut.prog_we.value = 1
            await FallingEdge(dut.clk)
        dut.prog_we.value = 0

    async def counters(self):
        values = []
        for i in range(N_COUNTERS):
            self.dut.counter_sel.value = i
            await Timer(1, unit="ns")
            values.append(self.dut.counter_value.value.to_unsigned())
        self.dut.counter_sel.value = (1 << len(self.dut.counter_sel)) - 1  # beyond the last
        await Timer(1, unit="ns")
        beyond = self.dut.counter_value.value.to_unsigned()
        assert beyond == 0, self._fail("counter read", "counter beyond the last", beyond, 0)
        return values

    async def run(self, words, stalls, rng, *, watch=True, scribble=False, what="program"):
        """Load and run ``words``; compare with the model; return the model's run. With
        ``scribble`` the host writes random words at random addresses while the run is busy
        (the controller must ignore them)."""
        dut = self.dut
        want = run_program(words, stall=stalls, depth=self.depth, loop_depth=self.levels)
        await self.load(words)
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        trace, k, waited, cycles = [], 0, 0, 0
        limit = want.counters[0] + 8
        if watch:
            while not dut.done.value:
                assert cycles <= limit, self._fail(what, "still busy after cycles", cycles, limit)
                if dut.issue__valid.value:
                    if waited < (stalls[k] if k < len(stalls) else 0):
                        dut.issue__ready.value = 0
                        waited += 1
                    else:
                        dut.issue__ready.value = 1
                        trace.append(MicroOp(Opcode(dut.issue__op.value.to_unsigned()),
                                             *(getattr(dut, f"issue__{f}").value.to_unsigned()
                                               for f in ("imm", "a", "b", "d"))))
                        k, waited = k + 1, 0
                else:
                    dut.issue__ready.value = rng.getrandbits(1)
                if scribble:
                    dut.prog_we.value = rng.getrandbits(1)
                    dut.prog_addr.value = rng.randrange(self.depth)
                    dut.prog_data.value = rng.getrandbits(64)
                await FallingEdge(dut.clk)
                cycles += 1
            dut.prog_we.value = 0
        else:
            dut.issue__ready.value = 1
            await RisingEdge(dut.done)
            await FallingEdge(dut.clk)
            trace = want.trace
        assert not dut.busy.value, self._fail(what, "busy after done", 1, 0)
        for i, (g, w) in enumerate(zip(trace, want.trace, strict=False)):
            assert g == w, self._fail(what, f"micro-op {i}", g, w, words)
        assert len(trace) == len(want.trace), self._fail(
            what, "number of micro-ops", len(trace), len(want.trace), words)
        got = await self.counters()
        for name, g, w in zip(counter_names(), got, want.counters, strict=True):
            assert g == w, self._fail(what, f"counter {name}", g, w, words)
        assert int(dut.error.value) == int(want.error), self._fail(
            what, "error flag", int(dut.error.value), int(want.error), words)
        return want

    def _fail(self, what, field, got, want, words=()):
        listing = ("\n" + asm.disassemble_program(words)) if words else ""
        return (f"{BLOCK}: {what}: {field}: rtl {got} != model {want} (seed {self.seed}; "
                f"rerun with SPINPIM_SEED={self.seed}){listing}")


def random_operand(rng, open_loops):
    base = rng.choice([0, 1, 4095, rng.randrange(4096)])
    if open_loops and rng.random() < 0.6:
        stride = rng.choice([s for s in range(-8, 8) if s])
        return asm.rel(base, stride=stride, level=rng.randrange(open_loops))
    return base


def random_micro_op(rng, open_loops):
    op = rng.choice(DATAPATH_OPS)
    fields = {o: random_operand(rng, open_loops) for o in OPERANDS[op] if o != "imm"}
    if "imm" in OPERANDS[op]:
        fields["imm"] = rng.randrange(1 << IMM_BITS)
    return asm.instr(op, **fields)


def random_block(rng, open_loops, levels, budget):
    """A list of instructions, at most ``budget`` long, loops nested at most ``levels``."""
    out = []
    while len(out) < budget and rng.random() < 0.9:
        r = rng.random()
        if r < 0.3 and open_loops < levels and budget - len(out) >= 2:
            body = random_block(rng, open_loops + 1, levels, budget - len(out) - 2)
            out += [asm.loop(count=rng.choice([1, 2, 3, rng.randrange(1, 6)]))] + body
            out.append(asm.endloop())
        elif r < 0.4:
            out.append(asm.nop())
        else:
            out.append(random_micro_op(rng, open_loops))
    return out


@cocotb.test()
async def controller_random_programs(dut):
    """Random valid programs (nested loops, loop-relative operands, NOPs, folded and standalone
    ENDLOOPs) under random stalls; the counters must restart with every run."""
    p = load_params()
    rng, seed = make_rng(p, "controller_random_programs")
    dut._log.info("controller_random_programs: seed %d", seed)
    await start(dut)
    bench = Bench(dut, p, seed)
    done = 0
    while done < p["programs"]:
        body = random_block(rng, 0, p["loop_depth"], p["imem_depth"] - 2)
        words = asm.assemble(body + [asm.halt()])
        stall_p = rng.choice([0.0, 0.3, 0.7])
        stalls = [rng.choice([1, 2, 3]) if rng.random() < stall_p else 0 for _ in range(4000)]
        if run_program(words, depth=p["imem_depth"], loop_depth=p["loop_depth"]
                       ).counters[0] > 1500:
            continue  # keep the run short
        await bench.run(words, stalls, rng, scribble=done % 2 == 1,
                        what=f"random program {done}")
        done += 1


@cocotb.test()
@cocotb.parametrize(kind=["halt_only", "max_depth", "folds", "max_count"])
async def controller_corners(dut, kind):
    """HALT only; loops nested to the maximum with operands on every level; ENDLOOPs that fold
    and ENDLOOPs that do not; a loop of the most iterations (65536)."""
    p = load_params()
    rng, seed = make_rng(p, f"controller_corners_{kind}")
    await start(dut)
    bench = Bench(dut, p, seed)
    levels = p["loop_depth"]
    if kind == "halt_only":
        program = [asm.halt()]
    elif kind == "max_depth":
        program = []
        for level in range(levels):
            program += [asm.loop(count=level + 2),
                        asm.read(a=asm.rel(100 * level, stride=level + 1, level=0))]
        program += [asm.and2(a=asm.rel(7, stride=-1, level=levels - 1),
                             b=asm.rel(4095, stride=7, level=0))]
        program += [asm.endloop()] * levels + [asm.halt()]
    elif kind == "folds":
        program = [asm.loop(count=3), asm.endloop(),                 # empty body
                   asm.loop(count=2), asm.loop(count=2), asm.nop(), asm.endloop(),
                   asm.endloop(), asm.loop(count=1), asm.move(a=1, b=0, d=asm.rel(2), imm=31),
                   asm.endloop(), asm.halt(), asm.endloop()]          # after HALT: not run
    else:
        program = [asm.loop(count=65536), asm.nop(), asm.endloop(), asm.halt()]
    words = asm.assemble(program)
    stalls = [rng.choice([0, 1]) for _ in range(1000)]
    run = await bench.run(words, stalls, rng, watch=kind != "max_count", what=kind)
    assert not run.error


@cocotb.test()
@cocotb.parametrize(kind=["unmatched_endloop", "too_deep", "level_not_open", "off_the_end",
                          "fold_at_end", "undefined_opcode", "late_unmatched"])
async def controller_errors(dut, kind):
    """Programs that must end with ``error`` and ``done``, never hang: each against the model
    (the micro-ops issued before the error, the counters, the flag)."""
    p = load_params()
    rng, seed = make_rng(p, f"controller_errors_{kind}")
    await start(dut)
    bench = Bench(dut, p, seed)
    depth, levels = p["imem_depth"], p["loop_depth"]
    read = asm.read(a=3)
    if kind == "unmatched_endloop":
        program = [asm.endloop(), asm.halt()]
    elif kind == "too_deep":
        program = [asm.loop(count=2)] * (levels + 1) + [asm.halt()]
    elif kind == "level_not_open":
        program = [asm.loop(count=2), read, asm.read(a=asm.rel(0, level=1)), asm.endloop(),
                   asm.halt()]
    elif kind == "off_the_end":
        program = [read] * depth
    elif kind == "fold_at_end":
        program = [asm.loop(count=2)] + [asm.nop()] * (depth - 2) + [read]
    elif kind == "undefined_opcode":
        program = [asm.loop(count=2), read, asm.endloop()]
    else:
        program = [asm.loop(count=2), read, asm.endloop(), asm.endloop(), asm.halt()]
    words = asm.assemble(program, check=False)
    if kind == "undefined_opcode":
        words = words[:2] + [0x1F | (rng.getrandbits(59) << 5)] + words[2:]
    stalls = [rng.choice([0, 2]) for _ in range(depth)]
    run = await bench.run(words, stalls, rng, what=kind)
    assert run.error, f"{BLOCK}: {kind}: the model does not flag an error"


@pytest.mark.sim
@pytest.mark.parametrize("loop_depth", [4])
@pytest.mark.parametrize("imem_depth", [32])
def test_controller(sim, imem_depth, loop_depth):
    # zero_skip off: the controller without the ``skip`` port (the core drives it; the core's
    # tests, cocotb_tests/test_core_zero_skip.py, take SKIPZ)
    cfg = dataclasses.replace(preset("jeit_stt"), zero_skip=False)
    run_block(Controller(config=cfg, imem_depth=imem_depth, loop_depth=loop_depth),
              block=BLOCK, sim=sim, test_module=__name__,
              params={"imem_depth": imem_depth, "loop_depth": loop_depth, "programs": 40})

