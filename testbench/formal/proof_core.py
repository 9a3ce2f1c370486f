"""A core that refuses a task writes no buffer.

On the whole :class:`ganpu.core.Core` of the smallest geometry and one MAC lane, the
task port free (any descriptor, ``start`` in any cycle) and the host quiet (``we`` = 0,
so every block-RAM write is the task's): from an accepted ``start`` whose verdict is
not ``OK`` until the next accepted ``start``, no write enable of any buffer (A, B,
BIAS, MASK_IN, OUT, MASK_OUT, BW; each set's RAM of a two-set core) nor of the
compressed copy of A is ever raised, and
``busy`` falls the cycle after the verdict.

Depth 10 (verdict ``DescriptorChecker.latency`` + 1 cycles after the first ``start``,
then the idle core for the rest). Covers: a refused task with the core idle three
cycles later; an accepted task (the stimulus is not limited to refusals).
"""

from amaranth.hdl import Assert, Assume, Cover, Signal

from ganpu.core import Core
from ganpu.core.config import Buf, CoreConfig, Geometry
from ganpu.core.descriptor import Error

from sby import Harness

CONFIG = CoreConfig(lanes=1, geom=Geometry(a_bits=2, b_bits=3, out_bits=2, bias_bits=2, mask_bits=2),
                    eors_lanes=2)
DEPTH = 10


class ObservedCore(Core):
    """The core, with its buffer write enables and verdict visible to the proof."""

    def elaborate(self, platform):
        m = super().elaborate(platform)
        hm = m.submodules.host_mux
        ck = m.submodules.check
        idx = m.submodules.indexer
        self.observed = dict(
            writes=[getattr(hm, f"{name}_wr").en != 0 for b in Buf
                    for name in (b.name.lower(), f"{b.name.lower()}_set1")
                    if f"{name}_wr" in hm.signature.members] + [idx.acomp_wr.en],
            verdict=ck.done, error=ck.error)
        self.props(m, self)
        return m


def properties(m, core):
    t, h, obs = core.task, core.host, core.observed
    m.d.comb += Assume(~h.we)
    any_write = sum(obs["writes"]) != 0
    accept = t.start & ~t.busy
    refused = Signal()   # since a refusing verdict, until the next accepted start
    refused_at = Signal()
    m.d.sync += refused_at.eq(obs["verdict"] & (obs["error"] != Error.OK))
    with m.If(accept):
        m.d.sync += refused.eq(0)
    with m.Elif(obs["verdict"] & (obs["error"] != Error.OK)):
        m.d.sync += refused.eq(1)
    since_start = Signal()   # an accepted start, no verdict yet
    wrote = Signal()         # a write since that start
    with m.If(accept):
        m.d.sync += [since_start.eq(1), wrote.eq(0)]
    with m.Elif(obs["verdict"]):
        m.d.sync += since_start.eq(0)
    with m.If(any_write):
        m.d.sync += wrote.eq(1)
    with m.If(refused):
        m.d.comb += Assert(~any_write, "a buffer written after a refusing verdict")
    with m.If(obs["verdict"] & (obs["error"] != Error.OK)):
        m.d.comb += Assert(~wrote & ~any_write, "a refused task wrote before its verdict")
    with m.If(refused_at):
        m.d.comb += Assert(t.error != Error.OK, "a refused task reported OK")
        m.d.comb += Assert(~t.busy, "busy after a refusing verdict")
    late = Signal(2)
    with m.If(refused & (late != 3)):
        m.d.sync += late.eq(late + 1)
    m.d.comb += [Cover(refused & (late == 3) & ~t.busy), Cover(obs["verdict"] & (obs["error"] == Error.OK))]


def design():
    core = ObservedCore(CONFIG)
    core.props = properties
    return Harness(core, lambda m, dut, top: None)


PROOFS = {"core_refusal": (design, DEPTH)}
