"""Evaluation: the figures the project reports. Per-preset cycles, energy, GOPS, GOPS/W and area
(``report``), the seeds' reproduction tables (``jeit``, ``dima_repro``), counting mode and reference
networks (``counting``, ``reference_nets``), accuracy under device variation (``variation``,
``imac_variation``), sensitivity to every assumption (``sensitivity``), dataflow and zero-skip
comparisons (``route_compare``, ``zero_skip``), logic synthesis (``synth``), benchmarks (``bench``)
and mutation testing of the generator (``mutate``).
"""
