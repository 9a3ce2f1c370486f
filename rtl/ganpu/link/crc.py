"""CRC-16/CCITT-FALSE over a byte stream, one byte per cycle (``docs/link.md``)."""

from amaranth.hdl import Module, Mux, Signal, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .protocol import crc16

__all__ = ["Crc16"]


def _step(crc, byte):
    """The CRC after one more byte, as an XOR network (bit-serial loop unrolled)."""
    bits = [crc[i] for i in range(16)]
    for i in reversed(range(8)):
        fb = bits[15] ^ byte[i]
        bits = [fb] + bits[:15]
        for tap in (5, 12):
            bits[tap] = bits[tap] ^ fb
    return Cat(*bits)


class Crc16(wiring.Component):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, MSB first, no final xor) of the
    bytes given since the last ``clear``; :meth:`model` is
    :func:`ganpu.link.protocol.crc16`.

    Latency: ``crc`` includes a byte one cycle after the cycle it is given with ``en``;
    ``next`` (combinational) is what ``crc`` becomes after this cycle. A byte given
    with ``clear`` is the first byte of a new CRC. Throughput one byte per cycle.
    Appending a CRC most significant byte first makes the CRC of the whole zero.

    Ports
    -----
    data : In(8)      the byte
    en : In(1)        ``data`` is a byte of the message this cycle
    clear : In(1)     start a new message (``crc`` becomes 0xFFFF, or the CRC of
                      ``data`` if ``en``)
    crc : Out(16)     CRC of the bytes given so far
    next : Out(16)    ``crc`` of the next cycle
    """

    INIT = 0xFFFF
    latency = 1

    data: In(8)
    en: In(1)
    clear: In(1)
    crc: Out(16, init=INIT)
    next: Out(16)

    @staticmethod
    def model(data_bytes):
        """CRC of ``data_bytes`` (the value ``crc`` holds after them)."""
        return crc16(data_bytes)

    def elaborate(self, platform):
        m = Module()
        base = Signal(16)
        m.d.comb += base.eq(Mux(self.clear, self.INIT, self.crc))
        m.d.comb += self.next.eq(Mux(self.en, _step(base, self.data), base))
        m.d.sync += self.crc.eq(self.next)
        return m
