"""The update engine: an UPDATE record's data movement around the update unit
(``docs/update.md``)."""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ..core.config import check_type
from .config import ProcessorConfig, ProcessorComponent
from .gbuf import dma_read_signature, dma_write_signature
from .program import update_layout
from .update import UpdateUnit, param_layout, result_layout

__all__ = ["UpdateEngine", "UpdatePort"]


class UpdatePort(wiring.Signature):
    """Start an UPDATE record and see it finish (the scheduler's view).

    ``start`` is a one-cycle pulse that hands over ``rec`` (an :func:`update_layout`
    view, read in that cycle only); ``busy`` is high from the cycle after ``start`` to
    the ``done`` pulse, which comes the cycle after the last word is written.
    """

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        super().__init__({"start": Out(1), "rec": Out(update_layout(cfg)),
                          "busy": In(1), "done": In(1)})

    def __eq__(self, other):
        return type(other) is UpdatePort and self.cfg == other.cfg


class UpdateEngine(ProcessorComponent):
    """Streams ``count`` parameters of an UPDATE record from the GBUF through an
    :class:`~ganpu.processor.update.UpdateUnit` and writes the results back, on the
    GBUF's DMA ports (``W = cfg.core.host_words`` consecutive words per access, at any
    address, ``docs/processor.md``).

    Parameter ``i`` is the master ``w`` (low and high half at ``w_base + 2i`` and
    ``+ 1``), the momentum ``v`` likewise at ``v_base + 2i`` and the gradient at
    ``g_base + i``; the engine writes the new master and momentum over them and the
    binary16 working copy at ``w16_base + i``. It works on groups of
    :meth:`group` ``(W)`` = ``P = max(1, W // 2)`` parameters: a group is ``R`` reads of
    ``W`` words (the masters' ``2P`` words, the momenta's, the gradients' ``P``: three
    reads for ``W >= 2``, five of one word for ``W = 1``), then ``P`` parameters into the
    unit one per cycle, then ``R`` writes (masters, momenta, binary16 copies; the
    per-word enables keep a last, partial group inside its regions). Reads, the unit and
    writes overlap: the reads of the next group go on while the unit takes this one
    (a one-group buffer on each side of the unit), so a group takes
    ``T = max(R, P)`` cycles: 1 cycle per parameter at ``W = 8``, 1.5 at ``W = 4``,
    3 at ``W = 2``, 5 at ``W = 1``. The hyperparameters are held for the whole record
    (the unit reads them while parameters are in its pipeline). The record's four
    regions must not overlap one another (the order between one group's writes and a
    later group's reads is not specified); the compiler allocates them apart. Reads
    may run up to ``W - 1`` words past a region (their words are dropped).

    Latency: ``done`` pulses :meth:`cycles` ``(count, W)`` cycles after ``start``. While
    ``busy`` the engine owns the GBUF ports it is given (the processor hands it the
    DMA's ports; the scheduler starts it only while the DMA is idle and gives the DMA
    no job until ``done``).

    Ports
    -----
    job : In(UpdatePort(cfg))
    gbuf_rd : In(dma_read_signature(cfg))    driver side, ``16 W`` bits
    gbuf_wr : In(dma_write_signature(cfg))   driver side, one enable per word
    """

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        super().__init__({
            "job": In(UpdatePort(cfg)),
            "gbuf_rd": In(dma_read_signature(cfg)),
            "gbuf_wr": In(dma_write_signature(cfg)),
        })

    @staticmethod
    def group(words):
        """Parameters per group on a ``words``-word GBUF port."""
        return max(1, words // 2)

    @staticmethod
    def accesses(words):
        """GBUF accesses per group each way (reads, and writes) on a ``words``-word port."""
        p = UpdateEngine.group(words)
        return 2 * -(-2 * p // words) + 1

    @staticmethod
    def cycles(count, words=1):
        """Cycles from ``start`` to ``done`` for ``count`` parameters on a ``words``-word
        GBUF port: ``G = ceil(count / P)`` groups, one every ``T = max(R, P)`` cycles;
        the last group's ``n`` parameters through the unit (``latency``) once its
        results are in, or, after another group, once the writes of that group are
        done (``P + R - T`` cycles after the last group's first), then its ``R`` writes.
        ``R`` reads and 3 cycles of hand-over before the first parameter enters the unit,
        and ``done`` the cycle after the last write, make the rest."""
        p, r = UpdateEngine.group(words), UpdateEngine.accesses(words)
        t = max(r, p)
        groups = -(-count // p)
        last = count - (groups - 1) * p
        wait = last if groups == 1 else max(last, p + r - t)
        return (groups - 1) * t + wait + 2 * r + UpdateUnit.latency + 3

    @staticmethod
    def model(cfg, rec, gbuf):
        """Transaction-level model: ``gbuf`` (numpy words) after UPDATE record ``rec``
        (a dict of :func:`update_layout` fields), updated in place
        (:func:`ganpu.processor.model.run_update`)."""
        from .model import normalize, run_update
        run_update(normalize(cfg, dict(rec, kind=2)), gbuf)
        return gbuf

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        g = cfg.gbuf_bits
        W = cfg.core.host_words
        P = self.group(W)
        chunks = -(-2 * P // W)        # accesses for a group's masters (and momenta)
        R = self.accesses(W)
        job = self.job
        rd, wr = self.gbuf_rd, self.gbuf_wr
        m.submodules.unit = unit = UpdateUnit()

        rec = Signal(update_layout(cfg))
        m.d.comb += [unit.hyper.lr.eq(rec.lr), unit.hyper.mu.eq(rec.mu),
                     unit.hyper.inv_scale.eq(rec.inv_scale)]
        busy = Signal()
        m.d.comb += job.busy.eq(busy)
        m.d.sync += job.done.eq(0)

        # --- read side: phases 0 .. R-1 issue the group's reads (masters, momenta,
        # gradients last); phase R offers the group to the feed buffer with the
        # gradients taken straight from the read port (its address held, so its data
        # stays), and the next group's first read goes out in the cycle it is taken
        rd_left = Signal(24)            # parameters still to read
        ph = Signal(range(R + 2), init=R + 1)   # R + 1: nothing left to read
        wa, va, ga = Signal(g), Signal(g), Signal(g)
        dph = Signal(range(R))          # the phase whose data the read port shows
        dv = Signal()
        wbuf, vbuf = Signal(32 * P), Signal(32 * P)
        m.d.comb += rd.en.eq(1)
        m.d.sync += dv.eq(0)
        sources = [(wbuf, k) for k in range(chunks)] + [(vbuf, k) for k in range(chunks)]
        with m.If(dv):
            with m.Switch(dph):
                for p, (buf, k) in enumerate(sources):
                    with m.Case(p):
                        lo = 16 * W * k
                        width = min(16 * W, buf.shape().width - lo)
                        m.d.sync += buf[lo:lo + width].eq(rd.data[:width])
        addrs = [wa + W * k for k in range(chunks)] + [va + W * k for k in range(chunks)] + [ga]

        # the feed buffer: slot 0 goes to the unit; a taken parameter shifts the rest down
        feed = Signal(data.ArrayLayout(param_layout(), P))
        fleft = Signal(range(P + 1))
        take = Signal()
        m.d.comb += [unit.i.valid.eq(fleft != 0), unit.i.payload.eq(feed[0]),
                     take.eq(unit.i.valid & unit.i.ready)]
        with m.If(take):
            m.d.sync += fleft.eq(fleft - 1)
            for j in range(P - 1):
                m.d.sync += feed[j].eq(feed[j + 1])
        feed_free = (fleft == 0) | ((fleft == 1) & take)
        n_rd = Signal(range(P + 1))
        m.d.comb += n_rd.eq(Mux(rd_left < P, rd_left, P))

        with m.Switch(ph):
            for p, addr in enumerate(addrs):
                with m.Case(p):
                    m.d.comb += rd.addr.eq(addr)
                    m.d.sync += [dv.eq(1), dph.eq(p), ph.eq(p + 1)]
            with m.Case(R):
                m.d.comb += rd.addr.eq(ga)
                with m.If(feed_free):
                    for j in range(P):
                        m.d.sync += [feed[j].w.eq(wbuf[32 * j:32 * j + 32]),
                                     feed[j].v.eq(vbuf[32 * j:32 * j + 32]),
                                     feed[j].g.eq(rd.data[16 * j:16 * j + 16])]
                    m.d.sync += [fleft.eq(n_rd), rd_left.eq(rd_left - n_rd),
                                 wa.eq(wa + 2 * P), va.eq(va + 2 * P), ga.eq(ga + P)]
                    with m.If(rd_left == n_rd):
                        m.d.sync += ph.eq(R + 1)
                    with m.Else():
                        m.d.comb += rd.addr.eq(wa + 2 * P)
                        m.d.sync += [dv.eq(1), dph.eq(0), ph.eq(1)]

        # --- write side: results collect in ``col`` (one group) while the previous
        # group is written from ``held`` over R cycles
        col = Signal(data.ArrayLayout(result_layout(), P))
        held = Signal(data.ArrayLayout(result_layout(), P))
        cn = Signal(range(P + 1))       # results in ``col``
        hn = Signal(range(P + 1))       # results in ``held`` (0: the writer is idle)
        col_left = Signal(24)           # results still to come from the unit
        wr_left = Signal(24)            # results still to write
        wph = Signal(range(R))
        wwa, wva, w16a = Signal(g), Signal(g), Signal(g)
        last_phase = (hn != 0) & (wph == R - 1)
        full = (cn == P) | ((col_left == 0) & (cn != 0))
        xfer = full & ((hn == 0) | last_phase)
        m.d.comb += unit.o.ready.eq(busy & (col_left != 0) & ((cn != P) | xfer))
        with m.If(unit.o.valid & unit.o.ready):
            m.d.sync += [col_left.eq(col_left - 1), cn.eq(cn + 1)]
            for j in range(P):
                with m.If(cn == j):
                    m.d.sync += col[j].eq(unit.o.payload)

        words_w = Cat(*(held[j].w for j in range(P)))
        words_v = Cat(*(held[j].v for j in range(P)))
        words_16 = Cat(*(held[j].w16 for j in range(P)))
        writes = [(wwa + W * k, words_w, k, 2) for k in range(chunks)] + \
                 [(wva + W * k, words_v, k, 2) for k in range(chunks)] + [(w16a, words_16, 0, 1)]
        with m.If(hn != 0):
            with m.Switch(wph):
                for p, (addr, words, k, per) in enumerate(writes):
                    with m.Case(p):
                        lo = 16 * W * k
                        width = min(16 * W, words.shape().width - lo)
                        m.d.comb += [wr.addr.eq(addr), wr.data.eq(words[lo:lo + width])]
                        # lane l holds word W k + l of the group's (per x hn) words
                        m.d.comb += wr.en.eq(Cat(*((W * k + l) < per * hn for l in range(W))))
                        m.d.sync += wph.eq((p + 1) % R)
            with m.If(last_phase):
                m.d.sync += [hn.eq(0), wwa.eq(wwa + 2 * P), wva.eq(wva + 2 * P), w16a.eq(w16a + P),
                             wr_left.eq(wr_left - hn)]
                with m.If(wr_left == hn):
                    m.d.sync += [busy.eq(0), job.done.eq(1)]
        with m.If(xfer):
            m.d.sync += [held.eq(col), hn.eq(cn), cn.eq(unit.o.valid & unit.o.ready)]
            with m.If(unit.o.valid & unit.o.ready):
                m.d.sync += col[0].eq(unit.o.payload)

        with m.If(job.start):
            m.d.sync += [rec.eq(job.rec), busy.eq(1), ph.eq(0), wph.eq(0), cn.eq(0), hn.eq(0),
                         fleft.eq(0),
                         rd_left.eq(job.rec.count), col_left.eq(job.rec.count),
                         wr_left.eq(job.rec.count),
                         wa.eq(job.rec.w_base), va.eq(job.rec.v_base), ga.eq(job.rec.g_base),
                         wwa.eq(job.rec.w_base), wva.eq(job.rec.v_base), w16a.eq(job.rec.w16_base)]
        return m
