"""IEEE binary16/binary32 arithmetic pipelines, each with a bit-exact numpy model.

All blocks here are free-running pipelines: the result for the operands presented at
cycle t appears on the output at cycle t + ``latency``. They carry no handshake, which
keeps them cheap inside the PE array; :class:`ganpu.arith.lanes.Lanes` packs copies side
by side for fast wide testbenches.
"""

from .widen import Fp16ToFp32

__all__ = ["Fp16ToFp32"]
