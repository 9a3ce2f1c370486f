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
    with pytest.raises(ValueError, match=r"a_bits must be in 1\.\.16, not 20"):
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


@pytest.fixture(scope="module")
def real_step_eors():
    """The same step trained with EORS on: FP ReLU records carry the model's prediction."""
    from ganpu.gan.export import export_layers
    from ganpu.model.eors import DEFAULT_EORS
    return export_layers(net="mlp", steps=(0,), batch=32, seed=0, eors=DEFAULT_EORS)


def _buffers(g):
    depth = {"a": "a", "b": "b", "bw": "b", "bias": "bias", "out": "out", "mask_in": "mask", "mask_out": "mask"}
    return {k: np.zeros(g.depth(v), np.uint16) for k, v in depth.items()}


@pytest.mark.parametrize("eors", [False, True])
def test_core_model_equals_golden_layers(real_step, real_step_eors, eors):
    """The core's task model, fed the lowered tasks, reproduces every layer result of
    a real training step (outputs and masks): the core's order is the model's. With
    EORS, the core's own prediction gives the golden model's EORS results."""
    from ganpu.host.tasks import record_tasks
    g = Geometry()
    records = real_step_eors if eors else real_step
    assert len(records) >= 30
    predicted = 0
    for key, rec in records.items():
        out = np.zeros_like(rec["out"])
        mask = np.zeros_like(rec["mask_out"])
        for desc, loads, (m0, m1) in record_tasks(rec, g, eors=eors):
            predicted += desc["eors"] and m0 == 0
            bufs = _buffers(g)
            for name, (base, v) in loads.items():
                bufs[name][base:base + len(v)] = v
            err, new = model.run_task(desc, bufs, g)
            assert err == Error.OK, key
            n = desc["n"]
            out[m0:m1] = new["out"][:(m1 - m0) * n].reshape(m1 - m0, n)
            mask[m0:m1] = new["mask_out"][:(m1 - m0) * n].reshape(m1 - m0, n).astype(bool)
        np.testing.assert_array_equal(out, rec["out"], err_msg=key)
        np.testing.assert_array_equal(mask, rec["mask_out"], err_msg=key)
    # the FP ReLU gemms (G.fc1, G.fc2, D.fc1, D.fc2 in each of the two updates) went
    # through the predictor
    assert predicted == (8 if eors else 0)


def _real_tasks(records, keys, eors):
    from ganpu.host.tasks import record_tasks
    tasks = []
    for key in keys:
        for desc, loads, (m0, m1) in record_tasks(records[key], Geometry(), eors=eors):
            tasks.append((f"{'eors ' if eors else ''}{key}[{m0}:{m1}]", desc, loads))
    return tasks


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_core_real_step(sim, real_step, real_step_eors, tmp_path):
    """Real tensors on the generated Verilog: every FC gemm of a training step on
    Verilator, plus the FP ReLU gemms again with the core's EORS prediction; on
    Icarus one layer's FP (exact and EORS), BP, WG and db."""
    import pickle
    if sim == "verilator":
        keys = list(real_step)
        eors_keys = [k for k, r in real_step_eors.items() if r["epi_phase"] == "fp" and r["act"] == "relu"]
    else:
        keys = [k for k in real_step if k.startswith("s0/g_update/G.fc2/")]
        eors_keys = ["s0/g_update/G.fc2/fp"]
        assert len(keys) == 4, keys
    tasks = _real_tasks(real_step, keys, False) + _real_tasks(real_step_eors, eors_keys, True)
    taskfile = tmp_path / "tasks.pkl"
    taskfile.write_bytes(pickle.dumps(tasks))
    harness.run(sim, Core(lanes=4), "ganpu_core", "tb_core_tasks",
                env={"GANPU_TASKFILE": taskfile, "GANPU_RESULTS": tmp_path / "cycles.json"})
    import json
    cycles = {r["name"]: r["cycles"] for r in json.loads((tmp_path / "cycles.json").read_text())}
    assert len(cycles) == len(tasks)
