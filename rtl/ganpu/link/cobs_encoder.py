"""COBS encoding of the answer byte stream, one byte per cycle (``docs/link.md``)."""

from amaranth.hdl import Module, Signal, Cat
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out

from .protocol import cobs_encode, DELIMITER

__all__ = ["CobsEncoder", "byte_layout"]


def byte_layout():
    """A byte of a frame body; ``last`` marks the body's final byte."""
    return data.StructLayout({"data": 8, "last": 1})


class CobsEncoder(wiring.Component):
    """COBS-encodes each body (bytes up to one with ``last``) and ends it with 0x00.

    Each code byte needs the length of the block it starts, so a block's bytes wait
    in a FIFO until the block closes (at a 0x00, after 254 non-zero bytes, or at the
    body's end); then its code goes into a code FIFO. The output side sends a code
    and its block's bytes while the input side fills the next blocks, so neither side
    stalls the other: the data FIFO (512 bytes) holds an open block (at most 253 bytes)
    and at least one closed one, and the code FIFO (256 codes) every block that can
    close while the output sends a block of 254 bytes (a short block per 0x00 byte).

    Throughput: one input byte per cycle (one bubble after a body that ends in 0x00),
    one output byte per cycle. Latency: a byte leaves after its block closes, so at
    most 254 input bytes plus 3 cycles (FIFO and code hand-over) after it entered.

    Ports
    -----
    i : In(stream.Signature(byte_layout()))   body bytes
    o : Out(stream.Signature(8))              encoded bytes and delimiters
    """

    DATA_DEPTH = 512
    CODE_DEPTH = 256  # a code per block closed while the output sends a long block
    latency = 257  # the bound above, in cycles

    i: In(stream.Signature(byte_layout()))
    o: Out(stream.Signature(8))

    @staticmethod
    def model(bodies):
        """The bytes sent for ``bodies`` (each a non-empty bytes object)."""
        return b"".join(cobs_encode(b) + bytes([DELIMITER]) for b in bodies)

    def elaborate(self, platform):
        m = Module()
        m.submodules.data = dq = SyncFIFOBuffered(width=8, depth=self.DATA_DEPTH)
        m.submodules.codes = cq = SyncFIFOBuffered(width=9, depth=self.CODE_DEPTH)
        dw, dr, cw, cr = dq.w_stream, dq.r_stream, cq.w_stream, cq.r_stream

        # input side: count the open block, store its non-zero bytes, push codes
        n = Signal(8)
        tail = Signal()   # a body ended in 0x00: its final empty block (code 1) is due
        b, last = self.i.payload.data, self.i.payload.last
        m.d.comb += self.i.ready.eq(~tail & dw.ready & cw.ready)
        take = self.i.valid & self.i.ready
        code, code_last, push = Signal(8), Signal(), Signal()
        m.d.comb += [cw.payload.eq(Cat(code, code_last)), cw.valid.eq(push),
                     dw.payload.eq(b), dw.valid.eq(take & (b != 0))]
        with m.If(tail):
            m.d.comb += [push.eq(1), code.eq(1), code_last.eq(1)]
            with m.If(cw.ready):
                m.d.sync += tail.eq(0)
        with m.Elif(take):
            with m.If(b == 0):
                m.d.comb += [push.eq(1), code.eq(n + 1)]
                m.d.sync += [n.eq(0), tail.eq(last)]
            with m.Elif((n == 253) | last):
                m.d.comb += [push.eq(1), code.eq(n + 2), code_last.eq(last)]
                m.d.sync += n.eq(0)
            with m.Else():
                m.d.sync += n.eq(n + 1)

        # output side: a code, its block's bytes, then 0x00 after a body's last block
        cnt = Signal(8)
        end = Signal()
        with m.FSM():
            with m.State("Code"):
                c = cr.payload[:8]
                m.d.comb += [self.o.valid.eq(cr.valid), self.o.payload.eq(c),
                             cr.ready.eq(self.o.ready)]
                with m.If(cr.valid & self.o.ready):
                    m.d.sync += [cnt.eq(c - 1), end.eq(cr.payload[8])]
                    with m.If(c != 1):
                        m.next = "Data"
                    with m.Elif(cr.payload[8]):
                        m.next = "Delimiter"
            with m.State("Data"):
                m.d.comb += [self.o.valid.eq(dr.valid), self.o.payload.eq(dr.payload),
                             dr.ready.eq(self.o.ready)]
                with m.If(dr.valid & self.o.ready):
                    m.d.sync += cnt.eq(cnt - 1)
                    with m.If(cnt == 1):
                        m.next = "Code"
                        with m.If(end):
                            m.next = "Delimiter"
            with m.State("Delimiter"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.eq(DELIMITER)]
                with m.If(self.o.ready):
                    m.next = "Code"
        return m
