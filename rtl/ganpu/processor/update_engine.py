"""The update engine: an UPDATE record's data movement around the update unit
(``docs/update.md``)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from ..core.config import check_type
from .config import ProcessorConfig, ProcessorComponent
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
    :class:`~ganpu.processor.update.UpdateUnit` and writes the results back.

    Per parameter ``i`` it reads five GBUF words (master ``w`` low and high half at
    ``w_base + 2i`` and ``+ 1``, momentum ``v`` likewise at ``v_base + 2i``, gradient at
    ``g_base + i``) on the read port, and writes five (new master, new momentum, binary16
    working copy at ``w16_base + i``) on the write port; reads of later parameters go on
    while earlier results are written. The hyperparameters are held for the whole
    record (the unit reads them while parameters are in its pipeline). The record's
    four regions must not overlap one another (the order between one parameter's
    writes and a later parameter's reads is not specified); the compiler allocates
    them apart.

    Throughput: :data:`~ganpu.processor.model.UPDATE_WORDS` = 5 cycles per parameter
    (one GBUF port each way, 16 bits wide). Latency: ``done`` pulses
    :meth:`cycles` ``(count)`` = ``5 * count + UpdateUnit.latency + 6`` cycles after
    ``start``. While ``busy`` the engine owns the GBUF ports it is given (the processor
    hands it the DMA's ports; the scheduler starts it only while the DMA is idle and
    gives the DMA no job until ``done``).

    Ports
    -----
    job : In(UpdatePort(cfg))
    gbuf_rd : In(ReadPort.Signature(addr_width=cfg.gbuf_bits, shape=16))   driver side
    gbuf_wr : In(WritePort.Signature(addr_width=cfg.gbuf_bits, shape=16))
    """

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        super().__init__({
            "job": In(UpdatePort(cfg)),
            "gbuf_rd": In(ReadPort.Signature(addr_width=cfg.gbuf_bits, shape=16)),
            "gbuf_wr": In(WritePort.Signature(addr_width=cfg.gbuf_bits, shape=16)),
        })

    @staticmethod
    def cycles(count):
        """Cycles from ``start`` to ``done`` for ``count`` parameters."""
        return 5 * count + UpdateUnit.latency + 6

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
        job = self.job
        m.submodules.unit = unit = UpdateUnit()

        rec = Signal(update_layout(cfg))
        m.d.comb += [unit.hyper.lr.eq(rec.lr), unit.hyper.mu.eq(rec.mu),
                     unit.hyper.inv_scale.eq(rec.inv_scale)]
        busy = Signal()
        m.d.comb += job.busy.eq(busy)
        m.d.sync += job.done.eq(0)

        # --- read side: phases 0..4 issue the five reads of a parameter, phase 5 offers
        # it to the unit (the gradient is the read port's data then); when the unit
        # takes it, phase 0 of the next parameter is issued in the same cycle
        rd_left = Signal(24)          # parameters still to read
        ph = Signal(range(7), init=6)  # 6: nothing left to read
        wa, va, ga = Signal(g), Signal(g), Signal(g)
        dph = Signal(range(5))        # phase whose data the read port shows this cycle
        dv = Signal()
        asm = Signal(param_layout())
        m.d.comb += self.gbuf_rd.en.eq(1)
        m.d.sync += dv.eq(0)
        with m.If(dv):
            with m.Switch(dph):
                for p, field in enumerate([asm.w[:16], asm.w[16:], asm.v[:16], asm.v[16:]]):
                    with m.Case(p):
                        m.d.sync += field.eq(self.gbuf_rd.data)
        m.d.comb += unit.i.payload.eq(asm)
        with m.Switch(ph):
            for p, addr in enumerate([wa, wa + 1, va, va + 1, ga]):
                with m.Case(p):
                    m.d.comb += self.gbuf_rd.addr.eq(addr)
                    m.d.sync += [dv.eq(1), dph.eq(p), ph.eq(p + 1)]
            with m.Case(5):
                m.d.comb += [unit.i.valid.eq(1), unit.i.payload.g.eq(self.gbuf_rd.data),
                             self.gbuf_rd.addr.eq(ga)]
                with m.If(unit.i.ready):
                    m.d.sync += [wa.eq(wa + 2), va.eq(va + 2), ga.eq(ga + 1), rd_left.eq(rd_left - 1)]
                    with m.If(rd_left == 1):
                        m.d.sync += ph.eq(6)
                    with m.Else():
                        m.d.comb += self.gbuf_rd.addr.eq(wa + 2)
                        m.d.sync += [dv.eq(1), dph.eq(0), ph.eq(1)]

        # --- write side: take a result, write its five words over five cycles
        wph = Signal(range(5))
        wr_left = Signal(24)
        wwa, wva, w16a = Signal(g), Signal(g), Signal(g)
        res = Signal(result_layout())
        wr = self.gbuf_wr
        with m.Switch(wph):
            with m.Case(0):
                m.d.comb += [unit.o.ready.eq(busy), wr.addr.eq(wwa), wr.data.eq(unit.o.payload.w[:16]),
                             wr.en.eq(busy & unit.o.valid)]
                with m.If(busy & unit.o.valid):
                    m.d.sync += [res.eq(unit.o.payload), wph.eq(1)]
            for p, (addr, word) in enumerate([(wwa + 1, res.w[16:]), (wva, res.v[:16]),
                                              (wva + 1, res.v[16:]), (w16a, res.w16)], start=1):
                with m.Case(p):
                    m.d.comb += [wr.addr.eq(addr), wr.data.eq(word), wr.en.eq(1)]
                    m.d.sync += wph.eq((p + 1) % 5)
                    if p == 4:
                        m.d.sync += [wwa.eq(wwa + 2), wva.eq(wva + 2), w16a.eq(w16a + 1),
                                     wr_left.eq(wr_left - 1)]
                        with m.If(wr_left == 1):
                            m.d.sync += [busy.eq(0), job.done.eq(1)]

        with m.If(job.start):
            m.d.sync += [rec.eq(job.rec), busy.eq(1), ph.eq(0), wph.eq(0),
                         rd_left.eq(job.rec.count), wr_left.eq(job.rec.count),
                         wa.eq(job.rec.w_base), va.eq(job.rec.v_base), ga.eq(job.rec.g_base),
                         wwa.eq(job.rec.w_base), wva.eq(job.rec.v_base), w16a.eq(job.rec.w16_base)]
        return m
