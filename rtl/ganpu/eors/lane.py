from amaranth.hdl import Module, Signal, Mux, C, Cat, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import bits_for

import numpy as np

from ..model.eors import EorsParams, DEFAULT_EORS, eors_state, predicted_live

__all__ = ["EorsLane", "check_params"]


def check_params(params):
    """``params`` itself if it is an :class:`EorsParams`, else ``TypeError`` showing it.

    The dataclass validates its own fields, so only the type is left to check here.
    """
    # imported here: ganpu.core imports this package (its speculator), so a module-level
    # import of ganpu.core.config would be circular
    from ..core.config import check_type
    return check_type("params", params, EorsParams)


class _Operand:
    """Decode of one binary16 operand as the spec wants it (comb, no registers)."""

    def __init__(self, bits, m):
        e = bits[10:15]
        f = bits[0:10]
        self.sign = bits[15]
        self.zero = bits[0:15] == 0
        self.special = e == 0x1F
        # biased exponent with the subnormal rule E = -14 folded in: field 0 counts as 1
        self.eb = e | (e == 0)
        if m == 0:
            # pure EORS: every nonzero operand weighs 2^E, subnormals included
            self.sig = C(1, 1)
        else:
            hidden = e != 0
            self.sig = (hidden << m) | (f >> (10 - m))


def _shift_plan(n, width, esum, bias_const):
    """Shift amount and range flags for ``t = floor(mag * 2**sh)`` with
    ``sh = esum + bias_const`` and ``mag`` an ``n``-bit magnitude.

    Only ``sh`` in ``[-(n-1), width-2]`` needs a real shift: below it every bit of
    ``mag`` falls under the LSB (``under``), above it any nonzero ``mag`` reaches
    ``2**(width-1)`` (``over``). In range, ``u = sh + n - 1 >= 0``, so one left shifter
    covers both directions and the right shift's truncation is a slice.
    Returns ``(u, under, over, ubits)`` as comb values.
    """
    umax = width + n - 3
    ubits = max(1, bits_for(umax))
    u_full = esum + (bias_const + n - 1)
    under = u_full < 0
    over = u_full > umax
    return u_full[0:ubits], under, over, ubits


def _shift_window(n, width, mag, u):
    """``floor(mag * 2**(u - (n-1)))`` modulo ``2**(width-1)`` (comb): a hand-built
    logarithmic shifter only ``n - 1 + width - 1`` bits wide; what falls below the
    window is the truncation, what falls off the top is caught by :func:`_clamps`."""
    L = n - 1 + width - 1
    v = mag
    for k in reversed(range(len(u))):
        s = 1 << k
        v = Mux(u[k], (v << s)[:L] if s < L else C(0, L), v)
    return v[n - 1:L]


def _clamps(n, width, mag, u, over):
    """Whether ``mag * 2**(u - (n-1))`` reaches ``2**(width-1)`` (comb), from the
    leading-one position of ``mag``: cheaper than ORing the bits each shifter stage
    drops, which Yosys turns into mux trees several times the shifter's size."""
    L = n - 1 + width - 1
    msb = C(0, bits_for(n - 1))
    for i in range(1, n):
        msb = Mux(mag[i], i, msb)
    return (mag != 0) & (over | (msb + u >= L))


def _term_pipe(stage, name, n, width, mag, esum, sh_const, sign):
    """Stages B, C, D of a term ``+-min(floor(mag * 2**(esum + sh_const)), hi)``;
    ``mag`` (n bits, 0 for no term), ``esum`` and ``sign`` belong to stage A.
    Returns the stage-D magnitude and sign.

    Each step of the clamp-and-shift gets its own register stage: a product, a shifter
    and a clamp in one cone give ABC room to restructure them into much larger logic.
    """
    u, under, over, ubits = _shift_plan(n, width, esum, sh_const)
    # B: a term entirely under the LSB is a zero magnitude from here on
    b_mag = stage(Mux(under, 0, mag), f"{name}_b_mag", n)
    b_u = stage(u, f"{name}_b_u", ubits)
    b_over = stage(over, f"{name}_b_over")
    b_sign = stage(sign, f"{name}_b_sign")
    # C: the shift and, beside it, the clamp decision
    c_win = stage(_shift_window(n, width, b_mag, b_u), f"{name}_c_win", width - 1)
    c_big = stage(_clamps(n, width, b_mag, b_u, b_over), f"{name}_c_big")
    c_sign = stage(b_sign, f"{name}_c_sign")
    # D: hi is all ones in width-1 bits, so the clamp is an OR
    d_t = stage(c_win | c_big.replicate(width - 1), f"{name}_d_t", width - 1)
    d_sign = stage(c_sign, f"{name}_d_sign")
    return d_t, d_sign


class EorsLane(wiring.Component):
    """One EORS estimate: a saturating fixed-point sum of signed power-of-two-ish terms.

    Computes, for one output, exactly :func:`ganpu.model.eors.eors_acc` /
    :func:`~ganpu.model.eors.eors_mask` (``docs/eors.md``): the accumulator starts at
    ``T(bias, 1.0)`` (``params.use_bias``) or 0, every term ``T(x, w)`` is added with
    saturation, and the output is live when forced (an Inf/NaN operand of a formed term
    or of the used bias) or ``acc > params.threshold``.

    Each term costs a sign xor, a 5-bit exponent add, an ``(m+1) x (m+1)``-bit
    significand product built from ``m+1`` shifted partial products (no multiplier
    primitive), one barrel shift with truncation and a clamp; the negation of a
    negative term is the accumulator adder's carry-in.

    **Bias.** With ``use_bias`` the lane has a second, narrower term pipe (no product)
    for ``T(bias, 1.0)``, so a sum takes its bias and its first term in the same cycle;
    it is about a third of the lane. With ``use_bias`` off that pipe is absent and the
    ``bias`` port ignored; sending the bias as the sum's first term instead (``x`` =
    bias, ``w`` = 1.0 = 0x3C00; ``T`` is symmetric) gives exactly the ``use_bias``
    estimate for one extra cycle per sum.

    **Cycle rule** (same as :class:`ganpu.arith.mac.Fp16Mac` with one slot). Every
    cycle, valid or not, does for the one running sum:

    * ``first`` = 1: the sum restarts from ``T(bias, 1.0)`` (0 if ``bias`` is +-0 or
      ``use_bias`` is off; the forced flag restarts from "bias is Inf/NaN");
      otherwise it continues.
    * the term ``T(x, w)`` is added if ``valid`` = 1 and neither operand is +-0; a
      bubble or a zero operand changes nothing (not even with Inf/NaN on the other side).
    * ``last`` = 1: the sum including this cycle's term is final; ``acc``, ``forced``
      and ``live`` show it with ``o_valid`` = 1 exactly ``latency`` cycles later.
      ``first`` + ``last`` on a bubble emits the bias estimate alone.

    **Scale-aware mode** (``params.rel`` not None). The lane also keeps ``mag``, the
    saturating ``width``-bit unsigned sum of the magnitudes of the bias term and of every
    term (the same clamped magnitudes, so no second shifter), and the output is live when
    forced or ``acc + F(qe, mag) > threshold`` with ``qe = rel + floor(log2 n)``, ``n``
    the sum's terms with a nonzero ``x`` (a 16-bit saturating counter): ``F`` is one
    right shift of ``mag`` by ``qe // 2 + qe % 2`` and, for odd ``qe``, the add of that
    value shifted once more (``docs/eors.md``). The level ``rel`` is an input read with
    ``last`` (so a host can move it per layer between tasks); in absolute mode the port,
    ``mag`` and their logic are absent.

    Latency ``latency`` = 6 cycles from a cycle carrying ``last`` to its ``o_valid``
    (decode, product, shift, clamp, accumulate, output register); throughput one term
    per cycle, and a new sum may start on the cycle after a ``last``. The accumulator
    feedback is a single add-and-saturate, so a sum's terms come on consecutive cycles.
    Before the first ``first`` the accumulator holds its reset value 0.

    Ports
    -----
    valid : In(1)     a term is present this cycle
    x, w : In(16)     binary16 operands of the term (activation, weight)
    first : In(1)     this cycle starts a new sum
    bias : In(16)     binary16 bias, read when ``first`` = 1 (ignored without use_bias)
    last : In(1)      this cycle ends the sum
    acc : Out(signed(width))  final accumulator (LSB = 2**-frac), valid with o_valid
    forced : Out(1)   forced live by an Inf/NaN operand
    live : Out(1)     ``forced | (acc > threshold)``: the output must be computed
                      (scale-aware: ``forced | (acc + F(rel, mag) > threshold)``)
    o_valid : Out(1)  one cycle per completed sum
    rel : In(5)       scale-aware mode only: the level q, read with ``last``
    mag : Out(width)  scale-aware mode only: final magnitude sum, valid with o_valid
    """

    latency = 6

    def __new__(cls, params=DEFAULT_EORS):
        # Refuse bad parameters before the component exists: nothing half-built is left
        # for Amaranth to report as "created but never used".
        check_params(params)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, params=DEFAULT_EORS):
        self.params = check_params(params)
        super().__init__({
            "valid": In(1),
            "x": In(16),
            "w": In(16),
            "first": In(1),
            "bias": In(16),
            "last": In(1),
            "acc": Out(signed(params.width)),
            "forced": Out(1),
            "live": Out(1),
            "o_valid": Out(1),
            **({"rel": In(5), "mag": Out(params.width)} if params.rel is not None else {}),
        })

    @staticmethod
    def model(x_vec, w_vec, bias=0, params=DEFAULT_EORS):
        """``{"acc", "forced", "live"}`` (plus ``"mag"`` in scale-aware mode, for the
        level ``params.rel``) of one sum of ``x_vec[k] x w_vec[k]`` (binary16 bits)
        with binary16 ``bias``, by :func:`ganpu.model.eors.eors_state`."""
        x = np.asarray(x_vec, dtype=np.uint16).reshape(1, -1)
        w = np.asarray(w_vec, dtype=np.uint16).reshape(1, -1)
        b = np.asarray([bias], dtype=np.uint16)
        acc, mag, forced, L = eors_state(x, w, b, params)
        live = bool(predicted_live(acc, mag, forced, L, params)[0, 0])
        out = {"acc": int(acc[0, 0]), "forced": bool(forced[0, 0]), "live": live}
        if params.rel is not None:
            out["mag"] = int(mag[0, 0])
        return out

    def elaborate(self, platform):
        m = Module()
        p = self.params
        W = p.width
        hi, lo = p.hi, p.lo

        def stage(value, name, shape=None):
            reg = Signal(shape if shape is not None else len(value), name=name)
            m.d.sync += reg.eq(value)
            return reg

        # -- A: decode. Specials decode like normals (E = 16): the spec adds their
        # clamped term too, and the forced flag makes the value irrelevant to live.
        x, w = _Operand(self.x, p.m), _Operand(self.w, p.m)
        a_formed = stage(self.valid & ~x.zero & ~w.zero, "a_formed")
        a_special = stage(x.special | w.special, "a_special")
        a_sign = stage(x.sign ^ w.sign, "a_sign")
        a_esum = stage(x.eb + w.eb, "a_esum", 6)
        a_sx = stage(x.sig, "a_sx", p.m + 1)
        a_sw = stage(w.sig, "a_sw", p.m + 1)
        a_first = stage(self.first, "a_first")
        a_last = stage(self.last, "a_last")

        # -- B, C, D: significand product as m+1 shifted partial products summed as a
        # balanced tree (adder depth log2(m+1)), then shift, clamp, sign
        n = 2 * p.m + 2
        parts = [Mux(a_sw[i], a_sx << i, 0) for i in range(p.m + 1)]
        while len(parts) > 1:
            parts = [parts[i] + parts[i + 1] if i + 1 < len(parts) else parts[i]
                     for i in range(0, len(parts), 2)]
        mag = Mux(a_formed, parts[0], 0)
        # sh = Ex + Ew + frac - 2m with E = eb - 15
        d_t, d_sign = _term_pipe(stage, "term", n, W, mag, a_esum, p.frac - 2 * p.m - 30, a_sign)
        b_fspecial = stage(a_formed & a_special, "b_fspecial")
        c_fspecial = stage(b_fspecial, "c_fspecial")
        d_fspecial = stage(c_fspecial, "d_fspecial")
        b_first = stage(a_first, "b_first")
        c_first = stage(b_first, "c_first")
        d_first = stage(c_first, "d_first")
        b_last = stage(a_last, "b_last")
        c_last = stage(b_last, "c_last")
        d_last = stage(c_last, "d_last")

        # The bias term T(b, 1.0) = Sb * 2^(Eb + frac - m): its own narrower pipe
        # (no product), beside the term's so that it meets d_first.
        if p.use_bias:
            b = _Operand(self.bias, p.m)
            ab_sig = stage(Mux(b.zero, 0, b.sig), "ab_sig", p.m + 1)
            ab_special = stage(b.special, "ab_special")
            ab_sign = stage(b.sign, "ab_sign")
            ab_eb = stage(b.eb, "ab_eb", 5)
            db_t, db_sign = _term_pipe(stage, "bias", p.m + 1, W, ab_sig, ab_eb, p.frac - p.m - 15, ab_sign)
            d_bias = Mux(db_sign, -db_t, db_t)
            d_bmag = db_t
            bb_special = stage(ab_special, "bb_special")
            cb_special = stage(bb_special, "cb_special")
            d_bspecial = stage(cb_special, "d_bspecial")
        else:
            d_bias = C(0, signed(W))
            d_bmag = C(0, W - 1)
            d_bspecial = C(0, 1)

        # -- E: the loop: one add and a saturation. |term| <= hi, so W+1 bits hold the
        # exact sum and its top two bits tell the overflow direction.
        acc = Signal(signed(W))
        forced = Signal()
        base = Mux(d_first, d_bias, acc)
        total = Signal(signed(W + 1))
        # -t = ~t + 1: the term enters in ones' complement and its sign is the carry-in,
        # so negating costs no adder of its own
        ones = Cat(d_t ^ d_sign.replicate(W - 1), d_sign).as_signed()
        m.d.comb += total.eq(base + ones + d_sign)
        # overflow shows as the top two bits differing: no comparator in the loop
        with m.Switch(total[W - 1:W + 1]):
            with m.Case(0b01):
                m.d.sync += acc.eq(hi)
            with m.Case(0b10):
                m.d.sync += acc.eq(lo)
            with m.Default():
                m.d.sync += acc.eq(total)
        m.d.sync += forced.eq(Mux(d_first, d_bspecial, forced) | d_fspecial)
        e_last = stage(d_last, "e_last")

        if p.rel is None:
            over = acc > p.threshold
        else:
            # scale-aware: a second, unsigned loop beside acc; the terms' magnitudes are
            # the clamped d_t (and bias), so it costs one adder and a saturation, no shift
            mag = Signal(W)
            mtotal = Signal(W + 1)
            m.d.comb += mtotal.eq(Mux(d_first, d_bmag, mag) + d_t)
            m.d.sync += mag.eq(Mux(mtotal[W], (1 << W) - 1, mtotal[:W]))
            # n: terms with a nonzero activation, a 16-bit saturating count at the
            # input; at last, qe = rel + floor(log2 n) travels down the pipe with it, so
            # the level may change from one sum to the next
            cnt = Signal(16)
            base = Mux(self.first, 0, cnt)
            xnz = self.valid & ~x.zero
            n_now = Signal(16)
            m.d.comb += n_now.eq(Mux(base == 0xFFFF, base, base + xnz))
            m.d.sync += cnt.eq(n_now)
            lg = C(0, 4)
            for i in range(1, 16):
                lg = Mux(n_now[i], i, lg)
            qe = self.rel + lg
            for st in "abcde":
                qe = stage(qe, f"{st}_qe", 6)
            # F(qe, mag) = u + (qe odd ? u >> 1 : 0) with u = mag >> (qe//2 + qe%2): one
            # barrel shift and one add, off the loop
            u = Signal(W)
            m.d.comb += u.eq(mag >> (qe[1:6] + qe[0]))
            margin = u + Mux(qe[0], u >> 1, 0)
            over = acc + margin > p.threshold
            m.d.sync += self.mag.eq(mag)

        # -- F: registered outputs; the threshold compare sits here, off the loop
        m.d.sync += [
            self.acc.eq(acc),
            self.forced.eq(forced),
            self.live.eq(forced | over),
            self.o_valid.eq(e_last),
        ]
        return m
