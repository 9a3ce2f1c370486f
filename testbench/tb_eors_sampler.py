"""cocotb bench for :class:`ganpu.eors.sampler.EorsSampleHash`: drives the per-cycle
``valid``/``key``/``word`` of GANPU_VECTORS (.npz) and checks ``sample`` after every
cycle against the expectations saved beside them (the block's model)."""

import os

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


@cocotb.test()
async def sampler_matches_model(dut):
    vec = np.load(os.environ["GANPU_VECTORS"], allow_pickle=True)
    valid, keys, words, want = vec["valid"], vec["key"], vec["word"], vec["exp_sample"]
    dut.rst.value = 0
    dut.valid.value = 0
    dut.key.value = 0
    dut.word.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)
    await FallingEdge(dut.clk)       # the pipeline holds zeros
    for c in range(len(valid)):
        dut.valid.value = int(valid[c])
        dut.key.value = int(keys[c])
        dut.word.value = int(words[c])
        await FallingEdge(dut.clk)
        got = int(dut.sample.value)
        assert got == int(want[c]), f"cycle {c}: sample = {got:#x}, expected {int(want[c]):#x}"
    dut._log.info("%d cycles, %d words: every sample exact", len(valid), int(valid.sum()))
