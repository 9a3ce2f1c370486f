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

import json
import sys
from dataclasses import replace
from pathlib import Path

from .cli import positive_int

__all__ = ["register", "bench_step", "print_table"]

POLICIES = ("temporal", "spatial", "adaptive")


def bench_step(*, policies=POLICIES, cores=4, batch=32, seed=0, model=True, dma_width=None,
               config="sim", min_work=None):
    """``(schedules {policy: Schedule}, program)`` of one MLP GAN step."""
    from .gan import GAN, TrainConfig
    from .host.compiler import compile_gan, run_step
    from .processor import config as named
    from .processor.cycle_model import simulate, task_row_macs
    from .processor.program import Policy, TaskKind

    cfg = replace(named(config), cores=cores)
    gan = GAN(TrainConfig(batch=batch, seed=seed))
    program = compile_gan(cfg, gan)
    _, gbuf = run_step(program, gan)
    row_macs = [task_row_macs(cfg, r, gbuf) if t.kind == TaskKind.GEMM else None
                for t, r in zip(program.tasks, program.records)]
    out = {p: simulate(cfg, program.records, Policy[p.upper()], row_macs=row_macs,
                       dma_width=dma_width, min_work=min_work) for p in policies}
    if not model:
        if (dma_width is not None and dma_width != cfg.core.host_words) or min_work is not None:
            raise ValueError(f"--dma-width and --min-work change the cycle model only; "
                             f"the processor's DMA moves {cfg.core.host_words} word(s) per "
                             f"cycle (host_words of config {config!r}) and it has its own MIN_WORK")
        rtl = _run_rtl(cfg, TrainConfig(batch=batch, seed=seed), policies)
        out = {p: (_rtl_schedule(cfg, p, rtl[p], out[p]), out[p]) for p in policies}
    return out, program


def _run_rtl(cfg, train, policies):
    """Per policy, the RTL results of ``ganpu.sim.bench_step_rtl`` (Verilator)."""
    import pickle
    import tempfile
    from .processor.processor import Processor
    from .sim import runner

    with tempfile.TemporaryDirectory() as tmp:
        stepfile, results = Path(tmp) / "step.pkl", Path(tmp) / "results.json"
        stepfile.write_bytes(pickle.dumps({"cfg": cfg, "train": train, "policies": list(policies)}))
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


def _cmd(args):
    policies = POLICIES if args.policy == "all" else (args.policy,)
    try:
        schedules, program = bench_step(policies=policies, cores=args.cores, batch=args.batch,
                                        seed=args.seed, model=args.model,
                                        dma_width=args.dma_width, config=args.config,
                                        min_work=args.min_work)
    except ValueError as exc:
        print(f"ganpu bench step: {exc}", file=sys.stderr)
        return 2
    print_table(schedules)
    names = [t.name for t in program.tasks]
    rtl = not args.model
    if args.json:
        pol = {p: ({"measured": s[0].to_json(), "model": s[1].summary()} if rtl else s.to_json())
               for p, s in schedules.items()}
        from .processor import config as named
        width = args.dma_width or named(args.config).core.host_words
        Path(args.json).write_text(json.dumps(
            {"cores": args.cores, "batch": args.batch, "dma_width": width,
             "min_work": args.min_work, "source": "rtl (verilator)" if rtl else "cycle model",
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
    c.add_argument("--model", action="store_true",
                   help="the cycle model only (fast); without it the step runs on the "
                        "processor's RTL (Verilator, minutes) and the model is compared")
    c.add_argument("--json", help="write the schedules here")
    c.add_argument("--gantt", metavar="F.png", help="write a Gantt chart (one per policy with --policy all)")
    c.set_defaults(func=_cmd)
