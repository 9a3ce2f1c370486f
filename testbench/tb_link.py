"""cocotb bench of :class:`ganpu.link.system.LinkedProcessor` (and of
:class:`ganpu.link.native_top.NativeTop`, the same framer and processor that
``ganpu sim`` builds, with GANPU_LINK_RATIO link clock cycles per core cycle): the real
:class:`~ganpu.host.processor_driver.ProcessorDriver` over
:class:`~ganpu.host.link.LinkBusTransport` over the in-process byte channel
(:mod:`ganpu.sim.cocotb_link`), against :func:`ganpu.processor.model.run_program`, and
every fault of ``docs/link.md`` with its documented answer, the link recovering, and
the whole GBUF compared with a shadow of what correct frames wrote.

Environment: GANPU_SEED, GANPU_TASKS (records of the program), GANPU_TIMEOUT (the
framer's link timeout in cycles, as built), GANPU_FAULT_ROUNDS (rounds of the fault
list), GANPU_GBUF_BITS, GANPU_LINK_RATIO (NativeTop's ratio; cycles are link cycles).
"""

import dataclasses
import os

import cocotb
import numpy as np

from ganpu.host.link import (encode_request, decode_answer, LinkTimeout, LinkBusTransport)
from ganpu.host.processor_driver import address
from ganpu.link.protocol import Command, Status, cobs_encode, cobs_decode, crc16, MAX_WORDS
from ganpu.link.executor import info
from ganpu.processor import config
from ganpu.processor.model import run_program
from ganpu.processor.program import Policy, ProgramError, Region, State
from ganpu.sim.cocotb_link import attach, CLOCK_NS

from tb_processor_programs import random_program

CFG = config("small")
if os.environ.get("GANPU_GBUF_BITS"):
    CFG = dataclasses.replace(CFG, gbuf_bits=int(os.environ["GANPU_GBUF_BITS"]))
SEED = int(os.environ.get("GANPU_SEED", "1"))
TASKS = int(os.environ.get("GANPU_TASKS", "3"))
TIMEOUT = int(os.environ.get("GANPU_TIMEOUT", "400"))
ROUNDS = int(os.environ.get("GANPU_FAULT_ROUNDS", "1"))
RATIO = int(os.environ.get("GANPU_LINK_RATIO", "1"))
HOST_TIMEOUT = 4000          # cycles the host waits for an answer
GBUF = Region.GBUF


def frame(body, lead=True):
    """The wire bytes of ``body`` (COBS and delimiters) as the codec frames it."""
    return (b"\x00" if lead else b"") + cobs_encode(body) + b"\x00"


def body_of(raw):
    """The body inside ``encode_request``'s bytes."""
    return cobs_decode(raw.strip(b"\x00"))


def with_crc(body):
    c = crc16(body)
    return body + bytes([c >> 8, c & 0xFF])


class Bench:
    def __init__(self, drv, t, ch, dut):
        self.drv, self.t, self.ch, self.dut = drv, t, ch, dut
        self.shadow = np.zeros(CFG.gbuf_depth, dtype=np.uint16)
        self.seq = 100

    async def raw(self, data, wait_cycles=HOST_TIMEOUT):
        """Send raw bytes; every answer frame that arrives within ``wait_cycles``."""
        await self.ch.write(data)
        await self.ch.drained()
        out = []
        while True:
            f = await self.t._next_frame(wait_cycles * CLOCK_NS * 1e-9)
            if f is None:
                return out
            out.append(decode_answer(f))
            wait_cycles = 600   # further answers follow closely

    def next_seq(self):
        self.seq = (self.seq + 1) & 0xFF
        return self.seq

    async def expect(self, data, status, seq, index=0, words=None, what=""):
        answers = await self.raw(data)
        assert len(answers) == 1, f"{what}: {len(answers)} answers: {answers}"
        a = answers[0]
        assert (a.status, a.seq, a.index) == (status, seq, index), f"{what}: {a}, expected {status.name} seq {seq} index {index}"
        if words is not None:
            assert a.words == list(words), f"{what}: words {a.words[:8]} expected {list(words)[:8]}"
        return a

    async def expect_silence(self, data, what):
        answers = await self.raw(data, wait_cycles=TIMEOUT + 1000)
        assert not answers, f"{what}: expected no answer, got {answers}"

    async def write_ok(self, rng, what):
        """A correct frame after a fault: the link recovered."""
        base = int(rng.integers(0, CFG.gbuf_depth - 40))
        words = rng.integers(0, 1 << 16, int(rng.integers(1, 40))).astype(np.uint16)
        await self.drv.write_gbuf(base, words)
        self.shadow[base:base + words.size] = words
        got = await self.drv.read_gbuf(base, words.size)
        assert (got == self.shadow[base:base + words.size]).all(), f"after {what}: read back differs"

    async def check_gbuf(self, what):
        got = await self.drv.read_gbuf(0, CFG.gbuf_depth)
        bad = np.flatnonzero(got != self.shadow)
        assert bad.size == 0, (f"{what}: {bad.size} GBUF words differ, first at {bad[:8].tolist()}: "
                               f"got {got[bad[:8]].tolist()} expected {self.shadow[bad[:8]].tolist()}")


async def start(dut, interval=1):
    drv, t, ch = await attach(dut, CFG, interval=interval, timeout_cycles=HOST_TIMEOUT,
                              ratio=RATIO)
    return Bench(drv, t, ch, dut)


@cocotb.test()
async def driver_and_program(dut):
    """PING, GBUF writes and reads, a tiny program run against the processor's model."""
    b = await start(dut)
    got = await b.t.ping()
    assert got == info(CFG, MAX_WORDS), got
    rng = np.random.default_rng(SEED)
    image, recs, _ = random_program(CFG, rng, TASKS, pause=False)
    err, _, _, expect = run_program(CFG, image, recs)
    assert err == ProgramError.OK
    await b.drv.write_gbuf(0, image)
    assert (await b.drv.read_gbuf(0, CFG.gbuf_depth) == image).all(), "GBUF image read back differs"
    await b.drv.run(recs, Policy.ADAPTIVE)
    assert await b.drv.state() == State.DONE
    b.shadow[:] = expect
    await b.check_gbuf(f"program of {len(recs)} records")
    c = await b.drv.counters()
    assert c["done_tasks"] == len(recs), c
    dut._log.info(f"program of {len(recs)} records over the link: {c}; link {b.t.stats}")


@cocotb.test()
async def faults(dut):
    """Each fault of docs/link.md: its answer (or silence), recovery, no stray write."""
    b = await start(dut)
    rng = np.random.default_rng(SEED + 1)
    b.shadow[:] = rng.integers(0, 1 << 16, CFG.gbuf_depth)
    await b.drv.write_gbuf(0, b.shadow)
    await b.check_gbuf("initial image")
    depth = CFG.gbuf_depth

    def write_frame(base, n, seq):
        words = rng.integers(0, 1 << 16, n).astype(np.uint16)
        return encode_request(Command.WRITE, seq, address(GBUF, base), n, words), words

    for r in range(ROUNDS):
        # garbage between frames: silence or a CRC_ERROR answer, never a write
        garbage = bytes(rng.integers(1, 256, int(rng.integers(1, 30))).tolist())
        answers = await b.raw(garbage + b"\x00")
        assert all(a.status == Status.CRC_ERROR for a in answers), answers
        assert len(answers) == (len(cobs_decode_loose(garbage)) >= 9), (garbage.hex(), answers)
        await b.write_ok(rng, "garbage")
        # garbage right before a frame: the frame's leading 0x00 ends it
        raw, words = write_frame(5, 3, b.next_seq())
        answers = await b.raw(bytes(rng.integers(1, 256, 12).tolist()) + raw)
        assert [a.status for a in answers][-1] == Status.OK and answers[-1].seq == b.seq, answers
        b.shadow[5:8] = words
        # truncated frame (then a delimiter): CRC_ERROR, nothing written
        raw, _ = write_frame(10, 20, b.next_seq())
        await b.expect(raw[:30] + b"\x00", Status.CRC_ERROR, b.seq, what="truncated frame")
        await b.expect_silence(raw[:6] + b"\x00", "truncated to a runt")
        await b.write_ok(rng, "truncated frame")
        # corrupted CRC and a corrupted data byte
        raw, _ = write_frame(20, 8, b.next_seq())
        body = bytearray(body_of(raw))
        body[-1] ^= 0x40
        await b.expect(frame(body), Status.CRC_ERROR, b.seq, what="corrupted CRC")
        body[-1] ^= 0x40
        body[9] ^= 0x01
        await b.expect(frame(body), Status.CRC_ERROR, b.seq, what="corrupted data")
        # a dropped byte
        raw, _ = write_frame(30, 16, b.next_seq())
        k = int(rng.integers(3, len(raw) - 3))
        answers = await b.raw(raw[:k] + raw[k + 1:])
        assert len(answers) <= 1 and all(a.status == Status.CRC_ERROR for a in answers), answers
        await b.write_ok(rng, "dropped byte")
        # wrong lengths (right CRC): BAD_LENGTH
        seq = b.next_seq()
        hdr = body_of(encode_request(Command.WRITE, seq, address(GBUF, 40), 4, [1, 2, 3, 4]))
        await b.expect(frame(with_crc(hdr[:-4])), Status.BAD_LENGTH, seq, what="WRITE one word short")
        await b.expect(frame(with_crc(hdr[:-2] + b"\x01\x02")), Status.BAD_LENGTH, seq, what="WRITE one word long")
        seq = b.next_seq()
        await b.expect(encode_request(Command.WRITE, seq, address(GBUF, 40), 0, []), Status.BAD_LENGTH, seq,
                       what="WRITE of 0 words")
        seq = b.next_seq()
        await b.expect(encode_request(Command.READ, seq, address(GBUF, 40), MAX_WORDS + 1), Status.BAD_LENGTH,
                       seq, what="READ beyond the largest burst")
        seq = b.next_seq()
        await b.expect(encode_request(Command.READ, seq, address(GBUF, 40), 2, [9]), Status.BAD_LENGTH, seq,
                       what="READ with data")
        # unknown command
        seq = b.next_seq()
        await b.expect(encode_request(0x55, seq, address(GBUF, 40), 2, [9, 9]), Status.BAD_COMMAND, seq,
                       what="unknown command")
        await b.write_ok(rng, "bad frames")
        # beyond the memory map: BUS_ERROR at the first refused word; the words in the
        # map were done (the frame asked for them)
        seq = b.next_seq()
        raw, words = write_frame(depth - 3, 5, seq)
        await b.expect(raw, Status.BUS_ERROR, seq, index=3, what="WRITE across the GBUF's end")
        b.shadow[depth - 3:] = words[:3]
        seq = b.next_seq()
        await b.expect(encode_request(Command.READ, seq, address(GBUF, depth - 2), 4), Status.BUS_ERROR, seq,
                       index=2, words=list(b.shadow[depth - 2:]) + [0, 0], what="READ across the GBUF's end")
        seq = b.next_seq()
        await b.expect(encode_request(Command.READ, seq, 3 << 22, 1), Status.BUS_ERROR, seq, index=0,
                       words=[0], what="READ of an unmapped region")
        # a link timeout inside a frame: the partial frame is dropped without an answer,
        # the rest arrives as a frame of its own (too short, or its CRC is wrong)
        raw, _ = write_frame(50, 6, b.next_seq())
        await b.expect_silence(raw[:12], "first half before the timeout")
        await b.ch.idle(TIMEOUT + 10)
        answers = await b.raw(raw[12:])
        assert all(a.status == Status.CRC_ERROR for a in answers), answers
        await b.write_ok(rng, "link timeout")
        # the host's own timeout: a frame cut short on the line gets no answer, a
        # LinkTimeout; the device drops the partial frame after its link timeout
        t1 = LinkBusTransport(b.ch, timeout=300 * CLOCK_NS * 1e-9, retries=0, window=1)
        b.ch.faults.append(lambda d: d[:len(d) // 2])
        try:
            await t1.transact([(Command.READ, address(GBUF, 0), 1, [])])
            raise AssertionError("a frame cut short did not time out")
        except LinkTimeout:
            pass
        await b.ch.idle(TIMEOUT + 10)
        # the driver's transport retries such a frame and recovers
        retries = b.t.stats["retries"]
        b.ch.faults.append(lambda d: d[:len(d) // 2])
        await b.write_ok(rng, "a frame cut short (retried)")
        assert b.t.stats["retries"] == retries + 1, b.t.stats
        await b.check_gbuf(f"faults round {r}")

    # a host write to memory a running program uses: refused (BUS_ERROR at word 0),
    # and the program's result is exactly the model's
    image, recs, _ = random_program(CFG, rng, 4, pause=False)
    _, _, _, expect = run_program(CFG, image, recs)
    await b.drv.write_gbuf(0, image)
    await b.drv.load_program(recs)
    await b.drv.set_policy(Policy.SPATIAL)
    await b.drv.start()
    target = recs[0]["out"]["base"]
    seq = b.next_seq()
    raw = encode_request(Command.WRITE, seq, address(GBUF, target), 4, [0x1234] * 4)
    a = await b.expect(raw, Status.BUS_ERROR, seq, index=0, what="WRITE while a program runs")
    assert await b.drv.wait() == State.DONE
    b.shadow[:] = expect
    await b.check_gbuf("program beside a refused WRITE")
    dut._log.info(f"faults: link {b.t.stats}")


def cobs_decode_loose(garbage):
    """What the decoder makes of ``garbage`` as one frame (its body, damaged or not)."""
    out, remaining, zero = bytearray(), 0, False
    for x in garbage:
        if remaining == 0:
            if zero:
                out.append(0)
            remaining, zero = x - 1, x != 0xFF
        else:
            out.append(x)
            remaining -= 1
    return bytes(out)


@cocotb.test()
async def throughput(dut):
    """Payload bytes per raw byte time in bulk writes and reads (``docs/link.md``)."""
    words = int(os.environ.get("GANPU_BULK_WORDS", str(CFG.gbuf_depth)))
    interval = int(os.environ.get("GANPU_BYTE_INTERVAL", "1"))
    b = await start(dut, interval)
    rng = np.random.default_rng(SEED + 2)
    data = rng.integers(0, 1 << 16, words).astype(np.uint16)
    c0 = b.ch.cycle
    await b.drv.write_gbuf(0, data)
    cw = b.ch.cycle - c0
    c0 = b.ch.cycle
    got = await b.drv.read_gbuf(0, words)
    cr = b.ch.cycle - c0
    tc = np.array(b.ch.tx_cycles)
    tc = tc[tc >= c0]
    gaps = np.diff(tc)
    big = np.argsort(gaps)[-12:]
    dut._log.info(f"read: tx gaps > 1: {int((gaps > 1).sum())} totalling {int((gaps - 1).sum())} cycles; "
                  f"largest at {sorted((int(tc[i] - c0), int(gaps[i])) for i in big)}")
    assert (got == data).all()
    ew, er = 2 * words * interval / cw, 2 * words * interval / cr
    dut._log.info(f"link throughput at {interval} cycles/byte: write {ew:.3f}, read {er:.3f} "
                  f"of the raw byte rate ({words} words, {cw} and {cr} cycles)")
    with open(os.environ.get("GANPU_THROUGHPUT_FILE", "link_throughput.txt"), "w") as f:
        f.write(f"{interval} {words} {cw} {cr} {ew:.4f} {er:.4f}\n")
    assert ew >= 0.85 and er >= 0.85, (ew, er)
