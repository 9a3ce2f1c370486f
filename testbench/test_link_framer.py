"""The link framer on generated Verilog against ``Framer.model``, both simulators
(Verilator the longer traffic)."""

import pytest

import harness
from ganpu.link.framer import Framer

TIMEOUT = 60    # the framer's link timeout in cycles for this bench
FRAMES = {"icarus": 12, "verilator": 60}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_framer(sim):
    env = {"GANPU_SEED": 11, "GANPU_TIMEOUT": TIMEOUT,
           "GANPU_FRAMES": max(4, int(FRAMES[sim] * harness.scale()))}
    harness.run(sim, Framer("small", timeout=TIMEOUT), "ganpu_link_framer", "tb_link_framer", env=env)
