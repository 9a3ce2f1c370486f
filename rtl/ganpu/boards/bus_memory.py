"""A GBUF without the processor: the bus target of a board too small for a compute
core (the iCEBreaker, ``docs/boards.md``)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..core.config import check_type
from ..processor.config import ProcessorComponent, ProcessorConfig, config as named_config
from ..processor.program import (Region, Csr, State, bus_request_layout, bus_response_layout,
                                 REGION_SHIFT, BUS_ADDR_BITS)

__all__ = ["BusMemory"]


class BusMemory(ProcessorComponent):
    """The processor's memory map reduced to its GBUF: ``cfg.gbuf_depth`` words at
    Region GBUF and CSR STATE (always IDLE, read only); every other access is refused (``error``), exactly as the processor refuses an address
    beyond its map. The host driver's GBUF reads and writes work unchanged.

    Ports
    -----
    req : In(stream.Signature(bus_request_layout()))
    resp : Out(stream.Signature(bus_response_layout()))   one response per request, in order
    state : Out(State)                                     always IDLE

    Timing: a request is taken when no response is waiting; its response is valid the
    next cycle (latency 1, one request per cycle while ``resp`` is ready).
    """

    latency = 1

    @classmethod
    def check_parameters(cls, cfg):
        if isinstance(cfg, str):
            named_config(cfg)
        else:
            check_type("cfg", cfg, ProcessorConfig)

    def __init__(self, cfg):
        self.cfg = named_config(cfg) if isinstance(cfg, str) else cfg
        super().__init__({"req": In(stream.Signature(bus_request_layout())),
                          "resp": Out(stream.Signature(bus_response_layout())),
                          "state": Out(State)})

    @staticmethod
    def model(cfg, gbuf, addr, write, data):
        """``(data, error)`` of one access; ``gbuf`` (a uint16 array) is updated."""
        region, offset = addr >> REGION_SHIFT, addr & ((1 << REGION_SHIFT) - 1)
        if region == Region.GBUF.value and offset < cfg.gbuf_depth:
            if write:
                gbuf[offset] = data
                return 0, 0
            return int(gbuf[offset]), 0
        if region == Region.CSR.value and not write and offset == Csr.STATE.value:
            return State.IDLE.value, 0
        return 0, 1

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.mem = mem = Memory(shape=16, depth=cfg.gbuf_depth, init=[])
        rd, wr = mem.read_port(), mem.write_port()
        req = self.req.payload
        region = req.addr[REGION_SHIFT:BUS_ADDR_BITS]
        offset = req.addr[:REGION_SHIFT]
        in_gbuf = (region == Region.GBUF.value) & (offset < cfg.gbuf_depth)
        is_state = (region == Region.CSR.value) & (offset == Csr.STATE.value) & ~req.write
        take = self.req.valid & (~self.resp.valid | self.resp.ready)
        from_mem = Signal()
        error = Signal()

        m.d.comb += [self.req.ready.eq(~self.resp.valid | self.resp.ready),
                     rd.addr.eq(offset), rd.en.eq(take),
                     wr.addr.eq(offset), wr.data.eq(req.data),
                     wr.en.eq(take & in_gbuf & req.write),
                     self.state.eq(State.IDLE),
                     self.resp.payload.error.eq(error),
                     # STATE reads IDLE, the value 0
                     self.resp.payload.data.eq(Mux(from_mem, rd.data, State.IDLE.value))]
        with m.If(self.resp.valid & self.resp.ready):
            m.d.sync += self.resp.valid.eq(0)
        with m.If(take):
            m.d.sync += [self.resp.valid.eq(1), error.eq(~in_gbuf & ~is_state),
                         from_mem.eq(in_gbuf & ~req.write)]
        return m
