"""The bus front end with the GBUF and the task table in the Amaranth simulator:
random requests in every state against the refusal model and a shadow of the memory
map; the GBUF's port pair handed between the bus and the DMA (fast, no Verilog build)."""

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ganpu.processor import config
from ganpu.processor.bus import BusFrontEnd, csr_names
from ganpu.processor.gbuf import Gbuf, Owner
from ganpu.processor.program import Region, State, Csr, REGION_SHIFT, record_words
from ganpu.processor.task_table import TaskTable

CFG = config("small")


class _Dut(Elaboratable):
    def __init__(self):
        self.bus, self.gbuf, self.table = BusFrontEnd(CFG), Gbuf(CFG), TaskTable(CFG)

    def elaborate(self, platform):
        m = Module()
        m.submodules.bus, m.submodules.gbuf, m.submodules.table = self.bus, self.gbuf, self.table
        wiring.connect(m, self.bus.gbuf_rd, self.gbuf.bus_rd)
        wiring.connect(m, self.bus.gbuf_wr, self.gbuf.bus_wr)
        m.d.comb += self.gbuf.owner.eq(self.bus.gbuf_owner)
        wiring.connect(m, self.bus.prog_rd, self.table.bus_rd)
        wiring.connect(m, self.bus.prog_wr, self.table.bus_wr)
        return m


def test_bus_against_model():
    rng = np.random.default_rng(8)
    dut = _Dut()
    bus = dut.bus
    W = record_words(CFG)
    pwords = CFG.program_depth * W
    status = {"error": 3, "error_task": 5, "error_core": 7, "paused_at": 2, "cycles": 0x12345678,
              "dma": 0x0badcafe, "done_tasks": 9}
    busy = [0x1000 * (c + 1) + c for c in range(CFG.cores)]
    names = csr_names(CFG)
    values = {Csr.ERROR.value: 3, Csr.ERROR_TASK.value: 5, Csr.ERROR_CORE.value: 7, Csr.PAUSED_AT.value: 2,
              Csr.CYCLES_LO.value: 0x5678, Csr.CYCLES_HI.value: 0x1234, Csr.DMA_LO.value: 0xcafe,
              Csr.DMA_HI.value: 0x0bad, Csr.DONE_TASKS.value: 9, Csr.CTRL.value: 0}
    for c in range(CFG.cores):
        values[Csr.CORE_BUSY.value + 2 * c] = busy[c] & 0xFFFF
        values[Csr.CORE_BUSY.value + 2 * c + 1] = busy[c] >> 16
    gbuf = np.zeros(CFG.gbuf_depth, dtype=np.int64)
    prog = np.zeros(pwords, dtype=np.int64)
    regs = {"policy": 0, "ntasks": 0}
    reqs = []
    for _ in range(1500):
        region = int(rng.choice([0, 0, 1, 1, 2, 2, 3]))
        limit = {0: CFG.gbuf_depth, 1: pwords, 2: max(names) + 1, 3: 4}[region]
        offset = int(rng.integers(0, limit + 2))
        if region == 2 and rng.random() < 0.3:
            offset = int(rng.choice([Csr.POLICY.value, Csr.NTASKS.value, Csr.CTRL.value]))
        reqs.append((State(int(rng.integers(6))), region, offset, int(rng.integers(2)),
                     int(rng.integers(1 << 16))))
    got = []

    async def bench(ctx):
        for key, v in status.items():
            ctx.set(getattr(bus.status, key), v)
        for c in range(CFG.cores):
            ctx.set(bus.status.core_busy[c], busy[c])
        ctx.set(bus.resp.ready, 1)
        for state, region, offset, write, data in reqs:
            ctx.set(bus.status.state, state)
            ctx.set(bus.req.payload.addr, (region << REGION_SHIFT) | offset)
            ctx.set(bus.req.payload.write, write)
            ctx.set(bus.req.payload.data, data)
            ctx.set(bus.req.valid, 1)
            pulses = (0, 0, 0)
            while True:
                ready = ctx.get(bus.req.ready)
                if ready:
                    pulses = (ctx.get(bus.control.start), ctx.get(bus.control.resume), ctx.get(bus.control.clear))
                await ctx.tick()
                if ready:
                    break
            ctx.set(bus.req.valid, 0)
            while not ctx.get(bus.resp.valid):
                await ctx.tick()
            got.append((ctx.get(bus.resp.payload.data), ctx.get(bus.resp.payload.error), pulses,
                        ctx.get(bus.control.policy.as_value()), ctx.get(bus.control.ntasks),
                        ctx.get(bus.bus_error)))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    bus_error = 0
    for (state, region, offset, write, data), (rdata, error, pulses, policy, ntasks, berr) in zip(reqs, got):
        refused = BusFrontEnd.model(CFG, state, region, offset, write)
        what = f"{state.name} region {region} offset {offset} write {write}"
        assert error == refused, what
        want_pulses = (0, 0, 0)
        want_data = 0
        if refused:
            bus_error = 1
        elif region == Region.GBUF.value:
            if write:
                gbuf[offset] = data
            else:
                want_data = gbuf[offset]
        elif region == Region.PROGRAM.value:
            if write:
                prog[offset] = data
            else:
                want_data = prog[offset]
        else:
            if write and offset == Csr.CTRL.value:
                want_pulses = (data & 1, data >> 1 & 1, data >> 2 & 1)
                if data & 4:
                    bus_error = 0
            elif write and offset == Csr.POLICY.value:
                regs["policy"] = data & 3
            elif write and offset == Csr.NTASKS.value:
                regs["ntasks"] = data
            elif not write:
                want_data = {Csr.STATE.value: state.value, Csr.POLICY.value: regs["policy"],
                             Csr.NTASKS.value: regs["ntasks"], Csr.BUS_ERROR.value: bus_error,
                             **values}[offset] if offset != Csr.BUS_ERROR.value else bus_error
        assert rdata == want_data, f"{what}: data {rdata:#x}, expected {want_data:#x}"
        assert pulses == want_pulses, f"{what}: CTRL pulses {pulses}"
        assert (policy, ntasks, berr) == (regs["policy"], regs["ntasks"], bus_error), what


@pytest.mark.parametrize("words", [1, 4])
def test_gbuf_owner(words):
    """The GBUF's one port pair, handed between the bus and the DMA at random cycles
    (a 256-word GBUF, one- and four-word DMA ports): the owner's reads return the words
    its address held the cycle before (unaligned DMA windows wrap at the depth), a read
    without ``en`` keeps its data, the owner's writes land and the other side's never
    do; a shadow memory is the model, every cycle compared."""
    cfg = dataclasses.replace(CFG, gbuf_bits=8, core=dataclasses.replace(CFG.core, host_words=words))
    depth, W = cfg.gbuf_depth, words
    rng = np.random.default_rng(21 + words)
    steps = []
    for _ in range(3000):
        steps.append({"owner": Owner(int(rng.random() < 0.5)),
                      "bus_rd": (int(rng.integers(depth)), int(rng.random() < 0.8)),
                      "bus_wr": (int(rng.integers(depth)), int(rng.integers(1 << 16)), int(rng.random() < 0.4)),
                      "dma_rd": (int(rng.integers(depth)), int(rng.random() < 0.8)),
                      "dma_wr": (int(rng.integers(depth)), int.from_bytes(rng.bytes(2 * W), "little"),
                                 int(rng.integers(1 << W)) if rng.random() < 0.5 else 0)})
    mem = rng.integers(0, 1 << 16, depth)
    got = []
    dut = Gbuf(cfg)

    async def bench(ctx):
        # the image through the bus, then every step
        ctx.set(dut.owner, Owner.BUS)
        ctx.set(dut.bus_wr.en, 1)
        for a in range(depth):
            ctx.set(dut.bus_wr.addr, a)
            ctx.set(dut.bus_wr.data, int(mem[a]))
            await ctx.tick()
        for s in steps:
            ctx.set(dut.owner, s["owner"])
            for port in ("bus_rd", "dma_rd"):
                addr, en = s[port]
                ctx.set(getattr(dut, port).addr, addr)
                ctx.set(getattr(dut, port).en, en)
            for port in ("bus_wr", "dma_wr"):
                addr, data, en = s[port]
                p = getattr(dut, port)
                ctx.set(p.addr, addr)
                ctx.set(p.data, data)
                ctx.set(p.en, en)
            await ctx.tick()
            got.append((ctx.get(dut.bus_rd.data), ctx.get(dut.dma_rd.data)))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    latch = [0] * W
    for t, (s, (bus_data, dma_data)) in enumerate(zip(steps, got)):
        bus = s["owner"] == Owner.BUS
        addr, en = s["bus_rd"] if bus else s["dma_rd"]
        if en:
            latch = [int(mem[(addr + i) % depth]) for i in range(W)]
        if bus:
            addr, data, en = s["bus_wr"]
            if en:
                mem[addr] = data
        else:
            addr, data, en = s["dma_wr"]
            for i in range(W):
                if en >> i & 1:
                    mem[(addr + i) % depth] = data >> (16 * i) & 0xFFFF
        want = sum(v << (16 * i) for i, v in enumerate(latch))
        assert (bus_data, dma_data) == (latch[0], want), f"cycle {t}: {s}"
