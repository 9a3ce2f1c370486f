"""``ganpu build`` and ``ganpu flash`` for the supported boards (``docs/boards.md``)."""

import argparse
import json
import sys
from pathlib import Path

from ..cli import nonneg_int

__all__ = ["register"]

BOARD_NAMES = ("ulx3s-85f", "icebreaker")


def _board(text):
    if text not in BOARD_NAMES:
        raise argparse.ArgumentTypeError(f"unknown board {text!r}; valid boards: "
                                         f"{', '.join(BOARD_NAMES)}")
    return text


def _cmd_build(args):
    from ..fpga.report import SynthError, format_table
    from . import flow
    print(f"ganpu build: {args.board}: Yosys + nextpnr (this can take a long time)", flush=True)
    try:
        result = flow.build(args.board, build_dir=args.build_dir, seed=args.seed)
    except SynthError as exc:
        print(f"ganpu build: {exc}", file=sys.stderr)
        return 1
    print(format_table([result]))
    cap = result_capacity(args.board)
    print(f"\n{args.board}: {result.lut4:,} of {cap['lut4']:,} LUT4, {result.bram} of "
          f"{cap['bram']} BRAM, Fmax {result.fmax_mhz:.1f} MHz (clock {result.clock}); "
          f"{'cached build' if result.cached else f'built in {result.seconds:.0f} s'}")
    print(f"bitstream: {Path(result.build_dir) / flow.get(args.board).bitstream}")
    if args.json:
        Path(args.json).write_text(json.dumps(result.to_json(), indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def result_capacity(board):
    from ..fpga.boards import get_board
    return get_board(board).capacity


def _cmd_flash(args):
    from . import flow
    try:
        out = flow.flash(args.board, build_dir=args.build_dir, bitstream=args.bitstream)
    except flow.FlashError as exc:
        print(f"ganpu flash: {exc}", file=sys.stderr)
        return 1
    print(out.strip())
    print(f"ganpu flash: {args.board} programmed")
    return 0


def register(sub):
    """Add the ``build`` and ``flash`` subcommands to ``sub`` (the CLI's subparsers)."""
    b = sub.add_parser("build", help="bitstream of a board top (open flow: Yosys, nextpnr)")
    b.add_argument("--board", type=_board, required=True, help=" or ".join(BOARD_NAMES))
    b.add_argument("--build-dir", default=None, metavar="DIR",
                   help="build root (default build/boards; builds are cached there)")
    b.add_argument("--seed", type=nonneg_int, default=1, help="nextpnr seed (default 1)")
    b.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    b.set_defaults(func=_cmd_build)

    f = sub.add_parser("flash", help="program a board with its bitstream (openFPGALoader)")
    f.add_argument("--board", type=_board, required=True, help=" or ".join(BOARD_NAMES))
    f.add_argument("--build-dir", default=None, metavar="DIR",
                   help="where 'ganpu build' put it (default build/boards)")
    f.add_argument("--bitstream", default=None, metavar="FILE",
                   help="this bitstream instead of the last build's")
    f.set_defaults(func=_cmd_flash)
