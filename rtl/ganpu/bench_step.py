"""``ganpu bench step``: one training step of the MLP GAN on the processor under the
scheduling policies side by side (``docs/astm.md``).

The step is compiled (:mod:`ganpu.host.compiler`), run once on the processor's
bit-exact program model to get the step's real data (its zeros and masks set the
surviving work), and scheduled by the cycle model (:mod:`ganpu.processor.cycle_model`).
Without ``--model`` it also runs on the processor's generated Verilog (Verilator,
through :mod:`ganpu.sim` and the bench module ``bench_step_rtl``, every tensor checked
against the program model) and prints the measured figures beside the model's. For each policy: step cycles, busy fraction per core, DMA cycles and
step efficiency = oracle cycles (surviving MACs / all MAC lanes of all cores) / step
cycles.
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from .cli import positive_int

__all__ = ["register", "bench_step", "print_table", "core_overhead", "breakdown", "print_breakdown",
           "COUNTERFACTUALS"]

POLICIES = ("temporal", "spatial", "adaptive")


REFERENCE_HIDDEN = (64, 128)


def mlp_gan(train, hidden=None):
    """The MLP GAN of ``train`` (a ``TrainConfig``); with ``hidden = (h1, h2)`` its hidden
    layers that wide: G 16-h1-h2-64, D 64-h2-h1-1 (the reference GAN is (64, 128)),
    the weights drawn as the reference GAN draws its own."""
    import numpy as np
    from .gan import GAN
    from .gan.nets import ZDIM
    from .model import FC, Net
    gan = GAN(train)
    if hidden is None or tuple(hidden) == REFERENCE_HIDDEN:
        return gan
    h1, h2 = hidden
    rng = np.random.default_rng(train.seed)
    gan.G = Net("G", [FC("fc1", ZDIM, h1, rng=rng), FC("fc2", h1, h2, rng=rng),
                      FC("fc3", h2, 64, act="identity", rng=rng)])
    gan.D = Net("D", [FC("fc1", 64, h2, rng=rng), FC("fc2", h2, h1, rng=rng),
                      FC("fc3", h1, 1, act="identity", rng=rng)])
    return gan


def step_config(config="sim", cores=4, gbuf_bits=None, program_bits=None, bias_bits=None,
                host_words=None, buffer_sets=None):
    """The named processor config with ``cores`` cores and, when given, that many GBUF
    address bits, task-table address bits and BIAS buffer address bits (so that a
    small config holds a step of a narrow GAN), host-port words (the DMA's width) and
    buffer sets per core."""
    from .processor import config as named
    cfg = replace(named(config), cores=cores)
    if host_words is not None or buffer_sets is not None:
        cfg = replace(cfg, core=replace(cfg.core, host_words=host_words or cfg.core.host_words,
                                        buffer_sets=buffer_sets or cfg.core.buffer_sets))
    if gbuf_bits is not None:
        cfg = replace(cfg, gbuf_bits=gbuf_bits)
    if program_bits is not None:
        cfg = replace(cfg, program_bits=program_bits)
    if bias_bits is not None:
        cfg = replace(cfg, core=replace(cfg.core, geom=replace(cfg.core.geom, bias_bits=bias_bits)))
    return cfg


def bench_step(*, policies=POLICIES, cores=4, batch=32, seed=0, model=True, dma_width=None,
               config="sim", min_work=None, hidden=None, gbuf_bits=None, program_bits=None,
               bias_bits=None, prefetch=None, overhead=None, costs=None, host_words=None,
               buffer_sets=None):
    """``(schedules {policy: Schedule}, program)`` of one MLP GAN step (``costs``: the
    cycle model's fixed costs replaced, :func:`~ganpu.processor.cycle_model.simulate`;
    ``prefetch`` the model's two buffer sets, by default the config's)."""
    from .gan import TrainConfig
    from .host.compiler import compile_gan, run_step
    from .processor.cycle_model import simulate, task_row_macs, task_row_terms
    from .processor.program import Policy, TaskKind

    cfg = step_config(config, cores, gbuf_bits, program_bits, bias_bits, host_words, buffer_sets)
    sets2 = cfg.core.buffer_sets > 1
    if not model and prefetch is not None and prefetch != sets2:
        raise ValueError(f"--prefetch is the cycle model's; on the RTL it follows the config's "
                         f"buffer sets (buffer_sets={cfg.core.buffer_sets!r}; --buffer-sets)")
    prefetch = sets2 if prefetch is None else prefetch
    gan = mlp_gan(TrainConfig(batch=batch, seed=seed), hidden)
    program = compile_gan(cfg, gan)
    _, gbuf = run_step(program, gan)
    gemm = [t.kind == TaskKind.GEMM for t in program.tasks]
    row_macs = [task_row_macs(cfg, r, gbuf) if g else None for g, r in zip(gemm, program.records)]
    row_terms = [task_row_terms(cfg, r, gbuf) if g else None for g, r in zip(gemm, program.records)]
    out = {p: simulate(cfg, program.records, Policy[p.upper()], row_macs=row_macs,
                       row_terms=row_terms, dma_width=dma_width, min_work=min_work,
                       prefetch=prefetch, overhead=overhead, costs=costs) for p in policies}
    if not model:
        if (dma_width is not None and dma_width != cfg.core.host_words) or min_work is not None \
                or costs is not None:
            raise ValueError(f"--dma-width and --min-work change the cycle model only; "
                             f"the processor's DMA moves {cfg.core.host_words} word(s) per "
                             f"cycle (host_words of config {config!r}) and it has its own MIN_WORK")
        rtl = _run_rtl(cfg, TrainConfig(batch=batch, seed=seed), policies, hidden)
        out = {p: (_rtl_schedule(cfg, p, rtl[p], out[p]), out[p]) for p in policies}
    return out, program


def core_parts(cfg, program, gbuf, row_macs):
    """``[(name, desc, loads, row), ...]``: every part of every GEMM record of ``program``
    that a split over 1 to ``cfg.cores`` cores gives one core (:func:`~ganpu.processor.
    model.split_rows`), as a core task with the operands the DMA would load (from
    ``gbuf``, the GBUF after the step) and its ``row`` for
    :func:`~ganpu.processor.cycle_model.calibrate` (``M``, ``N``, ``K``, surviving MACs,
    each row's surviving terms and live outputs)."""
    from .processor.model import (core_descriptor, gather, normalize, reads_mask_in,
                                  eors_active, split_rows)
    from .processor.cycle_model import task_row_terms
    from .processor.program import TaskKind
    out, seen = [], set()
    for t, (task, rec) in enumerate(zip(program.tasks, program.records)):
        if task.kind != TaskKind.GEMM:
            continue
        r = normalize(cfg, rec)
        M, N, K = r["m"], r["n"], r["k"]
        nnz, live = task_row_terms(cfg, r, gbuf)
        for k in range(1, cfg.cores + 1):
            for m0, m1 in split_rows(M, k):
                if (t, m0, m1) in seen:
                    continue
                seen.add((t, m0, m1))
                bufs = gather(cfg, r, gbuf, m0, m1)
                loads = {"a": (0, bufs["a"][:(m1 - m0) * K]), "b": (0, bufs["b"][:N * K])}
                if r["bias"]:
                    loads["bias"] = (0, bufs["bias"][:N])
                if reads_mask_in(r):
                    loads["mask_in"] = (0, bufs["mask_in"][:(m1 - m0) * N])
                if eors_active(r):
                    loads["bw"] = (0, bufs["bw"])
                out.append((f"{task.name}[{m0}:{m1}]", core_descriptor(r, m1 - m0), loads,
                            {"M": m1 - m0, "N": N, "K": K,
                             "surviving_macs": int(row_macs[t][m0:m1].sum()),
                             "row_nnz": nnz[m0:m1].tolist(), "row_live": live[m0:m1].tolist()}))
    return out


def core_overhead(cfg, program, gbuf, row_macs):
    """``(overhead, errors, rows)``: the cycle model's per-task core overhead for
    ``cfg.core``, fitted (:func:`~ganpu.processor.cycle_model.calibrate`) to the cycles
    of the core alone (its generated Verilog on Verilator, bench module
    ``bench_tasks``, every result checked against the core's model) running every
    per-core part of the step's GEMM records (:func:`core_parts`): the core's own
    figure, not fitted to the step it predicts."""
    import pickle
    import tempfile
    from .core import Core
    from .processor.cycle_model import calibrate
    from .sim import runner
    from .sim.cocotb_transport import config_env
    from dataclasses import replace as _replace
    parts = core_parts(cfg, program, gbuf, row_macs)
    # the core bench's transport moves one element per host access; a task's cycles do
    # not depend on the host port's width (the compute blocks read single elements,
    # selected after the RAM at the same latency: docs/core.md), so the core is built
    # with a one-element port
    core = _replace(cfg.core, host_words=1)
    with tempfile.TemporaryDirectory() as tmp:
        taskfile, results = Path(tmp) / "tasks.pkl", Path(tmp) / "results.json"
        taskfile.write_bytes(pickle.dumps([(n, d, l) for n, d, l, _ in parts]))
        runner.run("verilator", Core(core), "ganpu_core", "bench_tasks",
                   env={"GANPU_TASKFILE": taskfile, "GANPU_RESULTS": results,
                        **config_env(core)})
        got = {r["name"]: r["cycles"] for r in json.loads(results.read_text())}
    rows = [{**row, "name": n, "measured": got[n]} for n, _, _, row in parts]
    over, err = calibrate(rows, lanes=cfg.core.lanes, geom=cfg.core.geom)
    return over, err, rows


def _run_rtl(cfg, train, policies, hidden=None):
    """Per policy, the RTL results of ``ganpu.sim.bench_step_rtl`` (Verilator)."""
    import pickle
    import tempfile
    from .processor.processor import Processor
    from .sim import runner

    with tempfile.TemporaryDirectory() as tmp:
        stepfile, results = Path(tmp) / "step.pkl", Path(tmp) / "results.json"
        stepfile.write_bytes(pickle.dumps({"cfg": cfg, "train": train, "policies": list(policies),
                                           "hidden": hidden}))
        runner.run("verilator", Processor(cfg), f"ganpu_processor_step_c{cfg.cores}",
                   "bench_step_rtl", env={"GANPU_STEPFILE": stepfile, "GANPU_RESULTS": results})
        return json.loads(results.read_text())


def _rtl_schedule(cfg, policy, res, model):
    """A :class:`~ganpu.processor.cycle_model.Schedule` of measured figures: step cycles
    are the CYCLES counter less the cycles the host held the processor PAUSED."""
    from .processor.cycle_model import Schedule
    from .processor.program import Policy
    c = res["counters"]
    cycles = c["cycles"] - res["paused_cycles"]
    return Schedule(Policy[policy.upper()], cfg.cores, cycles,
                    [tuple(s) for s in res["segments"]], [], list(c["core_busy"]),
                    list(c["core_busy"]), c["dma"], model.oracle_cycles, model.surviving_macs, [])


def print_table(schedules, file=None):
    """The policies side by side; with RTL figures (``(measured, model)`` pairs) also
    the cycle model's step cycles and its error."""
    file = sys.stdout if file is None else file   # the stream of now, not of import time
    names = list(schedules)
    rtl = isinstance(schedules[names[0]], tuple)
    first = schedules[names[0]][0] if rtl else schedules[names[0]]
    print(f"One MLP GAN training step, {first.cores} cores, "
          f"{'RTL (Verilator)' if rtl else 'cycle model'}", file=file)
    extra = " cycle model | model error |" if rtl else ""
    print(f"| policy | step cycles | busy per core | DMA cycles | step efficiency | vs temporal |{extra}",
          file=file)
    print("|---|---|---|---|---|---|" + ("---|---|" if rtl else ""), file=file)
    meas = {n: (s[0] if rtl else s) for n, s in schedules.items()}
    base = meas.get("temporal")
    for name, s in meas.items():
        busy = " ".join(f"{b:.2f}" for b in s.busy_fraction)
        speed = f"{base.cycles / s.cycles:.2f}x" if base is not None else "-"
        tail = ""
        if rtl:
            m = schedules[name][1]
            tail = f" {m.cycles:,} | {(m.cycles - s.cycles) / s.cycles:+.1%} |"
        print(f"| {name} | {s.cycles:,} | {busy} | {s.dma_cycles:,} | {s.efficiency:.3f} | {speed} |{tail}",
              file=file)
    print(f"\noracle cycles {first.oracle_cycles:,.0f} ({first.surviving_macs:,} surviving MACs)",
          file=file)


def _calibrate_core(args):
    """The core's per-task overhead on its own (:func:`core_overhead`), printed."""
    from .gan import TrainConfig
    from .host.compiler import compile_gan, run_step
    from .processor.cycle_model import task_row_macs
    from .processor.program import TaskKind
    cfg = step_config(args.config, args.cores, args.gbuf_bits, args.program_bits, args.bias_bits)
    gan = mlp_gan(TrainConfig(batch=args.batch, seed=args.seed), args.hidden)
    program = compile_gan(cfg, gan)
    _, gbuf = run_step(program, gan)
    row_macs = [task_row_macs(cfg, r, gbuf) if t.kind == TaskKind.GEMM else None
                for t, r in zip(program.tasks, program.records)]
    over, err, rows = core_overhead(cfg, program, gbuf, row_macs)
    print(f"core alone ({len(rows)} per-core parts, Verilator): overhead {over:g} cycles per task; "
          f"sum of the parts {err['total']:+.2%}, largest part error {err['max_abs']:.1%}")
    return over


def breakdown(*, policies=POLICIES, **kw):
    """Where the cycle model's step loses cycles: ``{"with", "lost", "without"}``;
    ``with[policy]`` the step's :class:`~ganpu.processor.cycle_model.Schedule`,
    ``lost[policy]`` its cycles beyond the oracle by cause
    (:func:`~ganpu.processor.cycle_model.lost_cycles`, core cycles over the core
    count), ``without[name][policy]`` the step's schedule with a group of fixed costs
    removed (``name`` in :data:`COUNTERFACTUALS`). ``kw`` as :func:`bench_step`, the
    cycle model only."""
    from .processor.cycle_model import lost_cycles, task_row_macs
    from .processor.program import TaskKind
    from .gan import TrainConfig
    from .host.compiler import run_step
    kw = {**kw, "model": True}
    base, program = bench_step(policies=policies, **kw)
    cfg = step_config(kw.get("config", "sim"), kw.get("cores", 4), kw.get("gbuf_bits"),
                      kw.get("program_bits"), kw.get("bias_bits"), kw.get("host_words"),
                      kw.get("buffer_sets"))
    _, gbuf = run_step(program, mlp_gan(TrainConfig(batch=kw.get("batch", 32), seed=kw.get("seed", 0)),
                                        kw.get("hidden")))
    macs = [task_row_macs(cfg, r, gbuf) if t.kind == TaskKind.GEMM else None
            for t, r in zip(program.tasks, program.records)]
    lost = {p: {k: v / s.cores for k, v in lost_cycles(cfg, program.records, s, macs,
                                                          kw.get("overhead")).items()}
            for p, s in base.items()}
    without = {}
    for name, change in COUNTERFACTUALS.items():
        change = dict(change)
        if change.get("SCAN_ASSIGN") == "scan":
            change["SCAN_ASSIGN"] = -(cfg.window + 2)   # no scan, no split, no assignment
        over = change.pop("overhead", kw.get("overhead"))
        without[name] = bench_step(policies=policies, **{**kw, "overhead": over,
                                                         "costs": change or None})[0]
    return {"with": base, "lost": lost, "without": without}


# groups of fixed costs breakdown() removes, one group at a time, then all of them
COUNTERFACTUALS = {
    "DMA set-up (JOB_SETUP, DMA_SETUP, STORE_SETUP, SKIP, START)":
        {"JOB_SETUP": 0, "DMA_SETUP": 0, "STORE_SETUP": 0, "SKIP": 0, "START": 0},
    "scheduler scan, split and assignment": {"SCAN_ASSIGN": "scan"},
    "program check and regime (CHECK, REGIME)": {"CHECK": 0, "REGIME": 0},
    "per-task core overhead": {"overhead": 0},
    "all of these": {"JOB_SETUP": 0, "DMA_SETUP": 0, "STORE_SETUP": 0, "SKIP": 0, "START": 0,
                     "SCAN_ASSIGN": "scan", "CHECK": 0, "REGIME": 0, "overhead": 0},
}


def print_breakdown(res, file=None):
    """:func:`breakdown`'s result as two tables."""
    file = sys.stdout if file is None else file
    names = list(res["with"])
    first = res["with"][names[0]]
    print(f"Cycles lost against the oracle ({first.oracle_cycles:,.0f} cycles), by cause "
          f"(core cycles / {first.cores} cores)", file=file)
    print("| cause | " + " | ".join(names) + " |", file=file)
    print("|---|" + "---|" * len(names), file=file)
    for cause in res["lost"][names[0]]:
        print(f"| {cause} | " + " | ".join(f"{res['lost'][p][cause]:,.0f}" for p in names) + " |",
              file=file)
    print("| step cycles - oracle | " + " | ".join(
        f"{res['with'][p].cycles - res['with'][p].oracle_cycles:,.0f}" for p in names) + " |", file=file)
    print("\nStep cycles (efficiency) without a group of fixed costs", file=file)
    print("| removed | " + " | ".join(names) + " |", file=file)
    print("|---|" + "---|" * len(names), file=file)
    rows = [("nothing", res["with"])] + list(res["without"].items())
    for name, sched in rows:
        print(f"| {name} | " + " | ".join(f"{sched[p].cycles:,} ({sched[p].efficiency:.3f})"
                                          for p in names) + " |", file=file)


def _cmd(args):
    policies = POLICIES if args.policy == "all" else (args.policy,)
    try:
        if args.calibrate_core and args.overhead is None:
            args.overhead = _calibrate_core(args)
        if args.breakdown:
            if not args.model:
                raise ValueError("--breakdown is of the cycle model: give --model too")
            print_breakdown(breakdown(policies=policies, cores=args.cores, batch=args.batch,
                                      seed=args.seed, dma_width=args.dma_width, config=args.config,
                                      min_work=args.min_work, hidden=args.hidden,
                                      gbuf_bits=args.gbuf_bits, program_bits=args.program_bits,
                                      bias_bits=args.bias_bits, prefetch=args.prefetch,
                                      overhead=args.overhead, host_words=args.host_words,
                                      buffer_sets=args.buffer_sets))
            return 0
        schedules, program = bench_step(policies=policies, cores=args.cores, batch=args.batch,
                                        seed=args.seed, model=args.model,
                                        dma_width=args.dma_width, config=args.config,
                                        min_work=args.min_work, hidden=args.hidden,
                                        gbuf_bits=args.gbuf_bits, program_bits=args.program_bits,
                                        bias_bits=args.bias_bits, prefetch=args.prefetch,
                                        overhead=args.overhead, host_words=args.host_words,
                                        buffer_sets=args.buffer_sets)
    except ValueError as exc:
        print(f"ganpu bench step: {exc}", file=sys.stderr)
        return 2
    print_table(schedules)
    names = [t.name for t in program.tasks]
    rtl = not args.model
    if args.json:
        pol = {p: ({"measured": s[0].to_json(), "model": s[1].summary()} if rtl else s.to_json())
               for p, s in schedules.items()}
        # the hardware the step ran on (step_config applied --host-words, --buffer-sets)
        width = args.dma_width or program.cfg.core.host_words
        sets = program.cfg.core.buffer_sets
        Path(args.json).write_text(json.dumps(
            {"config": args.config, "hidden": list(args.hidden or REFERENCE_HIDDEN),
             "cores": args.cores, "batch": args.batch, "dma_width": width, "buffer_sets": sets,
             "min_work": args.min_work, "prefetch": args.prefetch, "overhead": args.overhead, "source": "rtl (verilator)" if rtl else "cycle model",
             "tasks": names, "policies": pol}, indent=1))
        print(f"wrote {args.json}")
    if args.gantt:
        from .processor.cycle_model import gantt
        path = Path(args.gantt)
        for p, s in schedules.items():
            s = s[0] if rtl else s
            target = path if len(schedules) == 1 else path.with_name(f"{path.stem}-{p}{path.suffix}")
            gantt(s, target, names)
            print(f"wrote {target}")
    return 0


def register(bench_sub):
    """Add ``step`` to the ``ganpu bench`` subcommands ``bench_sub``."""
    c = bench_sub.add_parser("step", help="one MLP GAN training step on the processor, "
                                          "temporal vs spatial vs adaptive scheduling")
    c.add_argument("--policy", choices=POLICIES + ("all",), default="all")
    c.add_argument("--cores", type=positive_int, default=4)
    c.add_argument("--batch", type=positive_int, default=32)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--config", default="sim", help="named processor config (default sim)")
    c.add_argument("--dma-width", type=positive_int, default=None,
                   help="GBUF words a wide DMA pass moves per cycle in the cycle model "
                        "(default: the config's host_words)")
    c.add_argument("--min-work", type=positive_int, default=None,
                   help="the adaptive rule's work per core (default: the scheduler's MIN_WORK)")
    c.add_argument("--hidden", type=positive_int, nargs=2, metavar=("H1", "H2"), default=None,
                   help="hidden-layer widths of the MLP GAN (G 16-H1-H2-64, D 64-H2-H1-1; "
                        "default the reference GAN's 64 128)")
    c.add_argument("--gbuf-bits", type=positive_int, default=None,
                   help="GBUF address bits (default the config's)")
    c.add_argument("--program-bits", type=positive_int, default=None,
                   help="task-table address bits (default the config's)")
    c.add_argument("--bias-bits", type=positive_int, default=None,
                   help="a core's BIAS buffer address bits (default the config's)")
    c.add_argument("--overhead", type=int, default=None,
                   help="the cycle model's per-task core overhead (default the core's "
                        "calibrated one, cycle_model.core_overhead)")
    c.add_argument("--calibrate-core", action="store_true",
                   help="first fit the per-task overhead on the config's core alone (Verilator: "
                        "every per-core part of the step's GEMMs) and use it (docs/astm.md)")
    c.add_argument("--prefetch", action=argparse.BooleanOptionalAction, default=None,
                   help="cycle model of two buffer sets per core (a core's next task loads "
                        "while it computes, docs/astm.md); default the config's buffer sets")
    c.add_argument("--host-words", type=positive_int, default=None,
                   help="the cores' host-port words, the DMA's width (default the config's; "
                        "model and RTL)")
    c.add_argument("--buffer-sets", type=positive_int, default=None,
                   help="buffer sets per core, 1 or 2 (default the config's; model and RTL)")
    c.add_argument("--breakdown", action="store_true",
                   help="with --model: the cycles lost against the oracle by cause, and the step "
                        "without each group of fixed costs (docs/astm.md)")
    c.add_argument("--model", action="store_true",
                   help="the cycle model only (fast); without it the step runs on the "
                        "processor's RTL (Verilator, minutes) and the model is compared")
    c.add_argument("--json", help="write the schedules here")
    c.add_argument("--gantt", metavar="F.png", help="write a Gantt chart (one per policy with --policy all)")
    c.set_defaults(func=_cmd)
