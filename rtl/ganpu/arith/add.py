from amaranth.hdl import Module, Signal, Cat, C, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import numerics

__all__ = ["Fp32Add"]

# Working significand: hidden bit + 23 fraction bits, then guard, round and sticky.
_W = 27


class Fp32Add(wiring.Component):
    """binary32 + binary32, round to nearest, ties to even, subnormals honoured.

    IEEE 754 addition: x + (-x) = +0, (-0) + (-0) = -0, Inf - Inf and any NaN operand
    give the canonical NaN 0x7FC00000, a rounded magnitude of 2^128 or more gives a
    signed Inf. Matches :func:`ganpu.numerics.add` bit for bit.

    Latency 6 cycles, throughput 1 sum per cycle, no handshake. Stages:

    1. unpack, order the operands by magnitude (larger = x), exponent difference;
    2. align y to x: shift right by the difference into guard/round/sticky (any
       difference >= 27 leaves only the sticky, which still remembers y != 0);
    3. add or subtract the 27-bit working significands (never negative: |x| >= |y|);
    4. leading-zero count of the 28-bit sum;
    5. normalize: one position right on a carry, else left by the leading-zero count
       but never below the subnormal exponent;
    6. round to nearest even and assemble; the increment may carry into the
       exponent (subnormal to normal, largest finite to Inf).

    Ports
    -----
    a : In(32)   binary32 bits
    b : In(32)   binary32 bits
    s : Out(32)  binary32 bits of a + b, ``latency`` cycles later
    """

    latency = 6

    a: In(32)
    b: In(32)
    s: Out(32)

    @staticmethod
    def model(a, b):
        return numerics.add(a, b)

    def elaborate(self, platform):
        m = Module()

        # Result classes that bypass the datapath travel beside it, one register per
        # stage, so the pipeline never stalls on them.
        def carry(prev, name):
            regs = {}
            for k, sig in prev.items():
                r = Signal.like(sig, name=f"{name}_{k}")
                m.d.sync += r.eq(sig)
                regs[k] = r
            return regs

        # --- stage 1: unpack, order by magnitude, exponent difference ------------
        a, b = self.a, self.b
        a_nan = (a[23:31] == 0xFF) & (a[0:23] != 0)
        b_nan = (b[23:31] == 0xFF) & (b[0:23] != 0)
        a_inf = (a[23:31] == 0xFF) & (a[0:23] == 0)
        b_inf = (b[23:31] == 0xFF) & (b[0:23] == 0)
        # IEEE bit patterns order like their magnitudes, so one 31-bit compare picks
        # the larger operand; the difference of the exponents is then non-negative
        a_ge = a[0:31] >= b[0:31]
        x = Mux(a_ge, a, b)
        y = Mux(a_ge, b, a)
        # a subnormal has the exponent of the smallest normal and no hidden bit
        x_e = Mux(x[23:31] == 0, 1, x[23:31])
        y_e = Mux(y[23:31] == 0, 1, y[23:31])

        s1 = dict(
            sign=Signal(), sub=Signal(), exp=Signal(8), diff=Signal(8),
            xs=Signal(24), ys=Signal(24),
            nan=Signal(), inf=Signal(), inf_sign=Signal())
        m.d.sync += [
            s1["sign"].eq(x[31]),
            s1["sub"].eq(a[31] ^ b[31]),
            s1["exp"].eq(x_e),
            s1["diff"].eq(x_e - y_e),
            s1["xs"].eq(Cat(x[0:23], x[23:31] != 0)),
            s1["ys"].eq(Cat(y[0:23], y[23:31] != 0)),
            s1["nan"].eq(a_nan | b_nan | (a_inf & b_inf & (a[31] != b[31]))),
            s1["inf"].eq(a_inf | b_inf),
            s1["inf_sign"].eq(Mux(a_inf, a[31], b[31])),
        ]

        # --- stage 2: align ---------------------------------------------------------
        # Shift y into a field with _W zero bits below it, so every bit shifted out of
        # the working width is still there to OR into the sticky; _W and beyond all
        # shift y out completely, so the amount saturates there.
        sh = Signal(range(_W + 1))
        m.d.comb += sh.eq(Mux(s1["diff"] >= _W, _W, s1["diff"]))
        wide = Signal(2 * _W)
        m.d.comb += wide.eq(Cat(C(0, _W + 3), s1["ys"]) >> sh)
        s2_y = Signal(_W)
        s2_x = Signal(_W)
        m.d.sync += [
            s2_x.eq(Cat(C(0, 3), s1["xs"])),
            s2_y.eq(Cat(wide[_W] | (wide[0:_W] != 0), wide[_W + 1:2 * _W])),
        ]
        s2 = carry({k: s1[k] for k in ("sign", "sub", "exp", "nan", "inf", "inf_sign")}, "s2")

        # --- stage 3: add or subtract --------------------------------------------
        # |x| >= |y| keeps the difference non-negative. The sticky in bit 0 stands for
        # "something nonzero below": in a subtraction it borrows one unit there, which
        # leaves every bit above it equal to the exact result's and bit 0 set, so the
        # later rounding still sees a nonzero remainder.
        s3_sum = Signal(_W + 1)
        m.d.sync += s3_sum.eq(Mux(s2["sub"], s2_x - s2_y, s2_x + s2_y))
        s3 = carry(s2, "s3")

        # --- stage 4: leading-zero count ------------------------------------------
        # a priority chain over the 27 bits below the carry; last assignment wins, so
        # scanning from the LSB up leaves the highest set bit deciding
        lz = Signal(range(_W + 1))
        m.d.comb += lz.eq(_W)
        for n in reversed(range(_W)):
            with m.If(s3_sum[_W - 1 - n]):
                m.d.comb += lz.eq(n)
        s4_sum = Signal(_W + 1)
        s4_lz = Signal(range(_W + 1))
        m.d.sync += [s4_sum.eq(s3_sum), s4_lz.eq(lz)]
        s4 = carry(s3, "s4")

        # --- stage 5: normalize ------------------------------------------------------
        # Left shifts stop at exponent 1 (the subnormal scale): a result that is still
        # unnormalized there is a subnormal and gets exponent field 0, same scale.
        s5_man = Signal(_W)
        s5_exp = Signal(9)          # one extra bit: a carry out of exponent 254 overflows
        s5_zero = Signal()
        lsh = Signal(range(_W + 1))
        m.d.comb += lsh.eq(Mux(s4_lz < s4["exp"], s4_lz, s4["exp"] - 1))
        left = Signal(_W)
        m.d.comb += left.eq(s4_sum[0:_W] << lsh)
        with m.If(s4_sum[_W]):
            # carry: one position right, folding the dropped bit into the sticky
            m.d.sync += [
                s5_man.eq(Cat(s4_sum[0] | s4_sum[1], s4_sum[2:_W + 1])),
                s5_exp.eq(s4["exp"] + 1),
            ]
        with m.Else():
            m.d.sync += [
                s5_man.eq(left),
                s5_exp.eq(Mux(left[_W - 1], s4["exp"] - lsh, 0)),
            ]
        m.d.sync += s5_zero.eq(s4_sum == 0)
        s5 = carry(s4, "s5")

        # --- stage 6: round and assemble --------------------------------------------
        guard = s5_man[2]
        sticky = s5_man[0] | s5_man[1]
        body = Signal(31)
        m.d.comb += body.eq(Cat(s5_man[3:_W - 1], s5_exp[0:8]))
        rounded = Signal(31)
        m.d.comb += rounded.eq(body + (guard & (sticky | body[0])))
        with m.If(s5["nan"]):
            m.d.sync += self.s.eq(numerics.FP32_QNAN)
        with m.Elif(s5["inf"]):
            m.d.sync += self.s.eq(Cat(C(0, 23), C(0xFF, 8), s5["inf_sign"]))
        with m.Elif(s5_exp >= 0xFF):
            m.d.sync += self.s.eq(Cat(C(0, 23), C(0xFF, 8), s5["sign"]))
        with m.Elif(s5_zero):
            # an exact zero: x + (-x) is +0 in round-to-nearest; equal signs keep theirs
            m.d.sync += self.s.eq(Cat(C(0, 31), s5["sign"] & ~s5["sub"]))
        with m.Else():
            m.d.sync += self.s.eq(Cat(rounded, s5["sign"]))
        return m
