"""Real weight-update operands: every SGD call of a few training steps of the digits
GAN (golden model), as the update unit and the binary32 multiplier see them."""

import functools

import numpy as np

from ganpu import numerics


@functools.lru_cache(maxsize=2)
def sgd_calls(steps=3, net="mlp", batch=32, seed=0):
    """One dict per tensor per SGD call over ``steps`` training steps: ``hyper``
    (``SGD.hyper_bits``), the flattened bits ``w``, ``v`` (binary32) and ``g`` (binary16)
    the update reads, and ``w_new``, ``v_new``, ``w16_new`` the golden optimizer left."""
    from ganpu.gan.train import GAN, TrainConfig
    gan = GAN(TrainConfig(net=net, batch=batch, seed=seed))
    calls = []

    def recorder(opt, step):
        def record(layers, grads):
            before = []
            for layer in layers:
                if layer.name not in grads:
                    continue
                for attr, g in zip(("w32", "b32"), grads[layer.name]):
                    w = getattr(layer, attr).view(np.uint32).ravel().copy()
                    v = opt.v.get((layer.name, attr))
                    v = (np.full(w.shape, numerics.FP32_NEG_ZERO, np.uint32) if v is None
                         else v.view(np.uint32).ravel().copy())
                    before.append((layer, attr, dict(
                        name=f"step{gan.steps} {gan.phase_tag} {layer.name}.{attr}",
                        hyper=opt.hyper_bits, w=w, v=v,
                        g=np.asarray(g, np.uint16).ravel().copy())))
            step(layers, grads)
            for layer, attr, call in before:
                call["w_new"] = getattr(layer, attr).view(np.uint32).ravel().copy()
                call["v_new"] = opt.v[(layer.name, attr)].view(np.uint32).ravel().copy()
                call["w16_new"] = getattr(layer, attr[0] + "16").ravel().copy()
                calls.append(call)
        return record

    for opt in (gan.opt_d, gan.opt_g):
        opt.step = recorder(opt, opt.step)
    for _ in range(steps):
        gan.step()
    return calls


def mul_operands(calls):
    """The binary32 products of those updates, as ``(a, b)`` bit arrays: mu x v,
    widen(g) x inv_scale and lr x v_new."""
    a, b = [], []
    for c in calls:
        h = c["hyper"]
        for x, y in ((c["v"], h["mu"]), (numerics.widen(c["g"]), h["inv_scale"]),
                     (c["v_new"], h["lr"])):
            a.append(np.asarray(x, np.uint32))
            b.append(np.full(len(x), y, np.uint32))
    return np.concatenate(a), np.concatenate(b)
