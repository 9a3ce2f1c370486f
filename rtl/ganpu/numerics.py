"""Bit-exact numpy reference of the accelerator's number format (``docs/number-format.md``).

Every hardware block is checked against these functions. Values travel as raw bit
patterns (``np.uint16`` for binary16, ``np.uint32`` for binary32) so that signed zeros,
subnormals and NaN payloads are never lost to Python floats.

Rules, all IEEE 754 except where marked *project rule*:

* fp16 -> fp32 widening is exact.
* fp16 x fp16 -> fp32 multiply is exact (11 + 11 significant bits fit in 24; the
  smallest product, 2^-48, is a normal binary32).
* fp32 + fp32, fp32 x fp32 (``mul32``, the weight update's) and fp32 -> fp16 round to
  nearest, ties to even; subnormals are honoured.
* Any NaN result is the canonical quiet NaN: 0x7E00 (fp16), 0x7FC00000 (fp32).
* *Project rule (zero skip)*: in a dot product a term with a +-0 operand is never
  formed, whatever the other operand is (so 0 x Inf contributes nothing instead of NaN).
  This lets dense and zero-skipping hardware give identical bits.
* *Project rule (accumulation order)*: a dot product is one sequential fp32 sum that
  starts from ``init`` and adds the formed products in increasing k
  (``docs/accumulation-order.md``).

numpy's float32 arithmetic and its float32 -> float16 cast follow IEEE round to nearest
even with subnormals on the platforms we run on, so they are the oracle; NaNs are then
canonicalized.
"""

import numpy as np

__all__ = [
    "FP16_QNAN", "FP32_QNAN", "FP32_NEG_ZERO",
    "f16_bits", "f32_bits", "f16_value", "f32_value",
    "widen", "narrow", "mul", "add", "mul32", "dot",
    "is_zero16", "is_nan16", "is_inf16", "is_nan32",
]

FP16_QNAN = 0x7E00
FP32_QNAN = 0x7FC00000
FP32_NEG_ZERO = 0x80000000


def f16_bits(x):
    """Float values -> binary16 bit patterns (RNE through numpy), canonical NaN."""
    h = np.asarray(x, dtype=np.float16)
    bits = h.view(np.uint16).copy()
    bits[np.isnan(h)] = FP16_QNAN
    return bits


def f32_bits(x):
    """Float values -> binary32 bit patterns, canonical NaN."""
    f = np.asarray(x, dtype=np.float32)
    bits = f.view(np.uint32).copy()
    bits[np.isnan(f)] = FP32_QNAN
    return bits


def f16_value(bits):
    return np.asarray(bits, dtype=np.uint16).view(np.float16)


def f32_value(bits):
    return np.asarray(bits, dtype=np.uint32).view(np.float32)


def is_zero16(bits):
    return (np.asarray(bits, dtype=np.uint16) & 0x7FFF) == 0


def is_nan16(bits):
    return (np.asarray(bits, dtype=np.uint16) & 0x7FFF) > 0x7C00


def is_inf16(bits):
    return (np.asarray(bits, dtype=np.uint16) & 0x7FFF) == 0x7C00


def is_nan32(bits):
    return (np.asarray(bits, dtype=np.uint32) & 0x7FFFFFFF) > 0x7F800000


def _canon32(f):
    bits = np.asarray(f, dtype=np.float32).view(np.uint32).copy()
    bits[np.isnan(f)] = FP32_QNAN
    return bits


def widen(h):
    """binary16 bits -> binary32 bits, exact; NaN becomes canonical."""
    return _canon32(f16_value(h).astype(np.float32))


def narrow(f):
    """binary32 bits -> binary16 bits, round to nearest even; NaN becomes canonical."""
    with np.errstate(over="ignore"):
        h = f32_value(f).astype(np.float16)
    bits = h.view(np.uint16).copy()
    bits[np.isnan(h)] = FP16_QNAN
    return bits


def mul(a, b):
    """binary16 x binary16 -> exact binary32 product bits (0 x Inf = canonical NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        p = f16_value(a).astype(np.float32) * f16_value(b).astype(np.float32)
    return _canon32(p)


def add(a, b):
    """binary32 + binary32 bits, round to nearest even (Inf - Inf = canonical NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        s = f32_value(a) + f32_value(b)
    return _canon32(s)


def mul32(a, b):
    """binary32 x binary32 bits, round to nearest even, subnormals honoured
    (0 x Inf = canonical NaN)."""
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        p = f32_value(a) * f32_value(b)
    return _canon32(p)


def dot(a, b, init=None):
    """Dot products in the project's accumulation order.

    ``a`` and ``b`` are binary16 bit arrays of shape ``(..., K)`` (broadcast against each
    other); ``init`` (binary32 bits, broadcast to the output shape) defaults to -0.0, the
    additive identity that keeps an empty sum's sign as IEEE would. Terms with a +-0
    operand are not formed. Returns binary32 bits of shape ``(...)``.
    """
    a = np.asarray(a, dtype=np.uint16)
    b = np.asarray(b, dtype=np.uint16)
    a, b = np.broadcast_arrays(a, b)
    shape = a.shape[:-1]
    if init is None:
        acc = np.full(shape, FP32_NEG_ZERO, dtype=np.uint32)
    else:
        acc = np.broadcast_to(np.asarray(init, dtype=np.uint32), shape).copy()
    for k in range(a.shape[-1]):
        ak, bk = a[..., k], b[..., k]
        live = ~(is_zero16(ak) | is_zero16(bk))
        if live.any():
            acc = np.where(live, add(acc, mul(ak, bk)), acc)
    return acc
