"""cocotb bench of the HostMux (with every buffer's block RAM): a random stream of host
reads and writes, refused writes (beyond a buffer, unknown code, while busy) and task
writes is checked cycle by cycle against a model of the buffers: ``rdata`` is the
word of ``host_words`` elements addressed ``latency`` cycles earlier (one element with a
one-word port), ``err`` follows the set/clear rules (:meth:`HostMux.accepts`: with two
buffer sets a write while busy is refused only in the running task's set), ``we`` writes
each element it enables, a task writes its own set.

Environment: GANPU_CASE (pickle: ``{"config", "ops": [per-cycle dicts]}``).
"""

import cocotb
import numpy as np

from blockwrap import block_dut, load_case, run_cycles, start_clock, sig, uint
from ganpu.core import Buf
from ganpu.core.host_mux import HostMux, TASK_WRITTEN


class Model:
    """The buffers as the host sees them, and the expected port outputs."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.mem = {b: np.zeros(cfg.host_depth(b), np.uint16) for b in Buf}
        self.err = 0
        self.rdata = 0
        self.reads = []  # value read each cycle (None: unknown code, rdata holds)

    def step(self, op):
        W = self.cfg.host_words
        buf = Buf(op["buf"]) if op["buf"] in [b.value for b in Buf] else None
        depth = self.cfg.host_depth(buf) if buf is not None else 0
        base = op["addr"] & ~(W - 1)
        # a block RAM read port returns the value before this cycle's write
        self.reads.append(None if buf is None else sum(
            int(self.mem[buf][(base + j) % depth]) << (16 * j) for j in range(W)))
        ok = HostMux.accepts(self.cfg, op["buf"], op["addr"], op["busy"], op["task_set"])
        if op["clear"]:
            self.err = 0
        if op["we"] and not ok:
            self.err = 1
        if op["we"] and ok:
            for j in range(W):
                if op["we"] >> j & 1:
                    lane = op["wdata"] >> (16 * j) & 0xFFFF
                    self.mem[buf][base + j] = lane & (1 if buf.name.startswith("MASK") else 0xFFFF)
        if op["run"]:
            for b, (en, addr, data) in op["task"].items():
                if en:
                    self.mem[Buf[b]][op["task_set"] * self.cfg.depth(Buf[b]) + addr] = data


class Driver:
    def __init__(self, dut, ops, model):
        self.dut, self.ops, self.model = dut, ops, model
        self.rdata = []
        self.err = []

    def drive(self, cycle):
        d, op = self.dut, self.ops[min(cycle, len(self.ops) - 1)]
        for k in ("buf", "addr", "we", "wdata"):
            sig(d, f"host__{k}").value = op[k] if cycle < len(self.ops) else 0
        for k in ("busy", "run", "clear") + (("task_set",) if self.model.cfg.buffer_sets > 1 else ()):
            sig(d, k).value = op[k] if cycle < len(self.ops) else 0
        for b in TASK_WRITTEN:
            en, addr, data = op["task"][b.name]
            for k, v in (("en", en), ("addr", addr), ("data", data)):
                sig(d, f"{b.name.lower()}_task__{k}").value = v if cycle < len(self.ops) else 0

    def sample(self, cycle):
        r, e = sig(self.dut, "host__rdata").value, sig(self.dut, "host__err").value
        assert r.is_resolvable and e.is_resolvable, f"host mux: rdata {r} err {e} in cycle {cycle}"
        self.rdata.append(uint(r))
        self.err.append(uint(e))


@cocotb.test()
async def host_traffic(dut):
    dut = block_dut(dut)
    case = load_case()
    cfg, ops = case["config"], case["ops"]
    sets1 = [f"{b.name.lower()}_set1_load__en" for b in TASK_WRITTEN if cfg.buffer_sets > 1]
    await start_clock(dut, [f"{b.name.lower()}_load__en" for b in Buf] + sets1 +
                      [f"host__{k}" for k in ("buf", "addr", "we", "wdata")] +
                      ["busy", "run", "clear"] + [f"{b.name.lower()}_task__en" for b in TASK_WRITTEN] +
                      (["task_set"] if cfg.buffer_sets > 1 else []))
    model = Model(cfg)
    drv = Driver(dut, ops, model)
    await run_cycles(dut, [drv], lambda: len(drv.rdata) >= len(ops) + HostMux.latency,
                     len(ops) + 20, "host mux")
    lat = HostMux.latency
    rdata, err = 0, 0
    for t, op in enumerate(ops):
        model.step(op)
        # err is registered: the value after cycle t's edge is seen in cycle t + 1
        assert drv.err[t + 1] == model.err, \
            f"host mux: err {drv.err[t + 1]} after cycle {t} ({op}), model {model.err}"
        if model.reads[t] is not None:
            rdata = model.reads[t]
        assert drv.rdata[t + lat] == rdata, (
            f"host mux: rdata {drv.rdata[t + lat]:#x} in cycle {t + lat} for the read of "
            f"buf {op['buf']} addr {op['addr']:#x} in cycle {t}, model {rdata:#x}")
    dut._log.info("%d cycles of host traffic as the model says", len(ops))
