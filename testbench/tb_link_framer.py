"""cocotb bench of :class:`ganpu.link.framer.Framer` against ``Framer.model``: random
request traffic with faults (garbage, corrupted and dropped bytes, idle gaps beyond
the link timeout, unknown commands, bursts across the GBUF's end) on ``rx``; an
emulated memory map on ``req``/``resp`` (``BusFrontEnd.model``'s refusals, two
requests in flight, random back-pressure); random back-pressure on ``tx``. Every ``tx``
byte and every GBUF word are compared with the model's.

Environment: GANPU_SEED, GANPU_FRAMES (requests), GANPU_TIMEOUT (the framer's link
timeout, as built).
"""

import os
import random

import cocotb

from ganpu.link.framer import Framer
from ganpu.processor import config

from tb_link_traffic import MapModel, exchange, traffic

CFG = config("small")
SEED = int(os.environ.get("GANPU_SEED", "1"))
FRAMES = int(os.environ.get("GANPU_FRAMES", "20"))
TIMEOUT = int(os.environ.get("GANPU_TIMEOUT", "60"))


@cocotb.test()
async def against_model(dut):
    rng = random.Random(SEED)
    items = traffic(CFG, rng, FRAMES)
    ref = MapModel(CFG)
    expect = Framer.model(CFG, items, ref)
    dev = MapModel(CFG)
    got, _ = await exchange(dut, items, len(expect), dev, rng,
                            len(items) * 6 + 20 * TIMEOUT + 5000, TIMEOUT, tx_p=0.7)
    assert bytes(got) == expect, (f"tx differs from the model: {len(got)} bytes, expected "
                                  f"{len(expect)}; first difference at "
                                  f"{next((k for k, (a, b) in enumerate(zip(got, expect)) if a != b), min(len(got), len(expect)))}")
    assert (dev.gbuf == ref.gbuf).all(), "GBUF differs from the model's"
    dut._log.info(f"{FRAMES} frames, {len(items)} items, {len(got)} answer bytes")
