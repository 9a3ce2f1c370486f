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
5. Absolute mode (``rel`` is None, the default): predicted zero  <=>  not forced and
   ``acc <= threshold``.
6. Scale-aware mode (``rel`` = q, 0..31): beside ``acc`` the lane keeps ``mag``, an
   unsigned ``width``-bit saturating sum of ``|T|`` over the bias and every formed term
   (``mag = min(mag + |T|, 2**width - 1)``), and ``n``, the number of terms whose
   activation is nonzero (saturating at 65535); with ``L = floor(log2 n)`` (0 if n = 0)
   and ``qe = q + L``,
   predicted zero  <=>  not forced and ``acc + F(qe, mag) <= threshold`` with
   ``F(2a, s) = s >> a`` and ``F(2a+1, s) = (s >> (a+1)) + (s >> (a+2))`` (the margin
   is about 2**-(qe/2) of the estimate's own scale, i.e. ``mag / sqrt(n)``: the error of
   a sum of n truncated terms grows like their root-sum-square; shifts and one add).

``m = 0`` is pure exponent-only: ``T = +-2**(Ex + Ew + frac)`` truncated.
"""

from dataclasses import dataclass
from math import sqrt

import numpy as np

__all__ = ["EorsParams", "DEFAULT_EORS", "eors_acc", "eors_state", "eors_mask", "rel_margin",
           "predicted_live", "term_log", "decode16", "prediction_stats", "REL_MAX", "EorsSampler",
           "EorsCalibrator", "calibration_counts", "mix16", "row_key", "sample_lane", "MIX_ROUNDS",
           "MIX_FINAL", "KEY_BITS", "ONE_SETTING", "ONE_SETTING_EORS",
           "ONE_SETTING_RATE_LOG2"]

# Largest scale-aware level q (a 5-bit field).
REL_MAX = 31


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
    rel : int or None
        None: absolute mode (predicted zero iff ``acc <= threshold``). An int q in
        0..31: scale-aware mode, predicted zero iff ``acc + F(q, mag) <= threshold``
        with ``mag`` the saturating sum of the terms' magnitudes and ``F`` a
        ``2**-(q/2)``-ish fraction of it (module doc, rule 6).
    """

    width: int = 20
    frac: int = 12
    m: int = 3
    threshold: int = -128
    use_bias: bool = True
    rel: int = None

    def __post_init__(self):
        _check_int("width", self.width, 2, 32)
        _check_int("frac", self.frac, 0, self.width - 1)
        _check_int("m", self.m, 0, 10)
        _check_int("threshold", self.threshold, -(1 << (self.width - 1)), (1 << (self.width - 1)) - 1)
        if not isinstance(self.use_bias, (bool, np.bool_)):
            raise TypeError(f"EORS use_bias must be a bool, got {self.use_bias!r}")
        if self.rel is not None:
            _check_int("rel", self.rel, 0, REL_MAX)

    @property
    def lo(self):
        return -(1 << (self.width - 1))

    @property
    def hi(self):
        return (1 << (self.width - 1)) - 1

    @property
    def mag_max(self):
        """Saturation value of the scale-aware mode's magnitude sum (``width`` bits)."""
        return (1 << self.width) - 1


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


N_MAX = 65535   # the term counter saturates here (16 bits)


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
    acc, _, forced, _ = eors_state(A, B, bias, params)
    return acc, forced


def term_log(A):
    """``L = floor(log2 n)`` per row of ``A`` (int64 (M, 1)), n the row's nonzero
    activations saturated at 65535 (0 for an empty row): the scale-aware level offset."""
    n = np.minimum(((np.asarray(A, dtype=np.uint16) & 0x7FFF) != 0).sum(axis=1), N_MAX)
    return np.where(n > 0, np.floor(np.log2(np.maximum(n, 1))), 0).astype(np.int64)[:, None]


def eors_state(A, B, bias=None, params=DEFAULT_EORS):
    """``(acc, mag, forced, L)``: :func:`eors_acc` plus ``mag`` (int64 (M, N)), the
    saturating sum of the terms' magnitudes (bias included), and ``L`` (int64 (M, 1)),
    :func:`term_log` of the rows, which the scale-aware mode compares against (module
    doc, rule 6). Both are computed in every mode."""
    if not isinstance(params, EorsParams):
        raise TypeError(f"params must be an EorsParams, got {params!r}")
    A = np.asarray(A, dtype=np.uint16)
    B = np.asarray(B, dtype=np.uint16)
    M, K = A.shape
    N = B.shape[0]
    p = params
    acc = np.zeros((M, N), dtype=np.int64)
    mag = np.zeros((M, N), dtype=np.int64)
    forced = np.zeros((M, N), dtype=bool)
    if p.use_bias and bias is not None:
        sb, Eb, Sb, zb, spb = decode16(np.asarray(bias, dtype=np.uint16), p.m)
        one = 1 << p.m  # 1.0: E = 0, hidden bit 1, fraction 0
        tb = np.where(zb, 0, _terms(sb, Eb, Sb, 0, 0, one, p))
        acc += tb[None, :]
        mag += np.abs(tb)[None, :]
        forced |= spb[None, :]
    sa, Ea, Sa, za, spa = decode16(A, p.m)
    sw, Ew, Sw, zw, spw = decode16(B, p.m)
    fa, fw = ~za, ~zw
    # Inf/NaN in a formed term: a boolean product
    forced |= ((fa & spa).astype(np.int64) @ fw.T.astype(np.int64)
               + fa.astype(np.int64) @ (fw & spw).T.astype(np.int64)) > 0
    # Fast path, per block of rows: each term as one exact floating-point product
    # (an (m+1)-bit significand times a power of two, in float32 while hi < 2**23) and
    # trunc, which is the spec's truncation of the magnitude; the clamp to +-hi is a
    # clip. A row whose bias plus sum of |terms| stays within hi never saturated, so its
    # plain sum is the saturating sequence; the other rows take the sequential path.
    ft = np.float32 if p.width <= 24 else np.float64
    va = np.where(fa, np.where(sa == 1, -1.0, 1.0) * Sa * np.exp2(Ea.astype(np.float64)), 0)
    vw = np.where(fw, np.where(sw == 1, -1.0, 1.0) * Sw * np.exp2(Ew.astype(np.float64)), 0)
    # (every product of the two is exactly representable: scale it into vw, where the
    # power of two stays within float range for every E and frac the spec allows)
    vw = vw * 2.0 ** (p.frac - 2 * p.m)
    va, vw = va.astype(ft), vw.astype(ft)
    rows = max(1, (1 << 22) // max(N * K, 1))
    slow = []
    for r0 in range(0, M, rows):
        r1 = min(M, r0 + rows)
        t = np.clip(np.trunc(va[r0:r1, None, :] * vw[None, :, :]), -p.hi, p.hi)
        s_t = t.sum(axis=2, dtype=np.float64).astype(np.int64)
        m_t = np.abs(t).sum(axis=2, dtype=np.float64).astype(np.int64)
        ok = np.abs(acc[r0:r1]) + m_t <= p.hi
        acc[r0:r1] = np.where(ok, acc[r0:r1] + s_t, acc[r0:r1])
        mag[r0:r1] = np.where(ok, np.minimum(mag[r0:r1] + m_t, p.mag_max), mag[r0:r1])
        slow.extend((r0 + i, j) for i, j in zip(*np.nonzero(~ok)))
    if slow:
        _sequential(acc, mag, slow, sa, Ea, Sa, za, sw, Ew, Sw, zw, p)
    return acc, mag, forced, term_log(A)


def _sequential(acc, mag, outs, sa, Ea, Sa, za, sw, Ew, Sw, zw, p):
    """The saturating sums of outputs ``outs`` ((m, n) pairs), term by term, in place."""
    mi = np.array([o[0] for o in outs])
    ni = np.array([o[1] for o in outs])
    for k in range(sa.shape[1]):
        sel = ~za[mi, k] & ~zw[ni, k]
        if not sel.any():
            continue
        m, n = mi[sel], ni[sel]
        t = _terms(sa[m, k], Ea[m, k], Sa[m, k], sw[n, k], Ew[n, k], Sw[n, k], p)
        acc[m, n] = np.clip(acc[m, n] + t, p.lo, p.hi)
        mag[m, n] = np.minimum(mag[m, n] + np.abs(t), p.mag_max)


def rel_margin(q, mag):
    """``F(q, mag)`` of the scale-aware mode: ``mag >> a`` for q = 2a,
    ``(mag >> (a+1)) + (mag >> (a+2))`` for q = 2a + 1 (int64 arrays or ints, q >= 0)."""
    q = np.asarray(q, dtype=np.int64)
    mag = np.asarray(mag, dtype=np.int64)
    a = np.minimum(q >> 1, 61)    # mag < 2**32: a shift of 34 or more gives 0 anyway
    return np.where(q & 1, (mag >> (a + 1)) + (mag >> (a + 2)), mag >> a)


def predicted_live(acc, mag, forced, L, params):
    """The prediction from a lane's final state (True = compute the output)."""
    if params.rel is None:
        return forced | (acc > params.threshold)
    return forced | (acc + rel_margin(params.rel + L, mag) > params.threshold)


def eors_mask(A, B, bias=None, params=DEFAULT_EORS):
    """Predicted live outputs (True = compute it), shape (M, N); see the module doc."""
    return predicted_live(*eors_state(A, B, bias, params), params)


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


# ----------------------------------------------------------------- self-calibration

#: The shift-add rounds ``(a, b)`` of :func:`mix16`, then its final right shift.
MIX_ROUNDS = ((9, 7), (3, 2), (4, 6))
MIX_FINAL = 8
#: Width of a sampling key (a task record's and a descriptor's ``eors_key``).
KEY_BITS = 16
_M16 = 0xFFFF


def mix16(x):
    """The sampler's stateless 16-bit mixing function (``docs/eors.md``, "Sampling"):
    three rounds of ``x ^= x >> a; x = x + (x << b)`` (mod 2**16) with ``(a, b)`` in
    :data:`MIX_ROUNDS`, then ``x ^= x >> 8``. A bijection of 0..65535 built from XORs,
    shifts and three 16-bit adders (a multiplication by ``1 + 2**b`` is a shift and an
    add): no multiplier. ``x`` an int or an integer array (its low 16 bits are used)."""
    x = np.asarray(x, dtype=np.int64) & _M16
    for a, b in MIX_ROUNDS:
        x = x ^ (x >> a)
        x = (x + (x << b)) & _M16
    x = x ^ (x >> MIX_FINAL)
    return int(x) if x.ndim == 0 else x


def row_key(key, m):
    """The sampling key of row ``m`` of a task whose ``eors_key`` is ``key``:
    ``(key + m) mod 2**16``."""
    return (np.asarray(key, dtype=np.int64) + m) & _M16


def sample_lane(key, m, word, rate_log2):
    """The sampled lane of mask word ``word`` (outputs ``word*P .. word*P + P-1``) of
    row ``m`` of a task with key ``key``: ``mix16(mix16(row_key(key, m)) ^ word)``, low
    ``rate_log2`` bits. The word samples that lane when it is below P, none otherwise.
    A pure function of (key, m, word): no state from task to task or row to row."""
    h = mix16(mix16(row_key(key, m)) ^ (np.asarray(word, dtype=np.int64) & _M16))
    return h & ((1 << rate_log2) - 1)


class EorsSampler:
    """Which predicted-zero outputs are computed anyway, to measure false zeros
    (``docs/eors.md``, "Self-calibration").

    Output ``(m, n)`` of a task with sampling key ``key`` is sampled when
    ``sample_lane(key, m, n // lanes, rate_log2) == n % lanes``: one output of each
    mask word of ``lanes`` outputs with probability ``lanes / 2**rate_log2`` (so every
    output with probability ``2**-rate_log2``), a pure function of the key, the row
    and the word. Splitting a task's rows between cores keeps its sample set when
    each part's key is ``key + m0`` (its first row): the processor derives it so.

    Parameters
    ----------
    lanes : int
        The speculator's P (a power of two in 1..64).
    rate_log2 : int
        One output in ``2**rate_log2`` is sampled; 2**rate_log2 >= lanes, <= 2**16.
    """

    def __init__(self, lanes=16, rate_log2=6):
        _check_int("sampler lanes", lanes, 1, 64)
        _check_int("sampler rate_log2", rate_log2, 0, 16)
        if lanes & (lanes - 1) or (1 << rate_log2) < lanes:
            raise ValueError(f"EORS sampler needs lanes a power of two <= 2**rate_log2, got "
                             f"lanes={lanes!r}, rate_log2={rate_log2!r}")
        self.lanes, self.rate_log2 = lanes, rate_log2

    def sample(self, M, N, key=0):
        """bool (M, N): the outputs of a task of M rows of N outputs with sampling key
        ``key`` (0..65535) to compute exactly."""
        _check_int("sampler key", key, 0, _M16)
        P = self.lanes
        G = -(-N // P)
        lane = sample_lane(key, np.arange(M)[:, None], np.arange(G)[None, :], self.rate_log2)
        out = lane[:, :, None] == np.arange(P)[None, None, :]
        return out.reshape(M, G * P)[:, :N]


def calibration_counts(pred_live, sampled, true_live):
    """The per-task counters a host reads for calibration (dict of ints):
    ``sampled`` (predicted zero and sampled: computed anyway, result discarded),
    ``false_zero`` (of those, the exact output is nonzero), ``live`` (predicted live
    and nonzero) and ``false_live`` (predicted live, exact output zero)."""
    pred = np.asarray(pred_live, dtype=bool)
    true = np.asarray(true_live, dtype=bool)
    s = np.asarray(sampled, dtype=bool) & ~pred
    return {"sampled": int(s.sum()), "false_zero": int((s & true).sum()),
            "live": int((pred & true).sum()), "false_live": int((pred & ~true).sum())}


#: The calibrator's recall rules of the study's one setting (``docs/eors.md``, "The one
#: setting"; with start level 9 and one output in 128 sampled, ``rate_log2`` = 7).
ONE_SETTING = {"recall": 0.965, "recall_hi": 0.99, "fz_conf": 1.0, "recall_conf": 2.0}
#: The one setting's cores (``docs/eors.md``, "The one setting"): scale-aware EORS
#: starting at level 9, one predicted-zero output in 2**7 sampled.
ONE_SETTING_EORS = EorsParams(threshold=0, rel=9)
ONE_SETTING_RATE_LOG2 = 7


class EorsCalibrator:
    """Host policy that holds each layer's false-zero rate near a target by moving its
    scale-aware level ``q`` (``docs/eors.md``, "Self-calibration"); deterministic, a
    function of the counters only.

    Per layer it adds up the counters of its tasks; between steps (:meth:`end_step`),
    with ``R = 2**rate_log2``, ``k = false_zero`` (false-zero samples in the window),
    ``fz = R * k`` (estimated false zeros) and ``n = live + fz`` (estimated live outputs):

    * ``R * (k - fz_conf * sqrt(k)) > hi * n`` and ``k >= 2`` (the false-zero rate's
      lower bound, ``fz_conf`` Poisson standard deviations below the count, is above
      ``hi``): ``q -= 1`` (safer), window cleared, and the layer's patience doubles
      (at most ``8``);
    * else if ``lo * n / R >= evidence * patience`` (enough outputs that a rate of ``lo``
      would have shown that many samples) and ``fz <= lo * n``: ``q += 1``, window cleared;
    * with ``recall`` set (a recall target), also, once the recall window (the counters
      since the level last changed, restarted after ``256 * evidence`` samples without a
      decision) holds at least ``16 * evidence`` samples: with ``s0 = sampled -
      false_zero`` (sampled true zeros), ``d = recall_conf * sqrt(s0)`` and the
      estimated recall of true zeros ``z / (z + false_live)`` computed with
      ``z = R * (s0 + d)`` (its upper bound) or ``z = R * (s0 - d)`` (its lower bound):
      upper bound below ``recall`` and ``R * (k + 1) * patience <= hi * n`` (even one
      more false-zero sample would leave the rate below ``hi``): ``q += 1``; else lower
      bound above ``recall_hi`` (when set): ``q -= 1`` (a recall to spare is a margin
      that only adds false zeros); a change clears both windows. ``false_live`` is
      counted on every computed output, so only the true zeros are a sample; the
      bounds make a decision wait until the window's samples clear the band, so small
      layers (few samples a step) do not walk on the draw. ``recall`` = None (the
      default) leaves these rules out; ``fz_conf`` = ``recall_conf`` = 0 (the
      defaults) are the point rules.
    * ``q`` stays in ``[q_min, q_max]``.

    :attr:`history` lists the levels after each step; :attr:`events` each level
    change as ``(step, layer, old q, new q, window counters, recall window counters)``.

    Parameters
    ----------
    params : EorsParams
        Scale-aware parameters (``rel`` set); the start level is ``params.rel``.
    rate_log2, lo, hi, evidence, q_min, q_max, recall, recall_hi, fz_conf, recall_conf : see above.
    """

    def __init__(self, params, rate_log2=6, lo=0.002, hi=0.006, evidence=3, q_min=0, q_max=REL_MAX,
                 recall=None, recall_hi=None, fz_conf=0.0, recall_conf=0.0):
        if not isinstance(params, EorsParams) or params.rel is None:
            raise ValueError(f"EorsCalibrator needs scale-aware EorsParams (rel set), got {params!r}")
        _check_int("calibrator rate_log2", rate_log2, 0, 16)
        _check_int("calibrator q_min", q_min, 0, REL_MAX)
        _check_int("calibrator q_max", q_max, q_min, REL_MAX)
        if not 0 < lo < hi < 1:
            raise ValueError(f"EorsCalibrator needs 0 < lo < hi < 1, got lo={lo!r}, hi={hi!r}")
        self.params, self.rate_log2, self.lo, self.hi = params, rate_log2, lo, hi
        if recall is not None and not 0 < recall < 1:
            raise ValueError(f"EorsCalibrator needs 0 < recall < 1, got recall={recall!r}")
        if recall_hi is not None and (recall is None or not recall < recall_hi < 1):
            raise ValueError(f"EorsCalibrator needs recall < recall_hi < 1, got recall={recall!r}, "
                             f"recall_hi={recall_hi!r}")
        self.evidence, self.q_min, self.q_max, self.recall = evidence, q_min, q_max, recall
        for name, c in (("fz_conf", fz_conf), ("recall_conf", recall_conf)):
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0 <= c <= 8:
                raise ValueError(f"EorsCalibrator needs 0 <= {name} <= 8, got {name}={c!r}")
        self.recall_hi, self.fz_conf, self.recall_conf = recall_hi, fz_conf, recall_conf
        self.q, self.win, self.patience, self.history = {}, {}, {}, []
        self.rwin = {}     # the recall rules' window: since their last evaluation
        self.events = []   # (step, layer, rule, old q, window counters) of every rule that fired

    def params_for(self, layer):
        """The EorsParams layer ``layer`` uses now."""
        from dataclasses import replace
        return replace(self.params, rel=self.q.setdefault(layer, self.params.rel))

    def add(self, layer, counts):
        w = self.win.setdefault(layer, {"sampled": 0, "false_zero": 0, "live": 0, "false_live": 0})
        rw = self.rwin.setdefault(layer, dict.fromkeys(w, 0))
        for k in w:
            w[k] += counts[k]
            rw[k] += counts[k]

    def end_step(self):
        """Apply the rule to every layer; returns {layer: new q}."""
        R = 1 << self.rate_log2
        for layer, w in self.win.items():
            q = self.q.setdefault(layer, self.params.rel)
            pat = self.patience.setdefault(layer, 1)
            seen = dict(w), dict(self.rwin[layer])
            fz = R * w["false_zero"]
            n = w["live"] + fz
            k = w["false_zero"]
            if R * (k - self.fz_conf * sqrt(k)) > self.hi * n and k >= 2:
                if q > self.q_min:
                    self.q[layer] = q - 1
                self.patience[layer] = min(2 * pat, 8)
                self.win[layer] = dict.fromkeys(w, 0)
            elif self.lo * n / R >= self.evidence * pat and fz <= self.lo * n:
                if q < self.q_max:
                    self.q[layer] = q + 1
                self.win[layer] = dict.fromkeys(w, 0)
            elif self.recall is not None and self.rwin[layer]["sampled"] >= 16 * self.evidence:
                rw = self.rwin[layer]
                s0, fl = rw["sampled"] - rw["false_zero"], rw["false_live"]
                # the true zeros are estimated from s0 samples (Poisson, sd sqrt(s0)),
                # false_live is exact: the recall's bounds come from the zeros' bounds
                d = self.recall_conf * sqrt(s0)
                z_hi, z_lo = R * (s0 + d), R * max(s0 - d, 0)
                if z_hi < self.recall * (z_hi + fl) and R * (k + 1) * pat <= self.hi * n:
                    if q < self.q_max:
                        self.q[layer] = q + 1
                    self.win[layer] = dict.fromkeys(w, 0)
                    self.rwin[layer] = dict.fromkeys(w, 0)
                elif self.recall_hi is not None and z_lo > self.recall_hi * (z_lo + fl):
                    if q > self.q_min:
                        self.q[layer] = q - 1
                    self.win[layer] = dict.fromkeys(w, 0)
                    self.rwin[layer] = dict.fromkeys(w, 0)
                elif rw["sampled"] >= 256 * self.evidence:
                    # no decision in a long window: a fresh one follows training
                    self.rwin[layer] = dict.fromkeys(w, 0)
            if self.q[layer] != q:
                self.events.append((len(self.history), layer, q, self.q[layer], *seen))
                self.rwin[layer] = dict.fromkeys(w, 0)
        self.history.append(dict(self.q))
        return dict(self.q)
