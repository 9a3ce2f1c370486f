"""The top of ``ganpu sim``'s Verilator model: the link framer and the processor, each
reset from a register, the framer on its own (faster) clock (``docs/sim.md``)."""

from amaranth.hdl import ClockDomain, ClockSignal, DomainRenamer, Module, ResetSignal, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.data import Layout
from amaranth.lib.fifo import AsyncFIFO
from amaranth.lib.wiring import In, Out

from ..core.config import check_type
from ..processor.config import ProcessorComponent, config
from ..processor.processor import Processor
from ..processor.program import State, bus_request_layout, bus_response_layout
from .framer import Framer, DEFAULT_TIMEOUT
from .protocol import MAX_WORDS

__all__ = ["NativeTop", "FIFO_DEPTH"]

FIFO_DEPTH = 8   # covers the two-flop pointer synchronisers at one word per core cycle


class NativeTop(ProcessorComponent):
    """:class:`~ganpu.processor.processor.Processor` for ``cfg`` behind a
    :class:`~ganpu.link.framer.Framer`, built for a cycle-based simulator
    (``ganpu sim``, ``docs/sim.md``).

    Two things make Verilator's model cheaper per cycle than that of
    :class:`~ganpu.link.system.LinkedProcessor`, without changing what the framer or
    the processor compute:

    * Reset. Each domain's reset is a register set by its reset input (released one
      clock after it). Amaranth folds the reset into every register's next-state
      logic; with the reset an input, Verilator re-evaluates all of that logic whenever
      inputs are applied (twice a cycle), with a register only after a clock edge
      (measured: 18% of the model's time on ``small``).
    * ``link_clock``: the framer runs on its own clock (ports ``link_clk``,
      ``link_rst``) and the bus requests and responses cross in two
      :class:`~amaranth.lib.fifo.AsyncFIFO` of :data:`FIFO_DEPTH` entries. A simulator
      can then tick the link several times per core cycle: a link edge evaluates only
      the framer, so bytes move at a fraction of a core cycle's cost, and bursts reach
      the bus's one word per core cycle (the framer's one byte per cycle would give a
      word per two core cycles each way).

    ``link_clock=False`` keeps one clock: the same design as ``LinkedProcessor`` apart
    from the reset register. The board tops keep ``LinkedProcessor`` (a UART is far
    slower than either clock).

    Latency: that of the framer and the processor, plus ``latency`` core cycles of
    reset release; with ``link_clock`` each bus request and response also crosses a
    FIFO (its write, two destination clocks of synchroniser, its read). Throughput:
    the framer's, in link cycles, and at most one bus word per core cycle.

    The transaction-level model is the framer's on the processor's memory map
    (:meth:`Framer.model`): the clocks change when answers leave, never what they are.

    Parameters
    ----------
    cfg : ProcessorConfig or str
    link_clock : bool        the framer on its own clock ``link_clk``
    timeout, max_words : the framer's (``timeout`` counts link clock cycles)

    Ports
    -----
    rx : In(stream.Signature(8))     bytes from the host (link clock)
    tx : Out(stream.Signature(8))    bytes to the host (link clock)
    state : Out(State)               the processor's state (core clock)
    link_clk, link_rst : In(1)       the framer's clock and reset (with ``link_clock``)
    """

    latency = 1

    @classmethod
    def check_parameters(cls, cfg="small", link_clock=True, timeout=DEFAULT_TIMEOUT,
                         max_words=MAX_WORDS):
        Framer.check_parameters(cfg, timeout, max_words)
        check_type("link_clock", link_clock, bool)

    def __init__(self, cfg="small", link_clock=True, timeout=DEFAULT_TIMEOUT, max_words=MAX_WORDS):
        self.cfg = config(cfg) if isinstance(cfg, str) else cfg
        self.link_clock, self.timeout, self.max_words = link_clock, timeout, max_words
        members = {"rx": In(stream.Signature(8)), "tx": Out(stream.Signature(8)),
                   "state": Out(State)}
        if link_clock:
            # the link clock and reset are ports, not an implicit domain: Amaranth 0.5
            # appends the ports of the domains it creates in the order of a set of their
            # names (the string hash), and the build cache is keyed on the Verilog text;
            # with ``sync`` the only implicit domain the text is the same in every process
            members.update({"link_clk": In(1), "link_rst": In(1)})
        super().__init__(members)

    model = staticmethod(Framer.model)

    def elaborate(self, platform):
        m = Module()
        # each reset from a register: see the docstring
        m.domains.core = ClockDomain("core", local=True)
        por = Signal(init=1)
        m.d.sync += por.eq(0)
        m.d.comb += [ClockSignal("core").eq(ClockSignal("sync")), ResetSignal("core").eq(por)]
        framer_domain = "core"
        if self.link_clock:
            m.domains.link = ClockDomain("link", local=True)
            m.d.comb += [ClockSignal("link").eq(self.link_clk), ResetSignal("link").eq(self.link_rst)]
            m.domains.flink = ClockDomain("flink", local=True)
            lpor = Signal(init=1)
            m.d.link += lpor.eq(0)
            m.d.comb += [ClockSignal("flink").eq(self.link_clk),
                         ResetSignal("flink").eq(lpor)]
            framer_domain = "flink"

        framer = Framer(self.cfg, self.timeout, self.max_words)
        proc = Processor(self.cfg)
        m.submodules.framer = DomainRenamer(framer_domain)(framer)
        m.submodules.processor = DomainRenamer("core")(proc)
        wiring.connect(m, wiring.flipped(self.rx), framer.rx)
        wiring.connect(m, framer.tx, wiring.flipped(self.tx))
        m.d.comb += self.state.eq(proc.state)
        if not self.link_clock:
            wiring.connect(m, framer.req, proc.req)
            wiring.connect(m, proc.resp, framer.resp)
            return m

        # the bus crosses from the link clock to the core clock and back
        req_bits = Layout.cast(bus_request_layout()).size
        resp_bits = Layout.cast(bus_response_layout()).size
        m.submodules.req_fifo = req_fifo = AsyncFIFO(width=req_bits, depth=FIFO_DEPTH,
                                                     w_domain="flink", r_domain="core")
        m.submodules.resp_fifo = resp_fifo = AsyncFIFO(width=resp_bits, depth=FIFO_DEPTH,
                                                       w_domain="core", r_domain="flink")
        m.d.comb += [
            req_fifo.w_stream.valid.eq(framer.req.valid),
            req_fifo.w_stream.payload.eq(framer.req.payload),
            framer.req.ready.eq(req_fifo.w_stream.ready),
            proc.req.valid.eq(req_fifo.r_stream.valid),
            proc.req.payload.eq(req_fifo.r_stream.payload),
            req_fifo.r_stream.ready.eq(proc.req.ready),
            resp_fifo.w_stream.valid.eq(proc.resp.valid),
            resp_fifo.w_stream.payload.eq(proc.resp.payload),
            proc.resp.ready.eq(resp_fifo.w_stream.ready),
            framer.resp.valid.eq(resp_fifo.r_stream.valid),
            framer.resp.payload.eq(resp_fifo.r_stream.payload),
            resp_fifo.r_stream.ready.eq(framer.resp.ready),
        ]
        return m
