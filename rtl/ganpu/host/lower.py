"""Lowering of layer phases (fully connected, convolution, transposed convolution) to
core tasks, and descriptor packing.

A *task* is ``(desc, loads)``: ``desc`` a dict of descriptor fields, ``loads`` a dict
buffer-name -> (base, bit array) to write through the host port before the task.
Operands are stored once, row-major, and the strides make BP and WG read them
transposed in place.
"""

import enum

import numpy as np
from amaranth.hdl import Shape

from .. import numerics
from ..core.config import DEFAULT_CORE, check_int
from ..core.descriptor import Op, Act, ConvMode, DEFAULT_ZERO_FIELDS, descriptor_layout
from ..core import im2col

__all__ = ["fc_fp", "fc_bp", "fc_wg", "fc_db", "pack_desc", "bw_image", "fc_desc",
           "ConvShape", "conv_tasks"]


def bw_image(w, eors_lanes=DEFAULT_CORE.eors_lanes):
    """The BW buffer image of weights ``w`` (N, K): word ``g*K + k`` holds
    ``w[g*P + p, k]`` in lane ``p``; lanes past N hold +0."""
    N, K = w.shape
    G = -(-N // eors_lanes)
    padded = np.zeros((G * eors_lanes, K), dtype=np.uint16)
    padded[:N] = w
    # (G, P, K) -> (G, K, P): element (g*K + k)*P + p
    return np.ascontiguousarray(padded.reshape(G, eors_lanes, K).transpose(0, 2, 1)).ravel()


def fc_desc(**kw):
    """A descriptor dict: every field 0 (an FC task; the conv fields of
    :data:`~ganpu.core.descriptor.DEFAULT_ZERO_FIELDS` stay 0, the EORS level too) but those given. The one place
    that gives fields defaults; everything that builds a descriptor starts here."""
    d = dict(op=0, act=0, slope=0, use_mask=0, bias=0, eors=0, m=0, n=0, k=0,
             a_base=0, a_sm=0, a_sk=0, b_base=0, b_sn=0, b_sk=0,
             o_base=0, o_sm=0, o_sn=0, bias_base=0, **{f: 0 for f in DEFAULT_ZERO_FIELDS})
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
    desc = fc_desc(op=Op.FP.value, act=Act(act).value, slope=int(slope), bias=1, eors=int(eors),
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
    desc = fc_desc(op=Op.BP.value, act=Act(act).value, slope=int(slope), m=batch, n=fin, k=fout,
                 a_sm=fout, a_sk=1, b_sn=1, b_sk=fin, o_sm=fin, o_sn=1)
    return desc, loads


def fc_wg(dy, x):
    """dW = dy^T x summed over the batch: dy (batch, out), x (batch, in)."""
    batch, fout = dy.shape
    fin = x.shape[1]
    loads = {"a": (0, _bits16(dy)), "b": (0, _bits16(x))}
    desc = fc_desc(op=Op.WG.value, act=Act.IDENTITY.value, m=fout, n=fin, k=batch,
                 a_sm=1, a_sk=fout, b_sn=1, b_sk=fin, o_sm=fin, o_sn=1)
    return desc, loads


def fc_db(dy):
    """db = sum over the batch of dy, as dy^T times a row of ones."""
    batch, fout = dy.shape
    ones = np.full(batch, numerics.f16_bits(1.0)[()], dtype=np.uint16)
    loads = {"a": (0, _bits16(dy)), "b": (0, ones)}
    desc = fc_desc(op=Op.WG.value, act=Act.IDENTITY.value, m=fout, n=1, k=batch,
                 a_sm=1, a_sk=fout, b_sn=0, b_sk=1, o_sm=1, o_sn=1)
    return desc, loads


def pack_desc(desc, geom):
    """The descriptor dict as the integer the ``desc`` port takes:
    ``descriptor_layout(geom).const(desc).as_bits()``, after checking that every field
    is present and fits (``ValueError`` naming the field otherwise); the convolution
    fields and ``eors_rel`` alone may be left out (they are then 0). Enum fields take
    any code that fits, defined or not, so malformed descriptors reach the checker."""
    layout = descriptor_layout(geom)
    desc = {**{f: 0 for f in DEFAULT_ZERO_FIELDS}, **desc}
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


class ConvShape:
    """The shape of a convolution (``kind`` "conv") or transposed convolution
    ("tconv") layer as :mod:`ganpu.model.layers` defines it: ``batch`` images of
    ``cin`` x ``in_hw`` in, ``cout`` channels out, square kernel ``k``, ``stride``,
    ``padding`` and (tconv) ``output_padding``. The core takes stride 1 or 2 (its
    indexer shifts by the stride and a tconv's dilation, docs/conv.md)."""

    def __init__(self, kind, batch, cin, cout, k, stride, padding, in_hw, output_padding=0):
        if kind not in ("conv", "tconv"):
            raise ValueError(f"kind must be 'conv' or 'tconv', got {kind!r}")
        # the descriptor's narrow fields: kernel 3 bits, stride and dilation 2 bits
        for name, value in (("batch", batch), ("cin", cin), ("cout", cout)):
            check_int(name, value, 1)
        check_int("k", k, 1, 7)
        check_int("stride", stride, 1, 2)
        check_int("padding", padding, 0, k - 1)
        check_int("output_padding", output_padding, 0, stride - 1)
        if not isinstance(in_hw, (tuple, list)) or len(in_hw) != 2:
            raise TypeError(f"in_hw must be a (H, W) pair, not {in_hw!r}")
        for value in in_hw:
            check_int("in_hw", value, 1)
        self.kind, self.batch, self.cin, self.cout = kind, batch, cin, cout
        self.k, self.s, self.p, self.op = k, stride, padding, output_padding
        self.in_hw = tuple(in_hw)
        h, w = self.in_hw
        if min(self.out_hw_of(kind, h, w, k, stride, padding, output_padding)) < 1:
            raise ValueError(f"{kind} with k={k!r}, stride={stride!r}, padding={padding!r} has no "
                             f"output for in_hw={self.in_hw!r}")
        self.out_hw = self.out_hw_of(kind, h, w, k, stride, padding, output_padding)

    @staticmethod
    def out_hw_of(kind, h, w, k, s, p, op):
        """Output size of the layer for an (h, w) input."""
        if kind == "conv":
            return ((h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1)
        return ((h - 1) * s - 2 * p + k + op, (w - 1) * s - 2 * p + k + op)

    def __repr__(self):
        return (f"ConvShape({self.kind!r}, batch={self.batch}, cin={self.cin}, cout={self.cout}, "
                f"k={self.k}, stride={self.s}, padding={self.p}, in_hw={self.in_hw}, "
                f"output_padding={self.op})")

    @classmethod
    def of_layer(cls, layer, batch, in_hw):
        return cls(layer.kind, batch, layer.cin, layer.cout, layer.k, layer.s, layer.p, in_hw,
                   getattr(layer, "op", 0))


def _conv_plan(shape, phase):
    """``(mode, image, image (C, H, W), dims of the conv fields, B fields, N)``: which
    tensor A reads and how, for one phase (the table of ``docs/conv.md``)."""
    sh = shape
    k, s, p, kk = sh.k, sh.s, sh.p, sh.k * sh.k
    (h, w), (ho, wo) = sh.in_hw, sh.out_hw
    conv = sh.kind == "conv"
    if phase == "fp":
        # conv: windows of x with stride s; tconv: stride 1 over x with s-1 zeros
        # inserted (never enumerated) and the kernel flipped in place
        geo = dict(cstride=s, dil=1, pad=p) if conv else dict(cstride=1, dil=s, pad=k - 1 - p)
        bf = dict(b_sn=sh.cin * kk, b_sk=kk) if conv else dict(b_sn=kk, b_sk=sh.cout * kk, flip=1)
        return ConvMode.ROWS, "x", (sh.cin, h, w), dict(out_h=ho, out_w=wo, **geo), bf, sh.cout
    if phase == "bp":
        # conv BP is the transposed conv of dz with the flipped kernel; tconv BP the
        # direct strided conv of dz
        geo = dict(cstride=1, dil=s, pad=k - 1 - p) if conv else dict(cstride=s, dil=1, pad=p)
        bf = dict(b_sn=kk, b_sk=sh.cin * kk, flip=1) if conv else dict(b_sn=sh.cout * kk, b_sk=kk)
        return ConvMode.ROWS, "dz", (sh.cout, ho, wo), dict(out_h=h, out_w=w, **geo), bf, sh.cin
    if phase == "wg":
        # taps as rows, output positions as k: conv reads windows of x against dz,
        # tconv windows of dz against x
        if conv:
            return (ConvMode.TAPS, "x", (sh.cin, h, w), dict(out_h=ho, out_w=wo, cstride=s, dil=1, pad=p),
                    dict(b_sn=ho * wo, b_sk=sh.cout * ho * wo, b_sy=wo, b_sx=1), sh.cout)
        return (ConvMode.TAPS, "dz", (sh.cout, ho, wo), dict(out_h=h, out_w=w, cstride=s, dil=1, pad=p),
                dict(b_sn=h * w, b_sk=sh.cin * h * w, b_sy=w, b_sx=1), sh.cin)
    raise ValueError(f"phase must be 'fp', 'bp' or 'wg', got {phase!r}")


def conv_tasks(shape, phase, geom, *, x=None, dz=None, w=None, b=None, mask=None,
               act=Act.IDENTITY, slope=0, eors=False, eors_lanes=DEFAULT_CORE.eors_lanes):
    """The core tasks of one phase of a convolution layer: ``(tasks, transposed)``.

    ``tasks`` is ``[(desc, loads, (m0, m1), (n0, n1)), ...]``; each computes rows
    m0..m1-1 and columns n0..n1-1 of the golden model's gemm (:mod:`ganpu.model.layers`) for phase ``fp`` (x, w, b; ``act``,
    ``slope``; ``mask`` (M, N) of outputs to compute with ReLU), ``bp`` (dz, w; ``act``
    and ``slope`` of the layer before, ``mask`` its stored FP mask as (M, N)) or ``wg``
    (x, dz; the bias gradient stays :func:`fc_db`). With ``eors`` an FP with ReLU lets
    the core's predictor choose the outputs: the speculator needs B offsets equal to k,
    so B is then the golden (N, K) matrix (a tconv's kernel flipped and transposed by
    the host, unflipped in the descriptor), and BW its grouped copy. Tensors are NCHW binary16 bits;
    weights as the layer holds them. With ``transposed`` (WG) a task's rows are columns
    of the golden result: it writes OUT column-major, ``OUT[n*(m1-m0) + m]``, so the
    host reads ``(n1-n0, m1-m0)``: golden rows n0..n1-1, columns m0..m1-1 (MASK_OUT stays dense
    in the core's (m, n), ``bit m*N + n``). The A operand is the
    input tensor itself (implicit im2col); tiles are whole images or bands of output
    rows (ROWS), whole channels or bands of kernel rows (TAPS), as the buffers allow;
    in WG, groups of B's channels (n) when B does not fit.
    """
    mode, src, (C, H, W), geo, bf, N = _conv_plan(shape, phase)
    img = {"x": x, "dz": dz}[src]
    if img is None:
        raise ValueError(f"{shape.kind} {phase} needs {src}")
    img = np.ascontiguousarray(img, dtype=np.uint16).reshape(shape.batch, C, H, W)
    other = np.ascontiguousarray(w if phase != "wg" else {"x": dz, "dz": x}[src], dtype=np.uint16)
    if phase == "wg":
        other = other.reshape(shape.batch, N, -1)
    # B's rows n are split when B does not fit (WG, where B holds every image): a
    # task's sum is unchanged, so tiles over n are free
    n_groups = [(0, N)]
    if other.size > geom.depth("b"):
        per_n = other.size // N
        step = geom.depth("b") // (per_n if phase == "wg" else other.size + 1)
        if phase != "wg" or step == 0:
            raise ValueError(f"{shape!r} {phase}: B of {other.size} elements does not fit {geom!r}")
        n_groups = [(n0, min(N, n0 + step)) for n0 in range(0, N, step)]
    k, kk, bt = shape.k, shape.k * shape.k, shape.batch
    eors = bool(eors) and phase == "fp" and Act(act) == Act.RELU
    if eors and bf.get("flip"):
        # the golden B: W (Ci, Co, k, k) flipped and transposed to (Co, Ci*k*k)
        other = np.ascontiguousarray(other.reshape(shape.cin, shape.cout, k, k)[:, :, ::-1, ::-1]
                                     .transpose(1, 0, 2, 3))
        bf = dict(b_sn=shape.cin * kk, b_sk=kk)
    base = fc_desc(op={"fp": Op.FP, "bp": Op.BP, "wg": Op.WG}[phase].value, act=Act(act).value,
                   slope=int(slope), conv=mode.value, kern=k, in_h=H, in_w=W, n=N, eors=int(eors),
                   **{"b_sy": k, "b_sx": 1, **geo, **bf})
    with_bias = phase == "fp" and b is not None
    use_mask = phase == "fp" and mask is not None and Act(act) == Act.RELU and not eors
    needs_mask = use_mask or (phase == "bp" and Act(act) != Act.IDENTITY)
    ho, wo = geo["out_h"], geo["out_w"]
    per_img = C * H * W
    tasks = []

    def task(desc, a, m0, m1):
        for n0, n1 in n_groups:
            bimg = other if phase != "wg" else other[:, n0:n1]
            loads = {"a": (0, a.ravel()), "b": (0, np.ascontiguousarray(bimg).ravel())}
            if with_bias:
                loads["bias"] = (0, np.ascontiguousarray(b, dtype=np.uint16))
            if needs_mask:
                loads["mask_in"] = (0, np.asarray(mask[m0:m1], dtype=np.uint16).ravel())
            if eors:
                loads["bw"] = (0, bw_image(other.reshape(N, -1), eors_lanes))
            d = fc_desc(**{**base, **desc, "bias": int(with_bias), "use_mask": int(use_mask)})
            if (n0, n1) != (0, N):
                # B holds channels n0..n1-1 of every image
                d.update(n=n1 - n0, b_sk=d["b_sk"] * (n1 - n0) // N)
            d["m"], d["k"] = (int(np.prod(x)) for x in im2col.dims(d))
            tasks.append((d, loads, (m0, m1), (n0, n1)))

    # a tile's rows are bounded by OUT and the masks (N outputs each) and its valid
    # taps (the compressed copy, counted exactly as the checker does) by A's depth
    nt = n_groups[0][1] - n_groups[0][0]
    max_rows = min(geom.depth("out"), geom.depth("mask")) // nt
    depth_a = geom.depth("a")
    ax = dict(cstride=geo["cstride"], dil=geo["dil"], pad=geo["pad"])
    px = im2col.axis_pairs(0, geo["out_w"], 0, k, n_in=W, **ax)
    if mode == ConvMode.ROWS:
        # valid taps of each output row oy of one image: C * (pairs of oy) * Px
        row_taps = [C * px * im2col.axis_pairs(oy, 1, 0, k, n_in=H, **ax) for oy in range(ho)]
        rows = ho * wo
        n_img = min(_fit(sum(row_taps), depth_a), max_rows // rows, depth_a // per_img)
        if n_img >= 1:
            for i0, i1 in _even(bt, n_img):
                task(dict(img=i1 - i0, chan=C, a_sm=per_img, a_sk=H * W, o_sm=N, o_sn=1),
                     img[i0:i1], i0 * rows, i1 * rows)
            return tasks, False
        bands = _bands(row_taps, depth_a, max_rows // wo)
        if per_img > depth_a or bands is None:
            raise ValueError(f"{shape!r} {phase} does not fit {geom!r} even one output row at a time")
        for i in range(bt):
            for oy0, oy1 in bands:
                task(dict(img=1, chan=C, oy0=oy0, out_h=oy1 - oy0, a_sm=per_img, a_sk=H * W,
                          o_sm=N, o_sn=1), img[i], i * rows + oy0 * wo, i * rows + oy1 * wo)
        return tasks, False
    # TAPS: rows are taps (c, ky, kx); every image is in each task (k sums over them);
    # valid taps of kernel row ky of one channel: bt * (pairs of ky) * Px
    ky_taps = [bt * px * im2col.axis_pairs(0, ho, ky, 1, n_in=H, **ax) for ky in range(k)]
    n_ch = min(_fit(sum(ky_taps), depth_a), max_rows // kk, depth_a // (bt * H * W))
    if n_ch >= 1:
        for c0, c1 in _even(C, n_ch):
            mt = (c1 - c0) * kk
            task(dict(img=bt, chan=c1 - c0, ky0=0, kh=k, a_sm=H * W, a_sk=(c1 - c0) * H * W,
                      o_sm=1, o_sn=mt), img[:, c0:c1], c0 * kk, c1 * kk)
        return tasks, True
    bands = _bands(ky_taps, depth_a, max_rows // k)
    if bt * H * W > depth_a or bands is None:
        raise ValueError(f"{shape!r} {phase} does not fit {geom!r} even one kernel row at a time")
    for c in range(C):
        for ky0, ky1 in bands:
            mt = (ky1 - ky0) * k
            task(dict(img=bt, chan=1, ky0=ky0, kh=ky1 - ky0, a_sm=H * W, a_sk=H * W,
                      o_sm=1, o_sn=mt), img[:, c:c + 1], c * kk + ky0 * k, c * kk + ky1 * k)
    return tasks, True


def _even(count, most):
    """``count`` items in as few runs ``(i0, i1)`` of at most ``most`` as possible, of
    nearly equal length (a short last tile would leave lanes idle for a whole tile)."""
    n = -(-count // most)
    return [(t * count // n, (t + 1) * count // n) for t in range(n)]


def _fit(taps, depth):
    """How many copies of a block of ``taps`` valid taps fit ``depth`` entries."""
    return depth // taps if taps else depth


def _bands(taps, depth, max_len):
    """Consecutive bands ``(i0, i1)`` of the items whose ``taps`` sum to at most
    ``depth`` and that are at most ``max_len`` long, each as long as it can be; None
    when one item alone does not fit."""
    bands, i0 = [], 0
    while i0 < len(taps):
        i1, total = i0, 0
        while i1 < len(taps) and i1 - i0 < max_len and total + taps[i1] <= depth:
            total += taps[i1]
            i1 += 1
        if i1 == i0:
            return None
        bands.append((i0, i1))
        i0 = i1
    return bands
