"""The core's buffers as block RAMs, and the port signatures blocks use to reach them.

Every buffer the host sees (:class:`Buf`) is one :class:`~amaranth.lib.memory.Memory`.
BIAS and BW are ``eors_lanes`` elements wide (one word = P binary16 values), so the
EORS lanes read a whole group per cycle; the host and the scanner address single
elements (word ``addr >> log2 P``, element ``addr mod P``). The masks are 1 bit wide.
A block that reads a buffer declares ``In(read_signature(config, buf))`` and is wired
with ``wiring.connect(m, block.x_rd, memory.read_port())`` (``docs/core.md``).
"""

from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.utils import ceil_log2, exact_log2

from .config import Buf, CoreConfig, check_type

__all__ = ["WIDE", "buffer_shape", "make_memory", "read_signature", "write_signature",
           "element_bits"]

WIDE = frozenset({Buf.BIAS, Buf.BW})
"""Buffers stored as words of ``eors_lanes`` elements."""


def buffer_shape(config, buf):
    """``(shape, depth)`` of the block RAM behind :class:`Buf` ``buf``."""
    check_type("config", config, CoreConfig)
    buf = Buf(buf)
    P = config.eors_lanes
    if buf in WIDE:
        return 16 * P, max(1, config.depth(buf) // P)
    if buf in (Buf.MASK_IN, Buf.MASK_OUT):
        return 1, config.depth(buf)
    return 16, config.depth(buf)


def element_bits(config):
    """log2 of the elements per word of a wide buffer (the element-select width)."""
    return exact_log2(config.eors_lanes)


def make_memory(config, buf):
    """A fresh, all-zero block RAM for buffer ``buf``."""
    shape, depth = buffer_shape(config, buf)
    return Memory(shape=shape, depth=depth, init=[])


def read_signature(config, buf):
    """Signature of a synchronous read port of buffer ``buf`` (data one cycle after
    ``addr``); a reader takes it as ``In(...)``."""
    shape, depth = buffer_shape(config, buf)
    return ReadPort.Signature(addr_width=ceil_log2(depth), shape=shape)


def write_signature(config, buf, *, granularity=None):
    """Signature of a write port of buffer ``buf``; a writer takes it as ``In(...)``."""
    shape, depth = buffer_shape(config, buf)
    return WritePort.Signature(addr_width=ceil_log2(depth), shape=shape, granularity=granularity)
