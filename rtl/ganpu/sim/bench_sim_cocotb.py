"""cocotb side of ``ganpu bench sim`` (:mod:`ganpu.sim.bench_sim`): the synthetic
program on the processor through the cocotb bus transport, timed.

Environment: GANPU_BENCHFILE (pickle ``{"cfg", "cycles"}``), GANPU_RESULTS (JSON out:
``{"cycles", "seconds", "cpu_seconds"}`` from start to DONE, summed over runs until
``cycles``; CPU seconds of the simulator's process, which runs cocotb too).
"""

import json
import os
import pickle
import time

import cocotb
import numpy as np

from ganpu.processor.program import Policy
from ganpu.sim.bench_sim import synthetic_program
from ganpu.sim.cocotb_bus import attach


@cocotb.test()
async def timed_runs(dut):
    case = pickle.loads(open(os.environ["GANPU_BENCHFILE"], "rb").read())
    cfg = case["cfg"]
    drv, t = await attach(dut, cfg)
    gbuf, records = synthetic_program(cfg)
    await drv.write_gbuf(0, gbuf)
    await drv.load_program(records)
    cycles = seconds = cpu = 0.0
    while cycles < case["cycles"]:
        c0, t0, p0 = t.cycles, time.perf_counter(), time.process_time()
        await drv.run(None, Policy.TEMPORAL, polls=10**6, interval=64)
        cycles += t.cycles - c0
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - p0
    got = np.asarray(await drv.read_gbuf(0, cfg.gbuf_depth))
    from ganpu.processor.processor import Processor
    _, _, _, want = Processor.model(cfg, gbuf.copy(), records)
    assert np.array_equal(got, want), "the program's GBUF differs from Processor.model"
    with open(os.environ["GANPU_RESULTS"], "w") as f:
        json.dump({"cycles": int(cycles), "seconds": seconds, "cpu_seconds": cpu}, f)
