"""Lowering of fully connected layer phases to core tasks, and descriptor packing.

A *task* is ``(desc, loads)``: ``desc`` a dict of descriptor fields, ``loads`` a dict
buffer-name -> (base, bit array) to write through the host port before the task.
Operands are stored once, row-major, and the strides make BP and WG read them
transposed in place.
"""

import enum

import numpy as np
from amaranth.hdl import Shape

from .. import numerics
from ..core.config import DEFAULT_CORE
from ..core.descriptor import Op, Act, descriptor_layout

__all__ = ["fc_fp", "fc_bp", "fc_wg", "fc_db", "pack_desc", "bw_image"]


def bw_image(w, eors_lanes=DEFAULT_CORE.eors_lanes):
    """The BW buffer image of weights ``w`` (N, K): word ``g*K + k`` holds
    ``w[g*P + p, k]`` in lane ``p``; lanes past N hold +0."""
    N, K = w.shape
    G = -(-N // eors_lanes)
    padded = np.zeros((G * eors_lanes, K), dtype=np.uint16)
    padded[:N] = w
    # (G, P, K) -> (G, K, P): element (g*K + k)*P + p
    return np.ascontiguousarray(padded.reshape(G, eors_lanes, K).transpose(0, 2, 1)).ravel()


def _desc(**kw):
    d = dict(op=0, act=0, slope=0, use_mask=0, bias=0, eors=0, m=0, n=0, k=0,
             a_base=0, a_sm=0, a_sk=0, b_base=0, b_sn=0, b_sk=0,
             o_base=0, o_sm=0, o_sn=0, bias_base=0)
    d.update(kw)
    return d


def _bits16(x):
    return np.ascontiguousarray(x, dtype=np.uint16).ravel()


def fc_fp(x, w, b, act=Act.RELU, slope=0, mask=None, eors=False, eors_lanes=DEFAULT_CORE.eors_lanes):
    """y = f(x W^T + b): x (batch, in), w (out, in), b (out,) binary16 bits; ``mask``
    (batch, out) of outputs to compute (ReLU only), or ``eors`` to let the core's
    predictor choose them (ReLU only; other activations ignore it)."""
    batch, fin = x.shape
    fout = w.shape[0]
    loads = {"a": (0, _bits16(x)), "b": (0, _bits16(w)), "bias": (0, _bits16(b))}
    if mask is not None:
        loads["mask_in"] = (0, np.asarray(mask, dtype=np.uint16).ravel())
    if eors:
        loads["bw"] = (0, bw_image(np.asarray(w, dtype=np.uint16), eors_lanes))
    desc = _desc(op=Op.FP.value, act=Act(act).value, slope=int(slope), bias=1, eors=int(eors),
                 use_mask=int(mask is not None), m=batch, n=fout, k=fin,
                 a_sm=fin, a_sk=1, b_sn=fin, b_sk=1, o_sm=fout, o_sn=1)
    return desc, loads


def fc_bp(dy, w, mask, act=Act.RELU, slope=0):
    """dx = (dy W) * f'(z): dy (batch, out), w (out, in); ``mask`` (batch, in) is the
    ReLU mask saved by the FP of the layer that produced x (ignored for identity)."""
    batch, fout = dy.shape
    fin = w.shape[1]
    loads = {"a": (0, _bits16(dy)), "b": (0, _bits16(w)),
             "mask_in": (0, np.asarray(mask, dtype=np.uint16).ravel())}
    desc = _desc(op=Op.BP.value, act=Act(act).value, slope=int(slope), m=batch, n=fin, k=fout,
                 a_sm=fout, a_sk=1, b_sn=1, b_sk=fin, o_sm=fin, o_sn=1)
    return desc, loads


def fc_wg(dy, x):
    """dW = dy^T x summed over the batch: dy (batch, out), x (batch, in)."""
    batch, fout = dy.shape
    fin = x.shape[1]
    loads = {"a": (0, _bits16(dy)), "b": (0, _bits16(x))}
    desc = _desc(op=Op.WG.value, act=Act.IDENTITY.value, m=fout, n=fin, k=batch,
                 a_sm=1, a_sk=fout, b_sn=1, b_sk=fin, o_sm=fin, o_sn=1)
    return desc, loads


def fc_db(dy):
    """db = sum over the batch of dy, as dy^T times a row of ones."""
    batch, fout = dy.shape
    ones = np.full(batch, numerics.f16_bits(1.0)[()], dtype=np.uint16)
    loads = {"a": (0, _bits16(dy)), "b": (0, ones)}
    desc = _desc(op=Op.WG.value, act=Act.IDENTITY.value, m=fout, n=1, k=batch,
                 a_sm=1, a_sk=fout, b_sn=0, b_sk=1, o_sm=1, o_sn=1)
    return desc, loads


def pack_desc(desc, geom):
    """The descriptor dict as the integer the ``desc`` port takes:
    ``descriptor_layout(geom).const(desc).as_bits()``, after checking that every field
    is present and fits (``ValueError`` naming the field otherwise). Enum fields take
    any code that fits, defined or not, so malformed descriptors reach the checker."""
    layout = descriptor_layout(geom)
    extra = set(desc) - {name for name, _ in layout}
    if extra:
        raise ValueError(f"Descriptor has unknown fields {sorted(extra)!r}")
    init, undefined = {}, 0
    for name, field in layout:
        if name not in desc:
            raise ValueError(f"Descriptor field {name!r} is missing")
        value = desc[name]
        width = Shape.cast(field.shape).width
        if isinstance(value, enum.Enum):
            value = value.value
        if isinstance(value, np.bool_):
            value = bool(value)
        if not isinstance(value, (int, np.integer)) or not 0 <= value < (1 << width):
            raise ValueError(f"Descriptor field {name}={value!r} does not fit in {width} bits")
        if isinstance(field.shape, enum.EnumMeta):
            if int(value) not in {m.value for m in field.shape}:
                # a code the enum does not define: a malformed descriptor the checker
                # must see and refuse, which the enum's const() cannot express
                undefined |= int(value) << field.offset
                continue
            value = field.shape(int(value))
        init[name] = value if isinstance(value, enum.Enum) else int(value)
    return layout.const(init).as_bits() | undefined
