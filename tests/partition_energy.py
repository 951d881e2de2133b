"""Expected energy terms of one mat and of a partition (``sim.analysis.multi_mat.TERMS``),
computed for the tests of the partition's energy (``tests/test_multi_mat.py``,
``tests/test_report_partitioned.py``) from the counters and the energy model's per-access
constants (``sim.hw.sram``, ``sim.hw.energy``, ``sim.hw.activity``), not by the code under
test (``sim.analysis.multi_mat.energy_terms``, ``sim.analysis.report.partitioned``)."""

import dataclasses
import math

from sim.hw import activity, energy, sram


def macro_slots(slots: int) -> int:
    """The weight-buffer depth a macro offers for ``slots`` (a power of two, at least
    ``sim.hw.sram.BUFFER_PARAMS['macro_min_words']``)."""
    low = int(sram.BUFFER_PARAMS["macro_min_words"].value)
    return max(low, 1 << max(0, (slots - 1).bit_length()))


def memories(config, subarrays: int, accesses: dict, latency_s: float) -> tuple:
    """``(dynamic J, leakage J)`` of one mat's memories at ``config``'s sizes: per memory its
    reads and writes x the energy per access, and every SRAM macro's leakage x ``latency_s``."""
    dyn = leak = 0.0
    for m in sram.core_memories(config, subarrays):
        a = accesses[m.name]
        if m.kind == "flops":
            dyn += (a["reads"] * sram.read_energy_pj(m.words, m.bits)
                    + a["writes"] * sram.write_energy_pj(m.words, m.bits, access_bits=m.words))
        else:
            rd = sram.banked_read_pj(m.words, m.bits)
            dyn += (a["reads"] + a["writes"] * sram.PARAMS["write_vs_read"].value) * rd
            leak += sram.leakage_w(m.words, m.bits, m.read_ports) * latency_s
    return dyn * 1e-12, leak


def logic_terms(logic, cycles: list, latency_s: float) -> tuple:
    """``(activity logic J, logic leakage J)`` of mats running ``cycles`` each with the blocks
    of ``logic`` (``sim.hw.activity.logic_energy``'s), all leaking over ``latency_s``; (None,
    None) without ``logic``."""
    if logic is None:
        return None, None
    k = activity.PARAMS["switch_fj_per_um2"].value * 1e-15
    act = sum(b["activity"] * c * b["area_um2"] * k for c in cycles for b in logic["blocks"])
    return act, len(cycles) * logic["leakage_w"] * latency_s


def whole_terms(model, comp, whole, logic=None) -> dict:
    """The terms of the whole model compiled as one program (``comp``) and counted
    (``whole``, ``sim.analysis.counting.count_model``): the single mat's."""
    host = whole.host
    data, programs = host["data_words"], round(host["program_words"])
    acc = sram.access_counts(comp, whole.counters, host_data_words=data,
                             host_program_words=programs,
                             host_reads=math.prod(model.shapes()[-1]))
    cfg = dataclasses.replace(comp.config, buffer_slots=macro_slots(len(comp.buffer)))
    lat = whole.estimate["latency_s"]
    dyn, leak = memories(cfg, comp.subarrays, acc, lat)
    act, lgk = logic_terms(logic, [whole.estimate["cycles"]], lat)
    gate = energy.energy_split(comp.config, whole.counters, columns_active=comp.width,
                               host={"data_words": data})["CMOS logic"]
    return {"micro-ops": whole.estimate["energy_j"], "gate-count logic": gate,
            "SRAM dynamic": dyn, "SRAM leakage": leak, "activity logic": act,
            "logic leakage": lgk, "broadcasts": 0.0}


def assert_terms(got: dict, want: dict, rel: float = 1e-12) -> None:
    """Every term of ``want`` == ``got``'s (None where ``want`` has None)."""
    import pytest
    for k, v in want.items():
        if v is None:
            assert got[k] is None, k
        else:
            assert got[k] == pytest.approx(v, rel=rel, abs=1e-30), (k, got[k], v)
