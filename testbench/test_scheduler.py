"""The scheduler's ADAPTIVE regimes on the processor's generated Verilog, both
simulators (bench ``tb_scheduler``). The processors are test_processor's (same config,
same build name): the build is shared, only the programs are new."""


import pytest

import harness
from ganpu.processor import config
from ganpu.processor.processor import Processor

# Icarus: the 2-core "small" with a 1K-word GBUF; Verilator: its 4-core variant
RUNS = {"icarus": dict(gbuf_bits=10, programs=1, tasks=6),
        "verilator": dict(cores=4, programs=2, tasks=10)}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_adaptive_regimes(sim):
    run = RUNS[sim]
    cfg = config("small")
    env = {"GANPU_SEED": 5, "GANPU_PROGRAMS": max(1, int(run["programs"] * harness.scale())),
           "GANPU_TASKS": run["tasks"]}
    cfg, name = harness.processor_variant(cfg, run, env)
    harness.run(sim, Processor(cfg), name, "tb_scheduler", env=env)
