"""Limits from the configuration (issue 15, item 1): the core's memory and table sizes are
fields of ``rtl.config.AcceleratorConfig`` with the old sizes as defaults and validated ranges;
the instruction format's operand bases follow from them (``rtl.isa.IsaFormat``); the compiler
names the field to raise and to what; a user sets them by ``--config FILE`` (TOML) and one
option per size (``sim.config_file``, ``sim.cli run``).

The models refused at the default sizes run on the cycle model with the proposed sizes and
agree with golden (``golden.model.layer_forward_int``) at every stage;
``cocotb_tests/test_core_limits.py`` runs one of them on the RTL.
"""

import dataclasses
import random

import numpy as np
import pytest

from golden.model import Layer, layer_forward_int
from rtl.config import PRESETS, SIZE_FIELDS, AcceleratorConfig, preset
from rtl.core import Core
from rtl.isa import (
    BASE_BITS, FIELDS, MAX_BASE_BITS, WORD_BITS, Instr, MoveOp, Opcode, Operand, decode, encode,
    isa_format,
)
from sim.compile import asm
from sim.cli import main
from sim.compile.compiler import CompileError, compile_model, propose_config, run_compiled
from sim.config_file import ConfigError, load_config_file, resolve_config
from sim.hw.core_model import CoreModel
from tests.test_compiler import check_equal, golden_trace, make_layer, single_layer_model

SEED = 15
#: The sizes the core had before they were configurable (rtl.core.Core's old defaults).
OLD_SIZES = {"data_words": 4096, "buffer_slots": 2048, "offset_entries": 1024,
             "patch_entries": 2048, "requant_channels": 256, "program_words": 1024,
             "patch_mask_bits": 32}


# ---- configuration fields ------------------------------------------------------------------

@pytest.mark.parametrize("name", [n for n in PRESETS if n != "nand_spin"])
def test_presets_keep_the_old_sizes_and_the_64_bit_word(name):
    cfg = preset(name)
    assert {f: getattr(cfg, f) for f in SIZE_FIELDS} == OLD_SIZES
    assert cfg.isa_base_bits == BASE_BITS == 12
    assert cfg.isa.word_bits == WORD_BITS == 64 and cfg.isa.fields == FIELDS
    core = Core(config=dataclasses.replace(cfg, subarrays_per_mat=1), faults=False)
    assert (core.imem_depth, core.buffer_slots, core.channels, core.out_depth,
            core.offset_depth, core.patch_depth) == (1024, 2048, 256, 4096, 1024, 2048)
    assert (len(core.prog_data), len(core.agu_addr), len(core.agu_data)) == (64, 12, 48)


def test_nand_spin_has_its_in_memory_sizes_and_a_70_bit_word():
    """nand_spin's preset raises data_words to 16384 and offset_entries to 4096 (its in-memory
    post-processing's raw sums and offsets: ``tests/test_postproc_mixed.py`` shows they are the
    smallest that keep every bundled model's built layers in memory). Data addresses up to
    16383 need 14-bit operand bases: a word of 10 + 3 x (14 + 6) = 70 bits; the other sizes
    are the old ones."""
    cfg = preset("nand_spin")
    assert {f: getattr(cfg, f) for f in SIZE_FIELDS} == {**OLD_SIZES, "data_words": 16384,
                                                          "offset_entries": 4096}
    assert cfg.isa_base_bits == (16384 - 1).bit_length() == 14
    assert cfg.isa.word_bits == 10 + 3 * (14 + 6) == 70
    core = Core(config=dataclasses.replace(cfg, subarrays_per_mat=1), faults=False)
    assert (core.imem_depth, core.buffer_slots, core.channels, core.out_depth,
            core.offset_depth, core.patch_depth) == (1024, 2048, 256, 16384, 4096, 2048)
    # the host's table address: 12 bits hold entry 4095 of either table
    assert (len(core.prog_data), len(core.agu_addr), len(core.agu_data)) == (70, 12, 48)


@pytest.mark.parametrize("field, value, exc, message", [
    ("data_words", 5000, ValueError, r"data_words must be a power of two in \[64, 65536\], "
     r"not 5000"),
    ("data_words", 1 << 17, ValueError, r"data_words must be a power of two in \[64, 65536\]"),
    ("data_words", 32, ValueError, r"data_words must be a power of two in \[64, 65536\], not 32"),
    ("buffer_slots", "4096", TypeError, r"buffer_slots must be a power of two in \[2, 65536\], "
     r"not '4096'"),
    ("offset_entries", 3, ValueError, r"offset_entries must be a power of two in \[2, 65536\]"),
    ("patch_entries", 4096.0, TypeError, r"patch_entries must be a power of two in "
     r"\[2, 65536\], not 4096\.0"),
    ("requant_channels", 0, ValueError, r"requant_channels must be an int in \[1, 4096\], "
     r"not 0"),
    ("requant_channels", True, TypeError, r"requant_channels must be an int in \[1, 4096\], "
     r"not True"),
    ("program_words", 100, ValueError, r"program_words must be a power of two in \[2, 65536\]"),
    ("patch_mask_bits", 256, ValueError, r"patch_mask_bits must be a power of two in \[8, 128\], "
     r"not 256"),
])
def test_size_fields_are_validated_in_one_line(field, value, exc, message):
    with pytest.raises(exc, match=rf"^{message}") as e:
        dataclasses.replace(preset("nand_spin"), **{field: value})
    assert "\n" not in str(e.value)


def test_requant_channels_need_not_be_a_power_of_two():
    assert dataclasses.replace(preset("nand_spin"), requant_channels=522).requant_channels == 522


@pytest.mark.parametrize("sizes, bits", [
    ({}, 12),
    ({"data_words": 8192}, 13),
    ({"buffer_slots": 16384}, 14),
    ({"offset_entries": 65536}, 16),
    ({"patch_entries": 32768, "data_words": 1024}, 15),
    ({"requant_channels": 4096}, 12),           # channel 4095 fits 12 bits
    ({"rows": 65536}, 16),
    ({"program_words": 65536, "patch_mask_bits": 128}, 12),   # not operands
])
def test_operand_bases_follow_the_sizes(sizes, bits):
    cfg = dataclasses.replace(preset("jeit_stt"), **sizes)
    assert cfg.isa_base_bits == bits
    assert cfg.isa.word_bits == 64 + 3 * (bits - 12)


def test_core_overrides_stay_within_the_operand_bases():
    # nand_spin's data_words 16384: 14-bit bases, so overrides up to 2 ** 14
    cfg = dataclasses.replace(preset("nand_spin"), subarrays_per_mat=1)
    with pytest.raises(ValueError, match=r"^buffer_slots must be a power of two in "
                       r"\[2, 16384\], not 32768$"):
        Core(config=cfg, buffer_slots=32768)
    with pytest.raises(ValueError, match=r"^patch_depth must be in \[2, 16384\], not 32768$"):
        CoreModel(cfg, patch_depth=32768)
    wide = dataclasses.replace(cfg, patch_entries=32768)
    core = Core(config=wide, faults=False)
    # entry 32767: 15 bits, a word of 10 + 3 x (15 + 6)
    assert (core.patch_depth, len(core.agu_addr), len(core.prog_data)) == (32768, 15, 73)
    assert CoreModel(wide).patch_depth == 32768


# ---- instruction formats -------------------------------------------------------------------

def _random_instr(rng, base_bits):
    op = rng.choice([op for op in Opcode if op is not Opcode.LOOP])
    top = (1 << base_bits) - 1
    ops = {n: Operand(rng.randint(0, top), rng.randint(0, 3), rng.randint(-8, 7))
           for n in "abd"}
    return Instr(op, imm=rng.randint(0, 31), **ops)


@pytest.mark.parametrize("base_bits", range(BASE_BITS, MAX_BASE_BITS + 1))
def test_every_format_round_trips_and_keeps_the_low_fields(base_bits):
    rng = random.Random(SEED + base_bits)
    fmt = isa_format(base_bits)
    fields = fmt.fields
    assert fields[0] == FIELDS[0] and fields[1] == FIELDS[1]          # op, imm unchanged
    assert all(fields[i][1] + fields[i][2] == fields[i + 1][1] for i in range(len(fields) - 1))
    assert fields[-1][1] + fields[-1][2] == fmt.word_bits == 10 + 3 * (base_bits + 6)
    assert fmt.layout.size == fmt.word_bits
    for _ in range(200):
        ins = _random_instr(rng, base_bits)
        word = fmt.encode(ins)
        assert 0 <= word < 1 << fmt.word_bits and fmt.decode(word) == ins
    # LOOP's count and the opcode sit in the same bits in every format
    loop = Instr(Opcode.LOOP, count=40000)
    assert fmt.encode(loop) == encode(loop) and fmt.decode(encode(loop)) == loop
    top = Instr(Opcode.READ, a=Operand((1 << base_bits) - 1))
    assert decode(fmt.encode(top), base_bits).a.base == (1 << base_bits) - 1
    if base_bits > BASE_BITS:
        with pytest.raises(ValueError, match=r"^a\.base must be in \[0, 4095\]"):
            encode(top)
    with pytest.raises(ValueError, match=r"^word must be in"):
        fmt.decode(1 << fmt.word_bits)


def test_format_width_is_validated():
    with pytest.raises(ValueError, match=r"^base_bits must be an int in \[12, 16\], not 17$"):
        isa_format(17)
    with pytest.raises(ValueError, match=r"^base_bits must be an int in \[12, 16\], not 11$"):
        encode(Instr(Opcode.NOP), 11)


# ---- models the default sizes refuse ---------------------------------------------------------

def big_input_model(rng):
    """A 1 x 64 x 64 input (4096 values: two data-memory regions of 4096 words) through a 7 x 7
    stride-8 adder convolution (a 49-term kernel: a 64-bit patch mask) to 2 x 8 x 8, then a
    multiply FC to 3 logits; returns ``(model, image)``."""
    x = rng.integers(0, 256, (1, 1, 64, 64)).astype(np.uint8)
    conv = make_layer("adder_conv2d", rng, x, out_ch=2, k=7, stride=8)
    h = layer_forward_int(conv, x).reshape(1, -1)
    fc = make_layer("mul_linear", rng, h, out_ch=3, output="logits")
    return single_layer_model([conv, Layer(kind="flatten"), fc], x.shape[1:]), x[0]


def fc_784_512_model(rng):
    """FC 784-512 (adder, requant) then FC 512-10 (multiply, logits): 4176 weight-buffer
    slots, 522 requant channels and 1296 offset-table entries on a 2048-column mat."""
    x = rng.integers(0, 256, (1, 784)).astype(np.uint8)
    fc1 = make_layer("adder_linear", rng, x, out_ch=512)
    h = layer_forward_int(fc1, x)
    fc2 = make_layer("mul_linear", rng, h, out_ch=10, output="logits")
    return single_layer_model([fc1, fc2], x.shape[1:]), x[0]


def small_config(name="nand_spin", **sizes):
    """The cosimulated configuration: one subarray of 128 rows x 16 columns, at the old sizes
    (:data:`OLD_SIZES`) unless ``sizes`` says otherwise: the refusals below are measured from
    them (nand_spin's preset has a larger data memory and offset table of its own)."""
    return dataclasses.replace(preset(name), rows=128, columns=16, subarrays_per_mat=1,
                               **{**OLD_SIZES, **sizes})


def run_against_golden(model, config, x):
    compiled = compile_model(model, config)
    core = CoreModel(config)
    res = run_compiled(compiled, x, core)
    trace = golden_trace(model, x)
    for stage, out in zip(compiled.stages, res.outputs, strict=True):
        check_equal(f"stage {stage.name} (golden layer {stage.golden_index})", out,
                    trace[stage.golden_index], SEED)
    assert res.cycles == compiled.cycles
    return compiled


def test_big_input_names_each_field_to_raise_then_runs():
    model, x = big_input_model(np.random.default_rng(SEED))
    cfg = small_config()
    with pytest.raises(CompileError, match=r"^the data memory needs two regions of 4096 words "
                       r"\(the largest stage input or output, the layer 0 \(adder_conv2d\) "
                       r"input\), 8192 words, but data_words is 4096; raise data_words to at "
                       r"least 8192 \(--data-words\)$") as e:
        compile_model(model, cfg)
    assert (e.value.field, e.value.size) == ("data_words", 8192)
    with pytest.raises(CompileError, match=r"^layer 0 \(adder_conv2d\): the kernel area 7x7 = "
                       r"49 exceeds the patch mask's 32 bits; raise patch_mask_bits to at least "
                       r"64 \(--patch-mask-bits\)$"):
        compile_model(model, dataclasses.replace(cfg, data_words=8192))
    proposed = propose_config(model, cfg)
    # nand_spin post-processes the conv in memory (postproc 'mixed', issue 14): its 2 x 8 x 8
    # raw sums go after the two regions, words 8192 .. 8319: the next allowed size, 16384
    assert proposed == dataclasses.replace(cfg, data_words=16384, patch_mask_bits=64)
    compiled = run_against_golden(model, proposed, x)
    # the conv's raw sums go to word 8192: a 14-bit SETPTR operand (base_bits 14)
    fmt = proposed.isa
    assert fmt.word_bits == isa_format(14).word_bits
    setptrs = {fmt.decode(w).a.base for st in compiled.stages for c in st.chunks
               for w in c.program
               if fmt.decode(w).op is Opcode.MOVE and fmt.decode(w).imm == MoveOp.SETPTR.value}
    assert max(setptrs) >= 8192
    listing = asm.disassemble_program(compiled.stages[0].chunks[0].program, fmt.base_bits)
    assert "move a=8192 b=0 d=0 imm=2" in listing


def test_fc_784_512_gets_a_bigger_buffer_and_requant_table():
    model, x = fc_784_512_model(np.random.default_rng(SEED))
    cfg = preset("nand_spin")
    with pytest.raises(CompileError, match=r"weights need 4176 weight-buffer slots .*but "
                       r"buffer_slots is 2048; raise buffer_slots to at least 8192 "
                       r"\(--buffer-slots\), or use more columns$"):
        compile_model(model, cfg)
    with pytest.raises(CompileError, match=r"^the model has 522 output channels in its compute "
                       r"layers, but the requant table has requant_channels=256 entries; raise "
                       r"requant_channels to at least 522 \(--requant-channels\)$"):
        compile_model(model, cfg, buffer_slots=8192)
    proposed = propose_config(model, cfg)
    # slots 8 x (512 + 10) = 4176 -> 8192, channels 522; offsets 784 + 512 = 1296 fit the
    # preset's 4096
    assert proposed == dataclasses.replace(cfg, buffer_slots=8192, requant_channels=522)
    assert cfg.offset_entries >= 1296
    compiled = run_against_golden(model, proposed, x)
    # slots of a 14-bit base (the preset's data_words 16384): layer 0's weights take slots
    # 0 .. 4095, then its in-memory post-processing (nand_spin's mixed, issue 14) 4 scratch
    # words, the all-ones word and its scale and bias words
    assert compiled.stages[0].postproc == "in_memory"
    assert compiled.stages[1].buffer_base > 4096 + 5


def test_no_allowed_size_is_named_as_such():
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 1, 13, 13)).astype(np.uint8)
    model = single_layer_model([make_layer("adder_conv2d", rng, x, out_ch=1, k=12)],
                               x.shape[1:])
    with pytest.raises(CompileError, match=r"kernel area 12x12 = 144 exceeds the patch mask's "
                       r"32 bits; no configuration holds that \(patch_mask_bits is at most 128, "
                       r"--patch-mask-bits\)$") as e:
        propose_config(model, small_config())
    assert e.value.size is None


# ---- configuration files and options ---------------------------------------------------------

def _toml(tmp_path, text):
    path = tmp_path / "core.toml"
    path.write_text(text)
    return path


def test_config_file_sets_fields_over_its_preset(tmp_path):
    path = _toml(tmp_path, 'preset = "jeit_stt"\ndata_words = 8192\npatch_mask_bits = 64\n'
                 'dataflow = "write_free"\n[stall_table]\nwrite = 3\n')
    name, cfg = load_config_file(path)
    want = dataclasses.replace(preset("jeit_stt").with_dataflow("write_free"), data_words=8192,
                               patch_mask_bits=64,
                               stall_table={"read": 1, "write": 3, "erase": 1, "program": 1})
    assert (name, cfg) == ("jeit_stt", want)
    # the options come after the file
    name, cfg = resolve_config(preset_name=None, config_file=path,
                               sizes={"data_words": "16384", "buffer_slots": None})
    assert (name, cfg.data_words, cfg.patch_mask_bits) == ("jeit_stt", 16384, 64)
    name, cfg = resolve_config(preset_name="dima_sot", sizes={"program_words": "2048"})
    assert (name, cfg) == ("dima_sot", dataclasses.replace(preset("dima_sot"),
                                                           program_words=2048))


@pytest.mark.parametrize("text, message", [
    ("data_word = 8192\n", r"unknown key 'data_word'; did you mean 'data_words'\?$"),
    ("buffer_slot = 4096\n", r"unknown key 'buffer_slot'; did you mean 'buffer_slots'\?$"),
    ("zzz = 1\n", r"unknown key 'zzz'; known keys: preset, technology, rows, "),
    ('data_words = "8k"\n', r"data_words must be a power of two in \[64, 65536\], not '8k'$"),
    ("data_words = 100\n", r"data_words must be a power of two in \[64, 65536\], not 100$"),
    ("requant_channels = 5000\n", r"requant_channels must be an int in \[1, 4096\], not 5000$"),
    ("rows = 12\n", r"rows must be a positive multiple of 8 in \[8, 65536\], not 12$"),
    ('preset = "nand"\n', r"preset must be one of jeit_stt, nand_spin, dima_sot, imac_sot, not "
     r"'nand'$"),
    ("data_words = \n", r"not valid TOML: "),
    ("[core]\ndata_words = 8192\n", r"unknown key 'core'"),
    ("routes = [[1]]\n", r"routes must name known routes \(abs_diff, .*\), not \[1\]$"),
    ("mats = 100000000\n", r"mats must be an int in \[1, 65536\], not 100000000$"),
])
def test_config_file_errors_name_the_key(tmp_path, text, message):
    path = _toml(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^--config {path}: {message}") as e:
        load_config_file(path)
    assert "\n" not in str(e.value)


def test_config_file_and_preset_must_agree(tmp_path):
    path = _toml(tmp_path, 'preset = "jeit_stt"\n')
    with pytest.raises(ConfigError, match=r"the file's preset 'jeit_stt' differs from --preset "
                       r"nand_spin"):
        load_config_file(path, preset_name="nand_spin")
    with pytest.raises(ConfigError, match=r"cannot read the file"):
        load_config_file(tmp_path / "missing.toml")


@pytest.mark.parametrize("argv, message", [
    (["--data-words", "5000"], r"^error: --data-words: data_words must be a power of two in "
     r"\[64, 65536\], not 5000$"),
    (["--patch-mask-bits", "seven"], r"^error: --patch-mask-bits must be a power of two in "
     r"\[8, 128\], not 'seven'$"),
    (["--requant-channels", "0"], r"^error: --requant-channels: requant_channels must be an "
     r"int in \[1, 4096\], not 0$"),
])
def test_cli_refuses_bad_sizes_in_one_line(capsys, argv, message):
    assert main(["run", "--model", "digits_addernet", "-n", "1", "--quiet", *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert __import__("re").match(message, err.strip())


def test_conv_map_option_sets_the_mapping_over_the_file(capsys, tmp_path):
    """``--conv-map`` (``sim.config_file.add_size_options``): after the configuration file, as
    the size options; ``fig10`` adds the route the mapping runs on; a bad value is one line
    naming the option, the value and the allowed ones, in the library and on the command
    line; the option reaches the compiler (``sim.analysis.counting``: layer 0 of
    digits_addernet on the nand_inmem route only with ``--conv-map fig10``)."""
    import json
    from sim.analysis.counting import main as count_main
    path = _toml(tmp_path, 'preset = "nand_spin"\nconv_map = "gather"\n')
    name, cfg = resolve_config(preset_name=None, config_file=path, conv_map="fig10")
    assert (name, cfg.conv_map) == ("nand_spin", "fig10")
    assert cfg.routes == preset("nand_spin").routes     # nand_inmem in it already (issue 14)
    assert resolve_config(preset_name="jeit_stt", config_file=None,     # added where missing
                          conv_map="fig10")[1].routes == preset("jeit_stt").routes + ("nand_inmem",)
    assert resolve_config(preset_name="nand_spin", config_file=path)[1].conv_map == "gather"
    with pytest.raises(ConfigError, match=r"^--conv-map must be one of gather, fig10, not "
                       r"'fig7'$"):
        resolve_config(preset_name="nand_spin", conv_map="fig7")
    assert main(["run", "--model", "digits_addernet", "-n", "1", "--quiet",
                 "--conv-map", "Fig10"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --conv-map must be one of gather, "
                                               "fig10, not 'Fig10'")
    routes = {}
    for cm in ("gather", "fig10"):
        out = tmp_path / f"{cm}.json"
        assert count_main(["--model", "digits_addernet", "--conv-map", cm,
                           "--json", str(out)]) == 0
        stage = json.loads(out.read_text())["stages"][0]
        routes[cm] = (stage["counters"]["bitcount"] > 0, stage["counters"]["and_fu"] > 0)
    capsys.readouterr()
    # (BITCOUNT with gather too: nand_spin post-processes in memory, issue 14)
    assert routes == {"gather": (True, True), "fig10": (True, False)}


def test_cli_refuses_a_bad_config_file(capsys, tmp_path):
    path = _toml(tmp_path, "offset_entry = 2048\n")
    assert main(["run", "--model", "digits_addernet", "-n", "1", "--quiet",
                 "--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: --config {path}: unknown key 'offset_entry'; did you mean "
                   f"'offset_entries'?")


def test_every_field_is_a_config_key_and_has_an_option():
    from sim.cli import build_parser
    from sim.config_file import CONFIG_KEYS
    names = {f.name for f in dataclasses.fields(AcceleratorConfig)}
    assert set(CONFIG_KEYS) == names | {"preset"}
    run = build_parser()._subparsers._group_actions[0].choices["run"]
    options = {a.dest: a.option_strings for a in run._actions}
    for field in SIZE_FIELDS:
        assert options[field] == ["--" + field.replace("_", "-")]


def test_a_mat_narrower_than_the_presets_elaborates():
    """``Core(config=preset, subarrays=K)`` with K below the preset's ``subarrays_per_mat``
    (``make report MAT=4`` on nand_spin's 16): the lanes span the K-subarray mat row, and their
    configuration must not be re-validated at the preset's 16 subarrays of that row's width
    (16 x 512 columns broke the 4096-column bound, a ValueError at elaboration)."""
    from amaranth.hdl import Fragment
    cfg = dataclasses.replace(preset("nand_spin"), rows=16, columns=256, subarrays_per_mat=16)
    core = Core(config=cfg, subarrays=2, faults=False, imem_depth=16, buffer_slots=4,
                channels=2, out_depth=16, offset_depth=4, patch_depth=4)
    Fragment.get(core, None)
    assert core.lanes


def test_a_pool_window_too_tall_names_the_rows_and_the_mat_that_fit_it():
    """Issue 15's "Bad input": a layer a preset cannot run names what would make it run. A 2x2
    pool's four patches of a 64-channel 3x3 adder layer take 4 x 5 tiles x 8 planes = 160 rows
    on nand_spin's 128-column subarray (576 terms in 5 tiles), more than rows=64 hold: the
    error names rows >= 160 and a mat of 3 (2 tiles of 384 columns: 64 rows). Each
    proposal compiles and agrees with golden on the cycle model; one less does not compile."""
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 256, (1, 64, 6, 6)).astype(np.uint8)
    conv = make_layer("adder_conv2d", rng, x, out_ch=4)
    pool = Layer(kind="max_pool2d", output="requant", params={"kernel": 2, "stride": 2})
    model = single_layer_model([conv, pool], (64, 6, 6))
    base = dataclasses.replace(preset("nand_spin"), rows=64, postproc="ppu")
    with pytest.raises(CompileError) as err:
        compile_model(model, base, subarrays=1)
    assert str(err.value).endswith("it would fit with rows >= 160, or a mat of at least 3 "
                                   "subarrays")
    with pytest.raises(CompileError):
        compile_model(model, base, subarrays=2)
    with pytest.raises(CompileError):
        compile_model(model, dataclasses.replace(base, rows=152), subarrays=1)
    trace = golden_trace(model, x[0])
    for cfg, k in ((dataclasses.replace(base, rows=160), 1), (base, 3)):
        compiled = compile_model(model, cfg, subarrays=k)
        res = run_compiled(compiled, x[0], CoreModel(cfg, subarrays=k))
        check_equal(f"rows={cfg.rows}, mat of {k}", res.outputs[-1], trace[-1], SEED)
