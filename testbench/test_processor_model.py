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
                                   cores_for, compute_bound, MIN_SPLIT, gather, scatter,
                                   core_descriptor)
from ganpu.model.sgd import update
from ganpu.processor.program import ProgramError, Policy, TaskKind, record_words, update_layout
from ganpu.processor.update_engine import UpdateEngine

from tb_processor_programs import random_program, pause_negate, malformed, UPDATE_MALFORMATIONS

CFG = config("small")


def test_pack_roundtrip():
    rng = np.random.default_rng(1)
    _, recs, _ = random_program(CFG, rng, 12)
    urecs = [r for _ in range(6) for r in random_program(CFG, rng, 16, update=True)[1]]
    assert any(r["kind"] == TaskKind.UPDATE.value for r in urecs)
    for rec in recs + urecs:
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


def test_update_layout():
    """An UPDATE record's fields follow the same ``kind`` and ``deps`` and fit the record."""
    for name in ("sim", "small", "ulx3s-85f", "icebreaker"):
        cfg = config(name)
        lay = update_layout(cfg)
        assert lay["kind"].offset == 0 and lay["deps"].offset == 2
        assert lay.size <= 16 * record_words(cfg)
    with pytest.raises(TypeError, match="cfg must be a ProcessorConfig, not 'small'"):
        update_layout("small")


def test_update_record_runs_sgd():
    """An UPDATE record computes :func:`ganpu.model.sgd.update` on its regions, low half
    first, and touches nothing else."""
    rng = np.random.default_rng(11)
    gbuf = rng.integers(0, 1 << 16, CFG.gbuf_depth).astype(np.uint16)
    n = 37
    rec = {"kind": TaskKind.UPDATE.value, "count": n, "w_base": 100, "v_base": 300,
           "g_base": 500, "w16_base": 700, "lr": 0x3D4CCCCD, "mu": 0x3F000000, "inv_scale": 0x3C800000}
    err, _, _, new = run_program(CFG, gbuf, [rec])
    assert err == ProgramError.OK
    i = np.arange(n)
    w = gbuf[100 + 2 * i].astype(np.uint32) | gbuf[101 + 2 * i].astype(np.uint32) << 16
    v = gbuf[300 + 2 * i].astype(np.uint32) | gbuf[301 + 2 * i].astype(np.uint32) << 16
    nw, nv, w16 = update(w, v, gbuf[500:500 + n], np.uint32(rec["lr"]), np.uint32(rec["mu"]),
                         np.uint32(rec["inv_scale"]))
    np.testing.assert_array_equal(new[100:100 + 2 * n:2] | new[101:101 + 2 * n:2].astype(np.uint32) << 16, nw)
    np.testing.assert_array_equal(new[300:300 + 2 * n:2] | new[301:301 + 2 * n:2].astype(np.uint32) << 16, nv)
    np.testing.assert_array_equal(new[700:700 + n], w16)
    touched = np.zeros(CFG.gbuf_depth, bool)
    touched[100:100 + 2 * n] = touched[300:300 + 2 * n] = touched[700:700 + n] = True
    np.testing.assert_array_equal(new[~touched], gbuf[~touched])
    assert np.array_equal(UpdateEngine.model(CFG, rec, gbuf.copy()), new)


def test_random_programs_run():
    rng = np.random.default_rng(5)
    gbuf, recs, pauses = random_program(CFG, rng, 14, update=True)
    assert any(r["kind"] == TaskKind.PAUSE.value for r in recs) or not pauses
    seen = []
    err, _, _, new = run_program(CFG, gbuf, recs, lambda t, g: (seen.append(t), pause_negate(pauses)(t, g))[1])
    assert err == ProgramError.OK
    assert seen == sorted(pauses)
    assert not np.array_equal(new, gbuf)


@pytest.mark.parametrize("what,error", [("self_dep", ProgramError.BAD_DEP), ("later_dep", ProgramError.BAD_DEP),
                                        ("gbuf_range", ProgramError.GBUF_RANGE), ("kind", ProgramError.BAD_KIND),
                                        ("core", ProgramError.CORE), ("core_range", ProgramError.CORE),
                                        ("update_count", ProgramError.COUNT),
                                        *((w, ProgramError.GBUF_RANGE) for w in UPDATE_MALFORMATIONS[1:])])
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
    # a compute-bound program: wait for min(cores, M) free cores, whatever is ready
    assert adaptive_cores(3, 1, 10, 4096, cores=4, bound=True) == 0
    assert adaptive_cores(4, 3, 10, 4096, cores=4, bound=True) == 4
    assert adaptive_cores(2, 2, 2, 300, cores=4, bound=True) == 2
    assert adaptive_cores(1, 1, 2, 300, cores=4, bound=True) == 0
    assert cores_for(Policy.ADAPTIVE, 4, 4, 3, 10, 4096, bound=True) == 4
    assert cores_for(Policy.ADAPTIVE, 4, 4, 3, 10, 4096) == 1
    # the regime: sum(work) * dma_width > sum(words) * cores and sum(work) > n * cores
    # * MIN_SPLIT, over the n GEMM records only
    gemm = {"kind": TaskKind.GEMM, "work": 4 * MIN_SPLIT, "words": 2 * MIN_SPLIT}
    pause = {"kind": TaskKind.PAUSE, "work": 10 ** 6, "words": 0}
    assert compute_bound([gemm, gemm], 2, 1) is False         # work * 1 == words * 2
    assert compute_bound([gemm, gemm], 2, 2) is True
    assert compute_bound([gemm, gemm], 4, 4) is False         # 4 cores: share == MIN_SPLIT
    assert compute_bound([gemm, pause], 2, 4) is True         # the PAUSE counts nothing
    few = {**gemm, "work": 2 * MIN_SPLIT, "words": 1}        # cheap to move, too short to split
    assert compute_bound([few, few], 2, 1) is False
    assert compute_bound([few, {**few, "work": 2 * MIN_SPLIT + 1}], 2, 1) is True
    assert compute_bound([], 4, 4) is False


def test_dispatch_rule_messages():
    with pytest.raises(ValueError, match=r"needs the core count, not cores=None"):
        adaptive_cores(4, 1, 10, 4096, bound=True)
