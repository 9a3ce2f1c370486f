"""Core tasks from the golden model's gemm records (``ganpu.gan.export``), and the conv
phases of an export as conv lowering inputs (:func:`conv_record_phases`).

A record ``out, mask_out = epilogue(gemm(A, B, init), act, slope16, mask_in, phase)``
becomes one or more core tasks: A (M, K) and B (N, K) are loaded row-major, the bias is
the record's ``init`` narrowed back to binary16 (exact: it was widened from one), and a
record whose A, OUT or masks exceed the core's buffers is split into row chunks (the
host's tiling; each chunk is an independent task with the same B).
"""

import numpy as np

from .. import numerics
from ..core.config import DEFAULT_CORE
from ..core.descriptor import Op, Act
from ..model import work
from .lower import fc_desc, bw_image

__all__ = ["record_tasks", "record_work", "phase_act", "conv_record_phases"]


def _member(cls, name, what):
    try:
        return cls[str(name).upper()]
    except KeyError:
        raise ValueError(f"Unknown {what} {name!r}; valid: "
                         f"{', '.join(m.name.lower() for m in cls)}") from None


def phase_act(rec):
    """The record's ``(Op, Act)`` from its ``epi_phase`` and ``act`` names."""
    return _member(Op, rec["epi_phase"], "phase"), _member(Act, rec["act"], "activation")


def _bias(init):
    init = np.asarray(init, dtype=np.uint32)
    if np.all(init == numerics.FP32_NEG_ZERO):
        return None
    b = numerics.narrow(init)
    if not np.array_equal(numerics.widen(b), init):
        raise ValueError("record init is not a widened binary16 bias; the core cannot load it")
    return b


def record_tasks(rec, geom, eors=False, eors_lanes=DEFAULT_CORE.eors_lanes):
    """``[(desc, loads, (m0, m1)), ...]``: the core tasks that compute rows m0..m1-1.

    With ``eors`` an FP record with ReLU is given to the core's predictor instead of
    loading the record's mask (which, if the record was made with EORS, is the model's
    prediction: the two must agree)."""
    A, B = np.asarray(rec["A"], np.uint16), np.asarray(rec["B"], np.uint16)
    M, K = A.shape
    N = B.shape[0]
    op, act = phase_act(rec)
    bias = _bias(rec["init"])
    mask = rec.get("mask_in")
    eors = bool(eors) and op == Op.FP and act == Act.RELU
    use_mask = op == Op.FP and mask is not None and act == Act.RELU and not eors
    needs_mask = use_mask or (op == Op.BP and act != Act.IDENTITY)
    if N * K > geom.depth("b") or N > geom.depth("out") or N > geom.depth("mask") or \
            K > geom.depth("a") or (bias is not None and N > geom.depth("bias")):
        raise ValueError(f"record with M, N, K = {M}, {N}, {K} does not fit {geom!r} even one row at a time")
    rows = min(M, geom.depth("a") // K, geom.depth("out") // N, geom.depth("mask") // N)
    slope = 0 if rec.get("slope16") is None else int(rec["slope16"])
    tasks = []
    for m0 in range(0, M, rows):
        m1 = min(M, m0 + rows)
        loads = {"a": (0, A[m0:m1].ravel()), "b": (0, B.ravel())}
        if bias is not None:
            loads["bias"] = (0, bias)
        if needs_mask:
            loads["mask_in"] = (0, np.asarray(mask[m0:m1], dtype=np.uint16).ravel())
        if eors:
            loads["bw"] = (0, bw_image(B, eors_lanes))
        desc = fc_desc(op=op.value, act=act.value, slope=slope, use_mask=int(use_mask), eors=int(eors),
                     bias=int(bias is not None), m=m1 - m0, n=N, k=K,
                     a_sm=K, a_sk=1, b_sn=K, b_sk=1, o_sm=N, o_sn=1)
        tasks.append((desc, loads, (m0, m1)))
    return tasks


def record_work(rec):
    """MAC counts of a record (:func:`ganpu.model.work.count`) with the outputs the
    core computes as live: the record's mask in FP and BP with ReLU (the FP mask may be
    the EORS prediction), every output otherwise."""
    op, act = phase_act(rec)
    mask = rec.get("mask_in")
    live = None
    if mask is not None and op in (Op.FP, Op.BP) and act == Act.RELU:
        live = np.asarray(mask, dtype=bool)
    return work.count(np.asarray(rec["A"], np.uint16), np.asarray(rec["B"], np.uint16), live)


def _conv_layers(records):
    """``[(prefix, phases, batch, next_bp), ...]`` per conv layer of each pass and net of
    an export: its records by phase, the batch (the rows of the net's FC FP) and the BP
    record of the next layer (its output is this layer's dz when it has no db)."""
    nets = {}
    for key, rec in records.items():
        prefix, phase = key.rsplit("/", 1)
        net = prefix.rsplit(".", 1)[0]
        nets.setdefault(net, {}).setdefault(prefix, {})[phase] = rec
    out = []
    for layers in nets.values():
        names = list(layers)  # FP order
        batch = next(ph["fp"]["A"].shape[0] for ph in layers.values() if ph["fp"]["kind"] == "fc")
        for i, prefix in enumerate(names):
            phases = layers[prefix]
            if phases["fp"]["kind"] in ("conv", "tconv"):
                nxt = layers[names[i + 1]].get("bp") if i + 1 < len(names) else None
                out.append((prefix, phases, batch, nxt))
    return out


def _image_from_cols(cols, b, c, k, s, lo, hi, dil, hw):
    """Inverse of the golden ``im2col(pad(dilate(t, dil), lo, hi), k, s)`` for a tensor
    ``t`` (b, c, H, W) whose every pixel lies in some window."""
    h, w = hw
    hp, wp = (h - 1) * dil + 1 + lo + hi, (w - 1) * dil + 1 + lo + hi
    ho, wo = (hp - k) // s + 1, (wp - k) // s + 1
    t = np.zeros((b, c, hp, wp), np.uint16)
    v = cols.reshape(b, ho, wo, c, k, k)
    for oy in range(ho):
        for ox in range(wo):
            t[:, :, oy * s:oy * s + k, ox * s:ox * s + k] = v[:, oy, ox]
    return t[:, :, lo:lo + (h - 1) * dil + 1:dil, lo:lo + (w - 1) * dil + 1:dil]


def conv_record_phases(records):
    """The conv and tconv phases (FP, BP, WG) of an export (``ganpu.gan.export``) as
    ``[(key, shape, phase, kwargs, rec), ...]``: ``conv_tasks(shape, phase, geom,
    **kwargs)`` lowers the phase from the layer's own tensors (NCHW input, dz, weights
    as the layer holds them, recovered from the records), and ``rec`` is its record.
    Square images only (the reference GANs')."""
    from .lower import ConvShape
    out = []
    for prefix, phases, b, next_bp in _conv_layers(records):
        fp = phases["fp"]
        kind, k, s, p = fp["kind"], fp["k"], fp["stride"], fp["padding"]
        op = fp.get("output_padding", 0)
        cin, cout = fp["cin"], fp["cout"]
        ho = int(round((fp["A"].shape[0] // b) ** 0.5))
        if kind == "conv":
            h = next(h for h in range(1, 4 * ho + k) if (h + 2 * p - k) // s + 1 == ho)
            x = _image_from_cols(fp["A"], b, cin, k, s, p, p, 1, (h, h))
            w = fp["B"].reshape(cout, cin, k, k)
        else:
            h = (ho - k + 2 * p - op) // s + 1
            x = _image_from_cols(fp["A"], b, cin, k, 1, k - 1 - p, k - 1 - p + op, s, (h, h))
            # FP's B is the flipped, transposed kernel
            w = np.ascontiguousarray(fp["B"].reshape(cout, cin, k, k)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        if set(phases) == {"fp"}:
            dz = None
        elif "db" in phases:
            dz = phases["db"]["A"].reshape(cout, b, ho, ho).transpose(1, 0, 2, 3)
        elif next_bp["kind"] == "fc":
            dz = next_bp["out"].reshape(b, cout, ho, ho)
        else:
            dz = next_bp["out"].reshape(b, ho, ho, cout).transpose(0, 3, 1, 2)
        shape = ConvShape(kind, b, cin, cout, k, s, p, (h, h), op)
        bias = numerics.narrow(fp["init"])
        for phase, rec in phases.items():
            if phase == "db":
                continue
            _, act = phase_act(rec)
            slope = rec["slope16"] or 0
            kw = dict(fp=dict(x=x, w=w, b=bias, act=act, slope=slope),
                      bp=dict(dz=dz, w=w, act=act, slope=slope, mask=rec["mask_in"]),
                      wg=dict(x=x, dz=dz))[phase]
            out.append((f"{prefix}/{phase}", shape, phase, kw, rec))
    return out
