"""cocotb fuzzer of the link's framer (:class:`ganpu.link.framer.Framer`) against
``Framer.model``: thousands of random frames over every field and fault a host line can
carry, every ``tx`` byte compared with the model's, and the memory read back at the end.

Frames (:func:`fuzz_items`): right WRITE / READ / PING requests at random and edge
addresses (every region, the GBUF's last words and past them, undefined CSRs and
region 3); headers with every field random (unknown commands, ``count`` 0, 1, the
largest burst and past it, 0xFFFF) under a right CRC, with payloads one word short,
one word long or an odd byte long; bodies shorter than a header; a flipped bit under
the CRC; COBS damage (a byte replaced, dropped or inserted, a frame cut short by a
delimiter, a code byte pointing past the frame's end); bursts of empty frames,
garbage and idle gaps beyond the link timeout. The bus is an emulated memory map
(``tb_link_traffic.MapModel``: GBUF words, the STATE CSR, the processor's refusals)
answering with random latency, two requests in flight; ``tx`` and ``req`` see random
back-pressure.

After the random frames the GBUF is read back through the link (READ frames over
every word), so a stray write anywhere shows in the answers; the emulated memory is
also compared word for word with the model's. Results (counts of frames by the
model's verdict, bytes, cycles) go to ``GANPU_FUZZ_RESULTS`` as JSON.

Environment: GANPU_SEED, GANPU_FRAMES (random frames), GANPU_TIMEOUT (the framer's
link timeout, as built), GANPU_FUZZ_RESULTS.
"""

import json
import os
import random
from collections import Counter

import cocotb

from ganpu.host.link import encode_request
from ganpu.host.processor_driver import address
from ganpu.link.cobs_decoder import CobsDecoder, Mark
from ganpu.link.framer import Framer
from ganpu.link.protocol import (Command, MAX_WORDS, REQUEST_BYTES, Status, cobs_encode, crc16,
                                 request_layout)
from ganpu.link.receiver import FrameReceiver
from ganpu.processor import config
from ganpu.processor.bus import csr_names
from ganpu.processor.program import Region, record_words, BUS_ADDR_BITS, REGION_SHIFT

from tb_link_traffic import MapModel, exchange

CFG = config("small")
SEED = int(os.environ.get("GANPU_SEED", "1"))
FRAMES = int(os.environ.get("GANPU_FRAMES", "200"))
TIMEOUT = int(os.environ.get("GANPU_TIMEOUT", "60"))
RESULTS = os.environ.get("GANPU_FUZZ_RESULTS")

__all__ = ["fuzz_items", "readback_items", "verdicts"]


def _frame(body):
    """``body`` with its CRC, COBS-encoded, between delimiters."""
    c = crc16(body)
    return bytes([0]) + cobs_encode(body + bytes([c >> 8, c & 0xFF])) + bytes([0])


def _header(cmd, seq, count, addr):
    return request_layout().const({"cmd": cmd, "seq": seq, "count": count, "addr": addr}) \
        .as_value().value.to_bytes(REQUEST_BYTES, "little")


def _words(rng, n):
    return b"".join(rng.choice([0, 0xFFFF, 0x8000, rng.randrange(1 << 16)]).to_bytes(2, "little")
                    for _ in range(n))


def _address(cfg, rng, count):
    """A bus address: mostly GBUF words (at 0, anywhere, at the last words that fit and
    across the end), else the program table, a CSR (defined or not) or region 3."""
    depth = cfg.gbuf_depth
    r = rng.random()
    if r < 0.7:
        base = rng.choice([0, rng.randrange(depth), max(0, depth - count), depth - count + 1,
                           depth - 1, depth, rng.randrange(1 << REGION_SHIFT)])
        return address(Region.GBUF, max(0, base) % (1 << REGION_SHIFT))
    if r < 0.8:
        top = cfg.program_depth * record_words(cfg)
        return address(Region.PROGRAM, rng.choice([0, top - 1, top, rng.randrange(top + 4)]))
    if r < 0.95:
        return address(Region.CSR, rng.choice(sorted(csr_names(cfg)) + [rng.randrange(256)]))
    return rng.randrange(1 << BUS_ADDR_BITS)


def _count(rng, max_words):
    return rng.choice([1, 1, 2, 3, rng.randrange(1, 9), max_words, 0, max_words + 1, 0xFFFF,
                       rng.randrange(1 << 16)])


def _request(cfg, rng, seq, max_words):
    """A request with a right CRC: mostly right, else any header and payload length."""
    r = rng.random()
    if r < 0.55:
        cmd = rng.choice([Command.WRITE, Command.WRITE, Command.READ, Command.PING])
        count = rng.choice([1, 1, 2, 3, rng.randrange(1, 9), rng.randrange(1, 40)])
        if rng.random() < 0.02:
            count = max_words
        if cmd == Command.PING:
            count = rng.choice([0, count])
        words = count if cmd == Command.WRITE else 0
        return _header(cmd.value, seq, count, _address(cfg, rng, count)) + _words(rng, words)
    cmd = rng.choice([c.value for c in Command] + [0, 4, 0x42, 0xFF, rng.randrange(256)])
    count = _count(rng, max_words)
    nwords = count if cmd == Command.WRITE.value and count <= 64 else rng.randrange(4)
    nwords = max(0, nwords + rng.choice([0, 0, -1, 1, 2]))
    body = _header(cmd, seq, count, _address(cfg, rng, min(count, 64))) + _words(rng, nwords)
    if rng.random() < 0.1:
        body += bytes([rng.randrange(256)])     # an odd byte
    return body


def _damage(rng, raw):
    """A frame's bytes (between delimiters) damaged on the line."""
    raw = bytearray(raw)
    inner = range(1, len(raw) - 1)              # keep the delimiters
    kind = rng.randrange(5)
    k = rng.choice(inner)
    if kind == 0:
        raw[k] = rng.randrange(1, 256)          # a byte replaced
    elif kind == 1:
        del raw[k]                              # a byte lost
    elif kind == 2:
        raw.insert(k, rng.randrange(1, 256))    # a byte added
    elif kind == 3:
        raw[k] = 0                              # cut short by a delimiter
    else:
        raw[1] = 0xFF                           # a code pointing past the frame
    return bytes(raw)


def fuzz_items(cfg, rng, frames, max_words=MAX_WORDS):
    """Line items (bytes, and ``None`` for an idle gap beyond the timeout) of ``frames``
    random frames with faults."""
    items = []
    for seq in range(frames):
        seq &= 0xFF
        r = rng.random()
        if r < 0.6:
            raw = _frame(_request(cfg, rng, seq, max_words))
        elif r < 0.7:                            # a bit flipped under the CRC
            body = bytearray(_request(cfg, rng, seq, max_words))
            c = crc16(body)
            body += bytes([c >> 8, c & 0xFF])
            body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
            raw = bytes([0]) + cobs_encode(bytes(body)) + bytes([0])
        elif r < 0.85:
            raw = _damage(rng, _frame(_request(cfg, rng, seq, max_words)))
        elif r < 0.92:                           # too short for a header and CRC
            n = rng.randrange(0, REQUEST_BYTES + 2)
            body = bytes(rng.randrange(256) for _ in range(n))
            raw = _frame(body[:-2]) if n >= 2 and rng.random() < 0.5 else \
                bytes([0]) + cobs_encode(body) + bytes([0])
        else:                                    # garbage, empty frames, silence
            raw = bytes(rng.choice([0, rng.randrange(1, 256)]) for _ in range(rng.randrange(1, 12)))
        items += list(raw)
        if rng.random() < 0.03:
            items += [rng.randrange(1, 256) for _ in range(rng.randrange(1, 6))] + [None]
    return items


def readback_items(cfg, seq=0):
    """READ frames over the whole GBUF."""
    items = []
    for i, base in enumerate(range(0, cfg.gbuf_depth, MAX_WORDS)):
        items += list(encode_request(Command.READ, seq + i, address(Region.GBUF, base),
                                     min(MAX_WORDS, cfg.gbuf_depth - base)))
    return items


def verdicts(items, max_words=MAX_WORDS):
    """``Counter`` of the model's verdicts (Status names, "DROPPED", "TIMEOUT") per frame."""
    out = Counter()
    body = bytearray()
    for mark, b in CobsDecoder.model(items):
        if mark == Mark.BYTE:
            body.append(b)
            continue
        if mark == Mark.TIMEOUT:
            out["TIMEOUT"] += 1
        else:
            v = FrameReceiver.model(bytes(body), max_words, broken=mark == Mark.BROKEN)
            out["DROPPED" if v is None else Status(v[0]).name] += 1
        body = bytearray()
    return out


@cocotb.test()
async def fuzz_frames(dut):
    rng = random.Random(SEED)
    items = fuzz_items(CFG, rng, FRAMES)
    count = verdicts(items)
    items += [0] + readback_items(CFG, FRAMES)
    ref = MapModel(CFG)
    expect = Framer.model(CFG, items, ref)
    dev = MapModel(CFG)
    limit = len(items) * 8 + len(expect) * 4 + 20 * TIMEOUT + 10000
    got, cycles = await exchange(dut, items, len(expect), dev, rng, limit, TIMEOUT,
                                 resp_p=0.9, tx_p=0.8)
    first = next((k for k, (a, b) in enumerate(zip(got, expect)) if a != b), min(len(got), len(expect)))
    result = {"frames": FRAMES, "items": len(items), "cycles": cycles, "tx_bytes": len(got),
              "expected_tx_bytes": len(expect), "hang": int(cycles >= limit),
              "tx_mismatch": int(bytes(got) != expect),
              "gbuf_mismatches": int((dev.gbuf != ref.gbuf).sum()),
              "gbuf_words_written": int((ref.gbuf != 0).sum()), "verdicts": dict(count)}
    if RESULTS:
        with open(RESULTS, "w") as f:
            json.dump(result, f)
    dut._log.info(json.dumps(result))
    assert bytes(got) == expect, (f"tx differs from the model: {len(got)} bytes, expected "
                                  f"{len(expect)}; first difference at {first}")
    assert (dev.gbuf == ref.gbuf).all(), "the memory differs from the model's"
