"""UpdateUnit on generated Verilog against :meth:`UpdateUnit.model` (which is
``ganpu.model.sgd.update``, the golden optimizer's arithmetic), both simulators:
random parameters over every binary32/binary16 class (NaN, Inf, subnormals, signed
zeros) under ordinary and extreme hyperparameters, and the real tensors of three
training steps of the digits GAN, with random valid/ready gaps and at full rate.

Verilator runs the default queue (full rate, cycle-exact latency) on the longer sweep;
Icarus a 4-entry queue, so the credit stall is exercised on every round.
"""

import gc
import pickle

import numpy as np
import pytest
from amaranth.hdl import Fragment

import harness
import updatecases
from vectors import f16_mixed, f32_mixed
from ganpu import numerics
from ganpu.model.sgd import update
from ganpu.processor.update import UpdateUnit

SETUP = {"verilator": dict(depth=32, random=12, size=1500, real=300),
         "icarus": dict(depth=4, random=4, size=150, real=12)}


def _hyper(lr, mu, inv_scale):
    return {k: int(numerics.f32_bits(np.float32(x))) for k, x in
            (("lr", lr), ("mu", mu), ("inv_scale", inv_scale))}


# (lr, mu, inv_scale): the GAN's, plain SGD, a huge step, loss scales that push the
# gradient into the binary32 subnormals or up to overflow
HYPERS = [(0.05, 0.5, 1 / 64), (0.1, 0.0, 1.0), (3.0e38, 0.9, 1.0), (1e-3, 0.99, 2.0 ** -140),
          (0.5, 0.5, 2.0 ** 120)]
GATES = [(1.0, 1.0), (0.6, 1.0), (1.0, 0.5), (0.7, 0.3)]   # (p_in, p_out)


def random_rounds(rng, count, size):
    out = []
    for i in range(count):
        n = int(rng.integers(size // 2, size + 1))
        if i < len(HYPERS):
            hyper = _hyper(*HYPERS[i])
        else:   # any bits at all, NaN and Inf hyperparameters included
            lr, mu, sc = f32_mixed(rng, 3)
            hyper = {"lr": int(lr), "mu": int(mu), "inv_scale": int(sc)}
        w, v, g = f32_mixed(rng, n), f32_mixed(rng, n), f16_mixed(rng, n)
        p_in, p_out = GATES[i % len(GATES)]
        out.append(dict(name=f"random {i}", hyper=hyper, p_in=p_in, p_out=p_out,
                        params=[dict(w=int(a), v=int(b), g=int(c)) for a, b, c in zip(w, v, g)]))
    return out


def real_rounds(rng, per_tensor):
    """A slice of every tensor of every SGD call of three training steps, checked
    against what the golden optimizer stored (so the model is the training's update)."""
    out = []
    for i, c in enumerate(updatecases.sgd_calls()):
        n = min(per_tensor, len(c["w"]))
        s = int(rng.integers(0, len(c["w"]) - n + 1))
        sl = slice(s, s + n)
        params = [dict(w=int(a), v=int(b), g=int(d)) for a, b, d in zip(c["w"][sl], c["v"][sl], c["g"][sl])]
        golden = [dict(w=int(a), v=int(b), w16=int(d))
                  for a, b, d in zip(c["w_new"][sl], c["v_new"][sl], c["w16_new"][sl])]
        assert UpdateUnit.model(params, c["hyper"]) == golden, c["name"]
        p_in, p_out = GATES[i % len(GATES)]
        out.append(dict(name=c["name"], hyper=c["hyper"], params=params, p_in=p_in, p_out=p_out))
    return out


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_update(sim, tmp_path):
    rng = np.random.default_rng(21)
    s = SETUP[sim]
    k = harness.scale()
    rounds = (random_rounds(rng, max(len(GATES), int(s["random"] * k)), s["size"])
              + real_rounds(rng, max(1, int(s["real"] * k))))
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"depth": s["depth"], "rounds": rounds}))
    harness.run(sim, UpdateUnit(depth=s["depth"]), f"update_unit_d{s['depth']}", "tb_update",
                env={"GANPU_CASE": case})


def test_real_steps_whole_tensors():
    """Every parameter of three training steps: the model is the golden update, and
    the real data holds what the bench needs to mean something (moving weights,
    momenta carried from step to step, zero gradients)."""
    calls = updatecases.sgd_calls()
    moved = carried = zeros = 0
    for c in calls:
        h = c["hyper"]
        w, v, w16 = update(c["w"], c["v"], c["g"], h["lr"], h["mu"], h["inv_scale"])
        assert np.array_equal(w, c["w_new"]) and np.array_equal(v, c["v_new"]), c["name"]
        assert np.array_equal(w16, c["w16_new"]), c["name"]
        moved += int((w != c["w"]).sum())
        carried += int((c["v"] != numerics.FP32_NEG_ZERO).sum())
        zeros += int(numerics.is_zero16(c["g"]).sum())
    assert moved > 50_000 and carried > 50_000 and zeros > 100


def test_timing_contract():
    """The documented numbers follow from the arithmetic blocks' latencies."""
    assert UpdateUnit.pipeline == 27 and UpdateUnit.latency == 29
    assert UpdateUnit.full_rate_depth == 30
    assert "Timing" in UpdateUnit.__doc__ and "Ports" in UpdateUnit.__doc__


@pytest.mark.parametrize("bad, exc, msg", [
    (0, ValueError, "depth must be in 1..1024, not 0"),
    (2048, ValueError, "depth must be in 1..1024, not 2048"),
    ("32", TypeError, "depth must be an int, not '32'"),
])
def test_depth_rejected(bad, exc, msg):
    Fragment.get(UpdateUnit(), None)   # an elaboration turns the unused-component warning on
    with pytest.raises(exc) as info:
        UpdateUnit(bad)
    assert str(info.value) == msg
    gc.collect()


def test_full_rate_depth_is_needed():
    """Amaranth simulator: a queue of ``full_rate_depth`` takes one parameter per cycle
    with ``o`` always ready, one entry less cannot (so the figure is exact)."""
    from amaranth.sim import Simulator
    rates = {}
    for depth in (UpdateUnit.full_rate_depth - 1, UpdateUnit.full_rate_depth):
        dut = UpdateUnit(depth)
        taken = []

        async def bench(ctx, dut=dut, taken=taken):
            ctx.set(dut.o.ready, 1)
            ctx.set(dut.i.valid, 1)
            for cycle in range(120):
                if ctx.get(dut.i.ready):
                    taken.append(cycle)
                await ctx.tick()
        sim = Simulator(dut)
        sim.add_clock(1e-6)
        sim.add_testbench(bench)
        sim.run()
        rates[depth] = len(taken)
    assert rates[UpdateUnit.full_rate_depth] == 120
    assert rates[UpdateUnit.full_rate_depth - 1] < 120


def test_docs_state_the_timing():
    """docs/update.md gives the unit's numbers as the code has them."""
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "update.md").read_text()
    assert f"**Latency {UpdateUnit.latency}**" in text
    assert f"{UpdateUnit.pipeline} cycles of arithmetic" in text
    assert f"`full_rate_depth` = {UpdateUnit.full_rate_depth}" in text
    from ganpu.arith.mul32 import Fp32Mul
    assert f"Latency {Fp32Mul.latency}, one product per cycle" in text
    from ganpu.processor.update_engine import UpdateEngine as E
    # the engine's table: `done` after start for G whole groups of P parameters
    rows = [("| 1 word (`ulx3s-85f`) | 1 | 5 | 5 | `5 count + {}` |", 1, lambda count, g: 5 * count),
            ("| 2 words | 1 | 3 | 3 | `3 count + {}` |", 2, lambda count, g: 3 * count),
            ("| 4 words (`small`) | 2 | 3 | 1.5 | `3 G + {}` |", 4, lambda count, g: 3 * g),
            ("| 8 words (`sim`) | 4 | 3 | 1 | `count + {}` |", 8, lambda count, g: count)]
    for row, words, term in rows:
        p = E.group(words)
        b = E.cycles(p, words) - term(p, 1)
        assert all(E.cycles(p * g, words) == term(p * g, g) + b for g in range(1, 20))
        assert row.format(b) in text


def _engine_cfg(words):
    """``small`` with a 512-word GBUF and a ``words``-word DMA port."""
    import dataclasses
    from ganpu.processor import config
    small = config("small")
    core = dataclasses.replace(small.core, eors_lanes=max(small.core.eors_lanes, words),
                               host_words=words)
    return dataclasses.replace(small, core=core, gbuf_bits=9)


def _engine_run(cfg, gbuf, rec):
    """Run UPDATE record ``rec`` on an UpdateEngine on the DMA ports of a :class:`Gbuf`
    holding ``gbuf`` (written and read back through its bus ports) in the Amaranth
    simulator; returns (GBUF after, cycles from start to done)."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.sim import Simulator
    from ganpu.processor.gbuf import Gbuf, Owner
    from ganpu.processor.update_engine import UpdateEngine
    m = Module()
    m.submodules.engine = e = UpdateEngine(cfg)
    m.submodules.gbuf = mem = Gbuf(cfg)
    wiring.connect(m, e.gbuf_rd, mem.dma_rd)
    wiring.connect(m, e.gbuf_wr, mem.dma_wr)
    out = {}

    async def bench(ctx):
        ctx.set(mem.owner, Owner.BUS)
        for a, word in enumerate(gbuf):
            ctx.set(mem.bus_wr.addr, a)
            ctx.set(mem.bus_wr.data, int(word))
            ctx.set(mem.bus_wr.en, 1)
            await ctx.tick()
        ctx.set(mem.bus_wr.en, 0)
        ctx.set(mem.owner, Owner.DMA)
        ctx.set(e.job.rec, {"kind": 2, "deps": [{"valid": 0, "index": 0}] * cfg.deps, **rec})
        ctx.set(e.job.start, 1)
        await ctx.tick()
        ctx.set(e.job.start, 0)
        cycles = 1
        while not ctx.get(e.job.done):
            assert ctx.get(e.job.busy), "busy fell before done"
            await ctx.tick()
            cycles += 1
        assert not ctx.get(e.job.busy)
        out["cycles"] = cycles
        ctx.set(mem.owner, Owner.BUS)
        words = []
        ctx.set(mem.bus_rd.en, 1)
        for a in range(cfg.gbuf_depth):
            ctx.set(mem.bus_rd.addr, a)
            await ctx.tick()
            words.append(ctx.get(mem.bus_rd.data))
        out["mem"] = np.array(words, np.uint16)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return out["mem"], out["cycles"]


@pytest.mark.parametrize("words,count", [(1, 1), (1, 7), (2, 5), (4, 3), (4, 45),
                                         (8, 4), (8, 5), (8, 45)])
def test_update_engine(words, count):
    """UpdateEngine on a ``words``-word GBUF port in the Amaranth simulator: the GBUF
    after an UPDATE record equals the program model's (random words, every binary32
    class among them; nothing outside the record's regions written), the regions at
    any alignment, a last group full or partial, and ``done`` exactly
    :meth:`UpdateEngine.cycles` after start."""
    from ganpu.processor.update_engine import UpdateEngine
    cfg = _engine_cfg(words)
    rng = np.random.default_rng(count + 100 * words)
    gbuf = rng.integers(0, 1 << 16, cfg.gbuf_depth).astype(np.uint16)
    w = f32_mixed(rng, count)
    gbuf[3:3 + 2 * count] = np.stack([w & 0xFFFF, w >> 16], axis=1).ravel()
    bases = dict(w_base=3, v_base=4 + 2 * count, g_base=5 + 4 * count, w16_base=cfg.gbuf_depth - count)
    rec = dict(count=count, **bases, **_hyper(*HYPERS[count % len(HYPERS)]))
    got, cycles = _engine_run(cfg, gbuf, rec)
    want = UpdateEngine.model(cfg, rec, gbuf.copy())
    np.testing.assert_array_equal(got, want)
    assert cycles == UpdateEngine.cycles(count, words)


def test_update_engine_rate():
    """Cycles per parameter of a long record: 5 on a one-word port (five words each
    way), 3 on two words, 1.5 on four, 1 on eight (the unit's own rate)."""
    from ganpu.processor.update_engine import UpdateEngine
    n = 4096
    rate = {w: (UpdateEngine.cycles(2 * n, w) - UpdateEngine.cycles(n, w)) / n for w in (1, 2, 4, 8, 16)}
    assert rate == {1: 5, 2: 3, 4: 1.5, 8: 1, 16: 1}
    assert UpdateEngine.cycles(1) == 5 + UpdateUnit.latency + 9


def test_update_engine_cfg_is_validated():
    from ganpu.processor.update_engine import UpdateEngine, UpdatePort
    Fragment.get(UpdateUnit(), None)
    with pytest.raises(TypeError, match="cfg must be a ProcessorConfig, not 'small'"):
        UpdateEngine("small")
    with pytest.raises(TypeError, match="cfg must be a ProcessorConfig, not 3"):
        UpdatePort(3)
    gc.collect()
