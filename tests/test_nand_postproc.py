"""In-memory post-processing of seed 001 sec. 4.2 (``sim.compile.nand_postproc``) on the cycle
model:
requantization (eq. 2 / eq. 3 folded), ReLU from the MSB, saturation and max pooling of sums
already in the array, against ``golden.layers.requantize`` (today's PPU arithmetic, the
independent reference) and ``golden.pim.inmem_requant`` (the seed's, integer ==); the cycle
formula, the array writes, and the bundled network's own requantization parameters. The RTL
core runs the same programs in ``cocotb_tests/test_core_bitcount.py``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from golden.layers import conv_acc_bound, requantize
from golden.pim import inmem_requant, inmem_requant_bits
from rtl.config import preset
from rtl.mtj_array import MacroCmd
from sim.compile import asm
from sim.hw.core_model import CoreModel, unpack_row
from sim.compile.nand_postproc import common_shift, requant_cycles, requant_program, requant_words
from sim.routes.nand_inmem import max_pool_program

SEED = 20261130
#: Rows of the test mat (256-row subarrays, as the nand_spin preset): sums in strips 0 .. 3
#: (up to 32 bits), the all-ones row in strip 4, t in strips 5 .. 9, output groups in 10 ..
#: 13, the pooling's Tag, Result and ping-pong groups in 14 .. 17.
X0, ONES, T0, YS, TAG, RESULT, GROUPS = 0, 32, 40, (80, 88, 96, 104), 112, 120, (128, 136)
#: Buffer slots: o, nn, ov, xs; then the scale words, then the bias words.
SLOTS = (0, 1, 2, 3)
M0 = 4


def cfg_nand():
    cfg = preset("nand_spin")           # (the preset has the route: issue 14)
    return dataclasses.replace(cfg, rows=256, columns=16, subarrays_per_mat=2, mats=1)


def cfg_stt():
    cfg = preset("jeit_stt")
    return dataclasses.replace(cfg, rows=256, columns=16, subarrays_per_mat=2, mats=1,
                               routes=cfg.routes + ("nand_inmem",))


def write_rows(model, config, row0, values, bits, width):
    """Host writes of ``bits`` two's complement rows of ``values`` (one per column)."""
    v = np.asarray(values, np.int64) % (1 << bits)
    if config.technology == "nand_spin":
        m = config.mtjs_per_strip
        for s in sorted({(row0 + b) // m for b in range(bits)}):
            model.array_command(MacroCmd.ERASE, s * m)
        for b in range(bits):
            model.array_command(MacroCmd.PROGRAM, row0 + b, ((v >> b) & 1).astype(bool))
    else:
        for b in range(bits):
            model.array_command(MacroCmd.WRITE, row0 + b, ((v >> b) & 1).astype(bool))


def column_values(model, row0, bits, width):
    return sum(unpack_row(model._cells[row0 + b], width).astype(np.int64) << b
               for b in range(bits))


def load_words(model, mw, cw, m0=M0):
    for j, w in enumerate(mw):
        model.write_buffer(m0 + j, w)
    for k, w in enumerate(cw):
        model.write_buffer(m0 + len(mw) + k, w)


def run_requant(model, config, x, mult, bias, shift, x_bits, p_bits, y0, width):
    """Sums x into rows X0 .., the words into the buffer, the program run; returns the run."""
    write_rows(model, config, X0, x, x_bits, width)
    mw, cw = requant_words(mult, bias, shift, p_bits, width)
    load_words(model, mw, cw)
    body = requant_program(config, x0=X0, x_bits=x_bits, ones=ONES, m0=M0, m_bits=len(mw),
                           c0=M0 + len(mw), p_bits=p_bits, shift=shift, t0=T0, y0=y0,
                           slots=SLOTS)
    run = model.run(asm.assemble(body + [asm.halt()], base_bits=config.isa_base_bits))
    assert not run.error, run.reason
    return run, len(mw)


def lanes(rng, width, channels, acc_bound):
    """Per lane: a channel (lanes of several channels share the row) and a sum, corners
    included (+-acc_bound, 0)."""
    ch = rng.integers(0, channels, width)
    x = rng.integers(-acc_bound, acc_bound + 1, width)
    x[:3] = (-acc_bound, acc_bound, 0)
    return ch, x


def check(what, got, want, where):
    for j, (g, w) in enumerate(zip(got, want, strict=True)):
        assert int(g) == int(w), (f"in-memory {what}: lane {j}: model {int(g)} != golden "
                                  f"{int(w)} (seed 001 sec. 4.2) {where}")


def test_golden_inmem_requant_equals_requantize_at_its_width():
    """The seed's arithmetic at ``inmem_requant_bits`` rows == the PPU's; one row less wraps
    for some channel (so the width is the difference golden states)."""
    rng = np.random.default_rng(SEED)
    o, bound = 6, 4000
    mult = rng.integers(-(1 << 12), 1 << 12, o).astype(np.int32)
    bias = rng.integers(-(1 << 20), 1 << 20, o).astype(np.int64)
    shift = rng.integers(0, 14, o).astype(np.int32)
    acc = rng.integers(-bound, bound + 1, (50, o)).astype(np.int64)
    acc[0], acc[1] = -bound, bound
    want = requantize(acc, mult, bias, shift)
    p = inmem_requant_bits(bound, mult, bias, shift)
    got = inmem_requant(acc, mult, bias, shift, x_bits=(2 * bound).bit_length(), p_bits=p)
    assert np.array_equal(got, want)
    # exhaustive x for one channel at p - 1: the wrap shows
    m, b, s = int(np.abs(mult).max()), int(np.abs(bias).max()), 0
    xs = np.arange(-bound, bound + 1)
    p = inmem_requant_bits(bound, [m], [b], [s])
    full = requantize(xs[:, None], np.array([m], np.int32), np.array([b], np.int64),
                      np.array([s], np.int32))[:, 0]
    assert np.array_equal(inmem_requant(xs, m, b, s, x_bits=14, p_bits=p), full)
    assert not np.array_equal(inmem_requant(xs, m, b, s, x_bits=14, p_bits=p - 1), full)


def test_golden_inmem_requant_refuses_bad_input():
    with pytest.raises(ValueError, match=r"^x must fit 4 signed bits \[-8, 7\]"):
        inmem_requant(np.array([8]), 1, 0, 0, x_bits=4, p_bits=10)
    with pytest.raises(ValueError, match=r"^shift must be in \[0, 9\]"):
        inmem_requant(np.array([1]), 1, 0, 10, x_bits=4, p_bits=10)
    with pytest.raises(ValueError, match=r"^x_bits must be <= p_bits=4, not 5$"):
        inmem_requant(np.array([1]), 1, 0, 0, x_bits=5, p_bits=4, out_bits=2)


def test_common_shift_is_exact():
    rng = np.random.default_rng(SEED + 1)
    o = 5
    mult = rng.integers(-(1 << 10), 1 << 10, o).astype(np.int32)
    bias = rng.integers(-(1 << 14), 1 << 14, o).astype(np.int64)
    shift = np.array([0, 1, 5, 9, 3], np.int32)
    acc = rng.integers(-3000, 3001, (40, o)).astype(np.int64)
    m2, b2, s = common_shift(mult, bias, shift)
    assert s == 9
    want = requantize(acc, mult, bias, shift)
    got = inmem_requant(acc, np.array(m2, np.int64), np.array(b2, np.int64), s, x_bits=13,
                        p_bits=48)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("cfg_of", [cfg_nand, cfg_stt], ids=["nand_spin", "stt"])
@pytest.mark.parametrize("signs", ["positive", "mixed"])
def test_requant_program_equals_golden(cfg_of, signs):
    config = cfg_of()
    rng = np.random.default_rng(SEED + (signs == "mixed"))
    width = config.columns * config.subarrays_per_mat
    model = CoreModel(config)
    halt = model.run(asm.assemble([asm.halt()])).counters["cycles"]
    write_rows(model, config, ONES, np.full(width, 1), 1, width)
    channels, bound = 5, 2000
    lo = -(1 << 9) if signs == "mixed" else 1
    mult = rng.integers(lo, 1 << 9, channels).astype(np.int32)
    bias = rng.integers(-(1 << 16), 1 << 16, channels).astype(np.int64)
    shift = rng.integers(6, 12, channels).astype(np.int32)
    m2, b2, s = common_shift(mult, bias, shift)
    p = inmem_requant_bits(bound, m2, b2, [s] * channels)
    x_bits = (2 * bound).bit_length()
    for trial in range(3):
        ch, x = lanes(rng, width, channels, bound)
        run, m_bits = run_requant(model, config, x, [m2[c] for c in ch], [b2[c] for c in ch], s,
                                  x_bits, p, YS[0], width)
        where = f"({config.technology}, {signs}, trial {trial}, p_bits {p}, shift {s})"
        got = column_values(model, YS[0], 8, width)
        ppu = requantize(x[None, :].astype(np.int64), mult[ch], bias[ch], shift[ch])[0]
        check("requantization vs the PPU's", got, ppu, where)
        check("requantization vs golden.pim", got,
              inmem_requant(x, np.array(m2)[ch], np.array(b2)[ch], s, x_bits=x_bits, p_bits=p),
              where)
        assert run.counters["requant"] == 0
        writes = run.counters["program"] + run.counters["write_row"]
        assert writes == (p - s) + 8
        assert run.counters["bitcount"] > 0
        if not config.has_stalls:
            assert run.counters["cycles"] == halt + requant_cycles(
                config, p_bits=p, m_bits=m_bits, shift=s, t0=T0, y0=YS[0])
        # the sums are intact
        check("sums kept", (column_values(model, X0, x_bits, width) + bound) % (1 << x_bits),
              (x + bound) % (1 << x_bits), where)


@pytest.mark.parametrize("cfg_of", [cfg_nand, cfg_stt], ids=["nand_spin", "stt"])
def test_requant_then_max_pool_equals_ppu_max4(cfg_of):
    """Four sums per lane requantized into four output groups, then the maximum by iterated
    Fig. 9 comparison: the PPU's MAX4 (requantize each, then the maximum)."""
    config = cfg_of()
    rng = np.random.default_rng(SEED + 7)
    width = config.columns * config.subarrays_per_mat
    model = CoreModel(config)
    write_rows(model, config, ONES, np.full(width, 1), 1, width)
    mult = np.array([300, 77, 1, 511], np.int32)
    bias = np.array([-40000, 9000, 100, 0], np.int64)
    shift = np.array([8, 8, 0, 10], np.int32)
    m2, b2, s = common_shift(mult, bias, shift)
    bound = 1500
    p = inmem_requant_bits(bound, m2, b2, [s] * 4)
    x_bits = (2 * bound).bit_length()
    ch = np.arange(width) % 4
    xs = rng.integers(-bound, bound + 1, (4, width))
    for k in range(4):
        run_requant(model, config, xs[k], [m2[c] for c in ch], [b2[c] for c in ch], s, x_bits,
                    p, YS[k], width)
    body, best = max_pool_program(config, YS, 8, GROUPS, TAG, RESULT, SLOTS[0], SLOTS[1])
    run = model.run(asm.assemble(body + [asm.halt()], base_bits=config.isa_base_bits))
    assert not run.error, run.reason
    ppu = np.stack([requantize(xs[k][None, :].astype(np.int64), mult[ch], bias[ch],
                               shift[ch])[0] for k in range(4)])
    check("max pool of 4 requantized sums", column_values(model, best, 8, width),
          ppu.max(axis=0), f"({config.technology})")


def test_bundled_network_parameters(tmp_path):
    """Every requant layer of the bundled fashion_addernet, its own mult / bias / shift (one
    row of lanes over its channels), sums at the layer's accumulator bound: == the PPU."""
    from golden.model import bundled_model_path, load_model
    model_g = load_model(bundled_model_path("fashion_addernet"))
    config = cfg_nand()
    width = config.columns * config.subarrays_per_mat
    rng = np.random.default_rng(SEED + 3)
    done = 0
    for i, ly in enumerate(model_g.layers):
        if getattr(ly, "output", None) != "requant":
            continue
        w = ly.params["weight"]
        bound = conv_acc_bound(ly.acc_kind, int(np.prod(w.shape[1:])))
        mult, bias, shift = (ly.params[k] for k in ("rq_mult", "rq_bias", "rq_shift"))
        m2, b2, s = common_shift(mult, bias, shift)
        p = inmem_requant_bits(bound, m2, b2, [s] * len(m2))
        x_bits = (2 * bound).bit_length()
        cm = CoreModel(config)
        write_rows(cm, config, ONES, np.full(width, 1), 1, width)
        ch, x = lanes(rng, width, len(m2), bound)
        if x_bits > 32 or p - s > 40:
            pytest.fail(f"layer {i}: x_bits {x_bits} / t rows {p - s} do not fit the test rows")
        run_requant(cm, config, x, [m2[c] for c in ch], [b2[c] for c in ch], s, x_bits, p,
                    YS[0], width)
        ppu = requantize(x[None, :].astype(np.int64), mult[ch], bias[ch], shift[ch])[0]
        check(f"requantization of layer {i}", column_values(cm, YS[0], 8, width), ppu, "")
        done += 1
    assert done >= 2


@pytest.mark.parametrize("kw, match", [
    (dict(shift=20), r"^p_bits - shift = 4 rows of t must exceed out_bits=8"),
    (dict(t0=36), r"^t rows and ones row share strip\(s\) \[4\]"),
    (dict(y0=56), r"^t rows and out rows share strip\(s\) \[7\]"),
    (dict(slots=(0, 1, 2, 2)), r"^slots must be four distinct buffer slots"),
    (dict(c0=10), r"^buffer slots overlap"),
    (dict(m_bits=24, p_bits=24, shift=4), r"^25 counts per bit position reach 50, beyond the "
                                          r"5-bit"),
])
def test_builder_refuses_bad_input(kw, match):
    config = cfg_nand()
    if "m_bits" in kw:                                  # 16 rows: 5-bit counters
        config = dataclasses.replace(config, rows=16)
    args = dict(x0=X0, x_bits=16, ones=ONES, m0=M0, m_bits=10, c0=M0 + 10, p_bits=24,
                shift=4, t0=T0, y0=YS[0], slots=SLOTS)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        requant_program(config, **args)


def test_postproc_field_and_the_compilers_refusal():
    """``AcceleratorConfig.postproc``: ``ppu`` in every preset but nand_spin (``mixed``, seed
    001's way where built: tests/test_postproc_mixed.py), validated; ``in_memory`` needs
    the bit-counters' route, and the compiler refuses what it does not build yet (``quant``
    layers, standalone pools), naming the layer."""
    from golden.model import bundled_model_path, load_model
    from rtl.config import PRESETS
    from sim.compile.compiler import CompileError, compile_model
    from sim.compile.nand_postproc import with_postproc
    from sim.util import UserError
    for name in PRESETS:
        assert preset(name).postproc == ("mixed" if name == "nand_spin" else "ppu")
    cfg = dataclasses.replace(preset("nand_spin"), postproc="ppu",
                              routes=("write_free", "and_bitcount"))
    with pytest.raises(ValueError, match=r"^postproc must be one of ppu, in_memory, mixed, not "
                                         r"'cmos'$"):
        dataclasses.replace(cfg, postproc="cmos")
    with pytest.raises(ValueError, match=r"^postproc='in_memory' needs the route 'nand_inmem'"):
        dataclasses.replace(cfg, postproc="in_memory")
    with pytest.raises(UserError, match=r"^--postproc must be one of ppu, in_memory, mixed, "
                                        r"not 'x'$"):
        with_postproc(cfg, "x")
    im = with_postproc(cfg, "in_memory")
    assert im.postproc == "in_memory" and "nand_inmem" in im.routes
    model = load_model(bundled_model_path("digits_addnet"))
    with pytest.raises(CompileError, match=r"^layer 1 \(bin_gconv2d\): postproc 'in_memory' "
                                           r"\(seed 001 sec\. 4\.2\): in-memory post-processing "
                                           r"of this layer is not built yet \(built: requant "):
        compile_model(model, im, subarrays=1)
    from tests.layer_models import random_model
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 1, 6, 6), dtype=np.uint8)
    pooled = random_model([("conv", "adder_conv2d", 2, 3, 1, 1), ("pool", "max", 3, 1),
                           ("flatten",), ("linear", "mul_linear", 3)], (1, 6, 6), rng, x)
    with pytest.raises(CompileError, match=r"^layer 1 \(max_pool2d\): postproc 'in_memory' "
                                           r".*not built yet"):
        compile_model(pooled, im, subarrays=1)


def test_measure_model_costs_and_checks_every_output():
    """The per-layer measurement (``python -m sim.compile.nand_postproc``) on the nand_spin mat: the
    PPU's REQUANTs are one per computed value; the in-memory counters have no REQUANT, and
    their cycles are the formulas' (4 requantizations and a 3-round max pool per row of
    lanes, each program ended by a HALT); its outputs are checked against golden inside."""
    from golden.model import bundled_model_path, load_model
    from sim.compile.nand_postproc import layout, measure_model
    from sim.routes.nand_inmem import compare_cycles, select_cycles
    model = load_model(bundled_model_path("fashion_addernet"))
    config = preset("nand_spin")
    full = config                       # (the preset has the route nand_inmem: issue 14)
    halt = CoreModel(full).run(asm.assemble([asm.halt()])).counters["cycles"]
    rows = measure_model(model, config)
    assert [r["layer"] for r in rows] == [0, 2, 4]
    # the PPU side: the compiled network's REQUANTs of the same layers (sim.compile.compiler)
    from sim.compile.compiler import compile_model
    compiled = {st.layer_index: st.micro_ops["requant"]
                for st in compile_model(model, config).stages}
    for r in rows:
        assert r["ppu"]["requant"] == r["values"] == r["ppu"]["cycles"]
        assert r["ppu"]["requant"] == compiled[r["layer"]]
        im = r["inmem"]
        assert im["requant"] == 0 and im["bitcount"] > 0
        lay = layout(full, r["x_bits"], r["p_bits"], r["shift"], k=4)
        per_row = sum(requant_cycles(full, p_bits=r["p_bits"], m_bits=r["m_bits"],
                                     shift=r["shift"], t0=lay.t0, y0=y) + halt for y in lay.ys)
        per_row += sum(compare_cycles(full, 8) + select_cycles(full, 8, g)
                       for g in (lay.groups * 2)[:3]) + halt
        assert im["cycles"] == r["rows"] * per_row


def test_measure_refuses_a_layer_beyond_the_rows():
    """A subarray too short for a layer's 4 groups of sums and their rows: the error names the
    layer, the rows needed and the limit. Layer 0 (shift 17, p 28): sums 4 x 13 rows (0 .. 51),
    the ones row 56, t 64 .. 74, outputs 80 .. 111, Tag 112, Result 120, groups 128 and 136:
    144 rows."""
    from golden.model import bundled_model_path, load_model
    from sim.compile.nand_postproc import measure_model
    model = load_model(bundled_model_path("fashion_addernet"))
    config = dataclasses.replace(preset("nand_spin"), rows=128)
    with pytest.raises(ValueError, match=r"^layer 0 \(adder_conv2d\): the in-memory post-"
                                         r"processing of 4 group\(s\) of 13-bit sums \(28-bit "
                                         r"affine map\) needs 144 rows, beyond rows=128$"):
        measure_model(model, config)


@pytest.mark.parametrize("tech", ["nand_spin", "stt"])
@pytest.mark.parametrize("x_bits", [8, 17, 24])
def test_path_through_array(tech, x_bits):
    """Raw sums (``PpuMode.LOGIT`` words) from the data memory into the array by shifted
    GATHERs (``sums_in_program``), requantized there, the outputs back into the data memory
    (``results_out_program``), one run on the cycle model: == ``golden.layers.requantize``;
    cycles less the write stalls == the formulas; only the output words change."""
    from sim.compile.nand_postproc import (
        results_out_cycles, results_out_program, sums_in_cycles, sums_in_program,
    )
    config = cfg_nand() if tech == "nand_spin" else cfg_stt()
    width = config.columns * config.subarrays_per_mat
    rng = np.random.default_rng(SEED + x_bits)
    lo, hi = -(1 << (x_bits - 1)), (1 << (x_bits - 1)) - 1
    xs = rng.integers(lo, hi + 1, width)
    xs[:3] = (lo, hi, 0)
    mult = rng.integers(-300, 301, width)
    bias = rng.integers(-(1 << 20), 1 << 20, width)
    shift = x_bits - 1
    p = inmem_requant_bits(-lo, mult, bias, [shift] * width)
    mw, cw = requant_words(mult, bias, shift, p, width)
    cm = CoreModel(config)
    for j, word in enumerate(np.concatenate([mw, cw])):
        cm.write_buffer(M0 + j, word)
    write_rows(cm, config, ONES, np.ones(width, np.int64), 1, width)
    for j in range(width):
        cm.write_offset(j, j, 0)
        cm.write_dmem(100 + j, int(xs[j]) & 0xFFFF_FFFF)
    cm.write_patch(3, 100, 1)
    body = (sums_in_program(config, x0=X0, x_bits=x_bits, lanes=width, offset0=0, patch=3)
            + requant_program(config, x0=X0, x_bits=x_bits, ones=ONES, m0=M0, m_bits=len(mw),
                              c0=M0 + len(mw), p_bits=p, shift=shift, t0=T0, y0=YS[0],
                              slots=SLOTS)
            + results_out_program(config, y0=YS[0], lanes=width, addr=200))
    before = cm.out_memory
    run = cm.run(asm.assemble(body + [asm.halt()], base_bits=config.isa_base_bits))
    assert not run.error, run.reason
    halt = CoreModel(config).run(asm.assemble([asm.halt()])).counters["cycles"]
    # issue cycles: STT's 2-cycle writes add their holds (counter stalls) on top
    assert run.counters["cycles"] - run.counters["stalls"] == halt + (
        sums_in_cycles(config, x0=X0, x_bits=x_bits, lanes=width)
        + requant_cycles(config, p_bits=p, m_bits=len(mw), shift=shift, t0=T0, y0=YS[0])
        + results_out_cycles(config, lanes=width))
    got = [cm.read_dmem(200 + j) for j in range(width)]
    want = requantize(xs[None, :].astype(np.int64), mult.astype(np.int32), bias,
                      np.full(width, shift, np.int32))[0]
    bad = [j for j in range(width) if got[j] != int(want[j])]
    assert not bad, (f"{tech} x_bits {x_bits}: lane {bad[0]}: path output {got[bad[0]]}, "
                     f"golden {int(want[bad[0]])} (seed 001, seed {SEED + x_bits})")
    after = cm.out_memory
    assert [j for j in range(len(after)) if after[j] != before[j]] == [
        200 + j for j in range(width) if int(want[j]) != 0]


def test_path_bad_input():
    """The path's programs refuse what the core cannot do, naming the parameter."""
    from sim.compile.nand_postproc import results_out_program, sums_in_program
    config = cfg_nand()
    width = config.columns * config.subarrays_per_mat
    with pytest.raises(ValueError, match="x0=4 must start a strip"):
        sums_in_program(config, x0=4, x_bits=9, lanes=4, offset0=0, patch=0)
    with pytest.raises(ValueError, match="lanes must be an int in"):
        sums_in_program(config, x0=0, x_bits=9, lanes=width + 1, offset0=0, patch=0)
    with pytest.raises(ValueError, match="out_bits must be an int in"):
        results_out_program(config, y0=0, lanes=4, addr=0, out_bits=config.operand_bits + 1)
    with pytest.raises(ValueError, match="do not fit data_words"):
        results_out_program(config, y0=0, lanes=4, addr=config.data_words - 2)


# ---- the compiled network (sim.compile.compiler with postproc='in_memory')
# ---------------------------

def _run_both_ways(name, subarrays, images):
    """``sim.compile.nand_postproc.measure_compiled`` on ``images`` test images of a bundled model
    on
    ``subarrays`` of the nand_spin mat; golden is checked inside (every stage ==)."""
    from golden import datasets
    from golden.model import bundled_model_path, load_model
    from sim.compile.nand_postproc import _DATASETS, measure_compiled
    model = load_model(bundled_model_path(name))
    x, _ = datasets.load_dataset(_DATASETS[name], "test")
    return model, measure_compiled(model, preset("nand_spin"), x[:images],
                                   subarrays=subarrays)


@pytest.mark.parametrize("name, subarrays, images", [("digits_addernet", 1, 1),
                                                     ("digits_addernet", 16, 2),
                                                     ("fashion_addernet", 16, 1)])
def test_compiled_model_in_memory_equals_golden(name, subarrays, images):
    """A bundled network compiled with ``postproc='in_memory'`` runs on the cycle model with
    every stage == ``golden.model.infer_int`` (checked inside ``measure_compiled``; on one
    subarray of 128 lanes every layer takes several rows of lanes); its REQUANTs are all
    LOGITs (no PPU requantization: the raw sums and the logits), the array does BITCOUNTs,
    and the run's counters equal the compiler's static profile."""
    from rtl.isa import decode
    from sim.compile.compiler import compile_model
    from sim.hw.core_model import MODE_LOGIT, PPU_MODE_LSB
    model, res = _run_both_ways(name, subarrays, images)
    im, ppu = res["in_memory"], res["ppu"]
    assert im["counters"]["bitcount"] > 0 and ppu["counters"]["bitcount"] == 0
    # one REQUANT per computed dot product either way (the PPU's MAX4 takes 4 too)
    assert im["counters"]["requant"] == ppu["counters"]["requant"]
    assert im["counters"]["cycles"] > ppu["counters"]["cycles"]   # the path and the programs
    compiled = compile_model(model, im["config"], subarrays=subarrays)
    modes = set()
    for st in compiled.stages:
        for ch in st.chunks:
            for w in ch.program:
                ins = decode(int(w), im["config"].isa_base_bits)
                if ins.op.name == "REQUANT":
                    modes.add((ins.imm >> PPU_MODE_LSB) & 3)
    assert modes == {MODE_LOGIT}, modes
    static: dict = {}
    for st in compiled.stages:
        for k, v in st.micro_ops.items():
            static[k] = static.get(k, 0) + v * images
    assert {k: im["counters"][k] for k in static} == static


@pytest.mark.parametrize("make_cfg", [cfg_nand, cfg_stt])
def test_avg_pool_program_equals_golden(make_cfg):
    """The 2x2 average pool in memory (the addition of 4 values and the rounding constant) ==
    ``golden.layers.avg_pool2d`` on 2x2 windows (corners: every value 255, 0, and sums that
    round up and down); cycles == E + 4 + 5n (and the device holds)."""
    from golden.layers import avg_pool2d
    from sim.compile.nand_postproc import avg_pool_program
    config = make_cfg()
    width = config.columns * config.subarrays_per_mat
    rng = np.random.default_rng(SEED)
    v = rng.integers(0, 256, (4, width))
    v[:, 0], v[:, 1] = 255, 0
    v[:, 2] = (1, 0, 0, 0)          # sum 1: rounds down to 0
    v[:, 3] = (1, 1, 0, 0)          # sum 2: rounds half up to 1
    model = CoreModel(config, buffer_slots=64)
    for q in range(4):
        write_rows(model, config, YS[q], v[q], 8, width)
    write_rows(model, config, ONES, np.ones(width, np.int64), 1, width)
    out0 = GROUPS[0]
    run = model.run(asm.assemble(avg_pool_program(config, YS, 8, ONES, out0) + [asm.halt()],
                                 base_bits=config.isa_base_bits))
    assert not run.error, run.reason
    # golden's windows: lane g's 4 values as one 2x2 window
    want = avg_pool2d(v.T.reshape(width, 1, 2, 2).astype(np.uint8), 2)[:, 0, 0, 0]
    check("average pool", column_values(model, out0, 8, width), want, config.technology)
    erases = 1 if config.technology == "nand_spin" else 0
    halt = CoreModel(config).run(asm.assemble([asm.halt()])).counters["cycles"]
    # + the device holds of the stall table (STT writes take 2 cycles; none on nand_spin)
    assert run.counters["cycles"] == erases + 4 + 5 * 8 + halt + run.counters["stalls"]
    assert config.technology != "nand_spin" or run.counters["stalls"] == 0


def test_avg_pool_program_refuses_bad_input():
    from sim.compile.nand_postproc import avg_pool_program
    with pytest.raises(ValueError, match=r"^value_rows must name the 4 values of a 2x2 window, "
                                         r"not 3$"):
        avg_pool_program(cfg_nand(), YS[:3], 8, ONES, GROUPS[0])
    with pytest.raises(ValueError, match=r"^out rows and values share strip"):
        avg_pool_program(cfg_nand(), YS, 8, ONES, YS[3] + 4)


def test_looped_requant_equals_the_straight_line_program():
    """``requant_program(loops=True)`` (what the compiler emits): the same outputs as the
    straight-line program (== ``golden.layers.requantize``), fewer words, and the same cycles
    plus one per loop."""
    config = cfg_nand()
    width = config.columns * config.subarrays_per_mat
    rng = np.random.default_rng(SEED + 1)
    bound, x_bits = 18360, 16
    ch, x = lanes(rng, width, 4, bound)
    mult = rng.integers(1, 1 << 13, 4).astype(np.int32)
    bias = rng.integers(-(1 << 20), 1 << 20, 4).astype(np.int64)
    shift = np.full(4, 18, np.int32)
    p = inmem_requant_bits(bound, mult, bias, shift)
    want = requantize(x[None, :].astype(np.int64), mult[ch], bias[ch], shift[ch])[0]
    outs, progs, cycles = [], [], []
    for loops in (False, True):
        model = CoreModel(config, buffer_slots=128)
        write_rows(model, config, ONES, np.ones(width, np.int64), 1, width)
        write_rows(model, config, X0, x, x_bits, width)
        mw, cw = requant_words(mult[ch], bias[ch], 18, p, width)
        load_words(model, mw, cw)
        body = requant_program(config, x0=X0, x_bits=x_bits, ones=ONES, m0=M0, m_bits=len(mw),
                               c0=M0 + len(mw), p_bits=p, shift=18, t0=T0, y0=YS[0],
                               slots=SLOTS, loops=loops)
        run = model.run(asm.assemble(body + [asm.halt()], base_bits=config.isa_base_bits))
        assert not run.error, run.reason
        outs.append(column_values(model, YS[0], 8, width))
        progs.append(body)
        cycles.append(run.counters["cycles"])
    check("requantization (looped)", outs[1], want, f"p_bits {p}")
    check("requantization (straight)", outs[0], want, f"p_bits {p}")
    n_loops = sum(ins.op.name == "LOOP" for ins in progs[1])
    assert n_loops > 0 and len(progs[1]) < len(progs[0])
    assert cycles[1] == cycles[0] + n_loops


def test_compiler_refuses_what_does_not_fit_in_memory():
    """A mat too short for a layer's in-memory rows: a CompileError naming the layer, the rows
    it needs and the limit."""
    from golden.model import bundled_model_path, load_model
    from sim.compile.compiler import CompileError, compile_model
    from sim.compile.nand_postproc import with_postproc
    cfg = with_postproc(dataclasses.replace(preset("nand_spin"), rows=64), "in_memory")
    model = load_model(bundled_model_path("digits_addernet"))
    # layer 1, 72 terms of |x - w| <= 255: sums of bit_length(2 * 18360) = 16 bits (2 strips),
    # the ones row (1), 14 rows of t (2), 4 output groups (4), Tag, Result (2), ping-pong
    # groups (2): 13 strips of 8 rows (layer 0 needs 56 rows, which fit)
    with pytest.raises(CompileError, match=r"^layer 1 \(adder_conv2d\): postproc 'in_memory' "
                                           r"needs 104 array rows \(16-bit sums, 14 rows of the "
                                           r"affine map, .*\), but rows=64$"):
        compile_model(model, cfg, subarrays=1)


def test_compiled_cli(capsys):
    """``python -m sim.compile.nand_postproc --compiled N``: both modes' rows and the in-memory
    split
    (the dot-product chunks' cycles are the ppu mode's: a LOGIT replaces each REQUANT); a model
    without a known data set is one error line and exit status 2."""
    from sim.compile.nand_postproc import main
    assert main(["--model", "digits_addernet", "--compiled", "1"]) == 0
    out = capsys.readouterr().out
    rows = {ln.split("|")[1].strip(): ln.split("|") for ln in out.splitlines()
            if ln.startswith("| ppu") or ln.startswith("| in_memory")}
    assert set(rows) == {"ppu", "in_memory"}, out
    ppu_cycles = int(rows["ppu"][2])
    assert f"in_memory: {ppu_cycles} cycles of dot-product chunks" in out
    assert main(["--model", "digits_addnet", "--compiled", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --model: --compiled knows the data sets of fashion_addernet, "
                   "digits_addernet, not 'digits_addnet'"], err


# ---- seed 001's <W:I> widths and eq. 2 with in-memory post-processing (issue 14 items 1, 4)
# ---------------------------

@pytest.mark.parametrize("conv,fc,eq2", [((4, 4), (2, 3), None), ((1, 8), (8, 1), None),
                                         ((4, 8), (3, 0), 4), ((3, 4), (2, 0), 1),
                                         ((8, 8), (8, 0), 8)])
@pytest.mark.parametrize("subarrays", [1, 2])
def test_narrow_layers_in_memory_equal_golden(conv, fc, eq2, subarrays):
    """<W:I> multiply layers (top-bits reading) and eq.-2 layers (k-bit codes: the in-array
    requantization saturates at 2**k - 1 and the k output rows go to the top planes of the
    words) compiled with ``postproc='in_memory'`` and with the PPU: every stage == golden
    (checked inside ``measure_compiled``), W * I AND passes per dot either way."""
    from sim.compile.compiler import compile_model
    from sim.compile.nand_postproc import measure_compiled
    from tests.test_bits import bits_model
    rng = np.random.default_rng(SEED + 90 + subarrays + 7 * (eq2 or 0) + conv[0])
    x = rng.integers(0, 256, (2, 1, 6, 6)).astype(np.uint8)
    model = bits_model(rng, x[:1], conv=conv, fc=fc, eq2=eq2)
    res = measure_compiled(model, preset("nand_spin"), x, subarrays=subarrays)
    im = res["in_memory"]
    assert im["counters"]["bitcount"] > 0 and res["ppu"]["counters"]["bitcount"] == 0
    compiled = compile_model(model, im["config"], subarrays=subarrays)
    st = compiled.stages[0]
    assert (st.w_bits, st.in_bits, st.out_shift) == (conv[0], conv[1], 8 - (eq2 or 8))
    # the same mapping at <8:8> takes 64 AND passes per tile dot
    l0 = model.layers[0]
    full = dataclasses.replace(model, layers=(dataclasses.replace(
        l0, params={**l0.params, "w_bits": 8, "in_bits": 8}), *model.layers[1:]))
    st8 = compile_model(full, im["config"], subarrays=subarrays).stages[0]
    assert st.micro_ops["and_fu"] * 64 == conv[0] * conv[1] * st8.micro_ops["and_fu"] > 0


def test_results_out_msb_aligned_planes():
    """``plane0`` puts output row q into plane ``plane0 + q``; beyond the planes: refused."""
    from rtl.isa import MoveOp, Opcode
    from sim.compile.nand_postproc import results_out_program
    cfg = cfg_nand()
    body = results_out_program(cfg, y0=80, lanes=4, addr=0, out_bits=3, plane0=5)
    loads = [(i.a.base, i.d.base) for i in body
             if i.op == Opcode.MOVE and i.imm == MoveOp.LOADPLANE.value]
    assert loads == [(80, 5), (81, 6), (82, 7)]
    assert body[0].imm == MoveOp.CLEAR.value
    with pytest.raises(ValueError, match="plane0 must be an int in \\[0, 5\\]"):
        results_out_program(cfg, y0=80, lanes=4, addr=0, out_bits=3, plane0=6)
