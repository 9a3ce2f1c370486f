"""HostMux on generated Verilog (with every buffer's block RAM), both simulators: a
random cycle-by-cycle stream of host reads, writes, refused writes and task writes
against a model of the buffers (read latency, err rules, task ownership), with the
one-element host port (in the core's unit design), a four-element one with two buffer
sets (alone; Icarus also a one-element port with two sets)."""

import dataclasses
import pickle

import numpy as np
import pytest

import harness
import units
from blockwrap import WithMemories
from unitcases import SMALL
from ganpu.core import Buf
from ganpu.core.buffers import memory_shape, per_set
from ganpu.core.host_mux import HostMux, TASK_WRITTEN

CYCLES = {"verilator": 20000, "icarus": 3000}
# the wide host port: four elements per access, BIAS/BW words of eight (two parts each),
# and two buffer sets (docs/core.md, "Two buffer sets")
WIDE = dataclasses.replace(SMALL, eors_lanes=8, host_words=4, buffer_sets=2)
SETS = dataclasses.replace(SMALL, buffer_sets=2)


def random_ops(rng, cfg, count):
    ops, busy, task_set = [], 0, 0
    for t in range(count):
        if rng.random() < 0.01:
            busy ^= 1
            if busy and cfg.buffer_sets > 1:
                task_set = int(rng.integers(0, 2))
        buf = int(rng.choice([b.value for b in Buf] + [7]))
        depth = cfg.host_depth(Buf(buf)) if buf != 7 else 16
        addr = int(rng.integers(0, depth + 3)) if rng.random() < 0.1 else int(rng.integers(0, depth))
        task = {}
        for b in TASK_WRITTEN:
            task[b.name] = (int(busy and rng.random() < 0.5), int(rng.integers(0, cfg.depth(b))),
                            int(rng.integers(0, 1 << (1 if b.name.startswith("MASK") else 16))))
        W = cfg.host_words
        we = int(rng.integers(1, 1 << W)) if rng.random() < 0.5 else 0
        wdata = sum(int(rng.integers(0, 1 << 16)) << (16 * j) for j in range(W))
        ops.append(dict(buf=buf, addr=addr, we=we, wdata=wdata, busy=busy, run=busy,
                        clear=int(rng.random() < 0.02), task=task, task_set=task_set))
    return ops


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_host_mux(sim, tmp_path):
    rng = np.random.default_rng(10)
    ops = random_ops(rng, SMALL, int(CYCLES[sim] * harness.scale()))
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": SMALL, "ops": ops}))
    units.run(sim, "host_mux", case)


def _alone(cfg):
    """The HostMux with its block RAMs (one per set of a :func:`per_set` buffer)."""
    rams = {}
    for b in Buf:
        for name in [b.name.lower()] + ([f"{b.name.lower()}_set1"] if per_set(cfg, b) else []):
            rams[name] = (*memory_shape(cfg, b), [f"{name}_rd", f"{name}_wr"])
    return WithMemories(HostMux(cfg), rams)


@pytest.mark.parametrize("sim,cfg", [(sim, "wide") for sim in harness.SIMULATORS] + [("icarus", "sets")])
def test_host_mux_wide(sim, cfg, tmp_path):
    """Four elements per host access and two buffer sets (and, on Icarus, two sets
    with the one-element port): the HostMux alone with its block RAMs."""
    cfg = {"wide": WIDE, "sets": SETS}[cfg]
    rng = np.random.default_rng(11)
    ops = random_ops(rng, cfg, int(CYCLES[sim] * harness.scale() / 4))
    case = tmp_path / "case.pkl"
    case.write_bytes(pickle.dumps({"config": cfg, "ops": ops}))
    harness.run(sim, _alone(cfg), f"ganpu_host_mux_w{cfg.host_words}_p{cfg.eors_lanes}_s{cfg.buffer_sets}",
                "tb_host_mux", env={"GANPU_CASE": case, "GANPU_PREFIX": ""})


def test_host_mux_accepts():
    """The write rule's model: range over every set, and while busy only the running
    set refuses (always, with one set)."""
    d = SETS.depth(Buf.A)
    assert HostMux.accepts(SETS, Buf.A.value, 2 * d - 1, busy=1, task_set=0)
    assert not HostMux.accepts(SETS, Buf.A.value, d - 1, busy=1, task_set=0)
    assert HostMux.accepts(SETS, Buf.A.value, d - 1, busy=0, task_set=0)
    assert not HostMux.accepts(SETS, Buf.A.value, 2 * d, busy=0)
    assert not HostMux.accepts(SETS, 7, 0, busy=0)
    assert not HostMux.accepts(SMALL, Buf.A.value, 0, busy=1, task_set=1)
    assert not HostMux.accepts(SMALL, Buf.A.value, d, busy=0)


def test_host_mux_parameters():
    with pytest.raises(TypeError, match=r"config must be a CoreConfig, not None"):
        HostMux(None)


def test_host_words_messages():
    from ganpu.core import CoreConfig, Geometry
    with pytest.raises(ValueError, match=r"host_words must be a power of two, not 3"):
        CoreConfig(host_words=3)
    with pytest.raises(ValueError, match=r"host_words must be in 1\.\.16, not 32"):
        CoreConfig(host_words=32)
    with pytest.raises(TypeError, match=r"host_words must be an int, not '4'"):
        CoreConfig(host_words="4")
    with pytest.raises(ValueError, match=r"host_words=8 is wider than a BIAS/BW word: eors_lanes=4"):
        CoreConfig(eors_lanes=4, host_words=8)
    with pytest.raises(ValueError, match=r"host_words=4 is wider than a buffer: a_bits=1 < "
                                         r"log2\(host_words\) = 2"):
        CoreConfig(eors_lanes=4, host_words=4, geom=Geometry(a_bits=1))
