"""The speculator (EORS in the core) alone, on generated Verilog against its
transaction-level model, both simulators (``tb_speculator.py`` says what is checked).

Random tasks (sparse rows, empty rows, lanes past N, with and without bias, tasks
without EORS) and real FP ReLU gemms of the MLP GAN, lowered by :mod:`ganpu.host.tasks`.
Verilator runs the core's own configuration; Icarus the smallest one that still has
several groups per row and every mask slot in use.
"""

import pickle
from dataclasses import replace

import numpy as np
import pytest

import harness
import tb_eors
from packing import pack
from ganpu.core import CoreConfig, Geometry
from ganpu.core import model as core_model
from ganpu.core.descriptor import Op, Act, Error
from ganpu.core.speculator import Speculator, ROW_SLOTS
from ganpu.eors import EorsPredictor
from ganpu.model.eors import EorsParams

CONFIGS = {
    "verilator": CoreConfig(),
    "icarus": CoreConfig(geom=Geometry(a_bits=8, b_bits=8, out_bits=8, bias_bits=5, mask_bits=8),
                         eors_lanes=4),
}
# the scale-aware threshold mode (docs/eors.md), same geometries
SCALE = EorsParams(threshold=0, rel=13)
SCALE_CONFIGS = {sim: replace(cfg, eors=SCALE) for sim, cfg in CONFIGS.items()}
# self-calibration sampling at the highest rate the lanes allow (every word sampled
# when 2**r = P), on the small geometry
SAMPLE_CONFIG = replace(SCALE_CONFIGS["icarus"], eors_sample_log2=2)
# random tasks per run, and rows kept of each real record
RANDOM_TASKS = {"verilator": 60, "icarus": 16}
SCALE_RANDOM_TASKS = {"verilator": 20, "icarus": 8}
REAL_ROWS = {"verilator": 6, "icarus": 2}


def _base_desc(**kw):
    d = dict(op=Op.FP.value, act=Act.RELU.value, slope=0, use_mask=0, bias=0, eors=1,
             m=1, n=1, k=1, a_base=0, a_sm=0, a_sk=1, b_base=0, b_sn=0, b_sk=1,
             o_base=0, o_sm=0, o_sn=1, bias_base=0)
    d.update(kw)
    return d


def random_task(rng, cfg):
    """A checker-accepted task with random operands: ``(desc, bufs)``."""
    g, P = cfg.geom, cfg.eors_lanes
    bufs = cfg.zero_buffers()
    while True:
        M = int(rng.integers(1, 9))
        K = int(rng.integers(1, min(48, g.depth("a") // M) + 1))
        N = int(rng.integers(1, 3 * P + 2))
        G = -(-N // P)
        if G * K <= g.depth("b") // P and M * N <= g.depth("mask") and M * N <= g.depth("out") \
                and G * P <= g.depth("bias"):
            break
    kind = rng.choice(["eors", "plain_relu", "identity", "bp"], p=[0.7, 0.1, 0.1, 0.1])
    op, act, eors = {"eors": (Op.FP, Act.RELU, 1), "plain_relu": (Op.FP, Act.RELU, 0),
                     "identity": (Op.FP, Act.IDENTITY, 1), "bp": (Op.BP, Act.RELU, 1)}[kind]
    # A row-major or column-major, somewhere in the buffer
    a_base = int(rng.integers(0, g.depth("a") - M * K + 1))
    a_sm, a_sk = (K, 1) if rng.random() < 0.5 else (1, M)
    A = np.stack([tb_eors.operands(rng, K, int(rng.choice(4, p=[0.2, 0.5, 0.1, 0.2])))
                  for _ in range(M)])
    density = rng.choice([0.0, 0.2, 0.6, 1.0], size=M, p=[0.15, 0.3, 0.3, 0.25])
    A[rng.random((M, K)) >= density[:, None]] = 0
    A[rng.random((M, K)) < 0.05] = 0x8000          # -0 is skipped too
    mi, ki = np.arange(M)[:, None], np.arange(K)[None, :]
    bufs["a"][a_base + mi * a_sm + ki * a_sk] = A
    # BW filled over whole groups (lanes past N too: the speculator predicts them)
    bufs["bw"][:G * K * P] = tb_eors.operands(rng, G * K * P, int(rng.choice([0, 1, 1, 2, 3])))
    bias = int(rng.random() < 0.7)
    bias_base = P * int(rng.integers(0, (g.depth("bias") - G * P) // P + 1))
    bufs["bias"][:] = tb_eors.operands(rng, g.depth("bias"), int(rng.choice([0, 1, 1, 3])))
    desc = _base_desc(op=op.value, act=act.value, eors=eors, bias=bias, bias_base=bias_base,
                      m=M, n=N, k=K, a_base=a_base, a_sm=a_sm, a_sk=a_sk,
                      b_sn=K, o_sm=N, use_mask=0)
    assert core_model.check(desc, g, P) == Error.OK, core_model.check(desc, g, P)
    return desc, bufs


def relu_fp_records():
    from ganpu.gan.export import export_layers
    recs = export_layers(net="mlp", steps=(0,), batch=32, seed=0)
    out = {k: r for k, r in recs.items() if r["epi_phase"] == "fp" and r["act"] == "relu"}
    assert out, "the MLP export has no FP ReLU gemm"
    return out


def real_tasks(records, cfg, rows, rng):
    """Tasks of real FP ReLU gemms: ``rows`` random rows of each record; records too big
    for ``cfg`` keep a leading block of their weights (and of K), still real values."""
    from ganpu.host.tasks import record_tasks
    g, P = cfg.geom, cfg.eors_lanes
    out = []
    for key, rec in records.items():
        A, B = np.asarray(rec["A"]), np.asarray(rec["B"])
        # keep the whole sum where the buffers allow, and at least two groups of outputs
        K = min(A.shape[1], g.depth("a") // rows, max(1, g.depth("b") // P // 2))
        N = min(B.shape[0], g.depth("bias"), g.depth("mask") // rows, g.depth("out") // rows,
                P * (g.depth("b") // P // K))
        pick = np.sort(rng.choice(A.shape[0], rows, replace=False))
        sub = dict(rec, A=A[pick, :K], B=B[:N, :K], init=np.asarray(rec["init"])[:N], mask_in=None)
        for desc, loads, _ in record_tasks(sub, g, eors=True, eors_lanes=P):
            bufs = cfg.zero_buffers()
            for name, (base, v) in loads.items():
                bufs[name][base:base + len(v)] = v
            out.append((f"{key}[{N}x{K}]", desc, bufs))
    return out


def _pack(elements, P):
    """Buffer elements -> wide words of P elements (lane p in bits 16p..16p+15)."""
    return [pack(w, 16) for w in np.asarray(elements, dtype=np.uint16).reshape(-1, P)]


def bench_task(name, desc, bufs, cfg):
    """One task as the bench wants it: memory images, inputs (the level ``rel`` and
    the sampling key ``key``), the model's expectations."""
    g, P = cfg.geom, cfg.eors_lanes
    exp = Speculator.model(desc, bufs, cfg)
    a, boff = exp["entries"]
    acomp = [0] * g.depth("a")
    for j, (v, o) in enumerate(zip(a.tolist(), boff.tolist())):
        acomp[j] = v | (o << 16)
    return {
        "name": name, "enable": int(core_model.eors_active(desc)), "n": desc["n"], "k": desc["k"],
        "bias": desc["bias"], "bias_word": desc["bias_base"] // P, "rows": exp["rows"],
        "rel": desc.get("eors_rel", 0), "key": desc.get("eors_key", 0),
        "acomp": acomp, "bw": _pack(bufs["bw"], P), "bias_mem": _pack(bufs["bias"], P),
        "words": None if exp["words"] is None else [[int(w) for w in r] for r in exp["words"]],
        "cycles": exp["cycles"],
    }


@pytest.fixture(scope="module")
def records():
    return relu_fp_records()


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_speculator(sim, records, tmp_path):
    _run_speculator(sim, CONFIGS[sim], RANDOM_TASKS[sim], records, tmp_path, "")


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_speculator_scale_aware(sim, records, tmp_path):
    """The scale-aware threshold mode in the core's speculator."""
    _run_speculator(sim, SCALE_CONFIGS[sim], SCALE_RANDOM_TASKS[sim], records, tmp_path, "_scale")


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_speculator_sampling(sim, records, tmp_path):
    """Sampling (2P-bit mask words, each task's own key) and per-task levels."""
    _run_speculator(sim, SAMPLE_CONFIG, SCALE_RANDOM_TASKS["icarus"], records, tmp_path, "_sample",
                    real_rows=REAL_ROWS["icarus"])


def _run_speculator(sim, cfg, ntasks, records, tmp_path, suffix, real_rows=None):
    rng = np.random.default_rng(31)
    cases = [(f"random{i}", *random_task(rng, cfg))
             for i in range(max(1, int(ntasks * harness.scale())))]
    cases += real_tasks(records, cfg, REAL_ROWS[sim] if real_rows is None else real_rows, rng)
    tasks = []
    for name, desc, bufs in cases:
        if cfg.eors.rel is not None:
            # the task's level: the configured one (0) or its own
            desc = dict(desc, eors_rel=int(rng.choice([0, int(rng.integers(1, 32))])))
        # a sampling key per task, near 2**16 now and then (the row keys wrap)
        desc = dict(desc, eors_key=int(rng.choice([int(rng.integers(0, 1 << 16)), 0xFFFE])))
        tasks.append(bench_task(name, desc, bufs, cfg))
    if cfg.eors_sample_log2:
        P = cfg.eors_lanes
        assert any(w >> P for t in tasks if t["enable"] for r in t["words"] for w in r)
    # the run must see both predictions, empty rows, several groups and tasks without EORS
    words = [w for t in tasks if t["enable"] for r in t["words"] for w in r]
    full = (1 << cfg.eors_lanes) - 1
    assert any(w & full != full for w in words) and any(w & full != 0 for w in words)
    assert any(s == e for t in tasks if t["enable"] for s, e in t["rows"])
    assert any(t["n"] > cfg.eors_lanes for t in tasks if t["enable"])
    assert any(not t["enable"] for t in tasks)
    assert max(len(t["rows"]) for t in tasks if t["enable"]) > ROW_SLOTS
    dut = Speculator(cfg)
    meta = {"lanes": cfg.eors_lanes, "row_slots": ROW_SLOTS, "words_per_row": dut.words_per_row,
            "latency": dut.latency, "row_bits": cfg.geom.a_bits + 1, "bias_first": dut.bias_first}
    taskfile = tmp_path / "tasks.pkl"
    taskfile.write_bytes(pickle.dumps({"meta": meta, "tasks": tasks}))
    harness.run(sim, dut, f"speculator_x{cfg.eors_lanes}{suffix}", "tb_speculator",
                env={"GANPU_TASKFILE": taskfile, "GANPU_SEED": 7})


def test_model_is_the_core_model(records):
    """The speculator's words, cut to N, are the core model's active outputs; its rows
    are the compressed A; its cycles follow the documented cost."""
    rng = np.random.default_rng(3)
    for cfg in list(CONFIGS.values()) + list(SCALE_CONFIGS.values()) + [SAMPLE_CONFIG]:
        P = cfg.eors_lanes
        cases = [random_task(rng, cfg) for _ in range(30)]
        cases += [(d, b) for _, d, b in real_tasks(records, cfg, 2, rng)]
        seen_on = 0
        for desc, bufs in cases:
            desc = dict(desc, eors_key=int(rng.integers(0, 1 << 16)))
            exp = Speculator.model(desc, bufs, cfg)
            counts = core_model.eors_counts(desc, bufs, cfg)
            A, _, _ = core_model.operands(desc, bufs)
            nnz = (A & 0x7FFF) != 0
            assert [e - s for s, e in exp["rows"]] == nnz.sum(axis=1).tolist()
            assert exp["rows"][0][0] == 0 and all(
                exp["rows"][i][1] == exp["rows"][i + 1][0] for i in range(len(exp["rows"]) - 1))
            a, boff = exp["entries"]
            assert a.tolist() == A[nnz].tolist() and boff.tolist() == np.nonzero(nnz)[1].tolist()
            if not core_model.eors_active(desc):
                assert exp["mask"] is None and exp["words"] is None and exp["cycles"] == 0
                continue
            seen_on += 1
            want = core_model.active_outputs(desc, bufs, A, cfg.eors, P)
            np.testing.assert_array_equal(exp["mask"], want)
            N = desc["n"]
            bits = np.array([[(int(w) >> p) & 1 for w in row for p in range(P)] for row in exp["words"]],
                            dtype=bool)
            np.testing.assert_array_equal(bits[:, :N], want)
            # the sampled bits: predicted zero only, as many as the core model counts
            samp = np.array([[(int(w) >> (P + p)) & 1 for w in row for p in range(P)]
                             for row in exp["words"]], dtype=bool)
            np.testing.assert_array_equal(samp[:, :N], exp["sampled"])
            assert not (samp & bits).any() and counts["sampled"] == int(exp["sampled"].sum())
            if not cfg.eors_sample_log2:
                assert not samp.any()
            G = -(-N // P)
            b = int(bool(desc["bias"]) and cfg.eors.use_bias and cfg.eors.rel is None)
            assert exp["cycles"] == G * np.maximum(nnz.sum(axis=1) + b, 1).sum()
        assert seen_on > 10


def test_parameters_are_validated():
    """Refusals name the parameter and show the value; nothing half-built is left."""
    import gc
    from amaranth.hdl import Fragment
    Fragment.get(EorsPredictor(2), None)    # an elaboration turns the unused-warning on
    g = Geometry()
    cases = [
        (lambda: Speculator(12), TypeError, "config must be a CoreConfig or a Geometry, not 12"),
        (lambda: Speculator(g, 3), ValueError, "eors_lanes must be a power of two, not 3"),
        (lambda: Speculator(g, 128), ValueError, "eors_lanes must be in 2..64, not 128"),
        (lambda: Speculator(g, 16, "x"), TypeError, "eors must be a EorsParams, not 'x'"),
        (lambda: Speculator(CoreConfig(), 16), TypeError,
         "eors_lanes and params come from the CoreConfig; got eors_lanes=16, params=None as well"),
    ]
    for make, exc, msg in cases:
        with pytest.raises(exc) as info:
            make()
        assert str(info.value) == msg
    gc.collect()
    for s, want in ((Speculator(g, 8, EorsParams(m=0, threshold=0)), (8, 0, g)),
                    (Speculator(CoreConfig(eors_lanes=4)), (4, 3, Geometry()))):
        assert (s.lanes, s.params.m, s.config.geom) == want
        Fragment.get(s, None)


def test_contract_documented():
    doc = Speculator.__doc__
    for word in ("Latency and throughput", "Ports", "Parameters", "ceil(N / P)", "docs/eors.md"):
        assert word in doc
    assert Speculator.latency == 4 + EorsPredictor.latency
    assert callable(Speculator.model)
