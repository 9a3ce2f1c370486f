"""The processor behind its link at the UART pins: what a board top instantiates
(``docs/boards.md``)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from ..core.config import CheckedComponent, check_int
from ..processor.program import State
from .uart_rx import UartRx, MIN_DIVISOR, MAX_DIVISOR
from .uart_tx import UartTx

__all__ = ["UartLink", "DEFAULT_RX_FIFO"]

# Bytes the receiver may run ahead of the device. The framer takes a byte per cycle
# except at the end of a frame while an earlier answer is still going out
# (docs/link.md), far faster than a UART delivers them; the FIFO covers that wait
# (a few bytes) with room to spare, in one block RAM on either board.
DEFAULT_RX_FIFO = 64


class UartLink(CheckedComponent):
    """A byte-stream device (``inner``: a component with ``rx: In(stream.Signature(8))``,
    ``tx: Out(stream.Signature(8))`` and ``state: Out(State)``, such as
    :class:`ganpu.link.system.LinkedProcessor`) behind :class:`UartRx`,
    a receive FIFO and :class:`UartTx`.

    Parameters
    ----------
    inner : wiring.Component
        The device; this component elaborates it as a submodule.
    divisor : int
        Clock cycles per bit (clock / baud), 4..2**20.
    rx_fifo : int
        Depth of the receive FIFO in bytes, 0 (none) or 2..65536.

    Ports
    -----
    rx : In(1), idle high     the host's line (asynchronous; synchronised in UartRx)
    tx : Out(1), idle high    the line to the host
    state : Out(State)        the device's state
    rx_byte, tx_byte : Out(1) one-cycle pulses per byte received / sent (activity LEDs)
    frame_errors, overruns : Out(8)   UartRx's counters (an overrun means the FIFO was full)

    Timing: a byte reaches ``inner.rx`` UartRx's latency (about 9.5 bit times after its
    start bit) plus the FIFO's 1-2 cycles after the pin; the link's throughput is
    the UART's, one byte per ``10 * divisor`` cycles each way.
    """

    @classmethod
    def check_parameters(cls, inner, divisor, rx_fifo=DEFAULT_RX_FIFO):
        check_int("divisor", divisor, MIN_DIVISOR, MAX_DIVISOR)
        check_int("rx_fifo", rx_fifo, 0, 1 << 16)
        if rx_fifo == 1:
            raise ValueError(f"rx_fifo must be 0 or 2..65536, not {rx_fifo!r}")
        if not isinstance(inner, wiring.Component) or not {"rx", "tx", "state"} <= set(inner.signature.members):
            raise TypeError(f"inner must be a component with rx, tx and state ports, not {inner!r}")

    def __init__(self, inner, divisor, rx_fifo=DEFAULT_RX_FIFO):
        self.inner, self.divisor, self.rx_fifo = inner, divisor, rx_fifo
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1), "state": Out(State),
            "rx_byte": Out(1), "tx_byte": Out(1), "frame_errors": Out(8), "overruns": Out(8),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        m.submodules.uart_rx = urx = UartRx(self.divisor)
        m.submodules.uart_tx = utx = UartTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx), self.state.eq(inner.state),
                     self.frame_errors.eq(urx.frame_errors), self.overruns.eq(urx.overruns),
                     self.rx_byte.eq(urx.data.valid & urx.data.ready),
                     self.tx_byte.eq(utx.data.valid & utx.data.ready)]
        if self.rx_fifo:
            m.submodules.rx_fifo = q = fifo.SyncFIFOBuffered(width=8, depth=self.rx_fifo)
            wiring.connect(m, urx.data, q.w_stream)
            wiring.connect(m, q.r_stream, inner.rx)
        else:
            wiring.connect(m, urx.data, inner.rx)
        wiring.connect(m, inner.tx, utx.data)
        return m
