"""``ganpu.sim.runner.generate`` writes the same Verilog text in every Python process,
so a build cached on that text (``docs/sim.md``, "Builds are cached") is found again.

Each design is generated in separate processes with different ``PYTHONHASHSEED`` (the
string hash, hence the iteration order of any set of names). The two-clock design has
the shape of ``NativeTop``'s clocking (``sync`` and ``link`` both left for Amaranth to
create, an AsyncFIFO between them) without its processor, which takes a minute to
elaborate; the framer is a real block on one clock."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

SEEDS = ("1", "2", "3", "4")


class TwoClocks(wiring.Component):
    """Bytes from the ``link`` clock to the ``sync`` clock through an AsyncFIFO; neither
    domain is defined here, as in NativeTop."""

    data: In(8)
    out: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = AsyncFIFO(width=8, depth=4, w_domain="link", r_domain="sync")
        m.d.comb += [fifo.w_stream.payload.eq(self.data), fifo.w_stream.valid.eq(1),
                     fifo.r_stream.ready.eq(1)]
        m.d.sync += self.out.eq(fifo.r_stream.payload)
        return m


def designs():
    from ganpu.link.framer import Framer
    return {"two_clocks": TwoClocks, "framer": lambda: Framer("small")}


def digests():
    """{design: sha256 of its Verilog} in this process."""
    from ganpu.sim import runner
    return {name: hashlib.sha256(runner.generate(make(), name).encode()).hexdigest()
            for name, make in designs().items()}


def test_same_text_under_any_hash_seed():
    here = Path(__file__).resolve()
    procs = {seed: subprocess.Popen([sys.executable, str(here)], stdout=subprocess.PIPE,
                                    text=True, cwd=here.parent,
                                    env={**os.environ, "PYTHONHASHSEED": seed})
             for seed in SEEDS}
    texts = {}
    for seed, proc in procs.items():
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"generating under PYTHONHASHSEED={seed} failed"
        texts[seed] = dict(line.split() for line in out.splitlines())
    for name in designs():
        got = {seed: texts[seed][name] for seed in SEEDS}
        assert len(set(got.values())) == 1, \
            f"{name}: the Verilog differs between hash seeds {got}"


def test_clock_ports_by_domain():
    from ganpu.sim import runner
    text = runner.generate(TwoClocks(), "two_clocks")
    header = next(line for line in text.splitlines() if line.startswith("module two_clocks("))
    ports = [p.strip() for p in header[header.index("(") + 1:header.index(")")].split(",")]
    clocks = [p for p in ports if p.endswith(("clk", "rst"))]
    assert clocks == ["clk", "rst", "link_clk", "link_rst"], header


def test_generate_needs_a_component():
    from ganpu.sim import runner
    with pytest.raises(TypeError, match=r"generate\(\) needs a wiring.Component, not 'adder'"):
        runner.generate("adder", "adder")


if __name__ == "__main__":
    for name, digest in digests().items():
        print(name, digest)
