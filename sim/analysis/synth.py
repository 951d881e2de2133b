"""Logic synthesis of the core as instantiated, with minimisation:
``python -m sim.analysis.synth --preset NAME [--mat K] [--out build/synth]``.

The Verilog of ``rtl.core.Core`` for one mat of ``K`` subarrays (the configuration the report
measures, ``subarrays_per_mat = K``; the sensing-fault injection left out: a test aid, not
hardware) is exported by Amaranth and synthesised by the system Yosys (Debian's ``yosys``
0.23, which has ABC) with :data:`FLOW`:

* the MTJ arrays (``rtl.mtj_array``, behavioral models of the MRAM macro) are blackboxes: their
  area is :func:`sim.hw.energy.array_area_mm2`;
* ``proc -norom`` (a ``case`` stays logic instead of becoming a ROM), then Yosys' ``synth``
  script up to its fine stage (coarse optimisation, FSM extraction, ``alumacc``, resource
  sharing, ``memory -nomap``), then the fine stage WITHOUT ``memory_map``: every memory of the
  core stays one ``$mem_v2`` macro (sized and costed by :mod:`sim.hw.sram`, never flip-flops);
* ``techmap``, flip-flops legalised to plain D flip-flops (enables and synchronous resets
  become gates, so every cell has a library cell), and ``abc`` onto the gates of
  :data:`CELL_AREA_UM2` (AND, NAND, OR, NOR, XOR, XNOR, MUX, AOI/OAI 2-1 and 2-2).

Cell counts become area with the X1 cell areas of the NanGate FreePDK45 Open Cell Library
(:data:`CELL_AREA_UM2`), and NAND2 equivalents = area / NAND2_X1 area. The logic area of the
mat is that sum over the placement density (``sim.hw.energy.PERIPHERY['utilisation']``).

The same flow without ``-flatten`` (:func:`synthesize_core_blocks`, ABC per module) gives the
cell area of each block of the core (controller, lanes, column reductions, PPU, the core's
own logic), cached in ``...-blocks.json``: it splits the flattened area among the blocks for
the logic energy per block (:mod:`sim.hw.activity`).

Where nothing is cached (a fresh clone: ``build/`` is not committed), :func:`load_fit` reads
the syntheses committed in :data:`FIT_PATH` (``--write-fit``): at a stored K the synthesis
itself, elsewhere a calibrated fit of the per-block cell areas, a line in K per block family
through the stored K, checked against a held-out K; labelled on every figure, and marked stale
when ``rtl/`` has changed since (its hash, :func:`rtl_hash`, is stored with the data).

Results are cached per configuration in ``<out>/core-<preset>-k<K>-<key>.json``, the key a
hash of the configuration, K, the flow and the source of ``rtl/`` (:func:`cache_key`), so the
report reads them without synthesising. A run takes minutes (nand_spin, K = 4: about 3 CPU
minutes); ``make synth`` does it, the test suite does it only on a tiny core
(``SPINPIM_SYNTH_TESTS=1``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from rtl.config import AcceleratorConfig, preset, preset_names
from rtl.outputs import UserError, check_file, interruptible, write_json
from sim.hw.device import Param

__all__ = ["FLOW", "CELL_AREA_UM2", "NAND2_UM2", "SynthError", "yosys_version", "core_verilog",
           "synthesize_verilog", "synthesize_core", "cache_key", "cache_path", "load_cached",
           "logic_area_um2", "synthesize_blocks", "block_areas", "blocks_cache_path",
           "synthesize_core_blocks", "load_cached_blocks", "FIT_PATH", "rtl_hash", "NOT_NETLIST",
           "netlist_sources", "fit_key",
           "block_family", "fit_blocks", "fitted_block_areas", "fit_errors", "load_fit",
           "write_fit", "main"]

REPO = Path(__file__).resolve().parents[2]

#: The Yosys script after reading the Verilog and ``hierarchy -top <top>`` (and ``blackbox``
#: of the MTJ arrays): see the module docstring.
FLOW = ("proc -norom", "synth -top {top} -flatten -run begin:fine", "opt -fast -full",
        "opt -full", "techmap", "opt -fast", "dfflegalize -cell $_DFF_P_ 01",
        "abc -g AND,NAND,OR,NOR,XOR,XNOR,MUX,AOI3,OAI3,AOI4,OAI4", "opt_clean -purge")

_NG = "literature ref. [NanGate FreePDK45 Open Cell Library, 45 nm], cell area of "
#: Yosys gate cell -> area of the library cell it stands for, in um^2.
CELL_AREA_UM2: dict[str, Param] = {
    "$_NOT_": Param(0.532, "um^2", _NG + "INV_X1"),
    "$_BUF_": Param(0.798, "um^2", _NG + "BUF_X1"),
    "$_NAND_": Param(0.798, "um^2", _NG + "NAND2_X1"),
    "$_NOR_": Param(0.798, "um^2", _NG + "NOR2_X1"),
    "$_AND_": Param(1.064, "um^2", _NG + "AND2_X1"),
    "$_OR_": Param(1.064, "um^2", _NG + "OR2_X1"),
    "$_XOR_": Param(1.596, "um^2", _NG + "XOR2_X1"),
    "$_XNOR_": Param(1.596, "um^2", _NG + "XNOR2_X1"),
    "$_MUX_": Param(1.862, "um^2", _NG + "MUX2_X1"),
    "$_AOI3_": Param(1.064, "um^2", _NG + "AOI21_X1"),
    "$_OAI3_": Param(1.064, "um^2", _NG + "OAI21_X1"),
    "$_AOI4_": Param(1.330, "um^2", _NG + "AOI22_X1"),
    "$_OAI4_": Param(1.330, "um^2", _NG + "OAI22_X1"),
    "$_DFF_P_": Param(4.522, "um^2", _NG + "DFF_X1"),
}
#: The NAND2 equivalent: NAND2_X1.
NAND2_UM2 = CELL_AREA_UM2["$_NAND_"].value


class SynthError(Exception):
    """Yosys is missing or failed, or left a cell no library cell stands for."""


def yosys_version(yosys: str = "yosys") -> str:
    """``yosys -V`` of the Yosys used; :class:`SynthError` if there is none."""
    path = shutil.which(yosys)
    if path is None:
        raise SynthError(f"{yosys!r} not found: install Debian's yosys (apt-get install yosys; "
                         "`make synth` does it)")
    r = subprocess.run([path, "-V"], capture_output=True, text=True)
    return r.stdout.strip()


def _mat_config(config: AcceleratorConfig, subarrays: int | None) -> AcceleratorConfig:
    k = config.subarrays_per_mat if subarrays is None else subarrays
    return dataclasses.replace(config, subarrays_per_mat=k, mats=1)


def core_verilog(config: AcceleratorConfig, subarrays: int | None = None,
                 **core_kwargs) -> str:
    """Verilog of the core as instantiated for one mat of ``subarrays`` (default the
    configuration's), top module ``core``, without the fault injection."""
    from amaranth.back import verilog

    from rtl.core import Core
    cfg = _mat_config(config, subarrays)
    core = Core(config=cfg, subarrays=cfg.subarrays_per_mat, faults=False, **core_kwargs)
    return verilog.convert(core, name="core", emit_src=False)


def _int(v) -> int:
    if isinstance(v, str) and v and set(v) <= {"0", "1", "x", "z"}:
        return int(v.replace("x", "0").replace("z", "0"), 2)
    return int(v)


def _run_flow(text: str, top: str, flow, blackbox, yosys: str):
    """Yosys on Verilog ``text``: ``flow`` after reading it (top ``top``, modules matching a
    regular expression of ``blackbox`` as blackboxes); return ``(netlist JSON, blackboxed
    module names, the script, seconds)``. Raises :class:`SynthError` with Yosys's last line."""
    modules = re.findall(r"^module\s+(\\\S+|\w+)", text, re.M)
    boxed = sorted({m.lstrip("\\") for m in modules
                    if any(re.fullmatch(p, m.lstrip("\\")) for p in blackbox)})
    with tempfile.TemporaryDirectory(prefix="spinpim-synth-") as tmp:
        src, out = Path(tmp, "in.v"), Path(tmp, "out.json")
        src.write_text(text)
        script = [f"read_verilog {src}", f"hierarchy -top {top}"]
        script += [f"blackbox {m}" for m in boxed]
        script += [c.format(top=top) for c in flow] + [f"write_json {out}"]
        t0 = time.perf_counter()
        r = subprocess.run([shutil.which(yosys), "-q", "-p", "; ".join(script)],
                           capture_output=True, text=True)
        seconds = time.perf_counter() - t0
        if r.returncode:
            lines = (r.stderr or r.stdout).strip().splitlines()
            raise SynthError(lines[-1] if lines else f"yosys exit code {r.returncode}")
        netlist = json.loads(out.read_text())
    # The script names the temporary file; callers report it with "in.v".
    script = [c.replace(str(src), "in.v") for c in script]
    return netlist, boxed, script, seconds


def synthesize_verilog(text: str, top: str, *, blackbox=(), yosys: str = "yosys") -> dict:
    """Run :data:`FLOW` on Verilog ``text`` (top module ``top``, modules matching a regular
    expression of ``blackbox`` kept as blackboxes); cell counts, macros and area.

    Returns ``{"cells": {type: n}, "macros": [{"name", "words", "bits", "read_ports",
    "write_ports"}], "blackboxes": {module: n}, "area_um2", "nand2_eq", "seconds"}``;
    ``area_um2`` is the cells' area before placement density.
    """
    version = yosys_version(yosys)
    netlist, boxed, script, seconds = _run_flow(text, top, FLOW, blackbox, yosys)
    cells, macros, boxes = Counter(), [], Counter()
    for name, cell in netlist["modules"][top]["cells"].items():
        t = cell["type"]
        if t == "$mem_v2":
            p = cell["parameters"]
            macros.append({"name": p.get("MEMID", name).lstrip("\\"), "words": _int(p["SIZE"]),
                           "bits": _int(p["WIDTH"]), "read_ports": _int(p["RD_PORTS"]),
                           "write_ports": _int(p["WR_PORTS"])})
        elif t.lstrip("\\") in boxed:
            boxes[t.lstrip("\\")] += 1
        elif t in CELL_AREA_UM2:
            cells[t] += 1
        else:
            raise SynthError(f"cell type {t} of {name} has no library cell in "
                             "sim.analysis.synth.CELL_AREA_UM2")
    area = sum(n * CELL_AREA_UM2[t].value for t, n in cells.items())
    return {"tool": version, "flow": "; ".join(script[2:-1]),
            "cells": dict(sorted(cells.items())), "cell_count": sum(cells.values()),
            "macros": sorted(macros, key=lambda m: m["name"]), "blackboxes": dict(boxes),
            "area_um2": area, "nand2_eq": area / NAND2_UM2, "seconds": round(seconds, 1)}


def synthesize_blocks(text: str, top: str, *, blackbox=(), yosys: str = "yosys") -> dict:
    """:data:`FLOW` without ``-flatten`` on Verilog ``text``: the cell area of every module
    (ABC minimises each module on its own), to split the flattened netlist's area among the
    core's blocks (:func:`block_areas`).

    Returns ``{"modules": {module: {"area_um2", "cells", "instances"}}, "seconds"}``;
    ``instances``: the submodule instances of the module (module names).
    """
    yosys_version(yosys)
    flow = [c.replace(" -flatten", "") for c in FLOW]
    netlist, boxed, _, seconds = _run_flow(text, top, flow, blackbox, yosys)
    names = {m.lstrip("\\") for m in netlist["modules"]}
    mods = {}
    for mname, mod in netlist["modules"].items():
        mname = mname.lstrip("\\")
        if mname in boxed:
            continue
        cells, inst = Counter(), []
        for cname, cell in mod.get("cells", {}).items():
            t = cell["type"].lstrip("\\")
            if t == "$mem_v2" or t in boxed:
                continue
            if t in names:
                inst.append(t)
            elif cell["type"] in CELL_AREA_UM2:
                cells[cell["type"]] += 1
            else:
                raise SynthError(f"cell type {t} of {mname}.{cname} has no library cell in "
                                 "sim.analysis.synth.CELL_AREA_UM2")
        mods[mname] = {"area_um2": sum(n * CELL_AREA_UM2[t].value for t, n in cells.items()),
                       "cells": dict(sorted(cells.items())), "instances": sorted(inst)}
    return {"modules": mods, "seconds": round(seconds, 1)}


def block_areas(blocks: dict, top: str = "core") -> dict:
    """Cell area per block of a :func:`synthesize_blocks` report: the first-level instances
    of ``top`` (module ``<top>.<name>`` -> block ``<name>``, with everything below it) and
    ``top`` itself (its own cells) as block ``top``."""
    mods = blocks["modules"]

    def total(m):
        return mods[m]["area_um2"] + sum(total(i) for i in mods[m]["instances"])
    out = {top: mods[top]["area_um2"]}
    for inst in mods[top]["instances"]:
        name = inst[len(top) + 1:] if inst.startswith(top + ".") else inst
        out[name] = out.get(name, 0.0) + total(inst)
    return out


def blocks_cache_path(out_dir: Path, name: str, config: AcceleratorConfig,
                      subarrays: int) -> Path:
    """``<out_dir>/core-<name>-k<K>-<key>-blocks.json`` (:func:`synthesize_blocks` of the
    core)."""
    return Path(out_dir) / f"core-{name}-k{subarrays}-{cache_key(config, subarrays)}-blocks.json"


def synthesize_core_blocks(config: AcceleratorConfig, subarrays: int | None = None, *,
                           yosys: str = "yosys", **core_kwargs) -> dict:
    """:func:`synthesize_blocks` on :func:`core_verilog`, the MTJ arrays blackboxes; with
    ``"blocks"``: :func:`block_areas`."""
    cfg = _mat_config(config, subarrays)
    rep = synthesize_blocks(core_verilog(config, subarrays, **core_kwargs), "core",
                            blackbox=(r"core\.array\d*",), yosys=yosys)
    return {"config": cfg.as_dict(), "subarrays": cfg.subarrays_per_mat, **rep,
            "blocks": block_areas(rep)}


def cache_key(config: AcceleratorConfig, subarrays: int) -> str:
    """Hash of what the synthesis depends on: the configuration's fields, K, :data:`FLOW`,
    the cell areas and the source of ``rtl/``."""
    h = hashlib.sha256()
    h.update(json.dumps(_mat_config(config, subarrays).as_dict(), sort_keys=True,
                        default=str).encode())
    h.update(repr((subarrays, FLOW, sorted((k, p.value) for k, p in CELL_AREA_UM2.items())))
             .encode())
    _update_netlist_source(h)
    return h.hexdigest()[:16]


def cache_path(out_dir: Path, name: str, config: AcceleratorConfig, subarrays: int) -> Path:
    """``<out_dir>/core-<name>-k<K>-<key>.json``."""
    return Path(out_dir) / f"core-{name}-k{subarrays}-{cache_key(config, subarrays)}.json"


def synthesize_core(config: AcceleratorConfig, subarrays: int | None = None, *,
                    yosys: str = "yosys", **core_kwargs) -> dict:
    """:func:`synthesize_verilog` on :func:`core_verilog`; the MTJ arrays are blackboxes."""
    cfg = _mat_config(config, subarrays)
    rep = synthesize_verilog(core_verilog(config, subarrays, **core_kwargs), "core",
                             blackbox=(r"core\.array\d*",), yosys=yosys)
    return {"config": cfg.as_dict(), "subarrays": cfg.subarrays_per_mat, **rep}


def _read_json(path: Path):
    """The JSON in ``path``, or None if it is missing or unreadable (a cache miss)."""
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def load_cached(out_dir: Path, name: str, config: AcceleratorConfig, subarrays: int):
    """The cached synthesis of ``name`` at K = ``subarrays`` for the current ``rtl/``, or
    None."""
    return _read_json(cache_path(out_dir, name, config, subarrays))


def load_cached_blocks(out_dir: Path, name: str, config: AcceleratorConfig, subarrays: int):
    """The cached :func:`synthesize_core_blocks` of ``name`` at K = ``subarrays`` for the
    current ``rtl/``, or None."""
    return _read_json(blocks_cache_path(out_dir, name, config, subarrays))


# -- the calibrated per-block fit: the logic at any K from syntheses at a few K ----------------

#: The committed calibration (:func:`write_fit`): per preset the per-block cell areas of
#: :func:`synthesize_core_blocks` at the fit's K (and at a held-out K, the validation), with the
#: hash of ``rtl/`` they were made from (:func:`rtl_hash`).
FIT_PATH = REPO / "sim" / "analysis" / "synth_fit.json"

_FIT_SOURCE = ("calibrated: cell area per block family = a + b x K, least squares through the "
               "per-block syntheses (sim.analysis.synth, Yosys + ABC) at K = {ks} of {preset} "
               "(ASSUMPTION: a block family's cells grow linearly in the subarrays of the mat; "
               "held out at K = {val}: total {err})")


#: Modules of ``rtl/`` the synthesised netlist is NOT made from: the command-line tools and
#: their file writing and argument parsing (``rtl.export``, ``rtl.synth``, ``rtl.outputs``,
#: ``rtl.argparse_fix``), which
#: :func:`core_verilog` never imports (it elaborates ``rtl.core.Core``, and no module under
#: ``rtl/`` that the core imports imports these; ``tests/test_synth_fit.py`` checks it). A change
#: to them cannot change a synthesis, so it does not mark the committed ones stale.
NOT_NETLIST = ("argparse_fix.py", "export.py", "outputs.py", "synth.py")


def netlist_sources(root: Path | None = None) -> list[Path]:
    """The files of ``rtl/`` (under ``root``, default this checkout) a synthesis depends on:
    every ``*.py`` but :data:`NOT_NETLIST`."""
    return [p for p in sorted(((root or REPO) / "rtl").glob("*.py"))
            if p.name not in NOT_NETLIST]


#: Top-level assignments of ``rtl/`` modules left out of :func:`rtl_hash`: the presets' table
#: (``rtl.config.PRESETS``). A synthesis elaborates the core for one configuration, which its
#: fit key holds (:func:`fit_key`), and no module the core imports reads the table; so a change
#: to one preset's fields makes that preset's synthesis stale (by its key), not every preset's.
NOT_NETLIST_NAMES = {"config.py": ("PRESETS",)}


def _code_only(text: str, drop: tuple = ()) -> str:
    """The code of a module without its comments, docstrings and layout: ``ast.dump`` of its
    tree (no line numbers) with every docstring removed, and the top-level assignments to the
    names ``drop``. A comment or docstring edit cannot change a netlist, so it does not change
    this (ASSUMPTION: no code of ``rtl/`` reads a docstring; the dump is that of the project's
    Python, 3.11)."""
    tree = ast.parse(text)
    tree.body = [n for n in tree.body
                 if not (isinstance(n, (ast.Assign, ast.AnnAssign)) and any(
                     isinstance(t, ast.Name) and t.id in drop
                     for t in (n.targets if isinstance(n, ast.Assign) else [n.target])))]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def _update_netlist_source(h, root: Path | None = None) -> None:
    for path in netlist_sources(root):
        h.update(path.name.encode())
        h.update(_code_only(path.read_text(), NOT_NETLIST_NAMES.get(path.name, ())).encode())


def rtl_hash(root: Path | None = None) -> str:
    """Hash of the code of ``rtl/`` the synthesised netlist is made from
    (:func:`netlist_sources`; comments, docstrings and layout left out by ``_code_only``)."""
    h = hashlib.sha256()
    _update_netlist_source(h, root)
    return h.hexdigest()[:16]


def fit_key(config: AcceleratorConfig) -> str:
    """Hash of what a fit depends on besides ``rtl/``: the configuration at any K (its
    ``subarrays_per_mat`` and ``mats`` left out), :data:`FLOW` and the cell areas."""
    d = _mat_config(config, 1).as_dict()
    d.pop("subarrays_per_mat", None)
    d.pop("mats", None)
    h = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode())
    h.update(repr((FLOW, sorted((k, p.value) for k, p in CELL_AREA_UM2.items()))).encode())
    return h.hexdigest()[:16]


def block_family(name: str) -> str:
    """The family of a block of :func:`block_areas`: its name without the subarray index
    (``reduce3`` -> ``reduce``; the core names one subarray's block without it)."""
    return re.sub(r"\d+$", "", name)


def _families(blocks: dict) -> dict:
    out: dict = {}
    for name, area in blocks.items():
        f = out.setdefault(block_family(name), {"area_um2": 0.0, "instances": 0})
        f["area_um2"] += float(area)
        f["instances"] += 1
    return out


def fit_blocks(points: dict) -> dict:
    """Least-squares line ``a + b x K`` per block family through ``points`` ``{K: {block:
    cell area um^2}}`` (:func:`block_areas` at two or more K). A family whose instances number
    K at every point (one per subarray) is ``per_subarray``; else one instance.

    Returns ``{"ks": [...], "families": {family: {"a_um2", "b_um2", "per_subarray"}}}``;
    :class:`SynthError` if fewer than two K or the points have different families."""
    ks = sorted(int(k) for k in points)
    if len(ks) < 2:
        raise SynthError(f"a fit needs syntheses at two or more K, not {ks}")
    fams = {k: _families(points[k] if k in points else points[str(k)]) for k in ks}
    names = set(fams[ks[0]])
    if any(set(f) != names for f in fams.values()):
        raise SynthError("the syntheses of the fit have different blocks: "
                         + "; ".join(f"K={k}: {sorted(f)}" for k, f in fams.items()))
    mk = sum(ks) / len(ks)
    sxx = sum((k - mk) ** 2 for k in ks)
    out = {}
    for name in sorted(names):
        ys = [fams[k][name]["area_um2"] for k in ks]
        my = sum(ys) / len(ys)
        b = sum((k - mk) * (y - my) for k, y in zip(ks, ys, strict=True)) / sxx
        out[name] = {"a_um2": my - b * mk, "b_um2": b,
                     "per_subarray": all(fams[k][name]["instances"] == k for k in ks)}
    return {"ks": ks, "families": out}


def fitted_block_areas(fit: dict, k: int) -> dict:
    """Cell area per block at K = ``k`` from :func:`fit_blocks`: a per-subarray family split
    evenly over its ``k`` instances (named as the core names them: ``reduce0`` ..., one
    subarray's without the index)."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, not {k!r}")
    out = {}
    for name, f in fit["families"].items():
        area = max(0.0, f["a_um2"] + f["b_um2"] * k)
        if f["per_subarray"] and k > 1:
            out.update({f"{name}{i}": area / k for i in range(k)})
        else:
            out[name] = area
    return out


def fit_errors(fit: dict, blocks: dict, k: int) -> dict:
    """The fit against a synthesis at K = ``k`` (:func:`block_areas`): per family and in total,
    ``{"fitted_um2", "synthesised_um2", "error_pct"}`` (fitted / synthesised - 1)."""
    got = _families(fitted_block_areas(fit, k))
    want = _families(blocks)

    def row(f, w):
        return {"fitted_um2": f, "synthesised_um2": w,
                "error_pct": 100 * (f / w - 1) if w else None}
    out = {n: row(got.get(n, {}).get("area_um2", 0.0), want.get(n, {}).get("area_um2", 0.0))
           for n in sorted(set(got) | set(want))}
    out["total"] = row(sum(f["area_um2"] for f in got.values()),
                       sum(f["area_um2"] for f in want.values()))
    return out


def _fit_blocks_as_report(name: str, k: int, areas: dict, fitted: dict) -> dict:
    """Block areas in the form of a :func:`synthesize_core_blocks` report (what
    :func:`block_areas` reads)."""
    mods = {"core": {"area_um2": areas.get("core", 0.0), "cells": {},
                     "instances": [f"core.{b}" for b in sorted(areas) if b != "core"]}}
    mods.update({f"core.{b}": {"area_um2": a, "cells": {}, "instances": []}
                 for b, a in areas.items() if b != "core"})
    return {"preset": name, "subarrays": k, "modules": mods, "blocks": dict(areas),
            "fitted": fitted}


def load_fit(name: str, config: AcceleratorConfig, k: int, path: Path | None = None):
    """The logic of ``name`` at K = ``k`` from the committed calibration (:data:`FIT_PATH`):
    ``(logic, blocks, label)``.

    ``logic`` is in the form of a :func:`synthesize_core` report (``area_um2`` the cell area,
    ``nand2_eq``; ``cell_count`` and ``macros`` None unless stored) with ``fitted``:
    ``{label, source, class, ks, rtl_hash, stale, validation, basis}``; ``blocks`` in the form
    of a :func:`synthesize_core_blocks` report (None without per-block data at ``k`` or a fit).
    At a stored K the synthesis itself (the flattened core's area when stored, else the sum
    of its blocks; class "derived"); elsewhere the fit of the stored points at the fit's K
    (:func:`fit_blocks`, the sum of the fitted blocks; class "calibrated"). ``(None, None,
    why)`` without data for this preset, configuration and K. A calibration made from another
    ``rtl/`` (its hash differs) is used, with ``stale`` True and its label saying so."""
    where = _rel_repo(path or FIT_PATH)
    data = _read_json(Path(path) if path is not None else FIT_PATH)
    entry = (data or {}).get("presets", {}).get(name)
    if entry is None:
        return None, None, f"no committed synthesis or fit of {name} in {where}"
    if entry.get("fit_key") != fit_key(config):
        return None, None, (f"the committed synthesis of {name} in {where} was made for "
                            "another configuration, flow or cell library")
    stale = entry["rtl_hash"] != rtl_hash()
    point = entry["points"].get(str(k))
    fit_ks = [int(x) for x in entry["fit_ks"]]
    val = entry.get("validation") or {}
    if point is not None:
        blocks_k = point.get("blocks")
        flat = point.get("flat") or {}
        total = flat.get("area_um2", sum((blocks_k or {}).values()))
        label = f"synthesised at K = {k}" + ("" if flat else " (per block)")
        cls = "derived"
        source = (f"derived: sim.analysis.synth (Yosys + ABC) of {name} at K = {k}, stored in "
                  f"{where}" + ("" if flat else ": the sum of the per-block syntheses"))
        areas, fam = blocks_k, None
    elif len(fit_ks) >= 2:
        fit = fit_blocks({int(kk): p["blocks"] for kk, p in entry["points"].items()
                          if int(kk) in fit_ks})
        areas, fam = fitted_block_areas(fit, k), fit["families"]
        total = sum(areas.values())
        err = ("; ".join(f"K = {vk}: {v['total']['error_pct']:+.2f} %" for vk, v in val.items())
               or "not validated")
        ks = ", ".join(str(x) for x in fit_ks)
        label = f"synthesised at K = {ks}, fitted to K = {k}"
        cls = "calibrated"
        source = _FIT_SOURCE.format(ks=ks, preset=name, val=", ".join(val) or "none", err=err)
        flat = {}
    else:
        return None, None, (f"{where} holds {name} at K = {', '.join(entry['points'])} only, "
                            f"no fit to K = {k}")
    if stale:
        label += (f" (STALE: rtl/ has changed since; rtl hash {entry['rtl_hash']} then, "
                  f"{rtl_hash()} now; rerun python -m sim.analysis.synth --preset {name} "
                  "--write-fit)")
    fitted = {"label": label, "source": source, "class": cls, "ks": fit_ks,
              "rtl_hash": entry["rtl_hash"], "stale": stale, "validation": val,
              "families": fam,
              "basis": ("the flattened core's cell area" if flat else
                        "the sum of the per-block (hierarchical) syntheses' cell areas, not a "
                        "flattened synthesis")}
    logic = {"preset": name, "subarrays": k, "tool": entry.get("tool", ""),
             "area_um2": total, "nand2_eq": total / NAND2_UM2,
             "cell_count": flat.get("cell_count"), "macros": flat.get("macros"),
             "fitted": fitted}
    blocks = None if areas is None else _fit_blocks_as_report(name, k, areas, fitted)
    return logic, blocks, label


def _rel_repo(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def write_fit(name: str, config: AcceleratorConfig, points: dict, validation: dict,
              path: Path | None = None, *, tool: str = "") -> dict:
    """Write the calibration of ``name`` into ``path`` (default :data:`FIT_PATH`, other
    presets' entries kept). ``points``: ``{K: {"blocks": synthesize_core_blocks report or
    None, "flat": synthesize_core report or None}}`` at the fit's K (two or more: the
    per-block areas are fitted, :func:`fit_blocks`; one: that synthesis only, served at its
    K); ``validation``: likewise at held-out K, their errors (:func:`fit_errors`) stored."""
    path = Path(path) if path is not None else FIT_PATH
    fit = None
    if len(points) >= 2:
        fit = fit_blocks({k: r["blocks"]["blocks"] for k, r in points.items()})
    elif len(points) != 1 or validation:
        raise SynthError("write_fit takes two or more fit points, or one point without "
                         "validation")
    data = _read_json(path) or {}
    data.setdefault("about", "Syntheses of the core (sim.analysis.synth: per block, "
                             "synthesize_core_blocks, and flattened, synthesize_core) at a few "
                             "K per preset: the data of sim.analysis.synth.load_fit (the logic "
                             "at a stored K, and the calibrated per-block fit elsewhere); "
                             "rtl_hash: sim.analysis.synth.rtl_hash of the rtl/ they were made "
                             "from.")
    data.setdefault("presets", {})

    def point(r):
        out = {}
        if r.get("blocks") is not None:
            out["blocks"] = {b: round(a, 3) for b, a in r["blocks"]["blocks"].items()}
            out["blocks_seconds"] = r["blocks"].get("seconds")
        if r.get("flat") is not None:
            f = r["flat"]
            out["flat"] = {"area_um2": round(f["area_um2"], 3), "cell_count": f["cell_count"],
                           "macros": f["macros"], "seconds": f.get("seconds")}
        return out
    data["presets"][name] = {
        "fit_key": fit_key(config), "rtl_hash": rtl_hash(), "tool": tool,
        "fit_ks": sorted(points),
        "points": {str(k): point(r) for k, r in sorted({**points, **validation}.items())},
        "validation": {str(k): fit_errors(fit, r["blocks"]["blocks"], k)
                       for k, r in sorted(validation.items())},
    }
    data["presets"] = dict(sorted(data["presets"].items()))
    write_json(path, data, sort_keys=False, option="--fit-file")
    return data["presets"][name]


def logic_area_um2(rep: dict) -> float:
    """Logic area of a synthesis report: cell area / placement density
    (``sim.hw.energy.PERIPHERY['utilisation']``)."""
    from sim.hw.energy import PERIPHERY
    return rep["area_um2"] / PERIPHERY["utilisation"].value


def _error(e) -> int:
    """Print the command's one-line error; exit status 1 for Yosys (SynthError), else 2."""
    print(f"python -m sim.analysis.synth: error: {e}", file=sys.stderr)
    return 1 if isinstance(e, SynthError) else 2


@interruptible("python -m sim.analysis.synth", "no report was written (files written before are "
               "unchanged)")
def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.analysis.synth",
                                description="Synthesise the core of a preset (one mat of K "
                                            "subarrays) with Yosys + ABC, memories as macros; "
                                            "cell counts, NAND2 equivalents and area as JSON.")
    p.add_argument("--preset", required=True, action="extend", nargs="+",
                   help=f"one or more of {', '.join(preset_names())}")
    p.add_argument("--mat", default=None, help="subarrays in the mat (default the preset's)")
    p.add_argument("--out", type=Path, default=REPO / "build" / "synth",
                   help="cache directory (default build/synth)")
    p.add_argument("--force", action="store_true", help="synthesise even when cached")
    p.add_argument("--only", choices=("flat", "blocks"), default=None,
                   help="only the flattened core or only the per-block synthesis (default both)")
    p.add_argument("--write-fit", action="store_true",
                   help="instead: the per-block syntheses at --fit-ks and --validate-at (cached "
                        "or made now) into the calibrated fit's data file (--fit-file)")
    p.add_argument("--fit-ks", default="1,2", help="the fit's K, comma-separated (default 1,2)")
    p.add_argument("--validate-at", default="4",
                   help="held-out K the fit is checked against, comma-separated or empty "
                        "(default 4)")
    p.add_argument("--fit-file", type=Path, default=FIT_PATH,
                   help="the fit's data file (default sim/analysis/synth_fit.json)")
    args = p.parse_args(argv)
    if args.write_fit:
        return _main_fit(args)
    from sim.util import parse_mat
    try:
        names = list(dict.fromkeys(args.preset))
        for name in names:
            preset(name)
        mat = parse_mat(args.mat)
        jobs = []
        for name in names:
            cfg = preset(name)
            if mat is not None:
                parse_mat(args.mat, cfg, name)
            k = cfg.subarrays_per_mat if mat is None else mat
            path = cache_path(args.out, name, cfg, k)
            check_file("--out", path)
            jobs.append((name, cfg, k, path))
        yosys_version()
    except (ValueError, UserError, SynthError) as e:
        return _error(e)
    for name, cfg, k, path in jobs:
        rep = None if args.force else load_cached(args.out, name, cfg, k)
        if args.only == "blocks":
            pass
        elif rep is None:
            print(f"{name}: synthesising the core, mat of {k} (minutes) ...", flush=True)
            try:
                rep = {"preset": name, **synthesize_core(cfg, k)}
            except SynthError as e:
                print(f"python -m sim.analysis.synth: error: {name}: {e}", file=sys.stderr)
                return 1
            write_json(path, rep, sort_keys=False, option="--out")
        if rep is not None:
            print(f"{name} K={k}: {rep['cell_count']} cells, {rep['nand2_eq']:.0f} NAND2 eq, "
                  f"{logic_area_um2(rep) * 1e-6:.4f} mm^2 logic, {len(rep['macros'])} memory "
                  f"macros ({rep['seconds']} s) -> {path}", flush=True)
        if args.only == "flat":
            continue
        # The area per block (hierarchy kept), for the logic energy per block (sim.hw.activity).
        bpath = blocks_cache_path(args.out, name, cfg, k)
        if args.force or load_cached_blocks(args.out, name, cfg, k) is None:
            print(f"{name}: synthesising the core's blocks, mat of {k} (minutes) ...",
                  flush=True)
            try:
                brep = {"preset": name, **synthesize_core_blocks(cfg, k)}
            except SynthError as e:
                print(f"python -m sim.analysis.synth: error: {name}: {e}", file=sys.stderr)
                return 1
            write_json(bpath, brep, sort_keys=False, option="--out")
        print(f"{name} K={k}: cell area per block -> {bpath}", flush=True)
    return 0


def _ks(option: str, text: str) -> list:
    from sim.util import MAX_MAT
    try:
        ks = [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        ks = None
    if ks is None or any(not 1 <= k <= MAX_MAT for k in ks) or len(set(ks)) != len(ks):
        raise UserError(f"{option} must be distinct integers in [1, {MAX_MAT}], comma-"
                        f"separated, not {text!r}")
    return ks


def _main_fit(args) -> int:
    """``--write-fit``: the syntheses at ``--fit-ks`` and ``--validate-at`` (cached or made now:
    per block unless ``--only flat``, flattened unless ``--only blocks``; a cached one of the
    other kind is stored too), then :func:`write_fit`."""
    try:
        names = list(dict.fromkeys(args.preset))
        for name in names:
            preset(name)
        fit_ks = _ks("--fit-ks", args.fit_ks)
        val_ks = _ks("--validate-at", args.validate_at)
        if set(fit_ks) & set(val_ks) or (len(fit_ks) < 2 and (val_ks or args.only == "blocks")
                                         ) or (len(fit_ks) >= 2 and args.only == "flat"):
            raise UserError(f"--fit-ks {args.fit_ks!r} --validate-at {args.validate_at!r}: a "
                            "fit needs two or more K, per block (not --only flat), none of "
                            "them held out; one K stores that synthesis only (no "
                            "--validate-at)")
        check_file("--fit-file", args.fit_file)
        tool = yosys_version()
    except (ValueError, UserError, SynthError) as e:
        return _error(e)
    for name in names:
        cfg = preset(name)
        reps = {}
        for k in fit_ks + val_ks:
            reps[k] = {}
            for kind, load, make, where in (
                    ("blocks", load_cached_blocks, synthesize_core_blocks, blocks_cache_path),
                    ("flat", load_cached, synthesize_core, cache_path)):
                rep = None if args.force else load(args.out, name, cfg, k)
                if rep is None and args.only in (None, kind):
                    print(f"{name}: synthesising the core ({kind}), mat of {k} (minutes) ...",
                          flush=True)
                    try:
                        rep = {"preset": name, **make(cfg, k)}
                    except SynthError as e:
                        print(f"python -m sim.analysis.synth: error: {name}: {e}",
                              file=sys.stderr)
                        return 1
                    write_json(where(args.out, name, cfg, k), rep, sort_keys=False,
                               option="--out")
                reps[k][kind] = rep
        entry = write_fit(name, cfg, {k: reps[k] for k in fit_ks},
                          {k: reps[k] for k in val_ks}, args.fit_file, tool=tool)
        for k, v in entry["validation"].items():
            t = v["total"]
            print(f"{name}: fit at K = {fit_ks} vs the synthesis at K = {k}: "
                  f"{t['fitted_um2']:.0f} vs {t['synthesised_um2']:.0f} um^2 cell area "
                  f"({t['error_pct']:+.2f} %)", flush=True)
        print(f"{name}: -> {args.fit_file}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
