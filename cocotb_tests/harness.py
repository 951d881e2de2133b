"""Run one cocotb test module against one Amaranth component on one simulator.

Pytest side: :func:`run_block` elaborates the component, writes its Verilog to
``build/sim/<block>/<test-id>/<block>.v`` (deterministic, toplevel named ``<block>``) and the
test bench ``<block>_tb.v`` around it (``sim.flows.rtl_backend.build_block``: the same ports, the
clock generated inside the simulation), builds them with cocotb's runner in that directory (one
directory per simulator and parameter set, so parallel runs never share a build), writes the
parameters to ``params.json`` there, runs the cocotb test module and fails when any cocotb test
failed or none ran. On Verilator only the bench's ports are visible to cocotb: a test reads and
drives ports, never internal signals.

Cocotb side: :func:`load_params` reads ``params.json`` back; :func:`make_rng` gives the
stimulus random stream from the seed in it.

Knobs (environment): ``SIM`` = ``icarus`` | ``verilator`` | unset for both; ``WAVES=1`` dumps
waveforms (Icarus ``<block>.fst``, Verilator ``dump.vcd``, in the build directory);
``SPINPIM_SEED`` fixes the stimulus seed (otherwise a fresh one is drawn and printed).
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path
from xml.etree import ElementTree

from sim.hw.activity import trace_args
from sim.flows.rtl_backend import (
    SIMULATORS,
    RtlRunError,
    build_block,
    start_clock,
    verilator_problem,
)

REPO = Path(__file__).resolve().parent.parent
BUILD_ROOT = REPO / "build" / "sim"
PARAMS_FILE = "params.json"


class HarnessError(Exception):
    """A misconfigured environment (SIM value, wrong verilator)."""


def simulators() -> list[str]:
    """Simulators selected by ``SIM``: one of :data:`SIMULATORS`, or all when unset/empty."""
    value = os.environ.get("SIM", "").strip()
    if not value:
        return list(SIMULATORS)
    if value not in SIMULATORS:
        raise HarnessError(
            f"SIM must be one of {', '.join(SIMULATORS)} or unset (both), not {value!r}")
    return [value]


def check_verilator() -> str:
    """Path of the venv's verilator; raise :class:`HarnessError` if PATH finds another one or
    it is older than cocotb 2.x needs (``sim.flows.rtl_backend.verilator_problem``)."""
    found, problem = verilator_problem()
    if problem:
        raise HarnessError(problem)
    return found


def build_id(sim: str, params: dict) -> str:
    """Directory name for one simulator + parameter set: ``<sim>-k1_v1-k2_v2``."""
    parts = [sim] + [f"{k}_{params[k]}" for k in sorted(params)]
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", "-".join(parts))


def distinct_presets(*fields: str) -> list[str]:
    """Preset names whose configs differ in ``fields`` (the first name of each group).

    A block that reads only ``columns`` is the same hardware for every preset of the same
    column count; simulating it once per distinct shape is the same test at a fraction of the
    time.
    """
    from rtl.config import PRESETS

    seen, names = set(), []
    for name, cfg in PRESETS.items():
        key = tuple(getattr(cfg, f) for f in fields)
        if key not in seen:
            seen.add(key)
            names.append(name)
    return names


def _failures(results_xml: Path) -> tuple[int, list[str]]:
    tests, failed = 0, []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        tests += 1
        for bad in list(case.findall("failure")) + list(case.findall("error")):
            failed.append(f"{case.get('name')}: {bad.get('message') or bad.text or ''}".strip())
    return tests, failed


def run_block(component, *, block: str, sim: str, test_module: str, params: dict,
              trace: str | None = None) -> Path:
    """Simulate ``component`` with the cocotb tests in ``test_module``; return the build dir.

    Parameters
    ----------
    component : wiring.Component
        The elaborated design under test (with a ``clk`` input); exported as module ``block``
        and simulated inside its test bench ``<block>_tb``, whose ports are the same.
    block : str
        Block name: file ``<block>.v``, module ``<block>``, directory ``build/sim/<block>``.
    sim : str
        ``icarus`` or ``verilator``.
    test_module : str
        Dotted name of the cocotb test module.
    params : dict
        JSON-able parameters for the cocotb side (read back with :func:`load_params`); also
        name the build directory. A ``seed`` entry is added.
    trace : str or None
        A file name in the build directory: build for toggle counting (``sim.hw.activity``; a
        SAIF file on Verilator, a VCD on Icarus) and write the toggles there.

    Raises
    ------
    AssertionError
        The build or the simulation failed, a cocotb test failed, or no test ran.
    """
    if sim not in SIMULATORS:
        raise HarnessError(f"sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    build_dir = BUILD_ROOT / block / build_id(sim, params)
    build_dir.mkdir(parents=True, exist_ok=True)

    seed = int(os.environ.get("SPINPIM_SEED") or random.SystemRandom().randrange(1 << 32))
    (build_dir / PARAMS_FILE).write_text(json.dumps({**params, "seed": seed}, sort_keys=True))
    print(f"{block} [{build_dir.name}]: seed {seed} (rerun with SPINPIM_SEED={seed})")

    # The values cocotb's runner reads as "on" (sim.util.WAVES_VALUES; conftest refuses others).
    waves = os.environ.get("WAVES", "0").strip().lower() in ("1", "yes", "y", "on", "true",
                                                             "enable")
    try:
        runner, top = build_block(component, block=block, sim=sim, build_dir=build_dir,
                                  always=True, waves=waves, trace=bool(trace))
    except RtlRunError as e:
        raise AssertionError(str(e)) from None
    results = build_dir / "results.xml"
    results.unlink(missing_ok=True)
    try:
        runner.test(test_module=test_module, hdl_toplevel=top, build_dir=build_dir,
                    test_dir=build_dir, results_xml=str(results), waves=waves or bool(trace),
                    timescale=("1ns", "1ps"),
                    **({} if not trace else trace_args(sim, build_dir / trace)))
    except (RuntimeError, SystemExit):
        pass  # the results file below says what went wrong
    if not results.is_file():
        raise AssertionError(f"{block}: {sim} simulation ended without {results}")
    tests, failed = _failures(results)
    assert tests > 0, f"{block}: no cocotb test ran from {test_module} on {sim}"
    assert not failed, (f"{block} on {sim}, seed {seed}: {len(failed)} of {tests} cocotb tests "
                        "failed:\n  " + "\n  ".join(failed))
    return build_dir


# -- cocotb side ------------------------------------------------------------------------------

def load_params() -> dict:
    """The parameters :func:`run_block` wrote; the simulator runs in the build directory."""
    return json.loads(Path(PARAMS_FILE).read_text())


def make_rng(params: dict, test_name: str) -> tuple[random.Random, int]:
    """A random stream for one cocotb test, from the run's seed and the test's name."""
    seed = int(params["seed"])
    return random.Random(f"{seed}:{test_name}"), seed


def lanes(value: int, n: int):
    """Per-lane bits of an ``n``-lane vector (lane i = bit i) as a uint8 numpy array."""
    import numpy as np
    return np.array([(int(value) >> i) & 1 for i in range(n)], dtype=np.uint8)


def pack(bits, width: int = 1) -> int:
    """Inverse of :func:`lanes` for lanes of ``width`` bits each (element i at bits i*width)."""
    word = 0
    for i, b in enumerate(bits):
        word |= (int(b) & ((1 << width) - 1)) << (i * width)
    return word


def unpack(word: int, n: int, width: int) -> list[int]:
    """Split a flat vector into ``n`` elements of ``width`` bits (element i at bits i*width)."""
    mask = (1 << width) - 1
    return [(int(word) >> (i * width)) & mask for i in range(n)]


def unpack_signed(word: int, n: int, width: int) -> list[int]:
    """:func:`unpack` for two's complement elements of ``width`` bits."""
    return [v - (1 << width) if v >> (width - 1) else v for v in unpack(word, n, width)]


async def start(dut, period_ns: int = 10) -> None:
    """Have the clock on ``dut.clk`` running (the test bench of :func:`run_block` generates it
    inside the simulation: ``sim.flows.rtl_backend.start_clock``) and hold ``dut.rst`` for two
    cycles."""
    from cocotb.triggers import ClockCycles, FallingEdge

    start_clock(dut, period_ns)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 2)
    await FallingEdge(dut.clk)
    dut.rst.value = 0


def first_mismatch(block: str, what: str, got, want, seed: int, step=None) -> str:
    """Message naming the block, the first differing lane, both values and the seed."""
    where = "" if step is None else f" at step {step}"
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        if int(g) != int(w):
            return (f"{block}: {what} lane {i}{where}: rtl {int(g)} != golden {int(w)} "
                    f"(seed {seed}; rerun with SPINPIM_SEED={seed})")
    return f"{block}: {what}{where}: no mismatch"


async def check_compiled_images(dut, config, model, compiled, images, *, where: str,
                                seed: int) -> list[dict]:
    """Run ``compiled`` on the core under test for each of ``images`` and check it the way every
    end-to-end core test does: every stage == golden (``golden.model.infer_int``'s trace, by
    ``CoreHost.infer``), and every counter == the cycle model's (``sim.hw.core_model``) ==
    the compiler's static profile. ``where`` starts each mismatch message (block, model, seed
    names); returns the RTL counters per image."""
    from golden.model import infer_int
    from sim.compile.compiler import run_compiled
    from sim.flows.rtl_backend import CoreHost
    from sim.hw.core_model import CoreModel
    host = CoreHost(dut, config)
    await host.reset()
    await host.load_compiled(compiled)
    ref = CoreModel(config)
    out = []
    for i, image in enumerate(images):
        trace = [t[0] for t in infer_int(model, image[None], trace=True)]
        at = f"{where}, image {i}"
        try:
            _, counters = await host.infer(compiled, image, golden_trace=trace)
        except AssertionError as e:
            raise AssertionError(f"{at}: {e} (seed {seed}; rerun with SPINPIM_SEED={seed})"
                                 ) from None
        modelled = run_compiled(compiled, image, ref, load_weights=i == 0).counters
        static = {k: sum(c.micro_ops[k] for st in compiled.stages for c in st.chunks)
                  for k in counters}
        for key in counters:
            assert counters[key] == modelled[key] == static[key], (
                f"{at}: counter {key}: rtl {counters[key]}, cycle model {modelled[key]}, "
                f"compiler profile {static[key]} (seed {seed})")
        dut._log.info("%s: %d cycles, stages %s", at, counters["cycles"],
                      [s["name"] for s in host.last_stages])
        out.append(counters)
    return out
