"""The task table: the program's records, one record per memory word
(``docs/program.md``)."""

from amaranth.hdl import Module, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.lib.wiring import Out

from ..core.config import check_type
from .config import ProcessorConfig, ProcessorComponent
from .program import record_words

__all__ = ["TaskTable", "table_read_signature"]


def table_read_signature(cfg):
    """A read port of the table: a whole record (``record_words(cfg)`` x 16 bits) per read."""
    return ReadPort.Signature(addr_width=cfg.program_bits, shape=unsigned(16 * record_words(cfg)))


class TaskTable(ProcessorComponent):
    """``cfg.program_depth`` records of ``16 * record_words(cfg)`` bits. The bus writes
    16-bit words (write granularity 16: bus word ``i`` of record ``t`` is lane ``i`` of
    address ``t``); the checker and the scheduler each read whole records. A record's
    bits are :func:`~ganpu.processor.program.task_layout` from bit 0.

    Latency: a read returns the record addressed the cycle before. Throughput one read
    per port per cycle.

    Ports (memory side)
    -----
    bus_wr : WritePort.Signature(addr_width=cfg.program_bits, shape=16*W, granularity=16)
    bus_rd, check_rd, sched_rd : :func:`table_read_signature`
    """

    latency = 1

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        w = 16 * record_words(cfg)
        rd = table_read_signature(cfg)
        super().__init__({
            "bus_wr": Out(WritePort.Signature(addr_width=cfg.program_bits, shape=unsigned(w),
                                              granularity=16)),
            "bus_rd": Out(rd), "check_rd": Out(rd), "sched_rd": Out(rd),
        })

    @staticmethod
    def model(cfg, records, writes):
        """Transaction-level model: record integers after bus word ``writes``
        [(word address, data), ...]."""
        records = list(records)
        words = record_words(cfg)
        for addr, value in writes:
            t, i = divmod(addr, words)
            records[t] = (records[t] & ~(0xFFFF << (16 * i))) | ((value & 0xFFFF) << (16 * i))
        return records

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=unsigned(16 * record_words(self.cfg)),
                                        depth=self.cfg.program_depth, init=[])
        wiring.connect(m, wiring.flipped(self.bus_wr), mem.write_port(granularity=16))
        for name in ("bus_rd", "check_rd", "sched_rd"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), mem.read_port())
        return m
