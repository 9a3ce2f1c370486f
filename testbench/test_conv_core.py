"""Convolutions on the whole core, generated Verilog against the task model, both
simulators: random conv and tconv shapes (kernel 1-5, stride 1-2, padding 0-2, channels
1-16, odd sizes) in FP (with a ReLU mask, with EORS), BP (through a stored ReLU or
LeakyReLU mask) and WG; tiles of every conv phase of a real conv-GAN training step;
malformed convolution descriptors (each conv error code, stride and dilation 3)
refused with every buffer unchanged. Verilator takes the sweep and the real step,
Icarus a small subset on the small core of ``test_core``."""

import pickle

import numpy as np
import pytest

import harness
from test_core import CONFIGS, _core, _env
from test_conv_model import random_layer, random_f16
from ganpu import numerics
from ganpu.core import im2col, model
from ganpu.core.descriptor import Error
from ganpu.host.lower import ConvShape, conv_tasks
from ganpu.host.tasks import conv_record_phases

RANDOM = {"verilator": 24, "icarus": 2}
ACTS = {"identity": 0, "relu": 1, "leaky": 2}
SLOPE = int(numerics.f16_bits(0.2)[()])


def _pick(tasks, rng, count):
    """A few tiles of a phase: the first, the last and random ones (every tile is
    independent; the model test covers all of them)."""
    if count == 1:
        return tasks[:1]
    idx = sorted({0, len(tasks) - 1, *rng.integers(0, len(tasks), max(0, count - 2)).tolist()})
    return [tasks[i] for i in idx]


def random_conv_tasks(rng, config, count, tiles):
    out = []
    i = 0
    while len(out) < count:
        layer, h, ho = random_layer(rng, i)
        i += 1
        b = int(rng.integers(1, 3))
        shape = ConvShape.of_layer(layer, b, (h, h))
        x = random_f16(rng, (b, layer.cin, h, h), zeros=float(rng.choice([0.0, 0.5])))
        dz = random_f16(rng, (b, layer.cout, ho, ho))
        phase = ["fp", "bp", "wg"][i % 3]
        kw = dict(x=x, dz=dz, w=layer.w16)
        if phase == "fp":
            kw.update(b=random_f16(rng, layer.cout, zeros=0.0), act=ACTS[layer.act], slope=SLOPE)
            if layer.act == "relu":
                M = b * ho * ho
                if i % 2:
                    kw["mask"] = rng.random((M, layer.cout)) < 0.6
                else:
                    kw.update(eors=True, eors_lanes=config.eors_lanes)
        elif phase == "bp":
            act = ["relu", "leaky", "identity"][i % 3]
            kw.update(act=ACTS[act], slope=SLOPE, mask=rng.random((b * h * h, layer.cin)) < 0.5)
        try:
            tasks, _ = conv_tasks(shape, phase, config.geom, **kw)
        except ValueError:  # does not fit this core
            continue
        for desc, loads, (m0, m1), (n0, n1) in _pick(tasks, rng, tiles):
            out.append((f"random {i} {shape!r} {phase}{' eors' if desc['eors'] else ''} "
                        f"[{m0}:{m1}, {n0}:{n1}]", desc, loads, True))
    return out


def malformed_tasks(config, all_checks=True):
    """One refused descriptor per conv check, from an accepted conv FP task (with
    ``all_checks`` False: the two convolution codes only)."""
    rng = np.random.default_rng(2)
    shape = ConvShape("conv", 1, 2, 3, 3, 2, 1, (5, 5))
    (desc, loads, _, _), = conv_tasks(shape, "fp", config.geom, x=random_f16(rng, (1, 2, 5, 5)),
                                      w=random_f16(rng, (3, 2, 3, 3)), b=random_f16(rng, 3))[0]
    g = config.geom
    taps = im2col.task_taps(desc)
    cases = {
        "undefined conv mode": dict(conv=3),
        "zero stride": dict(cstride=0),
        # 1 or 2 only: the Indexer's set-up shifts by 0 or 1 bit (docs/conv.md)
        "stride 3": dict(cstride=3),
        "dilation 3": dict(dil=3),
        "output size 0": dict(out_h=0),
        "kernel larger than the padded input": dict(pad=3),
        "image beyond A": dict(a_base=g.depth("a") - 10),
        "kernel beyond B": dict(b_base=g.depth("b") - 10),
        "output beyond OUT": dict(o_base=g.depth("out") - 2),
        # one image read again and again (a_sm = 0): only the compressed copy
        # overflows, by one image's valid taps (the checker counts them exactly)
        "compressed A overflow": dict(img=g.depth("a") // taps + 1, a_sm=0,
                                      m=(g.depth("a") // taps + 1) * desc["m"]),
    }
    out = [("accepted conv", desc, loads, True)]
    if not all_checks:
        cases = {w: c for w, c in cases.items() if w in ("undefined conv mode",
                                                         "kernel larger than the padded input")}
    for what, bad in cases.items():
        d = {**desc, **bad}
        assert model.check(d, g, config.eors_lanes) != Error.OK, what
        out.append((what, d, {}, False))
    codes = {model.check(d, g, config.eors_lanes) for _, d, _, ok in out if not ok}
    assert {Error.BAD_CONV, Error.CONV_SHAPE} | ({Error.A_RANGE, Error.B_RANGE, Error.OUT_RANGE,
                                                  Error.WORK_RANGE} if all_checks else set()) == codes, codes
    return out


@pytest.fixture(scope="module")
def conv_step():
    from ganpu.gan.export import export_layers
    return export_layers(net="conv", steps=(0,), batch=32, seed=0)


def real_conv_tasks(records, config, tiles, keys=None):
    rng = np.random.default_rng(4)
    out = []
    for key, shape, phase, kw, rec in conv_record_phases(records):
        if keys is not None and key not in keys:
            continue
        tasks, _ = conv_tasks(shape, phase, config.geom, **kw)
        for desc, loads, (m0, m1), (n0, n1) in _pick(tasks, rng, tiles):
            out.append((f"{key} [{m0}:{m1}, {n0}:{n1}] of {len(tasks)}", desc, loads, True))
    return out


# Three independent runs on one build (each starts from the bench's known buffer
# contents), so the two xdist workers share the sweep instead of one running it alone.
PARTS = ("refusals", "random", "real")


def conv_core_tasks(sim, part, conv_step):
    config = CONFIGS[sim]
    if part == "refusals":
        return malformed_tasks(config, sim == "verilator")
    if part == "random":
        rng = np.random.default_rng(9)
        n = max(1, int(RANDOM[sim] * harness.scale()))
        # every buffer a task writes is read back after each task: Icarus gets few tasks
        return random_conv_tasks(rng, config, n, 1 if sim == "icarus" else 2)
    if sim == "verilator":
        return real_conv_tasks(conv_step, config, 2)
    return real_conv_tasks(conv_step, config, 1, keys={"s0/g_update/G.tconv3/bp",
                                                       "s0/g_update/G.tconv2/wg"})


@pytest.mark.parametrize("part", PARTS)
@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_conv_core(sim, part, conv_step, tmp_path):
    tasks = conv_core_tasks(sim, part, conv_step)
    taskfile = tmp_path / "tasks.pkl"
    taskfile.write_bytes(pickle.dumps(tasks))
    harness.run(sim, _core(sim), "ganpu_core", "tb_conv", env=_env(sim, GANPU_TASKFILE=taskfile))
