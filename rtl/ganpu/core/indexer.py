from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

__all__ = ["Indexer", "row_layout", "entry_layout"]


def entry_layout(geom):
    """One compressed element of A: the value and the B offset ``k*b_sk`` of its k."""
    return data.StructLayout({"a": 16, "boff": geom.dim_bits + 1})


def row_layout(geom):
    """Where row m of the compressed A lives: entries ``start .. end-1``."""
    return data.StructLayout({"start": geom.a_bits + 1, "end": geom.a_bits + 1})


class Indexer(wiring.Component):
    """Input-zero skipping: compresses each row of A to its non-zero elements.

    Walks A row by row (``a_base + m*a_sm + k*a_sk``, addresses formed by additions, no
    multiplier), writes every element whose magnitude is non-zero, with its B offset
    ``k*b_sk``, to the compressed buffer, and emits one row record per row. Signed zeros
    are dropped: the project's zero-skip rule never forms their products.

    Throughput one element of A per cycle; a row record follows its last element by
    3 cycles. Stalls only while the row-record stream is not ready to take what is in
    flight.

    Ports
    -----
    start : In(1)            one-cycle pulse; descriptor fields below held until done
    m, k, a_base, a_sm, a_sk, b_sk : In(dim_bits)
    a_addr : Out(a_bits)     read address of the A buffer (synchronous read)
    a_data : In(16)          A's data, one cycle after ``a_addr``
    w_en : Out(1), w_addr : Out(a_bits), w_data : Out(entry_layout)
                             write port of the compressed buffer
    rows : Out(stream.Signature(row_layout))
    busy : Out(1)
    """

    ROWQ = 8

    def __init__(self, geom):
        self.geom = geom
        d = geom.dim_bits
        super().__init__({
            "start": In(1),
            "m": In(d), "k": In(d), "a_base": In(d), "a_sm": In(d), "a_sk": In(d), "b_sk": In(d),
            "a_addr": Out(geom.a_bits),
            "a_data": In(16),
            "w_en": Out(1), "w_addr": Out(geom.a_bits), "w_data": Out(entry_layout(geom)),
            "rows": Out(stream.Signature(row_layout(geom))),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        d = g.dim_bits
        w = d + 2  # addresses may exceed a buffer only in tasks the checker rejected

        run = Signal()
        mi, ki = Signal(d), Signal(d)
        row_addr, addr, boff = Signal(w), Signal(w), Signal(d + 1)
        wptr, row_start = Signal(g.a_bits + 1), Signal(g.a_bits + 1)

        # stage registers: 1 = memory read in flight, 2 = data registered
        v1, last1, boff1 = Signal(), Signal(), Signal(d + 1)
        v2, last2, boff2, a2 = Signal(), Signal(), Signal(d + 1), Signal(16)
        # Row records queue here; issuing stops while the queue could overflow with the
        # (at most two, when K = 1) row ends still in the read pipeline.
        m.submodules.rowq = rowq = SyncFIFOBuffered(width=row_layout(g).size, depth=self.ROWQ)
        issue = Signal()
        m.d.comb += issue.eq(run & (rowq.level < self.ROWQ - 3))
        m.d.comb += self.a_addr.eq(addr)

        last_k = ki == self.k - 1
        with m.If(issue):
            with m.If(last_k):
                m.d.sync += [ki.eq(0), mi.eq(mi + 1), boff.eq(0),
                             row_addr.eq(row_addr + self.a_sm), addr.eq(row_addr + self.a_sm)]
                with m.If(mi == self.m - 1):
                    m.d.sync += run.eq(0)
            with m.Else():
                m.d.sync += [ki.eq(ki + 1), boff.eq(boff + self.b_sk), addr.eq(addr + self.a_sk)]
        m.d.sync += [v1.eq(issue), last1.eq(last_k), boff1.eq(boff)]
        m.d.sync += [v2.eq(v1), last2.eq(last1), boff2.eq(boff1), a2.eq(self.a_data)]

        nz = (a2[0:15] != 0)
        m.d.comb += [self.w_en.eq(v2 & nz), self.w_addr.eq(wptr),
                     self.w_data.a.eq(a2), self.w_data.boff.eq(boff2)]
        wnext = wptr + (v2 & nz)
        m.d.sync += wptr.eq(wnext)

        rec = Signal(row_layout(g))
        m.d.comb += [rec.start.eq(row_start), rec.end.eq(wnext),
                     rowq.w_en.eq(v2 & last2), rowq.w_data.eq(rec)]
        with m.If(v2 & last2):
            m.d.sync += row_start.eq(wnext)
        m.d.comb += [self.rows.valid.eq(rowq.r_rdy), self.rows.payload.eq(rowq.r_data),
                     rowq.r_en.eq(self.rows.ready)]
        m.d.comb += self.busy.eq(run | v1 | v2 | rowq.r_rdy)
        # last, so a new task's start overrides every other update of these registers
        with m.If(self.start):
            m.d.sync += [run.eq(1), mi.eq(0), ki.eq(0), row_addr.eq(self.a_base),
                         addr.eq(self.a_base), boff.eq(0), wptr.eq(0), row_start.eq(0)]
        return m
