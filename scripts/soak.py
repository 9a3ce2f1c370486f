#!/usr/bin/env python3
"""Soak the compute core: random and real tasks on the generated Verilog (Verilator,
through cocotb) until N surviving MACs have been checked bit-exact against the model.

    python scripts/soak.py --macs 1e8 --json soak.json [--seed 1] [--lanes 4]

Random descriptors (``testbench/tb_fuzz_core.py``, soak mode: dimensions up to 48,
every kind of fault mixed in) alternate with every gemm of a training step of the
reference MLP GAN, exact and with EORS, on the default core (``CoreConfig()``, 4 lanes
unless ``--lanes``). After each task the region it can write is read back (OUT over
its address range, MASK_OUT and MASK_IN over ``M*N``). Prints MACs checked, tasks,
mismatches, writes after an error verdict, wrong verdicts, hangs and the rate; the JSON
(rewritten every 50 tasks, so a long run shows progress) holds the same counts.
Exit code 1 if anything differed or hung.
"""

import argparse
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "testbench"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--macs", type=float, default=1e8, help="surviving MACs to check (default 1e8)")
    ap.add_argument("--json", default=None, help="write the counts here")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--lanes", type=int, default=4)
    args = ap.parse_args(argv)
    if not args.macs > 0:
        ap.error(f"--macs must be positive, not {args.macs!r}")

    from ganpu.core import Core, CoreConfig
    from ganpu.sim import runner

    config = CoreConfig(lanes=args.lanes)
    runner.setup("verilator")
    with tempfile.TemporaryDirectory() as tmp:
        cfgfile = Path(tmp) / "config.pkl"
        cfgfile.write_bytes(pickle.dumps(config))
        results = Path(args.json).resolve() if args.json else Path(tmp) / "soak.json"
        t0 = time.monotonic()
        failed = None
        try:
            runner.run("verilator", Core(config), "ganpu_core_soak", "tb_fuzz_core",
                       env={"GANPU_FUZZ_CONFIG": cfgfile, "GANPU_FUZZ_MODE": "soak",
                            "GANPU_FUZZ_SEED": args.seed, "GANPU_FUZZ_MACS": int(args.macs),
                            "GANPU_FUZZ_RESULTS": results},
                       testcase="fuzz", pythonpath=[ROOT / "testbench"],
                       build_dir=Path(os.environ.get("GANPU_BUILD") or ROOT / "build" / "sim"))
        except runner.BenchFailed as exc:
            failed = exc
        wall = time.monotonic() - t0
        got = json.loads(results.read_text())
    got["wall_seconds"] = round(wall, 1)
    got["macs_per_second"] = round(got["macs"] / max(got["seconds"], 1e-9))
    got["command"] = "python scripts/soak.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if args.json:
        Path(args.json).write_text(json.dumps(got, indent=1) + "\n")
    print(f"MACs checked {got['macs']:,} in {got['tasks']} tasks ({got['real_tasks']} real, "
          f"{got['refused']} refused; {got['conv_tasks']} convolution tiles, {got['conv_accepted']} "
          f"accepted, {got['conv_macs']:,} MACs) at {got['macs_per_second']:,} MAC/s; mismatches "
          f"{got['mismatches']}, writes after error {got['writes_after_error']}, wrong verdicts "
          f"{got['wrong_verdicts']}, hangs {got['hangs']}")
    bad = got["mismatches"] + got["writes_after_error"] + got["wrong_verdicts"] + got["hangs"]
    if failed is not None and not bad:
        print(f"soak: {failed}", file=sys.stderr)
    return 1 if bad or failed is not None else 0


if __name__ == "__main__":
    sys.exit(main())
