"""Packing of per-lane values into one wide port value, for benches of packed lanes.

A cocotb signal access costs the same whatever its width, so benches drive and read
many lanes through one wide port; lane ``n`` owns bits ``[n*width, (n+1)*width)``.
"""


def pack(values, width):
    """Lane values (negative ones as two's complement) -> one integer."""
    mask = (1 << width) - 1
    word = 0
    for n, v in enumerate(values):
        word |= (int(v) & mask) << (n * width)
    return word


def unpack(word, width, count):
    """One integer -> ``count`` unsigned lane values."""
    mask = (1 << width) - 1
    return [(word >> (n * width)) & mask for n in range(count)]


def unpack_signed(word, width, count):
    """One integer -> ``count`` two's complement lane values."""
    return [v - (1 << width) if v >> (width - 1) else v for v in unpack(word, width, count)]
