from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..arith.mac import Fp16Mac
from .indexer import entry_layout
from .scanner import job_layout, result_layout

__all__ = ["Lane"]


class Lane(wiring.Component):
    """One MAC lane: up to ``slots`` outputs in flight, one exact FP16 MAC per cycle.

    The :class:`~ganpu.arith.mac.Fp16Mac` has an accumulator loop of ``slots`` cycles, so
    the lane keeps a ring of ``slots`` job states that rotates once per cycle: the state
    at the head issues its next non-zero term (compressed A entry, then the B element at
    ``b_row + k*b_sk``) into the MAC slot it owns, or, when idle, takes a new job. Each
    output is therefore one sequential fp32 sum in increasing k, with no partial sums,
    and a lane needs no drain between outputs. A job with no non-zero term emits its
    ``init`` unchanged.

    Latency of one job: ``FETCH + slots * max(terms, 1) + mac.latency`` cycles.
    Throughput: one term per cycle when every slot holds a job. A job is taken only
    with a free place in the result queue reserved for it (credits), so results never
    back up into the ring.

    Ports
    -----
    jobs : In(stream.Signature(job_layout))
    acomp_addr : Out(a_bits), acomp_data : In(entry_layout)   synchronous read
    b_addr : Out(b_bits), b_data : In(16)                     synchronous read
    results : Out(stream.Signature(result_layout))
    busy : Out(1)
    """

    FETCH = 4  # decision -> compressed-A read -> B address -> B read -> MAC input

    def __init__(self, geom):
        self.geom = geom
        self.slots = Fp16Mac.slots
        self.qdepth = 2 * self.slots
        super().__init__({
            "jobs": In(stream.Signature(job_layout(geom))),
            "acomp_addr": Out(geom.a_bits), "acomp_data": In(entry_layout(geom)),
            "b_addr": Out(geom.b_bits), "b_data": In(16),
            "results": Out(stream.Signature(result_layout(geom))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        R = self.slots
        jl = job_layout(g)
        state_layout = data.StructLayout({
            "active": 1, "ptr": g.a_bits + 1, "end": g.a_bits + 1, "b_row": g.dim_bits + 2,
            "o_addr": g.out_bits, "mask_idx": g.mask_bits, "mask_in": 1,
        })
        meta_layout = data.StructLayout({"o_addr": g.out_bits, "mask_idx": g.mask_bits, "mask_in": 1})

        m.submodules.mac = mac = Fp16Mac()
        m.submodules.q = q = SyncFIFOBuffered(width=result_layout(g).size, depth=self.qdepth)

        ring = [Signal(state_layout, name=f"slot{i}") for i in range(R)]
        head = ring[0]
        credits = Signal(range(self.qdepth + 1), init=self.qdepth)

        job = self.jobs.payload
        take = Signal()
        m.d.comb += take.eq(~head.active & self.jobs.valid & (credits != 0))
        m.d.comb += self.jobs.ready.eq(take)

        cur = Signal(state_layout)
        with m.If(head.active):
            m.d.comb += cur.eq(head)
        with m.Else():
            m.d.comb += [cur.ptr.eq(job.start), cur.end.eq(job.end), cur.b_row.eq(job.b_row),
                         cur.o_addr.eq(job.o_addr), cur.mask_idx.eq(job.mask_idx),
                         cur.mask_in.eq(job.mask_in)]
        live = head.active | take
        term = Signal()
        last = Signal()
        m.d.comb += [term.eq(live & (cur.ptr != cur.end)),
                     last.eq(live & (cur.ptr + 1 >= cur.end))]

        nxt = Signal(state_layout)
        m.d.comb += [nxt.eq(cur), nxt.active.eq(live & ~last), nxt.ptr.eq(cur.ptr + 1)]
        for i in range(R - 1):
            m.d.sync += ring[i].eq(ring[i + 1])
        m.d.sync += ring[R - 1].eq(nxt)

        pops = self.results.valid & self.results.ready
        m.d.sync += credits.eq(credits - take + pops)

        # fetch pipeline: stage 1 compressed entry read, 2 entry registered and B
        # address formed, 3 B read, 4 operands registered at the MAC
        m.d.comb += self.acomp_addr.eq(cur.ptr)
        ctl = data.StructLayout({"term": 1, "first": 1, "last": 1, "init": 32, "b_row": g.dim_bits + 2,
                                 "meta": meta_layout})
        c0 = Signal(ctl)
        m.d.comb += [c0.term.eq(term), c0.first.eq(take), c0.last.eq(last), c0.init.eq(job.init),
                     c0.b_row.eq(cur.b_row), c0.meta.o_addr.eq(cur.o_addr),
                     c0.meta.mask_idx.eq(cur.mask_idx), c0.meta.mask_in.eq(cur.mask_in)]
        c1, c2, c3, c4 = (Signal(ctl, name=f"c{i}") for i in range(1, 5))
        m.d.sync += [c1.eq(c0), c2.eq(c1), c3.eq(c2), c4.eq(c3)]
        e2 = Signal(entry_layout(g))
        a3, a4, b4 = Signal(16), Signal(16), Signal(16)
        m.d.sync += e2.eq(self.acomp_data)
        m.d.comb += self.b_addr.eq(c2.b_row + e2.boff)
        m.d.sync += [a3.eq(e2.a), a4.eq(a3), b4.eq(self.b_data)]

        m.d.comb += [mac.i_valid.eq(c4.term), mac.a.eq(a4), mac.b.eq(b4),
                     mac.first.eq(c4.first), mac.init.eq(c4.init), mac.last.eq(c4.last)]

        # the finished output's address travels beside the MAC pipeline
        metas = [Signal(meta_layout, name=f"meta{i}") for i in range(mac.latency)]
        m.d.sync += metas[0].eq(c4.meta)
        for i in range(1, mac.latency):
            m.d.sync += metas[i].eq(metas[i - 1])
        res = Signal(result_layout(g))
        mo = metas[-1]
        m.d.comb += [res.acc.eq(mac.o), res.o_addr.eq(mo.o_addr), res.mask_idx.eq(mo.mask_idx),
                     res.mask_in.eq(mo.mask_in), res.computed.eq(1)]
        m.d.comb += [q.w_en.eq(mac.o_valid), q.w_data.eq(res)]
        m.d.comb += [self.results.valid.eq(q.r_rdy), self.results.payload.eq(q.r_data),
                     q.r_en.eq(self.results.ready)]

        busy = q.r_rdy | (credits != self.qdepth)
        for s in ring:
            busy |= s.active
        m.d.comb += self.busy.eq(busy)
        return m
