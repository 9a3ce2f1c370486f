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
* MLP GAN training steps on ``ganpu sim`` as ``ganpu train --device sim`` runs them
  (:func:`mlp_step`: the program with its weight updates, GBUF of 2^19 words): per
  step wall seconds, the simulator's and the driver's CPU seconds and the processor's
  cycles, then the device's weights compared bit for bit with the golden model's.
"""

import json
import os
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["synthetic_program", "bench_sim", "print_report", "native_cycles",
           "cocotb_path_cycles", "mlp_step", "PhaseMeter"]


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


def _proc_cpu(pid):
    """CPU seconds (user + system) of process ``pid`` so far (Linux ``/proc``), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class PhaseMeter:
    """Splits a :class:`~ganpu.gan.train.DeviceTrainer` step on ``ganpu sim`` into its
    link phases, each with the simulator's core cycles by processor state
    (:meth:`ganpu.sim.native.Server.snapshot`) and the link's frames and bytes each way
    (:class:`~ganpu.host.link.LinkBusTransport`'s ``stats``): ``data`` (the step's
    inputs written), ``program`` (records, policy, start), ``run`` (the waits for
    DONE or a PAUSE: STATE polls), ``pause`` (from a PAUSE seen to the resume: the
    pause's reads, host math, writes), ``finish`` (after DONE: counters, losses'
    reads, writes for the next step). Deterministic but for the cycles that pass while
    the host thinks (time runs on while the host owes the device nothing only until
    ``--settle``)."""

    def __init__(self, trainer):
        from ..processor.program import State
        self.server, drv = trainer.server, trainer.drv.driver
        self.stats = drv.t.stats
        self.phases, self._open = [], None
        load, wait = drv.load_program, drv.wait

        async def load_program(*a, **kw):
            self.mark("program")
            return await load(*a, **kw)

        async def metered_wait(*a, **kw):
            self.mark("run")
            s = await wait(*a, **kw)
            self.mark("pause" if s == State.PAUSED else "finish")
            return s

        drv.load_program, drv.wait = load_program, metered_wait

    def _now(self):
        return {**self.server.snapshot(), "frames": self.stats["frames"],
                "tx_bytes": self.stats["tx_bytes"], "rx_bytes": self.stats["rx_bytes"]}

    def mark(self, name):
        """Close the open phase and open ``name`` (None: none)."""
        now = self._now()
        if self._open is not None:
            what, then = self._open
            self.phases.append({"phase": what, **{k: now[k] - then.get(k, 0) for k in now}})
        self._open = None if name is None else (name, now)

    def step(self, trainer, sync=False):
        """``trainer.step(sync)`` with its phases appended to :attr:`phases`."""
        self.mark("data")
        try:
            return trainer.step(sync=sync)
        finally:
            self.mark(None)

    @staticmethod
    def summary(phases):
        """The phases summed by name: ``{name: {"count", "cycles", state..., bytes...}}``."""
        out = {}
        for p in phases:
            o = out.setdefault(p["phase"], {"count": 0})
            o["count"] += 1
            for k, v in p.items():
                if k != "phase":
                    o[k] = o.get(k, 0) + v
        return out


def mlp_step(config="sim", batch=32, seed=0, log=print, binary=None, gbuf_bits=19, steps=2,
             phases=False, server_kw=None):
    """MLP GAN training steps on ``ganpu sim`` as ``ganpu train --device sim`` runs them
    (:class:`ganpu.gan.train.DeviceTrainer`: the step's program with its UPDATE records,
    weights, masters and momenta kept on the device, ``gbuf_bits`` GBUF address bits):
    ``steps`` steps, the first of which also writes the weights. Per step: wall seconds,
    the simulator's CPU seconds and the driver's (this process), the processor's CYCLES
    counter, and with ``phases`` the step's link phases (:class:`PhaseMeter`: simulated
    cycles by state, frames, bytes; the snapshots cost round trips of their own, so
    the step's times are not comparable with those of a run without it).
    ``server_kw``: options of the simulator (:class:`ganpu.sim.native.Server`). Then the device's weights are read back (not timed) and compared bit for
    bit with the golden model's after as many ``GAN.step``. ``binary``: a simulator
    already built for the config (default: :func:`ganpu.sim.native.build`'s)."""
    import resource
    from ..gan import GAN, TrainConfig
    from ..gan.train import DeviceTrainer
    from ..host.compiler import HostStep
    from ..bench_train import _mismatches

    def host_cpu():
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    tc = TrainConfig(batch=batch, seed=seed)
    hw, ref = GAN(tc), GAN(tc)
    t_build = time.monotonic()
    with DeviceTrainer(hw, "sim", config, gbuf_bits=gbuf_bits, binary=binary, log=log,
                       server_kw=server_kw) as tr:
        build_s = time.monotonic() - t_build
        server, pid = tr.server, tr.server.proc.pid
        meter = PhaseMeter(tr) if phases else None
        per_step = []
        for i in range(steps):
            w0, h0, s0 = time.monotonic(), host_cpu(), _proc_cpu(pid)
            if meter is not None:
                first = len(meter.phases)
                losses = meter.step(tr)
            else:
                losses = tr.step(sync=False)
            w1, h1, s1 = time.monotonic(), host_cpu(), _proc_cpu(pid)
            per_step.append({"wall_seconds": round(w1 - w0, 3),
                             "sim_cpu_seconds": None if s0 is None else round(s1 - s0, 3),
                             "host_cpu_seconds": round(h1 - h0, 3),
                             "device_cycles": tr.counters[-1]["cycles"], "losses": losses})
            if meter is not None:
                per_step[-1]["phases"] = PhaseMeter.summary(meter.phases[first:])
            if log:
                log(f"step {i + 1}/{steps}: {per_step[-1]}")
            if ref.step() != losses:
                raise AssertionError(f"step {i + 1}: losses {losses} differ from the golden model's")
        # the device's weights, masters and momenta back into the GAN (not timed)
        gbuf = np.zeros(tr.cfg.gbuf_depth, np.uint16)
        for name in (n for p in tr.program.params for n in (p, p + "32", p + "v")):
            base, shape = tr.program.tensors[name]
            gbuf[base:base + int(np.prod(shape))] = tr.drv.read_gbuf(base, int(np.prod(shape)))
        HostStep(tr.program, hw).sync(gbuf)
    (cycles, seconds), = server.sessions[-1:]
    last = per_step[-1]
    return {"config": config, "gbuf_bits": gbuf_bits, "batch": batch, "steps": per_step,
            # the steady step (the last: the first also writes the weights)
            "wall_seconds": last["wall_seconds"], "sim_cpu_seconds": last["sim_cpu_seconds"],
            "host_cpu_seconds": last["host_cpu_seconds"], "step_cycles": last["device_cycles"],
            # the simulator's whole session (all steps, the weights' writes and reads)
            "sim_cycles": cycles, "sim_seconds": seconds,
            "sim_breakdown": server.breakdown[-1] if server.breakdown else {},
            "build_seconds": round(build_s, 1) if binary is None else 0.0,
            "mismatches": _mismatches(ref, hw)}


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
        sim_cpu = f"{s['sim_cpu_seconds']:.2f}" if s["sim_cpu_seconds"] is not None else "?"
        print(f"MLP GAN training step (batch {s['batch']}, config {s['config']}, GBUF "
              f"{s['gbuf_bits']} bits, step {len(s['steps'])} of {len(s['steps'])}): "
              f"{s['wall_seconds']:.2f} s wall, {s['step_cycles']:,} processor cycles, "
              f"simulator {sim_cpu} s CPU, driver {s['host_cpu_seconds']:.2f} s CPU; weights "
              f"differing from the golden model's: {len(s['mismatches'])}", file=file)
