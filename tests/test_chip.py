"""sim.hw.chip: organisation, bus bound, weight loading on hand-made figures."""

from types import SimpleNamespace

import numpy as np
import pytest

from rtl.config import preset
from sim.hw import chip, sram


def _compiled(k, config):
    return SimpleNamespace(subarrays=k, width=k * config.columns,
                           buffer=np.zeros((5, k * config.columns), bool),
                           table=([1, 2, 3], [0, 0, 0], [0, 0, 0]),
                           offsets=tuple((i, 0) for i in range(9)),
                           patches=tuple((i, 0) for i in range(4)))


def test_organisation_own_and_measured_mat():
    config = preset("nand_spin")              # 1024 mats of 16 subarrays (seed 001)
    o = chip.organisation(config, 16)
    assert (o["mats"], o["banks"], o["bus_bits"]) == (1024, 64, 128)
    assert o["own_organisation"] and o["idle_subarrays"] == 0
    assert o["mat_size"].startswith("16 x 256 x 128")
    o = chip.organisation(config, 3)
    assert o["mats"] == 16384 // 3 and o["idle_subarrays"] == 16384 % 3
    assert not o["own_organisation"]
    with pytest.raises(ValueError, match="k must be an int"):
        chip.organisation(config, 0)


@pytest.mark.parametrize("latency, limit", [(1e-3, "bus"), (1.0, "compute")])
def test_chip_model(latency, limit):
    config = preset("nand_spin")
    comp = _compiled(16, config)
    c = chip.chip_model(config, comp, latency_s=latency, energy_j=2e-6, ops=10 ** 6,
                        data_words=784, program_words=100, mat_area_mm2=0.5)
    clock = 133e6
    # data words of 32 bits, instruction words of 10 + 3 x (14 + 6) = 70 (nand_spin's data_words
    # 16384: 14-bit operand bases)
    bits = 784 * 32 + 100 * 70
    assert c["bits_per_image"] == bits
    assert c["bus_bound_images_per_s"] == pytest.approx(128 * clock / bits, rel=1e-12)
    assert c["compute_bound_images_per_s"] == pytest.approx(1024 / latency, rel=1e-12)
    ips = min(128 * clock / bits, 1024 / latency)
    assert c["limit"] == limit and c["images_per_second"] == pytest.approx(ips, rel=1e-12)
    assert c["gops"] == pytest.approx(ips * 1e6 / 1e9, rel=1e-12)
    # weights: 5 rows x 2048 columns, 3 requant entries x (16 + 6 + 48), 9 offset entries x
    # (16 + 5), 4 patch entries x the patch table's width
    patch_bits = next(m.bits for m in sram.core_memories(config, 16) if m.name == "patch table")
    wb = c["weight_loading"]["bits_per_mat"]
    assert wb["total"] == 5 * 2048 + 3 * 70 + 9 * 21 + 4 * patch_bits
    assert c["weight_loading"]["seconds"] == pytest.approx(1024 * wb["total"] / (128 * clock),
                                                           rel=1e-12)
    area = 1024 * 0.5
    wire_j = bits * 100e-15 * (area ** 0.5 / 2)
    assert c["bus_energy_per_image_j"] == pytest.approx(wire_j, rel=1e-12)
    assert c["gops_per_w"] == pytest.approx(1e6 / (2e-6 + wire_j) / 1e9, rel=1e-12)
    # a wider bus never lowers the throughput
    sweep = chip.bus_sweep(config, comp, latency_s=latency, energy_j=2e-6, ops=10 ** 6,
                           data_words=784, program_words=100, mat_area_mm2=0.5)
    g = [r["gops"] for r in sweep]
    assert g == sorted(g)


def test_wide_instruction_words_on_the_bus_and_in_the_instruction_memory():
    """A configuration whose sizes need 16-bit operand bases (65,536 data words) has 76-bit
    instruction words (64 + 3 bases x 4 more bits): the chip's program traffic and the
    instruction memory's width count them, not 64."""
    import dataclasses
    config = dataclasses.replace(preset("nand_spin"), data_words=65536)
    assert config.isa.word_bits == 64 + 3 * (16 - 12)
    c = chip.chip_model(config, _compiled(16, config), latency_s=1e-3, energy_j=2e-6,
                        ops=10 ** 6, data_words=784, program_words=100, mat_area_mm2=0.5)
    assert c["bits_per_image"] == 784 * 32 + 100 * 76
    imem = next(m for m in sram.core_memories(config, 1) if m.name == "instruction memory")
    assert imem.bits == 76
    base = next(m for m in sram.core_memories(preset("jeit_stt"), 1)
                if m.name == "instruction memory")
    assert base.bits == 64                  # the old sizes' 12-bit bases
    own = next(m for m in sram.core_memories(preset("nand_spin"), 1)
               if m.name == "instruction memory")
    assert own.bits == 10 + 3 * (14 + 6)    # nand_spin's data_words 16384: 14-bit bases
