"""Routes: the core and the cycle model generated from a configuration's routes, the compiler's
choice of route per layer, and the add-a-route walkthrough (``docs/add_route.rst``) followed
with its own example."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import rtl.routes as hw_routes
import sim.routes as sw_routes
from docs import route_example
from golden.model import Layer
from rtl.config import PRESETS, preset
from rtl.export import verilog_of
from rtl.isa import Instr, Opcode, Operand, WriteSrc
from rtl.routes import LANES, ROUTES
from sim.compile import asm
from sim.compile.compiler import CompileError, compile_model
from sim.hw.core_model import CoreModel
from tests.test_compiler import fit_requant, run_model_checked, single_layer_model

SEED = 20261130
#: The lanes as rtl.core names their instances in the Verilog.
LANE_MODULES = {"min": "min_lane", "abs_diff": "abs_lane", "fa_fs": "fa_lane",
                "bit_counter": "bit_counter", "fa_array": "fa_array"}


def tiny(name, **kw):
    """A small core of preset ``name``: fast to generate."""
    return dataclasses.replace(preset(name), rows=16, columns=8, subarrays_per_mat=1,
                               mats=1, **kw)


def core_modules(config) -> dict:
    """The core's submodules by instance name, with their port lists."""
    text = verilog_of("core", config)
    return {m.group(1): m.group(2) for m in
            re.finditer(r"^module \\?core\.(\w+) \(([^)]*)\)", text, re.M)}


@pytest.fixture
def toy_route():
    """Register the walkthrough's route; take it out of both registries afterwards."""
    saved = dict(hw_routes.ROUTES), dict(sw_routes.ROUTES)
    route = route_example.register()
    yield route
    for reg, old in zip((hw_routes.ROUTES, sw_routes.ROUTES), saved, strict=True):
        reg.clear()
        reg.update(old)


# ---- the core generated from its routes ------------------------------------------------------

@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_core_has_only_the_lanes_of_its_routes(name):
    cfg = tiny(name)
    want = {LANE_MODULES[lane] for r in cfg.routes for lane in ROUTES[r].lanes}
    mods = core_modules(cfg)
    assert set(mods) & set(LANE_MODULES.values()) == want
    assert {"ctrl", "ppu", "array", "reduce"} <= set(mods)
    # the reduction's second and third popcount (row_w, row_min) belong to write_free alone
    assert ("row_w" in mods["reduce"]) == ("write_free" in cfg.routes)


def test_core_with_every_route_has_every_lane():
    mods = core_modules(tiny("nand_spin", routes=tuple(ROUTES)))
    assert set(LANE_MODULES.values()) <= set(mods) and set(LANE_MODULES) == set(LANES)


def test_presets_list_their_routes():
    # seed 000: its FA array (jeit_fa, the default) and abs-diff write-back; NAND-SPIN and
    # IMAC's digital part: write-free
    assert preset("jeit_stt").routes == ("abs_diff", "and_bitcount", "jeit_fa")
    # NAND-SPIN also its per-column bit-counters (seed 001 sec. 4.2 post-processing, issue 14)
    assert preset("nand_spin").routes == ("write_free", "and_bitcount", "nand_inmem")
    assert "min" not in {lane for r in preset("jeit_stt").routes for lane in ROUTES[r].lanes}


# ---- the cycle model generated from its routes -----------------------------------------------

def run(core, instrs):
    return core.run(asm.assemble(list(instrs) + [asm.halt()]))


@pytest.mark.parametrize("name, missing, instr", [
    ("nand_spin", "abs_diff", asm.fs_step(a=0, b=0, imm=1)),
    ("jeit_stt", "write_free", asm.min_step(a=0, b=0, imm=7)),
])
def test_model_flags_micro_ops_of_missing_routes(name, missing, instr):
    core = CoreModel(tiny(name))
    res = run(core, [instr])
    assert res.error
    assert res.reason.endswith(f"is not implemented by the core (none of its routes "
                               f"{', '.join(preset(name).routes)} has it)")
    with_route = CoreModel(tiny(name).with_dataflow(missing))
    assert not run(with_route, [instr]).error


def test_model_abs_diff_source_without_abs_lanes_writes_the_buffer_word():
    core = CoreModel(tiny("imac_sot"))            # sot-like technology with write_row
    word = np.arange(8) % 3 == 0
    core.write_buffer(2, word)
    res = run(core, [asm.write_row(a=5, b=2, imm=WriteSrc.ABS_DIFF.value)])
    assert res.error and "imm=1 is not a WriteSrc of this core (BUFFER, TBUF)" in res.reason
    assert (core.read_row(5) == word).all()      # what rtl.core's data mux writes


# ---- the compiler's choice -------------------------------------------------------------------

def _ones_model(rng, *, n_in=24, n_mid=6, n_out=5):
    """linear (weights all +1, requant) -> linear (random int8, logits)."""
    x = rng.integers(0, 256, (n_in, 1, 1)).astype(np.uint8)
    from golden.model import layer_forward_int
    flat = x.reshape(1, -1)
    w1 = np.ones((n_mid, n_in), np.int8)
    probe = Layer(kind="mul_linear", output="logits",
                  params={"weight": w1, "bias": np.zeros(n_mid, np.int32)})
    m, b, s = fit_requant(layer_forward_int(probe, flat), rng)
    l1 = Layer(kind="mul_linear", output="requant",
               params={"weight": w1, "rq_mult": m, "rq_bias": b, "rq_shift": s})
    w2 = rng.integers(-128, 128, (n_out, n_mid)).astype(np.int8)
    l2 = Layer(kind="mul_linear", output="logits",
               params={"weight": w2, "bias": rng.integers(-999, 999, n_out).astype(np.int32)})
    return single_layer_model([Layer("flatten"), l1, l2], x.shape), x


def test_a_layer_no_route_maps_names_the_routes_and_presets_that_can():
    rng = np.random.default_rng(SEED)
    model, _ = _ones_model(rng)
    # (postproc ppu: nand_spin's default, mixed, needs the bit-counters' route, issue 14)
    cfg = dataclasses.replace(preset("nand_spin"), routes=("write_free",), postproc="ppu")
    with pytest.raises(CompileError, match=r"^layer 1 \(mul_linear\): no route of this "
                       r"configuration \(routes write_free\) maps a mul_linear layer; routes "
                       r"that do: and_bitcount, dima_bitwise \(presets that can: jeit_stt, "
                       r"nand_spin, dima_sot, imac_sot\)$"):
        compile_model(model, cfg)


# ---- the walkthrough, followed ---------------------------------------------------------------

@pytest.mark.parametrize("subarrays", [1, 2])
def test_walkthrough_route_computes_its_layers_equal_to_golden(toy_route, subarrays):
    rng = np.random.default_rng(SEED + subarrays)
    model, x = _ones_model(rng)
    cfg = dataclasses.replace(preset("nand_spin"), rows=64, columns=16, postproc="ppu",
                              routes=("write_free", route_example.NAME, "and_bitcount"))
    compiled, res, _ = run_model_checked(model, cfg, x, SEED, subarrays=subarrays)
    assert [s.route for s in compiled.stages] == [route_example.NAME, "and_bitcount"]
    ones = compiled.stages[0]
    assert ones.micro_ops["and_fu"] == 0 and ones.micro_ops["min_step"] == 0
    # n + 1 READs per tile dot, for every output channel and patch group
    dots = sum(ones.out_channels * ones.tiles * c.groups for c in ones.chunks)
    assert ones.micro_ops["read"] == (cfg.operand_bits + 1) * dots
    # without the route the same layer goes to and_bitcount, with the same result
    plain = dataclasses.replace(cfg, routes=("write_free", "and_bitcount"))
    compiled2, res2, _ = run_model_checked(model, plain, x, SEED, subarrays=subarrays)
    assert compiled2.stages[0].route == "and_bitcount"
    assert (res2.logits == res.logits).all()


def test_walkthrough_route_needs_no_lane_in_the_core(toy_route):
    cfg = tiny("jeit_stt", dataflow=route_example.NAME, routes=(route_example.NAME,),
               zero_skip=False)
    assert not set(core_modules(cfg)) & set(LANE_MODULES.values())
    assert Opcode.READ in hw_routes.opcodes_of(cfg.routes)
    assert Opcode.MIN_STEP not in hw_routes.opcodes_of(cfg.routes)


def test_walkthrough_touches_only_the_route_and_its_registration(toy_route):
    # the registries are the only shared state the route changed
    assert set(hw_routes.ROUTES) - {"abs_diff", "write_free", "and_bitcount",
                                    "dima_binconv", "nand_inmem", "jeit_fa",
                                    "dima_bitwise"} == {"ones_sum"}
    assert sw_routes.get_route("ones_sum") is toy_route
    body = toy_route.dot(type("S", (), {"n": 3})(), 0, lambda b: Operand(b), lambda b: 0, None)
    assert [i.op for i in body] == [Opcode.READ] * 4 and isinstance(body[0], Instr)


# ---- configuration ---------------------------------------------------------------------------

@pytest.mark.parametrize("kw, exc, match", [
    (dict(routes=("mac",)), ValueError,
     r"^routes must name known routes \(abs_diff, write_free, and_bitcount, "
     r"dima_binconv, nand_inmem, jeit_fa, dima_bitwise\), not 'mac'$"),
    (dict(routes=()), TypeError, r"^routes must be a non-empty tuple of route names"),
    (dict(routes="write_free"), TypeError, r"^routes must be a non-empty tuple"),
    (dict(routes=("write_free", "write_free")), ValueError, r"^routes must not repeat"),
    (dict(dataflow="abs_diff"), ValueError,
     r"^dataflow 'abs_diff' must be one of routes \('write_free', 'and_bitcount', "
     r"'nand_inmem'\) .*"
     r"with_dataflow\('abs_diff'\)$"),
])
def test_routes_validation(kw, exc, match):
    with pytest.raises(exc, match=match):
        dataclasses.replace(preset("nand_spin"), **kw)


def test_with_dataflow_adds_the_route_and_default_routes():
    cfg = preset("nand_spin").with_dataflow("abs_diff")
    assert cfg.dataflow == "abs_diff" and cfg.routes == ("write_free", "and_bitcount",
                                                         "nand_inmem", "abs_diff")
    assert preset("nand_spin").with_dataflow("write_free") == preset("nand_spin")
    fields = {k: v for k, v in preset("dima_sot").as_dict().items() if k != "routes"}
    assert type(preset("dima_sot"))(**fields).routes == ("abs_diff", "and_bitcount")
