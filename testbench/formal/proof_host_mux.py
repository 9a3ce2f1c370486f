"""The host port never changes a buffer on a refused access.

On :class:`ganpu.core.host_mux.HostMux` with every input free (host port, ``busy``,
``run``, ``clear``, the task's write ports; ``run`` only while ``busy``, as the core
drives them), for every :class:`Buf` code including the undefined 7:

* a host write to an undefined code, past the buffer's depth or while ``busy`` reaches
  no block RAM: every write port carries only the running task's writes (nothing when
  no task runs), and ``err`` is set the next cycle;
* an accepted host write reaches only its own buffer, at its address (the element's
  lane of a wide word), with its data;
* reads (``we`` = 0) write nothing.

Depth 3 (the write path has no register; ``err`` is one). Covers: a refused write of
every kind, an accepted one, a task write.
"""

from amaranth.hdl import Assert, Assume, Cat, Cover, Signal

from ganpu.core.buffers import WIDE, element_bits
from ganpu.core.config import Buf, CoreConfig, Geometry
from ganpu.core.host_mux import HostMux, TASK_WRITTEN

from sby import Harness

CONFIG = CoreConfig(lanes=1, geom=Geometry(a_bits=2, b_bits=3, out_bits=2, bias_bits=2, mask_bits=2),
                    eors_lanes=2)
DEPTH = 3


def properties(m, hm, top=None, mutant=False):
    cfg = hm.config
    h = hm.host
    lp = element_bits(cfg)
    m.d.comb += Assume(~hm.run | hm.busy)
    codes = [b.value for b in Buf]
    undefined = ~Cat(*(h.buf.as_value() == c for c in codes)).any()
    in_range = Signal()
    for b in Buf:
        with m.If(h.buf == b):
            m.d.comb += in_range.eq(h.addr < cfg.depth(b))
    refused = h.we & (undefined | ~in_range | hm.busy)
    accepted = h.we & ~undefined & in_range & ~hm.busy
    for b in Buf:
        wr = getattr(hm, f"{b.name.lower()}_wr")
        task = getattr(hm, f"{b.name.lower()}_task", None)
        task_en = (hm.run & task.en) if task is not None else 0
        mine = accepted & (h.buf == b)
        wr_en = wr.en
        if mutant and b == Buf.A:
            # a mux that let a write to code 7 through to A: the proof must refute it
            wr_en = wr.en | (h.we & undefined)
        with m.If(~mine):
            # only the running task's write, bit for bit
            m.d.comb += Assert((wr_en != 0) == (task_en != 0) if task is not None else wr_en == 0,
                               f"{b.name}: written by a host access that is not its own")
            if task is not None:
                with m.If(task_en):
                    m.d.comb += Assert((wr.addr == task.addr) & (wr.data == task.data))
        with m.Else():
            if b in WIDE:
                m.d.comb += Assert((wr.en == (1 << h.addr[:lp])) & (wr.addr == h.addr >> lp) &
                                   (wr.data.word_select(h.addr[:lp], 16) == h.wdata))
            else:
                m.d.comb += Assert(wr.en & (wr.addr == h.addr) & (wr.data == h.wdata[:len(wr.data)]))
    # err: set the cycle after a refused write, whatever else happens
    was_refused = Signal()
    m.d.sync += was_refused.eq(refused)
    with m.If(was_refused):
        m.d.comb += Assert(h.err)
    m.d.comb += [
        Cover(h.we & (h.buf.as_value() == 7) & ~hm.busy & ~hm.run),
        Cover(h.we & (h.buf == Buf.BIAS) & (h.addr == cfg.depth(Buf.BIAS)) & ~hm.busy),
        Cover(h.we & (h.buf == Buf.OUT) & hm.busy & hm.run & hm.out_task.en),
        Cover(accepted & (h.buf == Buf.BW) & (h.addr == cfg.depth(Buf.BW) - 1)),
        Cover(was_refused & h.err),
    ]


def design(mutant=False):
    return Harness(HostMux(CONFIG), lambda m, hm, top: properties(m, hm, top, mutant))


PROOFS = {"host_mux": (design, DEPTH)}
