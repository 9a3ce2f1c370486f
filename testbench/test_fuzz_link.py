"""Random frames on the link's framer against its model (``tb_fuzz_link``): every
answer byte and, after the frames, the whole GBUF read back through the link. Verilator
takes thousands of frames, Icarus a short run; ``GANPU_TEST_SCALE`` lengthens both
(counts in ``docs/verification.md``)."""

import json
import random

import pytest

import harness
from ganpu.link.framer import Framer
from ganpu.processor import config
from tb_fuzz_link import fuzz_items, verdicts

# the framer of test_link_framer.py (same Verilog, so the same cached build)
TIMEOUT = 60
FRAMES = {"verilator": 3000, "icarus": 60}


def test_fuzz_frames_reach_every_verdict():
    """The generator is not blind: every receiver verdict, dropped frames and timeouts."""
    got = verdicts(fuzz_items(config("small"), random.Random(1), 2000))
    assert set(got) == {"OK", "CRC_ERROR", "BAD_COMMAND", "BAD_LENGTH", "DROPPED", "TIMEOUT"}, got
    assert got["OK"] > sum(got.values()) // 4, got


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_fuzz_link(sim, tmp_path):
    frames = max(1, int(FRAMES[sim] * harness.scale()))
    results = tmp_path / "fuzz.json"
    harness.run(sim, Framer("small", timeout=TIMEOUT), "ganpu_link_framer", "tb_fuzz_link",
                env={"GANPU_SEED": 17, "GANPU_FRAMES": frames, "GANPU_TIMEOUT": TIMEOUT,
                     "GANPU_FUZZ_RESULTS": results})
    got = json.loads(results.read_text())
    print(f"link fuzz on {sim}: " + json.dumps(got))
    assert got["frames"] == frames and got["hang"] == 0
    assert got["tx_mismatch"] == 0 and got["gbuf_mismatches"] == 0
