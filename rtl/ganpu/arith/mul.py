from amaranth.hdl import Module, Signal, Cat, C
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import numerics

__all__ = ["Fp16Mul"]


def _normalize(m, x, name):
    """Split binary16 ``x`` into a normalized 11-bit significand and a biased exponent.

    Returns ``(sig, exp)``: ``sig`` has its top bit set for every nonzero finite ``x``
    and ``exp`` is signed, the binary16 biased exponent a normal with that significand
    would carry (a subnormal gets 0 down to -9).
    """
    e = x[10:15]
    f = x[0:10]
    # leading-zero count of a subnormal fraction as a priority chain: only 10 bits,
    # so it stays shallow (the same structure as Fp16ToFp32)
    lz = Signal(4, name=f"{name}_lz")
    for n in reversed(range(10)):
        with m.If(f[9 - n]):
            m.d.comb += lz.eq(n)
    sig = Signal(11, name=f"{name}_sig")
    exp = Signal(range(-16, 32), name=f"{name}_exp")
    with m.If(e == 0):
        m.d.comb += [sig.eq(f << (lz + 1)), exp.eq(-lz)]
    with m.Else():
        m.d.comb += [sig.eq(Cat(f, C(1, 1))), exp.eq(e)]
    return sig, exp


class Fp16Mul(wiring.Component):
    """Exact binary16 x binary16 -> binary32 multiply.

    The 11 x 11-bit significand product always fits binary32's 24 bits and the
    exponent range of the product (2^-48 .. 2^31) is inside binary32's normal range,
    so no rounding ever happens. Subnormal operands are normalized before the
    multiplier; signed zeros keep the XOR of the signs; Inf x finite nonzero is a
    signed Inf; 0 x Inf and any NaN operand give the canonical NaN 0x7FC00000.
    Matches :func:`ganpu.numerics.mul` bit for bit.

    Latency 3 cycles, throughput 1 product per cycle, no handshake. One 11 x 11
    unsigned multiplier (one DSP block) with registers on both sides, so the DSP's own
    input/output registers can absorb stages 1 and 2.

    Ports
    -----
    a : In(16)   binary16 bits
    b : In(16)   binary16 bits
    p : Out(32)  binary32 bits of a x b, ``latency`` cycles later
    """

    latency = 3

    a: In(16)
    b: In(16)
    p: Out(32)

    @staticmethod
    def model(a, b):
        return numerics.mul(a, b)

    def elaborate(self, platform):
        m = Module()

        def classes(x):
            e, f = x[10:15], x[0:10]
            return (e == 0) & (f == 0), (e == 0x1F) & (f == 0), (e == 0x1F) & (f != 0)

        a_zero, a_inf, a_nan = classes(self.a)
        b_zero, b_inf, b_nan = classes(self.b)
        a_sig, a_exp = _normalize(m, self.a, "a")
        b_sig, b_exp = _normalize(m, self.b, "b")

        # --- stage 1: normalize operands, classify ------------------------------
        s1_a = Signal(11)
        s1_b = Signal(11)
        s1_a_exp = Signal.like(a_exp)
        s1_b_exp = Signal.like(b_exp)
        s1_sign = Signal()
        s1_nan = Signal()
        s1_inf = Signal()
        s1_zero = Signal()
        m.d.sync += [
            s1_a.eq(a_sig), s1_b.eq(b_sig),
            s1_a_exp.eq(a_exp), s1_b_exp.eq(b_exp),
            s1_sign.eq(self.a[15] ^ self.b[15]),
            s1_nan.eq(a_nan | b_nan | (a_zero & b_inf) | (a_inf & b_zero)),
            s1_inf.eq(a_inf | b_inf),
            s1_zero.eq(a_zero | b_zero),
        ]

        # --- stage 2: the one multiplier ---------------------------------------
        # The exponent sum waits for this stage, beside the DSP, so stage 1 ends at
        # the subnormal leading-zero count instead of count + two adders.
        s2_prod = Signal(22)
        # binary32 biased exponent of the product when the significand product has
        # no carry into bit 21: (ea - 15) + (eb - 15) + 127
        s2_exp = Signal(8)
        s2_sign = Signal()
        s2_nan = Signal()
        s2_inf = Signal()
        s2_zero = Signal()
        m.d.sync += [
            s2_prod.eq(s1_a * s1_b),
            s2_exp.eq(s1_a_exp + s1_b_exp + 97), s2_sign.eq(s1_sign),
            s2_nan.eq(s1_nan), s2_inf.eq(s1_inf), s2_zero.eq(s1_zero),
        ]

        # --- stage 3: one-bit normalization, assemble ---------------------------
        # both significands lie in [2^10, 2^11), so the product is in [2^20, 2^22):
        # at most one position of normalization
        frac = Signal(23)
        exp = Signal(8)
        with m.If(s2_prod[21]):
            m.d.comb += [frac.eq(Cat(C(0, 2), s2_prod[0:21])), exp.eq(s2_exp + 1)]
        with m.Else():
            m.d.comb += [frac.eq(Cat(C(0, 3), s2_prod[0:20])), exp.eq(s2_exp)]
        with m.If(s2_nan):
            m.d.sync += self.p.eq(numerics.FP32_QNAN)
        with m.Elif(s2_inf):
            m.d.sync += self.p.eq(Cat(C(0, 23), C(0xFF, 8), s2_sign))
        with m.Elif(s2_zero):
            m.d.sync += self.p.eq(Cat(C(0, 31), s2_sign))
        with m.Else():
            m.d.sync += self.p.eq(Cat(frac, exp, s2_sign))
        return m
