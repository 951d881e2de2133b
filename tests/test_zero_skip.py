"""Zero skipping (``config.zero_skip``, seed 000's sparsity-aware skipping): the golden rule
(``golden.pim.zero_skip_tile``), the configuration check, and the cycle model running compiled
networks with skipping: results == golden, the zero-skipping counters == an independent count
from golden's activations, and the cycles saved == the cycles of the same programs run without
skipping. The RTL is compared with the cycle model in ``cocotb_tests/test_core_zero_skip.py``."""

import dataclasses
import json
import os

import numpy as np
import pytest

from golden import pim
from golden.datasets import load_dataset
from golden.model import bundled_model_path, infer_int, load_model
from rtl.config import PRESETS, AcceleratorConfig
from rtl.isa import ZERO_SKIP_COUNTERS
from sim.compile.compiler import compile_model, run_compiled
from sim.hw.core_model import CoreModel
from golden.model import Layer
from tests.test_compiler import make_layer, single_layer_model

SEED = int(os.environ.get("SPINPIM_SEED", "20261130"))


# ---- golden: the skip rule --------------------------------------------------------------------

def test_golden_tile_rule_equals_the_l1_norm():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (200, 9))
    x[rng.random(x.shape) < 0.6] = 0                  # ReLU-like sparsity
    x[:50] = 0                                         # whole zero tiles
    w = rng.integers(0, 256, (200, 9))
    l1, skipped = pim.zero_skip_tile(x, w)
    np.testing.assert_array_equal(l1, np.abs(x - w).sum(axis=1))
    np.testing.assert_array_equal(skipped, ~(x != 0).any(axis=1))
    assert skipped[:50].all() and 0 < skipped.sum() < 200
    np.testing.assert_array_equal(l1[:50], w[:50].sum(axis=1))   # |0 - w| = w


def test_golden_tile_rule_broadcasts_and_checks():
    l1, skipped = pim.zero_skip_tile(np.zeros(4, int), np.array([[1, 2, 3, 4], [0, 0, 0, 9]]))
    assert l1.tolist() == [10, 9] and skipped.tolist() == [True, True]
    l1, skipped = pim.zero_skip_tile(np.array([0, 3]), np.array([5, 1]), n=4)
    assert int(l1) == 7 and not bool(skipped)
    with pytest.raises(ValueError, match="x"):
        pim.zero_skip_tile(np.array([0, 256]), np.array([1, 2]))
    with pytest.raises(TypeError, match="n must be an int"):
        pim.zero_skip_tile(np.array([0]), np.array([1]), n=None)


# ---- configuration ----------------------------------------------------------------------------

def test_zero_skip_needs_the_abs_diff_dataflow():
    jeit = PRESETS["jeit_stt"]
    with pytest.raises(ValueError, match=r"^zero_skip=True needs dataflow 'abs_diff' .*not "
                                         r"dataflow 'write_free'; set zero_skip=False$"):
        dataclasses.replace(jeit, dataflow="write_free", routes=("write_free", "and_bitcount"))
    assert jeit.zero_skip and not jeit.with_dataflow("write_free").zero_skip
    assert jeit.with_dataflow("abs_diff").zero_skip
    assert jeit.with_dataflow("jeit_fa").zero_skip                  # the seed's FA-array route
    assert isinstance(dataclasses.replace(PRESETS["dima_sot"], zero_skip=True),
                      AcceleratorConfig)


# ---- the cycle model against golden -----------------------------------------------------------

def _im2col(stage, x):
    """The stage's patches in its patch order (``stage.order``), fan-in terms each: an
    independent im2col of golden's activations."""
    x = np.asarray(x).reshape(stage.in_shape).astype(np.int64)
    if not stage.kind.endswith("conv2d"):
        return x.reshape(1, -1)
    (kh, kw), s, p = stage.kernel, stage.stride, stage.padding
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    c, h, w = xp.shape
    ho, wo = (h - kh) // s + 1, (w - kw) // s + 1
    cols = np.array([xp[:, i * s:i * s + kh, j * s:j * s + kw].ravel()
                     for i in range(ho) for j in range(wo)])
    return cols[stage.order]


def expected_counters(compiled, model, image):
    """The zero-skipping counters of one image, from golden's activations: every gathered
    operand, the zero ones, and per tile (``wide``: a patch's tile; ``segmented``: a group of
    K patches of a chunk) the rule of ``golden.pim.zero_skip_tile``."""
    trace = infer_int(model, image[None], trace=True)
    want = dict.fromkeys(ZERO_SKIP_COUNTERS, 0)
    stage_in = image
    for st in compiled.stages:
        x = _im2col(st, stage_in)
        want["zs_operands"] += x.size
        want["zs_zero"] += int((x == 0).sum())
        if st.zsum_base is not None:
            w = load_weights_of(model, st)
            if st.mode == "wide":
                for t in range(st.tiles):
                    part = x[:, t * st.tile_width:(t + 1) * st.tile_width]
                    wt = w[:, t * st.tile_width:(t + 1) * st.tile_width]
                    for p in range(len(part)):
                        l1, skipped = pim.zero_skip_tile(part[p], wt,
                                                         fa_tree=st.route == "jeit_fa")
                        np.testing.assert_array_equal(l1, np.abs(part[p] - wt).sum(axis=1))
                        if skipped.all():
                            want["zs_tiles"] += st.out_channels
                            want["zs_skipped"] += part.shape[1]
            else:
                k = st.subarrays
                for ch in st.chunks:
                    mine = x[ch.patch_start:ch.patch_start + ch.patches]
                    for g in range(0, len(mine), k):
                        group = mine[g:g + k]
                        if not group.any():
                            want["zs_tiles"] += st.out_channels
                            want["zs_skipped"] += group.size
        want["zs_cycles_saved"] = None                  # checked against a run without skips
        stage_in = trace[st.golden_index][0]
    return want


def load_weights_of(model, stage):
    """The stage's adder weights as [O, fan_in] ints."""
    w = model.layers[stage.layer_index].params["weight"]
    return np.asarray(w).reshape(w.shape[0], -1).astype(np.int64)


def _sparse_images(x, rng, count):
    """``count`` images: as they are, with random pixels zeroed, and with whole rows zeroed
    (zero tiles in every layer's input)."""
    out = []
    for i in range(count):
        img = np.array(x[i], copy=True)
        if i % 3 == 1:
            img[rng.random(img.shape) < 0.7] = 0
        elif i % 3 == 2:
            img[..., : img.shape[-2] // 2, :] = 0
        out.append(img)
    return out


def check_skipping(model, images, on, k):
    """Run ``images`` with and without zero skipping on ``on`` (a zero_skip configuration)
    with ``k`` subarrays; compare with golden and the counters with their independent count.
    Returns the tile dots skipped."""
    off = dataclasses.replace(on, zero_skip=False)
    comp_on, comp_off = (compile_model(model, c, subarrays=k) for c in (on, off))
    core_on, core_off = CoreModel(on, subarrays=k), CoreModel(off, subarrays=k)
    skipped = 0
    for i, img in enumerate(images):
        r_on = run_compiled(comp_on, img, core_on, load_weights=i == 0)
        r_off = run_compiled(comp_off, img, core_off, load_weights=i == 0)
        g = infer_int(model, img[None])[0]
        assert (r_on.logits == g).all(), (k, i, r_on.logits, g, SEED)
        assert (r_off.logits == g).all(), (k, i, SEED)
        want = expected_counters(comp_on, model, img)
        got = dict(r_on.zero_skip)
        saved = got.pop("zs_cycles_saved")
        want.pop("zs_cycles_saved")
        assert got == want, (k, i, SEED)
        # cycles: the static count (every dot, its SKIPZ included) less the skipped dots'
        assert r_on.cycles + saved == comp_on.cycles
        ops_on, ops_off = r_on.counters, r_off.counters
        n = on.operand_bits
        dots = ops_off["fs_step"] // (2 * n)
        dropped = ops_off["fs_step"] - ops_on["fs_step"]
        if on.dataflow == "jeit_fa":    # its pipelined loops skip the DIFF pass only (n), a
            # chunk's unpipelined dot (a partial group alone) the whole dot (2n); each skipped
            # FS_STEP a cycle
            assert n * got["zs_tiles"] <= dropped <= 2 * n * got["zs_tiles"]
            assert saved == dropped
        else:
            assert dropped == 2 * n * got["zs_tiles"]
        # abs_diff writes n difference rows per dot, jeit_fa none (its sums are in the array)
        per_dot = 0 if on.dataflow == "jeit_fa" else n
        assert ops_on["write_row"] == ops_off["write_row"] - per_dot * got["zs_tiles"]
        # the SKIPZ is one MOVE per tile dot: the only cost of the hardware
        assert ops_on["move"] == ops_off["move"] + dots
        assert r_on.cycles == r_off.cycles + dots - saved
        skipped += got["zs_tiles"]
    return skipped


@pytest.mark.parametrize("name, k, dataflow", [
    ("digits_addernet", 1, "abs_diff"), ("digits_addernet", 4, "abs_diff"),
    ("fashion_addernet", 16, "abs_diff"), ("digits_addernet", 4, "jeit_fa"),
    ("fashion_addernet", 16, "jeit_fa")])
def test_bundled_models_with_skipping(name, k, dataflow):
    model = load_model(bundled_model_path(name))
    ds = "fashion_mnist" if name.startswith("fashion") else "digits"
    try:
        x = load_dataset(ds, "test")[0]
    except Exception as e:                               # the data set is not available
        pytest.skip(f"{ds}: {e}")
    rng = np.random.default_rng(SEED + k)
    skipped = check_skipping(model, _sparse_images(x, rng, 3),
                             PRESETS["jeit_stt"].with_dataflow(dataflow), k)
    if name.startswith("fashion"):        # its first layer is an adder layer on the image
        assert skipped > 0


@pytest.mark.parametrize("dataflow", ["abs_diff", "jeit_fa"])
@pytest.mark.parametrize("c_in, k, pool", [(2, 1, None), (2, 4, "max"), (1, 4, "avg"),
                                           (1, 1, None)])
def test_sparse_adder_layers_skip(c_in, k, pool, dataflow):
    # columns 16: fan-in 18 takes 2 tiles of a 1-subarray mat (wide), 1 tile of a 4-subarray
    # mat (wide); fan-in 9 is segmented on 4 subarrays (groups of 4 patches)
    rng = np.random.default_rng(SEED + 7 * c_in + k)
    x = rng.integers(1, 256, (1, c_in, 9, 9)).astype(np.uint8)
    ly = make_layer("adder_conv2d", rng, x, out_ch=3, k=3, padding=1)
    layers = [ly] + ([Layer(kind=f"{pool}_pool2d", params={"kernel": 2, "stride": 2})]
                     if pool else [])
    model = single_layer_model(layers, x.shape[1:])
    images = []
    for i in range(4):
        img = rng.integers(0, 256, x.shape[1:]).astype(np.uint8)
        img[rng.random(img.shape) < 0.5] = 0                 # ReLU-like sparsity
        img[:, : 2 + i, :] = 0                               # zero tiles
        images.append(img)
    cfg = dataclasses.replace(PRESETS["jeit_stt"].with_dataflow(dataflow), rows=128,
                              columns=16)
    assert check_skipping(model, images, cfg, k) > 0


def test_only_zero_skip_cores_have_the_hardware():
    from rtl.export import verilog_of
    small = dict(rows=16, columns=8, subarrays_per_mat=1, mats=1)
    on = dataclasses.replace(PRESETS["jeit_stt"], **small)
    off = dataclasses.replace(on, zero_skip=False)
    assert "zero_flags" in verilog_of("core", on)
    text = verilog_of("core", off)
    assert "zero_flags" not in text and "zs_" not in text


def test_the_measuring_tool(tmp_path, capsys):
    """``python -m sim.analysis.zero_skip`` (``make zero-skip``): both compilations agree with
    golden,
    the counters' cycles saved account for the difference to the static count, and a
    preset without zero skipping is refused with one line."""
    from sim.analysis import zero_skip
    out = tmp_path / "zs.json"
    assert zero_skip.main(["--model", "digits_addernet", "-n", "2", "--mat", "2",
                           "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["logits_equal_to_golden"] and r["images"] == 2
    assert r["cycles_per_image"] + r["per_image"]["zs_cycles_saved"] == pytest.approx(
        r["cycles_if_no_tile_skipped"])
    assert 0.0 < r["zero_operand_fraction"] < 1.0
    capsys.readouterr()
    assert zero_skip.main(["--preset", "nand_spin", "--out", str(tmp_path / "x.json")]) == 2
    assert capsys.readouterr().err == ("error: --preset must be a preset with zero skipping "
                                       "(jeit_stt), not 'nand_spin'\n")
    assert not (tmp_path / "x.json").exists()


def test_the_measuring_tool_on_another_dataflow(tmp_path, capsys):
    """``--dataflow abs_diff``: the preset's core with its adder layers on abs-diff (skipped
    tile dots write no difference rows: less energy); a dataflow that cannot skip is refused
    with one line."""
    from sim.analysis import zero_skip
    out = tmp_path / "zs.json"
    assert zero_skip.main(["--model", "fashion_addernet", "-n", "1", "--mat", "4",
                           "--dataflow", "abs_diff", "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["logits_equal_to_golden"] and r["dataflow"] == "abs_diff"
    assert r["per_image"]["zs_tiles"] > 0, "no tile dot skipped: the check tests nothing"
    assert r["energy_j_per_image"] < r["energy_j_per_image_without_zero_skip"]
    assert r["cycles_per_image"] < r["cycles_per_image_without_zero_skip"]
    assert "adder layers on abs_diff" in capsys.readouterr().out
    assert zero_skip.main(["--dataflow", "write_free", "--out", str(tmp_path / "x.json")]) == 2
    assert capsys.readouterr().err == ("error: --dataflow must be a dataflow that can skip "
                                       "zero tiles (abs_diff, jeit_fa), not 'write_free'\n")
    assert not (tmp_path / "x.json").exists()


@pytest.mark.parametrize("skip", [0, 1])
def test_a_taken_skipz_folds_no_endloop(skip):
    """A window last in a loop's body (the SKIPZ itself if b = 0): the controller jumps to the
    ENDLOOP, which takes a cycle of its own (``rtl.controller``: no ENDLOOP is folded into a
    taken SKIPZ; the RTL agrees, ``cocotb_tests/test_core_random.py`` draws the case). The
    cycles are counted here by hand from the controller's rules."""
    from rtl.isa import MoveOp, Opcode, WriteSrc
    from sim.compile import asm
    config = dataclasses.replace(PRESETS["jeit_stt"], rows=16, columns=16, subarrays_per_mat=1)
    assert config.zero_skip and config.op_cycles.get(Opcode.WRITE_ROW, 1) == 2
    window = [asm.read(a=1, imm=2)] * skip
    words = asm.assemble([
        asm.move(imm=MoveOp.CLEAR.value, a=0, b=0, d=0),         # cycle 0
        asm.nop(), asm.nop(),                                    # 1, 2
        asm.write_row(a=0, b=0, imm=WriteSrc.TBUF_ZS.value),     # 3 (busy in 4: the LOOP)
        asm.loop(count=3),                                       # 4
        asm.move(imm=MoveOp.SKIPZ.value, a=0, b=skip, d=0), *window,            # taken: 5, 7, 9
        asm.endloop(),                                           # its own cycle: 6, 8, 10
        asm.halt()])                                             # 11
    run = CoreModel(config, subarrays=1).run(words)
    assert not run.error, run.reason
    c = run.counters
    assert (c["cycles"], c["stalls"], c["endloop"], c["move"], c["read"]) == (12, 0, 3, 4, 0)
    assert run.zero_skip["zs_tiles"] == 3


def test_make_sim_checks_the_rtl_counters_against_the_cycle_model():
    """``make sim`` on a zero-skipping preset (``sim.cli._cycle_model_check``): each image's
    RTL counters against the cycle model's on the same image; a counter off by one on one
    image is named (here the cycle model's own counters stand in for the RTL's)."""
    from sim.cli import _cycle_model_check
    model = load_model(bundled_model_path("digits_addernet"))
    config = PRESETS["jeit_stt"]
    rng = np.random.default_rng(SEED)
    x = _sparse_images(rng.integers(0, 256, (2, *model.input_shape)).astype(np.uint8), rng, 2)
    compiled = compile_model(model, config, subarrays=2)
    core = CoreModel(config, subarrays=2)
    images = [{"counters": dict(run_compiled(compiled, img, core, load_weights=i == 0).counters)}
              for i, img in enumerate(x)]
    assert _cycle_model_check(config, 2, compiled, x, images) == {
        "images": 2, "counters_equal": 2, "first_difference": None}
    images[1]["counters"]["cycles"] += 1
    want = images[1]["counters"]["cycles"]
    got = _cycle_model_check(config, 2, compiled, x, images)
    assert got["counters_equal"] == 1
    assert got["first_difference"] == (f"image 1: (rtl, cycle model) {{'cycles': ({want}, "
                                       f"{want - 1})}}")
