#!/usr/bin/env python3
"""EORS on GANs the project was not tuned on: recall / false zeros / skipped per ReLU
layer, early - middle - end of training, for pure exponent-only, the absolute default,
the scale-aware threshold and online self-calibration (``docs/eors.md``, "Study").

Usage: python scripts/eors_study.py --json F [--md F] [--full] [--gans a,b] [--sweep]

Every GAN is trained exactly (EORS off) through the golden model, so all modes are
measured on the same tensors; the self-calibrated mode runs its sampler, counters and
policy on every FP ReLU task of every training step (as the hardware would) and is
measured with the levels it has reached. Measurements: at each checkpoint, FP of G on
64 noise vectors and of D on 64 real + 64 fake digits (exact), the prediction of each
mode against the exact ReLU mask. Default run: short (about 10 minutes on one core);
``--full`` is the study the docs quote.
"""

import argparse
import json
import sys
import time
from dataclasses import replace

import numpy as np

from ganpu.gan.report import _fp_relu_records
from ganpu.gan.train import GAN, TrainConfig
from ganpu.model import FC, Conv2d, ConvTranspose2d, Net
from ganpu.model.eors import (EorsParams, DEFAULT_EORS, eors_state, predicted_live,
                              prediction_stats, EorsSampler, EorsCalibrator, ONE_SETTING, ONE_SETTING_EORS,
                              ONE_SETTING_RATE_LOG2, mix16,
                              calibration_counts)

ZDIM = 16
LANES = 16          # the core's default eors_lanes: the sampler's word
RATE_LOG2 = 6       # one output in 64

PURE = EorsParams(m=0, threshold=0)
SCALE = ONE_SETTING_EORS                        # the scale-aware setting (docs/eors.md)
MODES = ("pure", "default", "scale", "calib")
# The one calibration setting for every GAN (docs/eors.md, "The one setting"):
# ``--one-setting`` runs the calibrated mode with it.
CALIB_POLICY = {"rate_log2": ONE_SETTING_RATE_LOG2, **ONE_SETTING}
MODE_NAMES = {"pure": "pure exponent-only (m=0, thr 0)",
              "default": f"absolute default (m={DEFAULT_EORS.m}, thr {DEFAULT_EORS.threshold})",
              "scale": f"scale-aware (m={SCALE.m}, rel={SCALE.rel}, thr {SCALE.threshold})",
              "calib": f"self-calibrated (start rel={SCALE.rel}, 1 in {1 << RATE_LOG2} sampled)"}


# ------------------------------------------------------------------------ the GANs

def _init(layer, kind, rng):
    """Re-initialise a layer: "he" (normal, gain sqrt 2, zero bias, the reference
    GANs' own) or "uniform" (PyTorch's default: weights and bias U(+-1/sqrt(fan_in)))."""
    # FC (out, in), Conv (cout, cin, k, k), TConv (cin, cout, k, k): PyTorch takes
    # the fan-in from dimension 1 on in all three
    fan_in = int(np.prod(layer.w32.shape[1:]))
    if kind == "uniform":
        bound = 1.0 / np.sqrt(fan_in)
        layer.w32 = rng.uniform(-bound, bound, layer.w32.shape).astype(np.float32)
        layer.b32 = rng.uniform(-bound, bound, layer.b32.shape).astype(np.float32)
    layer.sync()


def _mlp(name, sizes, act, rng, last_act="identity", slope=0.2):
    layers = []
    for i in range(len(sizes) - 1):
        a = act if i < len(sizes) - 2 else last_act
        layers.append(FC(f"fc{i + 1}", sizes[i], sizes[i + 1], act=a, slope=slope, rng=rng))
    return Net(name, layers)


def build(spec, seed):
    """(G, D, net) for one study GAN ``spec`` (a dict, see GANS)."""
    rng = np.random.default_rng(seed)
    if spec["net"] == "mlp":
        G = _mlp("G", [ZDIM, *spec["g"], 64], "relu", rng)
        D = _mlp("D", [64, *spec["d"], 1], spec.get("d_act", "relu"), rng)
    else:
        c1, c2, f = spec["g"]
        G = Net("G", [FC("fc1", ZDIM, c1 * 4, rng=rng),
                      ConvTranspose2d("tconv2", c1, c2, 4, 2, 1, in_hw=(2, 2), rng=rng),
                      ConvTranspose2d("tconv3", c2, 1, 4, 2, 1, act="identity", rng=rng)])
        d1, d2 = spec["d"]
        D = Net("D", [Conv2d("conv1", 1, d1, 4, 2, 1, in_hw=(8, 8), rng=rng),
                      Conv2d("conv2", d1, d2, 4, 2, 1, rng=rng),
                      FC("fc3", d2 * 4, 1, act="identity", rng=rng)])
    for layer in G.layers + D.layers:
        _init(layer, spec["init"], rng)
    return G, D


# Differ from the reference GANs (mlp 16-64-128-64 / 64-128-64-1 He; conv 128-32-16 /
# 16-32) in width, depth, initialisation, D's activation, and the conv GAN's shape.
GANS = {
    "mlp-wide-uniform": {"net": "mlp", "g": [128, 256], "d": [256, 128], "init": "uniform"},
    "mlp-deep-he": {"net": "mlp", "g": [48, 96, 96, 48], "d": [96, 96, 48], "init": "he"},
    "mlp-narrow-uniform": {"net": "mlp", "g": [32, 64, 32], "d": [64, 32, 32], "init": "uniform"},
    "mlp-leakyD-uniform": {"net": "mlp", "g": [96, 192], "d": [192, 96], "init": "uniform",
                           "d_act": "leaky"},
    "conv-uniform": {"net": "conv", "g": [64, 32, 1], "d": [32, 64], "init": "uniform"},
    "conv-he": {"net": "conv", "g": [48, 24, 1], "d": [24, 48], "init": "he"},
}
STEPS = {"short": {"mlp": 250, "conv": 120}, "full": {"mlp": 500, "conv": 200}}
SHORT_GANS = ("mlp-wide-uniform", "mlp-deep-he", "mlp-leakyD-uniform", "conv-uniform")


def checkpoints(steps):
    """Early (step 100), middle and end."""
    return sorted({min(100, steps), max(steps // 2, min(100, steps)), steps})


# ------------------------------------------------------------------ calibration run

class CalibHook:
    """Runs the sampler, counters and policy on every FP ReLU task of training."""

    def __init__(self, base=SCALE, rate_log2=RATE_LOG2, sample_seed=0, **policy):
        self.cal = EorsCalibrator(base, rate_log2=rate_log2, **policy)
        self.sample_seed = sample_seed   # XORed into every task's key: another draw
        self.sampler = EorsSampler(LANES, rate_log2)
        self.tasks = 0         # a fresh sampling key per task (as the host gives them)
        self.tag = "G"
        self.sampled = 0       # outputs computed only to measure (sum of nnz(A row))
        self.work = 0          # MACs of the FP ReLU tasks as run (predicted live)
        self.true = {}         # running exact counts per layer (for the record)

    def __call__(self, layer, phase, t):
        if phase != "fp" or t["act"] != "relu":
            return
        name = f"{self.tag}.{layer.name}"
        p = self.cal.params_for(name)
        acc, mag, forced, L = eors_state(t["A"], t["B"], layer.b16, p)
        pred = predicted_live(acc, mag, forced, L, p)
        true = np.asarray(t["mask_out"], dtype=bool)
        self.tasks += 1
        samp = self.sampler.sample(*pred.shape, mix16(self.tasks) ^ self.sample_seed)
        self.cal.add(name, calibration_counts(pred, samp, true))
        nnz = ((t["A"] & 0x7FFF) != 0).sum(axis=1)[:, None]
        self.work += int((pred * nnz).sum())
        self.sampled += int(((samp & ~pred) * nnz).sum())
        c = self.true.setdefault(name, np.zeros(4, dtype=np.int64))
        c += [(~true & ~pred).sum(), (~true).sum(), (true & ~pred).sum(), true.sum()]


def run_gan(name, spec, steps, seed, log, rate_log2=RATE_LOG2, sample_seed=0, **policy):
    cfg = TrainConfig(net=spec["net"], seed=seed)
    gan = GAN(cfg)
    gan.G, gan.D = build(spec, seed)
    hook = CalibHook(rate_log2=rate_log2, sample_seed=sample_seed, **policy)
    hG = lambda l, p, t: (setattr(hook, "tag", "G"), hook(l, p, t))
    hD = lambda l, p, t: (setattr(hook, "tag", "D"), hook(l, p, t))
    gan.G.add_hook(hG)
    gan.D.add_hook(hD)
    out = {"spec": spec, "steps": steps, "checkpoints": {}}
    t0 = time.time()
    cps = checkpoints(steps)
    for step in range(1, steps + 1):
        gan.step()
        hook.cal.end_step()
        if step in cps:
            gan.G.remove_hook(hG)
            gan.D.remove_hook(hD)
            recs = _fp_relu_records(gan)
            gan.G.add_hook(hG)
            gan.D.add_hook(hD)
            out["checkpoints"][step] = evaluate(recs, hook.cal)
            h = gan.history[-1]
            log(f"  [{name} step {step}: d_loss {h['d_loss']:.3f} g_loss {h['g_loss']:.3f}, "
                f"{time.time() - t0:.0f}s]")
    out["calib_levels"] = dict(hook.cal.q)
    out["calib_history"] = hook.cal.history        # each layer's level after every step
    out["calib_events"] = hook.cal.events          # every level change and the counters behind it
    out["calib_cost"] = hook.sampled / max(hook.work, 1)
    out["calib_true"] = {k: {"recall": float(v[0] / max(v[1], 1)),
                             "false_zero": float(v[2] / max(v[3], 1))}
                         for k, v in hook.true.items()}
    out["runtime_s"] = time.time() - t0
    return out


def evaluate(recs, cal, sweep=None):
    """{layer: {mode: stats}} for one checkpoint's records."""
    res = {}
    for lname, A, B, b16, live in recs:
        st = eors_state(A, B, b16, DEFAULT_EORS)
        r = {"default": prediction_stats(live, predicted_live(*st, DEFAULT_EORS)),
             "scale": prediction_stats(live, predicted_live(*st, SCALE)),
             "calib": prediction_stats(live, predicted_live(*st, cal.params_for(lname))),
             "pure": prediction_stats(live, predicted_live(*eors_state(A, B, b16, PURE), PURE))}
        r["calib"]["rel"] = cal.params_for(lname).rel
        for q in (sweep or ()):
            r[f"rel{q}"] = prediction_stats(live, predicted_live(*st, replace(SCALE, rel=q)))
        res[lname] = r
    return res


# ----------------------------------------------------------------------- the table

def _calib_name(args):
    policy = ("" if args.recall is None else
        f", recall {args.recall:g}" + ("" if args.recall_hi is None else f"..{args.recall_hi:g}")) + \
        "".join(f", {k} {getattr(args, k):g}" for k in ("fz_conf", "recall_conf") if getattr(args, k))
    return f"self-calibrated (start rel={SCALE.rel}, 1 in {1 << args.rate_log2} sampled{policy})"


def _pct(x):
    return f"{100 * x:.1f}"


def summarize(results, modes=MODES):
    """Worst case over layers and checkpoints, per GAN and mode, and overall."""
    summ = {}
    for g, r in results.items():
        for mode in modes:
            vals = [lay[mode] for cp in r["checkpoints"].values() for lay in cp.values()]
            if not vals:
                continue
            s = summ.setdefault(g, {})
            s[mode] = {"min_recall": min(v["recall"] for v in vals),
                       "max_false_zero": max(v["false_zero"] for v in vals),
                       "mean_skipped": float(np.mean([v["skipped"] for v in vals]))}
    return summ


def tables(results, meta, sweep=()):
    lines = []
    emit = lines.append
    emit(f"Command: `{meta['command']}` ({meta['runtime_s']:.0f} s). GANs trained exactly "
         "(EORS off), batch 32; checkpoints at step 100, the middle and the end; each "
         "checkpoint measures FP of G on 64 noise vectors and of D on 64 real + 64 fake.")
    emit("")
    emit("Worst ReLU layer over all checkpoints (recall min / false zeros max, %; "
         "skipped: mean over layers and checkpoints):")
    emit("")
    names = meta.get("modes", MODE_NAMES)
    emit("| GAN | steps | " + " | ".join(names[m] for m in MODES) + " | calib. cost |")
    emit("|---|---|" + "---|" * (len(MODES) + 1))
    summ = summarize(results)
    for g, r in results.items():
        s = summ.get(g, {})
        cells = [f"{_pct(s[m]['min_recall'])} / {_pct(s[m]['max_false_zero'])} / "
                 f"{_pct(s[m]['mean_skipped'])}" if m in s else "-" for m in MODES]
        emit(f"| {g} | {r['steps']} | " + " | ".join(cells) +
             f" | {100 * r['calib_cost']:.2f}% |")
    if sweep:
        summ_q = summarize(results, tuple(f"rel{q}" for q in sweep))
        emit("")
        emit("Scale-aware level sweep (threshold 0), worst ReLU layer over all checkpoints "
             "(recall min / false zeros max, %):")
        emit("")
        emit("| GAN | " + " | ".join(f"rel={q}" for q in sweep) + " |")
        emit("|---|" + "---|" * len(sweep))
        for g in results:
            emit(f"| {g} | " + " | ".join(
                f"{_pct(summ_q[g][f'rel{q}']['min_recall'])} / "
                f"{_pct(summ_q[g][f'rel{q}']['max_false_zero'])}" for q in sweep) + " |")
    emit("")
    emit("Per layer (recall / false zeros, %) at each checkpoint:")
    emit("")
    emit("| GAN | layer | step | " + " | ".join(MODES) + " | calib rel |")
    emit("|---|---|---|" + "---|" * (len(MODES) + 1))
    for g, r in results.items():
        for step, cp in r["checkpoints"].items():
            for lay, st in cp.items():
                emit(f"| {g} | {lay} | {step} | " + " | ".join(
                    f"{_pct(st[m]['recall'])} / {_pct(st[m]['false_zero'])}" for m in MODES) +
                    f" | {st['calib']['rel']} |")
    return lines


def merge(args):
    """Tables from several earlier runs (e.g. one process per GAN run side by side)."""
    results, runtime, cmds, modes = {}, 0.0, [], MODE_NAMES
    for path in args.merge:
        with open(path) as f:
            d = json.load(f)
        modes = d["meta"].get("modes", modes)
        runtime += d["meta"].get("runtime_s", 0.0)
        cmds.append(d["meta"].get("command", path))
        for g, r in d["gans"].items():
            results[g] = {**r, "checkpoints": {int(k): v for k, v in r["checkpoints"].items()}}
    meta = {"command": " ; ".join(cmds) + " ; python scripts/eors_study.py " +
            " ".join(a for a in (sys.argv[1:])), "runtime_s": runtime, "modes": modes,
            "rate_log2": RATE_LOG2, "lanes": LANES, "scale": vars(SCALE),
            "default": vars(DEFAULT_EORS), "merged": args.merge}
    first = next(iter(next(iter(results.values()))["checkpoints"].values()))
    levels = sorted(int(k[3:]) for k in next(iter(first.values())) if k.startswith("rel"))
    lines = tables(results, meta, levels)
    print("\n".join(lines))
    _save(args.json, results, meta, levels)
    if args.md:
        with open(args.md, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


def _save(path, results, meta, sweep):
    out = {"meta": meta, "summary": summarize(results, MODES + tuple(f"rel{q}" for q in sweep)),
           "gans": {g: {**r, "checkpoints": {str(k): v for k, v in r["checkpoints"].items()}}
                    for g, r in results.items()}}
    with open(path, "w") as f:
        json.dump(out, f, indent=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", required=True)
    ap.add_argument("--md", default=None)
    ap.add_argument("--full", action="store_true", help="all GANs, long training")
    ap.add_argument("--gans", default=None, help="comma-separated subset of " + ",".join(GANS))
    ap.add_argument("--steps", type=int, default=None, help="override the steps of every GAN")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sample-seed", type=int, default=0,
                    help="XORed into every task's sampling key (0..65535): another sample draw "
                         "(default %(default)s, the keys the host gives)")
    ap.add_argument("--sweep", default="", help="also score these rel levels, e.g. 4,5,6,7,8")
    ap.add_argument("--rate-log2", type=int, default=RATE_LOG2,
                    help="self-calibration samples one output in 2**r (default %(default)s)")
    ap.add_argument("--recall", type=float, default=None,
                    help="the calibrator's recall target (EorsCalibrator recall; default none)")
    ap.add_argument("--recall-hi", type=float, default=None,
                    help="the calibrator's recall ceiling (EorsCalibrator recall_hi; default none)")
    ap.add_argument("--hi", type=float, default=0.006, help="the calibrator's false-zero ceiling")
    ap.add_argument("--fz-conf", type=float, default=0.0,
                    help="the false-zero ceiling's confidence (EorsCalibrator fz_conf; default none)")
    ap.add_argument("--recall-conf", type=float, default=0.0,
                    help="the recall ceiling's confidence (EorsCalibrator recall_conf; default none)")
    ap.add_argument("--one-setting", action="store_true",
                    help="calibrate with CALIB_POLICY (overrides the options it sets)")
    ap.add_argument("--merge", nargs="+", default=None,
                    help="no training: tabulate the GANs of these earlier --json files")
    args = ap.parse_args(argv)
    if args.one_setting:
        for k, v in CALIB_POLICY.items():
            setattr(args, k, v)
    if not 0 <= args.sample_seed <= 0xFFFF:
        ap.error(f"--sample-seed must be in [0, 65535], got {args.sample_seed!r}")
    if args.merge:
        return merge(args)
    names = args.gans.split(",") if args.gans else list(GANS if args.full else SHORT_GANS)
    for n in names:
        if n not in GANS:
            ap.error(f"unknown GAN {n!r}; known: {', '.join(GANS)}")
    steps = STEPS["full" if args.full else "short"]
    sweep = [int(q) for q in args.sweep.split(",") if q]
    global evaluate
    if sweep:
        base_eval = evaluate
        evaluate = lambda recs, cal: base_eval(recs, cal, sweep)
    t0 = time.time()
    results = {}
    for n in names:
        spec = GANS[n]
        st = args.steps or steps[spec["net"]]
        print(f"[{n}: {st} steps]", flush=True)
        results[n] = run_gan(n, spec, st, args.seed, lambda s: print(s, flush=True),
                             rate_log2=args.rate_log2, recall=args.recall,
                             recall_hi=args.recall_hi, hi=args.hi, fz_conf=args.fz_conf,
                             recall_conf=args.recall_conf,
                             sample_seed=args.sample_seed)
        _save(args.json, results, {"partial": True}, sweep)
    meta = {"command": "python scripts/eors_study.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "runtime_s": time.time() - t0, "rate_log2": args.rate_log2,
            "modes": {**MODE_NAMES, "calib": _calib_name(args)},
            "recall": args.recall, "recall_hi": args.recall_hi, "hi": args.hi,
            "fz_conf": args.fz_conf, "recall_conf": args.recall_conf,
            "sample_seed": args.sample_seed,
            "lanes": LANES, "scale": vars(SCALE), "default": vars(DEFAULT_EORS)}
    lines = tables(results, meta, sweep)
    print("\n".join(lines))
    _save(args.json, results, meta, sweep)
    if args.md:
        with open(args.md, "w") as f:
            f.write("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
