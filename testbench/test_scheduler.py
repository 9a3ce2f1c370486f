"""The scheduler's ADAPTIVE regimes on the processor's generated Verilog, both
simulators (bench ``tb_scheduler``). The processors are test_processor's (same config,
same build name): the build is shared, only the programs are new. Also: the row
split's reciprocals (the scheduler's proofs and their mutants run in test_formal).
Icarus runs the one-set scheduler (both regimes), Verilator the two-set one (the
staged rule; test_processor's build)."""


import numpy as np
import pytest

import harness
from ganpu.processor import config, CONFIGS
from ganpu.processor.processor import Processor
from ganpu.processor.scheduler import split_reciprocal
from tb_processor_programs import sets_variant

# Icarus: the 2-core "small" with a 1K-word GBUF; Verilator: its 4-core variant with two sets
RUNS = {"icarus": dict(gbuf_bits=10, programs=1, tasks=6),
        "verilator": dict(cores=4, programs=2, tasks=10, sets=2)}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_adaptive_regimes(sim):
    run = RUNS[sim]
    cfg = config("small")
    env = {"GANPU_SEED": 5, "GANPU_PROGRAMS": max(1, int(run["programs"] * harness.scale())),
           "GANPU_TASKS": run["tasks"]}
    cfg, name = sets_variant(*harness.processor_variant(cfg, run, env), run, env)
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

