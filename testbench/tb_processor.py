"""cocotb bench of the processor against :func:`ganpu.processor.model.run_program`.

Random programs (random dependency graphs, sizes, strides, operations, PAUSE records)
under all three policies, with every GBUF word read back and compared; scheduler
invariants checked every cycle from the ``sched_trace`` port; malformed programs; host
accesses refused while a program runs. The host side is the package's driver
(:mod:`ganpu.host.processor_driver`) over :mod:`ganpu.sim.cocotb_bus`.

Environment: GANPU_SEED, GANPU_PROGRAMS (random programs), GANPU_TASKS (records per
program), GANPU_CORES, GANPU_GBUF_BITS and GANPU_SETS (the "small" config with that many
cores, GBUF address bits or buffer sets per core; default its own).
"""

import os

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.triggers import FallingEdge

from ganpu.core.descriptor import Error
from ganpu.host.processor_driver import BusError, ProgramFailed
from ganpu.processor.model import run_program, normalize
from ganpu.processor.program import Policy, State, Csr, ProgramError, TaskKind, Region
from ganpu.processor.scheduler import trace_layout, update_trace_layout
from ganpu.sim.cocotb_bus import attach

from tb_processor_programs import (random_program, pause_negate, malformed, UPDATE_MALFORMATIONS,
                                   config_from_env)

CFG = config_from_env()
SEED = int(os.environ.get("GANPU_SEED", "1"))
PROGRAMS = int(os.environ.get("GANPU_PROGRAMS", "3"))
TASKS = int(os.environ.get("GANPU_TASKS", "10"))


class Monitor:
    """Checks the scheduler's invariants every cycle from ``sched_trace``: a core holds
    at most one task per buffer set (one with one set: it runs one task at a time),
    starts them (two sets: the ``start`` pulses) and completes them in the order it was
    given them, each started before it completes; no task is dispatched (so its load
    does not start) before its dependencies are done (stored); every GEMM record runs
    exactly once with its rows covered exactly, nothing is left held; TEMPORAL
    dispatches with ``min(cores, M)`` cores once every core has a free set, SPATIAL
    with one; a PAUSE is served with no task held; from ``update_trace``: an UPDATE
    record starts once, after its dependencies, one at a time, and finishes. (That a
    core computes one task at a time is the core's: it ignores a ``start`` while busy,
    and the lost task would leave its record unfinished.)"""

    def __init__(self, dut, records, policy):
        self.dut = dut
        self.policy = policy
        self.recs = [normalize(CFG, r) for r in records]
        self.sets = CFG.core.buffer_sets
        self.held = [[] for _ in range(CFG.cores)]      # per core, tasks in dispatch order
        self.started = [[] for _ in range(CFG.cores)]   # two sets: of those, the started
        self.parts = {}          # task -> cores still running it
        self.rows = {}           # task -> row ranges
        self.done = set()
        self.dispatched = set()
        self.errors = []
        self.layout = trace_layout(CFG)
        self.ulayout = update_trace_layout(CFG)
        self.updating = None
        self.running = True
        cocotb.start_soon(self.watch())

    def fail(self, msg):
        self.errors.append(msg)

    def deps(self, t):
        return [d["index"] for d in self.recs[t]["deps"] if d["valid"]]

    def pause_done(self, t):
        if any(self.held):
            self.fail(f"PAUSE {t} served while cores hold {self.held}")
        for d in self.deps(t):
            if d not in self.done:
                self.fail(f"PAUSE {t} served before its dependency {d} finished")
        self.done.add(t)

    async def watch(self):
        while self.running:
            await FallingEdge(self.dut.clk)
            ubits = int(self.dut.update_trace.value)
            if ubits:
                self.watch_update(data.Const(self.ulayout, ubits))
            bits = int(self.dut.sched_trace.value)
            if not bits:
                continue
            tr = data.Const(self.layout, bits)
            now = {}
            for c in range(CFG.cores):
                e = tr[c]
                if self.sets > 1 and e.start:
                    t = int(e.start_task)
                    waiting = [u for u in self.held[c] if u not in self.started[c]]
                    if not waiting or waiting[0] != t:
                        self.fail(f"core {c} starts task {t}, not its oldest unstarted {waiting}")
                    self.started[c].append(t)
                if e.complete:
                    t = int(e.done_task if self.sets > 1 else e.task)
                    if not self.held[c] or self.held[c][0] != t:
                        self.fail(f"core {c} completes task {t} but holds {self.held[c]}")
                        continue
                    if self.sets > 1:
                        if t not in self.started[c]:
                            self.fail(f"core {c} completes task {t} it never started")
                        else:
                            self.started[c].remove(t)
                    self.held[c].pop(0)
                    self.parts[t] -= 1
                    if self.parts[t] == 0:
                        self.done.add(t)
                        covered = sorted(self.rows[t])
                        expect = self.recs[t]["m"]
                        ok = covered[0][0] == 0 and covered[-1][1] == expect and \
                            all(a[1] == b[0] for a, b in zip(covered, covered[1:]))
                        if not ok:
                            self.fail(f"task {t}: rows {covered} do not cover 0..{expect}")
                if e.dispatch:
                    t = int(e.task)
                    now.setdefault(t, []).append((c, int(e.m0), int(e.m1)))
            for t, parts in now.items():
                if t in self.dispatched:
                    self.fail(f"task {t} dispatched twice")
                self.dispatched.add(t)
                if self.recs[t]["kind"] != TaskKind.GEMM.value:
                    self.fail(f"record {t} (not a GEMM) dispatched to cores")
                for d in self.deps(t):
                    if d not in self.done:
                        self.fail(f"task {t} starts before its dependency {d} finished")
                want = {Policy.TEMPORAL: min(CFG.cores, self.recs[t]["m"]), Policy.SPATIAL: 1}.get(self.policy)
                if want is not None and len(parts) != want:
                    self.fail(f"{self.policy.name}: task {t} given {len(parts)} cores, not {want}")
                if self.policy == Policy.TEMPORAL and any(len(h) >= self.sets for h in self.held):
                    self.fail(f"TEMPORAL: task {t} dispatched while cores hold {self.held}")
                if len(parts) > min(CFG.cores, self.recs[t]["m"]):
                    self.fail(f"task {t} given {len(parts)} cores for {self.recs[t]['m']} rows")
                self.parts[t] = len(parts)
                self.rows[t] = []
                for c, m0, m1 in parts:
                    if len(self.held[c]) >= self.sets:
                        self.fail(f"core {c} given task {t} while holding {self.held[c]}")
                    if m1 <= m0:
                        self.fail(f"core {c} given an empty row range {m0}..{m1} of task {t}")
                    self.held[c].append(t)
                    self.rows[t].append((m0, m1))

    def watch_update(self, u):
        t = int(u.task)
        if u.done:
            if self.updating != t:
                self.fail(f"UPDATE {t} finishes but {self.updating} runs")
            self.done.add(t)
            self.updating = None
        if u.start:
            if self.updating is not None:
                self.fail(f"UPDATE {t} starts while {self.updating} runs")
            if self.recs[t]["kind"] != TaskKind.UPDATE.value:
                self.fail(f"record {t} (not an UPDATE) given to the update engine")
            if t in self.dispatched:
                self.fail(f"UPDATE {t} started twice")
            self.dispatched.add(t)
            for d in self.deps(t):
                if d not in self.done:
                    self.fail(f"UPDATE {t} starts before its dependency {d} finished")
            self.updating = t

    def finish(self):
        self.running = False
        for t, r in enumerate(self.recs):
            if t not in self.done:
                self.fail(f"record {t} never finished")
        if any(self.held):
            self.fail(f"cores still holding tasks at DONE: {self.held}")
        assert not self.errors, "\n".join(self.errors[:20])


# What the GBUF holds: block RAM starts at 0 and keeps its words across the resets
# between the tests of one simulation.
SHADOW = np.zeros(CFG.gbuf_depth, dtype=np.uint16)


class Bench:
    def __init__(self, drv, transport, dut):
        self.drv, self.t, self.dut = drv, transport, dut

    @property
    def shadow(self):
        return SHADOW

    @shadow.setter
    def shadow(self, value):
        SHADOW[:] = value

    async def put_gbuf(self, image):
        """Make the GBUF hold ``image`` (writes only the words that differ)."""
        diff = np.flatnonzero(image != self.shadow)
        await self.drv.write_gbuf_words(diff, image[diff])
        self.shadow = image

    async def check_gbuf(self, expect, what):
        got = await self.drv.read_gbuf(0, CFG.gbuf_depth)
        bad = np.flatnonzero(got != expect)
        assert bad.size == 0, (f"{what}: {bad.size} GBUF words differ, first at {bad[:8].tolist()}: "
                               f"got {got[bad[:8]].tolist()} expected {expect[bad[:8]].tolist()}")
        self.shadow = got


async def start(dut):
    drv, t = await attach(dut, CFG)
    return Bench(drv, t, dut)


@cocotb.test()
async def random_programs(dut):
    b = await start(dut)
    rng = np.random.default_rng(SEED)
    policies = [Policy.TEMPORAL, Policy.SPATIAL, Policy.ADAPTIVE]
    for p in range(PROGRAMS):
        policy = policies[p % 3]
        image, recs, pauses = random_program(CFG, rng, TASKS, update=True)
        while p == 0 and not pauses:  # the first program always pauses and resumes
            image, recs, pauses = random_program(CFG, rng, TASKS, update=True)
        err, _, _, expect = run_program(CFG, image, recs, pause_negate(pauses))
        assert err == ProgramError.OK
        await b.put_gbuf(image)
        mon = Monitor(dut, recs, policy)

        async def on_pause(at, drv):
            assert at in pauses, f"paused at {at}, not a PAUSE record"
            src, dst, words = pauses[at]
            mon.pause_done(at)
            got = await drv.read_gbuf(src, words)
            await drv.write_gbuf(dst, got ^ 0x8000)

        await b.drv.run(recs, policy, on_pause)
        mon.finish()
        counters = await b.drv.counters()
        assert counters["done_tasks"] == len(recs), counters
        assert counters["cycles"] > 0 and counters["dma"] > 0, counters
        # every counter covers this run only (DMA cycles are a share of the run's cycles)
        assert counters["dma"] <= counters["cycles"], counters
        assert all(b <= counters["cycles"] for b in counters["core_busy"]), counters
        await b.check_gbuf(expect, f"program {p} ({policy.name}, {len(recs)} records)")
        dut._log.info(f"program {p} {policy.name}: {len(recs)} records, {len(pauses)} pauses, {counters}")


@cocotb.test()
async def malformed_programs(dut):
    b = await start(dut)
    rng = np.random.default_rng(SEED + 100)
    for what in ("self_dep", "later_dep", "gbuf_range", "kind", "core", "core_range",
                 *UPDATE_MALFORMATIONS):
        image, recs, _ = random_program(CFG, rng, 6, pause=False)
        bad, t = malformed(CFG, rng, recs, what)
        err, task, core_err, expect = run_program(CFG, image, bad)
        assert err != ProgramError.OK
        await b.put_gbuf(image)
        await b.drv.load_program(bad)
        await b.drv.start()
        try:
            await b.drv.wait()
            raise AssertionError(f"{what}: the program was not refused")
        except ProgramFailed as e:
            assert (e.error, e.task, e.core_error) == (err, task, core_err), \
                f"{what}: got {e}, expected {err.name} at {task} ({core_err.name})"
        await b.check_gbuf(expect, f"malformed program ({what})")
    # no record at all
    await b.drv.write_csr(Csr.NTASKS, 0)
    await b.drv.start()
    assert await b.drv.wait(until=(State.ERROR,)) == State.ERROR
    assert (await b.drv.error())[0] == ProgramError.EMPTY


@cocotb.test()
async def refused_while_running(dut):
    b = await start(dut)
    rng = np.random.default_rng(SEED + 200)
    image, recs, _ = random_program(CFG, rng, TASKS, pause=False)
    _, _, _, expect = run_program(CFG, image, recs)
    await b.put_gbuf(image)
    await b.drv.load_program(recs)
    await b.drv.clear()
    await b.drv.set_policy(Policy.SPATIAL)
    await b.drv.start()
    s = await b.drv.state()
    assert s in (State.CHECKING, State.RUNNING), s
    target = recs[0]["out"]["base"]
    _, error = await b.drv._access((Region.GBUF.value << 22) | target, 1, 0x1234, check=False)
    assert error, "GBUF write while running was accepted"
    _, error = await b.drv._access((Region.GBUF.value << 22) | target, 0, check=False)
    assert error, "GBUF read while running was accepted"
    _, error = await b.drv._access(Region.PROGRAM.value << 22, 1, 0xFFFF, check=False)
    assert error, "PROGRAM write while running was accepted"
    _, error = await b.drv._access((Region.CSR.value << 22) | Csr.POLICY.value, 1, 0, check=False)
    assert error, "POLICY write while running was accepted"
    s2 = await b.drv.state()
    assert s2 in (State.CHECKING, State.RUNNING), f"the program ended ({s2.name}) before the accesses were refused"
    assert await b.drv.read_csr(Csr.BUS_ERROR) == 1
    assert await b.drv.wait() == State.DONE
    await b.check_gbuf(expect, "program run beside refused accesses")
    # out of range and undefined addresses are refused at any time
    for addr in ((Region.GBUF.value << 22) | CFG.gbuf_depth, (3 << 22),
                 (Region.CSR.value << 22) | 200, (Region.CSR.value << 22) | Csr.STATE.value):
        _, error = await b.drv._access(addr, 1, 0, check=False)
        assert error, f"write of {addr:#x} accepted"
    await b.drv.clear()
    assert await b.drv.read_csr(Csr.BUS_ERROR) == 0
    try:
        await b.drv.write_gbuf(CFG.gbuf_depth - 1, [1, 2])
        raise AssertionError("a range beyond the GBUF was accepted by the driver")
    except ValueError:
        pass
    await b.check_gbuf(expect, "after refused accesses")
