"""cocotb bench of the DescriptorChecker: each descriptor of the case file is started
alone; ``done`` must come exactly ``latency`` cycles after ``start`` with the verdict
of :meth:`DescriptorChecker.model`. ``desc`` is read in the start cycle only (the core
hands over its live task port, whose driver may change it the next cycle): in every
other cycle the bench drives the case's neighbouring descriptors instead.

Environment: GANPU_CASE (pickle: ``{"config": CoreConfig, "descs": [(name, desc)]}``).
"""

import cocotb

from blockwrap import block_dut, load_case, run_cycles, start_clock, sig, Pulse, Watch
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
    packed = [pack_desc(desc, cfg.geom) for _, desc in case["descs"]]
    for i, (name, desc) in enumerate(case["descs"]):
        start = Pulse(dut, "start", at=0, extra={"desc": packed[i]})
        others = Others(dut, "desc", [packed[(i + 1) % len(packed)], packed[i - 1]], at=0)
        done = Watch(dut, "done", also=["error"])
        await run_cycles(dut, [others, start, done], lambda: len(done.hits) > 0, lat + 4,
                         f"checker {name}")
        cycle, code = done.hits[0]
        exp = DescriptorChecker.model(desc, cfg)
        assert cycle == lat, f"checker {name}: done {cycle} cycles after start, latency is {lat}"
        assert Error(code) == exp, f"checker {name}: verdict {Error(code)!r}, model {exp!r}; desc {desc}"
        seen.add(exp)
    dut._log.info("%d descriptors, verdicts %s", len(case["descs"]), sorted(e.name for e in seen))


class Others:
    """Drives ``name`` with ``values`` in turn in every cycle but ``at``."""

    def __init__(self, dut, name, values, at=0):
        self.s = sig(dut, name)
        self.values = values
        self.at = at

    def drive(self, cycle):
        if cycle != self.at:
            self.s.value = self.values[cycle % len(self.values)]

    def sample(self, cycle):
        pass
