"""The weight-update unit: SGD with momentum on binary32 masters (``docs/update.md``)."""

import numpy as np

from amaranth.hdl import Module, Signal
from amaranth.lib import data, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from ..arith.add import Fp32Add
from ..arith.mul32 import Fp32Mul
from ..arith.narrow import Fp32ToFp16
from ..arith.widen import Fp16ToFp32
from ..core.config import CheckedComponent, check_int
from ..delay import delay

__all__ = ["UpdateUnit", "param_layout", "result_layout", "hyper_layout"]


def param_layout():
    """One parameter in: master ``w`` and momentum ``v`` (binary32 bits), gradient ``g``
    (binary16 bits, loss-scaled as the core's WG produced it)."""
    return data.StructLayout({"w": 32, "v": 32, "g": 16})


def result_layout():
    """One parameter out: new master ``w``, new momentum ``v`` (binary32 bits) and the
    binary16 working copy ``w16`` (RNE of the new master)."""
    return data.StructLayout({"w": 32, "v": 32, "w16": 16})


def hyper_layout():
    """Hyperparameters (binary32 bits): learning rate ``lr``, momentum ``mu``,
    ``inv_scale`` (the inverse of the power-of-two loss scale)."""
    return data.StructLayout({"lr": 32, "mu": 32, "inv_scale": 32})


class UpdateUnit(CheckedComponent):
    """SGD with momentum, one parameter per cycle, bit for bit :func:`ganpu.model.sgd.update`.

    Per parameter, in the golden model's order, each operation binary32 RNE with the
    canonical NaN::

        g   = widen(g16) x inv_scale      Fp16ToFp32, Fp32Mul
        v'  = mu x v + g                  Fp32Mul (beside the first), Fp32Add
        w'  = w + -(lr x v')              Fp32Mul, Fp32Add (sign of the product flipped)
        w16 = narrow(w')                  Fp32ToFp16

    Three binary32 multipliers, two adders, a widening and a narrowing, all free-running;
    ``w``, ``v'`` and ``w'`` wait beside them in delay lines. A result queue of ``depth``
    entries lets ``o`` stall: a parameter is accepted only while the queue has a free
    entry for everything in flight (a credit counter), so nothing is ever dropped.

    Timing: :attr:`pipeline` = 27 cycles from the accepting edge to the queue write;
    :attr:`latency` = 29 from a parameter accepted at cycle t to its result valid on
    ``o`` at t + 29 when the queue is empty (the buffered queue adds 2). Throughput one
    parameter per cycle while ``o`` is ready, for ``depth`` >= :attr:`full_rate_depth`;
    a smaller queue caps it at ``depth`` parameters per ``full_rate_depth`` cycles.

    ``hyper`` is read while a parameter is inside the pipeline (``inv_scale`` and ``mu``
    at its first cycle, ``lr`` 13 cycles later): hold it from the first parameter of a
    tensor until the last result has left ``o``, as the update task does.

    Parameters
    ----------
    depth : int
        Result queue entries, 1..1024 (default 32: full rate).

    Ports
    -----
    i : In(stream.Signature(param_layout()))
    o : Out(stream.Signature(result_layout()))
    hyper : In(hyper_layout())
    """

    # accept -> g: widen, then the scaling multiply; mu x v waits one cycle to meet it
    _G = Fp16ToFp32.latency + Fp32Mul.latency
    # -> v' -> lr x v' -> w' -> w16
    _V = _G + Fp32Add.latency
    _P = _V + Fp32Mul.latency
    _W = _P + Fp32Add.latency
    pipeline = _W + Fp32ToFp16.latency
    latency = pipeline + 2
    # credits return one cycle after a pop: the queue must cover the pipeline, its own
    # two cycles and that one
    full_rate_depth = pipeline + 3

    @classmethod
    def check_parameters(cls, depth=32):
        check_int("depth", depth, 1, 1024)

    def __init__(self, depth=32):
        self.depth = depth
        super().__init__({
            "i": In(stream.Signature(param_layout())),
            "o": Out(stream.Signature(result_layout())),
            "hyper": In(hyper_layout()),
        })

    @staticmethod
    def model(params, hyper):
        """Results for ``params`` (dicts of :func:`param_layout` fields, in order) under
        ``hyper`` (a dict of :func:`hyper_layout` fields): a list of
        :func:`result_layout` dicts."""
        from ..model.sgd import update
        if not len(params):
            return []
        w = np.array([p["w"] for p in params], np.uint32)
        v = np.array([p["v"] for p in params], np.uint32)
        g = np.array([p["g"] for p in params], np.uint16)
        nw, nv, w16 = update(w, v, g, np.uint32(hyper["lr"]), np.uint32(hyper["mu"]),
                             np.uint32(hyper["inv_scale"]))
        return [dict(w=int(a), v=int(b), w16=int(c)) for a, b, c in zip(nw, nv, w16)]

    def elaborate(self, platform):
        m = Module()
        p, h = self.i.payload, self.hyper

        m.submodules.queue = queue = SyncFIFOBuffered(width=result_layout().size, depth=self.depth)
        credits = Signal(range(self.depth + 1), init=self.depth)
        take = Signal()
        m.d.comb += [self.i.ready.eq(credits != 0), take.eq(self.i.valid & self.i.ready)]
        pop = self.o.valid & self.o.ready
        m.d.sync += credits.eq(credits - take + pop)

        m.submodules.widen = widen = Fp16ToFp32()
        m.submodules.scale = scale = Fp32Mul()
        m.submodules.decay = decay = Fp32Mul()
        m.submodules.vsum = vsum = Fp32Add()
        m.submodules.step = step = Fp32Mul()
        m.submodules.wsum = wsum = Fp32Add()
        m.submodules.narrow = narrow = Fp32ToFp16()

        # the arithmetic runs every cycle; only `take` marks the cycles that carry a
        # parameter, and only those reach the queue
        m.d.comb += [
            widen.i.eq(p.g),
            scale.a.eq(widen.o), scale.b.eq(h.inv_scale),
            decay.a.eq(delay(m, p.v, Fp16ToFp32.latency, name="v_d")), decay.b.eq(h.mu),
            vsum.a.eq(decay.p), vsum.b.eq(scale.p),
            step.a.eq(vsum.s), step.b.eq(h.lr),
            wsum.a.eq(delay(m, p.w, self._P, name="w_d")),
            wsum.b.eq(step.p ^ (1 << 31)),
            narrow.i.eq(wsum.s),
        ]
        out = Signal(result_layout())
        m.d.comb += [
            out.w.eq(delay(m, wsum.s, Fp32ToFp16.latency, name="wn_d")),
            out.v.eq(delay(m, vsum.s, self.pipeline - self._V, name="vn_d")),
            out.w16.eq(narrow.o),
        ]
        # the credits guarantee a free entry for every valid write
        m.d.comb += [
            queue.w_stream.valid.eq(delay(m, take, self.pipeline, name="valid_d")),
            queue.w_stream.payload.eq(out),
            self.o.valid.eq(queue.r_stream.valid),
            self.o.payload.eq(queue.r_stream.payload),
            queue.r_stream.ready.eq(self.o.ready),
        ]
        return m
