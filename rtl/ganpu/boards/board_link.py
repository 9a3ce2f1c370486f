"""Everything a board top puts behind its pins: the device at the UART pins and the
status LEDs (``docs/boards.md``)."""

from amaranth.hdl import Module, Signal
from amaranth.lib.wiring import In, Out

from ..core.config import CheckedComponent, check_int
from ..link.uart import baud_divisor
from ..link.uart_link import UartLink
from .status import StatusLeds, LED_NAMES

__all__ = ["BoardLink"]


class BoardLink(CheckedComponent):
    """``inner`` (a byte-stream device such as :class:`ganpu.link.system.LinkedProcessor`)
    behind :class:`~ganpu.link.uart_link.UartLink` at ``baud`` for a ``clock_hz`` clock,
    with :class:`~ganpu.boards.status.StatusLeds` (activity lit 20 ms, heartbeat 1 Hz).

    Ports
    -----
    rx : In(1), idle high; tx : Out(1), idle high    the UART pins
    leds : Out(8)                                     :data:`~ganpu.boards.status.LED_NAMES`
    """

    @classmethod
    def check_parameters(cls, inner, clock_hz, baud):
        check_int("clock_hz", clock_hz, 1)
        baud_divisor(clock_hz, baud)
        UartLink.check_parameters(inner, baud_divisor(clock_hz, baud))

    def __init__(self, inner, clock_hz, baud):
        self.inner, self.clock_hz, self.baud = inner, clock_hz, baud
        self.divisor = baud_divisor(clock_hz, baud)
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "leds": Out(len(LED_NAMES))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = UartLink(self.inner, self.divisor)
        m.submodules.status = st = StatusLeds(stretch=max(1, self.clock_hz // 50),
                                              heartbeat=max(1, self.clock_hz // 2))
        errors = Signal(16)
        m.d.sync += errors.eq(link.frame_errors | link.overruns << 8)
        m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx), st.state.eq(link.state),
                     st.rx_byte.eq(link.rx_byte), st.tx_byte.eq(link.tx_byte),
                     # a counter that moved is a new error
                     st.link_error.eq(errors != (link.frame_errors | link.overruns << 8)),
                     self.leds.eq(st.leds)]
        return m
