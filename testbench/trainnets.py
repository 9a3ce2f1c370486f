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
# EORS runs on them as on plain cores, so one build serves both). Its host port is 2
# elements wide, narrower than a BW word of 4 EORS lanes (``small`` has both 4): the
# DMA's transposed BW pass then writes several parts of one BW word, the lane offset
# within a P-group that a W = P config never exercises (``docs/processor.md``, DMA)
_SMALL = config("small")
CFG = dataclasses.replace(_SMALL, gbuf_bits=13, program_bits=6, core=dataclasses.replace(
    _SMALL.core, geom=dataclasses.replace(_SMALL.core.geom, bias_bits=6),
    eors=EorsParams(threshold=0, rel=9), eors_sample_log2=2, host_words=2))


def transposed_bw(cfg, records):
    """``(n, k)`` of each EORS record of ``records`` whose BW pass the DMA walks
    transposed (:meth:`ganpu.processor.dma.Dma.pass_mode`), for the tests to assert that
    they still cover that pass."""
    from ganpu.processor.dma import Dma
    return [(r["n"], r["k"]) for r in records if r.get("eors") and Dma.pass_mode(
        cfg, r["n"], r["k"], r["b"]["s0"], r["b"]["s1"], bw=True)[0] == "transposed"]


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
