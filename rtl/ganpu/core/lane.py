"""One MAC lane of the core."""

import numpy as np

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from ..arith.mac import Fp16Mac
from ..delay import delay, delay_line
from .config import Geometry, check_type, CheckedComponent
from .indexer import entry_layout
from .scanner import job_layout, result_layout

__all__ = ["Lane"]


class Lane(CheckedComponent):
    """One MAC lane: up to ``slots`` outputs in flight, one exact FP16 MAC per cycle.

    The :class:`~ganpu.arith.mac.Fp16Mac` has an accumulator loop of ``slots`` cycles, so
    the lane keeps a ring of ``slots`` job states that rotates once per cycle: the state
    at the head issues its next non-zero term (compressed A entry, then the B element at
    ``b_row + k*b_sk``) into the MAC slot it owns, or, when idle, takes a new job. Each
    output is therefore one sequential fp32 sum in increasing k, with no partial sums,
    and a lane needs no drain between outputs. A job with no non-zero term emits its
    ``init`` unchanged.

    Latency of one job taken at cycle t (``terms`` = ``end - start``): its result is
    offered on ``results`` at ``t + job_latency(terms)`` =
    ``t + FETCH + slots * (max(terms, 1) - 1) + mac.latency + QUEUE_LATENCY`` when the
    result queue is empty (the MAC's last term leaves the fetch pipeline after
    ``FETCH`` cycles; the queue's write and output register add two). Throughput: one term per
    cycle when every slot holds a job; results leave in completion order, not job
    order (a short job overtakes a long one). A job is taken only with a free place
    in the result queue reserved for it (credits), so results never back up into
    the ring. :meth:`model` gives each job's result (a transaction-level model: the
    multiset of results; the bench matches them by ``mask_idx``).

    Parameters
    ----------
    geom : Geometry

    Ports
    -----
    jobs : In(stream.Signature(job_layout))
    acomp_rd : In(ReadPort.Signature)   compressed A (``entry_layout``), synchronous read
    b_rd : In(ReadPort.Signature)       the B buffer, synchronous read
    results : Out(stream.Signature(result_layout))
    busy : Out(1)
    """

    FETCH = 4  # decision -> compressed-A read -> B address -> B read -> MAC input
    slots = Fp16Mac.slots
    QUEUE_DEPTH = 2 * Fp16Mac.slots  # results of a full ring plus a full ring in flight
    QUEUE_LATENCY = 2  # result queue: write, then output register

    @classmethod
    def check_parameters(cls, geom):
        check_type("geom", geom, Geometry)

    def __init__(self, geom):
        self.geom = geom
        super().__init__({
            "jobs": In(stream.Signature(job_layout(geom))),
            "acomp_rd": In(ReadPort.Signature(addr_width=geom.a_bits, shape=entry_layout(geom))),
            "b_rd": In(ReadPort.Signature(addr_width=geom.b_bits, shape=16)),
            "results": Out(stream.Signature(result_layout(geom))),
            "busy": Out(1),
        })

    @classmethod
    def job_latency(cls, terms):
        """Cycles from the take of a job of ``terms`` terms to its result on
        ``results`` (result queue empty)."""
        return cls.FETCH + cls.slots * (max(terms, 1) - 1) + Fp16Mac.latency + cls.QUEUE_LATENCY

    @staticmethod
    def model(jobs, acomp, b_buf):
        """The result (a ``result_layout`` dict) of each job (``job_layout`` dicts) over
        compressed entries ``acomp`` (``(a, boff)`` pairs) and B image ``b_buf``: one
        sequential binary32 sum per job, in entry order (:meth:`Fp16Mac.model`)."""
        out = []
        for job in jobs:
            ent = acomp[job["start"]:job["end"]]
            a = np.array([e[0] for e in ent], dtype=np.uint16)
            b = np.array([b_buf[job["b_row"] + e[1]] for e in ent], dtype=np.uint16)
            acc = int(Fp16Mac.model(a, b, np.uint32(job["init"])))
            out.append(dict(acc=acc, o_addr=job["o_addr"], mask_idx=job["mask_idx"],
                            mask_in=job["mask_in"], computed=1))
        return out

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        R = self.slots
        jl = job_layout(g)
        # ``last``: ``ptr + 1 >= end``, formed while the state travels the ring (valid
        # at the head), so that the head's issue decision holds no adder
        state_layout = data.StructLayout({
            "active": 1, "ptr": g.a_bits + 1, "end": g.a_bits + 1, "b_row": g.dim_bits + 2,
            "o_addr": g.out_bits, "mask_idx": g.mask_bits, "mask_in": 1, "last": 1,
        })
        meta_layout = data.StructLayout({"o_addr": g.out_bits, "mask_idx": g.mask_bits, "mask_in": 1})

        m.submodules.mac = mac = Fp16Mac()
        m.submodules.q = q = SyncFIFOBuffered(width=result_layout(g).size, depth=self.QUEUE_DEPTH)

        ring = [Signal(state_layout, name=f"slot{i}") for i in range(R)]
        head = ring[0]
        credits = Signal(range(self.QUEUE_DEPTH + 1), init=self.QUEUE_DEPTH)

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
        # the head's term and last-term flags without the state multiplexer and adder
        # on their path (the lane's job issue led the core's timing, docs/synthesis.md):
        # an active head always has a term left (it stays active only while
        # ptr + 1 < end) and carries its ``last`` from the ring; a job's come from the
        # distributor's output register
        term = Signal()
        last = Signal()
        m.d.comb += [term.eq(head.active | (take & (job.start != job.end))),
                     last.eq(Mux(head.active, head.last, take & (job.start + 1 >= job.end)))]

        nxt = Signal(state_layout)
        m.d.comb += [nxt.eq(cur), nxt.active.eq(live & ~last), nxt.ptr.eq(cur.ptr + 1)]
        for i in range(R - 1):
            m.d.sync += ring[i].eq(ring[i + 1])
        m.d.sync += [ring[R - 1].eq(nxt), ring[R - 2].last.eq(ring[R - 1].ptr + 1 >= ring[R - 1].end)]

        pops = self.results.valid & self.results.ready
        m.d.sync += credits.eq(credits - take + pops)

        # fetch pipeline: stage 1 compressed entry read, 2 entry registered and B
        # address formed, 3 B read, 4 operands registered at the MAC
        m.d.comb += self.acomp_rd.addr.eq(cur.ptr)
        ctl = data.StructLayout({"term": 1, "first": 1, "last": 1, "init": 32, "b_row": g.dim_bits + 2,
                                 "meta": meta_layout})
        c0 = Signal(ctl)
        m.d.comb += [c0.term.eq(term), c0.first.eq(take), c0.last.eq(last), c0.init.eq(job.init),
                     c0.b_row.eq(cur.b_row), c0.meta.o_addr.eq(cur.o_addr),
                     c0.meta.mask_idx.eq(cur.mask_idx), c0.meta.mask_in.eq(cur.mask_in)]
        _, _, c2, _, c4 = delay_line(m, c0, self.FETCH, name="c")
        e2 = Signal(entry_layout(g))
        b4 = Signal(16)
        m.d.sync += e2.eq(self.acomp_rd.data)
        m.d.comb += self.b_rd.addr.eq(c2.b_row + e2.boff)
        a4 = delay(m, e2.a, 2, name="a")
        m.d.sync += b4.eq(self.b_rd.data)

        m.d.comb += [mac.i_valid.eq(c4.term), mac.a.eq(a4), mac.b.eq(b4),
                     mac.first.eq(c4.first), mac.init.eq(c4.init), mac.last.eq(c4.last)]

        # the finished output's address travels beside the MAC pipeline
        mo = delay(m, c4.meta, mac.latency, name="meta")
        res = Signal(result_layout(g))
        m.d.comb += [res.acc.eq(mac.o), res.o_addr.eq(mo.o_addr), res.mask_idx.eq(mo.mask_idx),
                     res.mask_in.eq(mo.mask_in), res.computed.eq(1)]
        qw = q.w_stream
        m.d.comb += [qw.valid.eq(mac.o_valid), qw.payload.eq(res)]
        wiring.connect(m, q.r_stream, wiring.flipped(self.results))

        busy = q.r_rdy | (credits != self.QUEUE_DEPTH)
        for s in ring:
            busy |= s.active
        m.d.comb += self.busy.eq(busy)
        return m
