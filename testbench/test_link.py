"""LinkedProcessor on generated Verilog: the real driver over the link, the faults of
``docs/link.md`` and the link's throughput. Icarus runs the driver and program test
only; Verilator runs everything."""

import dataclasses

import pytest

import harness
from ganpu.link.system import LinkedProcessor
from ganpu.processor import config

TIMEOUT = 400   # the framer's link timeout in cycles for these benches

# Icarus: the driver and program test on "small" with a 1K-word GBUF (the bench reads
# every word back); Verilator: every test on "small"
RUNS = {"icarus": dict(testcase="driver_and_program", gbuf_bits=10),
        "verilator": dict(testcase=None, gbuf_bits=None)}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_link(sim, tmp_path):
    run = RUNS[sim]
    cfg = config("small")
    name = "ganpu_linked_processor"
    env = {"GANPU_SEED": 5, "GANPU_TASKS": 3, "GANPU_TIMEOUT": TIMEOUT,
           "GANPU_FAULT_ROUNDS": max(1, int(harness.scale())),
           "GANPU_THROUGHPUT_FILE": str(tmp_path / "throughput.txt")}
    if run["gbuf_bits"]:
        cfg = dataclasses.replace(cfg, gbuf_bits=run["gbuf_bits"])
        env["GANPU_GBUF_BITS"] = run["gbuf_bits"]
        name += f"_gbuf_bits{run['gbuf_bits']}"
    harness.run(sim, LinkedProcessor(cfg, timeout=TIMEOUT), name, "tb_link", env=env,
                testcase=run["testcase"])
