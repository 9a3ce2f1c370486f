"""Fp16Mac: interleaved dot products checked bit for bit against numerics.dot.

Random sums of length 1..1024 (always including 1, 2, slots-1, slots, slots+1 and
1024, plus term-less sums) over every operand class, random init, random bubbles and
bubbles carrying first/last; every result and the exact cycle of every o_valid are
checked on both simulators, and a short stream on Amaranth's own simulator.
"""

import numpy as np
import pytest
from amaranth.sim import Simulator

import harness
import tb_mac
from ganpu import numerics
from ganpu.arith import Fp16Mac, Fp16Mul, Fp32Add

# approximate stream lengths in cycles (one term or bubble per cycle)
CYCLES = {"verilator": 50_000, "icarus": 15_000}


def _lengths(rng, budget):
    s = Fp16Mac.slots
    lengths = [1, 2, s - 1, s, s + 1, 1024]
    while sum(lengths) < budget:
        # log-uniform, so short sums (the scheduler's common case) are plentiful
        lengths.append(int(np.exp(rng.uniform(0, np.log(1024)))))
    return lengths


def test_mac_parameters():
    assert Fp16Mac.slots == Fp32Add.latency
    assert Fp16Mac.latency == Fp16Mul.latency + Fp32Add.latency + 1
    for word in ("Slot rule", "Latency", "Ports", "slots"):
        assert word in Fp16Mac.__doc__
    a = np.array([[0x3C00, 0x0000, 0x7C00]], dtype=np.uint16)
    b = np.array([[0x4000, 0x7C00, 0x3C00]], dtype=np.uint16)
    assert Fp16Mac.model(a, b, 0) == numerics.dot(a, b, 0)


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_mac(sim, tmp_path):
    rng = np.random.default_rng(1024)
    budget = int(CYCLES[sim] * harness.scale())
    stream, results = tb_mac.make_stream(rng, Fp16Mac.slots, _lengths(rng, budget),
                                         directed=tb_mac.directed_sums())
    vec = tmp_path / "mac.npz"
    tb_mac.save_stream(vec, stream, results)
    harness.run(sim, Fp16Mac(), "fp16_mac", "tb_mac",
                env={"GANPU_VECTORS": vec, "GANPU_LATENCY": Fp16Mac.latency})


def test_mac_amaranth_sim():
    """A short stream on Amaranth's simulator: no Verilog in between."""
    rng = np.random.default_rng(7)
    s = Fp16Mac.slots
    stream, results = tb_mac.make_stream(rng, s, [1, 2, s - 1, s, s + 1, 60, 33, 5],
                                         bubble_p=0.2, empty=3, directed=tb_mac.directed_sums())
    dut = Fp16Mac()
    ncyc = len(stream["a"])
    o_valid, o = [], []

    async def bench(ctx):
        for it in range(ncyc + Fp16Mac.latency + 2):
            o_valid.append(ctx.get(dut.o_valid))
            o.append(ctx.get(dut.o))
            for k in tb_mac.STREAM_FIELDS:
                ctx.set(getattr(dut, k), int(stream[k][it]) if it < ncyc else 0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    tb_mac.check_outputs(o_valid, o, ncyc, [r[0] for r in results], [r[1] for r in results],
                         [r[2] for r in results], Fp16Mac.latency)


def test_stream_generator():
    """The stream really holds what the bench relies on."""
    rng = np.random.default_rng(3)
    s = Fp16Mac.slots
    stream, results = tb_mac.make_stream(rng, s, [1, s, 1024, 40], empty=2)
    assert len(stream["a"]) % s == 0
    assert sorted(r[2] for r in results) == sorted([0, 0, 1, 40, s, 1024])
    assert (stream["last"] == 1).sum() == len(results)
    assert (stream["first"] == 1).sum() == len(results)
    # terms of one sum are exactly `slots` cycles apart: first and last share a slot
    firsts = np.nonzero(stream["first"])[0] % s
    lasts = np.array([r[0] for r in results]) % s
    assert sorted(firsts.tolist()) == sorted(lasts.tolist())
    assert ((stream["i_valid"] == 0) & (stream["first"] == 1)).any()   # first on a bubble


def test_mac_result_cycle():
    """One sum of K terms whose first term is at cycle t: o_valid rises at exactly
    t + slots * (K - 1) + latency (the documented timing), and only there."""
    s, lat = Fp16Mac.slots, Fp16Mac.latency
    t, k = 2, 3
    a = np.array([0x3C00, 0x4000, 0xC200], dtype=np.uint16)   # 1, 2, -3
    b = np.array([0x3C00, 0x3800, 0x3C00], dtype=np.uint16)   # 1, 0.5, 1
    init = int(numerics.f32_bits(np.float32(0.25)))
    want_cycle = t + s * (k - 1) + lat
    dut = Fp16Mac()
    seen = []

    async def bench(ctx):
        for cyc in range(want_cycle + 2 * s):
            if ctx.get(dut.o_valid):
                seen.append((cyc, ctx.get(dut.o)))
            n, r = divmod(cyc - t, s)
            term = cyc >= t and r == 0 and n < k
            ctx.set(dut.i_valid, term)
            ctx.set(dut.a, int(a[n]) if term else 0)
            ctx.set(dut.b, int(b[n]) if term else 0)
            ctx.set(dut.first, term and n == 0)
            ctx.set(dut.last, term and n == k - 1)
            ctx.set(dut.init, init)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [(want_cycle, int(numerics.dot(a, b, init)))]
    assert numerics.f32_value(seen[0][1]) == np.float32(-0.75)
