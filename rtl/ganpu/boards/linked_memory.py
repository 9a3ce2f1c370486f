"""The link framer on a GBUF alone: the iCEBreaker's device (``docs/boards.md``)."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..link.framer import Framer, DEFAULT_TIMEOUT
from ..link.protocol import MAX_WORDS
from ..processor.config import ProcessorComponent, config
from ..processor.program import State
from .bus_memory import BusMemory

__all__ = ["LinkedMemory"]


class LinkedMemory(ProcessorComponent):
    """:class:`~ganpu.link.framer.Framer` for ``cfg`` on a
    :class:`~ganpu.boards.bus_memory.BusMemory`: the same ports and protocol as
    :class:`ganpu.link.system.LinkedProcessor`, with the GBUF as the whole memory map
    (PING reports ``cfg``'s sizes; program and CSR accesses other than STATE are
    refused with BUS_ERROR).

    Ports
    -----
    rx : In(stream.Signature(8)); tx : Out(stream.Signature(8)); state : Out(State)
    """

    @classmethod
    def check_parameters(cls, cfg="icebreaker", timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        Framer.check_parameters(cfg, timeout, max_words)

    def __init__(self, cfg="icebreaker", timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        self.cfg = config(cfg) if isinstance(cfg, str) else cfg
        self.timeout, self.max_words = timeout, max_words
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "state": Out(State)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.framer = framer = Framer(self.cfg, self.timeout, self.max_words)
        m.submodules.memory = mem = BusMemory(self.cfg)
        wiring.connect(m, framer.req, mem.req)
        wiring.connect(m, mem.resp, framer.resp)
        wiring.connect(m, wiring.flipped(self.rx), framer.rx)
        wiring.connect(m, framer.tx, wiring.flipped(self.tx))
        m.d.comb += self.state.eq(mem.state)
        return m
