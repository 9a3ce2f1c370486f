"""The link's framer issues no bus access from a frame whose CRC, COBS coding, command or
length is wrong, and issues a right frame's accesses in order (``docs/verification.md``).

On :class:`ganpu.link.framer.Framer` (processor config of ``proof_ready``, bursts of at
most 2 words, the link timeout at its largest, 2**32 cycles, so no frame times out
within the bound), with every byte on ``rx`` free, the bus under its contract (a response only for a request not yet answered; ``resp`` held until
taken), and the answers' COBS encoder abstracted: it takes the executor's bytes
whenever a free input says so (any back-pressure the real encoder could apply, so
the property carries over; its 512-byte FIFO would only slow the solver). An
independent monitor decodes ``rx`` as the protocol defines it
(``docs/link.md``: COBS between 0x00 delimiters, the CRC-16/CCITT-FALSE over the
whole body, CRC included, leaves 0; a 7-byte header ``cmd``, ``seq``, ``count``,
``addr``; WRITE carries ``count`` words, READ none) and, at each delimiter, queues the
accesses of a right READ or WRITE frame (CRC 0, COBS blocks complete, ``count`` 1..2,
the body exactly ``9 + 2 * count`` bytes for WRITE and 9 for READ). Properties:

* every request the framer hands to the bus is the next queued access: the frame's
  address plus the word's index, its direction, and for a write the frame's word;
  so a frame with a wrong CRC, a cut COBS block, an unknown command or a wrong
  length issues nothing, and no access starts before its frame's delimiter;
* ``req`` keeps the handshake.

Two forms. ``link_framer`` leaves the CRC out of the monitor's rule: every access is
the next access of a frame with complete COBS blocks, a known command and the right
count and length (so a wrong length or command issues nothing, and the accesses are
exactly the frame's, in order). ``link_framer_crc`` adds the CRC: a frame whose CRC
is wrong issues nothing. For it the solver must show that the receiver's CRC register
and the monitor's bitwise CRC agree over every byte string; a proof aid
(:func:`crc_lemma`, asserted and so checked at every step) states that they agree in
every cycle, which makes each step a one-byte equivalence. Both run with Yices
(:data:`SOLVER`): z3 stalls on the CRC even with the lemma.

Depth 17: a one-word WRITE frame is 12 bytes on the line with its delimiter, and its
word reaches the bus 4 cycles after the delimiter. Cover: a WRITE frame's word issued
after a frame with a wrong CRC ended (step 16). ``link_framer_deep`` (with
``GANPU_TEST_SCALE`` > 1) is ``link_framer_crc`` at depth 20 and also covers a WRITE
frame's second word. Mutants (``test_formal``): a framer whose receiver passes a CRC
error, a length error or an unknown command as OK fails the proof with the CRC.
"""

from amaranth.hdl import Assert, Assume, Cat, Const, Cover, Module, Mux, Signal, Value
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

import ganpu.link.framer as framer_module
import ganpu.link.receiver as receiver_module
from ganpu.link.cobs_decoder import Mark
from ganpu.link.cobs_encoder import CobsEncoder, byte_layout
from ganpu.link.crc import Crc16
from ganpu.link.framer import Framer
from ganpu.link.protocol import Command, Status
from ganpu.link.receiver import FrameReceiver

from sby import Harness
from proof_ready import PROC

MAX_WORDS = 2
TIMEOUT = 1 << 32
DEPTH = 17
DEEP_DEPTH = 20
QUEUE = 3


def crc_step(crc, byte):
    """CRC-16/CCITT-FALSE register after ``byte`` (poly 0x1021, MSB first)."""
    c = (crc ^ (byte << 8))[:16]
    for _ in range(8):
        shifted = Cat(Const(0, 1), c[:15])
        c = Mux(c[15], shifted ^ 0x1021, shifted)
    return c


def properties(m, fr, top=None):
    with_crc = top.with_crc
    rx, req, resp = fr.rx, fr.req, fr.resp
    # the bus: one response per request, held until taken
    outstanding = Signal(4)
    m.d.sync += outstanding.eq(outstanding + (req.valid & req.ready) - (resp.valid & resp.ready))
    m.d.comb += Assume(~resp.valid | (outstanding != 0))
    r_stalled = Signal()
    r_prev = Signal.like(Value.cast(resp.payload))
    m.d.sync += [r_stalled.eq(resp.valid & ~resp.ready), r_prev.eq(resp.payload)]
    m.d.comb += Assume(~r_stalled | (resp.valid & (Value.cast(resp.payload) == r_prev)))

    # --- the monitor's decoder
    byte = rx.payload
    take = rx.valid & rx.ready
    remaining = Signal(8)        # data bytes left in the current COBS block
    pend_zero = Signal()         # the last block's code was below 0xFF
    first = Signal(init=1)       # no code byte yet in this frame
    nbytes = Signal(8)           # decoded body bytes (saturating)
    crc = Signal(16, init=0xFFFF)
    hdr = Signal(56)
    words = Signal(16 * MAX_WORDS)
    emit = Signal()
    dbyte = Signal(8)
    with m.If(take & (byte != 0)):
        with m.If(remaining == 0):
            m.d.comb += [emit.eq(~first & pend_zero), dbyte.eq(0)]
            m.d.sync += [remaining.eq(byte - 1), pend_zero.eq(byte != 0xFF), first.eq(0)]
        with m.Else():
            m.d.comb += [emit.eq(1), dbyte.eq(byte)]
            m.d.sync += remaining.eq(remaining - 1)
    with m.If(emit):
        m.d.sync += crc.eq(crc_step(crc, dbyte))
        with m.If(nbytes != 0xFF):
            m.d.sync += nbytes.eq(nbytes + 1)
        with m.If(nbytes < 7):
            m.d.sync += hdr.eq(Cat(hdr[8:], dbyte))
        for i in range(2 * MAX_WORDS):
            with m.If(nbytes == 7 + i):
                m.d.sync += words[8 * i:8 * i + 8].eq(dbyte)
    cmd, count, addr = hdr[0:8], hdr[16:32], hdr[32:56]
    count_ok = (count >= 1) & (count <= MAX_WORDS)
    is_write = cmd == Command.WRITE.value
    is_read = cmd == Command.READ.value
    length_ok = Mux(is_write, nbytes == 9 + 2 * count, nbytes == 9)
    good = ~first & (remaining == 0) & (is_write | is_read) & count_ok & length_ok
    if with_crc:
        good = good & (crc == 0)
    end = take & (byte == 0)
    frame_crc = Signal(16, init=0xFFFF)    # the CRC of the last ended frame
    with m.If(end):
        m.d.sync += [remaining.eq(0), pend_zero.eq(0), first.eq(1), nbytes.eq(0), crc.eq(0xFFFF),
                     frame_crc.eq(crc)]
    if with_crc:
        crc_lemma(m, top, crc, frame_crc)

    # --- the queue of expected accesses, one entry per right frame
    q_addr = [Signal(24, name=f"q_addr{i}") for i in range(QUEUE)]
    q_count = [Signal(2, name=f"q_count{i}") for i in range(QUEUE)]
    q_write = [Signal(name=f"q_write{i}") for i in range(QUEUE)]
    q_words = [Signal(16 * MAX_WORDS, name=f"q_words{i}") for i in range(QUEUE)]
    qn = Signal(range(QUEUE + 1))
    idx = Signal(2)
    issue = req.valid & req.ready
    p = req.payload
    last = issue & (idx + 1 == q_count[0])
    with m.If(issue):
        m.d.comb += Assert(qn != 0, "a bus access from no right frame")
        m.d.comb += Assert((p.addr == (q_addr[0] + idx)[:24]) & (p.write == q_write[0]),
                           "a bus access that is not its frame's next")
        with m.If(p.write):
            m.d.comb += Assert(p.data == q_words[0].word_select(idx[:1], 16), "a written word not the frame's")
        m.d.sync += idx.eq(Mux(last, 0, idx + 1))
    push = end & good
    m.d.comb += Assert(~push | (qn - last < QUEUE), "monitor queue full")
    for i in range(QUEUE):
        nxt = [(q_addr[i + 1], q_count[i + 1], q_write[i + 1], q_words[i + 1])] if i + 1 < QUEUE else []
        cur = (q_addr[i], q_count[i], q_write[i], q_words[i])
        with m.If(push & (qn - last == i)):
            m.d.sync += [q_addr[i].eq(addr), q_count[i].eq(count), q_write[i].eq(is_write),
                         q_words[i].eq(words)]
        with m.Elif(last):
            if nxt:
                m.d.sync += [a.eq(b) for a, b in zip(cur, nxt[0])]
    m.d.sync += qn.eq(qn + push - last)

    # req keeps the handshake
    stalled = Signal()
    prev = Signal.like(Value.cast(p))
    m.d.sync += [stalled.eq(req.valid & ~req.ready), prev.eq(p)]
    with m.If(stalled):
        m.d.comb += Assert(req.valid & (Value.cast(p) == prev), "req withdrawn or changed")

    bad_seen = Signal()
    with m.If(end & ~first & (crc != 0)):
        m.d.sync += bad_seen.eq(1)
    m.d.comb += Cover(issue & p.write & bad_seen)
    if top.deep:
        m.d.comb += Cover(issue & p.write & (idx == 1))


def crc_lemma(m, top, crc, frame_crc):
    """Proof aid, not part of the property: the receiver's CRC register agrees with the
    monitor's ``crc`` in every cycle, allowing for the one token the COBS decoder may
    hold. Proved with the rest at every step, it is assumed at the later steps, so
    each step is a one-byte equivalence of two CRC circuits instead of one over the
    whole byte string. It names the receiver's ``Crc16`` ports (``clear`` is high
    while the receiver holds no byte of a frame, when the register is stale) and
    the token stream into the receiver; the bus rule above names none of them."""
    tok, gen = top.probe_tokens, top.probe_crc
    base = Mux(gen.clear, Crc16.INIT, gen.crc)     # the receiver's CRC so far
    with m.If(tok.valid & (tok.payload.mark == Mark.BYTE)):
        m.d.comb += Assert(crc == crc_step(base, tok.payload.data), "lemma: CRC with a byte in flight")
    with m.Elif(tok.valid):
        m.d.comb += Assert(frame_crc == base, "lemma: CRC at a frame's end")
    with m.Else():
        m.d.comb += Assert(crc == base, "lemma: CRC")


class _PassingReceiver(wiring.Component):
    """A mutant receiver: a job with status ``code`` is reported OK."""

    code = None

    def __init__(self, max_words):
        self.inner = _ProbedReceiver(max_words)
        super().__init__(dict(self.inner.signature.members.items()))

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self.inner
        wiring.connect(m, wiring.flipped(self.i), inner.i)
        wiring.connect(m, inner.wr, wiring.flipped(self.wr))
        m.d.comb += [self.job.valid.eq(inner.job.valid), inner.job.ready.eq(self.job.ready),
                     self.job.payload.eq(inner.job.payload)]
        with m.If(inner.job.payload.status == self.code):
            m.d.comb += self.job.payload.status.eq(Status.OK)
        return m


class _ProbedReceiver(FrameReceiver):
    """The receiver with its :class:`Crc16` made beforehand (``crc``), so the proof
    can name the CRC register before the design is elaborated."""

    def __init__(self, max_words):
        self.crc = Crc16()
        super().__init__(max_words)

    def elaborate(self, platform):
        if getattr(receiver_module, "Crc16", None) is not Crc16:
            raise RuntimeError("receiver.py no longer builds Crc16 by that name: update proof_link")
        receiver_module.Crc16 = lambda: self.crc
        try:
            return super().elaborate(platform)
        finally:
            receiver_module.Crc16 = Crc16


class _FreeEncoder(wiring.Component):
    """The answer side abstracted: takes bytes when a free input says so and sends free
    bytes. Every behaviour of the real COBS encoder is one of its behaviours, so a
    property of the bus side proved with it holds with the encoder."""

    i: In(stream.Signature(byte_layout()))
    o: Out(stream.Signature(8))
    free = None      # (ready, valid, byte): free inputs of the proof's top

    def elaborate(self, platform):
        m = Module()
        ready, valid, byte = self.free
        m.d.comb += [self.i.ready.eq(ready), self.o.valid.eq(valid), self.o.payload.eq(byte)]
        return m


class _ProofFramer(Framer):
    """The framer built with its blocks, except the encoder (:class:`_FreeEncoder`),
    and with its receiver made beforehand (``receiver``: a :class:`_ProbedReceiver`,
    or for a mutant a :class:`_PassingReceiver` around one)."""

    free = None
    receiver = None

    def elaborate(self, platform):
        names = ("CobsEncoder", "FrameReceiver")
        if getattr(framer_module, "CobsEncoder", None) is not CobsEncoder or \
                getattr(framer_module, "FrameReceiver", None) is not FrameReceiver:
            raise RuntimeError(f"framer.py no longer builds {' and '.join(names)} by those names: "
                               "update proof_link")
        framer_module.CobsEncoder = type("FreeEncoder", (_FreeEncoder,), {"free": self.free})
        framer_module.FrameReceiver = self._receiver
        try:
            return super().elaborate(platform)
        finally:
            framer_module.CobsEncoder, framer_module.FrameReceiver = CobsEncoder, FrameReceiver

    def _receiver(self, max_words):
        if max_words != self.max_words:
            raise RuntimeError(f"framer.py builds its receiver with max_words={max_words!r}, "
                               f"not {self.max_words!r}: update proof_link")
        return self.receiver


def design(mutant=None, deep=False, with_crc=False):
    """The proof; ``mutant`` names a Status the receiver lets through as OK; ``with_crc``
    adds the CRC to the monitor's rule for a right frame."""
    fr = _ProofFramer(PROC, timeout=TIMEOUT, max_words=MAX_WORDS)
    if mutant is None:
        fr.receiver = _ProbedReceiver(MAX_WORDS)
        crc = fr.receiver.crc
    else:
        fr.receiver = type("PassingReceiver", (_PassingReceiver,), {"code": Status[mutant]})(MAX_WORDS)
        crc = fr.receiver.inner.crc
    top = Harness(fr, properties, extra={"enc_ready": In(1), "enc_valid": In(1), "enc_byte": In(8)})
    fr.free = (top.enc_ready, top.enc_valid, top.enc_byte)
    top.deep, top.with_crc = deep, with_crc
    top.probe_tokens, top.probe_crc = fr.receiver.i, crc
    return top


PROOFS = {"link_framer": (design, DEPTH),
          "link_framer_crc": (lambda: design(with_crc=True), DEPTH),
          "link_framer_deep": (lambda: design(deep=True, with_crc=True), DEEP_DEPTH)}
# a two-word WRITE's second word leaves at step 19: too deep for CI
SCALE_ONLY = {"link_framer_deep"}
# z3 takes minutes a step on the CRC from step 8 (with the lemma) or 14 (without);
# Yices proves link_framer_crc to depth 17 in about 40 CPU s
SOLVER = "yices"
