"""Fp16ToFp32 on generated Verilog: all 65,536 inputs on both simulators."""

import numpy as np
import pytest

import harness
from ganpu.arith.lanes import Lanes
from ganpu.arith.widen import Fp16ToFp32


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_widen_exhaustive(sim, tmp_path):
    vec = tmp_path / "vectors.npz"
    np.savez(vec, i=np.arange(1 << 16, dtype=np.uint16))
    lanes = 64
    harness.run(sim, Lanes(Fp16ToFp32, lanes), "fp16_to_fp32_x64", "tb_pipe",
                env={"GANPU_VECTORS": vec, "GANPU_BLOCK": "ganpu.arith.widen:Fp16ToFp32",
                     "GANPU_LANES": lanes, "GANPU_LATENCY": Fp16ToFp32.latency})
