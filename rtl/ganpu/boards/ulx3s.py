"""The ULX3S-85F top: the processor behind a 3 Mbaud UART on the FTDI port, LEDs, a
reset button (``docs/boards.md``; pins and clocks: ``constraints/ulx3s-85f.txt``)."""

from amaranth.hdl import ClockDomain, ClockSignal, Instance, Module, Signal
from amaranth.lib import io, wiring
from amaranth.lib.cdc import ResetSynchronizer

from .board_link import BoardLink
from .status import LED_NAMES

__all__ = ["Ulx3sTop", "OSC_HZ", "CLOCK_HZ", "BAUD", "CONFIG", "PLL", "RESET_BUTTON"]

OSC_HZ = 25_000_000      # the board's oscillator (pin G2)
# 3 Mbaud (the FT231X's top rate) needs a clock that is a multiple of 3 MHz: 25 MHz
# gives divisor 8.33 (4 % off at 8). The PLL makes 30 MHz = 25 * 6 / 5: divisor 10 exact,
# and far below the processor's Fmax (docs/boards.md).
CLOCK_HZ = 30_000_000
BAUD = 3_000_000
CONFIG = "ulx3s-85f"
RESET_BUTTON = ("button_fire", 0)    # F1; the PWR button also powers the board
# EHXPLLL settings for 25 -> 30 MHz: PFD 25/5 = 5 MHz (>= 3.125), VCO 30 * 20 = 600 MHz
# (400..800), feedback from CLKOP divided by 6
PLL = {"CLKI_DIV": 5, "CLKFB_DIV": 6, "CLKOP_DIV": 20, "CLKOP_CPHASE": 9}


class Ulx3sTop(wiring.Component):
    """Board top for the ULX3S (85F).

    ``inner`` is the device behind the UART (default
    :class:`ganpu.link.system.LinkedProcessor` of config ``cfg``, made at elaboration).
    LEDs 0..7 show :data:`~ganpu.boards.status.LED_NAMES`; F1 resets everything
    (asynchronous assert, synchronous release, also held while the PLL is unlocked).
    """

    def __init__(self, inner=None, cfg=CONFIG, baud=BAUD):
        self.inner, self.cfg, self.baud = inner, cfg, baud
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        inner = self.inner
        if inner is None:
            from ..link.system import LinkedProcessor
            inner = LinkedProcessor(self.cfg)

        m.submodules.clk25 = clk25 = io.Buffer("i", platform.request("clk25", 0, dir="-"))
        locked, clk = Signal(), Signal()
        m.domains.sync = ClockDomain("sync")
        m.d.comb += ClockSignal("sync").eq(clk)
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=str(OSC_HZ // 1_000_000),
            a_FREQUENCY_PIN_CLKOP=str(CLOCK_HZ // 1_000_000),
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=PLL["CLKI_DIV"], p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=PLL["CLKOP_DIV"],
            p_CLKOP_CPHASE=PLL["CLKOP_CPHASE"], p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=PLL["CLKFB_DIV"],
            i_RST=0, i_STDBY=0, i_CLKI=clk25.i, o_CLKOP=clk,
            i_CLKFB=clk, i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1,
            i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked)
        platform.add_clock_constraint(clk, CLOCK_HZ)

        m.submodules.reset_button = btn = io.Buffer("i", platform.request(*RESET_BUTTON, dir="-"))
        m.submodules.reset_sync = ResetSynchronizer(~locked | btn.i, domain="sync")

        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        leds = []
        for i in range(len(LED_NAMES)):
            m.submodules[f"led{i}"] = led = io.Buffer("o", platform.request("led", i, dir="-"))
            leds.append(led)

        m.submodules.board = board = BoardLink(inner, CLOCK_HZ, self.baud)
        m.d.comb += [board.rx.eq(rx.i), tx.o.eq(board.tx)]
        m.d.comb += [led.o.eq(board.leds[i]) for i, led in enumerate(leds)]
        return m
