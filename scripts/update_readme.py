#!/usr/bin/env python3
"""Rewrite the README's generated blocks from the benchmark and report outputs.

    python scripts/update_readme.py [--synth S.json ...] [--core-bench C.json]
                                    [--eors-bench E16.json E32.json] [--model-report docs/model-report.md]
                                    [--step-bench STEP.json ...] [--sim-bench SIM.json]
                                    [--train-bench TRAIN.json ...]

Each block sits between ``<!-- begin NAME -->`` and ``<!-- end NAME -->`` in README.md:
``synth`` from ``scripts/synth_table.py --json``, ``core-bench`` from
``ganpu bench core --json``, ``eors-bench`` from ``ganpu bench eors --json``,
``model-report`` from ``scripts/model_report.py --md``, ``step-bench`` from
``ganpu bench step --json`` (cycle model with ``--model``, or RTL measurements),
``sim-bench`` from ``ganpu bench sim --json``, ``train-bench`` from
``ganpu bench train --json``.
A block whose input is not given is left as it is.
"""

import argparse
import io
import json
import re
import sys
from pathlib import Path

from ganpu import fpga
from ganpu.bench import print_table, print_eors_table

README = Path(__file__).resolve().parent.parent / "README.md"


def replace_block(text, name, body):
    pattern = re.compile(rf"(<!-- begin {name} -->\n).*?(<!-- end {name} -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"README.md has no block {name!r} (<!-- begin {name} --> ... <!-- end {name} -->)")
    return pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text)


def step_table(doc):
    """Markdown table of one ``ganpu bench step --json`` file (cycle model or RTL)."""
    rtl = doc["source"].startswith("rtl")
    pols = doc["policies"]
    rows = {p: (v["measured"] if rtl else v) for p, v in pols.items()}
    base = rows.get("temporal")
    out = [f"One MLP GAN training step (batch {doc['batch']}), {doc['cores']} cores, DMA "
           f"{doc['dma_width']} word(s)/cycle, {'RTL (Verilator)' if rtl else 'cycle model'}"
           + (", two buffer sets per core" if doc.get("buffer_sets", 1) == 2 or doc.get("prefetch") else
              ", one buffer set per core" if "buffer_sets" in doc else "")
           + ":", "",
           "| policy | step cycles | busy per core | DMA cycles | step efficiency | vs temporal |"
           + (" cycle model | model error |" if rtl else ""),
           "|---|---|---|---|---|---|" + ("---|---|" if rtl else "")]
    for p, r in rows.items():
        speed = f"{base['step_cycles'] / r['step_cycles']:.2f}x" if base else "-"
        tail = ""
        if rtl:
            mc = pols[p]["model"]["step_cycles"]
            tail = f" {mc:,} | {(mc - r['step_cycles']) / r['step_cycles']:+.1%} |"
        out.append(f"| {p} | {r['step_cycles']:,} | {' '.join(f'{b:.2f}' for b in r['busy'])} "
                   f"| {r['dma_cycles']:,} | {r['step_efficiency']:.3f} | {speed} |{tail}")
    first = next(iter(rows.values()))
    out.append(f"\nOracle cycles {first['oracle_cycles']:,.0f} ({first['surviving_macs']:,} surviving MACs "
               f"over all MAC lanes).")
    return "\n".join(out) + "\n"


def train_table(doc):
    """One ``ganpu bench train --json`` file: what ran, then its per-policy table."""
    from ganpu.bench_train import print_policy_table
    eors = doc["eors"] if isinstance(doc["eors"], str) else "on" if doc["eors"] else "off"
    warm = f" after {doc['warmup']:,} golden-model steps" if doc["warmup"] else ""
    same = " and ".join(doc["compared_with"])
    buf = io.StringIO()
    print(f"EORS {eors}: {doc['steps']} steps{warm} on device `{doc['device']}` (config "
          f"`{doc['config']}`, `gbuf_bits` {doc['gbuf_bits']}, batch {doc['batch']}), "
          + (f"bit-identical to {same}" if doc["bit_identical"] else "NOT bit-identical")
          + f"; at {doc['mhz']:g} MHz (dense peak {doc['dense_peak_gflops']:.2f} GFLOPS):\n",
          file=buf)
    print_policy_table(doc, buf)
    return buf.getvalue()


def sim_table(doc):
    """Markdown table of one ``ganpu bench sim --json`` file (the step row if it ran)."""
    nat, coc = doc["native"], doc["cocotb"]
    out = [f"Config `{nat['config']}`, the same synthetic program on both paths "
           f"({nat['tasks']} tasks):", "",
           "| path | cycles per wall second | cycles per CPU second |", "|---|---|---|",
           f"| `ganpu sim` (Verilator, native cycle loop) | {nat['cycles_per_s']:,.0f} "
           f"| {nat['cycles_per_cpu_s']:,.0f} |",
           f"| cocotb (Verilator through cocotb) | {coc['cycles_per_s']:,.0f} "
           f"| {coc['cycles_per_cpu_s']:,.0f} |",
           f"| ratio | {doc['speedup']:.1f}x | "
           + (f"{doc['speedup_cpu']:.1f}x |" if doc.get("speedup_cpu") else "- |")]
    step = doc.get("step")
    if step:
        out.append(f"\nOne MLP GAN training step (config `{step['config']}`, batch "
                   f"{step['batch']}) on `ganpu sim`: {step['wall_seconds']:.1f} s wall, "
                   f"{step['sim_cpu_seconds']:.1f} s simulator CPU, {step['sim_cycles']:,} "
                   f"simulated cycles of which the step {step['step_cycles']:,}; tensors "
                   f"differing from the program model: {len(step['tensors_differing'])}.")
    return "\n".join(out) + "\n"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--synth", nargs="+", metavar="JSON",
                   help="JSON written by scripts/synth_table.py --json (several are joined)")
    p.add_argument("--core-bench", help="JSON written by ganpu bench core --json")
    p.add_argument("--eors-bench", nargs="+", metavar="JSON",
                   help="JSON written by ganpu bench eors --json (one table each, e.g. for two lane counts)")
    p.add_argument("--model-report", help="markdown written by scripts/model_report.py --md")
    p.add_argument("--step-bench", nargs="+", metavar="JSON",
                   help="JSON written by ganpu bench step --json (one table each)")
    p.add_argument("--sim-bench", metavar="JSON", help="JSON written by ganpu bench sim --json")
    p.add_argument("--train-bench", nargs="+", metavar="JSON",
                   help="JSON written by ganpu bench train --json (one table each)")
    args = p.parse_args(argv)
    text = README.read_text()
    if args.synth:
        docs = [json.loads(Path(path).read_text()) for path in args.synth]
        rows = [row for doc in docs for row in doc["results"]]
        runs = "; ".join(f"{', '.join(r['block'] for r in doc['results'])}: seeds "
                         f"{','.join(map(str, doc['seeds']))}" for doc in docs)
        body = (f"Board {docs[0]['board']}, Fmax = median over the nextpnr seeds ({runs}); figures "
                f"include the synthesis harness (last column).\n\n" + fpga.format_table(rows))
        text = replace_block(text, "synth", body)
    if args.core_bench:
        doc = json.loads(Path(args.core_bench).read_text())
        buf = io.StringIO()
        print_table(doc["rows"], doc["summary"], file=buf)
        text = replace_block(text, "core-bench", buf.getvalue())
    if args.eors_bench:
        buf = io.StringIO()
        for path in args.eors_bench:
            doc = json.loads(Path(path).read_text())
            print(f"#### {doc['summary']['eors_lanes']} EORS lanes "
                  f"(`ganpu bench eors --eors-lanes {doc['summary']['eors_lanes']}`)\n", file=buf)
            print_eors_table(doc["rows"], doc["summary"], file=buf)
            print(file=buf)
        text = replace_block(text, "eors-bench", buf.getvalue())
    if args.model_report:
        body = Path(args.model_report).read_text()
        body = re.sub(r"^# .*\n", "", body)           # the README gives its own heading
        body = re.sub(r"^## ", "#### ", body, flags=re.M)
        text = replace_block(text, "model-report", body)
    if args.step_bench:
        body = "\n".join(step_table(json.loads(Path(path).read_text())) for path in args.step_bench)
        text = replace_block(text, "step-bench", body)
    if args.sim_bench:
        text = replace_block(text, "sim-bench", sim_table(json.loads(Path(args.sim_bench).read_text())))
    if args.train_bench:
        body = "\n".join(train_table(json.loads(Path(path).read_text())) for path in args.train_bench)
        text = replace_block(text, "train-bench", body)
    README.write_text(text)
    print(f"updated {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
