"""Flows that run a model somewhere: on the RTL core in Icarus or Verilator through cocotb
(``rtl_backend``), the CPU-IMAC split with its co-processor host (``imac_flow``, ``imac_host``), and
training of the bundled networks (``train``, ``train_imac``).
"""
