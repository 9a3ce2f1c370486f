"""The DMA: strided tiles between the GBUF and the cores' buffers
(``docs/processor.md``)."""

from amaranth.hdl import Module, Signal, Mux, Cat, Const, Array, Value
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..core.config import Buf, check_type
from ..core.ports import HostPort
from ..delay import delay_line
from .config import ProcessorConfig, ProcessorComponent
from .gbuf import dma_read_signature, dma_write_signature
from .program import operand2_layout
from .transpose import Transpose

__all__ = ["Dma", "load_layout", "store_layout", "set_address"]


def set_address(core, buf, set, addr):
    """The host-port address of element ``addr`` of ``buf`` in buffer set ``set`` of a
    core of config ``core``: ``set * depth(buf) + addr`` (:class:`~ganpu.core.ports.HostPort`,
    ``docs/core.md``), ``addr`` with one set. Python ints (``buf`` a :class:`Buf`) give an
    int; Amaranth values (``buf`` a ``Buf`` signal) a value: the one place the DMA and its
    model place a set."""
    if core.buffer_sets == 1:
        return addr
    if isinstance(buf, Buf) and isinstance(set, int):
        return set * core.depth(buf) + addr
    # the set is the address bit above the buffer's depth (a power of two): an OR
    off = Const(0, 16)
    for b in Buf:
        off = Mux(buf == b, core.depth(b), off)
    return addr | Mux(set, off, 0)


def load_layout(cfg):
    """A load job: the operands of one task for the cores in ``group``; core ``c`` gets
    rows ``rows[c].m0 .. + rows[c].mc`` of A (and MASK_IN with ``mask_in``); B (and its
    EORS regrouping BW with ``bw``) and BIAS (with ``bias``) go to every core of the group.
    With two buffer sets, bit ``c`` of ``sets`` is the set core ``c`` is loaded into."""
    d, g = cfg.core.geom.dim_bits, cfg.gbuf_bits
    sets = {"sets": cfg.cores} if cfg.core.buffer_sets > 1 else {}
    return data.StructLayout({
        "group": cfg.cores, "rows": data.ArrayLayout(data.StructLayout({"m0": d, "mc": d}), cfg.cores),
        "n": d, "k": d, "a": operand2_layout(g), "b": operand2_layout(g),
        "bias": 1, "bias_base": g, "mask_in": 1, "mask_in_base": g, "bw": 1, **sets,
    })


def store_layout(cfg):
    """A store job: rows ``m0 .. m0+mc`` of a task's OUT (and MASK_OUT with
    ``store_mask``) from core ``core`` to the GBUF; with two buffer sets from set ``set``."""
    d, g = cfg.core.geom.dim_bits, cfg.gbuf_bits
    sets = {"set": 1} if cfg.core.buffer_sets > 1 else {}
    return data.StructLayout({
        "core": range(cfg.cores), "m0": d, "mc": d, "n": d, "out": operand2_layout(g),
        "store_mask": 1, "mask_out_base": g, **sets,
    })


class Dma(ProcessorComponent):
    """Moves one job at a time as a series of *passes*; a pass walks a (rows, cols)
    tile of the GBUF (base, row stride, column stride) while the core address counts
    0, 1, 2, ... (row-major, contiguous), except the BW pass whose core address is
    ``((n // P) * K + k) * P + n % P`` (``P`` = EORS lanes).

    Width (:meth:`pass_mode`): one element per cycle, or about ``W =
    cfg.core.host_words`` elements per cycle in a pass whose rows are whole W-element
    words of the core buffer (``cols mod W == 0``; not BW; a one-column tile is walked
    as one row first, the same words in the same order), or in a BW pass as below:

    * *wide*, with GBUF column stride 1: W consecutive GBUF words per cycle read
      (loads) or written (stores) through the banked GBUF's DMA port, one aligned word
      of the cores' host ports written or read;
    * *transposed*, a load with GBUF row stride 1 (the operands BP and WG read in
      place): bands of W rows, each walked column by column, one read of W
      consecutive GBUF words (one column of the band) per cycle into the
      :class:`~ganpu.processor.transpose.Transpose` buffer, whose rows come out W reads
      later as aligned core words (row ``i`` of a band's block of W columns goes to
      core address ``(r0 + i) * cols + c0``); a band of fewer than W rows at the
      bottom edge writes only its rows, and the last block is read out by as many
      steps as it has rows;
    * *transposed BW*, the BW pass of a B with GBUF column stride 1, ``N mod W == 0``
      and ``K > 1``: the (N, K) tile walked as its transpose (K rows, N columns, row
      stride 1) through the same buffer, so a read is W consecutive ``k`` of one
      ``n`` and a block's row ``i`` is W consecutive ``n`` (from ``n0``) of one ``k``:
      the aligned W-element part of BW at ``((n0 // P) * K + k) * P + n0 % P`` (W
      divides P; the core's host port writes a part of a BW word).

    Load job (from ``load``): B, BW (with ``bw``) and BIAS (with ``bias``), each read
    once from the GBUF and written to every core of the group in the same cycle
    (broadcast); then, core by core, the core's A rows and its MASK_IN rows (with
    ``mask_in``), after which ``loaded[c]`` pulses: core ``c`` has all its operands
    and may start while the DMA goes on with the next core's rows. Store job (from
    ``store``, taken first when both wait): OUT, then MASK_OUT (with ``store_mask``;
    bit 0 as a 0/1 word), read through the core's host port, whose data comes
    ``HostPort.read_latency`` cycles after the address.

    Two buffer sets (``cfg.core.buffer_sets`` = 2): a load job writes each core of its
    group in that core's set (``sets``), a store job reads its core's set ``set``; every
    core address goes through :func:`set_address` (``set * depth(buf) + e``), taken with
    the job, so the passes and their timing are those of one set.

    Latency: a pass of ``w`` words takes ``w`` issue cycles (:meth:`pass_issues`: ``w / W``
    when wide, ``ceil(rows / W) * cols + r + 1`` when transposed, ``r`` the rows of the
    last band) plus 1 (load) or ``read_latency`` (store) to drain, plus one set-up
    cycle and the cycle that sees its end (``w + 3`` for a load pass); a step the job skips (no BW, BIAS or MASK_IN,
    a core outside the group) one cycle, the end of the load job one more.
    ``loaded[c]`` pulses the cycle after core ``c``'s last pass; ``load_done`` /
    ``store_done`` the cycle after the job's last step. ``busy`` is high from taking
    a job to its done pulse; ``busy_cycles`` counts those cycles (CSR DMA).

    Ports
    -----
    load : In(stream.Signature(load_layout(cfg)))
    store : In(stream.Signature(store_layout(cfg)))
    load_done, store_done : Out(1), loaded : Out(cfg.cores)
    busy : Out(1), busy_cycles : Out(32)
    gbuf_rd, gbuf_wr : the GBUF's DMA ports (driver side), ``W`` words wide
    cores : Out(HostPort(cfg.core)).array(cfg.cores)
    """

    def __init__(self, cfg):
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        super().__init__({
            "load": In(stream.Signature(load_layout(cfg))),
            "store": In(stream.Signature(store_layout(cfg))),
            "load_done": Out(1), "loaded": Out(cfg.cores), "store_done": Out(1),
            "busy": Out(1), "busy_cycles": Out(32),
            "gbuf_rd": In(dma_read_signature(cfg)),
            "gbuf_wr": In(dma_write_signature(cfg)),
            "cores": Out(HostPort(cfg.core)).array(cfg.cores),
        })

    @staticmethod
    def model(cfg, kind, job, gbuf, cores):
        """Transaction-level model of one job: ``kind`` "load" or "store", ``job`` a
        dict of the payload fields, ``gbuf`` a numpy word array, ``cores`` a list of
        buffer dicts (``CoreConfig.zero_buffers`` shape; with two buffer sets each buffer
        ``CoreConfig.host_depth`` long, set ``s`` at ``set_address``); updated in place."""
        import numpy as np
        from ..host.lower import bw_image
        P = cfg.core.eors_lanes
        n, a, o = job["n"], job.get("a"), job.get("out")

        def at(buf, s):
            return set_address(cfg.core, buf, s, 0)

        if kind == "store":
            c, m0, mc = job["core"], job["m0"], job["mc"]
            s = job.get("set", 0)
            mi, ni = np.arange(m0, m0 + mc)[:, None], np.arange(n)[None, :]
            x = at(Buf.OUT, s)
            gbuf[(o["base"] + mi * o["s0"] + ni * o["s1"]).ravel()] = cores[c]["out"][x:x + mc * n]
            if job["store_mask"]:
                x = at(Buf.MASK_OUT, s)
                gbuf[job["mask_out_base"] + m0 * n + np.arange(mc * n)] = cores[c]["mask_out"][x:x + mc * n] & 1
            return
        k, b = job["k"], job["b"]
        B = gbuf[b["base"] + np.arange(n)[:, None] * b["s0"] + np.arange(k)[None, :] * b["s1"]]
        for c in range(cfg.cores):
            if not job["group"] >> c & 1:
                continue
            m0, mc = job["rows"][c]["m0"], job["rows"][c]["mc"]
            s = job.get("sets", 0) >> c & 1
            mi = np.arange(m0, m0 + mc)[:, None]
            x = at(Buf.A, s)
            cores[c]["a"][x:x + mc * k] = gbuf[a["base"] + mi * a["s0"] + np.arange(k)[None, :] * a["s1"]].ravel()
            if job["mask_in"]:
                x = at(Buf.MASK_IN, s)
                cores[c]["mask_in"][x:x + mc * n] = gbuf[job["mask_in_base"] + m0 * n + np.arange(mc * n)] & 1
            x = at(Buf.B, s)
            cores[c]["b"][x:x + n * k] = B.ravel()
            if job["bw"]:
                bw = bw_image(B, P)
                valid = (np.arange(bw.size) % P) + (np.arange(bw.size) // (P * k)) * P < n
                x = at(Buf.BW, s)
                cores[c]["bw"][x:x + bw.size][valid] = bw[valid]
            if job["bias"]:
                x = at(Buf.BIAS, s)
                cores[c]["bias"][x:x + n] = gbuf[job["bias_base"] + np.arange(n)]

    @staticmethod
    def pass_mode(cfg, rows, cols, srow, scol, bw=False, store=False, width=None):
        """How the DMA moves a pass of ``rows x cols`` words (GBUF row stride ``srow``,
        column stride ``scol``): ``(mode, rows, cols)`` with ``mode`` "wide",
        "transposed" or "narrow" and the tile as walked. With ``W`` > 1 (``width``,
        default ``cfg.core.host_words``) a one-column tile (not BW) is walked as one row
        (same GBUF words, same core addresses); then a pass whose rows are whole
        W-element words of the core buffer (``cols mod W == 0``) is *wide* with column
        stride 1, *transposed* (loads only, more than one row) with row stride 1. A BW
        pass (``rows`` = N, ``cols`` = K) is *transposed*, walked as ``(K, N)``, when
        ``1 < W <= P``, ``scol == 1``, ``N mod W == 0`` and ``K > 1``; else narrow."""
        W = cfg.core.host_words if width is None else width
        if bw:
            if 1 < W <= cfg.core.eors_lanes and scol == 1 and rows % W == 0 and cols > 1 \
                    and not store:
                return "transposed", cols, rows
            return "narrow", rows, cols
        if W > 1 and cols == 1:
            rows, cols, srow, scol = 1, rows, 0, srow
        whole = W > 1 and not bw and cols % W == 0
        if whole and scol == 1:
            return "wide", rows, cols
        if whole and srow == 1 and not store and rows > 1:
            return "transposed", rows, cols
        return "narrow", rows, cols

    @staticmethod
    def pass_issues(cfg, words, cols, scol=1, bw=False, width=None, *, srow=None, store=False):
        """Cycles a pass of ``words`` words in rows of ``cols`` (GBUF column stride
        ``scol``, row stride ``srow``; ``bw`` for the BW pass, ``store`` for a store)
        spends issuing (:meth:`pass_mode`): ``words / W`` for a wide pass;
        ``ceil(rows / W) * cols + r + 1`` for a transposed one (``r`` the rows of its
        last band of W: the transpose buffer's last block is read out after the last
        read, and its output register adds a cycle); else ``words``. Without ``srow``
        (unknown) no pass is transposed or walked as one row."""
        W = cfg.core.host_words if width is None else width
        if words == 0:
            return 0
        rows = words // cols
        if srow is None:
            mode = "wide" if W > 1 and not bw and scol == 1 and cols % W == 0 else "narrow"
        else:
            mode, rows, cols = Dma.pass_mode(cfg, rows, cols, srow, scol, bw, store, W)
        if mode == "wide":
            return -(-words // W)
        if mode == "transposed":
            bands = -(-rows // W)
            return bands * cols + rows - (bands - 1) * W + 1
        return words

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        C = cfg.cores
        d, g = cfg.core.geom.dim_bits, cfg.gbuf_bits
        P = cfg.core.eors_lanes
        lp = exact_log2(P)
        RL = HostPort.read_latency
        W = cfg.core.host_words
        lw = exact_log2(W)

        if W > 1:
            m.submodules.transpose = tp = Transpose(W)
        # --- pass engine
        p_rows, p_cols = Signal(d), Signal(d)
        p_srow, p_scol = Signal(g), Signal(g)
        p_buf = Signal(Buf)
        p_bw, p_store, p_wide = Signal(), Signal(), Signal()
        p_mask = Signal(C)
        p_src = Signal(range(C))
        r, c = Signal(d), Signal(d + 1)     # c runs on past the row in a transposed flush
        row_addr, col_addr = Signal(g), Signal(g)
        caddr, gk = Signal(16), Signal(16)
        issuing = Signal()

        p_tr = Signal()                 # a transposed pass (W > 1)
        band_ca = Signal(16)            # transposed: the core address of the band's row 0
        gq = Signal(16)                 # transposed BW: (n // P) * K * P of column n = c

        def setup(rows, cols, base, srow, scol, buf, *, mask=0, store=0, src=0, bw=0):
            m.d.sync += [p_buf.eq(buf), p_bw.eq(bw), p_store.eq(store), p_mask.eq(mask),
                         p_src.eq(src), r.eq(0), c.eq(0), row_addr.eq(base), col_addr.eq(base),
                         caddr.eq(0), gk.eq(0), issuing.eq(1)]
            if W == 1:
                m.d.sync += [p_rows.eq(rows), p_cols.eq(cols), p_srow.eq(srow), p_scol.eq(scol)]
                return
            # Dma.pass_mode: a one-column tile is walked as one row (the same GBUF words
            # and core addresses) so that it can be wide; then W words per cycle when
            # each row is whole words of the core buffer (core addresses run on, row
            # after row) and consecutive in the GBUF (wide), or consecutive down the
            # columns (transposed: through the transpose buffer, loads only)
            rows, cols, srow, scol = (Value.cast(v) for v in (rows, cols, srow, scol))
            if bw:
                # the BW pass walked as the (k, n) tile through the transpose buffer: a
                # read of W consecutive k of one n per cycle, out as W consecutive n of
                # one k, an aligned W-element part of a BW word (W divides P)
                t = (scol == 1) & (rows[:lw] == 0) & (cols > 1)
                m.d.sync += [p_rows.eq(Mux(t, cols, rows)), p_cols.eq(Mux(t, rows, cols)),
                             p_srow.eq(Mux(t, scol, srow)), p_scol.eq(Mux(t, srow, scol)),
                             p_wide.eq(0), p_tr.eq(t), band_ca.eq(0), gq.eq(0), prev_ok.eq(0)]
                m.d.comb += tp.restart.eq(1)
                return
            one = cols == 1
            rows1, cols1 = Mux(one, 1, rows), Mux(one, rows, cols)
            srow1, scol1 = Mux(one, 0, srow), Mux(one, srow, scol)
            whole = cols1[:lw] == 0
            wide = whole & (scol1 == 1)
            m.d.sync += [p_rows.eq(rows1), p_cols.eq(cols1), p_srow.eq(srow1), p_scol.eq(scol1),
                         p_wide.eq(wide),
                         p_tr.eq(whole & ~wide & (srow1 == 1) & (store == 0) & (rows1 > 1)),
                         band_ca.eq(0), prev_ok.eq(0)]
            m.d.comb += tp.restart.eq(1)

        # elements one issue moves: a row's W-element chunk, or one element
        step = Mux(p_wide, W, 1) if W > 1 else 1
        ca = Signal(16)
        m.d.comb += ca.eq(Mux(p_bw, ((gk + c) << lp) | r[:lp] if lp else gk + c, caddr))
        rem = Signal(d)                 # transposed: rows from the band's first on
        m.d.comb += rem.eq(p_rows - r)
        last_band = rem <= W
        with m.If(issuing & p_tr):
            # bands of W rows, each walked column by column (one GBUF read of the W rows
            # per column); after the last band, as many steps as it has rows read the
            # transpose buffer's last block out
            with m.If(c == Mux(last_band, p_cols + rem - 1, p_cols - 1)):
                with m.If(last_band):
                    m.d.sync += issuing.eq(0)
                with m.Else():
                    m.d.sync += [c.eq(0), r.eq(r + W), row_addr.eq(row_addr + W),
                                 col_addr.eq(row_addr + W), gq.eq(0),
                                 band_ca.eq(band_ca + Mux(p_bw, W * P, p_cols << lw))]
            with m.Else():
                m.d.sync += [c.eq(c + 1), col_addr.eq(col_addr + p_scol)]
                if lp:
                    with m.If(c[:lp] == P - 1):
                        m.d.sync += gq.eq(gq + (p_rows << lp))
                else:
                    m.d.sync += gq.eq(gq + p_rows)
        with m.Elif(issuing):
            m.d.sync += caddr.eq(caddr + step)
            with m.If(c == p_cols - step):
                m.d.sync += [c.eq(0), r.eq(r + 1), row_addr.eq(row_addr + p_srow),
                             col_addr.eq(row_addr + p_srow)]
                if lp:
                    with m.If(r[:lp] == P - 1):
                        m.d.sync += gk.eq(gk + p_cols)
                else:
                    m.d.sync += gk.eq(gk + p_cols)
                with m.If(r == p_rows - 1):
                    m.d.sync += issuing.eq(0)
            with m.Else():
                m.d.sync += [c.eq(c + step), col_addr.eq(col_addr + Mux(p_wide, W, p_scol))]

        # loads: GBUF read at t, core write at t + 1 (to every core of p_mask)
        m.d.comb += [self.gbuf_rd.addr.eq(col_addr), self.gbuf_rd.en.eq(1)]
        ld_v, ld_wide = Signal(), Signal()
        ld_ca = Signal(16)
        m.d.sync += [ld_v.eq(issuing & ~p_store & ~p_tr), ld_ca.eq(ca), ld_wide.eq(p_wide)]
        # transposed loads: GBUF read at t, transpose-buffer step at t + 1 (block row
        # i of the previous block out), core write of that row at t + 2
        tr_v, tr_real, tr_i = Signal(), Signal(), Signal(max(1, lw))
        tr_blk, tr_rw = Signal(16), Signal(range(W + 1))
        prev_ok, prev_base, prev_rw = Signal(), Signal(16), Signal(range(W + 1))
        wr_v, wr_ca = Signal(), Signal(16)
        if W > 1:
            # a BW block's W columns n are W consecutive lanes of a BW word
            bw_part = Cat(Const(0, lw), c[lw:lp]) if lp > lw else 0
            m.d.sync += [tr_v.eq(issuing & p_tr), tr_real.eq(c < p_cols), tr_i.eq(c[:lw]),
                         tr_blk.eq(Mux(p_bw, gq + band_ca + bw_part, band_ca + (c >> lw << lw))),
                         tr_rw.eq(Mux(last_band, rem, W)),
                         wr_v.eq(0)]
            m.d.comb += [tp.step.eq(tr_v), tp.i_data.eq(self.gbuf_rd.data)]
            with m.If(tr_v):
                with m.If(tr_real & (tr_i == W - 1)):
                    m.d.sync += [prev_ok.eq(1), prev_base.eq(tr_blk), prev_rw.eq(tr_rw)]
                # row i of the previous block: core address (its row 0) + i * cols
                # (BW: + i * P, the next k of the same lanes)
                m.d.sync += [wr_v.eq(prev_ok & (tr_i < prev_rw)),
                             wr_ca.eq(Mux(tr_i == 0, prev_base, wr_ca + Mux(p_bw, P, p_cols)))]
        # stores: core read at t, GBUF write at t + read_latency
        st_v = delay_line(m, issuing & p_store, RL, name="st_v")
        st_ga = delay_line(m, col_addr, RL, name="st_ga")
        st_wide = delay_line(m, p_wide, RL, name="st_wide")
        st_lane = delay_line(m, ca[:lw], RL, name="st_lane")
        rdata = Signal(16 * W)
        gdata = self.gbuf_rd.data
        # the buffer set of each core's current job (two sets): loads per core, a store
        # the one it reads from; taken with the job, as the job is
        j_sets = Signal(C) if cfg.core.buffer_sets > 1 else None
        for i in range(C):
            port = self.cores[i]
            addr = Mux(p_store, ca, Mux(p_tr, wr_ca, ld_ca))
            if j_sets is not None:
                addr = set_address(cfg.core, p_buf, j_sets[i], addr)
            m.d.comb += [port.buf.eq(p_buf), port.addr.eq(addr)]
            if W > 1:
                # a wide chunk is aligned in the core: GBUF word j is element j of the
                # core's word; one element goes to its place in the word
                m.d.comb += [port.wdata.eq(Mux(p_tr, tp.o_data,
                                               Mux(ld_wide, gdata, gdata[:16].replicate(W)))),
                             port.we.eq(Mux(p_mask[i] & (ld_v | wr_v),
                                            Mux(ld_wide | p_tr, (1 << W) - 1, 1 << ld_ca[:lw]), 0))]
            else:
                m.d.comb += [port.wdata.eq(gdata), port.we.eq(ld_v & p_mask[i])]
            with m.If(p_src == i):
                m.d.comb += rdata.eq(port.rdata)
        is_mask = p_buf == Buf.MASK_OUT
        lanes = [rdata.word_select(j, 16) for j in range(W)]
        lanes = [Mux(is_mask, x[0], x) for x in lanes]
        if W > 1:
            m.d.comb += [self.gbuf_wr.en.eq(Mux(st_v[-1], Mux(st_wide[-1], (1 << W) - 1, 1), 0)),
                         self.gbuf_wr.addr.eq(st_ga[-1]),
                         self.gbuf_wr.data.eq(Mux(st_wide[-1], Cat(lanes),
                                                  Array(lanes)[st_lane[-1]]))]
        else:
            m.d.comb += [self.gbuf_wr.en.eq(st_v[-1]), self.gbuf_wr.addr.eq(st_ga[-1]),
                         self.gbuf_wr.data.eq(lanes[0])]
        inflight = ld_v | tr_v | wr_v
        for v in st_v[1:]:
            inflight = inflight | v
        pass_done = ~issuing & ~inflight

        # --- jobs
        ld = Signal(load_layout(cfg))
        st = Signal(store_layout(cfg))
        cur = Signal(range(C + 1))
        m.d.sync += [self.load_done.eq(0), self.store_done.eq(0), self.loaded.eq(0)]
        with m.If(self.busy):
            m.d.sync += self.busy_cycles.eq(self.busy_cycles + 1)

        def job_done(flag):
            m.d.sync += [flag.eq(1), self.busy.eq(0)]
            m.next = "Idle"

        def pass_states(name, enable, args, then, **kw):
            """State ``name`` sets up a pass (or skips it when ``enable`` is low) and
            ``name-Wait`` waits for its end; then ``then()`` picks the next state."""
            with m.State(name):
                with m.If(enable):
                    setup(*args, **kw)
                    m.next = f"{name}-Wait"
                with m.Else():
                    then()
            with m.State(f"{name}-Wait"):
                with m.If(pass_done):
                    then()

        def goto(state):
            def then():
                m.next = state
            return then

        row = ld.rows[cur[:max(1, (C - 1).bit_length())] if C > 1 else 0]

        def core_loaded():
            m.d.sync += [self.loaded.bit_select(cur, 1).eq(1), cur.eq(cur + 1)]
            m.next = "Load-A"

        with m.FSM():
            with m.State("Idle"):
                with m.If(self.store.valid):
                    m.d.comb += self.store.ready.eq(1)
                    m.d.sync += [st.eq(self.store.payload), self.busy.eq(1)]
                    if j_sets is not None:
                        m.d.sync += j_sets.eq(self.store.payload.set.replicate(C))
                    m.next = "Store-Out"
                with m.Elif(self.load.valid):
                    m.d.comb += self.load.ready.eq(1)
                    m.d.sync += [ld.eq(self.load.payload), cur.eq(0), self.busy.eq(1)]
                    if j_sets is not None:
                        m.d.sync += j_sets.eq(self.load.payload.sets)
                    m.next = "Load-B"
            o = st.out

            def stored_out():
                with m.If(st.store_mask):
                    m.next = "Store-Mask"
                with m.Else():
                    job_done(self.store_done)

            pass_states("Store-Out", 1, (st.mc, st.n, o.base + st.m0 * o.s0, o.s0, o.s1, Buf.OUT),
                        stored_out, store=1, src=st.core)
            pass_states("Store-Mask", 1,
                        (st.mc, st.n, st.mask_out_base + st.m0 * st.n, st.n, 1, Buf.MASK_OUT),
                        lambda: job_done(self.store_done), store=1, src=st.core)
            # The shared operands first, each read once and broadcast to the group; then
            # each core's own rows (A, MASK_IN), after which that core may start
            # (``loaded``) while the DMA goes on with the next core's.
            pass_states("Load-B", 1, (ld.n, ld.k, ld.b.base, ld.b.s0, ld.b.s1, Buf.B),
                        goto("Load-BW"), mask=ld.group)
            pass_states("Load-BW", ld.bw, (ld.n, ld.k, ld.b.base, ld.b.s0, ld.b.s1, Buf.BW),
                        goto("Load-Bias"), mask=ld.group, bw=1)
            pass_states("Load-Bias", ld.bias, (1, ld.n, ld.bias_base, 0, 1, Buf.BIAS),
                        goto("Load-A"), mask=ld.group)
            with m.State("Load-A"):
                with m.If(cur == C):
                    job_done(self.load_done)
                with m.Elif(ld.group.bit_select(cur, 1)):
                    setup(row.mc, ld.k, ld.a.base + row.m0 * ld.a.s0, ld.a.s0, ld.a.s1, Buf.A,
                          mask=1 << cur)
                    m.next = "Load-A-Wait"
                with m.Else():
                    m.d.sync += cur.eq(cur + 1)
            with m.State("Load-A-Wait"):
                with m.If(pass_done):
                    m.next = "Load-Mask"
            pass_states("Load-Mask", ld.mask_in,
                        (row.mc, ld.n, ld.mask_in_base + row.m0 * ld.n, ld.n, 1, Buf.MASK_IN),
                        core_loaded, mask=1 << cur)
        return m
