"""The link's framer: request frames from the host's bytes to bus requests, and each
frame's answer back to bytes (``docs/link.md``)."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..core.config import check_int
from ..processor.config import ProcessorComponent, config
from ..processor.program import bus_request_layout, bus_response_layout
from .cobs_decoder import CobsDecoder
from .cobs_encoder import CobsEncoder
from .executor import BusExecutor
from .protocol import MAX_WORDS
from .receiver import FrameReceiver

__all__ = ["Framer", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 1 << 22   # cycles: 84 ms at 50 MHz, many byte times at any baud


class Framer(ProcessorComponent):
    """Link framer of the processor for ``cfg`` (``docs/link.md``).

    ``rx`` bytes -> :class:`CobsDecoder` -> :class:`FrameReceiver` (header, CRC,
    length, payload into one of two banks of a ``2 x max_words`` word memory) ->
    :class:`BusExecutor` (bus requests on ``req``, responses on ``resp``) ->
    :class:`CobsEncoder` -> ``tx`` bytes.

    Safety: a WRITE frame's words reach the bus only after its whole body was received
    and its CRC, length and command were checked, so a frame with a wrong CRC or
    length writes nothing. A frame is dropped without an answer when it has fewer than
    9 bytes or when no byte arrives for ``timeout`` cycles inside it.

    Throughput: ``rx`` takes a byte every cycle, except at the end of a frame while
    the job before the previous one is still being answered (never with at most two
    frames outstanding, the host's rule). A WRITE is executed at one word per cycle
    after its last byte; a READ's answer leaves at one byte per cycle. Latency from a
    request's delimiter to its first answer byte: about 8 cycles plus the bus latency
    plus the answer's first COBS block (up to 254 bytes).

    Parameters
    ----------
    cfg : ProcessorConfig or str
    timeout : int        idle cycles inside a frame before it is dropped, 2..2**32
    max_words : int      largest burst accepted, a power of two 1..256 (PING reports it)

    Ports
    -----
    rx : In(stream.Signature(8))     bytes from the host
    tx : Out(stream.Signature(8))    bytes to the host
    req : Out(stream.Signature(bus_request_layout()))
    resp : In(stream.Signature(bus_response_layout()))
    """

    @classmethod
    def check_parameters(cls, cfg="small", timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        if isinstance(cfg, str):
            cfg = config(cfg)
        super().check_parameters(cfg)
        check_int("timeout", timeout, 2, 1 << 32)
        check_int("max_words", max_words, 1, MAX_WORDS, power_of_two=True)

    def __init__(self, cfg="small", timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        self.cfg = config(cfg) if isinstance(cfg, str) else cfg
        self.timeout, self.max_words = timeout, max_words
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "req": Out(stream.Signature(bus_request_layout())),
                          "resp": In(stream.Signature(bus_response_layout()))})

    @staticmethod
    def model(cfg, rx_bytes, bus, max_words=MAX_WORDS):
        """Transaction-level model: the bytes sent on ``tx`` for ``rx_bytes`` (bytes, or
        ``None`` for an idle gap of ``timeout`` cycles), with ``bus(addr, write, data) ->
        (data, error)`` the memory map."""
        from .cobs_decoder import Mark
        answers = []
        body, broken = bytearray(), False
        for mark, b in CobsDecoder.model(rx_bytes):
            if mark == Mark.BYTE:
                body.append(b)
                continue
            if mark != Mark.TIMEOUT:
                verdict = FrameReceiver.model(bytes(body), max_words, broken=mark == Mark.BROKEN)
                if verdict is not None:
                    status, hdr, words = verdict
                    answers.append(BusExecutor.model(cfg, status, hdr, words, bus, max_words))
            body = bytearray()
        return CobsEncoder.model(answers)

    def elaborate(self, platform):
        m = Module()
        m.submodules.decoder = dec = CobsDecoder(self.timeout)
        m.submodules.receiver = rcv = FrameReceiver(self.max_words)
        m.submodules.executor = exe = BusExecutor(self.cfg, self.max_words)
        m.submodules.encoder = enc = CobsEncoder()
        m.submodules.payload = mem = Memory(shape=16, depth=2 * self.max_words, init=[])
        wiring.connect(m, wiring.flipped(self.rx), dec.i)
        wiring.connect(m, dec.o, rcv.i)
        wiring.connect(m, rcv.wr, mem.write_port())
        wiring.connect(m, rcv.job, exe.job)
        wiring.connect(m, exe.rd, mem.read_port())
        wiring.connect(m, exe.req, wiring.flipped(self.req))
        wiring.connect(m, wiring.flipped(self.resp), exe.resp)
        wiring.connect(m, exe.o, enc.i)
        wiring.connect(m, enc.o, wiring.flipped(self.tx))
        return m
