"""EORS self-calibration on the whole core (``docs/eors.md``, "Self-calibration"):
sampling, the per-task level and the four counters, on generated Verilog against the
model, both simulators (``tb_eors_core.py`` says what is checked). The bench reads
back every buffer a task writes after each task, so the buffers are kept small.

Tasks: random FC FP tasks (ReLU with EORS mostly; every operand class including
Inf/NaN, subnormals, tiny and large values; random per-task level ``eors_rel``;
tasks without EORS between them) and real FP ReLU gemms of the MLP GAN. Verilator runs
16 EORS lanes (the default P) on 1K-element buffers, Icarus the small core of
``test_core.py``. Both sample at a high rate (1 in 2**r with the smallest r the lanes
allow) so that the run reaches every counter, false zeros included.
"""

import pickle
from dataclasses import replace

import numpy as np
import pytest

import harness
import tb_eors
from ganpu.core import Core, CoreConfig, Geometry
from ganpu.core import model as core_model
from ganpu.core.descriptor import Act, Error
from ganpu.host import lower
from ganpu.model.eors import EorsParams

SCALE = EorsParams(threshold=0, rel=9)
CONFIGS = {
    "verilator": CoreConfig(lanes=4, eors=SCALE, eors_sample_log2=4, geom=Geometry(
        a_bits=10, b_bits=11, out_bits=10, bias_bits=7, mask_bits=10)),
    "icarus": CoreConfig(lanes=2, eors_lanes=4, eors=SCALE, eors_sample_log2=2, geom=Geometry(
        a_bits=10, b_bits=10, out_bits=10, bias_bits=6, mask_bits=10)),
}
RANDOM_TASKS = {"verilator": 16, "icarus": 8}
REAL_ROWS = {"verilator": 6, "icarus": 3}
# levels of the real tasks: the configured one (eors_rel = 0) and a task's own
REAL_LEVELS = {"verilator": (0, 7), "icarus": (12,)}


def random_task(rng, cfg):
    """``(desc, loads)``: an FC FP task of random size and operand class."""
    g, P = cfg.geom, cfg.eors_lanes
    while True:
        M = int(rng.integers(1, 9))
        K = int(rng.integers(1, 49))
        N = int(rng.integers(1, 3 * P + 2))
        if M * K <= g.depth("a") and N * K <= g.depth("b") and M * N <= g.depth("mask") and \
                -(-N // P) * P <= g.depth("bias") and -(-N // P) * K <= g.depth("b") // P:
            break
    # "tiny": every term below the predictor's LSB but the exact sum a binary16 value,
    # so predicted zero and often a false zero (what sampling must see)
    tiny = rng.random() < 0.3
    x = np.stack([tb_eors.operands(rng, K, 3 if tiny else int(rng.choice(4, p=[0.2, 0.5, 0.1, 0.2])))
                  for _ in range(M)])
    x[rng.random((M, K)) < float(rng.choice([0.0, 0.3, 0.7]))] = 0
    w = tb_eors.operands(rng, N * K, 3 if tiny else int(rng.choice([0, 1, 1, 1, 3]))).reshape(N, K)
    b = tb_eors.operands(rng, N, int(rng.choice([1, 1, 3])))
    act = Act.RELU if rng.random() < 0.85 else Act.IDENTITY
    desc, loads = lower.fc_fp(x, w, b, act=act, eors=rng.random() < 0.9, eors_lanes=P)
    desc["eors_rel"] = int(rng.choice([0, int(rng.integers(1, 32))]))
    desc["bias"] = int(rng.random() < (0.2 if tiny else 0.8))
    assert core_model.check(desc, g, P) == Error.OK
    return desc, loads


def real_tasks(cfg, rows, rng, levels=(0, 7)):
    """Tasks of real FP ReLU gemms of the MLP GAN: ``rows`` random rows of each, weights
    cut to a leading block where the buffers are small, at each of ``levels``."""
    from ganpu.gan.export import export_layers
    from ganpu.host.tasks import record_tasks
    g, P = cfg.geom, cfg.eors_lanes
    recs = export_layers(net="mlp", steps=(0,), batch=32, seed=0)
    out = []
    for key, rec in recs.items():
        if rec["epi_phase"] != "fp" or rec["act"] != "relu":
            continue
        A, B = np.asarray(rec["A"]), np.asarray(rec["B"])
        K = min(A.shape[1], g.depth("a") // rows, g.depth("b") // P // 2)
        N = min(B.shape[0], g.depth("bias"), g.depth("mask") // rows, g.depth("out") // rows,
                P * (g.depth("b") // P // K), g.depth("b") // K)
        pick = np.sort(rng.choice(A.shape[0], rows, replace=False))
        sub = dict(rec, A=A[pick, :K], B=B[:N, :K], init=np.asarray(rec["init"])[:N], mask_in=None)
        for level in levels:
            for desc, loads, _ in record_tasks(sub, g, eors=True, eors_lanes=P):
                out.append((f"{key}[{N}x{K}] rel {level}", dict(desc, eors_rel=level), loads))
    assert out, "the MLP export has no FP ReLU gemm"
    return out


def tasks_for(sim):
    cfg = CONFIGS[sim]
    rng = np.random.default_rng(41)
    tasks = [(f"random{i}", *random_task(rng, cfg))
             for i in range(max(1, int(RANDOM_TASKS[sim] * harness.scale())))]
    tasks += real_tasks(cfg, REAL_ROWS[sim], rng, REAL_LEVELS[sim])
    # each task its own sampling key (docs/eors.md, "Sampling"), one near the wrap
    keys = rng.integers(0, 1 << 16, len(tasks)).tolist()
    keys[0] = 0xFFFF
    return [(name, dict(desc, eors_key=int(key)), loads) for (name, desc, loads), key in zip(tasks, keys)]


def _model_totals(tasks, cfg):
    """The counters the model gives over the run."""
    bufs = cfg.zero_buffers()
    totals = dict.fromkeys(core_model.EORS_COUNTERS, 0)
    for _, desc, loads in tasks:
        for name, (base, v) in loads.items():
            bufs[name][base:base + len(v)] = v
        counts = core_model.eors_counts(desc, bufs, cfg)
        for k in totals:
            totals[k] += counts[k]
        _, bufs = core_model.run_task(desc, bufs, cfg.geom, cfg.eors, cfg.eors_lanes)
    return totals


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_eors_core(sim, tmp_path):
    from ganpu.sim.cocotb_transport import config_env
    cfg = CONFIGS[sim]
    tasks = tasks_for(sim)
    totals = _model_totals(tasks, cfg)
    # the run must reach every counter, false zeros included
    assert all(v > 0 for v in totals.values()), totals
    taskfile = tmp_path / "tasks.pkl"
    taskfile.write_bytes(pickle.dumps(tasks))
    harness.run(sim, Core(cfg), "ganpu_core_calib", "tb_eors_core",
                env={**config_env(cfg), "GANPU_TASKFILE": taskfile})


def test_counts_follow_the_definitions():
    """eors_counts against its definition on real tasks: predicted live split by the
    exact ReLU condition, sampled outputs predicted zero, one in 2**r of the words."""
    cfg = CONFIGS["icarus"]
    rng = np.random.default_rng(5)
    tasks = real_tasks(cfg, 8, rng)
    sampled = words = 0
    for _, desc, loads in tasks:
        bufs = cfg.zero_buffers()
        for name, (base, v) in loads.items():
            bufs[name][base:base + len(v)] = v
        desc = dict(desc, eors_key=int(rng.integers(0, 1 << 16)))
        counts = core_model.eors_counts(desc, bufs, cfg)
        _, after = core_model.run_task(desc, bufs, cfg.geom, cfg.eors, cfg.eors_lanes)
        M, N = desc["m"], desc["n"]
        live = after["mask_in"][:M * N].astype(bool)
        pos = after["mask_out"][:M * N].astype(bool)
        assert counts["live"] == int(pos.sum()) and not (pos & ~live).any()
        assert counts["live"] + counts["false_live"] == int(live.sum())
        assert counts["false_zero"] <= counts["sampled"] <= int((~live).sum())
        sampled += counts["sampled"]
        words += int((~live).sum())
    # about one predicted zero in 2**r is sampled
    r = cfg.eors_sample_log2
    assert abs(sampled / words - 2 ** -r) < 0.3 * 2 ** -r, (sampled, words)


def test_level_field_changes_the_prediction():
    """``eors_rel`` 0 keeps the configured level; another level predicts differently;
    in absolute mode the field is ignored."""
    cfg = CONFIGS["icarus"]
    rng = np.random.default_rng(8)
    (_, desc, loads), = real_tasks(cfg, 8, rng)[:1]
    bufs = cfg.zero_buffers()
    for name, (base, v) in loads.items():
        bufs[name][base:base + len(v)] = v
    A, _, _ = core_model.operands(desc, bufs)

    def live(d, params):
        return core_model.active_outputs(d, bufs, A, params, cfg.eors_lanes)
    same = live(dict(desc, eors_rel=0), cfg.eors)
    np.testing.assert_array_equal(same, live(dict(desc, eors_rel=cfg.eors.rel), cfg.eors))
    assert live(dict(desc, eors_rel=2), cfg.eors).sum() > same.sum() > \
        live(dict(desc, eors_rel=20), cfg.eors).sum()
    absolute = replace(cfg.eors, rel=None)
    np.testing.assert_array_equal(live(dict(desc, eors_rel=0), absolute),
                                  live(dict(desc, eors_rel=20), absolute))


def test_sample_rate_is_validated():
    with pytest.raises(ValueError, match=r"^eors_sample_log2 must be in 0\.\.16, not 17$"):
        CoreConfig(eors_sample_log2=17)
    with pytest.raises(TypeError, match=r"^eors_sample_log2 must be an int, not 2\.0$"):
        CoreConfig(eors_sample_log2=2.0)
    with pytest.raises(ValueError, match=r"^eors_sample_log2=3 samples more than one output "
                                         r"of a word of eors_lanes=16$"):
        CoreConfig(eors_sample_log2=3)
