"""The self-calibration sampler (EorsSampleHash) against its model and the golden
model's EorsSampler (docs/eors.md, "Sampling"), on both simulators: random keys and
words, and the keys and word sequences of real GAN shapes."""

import numpy as np
import pytest
from amaranth.sim import Simulator

import harness
from ganpu.eors.sampler import EorsSampleHash
from ganpu.model.eors import EorsSampler

CYCLES = {"verilator": 20_000, "icarus": 3_000}
LAT = EorsSampleHash.latency


def _random(rng, n):
    valid = (rng.random(n) < 0.8).astype(np.uint8)
    keys = rng.integers(0, 1 << 16, n).astype(np.int64)
    words = rng.integers(0, 1 << 16, n).astype(np.int64)
    return valid, keys, words


def _task_words(key, M, N, lanes):
    """The (valid, key, word) sequence of a task as the speculator feeds it: row m's
    key ``key + m``, its words 0..G-1 in order, a bubble between rows."""
    G = -(-N // lanes)
    v, k, w = [], [], []
    for m in range(M):
        for g in range(G):
            v.append(1), k.append((key + m) & 0xFFFF), w.append(g)
        v.append(0), k.append(0), w.append(0)
    return np.array(v, np.uint8), np.array(k, np.int64), np.array(w, np.int64)


def _as_matrix(sample, valid, M, N, lanes):
    """The model's per-cycle samples of a task's words as its bool (M, N) sample set."""
    rows = [int(sample[c + LAT - 1]) for c in np.flatnonzero(valid)]
    G = -(-N // lanes)
    bits = np.array([[(x >> j) & 1 for j in range(lanes)] for x in rows], dtype=bool)
    return bits.reshape(M, G * lanes)[:, :N]


# real GAN shapes: (rows, outputs) of the MLP GAN's FP ReLU layers at batch 32 (D's on
# real and fake rows) and of a narrow one
REAL = [(32, 128), (32, 256), (64, 256), (64, 128), (16, 64)]


def test_model_is_the_golden_sampler():
    """Feeding a task's words gives exactly EorsSampler's choice, for any key."""
    rng = np.random.default_rng(5)
    for lanes, r in ((16, 7), (4, 2), (64, 6), (1, 0), (16, 4)):
        for _ in range(3):
            key = int(rng.integers(0, 1 << 16))
            M, N = 37, 3 * lanes - 1 if lanes > 1 else 5
            v, k, w = _task_words(key, M, N, lanes)
            got = _as_matrix(EorsSampleHash.model(v, k, w, lanes, r), v, M, N, lanes)
            assert np.array_equal(EorsSampler(lanes, r).sample(M, N, key), got)


def test_sample_set_is_schedule_independent():
    """Rows split into parts, each with key + its first row, in any order, give the
    task's sample set."""
    rng = np.random.default_rng(6)
    smp = EorsSampler(16, 7)
    M, N, key = 64, 256, 0xFFF0          # the row keys wrap past 2**16
    whole = smp.sample(M, N, key)
    cuts = sorted(rng.choice(np.arange(1, M), 5, replace=False).tolist())
    parts = list(zip([0] + cuts, cuts + [M]))
    rng.shuffle(parts)
    got = np.zeros_like(whole)
    for m0, m1 in parts:
        got[m0:m1] = smp.sample(m1 - m0, N, (key + m0) & 0xFFFF)
    assert np.array_equal(got, whole)


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_sampler(sim, tmp_path):
    """Random keys and words, then the word sequences of real GAN shapes (1 in 128,
    P = 16, the ``sim`` config's setting), against the model cycle by cycle."""
    rng = np.random.default_rng(77)
    n = int(CYCLES[sim] * harness.scale())
    v, k, w = _random(rng, n)
    for M, N in REAL if sim == "verilator" else REAL[-1:]:
        tv, tk, tw = _task_words(int(rng.integers(0, 1 << 16)), M, N, 16)
        v, k, w = np.concatenate([v, tv]), np.concatenate([k, tk]), np.concatenate([w, tw])
    sa = EorsSampleHash.model(v, k, w, 16, 7)
    assert len(set(int(x) for x in sa)) == 17          # every lane, and no lane
    vec = tmp_path / "sampler.npz"
    np.savez(vec, valid=v, key=k, word=w, exp_sample=np.array([int(x) for x in sa], dtype=np.int64))
    harness.run(sim, EorsSampleHash(16, 7), "eors_sample_hash", "tb_eors_sampler",
                env={"GANPU_VECTORS": vec})


@pytest.mark.parametrize("lanes,r", [(16, 7), (4, 2), (2, 4), (1, 0)])
def test_sampler_amaranth_sim(lanes, r):
    rng = np.random.default_rng(lanes + r)
    v, k, w = _random(rng, 600)
    dut = EorsSampleHash(lanes, r)
    want = EorsSampleHash.model(v, k, w, lanes, r)
    got = []

    async def bench(ctx):
        for c in range(len(v)):
            ctx.set(dut.valid, int(v[c]))
            ctx.set(dut.key, int(k[c]))
            ctx.set(dut.word, int(w[c]))
            await ctx.tick()
            got.append(ctx.get(dut.sample))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert got == [int(x) for x in want]


def test_rate_and_independence_on_gan_shapes():
    """One output in 2**r within sampling error over the real shapes (many keys), no
    drift with the output index n or the row m, and no correlation between a word's
    sample and its neighbours' (next word, next row)."""
    rng = np.random.default_rng(8)
    smp = EorsSampler(16, 7)
    for M, N in REAL:
        S = np.stack([smp.sample(M, N, int(key)) for key in rng.integers(0, 1 << 16, 400)])
        n_out = S.size
        rate = S.mean() * 128
        assert abs(rate - 1) < 4 * np.sqrt(128 / n_out), (M, N, rate)
        # per column n and per row m: a chi-square-like check of the spread
        per_n, per_m = S.mean(axis=(0, 1)) * 128, S.mean(axis=(0, 2)) * 128
        assert abs(per_n.std() / np.sqrt(128 / (S.shape[0] * M)) - 1) < 0.35, (M, N)
        assert abs(per_m.std() / np.sqrt(128 / (S.shape[0] * N)) - 1) < 0.5, (M, N)
        hit = S.reshape(S.shape[0], M, -1, 16).any(axis=3).astype(float)   # word sampled
        for a, b in ((hit[:, :, :-1], hit[:, :, 1:]), (hit[:, :-1], hit[:, 1:])):
            assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.02, (M, N)


def test_parameters_are_validated():
    import gc
    cases = [
        (lambda: EorsSampleHash(3), ValueError, "lanes must be a power of two, not 3"),
        (lambda: EorsSampleHash(128), ValueError, "lanes must be in 1..64, not 128"),
        (lambda: EorsSampleHash(16, 2.0), TypeError, "rate_log2 must be an int, not 2.0"),
        (lambda: EorsSampleHash(16, 3), ValueError,
         "rate_log2 must give 2**rate_log2 >= lanes = 16, not 3"),
    ]
    for make, exc, msg in cases:
        with pytest.raises(exc) as info:
            make()
        assert str(info.value) == msg
    gc.collect()
    for word in ("Latency", "Ports", "Parameters", "docs/eors.md"):
        assert word in EorsSampleHash.__doc__
