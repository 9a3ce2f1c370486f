"""The descriptor checker never accepts a task that would leave a buffer.

On :class:`ganpu.core.descriptor.DescriptorChecker` of the smallest geometry (every
descriptor field free in every cycle, since the checker reads it in the ``start``
cycle only; ``start`` free but at least ``latency`` cycles after the last one, the
contract's throughput), whenever ``done`` comes with ``OK``, for the descriptor taken
at that ``start`` and every free index ``m < M``, ``n < N``, ``k < K`` (a second free
output ``(m2, n2)`` for the overlap rule):

* op, act and the convolution mode are defined codes and M, N, K are non-zero;
* OUT ``o_base + m*o_sm + n*o_sn``, BIAS ``bias_base + n`` (with ``bias``) and the
  mask bit ``m*N + n`` are inside their buffers, and in a plain (FC) task also A
  ``a_base + m*a_sm + k*a_sk``, B ``b_base + n*b_sn + k*b_sk``, the compressed-A
  entry ``m*K + k`` and, in an EORS task, the BW word ``(n // P)*K + k``: every
  access, not only the last one the checker itself computes (a convolution's A and B
  addresses follow its implicit im2col, ``docs/conv.md``, not proved here);
* two different outputs never share an OUT element;
* ``done`` comes exactly ``latency`` cycles after ``start``.

Depth ``latency + 3`` (``start`` in any of the first cycles, the verdict ``latency``
cycles later). Covers: OK for
a task whose A, OUT and mask accesses reach the last element of their buffers; OK for
an EORS task with bias; a refusal.
"""

from amaranth.hdl import Assert, Assume, Cat, Cover, Signal

from ganpu.core.config import CoreConfig, Geometry
from ganpu.core.descriptor import Act, ConvMode, DescriptorChecker, Error, Op
from ganpu.delay import delay

from sby import Harness

CONFIG = CoreConfig(lanes=1, geom=Geometry(a_bits=2, b_bits=3, out_bits=2, bias_bits=2, mask_bits=2),
                    eors_lanes=2)
DEPTH = DescriptorChecker.latency + 3


def properties(m, ck, accept=()):
    cfg = ck.config
    g = cfg.geom
    P = cfg.eors_lanes
    w = g.dim_bits
    # the live descriptor is free in every cycle (the core hands over its task port,
    # whose driver may change it after start); the verdict is of the one at start
    d = Signal(ck.desc.shape(), name="desc_at_start")
    with m.If(ck.start):
        m.d.sync += d.eq(ck.desc)
    # one start per verdict: no start in the latency - 1 cycles after a start
    recent = Signal(ck.latency - 1, name="recent_starts")
    m.d.sync += recent.eq(Cat(ck.start, recent[:-1]))
    m.d.comb += Assume(~(ck.start & recent.any()))
    first = Signal(init=1)
    m.d.sync += first.eq(0)
    # free witnesses, constant over the run
    idx = {}
    for name in ("mi", "ni", "ki", "mj", "nj"):
        s = idx[name] = Signal(w, name=name)
        past = Signal(w, name=f"{name}_past")
        m.d.sync += past.eq(s)
        m.d.comb += Assume(first | (s == past))
    mi, ni, ki, mj, nj = (idx[x] for x in ("mi", "ni", "ki", "mj", "nj"))
    # (driven from free top-level inputs by design(): an undriven signal is not free)
    M, N, K = d.m, d.n, d.k
    inside = (mi < M) & (ni < N) & (ki < K)
    # ``accept`` turns those verdicts into OK: a mutant checker the proof must refute
    ok = ck.done & (ck.error == Error.OK)
    for code in accept:
        ok = ok | (ck.done & (ck.error == code))
    eors = d.eors & (d.op == Op.FP) & (d.act == Act.RELU)
    with m.If(ok):
        m.d.comb += Assert((d.op.as_value() != 3) & (d.act.as_value() != 3) &
                           (M != 0) & (N != 0) & (K != 0), "undefined code or empty task accepted")
        m.d.comb += Assert(d.conv.as_value() != 3, "undefined convolution mode accepted")
        with m.If(inside):
            m.d.comb += [
                Assert(d.o_base + mi * d.o_sm + ni * d.o_sn < g.depth("out"), "OUT access outside"),
                Assert(~d.bias | (d.bias_base + ni < g.depth("bias")), "BIAS access outside"),
                Assert(mi * N + ni < g.depth("mask"), "mask bit outside"),
            ]
            with m.If((mj < M) & (nj < N) & ((mj != mi) | (nj != ni))):
                m.d.comb += Assert(mi * d.o_sm + ni * d.o_sn != mj * d.o_sm + nj * d.o_sn,
                                   "two outputs share an OUT element")
        # A and B by their strides in a plain (FC) task; a convolution addresses them
        # by its implicit im2col (docs/conv.md), checked by the core's conv benches
        with m.If(inside & (d.conv == ConvMode.FC)):
            m.d.comb += [
                Assert(d.a_base + mi * d.a_sm + ki * d.a_sk < g.depth("a"), "A access outside"),
                Assert(d.b_base + ni * d.b_sn + ki * d.b_sk < g.depth("b"), "B access outside"),
                Assert(mi * K + ki < g.depth("a"), "compressed A entry outside"),
                Assert(~eors | ((ni >> (P.bit_length() - 1)) * K + ki < g.depth("b") // P),
                       "BW word outside"),
            ]
    m.d.comb += Assert(ck.done == delay(m, ck.start, ck.latency, name="start_seen"))
    m.d.comb += [
        Cover(ok & (M > 1) & (N > 1) & (K > 1) &
              (d.a_base + (M - 1) * d.a_sm + (K - 1) * d.a_sk == g.depth("a") - 1) &
              (d.o_base + (M - 1) * d.o_sm + (N - 1) * d.o_sn == g.depth("out") - 1) &
              (M * N == g.depth("mask"))),
        Cover(ok & eors & d.bias & (N > P)),
        Cover(ck.done & (ck.error == Error.OUT_OVERLAP)),
    ]
    return idx


def design(accept=()):
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In
    from amaranth.hdl import Module, ResetSignal

    dut = DescriptorChecker(CONFIG)
    w = CONFIG.geom.dim_bits

    class Top(wiring.Component):
        def __init__(self):
            members = {name: mem for name, mem in dut.signature.members.items()}
            members.update({x: In(w) for x in ("mi", "ni", "ki", "mj", "nj")})
            super().__init__(members)

        def elaborate(self, platform):
            m = Module()
            m.submodules.dut = dut
            m.d.comb += [dut.desc.eq(self.desc), dut.start.eq(self.start),
                         self.done.eq(dut.done), self.error.eq(dut.error)]
            m.d.comb += Assume(~ResetSignal())
            idx = properties(m, dut, accept)
            m.d.comb += [idx[x].eq(getattr(self, x)) for x in idx]
            return m
    return Top()


PROOFS = {"checker": (design, DEPTH)}
