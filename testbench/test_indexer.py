"""Indexer on generated Verilog against :meth:`Indexer.model`, both simulators: random
A (strided, offset, every zero density, K = 1 rows that stress the row queue, consumer
back-pressure), tiles of real activations and gradients, and convolution tasks (the
implicit im2col of :mod:`ganpu.core.im2col`: random conv and tconv shapes in FP, BP and
WG as the host lowers them, rows without a valid tap, strided and flipped kernels)."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import SMALL, real_records, values
from ganpu.core import model as core_model
from ganpu.core.descriptor import Error
from ganpu.core.indexer import Indexer
from ganpu.host.lower import fc_desc, ConvShape, conv_tasks

TASKS = {"verilator": 60, "icarus": 14}
CONV_TASKS = {"verilator": 60, "icarus": 10}


def conv_task(rng, cfg, i):
    """One tile of a random conv/tconv phase lowered for ``cfg``, at a random A base."""
    g = cfg.geom
    depth = g.depth("a")
    while True:
        kind = ["conv", "tconv"][i % 2]
        k = int(rng.integers(1, 5))
        s = int(rng.integers(1, 3))
        p = int(rng.integers(0, min(2, k - 1) + 1))
        op = int(rng.integers(0, s)) if kind == "tconv" else 0
        cin, cout, b = (int(rng.integers(1, 4)) for _ in range(3))
        h = int(rng.integers(max(1, k - 2 * p), 7)) if kind == "conv" else int(rng.integers(1, 5))
        try:
            shape = ConvShape(kind, b, cin, cout, k, s, p, (h, h), op)
        except ValueError:  # no output
            continue
        phase = ["fp", "bp", "wg"][int(rng.integers(0, 3))]
        x = values(rng, b * cin * h * h)
        dz = values(rng, b * cout * shape.out_hw[0] * shape.out_hw[1])
        w = values(rng, cin * cout * k * k)
        try:
            tasks, _ = conv_tasks(shape, phase, g, x=x, dz=dz, w=w)
        except ValueError:
            continue
        desc, loads, _, _ = tasks[int(rng.integers(0, len(tasks)))]
        a = loads["a"][1]
        base = int(rng.integers(0, depth - a.size + 1))
        desc = {**desc, "a_base": base}
        if core_model.check(desc, g, cfg.eors_lanes) != Error.OK:
            continue
        image = values(rng, depth)  # what lies around the image must not be read
        image[base:base + a.size] = np.where(rng.random(a.size) < float(rng.choice([0.0, 0.5])),
                                             np.uint16(0), a)
        p_take = 1.0 if i % 2 == 0 else 0.4
        return (f"conv {i} {shape!r} {phase}", desc, image, p_take)


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
    desc = fc_desc(m=M, k=K, a_base=base, a_sm=sm, a_sk=sk, b_sk=int(rng.choice([1, 3, 17])))
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
        desc = fc_desc(m=M, k=K, a_base=0, a_sm=K, a_sk=1, b_sk=1)
        out.append((f"{key}[{m0}:{m0 + M}, :{K}]", desc, image, 1.0 if len(out) % 2 else 0.5))
    return out


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_indexer(sim, tmp_path):
    rng = np.random.default_rng(3)
    n = int(TASKS[sim] * harness.scale())
    tasks = [random_task(rng, SMALL, i) for i in range(n)] + real_tasks(rng, SMALL, n // 2)
    tasks += [conv_task(rng, SMALL, i) for i in range(int(CONV_TASKS[sim] * harness.scale()))]
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "tasks": tasks}))
    units.run(sim, "indexer", case)


def test_indexer_model():
    a = np.array([0x3C00, 0x8000, 0, 0x4000, 0x0001, 0], np.uint16)
    desc = fc_desc(m=2, k=3, a_base=0, a_sm=3, a_sk=1, b_sk=5)
    assert Indexer.model(a, desc) == ([(0x3C00, 0), (0x4000, 0), (0x0001, 5)], [(0, 1), (1, 3)])


def test_indexer_conv_model():
    """The model's entries are the address function's valid taps (a 1x1 image, kernel 3,
    padding 1: one valid tap, the centre, at B offset 4); its issue takes the first
    row's pre-stage, two set-up cycles and the tap."""
    a = np.array([0x3C00], np.uint16)
    desc = fc_desc(conv=1, kern=3, cstride=1, dil=1, pad=1, img=1, chan=1, in_h=1, in_w=1,
                 out_h=1, out_w=1, m=1, n=1, k=9, b_sk=9, b_sy=3, b_sx=1)
    assert core_model.check(desc, SMALL.geom) == Error.OK
    assert Indexer.model(a, desc) == ([(0x3C00, 4)], [(0, 1)])
    assert Indexer.issue_cycles(desc) == 1 + 2 + 1


def test_indexer_parameters():
    with pytest.raises(TypeError, match=r"geom must be a Geometry, not 12"):
        Indexer(12)
