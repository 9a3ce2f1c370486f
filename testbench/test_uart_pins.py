"""The real host driver against the processor at its UART pins (``tb_pins``), on both
simulators: Icarus at the smallest divisor and no bulk transfer, Verilator at the
ULX3S's divisor (30 MHz / 3 Mbaud) with bulk writes and reads timed, whose throughput
must reach 85 % of the raw UART byte rate (``docs/boards.md``)."""

import json

import numpy as np
import pytest

import harness
from ganpu.link.system import LinkedProcessor
from ganpu.link.uart_link import UartLink

# (divisor, bulk words): the ULX3S runs at divisor 10
RUNS = {"icarus": (4, 0), "verilator": (10, 512)}
GOAL = 0.85


def _real_words():
    from ganpu.gan.data import load_digits_scaled
    x, _ = load_digits_scaled()
    return x[:4].astype(np.float16).view(np.uint16).ravel()


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_driver_at_pins(sim, tmp_path):
    div, bulk = RUNS[sim]
    results = tmp_path / "pins.json"
    harness.run(sim, UartLink(LinkedProcessor("small"), div), f"ganpu_uart_small_d{div}", "tb_pins",
                env={"GANPU_UART_DIVISOR": div, "GANPU_BULK_WORDS": int(bulk * harness.scale()),
                     "GANPU_PINS_REAL": _real_words().tobytes().hex(), "GANPU_RESULTS": results})
    figures = json.loads(results.read_text())
    for what in ("write", "read"):
        if what in figures:
            frac = figures[what]["fraction_of_raw"]
            assert frac >= GOAL, (f"bulk {what}: {figures[what]['bytes_per_s']:.0f} bytes/s is "
                                  f"{frac:.1%} of the raw {figures['raw_bytes_per_s']:.0f}")
