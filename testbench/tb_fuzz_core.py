"""cocotb fuzzer and soak bench of the compute core against ``ganpu.core.model``.

Random descriptors (every field, edge values, undefined op/act codes, strides and bases
at and one past the buffer boundaries, overlapping OUT layouts, EORS combinations) run
on random buffer contents; each verdict must be :func:`ganpu.core.model.check`'s and
each task's buffers :func:`ganpu.core.model.run_task`'s, bit for bit.

Two modes (``GANPU_FUZZ_MODE``):

* ``fuzz``: after every task, EVERY buffer is read back through the host port and
  compared with the model (so a stray write anywhere is seen). A difference after an
  accepted task is a mismatch; after a refused task it is a write after an error
  verdict. Use a small geometry, where a full read-back costs a few hundred cycles.
* ``soak``: random and real (a reference GAN training step, :mod:`ganpu.host.tasks`)
  tasks until ``GANPU_FUZZ_MACS`` surviving MACs have been checked; after each task the
  region it can write is read back (OUT from its first to its last output address,
  MASK_OUT and MASK_IN over ``M*N``), not the whole memory.

A task that does not finish within its cycle budget is a hang: counted, the core is
reset and the model's image re-read from the hardware. Counts go to
``GANPU_FUZZ_RESULTS`` (JSON) before the bench asserts that mismatches, writes after
an error, wrong verdicts and hangs are all zero.

A second test, ``host_port``, drives the host port's refusals and edges (see its
docstring).

Environment: GANPU_FUZZ_CONFIG (pickle of the :class:`CoreConfig` the core was built
with), GANPU_FUZZ_MODE, GANPU_FUZZ_SEED, GANPU_FUZZ_TASKS (fuzz: task count),
GANPU_FUZZ_MACS (soak: surviving MACs to check), GANPU_FUZZ_RESULTS.
"""

import json
import os
import pickle
import time

import cocotb
import numpy as np
from cocotb.triggers import SimTimeoutError

from ganpu import numerics
from ganpu.core import Buf, Error, Geometry, model
from ganpu.core.descriptor import descriptor_layout
from ganpu.host.lower import ConvShape, fc_desc, conv_tasks, pack_desc
from ganpu.sim.cocotb_transport import attach
from vectors import f16_mixed

# every field of the descriptor with its width (narrow conv fields take the low bits of
# a random value, so each of their codes is reached)
FIELDS = {name: field.width for name, field in descriptor_layout(Geometry())}


# --- random descriptors ----------------------------------------------------------

def _layout(rng, rows, cols, depth, top):
    """(base, s_rows, s_cols) of a (rows, cols) operand in a buffer of ``depth``:
    row-major, column-major, padded, broadcast (stride 0) or random, with the base at
    0, anywhere, exactly at the last fitting base, or one past it."""
    kind = rng.choice(["row", "row", "col", "pad", "bcast", "random"])
    if kind == "row":
        sr, sc = cols, 1
    elif kind == "col":
        sr, sc = 1, rows
    elif kind == "pad":
        sr, sc = cols + int(rng.integers(1, 4)), 1
    elif kind == "bcast":
        sr, sc = (0, 1) if rng.random() < 0.5 else (cols, 0)
    else:
        sr, sc = int(rng.integers(0, 2 * cols + 2)), int(rng.integers(0, 3))
    span = (rows - 1) * sr + (cols - 1) * sc
    last = depth - 1 - span  # the highest base that still fits
    where = rng.choice(["zero", "any", "edge", "past"], p=[.25, .45, .22, .08])
    if where == "zero" or last < 0:
        base = 0
    elif where == "any":
        base = int(rng.integers(0, last + 1))
    elif where == "edge":
        base = last
    else:
        base = last + 1
    return min(base, top), min(sr, top), min(sc, top)


CONV_FIELDS = ("conv", "kern", "cstride", "dil", "pad", "flip", "ky0", "kh", "img", "chan",
               "in_h", "in_w", "oy0", "out_h", "out_w", "b_sy", "b_sx")


def conv_desc(rng, cfg):
    """A tile of a random conv or tconv phase as the host lowers it, in half of the
    cases with one convolution field changed to a neighbouring or random value (so the
    convolution checks, CONV_SHAPE among them, are met from both sides)."""
    g = cfg.geom
    widths = {name: field.width for name, field in descriptor_layout(g)}
    while True:
        kind = str(rng.choice(["conv", "tconv"]))
        k, s = int(rng.integers(1, 5)), int(rng.integers(1, 3))
        p = int(rng.integers(0, k))
        op = int(rng.integers(0, s)) if kind == "tconv" else 0
        cin, cout, b = (int(rng.integers(1, 4)) for _ in range(3))
        h = int(rng.integers(1, 6))
        try:
            shape = ConvShape(kind, b, cin, cout, k, s, p, (h, h), op)
            ho, wo = shape.out_hw
            phase = str(rng.choice(["fp", "bp", "wg"]))
            tasks, _ = conv_tasks(shape, phase, g, x=np.zeros(b * cin * h * h, np.uint16),
                                  dz=np.zeros(b * cout * ho * wo, np.uint16),
                                  w=np.zeros(cin * cout * k * k, np.uint16),
                                  act=int(phase == "fp"), eors=bool(rng.random() < 0.2),
                                  eors_lanes=cfg.eors_lanes)
        except ValueError:  # no such layer, or it does not fit this core
            continue
        desc = dict(tasks[int(rng.integers(0, len(tasks)))][0])
        if rng.random() < 0.5:
            f = str(rng.choice(CONV_FIELDS))
            v = desc[f]
            new = int(rng.choice([0, 1, 2, 3, v + 1, max(v - 1, 0), int(rng.integers(0, 1 << widths[f]))]))
            desc[f] = new & ((1 << widths[f]) - 1)
        return desc


def random_desc(rng, cfg, max_dim=8):
    """A descriptor of :func:`ganpu.core.model.check`'s whole domain: mostly tasks that
    fit (so results are checked), with every kind of fault mixed in."""
    g = cfg.geom
    P = cfg.eors_lanes
    top = (1 << g.dim_bits) - 1
    if rng.random() < 0.15:
        # any value of every field, edges favoured
        edges = [0, 1, 2, top, top - 1] + [g.depth(x) + d for x in ("a", "b", "out", "bias", "mask")
                                         for d in (-1, 0, 1)]

        def val():
            return int(rng.choice(edges)) if rng.random() < 0.5 else int(rng.integers(0, top + 1))
        d = {f: val() & ((1 << w) - 1) for f, w in FIELDS.items()}
        d.update(op=int(rng.integers(0, 4)), act=int(rng.integers(0, 4)),
                 slope=int(rng.integers(0, 1 << 16)), use_mask=int(rng.integers(0, 2)),
                 bias=int(rng.integers(0, 2)), eors=int(rng.integers(0, 2)))
        return {f: min(v, top) for f, v in d.items()}
    if rng.random() < 0.1:
        return conv_desc(rng, cfg)
    M, N, K = (int(rng.integers(1, max_dim + 1)) for _ in range(3))
    big = rng.random() < 0.1
    if big:  # past the masks, the compressed A or BW, with broadcast operands
        M, N, K = (int(rng.choice([1, 2, 4, 16, 32, 64])) for _ in range(3))
    op = int(rng.choice([0, 1, 2, 3], p=[.55, .22, .2, .03]))
    act = int(rng.choice([0, 1, 2, 3], p=[.3, .45, .22, .03]))
    if op == 2 and rng.random() < 0.85:
        act = 0
    eors = int(op == 0 and act == 1 and rng.random() < 0.5)
    use_mask = int(op == 0 and act == 1 and not eors and rng.random() < 0.4)
    if rng.random() < 0.03:  # a combination the checker refuses
        use_mask, eors = 1, int(rng.integers(0, 2))
    a = _layout(rng, M, K, g.depth("a"), top)
    b = _layout(rng, N, K, g.depth("b"), top)
    if eors and rng.random() < 0.95:
        b = (b[0], N > 1 and K or b[1], 1) if b[2] != 1 else b
        b = (min(b[0], max(0, g.depth("b") - 1 - (N - 1) * b[1] - (K - 1))), b[1], 1)
    o = _layout(rng, M, N, g.depth("out"), top)
    if big and rng.random() < 0.7:
        a, b, o = (0, 0, a[2]), (0, 0, b[2]), (0, 0, 1)
    bias = int(rng.random() < (0.15 if big else 0.5))
    hi = g.depth("bias") - N
    bias_base = int(rng.choice([0, max(hi, 0), hi + 1, int(rng.integers(0, max(hi, 0) + 1))],
                               p=[.3, .2, .1, .4]))
    if eors and rng.random() < 0.9:
        bias_base -= bias_base % P
    return fc_desc(op=op, act=act, slope=int(numerics.f16_bits(rng.choice([0.01, 0.2, -0.5, 3.0]))[()]),
                 use_mask=use_mask, bias=bias, eors=eors, m=M, n=N, k=K,
                 a_base=a[0], a_sm=a[1], a_sk=a[2], b_base=b[0], b_sn=b[1], b_sk=b[2],
                 o_base=o[0], o_sm=o[1], o_sn=o[2], bias_base=max(0, min(bias_base, top)))


def random_values(rng, n, zeros=None):
    """binary16 data: moderate normals, a fraction of signed zeros, a few specials."""
    zeros = float(rng.choice([0.0, 0.3, 0.7, 1.0])) if zeros is None else zeros
    v = numerics.f16_bits(rng.standard_normal(n).astype(np.float32) * 0.5)
    v = np.where(rng.random(n) < 0.03, f16_mixed(rng, n), v)
    v = np.where(rng.random(n) < zeros, rng.choice(np.array([0, 0x8000], np.uint16), n), v)
    return v.astype(np.uint16)


def surviving_macs(desc, bufs, cfg):
    """MACs the core issues for an accepted task: nonzero A entries of computed outputs."""
    A, _, _ = model.operands(desc, bufs)
    active = model.active_outputs(desc, bufs, A, cfg.eors, cfg.eors_lanes)
    nz = ~numerics.is_zero16(A)
    return int((active.sum(axis=1) * nz.sum(axis=1)).sum())


def timeout_cycles(desc):
    M, N, K = desc["m"], desc["n"], desc["k"]
    return 2000 + 8 * (M * N * (K + 2) + M * K)


# --- the bench ---------------------------------------------------------------------

class Fuzzer:
    def __init__(self, dut, drv, cfg, rng):
        self.dut, self.drv, self.port, self.cfg, self.rng = dut, drv, drv.transport, cfg, rng
        self.bufs = cfg.zero_buffers()
        self.counts = dict(tasks=0, accepted=0, refused=0, mismatches=0, writes_after_error=0,
                           wrong_verdicts=0, hangs=0, macs=0, cycles=0, real_tasks=0,
                           conv_tasks=0, conv_accepted=0, conv_macs=0)
        self.verdicts = {}
        self.failures = []

    def _mask(self, name, v):
        return v & 1 if name.startswith("mask") else v

    async def write(self, name, base, values):
        values = self._mask(name, np.asarray(values, np.uint16))
        await self.port.write(Buf.from_name(name), base, values)
        self.bufs[name][base:base + len(values)] = values

    async def fill_all(self):
        for name, v in self.bufs.items():
            await self.write(name, 0, random_values(self.rng, len(v)) if not name.startswith("mask")
                             else self.rng.integers(0, 2, len(v)).astype(np.uint16))

    async def scribble(self):
        """Fresh random data in a random region of one to three buffers."""
        for _ in range(int(self.rng.integers(1, 4))):
            name = str(self.rng.choice(list(self.bufs)))
            depth = len(self.bufs[name])
            n = int(self.rng.integers(1, min(depth, 48) + 1))
            base = int(self.rng.integers(0, depth - n + 1))
            v = (self.rng.integers(0, 2, n).astype(np.uint16) if name.startswith("mask")
                 else random_values(self.rng, n))
            await self.write(name, base, v)

    async def read_all(self):
        return {name: await self.port.read(Buf.from_name(name), 0, len(v)) for name, v in self.bufs.items()}

    async def read_region(self, desc):
        """The elements a task can write (soak mode): OUT over its address range and
        the first M*N mask bits of MASK_OUT and MASK_IN."""
        M, N = max(desc["m"], 1), max(desc["n"], 1)
        depth = len(self.bufs["out"])
        # a refused task's fields may point anywhere: its region is clipped to the buffers
        lo = min(desc["o_base"], depth - 1)
        hi = min(desc["o_base"] + (M - 1) * desc["o_sm"] + (N - 1) * desc["o_sn"], depth - 1)
        mn = min(M * N, len(self.bufs["mask_out"]))
        got = {n: v.copy() for n, v in self.bufs.items()}
        got["out"][lo:hi + 1] = await self.port.read(Buf.OUT, lo, hi - lo + 1)
        for name in ("mask_out", "mask_in"):
            got[name][:mn] = await self.port.read(Buf.from_name(name), 0, mn)
        return got

    def fail(self, what):
        self.failures.append(what)
        self.dut._log.error(what)

    async def run(self, desc, name, full_readback=True):
        cfg = self.cfg
        exp_err, exp = model.run_task(desc, self.bufs, cfg.geom, cfg.eors, cfg.eors_lanes)
        self.counts["tasks"] += 1
        conv = bool(desc.get("conv"))
        self.counts["conv_tasks"] += conv
        self.verdicts[exp_err.name] = self.verdicts.get(exp_err.name, 0) + 1
        try:
            await self.port.start(pack_desc(desc, cfg.geom))
            await self.port.wait_idle(timeout_cycles(desc))
        except SimTimeoutError:
            self.counts["hangs"] += 1
            self.fail(f"{name}: hang (busy after {timeout_cycles(desc)} cycles); desc {desc}")
            await self.port.reset()
            self.bufs = await self.read_all()
            return
        err = Error(self.port.p["error"].value.to_unsigned())
        self.counts["cycles"] += self.port.p["cycles"].value.to_unsigned()
        if err != exp_err:
            self.counts["wrong_verdicts"] += 1
            self.fail(f"{name}: verdict {err!r}, model {exp_err!r}; desc {desc}")
        if exp_err == Error.OK:
            self.counts["accepted"] += 1
            self.counts["conv_accepted"] += conv
            macs = surviving_macs(desc, self.bufs, cfg)
        else:
            self.counts["refused"] += 1
            macs = 0
        got = await (self.read_all() if full_readback else self.read_region(desc))
        bad = {n: int(np.count_nonzero(got[n] != exp[n])) for n in exp}
        bad = {n: c for n, c in bad.items() if c}
        if bad:
            key = "mismatches" if exp_err == Error.OK else "writes_after_error"
            self.counts[key] += 1
            first = {n: int(np.flatnonzero(got[n] != exp[n])[0]) for n in bad}
            self.fail(f"{name}: {key} (elements differing {bad}, first at {first}); "
                      f"verdict {exp_err.name}; desc {desc}")
        else:
            self.counts["macs"] += macs
            self.counts["conv_macs"] += macs if conv else 0
        # carry on from what the hardware holds, so one fault is counted once
        self.bufs = got

    def report(self, seconds, path):
        out = dict(self.counts, verdicts=self.verdicts, seconds=round(seconds, 1),
                   failures=self.failures[:20])
        if path:
            with open(path, "w") as f:
                json.dump(out, f, indent=1)
        self.dut._log.info("fuzz: %s", json.dumps({k: v for k, v in out.items() if k != "failures"}))
        return out


def real_tasks(cfg, seed):
    """Every gemm of one training step of the reference MLP GAN, tiled for ``cfg``
    (exact and with EORS), as ``(name, desc, loads)``."""
    from ganpu.gan.export import export_layers
    from ganpu.host.tasks import record_tasks
    from ganpu.model.eors import DEFAULT_EORS
    out = []
    for eors in (False, True):
        recs = export_layers(net="mlp", steps=(0,), batch=32, seed=seed, eors=DEFAULT_EORS if eors else None)
        for key, rec in recs.items():
            for desc, loads, (m0, m1) in record_tasks(rec, cfg.geom, eors=eors, eors_lanes=cfg.eors_lanes):
                out.append((f"{key}[{m0}:{m1}]{' eors' if eors else ''}", desc, loads))
    return out


@cocotb.test()
async def fuzz(dut):
    with open(os.environ["GANPU_FUZZ_CONFIG"], "rb") as f:
        cfg = pickle.load(f)
    mode = os.environ.get("GANPU_FUZZ_MODE", "fuzz")
    seed = int(os.environ.get("GANPU_FUZZ_SEED", "1"))
    rng = np.random.default_rng(seed)
    drv = await attach(dut, cfg)
    fz = Fuzzer(dut, drv, cfg, rng)
    t0 = time.monotonic()
    await fz.fill_all()
    if mode == "fuzz":
        for t in range(int(os.environ.get("GANPU_FUZZ_TASKS", "100"))):
            await fz.scribble()
            await fz.run(random_desc(rng, cfg), f"task {t}")
    else:
        target = float(os.environ.get("GANPU_FUZZ_MACS", "1e6"))
        real = real_tasks(cfg, seed)
        t = 0
        while fz.counts["macs"] < target:
            if t % 3 == 2:
                name, desc, loads = real[(t // 3) % len(real)]
                for buf, (base, v) in loads.items():
                    await fz.write(buf, base, v)
                fz.counts["real_tasks"] += 1
            else:
                desc = random_desc(rng, cfg, max_dim=48)
                name = f"random {t}"
                await fz.scribble()
            await fz.run(desc, name, full_readback=False)
            t += 1
            if t % 50 == 0:
                fz.report(time.monotonic() - t0, os.environ.get("GANPU_FUZZ_RESULTS"))
    out = fz.report(time.monotonic() - t0, os.environ.get("GANPU_FUZZ_RESULTS"))
    for key in ("mismatches", "writes_after_error", "wrong_verdicts", "hangs"):
        assert out[key] == 0, f"{key}: {out[key]}; first failures: {out['failures'][:3]}"


@cocotb.test()
async def host_port(dut):
    """The host port's refusals and edges, every buffer read back after each (fuzz mode's
    small geometry): a write one past the depth or at the top address of every code, and
    of the undefined code 7, sets ``err`` and changes nothing; a write while busy too;
    reads past a buffer (element ``addr`` modulo the depth) and of code 7 (``rdata``
    holds) never set ``err``; a host write in the cycle of ``start`` is performed and
    the task reads it (``docs/memory-map.md``)."""
    with open(os.environ["GANPU_FUZZ_CONFIG"], "rb") as f:
        cfg = pickle.load(f)
    rng = np.random.default_rng(5)
    drv = await attach(dut, cfg)
    fz = Fuzzer(dut, drv, cfg, rng)
    port, p = fz.port, fz.port.p
    await fz.fill_all()
    lat = port.read_latency

    async def clear():
        await port.start(pack_desc(fc_desc(m=0, n=1, k=1), cfg.geom))   # refused: ZERO_DIM
        await port.wait_idle(100)
        assert port.host_error == 0, "an accepted start must clear err"

    async def unchanged(what):
        got = await fz.read_all()
        for name in fz.bufs:
            assert np.array_equal(got[name], fz.bufs[name]), f"{what} changed {name}"

    async def raw_read(code, addr, hold=lat + 2):
        p["we"].value = 0
        p["buf"].value = code
        p["addr"].value = addr
        for _ in range(hold):
            await port._tick()
        return p["rdata"].value.to_unsigned()

    for b in Buf:
        for addr in (cfg.depth(b), cfg.depth(b) + 1, 0xFFFF):
            await clear()
            await port.write_raw(b.value, addr, 0x5A5A)
            assert port.host_error == 1, f"write to {b.name}[{addr:#x}] not flagged"
    for addr in (0, 1, 0xFFFF):
        await clear()
        await port.write_raw(7, addr, 0xA5A5)
        assert port.host_error == 1, f"write to code 7 at {addr:#x} not flagged"
    await unchanged("refused writes")

    # reads never flag: past the depth wraps, code 7 holds the last value
    await clear()
    for b in Buf:
        depth = cfg.depth(b)
        addr = int(rng.integers(0, depth))
        assert await raw_read(b.value, addr + depth) == fz.bufs[b.name.lower()][addr]
        assert await raw_read(7, 0) == fz.bufs[b.name.lower()][addr], "code 7 read changed rdata"
    assert port.host_error == 0, "a read set err"

    # a write while a task runs is flagged and dropped; the task is unaffected
    x = random_values(rng, 8 * 8, 0.0)
    await fz.write("a", 0, x)
    await fz.write("b", 0, random_values(rng, 8 * 8, 0.0))
    desc = fc_desc(m=8, n=8, k=8, a_sm=8, a_sk=1, b_sn=8, b_sk=1, o_sm=8, o_sn=1)
    _, exp = model.run_task(desc, fz.bufs, cfg.geom, cfg.eors, cfg.eors_lanes)
    await port.start(pack_desc(desc, cfg.geom))
    await port.write_raw(Buf.A.value, 3, 0x1234)
    assert port.host_error == 1, "write during a task not flagged"
    await port.wait_idle(timeout_cycles(desc))
    fz.bufs = exp
    await unchanged("a write while busy, or the task")

    # a host write in the start cycle belongs to the task: done before it reads A
    await clear()
    new = int(numerics.f16_bits(3.0)[()])
    before = {n: v.copy() for n, v in fz.bufs.items()}
    before["a"][9] = new
    _, exp = model.run_task(desc, before, cfg.geom, cfg.eors, cfg.eors_lanes)
    p["desc"].value = pack_desc(desc, cfg.geom)
    p["start"].value = 1
    p["buf"].value, p["addr"].value, p["wdata"].value, p["we"].value = Buf.A.value, 9, new, 1
    await port._tick()
    p["start"].value = p["we"].value = 0
    await port.wait_idle(timeout_cycles(desc))
    assert port.host_error == 0, "a write in the start cycle was refused"
    assert Error(p["error"].value.to_unsigned()) == Error.OK
    fz.bufs = exp
    await unchanged("a write in the start cycle")
    dut._log.info("host port: refusals, reads, busy and start-cycle writes as documented")
