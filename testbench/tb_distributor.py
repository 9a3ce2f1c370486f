"""cocotb bench of the Distributor: every job must reach exactly one lane, each lane
must get its jobs in arrival order, a job must go to the lowest-numbered lane queue
with room, and, with idle lanes, reach lane 0 ``latency`` cycles after its take.

Environment: GANPU_CASE (pickle: ``{"config", "rounds": [round dicts]}``).
"""

import cocotb
import numpy as np

from blockwrap import block_dut, load_case, run_cycles, start_clock, Sink, Source
from ganpu.core.distributor import Distributor


@cocotb.test()
async def rounds(dut):
    dut = block_dut(dut)
    case = load_case()
    L = case["config"].lanes
    rng = np.random.default_rng(6)
    await start_clock(dut, ["jobs__valid"] + [f"lanes__{n}__ready" for n in range(L)])
    for rd in case["rounds"]:
        name, jobs = rd["name"], rd["jobs"]
        src = Source(dut, "jobs", jobs, rng, rd["p_in"])
        sinks = [Sink(dut, f"lanes__{n}", rng, p) for n, p in enumerate(rd["p_out"])]
        await run_cycles(dut, [src, *sinks], lambda: sum(len(s.got) for s in sinks) >= len(jobs),
                         50 * len(jobs) + 50, f"distributor {name}")
        lane_of = {}
        for n, s in enumerate(sinks):
            for j in s.got:
                assert j not in lane_of, f"distributor {name}: job {j:#x} reached two lanes"
                lane_of[j] = n
        assert sorted(lane_of) == sorted(jobs), f"distributor {name}: jobs lost"
        exp = Distributor.model(jobs, [lane_of[j] for j in jobs])
        for n, s in enumerate(sinks):
            assert s.got == exp.get(n, []), f"distributor {name}: lane {n} got its jobs out of order"
        if all(p >= 1 for p in rd["p_out"]) and rd["p_in"] >= 1:
            assert set(lane_of.values()) == {0}, f"distributor {name}: idle lane 0 was passed over"
            lat = [c - t for c, t in zip(sinks[0].cycles, src.taken)]
            assert set(lat) == {Distributor.latency}, \
                f"distributor {name}: latencies {sorted(set(lat))}, contract {Distributor.latency}"
        await run_cycles(dut, [*sinks], lambda: True, 1, "drain")
    dut._log.info("%d rounds distributed as the contract says", len(case["rounds"]))
