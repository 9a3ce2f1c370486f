"""The iCEBreaker top: the link at 3 Mbaud on the FT2232H's second channel, a GBUF
behind it, LEDs and the user button as reset (``docs/boards.md``; pins and clocks:
``constraints/icebreaker.txt``).

No compute config fits the UP5K (5,280 LUT4s): the smallest one, config
``icebreaker`` (one core with one MAC lane and two EORS lanes), needs several times
that (``docs/boards.md`` has the measurement), so this top is
:class:`~ganpu.boards.linked_memory.LinkedMemory`: the framer on that config's GBUF.
"""

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Module
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer

from .board_link import BoardLink
from .status import LED_NAMES

__all__ = ["IcebreakerTop", "CLOCK_HZ", "BAUD", "CONFIG", "RESET_BUTTON", "LEDS"]

CLOCK_HZ = 12_000_000    # the board's oscillator (pin 35), used directly: divisor 4
BAUD = 3_000_000
CONFIG = "icebreaker"
RESET_BUTTON = ("button", 0)
# the two LEDs on the board: red = error (processor or link), green = link activity
LEDS = {"led_r": ("error", "link_error"), "led_g": ("rx", "tx")}


class IcebreakerTop(wiring.Component):
    """Board top for the iCEBreaker.

    ``inner`` is the device behind the UART (default
    :class:`~ganpu.boards.linked_memory.LinkedMemory` of config ``cfg``, made at
    elaboration). The red LED is lit on a processor error or a link error (sticky), the
    green one on link activity; the user button resets everything.
    """

    def __init__(self, inner=None, cfg=CONFIG, baud=BAUD):
        self.inner, self.cfg, self.baud = inner, cfg, baud
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        inner = self.inner
        if inner is None:
            from .linked_memory import LinkedMemory
            inner = LinkedMemory(self.cfg)

        m.submodules.clk12 = clk12 = io.Buffer("i", platform.request("clk12", 0, dir="-"))
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk12.i)
        m.submodules.reset_button = btn = io.Buffer("i", platform.request(*RESET_BUTTON, dir="-"))
        m.submodules.reset_sync = ResetSynchronizer(btn.i, domain="sync")

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)

        m.submodules.board = board = BoardLink(inner, CLOCK_HZ, self.baud)
        m.d.comb += [board.rx.eq(rx.i), tx.o.eq(board.tx)]
        for pin, names in LEDS.items():
            m.submodules[pin] = led = io.Buffer("o", platform.request(pin, 0, dir="-"))
            m.d.comb += led.o.eq(Cat(board.leds[LED_NAMES.index(n)] for n in names).any())
        return m
