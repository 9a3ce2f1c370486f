"""The global buffer (GBUF): every tensor of a training step, in 16-bit words
(``docs/processor.md``)."""

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import Out

from ..core.config import check_type
from .config import ProcessorConfig, ProcessorComponent

__all__ = ["Gbuf"]


class Gbuf(ProcessorComponent):
    """``cfg.gbuf_depth`` words of 16 bits, one block RAM with two read and two write
    ports: one pair for the host bus, one for the DMA. The two never write together:
    the bus front end refuses GBUF accesses while a program is checked or runs, and the
    DMA moves words only then.

    Latency: a read returns the word addressed the cycle before (synchronous read); a
    write lands at the clock edge. Throughput one read and one write per port pair per
    cycle.

    Ports (memory side of :class:`~amaranth.lib.memory.ReadPort.Signature` /
    ``WritePort.Signature``, ``addr_width = cfg.gbuf_bits``, shape 16)
    -----
    bus_rd, bus_wr : the host bus
    dma_rd, dma_wr : the DMA
    """

    latency = 1

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        rd = ReadPort.Signature(addr_width=cfg.gbuf_bits, shape=16)
        wr = WritePort.Signature(addr_width=cfg.gbuf_bits, shape=16)
        super().__init__({"bus_rd": Out(rd), "bus_wr": Out(wr), "dma_rd": Out(rd), "dma_wr": Out(wr)})

    @staticmethod
    def model(words, writes):
        """Transaction-level model: ``words`` after ``writes`` [(addr, data), ...] in order."""
        words = list(words)
        for addr, value in writes:
            words[addr] = value & 0xFFFF
        return words

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=16, depth=self.cfg.gbuf_depth, init=[])
        for name in ("bus", "dma"):
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_rd")), mem.read_port())
            wiring.connect(m, wiring.flipped(getattr(self, f"{name}_wr")), mem.write_port())
        return m
