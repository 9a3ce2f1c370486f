"""GAN quality score: a digit classifier trained on real digits scores samples.

Metrics for a set of images X (float, (n, 64) in [-1, 1]):

* ``confidence``: mean of the classifier's max class probability;
* ``classes``: number of distinct classes among confident predictions (p >= 0.5);
* ``fd``: Frechet distance between Gaussians fitted to the classifier's hidden-layer
  features of X and of the classifier's training digits (lower is better).
"""

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from .data import load_digits_scaled

__all__ = ["DigitScorer", "frechet"]


def frechet(f1, f2):
    """Frechet distance between Gaussian fits of two feature sets (rows = samples)."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    # Tr sqrt(s1 s2) = sum sqrt(eig(sqrt(s1) s2 sqrt(s1))), symmetric PSD: stable
    ev, U = np.linalg.eigh(s1)
    r1 = (U * np.sqrt(np.clip(ev, 0, None))) @ U.T
    cross = np.sqrt(np.clip(np.linalg.eigvalsh(r1 @ s2 @ r1), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * cross)


class DigitScorer:
    """MLP digit classifier (64 hidden ReLU units) on 1500 shuffled real digits; the
    remaining 297 are the held-out real reference.

    Parameters
    ----------
    seed : int
        Fixes the shuffle and the classifier's initialisation.
    """

    def __init__(self, seed=0):
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        X, y = load_digits_scaled()
        perm = np.random.default_rng(seed).permutation(len(X))
        tr, ho = perm[:1500], perm[1500:]
        self.X_train, self.X_heldout, self.y_heldout = X[tr], X[ho], y[ho]
        self.clf = MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=seed)
        with warnings.catch_warnings():
            # convergence to a tolerance does not matter for a fixed-seed scorer
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.clf.fit(X[tr], y[tr])
        self.ref_features = self.features(self.X_train)

    def features(self, X):
        return np.maximum(np.asarray(X, np.float64) @ self.clf.coefs_[0] + self.clf.intercepts_[0], 0)

    def score(self, X):
        """{"confidence", "classes", "fd"} for images X (n, 64)."""
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        if X.shape[1] != 64:
            raise ValueError(f"expected 64 pixels per image, got shape {X.shape!r}")
        proba = self.clf.predict_proba(X)
        conf = proba.max(1)
        classes = len(np.unique(proba.argmax(1)[conf >= 0.5]))
        return {"confidence": float(conf.mean()), "classes": int(classes),
                "fd": frechet(self.features(X), self.ref_features)}

    def noise(self, n, seed=0):
        return np.random.default_rng(seed).uniform(-1, 1, (n, 64)).astype(np.float32)
