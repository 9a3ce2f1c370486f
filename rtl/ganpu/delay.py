"""Delay lines: the one way a value travels beside a pipeline.

Blocks carry control and addresses beside their arithmetic (a MAC's output address,
an epilogue's side data, a read's buffer select) through ``n`` registers; this module
is the single definition of that, so every such line is built and named the same way.
"""

from amaranth.hdl import Signal

__all__ = ["delay_line", "delay"]


def delay_line(m, value, cycles, *, name="dly", domain="sync"):
    """Registers ``value`` through ``cycles`` stages of ``m``'s ``domain``.

    Returns a list of ``cycles + 1`` values: element ``i`` is ``value`` delayed by ``i``
    cycles (element 0 is ``value`` itself), each stage a :class:`Signal` shaped like
    ``value`` and named ``{name}{i}``.
    """
    if isinstance(cycles, bool) or not isinstance(cycles, int) or cycles < 0:
        raise ValueError(f"cycles must be a non-negative int, not {cycles!r}")
    stages = [value]
    for i in range(1, cycles + 1):
        stage = Signal.like(value, name=f"{name}{i}")
        m.d[domain] += stage.eq(stages[-1])
        stages.append(stage)
    return stages


def delay(m, value, cycles, *, name="dly", domain="sync"):
    """``value`` delayed by ``cycles`` registers (``value`` itself when ``cycles`` is 0)."""
    return delay_line(m, value, cycles, name=name, domain=domain)[-1]
