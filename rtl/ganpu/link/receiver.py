"""Parses decoded request frames into jobs; write payloads go to a bank of the payload
memory (``docs/link.md``)."""

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import data, stream
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out

from ..core.config import check_int
from ..processor.config import ProcessorComponent
from .cobs_decoder import Mark, token_layout
from .crc import Crc16
from .protocol import Command, Status, request_layout, REQUEST_BYTES, CRC_BYTES, crc16, MAX_WORDS

__all__ = ["FrameReceiver", "job_layout"]

MIN_BYTES = REQUEST_BYTES + CRC_BYTES
LEN_BITS = 11   # body length counter, saturating (the longest valid body is 523 bytes)


def job_layout():
    """A checked request: its header, its verdict, and the bank holding its payload."""
    return data.StructLayout({"req": request_layout(), "status": Status, "bank": 1})


class FrameReceiver(ProcessorComponent):
    """Turns the tokens of :class:`~ganpu.link.cobs_decoder.CobsDecoder` into jobs.

    The first 7 bytes of a body are its header (:func:`request_layout`); the bytes after
    them are paired into little-endian words and written to bank ``bank`` of the
    payload memory (words beyond ``max_words`` are not stored). The CRC runs over the
    whole body, so a right CRC leaves the remainder 0. At the frame's end:

    * TIMEOUT, or fewer than 9 bytes: dropped, no job (the host hears nothing);
    * BROKEN or a CRC remainder other than 0: CRC_ERROR;
    * ``cmd`` not a :class:`Command`: BAD_COMMAND;
    * PING or READ with a body other than 9 bytes, WRITE with one other than
      ``9 + 2 * count``, READ or WRITE with ``count`` 0 or > ``max_words``: BAD_LENGTH;
    * else OK.

    Every other frame becomes a job. ``job`` stays valid until the executor is done
    with it (``job.ready`` = done), and a job's bank is never written while it is
    valid: the next frame fills the other bank, and its end waits (``i.ready`` low) for
    the previous job to be done. So a payload is committed only after its CRC and
    length were checked, and a host with at most two frames outstanding is never
    stalled.

    Latency: the job is valid one cycle after the end token. Throughput one token per
    cycle.

    Parameters
    ----------
    max_words : int
        Largest burst, a power of two, 1..256; also each bank's depth.

    Ports
    -----
    i : In(stream.Signature(token_layout()))
    wr : In(WritePort.Signature(addr_width=log2(max_words) + 1, shape=16))
    job : Out(stream.Signature(job_layout()))
    """

    latency = 1

    @classmethod
    def check_parameters(cls, max_words=MAX_WORDS):
        check_int("max_words", max_words, 1, MAX_WORDS, power_of_two=True)

    def __init__(self, max_words=MAX_WORDS):
        self.max_words = max_words
        self.word_bits = (max_words - 1).bit_length()
        super().__init__({"i": In(stream.Signature(token_layout())),
                          "wr": In(WritePort.Signature(addr_width=self.word_bits + 1, shape=16)),
                          "job": Out(stream.Signature(job_layout()))})

    @staticmethod
    def model(body, max_words=MAX_WORDS, broken=False):
        """``(status, header Const, words)`` of one decoded body, or ``None`` when it is
        dropped; ``words`` is the WRITE payload (empty otherwise)."""
        if len(body) < MIN_BYTES:
            return None
        hdr = data.Const(request_layout(), int.from_bytes(body[:REQUEST_BYTES], "little"))
        payload = body[REQUEST_BYTES:-CRC_BYTES]
        words = [int.from_bytes(payload[i:i + 2], "little") for i in range(0, len(payload) - 1, 2)]
        if broken or crc16(body) != 0:
            return Status.CRC_ERROR, hdr, []
        if hdr.cmd not in {c.value for c in Command}:
            return Status.BAD_COMMAND, hdr, []
        cmd = Command(hdr.cmd)
        want = MIN_BYTES + (2 * hdr.count if cmd == Command.WRITE else 0)
        if len(body) != want or (cmd != Command.PING and not 1 <= hdr.count <= max_words):
            return Status.BAD_LENGTH, hdr, []
        return Status.OK, hdr, words if cmd == Command.WRITE else []

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = Crc16()
        tok = self.i.payload
        nbytes = Signal(LEN_BITS)
        hdr = Signal(request_layout())
        lo = Signal(8)
        bank = Signal()

        is_end = tok.mark != Mark.BYTE
        m.d.comb += self.i.ready.eq(~is_end | ~self.job.valid)
        take = self.i.valid & self.i.ready
        byte = take & ~is_end
        m.d.comb += [crc.data.eq(tok.data), crc.en.eq(byte), crc.clear.eq(nbytes == 0)]

        with m.If(byte):
            with m.If(nbytes != (1 << LEN_BITS) - 1):
                m.d.sync += nbytes.eq(nbytes + 1)
            with m.If(nbytes < REQUEST_BYTES):
                m.d.sync += hdr.eq(Cat(hdr.as_value()[8:], tok.data))
            with m.If(~nbytes[0] ^ (REQUEST_BYTES % 2)):
                m.d.sync += lo.eq(tok.data)
        # payload byte p = nbytes - 7; odd p completes word p // 2
        p = Signal(LEN_BITS)
        m.d.comb += p.eq(nbytes - REQUEST_BYTES)
        m.d.comb += [self.wr.addr.eq(Cat(p[1:1 + self.word_bits], bank)),
                     self.wr.data.eq(Cat(lo, tok.data)),
                     self.wr.en.eq(byte & (nbytes >= REQUEST_BYTES) & p[0] &
                                   (p[1:] < self.max_words))]

        cmd = hdr.cmd
        count = hdr.count
        known = (cmd == Command.PING.value) | (cmd == Command.WRITE.value) | (cmd == Command.READ.value)
        want = Signal(LEN_BITS + 1)
        m.d.comb += want.eq(MIN_BYTES + Cat(0, count).as_unsigned() * (cmd == Command.WRITE.value))
        count_ok = (count != 0) & (count <= self.max_words)
        length_ok = (nbytes == want) & (count_ok | (cmd == Command.PING.value))
        status = Signal(Status)
        with m.If((tok.mark == Mark.BROKEN) | (crc.crc != 0)):
            m.d.comb += status.eq(Status.CRC_ERROR)
        with m.Elif(~known):
            m.d.comb += status.eq(Status.BAD_COMMAND)
        with m.Elif(~length_ok):
            m.d.comb += status.eq(Status.BAD_LENGTH)
        with m.Else():
            m.d.comb += status.eq(Status.OK)

        push = take & is_end & (tok.mark != Mark.TIMEOUT) & (nbytes >= MIN_BYTES)
        with m.If(take & is_end):
            m.d.sync += nbytes.eq(0)
        with m.If(push):
            m.d.sync += [self.job.valid.eq(1), self.job.payload.req.eq(hdr),
                         self.job.payload.status.eq(status), self.job.payload.bank.eq(bank),
                         bank.eq(~bank)]
        with m.Elif(self.job.ready):
            m.d.sync += self.job.valid.eq(0)
        return m
