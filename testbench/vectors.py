"""Operand generators that hit every IEEE class and the hard rounding cases."""

import numpy as np

# binary16 class representatives
F16_SPECIALS = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x83FF, 0x0400, 0x8400,
                         0x3C00, 0xBC00, 0x7BFF, 0xFBFF, 0x7C00, 0xFC00, 0x7E00, 0xFE00,
                         0x7C01, 0x7FFF, 0x3555, 0x0200], dtype=np.uint16)
F32_SPECIALS = np.array([0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007FFFFF,
                         0x807FFFFF, 0x00800000, 0x80800000, 0x3F800000, 0xBF800000,
                         0x7F7FFFFF, 0xFF7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00000,
                         0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0x33800000, 0x387FC000,
                         0x477FE000, 0x477FEFFF, 0x477FF000, 0x38800000, 0x33000000,
                         0x33000001, 0x337FFFFF], dtype=np.uint32)


def f16_mixed(rng, n):
    """binary16 operands: a quarter each of any bits, normals near 1, subnormals/zeros,
    and the special representatives."""
    q = n // 4
    parts = [rng.integers(0, 1 << 16, q, dtype=np.uint32),
             (rng.integers(0, 2, q) << 15) | (rng.integers(0x3000, 0x4800, q)),
             (rng.integers(0, 2, q) << 15) | rng.integers(0, 0x0800, q),
             F16_SPECIALS[rng.integers(0, len(F16_SPECIALS), n - 3 * q)]]
    return np.concatenate(parts).astype(np.uint16)[rng.permutation(n)]


def f32_mixed(rng, n):
    """binary32 operands over every class, with extra weight near the binary16 range
    (the narrowing's overflow threshold, its subnormals and its halfway cases)."""
    q = n // 5
    sign = lambda k: rng.integers(0, 2, k).astype(np.uint32) << 31
    # exponents around the fp16 range (bias 127: 2^-26 .. 2^17)
    near = sign(q) | (rng.integers(101, 145, q).astype(np.uint32) << 23) | rng.integers(0, 1 << 23, q).astype(np.uint32)
    # halfway and near-halfway for fp16 (13 dropped bits) and for fp32 adder tests
    half = near.copy() & ~np.uint32(0x1FFF)
    half |= np.array([0x1000, 0x0FFF, 0x1001, 0x0000], dtype=np.uint32)[rng.integers(0, 4, q)]
    parts = [rng.integers(0, 1 << 32, q, dtype=np.uint64).astype(np.uint32), near, half,
             sign(q) | rng.integers(0, 1 << 24, q).astype(np.uint32),  # fp32 subnormals and tiny normals
             F32_SPECIALS[rng.integers(0, len(F32_SPECIALS), n - 4 * q)]]
    return np.concatenate(parts).astype(np.uint32)[rng.permutation(n)]


def pairs(specials):
    """Every ordered pair of special representatives."""
    a, b = np.meshgrid(specials, specials, indexing="ij")
    return a.ravel(), b.ravel()
