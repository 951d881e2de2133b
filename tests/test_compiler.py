"""sim.compiler on sim.core_model.CoreModel against the golden model, bit for bit.

Random single layers of every kind on small configurations (tiling, chunking, fused pools),
the committed digits model end to end on real images, the compile errors, and the cycle
structure the spec implies (``build/core_spec.md``: micro-ops per output of each route).
"""

import dataclasses
import os

import numpy as np
import pytest

from golden.datasets import load_digits
from golden.model import Layer, Model, bundled_model_path, infer_int, layer_forward_int, load_model
from rtl.config import preset
from rtl.isa import Opcode, decode
from rtl.mtj_array import MacroCmd
from sim import asm
from sim.compiler import (
    CompileError, compile_model, host_array_load, program_profile, run_compiled,
)
from sim.core_model import CoreModel
from sim.isa_model import run_program
from sim.util import UserError

SEED = int(os.environ.get("SPINPIM_SEED", "20261123"))
N = 8


def cfg_of(name, dataflow, *, rows=64, columns=16):
    return dataclasses.replace(preset(name), dataflow=dataflow, rows=rows, columns=columns)


def check_equal(what, got, want, seed):
    got, want = np.asarray(got, dtype=np.int64), np.asarray(want, dtype=np.int64)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != golden {want.shape}"
    bad = np.flatnonzero(got.ravel() != want.ravel())
    assert not bad.size, (f"{what}: {bad.size} of {got.size} values differ; first at flat index "
                          f"{bad[0]}: core {got.ravel()[bad[0]]} != golden "
                          f"{want.ravel()[bad[0]]} (seed {seed})")


def fit_requant(acc, rng):
    """rq_mult / rq_bias / rq_shift spreading each channel's accumulators over ~[-20, 275]."""
    o = acc.shape[1]
    a = np.moveaxis(acc, 1, 0).reshape(o, -1)
    lo, hi = a.min(axis=1), a.max(axis=1)
    mult = np.zeros(o, np.int32)
    shift = np.zeros(o, np.int32)
    bias = np.zeros(o, np.int64)
    for c in range(o):
        span = int(hi[c] - lo[c]) + 1
        s = 16
        while s > 0 and 300 * (1 << s) // span > 32767:
            s -= 1
        m = max(1, 300 * (1 << s) // span)
        if rng.integers(2):        # a decreasing map too
            mult[c], bias[c] = -m, int(hi[c]) * m - (20 << s)
        else:
            mult[c], bias[c] = m, -int(lo[c]) * m - (20 << s)
        shift[c] = s
    return mult, bias, shift


def make_layer(kind, rng, x, *, out_ch, k=3, stride=1, padding=0, output="requant"):
    """A random compute layer for input ``x`` [1, ...] with requant parameters fitted to it."""
    c = x.shape[1]
    conv = kind.endswith("conv2d")
    shape = (out_ch, c, k, k) if conv else (out_ch, c)
    if kind.startswith("adder"):
        w = rng.integers(0, 256, shape).astype(np.uint8)
    else:
        w = rng.integers(-128, 128, shape).astype(np.int8)
        w.flat[0] = -128
    params = {"weight": w}
    if conv:
        params.update(stride=stride, padding=padding)
    probe = Layer(kind=kind, output="logits", params={**params, "bias": np.zeros(out_ch,
                                                                                  np.int32)})
    acc = layer_forward_int(probe, x)
    if output == "logits":
        params["bias"] = rng.integers(-5000, 5000, out_ch).astype(np.int32)
    else:
        params["rq_mult"], params["rq_bias"], params["rq_shift"] = fit_requant(acc, rng)
    return Layer(kind=kind, output=output, params=params)


def single_layer_model(layers, in_shape):
    # A bare Model (not validated: a single layer need not end in logits).
    return Model(name="t", input_shape=tuple(in_shape), input_scale=1.0, class_names=(),
                 layers=tuple(layers))


def run_model_checked(model, config, x, seed):
    compiled = compile_model(model, config)
    core = CoreModel(config)
    res = run_compiled(compiled, x, core)
    cur = x[None]
    trace = []
    for ly in model.layers:
        cur = layer_forward_int(ly, cur)
        trace.append(cur)
    for stage, out in zip(compiled.stages, res.outputs, strict=True):
        want = trace[stage.golden_index][0]
        check_equal(f"stage {stage.name} (golden layer {stage.golden_index})", out, want, seed)
        assert out.dtype == (np.int64 if stage.output == "logits" else np.uint8)
    # static profile of the programs and host loads == what the run counted
    for stage, sr in zip(compiled.stages, res.stages, strict=True):
        assert sr.micro_ops == stage.micro_ops
        assert stage.host_loads == {"writes": sr.host_writes, "erases": sr.host_erases,
                                    "programs": sr.host_programs}
    return compiled, res


CASES = {
    # name: (preset, dataflow, rows, kind, C, H, out_ch, conv kwargs, pool)
    "adder_conv_write_free_tiled": ("nand_spin", "write_free", 64, "adder_conv2d", 3, 6, 5,
                                    dict(k=3, padding=1), None),
    "adder_conv_abs_diff_maxpool_odd": ("jeit_stt", "abs_diff", 128, "adder_conv2d", 2, 9, 4,
                                        dict(k=3), "max"),
    "adder_conv_abs_diff_nand_avgpool": ("nand_spin", "abs_diff", 128, "adder_conv2d", 1, 7,
                                         3, dict(k=2, stride=1), "avg"),
    "adder_conv_write_free_stride2_maxpool": ("jeit_stt", "write_free", 64, "adder_conv2d", 2,
                                              11, 3, dict(k=3, stride=2, padding=1), "max"),
    "mul_conv_avgpool_stride2": ("nand_spin", "write_free", 64, "mul_conv2d", 1, 8, 4,
                                 dict(k=3, stride=2, padding=1), "avg"),
    "mul_conv_tiled": ("jeit_stt", "abs_diff", 64, "mul_conv2d", 4, 5, 3, dict(k=3, padding=1),
                       None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_conv_layer_equals_golden(case):
    tech, dataflow, rows, kind, c, h, out_ch, kw, pool = CASES[case]
    seed = SEED + sorted(CASES).index(case)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, c, h, h)).astype(np.uint8)
    x[0, 0, 0, :] = 0
    ly = make_layer(kind, rng, x, out_ch=out_ch, **kw)
    layers = [ly]
    if pool:
        layers.append(Layer(kind=f"{pool}_pool2d", params={"kernel": 2, "stride": 2}))
    model = single_layer_model(layers, x.shape[1:])
    config = cfg_of(tech, dataflow, rows=rows)
    compiled, res = run_model_checked(model, config, x[0], seed)
    stage = compiled.stages[0]
    # every output position of the conv that the pool (if any) uses is computed once
    ho = layer_forward_int(ly, x).shape[2]
    positions = ((ho // 2) ** 2 * 4) if pool else ho * ho
    outputs = positions * out_ch
    tiles = -(-c * kw["k"] ** 2 // config.columns)
    assert stage.tiles == tiles
    ops = res.stages[0].micro_ops
    assert ops["requant"] == outputs * tiles
    if kind.startswith("mul"):
        assert ops["and_fu"] == outputs * tiles * N * N
    elif dataflow == "write_free":                  # n cycles per tile dot, no write
        assert ops["min_step"] == outputs * tiles * N
        assert ops["write_row"] == ops["erase"] == ops["program"] == 0
    else:                                           # sign + diff passes, n write-backs
        assert ops["fs_step"] == outputs * tiles * 2 * N
        assert ops["write_row"] + ops["program"] == outputs * tiles * N
        assert ops["shift_acc"] == outputs * tiles * N
        strips = 1 if tech == "nand_spin" else 0    # 8 scratch rows = one strip of 8 MTJs
        assert ops["erase"] == outputs * tiles * strips
    assert len(stage.chunks) > 1                    # these shapes need several chunks


@pytest.mark.parametrize("kind, dataflow, output", [
    ("adder_linear", "abs_diff", "requant"),
    ("adder_linear", "write_free", "requant"),
    ("adder_linear", "write_free", "logits"),
    ("mul_linear", "write_free", "logits"),
    ("mul_linear", "abs_diff", "requant"),
])
def test_linear_layer_equals_golden(kind, dataflow, output):
    seed = SEED + 100 + ["adder_linear", "mul_linear"].index(kind)
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, 40)).astype(np.uint8)
    ly = make_layer(kind, rng, x, out_ch=7, output=output)
    model = single_layer_model([ly], x.shape[1:])
    config = cfg_of("nand_spin" if output == "logits" else "jeit_stt", dataflow)
    compiled, res = run_model_checked(model, config, x[0], seed)
    assert compiled.stages[0].tiles == 3 and len(compiled.stages[0].chunks) == 1
    assert res.outputs[0].dtype == (np.int64 if output == "logits" else np.uint8)


def test_program_profile_and_max_cycles_match_the_controller():
    model = load_model(bundled_model_path("digits_addernet"))
    for dataflow in ("write_free", "abs_diff"):
        compiled = compile_model(model, dataclasses.replace(preset("nand_spin"),
                                                            dataflow=dataflow))
        for stage in compiled.stages:
            chunk = stage.chunks[-1]
            run = run_program(chunk.program, depth=compiled.imem_depth)
            assert not run.error
            cycles, counts = program_profile(chunk.program)
            assert cycles == chunk.cycles == run.counters[0] < chunk.max_cycles
            assert list(counts.values()) == run.counters


def test_host_array_load():
    rows = [8, 9, 17]
    bits = np.random.default_rng(0).integers(0, 2, (3, 16)).astype(bool)
    cmds = host_array_load(cfg_of("nand_spin", "write_free"), rows, bits)
    assert [(c, r) for c, r, _, _ in cmds] == [(MacroCmd.ERASE, 8), (MacroCmd.ERASE, 16),
                                               (MacroCmd.PROGRAM, 8), (MacroCmd.PROGRAM, 9),
                                               (MacroCmd.PROGRAM, 17)]
    assert all(m.all() for _, _, _, m in cmds)
    assert (cmds[4][2] == bits[2]).all()
    cmds = host_array_load(cfg_of("jeit_stt", "write_free"), rows, bits)
    assert [(c, r) for c, r, _, _ in cmds] == [(MacroCmd.WRITE, r) for r in rows]


# ---- the committed digits model end to end -----------------------------------------------

@pytest.mark.parametrize("name, dataflow", [("nand_spin", "write_free"),
                                            ("nand_spin", "abs_diff"),
                                            ("jeit_stt", "write_free"),
                                            ("jeit_stt", "abs_diff")])
def test_digits_model_end_to_end(name, dataflow):
    model = load_model(bundled_model_path("digits_addernet"))
    x, _ = load_digits("test")
    config = dataclasses.replace(preset(name), dataflow=dataflow)
    compiled = compile_model(model, config)
    core = CoreModel(config)
    # tile dot products of the adder layers, from the model's shapes: every conv output lies
    # in a pool window here (even sizes), T = ceil(fan-in / columns)
    shapes = model.shapes()
    adder_tile_dots = sum(
        int(np.prod(shapes[i + 1])) * -(-int(np.prod(ly.params["weight"].shape[1:]))
                                        // config.columns)
        for i, ly in enumerate(model.layers) if ly.kind.startswith("adder"))
    assert adder_tile_dots == 16 * 64 + 16 * 16 * 2 + 32
    rng = np.random.default_rng(SEED)
    picks = rng.choice(len(x), 2, replace=False)
    for n_img, i in enumerate(picks):
        trace = infer_int(model, x[i][None], trace=True)
        res = run_compiled(compiled, x[i], core, load_weights=n_img == 0)
        for stage, out in zip(compiled.stages, res.outputs, strict=True):
            want = trace[stage.golden_index][0].reshape(stage.out_shape)
            check_equal(f"image {i}: stage {stage.name} (golden layer {stage.golden_index})",
                        out, want, SEED)
        assert (res.logits == trace[-1][0]).all()
        assert res.cycles == compiled.cycles
        writes = sum(s.write_backs for s in res.stages)
        assert writes == (0 if dataflow == "write_free" else adder_tile_dots * N)
        rows = sum(len(c.rows) for s in compiled.stages for c in s.chunks)
        if name == "nand_spin":
            assert res.host_programs == rows and res.host_writes == 0
            assert res.host_erases == sum(-(-len(c.rows) // 8)
                                          for s in compiled.stages for c in s.chunks)
        else:
            assert res.host_writes == rows and res.host_erases == res.host_programs == 0


# ---- compile errors --------------------------------------------------------------------------

def digits():
    return load_model(bundled_model_path("digits_addernet"))


def test_and_bitcount_cannot_map_adder_layers():
    config = dataclasses.replace(preset("nand_spin"), dataflow="and_bitcount")
    with pytest.raises(CompileError, match=r"^layer 1 \(adder_conv2d\): dataflow "
                       r"'and_bitcount' cannot map an adder layer .*'write_free' or "
                       r"'abs_diff'") as e:
        compile_model(digits(), config)
    assert isinstance(e.value, UserError)


def test_pool_kernel_3_is_refused():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 1, 9, 9)).astype(np.uint8)
    ly = make_layer("adder_conv2d", rng, x, out_ch=2)
    pool = Layer(kind="max_pool2d", params={"kernel": 3, "stride": 3})
    model = single_layer_model([ly, pool], x.shape[1:])
    with pytest.raises(CompileError, match=r"^layer 1 \(max_pool2d\): only kernel 2 stride 2 "
                       r"pools .* not kernel 3 stride 3"):
        compile_model(model, cfg_of("jeit_stt", "write_free"))


def test_model_too_big_for_the_buffer():
    with pytest.raises(CompileError, match=r"weights need 784 weight-buffer slots .*layer 0 "
                       r"\(mul_conv2d\) 64.* but buffer_slots is 512"):
        compile_model(digits(), preset("jeit_stt"), buffer_slots=512)


def test_patch_that_does_not_fit_the_rows():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 8, 4, 4)).astype(np.uint8)
    ly = make_layer("adder_conv2d", rng, x, out_ch=2)
    model = single_layer_model([ly], x.shape[1:])
    config = cfg_of("jeit_stt", "abs_diff", rows=64, columns=8)
    with pytest.raises(CompileError, match=r"^layer 0 \(adder_conv2d\): one patch needs 72 "
                       r"array rows \(9 tiles x 8 planes\) \+ 8 abs-diff scratch rows, but the "
                       r"array has rows=64"):
        compile_model(model, config)


def test_program_longer_than_imem():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 200)).astype(np.uint8)
    model = single_layer_model([make_layer("mul_linear", rng, x, out_ch=3, output="logits")],
                               (200,))
    with pytest.raises(CompileError, match=r"^layer 0 \(mul_linear\): the program of one chunk "
                       r"needs 1630 instruction words \(25 tiles x 65 \+ 5\), but imem_depth "
                       r"is 1024"):
        compile_model(model, cfg_of("jeit_stt", "write_free", rows=256, columns=8))


def test_chunk_programs_respect_the_isa():
    compiled = compile_model(digits(), preset("jeit_stt"))
    for stage in compiled.stages:
        for chunk in stage.chunks:
            asm.check_program([decode(w) for w in chunk.program])
            assert len(chunk.program) <= compiled.imem_depth
            assert chunk.rows[-1] < compiled.config.rows
    ops = {asm.disassemble(w).split()[0] for s in compiled.stages for c in s.chunks
           for w in c.program}
    assert ops <= {"loop", "endloop", "halt", "nop", "fs_step", "write_row", "shift_acc",
                   "requant", "and_fu"}
    assert Opcode.MIN_STEP.name.lower() not in ops
