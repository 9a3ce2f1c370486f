"""Independent checks of the golden model (rtl/ganpu/model).

References here are written separately from the model: float64 nested loops for the
layers, finite differences for gradients, Python ``Fraction`` arithmetic for the
accumulation order, Python integers for EORS.

Tolerance for a model output against the exact (float64) value ``v`` of a sum of ``K``
terms with ``S = sum |term| + |init|`` (derived, not tuned):

* the binary32 sequential sum: each of at most K roundings errs by at most
  ``2**-24`` times a partial sum, and every partial sum is at most S: ``K * 2**-24 * S``;
* the final binary16 RNE: half an ulp, at most ``2**-11 * |value|`` for normals and
  ``2**-25`` in the subnormal range.

So ``tol = K*2**-24*S + 2**-11*(|v| + K*2**-24*S) + 2**-25``. Inputs are binary16 values
fed exactly to the float64 reference, so no input rounding enters.
"""

from fractions import Fraction
import math

import numpy as np
import pytest

from ganpu import numerics as nu
from ganpu.model import (gemm, epilogue, FC, Conv2d, ConvTranspose2d, EorsParams,
                         eors_acc, eors_mask, SGD)
from ganpu.model.work import count

F = lambda bits: nu.f16_value(bits).astype(np.float64)


def tol(v, S, K):
    acc_err = K * 2.0 ** -24 * S
    return acc_err + 2.0 ** -11 * (np.abs(v) + acc_err) + 2.0 ** -25


def rnd16(rng, shape, scale=1.0, zeros=0.3):
    x = rng.standard_normal(shape) * scale
    x[rng.random(shape) < zeros] = 0.0
    return nu.f16_bits(x)


# ---------------------------------------------------------------- float64 references

def conv_ref(x, w, b, s, p):
    B, C, H, W = x.shape
    Co, _, k, _ = w.shape
    Ho, Wo = (H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1
    y = np.zeros((B, Co, Ho, Wo))
    for n in range(B):
        for co in range(Co):
            for oy in range(Ho):
                for ox in range(Wo):
                    acc = b[co]
                    for ci in range(C):
                        for i in range(k):
                            for j in range(k):
                                iy, ix = oy * s + i - p, ox * s + j - p
                                if 0 <= iy < H and 0 <= ix < W:
                                    acc += x[n, ci, iy, ix] * w[co, ci, i, j]
                    y[n, co, oy, ox] = acc
    return y


def tconv_ref(x, w, b, s, p, op):
    B, C, H, W = x.shape
    _, Co, k, _ = w.shape
    Ho, Wo = (H - 1) * s - 2 * p + k + op, (W - 1) * s - 2 * p + k + op
    y = np.zeros((B, Co, Ho, Wo)) + b[None, :, None, None]
    for n in range(B):
        for ci in range(C):
            for iy in range(H):
                for ix in range(W):
                    for co in range(Co):
                        for i in range(k):
                            for j in range(k):
                                oy, ox = iy * s + i - p, ix * s + j - p
                                if 0 <= oy < Ho and 0 <= ox < Wo:
                                    y[n, co, oy, ox] += x[n, ci, iy, ix] * w[ci, co, i, j]
    return y


def fc_ref(x, w, b):
    return np.array([[b[o] + sum(x[n, i] * w[o, i] for i in range(x.shape[1]))
                      for o in range(w.shape[0])] for n in range(x.shape[0])])


def fd_grad(f, arr, h=0.5):
    """Central differences of a scalar f w.r.t. every entry of arr (float64). The losses
    used here are linear in each argument, so the difference quotient is exact up to
    float64 rounding for any h."""
    g = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + h
        fp = f()
        arr[idx] = old - h
        fm = f()
        arr[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


CASES = [
    ("fc", lambda rng: FC("l", 7, 5, act="relu", rng=rng), (4, 7)),
    ("conv", lambda rng: Conv2d("l", 2, 3, 3, stride=2, padding=1, act="relu", rng=rng), (2, 2, 6, 6)),
    ("tconv", lambda rng: ConvTranspose2d("l", 3, 2, 4, stride=2, padding=1, act="relu", rng=rng),
     (2, 3, 3, 3)),
    ("tconv_op", lambda rng: ConvTranspose2d("l", 2, 2, 3, stride=2, padding=1, output_padding=1,
                                             act="relu", rng=rng), (2, 2, 3, 3)),
]


def _ref_fn(kind, layer):
    if kind == "fc":
        return fc_ref
    if kind == "conv":
        return lambda x, w, b: conv_ref(x, w, b, layer.s, layer.p)
    return lambda x, w, b: tconv_ref(x, w, b, layer.s, layer.p, layer.op)


@pytest.mark.parametrize("kind,make,xshape", CASES, ids=[c[0] for c in CASES])
def test_layer_fp_bp_wg_vs_float64(kind, make, xshape):
    rng = np.random.default_rng(7)
    layer = make(rng)
    layer.b32 = (rng.standard_normal(layer.b32.shape) * 0.3).astype(np.float32)
    layer.sync()
    x16 = rnd16(rng, xshape)
    ref = _ref_fn(kind, layer)
    xf, wf, bf = F(x16), F(layer.w16), F(layer.b16)
    K = wf[0].size  # terms per FP output (upper bound)

    # FP: pre-activation reference, ReLU applied to both sides (1-Lipschitz)
    y16 = layer.fp(x16)
    v = ref(xf, wf, bf)
    S = ref(np.abs(xf), np.abs(wf), np.abs(bf))
    y = F(y16)
    assert y.shape == v.shape
    assert np.all(np.abs(y - np.maximum(v, 0)) <= tol(v, S, K + 1))
    assert np.array_equal(layer.mask, F(y16) > 0)

    # BP with identity input act: dx = d/dx sum(dz * ref(x)); magnitudes via |.|
    dz16 = rnd16(rng, v.shape)
    dz = F(dz16)
    xv = xf.copy()
    gx = fd_grad(lambda: np.sum(dz * ref(xv, wf, bf)), xv)
    xa = np.abs(xf).copy()
    Sx = fd_grad(lambda: np.sum(np.abs(dz) * ref(xa, np.abs(wf), 0 * bf)), xa)
    dx = F(layer.bp(dz16))
    assert np.all(np.abs(dx - gx) <= tol(gx, Sx, dz.size))

    # BP through a ReLU input: the stored mask gates dx (not computed -> +0)
    in_mask = rng.random(xshape) < 0.5
    dxm16 = layer.bp(dz16, "relu", in_mask)
    assert np.all(dxm16[~in_mask] == 0)
    assert np.all(np.abs(F(dxm16) - gx * in_mask) <= tol(gx, Sx, dz.size))

    # WG: dW and db by finite differences
    wv = wf.copy()
    gw = fd_grad(lambda: np.sum(dz * ref(xf, wv, bf)), wv)
    wa = np.abs(wf).copy()
    Sw = fd_grad(lambda: np.sum(np.abs(dz) * ref(np.abs(xf), wa, 0 * bf)), wa)
    bv = bf.copy()
    gb = fd_grad(lambda: np.sum(dz * ref(xf, wf, bv)), bv)
    dW16, db16 = layer.wg(dz16)
    assert np.all(np.abs(F(dW16) - gw) <= tol(gw, Sw, dz.size))
    Sb = np.abs(dz).sum(axis=tuple(i for i in range(dz.ndim) if i != 1))
    assert np.all(np.abs(F(db16) - gb) <= tol(gb, Sb, dz.size))


# ------------------------------------------- scalar re-implementation of the order

def round_bin(q, mbits, emin, emax):
    """Exact RNE of a nonzero Fraction to a binary format; returns Fraction or +-inf."""
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    e = max(e, emin)
    quantum = Fraction(2) ** (e - mbits)
    n = a / quantum
    fl = math.floor(n)
    rem = n - fl
    if rem > Fraction(1, 2) or (rem == Fraction(1, 2) and fl % 2 == 1):
        fl += 1
    r = fl * quantum
    if r >= Fraction(2) ** (emax + 1):
        return math.copysign(math.inf, q)
    return r if q > 0 else -r


def dec16(b):
    s, e, f = b >> 15, (b >> 10) & 31, b & 1023
    if e == 31:
        return "nan" if f else ("inf", s)
    mag = Fraction(f, 1024) * Fraction(2) ** -14 if e == 0 else Fraction(1024 + f, 1024) * Fraction(2) ** (e - 15)
    return ("fin", -mag if s else mag, s)


def dec32(b):
    s, e, f = b >> 31, (b >> 23) & 255, b & ((1 << 23) - 1)
    if e == 255:
        return "nan" if f else ("inf", s)
    mag = Fraction(f, 1 << 23) * Fraction(2) ** -126 if e == 0 else Fraction((1 << 23) + f, 1 << 23) * Fraction(2) ** (e - 127)
    return ("fin", -mag if s else mag, s)


def s_mul(a, b):
    if a == "nan" or b == "nan":
        return "nan"
    sign = a[-1] ^ b[-1]
    if a[0] == "inf" or b[0] == "inf":
        return ("inf", sign)
    return ("fin", a[1] * b[1], sign)  # exact in binary32 (checked by the encoder)


def s_add(a, b, mbits, emin, emax):
    if a == "nan" or b == "nan":
        return "nan"
    if a[0] == "inf" and b[0] == "inf":
        return a if a[1] == b[1] else "nan"
    if a[0] == "inf" or b[0] == "inf":
        return a if a[0] == "inf" else b
    q = a[1] + b[1]
    if q == 0:
        return ("fin", Fraction(0), a[2] & b[2])  # RNE: x + (-x) = +0; -0 + -0 = -0
    r = round_bin(q, mbits, emin, emax)
    if isinstance(r, float):
        return ("inf", int(r < 0))
    return ("fin", r, int(r < 0))


def enc(v, np_float, np_uint, nan_bits):
    if v == "nan":
        return nan_bits
    if v[0] == "inf":
        return int(np.array(-np.inf if v[1] else np.inf, dtype=np_float).view(np_uint))
    f = np.array(math.copysign(float(v[1]), -1.0 if v[2] else 1.0), dtype=np_float)
    assert Fraction(float(f)) == abs(v[1]) * (1 if float(f) >= 0 else -1) or v[1] == 0
    return int(f.view(np_uint))


def scalar_dot(a_bits, b_bits, init_bits):
    acc = dec32(init_bits)
    for a, b in zip(a_bits, b_bits):
        if (a & 0x7FFF) == 0 or (b & 0x7FFF) == 0:
            continue
        acc = s_add(acc, s_mul(dec16(a), dec16(b)), 23, -126, 127)
    return enc(acc, np.float32, np.uint32, 0x7FC00000)


def scalar_narrow(bits32):
    v = dec32(bits32)
    if v != "nan" and v[0] == "fin" and v[1] != 0:
        r = round_bin(v[1], 10, -14, 15)
        v = ("inf", int(r < 0)) if isinstance(r, float) else ("fin", r, v[2])
    return enc(v, np.float16, np.uint16, 0x7E00)


def special_rows(rng):
    """A (M, K), B (N, K), init (N,) with zeros of both signs, subnormals, Inf, NaN."""
    K = 10
    A = rnd16(rng, (8, K))
    B = rnd16(rng, (4, K))
    A[0, :] = [0x0001, 0x8000, 0x03FF, 0x8001, 0, 0x0200, 0x8200, 1, 0x8003, 0x0010]  # subnormals, zeros
    B[0, :] = [0x0400, 0x7C00, 0x0001, 0x3C00, 0x7E00, 0x8400, 0xBC00, 0x0001, 0x0001, 0x0400]
    A[1, :] = 0x8000                                          # empty sum keeps init
    A[2, 3] = 0x7C00                                          # +Inf x finite
    A[3, 3], A[3, 5] = 0x7C00, 0xFC00                         # Inf - Inf -> NaN
    A[4, :] = 0
    A[4, 1] = 0x7C00                                          # Inf x 0 in some B rows: skipped
    A[5, 2] = 0x7E01                                          # NaN with a payload
    A[6, :] = [0x3C00, 0xBC00] * 5                            # exact cancellation
    B[1, :] = 0x3C00
    B[2, 1] = 0
    A[7, :] = 0x7BFF                                          # large: fp16 overflow at narrow
    B[3, :] = 0x7BFF
    init = nu.f32_bits(rng.standard_normal(4))
    init[1] = 0x80000000
    init[2] = 0x00000000
    return A, B, init


def test_accumulation_order_scalar_bit_exact():
    rng = np.random.default_rng(3)
    A, B, init = special_rows(rng)
    acc = gemm(A, B, init)
    z, _ = epilogue(acc, "identity", phase="fp")
    for m in range(A.shape[0]):
        for n in range(B.shape[0]):
            want = scalar_dot([int(v) for v in A[m]], [int(v) for v in B[n]], int(init[n]))
            assert int(acc[m, n]) == want, (m, n, hex(int(acc[m, n])), hex(want))
            assert int(z[m, n]) == scalar_narrow(want), (m, n)
    # the fast gemm and numerics.dot agree too, with and without init
    assert np.array_equal(acc, nu.dot(A[:, None, :], B[None], init[None]))
    assert np.array_equal(gemm(A, B), nu.dot(A[:, None, :], B[None]))
    assert int(gemm(A[1:2], B[1:2])[0, 0]) == 0x80000000  # -0 init survives an empty sum


def scalar_epilogue(z, act, phase, slope, mask):
    nan = (z & 0x7FFF) > 0x7C00
    pos = nan or ((z >> 15) == 0 and (z & 0x7FFF) != 0)
    zl = None
    if act == "leaky":
        p = s_mul(dec16(z), dec16(slope)) if (z & 0x7FFF) and (slope & 0x7FFF) else ("fin", Fraction(0), (z ^ slope) >> 15)
        zl = scalar_narrow(enc(p, np.float32, np.uint32, 0x7FC00000))
    computed = True
    if phase == "fp" and act == "relu":
        computed = mask
        y = z if pos else 0
    elif phase == "fp" and act == "leaky":
        y = z if pos else zl
    elif phase == "bp" and act == "relu":
        computed = mask
        y = z
    elif phase == "bp" and act == "leaky":
        y = z if mask else zl
    else:
        y = z
    return (y if computed else 0), (pos and computed)


@pytest.mark.parametrize("phase,act", [("fp", "relu"), ("fp", "leaky"), ("fp", "identity"),
                                       ("bp", "relu"), ("bp", "leaky"), ("wg", "identity")])
def test_epilogue_rules(phase, act):
    rng = np.random.default_rng(5)
    A, B, init = special_rows(rng)
    acc = gemm(A, B, init).ravel()
    extra = np.array([0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x33000001, 0xB3800000,
                      0x477FF000, 0x47800000], dtype=np.uint32)
    acc = np.concatenate([acc, extra])
    slope = int(nu.f16_bits(0.2)[()]) if act == "leaky" else None
    use_mask = (phase == "bp" and act != "identity") or (phase == "fp" and act == "relu")
    mask = (rng.random(acc.shape) < 0.6) if use_mask else None
    y, mo = epilogue(acc, act, slope, mask, phase=phase)
    for i, a in enumerate(acc):
        z = scalar_narrow(int(a))
        wy, wm = scalar_epilogue(z, act, phase, slope, True if mask is None else bool(mask[i]))
        assert (int(y[i]), bool(mo[i])) == (wy, wm), (i, hex(int(a)))


def test_epilogue_and_layer_validation_messages():
    with pytest.raises(ValueError, match="'sigmoid'"):
        epilogue(np.zeros(2, np.uint32), "sigmoid", phase="fp")
    with pytest.raises(ValueError, match="mask=None"):
        epilogue(np.zeros(2, np.uint32), "relu", phase="bp")
    with pytest.raises(ValueError, match="got 5"):
        Conv2d("c", 1, 1, 3, padding=5)
    with pytest.raises(TypeError, match="'3'"):
        FC("f", "3", 4)
    with pytest.raises(ValueError, match="0.0"):
        SGD(lr=0.0)


# ------------------------------------------------------------------------- EORS

def eors_scalar(a_row, w_row, bias, width, frac, m, threshold, use_bias):
    """Python-integer re-implementation of docs/eors.md for one output."""
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1

    def dec(b):
        e, f = (b >> 10) & 31, b & 1023
        S = ((1 if e else 0) << m) | (f >> (10 - m)) if m else 1  # m=0: subnormal = 2^-14
        return b >> 15, (e - 15 if e else -14), S, e == 31

    def term(x, w):
        sx, ex, Sx, spx = dec(x)
        sw, ew, Sw, spw = dec(w)
        mag, sh = Sx * Sw, ex + ew + frac - 2 * m
        t = mag << sh if sh >= 0 else mag >> -sh
        t = min(t, hi)
        return (-t if sx ^ sw else t), (spx or spw)

    acc, forced = 0, False
    if use_bias and bias & 0x7FFF:
        acc, forced = term(bias, 0x3C00)
    for x, w in zip(a_row, w_row):
        if x & 0x7FFF and w & 0x7FFF:
            t, sp = term(x, w)
            acc = max(lo, min(hi, acc + t))
            forced |= sp
    return acc, (forced or acc > threshold)


@pytest.mark.parametrize("saturate", [True, False], ids=["sat", "nosat"])
@pytest.mark.parametrize("width,frac,m,threshold,use_bias",
                         [(20, 12, 3, -128, True), (20, 12, 0, 0, True), (12, 8, 2, -3, False),
                          (8, 6, 5, 0, True), (32, 20, 10, 5, True)])
def test_eors_matches_integer_spec(width, frac, m, threshold, use_bias, saturate):
    rng = np.random.default_rng(width * 31 + m)
    A = rnd16(rng, (6, 40), scale=2.0)
    B = rnd16(rng, (5, 40), scale=0.5)
    bias = rnd16(rng, (5,), scale=0.3)
    A[0, :4] = [0x0001, 0x83FF, 0x7BFF, 0xFBFF]   # subnormals and extremes
    B[:, 0:2] = 0x7000                             # 2^13: a subnormal's term is visible
    A[1, 5] = 0x7C00                               # Inf operand: forced live
    A[2, 6] = 0x7E00
    B[3, 6] = 0                                    # ...but not where its partner is zero
    if saturate:  # a saturating row (exercises the sequential path)
        A[4, :] = 0x7BFF
        B[4, :] = 0x7BFF
    else:         # small values only, so no partial sum can leave the range
        A[0, 2:4] = 0
        A[:, 4:] = 0
    bias[2] = 0x7C00 if use_bias else bias[2]
    p = EorsParams(width=width, frac=frac, m=m, threshold=threshold, use_bias=use_bias)
    acc, forced = eors_acc(A, B, bias, p)
    live = eors_mask(A, B, bias, p)
    for i in range(A.shape[0]):
        for j in range(B.shape[0]):
            wa, wl = eors_scalar([int(v) for v in A[i]], [int(v) for v in B[j]], int(bias[j]),
                                 width, frac, m, threshold, use_bias)
            assert (int(acc[i, j]), bool(live[i, j])) == (wa, wl), (i, j)


@pytest.mark.parametrize("kw,exc,text", [
    ({"width": 40}, ValueError, "40"), ({"width": 1.5}, TypeError, "1.5"),
    ({"frac": 20}, ValueError, "20"), ({"m": 11}, ValueError, "11"), ({"m": -1}, ValueError, "-1"),
    ({"threshold": 1 << 20}, ValueError, str(1 << 20)), ({"use_bias": 1}, TypeError, "use_bias"),
    ({"width": True}, TypeError, "True")])
def test_eors_param_validation(kw, exc, text):
    with pytest.raises(exc, match=text):
        EorsParams(**kw)


def test_eors_mask_skips_in_layer():
    """FP with EORS: predicted-dead outputs are +0 and mask 0, the rest match exact FP."""
    rng = np.random.default_rng(11)
    layer = FC("l", 32, 16, rng=rng)
    x = rnd16(rng, (8, 32))
    exact = layer.fp(x)
    pred = eors_mask(x, layer.w16, layer.b16)
    y = layer.fp(x, eors=EorsParams())
    assert np.array_equal(y[pred], exact[pred])
    assert np.all(y[~pred] == 0) and not layer.mask[~pred].any()


# ------------------------------------------------------------------ work, SGD

def test_work_count_brute_force():
    rng = np.random.default_rng(2)
    A, B = rnd16(rng, (5, 7), zeros=0.5), rnd16(rng, (4, 7), zeros=0.3)
    live = rng.random((5, 4)) < 0.5
    c = count(A, B, live, structural=3)
    a, b = A & 0x7FFF, B & 0x7FFF
    terms = [(m, n, k) for m in range(5) for n in range(4) for k in range(7)]
    assert c["dense"] == len(terms)
    assert c["input_skip"] == sum(1 for m, n, k in terms if a[m, k])
    assert c["dual_skip"] == sum(1 for m, n, k in terms if a[m, k] and live[m, n])
    assert c["formed"] == sum(1 for m, n, k in terms if a[m, k] and b[n, k])
    assert c["structural"] == 3 * 4


def test_record_work_is_count_with_the_core_mask():
    """The host's per-record accounting is :func:`count` with the outputs the core
    computes as live (the mask in FP and BP with ReLU only)."""
    from ganpu.host.tasks import record_work, phase_act
    rng = np.random.default_rng(3)
    A, B = rnd16(rng, (5, 7), zeros=0.5), rnd16(rng, (4, 7), zeros=0.3)
    mask = rng.random((5, 4)) < 0.5
    for phase, act, live in (("fp", "relu", mask), ("bp", "relu", mask), ("fp", "leaky", None),
                             ("bp", "leaky", None), ("wg", "identity", None)):
        rec = {"A": A, "B": B, "epi_phase": phase, "act": act, "mask_in": mask}
        assert record_work(rec) == count(A, B, live), (phase, act)
    with pytest.raises(ValueError, match=r"^Unknown phase 'xp'; valid: fp, bp, wg$"):
        phase_act({"epi_phase": "xp", "act": "relu"})
    with pytest.raises(ValueError, match=r"^Unknown activation 'gelu'; valid: identity, relu, leaky$"):
        phase_act({"epi_phase": "fp", "act": "gelu"})


def test_prediction_stats():
    from ganpu.model.eors import prediction_stats
    true_live = np.array([[1, 1, 0, 0, 0], [1, 0, 0, 1, 1]], dtype=bool)
    pred_live = np.array([[1, 0, 0, 1, 0], [1, 1, 0, 1, 1]], dtype=bool)
    # true zeros at 5 places, 3 of them predicted zero; 1 of 5 live outputs predicted zero
    assert prediction_stats(true_live, pred_live) == {
        "recall": 3 / 5, "false_zero": 1 / 5, "skipped": 4 / 10, "true_zero": 5 / 10}
    assert prediction_stats(np.ones(3, bool), np.ones(3, bool))["recall"] == 0.0


def test_sgd_binary32_rounding():
    rng = np.random.default_rng(4)
    layer = FC("l", 3, 2, rng=rng)
    opt = SGD(lr=0.1, momentum=0.9, grad_scale=8.0)
    w0 = layer.w32.copy()
    g = [rnd16(rng, (2, 3)), rnd16(rng, (2,))]
    for _ in range(2):
        opt.step([layer], {"l": g})
    # independent: Fraction arithmetic rounded to binary32 after each operation
    r32 = lambda q: round_bin(q, 23, -126, 127) if q != 0 else Fraction(0)
    lr, mu = Fraction(float(np.float32(0.1))), Fraction(float(np.float32(0.9)))
    for idx in np.ndindex(2, 3):
        w, v = Fraction(float(w0[idx])), None
        gq = Fraction(float(F(g[0])[idx])) / 8
        for _ in range(2):
            v = gq if v is None else r32(r32(mu * v) + gq)
            w = r32(w - r32(lr * v))
        assert Fraction(float(layer.w32[idx])) == w
    assert np.array_equal(layer.w16, nu.f16_bits(layer.w32))
