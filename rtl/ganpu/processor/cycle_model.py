"""Cycle model of a program on the processor: per-task core cycles, DMA words and the
schedule under each :class:`~ganpu.processor.program.Policy` (``docs/astm.md``).

What is modelled
----------------
* **Core cycles** of a task (or of the rows of it one core runs) from its surviving
  work, :func:`core_cycles`: ``max(macs / lanes, M*K, M*N) + CORE_OVERHEAD`` -- the MAC
  lanes, the indexer reading A at one element per cycle and the epilogue writing one
  output per cycle, whichever binds, plus a fixed start/drain cost. The constants are
  calibrated against the core's RTL cycles measured by ``ganpu bench core``
  (:func:`calibrate` refits them from that command's JSON).
* **DMA** (``docs/processor.md``): one engine moving one job at a time, one word per
  cycle, or about ``dma_width`` (default ``cfg.core.host_words``) in a *wide* or
  *transposed* pass (rows of whole words, the BW pass of weights stored row by row
  included: :meth:`~ganpu.processor.dma.Dma.pass_issues`), with the processor's per-job, per-pass
  and skipped-pass costs (``JOB_SETUP``, ``DMA_SETUP``, ``STORE_SETUP``, ``SKIP``,
  ``START``). A task given ``k`` cores is one load job: B, BW and the bias once,
  broadcast to the ``k`` cores, then each core's rows of A (and of MASK_IN); a core
  starts as soon as its own rows are in, while the DMA loads the next core's. When a
  core finishes, its rows of OUT (and MASK_OUT) are one store job; the core is free
  again when it is stored. A waiting store is taken before a waiting load; the
  scheduler holds one load job until the DMA takes it, and dispatches nothing else
  meanwhile.
* **Check**: the program checker reads every record before the first dispatch,
  ``CHECK`` cycles each (the step's cycles include them, as the CYCLES counter does),
  then one cycle decides the adaptive policy's regime
  (:func:`~ganpu.processor.model.compute_bound` of the program at ``dma_width``).
* **Scheduler**: the ``window`` oldest undispatched records are scanned in program
  order (the scan skips records already dispatched); the first whose dependencies
  are done is dispatched with as many cores as
  :func:`~ganpu.processor.model.cores_for` gives it under the run's policy (the very
  rule the hardware builds), else the scheduler waits for the next completion. A ready
  PAUSE stops dispatching; once every core and the DMA are idle the host acts (its time
  is not counted: ``pause_cycles``) and the program resumes.

* **Scan**: the scheduler reads its window two cycles per record; a dispatch leaves it
  ``window + 2 + SCAN_ASSIGN`` cycles after the event that allowed it (half a scan on
  average, then the row split and the assignment); and a completion that frees the
  last core while a PAUSE is already ready serves the PAUSE before the records that
  completion readies (the scan in flight read them before it).

What is not modelled: bus contention between the DMA and the host, GBUF bank
conflicts, the scan's exact phase, host time at pauses (the processor's CYCLES
counter includes it).
"""

import heapq
from dataclasses import dataclass, field

import numpy as np

from .config import ProcessorConfig
from .program import TaskKind, Policy
from .update_engine import UpdateEngine
from .checker import ProgramChecker

__all__ = ["core_cycles", "lane_cycles", "part_jobs", "task_row_terms", "calibrate", "CORE_OVERHEAD",
           "OVERHEAD_BY_LANES", "core_overhead",
           "LANE_QUEUE", "LANE_JOBS", "JOB_SETUP", "DMA_SETUP", "STORE_SETUP",
           "SKIP", "START", "CHECK", "REGIME", "SCAN_ASSIGN", "COSTS", "task_row_macs",
           "staged_cores", "lost_cycles",
           "Schedule", "simulate", "compare_policies", "gantt"]

# Calibrated with ``ganpu bench core --json F`` (lanes 4, the MLP GAN's step 0):
# see calibrate() and docs/astm.md for the fit and its error.
CORE_OVERHEAD = 106
# The same fit per core by its MAC lanes: the 2-lane ``small`` core on every per-core
# part of the narrow step's GEMMs, run on the core alone (ganpu.bench_step.core_overhead)
OVERHEAD_BY_LANES = {4: CORE_OVERHEAD, 2: 40.5}
# The distributor's queue per lane (docs/core.md); parts of at most LANE_JOBS jobs
# (live outputs) are scheduled job by job (lane_cycles), larger ones by the slot rule
LANE_QUEUE = 4
LANE_JOBS = 512
# DMA timing of the processor (docs/processor.md): taking a job costs JOB_SETUP; a load
# pass of w words w + DMA_SETUP (set-up, the last core write, the drain check); a store
# pass w + STORE_SETUP (set-up and the core host port's read latency); a step a load
# job skips (a core outside the group, no MASK_IN, BW or BIAS) and the load job's end
# SKIP each; a core starts START cycles after its last load pass.
JOB_SETUP = 1
DMA_SETUP = 3
STORE_SETUP = 6
SKIP = 1
START = 1
# The program checker reads and checks every record before the first dispatch
# (ProgramChecker: DescriptorChecker.latency + 3 cycles per record, one for the verdict)
CHECK = ProgramChecker.latency
# The scheduler's cycle after the verdict that latches the adaptive regime (its sums
# are done by then: they read one record per cycle beside the checker)
REGIME = 1
# The scheduler's Split and Assign states after its scan's decision (the row split
# by a reciprocal multiplication, then the assignment: one short step each)
SCAN_ASSIGN = 2
# the fixed costs simulate(costs=...) can replace
COSTS = ("JOB_SETUP", "DMA_SETUP", "STORE_SETUP", "SKIP", "START", "CHECK", "REGIME", "SCAN_ASSIGN")


def staged_cores(cores, idle, staged, m):
    """Cores the adaptive policy gives a ready GEMM record on a processor with two
    buffer sets per core (``simulate(..., prefetch=True)``, ``docs/astm.md``) given
    ``idle`` cores that hold no task and ``staged`` ones that hold one (running or
    loading) with their other set free (0: the record waits).

    In either regime the record waits until ``min(cores, m)`` cores have a free set
    and takes them, idle ones first (:func:`simulate` picks them): a group either
    starts at once on idle cores or is staged behind the group running on the cores,
    its loads overlapping that group's compute. The sharing regime's gain (one task's
    transfers behind another's compute) is what the second set gives a group of all
    the cores, without the long task left on one core; every sharing variant measured
    was slower (``docs/astm.md``). A core holding two tasks counts in neither."""
    k = min(cores, m)
    return k if idle + staged >= k else 0


def core_overhead(core):
    """The calibrated per-task overhead of a core config (its ``lanes``'
    ``OVERHEAD_BY_LANES`` entry, else ``CORE_OVERHEAD``)."""
    return OVERHEAD_BY_LANES.get(core.lanes, CORE_OVERHEAD)


def lane_cycles(lanes, slots, jobs, queue=None):
    """Cycles from the first job's issue until the lanes have taken every job into a
    slot and finished it: ``jobs`` are the surviving terms of each job (one live
    output), in issue order (row by row), one issued per cycle; the distributor gives
    each to the lowest-numbered lane whose ``queue``-deep queue has room (else the issue
    waits); a lane moves a queued job into a free slot at once; a slot holds a job
    ``slots * max(terms, 1)`` cycles (one term every ``slots`` cycles,
    ``docs/core.md``). So a few long jobs crowd into lane 0 instead of spreading."""
    from collections import deque
    queue = LANE_QUEUE if queue is None else queue
    free = [[0] * slots for _ in range(lanes)]
    waiting = [deque() for _ in range(lanes)]      # start times of jobs not yet in a slot
    t = end = 0
    for terms in jobs:
        while True:
            lane = None
            for c in range(lanes):
                while waiting[c] and waiting[c][0] <= t:
                    waiting[c].popleft()
                if len(waiting[c]) < queue:
                    lane = c
                    break
            if lane is not None:
                break
            t = min(w[0] for w in waiting if w)    # the issue waits for a queue place
        f = free[lane]
        i = f.index(min(f))
        start = max(t, f[i])
        f[i] = start + slots * max(int(terms), 1)
        if start > t:
            waiting[lane].append(start)
        end = max(end, f[i])
        t += 1
    return end


def core_cycles(lanes, m, n, k, macs, overhead=None, slots=None, jobs=None):
    """Core cycles of ``m`` rows of an ``m x n x k`` gemm with ``macs`` surviving MACs.

    ``max(macs / lanes, m*k, m*n, lanes') + k + overhead``: the lanes' issue rate, the
    indexer's one A element per cycle, the epilogue's one output per cycle, and the
    MAC lanes' schedule, whichever binds; then the first row's A read before its
    first job (``k``) and a fixed start/drain cost. The lanes' schedule is
    :func:`lane_cycles` of ``jobs`` (each live output's surviving terms, in issue
    order) when given and at most ``LANE_JOBS`` of them, else the slot rule (a lane
    keeps ``slots`` sums in flight, each term of a sum ``slots`` cycles after the
    previous one, so ``ceil(m*n / lanes)`` outputs per lane take ``rounds =
    ceil(outputs / slots)`` rounds of ``slots * k_eff`` cycles, with ``k_eff = macs /
    (m*n)`` the surviving terms per output), which the job-by-job schedule approaches
    when every lane's slots stay full.
    """
    if m == 0:
        return 0
    if slots is None:
        from ..arith.mac import Fp16Mac
        slots = Fp16Mac.slots
    over = CORE_OVERHEAD if overhead is None else overhead
    outs = m * n
    if jobs is not None and len(jobs) <= LANE_JOBS:
        ring = lane_cycles(lanes, slots, jobs)
    else:
        rounds = -(-(-(-outs // lanes)) // slots)
        ring = rounds * slots * macs / outs
    return max(macs / lanes, m * k, outs, ring) + k + over


def part_jobs(nnz, live):
    """The jobs of some rows (:func:`lane_cycles`): row ``i``'s ``live[i]`` outputs each
    with its ``nnz[i]`` surviving terms, row by row."""
    return np.repeat(np.asarray(nnz, dtype=np.int64), np.asarray(live, dtype=np.int64))


def _chunks(m, n, k, geom):
    rows = min(m, geom.depth("a") // k, geom.depth("out") // n, geom.depth("mask") // n)
    return [min(rows, m - m0) for m0 in range(0, m, rows)]


def calibrate(rows, lanes=4, geom=None):
    """Fit ``CORE_OVERHEAD`` to the per-gemm rows of ``ganpu bench core --json`` (``M``,
    ``N``, ``K``, ``surviving_macs``, ``measured``; a gemm the host split into row
    chunks for ``geom``'s buffers is predicted chunk by chunk, its MACs shared in
    proportion to the rows; with ``row_nnz`` and ``row_live``, each row's surviving
    terms per output and live outputs, the lanes are scheduled job by job, see
    :func:`core_cycles`). Returns ``(overhead, errors)``: the median per-task
    overhead, and the relative error of every row, the largest, and of the total."""
    from ..core.config import Geometry
    geom = Geometry() if geom is None else geom
    base, nchunks = [], []
    for r in rows:
        ch = _chunks(r["M"], r["N"], r["K"], geom)
        nchunks.append(len(ch))
        b, m0 = 0, 0
        for c in ch:
            if "row_nnz" in r:
                nnz, live = np.asarray(r["row_nnz"][m0:m0 + c]), np.asarray(r["row_live"][m0:m0 + c])
                b += core_cycles(lanes, c, r["N"], r["K"], int((nnz * live).sum()), 0,
                                 jobs=part_jobs(nnz, live))
            else:
                b += core_cycles(lanes, c, r["N"], r["K"], r["surviving_macs"] * c / r["M"], 0)
            m0 += c
        base.append(b)
    base, chunks = np.array(base), np.array(nchunks, dtype=float)
    meas = np.array([r["measured"] for r in rows], dtype=float)
    over = float(np.median((meas - base) / chunks))
    pred = base + over * chunks
    err = (pred - meas) / meas
    return over, {"rows": err.tolist(), "total": float((pred.sum() - meas.sum()) / meas.sum()),
                  "max_abs": float(np.abs(err).max())}


def task_row_macs(cfg, rec, gbuf=None):
    """Surviving MACs of each row of GEMM record ``rec`` (array of length ``m``): the
    nonzero entries of the row of A times the outputs the core computes (all, or the
    MASK_IN bits where the core reads them). Without ``gbuf`` every MAC survives. An
    EORS task counts every output (its prediction is not kept in the GBUF)."""
    from .model import normalize, reads_mask_in
    r = normalize(cfg, rec)
    M, N, K = r["m"], r["n"], r["k"]
    if gbuf is None:
        return np.full(M, N * K, dtype=np.int64)
    a = r["a"]
    mi, ki = np.arange(M)[:, None], np.arange(K)[None, :]
    A = np.asarray(gbuf)[a["base"] + mi * a["s0"] + ki * a["s1"]]
    nnz = ((A & 0x7FFF) != 0).sum(axis=1)
    if reads_mask_in(r):
        live = (np.asarray(gbuf)[r["mask_in_base"] + np.arange(M * N)] & 1).reshape(M, N).sum(axis=1)
    else:
        live = np.full(M, N)
    return (nnz * live).astype(np.int64)


def task_row_terms(cfg, rec, gbuf=None):
    """``(nnz, live)`` of each row of GEMM record ``rec``: the surviving terms of each
    of its outputs (the nonzero entries of the row of A) and the outputs the core
    computes (all, or the MASK_IN bits where the core reads them); their product is
    :func:`task_row_macs`. Without ``gbuf`` every MAC survives."""
    from .model import normalize, reads_mask_in
    r = normalize(cfg, rec)
    M, N, K = r["m"], r["n"], r["k"]
    if gbuf is None:
        return np.full(M, K, dtype=np.int64), np.full(M, N, dtype=np.int64)
    a = r["a"]
    mi, ki = np.arange(M)[:, None], np.arange(K)[None, :]
    A = np.asarray(gbuf)[a["base"] + mi * a["s0"] + ki * a["s1"]]
    nnz = ((A & 0x7FFF) != 0).sum(axis=1).astype(np.int64)
    if reads_mask_in(r):
        live = (np.asarray(gbuf)[r["mask_in_base"] + np.arange(M * N)] & 1).reshape(M, N).sum(axis=1)
    else:
        live = np.full(M, N)
    return nnz, live.astype(np.int64)


@dataclass
class Schedule:
    """The result of :func:`simulate`. ``segments`` are ``(task, core, start, end)``
    with ``start..end`` the core's compute; ``dma`` ``(task, start, end, kind)``
    transfers; ``cores_of`` the cores each GEMM record got; ``finished`` the cycle each
    record completed (its last store done, or the host resumed); ``bound`` the
    adaptive policy's regime (the program is compute-bound); ``prefetch`` two buffer
    sets per core."""
    policy: Policy
    cores: int
    cycles: int
    segments: list
    dma: list
    busy: list
    occupied: list
    dma_cycles: int
    oracle_cycles: float
    surviving_macs: int
    pause_points: list
    cores_of: dict = field(default_factory=dict)
    finished: dict = field(default_factory=dict)
    bound: bool = False
    prefetch: bool = False

    @property
    def busy_fraction(self):
        return [b / self.cycles if self.cycles else 0.0 for b in self.busy]

    @property
    def efficiency(self):
        return self.oracle_cycles / self.cycles if self.cycles else 0.0

    def summary(self):
        return {"policy": self.policy.name.lower(), "cores": self.cores, "step_cycles": self.cycles,
                "busy": [round(b, 4) for b in self.busy_fraction],
                "dma_cycles": self.dma_cycles, "oracle_cycles": self.oracle_cycles,
                "surviving_macs": self.surviving_macs, "step_efficiency": self.efficiency}

    def to_json(self):
        return {**self.summary(),
                "segments": [list(s) for s in self.segments],
                "dma": [list(d) for d in self.dma],
                "cores_of": {str(k): v for k, v in self.cores_of.items()}}


def simulate(cfg, records, policy=Policy.ADAPTIVE, gbuf=None, *, row_macs=None, row_terms=None,
             dma_width=None, overhead=None, min_work=None, rule=None, prefetch=None,
             costs=None):
    """Schedule ``records`` on ``cfg`` under ``policy``; returns a :class:`Schedule`.

    Surviving work comes from ``row_macs`` (a list, per record, of per-row MAC arrays,
    e.g. from :func:`task_row_macs`), else from ``gbuf`` (the GBUF after the step: every
    operand A is still there), else every MAC survives; ``row_terms`` (per record,
    :func:`task_row_terms`; from ``gbuf`` when it is given and ``row_macs`` is not)
    lets :func:`core_cycles` schedule a small part's lanes job by job. ``rule(free, ready, rec)``
    replaces the adaptive rule (for exploring others): ``ready`` the ready GEMM records
    of the window in program order, ``rec`` the first of them; it returns the cores
    (0: wait). ``dma_width`` replaces the host port's ``cfg.core.host_words`` (the
    elements a wide DMA pass moves per cycle, and the width the adaptive policy's
    regime is decided for). ``costs`` replaces some of the fixed costs (a dict with
    names from :data:`COSTS`, e.g. ``{"DMA_SETUP": 0}``: what each costs the step).

    ``prefetch`` (default: the config's ``core.buffer_sets`` is 2) models two buffer
    sets per core, as the scheduler builds them (``docs/astm.md``, "Prefetching the
    next task"): a core may be given its next task while it computes (its load goes to
    the idle set) and start it as soon as both its compute is done and the load is in;
    a set is free again when its task's rows are stored. A core counts as free for TEMPORAL and SPATIAL while it has a free set;
    ADAPTIVE counts idle cores (no task held) and staged ones (one held) apart,
    :func:`staged_cores`, and ``rule`` then gets the idle count as a fourth argument
    (``free`` counting both). Cores are taken idle ones first.
    """
    from .model import (normalize, split_rows, cores_for, eors_active, reads_mask_in, MIN_WORK,
                        compute_bound)
    if not isinstance(cfg, ProcessorConfig):
        raise TypeError(f"cfg must be a ProcessorConfig, not {cfg!r}")
    policy = Policy(policy)
    if dma_width is None:
        dma_width = cfg.core.host_words
    if isinstance(dma_width, bool) or not isinstance(dma_width, int) or dma_width < 1:
        raise ValueError(f"dma_width must be a positive int, not {dma_width!r}")
    from .dma import Dma
    min_work = MIN_WORK if min_work is None else min_work
    cost = {name: globals()[name] for name in COSTS}
    if costs is not None:
        bad = sorted(set(costs) - set(COSTS))
        if bad:
            raise ValueError(f"costs: unknown cost names {bad!r}; the costs are {COSTS!r}")
        cost.update(costs)
    JOB_SETUP, DMA_SETUP, STORE_SETUP, SKIP, START, CHECK, REGIME, SCAN_ASSIGN = (
        cost[name] for name in COSTS)
    overhead = core_overhead(cfg.core) if overhead is None else overhead
    prefetch = cfg.core.buffer_sets > 1 if prefetch is None else prefetch
    recs = [normalize(cfg, r) for r in records]
    if row_macs is None:
        row_macs = [task_row_macs(cfg, r, gbuf) if r["kind"] == TaskKind.GEMM.value else None
                    for r in recs]
        if row_terms is None and gbuf is not None:
            row_terms = [task_row_terms(cfg, r, gbuf) if r["kind"] == TaskKind.GEMM.value else None
                         for r in recs]
    C, lanes = cfg.cores, cfg.core.lanes
    n = len(recs)
    deps = [[d["index"] for d in r["deps"] if d["valid"]] for r in recs]
    done = [False] * n
    pending = list(range(n))          # undispatched, program order
    free = set(range(C))
    full = 2 if prefetch else 1
    sets = [full] * C                 # free buffer sets per core
    computing = [False] * C
    waiting = {}                      # core: a start postponed until its compute ends
    segments, dma = [], []
    busy, occupied = [0] * C, [0] * C
    events = []                       # (time, seq, kind, payload)
    seq = 0
    left, cores_of, finished, pauses = {}, {}, {}, []
    loads, stores = [], []            # DMA jobs waiting: (task, passes, payload)
    dma_busy = False
    # the regime the scheduler sums while the program is checked: as if the host port
    # moved dma_width words per cycle
    bound = compute_bound(recs, C, dma_width)
    # a dispatch leaves the scheduler this long after the event that allowed it: half
    # a window scan on average (two cycles per record and two), the row split and the
    # assignment
    SCAN = cfg.window + 2 + SCAN_ASSIGN
    now = CHECK * n + REGIME + 1 if n else 0    # the check, the regime, the first dispatch

    def push(time, kind, payload):
        nonlocal seq
        heapq.heappush(events, (time, seq, kind, payload))
        seq += 1

    def pass_cycles(w, cols=1, scol=1, setup=None, bw=False, srow=None):
        """A pass of ``w`` words in rows of ``cols``, GBUF column stride ``scol`` and row
        stride ``srow`` (None for ``w``: a pass the job skips)."""
        store = setup is not None
        setup = DMA_SETUP if setup is None else setup
        return SKIP if w is None else setup + Dma.pass_issues(
            cfg, w, cols, scol, bw, dma_width, srow=cols if srow is None else srow, store=store)

    def dma_next():
        nonlocal dma_busy
        if dma_busy or not (stores or loads):
            return
        if not stores and loads[0][4] > now:
            # the scheduler assigns the group at the end of its scan
            push(loads[0][4], "scan", None)
            return
        # a store is taken before a waiting load: it frees a core
        job = stores.pop(0) if stores else loads.pop(0)
        t, cycles, kind, payload = job[:4]
        dma.append((t, now, now + cycles, kind))
        dma_busy = True
        push(now + cycles, kind, payload)
        if kind == "load":
            t, t_disp, ready_at = payload
            for core, at in ready_at.items():
                push(now + at + START, "start", (t, core, t_disp))

    def dispatch(t, rec, k):
        M, N, K = rec["m"], rec["n"], rec["k"]
        parts = split_rows(M, k)
        cores = sorted(free, key=lambda c: (-sets[c], c))[:len(parts)]
        cores_of[t] = cores
        left[t] = len(parts)
        rows = dict(zip(cores, parts))
        # the shared operands first (one broadcast pass each), then each core's own
        # rows: a core starts as soon as its A (and MASK_IN) are in
        sb = rec["b"]["s1"]
        cycles = JOB_SETUP + pass_cycles(N * K, K, sb, srow=rec["b"]["s0"]) + pass_cycles(
            N * K if eors_active(rec) else None, K, sb, bw=True, srow=rec["b"]["s0"]) + pass_cycles(
            N if rec["bias"] else None, N, srow=0)
        ready_at = {}
        for core in range(C):       # every core is a step of the job, in the group or not
            if core in rows:
                m0, m1 = rows[core]
                cycles += pass_cycles((m1 - m0) * K, K, rec["a"]["s1"], srow=rec["a"]["s0"]) + pass_cycles(
                    (m1 - m0) * N if reads_mask_in(rec) else None, N)
                ready_at[core] = cycles
            else:
                cycles += SKIP
        cycles += SKIP              # the job's end
        for core in cores:
            sets[core] -= 1
            if sets[core] == 0:
                free.discard(core)
        loads.append((t, cycles, "load", (t, now, ready_at), now + SCAN))

    def started(t, core, t_disp):
        rec = recs[t]
        N, K = rec["n"], rec["k"]
        m0, m1 = dict(zip(cores_of[t], split_rows(rec["m"], len(cores_of[t]))))[core]
        macs = int(row_macs[t][m0:m1].sum())
        jobs = None
        if row_terms is not None and row_terms[t] is not None:
            nnz, live = row_terms[t]
            jobs = part_jobs(nnz[m0:m1], live[m0:m1])
        end = now + int(np.ceil(core_cycles(lanes, m1 - m0, N, K, macs, overhead, jobs=jobs)))
        computing[core] = True
        segments.append((t, core, now, end))
        busy[core] += end - now
        push(end, "computed", (t, core, t_disp, m1 - m0))

    while True:
        # dispatch everything possible at `now`
        while pending:
            window = pending[:cfg.window]
            # an UPDATE that cannot take the DMA's ports yet is passed over (Scheduler)
            upd_free = not dma_busy and not loads and not stores
            ready = [t for t in window if all(done[d] for d in deps[t])
                     and (recs[t]["kind"] != TaskKind.UPDATE.value or upd_free)]
            if not ready:
                break
            # the scan's race: the completion that frees the last core also readies the
            # records after it, but the scan in flight read them before it and serves an
            # already ready PAUSE first (it tests the free cores at its end)
            idle = all(x == full for x in sets) and not dma_busy and not loads and not stores
            late = [t for t in ready if any(finished.get(d) == now for d in deps[t])]
            if idle and late and any(recs[t]["kind"] == TaskKind.PAUSE.value and t not in late
                                     for t in ready):
                ready = [t for t in ready if t not in late]
            t = ready[0]
            if recs[t]["kind"] == TaskKind.PAUSE.value:
                if all(x == full for x in sets) and not dma_busy and not loads and not stores:
                    pauses.append((t, now))
                    done[t] = True
                    finished[t] = now
                    pending.remove(t)
                    continue
                break
            if recs[t]["kind"] == TaskKind.UPDATE.value:
                # the update engine takes the DMA's GBUF ports between DMA jobs
                if not dma_busy and not loads and not stores:
                    pending.remove(t)
                    cycles = UpdateEngine.cycles(recs[t]["count"], cfg.core.host_words)
                    dma.append((t, now, now + cycles, "update"))
                    dma_busy = True
                    push(now + cycles, "update", t)
                    continue
                break
            rec = recs[t]
            gemms = [u for u in ready if recs[u]["kind"] == TaskKind.GEMM.value]
            idle = sum(1 for c in free if sets[c] == full)
            if rule is not None and policy == Policy.ADAPTIVE:
                args = (len(free), [recs[u] for u in gemms], rec) + ((idle,) if prefetch else ())
                k = min(len(free), rec["m"], rule(*args))
            elif prefetch and policy == Policy.ADAPTIVE:
                k = staged_cores(C, idle, len(free) - idle, rec["m"])
            else:
                k = cores_for(policy, C, len(free), len(gemms), rec["m"], rec["work"], min_work,
                              bound=bound)
            # the scheduler holds one load job until the DMA takes it
            if k == 0 or loads:
                break
            pending.remove(t)
            dispatch(t, rec, k)
        dma_next()
        if not events:
            if pending:
                raise RuntimeError(f"deadlock at cycle {now}: records {pending[:cfg.window]} "
                                   f"wait for dependencies that never finish")
            break
        time, _, kind, payload = heapq.heappop(events)
        now = max(now, time)
        if kind == "scan":
            pass
        elif kind == "load":
            dma_busy = False
        elif kind == "update":
            dma_busy = False
            done[payload] = True
            finished[payload] = now
        elif kind == "start":
            if computing[payload[1]]:
                waiting[payload[1]] = payload
            else:
                started(*payload)
        elif kind == "computed":
            t, core, t_disp, rows = payload
            computing[core] = False
            if core in waiting:
                push(now + START, "start", waiting.pop(core))
            rec = recs[t]
            n = rec["n"]
            cycles = JOB_SETUP + pass_cycles(rows * n, n, rec["out"]["s1"], STORE_SETUP,
                                             srow=rec["out"]["s0"]) + (
                pass_cycles(rows * n, n, 1, STORE_SETUP) if rec["store_mask"] else 0)
            stores.append((t, cycles, "store", (t, core, t_disp)))
        else:
            dma_busy = False
            t, core, t_disp = payload
            occupied[core] += now - t_disp
            sets[core] += 1
            free.add(core)
            left[t] -= 1
            if left[t] == 0:
                done[t] = True
                finished[t] = now
    oracle_macs = int(sum(int(m.sum()) for m in row_macs if m is not None))
    return Schedule(policy, C, now, segments, dma, busy, occupied,
                    sum(e - s for _, s, e, _ in dma), oracle_macs / (C * lanes),
                    oracle_macs, pauses, cores_of, finished, bound, prefetch)


def lost_cycles(cfg, records, schedule, row_macs, overhead=None):
    """Where ``schedule``'s core cycles beyond the oracle go: ``{cause: core cycles}``,
    summing to ``cores * cycles - surviving MACs / lanes``.

    Compute beyond the MAC lanes' issue rate, per core part (:func:`core_cycles`):
    ``overhead`` (the per-task start and drain), ``first row`` (the first row's A read,
    ``K``) and ``binding`` (the indexer, the epilogue or the lanes' schedule binding
    above ``macs / lanes``, and the rounding to whole cycles), each for the small
    gemms (a dimension of 1: bias gradients, D's last layer) apart (``... small``).
    Idle cores: ``start`` (before a core's first part: the check and the first
    loads), ``pause`` (an idle stretch with a PAUSE in it: the drain before it and
    the loads after it), ``end`` (after a core's last part) and ``between`` (the
    others: dependencies, loads and stores not hidden, the scan)."""
    from .model import normalize, split_rows
    over = core_overhead(cfg.core) if overhead is None else overhead
    recs = [normalize(cfg, r) for r in records]
    out = dict.fromkeys(["overhead", "first row", "binding", "overhead small", "first row small",
                         "binding small", "start", "pause", "between", "end"], 0.0)
    lanes = cfg.core.lanes
    per_core = {c: [] for c in range(schedule.cores)}
    for t, core, a, b in schedule.segments:
        rec = recs[t]
        m0, m1 = dict(zip(schedule.cores_of[t], split_rows(rec["m"], len(schedule.cores_of[t]))))[core]
        macs = int(row_macs[t][m0:m1].sum())
        tag = " small" if min(rec["m"], rec["n"], rec["k"]) == 1 else ""
        out["overhead" + tag] += over
        out["first row" + tag] += rec["k"]
        out["binding" + tag] += (b - a) - macs / lanes - over - rec["k"]
        per_core[core].append((a, b))
    pauses = [at for _, at in schedule.pause_points]
    for core, segs in per_core.items():
        segs.sort()
        if not segs:
            out["start"] += schedule.cycles
            continue
        out["start"] += segs[0][0]
        out["end"] += schedule.cycles - segs[-1][1]
        for (_, e), (s, _) in zip(segs, segs[1:]):
            out["pause" if any(e <= p <= s for p in pauses) else "between"] += s - e
    return out


def compare_policies(cfg, records, gbuf=None, **kw):
    """``{policy name: Schedule}`` for the three policies on the same program and data."""
    row_macs = kw.pop("row_macs", None)
    if row_macs is None and gbuf is not None and "row_terms" not in kw:
        from .model import normalize
        kw["row_terms"] = [task_row_terms(cfg, r, gbuf) if normalize(cfg, r)["kind"] == TaskKind.GEMM.value
                           else None for r in records]
    if row_macs is None:
        from .model import normalize
        row_macs = [task_row_macs(cfg, r, gbuf) if normalize(cfg, r)["kind"] == TaskKind.GEMM.value
                    else None for r in records]
    return {p.name.lower(): simulate(cfg, records, p, row_macs=row_macs, **kw) for p in Policy}


def gantt(schedule, path, names=None, title=None):
    """Draw ``schedule`` as a Gantt chart PNG at ``path`` (one row per core, one for
    the DMA); ``names`` labels records (e.g. the compiler's task names)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    C = schedule.cores
    fig, ax = plt.subplots(figsize=(14, 1 + 0.5 * (C + 1)))
    cmap = plt.get_cmap("tab20")
    for t, core, s, e in schedule.segments:
        ax.broken_barh([(s, e - s)], (C - core - 0.4, 0.8), color=cmap(t % 20), edgecolor="k",
                       linewidth=0.3)
        if names is not None and e - s > schedule.cycles / 60:
            ax.text((s + e) / 2, C - core, names[t].split("/", 1)[-1], ha="center", va="center",
                    fontsize=5, clip_on=True)
    for t, s, e, kind in schedule.dma:
        ax.broken_barh([(s, e - s)], (-0.4, 0.8), color=cmap(t % 20),
                       alpha=1.0 if kind == "load" else 0.5)
    for t, at in schedule.pause_points:
        ax.axvline(at, color="r", linewidth=0.6)
    ax.set_yticks(list(range(C + 1)))
    ax.set_yticklabels(["DMA"] + [f"core {c}" for c in reversed(range(C))])
    ax.set_xlabel("cycle")
    ax.set_xlim(0, schedule.cycles)
    ax.set_title(title or f"{schedule.policy.name.lower()}: {schedule.cycles:,} cycles, "
                 f"efficiency {schedule.efficiency:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path
