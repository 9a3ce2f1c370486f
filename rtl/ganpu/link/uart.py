"""The UART PHY: :class:`~ganpu.link.uart_rx.UartRx`, :class:`~ganpu.link.uart_tx.UartTx`
and the divisor for a clock and a baud rate (``docs/boards.md``)."""

from ..core.config import check_int
from .uart_rx import UartRx, MIN_DIVISOR, MAX_DIVISOR
from .uart_tx import UartTx, FRAME_BITS

__all__ = ["UartRx", "UartTx", "FRAME_BITS", "baud_divisor", "byte_rate", "MAX_BAUD_ERROR"]

# An 8N1 receiver samples the stop bit 9.5 bits after the start edge; the two ends
# together may drift by less than half a bit over that, so each end's rate error must
# stay well inside ~2.5 %.
MAX_BAUD_ERROR = 0.02


def baud_divisor(clock_hz, baud, max_error=MAX_BAUD_ERROR):
    """Clock cycles per bit for ``baud`` at ``clock_hz`` (both ints), rounded;
    ``ValueError`` if the nearest divisor misses the baud rate by more than
    ``max_error`` or is outside the PHY's range."""
    check_int("clock_hz", clock_hz, 1)
    check_int("baud", baud, 1)
    div = max(1, round(clock_hz / baud))
    error = clock_hz / div / baud - 1
    if abs(error) > max_error:
        raise ValueError(f"baud {baud!r} at clock {clock_hz!r} Hz: the nearest divisor {div} "
                         f"gives {clock_hz / div:.0f} baud ({error:+.1%}), beyond "
                         f"+-{max_error:.0%}")
    if not MIN_DIVISOR <= div <= MAX_DIVISOR:
        raise ValueError(f"baud {baud!r} at clock {clock_hz!r} Hz needs divisor {div}, outside "
                         f"{MIN_DIVISOR}..{MAX_DIVISOR}")
    return div


def byte_rate(clock_hz, divisor):
    """Raw byte rate of the line (bytes/s): one 10-bit frame per byte."""
    return clock_hz / (FRAME_BITS * divisor)
