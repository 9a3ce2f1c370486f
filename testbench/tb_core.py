"""cocotb bench of the compute core against ganpu.core.model, bit for bit.

Environment: GANPU_SEED, GANPU_TASKS (random tasks), GANPU_ERRORS (1 = every malformed
class, else a subset), GANPU_CORE (the simulated core's configuration, from
``ganpu.sim.cocotb_transport.config_env``; default the default core). The
host side is the package's driver (:mod:`ganpu.host.driver`) over the cocotb transport.
"""

import os

import cocotb
import numpy as np

from ganpu import numerics
from ganpu.core import Act, Buf, Error, Op
from ganpu.core import model
from ganpu.host import lower
from ganpu.host.driver import DEFAULT_TIMEOUT
from ganpu.sim.cocotb_transport import attach, config_from_env
from vectors import f16_mixed

# the core's EORS lane count (the BW buffer's grouping) comes from GANPU_EORS_LANES
# when a benchmark builds another size
CONFIG = config_from_env()
GEOM = CONFIG.geom


async def start(dut):
    """Clock, reset, and a driver whose shadow holds what the hardware's task-written
    buffers hold (block RAM keeps its contents across resets, so an earlier test's
    results are still there)."""
    drv = await attach(dut, CONFIG)
    await drv.sync()
    return drv


def values(rng, shape, zeros, special):
    """binary16 operands of moderate range (sums stay finite unless specials are asked
    for) with a fraction ``zeros`` of signed zeros."""
    n = int(np.prod(shape))
    v = numerics.f16_bits(rng.standard_normal(n).astype(np.float32) * 0.5)
    if special:
        v = np.where(rng.random(n) < 0.05, f16_mixed(rng, n), v)
    z = rng.random(n) < zeros
    v = np.where(z, rng.choice(np.array([0x0000, 0x8000], dtype=np.uint16), n), v)
    return v.astype(np.uint16).reshape(shape)


def random_task(rng, dims=None):
    batch, fin, fout = dims or [int(rng.choice([1, 2, 3, 5, 7, 13, 16, 31, 32])) for _ in range(3)]
    zeros = float(rng.choice([0.0, 0.5, 0.9, 1.0]))
    special = rng.random() < 0.3
    kind = rng.choice(["fp", "fp_mask", "fp_eors", "fp_eors", "bp", "wg", "db"])
    act = Act(int(rng.choice([0, 1, 2])))
    slope = int(numerics.f16_bits(rng.choice([0.01, 0.2, -0.5]))[()])
    if kind in ("fp", "fp_mask", "fp_eors"):
        x = values(rng, (batch, fin), zeros, special)
        w = values(rng, (fout, fin), 0.0, special)
        b = values(rng, (fout,), 0.2, special)
        mask = None
        if kind == "fp_mask":
            act = Act.RELU
            mask = rng.random((batch, fout)) < float(rng.choice([0.0, 0.4, 1.0]))
        if kind == "fp_eors":
            # mostly ReLU, where the predictor works; the others must ignore the bit
            act = Act.RELU if rng.random() < 0.8 else act
        return lower.fc_fp(x, w, b, act=act, slope=slope, mask=mask, eors=kind == "fp_eors")
    if kind == "bp":
        dy = values(rng, (batch, fout), zeros, special)
        w = values(rng, (fout, fin), 0.0, special)
        mask = rng.random((batch, fin)) < float(rng.choice([0.0, 0.5, 1.0]))
        return lower.fc_bp(dy, w, mask, act=act, slope=slope)
    dy = values(rng, (batch, fout), zeros, special)
    if kind == "wg":
        return lower.fc_wg(dy, values(rng, (batch, fin), zeros, special))
    return lower.fc_db(dy)


def shift(desc, loads, rng):
    """Move every operand to a random base so addressing is exercised."""
    desc = dict(desc)
    loads = dict(loads)
    for key, buf in (("a_base", "a"), ("b_base", "b"), ("bias_base", "bias")):
        if buf in loads and not (desc.get("eors") and buf == "bias"):
            base, v = loads[buf]
            room = CONFIG.depth(buf) - len(v)
            off = int(rng.integers(0, room + 1)) if room > 0 else 0
            loads[buf] = (base + off, v)
            desc[key] += off
    return desc, loads


@cocotb.test()
async def random_tasks(dut):
    rng = np.random.default_rng(int(os.environ.get("GANPU_SEED", "1")))
    drv = await start(dut)
    ntasks = int(os.environ.get("GANPU_TASKS", "10"))
    for t in range(ntasks):
        desc, loads = shift(*random_task(rng), rng)
        await drv.load(loads)
        await drv.run_checked(desc, f"task {t}")
    dut._log.info("%d random tasks bit-exact", ntasks)


@cocotb.test()
async def edge_tasks(dut):
    """Every op x activation, sizes 1 and primes, all-zero A, masks all on and all off."""
    rng = np.random.default_rng(2)
    drv = await start(dut)
    cases = 0
    x = values(rng, (7, 13), 0.5, False)
    w = values(rng, (11, 13), 0.0, False)
    b = values(rng, (11,), 0.0, False)
    for act in Act:
        for desc, loads in (lower.fc_fp(x, w, b, act=act, slope=0x3266),
                            lower.fc_bp(values(rng, (7, 11), 0.5, False), w,
                                        rng.random((7, 13)) < 0.5, act=act, slope=0x3266)):
            await drv.load(loads)
            await drv.run_checked(desc, f"{Op(desc['op']).name} {act.name}")
            cases += 1
    for desc, loads in (lower.fc_fp(np.zeros((3, 5), np.uint16), w[:, :5], b, act=Act.RELU),
                        lower.fc_fp(x, w, b, mask=np.ones((7, 11), bool)),
                        lower.fc_fp(x, w, b, mask=np.zeros((7, 11), bool)),
                        lower.fc_bp(values(rng, (7, 11), 0.0, False), w, np.zeros((7, 13), bool)),
                        lower.fc_fp(x[:1, :1], w[:1, :1], b[:1], act=Act.IDENTITY),
                        lower.fc_wg(values(rng, (1, 1), 0.0, False), values(rng, (1, 1), 0.0, False)),
                        lower.fc_db(values(rng, (13, 11), 1.0, False))):
        await drv.load(loads)
        await drv.run_checked(desc, f"edge {cases}")
        cases += 1
    dut._log.info("%d edge tasks bit-exact", cases)


def malformed(all_classes):
    good, _ = lower.fc_fp(np.zeros((4, 8), np.uint16), np.zeros((6, 8), np.uint16),
                          np.zeros(6, np.uint16))
    g = GEOM
    cases = [
        ("bad op", dict(op=3)),
        ("zero dim", dict(k=0)),
        ("A beyond buffer", dict(a_base=g.depth("a") - 8)),
        ("B beyond buffer", dict(b_sn=g.depth("b") // 4)),
        ("OUT beyond buffer", dict(o_base=g.depth("out") - 1)),
        ("bad act", dict(act=3)),
        ("oversized dimension", dict(m=g.depth("mask") + 1, a_sm=0)),
        ("bias beyond buffer", dict(bias_base=g.depth("bias") - 2)),
        ("WG with ReLU", dict(op=Op.WG.value, act=Act.RELU.value)),
        ("FP mask without ReLU", dict(use_mask=1, act=Act.IDENTITY.value)),
        ("compressed A overflow", dict(m=g.depth("a") // 8 + 1, k=8, a_sm=0, n=1, o_sm=1)),
        ("EORS with strided weights", dict(eors=1, b_sk=2)),
        ("EORS with unaligned bias", dict(eors=1, bias_base=3)),
        ("EORS weights beyond BW", dict(eors=1, n=64, k=200, b_sn=0, o_sm=0, m=1)),
    ]
    if not all_classes:
        cases = cases[:3]
    return [(what, {**good, **bad}) for what, bad in cases]


@cocotb.test()
async def malformed_descriptors(dut):
    """Each malformed class is refused with its code and leaves OUT, MASK_OUT and
    MASK_IN as they were (the only buffers a task can write)."""
    rng = np.random.default_rng(3)
    drv = await start(dut)
    # known, non-zero contents, so "wrote nothing" is visible
    await drv.load({"out": (0, rng.integers(0, 1 << 16, CONFIG.depth("out")).astype(np.uint16)),
                    "mask_out": (0, rng.integers(0, 2, CONFIG.depth("mask_out")).astype(np.uint16)),
                    "mask_in": (0, rng.integers(0, 2, CONFIG.depth("mask_in")).astype(np.uint16))})
    for what, desc in malformed(os.environ.get("GANPU_ERRORS", "1") == "1"):
        exp = model.check(desc, GEOM, CONFIG.eors_lanes)
        assert exp != Error.OK, f"bench error: {what} is not malformed for the model"
        err, _ = await drv.run_checked(desc, what)
        assert err == exp
    dut._log.info("malformed descriptors refused, buffers intact")


@cocotb.test()
async def host_port_errors(dut):
    """Out-of-range host addresses and writes during a task set h_err and change nothing."""
    drv = await start(dut)
    port = drv.transport
    rng = np.random.default_rng(4)
    depth = CONFIG.depth("bias")
    bias = rng.integers(0, 1 << 16, depth).astype(np.uint16)
    await drv.load({"bias": (0, bias)})
    assert port.host_error == 0
    await port.write_raw(7, 0, 0xBEEF)                        # code 7 names no buffer
    assert port.host_error == 1, "write to the undefined code 7 not flagged"
    await port.run(drv.pack(lower.fc_desc(m=0, n=1, k=1)), 100)  # a refused task clears err
    assert port.host_error == 0, "start must clear h_err"
    await port.write_raw(Buf.BIAS.value, depth + 3, 0xDEAD)   # beyond its depth
    assert port.host_error == 1, "out-of-range write not flagged"
    got = await drv.read("bias", 0, depth)
    assert np.array_equal(got, bias), "out-of-range write corrupted BIAS"
    # a write while a task runs is flagged and dropped
    desc, loads = lower.fc_wg(values(rng, (16, 32), 0.0, False), values(rng, (16, 32), 0.0, False))
    await drv.load(loads)
    await port.start(drv.pack(desc))
    assert port.host_error == 0, "start must clear h_err"
    await port.write_raw(Buf.A.value, 0, 0x1234)
    assert port.host_error == 1, "write during a task not flagged"
    await port.wait_idle(DEFAULT_TIMEOUT)
    got = await drv.read("a", 0, 4)
    assert got[0] == drv.shadow["a"][0], "write during a task reached A"
    _, exp = drv.expect(desc)
    out = await drv.read("out", 0, 32 * 32)
    assert np.array_equal(out, exp["out"][:32 * 32])
