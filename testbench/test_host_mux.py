"""HostMux on generated Verilog (with every buffer's block RAM), both simulators: a
random cycle-by-cycle stream of host reads, writes, refused writes and task writes
against a model of the buffers (read latency, err rules, task ownership)."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import SMALL
from ganpu.core import Buf
from ganpu.core.host_mux import HostMux, TASK_WRITTEN

CYCLES = {"verilator": 20000, "icarus": 3000}


def random_ops(rng, cfg, count):
    ops, busy = [], 0
    for t in range(count):
        if rng.random() < 0.01:
            busy ^= 1
        buf = int(rng.choice([b.value for b in Buf] + [7]))
        depth = cfg.depth(Buf(buf)) if buf != 7 else 16
        addr = int(rng.integers(0, depth + 3)) if rng.random() < 0.1 else int(rng.integers(0, depth))
        task = {}
        for b in TASK_WRITTEN:
            task[b.name] = (int(busy and rng.random() < 0.5), int(rng.integers(0, cfg.depth(b))),
                            int(rng.integers(0, 1 << (1 if b.name.startswith("MASK") else 16))))
        ops.append(dict(buf=buf, addr=addr, we=int(rng.random() < 0.5),
                        wdata=int(rng.integers(0, 1 << 16)), busy=busy, run=busy,
                        clear=int(rng.random() < 0.02), task=task))
    return ops


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_host_mux(sim, tmp_path):
    rng = np.random.default_rng(10)
    ops = random_ops(rng, SMALL, int(CYCLES[sim] * harness.scale()))
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "ops": ops}))
    units.run(sim, "host_mux", case)


def test_host_mux_parameters():
    with pytest.raises(TypeError, match=r"config must be a CoreConfig, not None"):
        HostMux(None)
