"""The compute core: FP16 PE array with input-zero and output-mask skipping.

Files, in dataflow order: ``descriptor`` (task format and checker), ``indexer``
(compresses rows of A: input-zero skipping), ``speculator`` (EORS: predicts the
outputs a ReLU will zero), ``scanner`` (turns outputs into jobs or direct +0 writes:
output skipping), ``lane`` (a ring of jobs around one exact FP16 MAC), ``merge``,
``epilogue`` (rounding and activation), ``core`` (buffers, host port, control).
``model`` is the bit-exact numpy reference of a task; ``lower`` and ``tasks`` turn
layers and golden-model records into tasks.
"""

from .descriptor import Op, Act, Error, Geometry
from .core import Core, Buf

__all__ = ["Op", "Act", "Error", "Geometry", "Core", "Buf"]
