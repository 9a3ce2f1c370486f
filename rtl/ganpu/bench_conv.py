"""``ganpu bench conv``: every conv and transposed-conv gemm of a conv-GAN training step
on the core (``docs/conv.md``), cycles measured on the generated Verilog.

Each FP, BP and WG of a conv or tconv layer of the reference conv GAN is lowered by
:func:`ganpu.host.lower.conv_tasks` (implicit im2col: padding and inserted zeros are
never enumerated) and run on the core under Verilator through the package's cocotb
bench :mod:`ganpu.sim.bench_tasks`, which checks every result bit for bit against the
task model. Per gemm the table gives

* dense cycles: ``M*N*K / lanes`` of the golden im2col gemm (structural zeros included);
* oracle cycles: surviving MACs / lanes: terms whose streamed element is neither a
  structural zero nor a zero input, of outputs that must be computed
  (:mod:`ganpu.model.work`; in WG the streamed operand is the im2col side);
* measured: the conv tasks on the RTL (structural zeros never enumerated);
* dense layout: the same surviving work laid out densely: an FC gemm of the same M and
  N with ``K`` = the surviving MACs per output (rounded), every element non-zero.

Needs the test extra (cocotb, Verilator); builds are cached under ``GANPU_BUILD``.
"""

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from . import numerics

__all__ = ["register", "bench_conv", "summarize_conv", "print_conv_table"]


def _conv_runs(records, config):
    """``{tag: [(name, desc, loads), ...]}`` of the three layouts of every conv gemm,
    and per gemm ``(key, rec, M, N, K)``."""
    from .host.lower import conv_tasks, fc_desc
    from .host.tasks import conv_record_phases
    runs = {"conv": [], "dense": []}
    gemms = []
    rng = np.random.default_rng(0)
    for key, shape, phase, kw, rec in conv_record_phases(records):
        M, K = rec["A"].shape
        N = rec["B"].shape[0]
        gemms.append((key, rec, M, N, K))
        tasks, _ = conv_tasks(shape, phase, config.geom, **kw)
        runs["conv"] += [(f"{key}[{m0}:{m1},{n0}:{n1}]", d, loads)
                         for d, loads, (m0, m1), (n0, n1) in tasks]
        # the surviving work as a dense FC gemm: K' terms per output, no zero anywhere
        kd = max(1, round(_work(rec)["dual_skip"] / (M * N)))
        g = config.geom
        nstep = min(N, g.depth("b") // kd)
        rows = max(1, min(M, g.depth("a") // kd, g.depth("out") // nstep, g.depth("mask") // nstep))
        for n0 in range(0, N, nstep):
            nt = min(N, n0 + nstep) - n0
            b = numerics.f16_bits(rng.uniform(0.5, 1.0, (nt, kd)).astype(np.float32))
            for m0 in range(0, M, rows):
                m1 = min(M, m0 + rows)
                a = numerics.f16_bits(rng.uniform(0.5, 1.0, ((m1 - m0), kd)).astype(np.float32))
                d = fc_desc(op=0, act=0, m=m1 - m0, n=nt, k=kd, a_sm=kd, a_sk=1, b_sn=kd, b_sk=1,
                            o_sm=nt, o_sn=1)
                runs["dense"].append((f"{key}[{m0}:{m1},{n0}:{n0 + nt}]", d,
                                      {"a": (0, a.ravel()), "b": (0, b.ravel())}))
    return runs, gemms


def _work(rec):
    """MAC counts of a conv gemm record; in WG the oracle's surviving MACs are those of
    the operand the core streams (the im2col side, B of the golden record: its padding
    is structural, its zeros skipped), times the outputs."""
    from .host.tasks import record_work
    from .model import work as model_work
    w = dict(record_work(rec))
    if rec["epi_phase"] == "wg":
        w["dual_skip"] = model_work.count(np.asarray(rec["B"], np.uint16),
                                          np.asarray(rec["A"], np.uint16))["dual_skip"]
    return w


def bench_conv(*, step=0, batch=32, lanes=4, seed=0):
    """Measure every conv/tconv gemm of one conv-GAN training step; a list of rows."""
    from .arith.mac import Fp16Mac
    from .bench import _config, _run, _sum
    from .gan.export import export_layers
    config = _config(lanes)
    records = export_layers(net="conv", steps=(step,), batch=batch, seed=seed)
    runs, gemms = _conv_runs(records, config)
    with tempfile.TemporaryDirectory() as tmp:
        got = {tag: _run(lanes, None, tasks, tmp, tag) for tag, tasks in runs.items()}
    rows = []
    for key, rec, M, N, K in gemms:
        work = _work(rec)
        rows.append({
            "gemm": key.split("/", 2)[2], "pass": key.split("/")[1], "kind": rec["kind"],
            "M": M, "N": N, "K": K,
            "structural_macs": rec["structural"] * N, "dense_macs": work["dense"],
            "surviving_macs": work["dual_skip"],
            "dense_cycles": work["dense"] / lanes, "oracle_cycles": work["dual_skip"] / lanes,
            "measured": _sum(got["conv"], key),
            "measured_dense_layout": _sum(got["dense"], key),
            # as in ``ganpu bench core``: every lane slot gets 4 outputs or more and
            # neither the indexer (N < lanes) nor the epilogue (short rows) binds
            "big": M * N >= 4 * lanes * Fp16Mac.slots and N >= 4 * lanes and
            work["dual_skip"] >= 4 * lanes * M * N,
        })
    return rows


def summarize_conv(rows, lanes):
    tot = lambda f, rs=rows: sum(r[f] for r in rs)
    big = [r for r in rows if r["big"]]
    # the structural-zero goal on the transposed convs the ">= 4x the array" rule keeps
    # (one output channel binds the indexer, not the zeros)
    tconv2 = [r for r in big if r["kind"] == "tconv" and r["gemm"].endswith("/fp")]
    return {
        "lanes": lanes, "gemms": len(rows),
        "step_measured_cycles": tot("measured"), "step_oracle_cycles": tot("oracle_cycles"),
        "step_dense_cycles": tot("dense_cycles"),
        "step_dense_layout_cycles": tot("measured_dense_layout"),
        "step_oracle_over_measured": tot("oracle_cycles") / tot("measured"),
        "big_gemms": len(big),
        "big_oracle_over_measured": tot("oracle_cycles", big) / tot("measured", big) if big else None,
        "big_min_oracle_over_measured": min(r["oracle_cycles"] / r["measured"] for r in big) if big else None,
        "tconv_fp_measured_over_dense_layout": (tot("measured", tconv2) / tot("measured_dense_layout", tconv2)
                                                if tconv2 else None),
    }


def print_conv_table(rows, summary, file=None):
    file = sys.stdout if file is None else file   # the stream of now, not of import time
    print("| gemm | pass | M x N x K | structural | dense cyc | oracle cyc | measured | oracle/measured "
          "| dense layout |", file=file)
    print("|---|---|---|---|---|---|---|---|---|", file=file)
    for r in rows:
        print(f"| {r['gemm']}{'' if r['big'] else ' (small)'} | {r['pass']} | {r['M']}x{r['N']}x{r['K']} "
              f"| {r['structural_macs'] / r['dense_macs']:.0%} | {r['dense_cycles']:,.0f} "
              f"| {r['oracle_cycles']:,.0f} | {r['measured']:,} | {r['oracle_cycles'] / r['measured']:.3f} "
              f"| {r['measured_dense_layout']:,} |", file=file)
    s = summary
    big = ("" if s["big_gemms"] == 0 else
           f" Gemms at least 4x the array ({s['big_gemms']}): oracle/measured {s['big_oracle_over_measured']:.3f} "
           f"(lowest {s['big_min_oracle_over_measured']:.3f}).")
    tconv = ("" if s["tconv_fp_measured_over_dense_layout"] is None else
             f" Transposed-conv FP at least 4x the array: measured / dense layout "
             f"{s['tconv_fp_measured_over_dense_layout']:.3f}.")
    print(f"\nWhole step ({s['gemms']} conv gemms, {s['lanes']} lanes): {s['step_measured_cycles']:,} cycles "
          f"measured, oracle {s['step_oracle_cycles']:,.0f} (oracle/measured {s['step_oracle_over_measured']:.3f}), "
          f"dense {s['step_dense_cycles']:,.0f}, dense layout of the surviving work "
          f"{s['step_dense_layout_cycles']:,}.{big}{tconv}", file=file)


def _cmd(args):
    from .bench import _check_config, _report, require_test_extra
    if _check_config(args):
        return 2
    require_test_extra()
    rows = bench_conv(step=args.step, batch=args.batch, lanes=args.lanes, seed=args.seed)
    return _report(rows, summarize_conv(rows, args.lanes), print_conv_table, args.json)


def register(bench_sub):
    """Add ``conv`` to the ``ganpu bench`` subcommands ``bench_sub``."""
    from .cli import nonneg_int, positive_int
    c = bench_sub.add_parser("conv", help="every conv/tconv gemm of a conv-GAN step on the core")
    c.add_argument("--step", type=nonneg_int, default=0, help="training step to record (default 0)")
    c.add_argument("--batch", type=positive_int, default=32)
    c.add_argument("--lanes", type=positive_int, default=4)
    c.add_argument("--seed", type=nonneg_int, default=0)
    c.add_argument("--json", help="write the rows and summary here")
    c.set_defaults(func=_cmd)
