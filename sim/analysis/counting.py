"""Counting mode: the cycles, every counter and the energy of a compiled network from its
programs' structure, without executing it: ``python -m sim.analysis.counting`` (``make count``).

The cycle model (``sim.hw.core_model.CoreModel``) plays every micro-op of every chunk program
through the datapath, a few images per second on a 1 MOP network. Its counters (``cycles``,
``stalls``, one per opcode, ``rtl.isa.counter_names``) do not depend on the data except with
zero skipping, so they follow from the programs alone:

* a chunk program is a loop nest (``LOOP n .. ENDLOOP``, at most ``rtl.isa.LOOP_DEPTH`` deep)
  of straight-line micro-ops and NOPs. One pass of a block is summarised by its counts per
  opcode, its cycles (one per instruction; a LOOP one cycle; an ENDLOOP folded into the NOP or
  micro-op before it, else a cycle of its own, as ``sim.hw.isa_model``), its first and last
  micro-op (opcode and cycle offset) and the stall cycles inside it. A loop of ``n`` passes of
  period ``P`` is ``n`` times its body plus the ``n - 1`` hand-overs from the body's last
  micro-op to its first, ``P - last + first`` cycles apart. Blocks compose in order the same
  way: the cost is linear in the program words, not in the micro-ops issued;
* stalls (``AcceleratorConfig.op_cycles``, ``sim.hw.core_model.add_stalls``): a micro-op of ``c``
  cycles followed ``g`` cycles later (without stalls) by the next micro-op holds it
  ``max(0, c - g)`` cycles; every hold shifts everything after it alike, so the stall count is
  the sum of the holds of consecutive micro-op pairs, which the block summaries carry;
* ``cycles`` = the cycles without stalls + the HALT's + the stalls (``PIPELINE_DRAIN`` is not
  a counter; the report adds nothing for it either).

Zero skipping (``config.zero_skip``, the ``jeit_stt`` preset): a ``MOVE SKIPZ`` before each
tile dot of a zero-skipped stage skips the dot when its tile was gathered all zero, which only
the data tell. The counting mode takes the *skipped tile dots* of each stage as input, a
fraction of the stage's dots (given, e.g. 0.3) or a count (measured, :func:`measure_skips`;
``--measure N`` on the command line: the mean image of N test images). A skipped dot takes
out its ``b`` micro-ops (by opcode) and the cycles the cycle model takes out
(``sim.hw.core_model.CoreModel._execute_skipping``): the held MOVE's extra cycles plus each dot
micro-op's cycles, the stalls among them included. The zero-skip counters
(``rtl.isa.ZERO_SKIP_COUNTERS``): ``zs_operands`` (every GATHER) is data-independent;
``zs_tiles`` (the skipped dots) and ``zs_cycles_saved`` (their SKIPZ ``d``) follow from the
input; ``zs_zero`` (zero operands) and ``zs_skipped`` (operands of all-zero tiles) are data
counters that change no cycle and no energy: taken from the input when given (measured), else
``zs_skipped`` is estimated as (skipped dots / output channels) x the stage's mean operands per
tile and ``zs_zero`` is left None.

Energy, latency, GOPS and GOPS/W: ``sim.hw.energy.estimate`` on the counters summed over the
stages, as ``sim.analysis.report`` computes its per-image figures (``columns_active`` the mat width;
with seed 002's class split a class stage's over its class's subarrays,
``sim.compile.dima_map.gate_report``; ``ops`` the golden layers'
``sim.analysis.report.stage_ops``, the host's data words and program
words
of one image, ``sim.analysis.report.host_port_words``).

Validated counter for counter against the cycle model (``tests/test_counting.py``): every
bundled model on every preset that compiles it, and random layers.
"""

from __future__ import annotations

import argparse
import functools
import shlex
import sys
import time
from dataclasses import dataclass, field

from rtl.config import SIZE_FIELDS
from rtl.isa import MoveOp, Opcode, ZERO_SKIP_COUNTERS, counter_index, counter_names, decode
from rtl.outputs import check_file, interruptible, json_text, write_files

from sim.compile import asm
from sim.util import UserError

__all__ = ["CountError", "ProgramCount", "StageCount", "ModelCount", "count_program",
           "count_model", "measure_skips", "stage_figures", "main"]

_MASK = (1 << 32) - 1
_NOP, _LOOP, _ENDLOOP, _HALT = Opcode.NOP, Opcode.LOOP, Opcode.ENDLOOP, Opcode.HALT
_CONTROL = (_NOP, _LOOP, _ENDLOOP, _HALT)
_NAMES = counter_names()
_OP_VALUE = {op: op.value for op in Opcode}
_OP_INDEX = {op.value: counter_index(op) for op in Opcode}
_MOVE_CODE = Opcode.MOVE.value
_GATHER_IMM, _SKIPZ_IMM = MoveOp.GATHER.value, MoveOp.SKIPZ.value


class CountError(UserError):
    """A program or an input the counting mode cannot count (the message says which)."""


# ---- one program -------------------------------------------------------------------------------

@dataclass
class ProgramCount:
    """Counters of one run of a program (:func:`count_program`).

    ``counters``: by name (``rtl.isa.counter_names``), as the cycle model's ``CoreRun``;
    ``gathers``: ``MOVE GATHER`` micro-ops; ``skip_sites``: per zero-skip site signature
    ``(b, d, cycles, dropped)`` (``dropped`` a tuple of ``(opcode value, count)``) the
    ``SKIPZ`` micro-ops issued with it.
    """
    counters: dict
    gathers: int
    skip_sites: dict = field(default_factory=dict)


@functools.lru_cache(maxsize=1 << 16)
def _decode(word: int, base_bits: int):
    """``rtl.isa.decode``, cached: a stage's chunk programs share most of their words."""
    return decode(word, base_bits)


def _parse(words, base_bits: int):
    """The loop nest of a program: a block is a list of items, an item an ``Instr`` or
    ``(count, block)``; the instructions after the first HALT are not part of it."""
    instrs = []
    for addr, w in enumerate(words):
        try:
            instrs.append(_decode(int(w), base_bits))
        except ValueError as e:
            raise CountError(f"program word {addr}: {e}") from None
        if instrs[-1].op is _HALT:
            break
    try:                                # the controller's rules: loop depth, operand levels
        asm.check_program(instrs)
    except ValueError as e:
        raise CountError(f"not a well-formed program: {e}") from None
    root: list = []
    stack = [root]
    halted = False
    for addr, ins in enumerate(instrs):
        if ins.op is _HALT:
            halted = True
            break
        if ins.op is _LOOP:
            body: list = []
            stack[-1].append((ins.count, body))
            stack.append(body)
        elif ins.op is _ENDLOOP:
            if len(stack) == 1:
                raise CountError(f"program word {addr}: ENDLOOP without a LOOP")
            stack.pop()
        else:
            stack[-1].append(ins)
    if not halted:
        raise CountError("the program has no HALT (it would run off the end)")
    if len(stack) != 1:
        raise CountError("the program's HALT lies inside a loop")
    return root


def count_program(words, config) -> ProgramCount:
    """The counters of one run of ``words`` on a core of ``config`` (its ISA format and stall
    table) from the loop structure: exactly ``sim.hw.core_model.CoreModel.run``'s for a
    well-formed program without zero skipping (a taken SKIPZ is :func:`count_model`'s
    business; the sites are returned).

    Raises
    ------
    CountError
        An undecodable word, no HALT, a HALT inside a loop, an unbalanced ENDLOOP, or a SKIPZ
        whose skipped micro-ops are not straight-line micro-ops followed by a micro-op.
    """
    cyc = {op.value: c for op, c in config.op_cycles.items()}
    move_cycles = cyc.get(Opcode.MOVE.value, 1)
    counts = [0] * len(_NAMES)
    gathers = 0
    sites: dict = {}
    i_loop, i_endloop = counter_index(_LOOP), counter_index(_ENDLOOP)

    def block(items, mult: int):
        """``(cycles, first, last, stalls)`` of one pass of ``items`` (first / last: the
        micro-op's ``(opcode value, offset)`` or None); adds its counts x ``mult``."""
        nonlocal gathers
        cycles = stalls = 0
        first = last = None
        for i, item in enumerate(items):
            if isinstance(item, tuple):
                n, body = item
                b_cyc, b_first, b_last, b_stalls = block(body, mult * n)
                period = b_cyc + (0 if body and not isinstance(body[-1], tuple) else 1)
                counts[i_loop] += mult
                counts[i_endloop] += mult * n
                if b_first is not None and n:
                    if last is not None:
                        stalls += max(0, cyc.get(last[0], 1) - (cycles + 1 + b_first[1]
                                                                  - last[1]))
                    if first is None:
                        first = (b_first[0], cycles + 1 + b_first[1])
                    last = (b_last[0], cycles + 1 + (n - 1) * period + b_last[1])
                    stalls += n * b_stalls + (n - 1) * max(
                        0, cyc.get(b_last[0], 1) - (period - b_last[1] + b_first[1]))
                cycles += 1 + n * period
                continue
            op = item.op
            code = _OP_VALUE[op]
            counts[_OP_INDEX[code]] += mult
            if op is _NOP:
                cycles += 1
                continue
            if last is not None:
                stalls += max(0, cyc.get(last[0], 1) - (cycles - last[1]))
            if first is None:
                first = (code, cycles)
            last = (code, cycles)
            cycles += 1
            if code == _MOVE_CODE:
                if item.imm == _GATHER_IMM:
                    gathers += mult
                elif item.imm == _SKIPZ_IMM and config.zero_skip:
                    _skip_site(items, i, item, cyc, move_cycles, sites, mult)
        return cycles, first, last, stalls

    top_cycles, _, _, top_stalls = block(_parse(words, config.isa_base_bits), 1)
    counts[counter_index(_HALT)] += 1
    counts[0] = top_cycles + 1 + top_stalls
    counts[1] = top_stalls
    return ProgramCount(dict(zip(_NAMES, (v & _MASK for v in counts), strict=True)),
                        gathers, sites)


def _skip_site(items, i, item, cyc, move_cycles, sites, mult) -> None:
    """Record the SKIPZ ``items[i]``: its signature ``(b, d, cycles a taken one saves,
    dropped micro-ops by opcode)`` issued ``mult`` times. NOPs after the window (``jeit_fa``'s
    flush) are not skipped; the last skipped micro-op's hold overlaps them."""
    nb = item.b.base
    g = 0                               # NOPs between the window and the next micro-op
    while (i + 1 + nb + g < len(items) and not isinstance(items[i + 1 + nb + g], tuple)
           and items[i + 1 + nb + g].op is _NOP):
        g += 1
    skip = items[i + 1:i + 1 + nb] + items[i + 1 + nb + g:i + 2 + nb + g]
    if len(skip) != nb + 1 or any(isinstance(x, tuple) or x.op in _CONTROL for x in skip):
        raise CountError(f"a MOVE SKIPZ b={nb} is not followed by {nb} straight-line "
                         f"micro-ops and a micro-op (not built yet: only the compiler's tile "
                         f"dots are counted)")
    dropped: dict = {}
    for x in skip[:-1]:
        dropped[x.op.value] = dropped.get(x.op.value, 0) + 1
    cycles = move_cycles - 1 + sum(cyc.get(x.op.value, 1) for x in skip[:-1])
    if nb and g:                        # the hold of the last one runs on during the NOPs
        last = cyc.get(skip[nb - 1].op.value, 1)
        cycles += max(last, 1 + g) - g - last
    key = (nb, item.d.base, cycles, tuple(sorted(dropped.items())))
    sites[key] = sites.get(key, 0) + mult


# ---- a compiled model --------------------------------------------------------------------------

@dataclass
class StageCount:
    """One stage's counters for one image (summed over its chunks): ``counters`` by name,
    ``zero_skip`` (``rtl.isa.ZERO_SKIP_COUNTERS``; empty without zero skipping; ``zs_zero``
    None when not given), ``dots``: the tile dots a zero-skip could skip (its SKIPZ
    micro-ops), ``skipped``: those counted as skipped, ``zs_skipped_estimated``: whether
    ``zs_skipped`` is an estimate."""
    name: str
    layer_index: int
    counters: dict
    zero_skip: dict
    dots: int = 0
    skipped: int = 0
    zs_skipped_estimated: bool = False


@dataclass
class ModelCount:
    """:func:`count_model`'s result for one image: ``counters`` summed over the stages,
    ``zero_skip`` likewise, ``stages``, and (with a model) ``ops``, ``host`` (the host's data
    words and port cycles) and ``estimate`` (``sim.hw.energy.Report.to_dict()``)."""
    counters: dict
    zero_skip: dict
    stages: list
    ops: int | None = None
    host: dict = field(default_factory=dict)
    estimate: dict | None = None


def _check_skip(si: int, value, dots: int, name: str):
    """Skipped dots of stage ``si`` from a fraction (float in [0, 1]) or a count (int)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CountError(f"skipped[{si}] ({name}) must be a fraction in [0, 1] or a count of "
                         f"tile dots, not {value!r}")
    if isinstance(value, float):
        if not 0.0 <= value <= 1.0:
            raise CountError(f"skipped[{si}] ({name}) must be a fraction in [0, 1], not {value}")
        return value
    if not 0 <= value <= dots:
        raise CountError(f"skipped[{si}] ({name}) must be a count of tile dots in [0, {dots}], "
                         f"not {value}")
    return int(value)


def count_model(compiled, model=None, *, skipped=None, data_counts=None,
                images: int = 1) -> ModelCount:
    """Counters (and, with ``model``, energy and throughput) of one image of ``compiled``
    (``sim.compile.compiler.CompiledModel``) from its programs.

    Parameters
    ----------
    compiled : sim.compile.compiler.CompiledModel
    model : golden.model.Model or None
        The model ``compiled`` was compiled from: gives the ops (``sim.analysis.report.stage_ops``)
        for
        the energy estimate; None: counters only.
    skipped : None, float, int or sequence
        Zero skipping only (``config.zero_skip``): the tile dots skipped per stage, a fraction
        of its dots (float in [0, 1]) or a count (int), one for every stage or a sequence of
        one per stage. None: no dot skipped (every zero-skipped stage at its worst case).
    data_counts : sequence of dict or None
        Zero skipping only: per stage the measured ``zs_zero`` / ``zs_skipped`` (the data
        counters, :func:`measure_skips`), reported as given.
    images : int
        Images the host streams (``sim.analysis.report.host_port_words``); the figures are those of
        the mean image.

    Raises
    ------
    CountError
        A bad ``skipped`` / ``data_counts`` (the message names the stage, the value and what
        is allowed), or a program the counting mode cannot count.
    """
    cfg = compiled.config
    stages = compiled.stages
    if skipped is not None and not cfg.zero_skip:
        raise CountError(f"skipped is given but the configuration has no zero skipping "
                         f"(zero_skip is off; only {', '.join(_zero_skip_presets())} skip)")
    if skipped is None or isinstance(skipped, (int, float)):
        skipped = [skipped] * len(stages)
    else:
        skipped = list(skipped)
        if len(skipped) != len(stages):
            raise CountError(f"skipped must have one entry per stage ({len(stages)}), not "
                             f"{len(skipped)}")
    if data_counts is not None and len(data_counts) != len(stages):
        raise CountError(f"data_counts must have one entry per stage ({len(stages)}), not "
                         f"{len(data_counts)}")
    cache: dict = {}
    total = dict.fromkeys(_NAMES, 0)
    zs_total: dict = {}
    out = []
    for si, st in enumerate(stages):
        counters = dict.fromkeys(_NAMES, 0)
        gathers, sites = 0, {}
        for ch in st.chunks:
            pc = cache.get(ch.program)
            if pc is None:
                pc = cache[ch.program] = count_program(ch.program, cfg)
            for k, v in pc.counters.items():
                counters[k] += v
            gathers += pc.gathers
            for key, m in pc.skip_sites.items():
                sites[key] = sites.get(key, 0) + m
        dots = sum(sites.values())
        zs: dict = {}
        sc = StageCount(st.name, st.layer_index, counters, zs, dots=dots)
        if cfg.zero_skip:
            want = skipped[si]
            want = 0 if want is None else _check_skip(si, want, dots, st.name)
            if isinstance(want, int) and want and len(sites) > 1:
                raise CountError(f"stage {si} ({st.name}) has {len(sites)} kinds of tile dot; "
                                 f"give its skipped dots as a fraction (not built yet: counts "
                                 f"per kind)")
            taken = saved = 0
            for (_b, d, cycles, dropped), m in sites.items():
                k = want if isinstance(want, int) else round(want * m)
                counters["cycles"] -= k * cycles
                counters["stalls"] -= k * (cycles - _b)
                for code, c in dropped:
                    counters[_NAMES[counter_index(Opcode(code))]] -= k * c
                taken += k
                saved += k * d
            sc.skipped = taken
            given = dict(data_counts[si]) if data_counts is not None else {}
            for key in given:
                if key not in ("zs_zero", "zs_skipped"):
                    raise CountError(f"data_counts[{si}] keys must be zs_zero or zs_skipped, "
                                     f"not {key!r}")
            zs["zs_operands"] = gathers
            zs["zs_zero"] = given.get("zs_zero")
            if "zs_skipped" in given:
                zs["zs_skipped"] = given["zs_skipped"]
            else:
                tiles = _tiles_gathered(st)
                zs["zs_skipped"] = (round(taken / st.out_channels * gathers / tiles)
                                    if tiles else 0)
                sc.zs_skipped_estimated = bool(taken)
            zs["zs_tiles"] = taken
            zs["zs_cycles_saved"] = saved
            zs = {k: zs[k] for k in ZERO_SKIP_COUNTERS}
            sc.zero_skip = zs
            for k, v in zs.items():
                zs_total[k] = None if v is None or zs_total.get(k, 0) is None \
                    else zs_total.get(k, 0) + v
        for k, v in counters.items():
            total[k] += v
        out.append(sc)
    res = ModelCount(total, zs_total, out)
    if model is not None:
        _add_estimate(res, compiled, model, images)
    return res


def _tiles_gathered(stage) -> int:
    """Row sets (tiles) the stage's gather parts write with ``TBUF_ZS``, all chunks."""
    if stage.mode == "wide":
        return sum(c.patches for c in stage.chunks) * stage.tiles
    return sum(c.groups for c in stage.chunks)


def _add_estimate(res: ModelCount, compiled, model, images: int) -> None:
    from sim.hw import energy
    from sim.analysis.report import host_port_words, stage_ops
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise CountError(f"images must be an int >= 1, not {images!r}")
    ops = sum(stage_ops(model, st.layer_index)["ops"] for st in compiled.stages)
    port = host_port_words(compiled, images)
    data = sum(s["data_words"] for s in port[0])
    programs = sum(s["program_words"] for im in port for s in im) / images
    from sim.compile import weight_stream as _ws
    host_cycles = round(data + programs)
    stream = _ws.cost(compiled)         # streamed weights: bus cycles and energy, per image
    from sim.compile import act_tile as _at
    act = _at.cost(compiled)            # tiled activations' moves: likewise
    rep = energy.estimate(compiled.config, res.counters, ops=ops,
                          columns_active=compiled.width, host={"data_words": data},
                          host_cycles=host_cycles + stream["bus_cycles"] + act["bus_cycles"])
    from sim.compile.dima_map import gate_report     # seed 002: class stages on their class
    rep = gate_report(rep, compiled, [sc.counters for sc in res.stages])
    res.ops = ops
    res.host = {"data_words": data, "program_words": programs, "host_cycles": host_cycles,
                "weight_stream": stream, "act_tile": act}
    res.estimate = _at.with_cost(_with_stream(rep.to_dict(), stream), act)


def _with_stream(est: dict, stream: dict) -> dict:
    """``sim.hw.energy.Report.to_dict()`` with the streamed weights' energy (its cycles are in
    the host cycles already) added to the energy, the class "loading data" and GOPS/W."""
    if not stream["slots"] and not stream["entries"]:
        return est
    from sim.hw import energy
    return energy.with_loading(est, "host_weight_stream", stream["energy_j"])


def stage_figures(res: ModelCount, compiled, model) -> list:
    """Per stage of a count: its cycles, ops (``sim.analysis.report.stage_ops`` of its golden
    layer),
    energy, latency, GOPS and GOPS/W: ``sim.hw.energy.estimate`` on the stage's own counters with
    the host words it takes (the image's words in stage 0, the programs loaded while it runs:
    ``sim.analysis.report.host_port_words`` of one image), as :func:`count_model` does for the whole
    image; energy and cycles being linear in the counts, the stages add up to the image's."""
    from sim.hw import energy
    from sim.compile import weight_stream as _ws
    from sim.analysis.report import host_port_words, stage_ops
    from sim.compile.dima_map import stage_columns
    port = host_port_words(compiled, 1)[0]
    stream = _ws.cost(compiled)
    from sim.compile import act_tile as _at
    act = _at.cost(compiled)["per_stage"]
    rows = []
    for sc, st, hp, part, mv in zip(res.stages, compiled.stages, port, stream["per_stage"],
                                    act, strict=True):
        ops = stage_ops(model, st.layer_index)["ops"]
        rep = _at.with_cost(_with_stream(energy.estimate(
            compiled.config, sc.counters, ops=ops,
            columns_active=stage_columns(st, compiled.width, compiled.config.columns),
            host={"data_words": hp["data_words"]},
            host_cycles=hp["data_words"] + hp["program_words"] + part["bus_cycles"]
            + mv["bus_cycles"]).to_dict(), part), mv)
        rows.append({"stage": st.name, "layer_index": st.layer_index,
                     "cycles": sc.counters["cycles"], "ops": ops,
                     "energy_j": rep.get("energy_j"), "latency_s": rep.get("latency_s"),
                     "gops": rep.get("gops"), "gops_per_w": rep.get("gops_per_w")})
    return rows


def _zero_skip_presets() -> tuple:
    from rtl.config import PRESETS
    return tuple(n for n, c in PRESETS.items() if c.zero_skip)


def measure_skips(compiled, x, core=None) -> tuple[list, list]:
    """Run images ``x`` on the cycle model and return, per stage, the tile dots skipped
    (``zs_tiles`` summed over the images, an int per image if one image) and the data
    counters (``zs_zero``, ``zs_skipped``): the inputs :func:`count_model` takes, measured.
    For several images the counts are summed; divide by the images for a mean image (or
    pass each image's own). Returns ``(skipped per stage, data counts per stage)``."""
    from sim.compile.compiler import run_compiled
    from sim.hw.core_model import CoreModel
    if core is None:
        core = CoreModel(compiled.config, subarrays=compiled.subarrays)
    skipped = [0] * len(compiled.stages)
    data = [{"zs_zero": 0, "zs_skipped": 0} for _ in compiled.stages]
    for i, img in enumerate(x):
        r = run_compiled(compiled, img, core, load_weights=i == 0)
        for si, sr in enumerate(r.stages):
            skipped[si] += sr.zero_skip.get("zs_tiles", 0)
            for k in data[si]:
                data[si][k] += sr.zero_skip.get(k, 0)
    return skipped, data


# ---- command line ------------------------------------------------------------------------------

def _parse_skip(text: str | None, n_stages: int):
    if text is None:
        return None
    parts = text.split(",")
    try:
        vals = [float(p) for p in parts]
    except ValueError:
        vals = None
    if vals is None or any(not (0.0 <= v <= 1.0) for v in vals) \
            or len(vals) not in (1, n_stages):
        raise CountError(f"--skip must be one fraction in [0, 1] or {n_stages} comma-separated "
                         f"ones (one per stage), not {text!r}")
    return vals[0] if len(vals) == 1 else vals


def _measured(compiled, model, text: str, ds_name):
    """``--measure N``: per stage the mean fraction of tile dots skipped over the first N
    test images (cycle model), and the mean data counters."""
    x = _measure_images(model, text, ds_name)
    n = len(x)
    t0 = time.perf_counter()
    skipped, data = measure_skips(compiled, x)
    dots = [s.dots for s in count_model(compiled).stages]
    frac = [k / (n * d) if d else 0.0 for k, d in zip(skipped, dots, strict=True)]
    mean = [{k: round(v / n) for k, v in d.items()} for d in data]
    return frac, mean, (f"; skips measured on {n} {ds_name} images in "
                        f"{time.perf_counter() - t0:.1f} s")


def _measure_images(model, text: str, ds_name):
    """``--measure N``: the first N test images of ``ds_name`` for ``model``, or a one-line
    UserError."""
    from golden import datasets
    if ds_name not in ("fashion_mnist", "digits"):
        raise UserError(f"--dataset must be fashion_mnist or digits, not {ds_name!r}")
    try:
        x, _ = datasets.load_dataset(ds_name, "test")
    except (ValueError, datasets.DatasetError) as e:
        raise UserError(str(e)) from None
    try:
        n = int(text)
    except ValueError:
        n = 0
    if not 1 <= n <= len(x):
        raise UserError(f"--measure must be an int in [1, {len(x)}] (the {ds_name} test "
                        f"split), not {text!r}")
    if x.shape[1:] != tuple(model.input_shape):
        raise UserError(f"model {model.name!r} expects inputs {list(model.input_shape)}, "
                        f"data set {ds_name!r} has {list(x.shape[1:])}")
    return x[:n]


def figures(res: ModelCount) -> dict:
    """The headline figures of a count with an estimate: cycles, stalls, energy (J), latency
    (s), GOPS, GOPS/W, ops."""
    e = res.estimate or {}
    return {"cycles": res.counters["cycles"], "stalls": res.counters["stalls"],
            "ops": res.ops, "energy_j": e.get("energy_j"), "latency_s": e.get("latency_s"),
            "gops": e.get("gops"), "gops_per_w": e.get("gops_per_w")}


def to_dict(res: ModelCount) -> dict:
    """A JSON-able dict of a :class:`ModelCount`."""
    return {"figures": figures(res), "counters": res.counters, "zero_skip": res.zero_skip,
            "host": res.host, "estimate": res.estimate,
            "stages": [{"name": s.name, "layer_index": s.layer_index, "counters": s.counters,
                        "zero_skip": s.zero_skip, "dots": s.dots, "skipped": s.skipped,
                        "zs_skipped_estimated": s.zs_skipped_estimated}
                       for s in res.stages]}


def table(res: ModelCount) -> str:
    """The count as text: per stage cycles, stalls and the largest opcode counts; the total
    with energy, latency, GOPS and GOPS/W."""
    lines = []
    for s in res.stages:
        c = s.counters
        ops = sorted(((v, k) for k, v in c.items() if k not in ("cycles", "stalls") and v),
                     reverse=True)[:4]
        skip = f"  skipped {s.skipped}/{s.dots} dots" if s.dots else ""
        lines.append(f"  {s.name:44s} {c['cycles']:>12,} cycles {c['stalls']:>10,} stalls  "
                     + ", ".join(f"{k} {v:,}" for v, k in ops) + skip)
    f = figures(res)
    lines.append(f"total: {f['cycles']:,} cycles ({f['stalls']:,} stalls)")
    ws = (res.host or {}).get("weight_stream") or {}
    if ws.get("slots"):
        lines.append("weights streamed (sim.compile.weight_stream): "
                     f"{ws['slots']:,} buffer words and "
                     f"{ws['entries']:,} requant entries per image, {ws['bus_cycles']:,} bus "
                     f"cycles, {ws['energy_j'] * 1e6:.4g} uJ (in the latency and energy below)")
    at = (res.host or {}).get("act_tile") or {}
    if at.get("words"):
        lines.append("activations tiled (sim.compile.act_tile): "
                     f"{at['loads']:,} words loaded and {at['stores']:,} stored per image, "
                     f"{at['bus_cycles']:,} bus cycles, {at['energy_j'] * 1e6:.4g} uJ (in the "
                     f"latency and energy below)")
    if res.estimate:
        lines.append(f"energy {f['energy_j'] * 1e6:.4g} uJ, latency {f['latency_s'] * 1e3:.4g} "
                     f"ms, {f['ops']:,} ops, {f['gops']:.4g} GOPS, {f['gops_per_w']:.4g} GOPS/W")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from sim.config_file import add_size_options
    p = argparse.ArgumentParser(prog="python -m sim.analysis.counting",
                                description=__doc__.splitlines()[0])
    p.add_argument("--model", default="fashion_addernet",
                   help="bundled model name or path of a .npz model file")
    p.add_argument("--preset", default=None,
                   help="accelerator preset (default: the --config file's, else nand_spin)")
    p.add_argument("--dataflow", help="override the preset's dataflow for adder layers")
    p.add_argument("--mat", help="subarrays per mat (default: the preset's subarrays_per_mat)")
    p.add_argument("--propose", action="store_true",
                   help="raise every size the model needs (sim.compile.compiler.propose_config)")
    p.add_argument("--postproc", default=None,
                   help="post-processing (default: the preset's; nand_spin's is mixed): ppu, "
                   "in_memory or mixed (sim.compile.nand_postproc)")
    p.add_argument("--stream-weights", action="store_true",
                   help="stream weights that do not fit the weight buffer into it per layer "
                   "(sim.compile.weight_stream), their bus cycles and energy counted")
    p.add_argument("--tile-activations", action="store_true",
                   help="run stages whose activations do not fit the data memory in bands of "
                   "output rows moved to and from a chip-level store (sim.compile.act_tile), "
                   "their bus cycles and energy counted")
    p.add_argument("--skip", default=None,
                   help="zero skipping: the fraction of tile dots skipped, one for all stages "
                   "or one per stage (comma-separated); default none skipped")
    p.add_argument("--measure", default=None, metavar="N",
                   help="zero skipping: measure the skipped dots per stage on the cycle model "
                   "over the first N test images of the model's data set (--dataset) and count "
                   "their mean image (with --mats: every mat's slice measured on its own input)")
    p.add_argument("--dataset", default=None,
                   help="fashion_mnist or digits (--measure; default: the bundled model's)")
    add_size_options(p)
    p.add_argument("--json", default=None, help="write the count as JSON to this path")
    p.add_argument("--mats", default=None, metavar="M",
                   help="partition the model over M mats, one output-channel slice per mat "
                   "(sim.compile.multi_mat; sim.analysis.multi_mat sweeps M)")
    return p


@interruptible("python -m sim.analysis.counting", "nothing was written")
def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    from golden.model import ModelFormatError
    try:
        from sim.cli import _resolve_model
        from sim.compile.compiler import CompileError, compile_model, propose_config
        from sim.compile.nand_postproc import postproc_lines, postproc_summary, with_postproc
        from sim.config_file import resolve_config
        from sim.util import parse_mat
        name, config = resolve_config(
            preset_name=args.preset, config_file=args.config,
            sizes={f: getattr(args, f) for f in SIZE_FIELDS}, dataflow=args.dataflow,
            conv_map=args.conv_map)
        if args.postproc is not None:
            config = with_postproc(config, args.postproc)
        mat = parse_mat(args.mat, config, name) or config.subarrays_per_mat
        out = check_file("--json", args.json) if args.json else None
        model, ds_name, _ = _resolve_model(args.model)
        if args.measure is not None and args.skip is not None:
            raise UserError("give --skip or --measure, not both")
        if args.measure is not None and not config.zero_skip:
            raise UserError(f"--measure: the configuration has no zero skipping (zero_skip is "
                            f"off; only {', '.join(_zero_skip_presets())} skip)")
        t0 = time.perf_counter()
        if args.mats is not None:       # issue 15 item 3: sim.analysis.multi_mat
            return _multi_mat(args, model, config, name, mat, out, argv,
                              args.dataset or ds_name)
        try:
            if args.propose:
                config = propose_config(model, config, subarrays=mat,
                                        stream_weights=args.stream_weights,
                                        tile_activations=args.tile_activations)
            compiled = compile_model(model, config, subarrays=mat,
                                     stream_weights=args.stream_weights,
                                     tile_activations=args.tile_activations)
        except CompileError as e:
            raise UserError(f"--preset {name} --mat {mat}: model {model.name!r} does not "
                            f"compile: {e}") from None
        t1 = time.perf_counter()
        skipped, data, note = _parse_skip(args.skip, len(compiled.stages)), None, ""
        if args.measure is not None:
            skipped, data, note = _measured(compiled, model, args.measure,
                                            args.dataset or ds_name)
            t1 = time.perf_counter()
        res = count_model(compiled, model, skipped=skipped, data_counts=data)
        t2 = time.perf_counter()
    except (UserError, ModelFormatError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{model.name} on {name} (mat of {mat} subarrays, {compiled.width} columns): "
          f"{len(compiled.stages)} stages, {sum(len(s.chunks) for s in compiled.stages)} chunk "
          f"runs per image; compile {t1 - t0:.2f} s, count {t2 - t1:.3f} s{note}")
    print(table(res))
    pp = postproc_summary(compiled, [st.counters for st in res.stages])
    for line in postproc_lines(pp):
        print(line)
    if out is not None:
        doc = {"postproc": pp, "model": model.name, "preset": name, "subarrays": mat,
               "config": config.as_dict(), "compile_seconds": round(t1 - t0, 3),
               "count_seconds": round(t2 - t1, 3),
               "command": shlex.join(["python", "-m", "sim.analysis.counting", *argv]),
               **to_dict(res)}
        write_files({out: json_text(doc)}, option="--json")
        print(f"wrote {out}")
    return 0


def _multi_mat(args, model, config, name, mat, out, argv, ds_name) -> int:
    """``--mats M``: the model partitioned over M mats (``sim.analysis.multi_mat``); with
    ``--measure N`` each mat's slice measured on the cycle model over N test images
    (``sim.analysis.multi_mat.measure_skips``)."""
    from sim.analysis import multi_mat as _mm
    skipped = _mm.parse_skip(args.skip, config)     # one fraction: every stage of every mat
    images = None
    if args.measure is not None:    # zero skipping measured per slice
        images = _measure_images(model, args.measure, ds_name)
    res, _ = _mm.run_printed(model, config, args.mats, args, name,
                             f"--preset {name} --mat {mat} --mats {args.mats}", subarrays=mat,
                             skipped=skipped, images=images)
    skipped = res.get("skipped", skipped)
    if out is not None:
        doc = {"model": model.name, "preset": name, "subarrays": mat, "skipped": skipped,
               "command": shlex.join(["python", "-m", "sim.analysis.counting", *argv]),
               **{k: v for k, v in res.items() if k != "segments"},
               "segments": [{k: v for k, v in s.items() if k != "mats"}
                            for s in res["segments"]]}
        write_files({out: json_text(doc)}, option="--json")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
