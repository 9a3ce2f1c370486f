"""cocotb bench for :class:`ganpu.eors.EorsLane` and :class:`ganpu.eors.EorsPredictor`,
plus the stimulus generators.

The pytest entry point builds a cycle-by-cycle stream (:func:`make_stream` for random
sums, :func:`tensor_jobs` for real layer tensors), saves it as an .npz
(GANPU_VECTORS) and runs this bench, which drives one cycle per clock, records the
outputs every cycle and checks (:func:`check_outputs`)

* ``o_valid`` is 1 exactly ``latency`` cycles after every cycle carrying ``last`` and
  0 on every other cycle;
* ``acc`` (every lane, signed), ``forced`` and ``live`` of each sum equal
  :func:`ganpu.model.eors.eors_acc` / ``eors_mask`` bit for bit.

One stream format serves both blocks: ``w`` and ``bias`` are (cycles, lanes) arrays
and the lane is the one-lane case (GANPU_LANES = 1).
"""

import os

import numpy as np

from dataclasses import replace

from ganpu.model.eors import eors_state, predicted_live, REL_MAX
import vectors
from packing import pack, port_uint, unpack_signed

IN_FIELDS = ("valid", "x", "w", "first", "bias", "last")
ONE = 0x3C00


def _pow2_terms(value, frac):
    """binary16 activations whose terms against w = 1.0 sum exactly to ``value`` LSBs
    (one power of two per set bit), so a sum can land on any chosen accumulator value."""
    sign = 0x8000 if value < 0 else 0
    mag = abs(int(value))
    xs = []
    for j in range(mag.bit_length()):
        if mag >> j & 1:
            e = j - frac + 15
            assert 1 <= e <= 30, f"2^{j - frac} is not a binary16 normal"
            xs.append(sign | (e << 10))
    return np.array(xs, dtype=np.uint16)


def operands(rng, n, profile):
    """binary16 operands for one sum. Profiles: 0 = every class (f16_mixed), 1 = finite
    values near 1 with zeros and subnormals, 2 = large finite values of one sign (the
    accumulator saturates), 3 = tiny values (terms fall below the LSB)."""
    if profile == 0:
        return vectors.f16_mixed(rng, n)
    sign = rng.integers(0, 2, n).astype(np.uint16) << 15
    if profile == 1:
        mag = rng.integers(0x2000, 0x4C00, n)
        sub = rng.random(n) < 0.1
        mag[sub] = rng.integers(0, 0x400, sub.sum())
    elif profile == 2:
        mag = rng.integers(0x5000, 0x7C00, n)
        sign[:] = sign[0]
    else:
        mag = rng.integers(0, 0x1C00, n)
    mag[rng.random(n) < 0.1] = 0
    return (sign | mag.astype(np.uint16)).astype(np.uint16)


def directed_jobs(params, lanes):
    """Sums that land exactly on threshold - 1, threshold, threshold + 1, 0, and that
    saturate both ways (x against w = 1.0, no bias)."""
    jobs = []
    p = params
    for v in (p.threshold - 1, p.threshold, p.threshold + 1, 0):
        if p.lo <= v <= p.hi and all(1 <= j - p.frac + 15 <= 30 for j in range(abs(v).bit_length())):
            x = _pow2_terms(v, p.frac)
            jobs.append((x, np.full((lanes, len(x)), ONE, np.uint16), np.zeros(lanes, np.uint16)))
    big = np.full(40, 0x7BFF, np.uint16)
    for s in (0, 0x8000):
        # saturate, then come back down by one max term: saturation is not an overflow wrap
        x = np.concatenate([big | s, [0x7BFF ^ s ^ 0x8000]]).astype(np.uint16)
        jobs.append((x, np.full((lanes, len(x)), 0x7BFF, np.uint16), np.zeros(lanes, np.uint16)))
    return jobs


def random_jobs(rng, lanes, lengths):
    """``(x, W, bias)`` per sum: x (K,), W (lanes, K), bias (lanes,), mixed profiles."""
    jobs = []
    for k in lengths:
        # every-class operands make most long sums forced live, so they get a small share
        px, pw = rng.choice(4, 2, p=[0.25, 0.4, 0.15, 0.2])
        x = operands(rng, k, px)
        W = np.stack([operands(rng, k, pw) for _ in range(lanes)]) if k else np.zeros((lanes, 0), np.uint16)
        bias = operands(rng, lanes, int(rng.choice(4, p=[0.25, 0.45, 0.15, 0.15])))
        jobs.append((x, W, bias))
    return jobs


def tensor_jobs(records, lanes, budget, rng):
    """Sums from real FP ReLU gemms: ``(x = A[m], W = B[n0:n0+lanes], bias16)`` for
    random rows and lane-aligned column groups, until ``budget`` outputs."""
    from ganpu import numerics
    jobs = []
    recs = list(records)
    per = max(1, budget // (lanes * len(recs)))
    for rec in recs:
        A, B = rec["A"], rec["B"]
        bias16 = numerics.narrow(rec["init"])
        N = B.shape[0]
        for _ in range(per):
            mrow = int(rng.integers(0, A.shape[0]))
            n0 = int(rng.integers(0, N // lanes)) * lanes if N >= lanes else 0
            cols = np.arange(n0, n0 + lanes) % N
            jobs.append((A[mrow], B[cols], bias16[cols]))
    return jobs


def make_stream(rng, jobs, params, lanes, *, bubble_p=0.1, idle_p=0.05, empty=3):
    """Cycle-by-cycle stimulus for ``jobs`` (shuffled) plus ``empty`` term-less sums.

    Each sum occupies consecutive cycles: its terms with bubbles sprinkled in
    (``bubble_p``), sometimes a bubble carrying ``first`` or ``last``; idle cycles
    between sums (``idle_p``) carry neither. Bubble and idle cycles carry random
    operand bits, and ``bias`` is random except with ``first``: the block must ignore
    them.

    In scale-aware mode (``params.rel`` set) the stream also has ``rel``: random on
    every cycle but a ``last`` one, where it is the sum's level (``params.rel`` half the
    time, else any of 0..31); ``expected`` then has ``mag`` and ``rel`` too.

    Returns ``(stream, expected)``: ``stream`` maps the input port names to per-cycle
    arrays (``w``/``bias`` of shape (cycles, lanes)); ``expected`` maps ``cycle`` (of
    each ``last``), ``acc`` (sums, lanes), ``forced`` and ``live`` (sums, lanes) and
    ``length`` (terms per sum).
    """
    scale = params.rel is not None
    jobs = list(jobs) + [(np.zeros(0, np.uint16), np.zeros((lanes, 0), np.uint16),
                          operands(rng, lanes, 1)) for _ in range(empty)]
    rows = []
    exp = {"cycle": [], "acc": [], "forced": [], "length": [], "mag": [], "rel": [], "live": []}
    rels = []

    def rand16(shape=None):
        return rng.integers(0, 1 << 16, shape)

    for j in rng.permutation(len(jobs)):
        x, W, bias = jobs[j]
        x = np.asarray(x, np.uint16)
        W = np.asarray(W, np.uint16).reshape(lanes, len(x))
        bias = np.asarray(bias, np.uint16).reshape(lanes)
        q = (params.rel if rng.random() < 0.5 else int(rng.integers(0, REL_MAX + 1))) if scale else 0
        while rng.random() < idle_p:
            rows.append((0, rand16(), rand16(lanes), 0, rand16(lanes), 0))
            rels.append(int(rng.integers(0, 32)))
        entries = []
        for k in range(len(x)):
            while rng.random() < bubble_p:
                entries.append((0, rand16(), rand16(lanes)))
            entries.append((1, int(x[k]), W[:, k]))
        if len(x) == 0 or rng.random() < bubble_p:
            entries.append((0, rand16(), rand16(lanes)))
        for n, (v, xv, wv) in enumerate(entries):
            first = int(n == 0)
            is_last = n == len(entries) - 1
            rows.append((v, xv, wv, first, bias if first else rand16(lanes), int(is_last)))
            rels.append(q if is_last else int(rng.integers(0, 32)))
        pq = replace(params, rel=q) if scale else params
        acc, mag, forced, L = eors_state(x[None, :], W, bias, pq)
        exp["cycle"].append(len(rows) - 1)
        exp["acc"].append(acc[0])
        exp["mag"].append(mag[0])
        exp["forced"].append(forced[0])
        exp["live"].append(predicted_live(acc, mag, forced, L, pq)[0])
        exp["rel"].append(q)
        exp["length"].append(len(x))
    stream = {
        "valid": np.array([r[0] for r in rows], np.uint8),
        "x": np.array([r[1] for r in rows], np.uint16),
        "w": np.array([r[2] for r in rows], np.uint16).reshape(-1, lanes),
        "first": np.array([r[3] for r in rows], np.uint8),
        "bias": np.array([r[4] for r in rows], np.uint16).reshape(-1, lanes),
        "last": np.array([r[5] for r in rows], np.uint8),
    }
    if scale:
        stream["rel"] = np.array(rels, np.uint8)
    else:
        del exp["mag"], exp["rel"]
    expected = {k: np.array(v) for k, v in exp.items()}
    expected["acc"] = expected["acc"].astype(np.int64).reshape(-1, lanes)
    expected["forced"] = expected["forced"].astype(bool).reshape(-1, lanes)
    expected["live"] = expected["live"].astype(bool).reshape(-1, lanes)
    if scale:
        expected["mag"] = expected["mag"].astype(np.int64).reshape(-1, lanes)
    return stream, expected


def save_stream(path, stream, expected):
    np.savez(path, **stream, **{f"exp_{k}": v for k, v in expected.items()})


def check_outputs(o_valid, acc, forced, live, expected, latency, mag=None):
    """Compare per-cycle records with ``expected``; raise on the first mismatch.
    ``acc``/``forced``/``live`` (and ``mag``, required when ``expected`` has it) are
    per-cycle arrays of shape (cycles, lanes)."""
    o_valid = np.asarray(o_valid)
    cyc = np.asarray(expected["cycle"]) + latency
    want = np.zeros(len(o_valid), dtype=bool)
    want[cyc] = True
    wrong = np.nonzero(want != (o_valid != 0))[0]
    if len(wrong):
        c = wrong[0]
        raise AssertionError(f"o_valid wrong on {len(wrong)} cycles; first at cycle {c}: got "
                             f"{int(o_valid[c])}, expected {int(want[c])} (latency {latency})")
    checks = [("acc", acc), ("forced", forced), ("live", live)]
    if "mag" in expected:
        assert mag is not None, "scale-aware expectations need the mag records"
        checks.append(("mag", mag))
    for name, got_all in checks:
        got = np.asarray(got_all, dtype=np.int64)[cyc]
        exp = np.asarray(expected[name], dtype=np.int64)
        bad = np.argwhere(got != exp)
        if len(bad):
            i, lane = bad[0]
            raise AssertionError(
                f"{name}: {len(bad)} of {exp.size} lane results wrong; first: sum {i} lane {lane} "
                f"(length {expected['length'][i]}, last cycle {expected['cycle'][i]}): got "
                f"{int(got[i, lane])}, expected {int(exp[i, lane])} (acc expected "
                f"{int(expected['acc'][i, lane])}, forced {bool(expected['forced'][i, lane])})")


try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge
except ImportError:     # the stimulus helpers are also used outside the simulator
    cocotb = None

if cocotb is not None:
    @cocotb.test()
    async def eors_matches_model(dut):
        vec = np.load(os.environ["GANPU_VECTORS"])
        latency = int(os.environ["GANPU_LATENCY"])
        lanes = int(os.environ["GANPU_LANES"])
        width = int(os.environ["GANPU_WIDTH"])
        expected = {k[4:]: vec[k] for k in vec.files if k.startswith("exp_")}
        scale = "rel" in vec.files
        fields = IN_FIELDS + (("rel",) if scale else ())
        ncyc = len(vec["x"])
        # pre-pack every cycle's words so the clock loop only assigns integers
        words = {
            "valid": [int(v) for v in vec["valid"]],
            "x": [int(v) for v in vec["x"]],
            "w": [pack(r, 16) for r in vec["w"]],
            "first": [int(v) for v in vec["first"]],
            "bias": [pack(r, 16) for r in vec["bias"]],
            "last": [int(v) for v in vec["last"]],
        }
        if scale:
            words["rel"] = [int(v) for v in vec["rel"]]
        ports = {k: getattr(dut, k) for k in fields}

        # drive every input before the clock's first edge at time 0 (Icarus would clock
        # Z into the pipeline otherwise)
        dut.rst.value = 0
        for p in ports.values():
            p.value = 0
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        zero_acc = [0] * lanes
        o_valid, acc, forced, live, mag = [], [], [], [], []
        for it in range(ncyc + latency + 2):
            # registered outputs change at the rising edge: read them, then drive this
            # cycle's inputs for the coming edge
            await FallingEdge(dut.clk)
            v = int(dut.o_valid.value)
            o_valid.append(v)
            if v:
                acc.append(unpack_signed(port_uint(dut.acc.value), width, lanes))
                f, lv = port_uint(dut.forced.value), port_uint(dut.live.value)
                forced.append([(f >> j) & 1 for j in range(lanes)])
                live.append([(lv >> j) & 1 for j in range(lanes)])
                if scale:
                    mv = port_uint(dut.mag.value)
                    mag.append([(mv >> (j * width)) & ((1 << width) - 1) for j in range(lanes)])
            else:
                mag.append(zero_acc)
                acc.append(zero_acc)
                forced.append(zero_acc)
                live.append(zero_acc)
            if it < ncyc:
                for k, p in ports.items():
                    p.value = words[k][it]
            elif it == ncyc:
                for p in ports.values():
                    p.value = 0
        # index it holds the outputs after `it` rising edges sampled inputs 0 .. it-1,
        # so the sum whose last is cycle c shows at index c + latency
        check_outputs(o_valid, acc, forced, live, expected, latency, mag if scale else None)
        dut._log.info("%d sums x %d lanes (%d cycles, lengths up to %d) bit-exact, o_valid exact",
                      len(expected["cycle"]), lanes, ncyc, int(expected["length"].max()))
