"""cocotb bench of UartRx: a line built here (independently of the block's model) from
random bytes and real data (the digits the GAN trains on, as binary16 bytes), with
back-to-back frames, idle gaps, glitches, framing errors and segments sent 2 % slow
and 2 % fast. Every cycle's output is checked against :meth:`UartRx.model` (the same
transfers on the same cycles, the same counter values), and the bytes received against
the bytes sent as good frames.

Environment: GANPU_UART_DIVISOR, GANPU_UART_BYTES, GANPU_UART_SEED, GANPU_UART_REAL.
"""

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from ganpu.link.uart_rx import UartRx

DIV = int(os.environ["GANPU_UART_DIVISOR"])
NBYTES = int(os.environ["GANPU_UART_BYTES"])
SEED = int(os.environ.get("GANPU_UART_SEED", "0"))


def real_bytes(n):
    """Real data from the test (hex in GANPU_UART_REAL): importing the dataset inside
    the simulator would cost more than the bench."""
    return np.frombuffer(bytes.fromhex(os.environ["GANPU_UART_REAL"]), dtype=np.uint8)[:n]


class Line:
    """Pin samples (one per cycle) built bit by bit at a possibly fractional period."""

    def __init__(self):
        self.t = 0.0
        self.samples = []

    def level(self, value, duration):
        end = self.t + duration
        self.samples += [value] * (int(round(end)) - int(round(self.t)))
        self.t = end

    def frame(self, byte, period, stop=1):
        self.level(0, period)
        for i in range(8):
            self.level((byte >> i) & 1, period)
        self.level(stop, period)


def build_line(rng, data, backpressure):
    """``(samples, good bytes, framing errors)`` for ``data``; a few frames carry a
    bad stop bit or are preceded by a glitch; periods vary by +-2 % per segment."""
    line = Line()
    good, errors = [], 0
    half = (DIV - 1) // 2
    line.level(1, 3 * DIV)
    for i, byte in enumerate(data):
        byte = int(byte)
        period = DIV * float(rng.choice([1.0, 1.0, 0.98, 1.02]))
        r = rng.random()
        if r < 0.05:
            # a low pulse no longer than the half bit the receiver waits for
            line.level(0, int(rng.integers(1, half + 1)))
            line.level(1, DIV)
        if r > 0.95:
            line.frame(byte, period, stop=0)
            line.level(0, DIV * int(rng.integers(0, 3)))   # a break, sometimes
            line.level(1, DIV)
            errors += 1
            continue
        line.frame(byte, period)
        good.append(byte)
        gap = rng.random()
        if gap < 0.5:
            pass                                           # back to back
        elif gap < 0.8:
            line.level(1, int(rng.integers(1, 3 * DIV)))
        else:
            line.level(1, int(rng.integers(3 * DIV, 20 * DIV)))
    line.level(1, 3 * DIV)
    samples = np.array(line.samples, dtype=np.uint8)
    if backpressure:
        ready = np.ones(len(samples), dtype=bool)
        c = 0
        while c < len(samples):
            # mostly short stalls (no loss), sometimes one long enough to overrun
            stall = int(rng.choice([0, 1, 3, DIV, 12 * DIV, 25 * DIV]))
            ready[c:c + stall] = False
            c += stall + int(rng.integers(1, 8 * DIV))
    else:
        ready = None
    return samples, good, errors, ready


async def drive(dut, samples, ready):
    """Run the line through the DUT; per cycle ``(transfer, frame_errors, overruns)``."""
    dut.rx.value = 1
    dut.data__ready.value = 1
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    out = []
    for c in range(len(samples)):
        await FallingEdge(dut.clk)
        dut.rx.value = int(samples[c])
        r = 1 if ready is None else int(ready[c])
        dut.data__ready.value = r
        v = int(dut.data__valid.value)
        out.append((int(dut.data__payload.value) if v and r else None,
                    int(dut.frame_errors.value), int(dut.overruns.value)))
    return out


def check(dut, samples, ready, out):
    transfers, ferr, ovr = UartRx.model(DIV, samples, ready)
    got = [(c, b) for c, (b, _, _) in enumerate(out) if b is not None]
    if got != transfers:
        i = next(i for i, (g, t) in enumerate(zip(got + [None], transfers + [None])) if g != t)
        raise AssertionError(f"transfer {i}: (cycle, byte) {got[i] if i < len(got) else None}, "
                             f"model {transfers[i] if i < len(transfers) else None}")
    for c, (_, fe, ov) in enumerate(out):
        want_fe = sum(1 for x in ferr if x < c) & 0xFF
        want_ov = sum(1 for x in ovr if x < c) & 0xFF
        assert (fe, ov) == (want_fe, want_ov), (
            f"cycle {c}: frame_errors {fe}, overruns {ov}; model {want_fe}, {want_ov}")
    return transfers, ferr, ovr


@cocotb.test()
async def random_and_real(dut):
    """Always ready: every good frame arrives, bit-exact with the model."""
    rng = np.random.default_rng(SEED)
    data = np.concatenate([rng.integers(0, 256, NBYTES // 2), real_bytes(NBYTES - NBYTES // 2),
                           [0x00, 0xFF, 0x55, 0xAA]])
    samples, good, errors, ready = build_line(rng, data, backpressure=False)
    out = await drive(dut, samples, ready)
    transfers, ferr, ovr = check(dut, samples, ready, out)
    assert [b for _, b in transfers] == good, "bytes received differ from the good frames sent"
    assert len(ferr) == errors, f"{len(ferr)} framing errors counted, {errors} sent"
    assert not ovr
    dut._log.info("divisor %d: %d bytes, %d framing errors, %d cycles", DIV, len(good), errors,
                  len(samples))


@cocotb.test()
async def backpressure(dut):
    """``data.ready`` low at times: stalls shorter than a frame lose nothing; longer
    ones drop the next frame and count an overrun (exactly as the model)."""
    rng = np.random.default_rng(SEED + 1)
    data = rng.integers(0, 256, NBYTES)
    samples, good, errors, ready = build_line(rng, data, backpressure=True)
    out = await drive(dut, samples, ready)
    transfers, ferr, ovr = check(dut, samples, ready, out)
    assert len(transfers) + len(ovr) == len(good), "a good frame was neither received nor counted"
    assert ovr, "the stall pattern made no overrun: the case is not exercised"
