"""Exponent-only ReLU speculation (EORS) in hardware, bit-exact with
:mod:`ganpu.model.eors` (``docs/eors.md``).

* :class:`EorsLane`       one output's estimate, one term per cycle, no multiplier
* :class:`EorsPredictor`  ``lanes`` estimates side by side sharing the activation
* :class:`EorsSampleLfsr` the self-calibration sampler's LFSR (one output in 64)
"""

from .lane import EorsLane
from .predictor import EorsPredictor
from .sampler import EorsSampleLfsr

__all__ = ["EorsLane", "EorsPredictor", "EorsSampleLfsr"]
