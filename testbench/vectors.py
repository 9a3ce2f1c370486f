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


def _f32(sign, exp, frac):
    return ((np.asarray(sign, dtype=np.uint32) << 31) | (np.asarray(exp, dtype=np.uint32) << 23)
            | (np.asarray(frac, dtype=np.uint32) & 0x7FFFFF)).astype(np.uint32)


def _rounding_fractions(rng, count_per_pos=2):
    """23-bit fractions that sit on, just below and just above a rounding halfway
    point for every possible rounding position, with random bits above it."""
    out = []
    for p in range(24):
        half = 1 << p
        for low in (half, half - 1, half + 1, 0, (1 << (p + 1)) - 1):
            hi = rng.integers(0, 1 << 23, count_per_pos, dtype=np.uint32) >> (p + 1) << (p + 1)
            out.append((hi | np.uint32(low)) & 0x7FFFFF)
    return np.concatenate(out).astype(np.uint32)


def f32_narrow_edges(rng):
    """binary32 values around every binary16 rounding case: every exponent and sign
    with fractions at each halfway position (normal results round at bit 12,
    subnormal results at bits 13..23), plus the overflow threshold's neighbourhood."""
    fr = _rounding_fractions(rng)
    e = np.arange(256, dtype=np.uint32)
    sign, exp, frac = np.meshgrid([0, 1], e, fr, indexing="ij")
    thr = np.array([0x477FEFFF, 0x477FF000, 0x477FE000, 0x477FF001, 0x477FDFFF, 0x47800000,
                    0x387FC000, 0x387FE000, 0x387FDFFF, 0x33000000, 0x33000001, 0x32FFFFFF,
                    0x33800000, 0x337FFFFF, 0x33C00000, 0x33A00000], dtype=np.uint32)
    return np.concatenate([_f32(sign.ravel(), exp.ravel(), frac.ravel()), thr, thr | 0x80000000])


def f16_all():
    """Every binary16 bit pattern."""
    return np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def f32_gap_pairs(rng, n, gaps=range(41)):
    """Adder operand pairs whose exponents differ by each of ``gaps`` (equally often),
    either order, random signs (so half are effective subtractions), fractions on the
    rounding edges; about a tenth use exponents low enough that one operand or the
    result is subnormal."""
    gaps = np.asarray(list(gaps), dtype=np.int64)
    g = gaps[np.arange(n) % len(gaps)]
    lo = rng.random(n) < 0.1
    ex = np.where(lo, rng.integers(0, 30, n), rng.integers(1, 255, n))
    ex = np.maximum(ex, g)               # keep the smaller exponent >= 0
    ex = np.minimum(ex, 254)
    ey = ex - g
    fr = _rounding_fractions(rng, 4)
    fx = np.where(rng.random(n) < 0.5, fr[rng.integers(0, len(fr), n)],
                  rng.integers(0, 1 << 23, n, dtype=np.uint32))
    fy = np.where(rng.random(n) < 0.5, fr[rng.integers(0, len(fr), n)],
                  rng.integers(0, 1 << 23, n, dtype=np.uint32))
    x = _f32(rng.integers(0, 2, n), ex, fx)
    y = _f32(rng.integers(0, 2, n), ey, fy)
    swap = rng.random(n) < 0.5
    return np.where(swap, y, x), np.where(swap, x, y)


def f32_cancel_pairs(rng, n):
    """Adder pairs with b close to -a: massive cancellation, exact zeros (x + -x = +0),
    and results that fall into the subnormals."""
    a = np.where(rng.random(n) < 0.8,
                 _f32(rng.integers(0, 2, n), rng.integers(0, 255, n), rng.integers(0, 1 << 23, n)),
                 _f32(rng.integers(0, 2, n), rng.integers(0, 3, n), rng.integers(0, 1 << 23, n)))
    # neighbours of -a in bit-pattern order: same or adjacent exponent, tiny difference
    delta = np.where(rng.random(n) < 0.25, 0, rng.integers(-40, 41, n))
    delta = np.where(rng.random(n) < 0.1, rng.integers(-(1 << 23), 1 << 23, n), delta)
    mag = (a & np.uint32(0x7FFFFFFF)).astype(np.int64) + delta
    mag = np.clip(mag, 0, 0x7F7FFFFF).astype(np.uint32)
    b = (mag | ((~a) & np.uint32(0x80000000))).astype(np.uint32)
    return a.astype(np.uint32), b


def f32_overflow_pairs(rng, n):
    """Same-sign pairs near the top of the range: the sum rounds to the largest
    finite value or overflows to Inf."""
    sign = rng.integers(0, 2, n)
    a = _f32(sign, rng.integers(250, 255, n), rng.integers(0x700000, 1 << 23, n))
    b = _f32(sign, rng.integers(225, 255, n), rng.integers(0, 1 << 23, n))
    return a, b
