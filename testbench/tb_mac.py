"""cocotb bench for :class:`ganpu.arith.mac.Fp16Mac`, plus the stimulus generator.

The pytest entry point builds a cycle-by-cycle stream with :func:`make_stream`, saves
it as an .npz (GANPU_VECTORS) and runs this bench, which drives one cycle per clock,
records ``o``/``o_valid`` every cycle and checks

* ``o_valid`` is 1 exactly ``latency`` cycles after every cycle carrying ``last`` and
  0 on every other cycle;
* each result equals ``numerics.dot`` of its sum's terms bit for bit.
"""

import os

import numpy as np

from ganpu import numerics
import vectors

STREAM_FIELDS = ("i_valid", "a", "b", "first", "init", "last")


def _operands(rng, n, profile):
    """binary16 operands for one sum. Profiles: 0 = every class (Inf/NaN soon
    dominate a long sum), 1 = finite values near 1 with zeros and subnormals (long sums
    stay finite and round a lot), 2 = tiny values (the sum lives in the subnormals)."""
    if profile == 0:
        return vectors.f16_mixed(rng, n)
    sign = rng.integers(0, 2, n).astype(np.uint16) << 15
    if profile == 1:
        mag = rng.integers(0x2000, 0x5000, n)
        sub = rng.random(n) < 0.1
        mag[sub] = rng.integers(0, 0x400, sub.sum())
    else:
        mag = rng.integers(0, 0x0C00, n)
    mag[rng.random(n) < 0.1] = 0
    return (sign | mag.astype(np.uint16)).astype(np.uint16)


def _init_values(rng, n):
    v = vectors.f32_mixed(rng, n)
    # a third exact zeros of both signs: the empty-sum and zero-skip sign cases
    z = rng.random(n) < 0.33
    v[z] = rng.choice(np.array([0, numerics.FP32_NEG_ZERO], dtype=np.uint32), z.sum())
    return v


def directed_sums():
    """Sums where passing a skipped term through the adder as ``+ -0`` instead of
    leaving the bits alone would show: NaN inits with a payload or sign, signed zero
    inits, and terms that are all zero-skipped (0 x Inf, -0 x NaN, ...)."""
    h = lambda *v: np.array(v, dtype=np.uint16)
    return [
        (h(0x0000, 0x7C00, 0x8000), h(0x7C00, 0x0000, 0x7E01), 0x7F800001),
        (h(0x8000), h(0xFC00), 0xFFC00123),
        (h(), h(), 0x7FA00000),
        (h(0x0000, 0x3C00), h(0x7E00, 0x0000), 0x80000000),
        (h(0x8000), h(0x8000), 0x00000000),
        (h(0x3C00, 0x0000), h(0x7C00, 0x7C00), 0xFF800000),   # -Inf + Inf, the 0 x Inf skipped
        (h(0x3C00, 0xBC00), h(0x3C00, 0x3C00), 0x80000000),   # 1 - 1 = +0 from -0 init
        (h(0x0001, 0x8001), h(0x0001, 0x0001), 0x80000000),   # smallest products cancel
    ]


def make_stream(rng, slots, lengths, *, bubble_p=0.1, idle_p=0.05, empty=4, directed=()):
    """Cycle-by-cycle stimulus for ``len(lengths)`` sums plus ``empty`` term-less sums
    plus the ``directed`` sums, given as ``(a, b, init)``.

    Each sum goes to the slot that is free earliest (so slots stay balanced); inside
    its slot it occupies consecutive slot cycles: its terms with bubbles sprinkled in
    (``bubble_p``), sometimes a bubble carrying ``first`` or ``last``. Idle slot cycles
    between sums (``idle_p``) carry neither. Bubble and idle cycles carry random
    operand and init bits, which the block must ignore.

    Returns ``(stream, results)``: ``stream`` maps the input port names to per-cycle
    arrays; ``results`` is a list of ``(last_cycle, expected_bits, length)``.
    """
    per_slot = [[] for _ in range(slots)]   # lists of per-slot-cycle tuples
    sums = []                               # (slot, index of last slot cycle, a, b, init)
    jobs = list(lengths) + [0] * empty + list(directed)
    order = rng.permutation(len(jobs))
    for j in order:
        s = min(range(slots), key=lambda n: len(per_slot[n]))
        cyc = per_slot[s]
        while rng.random() < idle_p:
            cyc.append((0, *rng.integers(0, 1 << 16, 2), 0, int(rng.integers(0, 1 << 32)), 0))
        if isinstance(jobs[j], tuple):
            a, b, init = jobs[j]
            k = len(a)
        else:
            k = int(jobs[j])
            # every-class operands make most long sums Inf/NaN early, so they get a
            # smaller share than the finite profiles
            a = _operands(rng, k, int(rng.choice(3, p=[0.2, 0.55, 0.25])))
            b = _operands(rng, k, int(rng.choice(3, p=[0.2, 0.55, 0.25])))
            init = int(_init_values(rng, 1)[0])
        entries = []
        for n in range(k):
            while rng.random() < bubble_p:
                entries.append((0, *rng.integers(0, 1 << 16, 2)))
            entries.append((1, int(a[n]), int(b[n])))
        if k == 0 or rng.random() < bubble_p:
            entries.append((0, *rng.integers(0, 1 << 16, 2)))
        start = len(cyc)
        for n, (v, x, y) in enumerate(entries):
            first = int(n == 0)
            # init is only read with first: elsewhere random bits prove it is ignored
            iv = init if first else int(rng.integers(0, 1 << 32))
            cyc.append((v, int(x), int(y), first, iv, int(n == len(entries) - 1)))
        sums.append((s, start + len(entries) - 1, a, b, init))
    depth = max(len(c) for c in per_slot)
    for c in per_slot:
        while len(c) < depth:
            c.append((0, 0, 0, 0, 0, 0))
    stream = {}
    for f, name in enumerate(STREAM_FIELDS):
        col = np.array([[per_slot[s][j][f] for s in range(slots)] for j in range(depth)],
                       dtype=np.uint64).ravel()
        stream[name] = col.astype(np.uint32 if name == "init" else np.uint16)
    results = []
    for s, j, a, b, init in sums:
        results.append((j * slots + s, int(numerics.dot(a, b, init)), len(a)))
    results.sort()
    return stream, results


def save_stream(path, stream, results):
    np.savez(path, **stream,
             res_cycle=np.array([r[0] for r in results], dtype=np.int64),
             res_bits=np.array([r[1] for r in results], dtype=np.uint32),
             res_len=np.array([r[2] for r in results], dtype=np.int64))


def check_outputs(o_valid, o, stream_len, res_cycle, res_bits, res_len, latency):
    """Compare recorded per-cycle outputs with the expected results; raise on mismatch."""
    o_valid = np.asarray(o_valid)
    want = np.zeros(len(o_valid), dtype=bool)
    want[np.asarray(res_cycle) + latency] = True
    wrong = np.nonzero(want != (o_valid != 0))[0]
    if len(wrong):
        c = wrong[0]
        raise AssertionError(f"o_valid wrong on {len(wrong)} cycles; first at cycle {c}: got "
                             f"{int(o_valid[c])}, expected {int(want[c])} (latency {latency})")
    got = np.asarray(o, dtype=np.uint64)[np.asarray(res_cycle) + latency]
    bad = np.nonzero(got != np.asarray(res_bits, dtype=np.uint64))[0]
    if len(bad):
        i = bad[0]
        raise AssertionError(f"{len(bad)} of {len(res_bits)} sums wrong; first: length "
                             f"{res_len[i]}, last cycle {res_cycle[i]}, got {hex(int(got[i]))}, "
                             f"expected {hex(int(res_bits[i]))}")


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge
except ImportError:     # the stimulus helpers are also used outside the simulator
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def mac_matches_dot(dut):
        from ganpu.arith.mac import Fp16Mac
        vec = np.load(os.environ["GANPU_VECTORS"])
        latency = int(os.environ.get("GANPU_LATENCY", Fp16Mac.latency))
        stream = {k: [int(v) for v in vec[k]] for k in STREAM_FIELDS}
        ncyc = len(stream["a"])
        ports = {k: getattr(dut, k) for k in STREAM_FIELDS}

        # the clock's first rising edge comes at time 0: drive every input before it,
        # or Icarus clocks Z into the control delay line and o_valid reads Z later
        dut.rst.value = 0
        for p in ports.values():
            p.value = 0
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        o_valid, o = [], []
        for it in range(ncyc + latency + 2):
            # registered outputs change at the rising edge: read them, then drive this
            # cycle's inputs for the coming edge
            await FallingEdge(dut.clk)
            o_valid.append(int(dut.o_valid.value))
            # the ring holds X until each slot's first `first`: read o only when valid
            o.append(dut.o.value.to_unsigned() if o_valid[-1] else 0)
            if it < ncyc:
                for k, p in ports.items():
                    p.value = stream[k][it]
            elif it == ncyc:
                for p in ports.values():
                    p.value = 0
        # recorded index it holds the outputs after it rising edges had sampled inputs
        # 0 .. it-1, so the result of the sum whose last is cycle c is at index c + latency
        check_outputs(o_valid, o, ncyc, vec["res_cycle"], vec["res_bits"], vec["res_len"], latency)
        dut._log.info("%d sums (%d cycles, lengths up to %d) bit-exact, o_valid exact",
                      len(vec["res_bits"]), ncyc, int(vec["res_len"].max()))
