"""The compute core on generated Verilog against its bit-exact model, both simulators."""

import numpy as np
import pytest

import harness
from ganpu.core import Core, Geometry
from ganpu.core import model
from ganpu.core.descriptor import Error


# Verilator takes the long random sweep; Icarus runs every bench, with fewer tasks.
TASKS = {"verilator": 40, "icarus": 6}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_core(sim):
    ntasks = max(1, int(TASKS[sim] * harness.scale()))
    harness.run(sim, Core(lanes=4), "ganpu_core", "tb_core",
                env={"GANPU_SEED": 11, "GANPU_TASKS": ntasks,
                     "GANPU_ERRORS": 1 if sim == "verilator" else 0})


def test_parameters_are_validated():
    with pytest.raises(ValueError, match=r"lanes must be an integer in 1\.\.16, not 0"):
        Core(lanes=0)
    with pytest.raises(ValueError, match=r"a_bits must be an integer in 1\.\.16, not 20"):
        Geometry(a_bits=20)
    with pytest.raises(TypeError, match="geom must be a Geometry"):
        Core(geom=12)


def test_model_check_order():
    """The model's checker reports the first failing check (the hardware's order)."""
    g = Geometry()
    desc = dict(op=3, act=3, m=0, n=1, k=1, a_base=0, a_sm=0, a_sk=0, b_base=0, b_sn=0,
                b_sk=0, o_base=0, o_sm=0, o_sn=0, bias_base=0)
    assert model.check(desc, g) == Error.BAD_OP
    assert model.check({**desc, "op": 0}, g) == Error.BAD_ACT
    assert model.check({**desc, "op": 0, "act": 0}, g) == Error.ZERO_DIM
    assert model.check({**desc, "op": 0, "act": 0, "m": 1}, g) == Error.OK


@pytest.fixture(scope="module")
def real_step():
    """Every gemm of one training step of the reference MLP GAN (batch 32)."""
    from ganpu.gan.export import export_layers
    return export_layers(net="mlp", steps=(0,), batch=32, seed=0)


def test_core_model_equals_golden_layers(real_step):
    """The core's task model, fed the lowered tasks, reproduces every layer result of
    a real training step (outputs and masks): the core's order is the model's."""
    from ganpu.core.tasks import record_tasks
    g = Geometry()
    assert len(real_step) >= 30
    for key, rec in real_step.items():
        out = np.zeros_like(rec["out"])
        mask = np.zeros_like(rec["mask_out"])
        for desc, loads, (m0, m1) in record_tasks(rec, g):
            bufs = {k: np.zeros(g.depth(k if k in ("a", "b", "out", "bias") else "mask"), np.uint16)
                    for k in ("a", "b", "bias", "mask_in", "out", "mask_out")}
            for name, (base, v) in loads.items():
                bufs[name][base:base + len(v)] = v
            err, new = model.run_task(desc, bufs, g)
            assert err == Error.OK, key
            n = desc["n"]
            out[m0:m1] = new["out"][:(m1 - m0) * n].reshape(m1 - m0, n)
            mask[m0:m1] = new["mask_out"][:(m1 - m0) * n].reshape(m1 - m0, n).astype(bool)
        np.testing.assert_array_equal(out, rec["out"], err_msg=key)
        np.testing.assert_array_equal(mask, rec["mask_out"], err_msg=key)


def _real_tasks(real_step, keys):
    from ganpu.core.tasks import record_tasks
    tasks = []
    for key in keys:
        for desc, loads, (m0, m1) in record_tasks(real_step[key], Geometry()):
            tasks.append((f"{key}[{m0}:{m1}]", desc, loads))
    return tasks


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_core_real_step(sim, real_step, tmp_path):
    """Real tensors on the generated Verilog: every FC gemm of a training step on
    Verilator; one layer's FP, BP, WG and db on Icarus."""
    import pickle
    if sim == "verilator":
        keys = list(real_step)
    else:
        keys = [k for k in real_step if k.startswith("s0/g_update/G.fc2/")]
        assert len(keys) == 4, keys
    taskfile = tmp_path / "tasks.pkl"
    taskfile.write_bytes(pickle.dumps(_real_tasks(real_step, keys)))
    harness.run(sim, Core(lanes=4), "ganpu_core", "tb_core_tasks",
                env={"GANPU_TASKFILE": taskfile, "GANPU_RESULTS": tmp_path / "cycles.json"})
