"""cocotb bench of the Indexer (with its A and compressed-A block RAMs): per task,
the row records and the compressed entries must equal :meth:`Indexer.model`; with a
consumer that always takes rows, the last record must come when the timing contract
says.

Environment: GANPU_CASE (pickle: ``{"config", "tasks": [(name, desc, a_image, p)]}``).
"""

import cocotb
import numpy as np

from blockwrap import (block_dut, fields, load, load_case, peek, run_cycles, start_clock, unpack,
                       Pulse, Sink)
from ganpu.core.indexer import Indexer, entry_layout, row_layout
from ganpu.host.lower import pack_desc


@cocotb.test()
async def tasks(dut):
    dut = block_dut(dut)
    case = load_case()
    g = case["config"].geom
    ef, rf = fields(entry_layout(g)), fields(row_layout(g))
    rng = np.random.default_rng(1)
    await start_clock(dut, ["start", "desc", "rows__ready", "a_load__en", "acomp_load__en",
                            "acomp_peek__en"])
    for name, desc, a_image, p in case["tasks"]:
        await load(dut, "a", a_image)
        entries, rows = Indexer.model(a_image, desc)
        start = Pulse(dut, "start", at=0, extra={"desc": pack_desc(desc, g)})
        sink = Sink(dut, "rows", rng, p)
        limit = 20 * (desc["m"] * desc["k"] + 50)
        await run_cycles(dut, [start, sink],
                         lambda: len(sink.got) >= len(rows) and not dut.busy.value, limit,
                         f"indexer {name}")
        got_rows = [(r["start"], r["end"]) for r in (unpack(rf, w) for w in sink.got)]
        assert got_rows == rows, f"indexer {name}: row records {got_rows}, model {rows}"
        got = [unpack(ef, w) for w in await peek(dut, "acomp", len(entries))]
        got = [(e["a"], e["boff"]) for e in got]
        bad = [i for i, (x, y) in enumerate(zip(got, entries)) if x != y]
        assert not bad, (f"indexer {name}: {len(bad)} wrong entries, first {bad[0]}: "
                         f"{got[bad[0]]} expected {entries[bad[0]]}")
        if p >= 1:
            want = Indexer.issue_cycles(desc) + Indexer.latency
            assert sink.cycles[-1] == want, (f"indexer {name}: last row record at cycle "
                                             f"{sink.cycles[-1]}, contract says {want}")
    dut._log.info("%d tasks: entries and rows equal the model", len(case["tasks"]))
