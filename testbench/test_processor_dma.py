"""The DMA in the Amaranth simulator against ``Dma.model``: random load and store
jobs on a GBUF and emulated core host ports (read latency ``HostPort.read_latency``),
every word of every buffer compared, and the documented pass timing checked (fast, no
Verilog build)."""

import dataclasses

import numpy as np
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

# "small" with a 1K-word GBUF: the bench reads every word back
CFG = dataclasses.replace(config("small"), gbuf_bits=10)
NAMES = {b: b.name.lower() for b in Buf}


class _Dut(Elaboratable):
    def __init__(self):
        self.dma, self.gbuf = Dma(CFG), Gbuf(CFG)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dma, m.submodules.gbuf = self.dma, self.gbuf
        wiring.connect(m, self.dma.gbuf_rd, self.gbuf.dma_rd)
        wiring.connect(m, self.dma.gbuf_wr, self.gbuf.dma_wr)
        return m


def _jobs(rng):
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


def _cycles(kind, job):
    """The documented busy cycles of a job (after the cycle that takes it): ``w + 3``
    per load pass, ``w + 2 + read_latency`` per store pass, one per skipped step and
    one for the end of a load job."""
    C = CFG.cores
    if kind == "store":
        w = job["mc"] * job["n"]
        passes = [w] + ([w] if job["store_mask"] else [])
        return sum(p + 2 + HostPort.read_latency for p in passes)
    group = [c for c in range(C) if job["group"] >> c & 1]
    n, k = job["n"], job["k"]
    t = n * k + 3                                    # B
    t += (n * k + 3) if job["bw"] else 1             # BW
    t += (n + 3) if job["bias"] else 1               # BIAS
    for c in range(C):                               # A and MASK_IN core by core
        mc = job["rows"][c]["mc"]
        t += (mc * k + 3 + ((mc * n + 3) if job["mask_in"] else 1)) if c in group else 1
    return t + 1                                     # the end of the job


def _loaded(job):
    """The documented cycle of each group core's ``loaded`` pulse, counted like
    :func:`_cycles` (the pulse comes the cycle after the core's last step)."""
    C = CFG.cores
    n, k = job["n"], job["k"]
    t = n * k + 3 + ((n * k + 3) if job["bw"] else 1) + ((n + 3) if job["bias"] else 1)
    out = {}
    for c in range(C):
        mc = job["rows"][c]["mc"]
        if job["group"] >> c & 1:
            t += mc * k + 3 + ((mc * n + 3) if job["mask_in"] else 1)
            out[c] = t
        else:
            t += 1
    return out


def test_dma_against_model():
    rng = np.random.default_rng(31)
    image, jobs = _jobs(rng)
    dut = _Dut()
    dma = dut.dma
    C = CFG.cores
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
                if we and name is not None:
                    mem = hw[c][name]
                    mem[addr] = wdata & 1 if name.startswith("mask") else wdata
                value = int(hw[c][name][addr]) if name is not None and addr < hw[c][name].size else 0
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
    sim.run_until(1e-8 * 400000)
    assert result, "the bench did not finish"
    for kind, job in jobs:
        Dma.model(CFG, kind, job, gref, ref)
    for c in range(C):
        for name in ref[c]:
            np.testing.assert_array_equal(hw[c][name], ref[c][name], err_msg=f"core {c} {name}")
    np.testing.assert_array_equal(result[0], gref)
    diffs = [got - _cycles(kind, job) for (kind, job), got in zip(jobs, lengths)]
    assert diffs == [0] * len(jobs), diffs
    for (kind, job), got in zip(jobs, loaded):
        assert got == (_loaded(job) if kind == "load" else {}), (kind, got)
