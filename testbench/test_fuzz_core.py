"""Random descriptors on the compute core's generated Verilog against its model: every
verdict and, after every task, every buffer read back (``tb_fuzz_core``). Verilator
takes thousands of tasks on a small geometry, Icarus a short run; ``GANPU_TEST_SCALE``
lengthens both. Zero mismatches, zero writes after an error verdict, zero wrong
verdicts and zero hangs, or the test fails (counts in ``docs/verification.md``)."""

import json
import pickle

import numpy as np
import pytest

import harness
from ganpu.core import Core, CoreConfig, Error, Geometry, model
from tb_fuzz_core import random_desc

# small buffers, so a full read-back after each task is cheap; 2 MAC lanes, 4 EORS lanes
FUZZ = CoreConfig(lanes=2, geom=Geometry(a_bits=6, b_bits=7, out_bits=7, bias_bits=4, mask_bits=7),
                  eors_lanes=4)
TASKS = {"verilator": 1000, "icarus": 20}


def test_random_descs_reach_every_verdict():
    """The generator is not blind: every verdict, and mostly accepted tasks."""
    rng = np.random.default_rng(1)
    verdicts = [model.check(random_desc(rng, FUZZ), FUZZ.geom, FUZZ.eors_lanes) for _ in range(4000)]
    assert set(verdicts) == set(Error), set(Error) - set(verdicts)
    assert verdicts.count(Error.OK) > len(verdicts) // 3


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_fuzz_core(sim, tmp_path):
    cfgfile = tmp_path / "config.pkl"
    cfgfile.write_bytes(pickle.dumps(FUZZ))
    results = tmp_path / "fuzz.json"
    harness.run(sim, Core(FUZZ), "ganpu_core_fuzz", "tb_fuzz_core",
                env={"GANPU_FUZZ_CONFIG": cfgfile, "GANPU_FUZZ_MODE": "fuzz", "GANPU_FUZZ_SEED": 21,
                     "GANPU_FUZZ_TASKS": max(1, int(TASKS[sim] * harness.scale())),
                     "GANPU_FUZZ_RESULTS": results})
    got = json.loads(results.read_text())
    print(f"fuzz on {sim}: " + json.dumps({k: v for k, v in got.items() if k != "failures"}))
    assert got["tasks"] == max(1, int(TASKS[sim] * harness.scale()))
    assert got["mismatches"] == got["writes_after_error"] == got["wrong_verdicts"] == got["hangs"] == 0
    if sim == "verilator":
        assert got["accepted"] > got["tasks"] // 3 and got["refused"] > got["tasks"] // 10
