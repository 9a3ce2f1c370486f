#!/usr/bin/env python3
"""Step time of the MLP GAN against cores and GAN size, from the processor's cycle model
(``docs/astm.md``).

For each hidden-layer width multiplier (1 = the reference MLP GAN: G 16-64-128-64,
D 64-128-64-1) the step is compiled, run once on the bit-exact program model (its real
zeros and masks set the surviving work), then scheduled on 1, 2, 4, 8 and 16 cores
under each policy. Wider GANs use a large-buffer core (buffers of 2^16 elements, GBUF 2^22 words) when
the step does not fit the ``sim`` config (``--big-core`` uses it for all).

``--prefetch`` schedules every policy on cores with a second buffer set (the cycle
model's prefetch, ``docs/astm.md``); without it one set, whatever the
config's ``buffer_sets``.

Usage: python scripts/scaling.py [--widths 1 2] [--cores 1 2 4 8 16] [--batches 32 128]
       [--dma-width 1] [--prefetch] [--json F]
"""

import argparse
import json
import sys
from dataclasses import replace

import numpy as np

from ganpu.core.config import CoreConfig, Geometry
from ganpu.gan import GAN, TrainConfig
from ganpu.host.compiler import compile_gan, run_step
from ganpu.model import FC, Net
from ganpu.processor import ProcessorConfig, config
from ganpu.processor.cycle_model import simulate, task_row_macs, task_row_terms
from ganpu.processor.program import Policy, TaskKind

BIG = ProcessorConfig(core=CoreConfig(geom=Geometry(a_bits=16, b_bits=16, out_bits=16,
                                                    bias_bits=12, mask_bits=16)),
                      gbuf_bits=22, program_bits=10, deps=8)


def wide_gan(width, batch, seed=0):
    """The reference MLP GAN with its hidden layers ``width`` times wider."""
    gan = GAN(TrainConfig(batch=batch, seed=seed))
    if width != 1:
        rng = np.random.default_rng(seed)
        h1, h2 = 64 * width, 128 * width
        gan.G = Net("G", [FC("fc1", 16, h1, rng=rng), FC("fc2", h1, h2, rng=rng),
                          FC("fc3", h2, 64, act="identity", rng=rng)])
        gan.D = Net("D", [FC("fc1", 64, h2, rng=rng), FC("fc2", h2, h1, rng=rng),
                          FC("fc3", h1, 1, act="identity", rng=rng)])
    return gan


def measure(widths, cores, batches, dma_width, big_core, prefetch=False):
    rows = []
    for w, batch in ((w, b) for b in batches for w in widths):
        gan = wide_gan(w, batch)
        base, core = BIG, "big"
        if not big_core:
            try:  # the sim config when the step fits it
                compile_gan(config("sim"), gan)
                base, core = config("sim"), "sim"
            except ValueError:
                pass
        prog = compile_gan(base, gan)
        _, gbuf = run_step(prog, gan)
        macs = [task_row_macs(base, r, gbuf) if t.kind == TaskKind.GEMM else None
                for t, r in zip(prog.tasks, prog.records)]
        terms = [task_row_terms(base, r, gbuf) if t.kind == TaskKind.GEMM else None
                 for t, r in zip(prog.tasks, prog.records)]
        for c in cores:
            cfg = replace(base, cores=c)
            recs = compile_gan(cfg, gan).records   # work estimates do not depend on cores
            for p in Policy:
                s = simulate(cfg, recs, p, row_macs=macs, row_terms=terms, dma_width=dma_width,
                             prefetch=prefetch)
                rows.append({"width": w, "batch": batch, "cores": c, "config": core,
                             "policy": p.name.lower(),
                             "step_cycles": s.cycles, "dma_cycles": s.dma_cycles,
                             "oracle_cycles": s.oracle_cycles, "step_efficiency": s.efficiency,
                             "mean_busy": float(np.mean(s.busy_fraction)),
                             "surviving_macs": s.surviving_macs, "tasks": len(recs)})
    return rows


def print_table(rows, file=None):
    file = sys.stdout if file is None else file   # the stream of now, not of import time
    print("| width | batch | cores | temporal | spatial | adaptive | adaptive speed-up vs 1 core | "
          "adaptive efficiency | DMA cycles |", file=file)
    print("|---|---|---|---|---|---|---|---|---|", file=file)
    by = {(r["width"], r["batch"], r["cores"], r["policy"]): r for r in rows}
    for w, b in sorted({(r["width"], r["batch"]) for r in rows}):
        one = by.get((w, b, 1, "adaptive"))
        for c in sorted({r["cores"] for r in rows if (r["width"], r["batch"]) == (w, b)}):
            t, s, a = (by[(w, b, c, p)] for p in ("temporal", "spatial", "adaptive"))
            sp = f"{one['step_cycles'] / a['step_cycles']:.2f}x" if one else "-"
            print(f"| {w} | {b} | {c} | {t['step_cycles']:,} | {s['step_cycles']:,} | "
                  f"{a['step_cycles']:,} | {sp} | {a['step_efficiency']:.3f} | "
                  f"{a['dma_cycles']:,} |", file=file)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", type=int, nargs="+", default=[1, 2],
                    help="hidden-layer width multipliers (weights of one layer must fit a core)")
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    ap.add_argument("--batches", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--dma-width", type=int, default=1, help="GBUF words per DMA cycle")
    ap.add_argument("--big-core", action="store_true",
                    help="use the large-buffer core for width 1 too")
    ap.add_argument("--prefetch", action="store_true",
                    help="two buffer sets per core (the cycle model's prefetch sketch)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    rows = measure(args.widths, args.cores, args.batches, args.dma_width, args.big_core, args.prefetch)
    print(f"Cycle model, DMA {args.dma_width} word(s)/cycle"
          f"{', two buffer sets per core' if args.prefetch else ''}; step cycles:")
    print_table(rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"dma_width": args.dma_width, "prefetch": args.prefetch, "rows": rows}, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
