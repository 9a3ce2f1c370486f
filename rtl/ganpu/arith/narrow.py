from amaranth.hdl import Module, Signal, Cat, C, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import numerics

__all__ = ["Fp32ToFp16"]


class Fp32ToFp16(wiring.Component):
    """binary32 -> binary16 narrowing, round to nearest, ties to even.

    Results below the binary16 normal range become binary16 subnormals (or a signed
    zero), rounded once from the exact binary32 value; results whose rounded magnitude
    reaches 2^16 become a signed infinity; infinities keep their sign; any NaN becomes
    the canonical 0x7E00. Matches :func:`ganpu.numerics.narrow` bit for bit.

    Latency 2 cycles, throughput 1 value per cycle, no handshake.

    Stage 1 selects the 10-bit fraction (shifting it right for subnormal results) and
    reduces the dropped bits to guard and sticky; stage 2 adds the rounding increment.

    Ports
    -----
    i : In(32)   binary32 bits
    o : Out(16)  binary16 bits, ``latency`` cycles later
    """

    latency = 2

    i: In(32)
    o: Out(16)

    @staticmethod
    def model(i):
        return numerics.narrow(i)

    def elaborate(self, platform):
        m = Module()
        sign = self.i[31]
        exp = self.i[23:31]
        frac = self.i[0:23]

        # --- stage 1: classify, align, guard/sticky -------------------------------
        s1_sign = Signal()
        s1_inf = Signal()              # the result is a signed infinity
        s1_nan = Signal()
        s1_base = Signal(15)           # exponent:fraction before the rounding increment
        s1_guard = Signal()
        s1_sticky = Signal()

        # A subnormal result needs the significand shifted right by 126 - exp (>= 14).
        # Shifting it into a field with 26 zero bits below keeps every dropped bit, so
        # the sticky is exact; 25 is the last amount that can still round up to the
        # smallest subnormal, anything larger gives the same all-dropped result.
        sig = Cat(frac, exp != 0)
        sub_sh = Signal(5)
        m.d.comb += sub_sh.eq(Mux(exp <= 101, 25, 126 - exp))
        wide = Signal(50)
        m.d.comb += wide.eq(Cat(C(0, 26), sig) >> sub_sh)

        m.d.sync += s1_sign.eq(sign)
        m.d.sync += s1_nan.eq((exp == 0xFF) & (frac != 0))
        # 2^16 and above overflow whatever the rounding
        m.d.sync += s1_inf.eq(((exp == 0xFF) & (frac == 0)) | ((exp >= 143) & (exp != 0xFF)))
        with m.If(exp >= 113):
            m.d.sync += s1_base.eq(Cat(frac[13:23], (exp - 112)[0:5]))
            m.d.sync += s1_guard.eq(frac[12])
            m.d.sync += s1_sticky.eq(frac[0:12] != 0)
        with m.Else():
            m.d.sync += s1_base.eq(wide[26:36])
            m.d.sync += s1_guard.eq(wide[25])
            m.d.sync += s1_sticky.eq(wide[0:25] != 0)

        # --- stage 2: round ------------------------------------------------------
        # The increment may carry from the fraction into the exponent: subnormal to
        # normal, or the largest finite value to Inf (0x7C00), both as IEEE wants.
        round_up = s1_guard & (s1_sticky | s1_base[0])
        rounded = Signal(15)
        m.d.comb += rounded.eq(s1_base + round_up)
        with m.If(s1_nan):
            # a NaN drops the sign: the canonical NaN is positive
            m.d.sync += self.o.eq(numerics.FP16_QNAN)
        with m.Elif(s1_inf):
            m.d.sync += self.o.eq(Cat(C(0x7C00, 15), s1_sign))
        with m.Else():
            m.d.sync += self.o.eq(Cat(rounded, s1_sign))
        return m
