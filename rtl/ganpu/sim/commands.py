"""``ganpu sim``: the native-speed simulator server, and ``ganpu bench sim``
(``docs/sim.md``)."""

import argparse
import os
import sys

from ..cli import nonneg_int, positive_int

__all__ = ["register"]


def _port(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port 0..65535, not {text!r}")
    return value


def _ratio(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 16:
        raise argparse.ArgumentTypeError(f"expected link clock cycles per core cycle 1..16, "
                                         f"not {text!r}")
    return value


def _config(name):
    from ..processor.config import config
    try:
        config(name)
    except KeyError as exc:
        raise argparse.ArgumentTypeError(exc.args[0]) from None
    return name


def _cmd_sim(args):
    import dataclasses
    from . import native
    from ..processor.config import config
    cfg = args.config
    if args.gbuf_bits is not None:
        try:
            cfg = dataclasses.replace(config(cfg), gbuf_bits=args.gbuf_bits)
        except ValueError as exc:
            print(f"ganpu sim: {exc}", file=sys.stderr)
            return 2
    try:
        binary, seconds = native.build(cfg, build_dir=args.build_dir,
                                       log=lambda s: print(f"ganpu sim: {s}", flush=True))
    except native.SimBuildError as exc:
        print(f"ganpu sim: {exc}", file=sys.stderr)
        return 1
    print(f"ganpu sim: {'built in %.0f s' % seconds if seconds else 'cached build'}: {binary}",
          flush=True)
    argv = [str(binary), "--host", args.host, "--port", str(args.port), "--poll", str(args.poll),
            "--idle", str(args.idle), "--ratio", str(args.ratio), "--linger", str(args.linger),
            "--settle", str(args.settle)]
    # the binary takes this process's place: SIGINT/SIGTERM reach it directly
    os.execv(argv[0], argv)


def _cmd_bench(args):
    from .bench_sim import bench_sim, print_report
    import json
    from pathlib import Path
    result = bench_sim(config=args.config, step_config=None if args.no_step else args.step_config,
                       batch=args.batch,
                       cocotb_cycles=args.cocotb_cycles, log=lambda s: print(s, flush=True))
    print_report(result)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        print(f"wrote {args.json}")
    return 0


def register(sub):
    """Add the ``sim`` subcommand to ``sub`` (the CLI's subparsers), and ``sim`` to the
    ``bench`` subcommands when ``ganpu bench`` is registered."""
    s = sub.add_parser("sim", help="serve the processor's RTL at native speed on a TCP socket "
                                   "(Verilator; the driver connects with socket://)")
    s.add_argument("--config", type=_config, default="small",
                   help="named processor config (default small)")
    s.add_argument("--gbuf-bits", type=positive_int, default=None,
                   help="GBUF address bits instead of the config's (the MLP GAN's step with "
                        "its masters and momenta needs 19 at batch 32: --config sim "
                        "--gbuf-bits 19, then ganpu train --device socket://... --gbuf-bits 19)")
    s.add_argument("--port", type=_port, default=5555,
                   help="TCP port (default 5555; 0 picks a free one)")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    s.add_argument("--poll", type=positive_int, default=64,
                   help="clock cycles between two looks at the socket (default 64)")
    s.add_argument("--idle", type=int, default=4096,
                   help="cycles of a quiet link and a stopped processor after which simulated "
                        "time waits for the client (default 4096; 0: never)")
    s.add_argument("--ratio", type=_ratio, default=2,
                   help="link clock cycles per core clock cycle, 1..16 (default 2): bytes "
                        "enter and leave that many times faster than the core runs")
    s.add_argument("--linger", type=nonneg_int, default=32,
                   help="core cycles after the last link byte during which the link keeps "
                        "--ratio cycles per core cycle; then one until the next byte (default "
                        "32; 0: always --ratio)")
    s.add_argument("--settle", type=nonneg_int, default=8,
                   help="core cycles after which simulated time waits for the client once "
                        "every request is answered and no program checks or runs (default 8; "
                        "0: only after --idle cycles)")
    s.add_argument("--build-dir", default=None, metavar="DIR",
                   help="build cache (default $GANPU_BUILD or build/sim)")
    s.set_defaults(func=_cmd_sim)

    bench = sub.choices.get("bench")
    if bench is not None and hasattr(bench, "subcommands"):
        b = bench.subcommands.add_parser(
            "sim", help="cycles/s of ganpu sim vs the cocotb path; seconds per MLP GAN step "
                        "on ganpu sim")
        b.add_argument("--config", type=_config, default="small",
                       help="config of the cycles/s comparison (default small)")
        b.add_argument("--step-config", type=_config, default="sim",
                       help="config of the MLP GAN step (default sim: its GBUF holds the step)")
        b.add_argument("--no-step", action="store_true",
                       help="skip the MLP GAN step (its config's simulator takes long to build)")
        b.add_argument("--batch", type=positive_int, default=32, help="MLP GAN batch (default 32)")
        b.add_argument("--cocotb-cycles", type=positive_int, default=20000,
                       help="cycles to time on the cocotb path (default 20000)")
        b.add_argument("--json", help="write the figures here")
        b.set_defaults(func=_cmd_bench)
