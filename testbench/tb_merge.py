"""cocotb bench of the Merge: with every input offering from the start, the output
order must be :meth:`Merge.model`'s, one result per cycle from cycle ``latency``; with
random gaps, every input's items must come out once each, in their order.

Environment: GANPU_CASE (pickle: ``{"config", "count", "rounds": [round dicts]}``).
"""

import cocotb
import numpy as np

from blockwrap import block_dut, fields, load_case, pack, run_cycles, start_clock, unpack, Sink, Source
from ganpu.core.merge import Merge
from ganpu.core.scanner import result_layout


@cocotb.test()
async def rounds(dut):
    dut = block_dut(dut)
    case = load_case()
    g, count = case["config"].geom, case["count"]
    rf = fields(result_layout(g))
    rng = np.random.default_rng(4)
    await start_clock(dut, [f"i__{n}__valid" for n in range(count)] + ["o__ready"])
    ptr = 0  # the hardware's round-robin pointer: one past the last granted input
    for rd in case["rounds"]:
        name, queues = rd["name"], rd["queues"]
        srcs = [Source(dut, f"i__{n}", [pack(rf, r) for r in q], rng, rd["p"])
                for n, q in enumerate(queues)]
        sink = Sink(dut, "o", rng, 1.0)
        total = sum(len(q) for q in queues)
        await run_cycles(dut, [*srcs, sink], lambda: len(sink.got) >= total, 20 * total + 20,
                         f"merge {name}")
        got = [unpack(rf, w) for w in sink.got]
        if rd["p"] >= 1:
            exp = [item for _, item in Merge.model(queues, ptr)]
            assert got == exp, f"merge {name}: order differs from the model at " \
                f"{next(i for i, (x, y) in enumerate(zip(got, exp)) if x != y)}"
            want = list(range(Merge.latency, Merge.latency + total))
            assert sink.cycles == want, f"merge {name}: outputs at cycles {sink.cycles[:8]}..., " \
                f"contract one per cycle from {Merge.latency}"
        for n, q in enumerate(queues):
            mine = [r for r in got if r["o_addr"] == n]
            assert mine == q, f"merge {name}: input {n}'s items out of order or lost"
        assert len(got) == total, f"merge {name}: {len(got)} results for {total} offered"
        if got:
            ptr = (got[-1]["o_addr"] + 1) % count
        # let the round's last output drain before the next round
        await run_cycles(dut, [], lambda: True, 2, "drain")
    dut._log.info("%d rounds merged as the model says", len(case["rounds"]))
