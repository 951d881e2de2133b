"""On-chip data movement and the mat, micro-op by micro-op (``rtl.core``, ``rtl.isa.MoveOp``):
hand-assembled programs on a mat of two or four subarrays, every expected value computed here
with numpy from the data the host loaded.

* ``GATHER``: random data-memory words, random offset / patch tables (masks with zeros: the
  zero padding), gathered into every column of the transpose buffer, each plane written into
  an array row with ``WriteSrc.TBUF``; each row is then probed with ``AND_FU`` against random
  buffer words and the popcount of every subarray (``REQUANT d = k + 1``) and of the whole mat
  row (``d = 0``) read back as logits: a bit in a wrong column or plane changes a count.
* ``CLEAR`` before a partial gather: the columns not gathered read 0.
* ``SETPTR`` / ``ADDPTR``: where the words land in the data memory.
* The errors: REQUANT ``d`` above the subarrays, a gathered address beyond the data memory, a
  pointer beyond it, a transpose plane beyond ``operand_bits``, an undefined ``MoveOp`` and
  ``WriteSrc``.
"""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from rtl.config import preset
from rtl.core import Core
from rtl.isa import MoveOp, WriteSrc
from sim.flows.rtl_backend import CoreHost, RtlRunError

BLOCK = "core"
OUT_DEPTH = 512
#: Probe rows per plane: AND_FU against this many random buffer words.
PROBES = 2


def _config(name, dataflow, k):
    from tests.test_limits import OLD_SIZES     # nand_spin's preset has larger ones of its own
    return dataclasses.replace(preset(name).with_dataflow(dataflow), rows=64, columns=16,
                               subarrays_per_mat=k, mats=1, **OLD_SIZES)


CONFIGS = {
    "stt-mat2": lambda: _config("jeit_stt", "abs_diff", 2),
    "nand-mat4": lambda: _config("nand_spin", "write_free", 4),
}


def _bits(value, width):
    return np.array([(int(value) >> i) & 1 for i in range(width)], dtype=np.uint8)


def _mv(asm, op, a=0, b=0, d=0):
    """A MOVE (every operand given: the assembler wants all MOVE has)."""
    return asm.move(imm=op.value if isinstance(op, MoveOp) else op, a=a, b=b, d=d)


def _gather_program(asm, width, n, nand, cols, ptr, add, partial):
    """CLEAR, GATHER columns 0 .. partial - 1 (offset entry j, patch entry 0), write plane q
    to row q, then per plane and probe p: AND_FU row q with slot p, one LOGIT word per
    subarray and one for the whole row. The words start at ``ptr``; after plane 3 the pointer
    jumps by ``add``."""
    from rtl.column_reduce import ReduceOp as R
    from rtl.ppu import PpuMode, ppu_imm
    logit = ppu_imm(clear=True, emit=True, mode=PpuMode.LOGIT)
    k_sub = width // cols
    prog = [_mv(asm, MoveOp.SETPTR, a=ptr), _mv(asm, MoveOp.CLEAR),
            asm.loop(count=partial),
            _mv(asm, MoveOp.GATHER, a=asm.rel(0), b=asm.rel(0)),
            asm.endloop(), asm.nop()]
    if nand:
        prog += [asm.erase(a=0)]                      # rows 0 .. 7: one strip
    write = asm.program if nand else asm.write_row
    prog += [write(a=q, b=q, imm=WriteSrc.TBUF.value) for q in range(n)]
    for q in range(n):
        if q == 4:
            prog.append(_mv(asm, MoveOp.ADDPTR, a=add))
        for p in range(PROBES):
            prog.append(asm.and_fu(a=q, b=p, imm=R.L1_FIRST.value))
            prog += [asm.requant(a=0, d=k + 1, imm=logit) for k in range(k_sub)]
            prog.append(asm.requant(a=0, d=0, imm=logit))
    prog.append(asm.halt())
    return asm.assemble(prog)


@cocotb.test()
async def core_gather_and_mat(dut):
    """GATHER / CLEAR / TBUF writes / SETPTR / ADDPTR / REQUANT d on a mat == numpy."""
    from sim.compile import asm
    p = load_params()
    rng_py, seed = make_rng(p, "core_gather_and_mat")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = CONFIGS[p["label"]]()
    cols, n = config.columns, config.operand_bits
    k_sub = config.subarrays_per_mat
    width = k_sub * cols
    nand = config.technology == "nand_spin"
    host = CoreHost(dut, config)
    await host.reset()
    await host.write_table([1], [0], [0])           # LOGIT: word = acc + 0
    rerun = f"(seed {seed}; rerun with SPINPIM_SEED={seed})"
    for trial in range(p["trials"]):
        mem = rng.integers(0, 1 << 32, 256, dtype=np.uint64)
        await host.write_dmem(0, mem)
        base = int(rng.integers(0, 128))
        mask = int(rng.integers(0, 1 << 32))
        offsets = [(int(rng.integers(0, 128)), int(rng.integers(0, 32))) for _ in range(width)]
        await host.write_tables(offsets, [(base, mask)])
        probes = rng.integers(0, 2, (PROBES, width)).astype(np.uint8)
        await host.write_buffer(probes)
        partial = width if trial == 0 else int(rng.integers(1, width))
        ptr, add = int(rng.integers(256, 300)), int(rng.integers(0, 20))
        words = _gather_program(asm, width, n, nand, cols, ptr, add, partial)
        await host.run(words, max_cycles=2000)
        # numpy: the gathered values, their planes, the probe counts, where they land.
        values = np.zeros(width, dtype=np.int64)
        for j in range(partial):
            off, kpos = offsets[j]
            if mask >> kpos & 1:
                values[j] = int(mem[(base + off) % (1 << 16)]) & ((1 << n) - 1)
        want, at = {}, ptr
        for q in range(n):
            if q == 4:
                at += add
            plane = (values >> q) & 1
            for pr in range(PROBES):
                hits = plane & probes[pr]
                for k in range(k_sub):
                    want[at] = (int(hits[k * cols:(k + 1) * cols].sum()), q, pr, f"d={k + 1}")
                    at += 1
                want[at] = (int(hits.sum()), q, pr, "d=0")
                at += 1
        got = await host.read_dmem(ptr, at - ptr)
        for addr, (exp, q, pr, d) in want.items():
            assert got[addr - ptr] == exp, (
                f"{BLOCK}: trial {trial} ({config.technology}, {k_sub} subarrays, {partial} "
                f"columns gathered): data word {addr} (plane {q}, probe {pr}, REQUANT {d}): "
                f"rtl {got[addr - ptr]} != numpy {exp} {rerun}")
        assert (await host.read_dmem(0, 4)) == [int(v) for v in mem[:4]], \
            f"{BLOCK}: trial {trial}: the run overwrote the input words {rerun}"
        dut._log.info("trial %d: %d words checked", trial, len(want))

    # -- every error the new micro-ops can raise ------------------------------------------
    logit = 3 << 3 | 3
    write = [asm.erase(a=8), asm.program] if nand else [asm.write_row]
    bad_programs = {
        f"REQUANT d={k_sub + 1}": [asm.requant(a=0, d=k_sub + 1, imm=logit)],
        "GATHER beyond the data memory": [_mv(asm, MoveOp.GATHER, b=1)],
        f"GATHER column {width}": [_mv(asm, MoveOp.GATHER, a=width)],
        f"SETPTR {OUT_DEPTH + 1}": [_mv(asm, MoveOp.SETPTR, a=OUT_DEPTH + 1)],
        "ADDPTR beyond": [_mv(asm, MoveOp.SETPTR, a=OUT_DEPTH - 2),
                          _mv(asm, MoveOp.ADDPTR, a=3)],
        f"TBUF plane {n}": [*write[:-1], write[-1](a=8, b=n, imm=WriteSrc.TBUF.value)],
        "MoveOp 5": [_mv(asm, 5)],
        "WriteSrc 3": [*write[:-1], write[-1](a=8, b=0, imm=3)],
        f"REQUANT d={k_sub + 1 + (1 << (k_sub + 1).bit_length())}": [
            asm.requant(a=0, d=k_sub + 1 + (1 << (k_sub + 1).bit_length()), imm=logit)],
        f"GATHER column {2 * width} (aliases column 0)": [_mv(asm, MoveOp.GATHER, a=2 * width)],
    }
    ok_programs_write = {
        f"TBUF plane {n - 1}": [*write[:-1], write[-1](a=8, b=n - 1, imm=WriteSrc.TBUF.value)],
    }
    # Each bad program's neighbour at the limit of the same range runs clean: a check that
    # flags one value too many (or too few) fails one of the two.
    ok_programs = {
        f"SETPTR {OUT_DEPTH}": [_mv(asm, MoveOp.SETPTR, a=OUT_DEPTH)],
        "GATHER of a masked word beyond the data memory": [
            _mv(asm, MoveOp.GATHER, b=1)],
        f"REQUANT d={k_sub}": [asm.requant(a=0, d=k_sub, imm=logit)],
        f"GATHER column {width - 1}": [_mv(asm, MoveOp.GATHER, a=width - 1)],
        f"ADDPTR to {OUT_DEPTH}": [_mv(asm, MoveOp.SETPTR, a=OUT_DEPTH - 2),
                                   _mv(asm, MoveOp.ADDPTR, a=2)],
        "MoveOp 3 (ADDPTR)": [_mv(asm, 3)],
    }
    ok_programs.update(ok_programs_write)
    await host.write_tables([(0, 0), (OUT_DEPTH, 1)], [(0, 1)])   # entry 1: kpos 1, masked
    for name, body in ok_programs.items():
        try:
            await host.run(asm.assemble([*body, asm.halt()]), max_cycles=100)
        except RtlRunError as e:
            raise AssertionError(f"{BLOCK}: {name} must not be an error: {e} {rerun}") from None
    await host.write_tables([(0, 0), (OUT_DEPTH, 0)], [(0, 1)])
    clean = asm.assemble([_mv(asm, MoveOp.CLEAR), asm.halt()])
    for name, body in bad_programs.items():
        # Each bad program runs (start clears the sticky error of the one before), and a clean
        # program after it shows that the flag came from this program and that start clears it.
        _, error = await host.run_raw(asm.assemble([*body, asm.halt()]), max_cycles=100)
        assert error, f"{BLOCK}: {name}: the core did not raise error {rerun}"
        _, error = await host.run_raw(clean, max_cycles=100)
        assert not error, f"{BLOCK}: a clean program after {name} raised error {rerun}"


@pytest.mark.sim
@pytest.mark.parametrize("label", list(CONFIGS))
def test_core_move(sim, label):
    config = CONFIGS[label]()
    run_block(Core(config=config, out_depth=OUT_DEPTH, faults=False), block=BLOCK, sim=sim,
              test_module=__name__, params={"label": label, "trials": 3})
