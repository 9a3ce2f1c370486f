from amaranth.hdl import Module, Signal, Cat, C, Mux
from amaranth.lib.wiring import In, Out

from .. import numerics
from ..core.config import CheckedComponent, check_int

__all__ = ["Fp32Mul"]

# Significand width of binary32 (hidden bit + 23 fraction bits) and of the full product.
_S = 24
_P = 2 * _S


class Fp32Mul(CheckedComponent):
    """binary32 x binary32, round to nearest, ties to even, subnormals honoured.

    IEEE 754 multiplication as the weight update needs it (``docs/update.md``): the
    sign is the XOR of the signs (zeros included), a product below the smallest
    subnormal rounds to a signed zero, a rounded magnitude of 2^128 or more gives a
    signed Inf, Inf x finite nonzero is a signed Inf, 0 x Inf and any NaN operand give
    the canonical NaN 0x7FC00000. Matches :func:`ganpu.numerics.mul32` bit for bit.

    Latency 6 cycles, throughput 1 product per cycle, no handshake. Stages:

    1. unpack and classify; biased exponent of the product ``E = e_a + e_b - 127``
       (a subnormal counts as exponent 1 with no hidden bit);
    2. the 24 x 24-bit significand product as four partial products, each operand
       split at bit ``tile`` (18: one ECP5 18 x 18 multiplier per partial product,
       with registers on both sides for the DSP's own input/output registers);
    3. sum of the partial products (48 bits); the stop bit that keeps the later left
       shift from going below the subnormal exponent; the right shift of a product
       whose exponent is below the normal range;
    4. leading-zero count of the product with the stop bit ORed in;
    5. normalize: left by the count, or right by the underflow shift (dropped bits
       into the sticky); exponent field (0 for a subnormal result);
    6. round to nearest even and assemble; the increment may carry into the exponent
       (subnormal to normal, largest finite to Inf).

    Parameters
    ----------
    tile : int
        Where the significands are split for the partial products, 12..24 (24: one
        24 x 24 product left to synthesis). Every value computes the same bits.

    Ports
    -----
    a : In(32)   binary32 bits
    b : In(32)   binary32 bits
    p : Out(32)  binary32 bits of a x b, ``latency`` cycles later
    """

    latency = 6

    a: In(32)
    b: In(32)
    p: Out(32)

    @classmethod
    def check_parameters(cls, tile=18):
        check_int("tile", tile, 12, _S)

    def __init__(self, tile=18):
        self.tile = tile
        super().__init__()

    @staticmethod
    def model(a, b):
        return numerics.mul32(a, b)

    def elaborate(self, platform):
        m = Module()
        t = self.tile

        # Result classes that bypass the datapath travel beside it, one register per
        # stage, so the pipeline never stalls on them.
        def carry(prev, name):
            regs = {}
            for k, sig in prev.items():
                r = Signal.like(sig, name=f"{name}_{k}")
                m.d.sync += r.eq(sig)
                regs[k] = r
            return regs

        # --- stage 1: unpack, classify, exponent sum --------------------------------
        def unpack(x):
            e, f = x[23:31], x[0:23]
            return (dict(nan=(e == 0xFF) & (f != 0), inf=(e == 0xFF) & (f == 0),
                         zero=(e == 0) & (f == 0)),
                    Cat(f, e != 0), Mux(e == 0, 1, e))
        ca, sa, ea = unpack(self.a)
        cb, sb, eb = unpack(self.b)
        s1_sa = Signal(_S)
        s1_sb = Signal(_S)
        # E in -125 .. 381: signed, one bit beyond the field's range each way
        s1_exp = Signal(range(-128, 512))
        s1 = dict(sign=Signal(), nan=Signal(), inf=Signal(), zero=Signal())
        m.d.sync += [
            s1_sa.eq(sa), s1_sb.eq(sb),
            s1_exp.eq(ea + eb - 127),
            s1["sign"].eq(self.a[31] ^ self.b[31]),
            s1["nan"].eq(ca["nan"] | cb["nan"] | (ca["zero"] & cb["inf"]) | (ca["inf"] & cb["zero"])),
            s1["inf"].eq(ca["inf"] | cb["inf"]),
            s1["zero"].eq(ca["zero"] | cb["zero"]),
        ]

        # --- stage 2: partial products -----------------------------------------------
        # With tile = 18 each partial product fits one 18 x 18 DSP multiplier; the
        # high parts are only 6 bits wide, so synthesis may also build those in LUTs.
        lo_a, hi_a = s1_sa[0:t], s1_sa[t:_S]
        lo_b, hi_b = s1_sb[0:t], s1_sb[t:_S]
        parts = {"ll": (lo_a * lo_b, 0), "lh": (lo_a * hi_b, t),
                 "hl": (hi_a * lo_b, t), "hh": (hi_a * hi_b, 2 * t)}
        s2_pp = {}
        for k, (prod, shift) in parts.items():
            if t == _S and k != "ll":   # tile = 24: no high parts
                continue
            r = s2_pp[k] = (Signal(len(prod), name=f"s2_pp_{k}"), shift)
            m.d.sync += r[0].eq(prod)
        s2_exp = Signal.like(s1_exp)
        m.d.sync += s2_exp.eq(s1_exp)
        s2 = carry(s1, "s2")

        # --- stage 3: sum of the partial products; stop bit; underflow shift ----------
        s3_prod = Signal(_P)
        total = 0
        for sig, shift in s2_pp.values():
            total = total + (sig << shift)
        m.d.sync += s3_prod.eq(total)
        # A left normalization must stop at the subnormal scale: a one at bit 47 - E,
        # ORed in before the leading-zero count, makes the count itself stop at E
        # (no compare after the count). E >= 48 needs no stop (a nonzero product of a
        # normal and anything has at most 24 leading zeros).
        s3_stop = Signal(_P)
        with m.If((s2_exp >= 0) & (s2_exp < _P)):
            m.d.sync += s3_stop.eq(C(1 << (_P - 1), _P) >> s2_exp[0:6])
        with m.Else():
            m.d.sync += s3_stop.eq(0)
        # E < 0: the result is subnormal (or zero) with the product shifted right by
        # -E; from 26 on only the sticky is left, so the amount saturates there.
        s3_rsh = Signal(range(27))
        with m.If(s2_exp >= 0):
            m.d.sync += s3_rsh.eq(0)
        with m.Elif(s2_exp <= -26):
            m.d.sync += s3_rsh.eq(26)
        with m.Else():
            m.d.sync += s3_rsh.eq(-s2_exp)
        s3_exp = Signal.like(s1_exp)
        m.d.sync += s3_exp.eq(s2_exp)
        s3 = carry(s2, "s3")

        # --- stage 4: leading-zero count ----------------------------------------------
        # priority chain, last assignment wins: scanning from the LSB up leaves the
        # highest set bit deciding
        scan = s3_prod | s3_stop
        lz = Signal(range(_P + 1))
        m.d.comb += lz.eq(_P)
        for n in reversed(range(_P)):
            with m.If(scan[_P - 1 - n]):
                m.d.comb += lz.eq(n)
        s4_prod = Signal(_P)
        s4_lz = Signal(range(_P + 1))
        s4_rsh = Signal.like(s3_rsh)
        s4_exp = Signal.like(s1_exp)
        # the right-shift sticky, beside the count: a mask of the bits that fall off
        s4_rsticky = Signal()
        m.d.sync += [
            s4_prod.eq(s3_prod), s4_lz.eq(lz), s4_rsh.eq(s3_rsh), s4_exp.eq(s3_exp),
            s4_rsticky.eq((s3_prod & ~(C((1 << _P) - 1, _P) << s3_rsh)[0:_P]) != 0),
        ]
        s4 = carry(s3, "s4")

        # --- stage 5: normalize ---------------------------------------------------------
        # Kept: the 24 significant bits, a guard bit below them and the sticky of the
        # rest. The exponent field is E + 1 - lz when the shifted product has its top
        # bit set, else 0 (a subnormal: field 0 has the scale of field 1).
        left = Signal(_P)
        m.d.comb += left.eq(s4_prod << s4_lz)
        right = Signal(_P)
        m.d.comb += right.eq(s4_prod >> s4_rsh)
        s5_man = Signal(_S + 1)         # significand (24) and guard
        s5_sticky = Signal()
        s5_field = Signal(range(-64, 512))
        with m.If(s4_exp < 0):
            m.d.sync += [
                s5_man.eq(right[_S - 1:_P]),
                s5_sticky.eq((right[0:_S - 1] != 0) | s4_rsticky),
                s5_field.eq(0),
            ]
        with m.Else():
            m.d.sync += [
                s5_man.eq(left[_S - 1:_P]),
                s5_sticky.eq(left[0:_S - 1] != 0),
                s5_field.eq(Mux(left[_P - 1], s4_exp + 1 - s4_lz, 0)),
            ]
        s5 = carry(s4, "s5")

        # --- stage 6: round and assemble --------------------------------------------------
        guard = s5_man[0]
        body = Signal(31)
        m.d.comb += body.eq(Cat(s5_man[1:_S], s5_field[0:8]))
        rounded = Signal(31)
        m.d.comb += rounded.eq(body + (guard & (s5_sticky | body[0])))
        with m.If(s5["nan"]):
            m.d.sync += self.p.eq(numerics.FP32_QNAN)
        with m.Elif(s5["inf"] | (s5_field >= 0xFF)):
            m.d.sync += self.p.eq(Cat(C(0, 23), C(0xFF, 8), s5["sign"]))
        with m.Elif(s5["zero"]):
            m.d.sync += self.p.eq(Cat(C(0, 31), s5["sign"]))
        with m.Else():
            m.d.sync += self.p.eq(Cat(rounded, s5["sign"]))
        return m
