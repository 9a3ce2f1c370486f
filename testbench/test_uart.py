"""The UART PHY (UartRx, UartTx) on generated Verilog against its models, both
simulators (Icarus at the smallest divisor, Verilator at the boards' divisors and
longer), and its parameter checks."""

import numpy as np
import pytest

import harness
from ganpu.link.uart import UartRx, UartTx, baud_divisor, byte_rate

# (divisor, bytes) per simulator; the boards run at 10 (ULX3S, 30 MHz / 3 Mbaud) and
# 4 (iCEBreaker, 12 MHz / 3 Mbaud)
RUNS = {"icarus": [(4, 40)], "verilator": [(10, 300)]}
CASES = [(sim, div, n) for sim, runs in RUNS.items() for div, n in runs]


def _env(div, n):
    """The bench's parameters; its real data are the digits the GAN trains on, as the
    binary16 bytes a host writes into the GBUF."""
    from ganpu.gan.data import load_digits_scaled
    n = int(n * harness.scale())
    x, _ = load_digits_scaled()
    real = x.astype(np.float16).tobytes()[:n + 16]
    return {"GANPU_UART_DIVISOR": div, "GANPU_UART_BYTES": n, "GANPU_UART_REAL": real.hex()}


@pytest.mark.parametrize("sim,div,n", CASES)
def test_rx(sim, div, n):
    harness.run(sim, UartRx(div), f"uart_rx_d{div}", "tb_uart_rx",
                env=_env(div, n))


@pytest.mark.parametrize("sim,div,n", CASES)
def test_tx(sim, div, n):
    harness.run(sim, UartTx(div), f"uart_tx_d{div}", "tb_uart_tx",
                env=_env(div, n))


@pytest.mark.parametrize("cls", [UartRx, UartTx])
@pytest.mark.parametrize("bad,exc,msg", [
    (3, ValueError, "divisor must be in 4..1048576, not 3"),
    ("8", TypeError, "divisor must be an int, not '8'"),
    (True, TypeError, "divisor must be an int, not True"),
])
def test_divisor_checked(cls, bad, exc, msg):
    with pytest.raises(exc, match=msg):
        cls(bad)
    with pytest.raises(exc, match=msg):
        cls.model(bad, [1])


def test_baud_divisor():
    assert baud_divisor(30_000_000, 3_000_000) == 10
    assert baud_divisor(12_000_000, 3_000_000) == 4
    assert byte_rate(30_000_000, 10) == 300_000
    with pytest.raises(ValueError, match=r"baud 3000000 at clock 25000000 Hz: the nearest "
                                         r"divisor 8 gives 3125000 baud \(\+4.2%\)"):
        baud_divisor(25_000_000, 3_000_000)
    with pytest.raises(ValueError, match="needs divisor 2, outside 4..1048576"):
        baud_divisor(6_000_000, 3_000_000)
    with pytest.raises(TypeError, match="baud must be an int, not 3.0"):
        baud_divisor(12_000_000, 3.0)


def test_models_agree():
    """The transmitter's model decoded by the receiver's model gives the bytes back,
    and the receiver's timing is its documented latency."""
    data = [0x00, 0xFF, 0xA5, 0x3C, 0x01]
    for div in (4, 5, 10, 17):
        line = [1] * 5 + list(UartTx.model(div, data)) + [1] * (2 * div)
        transfers, ferr, ovr = UartRx.model(div, line)
        assert [b for _, b in transfers] == data and not ferr and not ovr
        # the FSM sees the first start bit SYNC_STAGES cycles after the pin: cycle 7
        assert transfers[0][0] == 7 + UartRx.latency_of(div)
