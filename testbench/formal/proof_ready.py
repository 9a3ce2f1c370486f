"""No stream's ``valid`` depends on its ``ready``: a producer offers an item whatever the
consumer says in the same cycle (``docs/verification.md``).

Two copies of a block, ``a`` and ``b``, start from reset and see the same inputs in
every cycle, except the ``ready`` of each output stream, which is free for each copy
on its own. A register notes the first cycle in which some ``ready`` differed between
the copies; until that cycle the copies have seen the same inputs, so they hold the
same state, and the property is that in every such cycle (the one in which the
readies first differ included) every output ``valid`` of ``a`` equals that of ``b``.
A ``valid`` computed from its own ``ready`` (or from another output's ``ready``, which
would deadlock two consumers that wait for each other) gives a counterexample.

Every input other than the readies is free (input streams included: the rule must hold
whatever the upstream does). Covers: for each output stream, a cycle in which it is
valid while the two copies' readies differ.

Blocks, in their smallest configurations: the core's distributor, lane, indexer,
scanner, speculator and merge; the processor's bus front end and scheduler; the
link's COBS decoder, frame receiver and bus executor; the iCEBreaker's bus memory. The COBS encoder (and
so the framer, which holds one) is left to the structural check below: its 512-byte
FIFO makes two copies slow for the solver.

The structural check (``test_valid_has_no_path_from_ready``, :func:`sby.comb_paths`)
proves a stronger, state-free form for every block above, the encoder, the framer,
the weight-update unit, the UART receiver and the iCEBreaker's linked memory: no
combinational path leads from an output ``ready`` to an output ``valid`` at all.
"""

from amaranth.hdl import Assert, Cover, Module, ResetSignal, Signal, Assume
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from ganpu.boards.bus_memory import BusMemory
from ganpu.boards.linked_memory import LinkedMemory
from ganpu.core.config import CoreConfig, Geometry
from ganpu.core.distributor import Distributor
from ganpu.core.indexer import Indexer
from ganpu.core.lane import Lane
from ganpu.core.merge import Merge
from ganpu.core.scanner import Scanner
from ganpu.core.speculator import Speculator
from ganpu.link.cobs_decoder import CobsDecoder
from ganpu.link.cobs_encoder import CobsEncoder
from ganpu.link.executor import BusExecutor
from ganpu.link.framer import Framer
from ganpu.link.receiver import FrameReceiver
from ganpu.link.uart_rx import UartRx
from ganpu.processor.bus import BusFrontEnd
from ganpu.processor.config import ProcessorConfig
from ganpu.processor.scheduler import Scheduler
from ganpu.processor.update import UpdateUnit

CORE = CoreConfig(lanes=2, geom=Geometry(a_bits=2, b_bits=3, out_bits=2, bias_bits=2, mask_bits=2),
                  eors_lanes=2)
PROC = ProcessorConfig(cores=2, core=CORE, gbuf_bits=8, program_bits=1, deps=1, window=1)


def _leaves(component):
    """``{path: (member, value)}`` of every port leaf of ``component``."""
    return {path: (member, value) for path, member, value in component.signature.flatten(component)}


def _name(path):
    return ".".join(map(str, path))


class TwoCopies(wiring.Component):
    """Top of a proof: ``factory()`` twice; every input of copy ``a`` is a port of the top
    (free), copy ``b`` shares them except each output stream's ready, which gets its
    own free port ``ready_b<i>``; ``outputs`` names the output streams (``"lanes.0"``).
    ``wrap(copy)`` may replace a copy by a mutant of it."""

    map_memories = True   # FIFOs as flip-flops: z3 is far faster on them than on arrays

    def __init__(self, factory, outputs, wrap=None):
        self.copies = [factory(), factory()]
        if wrap is not None:
            # both copies mutated alike: they stay one design seen twice
            self.copies = [wrap(c) for c in self.copies]
        self.outputs = list(outputs)
        a = self.copies[0]
        members = dict(a.signature.members.items())
        for i, _ in enumerate(self.outputs):
            members[f"ready_b{i}"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        a, b = self.copies
        m.submodules.a, m.submodules.b = a, b
        mine = {path: value for path, _, value in self.signature.flatten(self)}
        ready_b = {f"{o}.ready": getattr(self, f"ready_b{i}") for i, o in enumerate(self.outputs)}
        for path, (member, va) in _leaves(a).items():
            vb = _leaves(b)[path][1]
            if member.flow == wiring.In:
                m.d.comb += [va.eq(mine[path]), vb.eq(ready_b.get(_name(path), mine[path]))]
            else:
                m.d.comb += mine[path].eq(va)
        m.d.comb += Assume(~ResetSignal())

        diverged = Signal()
        differ = 0
        for i, o in enumerate(self.outputs):
            differ = differ | (mine[tuple(_path(o)) + ("ready",)] != ready_b[f"{o}.ready"])
        with m.If(differ):
            m.d.sync += diverged.eq(1)
        for o in self.outputs:
            sa, sb = _resolve(a, o), _resolve(b, o)
            with m.If(~diverged):
                m.d.comb += Assert(sa.valid == sb.valid, f"{o}: valid depends on a ready")
            m.d.comb += Cover(~diverged & differ & sa.valid & sb.valid)
        return m


def _path(name):
    return [int(p) if p.isdigit() else p for p in name.split(".")]


def _resolve(obj, name):
    for p in _path(name):
        obj = obj[p] if isinstance(p, int) else getattr(obj, p)
    return obj


class ReadyGated(wiring.Component):
    """A mutant: ``inner`` with output stream ``name``'s ``valid`` gated by its own
    ``ready`` (the classic way to break the rule); the proof must refute it."""

    def __init__(self, inner, name):
        self.inner, self.name = inner, name
        super().__init__(dict(inner.signature.members.items()))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = self.inner
        gated = tuple(_path(self.name)) + ("valid",)
        outer = {path: value for path, _, value in self.signature.flatten(self)}
        for path, (member, value) in _leaves(self.inner).items():
            if member.flow == wiring.In:
                m.d.comb += value.eq(outer[path])
            elif path == gated:
                ready = outer[gated[:-1] + ("ready",)]
                m.d.comb += outer[path].eq(value & ready)
            else:
                m.d.comb += outer[path].eq(value)
        return m


g = CORE.geom
BLOCKS = {
    # name: (factory, output streams, depth)
    "distributor": (lambda: Distributor(CORE), ["lanes.0", "lanes.1"], 8),
    "lane": (lambda: Lane(g), ["results"], 18),
    "indexer": (lambda: Indexer(g), ["rows"], 6),
    "scanner": (lambda: Scanner(CORE), ["jobs", "skips"], 10),
    "speculator": (lambda: Speculator(CORE), ["rows_out"], 6),
    "merge": (lambda: Merge(g, 2), ["o"], 6),
    "bus": (lambda: BusFrontEnd(PROC), ["resp"], 6),
    # 11: both copies' first load follows the check, the Balance state that decides
    # the adaptive regime (docs/astm.md) and the scan's Split state; the cover is
    # reached in step 10
    "scheduler": (lambda: Scheduler(PROC), ["load", "store"], 11),
    "cobs_decoder": (lambda: CobsDecoder(4), ["o"], 6),
    "receiver": (lambda: FrameReceiver(2), ["job"], 12),
    "executor": (lambda: BusExecutor(PROC, 2), ["req", "o"], 8),
    "bus_memory": (lambda: BusMemory(PROC), ["resp"], 6),
}


# The structural check: every component with an output stream.
STRUCTURAL = {name: (factory, outputs) for name, (factory, outputs, _) in BLOCKS.items()}
STRUCTURAL.update({
    "cobs_encoder": (lambda: CobsEncoder(), ["o"]),
    "framer": (lambda: Framer(PROC, timeout=4, max_words=2), ["tx", "req"]),
    "update": (lambda: UpdateUnit(4), ["o"]),
    "uart_rx": (lambda: UartRx(4), ["data"]),
    "linked_memory": (lambda: LinkedMemory("icebreaker", timeout=4, max_words=2), ["tx"]),
})


def port(name, leaf):
    """The RTLIL port name of ``leaf`` of stream ``name`` ("lanes.0" -> lanes__0__ready)."""
    return "__".join(name.split(".") + [leaf])


def pairs(outputs):
    """Every (ready, valid) pair of the output streams: no valid may follow any of them."""
    return [(port(r, "ready"), port(v, "valid")) for r in outputs for v in outputs]


def design(name, mutant=False):
    """The two-copy proof of block ``name``; ``mutant``: its first output's ``valid``
    gated by its ``ready`` (the proof must fail)."""
    factory, outputs, _ = BLOCKS[name]
    wrap = (lambda c: ReadyGated(c, outputs[0])) if mutant else None
    return TwoCopies(factory, outputs, wrap)


PROOFS = {f"ready_{name}": ((lambda name=name: design(name)), spec[2]) for name, spec in BLOCKS.items()}
# the lane's first result leaves 18 cycles after its job: two copies that deep are
# left to GANPU_TEST_SCALE > 1 (the structural check covers the lane in every run)
SCALE_ONLY = {"ready_lane"}
