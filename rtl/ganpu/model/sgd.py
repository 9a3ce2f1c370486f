"""SGD with momentum on binary32 master weights (``docs/number-format.md``).

Per parameter, every operation rounded to binary32 RNE (numpy float32 arithmetic)::

    g = widen(grad16) / grad_scale        # exact: grad_scale is a power of two
    v = mu * v + g                        # two roundings: the product, then the sum
    w = w - lr * v                        # two roundings
    w16 = RNE16(w)

``grad_scale`` undoes a loss scale applied on the host (a power of two so that the
unscaling is exact unless the result is a binary32 subnormal).
"""

import math

import numpy as np

from .. import numerics

__all__ = ["SGD"]


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

    def step(self, layers, grads):
        """Update ``layer.w32``/``b32`` in place from ``grads[layer.name] = (dW16, db16)``
        and refresh the binary16 copies."""
        for layer in layers:
            if layer.name not in grads:
                continue
            dW16, db16 = grads[layer.name]
            for attr, g16 in (("w32", dW16), ("b32", db16)):
                w = getattr(layer, attr)
                g = numerics.f32_value(numerics.widen(g16)).reshape(w.shape) * self.inv_scale
                key = (layer.name, attr)
                v = self.v.get(key)
                v = g if v is None else self.mu * v + g
                self.v[key] = v.astype(np.float32)
                setattr(layer, attr, (w - self.lr * v).astype(np.float32))
            layer.sync()
