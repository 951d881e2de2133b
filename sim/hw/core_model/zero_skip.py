"""Zero skipping (``config.zero_skip`` only; ``rtl.core.Core._zero_skip_s1`` / ``_zero_skip_s2``,
``rtl.zero_detect``): a WRITE_ROW / PROGRAM from ``WriteSrc.TBUF_ZS`` sets its row's zero flag
if the whole transpose buffer is 0 (every other write of the row clears it); a ``MOVE SKIPZ``
of a flagged row makes the controller skip the next b instructions, and the REQUANTs after it
take their addend from buffer slot b; the zero-skipping counters (``rtl.isa.ZERO_SKIP_COUNTERS``).
:class:`ZeroSkipStage` plays a trace with the skips: the skipped micro-ops are dropped and
everything after them issues earlier, as the controller jumps.
"""

from __future__ import annotations

from rtl.isa import COUNTER_CYCLES, COUNTER_STALLS, ZERO_SKIP_COUNTERS, Opcode, WriteSrc, \
    counter_index

__all__ = ["ZeroSkipStage"]

_SRC_TBUF_ZS = WriteSrc.TBUF_ZS.value


class ZeroSkipStage:
    """The zero-skipping part of :class:`~sim.hw.core_model.CoreModel`."""

    def _init_zero_skip(self, cfg) -> None:
        """The rows' zero flags, the latest SKIPZ's outcome, the counters, the operands
        gathered for the next tile (``rtl.core.Core._zero_skip_s1``)."""
        self._zs = cfg.zero_skip
        self._zflags = [False] * cfg.rows
        self._zs_start()

    def _zs_start(self) -> None:
        """``start``: the SKIPZ outcome and the counters cleared."""
        self._zs_taken = self._zs_take_now = False
        self._zs_counts = dict.fromkeys(ZERO_SKIP_COUNTERS, 0)
        self._zs_tile_ops, self._zs_last_gather = 0, -10

    def _execute_skipping(self, codes, imms, a, b, d, cyc, counters, unstalled) -> list:
        """Play a trace with zero skipping: after a taken ``MOVE SKIPZ`` (issue cycle c) the
        next ``b`` micro-ops of the trace are not issued and everything after them issues
        earlier, the first of them in c + 1 + g (as the controller jumps, ``rtl.controller``),
        g the cycles of the control instructions between the window and that entry (NOPs:
        ``jeit_fa``'s flush; they are not skipped), taken from ``unstalled`` = ``(issue
        cycles, counters)`` without stalls. The skipped instructions are straight-line
        micro-ops (the compiler's tile dot), so they are ``b`` trace entries, and their cycles
        (with their stalls) are the others up to the next entry, except that an ENDLOOP folded
        into the window's last micro-op (into the SKIPZ if b = 0) takes a cycle of its own
        after the jump (``unstalled[2]``: the micro-ops an ENDLOOP is folded into). Returns the
        counters with the skipped cycles, stalls and micro-ops taken out."""
        total = len(codes)
        end = counters[COUNTER_CYCLES] - 1              # the HALT's cycle
        cyc0, end0, folds = unstalled[0], unstalled[1][COUNTER_CYCLES] - 1, unstalled[2]
        dropped = [0] * len(Opcode)
        state = {"off": 0, "endloops": 0}

        def steps():
            i, off, endloops = 0, 0, 0
            while i < total:
                yield codes[i], imms[i], a[i], b[i], d[i], cyc[i] - off
                if self._zs_take_now:
                    self._zs_take_now = False
                    j = min(i + 1 + b[i], total)
                    for k in range(i + 1, j):
                        dropped[codes[k]] += 1
                    g = (int(cyc0[j]) if j < total else end0) - int(cyc0[j - 1]) - 1
                    # the controller jumps past the window and folds no ENDLOOP into the
                    # SKIPZ: an ENDLOOP folded into the window's last micro-op (the SKIPZ's
                    # own if b = 0) takes a cycle of its own (rtl.controller)
                    unfolded = int(bool(folds[j - 1]))
                    off += (cyc[j] if j < total else end) - cyc[i] - 1 - g - unfolded
                    endloops += unfolded
                    i = j
                else:
                    i += 1
            state["off"], state["endloops"] = off, endloops

        self._execute(steps())
        off, endloops = state["off"], state["endloops"]
        if not off and not endloops:
            return counters
        counters = list(counters)
        counters[COUNTER_CYCLES] -= off
        counters[COUNTER_STALLS] -= off + endloops - sum(dropped)
        for code, k in enumerate(dropped):
            counters[counter_index(Opcode(code))] -= k
        return counters

    def _skipz(self, a: int, d: int, c: int) -> None:
        """``MOVE SKIPZ`` (S1): taken if row a's zero flag is set; counts the tile and its
        ``d`` saved cycles."""
        rows = self.rows
        if a >= rows:
            self._fail(f"cycle {c}: MOVE SKIPZ row a={a} is not below rows={rows}")
        take = a < rows and self._zflags[a]
        self._zs_taken = take
        if take:
            self._zs_take_now = True
            zc = self._zs_counts
            zc["zs_tiles"] += 1
            zc["zs_cycles_saved"] += d

    def _requant_skipped(self, imm: int, a: int, b: int, d: int, c: int) -> None:
        """A REQUANT after a taken SKIPZ: the PPU steps with the low ``acc_bits`` bits of
        buffer slot b as the addend (a skipped tile)."""
        slots = self.buffer_slots
        if b >= slots:
            self._fail(f"cycle {c}: REQUANT after a taken SKIPZ: slot b={b} is "
                       f"not below buffer_slots={slots}")
        self._ppu_step(a, d, imm, c, addend=self._buffer[b & (slots - 1)] % self._acc_mod)

    def _zs_write(self, imm, a, b, c) -> None:
        """Zero skipping at the S1 of a WRITE_ROW / PROGRAM of row ``a``: its zero flag
        (set by a TBUF_ZS of an all-zero transpose buffer, else cleared); a TBUF_ZS of plane 0
        starts a tile: the operands gathered for it (those issued up to c - 2) count as
        skipped if the buffer is all zero."""
        zero_src = imm == _SRC_TBUF_ZS
        tbuf_zero = zero_src and not any(self._tbuf_planes_at(c))
        if a < self.rows:
            self._zflags[a] = tbuf_zero
        if zero_src and b == 0:
            late = self._zs_last_gather == c - 1     # its S2 is this cycle: the next tile's
            seen = self._zs_tile_ops - late
            self._zs_tile_ops = int(late)
            if tbuf_zero:
                self._zs_counts["zs_skipped"] += seen

