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

``host_mux_sets`` proves the same on a mux of two buffer sets (``docs/core.md``, "Two
buffer sets"), with ``task_set`` free: while ``busy`` only a write to the running set
(the address bit above the buffer's depth equal to ``task_set``) is refused; a write to
the other set reaches its RAM (the set bit on top of a shared RAM's address, or the
other set's own RAM of OUT, MASK_OUT, MASK_IN, whose write port a task in the running
set never drives). Mutants (``MUTANTS``): a write to code 7 reaching A; a write to the
running set of A reaching it.

Depth 3 (the write path has no register; ``err`` is one). Covers: a refused write of
every kind, an accepted one, a task write.
"""

import dataclasses

from amaranth.hdl import Assert, Assume, Cat, Cover, Signal
from amaranth.utils import exact_log2

from ganpu.core.buffers import WIDE, element_bits, per_set
from ganpu.core.config import Buf, CoreConfig, Geometry
from ganpu.core.host_mux import HostMux

from sby import Harness

CONFIG = CoreConfig(lanes=1, geom=Geometry(a_bits=2, b_bits=3, out_bits=2, bias_bits=2, mask_bits=2),
                    eors_lanes=2)
SETS = dataclasses.replace(CONFIG, buffer_sets=2)
DEPTH = 3
MUTANTS = ("code7", "running_set")


def properties(m, hm, top=None, mutant=None):
    cfg = hm.config
    h = hm.host
    lp = element_bits(cfg)
    sets = cfg.buffer_sets > 1
    task_set = hm.task_set if sets else 0
    m.d.comb += Assume(~hm.run | hm.busy)
    codes = [b.value for b in Buf]
    undefined = ~Cat(*(h.buf.as_value() == c for c in codes)).any()
    in_range = Signal()
    h_set = Signal()
    for b in Buf:
        with m.If(h.buf == b):
            m.d.comb += in_range.eq(h.addr < cfg.host_depth(b))
            if sets:
                m.d.comb += h_set.eq(h.addr[exact_log2(cfg.depth(b))])
    owned = hm.busy & (h_set == task_set) if sets else hm.busy
    refused = h.we & (undefined | ~in_range | owned)
    accepted = h.we & ~undefined & in_range & ~owned
    for b in Buf:
        task = getattr(hm, f"{b.name.lower()}_task", None)
        for k, prefix in enumerate([b.name.lower()] + ([f"{b.name.lower()}_set1"] if per_set(cfg, b) else [])):
            wr = getattr(hm, f"{prefix}_wr")
            if task is None:
                task_en = 0
            elif per_set(cfg, b):
                task_en = hm.run & (task_set == k) & task.en
            else:
                task_en = hm.run & task.en
            mine = accepted & (h.buf == b)
            if per_set(cfg, b):
                mine &= h_set == k
            wr_en = wr.en
            if mutant == "code7" and b == Buf.A:
                # a mux that let a write to code 7 through to A: the proof must refute it
                wr_en = wr.en | (h.we & undefined)
            if mutant == "running_set" and b == Buf.A:
                # a mux that ignored the set while busy: the proof must refute it
                wr_en = wr.en | (h.we & (h.buf == b) & in_range & hm.busy)
            with m.If(~mine):
                # only the running task's write, bit for bit
                m.d.comb += Assert((wr_en != 0) == (task_en != 0) if task is not None else wr_en == 0,
                                   f"{prefix}: written by a host access that is not its own")
                if task is not None:
                    with m.If(task_en):
                        m.d.comb += Assert((wr.addr == task.addr) & (wr.data == task.data))
            with m.Else():
                # a RAM per set takes the address below the set bit
                addr = h.addr[:exact_log2(cfg.depth(b))] if per_set(cfg, b) else h.addr
                if b in WIDE:
                    m.d.comb += Assert((wr.en == (1 << h.addr[:lp])) & (wr.addr == addr >> lp) &
                                       (wr.data.word_select(h.addr[:lp], 16) == h.wdata))
                else:
                    m.d.comb += Assert(wr.en & (wr.addr == addr) & (wr.data == h.wdata[:len(wr.data)]))
    # err: set the cycle after a refused write, whatever else happens
    was_refused = Signal()
    m.d.sync += was_refused.eq(refused)
    with m.If(was_refused):
        m.d.comb += Assert(h.err)
    m.d.comb += [
        Cover(h.we & (h.buf.as_value() == 7) & ~hm.busy & ~hm.run),
        Cover(h.we & (h.buf == Buf.BIAS) & (h.addr == cfg.host_depth(Buf.BIAS)) & ~hm.busy),
        Cover(h.we & (h.buf == Buf.OUT) & hm.busy & hm.run & hm.out_task.en),
        Cover(accepted & (h.buf == Buf.BW) & (h.addr == cfg.host_depth(Buf.BW) - 1)),
        Cover(was_refused & h.err),
    ]
    if sets:
        m.d.comb += [
            # the idle set's MASK_IN written while the task writes its prediction
            Cover(accepted & (h.buf == Buf.MASK_IN) & hm.run & hm.mask_in_task.en),
            Cover(accepted & (h.buf == Buf.A) & hm.busy & (task_set == 1)),
            Cover(refused & in_range & (h.buf == Buf.B) & hm.busy),
        ]


def design(mutant=None, config=CONFIG):
    """The proof's design; ``mutant`` (one of :data:`MUTANTS`; ``True`` is "code7")
    seeds a bug the proof must refute (two sets for "running_set")."""
    if mutant is True:
        mutant = "code7"
    if mutant == "running_set":
        config = SETS
    return Harness(HostMux(config), lambda m, hm, top: properties(m, hm, top, mutant))


PROOFS = {"host_mux": (design, DEPTH), "host_mux_sets": (lambda: design(config=SETS), DEPTH)}
