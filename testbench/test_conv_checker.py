"""DescriptorChecker on convolution descriptors, generated Verilog against its model
(``ganpu.core.model.check``), both simulators: tiles of random conv and tconv phases as
the host lowers them, each also with one field mutated (every conv field, the ranges,
M and K), so that every convolution rule and its neighbours are met; accepted tiles
with stride or dilation 3 (refused: only 1 and 2 are allowed); descriptors whose valid
taps are at the compressed copy's depth, one above or one image or channel off it
(``WORK_RANGE`` counts them exactly, borders included)."""

import pickle

import numpy as np
import pytest

import harness
import units
from unitcases import CHECKER
from ganpu.core import im2col
from ganpu.core.descriptor import ConvMode, DescriptorChecker, Error, descriptor_layout
from ganpu.host.lower import ConvShape, conv_tasks, fc_desc

COUNT = {"verilator": 600, "icarus": 150}
WORK = {"verilator": 200, "icarus": 60}
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


def work_descs(rng, cfg, count):
    """Conv descriptors (ROWS and TAPS, random geometry with its borders, bands) whose
    valid taps (:func:`ganpu.core.im2col.task_taps`) are near the compressed copy's
    depth: one image read again and again (``a_sm`` = ``a_sk`` = 0) and one output
    channel, so that only ``WORK_RANGE`` can refuse them; ``img`` chosen to land on
    the depth, or a little below or above it."""
    depth = cfg.geom.depth("a")
    out = []
    while len(out) < count:
        mode = [ConvMode.ROWS, ConvMode.TAPS][len(out) % 2]
        k, s = int(rng.integers(1, 8)), int(rng.integers(1, 3))
        dil = int(rng.integers(1, 3)) if mode == ConvMode.ROWS else 1
        p = int(rng.integers(0, k))
        h, w = (int(rng.integers(1, 12)) for _ in range(2))
        # output sizes up to the last window CONV_SHAPE allows
        last = [((n - 1) * dil + 1 + k + dil - 2 + p - k) // s for n in (h, w)]
        if min(last) < 0:
            continue
        oh, ow = (int(rng.integers(1, x + 2)) for x in last)
        d = fc_desc(op=2 if mode == ConvMode.TAPS else 0, conv=mode.value, kern=k, cstride=s, dil=dil,
                    pad=p, in_h=h, in_w=w, out_h=oh, out_w=ow, chan=int(rng.integers(1, 4)), img=1,
                    n=1, o_sm=1, o_sn=1, b_sy=k if mode == ConvMode.ROWS else 0, b_sx=1)
        if mode == ConvMode.ROWS:
            d["oy0"] = int(rng.integers(0, 3)) if oh > 3 else 0
            d["out_h"] = oh - d["oy0"]
            d["b_sk"] = k * k
        else:
            d["ky0"] = int(rng.integers(0, k))
            d["kh"] = int(rng.integers(1, k - d["ky0"] + 1))
        per = im2col.task_taps(d)
        if per == 0:
            continue
        d["img"] = max(1, depth // per + int(rng.choice([0, 0, 1, -1])))
        d["m"], d["k"] = (int(np.prod(x)) for x in im2col.dims(d))
        if DescriptorChecker.model(d, cfg) in (Error.OK, Error.WORK_RANGE):
            out.append((f"work {d['img']}x{per} of {depth}", d))
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
    work = work_descs(rng, CHECKER, int(WORK[sim] * harness.scale()))
    # the count is exact: some tasks fill the compressed copy to its last entry
    assert any(im2col.task_taps(d) == CHECKER.geom.depth("a") for _, d in work)
    descs += work
    verdicts = {DescriptorChecker.model(d, CHECKER) for _, d in descs}
    assert {Error.OK, Error.BAD_CONV, Error.CONV_SHAPE, Error.A_RANGE, Error.B_RANGE,
            Error.WORK_RANGE} <= verdicts, verdicts
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": CHECKER, "descs": descs}))
    units.run(sim, "checker", case)
