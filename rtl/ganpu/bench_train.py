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
it, no prediction); all on the config's hardware (``sim`` has two buffer sets per core:
a task's load overlaps the previous one's compute). On a one-set config, the surviving
work once more on cores with two buffer sets (``prefetch``: the what-if of
``docs/astm.md``).
``bound``: the best any schedule could reach, the surviving MACs on every MAC lane
without a lost cycle plus the update engine's DMA cycles, as cycles and as a multiple
of the dense peak (``docs/update.md``). With ``--eors on``
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

``--warmup N`` measures the steps at a point of training: the GAN first trains ``N``
steps on the golden model (``GAN.step``, numpy, fast), then the device takes its
weights, masters, momenta and data stream exactly where they are (the first measured
step writes them) and trains the ``--steps`` measured steps, which are checked as
without a warm-up; every reference warms up alike. A fresh GAN's ReLU outputs are about
half zero, a trained one's sparser, so the figures of a trained GAN are the step a
training run spends its time in (``docs/update.md``, "The step on a trained GAN").
The run is a function of ``--seed``, ``--batch``, ``--warmup`` and ``--steps``.
``sparsity`` (the last step, as the cores see it): the zero share of every GEMM
record's A operand and, over the FP ReLU outputs, the exact zeros, the outputs
predicted zero (skipped) and the false zeros (nonzero outputs predicted zero, of the
nonzero ones: :func:`ganpu.model.eors.prediction_stats`). On ``ganpu sim``, ``rtl``:
the cycles the processor spent RUNNING per measured step (the simulator's count, the
pauses' host round trips left out as in the cycle model) beside the cycle model's
step under the device's policy, and that step's multiple of the dense peak.
"""

import copy
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from .cli import nonneg_int, positive_int

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


def state_digest(gan):
    """SHA-256 (hex) of ``gan``'s training state bit for bit: every layer's binary32
    masters, momenta and binary16 weights and biases of G then D, and the step count
    (``weights_sha256`` in the figures: a run is reproduced when it matches)."""
    import hashlib
    import numpy as np
    h = hashlib.sha256(str(gan.steps).encode())
    for net, opt in (("G", gan.opt_g), ("D", gan.opt_d)):
        for layer in getattr(gan, net).layers:
            for t in ("w", "b"):
                mom = opt.v.get((layer.name, f"{t}32"))
                for x in (getattr(layer, f"{t}32"), getattr(layer, f"{t}16"),
                          np.zeros(0, np.float32) if mom is None else mom):
                    h.update(np.ascontiguousarray(x).tobytes())
    return h.hexdigest()


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


def sampling_cost(program, tc, gan=None):
    """The EORS self-calibration sampling's cost in one training step of ``program``
    (the GAN of TrainConfig ``tc``, a fresh one unless ``gan`` gives its state, which
    the step advances; one step on the program model):
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
    run_step(program, GAN(tc) if gan is None else gan, run=run)
    tot["share"] = round(tot["sampled_macs"] / max(tot["fp_macs"], 1), 5)
    return tot


def _relu_prediction(cfg, rec, gbuf, live):
    """``(true_live, pred_live)`` of FP ReLU record ``rec`` on ``gbuf`` (the GBUF before
    the task), raveled: the outputs the exact ReLU keeps nonzero (the epilogue's
    ``relu_pos`` of the rounded sum) and those the cores compute as live (``live``)."""
    from . import numerics
    from .core import model as core_model
    from .model.gemm import relu_pos
    from .processor.model import gather, core_descriptor
    A, B, init = core_model.operands(core_descriptor(rec), gather(cfg, rec, gbuf))
    acc = numerics.dot(A[:, None, :], B[None, :, :], init[None, :])
    return relu_pos(numerics.narrow(acc)).ravel(), live.ravel()


def sparsity(counts):
    """The ``sparsity`` figures of :func:`work_run`'s ``counts``: ``input_zeros`` (zero
    A entries of every GEMM record, of all), and over the FP ReLU outputs
    :func:`ganpu.model.eors.prediction_stats` (``true_zero``, ``skipped``: predicted
    zero, ``false_zero``: of the nonzero outputs, ``recall``) with their count."""
    import numpy as np
    from .model.eors import prediction_stats
    true = np.concatenate(counts["true_live"]) if counts["true_live"] else np.zeros(0, bool)
    pred = np.concatenate(counts["pred_live"]) if counts["pred_live"] else np.zeros(0, bool)
    out = {"input_zeros": round(counts["a_zeros"] / max(counts["a_terms"], 1), 4),
           "relu_outputs": int(true.size)}
    out.update({k: round(v, 4) for k, v in prediction_stats(true, pred).items()})
    return out


def work_run(work, counts=None):
    """A ``run(cfg, gbuf, records, on_pause)`` for :func:`ganpu.host.compiler.run_step`:
    the program model, recording in ``work[t]`` the MACs of each row of every GEMM record
    ``t`` as the cores do them: each computed output's nonzero terms (the row's nonzero A
    entries), the computed outputs being the live ones (MASK_IN, or the EORS prediction
    of an EORS record) and the sampled ones (:func:`_task_outputs`). Unlike
    :func:`ganpu.processor.cycle_model.task_row_macs`, which reads the GBUF after the
    step and so counts every output of an EORS record (its prediction is not kept),
    this sees the prediction; elsewhere the two agree. ``counts`` (a dict) gathers what
    :func:`sparsity` reads: the A operands' terms and zeros, and each FP ReLU record's
    exact and predicted live outputs (:func:`_relu_prediction`)."""
    import numpy as np
    from .core.descriptor import Act, Op
    from .processor.model import run_program
    from .processor.program import ProgramError
    if counts is not None:
        counts.update(a_terms=0, a_zeros=0, true_live=[], pred_live=[])

    def run(cfg, gbuf, records, on_pause):
        def count(t, rec, g):
            nnz, live, sampled = _task_outputs(cfg, rec, g)
            work[t] = (nnz * (live | sampled).sum(axis=1)).astype(np.int64)
            if counts is not None:
                counts["a_terms"] += rec["m"] * rec["k"]
                counts["a_zeros"] += rec["m"] * rec["k"] - int(nnz.sum())
                if rec["op"] == Op.FP.value and rec["act"] == Act.RELU.value:
                    true, pred = _relu_prediction(cfg, rec, g, live)
                    counts["true_live"].append(true)
                    counts["pred_live"].append(pred)
        err, task, core_err, out = run_program(cfg, gbuf, records, on_pause, on_task=count)
        if err != ProgramError.OK:
            raise RuntimeError(f"program refused: {err!r} at record {task} (core {core_err!r})")
        return out
    return run


def warm_gan(tc, warmup, log=None):
    """A :class:`~ganpu.gan.GAN` of TrainConfig ``tc`` after ``warmup`` steps of the
    golden model's ``GAN.step``: weights, masters, momenta, history and the random
    stream (noise and real batches) where those steps leave them."""
    from .core.config import check_int
    from .gan import GAN
    check_int("warmup", warmup, 0)
    gan = GAN(tc)
    every = max(1, warmup // 10)
    for i in range(warmup):
        rec = gan.step()
        if log and ((i + 1) % every == 0 or i + 1 == warmup):
            log(f"warm-up step {i + 1}/{warmup} on the golden model: D {rec['d_loss']:.4f} "
                f"G {rec['g_loss']:.4f}")
    return gan


def bench_train(*, device="model", config="sim", gbuf_bits=19, batch=32, steps=3, seed=0,
                eors=False, mhz=30.0, policy="adaptive", check_model=False, binary=None,
                warmup=0, host_words=None, log=None):
    """The figures as a dict (see the module docstring). ``check_model``: train a
    second copy on the program model (``--device model``) in lockstep and compare its
    weights too; ``binary``: a ``ganpu sim`` binary already built for the config
    (device ``sim``); ``warmup``: golden-model steps before the measured ones
    (:func:`warm_gan`); ``host_words``: the cores' host-port words (the DMA's width)
    instead of the config's; ``log``: progress lines (the build, each step)."""
    import numpy as np
    from .core.config import check_int
    from .gan import GAN, TrainConfig
    from .gan.train import DeviceTrainer
    from .host.compiler import task_macs
    from .model import DEFAULT_EORS
    from .processor.cycle_model import simulate, task_row_macs
    from .processor.program import Policy, TaskKind

    calibrate = eors == "calibrate"
    check_int("steps", steps, 1)
    check_int("warmup", warmup, 0)
    if policy not in POLICIES:
        raise ValueError(f"policy must be one of {POLICIES!r}, got {policy!r}")
    if calibrate and warmup:
        raise ValueError(f"warmup with eors 'calibrate' is not supported, got warmup={warmup!r}: "
                         f"the golden model has no per-layer EORS levels to warm up with")
    config_name = config if isinstance(config, str) else "custom"
    if host_words is not None:
        from .processor.config import config as named
        base = named(config) if isinstance(config, str) else config
        # CoreConfig checks the width (a power of two, at most a BIAS/BW word)
        config = replace(base, core=replace(base.core, host_words=host_words))
        config_name += f", host_words {host_words}"
    if calibrate:
        # the one setting on the cores, levels calibrated between steps: the golden
        # model has no per-layer levels, so the program model is the reference
        from .host.calibrate import calibration_config
        from .processor.config import config as named
        config = calibration_config(named(config) if isinstance(config, str) else config)
        check_model = True
    tc = TrainConfig(batch=batch, seed=seed,
                     eors=config.core.eors if calibrate else DEFAULT_EORS if eors else None)
    # one warm-up, copied: every copy continues the same weights and random stream
    warm = warm_gan(tc, warmup, log)
    ref, hw = copy.deepcopy(warm), copy.deepcopy(warm)
    refs = {} if calibrate else {"golden": ref}
    twin = None
    if check_model and device != "model":
        refs["model"] = copy.deepcopy(warm)
        twin = DeviceTrainer(refs["model"], "model", config, gbuf_bits=gbuf_bits, calibrate=calibrate)
    import resource

    def cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    step_seconds = []
    losses = []
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
                # cores do (work_run): the records too (calibration rewrites their levels).
                # Behind a link the GAN's copy of the weights is not synced between steps:
                # the reference in lockstep (checked bit-identical) stands for it
                state = hw if tr.gbuf is not None else refs.get("golden", refs.get("model"))
                last = (copy.deepcopy(state), None if tr.gbuf is None else tr.gbuf.copy(),
                        copy.deepcopy(program.records))
            t1, c1 = time.time(), cpu()
            got = tr.step(sync=i == steps - 1)
            step_seconds.append(time.time() - t1)
            host_cpu += cpu() - c1
            losses.append(got)
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
                log(f"step {i + 1}/{steps} (training step {got['step']}): "
                    f"{step_seconds[-1]:.1f} s, D {got['d_loss']:.4f} "
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
    work, counts = {}, {}
    run = work_run(work, counts)
    gan, before, records = last
    # behind a link: the last step again from the reference's state (weights written)
    _, again = run_step(program, gan, before, weights=before is None,
                        run=lambda c, g, _, p: run(c, g, records, p))
    if gbuf is None:
        gbuf = again
    elif not np.array_equal(again, gbuf):
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
        # what-if on a one-set config: the measured work on cores with two buffer sets
        # (a task's load overlapping the previous one's compute; docs/astm.md)
        if cfg.core.buffer_sets == 1:
            kinds += (("prefetch", row_macs),)
        for name, rm in kinds:
            # None: the config's own buffer sets, the hardware the device runs
            s = simulate(cfg, program.records, Policy[p.upper()], row_macs=rm,
                         prefetch=True if name == "prefetch" else None)
            d_end = max(s.finished[i] for i in d_updates)
            secs = s.cycles / f
            runs[name] = {"cycles": s.cycles, "d_update": d_end, "g_update": s.cycles - d_end,
                          "dma_cycles": s.dma_cycles, "efficiency": round(s.efficiency, 4),
                          "step_ms": round(1e3 * secs, 3),
                          "effective_gflops": round(2 * dense_macs / secs / 1e9, 4)}
        runs["speedup"] = round(runs["dense"]["cycles"] / runs["measured"]["cycles"], 4)
        runs["effective_vs_peak"] = round(2 * dense_macs / (runs["measured"]["cycles"] / f) / peak, 4)
        if "prefetch" in runs:
            runs["prefetch_vs_peak"] = round(2 * dense_macs / (runs["prefetch"]["cycles"] / f) / peak, 4)
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
           "gbuf_bits": cfg.gbuf_bits, "host_words": cfg.core.host_words, "cores": cfg.cores,
           "lanes": cfg.core.lanes, "batch": batch, "eors": eors, "seed": seed,
           "warmup": warmup, "steps": steps, "losses": losses,
           "records": len(program.tasks), "updates": sum(t.kind == TaskKind.UPDATE for t in program.tasks),
           "parameters": params, "dense_macs": dense_macs, "seconds": round(seconds, 3),
           "steps_per_s": round(steps / seconds, 4),
           "step_seconds": [round(x, 3) for x in step_seconds],
           # the first step also writes the weights, masters and momenta
           "projected_500_steps_min": round((step_seconds[0] + 499 * steady) / 60, 1),
           "bit_identical": not mismatches, "compared_with": list(refs),
           "mismatches": mismatches, "mhz": mhz, "dense_peak_gflops": round(peak / 1e9, 4),
           "policies": pol, "bound": bound, "sparsity": sparsity(counts),
           "weights_sha256": state_digest(hw)}
    if calibrate:
        out["levels"] = levels
    if eors and cfg.core.eors_sample_log2:
        # at the first measured step (after the warm-up)
        out["sampling"] = sampling_cost(program, tc, copy.deepcopy(warm))
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
        if out["sim_breakdown"].get("running"):
            # the processor's compute per step on the RTL (the host's pauses and the
            # link are not the processor's: the cycle model leaves them out too)
            rtl = out["sim_breakdown"]["running"] / steps
            model = pol[policy]["measured"]["cycles"]
            out["rtl"] = {"policy": policy, "running_cycles_per_step": round(rtl, 1),
                          "cycle_model": model, "rtl_over_model": round(rtl / model, 4),
                          "of_dense_peak": round(dense_time / rtl, 4)}
    return out


def print_policy_table(res, file=None):
    """The per-policy table of :func:`bench_train`'s figures (markdown; also the
    README's ``train-bench`` block, ``scripts/update_readme.py --train-bench``)."""
    file = sys.stdout if file is None else file
    print("| policy | step cycles | D update | G update | dense cycles | speed-up | step (ms) "
          "| effective GFLOPS | of dense peak |", file=file)
    print("|---|---|---|---|---|---|---|---|---|", file=file)
    for p, r in res["policies"].items():
        m, d = r["measured"], r["dense"]
        print(f"| {p} | {m['cycles']:,} | {m['d_update']:,} | {m['g_update']:,} | {d['cycles']:,} "
              f"| {r['speedup']:.2f}x | {m['step_ms']:.2f} | {m['effective_gflops']:.3f} "
              f"| {r['effective_vs_peak']:.2f}x |", file=file)


def print_table(res, file=None):
    file = sys.stdout if file is None else file
    warm = f" after {res['warmup']:,} warm-up steps on the golden model" if res["warmup"] else ""
    print(f"{res['steps']} steps{warm} on {res['device']} ({res['config']}, {res['cores']} cores x "
          f"{res['lanes']} lanes, batch {res['batch']}, EORS {res['eors'] if isinstance(res['eors'], str) else 'on' if res['eors'] else 'off'}): "
          f"{res['steps_per_s']:.2f} steps/s ({res['projected_500_steps_min']:g} min for 500 steps), "
          f"bit-identical to {' and '.join(res['compared_with']) or 'no reference (the device is the model)'}: "
          f"{'yes' if res['bit_identical'] else 'NO ' + ', '.join(res['mismatches'])}", file=file)
    print(f"{res['records']} records per step ({res['updates']} UPDATE, {res['parameters']:,} "
          f"parameters), {res['dense_macs']:,} dense MACs; at {res['mhz']:g} MHz, dense peak "
          f"{res['dense_peak_gflops']:.3f} GFLOPS\n", file=file)
    print_policy_table(res, file)
    b = res["bound"]
    print(f"\nbound (any schedule): {b['surviving_macs']:,} surviving MACs on every lane "
          f"+ the update engine's {b['update_cycles']:,} DMA cycles = {b['cycles']:,} cycles, "
          f"{b['of_dense_peak']:.2f}x of dense peak ({b['of_dense_peak_without_update']:.2f}x "
          f"without the update)", file=file)
    sp = res["sparsity"]
    print(f"\nsparsity of the last step (training step {res['warmup'] + res['steps']}): "
          f"{100 * sp['input_zeros']:.1f} % of the GEMMs' A entries zero; of the "
          f"{sp['relu_outputs']:,} FP ReLU outputs {100 * sp['true_zero']:.1f} % zero, "
          f"{100 * sp['skipped']:.1f} % predicted zero (skipped), false zeros "
          f"{100 * sp['false_zero']:.2f} % of the nonzero ones", file=file)
    if all("prefetch" in r for r in res["policies"].values()):
        print("two buffer sets per core (the cycle model's prefetch what-if, docs/astm.md): " + ", ".join(
            f"{p} {r['prefetch']['cycles']:,} ({r['prefetch_vs_peak']:.2f}x)"
            for p, r in res["policies"].items()) + " cycles (of dense peak)", file=file)
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
    if "rtl" in res:
        r = res["rtl"]
        print(f"RTL: {r['running_cycles_per_step']:,.0f} cycles RUNNING per step ({r['policy']}), "
              f"{r['rtl_over_model']:.4f}x the cycle model's {r['cycle_model']:,}; "
              f"{r['of_dense_peak']:.2f}x of dense peak", file=file)


def _cmd(args):
    try:
        res = bench_train(device=args.device, config=args.config, gbuf_bits=args.gbuf_bits,
                          batch=args.batch, steps=args.steps, seed=args.seed,
                          eors={"on": True, "off": False}.get(args.eors, args.eors),
                          mhz=args.mhz, policy=args.policy,
                          check_model=args.check_model, binary=args.sim_binary,
                          warmup=args.warmup, host_words=args.host_words,
                          log=lambda line: print(line, file=sys.stderr, flush=True))
    except (TypeError, ValueError) as exc:
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
    c.add_argument("--warmup", type=nonneg_int, default=0, metavar="N",
                   help="train N steps on the golden model first (fast), then measure "
                        "--steps steps on the device from there: the step of a trained GAN "
                        "(default 0: a fresh GAN)")
    c.add_argument("--host-words", type=positive_int, default=None, metavar="W",
                   help="the cores' host-port words, the DMA's width (default the config's)")
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
