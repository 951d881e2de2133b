"""The instruction set the controller decodes: one 64-bit word per instruction.

The word format is defined once, in :data:`FIELDS`; :func:`encode` / :func:`decode` (plain
Python on ints, used by the assembler ``sim.compile.asm``, the interpreter ``sim.hw.isa_model`` and
the
tests) and the controller's decoder (:data:`WORD_LAYOUT`, an Amaranth ``data.StructLayout``)
are both built from it.

Word format (bit 0 is the least significant bit)::

    bits    field      meaning
    0..4    op         :class:`Opcode`
    5..9    imm        5-bit immediate: a mode / sub-operation of the micro-op (per opcode)
    10..21  a_base     operand a: 12-bit immediate
    22..23  a_level    operand a: loop level, 0 = innermost active loop, 1 = the one around it..
    24..27  a_stride   operand a: signed stride in [-8, 7]; 0 = absolute (level ignored)
    28..45  b_*        operand b: base, level, stride as for a
    46..63  d_*        operand d: base, level, stride as for a
    10..25  count_m1   LOOP only (overlays a): iterations - 1, so a loop runs 1 .. 65536 times

That is the format of 12-bit operand bases, every preset's but ``nand_spin``'s (whose 16384
data words make its bases 14 bits, a 70-bit word). A configuration with memories
beyond 4096 entries (``rtl.config.AcceleratorConfig``: ``data_words``, ``buffer_slots``, ..)
derives wider bases, up to 16 bits, and the word grows by 3 bits per base bit
(:class:`IsaFormat`: 64 + 3 * (base_bits - 12) bits); the field order and everything below bit
10 stay the same.

Operand resolution (loop-relative addressing): the controller issues each operand as
``(base + stride * index[level]) mod 2**OPERAND_BITS``, ``index[level]`` counting 0, 1, ..
over the iterations of that loop. A bit-serial sweep over the rows ``r0 + b`` of an n-bit
element is one instruction with ``stride=1`` inside a loop of n iterations (``stride=-1`` and
``base=r0 + n - 1`` for MSB first). A non-zero stride naming a level that is not active is an
error (the run ends with ``error``).

Operands a, b and d are generic: what each means depends on the opcode (:data:`OPERANDS`); the
controller resolves all three the same way and does not interpret them.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import signed, unsigned
from amaranth.lib import data, enum

__all__ = [
    "WORD_BITS", "OP_BITS", "IMM_BITS", "BASE_BITS", "LEVEL_BITS", "STRIDE_BITS",
    "COUNT_BITS", "COUNT_LSB", "OPERAND_BITS", "LOOP_DEPTH", "MAX_LOOP_COUNT", "COUNTER_BITS",
    "Opcode", "MoveOp", "WriteSrc", "CONTROL_OPS", "DATAPATH_OPS", "OPERANDS", "FIELDS",
    "OPTIONAL_OPERANDS",
    "WORD_LAYOUT", "AGU_ADDR_BITS", "OFFSET_BITS", "KPOS_BITS", "MASK_BITS", "AGU_DATA_BITS",
    "Operand", "Instr", "encode", "decode", "MAX_BASE_BITS", "IsaFormat", "isa_format",
    "COUNTER_CYCLES", "COUNTER_STALLS", "N_COUNTERS", "counter_index", "counter_names",
    "ZERO_SKIP_COUNTERS",
]

#: Width of an instruction word with 12-bit operand bases (every preset's but nand_spin's;
#: :class:`IsaFormat`).
WORD_BITS = 64
#: Width of the opcode field.
OP_BITS = 5
#: Width of the immediate field.
IMM_BITS = 5
#: Width of an operand base in the old sizes' format (a configuration with larger memories,
#: nand_spin's preset among them, derives up to :data:`MAX_BASE_BITS`,
#: ``rtl.config.AcceleratorConfig.isa_base_bits``).
BASE_BITS = 12
#: Width of an operand's loop-level field.
LEVEL_BITS = 2
#: Width of an operand's signed stride field.
STRIDE_BITS = 4
#: Width of LOOP's ``count_m1`` field.
COUNT_BITS = 16
#: Lowest bit of LOOP's ``count_m1`` field (it overlays operand a).
COUNT_LSB = OP_BITS + IMM_BITS
#: Width of a resolved operand on the controller's issue port.
OPERAND_BITS = 16
#: Nested hardware loops addressable by a level field (2 bits).
LOOP_DEPTH = 1 << LEVEL_BITS
#: Most iterations of one LOOP.
MAX_LOOP_COUNT = 1 << COUNT_BITS
#: Width of every performance counter (wraps around).
COUNTER_BITS = 32


class Opcode(enum.Enum, shape=OP_BITS):
    """Opcode of an instruction. Codes 21 .. 31 are undefined (executing one is an error).

    Control (executed by the controller, nothing issued):
    ``NOP``; ``HALT`` ends the run; ``LOOP`` (field ``count_m1``) runs the instructions up to
    the matching ``ENDLOOP`` ``count_m1 + 1`` times; ``ENDLOOP`` closes the innermost loop.

    Datapath micro-ops (issued with resolved operands; see :data:`OPERANDS` for a / b / d / imm):
    ``WRITE_ROW`` / ``ERASE`` / ``PROGRAM`` / ``READ`` / ``AND_FU`` / ``AND2`` / ``OR2`` are the
    array commands of ``rtl.mtj_array.MacroCmd``; ``FA_STEP`` one add-or-subtract bit step of
    the FA/FS lanes (``rtl.fa_fs``, seed 002 Fig. 4a), ``FS_STEP`` one of the abs-diff lanes
    (``rtl.abs_diff_lane``); ``CMP_STEP`` / ``MIN_STEP`` one MSB-first step of the
    compare / min lanes (``rtl.min_lane``, ``rtl.abs_diff_lane``); ``BITCOUNT`` the per-column
    bit-counter; ``SHIFT_ACC`` the reduction unit (``rtl.column_reduce``); ``REQUANT`` /
    ``RELU`` / ``POOL`` the post-processing unit; ``MOVE`` moves data on chip (:class:`MoveOp`).
    """
    NOP       = 0
    HALT      = 1
    LOOP      = 2
    ENDLOOP   = 3
    WRITE_ROW = 4
    ERASE     = 5
    PROGRAM   = 6
    READ      = 7
    AND_FU    = 8
    AND2      = 9
    OR2       = 10
    FA_STEP   = 11
    FS_STEP   = 12
    CMP_STEP  = 13
    MIN_STEP  = 14
    BITCOUNT  = 15
    SHIFT_ACC = 16
    REQUANT   = 17
    RELU      = 18
    POOL      = 19
    MOVE      = 20


class MoveOp(enum.Enum, shape=IMM_BITS):
    """The ``imm`` of a ``MOVE`` micro-op (``rtl.core.Core``): on-chip data movement from the
    data memory (the PPU's output memory) into the array, through the transpose buffer.

    ``GATHER``: one activation from the data memory into one column of the transpose buffer
    (all its bit-planes), at an address the address tables compute; ``CLEAR``: the transpose
    buffer to 0; ``SETPTR`` / ``ADDPTR``: the PPU's write pointer to / plus operand a.

    ``SKIPZ`` (cores with ``config.zero_skip`` only, any other core flags it): if row a's
    zero flag is set (its last write was a ``WriteSrc.TBUF_ZS`` of an all-zero transpose
    buffer), the controller skips the next ``b`` instructions (straight-line micro-ops: the
    tile dot) and the REQUANTs up to the next SKIPZ take the addend from weight-buffer slot
    ``b`` of their own (its low ``acc_bits`` bits, the precomputed dot of a zero tile); ``d``:
    the cycles the skipped instructions take, added to the counter ``zs_cycles_saved``.

    ``SETPAD`` (cores with route ``dima_binconv`` only, any other core flags it): a GATHER of a
    term outside the image (its patch-mask bit clear) writes the code ``a mod 2**n`` instead
    of 0 from then on (Add-Net's padding code, seed 002; ``golden.model`` ``pad_value``); the
    core's start resets it to 0.

    ``SUBSEL`` (cores with route ``dima_binconv`` only, any other core flags it; seed 002
    sec. 3.2: class A and class B are separate subarrays): from the micro-op issued after it,
    the array commands of the micro-ops reach subarrays ``a .. a + b - 1`` only (``b`` >= 1,
    ``a + b`` at most the mat's subarrays, else ``error``); the others get no command (they
    neither sense nor write; their sense amplifiers give 0 to the lanes and the reduction). The
    core's start enables every subarray; the host's array commands reach every subarray.

    The path of seed 001's in-memory post-processing (cores with route ``nand_inmem`` only, any
    other core flags them; ``sim.compile.nand_postproc``): ``GSHIFT`` sets the gather shift to a (in
    [0, 31], 0 at start): a GATHER then puts bits ``a .. a + n - 1`` of the word, read as a
    signed 32-bit number (a ``PpuMode.LOGIT`` sum), into the column's n planes, so a sum wider
    than ``operand_bits`` enters the array n bit-planes per pass; ``LOADPLANE`` senses row a
    into transpose-buffer plane d (its S2), ``SCATTER`` writes column a of the transpose
    buffer (n bits, zero-extended) into data-memory word d (its S3): the in-memory outputs'
    way back to the data memory, as the next layer's activations.
    """
    GATHER = 0
    CLEAR  = 1
    SETPTR = 2
    ADDPTR = 3
    SKIPZ  = 4       # zero skipping (config.zero_skip only): below
    SETPAD = 6       # cores with route dima_binconv only: below
    GSHIFT = 7       # cores with route nand_inmem only: below
    LOADPLANE = 8    # cores with route nand_inmem only: below
    SCATTER = 9      # cores with route nand_inmem only: below
    SUBSEL = 11      # cores with route dima_binconv only: above (the class gate)


class WriteSrc(enum.Enum, shape=IMM_BITS):
    """The ``imm`` of ``WRITE_ROW`` / ``PROGRAM``: where the row's data comes from."""
    BUFFER   = 0     # weight-buffer slot b
    ABS_DIFF = 1     # the abs-diff lanes' out
    TBUF     = 2     # transpose-buffer plane b
    FA_FS    = 3     # the FA/FS lanes' sum bits, into the even columns only (dima_binconv)
    BIT_COUNTER = 4  # the bit-counters' LSBs, the counters shift right (nand_inmem)
    TBUF_ZS  = 5     # as TBUF, and sets row a's zero flag if the whole buffer is 0 (zero_skip)
    BIT_COUNTER_XW = 6  # as BIT_COUNTER, rotated: lane j gets lane (j + b) mod lanes (nand_inmem)
    BIT_COUNTER_XWM = 7  # as BIT_COUNTER_XW, lane j written only if lane (j + b) of slot d is set


#: Address tables of the gather (``rtl.core.Core``): an offset-table entry is ``offset``
#: (bits 0-15) and ``kpos`` (bits 16-20); a patch-table entry is ``base`` (bits 0-15) and
#: ``mask`` (bits 16-47). GATHER reads data memory word ``(base + offset) mod 2**16`` if bit
#: ``kpos`` of ``mask`` is set, else 0 (zero padding). These are the widths of every preset;
#: a configuration's ``patch_mask_bits`` (``rtl.config.SIZE_FIELDS``) sets the mask (and
#: ``kpos`` is log2 of it), and tables deeper than 4096 entries widen the host's address.
OFFSET_BITS = 16
KPOS_BITS = 5
MASK_BITS = 1 << KPOS_BITS
AGU_ADDR_BITS = 12
AGU_DATA_BITS = OFFSET_BITS + MASK_BITS


CONTROL_OPS = (Opcode.NOP, Opcode.HALT, Opcode.LOOP, Opcode.ENDLOOP)
DATAPATH_OPS = tuple(op for op in Opcode if op not in CONTROL_OPS)

#: Per datapath opcode, the meaning of each field it uses (the assembler rejects the others).
#: The data operands of the two array writes (WRITE_ROW, PROGRAM).
_WRITE_DATA = {
    "b": "buffer slot (BUFFER) or transpose-buffer plane (TBUF, TBUF_ZS) of the data",
    "imm": "WriteSrc: BUFFER, ABS_DIFF (the abs-diff lanes' out), TBUF, FA_FS (the FA/FS "
           "lanes' sum bits, even columns only), BIT_COUNTER (the bit-counters' LSBs; the "
           "counters shift right), BIT_COUNTER_XW (the same LSBs cross-written: lane j of row a "
           "gets the LSB of lane (j + b) mod lanes, b below the lanes; nand_inmem), "
           "BIT_COUNTER_XWM (as BIT_COUNTER_XW, written only in the lanes j whose source lane "
           "(j + b) mod lanes is set in buffer slot d: seed 001 Fig. 10's cross-write into some "
           "columns of a row; nand_inmem) or TBUF_ZS "
           "(as TBUF, and sets row a's zero flag if the whole transpose buffer is 0; zero_skip "
           "cores)",
    "d": "BIT_COUNTER_XWM only: the buffer slot of the source lanes' write mask"}

#: Rows are array rows; a "slot" is a word of the weight / operand buffer. The meanings are
#: those of ``rtl.core.Core`` for the opcodes it executes (``rtl.core.CORE_OPS``); CMP_STEP,
#: RELU and POOL are reserved for other datapaths (the core flags them).
OPERANDS: dict[Opcode, dict[str, str]] = {
    Opcode.WRITE_ROW: {"a": "row to write",
                       **_WRITE_DATA},
    Opcode.ERASE:     {"a": "any row of the strip to erase to AP = 0"},
    Opcode.PROGRAM:   {"a": "row to program (1-bits to P)",
                       **_WRITE_DATA},
    Opcode.READ:      {"a": "row to sense", "imm": "rtl.column_reduce.ReduceOp on its popcount"},
    Opcode.AND_FU:    {"a": "row", "b": "buffer slot driven on the FU line",
                       "imm": "rtl.column_reduce.ReduceOp on the popcount of the AND"},
    Opcode.AND2:      {"a": "first row", "b": "second row",
                       "imm": "rtl.column_reduce.ReduceOp on the popcount of the AND"},
    Opcode.OR2:       {"a": "first row", "b": "second row",
                       "imm": "rtl.column_reduce.ReduceOp on the popcount of the OR"},
    Opcode.FA_STEP:   {"a": "row of bit b: accumulator bit in the even column 2g, input bit in "
                              "the odd column 2g+1 of each column pair (3-column activation)",
                       "b": "buffer slot of the sign word: bit 2g+1 set, lane g subtracts",
                       "imm": "bit 0: first (bit 0 of an add/sub, carry / borrow in 0) of the "
                              "FA/FS lanes (rtl.fa_fs, ADDSUB)"},
    Opcode.FS_STEP:   {"a": "row of x_b", "b": "buffer slot of w_b",
                       "imm": "bit 0: first (bit 0 of a pass, borrow in 0); bit 1: DIFF pass "
                              "(else the SIGN pass) of rtl.abs_diff_lane; with bit 1, on a core "
                              "with the jeit_fa route: bit 2 add the difference bits into the "
                              "full-adder array (rtl.fa_array, bit 0: a new sum), bit 3 the "
                              "last plane (the array flushes its carries after it)"},
    Opcode.CMP_STEP:  {"a": "row of x_b", "b": "row of w_b",
                       "imm": "bit 0: clear the decided flags first (MSB step)"},
    Opcode.MIN_STEP:  {"a": "row of x_b", "b": "buffer slot of w_b",
                       "imm": "rtl.column_reduce.ReduceOp: L1_FIRST (MSB plane, starts the min "
                              "lanes) or L1_PLANE"},
    Opcode.BITCOUNT:  {"a": "row sensed (COUNT, or out SA / NOT_SA)",
                       "b": "with imm bit 2: buffer slot driven on the FU line",
                       "d": "with an out: buffer slot written in S2",
                       "imm": "rtl.bit_counter.bitcount_imm: bits 0-1 BitCounterOp (HOLD, "
                              "COUNT, SHIFT, CLEAR); bit 2 sense row a AND buffer[b]; bits 3-4 "
                              "BitCountOut into slot d (NONE, SA, NOT_SA, LSB)"},
    Opcode.SHIFT_ACC: {"a": "row whose popcount is accumulated",
                       "imm": "rtl.column_reduce.ReduceOp"},
    Opcode.REQUANT:   {"a": "output channel (requantization table entry)",
                       "b": "zero_skip cores: after a taken MOVE SKIPZ, the buffer slot whose "
                            "low acc_bits bits replace the addend (the zero tile's dot)",
                       "d": "addend: 0 = the sum of every subarray's accumulator, k + 1 = "
                            "subarray k's alone",
                       "imm": "rtl.ppu.ppu_imm: CLEAR, EMIT, NEG, mode"},
    Opcode.RELU:      {"a": "first row of the element", "imm": "element bits - 1"},
    Opcode.POOL:      {"a": "first row of x", "b": "first row of y", "d": "first row of out",
                       "imm": "bit 0: 0 max, 1 min"},
    Opcode.MOVE:      {"a": "GATHER: transpose-buffer column; SETPTR / ADDPTR: the value; "
                            "SKIPZ: the row whose zero flag is tested; GSHIFT: the gather "
                            "shift; LOADPLANE: the row sensed; SCATTER: the column; "
                            "SUBSEL: the first subarray enabled",
                       "b": "GATHER: offset-table entry; SKIPZ: instructions to skip; "
                            "SUBSEL: the subarrays enabled",
                       "d": "GATHER: patch-table entry; SKIPZ: their cycles (counted as "
                            "saved); LOADPLANE: the transpose-buffer plane; SCATTER: the "
                            "data-memory word",
                       "imm": "MoveOp: GATHER, CLEAR, SETPTR, ADDPTR, SKIPZ, SETPAD, GSHIFT, "
                              "LOADPLANE, SCATTER, SUBSEL"},
}

#: Widest operand base a configuration can derive (``rtl.config.AcceleratorConfig.
#: isa_base_bits``): the width of a resolved operand, so a base reaches every operand value.
MAX_BASE_BITS = OPERAND_BITS


def _fields(base_bits: int) -> tuple[tuple[str, int, int, bool], ...]:
    """The word format of operand bases of ``base_bits`` bits, contiguous from bit 0."""
    out, lsb = [("op", 0, OP_BITS, False), ("imm", OP_BITS, IMM_BITS, False)], COUNT_LSB
    for name in "abd":
        for part, width, is_signed in (("base", base_bits, False), ("level", LEVEL_BITS, False),
                                       ("stride", STRIDE_BITS, True)):
            out.append((f"{name}_{part}", lsb, width, is_signed))
            lsb += width
    return tuple(out)


#: Operands of :data:`OPERANDS` that an opcode reads only on some cores (default 0 for the
#: assembler): REQUANT's b, the addend's slot after a taken SKIPZ (``config.zero_skip``);
#: WRITE_ROW's / PROGRAM's d, the mask slot of a ``BIT_COUNTER_XWM`` write (``nand_inmem``).
OPTIONAL_OPERANDS: dict[Opcode, tuple[str, ...]] = {Opcode.REQUANT: ("b",),
                                                     Opcode.WRITE_ROW: ("d",),
                                                     Opcode.PROGRAM: ("d",)}

#: The word format: (name, lsb, width, signed), contiguous from bit 0. ``count_m1`` (LOOP only)
#: overlays a and is given by :data:`COUNT_LSB` / :data:`COUNT_BITS` instead. This is the
#: format of 12-bit bases (:data:`BASE_BITS`, every preset's but nand_spin's); a configuration
#: with larger memories derives wider bases and a longer word (:class:`IsaFormat`).
FIELDS: tuple[tuple[str, int, int, bool], ...] = _fields(BASE_BITS)
_FIELDS_OF = {b: _fields(b) for b in range(BASE_BITS, MAX_BASE_BITS + 1)}
assert sum(w for _, _, w, _ in FIELDS) == WORD_BITS
assert all(FIELDS[i][1] + FIELDS[i][2] == FIELDS[i + 1][1] for i in range(len(FIELDS) - 1))


def _fields_of(base_bits: int) -> tuple:
    fields = _FIELDS_OF.get(base_bits) if isinstance(base_bits, int) else None
    if fields is None:
        raise ValueError(f"base_bits must be an int in [{BASE_BITS}, {MAX_BASE_BITS}], not "
                         f"{base_bits!r}")
    return fields


def _layout(fields) -> data.StructLayout:
    return data.StructLayout({
        name: Opcode if name == "op" else (signed(width) if is_signed else unsigned(width))
        for name, _, width, is_signed in fields
    })


#: The same format as an Amaranth layout, for the controller's decoder.
WORD_LAYOUT = _layout(FIELDS)


def _check_field(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int in [{lo}, {hi}], not {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"{name} must be in [{lo}, {hi}], not {value!r}")


@dataclass(frozen=True)
class Operand:
    """One loop-relative operand: ``(base + stride * index[level]) mod 2**OPERAND_BITS``.

    ``base`` in [0, 4095]; ``level`` in [0, 3], 0 the innermost active loop; ``stride`` in
    [-8, 7], 0 meaning absolute (``level`` is then ignored).
    """
    base: int = 0
    level: int = 0
    stride: int = 0

    def check(self, name: str, base_bits: int = BASE_BITS) -> None:
        """Raise ``TypeError`` / ``ValueError`` naming ``<name>.<field>`` if out of range
        (``base`` in [0, 2**base_bits - 1])."""
        _check_field(f"{name}.base", self.base, 0, (1 << base_bits) - 1)
        _check_field(f"{name}.level", self.level, 0, LOOP_DEPTH - 1)
        lo = -(1 << (STRIDE_BITS - 1))
        _check_field(f"{name}.stride", self.stride, lo, -lo - 1)


@dataclass(frozen=True)
class Instr:
    """One decoded instruction. ``count`` (iterations, 1 .. 65536) is used by LOOP only, the
    operands a, b, d and ``imm`` by the other opcodes; unused fields stay at their defaults."""
    op: Opcode
    imm: int = 0
    a: Operand = Operand()
    b: Operand = Operand()
    d: Operand = Operand()
    count: int = 1

    def check(self, base_bits: int = BASE_BITS) -> None:
        """Raise ``TypeError`` / ``ValueError`` naming the field if anything is out of range
        (operand bases of ``base_bits`` bits)."""
        if not isinstance(self.op, Opcode):
            raise TypeError(f"op must be an Opcode, not {self.op!r}")
        _check_field("imm", self.imm, 0, (1 << IMM_BITS) - 1)
        for name in "abd":
            operand = getattr(self, name)
            if not isinstance(operand, Operand):
                raise TypeError(f"{name} must be an Operand, not {operand!r}")
            operand.check(name, base_bits)
        _check_field("count", self.count, 1, MAX_LOOP_COUNT)
        if self.op is Opcode.LOOP:
            if (self.a, self.b, self.d, self.imm) != (Operand(), Operand(), Operand(), 0):
                raise ValueError("LOOP has only the field count (its bits overlay a)")
        elif self.count != 1:
            raise ValueError(f"count is a LOOP field, {self.op.name} has none")


def encode(instr: Instr, base_bits: int = BASE_BITS) -> int:
    """The word of ``instr`` (64 bits; :meth:`IsaFormat.word_bits` for wider ``base_bits``),
    checked first: ``TypeError`` / ``ValueError``."""
    fields = _fields_of(base_bits)
    instr.check(base_bits)
    if instr.op is Opcode.LOOP:
        return instr.op.value | (instr.count - 1) << COUNT_LSB
    values = {"op": instr.op.value, "imm": instr.imm}
    for name in "abd":
        operand = getattr(instr, name)
        values.update({f"{name}_base": operand.base, f"{name}_level": operand.level,
                       f"{name}_stride": operand.stride})
    word = 0
    for name, lsb, width, _ in fields:
        word |= (values[name] & ((1 << width) - 1)) << lsb
    return word


def decode(word: int, base_bits: int = BASE_BITS) -> Instr:
    """The instruction in ``word`` (of the format of ``base_bits``-bit bases); bits a LOOP
    does not use are ignored.

    Raises
    ------
    ValueError
        ``word`` is not in [0, 2**word_bits), or its opcode is undefined.
    """
    fields = _fields_of(base_bits)
    _check_field("word", word, 0, (1 << (fields[-1][1] + fields[-1][2])) - 1)
    raw = {}
    for name, lsb, width, is_signed in fields:
        v = (word >> lsb) & ((1 << width) - 1)
        if is_signed and v >> (width - 1):
            v -= 1 << width
        raw[name] = v
    try:
        op = Opcode(raw["op"])
    except ValueError:
        raise ValueError(f"undefined opcode {raw['op']} in word {word:#018x}") from None
    if op is Opcode.LOOP:
        return Instr(op, count=((word >> COUNT_LSB) & ((1 << COUNT_BITS) - 1)) + 1)
    return Instr(op, imm=raw["imm"], **{
        n: Operand(raw[f"{n}_base"], raw[f"{n}_level"], raw[f"{n}_stride"]) for n in "abd"})


@dataclass(frozen=True)
class IsaFormat:
    """The instruction word of one operand-base width.

    Every operand (a, b, d) is ``base`` (``base_bits``) + ``level`` (:data:`LEVEL_BITS`) +
    ``stride`` (:data:`STRIDE_BITS`) bits after ``op`` and ``imm``, so the word is ``10 + 3 *
    (base_bits + 6)`` bits: 64 for 12-bit bases (:data:`FIELDS`; every preset's but nand_spin's
    70), up to
    76 for 16-bit bases. A configuration derives its width from its memory sizes
    (``rtl.config.AcceleratorConfig.isa_base_bits``): the smallest in [:data:`BASE_BITS`,
    :data:`MAX_BASE_BITS`] that holds every row, slot, channel, table entry, mat column and
    data-memory address, so the bases never limit a program the memories can hold. Opcodes,
    ``imm`` and the LOOP count (bits 10..25) are the same in every width.

    Parameters
    ----------
    base_bits : int
        In [:data:`BASE_BITS`, :data:`MAX_BASE_BITS`].
    """
    base_bits: int = BASE_BITS

    def __post_init__(self):
        _fields_of(self.base_bits)

    @property
    def fields(self) -> tuple:
        """``(name, lsb, width, signed)`` per field, as :data:`FIELDS`."""
        return _FIELDS_OF[self.base_bits]

    @property
    def word_bits(self) -> int:
        """Bits of an instruction word."""
        return COUNT_LSB + 3 * (self.base_bits + LEVEL_BITS + STRIDE_BITS)

    @property
    def layout(self) -> data.StructLayout:
        """The format as an Amaranth layout (:data:`WORD_LAYOUT` for 12-bit bases)."""
        return WORD_LAYOUT if self.base_bits == BASE_BITS else _layout(self.fields)

    def encode(self, instr: Instr) -> int:
        """:func:`encode` in this format."""
        return encode(instr, self.base_bits)

    def decode(self, word: int) -> Instr:
        """:func:`decode` in this format."""
        return decode(word, self.base_bits)


def isa_format(base_bits: int = BASE_BITS) -> IsaFormat:
    """The :class:`IsaFormat` of ``base_bits``-bit operand bases (``ValueError`` outside
    [:data:`BASE_BITS`, :data:`MAX_BASE_BITS`])."""
    _fields_of(base_bits)
    return _FORMATS[base_bits]


_FORMATS = {b: IsaFormat(b) for b in range(BASE_BITS, MAX_BASE_BITS + 1)}


#: Performance counters, read by index: total cycles from start to done, cycles a micro-op was
#: held by ``ready`` low, then one per opcode (:func:`counter_index`).
COUNTER_CYCLES = 0
COUNTER_STALLS = 1
N_COUNTERS = 2 + len(Opcode)
# Counters are indexed by opcode value (counter_index) and named in enum order
# (counter_names): both hold only while the values are 0 .. len(Opcode) - 1. A new opcode
# takes the next free value; a gap would put a counter past N_COUNTERS.
if sorted(op.value for op in Opcode) != list(range(len(Opcode))) or \
        [op.value for op in Opcode] != sorted(op.value for op in Opcode):
    raise ImportError("rtl.isa.Opcode values must be 0 .. len(Opcode) - 1 in order: the "
                      "performance counters are indexed by opcode value")


def counter_index(op: Opcode) -> int:
    """Index of the counter of ``op``: micro-ops issued (accepted by the datapath), control
    instructions executed (an ENDLOOP folded into the instruction before it included)."""
    return 2 + Opcode(op).value


#: The zero-skipping counters of a core with ``config.zero_skip`` (``rtl.core.Core``), read at
#: counter indices ``N_COUNTERS ..``: operands gathered, of them zero (the zero-detect),
#: operands gathered into a tile written with ``TBUF_ZS`` from an all-zero transpose buffer
#: (every term of theirs is skipped), SKIPZ taken (tile dots skipped) and the cycles saved.
ZERO_SKIP_COUNTERS = ("zs_operands", "zs_zero", "zs_skipped", "zs_tiles", "zs_cycles_saved")


def counter_names() -> tuple[str, ...]:
    """Names of the counters in index order: ``cycles``, ``stalls``, then the opcode names in
    lower case."""
    return ("cycles", "stalls") + tuple(op.name.lower() for op in Opcode)
