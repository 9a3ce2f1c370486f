"""Carries out a checked request on the processor's bus and produces its answer body
(``docs/link.md``)."""

from amaranth.hdl import Module, Signal, Cat, Mux
from amaranth.lib import stream
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out

from ..core.config import check_int
from ..processor.config import ProcessorComponent
from ..processor.program import bus_request_layout, bus_response_layout, record_words
from .cobs_encoder import byte_layout
from .crc import Crc16
from .protocol import (Command, Status, answer_layout, info_layout, PROTOCOL_VERSION,
                       MAX_WORDS, ANSWER_BYTES, crc16)
from .receiver import job_layout

__all__ = ["BusExecutor", "info"]


def info(cfg, max_words):
    """The PING answer's :func:`info_layout` values for ``cfg``."""
    return {"version": PROTOCOL_VERSION, "gbuf_bits": cfg.gbuf_bits, "max_words": max_words,
            "program_bits": cfg.program_bits, "cores": cfg.cores, "record_words": record_words(cfg)}


class BusExecutor(ProcessorComponent):
    """Executes one job at a time and emits its answer body (bytes, ``last`` on the
    final CRC byte): READ data words or PING info words, then :func:`answer_layout`,
    then the CRC-16 of all of it (most significant byte first).

    WRITE takes its words from the job's bank of the payload memory. Requests go out
    one per cycle while the bus takes them; a refused word does not stop the burst
    (each refused access changes nothing), ``index`` records the first one. A job that
    is not OK only gets its answer trailer. ``job.ready`` rises once the whole answer
    has been handed to ``o``, so the job's bank stays untouched until then.

    Throughput: WRITE one word per cycle; READ one byte per cycle on ``o`` (a word per
    two cycles on the bus). Latency from ``job.valid`` to the first answer byte on
    ``o``: READ 3 cycles plus the bus latency; WRITE ``count`` + 2 cycles plus the bus
    latency (its answer is the trailer, after the last response); others 2 cycles.
    ``latency`` is the last.

    Parameters
    ----------
    cfg : ProcessorConfig  (for the PING info)
    max_words : int        bank depth, a power of two 1..256

    Ports
    -----
    job : In(stream.Signature(job_layout()))
    rd : In(ReadPort.Signature(addr_width=log2(max_words) + 1, shape=16))
    req : Out(stream.Signature(bus_request_layout()))
    resp : In(stream.Signature(bus_response_layout()))
    o : Out(stream.Signature(byte_layout()))
    """

    latency = 2

    @classmethod
    def check_parameters(cls, cfg, max_words=MAX_WORDS):
        super().check_parameters(cfg)
        check_int("max_words", max_words, 1, MAX_WORDS, power_of_two=True)

    def __init__(self, cfg, max_words=MAX_WORDS):
        self.cfg, self.max_words = cfg, max_words
        self.word_bits = (max_words - 1).bit_length()
        super().__init__({"job": In(stream.Signature(job_layout())),
                          "rd": In(ReadPort.Signature(addr_width=self.word_bits + 1, shape=16)),
                          "req": Out(stream.Signature(bus_request_layout())),
                          "resp": In(stream.Signature(bus_response_layout())),
                          "o": Out(stream.Signature(byte_layout()))})

    @staticmethod
    def model(cfg, status, hdr, words, bus, max_words=MAX_WORDS):
        """The answer body of a job: ``bus(addr, write, data) -> (data, error)`` performs
        each access (a memory-map model)."""
        data_words, index = [], 0
        if status == Status.OK:
            cmd = Command(hdr.cmd)
            if cmd == Command.PING:
                v = info_layout().const(info(cfg, max_words)).as_value().value
                data_words = [(v >> (16 * i)) & 0xFFFF for i in range(info_layout().size // 16)]
            else:
                index = None
                for i in range(hdr.count):
                    addr = (hdr.addr + i) % (1 << 24)
                    write = cmd == Command.WRITE
                    value, error = bus(addr, int(write), words[i] if write else 0)
                    if error and index is None:
                        index = i
                    if not write:
                        data_words.append(0 if error else value)
                index = hdr.count if index is None else index
            st = Status.OK if index == (hdr.count if cmd != Command.PING else 0) else Status.BUS_ERROR
        else:
            st = status
        body = b"".join(w.to_bytes(2, "little") for w in data_words)
        body += answer_layout().const({"cmd": hdr.cmd, "seq": hdr.seq, "status": st,
                                       "index": index}).as_value().value.to_bytes(ANSWER_BYTES, "little")
        c = crc16(body)
        return body + bytes([c >> 8, c & 0xFF])

    def elaborate(self, platform):
        m = Module()
        m.submodules.crc = crc = Crc16()
        job = self.job.payload
        hdr = job.req
        count = hdr.count
        is_write = hdr.cmd == Command.WRITE.value

        # byte output stage: the answer's CRC runs over every byte given to ``o``
        load = Signal()
        byte = Signal(8)
        last = Signal()
        free = ~self.o.valid | self.o.ready
        with m.If(load):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(byte), self.o.payload.last.eq(last)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        issued = Signal(range(MAX_WORDS + 1))
        got = Signal(range(MAX_WORDS + 1))
        index = Signal(16)
        refused = Signal()
        k = Signal(range(max(ANSWER_BYTES, 8) + 2))
        wbuf = Signal(16)
        wfull = Signal()
        half = Signal()

        trailer = Signal(answer_layout())
        m.d.comb += [trailer.cmd.eq(hdr.cmd), trailer.seq.eq(hdr.seq), trailer.index.eq(index),
                     trailer.status.eq(Mux(job.status == Status.OK,
                                           Mux(refused, Status.BUS_ERROR, Status.OK), job.status))]
        info_bits = info_layout().const(info(self.cfg, self.max_words)).as_value()
        m.d.comb += [crc.data.eq(byte), crc.en.eq(load)]

        # requests: a registered stream; WRITE data comes from the read port, which
        # holds its output while the request waits
        adv = ~self.req.valid | self.req.ready
        m.d.comb += [self.rd.addr.eq(Cat(issued[:self.word_bits], job.bank)),
                     self.req.payload.data.eq(Mux(self.req.payload.write, self.rd.data, 0))]

        with m.FSM():
            with m.State("Idle"):
                m.d.comb += crc.clear.eq(1)
                m.d.sync += [issued.eq(0), got.eq(0), k.eq(0), refused.eq(0), index.eq(0),
                             wfull.eq(0), half.eq(0)]
                with m.If(self.job.valid):
                    with m.If(job.status != Status.OK):
                        m.next = "Trailer"
                    with m.Elif(hdr.cmd == Command.PING.value):
                        m.next = "Info"
                    with m.Else():
                        m.d.sync += index.eq(count)
                        m.next = "Burst"
            with m.State("Info"):
                m.d.comb += [byte.eq(info_bits.word_select(k, 8)), load.eq(free)]
                with m.If(free):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == info_layout().size // 8 - 1):
                        m.d.sync += k.eq(0)
                        m.next = "Trailer"
            with m.State("Burst"):
                more = issued != count
                m.d.comb += self.rd.en.eq(adv)
                with m.If(adv):
                    m.d.sync += [self.req.valid.eq(more), self.req.payload.addr.eq(hdr.addr + issued),
                                 self.req.payload.write.eq(is_write)]
                    with m.If(more):
                        m.d.sync += issued.eq(issued + 1)
                # responses: WRITE ones are counted; READ ones go out as two bytes
                emit_hi = wfull & half & free
                m.d.comb += self.resp.ready.eq(is_write | ~wfull | emit_hi)
                with m.If(self.resp.valid & self.resp.ready):
                    m.d.sync += got.eq(got + 1)
                    with m.If(self.resp.payload.error & ~refused):
                        m.d.sync += [refused.eq(1), index.eq(got)]
                    with m.If(~is_write):
                        m.d.sync += [wbuf.eq(self.resp.payload.data), wfull.eq(1)]
                with m.Elif(emit_hi):
                    m.d.sync += wfull.eq(0)
                with m.If(wfull & free):
                    m.d.comb += [load.eq(1), byte.eq(Mux(half, wbuf[8:], wbuf[:8]))]
                    m.d.sync += half.eq(~half)
                with m.If((got == count) & ~wfull & ~self.req.valid):
                    m.next = "Trailer"
            with m.State("Trailer"):
                m.d.comb += [byte.eq(trailer.as_value().word_select(k, 8)), load.eq(free)]
                with m.If(free):
                    m.d.sync += k.eq(k + 1)
                    with m.If(k == ANSWER_BYTES - 1):
                        m.next = "Crc"
            with m.State("Crc"):
                # the CRC includes a byte the cycle after its load, so it is complete
                # here; its own bytes stay out of it
                m.d.comb += crc.en.eq(0)
                with m.If(free):
                    m.d.comb += [load.eq(1), byte.eq(Mux(k == ANSWER_BYTES, crc.crc[8:], crc.crc[:8])),
                                 last.eq(k != ANSWER_BYTES)]
                    m.d.sync += k.eq(k + 1)
                    with m.If(k != ANSWER_BYTES):
                        m.d.comb += self.job.ready.eq(1)
                        m.next = "Idle"
        return m
