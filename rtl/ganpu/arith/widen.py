from amaranth.hdl import Module, Signal, Cat, C
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import numerics

__all__ = ["Fp16ToFp32"]


class Fp16ToFp32(wiring.Component):
    """Exact binary16 -> binary32 widening.

    Subnormal inputs are normalized (a leading-zero count over the 10-bit fraction);
    any NaN becomes the canonical 0x7FC00000.

    Latency 1 cycle, throughput 1 value per cycle, no handshake.

    Ports
    -----
    i : In(16)   binary16 bits
    o : Out(32)  binary32 bits, ``latency`` cycles later
    """

    latency = 1

    i: In(16)
    o: Out(32)

    @staticmethod
    def model(i):
        return numerics.widen(i)

    def elaborate(self, platform):
        m = Module()
        sign = self.i[15]
        exp = self.i[10:15]
        frac = self.i[0:10]

        res = Signal(32)
        # leading-zero count of the subnormal fraction, as a priority chain: the
        # fraction is only 10 bits, so this stays shallow.
        lz = Signal(4)
        # last assignment wins, so scan from the LSB up: the highest set bit decides
        for n in reversed(range(10)):
            with m.If(frac[9 - n]):
                m.d.comb += lz.eq(n)
        norm_frac = Signal(10)
        m.d.comb += norm_frac.eq((frac << (lz + 1))[0:10])

        with m.If(exp == 0x1F):
            with m.If(frac == 0):
                m.d.comb += res.eq(Cat(C(0, 23), C(0xFF, 8), sign))
            with m.Else():
                m.d.comb += res.eq(numerics.FP32_QNAN)
        with m.Elif(exp == 0):
            with m.If(frac == 0):
                m.d.comb += res.eq(Cat(C(0, 31), sign))
            with m.Else():
                # value = frac * 2^-24 = 1.f * 2^(-15 - lz); biased: 127 - 15 - lz
                m.d.comb += res.eq(Cat(C(0, 13), norm_frac, (112 - lz)[0:8], sign))
        with m.Else():
            m.d.comb += res.eq(Cat(C(0, 13), frac, (exp + 112)[0:8], sign))
        m.d.sync += self.o.eq(res)
        return m
