"""cocotb bench of the UpdateUnit: rounds of parameters through ``i`` with random
valid gaps, results taken from ``o`` with random ready gaps; every result must equal
:meth:`UpdateUnit.model` in order, appear exactly ``latency`` cycles after its
parameter was accepted whenever ``o`` never stalls, and a round offered and taken at
full rate must be accepted one parameter per cycle when the queue is deep enough.

Environment: GANPU_CASE (pickle: ``{"depth", "rounds": [{"name", "hyper", "params",
"p_in", "p_out"}]}``).
"""

import cocotb
import numpy as np

from blockwrap import fields, load_case, pack, run_cycles, start_clock, unpack, Hold, Sink, Source
from ganpu.processor.update import UpdateUnit, hyper_layout, param_layout, result_layout


@cocotb.test()
async def rounds(dut):
    case = load_case()
    pf, rf, hf = fields(param_layout()), fields(result_layout()), fields(hyper_layout())
    rng = np.random.default_rng(11)
    await start_clock(dut, ["i__valid", "o__ready", "hyper"])
    lat = UpdateUnit.latency
    full_rate = case["depth"] >= UpdateUnit.full_rate_depth
    for rd in case["rounds"]:
        name, params = rd["name"], rd["params"]
        hold = Hold(dut, {"hyper": pack(hf, rd["hyper"])})
        src = Source(dut, "i", [pack(pf, p) for p in params], rng, rd["p_in"])
        snk = Sink(dut, "o", rng, rd["p_out"])
        cycles = await run_cycles(dut, [hold, src, snk], lambda: len(snk.got) >= len(params),
                                  40 * len(params) + 4 * lat + 100, f"update {name}")
        exp = UpdateUnit.model(params, rd["hyper"])
        got = [unpack(rf, x) for x in snk.got]
        bad = [i for i, (x, y) in enumerate(zip(got, exp)) if x != y]
        assert len(got) == len(exp) and not bad, (
            f"update {name}: {len(bad)} of {len(exp)} results differ from the model; first at "
            f"{bad[0] if bad else None}: param {params[bad[0]] if bad else None} "
            f"got {got[bad[0]] if bad else got[len(exp):][:1]} expected {exp[bad[0]] if bad else None}")
        if rd["p_out"] >= 1:
            late = [i for i, (t, o) in enumerate(zip(src.taken, snk.cycles)) if o != t + lat]
            assert not late, (f"update {name}: result {late[0]} accepted at cycle "
                              f"{src.taken[late[0]]} left at {snk.cycles[late[0]]}, latency {lat}")
            if rd["p_in"] >= 1 and full_rate:
                assert src.taken == list(range(src.taken[0], src.taken[0] + len(params))), (
                    f"update {name}: not one parameter per cycle at full rate "
                    f"({len(params)} accepted over cycles {src.taken[0]}..{src.taken[-1]})")
        dut._log.info("%s: %d parameters bit-exact in %d cycles", name, len(params), cycles)
