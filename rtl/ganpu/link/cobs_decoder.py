"""COBS decoding of the received byte stream into frame tokens (``docs/link.md``)."""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream
from amaranth.lib.wiring import In, Out

from ..core.config import check_int
from ..processor.config import ProcessorComponent
from .protocol import DELIMITER

__all__ = ["Mark", "token_layout", "CobsDecoder"]


class Mark(enum.Enum, shape=2):
    """What a token of :class:`CobsDecoder` says."""
    BYTE = 0      # ``data`` is the next decoded byte of the frame
    END = 1       # a delimiter ended the frame; its COBS codes were consistent
    BROKEN = 2    # a delimiter ended the frame inside a COBS block (a lost or a
                  # corrupted byte): the frame is damaged
    TIMEOUT = 3   # no byte for ``timeout`` cycles inside a frame: the frame is dropped


def token_layout():
    return data.StructLayout({"data": 8, "mark": Mark})


class CobsDecoder(ProcessorComponent):
    """Undoes COBS on the bytes between 0x00 delimiters, one byte per cycle.

    Each input byte gives at most one token: a non-delimiter byte inside a block gives
    it as a BYTE token; a code byte gives the 0x00 that the previous block implied
    (when that block's code was below 0xFF and it was not the frame's first) and
    otherwise nothing; a delimiter gives END (or BROKEN when a block was cut short),
    and nothing after an empty frame (several delimiters in a row), so a host may
    send delimiters to flush the line at any time. ``timeout`` cycles without an input
    byte inside a frame give a TIMEOUT token and the next byte starts a new frame.

    Latency: a token is valid one cycle after its input byte is taken. Throughput one
    byte per cycle; ``i.ready`` is low only while a token waits for ``o.ready``.

    Parameters
    ----------
    timeout : int
        Idle cycles inside a frame before it is dropped, 2..2**32.

    Ports
    -----
    i : In(stream.Signature(8))                  received bytes
    o : Out(stream.Signature(token_layout()))    tokens
    """

    latency = 1

    @classmethod
    def check_parameters(cls, timeout):
        check_int("timeout", timeout, 2, 1 << 32)

    def __init__(self, timeout):
        self.timeout = timeout
        super().__init__({"i": In(stream.Signature(8)),
                          "o": Out(stream.Signature(token_layout()))})

    @staticmethod
    def model(items):
        """Tokens ``[(Mark, byte), ...]`` for ``items``: bytes, or ``None`` for an idle gap
        of at least ``timeout`` cycles."""
        out, remaining, zero, in_frame = [], 0, False, False
        for b in items:
            if b is None:
                if in_frame:
                    out.append((Mark.TIMEOUT, 0))
                remaining, zero, in_frame = 0, False, False
            elif b == DELIMITER:
                if in_frame:
                    out.append((Mark.BROKEN if remaining else Mark.END, 0))
                remaining, zero, in_frame = 0, False, False
            elif remaining == 0:
                if zero:
                    out.append((Mark.BYTE, 0))
                remaining, zero, in_frame = b - 1, b != 0xFF, True
            else:
                out.append((Mark.BYTE, b))
                remaining -= 1
        return out

    def elaborate(self, platform):
        m = Module()
        remaining = Signal(8)
        zero = Signal()
        in_frame = Signal()
        idle = Signal(range(self.timeout))
        timed_out = Signal()
        m.d.comb += timed_out.eq(in_frame & (idle == self.timeout - 1))

        free = ~self.o.valid | self.o.ready
        m.d.comb += self.i.ready.eq(free & ~timed_out)
        take = self.i.valid & self.i.ready
        b = self.i.payload

        emit = Signal()
        mark = Signal(Mark)
        byte = Signal(8)
        with m.If(timed_out & free):
            m.d.comb += [emit.eq(1), mark.eq(Mark.TIMEOUT)]
            m.d.sync += [remaining.eq(0), zero.eq(0), in_frame.eq(0)]
        with m.Elif(take):
            with m.If(b == DELIMITER):
                m.d.comb += [emit.eq(in_frame), mark.eq(Mux(remaining != 0, Mark.BROKEN, Mark.END))]
                m.d.sync += [remaining.eq(0), zero.eq(0), in_frame.eq(0)]
            with m.Elif(remaining == 0):
                m.d.comb += [emit.eq(zero), mark.eq(Mark.BYTE), byte.eq(0)]
                m.d.sync += [remaining.eq(b - 1), zero.eq(b != 0xFF), in_frame.eq(1)]
            with m.Else():
                m.d.comb += [emit.eq(1), mark.eq(Mark.BYTE), byte.eq(b)]
                m.d.sync += remaining.eq(remaining - 1)

        with m.If(take | ~in_frame | (timed_out & free)):
            m.d.sync += idle.eq(0)
        with m.Elif(~timed_out):
            m.d.sync += idle.eq(idle + 1)

        with m.If(emit):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.data.eq(byte),
                         self.o.payload.mark.eq(mark)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        return m

