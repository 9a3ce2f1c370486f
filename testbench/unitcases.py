"""Shared inputs of the core's unit benches: the small configuration Icarus runs, and
real operand tiles cut from one training step of the reference MLP GAN."""

import functools

import numpy as np

from ganpu import numerics
from ganpu.core import CoreConfig, Geometry

# Small enough for Icarus, large enough that every block meets each of its cases
# (several rows in flight, wide words of 4 elements, strides and offsets).
SMALL = CoreConfig(lanes=2, geom=Geometry(a_bits=6, b_bits=7, out_bits=7, bias_bits=4,
                                          mask_bits=7), eors_lanes=4)
# The checker is checked at the core's own size: its limits are the real buffers'.
CHECKER = CoreConfig()


@functools.lru_cache(maxsize=1)
def real_records():
    """Every gemm record of one training step (batch 32, seed 0)."""
    from ganpu.gan.export import export_layers
    return export_layers(net="mlp", steps=(0,), batch=32, seed=0)


def values(rng, n, zeros=0.0, special=False):
    """n binary16 values of moderate range, a fraction ``zeros`` of them signed zeros."""
    from vectors import f16_mixed
    v = numerics.f16_bits(rng.standard_normal(n).astype(np.float32) * 0.5).astype(np.uint16)
    if special:
        v = np.where(rng.random(n) < 0.1, f16_mixed(rng, n), v)
    z = rng.random(n) < zeros
    return np.where(z, rng.choice(np.array([0x0000, 0x8000], np.uint16), n), v).astype(np.uint16)
