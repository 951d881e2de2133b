"""``sim.flows.rtl_backend.build_block``'s export key: an exported design is reused only when what
it
depends on is unchanged (the caller's key, the generator's source, the Amaranth version)."""

import shutil

import pytest
from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sim.flows.rtl_backend import build_block, export_key


class _Counter(wiring.Component):
    step: In(4)
    count: Out(8)

    def __init__(self, width=8):
        self.width = width
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        acc = Signal(self.width)
        m.d.sync += acc.eq(acc + self.step)
        m.d.comb += self.count.eq(acc)
        return m


def test_the_key_changes_with_the_callers_key_and_is_stable():
    assert export_key("a") == export_key("a")
    assert export_key("a") != export_key("b")


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
def test_an_export_is_reused_only_for_the_same_key(tmp_path):
    build_block(_Counter(), block="ctr", sim="icarus", build_dir=tmp_path, always=False,
                key="width=8")
    source = tmp_path / "ctr.v"
    exported = source.read_text()
    assert "module ctr" in exported and (tmp_path / "ctr.v.key").is_file()
    # A marker the exporter would never write: it survives only if the export is skipped.
    source.write_text(exported + "// reused\n")
    build_block(_Counter(), block="ctr", sim="icarus", build_dir=tmp_path, always=False,
                key="width=8")
    assert source.read_text().endswith("// reused\n")
    # Another key exports again, and so does no key at all.
    build_block(_Counter(), block="ctr", sim="icarus", build_dir=tmp_path, always=False,
                key="width=8,other")
    assert source.read_text() == exported
    source.write_text(exported + "// reused\n")
    build_block(_Counter(), block="ctr", sim="icarus", build_dir=tmp_path, always=False)
    assert source.read_text() == exported
    assert not (tmp_path / "ctr.v.key").exists()


def test_the_key_changes_with_the_generators_source(tmp_path, monkeypatch):
    import sim.flows.rtl_backend as rb
    (tmp_path / "rtl").mkdir()
    gen = tmp_path / "rtl" / "block.py"
    gen.write_text("WIDTH = 8\n")
    monkeypatch.setattr(rb, "REPO", tmp_path)
    before = export_key("a")
    gen.write_text("WIDTH = 9\n")
    assert export_key("a") != before
