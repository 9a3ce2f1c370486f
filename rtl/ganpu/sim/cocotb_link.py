"""The link's byte channel in a cocotb bench: the host's bytes go to the ``rx`` stream
of a :class:`~ganpu.link.system.LinkedProcessor` (or a bare
:class:`~ganpu.link.framer.Framer`, or a :class:`~ganpu.link.native_top.NativeTop`)
and its ``tx`` bytes come back (``docs/link.md``).

Signals are driven and sampled on the falling edge, half a cycle from the design's
rising edge. A design with a ``link_clk`` (``NativeTop`` with ``ratio`` > 1) has its
link on that clock: the channel follows it, and ``clk`` runs ``ratio`` times slower
(:func:`start_clock`); cycles are then link clock cycles. Time is simulated time: a read's timeout counts simulated seconds, so a
host timeout in a bench is a number of clock cycles (``cycles * CLOCK_NS * 1e-9``).
:func:`attach` starts the clock, resets the design and returns a
:class:`~ganpu.host.processor_driver.ProcessorDriver` over a
:class:`~ganpu.host.link.LinkBusTransport` on this channel.
"""

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import Event, FallingEdge, First, Timer
from cocotb.utils import get_sim_time

from ..host.link import ByteChannel, LinkBusTransport
from ..host.processor_driver import ProcessorDriver

__all__ = ["CocotbChannel", "CocotbByteChannel", "attach", "start_clock", "CLOCK_NS"]

CLOCK_NS = 10


class CocotbChannel(ByteChannel):
    """What every cocotb byte channel shares: the host's inbox, simulated time, reset and
    the clock-driven loop. A subclass drives its wire in :meth:`_run` (started after
    reset), sets its inputs' idle levels in :meth:`_idle_inputs` and says in
    :meth:`_pending` whether written bytes are still on their way into the design."""

    def __init__(self, dut):
        self.dut = dut
        # the clock the link's byte streams run on
        self.clk = dut.link_clk if hasattr(dut, "link_clk") else dut.clk
        self.inbox = bytearray()
        self.arrived = Event()
        self.cycle = 0
        self.sent = 0         # bytes the design took
        self.received = 0     # bytes the design gave
        self._task = None

    def _idle_inputs(self):
        raise NotImplementedError

    def _pending(self):
        raise NotImplementedError

    async def _run(self):
        raise NotImplementedError

    async def reset(self, cycles=3):
        d = self.dut
        resets = [d.rst, *([d.link_rst] if hasattr(d, "link_rst") else [])]
        for r in resets:
            r.value = 1
        self._idle_inputs()
        for _ in range(cycles):
            await FallingEdge(d.clk)
        for r in resets:
            r.value = 0
        await FallingEdge(self.clk)
        self._task = cocotb.start_soon(self._run())

    def now(self):
        return get_sim_time(unit="ns") * 1e-9

    async def read(self, n, timeout):
        if not self.inbox:
            self.arrived.clear()
            await First(self.arrived.wait(), Timer(max(1, round(timeout * 1e9)), unit="ns"))
        out = bytes(self.inbox[:n])
        del self.inbox[:n]
        return out

    async def idle(self, cycles):
        for _ in range(cycles):
            await FallingEdge(self.clk)

    async def drained(self):
        """Wait until everything written has been driven into the design."""
        while self._pending():
            await FallingEdge(self.clk)


def start_clock(dut, ratio=1):
    """Start the bench clock of period :data:`CLOCK_NS` on ``dut.clk``; with ``ratio``
    > 1, on ``dut.link_clk``, and one ``ratio`` times slower on ``dut.clk`` (both rise
    at time 0, so every core edge is a link edge, as in ``ganpu sim``)."""
    if ratio > 1:
        cocotb.start_soon(Clock(dut.link_clk, CLOCK_NS, unit="ns").start())
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS * ratio, unit="ns").start())


class CocotbByteChannel(CocotbChannel):
    """Bytes on cocotb handle ``dut`` (``clk``, ``rst``, ``rx__*``, ``tx__*``).

    Parameters
    ----------
    interval : int
        Cycles per byte in each direction (1: the byte stream's full rate; a UART at
        ``baud`` behind a ``f`` Hz clock is ``10 * f / baud``).
    ready : callable or None
        ``ready(cycle) -> bool``: when the host takes a ``tx`` byte (back-pressure
        patterns); None takes one whenever ``interval`` allows.
    """

    def __init__(self, dut, interval=1, ready=None):
        super().__init__(dut)
        self.interval = interval
        self.ready = ready
        self.outbox = bytearray()
        self.tx_cycles = []   # the cycle of each tx byte (gaps show where a link waits)
        self.faults = []      # callables applied to the next writes (a bench's line faults)

    def _idle_inputs(self):
        d = self.dut
        d.rx__valid.value = 0
        d.rx__payload.value = 0
        d.tx__ready.value = 0

    def _pending(self):
        return bool(self.outbox)

    async def _run(self):
        d = self.dut
        rx_wait = tx_wait = 0
        while True:
            offered = bool(self.outbox) and rx_wait == 0
            if offered:
                d.rx__payload.value = self.outbox[0]
            d.rx__valid.value = int(offered)
            take = tx_wait == 0 and (self.ready is None or self.ready(self.cycle))
            d.tx__ready.value = int(take)
            rx_ready = int(d.rx__ready.value)
            tx_valid = int(d.tx__valid.value)
            if take and tx_valid:
                self.inbox.append(int(d.tx__payload.value))
                self.received += 1
                self.tx_cycles.append(self.cycle)
                tx_wait = self.interval
                self.arrived.set()
            if offered and rx_ready:
                del self.outbox[0]
                self.sent += 1
                rx_wait = self.interval
            await FallingEdge(self.clk)
            self.cycle += 1
            rx_wait = max(0, rx_wait - 1)
            tx_wait = max(0, tx_wait - 1)

    async def write(self, data):
        if self.faults:
            data = self.faults.pop(0)(bytes(data))
        self.outbox += bytes(data)


async def attach(dut, cfg, *, interval=1, timeout_cycles=20000, ratio=1, **transport_kw):
    """Start the clock (two with ``ratio`` > 1, see :func:`start_clock`), reset, and
    return ``(driver, transport, channel)``; ``timeout_cycles`` counts link cycles."""
    start_clock(dut, ratio)
    ch = CocotbByteChannel(dut, interval)
    await ch.reset()
    t = LinkBusTransport(ch, timeout=timeout_cycles * CLOCK_NS * 1e-9, **transport_kw)
    return ProcessorDriver(t, cfg), t, ch
