"""cocotb bench of the Epilogue: every result accepted at cycle t must be written at
cycle t + ``latency`` with the value and mask bit of :meth:`Epilogue.model`
(cycle-exact; inputs arrive with random gaps).

Environment: GANPU_CASE (pickle: ``{"config", "rounds": [round dicts]}``).
"""

import cocotb
import numpy as np

from blockwrap import block_dut, fields, load_case, pack, run_cycles, start_clock, Hold, Source, Watch
from ganpu.core.epilogue import Epilogue
from ganpu.core.scanner import result_layout
from ganpu.host.lower import pack_desc


@cocotb.test()
async def rounds(dut):
    dut = block_dut(dut)
    case = load_case()
    g = case["config"].geom
    rf = fields(result_layout(g))
    rng = np.random.default_rng(5)
    await start_clock(dut, ["i__valid", "desc"])
    lat = Epilogue.latency
    for rd in case["rounds"]:
        name, results, desc = rd["name"], rd["results"], rd["desc"]
        hold = Hold(dut, {"desc": pack_desc(desc, g)})
        src = Source(dut, "i", [pack(rf, r) for r in results], rng, rd["p"])
        out = Watch(dut, "out_wr__en", also=["out_wr__addr", "out_wr__data",
                                             "mask_wr__en", "mask_wr__addr", "mask_wr__data"])
        await run_cycles(dut, [hold, src, out], lambda: len(out.hits) >= len(results) and
                         len(src.taken) == len(results) and
                         (len(results) == 0 or out.hits[-1][0] >= src.taken[-1] + lat),
                         20 * len(results) + 40, f"epilogue {name}")
        exp = [(t + lat, a, y, 1, i, b) for t, (a, y, i, b) in
               zip(src.taken, Epilogue.model(results, desc))]
        bad = [i for i, (x, y) in enumerate(zip(out.hits, exp)) if x != y]
        assert len(out.hits) == len(exp) and not bad, (
            f"epilogue {name}: {len(bad)} writes differ from the model "
            f"(cycle, o_addr, o_data, mask we, mask_idx, bit); first: "
            f"got {out.hits[bad[0]] if bad else out.hits[len(exp):][:1]} "
            f"expected {exp[bad[0]] if bad else None}; desc op={desc['op']} act={desc['act']}")
    dut._log.info("%d rounds written as the model says", len(case["rounds"]))
