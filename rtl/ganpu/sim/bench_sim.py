"""``ganpu bench sim``: the native simulator against the cocotb path, and one MLP GAN
training step on ``ganpu sim`` (``docs/sim.md``).

* cycles/s of ``ganpu sim`` (:mod:`ganpu.sim.native`): a synthetic program (dense
  GEMMs sized to the config's buffers, every task checked against
  :meth:`Processor.model`) run several times through the real driver over
  ``socket://``; cycles are the simulator's own count, seconds its time in the cycle
  loop.
* cycles/s of the cocotb path: the same program on the same config through cocotb
  (Verilator with cocotb's flags, the driver on :mod:`ganpu.sim.cocotb_bus`; bench
  module ``bench_sim_cocotb``), timed from start to DONE.
* one MLP GAN training step (:func:`ganpu.host.compiler.run_step_driver`) on ``ganpu
  sim`` for a config whose GBUF holds the step: wall seconds, from the first GBUF write
  to the last read, every tensor compared with the program model's step.
"""

import asyncio
import json
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["synthetic_program", "bench_sim", "print_report", "native_cycles",
           "cocotb_path_cycles", "mlp_step"]


def synthetic_program(cfg, seed=0):
    """``(gbuf, records)``: independent dense FP GEMMs (ReLU, bias) as large as the
    config's core buffers allow (at most 16 x 16 x 16) and as many as the task table
    and the GBUF hold."""
    from ..core.descriptor import Act, Op
    from ..processor.program import TaskKind
    g = cfg.core.geom
    M = N = K = 16
    while M * K > g.depth("a") or N * K > g.depth("b") or M * N > min(g.depth("out"), g.depth("mask")) \
            or N > g.depth("bias"):
        M, N, K = max(1, M // 2), max(1, N // 2), max(1, K // 2)
    rng = np.random.default_rng(seed)
    a, b, bias = 0, M * K, M * K + N * K
    out0 = bias + N
    tasks = min(cfg.program_depth, (cfg.gbuf_depth - out0) // (M * N))
    if tasks < 1:
        raise ValueError(f"the GBUF of {cfg.gbuf_depth} words holds no {M}x{N}x{K} GEMM")
    gbuf = np.zeros(cfg.gbuf_depth, dtype=np.uint16)
    gbuf[:out0] = np.float16(rng.standard_normal(out0) * 0.5).view(np.uint16)
    records = [{"kind": TaskKind.GEMM.value, "op": Op.FP.value, "act": Act.RELU.value,
                "m": M, "n": N, "k": K, "bias": 1, "bias_base": bias,
                "a": {"base": a, "s0": K, "s1": 1}, "b": {"base": b, "s0": K, "s1": 1},
                "out": {"base": out0 + t * M * N, "s0": N, "s1": 1}} for t in range(tasks)]
    return gbuf, records


def _check(cfg, gbuf, records, got):
    from ..processor.processor import Processor
    _, _, _, want = Processor.model(cfg, gbuf.copy(), records)
    if not np.array_equal(got, want):
        bad = np.flatnonzero(got != want)
        raise AssertionError(f"GBUF differs from Processor.model at {bad.size} words, first {bad[0]}")


def native_cycles(config="small", reps=5, log=print):
    """``{"cycles", "seconds", "cycles_per_s", "build_seconds"}`` of ``ganpu sim`` on
    ``config`` running :func:`synthetic_program` ``reps`` times."""
    from ..host.link import connect
    from ..processor import config as named
    from ..processor.program import Policy
    from .native import Server, build

    cfg = named(config)
    binary, build_s = build(config, log=log)
    gbuf, records = synthetic_program(cfg)
    with Server(binary) as server:
        with connect(server.url, cfg, timeout=30.0) as npu:
            npu.write_gbuf(0, gbuf)
            for _ in range(reps):
                npu.run(records, Policy.TEMPORAL, polls=10**6, interval=0)
            _check(cfg, gbuf, records, npu.read_gbuf(0, cfg.gbuf_depth))
        (cycles, seconds), = server.wait_sessions(1)
    cpu = server.cpu[0]
    return {"config": config, "cycles": cycles, "seconds": seconds,
            "cycles_per_s": cycles / seconds, "cpu_seconds": cpu,
            "cycles_per_cpu_s": cycles / cpu if cpu else None,
            "build_seconds": round(build_s, 1), "tasks": len(records), "reps": reps}


def cocotb_path_cycles(config="small", cycles=20000):
    """``{"cycles", "seconds", "cycles_per_s"}`` of the cocotb path (Verilator) running
    :func:`synthetic_program` until about ``cycles`` cycles have passed."""
    from ..processor import config as named
    from ..processor.processor import Processor
    from . import runner

    cfg = named(config)
    with tempfile.TemporaryDirectory() as tmp:
        case, results = Path(tmp) / "case.pkl", Path(tmp) / "results.json"
        case.write_bytes(pickle.dumps({"cfg": cfg, "cycles": cycles}))
        runner.run("verilator", Processor(cfg), f"ganpu_processor_{config.replace('-', '_')}",
                   "bench_sim_cocotb", env={"GANPU_BENCHFILE": case, "GANPU_RESULTS": results})
        out = json.loads(results.read_text())
    out.update(config=config, cycles_per_s=out["cycles"] / out["seconds"],
               cycles_per_cpu_s=out["cycles"] / out["cpu_seconds"])
    return out


def _patient_driver():
    from ..host.processor_driver import ProcessorDriver
    from ..processor.program import State

    class PatientDriver(ProcessorDriver):
        """Polls STATE for as long as the step takes: over a socket a poll is a round
        trip of a fraction of a millisecond, so the default poll count is seconds."""

        async def wait(self, until=(State.DONE, State.PAUSED), polls=10**7, interval=16):
            return await super().wait(until, polls, interval)

    return PatientDriver


def mlp_step(config="sim", batch=32, seed=0, log=print, binary=None):
    """One MLP GAN training step on ``ganpu sim`` for ``config``: wall seconds (GBUF
    writes, the run with its pauses, reads) and the simulator's cycles; every tensor
    compared with :func:`ganpu.host.compiler.run_step`'s. ``binary``: a simulator
    already built for ``config`` (default: :func:`ganpu.sim.native.build`'s)."""
    from ..gan import GAN, TrainConfig
    from ..host.compiler import compile_gan, run_step, run_step_driver
    from ..host.link import LinkBusTransport, channel
    from ..processor import config as named
    from ..processor.program import Policy
    from .native import Server, build

    _PatientDriver = _patient_driver()
    cfg = named(config)
    build_s = 0.0
    if binary is None:
        binary, build_s = build(config, log=log)
    train = TrainConfig(batch=batch, seed=seed)
    program = compile_gan(cfg, GAN(train))
    _, want = run_step(program, GAN(train))
    import resource
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with Server(binary) as server:
        ch = channel(server.url, timeout=30.0)
        drv = _PatientDriver(LinkBusTransport(ch, timeout=30.0), cfg)
        t0 = time.monotonic()
        h0 = resource.getrusage(resource.RUSAGE_SELF)
        try:
            losses, gbuf, counters = asyncio.run(
                run_step_driver(drv, program, GAN(train), Policy.ADAPTIVE))
        finally:
            ch.close()
        wall = time.monotonic() - t0
        h1 = resource.getrusage(resource.RUSAGE_SELF)
        (cycles, seconds), = server.wait_sessions(1)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    # the simulator's whole CPU time (the only child process), load-independent
    cpu = (children.ru_utime + children.ru_stime) - (children0.ru_utime + children0.ru_stime)
    bad = [n for n in program.tensors
           if not np.array_equal(program.tensor(gbuf, n), program.tensor(want, n))]
    return {"config": config, "batch": batch, "wall_seconds": wall, "sim_cycles": cycles,
            "sim_seconds": seconds, "sim_cpu_seconds": cpu,
            # the driver's own CPU over the step (host codec, driver, step logic)
            "host_cpu_seconds": (h1.ru_utime + h1.ru_stime) - (h0.ru_utime + h0.ru_stime),
            "step_cycles": counters["cycles"], "losses": losses,
            "build_seconds": round(build_s, 1), "tensors_differing": bad}


def bench_sim(config="small", step_config="sim", batch=32, cocotb_cycles=20000, log=print):
    """All figures of ``ganpu bench sim`` as a dict (``step_config`` None: no step)."""
    log(f"ganpu sim on {config}: synthetic program")
    native = native_cycles(config, log=log)
    log(f"cocotb path on {config}: same program")
    cocotb = cocotb_path_cycles(config, cocotb_cycles)
    out = {"native": native, "cocotb": cocotb,
           "speedup": native["cycles_per_s"] / cocotb["cycles_per_s"],
           "speedup_cpu": (native["cycles_per_cpu_s"] / cocotb["cycles_per_cpu_s"]
                           if native["cycles_per_cpu_s"] else None)}
    if step_config:
        log(f"MLP GAN step (batch {batch}) on ganpu sim, config {step_config}")
        out["step"] = mlp_step(step_config, batch, log=log)
    return out


def print_report(r, file=None):
    import sys
    file = file or sys.stdout
    n, c = r["native"], r["cocotb"]
    print("| path | config | cycles | wall s | cycles/s | CPU s | cycles per CPU s |", file=file)
    print("|---|---|---|---|---|---|---|", file=file)
    for name, x in (("ganpu sim (Verilator, native)", n), ("cocotb (Verilator)", c)):
        per_cpu = f"{x['cycles_per_cpu_s']:,.0f}" if x.get("cycles_per_cpu_s") else "-"
        print(f"| {name} | {x['config']} | {x['cycles']:,} | {x['seconds']:.2f} | "
              f"{x['cycles_per_s']:,.0f} | {x.get('cpu_seconds') or 0:.2f} | {per_cpu} |", file=file)
    extra = f", per CPU second {r['speedup_cpu']:.1f}x" if r.get("speedup_cpu") else ""
    print(f"\nganpu sim / cocotb: {r['speedup']:.1f}x in wall time{extra}", file=file)
    if "step" in r:
        s = r["step"]
        print(f"MLP GAN step (batch {s['batch']}, config {s['config']}): {s['wall_seconds']:.2f} s wall, "
              f"{s['step_cycles']:,} step cycles, simulator {s['sim_cycles']:,} cycles in "
              f"{s['sim_seconds']:.2f} s ({s['sim_cpu_seconds']:.2f} s CPU), driver "
              f"{s['host_cpu_seconds']:.2f} s CPU; tensors differing from the model: "
              f"{len(s['tensors_differing'])}", file=file)
