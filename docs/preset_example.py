"""The example preset of the walkthrough ``docs/add_preset.rst``, which includes this file.

``tests/test_docs.py`` follows the walkthrough with it: it registers the preset, exports a
block, compiles the digits model and runs an image on the numpy core model against golden.
"""

from rtl.config import AcceleratorConfig

#: The name under which the walkthrough registers the preset.
NAME = "stt_write_free"

# begin example
#: Seed 000's STT-MRAM accelerator with the write-free route for its adder layers.
CONFIG = AcceleratorConfig(
    technology="stt",
    # ASSUMPTION: seed 000's abstract gives no array organisation; the seed-001 subarray and
    # mat counts, as the jeit_stt preset.
    rows=256,
    columns=128,
    subarrays_per_mat=16,
    mats=1024,
    operand_bits=8,
    acc_bits=32,
    clock_mhz=133,              # seed 000 abstract: 133 MHz
    # ASSUMPTION: the write-free route instead of seed 000's in-situ absolute difference: it
    # needs only sensing (no write-back), which the STT cell has like every other.
    dataflow="write_free",
    # The core is generated for these routes: the write-free route's min lanes for the adder
    # layers, AND + bit-count (no lane) for the multiply layers; no abs-diff lanes.
    routes=("write_free", "and_bitcount"),
    mtjs_per_strip=1,           # one MTJ per cell: no shared strip
    zero_skip=False,            # the write-free route has no zero-operand skipping
    # Device timing: cycles = ceil(device time / 7.52 ns); the STT write of sim.hw.energy (10 ns,
    # ASSUMPTION there: seed 000 gives none) takes 2, every other operation 1.
    stall_table={"read": 1, "write": 2, "erase": 1, "program": 1},
)
# end example
