"""SGD with momentum on binary32 master weights (``docs/number-format.md``,
``docs/update.md``).

Per parameter, every operation rounded to binary32 RNE, every NaN the canonical
0x7FC00000 (:func:`update`, the update unit's model)::

    g = widen(grad16) x inv_scale         # exact: inv_scale is a power of two
    v = mu x v + g                        # two roundings: the product, then the sum
    w = w + -(lr x v)                     # two roundings (IEEE's w - lr x v)
    w16 = RNE16(w)

The momentum starts at -0.0 (``FP32_NEG_ZERO``): mu x -0 = -0 and -0 + g = g for every
g, so the first step gives v = g exactly (the usual "momentum starts as the first
gradient") with no first-step special case in hardware.

``grad_scale`` undoes a loss scale applied on the host (a power of two so that the
unscaling is exact unless the result is a binary32 subnormal).
"""

import math

import numpy as np

from .. import numerics

__all__ = ["SGD", "update"]


def update(w, v, g16, lr, mu, inv_scale):
    """One SGD-with-momentum step on bit patterns, elementwise (broadcasting).

    ``w``, ``v``: binary32 master weights and momenta; ``g16``: binary16 gradients;
    ``lr``, ``mu``, ``inv_scale``: binary32 bits of the hyperparameters. Returns
    ``(w, v, w16)``: the new masters and momenta (binary32 bits) and the binary16
    working copy (RNE), every NaN canonical.
    """
    g = numerics.mul32(numerics.widen(g16), inv_scale)
    v = numerics.add(numerics.mul32(mu, v), g)
    # IEEE subtraction is the addition of the negated operand, signed zeros included;
    # a NaN product stays a NaN whatever its sign and the adder canonicalizes it
    p = numerics.mul32(lr, v) ^ np.uint32(0x80000000)
    w = numerics.add(w, p)
    return w, v, numerics.narrow(w)


class SGD:
    """SGD with momentum.

    Parameters
    ----------
    lr : float
        Learning rate, > 0 (rounded to binary32).
    momentum : float
        In [0, 1).
    grad_scale : float
        Power of two the incoming gradients are multiplied by (loss scaling).
    """

    def __init__(self, lr, momentum=0.9, grad_scale=1.0):
        if not isinstance(lr, (int, float)) or not lr > 0:
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        if not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        if not isinstance(grad_scale, (int, float)) or grad_scale <= 0 or \
                math.frexp(grad_scale)[0] != 0.5:
            raise ValueError(f"grad_scale must be a positive power of two, got {grad_scale!r}")
        self.lr = np.float32(lr)
        self.mu = np.float32(momentum)
        self.inv_scale = np.float32(1.0 / grad_scale)
        self.v = {}

    @property
    def hyper_bits(self):
        """``{"lr", "mu", "inv_scale"}`` as binary32 bits (the update unit's inputs)."""
        return {k: int(numerics.f32_bits(getattr(self, k))) for k in ("lr", "mu", "inv_scale")}

    def step(self, layers, grads):
        """Update ``layer.w32``/``b32`` in place from ``grads[layer.name] = (dW16, db16)``
        and refresh the binary16 copies."""
        h = self.hyper_bits
        for layer in layers:
            if layer.name not in grads:
                continue
            dW16, db16 = grads[layer.name]
            for attr, g16 in (("w32", dW16), ("b32", db16)):
                w = getattr(layer, attr)
                key = (layer.name, attr)
                v = self.v.get(key)
                v = np.full(w.shape, numerics.FP32_NEG_ZERO, np.uint32) if v is None else v.view(np.uint32)
                g16 = np.asarray(g16, np.uint16).reshape(w.shape)
                w, v, _ = update(w.view(np.uint32), v, g16, h["lr"], h["mu"], h["inv_scale"])
                self.v[key] = numerics.f32_value(v)
                setattr(layer, attr, numerics.f32_value(w))
            layer.sync()
