"""The link's byte channel at the UART pins, in a cocotb bench (``docs/boards.md``).

:class:`CocotbUartChannel` is :class:`ganpu.host.link.ByteChannel` on a design's
``rx``/``tx`` pins (a :class:`ganpu.link.uart_link.UartLinkedProcessor`, say): the
host's bytes are bit-banged onto ``rx`` as 8N1 frames of ``divisor`` cycles per bit
(:meth:`ganpu.link.uart_tx.UartTx.model`'s line) and ``tx`` is decoded by sampling each
bit at its middle, so the real host driver talks to the design through its pins.
Signals are driven and sampled on the falling edge. A frame on ``tx`` with a low stop
bit is counted in ``frame_errors`` and dropped, like the board's host UART would.
"""

from collections import deque

from cocotb.triggers import FallingEdge

from ..host.link import LinkBusTransport
from ..host.processor_driver import ProcessorDriver
from ..link.uart_tx import UartTx
from .cocotb_link import CLOCK_NS, CocotbChannel, start_clock

__all__ = ["CocotbUartChannel", "attach", "CLOCK_NS"]

class CocotbUartChannel(CocotbChannel):
    """Bytes as UART frames on cocotb handle ``dut`` (``clk``, ``rst``, ``rx``, ``tx``)
    at ``divisor`` clock cycles per bit; ``gap`` idle bits between two host frames."""

    def __init__(self, dut, divisor, gap=0):
        super().__init__(dut)
        self.divisor = divisor
        self.gap = gap
        self.line = deque()       # rx samples still to drive, one per cycle
        self.frame_errors = 0

    def _idle_inputs(self):
        self.dut.rx.value = 1

    def _pending(self):
        return bool(self.line)

    async def _run(self):
        d = self.dut
        div, half = self.divisor, (self.divisor - 1) // 2
        state, count, bits = "idle", 0, []
        while True:
            d.rx.value = int(self.line.popleft()) if self.line else 1
            t = int(d.tx.value)
            # the host's receiver: start edge, then the middle of each of ten bits
            if state == "idle":
                if t == 0:
                    state, count, bits = "frame", half, []
            elif count:
                count -= 1
            else:
                bits.append(t)
                count = div - 1
                if len(bits) == 1 and t:
                    state = "idle"            # a glitch
                elif len(bits) == 10:
                    if t:
                        self.inbox.append(sum(b << i for i, b in enumerate(bits[1:9])))
                        self.received += 1
                        self.arrived.set()
                    else:
                        self.frame_errors += 1
                    state = "idle"
            await FallingEdge(d.clk)
            self.cycle += 1

    async def write(self, data):
        self.line.extend(UartTx.model(self.divisor, bytes(data)).tolist())
        self.line.extend([1] * (self.gap * self.divisor))
        self.sent += len(data)


async def attach(dut, cfg, divisor, *, timeout_bytes=200, **transport_kw):
    """Start the clock, reset, and return ``(driver, transport, channel)``: a
    :class:`ProcessorDriver` over a :class:`LinkBusTransport` on the pins. The answer
    timeout is ``timeout_bytes`` byte times of simulated time (plus the transport's
    per-byte allowance)."""
    start_clock(dut)
    ch = CocotbUartChannel(dut, divisor)
    await ch.reset()
    byte_time = 10 * divisor * CLOCK_NS * 1e-9
    t = LinkBusTransport(ch, timeout=timeout_bytes * byte_time, byte_time=byte_time, **transport_kw)
    return ProcessorDriver(t, cfg), t, ch
