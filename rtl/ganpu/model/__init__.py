"""Golden numpy model of the accelerator's training arithmetic.

One concern per module:

* :mod:`.gemm` -- the single primitive every layer phase lowers to, and its epilogue.
* :mod:`.layers` -- FC, Conv2d and ConvTranspose2d layers lowered to :func:`gemm`.
* :mod:`.sgd` -- SGD with momentum on binary32 masters.
* :mod:`.eors` -- the exponent-only ReLU speculation (EORS) predictor, bit-exact.
* :mod:`.work` -- MAC accounting (dense, input-skip, dual-skip, structural zeros).
"""

from .gemm import gemm, epilogue, ACTS, PHASES
from .eors import EorsParams, DEFAULT_EORS, eors_acc, eors_mask
from .layers import FC, Conv2d, ConvTranspose2d, Net
from .sgd import SGD
from .work import WorkLog

__all__ = ["gemm", "epilogue", "ACTS", "PHASES", "EorsParams", "DEFAULT_EORS",
           "eors_acc", "eors_mask", "FC", "Conv2d", "ConvTranspose2d", "Net", "SGD",
           "WorkLog"]
