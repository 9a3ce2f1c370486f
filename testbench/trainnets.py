"""A GAN small enough for the ``small`` processor config's GBUF with the weight update
on the device: the digits data and noise of the reference GANs, layers 16 -> 4 -> 64
(G) and 64 -> 4 -> 1 (D)."""

import dataclasses

import numpy as np

from ganpu.gan import GAN, TrainConfig
from ganpu.model import FC, Net
from ganpu.processor import config

# the "small" config with an 8K-word GBUF (the step with masters and momenta needs
# ~5K), 64 bias words (G's output layer) and a 64-record table
_SMALL = config("small")
CFG = dataclasses.replace(_SMALL, gbuf_bits=13, program_bits=6, core=dataclasses.replace(
    _SMALL.core, geom=dataclasses.replace(_SMALL.core.geom, bias_bits=6)))


def tiny_gan(seed=0, batch=2):
    gan = GAN(TrainConfig(batch=batch, seed=seed))
    rng = np.random.default_rng(seed)
    gan.G = Net("G", [FC("fc1", 16, 4, rng=rng), FC("fc2", 4, 64, act="identity", rng=rng)])
    gan.D = Net("D", [FC("fc1", 64, 4, rng=rng), FC("fc2", 4, 1, act="identity", rng=rng)])
    return gan
