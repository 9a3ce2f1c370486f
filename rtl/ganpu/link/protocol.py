"""The link protocol, defined once: frame layouts, commands, status codes, the CRC and
the COBS framing (``docs/link.md``).

The gateware (:mod:`ganpu.link.framer`) and the host (:mod:`ganpu.host.link`) both
build their frames from these layouts and enums; the host packs them with
``layout.const(...)``.

Frame on the wire (both directions)::

    0x00 (host only, optional)  COBS(body)  0x00

Request body (host -> device)::

    request_layout() (7 bytes)  [count data words, WRITE only]  CRC-16 (2 bytes)

Answer body (device -> host)::

    [data words: READ -> count words, PING -> info_layout()]  answer_layout() (5 bytes)  CRC-16

Every multi-byte field and data word is little-endian (a layout's packed value, least
significant byte first), except the CRC, which is sent most significant byte first so
that the CRC over a whole body (CRC included) is zero.
"""

from amaranth.lib import data, enum

from ..processor.program import BUS_ADDR_BITS

__all__ = ["Command", "Status", "request_layout", "answer_layout", "info_layout",
           "PROTOCOL_VERSION", "MAX_WORDS", "DELIMITER", "REQUEST_BYTES", "ANSWER_BYTES",
           "CRC_BYTES", "crc16", "cobs_encode", "cobs_decode", "CobsError"]

PROTOCOL_VERSION = 1
MAX_WORDS = 256          # largest burst (words) a frame may carry
DELIMITER = 0x00         # ends every frame (COBS keeps it out of the frame's bytes)
CRC_BYTES = 2


class Command(enum.Enum, shape=8):
    """What a request frame asks for (the ``cmd`` byte of :func:`request_layout`)."""
    PING = 1     # answer with info_layout(): protocol version and the device's sizes
    WRITE = 2    # bus words addr .. addr+count-1 become the frame's count data words
    READ = 3     # answer with bus words addr .. addr+count-1


class Status(enum.Enum, shape=8):
    """The ``status`` byte of every answer (``docs/link.md``, "Answers")."""
    OK = 0
    CRC_ERROR = 1    # the body's CRC (or its COBS code) is wrong: nothing executed
    BAD_LENGTH = 2   # CRC and cmd right, but count is 0 or > MAX_WORDS, or the body's
                     # length does not match cmd and count: nothing executed
    BAD_COMMAND = 3  # CRC right, cmd is not a Command: nothing executed
    BUS_ERROR = 4    # the processor refused word ``index`` of the burst (address beyond
                     # the memory map, a read-only CSR, or GBUF/PROGRAM while a program
                     # checks or runs); words before it were done, later words were
                     # still attempted (each refused one changes nothing)


def request_layout():
    """The request header. ``cmd`` is a plain byte (an unknown one must be representable
    to be answered BAD_COMMAND); compare it with :class:`Command` values."""
    return data.StructLayout({"cmd": 8, "seq": 8, "count": 16, "addr": BUS_ADDR_BITS})


def answer_layout():
    """The answer trailer: ``cmd`` and ``seq`` echo the request's; ``index`` is the
    number of words done before the first refused one (``count`` when none was
    refused; 0 for a frame that executed nothing, and for PING)."""
    return data.StructLayout({"cmd": 8, "seq": 8, "status": Status, "index": 16})


def info_layout():
    """The PING answer's data (4 words): what a host needs to talk to this device."""
    return data.StructLayout({"version": 8, "gbuf_bits": 8, "max_words": 16,
                              "program_bits": 8, "cores": 8, "record_words": 16})


REQUEST_BYTES = request_layout().size // 8
ANSWER_BYTES = answer_layout().size // 8


def crc16(data_bytes, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected, no final xor) of
    ``data_bytes``; ``crc16(b"123456789") == 0x29B1``."""
    for b in bytes(data_bytes):
        crc ^= b << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


class CobsError(ValueError):
    """A byte string that is not a valid COBS encoding."""


def cobs_encode(body):
    """COBS encoding of ``body`` (no 0x00 in the result; the delimiter is not added).

    A block of 254 non-zero bytes gets code 0xFF and no final code 0x01 follows it
    at the end of the body (``docs/link.md`` says why a decoder accepts both)."""
    out, block = bytearray(), bytearray()
    body = bytes(body)
    for i, b in enumerate(body):
        if b == 0:
            out += bytes([len(block) + 1]) + block
            block = bytearray()
        else:
            block.append(b)
            if len(block) == 254:
                out += b"\xff" + block
                block = bytearray()
                if i == len(body) - 1:
                    return bytes(out)
    out += bytes([len(block) + 1]) + block
    return bytes(out)


def cobs_decode(enc):
    """Inverse of :func:`cobs_encode`; :class:`CobsError` if a code points past the end
    or the input holds a 0x00."""
    out = bytearray()
    i, zero = 0, False
    enc = bytes(enc)
    while i < len(enc):
        code = enc[i]
        if code == 0:
            raise CobsError(f"0x00 at byte {i} inside a COBS frame")
        if zero:
            out.append(0)
        if i + code > len(enc):
            raise CobsError(f"code {code} at byte {i} runs past the frame's {len(enc)} bytes")
        block = enc[i + 1:i + code]
        if 0 in block:
            raise CobsError(f"0x00 inside the block at byte {i}")
        out += block
        zero = code < 0xFF
        i += code
    return bytes(out)
