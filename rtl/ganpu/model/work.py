"""Oracle work accounting per layer and phase (``docs/model-report.md``).

For one gemm ``(M, N, K)`` with streamed operand ``A`` (M, K), stationary ``B``
(N, K) and a boolean ``live`` (M, N) of outputs that must be computed:

* ``dense``       = M * N * K
* ``input_skip``  = terms with ``A[m, k] != 0``            = nnz(A) * N
* ``dual_skip``   = those terms of live outputs only       = sum_{m,n live} nnz(A[m, :])
* ``formed``      = terms with both operands nonzero (what :func:`gemm` really adds)
* ``structural``  = terms whose ``A[m, k]`` is a structural zero (padding or the
  zero insertion of a transposed convolution), counted separately; they are also
  among the zeros input skipping removes.

``live`` is the EORS prediction in FP (all True when EORS is off or the activation
is not ReLU), the exact stored FP mask in BP of a ReLU input, all True in WG.
"""

from collections import OrderedDict

import numpy as np

from .. import numerics

__all__ = ["WorkLog", "count"]

FIELDS = ("dense", "input_skip", "dual_skip", "formed", "structural")


def count(A, B, live=None, structural=0):
    """Work of one gemm as a dict of MAC counts (see the module doc).

    Parameters
    ----------
    A, B : ndarray of uint16
        The gemm operands, shapes (M, K) and (N, K).
    live : ndarray of bool, shape (M, N), optional
        Outputs that must be computed (None = all).
    structural : int
        Number of structural-zero entries in ``A``.
    """
    M, K = A.shape
    N = B.shape[0]
    anz = ~numerics.is_zero16(A)
    bnz = ~numerics.is_zero16(B)
    row_nnz = anz.sum(axis=1).astype(np.int64)
    dual = int(row_nnz.sum()) * N if live is None else int((row_nnz[:, None] * live).sum())
    formed = int(anz.sum(axis=0).astype(np.int64) @ bnz.sum(axis=0).astype(np.int64))
    return {"dense": M * N * K, "input_skip": int(row_nnz.sum()) * N, "dual_skip": dual,
            "formed": formed, "structural": int(structural) * N}


class WorkLog:
    """Accumulates :func:`count` results keyed by ``(layer, phase)``."""

    def __init__(self):
        self.rows = OrderedDict()

    def add(self, layer, phase, counts):
        row = self.rows.setdefault((layer, phase), dict.fromkeys(FIELDS, 0))
        for f in FIELDS:
            row[f] += counts[f]

    def totals(self, phase=None):
        """Sum over layers (optionally only one phase, e.g. ``"fp"``)."""
        tot = dict.fromkeys(FIELDS, 0)
        for (_, ph), row in self.rows.items():
            if phase is None or ph == phase:
                for f in FIELDS:
                    tot[f] += row[f]
        return tot
