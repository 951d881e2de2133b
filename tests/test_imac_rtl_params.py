"""rtl.imac_*: parameter checks (messages pinned), partition counts, widths that fit golden."""

import re

import pytest

from golden import imac
from rtl.imac_argmax import ImacArgmax
from rtl.imac_coproc import ImacCoproc
from rtl.imac_crossbar import ImacCrossbar, ImacMacroSignature, current_bits
from rtl.imac_layer import ImacLayer
from rtl.imac_neuron import ImacNeuron
from rtl.imac_serial import ImacSerialCoproc

F = imac.FIXED


def _neuron(**over):
    kw = dict(partitions=2, columns=2, i_bits=F.i_bits, mult=imac.amp_multiplier(30),
              shift=F.amp_shift, rail_bits=F.amp_frac_bits, recip=imac.mean_reciprocal(2),
              mean_shift=F.mean_shift, lut=imac.sigmoid_lut().tolist(), out_bits=F.out_bits)
    kw.update(over)
    return ImacNeuron(**kw)


def test_golden_current_width_holds_a_full_partition():
    # 32 rows * 256 * (2**20 - 1) = 8589926400 < 2**33: 34 signed bits, golden carries 36.
    assert current_bits(rows=32, x_bits=9, g_bits=20) == 34
    assert current_bits(rows=32, x_bits=F.x_bits, g_bits=F.g_bits) <= F.i_bits


def test_crossbar_signature_shape():
    sig = ImacCrossbar(rows=6, columns=3, x_bits=9, g_bits=20, i_bits=36).signature.flip()
    assert sig == ImacMacroSignature(rows=6, columns=3, x_bits=9, g_bits=20, i_bits=36)
    assert sig.members["w_row"].shape == 3 and sig.members["w_col"].shape == 2


@pytest.mark.parametrize("kw, exc, message", [
    (dict(rows=0), ValueError, "rows must be a positive int, not 0"),
    (dict(columns=2.0), TypeError, "columns must be an int, not 2.0"),
    (dict(i_bits=33), ValueError,
     "i_bits must be at least 34 for 32 rows of 9-bit inputs and 20-bit conductances, not 33"),
])
def test_crossbar_bad_parameters(kw, exc, message):
    args = dict(rows=32, columns=4, x_bits=9, g_bits=20, i_bits=36) | kw
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        ImacMacroSignature(**args)


@pytest.mark.parametrize("kw, exc, message", [
    (dict(partitions=0), ValueError, "partitions must be an int of at least 1, not 0"),
    (dict(mult=True), TypeError, "mult must be an int, not True"),
    (dict(lut=[0] * 10), ValueError, "lut must have 2049 entries (2 * 2**rail_bits + 1), not 10"),
    (dict(lut=[0] * 2048 + [256]), ValueError, "lut[2048] must be an int in [0, 256), not 256"),
])
def test_neuron_bad_parameters(kw, exc, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        _neuron(**kw)


def test_neuron_keeps_its_parameters():
    n = _neuron()
    assert n.params["recip"] == 32768 and n.lut == tuple(imac.sigmoid_lut().tolist())


@pytest.mark.parametrize("kw, exc, message", [
    (dict(inputs=0), ValueError, "inputs must be a positive int, not 0"),
    (dict(width="8"), TypeError, "width must be an int, not '8'"),
])
def test_argmax_bad_parameters(kw, exc, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        ImacArgmax(**(dict(inputs=10, width=8) | kw))


def test_argmax_index_width():
    assert ImacArgmax(inputs=10, width=8).signature.members["index"].shape == 4
    assert ImacArgmax(inputs=1, width=8).signature.members["index"].shape == 1


def _layer(**over):
    kw = dict(inputs=20, outputs=6, rows=8, columns=4, x_bits=F.x_bits, g_bits=F.g_bits,
              i_bits=F.i_bits, mult=imac.amp_multiplier(30), shift=F.amp_shift,
              rail_bits=F.amp_frac_bits, recip=imac.mean_reciprocal(3),
              mean_shift=F.mean_shift, lut=imac.sigmoid_lut().tolist(), out_bits=F.out_bits)
    kw.update(over)
    return ImacLayer(**kw)


def test_layer_partitions_as_imac_sim():
    # IMAC-Sim: hpar = ceil((400 + 1) / 32) = 13, vpar = ceil(120 / 32) = 4.
    layer = _layer(inputs=401, outputs=120, rows=32, columns=32,
                   recip=imac.mean_reciprocal(13))
    assert layer.partitions == (13, 4)
    assert layer.signature.members["w_row"].shape == 9      # 13 * 32 = 416 rows
    assert _layer().partitions == (3, 2)


@pytest.mark.parametrize("kw, exc, message", [
    (dict(rows=12), ValueError, "rows must be a power of two, not 12"),
    (dict(outputs=0), ValueError, "outputs must be a positive int, not 0"),
    (dict(i_bits=20), ValueError,
     "i_bits must be at least 32 for 8 rows of 9-bit inputs and 20-bit conductances, not 20"),
])
def test_layer_bad_parameters(kw, exc, message):
    with pytest.raises(exc, match="^" + re.escape(message) + "$"):
        _layer(**kw)


def _coproc(**over):
    kw = dict(shapes=((40, 8), (8, 4)), bias=(True, False),
              mults=(imac.amp_multiplier(30), imac.amp_multiplier(10)),
              recips=(imac.mean_reciprocal(6), imac.mean_reciprocal(1)), x_max=F.x_max, rows=8,
              columns=4, x_bits=F.x_bits, g_bits=F.g_bits, i_bits=F.i_bits, shift=F.amp_shift,
              rail_bits=F.amp_frac_bits, mean_shift=F.mean_shift,
              lut=imac.sigmoid_lut().tolist(), out_bits=F.out_bits)
    kw.update(over)
    return ImacCoproc(**kw)


def test_coproc_ports():
    members = _coproc().signature.members
    assert members["in_addr"].shape == 1            # 40 inputs: two 32-bit words
    assert members["prog_row"].shape == 6           # layer 0: 41 rows on 6 partitions of 8
    assert members["class_index"].shape == 2


def _serial(**over):
    kw = dict(shapes=((40, 8), (8, 4)), bias=(True, False),
              mults=(imac.amp_multiplier(30), imac.amp_multiplier(10)),
              recips=(imac.mean_reciprocal(6), imac.mean_reciprocal(1)), x_max=F.x_max, rows=8,
              x_bits=F.x_bits, g_bits=F.g_bits, i_bits=F.i_bits, shift=F.amp_shift,
              rail_bits=F.amp_frac_bits, mean_shift=F.mean_shift,
              lut=imac.sigmoid_lut().tolist(), out_bits=F.out_bits)
    kw.update(over)
    return ImacSerialCoproc(**kw)


@pytest.mark.parametrize("build", [_coproc, _serial], ids=["coproc", "serial"])
@pytest.mark.parametrize("kw, message", [
    (dict(shapes=((40, 8), (6, 4))), "layer 1 has 6 inputs, layer 0 8 outputs"),
    (dict(bias=(True,)), "bias must have one entry per layer (2), not 1"),
    (dict(recips=(1, 2, 3)), "recips must have one entry per layer (2), not 3"),
    (dict(x_max=256), "x_max must be in [1, 255], not 256"),
    (dict(x_max=0), "x_max must be in [1, 255], not 0"),
    (dict(shapes=()), "shapes must name at least one layer"),
])
def test_coproc_bad_parameters(build, kw, message):
    """Both co-processors check their network parameters alike (rtl.imac_coproc.check_mlp)."""
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        build(**kw)


def test_serial_bad_rows():
    with pytest.raises(ValueError, match=r"^rows must be a power of two, not 12$"):
        _serial(rows=12)
