"""The task descriptor of the compute core, its enums, error codes and the checker."""

from amaranth.hdl import Module, Signal, Mux, Value, Array, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..delay import delay
from .config import CoreConfig, Geometry, check_type, CheckedComponent

__all__ = ["Op", "Act", "ConvMode", "Error", "Geometry", "descriptor_layout", "DescriptorChecker",
           "CONV_FIELDS", "EORS_FIELDS", "DEFAULT_ZERO_FIELDS"]


class Op(enum.Enum, shape=2):
    """Training phase of a task; selects the epilogue rule (see ``core/model.py``)."""
    FP = 0
    BP = 1
    WG = 2


class Act(enum.Enum, shape=2):
    IDENTITY = 0
    RELU = 1
    LEAKY = 2


class ConvMode(enum.Enum, shape=2):
    """How A and B are addressed (``docs/conv.md``): FC = plain strides; ROWS = a
    row of A is one output pixel (image, oy, ox) and k a kernel tap (c, ky, kx)
    (FP and BP of a convolution or transposed convolution); TAPS = a row of A is one
    kernel tap (c, ky, kx) and k one output position (image, oy, ox) (WG)."""
    FC = 0
    ROWS = 1
    TAPS = 2


class Error(enum.Enum, shape=4):
    """Status of the last task. Anything but OK means nothing was written."""
    OK = 0
    BAD_OP = 1
    BAD_ACT = 2
    ZERO_DIM = 3
    A_RANGE = 4
    B_RANGE = 5
    OUT_RANGE = 6
    BIAS_RANGE = 7
    MASK_RANGE = 8
    BAD_COMBO = 9
    WORK_RANGE = 10
    EORS_RANGE = 11
    OUT_OVERLAP = 12
    BAD_CONV = 13
    CONV_SHAPE = 14


#: Widths of the narrow convolution fields (the wide ones are ``Geometry.dim_bits``).
CONV_NARROW = {"conv": ConvMode, "kern": 3, "cstride": 2, "dil": 2, "pad": 3, "flip": 1,
               "ky0": 3, "kh": 3}
#: The convolution fields, all 0 in an FC task (their defaults).
CONV_FIELDS = ("conv", "kern", "cstride", "dil", "pad", "flip", "ky0", "kh", "img", "chan",
               "in_h", "in_w", "oy0", "out_h", "out_w", "b_sy", "b_sx")
#: The EORS level of the task (``docs/eors.md``, "Self-calibration"): 0 = the
#: CoreConfig's level, q = 1..31 the scale-aware level q; ignored in absolute mode.
#: ``eors_key``: the self-calibration sampling key of the task's row 0 (row m uses
#: ``eors_key + m``, ``docs/eors.md``, "Sampling"); ignored without sampling.
EORS_FIELDS = {"eors_rel": 5, "eors_key": 16}
#: Fields that may be left out of a descriptor dict (they default to 0).
DEFAULT_ZERO_FIELDS = CONV_FIELDS + tuple(EORS_FIELDS)


def descriptor_layout(geom):
    """``out[m, n] = epilogue(init[n] + sum_k A[m, k] * B[n, k])`` for m < M, n < N.

    Element (m, k) of A is at ``a_base + m*a_sm + k*a_sk``; (n, k) of B at
    ``b_base + n*b_sn + k*b_sk``; (m, n) of OUT at ``o_base + m*o_sm + n*o_sn``; the
    masks (in and out) at bit ``m*N + n``; ``init[n]`` is the widened ``BIAS[bias_base + n]``
    when ``bias`` is set, else -0.0. Strides make BP and WG read transposed operands in
    place, and let an im2col address generator feed convolutions later.

    ``eors`` asks an FP task with ReLU to predict its output mask (exponent-only ReLU
    speculation) from the BW buffer, whose word ``g*K + k`` holds ``B[g*P + p, k]`` in
    lane ``p`` (P = the core's ``eors_lanes``); other activations and phases ignore it.

    ``conv`` (a :class:`ConvMode`, FC = 0 by default) replaces the A and B address
    rules by an implicit im2col (``docs/conv.md``, :mod:`ganpu.core.im2col`): ``kern``,
    ``cstride``, ``dil`` (zero insertion), ``pad``, ``flip``, ``ky0``, ``kh``, ``img``, ``chan``,
    ``in_h``, ``in_w``, ``oy0``, ``out_h``, ``out_w``, ``b_sy``, ``b_sx``; all 0 in an
    FC task.

    ``eors_rel`` (5 bits, after the convolution fields) is the task's scale-aware EORS
    level q (``docs/eors.md``): 0 keeps the core's configured level
    (``CoreConfig.eors.rel``), 1..31 replace it; ignored in absolute mode.
    ``eors_key`` (16 bits, after it) is the sampling key of the task's row 0 (row m
    samples with key ``eors_key + m`` mod 2**16); ignored by a core that does not sample.
    """
    d = geom.dim_bits
    return data.StructLayout({
        "op": Op, "act": Act, "slope": 16, "use_mask": 1, "bias": 1, "eors": 1,
        "m": d, "n": d, "k": d,
        "a_base": d, "a_sm": d, "a_sk": d,
        "b_base": d, "b_sn": d, "b_sk": d,
        "o_base": d, "o_sm": d, "o_sn": d,
        "bias_base": d,
        **CONV_NARROW,
        **{name: d for name in CONV_FIELDS if name not in CONV_NARROW},
        **EORS_FIELDS,
    })


class DescriptorChecker(CheckedComponent):
    """Validates a descriptor against the buffer sizes before anything is written.

    Checks: opcode and activation known; M, N, K non-zero; a convolution's fields
    (``docs/conv.md``; stride and dilation 1 or 2, so that no block divides by them);
    the last element of A, B, OUT, BIAS and of the masks inside its buffer; the compressed copy of A fits
    (``WORK_RANGE``: M*K entries in FC, the task's valid taps in a convolution, counted
    exactly, :func:`ganpu.core.im2col.task_taps`); the outputs do not share OUT elements (rows or columns of OUT
    are disjoint blocks, see :func:`ganpu.core.model.out_disjoint`: without it the
    core's write order, not the model, would decide which result survives); the
    combination is meaningful (WG only with identity; a
    supplied FP mask only with ReLU; EORS without a supplied mask, with ``b_sk`` = 1 and
    a word-aligned bias); an EORS task's ``ceil(N/P)*K`` weight words fit BW.

    The products are formed in registered stages (they map to DSP multipliers), so
    the verdict comes ``latency`` = 5 cycles after ``start``; throughput one descriptor
    per task. Stage 1 reads the live descriptor and registers it (with the minus-one
    dimensions, the first products, the low border terms of the exact tap count and
    its high border offsets);
    stages 2 to 5 start from those flip-flops: stage 2 the stride products and the
    tap count's sums, stage 3 the last addresses, the combination rules and
    ``Py * img * chan`` (one multiplier, its factors saturated past A's depth by bit
    tests), stage 4 the last product ``* Px`` (registered: a DSP output of its own)
    beside the codes ranked before and after WORK_RANGE, stage 5 the verdict, which
    that product only picks between (``docs/synthesis.md``).
    :meth:`model` is the verdict for a descriptor (a dict of field values).

    Parameters
    ----------
    config : CoreConfig
        The buffer geometry and ``eors_lanes`` (the BW grouping) the checks use.

    Ports
    -----
    desc : In(descriptor_layout)  read in the ``start`` cycle (registered then)
    start : In(1)                 one-cycle pulse
    done : Out(1)                 one-cycle pulse, ``latency`` cycles after ``start``
    error : Out(Error)            valid with ``done``
    """

    latency = 5

    @classmethod
    def check_parameters(cls, config):
        check_type("config", config, CoreConfig)

    def __init__(self, config):
        self.config = config
        self.geom = config.geom
        self.eors_lanes = config.eors_lanes
        super().__init__({
            "desc": In(descriptor_layout(config.geom)),
            "start": In(1),
            "done": Out(1),
            "error": Out(Error),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        d = self.desc
        w = 2 * g.dim_bits + 2
        # stage 1 registers the descriptor in the start cycle, so the later stages start
        # from flip-flops and the caller need not hold it: the core hands over its live
        # task port, with no multiplexer behind its accept decision (docs/synthesis.md)
        dr = Signal(descriptor_layout(g), name="desc_r")
        with m.If(self.start):
            m.d.sync += dr.eq(d)

        def conv_fields(x):
            conv = x.conv.as_value()
            rows = conv == ConvMode.ROWS.value
            R = [Mux(rows, x.img, x.chan), Mux(rows, x.out_h, x.kh), Mux(rows, x.out_w, x.kern)]
            Q = [Mux(rows, x.chan, x.img), Mux(rows, x.kern, x.out_h), Mux(rows, x.kern, x.out_w)]
            return conv, rows, conv == ConvMode.TAPS.value, R, Q

        # stage 1: minus-one dimensions and products
        m1, n1, k1 = (Signal(g.dim_bits, name=f"{x}1") for x in "mnk")
        zero = Signal()
        m.d.sync += [m1.eq(d.m - 1), n1.eq(d.n - 1), k1.eq(d.k - 1),
                     zero.eq((d.m == 0) | (d.n == 0) | (d.k == 0))]
        # convolution (docs/conv.md): the row space R and the reduction space Q
        conv, rows, taps, R, Q = conv_fields(d)
        bad1 = Signal()
        m.d.sync += bad1.eq(
            (conv == 3) |
            # stride and dilation 1 or 2: the Indexer divides and multiplies by them
            # with 1-bit shifts, no divider in its per-row set-up (docs/conv.md)
            ((conv != 0) & ((d.kern == 0) | (d.cstride == 0) | (d.cstride == 3) |
                            (d.dil == 0) | (d.dil == 3) | (d.in_h == 0) | (d.in_w == 0))) |
            (taps & ((d.dil != 1) | d.flip | (d.oy0 != 0) | (d.ky0 + d.kh > d.kern))) |
            (rows & ((d.ky0 != 0) | (d.kh != 0))))
        r01, q01 = Signal(w, name="r01"), Signal(w, name="q01")
        hv, wv = Signal(g.dim_bits + 3, name="hv"), Signal(g.dim_bits + 3, name="wv")
        r0m1, q0m1, q1m1, q2m1 = (Signal(g.dim_bits, name=x) for x in ("r0m1", "q0m1", "q1m1", "q2m1"))
        last_y, last_x = Signal(g.dim_bits + 1, name="last_y"), Signal(g.dim_bits, name="last_x")
        h1 = Signal(g.dim_bits, name="h1")
        S2, D2 = d.cstride == 2, d.dil == 2  # other values are refused: shifts, not products
        m.d.sync += [
            r01.eq(R[0] * R[1]), q01.eq(Q[0] * Q[1]),
            hv.eq(Mux(D2, (d.in_h - 1) << 1, d.in_h - 1) + 1),
            wv.eq(Mux(D2, (d.in_w - 1) << 1, d.in_w - 1) + 1),
            r0m1.eq(R[0] - 1), q0m1.eq(Q[0] - 1), q1m1.eq(Q[1] - 1), q2m1.eq(Q[2] - 1),
            last_y.eq(d.oy0 + d.out_h - 1), last_x.eq(d.out_w - 1), h1.eq(d.in_h - 1),
        ]
        # the task's valid taps (the compressed copy's entries), img*chan*Py*Px: each
        # axis' pairs as the unclipped count less the border terms (stages 1 and 2),
        # then one product per stage (3 and 4)
        ic = Signal(2 * g.dim_bits, name="img_chan")
        m.d.sync += ic.eq(d.img * d.chan)
        py = self._axis_pairs(m, "y", d.oy0, d.out_h, Mux(taps, d.ky0, 0), Mux(taps, d.kh, d.kern),
                              d.in_h, d.pad, S2, D2, dr.dil == 2)
        px = self._axis_pairs(m, "x", 0, d.out_w, 0, d.kern, d.in_w, d.pad, S2, D2, dr.dil == 2)

        # stage 2: stride products (registered so each DSP output has its own stage)
        d = dr
        conv, rows, taps, R, Q = conv_fields(d)
        S2 = d.cstride == 2
        prods = {}
        for name, x, s in [("am", m1, d.a_sm), ("ak", k1, d.a_sk), ("bn", n1, d.b_sn),
                           ("bk", k1, d.b_sk), ("om", m1, d.o_sm), ("on", n1, d.o_sn)]:
            p = prods[name] = Signal(w, name=f"p_{name}")
            m.d.sync += p.eq(x * s)
        mn = Signal(w)
        mk = Signal(w)
        gk = Signal(w)
        lp = exact_log2(self.eors_lanes)
        m.d.sync += [mn.eq(d.m * d.n), mk.eq(d.m * d.k), gk.eq(((n1 >> lp) + 1) * d.k)]
        zero2 = Signal()
        m.d.sync += zero2.eq(zero)
        # stage 1's flops follow the live task port every cycle, so stage 3 reads its
        # own copies of them: the port's driver may change desc after start
        m2, n2 = Signal(g.dim_bits, name="m1_2"), Signal(g.dim_bits, name="n1_2")
        m.d.sync += [m2.eq(m1), n2.eq(n1)]
        # kern*kern (the EORS B-offset rule) from a table and registered: a 3-bit square
        # needs no multiplier, whose unregistered output led stage 3's longest path
        kk = Signal(6, name="kern_sq")
        m.d.sync += kk.eq(Array(i * i for i in range(8))[d.kern])
        # the row and reduction space sizes, compared with M and K: R0*R1 (Q0*Q1)
        # saturated to 2**dim_bits, above every M and K, before the last factor, so
        # that each product is one MULT18X18D with no adder after it (the carry chain
        # of a wider product led the checker's stage 2) and equals M (K) exactly when
        # the unsaturated one does (a factor of 0 gives 0 either way)
        db = g.dim_bits
        rprod, qprod = Signal(2 * db + 1, name="rprod"), Signal(2 * db + 1, name="qprod")

        def sat_dim(x):
            return Mux(x[db:].any(), 1 << db, x[:db])

        hi_y, hi_x = Signal(signed(w + 4), name="hi_y"), Signal(signed(w + 4), name="hi_x")
        cp = {}
        for name, x, s in [("ar", r0m1, d.a_sm), ("aq", q0m1, d.a_sk), ("ay", h1, d.in_w),
                           ("bq", q0m1, d.b_sk), ("by", q1m1, d.b_sy), ("bx", q2m1, d.b_sx)]:
            p = cp[name] = Signal(w, name=f"cp_{name}")
            m.d.sync += p.eq(x * s)
        # saturation past A's depth D = 2**a_bits by bit tests, not comparators: a
        # factor above D becomes 2**(a_bits+1) - 1 (> D), one below stays, so that a
        # product of saturated factors exceeds D exactly when the true product does
        sb = g.a_bits + 1
        top = (1 << sb) - 1

        def over(x):  # x > top, x non-negative
            return x[sb:].any()

        def above_depth(x):  # x > D, x non-negative
            return x[sb:].any() | (x[g.a_bits] & x[:g.a_bits].any())

        ic_s = Signal(sb, name="img_chan_s")
        bad2 = Signal()
        m.d.sync += [
            rprod.eq(sat_dim(r01) * R[2]), qprod.eq(sat_dim(q01) * Q[2]),
            hi_y.eq(Mux(S2, last_y << 1, last_y) + d.kern - d.pad - hv),
            hi_x.eq(Mux(S2, last_x << 1, last_x) + d.kern - d.pad - wv),
            ic_s.eq(Mux(over(ic), top, ic)),
            bad2.eq(bad1),
        ]
        # stage 3: last addresses
        a_last, b_last, o_last, bias_last = (Signal(w + 1, name=x) for x in
                                             ("a_last", "b_last", "o_last", "bias_last"))
        m.d.sync += [
            a_last.eq(d.a_base + prods["am"] + prods["ak"]),
            b_last.eq(d.b_base + prods["bn"] + prods["bk"]),
            o_last.eq(d.o_base + prods["om"] + prods["on"]),
            bias_last.eq(d.bias_base + n2),
        ]
        mn3, gk3, zero3 = Signal(w), Signal(w), Signal()
        m.d.sync += [mn3.eq(mn), gk3.eq(gk), zero3.eq(zero2)]
        conv_bad, conv_shape = Signal(), Signal()
        ca_last, cb_last = Signal(w + 2, name="ca_last"), Signal(w + 2, name="cb_last")
        m.d.sync += [
            conv_bad.eq(bad2 | ((conv != 0) & ((rprod != d.m) | (qprod != d.k)))),
            conv_shape.eq((d.pad >= d.kern) | (hi_y >= d.kern + d.dil - 1) |
                          (hi_x >= d.kern + d.dil - 1)),
            ca_last.eq(d.a_base + cp["ar"] + cp["aq"] + cp["ay"] + d.in_w - 1),
            cb_last.eq(d.b_base + prods["bn"] + cp["bq"] + cp["by"] + cp["bx"]),
        ]
        # work: Py times img*chan straight into the multiplier (Py's low bits; its sign
        # and overflow travel beside the product), Px saturated, M*K past D
        yc = Signal(2 * sb, name="work_yc")
        py_neg, py_over, ic_nz = Signal(name="py_neg"), Signal(name="py_over"), Signal(name="ic_nz")
        px_s, mk_big = Signal(sb, name="px_s"), Signal(name="mk_big")
        m.d.sync += [
            yc.eq(ic_s * py[:sb]),
            py_neg.eq(py[-1]), py_over.eq(over(py[:-1])), ic_nz.eq(ic_s != 0),
            px_s.eq(Mux(px[-1], 0, Mux(over(px[:-1]), top, px[:sb]))),
            mk_big.eq(above_depth(mk)),
        ]
        # OUT rows are disjoint blocks (o_sm past a whole row) or columns are: reuses
        # the stride products, so no comparison wider than the last-address sums
        rows_ok, cols_ok = Signal(), Signal()
        m.d.sync += [
            rows_ok.eq(((n2 == 0) | (d.o_sn != 0)) & ((m2 == 0) | (d.o_sm > prods["on"]))),
            cols_ok.eq(((m2 == 0) | (d.o_sm != 0)) & ((n2 == 0) | (d.o_sn > prods["om"]))),
        ]
        eors_d = d.eors & (d.op == Op.FP) & (d.act == Act.RELU)
        # the speculator reads BW word g*K + boff: B offsets must be k itself
        linear_b = Mux(rows, ~d.flip & (d.b_sk == kk) & (d.b_sy == d.kern) & (d.b_sx == 1),
                       (conv == 0) & (d.b_sk == 1))
        # the combination rules from the registered descriptor, a stage ahead of the
        # verdict
        eors, combo_bad = Signal(name="eors"), Signal(name="combo_bad")
        m.d.sync += [
            eors.eq(eors_d),
            combo_bad.eq(((d.op == Op.WG) & (d.act != Act.IDENTITY)) |
                         ((d.op == Op.FP) & d.use_mask & (d.act != Act.RELU)) |
                         ((d.op != Op.FP) & d.use_mask) |
                         # the speculator reads weights row-major from BW and biases by
                         # whole words, and one mask source is enough
                         (eors_d & (d.use_mask | ~linear_b |
                                    (d.bias & (d.bias_base[:lp] != 0 if lp else 0))))),
        ]

        # stage 4: the last product, registered, so that the DSP's output has a stage of
        # its own (it led the core's longest path at 4 stages, docs/synthesis.md); the
        # checks ranked before WORK_RANGE and after it, decided without that product,
        # are registered beside it
        wprod = Signal(2 * sb, name="work_xyc")
        m.d.sync += wprod.eq(yc[:sb] * px_s)
        first_c, rest_c = Signal(Error, name="first_c"), Signal(Error, name="rest_c")
        with m.If(d.op.as_value() == 3):  # the one code Op does not define
            m.d.comb += first_c.eq(Error.BAD_OP)
        with m.Elif(d.act.as_value() == 3):
            m.d.comb += first_c.eq(Error.BAD_ACT)
        with m.Elif(zero3):
            m.d.comb += first_c.eq(Error.ZERO_DIM)
        with m.Elif(combo_bad):
            m.d.comb += first_c.eq(Error.BAD_COMBO)
        with m.Elif(conv_bad):
            m.d.comb += first_c.eq(Error.BAD_CONV)
        with m.Elif((conv != 0) & conv_shape):
            m.d.comb += first_c.eq(Error.CONV_SHAPE)
        with m.Elif(Mux(conv != 0, ca_last, a_last) >= g.depth("a")):
            m.d.comb += first_c.eq(Error.A_RANGE)
        with m.Elif(Mux(conv != 0, cb_last, b_last) >= g.depth("b")):
            m.d.comb += first_c.eq(Error.B_RANGE)
        with m.Elif(o_last >= g.depth("out")):
            m.d.comb += first_c.eq(Error.OUT_RANGE)
        with m.Elif(d.bias & (bias_last >= g.depth("bias"))):
            m.d.comb += first_c.eq(Error.BIAS_RANGE)
        with m.Elif(mn3 > g.depth("mask")):
            m.d.comb += first_c.eq(Error.MASK_RANGE)
        with m.Else():
            m.d.comb += first_c.eq(Error.OK)
        with m.If(eors & (gk3 > g.depth("b") // self.eors_lanes)):
            m.d.comb += rest_c.eq(Error.EORS_RANGE)
        # last, so that every earlier verdict stays reachable (an M*N past the masks
        # fits OUT only with shared elements)
        with m.Elif(~rows_ok & ~cols_ok):
            m.d.comb += rest_c.eq(Error.OUT_OVERLAP)
        with m.Else():
            m.d.comb += rest_c.eq(Error.OK)
        first, rest = Signal(Error, name="first"), Signal(Error, name="rest")
        # the work rule's terms other than the last product (a factor of zero gives no
        # work; a factor past D gives more than D unless the other one is zero)
        is_conv, work_pre, work_ok, mk_big4 = (Signal(name=x) for x in
                                               ("is_conv", "work_pre", "work_ok", "mk_big4"))
        m.d.sync += [
            first.eq(first_c), rest.eq(rest_c),
            is_conv.eq(conv != 0),
            work_ok.eq(~py_neg & (px_s != 0)),
            work_pre.eq((py_over & ic_nz) | over(yc)),
            mk_big4.eq(mk_big),
        ]

        # stage 5: the verdict, first failing check in this order; saturated
        # Py*img*chan times saturated Px exceeds D exactly when the count does, so the
        # last product only picks between the codes ranked before and after WORK_RANGE
        work_big = Mux(is_conv, work_ok & (work_pre | above_depth(wprod)), mk_big4)
        err = Mux(first != Error.OK, first, Mux(work_big, Error.WORK_RANGE, rest))

        m.d.comb += self.done.eq(delay(m, self.start, self.latency, name="done"))
        m.d.sync += self.error.eq(err)
        return m

    def _axis_pairs(self, m, name, o0, n_o, t0, n_t, n_in, pad, S2, D2, D2_r):
        """The valid (output, tap) pairs of one axis (:func:`ganpu.core.im2col.axis_pairs`)
        for outputs ``o0 .. o0+n_o-1`` and taps ``t0 .. t0+n_t-1`` of a descriptor that
        passes the conv checks: a signed value formed in stage 3 from two stages of
        registers (the arguments are stage-1 values of the live descriptor; ``D2_r`` is
        ``dil == 2`` of the registered one).

        With ``a_o = o*cstride + t0 - pad`` the first tap position of output o, the pairs
        are, over the outputs, the multiples of ``dil`` in ``[a_o, a_o + n_t)``, less
        those below 0 (``L``: only outputs ``o < pad <= 6`` have any) and those past
        the input's last position (``H``: only the last 7 outputs, since CONV_SHAPE
        bounds the last window's excess ``hb`` by ``kern + dil - 2 <= 7``). The
        unclipped count is ``n_o * n_t`` (``dil`` = 1) or ``n_o * (n_t >> 1)`` plus, for an
        odd ``n_t``, the outputs whose ``a_o`` is even (``dil`` = 2). Every product has a
        3-bit factor and every border term is a few bits wide: no divider, no wide
        multiplier.

        Timing: a border term ``clip(e) - clip(e - n_t)`` is a multiplexer on the signs
        and low bits of ``e`` and ``f = e - n_t`` (:meth:`_border`), not a subtraction.
        Stage 1 forms the product, the low border's terms and, for the high border,
        ``e`` and ``f`` of each of the last 7 outputs in 7 bits:
        ``hb = W + c`` with ``W = 2**S2*(o0 + n_o) - 2**D2*n_in`` wide and ``c`` narrow;
        ``e`` and ``f`` take ``W``'s low 7 bits (exact while ``W`` is in [-32, 31]: it
        matters up to 16, and below -32 every term is 0, which a flag from the full ``W``
        forces) plus ``c - j*cstride`` and ``c - n_t - j*cstride`` (3-bit fields only),
        registered in stage 1. Stage 2 takes the high border's terms and both sums."""
        g = self.geom
        border = self._border

        # stage 1: the unclipped count's product and its dil = 2 remainder
        half, odd = n_t >> 1, n_t[0]
        o0_odd = 0 if isinstance(o0, int) else o0[0]
        t0_odd = 0 if isinstance(t0, int) else t0[0]
        even = ~((~S2 & o0_odd) ^ t0_odd ^ pad[0])
        n_even = Mux(S2, Mux(even, n_o, 0), Mux(even, (n_o + 1) >> 1, n_o >> 1))
        cmul = Signal(g.dim_bits + 3, name=f"cmul_{name}")
        cadd = Signal(g.dim_bits, name=f"cadd_{name}")
        m.d.sync += [cmul.eq(n_o * Mux(D2, half, n_t)), cadd.eq(Mux(D2 & odd, n_even, 0))]
        # the low border's loss, one registered term per output o < 6
        low = []
        for o in range(6):
            x, xf = Signal(signed(6), name=f"lx_{name}{o}"), Signal(signed(6), name=f"lf_{name}{o}")
            m.d.comb += [x.eq(pad - t0 - Mux(S2, 2 * o, o)), xf.eq(pad - t0 - n_t - Mux(S2, 2 * o, o))]
            inside = (o0 <= o) & (o0 + n_o > o)
            t = Signal(3, name=f"lt_{name}{o}")
            m.d.sync += t.eq(Mux(inside, border(x, xf, n_t, (n_t + 1) >> 1, n_t >> 1, D2), 0))
            low.append(t)
        # hb = W + c: W = 2**S2*(o0 + n_o) - 2**D2*n_in, c = t0 + n_t - pad - cstride + dil - 1
        s_o = n_o if isinstance(o0, int) else o0 + n_o
        wide = Signal(signed(g.dim_bits + 4), name=f"hw_{name}")
        m.d.comb += wide.eq(Mux(S2, s_o << 1, s_o) - Mux(D2, n_in << 1, n_in))
        w7 = Signal(7, name=f"hw7_{name}")
        s7 = s_o[:7] if isinstance(o0, int) else o0[:7] + n_o[:7]
        m.d.comb += w7.eq(Mux(S2, s7 << 1, s7) - Mux(D2, n_in[:7] << 1, n_in[:7]))
        w_low = Signal(name=f"hlow_{name}")
        m.d.sync += w_low.eq(wide[-1] & ~wide[5:].all())
        # term j (output o1 - j, j < n_o): e = hb - j*cstride, f = e - n_t, registered
        # in stage 1 (from the task port, no multiplexer in front since 2d67e51), so
        # that stage 2 holds only the border terms and their sum (docs/synthesis.md)
        es, fs, live = [], [], Signal(7, name=f"hlive_{name}")
        n_t_r, up_r, dn_r = (Signal(3, name=f"{x}_{name}") for x in ("nt", "nt_up", "nt_dn"))
        m.d.sync += [n_t_r.eq(n_t), up_r.eq((n_t + 1) >> 1), dn_r.eq(n_t >> 1)]
        for j in range(7):
            e, f = Signal(signed(7), name=f"he_{name}{j}"), Signal(signed(7), name=f"hf_{name}{j}")
            js = Mux(S2, 2 * (j + 1), j + 1)
            m.d.sync += [
                e.eq(w7 + (t0 + n_t - pad + D2 - js)),
                f.eq(w7 + (t0 - pad + D2 - js)),
                live[j].eq(n_o > j),
            ]
            es.append(e)
            fs.append(f)

        # stage 2: the high border's terms and the sums
        high = [Mux(live[j] & ~w_low, border(es[j], fs[j], n_t_r, up_r, dn_r, D2_r), 0) for j in range(7)]
        base = Signal(signed(g.dim_bits + 5), name=f"pbase_{name}")
        hsum = Signal(6, name=f"hsum_{name}")
        m.d.sync += [base.eq(cmul + cadd - sum(low)), hsum.eq(sum(high))]
        # (stage 3 subtracts, straight into its multiplier)
        pairs = Signal(signed(g.dim_bits + 5), name=f"pairs_{name}")
        m.d.comb += pairs.eq(base - hsum)
        return pairs

    @staticmethod
    def _border(e, f, n, n_up, n_dn, dil2):
        """``clip(e) - clip(f)`` for ``f = e - n`` (``0 <= n <= 7``), where ``clip(x)``
        counts the multiples of ``dil`` in a run of ``x > 0`` positions that starts just
        past one (below 0, or past the last pixel: ``in_v`` is odd when ``dil`` = 2):
        ``x`` (``dil`` = 1) or ``x >> 1`` (2), and 0 when ``x <= 0``. A multiplexer on
        the signs and low bits, no subtraction: 0 when ``e <= 0``; when ``f`` is past 0
        too, ``n`` (``dil`` = 1; ``f = 0`` gives ``e = n``) or, for ``dil`` = 2,
        ``n_up = (n + 1) >> 1`` for an even ``e`` and ``n_dn = n >> 1`` for an odd one
        (both given, computed a stage earlier); else ``clip(e)`` (``e < n``: 3 bits)."""
        e_pos = ~e[-1] & (e != 0)
        f_pos = ~f[-1] & (f != 0)
        full = Mux(dil2, Mux(e[0], n_dn, n_up), n)
        return Mux(~e_pos, 0, Mux(Mux(dil2, f_pos, ~f[-1]), full, Mux(dil2, e[1:4], e[:3])))

    @staticmethod
    def model(desc, config):
        """The verdict (an :class:`Error`) for descriptor ``desc`` (dict of fields)."""
        from .model import check
        return check(desc, config.geom, config.eors_lanes)
