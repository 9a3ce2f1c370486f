"""cocotb bench of one Lane (with its compressed-A and B block RAMs): every job's
result must equal :meth:`Lane.model` (matched by ``mask_idx``: results leave in
completion order), and a job alone must take exactly :meth:`Lane.job_latency`.

Environment: GANPU_CASE (pickle: ``{"config", "batches": [batch dicts]}``).
"""

import cocotb
import numpy as np

from blockwrap import block_dut, fields, load, load_case, pack, run_cycles, start_clock, unpack, Sink, Source
from ganpu.core.indexer import entry_layout
from ganpu.core.lane import Lane
from ganpu.core.scanner import job_layout, result_layout


@cocotb.test()
async def batches(dut):
    dut = block_dut(dut)
    case = load_case()
    g = case["config"].geom
    jf, rf, ef = fields(job_layout(g)), fields(result_layout(g)), fields(entry_layout(g))
    rng = np.random.default_rng(3)
    await start_clock(dut, ["jobs__valid", "results__ready", "acomp_load__en", "b_load__en"])
    total = 0
    for bt in case["batches"]:
        name, jobs = bt["name"], bt["jobs"]
        await load(dut, "acomp", [pack(ef, dict(a=a, boff=o)) for a, o in bt["acomp"]])
        await load(dut, "b", bt["b"])
        exp = {r["mask_idx"]: r for r in Lane.model(jobs, bt["acomp"], bt["b"])}
        src = Source(dut, "jobs", [pack(jf, j) for j in jobs], rng, bt["p_in"])
        sink = Sink(dut, "results", rng, bt["p_out"])
        await run_cycles(dut, [src, sink],
                         lambda: len(sink.got) >= len(jobs) and not dut.busy.value,
                         100 * (sum(max(j["end"] - j["start"], 1) for j in jobs) + 20),
                         f"lane {name}")
        got = [unpack(rf, w) for w in sink.got]
        assert sorted(r["mask_idx"] for r in got) == sorted(exp), \
            f"lane {name}: results for jobs {sorted(r['mask_idx'] for r in got)}, expected {sorted(exp)}"
        for r in got:
            e = exp[r["mask_idx"]]
            assert r == e, f"lane {name}: job {r['mask_idx']} gave {r}, model {e}"
        if len(jobs) == 1 and bt["p_out"] >= 1:
            terms = jobs[0]["end"] - jobs[0]["start"]
            took = sink.cycles[0] - src.taken[0]
            assert took == Lane.job_latency(terms), \
                f"lane {name}: {terms}-term job took {took} cycles, contract {Lane.job_latency(terms)}"
        total += len(jobs)
    dut._log.info("%d jobs in %d batches equal the model", total, len(case["batches"]))
