"""The scheduler never runs two tasks on one core, never starts a record (GEMM, PAUSE or
UPDATE) before its dependencies are done, keeps the handshake on its DMA streams, and
dispatches the oldest ready record within a bounded number of cycles.

On :class:`ganpu.processor.scheduler.Scheduler` alone, with a tiny configuration (2
cores, a 2-record task table, one dependency slot, a window of 1) and every other
input free: the CSR controls (start, resume, policy, task count up to the table's
depth), the program check's answer, the DMA (``load.ready``, ``loaded``,
``store.ready``, ``store_done``, ``dma_busy``; under its contract: ``loaded`` for a
core only after the load job naming it was taken, ``store_done`` only after a store
job was taken), the update engine (under its contract, ``UpdatePort``: ``busy`` from
the cycle after ``start`` to the ``done`` pulse, ``done`` only for a started record)
and the cores (``busy``, ``error``). The task table is a 2-record memory of free
contents, constant over the run, read as the block RAM does (data the cycle after the
address). Records are GEMM, PAUSE or UPDATE records whose dependency points to an
earlier record, a GEMM with M > 0 (what the program checker enforces); their kind,
dependencies, M and work estimate are free, the other fields (which only pass through
to the DMA jobs and the update engine) are 0. An independent monitor follows the trace
(``dispatch``/``complete`` per core, the update engine's ``start``/``done``, the state
and ``paused_at``); a run's ``start`` restarts it:

* a core is dispatched only when its previous part has completed, only with a GEMM
  record, only while RUNNING, and completes only a part it was given;
* a record is dispatched, paused at or given to the update engine only when every
  valid dependency is done (a GEMM when its parts are stored, a PAUSE at the host's
  resume, an UPDATE at the engine's ``done``), and at most once per run;
* PAUSED is entered only at an unserved PAUSE record, with every core free and the
  update engine idle; DONE only with every record done and every core free;
* the update engine starts only for an UPDATE record, while the DMA is idle and no
  DMA job is offered, and no DMA job is offered while it runs (it owns the GBUF ports);
* a core's ``start`` comes only while it holds a dispatched part;
* ``load`` and ``store`` keep valid and payload while ``ready`` is low;
* bounded liveness: the oldest record not yet started, once its dependencies are done
  and its resources are free, is started within :data:`LIVENESS` cycles while they
  stay so (a cover shows the first record waiting through a whole window scan). Its
  resources: no load job offered; for a GEMM the engine idle and the cores the policy
  needs (:func:`ganpu.processor.model.cores_for`): every core under TEMPORAL, one
  under SPATIAL, under ADAPTIVE one, or ``min(cores, M)`` in a compute-bound program
  (time multiplexing, the regime of :func:`ganpu.processor.model.compute_bound`
  restated over the run's records); for a PAUSE every core and the engine idle; for
  an UPDATE the engine and the DMA idle and no store offered. :class:`LateScheduler`,
  which waits for one core more in a compute-bound program, fails it.

Depth :data:`DEPTH` in the test suite, with the covers of two tasks on the two cores
at once, a PAUSE entered, an UPDATE started and a wait of four cycles.
``scheduler_deep`` (run when ``GANPU_TEST_SCALE`` > 1) goes to :data:`DEEP_DEPTH` and
also covers a dependent record waiting while its dependency runs, a task dispatched
after its dependency completed, and a core given a second task (a whole task's life:
start, check, window scan, load, run, store, the next scan). Both run with Yices
(:data:`SOLVER`), an order of magnitude faster than z3 here.
"""

from amaranth.hdl import Array, Assert, Assume, Cat, Const, Cover, Mux, Signal, Value
from amaranth.lib.wiring import In

from ganpu.core.config import CoreConfig, Geometry
from ganpu.processor.config import ProcessorConfig
from ganpu.processor.model import MIN_SPLIT
from ganpu.processor.program import Policy, State, TaskKind, task_layout
from ganpu.processor.scheduler import Scheduler
from ganpu.processor.task_table import record_words

from sby import Harness

CONFIG = ProcessorConfig(cores=2, core=CoreConfig(lanes=1, geom=Geometry(
    a_bits=2, b_bits=3, out_bits=2, bias_bits=2, mask_bits=2), eors_lanes=2),
    gbuf_bits=8, program_bits=1, deps=1, window=1)
# two records on two cores (the first cover) is reached in step 18: the adaptive regime
# is decided in a Balance state after the check (docs/astm.md), and each of the two
# dispatches splits the rows in a Split state between its decision and its assignment
DEPTH = 19
DEEP_DEPTH = 23
LIVENESS = 8      # cycles; see the bounded liveness property
# Yices: the same properties and depth in 14 CPU s instead of z3's 327 (docs/verification.md)
SOLVER = "yices"
TASKS = CONFIG.program_depth


def properties(m, sch, top):
    cfg = sch.cfg
    C = cfg.cores
    layout = task_layout(cfg)
    width = 16 * record_words(cfg)
    first = Signal(init=1)
    m.d.sync += first.eq(0)

    # the table: free contents, constant, synchronous read
    prev = Signal.like(top.records)
    m.d.sync += prev.eq(top.records)
    m.d.comb += Assume(first | (top.records == prev))
    recs = [top.records[i * width:(i + 1) * width] for i in range(TASKS)]
    views = [layout(r[:layout.size]) for r in recs]
    # only what scheduling reads is free (kind, dependencies, M, the work estimate);
    # the other fields only pass through to the DMA jobs and the update engine, so
    # they are held at 0 to keep the proof small
    free_bits = 0
    for name in ("kind", "deps", "m", "work"):
        f = layout[name]
        free_bits |= ((1 << f.width) - 1) << f.offset
    kind = {k: Signal(TASKS, name=f"is_{k.name.lower()}") for k in TaskKind}
    for t, v in enumerate(views):
        for k, bits in kind.items():
            m.d.comb += bits[t].eq(v.kind == k)
        m.d.comb += Assume(Cat(*(bits[t] for bits in kind.values())).any())
        # the program checker refuses a GEMM with a zero dimension (the core's check)
        m.d.comb += Assume(~kind[TaskKind.GEMM][t] | (v.m != 0))
        m.d.comb += Assume((recs[t] & ~free_bits & ((1 << width) - 1)) == 0)
        for j in range(cfg.deps):
            m.d.comb += Assume(~v.deps[j].valid | (v.deps[j].index < t))
    with m.If(sch.table.en):
        m.d.sync += sch.table.data.eq(Array(recs)[sch.table.addr])
    is_gemm, is_pause, is_update = kind[TaskKind.GEMM], kind[TaskKind.PAUSE], kind[TaskKind.UPDATE]

    # the update engine's contract: busy from the cycle after start to done
    upd = sch.update
    engine = Signal()               # started and not yet done
    with m.If(upd.done):
        m.d.sync += engine.eq(0)
    with m.If(upd.start):
        m.d.sync += engine.eq(1)
    m.d.comb += [Assume(~upd.done | engine), Assume(upd.busy == (engine & ~upd.done))]
    eng_busy = engine & ~upd.done   # the engine's busy, as the scheduler sees it

    # a run: ``start`` taken while the scheduler is idle latches the policy and the
    # task count, and the monitor starts afresh
    state = sch.status.state
    ctl = sch.control
    idle = (state == State.IDLE) | (state == State.DONE) | (state == State.ERROR)
    ntasks = Signal(16)
    policy = Signal(2)
    started = ctl.start & idle
    m.d.comb += Assume(ctl.ntasks <= TASKS)     # the checker refuses more (EMPTY)

    # the monitor: per core the parts it holds (at most one per buffer set), the
    # oldest's record (``owner``) and the next one's (``owner2``, two sets)
    S = cfg.core.buffer_sets
    held = [Signal(range(S + 1), name=f"held{c}") for c in range(C)]
    occupied = [h != 0 for h in held]
    has_room = [h < S for h in held]
    owner = [Signal(cfg.program_bits, name=f"owner{c}") for c in range(C)]
    owner2 = [Signal(cfg.program_bits, name=f"owner2_{c}") for c in range(C)]
    unstarted = [Signal(range(S + 1), name=f"unstarted{c}") for c in range(C)]
    dispatched = Signal(TASKS)      # given to cores, paused at, or given to the engine
    served = Signal(TASKS)          # PAUSE resumed from, UPDATE done
    parts = [Signal(range(C + 1), name=f"parts{t}") for t in range(TASKS)]
    done = Signal(TASKS)
    for t in range(TASKS):
        m.d.comb += done[t].eq(Mux(is_gemm[t], dispatched[t] & (parts[t] == 0), served[t]))
    # per record: every valid dependency done, then selected by the dispatched task
    # (a first version indexed an Array of record views with the task and reported a
    # dispatch whose dependency was done by both counts; this form has no proxies)
    deps_ok = Signal(TASKS)
    for t, v in enumerate(views):
        ok = 1
        for j in range(cfg.deps):
            ok = ok & (~v.deps[j].valid | done.bit_select(v.deps[j].index, 1))
        m.d.comb += deps_ok[t].eq(ok)

    def starts(task, what):
        """Checks of a record being started (dispatched, paused at, given to the engine)."""
        m.d.comb += [
            Assert(deps_ok.bit_select(task, 1), f"{what} before its dependency is done"),
            Assert(task < ntasks, f"{what} beyond the program"),
        ]

    delta = [0] * TASKS
    newly = Signal(TASKS)           # records started in this cycle
    for c in range(C):
        tr = sch.trace[c]
        tp = sch.cores[c]
        done_task = tr.task if S == 1 else tr.done_task
        # a completion and a dispatch may share a cycle with two sets: the held count
        # and the owners follow both
        m.d.sync += held[c].eq(held[c] - tr.complete + tr.dispatch)
        with m.If(tr.complete):
            m.d.comb += Assert(occupied[c] & (done_task == owner[c]),
                               f"core {c} completed a part it was not given, or not its oldest")
            m.d.sync += owner[c].eq(owner2[c])
        with m.If(tr.dispatch):
            m.d.comb += Assert(has_room[c], f"core {c} given a task while it holds one per set")
            m.d.comb += Assert(is_gemm.bit_select(tr.task, 1), f"core {c} given a record that is not a GEMM")
            m.d.comb += Assert(state == State.RUNNING, f"core {c} given a task while not running")
            m.d.comb += Assert(~dispatched.bit_select(tr.task, 1), f"core {c} given a finished record")
            starts(tr.task, f"core {c} given a task")
            with m.If(held[c] - tr.complete == 0):
                m.d.sync += owner[c].eq(tr.task)
            with m.Else():
                m.d.sync += owner2[c].eq(tr.task)
            m.d.comb += newly.bit_select(tr.task, 1).eq(1)
        m.d.sync += unstarted[c].eq(unstarted[c] + tr.dispatch - tp.start)
        with m.If(tp.start):
            m.d.comb += Assert(unstarted[c] != 0, f"core {c} started without a dispatched part")
        if S > 1:
            # the core's contract: busy rises the cycle after a start and only then; a
            # start while it is busy would be ignored (the task lost)
            was_start, was_busy = Signal(name=f"was_start{c}"), Signal(name=f"was_busy{c}")
            m.d.sync += [was_start.eq(tp.start), was_busy.eq(tp.busy)]
            m.d.comb += [Assume(~was_start | tp.busy), Assume(~tp.busy | was_busy | was_start)]
            with m.If(tp.start):
                m.d.comb += Assert(~tp.busy, f"core {c} started while computing")
        for t in range(TASKS):
            delta[t] = delta[t] + (tr.dispatch & (tr.task == t)) - (tr.complete & (owner[c] == t))
    for t in range(TASKS):
        m.d.sync += parts[t].eq(parts[t] + delta[t])

    # the update engine
    ut = sch.update_trace
    upd_owner = Signal(cfg.program_bits)
    with m.If(upd.start):
        m.d.comb += [Assert(is_update.bit_select(ut.task, 1), "the engine given a record that is not an UPDATE"),
                     Assert(~eng_busy & ~sch.dma_busy & (state == State.RUNNING),
                            "the engine started while it or the DMA runs"),
                     Assert(~dispatched.bit_select(ut.task, 1), "the engine given a started record")]
        starts(ut.task, "the engine given an UPDATE")
        m.d.sync += upd_owner.eq(ut.task)
        m.d.comb += newly.bit_select(ut.task, 1).eq(1)
    with m.If(eng_busy | upd.start):
        m.d.comb += Assert(~sch.load.valid & ~sch.store.valid, "a DMA job offered while the engine runs")
    with m.If(upd.done):
        m.d.sync += served.bit_select(upd_owner, 1).eq(1)

    # PAUSE: entered only at an unserved PAUSE whose dependencies are done, with every
    # core free and the engine idle; the host's resume serves it
    was = Signal(State)
    m.d.sync += was.eq(state)
    at = sch.status.paused_at
    entering = (state == State.PAUSED) & (was != State.PAUSED)
    with m.If(entering):
        m.d.comb += Assert(is_pause.bit_select(at, 1), "paused at a record that is not a PAUSE")
    decide_ok = Signal(TASKS)       # per record: it could be paused at in this cycle
    all_free = Const(1, 1)
    any_free = Const(0, 1)
    for c in range(C):
        all_free = all_free & ~occupied[c]
        any_free = any_free | ~occupied[c]
    for t in range(TASKS):
        m.d.comb += decide_ok[t].eq(deps_ok[t] & all_free & ~eng_busy & ~dispatched[t] & (t < ntasks))
    # PAUSED shows the cycle after the decision: check the decision's cycle
    was_ok = Signal(TASKS)
    m.d.sync += was_ok.eq(decide_ok)
    with m.If(entering):
        m.d.comb += Assert(was_ok.bit_select(at, 1),
                           "paused at a PAUSE not ready, or with a core or the engine busy")
        m.d.sync += dispatched.bit_select(at, 1).eq(1)
    with m.If((state == State.PAUSED) & ctl.resume):
        m.d.sync += served.bit_select(at, 1).eq(1)
    with m.If(state == State.PAUSED):
        for c in range(C):
            m.d.comb += Assert(~occupied[c], f"core {c} holds a task while paused")
    with m.If(state == State.DONE):
        for t in range(TASKS):
            m.d.comb += Assert((t >= ntasks) | done[t], f"DONE with record {t} not done")
        for c in range(C):
            m.d.comb += Assert(~occupied[c], f"DONE while core {c} holds a task")
    # records started this cycle (dispatch or engine) count from the next one; a run's
    # start clears the monitor (the scheduler is idle then, nothing starts)
    with m.If(started):
        m.d.sync += [ntasks.eq(ctl.ntasks), policy.eq(ctl.policy), served.eq(0), dispatched.eq(0)]
    with m.Elif(newly != 0):
        m.d.sync += dispatched.eq(dispatched | newly)

    # the DMA's contract: a core's ``loaded`` comes only after the load job that
    # includes it was taken, ``store_done`` only for a store job taken before
    loading = [Signal(name=f"loading{c}") for c in range(C)]
    for c in range(C):
        with m.If(sch.load.valid & sch.load.ready & sch.load.payload.group[c]):
            m.d.sync += loading[c].eq(1)
        with m.If(sch.loaded[c]):
            m.d.sync += loading[c].eq(0)
        m.d.comb += Assume(~sch.loaded[c] | loading[c])
    storing = Signal()
    with m.If(sch.store.valid & sch.store.ready):
        m.d.sync += storing.eq(1)
    with m.If(sch.store_done):
        m.d.sync += storing.eq(0)
    m.d.comb += Assume(~sch.store_done | storing)

    for s in (sch.load, sch.store):
        stalled = Signal()
        payload = Value.cast(s.payload)
        last = Signal.like(payload)
        m.d.sync += [stalled.eq(s.valid & ~s.ready), last.eq(payload)]
        with m.If(stalled):
            m.d.comb += Assert(s.valid & (payload == last), "stream item withdrawn or changed")

    # bounded liveness
    taken = dispatched | newly
    oldest = Signal(range(TASKS + 1))
    m.d.comb += oldest.eq(TASKS)
    for t in reversed(range(TASKS)):
        with m.If(~dispatched[t]):
            m.d.comb += oldest.eq(t)
    o_gemm, o_pause, o_update = (k.bit_select(oldest, 1) for k in (is_gemm, is_pause, is_update))
    # the cores a GEMM needs, by the policy (ganpu.processor.model.cores_for): every
    # core under TEMPORAL, one under SPATIAL; under ADAPTIVE one, or in a compute-bound
    # program min(C, M) (time multiplexing: it waits for them), the regime of
    # model.compute_bound over the run's GEMM records, restated here from the records
    in_run = [is_gemm[t] & (t < ntasks) for t in range(TASKS)]
    sum_work = sum(Mux(g, v.work, 0) for g, v in zip(in_run, views))
    sum_words = sum(Mux(g, v.words, 0) for g, v in zip(in_run, views))
    n_gemm = sum(g.as_unsigned() for g in in_run)
    bound = ((sum_work * cfg.core.host_words > sum_words * C) & (sum_work > n_gemm * C * MIN_SPLIT))
    # a core with a free set counts as free for a GEMM (two sets: the group is staged
    # behind the running one, and ADAPTIVE always takes min(C, M): staged_cores)
    n_free = sum(has_room[c].as_unsigned() for c in range(C))
    room_all = Const(1, 1)
    room_any = Const(0, 1)
    for c in range(C):
        room_all = room_all & has_room[c]
        room_any = room_any | has_room[c]
    enough = Signal(TASKS)          # per record: min(C, M) cores free
    for t, v in enumerate(views):
        m.d.comb += enough[t].eq(n_free >= Mux(v.m > C, C, v.m))
    adaptive_ok = Mux(bound | (S > 1), enough.bit_select(oldest, 1), room_any)
    cores_ok = Mux(policy == Policy.TEMPORAL.value, room_all,
                   Mux(policy == Policy.SPATIAL.value, room_any, adaptive_ok))
    resources = ~sch.load.valid & Mux(o_gemm, cores_ok & ~eng_busy,
                                      Mux(o_pause, all_free & ~eng_busy,
                                          ~eng_busy & ~sch.dma_busy & ~sch.store.valid))
    waiting = ((state == State.RUNNING) & (oldest < ntasks) & deps_ok.bit_select(oldest, 1) &
               resources & ~taken.bit_select(oldest, 1))
    wait = Signal(range(LIVENESS + 1))
    with m.If(waiting):
        m.d.sync += wait.eq(wait + 1)
    with m.Else():
        m.d.sync += wait.eq(0)
    m.d.comb += Assert(wait < LIVENESS, f"a ready record waited {LIVENESS} cycles")

    reused = Signal()
    with m.If(sch.trace[0].dispatch & (dispatched != 0) & ~occupied[0] &
              (sch.trace[0].task != owner[0])):
        m.d.sync += reused.eq(1)
    has_dep = Signal(TASKS)
    m.d.comb += has_dep.eq(Cat(*(v.deps[0].valid for v in views)))
    dep_seen = Signal()
    for c in range(C):
        with m.If(sch.trace[c].dispatch & has_dep.bit_select(sch.trace[c].task, 1)):
            m.d.sync += dep_seen.eq(1)
    # a dependent record waits in the window while its dependency runs
    waiting_dep = (views[1].deps[0].valid & (views[1].deps[0].index == 0) & dispatched[0] &
                   ~done[0] & ~dispatched[1] & (occupied[0] | occupied[1]))
    m.d.comb += [Cover(occupied[0] & occupied[1] & (owner[0] != owner[1])),
                 Cover(entering), Cover(upd.start),
                 # the first record waits through a whole scan (Head, Addr, Eval, Decide)
                 Cover(wait == 4)]
    if S > 1:
        # a task staged on a core behind the one it holds
        m.d.comb += Cover(held[0] == 2)
    if top.deep:
        m.d.comb += [Cover(dep_seen), Cover(reused), Cover(waiting_dep)]


class LateScheduler(Scheduler):
    """A mutant: in a compute-bound program under ADAPTIVE it waits for one core more
    than ``min(cores, M)``, so a record of ``cores`` rows or more never starts.
    Bounded liveness must refute it (the policy lets that record go once its cores are
    free), which shows the property still catches a stall in the regime where a
    record legitimately waits for several cores."""

    @staticmethod
    def bound_cores(free, wanted):
        return Mux(free > wanted, wanted, 0)


# the same with two buffer sets per core (prefetching, docs/astm.md)
CONFIG_SETS = ProcessorConfig(cores=CONFIG.cores, core=CoreConfig(
    lanes=1, geom=CONFIG.core.geom, eors_lanes=2, buffer_sets=2), gbuf_bits=8, program_bits=1, deps=1, window=1)


def design(deep=False, mutant=False, cfg=CONFIG):
    """The proof's top; ``mutant``: of :class:`LateScheduler` instead."""
    width = 16 * record_words(cfg) * TASKS
    top = Harness((LateScheduler if mutant else Scheduler)(cfg), properties,
                  extra={"records": In(width)}, driven=("table.data",))
    top.deep = deep
    return top


PROOFS = {"scheduler": (design, DEPTH),
          "scheduler_sets": (lambda: design(cfg=CONFIG_SETS), DEPTH),
          # the covers of a whole task's life (a dependent dispatched after its
          # dependency completed, a core reused) need more cycles than CI affords
          "scheduler_deep": (lambda: design(deep=True), DEEP_DEPTH)}
SCALE_ONLY = {"scheduler_deep"}
