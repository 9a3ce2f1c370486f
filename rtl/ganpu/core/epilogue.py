"""Rounding and activation of each output."""

import numpy as np

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring, stream
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out

from ..arith.narrow import Fp32ToFp16
from ..arith.mul import Fp16Mul
from ..delay import delay
from .config import Geometry, check_type, CheckedComponent
from .descriptor import Op, Act, descriptor_layout
from .model import EORS_COUNTERS
from .scanner import result_layout

__all__ = ["Epilogue", "tally_layout"]


def tally_layout():
    """One strobe per self-calibration counter (``ganpu.core.model.EORS_COUNTERS``)."""
    return data.StructLayout({name: 1 for name in EORS_COUNTERS})


class Epilogue(CheckedComponent):
    """Rounds an accumulator to binary16 and applies the activation or its derivative.

    ``z = narrow(acc)``; ``zl = narrow(z * slope)`` (LeakyReLU's negative side); the
    output and its mask bit follow the table in :mod:`ganpu.core.model` (the rule is
    defined once, in :func:`ganpu.core.model.epilogue`, which :meth:`model` calls). An
    input with ``computed = 0`` (an output skipped by its mask) becomes +0 with mask
    bit 0. In an EORS task (FP, RELU, ``eors``) a computed result with ``mask_in`` = 0
    is a sampled output (``docs/eors.md``, "Self-calibration"): also +0 with mask bit
    0, its exact result only counted.

    Free-running: always ready, one result per cycle; a result accepted at cycle t is
    written (``out_wr.en`` and ``mask_wr.en``) at cycle t + :attr:`latency`
    (narrow, multiply, narrow, output register).

    Parameters
    ----------
    geom : Geometry

    Ports
    -----
    i : In(stream.Signature(result_layout))   ``ready`` is always 1
    desc : In(descriptor_layout)              uses op, act, slope; held for the task
    out_wr : In(WritePort.Signature)          OUT: the binary16 result at ``o_addr``
    mask_wr : In(WritePort.Signature)         MASK_OUT: the mask bit at ``mask_idx``
    tally : Out(tally_layout)                 with each write of an EORS task, one-cycle
                                              strobes of the self-calibration counters
                                              (:data:`ganpu.core.model.EORS_COUNTERS`)
    """

    latency = 2 * Fp32ToFp16.latency + Fp16Mul.latency + 1

    @classmethod
    def check_parameters(cls, geom):
        check_type("geom", geom, Geometry)

    def __init__(self, geom):
        self.geom = geom
        super().__init__({
            "i": In(stream.Signature(result_layout(geom))),
            "desc": In(descriptor_layout(geom)),
            "out_wr": In(WritePort.Signature(addr_width=geom.out_bits, shape=16)),
            "mask_wr": In(WritePort.Signature(addr_width=geom.mask_bits, shape=1)),
            "tally": Out(tally_layout()),
        })

    @staticmethod
    def model(results, desc):
        """``(o_addr, o_data, mask_idx, mask_bit)`` for each result (``result_layout``
        dicts, in input order); ``desc`` needs op, act and slope."""
        from .model import epilogue
        if not results:
            return []
        acc = np.array([r["acc"] for r in results], dtype=np.uint32)
        mask_in = np.array([r["mask_in"] for r in results], dtype=bool)
        active = np.array([r["computed"] for r in results], dtype=bool)
        if desc.get("eors", 0) and desc["op"] == Op.FP.value and desc["act"] == Act.RELU.value:
            # a sampled output (computed, predicted zero) is written as not computed
            active &= mask_in
        y, bit = epilogue(acc, desc, mask_in, active)
        # the block writes +0, mask 0, for any result not computed, whatever the
        # activation (in a task only masked ReLU outputs arrive so)
        y, bit = np.where(active, y, np.uint16(0)), np.asarray(bit, bool) & active
        return [(r["o_addr"], int(v), r["mask_idx"], int(b))
                for r, v, b in zip(results, y, bit)]

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        desc = self.desc
        m.submodules.nz = nz = Fp32ToFp16()
        m.submodules.mul = mul = Fp16Mul()
        m.submodules.nl = nl = Fp32ToFp16()
        m.d.comb += self.i.ready.eq(1)

        m.d.comb += [nz.i.eq(self.i.payload.acc), mul.a.eq(nz.o), mul.b.eq(desc.slope),
                     nl.i.eq(mul.p)]
        # z is delayed to meet zl, which needs a multiply and a second rounding; the
        # result's side data travels beside all three
        side = data.StructLayout({"valid": 1, "r": result_layout(g)})
        s0 = Signal(side)
        m.d.comb += [s0.valid.eq(self.i.valid), s0.r.eq(self.i.payload)]
        s = delay(m, s0, self.latency - 1, name="side")
        z = delay(m, nz.o, Fp16Mul.latency + Fp32ToFp16.latency, name="z")
        zl = nl.o

        nan = (z[10:15] == 0x1F) & (z[0:10] != 0)
        pos = nan | (~z[15] & (z[0:15] != 0))
        y = Signal(16)
        with m.If(desc.act == Act.IDENTITY):
            m.d.comb += y.eq(z)
        with m.Elif(desc.act == Act.RELU):
            m.d.comb += y.eq(z)
            with m.If((desc.op == Op.FP) & ~pos):
                m.d.comb += y.eq(0)
        with m.Else():
            m.d.comb += y.eq(z)
            with m.If(((desc.op == Op.FP) & ~pos) | ((desc.op == Op.BP) & ~s.r.mask_in)):
                m.d.comb += y.eq(zl)
        eors = desc.eors & (desc.op == Op.FP) & (desc.act == Act.RELU)
        sampled = eors & s.r.computed & ~s.r.mask_in
        live = eors & s.r.computed & s.r.mask_in
        with m.If(~s.r.computed | sampled):
            m.d.comb += y.eq(0)
        v = s.valid
        m.d.sync += [self.tally.live.eq(v & live & pos), self.tally.false_live.eq(v & live & ~pos),
                     self.tally.sampled.eq(v & sampled), self.tally.false_zero.eq(v & sampled & pos)]
        # registered so the block RAM write port sees a clean register
        m.d.sync += [self.out_wr.en.eq(s.valid), self.out_wr.addr.eq(s.r.o_addr),
                     self.out_wr.data.eq(y), self.mask_wr.en.eq(s.valid),
                     self.mask_wr.addr.eq(s.r.mask_idx), self.mask_wr.data.eq(pos & s.r.computed & ~sampled)]
        return m
