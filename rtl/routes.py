"""The hardware side of the dataflow routes: which periphery lanes and micro-ops each needs.

A **route** is one dataflow: the layer kinds it maps, the lanes it needs in the mat, how it lays
out data, the micro-op program it emits, and how the cycle model executes those micro-ops. A
route has two halves, because ``rtl/`` may import neither ``golden/`` nor ``sim/``:

* here, :class:`RouteHardware`: the lanes the core must instantiate for it, the micro-ops and
  write sources those lanes add to the core's instruction set. :class:`~rtl.core.Core` builds
  the union over ``config.routes`` and nothing else: a configuration without the ``abs_diff``
  route has no abs-diff lanes in its Verilog, and its core flags ``FS_STEP`` as an error;
* in ``sim.routes``: the compiler and cycle-model side of the same route, under the same name.

Adding a route: one :func:`register_route` call (here, or in the module that defines the
route's software half, before a configuration names it) and one ``sim.routes`` module. A route
that only uses the base micro-ops (:data:`BASE_OPS`: the array's sense and write commands, the
reduction unit, the PPU and the data movement) needs no lane and no change to the core.
"""

from __future__ import annotations

from dataclasses import dataclass

from rtl.isa import Opcode, WriteSrc

__all__ = ["LANES", "BASE_OPS", "BASE_WRITE_SOURCES", "RouteHardware", "ROUTES",
           "register_route", "route_hardware", "lanes_of", "opcodes_of", "write_sources_of"]

#: Periphery lanes the core can instantiate, one per mat column each:
#: ``min`` -- the two-flag MSB-first min lanes (``rtl.min_lane``), MIN_STEP;
#: ``abs_diff`` -- the seed-000 abs-diff lanes (``rtl.abs_diff_lane``), FS_STEP and the
#: ``WriteSrc.ABS_DIFF`` write-back of the difference bit;
#: ``fa_fs`` -- the seed-002 FA/FS lanes (``rtl.fa_fs``), one per column pair (2g, 2g+1),
#: FA_STEP and the ``WriteSrc.FA_FS`` write-back of the sum bit into the even columns;
#: ``bit_counter`` -- the seed-001 per-column bit-counters (``rtl.bit_counter``), BITCOUNT and
#: the ``WriteSrc.BIT_COUNTER`` write-back of the counters' LSBs (the counters shift right);
#: ``fa_array`` -- the seed-000 parallel full-adder array (``rtl.fa_array``), a bit-serial adder
#: tree per subarray on the abs-diff lanes' difference bits (FS_STEP DIFF with ``imm`` bit 2).
LANES = ("min", "abs_diff", "fa_fs", "bit_counter", "fa_array")

#: Micro-ops every core executes, whatever its routes: the array commands (the sense
#: amplifier's read / AND-with-FU / two-row AND / OR, the write, erase and program), the
#: reduction unit (``SHIFT_ACC``), the PPU (``REQUANT``) and the on-chip data movement (``MOVE``).
BASE_OPS = (Opcode.READ, Opcode.SHIFT_ACC, Opcode.AND_FU, Opcode.AND2, Opcode.OR2,
            Opcode.WRITE_ROW, Opcode.ERASE, Opcode.PROGRAM, Opcode.REQUANT, Opcode.MOVE)

#: Write sources every core has: a weight-buffer word and a transpose-buffer plane.
BASE_WRITE_SOURCES = (WriteSrc.BUFFER, WriteSrc.TBUF)


@dataclass(frozen=True)
class RouteHardware:
    """What one route needs of the core.

    Parameters
    ----------
    name : str
        The route's name, as ``AcceleratorConfig.routes`` and ``sim.routes`` spell it.
    lanes : tuple of str
        Lanes of :data:`LANES` the route's micro-ops drive.
    opcodes : tuple of Opcode
        Micro-ops beyond :data:`BASE_OPS` the route's programs use (executed by its lanes).
    write_sources : tuple of WriteSrc
        Write sources beyond :data:`BASE_WRITE_SOURCES` (a lane's output written back).
    summary : str
        One line: what the route computes and where it comes from.
    """

    name: str
    lanes: tuple = ()
    opcodes: tuple = ()
    write_sources: tuple = ()
    summary: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.isidentifier():
            raise ValueError(f"route name must be an identifier, not {self.name!r}")
        for lane in self.lanes:
            if lane not in LANES:
                raise ValueError(f"route {self.name!r}: lane must be one of "
                                 f"{', '.join(LANES)}, not {lane!r}")
        for op in self.opcodes:
            if not isinstance(op, Opcode):
                raise TypeError(f"route {self.name!r}: opcodes must be Opcode members, "
                                f"not {op!r}")
        for src in self.write_sources:
            if not isinstance(src, WriteSrc):
                raise TypeError(f"route {self.name!r}: write_sources must be WriteSrc "
                                f"members, not {src!r}")


#: Every known route by name, in registration order (the order of error messages).
ROUTES: dict[str, RouteHardware] = {}


def register_route(hardware: RouteHardware) -> RouteHardware:
    """Make ``hardware`` known to the configuration and the core; returns it.

    Raises
    ------
    TypeError
        ``hardware`` is not a :class:`RouteHardware`.
    ValueError
        A different route of the same name is registered already.
    """
    if not isinstance(hardware, RouteHardware):
        raise TypeError(f"hardware must be a RouteHardware, not {hardware!r}")
    old = ROUTES.get(hardware.name)
    if old is not None and old != hardware:
        raise ValueError(f"a different route named {hardware.name!r} is registered already")
    ROUTES[hardware.name] = hardware
    return hardware


def route_hardware(name: str) -> RouteHardware:
    """The registered route ``name``; a ValueError lists the known ones."""
    try:
        return ROUTES[name]
    except KeyError:
        raise ValueError(f"unknown route {name!r}; known routes: {', '.join(ROUTES)}") from None


def lanes_of(routes) -> frozenset:
    """The lanes a core with ``routes`` (names) instantiates."""
    return frozenset(lane for r in routes for lane in route_hardware(r).lanes)


def opcodes_of(routes) -> frozenset:
    """The micro-ops a core with ``routes`` executes: :data:`BASE_OPS` and the routes' own."""
    return frozenset(BASE_OPS).union(op for r in routes for op in route_hardware(r).opcodes)


def write_sources_of(routes) -> frozenset:
    """The ``WRITE_ROW`` / ``PROGRAM`` sources of a core with ``routes``."""
    return frozenset(BASE_WRITE_SOURCES).union(
        s for r in routes for s in route_hardware(r).write_sources)


# The routes of the four seed systems (sim.routes holds their compiler and model halves).
# Registration order is the order DATAFLOWS lists them in.
register_route(RouteHardware(
    name="abs_diff", lanes=("abs_diff",), opcodes=(Opcode.FS_STEP,),
    write_sources=(WriteSrc.ABS_DIFF,),
    summary="seed 000: |x - w| by a sign pass and a borrow-chain difference pass, the "
            "difference bits written back and bit-counted"))
register_route(RouteHardware(
    name="write_free", lanes=("min",), opcodes=(Opcode.MIN_STEP,),
    summary="sum |x - w| = sum x + sum w - 2 sum min(x, w), min MSB-first by two flags per "
            "lane, three popcounts per plane, nothing written back"))
register_route(RouteHardware(
    name="and_bitcount",
    summary="seed 001 eq. 1: AND of input and weight bit-planes on the FU line, bit-count, "
            "shift and add (multiply layers)"))
register_route(RouteHardware(
    name="dima_binconv", lanes=("fa_fs",), opcodes=(Opcode.FA_STEP,),
    write_sources=(WriteSrc.FA_FS,),
    summary="seed 002 Fig. 4a: the binary-weight convolver's bit-serial add/sub, the weight's "
            "sign picking add or subtract per lane, each sum bit written back (2n cycles)"))
register_route(RouteHardware(
    name="nand_inmem", lanes=("bit_counter",), opcodes=(Opcode.BITCOUNT,),
    write_sources=(WriteSrc.BIT_COUNTER, WriteSrc.BIT_COUNTER_XW, WriteSrc.BIT_COUNTER_XWM),
    summary="seed 001 Fig. 8-10: in-memory primitives on the per-column bit-counters: count "
            "sensed (or ANDed) bits, write the LSB back through the write word line (or "
            "cross-write it b lanes over, Fig. 10, in the lanes of a buffer mask), shift"))
register_route(RouteHardware(
    name="jeit_fa", lanes=("abs_diff", "fa_array"), opcodes=(Opcode.FS_STEP,),
    summary="seed 000: |x - w| in the abs-diff lanes, the difference bits summed by the "
            "parallel full-adder array (SUM / CARRY cells, one bit per cycle), nothing "
            "written back"))
register_route(RouteHardware(
    name="dima_bitwise",
    summary="seed 002 sec. 3.3 eq. 5: weight and input bit-planes both in the array, two-row "
            "AND (AND2) of each plane pair, bit-count, shift and sum (multiply layers on "
            "class B subarrays); base micro-ops only"))
