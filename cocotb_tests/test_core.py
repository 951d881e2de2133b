"""End to end: compiled layers and the committed digits model on the core (``rtl.core``), every
stage output compared with the golden model (``golden.model.infer_int``, trace) with ``==``.

Random single layers of every kind and shape class run on small subarrays (128 x 16), alone and
in mats of 2 and 4, so that the compiler has to tile the fan-in, chunk the patches and use both
mat modes (patches side by side in the subarrays, or one dot product across the mat); the
digits model runs on full-size subarrays, once per adder dataflow (write-free on nand_spin in
a mat of 2, abs-diff on jeit_stt on one subarray). Every run builds its array rows on chip
from the data memory (``MOVE GATHER``): the host writes only the input image.
"""

import dataclasses

import cocotb
import numpy as np
import pytest

from cocotb_tests.harness import load_params, make_rng, run_block
from golden import datasets, layers as gl
from golden.model import Layer, bundled_model_path, infer_int, load_model, make_model
from rtl.config import preset
from rtl.core import Core
from rtl.routes import ROUTES
from sim.flows.rtl_backend import CoreHost

BLOCK = "core"
#: A small array (128 x 16): fan-ins above 16 are tiled, a layer's patches are split into chunks.
SMALL = {"rows": 128, "columns": 16, "subarrays_per_mat": 1, "mats": 1}


def _bn(o):
    return dict(bn_gamma=np.ones(o, np.float32), bn_beta=np.zeros(o, np.float32),
                bn_mean=np.zeros(o, np.float32), bn_var=np.ones(o, np.float32),
                bn_eps=np.float64(1e-5))


def _requant(acc, rng):
    """Per-channel requant parameters that spread ``acc`` (int64 [N, O, ...]) over 0 .. 255
    with some saturation at both ends, as a trained layer's would."""
    o = acc.shape[1]
    flat = np.moveaxis(acc, 1, 0).reshape(o, -1)
    shift = rng.integers(8, 15, o).astype(np.int32)
    lo, hi = flat.min(1), flat.max(1)
    span = np.maximum(hi - lo, 1)
    mult = np.clip(np.round(300.0 * (1 << shift) / span), 1, 32767).astype(np.int64)
    mult = np.minimum(mult, 32767)
    # y = (acc - lo') * mult >> shift with lo' a little above lo: a few values saturate at 0.
    off = lo + span // 10
    bias = (-off * mult).astype(np.int64)
    return mult.astype(np.int32), bias, shift


def _layer(kind, rng, x, *, o, k=3, stride=1, padding=1, output="requant"):
    """One random compute layer on input batch ``x`` (uint8 [N, C, ...]); returns it and its
    output batch (golden)."""
    c = x.shape[1]
    shape = (o, c, k, k) if kind.endswith("conv2d") else (o, c)
    if kind.startswith("adder"):
        w = rng.integers(0, 256, shape).astype(np.uint8)
    else:
        w = rng.integers(-128, 128, shape).astype(np.int8)
    params = {"weight": w}
    if kind.endswith("conv2d"):
        params.update(stride=stride, padding=padding)
        fwd = gl.adder_conv2d if kind.startswith("adder") else gl.mul_conv2d
        acc = fwd(x, w, stride=stride, padding=padding)
    else:
        acc = (gl.adder_linear if kind.startswith("adder") else gl.mul_linear)(x, w)
    if output == "requant":
        mult, bias, shift = _requant(acc, rng)
        params.update(rq_mult=mult, rq_bias=bias, rq_shift=shift)
        y = gl.requantize(acc, mult, bias, shift)
        fparams = dict(weight=w.astype(np.float32), **_bn(o))
    else:
        bias = rng.integers(-1000, 1000, o).astype(np.int32)
        params.update(bias=bias)
        y = gl.add_bias(acc, bias)
        fparams = dict(weight=w.astype(np.float32), bias=np.zeros(o, np.float32))
    return Layer(kind, output, params, fparams), y


#: name -> builder(rng) of a random model with its layers' kinds and shapes.
def _case_models(rng, n_images):
    """The random single-layer cases (and one two-layer case), each a model plus images."""
    cases = []

    def images(shape):
        return rng.integers(0, 256, (n_images, *shape)).astype(np.uint8)

    def model(name, shape, specs):
        # A model ends with a logits layer (golden.model's format): cases without one get a
        # small multiply FC head, itself a stage compared like the others.
        if len(specs[-1]) < 2 or specs[-1][1].get("output") != "logits":
            specs = [*specs, ("flatten",), ("mul_linear", dict(o=3, output="logits"))]
        x = images(shape)
        ls, cur = [], x
        for spec in specs:
            kind = spec[0]
            if kind in ("max_pool2d", "avg_pool2d"):
                ls.append(Layer(kind, "", dict(kernel=2, stride=2)))
                pool = gl.max_pool2d if kind == "max_pool2d" else gl.avg_pool2d
                cur = pool(cur, 2, 2)
            elif kind == "flatten":
                if cur.ndim > 2:
                    ls.append(Layer("flatten"))
                    cur = cur.reshape(cur.shape[0], -1)
            else:
                layer, cur = _layer(kind, rng, cur, **spec[1])
                ls.append(layer)
        k = cur.shape[1]
        m = make_model(name=name, input_shape=shape, input_scale=1 / 255,
                       class_names=[str(i) for i in range(k)], layers=ls)
        cases.append((name, m, x))

    model("adder_conv_maxpool", (3, 6, 6), [("adder_conv2d", dict(o=5)), ("max_pool2d",)])
    model("adder_conv_stride2", (2, 7, 7), [("adder_conv2d", dict(o=3, stride=2, padding=0))])
    model("mul_conv_avgpool", (2, 6, 6), [("mul_conv2d", dict(o=4)), ("avg_pool2d",)])
    model("adder_linear_requant", (5, 2, 4), [("flatten",), ("adder_linear", dict(o=6))])
    model("mul_linear_logits", (37, 1, 1),
          [("flatten",), ("mul_linear", dict(o=5, output="logits"))])
    model("adder_linear_logits", (20, 1, 1),
          [("flatten",), ("adder_linear", dict(o=4, output="logits"))])
    model("conv_pool_flatten_linear", (2, 4, 4),
          [("mul_conv2d", dict(o=3)), ("max_pool2d",), ("flatten",),
           ("adder_linear", dict(o=3, output="logits"))])
    return cases


async def _run_cases(dut, cases, config, seed):
    """Every stage == golden; the counters (cycles, stalls, every opcode) of every image ==
    the cycle model's (``sim.hw.core_model``) and the compiler's static profile."""
    from sim.compile.compiler import compile_model, run_compiled
    from sim.hw.core_model import CoreModel
    host = CoreHost(dut, config)
    await host.reset()
    for name, model, x in cases:
        compiled = compile_model(model, config)
        await host.load_compiled(compiled)
        ref = CoreModel(config, subarrays=compiled.subarrays)
        for i, image in enumerate(x):
            trace = [np.asarray(t)[0] for t in infer_int(model, image[None], trace=True)]
            where = f"{BLOCK}: {name} ({config.dataflow}), image {i}"
            try:
                outputs, counters = await host.infer(compiled, image, golden_trace=trace)
            except AssertionError as e:
                raise AssertionError(f"{where}: {e} "
                                     f"(seed {seed}; rerun with SPINPIM_SEED={seed})") from None
            res = run_compiled(compiled, image, ref, load_weights=i == 0)
            modelled = res.counters
            static = {k: sum(c.micro_ops[k] for st in compiled.stages for c in st.chunks)
                      for k in counters}
            # zero skipping: the counters depend on the data (== the profile without skips)
            skipped = res.zero_skip.get("zs_tiles", 0)
            for key in counters:
                assert counters[key] == modelled[key] and (
                    skipped or counters[key] == static[key]), (
                    f"{where}: counter {key}: rtl {counters[key]}, cycle model "
                    f"{modelled[key]}, compiler profile {static[key]} (seed {seed})")
            assert host.zero_skip_totals == res.zero_skip, (
                f"{where}: zero-skip counters: rtl {host.zero_skip_totals}, cycle model "
                f"{res.zero_skip} (seed {seed})")
            # Device timing: an STT write-back (2 cycles at 133 MHz) holds the next micro-op.
            writes = counters["write_row"] + counters["program"] + counters["erase"]
            assert (counters["stalls"] > 0) == (config.has_stalls and writes > 0), (
                f"{where}: {counters['stalls']} stall cycles with stall table "
                f"{config.stalls} and {writes} array writes")
            dut._log.info("%s image %d: %d cycles (%s); wall s %s", name, i, counters["cycles"],
                          ", ".join(f"{s['name']}: {s['mode']}" for s in host.last_stages),
                          {k: round(v, 2) for k, v in host.wall.items()})


def _planes(values, bits=8):
    """Bit-planes of a vector: row b holds bit b of every element (two's complement)."""
    v = np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)
    return [((v >> b) & 1).astype(np.uint8) for b in range(bits)]


def _micro_programs(cols):
    """Hand-assembled programs on x planes in rows 0..7 and w planes in slots 0..7, each
    ending with one LOGIT word: write-free L1, abs-diff L1 (stt), signed AND dot."""
    from rtl.column_reduce import ReduceOp as R
    from rtl.ppu import PpuMode, ppu_imm
    from sim.compile import asm
    out = asm.requant(a=0, d=0, imm=ppu_imm(clear=True, emit=True, mode=PpuMode.LOGIT))
    write_free = [asm.min_step(a=7, b=7, imm=R.L1_FIRST.value), asm.loop(count=7),
                  asm.min_step(a=asm.rel(6, stride=-1), b=asm.rel(6, stride=-1),
                               imm=R.L1_PLANE.value), asm.endloop(), out, asm.halt()]
    scratch = 16
    abs_diff = [asm.fs_step(a=b, b=b, imm=int(b == 0)) for b in range(8)]
    for b in range(0, 8, 2):     # DIFF b, DIFF b+1, write b, write b+1 (lane out 2 cycles on)
        abs_diff += [asm.fs_step(a=b, b=b, imm=2 | int(b == 0)), asm.fs_step(a=b + 1, b=b + 1,
                                                                          imm=2),
                     asm.write_row(a=scratch + b, b=0, imm=1),
                     asm.write_row(a=scratch + b + 1, b=0, imm=1)]
    abs_diff += [asm.read(a=scratch + 7, imm=R.L1_FIRST.value)]
    abs_diff += [asm.read(a=scratch + b, imm=R.SHIFT_ADD.value) for b in range(6, -1, -1)]
    abs_diff += [out, asm.halt()]
    and_dot = [asm.shift_acc(a=0, imm=R.CLEAR.value)]
    for k in range(14, -1, -1):
        pairs = [(m, k - m) for m in range(8) if 0 <= k - m < 8]
        for i, (m, n) in enumerate(pairs):
            op = {(True, False): R.SHIFT_ADD, (True, True): R.SHIFT_SUB,
                  (False, False): R.ADD, (False, True): R.SUB}[(i == 0, n == 7)]
            and_dot.append(asm.and_fu(a=m, b=n, imm=op.value))
    and_dot += [out, asm.halt()]
    return {"write_free": asm.assemble(write_free), "abs_diff": asm.assemble(abs_diff),
            "and_dot": asm.assemble(and_dot)}


@cocotb.test()
async def core_micro_ops(dut):
    """Hand-assembled micro-op programs (no compiler) on random and corner vectors: the L1
    distance by both adder routes and the signed AND + bit-count dot product == numpy."""
    from rtl.mtj_array import MacroCmd
    p = load_params()
    if p["case"] != "micro":
        return
    rng_py, seed = make_rng(p, "core_micro_ops")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = CONFIGS[(p["case"], p["label"])]()
    cols = config.columns
    host = CoreHost(dut, config)
    await host.reset()
    programs = _micro_programs(cols)
    vectors = [(np.zeros(cols), np.zeros(cols)), (np.full(cols, 255), np.zeros(cols)),
               (np.zeros(cols), np.full(cols, 255))]
    vectors += [(rng.integers(0, 256, cols), rng.integers(0, 256, cols)) for _ in range(6)]
    for t, (x, w) in enumerate(vectors):
        x, w = np.asarray(x, np.int64), np.asarray(w, np.int64)
        ws = np.where(w > 127, w - 256, w)      # the same byte read as int8
        await host.array_commands([(MacroCmd.WRITE, b, plane, np.ones(cols, np.uint8))
                                   for b, plane in enumerate(_planes(x))])
        await host.write_buffer(_planes(w))
        await host.write_table([0], [0], [0])
        want = {"write_free": int(np.abs(x - w).sum()), "abs_diff": int(np.abs(x - w).sum()),
                "and_dot": int((x * ws).sum()) % (1 << 32)}
        for name, words in programs.items():
            counters = await host.run(words, max_cycles=1000)
            got = (await host.read_outputs(1))[0]
            assert got == want[name], (
                f"{BLOCK}: {name} on vector pair {t}: rtl {got} != numpy {want[name]} "
                f"(x {x.tolist()}, w {w.tolist()}; seed {seed}, rerun with SPINPIM_SEED={seed})")
            if name == "write_free":
                assert counters["min_step"] == 8, counters


def _stall_program():
    """A program of writes (STT: 2 cycles at 133 MHz) and the holds it must see, by hand: a
    write holds the micro-op right after it one cycle, a NOP or LOOP between absorbs it."""
    from rtl.column_reduce import ReduceOp as R
    from rtl.ppu import PpuMode, ppu_imm
    from sim.compile import asm
    instrs = [
        asm.write_row(a=0, b=0, imm=0),                  # k0 (hold 0)
        asm.read(a=0, imm=R.L1_FIRST.value),             # k1 right after a write: hold 1
        asm.write_row(a=1, b=1, imm=0),                  # k2 after a read: 0
        asm.nop(),                                       #    the NOP absorbs the busy cycle
        asm.read(a=1, imm=R.ADD.value),                  # k3: 0
        asm.write_row(a=2, b=2, imm=0),                  # k4: 0
        asm.loop(count=3),                               #    the LOOP absorbs it
        asm.write_row(a=asm.rel(3), b=asm.rel(3), imm=0),  # k5 0, k6 1, k7 1 (ENDLOOP folded)
        asm.endloop(),
        asm.read(a=5, imm=R.ADD.value),                  # k8 after a write: 1
        asm.requant(a=0, d=0, imm=ppu_imm(clear=True, emit=True, mode=PpuMode.LOGIT)),  # k9
        asm.halt(),
    ]
    return asm.assemble(instrs), [0, 1, 0, 0, 0, 0, 1, 1, 1, 0]


@cocotb.test()
async def core_device_stalls(dut):
    """Device timing: STT writes of 2 cycles hold the next micro-op; the counters (cycles,
    stalls) == the instruction-set reference with the holds given by hand and == the cycle
    model; the written rows read back (the output)."""
    from sim.hw.core_model import CoreModel
    from sim.hw.isa_model import run_program
    p = load_params()
    if p["case"] != "micro":
        return
    rng_py, seed = make_rng(p, "core_device_stalls")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = CONFIGS[(p["case"], p["label"])]()
    assert config.stalls["write"] == 2, config.stalls
    cols = config.columns
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config)
    words, holds = _stall_program()
    want = run_program(words, stall=holds, depth=1024)
    for t in range(3):
        rows = rng.integers(0, 2, (6, cols)).astype(np.uint8)
        await host.write_buffer(rows)
        await host.write_table([0], [0], [0])
        for slot, row in enumerate(rows):
            model.write_buffer(slot, row)
        model.write_table(0, 0, 0, 0)
        counters = await host.run(words, max_cycles=200)
        got = (await host.read_outputs(1))[0]
        ref = model.run(words)
        expect = int(rows[0].sum() + rows[1].sum() + rows[5].sum())
        where = f"{BLOCK}: stall program, trial {t} (seed {seed}; SPINPIM_SEED={seed})"
        assert got == ref.out[0] == expect, f"{where}: rtl {got}, model {ref.out}, {expect}"
        assert list(counters.values()) == want.counters, (
            f"{where}: rtl counters {counters} != reference {want.counters}")
        assert counters == ref.counters, f"{where}: rtl {counters} != model {ref.counters}"
        assert counters["stalls"] == sum(holds) == 4, counters


def _lane_programs(config):
    """Short programs that need a route's lanes: {route: program words}. The write-back is
    the technology's own write (NAND-SPIN: erase the strip, then program), so that only the
    missing lane can be the error."""
    from rtl.column_reduce import ReduceOp as R
    from rtl.isa import WriteSrc
    from sim.compile import asm
    src = WriteSrc.ABS_DIFF.value
    write = ([asm.erase(a=0), asm.program(a=1, b=0, imm=src)]
             if config.technology == "nand_spin" else [asm.write_row(a=1, b=0, imm=src)])
    return {
        "write_free": asm.assemble([asm.min_step(a=0, b=0, imm=R.L1_FIRST.value), asm.halt()]),
        "abs_diff": asm.assemble([asm.fs_step(a=0, b=0, imm=1), asm.halt()]),
        "abs_diff source": asm.assemble(write + [asm.halt()]),
    }


@cocotb.test()
async def core_generated_from_routes(dut):
    """A core generated for its routes flags exactly the micro-ops and write sources of the
    routes it lacks (``error``), as the cycle model does; ``start`` clears the error and a
    program of its own routes runs clean."""
    from sim.hw.core_model import CoreModel
    p = load_params()
    if p["case"] != "layers" or p["label"] not in ("small-write_free", "small-abs_diff-stt"):
        return
    config = CONFIGS[(p["case"], p["label"])]()
    host = CoreHost(dut, config)
    await host.reset()
    model = CoreModel(config)

    async def error_of(words):
        return (await host.run_raw(words, max_cycles=64))[1]

    programs = _lane_programs(config)
    for name, words in programs.items():
        has = name.split()[0] in config.routes
        got, modelled = await error_of(words), model.run(words)
        assert got == modelled.error == (not has), (
            f"{BLOCK}: {name} micro-op on a core with routes {config.routes}: rtl error {got}, "
            f"model error {modelled.error} ({modelled.reason}), expected {not has}")
        own = programs[config.dataflow]
        assert not await error_of(own), f"{BLOCK}: {config.dataflow} program after {name}"


@cocotb.test()
async def core_random_layers(dut):
    """Random single layers of every kind (tiled, chunked, pooled) == golden, both dataflows."""
    p = load_params()
    if p["case"] != "layers":
        return
    rng_py, seed = make_rng(p, "core_random_layers")
    rng = np.random.default_rng(rng_py.getrandbits(64))
    config = CONFIGS[(p["case"], p["label"])]()
    cases = _case_models(rng, p["images"])
    await _run_cases(dut, cases, config, seed)


@cocotb.test()
async def core_digits_model(dut):
    """The committed digits model on real test images: every stage == golden."""
    p = load_params()
    if p["case"] != "digits":
        return
    _, seed = make_rng(p, "core_digits_model")
    config = CONFIGS[(p["case"], p["label"])]()
    model = load_model(bundled_model_path("digits_addernet"))
    x, _ = datasets.load_dataset("digits", "test")
    start = seed % (len(x) - p["images"])
    await _run_cases(dut, [("digits_addernet", model, x[start:start + p["images"]])], config,
                     seed)


def _small(name, dataflow, mat=1):
    from tests.test_limits import OLD_SIZES     # nand_spin's preset has larger ones of its own
    return dataclasses.replace(preset(name).with_dataflow(dataflow),
                               **{**SMALL, **OLD_SIZES, "subarrays_per_mat": mat})


def _mat(name, mat):
    """The preset on a mat of ``mat`` at the old sizes (``tests.test_limits.OLD_SIZES``;
    nand_spin's preset has a larger data memory and offset table of its own, which the
    ``make sim`` runs cover)."""
    from tests.test_limits import OLD_SIZES
    return dataclasses.replace(preset(name), subarrays_per_mat=mat, **OLD_SIZES)


CONFIGS = {
    # (case, label): config (the core is a mat of config.subarrays_per_mat subarrays)
    # hand-written programs of both adder routes: a core with every route
    ("micro", "small-stt"): lambda: dataclasses.replace(_small("jeit_stt", "abs_diff"),
                                                        routes=tuple(ROUTES)),
    ("layers", "small-write_free"): lambda: _small("nand_spin", "write_free"),
    ("layers", "small-abs_diff-stt"): lambda: _small("jeit_stt", "abs_diff"),
    ("layers", "small-abs_diff-nand"): lambda: _small("nand_spin", "abs_diff"),
    ("layers", "small-write_free-mat4"): lambda: _small("nand_spin", "write_free", 4),
    ("layers", "small-abs_diff-stt-mat2"): lambda: _small("jeit_stt", "abs_diff", 2),
    ("digits", "nand_spin-write_free-mat2"): lambda: _mat("nand_spin", 2),
    ("digits", "jeit_stt-jeit_fa-mat1"): lambda: _mat("jeit_stt", 1),    # its FA array, zero skip
}


@pytest.mark.sim
@pytest.mark.parametrize("case,label", list(CONFIGS))
def test_core(sim, case, label):
    config = CONFIGS[(case, label)]()
    # No fault injection (cocotb_tests/test_core_faults.py has it): the per-column LFSRs
    # would multiply the Verilator build time of a full-size mat.
    run_block(Core(config=config, faults=False), block=BLOCK, sim=sim, test_module=__name__,
              params={"case": case, "label": label, "images": 2 if case == "layers" else 1})
