"""One MAC lane on generated Verilog against :meth:`Lane.model`, both simulators: jobs
of 0..many terms over every operand class (random), jobs of a real training step
(through the Indexer and Scanner models), back-pressure on both streams, and the
single-job latency contract."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import SMALL, real_records, values
from ganpu import numerics
from ganpu.core.indexer import Indexer
from ganpu.core.lane import Lane
from ganpu.core.scanner import Scanner
from ganpu.host.lower import fc_desc

BATCHES = {"verilator": 40, "icarus": 10}


def random_batch(rng, cfg, name, count, p_in, p_out):
    g = cfg.geom
    depth_a, depth_b = g.depth("a"), g.depth("b")
    acomp = [(int(a), int(rng.integers(0, depth_b // 2))) for a in values(rng, depth_a, 0.1, True)]
    b = values(rng, depth_b, 0.1, True)
    jobs = []
    for i in range(count):
        terms = int(rng.choice([0, 1, 2, 5, int(rng.integers(0, 17))]))
        start = int(rng.integers(0, depth_a - terms + 1))
        init = int(rng.choice([numerics.FP32_NEG_ZERO, 0, int(numerics.widen(values(rng, 1)[0]))]))
        jobs.append(dict(start=start, end=start + terms, b_row=int(rng.integers(0, depth_b // 2)),
                         init=init, o_addr=int(rng.integers(0, g.depth("out"))), mask_idx=i,
                         mask_in=int(rng.integers(0, 2))))
    return dict(name=name, jobs=jobs, acomp=acomp, b=b, p_in=p_in, p_out=p_out)


def real_batches(cfg, count):
    """The jobs of real gemm tiles, as the Indexer and Scanner models make them."""
    g = cfg.geom
    recs = real_records()
    out = []
    for key in sorted(recs)[:count]:
        rec = recs[key]
        A, B = np.asarray(rec["A"], np.uint16), np.asarray(rec["B"], np.uint16)
        K = min(A.shape[1], 16)
        M, N = min(A.shape[0], g.depth("a") // K, 4), min(B.shape[0], g.depth("b") // K, 8)
        desc = fc_desc(op=0, m=M, n=N, k=K, a_sm=K, a_sk=1, b_sn=K, b_sk=1, o_sm=N, o_sn=1)
        entries, rows = Indexer.model(A[:M, :K].ravel(), desc)
        jobs, _ = Scanner.model(desc, rows, np.zeros(M * N, np.uint8), None)
        acomp = entries + [(0, 0)] * (g.depth("a") - len(entries))
        b = np.zeros(g.depth("b"), np.uint16)
        b[:N * K] = B[:N, :K].ravel()
        out.append(dict(name=f"{key}[:{M}, :{K}] x [:{N}]", jobs=jobs, acomp=acomp, b=b,
                        p_in=1.0, p_out=1.0 if len(out) % 2 else 0.5))
    return out


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_lane(sim, tmp_path):
    rng = np.random.default_rng(5)
    n = int(BATCHES[sim] * harness.scale())
    batches = [random_batch(rng, SMALL, f"single {t}", 1, 1.0, 1.0) for t in (0, 1, 2, 7)]
    batches += [random_batch(rng, SMALL, f"random {i}", int(rng.integers(2, 40)),
                             float(rng.choice([1.0, 0.5])), float(rng.choice([1.0, 0.6, 0.2])))
                for i in range(n)]
    batches += real_batches(SMALL, n // 2)
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "batches": batches}))
    units.run(sim, "lane", case)


def test_lane_parameters():
    with pytest.raises(TypeError, match=r"geom must be a Geometry, not None"):
        Lane(None)
