"""The link's small blocks in the Amaranth simulator against their models (fast, no
Verilog build): CRC-16, COBS decoder (with idle gaps and random stalls), COBS encoder
(with random back-pressure), and each constructor's parameter messages."""

import random

import pytest
from amaranth.sim import Simulator

from ganpu.link.cobs_decoder import CobsDecoder, Mark
from ganpu.link.cobs_encoder import CobsEncoder
from ganpu.link.crc import Crc16
from ganpu.link.protocol import crc16, cobs_encode, cobs_decode, CobsError


def _sim(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()


def _bodies(rng, n):
    """Random bodies with runs of zeros and of non-zero bytes (blocks of every length,
    0xFF blocks exactly at the end, bodies ending in 0x00)."""
    out = [b"\x00", b"\x01", bytes([1] * 254), bytes([2] * 254) + b"\x00", bytes([3] * 508),
           bytes([4] * 255), b"\x00\x00\x00"]
    for _ in range(n):
        kind = rng.randrange(3)
        if kind == 0:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))))
        elif kind == 1:
            out.append(bytes(rng.choice([0, rng.randrange(1, 256)]) for _ in range(rng.randrange(1, 30))))
        else:
            out.append(bytes(rng.randrange(1, 256) for _ in range(rng.randrange(250, 600))))
    return out


def test_crc16_model():
    assert crc16(b"123456789") == 0x29B1
    msg = b"ganpu link"
    c = crc16(msg)
    assert crc16(msg + bytes([c >> 8, c & 0xFF])) == 0


def test_cobs_model_round_trip():
    rng = random.Random(1)
    for body in _bodies(rng, 200):
        enc = cobs_encode(body)
        assert 0 not in enc
        assert len(enc) <= len(body) + 1 + len(body) // 254
        assert cobs_decode(enc) == body
    # a decoder accepts the final code 0x01 some encoders add after a 0xFF block
    assert cobs_decode(b"\xff" + bytes([7] * 254) + b"\x01") == bytes([7] * 254)
    with pytest.raises(CobsError, match="runs past"):
        cobs_decode(b"\x05\x01")


def test_crc16_gateware():
    rng = random.Random(2)
    msgs = [b"123456789"] + [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 30)))
                             for _ in range(20)]
    dut = Crc16()

    async def bench(ctx):
        for msg in msgs:
            ctx.set(dut.clear, 1)
            for b in msg:
                ctx.set(dut.en, 1)
                ctx.set(dut.data, b)
                if rng.random() < 0.3:      # a cycle without a byte keeps the CRC
                    ctx.set(dut.en, 0)
                    await ctx.tick()
                    ctx.set(dut.clear, 0)
                    ctx.set(dut.en, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
            ctx.set(dut.en, 0)
            assert ctx.get(dut.crc) == Crc16.model(msg), msg
    _sim(dut, bench)


def test_cobs_decoder():
    rng = random.Random(3)
    timeout = 20
    items = []
    for body in _bodies(rng, 8):
        r = rng.random()
        enc = list(cobs_encode(body))
        if r < 0.1:
            enc = enc[:rng.randrange(1, len(enc) + 1)]          # truncated
        elif r < 0.2:
            del enc[rng.randrange(len(enc))]                    # a dropped byte
        elif r < 0.3:
            items += [rng.randrange(256) for _ in range(rng.randrange(1, 8))]  # garbage
        items += enc
        if rng.random() < 0.15:
            items.append(None)                                  # idle gap: timeout
        items.append(0)
        if rng.random() < 0.2:
            items.append(0)
    expect = CobsDecoder.model(items)
    dut = CobsDecoder(timeout)
    got = []

    async def feed(ctx):
        for it in items:
            if it is None:
                ctx.set(dut.i.valid, 0)
                await ctx.tick().repeat(timeout + 3)
                continue
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, it)
            await ctx.tick().until(dut.i.ready)
            ctx.set(dut.i.valid, 0)
            if rng.random() < 0.2:
                await ctx.tick().repeat(rng.randrange(1, 4))
        ctx.set(dut.i.valid, 0)

    async def drain(ctx):
        for _ in range(len(items) * 12 + 10000):
            if len(got) >= len(expect):
                break
            ready = rng.random() < 0.7
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append((Mark(payload.mark), payload.data if payload.mark == Mark.BYTE else 0))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.run()
    assert got == expect


def test_cobs_encoder():
    rng = random.Random(4)
    bodies = _bodies(rng, 5)
    expect = CobsEncoder.model(bodies)
    dut = CobsEncoder()
    got = bytearray()

    async def feed(ctx):
        for body in bodies:
            for i, b in enumerate(body):
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, {"data": b, "last": i == len(body) - 1})
                await ctx.tick().until(dut.i.ready)
                if rng.random() < 0.1:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
        ctx.set(dut.i.valid, 0)

    async def drain(ctx):
        for _ in range(len(expect) * 3 + 2000):
            if len(got) >= len(expect):
                break
            ready = rng.random() < 0.8
            ctx.set(dut.o.ready, ready)
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if valid and ready:
                got.append(payload)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(drain)
    sim.run()
    assert bytes(got) == expect


def test_decoder_parameters():
    with pytest.raises(TypeError, match=r"timeout must be an int, not 'x'"):
        CobsDecoder("x")
    with pytest.raises(ValueError, match=r"timeout must be in 2\.\.4294967296, not 1"):
        CobsDecoder(1)
