"""Epilogue on generated Verilog against :meth:`Epilogue.model` (built on
``ganpu.core.model.epilogue``), both simulators, cycle-exact: every op x activation and
slope over every binary32 class (random), and the accumulators of a real training
step with their phase, activation, slope and stored mask."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import SMALL, real_records
from vectors import f32_mixed
from ganpu import numerics
from ganpu.core.epilogue import Epilogue
from ganpu.host.lower import fc_desc
from ganpu.host.tasks import phase_act

ROUNDS = {"verilator": 60, "icarus": 14}
COMBOS = [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0)]  # (op, act)


def results(g, accs, mask_in, computed):
    n = 1 << min(g.out_bits, g.mask_bits)
    return [dict(acc=int(a), o_addr=i % n, mask_idx=(i * 7) % n, mask_in=int(m), computed=int(c))
            for i, (a, m, c) in enumerate(zip(accs, mask_in, computed))]


def random_rounds(rng, g, count):
    out = []
    for i in range(count):
        op, act = COMBOS[i % len(COMBOS)]
        slope = int(numerics.f16_bits(rng.choice([0.01, 0.2, -0.5, 3.0]))[()])
        n = int(rng.integers(1, 120))
        accs = f32_mixed(rng, n)
        out.append(dict(name=f"random {i} op={op} act={act}", desc=fc_desc(op=op, act=act, slope=slope),
                        results=results(g, accs, rng.integers(0, 2, n), rng.random(n) < 0.85),
                        p=1.0 if i % 2 else 0.5))
    return out


def real_rounds(rng, g, count):
    recs = real_records()
    out = []
    for key in sorted(recs, key=lambda k: (recs[k]["epi_phase"], k))[::max(1, len(recs) // count)]:
        rec = recs[key]
        op, act = phase_act(rec)
        acc = np.asarray(rec["acc"], np.uint32).ravel()
        n = min(len(acc), 120)
        m0 = int(rng.integers(0, len(acc) - n + 1))
        mask = rec["mask_in"]
        mask = np.ones(len(acc), bool) if mask is None else np.asarray(mask, bool).ravel()
        # BP through ReLU: the scanner skips what the stored mask zeroed
        computed = mask if (op.name, act.name) == ("BP", "RELU") else np.ones(len(acc), bool)
        slope = int(rec["slope16"]) if rec["slope16"] is not None else 0
        out.append(dict(name=key, desc=fc_desc(op=op.value, act=act.value, slope=slope),
                        results=results(g, acc[m0:m0 + n], mask[m0:m0 + n], computed[m0:m0 + n]),
                        p=1.0 if len(out) % 2 else 0.7))
    return out


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_epilogue(sim, tmp_path):
    rng = np.random.default_rng(8)
    g = SMALL.geom
    n = int(ROUNDS[sim] * harness.scale())
    rounds = random_rounds(rng, g, n) + real_rounds(rng, g, n // 2)
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "rounds": rounds}))
    units.run(sim, "epilogue", case)


def test_epilogue_parameters():
    with pytest.raises(TypeError, match=r"geom must be a Geometry, not 'big'"):
        Epilogue("big")
