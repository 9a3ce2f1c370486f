import inspect

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ..core.config import check_int

__all__ = ["PackedCopies"]


def _port_widths(block):
    """``{name: (flow, width)}`` of ``block``'s ports, read from its class annotations
    (where a fixed-port component declares them), so no instance has to be built."""
    if not (isinstance(block, type) and issubclass(block, wiring.Component)):
        raise TypeError(f"block must be a wiring.Component subclass, not {block!r}")
    ports = {}
    for cls in reversed(block.__mro__):
        for name, member in inspect.get_annotations(cls).items():
            if isinstance(member, wiring.Member) and not name.startswith("_"):
                if not member.is_port or not isinstance(member.shape, int):
                    raise TypeError(f"PackedCopies packs plain integer-width ports only; "
                                    f"{block.__name__}.{name} is {member!r}")
                ports[name] = (member.flow, member.shape)
    if not ports:
        raise TypeError(f"block {block.__name__} declares no ports as class annotations")
    return ports


class PackedCopies(wiring.Component):
    """``count`` copies of a free-running pipeline with every port packed side by side:
    a test port packer, not a MAC lane.

    Port ``x`` of the packed component is ``count`` times as wide as the block's ``x``;
    copy ``n`` owns bits ``[n*w, (n+1)*w)``. Testbenches use it to push many vectors per
    simulator call: the cost of a cocotb signal access does not depend on its width.

    Latency and throughput are those of the block (``latency`` is the block's).

    Parameters
    ----------
    block : type
        A :class:`wiring.Component` subclass with a ``latency``, constructed without
        arguments, whose ports are class annotations ``In(w)`` / ``Out(w)`` with
        integer ``w`` (the arithmetic pipelines of :mod:`ganpu.arith`).
    count : int
        Number of copies, at least 1.
    """

    @staticmethod
    def _checked(block, count):
        return _port_widths(block), check_int("count", count, 1)

    def __new__(cls, *args, **kwargs):
        # Refuse bad parameters before the component exists: nothing half-built is left
        # for Amaranth to report as "created but never used".
        cls._checked(*args, **kwargs)
        return super().__new__(cls, src_loc_at=1)

    def __init__(self, block, count):
        self._ports, self.count = self._checked(block, count)
        self.block = block
        self.latency = block.latency
        super().__init__({name: (In if flow == wiring.In else Out)(width * count)
                          for name, (flow, width) in self._ports.items()})

    def elaborate(self, platform):
        m = Module()
        for n in range(self.count):
            blk = m.submodules[f"copy{n}"] = self.block()
            for name, (flow, w) in self._ports.items():
                packed = getattr(self, name)[n * w:(n + 1) * w]
                port = getattr(blk, name)
                if flow == wiring.In:
                    m.d.comb += port.eq(packed)
                else:
                    m.d.comb += packed.eq(port)
        return m
