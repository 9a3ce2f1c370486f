"""The DMA in the Amaranth simulator against ``Dma.model``: random load and store
jobs on a GBUF and emulated core host ports (read latency ``HostPort.read_latency``),
every word of every buffer compared, and the documented pass timing checked (fast, no
Verilog build); with the one-element host port and a four-element one (wide passes
and the banked GBUF's unaligned windows)."""

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
from ganpu.processor.gbuf import Gbuf
from ganpu.processor.model import normalize, split_rows, reads_mask_in, eors_active

from tb_processor_programs import random_program

# "small" with a 1K-word GBUF: the bench reads every word back; one- and four-element
# host ports
_SMALL = dataclasses.replace(config("small"), gbuf_bits=10)
CFGS = [dataclasses.replace(_SMALL, core=dataclasses.replace(_SMALL.core, host_words=w))
        for w in (1, 4)]
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


def _cycles(CFG, kind, job):
    """The documented busy cycles of a job (after the cycle that takes it): ``w + 3``
    per load pass, ``w + 2 + read_latency`` per store pass (``w / W`` for ``w`` when
    the pass is wide), one per skipped step and one for the end of a load job."""
    n = job["n"]

    def w(words, cols, scol=1, bw=False):
        return Dma.pass_issues(CFG, words, cols, scol, bw)
    if kind == "store":
        o = w(job["mc"] * n, n, job["out"]["s1"])
        passes = [o] + ([w(job["mc"] * n, n)] if job["store_mask"] else [])
        return sum(p + 2 + HostPort.read_latency for p in passes)
    t, _ = _load_steps(CFG, job, w)
    return t + 1                                     # the end of the job


def _load_steps(CFG, job, w):
    """``(cycles, {core: cycle of its loaded pulse})`` of a load job's steps."""
    C = CFG.cores
    n, k = job["n"], job["k"]
    t = w(n * k, k, job["b"]["s1"]) + 3                               # B
    t += (w(n * k, k, job["b"]["s1"], True) + 3) if job["bw"] else 1  # BW
    t += (w(n, n) + 3) if job["bias"] else 1                        # BIAS
    out = {}
    for c in range(C):                                # A and MASK_IN core by core
        mc = job["rows"][c]["mc"]
        if job["group"] >> c & 1:
            t += w(mc * k, k, job["a"]["s1"]) + 3 + ((w(mc * n, n) + 3) if job["mask_in"] else 1)
            out[c] = t
        else:
            t += 1
    return t, out


def _loaded(CFG, job):
    """The documented cycle of each group core's ``loaded`` pulse, counted like
    :func:`_cycles` (the pulse comes the cycle after the core's last step)."""
    return _load_steps(CFG, job, lambda *a: Dma.pass_issues(CFG, *a))[1]


@pytest.mark.parametrize("CFG", CFGS, ids=[f"w{c.core.host_words}" for c in CFGS])
def test_dma_against_model(CFG):
    rng = np.random.default_rng(31)
    image, jobs = _jobs(rng, CFG)
    dut = _Dut(CFG)
    dma = dut.dma
    C = CFG.cores
    W = CFG.core.host_words
    hw = [CFG.core.zero_buffers() for _ in range(C)]
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
        # GBUF image through the bus write port
        for w in np.flatnonzero(image):
            ctx.set(gb.bus_wr.addr, int(w))
            ctx.set(gb.bus_wr.data, int(image[w]))
            ctx.set(gb.bus_wr.en, 1)
            await ctx.tick()
        ctx.set(gb.bus_wr.en, 0)
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
        # the wide passes were exercised: some job is shorter than its one-word timing
        narrow = dataclasses.replace(CFG, core=dataclasses.replace(CFG.core, host_words=1))
        assert any(_cycles(CFG, k, j) < _cycles(narrow, k, j) for k, j in jobs)
