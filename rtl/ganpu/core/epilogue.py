from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring, stream
from amaranth.lib.wiring import In, Out

from ..arith.narrow import Fp32ToFp16
from ..arith.mul import Fp16Mul
from .descriptor import Op, Act
from .scanner import result_layout

__all__ = ["Epilogue"]


class Epilogue(wiring.Component):
    """Rounds an accumulator to binary16 and applies the activation or its derivative.

    ``z = narrow(acc)``; ``zl = narrow(z * slope)`` (LeakyReLU's negative side); the
    output and its mask bit follow the table in :mod:`ganpu.core.model`. An input with
    ``computed = 0`` (an output skipped by its mask) becomes +0 with mask bit 0.

    Free-running: always ready, one result per cycle, ``latency`` cycles from input
    to the write strobe.

    Ports
    -----
    i : In(stream.Signature(result_layout))   ``ready`` is always 1
    op : In(Op), act : In(Act), slope : In(16)  held for the task
    we : Out(1), o_addr : Out(out_bits), o_data : Out(16)
    mask_idx : Out(mask_bits), mask_bit : Out(1)
    """

    def __init__(self, geom):
        self.geom = geom
        self.latency = 2 * Fp32ToFp16.latency + Fp16Mul.latency + 1
        super().__init__({
            "i": In(stream.Signature(result_layout(geom))),
            "op": In(Op), "act": In(Act), "slope": In(16),
            "we": Out(1), "o_addr": Out(geom.out_bits), "o_data": Out(16),
            "mask_idx": Out(geom.mask_bits), "mask_bit": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        m.submodules.nz = nz = Fp32ToFp16()
        m.submodules.mul = mul = Fp16Mul()
        m.submodules.nl = nl = Fp32ToFp16()
        m.d.comb += self.i.ready.eq(1)

        m.d.comb += [nz.i.eq(self.i.payload.acc), mul.a.eq(nz.o), mul.b.eq(self.slope),
                     nl.i.eq(mul.p)]
        # z is delayed to meet zl, which needs a multiply and a second rounding
        side = data.StructLayout({"valid": 1, "r": result_layout(g)})
        depth = self.latency - 1
        pipe = [Signal(side, name=f"side{i}") for i in range(depth)]
        s0 = Signal(side)
        m.d.comb += [s0.valid.eq(self.i.valid), s0.r.eq(self.i.payload)]
        m.d.sync += pipe[0].eq(s0)
        for i in range(1, depth):
            m.d.sync += pipe[i].eq(pipe[i - 1])
        zs = [Signal(16, name=f"z{i}") for i in range(Fp16Mul.latency + Fp32ToFp16.latency)]
        m.d.sync += zs[0].eq(nz.o)
        for i in range(1, len(zs)):
            m.d.sync += zs[i].eq(zs[i - 1])
        z, zl, s = zs[-1], nl.o, pipe[-1]

        nan = (z[10:15] == 0x1F) & (z[0:10] != 0)
        pos = nan | (~z[15] & (z[0:15] != 0))
        y = Signal(16)
        with m.If(self.act == Act.IDENTITY):
            m.d.comb += y.eq(z)
        with m.Elif(self.act == Act.RELU):
            m.d.comb += y.eq(z)
            with m.If((self.op == Op.FP) & ~pos):
                m.d.comb += y.eq(0)
        with m.Else():
            m.d.comb += y.eq(z)
            with m.If(((self.op == Op.FP) & ~pos) | ((self.op == Op.BP) & ~s.r.mask_in)):
                m.d.comb += y.eq(zl)
        with m.If(~s.r.computed):
            m.d.comb += y.eq(0)
        # registered so the block RAM write port sees a clean register
        m.d.sync += [self.we.eq(s.valid), self.o_addr.eq(s.r.o_addr), self.o_data.eq(y),
                     self.mask_idx.eq(s.r.mask_idx), self.mask_bit.eq(pos & s.r.computed)]
        return m
