"""The processor on generated Verilog against its program model, both simulators."""


import pytest

import harness
from ganpu.processor import config
from ganpu.processor.processor import Processor
from tb_processor_programs import sets_variant

# Icarus runs the "small" config with a 1K-word GBUF (every word is read back after
# each program) and few programs; Verilator a 4-core variant of "small" with more (one
# build each: a processor build is the long part of this test). Both with two buffer
# sets per core (prefetching: the builds test_fuzz_processor shares); the one-set
# scheduler runs in test_scheduler's Icarus build (and in test_eors_csr, the link's
# and the training benches, on the one-set "small").
RUNS = {
    "icarus": [dict(programs=3, tasks=8, gbuf_bits=10, sets=2)],
    "verilator": [dict(cores=4, programs=6, tasks=12, sets=2)],
}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_processor(sim):
    for run in RUNS[sim]:
        cfg = config("small")
        env = {"GANPU_SEED": 3, "GANPU_PROGRAMS": max(3, int(run["programs"] * harness.scale())),
               "GANPU_TASKS": run["tasks"]}
        cfg, name = sets_variant(*harness.processor_variant(cfg, run, env), run, env)
        harness.run(sim, Processor(cfg), name, "tb_processor", env=env)
