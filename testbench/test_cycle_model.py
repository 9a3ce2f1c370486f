"""The processor's cycle model (``ganpu.processor.cycle_model``) and ``ganpu bench step
--model``: schedule invariants on the compiled MLP GAN step and on random programs."""

import json

import numpy as np
import pytest

from ganpu.cli import main
from ganpu.gan import GAN, TrainConfig
from ganpu.host.compiler import compile_gan, run_step
from ganpu.processor import ProcessorConfig
from ganpu.processor.cycle_model import (core_cycles, calibrate, simulate, compare_policies,
                                         task_row_macs, CORE_OVERHEAD, staged_cores, lost_cycles,
                                         COSTS)
from ganpu.processor.model import cores_for, split_rows, normalize
from ganpu.processor.program import Policy, TaskKind


@pytest.fixture(scope="module")
def step():
    """(cfg with 4 cores, program, per-record row MACs) of one MLP GAN step, batch 16."""
    cfg = ProcessorConfig(cores=4)
    gan = GAN(TrainConfig(batch=16))
    prog = compile_gan(cfg, gan)
    _, gbuf = run_step(prog, gan)
    macs = [task_row_macs(cfg, r, gbuf) if t.kind == TaskKind.GEMM else None
            for t, r in zip(prog.tasks, prog.records)]
    return cfg, prog, macs


def test_core_cycles():
    # every figure is followed by the first row's A read (K) and the overhead
    assert core_cycles(4, 0, 5, 5, 0) == 0
    full = 8 * 16 * 32
    assert core_cycles(4, 8, 16, 32, full, slots=1) == full / 4 + 32 + CORE_OVERHEAD
    assert core_cycles(4, 8, 1, 32, 8 * 32, slots=1) == 8 * 32 + 32 + CORE_OVERHEAD  # A read
    assert core_cycles(4, 8, 32, 1, 8 * 32, slots=1) == 8 * 32 + 1 + CORE_OVERHEAD  # output write
    assert core_cycles(4, 8, 16, 32, 0, overhead=0, slots=1) == 8 * 32 + 32
    # slot rule: one output takes `slots` cycles per term; 16 outputs per lane take
    # ceil(16 / 6) rounds of 6 * K cycles
    assert core_cycles(4, 1, 1, 64, 64, overhead=0, slots=6) == 6 * 64 + 64
    assert core_cycles(4, 1, 64, 64, 64 * 64, overhead=0, slots=6) == 3 * 6 * 64 + 64


def test_lane_cycles():
    """The distributor fills the lowest-numbered lane first (its slots, then its
    4-deep queue): a few long jobs share lane 0's slots and queue, many spread."""
    from ganpu.processor.cycle_model import lane_cycles, part_jobs
    # 6 jobs fit lane 0's 6 slots, issued a cycle apart: the last ends at 5 + 6 * T
    assert lane_cycles(2, 6, [10] * 6) == 5 + 60
    # a 7th job waits in lane 0's queue for the first slot (free at 60)
    assert lane_cycles(2, 6, [10] * 7) == 60 + 60
    # 10 jobs fill lane 0 (6 slots, 4 queued: the last starts at 63), the 11th goes
    # to lane 1 at once (issued at 10)
    assert lane_cycles(2, 6, [10] * 10) == 63 + 60
    assert lane_cycles(2, 6, [10] * 10 + [200]) == 10 + 6 * 200
    # an empty row of A still takes one term's time
    assert lane_cycles(1, 6, [0]) == 6
    # in the model: two rows of 64 terms and 4 + 3 live outputs on a 2-lane core take
    # two rounds of 64 terms in lane 0, where the slot rule counts two rounds of the
    # mean terms over all 16 outputs (7 * 64 / 16)
    jobs = part_jobs([64, 64], [4, 3])
    assert jobs.tolist() == [64] * 7
    assert core_cycles(2, 2, 8, 64, 7 * 64, overhead=0, slots=6, jobs=jobs) == 2 * 6 * 64 + 64
    assert core_cycles(2, 2, 8, 64, 7 * 64, overhead=0, slots=6) == 2 * 6 * 7 * 64 / 16 + 64


def test_calibrate_recovers_overhead():
    rows = [{"M": m, "N": n, "K": k, "surviving_macs": s,
             "measured": core_cycles(4, m, n, k, s, 37)}
            for m, n, k, s in ((32, 64, 16, 20000), (64, 1, 64, 2000), (32, 128, 64, 200000))]
    over, err = calibrate(rows)
    # approx, not ==: calibrate shares a gemm's MACs among its row chunks in floating
    # point, so the recovered overhead carries rounding, not a fitting error
    assert over == pytest.approx(37) and err["max_abs"] < 1e-9


def test_row_macs(step):
    cfg, prog, macs = step
    for t, m in zip(prog.tasks, macs):
        if t.kind == TaskKind.GEMM:
            r = t.record
            assert m.shape == (r["m"],) and 0 <= m.min() and m.max() <= r["n"] * r["k"]
    dense = task_row_macs(cfg, prog.records[0])
    assert dense.tolist() == [prog.records[0]["n"] * prog.records[0]["k"]] * prog.records[0]["m"]


def _check(cfg, recs, s, macs):
    """Every record runs once, after its dependencies; a core runs one task at a time;
    the DMA moves one transfer at a time; the cores a record gets follow the policy."""
    recs = [normalize(cfg, r) for r in recs]
    n = len(recs)
    assert set(s.finished) == set(range(n))
    starts = {}
    for t, core, a, b in s.segments:
        starts.setdefault(t, []).append(a)
    for t, r in enumerate(recs):
        deps = [d["index"] for d in r["deps"] if d["valid"]]
        if r["kind"] == TaskKind.GEMM.value:
            assert len(starts[t]) == len(s.cores_of[t]) == len(split_rows(r["m"], len(s.cores_of[t])))
            assert all(min(starts[t]) >= s.finished[d] for d in deps)
            k = len(s.cores_of[t])
            if s.policy == Policy.TEMPORAL:
                assert k == min(cfg.cores, r["m"])
            elif s.policy == Policy.SPATIAL:
                assert k == 1
            elif s.bound or s.prefetch:     # time multiplexing: every task on min(cores, M)
                assert k == min(cfg.cores, r["m"])
            else:
                assert 1 <= k <= cores_for(Policy.ADAPTIVE, cfg.cores, cfg.cores, 1, r["m"],
                                           r["work"])
        else:
            assert all(s.finished[t] >= s.finished[d] for d in deps)
    for core in range(cfg.cores):
        segs = sorted((a, b) for _, c, a, b in s.segments if c == core)
        assert all(b0 <= a1 for (_, b0), (a1, _) in zip(segs, segs[1:]))
        assert s.busy[core] == sum(b - a for a, b in segs) <= s.cycles
    dma = sorted((a, b) for _, a, b, _ in s.dma)
    assert all(b0 <= a1 for (_, b0), (a1, _) in zip(dma, dma[1:]))
    assert s.dma_cycles == sum(b - a for a, b in dma) <= s.cycles
    assert s.oracle_cycles == sum(int(m.sum()) for m in macs if m is not None) / (cfg.cores * cfg.core.lanes)
    assert 0 < s.efficiency < 1


@pytest.mark.parametrize("policy", list(Policy))
def test_step_schedule(step, policy):
    cfg, prog, macs = step
    s = simulate(cfg, prog.records, policy, row_macs=macs)
    _check(cfg, prog.records, s, macs)
    # the host acts at a PAUSE with every core and the DMA idle
    assert len(s.pause_points) == len(prog.pauses)
    for _, at in s.pause_points:
        assert not any(a < at < b for _, _, a, b in s.segments)
        assert not any(a < at < b for _, a, b, _ in s.dma)


@pytest.mark.parametrize("policy", list(Policy))
def test_prefetch_schedule(step, policy):
    """The prefetch sketch (two buffer sets per core): the schedule invariants hold, a
    core holds at most two tasks (dispatched, not yet stored) and computes one at a
    time, and the temporal step is shorter than without it."""
    cfg, prog, macs = step
    s = simulate(cfg, prog.records, policy, row_macs=macs, prefetch=True)
    _check(cfg, prog.records, s, macs)
    store_end = {}
    for t, a, b, kind in s.dma:
        if kind == "store":
            store_end.setdefault(t, []).append(b)
    for core in range(cfg.cores):
        held = [(a, max(store_end[t])) for t, c, a, _ in s.segments if c == core]
        for a, _ in held:
            assert sum(1 for x, y in held if x <= a < y) <= 2
    if policy == Policy.TEMPORAL:
        assert s.cycles < simulate(cfg, prog.records, policy, row_macs=macs).cycles


def test_staged_cores():
    """With two buffer sets the adaptive policy counts idle cores (no task held) and
    staged ones (one held) apart and waits until ``min(cores, M)`` of them have a free
    set; a core holding two tasks is in neither count, so it is never given a third."""
    assert staged_cores(4, 4, 0, 32) == 4          # every core idle: the group starts at once
    assert staged_cores(4, 0, 4, 32) == 4          # every core running one task: staged behind it
    assert staged_cores(4, 1, 2, 32) == 0          # a core holds two tasks: the record waits
    assert staged_cores(4, 0, 3, 32) == 0
    assert staged_cores(4, 0, 1, 1) == 1           # one row needs one core
    assert staged_cores(4, 1, 1, 2) == 2


def _held(s, core):
    """(dispatch, stored) of every task ``core`` held in schedule ``s``: from its load
    job's start to its rows' store."""
    load = {t: a for t, a, _, kind in s.dma if kind == "load"}
    store = {}
    for t, a, b, kind in s.dma:
        if kind == "store":
            store.setdefault(t, []).append(b)
    return [(load[t], max(store[t]), start) for t, c, start, _ in s.segments if c == core]


@pytest.mark.parametrize("seed", range(3))
def test_prefetch_adaptive_rule(seed):
    """The adaptive policy with two buffer sets (``staged_cores``): a record gets
    ``min(cores, M)`` cores; a core never holds two tasks that have not started (a
    staged core is not given a second staged task beside a loading one it has not run);
    with every M at least the core count the schedule is temporal's, in either regime."""
    rng = np.random.default_rng(seed)
    cfg = ProcessorConfig(cores=int(rng.integers(2, 6)), window=int(rng.integers(2, 9)))
    recs = _random_program(rng, cfg, 40)
    macs = [np.full(r["m"], r["n"] * r["k"]) if r["kind"] == TaskKind.GEMM else None for r in recs]
    for w in (1, 16):
        s = simulate(cfg, recs, Policy.ADAPTIVE, row_macs=macs, prefetch=True, dma_width=w)
        _check(cfg, recs, s, macs)
        for t, cores in s.cores_of.items():
            assert len(cores) == min(cfg.cores, recs[t]["m"])
        for core in range(cfg.cores):
            held = _held(s, core)
            for a, _, _ in held:
                assert sum(1 for x, y, _ in held if x <= a < y) <= 2
                assert sum(1 for x, _, st in held if x <= a < st) <= 1
    wide = [dict(r, m=max(r["m"], cfg.cores)) if r["kind"] == TaskKind.GEMM else r for r in recs]
    macs = [np.full(r["m"], r["n"] * r["k"]) if r["kind"] == TaskKind.GEMM else None for r in wide]
    for w in (1, 16):
        a = simulate(cfg, wide, Policy.ADAPTIVE, row_macs=macs, prefetch=True, dma_width=w)
        t = simulate(cfg, wide, Policy.TEMPORAL, row_macs=macs, prefetch=True, dma_width=w)
        assert (a.cycles, a.segments, a.dma) == (t.cycles, t.segments, t.dma)


def test_prefetch_rule_hook(step):
    """With two buffer sets an exploration rule also gets the idle cores: giving every
    record the cores ``staged_cores`` gives is the built rule's schedule."""
    cfg, prog, macs = step
    seen = []

    def rule(free, ready, rec, idle):
        seen.append((free, idle))
        return staged_cores(cfg.cores, idle, free - idle, rec["m"])
    got = simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs, prefetch=True, rule=rule)
    want = simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs, prefetch=True)
    assert (got.cycles, got.segments) == (want.cycles, want.segments)
    assert all(0 <= i <= f <= cfg.cores for f, i in seen) and any(i < f for f, i in seen)


def test_lost_cycles_and_costs(step):
    """``lost_cycles`` accounts for every core cycle beyond the oracle; ``costs``
    removes fixed costs (the step is then shorter) and refuses unknown names."""
    cfg, prog, macs = step
    for prefetch in (False, True):
        s = simulate(cfg, prog.records, Policy.TEMPORAL, row_macs=macs, prefetch=prefetch)
        lost = lost_cycles(cfg, prog.records, s, macs)
        # exact but for float rounding: the binding terms and the oracle carry the
        # fractions of macs / lanes; a millionth of a cycle is no cause left out
        assert sum(lost.values()) == pytest.approx(s.cores * (s.cycles - s.oracle_cycles), rel=0, abs=1e-6)
        assert all(v >= 0 for k, v in lost.items() if not k.startswith("binding"))
        assert lost["pause"] > 0 and lost["overhead"] > 0
    free = simulate(cfg, prog.records, Policy.TEMPORAL, row_macs=macs,
                    costs={name: 0 for name in COSTS})
    assert free.cycles < simulate(cfg, prog.records, Policy.TEMPORAL, row_macs=macs).cycles
    assert simulate(cfg, prog.records, Policy.TEMPORAL, row_macs=macs, costs={}).cycles == \
        simulate(cfg, prog.records, Policy.TEMPORAL, row_macs=macs).cycles
    with pytest.raises(ValueError, match=r"costs: unknown cost names \['SETUP'\]"):
        simulate(cfg, prog.records, costs={"SETUP": 0})


def test_bench_step_breakdown(capsys):
    """``--breakdown`` prints the lost cycles by cause and the step without each group
    of fixed costs; it is of the cycle model only."""
    args = ["bench", "step", "--cores", "2", "--batch", "4", "--hidden", "8", "8", "--policy",
            "temporal", "--prefetch", "--breakdown"]
    assert main(args + ["--model"]) == 0
    text = capsys.readouterr().out
    for row in ("| between |", "| pause |", "| binding small |", "| nothing |", "| all of these |",
                "| per-task core overhead |"):
        assert row in text
    assert main(args) == 2
    assert "--breakdown is of the cycle model" in capsys.readouterr().err


def test_one_core_policies_agree(step):
    _, prog, macs = step
    cfg = ProcessorConfig(cores=1)
    res = compare_policies(cfg, prog.records, row_macs=macs)
    assert len({s.cycles for s in res.values()}) == 1


def test_wider_dma_is_faster(step):
    cfg, prog, macs = step
    a = simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs)
    b = simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs, dma_width=4)
    assert b.cycles < a.cycles and b.dma_cycles < a.dma_cycles


def _random_program(rng, cfg, n):
    recs = []
    for t in range(n):
        deps = []
        if t:
            size = min(t, int(rng.integers(0, cfg.deps + 1)))
            deps = sorted(rng.choice(t, size=size, replace=False).tolist())
        if t and rng.random() < 0.1:
            recs.append({"kind": TaskKind.PAUSE, "deps": deps})
            continue
        m, nn, k = (int(x) for x in rng.integers(1, 64, 3))
        recs.append({"kind": TaskKind.GEMM, "deps": deps, "m": m, "n": nn, "k": k,
                     "bias": int(rng.integers(2)), "store_mask": int(rng.integers(2)),
                     "work": int(core_cycles(cfg.core.lanes, m, nn, k, m * nn * k)),
                     "words": m * k + nn * k + m * nn})
    return recs


@pytest.mark.parametrize("seed", range(4))
def test_random_programs(seed):
    rng = np.random.default_rng(seed)
    cfg = ProcessorConfig(cores=int(rng.integers(1, 9)), window=int(rng.integers(1, 9)))
    recs = _random_program(rng, cfg, 40)
    for policy in Policy:
        macs = [np.full(r["m"], r["n"] * r["k"]) if r["kind"] == TaskKind.GEMM else None for r in recs]
        _check(cfg, recs, simulate(cfg, recs, policy, row_macs=macs), macs)


def test_parameters():
    cfg = ProcessorConfig()
    with pytest.raises(ValueError, match=r"dma_width must be a positive int, not 0"):
        simulate(cfg, [], dma_width=0)
    with pytest.raises(TypeError, match=r"cfg must be a ProcessorConfig, not 4"):
        simulate(4, [])


def test_bench_step_cli(tmp_path, capsys):
    out = tmp_path / "step.json"
    png = tmp_path / "step.png"
    assert main(["bench", "step", "--model", "--cores", "2", "--batch", "8", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    for p in ("temporal", "spatial", "adaptive"):
        assert f"| {p} |" in text
    data = json.loads(out.read_text())
    assert set(data["policies"]) == {"temporal", "spatial", "adaptive"}
    assert all(len(s["busy"]) == 2 for s in data["policies"].values())
    assert main(["bench", "step", "--policy", "spatial", "--cores", "2", "--batch", "8",
                 "--dma-width", "2"]) == 2
    assert "change the cycle model only" in capsys.readouterr().err
    assert main(["bench", "step", "--model", "--policy", "adaptive", "--cores", "3", "--batch",
                 "8", "--gantt", str(png)]) == 0
    assert png.stat().st_size > 1000


def test_bench_step_narrow_gan(tmp_path, capsys):
    """``--hidden`` narrows the GAN and ``--gbuf-bits``/``--program-bits``/``--bias-bits``
    widen a config so that the ``small`` config holds a step (the RTL comparison on
    ``small``); the reference GAN does not fit it, and the compiler says why."""
    from ganpu.bench_step import mlp_gan, step_config
    ref, same = GAN(TrainConfig(batch=4)), mlp_gan(TrainConfig(batch=4), (64, 128))
    assert all(np.array_equal(a.w16, b.w16) for a, b in zip(ref.G.layers + ref.D.layers,
                                                            same.G.layers + same.D.layers))
    narrow = mlp_gan(TrainConfig(batch=4), (8, 4))
    assert [(lay.fin, lay.fout) for lay in narrow.G.layers + narrow.D.layers] == \
        [(16, 8), (8, 4), (4, 64), (64, 4), (4, 8), (8, 1)]
    cfg = step_config("small", 2, 13, 6, 6)
    assert (cfg.gbuf_bits, cfg.program_bits, cfg.core.geom.bias_bits, cfg.core.host_words) == (13, 6, 6, 4)
    out = tmp_path / "small.json"
    assert main(["bench", "step", "--model", "--config", "small", "--cores", "2", "--hidden", "8", "8",
                 "--batch", "4", "--gbuf-bits", "13", "--program-bits", "6", "--bias-bits", "6",
                 "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert (data["config"], data["hidden"], data["dma_width"]) == ("small", [8, 8], 4)
    capsys.readouterr()
    assert main(["bench", "step", "--model", "--config", "small", "--cores", "2"]) == 2
    assert "beyond the GBUF of 4096 words" in capsys.readouterr().err


def test_rule_hook(step):
    """An exploration rule replaces the adaptive one: one core each is the spatial
    schedule, all free cores when every core is free is the temporal one."""
    cfg, prog, macs = step
    one = simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs, rule=lambda f, r, t: 1)
    assert one.cycles == simulate(cfg, prog.records, Policy.SPATIAL, row_macs=macs).cycles
    full = simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs,
                    rule=lambda f, r, t: cfg.cores if f == cfg.cores else 0)
    assert full.cycles == simulate(cfg, prog.records, Policy.TEMPORAL, row_macs=macs).cycles


def test_adaptive_never_behind_temporal(step):
    """The adaptive policy's regime follows the program's balance at the DMA width
    (``compute_bound``): compute-bound, every task on ``min(cores, M)`` cores (never
    slower than temporal); DMA-bound (one word per cycle here), the cores shared among
    ready tasks, faster than temporal (``docs/astm.md``)."""
    from ganpu.processor.model import compute_bound
    cfg, prog, macs = step
    for w in (1, 4, 8, 16):
        t = simulate(cfg, prog.records, Policy.TEMPORAL, row_macs=macs, dma_width=w)
        a = simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs, dma_width=w)
        assert a.bound == compute_bound(prog.records, cfg.cores, w)
        assert a.cycles <= t.cycles, (w, a.cycles, t.cycles)
        if not a.bound:
            assert a.cycles < 0.95 * t.cycles, (w, a.cycles, t.cycles)
    assert not simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs, dma_width=1).bound
    assert simulate(cfg, prog.records, Policy.ADAPTIVE, row_macs=macs, dma_width=8).bound


@pytest.mark.parametrize("policy", list(Policy))
def test_dma_words_match_records(step, policy, monkeypatch):
    """Without per-job and per-pass costs the DMA's cycles are the records' ``words``
    (the compiler's estimate), whatever the policy: shared operands are broadcast."""
    import ganpu.processor.cycle_model as cm
    for name in ("JOB_SETUP", "DMA_SETUP", "STORE_SETUP", "SKIP"):
        monkeypatch.setattr(cm, name, 0)
    cfg, prog, macs = step
    s = simulate(cfg, prog.records, policy, row_macs=macs)
    assert s.dma_cycles == sum(r["words"] for r in prog.records)


def test_cores_start_as_their_rows_arrive():
    """A group's load job broadcasts B (and BIAS) first, then each core's A and MASK_IN
    rows; each core starts START cycles after its own last pass (docs/processor.md)."""
    import ganpu.processor.cycle_model as cm
    cfg = ProcessorConfig(cores=4)
    m, n, k = 10, 6, 5
    rec = {"kind": TaskKind.GEMM, "m": m, "n": n, "k": k, "bias": 1, "work": 10_000,
           "words": m * k + n * k + n + m * n}
    s = simulate(cfg, [rec], Policy.TEMPORAL, row_macs=[np.full(m, n * k)])
    t0 = cm.CHECK + cm.REGIME + 1 + cfg.window + 2 + cm.SCAN_ASSIGN             # check, scan
    t = cm.JOB_SETUP + (n * k + cm.DMA_SETUP) + cm.SKIP + (n + cm.DMA_SETUP)   # B, no BW, BIAS
    want = []
    for m0, m1 in split_rows(m, 4):
        t += (m1 - m0) * k + cm.DMA_SETUP + cm.SKIP                            # A, no MASK_IN
        want.append(t0 + t + cm.START)
    assert sorted(a for _, _, a, _ in s.segments) == want
    assert s.dma[0][2] - s.dma[0][1] == t + cm.SKIP                             # the job's end


def test_check_cycles():
    """The program check's cycles per record are the ProgramChecker's (its docstring:
    ``DescriptorChecker.latency + 3``), before the first dispatch."""
    import ganpu.processor.cycle_model as cm
    from ganpu.core.descriptor import DescriptorChecker
    assert cm.CHECK == DescriptorChecker.latency + 3
    cfg = ProcessorConfig(cores=1)
    rec = {"kind": TaskKind.GEMM, "m": 2, "n": 4, "k": 4, "work": 300, "words": 0}
    s = simulate(cfg, [rec, rec, rec], Policy.TEMPORAL, row_macs=[np.full(2, 16)] * 3)
    # the check, the regime, then the first scan's decision (half a scan of two cycles
    # per window record and two, on average) and its assignment
    assert s.dma[0][1] == 3 * cm.CHECK + cm.REGIME + 1 + cfg.window + 2 + cm.SCAN_ASSIGN
    assert simulate(cfg, [], Policy.TEMPORAL).cycles == 0


def test_window_skips_dispatched_records():
    """The window is the ``window`` oldest undispatched records: with a window of 2, a
    long record dispatched out of order does not hide the record after the next."""
    cfg = ProcessorConfig(cores=2, window=2)
    big = {"kind": TaskKind.GEMM, "m": 64, "n": 64, "k": 64, "work": 70_000, "words": 12_288}
    small = {"kind": TaskKind.GEMM, "m": 1, "n": 8, "k": 8, "work": 300, "words": 80}
    # 0 big; 1 waits for 0; 2 and 3 independent small records
    recs = [big, {**small, "deps": [0]}, small, small]
    macs = [np.full(r["m"], r["n"] * r["k"]) for r in recs]
    s = simulate(cfg, recs, Policy.SPATIAL, row_macs=macs)
    start = {t: a for t, _, a, _ in s.segments}
    # record 3 runs beside record 0, before record 0 is done (1 waits for it)
    assert start[3] < s.finished[0] and start[2] < s.finished[0]


def test_wide_passes(monkeypatch):
    """With a wide host port the DMA moves ``host_words`` words per cycle in the passes
    whose rows are whole words with column stride 1, and through its transpose buffer
    in the loads whose rows are whole words with row stride 1 (``Dma.pass_issues``): a
    record with every operand row-major and one whose A and B are read transposed."""
    import dataclasses
    import ganpu.processor.cycle_model as cm
    for name in ("JOB_SETUP", "DMA_SETUP", "STORE_SETUP", "SKIP"):
        monkeypatch.setattr(cm, name, 0)
    base = ProcessorConfig(cores=1)
    cfg = dataclasses.replace(base, core=dataclasses.replace(base.core, host_words=8))
    m, n, k = 20, 8, 24
    rows = {"kind": TaskKind.GEMM, "m": m, "n": n, "k": k, "bias": 1, "store_mask": 1,
            "a": {"s0": k, "s1": 1}, "b": {"s0": k, "s1": 1}, "out": {"s0": n, "s1": 1},
            "work": 1000, "words": 0}
    cols = {**rows, "a": {"s0": 1, "s1": m}, "b": {"s0": 1, "s1": n}}
    macs = [np.full(m, n * k)]
    wide = (m * k + n * k + n + 2 * m * n) // 8
    assert simulate(cfg, [rows], row_macs=macs).dma_cycles == wide
    # transposed: bands of 8 rows, one read per column of a band, then the last
    # band's rows read out of the transpose buffer, and its output register
    a_t = 3 * k + (m - 16) + 1          # 20 rows: bands of 8, 8 and 4
    b_t = 1 * k + 8 + 1
    assert simulate(cfg, [cols], row_macs=macs).dma_cycles == a_t + b_t + (n + 2 * m * n) // 8
    assert simulate(base, [rows], row_macs=macs).dma_cycles == m * k + n * k + n + 2 * m * n
    assert simulate(base, [rows], row_macs=macs, dma_width=8).dma_cycles == wide
    # rows that are not whole words stay one word per cycle, transposed or not
    odd = {**cols, "k": 6, "a": {"s0": 1, "s1": m}, "b": {"s0": 1, "s1": n}}
    assert simulate(cfg, [odd], row_macs=[np.full(m, n * 6)]).dma_cycles == \
        m * 6 + n * 6 + (n + 2 * m * n) // 8


def test_pass_modes():
    """``Dma.pass_mode``: wide (column stride 1), transposed (loads with row stride 1),
    a one-column tile walked as one row, else narrow; BW is always narrow."""
    import dataclasses
    from ganpu.processor.dma import Dma
    base = ProcessorConfig(cores=1)
    cfg = dataclasses.replace(base, core=dataclasses.replace(base.core, host_words=4))
    assert Dma.pass_mode(cfg, 5, 8, 8, 1) == ("wide", 5, 8)
    assert Dma.pass_mode(cfg, 5, 8, 1, 5) == ("transposed", 5, 8)
    assert Dma.pass_mode(cfg, 5, 8, 1, 5, store=True) == ("narrow", 5, 8)
    assert Dma.pass_mode(cfg, 5, 8, 1, 5, bw=True) == ("narrow", 5, 8)
    assert Dma.pass_mode(cfg, 1, 8, 1, 5) == ("narrow", 1, 8)     # one row: no gain
    assert Dma.pass_mode(cfg, 5, 6, 1, 5) == ("narrow", 5, 6)     # rows not whole words
    assert Dma.pass_mode(cfg, 12, 1, 1, 40) == ("wide", 1, 12)    # one column, row stride 1
    assert Dma.pass_mode(cfg, 12, 1, 3, 40) == ("narrow", 1, 12)
    assert Dma.pass_mode(base, 12, 1, 1, 40) == ("narrow", 12, 1)  # one-word port: as is
    assert Dma.pass_issues(cfg, 5 * 8, 8, 5, srow=1) == 2 * 8 + 1 + 1
    assert Dma.pass_issues(cfg, 8 * 8, 8, 5, srow=1) == 2 * 8 + 4 + 1
    assert Dma.pass_issues(cfg, 8 * 8, 8, 5) == 64                 # row stride unknown
