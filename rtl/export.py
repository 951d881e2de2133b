"""Write the Verilog of every block for one preset: ``python -m rtl.export --preset NAME``.

Output: ``<out>/<block>.v`` per block (toplevel module named ``<block>``) and ``lint.vlt``, the
Verilator lint waivers with their reasons. Same configuration, same bytes: no source locations
are emitted. Bad input gives a one-line error and exit code 2.

``<out>`` is written as a whole by :func:`rtl.outputs.write_tree`: in a directory next to it,
renamed into place when complete, so a failure never leaves a partial output behind. It must be
a new path, an empty directory, or a directory an earlier export made (marked by
``rtl.outputs.MARKER``, which lists the files written) holding nothing else; any other existing
directory is refused before any Verilog is generated, and the message says to give a new or
empty directory or to remove it yourself. Export never deletes a directory it did not make.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from rtl.abs_diff_lane import AbsDiffLane
from rtl.bit_counter import BitCounter
from rtl.column_reduce import ColumnReduce
from rtl.config import (
    AcceleratorConfig,
    mat_bound_reason,
    max_subarrays_per_mat,
    preset,
    preset_names,
)
from rtl.controller import Controller
from rtl.core import Core
from rtl.fa_fs import FaFs
from rtl.min_lane import MinLane
from rtl.mtj_array import MtjArray
from rtl.outputs import UserError, check_tree, interruptible, write_tree
from rtl.ppu import Ppu
from rtl.sense_amp import SenseAmp
from rtl.zero_detect import ZeroDetect

__all__ = ["BLOCKS", "LINT_WAIVERS", "verilog_of", "export"]

#: Block name (file and toplevel module name) -> component class.
BLOCKS = {
    "sense_amp":     SenseAmp,
    "bit_counter":   BitCounter,
    "fa_fs":         FaFs,
    "min_lane":      MinLane,
    "column_reduce": ColumnReduce,
    "abs_diff_lane": AbsDiffLane,
    "zero_detect":   ZeroDetect,
    "mtj_array":     MtjArray,
    "controller":    Controller,
    "ppu":           Ppu,
    "core":          Core,
}

#: Verilator configuration for ``verilator --lint-only -Wall``: every waiver with its reason.
LINT_WAIVERS = """\
`verilator_config
// Amaranth declares each register with its reset value as initial value (the power-on state)
// and assigns it in an always block; that is the intended idiom of its Verilog back end.
lint_off -rule PROCASSINIT
// Amaranth's intermediate nets ($N) of an addition are one bit wider than the register they
// feed; the dropped carry is the documented wrap-around of the bit-counter (it never counts
// beyond its capacity in use).
lint_off -rule UNUSEDSIGNAL -file "*" -match "Bits of signal are not used: '$*"
// Amaranth emits a named wire per element of an ArrayLayout port (count[i]) for waveform
// viewing; the port itself is used.
lint_off -rule UNUSEDSIGNAL -file "*" -match "Signal is not used: 'count[*"
// The MTJ array model: Amaranth names the address net of each memory port (<port>__addr);
// yosys's Verilog indexes the memory with the driving expression itself, so the named alias
// has no reader.
lint_off -rule UNUSEDSIGNAL -file "*mtj_array.v" -match "Signal is not used: '*__addr'"
// The controller's instruction memories: the same named address nets of the read and write
// ports, and the write data net (yosys writes the memory from the driving port directly).
lint_off -rule UNUSEDSIGNAL -file "*controller.v" -match "Signal is not used: '*__addr'"
lint_off -rule UNUSEDSIGNAL -file "*controller.v" -match "Signal is not used: '*_w__data'"
// The PPU's requant table and output memory: Amaranth names the nets of each memory port
// (<port>__addr, __data, __en); yosys reads and writes the memory from the driving nets.
lint_off -rule UNUSEDSIGNAL -file "*ppu.v" -match "Signal is not used: '*_r__*'"
lint_off -rule UNUSEDSIGNAL -file "*ppu.v" -match "Signal is not used: '*_w__*'"
// The core holds every block in one file: the waived nets above appear there again, and yosys
// adds in the parent an alias net per port connection that the instance itself does not read.
lint_off -rule UNUSEDSIGNAL -file "*core.v"
lint_off -rule DECLFILENAME -file "*core.v"
"""


def verilog_of(block: str, config: AcceleratorConfig) -> str:
    """Verilog text of ``block`` built for ``config``, toplevel module named ``block``."""
    from amaranth.back import verilog

    return verilog.convert(BLOCKS[block](config=config), name=block, emit_src=False)


#: How the tool names itself in the marker of the directories it writes and in messages.
TOOL = "python -m rtl.export"
#: The files an export writes (besides the marker ``rtl.outputs.MARKER``).
FILES = (*(f"{block}.v" for block in BLOCKS), "lint.vlt")


def export(config: AcceleratorConfig, out: Path, *, option: str | None = None) -> list[Path]:
    """Write every block of ``config`` and ``lint.vlt`` into the directory ``out`` as a whole.

    Raises
    ------
    rtl.outputs.OutputPathError
        ``out`` may not be written (see the module docstring); checked before any Verilog is
        generated. ``option`` names the command-line option in the message.
    """
    check_tree(option, out, tool=TOOL, names=FILES)
    files = {f"{block}.v": verilog_of(block, config) for block in BLOCKS}
    files["lint.vlt"] = LINT_WAIVERS
    return write_tree(out, files, tool=TOOL, option=option)[:len(BLOCKS)]


@interruptible(TOOL, "--out is unchanged (the Verilog is written into a hidden directory "
              "that is renamed into place only when complete)")
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rtl.export",
                                     description="Write the Verilog of every block for a preset.")
    parser.add_argument("--preset", required=True, help=f"one of {', '.join(preset_names())}")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default build/verilog/<preset>)")
    parser.add_argument("--mat", default=None,
                        help="subarrays in the core's mat (default: the preset's "
                             "subarrays_per_mat)")
    args = parser.parse_args(argv)
    out = args.out if args.out is not None else Path("build", "verilog", args.preset)
    try:
        config = preset(args.preset)
        if args.mat is not None:
            try:
                mat = int(args.mat)
            except ValueError:
                mat = 0
            hi = max_subarrays_per_mat(config.columns)
            if not 1 <= mat <= hi:
                raise ValueError(f"--mat must be an integer in [1, {hi}] for preset "
                                 f"{args.preset} (subarrays in the core's mat: "
                                 f"{mat_bound_reason(config.columns)}), not {args.mat!r}")
            config = dataclasses.replace(config, subarrays_per_mat=mat)
        check_tree("--out", out, tool=TOOL, names=FILES)    # before any Verilog is made
    except (ValueError, UserError) as e:
        print(f"{TOOL}: error: {e}", file=sys.stderr)
        return 2
    try:
        paths = export(config, out, option="--out")
    except UserError as e:                      # the path changed meanwhile, or a full disk
        print(f"{TOOL}: error: {e}", file=sys.stderr)
        return 2
    for path in paths:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
