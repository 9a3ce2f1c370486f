"""cocotb bench of the board's device at its UART pins: :class:`UartLink` around
:class:`LinkedProcessor` (config ``small``), driven by the real host driver
(:class:`ganpu.host.processor_driver.ProcessorDriver` over
:class:`ganpu.host.link.LinkBusTransport`) through :mod:`ganpu.sim.cocotb_uart`, which
bit-bangs ``rx`` and samples ``tx``.

Checks: PING reports the config; GBUF writes read back; a tiny program (one GEMM on
the GAN's real digits) gives :meth:`Processor.model`'s output; no framing error or
overrun on either side. With GANPU_BULK_WORDS it also times bulk writes and reads of
that many words and writes the link's throughput (payload bytes per second of
simulated time, and as a fraction of the raw UART byte rate) to GANPU_RESULTS.

Environment: GANPU_UART_DIVISOR, GANPU_PINS_REAL (hex of binary16 words),
GANPU_BULK_WORDS, GANPU_RESULTS, GANPU_SEED.
"""

import json
import os

import cocotb
import numpy as np

from ganpu.core.descriptor import Act, Op
from ganpu.processor import config
from ganpu.processor.processor import Processor
from ganpu.processor.program import Policy, ProgramError, TaskKind
from ganpu.sim.cocotb_uart import attach, CLOCK_NS

CFG = config("small")
DIV = int(os.environ["GANPU_UART_DIVISOR"])
REAL = np.frombuffer(bytes.fromhex(os.environ["GANPU_PINS_REAL"]), dtype=np.uint16)
BULK = int(os.environ.get("GANPU_BULK_WORDS", "0"))
SEED = int(os.environ.get("GANPU_SEED", "0"))


def tiny_program(rng):
    """``(gbuf, records, out_range)``: ``out[2, 3] = relu(A[2, 4] B[3, 4]^T + bias)``
    with A from the digits."""
    gbuf = np.zeros(CFG.gbuf_depth, dtype=np.uint16)
    M, N, K = 2, 3, 4
    a, b, bias, out = 16, 32, 48, 64
    gbuf[a:a + M * K] = REAL[:M * K]
    gbuf[b:b + N * K] = np.float16(rng.standard_normal(N * K)).view(np.uint16)
    gbuf[bias:bias + N] = np.float16(rng.standard_normal(N)).view(np.uint16)
    rec = {"kind": TaskKind.GEMM.value, "op": Op.FP.value, "act": Act.RELU.value,
           "m": M, "n": N, "k": K, "bias": 1, "bias_base": bias,
           "a": {"base": a, "s0": K, "s1": 1}, "b": {"base": b, "s0": K, "s1": 1},
           "out": {"base": out, "s0": N, "s1": 1}}
    return gbuf, [rec], (out, M * N)


async def timed(ch, coro):
    t0 = ch.cycle
    result = await coro
    return result, ch.cycle - t0


@cocotb.test()
async def driver_at_pins(dut):
    rng = np.random.default_rng(SEED)
    drv, t, ch = await attach(dut, CFG, DIV)
    info = await t.ping()
    assert info["gbuf_bits"] == CFG.gbuf_bits and info["cores"] == CFG.cores, f"PING: {info}"

    words = rng.integers(0, 1 << 16, 12, dtype=np.uint16)
    await drv.write_gbuf(200, words)
    np.testing.assert_array_equal(await drv.read_gbuf(200, len(words)), words)

    gbuf, records, (out, n) = tiny_program(rng)
    nz = np.flatnonzero(gbuf)
    await drv.write_gbuf(int(nz[0]), gbuf[nz[0]:nz[-1] + 1])
    await drv.run(records, Policy.TEMPORAL, polls=50, interval=64)
    error, _, _, want = Processor.model(CFG, gbuf.copy(), records)
    assert error == ProgramError.OK
    np.testing.assert_array_equal(await drv.read_gbuf(out, n), want[out:out + n],
                                  err_msg="the program's output differs from Processor.model")
    # the words written before the program are still there
    np.testing.assert_array_equal(await drv.read_gbuf(200, len(words)), words)

    figures = {}
    if BULK:
        data = rng.integers(0, 1 << 16, BULK, dtype=np.uint16)
        _, wcyc = await timed(ch, drv.write_gbuf(1024, data))
        got, rcyc = await timed(ch, drv.read_gbuf(1024, BULK))
        np.testing.assert_array_equal(got, data)
        raw = 1e9 / (CLOCK_NS * 10 * DIV)            # bytes/s of the line at this clock
        for what, cyc in (("write", wcyc), ("read", rcyc)):
            rate = 2 * BULK / (cyc * CLOCK_NS * 1e-9)
            figures[what] = {"words": BULK, "cycles": cyc, "bytes_per_s": rate,
                             "fraction_of_raw": rate / raw}
        figures.update(divisor=DIV, clock_hz=1e9 / CLOCK_NS, raw_bytes_per_s=raw,
                       frames=t.stats["frames"], retries=t.stats["retries"])
        dut._log.info("bulk: %s", figures)
    assert t.stats["retries"] == 0, f"the link retried: {t.stats}"
    assert ch.frame_errors == 0, "the host saw a framing error on tx"
    assert int(dut.frame_errors.value) == 0 and int(dut.overruns.value) == 0, \
        "the device's UART counted a framing error or an overrun"
    if os.environ.get("GANPU_RESULTS"):
        with open(os.environ["GANPU_RESULTS"], "w") as f:
            json.dump(figures, f)
