"""DescriptorChecker on generated Verilog against its model (``ganpu.core.model.check``),
both simulators: random descriptors aimed at every check's boundary, and every task of
a real training step (exact and EORS) with mutations of each."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import CHECKER
from ganpu.core.descriptor import DescriptorChecker, Error
from ganpu.host.lower import fc_desc

CONFIG = CHECKER
COUNT = {"verilator": 3000, "icarus": 400}


def random_descs(rng, cfg, count):
    """Descriptors near every limit: dimensions and last addresses around each
    buffer's depth, every op/act code, the EORS combinations."""
    g = cfg.geom
    top = (1 << g.dim_bits) - 1
    depths = [g.depth(x) for x in ("a", "b", "out", "bias", "mask")]

    def dim():
        return int(rng.choice([0, 1, 2, 3, int(rng.integers(1, 64)), int(rng.integers(1, top + 1))]))

    def near():
        d = int(rng.choice(depths))
        return int(np.clip(d + rng.integers(-3, 3), 0, top))

    def base():
        return int(rng.choice([0, int(rng.integers(0, 64)), near()]))

    def stride():
        return int(rng.choice([0, 1, 1, int(rng.integers(1, 64)), int(rng.integers(0, top + 1))]))

    out = []
    for i in range(count):
        d = fc_desc(op=int(rng.choice([0, 0, 1, 2, 3])), act=int(rng.choice([0, 1, 1, 2, 3])),
                  slope=int(rng.integers(0, 1 << 16)), use_mask=int(rng.random() < 0.2),
                  bias=int(rng.random() < 0.5), eors=int(rng.random() < 0.3),
                  m=dim(), n=dim(), k=dim(), a_base=base(), a_sm=stride(), a_sk=stride(),
                  b_base=base(), b_sn=stride(), b_sk=int(rng.choice([1, stride()])),
                  o_base=base(), o_sm=stride(), o_sn=stride(),
                  bias_base=int(rng.choice([0, 16, near(), int(rng.integers(0, top + 1))])))
        out.append((f"random {i}", d))
    return out


def directed_descs(cfg):
    """One descriptor per verdict, each a valid task with one thing wrong."""
    g = cfg.geom
    good = fc_desc(m=4, n=6, k=8, a_sm=8, a_sk=1, b_sn=8, b_sk=1, o_sm=6, o_sn=1, bias=1, act=1)
    # convolutions (docs/conv.md): a 2x2 kernel over 2 channels of a 2x2 image, padding 1
    conv = dict(conv=1, kern=2, cstride=1, dil=1, pad=1, img=1, chan=2, in_h=2, in_w=2,
                out_h=2, out_w=2, b_sy=2, b_sx=1)
    cases = {
        "ok": {}, "bad op": dict(op=3), "bad act": dict(act=3), "zero dim": dict(k=0),
        "WG with ReLU": dict(op=2), "FP mask without ReLU": dict(use_mask=1, act=0),
        "EORS with strided weights": dict(eors=1, b_sk=2),
        "EORS with unaligned bias": dict(eors=1, bias_base=3),
        "A beyond buffer": dict(a_base=g.depth("a") - 8),
        "B beyond buffer": dict(b_sn=g.depth("b") // 4),
        "OUT beyond buffer": dict(o_base=g.depth("out") - 1),
        "outputs share OUT (o_sn = 0)": dict(o_sn=0),
        "interleaved OUT rows": dict(o_sm=2, o_sn=1),
        "bias beyond buffer": dict(bias_base=g.depth("bias") - 2),
        "oversized dimension": dict(m=g.depth("mask") + 1, a_sm=0, o_sm=0),
        "compressed A overflow": dict(m=g.depth("a") // 8 + 1, k=8, a_sm=0, n=1, o_sm=1),
        "EORS weights beyond BW": dict(eors=1, n=64, k=200, b_sn=0, o_sm=0, m=1, a_sk=0),
        "undefined conv mode": dict(conv=3),
        "conv padding of a kernel": {**conv, "pad": 2},
        # stride and dilation 2 are accepted, 3 refused (the Indexer shifts by 0 or 1 bit)
        "conv stride 2": {**conv, "cstride": 2}, "conv dilation 2": {**conv, "dil": 2},
        "conv stride 3": {**conv, "cstride": 3}, "conv dilation 3": {**conv, "dil": 3},
    }
    return [(what, {**good, **bad}) for what, bad in cases.items()]


def real_descs(rng):
    from ganpu.gan.export import export_layers
    from ganpu.host.tasks import record_tasks
    recs = export_layers(net="mlp", steps=(0,), batch=32, seed=0)
    out = []
    for key, rec in recs.items():
        for eors in (False, True):
            for desc, _, (m0, m1) in record_tasks(rec, CONFIG.geom, eors=eors):
                out.append((f"{key}[{m0}:{m1}]{' eors' if eors else ''}", desc))
                # the same task one step past a limit
                field = str(rng.choice(["m", "n", "k", "a_base", "b_base", "o_base", "bias_base"]))
                bad = dict(desc)
                bad[field] = min(bad[field] + CONFIG.geom.depth("b"), (1 << CONFIG.geom.dim_bits) - 1)
                out.append((f"{key}[{m0}:{m1}] {field}+", bad))
    return out


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_checker(sim, tmp_path):
    rng = np.random.default_rng(7)
    descs = directed_descs(CONFIG) + real_descs(rng) + random_descs(rng, CONFIG, int(COUNT[sim] * harness.scale()))
    verdicts = {DescriptorChecker.model(d, CONFIG) for _, d in descs}
    assert verdicts == set(Error), f"the cases miss verdicts {set(Error) - verdicts}"
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": CONFIG, "descs": descs}))
    units.run(sim, "checker", case)


def test_checker_parameters():
    with pytest.raises(TypeError, match=r"config must be a CoreConfig, not 12"):
        DescriptorChecker(12)
