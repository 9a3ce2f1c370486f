"""The one address function of a core task: which A elements and B offsets a task reads.

The core's task model (:mod:`ganpu.core.model`), the Indexer's model, the checker's
model and the host lowering (:mod:`ganpu.host.lower`) all read operands through
:func:`tap_table`, so a convolution has exactly one definition of its implicit im2col
(``docs/conv.md``).

A task computes ``out[m, n] = epi(init[n] + sum_k A[m, k] * B[n, k])``. Element
``(n, k)`` of B is ``B[b_base + n*b_sn + boff[k]]``; element ``(m, k)`` of A is
``A[a_addr[m, k]]`` where ``valid[m, k]``, and a structural zero (padding or an
inserted zero, never read, never enumerated) elsewhere.

* ``conv`` = FC: every (m, k) is valid, ``a_addr = a_base + m*a_sm + k*a_sk``,
  ``boff = k*b_sk``.
* ``conv`` = ROWS (FP, BP): row m = (i, oy - oy0, ox) over (img, out_h, out_w),
  k = (c, ky, kx) over (chan, kern, kern). The tap reads position
  ``v = oy*cstride + ky - pad`` of the image dilated by ``dil`` (``dil - 1`` zeros between
  pixels); it is valid when ``0 <= v <= (in_h - 1)*dil`` and ``v % dil == 0``, and
  then reads pixel ``v // dil`` (likewise x with ox, kx, in_w):
  ``a_addr = a_base + i*a_sm + c*a_sk + iy*in_w + ix``. B:
  ``boff = c*b_sk + ky'*b_sy + kx'*b_sx`` with ``ky' = kern-1-ky`` when ``flip``.
* ``conv`` = TAPS (WG): row m = (c, ky - ky0, kx) over (chan, kh, kern) (a band of
  ``kh`` kernel rows from ``ky0``, so that a tile can hold part of a channel's taps),
  k = (i, oy, ox) over (img, out_h, out_w); the same ``v`` (``dil`` = 1),
  ``a_addr = a_base + c*a_sm + i*a_sk + iy*in_w + ix``,
  ``boff = i*b_sk + oy*b_sy + ox*b_sx``.
"""

import numpy as np

from .descriptor import ConvMode

__all__ = ["dims", "tap_table", "row_taps", "axis_pairs", "task_taps"]


def dims(desc):
    """``(R, Q)``: the row space and the reduction space as 3-tuples (their products
    are M and K of a well-formed descriptor); FC gives ``((M, 1, 1), (K, 1, 1))``."""
    mode = desc.get("conv", 0)
    kern = desc.get("kern", 0)
    pos = (desc.get("img", 0), desc.get("out_h", 0), desc.get("out_w", 0))
    if mode == ConvMode.ROWS.value:
        return pos, (desc.get("chan", 0), kern, kern)
    if mode == ConvMode.TAPS.value:
        return (desc.get("chan", 0), desc.get("kh", 0), kern), pos
    return (desc["m"], 1, 1), (desc["k"], 1, 1)


def axis_pairs(o0, n_o, t0, n_t, cstride, dil, pad, n_in):
    """The valid (output, tap) pairs along one axis: outputs ``o0 .. o0+n_o-1``, taps
    ``t0 .. t0+n_t-1``, valid as in :func:`tap_table` (``v = o*cstride + t - pad`` a
    multiple of ``dil`` in ``0 .. (n_in-1)*dil``)."""
    o = np.arange(o0, o0 + n_o, dtype=np.int64)[:, None]
    t = np.arange(t0, t0 + n_t, dtype=np.int64)[None, :]
    v = o * cstride + t - pad
    return int(((v >= 0) & (v <= (n_in - 1) * dil) & (v % dil == 0)).sum())


def task_taps(desc):
    """The valid taps of a whole task, the entries its compressed copy of A may need
    (the checker's ``WORK_RANGE`` bound): ``M*K`` in FC; in a convolution exactly the
    valid taps of :func:`tap_table` of a well-formed descriptor, ``img * chan * Py *
    Px`` with Py, Px the valid pairs of each axis (:func:`axis_pairs`), since a tap is
    valid when it is valid along y and along x."""
    mode = desc.get("conv", 0)
    if mode not in (ConvMode.ROWS.value, ConvMode.TAPS.value):
        return desc["m"] * desc["k"]
    common = dict(cstride=desc["cstride"], dil=desc["dil"], pad=desc["pad"])
    if mode == ConvMode.ROWS.value:
        py = axis_pairs(desc["oy0"], desc["out_h"], 0, desc["kern"], n_in=desc["in_h"], **common)
    else:
        py = axis_pairs(0, desc["out_h"], desc["ky0"], desc["kh"], n_in=desc["in_h"], **common)
    px = axis_pairs(0, desc["out_w"], 0, desc["kern"], n_in=desc["in_w"], **common)
    return desc["img"] * desc["chan"] * py * px


def _axis(o, t, desc, n_in):
    """Validity and pixel index of taps with output coordinate ``o`` and kernel
    coordinate ``t`` along one axis of an input of ``n_in`` pixels."""
    dil = desc["dil"]
    v = o * desc["cstride"] + t - desc["pad"]
    ok = (v >= 0) & (v <= (n_in - 1) * dil) & (v % dil == 0)
    return ok, v // dil


def tap_table(desc, M=None, K=None):
    """``(valid, a_addr, boff)``: bool and int64 arrays (M, K), (M, K), (K,) for a
    descriptor of the given (or its own) M and K. Addresses of invalid taps are
    meaningless (never read)."""
    M = desc["m"] if M is None else M
    K = desc["k"] if K is None else K
    mode = desc.get("conv", 0)
    mi = np.arange(M, dtype=np.int64)[:, None]
    ki = np.arange(K, dtype=np.int64)[None, :]
    if mode not in (ConvMode.ROWS.value, ConvMode.TAPS.value):
        valid = np.ones((M, K), dtype=bool)
        a_addr = desc["a_base"] + mi * desc["a_sm"] + ki * desc["a_sk"]
        return valid, np.broadcast_to(a_addr, (M, K)), ki[0] * desc["b_sk"]
    R, Q = dims(desc)
    r0, r1, r2 = mi // (R[1] * R[2]), mi // R[2] % R[1], mi % R[2]
    q0, q1, q2 = ki // (Q[1] * Q[2]), ki // Q[2] % Q[1], ki % Q[2]
    if mode == ConvMode.ROWS.value:
        (oy, ox), (ky, kx) = (r1 + desc["oy0"], r2), (q1, q2)
    else:
        (oy, ox), (ky, kx) = (q1, q2), (r1 + desc["ky0"], r2)
    oky, iy = _axis(oy, ky, desc, desc["in_h"])
    okx, ix = _axis(ox, kx, desc, desc["in_w"])
    valid = oky & okx
    a_addr = desc["a_base"] + r0 * desc["a_sm"] + q0 * desc["a_sk"] + iy * desc["in_w"] + ix
    b1, b2 = q1[0], q2[0]
    if mode == ConvMode.ROWS.value and desc.get("flip", 0):
        b1, b2 = desc["kern"] - 1 - b1, desc["kern"] - 1 - b2
    boff = q0[0] * desc["b_sk"] + b1 * desc["b_sy"] + b2 * desc["b_sx"]
    return valid, np.broadcast_to(a_addr, (M, K)), boff


def row_taps(desc, m):
    """The valid taps of row ``m`` in increasing k: a list of ``(k, a_addr, boff)``
    (the order in which the Indexer enumerates them)."""
    valid, a_addr, boff = tap_table(desc)
    ks = np.flatnonzero(valid[m])
    return [(int(k), int(a_addr[m, k]), int(boff[k])) for k in ks]
