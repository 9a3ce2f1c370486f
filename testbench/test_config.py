"""CoreConfig, Geometry and Buf: every refused parameter names itself and shows its value."""

import pytest

from ganpu.core import Buf, CoreConfig, Geometry
from ganpu.core.config import check_int, check_type


def test_geometry_messages():
    with pytest.raises(ValueError, match=r"^b_bits must be in 1\.\.16, not 0$"):
        Geometry(b_bits=0)
    with pytest.raises(TypeError, match=r"^mask_bits must be an int, not '8'$"):
        Geometry(mask_bits="8")
    with pytest.raises(KeyError, match=r"Unknown buffer group 'bw'; valid: a, b, out, bias, mask"):
        Geometry().depth("bw")


def test_core_config_messages():
    with pytest.raises(ValueError, match=r"^lanes must be in 1\.\.16, not 17$"):
        CoreConfig(lanes=17)
    with pytest.raises(TypeError, match=r"^lanes must be an int, not True$"):
        CoreConfig(lanes=True)
    with pytest.raises(ValueError, match=r"^eors_lanes must be a power of two, not 12$"):
        CoreConfig(eors_lanes=12)
    with pytest.raises(ValueError, match=r"^eors_lanes must be in 2\.\.64, not 128$"):
        CoreConfig(eors_lanes=128)
    with pytest.raises(TypeError, match=r"^geom must be a Geometry, not 12$"):
        CoreConfig(geom=12)
    with pytest.raises(TypeError, match=r"^eors must be a EorsParams, not None$"):
        CoreConfig(eors=None)
    with pytest.raises(ValueError, match=r"^eors_lanes=32 is wider than the BIAS buffer: "
                                         r"bias_bits=4 < log2\(eors_lanes\) = 5$"):
        CoreConfig(geom=Geometry(bias_bits=4), eors_lanes=32)
    with pytest.raises(ValueError, match=r"^eors_lanes=16 is wider than the B buffer: "
                                         r"b_bits=3 < log2\(eors_lanes\) = 4$"):
        CoreConfig(geom=Geometry(b_bits=3), eors_lanes=16)
    # the speculator's mask store would have no word per row: wrong EORS results, OK verdict
    with pytest.raises(ValueError, match=r"^eors_lanes=16 is wider than the MASK buffer: "
                                         r"mask_bits=3 < log2\(eors_lanes\) = 4$"):
        CoreConfig(geom=Geometry(mask_bits=3), eors_lanes=16)


def test_buf_names():
    assert Buf.from_name("mask_in") is Buf.MASK_IN
    with pytest.raises(KeyError, match=r"Unknown buffer 'c'; valid names: a, b, bias, mask_in, out, mask_out, bw"):
        Buf.from_name("c")


def test_checks():
    assert check_int("x", 3, 1, 4) == 3
    with pytest.raises(ValueError, match=r"^x must be in >= 1, not 0$"):
        check_int("x", 0, 1)
    with pytest.raises(TypeError, match=r"^y must be a int, not 'a'$"):
        check_type("y", "a", int)
