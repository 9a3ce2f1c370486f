"""cocotb bench of the scheduler's ADAPTIVE policy on the processor: its two regimes
(``ganpu.processor.model.compute_bound``, ``docs/astm.md``).

Random programs (:func:`tb_processor_programs.random_program`, no PAUSE) whose records'
``work`` and ``words`` estimates are set so the program is compute-bound (``sum(work)
* host_words > sum(words) * cores``) or DMA-bound, and so some records need one core
only (``work`` <= ``MIN_WORK``): the two regimes then give those records different core
counts. The estimates steer the dispatch only; the results are the program model's
whatever the schedule. Every cycle :class:`tb_processor.Monitor` checks the scheduler's
invariants, and :class:`Regime` checks every dispatch against
:func:`ganpu.processor.model.adaptive_cores`: compute-bound, a record gets exactly
``min(cores, M)`` cores, all of them free; DMA-bound, at least one and at most
``min(free, M, ceil(work / MIN_WORK))``. Every GBUF word is read back and compared.

Environment: GANPU_SEED, GANPU_PROGRAMS (programs per regime), GANPU_TASKS (records per
program), GANPU_CORES, GANPU_GBUF_BITS and GANPU_SETS (the "small" config's variant).
"""

import os

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.triggers import FallingEdge

from ganpu.processor.model import run_program, normalize, compute_bound, MIN_WORK, MIN_SPLIT
from ganpu.processor.program import Policy, ProgramError, TaskKind
from ganpu.processor.scheduler import trace_layout

from tb_processor import Monitor, start, CFG
from tb_processor_programs import random_program

SEED = int(os.environ.get("GANPU_SEED", "1"))
PROGRAMS = int(os.environ.get("GANPU_PROGRAMS", "2"))
TASKS = int(os.environ.get("GANPU_TASKS", "8"))


def steer(records, rng, bound):
    """Set every GEMM record's ``work`` and ``words`` so that the program is
    compute-bound with tasks worth splitting (``bound``) or DMA-bound, with about half
    the records at one core's worth of work (``MIN_WORK``: the DMA-bound rule gives
    them one core, the compute-bound one ``min(cores, M)``) and the others far more."""
    gemms = [r for r in records if normalize(CFG, r)["kind"] == TaskKind.GEMM.value]
    for r in gemms:
        r["work"] = MIN_WORK if rng.random() < 0.5 else \
            4 * CFG.cores * MIN_SPLIT * int(rng.integers(1, 4))
        r["words"] = 1
    gemms[0]["work"] = 4 * CFG.cores * MIN_SPLIT   # the average share is above MIN_SPLIT
    if not bound:
        # every word of the program is worth more than all cores' work per word
        total = sum(r["work"] for r in gemms)
        gemms[0]["words"] = total * CFG.core.host_words // CFG.cores + 1
    assert compute_bound(records, CFG.cores, CFG.core.host_words) == bound
    return records


class Regime:
    """Checks the group size of every ADAPTIVE dispatch against the rule of the
    program's regime; the free cores are those not between a dispatch and its
    completion on ``sched_trace``, up to the cycle before the dispatch. With two
    buffer sets a core with a free set is free, and both regimes follow
    ``cycle_model.staged_cores`` (the compute-bound rule)."""

    def __init__(self, dut, records, bound):
        self.dut, self.bound = dut, bound
        self.recs = [normalize(CFG, r) for r in records]
        self.layout = trace_layout(CFG)
        self.held = [0] * CFG.cores
        self.sets = CFG.core.buffer_sets
        self.errors, self.dispatches = [], 0
        self.running = True
        cocotb.start_soon(self.watch())

    async def watch(self):
        while self.running:
            await FallingEdge(self.dut.clk)
            bits = int(self.dut.sched_trace.value)
            if not bits:
                continue
            tr = data.Const(self.layout, bits)
            # cores the scheduler saw free when it decided (two cycles before it
            # assigns: the row split between) are free here too: this set holds them
            # and any completed in between (the Monitor checks each chosen core is idle)
            free = sum(h < self.sets for h in self.held)
            groups = {}
            for c in range(CFG.cores):
                e = tr[c]
                if e.complete:
                    self.held[c] -= 1
                if e.dispatch:
                    groups.setdefault(int(e.task), []).append(c)
            for t, cores in groups.items():
                self.dispatches += 1
                k, r = len(cores), self.recs[t]
                if self.bound or self.sets > 1:
                    want = min(CFG.cores, r["m"])
                    if k != want or free < want:
                        self.errors.append(f"compute-bound: task {t} given {k} cores with "
                                           f"{free} free, not {want}")
                else:
                    top = min(free, r["m"], max(1, -(-r["work"] // MIN_WORK)))
                    if not 1 <= k <= top:
                        self.errors.append(f"DMA-bound: task {t} given {k} cores, not 1..{top}")
                for c in cores:
                    self.held[c] += 1

    def finish(self):
        self.running = False
        assert self.dispatches > 0
        assert not self.errors, "\n".join(self.errors[:20])


@cocotb.test()
async def adaptive_regimes(dut):
    b = await start(dut)
    rng = np.random.default_rng(SEED)
    for p in range(2 * PROGRAMS):
        bound = p % 2 == 0
        image, recs, _ = random_program(CFG, rng, TASKS, pause=False)
        steer(recs, rng, bound)
        err, _, _, expect = run_program(CFG, image, recs)
        assert err == ProgramError.OK
        await b.put_gbuf(image)
        mon = Monitor(dut, recs, Policy.ADAPTIVE)
        regime = Regime(dut, recs, bound)
        await b.drv.run(recs, Policy.ADAPTIVE)
        mon.finish()
        regime.finish()
        await b.check_gbuf(expect, f"program {p} ({'compute' if bound else 'DMA'}-bound, "
                                   f"{len(recs)} records)")
        dut._log.info(f"program {p}: {'compute' if bound else 'DMA'}-bound, {len(recs)} records, "
                      f"{regime.dispatches} dispatches checked")
