"""The two reference GANs. ReLU hidden layers in G and D; G's last layer is identity
(tanh on the host), D's last layer is identity (sigmoid inside the host loss)."""

import numpy as np

from ..model import FC, Conv2d, ConvTranspose2d, Net

__all__ = ["build_gan", "NETS", "ZDIM"]

NETS = ("mlp", "conv")
ZDIM = 16


def build_gan(net, rng):
    """(G, D) for ``net`` in {"mlp", "conv"}, weights drawn from ``rng``.

    mlp:  G z16 -> 64 ReLU -> 128 ReLU -> 64;   D 64 -> 128 ReLU -> 64 ReLU -> 1
    conv: G z16 -> FC 128 ReLU (32x2x2) -> TConv 32->16 k4 s2 p1 ReLU (4x4)
                 -> TConv 16->1 k4 s2 p1 (8x8);
          D 1x8x8 -> Conv 1->16 k4 s2 p1 ReLU (4x4) -> Conv 16->32 k4 s2 p1 ReLU (2x2)
                 -> FC 128 -> 1
    """
    if net == "mlp":
        G = Net("G", [FC("fc1", ZDIM, 64, rng=rng), FC("fc2", 64, 128, rng=rng),
                      FC("fc3", 128, 64, act="identity", rng=rng)])
        D = Net("D", [FC("fc1", 64, 128, rng=rng), FC("fc2", 128, 64, rng=rng),
                      FC("fc3", 64, 1, act="identity", rng=rng)])
    elif net == "conv":
        G = Net("G", [FC("fc1", ZDIM, 128, rng=rng),
                      ConvTranspose2d("tconv2", 32, 16, 4, 2, 1, in_hw=(2, 2), rng=rng),
                      ConvTranspose2d("tconv3", 16, 1, 4, 2, 1, act="identity", rng=rng)])
        D = Net("D", [Conv2d("conv1", 1, 16, 4, 2, 1, in_hw=(8, 8), rng=rng),
                      Conv2d("conv2", 16, 32, 4, 2, 1, rng=rng),
                      FC("fc3", 128, 1, act="identity", rng=rng)])
    else:
        raise ValueError(f"net must be one of {NETS!r}, got {net!r}")
    return G, D
