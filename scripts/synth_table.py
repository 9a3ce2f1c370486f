#!/usr/bin/env python3
"""Synthesize blocks with the open flow and print the README's resource table.

    python scripts/synth_table.py [BLOCK ...] [--board ulx3s-85f] [--seeds 1,2,3]
                                  [--json FILE] [--build-dir DIR]

Default: every registered block (``ganpu.blocks.BLOCKS``) on the ULX3S 85F, seed 1.
With several seeds the Fmax is the median over the seeds (resources come from the
first seed; they barely move with placement). Builds are cached, so re-running after
a change only rebuilds what changed.
"""

import argparse
import gc
import json
import statistics
import sys
import warnings
from pathlib import Path

from amaranth.hdl import UnusedElaboratable

from ganpu import blocks, fpga


def _seeds(text):
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated non-negative integers, not {text!r}")
    return seeds


def run(names, board, seeds, build_dir=None, target_mhz=None, log=sys.stderr):
    """(rows, failures): one result dict per block that built (the first seed's
    figures, ``fmax_mhz`` the median over ``seeds``, ``fmax_by_seed`` each seed's) and
    ``{name: error message}`` for the blocks that did not."""
    rows, failures = [], {}
    for name in names:
        runs = []
        with warnings.catch_warnings():
            try:
                for seed in seeds:
                    print(f"synthesizing {name} on {board}, seed {seed} ...", file=log, flush=True)
                    runs.append(fpga.synthesize(name, board, seed=seed, build_dir=build_dir,
                                                target_mhz=target_mhz))
            except fpga.ToolMissing:
                raise
            except Exception as exc:
                # One broken block must not cost the table of the others; the parts
                # it left unelaborated are expected to be unused, so do not warn.
                warnings.simplefilter("ignore", UnusedElaboratable)
                failures[name] = f"{type(exc).__name__}: {exc}"
                print(f"  {name} FAILED: {failures[name]}", file=log, flush=True)
            gc.collect()
        if name in failures:
            continue
        row = runs[0].to_json()
        row["fmax_by_seed"] = {r.seed: round(r.fmax_mhz, 2) for r in runs}
        row["fmax_mhz"] = statistics.median(r.fmax_mhz for r in runs)
        row["seeds"] = list(seeds)
        rows.append(row)
    return rows, failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("blocks", nargs="*", metavar="BLOCK",
                        help=f"blocks (default: all registered: {', '.join(blocks.BLOCKS)})")
    parser.add_argument("--board", default="ulx3s-85f", choices=list(fpga.BOARDS))
    parser.add_argument("--seeds", type=_seeds, default=[1], metavar="1,2,3",
                        help="nextpnr seeds; Fmax is their median (default: 1)")
    parser.add_argument("--target-mhz", type=float, default=None,
                        help="clock constraint (default: the board's)")
    parser.add_argument("--json", metavar="FILE", help="also write all figures as JSON")
    parser.add_argument("--build-dir", default=None, metavar="DIR")
    args = parser.parse_args(argv)

    try:
        names = blocks.check_names(args.blocks or blocks.names())
    except KeyError as exc:
        parser.error(exc.args[0])

    try:
        rows, failures = run(names, args.board, args.seeds, args.build_dir, args.target_mhz)
    except fpga.ToolMissing as exc:
        print(f"synth_table: {exc}", file=sys.stderr)
        return 1
    seeds = ",".join(map(str, args.seeds))
    print(f"Open flow (Yosys + nextpnr via YoWASP), board {args.board}, "
          f"Fmax = median over seeds {seeds}. Figures include the synthesis harness "
          f"(shift-chain inputs, registered XOR-folded outputs) and the reset logic; "
          f"the last column says how much of them that is.\n")
    print(fpga.format_table(rows))
    for name, why in failures.items():
        print(f"\n{name}: not synthesized ({why})")
    if args.json:
        doc = {"board": args.board, "seeds": args.seeds, "results": rows, "failed": failures}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
        print(f"\nwrote {args.json}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
