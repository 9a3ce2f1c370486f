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
from amaranth.lib import data
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from ganpu.link.framer import Framer
from ganpu.processor import config
from ganpu.processor.program import bus_request_layout, bus_response_layout

from tb_link_traffic import MapModel, traffic

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
    i, gap = 0, 0
    limit = len(items) * 6 + 20 * TIMEOUT + 5000
    for _ in range(limit):
        if i >= len(items) and len(got) >= len(expect):
            break
        # outputs of the design, stable since the last rising edge
        rx_ready = int(dut.rx__ready.value)
        req_valid = int(dut.req__valid.value)
        req = data.Const(rl, int(dut.req__payload.value)) if req_valid else None
        resp_ready = int(dut.resp__ready.value)
        tx_valid = int(dut.tx__valid.value)
        tx_byte = int(dut.tx__payload.value) if tx_valid else None
        # inputs for the next rising edge
        while i < len(items) and items[i] is None and gap == 0:
            gap = TIMEOUT + 4          # an idle gap beyond the link timeout
            i += 1
        offered = gap == 0 and i < len(items)
        if offered:
            dut.rx__payload.value = items[i]
        dut.rx__valid.value = int(offered)
        req_ready = int(len(pend) < 2 and rng.random() < 0.8)
        dut.req__ready.value = req_ready
        resp_valid = int(bool(pend))
        dut.resp__valid.value = resp_valid
        if pend:
            dut.resp__payload.value = sl.const({"data": pend[0][0], "error": pend[0][1]}).as_value().value
        tx_ready = int(rng.random() < 0.7)
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
    assert bytes(got) == expect, (f"tx differs from the model: {len(got)} bytes, expected "
                                  f"{len(expect)}; first difference at "
                                  f"{next((k for k, (a, b) in enumerate(zip(got, expect)) if a != b), min(len(got), len(expect)))}")
    assert (dev.gbuf == ref.gbuf).all(), "GBUF differs from the model's"
    dut._log.info(f"{FRAMES} frames, {len(items)} items, {len(got)} answer bytes")
