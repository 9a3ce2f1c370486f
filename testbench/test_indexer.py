"""Indexer on generated Verilog against :meth:`Indexer.model`, both simulators: random
A (strided, offset, every zero density, K = 1 rows that stress the row queue, consumer
back-pressure) and tiles of real activations and gradients."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import SMALL, real_records, values
from ganpu.core.indexer import Indexer
from ganpu.host.lower import _desc

TASKS = {"verilator": 60, "icarus": 14}


def random_task(rng, cfg, i):
    depth = cfg.geom.depth("a")
    M = int(rng.integers(1, 9))
    K = int(rng.choice([1, 1, 2, 3, 7, int(rng.integers(1, depth // M + 1))]))
    K = min(K, depth // M)
    # row-major, column-major or gapped layouts, anywhere in A
    sm, sk = [(K, 1), (1, M), (K + 1, 1)][int(rng.integers(0, 3))]
    last = (M - 1) * sm + (K - 1) * sk
    if last >= depth:
        sm, sk, last = K, 1, M * K - 1
    base = int(rng.integers(0, depth - last))
    desc = _desc(m=M, k=K, a_base=base, a_sm=sm, a_sk=sk, b_sk=int(rng.choice([1, 3, 17])))
    image = values(rng, depth, zeros=float(rng.choice([0.0, 0.5, 0.9, 1.0])), special=True)
    p = 1.0 if i % 2 == 0 else float(rng.choice([0.2, 0.5]))
    return (f"random {i}", desc, image, p)


def real_tasks(rng, cfg, count):
    """Row tiles of A from real gemms (ReLU zeros in FP; transposed reads in WG)."""
    depth = cfg.geom.depth("a")
    out = []
    recs = real_records()
    for key in sorted(recs)[:count]:
        A = np.asarray(recs[key]["A"], np.uint16)
        K = min(A.shape[1], 16)
        M = min(A.shape[0], depth // K)
        m0 = int(rng.integers(0, A.shape[0] - M + 1))
        image = np.zeros(depth, np.uint16)
        image[:M * K] = A[m0:m0 + M, :K].ravel()
        desc = _desc(m=M, k=K, a_base=0, a_sm=K, a_sk=1, b_sk=1)
        out.append((f"{key}[{m0}:{m0 + M}, :{K}]", desc, image, 1.0 if len(out) % 2 else 0.5))
    return out


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_indexer(sim, tmp_path):
    rng = np.random.default_rng(3)
    n = int(TASKS[sim] * harness.scale())
    tasks = [random_task(rng, SMALL, i) for i in range(n)] + real_tasks(rng, SMALL, n // 2)
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "tasks": tasks}))
    units.run(sim, "indexer", case)


def test_indexer_model():
    a = np.array([0x3C00, 0x8000, 0, 0x4000, 0x0001, 0], np.uint16)
    desc = _desc(m=2, k=3, a_base=0, a_sm=3, a_sk=1, b_sk=5)
    assert Indexer.model(a, desc) == ([(0x3C00, 0), (0x4000, 0), (0x0001, 5)], [(0, 1), (1, 3)])


def test_indexer_parameters():
    with pytest.raises(TypeError, match=r"geom must be a Geometry, not 12"):
        Indexer(12)
