"""Round-robin merge of the lanes' and the scanner's result streams."""

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring, stream
from amaranth.lib.wiring import In, Out

from .config import Geometry, check_int, check_type, CheckedComponent
from .scanner import result_layout

__all__ = ["Merge"]


class Merge(CheckedComponent):
    """Round-robin merge of ``count`` result streams into one (one result per cycle).

    Each cycle the lowest-numbered valid input at or after the round-robin pointer is
    granted (its ``ready`` is 1 in that cycle) and the pointer moves past it. The output
    is registered, so the grant never sits on a path from the consumer; the consumer
    (the epilogue) is always ready and ``o.ready`` is ignored. Latency :attr:`latency`
    = 1 cycle from a grant to ``o.valid``.

    Contract (:meth:`model`): the output is an interleaving of the inputs that keeps
    each input's order, and every input item appears exactly once; :meth:`model` is
    the cycle-exact grant sequence for given per-cycle ``valid`` offers.

    Parameters
    ----------
    geom : Geometry
    count : int
        Number of inputs, >= 1.

    Ports
    -----
    i : In(stream.Signature(result_layout)).array(count)
    o : Out(stream.Signature(result_layout))
    """

    latency = 1

    @classmethod
    def check_parameters(cls, geom, count):
        check_type("geom", geom, Geometry)
        check_int("count", count, 1)

    def __init__(self, geom, count):
        self.count = count
        sig = stream.Signature(result_layout(geom))
        super().__init__({"i": In(sig).array(count), "o": Out(sig)})

    @staticmethod
    def model(queues, ptr=0):
        """The merged order of ``queues`` (one list of items per input, every item
        offered from cycle 0): a list of ``(input, item)`` pairs as the hardware
        grants them, one per cycle. ``ptr`` is the round-robin pointer at the start
        (0 after reset; one past the last granted input otherwise)."""
        count = len(queues)
        pos = [0] * count
        out = []
        while any(pos[n] < len(q) for n, q in enumerate(queues)):
            for k in range(count):
                n = (ptr + k) % count
                if pos[n] < len(queues[n]):
                    out.append((n, queues[n][pos[n]]))
                    pos[n] += 1
                    ptr = (n + 1) % count
                    break
        return out

    def elaborate(self, platform):
        m = Module()
        ins = list(self.i)
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
