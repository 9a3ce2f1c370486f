"""What a board's LEDs show: the processor's state and the link's activity
(``docs/boards.md``)."""

from amaranth.hdl import Module, Signal
from amaranth.lib.wiring import In, Out

from ..core.config import CheckedComponent, check_int
from ..processor.program import State

__all__ = ["StatusLeds", "LED_NAMES"]

# the order of ``leds``: bit i of the port is LED_NAMES[i]
LED_NAMES = ("heartbeat", "idle", "running", "paused", "error", "rx", "tx", "link_error")


class StatusLeds(CheckedComponent):
    """Turns the processor's state and the link's byte pulses into LED levels.

    Parameters
    ----------
    stretch : int
        Cycles an activity LED stays lit after a byte (a byte lasts microseconds; the
        eye needs tens of milliseconds), 1..2**28.
    heartbeat : int
        Half-period of the heartbeat LED in cycles (proof the clock runs), 1..2**28.

    Ports
    -----
    state : In(State)
    rx_byte, tx_byte : In(1)   one-cycle pulses per byte received / sent
    link_error : In(1)         pulse: a framing error or an overrun on the UART
    leds : Out(8)              one bit per :data:`LED_NAMES` entry: ``heartbeat``
                               toggles every ``heartbeat`` cycles; ``idle`` in IDLE or
                               DONE; ``running`` in CHECKING or RUNNING; ``paused``;
                               ``error`` in ERROR; ``rx``/``tx`` lit for ``stretch``
                               cycles after a byte; ``link_error`` sticky until reset

    Latency: 1 cycle from an input to ``leds`` (every LED is a flip-flop).
    """

    latency = 1

    @classmethod
    def check_parameters(cls, stretch, heartbeat):
        check_int("stretch", stretch, 1, 1 << 28)
        check_int("heartbeat", heartbeat, 1, 1 << 28)

    def __init__(self, stretch, heartbeat):
        self.stretch, self.heartbeat = stretch, heartbeat
        super().__init__({"state": In(State), "rx_byte": In(1), "tx_byte": In(1),
                          "link_error": In(1), "leds": Out(len(LED_NAMES))})

    @staticmethod
    def model(state):
        """The state LEDs (``idle``, ``running``, ``paused``, ``error``) for ``state``."""
        state = State(state)
        return {"idle": state in (State.IDLE, State.DONE),
                "running": state in (State.CHECKING, State.RUNNING),
                "paused": state == State.PAUSED, "error": state == State.ERROR}

    def elaborate(self, platform):
        m = Module()
        led = {name: self.leds[i] for i, name in enumerate(LED_NAMES)}
        beat = Signal(range(self.heartbeat))
        with m.If(beat == self.heartbeat - 1):
            m.d.sync += [beat.eq(0), led["heartbeat"].eq(~led["heartbeat"])]
        with m.Else():
            m.d.sync += beat.eq(beat + 1)
        s = self.state
        m.d.sync += [led["idle"].eq((s == State.IDLE) | (s == State.DONE)),
                     led["running"].eq((s == State.CHECKING) | (s == State.RUNNING)),
                     led["paused"].eq(s == State.PAUSED),
                     led["error"].eq(s == State.ERROR)]
        for name, pulse in (("rx", self.rx_byte), ("tx", self.tx_byte)):
            left = Signal(range(self.stretch + 1), name=f"{name}_left")
            with m.If(pulse):
                m.d.sync += left.eq(self.stretch)
            with m.Elif(left != 0):
                m.d.sync += left.eq(left - 1)
            m.d.sync += led[name].eq(pulse | (left > 1))
        with m.If(self.link_error):
            m.d.sync += led["link_error"].eq(1)
        return m
