from amaranth.hdl import Module, Signal, Mux
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .. import numerics
from ..delay import delay
from .add import Fp32Add
from .mul import Fp16Mul

__all__ = ["Fp16Mac"]


class Fp16Mac(wiring.Component):
    """Interleaved multiply-accumulate ``acc_fp32 += fp16 x fp16`` over ``slots`` sums.

    The binary32 adder needs ``Fp32Add.latency`` cycles, so one running sum can take a
    new term only that often. Instead of splitting a sum into partial sums (which would
    change the rounding), the block keeps ``slots`` independent sums in a ring: each
    sum is one sequential binary32 sum, so its result equals
    ``numerics.dot(a_vec, b_vec, init)`` bit for bit.

    **Slot rule.** The slot of a cycle is implicit: consecutive cycles belong to
    consecutive slots, modulo ``slots`` (there is no slot counter: cycles t and
    t + ``slots`` always share a slot). The terms of one sum are therefore presented
    exactly ``slots`` cycles apart, and ``slots`` sums are in flight at once. Every
    cycle, valid or not, belongs to a slot and does, for that slot:

    * ``first`` = 1: the slot's sum restarts from ``init`` (the value left in the ring
      is dropped); otherwise it continues from the ring value.
    * the term ``a x b`` is added if ``i_valid`` = 1 and neither operand is +-0. A
      bubble (``i_valid`` = 0) or a term with a zero operand (project zero-skip rule:
      the product is never formed, not even 0 x Inf) leaves the slot's sum bit for
      bit unchanged, sign of zero included.
    * ``last`` = 1: the slot's sum including this cycle's term is final; it appears on
      ``o`` with ``o_valid`` = 1 exactly ``latency`` cycles later. ``first`` and
      ``last`` apply to bubbles too: ``first`` + ``last`` with no term emits ``init``.

    A slot's value before its first ``first`` is unspecified: every sum must begin
    with ``first``. ``first`` and ``last`` may share a cycle (a one-cycle sum).

    Latency ``Fp16Mul.latency + Fp32Add.latency + 1`` = 10 cycles from a cycle
    carrying ``last`` to its ``o_valid``; throughput one term per cycle (one term per
    slot every ``slots`` cycles); ``slots`` = ``Fp32Add.latency`` = 6. The multiplier
    sits before the loop, so only the adder's latency sets the ring length: a sum of
    K slot cycles whose first cycle is t has its result at
    t + ``slots`` * (K - 1) + ``latency``.

    Ports
    -----
    i_valid : In(1)   a term is present this cycle
    a, b : In(16)     binary16 operands of the term
    first : In(1)     this slot starts a new sum from ``init``
    init : In(32)     binary32 start value, read when ``first`` = 1
    last : In(1)      this slot's sum is complete after this cycle's term
    o : Out(32)       binary32 result, valid when ``o_valid``
    o_valid : Out(1)  one cycle per completed sum
    """

    slots = Fp32Add.latency
    latency = Fp16Mul.latency + Fp32Add.latency + 1

    i_valid: In(1)
    a: In(16)
    b: In(16)
    first: In(1)
    init: In(32)
    last: In(1)
    o: Out(32)
    o_valid: Out(1)

    @staticmethod
    def model(a, b, init):
        return numerics.dot(a, b, init)

    def elaborate(self, platform):
        m = Module()
        mul = m.submodules.mul = Fp16Mul()
        add = m.submodules.add = Fp32Add()
        m.d.comb += [mul.a.eq(self.a), mul.b.eq(self.b)]

        # The control travels beside the multiplier so it meets the product; the
        # last register of first/init is the combined select below.
        live = self.i_valid & (self.a[0:15] != 0) & (self.b[0:15] != 0)
        p_live = delay(m, live, Fp16Mul.latency, name="live_d")
        q_first = delay(m, self.first, Fp16Mul.latency - 1, name="first_d")
        q_init = delay(m, self.init, Fp16Mul.latency - 1, name="init_d")
        p_last = delay(m, self.last, Fp16Mul.latency, name="last_d")

        # The ring: the adder pipeline is the storage, its output feeds its own input
        # exactly Fp32Add.latency cycles after that slot's previous term went in.
        # A skipped term must not go through the adder: x + (-0) would canonicalize a
        # NaN init's payload, so the unchanged value rides a delay line of the same
        # length and replaces the sum.
        acc_in = Signal(32)
        bypass_q = delay(m, ~p_live, Fp32Add.latency - 1, name="bypass_d")
        held_q = delay(m, acc_in, Fp32Add.latency - 1, name="held_d")
        bypass = delay(m, bypass_q, 1, name="bypass_q_d")
        held = delay(m, held_q, 1, name="held_q_d")
        ring = Signal(32)
        m.d.comb += ring.eq(Mux(bypass, held, add.s))

        # The feedback path (adder output -> adder's magnitude compare) is the
        # slowest of the block, so it gets a single 2:1 mux: whether this slot's
        # value comes from the adder or from elsewhere (init on first, the held
        # value on a skipped term), and that elsewhere value, are both known a
        # cycle early and registered.
        sel = Signal()
        alt = Signal(32)
        m.d.sync += [sel.eq(q_first | bypass_q), alt.eq(Mux(q_first, q_init, held_q))]
        m.d.comb += acc_in.eq(Mux(sel, alt, add.s))
        m.d.comb += [add.a.eq(acc_in), add.b.eq(mul.p)]

        # Registered output: the consumer (a result FIFO or narrowing stage) then sees
        # a clean flip-flop instead of the ring's mux.
        r_last = delay(m, p_last, Fp32Add.latency, name="done_d")
        m.d.sync += [self.o.eq(ring), self.o_valid.eq(r_last)]
        return m
