"""The scheduler's ADAPTIVE regimes on the processor's generated Verilog, both
simulators (bench ``tb_scheduler``). The processors are test_processor's (same config,
same build name): the build is shared, only the programs are new. Also: the row
split's reciprocals, and the scheduler proof's bounded liveness refuting a scheduler
that waits too long (``formal/proof_scheduler.py``; its proofs run in test_formal)."""

import sys
from pathlib import Path

import numpy as np
import pytest

import harness
from ganpu.processor import config, CONFIGS
from ganpu.processor.processor import Processor
from ganpu.processor.scheduler import split_reciprocal

FORMAL = Path(__file__).resolve().parent / "formal"

# Icarus: the 2-core "small" with a 1K-word GBUF; Verilator: its 4-core variant
RUNS = {"icarus": dict(gbuf_bits=10, programs=1, tasks=6),
        "verilator": dict(cores=4, programs=2, tasks=10)}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_adaptive_regimes(sim):
    run = RUNS[sim]
    cfg = config("small")
    env = {"GANPU_SEED": 5, "GANPU_PROGRAMS": max(1, int(run["programs"] * harness.scale())),
           "GANPU_TASKS": run["tasks"]}
    cfg, name = harness.processor_variant(cfg, run, env)
    harness.run(sim, Processor(cfg), name, "tb_scheduler", env=env)


def test_split_reciprocal_is_exact():
    """The Split state's ``(M * R[k]) >> s`` equals ``M // k`` for every M below
    ``2**dim_bits`` and every k of every named config (and 1..16 cores at 14 bits)."""
    cases = {(c.cores, c.core.geom.dim_bits) for c in CONFIGS.values()}
    cases |= {(cores, 14) for cores in range(1, 17)}
    for cores, bits in sorted(cases):
        s, recip = split_reciprocal(cores, bits)
        m = np.arange(1 << bits, dtype=np.uint64)
        for k in range(1, cores + 1):
            assert recip[k] < 1 << (s + 1)
            np.testing.assert_array_equal((m * np.uint64(recip[k])) >> np.uint64(s), m // k,
                                          err_msg=f"cores {cores}, bits {bits}, k {k}")


@pytest.mark.parametrize("args, msg", [
    ((0, 8), "cores must be in >= 1, not 0"),
    ((2, 0), "bits must be in >= 1, not 0"),
    ((2.0, 8), "cores must be an int, not 2.0"),
])
def test_split_reciprocal_messages(args, msg):
    with pytest.raises((TypeError, ValueError), match=msg):
        split_reciprocal(*args)


def test_liveness_proof_refutes_a_late_scheduler(tmp_path):
    """The scheduler proof's bounded liveness, with the policy's rule for a
    compute-bound program (a record waits for ``min(cores, M)`` free cores), is not
    vacuous there: a scheduler that waits for one core more fails it (a counterexample
    in the first dispatch, ``proof_scheduler.LateScheduler``)."""
    if str(FORMAL) not in sys.path:
        sys.path.insert(0, str(FORMAL))
    import sby
    import proof_scheduler
    missing = sby.missing_tools(proof_scheduler.SOLVER)
    if missing:
        reason = f"formal tools not on PATH: {', '.join(missing)} (pip install 'ganpu[test]')"
        if harness.in_ci():
            pytest.fail(reason + " (CI=true: a missing tool is a failure)")
        pytest.skip(reason)
    result = sby.prove(proof_scheduler.design(mutant=True), "mutant_late_scheduler",
                       proof_scheduler.DEPTH, tmp_path, cover=False, solver=proof_scheduler.SOLVER)
    # the failed assertion is the liveness one (the log names its source line)
    line = next(i for i, text in enumerate(Path(proof_scheduler.__file__).read_text().splitlines(), 1)
                if "Assert(wait < LIVENESS" in text)
    assert not result.passed and f"Assert failed in top: {proof_scheduler.__file__}:{line} " in result.log, \
        str(result) + "\n" + "\n".join(result.log.splitlines()[-20:])
