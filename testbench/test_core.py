"""The compute core on generated Verilog against its bit-exact model, both simulators."""

import numpy as np
import pytest

import harness
from ganpu.core import Core, CoreConfig, Geometry
from ganpu.core import model
from ganpu.core.descriptor import Error


# Verilator takes the long random sweep on the default core; Icarus runs every bench,
# with fewer tasks, on the smallest core that still holds the benches' largest task
# (32 x 32 x 32, whose BW image needs 32/4 * 32 words of B/4) and has more than one lane
# and more than one EORS group per row. Both have two buffer sets (docs/core.md, "Two
# buffer sets"): the benches that take these cores run in set 0, the overlapped one in
# both; the one-set core is the fuzz, EORS-calibration and processor benches' core.
TASKS = {"verilator": 40, "icarus": 6}
CONFIGS = {
    "verilator": CoreConfig(lanes=4, buffer_sets=2),
    "icarus": CoreConfig(lanes=2, eors_lanes=4, buffer_sets=2, geom=Geometry(
        a_bits=10, b_bits=10, out_bits=10, bias_bits=6, mask_bits=10)),
}


def _core(sim):
    return Core(CONFIGS[sim])


def _env(sim, **env):
    from ganpu.sim.cocotb_transport import config_env
    return {**config_env(CONFIGS[sim]), **env}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_core(sim):
    ntasks = max(1, int(TASKS[sim] * harness.scale()))
    harness.run(sim, _core(sim), "ganpu_core", "tb_core",
                env=_env(sim, GANPU_SEED=11, GANPU_TASKS=ntasks,
                         GANPU_ERRORS=1 if sim == "verilator" else 0))


def test_parameters_are_validated():
    with pytest.raises(ValueError, match=r"^lanes must be in 1\.\.16, not 0$"):
        CoreConfig(lanes=0)
    with pytest.raises(ValueError, match=r"a_bits must be in 1\.\.16, not 20"):
        Geometry(a_bits=20)
    with pytest.raises(TypeError, match=r"^config must be a CoreConfig, not 12$"):
        Core(12)


def test_buffer_sets_are_validated():
    with pytest.raises(ValueError, match=r"^buffer_sets must be in 1\.\.2, not 3$"):
        CoreConfig(buffer_sets=3)
    with pytest.raises(ValueError, match=r"^buffer_sets must be in 1\.\.2, not 0$"):
        CoreConfig(buffer_sets=0)
    with pytest.raises(TypeError, match=r"^buffer_sets must be an int, not True$"):
        CoreConfig(buffer_sets=True)
    with pytest.raises(ValueError, match=r"^buffer_sets=2 needs a set bit above every buffer's "
                                         r"address in the 16-bit host address: b_bits=16 > 15$"):
        CoreConfig(buffer_sets=2, geom=Geometry(b_bits=16))
    cfg = CoreConfig(buffer_sets=2)
    with pytest.raises(ValueError, match=r"^set must be in 0\.\.1, not 2$"):
        model.run_task_in_set({}, {}, cfg, 2)
    with pytest.raises(ValueError, match=r"^a holds 4096 elements, not buffer_sets \* depth = 8192$"):
        model.run_task_in_set({}, CoreConfig().zero_buffers(), cfg, 0)


def test_two_set_model_is_one_set_per_set():
    """The two-set model is the one-set model on the set's half of each buffer, and
    leaves the other half alone; the one-set core's ports are unchanged by the option."""
    from ganpu.core.ports import HostPort, TaskPort
    from ganpu.host import lower
    import dataclasses
    two = CONFIGS["icarus"]
    one = dataclasses.replace(two, buffer_sets=1)
    rng = np.random.default_rng(6)
    x = rng.integers(0, 0x3C00, (5, 7)).astype(np.uint16)
    w = rng.integers(0, 0x3C00, (6, 7)).astype(np.uint16)
    desc, loads = lower.fc_fp(x, w, rng.integers(0, 0x3C00, 6).astype(np.uint16), eors=True,
                              eors_lanes=two.eors_lanes)
    img = {b: rng.integers(0, 1 << 16, two.host_depth(b)).astype(np.uint16) for b in two.zero_buffers()}
    for s in (0, 1):
        bufs = {b: v.copy() for b, v in img.items()}
        for name, (base, v) in loads.items():
            bufs[name][s * two.depth(name) + base:][:len(v)] = v
        err, new = Core.model(desc, bufs, two, set=s)
        half = {b: v[s * two.depth(b):(s + 1) * two.depth(b)] for b, v in bufs.items()}
        err1, new1 = Core.model(desc, half, one)
        assert err == err1 == Error.OK
        for b in new:
            d = one.depth(b)
            np.testing.assert_array_equal(new[b][s * d:(s + 1) * d], new1[b], err_msg=b)
            np.testing.assert_array_equal(new[b][(1 - s) * d:(2 - s) * d], bufs[b][(1 - s) * d:(2 - s) * d])
    assert "set" not in TaskPort(one).members and "set" in TaskPort(two).members
    assert HostPort(one).members == HostPort(two).members


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


@pytest.mark.parametrize("eors", [False, True])
def test_core_model_equals_golden_layers(real_step, real_step_eors, eors):
    """The core's task model, fed the lowered tasks, reproduces every layer result of
    a real training step (outputs and masks): the core's order is the model's. With
    EORS, the core's own prediction gives the golden model's EORS results."""
    from ganpu.host.tasks import record_tasks
    config = CoreConfig()
    g = config.geom
    records = real_step_eors if eors else real_step
    assert len(records) >= 30
    predicted = 0
    for key, rec in records.items():
        out = np.zeros_like(rec["out"])
        mask = np.zeros_like(rec["mask_out"])
        for desc, loads, (m0, m1) in record_tasks(rec, g, eors=eors):
            predicted += desc["eors"] and m0 == 0
            bufs = config.zero_buffers()
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


def _real_tasks(records, keys, eors, config):
    from ganpu.host.tasks import record_tasks
    tasks = []
    for key in keys:
        for desc, loads, (m0, m1) in record_tasks(records[key], config.geom, eors=eors,
                                                  eors_lanes=config.eors_lanes):
            tasks.append((f"{'eors ' if eors else ''}{key}[{m0}:{m1}]", desc, loads))
    return tasks


# the real tiles both simulators run in alternating buffer sets: the first generator
# layer's FP (exact and EORS), WG and db, and a BP through ReLU
OVERLAP_KEYS = ["s0/g_update/G.fc1/fp", "s0/g_update/G.fc1/wg", "s0/g_update/G.fc1/db",
                "s0/g_update/D.fc3/bp"]


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_core_real_step(sim, real_step, real_step_eors, tmp_path):
    """Real tensors on the generated Verilog. Verilator: every FC gemm of a training
    step, plus the FP ReLU gemms again with the core's EORS prediction, in set 0
    (``bench_tasks``). Both simulators: the first generator layer's FP (exact and EORS),
    WG and db, and a BP through ReLU, in alternating buffer sets, each task's operands
    loaded into the idle set while the previous task computes
    (``tb_core.overlapped_tasks``; on Icarus, whose smaller core tiles the rows, this
    is the whole real-data run)."""
    import pickle
    config = CONFIGS[sim]
    assert {real_step[k]["epi_phase"] for k in OVERLAP_KEYS} == {"fp", "bp", "wg"}
    overlapped = _real_tasks(real_step, OVERLAP_KEYS, False, config) + \
        _real_tasks(real_step_eors, OVERLAP_KEYS[:1], True, config)
    taskfile = tmp_path / "overlapped.pkl"
    taskfile.write_bytes(pickle.dumps(overlapped))
    harness.run(sim, _core(sim), "ganpu_core", "tb_core", testcase="overlapped_tasks",
                env=_env(sim, GANPU_TASKFILE=taskfile, GANPU_SEED=12))
    if sim != "verilator":
        return
    eors_keys = [k for k, r in real_step_eors.items() if r["epi_phase"] == "fp" and r["act"] == "relu"]
    tasks = _real_tasks(real_step, list(real_step), False, config) + \
        _real_tasks(real_step_eors, eors_keys, True, config)
    taskfile = tmp_path / "tasks.pkl"
    taskfile.write_bytes(pickle.dumps(tasks))
    harness.run(sim, _core(sim), "ganpu_core", "bench_tasks",
                env=_env(sim, GANPU_TASKFILE=taskfile, GANPU_RESULTS=tmp_path / "cycles.json"))
    import json
    cycles = {r["name"]: r["cycles"] for r in json.loads((tmp_path / "cycles.json").read_text())}
    assert len(cycles) == len(tasks)


def test_pack_desc_is_the_layout():
    """Packing is the descriptor layout's own const(); codes the enums do not define
    still reach their field (the checker must see them), and a value that does not
    fit names its field."""
    from ganpu.core.descriptor import descriptor_layout
    from ganpu.host.lower import fc_fp, pack_desc
    g = Geometry()
    layout = descriptor_layout(g)
    desc, _ = fc_fp(np.zeros((3, 5), np.uint16), np.zeros((7, 5), np.uint16), np.zeros(7, np.uint16))
    bits = pack_desc(desc, g)
    assert bits == layout.const(desc).as_bits()
    view = layout.from_bits(bits)
    assert (view.m, view.n, view.k, view.a_sm) == (3, 7, 5, 5)
    bad = pack_desc({**desc, "op": 3, "act": 3}, g)
    assert (bad >> layout["op"].offset) & 3 == 3 and (bad >> layout["act"].offset) & 3 == 3
    assert bad & ~((3 << layout["op"].offset) | (3 << layout["act"].offset)) == \
        bits & ~((3 << layout["op"].offset) | (3 << layout["act"].offset))
    with pytest.raises(ValueError, match=r"^Descriptor field m=16384 does not fit in 14 bits$"):
        pack_desc({**desc, "m": 1 << g.dim_bits}, g)
    with pytest.raises(ValueError, match=r"^Descriptor field slope=-1 does not fit in 16 bits$"):
        pack_desc({**desc, "slope": -1}, g)
    with pytest.raises(ValueError, match=r"^Descriptor field op=4 does not fit in 2 bits$"):
        pack_desc({**desc, "op": 4}, g)
    with pytest.raises(ValueError, match=r"^Descriptor field 'k' is missing$"):
        pack_desc({f: v for f, v in desc.items() if f != "k"}, g)
    with pytest.raises(ValueError, match=r"^Descriptor has unknown fields \['stride'\]$"):
        pack_desc({**desc, "stride": 1}, g)


class ModelTransport:
    """A transport whose 'hardware' is the task model on its own buffer image (tests
    the driver without a simulator); ``corrupt`` flips OUT[0] after each task."""

    def __init__(self, config, corrupt=False):
        from ganpu.core.descriptor import descriptor_layout
        self.config, self.corrupt = config, corrupt
        self.bufs = config.zero_buffers()
        self.layout = descriptor_layout(config.geom)

    async def write(self, buf, base, values):
        self.bufs[buf.name.lower()][base:base + len(values)] = values

    async def read(self, buf, base, count):
        return self.bufs[buf.name.lower()][base:base + count].copy()

    async def run(self, desc_bits, timeout):
        desc = {name: (desc_bits >> field.offset) & ((1 << field.width) - 1)
                for name, field in self.layout}
        err, self.bufs = model.run_task(desc, self.bufs, self.config.geom)
        self.bufs["out"][0] ^= self.corrupt
        return err, 7


def test_driver_on_a_model_transport():
    """The host driver's write/load/run/read/compare path, on a transport that runs
    the model: tasks pass, a corrupted result and a refused task are reported with
    their names, and bad buffer names or ranges are refused before any access."""
    import asyncio
    from ganpu.host import lower
    from ganpu.host.driver import CoreDriver, ModelMismatch
    from ganpu.host.transport import Transport
    Transport.register(ModelTransport)
    config = CoreConfig()
    rng = np.random.default_rng(5)
    x = rng.integers(0, 0x3C00, (4, 6)).astype(np.uint16)
    w = rng.integers(0, 0x3C00, (5, 6)).astype(np.uint16)
    desc, loads = lower.fc_fp(x, w, np.zeros(5, np.uint16))

    async def go(transport):
        drv = CoreDriver(transport, config)
        await drv.sync()
        rows = await drv.run_tasks([("fc", desc, loads)])
        out, mask = await drv.read_output(desc)
        return rows, out, mask, drv

    rows, out, mask, drv = asyncio.run(go(ModelTransport(config)))
    assert rows == [{"name": "fc", "cycles": 7}]
    _, exp = model.run_task(desc, {**config.zero_buffers(), "a": drv.shadow["a"], "b": drv.shadow["b"]},
                            config.geom)
    np.testing.assert_array_equal(out.ravel(), exp["out"][:20])
    np.testing.assert_array_equal(mask.ravel(), exp["mask_out"][:20].astype(bool))
    with pytest.raises(ModelMismatch, match=r"^fc: 1 mismatches in out, first at 0: "):
        asyncio.run(go(ModelTransport(config, corrupt=True)))
    refused = ModelTransport(config)

    async def bad_task():
        await CoreDriver(refused, config).run_tasks([("zero", {**desc, "m": 0}, {})])
    with pytest.raises(ModelMismatch, match=r"^zero: refused with <Error.ZERO_DIM: 3>$"):
        asyncio.run(bad_task())

    async def bad_access():
        drv = CoreDriver(ModelTransport(config), config)
        with pytest.raises(KeyError, match=r"Unknown buffer 'weights'; valid names: a, b, bias"):
            await drv.write("weights", 0, [1])
        with pytest.raises(ValueError, match=r"^bias\[250:260\] is outside the buffer's 256 elements$"):
            await drv.write("bias", 250, np.zeros(10))
        with pytest.raises(ValueError, match=r"^out\[-1:0\] is outside"):
            await drv.read("out", -1, 1)
    asyncio.run(bad_access())
    with pytest.raises(TypeError, match=r"^transport must be a Transport, not 3$"):
        CoreDriver(3, config)
