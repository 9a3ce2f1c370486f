"""The processor top: C cores, GBUF, task table, checker, DMA and scheduler behind a
host bus (``docs/processor.md``)."""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..core import Core
from ..core.config import check_type
from .bus import BusFrontEnd, samples
from .eors_bank import EorsBank
from .checker import ProgramChecker
from .config import ProcessorConfig, config as named_config, ProcessorComponent
from .dma import Dma
from .gbuf import Gbuf
from .program import State, bus_request_layout, bus_response_layout
from .scheduler import Scheduler, trace_layout, update_trace_layout
from .task_table import TaskTable
from .update_engine import UpdateEngine

__all__ = ["Processor"]


class Processor(ProcessorComponent):
    """The whole processor for ``cfg`` (a :class:`ProcessorConfig` or a config name).

    Blocks: :class:`BusFrontEnd` (host bus, memory map, CSRs) -> :class:`Gbuf` and
    :class:`TaskTable`; :class:`ProgramChecker` (every record before any task);
    :class:`Scheduler` (ASTM dispatch); :class:`Dma` (GBUF <-> core buffers through
    each core's host port); ``cfg.cores`` x :class:`ganpu.core.Core`;
    :class:`UpdateEngine` (UPDATE records: SGD through the update unit), which shares
    the DMA's GBUF ports (the scheduler runs one or the other); with sampling cores
    (``cfg.core.eors_sample_log2`` > 0) :class:`EorsBank`, the EORS calibration
    counters per slot read as CSRs (``docs/memory-map.md``). A program's
    result is :func:`ganpu.processor.model.run_program`'s, bit for bit.

    Ports
    -----
    req : In(stream.Signature(bus_request_layout()))
    resp : Out(stream.Signature(bus_response_layout()))   one response per request, in order
    state : Out(State)
    sched_trace : Out(trace_layout(cfg))   the scheduler's ``trace``: per core dispatch and
                                           completion pulses (for monitors; not called
                                           ``trace``, a name Verilator's model class takes)
    update_trace : Out(update_trace_layout(cfg))   UPDATE records' start and done pulses
    """

    @classmethod
    def check_parameters(cls, cfg="small"):
        if isinstance(cfg, str):
            named_config(cfg)
        else:
            check_type("cfg", cfg, ProcessorConfig)

    def __init__(self, cfg="small"):
        if isinstance(cfg, str):
            cfg = named_config(cfg)
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        super().__init__({
            "req": In(stream.Signature(bus_request_layout())),
            "resp": Out(stream.Signature(bus_response_layout())),
            "state": Out(State),
            "sched_trace": Out(trace_layout(cfg)),
            "update_trace": Out(update_trace_layout(cfg)),
        })

    @staticmethod
    def model(cfg, gbuf, records, on_pause=None):
        """``(ProgramError, task, core Error, new gbuf)`` (:func:`~ganpu.processor.model.run_program`)."""
        from .model import run_program
        return run_program(cfg, gbuf, records, on_pause)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.bus = bus = BusFrontEnd(cfg)
        m.submodules.gbuf = gbuf = Gbuf(cfg)
        m.submodules.table = table = TaskTable(cfg)
        m.submodules.checker = checker = ProgramChecker(cfg)
        m.submodules.scheduler = sched = Scheduler(cfg)
        m.submodules.dma = dma = Dma(cfg)
        m.submodules.update = upd = UpdateEngine(cfg)
        cores = [Core(cfg.core) for _ in range(cfg.cores)]
        for i, core in enumerate(cores):
            m.submodules[f"core{i}"] = core

        wiring.connect(m, wiring.flipped(self.req), bus.req)
        wiring.connect(m, wiring.flipped(self.resp), bus.resp)
        wiring.connect(m, bus.gbuf_rd, gbuf.bus_rd)
        wiring.connect(m, bus.gbuf_wr, gbuf.bus_wr)
        # one GBUF port pair: the bus's unless a program owns the GBUF (CHECKING,
        # RUNNING), when only the DMA and the update engine touch it
        m.d.comb += gbuf.owner.eq(bus.gbuf_owner)
        wiring.connect(m, bus.prog_rd, table.bus_rd)
        wiring.connect(m, bus.prog_wr, table.bus_wr)
        wiring.connect(m, checker.table, table.check_rd)
        wiring.connect(m, sched.table, table.sched_rd)
        wiring.connect(m, sched.check, checker.check)
        wiring.connect(m, sched.load, dma.load)
        wiring.connect(m, sched.store, dma.store)
        wiring.connect(m, sched.update, upd.job)
        # the GBUF's DMA ports go to the update engine while it runs (the scheduler
        # gives the DMA no job then), else to the DMA
        rd, wr = gbuf.dma_rd, gbuf.dma_wr
        with m.If(upd.job.busy):
            m.d.comb += [rd.addr.eq(upd.gbuf_rd.addr), rd.en.eq(upd.gbuf_rd.en),
                         wr.addr.eq(upd.gbuf_wr.addr), wr.data.eq(upd.gbuf_wr.data),
                         wr.en.eq(upd.gbuf_wr.en)]
        with m.Else():
            m.d.comb += [rd.addr.eq(dma.gbuf_rd.addr), rd.en.eq(dma.gbuf_rd.en),
                         wr.addr.eq(dma.gbuf_wr.addr), wr.data.eq(dma.gbuf_wr.data),
                         wr.en.eq(dma.gbuf_wr.en)]
        m.d.comb += [dma.gbuf_rd.data.eq(rd.data), upd.gbuf_rd.data.eq(rd.data)]
        for i, core in enumerate(cores):
            wiring.connect(m, dma.cores[i], core.host)
            wiring.connect(m, sched.cores[i], core.task)
        m.d.comb += [sched.control.eq(bus.control), bus.status.eq(sched.status),
                     sched.loaded.eq(dma.loaded), sched.store_done.eq(dma.store_done),
                     sched.dma_cycles.eq(dma.busy_cycles), sched.dma_busy.eq(dma.busy),
                     self.state.eq(sched.status.state), self.sched_trace.eq(sched.trace),
                     self.update_trace.eq(sched.update_trace)]
        if samples(cfg):
            # each finished task's EORS counters into its record's calibration slot
            m.submodules.eors_bank = bank = EorsBank(cfg)
            for i, core in enumerate(cores):
                m.d.comb += [bank.busy[i].eq(core.task.busy), bank.slot[i].eq(sched.eors_slot[i])]
                tp = core.task   # in EORS_COUNTERS order
                for j, x in enumerate([tp.eors_live, tp.eors_false_live, tp.eors_sampled,
                                       tp.eors_false_zero]):
                    m.d.comb += bank.counts[i][j].eq(x)
            m.d.comb += [bank.clear.eq(bus.control.clear_eors), bus.eors.eq(bank.bank)]
        return m
