"""``ganpu.sim.runner.generate`` writes the same Verilog text in every Python process,
so a build cached on that text (``docs/sim.md``, "Builds are cached") is found again.

Each design is generated in separate processes with different ``PYTHONHASHSEED`` (the
string hash, hence the iteration order of any set of names): ``NativeTop`` on the
smallest config (two clocks: the link clock is its own ports, so ``sync`` is the only
domain Amaranth creates; hash seeds 1 and 3 order the pair ``sync``/``link`` differently)
and the framer (one clock)."""

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

SEEDS = ("1", "3")


def designs():
    from ganpu.link.framer import Framer
    from ganpu.link.native_top import NativeTop
    return {"native_top": lambda: NativeTop("icebreaker"), "framer": lambda: Framer("small")}


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


def test_native_top_link_clock_ports():
    from ganpu.link.native_top import NativeTop
    from ganpu.sim import runner
    text = runner.generate(NativeTop("icebreaker"), "native_top")
    header = next(line for line in text.splitlines() if line.startswith("module native_top("))
    ports = [p.strip() for p in header[header.index("(") + 1:header.index(")")].split(",")]
    assert sorted(p for p in ports if p.endswith(("clk", "rst"))) == \
        ["clk", "link_clk", "link_rst", "rst"], header


def test_generate_needs_a_component():
    from ganpu.sim import runner
    with pytest.raises(TypeError, match=r"generate\(\) needs a wiring.Component, not 'adder'"):
        runner.generate("adder", "adder")


if __name__ == "__main__":
    for name, digest in digests().items():
        print(name, digest)
