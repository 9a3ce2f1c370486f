"""The program checker: every record is checked before any task runs
(``docs/processor.md``)."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..core.config import check_type
from ..core.descriptor import Op, Act, Error, DescriptorChecker, descriptor_layout
from .config import ProcessorConfig, ProcessorComponent
from .program import TaskKind, ProgramError, task_layout, update_layout
from .task_table import table_read_signature

__all__ = ["ProgramChecker", "CheckPort", "derived_descriptor"]


class CheckPort(wiring.Signature):
    """Start a program check and read its verdict (driver's view).

    ``start`` is a one-cycle pulse; ``done`` pulses once when the verdict (``error``,
    ``task``, ``core_error``) is valid; they hold until the next ``start``.
    """

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        super().__init__({
            "start": Out(1), "ntasks": Out(16),
            "done": In(1), "error": In(ProgramError), "task": In(cfg.program_bits),
            "core_error": In(Error),
        })

    def __eq__(self, other):
        return type(other) is CheckPort and self.cfg == other.cfg


def derived_descriptor(m, rec, geom, rows=None, row0=None):
    """Drive a ``descriptor_layout(geom)`` value from record view ``rec``: operands
    contiguous in the core's buffers from 0, ``rows`` rows from row ``row0`` (the
    sampling key ``eors_key + row0``; :func:`ganpu.processor.model.core_descriptor`).
    Returns the signal."""
    desc = Signal(descriptor_layout(geom))
    m.d.comb += [desc.op.eq(rec.op), desc.act.eq(rec.act), desc.slope.eq(rec.slope),
                 desc.use_mask.eq(rec.use_mask), desc.bias.eq(rec.bias), desc.eors.eq(rec.eors),
                 desc.m.eq(rec.m if rows is None else rows), desc.n.eq(rec.n), desc.k.eq(rec.k),
                 desc.a_sm.eq(rec.k), desc.a_sk.eq(1), desc.b_sn.eq(rec.k), desc.b_sk.eq(1),
                 desc.o_sm.eq(rec.n), desc.o_sn.eq(1), desc.eors_rel.eq(rec.eors_rel),
                 desc.eors_key.eq(rec.eors_key if row0 is None else rec.eors_key + row0)]
    return desc


def reads_mask_in(rec):
    """The core reads MASK_IN (as :func:`ganpu.processor.model.reads_mask_in`)."""
    op = rec.op.as_value()
    return ((op == Op.FP.value) & rec.use_mask) | \
        ((op == Op.BP.value) & (rec.act.as_value() != Act.IDENTITY.value))


class ProgramChecker(ProcessorComponent):
    """Checks records ``0 .. ntasks-1`` in order and reports the first failure, with the
    rules and order of :func:`ganpu.processor.model.check_program`: EMPTY (``ntasks`` 0
    or beyond the table), then per record BAD_KIND, BAD_DEP (a valid dependency on the
    record itself or a later one), for GEMM records GBUF_RANGE (the last word of A, B,
    OUT and, when used, BIAS, MASK_IN, MASK_OUT at or beyond ``cfg.gbuf_depth``;
    skipped when a dimension is 0) and CORE (the core's
    :class:`~ganpu.core.descriptor.DescriptorChecker` on the derived descriptor for the
    full M, its code in ``core_error``); for UPDATE records COUNT (``count`` 0) and
    GBUF_RANGE (the last word of the masters, momenta, gradients or working copies at
    or beyond ``cfg.gbuf_depth``).

    Latency: ``DescriptorChecker.latency + 3`` cycles per record (fetch, latch, check),
    plus one for the verdict; the products are registered before the sums and the
    comparisons (DSP-friendly).

    Ports
    -----
    check : In(CheckPort(cfg))
    table : In(table_read_signature(cfg))    the task table's checker read port
    """

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        super().__init__({"check": In(CheckPort(cfg)), "table": In(table_read_signature(cfg))})

    #: cycles per record (the cycle model's ``CHECK`` is this one definition)
    latency = DescriptorChecker.latency + 3

    @staticmethod
    def model(cfg, records):
        """``(ProgramError, task, core Error)`` (:func:`ganpu.processor.model.check_program`)."""
        from .model import check_program
        return check_program(cfg, records)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        geom = cfg.core.geom
        layout = task_layout(cfg)
        chk = self.check
        m.submodules.core_check = dchk = DescriptorChecker(cfg.core)

        t = Signal(cfg.program_bits + 1)
        rec = Signal(layout)
        m.d.comb += self.table.addr.eq(t)
        desc = derived_descriptor(m, rec, geom)
        m.d.comb += dchk.desc.eq(desc)

        # GBUF ranges: registered products, registered sums, registered comparisons
        d, g = geom.dim_bits, cfg.gbuf_bits
        w = max(d + g, 2 * d) + 2
        m1, n1, k1 = rec.m - 1, rec.n - 1, rec.k - 1
        prods = {}
        for name, x, s in [("a0", m1, rec.a.s0), ("a1", k1, rec.a.s1), ("b0", n1, rec.b.s0),
                           ("b1", k1, rec.b.s1), ("o0", m1, rec.out.s0), ("o1", n1, rec.out.s1),
                           ("mn", rec.m, rec.n)]:
            prods[name] = Signal(w, name=f"p_{name}")
            m.d.sync += prods[name].eq(x * s)
        lasts = {
            "a": rec.a.base + prods["a0"] + prods["a1"],
            "b": rec.b.base + prods["b0"] + prods["b1"],
            "out": rec.out.base + prods["o0"] + prods["o1"],
            "bias": rec.bias_base + n1,
            "mask_in": rec.mask_in_base + prods["mn"] - 1,
            "mask_out": rec.mask_out_base + prods["mn"] - 1,
        }
        used = {"a": 1, "b": 1, "out": 1, "bias": rec.bias, "mask_in": reads_mask_in(rec),
                "mask_out": rec.store_mask}
        over = 0
        for name, last in lasts.items():
            s = Signal(w, name=f"last_{name}")
            m.d.sync += s.eq(last)
            over = over | (used[name] & (s >= cfg.gbuf_depth))
        range_err = Signal()
        m.d.sync += range_err.eq(over & (rec.m != 0) & (rec.n != 0) & (rec.k != 0))
        # an UPDATE record: the same bits read with the update's fields
        ulayout = update_layout(cfg)
        urec = ulayout(rec.as_value()[:ulayout.size])
        c = urec.count
        uover = 0
        for name, last in [("w", urec.w_base + 2 * c - 1), ("v", urec.v_base + 2 * c - 1),
                           ("g", urec.g_base + c - 1), ("w16", urec.w16_base + c - 1)]:
            s = Signal(max(g, 24) + 2, name=f"last_u{name}")
            m.d.sync += s.eq(last)
            uover = uover | (s >= cfg.gbuf_depth)
        update = rec.kind == TaskKind.UPDATE

        bad_kind = rec.kind.as_value() > max(k.value for k in TaskKind)
        bad_dep = 0
        for i in range(cfg.deps):
            bad_dep = bad_dep | (rec.deps[i].valid & (rec.deps[i].index >= t))
        gemm = rec.kind == TaskKind.GEMM

        m.d.sync += chk.done.eq(0)

        def finish(error, core_error=Error.OK, task=t):
            m.d.sync += [chk.done.eq(1), chk.error.eq(error), chk.task.eq(task),
                         chk.core_error.eq(core_error)]
            m.next = "Idle"

        with m.FSM():
            with m.State("Idle"):
                with m.If(chk.start):
                    m.d.sync += t.eq(0)
                    with m.If((chk.ntasks == 0) | (chk.ntasks > cfg.program_depth)):
                        m.d.sync += [chk.done.eq(1), chk.error.eq(ProgramError.EMPTY), chk.task.eq(0),
                                     chk.core_error.eq(Error.OK)]
                    with m.Else():
                        m.next = "Fetch"
            with m.State("Fetch"):
                m.next = "Latch"
            with m.State("Latch"):
                m.d.sync += rec.eq(self.table.data[:layout.size])
                m.next = "Check"
            with m.State("Check"):
                m.d.comb += dchk.start.eq(1)
                m.next = "Wait"
            with m.State("Wait"):
                with m.If(dchk.done):
                    with m.If(bad_kind):
                        finish(ProgramError.BAD_KIND)
                    with m.Elif(bad_dep):
                        finish(ProgramError.BAD_DEP)
                    with m.Elif(update & (c == 0)):
                        finish(ProgramError.COUNT)
                    with m.Elif((gemm & range_err) | (update & uover)):
                        finish(ProgramError.GBUF_RANGE)
                    with m.Elif(gemm & (dchk.error != Error.OK)):
                        finish(ProgramError.CORE, dchk.error)
                    with m.Elif(t + 1 == chk.ntasks):
                        m.d.sync += t.eq(0)
                        finish(ProgramError.OK, task=0)
                    with m.Else():
                        m.d.sync += t.eq(t + 1)
                        m.next = "Fetch"
        return m
