from amaranth.hdl import Module, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from .scanner import result_layout

__all__ = ["Merge"]


class Merge(wiring.Component):
    """Round-robin merge of ``count`` result streams into one (one result per cycle).

    The output is registered, so the grant never sits on a path from the consumer;
    the consumer (the epilogue) is always ready. Latency 1 cycle.

    Ports
    -----
    i0 .. i{count-1} : In(stream.Signature(result_layout))
    o : Out(stream.Signature(result_layout))
    """

    def __init__(self, geom, count):
        if not isinstance(count, int) or count < 1:
            self._MustUse__silence = True  # refused: never to be elaborated
            raise ValueError(f"Merge needs a positive number of inputs, not {count!r}")
        self.count = count
        sig = stream.Signature(result_layout(geom))
        super().__init__({**{f"i{n}": In(sig) for n in range(count)}, "o": Out(sig)})

    def elaborate(self, platform):
        m = Module()
        ins = [getattr(self, f"i{n}") for n in range(self.count)]
        ptr = Signal(range(self.count))
        grant = Signal(range(self.count))
        any_ = Signal()
        # lowest-numbered valid input at or after ptr wins: scan twice around the ring,
        # the last assignment taking priority
        for n in reversed(range(2 * self.count)):
            idx = n % self.count
            cond = ins[idx].valid if n >= self.count else ins[idx].valid & (idx >= ptr)
            with m.If(cond):
                m.d.comb += [grant.eq(idx), any_.eq(1)]
        for n, i in enumerate(ins):
            m.d.comb += i.ready.eq(any_ & (grant == n))
        m.d.sync += self.o.valid.eq(any_)
        with m.Switch(grant):
            for n, i in enumerate(ins):
                with m.Case(n):
                    m.d.sync += self.o.payload.eq(i.payload)
        with m.If(any_):
            m.d.sync += ptr.eq(grant + 1 if self.count > 1 else 0)
        return m
