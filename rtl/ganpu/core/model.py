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

An EORS task uses the level of its ``eors_rel`` field in scale-aware mode
(:func:`task_eors_params`). :func:`eors_counts` gives the self-calibration counters
the core shows after an EORS task (``docs/eors.md``, "Self-calibration"); the outputs
it samples are computed but still written +0, so :func:`run_task` does not depend on
sampling.
"""

from dataclasses import replace

import numpy as np

from .. import numerics
from ..model.eors import DEFAULT_EORS, eors_mask, EorsSampler, calibration_counts
from ..model.gemm import epilogue as golden_epilogue, relu_pos
from .config import DEFAULT_CORE
from .descriptor import Op, Act, ConvMode, Error
from . import im2col

__all__ = ["check", "run_task", "run_task_in_set", "set_view", "active_outputs", "out_disjoint", "task_eors_params",
           "eors_counts", "EORS_COUNTERS"]

#: The self-calibration counters of an EORS task, in the TaskPort's order
#: (``eors_<name>``): predicted live and nonzero, predicted live and zero, predicted
#: zero and sampled, sampled and nonzero (a false zero).
EORS_COUNTERS = ("live", "false_live", "sampled", "false_zero")


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
    if eors_active(desc) and (use_mask or not _linear_b(desc) or
                              (desc.get("bias", 0) and desc["bias_base"] % eors_lanes)):
        return Error.BAD_COMBO
    conv = desc.get("conv", 0)
    if conv:
        err = check_conv(desc)
        if err != Error.OK:
            return err
        (R0, _, _), (Q0, Q1, Q2) = im2col.dims(desc)
        a_last = _last(desc["a_base"], (R0, desc["a_sm"]), (Q0, desc["a_sk"]),
                       (desc["in_h"], desc["in_w"]), (desc["in_w"], 1))
        b_last = _last(desc["b_base"], (N, desc["b_sn"]), (Q0, desc["b_sk"]),
                       (Q1, desc["b_sy"]), (Q2, desc["b_sx"]))
    else:
        a_last = _last(desc["a_base"], (M, desc["a_sm"]), (K, desc["a_sk"]))
        b_last = _last(desc["b_base"], (N, desc["b_sn"]), (K, desc["b_sk"]))
    if a_last >= geom.depth("a"):
        return Error.A_RANGE
    if b_last >= geom.depth("b"):
        return Error.B_RANGE
    if _last(desc["o_base"], (M, desc["o_sm"]), (N, desc["o_sn"])) >= geom.depth("out"):
        return Error.OUT_RANGE
    if desc.get("bias", 0) and desc["bias_base"] + N - 1 >= geom.depth("bias"):
        return Error.BIAS_RANGE
    if M * N > geom.depth("mask"):
        return Error.MASK_RANGE
    if im2col.task_taps(desc) > geom.depth("a"):
        return Error.WORK_RANGE
    if eors_active(desc) and -(-N // eors_lanes) * K > geom.depth("b") // eors_lanes:
        return Error.EORS_RANGE
    if not out_disjoint(M, N, desc["o_sm"], desc["o_sn"]):
        return Error.OUT_OVERLAP
    return Error.OK


def _linear_b(desc):
    """B offsets are k itself (``boff = k``), as the speculator's BW words need:
    ``b_sk`` = 1 in FC; in ROWS an unflipped (c, ky, kx) row-major kernel."""
    if desc.get("conv", 0) == ConvMode.ROWS.value:
        kk = desc["kern"]
        return (not desc.get("flip", 0) and desc["b_sk"] == kk * kk and desc["b_sy"] == kk
                and desc["b_sx"] == 1)
    return desc.get("conv", 0) == ConvMode.FC.value and desc["b_sk"] == 1


def check_conv(desc):
    """The convolution checks (after BAD_COMBO, before A_RANGE), in this order:
    BAD_CONV: an undefined mode; kern, in_h or in_w 0; cstride or dil not 1 or 2 (the
    Indexer multiplies and divides by them with 1-bit shifts); TAPS with dil != 1,
    flip, oy0 or a kernel band past the kernel (``ky0 + kh > kern``); ROWS with ky0 or
    kh; M or K not the product of the row or reduction space (so also an
    output size of 0). CONV_SHAPE: the kernel larger than the padded input, i.e. a
    padding of the kernel's size or more on either side: ``pad >= kern`` at the start,
    or at the end ``hi >= kern + dil - 1`` where ``hi = last*cstride + kern - pad - in_v``
    is the padding the last window needs past the (dilated, ``in_v = (in-1)*dil + 1``)
    input and ``last`` the last output (``oy0 + out_h - 1``, ``out_w - 1``); ``dil - 1``
    allows the zeros an output padding inserts after the last pixel."""
    conv = desc["conv"]
    if conv not in (ConvMode.ROWS.value, ConvMode.TAPS.value):
        return Error.BAD_CONV
    if 0 in (desc["kern"], desc["in_h"], desc["in_w"]) or desc["cstride"] not in (1, 2) or \
            desc["dil"] not in (1, 2):
        return Error.BAD_CONV
    if conv == ConvMode.TAPS.value and (desc["dil"] != 1 or desc["flip"] or desc["oy0"] or
                                        desc["ky0"] + desc["kh"] > desc["kern"]):
        return Error.BAD_CONV
    if conv == ConvMode.ROWS.value and (desc["ky0"] or desc["kh"]):
        return Error.BAD_CONV
    R, Q = im2col.dims(desc)
    if desc["m"] != R[0] * R[1] * R[2] or desc["k"] != Q[0] * Q[1] * Q[2]:
        return Error.BAD_CONV
    kern, s, p, dil = desc["kern"], desc["cstride"], desc["pad"], desc["dil"]
    for last, n_in in ((desc["oy0"] + desc["out_h"] - 1, desc["in_h"]),
                       (desc["out_w"] - 1, desc["in_w"])):
        hi = last * s + kern - p - ((n_in - 1) * dil + 1)
        if p >= kern or hi >= kern + dil - 1:
            return Error.CONV_SHAPE
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


def task_eors_params(desc, eors_params):
    """The predictor arithmetic of one task: in scale-aware mode a nonzero ``eors_rel``
    field replaces the configured level; otherwise ``eors_params`` itself."""
    q = int(desc.get("eors_rel", 0))
    if eors_params.rel is None or q == 0:
        return eors_params
    return replace(eors_params, rel=q)


def active_outputs(desc, bufs, A, eors_params, eors_lanes=DEFAULT_CORE.eors_lanes):
    """Boolean (M, N): the outputs the core computes (the others are written +0)."""
    M, N = desc["m"], desc["n"]
    if eors_active(desc):
        bias = None
        if desc.get("bias", 0):
            bias = bufs["bias"][desc["bias_base"] + np.arange(N)]
        return eors_mask(A, bw_weights(desc, bufs["bw"], eors_lanes), bias,
                         task_eors_params(desc, eors_params))
    mask = np.asarray(bufs["mask_in"][:M * N], dtype=bool).reshape(M, N)
    if desc["op"] == Op.FP.value and desc.get("use_mask", 0):
        return mask
    if desc["op"] == Op.BP.value and desc["act"] == Act.RELU.value:
        return mask
    return np.ones((M, N), dtype=bool)


def operands(desc, bufs):
    """``(A, B, init)`` of a checked task through the address function
    (:func:`ganpu.core.im2col.tap_table`); structural zeros of A are +0."""
    N = desc["n"]
    valid, a_addr, boff = im2col.tap_table(desc)
    A = np.where(valid, bufs["a"][np.where(valid, a_addr, 0)], np.uint16(0)).astype(np.uint16)
    B = bufs["b"][desc["b_base"] + np.arange(N)[:, None] * desc["b_sn"] + boff[None, :]]
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


def set_view(bufs, config, set):
    """Set ``set`` of the host's image ``bufs`` of every set (each buffer
    ``config.host_depth`` elements, set ``s`` at ``s * depth``): a dict of views (writes
    reach ``bufs``) in :func:`run_task`'s shape."""
    from .config import Buf
    out = {}
    for buf in Buf:
        name, depth = buf.name.lower(), config.depth(buf)
        if len(bufs[name]) != config.host_depth(buf):
            raise ValueError(f"{name} holds {len(bufs[name])!r} elements, not "
                             f"buffer_sets * depth = {config.host_depth(buf)}")
        out[name] = bufs[name][set * depth:(set + 1) * depth]
    return out


def run_task_in_set(desc, bufs, config, set):
    """:func:`run_task` on set ``set`` of a core with ``config.buffer_sets`` sets:
    ``bufs`` is the host's image of every set (:func:`set_view`); returns ``(error,
    new_bufs)`` with the other set untouched (``docs/core.md``, "Two buffer sets")."""
    if set not in range(config.buffer_sets):
        raise ValueError(f"set must be in 0..{config.buffer_sets - 1}, not {set!r}")
    new = {k: np.array(v, copy=True) for k, v in bufs.items()}
    view = set_view(new, config, set)
    err, result = run_task(desc, view, config.geom, config.eors, config.eors_lanes)
    for name, v in result.items():
        view[name][:] = v
    return err, new


def eors_counts(desc, bufs, config=DEFAULT_CORE):
    """The self-calibration counters of one task (dict over :data:`EORS_COUNTERS`, as
    :func:`ganpu.model.eors.calibration_counts`) for the buffers ``bufs`` *before* the
    task: the prediction against the exact ReLU condition of the epilogue
    (``relu_pos`` of the rounded sum): ``live`` and ``false_live`` over the
    predicted-live outputs, ``sampled`` the predicted-zero outputs the sampler picks
    (:class:`ganpu.model.eors.EorsSampler` with the descriptor's ``eors_key``, one in
    ``2**config.eors_sample_log2``; none when it is 0) and ``false_zero`` those whose
    exact output is nonzero. A pure function of the descriptor and the buffers; all 0
    for a task the checker refuses or that is not an EORS task."""
    counts = dict.fromkeys(EORS_COUNTERS, 0)
    P = config.eors_lanes
    if check(desc, config.geom, P) != Error.OK or not eors_active(desc):
        return counts
    M, N = desc["m"], desc["n"]
    A, B, init = operands(desc, bufs)
    active = active_outputs(desc, bufs, A, config.eors, P)
    acc = numerics.dot(A[:, None, :], B[None, :, :], init[None, :])
    true = relu_pos(numerics.narrow(acc))
    sampled = np.zeros((M, N), dtype=bool)
    if config.eors_sample_log2:
        sampled = EorsSampler(P, config.eors_sample_log2).sample(M, N, int(desc.get("eors_key", 0)))
    return calibration_counts(active, sampled, true)
