from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import enum, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..model.eors import DEFAULT_EORS, EorsParams
from .config import Buf
from .descriptor import Op, Act, Error, Geometry, descriptor_layout, DescriptorChecker
from .indexer import Indexer, entry_layout
from .scanner import Scanner
from .speculator import Speculator, ROW_SLOTS
from .lane import Lane
from .merge import Merge
from .epilogue import Epilogue

__all__ = ["Buf", "Core"]


class Core(wiring.Component):
    """The compute core: one task ``out = epilogue(init + A B^T)`` with dual sparsity.

    Dataflow: :class:`Indexer` (zero inputs dropped) -> :class:`Scanner` (outputs
    masked off become direct +0 writes) -> ``lanes`` x :class:`Lane` (exact FP16 MACs on
    surviving (output, input) pairs only) -> :class:`Merge` -> :class:`Epilogue` -> OUT
    and MASK_OUT. Cycles therefore follow the surviving MACs / ``lanes``, plus a start-up
    of a few dozen cycles, with two floors: the indexer reads A at one element per cycle
    and the epilogue writes one output per cycle. Results are bit-exact with
    :func:`ganpu.core.model.run_task`.

    Host port (memory-like, one access per cycle, only while the core is idle):
    ``h_buf`` selects a :class:`Buf`, ``h_addr`` the element; ``h_we`` writes ``h_wdata``
    (A, B, BIAS, MASK_IN, OUT, MASK_OUT; masks use bit 0); ``h_rdata`` returns the element
    addressed ``read_latency`` = 4 cycles earlier. An address beyond the buffer, or a
    write while busy, sets ``h_err`` (cleared by ``start``) and changes nothing.

    Task port: present ``desc`` with a one-cycle ``start`` while ``busy`` is 0. ``busy``
    stays 1 until every output is written; ``error`` then holds the checker's verdict
    (anything but ``Error.OK`` means nothing was written) and ``cycles`` the task's
    length from ``start`` to the fall of ``busy``.

    Parameters
    ----------
    lanes : int
        Number of MAC lanes (1..16).
    geom : Geometry
        Buffer sizes.
    eors_lanes : int
        EORS predictor lanes (a power of two, 2..64): outputs predicted per cycle.
    eors : EorsParams
        Predictor arithmetic (``docs/eors.md``), fixed at elaboration.
    """

    read_latency = 4

    def __init__(self, lanes=4, geom=None, eors_lanes=16, eors=DEFAULT_EORS):
        if not isinstance(lanes, int) or not 1 <= lanes <= 16:
            self._MustUse__silence = True  # refused: never to be elaborated
            raise ValueError(f"lanes must be an integer in 1..16, not {lanes!r}")
        if geom is None:
            geom = Geometry()
        if not isinstance(geom, Geometry):
            self._MustUse__silence = True  # refused: never to be elaborated
            raise TypeError(f"geom must be a Geometry, not {geom!r}")
        if not isinstance(eors_lanes, int) or not 2 <= eors_lanes <= 64 or eors_lanes & (eors_lanes - 1):
            self._MustUse__silence = True  # refused: never to be elaborated
            raise ValueError(f"eors_lanes must be a power of two in 2..64, not {eors_lanes!r}")
        if not isinstance(eors, EorsParams):
            self._MustUse__silence = True  # refused: never to be elaborated
            raise TypeError(f"eors must be an EorsParams, not {eors!r}")
        self.lanes = lanes
        self.geom = geom
        self.eors_lanes = eors_lanes
        self.eors = eors
        super().__init__({
            "h_buf": In(Buf), "h_addr": In(16), "h_we": In(1), "h_wdata": In(16),
            "h_rdata": Out(16), "h_err": Out(1),
            "desc": In(descriptor_layout(geom)), "start": In(1),
            "busy": Out(1), "error": Out(Error), "cycles": Out(32),
            "eors_cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        L = self.lanes

        P = self.eors_lanes
        lp = exact_log2(P)
        # BIAS and BW are P elements wide so the EORS lanes read a whole group at once;
        # the host and the scanner address single elements (word, lane).
        wide = {Buf.BIAS, Buf.BW}
        mems = {
            Buf.A: Memory(shape=16, depth=g.depth("a"), init=[]),
            Buf.B: Memory(shape=16, depth=g.depth("b"), init=[]),
            Buf.BIAS: Memory(shape=16 * P, depth=max(1, g.depth("bias") // P), init=[]),
            Buf.MASK_IN: Memory(shape=1, depth=g.depth("mask"), init=[]),
            Buf.OUT: Memory(shape=16, depth=g.depth("out"), init=[]),
            Buf.MASK_OUT: Memory(shape=1, depth=g.depth("mask"), init=[]),
            Buf.BW: Memory(shape=16 * P, depth=max(1, g.depth("b") // P), init=[]),
        }
        elements = {buf: mem.depth * (P if buf in wide else 1) for buf, mem in mems.items()}
        for buf, mem in mems.items():
            m.submodules[f"mem_{buf.name.lower()}"] = mem
        acomp = m.submodules.mem_acomp = Memory(shape=entry_layout(g), depth=g.depth("a"), init=[])

        m.submodules.check = check = DescriptorChecker(g, P)
        m.submodules.indexer = idx = Indexer(g)
        m.submodules.speculator = spec = Speculator(g, P, self.eors)
        m.submodules.scanner = scan = Scanner(g, P)
        pmask = m.submodules.mem_pmask = Memory(shape=P, depth=ROW_SLOTS * spec.words_per_row, init=[])
        lanes = [Lane(g) for _ in range(L)]
        for n, lane in enumerate(lanes):
            m.submodules[f"lane{n}"] = lane
        m.submodules.merge = merge = Merge(g, L + 1)
        m.submodules.epilogue = epi = Epilogue(g)

        desc = Signal(descriptor_layout(g))
        busy = Signal()
        run = Signal()
        mn = Signal(2 * g.dim_bits)
        written = Signal(2 * g.dim_bits)
        cycles = Signal(32)
        m.d.comb += [self.busy.eq(busy), self.cycles.eq(cycles)]

        # --- task control
        with m.If(self.start & ~busy):
            m.d.sync += [desc.eq(self.desc), busy.eq(1), cycles.eq(1), self.h_err.eq(0)]
        with m.Elif(busy):
            m.d.sync += cycles.eq(cycles + 1)
        m.d.comb += [check.desc.eq(desc), check.start.eq(self.start & ~busy)]
        # the checker reads the latched copy; give it the live one on the start cycle
        with m.If(self.start & ~busy):
            m.d.comb += check.desc.eq(self.desc)
        m.d.sync += mn.eq(desc.m * desc.n)
        go = check.done & (check.error == Error.OK)
        with m.If(check.done):
            m.d.sync += self.error.eq(check.error)
            with m.If(check.error != Error.OK):
                m.d.sync += busy.eq(0)
            with m.Else():
                m.d.sync += [run.eq(1), written.eq(0)]
        with m.If(run & epi.we):
            m.d.sync += written.eq(written + 1)
        with m.If(run & (written == mn)):
            m.d.sync += [run.eq(0), busy.eq(0)]

        # --- datapath
        for name in ("m", "k", "a_base", "a_sm", "a_sk", "b_sk"):
            m.d.comb += getattr(idx, name).eq(getattr(desc, name))
        m.d.comb += idx.start.eq(go)
        for name in ("op", "act", "use_mask", "bias", "m", "n", "b_base", "b_sn",
                     "o_base", "o_sm", "o_sn", "bias_base"):
            m.d.comb += getattr(scan, name).eq(getattr(desc, name))
        m.d.comb += scan.start.eq(go)
        eors_on = desc.eors & (desc.op == Op.FP) & (desc.act == Act.RELU)
        m.d.comb += [spec.start.eq(go), spec.enable.eq(eors_on), spec.n.eq(desc.n), spec.k.eq(desc.k),
                     spec.bias.eq(desc.bias), spec.bias_word.eq(desc.bias_base >> lp),
                     spec.row_done.eq(scan.row_done), scan.eors.eq(eors_on),
                     self.eors_cycles.eq(spec.cycles)]
        wiring.connect(m, idx.rows, spec.rows_in)
        wiring.connect(m, spec.rows_out, scan.rows)
        wiring.connect(m, spec.acomp_rd, acomp.read_port())
        wiring.connect(m, spec.bw_rd, mems[Buf.BW].read_port())
        wiring.connect(m, spec.bias_rd, mems[Buf.BIAS].read_port())
        wiring.connect(m, spec.pm_wr, pmask.write_port())
        rd_pm = pmask.read_port()
        m.d.comb += [rd_pm.addr.eq(scan.pm_addr), scan.pm_data.eq(rd_pm.data)]

        rd_a = mems[Buf.A].read_port()
        m.d.comb += [rd_a.addr.eq(idx.a_addr), idx.a_data.eq(rd_a.data)]
        wr_c = acomp.write_port()
        m.d.comb += [wr_c.en.eq(idx.w_en), wr_c.addr.eq(idx.w_addr), wr_c.data.eq(idx.w_data)]
        rd_mask = mems[Buf.MASK_IN].read_port()
        rd_bias = mems[Buf.BIAS].read_port()
        m.d.comb += [rd_mask.addr.eq(scan.mask_addr), scan.mask_data.eq(rd_mask.data),
                     rd_bias.addr.eq(scan.bias_addr), scan.bias_data.eq(rd_bias.data)]

        # Jobs go through a small queue per lane, filled one per cycle into the
        # lowest-numbered queue with room: a lane's take decision then stays local
        # instead of rippling through every lane back to the scanner's queue.
        jl_size = scan.jobs.payload.shape().size
        room_taken = 0
        for n, lane in enumerate(lanes):
            rd_c = acomp.read_port()
            rd_b = mems[Buf.B].read_port()
            m.d.comb += [rd_c.addr.eq(lane.acomp_addr), lane.acomp_data.eq(rd_c.data),
                         rd_b.addr.eq(lane.b_addr), lane.b_data.eq(rd_b.data)]
            q = m.submodules[f"jobq{n}"] = SyncFIFOBuffered(width=jl_size, depth=4)
            here = q.w_rdy & ~room_taken
            m.d.comb += [q.w_data.eq(scan.jobs.payload), q.w_en.eq(scan.jobs.valid & here),
                         lane.jobs.valid.eq(q.r_rdy), lane.jobs.payload.eq(q.r_data),
                         q.r_en.eq(lane.jobs.ready)]
            room_taken = room_taken | q.w_rdy
            wiring.connect(m, lane.results, getattr(merge, f"i{n}"))
        m.d.comb += scan.jobs.ready.eq(room_taken)
        wiring.connect(m, scan.skips, getattr(merge, f"i{L}"))
        wiring.connect(m, merge.o, epi.i)
        m.d.comb += [epi.op.eq(desc.op), epi.act.eq(desc.act), epi.slope.eq(desc.slope)]

        # --- host port; OUT and MASK_OUT share their write port with the epilogue,
        # which owns it only while a task runs
        sel_ok = Signal()
        with m.Switch(self.h_buf):
            for buf in mems:
                with m.Case(buf):
                    m.d.comb += sel_ok.eq(self.h_addr < elements[buf])
        host_w = self.h_we & sel_ok & ~busy
        with m.If(self.h_we & (~sel_ok | busy)):
            m.d.sync += self.h_err.eq(1)
        h_lane1, h_lane2 = Signal(range(P)), Signal(range(P))
        m.d.sync += [h_lane1.eq(self.h_addr[:lp]), h_lane2.eq(h_lane1)]
        rdata = {}
        for buf, mem in mems.items():
            en = host_w & (self.h_buf == buf)
            if buf in wide:
                wp = mem.write_port(granularity=16)
                m.d.comb += [wp.addr.eq(self.h_addr >> lp), wp.data.eq(self.h_wdata.replicate(P)),
                             wp.en.eq(Mux(en, 1 << self.h_addr[:lp], 0))]
            else:
                wp = mem.write_port()
                m.d.comb += [wp.addr.eq(self.h_addr), wp.data.eq(self.h_wdata), wp.en.eq(en)]
            if buf == Buf.OUT:
                with m.If(run):
                    m.d.comb += [wp.addr.eq(epi.o_addr), wp.data.eq(epi.o_data), wp.en.eq(epi.we)]
            if buf == Buf.MASK_OUT:
                with m.If(run):
                    m.d.comb += [wp.addr.eq(epi.mask_idx), wp.data.eq(epi.mask_bit), wp.en.eq(epi.we)]
            if buf == Buf.MASK_IN:
                with m.If(run):
                    m.d.comb += [wp.addr.eq(scan.pw_addr), wp.data.eq(scan.pw_data), wp.en.eq(scan.pw_en)]
            rp = mem.read_port()
            m.d.comb += rp.addr.eq(self.h_addr >> lp if buf in wide else self.h_addr)
            # Each buffer's data is registered as it leaves the block RAM (whose slow
            # clock-to-out plus the route fill a cycle), then a wide word's lane is
            # selected, then the buffer: read latency 4 for every buffer.
            raw = Signal(len(rp.data), name=f"h_raw_{buf.name.lower()}")
            rdata[buf] = Signal(16, name=f"h_rdata_{buf.name.lower()}")
            m.d.sync += [raw.eq(rp.data),
                         rdata[buf].eq(raw.word_select(h_lane2, 16) if buf in wide else raw)]
        buf1, buf2, buf3 = Signal(Buf), Signal(Buf), Signal(Buf)
        m.d.sync += [buf1.eq(self.h_buf), buf2.eq(buf1), buf3.eq(buf2)]
        with m.Switch(buf3):
            for buf in mems:
                with m.Case(buf):
                    m.d.sync += self.h_rdata.eq(rdata[buf])
        return m
