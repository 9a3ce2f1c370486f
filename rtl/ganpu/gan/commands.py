"""``ganpu train | export | report`` subcommands; :func:`register` adds them to the
project CLI's argparse subparsers. Each handler takes the parsed args and returns an
int exit code."""

import json
import os
import sys
import time

from ..model import DEFAULT_EORS

__all__ = ["register", "cmd_train", "cmd_export", "cmd_report"]


def cmd_train(args):
    from .train import GAN, TrainConfig
    from .quality import DigitScorer
    from .plots import save_grid, save_losses
    eors = DEFAULT_EORS if args.eors == "on" else None
    device = getattr(args, "device", None)
    config = getattr(args, "config", "sim")
    if args.eors == "calibrate":
        if device is None:
            print("error: --eors calibrate needs --device (model, sim or a serial URL)",
                  file=sys.stderr)
            return 2
        from ..host.calibrate import calibration_config
        from ..processor.config import config as named
        try:
            config = calibration_config(named(config))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        eors = config.core.eors
    # fail on an unusable folder before minutes of training, not after
    os.makedirs(args.out, exist_ok=True)
    gan = GAN(TrainConfig(net=args.net, batch=args.batch, seed=args.seed, eors=eors))
    trainer = None
    if device is not None:
        from .train import DeviceTrainer
        if args.eors == "on":
            # the cores' EORS parameters are the config's; the compiler checks they agree
            print("note: --eors on uses the device config's EORS parameters", flush=True)
        try:
            trainer = DeviceTrainer(gan, device, config, gbuf_bits=args.gbuf_bits,
                                    policy=args.policy, calibrate=args.eors == "calibrate")
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        cal = ", cores at the EORS one setting, levels calibrated between steps" \
            if args.eors == "calibrate" else ""
        print(f"device {device}: config {args.config}{cal} ({trainer.cfg.cores} cores, "
              f"{trainer.cfg.gbuf_depth} GBUF words), {len(trainer.program.tasks)} records "
              f"per step, weight update on the device", flush=True)
    t0 = time.time()
    every = max(1, args.steps // 20)

    def progress(rec):
        if rec["step"] % every == 0 or rec["step"] == args.steps:
            dt = time.time() - t0
            done = rec["step"] - start
            bar = "#" * (20 * done // args.steps)
            print(f"[{bar:<20}] step {rec['step']:5d}/{start + args.steps}  D {rec['d_loss']:.3f}  "
                  f"G {rec['g_loss']:.3f}  {dt:6.1f}s  {done / max(dt, 1e-9):.2f} steps/s", flush=True)

    start = gan.steps
    if trainer is None:
        gan.train(args.steps, progress)
    else:
        with trainer:
            trainer.train(args.steps, progress)
        if trainer.cal is not None:
            levels = trainer.levels[-1] if trainer.levels else {}
            print("EORS levels after calibration: " +
                  ", ".join(f"{k} {v}" for k, v in sorted(levels.items())), flush=True)
    tag = f"{args.net}_eors-{args.eors}_s{args.seed}" + (f"_{'board' if '/' in device else device}"
                                                        if device is not None else "")
    save_grid(os.path.join(args.out, f"samples_{tag}.png"), gan.sample(64), tag)
    save_losses(os.path.join(args.out, f"losses_{tag}.png"), gan.history, tag)
    q = DigitScorer().score(gan.sample(500))
    print(f"quality: confidence {q['confidence']:.3f}  classes {q['classes']}  FD {q['fd']:.2f}")
    print(f"figures in {args.out}/")
    return 0


def cmd_export(args):
    from .export import save_export
    eors = DEFAULT_EORS if args.eors == "on" else None
    path = save_export(args.out, net=args.net, steps=args.steps,
                       batch=args.batch, seed=args.seed, eors=eors)
    print(f"wrote {path}")
    return 0


def cmd_report(args):
    from .report import run_report
    run_report(out_dir=args.out, json_path=args.json, md_path=args.md,
               mlp_steps=args.mlp_steps, conv_steps=args.conv_steps)
    return 0


def register(subparsers):
    """Add ``train``, ``export`` and ``report`` to an argparse subparsers object."""
    # a bad value is one argparse line and exit 2, before any training starts
    from ..cli import nonneg_int, nonneg_int_list, positive_int
    p = subparsers.add_parser("train", help="train a reference GAN through the golden model")
    p.add_argument("--net", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--steps", type=positive_int, default=500, help="training steps, >= 1")
    p.add_argument("--eors", choices=("on", "off", "calibrate"), default="off",
                   help="on: EORS with the config's fixed predictor; calibrate (with "
                        "--device): the cores switched to the one setting (scale-aware, "
                        "start level 9, 1 in 128 predicted-zero outputs sampled) and each "
                        "ReLU layer's level calibrated between steps from the device's "
                        "counters (docs/eors.md); off: every output computed")
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--out", default="out", help="directory for PNG figures")
    p.add_argument("--device", default=None,
                   help="run every gemm and weight update on a processor: 'model' (its "
                        "bit-exact model), 'sim' (ganpu sim, Verilator) or a serial URL "
                        "(a board, or socket://host:port); default: the golden model")
    p.add_argument("--config", default="sim", help="processor config of --device")
    p.add_argument("--gbuf-bits", type=positive_int, default=None,
                   help="GBUF address bits of --device's config (the step with masters "
                        "and momenta needs 2^19 words at batch 32)")
    p.add_argument("--policy", choices=("temporal", "spatial", "adaptive"), default="adaptive")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("export", help="export real layer tensors to .npz")
    p.add_argument("--net", choices=("mlp", "conv"), default="mlp")
    p.add_argument("--steps", type=nonneg_int_list, default=[0],
                   help="comma-separated step indices, e.g. 0,100")
    p.add_argument("--batch", type=positive_int, default=32)
    p.add_argument("--seed", type=nonneg_int, default=0)
    p.add_argument("--eors", choices=("on", "off"), default="off")
    p.add_argument("--out", required=True, help="output .npz file")
    p.set_defaults(func=cmd_export)

    p = subparsers.add_parser("report", help="EORS accuracy, GAN quality and work tables")
    p.add_argument("--out", default="out", help="directory for PNG figures")
    p.add_argument("--json", default=None, help="JSON results file (default OUT/model-report.json)")
    p.add_argument("--md", default=None, help="also write the markdown tables to this file")
    p.add_argument("--mlp-steps", type=positive_int, default=500)
    p.add_argument("--conv-steps", type=positive_int, default=150)
    p.set_defaults(func=cmd_report)
    return subparsers


def main(argv=None):
    """Stand-alone entry point (the project CLI normally calls :func:`register`)."""
    import argparse
    ap = argparse.ArgumentParser(prog="ganpu")
    register(ap.add_subparsers(dest="cmd", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
