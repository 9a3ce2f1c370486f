"""Every stream a block of the core sends keeps the handshake.

For each block below, with every input free (memory read data included), its input
streams obeying the handshake (the upstream's own promise) and, for blocks with a
``start``, one task: ``start`` pulses at most once, with the descriptor fields held.
Property on each output stream: once ``valid`` is high and ``ready`` low, the next cycle
``valid`` is still high and the payload unchanged (the producer may not withdraw or
change an offered item). Each proof covers a stall (``valid`` & ~``ready``) followed
by the transfer of the held item, so the property is not vacuous.

The link's COBS decoder, frame receiver and bus executor and the iCEBreaker's bus
memory are proved the same way (the executor's payload read port as a block RAM's:
its data changes only after an enabled read).
:class:`~ganpu.core.merge.Merge` is absent on purpose: its output ignores ``ready``
(the epilogue always takes), so the rule has nothing to constrain there.
"""

from amaranth.hdl import Assert, Assume, Cover, Signal, Value

from ganpu.core.config import CoreConfig, Geometry
from ganpu.core.distributor import Distributor
from ganpu.core.indexer import Indexer
from ganpu.core.lane import Lane
from ganpu.core.scanner import Scanner
from ganpu.core.speculator import Speculator

from ganpu.boards.bus_memory import BusMemory
from ganpu.link.cobs_decoder import CobsDecoder
from ganpu.link.executor import BusExecutor
from ganpu.link.receiver import FrameReceiver
from ganpu.processor.config import ProcessorConfig

from sby import Harness

CONFIG = CoreConfig(lanes=2, geom=Geometry(a_bits=2, b_bits=3, out_bits=2, bias_bits=2, mask_bits=2),
                    eors_lanes=2)


def _resolve(dut, path):
    obj = dut
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def _held(m, s):
    """(stalled last cycle, the payload then) of stream ``s``."""
    stalled = Signal(name="stalled")
    payload = Value.cast(s.payload)
    prev = Signal.like(payload, name="prev_payload")
    m.d.sync += [stalled.eq(s.valid & ~s.ready), prev.eq(payload)]
    return stalled, payload, prev


def stream_properties(outputs, inputs=(), held=(), read_ports=()):
    """Properties for the blocks: ``outputs``/``inputs`` are stream paths on the block,
    ``held`` the inputs held stable for the one task (``start`` at most once),
    ``read_ports`` memory read ports the block drives (their data changes only the
    cycle after an enabled read, as a block RAM's)."""
    def properties(m, dut, top=None):
        for name in read_ports:
            port = _resolve(dut, name)
            was_en = Signal(name=f"was_en_{name}")
            last = Signal.like(port.data, name=f"last_{name}")
            m.d.sync += [was_en.eq(port.en), last.eq(port.data)]
            m.d.comb += Assume(was_en | (port.data == last))
        first = Signal(init=1)
        m.d.sync += first.eq(0)
        if hasattr(dut, "start"):
            started = Signal()
            with m.If(dut.start):
                m.d.sync += started.eq(1)
            m.d.comb += Assume(~(started & dut.start))
        for name in held:
            v = Value.cast(_resolve(dut, name))
            prev = Signal.like(v, name=f"prev_{name}")
            m.d.sync += prev.eq(v)
            m.d.comb += Assume(first | (v == prev))
        for name in inputs:
            s = _resolve(dut, name)
            stalled, payload, prev = _held(m, s)
            m.d.comb += Assume(~stalled | (s.valid & (payload == prev)))
        for name in outputs:
            s = _resolve(dut, name)
            stalled, payload, prev = _held(m, s)
            with m.If(stalled):
                m.d.comb += Assert(s.valid, f"{name}: valid withdrawn before ready")
                m.d.comb += Assert(payload == prev, f"{name}: payload changed before ready")
            m.d.comb += Cover(stalled & s.valid & s.ready)
    return properties


PROC = ProcessorConfig(cores=2, core=CONFIG, gbuf_bits=8, program_bits=1, deps=1, window=1)
g = CONFIG.geom
BLOCKS = {
    # name: (factory, outputs, inputs, held, depth)
    "distributor": (lambda: Distributor(CONFIG), ["lanes.0", "lanes.1"], ["jobs"], [], 9),
    "lane": (lambda: Lane(g), ["results"], ["jobs"], [], 18),
    "indexer": (lambda: Indexer(g), ["rows"], [], ["desc"], 10),
    "scanner": (lambda: Scanner(CONFIG), ["jobs", "skips"], ["rows"], ["desc"], 10),
    "speculator": (lambda: Speculator(CONFIG), ["rows_out"], ["rows_in"],
                   ["enable", "n", "k", "bias", "bias_word"], 10),
    # the link's blocks and the iCEBreaker's bus memory (the bus front end's and the
    # framer's bus streams are in proof_processor and proof_link)
    "cobs_decoder": (lambda: CobsDecoder(4), ["o"], ["i"], [], 8),
    "receiver": (lambda: FrameReceiver(2), ["job"], ["i"], [], 12),
    "executor": (lambda: BusExecutor(PROC, 2), ["req", "o"], ["job", "resp"], [], 10, ["rd"]),
    "bus_memory": (lambda: BusMemory(PROC), ["resp"], ["req"], [], 6),
}


def _design(name):
    factory, outputs, inputs, held, _, *read_ports = BLOCKS[name]
    return lambda: Harness(factory(), stream_properties(outputs, inputs, held, *read_ports))


PROOFS = {f"stream_{name}": (_design(name), spec[4]) for name, spec in BLOCKS.items()}
