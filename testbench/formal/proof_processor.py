"""The processor's DMA keeps the contract the scheduler relies on, and its bus front end
answers every request once, in order, with the refusal rule of the memory map
(``docs/verification.md``).

``dma``: :class:`ganpu.processor.dma.Dma` (2 cores, smallest geometry) with its job
streams free under the handshake (the scheduler's promise, proved in
``proof_scheduler``), GBUF read data and the cores' read data free:

* one job at a time: no job is taken between a taken job and its ``load_done`` /
  ``store_done``, and never a load and a store in one cycle;
* ``loaded[c]`` pulses only during a load job whose group holds core ``c``, once per
  job; ``load_done`` comes only after every core of the group was ``loaded``;
  ``store_done`` only during a store job (the contract ``proof_scheduler`` assumes);
* a core's host port is written only during a load job whose group holds it, and
  never after its ``loaded`` (the core may be running then); the GBUF is written only
  during a store job.

``dma_sets``: the same DMA with two buffer sets per core, and every core write lands
in the set the load job names for that core (the address bit above the buffer's
depth, ``set_address``); covers a write into set 1.

Depth 13: covers a core loaded and a store job done. ``dma_deep`` (with
``GANPU_TEST_SCALE`` > 1) goes to depth 20 and covers a two-core group loaded core by
core, then a store job taken.

``bus``: :class:`ganpu.processor.bus.BusFrontEnd` with requests free under the
handshake, the status (state included) and the memories' read data free:

* ``resp`` keeps the handshake (valid held, payload stable while ``ready`` is low);
* every response answers one accepted request, in order: its ``error`` is the memory
  map's refusal rule (:meth:`BusFrontEnd.model`, restated here as logic) for that
  request in the state it was taken in, and a write's or a refused access's data is 0;
* a refused request changes nothing: the GBUF and task-table write ports and the CTRL
  pulses fire only for an accepted write to their own address.

Covers: a refused write followed by an accepted read whose response stalls.
"""

from dataclasses import replace

from amaranth.hdl import Assert, Assume, Cover, Signal, Value, Const, Mux

from ganpu.core.config import Buf

from ganpu.processor.bus import BusFrontEnd, csr_names
from ganpu.processor.dma import Dma
from ganpu.processor.program import Csr, Region, State, REGION_SHIFT, record_words

from sby import Harness
from proof_ready import PROC

DMA_DEPTH = 13
DMA_DEEP_DEPTH = 20
BUS_DEPTH = 6


def _any(v):
    return Value.cast(v).any()


def _handshake_in(m, s):
    """Assume input stream ``s`` keeps its producer's promise."""
    stalled = Signal()
    payload = Value.cast(s.payload)
    prev = Signal.like(payload)
    m.d.sync += [stalled.eq(s.valid & ~s.ready), prev.eq(payload)]
    m.d.comb += Assume(~stalled | (s.valid & (payload == prev)))


def _handshake_out(m, s, name):
    stalled = Signal()
    payload = Value.cast(s.payload)
    prev = Signal.like(payload)
    m.d.sync += [stalled.eq(s.valid & ~s.ready), prev.eq(payload)]
    with m.If(stalled):
        m.d.comb += Assert(s.valid & (payload == prev), f"{name}: item withdrawn or changed")
    return stalled


def dma_properties(m, dma, top=None):
    C = dma.cfg.cores
    _handshake_in(m, dma.load)
    _handshake_in(m, dma.store)
    take_load = dma.load.valid & dma.load.ready
    take_store = dma.store.valid & dma.store.ready
    m.d.comb += Assert(~(take_load & take_store), "a load and a store job taken together")

    loading, storing = Signal(), Signal()
    group = Signal(C)
    seen = Signal(C)          # cores of the current load job reported loaded
    for c in range(C):
        with m.If(dma.loaded[c]):
            m.d.comb += Assert(loading & group[c] & ~seen[c], f"core {c}: loaded outside its job")
            m.d.sync += seen[c].eq(1)
        with m.If(_any(dma.cores[c].we)):
            m.d.comb += Assert(loading & group[c] & ~seen[c],
                               f"core {c}: written outside its load job or after loaded")
    with m.If(dma.load_done):
        m.d.comb += Assert(loading & ((seen | dma.loaded) == group), "load_done before every core loaded")
        m.d.sync += loading.eq(0)
    with m.If(dma.store_done):
        m.d.comb += Assert(storing, "store_done without a store job")
        m.d.sync += storing.eq(0)
    with m.If(_any(dma.gbuf_wr.en)):
        m.d.comb += Assert(storing, "GBUF written outside a store job")
    # a done pulse comes as the DMA returns to idle: a job may be taken in that cycle
    with m.If(take_load | take_store):
        m.d.comb += Assert(~(loading & ~dma.load_done) & ~(storing & ~dma.store_done),
                           "a job taken while one is in progress")
    with m.If(take_load):
        m.d.sync += [loading.eq(1), group.eq(dma.load.payload.group), seen.eq(0)]
    with m.If(take_store):
        m.d.sync += storing.eq(1)

    m.d.comb += [Cover(dma.loaded != 0), Cover(dma.store_done)]
    if top.deep:
        both = Signal()
        with m.If(dma.load_done & (group == (1 << C) - 1)):
            m.d.sync += both.eq(1)
        m.d.comb += [Cover(loading & (group == (1 << C) - 1) & seen[0] & dma.loaded[1]),
                     Cover(both & take_store)]


def _refused(cfg, req, state):
    """The memory map's refusal rule (``BusFrontEnd.model``) as logic."""
    busy = (state == State.CHECKING) | (state == State.RUNNING)
    region = req.addr[REGION_SHIFT:]
    offset = req.addr[:REGION_SHIFT]
    known = Const(0, 1)
    for off in csr_names(cfg):
        known = known | (offset == off)
    writable = (offset == Csr.CTRL.value) | (~busy & ((offset == Csr.POLICY.value) |
                                                      (offset == Csr.NTASKS.value)))
    return ((region == Region.GBUF.value) & (busy | (offset >= cfg.gbuf_depth))) | \
        ((region == Region.PROGRAM.value) & (busy | (offset >= cfg.program_depth * record_words(cfg)))) | \
        ((region == Region.CSR.value) & (~known | (req.write & ~writable))) | (region == 3)


def bus_properties(m, bus, top=None):
    cfg = bus.cfg
    _handshake_in(m, bus.req)
    stalled = _handshake_out(m, bus.resp, "resp")
    req = bus.req.payload
    take = bus.req.valid & bus.req.ready
    refused = _refused(cfg, req, bus.status.state)
    accepted = take & ~refused

    # a queue of the expected answers (error, zero data) of the accepted requests
    DEPTH = 4
    q_err = [Signal(name=f"q_err{i}") for i in range(DEPTH)]
    q_zero = [Signal(name=f"q_zero{i}") for i in range(DEPTH)]
    count = Signal(range(DEPTH + 1))
    give = bus.resp.valid & bus.resp.ready
    with m.If(give):
        m.d.comb += Assert(count != 0, "a response without a request")
        m.d.comb += Assert(bus.resp.payload.error == q_err[0], "response error is not the map's rule")
        with m.If(q_zero[0]):
            m.d.comb += Assert(bus.resp.payload.data == 0, "data in a write's or refused response")
    m.d.comb += Assert(count < DEPTH, "more than three requests in flight")
    # shift out on a response, append on a request
    after = [(q_err[i + 1], q_zero[i + 1]) for i in range(DEPTH - 1)] + [(0, 0)]
    for i in range(DEPTH):
        src_e = Signal(name=f"src_e{i}")
        src_z = Signal(name=f"src_z{i}")
        m.d.comb += [src_e.eq(q_err[i]), src_z.eq(q_zero[i])]
        with m.If(give):
            m.d.comb += [src_e.eq(after[i][0]), src_z.eq(after[i][1])]
        slot = count - give
        with m.If(take & (slot == i)):
            m.d.sync += [q_err[i].eq(refused), q_zero[i].eq(refused | req.write)]
        with m.Else():
            m.d.sync += [q_err[i].eq(src_e), q_zero[i].eq(src_z)]
    m.d.sync += count.eq(count + take - give)

    # nothing changes on a refused request
    region = req.addr[REGION_SHIFT:]
    offset = req.addr[:REGION_SHIFT]
    wb = (record_words(cfg) - 1).bit_length()
    with m.If(_any(bus.gbuf_wr.en)):
        m.d.comb += Assert(accepted & req.write & (region == Region.GBUF.value) &
                           (bus.gbuf_wr.addr == offset) & (bus.gbuf_wr.data == req.data),
                           "GBUF written by a request that is not an accepted write to it")
    with m.If(_any(bus.prog_wr.en)):
        m.d.comb += Assert(accepted & req.write & (region == Region.PROGRAM.value) &
                           (bus.prog_wr.addr == offset[wb:]),
                           "task table written by a request that is not an accepted write to it")
    ctl = bus.control
    with m.If(ctl.start | ctl.resume | ctl.clear):
        m.d.comb += Assert(accepted & req.write & (region == Region.CSR.value) &
                           (offset == Csr.CTRL.value), "a CTRL pulse without a CTRL write")

    refused_write = Signal()
    with m.If(take & refused & req.write):
        m.d.sync += refused_write.eq(1)
    m.d.comb += Cover(refused_write & stalled & bus.resp.valid & ~bus.resp.payload.error &
                      bus.resp.ready)


def dma_set_properties(m, dma, top=None):
    """``dma_properties`` and, with two buffer sets, each core written in its job's set."""
    dma_properties(m, dma, top)
    C, core = dma.cfg.cores, dma.cfg.core
    # the jobs fit one set of the buffers, with no zero dimension (the program checker
    # and the core's check refuse other tasks); a larger one would run into the set
    # bit, and a zero-length pass would run on
    job = dma.load.payload
    P = core.eors_lanes
    n_up = (job.n + P - 1) // P * P
    with m.If(dma.load.valid):
        m.d.comb += Assume((job.n != 0) & (job.k != 0) & (n_up * job.k <= core.depth(Buf.B)))
        m.d.comb += Assume(job.n <= core.depth(Buf.BIAS))
        for c in range(C):
            r = job.rows[c]
            m.d.comb += Assume(~job.group[c] | ((r.mc != 0) & (r.mc * job.k <= core.depth(Buf.A)) &
                                                (r.mc * job.n <= core.depth(Buf.MASK_IN))))
    jsets = Signal(C)
    with m.If(dma.load.valid & dma.load.ready):
        m.d.sync += jsets.eq(dma.load.payload.sets)
    for c in range(C):
        port = dma.cores[c]
        bit = Const(0, 1)
        for b in Buf:
            bit = Mux(port.buf == b, port.addr.bit_select(core.depth(b).bit_length() - 1, 1), bit)
        with m.If(_any(port.we)):
            m.d.comb += Assert(bit == jsets[c], f"core {c}: written outside its job's set")
        m.d.comb += Cover(_any(port.we) & bit)


# the DMA proof's processor with two buffer sets per core
PROC_SETS = replace(PROC, core=replace(PROC.core, buffer_sets=2))


def design_dma(deep=False, sets=False):
    top = Harness(Dma(PROC_SETS if sets else PROC), dma_set_properties if sets else dma_properties)
    top.deep = deep
    return top


def design_bus():
    return Harness(BusFrontEnd(PROC), bus_properties)


PROOFS = {"dma": (design_dma, DMA_DEPTH), "bus": (design_bus, BUS_DEPTH),
          "dma_sets": (lambda: design_dma(sets=True), DMA_DEPTH),
          "dma_deep": (lambda: design_dma(deep=True), DMA_DEEP_DEPTH)}
# a two-core group loaded core by core, then a store: 19 cycles, too deep for CI
SCALE_ONLY = {"dma_deep"}
