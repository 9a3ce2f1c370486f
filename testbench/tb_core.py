"""cocotb bench of the compute core against ganpu.core.model, bit for bit.

Environment: GANPU_SEED, GANPU_TASKS (random tasks; a quarter as many overlapped ones),
GANPU_ERRORS (1 = every malformed class, else a subset), GANPU_TASKFILE (the overlapped
test's tasks instead of random ones: a pickle of ``[(name, desc, loads), ...]``), GANPU_CORE (the simulated core's configuration, from
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
    """Out-of-range host addresses and writes during a task (to its set) set h_err and
    change nothing."""
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
    await port.write_raw(Buf.BIAS.value, CONFIG.host_depth("bias") + 3, 0xDEAD)   # beyond every set
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


def _written(desc):
    """Element indices of OUT and MASK_OUT (and MASK_IN for an EORS task) a checked
    task writes, in its set."""
    M, N = desc["m"], desc["n"]
    out = (desc["o_base"] + np.arange(M)[:, None] * desc["o_sm"] + np.arange(N)[None, :] * desc["o_sn"]).ravel()
    written = {"out": out, "mask_out": np.arange(M * N)}
    if model.eors_active(desc):
        written["mask_in"] = np.arange(M * N)
    return written


async def _read_set(port, buf, s, idx):
    """Elements ``idx`` of set ``s`` of ``buf``, read as one span through the host port."""
    lo, hi = int(idx.min()), int(idx.max())
    span = await port.read(Buf.from_name(buf), s * CONFIG.depth(buf) + lo, hi - lo + 1)
    return span[idx - lo]


def _overlap_tasks(rng, count):
    """``(name, desc, loads)`` of the overlapped run: GANPU_TASKFILE's list (real
    tensors) when given, else ``count`` random tasks at random bases."""
    path = os.environ.get("GANPU_TASKFILE")
    if path:
        import pickle
        with open(path, "rb") as f:
            return pickle.load(f)
    return [(f"random {t}", *shift(*random_task(rng), rng)) for t in range(count)]


@cocotb.test()
async def overlapped_tasks(dut):
    """Two buffer sets (``docs/core.md``, "Two buffer sets"): task t runs in set t % 2;
    while it computes, the host reads task t-1's OUT, MASK_OUT (and MASK_IN) from the
    other set and compares them with the model, loads task t+1's operands there and
    reads one of the running set's operands; a write to that operand must be refused
    (``err``) and land nowhere: on odd tasks right after ``start``, on even ones after
    the idle set's accesses (which must leave ``err`` at 0) if the task still runs.
    Every task's results are the model's on the host's image of both sets."""
    if CONFIG.buffer_sets < 2:
        dut._log.info("one buffer set: nothing overlaps")
        return
    rng = np.random.default_rng(int(os.environ.get("GANPU_SEED", "1")) + 100)
    drv = await start(dut)
    port = drv.transport
    busy, start_bit, set_bit = dut.task__busy, dut.task__start, dut.task__set
    img = {b.name.lower(): np.zeros(CONFIG.host_depth(b), np.uint16) for b in Buf}
    tasks = _overlap_tasks(rng, max(2, int(os.environ.get("GANPU_TASKS", "10")) // 4))

    async def load(loads, s):
        for name, (base, v) in loads.items():
            v = np.asarray(v, dtype=np.uint16)
            await port.write(Buf.from_name(name), s * CONFIG.depth(name) + base, v)
            img[name][s * CONFIG.depth(name) + base:][:len(v)] = v

    async def check(name, desc, s):
        if model.check(desc, GEOM, CONFIG.eors_lanes) != Error.OK:
            return
        for buf, idx in _written(desc).items():
            got = await _read_set(port, buf, s, idx)
            exp = img[buf][s * CONFIG.depth(buf) + idx]
            bad = np.flatnonzero(got != exp)
            assert bad.size == 0, (f"{name} (set {s}): {bad.size} mismatches in {buf}, first at "
                                   f"{int(idx[bad[0]])}: {int(got[bad[0]]):#06x} != {int(exp[bad[0]]):#06x}")

    await load(tasks[0][2], 0)
    overlapped = refused = 0
    for t, (name, desc, _) in enumerate(tasks):
        s, idle = t % 2, 1 - t % 2
        set_bit.value = s
        await port.start(drv.pack(desc))
        set_bit.value = idle  # sampled only with start
        assert busy.value == 1, f"{name}: not busy after start"
        assert port.host_error == 0, "start must clear h_err"
        # an element of one of the running task's operands, in its set
        op = sorted(tasks[t][2])[int(rng.integers(0, len(tasks[t][2])))]
        base, v = tasks[t][2][op]
        addr = s * CONFIG.depth(op) + base + int(rng.integers(0, len(v)))

        async def refuse():
            nonlocal refused
            await port.write_raw(Buf.from_name(op).value, addr, int(img[op][addr]) ^ 0xFFFF)
            assert port.host_error == 1, f"{name}: a write to the running set {s} was accepted"
            refused += 1

        # odd tasks: the refusal first (busy for sure), the idle set's acceptance then
        # shows in the data; even tasks: the idle set's accesses first, each accepted
        # (err stays 0), then the refusal if the task still runs
        if t % 2:
            await refuse()
        if t:
            await check(*tasks[t - 1][:2], idle)
        if t + 1 < len(tasks):
            await load(tasks[t + 1][2], idle)
        overlapped += int(busy.value)  # still busy after the other set's reads and loads
        got = await port.read(Buf.from_name(op), addr, 1)
        assert got[0] == img[op][addr], f"{name}: the running set's {op} reads wrong"
        if not t % 2:
            assert port.host_error == 0, f"{name}: an access to the idle set {idle} was refused"
            if busy.value:
                await refuse()
        await port.wait_idle(DEFAULT_TIMEOUT)
        assert start_bit.value == 0
        err = Error(dut.task__error.value.to_unsigned())
        exp_err, img = model.run_task_in_set(desc, img, CONFIG, s)
        assert err == exp_err, f"{name}: error {err!r}, model {exp_err!r}"
        if op not in _written(desc):
            got = await port.read(Buf.from_name(op), addr, 1)
            assert got[0] == img[op][addr], f"{name}: a refused write reached set {s}'s {op}"
    await check(*tasks[-1][:2], (len(tasks) - 1) % 2)
    assert refused >= len(tasks) // 2
    dut._log.info("%d tasks alternating two sets bit-exact; every task's first idle-set access "
                  "while busy, %d busy after them all; %d refused writes to the running set",
                  len(tasks), overlapped, refused)
