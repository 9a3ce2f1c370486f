"""The host side of the link: the frame codec, byte channels and a
:class:`~ganpu.host.processor_driver.BusTransport` over them (``docs/link.md``).

Frames are built from :mod:`ganpu.link.protocol`'s layouts with ``layout.const(...)``.
Channels: :class:`SerialChannel` (any pyserial URL: ``/dev/ttyUSB0`` for a board,
``socket://host:port`` for ``ganpu sim``); ``ganpu.sim.cocotb_link`` has the in-process
one for cocotb benches. This module never imports cocotb.
"""

import asyncio
import time
from abc import ABC, abstractmethod

from amaranth.lib import data

from ..link.protocol import (Command, Status, request_layout, answer_layout, info_layout,
                             MAX_WORDS, DELIMITER, REQUEST_BYTES, ANSWER_BYTES, crc16,
                             cobs_encode, cobs_decode, CobsError)
from .processor_driver import BusTransport

__all__ = ["LinkError", "LinkTimeout", "LinkCrcError", "DeviceError", "Answer",
           "encode_request", "decode_answer", "ByteChannel", "SerialChannel",
           "LinkBusTransport", "bursts"]


class LinkError(RuntimeError):
    """Something went wrong on the link."""


class LinkTimeout(LinkError, TimeoutError):
    """No (complete, valid) answer within the timeout."""


class LinkCrcError(LinkError):
    """An answer arrived damaged, or the device saw our frame damaged (CRC_ERROR)."""


class DeviceError(LinkError):
    """The device answered with a status other than OK."""

    def __init__(self, status, message):
        self.status = status
        super().__init__(message)


class Answer:
    """A decoded answer: ``cmd``, ``seq``, ``status`` (:class:`Status`), ``index`` and
    the data ``words`` before the trailer."""

    def __init__(self, cmd, seq, status, index, words):
        self.cmd, self.seq, self.status, self.index, self.words = cmd, seq, status, index, words

    def __repr__(self):
        return (f"Answer(cmd={self.cmd}, seq={self.seq}, status={self.status.name}, "
                f"index={self.index}, {len(self.words)} words)")


def encode_request(cmd, seq, addr=0, count=0, words=(), lead=True):
    """The bytes of one request frame (``lead``: a 0x00 first, which flushes whatever
    partial frame the device holds). ``cmd`` is a :class:`Command` or any byte."""
    cmd = cmd.value if isinstance(cmd, Command) else cmd
    hdr = request_layout().const({"cmd": cmd, "seq": seq & 0xFF, "count": count, "addr": addr})
    body = hdr.as_value().value.to_bytes(REQUEST_BYTES, "little")
    body += b"".join((int(w) & 0xFFFF).to_bytes(2, "little") for w in words)
    c = crc16(body)
    body += bytes([c >> 8, c & 0xFF])
    return (bytes([DELIMITER]) if lead else b"") + cobs_encode(body) + bytes([DELIMITER])


def decode_answer(frame):
    """The :class:`Answer` of one frame's bytes between delimiters;
    :class:`LinkCrcError` if it is damaged."""
    try:
        body = cobs_decode(frame)
    except CobsError as e:
        raise LinkCrcError(f"damaged answer: {e}") from None
    if len(body) < ANSWER_BYTES + 2 or (len(body) - ANSWER_BYTES - 2) % 2:
        raise LinkCrcError(f"damaged answer: {len(body)} bytes")
    if crc16(body) != 0:
        raise LinkCrcError(f"damaged answer: CRC {crc16(body[:-2]):#06x} != {body[-2] << 8 | body[-1]:#06x}")
    t = data.Const(answer_layout(), int.from_bytes(body[-2 - ANSWER_BYTES:-2], "little"))
    n = (len(body) - ANSWER_BYTES - 2) // 2
    words = [int.from_bytes(body[2 * i:2 * i + 2], "little") for i in range(n)]
    try:
        status = t.status
    except ValueError as e:
        raise LinkCrcError(f"answer with an unknown status: {e}") from None
    return Answer(int(t.cmd), int(t.seq), status, int(t.index), words)


class ByteChannel(ABC):
    """A byte pipe to the device."""

    @abstractmethod
    async def write(self, data):
        """Send ``data`` (bytes)."""

    @abstractmethod
    async def read(self, n, timeout):
        """Up to ``n`` bytes that arrived within ``timeout`` seconds (fewer, maybe none,
        on a timeout)."""

    async def idle(self, cycles):
        """Let the device run ``cycles`` clock cycles (a real device just runs)."""

    def close(self):
        pass


class SerialChannel(ByteChannel):
    """Any pyserial URL: ``/dev/ttyUSB0`` (a board), ``socket://host:port``
    (``ganpu sim``), ``loop://``."""

    def __init__(self, url, baud=3_000_000, timeout=1.0):
        import serial
        self.port = serial.serial_for_url(url, baudrate=baud, timeout=0)
        self.timeout = timeout

    async def write(self, data):
        self.port.write(data)
        self.port.flush()

    async def read(self, n, timeout):
        self.port.timeout = timeout
        return self.port.read(n)

    def close(self):
        self.port.close()


def bursts(reqs, max_words=MAX_WORDS):
    """Groups ``[(addr, write, data), ...]`` into runs of consecutive addresses of one
    direction, each at most ``max_words`` long: ``[(start, write, n, [data]), ...]``."""
    out = []
    for addr, write, value in reqs:
        if out:
            start, w, n, values = out[-1]
            if w == write and addr == start + n and n < max_words:
                values.append(value)
                out[-1] = (start, w, n + 1, values)
                continue
        out.append((addr, write, 1, [value]))
    return out
