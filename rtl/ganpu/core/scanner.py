from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..arith.widen import Fp16ToFp32
from .descriptor import Op, Act
from .indexer import row_layout
from .speculator import ROW_SLOTS

__all__ = ["Scanner", "job_layout", "result_layout"]


def job_layout(geom):
    """One output to compute: its compressed A row, its B row and where it goes."""
    return data.StructLayout({
        "start": geom.a_bits + 1, "end": geom.a_bits + 1,
        "b_row": geom.dim_bits + 2, "init": 32,
        "o_addr": geom.out_bits, "mask_idx": geom.mask_bits, "mask_in": 1,
    })


def result_layout(geom):
    """One output on its way to the epilogue; ``computed = 0`` means write +0."""
    return data.StructLayout({
        "acc": 32, "o_addr": geom.out_bits, "mask_idx": geom.mask_bits,
        "mask_in": 1, "computed": 1,
    })


class Scanner(wiring.Component):
    """Output skipping: turns every output (m, n) into a job or a direct +0 write.

    For each row record from the :class:`Indexer` it walks n = 0..N-1 (addresses by
    additions), reads the output's mask bit and bias, and emits either a job for the
    lanes or, for an output that is masked off (FP with a supplied mask; BP through
    ReLU with the stored mask), a result with ``computed = 0`` that the epilogue turns
    into +0 without any MAC. Outputs leave in (m, n) order on each stream.

    Throughput one output per cycle; latency 5 cycles (mask/bias read, register, lane
    select, widening).

    Ports
    -----
    start : In(1); descriptor fields : In(...)   held until done
    rows : In(stream.Signature(row_layout))
    mask_addr : Out(mask_bits), mask_data : In(1)     synchronous read
    eors : In(1); pm_addr, pm_data                    the speculator's mask store, read
    pw_en, pw_addr, pw_data : Out                     predicted bit to MASK_IN (EORS)
    row_done : Out(1)                                 last output of a row issued
    bias_addr : Out(...), bias_data : In(16 * eors_lanes)   synchronous read of the
                                                      wide BIAS buffer (one word = P biases)
    jobs : Out(stream.Signature(job_layout))
    skips : Out(stream.Signature(result_layout))
    busy : Out(1)
    """

    QDEPTH = 16

    def __init__(self, geom, eors_lanes=16):
        self.geom = geom
        self.eors_lanes = eors_lanes
        self.words_per_row = geom.depth("mask") // eors_lanes
        d = geom.dim_bits
        super().__init__({
            "start": In(1),
            "op": In(Op), "act": In(Act), "use_mask": In(1), "bias": In(1), "eors": In(1),
            "pm_addr": Out(range(ROW_SLOTS * self.words_per_row)), "pm_data": In(eors_lanes),
            "row_done": Out(1),
            "pw_en": Out(1), "pw_addr": Out(geom.mask_bits), "pw_data": Out(1),
            "m": In(d), "n": In(d), "b_base": In(d), "b_sn": In(d),
            "o_base": In(d), "o_sm": In(d), "o_sn": In(d), "bias_base": In(d),
            "rows": In(stream.Signature(row_layout(geom))),
            "mask_addr": Out(geom.mask_bits), "mask_data": In(1),
            "bias_addr": Out(max(1, geom.bias_bits - exact_log2(eors_lanes))),
            "bias_data": In(16 * eors_lanes),
            "jobs": Out(stream.Signature(job_layout(geom))),
            "skips": Out(stream.Signature(result_layout(geom))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        d = g.dim_bits
        jl = job_layout(g)

        m.submodules.jobq = jobq = SyncFIFOBuffered(width=jl.size, depth=self.QDEPTH)
        m.submodules.skipq = skipq = SyncFIFOBuffered(width=result_layout(g).size, depth=self.QDEPTH)
        m.submodules.widen = widen = Fp16ToFp32()

        have_row = Signal()
        row = Signal(row_layout(g))
        ni = Signal(d)
        mleft = Signal(d + 1)
        b_row, o_row, o_addr = Signal(d + 2), Signal(d + 2), Signal(d + 2)
        mask_idx = Signal(2 * d)
        bias_addr = Signal(d + 1)
        # where the speculator left this output's predicted bit: row slot, word, bit
        rslot = Signal(range(ROW_SLOTS))
        pg = Signal(range(self.words_per_row))
        pp = Signal(range(self.eors_lanes))


        # Five outputs can be in the pipeline; only issue while both queues have room
        # for all of them, so nothing in flight is ever dropped.
        room = (jobq.level < self.QDEPTH - 5) & (skipq.level < self.QDEPTH - 5)
        issue = Signal()
        m.d.comb += issue.eq(have_row & room)
        m.d.comb += self.rows.ready.eq(~have_row & (mleft != 0))
        with m.If(self.rows.valid & self.rows.ready):
            m.d.sync += [have_row.eq(1), row.eq(self.rows.payload)]

        lp = exact_log2(self.eors_lanes)
        m.d.comb += [self.mask_addr.eq(mask_idx), self.bias_addr.eq(bias_addr >> lp),
                     self.pm_addr.eq(rslot * self.words_per_row + pg)]
        m.d.comb += self.row_done.eq(issue & (ni == self.n - 1))
        with m.If(issue):
            m.d.sync += [mask_idx.eq(mask_idx + 1)]
            with m.If(pp == self.eors_lanes - 1):
                m.d.sync += [pp.eq(0), pg.eq(pg + 1)]
            with m.Else():
                m.d.sync += pp.eq(pp + 1)
            with m.If(ni == self.n - 1):
                m.d.sync += [pg.eq(0), pp.eq(0), rslot.eq(Mux(rslot == ROW_SLOTS - 1, 0, rslot + 1))]
                m.d.sync += [ni.eq(0), have_row.eq(0), mleft.eq(mleft - 1),
                             b_row.eq(self.b_base), bias_addr.eq(self.bias_base),
                             o_row.eq(o_row + self.o_sm), o_addr.eq(o_row + self.o_sm)]
            with m.Else():
                m.d.sync += [ni.eq(ni + 1), b_row.eq(b_row + self.b_sn),
                             bias_addr.eq(bias_addr + 1), o_addr.eq(o_addr + self.o_sn)]

        # stage 1: mask and bias being read
        j1 = Signal(jl)
        v1 = Signal()
        pp1 = Signal.like(pp)
        lane1, lane2 = Signal(range(self.eors_lanes)), Signal(range(self.eors_lanes))
        m.d.sync += [pp1.eq(pp), lane1.eq(bias_addr[:lp]), lane2.eq(lane1)]
        m.d.sync += [v1.eq(issue), j1.start.eq(row.start), j1.end.eq(row.end), j1.b_row.eq(b_row),
                     j1.o_addr.eq(o_addr), j1.mask_idx.eq(mask_idx)]
        # stage 2: mask and bias registered (a block RAM's clock-to-out leaves no room
        # for the widening's normalization in the same cycle)
        j2 = Signal(jl)
        v2 = Signal()
        bias2 = Signal(16 * self.eors_lanes)
        # the predicted word is registered whole and its bit picked a stage later, for
        # the same clock-to-out reason as the bias
        pm2, pp2 = Signal(self.eors_lanes), Signal.like(pp)
        m.d.sync += [v2.eq(v1), j2.eq(j1), j2.mask_in.eq(self.mask_data), bias2.eq(self.bias_data),
                     pm2.eq(self.pm_data), pp2.eq(pp1)]
        # stage 3: bias widened (Fp16ToFp32 is registered); the mask decides
        j3 = Signal(jl)
        v3 = Signal()
        m.d.sync += [v3.eq(v2), j3.eq(j2),
                     j3.mask_in.eq(Mux(self.eors, pm2.bit_select(pp2, 1), j2.mask_in))]
        # The prediction is also written to MASK_IN (unused in an EORS task), so the
        # host can read back exactly what the speculator decided.
        m.d.comb += [self.pw_en.eq(v3 & self.eors), self.pw_addr.eq(j3.mask_idx),
                     self.pw_data.eq(j3.mask_in)]
        # The whole word is registered as it leaves the block RAM, the lane's bias is
        # picked at stage 3 and widened at stage 4: the select and the widening's
        # normalization do not both fit in one cycle.
        bias3 = Signal(16)
        m.d.sync += bias3.eq(bias2.word_select(lane2, 16))
        m.d.comb += widen.i.eq(bias3)
        # stage 4: the job meets its widened bias
        j4 = Signal(jl)
        v4 = Signal()
        m.d.sync += [v4.eq(v3), j4.eq(j3)]
        init = Signal(32)
        m.d.comb += init.eq(widen.o)
        with m.If(~self.bias):
            m.d.comb += init.eq(0x80000000)

        skip = ((self.op == Op.FP) & (self.use_mask | self.eors) & ~j4.mask_in) | \
               ((self.op == Op.BP) & (self.act == Act.RELU) & ~j4.mask_in)
        job = Signal(jl)
        m.d.comb += [job.eq(j4), job.init.eq(init)]
        res = Signal(result_layout(g))
        m.d.comb += [res.o_addr.eq(j4.o_addr), res.mask_idx.eq(j4.mask_idx),
                     res.mask_in.eq(j4.mask_in), res.computed.eq(0)]
        m.d.comb += [jobq.w_en.eq(v4 & ~skip), jobq.w_data.eq(job),
                     skipq.w_en.eq(v4 & skip), skipq.w_data.eq(res)]

        m.d.comb += [self.jobs.valid.eq(jobq.r_rdy), self.jobs.payload.eq(jobq.r_data),
                     jobq.r_en.eq(self.jobs.ready),
                     self.skips.valid.eq(skipq.r_rdy), self.skips.payload.eq(skipq.r_data),
                     skipq.r_en.eq(self.skips.ready)]
        m.d.comb += self.busy.eq(have_row | (mleft != 0) | v1 | v2 | v3 | v4 | jobq.r_rdy | skipq.r_rdy)
        # last, so a new task's start overrides every other update of these registers
        with m.If(self.start):
            m.d.sync += [have_row.eq(0), ni.eq(0), mleft.eq(self.m), b_row.eq(self.b_base),
                         rslot.eq(0), pg.eq(0), pp.eq(0),
                         o_row.eq(self.o_base), o_addr.eq(self.o_base), mask_idx.eq(0),
                         bias_addr.eq(self.bias_base)]
        return m
