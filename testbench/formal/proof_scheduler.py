"""The scheduler never runs two tasks on one core, never dispatches a task before its
dependencies are done, and keeps the handshake on its DMA streams.

On :class:`ganpu.processor.scheduler.Scheduler` alone, with a tiny configuration (2
cores, a 2-record task table, one dependency slot, a window of 1) and every other
input free: the CSR controls (start, resume, policy, task count), the program check's
answer, the DMA (``load.ready``, ``loaded``, ``store.ready``, ``store_done``; under its
contract: ``loaded`` for a core only after the load job naming it was taken,
``store_done`` only after a store job was taken) and the cores (``busy``, ``error``).
The task table is a 2-record memory of free contents,
constant over the run, read as the block RAM does (data the cycle after the address).
Records are GEMMs whose dependency points to an earlier record (what the program
checker enforces; a PAUSE record is not modelled here); their kind, dependencies, M and
work estimate are free, the operand fields (which only pass through to the DMA jobs)
are 0. An independent monitor follows
the trace (``dispatch``/``complete`` per core):

* a core is dispatched only when its previous part has completed, and completes only
  a part it was given;
* a task is dispatched only when every valid dependency has been dispatched and every
  core part of it has completed;
* a core's ``start`` comes only while it holds a dispatched part;
* ``load`` and ``store`` keep valid and payload while ``ready`` is low.

Depth 14 in the test suite, with the cover of two tasks on the two cores at once.
``scheduler_deep`` (run when ``GANPU_TEST_SCALE`` > 1) goes to depth 18 and also covers
a dependent record waiting while its dependency runs, a task dispatched after its
dependency completed, and a core given a second task (a whole task's life: start,
check, window scan, load, run, store, the next scan).
"""

from amaranth.hdl import Array, Assert, Assume, Cat, Cover, Signal, Value
from amaranth.lib.wiring import In

from ganpu.core.config import CoreConfig, Geometry
from ganpu.processor.config import ProcessorConfig
from ganpu.processor.program import TaskKind, task_layout
from ganpu.processor.scheduler import Scheduler
from ganpu.processor.task_table import record_words

from sby import Harness

CONFIG = ProcessorConfig(cores=2, core=CoreConfig(lanes=1, geom=Geometry(
    a_bits=2, b_bits=3, out_bits=2, bias_bits=2, mask_bits=2), eors_lanes=2),
    gbuf_bits=8, program_bits=1, deps=1, window=1)
DEPTH = 14
DEEP_DEPTH = 18
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
    # the operand fields only pass through to the DMA jobs, so they are held at 0 to
    # keep the proof small
    free_bits = 0
    for name in ("kind", "deps", "m", "work"):
        f = layout[name]
        free_bits |= ((1 << f.width) - 1) << f.offset
    for t, v in enumerate(views):
        m.d.comb += Assume(v.kind == TaskKind.GEMM)
        m.d.comb += Assume((recs[t] & ~free_bits & ((1 << width) - 1)) == 0)
        for j in range(cfg.deps):
            m.d.comb += Assume(~v.deps[j].valid | (v.deps[j].index < t))
    with m.If(sch.table.en):
        m.d.sync += sch.table.data.eq(Array(recs)[sch.table.addr])

    # the monitor
    occupied = [Signal(name=f"occupied{c}") for c in range(C)]
    owner = [Signal(cfg.program_bits, name=f"owner{c}") for c in range(C)]
    dispatched = Signal(TASKS)
    parts = [Signal(range(C + 1), name=f"parts{t}") for t in range(TASKS)]
    done = Signal(TASKS)
    for t in range(TASKS):
        m.d.comb += done[t].eq(dispatched[t] & (parts[t] == 0))
    # per record: every valid dependency done, then selected by the dispatched task
    # (a first version indexed an Array of record views with the task and reported a
    # dispatch whose dependency was done by both counts; this form has no proxies)
    deps_ok = Signal(TASKS)
    for t, v in enumerate(views):
        ok = 1
        for j in range(cfg.deps):
            ok = ok & (~v.deps[j].valid | done.bit_select(v.deps[j].index, 1))
        m.d.comb += deps_ok[t].eq(ok)
    delta = [0] * TASKS
    for c in range(C):
        tr = sch.trace[c]
        with m.If(tr.dispatch):
            m.d.comb += Assert(~occupied[c], f"core {c} given a task while it holds one")
            m.d.sync += [occupied[c].eq(1), owner[c].eq(tr.task),
                         dispatched.bit_select(tr.task, 1).eq(1)]
            m.d.comb += Assert(deps_ok.bit_select(tr.task, 1),
                               f"core {c} given a task before its dependency is done")
        with m.If(tr.complete):
            m.d.comb += Assert(occupied[c] & (tr.task == owner[c]),
                               f"core {c} completed a part it was not given")
            m.d.sync += occupied[c].eq(0)
        with m.If(sch.cores[c].start):
            m.d.comb += Assert(occupied[c], f"core {c} started without a dispatched part")
        for t in range(TASKS):
            delta[t] = delta[t] + (tr.dispatch & (tr.task == t)) - (tr.complete & (owner[c] == t))
    for t in range(TASKS):
        m.d.sync += parts[t].eq(parts[t] + delta[t])

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
    waiting = (views[1].deps[0].valid & (views[1].deps[0].index == 0) & dispatched[0] &
               ~done[0] & ~dispatched[1] & (occupied[0] | occupied[1]))
    m.d.comb += Cover(occupied[0] & occupied[1] & (owner[0] != owner[1]))
    if top.deep:
        m.d.comb += [Cover(dep_seen), Cover(reused), Cover(waiting)]


def design(deep=False):
    width = 16 * record_words(CONFIG) * TASKS
    top = Harness(Scheduler(CONFIG), properties, extra={"records": In(width)},
                  driven=("table.data",))
    top.deep = deep
    return top


PROOFS = {"scheduler": (design, DEPTH),
          # the covers of a whole task's life (a dependent dispatched after its
          # dependency completed, a core reused) need more cycles than CI affords
          "scheduler_deep": (lambda: design(deep=True), DEEP_DEPTH)}
SCALE_ONLY = {"scheduler_deep"}
