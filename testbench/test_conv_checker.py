"""DescriptorChecker on convolution descriptors, generated Verilog against its model
(``ganpu.core.model.check``), both simulators: tiles of random conv and tconv phases as
the host lowers them, each also with one field mutated (every conv field, the ranges,
M and K), so that every convolution rule and its neighbours are met; accepted tiles
with stride or dilation 3 (refused: only 1 and 2 are allowed)."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import CHECKER
from ganpu.core.descriptor import DescriptorChecker, Error, descriptor_layout
from ganpu.host.lower import ConvShape, conv_tasks

COUNT = {"verilator": 600, "icarus": 150}
FIELDS = ("conv", "kern", "cstride", "dil", "pad", "flip", "ky0", "kh", "img", "chan", "in_h",
          "in_w", "oy0", "out_h", "out_w", "b_sy", "b_sx", "a_base", "b_base", "a_sm", "a_sk",
          "b_sk", "m", "k", "eors")


def conv_descs(rng, cfg, count):
    g = cfg.geom
    widths = {name: f.width for name, f in descriptor_layout(g)}
    out = []
    while len(out) < count:
        kind = ["conv", "tconv"][len(out) % 2]
        k, s = int(rng.integers(1, 6)), int(rng.integers(1, 4))
        p = int(rng.integers(0, k))
        op = int(rng.integers(0, s)) if kind == "tconv" else 0
        cin, cout, b = (int(rng.integers(1, 5)) for _ in range(3))
        h = int(rng.integers(1, 8))
        try:
            shape = ConvShape(kind, b, cin, cout, k, s, p, (h, h), op)
        except ValueError:
            continue
        phase = ["fp", "bp", "wg"][int(rng.integers(0, 3))]
        ho, wo = shape.out_hw
        x, dz = np.zeros(b * cin * h * h, np.uint16), np.zeros(b * cout * ho * wo, np.uint16)
        try:
            tasks, _ = conv_tasks(shape, phase, g, x=x, dz=dz, w=np.zeros(cin * cout * k * k, np.uint16),
                                  eors=rng.random() < 0.2, act=int(phase == "fp"), eors_lanes=cfg.eors_lanes)
        except ValueError:
            continue
        desc = dict(tasks[int(rng.integers(0, len(tasks)))][0])
        out.append((f"{shape!r} {phase}", desc))
        f = str(rng.choice(FIELDS))
        v = desc[f]
        new = int(rng.choice([0, 1, 2, 3, v + 1, max(v - 1, 0), int(rng.integers(0, 1 << widths[f]))]))
        if f in ("a_base", "b_base"):  # near the end of the buffer
            new = g.depth(f[0]) - int(rng.integers(1, 5))
        out.append((f"{shape!r} {phase} {f}={new}", {**desc, f: new % (1 << widths[f])}))
    return out


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_conv_checker(sim, tmp_path):
    rng = np.random.default_rng(13)
    descs = conv_descs(rng, CHECKER, int(COUNT[sim] * harness.scale()))
    # stride and dilation 3 (2-bit fields) refused: the Indexer only shifts by 0 or 1 bit
    accepted = [(w, d) for w, d in descs if DescriptorChecker.model(d, CHECKER) == Error.OK][:8]
    for w, d in accepted:
        for f in ("cstride", "dil"):
            bad = {**d, f: 3}
            assert DescriptorChecker.model(bad, CHECKER) == Error.BAD_CONV, (w, f)
            descs.append((f"{w} {f}=3", bad))
    verdicts = {DescriptorChecker.model(d, CHECKER) for _, d in descs}
    assert {Error.OK, Error.BAD_CONV, Error.CONV_SHAPE, Error.A_RANGE, Error.B_RANGE} <= verdicts, verdicts
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": CHECKER, "descs": descs}))
    units.run(sim, "checker", case)
