"""A GAN small enough for the ``small`` processor config's GBUF with the weight update
on the device: the digits data and noise of the reference GANs, layers 16 -> 4 -> 64
(G) and 64 -> 4 -> 1 (D); with ``eors`` its two ReLU layers use EORS."""

import dataclasses

import numpy as np

from ganpu.gan import GAN, TrainConfig
from ganpu.model import FC, Net
from ganpu.model.eors import EorsParams, EorsCalibrator, ONE_SETTING
from ganpu.processor import config

# the "small" config with an 8K-word GBUF (the step with masters and momenta needs
# ~5K), 64 bias words (G's output layer) and a 64-record table; its cores predict in
# scale-aware mode and sample 1 in 4 (the EORS self-calibration test; a GAN without
# EORS runs on them as on plain cores, so one build serves both)
_SMALL = config("small")
CFG = dataclasses.replace(_SMALL, gbuf_bits=13, program_bits=6, core=dataclasses.replace(
    _SMALL.core, geom=dataclasses.replace(_SMALL.core.geom, bias_bits=6),
    eors=EorsParams(threshold=0, rel=9), eors_sample_log2=2))


def calibrator():
    """The calibration test's policy: the one setting's rules at CFG's rate, with
    evidence scaled down to the tiny GAN's few outputs per step and the point rules
    (no confidence bounds: a step's handful of samples never clears one) so levels move."""
    return EorsCalibrator(CFG.core.eors, rate_log2=CFG.core.eors_sample_log2, q_min=1,
                          evidence=0.05, **{**ONE_SETTING, "fz_conf": 0, "recall_conf": 0})


def tiny_gan(seed=0, batch=2, eors=None):
    gan = GAN(TrainConfig(batch=batch, seed=seed, eors=eors))
    rng = np.random.default_rng(seed)
    gan.G = Net("G", [FC("fc1", 16, 4, rng=rng), FC("fc2", 4, 64, act="identity", rng=rng)])
    gan.D = Net("D", [FC("fc1", 64, 4, rng=rng), FC("fc2", 4, 1, act="identity", rng=rng)])
    return gan
