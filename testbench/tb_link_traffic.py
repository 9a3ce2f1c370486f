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
