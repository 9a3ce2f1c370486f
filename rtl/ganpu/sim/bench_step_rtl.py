"""cocotb bench behind ``ganpu bench step`` (without ``--model``): one training step of
the MLP GAN on the processor, once per policy, through the package's driver
(``docs/astm.md``).

The host side is :func:`ganpu.host.compiler.run_step_driver` (the pauses' work in the
same float32 as ``GAN.step``); after each step every tensor is read back and compared,
word for word, with the program model's step (:func:`ganpu.host.compiler.run_step`)
on the same initial GAN. Every cycle the ``state`` and ``sched_trace`` ports are
sampled: cycles spent PAUSED (host time, which the CYCLES counter includes) and each
core's dispatch and completion of each task, for the Gantt chart.

Environment: GANPU_STEPFILE (a pickle of ``{"cfg", "train", "policies", "hidden"}``:
``hidden`` the GAN's hidden widths, :func:`ganpu.bench_step.mlp_gan`),
GANPU_RESULTS (JSON written here: per policy the counters, the paused cycles, the
segments ``(task, core, dispatch, complete)`` and the bit-exact verdict).
"""

import json
import os
import pickle

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.triggers import FallingEdge

from ganpu.bench_step import mlp_gan
from ganpu.host.compiler import compile_gan, run_step, run_step_driver
from ganpu.processor.program import Policy, State
from ganpu.processor.scheduler import trace_layout
from ganpu.sim.cocotb_bus import attach


class _Trace:
    """Per-cycle sampling of ``state`` and ``sched_trace``."""

    def __init__(self, dut, cfg):
        self.dut, self.cfg = dut, cfg
        self.layout = trace_layout(cfg)
        self.cycle = 0
        self.paused = 0
        self.start = None
        self.open = {}
        self.segments = []
        self.running = True
        cocotb.start_soon(self.watch())

    async def watch(self):
        while self.running:
            await FallingEdge(self.dut.clk)
            self.cycle += 1
            state = int(self.dut.state.value)
            if state == State.PAUSED.value:
                self.paused += 1
            if self.start is None and state in (State.CHECKING.value, State.RUNNING.value):
                self.start = self.cycle
            bits = int(self.dut.sched_trace.value)
            if not bits:
                continue
            tr = data.Const(self.layout, bits)
            for c in range(self.cfg.cores):
                e = tr[c]
                # a core holds its tasks in dispatch order (two with two buffer sets)
                # and completes them in that order
                if e.complete and self.open.get(c):
                    t, start = self.open[c].pop(0)
                    self.segments.append((t, c, start, self.cycle))
                if e.dispatch:
                    self.open.setdefault(c, []).append((int(e.task), self.cycle))


@cocotb.test()
async def step(dut):
    with open(os.environ["GANPU_STEPFILE"], "rb") as f:
        job = pickle.load(f)
    cfg, train, hidden = job["cfg"], job["train"], job.get("hidden")
    drv, _ = await attach(dut, cfg)
    program = compile_gan(cfg, mlp_gan(train, hidden))
    _, want = run_step(program, mlp_gan(train, hidden))
    results = {}
    for name in job["policies"]:
        trace = _Trace(dut, cfg)
        losses, image, counters = await run_step_driver(drv, program, mlp_gan(train, hidden),
                                                        Policy[name.upper()])
        trace.running = False
        bad = [n for n, (b, s) in program.tensors.items()
               if not np.array_equal(image[b:b + int(np.prod(s))], want[b:b + int(np.prod(s))])]
        assert not bad, f"{name}: tensors differ from the program model's step: {bad[:10]}"
        t0 = trace.start or 0
        results[name] = {"counters": counters, "paused_cycles": trace.paused,
                         "segments": [(t, c, a - t0, b - t0) for t, c, a, b in trace.segments], "bit_exact": True, "losses": losses}
        dut._log.info("%s: %s, %d cycles paused, every tensor bit-exact", name, counters,
                      trace.paused)
    with open(os.environ["GANPU_RESULTS"], "w") as f:
        json.dump(results, f)
