"""The lanes and the reduction units of ``rtl.core.Core``: S2, the lanes of the
configuration's routes on the sensed row and the registered buffer word (``sim.routes``: the
min lanes of ``write_free`` (``rtl.min_lane``), the abs-diff lanes of ``abs_diff``
(``rtl.abs_diff_lane``), the FA/FS lanes of ``dima_binconv`` (``rtl.fa_fs``), the full-adder
array of ``jeit_fa`` (``rtl.fa_array``), the bit-counters of ``nand_inmem``), and S3, each
subarray's reduction unit (``rtl.column_reduce``: popcount of its columns, shift-accumulate by
``ReduceOp``). Every reduce is linear, so :class:`LaneReduceStage` keeps one accumulator over
the whole mat row (the sum of the K subarrays') and derives the K accumulators, when a REQUANT
asks for one, from a log of the reduce micro-ops since the last one that clears.
"""

from __future__ import annotations

import numpy as np

from rtl.routes import opcodes_of
from sim.routes import get_route

__all__ = ["LaneReduceStage"]

#: Per ReduceOp code: (alpha, beta, l1): acc' = alpha * acc + beta * p, or + q for the L1 ops
#: (l1 True, q = p + |row_w| - 2 |row_min|). HOLD and the unused codes 11 .. 15 are absent.
_REDUCE_AFFINE = {1: (0, 0, False), 2: (1, 1, False), 3: (1, -2, False), 4: (2, 1, False),
                  5: (2, -2, False), 6: (2, 0, False), 7: (0, 1, True), 8: (2, 1, True),
                  9: (1, -1, False), 10: (2, -1, False)}
#: Reduce micro-ops logged before the subarray accumulators are brought up to date anyway.
_SEG_LOG_MAX = 512


def _chain_steps(steps):
    """One lane step that runs ``steps`` in order; the first reduction rows any returns."""
    def step(imm, x, w, c):
        out = None
        for s in steps:
            r = s(imm, x, w, c)
            out = r if out is None else out
        return out
    return step


class LaneReduceStage:
    """The lanes and accumulators of :class:`~sim.hw.core_model.CoreModel`."""

    def _init_lanes(self, cfg) -> None:
        """Accumulators (reset 0; only the reset clears them), the lanes of the routes."""
        self._acc_mod = 1 << cfg.acc_bits
        self._acc = 0                        # sum of the subarray accumulators, mod 2**acc_bits
        self._seg_base = [0] * self.subarrays  # the subarray accumulators before _seg_log
        self._seg_log: list = []             # reduce micro-ops since: (rop, x, row_w, row_min)
        # The micro-ops of the configuration's routes, and their lanes (``sim.routes``): a
        # step per lane opcode, the write sources the lanes drive.
        self._codes = frozenset(op.value for op in opcodes_of(cfg.routes))
        self._lanes = [lm for lm in (get_route(r).lanes(self) for r in cfg.routes)
                       if lm is not None]
        self._lane_ops = {code: step for lm in self._lanes for code, step in lm.ops.items()}
        for code in self._lane_ops:        # lanes of several routes on one opcode: each steps
            steps = [lm.ops[code] for lm in self._lanes if code in lm.ops]
            if len(steps) > 1:
                self._lane_ops[code] = _chain_steps(steps)
        # A lane model whose sums stand in for the accumulators as REQUANT's addend (route
        # jeit_fa's full-adder array, ``sums_at(cycle)``) until the next reduce, else None.
        self._lane_acc = None
        self._lane_srcs = {src: data for lm in self._lanes
                           for src, data in lm.write_sources.items()}
        self._lane_masks = {src: mask for lm in self._lanes
                            for src, mask in lm.write_masks.items()}

    @property
    def acc(self) -> int:
        """The sum of the subarrays' accumulators (REQUANT's addend with d = 0), as a signed
        ``acc_bits`` number."""
        a, m = self._acc, self._acc_mod
        return a - m if a >= m >> 1 else a

    @property
    def accs(self) -> tuple:
        """Each subarray's accumulator (REQUANT's addend with d = k + 1), signed ``acc_bits``
        numbers."""
        m = self._acc_mod
        return tuple(a - m if a >= m >> 1 else a for a in self._segments())


    # subarray accumulators

    def _segments(self) -> list:
        """Each subarray's accumulator (mod 2**acc_bits), from the log of reduce micro-ops."""
        k = self.subarrays
        if k == 1:
            return [self._acc]
        log = self._seg_log
        if not log:
            return self._seg_base
        m = self._acc_mod
        rows, coefs = [], []
        scale = 1                           # product of the alphas after the entry
        for rop, x, row_w, row_min in reversed(log):
            alpha, beta, l1 = _REDUCE_AFFINE[rop]
            if l1:
                rows += [x, row_w, row_min]
                coefs += [scale, scale, -2 * scale]
            elif beta:
                rows.append(x)
                coefs.append(beta * scale)
            scale = scale * alpha % m
        segs = self._seg_base
        if rows:
            w = self.columns
            nbytes = (w + 7) // 8
            raw = np.frombuffer(b"".join(r.to_bytes(nbytes, "little") for r in rows),
                                dtype=np.uint8)
            bits = np.unpackbits(raw, bitorder="little").reshape(len(rows), nbytes * 8)
            counts = bits[:, :w].reshape(len(rows), k, -1).sum(axis=2, dtype=np.int64)
            if m <= 1 << 32:                # |coef| < 2**33, counts <= 2**16: fits int64
                cf = np.array([c % m for c in coefs], dtype=np.int64)
                add = [int(v) for v in cf @ counts]
            else:
                cf = np.array([c % m for c in coefs], dtype=object)
                add = list(cf @ counts.astype(object))
        else:
            add = [0] * k
        segs = [(scale * s + v) % m for s, v in zip(segs, add, strict=True)]
        self._seg_base = segs
        log.clear()
        return segs


    def _datapath_step(self):
        """S2 and S3 of a sensing micro-op: ``datapath(code, imm, x, w, c)`` steps the lanes of
        the micro-op's route on the sensed row ``x`` and the buffer word ``w``, then the
        reduction (``ReduceOp`` = imm bits 0-3) of every subarray's accumulator; a closure
        over this run's state (``_execute``)."""
        acc_mod = self._acc_mod
        seg_log = self._seg_log if self.subarrays > 1 else None
        lane_ops = self._lane_ops

        def datapath(code, imm, x, w, c):
            # ---- S2: the lanes of the micro-op's route (``sim.routes``)
            step = lane_ops.get(code)
            if step is not None:
                lane_rows = step(imm, x, w, c)
                if lane_rows is None:          # no reduction (S3: HOLD)
                    return
                row_w, row_min = lane_rows
            else:
                row_w = row_min = 0
            # ---- S3: reduction (ReduceOp = imm bits 0-3), every subarray's accumulator
            self._lane_acc = None              # (any reduce micro-op, HOLD too: rtl.core)
            rop = imm & 15
            if rop == 0 or rop > 10:           # HOLD and the unused codes
                return
            p = x.bit_count()
            acc = self._acc
            if rop == 7 or rop == 8:           # L1_FIRST, L1_PLANE
                q = p + row_w.bit_count() - 2 * row_min.bit_count()
                acc = q if rop == 7 else 2 * acc + q
            elif rop == 1:                     # CLEAR
                acc = 0
            elif rop == 2:                     # ADD
                acc += p
            elif rop == 3:                     # SUB2
                acc -= 2 * p
            elif rop == 4:                     # SHIFT_ADD
                acc = 2 * acc + p
            elif rop == 5:                     # SHIFT_SUB2
                acc = 2 * acc - 2 * p
            elif rop == 6:                     # SHIFT
                acc = 2 * acc
            elif rop == 9:                     # SUB
                acc -= p
            else:                              # SHIFT_SUB
                acc = 2 * acc - p
            self._acc = acc % acc_mod
            if seg_log is not None:            # the subarrays' accumulators, on demand
                if rop == 1 or rop == 7:       # these forget the accumulators
                    seg_log.clear()
                    self._seg_base = [0] * self.subarrays
                    if rop == 7:
                        seg_log.append((rop, x, row_w, row_min))
                else:
                    seg_log.append((rop, x, row_w, row_min))
                    if len(seg_log) > _SEG_LOG_MAX:
                        self._segments()

        return datapath
