"""The host port's side of the core's buffers."""

from amaranth.hdl import Module, Signal, Mux, Cat, Const
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.utils import exact_log2

from ..delay import delay
from .buffers import (WIDE, TASK_WRITTEN, buffer_shape, memory_shape, element_bits, word_bits,
                      memory_read_signature, memory_write_signature, write_signature,
                      element_write, per_set)
from .config import Buf, CoreConfig, check_type, CheckedComponent
from .ports import HostPort

__all__ = ["HostMux", "TASK_WRITTEN"]


def _name(buf):
    return buf.name.lower()


def _set_ports(config, buf):
    """Member name prefixes of ``buf``'s block RAM(s): one, or one per set."""
    return [_name(buf)] + ([f"{_name(buf)}_set1"] if per_set(config, buf) else [])


class HostMux(CheckedComponent):
    """Connects the :class:`~ganpu.core.ports.HostPort` to every buffer's block RAM.

    Each buffer has one read port and one write port here. Writes from the host reach
    a buffer only while ``busy`` = 0 and inside its depth; anything else sets
    ``host.err`` (cleared by ``clear``, the accepted ``start``). OUT, MASK_OUT and
    MASK_IN share their write port with the task: while ``run`` = 1 the ``*_task``
    write ports (the epilogue's, the scanner's, one element each) own it.

    With ``config.host_words`` = W > 1 the host moves W elements per access: the
    :data:`~ganpu.core.buffers.BANKED` buffers' RAM words are W elements (one write
    enable each), a BIAS/BW access is the W-element part of its ``eors_lanes`` word.

    With ``config.buffer_sets`` = 2 the host address of set ``s`` of a buffer is
    ``s * depth + element`` (:meth:`CoreConfig.host_depth` in range), and while ``busy``
    only a write to the running set (``task_set``) is refused: the other set's writes
    reach its RAM as when idle (:meth:`accepts`). A, B, BIAS and BW are one RAM with
    the set as its top address bit; OUT, MASK_OUT and MASK_IN one RAM per set
    (``{buf}_set1_rd``/``_wr`` for set 1), whose write port belongs to the task while it
    runs in that set and to the host otherwise.

    Latency: host reads :attr:`latency` = ``HostPort.read_latency`` = 4 cycles (block RAM
    read, output register (which also picks a RAM-per-set read's set), part select of a
    wide word, buffer select); host writes
    and task writes pass through without a register. Throughput one access per cycle.

    Ports
    -----
    host : In(HostPort)
    busy, run, clear : In(1)
    task_set : In(1)   the running task's set (only with two buffer sets)
    {buf}_rd : In(memory_read_signature)    to buffer ``buf``'s block RAM, for every :class:`Buf`
    {buf}_wr : In(memory_write_signature)   ditto (one enable per element of a wide word)
    {out,mask_out,mask_in}_set1_rd, _set1_wr   set 1's RAM (only with two buffer sets)
    {out,mask_out,mask_in}_task : Out(WritePort.Signature)   the task's element writes
    """

    latency = HostPort.read_latency

    @classmethod
    def check_parameters(cls, config):
        check_type("config", config, CoreConfig)

    @staticmethod
    def accepts(config, buf, addr, busy, task_set=0):
        """Whether a host write of ``buf`` (a code, 7 names none) at ``addr`` changes the
        buffer: inside :meth:`CoreConfig.host_depth`, and while ``busy`` only outside the
        running task's set ``task_set`` (never with one set). A write that is not
        accepted sets ``err``. The transaction-level model of the write rule."""
        if buf not in [b.value for b in Buf]:
            return False
        depth = config.depth(Buf(buf))
        if addr >= config.host_depth(Buf(buf)):
            return False
        return not busy or (config.buffer_sets > 1 and addr // depth != task_set)

    def __init__(self, config):
        self.config = config
        members = {"host": In(HostPort(config)), "busy": In(1), "run": In(1), "clear": In(1)}
        if config.buffer_sets > 1:
            members["task_set"] = In(1)
        for buf in Buf:
            for prefix in _set_ports(config, buf):
                members[f"{prefix}_rd"] = In(memory_read_signature(config, buf))
                members[f"{prefix}_wr"] = In(memory_write_signature(config, buf))
        for buf in TASK_WRITTEN:
            members[f"{_name(buf)}_task"] = Out(write_signature(config, buf))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        h = self.host
        P = cfg.eors_lanes
        W = cfg.host_words
        lp = element_bits(cfg)
        lw = word_bits(cfg)

        sets = cfg.buffer_sets
        sel_ok = Signal()
        h_set = Signal()   # the set the host addresses (its bit above the buffer's depth)
        with m.Switch(h.buf):
            for buf in Buf:
                with m.Case(buf):
                    m.d.comb += sel_ok.eq(h.addr < cfg.host_depth(buf))
                    if sets > 1:
                        m.d.comb += h_set.eq(h.addr[exact_log2(cfg.depth(buf))])
        we = h.we.any()
        # with two sets only the running task's set is the task's
        owned = self.busy & (h_set == self.task_set) if sets > 1 else self.busy
        host_w = we & sel_ok & ~owned
        with m.If(self.clear):
            m.d.sync += h.err.eq(0)
        # after the clear: a refused write in the start cycle still flags
        with m.If(we & (~sel_ok | owned)):
            m.d.sync += h.err.eq(1)

        # the part of a BIAS/BW word the host reaches: W elements from addr & ~(W-1)
        part = h.addr[lw:lp]
        lane = delay(m, part, 2, name="h_lane") if lp > lw else None
        lanes = [h.wdata.word_select(j, 16) for j in range(W)]
        rdata = {}
        for buf in Buf:
            elem, _ = buffer_shape(cfg, buf)
            shift = lp if buf in WIDE else lw
            raws = []
            for s, prefix in enumerate(_set_ports(cfg, buf)):
                rd = getattr(self, f"{prefix}_rd")
                wr = getattr(self, f"{prefix}_wr")
                en = host_w & (h.buf == buf)
                if per_set(cfg, buf):
                    en &= h_set == s
                if buf in WIDE:
                    m.d.comb += [wr.addr.eq(h.addr >> lp), wr.data.eq(h.wdata.replicate(P // W)),
                                 wr.en.eq(Mux(en, h.we << Cat(Const(0, lw), part), 0))]
                elif W > 1:
                    m.d.comb += [wr.addr.eq(h.addr >> lw),
                                 wr.data.eq(Cat(x[:elem] for x in lanes)), wr.en.eq(Mux(en, h.we, 0))]
                else:
                    m.d.comb += [wr.addr.eq(h.addr), wr.data.eq(h.wdata), wr.en.eq(en)]
                if buf in TASK_WRITTEN:
                    task = getattr(self, f"{_name(buf)}_task")
                    mine = self.run & (self.task_set == s) if per_set(cfg, buf) else self.run
                    with m.If(mine):
                        element_write(m, cfg, buf, wr, task.addr, task.data, task.en)
                # a RAM per set is addressed without the set bit (truncated by the port)
                m.d.comb += rd.addr.eq(h.addr >> shift)
                raws.append(rd.data)
            # Each buffer's data is registered as it leaves the block RAM (whose slow
            # clock-to-out plus the route fill a cycle), then a wide word's part is
            # selected, then the buffer.
            raw = Signal(memory_shape(cfg, buf)[0], name=f"h_raw_{_name(buf)}")
            rdata[buf] = Signal(16 * W, name=f"h_rdata_{_name(buf)}")
            if buf in WIDE:
                value = raw.word_select(lane, 16 * W) if lane is not None else raw
            elif elem == 16:
                value = raw
            else:
                # a mask element as a 0/1 lane
                value = Cat(Cat(raw[j], Const(0, 15)) for j in range(W))
            if len(raws) > 1:
                # the set of a RAM-per-set read, registered with the address
                rset = Signal(name=f"h_set_{_name(buf)}")
                m.d.sync += [rset.eq(h_set), raw.eq(Mux(rset, raws[1], raws[0]))]
            else:
                m.d.sync += raw.eq(raws[0])
            m.d.sync += rdata[buf].eq(value)
        sel = delay(m, h.buf, self.latency - 1, name="h_buf")
        with m.Switch(sel):
            for buf in Buf:
                with m.Case(buf):
                    m.d.sync += h.rdata.eq(rdata[buf])
        return m
