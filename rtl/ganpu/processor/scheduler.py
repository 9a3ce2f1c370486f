"""The ASTM scheduler: ready tasks to free cores, in time or in space
(``docs/processor.md``)."""

from amaranth.hdl import Module, Signal, Mux, Const, Shape
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from ..core.config import check_int, check_type
from ..core.descriptor import Op, Act
from ..core.ports import TaskPort
from .bus import control_layout, status_layout
from .checker import CheckPort, derived_descriptor, reads_mask_in
from .config import ProcessorConfig, ProcessorComponent
from .dma import load_layout, store_layout
from .model import MIN_WORK, MIN_SPLIT, cores_for, compute_bound
from .program import TaskKind, ProgramError, Policy, State, task_layout, update_layout, EORS_SLOT_BITS
from .task_table import table_read_signature
from .update_engine import UpdatePort

__all__ = ["Scheduler", "trace_layout", "update_trace_layout", "CoreState", "split_reciprocal"]


def trace_layout(cfg):
    """Per core, every cycle: ``dispatch`` pulses when the core is given rows
    ``m0 .. m1`` of task ``task``; ``complete`` pulses when its part is stored back.
    With two buffer sets a core's dispatch and another task's completion may share a
    cycle: ``task`` names the dispatched one and ``done_task`` the completed one; and
    ``start`` pulses with the core's task port ``start`` (of task ``start_task``)."""
    d, pb = cfg.core.geom.dim_bits, cfg.program_bits
    sets = {"done_task": pb, "start": 1, "start_task": pb} if cfg.core.buffer_sets > 1 else {}
    return data.ArrayLayout(data.StructLayout({
        "dispatch": 1, "complete": 1, "task": pb, "m0": d, "m1": d, **sets}), cfg.cores)


def update_trace_layout(cfg):
    """Every cycle: ``start`` pulses when UPDATE record ``task`` goes to the update
    engine, ``done`` when it has finished (``task`` names the record in both)."""
    return data.StructLayout({"start": 1, "done": 1, "task": cfg.program_bits})


class CoreState(enum.Enum, shape=3):
    FREE = 0
    LOADING = 1    # given a task; its load job waits for or is in the DMA
    STARTING = 2   # operands loaded: start pulse this cycle
    RUNNING = 3
    STORE = 4      # finished: its store job waits for the DMA
    STORING = 5


def _min(a, b):
    return Mux(a < b, a, b)


def split_reciprocal(cores, bits):
    """``(s, R)`` with ``R[k] = ceil(2**s / k)`` for k in 1..cores, such that
    ``(m * R[k]) >> s == m // k`` for every ``m < 2**bits``: with ``e = R[k] * k - 2**s
    < k``, the error ``m * e / (k * 2**s)`` stays below ``1 / k`` when ``m * e < 2**s``,
    so ``s = bits + ceil(log2(cores))`` suffices."""
    check_int("cores", cores, 1)
    check_int("bits", bits, 1)
    s = bits + (cores - 1).bit_length()
    return s, {k: -(-(1 << s) // k) for k in range(1, cores + 1)}


class Scheduler(ProcessorComponent):
    """Runs a checked program: a scoreboard of done records, a window of the
    ``cfg.window`` oldest undispatched records, and dispatch of the first ready record
    (every valid dependency done) as cores free up.

    Cores per dispatch (:func:`ganpu.processor.model.cores_for`, same rule): TEMPORAL
    waits until every core is free and splits the rows over ``min(cores, M)`` of them;
    SPATIAL gives one core; ADAPTIVE first tells a compute-bound program from a DMA-bound
    one (:func:`ganpu.processor.model.compute_bound`: ``sum(work) * host_words >
    sum(words) * cores`` and ``sum(work) > n * cores * MIN_SPLIT`` over the ``n`` GEMM
    records, summed while the program is checked): in a compute-bound program of tasks
    worth splitting, a record waits until ``min(cores, M)`` cores are free and takes
    them (time multiplexing); otherwise it gets
    ``k = min(free, max(1, free // ready), M, max(1, ceil(work / MIN_WORK)))`` cores
    (``ready`` = ready GEMM records in the window: space sharing, so one record's
    transfers overlap another's compute). The ``k`` lowest-numbered free cores get
    rows split by :func:`ganpu.processor.model.split_rows` (``M // k`` each, one more
    for the first ``M % k``). The DMA loads the group's operands (one load job), the
    scheduler starts each core as soon as its own operands are in (``loaded``), and
    each core's rows are stored (one store job per core) when it finishes; a record is
    done when the last of its cores is stored. An UPDATE record, once ready, goes to the
    update engine (``update``) when the engine and the DMA are idle and no DMA job
    waits; the engine then owns the DMA's GBUF ports, so no load or store job is
    offered until its ``done`` (cores keep computing meanwhile). A ready UPDATE that
    cannot start yet is passed over: the first ready record after it in the window
    (a GEMM whose dependencies are done) is dispatched instead, so free cores do not
    wait behind it; the UPDATE starts once the DMA drains. A PAUSE record, once
    ready, every core free and no update running, sets State PAUSED and PAUSED_AT and is
    done at ``control.resume``. State DONE when every record is done.

    Two buffer sets (``cfg.core.buffer_sets`` = 2, ``docs/astm.md``, "Prefetching the
    next task"): a core holds up to two tasks, one per set, and counts as free while it
    has a free set; TEMPORAL waits until every core has one, SPATIAL takes one such
    core, ADAPTIVE takes ``min(cores, M)`` of them in either regime
    (:func:`ganpu.processor.cycle_model.staged_cores`); the group takes idle cores
    first. A staged task (dependencies stored, as any dispatch) is loaded into the
    core's free set (the load job's ``sets``) while the core computes; it starts, with
    the task port's ``set``, once its load is in and the core has computed its other
    task, whose store (the store job's ``set``) may still wait or run. A set is free
    again when its rows are stored; a core's loads, starts and stores follow its
    dispatch order. A PAUSE waits until every set of every core is free. With one set
    the behaviour and the generated logic are those of the one-set scheduler.

    State: ``control.start`` (in IDLE, DONE or ERROR) starts the program check (CHECKING),
    then RUNNING, or ERROR with the checker's verdict.

    Throughput: a window scan takes two cycles per record it reads (the window's
    records and the dispatched ones between them) plus two; one dispatch per scan. A
    GEMM dispatch adds two cycles after the scan's decision (the row split, then the
    assignment: ``cycle_model.SCAN_ASSIGN``), so that the decision, the split and the
    assignment are each one short register-to-register step (the core count from a
    table, the split by a reciprocal multiplication, :func:`split_reciprocal`). The
    balance sum reads one record per cycle beside the checker (which takes several per
    record), so it is done by the checker's verdict; one cycle after it decides the
    regime before the first scan.

    Ports
    -----
    control : In(control_layout(cfg))
    check : Out(CheckPort(cfg))
    table : In(table_read_signature(cfg))
    load : Out(stream.Signature(load_layout(cfg))), loaded : In(cfg.cores)
    store : Out(stream.Signature(store_layout(cfg))), store_done : In(1)
    cores : Out(TaskPort(cfg.core)).array(cfg.cores)
    update : Out(UpdatePort(cfg))
    dma_busy : In(1)             the DMA is moving a job
    dma_cycles : In(32)          forwarded to ``status.dma``
    status : Out(status_layout(cfg))
    trace : Out(trace_layout(cfg))
    update_trace : Out(update_trace_layout(cfg))
    eors_slot : Out(ArrayLayout(EORS_SLOT_BITS, cfg.cores))   the ``eors_slot`` of each
                                 core's current task (for the EORS counter bank)
    """

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        super().__init__({
            "control": In(control_layout(cfg)),
            "check": Out(CheckPort(cfg)),
            "table": In(table_read_signature(cfg)),
            "load": Out(stream.Signature(load_layout(cfg))), "loaded": In(cfg.cores),
            "store": Out(stream.Signature(store_layout(cfg))), "store_done": In(1),
            "cores": Out(TaskPort(cfg.core)).array(cfg.cores),
            "update": Out(UpdatePort(cfg)), "dma_busy": In(1),
            "dma_cycles": In(32),
            "status": Out(status_layout(cfg)),
            "trace": Out(trace_layout(cfg)),
            "update_trace": Out(update_trace_layout(cfg)),
            "eors_slot": Out(data.ArrayLayout(EORS_SLOT_BITS, cfg.cores)),
        })

    @staticmethod
    def model(cfg, policy, free, ready, m, work, records=()):
        """Cores given to a ready GEMM record of the program ``records`` (0: it waits)."""
        return cores_for(policy, cfg.cores, free, ready, m, work,
                         bound=compute_bound(records, cfg.cores, cfg.core.host_words))

    @staticmethod
    def bound_cores(free, wanted):
        """The ADAPTIVE policy's cores in a compute-bound program (time multiplexing,
        :func:`ganpu.processor.model.adaptive_cores`): ``wanted`` (``min(cores, M)``,
        the candidate's rows reduced at capture) once ``free`` cores are at least that
        many, else 0 (the record waits). One method so that the bounded-liveness
        proof can show it refutes a scheduler that waits longer
        (``testbench/formal/proof_scheduler.py``, ``docs/verification.md``)."""
        return Mux(free >= wanted, wanted, 0)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        C, W = cfg.cores, cfg.window
        pb = cfg.program_bits
        d = cfg.core.geom.dim_bits
        layout = task_layout(cfg)
        ctl, chk, st = self.control, self.check, self.status

        state = Signal(State)
        # The DMA counts for ever; the CSR reports this run's share, so back-to-back
        # runs (one per policy) each read their own DMA cycles.
        dma_base = Signal(32)
        m.d.comb += [st.state.eq(state), st.dma.eq(self.dma_cycles - dma_base)]
        policy = Signal(Policy)
        ntasks = Signal(16)
        done_bits = Signal(cfg.program_depth)
        disp_bits = Signal(cfg.program_depth)
        done_count = Signal(16)
        m.d.comb += st.done_tasks.eq(done_count)
        head = Signal(pb + 1)

        # --- per-core bookkeeping
        S = cfg.core.buffer_sets
        if S == 1:
            cstate = [Signal(CoreState, name=f"cstate{i}") for i in range(C)]
            ctask = [Signal(pb, name=f"ctask{i}") for i in range(C)]
            cm0 = [Signal(d, name=f"cm0_{i}") for i in range(C)]
            cmc = [Signal(d, name=f"cmc_{i}") for i in range(C)]
            crec = [Signal(layout, name=f"crec{i}") for i in range(C)]
            free = Signal(C)
            m.d.comb += free.eq(Const(0, C) | sum((cstate[i] == CoreState.FREE) << i for i in range(C)))
            all_free = free == (1 << C) - 1
            all_idle = all_free
        else:
            # Two buffer sets: a slot per (core, set). A core's tasks take its sets in
            # turn, and its loads, starts and stores come in dispatch order, so one
            # pointer per core and per step names the set each acts on: ``dsp`` the
            # set the next dispatch fills, ``ldp`` the next ``loaded``, ``rnp`` the
            # next start, ``stp`` the next store.
            sstate = [[Signal(CoreState, name=f"cstate{i}_{k}") for k in range(S)] for i in range(C)]
            stask = [[Signal(pb, name=f"ctask{i}_{k}") for k in range(S)] for i in range(C)]
            sm0 = [[Signal(d, name=f"cm0_{i}_{k}") for k in range(S)] for i in range(C)]
            smc = [[Signal(d, name=f"cmc_{i}_{k}") for k in range(S)] for i in range(C)]
            srec = [[Signal(layout, name=f"crec{i}_{k}") for k in range(S)] for i in range(C)]
            ld_in = [[Signal(name=f"ld_in{i}_{k}") for k in range(S)] for i in range(C)]
            dsp, ldp, rnp, stp, run_set = (Signal(C, name=n) for n in ("dsp", "ldp", "rnp", "stp", "run_set"))
            free, idle = Signal(C), Signal(C)
            for i in range(C):
                m.d.comb += [free[i].eq(Mux(dsp[i], sstate[i][1], sstate[i][0]) == CoreState.FREE),
                             idle[i].eq((sstate[i][0] == CoreState.FREE) & (sstate[i][1] == CoreState.FREE))]
            # TEMPORAL and SPATIAL count a core with a free set as free (the group may
            # be staged behind the running one); a PAUSE waits for every set
            all_free = free == (1 << C) - 1
            all_idle = idle == (1 << C) - 1

            def slot(sel, sigs):
                return Mux(sel, sigs[1], sigs[0])

        # --- counters
        with m.If((state == State.CHECKING) | (state == State.RUNNING) | (state == State.PAUSED)):
            m.d.sync += st.cycles.eq(st.cycles + 1)
        for i in range(C):
            with m.If(self.cores[i].busy):
                m.d.sync += st.core_busy[i].eq(st.core_busy[i] + 1)

        # --- core tasks: start once the DMA has loaded the core's operands (the rest of
        # the group may still be loading), completion when busy falls
        for i in range(C):
            tp = self.cores[i]
            if S == 1:
                m.d.comb += [tp.desc.eq(derived_descriptor(m, crec[i], cfg.core.geom, rows=cmc[i], row0=cm0[i])),
                             self.eors_slot[i].eq(crec[i].eors_slot)]
                with m.If(self.loaded[i]):
                    m.d.sync += cstate[i].eq(CoreState.STARTING)
                with m.If(cstate[i] == CoreState.STARTING):
                    m.d.comb += tp.start.eq(1)
                    m.d.sync += cstate[i].eq(CoreState.RUNNING)
                with m.If((cstate[i] == CoreState.RUNNING) & ~tp.busy):
                    m.d.sync += cstate[i].eq(CoreState.STORE)
                continue
            # the task of set rnp starts once its operands are in and the core has
            # computed the other set's task (whose store may still wait: the DMA reads
            # that set while this one computes). The task port shows set run_set,
            # switched as a task goes STARTING, so its descriptor holds from the start
            # pulse to the next start, as with one set.
            rec_r = layout(slot(run_set[i], [r.as_value() for r in srec[i]]))
            m.d.comb += [tp.desc.eq(derived_descriptor(m, rec_r, cfg.core.geom, rows=slot(run_set[i], smc[i]),
                                                       row0=slot(run_set[i], sm0[i]))),
                         tp.set.eq(run_set[i]), self.eors_slot[i].eq(rec_r.eors_slot)]
            computing = Const(0, 1)
            for k in range(S):
                st_k = sstate[i][k]
                computing = computing | (st_k == CoreState.STARTING) | ((st_k == CoreState.RUNNING) & tp.busy)
            with m.If(self.loaded[i]):
                m.d.sync += ldp[i].eq(~ldp[i])
            for k in range(S):
                st_k = sstate[i][k]
                loaded_now = ld_in[i][k] | (self.loaded[i] & (ldp[i] == k))
                with m.If((st_k == CoreState.LOADING) & loaded_now & (rnp[i] == k) & ~computing):
                    m.d.sync += [st_k.eq(CoreState.STARTING), ld_in[i][k].eq(0), run_set[i].eq(k)]
                with m.Elif(self.loaded[i] & (ldp[i] == k)):
                    m.d.sync += ld_in[i][k].eq(1)
                with m.If(st_k == CoreState.STARTING):
                    m.d.comb += [tp.start.eq(1), self.trace[i].start.eq(1),
                                 self.trace[i].start_task.eq(stask[i][k])]
                    m.d.sync += [st_k.eq(CoreState.RUNNING), rnp[i].eq(~rnp[i])]
                with m.If((st_k == CoreState.RUNNING) & ~tp.busy):
                    m.d.sync += st_k.eq(CoreState.STORE)

        # --- load stream (one pending job, registered payload)
        ld_valid = Signal()
        ld = Signal(load_layout(cfg))
        # the update engine owns the DMA's GBUF ports while it runs: no job for the DMA
        upd = self.update
        upd_task = Signal(pb)
        upd_on = upd.busy | upd.start
        m.d.comb += [self.load.valid.eq(ld_valid & ~upd_on), self.load.payload.eq(ld)]
        with m.If(self.load.valid & self.load.ready):
            m.d.sync += ld_valid.eq(0)

        # --- store stream: the lowest core waiting, registered until the DMA takes it
        st_valid = Signal()
        st_core = Signal(range(C))
        storing = Signal(range(C))
        sp = self.store.payload
        m.d.comb += [self.store.valid.eq(st_valid & ~upd_on), sp.core.eq(st_core)]
        if S > 1:
            # the set of each core's oldest computed task (stores in compute order),
            # and the slot a store job came from
            cstate = [slot(stp[i], sstate[i]) for i in range(C)]
            cm0 = [slot(stp[i], sm0[i]) for i in range(C)]
            cmc = [slot(stp[i], smc[i]) for i in range(C)]
            crec = [layout(slot(stp[i], [r.as_value() for r in srec[i]])) for i in range(C)]
            storing_set = Signal()
        for i in range(C):
            with m.If(st_core == i):
                m.d.comb += [sp.m0.eq(cm0[i]), sp.mc.eq(cmc[i]), sp.n.eq(crec[i].n),
                             sp.out.eq(crec[i].out), sp.store_mask.eq(crec[i].store_mask),
                             sp.mask_out_base.eq(crec[i].mask_out_base)]
                if S > 1:
                    m.d.comb += sp.set.eq(stp[i])
        with m.If(~st_valid):
            for i in reversed(range(C)):
                with m.If(cstate[i] == CoreState.STORE):
                    m.d.sync += [st_valid.eq(1), st_core.eq(i)]
        with m.If(self.store.valid & self.store.ready):
            m.d.sync += [st_valid.eq(0), storing.eq(st_core)]
            for i in range(C):
                with m.If(st_core == i):
                    if S == 1:
                        m.d.sync += cstate[i].eq(CoreState.STORING)
                    else:
                        m.d.sync += [storing_set.eq(stp[i]), stp[i].eq(~stp[i])]
                        for k in range(S):
                            with m.If(stp[i] == k):
                                m.d.sync += sstate[i][k].eq(CoreState.STORING)
        store_fin = Signal()
        # every slot holding a task: (core, set, state, task)
        slots = [(i, 0, cstate[i], ctask[i]) for i in range(C)] if S == 1 else \
            [(i, k, sstate[i][k], stask[i][k]) for i in range(C) for k in range(S)]
        for i, k, state_ik, task_ik in slots:
            tr = self.trace[i]
            this = self.store_done & (storing == i)
            if S > 1:
                this = this & (storing_set == k)
            with m.If(this):
                m.d.sync += state_ik.eq(CoreState.FREE)
                m.d.comb += [tr.complete.eq(1), (tr.task if S == 1 else tr.done_task).eq(task_ik)]
                # a 1-bit zero, not Python's 0: with one core nothing is OR-ed in and
                # ``~others`` must still be a 1-bit condition
                others = Const(0, 1)
                for j, kj, state_j, task_j in slots:
                    if (j, kj) != (i, k):
                        others = others | ((state_j != CoreState.FREE) & (task_j == task_ik))
                with m.If(~others):
                    m.d.comb += store_fin.eq(1)
                    m.d.sync += done_bits.bit_select(task_ik, 1).eq(1)
        with m.If(upd.done):
            m.d.sync += done_bits.bit_select(upd_task, 1).eq(1)
        pause_fin = Signal()
        # records finish in the same cycle from a store, the update engine and a resume
        m.d.sync += done_count.eq(done_count + store_fin + upd.done + pause_fin)

        # --- the window scan and dispatch
        # the scan walks from the first undispatched record and skips dispatched ones
        # until it has seen ``W`` undispatched records (or the program's end)
        i_slot = Signal(range(cfg.program_depth + 1))
        seen = Signal(range(W + 1))
        idx = Signal(pb + 2)
        # the balance sum reads the table while the checker runs (its own port): one
        # record per cycle from 0 to ntasks - 1
        in_check = Signal()
        scan_i = Signal(16)
        m.d.comb += [idx.eq(head + i_slot), self.table.addr.eq(Mux(in_check, scan_i, idx))]
        rec = layout(self.table.data[:layout.size])
        in_prog = idx < ntasks
        deps_done = 1
        for j in range(cfg.deps):
            deps_done = deps_done & (~rec.deps[j].valid | done_bits.bit_select(rec.deps[j].index, 1))
        undispatched = in_prog & ~disp_bits.bit_select(idx, 1)
        ready = undispatched & deps_done
        # an UPDATE that cannot start now (the engine or the DMA busy, a DMA job
        # waiting) is passed over: a later ready GEMM may go to free cores meanwhile
        upd_free = ~upd.busy & ~self.dma_busy & ~ld_valid & ~st_valid
        eligible = ready & ((rec.kind != TaskKind.UPDATE) | upd_free)
        n_ready = Signal(range(W + 1))
        found = Signal()
        cand = Signal(layout)
        cand_idx = Signal(pb)
        # the candidate's core counts, reduced when it is captured: min(C, M) and
        # min(C, max(1, ceil(work / MIN_WORK))) (C - 1 constant compares, no adder)
        cand_m, cand_need = Signal(range(C + 1)), Signal(range(C + 1))
        k = Signal(range(C + 1))
        ulayout = update_layout(cfg)
        m.d.comb += [upd.rec.eq(ulayout(cand.as_value()[:ulayout.size])),
                     self.update_trace.done.eq(upd.done), self.update_trace.start.eq(upd.start),
                     self.update_trace.task.eq(Mux(upd.start, cand_idx, upd_task))]

        # the regime: sums of the GEMM records' work and words over the whole program
        sum_bits = Shape.cast(layout["work"].shape).width + cfg.program_bits
        sum_work, sum_words = Signal(sum_bits), Signal(sum_bits)
        n_gemm = Signal(cfg.program_bits + 1)
        scan_pend = Signal()            # the table's data is record scan_i - 1
        bound = Signal()                # compute-bound: time multiplexing
        with m.If(scan_pend & (rec.kind == TaskKind.GEMM)):
            m.d.sync += [sum_work.eq(sum_work + rec.work), sum_words.eq(sum_words + rec.words),
                         n_gemm.eq(n_gemm + 1)]
        m.d.sync += scan_pend.eq(0)
        with m.If(in_check & (scan_i < ntasks)):
            m.d.sync += [scan_i.eq(scan_i + 1), scan_pend.eq(1)]
        scan_busy = (in_check & (scan_i < ntasks)) | scan_pend
        # host_words and MIN_SPLIT are powers of two: shifts; C a constant factor
        lw = cfg.core.host_words.bit_length() - 1
        is_bound = ((sum_work << lw) > sum_words * C) & \
            (sum_work > ((n_gemm * C) << (MIN_SPLIT.bit_length() - 1)))

        # The decision is register to register in one cycle: the popcount of the free
        # cores, a table for ``free // ready`` (both at most a few bits), and the
        # candidate's M and work already reduced to core counts when it was captured
        # (``cand_m``, ``cand_need``), so no divider and no wide compare is on the path.
        free_n = Signal(range(C + 1))
        m.d.comb += free_n.eq(sum(free[i] for i in range(C)))
        share = Signal(range(C + 1))          # max(1, free // max(1, ready))
        with m.Switch(n_ready):
            for r in range(W + 1):
                with m.Case(r):
                    with m.Switch(free_n):
                        for f in range(C + 1):
                            with m.Case(f):
                                m.d.comb += share.eq(max(1, f // max(1, r)))
        adaptive = Signal(range(C + 1))
        m.d.comb += adaptive.eq(_min(_min(free_n, share), _min(cand_m, cand_need)))
        with m.If(free_n == 0):
            m.d.comb += adaptive.eq(0)
        if S == 1:
            with m.If(bound):
                m.d.comb += adaptive.eq(self.bound_cores(free_n, cand_m))
        else:
            # cycle_model.staged_cores: with a second set a group of min(cores, M)
            # cores with a free set, in either regime (no sharing, docs/astm.md)
            m.d.comb += adaptive.eq(self.bound_cores(free_n, cand_m))
        with m.Switch(policy):
            with m.Case(Policy.TEMPORAL):
                m.d.comb += k.eq(Mux(all_free, cand_m, 0))
            with m.Case(Policy.SPATIAL):
                m.d.comb += k.eq(free_n != 0)
            with m.Default():
                m.d.comb += k.eq(adaptive)
        # the row split ``M // k``, ``M % k`` a cycle later (state Split), from the
        # registered k: a multiplication by k's reciprocal (split_reciprocal) instead
        # of a divider, the remainder from the quotient
        shift, recips = split_reciprocal(C, d)
        recip = Signal(shift + 1)
        k_r = Signal(range(C + 1))
        q_r, r_r = Signal(d), Signal(range(C))
        free_snap = Signal(C)
        idle_snap = Signal(C) if S > 1 else None
        paused_at = Signal(pb)
        m.d.comb += st.paused_at.eq(paused_at)

        with m.FSM():
            with m.State("Idle"):
                with m.If(ctl.start):
                    m.d.comb += [chk.start.eq(1)]
                    m.d.sync += [state.eq(State.CHECKING), policy.eq(ctl.policy), ntasks.eq(ctl.ntasks),
                                 st.cycles.eq(0), st.error.eq(ProgramError.OK), st.error_task.eq(0),
                                 st.error_core.eq(0), done_count.eq(0), dma_base.eq(self.dma_cycles),
                                 scan_i.eq(0), sum_work.eq(0), sum_words.eq(0), n_gemm.eq(0)]
                    for i in range(C):
                        m.d.sync += st.core_busy[i].eq(0)
                    m.next = "Check"
            with m.State("Check"):
                m.d.comb += in_check.eq(1)
                with m.If(chk.done):
                    with m.If(chk.error != ProgramError.OK):
                        m.d.sync += [state.eq(State.ERROR), st.error.eq(chk.error),
                                     st.error_task.eq(chk.task), st.error_core.eq(chk.core_error)]
                        m.next = "Idle"
                    with m.Else():
                        m.next = "Balance"
            with m.State("Balance"):
                m.d.comb += in_check.eq(1)
                with m.If(~scan_busy):
                    m.d.sync += [bound.eq(is_bound), state.eq(State.RUNNING), done_bits.eq(0),
                                 disp_bits.eq(0), head.eq(0)]
                    m.next = "Head"
            with m.State("Head"):
                m.d.sync += [i_slot.eq(0), seen.eq(0), n_ready.eq(0), found.eq(0)]
                with m.If(done_count == ntasks):
                    m.d.sync += state.eq(State.DONE)
                    m.next = "Idle"
                with m.Elif((head < ntasks) & disp_bits.bit_select(head, 1)):
                    m.d.sync += head.eq(head + 1)
                with m.Else():
                    m.next = "Addr"
            with m.State("Addr"):
                m.next = "Eval"
            with m.State("Eval"):
                # cores are shared among the ready GEMM records (a PAUSE takes none)
                with m.If(ready & (rec.kind == TaskKind.GEMM)):
                    m.d.sync += n_ready.eq(n_ready + 1)
                with m.If(eligible & ~found):
                    m.d.sync += [found.eq(1), cand.eq(rec), cand_idx.eq(idx),
                                 cand_m.eq(Mux(rec.m > C, C, rec.m)),
                                 cand_need.eq(1 + sum((rec.work > j * MIN_WORK).as_unsigned()
                                                      for j in range(1, C)))]
                with m.If(undispatched):
                    m.d.sync += seen.eq(seen + 1)
                with m.If(~in_prog | (undispatched & (seen == W - 1))):
                    m.next = "Decide"
                with m.Else():
                    m.d.sync += i_slot.eq(i_slot + 1)
                    m.next = "Addr"
            with m.State("Decide"):
                m.d.sync += i_slot.eq(0)
                with m.If(~found):
                    m.next = "Head"
                with m.Elif(cand.kind == TaskKind.UPDATE):
                    # the engine takes the DMA's GBUF ports: start it between DMA jobs
                    with m.If(upd_free):
                        m.d.comb += upd.start.eq(1)
                        m.d.sync += [upd_task.eq(cand_idx), disp_bits.bit_select(cand_idx, 1).eq(1)]
                    m.next = "Head"
                with m.Elif(cand.kind == TaskKind.PAUSE):
                    with m.If(all_idle & ~ld_valid & ~upd.busy):
                        m.d.sync += [state.eq(State.PAUSED), paused_at.eq(cand_idx),
                                     disp_bits.bit_select(cand_idx, 1).eq(1)]
                        m.next = "Paused"
                    with m.Else():
                        m.next = "Head"
                with m.Elif((k != 0) & ~ld_valid):
                    m.d.sync += [k_r.eq(k), free_snap.eq(free)]
                    if S > 1:
                        m.d.sync += idle_snap.eq(idle)
                    m.next = "Split"
                with m.Else():
                    m.next = "Head"
            with m.State("Split"):
                # cores only become free meanwhile: free_snap's are still free, and no
                # load job is offered (only Assign makes one)
                with m.Switch(k_r):
                    for j in range(1, C + 1):
                        with m.Case(j):
                            m.d.comb += recip.eq(recips[j])
                q = (cand.m * recip) >> shift
                m.d.sync += [q_r.eq(q), r_r.eq(cand.m - q[:d] * k_r)]
                m.next = "Assign"
            with m.State("Assign"):
                group = []
                if S > 1:
                    # idle cores first, then the staged ones (cycle_model.simulate)
                    n_idle = Const(0, range(C + 1))
                    for j in range(C):
                        n_idle = n_idle + idle_snap[j]
                for i in range(C):
                    rank = Const(0, range(C + 1))
                    if S == 1:
                        for j in range(i):
                            rank = rank + free_snap[j]
                    else:
                        r_idle, r_staged = Const(0, range(C + 1)), n_idle
                        for j in range(i):
                            r_idle = r_idle + idle_snap[j]
                            r_staged = r_staged + (free_snap[j] & ~idle_snap[j])
                        rank = Mux(idle_snap[i], r_idle, r_staged)
                    chosen = free_snap[i] & (rank < k_r)
                    group.append(chosen)
                    m0 = rank * q_r + _min(rank, r_r)
                    mc = q_r + (rank < r_r)
                    with m.If(chosen):
                        if S == 1:
                            m.d.sync += [cstate[i].eq(CoreState.LOADING), ctask[i].eq(cand_idx),
                                         cm0[i].eq(m0), cmc[i].eq(mc), crec[i].eq(cand)]
                        else:
                            for k_ in range(S):
                                with m.If(dsp[i] == k_):
                                    m.d.sync += [sstate[i][k_].eq(CoreState.LOADING), stask[i][k_].eq(cand_idx),
                                                 sm0[i][k_].eq(m0), smc[i][k_].eq(mc), srec[i][k_].eq(cand)]
                            m.d.sync += [dsp[i].eq(~dsp[i]), ld.sets[i].eq(dsp[i])]
                        m.d.sync += [ld.rows[i].m0.eq(m0), ld.rows[i].mc.eq(mc)]
                        m.d.comb += [self.trace[i].dispatch.eq(1), self.trace[i].task.eq(cand_idx),
                                     self.trace[i].m0.eq(m0), self.trace[i].m1.eq(m0 + mc)]
                op, act = cand.op.as_value(), cand.act.as_value()
                m.d.sync += [ld_valid.eq(1), ld.group.eq(Const(0, C) | sum(g << i for i, g in enumerate(group))),
                             ld.n.eq(cand.n), ld.k.eq(cand.k), ld.a.eq(cand.a), ld.b.eq(cand.b),
                             ld.bias.eq(cand.bias), ld.bias_base.eq(cand.bias_base),
                             ld.mask_in.eq(reads_mask_in(cand)), ld.mask_in_base.eq(cand.mask_in_base),
                             ld.bw.eq(cand.eors & (op == Op.FP.value) & (act == Act.RELU.value)),
                             disp_bits.bit_select(cand_idx, 1).eq(1)]
                m.next = "Head"
            with m.State("Paused"):
                with m.If(ctl.resume):
                    m.d.comb += pause_fin.eq(1)
                    m.d.sync += [state.eq(State.RUNNING), done_bits.bit_select(paused_at, 1).eq(1)]
                    m.next = "Head"
        m.d.comb += chk.ntasks.eq(ctl.ntasks)
        return m
