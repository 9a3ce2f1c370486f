"""Distributor on generated Verilog, both simulators: jobs (random words, and the jobs
of a real gemm tile) reach exactly one lane each, in order, the lowest-numbered queue
with room first; lanes stall at random."""

import pickle

import numpy as np
import pytest

import harness
import units
from blockwrap import fields, pack
from unitcases import SMALL, real_records
from ganpu.core.distributor import Distributor
from ganpu.core.indexer import Indexer
from ganpu.core.scanner import Scanner, job_layout
from ganpu.host.lower import fc_desc

ROUNDS = {"verilator": 40, "icarus": 10}


def real_jobs(cfg):
    rec = real_records()[sorted(real_records())[0]]
    A = np.asarray(rec["A"], np.uint16)
    K = 16
    desc = fc_desc(op=0, m=4, n=16, k=K, a_sm=K, a_sk=1, b_sn=K, b_sk=1, o_sm=16, o_sn=1)
    _, rows = Indexer.model(A[:4, :K].ravel(), desc)
    jobs, _ = Scanner.model(desc, rows, np.zeros(64, np.uint8), None)
    jf = fields(job_layout(cfg.geom))
    return [pack(jf, j) for j in jobs]


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_distributor(sim, tmp_path):
    rng = np.random.default_rng(9)
    width = job_layout(SMALL.geom).size
    n = int(ROUNDS[sim] * harness.scale())
    rounds = [dict(name="idle lanes", jobs=list(range(1, 12)), p_in=1.0, p_out=[1.0] * SMALL.lanes)]
    for i in range(n):
        jobs = [int(x) for x in rng.integers(0, 1 << min(width, 62), int(rng.integers(1, 40)),
                                             dtype=np.uint64)]
        jobs = list(dict.fromkeys(jobs))  # unique, so each can be traced
        rounds.append(dict(name=f"random {i}", jobs=jobs, p_in=float(rng.choice([1.0, 0.6])),
                           p_out=[float(rng.choice([1.0, 0.5, 0.1])) for _ in range(SMALL.lanes)]))
    rounds.append(dict(name="real jobs", jobs=real_jobs(SMALL), p_in=1.0, p_out=[0.3, 0.8]))
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "rounds": rounds}))
    units.run(sim, "distributor", case)


def test_distributor_parameters():
    with pytest.raises(TypeError, match=r"config must be a CoreConfig, not 4"):
        Distributor(4)
