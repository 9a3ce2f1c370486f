"""The core's buffers as block RAMs, and the port signatures blocks use to reach them.

Every buffer the host sees (:class:`Buf`) is one :class:`~amaranth.lib.memory.Memory`.
BIAS and BW are ``eors_lanes`` elements wide (one word = P binary16 values), so the
EORS lanes read a whole group per cycle; the host and the scanner address single
elements (word ``addr >> log2 P``, element ``addr mod P``). The masks are 1 bit wide.
With a wide host port (``config.host_words`` = W > 1) A, B, OUT, MASK_IN and MASK_OUT
(:data:`BANKED`) are stored as words of W elements (W banks side by side in one block
RAM word), so the host (the DMA) writes or reads W aligned elements in one access; the
blocks that read or write single elements keep their element-wide ports, adapted by
:func:`connect_element_read` (word read, element selected after the RAM) and
:func:`element_write` (one element's enable of a word). The RAM bits are the same.
A block that reads a buffer declares ``In(read_signature(config, buf))`` and is wired
with ``connect_element_read(m, config, buf, block.x_rd, memory)``, which is
``wiring.connect(m, block.x_rd, memory.read_port())`` for a one-element word
(``docs/core.md``).

With two buffer sets (``config.buffer_sets`` = 2, ``docs/core.md``, "Two buffer
sets") the buffers only the host writes (A, B, BIAS, BW) are one block RAM of twice
the depth, the set as the top address bit: compute blocks only read them (their own
read ports, the running set's bit above their address), so the RAM's one write port
stays the host's. The buffers a task writes (:data:`TASK_WRITTEN`) are one block RAM
per set of today's depth (:func:`per_set`): the running task owns its set's write port
while the host writes the other set's, and neither write can wait for the other.
"""

from amaranth.hdl import Signal, Mux, Cat
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.utils import ceil_log2, exact_log2

from .config import Buf, CoreConfig, check_type

__all__ = ["WIDE", "BANKED", "TASK_WRITTEN", "per_set", "set_bits", "buffer_shape", "memory_shape", "make_memory", "read_signature",
           "write_signature", "memory_read_signature", "memory_write_signature",
           "memory_write_port", "element_bits", "word_bits", "connect_element_read",
           "element_read_data", "element_write"]

WIDE = frozenset({Buf.BIAS, Buf.BW})
"""Buffers stored as words of ``eors_lanes`` elements."""

BANKED = frozenset({Buf.A, Buf.B, Buf.OUT, Buf.MASK_IN, Buf.MASK_OUT})
"""Buffers stored as words of ``host_words`` elements (one element when it is 1)."""

TASK_WRITTEN = (Buf.OUT, Buf.MASK_OUT, Buf.MASK_IN)
"""Buffers a running task writes (the epilogue's results, the EORS prediction)."""


def per_set(config, buf):
    """True when ``buf`` is one block RAM per set (a task-written buffer of a core with
    two sets); else one block RAM holds every set."""
    return config.buffer_sets > 1 and buf in TASK_WRITTEN


def set_bits(config):
    """Width of a set number: 0 with one set, 1 with two."""
    return config.buffer_sets - 1


def buffer_shape(config, buf):
    """``(shape, depth)`` of buffer ``buf`` as its blocks read it: elements (16 or 1
    bits) for A, B, OUT and the masks, words of ``eors_lanes`` elements for BIAS, BW."""
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


def word_bits(config):
    """log2 of ``host_words``: the element-select width of a :data:`BANKED` buffer."""
    return exact_log2(config.host_words)


def memory_shape(config, buf):
    """``(shape, depth)`` of the block RAM behind :class:`Buf` ``buf`` (of each one,
    when :func:`per_set`): words of ``host_words`` elements for the :data:`BANKED`
    buffers; twice the depth for a buffer that holds both of two sets."""
    shape, depth = buffer_shape(config, buf)
    if not per_set(config, buf):
        depth *= config.buffer_sets
    W = config.host_words
    if buf in BANKED and W > 1:
        return shape * W, depth // W
    return shape, depth


def _granularity(config, buf):
    shape, _ = buffer_shape(config, buf)
    if buf in WIDE:
        return 16
    return shape if config.host_words > 1 else None


def make_memory(config, buf):
    """A fresh, all-zero block RAM for buffer ``buf`` (for one of its sets when
    :func:`per_set`)."""
    shape, depth = memory_shape(config, buf)
    return Memory(shape=shape, depth=depth, init=[])


def memory_read_signature(config, buf):
    """Signature of a read port of the block RAM behind ``buf`` (:func:`memory_shape`)."""
    shape, depth = memory_shape(config, buf)
    return ReadPort.Signature(addr_width=ceil_log2(depth), shape=shape)


def memory_write_signature(config, buf):
    """Signature of the host's write port of the block RAM behind ``buf``: one enable
    per element of a word (none for a one-element word)."""
    shape, depth = memory_shape(config, buf)
    return WritePort.Signature(addr_width=ceil_log2(depth), shape=shape,
                               granularity=_granularity(config, buf))


def memory_write_port(config, buf, memory):
    """The host's write port of ``memory`` (buffer ``buf``), with
    :func:`memory_write_signature`'s granularity."""
    return memory.write_port(granularity=_granularity(config, buf))


def connect_element_read(m, config, buf, reader, memory, set=None):
    """Connect ``reader`` (a block's ``In(read_signature(config, buf))``) to a new read
    port of ``memory``. A word of W > 1 elements is read at ``addr >> log2 W``; the
    element ``addr mod W``, registered with the address (same ``en``), is selected from
    the RAM's data: still one cycle from address to data.

    With two buffer sets ``set`` (a signal, stable while a task runs) picks the set:
    the top address bit of a RAM that holds both sets, or, when ``memory`` is a list
    (one RAM per set, :func:`per_set`), the RAM whose data is returned (the set
    registered with the address, so still one cycle)."""
    if config.buffer_sets == 1:
        if buf in WIDE:
            wiring.connect(m, reader, memory.read_port())
            return
        port = memory.read_port()
        if buf not in BANKED or config.host_words == 1:
            wiring.connect(m, reader, port)
            return
        m.d.comb += [port.addr.eq(reader.addr >> word_bits(config)), port.en.eq(reader.en)]
        element_read_data(m, config, buf, reader, port.data)
        return
    shift = word_bits(config) if buf in BANKED else 0
    word = reader.addr >> shift
    if isinstance(memory, (list, tuple)):
        ports = [mem.read_port() for mem in memory]
        for port in ports:
            m.d.comb += [port.addr.eq(word), port.en.eq(reader.en)]
        which = Signal(name=f"{buf.name.lower()}_rd_set")
        with m.If(reader.en):
            m.d.sync += which.eq(set)
        data = Signal.like(ports[0].data, name=f"{buf.name.lower()}_rd_data")
        m.d.comb += data.eq(Mux(which, ports[1].data, ports[0].data))
    else:
        port = memory.read_port()
        m.d.comb += [port.addr.eq(Cat(word[:len(port.addr) - 1], set)), port.en.eq(reader.en)]
        data = port.data
    element_read_data(m, config, buf, reader, data)


def element_read_data(m, config, buf, reader, data):
    """Drive ``reader.data`` (an element) from ``data``, the RAM word read for it: the
    element ``reader.addr mod W`` registered with the address. The caller addresses
    the RAM with ``reader.addr >> log2 W`` (or a word it knows is the same)."""
    if buf not in BANKED or config.host_words == 1:
        m.d.comb += reader.data.eq(data)
        return
    lw = word_bits(config)
    elem, _ = buffer_shape(config, buf)
    sel = Signal(lw, name=f"{buf.name.lower()}_sel")
    m.d.comb += reader.data.eq(data.word_select(sel, elem))
    with m.If(reader.en):
        m.d.sync += sel.eq(reader.addr[:lw])


def element_write(m, config, buf, wr, addr, data, en):
    """Drive ``wr`` (a :func:`memory_write_signature` port of a :data:`BANKED` buffer) to
    write one element ``data`` at element address ``addr`` when ``en``."""
    W = config.host_words
    if W == 1:
        m.d.comb += [wr.addr.eq(addr), wr.data.eq(data), wr.en.eq(en)]
        return
    lw = word_bits(config)
    m.d.comb += [wr.addr.eq(addr >> lw), wr.data.eq(data.replicate(W)),
                 wr.en.eq(Mux(en, 1 << addr[:lw], 0))]


def read_signature(config, buf):
    """Signature of a synchronous read port of buffer ``buf`` (data one cycle after
    ``addr``); a reader takes it as ``In(...)``."""
    shape, depth = buffer_shape(config, buf)
    return ReadPort.Signature(addr_width=ceil_log2(depth), shape=shape)


def write_signature(config, buf, *, granularity=None):
    """Signature of a write port of buffer ``buf``; a writer takes it as ``In(...)``."""
    shape, depth = buffer_shape(config, buf)
    return WritePort.Signature(addr_width=ceil_log2(depth), shape=shape, granularity=granularity)
