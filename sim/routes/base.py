"""What a route is to the compiler and the cycle model (:class:`Route`), and the registry.

A route is one dataflow (``rtl.routes`` has its hardware half: lanes and micro-ops). Its
software half, one module in this package, says:

* which layers it maps (:meth:`Route.maps`);
* which array rows it reserves in front of the data rows (:meth:`Route.scratch_rows`; the data
  layout itself, im2col bit-planes of the patches with the weights on the FU line, is the
  compiler's and shared by every route so far);
* the micro-ops of one tile's dot product (:meth:`Route.dot`), the core's accumulator left
  holding the *negated* dot product (the PPU's ``NEG`` restores the sign, as golden's adder
  accumulator is ``-sum |x - w|``);
* how the cycle model executes the micro-ops of its lanes (:meth:`Route.lanes`: a
  :class:`LaneModel` with a step per opcode and the write sources it drives).

Adding a route: a module here with a :class:`Route` subclass, registered with
:func:`register_route` (and its hardware with ``rtl.routes.register_route``), and its import
in ``sim/routes/__init__.py``. Nothing in the compiler, the cycle model or the core changes
(the walkthrough in the docs, and ``tests/test_routes.py``, add a toy route that way).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from rtl.isa import Instr, Opcode, Operand
from rtl.routes import route_hardware

__all__ = ["Route", "LaneModel", "ROUTES", "register_route", "get_route", "op"]


def _opnd(v) -> Operand:
    return v if isinstance(v, Operand) else Operand(int(v))


def op(opcode: Opcode, *, imm: int = 0, a=0, b=0, d=0) -> Instr:
    """A datapath instruction; operands are ints (absolute) or ``Operand`` (loop-relative),
    unused ones 0 (``rtl.isa.OPERANDS`` says what the core reads)."""
    return Instr(opcode, imm=imm, a=_opnd(a), b=_opnd(b), d=_opnd(d))


class LaneModel:
    """The cycle model's view of one route's lanes over the mat row (rows as Python ints,
    column g at bit g).

    ``ops`` maps an opcode value to ``step(imm, x, w, c)``: ``x`` the sensed row (faults
    applied), ``w`` the weight-buffer word at slot b, ``c`` the issue cycle. It returns
    ``(row_w, row_min)`` for the reduction unit (S3 reduces ``x`` with them by the ``ReduceOp``
    in ``imm``), or ``None`` when the micro-op does not reduce. ``write_sources`` maps a
    ``WriteSrc`` value to ``data(c)``: the row a ``WRITE_ROW`` / ``PROGRAM`` issued in cycle
    ``c`` writes from that source; ``write_masks`` maps such a source to the columns its
    writes drive (a row; a source not listed writes every column). :meth:`start` is the
    core's ``start``.

    Parameters
    ----------
    ones : int
        The all-ones row of the mat (W bits).
    """

    def __init__(self, ones: int):
        self._ones = ones
        self.ops: dict = {}
        self.write_sources: dict = {}
        self.write_masks: dict = {}

    def start(self) -> None:
        """The core's ``start`` (most lane registers keep their value across runs)."""


class Route(ABC):
    """The compiler and cycle-model half of one route (see the module docstring).

    Subclasses set :attr:`name` (the ``rtl.routes`` name of the route's hardware) and
    implement :meth:`maps` and :meth:`dot`.
    """

    #: The route's name, as ``AcceleratorConfig.routes`` spells it.
    name: str = ""

    @property
    def hardware(self):
        """The route's ``rtl.routes.RouteHardware``."""
        return route_hardware(self.name)

    @abstractmethod
    def maps(self, layer) -> bool:
        """Whether the route can compute ``layer`` (a ``golden.model.Layer``)."""

    def scratch_rows(self, config) -> tuple:
        """Array rows the route's micro-ops use besides the data rows (from row 0)."""
        return ()

    @abstractmethod
    def dot(self, stage, t: int, xrow, wslot, config) -> list:
        """The micro-ops of the dot product of tile ``t`` of ``stage``: ``xrow(b)`` the row of
        the patch's bit-plane b, ``wslot(b)`` the buffer slot of the weights' plane b (ints or
        loop-relative operands)."""

    def lanes(self, model) -> LaneModel | None:
        """The route's lanes in the cycle model ``model`` (``sim.hw.core_model.CoreModel``), or
        ``None`` if it has none."""
        return None


#: Every known route's software half by name.
ROUTES: dict[str, Route] = {}


def register_route(route: Route) -> Route:
    """Make ``route`` known to the compiler and the cycle model; returns it.

    Raises
    ------
    TypeError
        ``route`` is not a :class:`Route`.
    ValueError
        Its hardware is not registered in ``rtl.routes``, or another route has its name.
    """
    if not isinstance(route, Route):
        raise TypeError(f"route must be a sim.routes.Route, not {route!r}")
    route_hardware(route.name)                # the hardware half must exist
    old = ROUTES.get(route.name)
    if old is not None and type(old) is not type(route):
        raise ValueError(f"a different route named {route.name!r} is registered already")
    ROUTES[route.name] = route
    return route


def get_route(name: str) -> Route:
    """The registered route ``name``; a ValueError lists the known ones."""
    try:
        return ROUTES[name]
    except KeyError:
        raise ValueError(f"unknown route {name!r}; known routes: {', '.join(ROUTES)}") from None
