"""The bit-wise convolver (route ``dima_bitwise``, seed 002 sec. 3.3 eq. 5) on the cycle model:
random multi-bit multiply layers (an inception-like convolution, an MLP) == golden on mats of
1 and 2 subarrays; per stage, n^2 AND2 senses per tile dot and no AND_FU; its array writes are
the activation planes of the gather plus n weight planes per tile, output channel and chunk;
against ``and_bitcount`` on the same layers: the same outputs, the cycles longer by exactly
those weight writes. The same layers run on the RTL core in
``cocotb_tests/test_core_dimamap.py``.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

from cocotb_tests.test_core_dimamap import SMALL, bitwise_cases, small_config
from sim.compile.compiler import compile_model
from tests.test_dima_map import _run as run_every_stage

SEED = 20261130


def _config(k, routes=None):
    cfg = dataclasses.replace(small_config(), subarrays_per_mat=k)
    return cfg if routes is None else dataclasses.replace(cfg, routes=routes)


def _run(model, config, x):
    """Compile and run every image on the cycle model, every stage == golden
    (``tests.test_dima_map._run``); returns the compiled model and the counters of the last
    image."""
    compiled, res = run_every_stage(model, config, x)
    return compiled, res.counters


def _resident(compiled):
    """Names of the stages whose weights the load programs write (resident weight rows)."""
    return {run.stage for run in compiled.load_programs}


def _expected_ops(st, resident=False):
    """Tile dots, activation-plane writes and weight-plane writes of a stage, counted from
    its shape and chunks (the compiler's docstring layout), not from its programs; a
    ``resident`` stage writes no weight plane per image."""
    n, dots, act = st.n, 0, 0
    for ch in st.chunks:
        if st.mode == "wide":
            dots += ch.patches * st.tiles
            act += n * ch.patches * st.tiles
        else:
            dots += ch.groups
            act += n * ch.groups
    return (st.out_channels * dots, act,
            0 if resident else n * st.tiles * st.out_channels * len(st.chunks))


@pytest.mark.parametrize("k", [1, 2])
def test_bitwise_layers_equal_golden_and_count_their_ops(k):
    rng = np.random.default_rng(SEED + k)
    for name, model, x in bitwise_cases(rng, 2):
        compiled, _ = _run(model, _config(k), x)
        assert {st.route for st in compiled.stages} == {"dima_bitwise"}, name
        res = _resident(compiled)
        for st in compiled.stages:
            ops = {key: sum(c.micro_ops[key] for c in st.chunks) for key in st.chunks[0].micro_ops}
            dots, act, wts = _expected_ops(st, st.name in res)
            where = f"{name} x{k} {st.name} ({st.mode}, T={st.tiles})"
            assert ops["and2"] == st.n ** 2 * dots, where
            assert ops["and_fu"] == 0, where
            assert ops["write_row"] == act + wts, where
            rows = 0 if st.name in res else st.tiles * st.n
            assert len(st.scratch_rows) == rows == st.data_row0, where


def test_against_and_bitcount_same_outputs_cycles_plus_weight_writes():
    """Both routes on the same layers: == golden each; dima_bitwise issues AND2 where
    and_bitcount issues AND_FU, one for one, and adds the weight-plane writes (one cycle
    each at dima_sot's stall table)."""
    rng = np.random.default_rng(SEED)
    compared = 0
    for name, model, x in bitwise_cases(rng, 1):
        for k in (1, 2):
            bw, cb = _run(model, _config(k), x)
            ab, ca = _run(model, _config(k, ("abs_diff", "and_bitcount", "dima_binconv")), x)
            assert {st.route for st in ab.stages} == {"and_bitcount"}
            res = _resident(bw)
            wts = sum(_expected_ops(st, st.name in res)[2] for st in bw.stages)
            assert cb["and2"] == ca["and_fu"] and cb["and_fu"] == ca["and2"] == 0, name
            assert cb["write_row"] == ca["write_row"] + wts, name
            same = [[(c.patch_start, c.patches) for c in st.chunks] for st in bw.stages] == \
                [[(c.patch_start, c.patches) for c in st.chunks] for st in ab.stages]
            if same:        # the weight rows cost no chunk (else more chunks, more gathers)
                compared += 1
                assert cb["cycles"] == ca["cycles"] + wts, (name, k)
    assert compared >= 2


# ---- resident weight rows (written once per model load) -------------------------------------

def _per_channel(fn, *args):
    """``fn(*args)`` with residency off (every stage rewrites its weights per channel)."""
    from sim.routes import dima_bitwise
    token = dima_bitwise.RESIDENT.set(False)
    try:
        return fn(*args)
    finally:
        dima_bitwise.RESIDENT.reset(token)


def test_resident_weights_written_once_reused_across_images():
    """Where the 128-row array has spare rows the weight planes are written by the load
    programs (T*n*O WRITE_ROWs per resident stage, none per image) into rows no image's
    program writes: two images == golden each (the second one reads the rows the load wrote
    before the first), the same outputs as the per-channel writes, and per image exactly
    those writes and cycles fewer (its chunks the same) or more chunks but fewer writes."""
    from rtl.isa import Opcode, decode
    rng = np.random.default_rng(SEED + 7)
    resident_stages = 0
    for name, model, x in bitwise_cases(rng, 2):
        rc, res_r = run_every_stage(model, _config(1), x)
        pc, res_p = _per_channel(run_every_stage, model, _config(1), x)
        assert pc.load_programs == ()
        names = _resident(rc)
        resident_stages += len(names)
        load_writes = 0
        for run in rc.load_programs:
            st = next(s for s in rc.stages if s.name == run.stage)
            assert run.micro_ops["write_row"] == st.tiles * st.n * st.out_channels, name
            assert run.micro_ops["and2"] == 0
            load_writes += run.micro_ops["write_row"]
            # every data row of every stage stays below the resident rows
            for s in rc.stages:
                assert all(r < rc.config.rows - load_writes or s.dima is not None
                           for c in s.chunks for r in c.rows), (name, s.name)
        saved = sum(_expected_ops(s)[2] for s in pc.stages if s.name in names)
        assert res_p.counters["write_row"] - res_r.counters["write_row"] == saved, name
        assert all(np.array_equal(a, b) for a, b in zip(res_r.outputs, res_p.outputs,
                                                        strict=True)), name
        same = [len(s.chunks) for s in rc.stages] == [len(s.chunks) for s in pc.stages]
        if same:
            assert res_p.counters["cycles"] - res_r.counters["cycles"] == saved, name
        # no image program writes a row from the buffer (only the load programs do)
        for s in rc.stages:
            if s.name in names:
                assert not any(decode(w).op is Opcode.WRITE_ROW and decode(w).imm == 0
                               for c in s.chunks for w in c.program), (name, s.name)
    assert resident_stages >= 3


def test_no_spare_rows_no_residency_digits_addnet():
    """digits_addnet on dima_sot: the pointwise layers' lanes take 221 of the 256 rows, and
    each bit-wise layer needs more than the 35 left (16, 64 and 10 channels x 8 planes), so
    the programs are those of the per-channel writes and there is no load program."""
    from golden.model import bundled_model_path, load_model
    from rtl.config import preset
    from sim.compile.compiler import propose_config
    model = load_model(bundled_model_path("digits_addnet"))
    cfg = propose_config(model, preset("dima_sot"))
    a = compile_model(model, cfg)
    b = _per_channel(compile_model, model, cfg)
    assert a.load_programs == ()
    assert [[c.program for c in s.chunks] for s in a.stages] == \
        [[c.program for c in s.chunks] for s in b.stages]


def test_small_config_is_the_dima_sot_preset():
    cfg = small_config()
    assert (cfg.rows, cfg.columns) == (SMALL["rows"], SMALL["columns"])
    assert cfg.routes.index("dima_bitwise") < cfg.routes.index("and_bitcount")


# ---- the class A : class B split (seed 002 sec. 3.2, 4.4.2) ---------------------------------

@pytest.mark.parametrize("split, k, want", [
    ((7, 2), 1, (1, 1)), ((7, 2), 2, (1, 1)), ((7, 2), 4, (3, 1)), ((7, 2), 9, (7, 2)),
    ((7, 2), 18, (14, 4)), ((1, 1), 4, (2, 2)), ((1, 0), 4, (4, 0)), ((0, 3), 2, (0, 2)),
    ((0, 3), 1, (0, 1)), (None, 4, None)])
def test_class_subarrays(split, k, want):
    from sim.compile.dima_map import class_subarrays
    assert class_subarrays(dataclasses.replace(small_config(), class_split=split), k) == want


def test_the_split_puts_each_layer_kind_on_its_class():
    """On the 2-subarray mat with 7:2: the binarized layers on subarray 1 (their REQUANTs read
    accumulator 2), the multi-bit layers on subarray 0 (REQUANT d = 1 or the sum d = 0)."""
    from rtl.isa import Opcode, decode
    from cocotb_tests.test_core_dimamap import bin_cases
    rng = np.random.default_rng(SEED)
    name, model, x = bin_cases(rng, 1)[1]
    compiled, _ = _run(model, _config(2), x)
    for st in compiled.stages:
        ds = {decode(w).d.base for c in st.chunks for w in c.program
              if decode(w).op == Opcode.REQUANT}
        if st.route == "dima_binconv":
            assert st.subarrays == 1 and st.class_offset == 1 and ds == {2}, st.name
        else:
            assert st.route == "dima_bitwise" and st.subarrays == 1 and ds <= {0, 1}, st.name
    # without the split both use the whole mat
    plain, _ = _run(model, dataclasses.replace(_config(2), class_split=None), x)
    assert {st.subarrays for st in plain.stages} == {2}


@pytest.mark.parametrize("split, cls, kind", [((1, 0), "B", "mul_linear"),
                                              ((0, 1), "A", "bin_gconv2d")])
def test_a_split_that_leaves_a_layer_kind_no_subarray_is_refused(split, cls, kind):
    from cocotb_tests.test_core_dimamap import bin_cases
    from sim.compile.compiler import CompileError
    rng = np.random.default_rng(SEED)
    _, model, _ = bin_cases(rng, 1)[0]
    with pytest.raises(CompileError, match=rf"^layer \d \({kind}\): class_split="
                       rf"{re.escape(str(split))} "
                       rf"leaves class {cls} .* no subarray of the mat of 2; allowed: a "
                       rf"class_split \(a, b\) whose class-{cls} part is > 0"):
        compile_model(model, dataclasses.replace(_config(2), class_split=split))


@pytest.mark.parametrize("value", [(0, 0), (1,), "7:2", (True, 1), (-1, 2), (7, 2.0)])
def test_class_split_validation(value):
    with pytest.raises(ValueError, match=r"^class_split must be None or two ints \(class A, "
                       rf"class B\) in \[0, 1024\], not both 0 .*, not {re.escape(repr(value))}$"):
        dataclasses.replace(small_config(), class_split=value)
