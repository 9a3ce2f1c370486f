"""The compute core: FP16 PE array with input-zero and output-mask skipping
(``docs/core.md``).

Files, in dataflow order:

* ``config``       :class:`CoreConfig` (lanes, buffer geometry, EORS), :class:`Buf`,
                   parameter checks
* ``ports``        the core's two ports as signatures: ``HostPort``, ``TaskPort``
* ``buffers``      the block RAM behind each buffer and its port signatures
* ``descriptor``   the task format, its enums and error codes, the ``DescriptorChecker``
* ``indexer``      compresses rows of A (input-zero skipping)
* ``speculator``   EORS: predicts the outputs a ReLU will zero
* ``scanner``      turns outputs into jobs or direct +0 writes (output skipping)
* ``distributor``  hands jobs to the lanes
* ``lane``         a ring of jobs around one exact FP16 MAC
* ``merge``        round-robin merge of the lanes' and the skipped results
* ``epilogue``     rounding and activation
* ``host_mux``     the host port's side of the buffers
* ``core``         memories, blocks and task control
* ``model``        the bit-exact numpy reference of a task

Lowering layers to tasks is host work and lives in :mod:`ganpu.host`.
"""

from .config import Geometry, CoreConfig, Buf, DEFAULT_CORE
from .descriptor import Op, Act, Error
from .ports import HostPort, TaskPort
from .core import Core

__all__ = ["Op", "Act", "Error", "Geometry", "CoreConfig", "DEFAULT_CORE", "Core", "Buf",
           "HostPort", "TaskPort"]
