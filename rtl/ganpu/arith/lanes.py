from amaranth.hdl import Module, Cat
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["Lanes"]


class Lanes(wiring.Component):
    """``count`` copies of a free-running pipeline with every port packed side by side.

    Port ``x`` of the packed component is ``count`` times as wide as the block's ``x``;
    lane ``n`` owns bits ``[n*w, (n+1)*w)``. Testbenches use it to push many vectors per
    simulator call: the cost of a cocotb signal access does not depend on its width.

    Latency and throughput are those of the block.

    Parameters
    ----------
    factory : callable
        Makes one block (a :class:`wiring.Component` whose ports are plain ``In(w)`` /
        ``Out(w)`` members).
    count : int
        Number of lanes, at least 1.
    """

    def __init__(self, factory, count):
        if not isinstance(count, int) or count < 1:
            self._MustUse__silence = True  # refused: never to be elaborated
            raise ValueError(f"Lane count must be a positive integer, not {count!r}")
        self._factory = factory
        self.count = count
        proto = factory()
        # The prototype is only read for its signature; it is never elaborated.
        proto._MustUse__silence = True
        self.latency = proto.latency
        members = {}
        for name, member in proto.signature.members.items():
            if not member.is_port or not isinstance(member.shape, int):
                raise TypeError(f"Lanes packs plain integer-width ports only; {name!r} is {member!r}")
            members[name] = (In if member.flow == wiring.In else Out)(member.shape * count)
        self._widths = {name: member.shape for name, member in proto.signature.members.items()}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        for n in range(self.count):
            blk = m.submodules[f"lane{n}"] = self._factory()
            for name, w in self._widths.items():
                packed = getattr(self, name)[n * w:(n + 1) * w]
                port = getattr(blk, name)
                if blk.signature.members[name].flow == wiring.In:
                    m.d.comb += port.eq(packed)
                else:
                    m.d.comb += packed.eq(port)
        return m
