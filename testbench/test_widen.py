"""Fp16ToFp32 on generated Verilog: all 65,536 inputs on both simulators."""

import numpy as np
import pytest

import harness
from ganpu.arith.packed import PackedCopies
from ganpu.arith.widen import Fp16ToFp32


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_widen_exhaustive(sim, tmp_path):
    vec = tmp_path / "vectors.npz"
    np.savez(vec, i=np.arange(1 << 16, dtype=np.uint16))
    copies = 64
    harness.run(sim, PackedCopies(Fp16ToFp32, copies), "fp16_to_fp32_x64", "tb_pipe",
                env={"GANPU_VECTORS": vec, "GANPU_BLOCK": "ganpu.arith.widen:Fp16ToFp32",
                     "GANPU_COPIES": copies, "GANPU_LATENCY": Fp16ToFp32.latency})
