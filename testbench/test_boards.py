"""Board tops without building them: each top elaborated on its platform (pins, clock
constraints and LEDs as ``constraints/`` says), the shared board logic in the Amaranth
simulator (a byte through the UART pins and back, the LEDs), the GBUF-only bus target
against its model, and the CLI's error messages. The bitstream builds themselves are
run by hand (``ganpu build``, figures in ``docs/boards.md``)."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from ganpu.boards import flow
from ganpu.boards.board_link import BoardLink
from ganpu.boards.bus_memory import BusMemory
from ganpu.boards.status import StatusLeds, LED_NAMES
from ganpu.link.uart_rx import UartRx
from ganpu.link.uart_tx import UartTx
from ganpu.processor import config
from ganpu.processor.program import State, Region, Csr, REGION_SHIFT

ROOT = Path(__file__).resolve().parent.parent


class Echo(wiring.Component):
    """A stand-in device: every byte comes back; its state is an input."""
    rx: In(stream.Signature(8))
    tx: Out(stream.Signature(8))
    state: Out(State)
    set_state: In(State)

    def elaborate(self, platform):
        m = Module()
        wiring.connect(m, wiring.flipped(self.rx), wiring.flipped(self.tx))
        m.d.comb += self.state.eq(self.set_state)
        return m


def constraints(board):
    """``{key: value}`` from ``constraints/<board>.txt`` (``key: value`` lines)."""
    out = {}
    for line in (ROOT / "constraints" / f"{board}.txt").read_text().splitlines():
        if ":" in line and not line.startswith("#"):
            k, v = line.split(":", 1)
            out[k.strip()] = v.strip()
    return out


def _prepare(board, top):
    return flow.make_platform(board).prepare(top, name="top")


def test_ulx3s_top_pins():
    from ganpu.boards.ulx3s import Ulx3sTop, CLOCK_HZ, BAUD
    c = constraints("ulx3s-85f")
    lpf = _prepare("ulx3s-85f", Ulx3sTop(Echo())).files["top.lpf"]
    site = dict(re.findall(r'LOCATE COMP "(\w+)" SITE "(\w+)"', lpf))
    assert site["uart_0__rx__io"] == c["uart rx"] and site["uart_0__tx__io"] == c["uart tx"]
    assert site["clk25_0__io"] == c["oscillator"].split()[0]
    assert site["button_fire_0__io"] == c["reset"].split()[0]
    leds = c["leds"].split()
    assert [site[f"led_{i}__io"] for i in range(8)] == leds
    assert c["led order"].split() == list(LED_NAMES)
    assert re.search(rf'FREQUENCY NET "clk\$\d+" {CLOCK_HZ:.1f} HZ', lpf), "no 30 MHz constraint"
    assert int(c["clock"].split()[0]) * 1_000_000 == CLOCK_HZ
    assert int(c["baud"]) == BAUD


def test_icebreaker_top_pins():
    from ganpu.boards.icebreaker import IcebreakerTop, CLOCK_HZ, BAUD, LEDS
    c = constraints("icebreaker")
    pcf = _prepare("icebreaker", IcebreakerTop(Echo())).files["top.pcf"]
    pins = dict(re.findall(r"set_io (\w+) (\w+)", pcf))
    assert pins["uart_0__rx__io"] == c["uart rx"] and pins["uart_0__tx__io"] == c["uart tx"]
    assert pins["clk12_0__io"] == c["oscillator"].split()[0]
    assert pins["button_0__io"] == c["reset"].split()[0]
    assert [pins["led_r_0__io"], pins["led_g_0__io"]] == c["leds"].split()
    assert c["led order"].split() == [f"{k}={'+'.join(v)}" for k, v in LEDS.items()]
    assert f"set_frequency clk12_0__io {CLOCK_HZ / 1e6:.1f}" in pcf
    assert int(c["baud"]) == BAUD


def test_icebreaker_default_top_elaborates():
    """The iCEBreaker's real device (framer + GBUF) elaborates on its platform."""
    from ganpu.boards.icebreaker import IcebreakerTop
    plan = _prepare("icebreaker", IcebreakerTop())
    assert "top.il" in plan.files


def _uart_line(div, data, stop=1):
    line = list(UartTx.model(div, data))
    if stop == 0:
        line[-div:] = [0] * div
    return line


def test_board_link_echo_and_leds():
    """A byte on the rx pin comes back on tx through the board's UART; rx/tx LEDs
    light for ``stretch`` cycles; a framing error sets ``link_error``; the state LEDs
    follow the device's state."""
    div = 4
    echo = Echo()
    dut = BoardLink(echo, clock_hz=40 * 50, baud=40 * 50 // div)   # stretch = 40 cycles
    led = {n: i for i, n in enumerate(LED_NAMES)}
    seen = {"tx_line": [], "leds": []}

    async def bench(ctx):
        ctx.set(dut.rx, 1)
        for s in State:
            ctx.set(echo.set_state, s)
            await ctx.tick().repeat(2)
            leds = ctx.get(dut.leds)
            want = StatusLeds.model(s)
            assert {k: bool(leds >> led[k] & 1) for k in want} == want, s
        line = [1] * 8 + _uart_line(div, [0xA5, 0x3C]) + [1] * 200 + _uart_line(div, [0x55], stop=0) \
            + [1] * 100
        for v in line:
            ctx.set(dut.rx, int(v))
            await ctx.tick()
            seen["tx_line"].append(ctx.get(dut.tx))
            seen["leds"].append(ctx.get(dut.leds))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    transfers, ferr, _ = UartRx.model(div, seen["tx_line"])
    assert [b for _, b in transfers] == [0xA5, 0x3C] and not ferr
    leds = np.array(seen["leds"])
    for name in ("rx", "tx"):
        lit = (leds >> led[name]) & 1
        assert lit.any() and not lit[-1], f"{name} LED never lit, or stays lit"
    err = (leds >> led["link_error"]) & 1
    first = int(np.argmax(err))
    assert err[first:].all() and not err[:first].any() and first > 200, "link_error not sticky"


def test_bus_memory_against_model():
    cfg = config("icebreaker")
    rng = np.random.default_rng(3)
    gbuf = np.zeros(cfg.gbuf_depth, dtype=np.uint16)
    reqs = []
    for _ in range(300):
        kind = rng.random()
        if kind < 0.7:
            addr = (Region.GBUF.value << REGION_SHIFT) | int(rng.integers(0, cfg.gbuf_depth + 4))
        elif kind < 0.85:
            addr = (Region.CSR.value << REGION_SHIFT) | int(rng.choice([Csr.STATE.value, Csr.CTRL.value]))
        else:
            addr = (int(rng.integers(1, 4)) << REGION_SHIFT) | int(rng.integers(0, 8))
        reqs.append((addr, int(rng.integers(0, 2)), int(rng.integers(0, 1 << 16))))
    want = [BusMemory.model(cfg, gbuf, *r) for r in reqs]
    dut = BusMemory(cfg)
    got = []

    async def bench(ctx):
        i = 0
        while len(got) < len(reqs):
            ready = bool(rng.random() < 0.7)
            ctx.set(dut.resp.ready, ready)
            if i < len(reqs):
                a, w, d = reqs[i]
                ctx.set(dut.req.payload, {"addr": a, "write": w, "data": d})
            ctx.set(dut.req.valid, i < len(reqs))
            take = i < len(reqs) and ctx.get(dut.req.ready)
            if ctx.get(dut.resp.valid) and ready:
                p = ctx.get(dut.resp.payload)
                got.append((int(p.data), int(p.error)))
            await ctx.tick()
            i += bool(take)
            assert ctx.get(dut.state) == State.IDLE

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert [(d if not e else 0, e) for d, e in got] == want


@pytest.mark.parametrize("cls,args,exc,msg", [
    (StatusLeds, (0, 10), ValueError, "stretch must be in 1..268435456, not 0"),
    (StatusLeds, (5, "x"), TypeError, "heartbeat must be an int, not 'x'"),
    (BusMemory, ("nope",), KeyError, "Unknown processor config 'nope'"),
])
def test_parameters_checked(cls, args, exc, msg):
    with pytest.raises(exc, match=msg):
        cls(*args)


@pytest.mark.parametrize("args,exc,msg", [
    ((object(), 3), ValueError, "divisor must be in 4..1048576, not 3"),
    ((object(), 4, 1), ValueError, "rx_fifo must be 0 or 2..65536, not 1"),
    ((object(), 4, -2), ValueError, r"rx_fifo must be in 0..65536, not -2"),
    ((object(), 4), TypeError, "inner must be a component with rx, tx and state ports, not <object"),
])
def test_uart_link_parameters(args, exc, msg):
    from ganpu.link.uart_link import UartLink
    with pytest.raises(exc, match=msg):
        UartLink(*args)


def test_board_link_refuses_baud():
    with pytest.raises(ValueError, match=r"baud 3000000 at clock 25000000 Hz: the nearest divisor 8"):
        BoardLink(object(), 25_000_000, 3_000_000)
    with pytest.raises(TypeError, match="inner must be a component with rx, tx and state ports, not 7"):
        BoardLink(7, 30_000_000, 3_000_000)


def _ganpu(*args, env=None):
    import os
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", "ganpu", *args], capture_output=True, text=True,
                          env=e, cwd=ROOT)


def test_cli_unknown_board():
    for cmd in ("build", "flash"):
        r = _ganpu(cmd, "--board", "de10")
        assert r.returncode == 2
        assert "unknown board 'de10'; valid boards: ulx3s-85f, icebreaker" in r.stderr


def test_cli_flash_errors(tmp_path):
    r = _ganpu("flash", "--board", "icebreaker", "--build-dir", str(tmp_path))
    assert r.returncode == 1
    assert f"no bitstream for icebreaker under {tmp_path}: run 'ganpu build --board icebreaker' first" \
        in r.stderr
    bit = tmp_path / "top.bin"
    bit.write_bytes(b"\0" * 16)
    r = _ganpu("flash", "--board", "icebreaker", "--bitstream", str(bit),
               env={"OPENFPGALOADER": "no-such-loader"})
    assert r.returncode == 1 and "openFPGALoader not found ($OPENFPGALOADER='no-such-loader')" in r.stderr
    fake = tmp_path / "fake-loader"
    fake.write_text("#!/bin/sh\necho 'unable to open ftdi device: -3 (device not found)'\nexit 1\n")
    fake.chmod(0o755)
    r = _ganpu("flash", "--board", "ulx3s-85f", "--bitstream", str(bit),
               env={"OPENFPGALOADER": str(fake)})
    assert r.returncode == 1
    assert "openFPGALoader could not program the ulx3s-85f (exit 1): is the board plugged in" in r.stderr
    assert "device not found" in r.stderr


def test_cli_build_tool_missing(tmp_path):
    r = _ganpu("build", "--board", "icebreaker", "--build-dir", str(tmp_path),
               env={"NEXTPNR_ICE40": "no-such-nextpnr"})
    assert r.returncode == 1 and "nextpnr-ice40 not found ($NEXTPNR_ICE40='no-such-nextpnr')" in r.stderr
