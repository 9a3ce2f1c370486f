"""cocotb bench for :class:`ganpu.eors.sampler.EorsSampleLfsr`: drives the per-cycle
``step``/``load``/``seed`` of GANPU_VECTORS (.npz) and checks ``state`` and ``sample``
after every cycle against the expectations saved beside them (the block's model)."""

import os

import numpy as np

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge


@cocotb.test()
async def sampler_matches_model(dut):
    vec = np.load(os.environ["GANPU_VECTORS"], allow_pickle=True)
    steps, loads, seeds = vec["step"], vec["load"], vec["seed"]
    want_state, want_sample = vec["exp_state"], vec["exp_sample"]
    dut.rst.value = 0
    dut.step.value = 0
    dut.load.value = 0
    dut.seed.value = 0
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    await FallingEdge(dut.clk)
    for c in range(len(steps)):
        dut.step.value = int(steps[c])
        dut.load.value = int(loads[c])
        dut.seed.value = int(seeds[c])
        await FallingEdge(dut.clk)
        got = (int(dut.state.value), int(dut.sample.value))
        want = (int(want_state[c]), int(want_sample[c]))
        assert got == want, f"cycle {c}: (state, sample) = {got}, expected {want}"
    dut._log.info("%d cycles, %d steps: state and sample exact", len(steps), int(steps.sum()))
