"""``ganpu.model.sgd``: every binary32 result canonical, the first step's v = g from a
-0 momentum, and :func:`~ganpu.model.sgd.update` against an independent float32 path."""

import numpy as np

from ganpu import numerics
from ganpu.model import FC, SGD
from ganpu.model.sgd import update

INF16, NINF16 = 0x7C00, 0xFC00


def _bits(a):
    return np.asarray(a, np.float32).view(np.uint32)


def test_inf_minus_inf_gives_canonical_nan():
    """+Inf then -Inf gradients: mu x Inf + -Inf is Inf - Inf in the momentum, and the
    master then subtracts lr x NaN. numpy's own NaN there is 0xFFC00000 on x86; the
    model must store 0x7FC00000 in both."""
    layer = FC("l", 2, 1, rng=np.random.default_rng(0))
    opt = SGD(lr=0.5, momentum=0.5)
    opt.step([layer], {"l": (np.full((1, 2), INF16, np.uint16), np.full(1, INF16, np.uint16))})
    opt.step([layer], {"l": (np.full((1, 2), NINF16, np.uint16), np.full(1, NINF16, np.uint16))})
    for attr in ("w32", "b32"):
        assert _bits(opt.v[("l", attr)]).ravel().tolist() == [numerics.FP32_QNAN] * getattr(layer, attr).size
        assert _bits(getattr(layer, attr)).ravel().tolist() == [numerics.FP32_QNAN] * getattr(layer, attr).size
    assert layer.w16.ravel().tolist() == [numerics.FP16_QNAN] * 2


def test_every_result_canonical_on_special_operands():
    """Every (w, v, g) over the classes: no non-canonical NaN in w or v, and each
    non-NaN result equals plain numpy float32 arithmetic in the same order."""
    from vectors import F16_SPECIALS, F32_SPECIALS
    w, v, g = np.meshgrid(F32_SPECIALS, F32_SPECIALS, F16_SPECIALS, indexing="ij")
    w, v, g = w.ravel(), v.ravel(), g.ravel()
    hyp = dict(lr=_bits(np.float32(0.05))[()], mu=_bits(np.float32(0.5))[()],
               inv_scale=_bits(np.float32(1 / 64))[()])
    nw, nv, w16 = update(w, v, g, **hyp)
    for r in (nw, nv):
        nan = numerics.is_nan32(r)
        assert nan.any() and (r[nan] == numerics.FP32_QNAN).all()
    with np.errstate(all="ignore"):
        f = lambda x: numerics.f32_value(x)
        gv = numerics.f16_value(g).astype(np.float32) * f(hyp["inv_scale"])
        ev = f(hyp["mu"]) * f(v) + gv
        ew = f(w) - f(hyp["lr"]) * ev
    for got, exp in ((nv, ev), (nw, ew)):
        ok = ~np.isnan(exp)
        assert np.array_equal(got[ok], _bits(exp)[ok]) and numerics.is_nan32(got[~ok]).all()
    assert np.array_equal(w16, numerics.narrow(nw))


def test_first_step_momentum_is_the_gradient():
    """A momentum starting at -0 makes the first v exactly g, signed zeros included."""
    g = np.array([0x0000, 0x8000, 0x0001, 0x8001, 0x3C00, INF16, NINF16, 0x7E00], np.uint16)
    hyp = dict(lr=0x3D4CCCCD, mu=0x3F666666, inv_scale=0x3F800000)
    for mu in (hyp["mu"], 0):       # momentum 0 too: 0 x -0 = -0
        _, v, _ = update(np.zeros(len(g), np.uint32), np.uint32(numerics.FP32_NEG_ZERO), g,
                         hyp["lr"], mu, hyp["inv_scale"])
        assert v.tolist() == numerics.widen(g).tolist()
