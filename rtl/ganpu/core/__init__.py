"""The compute core: FP16 PE array with input-zero and output-mask skipping.

Files, in dataflow order: ``descriptor`` (task format and checker), ``indexer``
(compresses rows of A: input-zero skipping), ``speculator`` (EORS: predicts the
outputs a ReLU will zero), ``scanner`` (turns outputs into jobs or direct +0 writes:
output skipping), ``lane`` (a ring of jobs around one exact FP16 MAC), ``merge``,
``epilogue`` (rounding and activation), ``core`` (buffers, host port, control).
``config`` holds :class:`CoreConfig` (lanes, buffer geometry, EORS) and :class:`Buf`;
``model`` is the bit-exact numpy reference of a task. Lowering layers to tasks is host
work and lives in :mod:`ganpu.host`.
"""

from .config import Geometry, CoreConfig, Buf, DEFAULT_CORE
from .descriptor import Op, Act, Error
from .core import Core

__all__ = ["Op", "Act", "Error", "Geometry", "CoreConfig", "DEFAULT_CORE", "Core", "Buf"]
