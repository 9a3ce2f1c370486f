"""The processor's program model, record packing and dispatch rules (no simulator)."""

import numpy as np
import pytest

from ganpu.core import model as core_model
from ganpu.core.descriptor import Error, Op, Act
from ganpu.host.lower import fc_fp
from ganpu.processor import config
from ganpu.processor.config import ProcessorConfig
from ganpu.processor.model import (pack_record, unpack_record, record_bus_words, normalize,
                                   check_program, run_program, split_rows, adaptive_cores,
                                   cores_for, gather, scatter, core_descriptor)
from ganpu.processor.program import ProgramError, Policy, TaskKind, record_words

from tb_processor_programs import random_program, pause_negate, malformed

CFG = config("small")


def test_pack_roundtrip():
    rng = np.random.default_rng(1)
    _, recs, _ = random_program(CFG, rng, 12)
    for rec in recs:
        value = pack_record(CFG, rec)
        assert unpack_record(CFG, value) == normalize(CFG, rec)
        words = record_bus_words(CFG, rec)
        assert len(words) == record_words(CFG)
        assert sum(w << (16 * i) for i, w in enumerate(words)) == value
    bad = {"kind": 3, "op": 3, "deps": [{"valid": 1, "index": 2}]}
    assert unpack_record(CFG, pack_record(CFG, bad)) == normalize(CFG, bad)


def test_pack_messages():
    with pytest.raises(ValueError, match=r"Task record field m=4096 does not fit in 10 bits"):
        pack_record(CFG, {"m": 4096})
    with pytest.raises(KeyError, match="Unknown task record field 'q'"):
        pack_record(CFG, {"q": 1})
    with pytest.raises(ValueError, match=r"3 dependencies do not fit 2 slots"):
        pack_record(CFG, {"deps": [0, 1, 2]})
    with pytest.raises(TypeError, match="cfg must be a ProcessorConfig, not 'small'"):
        check_program("small", [])
    with pytest.raises(ValueError, match=r"gbuf must hold 4096 words, not shape \(3,\)"):
        run_program(CFG, np.zeros(3), [{}])


def test_config_messages():
    with pytest.raises(ValueError, match=r"cores must be in 1\.\.16, not 0"):
        ProcessorConfig(cores=0)
    with pytest.raises(KeyError, match="Unknown processor config 'x'"):
        config("x")


def test_fc_task_matches_lowering():
    """One FP record equals the core model on the host lowering's buffers."""
    rng = np.random.default_rng(2)
    M, N, K = 5, 6, 7
    x = rng.integers(0, 0x3c00, (M, K)).astype(np.uint16)
    w = rng.integers(0, 0xbc00, (N, K)).astype(np.uint16)
    b = rng.integers(0, 0x3c00, N).astype(np.uint16)
    gbuf = np.zeros(CFG.gbuf_depth, np.uint16)
    gbuf[0:M * K] = x.ravel()
    gbuf[100:100 + N * K] = w.T.ravel()  # stored transposed: B read with strides
    gbuf[200:200 + N] = b
    rec = {"op": Op.FP.value, "act": Act.RELU.value, "bias": 1, "eors": 1, "store_mask": 1,
           "m": M, "n": N, "k": K, "a": {"base": 0, "s0": K, "s1": 1},
           "b": {"base": 100, "s0": 1, "s1": N}, "bias_base": 200,
           "out": {"base": 300, "s0": 1, "s1": M}, "mask_out_base": 400}
    err, _, _, new = run_program(CFG, gbuf, [rec])
    assert err == ProgramError.OK
    desc, loads = fc_fp(x, w, b, eors=True, eors_lanes=CFG.core.eors_lanes)
    bufs = CFG.core.zero_buffers()
    for name, (base, bits) in loads.items():
        bufs[name][base:base + bits.size] = bits
    e, bufs = core_model.run_task(desc, bufs, CFG.core.geom, CFG.core.eors, CFG.core.eors_lanes)
    assert e == Error.OK
    np.testing.assert_array_equal(new[300:300 + M * N].reshape(N, M).T, bufs["out"][:M * N].reshape(M, N))
    np.testing.assert_array_equal(new[400:400 + M * N], bufs["mask_out"][:M * N])
    untouched = np.ones(CFG.gbuf_depth, bool)
    untouched[300:300 + M * N] = untouched[400:400 + M * N] = False
    np.testing.assert_array_equal(new[untouched], gbuf[untouched])


@pytest.mark.parametrize("seed", range(4))
def test_rows_split_any_way(seed):
    """A task split into row chunks (temporal mode) writes what it writes whole."""
    rng = np.random.default_rng(seed)
    gbuf, recs, pauses = random_program(CFG, rng, 10, pause=False)
    for rec in recs:
        r = normalize(CFG, rec)
        whole = gbuf.copy()
        e, bufs = core_model.run_task(core_descriptor(r), gather(CFG, r, gbuf), CFG.core.geom,
                                      CFG.core.eors, CFG.core.eors_lanes)
        scatter(CFG, r, whole, bufs)
        for k in (2, 3):
            parts = gbuf.copy()
            for m0, m1 in split_rows(r["m"], k):
                e, bufs = core_model.run_task(core_descriptor(r, m1 - m0), gather(CFG, r, gbuf, m0, m1),
                                              CFG.core.geom, CFG.core.eors, CFG.core.eors_lanes)
                assert e == Error.OK
                scatter(CFG, r, parts, bufs, m0, m1)
            np.testing.assert_array_equal(parts, whole)


def test_random_programs_run():
    rng = np.random.default_rng(5)
    gbuf, recs, pauses = random_program(CFG, rng, 14)
    assert any(r["kind"] == TaskKind.PAUSE.value for r in recs) or not pauses
    seen = []
    err, _, _, new = run_program(CFG, gbuf, recs, lambda t, g: (seen.append(t), pause_negate(pauses)(t, g))[1])
    assert err == ProgramError.OK
    assert seen == sorted(pauses)
    assert not np.array_equal(new, gbuf)


@pytest.mark.parametrize("what,error", [("self_dep", ProgramError.BAD_DEP), ("later_dep", ProgramError.BAD_DEP),
                                        ("gbuf_range", ProgramError.GBUF_RANGE), ("kind", ProgramError.BAD_KIND),
                                        ("core", ProgramError.CORE), ("core_range", ProgramError.CORE)])
def test_malformed(what, error):
    rng = np.random.default_rng(7)
    gbuf, recs, _ = random_program(CFG, rng, 8, pause=False)
    bad, t = malformed(CFG, rng, recs, what)
    err, task, core_err, new = run_program(CFG, gbuf, bad)
    assert (err, task) == (error, t)
    assert (core_err != Error.OK) == (error == ProgramError.CORE)
    np.testing.assert_array_equal(new, gbuf)


def test_empty():
    assert check_program(CFG, []) == (ProgramError.EMPTY, 0, Error.OK)
    assert check_program(CFG, [{"kind": 1}] * (CFG.program_depth + 1))[0] == ProgramError.EMPTY


def test_dispatch_rules():
    assert split_rows(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert split_rows(2, 4) == [(0, 1), (1, 2)]
    assert cores_for(Policy.TEMPORAL, 4, 3, 1, 10, 1000) == 0
    assert cores_for(Policy.TEMPORAL, 4, 4, 1, 3, 1000) == 3
    assert cores_for(Policy.SPATIAL, 4, 2, 1, 10, 1000) == 1
    assert adaptive_cores(4, 1, 10, 4096) == 4
    assert adaptive_cores(4, 2, 10, 4096) == 2
    assert adaptive_cores(4, 1, 10, 300) == 2
    assert adaptive_cores(4, 1, 2, 4096) == 2
    assert adaptive_cores(4, 3, 10, 4096) == 1
    assert adaptive_cores(0, 1, 10, 4096) == 0
