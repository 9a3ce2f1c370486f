"""The global buffer (GBUF): every tensor of a training step, in 16-bit words
(``docs/processor.md``)."""

from amaranth.hdl import Module, Signal, Array, Mux
from amaranth.lib import enum, wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..core.config import check_type
from .config import ProcessorConfig, ProcessorComponent

__all__ = ["Gbuf", "Owner", "dma_read_signature", "dma_write_signature"]


class Owner(enum.Enum, shape=1):
    """Who drives the GBUF's one port pair: the DMA (and the update engine, which
    borrows the DMA's ports) while a program is checked or runs, the host bus otherwise."""
    DMA = 0
    BUS = 1


class Gbuf(ProcessorComponent):
    """``cfg.gbuf_depth`` words of 16 bits behind one read and one write port, each
    multiplexed between the host bus (one word) and the DMA (``W =
    cfg.core.host_words`` words) by ``owner``. The two never need the GBUF in the same
    cycle: the bus front end refuses GBUF accesses while a program is checked or runs,
    and the DMA (or the update engine) moves words only then. One read and one write
    port make each bank a simple dual-port memory, which the FPGA flow maps to block
    RAM (an ECP5 DP16KD has two ports; two read and two write ports would not map and
    become flip-flops, ``docs/boards.md``).

    With W > 1 the GBUF is W banks (word ``a`` in bank ``a mod W``, row ``a >> log2 W``)
    so the DMA reads or writes any W consecutive words, aligned or not, in one access:
    each bank reads its own row (the row of ``addr``, or the next one for the banks
    before ``addr mod W``) and the words are rotated into order. ``dma_rd.data`` lane
    ``i`` (bits ``16i ..``) is word ``addr + i`` (modulo the depth); ``dma_wr.en`` bit
    ``i`` writes lane ``i`` at ``addr + i``. A bus access is such a window with lane 0
    alone. With W = 1 this is one memory.

    Latency: a read returns the word(s) addressed the cycle before (synchronous read),
    on both read ports' ``data`` (the data of whichever side owned the port then); a
    write lands at the clock edge. A side that does not own the GBUF reads nothing
    (its read's ``data`` is the owner's) and writes nothing. A read port whose
    ``en`` is low keeps its data only while that side owns the GBUF. Throughput one
    read and one write per cycle, for the owner.

    Ports (memory side of :class:`~amaranth.lib.memory.ReadPort.Signature` /
    ``WritePort.Signature``, ``addr_width = cfg.gbuf_bits``)
    -----
    owner : In(Owner)    the side the port pair serves this cycle
    bus_rd, bus_wr : the host bus, shape 16
    dma_rd, dma_wr : the DMA, shape ``16 * W`` (the write port with one enable per word)
    """

    latency = 1

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        rd = ReadPort.Signature(addr_width=cfg.gbuf_bits, shape=16)
        wr = WritePort.Signature(addr_width=cfg.gbuf_bits, shape=16)
        super().__init__({"owner": In(Owner), "bus_rd": Out(rd), "bus_wr": Out(wr),
                          "dma_rd": Out(dma_read_signature(cfg)),
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
        bus = self.owner == Owner.BUS
        # the one port pair, as the DMA's (a bus access is lane 0 of a window)
        rd_addr, rd_en = Signal(cfg.gbuf_bits), Signal()
        rd_data = Signal(16 * W)
        wr_addr, wr_data, wr_en = Signal(cfg.gbuf_bits), Signal(16 * W), Signal(W)
        m.d.comb += [rd_addr.eq(Mux(bus, self.bus_rd.addr, self.dma_rd.addr)),
                     rd_en.eq(Mux(bus, self.bus_rd.en, self.dma_rd.en)),
                     wr_addr.eq(Mux(bus, self.bus_wr.addr, self.dma_wr.addr)),
                     wr_data.eq(Mux(bus, self.bus_wr.data, self.dma_wr.data)),
                     wr_en.eq(Mux(bus, self.bus_wr.en, self.dma_wr.en)),
                     self.bus_rd.data.eq(rd_data[:16]), self.dma_rd.data.eq(rd_data)]
        if W == 1:
            m.submodules.mem = mem = Memory(shape=16, depth=cfg.gbuf_depth, init=[])
            rp, wp = mem.read_port(), mem.write_port()
            m.d.comb += [rp.addr.eq(rd_addr), rp.en.eq(rd_en), rd_data.eq(rp.data),
                         wp.addr.eq(wr_addr), wp.data.eq(wr_data), wp.en.eq(wr_en)]
            return m
        lw = exact_log2(W)

        def before(j, addr):
            """Bank ``j`` lies before ``addr``'s bank (never the last bank: no constant
            comparison for the linters)."""
            return (addr[:lw] > j) if j < W - 1 else 0

        rot = Signal(lw)
        with m.If(rd_en):
            m.d.sync += rot.eq(rd_addr[:lw])
        data = []
        for j in range(W):
            m.submodules[f"bank{j}"] = bank = Memory(shape=16, depth=cfg.gbuf_depth // W, init=[])
            # bank j holds word addr + ((j - addr) mod W), a row further on for the
            # banks before addr mod W
            rp, wp = bank.read_port(), bank.write_port()
            m.d.comb += [rp.addr.eq((rd_addr >> lw) + before(j, rd_addr)), rp.en.eq(rd_en)]
            data.append(rp.data)
            lane = Signal(lw, name=f"wr_lane{j}")
            m.d.comb += [lane.eq(j - wr_addr[:lw]),
                         wp.addr.eq((wr_addr >> lw) + before(j, wr_addr)),
                         wp.data.eq(wr_data.word_select(lane, 16)),
                         wp.en.eq(wr_en.bit_select(lane, 1))]
        # lane i of a read is bank (addr + i) mod W
        for i in range(W):
            bank_i = Signal(lw, name=f"rd_bank{i}")
            m.d.comb += [bank_i.eq(rot + i), rd_data.word_select(i, 16).eq(Array(data)[bank_i])]
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
