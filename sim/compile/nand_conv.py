"""Seed 001's data mapping of a multiply convolution onto the per-column bit-counters (sec. 4.1
Fig. 7, sec. 4.2 Fig. 10; issue 14 item 3): the input's bit-planes written once, the weight
sliding over them, the counts cross-written between subarrays and added in memory.

Layout (one image, a layer of ``C x H x W`` uint8 inputs, ``O x C x kh x kw`` int8 weights,
stride 1, zero padding ``pad``; ``Hp, Wp`` the padded sizes, ``Ho = Hp - kh + 1``, ``Wo = Wp -
kw + 1``; ``L`` lanes, the mat row):

* input: plane m (bit m, m = 0 .. 7) of padded image row ``(c, y')`` in array row ``c Hp + y'``,
  lanes ``m Wp .. m Wp + Wp - 1`` ("an M-bit input matrix is converted to M 1-bit matrices and
  stored in M subarrays"): ``C Hp`` rows written once by the host, each input bit stored once
  (the zero padding is stored, nothing is duplicated); ``8 Wp <= L``. With ``bands = B > 1``
  (:func:`plan`), B bands of ``rb = ceil(Ho / B)`` output rows sit side by side (``L // B``
  lanes each, row ``c (rb + kh - 1) + i`` holding band r's padded row ``r rb + i``): every
  micro-op below counts B output rows at once, and the ``kh - 1`` halo rows of a band are
  stored twice;
* a period ``(o, y, n, dx)`` (output channel, output row, weight plane n, kernel column dx):
  the counters count ``AND(row (c, y + ky), ones)`` for every ``(c, ky)`` whose weight bit
  ``n`` of ``w[o, c, ky, dx]`` is set (the weight's bit broadcast from the buffer, Fig. 7's
  weight row; a 0 bit ANDs to nothing and is skipped), so lane ``(m, x)`` holds
  ``sum_(c, ky) x_m[c, y + ky, x] w_n[o, c, ky, dx]``, the contribution of input column x to
  output column ``x - dx``; its ``cb = bit_length(C kh)`` bits are cross-written
  (``WriteSrc.BIT_COUNTER_XW``, rotation ``dx``: lane j gets lane ``j + dx``) into the
  period's ``cb`` operand rows, where lane ``(m, x)`` now holds output x's term ("the weight
  matrix slides to the next position"; the writes empty the counters, no clear);
* the plane sums ``S_m = sum_(n, dx) 2**n count`` (eq. 1, the weight's bit 7 weighing
  ``-2**7``) by the in-memory addition (Fig. 8a): the shift ``2**n`` by placement (count bit i
  counted at bit position ``n + i``), the negative plane as ``2**7 count (2**(p - 7) - 1) mod
  2**p`` (its bit i counted at every position from ``7 + i`` on); ``p`` bits, two's complement;
* the planes combined (Fig. 10's in-mat movement between subarrays): three levels; level s =
  1, 2, 4 cross-writes the previous level's value ``s Wp`` lanes down (block ``m + s`` onto
  block m) and adds ``X + 2**s Y`` in memory in every block at once (the moved value sign
  extended by counting its MSB row again), so block 0 ends with ``sum_m 2**m S_m``, the dot
  product;
* the last addition counts through a buffer mask (block 0's ``Wo`` valid lanes of every band)
  and cross-writes its sum bits to lanes ``r L / B + j Wo ..`` of output group g, where ``g G +
  j = o rb + y`` and ``G = (L // B) // Wo``: the layer's sums end one per lane, ``q`` rows of
  two's complement, as the in-memory post-processing reads them
  (``sim.compile.nand_postproc.requant_program``). A row is programmed once per erase
  (``golden.array``, per column), so the cross-write is masked (``WriteSrc.BIT_COUNTER_XWM``
  with the same mask word, rotated as the data): each output row programs only its own ``Wo``
  lanes per band of the group's rows, which every output row of the group shares, erased once.

Seed 001's <W:I> (``golden.bitwidth``: W-bit two's complement weights, the input's top I bits
``x >> (8 - I)``): the periods run over the W weight planes, plane W - 1 the negative one; block
m holds input plane ``8 - I + m`` for m < I (the GATHER's ``GSHIFT``), a band is ``2**levels``
blocks wide (``levels = ceil(log2 I)``, the other blocks 0: a level moves block ``m + s`` onto
block m, so block 0 reads its own band only), and ``levels`` combining levels run (none at I =
1: the plane sum, masked, is the dot product). Fewer input bits: more bands side by side and
fewer levels; fewer weight bits: fewer periods.

Widths come from the weights (known at compile time): ``S_m`` lies in ``[-N_o, P_o]``
(``P_o``, ``N_o`` the sums of the positive and of the negated negative weights of channel o),
level s's value in ``(2**(2s) - 1) [-N, P]``, the dot product in ``255 [-N, P]``.

Rows (strip-aligned): the input's ``C (rb + kh - 1)`` rows; OPS (the ``8 kw cb`` operand
rows, also a level's sum); regions A and B (``q`` rows each; the plane sums, the moved
values, a level's sum, ping-pong); the output rows, ``q`` per group. A region is erased (one
``ERASE`` per strip) before it is written.

Cycles are the micro-ops (``nand_spin`` has no stalls): :func:`conv_programs` is the static
profile (:func:`profile`), and the tests check it ``==`` the cycle model and the RTL.

In a compiled network (``AcceleratorConfig.conv_map = "fig10"``), :func:`compile_stage` makes
a multiply convolution one stage of these programs between the data memory's input and
output words: :func:`load_program` builds the bit-planes on chip, each output group is
requantized in memory and scattered as soon as it is summed (``out_sets = 1`` reuses one set
of output rows where every group's rows do not fit), a fused 2x2 pool is done in memory.
:func:`measure_network` runs a whole network both ways on the cycle model.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from golden.bitwidth import weight_range
from rtl.bit_counter import BitCounterOp, bitcount_imm
from rtl.isa import MoveOp, Opcode, Operand, WriteSrc
from rtl.outputs import interruptible
from sim.routes.base import op

__all__ = ["ConvMap", "plan", "input_commands", "buffer_words", "conv_programs", "profile",
           "read_sums", "group_slots", "NOT_BUILT", "compile_stage", "load_program",
           "measure_network"]

_COUNT = bitcount_imm(BitCounterOp.COUNT)
_COUNT_AND = bitcount_imm(BitCounterOp.COUNT, and_fu=True)
_CLEAR = bitcount_imm(BitCounterOp.CLEAR)
IN_BITS = 8      # golden.layers.mul_conv2d: uint8 inputs
W_BITS = 8       # int8 weights, two's complement

#: What the mapping does not do yet (a ``CompileError`` each).
NOT_BUILT = "a stride other than 1, groups, or a technology other than nand_spin"


class _Error(ValueError):
    pass


def _eq2_refusal(layer) -> str | None:
    """Why the mapping cannot take ``layer``'s codes (eq. 2, ``golden.bitwidth``), or None:
    it reads the top bits of 8-bit codes and writes 8-bit codes."""
    if str(layer.params.get("in_quant", "top")) == "eq2":
        return "eq.-2 input codes (in_quant 'eq2')"
    if "out_bits" in layer.params:
        return "eq.-2 output codes (out_bits)"
    return None


def _sbits(lo: int, hi: int) -> int:
    """The smallest k with ``-2**(k-1) <= lo`` and ``hi < 2**(k-1)``."""
    k = 1
    while lo < -(1 << (k - 1)) or hi >= 1 << (k - 1):
        k += 1
    return k


@dataclasses.dataclass(frozen=True)
class ConvMap:
    """Where everything of one layer sits (module docstring)."""
    C: int
    H: int
    W: int
    O: int
    kh: int
    kw: int
    pad: int
    lanes: int
    cb: int            # count bits
    widths: tuple      # plane sum, level 1, level 2, level 3 (the dot product, q)
    input0: int
    ops0: int
    reg_a: int
    reg_b: int
    out0: int          # output rows of group 0; group j at out0 + j * out_stride
    out_stride: int
    groups: int        # output rows groups
    per_group: int     # output rows (o, y) per group: G = lanes // Wo
    ones: int          # buffer slot: all lanes
    mask: int          # buffer slot: block 0's Wo lanes of every band
    rows_used: int
    bands: int = 1     # image row bands side by side in the lanes (1: no input duplicated)
    rb: int = 0        # output rows per band
    out_sets: int = 0  # output row sets (0: one per group); group j in set j mod out_sets
    w_bits: int = W_BITS   # weight planes (golden.bitwidth: plane w_bits - 1 the sign plane)
    in_bits: int = IN_BITS  # input planes: the top in_bits of the 8-bit codes (golden.bitwidth)

    @property
    def levels(self):
        """The plane-combining levels (Fig. 10's movement): ``ceil(log2(in_bits))``."""
        return (self.in_bits - 1).bit_length()

    def out_row(self, grp: int) -> int:
        """First of output group ``grp``'s ``q`` rows."""
        return self.out0 + (grp % (self.out_sets or self.groups)) * self.out_stride

    @property
    def band_rows(self):
        """Input rows per band and channel: ``rb + kh - 1``."""
        return self.rb + self.kh - 1

    @property
    def band_lanes(self):
        """Lanes per band: ``lanes // bands`` (its input in the first ``2**levels Wp``)."""
        return self.lanes // self.bands

    @property
    def stored_rows(self):
        """Padded image rows stored per channel (``Hp`` when nothing is duplicated)."""
        return sum(max(0, min(self.Hp - r * self.rb, self.band_rows)) for r in range(self.bands))

    @property
    def Hp(self):
        return self.H + 2 * self.pad

    @property
    def Wp(self):
        return self.W + 2 * self.pad

    @property
    def Ho(self):
        return self.Hp - self.kh + 1

    @property
    def Wo(self):
        return self.Wp - self.kw + 1

    @property
    def q(self):
        return self.widths[-1]


def _strip_up(r: int, m: int) -> int:
    return -(-r // m) * m


def plan(config, in_shape, weight, *, padding: int = 0, stride: int = 1, where: str = "layer",
         slot0: int = 0, bands: int = 1, out_sets: int = 0, w_bits: int = W_BITS,
         in_bits: int = IN_BITS) -> ConvMap:
    """The mapping of one multiply convolution on ``config``'s mat.

    Parameters
    ----------
    config : AcceleratorConfig
        A ``nand_spin`` core whose routes list ``nand_inmem``.
    in_shape : (C, H, W)
    weight : int8 [O, C, kh, kw]
    padding, stride : int
    where : str
        Names the layer in errors (``"layer 0 (mul_conv2d)"``).
    slot0 : int
        First of the two buffer slots the mapping uses (all ones, the output mask).
    bands : int
        1 (the seed's: every input bit stored once) or more: the padded image split into
        bands of ``rb = ceil(Ho / bands)`` output rows side by side in the lanes (``8 Wp``
        at 8 input bits, ``2**levels Wp`` at fewer
        lanes each), each band storing its ``rb + kh - 1`` input rows (the ``kh - 1`` halo
        rows are stored twice), all bands counted at once; ``0`` picks the most that fit.
    out_sets : int
        0 (every output group its own ``q`` rows, all kept to the end) or 1: one set of
        output rows that each group reuses (erased at the group's first output row), so the
        group must be read out before the next one starts (``compile_stage`` requantizes it
        in between).
    w_bits, in_bits : int
        Seed 001's <W:I> (``golden.bitwidth``), each in [1, 8]: ``w_bits`` weight planes
        (the weights must lie in ``[-2**(w_bits-1), 2**(w_bits-1) - 1]``), the input's top
        ``in_bits`` bit-planes (``x >> (8 - in_bits)``) in blocks ``0 .. in_bits - 1`` and
        ``ceil(log2(in_bits))`` combining levels.

    What it cannot map raises ``sim.compile.compiler``'s ``CompileError``, one line naming
    ``where``, the value and the limit: stride, technology, lanes (``2**levels Wp``), rows, the
    bit-counters' width.
    """
    from sim.compile.compiler import CompileError
    if config.technology != "nand_spin" or "nand_inmem" not in tuple(config.routes or ()):
        raise CompileError(f"{where}: the Fig. 10 mapping runs on a nand_spin core with route "
                           f"nand_inmem, not technology {config.technology!r} with routes "
                           f"{tuple(config.routes or ())} (not built yet: {NOT_BUILT})")
    if stride != 1:
        raise CompileError(f"{where}: the Fig. 10 mapping is built for stride 1, not {stride} "
                           f"(not built yet: {NOT_BUILT})")
    for name, v in (("w_bits", w_bits), ("in_bits", in_bits)):
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 8:
            raise CompileError(f"{where}: the Fig. 10 mapping takes {name} in [1, 8], not {v!r}")
    C, H, W = (int(v) for v in in_shape)
    w = np.asarray(weight)
    lo_w, hi_w = weight_range(w_bits)
    if w.size and (int(w.min()) < lo_w or int(w.max()) > hi_w):
        raise CompileError(f"{where}: a weight of {int(w.min())} .. {int(w.max())} is not a "
                           f"{w_bits}-bit two's complement number ({lo_w} .. {hi_w})")
    O, Cw, kh, kw = (int(v) for v in w.shape)
    if Cw != C:
        raise CompileError(f"{where}: weight has {Cw} input channels, the input {C} (groups: "
                           f"not built yet)")
    lanes = config.columns * config.subarrays_per_mat
    Wp, Hp = W + 2 * padding, H + 2 * padding
    # a band's blocks: the in_bits planes padded to 2**levels (a level moves block m + s onto
    # block m, s < 2**levels, so block 0's sum reads only its own band's blocks)
    levels = (in_bits - 1).bit_length()
    blocks = 1 << levels
    if blocks * Wp > lanes:
        raise CompileError(f"{where}: the Fig. 10 mapping puts {blocks} blocks of a padded row "
                           f"of {Wp} columns side by side (its {in_bits} input bit-planes): "
                           f"{blocks} x {Wp} = {blocks * Wp} lanes, the mat has {lanes}")
    Ho, Wo = Hp - kh + 1, Wp - kw + 1
    fit = lanes // (blocks * Wp)
    if bands == 0:
        bands = min(fit, Ho)
    if isinstance(bands, bool) or not isinstance(bands, int) or not 1 <= bands <= min(fit, Ho):
        raise CompileError(f"{where}: bands must be an int in [1, {min(fit, Ho)}] ({blocks} x "
                           f"{Wp} lanes each, {Ho} output rows), not {bands!r}")
    rb = -(-Ho // bands)
    bands = -(-Ho // rb)
    w64 = w.astype(np.int64)
    pos = int(np.clip(w64, 0, None).reshape(O, -1).sum(1).max())
    neg = int(np.clip(-w64, 0, None).reshape(O, -1).sum(1).max())
    # after level l the value is sum_{m < 2**l} 2**m S_m: within (2**(2**l) - 1) [-N, P]
    widths = tuple(_sbits(-neg * ((1 << (1 << s)) - 1), pos * ((1 << (1 << s)) - 1))
                   for s in range(levels + 1))
    cb = (C * kh).bit_length()
    if C * kh >= 1 << config.bit_counter_bits:
        raise CompileError(f"{where}: a period counts C kh = {C * kh} rows, beyond the "
                           f"{config.bit_counter_bits}-bit bit-counters")
    m = config.mtjs_per_strip
    q = widths[-1]
    input0 = 0
    ops0 = _strip_up(C * (rb + kh - 1), m)
    reg_a = ops0 + _strip_up(max(w_bits * kw * cb, q), m)
    reg_b = reg_a + _strip_up(q, m)
    out0 = reg_b + _strip_up(q, m)
    stride_out = _strip_up(q, m)
    per_group = (lanes // bands) // Wo    # output rows (o, row of the band) per band
    groups = math.ceil(O * rb / per_group)
    sets = groups if out_sets == 0 else min(out_sets, groups)
    used = out0 + sets * stride_out
    if used > config.rows:
        raise CompileError(f"{where}: the Fig. 10 mapping needs {used} rows (input "
                           f"{C * (rb + kh - 1)}, "
                           f"operands {w_bits * kw * cb}, two regions and {sets} output "
                           f"group(s) of {q}-bit sums), the subarray has rows={config.rows}")
    cmap = ConvMap(C=C, H=H, W=W, O=O, kh=kh, kw=kw, pad=padding, lanes=lanes, cb=cb,
                   widths=widths, input0=input0, ops0=ops0, reg_a=reg_a, reg_b=reg_b,
                   out0=out0, out_stride=stride_out, groups=groups, per_group=per_group,
                   ones=slot0, mask=slot0 + 1, rows_used=used, bands=bands, rb=rb,
                   out_sets=0 if sets == groups else sets, w_bits=w_bits, in_bits=in_bits)
    try:                                   # the counters' width: every addition's carries
        _programs(cmap, w64, config)
    except _Error as e:
        raise CompileError(f"{where}: {e}") from None
    return cmap


def input_commands(cmap: ConvMap, x) -> list:
    """The host's writes of one image's bit-planes (``(row, bool[lanes])`` per input row, the
    rows erased before): row ``c (rb + kh - 1) + i`` holds plane ``8 - in_bits + m`` of padded
    row ``r rb + i`` in lanes ``r L / B + m Wp ..`` of band r, for m < ``in_bits`` (the top
    ``in_bits`` planes; the other blocks stay 0)."""
    x = np.asarray(x)
    xp = np.pad(x.astype(np.int64), ((0, 0), (cmap.pad, cmap.pad), (cmap.pad, cmap.pad)))
    out = []
    for c in range(cmap.C):
        for i in range(cmap.band_rows):
            bits = np.zeros(cmap.lanes, bool)
            for r in range(cmap.bands):
                yp = r * cmap.rb + i
                if yp >= cmap.Hp:
                    continue
                for mb in range(cmap.in_bits):
                    lo = r * cmap.band_lanes + mb * cmap.Wp
                    bits[lo:lo + cmap.Wp] = (xp[c, yp] >> (IN_BITS - cmap.in_bits + mb)) & 1
            out.append((cmap.input0 + c * cmap.band_rows + i, bits))
    return out


def buffer_words(cmap: ConvMap) -> dict:
    """Buffer slot -> word (bool[lanes]): all ones (the weight bit broadcast), block 0's
    ``Wo`` lanes of every band (the last addition's mask)."""
    mask = np.zeros(cmap.lanes, bool)
    for r in range(cmap.bands):
        mask[r * cmap.band_lanes:r * cmap.band_lanes + cmap.Wo] = True
    return {cmap.ones: np.ones(cmap.lanes, bool), cmap.mask: mask}


def _erase(config, r0: int, n: int) -> list:
    m = config.mtjs_per_strip
    return [op(Opcode.ERASE, a=s) for s in range(r0 // m * m, r0 + n, m)]


def _write(row: int, rot: int, wmask=None):
    if wmask is not None:       # written only in the lanes the mask's rotation selects
        return op(Opcode.PROGRAM, imm=WriteSrc.BIT_COUNTER_XWM.value, a=row, b=rot, d=wmask)
    if rot:
        return op(Opcode.PROGRAM, imm=WriteSrc.BIT_COUNTER_XW.value, a=row, b=rot)
    return op(Opcode.PROGRAM, imm=WriteSrc.BIT_COUNTER.value, a=row)


def _add(config, terms, out_bits: int, out_row, *, rot: int = 0, mask=None,
         wmask=None) -> list:
    """In-memory addition (Fig. 8a) of shifted operands into ``out_bits`` rows, mod
    ``2**out_bits``. ``terms``: ``(rows, shift, kind)`` with ``kind`` ``"u"`` (unsigned: bit i
    at position ``shift + i``), ``"s"`` (two's complement: its MSB row again at every position
    above) or ``"neg"`` (minus the unsigned value times ``2**shift``: bit i at every position
    from ``shift + i`` on). ``out_row(k)`` is the row of sum bit k. Starts with a CLEAR.
    ``mask``: the buffer slot every count is ANDed with; ``wmask``: the buffer slot of the
    write mask (``WriteSrc.BIT_COUNTER_XWM``: only the lanes the mask's rotation by ``rot``
    selects are programmed)."""
    body = [op(Opcode.BITCOUNT, imm=_CLEAR)]
    cap = 1 << config.bit_counter_bits
    carry = 0
    for k in range(out_bits):
        rows = []
        for t_rows, s, kind in terms:
            if k < s:
                continue
            if kind == "u":
                if k - s < len(t_rows):
                    rows.append(t_rows[k - s])
            elif kind == "s":
                rows.append(t_rows[min(k - s, len(t_rows) - 1)])
            else:
                rows += t_rows[:k - s + 1]
        if carry + len(rows) >= cap:
            raise _Error(f"bit position {k} of a {out_bits}-bit in-memory addition counts "
                         f"{len(rows)} rows on a carry up to {carry}: beyond the "
                         f"{config.bit_counter_bits}-bit bit-counters")
        carry = (carry + len(rows)) // 2
        if mask is None:
            body += [op(Opcode.BITCOUNT, imm=_COUNT, a=r) for r in rows]
        else:
            body += [op(Opcode.BITCOUNT, imm=_COUNT_AND, a=r, b=mask) for r in rows]
        body.append(_write(out_row(k), rot, wmask))
    return body


def _wbits(w: int, bits: int = W_BITS) -> int:
    return int(w) & ((1 << bits) - 1)


def _programs(cmap: ConvMap, w64, config) -> list:
    """The programs (lists of Instr, no HALT): the set-up (erase the output rows), then one
    per output row ``(o, y)``."""
    c = cmap
    Wp, L = c.Wp, c.lanes
    w0, q = c.widths[0], c.q
    progs = [[op(Opcode.BITCOUNT, imm=_CLEAR)]
             + _erase(config, c.out0, c.rows_used - c.out0)]
    op_rows = {(n, dx): [c.ops0 + (n * c.kw + dx) * c.cb + i for i in range(c.cb)]
               for n in range(c.w_bits) for dx in range(c.kw)}
    reg = {"ops": c.ops0, "a": c.reg_a, "b": c.reg_b}
    n_ops = _strip_up(max(c.w_bits * c.kw * c.cb, q), config.mtjs_per_strip)
    for o in range(c.O):
        for y in range(c.rb):                     # row y of every band
            body = _erase(config, c.ops0, n_ops) + [op(Opcode.BITCOUNT, imm=_CLEAR)]
            terms = []
            for n in range(c.w_bits):             # the periods: weight plane n, kernel column dx
                for dx in range(c.kw):
                    rows = [c.input0 + ci * c.band_rows + y + ky
                            for ci in range(c.C) for ky in range(c.kh)
                            if _wbits(w64[o, ci, ky, dx], c.w_bits) >> n & 1]
                    if not rows:
                        continue
                    body += [op(Opcode.BITCOUNT, imm=_COUNT_AND, a=r, b=c.ones) for r in rows]
                    body += [_write(r, dx) for r in op_rows[n, dx]]
                    terms.append((op_rows[n, dx], n, "neg" if n == c.w_bits - 1 else "u"))
            g = o * c.rb + y
            grp, base = divmod(g, c.per_group)
            out_r = c.out_row(grp)
            if c.levels == 0:   # one input plane: its plane sum is the dot product
                if base == 0 and grp >= (c.out_sets or c.groups):   # a reused set
                    body += _erase(config, out_r, q)
                body += _add(config, terms, q, lambda k, r=out_r: r + k,
                             rot=(L - base * c.Wo) % L, mask=c.mask, wmask=c.mask)
                progs.append(body)
                continue
            body += _erase(config, c.reg_a, q)    # plane sums S_m into A
            body += _add(config, terms, w0, lambda k: c.reg_a + k)
            # ceil(log2(in_bits)) levels (three at 8 bits): (in, moved, out) regions; block
            # m + s onto block m; the last one masked into the output group's lanes
            plan_l = [("a", "b", "ops", 1), ("ops", "a", "b", 2), ("b", "a", "ops", 4)]
            plan_l = [(src, mv, dst if li < c.levels - 1 else None, s, c.widths[li],
                       c.widths[li + 1]) for li, (src, mv, dst, s) in enumerate(plan_l[:c.levels])]
            for src, mv, dst, s, win, wout in plan_l:
                body += _erase(config, reg[mv], q)
                body.append(op(Opcode.BITCOUNT, imm=_CLEAR))
                for i in range(win):              # cross-write s blocks down
                    body += [op(Opcode.BITCOUNT, imm=_COUNT, a=reg[src] + i),
                             _write(reg[mv] + i, s * Wp)]
                terms = [([reg[src] + i for i in range(win)], 0, "s"),
                         ([reg[mv] + i for i in range(win)], s, "s")]
                if dst is None:   # masked, cross-written into lanes base * Wo .. alone
                    if base == 0 and grp >= (c.out_sets or c.groups):   # a reused set
                        body += _erase(config, out_r, q)
                    body += _add(config, terms, wout, lambda k, r=out_r: r + k,
                                 rot=(L - base * c.Wo) % L, mask=c.mask, wmask=c.mask)
                else:
                    body += _erase(config, reg[dst], q)
                    body += _add(config, terms, wout, lambda k, r=reg[dst]: r + k)
            progs.append(body)
    return progs


def conv_programs(cmap: ConvMap, weight, config) -> list:
    """The layer's programs (lists of Instr without HALT), to run in order on one core: the
    set-up, then one per output row ``(o, y)``. The input rows (:func:`input_commands`) and
    the two buffer words (:func:`buffer_words`) must be in place."""
    return _programs(cmap, np.asarray(weight).astype(np.int64), config)


def profile(programs) -> dict:
    """The static profile: micro-ops per opcode name (lower case) and ``cycles`` (one per
    micro-op: ``nand_spin`` has no stalls; HALTs not included)."""
    out: dict = {"cycles": 0}
    for prog in programs:
        for ins in prog:
            name = ins.op.name.lower()
            out[name] = out.get(name, 0) + 1
            out["cycles"] += 1
    return out


def read_sums(cmap: ConvMap, row_bits) -> np.ndarray:
    """The layer's sums ``[O, Ho, Wo]`` from the output rows; ``row_bits(r)`` is row r as
    bool[lanes]. Output ``(o, r rb + y, x)`` is lane ``r L / B + j Wo + x`` of group g, ``(g
    per_group + j) = o rb + y``."""
    q, c = cmap.q, cmap
    out = np.zeros((c.O, c.Ho, c.Wo), np.int64)
    for grp in range(c.groups):
        r0 = c.out_row(grp)
        v = sum(np.asarray(row_bits(r0 + k)).astype(np.int64) << k for k in range(q))
        v = np.where(v >= 1 << (q - 1), v - (1 << q), v)
        for lo, o, y in group_slots(c, grp):
            out[o, y] = v[lo:lo + c.Wo]
    return out


def group_slots(c: ConvMap, grp: int):
    """The output rows held by output group ``grp``'s lanes: ``(lo, o, y)`` for each, its
    ``Wo`` outputs of channel ``o``, row ``y`` in lanes ``lo .. lo + Wo - 1``."""
    for j in range(c.per_group):
        o, y = divmod(grp * c.per_group + j, c.rb)
        if o >= c.O:
            return
        for r in range(c.bands):
            if r * c.rb + y < c.Ho:
                yield r * c.band_lanes + j * c.Wo, o, r * c.rb + y


def load_program(cmap: ConvMap, config, *, in_base: int, off0: int, patch0: int) -> tuple:
    """The on-chip load of the layer's input from the data memory into its bit-plane rows
    (:func:`input_commands`' layout): the input rows' strips erased, then per stored row a
    ``MOVE CLEAR`` of the transpose buffer and, per plane m, ``MOVE GSHIFT m`` and per band
    holding an image row there one ``LOOP W`` of GATHERs into lanes ``r L / B + m Wp + pad ..``
    (offset-table entries ``off0 ..``: offsets ``0 .. W - 1``, kpos 0; patch entry of image
    row ``(c, y)``: word ``in_base + (c H + y) W``, mask 1), so plane 0 of lane ``(m, x)``
    holds bit m of the word (bit ``8 - in_bits + m`` with ``in_bits`` < 8: m < ``in_bits``
    only, the top planes); a NOP (a write sees the GATHERs issued 2 or more cycles before
    it), then one ``PROGRAM`` of plane 0 (``WriteSrc.TBUF``) into the row. The padding lanes
    stay 0 (cleared, not gathered); a row of padding only is not written.

    Returns
    -------
    (list of list of Instr, list of (int, int))
        One body per channel (the first with the erases) and the patch-table entries ``(base,
        mask)`` from ``patch0`` (one per image row, channel-major).
    """
    from sim.compile.asm import endloop, loop, nop
    c = cmap
    bodies, entries = [], []
    for ci in range(c.C):
        body = _erase(config, c.input0, c.C * c.band_rows) if ci == 0 else []
        for i in range(c.band_rows):
            segs = []
            for r in range(c.bands):
                y = r * c.rb + i - c.pad
                if r * c.rb + i < c.Hp and 0 <= y < c.H:
                    segs.append((r, patch0 + ci * c.H + y))
            if not segs:
                continue
            body.append(op(Opcode.MOVE, imm=MoveOp.CLEAR.value))
            for mb in range(c.in_bits):
                body.append(op(Opcode.MOVE, imm=MoveOp.GSHIFT.value,
                               a=IN_BITS - c.in_bits + mb))
                for r, pe in segs:
                    body += [loop(count=c.W),
                             op(Opcode.MOVE, imm=MoveOp.GATHER.value,
                                a=Operand(r * c.band_lanes + mb * c.Wp + c.pad, 0, 1),
                                b=Operand(off0, 0, 1), d=pe),
                             endloop()]
            body += [nop(), op(Opcode.PROGRAM, imm=WriteSrc.TBUF.value,
                               a=c.input0 + ci * c.band_rows + i, b=0)]
        bodies.append(body)
        entries += [(in_base + (ci * c.H + y) * c.W, 1) for y in range(c.H)]
    return bodies, entries


def compile_stage(cmod, stage, layer, config, where: str, *, width: int, region: int, cursor,
                  lists, imem_depth: int, refuse=None) -> tuple:
    """Compile one multiply convolution by seed 001's data mapping (``conv_map='fig10'``,
    issue 14 item 3) into ``stage.chunks``, inside the whole-network program: return the next
    ``(weight-buffer slot, offset entry, patch entry)``.

    The stage reads its input from the data memory at ``stage.in_base`` (where the host wrote
    the image, or the previous stage left its output) and writes its output there at
    ``stage.out_base``, as every stage does, so it sits between stages of any route:

    1. :func:`load_program`: the input's bit-planes into the array (GSHIFT + GATHER + a
       transpose-buffer write per row; each input bit stored once per band);
    2. :func:`conv_programs` (AND + bit-count, the cross-writes and the in-memory additions;
       the sums end in the output groups' ``q`` rows), then the all-ones row programmed from
       the buffer's all-ones word (the rows below the output groups are free now: the
       requantization's rows reuse them where they fit);
    3. per output group the in-memory requantization, ReLU and saturation
       (``sim.compile.nand_postproc.requant_program``, the group's per-lane scale and bias
       words in the buffer), then ``MOVE LOADPLANE`` of its 8 rows and per output row (o, y)
       a ``LOOP Wo`` of ``MOVE SCATTER`` into the output words ``(o, y, 0 ..)``;
    4. with a fused 2x2 pool, step 3 scatters window position q of pooled output L to word
       ``2 R + 4 L + q`` instead, and per row of lanes of pooled outputs the 4 positions are
       gathered back (``sums_in_program``) and pooled in memory (Fig. 9's comparison,
       ``max_pool_program``, or ``avg_pool_program``), then scattered to ``stage.out_base``
       (``sim.compile.nand_postproc.plan_stage``'s pooling).

    The bodies are packed into chunks of at most ``imem_depth`` words (a HALT each).

    Parameters
    ----------
    cmod : module
        ``sim.compile.compiler``.
    stage, layer : the compiler's Stage (its table entries appended, unused) and the layer.
    width, region : int
        Lanes of the mat row; R, the words of a data-memory region.
    cursor : (int, int, int)
        The first free buffer slot, offset-table entry, patch-table entry.
    lists : (images, offsets, patches)
        The compiler's lists, appended to.
    refuse : str or None
        Why the compiler cannot give this layer the mapping (a CompileError, "not built yet").

    Anything the mapping cannot do raises the compiler's ``CompileError``: one line naming the
    layer, the value and the limit (for a size of the configuration, the field to raise).
    """
    from golden.layers import conv_acc_bound
    from golden.pim import inmem_requant_bits
    from sim.compile.asm import assemble, endloop, halt, loop
    from sim.compile.nand_postproc import (
        _find_run, avg_pool_program, common_shift, requant_program, requant_words,
        results_out_program, sums_in_program,
    )
    from sim.routes.nand_inmem import max_pool_program
    fail = cmod.CompileError
    slot, obase, pbase = cursor
    images, offsets, patches = lists
    if refuse is None:
        refuse = _eq2_refusal(layer)
    if refuse is None and getattr(stage, "out_shift", 0):
        refuse = "eq.-2 output codes (out_bits)"
    if refuse is None and layer.output != "requant":
        refuse = f"output {layer.output!r}, not 'requant'"
    if refuse is not None:
        raise fail(f"{where}: conv_map 'fig10' with {refuse} is not built yet (built: stride "
                   f"1, groups 1, <W:I> with the top-bits reading, 8-bit requant outputs, "
                   f"resident weights); use conv_map 'gather'")
    w = np.asarray(layer.params["weight"])
    args = dict(padding=int(layer.params.get("padding", 0)),
                stride=int(layer.params.get("stride", 1)), where=where, slot0=slot, bands=0,
                w_bits=int(stage.w_bits), in_bits=int(stage.in_bits))
    try:                        # every output group its own rows, if they fit
        cmap = plan(config, stage.in_shape, w, **args)
    except fail:                # else one set reused (the error of that, if it fails too)
        cmap = plan(config, stage.in_shape, w, out_sets=1, **args)
    c = cmap
    if cmap.lanes != width:
        raise fail(f"{where}: conv_map 'fig10' maps onto the configuration's "
                   f"{cmap.lanes} lanes, the mat has {width} (not built yet)")
    m = config.mtjs_per_strip
    up = lambda r: -(-r // m) * m               # noqa: E731 - the next strip boundary
    c, o_ch, out_bits = cmap, cmap.O, 8
    bound = conv_acc_bound("mul", int(np.prod(w.shape[1:])))
    m2, b2, s = common_shift(layer.params["rq_mult"], layer.params["rq_bias"],
                             layer.params["rq_shift"])
    p = max(inmem_requant_bits(bound, m2, b2, [s] * o_ch), c.q, s + out_bits + 1)
    m_bits = max(1, max((int(v) % (1 << p)).bit_length() for v in m2))
    if p > 62 or (2 * (m_bits + 1)).bit_length() > config.bit_counter_bits:
        raise fail(f"{where}: conv_map 'fig10': an affine map of {p} bits with {m_bits + 1} "
                   f"counts per bit position, beyond 62 rows or the "
                   f"{config.bit_counter_bits}-bit bit-counters")
    # Rows. The input and the output sets persist while the layer is summed; OPS and the
    # regions A, B are erased at the start of every output row's program, so between two
    # programs they are free: each group's requantization (an all-ones row, t, y) uses them,
    # right after the group's last output row is summed. Once every group is read out, the
    # pooling uses rows from 0 (its own all-ones row first).
    ones_r = up(c.ops0)
    t0 = up(ones_r + 1)
    y0 = up(t0 + p - s)
    if y0 + out_bits > c.out0:
        raise fail(f"{where}: conv_map 'fig10': the requantization needs rows {ones_r} .. "
                   f"{y0 + out_bits - 1} (an all-ones row, {p - s} rows of the affine map, "
                   f"{out_bits} output rows) between the mapping's operand rows and its "
                   f"output rows at {c.out0} (not built yet)")
    pool = stage.pool
    ones_p = ys = tag = result = grp_rows = avg = None
    end = c.rows_used
    if pool:
        ones_p = c.input0
        ys = tuple(up(ones_p + 1) + up(out_bits) * q for q in range(4))
        end = ys[-1] + up(out_bits)
        if pool == "max":
            tag, result = end, up(end + 1)
            grp_rows = (up(result + 1), up(result + 1) + up(out_bits))
            end = grp_rows[1] + up(out_bits)
        else:
            avg, end = end, end + up(out_bits)
        if end > config.rows:
            raise fail(f"{where}: conv_map 'fig10' pools in rows 0 .. {end - 1}, but "
                       f"rows={config.rows}")
    # buffer: the mapping's two words, 4 scratch, then per output group scale + bias words
    scratch = tuple(range(c.mask + 1, c.mask + 5))
    per_grp = m_bits + p
    par0 = c.mask + 5
    top = par0 + c.groups * per_grp
    if top > config.buffer_slots:
        cmod._too_small(f"{where}: conv_map 'fig10' needs weight-buffer slots {slot} .. "
                        f"{top - 1} (2 of the mapping, 4 scratch, {m_bits} scale + {p} bias "
                        f"words per output group x {c.groups}), but buffer_slots is "
                        f"{config.buffer_slots}", "buffer_slots", top)
    cmod._base(where, "weight-buffer slot", top - 1)
    image = np.zeros((top - slot, width), bool)
    for sl, word in buffer_words(c).items():
        image[sl - slot] = word
    for g in range(c.groups):
        chan = np.zeros(width, np.int64)
        for lo, o, _ in group_slots(c, g):
            chan[lo:lo + c.Wo] = o
        mw, cw = requant_words([m2[v] for v in chan], [b2[v] for v in chan], s, p, width)
        at = par0 - slot + g * per_grp
        image[at:at + len(mw)] = mw
        image[at + m_bits:at + per_grp] = cw
    images.append(image)
    # tables: the input rows' GATHERs (offsets 0 .. W - 1), the pool's (4 j)
    want = [(j, 0) for j in range(c.W)]
    off_in = _find_run(offsets, want)
    if off_in is None:
        offsets.extend(want)
        off_in, obase = obase, obase + c.W
    Hq, Wq = (c.Ho // 2, c.Wo // 2) if pool else (c.Ho, c.Wo)
    lanes_total = o_ch * Hq * Wq
    rows_l = math.ceil(lanes_total / width)
    off_pool = None
    if pool:
        n_off = min(width, lanes_total)
        want = [(4 * j, 0) for j in range(n_off)]
        off_pool = _find_run(offsets, want)
        if off_pool is None:
            offsets.extend(want)
            off_pool, obase = obase, obase + n_off
    if obase > config.offset_entries:
        cmod._too_small(f"{where}: conv_map 'fig10' needs {obase} offset-table entries, but "
                        f"offset_entries is {config.offset_entries}", "offset_entries", obase)
    bodies_in, entries = load_program(c, config, in_base=stage.in_base, off0=off_in, patch0=pbase)
    sums = 2 * region
    if pool:
        entries += [((sums + 4 * r * width + q) % (1 << 16), 1)
                    for r in range(rows_l) for q in range(4)]
    if pbase + len(entries) > config.patch_entries:
        cmod._too_small(f"{where}: conv_map 'fig10' needs patch-table entries {pbase} .. "
                        f"{pbase + len(entries) - 1}, but patch_entries is "
                        f"{config.patch_entries}", "patch_entries", pbase + len(entries))
    patches.extend(entries)
    p_pool = pbase + c.C * c.H
    pbase += len(entries)
    if pool and sums + 4 * lanes_total > config.data_words:
        cmod._too_small(f"{where}: conv_map 'fig10' puts the {4 * lanes_total} requantized "
                        f"window values at data words {sums} .. (after the two regions of "
                        f"{region} words), but data_words is {config.data_words}",
                        "data_words", sums + 4 * lanes_total)
    cmod._base(where, "patch-table entry", pbase - 1)
    cmod._base(where, "offset-table entry", max(obase - 1, 0))
    cmod._base(where, "data-memory address (SCATTER)",
               (sums + 4 * lanes_total if pool else stage.out_base + lanes_total) - 1)
    # the bodies: (micro-ops, words the body scatters)
    bodies = [(b, 0) for b in bodies_in]
    wcode = Opcode.PROGRAM
    conv = conv_programs(c, w, config)

    def ones_body(row):
        return [op(Opcode.ERASE, a=row), op(wcode, imm=WriteSrc.BUFFER.value, a=row, b=c.ones)]

    per_pos = c.Ho * c.Wo
    group_bodies = []
    try:
        for g in range(c.groups):
            m0 = par0 + g * per_grp
            body = ones_body(ones_r) + requant_program(config, x0=c.out_row(g), x_bits=c.q,
                                   ones=ones_r, m0=m0, m_bits=m_bits, c0=m0 + m_bits, p_bits=p,
                                   shift=s, t0=t0, y0=y0, slots=scratch, out_bits=out_bits,
                                   loops=True)
            body += [op(Opcode.MOVE, imm=MoveOp.LOADPLANE.value, a=y0 + q, d=q)
                     for q in range(out_bits)]
            n_sc = 0
            for lo, o, y in group_slots(c, g):
                if not pool:
                    runs = [(lo, 1, stage.out_base + o * per_pos + y * c.Wo, 1, c.Wo)]
                elif y < 2 * Hq and Wq:
                    base = sums + 4 * (o * Hq * Wq + (y // 2) * Wq)
                    runs = [(lo + dj, 2, base + 2 * (y % 2) + dj, 4, Wq) for dj in (0, 1)]
                else:
                    runs = []
                for a0, sa, d0, sd, cnt in runs:
                    body += [loop(count=cnt),
                             op(Opcode.MOVE, imm=MoveOp.SCATTER.value, a=Operand(a0, 0, sa),
                                d=Operand(d0, 0, sd)),
                             endloop()]
                    n_sc += cnt
            group_bodies.append((body, 0 if pool else n_sc))
        bodies.append((conv[0], 0))     # group g read out after its last output row
        for g_slot, prog in enumerate(conv[1:]):
            bodies.append((prog, 0))
            grp, at = divmod(g_slot, c.per_group)
            if at == c.per_group - 1 or g_slot == len(conv) - 2:
                bodies.append(group_bodies[grp])
        if pool:
            bodies.append((ones_body(ones_p), 0))
        for r in range(rows_l if pool else 0):
            lanes = min(width, lanes_total - r * width)
            for q in range(4):
                bodies.append((sums_in_program(config, x0=ys[q], x_bits=out_bits, lanes=lanes,
                                               offset0=off_pool, patch=p_pool + 4 * r + q,
                                               loop=True), 0))
            if pool == "max":
                body, best = max_pool_program(config, ys, out_bits, grp_rows, tag, result,
                                              scratch[0], scratch[1])
            else:
                body, best = avg_pool_program(config, ys, out_bits, ones_p, avg), avg
            body += results_out_program(config, y0=best, lanes=lanes,
                                        addr=stage.out_base + r * width, out_bits=out_bits,
                                        loop=True)
            bodies.append((body, lanes))
    except ValueError as e:
        raise fail(f"{where}: conv_map 'fig10': {e}") from None
    stage.route = "nand_inmem"
    stage.chunks = []
    used = tuple(range(max(end, c.rows_used)))

    def flush(instrs, n_out):
        instrs = instrs + [halt()]
        words = tuple(assemble(instrs, base_bits=config.isa_base_bits))
        cycles, ops = cmod.program_profile(words, config)
        stage.chunks.append(cmod.Chunk(
            stage=stage, index=len(stage.chunks), patch_start=0, patches=0, groups=0,
            partial=0, rows=used, out_start=0, program=words, n_out=n_out, cycles=cycles,
            gather_cycles=0, max_cycles=cycles + cmod.PIPELINE_DRAIN + 64, micro_ops=ops))

    need = max(len(body) + 1 for body, _ in bodies)
    if need > imem_depth:
        cmod._too_small(f"{where}: a conv_map 'fig10' program needs {need} instruction words, "
                        f"but program_words is {imem_depth}", "program_words", need)
    # Pack the bodies into chunks of at most the default program memory (or the smallest
    # allowed one holding the longest body), not of whatever program_words allows: with the
    # largest memory (propose_config's first pass) one chunk would hold the whole layer and
    # the proposal would keep that memory.
    from rtl.config import SIZE_FIELDS
    limit = min(imem_depth, max(SIZE_FIELDS["program_words"][0],
                                cmod._size_for("program_words", need)))
    cur, cur_out = [], 0
    for body, n_out in bodies:
        if cur and len(cur) + len(body) + 1 > limit:
            flush(cur, cur_out)
            cur, cur_out = [], 0
        cur += body
        cur_out += n_out
    if cur:
        flush(cur, cur_out)
    return top, obase, pbase


def _run_all(model_core, programs) -> dict:
    from sim.compile.asm import assemble, halt
    total: dict = {}
    for prog in programs:
        res = model_core.run(assemble(prog + [halt()],
                                      base_bits=model_core.config.isa_base_bits))
        if res.error:
            raise ValueError(f"the cycle model refused a Fig. 10 program: {res.reason}")
        for k, v in res.counters.items():
            total[k] = total.get(k, 0) + int(v)
    return total


def _add_counts(total: dict, more: dict) -> None:
    for k, v in more.items():
        total[k] = total.get(k, 0) + int(v)


def measure_layers(model, config, images, *, bands: int = 1) -> list:
    """Every stride-1 multiply convolution of ``model`` by the Fig. 10 mapping on the cycle
    model of ``config`` (route ``nand_inmem`` added), image by image: its sums ``==``
    ``golden.layers.mul_conv2d`` of the layer's input (``golden.model.infer_int`` trace),
    then, for a ``requant`` layer with no pool after it, the in-memory requantization and ReLU
    of the sums where they are (``sim.compile.nand_postproc.requant_program``, one run per
    group of output rows; the all-ones row programmed from the buffer's all-ones word), ``==``
    the golden trace. Counters per image.

    Returns
    -------
    list of dict
        Per layer: ``layer``, ``kind``, ``map`` (:class:`ConvMap`), ``conv`` (counters of the
        mapping), ``post`` (counters of the in-memory post-processing, or None),
        ``host_rows`` / ``host_erases`` (the input rows the host programs, their strips).

    Raises
    ------
    ValueError
        A sum or an output differs from golden (a bug), or a layer the mapping refuses.
    """
    from golden.bitwidth import layer_bits, layer_input
    from golden.layers import conv_acc_bound, mul_conv2d
    from golden.model import infer_int
    from golden.pim import inmem_requant_bits
    from sim.compile.nand_postproc import common_shift, requant_program, requant_words
    from sim.hw.core_model import CoreModel, unpack_row
    from rtl.mtj_array import MacroCmd

    routes = tuple(config.routes or ())
    if "nand_inmem" not in routes:
        config = dataclasses.replace(config, routes=routes + ("nand_inmem",))
    images = np.asarray(images)
    trace = infer_int(model, images, trace=True)
    shapes = model.shapes()
    out = []
    m = config.mtjs_per_strip
    for i, ly in enumerate(model.layers):
        if ly.kind != "mul_conv2d":
            continue
        where = f"layer {i} ({ly.kind})"
        w = np.asarray(ly.params["weight"])
        pad = int(ly.params.get("padding", 0))
        if _eq2_refusal(ly) is not None:
            raise ValueError(f"{where}: the Fig. 10 mapping of eq.-2 codes is not built yet "
                             f"(built: <W:I> with the top-bits reading)")
        w_bits, in_bits = layer_bits(ly.params)
        cmap = plan(config, shapes[i], w, padding=pad, stride=int(ly.params.get("stride", 1)),
                    where=where, bands=bands, w_bits=w_bits, in_bits=in_bits)
        nxt = model.layers[i + 1] if i + 1 < len(model.layers) else None
        post_ok = (getattr(ly, "output", None) == "requant"
                   and (nxt is None or "pool" not in nxt.kind))
        progs = conv_programs(cmap, w, config)
        conv_c: dict = {}
        post_c: dict = {} if post_ok else None
        if post_ok:
            mult, bias, shift = (ly.params["rq_mult"], ly.params["rq_bias"],
                                 ly.params["rq_shift"])
            bound = conv_acc_bound("mul", int(np.prod(w.shape[1:])))
            m2, b2, s = common_shift(mult, bias, shift)
            p = inmem_requant_bits(bound, m2, b2, [s] * len(m2))
            up = lambda r: -(-r // m) * m          # noqa: E731 - the next strip boundary
            ones_r = up(cmap.rows_used)
            t0 = up(ones_r + 1)
            y0 = up(t0 + p - s)
            if y0 + 8 > config.rows:
                raise ValueError(f"{where}: the mapping and the in-memory post-processing "
                                 f"need {y0 + 8} rows, beyond rows={config.rows}")
            slots = tuple(range(cmap.mask + 1, cmap.mask + 5))
            m0 = cmap.mask + 5
        for n_img in range(len(images)):
            x = images[n_img] if i == 0 else np.asarray(trace[i - 1])[n_img]
            x = np.asarray(x).reshape(shapes[i]).astype(np.uint8)
            core = CoreModel(config)
            for st in range(0, config.rows, m):
                core.array_command(MacroCmd.ERASE, st)
            cmds = input_commands(cmap, x)
            for r, bits in cmds:
                core.array_command(MacroCmd.PROGRAM, r, bits)
            for slot, word in buffer_words(cmap).items():
                core.write_buffer(slot, word)
            _add_counts(conv_c, _run_all(core, progs))
            cells, lanes = core._cells, cmap.lanes
            got = read_sums(cmap, lambda r, c=cells, n=lanes: unpack_row(c[r], n).astype(bool))
            want = mul_conv2d(layer_input(x, ly.params)[None], w, padding=pad)[0]
            bad = np.argwhere(got != want)
            if bad.size:
                j = tuple(int(v) for v in bad[0])
                raise ValueError(f"{where}, image {n_img}: sum {j} is {int(got[j])}, golden "
                                 f"{int(want[j])} (seed 001 Fig. 10)")
            if not post_ok:
                continue
            body = [op(Opcode.ERASE, a=ones_r // m * m),
                    op(Opcode.PROGRAM, imm=WriteSrc.BUFFER.value, a=ones_r, b=cmap.ones)]
            _add_counts(post_c, _run_all(core, [body]))
            ref = np.asarray(trace[i])[n_img].reshape(cmap.O, cmap.Ho, cmap.Wo)
            for grp in range(cmap.groups):
                chan = np.zeros(cmap.lanes, np.int64)
                valid = list(group_slots(cmap, grp))
                for lo, o, _ in valid:
                    chan[lo:lo + cmap.Wo] = o
                mw, cw = requant_words([m2[c] for c in chan], [b2[c] for c in chan], s, p,
                                       cmap.lanes)
                for j, word in enumerate(np.concatenate([mw, cw])):
                    core.write_buffer(m0 + j, word)
                body = requant_program(config, x0=cmap.out0 + grp * cmap.out_stride,
                                       x_bits=cmap.q, ones=ones_r, m0=m0, m_bits=len(mw),
                                       c0=m0 + len(mw), p_bits=p, shift=s, t0=t0, y0=y0,
                                       slots=slots)
                _add_counts(post_c, _run_all(core, [body]))
                y = sum(unpack_row(core._cells[y0 + b], cmap.lanes).astype(np.int64) << b
                        for b in range(8))
                for lo, o, yy in valid:
                    g = y[lo:lo + cmap.Wo]
                    wnt = ref[o, yy]
                    if (g != wnt).any():
                        xx = int(np.flatnonzero(g != wnt)[0])
                        raise ValueError(f"{where}, image {n_img}: output ({o}, {yy}, {xx}) "
                                         f"is {int(g[xx])}, golden {int(wnt[xx])} (seed 001 "
                                         f"sec. 4.2)")
        n = len(images)                    # the programs do not depend on the data
        out.append({"layer": i, "kind": ly.kind, "map": cmap,
                    "conv": {k: v // n for k, v in conv_c.items()},
                    "post": None if post_c is None else {k: v // n for k, v in post_c.items()},
                    "host_rows": len(cmds), "host_erases": -(-len(cmds) // m)})
    return out


def measure_network(model, config, images, *, subarrays=None) -> dict:
    """The whole network compiled with ``conv_map`` ``gather`` and ``fig10`` (each with the
    sizes ``propose_config`` gives it) and run on the cycle model image by image, every stage
    ``==`` golden (``golden.model.infer_int(trace=True)``).

    Returns
    -------
    dict
        ``{conv_map: {"cycles", "writes" (PROGRAM + WRITE_ROW micro-ops), "erases",
        "energy_nj" (``sim.hw.energy.estimate`` of the counters, the image's data-memory
        words charged as host loads), "stages": [(name, route, cycles)], "config"}}``, per
        image.

    Raises
    ------
    ValueError
        A stage differs from golden (the map, the stage, the image, both values).
    """
    from golden.model import infer_int
    from sim.compile.compiler import compile_model, propose_config, run_compiled
    from sim.compile.nand_postproc import check_stages
    from sim.hw.core_model import CoreModel
    from sim.hw.energy import estimate
    images = np.asarray(images)
    trace = infer_int(model, images, trace=True)
    routes = tuple(config.routes or ())
    if "nand_inmem" not in routes:
        config = dataclasses.replace(config, routes=routes + ("nand_inmem",))
    out = {}
    for cm in ("gather", "fig10"):
        cfg = propose_config(model, dataclasses.replace(config, conv_map=cm),
                             subarrays=subarrays)
        comp = compile_model(model, cfg, subarrays=subarrays)
        tot: dict = {}
        energy = 0.0
        words = int(np.prod(model.input_shape))
        for i, x in enumerate(images):
            res = run_compiled(comp, x, CoreModel(cfg, subarrays=comp.subarrays))
            check_stages(comp, res, trace, i, f"conv_map {cm}", "seed 001 Fig. 10")
            _add_counts(tot, res.counters)
            energy += estimate(cfg, res.counters, columns_active=cfg.columns * comp.subarrays,
                               host={"data_words": words}).energy_j
        n = len(images)
        out[cm] = {"cycles": tot["cycles"] / n,
                   "writes": (tot["program"] + tot["write_row"]) / n,
                   "erases": tot["erase"] / n, "energy_nj": energy / n * 1e9,
                   "stages": [(st.name, st.route, st.cycles) for st in comp.stages],
                   "config": cfg}
    return out


def _main_network(args, model, config, x) -> int:
    """``--network``: :func:`measure_network`'s table."""
    rows = measure_network(model, config, x[:args.images])
    k = config.subarrays_per_mat
    print(f"{args.model}{f' (layers 0 .. {args.layers - 1})' if args.layers else ''} on "
          f"{args.preset}, mat {k} ({k * config.columns} lanes), {args.images} test images on "
          f"the cycle model, every stage == golden; per image:")
    print("| conv_map | cycles | array writes (PROGRAM + WRITE_ROW) | erases | energy nJ | "
          "stages (route: cycles) |")
    print("|---|---|---|---|---|---|")
    for cm, r in rows.items():
        st = "; ".join(f"{name} ({route}): {cyc:,}" for name, route, cyc in r["stages"])
        print(f"| {cm} | {r['cycles']:,.0f} | {r['writes']:,.0f} | {r['erases']:,.0f} | "
              f"{r['energy_nj']:.2f} | {st} |")
    return 0


@interruptible("python -m sim.compile.nand_conv", "nothing was written (it only prints)")
def main(argv=None) -> int:
    """``python -m sim.compile.nand_conv --model digits_addernet --images 5 [--bands 0]``: the
    Fig. 10 mapping of every multiply convolution vs today's gather route on the same layer
    (the compiler's static profile, ``ppu`` and ``in_memory`` post-processing): cycles, array
    writes, energy (``sim.hw.energy.estimate``). With ``--network [--mat 4] [--layers N]``:
    the whole network (or its first N layers) compiled with ``conv_map`` ``gather`` and
    ``fig10`` (:func:`measure_network`)."""
    import argparse
    import sys

    from golden import datasets
    from golden.model import bundled_model_path, load_model
    from rtl.config import preset
    from sim.compile.compiler import CompileError, compile_model, propose_config
    from sim.compile.nand_postproc import with_postproc
    from sim.hw.energy import estimate

    ap = argparse.ArgumentParser(prog="python -m sim.compile.nand_conv",
                                 description=main.__doc__)
    ap.add_argument("--model", default="digits_addernet")
    ap.add_argument("--preset", default="nand_spin")
    ap.add_argument("--images", type=int, default=5)
    ap.add_argument("--bands", type=int, default=1,
                    help="image row bands side by side (1: no input duplicated; 0: as many "
                         "as fit)")
    ap.add_argument("--network", action="store_true",
                    help="the whole network compiled with conv_map gather and fig10, run on "
                         "the cycle model (measure_network)")
    ap.add_argument("--mat", type=int, default=0,
                    help="subarrays per mat (0: the preset's)")
    ap.add_argument("--layers", type=int, default=0,
                    help="with --network: only the model's first N layers (0: all)")
    args = ap.parse_args(argv)
    sets = {"fashion_addernet": "fashion_mnist", "digits_addernet": "digits",
            "fashion_mulcnn_w8i8": "fashion_mnist", "fashion_mulcnn_w4i4": "fashion_mnist"}
    try:
        if args.model not in sets:
            raise ValueError(f"--model must be one of {', '.join(sets)}, not {args.model!r}")
        config = preset(args.preset)
        if args.mat:
            config = dataclasses.replace(config, subarrays_per_mat=args.mat)
        model = load_model(bundled_model_path(args.model))
        if not 0 <= args.layers <= len(model.layers):   # was sliced silently: -1, 100
            raise ValueError(f"--layers must be an integer in [0, {len(model.layers)}] (0: all "
                             f"of {args.model}'s {len(model.layers)} layers), not {args.layers}")
        if args.layers:
            model = dataclasses.replace(model, layers=model.layers[:args.layers])
        x, _ = datasets.load_dataset(sets[args.model], "test")
        if not 1 <= args.images <= len(x):
            raise ValueError(f"--images {args.images}: the {sets[args.model]} test split has "
                             f"{len(x)} images; give --images between 1 and {len(x)}")
        if args.network:
            return _main_network(args, model, config, x)
        rows = measure_layers(model, config, x[:args.images], bands=args.bands)
        base = {}
        for mode in ("ppu", "in_memory"):
            cfg = propose_config(model, with_postproc(config, mode))
            comp = compile_model(model, cfg)
            base[mode] = (cfg, comp)
    except (ValueError, KeyError, OSError, CompileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not rows:
        print(f"{args.model}: no multiply convolution (the Fig. 10 mapping is eq. 1's AND + "
              f"bit-count; adder layers are not multiply layers)")
        return 0
    lanes = config.columns * config.subarrays_per_mat
    print(f"{args.model} on {args.preset} ({lanes} lanes), {args.images} test images on the "
          f"cycle model, every sum and output == golden; per image, per layer:")
    print("| layer | route | cycles | array writes (PROGRAM / ERASE / WRITE_ROW) | "
          "host loads | energy nJ |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        i, cmap = r["layer"], r["map"]
        for mode, (cfg, comp) in base.items():
            st = next(s for s in comp.stages if s.layer_index == i)
            mo = dict(st.micro_ops)
            words = int(np.prod(model.shapes()[i])) if i == 0 else 0
            e = estimate(cfg, mo, columns_active=cfg.columns * comp.subarrays,
                         host={"data_words": words}).energy_j
            print(f"| {i} | gather + {mode} | {mo['cycles']} | {mo['program']} / "
                  f"{mo['erase']} / {mo['write_row']} | {words} image words | {e * 1e9:.2f} |")
        cfg = dataclasses.replace(config, routes=tuple(dict.fromkeys(
            tuple(config.routes) + ("nand_inmem",))))
        host = {"program": r["host_rows"], "erase": r["host_erases"]}
        for name, cnt in (("Fig. 10 sums", r["conv"]),
                          ("Fig. 10 + in-memory requant", None if r["post"] is None else
                           {k: r["conv"].get(k, 0) + r["post"].get(k, 0)
                            for k in set(r["conv"]) | set(r["post"])})):
            if cnt is None:
                continue
            e = estimate(cfg, cnt, columns_active=lanes, host=host).energy_j
            print(f"| {i} | {name} (bands {cmap.bands}) | {cnt['cycles']:.0f} | "
                  f"{cnt['program']:.0f} / {cnt['erase']:.0f} / {cnt.get('write_row', 0):.0f} | "
                  f"{r['host_rows']} input rows ({cmap.stored_rows}/{cmap.Hp} per channel) | "
                  f"{e * 1e9:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
