"""The program checker in the Amaranth simulator against ``check_program``, on many
random (mostly malformed) records near every boundary: fast, no Verilog build."""

import numpy as np
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ganpu.core.descriptor import Error
from ganpu.processor import config
from ganpu.processor.checker import ProgramChecker
from ganpu.processor.model import pack_record, check_program
from ganpu.processor.program import ProgramError, record_words
from ganpu.processor.task_table import TaskTable

CFG = config("small")


class _Dut(Elaboratable):
    def __init__(self):
        self.table = TaskTable(CFG)
        self.checker = ProgramChecker(CFG)

    def elaborate(self, platform):
        m = Module()
        m.submodules.table = self.table
        m.submodules.checker = self.checker
        wiring.connect(m, self.checker.table, self.table.check_rd)
        return m


def _record(rng, kinds=(0, 0, 0, 0, 1, 2, 2, 3)):
    g, geom = CFG.gbuf_depth, CFG.core.geom
    dmax = (1 << geom.dim_bits) - 1

    def dim():
        return int(rng.choice([0, 1, 2, 5, 8, 16, 33, 64, dmax]))

    def addr():
        return int(rng.choice([0, 1, 7, g // 2, g - 64, g - 9, g - 1]))

    def stride():
        return int(rng.choice([0, 1, 2, 8, 40, g - 1]))

    kind = int(rng.choice(kinds))
    deps = [{"valid": int(rng.integers(2)), "index": int(rng.integers(CFG.program_depth))}
            for _ in range(CFG.deps)]
    if kind == 2:   # UPDATE: counts and regions near the GBUF's end
        return {"kind": kind, "deps": deps,
                "count": int(rng.choice([0, 1, 2, 7, g // 2, g - 1, g, (1 << 24) - 1])),
                **{f"{r}_base": addr() for r in ("w", "v", "g", "w16")},
                **{h: int(rng.integers(0, 1 << 32)) for h in ("lr", "mu", "inv_scale")}}
    rec = {"kind": kind, "deps": deps,
           "op": int(rng.choice([0, 1, 2, 3])), "act": int(rng.choice([0, 1, 2, 3])),
           "use_mask": int(rng.integers(2)), "bias": int(rng.integers(2)), "eors": int(rng.integers(2)),
           "store_mask": int(rng.integers(2)), "m": dim(), "n": dim(), "k": dim(),
           "bias_base": addr(), "mask_in_base": addr(), "mask_out_base": addr()}
    for op in ("a", "b", "out"):
        rec[op] = {"base": addr(), "s0": stride(), "s1": stride()}
    return rec


def test_checker_matches_model():
    rng = np.random.default_rng(21)
    dut = _Dut()
    programs = []
    for _ in range(120):
        n = int(rng.integers(1, 5))
        # earlier records mostly valid-looking so later ones get checked
        recs = [_record(rng, (0, 1, 2) if i < n - 1 else (0, 0, 0, 0, 1, 2, 2, 3)) for i in range(n)]
        programs.append(recs)
    programs.append([])
    programs.append([{"kind": 1}] * CFG.program_depth)
    g = CFG.gbuf_depth
    programs.append([{"kind": 1}, {"kind": 2, "deps": [0], "count": 0}])
    for region in ("w", "v", "g", "w16"):   # each region's last word just inside, then out
        for last in (g - 1, g):
            words = 2 if region in ("w", "v") else 1
            rec = {"kind": 2, "count": 3, "w_base": 0, "v_base": 6, "g_base": 12, "w16_base": 15}
            rec[f"{region}_base"] = last + 1 - 3 * words
            programs.append([{"kind": 0, "m": 1, "n": 1, "k": 1}, rec])
    W = record_words(CFG)
    results = []

    async def bench(ctx):
        t, c = dut.table, dut.checker
        for recs in programs:
            for i, rec in enumerate(recs):
                ctx.set(t.bus_wr.addr, i)
                ctx.set(t.bus_wr.data, pack_record(CFG, rec))
                ctx.set(t.bus_wr.en, (1 << W) - 1)
                await ctx.tick()
            ctx.set(t.bus_wr.en, 0)
            ctx.set(c.check.ntasks, len(recs))
            ctx.set(c.check.start, 1)
            await ctx.tick()
            ctx.set(c.check.start, 0)
            for _ in range(20 * (len(recs) + 1)):
                if ctx.get(c.check.done):
                    break
                await ctx.tick()
            assert ctx.get(c.check.done), "no verdict"
            results.append((ProgramError(ctx.get(c.check.error)), ctx.get(c.check.task),
                            Error(ctx.get(c.check.core_error))))
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    seen = set()
    for recs, got in zip(programs, results):
        want = check_program(CFG, recs)
        assert got == want, f"records {recs}: hardware {got}, model {want}"
        seen.add(want[0])
    assert seen == set(ProgramError), f"not every verdict exercised: {seen}"
