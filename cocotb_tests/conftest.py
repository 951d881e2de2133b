"""Parametrize ``sim`` over the simulators chosen by ``SIM``, check the toolchain once, and
start the longest tests first."""

import pytest

from cocotb_tests.harness import HarnessError, check_verilator, simulators
from sim.util import UserError, check_waves

#: Test modules that build the whole core: the longest Verilator builds of the suite.
CORE_MODULES = ("test_core.py", "test_core_faults.py", "test_core_move.py", "test_core_dima.py",
                "test_core_random.py")
#: Test modules whose simulation is long on every simulator: the CPU-IMAC flow (about 60,000
#: host writes and 60,000 cycles per image); started first so that no worker ends alone on it.
LONG_RUNS = ("test_imac_flow.py",)


def pytest_configure(config):
    try:
        sims = simulators()
        if "verilator" in sims:
            check_verilator()
        check_waves()      # WAVES=2 is a one-line usage error, not a runner traceback
    except (HarnessError, UserError) as e:
        raise pytest.UsageError(str(e)) from None


def pytest_generate_tests(metafunc):
    if "sim" in metafunc.fixturenames:
        metafunc.parametrize("sim", simulators())


def _rank(item) -> int:
    """-1 the long runs, 0 the core on Verilator, 1 other blocks on Verilator, 2 the core on
    Icarus, 3 the rest."""
    callspec = getattr(item, "callspec", None)
    sim = callspec.params.get("sim") if callspec else None
    core = item.path.name in CORE_MODULES
    if item.path.name in LONG_RUNS:
        return -1
    if sim == "verilator":
        return 0 if core else 1
    if sim == "icarus" and core:
        return 2
    return 3


def pytest_collection_modifyitems(session, config, items):
    # Longest first (stable: the order within a rank stays). `pytest -n 2` hands the tests to
    # its workers in this order, so the long Verilator builds run while the short tests fill
    # the gaps, and no worker is left alone with a core build at the end.
    items.sort(key=_rank)
