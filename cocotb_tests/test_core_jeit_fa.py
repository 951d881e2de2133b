"""The seed-000 full-adder-array route (``jeit_fa``) inside the core, both simulators.

One small core (the ``jeit_stt`` preset cut to a mat of 2 subarrays of 128 x 16, dataflow
``jeit_fa``: abs-diff lanes, the full-adder array, and the ``abs_diff`` / ``and_bitcount``
routes of the preset) runs:

* the route's tile dot, hand-placed (x planes in rows 0 .. 7, w planes in slots 0 .. 7), on
  random and corner vectors: each subarray's sum (``REQUANT d = k + 1``) and the mat's
  (``d = 0``) == ``golden.pim.l1_fa_tree`` and plain numpy; the counters == the cycle model's;
  the same dot with the REQUANT too early (during the array's flush) and with a reduce micro-op
  after it (the accumulators are back) gives the cycle model's values;
* compiled random adder layers (and the multiply heads the models end with) on the route, among
  them shapes whose loops the route software-pipelines (wide with 2 tiles over several patches,
  segmented with several groups and a partial one): every stage == golden, the counters of
  every image == the cycle model's and the compiler's profile
  (``cocotb_tests.test_core._run_cases``).
"""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from golden.model import Layer
from golden.pim import l1_fa_tree
from rtl.column_reduce import ReduceOp
from rtl.config import preset
from rtl.core import Core
from rtl.isa import Instr, Opcode
from rtl.mtj_array import MacroCmd
from rtl.ppu import PpuMode, ppu_imm
from sim.compile import asm
from sim.routes import get_route

BLOCK = "core_jeit_fa"
#: A small mat of the jeit_stt preset: 2 subarrays of 128 x 16 (a 16-input adder tree each).
SMALL = {"rows": 128, "columns": 16, "subarrays_per_mat": 2, "mats": 1}


def small_config():
    """jeit_stt cut to :data:`SMALL`, adder layers on ``jeit_fa`` (its routes: abs_diff,
    and_bitcount, jeit_fa), zero skipping off (its counters are then data-independent; the
    route's zero skipping runs in ``cocotb_tests/test_core_zero_skip.py``)."""
    return dataclasses.replace(preset("jeit_stt").with_dataflow("jeit_fa"), zero_skip=False,
                               **SMALL)


def _logit(d: int) -> Instr:
    return asm.requant(a=0, d=d, imm=ppu_imm(clear=True, emit=True, mode=PpuMode.LOGIT))


def dot_body(config) -> list:
    """The route's dot of one tile: x plane b in row b, w plane b in slot b."""
    stage = type("Stage", (), {"n": config.operand_bits})()
    return get_route("jeit_fa").dot(stage, 0, lambda b: b, lambda b: b, config)


def dot_program(config, *, early: int = 0, reduce_after: bool = False) -> list:
    """Words of: the dot, then LOGIT words of the mat's sum (d = 0) and of each subarray's
    (d = 1 ..). ``early``: drop that many of the flush NOPs (a REQUANT during the flush);
    ``reduce_after``: a ``READ`` row 0 ``L1_FIRST`` before the REQUANTs (they then take the
    accumulators: the popcount of row 0)."""
    body = dot_body(config)
    if early:
        body = body[:-early]
    if reduce_after:
        body.append(asm.read(a=0, imm=ReduceOp.L1_FIRST.value))
    k = config.subarrays_per_mat
    return asm.assemble(body + [_logit(d) for d in range(k + 1)] + [asm.halt()])


def planes(values, n: int) -> np.ndarray:
    """bool [n, W]: plane b holds bit b of every element."""
    v = np.asarray(values, dtype=np.int64)
    return np.stack([(v >> b) & 1 for b in range(n)]).astype(np.uint8)


def vectors(rng, width: int, n: int, count: int) -> list:
    """Corner pairs (all zero, x max w 0, x 0 w max) and ``count`` random pairs."""
    top = (1 << n) - 1
    out = [(np.zeros(width, np.int64), np.zeros(width, np.int64)),
           (np.full(width, top), np.zeros(width, np.int64)),
           (np.zeros(width, np.int64), np.full(width, top))]
    out += [(rng.integers(0, top + 1, width), rng.integers(0, top + 1, width))
            for _ in range(count)]
    return out


def want_sums(x, w, config) -> list:
    """[mat sum, subarray 0 sum, ...] by ``golden.pim.l1_fa_tree`` (each subarray's terms)."""
    k, c = config.subarrays_per_mat, config.columns
    parts = [int(l1_fa_tree(x[i * c:(i + 1) * c], w[i * c:(i + 1) * c],
                            config.operand_bits)[0]) for i in range(k)]
    return [sum(parts)] + parts


async def _started(dut, config):
    """The RTL host after reset and the cycle model, both with gather table entry 0 = 0."""
    from sim.flows.rtl_backend import CoreHost
    from sim.hw.core_model import CoreModel
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config)
    await host.write_table([0], [0], [0])
    model.write_table(0, 0, 0, 0)
    return host, model


async def _write_operands(host, model, x, w, n: int) -> np.ndarray:
    """``x``'s n bit-planes into array rows 0 .. n-1 and ``w``'s into buffer slots 0 .. n-1,
    on the RTL core and the cycle model alike; returns ``x``'s planes."""
    xp, wp = planes(x, n), planes(w, n)
    ones = np.ones(xp.shape[1], np.uint8)
    await host.array_commands([(MacroCmd.WRITE, b, xp[b], ones) for b in range(n)])
    await host.write_buffer(wp)
    for b in range(n):
        model.array_command(MacroCmd.WRITE, b, xp[b])
        model.write_buffer(b, wp[b])
    return xp


@cocotb.test()
async def jeit_fa_dots(dut):
    """The route's dot == golden per subarray and per mat; counters == the cycle model's;
    an early REQUANT and a reduce after the dot == the cycle model."""
    p = load_params()
    rng_py, seed = make_rng(p, "jeit_fa_dots")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = small_config()
    n, k = config.operand_bits, config.subarrays_per_mat
    width = k * config.columns
    host, model = await _started(dut, config)
    programs = {"dot": dot_program(config),
                "early": dot_program(config, early=int(rng.integers(1, 4))),
                "reduce after": dot_program(config, reduce_after=True)}
    for t, (x, w) in enumerate(vectors(rng, width, n, 6)):
        xp = await _write_operands(host, model, x, w, n)
        want = want_sums(x, w, config)
        plain = int(np.abs(x - w).sum())
        assert want[0] == plain, f"{BLOCK}: golden.pim.l1_fa_tree {want[0]} != numpy {plain}"
        for name, words in programs.items():
            counters = await host.run(words, max_cycles=500)
            got = await host.read_outputs(k + 1)
            ref = model.run(words)
            where = (f"{BLOCK}: {name} program, vector pair {t} (seed {seed}; rerun with "
                     f"SPINPIM_SEED={seed})")
            assert not ref.error, f"{where}: cycle model error {ref.reason}"
            assert got == list(ref.out[:k + 1]), f"{where}: rtl {got} != cycle model {ref.out}"
            if name == "dot":
                assert got == want, (f"{where}: rtl [mat, subarrays...] {got} != golden "
                                     f"{want} (x {x.tolist()}, w {w.tolist()})")
                assert counters["write_row"] == 0 and counters["fs_step"] == 2 * n, counters
            if name == "reduce after":
                pop = int(xp[0].sum())
                assert got[0] == pop, f"{where}: after a reduce the accumulators: {got[0]}"
            assert counters == ref.counters, (f"{where}: rtl counters {counters} != cycle "
                                              f"model {ref.counters}")


@cocotb.test()
async def jeit_fa_layers(dut):
    """Compiled random adder layers on the route == golden, counters == the cycle model."""
    from cocotb_tests.test_core import _case_models, _run_cases
    p = load_params()
    rng_py, seed = make_rng(p, "jeit_fa_layers")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    cases = [c for c in _case_models(rng, p["images"]) if "adder" in c[0]]
    cases += _pipelined_cases(rng, p["images"])
    await _run_cases(dut, cases, small_config(), seed)


def _pipelined_cases(rng, n_images) -> list:
    """Shapes whose compute loops the route software-pipelines across iterations and tiles
    (``sim.routes.jeit_fa``): a wide layer of 2 tiles over several patches (several chunks),
    a segmented one of several groups and a partial group."""
    from cocotb_tests.test_core import _layer
    from golden.model import make_model
    cases = []
    for name, shape in (("adder_conv_2_tiles", (4, 5, 5)), ("adder_conv_groups", (1, 5, 5))):
        x = rng.integers(0, 256, (n_images, *shape)).astype(np.uint8)
        conv, y = _layer("adder_conv2d", rng, x, o=2)
        head, _ = _layer("mul_linear", rng, y.reshape(n_images, -1), o=3, output="logits")
        cases.append((name, make_model(name=name, input_shape=shape, input_scale=1 / 255,
                                       class_names=["0", "1", "2"],
                                       layers=[conv, Layer("flatten"), head]), x))
    return cases


@pytest.mark.sim
def test_core_jeit_fa(sim):
    run_block(Core(config=small_config(), faults=False), block=BLOCK, sim=sim,
              test_module=__name__, params={"images": 2})


def test_dot_is_the_routes():
    """The hand-placed dot is the route's own program: 2n FS_STEPs and the flush NOPs."""
    config = small_config()
    ops = [i.op for i in dot_body(config)]
    n = config.operand_bits
    assert ops == [Opcode.FS_STEP] * 2 * n + [Opcode.NOP] * 4


#: Operand width of :func:`jeit_fa_full_width`: as many planes as the FA sums have bits, so the
#: array's steps reach the top bit of its ``acc_bits``-wide sum registers.
def _full_width(config) -> int:
    return config.acc_bits


def full_width_program(config, n: int) -> list:
    """Words of the route's dot stretched to ``n`` planes (SIGN pass, DIFF pass into the array,
    the flush), then LOGIT words of the mat's sum and of each subarray's."""
    from rtl.fa_array import tree_depth
    from sim.routes.base import op
    from sim.routes.jeit_fa import ACC, LAST
    body = [op(Opcode.FS_STEP, imm=1 if b == 0 else 0, a=b, b=b) for b in range(n)]
    for b in range(n):
        imm = 2 | ACC | (1 if b == 0 else 0) | (LAST if b == n - 1 else 0)
        body.append(op(Opcode.FS_STEP, imm=imm, a=b, b=b))
    body += [Instr(Opcode.NOP)] * tree_depth(config.columns)
    k = config.subarrays_per_mat
    return asm.assemble(body + [_logit(d) for d in range(k + 1)] + [asm.halt()])


@cocotb.test()
async def jeit_fa_full_width(dut):
    """Dots of ``acc_bits``-bit operands (planes 0 .. acc_bits - 1): every step of the array
    lands a sum bit up to the top bit of its sum registers, which the compiled layers (8-bit
    operands, 12-bit sums) never reach. Each subarray's sum and the mat's == ``golden.pim.
    l1_fa_tree`` mod ``2**acc_bits`` (the registers' width) and the cycle model; the vectors
    set the top bit of every subarray's sum at least once (checked)."""
    p = load_params()
    rng_py, seed = make_rng(p, "jeit_fa_full_width")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = small_config()
    n, k, c = _full_width(config), config.subarrays_per_mat, config.columns
    width, mod = k * c, 1 << config.acc_bits
    top = (1 << n) - 1
    host, model = await _started(dut, config)
    words = full_width_program(config, n)
    zero = np.zeros(width, np.int64)
    one_big = zero.copy()
    one_big[::c] = (1 << (n - 1)) | 5          # one term per subarray with the top bit
    pairs = [(np.full(width, top), zero),        # every sum 16 * (2**n - 1) mod 2**n
             (zero, one_big), (one_big, zero)]
    pairs += [(rng.integers(0, top + 1, width), rng.integers(0, top + 1, width))
              for _ in range(3)]
    top_set = [False] * k
    for t, (x, w) in enumerate(pairs):
        await _write_operands(host, model, x, w, n)
        parts = [int(l1_fa_tree(x[i * c:(i + 1) * c], w[i * c:(i + 1) * c], n)[0])
                 for i in range(k)]
        plain = int(np.abs(x - w).sum())
        assert sum(parts) == plain, f"{BLOCK}: golden.pim.l1_fa_tree {sum(parts)} != numpy {plain}"
        want = [sum(parts) % mod] + [s % mod for s in parts]
        top_set = [s or bool(v >> (config.acc_bits - 1)) for s, v in zip(top_set, want[1:],
                                                                          strict=True)]
        counters = await host.run(words, max_cycles=1000)
        got = await host.read_outputs(k + 1)
        ref = model.run(words)
        where = (f"{BLOCK}: {n}-bit dot, vector pair {t} (seed {seed}; rerun with "
                 f"SPINPIM_SEED={seed})")
        assert not ref.error, f"{where}: cycle model error {ref.reason}"
        assert got == want, (f"{where}: rtl [mat, subarrays...] {got} != golden mod 2**"
                             f"{config.acc_bits} {want} (x {x.tolist()}, w {w.tolist()})")
        assert got == list(ref.out[:k + 1]), f"{where}: rtl {got} != cycle model {ref.out}"
        assert counters == ref.counters, (f"{where}: rtl counters {counters} != cycle model "
                                          f"{ref.counters}")
    assert all(top_set), f"{BLOCK}: the vectors never set the top bit of a sum: {top_set}"
