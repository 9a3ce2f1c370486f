"""cocotb bench of UartTx: random bytes and real data (the GAN's digits as binary16
bytes) offered with random gaps and back to back. Each transfer must put exactly
:meth:`UartTx.model`'s frame on ``tx`` from the next cycle, the line must idle high
between frames, a byte held valid must follow the previous frame with no gap (the
throughput contract), and the whole line decoded by :meth:`UartRx.model` must give
back the bytes sent.

Environment: GANPU_UART_DIVISOR, GANPU_UART_BYTES, GANPU_UART_SEED, GANPU_UART_REAL.
"""

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from ganpu.link.uart_rx import UartRx
from ganpu.link.uart_tx import UartTx, FRAME_BITS

DIV = int(os.environ["GANPU_UART_DIVISOR"])
NBYTES = int(os.environ["GANPU_UART_BYTES"])
SEED = int(os.environ.get("GANPU_UART_SEED", "0"))


def real_bytes(n):
    """Real data from the test (hex in GANPU_UART_REAL): importing the dataset inside
    the simulator would cost more than the bench."""
    return np.frombuffer(bytes.fromhex(os.environ["GANPU_UART_REAL"]), dtype=np.uint8)[:n]


@cocotb.test()
async def frames(dut):
    rng = np.random.default_rng(SEED)
    data = [int(b) for b in np.concatenate([rng.integers(0, 256, NBYTES // 2),
                                            real_bytes(NBYTES - NBYTES // 2), [0, 255]])]
    # per byte: cycles the source waits before offering it (0: back to back)
    waits = [int(rng.choice([0, 0, 0, 1, DIV, 7 * DIV, 13 * DIV])) for _ in data]
    dut.data__valid.value = 0
    dut.data__payload.value = 0
    dut.rst.value = 1
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    line, handshakes = [], []
    i, wait, c = 0, waits[0], 0
    frame_len = FRAME_BITS * DIV
    while i < len(data) or c < (handshakes[-1][0] + frame_len + 2 * DIV if handshakes else 0):
        await FallingEdge(dut.clk)
        offer = i < len(data) and wait == 0
        dut.data__valid.value = int(offer)
        dut.data__payload.value = data[i] if offer else int(rng.integers(0, 256))
        line.append(int(dut.tx.value))
        if offer and int(dut.data__ready.value):
            handshakes.append((c, data[i]))
            i += 1
            wait = waits[i] if i < len(data) else 0
        elif not offer and i < len(data):
            wait -= 1
        c += 1
    line = np.array(line, dtype=np.uint8)
    covered = np.zeros(len(line), dtype=bool)
    prev = None
    for k, (c, byte) in enumerate(handshakes):
        lo = c + UartTx.latency
        want = UartTx.model(DIV, [byte])
        np.testing.assert_array_equal(line[lo:lo + frame_len], want,
                                      err_msg=f"frame {k} (byte {byte:#04x}) on tx from cycle {lo}")
        covered[lo:lo + frame_len] = True
        if prev is not None:
            gap = c - prev
            assert gap >= frame_len, f"byte {k} taken {gap} cycles after byte {k - 1}: frames overlap"
            if waits[k] == 0:
                assert gap == frame_len, (f"byte {k} was waiting but taken {gap} cycles after "
                                          f"byte {k - 1}; back to back is {frame_len}")
        prev = c
    assert np.all(line[~covered] == 1), "tx not idle high outside frames"
    transfers, ferr, _ = UartRx.model(DIV, line)
    assert [b for _, b in transfers] == data and not ferr, "the line does not decode to the bytes sent"
    dut._log.info("divisor %d: %d bytes in %d cycles", DIV, len(data), len(line))
