"""``propose_config`` compiles for sizes only (issue 15: it dominated the compile time of the
reference networks): its proposal equals the one of compiling in full (the algorithm before,
``sim.compile.compiler._propose`` outside ``propose_config``), on every bundled model and on
random models that need raised sizes, tiled activations and streamed weights; the proposal
compiles and, for every field it raised, the next smaller allowed value does not. The fast
weight planes, zero-tile dots and remembered program profiles equal their definitions."""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from golden.model import load_model
from rtl.config import SIZE_FIELDS, preset
from sim.compile import compiler
from sim.compile.compiler import CompileError, compile_model, propose_config
from tests.layer_models import random_model
from tests.test_act_tile import CHAIN, STANDALONE
from tests.test_compiler import make_layer, single_layer_model
from tests.test_limits import big_input_model, fc_784_512_model, small_config

SEED = 20261201
MODELS = sorted((Path(__file__).resolve().parents[1] / "golden" / "models").glob("*.npz"))


def _full(model, config, **kw):
    """The proposal of full compiles (weight images and program profiles built)."""
    assert not compiler._SIZES_ONLY.get()
    kw.setdefault("subarrays", None)
    return compiler._propose(model, config, kw.pop("subarrays"), kw.pop("stream_weights", False),
                             kw.pop("tile_activations", False))


def _smaller(field, value):
    """The next smaller allowed value of a size field (``rtl.config.SIZE_FIELDS``)."""
    return value // 2 if SIZE_FIELDS[field][3] else value - 1


def _same_proposal(model, base, *, minimal=True, **kw):
    """propose_config == the full compiles' proposal (or the same refusal); the proposal
    compiles, and with ``minimal`` no raised field can be one step smaller."""
    try:
        want = _full(model, base, **kw)
    except CompileError as e:           # (a layer the preset's routes do not map, ...)
        with pytest.raises(CompileError, match=f"^{re.escape(str(e))}$"):
            propose_config(model, base, **kw)
        return
    got = propose_config(model, base, **kw)
    assert got == want
    compile_model(model, got, **kw)
    for f in SIZE_FIELDS if minimal else ():
        if getattr(got, f) > getattr(base, f):
            assert _short(model, dataclasses.replace(got, **{f: _smaller(f, getattr(got, f))}),
                          f, **kw), f


def _short(model, config, field, **kw) -> bool:
    """Whether ``config`` is too small in ``field``: a CompileError, or (``postproc='mixed'``,
    nand_spin's default, issue 14) a layer put on the PPU for want of it."""
    try:
        compiled = compile_model(model, config, **kw)
    except CompileError:
        return True
    return any(field in why for _, why in compiled.ppu_fallbacks)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.stem)
@pytest.mark.parametrize("name,mat", [("nand_spin", 1), ("jeit_stt", 2)])
def test_bundled_models_get_the_full_compiles_proposal(path, name, mat):
    base = dataclasses.replace(preset(name), data_words=64, buffer_slots=2,
                               offset_entries=2, patch_entries=2, requant_channels=1,
                               program_words=2, patch_mask_bits=8)
    _same_proposal(load_model(path), base, subarrays=mat)


def _random(spec, seed):
    rng = np.random.default_rng(seed)
    shape, layers = spec
    return random_model(layers, shape, rng,
                        rng.integers(0, 256, (1, *shape)).astype(np.uint8))


RANDOM = {"chain": lambda rng: _random(CHAIN, SEED),
          "standalone": lambda rng: _random(STANDALONE, SEED + 1),
          "big_input": lambda rng: big_input_model(rng)[0],
          "fc_784_512": lambda rng: fc_784_512_model(rng)[0]}


@pytest.mark.parametrize("case,flags", [
    ("chain", {}), ("big_input", {}), ("fc_784_512", {}),
    ("chain", {"tile_activations": True}),
    ("standalone", {"tile_activations": True, "stream_weights": True}),
    ("fc_784_512", {"stream_weights": True}),
    ("big_input", {"tile_activations": True, "stream_weights": True})],
    ids=lambda v: v if isinstance(v, str) else "+".join(v) or "sized")
@pytest.mark.parametrize("name", ["nand_spin", "jeit_stt"])
def test_random_models_get_the_full_compiles_proposal(case, flags, name):
    """Small mats and memories: raised sizes, tiled activations, streamed weights (a smaller
    data memory may be tiled and a smaller buffer streamed: minimality only without them)."""
    model = RANDOM[case](np.random.default_rng(SEED))
    # (store mode's units take at most 1/16 of the patch table: a small one makes many units)
    base = (small_config(name, data_words=512) if case == "standalone" else
            small_config(name, data_words=256, buffer_slots=64, patch_entries=64))
    _same_proposal(model, base, minimal=not flags, **flags)


def test_sizes_only_ends_with_the_proposal():
    """After ``propose_config`` (also one that raises), compiles build weight images and
    profiles again; the sizes-only compile builds programs of the same lengths and a zero
    buffer of the same shape."""
    rng = np.random.default_rng(SEED)
    model, _ = fc_784_512_model(rng)
    cfg = propose_config(model, preset("nand_spin"))
    before = compile_model(model, cfg)
    x = rng.integers(0, 256, (1, 1, 13, 13)).astype(np.uint8)
    too_big = single_layer_model([make_layer("adder_conv2d", rng, x, out_ch=1, k=12)],
                                 x.shape[1:])          # a 12x12 kernel: no patch mask holds it
    with pytest.raises(CompileError, match="no configuration holds that"):
        propose_config(too_big, small_config())
    assert not compiler._SIZES_ONLY.get()
    after = compile_model(model, cfg)
    assert after.buffer.any() and np.array_equal(after.buffer, before.buffer)
    assert after.cycles == before.cycles > 0
    token = compiler._SIZES_ONLY.set(True)
    try:
        sized = compile_model(model, cfg)
    finally:
        compiler._SIZES_ONLY.reset(token)
    assert not sized.buffer.any() and sized.buffer.shape == after.buffer.shape
    assert [len(c.program) for s in sized.stages for c in s.chunks] == \
        [len(c.program) for s in after.stages for c in s.chunks]


# ---- the helpers against their definitions ---------------------------------------------------

@pytest.mark.parametrize("dtype", [np.int8, np.uint8, np.int32, np.int64])
@pytest.mark.parametrize("shape,tiles,cols,n", [((5, 3, 3, 3), 1, 32, 8), ((7, 100), 4, 32, 8),
                                                ((3, 2, 5, 5), 2, 32, 4), ((4, 70), 3, 32, 8),
                                                ((1, 9), 1, 16, 8), ((6, 40), 2, 32, 16)])
def test_weight_planes_and_zero_tile_dots(dtype, shape, tiles, cols, n):
    rng = np.random.default_rng(SEED)
    lo = 0 if dtype is np.uint8 else -128
    w = rng.integers(lo, lo + 256, shape).astype(dtype)
    o = shape[0]
    flat = w.reshape(o, -1).astype(np.int64)
    planes = compiler._weight_planes(w, tiles, cols, n)
    assert planes.dtype == bool and planes.shape == (tiles * n * o, cols)
    dots = compiler._zero_tile_dots(w, tiles, cols, 64)
    assert dots.dtype == bool and dots.shape == (tiles * o, 64)
    for t in range(tiles):
        for c in range(o):
            terms = [int(v) for v in flat[c, t * cols:(t + 1) * cols]]
            terms += [0] * (cols - len(terms))
            for b in range(n):    # slot (t*n + b)*O + o: bit b of each term (two's complement)
                want = [(v % (1 << n)) >> b & 1 for v in terms]
                assert planes[(t * n + b) * o + c].tolist() == [bool(v) for v in want]
            total = sum(v % 256 for v in terms)
            assert dots[t * o + c].tolist() == [bool(total >> i & 1) for i in range(64)]


def test_program_profiles_are_remembered_by_what_they_read():
    model, _ = fc_784_512_model(np.random.default_rng(SEED))
    for name in ("nand_spin", "jeit_stt"):
        cfg = propose_config(model, preset(name))
        progs = [c.program for s in compile_model(model, cfg).stages for c in s.chunks]
        # another size of the same word format, and no stalls: the same words, other timing
        for other in (dataclasses.replace(cfg, program_words=cfg.program_words * 2),
                      dataclasses.replace(cfg, stall_table=tuple(
                          (op, 1) for op, _ in cfg.stall_table))):
            for p in progs:
                want = compiler._program_profile(p, other)
                got = compiler.program_profile(p, other)
                assert got == want
                got[1]["cycles"] = -1               # the caller's copy
                assert compiler.program_profile(p, other) == want
