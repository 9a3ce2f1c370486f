"""Fp32Mul on generated Verilog against :func:`ganpu.numerics.mul32` (numpy float32).

Every ordered pair of the binary32 class representatives, directed cases (ties and
near-ties of the rounding, overflow to Inf and to the largest finite value, underflow
to subnormals and to zero, a subnormal operand times a normal one), the products of a
real GAN's SGD steps (mu x v, g x inv_scale, lr x v) and mixed random operands:
1,000,000 vectors on Verilator, 20,000 on Icarus (times ``GANPU_TEST_SCALE``), 16
packed copies per clock through the shared pipeline bench (``tb_pipe``).
"""

import gc

import numpy as np
import pytest
from amaranth.hdl import Fragment

import harness
import updatecases
import vectors
from ganpu import numerics
from ganpu.arith.mul32 import Fp32Mul
from ganpu.arith.packed import PackedCopies

COPIES = 16
COUNTS = {"verilator": 1_000_000, "icarus": 20_000}


def _f32(sign, exp, sig):
    """binary32 bits from a sign, a biased exponent field and a 23-bit fraction."""
    return ((np.asarray(sign, np.uint32) << 31) | (np.asarray(exp, np.uint32) << 23)
            | (np.asarray(sig, np.uint32) & 0x7FFFFF)).astype(np.uint32)


def _exact(a, b):
    """Exact product as (significand product P, E) with value P * 2^(E - 127 - 46), for
    finite nonzero operands (a subnormal counts as exponent 1 without hidden bit)."""
    def parts(x):
        e = ((x >> 23) & 0xFF).astype(np.int64)
        s = (x & 0x7FFFFF).astype(np.uint64) | np.where(e != 0, np.uint64(1 << 23), np.uint64(0))
        return s, np.maximum(e, 1)
    sa, ea = parts(a)
    sb, eb = parts(b)
    return sa * sb, ea + eb - 127


def tie_pairs(rng, n):
    """Products that sit exactly on a rounding halfway point (normal results): a sparse
    significand (hidden bit + one bit) times a random one whose low bits are set so
    the dropped part is exactly one half; half of them with an odd kept LSB."""
    out_a, out_b, got = [], [], 0
    while got < n:
        m = 4 * (n - got) + 64
        k = rng.integers(1, 24, m)
        fa = (np.uint32(1) << (23 - k).astype(np.uint32)) & 0x7FFFFF
        fb = rng.integers(0, 1 << 23, m, dtype=np.uint32)
        # dropped part of (2^23 + 2^(23-k)) * B: force B's low k bits to 10..0 or 00..0
        low = np.where(rng.random(m) < 0.5, np.uint32(1) << (k - 1).astype(np.uint32), 0).astype(np.uint32)
        fb = ((fb >> k.astype(np.uint32)) << k.astype(np.uint32)) | low
        ea = rng.integers(64, 190, m)
        eb = rng.integers(64, 190, m)
        a = _f32(rng.integers(0, 2, m), ea, fa)
        b = _f32(rng.integers(0, 2, m), eb, fb)
        keep = _is_tie(a, b)
        out_a.append(a[keep])
        out_b.append(b[keep])
        got += int(keep.sum())
    return np.concatenate(out_a)[:n], np.concatenate(out_b)[:n]


def _is_tie(a, b):
    """Normal-range products whose dropped bits are exactly one half ulp."""
    p, e = _exact(a, b)
    drop = np.where(p >> np.uint64(47), 24, 23).astype(np.uint64)
    rem = p & ((np.uint64(1) << drop) - np.uint64(1))
    normal = (e >= 1) & (e <= 253)
    return normal & (rem == (np.uint64(1) << (drop - np.uint64(1))))


def range_pairs(rng, n, lo, hi):
    """Random finite operands whose exponent sum E = e_a + e_b - 127 lies in lo..hi;
    significands random, all ones (the carry of the rounding) or exactly 1 (products
    that are exactly the other operand's significand, up to the largest finite)."""
    e = rng.integers(lo, hi + 1, n) + 127            # e_a + e_b
    ea = np.clip(rng.integers(0, 255, n), np.maximum(e - 254, 0), np.minimum(e, 254))
    eb = np.clip(e - ea, 0, 254)
    r = rng.random(n)
    fa = np.where(r < 0.3, 0x7FFFFF, np.where(r < 0.5, 0, rng.integers(0, 1 << 23, n)))
    r = rng.random(n)
    fb = np.where(r < 0.15, 0x7FFFFF, np.where(r < 0.3, 0x7FFFFF - rng.integers(1, 4, n),
                                                 rng.integers(0, 1 << 23, n)))
    return _f32(rng.integers(0, 2, n), ea, fa), _f32(rng.integers(0, 2, n), eb, fb)


def subnormal_pairs(rng, n):
    """A subnormal operand (any fraction, often tiny) times a normal one, from deep
    underflow to products well inside the normal range."""
    fa = np.where(rng.random(n) < 0.5, rng.integers(1, 1 << 23, n), rng.integers(1, 256, n))
    a = _f32(rng.integers(0, 2, n), 0, fa)
    b = _f32(rng.integers(0, 2, n), rng.integers(100, 255, n), rng.integers(0, 1 << 23, n))
    swap = rng.random(n) < 0.5
    return np.where(swap, b, a), np.where(swap, a, b)


def directed(rng, n):
    """``n`` directed pairs: ties, overflow, underflow, subnormal operands."""
    q = n // 6
    parts = [tie_pairs(rng, q),
             range_pairs(rng, q, 250, 258),          # largest finite .. Inf
             range_pairs(rng, q, -30, 2),            # subnormal results, zero, min normal
             range_pairs(rng, q, -2, 1),             # the subnormal/normal boundary
             subnormal_pairs(rng, q),
             range_pairs(rng, n - 5 * q, -150, 300)]
    return tuple(np.concatenate(x) for x in zip(*parts))


def _mixed(rng, n):
    return vectors.f32_mixed(rng, n), vectors.f32_mixed(rng, n)


def operands(sim, rng):
    n = max(1, int(COUNTS[sim] * harness.scale()))
    pa, pb = vectors.pairs(vectors.F32_SPECIALS)
    ra, rb = updatecases.mul_operands(updatecases.sgd_calls())
    pick = rng.choice(len(ra), min(len(ra), n // 5), replace=False)
    da, db = directed(rng, n // 3)
    used = len(pa) + len(pick) + len(da)
    xa, xb = _mixed(rng, max(0, n - used))
    a = np.concatenate([pa, ra[pick], da, xa])
    b = np.concatenate([pb, rb[pick], db, xb])
    swap = rng.random(len(a)) < 0.5     # the multiplier must be symmetric
    return np.where(swap, b, a), np.where(swap, a, b)


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_mul32(sim, tmp_path):
    rng = np.random.default_rng(32)
    a, b = operands(sim, rng)
    assert len(a) >= COUNTS[sim] * harness.scale()
    vec = tmp_path / "vectors.npz"
    np.savez(vec, a=a, b=b)
    harness.run(sim, PackedCopies(Fp32Mul, COPIES), f"fp32_mul_x{COPIES}", "tb_pipe",
                env={"GANPU_VECTORS": vec, "GANPU_BLOCK": "ganpu.arith.mul32:Fp32Mul",
                     "GANPU_COPIES": COPIES, "GANPU_LATENCY": Fp32Mul.latency})


def test_vectors_cover_multiplier_cases():
    """The directed generators produce what they promise, and the oracle is IEEE there:
    ties round to even, overflow gives Inf, underflow gives subnormals and zeros."""
    rng = np.random.default_rng(2)
    a, b = tie_pairs(rng, 2000)
    assert _is_tie(a, b).all()
    p = numerics.mul32(a, b)
    assert (p & 1 == 0).all()                               # ties to even
    ex, _ = _exact(a, b)
    # both directions happen: the kept LSB odd (rounded up) and even (kept)
    kept = ex >> np.where(ex >> np.uint64(47), np.uint64(24), np.uint64(23))
    assert 500 < int((kept & np.uint64(1)).sum()) < 1500
    a, b = range_pairs(rng, 5000, 250, 258)
    p = numerics.mul32(a, b) & 0x7FFFFFFF
    assert (p == 0x7F800000).sum() > 1000 and (p == 0x7F7FFFFF).sum() > 5
    a, b = range_pairs(rng, 5000, -30, 2)
    p = numerics.mul32(a, b) & 0x7FFFFFFF
    assert ((p > 0) & (p < 0x00800000)).sum() > 2000 and (p == 0).sum() > 100
    a, b = range_pairs(rng, 5000, -2, 1)
    p = numerics.mul32(a, b) & 0x7FFFFFFF
    assert (p == 0x00800000).sum() > 10                     # rounded up to the smallest normal
    a, b = subnormal_pairs(rng, 5000)
    p = numerics.mul32(a, b) & 0x7FFFFFFF
    assert (p >= 0x00800000).sum() > 1000 and ((p > 0) & (p < 0x00800000)).sum() > 500


def test_oracle_matches_exact_rounding():
    """numerics.mul32 against integer RNE of the exact product (no numpy float)."""
    rng = np.random.default_rng(3)
    a, b = directed(rng, 6000)
    finite = ((a >> 23) & 0xFF != 0xFF) & ((b >> 23) & 0xFF != 0xFF)
    a, b = a[finite], b[finite]
    got = numerics.mul32(a, b)
    for x, y, r in zip(a.tolist(), b.tolist(), got.tolist()):
        assert r == _rne_mul(x, y), (hex(x), hex(y), hex(r))


def _rne_mul(x, y):
    """Python-integer binary32 product of finite x, y, round to nearest even."""
    sign = ((x ^ y) >> 31) << 31
    def parts(v):
        e, f = (v >> 23) & 0xFF, v & 0x7FFFFF
        return (f | (1 << 23) if e else f), max(e, 1)
    (sa, ea), (sb, eb) = parts(x), parts(y)
    p = sa * sb                  # value p * 2^(ea + eb - 300)
    if p == 0:
        return sign
    e = ea + eb - 300            # p * 2^e
    # scale to a 24-bit significand q * 2^k with k >= -149, rounding once
    k = max(p.bit_length() - 24 + e, -149)
    shift = k - e
    if shift > 0:
        q, rem = p >> shift, p & ((1 << shift) - 1)
        half = 1 << (shift - 1)
        q += rem > half or (rem == half and q & 1)
    else:
        q = p << -shift
    if q >> 24:                  # the rounding carried into a 25th bit
        q >>= 1
        k += 1
    if q < (1 << 23):            # subnormal (k is -149)
        return sign | q
    field = k + 150
    if field >= 255:
        return sign | 0x7F800000
    return sign | (field << 23) | (q & 0x7FFFFF)


@pytest.mark.parametrize("bad, exc, msg", [
    (11, ValueError, "tile must be in 12..24, not 11"),
    (25, ValueError, "tile must be in 12..24, not 25"),
    (18.0, TypeError, "tile must be an int, not 18.0"),
    (True, TypeError, "tile must be an int, not True"),
])
def test_tile_rejected(bad, exc, msg):
    Fragment.get(Fp32Mul(), None)      # an elaboration turns the unused-component warning on
    with pytest.raises(exc) as info:
        Fp32Mul(bad)
    assert str(info.value) == msg
    gc.collect()


@pytest.mark.parametrize("tile", [12, 24])
def test_other_tiles_same_bits(tile):
    """Every split computes the same product (Amaranth simulator, a few thousand
    vectors through the directed cases)."""
    from amaranth.sim import Simulator
    rng = np.random.default_rng(tile)
    a, b = directed(rng, 1200)
    sa, sb = vectors.pairs(vectors.F32_SPECIALS[::3])
    a, b = np.concatenate([sa, a]), np.concatenate([sb, b])
    dut = Fp32Mul(tile)
    outs = []

    async def bench(ctx):
        for i in range(len(a) + dut.latency):
            if i < len(a):
                ctx.set(dut.a, int(a[i]))
                ctx.set(dut.b, int(b[i]))
            await ctx.tick()
            outs.append(ctx.get(dut.p))
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # after tick i the output register holds the product presented latency - 1 ticks earlier
    got = np.array(outs[dut.latency - 1:dut.latency - 1 + len(a)], np.uint32)
    exp = Fp32Mul.model(a, b)
    bad = np.nonzero(got != exp)[0]
    assert not len(bad), f"{len(bad)} mismatches; first {hex(a[bad[0]])} x {hex(b[bad[0]])}: " \
                         f"{hex(got[bad[0]])} != {hex(exp[bad[0]])}"


def test_block_contract():
    assert isinstance(Fp32Mul.latency, int) and Fp32Mul.latency >= 1
    assert "Latency" in Fp32Mul.__doc__ and "Ports" in Fp32Mul.__doc__
    assert Fp32Mul.model(np.uint32(0x3FC00000), np.uint32(0x40000000)) == 0x40400000
