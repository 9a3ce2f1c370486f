"""The default dataset: sklearn's load_digits, scaled to [-1, 1]."""

import numpy as np
from sklearn.datasets import load_digits

__all__ = ["load_digits_scaled"]


def load_digits_scaled():
    """(X, y): X float32 (1797, 64) in [-1, 1] (pixels 0..16 -> x/8 - 1), y int labels."""
    d = load_digits()
    return (d.data / 8.0 - 1.0).astype(np.float32), d.target.astype(np.int64)
