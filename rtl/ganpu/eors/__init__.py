"""Exponent-only ReLU speculation (EORS) in hardware, bit-exact with
:mod:`ganpu.model.eors` (``docs/eors.md``).

* :class:`EorsLane`       one output's estimate, one term per cycle, no multiplier
* :class:`EorsPredictor`  ``lanes`` estimates side by side sharing the activation
* :class:`EorsSampleHash` the self-calibration sampler (one output in 2**r, stateless)
"""

from .lane import EorsLane
from .predictor import EorsPredictor
from .sampler import EorsSampleHash

__all__ = ["EorsLane", "EorsPredictor", "EorsSampleHash"]
