"""UART receiver, 8N1: a line pin in, a byte stream out (``docs/boards.md``)."""

import numpy as np
from amaranth.hdl import Module, Signal
from amaranth.lib import stream
from amaranth.lib.wiring import In, Out

from ..core.config import CheckedComponent, check_int

__all__ = ["UartRx", "SYNC_STAGES", "MIN_DIVISOR", "MAX_DIVISOR"]

# Two flip-flops between the pin and the logic: the pin changes with no relation to the
# clock, and one stage alone may resolve late enough to feed a metastable value to the FSM.
SYNC_STAGES = 2
# The first sample of a frame is taken (divisor - 1) // 2 cycles after the start bit is
# seen; below 4 that is no sample at all, and the half-bit margin is less than the
# 1-cycle uncertainty of where the edge fell.
MIN_DIVISOR = 4
MAX_DIVISOR = 1 << 20


class UartRx(CheckedComponent):
    """Receives 8N1 frames (start bit 0, eight data bits LSB first, stop bit 1) on ``rx``.

    Parameters
    ----------
    divisor : int
        Clock cycles per bit (clock frequency / baud rate), 4..2**20.

    Ports
    -----
    rx : In(1), idle high
        The line, asynchronous to the clock: it passes :data:`SYNC_STAGES` flip-flops first.
    data : Out(stream.Signature(8))
        One transfer per good frame. The byte is held until taken; a frame that ends
        while the previous byte is still waiting is dropped and counts in ``overruns``.
    frame_errors : Out(8)
        Frames whose stop bit was sampled low (the byte is dropped; the receiver then
        waits for the line to go high before it looks for the next start bit). Wraps.
    overruns : Out(8)
        Good frames dropped because ``data`` was not taken in time. Wraps.

    Timing
    ------
    The FSM sees the pin :data:`SYNC_STAGES` cycles late. On the first cycle it sees a
    low line (cycle ``E0``) it counts ``h = (divisor - 1) // 2`` cycles and samples the
    start bit (a high line there is a glitch: back to idle), then samples every
    ``divisor`` cycles: eight data bits and the stop bit, the centre of each bit in pin
    time. ``data.valid`` rises on cycle ``E0 + h + 9 * divisor + 1``: :attr:`latency`
    cycles after the start bit's edge reaches the FSM, about 9.5 bits after it is on the pin.
    Throughput: one byte per frame, back-to-back frames included; the receiver is idle
    again from the middle of the stop bit, so a transmitter up to ~5 % fast (at a
    large divisor) is still received; the 1-cycle sampling uncertainty takes
    ``1 / divisor`` of that margin (``docs/boards.md`` measures +-2 %).
    """

    @classmethod
    def check_parameters(cls, divisor):
        check_int("divisor", divisor, MIN_DIVISOR, MAX_DIVISOR)

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1),
            "data": Out(stream.Signature(8)),
            "frame_errors": Out(8),
            "overruns": Out(8),
        })

    @property
    def half(self):
        """Cycles from seeing the start edge to sampling the start bit."""
        return (self.divisor - 1) // 2

    @property
    def latency(self):
        """Cycles from the FSM seeing the start edge to ``data.valid``."""
        return self.latency_of(self.divisor)

    @staticmethod
    def latency_of(divisor):
        """:attr:`latency` of a receiver with ``divisor`` (no component needed)."""
        return (divisor - 1) // 2 + 9 * divisor + 1

    @staticmethod
    def model(divisor, line, ready=None):
        """What the receiver does with ``line`` (one pin sample per clock cycle, the
        value on the pin during that cycle), cycle by cycle.

        ``ready`` (optional, one bool per cycle) is ``data.ready``; default always ready.
        Returns ``(transfers, frame_errors, overruns)``: ``transfers`` a list of
        ``(cycle, byte)`` for each cycle on which ``data`` transfers a byte (valid and
        ready), ``frame_errors``/``overruns`` the lists of cycles on which each counter
        steps (its new value is visible the next cycle).
        """
        check_int("divisor", divisor, MIN_DIVISOR, MAX_DIVISOR)
        line = np.asarray(line, dtype=np.uint8)
        n = len(line)
        ready = np.ones(n, dtype=bool) if ready is None else np.asarray(ready, dtype=bool)
        half = (divisor - 1) // 2
        sync = [1] * SYNC_STAGES
        state, cnt, bit, shreg = "idle", 0, 0, 0
        valid, payload = False, 0
        transfers, ferr, ovr = [], [], []
        for c in range(n):
            s = sync[-1]
            # outputs of this cycle (registers before the edge)
            if valid and ready[c]:
                transfers.append((c, payload))
                taken = True
            else:
                taken = False
            # the clock edge at the end of cycle c
            new_valid = valid and not taken
            if state == "idle":
                if s == 0:
                    state, cnt = "start", half - 1
            elif cnt:
                cnt -= 1
            elif state == "start":
                state, cnt = ("data", divisor - 1) if s == 0 else ("idle", 0)
                bit = 0
            elif state == "data":
                shreg = (shreg >> 1) | (s << 7)
                bit += 1
                cnt = divisor - 1
                if bit == 8:
                    state = "stop"
            elif state == "stop":
                if s:
                    if new_valid:
                        ovr.append(c)
                    else:
                        new_valid, payload = True, shreg
                    state = "idle"
                else:
                    ferr.append(c)
                    state = "break"
            elif state == "break":
                if s:
                    state = "idle"
            valid = new_valid
            sync = [int(line[c])] + sync[:-1]
        return transfers, ferr, ovr

    def elaborate(self, platform):
        m = Module()
        div = self.divisor
        sync = Signal(SYNC_STAGES, init=(1 << SYNC_STAGES) - 1)
        m.d.sync += sync.eq(sync << 1 | self.rx)
        s = sync[-1]

        cnt = Signal(range(div))
        bit = Signal(range(9))
        shreg = Signal(8)
        frame = Signal()  # a good stop bit this cycle

        m.d.comb += frame.eq(0)
        with m.If(self.data.valid & self.data.ready):
            m.d.sync += self.data.valid.eq(0)
        with m.If(frame):
            with m.If(self.data.valid & ~self.data.ready):
                m.d.sync += self.overruns.eq(self.overruns + 1)
            with m.Else():
                m.d.sync += [self.data.valid.eq(1), self.data.payload.eq(shreg)]

        with m.FSM(name="uart_rx"):
            with m.State("Idle"):
                with m.If(~s):
                    m.d.sync += cnt.eq(self.half - 1)
                    m.next = "Start"
            with m.State("Start"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Elif(s):
                    m.next = "Idle"          # a glitch, not a start bit
                with m.Else():
                    m.d.sync += [cnt.eq(div - 1), bit.eq(0)]
                    m.next = "Data"
            with m.State("Data"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Else():
                    m.d.sync += [shreg.eq(s << 7 | shreg >> 1), bit.eq(bit + 1),
                                 cnt.eq(div - 1)]
                    with m.If(bit == 7):
                        m.next = "Stop"
            with m.State("Stop"):
                with m.If(cnt != 0):
                    m.d.sync += cnt.eq(cnt - 1)
                with m.Elif(s):
                    m.d.comb += frame.eq(1)
                    m.next = "Idle"
                with m.Else():
                    m.d.sync += self.frame_errors.eq(self.frame_errors + 1)
                    m.next = "Break"
            with m.State("Break"):
                with m.If(s):
                    m.next = "Idle"
        return m
