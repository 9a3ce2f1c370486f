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
    4. leading-zero count of the 28-bit sum, clamped so that a left shift never goes
       below the subnormal exponent;
    5. normalize: one position right on a carry, else left by the clamped count
       (the exponent less the count beside the shifter);
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
        # a subnormal has the exponent of the smallest normal and no hidden bit;
        # both differences are formed beside the compare and only selected after
        # it, so the compare's carry chain is the one deep path of this stage
        # (inside Fp16Mac it follows the accumulator feedback mux)
        a_e = Mux(a[23:31] == 0, 1, a[23:31])
        b_e = Mux(b[23:31] == 0, 1, b[23:31])
        d_ab = Signal(8)
        d_ba = Signal(8)
        m.d.comb += [d_ab.eq(a_e - b_e), d_ba.eq(b_e - a_e)]
        x_e = Mux(a_ge, a_e, b_e)

        # Trailing zeros of both significands, counted beside the compare: the
        # alignment's sticky is then "y's lowest one falls below the shift", a small
        # compare instead of an OR over every shifted-out bit after the shifter.
        def trailing_zeros(x, name):
            sig = Cat(x[0:23], x[23:31] != 0)
            tz = Signal(range(32), name=name)
            m.d.comb += tz.eq(31)       # no one at all: never sticky
            for n in reversed(range(24)):
                with m.If(sig[n]):
                    m.d.comb += tz.eq(n)
            return tz
        a_tz = trailing_zeros(a, "a_tz")
        b_tz = trailing_zeros(b, "b_tz")

        s1 = dict(
            sign=Signal(), sub=Signal(), exp=Signal(8), diff=Signal(8),
            xs=Signal(24), ys=Signal(24), y_tz=Signal(range(32)),
            nan=Signal(), inf=Signal(), inf_sign=Signal())
        m.d.sync += [
            s1["sign"].eq(x[31]),
            s1["sub"].eq(a[31] ^ b[31]),
            s1["exp"].eq(x_e),
            s1["diff"].eq(Mux(a_ge, d_ab, d_ba)),
            s1["xs"].eq(Cat(x[0:23], x[23:31] != 0)),
            s1["ys"].eq(Cat(y[0:23], y[23:31] != 0)),
            s1["y_tz"].eq(Mux(a_ge, b_tz, a_tz)),
            s1["nan"].eq(a_nan | b_nan | (a_inf & b_inf & (a[31] != b[31]))),
            s1["inf"].eq(a_inf | b_inf),
            s1["inf_sign"].eq(Mux(a_inf, a[31], b[31])),
        ]

        # --- stage 2: align ---------------------------------------------------------
        # y (with guard/round/sticky zeros below) moves right by the exponent
        # difference; _W and beyond shift it out completely, so the amount saturates
        # there. Every one shifted out of the working width goes into the sticky
        # (bit 0): that is exactly when y's lowest one, at y_tz + 3, lies below the
        # shift amount.
        sh = Signal(range(_W + 1))
        m.d.comb += sh.eq(Mux(s1["diff"] >= _W, _W, s1["diff"]))
        shifted = Signal(_W)
        m.d.comb += shifted.eq(Cat(C(0, 3), s1["ys"]) >> sh)
        sticky = Signal()
        m.d.comb += sticky.eq(s1["y_tz"] + 3 < sh)
        s2_y = Signal(_W)
        s2_x = Signal(_W)
        m.d.sync += [
            s2_x.eq(Cat(C(0, 3), s1["xs"])),
            s2_y.eq(Cat(shifted[0] | sticky, shifted[1:])),
        ]
        s2 = carry({k: s1[k] for k in ("sign", "sub", "exp", "nan", "inf", "inf_sign")}, "s2")

        # --- stage 3: add or subtract --------------------------------------------
        # |x| >= |y| keeps the difference non-negative. The sticky in bit 0 stands for
        # "something nonzero below": in a subtraction it borrows one unit there, which
        # leaves every bit above it equal to the exact result's and bit 0 set, so the
        # later rounding still sees a nonzero remainder.
        s3_sum = Signal(_W + 1)
        m.d.sync += s3_sum.eq(Mux(s2["sub"], s2_x - s2_y, s2_x + s2_y))
        # A left normalization must stop at exponent 1 (the subnormal scale). A one
        # at bit 27 - exp, ORed in before the leading-zero count, makes the count
        # itself stop there, so no compare against the exponent follows the count.
        s3_stop = Signal(_W)
        m.d.sync += s3_stop.eq(C(1 << _W, _W + 1) >> s2["exp"])
        s3 = carry(s2, "s3")

        # --- stage 4: leading-zero count, clamped ---------------------------------
        # a priority chain over the 27 bits below the carry; last assignment wins, so
        # scanning from the LSB up leaves the highest set bit deciding
        scan = s3_sum[0:_W] | s3_stop
        lz = Signal(range(_W + 1))
        m.d.comb += lz.eq(_W)
        for n in reversed(range(_W)):
            with m.If(scan[_W - 1 - n]):
                m.d.comb += lz.eq(n)
        s4_sum = Signal(_W + 1)
        s4_lz = Signal(range(_W + 1))
        m.d.sync += [s4_sum.eq(s3_sum), s4_lz.eq(lz)]
        s4 = carry(s3, "s4")

        # --- stage 5: normalize ------------------------------------------------------
        # A result still unnormalized after the clamped shift is a subnormal: exponent
        # field 0, which has the same scale as field 1.
        s5_man = Signal(_W)
        s5_exp = Signal(9)          # one extra bit: a carry out of exponent 254 overflows
        s5_zero = Signal()
        left = Signal(_W)
        m.d.comb += left.eq(s4_sum[0:_W] << s4_lz)
        # the exponent after the left shift, formed here beside the shifter: after the
        # count in stage 4 its subtraction led the MAC lane's path (docs/synthesis.md)
        exp_norm = Signal(8)
        m.d.comb += exp_norm.eq(s4["exp"] - s4_lz)
        with m.If(s4_sum[_W]):
            # carry: one position right, folding the dropped bit into the sticky
            m.d.sync += [
                s5_man.eq(Cat(s4_sum[0] | s4_sum[1], s4_sum[2:_W + 1])),
                s5_exp.eq(s4["exp"] + 1),
            ]
        with m.Else():
            m.d.sync += [
                s5_man.eq(left),
                s5_exp.eq(Mux(left[_W - 1], exp_norm, 0)),
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
