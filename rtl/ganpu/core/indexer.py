"""Input-zero skipping: the compressed copy of A."""

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from .config import Geometry, check_type, CheckedComponent
from .descriptor import descriptor_layout

__all__ = ["Indexer", "row_layout", "entry_layout"]


def entry_layout(geom):
    """One compressed element of A: the value and the B offset ``k*b_sk`` of its k."""
    return data.StructLayout({"a": 16, "boff": geom.dim_bits + 1})


def row_layout(geom):
    """Where row m of the compressed A lives: entries ``start .. end-1``."""
    return data.StructLayout({"start": geom.a_bits + 1, "end": geom.a_bits + 1})


class Indexer(CheckedComponent):
    """Input-zero skipping: compresses each row of A to its non-zero elements.

    Walks A row by row (``a_base + m*a_sm + k*a_sk``, addresses formed by additions, no
    multiplier), writes every element whose magnitude is non-zero, with its B offset
    ``k*b_sk``, to the compressed buffer (from entry 0), and emits one row record per
    row. Signed zeros are dropped: the project's zero-skip rule never forms their
    products.

    Timing: one element of A per cycle. Element i (row-major, i = m*K + k) is read at
    cycle ``start + 1 + i``; its entry is written and, for the last element of a row,
    the row record is queued :attr:`STAGES` cycles later, and offered on ``rows``
    :attr:`latency` cycles after ``start + 1 + i`` when the queue is empty. Issue
    stalls only while the row queue could not hold every row end in flight, so a
    consumer that always takes rows sees the last record ``M*K + latency`` cycles
    after ``start``.

    Parameters
    ----------
    geom : Geometry

    Ports
    -----
    start : In(1)                      one-cycle pulse; ``desc`` held until done
    desc : In(descriptor_layout)       uses m, k, a_base, a_sm, a_sk, b_sk
    a_rd : In(ReadPort.Signature)      the A buffer (synchronous read)
    acomp_wr : In(WritePort.Signature) the compressed buffer (``entry_layout``)
    rows : Out(stream.Signature(row_layout))
    busy : Out(1)
    """

    ROW_QUEUE_DEPTH = 8
    STAGES = 2  # A read in flight, A data registered
    latency = STAGES + 2  # + the row queue's write and output register

    @classmethod
    def check_parameters(cls, geom):
        check_type("geom", geom, Geometry)

    def __init__(self, geom):
        self.geom = geom
        super().__init__({
            "start": In(1),
            "desc": In(descriptor_layout(geom)),
            "a_rd": In(ReadPort.Signature(addr_width=geom.a_bits, shape=16)),
            "acomp_wr": In(WritePort.Signature(addr_width=geom.a_bits, shape=entry_layout(geom))),
            "rows": Out(stream.Signature(row_layout(geom))),
            "busy": Out(1),
        })

    @staticmethod
    def model(a_buf, desc):
        """``(entries, rows)``: the compressed buffer's first entries as ``(a, boff)``
        pairs and the row records as ``(start, end)`` pairs, for A buffer image
        ``a_buf`` and descriptor ``desc``."""
        M, K = desc["m"], desc["k"]
        entries, rows = [], []
        for mi in range(M):
            start = len(entries)
            for ki in range(K):
                a = int(a_buf[desc["a_base"] + mi * desc["a_sm"] + ki * desc["a_sk"]])
                if a & 0x7FFF:
                    entries.append((a, ki * desc["b_sk"]))
            rows.append((start, len(entries)))
        return entries, rows

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        d = g.dim_bits
        w = d + 2  # addresses may exceed a buffer only in tasks the checker rejected
        desc = self.desc

        run = Signal()
        mi, ki = Signal(d), Signal(d)
        row_addr, addr, boff = Signal(w), Signal(w), Signal(d + 1)
        wptr, row_start = Signal(g.a_bits + 1), Signal(g.a_bits + 1)

        # stage registers: 1 = memory read in flight, 2 = data registered
        v1, last1, boff1 = Signal(), Signal(), Signal(d + 1)
        v2, last2, boff2, a2 = Signal(), Signal(), Signal(d + 1), Signal(16)
        m.submodules.rowq = rowq = SyncFIFOBuffered(width=row_layout(g).size,
                                                    depth=self.ROW_QUEUE_DEPTH)
        # Issue only while the queue has room for a row end in every stage plus the
        # element being issued (each can end a row when K = 1): nothing is dropped.
        issue = Signal()
        m.d.comb += issue.eq(run & (rowq.level < self.ROW_QUEUE_DEPTH - (self.STAGES + 1)))
        m.d.comb += self.a_rd.addr.eq(addr)

        last_k = ki == desc.k - 1
        with m.If(issue):
            with m.If(last_k):
                m.d.sync += [ki.eq(0), mi.eq(mi + 1), boff.eq(0),
                             row_addr.eq(row_addr + desc.a_sm), addr.eq(row_addr + desc.a_sm)]
                with m.If(mi == desc.m - 1):
                    m.d.sync += run.eq(0)
            with m.Else():
                m.d.sync += [ki.eq(ki + 1), boff.eq(boff + desc.b_sk), addr.eq(addr + desc.a_sk)]
        m.d.sync += [v1.eq(issue), last1.eq(last_k), boff1.eq(boff)]
        m.d.sync += [v2.eq(v1), last2.eq(last1), boff2.eq(boff1), a2.eq(self.a_rd.data)]

        nz = (a2[0:15] != 0)
        wr = self.acomp_wr
        m.d.comb += [wr.en.eq(v2 & nz), wr.addr.eq(wptr), wr.data.a.eq(a2), wr.data.boff.eq(boff2)]
        wnext = wptr + (v2 & nz)
        m.d.sync += wptr.eq(wnext)

        rec = Signal(row_layout(g))
        rq = rowq.w_stream
        m.d.comb += [rec.start.eq(row_start), rec.end.eq(wnext),
                     rq.valid.eq(v2 & last2), rq.payload.eq(rec)]
        with m.If(v2 & last2):
            m.d.sync += row_start.eq(wnext)
        wiring.connect(m, rowq.r_stream, wiring.flipped(self.rows))
        m.d.comb += self.busy.eq(run | v1 | v2 | rowq.r_rdy)
        # last, so a new task's start overrides every other update of these registers
        with m.If(self.start):
            m.d.sync += [run.eq(1), mi.eq(0), ki.eq(0), row_addr.eq(desc.a_base),
                         addr.eq(desc.a_base), boff.eq(0), wptr.eq(0), row_start.eq(0)]
        return m
