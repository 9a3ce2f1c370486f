"""The DMA's transpose buffer on generated Verilog against :meth:`Transpose.model`, both
simulators (Icarus W = 4, Verilator W = 8): runs of random vectors and of real
GBUF words (the MLP GAN's fp16 weights, read down their columns as the DMA reads a
transposed operand), with idle cycles between steps and restarts between runs; and
the parameter messages."""

import pickle

import numpy as np
import pytest

import harness
from ganpu.gan import GAN, TrainConfig
from ganpu.processor.transpose import Transpose

WORDS = {"icarus": (4,), "verilator": (8,)}
RUNS = {"icarus": 4, "verilator": 12}


def _real(W, rng):
    """Column vectors of a weight matrix as the DMA reads them: W consecutive rows of
    one column per step, column after column, band after band."""
    w = GAN(TrainConfig()).G.layers[1].w16          # (128, 64)
    r0 = int(rng.integers(0, w.shape[0] // W - 1)) * W      # two whole bands
    band = w[r0:r0 + 2 * W]
    return np.concatenate([band[:W].T, band[W:].T])  # two bands of 64 columns


def case(sim, W, rng):
    runs = []
    for i in range(max(2, int(RUNS[sim] * harness.scale()))):
        S = W * int(rng.integers(2, 9)) + int(rng.integers(0, W))   # a partial last block
        runs.append({"name": f"random {i}", "p": (1.0, 0.6)[i % 2],
                     "vectors": rng.integers(0, 1 << 16, (S, W))})
    runs.append({"name": "real", "p": 1.0, "vectors": _real(W, rng)})
    runs.append({"name": "real, gaps", "p": 0.7, "vectors": _real(W, rng)})
    return {"words": W, "runs": runs}


def test_model():
    """Row i of each block's transpose comes out W steps after its column i went in."""
    W = 4
    x = np.arange(3 * W * W).reshape(3 * W, W)
    out = Transpose.model(x, W)
    for b in range(2):
        block = x[b * W:(b + 1) * W].T                   # columns in -> the block
        np.testing.assert_array_equal(out[b * W:(b + 1) * W], block)


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_transpose(sim, tmp_path):
    rng = np.random.default_rng(12)
    for W in WORDS[sim]:
        path = tmp_path / f"case{W}.pkl"
        path.write_bytes(pickle.dumps(case(sim, W, rng)))
        harness.run(sim, Transpose(W), f"ganpu_transpose_w{W}", "tb_transpose",
                    env={"GANPU_CASE": path})


def test_transpose_parameters():
    with pytest.raises(ValueError, match=r"words must be in 2\.\.16, not 1"):
        Transpose(1)
    with pytest.raises(ValueError, match=r"words must be a power of two, not 6"):
        Transpose(6)
    with pytest.raises(TypeError, match=r"words must be an int, not 4\.0"):
        Transpose(4.0)
    with pytest.raises(ValueError, match=r"width must be in >= 1, not 0"):
        Transpose(4, 0)
