"""The on-chip data movement of ``rtl.core.Core``: the data memory (the PPU's output memory,
where the layers' activations live), the gather's address tables (offset and patch tables) and
the transpose buffer (``n`` planes of W bits) with the MOVE micro-ops that connect them: GATHER
(table look-up in S1, data-memory read and column write in S2), CLEAR, SETPAD (the padding
register of ``rtl.core.Core._pad_register``) and the in-memory post-processing path of route
``nand_inmem`` (``rtl.core.Core._inmem_path``: GSHIFT, LOADPLANE, SCATTER). The transpose
buffer's writes land at the end of their S2, so :class:`MovementStage` queues them and applies
those issued two or more cycles before a read.
"""

from __future__ import annotations

import numpy as np

from golden.array import unpack_row
from rtl.isa import OFFSET_BITS, MoveOp
from sim.hw.core_model.ppu import _OUT_BITS, _check_int, signed32

__all__ = ["MovementStage"]

_GATHER, _CLEAR = MoveOp.GATHER.value, MoveOp.CLEAR.value
_SETPTR, _ADDPTR = MoveOp.SETPTR.value, MoveOp.ADDPTR.value
_SETPAD, _SKIPZ = MoveOp.SETPAD.value, MoveOp.SKIPZ.value
_SUBSEL = MoveOp.SUBSEL.value
#: The in-memory post-processing's path (route nand_inmem; MovementStage._inmem_move).
_INMEM_MOVES = (MoveOp.GSHIFT.value, MoveOp.LOADPLANE.value, MoveOp.SCATTER.value)
_ADDR_MASK = (1 << OFFSET_BITS) - 1


class MovementStage:
    """The data memory, gather tables and transpose buffer of
    :class:`~sim.hw.core_model.CoreModel`."""

    def _init_movement(self, cfg) -> None:
        w = self.columns
        self._pad = 0
        self._has_bc = "nand_inmem" in cfg.routes     # MOVE GSHIFT / LOADPLANE / SCATTER
        self._gshift = 0
        self._out = [0] * self.out_depth
        self._off = [0] * self.offset_depth           # offset table: offset, kpos
        self._kpos = [0] * self.offset_depth
        self._pbase = [0] * self.patch_depth          # patch table: base, mask
        self._pmask = [0] * self.patch_depth
        # Transpose buffer: the column values (n bits each) and their planes (a cache).
        self._tb_dtype = np.dtype("<u1" if self._n <= 8 else "<u2" if self._n <= 16 else "<u4")
        self._tb_cols = np.zeros(w, dtype=self._tb_dtype)
        self._tb_planes = [0] * self._n
        self._tb_pending: list = []                   # (issue cycle, column or -1 CLEAR, value)

    def write_dmem(self, addr: int, value: int) -> None:
        """Write data-memory word ``addr`` (the core's ``dmem_we`` / ``dmem_waddr`` /
        ``dmem_wdata``).

        Raises
        ------
        ValueError
            ``addr`` not in [0, out_depth) or ``value`` not in [0, 2**32).
        """
        _check_int("addr", addr, 0, self.out_depth - 1)
        _check_int("value", value, 0, (1 << _OUT_BITS) - 1)
        self._out[int(addr)] = int(value)

    def read_dmem(self, addr: int) -> int:
        """Data-memory word ``addr``, unsigned 32-bit (the core's ``out_raddr`` /
        ``out_rdata``).

        Raises
        ------
        ValueError
            ``addr`` not in [0, out_depth).
        """
        _check_int("addr", addr, 0, self.out_depth - 1)
        return self._out[int(addr)]

    def write_offset(self, index: int, offset: int, kpos: int) -> None:
        """Write offset-table entry ``index`` (``agu_sel`` 0): ``offset`` in [0, 2**16),
        ``kpos`` in [0, 32).

        Raises
        ------
        ValueError
            A value out of its range (the message names it).
        """
        _check_int("index", index, 0, self.offset_depth - 1)
        _check_int("offset", offset, 0, (1 << OFFSET_BITS) - 1)
        _check_int("kpos", kpos, 0, (1 << self.config.kpos_bits) - 1)
        self._off[int(index)], self._kpos[int(index)] = int(offset), int(kpos)

    def write_patch(self, index: int, base: int, mask: int) -> None:
        """Write patch-table entry ``index`` (``agu_sel`` 1): ``base`` in [0, 2**16), ``mask``
        in [0, 2**32).

        Raises
        ------
        ValueError
            A value out of its range (the message names it).
        """
        _check_int("index", index, 0, self.patch_depth - 1)
        _check_int("base", base, 0, (1 << OFFSET_BITS) - 1)
        _check_int("mask", mask, 0, (1 << self.config.patch_mask_bits) - 1)
        self._pbase[int(index)], self._pmask[int(index)] = int(base), int(mask)


    def read_tbuf(self) -> np.ndarray:
        """The transpose buffer (a backdoor for tests): bool [n, W], plane q at ``[q]``."""
        self._tbuf_settle()
        return np.stack([unpack_row(p, self.columns) for p in self._tbuf_planes_now()])


    @property
    def out_memory(self) -> tuple:
        """The whole data memory (unsigned 32-bit words)."""
        return tuple(self._out)


    def _move_step(self):
        """The MOVE micro-ops: ``move(imm, a, b, d, c)`` by ``imm`` (``MoveOp``); a closure over
        this run's tables (``_execute``)."""
        width, n = self.columns, self._n
        nmask = (1 << n) - 1
        odepth, pdepth, out_depth = self.offset_depth, self.patch_depth, self.out_depth
        ooff, okpos, pbase, pmask, dmem = self._off, self._kpos, self._pbase, self._pmask, \
            self._out
        zs, zc = self._zs, self._zs_counts
        has_thresh, has_bc = self._has_thresh, self._has_bc
        fail = self._fail
        # what the ports keep of an out-of-range operand (the error side effects)
        col_mask = (1 << max(1, (width - 1).bit_length())) - 1
        addr_mask = (1 << max(1, (out_depth - 1).bit_length())) - 1

        def move(imm, a, b, d, c):
            if imm == _GATHER:
                # S1: the table look-up; S2: the data-memory read, the column write.
                if a >= width or b >= odepth or d >= pdepth:
                    fail(f"cycle {c}: MOVE GATHER " + (
                        f"column a={a} is not below the mat's {width} columns"
                        if a >= width else
                        f"offset entry b={b} is not below offset_depth={odepth}"
                        if b >= odepth else
                        f"patch entry d={d} is not below patch_depth={pdepth}"))
                    a, b, d = a & col_mask, b & (odepth - 1), d & (pdepth - 1)
                if pmask[d] >> okpos[b] & 1:
                    addr = (pbase[d] + ooff[b]) & _ADDR_MASK
                    if addr >= out_depth:
                        fail(f"cycle {c}: MOVE GATHER address {addr} (patch entry {d} "
                             f"base {pbase[d]} + offset entry {b} {ooff[b]}) is not "
                             f"below out_depth={out_depth}")
                        addr &= addr_mask
                    if addr == self._emit_addr and self._emit_cycle == c - 1:
                        v = self._emit_old     # the REQUANT of c - 1 writes after our read
                    else:
                        v = dmem[addr] if addr < out_depth else 0
                    gv = ((signed32(v) >> self._gshift) if self._gshift else v) & nmask
                else:
                    gv = self._pad                 # padding (MOVE SETPAD, else 0)
                if a < width:
                    self._tb_pending.append((c, a, gv))
                if zs:                     # S2: the zero-detect, the tile's operands
                    zc["zs_operands"] += 1
                    zc["zs_zero"] += gv == 0
                    self._zs_tile_ops += 1
                    self._zs_last_gather = c
            elif imm == _CLEAR:
                self._tb_pending.append((c, -1, 0))
            elif imm == _SETPAD and has_thresh:
                self._pad = a & nmask
            elif imm == _SUBSEL and has_thresh:        # the class gate (rtl.core._class_gate)
                if b < 1 or a + b > self.subarrays:
                    fail(f"cycle {c}: MOVE SUBSEL a={a} b={b}: the enabled subarrays a .. "
                         f"a + b - 1 must be among the mat's {self.subarrays} (b >= 1)")
                else:
                    self._en = self._subarray_columns(a, b)
            elif imm in _INMEM_MOVES and has_bc:
                self._inmem_move(imm, a, d, c)
            elif zs and imm == _SKIPZ:
                self._skipz(a, d, c)
            elif imm == _SETPTR or imm == _ADDPTR:
                self._move_ptr(imm, a, c)
            else:
                fail(f"cycle {c}: MOVE imm={imm} is not a MoveOp (GATHER, CLEAR, "
                     f"SETPTR, ADDPTR)")

        return move

    # transpose buffer

    def _tbuf_apply(self, entries) -> None:
        cols = self._tb_cols
        for _, col, v in entries:
            if col == -1:
                cols[:] = 0
            elif col < -1:                   # LOADPLANE: row v into plane -2 - col
                q = -2 - col
                bit = self._tb_dtype.type(1 << q)
                cols &= ~bit
                cols |= unpack_row(v, self.columns).astype(self._tb_dtype) << q
            else:
                cols[col] = v
        self._tb_planes = None

    def _tbuf_settle(self) -> None:
        """Apply every queued GATHER / CLEAR (all have landed once the run is over)."""
        if self._tb_pending:
            self._tbuf_apply(self._tb_pending)
            self._tb_pending = []

    def _tbuf_planes_at(self, c: int) -> list:
        """The transpose buffer's planes as a micro-op issued in cycle ``c`` reads them at its
        S1: with the GATHER / CLEAR issued up to ``c - 2`` (the one in ``c - 1`` lands at the
        end of ``c``)."""
        pend = self._tb_pending
        if pend:
            keep = [pend.pop()] if pend[-1][0] >= c - 1 else []
            if pend:
                self._tbuf_apply(pend)
            self._tb_pending = keep
        return self._tbuf_planes_now()

    def _tbuf_planes_now(self) -> list:
        if self._tb_planes is None:
            w, n = self.columns, self._n
            raw = self._tb_cols.view(np.uint8).reshape(w, self._tb_dtype.itemsize)
            bits = np.unpackbits(raw, axis=1, bitorder="little")[:, :n]
            packed = np.packbits(bits.T, axis=1, bitorder="little")
            self._tb_planes = [int.from_bytes(row.tobytes(), "little") for row in packed]
        return self._tb_planes

    def _inmem_move(self, imm: int, a: int, d: int, c: int) -> None:
        """``MOVE GSHIFT`` / ``LOADPLANE`` / ``SCATTER`` (route ``nand_inmem``, ``rtl.isa.
        MoveOp``): the gather shift (S2); row a sensed into transpose-buffer plane d (S2, as a
        GATHER lands); column a of the transpose buffer into data-memory word d (S3: it sees
        every micro-op issued before it, and a GATHER issued the cycle after reads the old
        word, as after a REQUANT)."""
        n, width, rows = self._n, self.columns, self.rows
        if imm == MoveOp.GSHIFT.value:
            if a >= 32:
                self._fail(f"cycle {c}: MOVE GSHIFT a={a} is not below 32")
            else:
                self._gshift = a
        elif imm == MoveOp.LOADPLANE.value:
            if a >= rows or d >= n:
                self._fail(f"cycle {c}: MOVE LOADPLANE " + (
                    f"row a={a} is not below rows={rows}" if a >= rows else
                    f"plane d={d} is not below operand_bits={n}"))
            ra = a & self._row_mask
            x = self._mat.sense_row("read", ra)
            if self._fault_en:
                x ^= self._fault_flips()
            if d < n:
                self._tb_pending.append((c, -2 - d, x))
        else:
            if a >= width or d >= self.out_depth:
                self._fail(f"cycle {c}: MOVE SCATTER " + (
                    f"column a={a} is not below the mat's {width} columns" if a >= width else
                    f"word d={d} is not below out_depth={self.out_depth}"))
                return
            self._tbuf_settle()
            self._emit_cycle, self._emit_addr, self._emit_old = c, d, self._out[d]
            self._out[d] = int(self._tb_cols[a])

