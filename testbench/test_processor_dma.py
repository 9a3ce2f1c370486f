"""The DMA in the Amaranth simulator against ``Dma.model``: random load and store
jobs on a GBUF and emulated core host ports (read latency ``HostPort.read_latency``),
plus jobs made for the edges (transposed operands with partial bands, one-column
tiles), every word of every buffer compared, and the documented pass timing checked
(fast, no Verilog build); with the one-element host port and a four-element one (wide
and transposed passes, the banked GBUF's unaligned windows)."""

import dataclasses

import numpy as np
import pytest
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import wiring
from amaranth.sim import Simulator

from ganpu.core.config import Buf
from ganpu.core.ports import HostPort
from ganpu.processor import config
from ganpu.processor.dma import Dma
from ganpu.processor.gbuf import Gbuf, Owner
from ganpu.processor.model import normalize, split_rows, reads_mask_in, eors_active

from tb_processor_programs import random_program

# "small" with a 1K-word GBUF: the bench reads every word back; one-, two- and
# four-element host ports (two: a BW pass's W lanes are part of a P = 4 lane word),
# and the four-element one with two buffer sets (each job in random sets)
_SMALL = dataclasses.replace(config("small"), gbuf_bits=10)
CFGS = [dataclasses.replace(_SMALL, core=dataclasses.replace(_SMALL.core, host_words=w, buffer_sets=s))
        for w, s in ((1, 1), (2, 1), (4, 1), (4, 2))]
NAMES = {b: b.name.lower() for b in Buf}


class _Dut(Elaboratable):
    def __init__(self, cfg):
        self.dma, self.gbuf = Dma(cfg), Gbuf(cfg)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dma, m.submodules.gbuf = self.dma, self.gbuf
        wiring.connect(m, self.dma.gbuf_rd, self.gbuf.dma_rd)
        wiring.connect(m, self.dma.gbuf_wr, self.gbuf.dma_wr)
        return m


def _jobs(rng, CFG):
    gbuf, recs, _ = random_program(CFG, rng, 4, pause=False)
    jobs = []
    for rec in recs:
        r = normalize(CFG, rec)
        k = int(rng.integers(1, CFG.cores + 1))
        parts = split_rows(r["m"], k)
        cores = [int(c) for c in sorted(rng.permutation(CFG.cores)[:len(parts)])]
        rows = [{"m0": 0, "mc": 0} for _ in range(CFG.cores)]
        for c, (m0, m1) in zip(cores, parts):
            rows[c] = {"m0": m0, "mc": m1 - m0}
        jobs.append(("load", {"group": sum(1 << c for c in cores), "rows": rows, "n": r["n"], "k": r["k"],
                              "a": r["a"], "b": r["b"], "bias": r["bias"], "bias_base": r["bias_base"],
                              "mask_in": int(reads_mask_in(r)), "mask_in_base": r["mask_in_base"],
                              "bw": int(eors_active(r))}))
        for c, (m0, m1) in zip(cores, parts):
            jobs.append(("store", {"core": c, "m0": m0, "mc": m1 - m0, "n": r["n"], "out": r["out"],
                                   "store_mask": r["store_mask"], "mask_out_base": r["mask_out_base"]}))
    return gbuf, jobs


def _with_sets(rng, CFG, jobs):
    """With two buffer sets, each job in random sets (a load's per core)."""
    if CFG.core.buffer_sets == 1:
        return jobs
    return [(kind, {**job, **({"sets": int(rng.integers(0, 1 << CFG.cores))} if kind == "load"
                              else {"set": int(rng.integers(0, 2))})}) for kind, job in jobs]


def _edge_jobs(rng, CFG):
    """Load and store jobs the random programs make rarely: transposed A and B (GBUF row
    stride 1) with bands of W rows and a partial last band, one-column tiles (walked as
    one row), one-column stores; every core of the group gets rows."""
    jobs = []
    C = CFG.cores
    for M, N, K in ((13, 6, 8), (9, 1, 4), (12, 8, 1), (8, 3, 4), (7, 5, 12)):
        parts = split_rows(M, C)
        rows = [{"m0": m0, "mc": m1 - m0} for m0, m1 in parts] + \
            [{"m0": 0, "mc": 0}] * (C - len(parts))
        a = {"base": int(rng.integers(0, 300)), "s0": 1, "s1": M + int(rng.integers(0, 3))}
        b = {"base": int(rng.integers(300, 600)), "s0": 1, "s1": N + int(rng.integers(0, 3))}
        jobs.append(("load", {"group": (1 << len(parts)) - 1, "rows": rows, "n": N, "k": K,
                              "a": a, "b": b, "bias": 1, "bias_base": int(rng.integers(600, 700)),
                              "mask_in": 0, "mask_in_base": 0, "bw": 0}))
        for c, (m0, m1) in enumerate(parts):
            jobs.append(("store", {"core": c, "m0": m0, "mc": m1 - m0, "n": N,
                                   "out": {"base": 700, "s0": 1 if N == 1 else N, "s1": 1},
                                   "store_mask": int(N == 1), "mask_out_base": 850}))
    # the BW pass of weights stored (N, K) row by row (GBUF column stride 1): N a
    # multiple of W over several groups of P, K with a partial last band of W, N not a
    # multiple of W or K = 1 (narrow)
    for M, N, K in ((5, 12, 6), (3, 8, 4), (3, 8, 3), (4, 5, 5), (2, 8, 1)):
        parts = split_rows(M, C)
        rows = [{"m0": m0, "mc": m1 - m0} for m0, m1 in parts] + \
            [{"m0": 0, "mc": 0}] * (C - len(parts))
        a = {"base": int(rng.integers(0, 200)), "s0": K, "s1": 1}
        b = {"base": int(rng.integers(300, 500)), "s0": K + int(rng.integers(0, 3)), "s1": 1}
        jobs.append(("load", {"group": (1 << len(parts)) - 1, "rows": rows, "n": N, "k": K,
                              "a": a, "b": b, "bias": 0, "bias_base": 0,
                              "mask_in": 0, "mask_in_base": 0, "bw": 1}))
    return jobs


def _passes(kind, job):
    """``(rows, cols, srow, scol, bw, store)`` of the passes of a job (not skipped)."""
    n = job["n"]
    if kind == "store":
        o = job["out"]
        return [(job["mc"], n, o["s0"], o["s1"], False, True)] + \
            ([(job["mc"], n, n, 1, False, True)] if job["store_mask"] else [])
    k, b = job["k"], job["b"]
    out = [(n, k, b["s0"], b["s1"], False, False)]
    out += [(n, k, b["s0"], b["s1"], True, False)] if job["bw"] else []
    out += [(1, n, 0, 1, False, False)] if job["bias"] else []
    for c, r in enumerate(job["rows"]):
        if job["group"] >> c & 1:
            out.append((r["mc"], k, job["a"]["s0"], job["a"]["s1"], False, False))
            out += [(r["mc"], n, n, 1, False, False)] if job["mask_in"] else []
    return out


def _cycles(CFG, kind, job):
    """The documented busy cycles of a job (after the cycle that takes it): ``w + 3``
    per load pass, ``w + 2 + read_latency`` per store pass (``w / W`` for ``w`` when
    the pass is wide), one per skipped step and one for the end of a load job."""
    n = job["n"]

    if kind == "store":
        o = _issues(CFG, job["mc"] * n, n, job["out"]["s1"], srow=job["out"]["s0"], store=True)
        passes = [o] + ([_issues(CFG, job["mc"] * n, n, store=True)] if job["store_mask"] else [])
        return sum(p + 2 + HostPort.read_latency for p in passes)
    t, _ = _load_steps(CFG, job)
    return t + 1                                     # the end of the job


def _issues(CFG, words, cols, scol=1, bw=False, srow=None, store=False):
    """``Dma.pass_issues`` of a pass (row stride ``srow``, default ``cols``: rows one
    after the other)."""
    return Dma.pass_issues(CFG, words, cols, scol, bw, srow=cols if srow is None else srow,
                           store=store)


def _load_steps(CFG, job):
    """``(cycles, {core: cycle of its loaded pulse})`` of a load job's steps."""
    C = CFG.cores
    n, k = job["n"], job["k"]

    def w(*args, **kw):
        return _issues(CFG, *args, **kw)
    b = job["b"]
    t = w(n * k, k, b["s1"], srow=b["s0"]) + 3                                   # B
    t += (w(n * k, k, b["s1"], True, srow=b["s0"]) + 3) if job["bw"] else 1       # BW
    t += (w(n, n, srow=0) + 3) if job["bias"] else 1                             # BIAS
    out = {}
    for c in range(C):                                # A and MASK_IN core by core
        mc = job["rows"][c]["mc"]
        if job["group"] >> c & 1:
            t += w(mc * k, k, job["a"]["s1"], srow=job["a"]["s0"]) + 3 + (
                (w(mc * n, n) + 3) if job["mask_in"] else 1)
            out[c] = t
        else:
            t += 1
    return t, out


def _loaded(CFG, job):
    """The documented cycle of each group core's ``loaded`` pulse, counted like
    :func:`_cycles` (the pulse comes the cycle after the core's last step)."""
    return _load_steps(CFG, job)[1]


@pytest.mark.parametrize("CFG", CFGS, ids=[f"w{c.core.host_words}" + ("-sets2" if c.core.buffer_sets > 1 else "")
                                          for c in CFGS])
def test_dma_against_model(CFG):
    rng = np.random.default_rng(31)
    image, jobs = _jobs(rng, CFG)
    jobs = _with_sets(rng, CFG, jobs + _edge_jobs(rng, CFG))
    dut = _Dut(CFG)
    dma = dut.dma
    C = CFG.cores
    W = CFG.core.host_words
    # every set of every buffer (set s at s * depth)
    hw = [{NAMES[b]: np.zeros(CFG.core.host_depth(b), dtype=np.uint16) for b in Buf} for _ in range(C)]
    # the core images the model expects: stores read what the emulated cores hold, so
    # give every core random OUT and MASK_OUT contents up front
    for c in range(C):
        hw[c]["out"][:] = rng.integers(0, 1 << 16, hw[c]["out"].size)
        hw[c]["mask_out"][:] = rng.integers(0, 2, hw[c]["mask_out"].size)
    ref = [{k: v.copy() for k, v in b.items()} for b in hw]
    gref = image.copy()
    lengths, loaded = [], []

    async def cores(ctx):
        """Emulated host ports: writes at the edge, reads ``read_latency`` cycles later."""
        pipe = [[0] * HostPort.read_latency for _ in range(C)]
        signals = []
        for c in range(C):
            p = dma.cores[c]
            signals += [p.buf.as_value(), p.addr, p.we, p.wdata]
        async for _, _, *vals in ctx.tick().sample(*signals):
            for c in range(C):
                buf, addr, we, wdata = vals[4 * c:4 * c + 4]
                name = NAMES.get(Buf(buf)) if buf < 7 else None
                base = addr & ~(W - 1)
                if we and name is not None:
                    mem = hw[c][name]
                    for j in range(W):
                        if we >> j & 1:
                            lane = wdata >> (16 * j) & 0xFFFF
                            mem[base + j] = lane & 1 if name.startswith("mask") else lane
                value = 0
                if name is not None and addr < hw[c][name].size:
                    value = sum(int(hw[c][name][base + j]) << (16 * j) for j in range(W))
                pipe[c] = pipe[c][1:] + [value]
                ctx.set(dma.cores[c].rdata, pipe[c][0])

    async def bench(ctx):
        gb = dut.gbuf
        # GBUF image through the bus write port (the bus owns the GBUF's port pair;
        # the DMA owns it while it moves jobs)
        ctx.set(gb.owner, Owner.BUS)
        for w in np.flatnonzero(image):
            ctx.set(gb.bus_wr.addr, int(w))
            ctx.set(gb.bus_wr.data, int(image[w]))
            ctx.set(gb.bus_wr.en, 1)
            await ctx.tick()
        ctx.set(gb.bus_wr.en, 0)
        ctx.set(gb.owner, Owner.DMA)
        for kind, job in jobs:
            stream = dma.load if kind == "load" else dma.store
            done = dma.load_done if kind == "load" else dma.store_done
            before = ctx.get(dma.busy_cycles)
            ctx.set(stream.payload, job)
            ctx.set(stream.valid, 1)
            await ctx.tick()
            ctx.set(stream.valid, 0)
            pulses = {}
            for _ in range(5000):
                bits = ctx.get(dma.loaded)
                for c in range(C):
                    if bits >> c & 1:
                        assert c not in pulses, f"core {c} loaded twice"
                        pulses[c] = ctx.get(dma.busy_cycles) - before
                if ctx.get(done):
                    break
                await ctx.tick()
            assert ctx.get(done), f"{kind} job never finished"
            lengths.append(ctx.get(dma.busy_cycles) - before)
            loaded.append(pulses)
            await ctx.tick()
        # GBUF back through the bus read port
        ctx.set(gb.owner, Owner.BUS)
        got = []
        for w in range(CFG.gbuf_depth):
            ctx.set(gb.bus_rd.addr, w)
            await ctx.tick()
            got.append(ctx.get(gb.bus_rd.data))
        result.append(np.array(got, dtype=np.uint16))

    result = []
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_process(cores)
    sim.add_testbench(bench)
    sim.run()   # the emulated cores run in the background: the bench's end ends it
    assert result, "the bench did not finish"
    for kind, job in jobs:
        Dma.model(CFG, kind, job, gref, ref)
    for c in range(C):
        for name in ref[c]:
            np.testing.assert_array_equal(hw[c][name], ref[c][name], err_msg=f"core {c} {name}")
    np.testing.assert_array_equal(result[0], gref)
    diffs = [got - _cycles(CFG, kind, job) for (kind, job), got in zip(jobs, lengths)]
    assert diffs == [0] * len(jobs), diffs
    for (kind, job), got in zip(jobs, loaded):
        assert got == (_loaded(CFG, job) if kind == "load" else {}), (kind, got)
    if W > 1:
        # every way of moving a pass was exercised: wide, transposed with whole and
        # partial last bands, one-column tiles walked as one wide row, narrow
        seen = set()
        for kind, job in jobs:
            for rows, cols, srow, scol, bw, store in _passes(kind, job):
                mode, r, _ = Dma.pass_mode(CFG, rows, cols, srow, scol, bw, store)
                seen.add((mode, r % W == 0, bw) if mode == "transposed" else (mode, cols == 1, bw))
        assert seen >= {("wide", False, False), ("wide", True, False), ("transposed", False, False),
                        ("transposed", True, False), ("narrow", False, False),
                        ("transposed", False, True), ("transposed", True, True),
                        ("narrow", False, True)}, seen
        # the wide passes were exercised: some job is shorter than its one-word timing
        narrow = dataclasses.replace(CFG, core=dataclasses.replace(CFG.core, host_words=1))
        assert any(_cycles(CFG, k, j) < _cycles(narrow, k, j) for k, j in jobs)


@pytest.mark.parametrize("n,k", [(64, 128), (16, 64), (12, 6), (6, 5)])
def test_cycle_model_counts_the_bw_pass(n, k):
    """The cycle model costs an EORS record's BW pass as the DMA moves it (the timing
    the test above checks on the RTL): transposed on ``sim``'s eight-word port for
    weights stored row by row with ``N mod W == 0``, else one word per cycle."""
    from ganpu.core.descriptor import Op, Act
    from ganpu.processor.cycle_model import simulate
    from ganpu.processor.program import Policy, TaskKind
    cfg = config("sim")
    rec = {"kind": TaskKind.GEMM, "op": Op.FP.value, "act": Act.RELU.value, "m": 1, "n": n, "k": k,
           "a": {"base": 0, "s0": k, "s1": 1}, "b": {"base": 0, "s0": k, "s1": 1},
           "work": n * k, "words": k + n * k + n}
    length = {}
    for eors in (0, 1):
        s = simulate(cfg, [{**rec, "eors": eors}], Policy.TEMPORAL, row_macs=[np.full(1, n * k)])
        length[eors] = s.dma[0][2] - s.dma[0][1]
    mode = Dma.pass_mode(cfg, n, k, k, 1, bw=True)[0]
    assert mode == ("transposed" if n % cfg.core.host_words == 0 else "narrow")
    # the BW step: a pass (w + 3) instead of a skipped step (1)
    assert length[1] - length[0] == _issues(cfg, n * k, k, 1, True, srow=k) + 3 - 1
    assert _issues(cfg, n * k, k, 1, True, srow=k) < n * k or mode == "narrow"
