"""The link's host side in pure Python (codec, bursts, the transport's windows, retries
and errors over a model device), the framer in the Amaranth simulator against
``Framer.model`` (random traffic with faults, bus and tx back-pressure), and the
constructors' parameter messages."""

import asyncio
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from ganpu.host.link import (encode_request, decode_answer, bursts, LinkBusTransport, ByteChannel,
                             LinkTimeout, LinkCrcError)
from ganpu.host.processor_driver import ProcessorDriver, BusError, address
from ganpu.link.executor import BusExecutor, info
from ganpu.link.framer import Framer
from ganpu.link.protocol import Command, Status, MAX_WORDS, cobs_decode, cobs_encode
from ganpu.link.receiver import FrameReceiver
from ganpu.link.system import LinkedProcessor
from ganpu.processor import config
from ganpu.processor.program import Region, State

from tb_link_traffic import MapModel, traffic

CFG = config("small")


class ModelChannel(ByteChannel):
    """A device made of ``Framer.model``; ``faults`` decides per frame what goes wrong:
    "drop" (the request is lost), "corrupt" (a request byte flipped), "mute" (the
    answer is lost), "garble" (an answer byte flipped)."""

    def __init__(self, faults=None):
        self.bus = MapModel(CFG)
        self.pending = bytearray()
        self.out = bytearray()
        self.faults = faults or (lambda n: None)
        self.n = 0
        self.t = 0.0

    async def write(self, data):
        self.pending += data
        while b"\x00" in self.pending[1:]:
            i = self.pending.index(b"\x00", 1)
            raw, self.pending = bytes(self.pending[:i + 1]), self.pending[i + 1:]
            if raw.strip(b"\x00") == b"":
                continue
            fault = self.faults(self.n)
            self.n += 1
            if fault == "drop":
                continue
            if fault == "corrupt":
                raw = raw[:3] + bytes([raw[3] ^ 0x10 or 1]) + raw[4:]
            ans = Framer.model(CFG, raw, self.bus)
            if fault == "mute":
                continue
            if fault == "garble" and ans:
                ans = bytes([ans[0] ^ 0x02 or 1]) + ans[1:]
            self.out += ans

    async def read(self, n, timeout):
        if not self.out:
            self.t += timeout
            return b""
        data, self.out = bytes(self.out[:n]), self.out[n:]
        return data

    def now(self):
        return self.t


def _run(coro):
    return asyncio.run(coro)


def test_codec_round_trip():
    raw = encode_request(Command.WRITE, 7, 0x123456, 3, [1, 0, 0xFFFF])
    assert raw[0] == 0 and raw[-1] == 0 and 0 not in raw[1:-1]
    verdict = FrameReceiver.model(cobs_decode(raw[1:-1]))
    status, hdr, words = verdict
    assert (status, hdr.cmd, hdr.seq, hdr.count, hdr.addr, words) == \
        (Status.OK, Command.WRITE.value, 7, 3, 0x123456, [1, 0, 0xFFFF])
    body = BusExecutor.model(CFG, status, hdr, words, MapModel(CFG))
    a = decode_answer(cobs_encode(body))
    # 0x123456 lies in no region: the first word is refused
    assert (a.cmd, a.seq, a.status, a.index) == (Command.WRITE.value, 7, Status.BUS_ERROR, 0)
    bad = bytearray(body)
    bad[0] ^= 1
    with pytest.raises(LinkCrcError, match="CRC"):
        decode_answer(cobs_encode(bytes(bad)))
    with pytest.raises(LinkCrcError, match="runs past"):
        decode_answer(cobs_encode(body)[:-1])


def test_fast_codec_equals_reference():
    """The host's C-speed CRC and COBS give the protocol's reference results: bodies
    around the 254-byte block boundary, with no, few and many zeros; damaged
    encodings raise the same CobsError."""
    from ganpu.host.link import fast_crc16, fast_cobs_encode, fast_cobs_decode
    from ganpu.link.protocol import crc16, CobsError
    rng = random.Random(3)
    assert fast_crc16(b"123456789") == crc16(b"123456789") == 0x29B1
    for _ in range(500):
        n = rng.choice([0, 1, 253, 254, 255, 508, 509, rng.randrange(600)])
        p0 = rng.choice([0.0, 0.01, 0.3, 1.0])
        body = bytes(0 if rng.random() < p0 else rng.randrange(1, 256) for _ in range(n))
        assert fast_crc16(body) == crc16(body)
        enc = cobs_encode(body)
        assert fast_cobs_encode(body) == enc
        assert fast_cobs_decode(enc) == body
        bad = bytearray(enc)
        for _ in range(rng.randrange(1, 3)):
            if bad:
                bad[rng.randrange(len(bad))] = rng.randrange(256)
        if bad and rng.random() < 0.3:
            del bad[rng.randrange(len(bad)):]
        outcomes = []
        for decode in (cobs_decode, fast_cobs_decode):
            try:
                outcomes.append(decode(bytes(bad)))
            except CobsError as e:
                outcomes.append(str(e))
        assert outcomes[0] == outcomes[1]


def test_socket_channel_errors():
    """SocketChannel (``socket://``): a refused connection, a bad URL and a closed
    connection are LinkError/ValueError with a message, never a hang; channel() picks
    SerialChannel for other pyserial URLs."""
    import socket
    from ganpu.host.link import SocketChannel, SerialChannel, LinkError, channel
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()   # nobody listens there now
    with pytest.raises(LinkError, match=rf"cannot connect to socket://127.0.0.1:{port}: "):
        SocketChannel(f"socket://127.0.0.1:{port}", timeout=2.0)
    with pytest.raises(ValueError, match=r"expected socket://HOST:PORT, not 'socket://nohost'"):
        SocketChannel("socket://nohost")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    ch = channel(f"socket://127.0.0.1:{srv.getsockname()[1]}", timeout=2.0)
    assert isinstance(ch, SocketChannel)
    conn, _ = srv.accept()
    _run(ch.write(b"\x00abc"))
    assert conn.recv(16) == b"\x00abc"
    assert _run(ch.read(10, 0.05)) == b""
    conn.sendall(b"xy")
    assert _run(ch.read(10, 2.0)) == b"xy"
    conn.close()
    with pytest.raises(LinkError, match=r"the device closed the connection"):
        _run(ch.read(10, 2.0))
    ch.close()
    srv.close()
    loop = channel("loop://")
    assert isinstance(loop, SerialChannel)
    loop.close()


def test_bursts():
    reqs = [(a, 1, a) for a in range(10, 10 + 300)] + [(5, 1, 0), (6, 0, 0), (7, 0, 0), (9, 0, 0)]
    got = bursts(reqs)
    assert [(s, w, n) for s, w, n, _ in got] == [(10, 1, 256), (266, 1, 44), (5, 1, 1), (6, 0, 2), (9, 0, 1)]
    assert got[1][3] == list(range(266, 310))


def test_transport_over_model():
    ch = ModelChannel()
    t = LinkBusTransport(ch, timeout=0.1)
    drv = ProcessorDriver(t, CFG)
    rng = np.random.default_rng(1)
    data = rng.integers(0, 1 << 16, 700).astype(np.uint16)

    async def go():
        assert await t.ping() == info(CFG, MAX_WORDS)
        await drv.write_gbuf(100, data)
        got = await drv.read_gbuf(100, 700)
        assert (got == data).all()
        assert (ch.bus.gbuf[100:800] == data).all()
        with pytest.raises(BusError, match="refused"):
            await drv._burst([(address(Region.GBUF, CFG.gbuf_depth - 1 + i), 0, 0) for i in range(3)])
        out = await t.requests([(address(Region.GBUF, CFG.gbuf_depth - 2 + i), 0, 0) for i in range(4)])
        assert [e for _, e in out] == [0, 0, 1, 1]
        assert [v for v, _ in out[:2]] == ch.bus.gbuf[-2:].tolist()
    _run(go())
    assert t.stats["frames"] == 1 + 3 + 3 + 2, t.stats


@pytest.mark.parametrize("fault", ["drop", "corrupt", "mute", "garble"])
def test_transport_retries(fault):
    hit = {3, 4, 9}
    ch = ModelChannel(lambda n: fault if n in hit else None)
    t = LinkBusTransport(ch, timeout=0.1, retries=2)
    drv = ProcessorDriver(t, CFG)
    rng = np.random.default_rng(2)
    data = rng.integers(0, 1 << 16, 2000).astype(np.uint16)

    async def go():
        await drv.write_gbuf(0, data)
        assert (await drv.read_gbuf(0, 2000) == data).all()
    _run(go())
    assert (ch.bus.gbuf[:2000] == data).all()
    assert t.stats["retries"] >= 2, t.stats


def test_transport_errors():
    ch = ModelChannel(lambda n: "drop")
    t = LinkBusTransport(ch, timeout=0.1, retries=1)
    with pytest.raises(LinkTimeout, match="no answer to READ seq 1"):
        _run(t.transact([(Command.READ, 0, 1, [])]))
    # a CTRL write is never retried
    ch = ModelChannel(lambda n: "mute" if n == 0 else None)
    t = LinkBusTransport(ch, timeout=0.1, retries=3)
    with pytest.raises(LinkTimeout):
        _run(ProcessorDriver(t, CFG).start())
    assert t.stats["retries"] == 0
    ch = ModelChannel()
    t = LinkBusTransport(ch, timeout=0.1)
    (a,) = _run(t.transact([(Command.READ, 0, 0, [])]))
    assert a.status == Status.BAD_LENGTH, a
    (a,) = _run(t.transact([(0x42, 0, 1, [])]))
    assert a.status == Status.BAD_COMMAND, a
    with pytest.raises(ValueError, match="window must be 1 or 2, not 3"):
        LinkBusTransport(ch, window=3)


def test_framer_against_model():
    rng = random.Random(7)
    items = traffic(CFG, rng, 14)
    timeout = 60
    ref = MapModel(CFG)
    expect = Framer.model(CFG, items, ref)
    dev = MapModel(CFG)
    dut = Framer(CFG, timeout=timeout)
    got = bytearray()

    async def feed(ctx):
        for b in items:
            if b is None:
                ctx.set(dut.rx.valid, 0)
                await ctx.tick().repeat(timeout + 4)
                continue
            ctx.set(dut.rx.valid, 1)
            ctx.set(dut.rx.payload, b)
            await ctx.tick().until(dut.rx.ready)
        ctx.set(dut.rx.valid, 0)

    async def bus(ctx):
        pend = []
        for _ in range(len(items) * 4 + 5000):
            if len(got) >= len(expect):
                break
            ctx.set(dut.req.ready, int(len(pend) < 2 and rng.random() < 0.8))
            ctx.set(dut.resp.valid, int(bool(pend)))
            if pend:
                ctx.set(dut.resp.payload, {"data": pend[0][0], "error": pend[0][1]})
            ctx.set(dut.tx.ready, int(rng.random() < 0.7))
            _, _, rv, rr, rp, sv, sr, tv, tr, tp = await ctx.tick().sample(
                dut.req.valid, dut.req.ready, dut.req.payload, dut.resp.valid, dut.resp.ready,
                dut.tx.valid, dut.tx.ready, dut.tx.payload)
            if sv and sr:
                pend.pop(0)
            if rv and rr:
                pend.append(dev(rp.addr, rp.write, rp.data))
            if tv and tr:
                got.append(tp)

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(feed)
    sim.add_testbench(bus)
    sim.run()
    assert bytes(got) == expect
    assert (dev.gbuf == ref.gbuf).all()


def test_parameters():
    with pytest.raises(ValueError, match=r"timeout must be in 2\.\.4294967296, not 0"):
        Framer(CFG, timeout=0)
    with pytest.raises(ValueError, match=r"max_words must be a power of two, not 100"):
        Framer(CFG, max_words=100)
    with pytest.raises(ValueError, match=r"max_words must be in 1\.\.256, not 512"):
        FrameReceiver(512)
    with pytest.raises(TypeError, match=r"cfg must be a ProcessorConfig, not 3"):
        BusExecutor(3)
    with pytest.raises(KeyError, match=r"Unknown processor config 'nope'"):
        LinkedProcessor("nope")
    with pytest.raises(ValueError, match=r"timeout must be in 2\.\.4294967296, not 1"):
        LinkedProcessor("small", timeout=1)


def test_connect_over_socket():
    """``connect`` (SocketChannel on a ``socket://`` URL, SyncDriver) against a TCP
    server that answers with ``Framer.model``."""
    import socket
    import threading
    from ganpu.host.link import connect

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    bus = MapModel(CFG)

    def serve():
        conn, _ = srv.accept()
        pending = bytearray()
        with conn:
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                pending += chunk
                while b"\x00" in pending[1:]:
                    i = pending.index(b"\x00", 1)
                    raw, pending[:] = bytes(pending[:i + 1]), pending[i + 1:]
                    conn.sendall(Framer.model(CFG, raw, bus))

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    data = np.arange(600, dtype=np.uint16) * 97
    with connect(f"socket://127.0.0.1:{port}", "small", timeout=2.0) as npu:
        assert npu.ping() == info(CFG, MAX_WORDS)
        npu.write_gbuf(10, data)
        assert (npu.read_gbuf(10, 600) == data).all()
        assert npu.state() == State.IDLE
    th.join(5)
    srv.close()
    assert (bus.gbuf[10:610] == data).all()
    with pytest.raises(TypeError, match=r"cfg must be a ProcessorConfig or a config name, not 3"):
        connect("loop://", 3)


def test_program_load_bursts_and_cache():
    """``load_program`` sends every record, POLICY and NTASKS as one burst of requests
    (a few long frames, not a round trip per record); with ``cache_program`` a record
    the driver wrote before is not sent again, a changed one is, and ``forget_program``
    sends them all. The device's table equals the records' words after each load."""
    from ganpu.processor.model import record_bus_words
    from ganpu.processor.program import Csr, Policy, record_words
    from ganpu.sim.bench_sim import synthetic_program

    _, records = synthetic_program(CFG)
    W = record_words(CFG)
    writes = {}
    ch = ModelChannel()
    model = ch.bus

    def bus(addr, write, value):
        if write:
            writes[addr] = value
        return model(addr, write, value)
    ch.bus = bus
    t = LinkBusTransport(ch, timeout=0.1)
    drv = ProcessorDriver(t, CFG, cache_program=True)

    def table():
        return [[writes.get(address(Region.PROGRAM, i * W + j)) for j in range(W)]
                for i in range(len(records))]

    def load(recs, policy=None):
        f0 = t.stats["frames"]
        _run(drv.load_program(recs, policy))
        assert table()[:len(recs)] == [list(record_bus_words(CFG, r)) for r in recs]
        assert writes[address(Region.CSR, Csr.NTASKS.value)] == len(recs)
        return t.stats["frames"] - f0

    words = len(records) * W
    assert load(records, Policy.SPATIAL) == -(-words // MAX_WORDS) + 1
    assert writes[address(Region.CSR, Csr.POLICY.value)] == Policy.SPATIAL.value
    assert load(records) == 1                        # NTASKS only: the table is as written
    changed = [dict(r) for r in records]
    changed[5]["m"] = records[5]["m"] // 2
    assert load(changed) == 2                        # record 5's words, NTASKS
    drv.forget_program()
    assert load(changed) == -(-words // MAX_WORDS) + 1
    # without the cache every load sends every record, as one burst
    plain = ProcessorDriver(t, CFG)
    f0 = t.stats["frames"]
    _run(plain.load_program(records))
    _run(plain.load_program(records))
    assert t.stats["frames"] - f0 == 2 * (-(-words // MAX_WORDS) + 1)
    with pytest.raises(TypeError, match=r"cache_program must be a bool, not 1"):
        ProcessorDriver(t, CFG, cache_program=1)
