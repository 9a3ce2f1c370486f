"""The EORS model's scale-aware mode and self-calibration (docs/eors.md) against a
Python-integer re-implementation of the spec: the magnitude sum, the margin F(q, mag),
the prediction, the sampling LFSR and its choice of outputs, the counters, and the
calibration policy's rules."""

from dataclasses import replace

import numpy as np
import pytest

from ganpu.model.eors import (EorsParams, DEFAULT_EORS, eors_acc, eors_state, eors_mask,
                              rel_margin, EorsSampler, EorsCalibrator, calibration_counts,
                              mix16, sample_lane, REL_MAX)


def _rnd16(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float16).view(np.uint16)


def scalar(a_row, w_row, bias, p):
    """docs/eors.md for one output, Python ints: (acc, mag, forced, live)."""
    n = min(sum(1 for x in a_row if x & 0x7FFF), 65535)
    L = n.bit_length() - 1 if n else 0
    lo, hi, mmax = -(1 << (p.width - 1)), (1 << (p.width - 1)) - 1, (1 << p.width) - 1

    def dec(b):
        e, f = (b >> 10) & 31, b & 1023
        S = ((1 if e else 0) << p.m) | (f >> (10 - p.m)) if p.m else 1
        return b >> 15, (e - 15 if e else -14), S, e == 31

    def term(x, w):
        sx, ex, Sx, spx = dec(x)
        sw, ew, Sw, spw = dec(w)
        mag, sh = Sx * Sw, ex + ew + p.frac - 2 * p.m
        t = min(mag << sh if sh >= 0 else mag >> -sh, hi)
        return (-t if sx ^ sw else t), t, (spx or spw)

    acc = mag = 0
    forced = False
    if p.use_bias and bias & 0x7FFF:
        acc, mag, forced = term(bias, 0x3C00)
    for x, w in zip(a_row, w_row):
        if x & 0x7FFF and w & 0x7FFF:
            t, a, sp = term(x, w)
            acc = max(lo, min(hi, acc + t))
            mag = min(mmax, mag + a)
            forced |= sp
    if p.rel is None:
        margin = 0
    else:
        q = p.rel + L
        a = q // 2
        margin = mag >> a if q % 2 == 0 else (mag >> (a + 1)) + (mag >> (a + 2))
    return acc, mag, forced, forced or acc + margin > p.threshold


@pytest.mark.parametrize("params", [
    EorsParams(threshold=0, rel=13), EorsParams(threshold=-128, rel=0),
    EorsParams(m=0, threshold=0, rel=7), EorsParams(width=8, frac=4, m=2, threshold=3, rel=31),
    EorsParams(width=12, frac=8, m=10, threshold=-3, rel=2, use_bias=False),
    EorsParams(width=32, frac=20, m=10, threshold=0, rel=20), DEFAULT_EORS], ids=repr)
def test_scale_aware_matches_integer_spec(params):
    rng = np.random.default_rng(params.width * 7 + (params.rel or 0))
    A = _rnd16(rng, (7, 40), 2.0)
    B = _rnd16(rng, (5, 40), 0.5)
    bias = _rnd16(rng, (5,), 0.3)
    A[0, :4] = [0x0001, 0x83FF, 0x7BFF, 0xFBFF]    # subnormals and extremes
    A[1, 5] = 0x7C00                                # Inf: forced live
    A[2, :] = 0x7BFF                                # saturates acc (and, narrow, mag)
    B[3, :] = 0x7BFF
    A[4, 10:] = 0
    A[5] = np.abs(A[5].view(np.float16)).astype(np.float16).view(np.uint16)
    acc, mag, forced, _ = eors_state(A, B, bias, params)
    live = eors_mask(A, B, bias, params)
    acc2, forced2 = eors_acc(A, B, bias, params)
    assert np.array_equal(acc, acc2) and np.array_equal(forced, forced2)
    for i in range(A.shape[0]):
        for j in range(B.shape[0]):
            want = scalar([int(v) for v in A[i]], [int(v) for v in B[j]], int(bias[j]), params)
            assert (int(acc[i, j]), int(mag[i, j]), bool(forced[i, j]), bool(live[i, j])) == want, (i, j)


def test_fast_path_equals_sequential_on_real_sizes():
    """Large blocks (several row chunks) with a few saturating rows mixed in."""
    rng = np.random.default_rng(4)
    A = np.abs(_rnd16(rng, (300, 130), 0.7).view(np.float16)).view(np.uint16)
    A[rng.random(A.shape) < 0.5] = 0
    B = _rnd16(rng, (150, 130), 0.2)
    A[7, :] = 0x7000
    p = EorsParams(threshold=0, rel=12)
    acc, mag, _, _ = eors_state(A, B, None, p)
    for i in (0, 7, 150, 299):
        for j in (0, 77, 149):
            want = scalar([int(v) for v in A[i]], [int(v) for v in B[j]], 0, p)
            assert (int(acc[i, j]), int(mag[i, j])) == want[:2]


def test_rel_margin_sequence():
    """F is monotone in q: 1, 3/4, 1/2, 3/8, ... of mag."""
    mag = np.int64(1 << 20)
    f = [int(rel_margin(q, mag)) for q in range(REL_MAX + 1)]
    assert f[:6] == [1 << 20, 3 << 18, 1 << 19, 3 << 17, 1 << 18, 3 << 16]
    assert all(a >= b for a, b in zip(f, f[1:]))


def test_mix_and_sampler_to_the_bit():
    """mix16 is the documented rounds (a bijection); the sampler's choice is the
    documented rule, word by word, a function of (key, row, word) only."""
    def mix(x):
        for a, b in ((9, 7), (3, 2), (4, 6)):
            x ^= x >> a
            x = (x + (x << b)) & 0xFFFF
        return x ^ (x >> 8)
    xs = np.arange(1 << 16)
    assert np.array_equal(mix16(xs), [mix(int(x)) for x in xs])
    assert len(np.unique(mix16(xs))) == 1 << 16
    P, r, key = 4, 6, 0xFFFD
    M, N = 13, 10
    got = EorsSampler(P, r).sample(M, N, key)
    want = np.zeros((M, 3 * P), dtype=bool)
    for m in range(M):
        for g in range(3):
            lane = mix(mix((key + m) & 0xFFFF) ^ g) & ((1 << r) - 1)
            assert lane == sample_lane(key, m, g, r)
            if lane < P:
                want[m, g * P + lane] = True
    assert np.array_equal(got, want[:, :N])
    # a row's sample set moves with its key: rows m0.. of a task are a task of key + m0
    assert np.array_equal(EorsSampler(P, r).sample(M - 5, N, (key + 5) & 0xFFFF), got[5:])
    # one in 2**rate_log2 over a long run
    many = EorsSampler(16, 6).sample(4000, 64, 1234)
    assert abs(many.mean() * 64 - 1) < 0.05


def test_counts_and_policy():
    pred = np.array([[1, 0, 0, 1], [0, 0, 1, 1]], bool)
    true = np.array([[1, 1, 0, 0], [0, 1, 1, 1]], bool)
    samp = np.array([[1, 1, 1, 0], [1, 0, 1, 0]], bool)
    assert calibration_counts(pred, samp, true) == {"sampled": 3, "false_zero": 1, "live": 3,
                                                    "false_live": 1}
    cal = EorsCalibrator(EorsParams(threshold=0, rel=10), rate_log2=6, lo=0.002, hi=0.006, evidence=3)
    # too many false zeros: one level safer, patience doubles
    cal.add("L", {"sampled": 50, "false_zero": 2, "live": 10000, "false_live": 0})
    assert cal.end_step() == {"L": 9} and cal.patience["L"] == 2
    # enough evidence (lo * n / R >= 3 * 2) and no false zero: one level bolder
    cal.add("L", {"sampled": 50, "false_zero": 0, "live": 95000, "false_live": 0})
    assert cal.end_step() == {"L": 9}
    cal.add("L", {"sampled": 50, "false_zero": 0, "live": 100000, "false_live": 0})
    assert cal.end_step() == {"L": 10}
    assert cal.params_for("L") == EorsParams(threshold=0, rel=10)
    assert cal.params_for("new") == EorsParams(threshold=0, rel=10)


def test_recall_rule():
    """With a recall target the level rises on a low measured recall, unless even one
    more false-zero sample could put the rate above ``hi``; with a ceiling it falls on
    a recall above it; neither acts on fewer than 16 * evidence samples."""
    R = 1 << 7
    base = EorsParams(threshold=0, rel=9)
    low = {"sampled": 50, "false_zero": 0, "live": 30000, "false_live": 400}    # 6400/6800
    high = {"sampled": 50, "false_zero": 0, "live": 30000, "false_live": 20}    # 6400/6420
    for kw, counts, want in (({}, low, 9), ({"recall": 0.96}, low, 10),
                             ({"recall": 0.96}, high, 9),
                             ({"recall": 0.96, "recall_hi": 0.99}, high, 8)):
        cal = EorsCalibrator(base, rate_log2=7, **kw)
        cal.add("L", counts)
        assert cal.end_step() == {"L": want}, (kw, counts)
    # too few live outputs to rule out a false-zero rate above hi: wait
    cal = EorsCalibrator(base, rate_log2=7, recall=0.96, recall_hi=0.99)
    cal.add("L", dict(low, live=R * 100))
    assert cal.end_step() == {"L": 9}
    # too few samples for a recall estimate: wait, the window kept
    cal = EorsCalibrator(base, rate_log2=7, recall=0.96, recall_hi=0.99)
    cal.add("L", dict(high, sampled=47))
    assert cal.end_step() == {"L": 9} and cal.win["L"]["sampled"] == 47
    cal.add("L", dict(high, sampled=1))
    assert cal.end_step() == {"L": 8} and cal.win["L"]["sampled"] == 0


def test_confidence_rules():
    """With confidences a lowering needs evidence: the false-zero ceiling fires when the
    rate's lower bound ``R * (k - fz_conf * sqrt(k)) / n`` is above ``hi``, the recall
    ceiling when the recall computed with the lower bound of the sampled true zeros
    ``s0 - recall_conf * sqrt(s0)`` is above ``recall_hi``; 0 is the point rule."""
    R = 1 << 7
    base = EorsParams(threshold=0, rel=9)

    def after(counts, **kw):
        cal = EorsCalibrator(base, rate_log2=7, **kw)
        cal.add("L", counts)
        return cal.end_step()["L"], cal

    # two false-zero samples: the point rule lowers, fz_conf 2 cannot (2 - 2 sqrt 2 < 0)
    two = {"sampled": 50, "false_zero": 2, "live": 10000, "false_live": 0}
    assert after(two)[0] == 8 and after(two, fz_conf=2.0)[0] == 9 and after(two, recall_conf=2.0)[0] == 8
    # fz_conf 1: lower bound 2 - sqrt 2, fires iff R * 0.586 > hi * n
    for live, want in ((12000, 8), (13000, 9)):
        assert after(dict(two, live=live), fz_conf=1.0)[0] == want
    # nine samples: lower bound 9 - 2 * 3 = 3, so the ceiling fires iff R * 3 > hi * n
    nine = {"sampled": 50, "false_zero": 9, "live": 0, "false_live": 0}
    for live, want in ((50000, 8), (70000, 9)):
        q, cal = after(dict(nine, live=live), fz_conf=2.0)
        assert (q, R * 3 > 0.006 * (live + R * 9)) == (want, want == 8)
        assert cal.patience["L"] == (2 if want == 8 else 1)
    # recall ceiling: s0 = 64 samples, lower bound 64 - 2 * 8 = 48, z_lo = 48 R
    rc = {"recall": 0.965, "recall_hi": 0.99}
    counts = {"sampled": 64, "false_zero": 0, "live": 30000}
    for fl, conf, want in ((60, 2.0, 8), (70, 2.0, 9), (70, 0.0, 8), (90, 0.0, 9)):
        z = R * (64 - conf * 8)
        assert (z > 0.99 * (z + fl)) == (want == 8)
        assert after(dict(counts, false_live=fl), recall_conf=conf, **rc)[0] == want, (fl, conf)
        assert after(dict(counts, false_live=fl), fz_conf=conf, **rc)[0] == (8 if fl < 82 else 9)
    # the raising rules do not depend on conf
    low = {"sampled": 50, "false_zero": 0, "live": 30000, "false_live": 400}
    assert after(low, fz_conf=2.0, recall_conf=2.0, **rc)[0] == 10


def test_validation_messages():
    cases = [
        (lambda: EorsParams(rel=32), ValueError, "EORS rel must be in [0, 31], got 32"),
        (lambda: EorsParams(rel=1.0), TypeError, "EORS rel must be an int, got 1.0"),
        (lambda: EorsSampler(3, 6), ValueError,
         "EORS sampler needs lanes a power of two <= 2**rate_log2, got lanes=3, rate_log2=6"),
        (lambda: EorsSampler(16, 3), ValueError,
         "EORS sampler needs lanes a power of two <= 2**rate_log2, got lanes=16, rate_log2=3"),
        (lambda: EorsSampler(16, 6).sample(2, 3, 1 << 16), ValueError,
         "EORS sampler key must be in [0, 65535], got 65536"),
        (lambda: EorsCalibrator(DEFAULT_EORS), ValueError,
         f"EorsCalibrator needs scale-aware EorsParams (rel set), got {DEFAULT_EORS!r}"),
        (lambda: EorsCalibrator(replace(DEFAULT_EORS, rel=3), lo=0.01, hi=0.001), ValueError,
         "EorsCalibrator needs 0 < lo < hi < 1, got lo=0.01, hi=0.001"),
        (lambda: EorsCalibrator(replace(DEFAULT_EORS, rel=3), recall=1.0), ValueError,
         "EorsCalibrator needs 0 < recall < 1, got recall=1.0"),
        (lambda: EorsCalibrator(replace(DEFAULT_EORS, rel=3), recall=0.9, recall_hi=0.8), ValueError,
         "EorsCalibrator needs recall < recall_hi < 1, got recall=0.9, recall_hi=0.8"),
        (lambda: EorsCalibrator(replace(DEFAULT_EORS, rel=3), fz_conf=-1.0), ValueError,
         "EorsCalibrator needs 0 <= fz_conf <= 8, got fz_conf=-1.0"),
        (lambda: EorsCalibrator(replace(DEFAULT_EORS, rel=3), recall_conf="2"), ValueError,
         "EorsCalibrator needs 0 <= recall_conf <= 8, got recall_conf='2'"),
    ]
    for make, exc, msg in cases:
        with pytest.raises(exc) as info:
            make()
        assert str(info.value) == msg


def test_study_script_runs(tmp_path):
    """scripts/eors_study.py end to end on the smallest GAN for two steps, and --merge."""
    import importlib.util
    import json
    from pathlib import Path
    path = Path(__file__).resolve().parent.parent / "scripts" / "eors_study.py"
    spec = importlib.util.spec_from_file_location("eors_study", path)
    study = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(study)
    out, md = tmp_path / "s.json", tmp_path / "s.md"
    assert study.main(["--json", str(out), "--md", str(md), "--steps", "2",
                       "--gans", "mlp-narrow-uniform", "--sweep", "8", "--one-setting",
                       "--sample-seed", "3"]) == 0
    res = json.loads(out.read_text())
    assert res["meta"]["sample_seed"] == 3
    assert all(res["meta"][k] == v for k, v in study.CALIB_POLICY.items() if k != "rate_log2")
    assert res["meta"]["rate_log2"] == study.CALIB_POLICY["rate_log2"]
    cp = res["gans"]["mlp-narrow-uniform"]["checkpoints"]["2"]
    assert set(cp) == {"G.fc1", "G.fc2", "G.fc3", "D.fc1", "D.fc2", "D.fc3"}
    for st in cp.values():
        assert {"pure", "default", "scale", "calib", "rel8"} <= set(st)
        assert 0 <= st["scale"]["recall"] <= 1
    assert "| mlp-narrow-uniform |" in md.read_text()
    merged = tmp_path / "m.json"
    assert study.main(["--json", str(merged), "--merge", str(out)]) == 0
    assert set(json.loads(merged.read_text())["gans"]) == {"mlp-narrow-uniform"}
