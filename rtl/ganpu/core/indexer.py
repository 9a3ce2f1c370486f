"""Input-zero skipping: the compressed copy of A, with the implicit im2col of
convolutions (``docs/conv.md``)."""

from amaranth.hdl import Cat, Const, Module, Signal, signed, Mux
from amaranth.lib import data, wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from .config import Geometry, check_type, CheckedComponent
from .descriptor import descriptor_layout, ConvMode
from . import im2col

__all__ = ["Indexer", "row_layout", "entry_layout"]


def entry_layout(geom):
    """One compressed element of A: the value and the B offset ``k*b_sk`` of its k."""
    return data.StructLayout({"a": 16, "boff": geom.dim_bits + 1})


def row_layout(geom):
    """Where row m of the compressed A lives: entries ``start .. end-1``."""
    return data.StructLayout({"start": geom.a_bits + 1, "end": geom.a_bits + 1})


class Indexer(CheckedComponent):
    """Input-zero skipping: compresses each row of A to its non-zero elements.

    Walks A row by row (``a_base + m*a_sm + k*a_sk``, addresses formed by additions, no
    multiplier), writes every element whose magnitude is non-zero, with its B offset
    ``k*b_sk``, to the compressed buffer (from entry 0), and emits one row record per
    row. Signed zeros are dropped: the project's zero-skip rule never forms their
    products.

    In a convolution task (``conv`` ROWS or TAPS) the walk is the implicit im2col of
    :func:`ganpu.core.im2col.tap_table`: for each row only the valid taps, in
    increasing k, each with the A address of its input pixel and its B offset; padding
    and inserted zeros are never read. The row set-up is a pipeline of three stages:
    per axis the first valid tap, its pixel and the two bounds whose minimum is the
    count of valid taps (dividing and multiplying by the stride or dilation, 1 or 2 as
    the checker enforces, is a shift by 0 or 1 bit), computed for the next row while
    the current one is set up and walked; then the counts and the three products of
    the first address and offset; then their sums. A row costs two set-up cycles, then
    one cycle per valid tap (addresses by additions); a row without a valid tap issues
    its (empty) record in its second set-up cycle; a task's first row waits one cycle
    more, for the first stage. :meth:`issue_cycles` is the count.

    Timing: one element of A per cycle. FC: element i (row-major, i = m*K + k) is read at
    cycle ``start + 1 + i``; its entry is written and, for the last element of a row,
    the row record is queued :attr:`STAGES` cycles later, and offered on ``rows``
    :attr:`latency` cycles after ``start + 1 + i`` when the queue is empty. Issue
    stalls only while the row queue could not hold every row end in flight, so a
    consumer that always takes rows sees the last record ``issue_cycles(desc) +
    latency`` cycles after ``start`` (``M*K + latency`` in FC).

    Parameters
    ----------
    geom : Geometry

    Ports
    -----
    start : In(1)                      one-cycle pulse; ``desc`` held until done
    desc : In(descriptor_layout)       uses m, k, a_base, a_sm, a_sk, b_sk and the conv fields
    a_rd : In(ReadPort.Signature)      the A buffer (synchronous read)
    acomp_wr : In(WritePort.Signature) the compressed buffer (``entry_layout``)
    rows : Out(stream.Signature(row_layout))
    busy : Out(1)
    """

    ROW_QUEUE_DEPTH = 8
    STAGES = 2  # A read in flight, A data registered
    latency = STAGES + 2  # + the row queue's write and output register

    @classmethod
    def check_parameters(cls, geom):
        check_type("geom", geom, Geometry)

    def __init__(self, geom):
        self.geom = geom
        super().__init__({
            "start": In(1),
            "desc": In(descriptor_layout(geom)),
            "a_rd": In(ReadPort.Signature(addr_width=geom.a_bits, shape=16)),
            "acomp_wr": In(WritePort.Signature(addr_width=geom.a_bits, shape=entry_layout(geom))),
            "rows": Out(stream.Signature(row_layout(geom))),
            "busy": Out(1),
        })

    @staticmethod
    def model(a_buf, desc):
        """``(entries, rows)``: the compressed buffer's first entries as ``(a, boff)``
        pairs and the row records as ``(start, end)`` pairs, for A buffer image
        ``a_buf`` and descriptor ``desc`` (taps from :func:`ganpu.core.im2col.tap_table`)."""
        valid, a_addr, boff = im2col.tap_table(desc)
        entries, rows = [], []
        for mi in range(desc["m"]):
            start = len(entries)
            for ki in range(desc["k"]):
                if valid[mi, ki]:
                    a = int(a_buf[a_addr[mi, ki]])
                    if a & 0x7FFF:
                        entries.append((a, int(boff[ki])))
            rows.append((start, len(entries)))
        return entries, rows

    @staticmethod
    def issue_cycles(desc):
        """Cycles from ``start`` to the last element's read (or last empty row's
        record) with a consumer that always takes rows: ``M*K`` in FC; in a convolution
        two set-up cycles per row plus one per valid tap, and one for the first row's
        first set-up stage."""
        if not desc.get("conv", 0):
            return desc["m"] * desc["k"]
        valid, _, _ = im2col.tap_table(desc)
        return 1 + 2 * desc["m"] + int(valid.sum())

    def _axis(self, m, name, task, t, t1, n_in_m1, n_in_c, out_n_m1, out_n_c, kern_m1):
        """First half of the set-up of one axis, for the row whose coordinate register
        is ``t`` (ROWS: ``o*stride - pad``; TAPS: the kernel index): ``(bfirst, ifirst,
        ok, am1, bm1)``, combinational (registered by the caller): the first valid tap's
        B index and input pixel, and the count of valid taps less one as ``min(am1,
        bm1)`` when ``ok``; ``am1, bm1 >= 0`` when ``ok``, so the axis has no valid tap
        exactly when ``ok`` is low (``ok`` as the terms :meth:`_ok` combines after the
        register). The minimum is taken in the next set-up stage: both
        halves in one cycle were the Indexer's critical path (``docs/synthesis.md``).
        The walk compares its tap counters with the count less one, so no ``+ 1`` is
        formed here and no ``- 1`` there. ``t1`` is ``t + 1``, a register beside ``t``;
        ``*_m1``: the task's ``n - 1``, registered at ``start``: no carry chain of their
        own here; ``task``: the mode, stride-2, dilation-2, flip and pad, registered too; ``*_c``: ``min(n, 8)``, registered at ``start``, the bound of a TAPS
        first output or pixel (at most 7): a 4-bit compare, not a full-width one (the
        core's critical path, ``docs/synthesis.md``). ``t`` is never below ``-pad >=
        -7`` (``o*stride - pad``, or a kernel index). The checker admits stride and
        dilation 1 or 2 only, so each ``// D``, ``* S`` is a shift by 0 or 1 bit: a
        divider by a descriptor field here was the core's critical path
        (``docs/conv.md``)."""
        d = self.geom.dim_bits
        mode_rows, S2, D2, flip, P = task
        # ROWS: first k with t + k >= 0 and a multiple of dil (a pixel, not an inserted zero)
        neg = t[-1]
        kf = Signal(d + 4, name=f"{name}_kf")
        # q*D - t: the odd bit of t with dil 2, else 0 (no subtractor); -t <= 7 when
        # t < 0: a 3-bit negation
        m.d.comb += kf.eq(Mux(neg, (0 - t[:3])[:3], D2 & t[0]))
        # the first pixel ceil(t / D) when t >= 0 (``(t + 1) >> 1`` with dil 2), else 0;
        # both dilations' bound and span are formed from flip-flops, in parallel, and
        # chosen after their carry chains (one before them was the Indexer's critical
        # path, docs/synthesis.md)
        q1, q2 = t, t1 >> 1
        r_if = Mux(neg, 0, Mux(D2, q2, q1))
        r_c1, r_c2 = q1 <= n_in_m1, q2 <= n_in_m1
        r_bm1 = Mux(neg, n_in_m1, Mux(D2, n_in_m1 - q2, n_in_m1 - q1))
        r_span = kern_m1 - kf[:3]
        r_am1 = Mux(D2, r_span >> 1, r_span)
        r_bf = Mux(flip, kern_m1 - kf[:3], kf[:3])
        # TAPS: first position o with o*stride + t - pad >= 0. The kernel index u and
        # pad are 3 bits, so o <= 7 and the first pixel o*stride + u - pad is 0 (or, with
        # stride 2, the parity of pad - u) when pad > u, else u - pad: 3 bits, no adder
        # chain through o
        u = t.as_unsigned()[:3]
        late = P > u
        of = Signal(3, name=f"{name}_of")
        m.d.comb += of.eq(Mux(late, Mux(S2, (P - u + 1) >> 1, P - u), 0))
        t_if = Signal(3, name=f"{name}_tif")
        m.d.comb += t_if.eq(Mux(late, S2 & (P[0] ^ u[0]), (u - P)[:3]))
        t_ok = (of < out_n_c) & (t_if < n_in_c)
        # ok's terms, combined by :meth:`_ok` after the pre-stage's register (the
        # multiplexers after the carry chains were the Indexer's critical path)
        ok = Signal(5, name=f"{name}_ok")
        m.d.comb += ok.eq(Cat(kf <= kern_m1, neg, r_c1, r_c2, t_ok))
        # (n_in - 1 - t_if) // stride, one subtraction (its value matters only when
        # t_ok: the span is not negative then)
        t_am1, t_bm1 = out_n_m1 - of, Mux(S2, (n_in_m1 - t_if) >> 1, n_in_m1 - t_if)
        bf, i_f, am1, bm1 = (Signal(d + 1, name=f"{name}_{x}") for x in ("bf", "if", "am1", "bm1"))
        m.d.comb += [bf.eq(Mux(mode_rows, r_bf, of)), i_f.eq(Mux(mode_rows, r_if, t_if)),
                     am1.eq(Mux(mode_rows, r_am1, t_am1)), bm1.eq(Mux(mode_rows, r_bm1, t_bm1))]
        return bf, i_f, ok, am1, bm1

    @staticmethod
    def _ok(task, terms):
        """Whether the axis has a valid tap, from :meth:`_axis`' registered terms: in
        ROWS the first tap inside the kernel and (before the image, or the first
        pixel inside it for the task's dilation); in TAPS the first output and pixel
        inside their bounds."""
        mode_rows, _, D2, _, _ = task
        kf_ok, neg, c1, c2, t_ok = terms
        return Mux(mode_rows, kf_ok & (neg | Mux(D2, c2, c1)), t_ok)

    def elaborate(self, platform):
        m = Module()
        g = self.geom
        d = g.dim_bits
        w = d + 2  # addresses may exceed a buffer only in tasks the checker rejected
        desc = self.desc

        room = Signal()
        m.submodules.rowq = rowq = SyncFIFOBuffered(width=row_layout(g).size,
                                                    depth=self.ROW_QUEUE_DEPTH)
        # Issue only while the queue has room for a row end in every stage plus the
        # element being issued (each can end a row when K = 1): nothing is dropped.
        m.d.comb += room.eq(rowq.level < self.ROW_QUEUE_DEPTH - (self.STAGES + 1))

        # what is issued this cycle, from either walker
        issue, null, last = Signal(), Signal(), Signal()
        cur_addr, cur_boff = Signal(w), Signal(d + 1)

        # Values derived from the descriptor are registered every cycle, without an
        # enable: ``desc`` is held from ``start`` to the end of the task, so each is
        # valid from the cycle after ``start``, when the walks begin, and ``start``
        # (the checker's verdict in the core) drives no wide enable.
        # The last row's and column's index (no subtractor in the walkers' row ends;
        # the shape of the expression, so 0 compares as -1 did)
        m_m1, k_m1_fc = Signal((desc.m - 1).shape()), Signal((desc.k - 1).shape())
        m.d.sync += [m_m1.eq(desc.m - 1), k_m1_fc.eq(desc.k - 1)]

        # --- FC walker: a_base + m*a_sm + k*a_sk
        run = Signal()
        mi, ki = Signal(d), Signal(d)
        row_addr, addr, boff = Signal(w), Signal(w), Signal(d + 1)
        fc_issue = Signal()
        m.d.comb += fc_issue.eq(run & room)
        last_k = ki == k_m1_fc
        with m.If(fc_issue):
            with m.If(last_k):
                m.d.sync += [ki.eq(0), mi.eq(mi + 1), boff.eq(0),
                             row_addr.eq(row_addr + desc.a_sm), addr.eq(row_addr + desc.a_sm)]
                with m.If(mi == m_m1):
                    m.d.sync += run.eq(0)
            with m.Else():
                m.d.sync += [ki.eq(ki + 1), boff.eq(boff + desc.b_sk), addr.eq(addr + desc.a_sk)]

        # --- convolution walker (docs/conv.md): rows (r0, r1, r2), taps (c, y, x)
        rows_mode = desc.conv == ConvMode.ROWS
        S, D, P = desc.cstride, desc.dil, desc.pad
        S2, D2 = S == 2, D == 2  # the checker admits 1 and 2 only: products are shifts
        R1 = Mux(rows_mode, desc.out_h, desc.kh)
        R2 = Mux(rows_mode, desc.out_w, desc.kern)
        Q0 = Mux(rows_mode, desc.chan, desc.img)
        # the mode and the narrow fields the set-up decodes, registered (see above)
        task = rows_r, s2_r, d2_r, flip_r, pad_r = (
            Signal(name="rows_r"), Signal(name="s2_r"), Signal(name="d2_r"),
            Signal(name="flip_r"), Signal(3, name="pad_r"))
        m.d.sync += [rows_r.eq(rows_mode), s2_r.eq(S2), d2_r.eq(D2), flip_r.eq(desc.flip),
                     pad_r.eq(P)]
        inc = Signal(2)
        m.d.sync += inc.eq(Mux(rows_mode, S, 1))
        # the walk's last indices, registered at start like the axes' bounds
        R1m1, R2m1, Q0m1 = (Signal((x - 1).shape(), name=f"{n}m1")
                            for x, n in ((R1, "R1"), (R2, "R2"), (Q0, "Q0")))
        m.d.sync += [R1m1.eq(R1 - 1), R2m1.eq(R2 - 1), Q0m1.eq(Q0 - 1)]
        ty, tx = Signal(signed(d + 4)), Signal(signed(d + 4))
        ty1, tx1 = Signal(signed(d + 4)), Signal(signed(d + 4))  # ty + 1, tx + 1
        # each coordinate's first value and that + 1, for the load at start: one carry
        # chain each from the descriptor, in parallel (``2*oy0 + 1`` sets a bit, ``+ 1
        # - pad`` subtracts the 4-bit ``pad - 1``)
        ty_reset, tx_reset, ty_reset1, tx_reset1 = (
            Signal(signed(d + 4), name=x) for x in ("ty_reset", "tx_reset", "ty_reset1", "tx_reset1"))
        oy0, pm1 = desc.oy0, Signal(signed(4))
        m.d.comb += [
            pm1.eq(P - 1),
            ty_reset.eq(Mux(rows_mode, Mux(S2, (oy0 << 1) - P, oy0 - P), desc.ky0)),
            ty_reset1.eq(Mux(rows_mode, Mux(S2, Cat(Const(1, 1), oy0) - P, oy0 - pm1), desc.ky0 + 1)),
            tx_reset.eq(Mux(rows_mode, -P, 0)),
            tx_reset1.eq(Mux(rows_mode, -pm1, 1)),
        ]
        # the same values and their + 1, registered at start for the walk's wraps: no
        # subtractor or adder from the descriptor into the coordinate registers
        ty_rst, tx_rst, ty_rst1, tx_rst1 = (Signal(signed(d + 4), name=x) for x in
                                            ("ty_rst", "tx_rst", "ty_rst1", "tx_rst1"))
        m.d.sync += [ty_rst.eq(ty_reset), tx_rst.eq(tx_reset),
                     ty_rst1.eq(ty_reset1), tx_rst1.eq(tx_reset1)]
        r1, r2 = Signal(d), Signal(d)
        a_row0 = Signal(w)
        # the task's n - 1 values the set-up compares against, registered at start
        # (each the shape of its expression: a zero field gives -1, as in the comparison)
        h_m1, w_m1, oh_m1, ow_m1, k_m1 = m1 = [
            Signal((getattr(desc, x) - 1).shape(), name=f"{x}_m1")
            for x in ("in_h", "in_w", "out_h", "out_w", "kern")]
        # min(n, 8) of the four image and output sizes: a TAPS first pixel or output is
        # at most 7, so its bound compares in 4 bits
        h_c, w_c, oh_c, ow_c = c8 = [Signal(4, name=f"{x}_c")
                                     for x in ("in_h", "in_w", "out_h", "out_w")]
        m.d.sync += [r.eq(getattr(desc, x) - 1)
                     for r, x in zip(m1, ("in_h", "in_w", "out_h", "out_w", "kern"))]
        m.d.sync += [r.eq(Mux(getattr(desc, x) >= 8, 8, getattr(desc, x)))
                     for r, x in zip(c8, ("in_h", "in_w", "out_h", "out_w"))]
        by, iy, oky, ay, by_ = self._axis(m, "y", task, ty, ty1, h_m1, h_c, oh_m1, oh_c, k_m1)
        bx, ix, okx, ax, bx_ = self._axis(m, "x", task, tx, tx1, w_m1, w_c, ow_m1, ow_c, k_m1)
        # per-task steps: a tap along x moves the pixel by di_x and B by db_x, a
        # tap along y by a row step and db_y (signed: a flipped kernel walks back);
        # registered at start, so the walk's adders start from flip-flops, not from a
        # negation of a descriptor field
        di_x, dy_a = Signal(2), Signal(w)
        db_x, db_y = Signal(signed(d + 4)), Signal(signed(d + 4))
        dbx, dby = Mux(D2, desc.b_sx << 1, desc.b_sx), Mux(D2, desc.b_sy << 1, desc.b_sy)
        m.d.sync += [
            di_x.eq(Mux(rows_mode, 1, S)),
            dy_a.eq(Mux(rows_mode | ~S2, desc.in_w, desc.in_w << 1)),
            db_x.eq(Mux(rows_mode, Mux(desc.flip, -dbx, dbx), desc.b_sx)),
            db_y.eq(Mux(rows_mode, Mux(desc.flip, -dby, dby), desc.b_sy)),
        ]
        # The row set-up is a three-stage pipeline. The pre-stage registers the axes'
        # first halves every cycle from the coordinate registers, which advance to the
        # next row in set-up 1, so they hold row i + 1's while row i is set up and
        # walked (at least one cycle before its set-up 1); only a task's first row waits
        # a cycle for it ("Setup-Pre"). Set-up 1 takes the counts (less one) and the
        # three products, each a multiplier between registers; set-up 2 adds.
        oky0, okx0 = Signal(5), Signal(5)
        ay0, by0_, ax0, bx0_, iy0, ix0, by0, bx0 = (
            Signal(d + 1, name=f"{x}0") for x in ("ay", "by_", "ax", "bx_", "iy", "ix", "by", "bx"))
        m.d.sync += [oky0.eq(oky), okx0.eq(okx), ay0.eq(ay), by0_.eq(by_), ax0.eq(ax),
                     bx0_.eq(bx_), iy0.eq(iy), ix0.eq(ix), by0.eq(by), bx0.eq(bx)]
        oky1, okx1 = Signal(), Signal()
        ny_m1, nx_m1 = Signal(d + 1), Signal(d + 1)
        ix1 = Signal(d + 1)
        # the products, truncated to the widths of the sums they enter (mod 2^w)
        py1, a_row1 = Signal(w), Signal(w)
        pby1, pbx1 = Signal(d + 1), Signal(d + 1)
        a_off, b_off = Signal(w), Signal(d + 1)
        # run registers
        # per tap counter (y, x, channel) its value + 1 and whether the tap is the last
        # of its axis, registered: the walk's enables start from flip-flops, not from
        # a compare
        cy1, cx1, cc1 = Signal(d + 1), Signal(d + 1), Signal(d + 1)
        ly, lx, lc = Signal(), Signal(), Signal()
        ny_z, nx_z, q0_z, m_last = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [q0_z.eq(Q0m1 == 0), m_last.eq(mi == m_m1)]
        c_addr, y_addr, c_boff, y_boff = Signal(w), Signal(w), Signal(d + 1), Signal(d + 1)
        caddr, cboff = Signal(w), Signal(d + 1)

        conv_issue, conv_null, conv_last, row_end = Signal(), Signal(), Signal(), Signal()
        m.d.comb += row_end.eq(conv_last & (conv_issue | conv_null))
        with m.FSM(name="conv") as fsm:
            with m.State("Idle"):
                with m.If(self.start & (desc.conv != ConvMode.FC)):
                    m.next = "Setup-Pre"
            with m.State("Setup-Pre"):
                # the first row's coordinates, loaded at start, reach the pre-stage
                m.next = "Setup-Axes"
            with m.State("Setup-Axes"):
                m.d.sync += [oky1.eq(self._ok(task, oky0)), okx1.eq(self._ok(task, okx0)), ix1.eq(ix0), a_row1.eq(a_row0),
                             py1.eq(iy0 * desc.in_w),
                             pby1.eq(by0 * desc.b_sy), pbx1.eq(bx0 * desc.b_sx),
                             # valid taps less one, read only when both axes are ok
                             ny_m1.eq(Mux(ay0 < by0_, ay0, by0_)),
                             nx_m1.eq(Mux(ax0 < bx0_, ax0, bx0_)),
                             ny_z.eq((ay0 == 0) | (by0_ == 0)),
                             nx_z.eq((ax0 == 0) | (bx0_ == 0))]
                m.next = "Setup-Start"
            with m.State("Setup-Start"):
                # the row's base and first pixel add in parallel with the product's
                # addition
                a0 = Signal(w)
                a_first = Signal(w)
                b0 = Signal(d + 1)
                m.d.comb += [a0.eq(py1 + ix1), a_first.eq((a_row1 + ix1) + py1),
                             b0.eq(pby1 + pbx1)]
                m.d.sync += [a_off.eq(a0), b_off.eq(b0),
                             cy1.eq(1), cx1.eq(1), cc1.eq(1), ly.eq(ny_z), lx.eq(nx_z), lc.eq(q0_z),
                             c_addr.eq(a_row1), y_addr.eq(a_first), caddr.eq(a_first),
                             c_boff.eq(0), y_boff.eq(b0), cboff.eq(b0)]
                with m.If(~oky1 | ~okx1):
                    # no valid tap: the row's empty record goes down the pipeline
                    m.d.comb += [conv_null.eq(room), conv_last.eq(1)]
                    with m.If(row_end):
                        m.next = "Setup-Axes"
                        with m.If(m_last):
                            m.next = "Idle"
                with m.Else():
                    m.next = "Run"
            with m.State("Run"):
                m.d.comb += conv_issue.eq(room)
                m.d.comb += conv_last.eq(lx & ly & lc)
                with m.If(room):
                    with m.If(~lx):
                        m.d.sync += [cx1.eq(cx1 + 1), lx.eq(cx1 == nx_m1),
                                     caddr.eq(caddr + di_x), cboff.eq(cboff + db_x)]
                    with m.Elif(~ly):
                        m.d.sync += [cx1.eq(1), lx.eq(nx_z),
                                     cy1.eq(cy1 + 1), ly.eq(cy1 == ny_m1),
                                     y_addr.eq(y_addr + dy_a), caddr.eq(y_addr + dy_a),
                                     y_boff.eq(y_boff + db_y), cboff.eq(y_boff + db_y)]
                    with m.Elif(~lc):
                        na, nb = c_addr + desc.a_sk, c_boff + desc.b_sk
                        m.d.sync += [cx1.eq(1), lx.eq(nx_z), cy1.eq(1), ly.eq(ny_z),
                                     cc1.eq(cc1 + 1), lc.eq(cc1 == Q0m1),
                                     c_addr.eq(na), y_addr.eq(na + a_off), caddr.eq(na + a_off),
                                     c_boff.eq(nb), y_boff.eq(nb + b_off), cboff.eq(nb + b_off)]
                    with m.Else():
                        m.next = "Setup-Axes"
                        with m.If(m_last):
                            m.next = "Idle"
        with m.If(row_end):
            m.d.sync += mi.eq(mi + 1)
        # the row's coordinates have entered set-up 1: the next row's
        with m.If(fsm.ongoing("Setup-Axes")):
            m.d.sync += [r2.eq(r2 + 1), tx.eq(tx + inc), tx1.eq(tx1 + inc)]
            with m.If(r2 == R2m1):
                m.d.sync += [r2.eq(0), tx.eq(tx_rst), tx1.eq(tx_rst1), r1.eq(r1 + 1),
                             ty.eq(ty + inc), ty1.eq(ty1 + inc)]
                with m.If(r1 == R1m1):
                    m.d.sync += [r1.eq(0), ty.eq(ty_rst), ty1.eq(ty_rst1),
                                 a_row0.eq(a_row0 + desc.a_sm)]
        walking = ~fsm.ongoing("Idle")

        m.d.comb += [
            issue.eq(fc_issue | conv_issue | conv_null),
            null.eq(conv_null),
            last.eq(Mux(run, last_k, conv_last)),
            cur_addr.eq(Mux(run, addr, caddr)),
            cur_boff.eq(Mux(run, boff, cboff)),
        ]

        # stage registers: 1 = memory read in flight, 2 = data registered
        wptr, row_start = Signal(g.a_bits + 1), Signal(g.a_bits + 1)
        v1, null1, last1, boff1 = Signal(), Signal(), Signal(), Signal(d + 1)
        v2, null2, last2, boff2, a2 = Signal(), Signal(), Signal(), Signal(d + 1), Signal(16)
        m.d.comb += self.a_rd.addr.eq(cur_addr)
        m.d.sync += [v1.eq(issue), null1.eq(null), last1.eq(last), boff1.eq(cur_boff)]
        m.d.sync += [v2.eq(v1), null2.eq(null1), last2.eq(last1), boff2.eq(boff1),
                     a2.eq(self.a_rd.data)]

        nz = (a2[0:15] != 0) & ~null2
        wr = self.acomp_wr
        m.d.comb += [wr.en.eq(v2 & nz), wr.addr.eq(wptr), wr.data.a.eq(a2), wr.data.boff.eq(boff2)]
        wnext = wptr + (v2 & nz)
        m.d.sync += wptr.eq(wnext)

        rec = Signal(row_layout(g))
        rq = rowq.w_stream
        m.d.comb += [rec.start.eq(row_start), rec.end.eq(wnext),
                     rq.valid.eq(v2 & last2), rq.payload.eq(rec)]
        with m.If(v2 & last2):
            m.d.sync += row_start.eq(wnext)
        wiring.connect(m, rowq.r_stream, wiring.flipped(self.rows))
        m.d.comb += self.busy.eq(run | walking | v1 | v2 | rowq.r_rdy)
        # last, so a new task's start overrides every other update of these registers
        with m.If(self.start):
            m.d.sync += [mi.eq(0), ki.eq(0), row_addr.eq(desc.a_base),
                         addr.eq(desc.a_base), boff.eq(0), wptr.eq(0), row_start.eq(0),
                         r1.eq(0), r2.eq(0), ty.eq(ty_reset), tx.eq(tx_reset),
                         ty1.eq(ty_reset1), tx1.eq(tx_reset1),
                         a_row0.eq(desc.a_base)]
            m.d.sync += run.eq(desc.conv == ConvMode.FC)
        return m
