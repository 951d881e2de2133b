"""golden.array: write semantics per technology, sensing, faults, against hand-written values.

Every expected value is written out here (bit patterns, rows of a strip, flag vectors), or comes
from an independent statement of the same fact (a list-of-bits LFSR, polynomial arithmetic
over GF(2), the law of large numbers), never from golden.array itself.
"""

from __future__ import annotations

import numpy as np
import pytest

from golden.array import (
    COLUMN_SEED_STRIDE,
    LFSR_BITS,
    LFSR_TAPS,
    MtjArray,
    fault_flips,
    lfsr_column_seeds,
    lfsr_step,
    pack_row,
    rate_to_threshold,
    supported_write_commands,
    unpack_row,
)


def bits(word: int, n: int = 4) -> np.ndarray:
    """Column c = bit c of ``word``."""
    return np.array([(word >> c) & 1 for c in range(n)], dtype=np.uint8)


def word(row) -> int:
    return sum(int(b) << c for c, b in enumerate(row))


def nand(rows=16, columns=4, **kw):
    return MtjArray(rows=rows, columns=columns, technology="nand_spin", mtjs_per_strip=8, **kw)


# -- NAND-SPIN: erase, program, program without erase ------------------------------------------

def test_erase_clears_the_whole_strip_and_only_it():
    a = nand()
    for r in range(16):                      # make every cell 1, whatever the flags say
        a.program(r, bits(0b1111))
    a.erase(9)                               # row 9 lies in strip 1 = rows 8..15
    assert list(a.strip_rows(1)) == [8, 9, 10, 11, 12, 13, 14, 15]
    for r in range(8):
        assert word(a.sense("read", r)) == 0b1111, r
    for r in range(8, 16):
        assert word(a.sense("read", r)) == 0, r


def test_program_then_program_again_without_erase():
    a = nand()
    a.erase(0)
    st = a.program(3, bits(0b1010))
    assert word(st.program_without_erase) == 0 and not st.error
    assert word(a.sense("read", 3)) == 0b1010
    st = a.program(3, bits(0b0101))
    assert word(st.program_without_erase) == 0b1111     # every masked column flagged
    assert word(a.sense("read", 3)) == 0b1111           # bits only go AP -> P


def test_program_can_not_clear_a_bit():
    a = nand()
    a.erase(0)
    a.program(2, bits(0b0110))
    st = a.program(2, bits(0b0000))
    assert word(a.sense("read", 2)) == 0b0110
    assert word(st.program_without_erase) == 0b1111


def test_program_before_any_erase_is_flagged():
    a = nand()
    st = a.program(5, bits(0b0001))
    assert word(st.program_without_erase) == 0b1111
    assert word(a.sense("read", 5)) == 0b0001


def test_erase_then_program_each_row_of_a_strip_once_is_clean():
    a = nand()
    a.erase(8)
    for i, r in enumerate(range(8, 16)):
        st = a.program(r, bits(i))
        assert word(st.program_without_erase) == 0, r
    assert [word(a.sense("read", r)) for r in range(8, 16)] == list(range(8))


def test_masked_program_and_flags():
    a = nand()
    a.erase(0)
    st = a.program(1, bits(0b1111), bits(0b0011))       # only columns 0, 1 take part
    assert word(a.sense("read", 1)) == 0b0011 and word(st.program_without_erase) == 0
    st = a.program(1, bits(0b1100), bits(0b1100))       # columns 2, 3: first program there
    assert word(a.sense("read", 1)) == 0b1111 and word(st.program_without_erase) == 0
    st = a.program(1, bits(0b0000), bits(0b0110))       # columns 1, 2 programmed before
    assert word(st.program_without_erase) == 0b0110


def test_masked_erase():
    a = nand()
    a.erase(0)
    a.program(4, bits(0b1111))
    a.erase(7, bits(0b0101))                            # row 7: same strip as row 4
    assert word(a.sense("read", 4)) == 0b1010
    st = a.program(4, bits(0b1111))
    assert word(st.program_without_erase) == 0b1010     # columns 1, 3 were not erased
    assert word(a.sense("read", 4)) == 0b1111


def test_nand_spin_refuses_write_and_out_of_range():
    a = nand()
    st = a.write(0, bits(0b1111))
    assert st.error and word(st.program_without_erase) == 0
    assert word(a.sense("read", 0)) == 0
    assert a.program(16, bits(1)).error and a.erase(99).error
    assert word(a.sense("read", 16)) == 0


# -- STT / SOT: per-bit write under a mask ------------------------------------------------------

@pytest.mark.parametrize("tech", ["stt", "sot", "imac"])
def test_masked_write(tech):
    a = MtjArray(rows=8, columns=4, technology=tech)
    assert not a.write(6, bits(0b1100)).error
    assert word(a.sense("read", 6)) == 0b1100
    a.write(6, bits(0b1010), bits(0b0110))      # columns 1 and 2 take data, 0 and 3 keep
    assert word(a.sense("read", 6)) == 0b1010
    a.write(6, bits(0b0000))                    # unmasked: bipolar write, 1 -> 0 is allowed
    assert word(a.sense("read", 6)) == 0
    assert a.erase(6).error and a.program(6, bits(1)).error and a.write(8, bits(1)).error
    assert word(a.sense("read", 6)) == 0


def test_supported_commands():
    assert supported_write_commands("nand_spin") == ("erase", "program")
    for tech in ("stt", "sot", "imac"):
        assert supported_write_commands(tech) == ("write",)
    with pytest.raises(ValueError, match="technology must be one of .* not 'dram'"):
        supported_write_commands("dram")


# -- sensing --------------------------------------------------------------------------------

def test_two_row_activation_and_fu():
    a = MtjArray(rows=8, columns=4, technology="sot")
    a.write(1, bits(0b1100))
    a.write(2, bits(0b1010))
    assert word(a.sense("and2", 1, 2)) == 0b1000
    assert word(a.sense("or2", 1, 2)) == 0b1110
    assert word(a.sense("and2", 1, 1)) == 0b1100       # the same row twice
    assert word(a.sense("or2", 2, 2)) == 0b1010
    assert word(a.sense("and_fu", 1, fu=bits(0b0110))) == 0b0100
    assert word(a.sense("and2", 1, 9)) == 0           # row 9 does not exist: senses 0
    assert word(a.sense("or2", 9, 2)) == 0b1010


# -- fault model ------------------------------------------------------------------------------

def _gf2_mulmod(a, b, poly, deg):
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if (a >> deg) & 1:
            a ^= poly
    return r


def _x_pow(e, poly, deg):
    r, x = 1, 2
    while e:
        if e & 1:
            r = _gf2_mulmod(r, x, poly, deg)
        x = _gf2_mulmod(x, x, poly, deg)
        e >>= 1
    return r


def test_lfsr_polynomial_is_primitive():
    # Taps at state bits t (bit 0 newest) give s[n] = XOR s[n - t - 1]: characteristic
    # polynomial x^32 + sum x^(31 - t). The order of x modulo it must be 2**32 - 1.
    assert LFSR_TAPS == (31, 29, 25, 24)
    poly = (1 << 32) | sum(1 << (31 - t) for t in LFSR_TAPS)
    assert poly == (1 << 32) | (1 << 7) | (1 << 6) | (1 << 2) | 1     # x^32+x^7+x^6+x^2+1
    n = (1 << 32) - 1
    assert _x_pow(n, poly, 32) == 1
    for q in (3, 5, 17, 257, 65537):                  # the prime factors of 2**32 - 1
        assert _x_pow(n // q, poly, 32) != 1, q


def test_lfsr_step_matches_a_list_of_bits():
    state = [1, 0, 1, 1] + [0] * 20 + [1, 0, 0, 0, 0, 1, 0, 1]   # bit i at index i
    value = sum(b << i for i, b in enumerate(state))
    for _ in range(100):
        new = state[31] ^ state[29] ^ state[25] ^ state[24]
        state = [new] + state[:31]
        value = int(lfsr_step(np.array([value], dtype=np.uint64))[0])
        assert value == sum(b << i for i, b in enumerate(state))


def test_column_seeds():
    s = lfsr_column_seeds(0x12345678, 3)
    assert [int(v) for v in s] == [0x12345678, 0x12345678 ^ 0x9E3779B9,
                                   0x12345678 ^ ((2 * 0x9E3779B9) & 0xFFFFFFFF)]
    assert COLUMN_SEED_STRIDE == 0x9E3779B9 and LFSR_BITS == 32
    assert int(lfsr_column_seeds(0, 1)[0]) == 1                 # never the lock-up state
    assert int(lfsr_column_seeds(0x9E3779B9, 2)[1]) == 1
    with pytest.raises(ValueError, match=r"seed must be an int in \[0, 2\*\*32\), not -1"):
        lfsr_column_seeds(-1, 2)


def test_rate_to_threshold():
    assert rate_to_threshold(0.0) == 0
    assert rate_to_threshold(0.25) == 16384
    assert rate_to_threshold(0.5) == 32768
    assert rate_to_threshold(1 / 65536) == 1
    assert rate_to_threshold(0.999999) == 65535
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\), not 1.0"):
        rate_to_threshold(1.0)


def test_fault_flips_are_the_fresh_low_bits_below_threshold():
    state = np.array([0x0000ABCD], dtype=np.uint64)
    new, flip = fault_flips(state, 0x10000 - 1)
    ref = [(0x0000ABCD >> i) & 1 for i in range(32)]
    for _ in range(16):
        ref = [ref[31] ^ ref[29] ^ ref[25] ^ ref[24]] + ref[:31]
    low = sum(b << i for i, b in enumerate(ref[:16]))
    assert int(new[0]) == sum(b << i for i, b in enumerate(ref))
    assert int(flip[0]) == int(low < 0xFFFF)
    assert int(fault_flips(state, low)[1][0]) == 0 and int(fault_flips(state, low + 1)[1][0]) == 1


def test_faults_off_by_default_and_rate():
    a = MtjArray(rows=8, columns=64, technology="stt", fault_seed=7, fault_threshold=30000)
    a.write(0, np.zeros(64, dtype=np.uint8))
    assert not a.sense("read", 0).any()                      # fault_en defaults to False
    flips = sum(int(a.sense("read", 0, fault_en=True).sum()) for _ in range(500))
    p = 30000 / 65536
    assert abs(flips / (500 * 64) - p) < 0.02                # about 8 sigma: fixed seed


def test_faults_deterministic_and_reset():
    a = MtjArray(rows=8, columns=16, technology="sot", fault_seed=99, fault_threshold=20000)
    first = [a.sense("read", 0, fault_en=True) for _ in range(5)]
    a.reset()
    again = [a.sense("read", 0, fault_en=True) for _ in range(5)]
    assert all(np.array_equal(x, y) for x, y in zip(first, again, strict=True))
    a.load_faults(100, 20000)
    other = [a.sense("read", 0, fault_en=True) for _ in range(5)]
    assert not all(np.array_equal(x, y) for x, y in zip(first, other, strict=True))
    a.load_faults(99, 0)
    assert not any(a.sense("read", 0, fault_en=True).any() for _ in range(50))


# -- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("kw, msg", [
    (dict(rows=0), "rows must be a positive int, not 0"),
    (dict(columns=-4), "columns must be a positive int, not -4"),
    (dict(technology="dram"), "technology must be one of"),
    (dict(technology="nand_spin", mtjs_per_strip=3), "mtjs_per_strip must divide rows=16"),
    (dict(mtjs_per_strip=8), "mtjs_per_strip must be 1 for technology 'stt', not 8"),
    (dict(fault_threshold=65536), r"fault_threshold must be an int in \[0, 65536\), not 65536"),
])
def test_validation(kw, msg):
    args = dict(rows=16, columns=4, technology="stt") | kw
    with pytest.raises(ValueError, match=msg):
        MtjArray(**args)


def test_bad_vector():
    a = nand()
    with pytest.raises(ValueError, match="data must be 4 bits 0/1"):
        a.program(0, [1, 2, 0, 0])


# -- the packed commands (the semantics the cycle model uses) ----------------------------------

def test_pack_row_and_unpack_row():
    assert pack_row(np.array([1, 0, 1, 1]), 4) == 0b1101
    assert pack_row(0b1101, 4) == 0b1101
    assert unpack_row(0b1101, 4).tolist() == [True, False, True, True]
    with pytest.raises(ValueError, match=r"a row as an int must be in \[0, 2\*\*4\), not 16"):
        pack_row(16, 4)
    with pytest.raises(ValueError, match=r"a row must have shape \(4,\), not \(3,\)"):
        pack_row(np.zeros(3), 4)


def test_packed_write_commands_and_senses():
    a = nand()                               # 16 rows x 4 columns, strips of 8 rows
    assert a.write_command("write", 0, 0b1, 0b1) == (True, 0)       # not a NAND-SPIN write
    assert a.write_command("erase", 3, 0, 0b0011) == (False, 0)     # strip 0, columns 0, 1
    # row 5 lies in strip 0: columns 0, 1 erased, 2 never (flagged), 3 not in the mask
    assert a.write_command("program", 5, 0b1111, 0b0111) == (False, 0b0100)
    assert a.cells[5] == 0b0111 and word(a.sense("read", 5)) == 0b0111
    assert a.sense_row("read", 5) == 0b0111
    assert a.sense_row("and_fu", 5, fu=0b0101) == 0b0101
    assert a.sense_row("or2", 5, 9) == 0b0111 and a.sense_row("and2", 5, 99) == 0
    assert a.write_command("program", 16, 1, 1) == (True, 0)        # row beyond
    w = MtjArray(rows=4, columns=4, technology="stt")
    assert w.write_command("write", 2, 0b1010) == (False, 0)        # mask: every column
    assert w.write_command("write", 2, 0b0101, 0b0011) == (False, 0)
    assert w.cells[2] == 0b1001 and w.bits[2].tolist() == [1, 0, 0, 1]


def test_fault_flip_row_is_fault_flips_of_every_column():
    a = MtjArray(rows=2, columns=40, technology="stt", fault_seed=5, fault_threshold=30000)
    states = lfsr_column_seeds(5, 40)
    assert (a.lfsr == states).all()
    for _ in range(6):
        states, flips = fault_flips(states, 30000)
        got = a.fault_flip_row()
        assert [got >> c & 1 for c in range(40)] == flips.tolist()
        assert (a.lfsr == states).all()
