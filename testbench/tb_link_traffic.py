"""Shared by the link's tests and benches: a memory map model of the processor as the
link sees it, and random request traffic with faults."""

import numpy as np

from ganpu.host.link import encode_request
from ganpu.host.processor_driver import address
from ganpu.link.protocol import Command
from ganpu.processor.bus import BusFrontEnd
from ganpu.processor.program import Region, State, Csr, REGION_SHIFT


class MapModel:
    """The processor's memory map as far as the link sees it: GBUF words, the STATE CSR,
    and the refusals of ``BusFrontEnd.model``."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.gbuf = np.zeros(cfg.gbuf_depth, dtype=np.uint16)
        self.state = State.IDLE

    def __call__(self, addr, write, value):
        region, offset = addr >> REGION_SHIFT, addr & ((1 << REGION_SHIFT) - 1)
        if BusFrontEnd.model(self.cfg, self.state, region, offset, write):
            return 0, 1
        if region == Region.GBUF.value:
            if write:
                self.gbuf[offset] = value
            return int(self.gbuf[offset]), 0
        if region == Region.CSR.value and offset == Csr.STATE.value:
            return self.state.value, 0
        return 0, 0


def traffic(cfg, rng, frames):
    """Bytes of ``frames`` requests of every kind (WRITE, READ, some across the GBUF's
    end; PING; an unknown command; corrupted or dropped bytes), with garbage and idle
    gaps (``None``: longer than the framer's timeout) between some of them."""
    items = []
    for seq in range(frames):
        kind = rng.randrange(8)
        n = rng.choice([1, 2, 5, 40, 256])
        base = rng.randrange(cfg.gbuf_depth - n + 3)
        if kind < 3:
            raw = encode_request(Command.WRITE, seq, address(Region.GBUF, base), n,
                                 [rng.randrange(1 << 16) for _ in range(n)])
        elif kind < 5:
            raw = encode_request(Command.READ, seq, address(Region.GBUF, base), n)
        elif kind == 5:
            raw = encode_request(rng.choice([Command.PING, 0x42]), seq)
        else:
            raw = bytearray(encode_request(Command.WRITE, seq, address(Region.GBUF, base), n,
                                           [rng.randrange(1 << 16) for _ in range(n)]))
            k = rng.randrange(1, len(raw) - 1)
            if kind == 6:
                raw[k] = rng.randrange(1, 256)
            else:
                del raw[k]
        items += list(raw)
        if rng.random() < 0.15:
            items += [rng.randrange(1, 256) for _ in range(rng.randrange(1, 20))]
        if rng.random() < 0.1:
            items += [rng.randrange(1, 256) for _ in range(5)] + [None]
    return items


async def exchange(dut, items, until, dev, rng, limit, timeout, *, resp_p=None, tx_p=0.7):
    """Drive a framer (ports ``rx``, ``req``, ``resp``, ``tx``) from reset: offer the
    bytes of ``items`` on ``rx`` (``None`` = an idle gap beyond the link ``timeout``),
    answer each bus request from ``dev`` (a :class:`MapModel`; two in flight, random
    back-pressure on ``req``, a response offered with probability ``resp_p`` or always
    when None) and take ``tx`` bytes with probability ``tx_p``, for at most ``limit``
    cycles or until every item is offered and ``until`` bytes came back. Returns
    ``(tx bytes, cycles)``."""
    from amaranth.lib import data
    from cocotb.clock import Clock
    from cocotb.triggers import FallingEdge
    from ganpu.processor.program import bus_request_layout, bus_response_layout
    import cocotb

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.rx__valid.value = 0
    dut.req__ready.value = 0
    dut.resp__valid.value = 0
    dut.tx__ready.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    rl, sl = bus_request_layout(), bus_response_layout()
    got = bytearray()
    pend = []
    i, gap, cycles = 0, 0, 0
    while cycles < limit:
        if i >= len(items) and len(got) >= until:
            break
        cycles += 1
        # outputs of the design, stable since the last rising edge
        rx_ready = int(dut.rx__ready.value)
        req_valid = int(dut.req__valid.value)
        req = data.Const(rl, int(dut.req__payload.value)) if req_valid else None
        resp_ready = int(dut.resp__ready.value)
        tx_valid = int(dut.tx__valid.value)
        tx_byte = int(dut.tx__payload.value) if tx_valid else None
        # inputs for the next rising edge
        while i < len(items) and items[i] is None and gap == 0:
            gap = timeout + 4          # an idle gap beyond the link timeout
            i += 1
        offered = gap == 0 and i < len(items)
        if offered:
            dut.rx__payload.value = items[i]
        dut.rx__valid.value = int(offered)
        req_ready = int(len(pend) < 2 and rng.random() < 0.8)
        dut.req__ready.value = req_ready
        resp_valid = int(bool(pend) and (resp_p is None or rng.random() < resp_p))
        dut.resp__valid.value = resp_valid
        if pend:
            dut.resp__payload.value = sl.const({"data": pend[0][0], "error": pend[0][1]}).as_value().value
        tx_ready = int(rng.random() < tx_p)
        dut.tx__ready.value = tx_ready
        await FallingEdge(dut.clk)
        # the handshakes of that edge
        if offered and rx_ready:
            i += 1
        gap = max(0, gap - 1)
        if resp_valid and resp_ready:
            pend.pop(0)
        if req_valid and req_ready:
            pend.append(dev(int(req.addr), int(req.write), int(req.data)))
        if tx_valid and tx_ready:
            got.append(tx_byte)
    return got, cycles
