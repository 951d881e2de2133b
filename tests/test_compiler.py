"""sim.compile.compiler on sim.hw.core_model.CoreModel against the golden model, bit for bit.

Random single layers of every kind on small configurations (tiling, chunking, fused pools,
both mat modes for K = 1, 2, 4 subarrays), the committed models end to end on real images, the
gather tables and the programs the mapping (``sim.compile.compiler``'s docstring) prescribes, the
compile
errors, and the micro-op counts the mapping implies.
"""

import dataclasses
import os

import numpy as np
import pytest

from golden.datasets import DatasetError, load_dataset, load_digits
from golden.model import Layer, Model, bundled_model_path, infer_int, layer_forward_int, load_model
from rtl.config import preset
from rtl.isa import Instr, MoveOp, Opcode, Operand, WriteSrc, decode
from rtl.mtj_array import MacroCmd
from sim.compile import asm
from sim.compile.compiler import (
    CompileError, RunError, compile_model, host_array_load, load_compiled, program_profile,
    run_compiled,
)
from sim.hw.core_model import CoreModel
from sim.hw.isa_model import run_program
from sim.util import UserError

SEED = int(os.environ.get("SPINPIM_SEED", "20261123"))
N = 8
COLS = 16                       # columns per subarray of the small configurations


def cfg_of(name, dataflow, *, rows=128, columns=COLS, subarrays=1):
    """A small mat of preset ``name`` on ``dataflow``, post-processed by the PPU: the chunk
    formulas here (:func:`expected_ops`: one PPU REQUANT per patch, the stage's output in
    the data memory) are the PPU mapping's; nand_spin's default, seed 001's in-memory
    post-processing, is tested in tests/test_postproc_mixed.py and tests/test_nand_postproc.py."""
    return dataclasses.replace(preset(name).with_dataflow(dataflow), rows=rows,
                               columns=columns, subarrays_per_mat=subarrays, postproc="ppu")


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


def golden_trace(model, x):
    cur, trace = x[None], []
    for ly in model.layers:
        cur = layer_forward_int(ly, cur)
        trace.append(cur[0])
    return trace


def run_model_checked(model, config, x, seed, *, subarrays):
    """Compile for ``subarrays``, run ``x`` on a CoreModel, compare every stage with golden
    (the returned arrays and the data-memory words), the static profile with the run."""
    compiled = compile_model(model, config, subarrays=subarrays)
    core = CoreModel(config, subarrays=subarrays)
    res = run_compiled(compiled, x, core)
    trace = golden_trace(model, x)
    for stage, out in zip(compiled.stages, res.outputs, strict=True):
        want = trace[stage.golden_index]
        check_equal(f"stage {stage.name} (golden layer {stage.golden_index})", out, want, seed)
        assert out.dtype == (np.int64 if stage.output == "logits" else np.uint8)
    last = compiled.stages[-1]
    words = [core.read_dmem(last.out_base + i) for i in range(last.out_size)]
    assert words == (np.asarray(trace[last.golden_index]).ravel().astype(np.int64)
                     & 0xFFFFFFFF).tolist()
    saved = res.zero_skip.get("zs_cycles_saved", 0)   # zero skipping: data-dependent
    for stage, sr in zip(compiled.stages, res.stages, strict=True):
        assert saved or sr.micro_ops == stage.micro_ops
    assert res.host_words == x.size == res.stages[0].host_words
    assert res.cycles + saved == compiled.cycles
    return compiled, res, core


# ---- random single layers ---------------------------------------------------------------------

LAYERS = {
    # name: (kind, input C (or features), H, out_ch, conv kwargs, pool, output)
    "adder_conv_k3_pad1": ("adder_conv2d", 1, 7, 3, dict(k=3, padding=1), None, "requant"),
    "adder_conv_stride2_pad1_maxpool": ("adder_conv2d", 1, 11, 3,
                                        dict(k=3, stride=2, padding=1), "max", "requant"),
    "adder_conv_pad0_avgpool": ("adder_conv2d", 2, 9, 4, dict(k=3), "avg", "requant"),
    "adder_conv_tiled": ("adder_conv2d", 8, 5, 3, dict(k=3, padding=1), None, "requant"),
    "mul_conv_stride2_maxpool": ("mul_conv2d", 1, 12, 4, dict(k=3, stride=2), "max",
                                 "requant"),
    "mul_conv_k2_pad1_avgpool": ("mul_conv2d", 1, 8, 2, dict(k=2, padding=1), "avg",
                                 "requant"),
    "mul_conv_tiled": ("mul_conv2d", 3, 4, 3, dict(k=3, padding=1), None, "requant"),
    "adder_linear_tiled": ("adder_linear", 40, None, 7, None, None, "requant"),
    "adder_linear": ("adder_linear", 12, None, 5, None, None, "requant"),
    "mul_linear_logits_tiled": ("mul_linear", 40, None, 6, None, None, "logits"),
    "adder_linear_logits": ("adder_linear", 10, None, 4, None, None, "logits"),
}
ROUTES = (("nand_spin", "write_free"), ("jeit_stt", "abs_diff"), ("nand_spin", "abs_diff"),
          ("jeit_stt", "write_free"))
KS = (1, 2, 4)


def expected_ops(stage, k, fan, out_ch, patches, positions, config):
    """Micro-op counts of a stage from the mapping (``sim.compile.compiler``), by counting row
    sets."""
    seg = k > 1 and fan <= COLS
    tw = COLS if seg else COLS * k
    t = 1 if seg else -(-fan // tw)
    chunks = stage.chunks
    sets = [(-(-c.patches // k) if seg else c.patches) for c in chunks]
    dots = out_ch * t * sum(sets)
    g = 4 if stage.pool else 1
    if seg:
        clears = sum(c.patches // k * (fan < COLS) + (c.patches % k > 0) for c in chunks)
    else:
        clears = sum(sets) * (fan % tw > 0)
    addptrs = sum(out_ch for c in chunks if c.patches // g != positions)
    ops = {"move": patches * fan + clears + len(chunks) + addptrs,
           "requant": out_ch * patches * t if not seg else out_ch * patches}
    if config.zero_skip and stage.route == "abs_diff":
        ops["move"] += dots                     # a MOVE SKIPZ before each tile dot
    nand = config.technology == "nand_spin"
    planes = N * t * sum(sets)
    erases = sum(-(-N * t * s // config.mtjs_per_strip) for s in sets) if nand else 0
    if stage.route == "write_free":
        ops.update(min_step=N * dots, write_row_program=planes, erase=erases)
    elif stage.route == "abs_diff":
        ops.update(fs_step=2 * N * dots, shift_acc=N * dots, write_row_program=planes + N * dots,
                   erase=erases + (dots if nand else 0))
    else:
        ops.update(and_fu=N * N * dots, write_row_program=planes, erase=erases)
    return seg, t, ops


@pytest.mark.parametrize("k", KS)
@pytest.mark.parametrize("case", sorted(LAYERS))
def test_layer_equals_golden(case, k):
    kind, c, h, out_ch, conv, pool, output = LAYERS[case]
    ci = sorted(LAYERS).index(case)
    tech, dataflow = ROUTES[(ci + KS.index(k)) % len(ROUTES)]
    seed = SEED + 10 * ci + k
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (1, c, h, h) if conv else (1, c)).astype(np.uint8)
    x.flat[:3] = 0
    ly = make_layer(kind, rng, x, out_ch=out_ch, output=output, **(conv or {}))
    layers = [ly]
    if pool:
        layers.append(Layer(kind=f"{pool}_pool2d", params={"kernel": 2, "stride": 2}))
    model = single_layer_model(layers, x.shape[1:])
    config = cfg_of(tech, dataflow)
    compiled, res, core = run_model_checked(model, config, x[0], seed, subarrays=k)
    stage = compiled.stages[0]
    conv_out = layer_forward_int(ly, x)
    fan = c * conv["k"] ** 2 if conv else c
    if conv:
        ho = conv_out.shape[2]
        patches = (ho // 2) ** 2 * 4 if pool else ho * ho
        positions = (ho // 2) ** 2 if pool else ho * ho
    else:
        patches = positions = 1
    seg, tiles, want = expected_ops(stage, k, fan, out_ch, patches, positions, config)
    assert stage.mode == ("segmented" if seg else "wide") and stage.tiles == tiles
    assert sum(ch.patches for ch in stage.chunks) == patches
    ops = res.stages[0].micro_ops
    got = {name: ops["write_row"] + ops["program"] if name == "write_row_program" else ops[name]
           for name in want}
    assert got == want
    # the array holds what the last chunk gathered: the patches' planes in the row layout
    chunk = stage.chunks[-1]
    image = chunk.row_image(x[0])
    for i, r in enumerate(chunk.rows):
        assert (core.read_row(r) == image[i]).all(), (case, r)


def test_segmented_chunks_and_partial_groups_are_exercised():
    # The cases above include chunking into several runs and a last, partial group.
    seen = set()
    for case, k in (("adder_conv_k3_pad1", 2), ("adder_conv_stride2_pad1_maxpool", 2)):
        kind, c, h, out_ch, conv, pool, output = LAYERS[case]
        rng = np.random.default_rng(SEED)
        x = rng.integers(0, 256, (1, c, h, h)).astype(np.uint8)
        layers = [make_layer(kind, rng, x, out_ch=out_ch, **conv)]
        if pool:
            layers.append(Layer(kind=f"{pool}_pool2d", params={"kernel": 2, "stride": 2}))
        st = compile_model(single_layer_model(layers, x.shape[1:]),
                           cfg_of("jeit_stt", "write_free"), subarrays=k).stages[0]
        seen |= {("chunks", len(st.chunks) > 1), ("partial", st.chunks[-1].partial > 0)}
        # every chunk but the last: whole groups, a multiple of 4 patches when pooled
        assert all(ch.partial == 0 and ch.patches % (4 if pool else 1) == 0
                   for ch in st.chunks[:-1])
    assert seen >= {("chunks", True), ("partial", True)}


# ---- gather tables and programs, as the spec writes them ------------------------------------

def mv(mop, a=0, b=0, d=0):
    """A MOVE as decode gives it (ints: absolute operands)."""
    def o(v):
        return v if isinstance(v, Operand) else Operand(v)
    return Instr(Opcode.MOVE, imm=mop.value, a=o(a), b=o(b), d=o(d))


def tiny_conv(c_in, h, out_ch=2, **kw):
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, c_in, h, h)).astype(np.uint8)
    return single_layer_model([make_layer("adder_conv2d", rng, x, out_ch=out_ch, **kw)],
                              x.shape[1:]), x[0]


def test_gather_tables_of_a_convolution():
    model, _ = tiny_conv(2, 4, k=3, padding=1)
    compiled = compile_model(model, cfg_of("jeit_stt", "write_free", rows=64, columns=32),
                             subarrays=1)
    st = compiled.stages[0]
    assert (st.in_base, st.out_base, compiled.region) == (0, 32, 32)
    # term (c, ky, kx): offset c*16 + ky*4 + kx, kpos ky*3 + kx
    assert compiled.offsets == tuple((c * 16 + ky * 4 + kx, ky * 3 + kx)
                                     for c in range(2) for ky in range(3) for kx in range(3))
    assert compiled.offsets[9:12] == ((16, 0), (17, 1), (18, 2))
    # patch (y, x): base (y - 1)*4 + (x - 1) mod 2**16; mask: the window inside the image
    assert compiled.patches[0] == (65531, 0b110110000)      # (0, 0): kpos 4, 5, 7, 8
    assert compiled.patches[5] == (0, 0b111111111)          # (1, 1): all inside
    assert compiled.patches[15] == (10, 0b000011011)        # (3, 3): kpos 0, 1, 3, 4
    assert compiled.patches[3] == (65534, 0b011011000)      # (0, 3): kpos 3, 4, 6, 7
    assert compiled.offset_words[10] == 17 | 1 << 16
    assert compiled.patch_words[0] == 65531 | 0b110110000 << 16


def test_wide_chunk_program_is_the_spec():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 40)).astype(np.uint8)
    model = single_layer_model([make_layer("adder_linear", rng, x, out_ch=7)], (40,))
    compiled = compile_model(model, cfg_of("nand_spin", "write_free", rows=64), subarrays=1)
    st = compiled.stages[0]
    assert (st.mode, st.tiles, st.out_base, compiled.region) == ("wide", 3, 40, 40)
    # nand_spin's data_words 16384: 14-bit operand bases
    prog = [decode(w, compiled.config.isa_base_bits) for w in st.chunks[0].program]

    want = [Instr(Opcode.LOOP, count=3), Instr(Opcode.ERASE, a=Operand(16, 0, -8)),
            Instr(Opcode.ENDLOOP), Instr(Opcode.LOOP, count=1)]
    for t, cols in enumerate((16, 16, 8)):                  # 40 terms in tiles of 16
        if cols < 16:
            want.append(mv(MoveOp.CLEAR))
        want += [Instr(Opcode.LOOP, count=cols),
                 mv(MoveOp.GATHER, a=Operand(0, 0, 1), b=Operand(16 * t, 0, 1),
                    d=Operand(0, 1, 1)),
                 Instr(Opcode.ENDLOOP), Instr(Opcode.NOP)]
        want += [Instr(Opcode.PROGRAM, imm=WriteSrc.TBUF.value, a=Operand(8 * t + q, 0, 1),
                       b=Operand(q)) for q in range(N)]
    want += [Instr(Opcode.ENDLOOP), mv(MoveOp.SETPTR, a=Operand(40)),
             Instr(Opcode.LOOP, count=7), Instr(Opcode.LOOP, count=1)]
    assert prog[:len(want)] == want
    assert prog[-3:] == [Instr(Opcode.ENDLOOP), Instr(Opcode.ENDLOOP), Instr(Opcode.HALT)]
    assert sum(i.op is Opcode.REQUANT and i.d == Operand(0) for i in prog) == 3


def test_segmented_chunk_program_and_patch_order_are_the_spec():
    model, _ = tiny_conv(1, 4, k=3, padding=1)              # 16 patches, fan-in 9
    compiled = compile_model(model, cfg_of("jeit_stt", "write_free", rows=64), subarrays=4)
    st = compiled.stages[0]
    assert (st.mode, st.tile_width, len(st.chunks)) == ("segmented", 16, 1)
    ch = st.chunks[0]
    assert (ch.groups, ch.partial, ch.rows) == (4, 0, tuple(range(32)))
    # segment-major: entry s*4 + g is patch g*4 + s (patch (y, x) = y*4 + x)
    bases = [b for b, _ in compiled.patches]
    assert bases == [((p // 4 - 1) * 4 + p % 4 - 1) % 65536
                     for s in range(4) for p in (s, 4 + s, 8 + s, 12 + s)]
    prog = [decode(w) for w in ch.program]

    want = [Instr(Opcode.LOOP, count=4), mv(MoveOp.CLEAR)]
    for s in range(4):
        want += [Instr(Opcode.LOOP, count=9),
                 mv(MoveOp.GATHER, a=Operand(16 * s, 0, 1), b=Operand(0, 0, 1),
                    d=Operand(4 * s, 1, 1)), Instr(Opcode.ENDLOOP)]
    want += [Instr(Opcode.NOP)]
    want += [Instr(Opcode.WRITE_ROW, imm=WriteSrc.TBUF.value, a=Operand(4 * q, 0, 1),
                   b=Operand(q)) for q in range(N)]
    want += [Instr(Opcode.ENDLOOP), mv(MoveOp.SETPTR, a=Operand(32)),
             Instr(Opcode.LOOP, count=2), Instr(Opcode.LOOP, count=4)]
    assert prog[:len(want)] == want
    requants = [i for i in prog if i.op is Opcode.REQUANT]
    assert [i.d for i in requants] == [Operand(k) for k in (1, 2, 3, 4)]
    assert all(i.a == Operand(0, 1, 1) for i in requants)
    assert prog[-2:] == [Instr(Opcode.ENDLOOP), Instr(Opcode.HALT)]   # 16 outputs: no ADDPTR


def test_data_memory_regions_alternate():
    """The PPU's two alternating regions (seed 001's in-memory post-processing puts its raw
    sums in a third: tests/test_postproc_mixed.py)."""
    model = digits()
    compiled = compile_model(model, dataclasses.replace(preset("nand_spin"), postproc="ppu"))
    # digits: input 64 words, then 512 (8 x 8 x 8), 256, 64, 32, 10: R = 512
    assert compiled.region == 512 and compiled.subarrays == 16 and compiled.width == 2048
    assert [(s.in_base, s.out_base) for s in compiled.stages] == [
        (0, 512), (512, 0), (0, 512), (512, 0), (0, 512)]
    assert [s.mode for s in compiled.stages] == [
        "segmented", "segmented", "wide", "segmented", "segmented"]
    assert compiled.buffer.shape == (656, 2048)
    # segmented (layer 0, 64 slots): the weights repeat in every subarray's segment
    b = compiled.buffer[:64].reshape(64, 16, 128)
    assert (b == b[:, :1]).all() and b.any()
    w0 = digits().layers[0].params["weight"].reshape(8, 9).astype(np.int64) & 0xFF
    assert (b[3 * 8 + 5, 7, :9] == (w0[5] >> 3 & 1)).all()       # plane 3 of channel 5
    assert not b[:, :, 9:].any()


def test_read_output_and_input_words():
    model, x = tiny_conv(1, 4, k=3, padding=1)
    compiled = compile_model(model, cfg_of("jeit_stt", "write_free", rows=64), subarrays=1)
    st = compiled.stages[0]
    assert st.out_size == 32 and st.positions == 16
    y = st.read_output(list(range(32)))
    assert y.shape == (2, 4, 4) and y.dtype == np.uint8 and y[1, 0, 1] == 17
    with pytest.raises(ValueError, match=r"output word 3 \(address 35\) is 256"):
        st.read_output([0, 1, 2, 256] + [0] * 28)
    with pytest.raises(ValueError, match="32 output words expected, got 31"):
        st.read_output([0] * 31)
    logits = compile_model(digits(), preset("jeit_stt")).stages[-1]
    assert logits.read_output([0xFFFFFFFF, 5] + [1 << 31] * 8).tolist()[:3] == [-1, 5, -2**31]
    assert compiled.input_words(x).tolist() == x.ravel().tolist()
    with pytest.raises(ValueError, match=r"x_image must have 16 values \(shape \(1, 4, 4\)\), "
                       r"not 15"):
        compiled.input_words(x.ravel()[:15])
    with pytest.raises(ValueError, match=r"integers in \[0, 255\]"):
        compiled.input_words(np.full(16, 300))


def test_program_profile_and_gather_cycles_match_the_controller():
    model = digits()
    for dataflow in ("write_free", "abs_diff"):
        for k in (1, 4):
            compiled = compile_model(model, preset("nand_spin").with_dataflow(dataflow),
                                     subarrays=k)
            for stage in compiled.stages:
                chunk = stage.chunks[-1]
                cycles = []
                bits = compiled.config.isa_base_bits        # 14: nand_spin's data_words
                run = run_program(chunk.program, depth=compiled.imem_depth,
                                  issue_cycles=cycles, base_bits=bits)
                assert not run.error
                total, counts = program_profile(chunk.program, compiled.config)
                assert total == chunk.cycles == run.counters[0] < chunk.max_cycles
                assert list(counts.values()) == run.counters
                # the gather part ends where the compute part's SETPTR is issued (seed 001's
                # in-memory post-processing programs, nand_spin's default: no dot product)
                setptr = next((c for m, c in zip(run.trace, cycles, strict=True)
                               if m.op is Opcode.MOVE and m.imm == MoveOp.SETPTR.value), 0)
                assert chunk.gather_cycles == setptr
                assert setptr or stage.postproc == "in_memory"


def test_host_array_load():
    rows = [8, 9, 17]
    bits = np.random.default_rng(0).integers(0, 2, (3, 32)).astype(bool)
    cmds = host_array_load(cfg_of("nand_spin", "write_free"), rows, bits, subarrays=2)
    assert [(c, r) for c, r, _, _ in cmds] == [(MacroCmd.ERASE, 8), (MacroCmd.ERASE, 16),
                                               (MacroCmd.PROGRAM, 8), (MacroCmd.PROGRAM, 9),
                                               (MacroCmd.PROGRAM, 17)]
    assert all(m.all() and m.shape == (32,) for _, _, _, m in cmds)
    assert (cmds[4][2] == bits[2]).all()
    cmds = host_array_load(cfg_of("jeit_stt", "write_free"), rows, bits[:, :16])
    assert [(c, r) for c, r, _, _ in cmds] == [(MacroCmd.WRITE, r) for r in rows]


# ---- the committed models end to end ---------------------------------------------------------

def digits():
    return load_model(bundled_model_path("digits_addernet"))


def check_model_end_to_end(model, images, name, dataflow, k):
    config = preset(name).with_dataflow(dataflow)
    compiled = compile_model(model, config, subarrays=k)
    core = CoreModel(config, subarrays=k)
    for n_img, image in enumerate(images):
        trace = infer_int(model, image[None], trace=True)
        res = run_compiled(compiled, image, core, load_weights=n_img == 0)
        for stage, out in zip(compiled.stages, res.outputs, strict=True):
            want = trace[stage.golden_index][0].reshape(stage.out_shape)
            check_equal(f"image {n_img}: stage {stage.name} (golden layer "
                        f"{stage.golden_index})", out, want, SEED)
        assert (res.logits == trace[-1][0]).all()
        saved = res.zero_skip.get("zs_cycles_saved", 0)     # zero skipping
        assert res.cycles + saved == compiled.cycles and res.host_words == image.size
        # every data row is written once per chunk (+ the abs-diff write-backs); the stages
        # post-processed in memory (nand_spin's default, seed 001 sec. 4.2) write their sums
        # and results too: tests/test_nand_postproc.py counts those
        ppu = [i for i, s in enumerate(compiled.stages) if s.postproc == "ppu"]
        stages = [compiled.stages[i] for i in ppu]
        rows = sum(len(c.rows) for s in stages for c in s.chunks)
        dots = sum(s.out_channels * s.tiles * c.groups for s in stages
                   for c in s.chunks if s.route == "abs_diff")
        skipped = res.zero_skip.get("zs_tiles", 0)          # tile dots not computed
        assert sum(res.stages[i].write_backs for i in ppu) == rows + N * (dots - skipped)
        if name == "nand_spin":
            strips = sum(-(-len(c.rows) // 8) for s in stages for c in s.chunks)
            assert sum(res.stages[i].write_back_erases for i in ppu) == strips + dots
    return compiled


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("name, dataflow", [("nand_spin", "write_free"),
                                            ("jeit_stt", "abs_diff")])
def test_digits_model_end_to_end(name, dataflow, k):
    x, _ = load_digits("test")
    picks = np.random.default_rng(SEED).choice(len(x), 2, replace=False)
    check_model_end_to_end(digits(), x[picks], name, dataflow, k)


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("name, dataflow", [("nand_spin", "write_free"),
                                            ("jeit_stt", "abs_diff")])
def test_fashion_model_end_to_end(name, dataflow, k):
    try:
        x, _ = load_dataset("fashion_mnist", "test")
    except DatasetError as e:
        pytest.skip(f"Fashion-MNIST not installed: {e}")
    pick = int(np.random.default_rng(SEED + k).integers(len(x)))
    compiled = check_model_end_to_end(load_model(bundled_model_path("fashion_addernet")),
                                      x[pick:pick + 1], name, dataflow, k)
    # conv 1 and 2 fit a subarray (fan-in 9, 72 <= 128), conv 3 (144) and the linear (288)
    # do not
    want = ["segmented", "segmented", "wide", "wide"] if k > 1 else ["wide"] * 4
    assert [s.mode for s in compiled.stages] == want


def test_run_error_names_the_stage_and_chunk():
    compiled = compile_model(digits(), preset("jeit_stt"))
    core = CoreModel(preset("jeit_stt"), out_depth=600)      # the compiler assumed 4096
    x, _ = load_digits("test")
    with pytest.raises(RunError, match=r"^layer0 mul_conv2d chunk 0: the core reported an "
                       r"error: cycle \d+: the PPU's write pointer 600 is not below "
                       r"out_depth=600"):
        run_compiled(compiled, x[0], core)


# ---- compile errors --------------------------------------------------------------------------

def test_and_bitcount_cannot_map_adder_layers():
    config = dataclasses.replace(preset("nand_spin"), dataflow="and_bitcount")
    with pytest.raises(CompileError, match=r"^layer 1 \(adder_conv2d\): dataflow "
                       r"'and_bitcount' cannot map an adder layer .*'abs_diff' or "
                       r"'write_free'") as e:
        compile_model(digits(), config)
    assert isinstance(e.value, UserError)


def test_pool_kernel_3_is_a_stage_of_its_own():
    """A pool the PPU cannot fuse (kernel 3 stride 3) is no longer refused: it is a stage of its
    own (sim.compile.layer_stages, MAX4 passes) after the convolution's, and == golden."""
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 1, 9, 9)).astype(np.uint8)
    ly = make_layer("adder_conv2d", rng, x, out_ch=2)
    pool = Layer(kind="max_pool2d", params={"kernel": 3, "stride": 3})
    model = single_layer_model([ly, pool], x.shape[1:])
    compiled, _, _ = run_model_checked(model, cfg_of("jeit_stt", "write_free"), x[0], SEED,
                                       subarrays=1)
    assert [(st.kind, st.pool) for st in compiled.stages] == [("adder_conv2d", None),
                                                              ("max_pool2d", None)]


@pytest.mark.parametrize("k, need, conv3", [(16, 656, 128), (1, 784, 256)])
def test_model_too_big_for_the_buffer(k, need, conv3):
    # 8 planes x output channels x tiles: one tile each with a 2048-column mat; conv 3's
    # fan-in 144 takes two tiles of 128 columns
    with pytest.raises(CompileError, match=rf"weights need {need} weight-buffer slots .*layer 0 "
                       rf"\(mul_conv2d\) 64, layer 1 \(adder_conv2d\) 128, layer 3 "
                       rf"\(adder_conv2d\) {conv3}, layer 6 \(adder_linear\) 256, layer 7 "
                       rf"\(mul_linear\) 80\), but buffer_slots is 512"):
        compile_model(digits(), preset("jeit_stt").with_dataflow("write_free"),
                      buffer_slots=512, subarrays=k)


def test_patch_that_does_not_fit_the_rows():
    model, _ = tiny_conv(8, 4, k=3)
    config = cfg_of("jeit_stt", "abs_diff", rows=64, columns=8)
    with pytest.raises(CompileError, match=r"^layer 0 \(adder_conv2d\): one patch needs 72 "
                       r"array rows \(9 tiles x 8 planes\) \+ 8 abs-diff scratch rows, but the "
                       r"array has rows=64"):
        compile_model(model, config, subarrays=1)


def test_program_longer_than_imem():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 200)).astype(np.uint8)
    model = single_layer_model([make_layer("mul_linear", rng, x, out_ch=3, output="logits")],
                               (200,))
    # gather: LOOP P + 25 tiles x (LOOP, GATHER, ENDLOOP, NOP, 8 writes) + ENDLOOP = 302;
    # compute: SETPTR, LOOP O, LOOP P, 25 x (64 AND_FU + REQUANT), ENDLOOP, ENDLOOP, HALT = 1631
    with pytest.raises(CompileError, match=r"^layer 0 \(mul_linear\): the program of chunk 0 "
                       r"needs 1933 instruction words \(302 erase \+ gather, 1631 compute\), "
                       r"but program_words is 1024; raise program_words to at least 2048 "
                       r"\(--program-words\), or use more columns"):
        compile_model(model, cfg_of("jeit_stt", "write_free", rows=256, columns=8),
                      subarrays=1)


def test_gather_tables_too_small():
    with pytest.raises(CompileError, match=r"^layer 1 \(adder_conv2d\): its 72 offset-table "
                       r"entries \(from entry 9\) need 81, but offset_entries is 64; raise "
                       r"offset_entries to at least 128 \(--offset-entries\)$"):
        compile_model(digits(), preset("nand_spin"), offset_depth=64)
    # patches: 64 (conv 0, 8 x 8), 64 (conv 1, 4 x 4 pool windows), 16 (conv 3)
    with pytest.raises(CompileError, match=r"^layer 3 \(adder_conv2d\): its 16 patch-table "
                       r"entries \(from entry 128\) need 144, but patch_entries is 128; raise "
                       r"patch_entries to at least 256 \(--patch-entries\)$"):
        compile_model(digits(), preset("nand_spin"), patch_depth=128)


def test_data_memory_regions_too_large():
    with pytest.raises(CompileError, match=r"^the data memory needs two regions of 512 words "
                       r"\(the largest stage input or output, the layer 0 \(mul_conv2d\) "
                       r"output\), 1024 words, but data_words is 512; raise data_words to at "
                       r"least 1024 \(--data-words\)$"):
        compile_model(digits(), preset("nand_spin"), out_depth=512)


def test_kernel_area_beyond_the_patch_mask():
    model, _ = tiny_conv(1, 7, k=6)
    with pytest.raises(CompileError, match=r"^layer 0 \(adder_conv2d\): the kernel area 6x6 = "
                       r"36 exceeds the patch mask's 32 bits; raise patch_mask_bits to at least "
                       r"64 \(--patch-mask-bits\)$"):
        compile_model(model, cfg_of("jeit_stt", "write_free", columns=64), subarrays=1)


def test_compile_arguments():
    with pytest.raises(ValueError, match="subarrays must be a positive int, not 0"):
        compile_model(digits(), preset("nand_spin"), subarrays=0)
    with pytest.raises(TypeError, match="model must be a golden.model.Model"):
        compile_model("digits", preset("nand_spin"))
    with pytest.raises(CompileError, match="no compute layer"):
        compile_model(single_layer_model([Layer(kind="flatten")], (4,)), preset("nand_spin"))


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
                   "requant", "and_fu", "move"}
    assert Opcode.MIN_STEP.name.lower() not in ops


def test_load_compiled_writes_the_mat_wide_buffer():
    compiled = compile_model(digits(), preset("nand_spin"), subarrays=2)
    core = CoreModel(preset("nand_spin"), subarrays=2)
    load_compiled(compiled, core)
    # 656 slots of weights (+ the in-memory post-processing's words: nand_spin's default)
    slots = compiled.buffer.shape[0]
    assert core.columns == compiled.width == 256 and compiled.buffer.shape[1] == 256
    assert slots >= 656
    assert all((core.read_buffer(s) == compiled.buffer[s]).all() for s in (0, 300, slots - 1))


def test_write_pointer_end_past_the_data_memory_is_sized_not_a_core_error():
    """A stage writing the upper data-memory region with chunks that start past output
    position 0 leaves the write pointer beyond its output after the last ADDPTR: at exactly
    two regions of data memory the core used to stop with an error; now the compiler names
    data_words, and the size propose_config gives runs == golden."""
    from sim.compile.compiler import propose_config
    from tests.layer_models import random_model
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (1, 1, 16, 16)).astype(np.uint8)
    model = random_model([("conv", "adder_conv2d", 8, 3, 1, 1), ("flatten",),
                          ("linear", "mul_linear", 2)], (1, 16, 16), rng, x)
    # the default data memory (4096 words; nand_spin's preset has 16384 of its own)
    base = dataclasses.replace(preset("nand_spin"), data_words=4096, offset_entries=4096,
                               program_words=2048)
    with pytest.raises(CompileError, match=r"write pointer ends at word 4\d\d\d .* raise "
                                           r"data_words to at least 8192"):
        compile_model(model, base, subarrays=1)
    config = propose_config(model, base, subarrays=1)
    assert config.data_words == 8192
    compiled = compile_model(model, config, subarrays=1)
    r = run_compiled(compiled, x[0], CoreModel(config, subarrays=1))
    assert np.array_equal(r.logits, infer_int(model, x)[0]), (r.logits, infer_int(model, x))
