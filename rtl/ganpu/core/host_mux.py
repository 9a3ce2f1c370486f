"""The host port's side of the core's buffers."""

from amaranth.hdl import Module, Signal, Mux, Cat, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..delay import delay
from .buffers import (WIDE, buffer_shape, memory_shape, element_bits, word_bits,
                      memory_read_signature, memory_write_signature, write_signature,
                      element_write)
from .config import Buf, CoreConfig, check_type, CheckedComponent
from .ports import HostPort

__all__ = ["HostMux", "TASK_WRITTEN"]

TASK_WRITTEN = (Buf.OUT, Buf.MASK_OUT, Buf.MASK_IN)
"""Buffers a running task writes (the epilogue's results, the EORS prediction)."""


def _name(buf):
    return buf.name.lower()


class HostMux(CheckedComponent):
    """Connects the :class:`~ganpu.core.ports.HostPort` to every buffer's block RAM.

    Each buffer has one read port and one write port here. Writes from the host reach
    a buffer only while ``busy`` = 0 and inside its depth; anything else sets
    ``host.err`` (cleared by ``clear``, the accepted ``start``). OUT, MASK_OUT and
    MASK_IN share their write port with the task: while ``run`` = 1 the ``*_task``
    write ports (the epilogue's, the scanner's, one element each) own it.

    With ``config.host_words`` = W > 1 the host moves W elements per access: the
    :data:`~ganpu.core.buffers.BANKED` buffers' RAM words are W elements (one write
    enable each), a BIAS/BW access is the W-element part of its ``eors_lanes`` word.

    Latency: host reads :attr:`latency` = ``HostPort.read_latency`` = 4 cycles (block RAM
    read, output register, part select of a wide word, buffer select); host writes
    and task writes pass through without a register. Throughput one access per cycle.

    Ports
    -----
    host : In(HostPort)
    busy, run, clear : In(1)
    {buf}_rd : In(memory_read_signature)    to buffer ``buf``'s block RAM, for every :class:`Buf`
    {buf}_wr : In(memory_write_signature)   ditto (one enable per element of a wide word)
    {out,mask_out,mask_in}_task : Out(WritePort.Signature)   the task's element writes
    """

    latency = HostPort.read_latency

    @classmethod
    def check_parameters(cls, config):
        check_type("config", config, CoreConfig)

    def __init__(self, config):
        self.config = config
        members = {"host": In(HostPort(config)), "busy": In(1), "run": In(1), "clear": In(1)}
        for buf in Buf:
            members[f"{_name(buf)}_rd"] = In(memory_read_signature(config, buf))
            members[f"{_name(buf)}_wr"] = In(memory_write_signature(config, buf))
        for buf in TASK_WRITTEN:
            members[f"{_name(buf)}_task"] = Out(write_signature(config, buf))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        h = self.host
        P = cfg.eors_lanes
        W = cfg.host_words
        lp = element_bits(cfg)
        lw = word_bits(cfg)

        sel_ok = Signal()
        with m.Switch(h.buf):
            for buf in Buf:
                with m.Case(buf):
                    m.d.comb += sel_ok.eq(h.addr < cfg.depth(buf))
        we = h.we.any()
        host_w = we & sel_ok & ~self.busy
        with m.If(self.clear):
            m.d.sync += h.err.eq(0)
        # after the clear: a refused write in the start cycle still flags
        with m.If(we & (~sel_ok | self.busy)):
            m.d.sync += h.err.eq(1)

        # the part of a BIAS/BW word the host reaches: W elements from addr & ~(W-1)
        part = h.addr[lw:lp]
        lane = delay(m, part, 2, name="h_lane") if lp > lw else None
        lanes = [h.wdata.word_select(j, 16) for j in range(W)]
        rdata = {}
        for buf in Buf:
            rd = getattr(self, f"{_name(buf)}_rd")
            wr = getattr(self, f"{_name(buf)}_wr")
            en = host_w & (h.buf == buf)
            elem, _ = buffer_shape(cfg, buf)
            if buf in WIDE:
                m.d.comb += [wr.addr.eq(h.addr >> lp), wr.data.eq(h.wdata.replicate(P // W)),
                             wr.en.eq(Mux(en, h.we << Cat(Const(0, lw), part), 0))]
            elif W > 1:
                m.d.comb += [wr.addr.eq(h.addr >> lw),
                             wr.data.eq(Cat(x[:elem] for x in lanes)), wr.en.eq(Mux(en, h.we, 0))]
            else:
                m.d.comb += [wr.addr.eq(h.addr), wr.data.eq(h.wdata), wr.en.eq(en)]
            if buf in TASK_WRITTEN:
                task = getattr(self, f"{_name(buf)}_task")
                with m.If(self.run):
                    element_write(m, cfg, buf, wr, task.addr, task.data, task.en)
            m.d.comb += rd.addr.eq(h.addr >> (lp if buf in WIDE else lw))
            # Each buffer's data is registered as it leaves the block RAM (whose slow
            # clock-to-out plus the route fill a cycle), then a wide word's part is
            # selected, then the buffer.
            raw = Signal(memory_shape(cfg, buf)[0], name=f"h_raw_{_name(buf)}")
            rdata[buf] = Signal(16 * W, name=f"h_rdata_{_name(buf)}")
            if buf in WIDE:
                value = raw.word_select(lane, 16 * W) if lane is not None else raw
            elif elem == 16:
                value = raw
            else:
                # a mask element as a 0/1 lane
                value = Cat(Cat(raw[j], Const(0, 15)) for j in range(W))
            m.d.sync += [raw.eq(rd.data), rdata[buf].eq(value)]
        sel = delay(m, h.buf, self.latency - 1, name="h_buf")
        with m.Switch(sel):
            for buf in Buf:
                with m.Case(buf):
                    m.d.sync += h.rdata.eq(rdata[buf])
        return m
