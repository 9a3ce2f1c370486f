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

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, FallingEdge, First, Timer
from cocotb.utils import get_sim_time

from ..host.link import ByteChannel, LinkBusTransport
from ..host.processor_driver import ProcessorDriver
from ..link.uart_tx import UartTx

__all__ = ["CocotbUartChannel", "attach", "CLOCK_NS"]

CLOCK_NS = 10


class CocotbUartChannel(ByteChannel):
    """Bytes as UART frames on cocotb handle ``dut`` (``clk``, ``rst``, ``rx``, ``tx``)
    at ``divisor`` clock cycles per bit; ``gap`` idle bits between two host frames."""

    def __init__(self, dut, divisor, gap=0):
        self.dut = dut
        self.divisor = divisor
        self.gap = gap
        self.line = deque()       # rx samples still to drive, one per cycle
        self.inbox = bytearray()
        self.arrived = Event()
        self.cycle = 0
        self.sent = 0
        self.received = 0
        self.frame_errors = 0
        self._task = None

    async def reset(self, cycles=3):
        d = self.dut
        d.rst.value = 1
        d.rx.value = 1
        for _ in range(cycles):
            await FallingEdge(d.clk)
        d.rst.value = 0
        await FallingEdge(d.clk)
        self._task = cocotb.start_soon(self._run())

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

    def now(self):
        return get_sim_time(unit="ns") * 1e-9

    async def write(self, data):
        self.line.extend(UartTx.model(self.divisor, bytes(data)).tolist())
        self.line.extend([1] * (self.gap * self.divisor))
        self.sent += len(data)

    async def read(self, n, timeout):
        if not self.inbox:
            self.arrived.clear()
            await First(self.arrived.wait(), Timer(max(1, round(timeout * 1e9)), unit="ns"))
        out = bytes(self.inbox[:n])
        del self.inbox[:n]
        return out

    async def idle(self, cycles):
        for _ in range(cycles):
            await FallingEdge(self.dut.clk)

    async def drained(self):
        """Wait until every bit written has been driven."""
        while self.line:
            await FallingEdge(self.dut.clk)


async def attach(dut, cfg, divisor, *, timeout_bytes=200, **transport_kw):
    """Start the clock, reset, and return ``(driver, transport, channel)``: a
    :class:`ProcessorDriver` over a :class:`LinkBusTransport` on the pins. The answer
    timeout is ``timeout_bytes`` byte times of simulated time (plus the transport's
    per-byte allowance)."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    ch = CocotbUartChannel(dut, divisor)
    await ch.reset()
    byte_time = 10 * divisor * CLOCK_NS * 1e-9
    t = LinkBusTransport(ch, timeout=timeout_bytes * byte_time, byte_time=byte_time, **transport_kw)
    return ProcessorDriver(t, cfg), t, ch
