"""The host bus front end: one response per request, a named memory map
(``docs/processor.md``)."""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from ..core.config import check_type
from ..core.descriptor import Error
from .config import ProcessorConfig, ProcessorComponent
from .eors_bank import bank_layout
from .gbuf import Owner
from .program import (State, Policy, ProgramError, Region, Csr, bus_request_layout,
                      bus_response_layout, record_words, REGION_SHIFT, EORS_SLOTS, eors_csr)
from .task_table import table_read_signature

__all__ = ["BusFrontEnd", "status_layout", "control_layout", "csr_names", "samples"]


def status_layout(cfg):
    """What the CSRs read: the scheduler's and the DMA's state and counters."""
    return data.StructLayout({
        "state": State, "error": ProgramError, "error_task": cfg.program_bits,
        "error_core": Error, "paused_at": cfg.program_bits, "cycles": 32, "dma": 32,
        "done_tasks": 16, "core_busy": data.ArrayLayout(32, cfg.cores),
    })


def control_layout(cfg):
    """What CSR writes drive: CTRL pulses (one cycle) and the run's parameters."""
    return data.StructLayout({"start": 1, "resume": 1, "clear": 1, "policy": Policy,
                              "ntasks": 16, "clear_eors": 1})


def csr_names(cfg):
    """``{offset: name}`` of every readable CSR (CORE_BUSY<c>_LO/HI per core; with
    sampling cores, :func:`samples`, EORS<s>_<COUNTER>_LO/HI per calibration slot)."""
    from ..core.model import EORS_COUNTERS
    names = {c.value: c.name for c in Csr if c not in (Csr.CORE_BUSY, Csr.EORS)}
    for c in range(cfg.cores):
        names[Csr.CORE_BUSY.value + 2 * c] = f"CORE_BUSY{c}_LO"
        names[Csr.CORE_BUSY.value + 2 * c + 1] = f"CORE_BUSY{c}_HI"
    if samples(cfg):
        for s in range(EORS_SLOTS):
            for j, counter in enumerate(EORS_COUNTERS):
                for hi in (0, 1):
                    names[eors_csr(s, j, hi)] = f"EORS{s}_{counter.upper()}_{'HI' if hi else 'LO'}"
    return names


def samples(cfg):
    """The cores sample predicted zeros (``cfg.core.eors_sample_log2`` > 0): the
    processor then has the EORS calibration counter bank and its CSRs."""
    return cfg.core.eors_sample_log2 > 0


class BusFrontEnd(ProcessorComponent):
    """Decodes host requests (``bus_request_layout``) into GBUF, task table (PROGRAM)
    and CSR accesses and answers each with one response (``bus_response_layout``).

    A request is refused (``error`` = 1 in its response, nothing read or written, CSR
    BUS_ERROR set) when its address lies beyond its region (GBUF ``cfg.gbuf_depth``
    words, PROGRAM ``cfg.program_depth * record_words(cfg)`` words, CSR: an undefined
    register), when it writes a read-only CSR, or when it touches GBUF or PROGRAM, or
    writes POLICY or NTASKS, while the state is CHECKING or RUNNING (the program owns
    them then; PAUSED hands them to the host). CTRL writes are always taken: bit 0
    starts (taken by the scheduler in IDLE, DONE or ERROR), bit 1 resumes (in PAUSED),
    bit 2 clears BUS_ERROR, bit 3 clears the EORS counter bank.

    Latency: a request accepted at cycle t has its response valid at t + 2.
    Throughput one request per cycle while the host takes responses as they come.

    Ports
    -----
    req : In(stream.Signature(bus_request_layout()))
    resp : Out(stream.Signature(bus_response_layout()))
    gbuf_rd, gbuf_wr : the GBUF's bus ports (driver side)
    prog_rd, prog_wr : the task table's bus ports (driver side)
    status : In(status_layout(cfg))
    control : Out(control_layout(cfg))
    eors : In(bank_layout())   the EORS calibration counter bank (only when
                               :func:`samples`; CSRs EORS + 8s + 2j, LO/HI)
    bus_error : Out(1)    the sticky BUS_ERROR flag
    gbuf_owner : Out(Owner)   who the GBUF's port pair serves: DMA while CHECKING or
                              RUNNING (when this front end refuses GBUF accesses), else BUS
    """

    latency = 2

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        w = 16 * record_words(cfg)
        super().__init__({
            "req": In(stream.Signature(bus_request_layout())),
            "resp": Out(stream.Signature(bus_response_layout())),
            "gbuf_rd": In(ReadPort.Signature(addr_width=cfg.gbuf_bits, shape=16)),
            "gbuf_wr": In(WritePort.Signature(addr_width=cfg.gbuf_bits, shape=16)),
            "prog_rd": In(table_read_signature(cfg)),
            "prog_wr": In(WritePort.Signature(addr_width=cfg.program_bits, shape=w, granularity=16)),
            "status": In(status_layout(cfg)),
            "control": Out(control_layout(cfg)),
            "bus_error": Out(1),
            "gbuf_owner": Out(Owner),
            **({"eors": In(bank_layout())} if samples(cfg) else {}),
        })

    @staticmethod
    def model(cfg, state, region, offset, write):
        """Transaction-level model of the refusal rule: True when the access is refused."""
        busy = State(state) in (State.CHECKING, State.RUNNING)
        if region not in {r.value for r in Region} | set(Region):
            return True
        region = Region(region)
        if region == Region.GBUF:
            return busy or offset >= cfg.gbuf_depth
        if region == Region.PROGRAM:
            return busy or offset >= cfg.program_depth * record_words(cfg)
        if region == Region.CSR:
            if offset not in csr_names(cfg):
                return True
            if write:
                return offset not in (Csr.CTRL.value, Csr.POLICY.value, Csr.NTASKS.value) or \
                    (busy and offset != Csr.CTRL.value)
            return False
        return True

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        W = record_words(cfg)
        wb = (W - 1).bit_length()
        req = self.req.payload
        region = Signal(2)
        offset = Signal(REGION_SHIFT)
        m.d.comb += [region.eq(req.addr[REGION_SHIFT:]), offset.eq(req.addr[:REGION_SHIFT])]
        st = self.status
        busy = (st.state == State.CHECKING) | (st.state == State.RUNNING)
        m.d.comb += self.gbuf_owner.eq(Mux(busy, Owner.DMA, Owner.BUS))

        # CSR read values, by offset
        policy = Signal(Policy)
        ntasks = Signal(16)
        m.d.comb += [self.control.policy.eq(policy), self.control.ntasks.eq(ntasks)]
        csr = {Csr.CTRL: 0, Csr.POLICY: policy.as_value(), Csr.NTASKS: ntasks,
               Csr.STATE: st.state.as_value(), Csr.ERROR: st.error.as_value(),
               Csr.ERROR_TASK: st.error_task, Csr.ERROR_CORE: st.error_core.as_value(),
               Csr.PAUSED_AT: st.paused_at, Csr.BUS_ERROR: self.bus_error,
               Csr.CYCLES_LO: st.cycles[:16], Csr.CYCLES_HI: st.cycles[16:],
               Csr.DMA_LO: st.dma[:16], Csr.DMA_HI: st.dma[16:], Csr.DONE_TASKS: st.done_tasks}
        csr = {k.value: v for k, v in csr.items()}
        for c in range(cfg.cores):
            csr[Csr.CORE_BUSY.value + 2 * c] = st.core_busy[c][:16]
            csr[Csr.CORE_BUSY.value + 2 * c + 1] = st.core_busy[c][16:]
        if samples(cfg):
            for s in range(EORS_SLOTS):
                for j in range(len(self.eors[s])):
                    csr[eors_csr(s, j)] = self.eors[s][j][:16]
                    csr[eors_csr(s, j, True)] = self.eors[s][j][16:]
        csr_value = Signal(16)
        csr_known = Signal()
        with m.Switch(offset):
            for off, value in csr.items():
                with m.Case(off):
                    m.d.comb += [csr_value.eq(value), csr_known.eq(1)]
        writable = (offset == Csr.CTRL.value) | (((offset == Csr.POLICY.value) |
                                                  (offset == Csr.NTASKS.value)) & ~busy)

        refused = Signal()
        with m.Switch(region):
            with m.Case(Region.GBUF):
                m.d.comb += refused.eq(busy | (offset >= cfg.gbuf_depth))
            with m.Case(Region.PROGRAM):
                m.d.comb += refused.eq(busy | (offset >= cfg.program_depth * W))
            with m.Case(Region.CSR):
                m.d.comb += refused.eq(~csr_known | (req.write & ~writable))
            with m.Default():
                m.d.comb += refused.eq(1)

        # two-stage pipeline: a request accepted at t reads its memory at t (data at
        # t + 1, stage s1), and its response is registered at t + 1 (valid at t + 2).
        # The read ports are enabled only while a request can be accepted, so a
        # stalled s1 keeps its data.
        s1_valid = Signal()
        resp_free = ~self.resp.valid | self.resp.ready
        s1_moves = s1_valid & resp_free
        m.d.comb += self.req.ready.eq(~s1_valid | s1_moves)
        take = self.req.valid & self.req.ready
        ok = take & ~refused
        r_region, r_word, r_err, r_write = Signal(2), Signal(max(1, wb)), Signal(), Signal()
        r_csr = Signal(16)
        with m.If(take):
            m.d.sync += [r_region.eq(region), r_err.eq(refused), r_write.eq(req.write),
                         r_csr.eq(csr_value)]
            if wb:
                m.d.sync += r_word.eq(offset[:wb])
            with m.If(refused):
                m.d.sync += self.bus_error.eq(1)
        with m.If(take):
            m.d.sync += s1_valid.eq(1)
        with m.Elif(s1_moves):
            m.d.sync += s1_valid.eq(0)

        m.d.comb += [self.gbuf_rd.addr.eq(offset), self.prog_rd.addr.eq(offset[wb:]),
                     self.gbuf_rd.en.eq(self.req.ready), self.prog_rd.en.eq(self.req.ready),
                     self.gbuf_wr.addr.eq(offset), self.gbuf_wr.data.eq(req.data),
                     self.prog_wr.addr.eq(offset[wb:]), self.prog_wr.data.eq(req.data.replicate(W)),
                     self.gbuf_wr.en.eq(ok & req.write & (region == Region.GBUF))]
        with m.If(ok & req.write & (region == Region.PROGRAM)):
            m.d.comb += self.prog_wr.en.eq(1 << offset[:wb] if wb else 1)
        csr_w = ok & req.write & (region == Region.CSR)
        with m.If(csr_w & (offset == Csr.CTRL.value)):
            m.d.comb += [self.control.start.eq(req.data[0]), self.control.resume.eq(req.data[1]),
                         self.control.clear.eq(req.data[2]), self.control.clear_eors.eq(req.data[3])]
            with m.If(req.data[2]):
                m.d.sync += self.bus_error.eq(0)
        with m.If(csr_w & (offset == Csr.POLICY.value)):
            m.d.sync += policy.eq(req.data[:2])
        with m.If(csr_w & (offset == Csr.NTASKS.value)):
            m.d.sync += ntasks.eq(req.data)

        rdata = Signal(16)
        with m.Switch(r_region):
            with m.Case(Region.GBUF):
                m.d.comb += rdata.eq(self.gbuf_rd.data)
            with m.Case(Region.PROGRAM):
                m.d.comb += rdata.eq(self.prog_rd.data.word_select(r_word, 16))
            with m.Default():
                m.d.comb += rdata.eq(r_csr)
        with m.If(s1_moves):
            m.d.sync += [self.resp.valid.eq(1), self.resp.payload.error.eq(r_err),
                         self.resp.payload.data.eq(Mux(r_err | r_write, 0, rdata))]
        with m.Elif(self.resp.ready):
            m.d.sync += self.resp.valid.eq(0)
        return m
