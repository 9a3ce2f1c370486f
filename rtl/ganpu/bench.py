"""``ganpu bench``: cycle counts measured by simulating the generated Verilog.

``ganpu bench core`` runs every fully connected gemm of one training step of the
reference MLP GAN on the core (Verilator, through the cocotb bench that also checks
every result bit for bit), once with the real sparse tensors and once with the same
shapes made dense, and compares the measured cycles with

* dense cycles: ``M*N*K / lanes`` (every MAC, perfect packing);
* oracle cycles: surviving MACs / lanes, where surviving MACs skip zero inputs of A
  and outputs masked off (BRIEF section 5).

It needs a source checkout (it uses ``testbench/``) and the test extra.
"""

import json
import pickle
import sys
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["register", "bench_core"]

ROOT = Path(__file__).resolve().parent.parent.parent


def _harness():
    tb = ROOT / "testbench"
    if not (tb / "harness.py").exists():
        raise RuntimeError(f"ganpu bench needs the source checkout's testbench/ folder; "
                           f"not found at {tb}")
    sys.path.insert(0, str(tb))
    import harness
    return harness


def _densify(rec):
    """The same gemm with no zero in A and every output live."""
    rec = dict(rec)
    A = np.array(rec["A"], dtype=np.uint16)
    zero = (A & 0x7FFF) == 0
    A[zero] = 0x3C00  # 1.0
    rec["A"] = A
    if rec.get("mask_in") is not None:
        rec["mask_in"] = np.ones_like(rec["mask_in"], dtype=bool)
    return rec


def _run(harness, core, tasks, workdir, tag):
    taskfile = Path(workdir) / f"{tag}.pkl"
    results = Path(workdir) / f"{tag}.json"
    taskfile.write_bytes(pickle.dumps(tasks))
    harness.run("verilator", core, "ganpu_core", "tb_core_tasks",
                env={"GANPU_TASKFILE": taskfile, "GANPU_RESULTS": results})
    return {r["name"]: r["cycles"] for r in json.loads(results.read_text())}


def bench_core(*, net="mlp", step=0, batch=32, lanes=4, seed=0):
    """Measure the core on one training step; returns a list of per-gemm rows."""
    from .arith.mac import Fp16Mac
    from .core import Core, Geometry
    from .core.tasks import record_tasks, record_work
    from .gan.export import export_layers

    harness = _harness()
    geom = Geometry()
    records = export_layers(net=net, steps=(step,), batch=batch, seed=seed)
    records = {k: r for k, r in records.items() if r["kind"] == "fc"}
    sparse, dense = [], []
    for key, rec in records.items():
        for desc, loads, (m0, m1) in record_tasks(rec, geom):
            sparse.append((f"{key}[{m0}:{m1}]", desc, loads))
        for desc, loads, (m0, m1) in record_tasks(_densify(rec), geom):
            dense.append((f"{key}[{m0}:{m1}]", desc, loads))
    core = Core(lanes=lanes, geom=geom)
    with tempfile.TemporaryDirectory() as tmp:
        got_sparse = _run(harness, core, sparse, tmp, "sparse")
        got_dense = _run(harness, Core(lanes=lanes, geom=geom), dense, tmp, "dense")
    rows = []
    for key, rec in records.items():
        chunks = [name for name, *_ in sparse if name.startswith(key + "[")]
        work = record_work(rec)
        M, K = rec["A"].shape
        N = rec["B"].shape[0]
        rows.append({
            "gemm": key.split("/", 2)[2], "pass": key.split("/")[1], "M": M, "N": N, "K": K,
            "dense_macs": work["dense"], "surviving_macs": work["dual_skip"],
            "dense_cycles": work["dense"] / lanes, "oracle_cycles": work["dual_skip"] / lanes,
            "measured_dense": sum(got_dense[c] for c in chunks),
            "measured": sum(got_sparse[c] for c in chunks),
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


def print_table(rows, summary, file=sys.stdout):
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


def _core_cmd(args):
    rows = bench_core(net="mlp", step=args.step, batch=args.batch, lanes=args.lanes, seed=args.seed)
    summary = summarize(rows, args.lanes)
    print_table(rows, summary)
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=1))
        print(f"wrote {args.json}")
    return 0


def register(sub):
    p = sub.add_parser("bench", help="cycle counts measured on the generated Verilog")
    bsub = p.add_subparsers(dest="bench", required=True)
    c = bsub.add_parser("core", help="the compute core on one training step of the MLP GAN")
    c.add_argument("--step", type=int, default=0, help="training step to record (default 0)")
    c.add_argument("--batch", type=int, default=32)
    c.add_argument("--lanes", type=int, default=4)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--json", help="write the rows and summary here")
    c.set_defaults(func=_core_cmd)
