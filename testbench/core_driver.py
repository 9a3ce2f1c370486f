"""Host-side driver of the core's host and task ports, for cocotb benches.

It is the same sequence a host link will issue: load buffers, start a descriptor,
wait for ``busy`` to fall, read the results back.
"""

import numpy as np
from cocotb.triggers import FallingEdge, with_timeout

from ganpu.core import Buf, Core, Error
from ganpu.host.lower import pack_desc

BUFS = {"a": Buf.A, "b": Buf.B, "bias": Buf.BIAS, "mask_in": Buf.MASK_IN,
        "out": Buf.OUT, "mask_out": Buf.MASK_OUT, "bw": Buf.BW}


class CoreDriver:
    def __init__(self, dut, geom):
        self.dut = dut
        self.geom = geom

    async def reset(self):
        dut = self.dut
        dut.rst.value = 1
        dut.h_we.value = 0
        dut.start.value = 0
        dut.h_buf.value = 0
        dut.h_addr.value = 0
        dut.h_wdata.value = 0
        dut.desc.value = 0
        for _ in range(3):
            await FallingEdge(dut.clk)
        dut.rst.value = 0

    async def write(self, name, base, values):
        dut = self.dut
        dut.h_buf.value = BUFS[name].value
        dut.h_we.value = 1
        for i, v in enumerate(np.asarray(values).ravel()):
            dut.h_addr.value = base + i
            dut.h_wdata.value = int(v)
            await FallingEdge(dut.clk)
        dut.h_we.value = 0

    async def write_raw(self, buf_value, addr, value):
        """One write with an arbitrary buffer code and address (for error tests)."""
        dut = self.dut
        dut.h_buf.value = buf_value
        dut.h_addr.value = addr
        dut.h_wdata.value = value
        dut.h_we.value = 1
        await FallingEdge(self.dut.clk)
        dut.h_we.value = 0

    async def read(self, name, base, count):
        dut = self.dut
        lat = Core.read_latency
        dut.h_buf.value = BUFS[name].value
        dut.h_we.value = 0
        out = []
        for i in range(count + lat):
            if i < count:
                dut.h_addr.value = base + i
            await FallingEdge(dut.clk)
            if i >= lat - 1 and len(out) < count:
                out.append(dut.h_rdata.value.to_unsigned())
        dtype = np.uint8 if name.startswith("mask") else np.uint16
        return np.array(out, dtype=np.uint64).astype(dtype if dtype != np.uint8 else np.uint16)

    async def run(self, desc, timeout=2_000_000):
        """Start ``desc``; returns (Error, cycles) once ``busy`` falls."""
        dut = self.dut
        dut.desc.value = pack_desc(desc, self.geom)
        dut.start.value = 1
        await FallingEdge(dut.clk)
        dut.start.value = 0
        if dut.busy.value:
            # a hung core fails the test instead of hanging it
            await with_timeout(FallingEdge(dut.busy), timeout * 10, "ns")
        await FallingEdge(dut.clk)
        return Error(dut.error.value.to_unsigned()), dut.cycles.value.to_unsigned()
