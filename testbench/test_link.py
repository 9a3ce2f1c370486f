"""LinkedProcessor on generated Verilog: the real driver over the link, the faults of
``docs/link.md`` and the link's throughput. Icarus runs the driver and program test
only; Verilator runs everything. NativeTop (``ganpu sim``'s top) on Icarus: the
faults, with its link clock 4 times its core clock."""

import dataclasses

import pytest

import harness
from ganpu.link.native_top import NativeTop
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


def test_native_top():
    """``ganpu sim``'s top (NativeTop: reset registers, the framer on its own clock, the
    bus through two AsyncFIFOs) on Icarus, its link 4 times faster than its core: every
    fault (with the driver's writes and reads between them and a program checked
    against its model at the end). Verilator runs the same Verilog inside
    ``ganpu sim`` (``test_sim_native.py``: the driver, and random traffic with faults
    against ``Framer.model``)."""
    cfg = dataclasses.replace(config("small"), gbuf_bits=10)
    env = {"GANPU_SEED": 6, "GANPU_TASKS": 3, "GANPU_TIMEOUT": TIMEOUT, "GANPU_FAULT_ROUNDS": 1,
           "GANPU_GBUF_BITS": 10, "GANPU_LINK_RATIO": 4}
    harness.run("icarus", NativeTop(cfg, timeout=TIMEOUT), "ganpu_native_top_gbuf_bits10", "tb_link",
                env=env, testcase="faults")


def test_native_top_messages():
    with pytest.raises(TypeError, match=r"link_clock must be a bool, not 1"):
        NativeTop("small", link_clock=1)
    with pytest.raises(ValueError, match=r"timeout must be in 2\.\.4294967296, not 1"):
        NativeTop("small", timeout=1)
    with pytest.raises(ValueError, match=r"max_words must be a power of two, not 3"):
        NativeTop("small", max_words=3)
