"""Cycle-exact Python model of the accelerator core (``rtl.core.Core``, whose contract is
``docs/datapath.rst``).

:class:`CoreModel` has the host interface of the RTL core (weight buffer, requantization table,
array commands, data memory, gather tables, program + start) and executes a program the way the
core does: the controller's micro-op trace (each issued micro-op, its resolved operands and the
cycle it is issued in; ``sim.hw.isa_model.run_program`` is the reference, a vectorised expansion of
the loop nest gives the same for well-formed programs) is played through the datapath's three
pipeline stages:

* S1 (issue cycle c): the array command, the weight-buffer read (``buffer[b]``, also the FU
  line), the transpose-buffer read of a ``WRITE_ROW`` / ``PROGRAM`` from ``TBUF`` and the
  gather's table look-up; written rows are visible to a sense in c + 1;
* S2 (c + 1): the lanes of the configuration's routes (``sim.routes``: the min lanes of
  ``write_free``, the abs-diff lanes of ``abs_diff``, the FA/FS lanes of ``dima_binconv``) on
  the sensed row and the registered
  buffer word; the gather's data-memory read and its write
  into the transpose buffer, the transpose buffer's CLEAR;
* S3 (c + 2): the reduction unit (``rtl.column_reduce``), the PPU (``rtl.ppu``, writing the data
  memory) and the PPU's write pointer (``SETPTR`` / ``ADDPTR``).

Device timing: a micro-op whose device operation takes c > 1 cycles
(``config.stall_table``, ``AcceleratorConfig.op_cycles``) acts (its S1) in the cycle it is
issued and keeps the array busy c - 1 more cycles, during which the next micro-op is held on
the issue port; the trace's issue cycles are those after the holds (:func:`add_stalls`), and
the held cycles count in ``cycles`` and ``stalls``.

Every register updates at the end of its cycle. The stages of consecutive micro-ops overlap, but
all state except three is read and written by a single stage, in issue order, so playing the
micro-ops one after the other through S1, S2, S3 is exact. The three exceptions, each kept
exact:

* the abs-diff lanes' ``out``: written at the end of the S2 cycle of an FS_STEP DIFF (issue c,
  visible from c + 2 on) and read at the S1 of a WRITE_ROW / PROGRAM from ``ABS_DIFF``. The
  model keeps the last two values with the issue cycle of the DIFF that wrote the newer one
  (the FA/FS lanes' ``out``, FA_STEP and ``FA_FS``, likewise);
* the transpose buffer: written by GATHER / CLEAR at the end of their S2 (issue c, visible from
  c + 2 on), read at the S1 of a write from ``TBUF``. The model queues the GATHER / CLEAR
  effects and applies those issued two or more cycles before a ``TBUF`` write before it reads;
* the data memory: written by the PPU at the end of a REQUANT's S3 (issue c), read by a GATHER
  in its S2: a GATHER issued in c + 1 reads the word as it was before. The model keeps the
  latest PPU write (cycle, address, previous word).

The mat. The core is ``subarrays`` (K) subarrays of ``rows x config.columns`` (C) cells in
lock-step: one command addresses the same row of all of them, so the model holds the mat as
one array of width W = K*C (``CoreModel.columns``); mat column ``g = k*C + j`` is subarray
``k``'s column ``j`` and its fault LFSR is seeded ``rtl.mtj_array.column_seed(seed, g)``: the
faults are exactly those of one W-wide array. Every reduce micro-op updates the accumulator of
each subarray from its segment of the row (columns ``k*C .. k*C + C - 1``); REQUANT's operand d
picks the PPU's addend: 0 the sum of all K accumulators modulo ``2**acc_bits`` (every reduce is
linear, so this is one accumulator over the whole row, which is what the model keeps), ``k + 1``
accumulator ``k`` alone (the model derives the K accumulators from a log of the reduce
micro-ops since the last one that clears, when a REQUANT asks for one).

Rows are bit vectors of W bits, column g at bit g. Inside the model a row is a Python ``int``
(bitwise operators act on all columns at once and ``int.bit_count`` is the column popcount):
this is the column-parallel vectorisation, at a fraction of the per-operation cost of a small
numpy array, and the loop in Python runs over micro-ops only. At the host interface rows are
numpy bool arrays ``[W]`` (or ints).

Data memory (the PPU's output memory, ``out_depth`` words of 32 bits): the PPU writes its
outputs at its write pointer ``ptr`` (cleared by start, +1 per word, set by ``MOVE SETPTR`` /
``ADDPTR``); GATHER reads it; the host writes and reads it while idle
(:meth:`CoreModel.write_dmem`, :meth:`CoreModel.read_dmem`). Its contents persist across runs.
Words are unsigned 32-bit ints: a requantized activation is a value in [0, 255]; a logit is the
two's complement of a signed 32-bit number (:func:`signed32`).

Gather (``MOVE GATHER``, operands a = transpose-buffer column, b = offset-table entry, d =
patch-table entry): with ``F = otab[b]`` and ``P = ptab[d]``, the word at ``(P.base + F.offset)
mod 2**16`` if bit ``F.kpos`` of ``P.mask`` is set, else 0 (zero padding), goes into column a
of the transpose buffer, bit q of the word into plane q (q < n = ``operand_bits``). A
``WRITE_ROW`` / ``PROGRAM`` with ``imm = WriteSrc.TBUF`` writes plane b into row a.

Error side effects (what an erroneous micro-op still does, as ``rtl.core.Core`` does it: an
operand is cut to the width of the port it drives): a GATHER in error still writes the
transpose buffer, with the table entries ``b mod offset_depth`` / ``d mod patch_depth``, the
word at ``addr mod 2**ceil(log2 out_depth)`` (0 if that is not below ``out_depth``) and the
column ``a mod 2**ceil(log2 W)`` (none if that is not below W); a SETPTR / ADDPTR in error sets
the pointer to ``out_depth`` (every later word errors); a MOVE with an undefined ``imm`` does
nothing; a WRITE_ROW / PROGRAM from a source the core does not have (``imm`` > 2, or a
lane's source without that lane) writes the buffer word at slot ``b mod buffer_slots``, from a
transpose-buffer plane not below n plane ``b mod 2**ceil(log2 n)`` (0 if that is not below n)
(the command is still issued, as for every other operand error); a REQUANT with d > K is
dropped (the PPU does not step).

Sensing faults (``rtl.mtj_array``, ``golden.array``): :meth:`CoreModel.set_faults` is the core's
``fault_seed`` / ``fault_threshold`` / ``fault_load`` / ``fault_en``. While enabled, every sense
command the array sees (READ for READ / SHIFT_ACC / MIN_STEP / FS_STEP / FA_STEP, AND_FU, AND2, OR2,
including one from the host) advances every column's 32-bit LFSR by 16 steps and inverts the
sensed bit of each column whose 16 fresh bits are below the threshold; nothing else moves the
LFSRs. The LFSRs are kept bit-sliced, as 32 row ints (plane ``j`` holds bit ``j`` of every
column's state), so one sensing is a few dozen column-parallel int operations.

The model is a package whose modules mirror the core's blocks (``rtl.core.Core`` and the
blocks it instantiates); :class:`CoreModel` is composed of one mixin per stage:

* :mod:`sim.hw.core_model.controller`: the controller's trace (``rtl.controller``) and the
  issue-port hold of slow device operations (:func:`expand_program`, :func:`add_stalls`);
* :mod:`sim.hw.core_model.array`: the MTJ arrays, sense amplifiers, fault LFSRs and the weight
  buffer (S1);
* :mod:`sim.hw.core_model.movement`: the data memory, the gather tables and the transpose buffer
  (the MOVE micro-ops);
* :mod:`sim.hw.core_model.reduce`: the lanes of the routes (S2) and the reduction units (S3);
* :mod:`sim.hw.core_model.ppu`: the PPU and its write pointer (S3 of REQUANT);
* :mod:`sim.hw.core_model.zero_skip`: zero skipping (zero flags, SKIPZ, its counters);
* :mod:`sim.hw.core_model.bit_counter`: the BITCOUNT micro-op (route ``nand_inmem``);
* :mod:`sim.hw.core_model.core`: :class:`CoreModel`, the host interface and the pipeline that
  hands each micro-op to its stage.
"""

from golden.array import pack_row, unpack_row
from sim.hw.core_model.array import ArrayResponse, FaultState
from sim.hw.core_model.controller import PIPELINE_DRAIN, add_stalls, expand_program
from sim.hw.core_model.core import CORE_OPS, CoreModel, CoreRun
from sim.hw.core_model.ppu import (
    MODE_AVG4, MODE_LOGIT, MODE_MAX4, MODE_REQUANT, PPU_CLEAR, PPU_EMIT, PPU_MODE_LSB, PPU_NEG,
    signed32,
)

__all__ = ["CoreModel", "CoreRun", "ArrayResponse", "FaultState", "signed32", "pack_row",
           "unpack_row", "expand_program", "add_stalls",
           "PPU_CLEAR", "PPU_EMIT", "PPU_NEG", "PPU_MODE_LSB", "MODE_REQUANT", "MODE_MAX4",
           "MODE_AVG4", "MODE_LOGIT", "CORE_OPS", "PIPELINE_DRAIN"]
