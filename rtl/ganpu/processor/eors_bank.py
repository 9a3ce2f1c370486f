"""The EORS calibration counter bank: every finished task's four self-calibration
counters added into a slot the host reads as CSRs (``docs/memory-map.md``,
``docs/eors.md``)."""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import data
from amaranth.lib.wiring import In, Out

from ..core.config import check_type
from ..core.model import EORS_COUNTERS
from .config import ProcessorConfig, ProcessorComponent
from .program import EORS_SLOTS, EORS_SLOT_BITS

__all__ = ["EorsBank", "bank_layout"]


def bank_layout():
    """``EORS_SLOTS`` slots of four 32-bit counters (:data:`ganpu.core.model.EORS_COUNTERS`
    order: live, false_live, sampled, false_zero)."""
    return data.ArrayLayout(data.ArrayLayout(32, len(EORS_COUNTERS)), EORS_SLOTS)


class EorsBank(ProcessorComponent):
    """Adds each core's EORS counters (its task port's ``eors_*``, valid when ``busy``
    falls) into slot ``slot[c]`` of the bank (the record's ``eors_slot``), modulo 2**32.

    When core ``c``'s ``busy`` falls, its four counters and its slot are latched
    (pending); each cycle the lowest-numbered pending core is added into its slot. So a
    task's counts are in ``bank`` at most ``cfg.cores + 1`` cycles after its ``busy``
    fell; the contract is that a core's ``busy`` falls at most once in ``cfg.cores``
    cycles, which the scheduler guarantees (between two tasks of a core lie a store job,
    a dispatch and a load job, each longer than that). A task that is not an EORS task
    shows 0 counters and adds nothing. ``clear`` (CTRL bit 3) empties the bank; a count
    added in the same cycle is kept (bank = 0 + count).

    Throughput: one core's counts per cycle. Built only when the cores sample
    (``cfg.core.eors_sample_log2`` > 0): without sampling there are no false zeros to
    measure and the config keeps its fabric.

    Ports
    -----
    busy : In(cfg.cores)                 each core's task port ``busy``
    counts : In(ArrayLayout(ArrayLayout(mask_bits + 1, 4), cfg.cores))   each core's counters
    slot : In(ArrayLayout(EORS_SLOT_BITS, cfg.cores))   the slot of each core's task
    clear : In(1)
    bank : Out(bank_layout())
    """

    @property
    def latency(self):
        """Cycles from the cycle ``busy`` is seen low to the counts in ``bank`` (worst case)."""
        return self.cfg.cores + 1

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        C, cw = cfg.cores, cfg.core.geom.mask_bits + 1
        super().__init__({
            "busy": In(C),
            "counts": In(data.ArrayLayout(data.ArrayLayout(cw, len(EORS_COUNTERS)), C)),
            "slot": In(data.ArrayLayout(EORS_SLOT_BITS, C)),
            "clear": In(1),
            "bank": Out(bank_layout()),
        })

    @staticmethod
    def model(bank, slot, counts):
        """The bank (list of slots, each a list of four ints) after adding ``counts``
        (four ints) into ``slot``, modulo 2**32."""
        out = [list(s) for s in bank]
        out[slot] = [(a + b) & 0xFFFFFFFF for a, b in zip(out[slot], counts)]
        return out

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        C, cw, J = cfg.cores, cfg.core.geom.mask_bits + 1, len(EORS_COUNTERS)
        was_busy = Signal(C)
        m.d.sync += was_busy.eq(self.busy)
        pend = Signal(C)
        pslot = Signal(data.ArrayLayout(EORS_SLOT_BITS, C))
        pcnt = Signal(data.ArrayLayout(data.ArrayLayout(cw, J), C))

        # the lowest pending core is served this cycle
        sel_valid = Signal()
        sel_slot = Signal(EORS_SLOT_BITS)
        sel_cnt = Signal(data.ArrayLayout(cw, J))
        served = Signal(C)
        for c in reversed(range(C)):
            with m.If(pend[c]):
                m.d.comb += [sel_valid.eq(1), sel_slot.eq(pslot[c]), sel_cnt.eq(pcnt[c]),
                             served.eq(1 << c)]
        for c in range(C):
            with m.If(served[c]):
                m.d.sync += pend[c].eq(0)
            with m.If(was_busy[c] & ~self.busy[c]):
                m.d.sync += [pend[c].eq(1), pslot[c].eq(self.slot[c]), pcnt[c].eq(self.counts[c])]

        for s in range(EORS_SLOTS):
            hit = sel_valid & (sel_slot == s)
            for j in range(J):
                cur = self.bank[s][j]
                m.d.sync += cur.eq(Mux(self.clear, 0, cur) + Mux(hit, sel_cnt[j], 0))
        return m
