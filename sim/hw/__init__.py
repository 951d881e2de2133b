"""Models of the hardware: the cycle-exact model of the core (``core_model``, one module per
pipeline stage of ``rtl.core``), the instruction-set interpreter (``isa_model``), the MTJ devices
(``device``) and sensing faults (``faults``), and the cost models: energy, latency and area
(``energy``), the SRAMs (``sram``), CMOS switching activity and leakage (``activity``), a chip of
mats on a shared bus (``chip``), CPU-IMAC energy (``imac_energy``), and the source class of every
constant they use (``sources``).
"""
