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

__all__ = ["LinkedDevice", "LinkedProcessor"]


class LinkedDevice(ProcessorComponent):
    """A :class:`~ganpu.link.framer.Framer` for ``cfg`` on the host bus of the device
    :meth:`device` builds (anything with the processor's ``req``/``resp``/``state``
    ports). Ports: ``rx : In(stream.Signature(8))``, ``tx : Out(stream.Signature(8))``,
    ``state : Out(State)``."""

    @classmethod
    def check_parameters(cls, cfg, timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        Framer.check_parameters(cfg, timeout, max_words)

    def __init__(self, cfg, timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        self.cfg = config(cfg) if isinstance(cfg, str) else cfg
        self.timeout, self.max_words = timeout, max_words
        super().__init__({"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                          "state": Out(State)})

    def device(self):
        """``(submodule name, component)`` behind the framer."""
        raise NotImplementedError

    def elaborate(self, platform):
        m = Module()
        m.submodules.framer = framer = Framer(self.cfg, self.timeout, self.max_words)
        name, dev = self.device()
        m.submodules[name] = dev
        wiring.connect(m, framer.req, dev.req)
        wiring.connect(m, dev.resp, framer.resp)
        wiring.connect(m, wiring.flipped(self.rx), framer.rx)
        wiring.connect(m, framer.tx, wiring.flipped(self.tx))
        m.d.comb += self.state.eq(dev.state)
        return m


class LinkedProcessor(LinkedDevice):
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
        super().__init__(cfg, timeout, max_words)

    def device(self):
        return "processor", Processor(self.cfg)
