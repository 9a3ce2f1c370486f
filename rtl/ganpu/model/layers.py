"""Layers whose every phase lowers to one :func:`~.gemm.gemm` + :func:`~.gemm.epilogue`.

Tensors between layers are binary16 bit arrays: ``(batch, features)`` for FC,
``(batch, C, H, W)`` (NCHW) for convolutions. Each layer keeps binary32 master
weights (``w32``, ``b32``) and their binary16 copies (``w16``, ``b16``, RNE).

Lowerings (``A`` streamed (M, K), ``B`` stationary (N, K), ``init`` (N,)):

=================  =================================  ==============================  =========
layer / phase      A                                  B                               init
=================  =================================  ==============================  =========
FC  FP             x (batch, in)                      W (out, in)                     widen(b)
FC  BP             dz (batch, out)                    W^T (in, out)                   -0
FC  WG             dz^T (out, batch)                  x^T (in, batch)                 -0
any db             dz^T (out, batch*positions)        ones (1, batch*positions)       -0
Conv FP            im2col(pad(x)) (b*Ho*Wo, Ci*k*k)   W (Co, Ci*k*k)                  widen(b)
Conv BP            im2col(pad(dilate(dz))) stride 1   flip(W)^T (Ci, Co*k*k)          -0
Conv WG            dz (Co, b*Ho*Wo)                   im2col(pad(x))^T (Ci*k*k, ...)  -0
TConv FP           im2col(pad(dilate(x))) stride 1    flip(W)^T (Co, Ci*k*k)          widen(b)
TConv BP           im2col(pad(dz)) stride s           W (Ci, Co*k*k)                  -0
TConv WG           x (Ci, b*H*W)                      im2col(pad(dz))^T (Co*k*k, ...) -0
=================  =================================  ==============================  =========

im2col rows are ordered (b, oy, ox), columns (c, i, j). The zeros of padding and of
zero insertion (``dilate``) stay in ``A`` as real +0 entries so work accounting sees
them; they are counted as *structural*. Conv BP is the transposed convolution of dz
(zero insertion), TConv BP/WG use the direct strided form (no inserted zeros).

BP of a layer applies, in its epilogue, the derivative of the activation of the layer
that produced its input (``in_act``, with that layer's stored FP mask).
"""

import numpy as np

from .. import numerics
from .gemm import gemm, epilogue, ACTS
from .eors import EorsParams, eors_mask

__all__ = ["FC", "Conv2d", "ConvTranspose2d", "Net", "im2col", "dilate", "pad"]

ONE16 = int(numerics.f16_bits(1.0)[()])


def pad(x, lo, hi):
    """Zero-pad (with +0 bits) the last two axes of an NCHW array."""
    return np.pad(x, ((0, 0), (0, 0), (lo, hi), (lo, hi)))


def dilate(x, s):
    """Insert ``s - 1`` zeros between neighbouring pixels (zero insertion)."""
    if s == 1:
        return x
    b, c, h, w = x.shape
    out = np.zeros((b, c, (h - 1) * s + 1, (w - 1) * s + 1), dtype=x.dtype)
    out[:, :, ::s, ::s] = x
    return out


def im2col(xp, k, s):
    """(b, C, H, W) padded -> (b*Ho*Wo, C*k*k), rows (b, oy, ox), columns (c, i, j)."""
    b, c, h, w = xp.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    yy = (np.arange(ho)[:, None] * s + np.arange(k)[None, :])[:, None, :, None]
    xx = (np.arange(wo)[:, None] * s + np.arange(k)[None, :])[None, :, None, :]
    cols = xp[:, :, yy, xx]  # (b, C, ho, wo, k, k)
    return np.ascontiguousarray(cols.transpose(0, 2, 3, 1, 4, 5)).reshape(b * ho * wo, c * k * k), (ho, wo)


def _structural(h, w, k, s, lo, hi, dil, b, c):
    """Count of structural-zero entries of im2col(pad(dilate(data))): padding/insertion."""
    ind = pad(dilate(np.ones((1, 1, h, w), dtype=np.uint16), dil), lo, hi)
    cols, _ = im2col(ind, k, s)
    return int((cols == 0).sum()) * b * c


def _check_pos_int(name, value, lo=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < lo:
        raise ValueError(f"{name} must be >= {lo}, got {value!r}")


class Layer:
    """Common parts: parameters, activation, hooks and the gemm-phase runner.

    Parameters
    ----------
    name : str
    act : {"identity", "relu", "leaky"}
        Activation applied in this layer's FP epilogue.
    slope : float
        LeakyReLU negative slope (rounded to binary16), used only for ``act="leaky"``.
    """

    kind = "layer"

    def __init__(self, name, act, slope, wshape, nbias, fan_in, rng):
        if act not in ACTS:
            raise ValueError(f"act must be one of {ACTS!r}, got {act!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator, got {rng!r}")
        self.name, self.act = name, act
        self.slope16 = int(numerics.f16_bits(slope)[()]) if act == "leaky" else None
        # He init for ReLU layers keeps activations O(1), well inside binary16
        gain = np.sqrt(2.0 if act != "identity" else 1.0)
        self.w32 = (rng.standard_normal(wshape) * gain / np.sqrt(fan_in)).astype(np.float32)
        self.b32 = np.zeros(nbias, dtype=np.float32)
        self.sync()
        self.hooks = []
        self.mask = None  # activation-shaped FP mask (ReLU/leaky), for the next BP
        self.x = None

    def sync(self):
        """Refresh the binary16 copies from the binary32 masters (RNE)."""
        self.w16 = numerics.f16_bits(self.w32)
        self.b16 = numerics.f16_bits(self.b32)

    def describe(self):
        return {"kind": self.kind, "layer_act": self.act, "w_shape": list(self.w32.shape)}

    def _run(self, phase, A, B, init=None, act="identity", slope16=None, mask=None,
             structural=0, epi_phase=None):
        acc = gemm(A, B, init)
        out, mask_out = epilogue(acc, act, slope16 if act == "leaky" else None, mask,
                                 phase=epi_phase or phase)
        for hook in self.hooks:
            hook(self, phase, {"A": A, "B": B, "init": init, "act": act,
                               "slope16": slope16, "mask_in": mask, "acc": acc,
                               "out": out, "mask_out": mask_out, "structural": structural})
        return out, mask_out

    def _predict(self, A, eors):
        if eors is None or self.act != "relu":
            return None
        if not isinstance(eors, EorsParams):
            raise TypeError(f"eors must be an EorsParams or None, got {eors!r}")
        return eors_mask(A, self._fp_B(), self.b16, eors)

    def _db(self, dzT):
        ones = np.full((1, dzT.shape[1]), ONE16, dtype=np.uint16)
        db, _ = self._run("db", dzT, ones, epi_phase="wg")
        return db[:, 0]

    def _bp_mask(self, in_act, in_mask, shape):
        if in_act in ("relu", "leaky"):
            if in_mask is None:
                raise ValueError(f"BP through in_act={in_act!r} needs the stored FP mask")
            return np.asarray(in_mask, dtype=bool).reshape(shape)
        return None


class FC(Layer):
    """Fully connected layer ``y = f(x W^T + b)``, W (fout, fin)."""

    kind = "fc"

    def __init__(self, name, fin, fout, act="relu", slope=0.2, rng=None):
        _check_pos_int("fin", fin)
        _check_pos_int("fout", fout)
        self.fin, self.fout = fin, fout
        super().__init__(name, act, slope, (fout, fin), fout, fin,
                         rng if rng is not None else np.random.default_rng(0))

    def describe(self):
        return {**super().describe(), "fin": self.fin, "fout": self.fout}

    def _fp_B(self):
        return self.w16

    def fp(self, x, eors=None):
        """Forward: x (batch, fin) or any (batch, ...) with fin features -> (batch, fout)."""
        self.x_shape = x.shape
        x = np.ascontiguousarray(x.reshape(x.shape[0], -1))
        if x.shape[1] != self.fin:
            raise ValueError(f"{self.name}: expected {self.fin!r} input features, got {x.shape[1]!r}")
        self.x = x
        y, m = self._run("fp", x, self.w16, numerics.widen(self.b16), self.act, self.slope16,
                         self._predict(x, eors))
        self.mask = m if self.act != "identity" else None
        return y

    def bp(self, dz, in_act="identity", in_mask=None, in_slope16=None):
        """dx = (dz W) * f'(in), shaped like the FP input."""
        B = np.ascontiguousarray(self.w16.T)
        mask = self._bp_mask(in_act, in_mask, (dz.shape[0], self.fin))
        dx, _ = self._run("bp", dz, B, None, in_act, in_slope16, mask)
        return dx.reshape(self.x_shape)

    def wg(self, dz):
        """(dW (fout, fin), db (fout,)) as binary16 bits."""
        dzT = np.ascontiguousarray(dz.T)
        dW, _ = self._run("wg", dzT, np.ascontiguousarray(self.x.T))
        return dW, self._db(dzT)


class _ConvBase(Layer):
    def __init__(self, name, cin, cout, k, stride, padding, act, slope, in_hw, rng, wshape):
        for n, v, lo in (("cin", cin, 1), ("cout", cout, 1), ("k", k, 1), ("stride", stride, 1),
                         ("padding", padding, 0)):
            _check_pos_int(n, v, lo)
        if padding > k - 1:
            raise ValueError(f"padding must be <= k - 1 = {k - 1!r}, got {padding!r}")
        self.cin, self.cout, self.k, self.s, self.p = cin, cout, k, stride, padding
        self.in_hw = in_hw
        super().__init__(name, act, slope, wshape, cout, cin * k * k,
                         rng if rng is not None else np.random.default_rng(0))

    def describe(self):
        return {**super().describe(), "cin": self.cin, "cout": self.cout, "k": self.k,
                "stride": self.s, "padding": self.p}

    def _as_nchw(self, x):
        if x.ndim == 2:
            if self.in_hw is None:
                raise ValueError(f"{self.name}: 2-D input needs in_hw, got in_hw=None")
            x = x.reshape(x.shape[0], self.cin, *self.in_hw)
        if x.ndim != 4 or x.shape[1] != self.cin:
            raise ValueError(f"{self.name}: expected (batch, {self.cin}, H, W), got {x.shape!r}")
        return x

    @staticmethod
    def _to_nchw(out, b, ho, wo):
        return np.ascontiguousarray(out.reshape(b, ho, wo, -1).transpose(0, 3, 1, 2))

    @staticmethod
    def _to_rows(t):
        """NCHW -> (b*H*W, C), the gemm output layout."""
        return t.transpose(0, 2, 3, 1).reshape(-1, t.shape[1])

    def fp(self, x, eors=None):
        self.x_shape = x.shape
        x = self._as_nchw(x)
        self.x = x
        A, (ho, wo), st = self._fp_A(x)
        self.out_hw = (ho, wo)
        y, m = self._run("fp", A, self._fp_B(), numerics.widen(self.b16), self.act,
                         self.slope16, self._predict(A, eors), structural=st)
        b = x.shape[0]
        self.mask = self._to_nchw(m, b, ho, wo).astype(bool) if self.act != "identity" else None
        return self._to_nchw(y, b, ho, wo)

    def bp(self, dz, in_act="identity", in_mask=None, in_slope16=None):
        A, (h, w), st = self._bp_A(dz)
        b = dz.shape[0]
        mask = None
        if in_act in ("relu", "leaky"):
            mask = self._to_rows(self._bp_mask(in_act, in_mask, (b, self.cin, h, w)))
        dx, _ = self._run("bp", A, self._bp_B(), None, in_act, in_slope16, mask, structural=st)
        return self._to_nchw(dx, b, h, w).reshape(self.x_shape)

    def wg(self, dz):
        dzT = np.ascontiguousarray(dz.transpose(1, 0, 2, 3).reshape(self.cout, -1))
        dW = self._wg(dz, dzT)
        return dW, self._db(dzT)


class Conv2d(_ConvBase):
    """2-D convolution, W (cout, cin, k, k), square kernel, stride and zero padding.

    Parameters
    ----------
    in_hw : tuple of int, optional
        Spatial size used to reshape a flat (batch, cin*H*W) input.
    """

    kind = "conv"

    def __init__(self, name, cin, cout, k, stride=1, padding=0, act="relu", slope=0.2,
                 in_hw=None, rng=None):
        super().__init__(name, cin, cout, k, stride, padding, act, slope, in_hw, rng,
                         (cout, cin, k, k))

    def _fp_A(self, x):
        b, c, h, w = x.shape
        A, hw = im2col(pad(x, self.p, self.p), self.k, self.s)
        return A, hw, _structural(h, w, self.k, self.s, self.p, self.p, 1, b, c)

    def _fp_B(self):
        return self.w16.reshape(self.cout, -1)

    def _bp_A(self, dz):
        b, _, ho, wo = dz.shape
        h, w = self.x.shape[2:]
        k, s, p = self.k, self.s, self.p
        rh, rw = (h + 2 * p - k) - (ho - 1) * s, (w + 2 * p - k) - (wo - 1) * s
        assert rh == rw, "square inputs only"
        A, hw = im2col(pad(dilate(dz, s), k - 1 - p, k - 1 - p + rh), k, 1)
        return A, hw, _structural(ho, wo, k, 1, k - 1 - p, k - 1 - p + rh, s, b, self.cout)

    def _bp_B(self):
        wf = self.w16[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        return np.ascontiguousarray(wf).reshape(self.cin, -1)

    def _wg(self, dz, dzT):
        cols, _ = im2col(pad(self.x, self.p, self.p), self.k, self.s)
        dW, _ = self._run("wg", dzT, np.ascontiguousarray(cols.T))
        return dW.reshape(self.w16.shape)


class ConvTranspose2d(_ConvBase):
    """Transposed convolution, W (cin, cout, k, k) as in PyTorch.

    Output size ``(H - 1) * stride - 2 * padding + k + output_padding``. FP is lowered
    by zero insertion + padding + stride-1 convolution with the flipped kernel.
    """

    kind = "tconv"

    def __init__(self, name, cin, cout, k, stride=1, padding=0, output_padding=0, act="relu",
                 slope=0.2, in_hw=None, rng=None):
        _check_pos_int("output_padding", output_padding, 0)
        if output_padding >= stride:
            raise ValueError(f"output_padding must be < stride = {stride!r}, got {output_padding!r}")
        self.op = output_padding
        super().__init__(name, cin, cout, k, stride, padding, act, slope, in_hw, rng,
                         (cin, cout, k, k))

    def describe(self):
        return {**super().describe(), "output_padding": self.op}

    def _fp_A(self, x):
        b, c, h, w = x.shape
        lo = self.k - 1 - self.p
        A, hw = im2col(pad(dilate(x, self.s), lo, lo + self.op), self.k, 1)
        return A, hw, _structural(h, w, self.k, 1, lo, lo + self.op, self.s, b, c)

    def _fp_B(self):
        wf = self.w16[:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        return np.ascontiguousarray(wf).reshape(self.cout, -1)

    def _bp_A(self, dz):
        b, _, ho, wo = dz.shape
        A, hw = im2col(pad(dz, self.p, self.p), self.k, self.s)
        return A, hw, _structural(ho, wo, self.k, self.s, self.p, self.p, 1, b, self.cout)

    def _bp_B(self):
        return self.w16.reshape(self.cin, -1)

    def _wg(self, dz, dzT):
        xT = np.ascontiguousarray(self.x.transpose(1, 0, 2, 3).reshape(self.cin, -1))
        cols, _ = im2col(pad(dz, self.p, self.p), self.k, self.s)
        dW, _ = self._run("wg", xT, np.ascontiguousarray(cols.T))
        return dW.reshape(self.w16.shape)


class Net:
    """A chain of layers; BP passes each layer the previous layer's act and mask."""

    def __init__(self, name, layers):
        if not layers:
            raise ValueError(f"Net {name!r} needs at least one layer, got {layers!r}")
        self.name, self.layers = name, list(layers)

    def add_hook(self, hook):
        for layer in self.layers:
            layer.hooks.append(hook)

    def remove_hook(self, hook):
        for layer in self.layers:
            layer.hooks.remove(hook)

    def forward(self, x, eors=None):
        for layer in self.layers:
            x = layer.fp(x, eors)
        return x

    def backward(self, dz, wg=True, need_dx=False):
        """Returns (grads {layer name: (dW16, db16)}, dx or None)."""
        grads, dx = {}, None
        for i in reversed(range(len(self.layers))):
            layer = self.layers[i]
            if wg:
                grads[layer.name] = layer.wg(dz)
            if i > 0:
                prev = self.layers[i - 1]
                dz = layer.bp(dz, prev.act, prev.mask, prev.slope16)
            elif need_dx:
                dx = layer.bp(dz)
        return grads, dx
