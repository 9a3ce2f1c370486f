"""Packing of side-by-side values into one wide port value: the EORS predictor's lanes,
the copies of :class:`ganpu.arith.packed.PackedCopies`.

A cocotb signal access costs the same whatever its width, so benches drive and read
many values through one wide port; field ``n`` owns bits ``[n*width, (n+1)*width)``.
"""


def pack(values, width):
    """Field values (negative ones as two's complement) -> one integer."""
    mask = (1 << width) - 1
    word = 0
    for n, v in enumerate(values):
        word |= (int(v) & mask) << (n * width)
    return word


def unpack(word, width, count):
    """One integer -> ``count`` unsigned field values."""
    mask = (1 << width) - 1
    return [(word >> (n * width)) & mask for n in range(count)]


def unpack_signed(word, width, count):
    """One integer -> ``count`` two's complement field values."""
    return [v - (1 << width) if v >> (width - 1) else v for v in unpack(word, width, count)]


def port_uint(value):
    """A cocotb port value as an unsigned int (1-bit ports read as Logic, wider ones as
    LogicArray)."""
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)
