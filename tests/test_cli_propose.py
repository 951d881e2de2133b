"""``python -m sim.cli run --propose``: the core's sizes from the model (``make sim
PRESET=dima_sot`` uses it instead of fixed sizes)."""

from __future__ import annotations

import dataclasses

import pytest

from golden.model import bundled_model_path, load_model
from rtl.config import SIZE_FIELDS, preset
from sim.cli import proposed_config
from sim.compile.compiler import CompileError, compile_model
from sim.util import UserError


def test_propose_sizes_the_addnet_core_and_keeps_what_suffices(capsys):
    model = load_model(bundled_model_path("digits_addnet"))
    base = preset("dima_sot")
    with pytest.raises(CompileError):            # the preset's own sizes do not hold it
        compile_model(model, base, subarrays=4)
    cfg = proposed_config(model, base, 4, "dima_sot")
    compile_model(model, cfg, subarrays=4)       # now it compiles
    out = capsys.readouterr().out
    assert out.startswith("--propose: ")
    for f in SIZE_FIELDS:
        assert getattr(cfg, f) >= getattr(base, f), f
        if getattr(cfg, f) != getattr(base, f):
            assert f"{f} {getattr(base, f)} -> {getattr(cfg, f)}" in out
            # the smallest: the next smaller power of two would not compile
            smaller = getattr(cfg, f) // 2
            if SIZE_FIELDS[f][3] and smaller >= getattr(base, f):
                with pytest.raises(CompileError):
                    compile_model(model, dataclasses.replace(cfg, **{f: smaller}), subarrays=4)
    big = dataclasses.replace(cfg, data_words=2 * cfg.data_words)
    assert proposed_config(model, big, 4, "dima_sot").data_words == big.data_words


def test_propose_on_a_preset_that_cannot_run_the_model_is_one_line():
    model = load_model(bundled_model_path("digits_addnet"))
    with pytest.raises(UserError, match=r"^--propose: --preset nand_spin --mat 4: layer 1 "
                       r"\(bin_gconv2d\): [^\n]*dima_sot") as e:
        proposed_config(model, preset("nand_spin"), 4, "nand_spin")
    assert "\n" not in str(e.value)
