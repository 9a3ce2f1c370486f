"""EORS in the core: the speculator that predicts, row by row, which outputs a ReLU
will zero (``docs/eors.md``, "In the core")."""

from dataclasses import replace

from amaranth.hdl import Module, Signal, Mux, Cat
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2, exact_log2

import numpy as np

from ..delay import delay_line
from ..eors.predictor import EorsPredictor
from ..eors.sampler import EorsSampleHash
from ..model.eors import eors_mask, EorsSampler
from .config import CoreConfig, DEFAULT_CORE, Geometry
from .indexer import entry_layout, row_layout
from .model import eors_active, task_eors_params

__all__ = ["Speculator", "ROW_SLOTS"]

# Rows the speculator may run ahead of the scanner (its mask store holds this many).
ROW_SLOTS = 4

# Cycles from a term's issue (its compressed-A address) to the EorsPredictor's input:
# compressed entry read, entry registered (BW/BIAS addressed), BW/BIAS read, words
# registered.
_FETCH = 4


class Speculator(wiring.Component):
    """EORS in the core: predicts, row by row, which outputs a ReLU will zero.

    Sits between the :class:`~ganpu.core.indexer.Indexer` and the
    :class:`~ganpu.core.scanner.Scanner` (``docs/eors.md``, "In the core"). In an FP
    task with ReLU and the descriptor's ``eors`` bit (``enable``), for each compressed
    row of A it runs one :class:`~ganpu.eors.predictor.EorsPredictor` of ``eors_lanes``
    = P lanes over the row once per group of P outputs: every cycle one non-zero
    ``A[m, k]`` is broadcast and lane ``p`` reads its weight from one wide word of the
    BW buffer (word ``g*K + k*b_sk`` holds ``B[g*P + p, k]`` in lane ``p``) and its bias
    from the wide BIAS buffer (word ``bias_word + g``). The live bits of each group
    are written as one P-bit word to the mask store (:data:`ROW_SLOTS` rows of
    :attr:`words_per_row` words; row ``r`` of the task uses slot ``r % ROW_SLOTS``);
    the row record is passed on to the scanner once its last group is written, so the
    exact MACs only ever see predicted survivors. Other tasks (``enable`` = 0) pass the
    row records straight through, combinationally.

    Latency and throughput
    ----------------------
    * Issue: ``ceil(N / P) * max(nnz(row) + b, 1)`` cycles per row, back to back
      (``cycles`` counts exactly these), with ``b`` = 1 when the task has a bias and the
      bias rides as each group's first term (:attr:`bias_first`), else 0; a row is
      accepted only while fewer than :data:`ROW_SLOTS` rows are in flight (taken and not
      yet released by ``row_done``).
    * **Bias as first term** (:attr:`bias_first`: absolute mode with ``use_bias``).
      The predictor's lanes have no bias pipe (``use_bias`` off, about a third of an
      EORS lane); each group instead starts with one extra term ``x`` = 1.0, ``w[p]``
      = the lane's bias, which gives exactly the ``use_bias`` estimate (``T`` is
      symmetric and ``T(b, 1.0)`` is the bias estimate). Scale-aware mode keeps the
      bias pipe: there the term count ``n`` must not count the bias.
    * A group's mask word is written exactly :attr:`latency` cycles after the cycle
      that issued the group's last term (its bubble, for a row without non-zeros).
    * **Level** (scale-aware mode): the task's ``rel`` (the descriptor's ``eors_rel``,
      registered at ``start``) when nonzero, else the configured ``params.rel``.
    * **Sampling** (``config.eors_sample_log2`` = r > 0, ``docs/eors.md``,
      "Sampling"): an :class:`~ganpu.eors.sampler.EorsSampleHash` gets each group's
      row key (``key``, registered at ``start``, plus the task's row index) and group
      index on the cycle that issues the group's last term; its one-hot sample, delayed
      to the word's write, goes with the live bits, so the word becomes 2P bits: the
      live bits in bits 0..P-1 and, in bits P..2P-1, the sample where that output is
      predicted zero (the scanner computes it anyway and discards the result). A pure
      function of (key, row, group): nothing carries over between tasks.
    * The row record enters a :data:`ROW_SLOTS`-deep output queue on the cycle its last
      word is written and is offered on ``rows_out`` 2 cycles later (later only while
      earlier rows wait ahead of it); records leave in the order they came.

    Model: :meth:`model` (transaction level: rows passed on, mask words, issue cycles).

    Parameters
    ----------
    config : CoreConfig or Geometry
        The core's configuration (``geom``, ``eors_lanes``, ``eors`` are used); a bare
        :class:`Geometry` takes the other two from ``eors_lanes`` and ``params``.
    eors_lanes : int, optional
        With a :class:`Geometry` only: P, a power of two in 2..64.
    params : EorsParams, optional
        With a :class:`Geometry` only: the predictor's arithmetic (absolute or
        scale-aware threshold; in scale-aware mode every task uses ``params.rel``).

    Ports
    -----
    start : In(1)                  one-cycle pulse: a new task (fields below held)
    enable : In(1)                 this task uses EORS (FP, ReLU, ``eors`` bit)
    n, k : In(dim_bits)            the task's N and K
    bias : In(1)                   the task has a bias; bias_word : In(...) its first word
    rel : In(5)                    the task's level (``eors_rel``; 0 = ``params.rel``)
    key : In(16)                   the task's sampling key (``eors_key``: row 0's key)
    rows_in : In(stream row_layout), rows_out : Out(stream row_layout)
    row_done : In(1)               the scanner finished a row (frees its mask slot)
    acomp_rd : In(ReadPort.Signature)   compressed A (entry_layout), synchronous read
    bw_rd : In(ReadPort.Signature)      wide weights (16*P bits a word)
    bias_rd : In(ReadPort.Signature)    wide biases (16*P bits a word)
    pm_wr : In(WritePort.Signature)     mask store (P bits a word; 2P with sampling)
    busy : Out(1), cycles : Out(32)     cycles spent issuing predictions this task
    """

    latency = _FETCH + EorsPredictor.latency

    @staticmethod
    def _config(config, eors_lanes=None, params=None):
        if isinstance(config, CoreConfig):
            if eors_lanes is not None or params is not None:
                raise TypeError("eors_lanes and params come from the CoreConfig; "
                                f"got eors_lanes={eors_lanes!r}, params={params!r} as well")
            return config
        if not isinstance(config, Geometry):
            raise TypeError(f"config must be a CoreConfig or a Geometry, not {config!r}")
        return CoreConfig(geom=config,
                          eors_lanes=DEFAULT_CORE.eors_lanes if eors_lanes is None else eors_lanes,
                          eors=DEFAULT_CORE.eors if params is None else params)

    def __new__(cls, *args, **kwargs):
        # Refuse bad parameters before the component exists: nothing half-built is left
        # for Amaranth to report as "created but never used".
        cls._config(*args, **kwargs)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, config, eors_lanes=None, params=None):
        cfg = self._config(config, eors_lanes, params)
        geom = cfg.geom
        P = cfg.eors_lanes
        self.config = cfg
        self.geom = geom
        self.lanes = P
        self.params = cfg.eors
        self.bias_first = bool(cfg.eors.use_bias and cfg.eors.rel is None)
        self.words_per_row = geom.depth("mask") // P
        # words of the memories behind the ports (the core sizes them the same way)
        self.bw_words = max(1, geom.depth("b") // P)
        self.bias_words = max(1, geom.depth("bias") // P)
        self.pm_words = ROW_SLOTS * self.words_per_row
        self.sample_log2 = cfg.eors_sample_log2
        # a mask-store word: the live bits, then (sampling) the sampled bits
        self.pm_bits = 2 * P if self.sample_log2 else P
        d = geom.dim_bits
        super().__init__({
            "start": In(1), "enable": In(1), "n": In(d), "k": In(d), "bias": In(1), "rel": In(5), "key": In(16),
            "bias_word": In(geom.bias_bits),
            "rows_in": In(stream.Signature(row_layout(geom))),
            "rows_out": Out(stream.Signature(row_layout(geom))),
            "row_done": In(1),
            "acomp_rd": In(ReadPort.Signature(addr_width=geom.a_bits, shape=entry_layout(geom))),
            "bw_rd": In(ReadPort.Signature(addr_width=ceil_log2(self.bw_words), shape=16 * P)),
            "bias_rd": In(ReadPort.Signature(addr_width=ceil_log2(self.bias_words), shape=16 * P)),
            "pm_wr": In(WritePort.Signature(addr_width=ceil_log2(self.pm_words), shape=self.pm_bits)),
            "busy": Out(1), "cycles": Out(32),
        })

    @staticmethod
    def model(desc, bufs, config=DEFAULT_CORE):
        """What the speculator does for one task, from the descriptor ``desc`` (dict of
        fields) and buffer images ``bufs`` (``a``, ``bw``, ``bias``, as for
        :func:`ganpu.core.model.run_task`).

        Returns a dict:

        * ``rows``: the row records ``(start, end)`` of the compressed A, in order: the
          speculator's input (as the indexer leaves them) and, unchanged, its output;
        * ``entries``: the compressed A, ``(a, boff)`` arrays, as the indexer writes it;
        * ``mask``: bool (M, N), the predicted live outputs (:func:`ganpu.core.model.
          active_outputs`), or ``None`` when EORS is off for the task;
        * ``words``: int (M, ceil(N/P)), the mask-store words, P bits each (lanes past
          N predicted from whatever BW and BIAS hold there), with sampling 2P bits
          (sampled and predicted zero in bits P..2P-1); ``None`` when off;
        * ``sampled``: bool (M, N), the predicted-zero outputs sampled (all False
          without sampling; :class:`~ganpu.model.eors.EorsSampler` with the
          descriptor's ``eors_key``), or ``None`` when off;
        * ``cycles``: the issue cycles (0 when off).
        """
        P = config.eors_lanes
        bias_first = bool(config.eors.use_bias and config.eors.rel is None)
        M, N, K = desc["m"], desc["n"], desc["k"]
        a = np.asarray(bufs["a"], dtype=np.uint16)
        mi, ki = np.arange(M)[:, None], np.arange(K)[None, :]
        A = a[desc["a_base"] + mi * desc["a_sm"] + ki * desc["a_sk"]]
        nz = (A & 0x7FFF) != 0
        ends = np.cumsum(nz.sum(axis=1))
        rows = list(zip((ends - nz.sum(axis=1)).tolist(), ends.tolist()))
        mr, kr = np.nonzero(nz)
        entries = (A[mr, kr], kr * desc["b_sk"])
        out = {"rows": rows, "entries": entries, "mask": None, "words": None, "cycles": 0,
               "sampled": None}
        if not eors_active(desc):
            return out
        # The whole of every group, lanes past N included: word g*K + k*b_sk of BW and
        # word bias_word + g of BIAS (in range in every task the checker accepts).
        G = -(-N // P)
        n = np.arange(G * P)
        bw = np.asarray(bufs["bw"], dtype=np.uint16)
        W = bw[((n[:, None] // P) * K + ki * desc["b_sk"]) * P + n[:, None] % P]
        bias = None
        if desc.get("bias", 0):
            bias = np.asarray(bufs["bias"], dtype=np.uint16)[desc["bias_base"] + n]
        live = eors_mask(A, W, bias, task_eors_params(desc, config.eors))
        sampled = np.zeros((M, G * P), dtype=bool)
        if config.eors_sample_log2:
            sampled = EorsSampler(P, config.eors_sample_log2).sample(
                M, G * P, int(desc.get("eors_key", 0))) & ~live
        # Python ints: a 64-lane word does not fit a signed numpy integer
        weights = np.array([1 << p for p in range(2 * P)], dtype=object)
        bits = np.concatenate([live.reshape(M, G, P), sampled.reshape(M, G, P)], axis=2)
        words = (bits.astype(object) * weights).sum(axis=2)
        b = int(bool(desc.get("bias", 0)) and bias_first)
        out.update(mask=live[:, :N], words=words, sampled=sampled[:, :N],
                   cycles=int(G * np.maximum(nz.sum(axis=1) + b, 1).sum()))
        return out

    def elaborate(self, platform):
        m = Module()
        g_ = self.geom
        P = self.lanes
        d = g_.dim_bits
        rl = row_layout(g_)

        m.submodules.outq = outq = SyncFIFOBuffered(width=rl.size, depth=ROW_SLOTS)
        lane_params = replace(self.params, use_bias=False) if self.bias_first else self.params
        m.submodules.predictor = pred = EorsPredictor(P, lane_params)

        # --- issue
        have = Signal()
        row = Signal(rl)
        i = Signal(g_.a_bits + 1)
        grp = Signal(d)
        gK = Signal(d + 2)
        slot = Signal(range(ROW_SLOTS))
        inflight = Signal(range(ROW_SLOTS + 1))
        # the task's last group, constant during a task: registered at start so the
        # row-end test compares two flip-flops (the subtraction limited the clock)
        groups_last = Signal(d)
        # the task has a bias (registered for the same reason); bon: it is a term
        bias_on, bon = Signal(), Signal()
        # the task's level, constant during the task; the sampling key of the row being
        # issued (the task's key plus the row index, stepped as each row ends)
        rel = Signal(5)
        rkey = Signal(16)
        with m.If(self.start):
            m.d.sync += [groups_last.eq((self.n - 1) >> exact_log2(P)), bias_on.eq(self.bias),
                         bon.eq(self.bias & self.bias_first),
                         rel.eq(Mux(self.rel != 0, self.rel, self.params.rel or 0))]
        # this cycle issues the group's bias term (x = 1.0, w = the lanes' biases)
        bcyc = Signal()

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
                         grp.eq(0), gK.eq(0), bcyc.eq(bon)]

        # with the bias as a term, the group's sum starts at its bias cycle; a row
        # without non-zeros is then that one cycle (without a bias: one bubble)
        first = Mux(bon, bcyc, i == row.start)
        term = have & (bcyc | (i != row.end))
        last = have & Mux(bcyc, row.start == row.end, i + 1 >= row.end)
        row_last = last & (grp == groups_last)
        with m.If(have):
            m.d.sync += self.cycles.eq(self.cycles + 1)
            with m.If(last):
                m.d.sync += [i.eq(row.start), grp.eq(grp + 1), gK.eq(gK + self.k), bcyc.eq(bon)]
                with m.If(row_last):
                    m.d.sync += [have.eq(0), slot.eq(Mux(slot == ROW_SLOTS - 1, 0, slot + 1)),
                                 rkey.eq(rkey + 1)]
            with m.Elif(bcyc):
                m.d.sync += bcyc.eq(0)
            with m.Else():
                m.d.sync += i.eq(i + 1)
        m.d.sync += inflight.eq(inflight + took - (self.row_done & self.enable))
        m.d.comb += self.acomp_rd.addr.eq(i)

        # Control travels beside the fetch and the predictor; the group's mask address
        # and its row record come out with the group's live bits.
        ctl = data.StructLayout({"valid": 1, "term": 1, "bcyc": 1, "first": 1, "last": 1, "row_last": 1,
                                 "grp": d, "gK": d + 2, "slot": range(ROW_SLOTS), "row": rl})
        c0 = Signal(ctl)
        m.d.comb += [c0.valid.eq(have), c0.term.eq(term), c0.bcyc.eq(have & bcyc),
                     c0.first.eq(have & first),
                     c0.last.eq(last), c0.row_last.eq(row_last), c0.grp.eq(grp), c0.gK.eq(gK),
                     c0.slot.eq(slot), c0.row.eq(row)]
        c = delay_line(m, c0, self.latency, name="ctl")
        # stage 2: compressed entry registered; weight and bias words addressed
        e2 = Signal(entry_layout(g_))
        m.d.sync += e2.eq(self.acomp_rd.data)
        m.d.comb += [self.bw_rd.addr.eq(c[2].gK + e2.boff),
                     self.bias_rd.addr.eq(self.bias_word + c[2].grp)]
        # stage 4: the activation (two registers behind its entry) meets the words
        a4 = delay_line(m, e2.a, 2, name="a")[-1]
        bw4, bias4 = Signal(16 * P), Signal(16 * P)
        m.d.sync += [bw4.eq(self.bw_rd.data), bias4.eq(self.bias_rd.data)]
        c4 = c[_FETCH]
        m.d.comb += [pred.valid.eq(c4.term), pred.first.eq(c4.first),
                     pred.last.eq(c4.valid & c4.last)]
        if self.bias_first:
            # the bias cycle: x = 1.0, each lane's weight is its bias
            m.d.comb += [pred.x.eq(Mux(c4.bcyc, 0x3C00, a4)), pred.w.eq(Mux(c4.bcyc, bias4, bw4)),
                         pred.bias.eq(0)]
        else:
            m.d.comb += [pred.x.eq(a4), pred.w.eq(bw4), pred.bias.eq(Mux(bias_on, bias4, 0))]
        if self.params.rel is not None:
            # scale-aware mode: the task's level (docs/eors.md, "Self-calibration")
            m.d.comb += pred.rel.eq(rel)

        # --- results: one mask word per group, the row record after its last group
        r = c[-1]
        m.d.comb += [self.pm_wr.en.eq(pred.o_valid),
                     self.pm_wr.addr.eq(r.slot * self.words_per_row + r.grp),
                     self.pm_wr.data.eq(pred.live)]
        if self.sample_log2:
            # the group's row key and index are known when its last term issues; the
            # one-hot sample then waits beside the predictor for the word's write
            m.submodules.sampler = smp = EorsSampleHash(P, self.sample_log2)
            m.d.comb += [smp.valid.eq(last), smp.key.eq(rkey), smp.word.eq(grp)]
            sample = delay_line(m, smp.sample, self.latency - smp.latency, name="sample")[-1]
            m.d.comb += self.pm_wr.data.eq(Cat(pred.live, sample & ~pred.live))
        m.d.comb += [outq.w_en.eq(pred.o_valid & r.row_last), outq.w_data.eq(r.row)]

        busy = have | outq.r_rdy | (inflight != 0)
        for s in c[1:]:
            busy |= s.valid
        m.d.comb += self.busy.eq(busy)
        # last: a new task's start overrides every other update
        with m.If(self.start):
            m.d.sync += [have.eq(0), slot.eq(0), inflight.eq(0), self.cycles.eq(0), bcyc.eq(0),
                         rkey.eq(self.key)]
        return m
