"""EORS self-calibration on the processor (``docs/eors.md``, ``docs/memory-map.md``):
the task record's ``eors_rel`` and ``eors_slot``, the calibration counter bank as CSRs
against :func:`ganpu.processor.model.eors_bank`, the driver's read and the host's
calibration step."""

import dataclasses

import numpy as np
import pytest

from ganpu.core.descriptor import Op, Act, descriptor_layout
from ganpu.model.eors import EorsParams
from ganpu.processor.config import CONFIGS, config
from ganpu.processor.model import core_descriptor, normalize, pack_record, unpack_record
from ganpu.processor.program import (task_layout, update_layout, record_words, EORS_SLOTS,
                                     EORS_SLOT_BITS, TaskKind)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_record_fields_fit(name):
    """The EORS fields come after every older field (their offsets unchanged) and the
    record still fits its bus words; an UPDATE record's fields keep their offsets."""
    cfg = config(name)
    lay = task_layout(cfg)
    assert lay["eors_rel"].width == 5 and lay["eors_slot"].width == EORS_SLOT_BITS
    assert lay["eors_rel"].offset == lay["words"].offset + 24
    assert lay["eors_slot"].offset == lay["eors_rel"].offset + 5
    assert lay["eors_key"].width == 16
    assert lay["eors_key"].offset == lay["eors_slot"].offset + EORS_SLOT_BITS
    assert lay.size <= 16 * record_words(cfg)
    assert update_layout(cfg).size <= 16 * record_words(cfg)
    rec = {"kind": TaskKind.GEMM.value, "eors_rel": 31, "eors_slot": EORS_SLOTS - 1, "m": 1,
           "eors_key": 0xFFFF}
    assert unpack_record(cfg, pack_record(cfg, rec)) == normalize(cfg, rec)


def test_descriptor_takes_eors_rel():
    """The derived descriptor takes the level, and the key of the part's first row
    (wrapping at 2**16)."""
    cfg = config("small")
    rec = normalize(cfg, {"kind": 0, "op": Op.FP.value, "act": Act.RELU.value, "eors": 1,
                          "m": 2, "n": 3, "k": 4, "eors_rel": 13, "eors_key": 0xFFFF})
    d = core_descriptor(rec)
    assert d["eors_rel"] == 13 and d["eors_key"] == 0xFFFF
    assert core_descriptor(rec, 1, 1)["eors_key"] == 0
    descriptor_layout(cfg.core.geom).const(d)   # every field fits the core's descriptor


def test_compiler_slots_and_levels():
    """One slot per ReLU layer (G's then D's), the level per layer, both 0 on every
    task that is not an EORS task."""
    from ganpu.gan.train import GAN, TrainConfig
    from ganpu.host.compiler import compile_step, mlp_layers
    cfg = config("sim")
    gan = GAN(TrainConfig(eors=cfg.core.eors))
    G, D = mlp_layers(gan.G), mlp_layers(gan.D)
    relu = [f"{n}.{layer[0]}" for n, net in (("G", G), ("D", D)) for layer in net if layer[3] == "relu"]
    assert relu
    levels = {layer: 3 + i for i, layer in enumerate(relu)}
    p = compile_step(cfg, G, D, gan.cfg.batch, cfg.core.eors, eors_rel=levels)
    seen = set()
    for t in p.tasks:
        r = t.record
        if r["kind"] == TaskKind.GEMM and r["eors"]:
            layer = t.gemm.split("/")[1]
            assert r["eors_slot"] == relu.index(layer) and r["eors_rel"] == levels[layer], t.name
            seen.add(layer)
        elif r["kind"] == TaskKind.GEMM:
            assert r["eors_slot"] == 0 and r["eors_rel"] == 0, t.name
    assert seen == set(relu)
    plain = compile_step(cfg, G, D, gan.cfg.batch, None)
    assert all(t.record.get("eors_slot", 0) == 0 and t.record.get("eors_rel", 0) == 0
               for t in plain.tasks)


# ---------------------------------------------------------------- the counter bank

import pickle

import harness
from ganpu.core.model import EORS_COUNTERS
from ganpu.processor.model import eors_bank, run_program
from ganpu.processor.program import Policy, Csr, eors_csr, EORS_BANK_WORDS

# Icarus: two cores on a 1K-word GBUF (every word is read back after each program), 1 in
# 4 sampled (the smallest rate 4 EORS lanes allow, so every counter is reached);
# Verilator more programs on test_train's config (trainnets.CFG: the same cores,
# sampling and host port, an 8K-word GBUF), whose build it shares. Both with a host
# port of 2 elements, narrower than a BW word (4 EORS lanes): the EORS records' BW
# passes are transposed with several W-parts per BW word (``small``'s W = P = 4 is
# test_processor's).
RUNS = {"icarus": dict(cores=2, gbuf_bits=10, programs=1, tasks=7),
        "verilator": dict(cores=2, gbuf_bits=13, programs=3, tasks=10, shared=True)}
SAMPLE_LOG2 = 2
HOST_WORDS = 2


def bank_config(cores=2, gbuf_bits=11, sample_log2=SAMPLE_LOG2, host_words=HOST_WORDS):
    """``small`` with scale-aware cores that sample and a ``host_words`` port (the
    bench's ``config_from_env``)."""
    from ganpu.model.eors import EorsParams
    cfg = dataclasses.replace(config("small"), cores=cores, gbuf_bits=gbuf_bits)
    core = dataclasses.replace(cfg.core, eors=EorsParams(threshold=0, rel=9),
                               eors_sample_log2=sample_log2, host_words=host_words)
    return dataclasses.replace(cfg, core=core)


def random_bank_program(cfg, rng, tasks):
    """Random records (``tb_processor_programs.random_program``, no PAUSE) with most FP
    records turned into FP ReLU records with EORS, every GEMM record a random slot and every EORS record a
    random level (0 = configured); half of the initial values tiny (terms below the
    predictor's LSB), so that predicted zeros are often false zeros."""
    import tb_eors
    from tb_processor_programs import random_program
    gbuf, records, _ = random_program(cfg, rng, tasks, pause=False)
    nz = np.flatnonzero(gbuf)
    tiny = nz[rng.random(nz.size) < 0.5]
    gbuf[tiny] = tb_eors.operands(rng, tiny.size, 3)
    for r in records:
        if r["kind"] != TaskKind.GEMM.value:
            continue
        r["eors_slot"] = int(rng.integers(EORS_SLOTS))
        if rng.random() < 0.6:
            # an FP ReLU reads A, B and the bias the record already reads and writes
            # what it writes: its dependencies still hold
            r.update(op=Op.FP.value, act=Act.RELU.value, use_mask=0, eors=1)
        if r.get("eors"):
            r["eors_rel"] = int(rng.choice([0, int(rng.integers(1, 32))]))
            r["eors_key"] = int(rng.integers(0, 1 << 16))
    return gbuf, records


def real_bank_program(cfg, rng, rows=6, k=24):
    """Records of the MLP GAN's real FP ReLU gemms (step 0, rows of the batch picked at
    random, weights cut to a leading block that fits the small core), one slot per
    layer, each layer at its own level (0 = configured, 7, 12)."""
    from ganpu.gan.export import export_layers
    g, P = cfg.core.geom, cfg.core.eors_lanes
    recs = export_layers(net="mlp", steps=(0,), batch=32, seed=0)
    gbuf = np.zeros(cfg.gbuf_depth, np.uint16)
    top, records = 0, []

    def put(x):
        nonlocal top
        x = np.asarray(x, np.uint16).ravel()
        gbuf[top:top + x.size] = x
        top += x.size
        return top - x.size
    for key, rec in recs.items():
        if rec["epi_phase"] != "fp" or rec["act"] != "relu" or len(records) == 3:
            continue
        A, B = np.asarray(rec["A"]), np.asarray(rec["B"])
        K, N = min(A.shape[1], k), min(B.shape[0], 8)
        assert rows * K <= g.depth("a") and -(-N // P) * P * K <= g.depth("b")
        a = put(A[np.sort(rng.choice(A.shape[0], rows, replace=False)), :K])
        b = put(B[:N, :K])
        bias = put(np.asarray(rec["init"])[:N])
        out = top
        top += rows * N
        assert top <= cfg.gbuf_depth
        records.append({"kind": TaskKind.GEMM.value, "op": Op.FP.value, "act": Act.RELU.value,
                        "eors": 1, "bias": 1, "m": rows, "n": N, "k": K,
                        "a": {"base": a, "s0": K, "s1": 1}, "b": {"base": b, "s0": K, "s1": 1},
                        "out": {"base": out, "s0": N, "s1": 1}, "bias_base": bias,
                        "eors_slot": len(records), "eors_rel": (0, 7, 12)[len(records)],
                        "eors_key": int(rng.integers(0, 1 << 16)), "work": 4096})
    assert records, "the MLP export has no FP ReLU gemm"
    return gbuf, records


def bank_programs(sim):
    """The config and the programs of the bench, each under the three policies in turn
    (on Icarus the real program under ADAPTIVE only)."""
    run = RUNS[sim]
    cfg = bank_config(run["cores"], run["gbuf_bits"])
    if run.get("shared"):
        from trainnets import CFG
        assert (CFG.cores, CFG.gbuf_bits, CFG.core.eors, CFG.core.eors_sample_log2,
                CFG.core.host_words) == (cfg.cores, cfg.gbuf_bits, cfg.core.eors,
                                         cfg.core.eors_sample_log2, cfg.core.host_words)
        cfg = CFG
    rng = np.random.default_rng(17)
    progs = [(f"random{i}", *random_bank_program(cfg, rng, run["tasks"]))
             for i in range(max(1, int(run["programs"] * harness.scale())))]
    real = ("real", *real_bank_program(cfg, rng, k=24 if cfg.gbuf_bits > 10 else 16))
    # Icarus: the real program under one policy only (its run is the longest)
    progs.append(real)
    return cfg, [(name, gbuf, records, p.value) for name, gbuf, records in progs for p in Policy
                 if sim == "verilator" or name != "real" or p == Policy.ADAPTIVE]


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_eors_csr(sim, tmp_path):
    from ganpu.processor.processor import Processor
    cfg, programs = bank_programs(sim)
    # the run must reach every counter (false zeros included) in the model, whose bank
    # is that of every schedule
    bank = None
    for _, gbuf, records, _ in programs:
        bank = eors_bank(cfg, gbuf, records, bank=bank)
    totals = {k: sum(s[k] for s in bank) for k in EORS_COUNTERS}
    assert all(v > 0 for v in totals.values()), totals
    assert sum(any(s.values()) for s in bank) >= 3
    # the real gemms' BW passes (N = 8, K > 1 rows) are transposed, W < P: two W-parts
    # per P-group in two P-groups; on Verilator random records too
    from trainnets import transposed_bw
    W, P = cfg.core.host_words, cfg.core.eors_lanes
    for which in ("real",) + (("random",) if sim == "verilator" else ()):
        recs = [r for name, _, records, _ in programs if name.startswith(which) for r in records]
        assert W < P and any(n >= 2 * P and k > 1 for n, k in transposed_bw(cfg, recs)), \
            (which, W, P)
    path = tmp_path / "programs.pkl"
    path.write_bytes(pickle.dumps(programs))
    shared = RUNS[sim].get("shared", False)
    harness.run(sim, Processor(cfg), "ganpu_processor_train" if shared else
                f"ganpu_processor_eors_c{cfg.cores}_g{cfg.gbuf_bits}_w{cfg.core.host_words}",
                "tb_eors_csr", env={"GANPU_PROGRAMFILE": path, "GANPU_CORES": cfg.cores,
                                    "GANPU_GBUF_BITS": cfg.gbuf_bits,
                                    "GANPU_SAMPLE_LOG2": cfg.core.eors_sample_log2,
                                    "GANPU_HOST_WORDS": cfg.core.host_words,
                                    "GANPU_TRAIN_CONFIG": int(shared)})


# ------------------------------------------------- blocks in the Amaranth simulator

from amaranth.sim import Simulator


def _sim(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def test_bank_block_against_model():
    """EorsBank alone: random task ends on every core (several in one cycle, into one
    slot or several), clears among them; the bank against EorsBank.model after each
    task's latency."""
    from ganpu.processor.eors_bank import EorsBank
    cfg = bank_config(cores=3)
    dut = EorsBank(cfg)
    rng = np.random.default_rng(2)
    cmax = 1 << (cfg.core.geom.mask_bits + 1)
    events = []       # per cycle: (busy bits, [counts per core], [slot per core], clear)
    busy = [0] * cfg.cores
    last = [-100] * cfg.cores
    for cyc in range(400):
        for c in range(cfg.cores):
            if busy[c] and rng.random() < 0.3 and cyc - last[c] >= cfg.cores:
                busy[c] = 0
                last[c] = cyc
            elif not busy[c] and rng.random() < 0.4:
                busy[c] = 1
        counts = [[int(x) for x in rng.integers(0, cmax, 4)] for _ in range(cfg.cores)]
        counts[0][0] = cmax - 1
        slots = [int(rng.integers(0, 3)) for _ in range(cfg.cores)]
        events.append((list(busy), counts, slots, int(rng.random() < 0.02)))
    want = [[0] * 4 for _ in range(EORS_SLOTS)]
    got = []

    async def bench(ctx):
        for busy_now, counts, slots, clear in events:
            for c in range(cfg.cores):
                ctx.set(dut.busy[c], busy_now[c])
                for j in range(4):
                    ctx.set(dut.counts[c][j], counts[c][j])
                ctx.set(dut.slot[c], slots[c])
            ctx.set(dut.clear, clear)
            await ctx.tick()
            got.append([[ctx.get(dut.bank[s][j]) for j in range(4)] for s in range(EORS_SLOTS)])
        ctx.set(dut.clear, 0)      # busy held: no more task ends
        await ctx.tick().repeat(dut.latency + 1)
        got.append([[ctx.get(dut.bank[s][j]) for j in range(4)] for s in range(EORS_SLOTS)])
    _sim(dut, bench)
    # the model: each end is added in the order the bank serves (lowest core first,
    # one per cycle); a clear empties the bank of what was added before it
    want = [[0] * 4 for _ in range(EORS_SLOTS)]
    queue = []
    prev = [0] * cfg.cores
    for i, (busy_now, counts, slots, clear) in enumerate(events):
        # the served entry (registered: latched one cycle, served the next)
        if clear:
            want = [[0] * 4 for _ in range(EORS_SLOTS)]
        if queue:
            c, slot, cnt = min(queue)
            queue.remove((c, slot, cnt))
            want = EorsBank.model(want, slot, cnt)
        assert got[i] == want, (i, got[i], want)
        # ends seen this cycle (busy sampled at the tick) are pending from the next
        for c in range(cfg.cores):
            if prev[c] and not busy_now[c]:
                queue.append((c, slots[c], counts[c]))
        prev = busy_now
    for c, slot, cnt in sorted(queue):
        want = EorsBank.model(want, slot, cnt)
    assert got[-1] == want


def test_bus_serves_the_bank():
    """The bus front end of a sampling config reads each counter's halves at their
    CSR offsets, refuses writes to them and reads beyond the bank, and CTRL bit 3
    pulses ``clear_eors``; without sampling the offsets are undefined (refused)."""
    from ganpu.processor.bus import BusFrontEnd, csr_names, samples
    from ganpu.processor.program import Region, REGION_SHIFT, State
    cfg = bank_config()
    assert samples(cfg) and not samples(config("small"))
    names = csr_names(cfg)
    assert names[eors_csr(0, "live")] == "EORS0_LIVE_LO"
    assert names[eors_csr(EORS_SLOTS - 1, "false_zero", True)] == f"EORS{EORS_SLOTS - 1}_FALSE_ZERO_HI"
    assert max(names) == Csr.EORS.value + EORS_SLOTS * EORS_BANK_WORDS - 1
    assert not any(o >= Csr.EORS.value for o in csr_names(config("small")))
    for s in (0, EORS_SLOTS - 1):
        for write, refused in ((1, True), (0, False)):
            assert BusFrontEnd.model(cfg, State.DONE, Region.CSR.value, eors_csr(s, 1), write) == refused
    assert BusFrontEnd.model(cfg, State.IDLE, Region.CSR.value, Csr.EORS.value + 64, 0)
    assert BusFrontEnd.model(config("small"), State.IDLE, Region.CSR.value, Csr.EORS.value, 0)
    with pytest.raises(ValueError, match=r"no EORS counter 'nope' in slot 0"):
        eors_csr(0, "nope")
    with pytest.raises(ValueError, match=r"in slot 8 "):
        eors_csr(EORS_SLOTS, 0)

    bus = BusFrontEnd(cfg)
    rng = np.random.default_rng(4)
    vals = [[int(x) for x in rng.integers(0, 1 << 32, 4)] for _ in range(EORS_SLOTS)]
    offs = list(range(Csr.EORS.value, Csr.EORS.value + EORS_SLOTS * EORS_BANK_WORDS + 2))
    reqs = [(o, 0, 0) for o in offs] + [(eors_csr(2, 3, True), 1, 5), (Csr.CTRL.value, 1, 8)]
    got, pulses = [], []

    async def bench(ctx):
        for s in range(EORS_SLOTS):
            for j in range(4):
                ctx.set(bus.eors[s][j], vals[s][j])
        ctx.set(bus.status.state, State.DONE)
        ctx.set(bus.resp.ready, 1)
        for off, write, data in reqs:
            ctx.set(bus.req.payload.addr, (Region.CSR.value << REGION_SHIFT) | off)
            ctx.set(bus.req.payload.write, write)
            ctx.set(bus.req.payload.data, data)
            ctx.set(bus.req.valid, 1)
            pulses.append(ctx.get(bus.control.clear_eors))
            await ctx.tick()
            ctx.set(bus.req.valid, 0)
            await ctx.tick()
            got.append((ctx.get(bus.resp.payload.data), ctx.get(bus.resp.payload.error)))
            await ctx.tick()
    _sim(bus, bench)
    for (off, write, _), (value, err), pulse in zip(reqs, got, pulses):
        rel = off - Csr.EORS.value
        if write:
            assert err == (off != Csr.CTRL.value), off
            assert pulse == (off == Csr.CTRL.value), off
        elif rel < EORS_SLOTS * EORS_BANK_WORDS:
            s, j, hi = rel // EORS_BANK_WORDS, rel % EORS_BANK_WORDS // 2, rel % 2
            assert (value, err) == ((vals[s][j] >> (16 * hi)) & 0xFFFF, 0), off
        else:
            assert err == 1, off


def test_bank_block_parameters():
    from ganpu.processor.eors_bank import EorsBank
    with pytest.raises(TypeError, match=r"cfg must be a ProcessorConfig, not 'small'"):
        EorsBank("small")


# --------------------------------------------------------------- model and host

def test_bank_model_sums_the_tasks():
    """eors_bank is the sum of eors_counts over the EORS records, each whole; splitting
    every record's rows into parts (key + first row), in any order, gives the same
    bank (what makes it the bank of every schedule); results do not depend on
    sampling."""
    from ganpu.core import model as core_model
    from ganpu.processor.model import gather, core_descriptor, normalize as norm
    cfg = bank_config(cores=2, gbuf_bits=11)
    rng = np.random.default_rng(9)
    gbuf, records = real_bank_program(cfg, rng)
    bank = eors_bank(cfg, gbuf, records)
    want = [dict.fromkeys(EORS_COUNTERS, 0) for _ in range(EORS_SLOTS)]
    split = [dict.fromkeys(EORS_COUNTERS, 0) for _ in range(EORS_SLOTS)]
    for r in records:
        r = norm(cfg, r)
        counts = core_model.eors_counts(core_descriptor(r), gather(cfg, r, gbuf), cfg.core)
        for k in counts:
            want[r["eors_slot"]][k] += counts[k]
        cuts = [(0, 1), (1, 4), (4, r["m"])]
        rng.shuffle(cuts)
        for m0, m1 in cuts:
            part = core_model.eors_counts(core_descriptor(r, m1 - m0, m0), gather(cfg, r, gbuf, m0, m1),
                                          cfg.core)
            for k in part:
                split[r["eors_slot"]][k] += part[k]
    assert bank == want == split
    assert sum(s["sampled"] for s in bank) > 0
    plain = dataclasses.replace(cfg, core=dataclasses.replace(cfg.core, eors_sample_log2=0))
    assert np.array_equal(run_program(cfg, gbuf, records)[3], run_program(plain, gbuf, records)[3])
    assert all(s["sampled"] == 0 for s in eors_bank(plain, gbuf, records))


class _FakeBus:
    """A BusTransport over a dict of CSR values (the driver's read and clear)."""

    def __init__(self, csrs):
        self.csrs, self.writes = csrs, []

    async def request(self, addr, write, data=0):
        off = addr & ((1 << 22) - 1)
        if write:
            self.writes.append((off, data))
            return 0, 0
        return (self.csrs[off], 0) if off in self.csrs else (0, 1)

    async def requests(self, reqs):
        return [await self.request(*r) for r in reqs]


def test_driver_reads_and_clears_the_bank():
    import asyncio
    from ganpu.host.processor_driver import ProcessorDriver, BusError
    cfg = bank_config()
    rng = np.random.default_rng(3)
    want = [{k: int(rng.integers(0, 1 << 32)) for k in EORS_COUNTERS} for _ in range(EORS_SLOTS)]
    csrs = {}
    for s, slot in enumerate(want):
        for k, v in slot.items():
            csrs[eors_csr(s, k)], csrs[eors_csr(s, k, True)] = v & 0xFFFF, v >> 16
    t = _FakeBus(csrs)
    drv = ProcessorDriver(t, cfg)
    assert asyncio.run(drv.read_eors_bank(clear=False)) == want and t.writes == []
    assert asyncio.run(drv.read_eors_bank()) == want and t.writes == [(Csr.CTRL.value, 8)]
    with pytest.raises(BusError):
        asyncio.run(ProcessorDriver(_FakeBus({}), config("small")).read_eors_bank())


def test_calibration_step_sets_levels():
    """The host step: each slot's counts go to its layer in the calibrator (the same
    decisions as feeding it by hand), and the new levels land in that layer's records."""
    from dataclasses import replace
    from ganpu.gan.train import GAN, TrainConfig
    from ganpu.host.calibrate import EorsCalibration, eors_layers, set_eors_levels
    from ganpu.host.compiler import compile_step, mlp_layers
    from ganpu.model.eors import EorsCalibrator, EorsParams, ONE_SETTING
    base = config("sim")
    cfg = replace(base, core=replace(base.core, eors=EorsParams(threshold=0, rel=9), eors_sample_log2=7))
    gan = GAN(TrainConfig(eors=cfg.core.eors))
    p = compile_step(cfg, mlp_layers(gan.G), mlp_layers(gan.D), gan.cfg.batch, cfg.core.eors)
    layers = eors_layers(p)
    assert sorted(layers) == list(range(len(layers)))
    cal = EorsCalibration(p)
    assert all(t.record["eors_rel"] == 9 for t in p.tasks if t.record.get("eors"))
    ref = EorsCalibrator(cfg.core.eors, rate_log2=7, q_min=1, **ONE_SETTING)
    rng = np.random.default_rng(1)
    for step in range(6):
        bank = [{"live": int(rng.integers(2000, 5000)), "false_live": int(rng.integers(0, 400)),
                 "sampled": int(rng.integers(0, 60)), "false_zero": int(rng.integers(0, 2))}
                for _ in range(EORS_SLOTS)]
        levels = cal.step(bank)
        for s, layer in layers.items():
            ref.add(layer, bank[s])
        q = ref.end_step()
        assert levels == {layer: q[layer] for layer in layers.values()}
        for t in p.tasks:
            if t.record.get("eors"):
                assert t.record["eors_rel"] == levels[t.gemm.split("/")[1]]
    assert any(v != 9 for v in levels.values())
    with pytest.raises(ValueError, match=r"level of 'G.fc1' must be an int in 0..31, not 32"):
        set_eors_levels(p, {"G.fc1": 32})
    with pytest.raises(ValueError, match=r"self-calibration needs sampling, scale-aware cores"):
        EorsCalibration(compile_step(base, mlp_layers(gan.G), mlp_layers(gan.D), gan.cfg.batch,
                                     base.core.eors))
