"""Export of real layer tensors from the reference GANs (for tests and hardware benches).

:func:`export_layers` returns ``{key: record}`` with one record per gemm of the
recorded training steps, key ``"s{step}/{pass}/{net}.{layer}/{phase}"``: ``pass`` is
``d_update`` or ``g_update``, ``net`` is ``G`` or ``D``, ``phase`` one of ``fp``,
``bp``, ``wg``, ``db``. A record holds

* ``A`` uint16 (M, K), ``B`` uint16 (N, K), ``init`` uint32 (N,) (bias, or all
  0x80000000): the :func:`ganpu.model.gemm` operands;
* ``acc`` uint32 (M, N): the gemm result; ``out`` uint16 (M, N): the epilogue result;
* ``mask_in`` bool (M, N) or None (FP: EORS prediction; BP: stored FP mask);
  ``mask_out`` bool (M, N);
* ``act`` ("identity"/"relu"/"leaky"), ``epi_phase`` (fp/bp/wg: the epilogue's phase),
  ``slope16`` (int or None), ``structural`` (count of structural zeros in A),
  ``kind`` ("fc"/"conv"/"tconv"), ``layer_act`` (the layer's own FP activation; ``act`` is the
  epilogue's, e.g. the previous layer's in BP), ``w_shape`` and the layer's shape fields (``fin``/``fout`` or
  ``cin``/``cout``/``k``/``stride``/``padding``), ``step``.

Replaying ``out, mask_out = epilogue(gemm(A, B, init), act, slope16, mask_in,
phase=epi_phase)`` reproduces every record bit for bit.
"""

import json

import numpy as np

from .. import numerics
from ..model import EorsParams
from .train import GAN, TrainConfig

__all__ = ["export_layers", "save_export"]


def _recorder(gan, out, step, netname):
    def hook(layer, phase, t):
        key = f"s{step}/{gan.phase_tag}/{netname}.{layer.name}/{phase}"
        N = t["B"].shape[0]
        init = t["init"] if t["init"] is not None else np.full(N, numerics.FP32_NEG_ZERO, np.uint32)
        rec = {"A": t["A"].copy(), "B": t["B"].copy(), "init": init.copy(),
               "acc": t["acc"], "out": t["out"],
               "mask_in": None if t["mask_in"] is None else np.asarray(t["mask_in"], bool).copy(),
               "mask_out": t["mask_out"], "act": t["act"], "slope16": t["slope16"],
               "epi_phase": "wg" if phase in ("wg", "db") else phase,
               "structural": int(t["structural"]), "step": step, **layer.describe()}
        out[key] = rec
    return hook


def export_layers(net="mlp", steps=(0,), batch=32, seed=0, eors=None):
    """Record every gemm of the training steps listed in ``steps``.

    Parameters
    ----------
    net : {"mlp", "conv"}
    steps : iterable of int
        0-based step indices to record (0 = the first step, from the initial weights);
        the GAN is trained through the steps in between.
    batch, seed : int
    eors : EorsParams or None
        EORS for FP of ReLU layers (also during the training steps in between).

    Returns
    -------
    dict
        ``{key: record}`` as described in the module doc.
    """
    steps = sorted(set(int(s) for s in steps))
    if not steps or steps[0] < 0:
        raise ValueError(f"steps must be non-negative step indices, got {steps!r}")
    gan = GAN(TrainConfig(net=net, batch=batch, seed=seed, eors=eors))
    out = {}
    for s in range(steps[-1] + 1):
        if s in steps:
            hooks = [(n, _recorder(gan, out, s, n.name)) for n in (gan.G, gan.D)]
            for n, h in hooks:
                n.add_hook(h)
            gan.step()
            for n, h in hooks:
                n.remove_hook(h)
        else:
            gan.step()
    return out


def save_export(path, records=None, **kwargs):
    """Write an export to ``path`` (.npz): arrays as ``"{key}|{field}"``, the scalar
    fields as JSON in ``"{key}|meta"``. ``records`` defaults to
    ``export_layers(**kwargs)``. Returns the path."""
    if records is None:
        records = export_layers(**kwargs)
    arrays = {}
    for key, rec in records.items():
        meta = {}
        for f, v in rec.items():
            if isinstance(v, np.ndarray):
                arrays[f"{key}|{f}"] = v
            else:
                meta[f] = v
        arrays[f"{key}|meta"] = np.array(json.dumps(meta))
    np.savez_compressed(path, **arrays)
    return path
