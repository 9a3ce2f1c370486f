"""The processor's bus transport on its cocotb signals (``req__*``, ``resp__*``).

Signals are driven and sampled on the falling edge, half a cycle from the processor's
rising edge. :func:`attach` starts the clock, resets the processor and returns a
:class:`ganpu.host.processor_driver.ProcessorDriver` on this transport.
"""

import cocotb
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from ..host.processor_driver import BusTransport, ProcessorDriver
from ..processor.program import bus_request_layout, bus_response_layout

__all__ = ["CocotbBusTransport", "attach", "CLOCK_NS"]

CLOCK_NS = 10


class CocotbBusTransport(BusTransport):
    """Bus requests on cocotb handle ``dut`` (clock ``clk``, reset ``rst``); the response
    stream is always ready."""

    def __init__(self, dut):
        self.dut = dut
        self.cycles = 0

    async def tick(self):
        await FallingEdge(self.dut.clk)
        self.cycles += 1

    async def reset(self, cycles=3):
        d = self.dut
        d.rst.value = 1
        d.req__valid.value = 0
        d.req__payload.value = 0
        d.resp__ready.value = 1
        for _ in range(cycles):
            await self.tick()
        d.rst.value = 0
        await self.tick()

    async def request(self, addr, write, data_=0):
        return (await self.requests([(addr, write, data_)]))[0]

    async def requests(self, reqs):
        """Pipelined: a request offered every cycle the front end is ready, responses
        collected as they come (the response stream is always ready)."""
        d = self.dut
        layout, rlayout = bus_request_layout(), bus_response_layout()
        payloads = [layout.const({"addr": a, "write": w, "data": v}).as_value().value
                    for a, w, v in reqs]
        out, i = [], 0
        while len(out) < len(reqs):
            offered = i < len(reqs)
            if offered:
                d.req__payload.value = payloads[i]
            d.req__valid.value = int(offered)
            ready = int(d.req__ready.value)
            if int(d.resp__valid.value):
                resp = data.Const(rlayout, int(d.resp__payload.value))
                out.append((int(resp.data), int(resp.error)))
            await self.tick()
            if offered and ready:
                i += 1
        d.req__valid.value = 0
        return out

    async def idle(self, cycles):
        for _ in range(cycles):
            await self.tick()


async def attach(dut, cfg):
    """Start the clock, reset, and return ``(driver, transport)``."""
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    t = CocotbBusTransport(dut)
    await t.reset()
    return ProcessorDriver(t, cfg), t
