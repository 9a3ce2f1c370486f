"""What the host driver needs from a link to one core: three async operations.

A :class:`Transport` moves buffer contents and starts tasks; it knows the wire (cocotb
signals in a bench, a serial link, a socket to ``ganpu sim``) but nothing of the
model or the descriptor's fields. :class:`ganpu.host.driver.CoreDriver` is written
against this interface only, so the same driver runs on every link; a multi-core
processor's transport adds a core index (or a GBUF address) to the same three calls.

Contract
--------
* ``write(buf, base, values)``: element ``base + i`` of buffer ``buf`` becomes
  ``values[i]`` (binary16 bits; bit 0 for the masks). Only while the core is idle.
* ``read(buf, base, count)``: elements ``base .. base+count-1`` as ``uint16``.
* ``run(desc_bits, timeout)``: start the task whose packed descriptor is ``desc_bits``
  (an int, ``descriptor_layout(geom).const(desc).as_bits()``), wait until the core is
  idle again and return ``(Error, cycles)``: the checker's verdict and the task's
  length in clock cycles. ``timeout`` is in clock cycles; a core still busy after it
  raises :class:`TimeoutError`.
"""

from abc import ABC, abstractmethod

__all__ = ["Transport"]


class Transport(ABC):
    """The link to one core; see the module doc for the contract of each call."""

    @abstractmethod
    async def write(self, buf, base, values):
        """Write ``values`` (uint16 array) to :class:`ganpu.core.Buf` ``buf`` from ``base``."""

    @abstractmethod
    async def read(self, buf, base, count):
        """``count`` elements of ``buf`` from ``base``, as a uint16 array."""

    @abstractmethod
    async def run(self, desc_bits, timeout):
        """Run one task; ``(Error, cycles)`` once the core is idle."""
