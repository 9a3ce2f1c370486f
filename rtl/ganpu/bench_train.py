"""``ganpu bench train``: training steps of the MLP GAN with every gemm and every weight
update on the processor (``docs/update.md``).

The step is compiled with its UPDATE records (:func:`ganpu.host.compiler.compile_gan`
with ``update=True``) and trained for ``--steps`` steps on ``--device`` (the program
model, ``ganpu sim`` or a link: :class:`ganpu.gan.train.DeviceTrainer`), timed (steps per
second of the simulation) and checked bit for bit against the golden model's
``GAN.step`` (losses, every master, momentum and binary16 weight). The last step,
replayed on the program model (:func:`work_run`, its GBUF checked against the
measured one), gives the work the cores did, and the cycle model
(:mod:`ganpu.processor.cycle_model`) schedules the step under each policy twice: with that
surviving work (dual sparsity and, with ``--eors on``, the outputs EORS predicts live
and the sampled ones) and dense (every MAC); with EORS records, a third time with every
output of them computed (``every_output``: the work as the GBUF after the step tells
it, no prediction). ``bound``: the best any schedule could reach, the surviving MACs on
every MAC lane without a lost cycle plus the update engine's DMA cycles, as cycles and
as a multiple of the dense peak (``docs/update.md``). With ``--eors on``
on a config whose cores sample (``sim``: 1 in 128), the sampling's share of the FP
MACs of a step (:func:`sampling_cost`, the issue's cost goal: at most 2 %). Per policy: the
step's cycles, when the D update ends (its last UPDATE record) and the G update's
share after it, and at ``--mhz`` the step time and the effective GFLOPS (dense-equivalent
FLOPs, ``2 x`` the step's dense MACs, per second) beside the dense peak of the same
config (``cores x lanes x 2 x f``). With a device other than ``model`` the processor's
own cycle counters of each step are reported too, and ``--check-model`` trains a
second copy on the program model (``--device model``) and compares the device's
weights with it as well as with the golden model's. ``--eors calibrate`` puts the cores
at the EORS one setting and calibrates the levels between steps (``docs/eors.md``);
the golden model has no per-layer levels, so the device is compared with the program
model alone (losses, the levels after every step, every master, momentum and weight).
"""

import copy
import json
import sys
import time
from pathlib import Path

from .cli import positive_int

__all__ = ["register", "bench_train"]

POLICIES = ("temporal", "spatial", "adaptive")


def _mismatches(ref, hw):
    """Names of the tensors (``G.fc1.w``...) whose master, momentum or binary16 copy
    differ between GANs ``ref`` and ``hw`` (bit patterns)."""
    import numpy as np
    bad = []
    for net in ("G", "D"):
        opt_r, opt_h = (ref.opt_g, hw.opt_g) if net == "G" else (ref.opt_d, hw.opt_d)
        for a, b in zip(getattr(ref, net).layers, getattr(hw, net).layers):
            for t in ("w", "b"):
                same = (np.array_equal(getattr(a, f"{t}32").view(np.uint32), getattr(b, f"{t}32").view(np.uint32))
                        and np.array_equal(np.asarray(opt_r.v[(a.name, f"{t}32")]).view(np.uint32),
                                           np.asarray(opt_h.v[(b.name, f"{t}32")]).view(np.uint32))
                        and np.array_equal(getattr(a, f"{t}16"), getattr(b, f"{t}16")))
                if not same:
                    bad.append(f"{net}.{a.name}.{t}")
    return bad


def _task_outputs(cfg, rec, gbuf):
    """``(nnz, live, sampled)`` of GEMM record ``rec`` as its cores run it on ``gbuf``
    (the GBUF before the task): the nonzero terms of each row of A, the outputs computed
    as live (MASK_IN, or an EORS record's prediction) and those computed only because
    the sampler picks them (predicted zero; none without EORS or sampling)."""
    import numpy as np
    from .core import model as core_model
    from .model.eors import EorsSampler
    from .processor.model import gather, core_descriptor
    P, r = cfg.core.eors_lanes, cfg.core.eors_sample_log2
    desc, bufs = core_descriptor(rec), gather(cfg, rec, gbuf)
    A, _, _ = core_model.operands(desc, bufs)
    nnz = ((A & 0x7FFF) != 0).sum(axis=1)
    live = core_model.active_outputs(desc, bufs, A, cfg.core.eors, P)
    sampled = np.zeros_like(live)
    if core_model.eors_active(desc) and r:
        sampled = EorsSampler(P, r).sample(desc["m"], desc["n"], desc["eors_key"]) & ~live
    return nnz, live, sampled


def sampling_cost(program, tc):
    """The EORS self-calibration sampling's cost in one training step of ``program``
    (the GAN of TrainConfig ``tc``, a fresh one, its first step on the program model):
    ``{"fp_macs", "sampled_macs", "share"}``: the MACs of every FP task as the cores run
    them (each computed output's nonzero terms, the sampled ones included) and of the
    sampled outputs alone (computed only to be counted; ``docs/eors.md``), and their
    ratio, the sampling's share of the FP MAC lanes' cycles."""
    from .core.descriptor import Op
    from .gan import GAN
    from .host.compiler import run_step
    from .processor.model import run_program
    cfg = program.cfg
    tot = {"fp_macs": 0, "sampled_macs": 0}

    def count(t, rec, g):
        if rec["op"] != Op.FP.value:
            return
        nnz, live, samp = _task_outputs(cfg, rec, g)
        tot["fp_macs"] += int(((live | samp) * nnz[:, None]).sum())
        tot["sampled_macs"] += int((samp * nnz[:, None]).sum())

    def run(c, gbuf, records, on_pause):
        return run_program(c, gbuf, records, on_pause, on_task=count)[3]
    run_step(program, GAN(tc), run=run)
    tot["share"] = round(tot["sampled_macs"] / max(tot["fp_macs"], 1), 5)
    return tot


def work_run(work):
    """A ``run(cfg, gbuf, records, on_pause)`` for :func:`ganpu.host.compiler.run_step`:
    the program model, recording in ``work[t]`` the MACs of each row of every GEMM record
    ``t`` as the cores do them: each computed output's nonzero terms (the row's nonzero A
    entries), the computed outputs being the live ones (MASK_IN, or the EORS prediction
    of an EORS record) and the sampled ones (:func:`_task_outputs`). Unlike
    :func:`ganpu.processor.cycle_model.task_row_macs`, which reads the GBUF after the
    step and so counts every output of an EORS record (its prediction is not kept),
    this sees the prediction; elsewhere the two agree."""
    import numpy as np
    from .processor.model import run_program
    from .processor.program import ProgramError

    def run(cfg, gbuf, records, on_pause):
        def count(t, rec, g):
            nnz, live, sampled = _task_outputs(cfg, rec, g)
            work[t] = (nnz * (live | sampled).sum(axis=1)).astype(np.int64)
        err, task, core_err, out = run_program(cfg, gbuf, records, on_pause, on_task=count)
        if err != ProgramError.OK:
            raise RuntimeError(f"program refused: {err!r} at record {task} (core {core_err!r})")
        return out
    return run


def bench_train(*, device="model", config="sim", gbuf_bits=19, batch=32, steps=3, seed=0,
                eors=False, mhz=30.0, policy="adaptive", check_model=False, binary=None, log=None):
    """The figures as a dict (see the module docstring). ``check_model``: train a
    second copy on the program model (``--device model``) in lockstep and compare its
    weights too; ``binary``: a ``ganpu sim`` binary already built for the config
    (device ``sim``); ``log``: progress lines (the build, each step)."""
    import numpy as np
    from .gan import GAN, TrainConfig
    from .gan.train import DeviceTrainer
    from .host.compiler import task_macs
    from .model import DEFAULT_EORS
    from .processor.cycle_model import simulate, task_row_macs
    from .processor.program import Policy, TaskKind

    calibrate = eors == "calibrate"
    config_name = config if isinstance(config, str) else "custom"
    if calibrate:
        # the one setting on the cores, levels calibrated between steps: the golden
        # model has no per-layer levels, so the program model is the reference
        from .host.calibrate import calibration_config
        from .processor.config import config as named
        config = calibration_config(named(config) if isinstance(config, str) else config)
        check_model = True
    tc = TrainConfig(batch=batch, seed=seed,
                     eors=config.core.eors if calibrate else DEFAULT_EORS if eors else None)
    ref, hw = GAN(tc), GAN(tc)
    refs = {} if calibrate else {"golden": ref}
    twin = None
    if check_model and device != "model":
        refs["model"] = GAN(tc)
        twin = DeviceTrainer(refs["model"], "model", config, gbuf_bits=gbuf_bits, calibrate=calibrate)
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    step_seconds = []
    host_cpu = 0.0
    level_mismatches = []
    with DeviceTrainer(hw, device, config, gbuf_bits=gbuf_bits, policy=policy, binary=binary,
                       log=log, calibrate=calibrate) as tr:
        cfg, program = tr.cfg, tr.program
        server = tr.server
        t0 = time.time()
        for i in range(steps):
            if i == steps - 1:
                # the last step's state, replayed on the program model for the work the
                # cores do (work_run): the records too (calibration rewrites their levels)
                last = (copy.deepcopy(hw), None if tr.gbuf is None else tr.gbuf.copy(),
                        copy.deepcopy(program.records))
            t1, c1 = time.time(), cpu()
            got = tr.step(sync=i == steps - 1)
            step_seconds.append(time.time() - t1)
            host_cpu += cpu() - c1
            if not calibrate:
                want = ref.step()
                if got != want:
                    raise RuntimeError(f"step {i}: losses {got} differ from the golden model's {want}")
            if twin is not None:
                other = twin.step(sync=i == steps - 1)
                if got != other:
                    raise RuntimeError(f"step {i}: losses {got} differ from the program model's {other}")
                if calibrate and tr.levels[-1] != twin.levels[-1]:
                    level_mismatches.append(f"levels after step {i + 1}: {tr.levels[-1]} != model "
                                            f"{twin.levels[-1]}")
            if log:
                log(f"step {i + 1}/{steps}: {step_seconds[-1]:.1f} s, D {got['d_loss']:.4f} "
                    f"G {got['g_loss']:.4f}, losses equal the "
                    f"{' and '.join(refs) or 'golden'} model's"
                    + (f", EORS levels {tr.levels[-1]}" if calibrate else ""))
        seconds = time.time() - t0
        counters = tr.counters
        gbuf = tr.gbuf
        levels = tr.levels
    if twin is not None:
        twin.close()
    steady = sum(step_seconds[1:]) / (steps - 1) if steps > 1 else step_seconds[0]
    mismatches = [f"{name}: {t}" if name != "golden" else t
                  for name, r in refs.items() for t in _mismatches(r, hw)] + level_mismatches
    from .host.compiler import run_step
    work = {}
    run = work_run(work)
    if gbuf is None:
        # a device behind a link: the data of one more step on the program model
        _, gbuf = run_step(program, GAN(tc), run=run)
    else:
        gan, before, records = last
        _, again = run_step(program, gan, before, weights=before is None,
                            run=lambda c, g, _, p: run(c, g, records, p))
        if not np.array_equal(again, gbuf):
            raise RuntimeError("the last step replayed on the program model ends with a "
                               "different GBUF")
    gemm = [t.kind == TaskKind.GEMM for t in program.tasks]
    row_macs = [work[i] if g else None for i, g in enumerate(gemm)]
    # every output of an EORS record, as the GBUF after the step tells it
    every = [task_row_macs(cfg, r, gbuf) if g else None for g, r in zip(gemm, program.records)]
    for i, (w, e, r) in enumerate(zip(row_macs, every, program.records)):
        if w is not None and not r.get("eors") and not np.array_equal(w, e):
            raise RuntimeError(f"record {i} ({program.tasks[i].name}): the cores' work "
                               f"{int(w.sum())} differs from the GBUF's {int(e.sum())} MACs")
    dense_macs = sum(task_macs(r) for r in program.records)
    params = sum(r["count"] for t, r in zip(program.tasks, program.records) if t.kind == TaskKind.UPDATE)
    d_updates = [i for i, t in enumerate(program.tasks)
                 if t.kind == TaskKind.UPDATE and t.name.startswith("d/")]
    f = mhz * 1e6
    peak = cfg.cores * cfg.core.lanes * 2 * f
    pol = {}
    for p in POLICIES:
        runs = {}
        kinds = (("measured", row_macs), ("dense", None))
        if any(r.get("eors") for r in program.records):
            kinds += (("every_output", every),)
        for name, rm in kinds:
            s = simulate(cfg, program.records, Policy[p.upper()], row_macs=rm)
            d_end = max(s.finished[i] for i in d_updates)
            secs = s.cycles / f
            runs[name] = {"cycles": s.cycles, "d_update": d_end, "g_update": s.cycles - d_end,
                          "dma_cycles": s.dma_cycles, "efficiency": round(s.efficiency, 4),
                          "step_ms": round(1e3 * secs, 3),
                          "effective_gflops": round(2 * dense_macs / secs / 1e9, 4)}
        runs["speedup"] = round(runs["dense"]["cycles"] / runs["measured"]["cycles"], 4)
        runs["effective_vs_peak"] = round(2 * dense_macs / (runs["measured"]["cycles"] / f) / peak, 4)
        pol[p] = runs
    # the best any schedule could do: the surviving MACs on every lane without a lost
    # cycle, then the update engine's DMA (docs/update.md, the bound)
    from .processor.update_engine import UpdateEngine
    surviving = int(sum(int(w.sum()) for w in row_macs if w is not None))
    update = sum(UpdateEngine.cycles(r["count"], cfg.core.host_words)
                 for t, r in zip(program.tasks, program.records) if t.kind == TaskKind.UPDATE)
    dense_time = dense_macs / (cfg.cores * cfg.core.lanes)
    floor = surviving / (cfg.cores * cfg.core.lanes)
    bound = {"surviving_macs": surviving, "update_cycles": update,
             "cycles": round(floor + update), "of_dense_peak": round(dense_time / (floor + update), 4),
             "of_dense_peak_without_update": round(dense_time / floor, 4) if floor else None}
    out = {"device": device, "config": config_name + (" at the EORS one setting" if calibrate else ""),
           "gbuf_bits": cfg.gbuf_bits, "cores": cfg.cores,
           "lanes": cfg.core.lanes, "batch": batch, "eors": eors, "steps": steps,
           "records": len(program.tasks), "updates": sum(t.kind == TaskKind.UPDATE for t in program.tasks),
           "parameters": params, "dense_macs": dense_macs, "seconds": round(seconds, 3),
           "steps_per_s": round(steps / seconds, 4),
           "step_seconds": [round(x, 3) for x in step_seconds],
           # the first step also writes the weights, masters and momenta
           "projected_500_steps_min": round((step_seconds[0] + 499 * steady) / 60, 1),
           "bit_identical": not mismatches, "compared_with": list(refs),
           "mismatches": mismatches, "mhz": mhz, "dense_peak_gflops": round(peak / 1e9, 4),
           "policies": pol, "bound": bound}
    if calibrate:
        out["levels"] = levels
    if eors and cfg.core.eors_sample_log2:
        out["sampling"] = sampling_cost(program, tc)
        out["sample_log2"] = cfg.core.eors_sample_log2
    if counters:
        out["device_cycles"] = [c["cycles"] for c in counters]
        # this process's CPU over the device's steps: driver, link codec, host step
        out["host_cpu_seconds"] = round(host_cpu, 3)
    if server is not None and server.sessions:
        # the simulator's own count over the session: cycles, seconds in its cycle
        # loop and CPU seconds (the load-independent figure on a shared machine)
        (cycles, running), = server.sessions[-1:]
        out.update(sim_cycles=cycles, sim_seconds=round(running, 3),
                   sim_cpu_seconds=server.cpu[len(server.sessions) - 1],
                   # core cycles by processor state, cycles moving link bytes, time stops
                   sim_breakdown=server.breakdown[-1] if server.breakdown else {})
    return out


def print_table(res, file=None):
    file = sys.stdout if file is None else file
    print(f"{res['steps']} steps on {res['device']} ({res['config']}, {res['cores']} cores x "
          f"{res['lanes']} lanes, batch {res['batch']}, EORS {res['eors'] if isinstance(res['eors'], str) else 'on' if res['eors'] else 'off'}): "
          f"{res['steps_per_s']:.2f} steps/s ({res['projected_500_steps_min']:g} min for 500 steps), "
          f"bit-identical to {' and '.join(res['compared_with']) or 'no reference (the device is the model)'}: "
          f"{'yes' if res['bit_identical'] else 'NO ' + ', '.join(res['mismatches'])}", file=file)
    print(f"{res['records']} records per step ({res['updates']} UPDATE, {res['parameters']:,} "
          f"parameters), {res['dense_macs']:,} dense MACs; at {res['mhz']:g} MHz, dense peak "
          f"{res['dense_peak_gflops']:.3f} GFLOPS\n", file=file)
    print("| policy | step cycles | D update | G update | dense cycles | speed-up | step (ms) "
          "| effective GFLOPS | of dense peak |", file=file)
    print("|---|---|---|---|---|---|---|---|---|", file=file)
    for p, r in res["policies"].items():
        m, d = r["measured"], r["dense"]
        print(f"| {p} | {m['cycles']:,} | {m['d_update']:,} | {m['g_update']:,} | {d['cycles']:,} "
              f"| {r['speedup']:.2f}x | {m['step_ms']:.2f} | {m['effective_gflops']:.3f} "
              f"| {r['effective_vs_peak']:.2f}x |", file=file)
    b = res["bound"]
    print(f"\nbound (any schedule): {b['surviving_macs']:,} surviving MACs on every lane "
          f"+ the update engine's {b['update_cycles']:,} DMA cycles = {b['cycles']:,} cycles, "
          f"{b['of_dense_peak']:.2f}x of dense peak ({b['of_dense_peak_without_update']:.2f}x "
          f"without the update)", file=file)
    every = {p: r["every_output"]["cycles"] for p, r in res["policies"].items() if "every_output" in r}
    if every:
        print("every output of the EORS records computed (no prediction): " + ", ".join(
            f"{p} {c:,}" for p, c in every.items()) + " cycles", file=file)
    if "levels" in res:
        print(f"\nEORS levels after each step: {res['levels']}", file=file)
    if "sampling" in res:
        smp = res["sampling"]
        print(f"\nEORS self-calibration sampling (1 in {2 ** res['sample_log2']} predicted "
              f"zeros computed to be counted): {smp['sampled_macs']:,} of the step's "
              f"{smp['fp_macs']:,} FP MACs, {100 * smp['share']:.2f} % of the FP lanes' "
              f"cycles", file=file)
    if "device_cycles" in res:
        print(f"\ndevice cycle counters per step: {res['device_cycles']}; host CPU over the "
              f"device's steps {res['host_cpu_seconds']:.1f} s", file=file)
    if "sim_cycles" in res:
        cpu = res["sim_cpu_seconds"]
        print(f"simulator: {res['sim_cycles']:,} cycles in {res['sim_seconds']:.1f} s of its "
              f"cycle loop ({res['sim_cycles'] / max(res['sim_seconds'], 1e-9):,.0f} cycles/s)"
              + (f", {cpu:.1f} s CPU" if cpu is not None else ""), file=file)
        if res.get("sim_breakdown"):
            print("simulator cycles by processor state: " + ", ".join(
                f"{k} {v:,}" for k, v in res["sim_breakdown"].items()), file=file)


def _cmd(args):
    try:
        res = bench_train(device=args.device, config=args.config, gbuf_bits=args.gbuf_bits,
                          batch=args.batch, steps=args.steps, seed=args.seed,
                          eors={"on": True, "off": False}.get(args.eors, args.eors),
                          mhz=args.mhz, policy=args.policy,
                          check_model=args.check_model, binary=args.sim_binary,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except ValueError as exc:
        print(f"ganpu bench train: {exc}", file=sys.stderr)
        return 2
    print_table(res)
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
        print(f"wrote {args.json}")
    return 0 if res["bit_identical"] else 1


def register(bench_sub):
    """Add ``train`` to the ``ganpu bench`` subcommands ``bench_sub``."""
    c = bench_sub.add_parser("train", help="MLP GAN training steps with every gemm and weight "
                                           "update on the processor: steps/s, cycles, GFLOPS")
    c.add_argument("--device", default="model",
                   help="'model' (the program model), 'sim' (ganpu sim) or a serial URL")
    c.add_argument("--config", default="sim", help="named processor config (default sim)")
    c.add_argument("--gbuf-bits", type=positive_int, default=19,
                   help="GBUF address bits (default 19: the batch-32 step with masters and "
                        "momenta needs 2^19 words)")
    c.add_argument("--batch", type=positive_int, default=32)
    c.add_argument("--steps", type=positive_int, default=3)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--eors", choices=("on", "off", "calibrate"), default="off",
                   help="calibrate: the cores at the EORS one setting, levels calibrated "
                        "between steps (docs/eors.md), compared with the program model")
    c.add_argument("--mhz", type=float, default=30.0,
                   help="clock for the step time and GFLOPS (default 30: the ULX3S build's clock)")
    c.add_argument("--policy", choices=POLICIES, default="adaptive",
                   help="the device's policy while training")
    c.add_argument("--check-model", action="store_true",
                   help="with a device other than model: train a copy on the program model "
                        "(--device model) too and compare its weights as well")
    c.add_argument("--sim-binary", default=None, metavar="PATH",
                   help="with --device sim: this ganpu sim binary, built for the config "
                        "(default: built or taken from the cache)")
    c.add_argument("--json", help="write the figures here")
    c.set_defaults(func=_cmd)
