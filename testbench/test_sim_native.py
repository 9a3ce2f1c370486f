"""``ganpu sim``: the native simulator of config ``small`` (built once, cached under
``GANPU_BUILD``) serving the real host driver over ``socket://``: PING, GBUF writes and
reads, a program checked against :meth:`Processor.model`, a second client after the
first, clean exits on SIGTERM and SIGINT, and the errors a user can meet (a port
already in use, bad arguments)."""

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import harness
from ganpu.host.link import connect
from ganpu.processor import config
from ganpu.processor.program import Policy, State
from ganpu.sim import native
from ganpu.sim.bench_sim import synthetic_program

ROOT = Path(__file__).resolve().parent.parent
CFG = config("small")


@pytest.fixture(scope="module")
def binary():
    harness.setup_verilator()
    path, _ = native.build("small", build_dir=harness.build_root())
    return path


def test_driver_over_socket(binary):
    rng = np.random.default_rng(7)
    with native.Server(binary) as server:
        assert server.url.startswith("socket://127.0.0.1:")
        with connect(server.url, "small", timeout=20.0) as npu:
            info = npu.ping()
            assert info["cores"] == CFG.cores and info["gbuf_bits"] == CFG.gbuf_bits
            words = rng.integers(0, 1 << 16, 700, dtype=np.uint16)
            npu.write_gbuf(3000, words)
            np.testing.assert_array_equal(npu.read_gbuf(3000, len(words)), words)
            gbuf, records = synthetic_program(CFG, seed=1)
            gbuf[3000:3700] = words
            npu.write_gbuf(0, gbuf[:2000])
            npu.run(records[:4], Policy.SPATIAL, polls=10**5, interval=0)
            assert npu.state() == State.DONE
            from ganpu.processor.processor import Processor
            _, _, _, want = Processor.model(CFG, gbuf.copy(), records[:4])
            np.testing.assert_array_equal(npu.read_gbuf(0, CFG.gbuf_depth), want)
        # a second client finds the processor as the first left it
        with connect(server.url, "small", timeout=20.0) as npu:
            np.testing.assert_array_equal(npu.read_gbuf(3000, len(words)), words)
        sessions = server.wait_sessions(2)
        assert len(sessions) == 2 and all(c > 0 for c, _ in sessions)
        # each session's cycles by processor state add up to its cycles; the first
        # checked and ran the program, moved link bytes, and ended in DONE
        first, second = server.breakdown
        for (cycles, _), b in zip(sessions, server.breakdown):
            assert sum(b[k] for k in native.BREAKDOWN[:6]) == cycles and 0 < b["link"] <= cycles
        assert first["checking"] > 0 and first["running"] > 0 and first["done"] > 0
        assert second["checking"] == second["running"] == 0 and second["error"] == 0
        assert server.stop() == 0
    assert server.total is not None and server.total[0] >= sum(c for c, _ in sessions)


@pytest.mark.parametrize("ratio, linger", [(1, None), (4, None), (4, 1)])
def test_traffic_with_faults_over_socket(binary, ratio, linger):
    """Random requests of every kind, some corrupted, truncated, unknown or across the
    GBUF's end, with garbage between them, sent in one go: the answer bytes equal
    ``Framer.model``'s on the memory map model, at link/core clock ratios 1 and 4
    (4 once with ``--linger 1``: the link drops to one tick per core cycle whenever a
    core cycle moved no byte, so the ratio changes all the time).
    (Link timeouts are not in it: the simulator stops time on a quiet link; the cocotb
    benches cover them.)"""
    import random
    import threading
    from ganpu.link.framer import Framer
    from tb_link_traffic import MapModel, traffic

    items = [b for b in traffic(CFG, random.Random(11 + ratio), 120) if b is not None]
    want = Framer.model(CFG, items, MapModel(CFG))
    with native.Server(binary, ratio=ratio, linger=linger) as server:
        sock = socket.create_connection((server.host, server.port), timeout=30)
        got = bytearray()

        def reader():
            while len(got) < len(want):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    return
                got.extend(chunk)

        th = threading.Thread(target=reader)
        th.start()
        sock.sendall(bytes(items))
        th.join(60)
        sock.close()
    assert bytes(got) == want, (f"{len(got)} answer bytes, expected {len(want)}; first "
                                f"difference at {next((i for i, (x, y) in enumerate(zip(got, want)) if x != y), None)}")


def test_time_stops_when_every_request_is_answered(binary):
    """With every request answered and no program running, simulated time stops after
    ``--settle`` cycles (default 8) until the client speaks: each of 40 PINGs costs a
    few dozen cycles (the frame's own) before time stops, however long the host then
    thinks; ``--settle 0`` runs on after each answer until the ``--idle`` rule (4096
    quiet cycles) stops it. After each PING the test waits for the stop itself
    (:meth:`Server.snapshot`), so the figures do not depend on the machine's speed."""
    import time
    deltas = {}
    for settle in (None, 0):
        with native.Server(binary, settle=settle) as server:
            with connect(server.url, "small", timeout=20.0) as npu:

                def stopped_after(before):
                    deadline = time.monotonic() + 30
                    while True:
                        snap = server.snapshot()
                        if snap["stops"] > before["stops"]:
                            return snap
                        assert time.monotonic() < deadline, f"time did not stop: {snap}"
                        time.sleep(0.005)

                npu.ping()
                s0 = stopped_after({"stops": 0})
                snap = s0
                for _ in range(40):
                    npu.ping()
                    snap = stopped_after(snap)
                s1 = snap
            assert sum(s1[k] for k in native.BREAKDOWN[:6]) == s1["cycles"]
            deltas[settle] = s1["cycles"] - s0["cycles"]
    assert deltas[None] <= 40 * 150, deltas
    assert deltas[0] >= 40 * 4096, deltas


def test_sigint_exits_cleanly(binary):
    server = native.Server(binary).start()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(10) == 0
    assert server.stop() == 0
    assert server.total is not None


def _busy_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s, s.getsockname()[1]


def test_port_in_use(binary):
    s, port = _busy_port()
    try:
        with pytest.raises(native.ServerError,
                           match=rf"cannot listen on 127.0.0.1:{port}: Address already in use "
                                 r"\(another program has this port; pick another with --port, "
                                 r"or --port 0 for a free one\)"):
            native.Server(binary, port=port).start()
        # the same through the CLI (the cached build starts without generating Verilog)
        r = subprocess.run([sys.executable, "-m", "ganpu", "sim", "--port", str(port)],
                           capture_output=True, text=True, cwd=ROOT, timeout=300,
                           env=dict(os.environ, GANPU_BUILD=str(harness.build_root())))
        assert r.returncode == 3
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in r.stderr
        assert "cached build" in r.stdout
    finally:
        s.close()


def test_cli_argument_messages(capsys):
    from ganpu.cli import main
    for args, msg in [(["--port", "70000"], "expected a TCP port 0..65535, not '70000'"),
                      (["--config", "huge"], "Unknown processor config 'huge'; valid names: sim, small"),
                      (["--poll", "0"], "expected a positive integer, not '0'"),
                      (["--ratio", "17"], "expected link clock cycles per core cycle 1..16, not '17'"),
                      (["--linger", "-1"], "expected a non-negative integer, not '-1'"),
                      (["--settle", "x"], "expected a non-negative integer, not 'x'")]:
        with pytest.raises(SystemExit):
            main(["sim", *args])
        assert msg in capsys.readouterr().err
