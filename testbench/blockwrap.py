"""Unit benches of the core's blocks: a block with its memories, and the cocotb side.

pytest side: :class:`WithMemories` wraps a block whose memory ports are
``lib.memory`` port signatures with real block RAMs, so the generated Verilog reads
and writes memories exactly as in the core; the bench fills a memory through
``{mem}_load`` (a write port) and reads it back through ``{mem}_peek`` (a read port).
Every other member of the block is passed through under its own name.

cocotb side: :func:`run_cycles` drives and samples once per clock, half a cycle away
from the rising edge: :class:`Source` and :class:`Sink` play streams (with random
valid/ready gaps), :func:`load` / :func:`peek` use the memory ports.
"""

import os
import pickle

from amaranth.hdl import Module, Shape
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2


class WithMemories(wiring.Component):
    """``block`` with one block RAM per entry of ``memories``:
    ``{name: (shape, depth, [block ports])}``; each listed block port (a read or write
    port signature) is connected to that memory."""

    def __init__(self, block, memories):
        self.block = block
        self.memories = memories
        used = {port for _, _, ports in memories.values() for port in ports}
        members = {}
        for name, member in block.signature.members.items():
            if name not in used:
                members[name] = member
        for name, (shape, depth, _) in memories.items():
            aw = ceil_log2(depth)
            members[f"{name}_load"] = Out(WritePort.Signature(addr_width=aw, shape=shape))
            members[f"{name}_peek"] = Out(ReadPort.Signature(addr_width=aw, shape=shape))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.block = block = self.block
        for name, (shape, depth, ports) in self.memories.items():
            mem = m.submodules[f"mem_{name}"] = Memory(shape=shape, depth=depth, init=[])
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_load")), mem.write_port())
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_peek")), mem.read_port())
            for port in ports:
                member = block.signature.members[port]
                # seen from the block, a read port's data flows in, a write port's out
                members = member.signature.members
                if members["data"].flow == In:
                    wiring.connect(m, getattr(block, port), mem.read_port())
                    continue
                # one enable per element of a wide word
                lanes = Shape.cast(members["en"].shape).width
                width = Shape.cast(members["data"].shape).width
                wiring.connect(m, getattr(block, port), mem.write_port(
                    granularity=width // lanes if lanes > 1 else None))
        for name, member in block.signature.members.items():
            if name not in self.signature.members:
                continue
            ours, theirs = getattr(self, name), getattr(block, name)
            if member.is_signature:
                wiring.connect(m, wiring.flipped(ours), theirs)
            elif member.flow == In:
                m.d.comb += theirs.eq(ours)
            else:
                m.d.comb += ours.eq(theirs)
        return m


# --- cocotb side -------------------------------------------------------------------

def fields(layout):
    """``[(name, offset, width)]`` of a flat ``data.StructLayout``."""
    return [(name, f.offset, f.width) for name, f in layout]


def pack(layout_fields, values):
    """Integer of a flat layout from a dict of field values."""
    word = 0
    for name, off, width in layout_fields:
        word |= (int(values.get(name, 0)) & ((1 << width) - 1)) << off
    return word


def unpack(layout_fields, word):
    """Dict of field values of a flat layout from its integer."""
    return {name: (word >> off) & ((1 << width) - 1) for name, off, width in layout_fields}


def load_case():
    """The pickled test case the pytest entry point wrote (``GANPU_CASE``)."""
    with open(os.environ["GANPU_CASE"], "rb") as f:
        return pickle.load(f)


def sig(dut, name):
    return getattr(dut, name)


def uint(value):
    """A cocotb value (1-bit ``Logic`` or ``LogicArray``) as an int."""
    return value.to_unsigned() if hasattr(value, "to_unsigned") else int(value)


class Source:
    """Plays ``items`` (ints) into stream ``prefix``; each cycle a new item is offered
    with probability ``p``, and an offered item stays until taken."""

    def __init__(self, dut, prefix, items, rng, p=1.0):
        self.valid = sig(dut, f"{prefix}__valid")
        self.payload = sig(dut, f"{prefix}__payload")
        self.ready = sig(dut, f"{prefix}__ready")
        self.items = list(items)
        self.rng, self.p = rng, p
        self.offering = False
        self.taken = []  # cycle of each transfer

    def drive(self, cycle):
        if not self.offering and self.items and (self.p >= 1 or self.rng.random() < self.p):
            self.offering = True
            self.payload.value = self.items[0]
        self.valid.value = int(self.offering)

    def sample(self, cycle):
        if self.offering and self.ready.value:
            self.items.pop(0)
            self.offering = False
            self.taken.append(cycle)

    @property
    def done(self):
        return not self.items


class Sink:
    """Takes stream ``prefix``; ``ready`` is 1 each cycle with probability ``p``."""

    def __init__(self, dut, prefix, rng, p=1.0, has_ready=True):
        self.valid = sig(dut, f"{prefix}__valid")
        self.payload = sig(dut, f"{prefix}__payload")
        self.ready = sig(dut, f"{prefix}__ready") if has_ready else None
        self.rng, self.p = rng, p
        self.r = True
        self.got = []      # payload integers
        self.cycles = []   # cycle of each transfer

    def drive(self, cycle):
        self.r = self.p >= 1 or self.rng.random() < self.p
        if self.ready is not None:
            self.ready.value = int(self.r)

    def sample(self, cycle):
        if self.valid.value and self.r:
            self.got.append(uint(self.payload.value))
            self.cycles.append(cycle)


async def start_clock(dut, inputs=()):
    """Clock, and reset for 3 cycles with ``inputs`` held at 0."""
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    for name in inputs:
        sig(dut, name).value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0


async def run_cycles(dut, parts, until, limit, what):
    """Each cycle: every part's ``drive(cycle)`` after the falling edge, then, with the
    combinational logic settled, every part's ``sample(cycle)``; stops after the cycle
    where ``until()`` holds (returns the cycle count) or fails after ``limit`` cycles."""
    from cocotb.triggers import FallingEdge, ReadOnly
    for cycle in range(limit):
        await FallingEdge(dut.clk)
        for p in parts:
            p.drive(cycle)
        await ReadOnly()
        for p in parts:
            p.sample(cycle)
        if until():
            return cycle + 1
    raise AssertionError(f"{what}: not done after {limit} cycles")


class Pulse:
    """Drives ``name`` to 1 in cycle ``at`` only (``value`` on another signal with it)."""

    def __init__(self, dut, name, at=0, extra=None):
        self.s = sig(dut, name)
        self.at = at
        self.extra = extra or {}
        self.dut = dut

    def drive(self, cycle):
        self.s.value = int(cycle == self.at)
        if cycle == self.at:
            for k, v in self.extra.items():
                sig(self.dut, k).value = v

    def sample(self, cycle):
        pass


class Hold:
    """Drives each signal of ``values`` (name -> int) every cycle."""

    def __init__(self, dut, values):
        self.s = [(sig(dut, k), v) for k, v in values.items()]

    def drive(self, cycle):
        for s, v in self.s:
            s.value = v

    def sample(self, cycle):
        pass


class Watch:
    """Records the cycles where signal ``name`` is 1 (and the value of ``also``)."""

    def __init__(self, dut, name, also=()):
        self.s = sig(dut, name)
        self.also = [sig(dut, a) for a in also]
        self.hits = []

    def drive(self, cycle):
        pass

    def sample(self, cycle):
        if self.s.value:
            self.hits.append((cycle, *[uint(a.value) for a in self.also]))


async def load(dut, name, values, base=0):
    """Write ``values`` to memory ``name`` from ``base`` (one element per cycle)."""
    from cocotb.triggers import FallingEdge
    en, addr, dat = (sig(dut, f"{name}_load__{x}") for x in ("en", "addr", "data"))
    for i, v in enumerate(values):
        await FallingEdge(dut.clk)
        en.value, addr.value, dat.value = 1, base + i, int(v)
    await FallingEdge(dut.clk)
    en.value = 0


async def peek(dut, name, count, base=0):
    """Read ``count`` elements of memory ``name`` from ``base``."""
    from cocotb.triggers import FallingEdge
    en, addr, dat = (sig(dut, f"{name}_peek__{x}") for x in ("en", "addr", "data"))
    out = []
    for i in range(count + 1):
        await FallingEdge(dut.clk)
        en.value = 1
        if i:
            out.append(uint(dat.value))
        if i < count:
            addr.value = base + i
    return out


class Units(wiring.Component):
    """Several blocks side by side in one design, block ``name``'s ports under
    ``name__...``: one simulator build serves every unit bench (``GANPU_PREFIX``
    tells a bench which block is its own)."""

    def __init__(self, blocks):
        self.blocks = blocks
        super().__init__({name: Out(block.signature) for name, block in blocks.items()})

    def elaborate(self, platform):
        m = Module()
        for name, block in self.blocks.items():
            m.submodules[name] = block
            # port by port (connect() cannot flip an interface holding port arrays)
            for path, member, inner in block.signature.flatten(block):
                outer = getattr(self, name)
                for step in path:
                    outer = outer[step] if isinstance(step, int) else getattr(outer, step)
                if member.flow == In:
                    m.d.comb += inner.eq(outer)
                else:
                    m.d.comb += outer.eq(inner)
        return m


class Prefixed:
    """The cocotb handle of one block of a :class:`Units` design: ``dut.x`` is
    ``name__x``; the clock, the reset and the log are shared."""

    SHARED = ("clk", "rst", "_log")

    def __init__(self, dut, prefix):
        self._dut, self._prefix = dut, prefix

    def __getattr__(self, name):
        if name in self.SHARED or not self._prefix:
            return getattr(self._dut, name)
        return getattr(self._dut, f"{self._prefix}__{name}")


def block_dut(dut):
    """``dut`` seen as the block named by ``GANPU_PREFIX`` (the whole design if unset)."""
    return Prefixed(dut, os.environ.get("GANPU_PREFIX", ""))
