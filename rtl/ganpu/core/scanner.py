"""Output skipping: every output becomes a job for the lanes or a direct +0 write."""

from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

from .. import numerics
from ..arith.widen import Fp16ToFp32
from ..delay import delay_line
from .buffers import read_signature, write_signature
from .config import Buf, CoreConfig, check_type, CheckedComponent
from .descriptor import Op, Act, descriptor_layout
from .indexer import row_layout
from .speculator import ROW_SLOTS

__all__ = ["Scanner", "job_layout", "result_layout"]


def job_layout(geom):
    """One output to compute: its compressed A row, its B row and where it goes."""
    return data.StructLayout({
        "start": geom.a_bits + 1, "end": geom.a_bits + 1,
        "b_row": geom.dim_bits + 2, "init": 32,
        "o_addr": geom.out_bits, "mask_idx": geom.mask_bits, "mask_in": 1,
    })


def result_layout(geom):
    """One output on its way to the epilogue; ``computed = 0`` means write +0."""
    return data.StructLayout({
        "acc": 32, "o_addr": geom.out_bits, "mask_idx": geom.mask_bits,
        "mask_in": 1, "computed": 1,
    })


class Scanner(CheckedComponent):
    """Output skipping: turns every output (m, n) into a job or a direct +0 write.

    For each row record from the :class:`Indexer` it walks n = 0..N-1 (addresses by
    additions), reads the output's mask bit and bias, and emits either a job for the
    lanes or, for an output that is masked off (FP with a supplied mask; BP through
    ReLU with the stored mask), a result with ``computed = 0`` that the epilogue turns
    into +0 without any MAC. Outputs leave in (m, n) order on each stream.

    Timing: one output per cycle. An output issued at cycle t (its mask and bias
    read) enters the job or skip queue at t + :attr:`STAGES` (mask/bias read,
    register, lane select, widening) and is offered at t + :attr:`latency` when that
    queue is empty. Issue pauses while either queue could not hold every output in
    flight (judged from the levels one cycle earlier), so a stalled consumer never
    loses one. The descriptor's derived values (N - 1, the skip rule, the EORS and bias
    flags) are registered at ``start``. An EORS task (FP, ReLU, ``eors``)
    takes each output's mask bit from the speculator's store (``pm_rd``, row slot
    ``m mod ROW_SLOTS``, word ``n // P``, bit ``n mod P``) and also writes it to
    MASK_IN (``mask_wr``) so the host can read what was predicted. With sampling
    (``config.eors_sample_log2``) the store's words carry a second bit per output
    (bit ``P + n mod P``): a predicted-zero output the speculator sampled becomes a job
    all the same, with ``mask_in`` = 0 (its prediction), which the epilogue recognises:
    it writes +0 and counts the exact result (``docs/eors.md``, "Self-calibration").

    :meth:`model` gives the jobs and skips, in order, for a list of row records.

    Parameters
    ----------
    config : CoreConfig
        Geometry and ``eors_lanes`` (the width of a BIAS word and of a predicted word).

    Ports
    -----
    start : In(1); desc : In(descriptor_layout)   held until done
    rows : In(stream.Signature(row_layout))
    mask_rd : In(ReadPort.Signature)   MASK_IN, synchronous read
    bias_rd : In(ReadPort.Signature)   the wide BIAS buffer (one word = P biases)
    pm_rd : In(ReadPort.Signature)     the speculator's mask store (P bits a word; 2P
                                       with sampling: live bits, then sampled bits)
    mask_wr : In(WritePort.Signature)  predicted bit to MASK_IN (EORS)
    row_done : Out(1)                  last output of a row issued (frees a mask slot)
    jobs : Out(stream.Signature(job_layout))
    skips : Out(stream.Signature(result_layout))
    busy : Out(1)
    """

    QUEUE_DEPTH = 16
    STAGES = 4  # mask/bias read, registered, lane select (widening input), widened
    latency = STAGES + 2  # + the queue's write and output register

    @classmethod
    def check_parameters(cls, config):
        check_type("config", config, CoreConfig)

    def __init__(self, config):
        self.config = config
        geom = self.geom = config.geom
        self.eors_lanes = config.eors_lanes
        self.words_per_row = geom.depth("mask") // config.eors_lanes
        self.sampling = bool(config.eors_sample_log2)
        pm_bits = config.eors_lanes * (2 if self.sampling else 1)
        super().__init__({
            "start": In(1),
            "desc": In(descriptor_layout(geom)),
            "rows": In(stream.Signature(row_layout(geom))),
            "mask_rd": In(read_signature(config, Buf.MASK_IN)),
            "bias_rd": In(read_signature(config, Buf.BIAS)),
            "pm_rd": In(ReadPort.Signature(addr_width=ceil_log2(ROW_SLOTS * self.words_per_row),
                                           shape=pm_bits)),
            "mask_wr": In(write_signature(config, Buf.MASK_IN)),
            "row_done": Out(1),
            "jobs": Out(stream.Signature(job_layout(geom))),
            "skips": Out(stream.Signature(result_layout(geom))),
            "busy": Out(1),
        })

    @staticmethod
    def model(desc, rows, mask_in, bias, predicted=None, sampled=None):
        """``(jobs, skips)``: lists of dicts (``job_layout`` / ``result_layout`` fields)
        for row records ``rows`` (``(start, end)`` pairs), MASK_IN image ``mask_in``,
        BIAS image ``bias`` and, for an EORS task, the predicted (M, N) mask and the
        sampled (M, N) mask (predicted-zero outputs computed anyway; None: none)."""
        N = desc["n"]
        fp, bp = desc["op"] == Op.FP.value, desc["op"] == Op.BP.value
        eors = bool(desc["eors"]) and fp and desc["act"] == Act.RELU.value
        jobs, skips = [], []
        for mi, (start, end) in enumerate(rows):
            for ni in range(N):
                idx = mi * N + ni
                bit = int(predicted[mi, ni]) if eors else int(mask_in[idx])
                o_addr = desc["o_base"] + mi * desc["o_sm"] + ni * desc["o_sn"]
                skip = ((fp and (desc["use_mask"] or eors)) or
                        (bp and desc["act"] == Act.RELU.value)) and not bit
                if eors and sampled is not None and sampled[mi, ni]:
                    skip = False
                if skip:
                    skips.append(dict(acc=0, o_addr=o_addr, mask_idx=idx, mask_in=bit, computed=0))
                    continue
                if desc["bias"]:
                    init = int(numerics.widen(bias[desc["bias_base"] + ni]))
                else:
                    init = numerics.FP32_NEG_ZERO
                jobs.append(dict(start=start, end=end, b_row=desc["b_base"] + ni * desc["b_sn"],
                                 init=init, o_addr=o_addr, mask_idx=idx, mask_in=bit))
        return jobs, skips

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        d = g.dim_bits
        jl = job_layout(g)
        desc = self.desc
        # Descriptor-derived values are constant during a task: registered at start,
        # the comparisons and decodes below read flip-flops, not the descriptor's
        # subtractions and op/act decodes (they limited the core's clock).
        eors = Signal()
        skip_en = Signal()    # an output whose mask bit is clear is skipped
        bias_on = Signal()
        n_last = Signal(d)
        with m.If(self.start):
            eors_now = desc.eors & (desc.op == Op.FP) & (desc.act == Act.RELU)
            m.d.sync += [eors.eq(eors_now), bias_on.eq(desc.bias), n_last.eq(desc.n - 1),
                         skip_en.eq(((desc.op == Op.FP) & (desc.use_mask | eors_now)) |
                                    ((desc.op == Op.BP) & (desc.act == Act.RELU)))]

        m.submodules.jobq = jobq = SyncFIFOBuffered(width=jl.size, depth=self.QUEUE_DEPTH)
        m.submodules.skipq = skipq = SyncFIFOBuffered(width=result_layout(g).size,
                                                      depth=self.QUEUE_DEPTH)
        m.submodules.widen = widen = Fp16ToFp32()

        have_row = Signal()
        row = Signal(row_layout(g))
        ni = Signal(d)
        mleft = Signal(d + 1)
        b_row, o_row, o_addr = Signal(d + 2), Signal(d + 2), Signal(d + 2)
        mask_idx = Signal(2 * d)
        bias_addr = Signal(d + 1)
        # where the speculator left this output's predicted bit: row slot, word, bit
        rslot = Signal(range(ROW_SLOTS))
        pg = Signal(range(self.words_per_row))
        pp = Signal(range(self.eors_lanes))


        # An output in every stage plus the one being issued may still land in either
        # queue: only issue while both have room for all of them. The test is
        # registered (the queue levels' adders and compares ahead of the issue fan-out
        # limited the clock), so it sees last cycle's levels: one more output may have
        # entered each queue since, and one more slot is kept free.
        inflight = self.STAGES + 1
        room = Signal()
        m.d.sync += room.eq((jobq.level < self.QUEUE_DEPTH - inflight - 1) &
                            (skipq.level < self.QUEUE_DEPTH - inflight - 1))
        issue = Signal()
        m.d.comb += issue.eq(have_row & room)
        m.d.comb += self.rows.ready.eq(~have_row & (mleft != 0))
        with m.If(self.rows.valid & self.rows.ready):
            m.d.sync += [have_row.eq(1), row.eq(self.rows.payload)]

        pm_bits = self.eors_lanes * (2 if self.sampling else 1)
        lp = exact_log2(self.eors_lanes)
        m.d.comb += [self.mask_rd.addr.eq(mask_idx), self.bias_rd.addr.eq(bias_addr >> lp),
                     self.pm_rd.addr.eq(rslot * self.words_per_row + pg)]
        m.d.comb += self.row_done.eq(issue & (ni == n_last))
        with m.If(issue):
            m.d.sync += [mask_idx.eq(mask_idx + 1)]
            with m.If(pp == self.eors_lanes - 1):
                m.d.sync += [pp.eq(0), pg.eq(pg + 1)]
            with m.Else():
                m.d.sync += pp.eq(pp + 1)
            with m.If(ni == n_last):
                m.d.sync += [pg.eq(0), pp.eq(0), rslot.eq(Mux(rslot == ROW_SLOTS - 1, 0, rslot + 1))]
                m.d.sync += [ni.eq(0), have_row.eq(0), mleft.eq(mleft - 1),
                             b_row.eq(desc.b_base), bias_addr.eq(desc.bias_base),
                             o_row.eq(o_row + desc.o_sm), o_addr.eq(o_row + desc.o_sm)]
            with m.Else():
                m.d.sync += [ni.eq(ni + 1), b_row.eq(b_row + desc.b_sn),
                             bias_addr.eq(bias_addr + 1), o_addr.eq(o_addr + desc.o_sn)]

        # stage 1: mask and bias being read
        j1 = Signal(jl)
        v1 = Signal()
        _, pp1, pp2 = delay_line(m, pp, 2, name="pp")
        _, lane1, lane2 = delay_line(m, bias_addr[:lp], 2, name="lane")
        m.d.sync += [v1.eq(issue), j1.start.eq(row.start), j1.end.eq(row.end), j1.b_row.eq(b_row),
                     j1.o_addr.eq(o_addr), j1.mask_idx.eq(mask_idx)]
        # stage 2: mask and bias registered (a block RAM's clock-to-out leaves no room
        # for the widening's normalization in the same cycle)
        j2 = Signal(jl)
        v2 = Signal()
        bias2 = Signal(16 * self.eors_lanes)
        # the predicted word is registered whole and its bit picked a stage later, for
        # the same clock-to-out reason as the bias
        pm2 = Signal(pm_bits)
        m.d.sync += [v2.eq(v1), j2.eq(j1), j2.mask_in.eq(self.mask_rd.data),
                     bias2.eq(self.bias_rd.data), pm2.eq(self.pm_rd.data)]
        # stage 3: bias widened (Fp16ToFp32 is registered); the mask decides
        j3 = Signal(jl)
        v3 = Signal()
        m.d.sync += [v3.eq(v2), j3.eq(j2),
                     j3.mask_in.eq(Mux(eors, pm2.bit_select(pp2, 1), j2.mask_in))]
        # a sampled output (predicted zero) is computed all the same
        s3, s4 = Signal(), Signal()
        if self.sampling:
            m.d.sync += [s3.eq(eors & pm2.bit_select(pp2 + self.eors_lanes, 1)), s4.eq(s3)]
        # The prediction is also written to MASK_IN (unused in an EORS task), so the
        # host can read back exactly what the speculator decided.
        m.d.comb += [self.mask_wr.en.eq(v3 & eors), self.mask_wr.addr.eq(j3.mask_idx),
                     self.mask_wr.data.eq(j3.mask_in)]
        # The whole word is registered as it leaves the block RAM, the lane's bias is
        # picked at stage 3 and widened at stage 4: the select and the widening's
        # normalization do not both fit in one cycle.
        bias3 = Signal(16)
        m.d.sync += bias3.eq(bias2.word_select(lane2, 16))
        m.d.comb += widen.i.eq(bias3)
        # stage 4: the job meets its widened bias
        j4 = Signal(jl)
        v4 = Signal()
        m.d.sync += [v4.eq(v3), j4.eq(j3)]
        init = Signal(32)
        m.d.comb += init.eq(widen.o)
        with m.If(~bias_on):
            m.d.comb += init.eq(numerics.FP32_NEG_ZERO)

        skip = skip_en & ~j4.mask_in & ~s4
        job = Signal(jl)
        m.d.comb += [job.eq(j4), job.init.eq(init)]
        res = Signal(result_layout(g))
        m.d.comb += [res.o_addr.eq(j4.o_addr), res.mask_idx.eq(j4.mask_idx),
                     res.mask_in.eq(j4.mask_in), res.computed.eq(0)]
        jw, sw = jobq.w_stream, skipq.w_stream
        m.d.comb += [jw.valid.eq(v4 & ~skip), jw.payload.eq(job),
                     sw.valid.eq(v4 & skip), sw.payload.eq(res)]
        wiring.connect(m, jobq.r_stream, wiring.flipped(self.jobs))
        wiring.connect(m, skipq.r_stream, wiring.flipped(self.skips))
        m.d.comb += self.busy.eq(have_row | (mleft != 0) | v1 | v2 | v3 | v4 | jobq.r_rdy | skipq.r_rdy)
        # last, so a new task's start overrides every other update of these registers
        with m.If(self.start):
            m.d.sync += [have_row.eq(0), ni.eq(0), mleft.eq(desc.m), b_row.eq(desc.b_base),
                         rslot.eq(0), pg.eq(0), pp.eq(0),
                         o_row.eq(desc.o_base), o_addr.eq(desc.o_base), mask_idx.eq(0),
                         bias_addr.eq(desc.bias_base)]
        return m
