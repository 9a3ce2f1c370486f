from amaranth.hdl import Module, Signal, Mux, Cat
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..eors.lane import EorsLane
from ..model.eors import DEFAULT_EORS
from .indexer import entry_layout, row_layout

__all__ = ["Speculator", "ROW_SLOTS"]

# Rows the speculator may run ahead of the scanner (its mask store holds this many).
ROW_SLOTS = 4


class Speculator(wiring.Component):
    """EORS in the core: predicts, row by row, which outputs a ReLU will zero.

    Sits between the :class:`Indexer` and the :class:`Scanner`. In an FP task with ReLU
    and the descriptor's ``eors`` bit, for each compressed row of A it runs ``lanes``
    :class:`~ganpu.eors.lane.EorsLane` s side by side, one group of ``lanes`` outputs
    at a time: every cycle one non-zero ``A[m, k]`` is broadcast and each lane reads its
    weight from one wide word of the BW buffer (``BW[g*K + k]`` holds ``B[g*lanes + p, k]``
    in lane ``p``), and its bias from the wide BIAS buffer. The live bits of the row
    go to a mask store of :data:`ROW_SLOTS` rows; the row record is passed on to the
    scanner once its last group is written, so the exact MACs only ever see predicted
    survivors. Other tasks pass the row records straight through.

    Cost: ``ceil(N / lanes) * max(nnz(row), 1)`` cycles per row, overlapped with the
    MAC lanes working on earlier rows; up to :data:`ROW_SLOTS` rows ahead.

    Ports
    -----
    start : In(1), enable : In(1), n, k : In(dim_bits), bias : In(1), bias_word : In(...)
    rows_in : In(stream row_layout), rows_out : Out(stream row_layout)
    row_done : In(1)           the scanner finished a row (frees its mask slot)
    acomp_addr / acomp_data    compressed A, synchronous read
    bw_addr / bw_data          wide weights, synchronous read
    bias_addr / bias_data      wide biases, synchronous read
    pm_we, pm_addr, pm_data    mask store write port (``lanes`` bits a word)
    busy : Out(1), cycles : Out(32)   cycles spent issuing predictions this task
    """

    def __init__(self, geom, lanes=16, params=DEFAULT_EORS):
        if not isinstance(lanes, int) or lanes < 1 or lanes & (lanes - 1):
            self._MustUse__silence = True  # refused: never to be elaborated
            raise ValueError(f"EORS lanes must be a power of two, not {lanes!r}")
        self.geom = geom
        self.lanes = lanes
        self.params = params
        self.words_per_row = geom.depth("mask") // lanes
        d = geom.dim_bits
        super().__init__({
            "start": In(1), "enable": In(1), "n": In(d), "k": In(d), "bias": In(1),
            "bias_word": In(geom.bias_bits),
            "rows_in": In(stream.Signature(row_layout(geom))),
            "rows_out": Out(stream.Signature(row_layout(geom))),
            "row_done": In(1),
            "acomp_addr": Out(geom.a_bits), "acomp_data": In(entry_layout(geom)),
            "bw_addr": Out(max(1, geom.b_bits - exact_log2(lanes))), "bw_data": In(16 * lanes),
            "bias_addr": Out(max(1, geom.bias_bits - exact_log2(lanes))), "bias_data": In(16 * lanes),
            "pm_we": Out(1), "pm_addr": Out(range(ROW_SLOTS * self.words_per_row)),
            "pm_data": Out(lanes),
            "busy": Out(1), "cycles": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        g_ = self.geom
        P = self.lanes
        d = g_.dim_bits
        rl = row_layout(g_)

        m.submodules.outq = outq = SyncFIFOBuffered(width=rl.size, depth=ROW_SLOTS)
        lanes = [EorsLane(self.params) for _ in range(P)]
        for i, lane in enumerate(lanes):
            m.submodules[f"lane{i}"] = lane
        lat = lanes[0].latency

        # --- issue
        have = Signal()
        row = Signal(rl)
        i = Signal(g_.a_bits + 1)
        grp = Signal(d)
        gK = Signal(d + 2)
        slot = Signal(range(ROW_SLOTS))
        inflight = Signal(range(ROW_SLOTS + 1))
        groups_last = Signal(d)
        m.d.comb += groups_last.eq((self.n - 1) >> exact_log2(P))

        accept = self.enable & ~have & (inflight < ROW_SLOTS)
        with m.If(self.enable):
            m.d.comb += [self.rows_in.ready.eq(accept),
                         self.rows_out.valid.eq(outq.r_rdy), self.rows_out.payload.eq(outq.r_data),
                         outq.r_en.eq(self.rows_out.ready)]
        with m.Else():
            # not an EORS task: the speculator is a wire
            m.d.comb += [self.rows_out.valid.eq(self.rows_in.valid),
                         self.rows_out.payload.eq(self.rows_in.payload),
                         self.rows_in.ready.eq(self.rows_out.ready)]
        took = self.rows_in.valid & accept
        with m.If(took):
            m.d.sync += [have.eq(1), row.eq(self.rows_in.payload), i.eq(self.rows_in.payload.start),
                         grp.eq(0), gK.eq(0)]

        first = i == row.start
        term = have & (i != row.end)
        last = have & (i + 1 >= row.end)
        row_last = last & (grp == groups_last)
        with m.If(have):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(last):
                m.d.sync += [i.eq(row.start), grp.eq(grp + 1), gK.eq(gK + self.k)]
                with m.If(row_last):
                    m.d.sync += [have.eq(0), slot.eq(Mux(slot == ROW_SLOTS - 1, 0, slot + 1))]
            with m.Else():
                m.d.sync += i.eq(i + 1)
        m.d.sync += inflight.eq(inflight + took - (self.row_done & self.enable))
        m.d.comb += self.acomp_addr.eq(i)

        ctl = data.StructLayout({"valid": 1, "term": 1, "first": 1, "last": 1, "row_last": 1,
                                 "grp": d, "gK": d + 2, "slot": range(ROW_SLOTS), "row": rl})
        c0 = Signal(ctl)
        m.d.comb += [c0.valid.eq(have), c0.term.eq(term), c0.first.eq(have & first),
                     c0.last.eq(last), c0.row_last.eq(row_last), c0.grp.eq(grp), c0.gK.eq(gK),
                     c0.slot.eq(slot), c0.row.eq(row)]
        c = [c0] + [Signal(ctl, name=f"c{j}") for j in range(1, 5)]
        for j in range(1, 5):
            m.d.sync += c[j].eq(c[j - 1])
        # stage 2: compressed entry registered; weight and bias words addressed
        e2 = Signal(entry_layout(g_))
        m.d.sync += e2.eq(self.acomp_data)
        m.d.comb += [self.bw_addr.eq(c[2].gK + e2.boff),
                     self.bias_addr.eq(self.bias_word + c[2].grp)]
        a3, a4 = Signal(16), Signal(16)
        bw4, bias4 = Signal(16 * P), Signal(16 * P)
        m.d.sync += [a3.eq(e2.a), a4.eq(a3), bw4.eq(self.bw_data), bias4.eq(self.bias_data)]
        c4 = c[4]
        for p, lane in enumerate(lanes):
            m.d.comb += [lane.valid.eq(c4.term), lane.x.eq(a4), lane.w.eq(bw4[16 * p:16 * (p + 1)]),
                         lane.first.eq(c4.first), lane.last.eq(c4.valid & c4.last),
                         lane.bias.eq(bias4[16 * p:16 * (p + 1)])]
            with m.If(~self.bias):
                m.d.comb += lane.bias.eq(0)

        # --- results: the group's address and row travel beside the lanes
        tail = [c4]
        for j in range(lat):
            s = Signal(ctl, name=f"r{j}")
            m.d.sync += s.eq(tail[-1])
            tail.append(s)
        r = tail[-1]
        done = r.valid & r.last
        m.d.comb += [self.pm_we.eq(done),
                     self.pm_addr.eq(r.slot * self.words_per_row + r.grp),
                     self.pm_data.eq(Cat(*[lane.live for lane in lanes]))]
        m.d.comb += [outq.w_en.eq(done & r.row_last), outq.w_data.eq(r.row)]

        busy = have | outq.r_rdy | (inflight != 0)
        for s in c[1:] + tail[1:]:
            busy |= s.valid
        m.d.comb += self.busy.eq(busy)
        # last: a new task's start overrides every other update
        with m.If(self.start):
            m.d.sync += [have.eq(0), slot.eq(0), inflight.eq(0), self.cycles.eq(0)]
        return m

