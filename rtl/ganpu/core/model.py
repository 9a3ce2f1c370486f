"""Bit-exact numpy model of one compute-core task (the core's golden reference).

A task computes ``out[m, n] = epilogue(init[n] + sum_k A[m, k] * B[n, k])`` with the
sum in the project's order (:func:`ganpu.numerics.dot`), then the golden model's
epilogue (:func:`ganpu.model.gemm.epilogue`, whose ``relu_pos`` defines ``pos``):

``z = narrow(acc)`` (RNE to binary16); ``pos = z is NaN or (z > 0)``;
``zl = narrow(mul(z, slope))`` (LeakyReLU's negative side, a binary16 x binary16 exact
product rounded once).

=====  ==========  ==========================================================
op     act         out                                       (not computed -> +0)
=====  ==========  ==========================================================
FP     IDENTITY    z
FP     RELU        z if pos else +0; with ``use_mask``, outputs whose MASK_IN
                   bit is 0 are not computed; with ``eors``, outputs that
                   :func:`ganpu.model.eors.eors_mask` predicts zero (from A, the
                   BW copy of the weights and the bias) are not computed
FP     LEAKY       z if pos else zl
BP     IDENTITY    z
BP     RELU        z where the stored mask bit is 1; other outputs not computed
BP     LEAKY       z where the stored mask bit is 1, else zl
WG     IDENTITY    z
=====  ==========  ==========================================================

``MASK_OUT[m*N + n] = pos`` for computed outputs and 0 for outputs not computed; for
FP with ReLU it is the mask BP needs later. An EORS task also writes its prediction
(1 = computed) to ``MASK_IN[m*N + n]``. A task that fails the descriptor check writes
nothing.
"""

import numpy as np

from .. import numerics
from ..model.eors import DEFAULT_EORS, eors_mask
from ..model.gemm import epilogue as golden_epilogue
from .config import DEFAULT_CORE
from .descriptor import Op, Act, Error

__all__ = ["check", "run_task", "active_outputs", "out_disjoint"]


def _last(base, *pairs):
    return base + sum((n - 1) * s for n, s in pairs)


def out_disjoint(M, N, o_sm, o_sn):
    """True when the (M, N) outputs at ``m*o_sm + n*o_sn`` are disjoint row blocks
    (``o_sn`` >= 1 and ``o_sm`` > ``(N-1)*o_sn``) or disjoint column blocks (the same
    with m and n swapped); a stride over a dimension of size 1 is free. Such layouts
    never give two outputs one OUT element; the checker refuses every other layout
    with ``OUT_OVERLAP``, also an interleaved one without a collision."""
    rows = (N == 1 or o_sn >= 1) and (M == 1 or o_sm > (N - 1) * o_sn)
    cols = (M == 1 or o_sm >= 1) and (N == 1 or o_sn > (M - 1) * o_sm)
    return rows or cols


def check(desc, geom, eors_lanes=DEFAULT_CORE.eors_lanes):
    """The descriptor checker's verdict (an :class:`Error`)."""
    op, act = desc["op"], desc["act"]
    M, N, K = desc["m"], desc["n"], desc["k"]
    if op not in (0, 1, 2):
        return Error.BAD_OP
    if act not in (0, 1, 2):
        return Error.BAD_ACT
    if 0 in (M, N, K):
        return Error.ZERO_DIM
    use_mask = desc.get("use_mask", 0)
    if (op == Op.WG.value and act != Act.IDENTITY.value) or \
            (op == Op.FP.value and use_mask and act != Act.RELU.value) or \
            (op != Op.FP.value and use_mask):
        return Error.BAD_COMBO
    if eors_active(desc) and (use_mask or desc["b_sk"] != 1 or
                              (desc.get("bias", 0) and desc["bias_base"] % eors_lanes)):
        return Error.BAD_COMBO
    if _last(desc["a_base"], (M, desc["a_sm"]), (K, desc["a_sk"])) >= geom.depth("a"):
        return Error.A_RANGE
    if _last(desc["b_base"], (N, desc["b_sn"]), (K, desc["b_sk"])) >= geom.depth("b"):
        return Error.B_RANGE
    if _last(desc["o_base"], (M, desc["o_sm"]), (N, desc["o_sn"])) >= geom.depth("out"):
        return Error.OUT_RANGE
    if desc.get("bias", 0) and desc["bias_base"] + N - 1 >= geom.depth("bias"):
        return Error.BIAS_RANGE
    if M * N > geom.depth("mask"):
        return Error.MASK_RANGE
    if M * K > geom.depth("a"):
        return Error.WORK_RANGE
    if eors_active(desc) and -(-N // eors_lanes) * K > geom.depth("b") // eors_lanes:
        return Error.EORS_RANGE
    if not out_disjoint(M, N, desc["o_sm"], desc["o_sn"]):
        return Error.OUT_OVERLAP
    return Error.OK


def eors_active(desc):
    """EORS applies to FP tasks with ReLU only; elsewhere the bit is ignored."""
    return bool(desc.get("eors", 0)) and desc["op"] == Op.FP.value and desc["act"] == Act.RELU.value


def bw_weights(desc, bw, eors_lanes=DEFAULT_CORE.eors_lanes):
    """(N, K) weights as the speculator reads them: BW word ``g*K + k`` holds
    ``B[g*P + p, k]`` in lane ``p`` (so element ``(g*K + k)*P + p`` of ``bw``)."""
    N, K = desc["n"], desc["k"]
    n = np.arange(N)[:, None]
    k = np.arange(K)[None, :]
    return bw[((n // eors_lanes) * K + k) * eors_lanes + n % eors_lanes]


def active_outputs(desc, bufs, A, eors_params, eors_lanes=DEFAULT_CORE.eors_lanes):
    """Boolean (M, N): the outputs the core computes (the others are written +0)."""
    M, N = desc["m"], desc["n"]
    if eors_active(desc):
        bias = None
        if desc.get("bias", 0):
            bias = bufs["bias"][desc["bias_base"] + np.arange(N)]
        return eors_mask(A, bw_weights(desc, bufs["bw"], eors_lanes), bias, eors_params)
    mask = np.asarray(bufs["mask_in"][:M * N], dtype=bool).reshape(M, N)
    if desc["op"] == Op.FP.value and desc.get("use_mask", 0):
        return mask
    if desc["op"] == Op.BP.value and desc["act"] == Act.RELU.value:
        return mask
    return np.ones((M, N), dtype=bool)


def operands(desc, bufs):
    M, N, K = desc["m"], desc["n"], desc["k"]
    mi, ni, ki = np.arange(M)[:, None], np.arange(N)[:, None], np.arange(K)[None, :]
    A = bufs["a"][desc["a_base"] + mi * desc["a_sm"] + ki * desc["a_sk"]]
    B = bufs["b"][desc["b_base"] + ni * desc["b_sn"] + ki * desc["b_sk"]]
    if desc.get("bias", 0):
        init = numerics.widen(bufs["bias"][desc["bias_base"] + np.arange(N)])
    else:
        init = np.full(N, numerics.FP32_NEG_ZERO, dtype=np.uint32)
    return A, B, init


def epilogue(acc, desc, mask_in_mn, active):
    """``(out, mask_out)`` of a task's (M, N) accumulators: the golden model's
    :func:`ganpu.model.gemm.epilogue` with the descriptor's phase, activation and
    slope. ``active`` (the outputs computed) is its ReLU mask; BP with LeakyReLU takes
    the stored FP mask ``mask_in_mn``; elsewhere every output is computed (the checker
    refuses masks with other activations)."""
    op, act = Op(desc["op"]), Act(desc["act"])
    if act == Act.RELU:
        mask = active
    elif op == Op.BP and act == Act.LEAKY:
        mask = mask_in_mn
    else:
        mask = None
    return golden_epilogue(acc, act.name.lower(), np.uint16(desc.get("slope", 0)), mask,
                           phase=op.name.lower())


def run_task(desc, bufs, geom, eors_params=DEFAULT_EORS, eors_lanes=DEFAULT_CORE.eors_lanes):
    """Run one task on a copy of ``bufs`` (dict of numpy arrays named a, b, bw, bias,
    mask_in, out, mask_out, sized by ``geom``); returns ``(error, new_bufs)``."""
    new = {k: np.array(v, copy=True) for k, v in bufs.items()}
    err = check(desc, geom, eors_lanes)
    if err != Error.OK:
        return err, new
    M, N = desc["m"], desc["n"]
    A, B, init = operands(desc, new)
    active = active_outputs(desc, new, A, eors_params, eors_lanes)
    acc = numerics.dot(A[:, None, :], B[None, :, :], init[None, :])
    mask_in_mn = np.asarray(new["mask_in"][:M * N], dtype=bool).reshape(M, N)
    y, mask_out = epilogue(acc, desc, mask_in_mn, active)
    mi, ni = np.arange(M)[:, None], np.arange(N)[None, :]
    new["out"][desc["o_base"] + mi * desc["o_sm"] + ni * desc["o_sn"]] = y
    new["mask_out"][:M * N] = mask_out.ravel()
    if eors_active(desc):
        # the core leaves its prediction in MASK_IN for the host to read
        new["mask_in"][:M * N] = active.ravel()
    return err, new
