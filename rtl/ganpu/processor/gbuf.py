"""The global buffer (GBUF): every tensor of a training step, in 16-bit words
(``docs/processor.md``)."""

from amaranth.hdl import Module, Signal, Array
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import Out
from amaranth.utils import exact_log2

from ..core.config import check_type
from .config import ProcessorConfig, ProcessorComponent

__all__ = ["Gbuf", "dma_read_signature", "dma_write_signature"]


class Gbuf(ProcessorComponent):
    """``cfg.gbuf_depth`` words of 16 bits with two read and two write ports: one pair
    for the host bus (one word), one for the DMA (``W = cfg.core.host_words`` words).
    The two never write together: the bus front end refuses GBUF accesses while a
    program is checked or runs, and the DMA moves words only then.

    With W > 1 the GBUF is W banks (word ``a`` in bank ``a mod W``, row ``a >> log2 W``)
    so the DMA reads or writes any W consecutive words, aligned or not, in one access:
    each bank reads its own row (the row of ``addr``, or the next one for the banks
    before ``addr mod W``) and the words are rotated into order. ``dma_rd.data`` lane
    ``i`` (bits ``16i ..``) is word ``addr + i`` (modulo the depth); ``dma_wr.en`` bit
    ``i`` writes lane ``i`` at ``addr + i``. With W = 1 this is one block RAM.

    Latency: a read returns the word(s) addressed the cycle before (synchronous read);
    a write lands at the clock edge. Throughput one read and one write per port pair per
    cycle.

    Ports (memory side of :class:`~amaranth.lib.memory.ReadPort.Signature` /
    ``WritePort.Signature``, ``addr_width = cfg.gbuf_bits``)
    -----
    bus_rd, bus_wr : the host bus, shape 16
    dma_rd, dma_wr : the DMA, shape ``16 * W`` (the write port with one enable per word)
    """

    latency = 1

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        rd = ReadPort.Signature(addr_width=cfg.gbuf_bits, shape=16)
        wr = WritePort.Signature(addr_width=cfg.gbuf_bits, shape=16)
        super().__init__({"bus_rd": Out(rd), "bus_wr": Out(wr), "dma_rd": Out(dma_read_signature(cfg)),
                          "dma_wr": Out(dma_write_signature(cfg))})

    @staticmethod
    def model(words, writes):
        """Transaction-level model: ``words`` after ``writes`` [(addr, data), ...] in order."""
        words = list(words)
        for addr, value in writes:
            words[addr] = value & 0xFFFF
        return words

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        W = cfg.core.host_words
        if W == 1:
            m.submodules.mem = mem = Memory(shape=16, depth=cfg.gbuf_depth, init=[])
            for name in ("bus", "dma"):
                wiring.connect(m, wiring.flipped(getattr(self, f"{name}_rd")), mem.read_port())
                wiring.connect(m, wiring.flipped(getattr(self, f"{name}_wr")), mem.write_port())
            return m
        lw = exact_log2(W)

        def before(j, addr):
            """Bank ``j`` lies before ``addr``'s bank (never the last bank: no constant
            comparison for the linters)."""
            return (addr[:lw] > j) if j < W - 1 else 0

        banks = [Memory(shape=16, depth=cfg.gbuf_depth // W, init=[]) for _ in range(W)]
        bus, dma = self.bus_rd, self.dma_rd
        bus_sel, dma_rot = Signal(lw), Signal(lw)
        with m.If(bus.en):
            m.d.sync += bus_sel.eq(bus.addr[:lw])
        with m.If(dma.en):
            m.d.sync += dma_rot.eq(dma.addr[:lw])
        bus_data, dma_data = [], []
        for j, bank in enumerate(banks):
            m.submodules[f"bank{j}"] = bank
            # the bus: one word, in its own bank
            br, bw = bank.read_port(), bank.write_port()
            m.d.comb += [br.addr.eq(bus.addr >> lw), br.en.eq(bus.en),
                         bw.addr.eq(self.bus_wr.addr >> lw), bw.data.eq(self.bus_wr.data),
                         bw.en.eq(self.bus_wr.en & (self.bus_wr.addr[:lw] == j))]
            bus_data.append(br.data)
            # the DMA: W consecutive words; bank j holds word addr + ((j - addr) mod W),
            # a row further on for the banks before addr mod W
            dr, dw = bank.read_port(), bank.write_port()
            m.d.comb += [dr.addr.eq((dma.addr >> lw) + before(j, dma.addr)), dr.en.eq(dma.en)]
            dma_data.append(dr.data)
            wa = self.dma_wr.addr
            lane = Signal(lw, name=f"wr_lane{j}")
            m.d.comb += [lane.eq(j - wa[:lw]),
                         dw.addr.eq((wa >> lw) + before(j, wa)),
                         dw.data.eq(self.dma_wr.data.word_select(lane, 16)),
                         dw.en.eq(self.dma_wr.en.bit_select(lane, 1))]
        m.d.comb += bus.data.eq(Array(bus_data)[bus_sel])
        # lane i of the DMA's read is bank (addr + i) mod W
        for i in range(W):
            bank_i = Signal(lw, name=f"rd_bank{i}")
            m.d.comb += [bank_i.eq(dma_rot + i), dma.data.word_select(i, 16).eq(Array(dma_data)[bank_i])]
        return m


def dma_read_signature(cfg):
    """The GBUF's DMA read port: ``cfg.core.host_words`` consecutive words from ``addr``."""
    return ReadPort.Signature(addr_width=cfg.gbuf_bits, shape=16 * cfg.core.host_words)


def dma_write_signature(cfg):
    """The GBUF's DMA write port: ``cfg.core.host_words`` consecutive words from
    ``addr``, one enable each (none with one word)."""
    W = cfg.core.host_words
    return WritePort.Signature(addr_width=cfg.gbuf_bits, shape=16 * W,
                               granularity=16 if W > 1 else None)
