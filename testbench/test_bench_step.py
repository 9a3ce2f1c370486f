"""``ganpu.bench_step``'s core calibration parts (no simulator): the per-core parts of
the narrow step's GEMM records that ``core_overhead`` runs on the core alone."""

import numpy as np

from ganpu.bench_step import step_config, mlp_gan, core_parts
from ganpu.gan import TrainConfig
from ganpu.host.compiler import compile_gan, run_step
from ganpu.processor.cycle_model import (task_row_macs, task_row_terms, simulate, core_overhead,
                                         OVERHEAD_BY_LANES)
from ganpu.processor.model import normalize, split_rows, gather, core_descriptor
from ganpu.processor.program import TaskKind, Policy


def test_core_parts():
    """Every part a split over 1..cores gives one core, once, with the operands the DMA
    loads and its rows' surviving MACs (terms x live outputs)."""
    cfg = step_config("small", 2, 13, 6, 6)
    gan = mlp_gan(TrainConfig(batch=4, seed=0), (8, 8))
    prog = compile_gan(cfg, gan)
    _, gbuf = run_step(prog, gan)
    macs = [task_row_macs(cfg, r, gbuf) if t.kind == TaskKind.GEMM else None
            for t, r in zip(prog.tasks, prog.records)]
    parts = core_parts(cfg, prog, gbuf, macs)
    want = set()
    for t, (task, rec) in enumerate(zip(prog.tasks, prog.records)):
        if task.kind == TaskKind.GEMM:
            for k in (1, 2):
                want |= {f"{task.name}[{m0}:{m1}]" for m0, m1 in split_rows(rec["m"], k)}
    assert sorted(n for n, *_ in parts) == sorted(want)
    names = {t.name: (t, r) for t, r in zip(prog.tasks, prog.records)}
    for name, desc, loads, row in parts:
        base, rows = name.rsplit("[", 1)
        m0, m1 = map(int, rows[:-1].split(":"))
        rec = normalize(cfg, names[base][1])
        assert desc == core_descriptor(rec, m1 - m0)
        bufs = gather(cfg, rec, gbuf, m0, m1)
        for buf, (at, words) in loads.items():
            assert at == 0 and np.array_equal(words, bufs[buf][:len(words)])
        assert len(loads["a"][1]) == (m1 - m0) * rec["k"]
        assert (row["M"], row["N"], row["K"]) == (m1 - m0, rec["n"], rec["k"])
        nnz, live = task_row_terms(cfg, rec, gbuf)
        assert row["row_nnz"] == nnz[m0:m1].tolist() and row["row_live"] == live[m0:m1].tolist()
        assert row["surviving_macs"] == int((nnz[m0:m1] * live[m0:m1]).sum())


def test_overhead_by_core():
    """The cycle model takes each core's own calibrated overhead."""
    cfg = step_config("small", 2, 13, 6, 6)
    assert core_overhead(cfg.core) == OVERHEAD_BY_LANES[2] != core_overhead(step_config("sim").core)
    gan = mlp_gan(TrainConfig(batch=4, seed=0), (8, 8))
    prog = compile_gan(cfg, gan)
    _, gbuf = run_step(prog, gan)
    own = simulate(cfg, prog.records, Policy.TEMPORAL, gbuf)
    assert own.cycles == simulate(cfg, prog.records, Policy.TEMPORAL, gbuf,
                                  overhead=OVERHEAD_BY_LANES[2]).cycles
    assert own.cycles < simulate(cfg, prog.records, Policy.TEMPORAL, gbuf, overhead=106).cycles
