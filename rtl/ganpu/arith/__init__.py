"""IEEE binary16/binary32 arithmetic pipelines, each with a bit-exact numpy model.

All blocks here are free-running pipelines: the result for the operands presented at
cycle t appears on the output at cycle t + ``latency``. They carry no handshake, which
keeps them cheap inside the PE array; :class:`ganpu.arith.packed.PackedCopies` packs
copies side by side for fast wide testbenches (a test port packer, not a MAC lane).

* :class:`Fp16ToFp32`  exact widening (latency 1)
* :class:`Fp32ToFp16`  RNE narrowing (latency 2)
* :class:`Fp16Mul`     exact fp16 x fp16 -> fp32 product (latency 3, one multiplier)
* :class:`Fp32Add`     RNE fp32 addition (latency 6)
* :class:`Fp16Mac`     interleaved ``fp32 += fp16 x fp16`` over ``slots`` = 6 sums
"""

from .widen import Fp16ToFp32
from .narrow import Fp32ToFp16
from .mul import Fp16Mul
from .add import Fp32Add
from .mac import Fp16Mac

__all__ = ["Fp16ToFp32", "Fp32ToFp16", "Fp16Mul", "Fp32Add", "Fp16Mac"]
