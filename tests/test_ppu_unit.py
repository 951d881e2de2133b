"""rtl.ppu without simulation: parameter errors, port widths, the immediate helper, the widths
shared with golden.layers, and a clean Verilator lint at the extreme parameters."""

import dataclasses
import subprocess

import pytest

from golden.layers import RQ_BITS, RQ_MULT_BITS
from rtl.config import preset
from rtl.isa import IMM_BITS
from rtl.ppu import (
    BIAS_BITS, MULT_BITS, PPU_CLEAR, PPU_EMIT, PPU_MODE_LSB, PPU_NEG, SHIFT_BITS, Ppu, PpuMode,
    ppu_imm,
)

CFG = preset("jeit_stt")


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(channels=0), ValueError, r"^channels must be an int in \[1, 4096\], not 0$"),
    (dict(channels=4097), ValueError, r"^channels must be an int in \[1, 4096\], not 4097$"),
    (dict(channels="8"), TypeError, r"^channels must be an int, not '8'$"),
    (dict(channels=True), TypeError, r"^channels must be an int, not True$"),
    (dict(out_depth=0), ValueError, r"^out_depth must be an int in \[1, 65536\], not 0$"),
    (dict(out_depth=65537), ValueError,
     r"^out_depth must be an int in \[1, 65536\], not 65537$"),
    (dict(out_depth=16.0), TypeError, r"^out_depth must be an int, not 16\.0$"),
    (dict(config=None), TypeError, r"^config must be an AcceleratorConfig, not None$"),
])
def test_bad_parameters(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        Ppu(**{"config": CFG, **kwargs})


@pytest.mark.parametrize("channels, out_depth, channel_bits, raddr_bits, count_bits", [
    (256, 4096, 8, 12, 13),
    (1, 1, 1, 1, 1),
    (3, 5, 2, 3, 3),
    (4096, 65536, 12, 16, 17),
    (257, 4097, 9, 13, 13),
])
def test_port_widths(channels, out_depth, channel_bits, raddr_bits, count_bits):
    ppu = Ppu(config=CFG, channels=channels, out_depth=out_depth)
    assert (ppu.channels, ppu.out_depth, ppu.config) == (channels, out_depth, CFG)
    assert len(ppu.channel) == len(ppu.tbl_addr) == channel_bits
    assert len(ppu.out_raddr) == raddr_bits
    assert len(ppu.out_count) == count_bits
    assert len(ppu.imm) == IMM_BITS
    assert ppu.acc.shape().signed and len(ppu.acc) == CFG.acc_bits
    assert ppu.tbl_mult.shape().signed and len(ppu.tbl_mult) == 16
    assert ppu.tbl_bias.shape().signed and len(ppu.tbl_bias) == 48
    assert len(ppu.tbl_shift) == 6 and len(ppu.out_rdata) == 32 and len(ppu.error) == 1


def test_widths_match_golden():
    assert MULT_BITS == RQ_MULT_BITS
    assert BIAS_BITS == RQ_BITS
    # golden.layers.requantize allows shifts in [0, RQ_BITS - 2].
    assert RQ_BITS - 2 < 1 << SHIFT_BITS


def test_ppu_imm():
    assert ppu_imm() == 0
    assert ppu_imm(clear=True) == PPU_CLEAR == 1
    assert ppu_imm(emit=True) == PPU_EMIT == 2
    assert ppu_imm(neg=True) == PPU_NEG == 4
    assert PPU_MODE_LSB == 3
    assert [ppu_imm(mode=m) for m in PpuMode] == [0, 8, 16, 24]
    assert ppu_imm(clear=True, emit=True, neg=True, mode=PpuMode.LOGIT) == 31
    assert ppu_imm(emit=True, mode=PpuMode.AVG4) == 0b10010
    assert max(ppu_imm(clear=c, emit=e, neg=n, mode=m) for c in (False, True)
               for e in (False, True) for n in (False, True) for m in PpuMode) < 1 << IMM_BITS


@pytest.mark.parametrize("kwargs, exc, msg", [
    (dict(clear=1), TypeError, r"^clear must be a bool, not 1$"),
    (dict(neg=None), TypeError, r"^neg must be a bool, not None$"),
    (dict(mode=1), TypeError, r"^mode must be a PpuMode, not 1$"),
])
def test_ppu_imm_errors(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        ppu_imm(**kwargs)


@pytest.mark.parametrize("acc_bits, channels, out_depth", [
    (32, 256, 4096), (8, 3, 5), (5, 1, 1), (64, 2, 2), (40, 100, 1000),
])
def test_lint_clean(tmp_path, acc_bits, channels, out_depth):
    """The exported Verilog at extreme widths passes ``verilator --lint-only -Wall`` with the
    export's waivers (those of the PPU registered there with the block)."""
    from amaranth.back import verilog

    from cocotb_tests.harness import HarnessError, check_verilator
    from rtl.export import LINT_WAIVERS

    if '"*ppu.v"' not in LINT_WAIVERS:
        pytest.skip("rtl.export has no lint waivers for ppu.v yet")
    try:
        verilator = check_verilator()
    except HarnessError as e:
        pytest.fail(str(e))
    cfg = CFG if acc_bits == CFG.acc_bits else dataclasses.replace(
        CFG, columns=8, operand_bits=1, acc_bits=acc_bits)
    (tmp_path / "lint.vlt").write_text(LINT_WAIVERS)
    (tmp_path / "ppu.v").write_text(verilog.convert(
        Ppu(config=cfg, channels=channels, out_depth=out_depth), name="ppu", emit_src=False))
    lint = subprocess.run([verilator, "--lint-only", "-Wall", "lint.vlt", "ppu.v"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stderr, lint.stderr
