"""The processor behind its link framer: what a board's UART (or ``ganpu sim``'s socket
bridge) talks to (``docs/link.md``)."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..processor.config import ProcessorComponent, config
from ..processor.processor import Processor
from ..processor.program import State
from .framer import Framer, DEFAULT_TIMEOUT
from .protocol import MAX_WORDS

__all__ = ["LinkedProcessor"]


class LinkedProcessor(ProcessorComponent):
    """:class:`~ganpu.processor.processor.Processor` for ``cfg`` with a
    :class:`~ganpu.link.framer.Framer` on its host bus.

    Parameters
    ----------
    cfg : ProcessorConfig or str
    timeout, max_words : the framer's (see :class:`Framer`)

    Ports
    -----
    rx : In(stream.Signature(8))     bytes from the host (a UART receiver, a socket)
    tx : Out(stream.Signature(8))    bytes to the host
    state : Out(State)               the processor's state (LEDs)
    """

    @classmethod
    def check_parameters(cls, cfg="small", timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        Framer.check_parameters(cfg, timeout, max_words)

    def __init__(self, cfg="small", timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        self.cfg = config(cfg) if isinstance(cfg, str) else cfg
        self.timeout, self.max_words = timeout, max_words
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "state": Out(State)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.framer = framer = Framer(self.cfg, self.timeout, self.max_words)
        m.submodules.processor = proc = Processor(self.cfg)
        wiring.connect(m, framer.req, proc.req)
        wiring.connect(m, proc.resp, framer.resp)
        wiring.connect(m, wiring.flipped(self.rx), framer.rx)
        wiring.connect(m, framer.tx, wiring.flipped(self.tx))
        m.d.comb += self.state.eq(proc.state)
        return m
