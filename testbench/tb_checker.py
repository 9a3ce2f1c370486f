"""cocotb bench of the DescriptorChecker: each descriptor of the case file is started
alone; ``done`` must come exactly ``latency`` cycles after ``start`` with the verdict
of :meth:`DescriptorChecker.model`.

Environment: GANPU_CASE (pickle: ``{"config": CoreConfig, "descs": [(name, desc)]}``).
"""

import cocotb

from blockwrap import block_dut, load_case, run_cycles, start_clock, Pulse, Watch
from ganpu.core.descriptor import DescriptorChecker, Error
from ganpu.host.lower import pack_desc


@cocotb.test()
async def verdicts(dut):
    dut = block_dut(dut)
    case = load_case()
    cfg = case["config"]
    await start_clock(dut, ["start", "desc"])
    lat = DescriptorChecker.latency
    seen = set()
    for name, desc in case["descs"]:
        start = Pulse(dut, "start", at=0, extra={"desc": pack_desc(desc, cfg.geom)})
        done = Watch(dut, "done", also=["error"])
        await run_cycles(dut, [start, done], lambda: len(done.hits) > 0, lat + 4, f"checker {name}")
        cycle, code = done.hits[0]
        exp = DescriptorChecker.model(desc, cfg)
        assert cycle == lat, f"checker {name}: done {cycle} cycles after start, latency is {lat}"
        assert Error(code) == exp, f"checker {name}: verdict {Error(code)!r}, model {exp!r}; desc {desc}"
        seen.add(exp)
    dut._log.info("%d descriptors, verdicts %s", len(case["descs"]), sorted(e.name for e in seen))
