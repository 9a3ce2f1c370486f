"""The self-calibration sampler's LFSR (EorsSampleLfsr) against its model and the
golden model's EorsSampler (docs/eors.md, "Self-calibration"), on both simulators."""

import numpy as np
import pytest
from amaranth.sim import Simulator

import harness
from ganpu.eors.sampler import EorsSampleLfsr
from ganpu.model.eors import EorsSampler, LFSR_SEED

CYCLES = {"verilator": 20_000, "icarus": 3_000}


def _stimulus(rng, n):
    steps = (rng.random(n) < 0.8).astype(np.uint8)
    loads = (rng.random(n) < 0.002).astype(np.uint8)
    seeds = rng.integers(1, 1 << 16, n).astype(np.int64)
    return steps, loads, seeds


def test_model_is_the_golden_sampler():
    """Stepping once per word gives exactly EorsSampler's choice (words in order)."""
    for lanes, r in ((16, 6), (4, 2), (64, 6), (1, 0)):
        M, N = 37, 3 * lanes - 1 if lanes > 1 else 5
        G = -(-N // lanes)
        state, sample = EorsSampleLfsr.model([1] * (M * G), [0] * (M * G), [0] * (M * G), lanes, r)
        bits = np.array([[(int(w) >> j) & 1 for j in range(lanes)] for w in sample], dtype=bool)
        gold = EorsSampler(lanes, r)
        assert np.array_equal(gold.sample(M, N), bits.reshape(M, G * lanes)[:, :N])
        assert gold.state == int(state[-1])


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_sampler(sim, tmp_path):
    rng = np.random.default_rng(77)
    n = int(CYCLES[sim] * harness.scale())
    steps, loads, seeds = _stimulus(rng, n)
    dut = EorsSampleLfsr(16, 6)
    st, sa = EorsSampleLfsr.model(steps, loads, seeds, 16, 6)
    assert len(set(int(v) for v in sa)) == 17          # every lane, and no lane
    vec = tmp_path / "sampler.npz"
    np.savez(vec, step=steps, load=loads, seed=seeds, exp_state=st,
             exp_sample=np.array([int(v) for v in sa], dtype=np.int64))
    harness.run(sim, dut, "eors_sample_lfsr", "tb_eors_sampler", env={"GANPU_VECTORS": vec})


@pytest.mark.parametrize("lanes,r", [(16, 6), (4, 2), (2, 4)])
def test_sampler_amaranth_sim(lanes, r):
    rng = np.random.default_rng(lanes + r)
    steps, loads, seeds = _stimulus(rng, 600)
    dut = EorsSampleLfsr(lanes, r)
    want = EorsSampleLfsr.model(steps, loads, seeds, lanes, r)
    got = ([], [])

    async def bench(ctx):
        assert ctx.get(dut.state) == LFSR_SEED
        for c in range(len(steps)):
            ctx.set(dut.step, int(steps[c]))
            ctx.set(dut.load, int(loads[c]))
            ctx.set(dut.seed, int(seeds[c]))
            await ctx.tick()
            got[0].append(ctx.get(dut.state))
            got[1].append(ctx.get(dut.sample))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got[0] == [int(v) for v in want[0]]
    assert got[1] == [int(v) for v in want[1]]


def test_parameters_are_validated():
    import gc
    cases = [
        (lambda: EorsSampleLfsr(3), ValueError, "lanes must be a power of two, not 3"),
        (lambda: EorsSampleLfsr(128), ValueError, "lanes must be in 1..64, not 128"),
        (lambda: EorsSampleLfsr(16, 2.0), TypeError, "rate_log2 must be an int, not 2.0"),
        (lambda: EorsSampleLfsr(16, 3), ValueError,
         "rate_log2 must give 2**rate_log2 >= lanes = 16, not 3"),
    ]
    for make, exc, msg in cases:
        with pytest.raises(exc) as info:
            make()
        assert str(info.value) == msg
    gc.collect()
    for word in ("Latency", "Ports", "Parameters", "docs/eors.md"):
        assert word in EorsSampleLfsr.__doc__
