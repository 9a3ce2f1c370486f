"""Scanner on generated Verilog against :meth:`Scanner.model`, both simulators: every
op x activation with masks, biases and EORS predictions (random and from a real
training step), strided outputs, back-pressure on both output streams."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import SMALL, real_records, values
from ganpu import numerics
from ganpu.core.scanner import Scanner
from ganpu.core.speculator import ROW_SLOTS
from ganpu.host.lower import fc_desc

TASKS = {"verilator": 60, "icarus": 14}
# (op, act, use_mask, eors) combinations the checker accepts
KINDS = [(0, 0, 0, 0), (0, 1, 0, 0), (0, 2, 0, 0), (0, 1, 1, 0), (0, 1, 0, 1),
         (1, 0, 0, 0), (1, 1, 0, 0), (1, 2, 0, 0), (2, 0, 0, 0)]


def _rows(rng, M, depth):
    ends = np.sort(rng.integers(0, depth + 1, M))
    starts = np.concatenate([[0], ends[:-1]])
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def task(rng, cfg, name, kind, M, N, p, mask=None, bias=None, predicted=None):
    g, P = cfg.geom, cfg.eors_lanes
    op, act, use_mask, eors = kind
    out_depth = g.depth("out")
    o_sm, o_sn = (N, 1) if rng.random() < 0.5 else (1, M)
    o_base = int(rng.integers(0, out_depth - (M - 1) * o_sm - (N - 1) * o_sn))
    has_bias = int(bias is not None or rng.random() < 0.6)
    bias_img = values(rng, g.depth("bias"), zeros=0.2, special=True)
    bias_base = 0
    if has_bias:
        room = g.depth("bias") - N
        bias_base = int(rng.integers(0, room + 1)) // (P if eors else 1) * (P if eors else 1)
        if bias is not None:
            bias_img[bias_base:bias_base + N] = bias
    desc = fc_desc(op=op, act=act, use_mask=use_mask, eors=eors, bias=has_bias, m=M, n=N,
                 k=int(rng.integers(1, 9)), b_base=int(rng.integers(0, 8)),
                 b_sn=int(rng.integers(0, 9)), b_sk=1, o_base=o_base, o_sm=o_sm, o_sn=o_sn,
                 bias_base=bias_base)
    mask_img = (rng.random(g.depth("mask")) < rng.choice([0.0, 0.5, 1.0])).astype(np.uint8)
    if mask is not None:
        mask_img[:M * N] = np.asarray(mask, np.uint8).ravel()
    if eors and predicted is None:
        predicted = rng.random((M, N)) < rng.choice([0.0, 0.5, 1.0])
    return dict(name=name, desc=desc, rows=_rows(rng, M, g.depth("a")), mask_in=mask_img,
                bias=bias_img, predicted=None if not eors else np.asarray(predicted, np.uint8),
                p=p)


def random_tasks(rng, cfg, count):
    out = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        M = int(rng.integers(1, ROW_SLOTS + 1 if kind[3] else 9))
        N = int(rng.integers(1, min(cfg.geom.depth("mask") // M, cfg.geom.depth("bias")) + 1))
        p = 1.0 if i % 3 == 0 else float(rng.choice([0.3, 0.7]))
        out.append(task(rng, cfg, f"random {i} {kind}", kind, M, N, p))
    return out


def real_tasks(rng, cfg):
    """Real masks (BP through ReLU), biases, and output signs as predictions."""
    g = cfg.geom
    recs = real_records()
    out = []
    for key, rec in sorted(recs.items()):
        if rec["epi_phase"] not in ("fp", "bp") or rec["act"] != "relu":
            continue
        M, N = ROW_SLOTS, min(rec["out"].shape[1], g.depth("bias"))
        m0 = int(rng.integers(0, rec["out"].shape[0] - M + 1))
        if rec["epi_phase"] == "bp":
            kind, mask, bias, pred = (1, 1, 0, 0), rec["mask_in"][m0:m0 + M, :N], None, None
        else:
            kind, mask, pred = (0, 1, 0, 1), None, rec["mask_out"][m0:m0 + M, :N]
            bias = numerics.narrow(np.asarray(rec["init"][:N], np.uint32))
        out.append(task(rng, cfg, f"{key}[{m0}:{m0 + M}, :{N}]", kind, M, N,
                        1.0 if len(out) % 2 else 0.5, mask=mask, bias=bias, predicted=pred))
    return out


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_scanner(sim, tmp_path):
    rng = np.random.default_rng(4)
    tasks = random_tasks(rng, SMALL, int(TASKS[sim] * harness.scale())) + real_tasks(rng, SMALL)
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "tasks": tasks}))
    units.run(sim, "scanner", case)


def test_scanner_parameters():
    with pytest.raises(TypeError, match=r"config must be a CoreConfig, not 'x'"):
        Scanner("x")
