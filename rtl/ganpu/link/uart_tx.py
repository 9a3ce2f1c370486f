"""UART transmitter, 8N1: a byte stream in, a line pin out (``docs/boards.md``)."""

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from ..core.config import CheckedComponent, check_int
from .uart_rx import MIN_DIVISOR, MAX_DIVISOR

__all__ = ["UartTx", "FRAME_BITS"]

FRAME_BITS = 10  # start, eight data bits, stop


class UartTx(CheckedComponent):
    """Sends each byte of ``data`` as an 8N1 frame on ``tx``: a start bit (0), the
    eight data bits LSB first and a stop bit (1), each ``divisor`` cycles long.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), 4..2**20.

    Ports
    -----
    data : In(stream.Signature(8))
        Bytes to send. ``ready`` is high when idle and on the last cycle of a stop bit,
        so a byte offered in time follows the previous frame with no idle gap.
    tx : Out(1), idle high
        The line, straight from a flip-flop (no glitches on the pin).

    Timing
    ------
    :attr:`latency` = 1: the start bit is on ``tx`` the cycle after the transfer.
    Throughput: one byte per ``10 * divisor`` cycles while ``data`` stays valid
    (the raw byte rate of the line, ``clock / (10 * divisor)`` bytes/s).
    """

    latency = 1

    @classmethod
    def check_parameters(cls, divisor):
        check_int("divisor", divisor, MIN_DIVISOR, MAX_DIVISOR)

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({
            "data": In(stream.Signature(8)),
            "tx": Out(1, init=1),
        })

    @staticmethod
    def frame(byte):
        """The ten bits of ``byte``'s frame, in line order."""
        return [0] + [(byte >> i) & 1 for i in range(8)] + [1]

    @staticmethod
    def model(divisor, data):
        """The line for ``data`` (bytes) sent back to back: one sample per clock cycle,
        ``10 * divisor`` samples per byte, starting with the first start bit (the
        cycle after the first transfer)."""
        check_int("divisor", divisor, MIN_DIVISOR, MAX_DIVISOR)
        bits = [b for byte in data for b in UartTx.frame(int(byte) & 0xFF)]
        return np.repeat(np.array(bits, dtype=np.uint8), divisor)

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        busy = Signal()
        left = Signal(range(FRAME_BITS))   # bits still to send after the current one
        cnt = Signal(range(div))
        shreg = Signal(9)                  # data bits then the stop bit

        last = (left == 0) & (cnt == 0)
        m.d.comb += self.data.ready.eq(~busy | last)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += [self.tx.eq(0), shreg.eq(self.data.payload | (1 << 8)),
                         left.eq(FRAME_BITS - 1), cnt.eq(div - 1), busy.eq(1)]
        with m.Elif(busy):
            with m.If(cnt != 0):
                m.d.sync += cnt.eq(cnt - 1)
            with m.Elif(left == 0):
                m.d.sync += busy.eq(0)     # the stop bit (1) stays on the line
            with m.Else():
                m.d.sync += [self.tx.eq(shreg[0]), shreg.eq(shreg >> 1),
                             left.eq(left - 1), cnt.eq(div - 1)]
        return m
