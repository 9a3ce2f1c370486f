"""Random programs on the processor's generated Verilog against its program model
(``tb_fuzz_processor``): right programs, malformed ones and records with random
fields, every GBUF word read back after each. The designs of ``test_processor.py``
(the same Verilog, so the same cached builds): Verilator the ``small`` config with 4
cores, Icarus ``small`` with a 1K-word GBUF and a few programs, both with two buffer
sets per core; ``GANPU_TEST_SCALE``
lengthens both (counts in ``docs/verification.md``)."""

import json
import random

import numpy as np
import pytest

import harness
from ganpu.processor import config
from ganpu.processor.model import run_program
from ganpu.processor.processor import Processor
from tb_fuzz_processor import field_paths, fuzz_program, host_work
from tb_processor_programs import sets_variant

CFG = config("small")
RUNS = {"verilator": dict(cores=4, programs=60, sets=2), "icarus": dict(gbuf_bits=10, programs=4, sets=2)}


def test_fuzz_programs_reach_every_kind_and_verdict():
    """The generator is not blind: every kind, right programs of every size, and the
    refusals of the program check (every ProgramError but EMPTY) and of the core's."""
    rng, nprng = random.Random(1), np.random.default_rng(1)
    kinds, verdicts = set(), set()
    for _ in range(400):
        kind, image, recs, pauses, _ = fuzz_program(CFG, rng, nprng)
        err, _, core_err, _ = run_program(CFG, image, recs, host_work(pauses))
        kinds.add(kind)
        verdicts.add(err.name if err.name != "CORE" else f"CORE.{core_err.name}")
    assert kinds == {"program", "malformed", "field"}
    for v in ("OK", "BAD_KIND", "BAD_DEP", "GBUF_RANGE", "COUNT", "CORE.A_RANGE", "CORE.BAD_COMBO"):
        assert v in verdicts, (v, verdicts)
    assert {p[0] for p, _ in field_paths(CFG)} >= {"kind", "deps", "op", "m", "a", "out"}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_fuzz_processor(sim, tmp_path):
    run = RUNS[sim]
    programs = max(1, int(run["programs"] * harness.scale()))
    results = tmp_path / "fuzz.json"
    env = {"GANPU_SEED": 29, "GANPU_PROGRAMS": programs, "GANPU_FUZZ_RESULTS": results}
    cfg, name = sets_variant(*harness.processor_variant(CFG, run, env), run, env)
    harness.run(sim, Processor(cfg), name, "tb_fuzz_processor", env=env)
    got = json.loads(results.read_text())
    print(f"processor fuzz on {sim}: " + json.dumps({k: v for k, v in got.items() if k != "failures"}))
    assert got["programs"] == programs
    assert got["mismatches"] == got["wrong_verdicts"] == got["hangs"] == 0, got["failures"]
