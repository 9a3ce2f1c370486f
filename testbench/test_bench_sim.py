"""``ganpu bench sim``'s helpers that need no simulator build: the simulator's session
line with its per-state breakdown (``native._STATS``, ``native._breakdown``) and a
process's CPU seconds from ``/proc`` (``bench_sim._proc_cpu``, the step's simulator
CPU); the figures themselves run in ``ganpu bench sim`` (``docs/sim.md``)."""

import os
import sys


from ganpu.sim import native
from ganpu.sim.bench_sim import _proc_cpu


def test_session_line_breakdown():
    line = ("ganpu sim: client 2 closed: 1000 cycles, 0.500 s running, 2000 cycles/s, "
            "0.400 s CPU; idle 100, checking 7, running 800, paused 50, done 43, error 0, "
            "link 120, stops 3")
    m = native._STATS.match(line)
    assert m.group(1) == "client 2 closed" and int(m.group(2)) == 1000
    b = native._breakdown(m.group(6))
    assert b == {"idle": 100, "checking": 7, "running": 800, "paused": 50, "done": 43,
                 "error": 0, "link": 120, "stops": 3}
    assert sum(b[k] for k in native.BREAKDOWN[:6]) == 1000
    # a line of an older binary, without the breakdown, still parses
    old = native._STATS.match("ganpu sim: stopped: 5 cycles, 1.000 s running, 5 cycles/s, 0.1 s CPU")
    assert old.group(1) == "stopped" and native._breakdown(old.group(6)) == {}


def test_proc_cpu():
    if not sys.platform.startswith("linux"):
        # no /proc: the bench reports the simulator's CPU as unknown, never a wrong figure
        assert _proc_cpu(os.getpid()) is None
        return
    t0 = _proc_cpu(os.getpid())
    x = 0
    for i in range(300_000):
        x += i * i
    t1 = _proc_cpu(os.getpid())
    assert t0 is not None and t1 >= t0 >= 0
    assert _proc_cpu(2 ** 31 - 1) is None


def test_snapshot_line_and_server_kw_message():
    """A SIGUSR1 line (``client N so far``) is a snapshot, not a closed session; the
    trainer's ``server_kw`` is for the simulator only."""
    import pytest
    from ganpu.gan import GAN, TrainConfig
    from ganpu.gan.train import DeviceTrainer
    m = native._STATS.match("ganpu sim: client 1 so far: 70 cycles, 0.001 s running, 70000 "
                            "cycles/s, 0.010 s CPU; idle 60, checking 0, running 0, paused 0, "
                            "done 10, error 0, link 20, stops 2")
    assert m.group(1).endswith(" so far") and native._breakdown(m.group(6))["stops"] == 2
    with pytest.raises(ValueError, match="server_kw is for device 'sim', got device 'model'"):
        DeviceTrainer(GAN(TrainConfig(batch=2)), "model", server_kw={"ratio": 4})
