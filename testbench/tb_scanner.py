"""cocotb bench of the Scanner (with MASK_IN, the wide BIAS buffer and the mask store):
per task, the jobs and the skips, each stream in order, must equal
:meth:`Scanner.model`; an EORS task must leave its prediction in MASK_IN; with no
back-pressure the first output must come when the timing contract says.

Environment: GANPU_CASE (pickle: ``{"config", "tasks": [task dicts]}``, see
test_scanner.py).
"""

import cocotb
import numpy as np

from blockwrap import (block_dut, fields, load, load_case, peek, pack, run_cycles, start_clock,
                       unpack, Pulse, Sink, Source, Watch)
from ganpu.core.indexer import row_layout
from ganpu.core.scanner import Scanner, job_layout, result_layout
from ganpu.core.speculator import ROW_SLOTS
from ganpu.host.lower import pack_desc


def words(elements, per_word, width):
    """Pack consecutive elements into words of ``per_word`` elements."""
    e = np.asarray(elements, dtype=np.uint64).reshape(-1, per_word)
    return [sum(int(v) << (width * i) for i, v in enumerate(row)) for row in e]


@cocotb.test()
async def tasks(dut):
    dut = block_dut(dut)
    case = load_case()
    cfg = case["config"]
    g, P = cfg.geom, cfg.eors_lanes
    wpr = g.depth("mask") // P
    jf, sf, rf = fields(job_layout(g)), fields(result_layout(g)), fields(row_layout(g))
    rng = np.random.default_rng(2)
    await start_clock(dut, ["start", "desc", "rows__valid", "jobs__ready", "skips__ready",
                            "mask_in_load__en", "bias_load__en", "pm_load__en"])
    for t in case["tasks"]:
        name, desc, M, N = t["name"], t["desc"], t["desc"]["m"], t["desc"]["n"]
        await load(dut, "mask_in", t["mask_in"])
        await load(dut, "bias", words(t["bias"], P, 16))
        pm = np.zeros((ROW_SLOTS, wpr * P), np.uint8)
        if t["predicted"] is not None:
            pm[:M, :N] = t["predicted"]
        await load(dut, "pm", words(pm.ravel(), P, 1))
        jobs, skips = Scanner.model(desc, t["rows"], t["mask_in"], t["bias"], t["predicted"])
        start = Pulse(dut, "start", at=0, extra={"desc": pack_desc(desc, g)})
        rows = Source(dut, "rows", [pack(rf, dict(start=s, end=e)) for s, e in t["rows"]], rng, t["p"])
        js, ss = Sink(dut, "jobs", rng, t["p"]), Sink(dut, "skips", rng, t["p"])
        done = Watch(dut, "row_done")
        await run_cycles(dut, [start, rows, js, ss, done],
                         lambda: len(js.got) + len(ss.got) >= M * N and not dut.busy.value,
                         40 * (M * N + 20), f"scanner {name}")
        for what, sink, lay, exp in (("jobs", js, jf, jobs), ("skips", ss, sf, skips)):
            got = [unpack(lay, w) for w in sink.got]
            exp = [{k: v for k, v in e.items() if k in got[0]} for e in exp] if got else exp
            bad = [i for i, (x, y) in enumerate(zip(got, exp)) if x != y]
            assert len(got) == len(exp) and not bad, (
                f"scanner {name}: {what} differ from the model ({len(got)} vs {len(exp)}); "
                f"first at {bad[0] if bad else min(len(got), len(exp))}: "
                f"got {got[bad[0]] if bad else None} expected {exp[bad[0]] if bad else None}")
        assert len(done.hits) == M, f"scanner {name}: {len(done.hits)} row_done pulses for {M} rows"
        if t["predicted"] is not None:
            got = await peek(dut, "mask_in", M * N)
            assert got == [int(b) for b in t["predicted"].ravel()], \
                f"scanner {name}: MASK_IN does not hold the prediction"
        if t["p"] >= 1:
            first = min(x.cycles[0] for x in (js, ss) if x.cycles)
            # the row is taken the cycle after start (the start sets the row count)
            want = 2 + Scanner.latency
            assert first == want, f"scanner {name}: first output at cycle {first}, contract {want}"
    dut._log.info("%d tasks: jobs and skips equal the model", len(case["tasks"]))
