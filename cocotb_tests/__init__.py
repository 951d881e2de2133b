"""cocotb testbenches: one module per block, each holding its cocotb tests and pytest runner."""
