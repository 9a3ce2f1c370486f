"""Fp32ToFp16, Fp16Mul and Fp32Add on generated Verilog against ganpu.numerics.

Each pipeline gets every ordered pair of the special representatives plus directed
edge cases and mixed random operands: >= 1,000,000 vectors on Verilator, >= 10,000 on
Icarus (times ``GANPU_TEST_SCALE``), 16 packed copies per clock (the Verilator build time
grows with the copy count faster than the run time shrinks).
"""

import gc

import numpy as np
import pytest
from amaranth.hdl import Fragment

import harness
import vectors
from ganpu import numerics
from ganpu.arith import Fp16Mac, Fp16Mul, Fp32Add, Fp32ToFp16
from ganpu.arith.packed import PackedCopies

COPIES = 16
COUNTS = {"verilator": 1_000_000, "icarus": 40_000}


def _count(sim):
    return max(1, int(COUNTS[sim] * harness.scale()))


def _fill(rng, directed, n, mixed):
    """``directed`` vectors (tuple of arrays) first, topped up with ``mixed(rng, k)``
    to ``n``; on a short budget the directed ones are subsampled, never dropped all."""
    total = len(directed[0])
    if total > n // 2:
        pick = rng.choice(total, n // 2, replace=False)
        directed = tuple(d[pick] for d in directed)
        total = n // 2
    extra = mixed(rng, n - total)
    return tuple(np.concatenate([d, e]) for d, e in zip(directed, extra))


def _run(sim, tmp_path, cls, tag, block, **inputs):
    vec = tmp_path / "vectors.npz"
    np.savez(vec, **inputs)
    harness.run(sim, PackedCopies(cls, COPIES), f"{tag}_x{COPIES}", "tb_pipe",
                env={"GANPU_VECTORS": vec, "GANPU_BLOCK": block,
                     "GANPU_COPIES": COPIES, "GANPU_LATENCY": cls.latency})


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_narrow(sim, tmp_path):
    rng = np.random.default_rng(16)
    n = _count(sim)
    pairs = (vectors.F32_SPECIALS,)
    edges = (vectors.f32_narrow_edges(rng),)
    (i,) = _fill(rng, edges, n - len(pairs[0]), lambda r, k: (vectors.f32_mixed(r, k),))
    i = np.concatenate([pairs[0], i])
    assert len(i) >= COUNTS[sim] * harness.scale() - 1
    _run(sim, tmp_path, Fp32ToFp16, "fp32_to_fp16", "ganpu.arith.narrow:Fp32ToFp16", i=i)


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_mul(sim, tmp_path):
    rng = np.random.default_rng(17)
    n = _count(sim)
    pa, pb = vectors.pairs(vectors.F16_SPECIALS)
    # every binary16 pattern against the representatives of each class
    allv = vectors.f16_all()
    reps = np.array([0x0000, 0x8000, 0x0001, 0x03FF, 0x0400, 0x3C00, 0xBBFF, 0x7BFF,
                     0x7C00, 0xFC00, 0x7E00, 0x3555], dtype=np.uint16)
    ea, eb = np.meshgrid(allv, reps, indexing="ij")
    # subnormal x subnormal and subnormal x normal: the normalization paths
    sa = rng.integers(0, 0x0800, 50_000).astype(np.uint16) | (rng.integers(0, 2, 50_000).astype(np.uint16) << 15)
    sb = vectors.f16_mixed(rng, 50_000)
    directed = (np.concatenate([ea.ravel(), sa]), np.concatenate([eb.ravel(), sb]))
    a, b = _fill(rng, directed, n - len(pa),
                 lambda r, k: (vectors.f16_mixed(r, k), vectors.f16_mixed(r, k)))
    a, b = np.concatenate([pa, a]), np.concatenate([pb, b])
    swap = rng.random(len(a)) < 0.5    # the multiplier must be symmetric
    a, b = np.where(swap, b, a), np.where(swap, a, b)
    _run(sim, tmp_path, Fp16Mul, "fp16_mul", "ganpu.arith.mul:Fp16Mul", a=a, b=b)


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_add(sim, tmp_path):
    rng = np.random.default_rng(18)
    n = _count(sim)
    pa, pb = vectors.pairs(vectors.F32_SPECIALS)
    k = n // 8
    # every exponent gap 0..40 equally often (k // 41 each), then massive cancellation
    # and overflow; the rest mixed random across all classes
    ga, gb = vectors.f32_gap_pairs(rng, max(41, 3 * k))
    ca, cb = vectors.f32_cancel_pairs(rng, max(1, 2 * k))
    oa, ob = vectors.f32_overflow_pairs(rng, max(1, k // 4))
    directed = (np.concatenate([ga, ca, oa]), np.concatenate([gb, cb, ob]))
    a, b = _fill(rng, directed, n - len(pa),
                 lambda r, m: (vectors.f32_mixed(r, m), vectors.f32_mixed(r, m)))
    a, b = np.concatenate([pa, a]), np.concatenate([pb, b])
    _run(sim, tmp_path, Fp32Add, "fp32_add", "ganpu.arith.add:Fp32Add", a=a, b=b)


def test_vectors_cover_adder_cases():
    """The adder's directed generators really produce what their names promise."""
    rng = np.random.default_rng(1)
    a, b = vectors.f32_gap_pairs(rng, 41 * 50)
    gaps = np.abs(((a >> 23) & 0xFF).astype(int) - ((b >> 23) & 0xFF).astype(int))
    assert set(range(41)) <= set(gaps.tolist())
    a, b = vectors.f32_cancel_pairs(rng, 10_000)
    s = numerics.add(a, b)
    assert (s == 0).sum() > 1000                                # x + -x = +0
    assert ((numerics.f32_value(s) != 0) & (np.abs(numerics.f32_value(s)) <
            np.abs(numerics.f32_value(a)) * 2.0 ** -20)).sum() > 1000  # massive cancellation
    i = vectors.f32_narrow_edges(rng)
    assert {0x477FEFFF, 0x477FF000} <= set(i.tolist())
    assert numerics.narrow(np.array([0x477FEFFF, 0x477FF000], dtype=np.uint32)).tolist() == [0x7BFF, 0x7C00]


@pytest.mark.parametrize("bad, exc, msg", [
    (0, ValueError, "count must be in >= 1, not 0"),
    (-3, ValueError, "count must be in >= 1, not -3"),
    (2.5, TypeError, "count must be an int, not 2.5"),
    ("8", TypeError, "count must be an int, not '8'"),
])
def test_copy_count_rejected(bad, exc, msg):
    # refused before the component exists: with -W error, a half-built one would fail
    # the run with "created but never used" once collected
    Fragment.get(Fp32Add(), None)       # an elaboration turns that warning on
    with pytest.raises(exc) as info:
        PackedCopies(Fp32Add, bad)
    assert str(info.value) == msg
    gc.collect()


@pytest.mark.parametrize("block, msg", [
    (lambda: None, "block must be a wiring.Component subclass, not <function"),
    (Fp16Mac, None),
])
def test_packed_block_checked(block, msg):
    """Only component classes with plain integer ports declared on the class are packed;
    the ports are read from the class, so no block is built for it."""
    if msg is None:
        packed = PackedCopies(block, 3)
        assert packed.latency == block.latency
        assert {n: len(getattr(packed, n)) for n in ("a", "o", "i_valid")} == {"a": 48, "o": 96, "i_valid": 3}
        Fragment.get(packed, None)
    else:
        with pytest.raises(TypeError) as info:
            PackedCopies(block, 2)
        assert str(info.value).startswith(msg)


@pytest.mark.parametrize("cls", [Fp32ToFp16, Fp16Mul, Fp32Add])
def test_block_contract(cls):
    """Each pipeline is documented and exposes its latency and model."""
    assert isinstance(cls.latency, int) and cls.latency >= 1
    assert "Latency" in cls.__doc__ and "Ports" in cls.__doc__
    assert callable(cls.model)
