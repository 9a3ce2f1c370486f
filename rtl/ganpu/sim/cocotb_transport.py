"""The host :class:`~ganpu.host.transport.Transport` on a core's ports in a cocotb bench.

It issues the same sequence a host link will: writes one element per clock on the
host port, reads with the port's read latency, starts a descriptor on the task port
and waits for ``busy`` to fall. Signals are driven and sampled on the falling edge,
half a cycle away from the core's rising edge. :func:`attach` starts the clock,
resets the core and returns a :class:`ganpu.host.driver.CoreDriver` on this transport.

The Verilog names of the core's ports are looked up in :data:`PORTS` only (the host
and task port signatures of :mod:`ganpu.core.ports` flatten to ``host__buf``,
``task__desc``, ...).
"""

import json
import os

import numpy as np
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge, with_timeout

from ..core.config import Buf, CoreConfig, DEFAULT_CORE, Geometry
from ..core.descriptor import Error
from ..core.ports import HostPort, TaskPort
from ..model.eors import EorsParams
from ..host.driver import CoreDriver
from ..host.transport import Transport

__all__ = ["CocotbTransport", "attach", "config_from_env", "PORTS", "CLOCK_NS"]

# member -> Verilog name: the core takes the two port signatures as members "host"
# and "task", which Amaranth flattens with "__"
PORTS = {name: f"host__{name}" for name in HostPort().members} | \
        {name: f"task__{name}" for name in TaskPort().members}

CLOCK_NS = 10


class CocotbTransport(Transport):
    """Transport over the cocotb handle ``dut`` of a core (clock ``clk``, reset ``rst``).

    Parameters
    ----------
    dut : cocotb handle
    read_latency : int
        Cycles from a host-port address to its data (``HostPort.read_latency``).
    """

    def __init__(self, dut, read_latency):
        self.dut = dut
        self.read_latency = read_latency
        self.p = {role: getattr(dut, name) for role, name in PORTS.items()}

    async def _tick(self):
        await FallingEdge(self.dut.clk)

    async def reset(self, cycles=3):
        """Hold reset for ``cycles`` with every input of the core idle."""
        self.dut.rst.value = 1
        for role in ("we", "start", "buf", "addr", "wdata", "desc"):
            self.p[role].value = 0
        # a two-buffer-set core's task port also takes the set (ganpu.core.ports.TaskPort)
        if hasattr(self.dut, "task__set"):
            self.dut.task__set.value = 0
        for _ in range(cycles):
            await self._tick()
        self.dut.rst.value = 0

    async def write(self, buf, base, values):
        p = self.p
        p["buf"].value = Buf(buf).value
        p["we"].value = 1
        for i, v in enumerate(np.asarray(values).ravel()):
            p["addr"].value = base + i
            p["wdata"].value = int(v)
            await self._tick()
        p["we"].value = 0

    async def write_raw(self, code, addr, value):
        """One write with any buffer code and address (the host port's error paths)."""
        p = self.p
        p["buf"].value = code
        p["addr"].value = addr
        p["wdata"].value = value
        p["we"].value = 1
        await self._tick()
        p["we"].value = 0

    async def read(self, buf, base, count):
        p = self.p
        lat = self.read_latency
        p["buf"].value = Buf(buf).value
        p["we"].value = 0
        out = []
        for i in range(count + lat):
            if i < count:
                p["addr"].value = base + i
            await self._tick()
            if i >= lat - 1 and len(out) < count:
                out.append(p["rdata"].value.to_unsigned())
        return np.array(out, dtype=np.uint16)

    async def start(self, desc_bits):
        """Present ``desc_bits`` with a one-cycle ``start``; does not wait."""
        self.p["desc"].value = desc_bits
        self.p["start"].value = 1
        await self._tick()
        self.p["start"].value = 0

    async def wait_idle(self, timeout):
        """Wait (at most ``timeout`` cycles) for ``busy`` to fall, then one more edge."""
        if self.p["busy"].value:
            # a hung core fails the test instead of hanging it
            await with_timeout(FallingEdge(self.p["busy"]), timeout * CLOCK_NS, "ns")
        await self._tick()

    async def run(self, desc_bits, timeout):
        await self.start(desc_bits)
        await self.wait_idle(timeout)
        return Error(self.p["error"].value.to_unsigned()), self.p["cycles"].value.to_unsigned()

    @property
    def host_error(self):
        """The host port's sticky error flag."""
        return int(self.p["err"].value)

    @property
    def eors_cycles(self):
        """Cycles the speculator spent issuing predictions in the last task."""
        return self.p["eors_cycles"].value.to_unsigned()


async def attach(dut, config=DEFAULT_CORE, read_latency=None):
    """Start ``dut``'s clock, reset it and return a :class:`CoreDriver` over a
    :class:`CocotbTransport` (its ``transport`` attribute)."""
    if read_latency is None:
        read_latency = HostPort.read_latency
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    transport = CocotbTransport(dut, read_latency)
    await transport.reset()
    return CoreDriver(transport, config)


def config_env(config):
    """Environment variables that make :func:`config_from_env` return ``config`` inside
    a bench (every field of the :class:`CoreConfig`, its geometry and EORS parameters,
    so the bench models exactly the core it simulates)."""
    from dataclasses import asdict
    return {"GANPU_CORE": json.dumps(asdict(config), sort_keys=True)}


def config_from_env():
    """The :class:`CoreConfig` a bench models: the one :func:`config_env` passed in
    ``GANPU_CORE``, else the default with ``GANPU_EORS_LANES`` EORS lanes when a
    benchmark builds another size."""
    text = os.environ.get("GANPU_CORE")
    if text:
        fields = json.loads(text)
        return CoreConfig(**{**fields, "geom": Geometry(**fields["geom"]),
                             "eors": EorsParams(**fields["eors"])})
    lanes = os.environ.get("GANPU_EORS_LANES")
    return CoreConfig(eors_lanes=int(lanes)) if lanes else DEFAULT_CORE
