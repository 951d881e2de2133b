"""The post-processing unit (``rtl.ppu.Ppu``), the S3 of a REQUANT: the partial sum over
REQUANTs, requantization by the per-channel table (multiplier, shift, bias), the threshold
stage of route ``dima_binconv`` (seed 002 eq. 3), max / average pooling of four, logits, and
the write pointer into the data memory (cleared by ``start``, set by ``MOVE SETPTR`` /
``ADDPTR``). :class:`PpuStage` keeps the latest data-memory write (cycle, address, previous
word) so that a GATHER issued the cycle after reads the word as it was before.
"""

from __future__ import annotations

import numpy as np

from rtl.isa import MoveOp

__all__ = ["PpuStage", "signed32", "PPU_CLEAR", "PPU_EMIT", "PPU_NEG", "PPU_MODE_LSB",
           "MODE_REQUANT", "MODE_MAX4", "MODE_AVG4", "MODE_LOGIT"]

# PPU immediate (rtl.ppu): bit 0 CLEAR, bit 1 EMIT, bit 2 NEG, bits 3-4 mode.
PPU_CLEAR = 1
PPU_EMIT = 2
PPU_NEG = 4
PPU_MODE_LSB = 3
MODE_REQUANT, MODE_MAX4, MODE_AVG4, MODE_LOGIT = 0, 1, 2, 3

#: Requant table field ranges (rtl.ppu: signed 16-bit multiplier, 6-bit shift, signed 48-bit
#: bias; golden.layers.requantize keeps the shift in [0, 46]).
_MULT_BITS, _SHIFT_BITS, _BIAS_BITS = 16, 6, 48
_OUT_BITS = 32
_POOL_BITS = 10


def signed32(word: int) -> int:
    """An unsigned 32-bit output word as the signed number it holds (a logit)."""
    word &= (1 << _OUT_BITS) - 1
    return word - (1 << _OUT_BITS) if word >> (_OUT_BITS - 1) else word


def _check_int(name, value, lo, hi, *, power_of_two=False):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value!r}")
    if power_of_two and value & (value - 1):
        raise ValueError(f"{name} must be a power of two in [{lo}, {hi}], not {value!r}")



_SETPTR = MoveOp.SETPTR.value


class PpuStage:
    """The PPU of :class:`~sim.hw.core_model.CoreModel`."""

    def _init_ppu(self, cfg) -> None:
        channels = self.channels
        self._chan_mask = (1 << max(1, (channels - 1).bit_length())) - 1
        self._mult = [0] * channels
        self._shift = [0] * channels
        self._bias = [0] * channels
        # The PPU's threshold stage (cores with route dima_binconv; rtl.ppu.Ppu): per channel
        # 255 thresholds and the mode word (bit 0 enable, bit 1 sign -1), zeros at reset.
        self._has_thresh = "dima_binconv" in cfg.routes
        self._thresh = [[0] * 255 for _ in range(channels)] if self._has_thresh else []
        self._qmode = [0] * channels
        self._psum = 0
        self._pool = 0
        self._cnt = 0
        self._ptr = 0
        self._emit_cycle, self._emit_addr, self._emit_old = -10, -1, 0   # latest PPU write

    def write_table(self, ch: int, mult: int, shift: int, bias: int) -> None:
        """Write requantization table entry ``ch``: multiplier (signed 16-bit), shift
        (unsigned 6-bit), bias (signed 48-bit)."""
        if not 0 <= ch < self.channels:
            raise ValueError(f"ch must be in [0, {self.channels}), not {ch}")
        for name, v, lo, hi in (
                ("mult", mult, -(1 << (_MULT_BITS - 1)), (1 << (_MULT_BITS - 1)) - 1),
                ("shift", shift, 0, (1 << _SHIFT_BITS) - 1),
                ("bias", bias, -(1 << (_BIAS_BITS - 1)), (1 << (_BIAS_BITS - 1)) - 1)):
            if not lo <= int(v) <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], not {v}")
        self._mult[ch], self._shift[ch], self._bias[ch] = int(mult), int(shift), int(bias)

    def write_threshold(self, ch: int, index: int, value: int) -> None:
        """The PPU's threshold stage (a core with route ``dima_binconv``; ``rtl.ppu.Ppu``):
        threshold ``index`` (< 255) of channel ``ch``, a signed ``acc_bits + 2``-bit number,
        or with ``index`` 255 the channel's mode word (bit 0 enable, bit 1 sign -1).

        Raises
        ------
        ValueError
            No threshold stage, or an argument out of range.
        """
        if not self._has_thresh:
            raise ValueError("this core has no threshold stage (route dima_binconv)")
        _check_int("ch", ch, 0, self.channels - 1)
        _check_int("index", index, 0, 255)
        tb = self.config.acc_bits + 2
        if index == 255:
            _check_int("value", value, 0, 3)
            self._qmode[ch] = int(value)
        else:
            _check_int("value", value, -(1 << (tb - 1)), (1 << (tb - 1)) - 1)
            self._thresh[ch][index] = int(value)


    @property
    def out_count(self) -> int:
        """The PPU's write pointer (the core's ``out_count``)."""
        return self._ptr


    def _move_ptr(self, imm: int, a: int, c: int) -> None:
        """``MOVE SETPTR`` / ``ADDPTR`` (S3): the write pointer to ``a`` / plus ``a``; beyond
        ``out_depth`` an error, the pointer then ``out_depth`` (every later word errors)."""
        out_depth = self.out_depth
        new = a if imm == _SETPTR else self._ptr + a
        if new > out_depth:
            self._fail(f"cycle {c}: MOVE {MoveOp(imm).name} sets the write pointer "
                       f"to {new}, beyond out_depth={out_depth}")
            new = out_depth
        self._ptr = new

    def _ppu_step(self, a: int, d: int, imm: int, c: int, addend: int | None = None) -> None:
        if a >= self.channels:
            self._fail(f"cycle {c}: REQUANT channel {a} is not below channels={self.channels}")
        k = self.subarrays
        if d > k:
            self._fail(f"cycle {c}: REQUANT addend d={d} is not 0 (the sum) or a subarray "
                       f"1 .. {k}")
            return                                   # the step is dropped
        ch = a & self._chan_mask
        if ch >= self.channels:
            return                                   # the step is dropped
        mod = self._acc_mod
        half = mod >> 1
        if addend is not None:                       # zero skipping: the tile's slot
            acc = addend
        elif self._lane_acc is not None:             # jeit_fa: the FA array's sums (S3)
            sums = self._lane_acc.sums_at(c + 2)
            acc = sum(sums) % mod if d == 0 else sums[d - 1]
        else:
            acc = self._acc if d == 0 else self._segments()[d - 1]
        acc = acc - mod if acc >= half else acc
        s = (0 if imm & PPU_CLEAR else self._psum) + acc
        s = (s + half) % mod - half                  # wrap to signed acc_bits
        if not imm & PPU_EMIT:
            self._psum = s
            return
        self._psum = 0
        v = (-s + half) % mod - half if imm & PPU_NEG else s
        mode = (imm >> PPU_MODE_LSB) & 3
        bias = self._bias[ch]
        if mode == MODE_LOGIT:
            self._emit((v + bias) % (1 << _OUT_BITS), c)
            return
        shift = self._shift[ch]
        t = v * self._mult[ch] + bias + ((1 << (shift - 1)) if shift else 0)
        y = min(max(t >> shift, 0), 255)
        if self._has_thresh and self._qmode[ch] & 1:     # eq. 3: successive approximation
            sv, thr, y = (-v if self._qmode[ch] & 2 else v), self._thresh[ch], 0
            for b in range(7, -1, -1):
                if sv >= thr[(y | 1 << b) - 1]:
                    y |= 1 << b
        if mode == MODE_REQUANT:
            self._emit(y, c)
            return
        pool_mask = (1 << _POOL_BITS) - 1
        if self._cnt == 0:
            pooled = y
        elif mode == MODE_MAX4:
            pooled = max(self._pool, y)
        else:
            pooled = (self._pool + y) & pool_mask
        self._pool = pooled
        last = self._cnt == 3
        self._cnt = (self._cnt + 1) & 3
        if last:
            self._emit(pooled if mode == MODE_MAX4 else (pooled + 2) >> 2, c)

    def _emit(self, word: int, c: int) -> None:
        ptr = self._ptr
        if ptr >= self.out_depth:
            self._fail(f"cycle {c}: the PPU's write pointer {ptr} is not below out_depth="
                       f"{self.out_depth} (the data memory is full)")
            return
        self._emit_cycle, self._emit_addr, self._emit_old = c, ptr, self._out[ptr]
        self._out[ptr] = word
        self._ptr = ptr + 1

