"""Merge on generated Verilog against :meth:`Merge.model`, both simulators: the exact
round-robin order with every input busy, order and completeness with random gaps, on
random results and on real accumulators of a training step."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import SMALL, real_records
from ganpu.core.merge import Merge

ROUNDS = {"verilator": 40, "icarus": 10}
COUNT = units.MERGE_INPUTS


def queues(rng, g, accs, name, p):
    """Per-input results; ``o_addr`` names the input, ``mask_idx`` numbers the items."""
    qs, seq = [], 0
    for n in range(COUNT):
        q = []
        for _ in range(int(rng.integers(0, 12))):
            q.append(dict(acc=int(accs[seq % len(accs)]), o_addr=n, mask_idx=seq % (1 << g.mask_bits),
                          mask_in=int(rng.integers(0, 2)), computed=int(rng.integers(0, 2))))
            seq += 1
        qs.append(q)
    return dict(name=name, queues=qs, p=p)


def test_model_is_round_robin():
    assert Merge.model([["a", "b"], [], ["c"]]) == [(0, "a"), (2, "c"), (0, "b")]
    assert Merge.model([["a"], ["b", "c"]]) == [(0, "a"), (1, "b"), (1, "c")]


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_merge(sim, tmp_path):
    rng = np.random.default_rng(6)
    g = SMALL.geom
    n = int(ROUNDS[sim] * harness.scale())
    rand = rng.integers(0, 1 << 32, 4096, dtype=np.uint64)
    real = np.concatenate([np.asarray(r["acc"], np.uint32).ravel() for r in real_records().values()])
    rounds = [queues(rng, g, rand, f"random {i}", 1.0 if i % 2 else 0.4) for i in range(n)]
    rounds += [queues(rng, g, rng.permutation(real)[:512], f"real {i}", 1.0 if i % 2 else 0.6)
               for i in range(n // 2)]
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "count": COUNT, "rounds": rounds}))
    units.run(sim, "merge", case)


def test_merge_parameters():
    with pytest.raises(ValueError, match=r"count must be in >= 1, not 0"):
        Merge(SMALL.geom, 0)
    with pytest.raises(TypeError, match=r"count must be an int, not 2\.0"):
        Merge(SMALL.geom, 2.0)
    with pytest.raises(TypeError, match=r"geom must be a Geometry, not 3"):
        Merge(3, 2)
