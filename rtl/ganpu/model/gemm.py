"""The single arithmetic primitive of the accelerator: ``gemm`` plus its epilogue.

Every layer phase (FP, BP, WG, bias gradient) of every layer kind lowers to one call of
:func:`gemm` followed by one call of :func:`epilogue`; the hardware core implements
exactly these two functions, bit for bit.

Accumulation order (``docs/accumulation-order.md``)
---------------------------------------------------
``out[m, n]`` is one sequential binary32 sum that starts from ``init[n]`` (-0.0, bits
0x80000000, when there is no bias) and adds the exact binary32 products
``A[m, k] * B[n, k]`` in increasing ``k``, each addition rounded to nearest even.
A product with a +-0 operand is never formed (so 0 x Inf adds nothing), which lets
dense and zero-skipping hardware produce identical bits. This is
:func:`ganpu.numerics.dot`; :func:`gemm` is a faster equivalent (vectorized over
``m, n``, looping over ``k``) and the tests check the two agree bit for bit.
"""

import numpy as np

from .. import numerics

__all__ = ["gemm", "epilogue", "relu_pos", "ACTS", "PHASES"]

ACTS = ("identity", "relu", "leaky")
PHASES = ("fp", "bp", "wg")


def _bits(x, dtype, name, ndim):
    arr = np.asarray(x)
    if arr.dtype != dtype:
        raise TypeError(f"{name} must be a {np.dtype(dtype).name} bit array, got dtype {arr.dtype!r}")
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape!r}")
    return arr


def gemm(A, B, init=None):
    """``out[m, n] = init[n] + sum_k A[m, k] * B[n, k]`` in the project's order.

    Parameters
    ----------
    A : ndarray of uint16, shape (M, K)
        binary16 bit patterns (the streamed operand: activations or errors).
    B : ndarray of uint16, shape (N, K)
        binary16 bit patterns (the stationary operand: weights, or activations in WG).
    init : ndarray of uint32, shape (N,), optional
        binary32 bit patterns preloaded in each accumulator (the widened bias in FP).
        ``None`` means -0.0 (0x80000000), the identity that gives an empty sum IEEE's
        sign.

    Returns
    -------
    ndarray of uint32, shape (M, N)
        binary32 bit patterns; every NaN is the canonical 0x7FC00000.

    Notes
    -----
    For each ``k`` in increasing order and each ``(m, n)``: if ``A[m, k]`` or
    ``B[n, k]`` is +-0 nothing happens; otherwise ``acc = RNE32(acc + A[m,k]*B[n,k])``
    where the product is exact in binary32. Subnormals are honoured; Inf - Inf gives
    NaN. numpy's float32 add is IEEE RNE, so it serves as the adder.
    """
    A = _bits(A, np.uint16, "A", 2)
    B = _bits(B, np.uint16, "B", 2)
    M, K = A.shape
    N, KB = B.shape
    if KB != K:
        raise ValueError(f"A has K={K!r} columns but B has K={KB!r}")
    if init is None:
        acc = np.full((M, N), -0.0, dtype=np.float32)
    else:
        init = _bits(init, np.uint32, "init", 1)
        if init.shape != (N,):
            raise ValueError(f"init must have shape {(N,)!r}, got {init.shape!r}")
        acc = np.broadcast_to(init.view(np.float32), (M, N)).copy()
    Af = numerics.f16_value(A).astype(np.float32)
    Bf = numerics.f16_value(B).astype(np.float32)
    Anz = ~numerics.is_zero16(A)
    Bnz = ~numerics.is_zero16(B)
    with np.errstate(invalid="ignore", over="ignore"):
        for k in range(K):
            rows = np.flatnonzero(Anz[:, k])
            cols = np.flatnonzero(Bnz[:, k])
            if rows.size == 0 or cols.size == 0:
                continue
            # fp16 x fp16 products are exact in float32, so only the add rounds
            if rows.size == M and cols.size == N:
                acc += np.multiply.outer(Af[:, k], Bf[:, k])
            else:
                ix = np.ix_(rows, cols)
                acc[ix] = acc[ix] + np.multiply.outer(Af[rows, k], Bf[cols, k])
    return numerics.f32_bits(acc)


def relu_pos(z16):
    """ReLU's pass condition on binary16 bits: NaN, or sign 0 and nonzero (incl. +Inf)."""
    z16 = np.asarray(z16, dtype=np.uint16)
    return numerics.is_nan16(z16) | (((z16 & 0x8000) == 0) & ~numerics.is_zero16(z16))


def epilogue(acc32, act, slope16=None, mask=None, *, phase):
    """Round an accumulator to binary16 and apply the activation or its derivative.

    Parameters
    ----------
    acc32 : ndarray of uint32
        :func:`gemm` output (any shape; ``mask`` has the same shape).
    act : {"identity", "relu", "leaky"}
        The activation of the layer whose output (FP) or input (BP) this is.
    slope16 : int, optional
        binary16 bits of LeakyReLU's negative slope; required for ``act="leaky"``.
    mask : ndarray of bool, optional
        FP + relu: the outputs to compute (e.g. the EORS prediction); the others are
        not computed. BP + relu/leaky: required, the mask stored by the FP that
        produced this tensor. Not allowed otherwise.
    phase : {"fp", "bp", "wg"}
        Keyword only.

    Returns
    -------
    out16 : ndarray of uint16
        binary16 bits.
    mask_out : ndarray of bool
        ``pos & computed`` (for FP + relu this is the mask BP needs later).

    Notes
    -----
    ``z = narrow(acc32)`` (RNE, NaN -> 0x7E00); ``pos = z is NaN or (sign 0 and z != 0)``
    (+Inf passes); ``zl = narrow(mul(z, slope16))`` (exact product, one rounding).

    ======  ========  =================================================
    phase   act       out (an output not computed is +0, mask_out 0)
    ======  ========  =================================================
    fp      identity  z
    fp      relu      z if pos else +0; outputs with mask 0 not computed
    fp      leaky     z if pos else zl
    bp      identity  z
    bp      relu      z where mask, else not computed
    bp      leaky     z where mask, else zl
    wg      identity  z
    ======  ========  =================================================

    A NaN output is therefore the canonical 0x7E00 with mask_out 1 in FP ReLU, so the
    error stays visible. -0 and +0 map to +0 under ReLU.
    """
    if act not in ACTS:
        raise ValueError(f"act must be one of {ACTS!r}, got {act!r}")
    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES!r}, got {phase!r}")
    if phase == "wg" and act != "identity":
        raise ValueError(f"WG has no activation: act must be 'identity', got {act!r}")
    if act == "leaky" and slope16 is None:
        raise ValueError("act='leaky' needs slope16 (binary16 bits), got None")
    needs_mask = phase == "bp" and act in ("relu", "leaky")
    may_mask = needs_mask or (phase == "fp" and act == "relu")
    if needs_mask and mask is None:
        raise ValueError(f"BP of act={act!r} needs the stored FP mask, got mask=None")
    if mask is not None and not may_mask:
        raise ValueError(f"A mask is only used in FP relu or BP relu/leaky, not phase={phase!r} act={act!r}")
    acc32 = np.asarray(acc32, dtype=np.uint32)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != acc32.shape:
            raise ValueError(f"mask shape {mask.shape!r} differs from acc32 shape {acc32.shape!r}")
    z = numerics.narrow(acc32)
    pos = relu_pos(z)
    computed = np.ones(z.shape, dtype=bool)
    if act == "identity":
        y = z
    elif act == "relu":
        computed = mask if mask is not None else computed
        y = np.where(pos, z, np.uint16(0)) if phase == "fp" else z
    else:
        zl = numerics.narrow(numerics.mul(z, np.uint16(slope16)))
        y = np.where(pos if phase == "fp" else mask, z, zl)
    y = np.where(computed, y, np.uint16(0)).astype(np.uint16)
    return y, pos & computed
