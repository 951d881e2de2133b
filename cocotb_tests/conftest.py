"""Parametrize ``sim`` over the simulators chosen by ``SIM`` and check the toolchain once."""

import pytest

from cocotb_tests.harness import HarnessError, check_verilator, simulators


def pytest_configure(config):
    try:
        sims = simulators()
        if "verilator" in sims:
            check_verilator()
    except HarnessError as e:
        raise pytest.UsageError(str(e)) from None


def pytest_generate_tests(metafunc):
    if "sim" in metafunc.fixturenames:
        metafunc.parametrize("sim", simulators())
