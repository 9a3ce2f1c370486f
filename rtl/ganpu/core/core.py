"""The compute core: buffers, blocks and task control of one core."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In

from .buffers import element_bits, make_memory, memory_write_port, connect_element_read, per_set
from .config import Buf, CoreConfig, check_type, CheckedComponent
from .descriptor import Op, Act, Error, descriptor_layout, DescriptorChecker
from .distributor import Distributor
from .host_mux import HostMux
from .indexer import Indexer, entry_layout
from .model import EORS_COUNTERS
from .ports import HostPort, TaskPort
from .scanner import Scanner
from .speculator import Speculator, ROW_SLOTS
from .lane import Lane
from .merge import Merge
from .epilogue import Epilogue

__all__ = ["Buf", "Core"]


class Core(CheckedComponent):
    """The compute core: one task ``out = epilogue(init + A B^T)`` with dual sparsity.

    Dataflow (``docs/core.md``): :class:`DescriptorChecker` -> :class:`Indexer` (zero
    inputs dropped) -> :class:`Speculator` (EORS) -> :class:`Scanner` (outputs masked off
    become direct +0 writes) -> :class:`Distributor` -> ``lanes`` x :class:`Lane` (exact
    FP16 MACs on surviving (output, input) pairs only) -> :class:`Merge` ->
    :class:`Epilogue` -> OUT and MASK_OUT. The buffers are block RAMs (see
    :mod:`ganpu.core.buffers`; words of ``config.host_words`` elements for A, B, OUT
    and the masks) that the host reaches through :class:`HostMux`. Cycles
    therefore follow the surviving MACs / ``lanes``, plus a start-up of a few dozen
    cycles, with two floors: the indexer reads A at one element per cycle and the
    epilogue writes one output per cycle. Results are bit-exact with
    :func:`ganpu.core.model.run_task` (:meth:`model`).

    With ``config.buffer_sets`` = 2 every buffer holds two sets; a task computes from
    the set ``task.set`` names at its ``start`` while the host port reads and writes the
    other set (``docs/core.md``, "Two buffer sets"; :meth:`model` with ``set``).

    Parameters
    ----------
    config : CoreConfig
        MAC lanes, buffer geometry, EORS lanes and arithmetic, buffer sets, fixed at
        elaboration.

    Ports
    -----
    host : In(HostPort(config))   buffer access while idle, or to the idle set (timing
                                  in :class:`HostPort`)
    task : In(TaskPort(config))   start a descriptor, read busy/error/cycles
    """

    read_latency = HostPort.read_latency

    @classmethod
    def check_parameters(cls, config=None):
        if config is not None:
            check_type("config", config, CoreConfig)

    def __init__(self, config=None):
        self.config = CoreConfig() if config is None else config
        super().__init__({"host": In(HostPort(config)), "task": In(TaskPort(config))})

    @staticmethod
    def model(desc, bufs, config, set=None):
        """``(error, new_bufs)`` of one task (:func:`ganpu.core.model.run_task`). With
        ``set`` given, ``bufs`` is the host's image of every set (each buffer
        :meth:`CoreConfig.host_depth` elements) and the task runs on set ``set``
        (:func:`ganpu.core.model.run_task_in_set`)."""
        from .model import run_task, run_task_in_set
        if set is not None:
            return run_task_in_set(desc, bufs, config, set)
        return run_task(desc, bufs, config.geom, config.eors, config.eors_lanes)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        g = cfg.geom
        L = cfg.lanes
        P = cfg.eors_lanes
        t = self.task

        # one RAM per buffer; with two sets, one per set of the buffers a task writes
        # (buffers.per_set) so the running task and the host never share a write port
        mems = {buf: make_memory(cfg, buf) for buf in Buf}
        sets1 = {buf: make_memory(cfg, buf) for buf in Buf if per_set(cfg, buf)}
        for buf, mem in mems.items():
            m.submodules[f"mem_{buf.name.lower()}"] = mem
        for buf, mem in sets1.items():
            m.submodules[f"mem_{buf.name.lower()}_set1"] = mem
        # what compute reads: a buffer's RAM, or its RAMs per set
        src = {buf: [mems[buf], sets1[buf]] if buf in sets1 else mems[buf] for buf in Buf}
        acomp = m.submodules.mem_acomp = Memory(shape=entry_layout(g), depth=g.depth("a"), init=[])

        m.submodules.check = check = DescriptorChecker(cfg)
        m.submodules.indexer = idx = Indexer(g)
        m.submodules.speculator = spec = Speculator(cfg)
        m.submodules.scanner = scan = Scanner(cfg)
        pmask = m.submodules.mem_pmask = Memory(shape=spec.pm_bits, depth=ROW_SLOTS * spec.words_per_row,
                                                init=[])
        m.submodules.distributor = dist = Distributor(cfg)
        lanes = [Lane(g) for _ in range(L)]
        for n, lane in enumerate(lanes):
            m.submodules[f"lane{n}"] = lane
        m.submodules.merge = merge = Merge(g, L + 1)
        m.submodules.epilogue = epi = Epilogue(g)
        m.submodules.host_mux = hmux = HostMux(cfg)

        # --- task control
        desc = Signal(descriptor_layout(g))
        busy = Signal()
        run = Signal()
        mn = Signal(2 * g.dim_bits)
        written = Signal(2 * g.dim_bits)
        cycles = Signal(32)
        m.d.comb += [t.busy.eq(busy), t.cycles.eq(cycles)]
        accept = t.start & ~busy
        # the set the task computes from, sampled with its descriptor
        tset = Signal() if cfg.buffer_sets > 1 else None
        with m.If(accept):
            m.d.sync += [desc.eq(t.desc), busy.eq(1), cycles.eq(1)]
            if tset is not None:
                m.d.sync += tset.eq(t.set)
        with m.Elif(busy):
            m.d.sync += cycles.eq(cycles + 1)
        # the checker registers the live descriptor on the start cycle: no multiplexer
        # between the live and latched copies behind accept (docs/synthesis.md)
        m.d.comb += [check.desc.eq(t.desc), check.start.eq(accept)]
        m.d.sync += mn.eq(desc.m * desc.n)
        go = check.done & (check.error == Error.OK)
        with m.If(check.done):
            m.d.sync += t.error.eq(check.error)
            with m.If(check.error != Error.OK):
                m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += [run.eq(1), written.eq(0)]
        with m.If(run & epi.out_wr.en):
            m.d.sync += written.eq(written + 1)
        with m.If(run & (written == mn)):
            m.d.sync += [run.eq(0), busy.eq(0)]
        # self-calibration counters of the task (docs/eors.md): the epilogue's strobes
        for name in EORS_COUNTERS:
            count = getattr(t, f"eors_{name}")
            with m.If(accept):
                m.d.sync += count.eq(0)
            with m.Elif(getattr(epi.tally, name)):
                m.d.sync += count.eq(count + 1)

        # --- datapath, in dataflow order
        m.d.comb += [idx.desc.eq(desc), idx.start.eq(go)]
        connect_element_read(m, cfg, Buf.A, idx.a_rd, src[Buf.A], tset)
        wiring.connect(m, idx.acomp_wr, acomp.write_port())

        eors_on = desc.eors & (desc.op == Op.FP) & (desc.act == Act.RELU)
        m.d.comb += [spec.start.eq(go), spec.enable.eq(eors_on), spec.n.eq(desc.n), spec.k.eq(desc.k),
                     spec.bias.eq(desc.bias), spec.rel.eq(desc.eors_rel), spec.key.eq(desc.eors_key),
                     spec.bias_word.eq(desc.bias_base >> element_bits(cfg)),
                     spec.row_done.eq(scan.row_done),
                     t.eors_cycles.eq(spec.cycles)]
        wiring.connect(m, idx.rows, spec.rows_in)
        wiring.connect(m, spec.rows_out, scan.rows)
        wiring.connect(m, spec.acomp_rd, acomp.read_port())
        connect_element_read(m, cfg, Buf.BW, spec.bw_rd, src[Buf.BW], tset)
        connect_element_read(m, cfg, Buf.BIAS, spec.bias_rd, src[Buf.BIAS], tset)
        wiring.connect(m, spec.pm_wr, pmask.write_port())

        m.d.comb += [scan.desc.eq(desc), scan.start.eq(go)]
        wiring.connect(m, scan.pm_rd, pmask.read_port())
        connect_element_read(m, cfg, Buf.MASK_IN, scan.mask_rd, src[Buf.MASK_IN], tset)
        connect_element_read(m, cfg, Buf.BIAS, scan.bias_rd, src[Buf.BIAS], tset)
        wiring.connect(m, scan.mask_wr, hmux.mask_in_task)

        wiring.connect(m, scan.jobs, dist.jobs)
        for n, lane in enumerate(lanes):
            wiring.connect(m, dist.lanes[n], lane.jobs)
            wiring.connect(m, lane.acomp_rd, acomp.read_port())
            connect_element_read(m, cfg, Buf.B, lane.b_rd, src[Buf.B], tset)
            wiring.connect(m, lane.results, merge.i[n])
        wiring.connect(m, scan.skips, merge.i[L])
        wiring.connect(m, merge.o, epi.i)
        m.d.comb += epi.desc.eq(desc)
        wiring.connect(m, epi.out_wr, hmux.out_task)
        wiring.connect(m, epi.mask_wr, hmux.mask_out_task)

        # --- host port: OUT, MASK_OUT and MASK_IN belong to the task while it runs
        wiring.connect(m, wiring.flipped(self.host), hmux.host)
        m.d.comb += [hmux.busy.eq(busy), hmux.run.eq(run), hmux.clear.eq(accept)]
        if tset is not None:
            m.d.comb += hmux.task_set.eq(tset)
        ram = [(buf.name.lower(), buf, mem) for buf, mem in mems.items()] + \
            [(f"{buf.name.lower()}_set1", buf, mem) for buf, mem in sets1.items()]
        for name, buf, mem in ram:
            wiring.connect(m, getattr(hmux, f"{name}_wr"), memory_write_port(cfg, buf, mem))
            wiring.connect(m, getattr(hmux, f"{name}_rd"), mem.read_port())
        return m
