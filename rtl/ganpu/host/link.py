"""The host side of the link: the frame codec, byte channels and a
:class:`~ganpu.host.processor_driver.BusTransport` over them (``docs/link.md``).

Frame headers and trailers are packed with the field offsets and widths of
:mod:`ganpu.link.protocol`'s layouts, read once (``layout.const`` per frame cost about
0.3 ms of host CPU, a second per training step of polls); the CRC and COBS of a frame
are computed here by C-speed equivalents of the protocol's reference functions
(``binascii.crc_hqx``, ``bytes.split``/slicing: a host moves hundreds of thousands of
words per training step), tested equal to them.
Channels: :class:`SerialChannel` (any pyserial URL: ``/dev/ttyUSB0`` for a board),
:class:`SocketChannel` (``socket://host:port`` for ``ganpu sim``: a plain TCP socket,
without pyserial's per-read cost); :func:`channel` picks one for a URL.
``ganpu.sim.cocotb_link`` has the in-process one for cocotb benches. This module never
imports cocotb.
"""

import binascii
import select
import socket
import time
from abc import ABC, abstractmethod

import numpy as np
from amaranth.lib import data

from ..link.protocol import (Command, Status, request_layout, answer_layout, info_layout,
                             MAX_WORDS, DELIMITER, REQUEST_BYTES, ANSWER_BYTES, crc16,
                             cobs_encode, cobs_decode, CobsError)
from ..processor.program import Region, Csr, REGION_SHIFT
from .processor_driver import BusTransport

# a write that covers CTRL starts or resumes a program: it must not be sent twice
_CTRL_ADDRESS = (Region.CSR.value << REGION_SHIFT) | Csr.CTRL.value

__all__ = ["LinkError", "LinkTimeout", "LinkCrcError", "DeviceError", "Answer",
           "encode_request", "decode_answer", "fast_crc16", "fast_cobs_encode",
           "fast_cobs_decode", "ByteChannel", "SerialChannel", "SocketChannel", "channel",
           "LinkBusTransport", "bursts", "SyncDriver", "connect"]


def fast_crc16(data_bytes, crc=0xFFFF):
    """:func:`ganpu.link.protocol.crc16` (CRC-16/CCITT-FALSE) in C: ``crc_hqx`` is the
    same polynomial, unreflected, from the given initial value."""
    return binascii.crc_hqx(bytes(data_bytes), crc)


def fast_cobs_encode(body):
    """:func:`ganpu.link.protocol.cobs_encode`, a slice per block instead of a step per
    byte (same bytes, including no final code after a closing 254-byte block)."""
    out = bytearray()
    segs = bytes(body).split(b"\x00")
    for k, seg in enumerate(segs):
        i, n = 0, len(seg)
        while n - i >= 254:
            out += b"\xff"
            out += seg[i:i + 254]
            i += 254
        if k == len(segs) - 1 and n and i == n:
            break   # the body ends with a full block: no final code
        out.append(n - i + 1)
        out += seg[i:]
    return bytes(out)


def fast_cobs_decode(enc):
    """:func:`ganpu.link.protocol.cobs_decode` (same result, same :class:`CobsError`
    messages), a slice per block."""
    enc = bytes(enc)
    if 0 in enc:
        return cobs_decode(enc)   # the reference finds and names the bad byte
    out = bytearray()
    i, zero, n = 0, False, len(enc)
    while i < n:
        code = enc[i]
        if zero:
            out.append(0)
        if i + code > n:
            raise CobsError(f"code {code} at byte {i} runs past the frame's {n} bytes")
        out += enc[i + 1:i + code]
        zero = code < 0xFF
        i += code
    return bytes(out)


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


def _fields(layout):
    """``{name: (offset, mask)}`` of a struct layout's fields."""
    return {name: (f.offset, (1 << f.width) - 1) for name, f in layout}


_REQUEST = _fields(request_layout())
_ANSWER = _fields(answer_layout())


def _pack(fields, **values):
    """The integer of a struct layout with ``values`` (each masked to its field)."""
    v = 0
    for name, x in values.items():
        offset, mask = fields[name]
        v |= (int(x) & mask) << offset
    return v


def _unpack(fields, v, name):
    offset, mask = fields[name]
    return (v >> offset) & mask


def encode_request(cmd, seq, addr=0, count=0, words=(), lead=True):
    """The bytes of one request frame (``lead``: a 0x00 first, which flushes whatever
    partial frame the device holds). ``cmd`` is a :class:`Command` or any byte."""
    cmd = cmd.value if isinstance(cmd, Command) else cmd
    body = _pack(_REQUEST, cmd=cmd, seq=seq, count=count, addr=addr).to_bytes(REQUEST_BYTES, "little")
    if len(words):
        body += (np.asarray(words, dtype=np.int64) & 0xFFFF).astype("<u2").tobytes()
    c = fast_crc16(body)
    body += bytes([c >> 8, c & 0xFF])
    return (bytes([DELIMITER]) if lead else b"") + fast_cobs_encode(body) + bytes([DELIMITER])


def decode_answer(frame):
    """The :class:`Answer` of one frame's bytes between delimiters;
    :class:`LinkCrcError` if it is damaged."""
    try:
        body = fast_cobs_decode(frame)
    except CobsError as e:
        raise LinkCrcError(f"damaged answer: {e}") from None
    if len(body) < ANSWER_BYTES + 2 or (len(body) - ANSWER_BYTES - 2) % 2:
        raise LinkCrcError(f"damaged answer: {len(body)} bytes")
    if fast_crc16(body) != 0:
        raise LinkCrcError(f"damaged answer: CRC {fast_crc16(body[:-2]):#06x} != {body[-2] << 8 | body[-1]:#06x}")
    t = int.from_bytes(body[-2 - ANSWER_BYTES:-2], "little")
    n = (len(body) - ANSWER_BYTES - 2) // 2
    words = np.frombuffer(body, dtype="<u2", count=n).tolist()
    try:
        status = Status(_unpack(_ANSWER, t, "status"))
    except ValueError as e:
        raise LinkCrcError(f"answer with an unknown status: {e}") from None
    return Answer(_unpack(_ANSWER, t, "cmd"), _unpack(_ANSWER, t, "seq"), status,
                  _unpack(_ANSWER, t, "index"), words)


class ByteChannel(ABC):
    """A byte pipe to the device."""

    @abstractmethod
    async def write(self, data):
        """Send ``data`` (bytes)."""

    @abstractmethod
    async def read(self, n, timeout):
        """Between 1 and ``n`` bytes, as soon as one has arrived, or none after
        ``timeout`` seconds."""

    def now(self):
        """The channel's clock in seconds (wall time; simulated time in a bench)."""
        return time.monotonic()

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
        first = self.port.read(1)
        if not first:
            return first
        return first + self.port.read(min(n - 1, self.port.in_waiting))

    def close(self):
        self.port.close()


class SocketChannel(ByteChannel):
    """A ``socket://host:port`` URL (``ganpu sim``) as a plain TCP socket: one
    ``select`` and one ``recv`` per read (pyserial's socket URL costs several calls and
    timers per read, which limited a simulated link to about 30,000 words/s).
    Raises :class:`LinkError` when the connection cannot be made or is closed, and
    :class:`LinkTimeout` when a write cannot go out within ``timeout`` seconds."""

    def __init__(self, url, timeout=1.0):
        host, _, port = url.removeprefix("socket://").rpartition(":")
        if not url.startswith("socket://") or not host or not port.isdigit():
            raise ValueError(f"expected socket://HOST:PORT, not {url!r}")
        self.url, self.timeout = url, timeout
        try:
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        except OSError as e:
            raise LinkError(f"cannot connect to {url}: {e}") from None
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def write(self, data):
        try:
            self.sock.sendall(data)
        except socket.timeout:
            raise LinkTimeout(f"{self.url}: could not send {len(data)} bytes within "
                              f"{self.timeout} s") from None
        except OSError as e:
            raise LinkError(f"{self.url}: {e}") from None

    async def read(self, n, timeout):
        ready, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            chunk = self.sock.recv(n)
        except OSError as e:
            raise LinkError(f"{self.url}: {e}") from None
        if not chunk:
            raise LinkError(f"{self.url}: the device closed the connection")
        return chunk

    def close(self):
        self.sock.close()


def channel(url, baud=3_000_000, timeout=1.0):
    """The :class:`ByteChannel` for ``url``: :class:`SocketChannel` for ``socket://``,
    else :class:`SerialChannel` (any other pyserial URL)."""
    if url.startswith("socket://"):
        return SocketChannel(url, timeout)
    return SerialChannel(url, baud, timeout)


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


class _Frame:
    """One request in flight."""

    def __init__(self, cmd, addr, count, words):
        self.cmd, self.addr, self.count, self.words = Command(cmd) if isinstance(cmd, Command) else cmd, addr, count, words
        self.seq = None
        self.deadline = None
        self.answer = None


class LinkBusTransport(BusTransport):
    """Bus requests as frames over a :class:`ByteChannel` (``docs/link.md``, "Host").

    ``requests`` groups consecutive addresses of one direction into bursts of up to
    ``max_words`` and keeps up to ``window`` (1 or 2) frames outstanding. Each frame
    gets a fresh sequence number (retries too), so a late answer to an abandoned
    frame is recognised and dropped. An answer is awaited for ``timeout`` seconds plus
    the frame's bytes at ``byte_time`` seconds each.

    Retry policy: a frame whose answer times out, arrives damaged, or says CRC_ERROR
    is sent again (with every frame sent after it, in order: go-back-N) up to
    ``retries`` times when every frame involved is idempotent: PING, READ, and WRITE
    except a write of the CSR CTRL (start/resume/clear are actions). Otherwise, or
    when the retries are spent, :class:`LinkTimeout` or :class:`LinkCrcError` is
    raised. Other statuses raise :class:`DeviceError`, except BUS_ERROR, which
    becomes ``error`` = 1 in the refused word's result and every later word's of that
    burst (the device attempted them but reports only the first refusal).
    """

    def __init__(self, channel, *, timeout=1.0, byte_time=0.0, retries=2, window=2,
                 max_words=MAX_WORDS):
        if window not in (1, 2):
            raise ValueError(f"window must be 1 or 2, not {window!r}")
        self.ch = channel
        self.timeout, self.byte_time, self.retries = timeout, byte_time, retries
        self.window, self.max_words = window, max_words
        self._seq = 0
        self._buf = bytearray()
        self.stats = {"frames": 0, "retries": 0, "stale": 0, "tx_bytes": 0, "rx_bytes": 0}

    # --- frames
    def _idempotent(self, f):
        if f.cmd in (Command.PING, Command.READ):
            return True
        return f.cmd == Command.WRITE and not f.addr <= _CTRL_ADDRESS < f.addr + f.count

    async def _send(self, f):
        f.seq = self._seq
        self._seq = (self._seq + 1) & 0xFF
        raw = encode_request(f.cmd, f.seq, f.addr, f.count, f.words)
        answer_bytes = 2 * (f.count if f.cmd == Command.READ else 4) + ANSWER_BYTES + 8
        f.deadline = (self.timeout + (len(raw) + answer_bytes) * self.byte_time) * (1 + self.window)
        f.answer = None
        self.stats["frames"] += 1
        self.stats["tx_bytes"] += len(raw)
        await self.ch.write(raw)

    async def _next_frame(self, timeout):
        """The bytes of the next answer frame, or None after ``timeout`` seconds (of the
        channel's clock)."""
        end = self.ch.now() + timeout
        while True:
            while DELIMITER in self._buf:
                i = self._buf.index(DELIMITER)
                frame = bytes(self._buf[:i])
                del self._buf[:i + 1]
                if frame:
                    return frame
            remaining = end - self.ch.now()
            if remaining <= 0:
                return None
            chunk = await self.ch.read(1 << 16, remaining)
            self.stats["rx_bytes"] += len(chunk)
            self._buf += chunk

    async def _await(self, f, later):
        """Wait for ``f``'s answer; answers to ``later`` frames may arrive first only if
        ``f``'s was lost. Returns the Answer or raises LinkTimeout/LinkCrcError."""
        while True:
            raw = await self._next_frame(f.deadline)
            if raw is None:
                raise LinkTimeout(f"no answer to {f.cmd.name if isinstance(f.cmd, Command) else f.cmd} "
                                  f"seq {f.seq} (addr {f.addr:#x}, {f.count} words) within {f.deadline:.3g} s")
            try:
                a = decode_answer(raw)
            except LinkCrcError:
                # a damaged answer: ours or a later frame's, we cannot tell; ours failed
                raise
            if a.seq == f.seq and a.cmd == (f.cmd.value if isinstance(f.cmd, Command) else f.cmd):
                if a.status == Status.CRC_ERROR:
                    raise LinkCrcError(f"the device received frame seq {f.seq} damaged (CRC_ERROR)")
                return a
            if any(a.seq == g.seq for g in later):
                for g in later:
                    if g.seq == a.seq:
                        g.answer = a
                raise LinkTimeout(f"no answer to seq {f.seq}: the device answered seq {a.seq} after it")
            self.stats["stale"] += 1   # a late answer to an abandoned frame, or garbage's

    async def _resync(self):
        """Flush the device's partial frame and drop whatever answers are still coming."""
        await self.ch.write(bytes([DELIMITER]))
        while await self._next_frame(self.timeout) is not None:
            self.stats["stale"] += 1

    async def transact(self, frames):
        """Send ``frames`` (each ``(cmd, addr, count, words)``), ``window`` at a time;
        their :class:`Answer` s in order."""
        todo = [_Frame(*fr) for fr in frames]
        answers = []
        tries = 0
        i = 0
        while i < len(todo):
            window = self.window if all(self._idempotent(f) for f in todo[i:i + self.window]) else 1
            inflight = []
            try:
                j = i
                while j < len(todo) and len(inflight) < window:
                    await self._send(todo[j])
                    inflight.append(todo[j])
                    j += 1
                while inflight:
                    f = inflight[0]
                    a = f.answer or await self._await(f, inflight[1:])
                    answers.append(a)
                    inflight.pop(0)
                    i += 1
                    tries = 0
                    if j < len(todo) and (window > 1 and self._idempotent(todo[j])):
                        await self._send(todo[j])
                        inflight.append(todo[j])
                        j += 1
            except (LinkTimeout, LinkCrcError):
                retry = tries < self.retries and all(self._idempotent(f) for f in inflight)
                if not retry:
                    raise
                tries += 1
                self.stats["retries"] += 1
                await self._resync()
        return answers

    # --- BusTransport
    async def request(self, addr, write, data=0):
        return (await self.requests([(addr, write, data)]))[0]

    async def requests(self, reqs):
        groups = bursts(reqs, self.max_words)
        answers = await self.transact([(Command.WRITE if w else Command.READ, start, n, vals if w else [])
                                       for start, w, n, vals in groups])
        out = []
        for (start, w, n, _), a in zip(groups, answers):
            if a.status not in (Status.OK, Status.BUS_ERROR):
                raise DeviceError(a.status, f"device answered {a.status.name} to a {n}-word "
                                  f"{'write' if w else 'read'} at {start:#x}")
            words = a.words if not w else [0] * n
            if not w and len(words) != n:
                raise LinkCrcError(f"read of {n} words at {start:#x} answered with {len(words)}")
            ok = a.index if a.status == Status.BUS_ERROR else n
            out += [(words[k] if k < ok else 0, int(k >= ok)) for k in range(n)]
        return out

    async def idle(self, cycles):
        await self.ch.idle(cycles)

    async def ping(self):
        """The device's :func:`~ganpu.link.protocol.info_layout` as a dict."""
        a = (await self.transact([(Command.PING, 0, 0, [])]))[0]
        if a.status != Status.OK or len(a.words) != info_layout().size // 16:
            raise DeviceError(a.status, f"PING answered {a.status.name} with {len(a.words)} words")
        v = sum(w << (16 * i) for i, w in enumerate(a.words))
        c = data.Const(info_layout(), v)
        return {name: int(getattr(c, name)) for name in info_layout().members}


class SyncDriver:
    """A blocking :class:`~ganpu.host.processor_driver.ProcessorDriver` for scripts:
    every coroutine method becomes a plain call, plus :meth:`ping` and :meth:`close`.

    >>> with connect("socket://localhost:4567", "small") as npu:   # doctest: +SKIP
    ...     npu.write_gbuf(0, words); npu.run(records); npu.read_gbuf(0, 16)
    """

    def __init__(self, driver, channel):
        import asyncio
        self.driver, self.channel = driver, channel
        self._loop = asyncio.new_event_loop()

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def __getattr__(self, name):
        import inspect
        attr = getattr(self.driver, name)
        if not inspect.iscoroutinefunction(attr):
            return attr
        return lambda *args, **kw: self._run(attr(*args, **kw))

    def ping(self):
        """The device's :func:`~ganpu.link.protocol.info_layout` as a dict."""
        return self._run(self.driver.t.ping())

    def close(self):
        self.channel.close()
        self._loop.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def connect(url, cfg="small", *, baud=3_000_000, timeout=1.0, check=True, **transport_kw):
    """A :class:`SyncDriver` for the processor of ``cfg`` at pyserial ``url``
    (``/dev/ttyUSB0``, ``socket://localhost:4567``). ``check``: PING first and refuse a
    device whose sizes differ from ``cfg``'s."""
    from ..processor.config import ProcessorConfig, config
    from ..processor.program import record_words
    cfg = config(cfg) if isinstance(cfg, str) else cfg
    if not isinstance(cfg, ProcessorConfig):
        raise TypeError(f"cfg must be a ProcessorConfig or a config name, not {cfg!r}")
    ch = channel(url, baud, timeout)
    t = LinkBusTransport(ch, timeout=timeout, byte_time=10 / baud, **transport_kw)
    from .processor_driver import ProcessorDriver
    drv = SyncDriver(ProcessorDriver(t, cfg), ch)
    if check:
        try:
            got = drv.ping()
        except Exception:
            drv.close()
            raise
        want = {"gbuf_bits": cfg.gbuf_bits, "program_bits": cfg.program_bits, "cores": cfg.cores,
                "record_words": record_words(cfg)}
        bad = {k: (got[k], v) for k, v in want.items() if got[k] != v}
        if bad:
            drv.close()
            raise DeviceError(Status.OK, f"device at {url!r} does not match config: "
                              + ", ".join(f"{k} {g} (config {v})" for k, (g, v) in bad.items()))
    return drv
