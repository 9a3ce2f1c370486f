"""Exponent-only ReLU speculation (EORS), specified to the bit (``docs/eors.md``).

For one output ``(m, n)`` of an FP gemm (``A`` activations (M, K), ``B`` weights
(N, K), optional bias ``b`` (N,), all binary16 bits) the predictor keeps a
``width``-bit two's complement accumulator ``acc`` whose LSB weighs ``2**-frac``:

1. ``acc = T(b[n], 1.0)`` if ``use_bias`` else 0; then for k = 0 .. K-1 in order
   ``acc = sat(acc + T(A[m, k], B[n, k]))``.
2. ``T(x, w)`` is 0 if either operand is +-0. Otherwise, with ``e`` the exponent field,
   ``f`` the 10-bit fraction field: ``E = e - 15`` and hidden bit 1 for normals,
   ``E = -14`` and hidden bit 0 for subnormals; the significand kept is
   ``S = (hidden << m) | (f >> (10 - m))`` (m + 1 bits; ``S = 1`` for every operand
   when ``m = 0``); ``mag = Sx * Sw`` and
   ``sh = Ex + Ew + frac - 2*m``; ``t = mag << sh`` if ``sh >= 0`` else
   ``mag >> -sh`` (truncation of the magnitude); ``t = min(t, 2**(width-1) - 1)``;
   ``T = -t`` if ``sign(x) xor sign(w)`` else ``t``.
3. ``sat`` clamps to ``[-2**(width-1), 2**(width-1) - 1]``.
4. If a formed term (both operands nonzero) or the used bias has an Inf or NaN
   operand, the output is forced live.
5. Predicted zero  <=>  not forced and ``acc <= threshold``.

``m = 0`` is pure exponent-only: ``T = +-2**(Ex + Ew + frac)`` truncated.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["EorsParams", "DEFAULT_EORS", "eors_acc", "eors_mask", "decode16", "prediction_stats"]


def _check_int(name, value, lo, hi):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"EORS {name} must be an int, got {value!r}")
    if not lo <= value <= hi:
        raise ValueError(f"EORS {name} must be in [{lo}, {hi}], got {value!r}")


@dataclass(frozen=True)
class EorsParams:
    """EORS predictor parameters.

    Parameters
    ----------
    width : int
        Accumulator width in bits, two's complement, 2..32.
    frac : int
        Fractional bits of the accumulator (LSB = 2**-frac), 0..width-1.
    m : int
        Leading fraction bits kept per operand, 0..10 (0 = pure exponent-only).
    threshold : int
        Predicted zero iff ``acc <= threshold`` (in accumulator LSBs); must lie in the
        accumulator range.
    use_bias : bool
        Preload the accumulator with the bias estimate ``T(b, 1.0)``.
    """

    width: int = 20
    frac: int = 12
    m: int = 3
    threshold: int = -128
    use_bias: bool = True

    def __post_init__(self):
        _check_int("width", self.width, 2, 32)
        _check_int("frac", self.frac, 0, self.width - 1)
        _check_int("m", self.m, 0, 10)
        _check_int("threshold", self.threshold, -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1)
        if not isinstance(self.use_bias, (bool, np.bool_)):
            raise TypeError(f"EORS use_bias must be a bool, got {self.use_bias!r}")

    @property
    def lo(self):
        return -(1 << (self.width - 1))

    @property
    def hi(self):
        return (1 << (self.width - 1)) - 1


DEFAULT_EORS = EorsParams()


def decode16(bits, m):
    """binary16 bits -> (sign, E, S, zero, special) as int64 arrays / bool arrays.

    ``S`` is the (m+1)-bit truncated significand with the hidden bit (0 for
    subnormals, whose ``E`` is -14); 1 for every operand when ``m = 0``.
    """
    b = np.asarray(bits, dtype=np.uint16).astype(np.int64)
    sign = (b >> 15) & 1
    e = (b >> 10) & 0x1F
    f = b & 0x3FF
    normal = e != 0
    E = np.where(normal, e - 15, -14)
    # m = 0 is pure exponent-only: every nonzero operand weighs exactly 2^E, so a
    # subnormal counts as 2^-14 (the brief's rule); with m > 0 its hidden bit is 0
    S = (normal.astype(np.int64) << m) | (f >> (10 - m)) if m else np.ones_like(b)
    zero = (b & 0x7FFF) == 0
    special = e == 0x1F
    return sign, E, S, zero, special


def _terms(sx, Ex, Sx, sw, Ew, Sw, p):
    """Signed fixed-point terms T(x, w), broadcast (no zero handling here)."""
    mag = Sx * Sw
    sh = Ex + Ew + (p.frac - 2 * p.m)
    # a left shift by >= width already exceeds the clamp (mag >= 1), so cap it to
    # keep int64 exact; a right shift by >= 63 gives 0 either way
    left = mag << np.clip(sh, 0, p.width)
    right = mag >> np.clip(-sh, 0, 63)
    t = np.minimum(np.where(sh >= 0, left, right), p.hi)
    return np.where((sx ^ sw) == 1, -t, t)


def eors_acc(A, B, bias=None, params=DEFAULT_EORS):
    """EORS accumulators and forced-live flags.

    Parameters
    ----------
    A : ndarray of uint16, shape (M, K)
    B : ndarray of uint16, shape (N, K)
    bias : ndarray of uint16, shape (N,), optional
        Used only if ``params.use_bias``.
    params : EorsParams

    Returns
    -------
    acc : ndarray of int64, shape (M, N)
        Final accumulator values (in LSBs of 2**-frac).
    forced : ndarray of bool, shape (M, N)
        Outputs forced live by an Inf/NaN operand of a formed term or of the bias.
    """
    if not isinstance(params, EorsParams):
        raise TypeError(f"params must be an EorsParams, got {params!r}")
    A = np.asarray(A, dtype=np.uint16)
    B = np.asarray(B, dtype=np.uint16)
    M, K = A.shape
    N = B.shape[0]
    p = params
    acc = np.zeros((M, N), dtype=np.int64)
    forced = np.zeros((M, N), dtype=bool)
    if p.use_bias and bias is not None:
        sb, Eb, Sb, zb, spb = decode16(np.asarray(bias, dtype=np.uint16), p.m)
        one = 1 << p.m  # 1.0: E = 0, hidden bit 1, fraction 0
        tb = _terms(sb, Eb, Sb, 0, 0, one, p)
        acc += np.where(zb, 0, tb)[None, :]
        forced |= spb[None, :]
    sa, Ea, Sa, za, spa = decode16(A, p.m)
    sw, Ew, Sw, zw, spw = decode16(B, p.m)
    if M * N * K <= (1 << 22):
        # Fast path: all terms at once; if no partial sum leaves the accumulator range
        # no saturation happened, so the plain sum equals the saturating sequence.
        t = _terms(sa[:, None, :], Ea[:, None, :], Sa[:, None, :],
                   sw[None, :, :], Ew[None, :, :], Sw[None, :, :], p)
        formed = ~za[:, None, :] & ~zw[None, :, :]
        t = np.where(formed, t, 0)
        part = acc[:, :, None] + np.cumsum(t, axis=2)
        if part.size == 0 or (part.min() >= p.lo and part.max() <= p.hi):
            forced |= (formed & (spa[:, None, :] | spw[None, :, :])).any(axis=2)
            return (part[:, :, -1] if K else acc.copy()), forced
    for k in range(K):
        rows = np.flatnonzero(~za[:, k])
        cols = np.flatnonzero(~zw[:, k])
        if rows.size == 0 or cols.size == 0:
            continue
        ix = np.ix_(rows, cols)
        t = _terms(sa[rows, k][:, None], Ea[rows, k][:, None], Sa[rows, k][:, None],
                   sw[cols, k][None, :], Ew[cols, k][None, :], Sw[cols, k][None, :], p)
        acc[ix] = np.clip(acc[ix] + t, p.lo, p.hi)
        forced[ix] |= spa[rows, k][:, None] | spw[cols, k][None, :]
    return acc, forced


def eors_mask(A, B, bias=None, params=DEFAULT_EORS):
    """Predicted live outputs (True = compute it), shape (M, N); see the module doc."""
    acc, forced = eors_acc(A, B, bias, params)
    return forced | (acc > params.threshold)


def prediction_stats(true_live, pred_live):
    """How well a prediction ``pred_live`` matches the exact ReLU mask ``true_live``
    (boolean arrays of one shape, True = output nonzero / computed).

    Returns a dict of fractions: ``recall`` (true zeros predicted zero, of all true
    zeros), ``false_zero`` (live outputs predicted zero, of all live outputs: the
    errors EORS makes), ``skipped`` (outputs predicted zero, of all) and ``true_zero``
    (outputs the exact ReLU zeroes, of all). An empty class counts as 0 of 1.
    """
    live = np.asarray(true_live, dtype=bool)
    pred = np.asarray(pred_live, dtype=bool)
    tz, pz = ~live, ~pred
    return {"recall": float((tz & pz).sum() / max(tz.sum(), 1)),
            "false_zero": float((live & pz).sum() / max(live.sum(), 1)),
            "skipped": float(pz.mean()), "true_zero": float(tz.mean())}
