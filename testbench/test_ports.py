"""The core's port signatures and constructor: parameters refused with their value shown,
members and their Verilog names as the drivers expect them."""

import pytest

from ganpu.core import Core, CoreConfig, HostPort, TaskPort


def test_port_parameters():
    with pytest.raises(TypeError, match=r"config must be a CoreConfig, not 'default'"):
        HostPort("default")
    with pytest.raises(TypeError, match=r"config must be a CoreConfig, not 4"):
        TaskPort(4)
    with pytest.raises(TypeError, match=r"config must be a CoreConfig, not 4"):
        Core(4)


def test_port_members():
    cfg = CoreConfig()
    assert set(HostPort(cfg).members) == {"buf", "addr", "we", "wdata", "rdata", "err"}
    assert set(TaskPort(cfg).members) == {"desc", "start", "busy", "error", "cycles", "eors_cycles",
                                          "eors_live", "eors_false_live", "eors_sampled",
                                          "eors_false_zero"}
    assert HostPort(cfg) == HostPort(CoreConfig()) and TaskPort(cfg) != HostPort(cfg)
    assert Core.read_latency == HostPort.read_latency == 4
