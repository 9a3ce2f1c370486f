"""The link framer on a GBUF alone: the iCEBreaker's device (``docs/boards.md``)."""

from ..link.framer import Framer, DEFAULT_TIMEOUT
from ..link.protocol import MAX_WORDS
from ..link.system import LinkedDevice
from .bus_memory import BusMemory

__all__ = ["LinkedMemory"]


class LinkedMemory(LinkedDevice):
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
        super().__init__(cfg, timeout, max_words)

    def device(self):
        return "memory", BusMemory(self.cfg)
