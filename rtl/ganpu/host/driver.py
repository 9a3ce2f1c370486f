"""The typed host driver of one compute core, over any :class:`~ganpu.host.transport.Transport`.

The driver speaks buffers by name (``"a"``, ``"mask_in"``, ... or :class:`Buf`) and
descriptors as dicts of fields (``ganpu.host.lower``); it packs descriptors with the
hardware's own layout and keeps a *shadow*: what the core's buffers hold, as far as the
host knows (every write, and the model's result of every checked task). The shadow is
what :func:`ganpu.core.model.run_task` runs on, so :meth:`CoreDriver.run_checked`
compares the core with its model bit for bit. It never imports cocotb: the same driver
runs on a cocotb bench (:class:`ganpu.sim.cocotb_transport.CocotbTransport`) and on
any later link.
"""

import numpy as np

from ..core import model
from ..core.config import Buf, CoreConfig, DEFAULT_CORE, check_type
from ..core.descriptor import Error
from .lower import pack_desc
from .transport import Transport

__all__ = ["CoreDriver", "ModelMismatch", "TASK_WRITES", "DEFAULT_TIMEOUT"]

# the buffers a task can write (MASK_IN: an EORS task leaves its prediction there)
TASK_WRITES = (Buf.OUT, Buf.MASK_OUT, Buf.MASK_IN)

# clock cycles a task may take before the driver gives up on it (the largest task of
# the default geometry takes well under a million)
DEFAULT_TIMEOUT = 2_000_000


class ModelMismatch(AssertionError):
    """The core's error code or a buffer differs from the model's."""


def _buf(buf):
    return buf if isinstance(buf, Buf) else Buf.from_name(buf)


class CoreDriver:
    """Host driver of one core.

    Parameters
    ----------
    transport : Transport
        The link to the core.
    config : CoreConfig
        The core's configuration (buffer depths, EORS lanes and arithmetic for the model).

    Attributes
    ----------
    shadow : dict of str -> ndarray of uint16
        The host's image of every buffer, keyed by lower-case buffer name
        (:meth:`CoreConfig.zero_buffers`); starts all zero: call :meth:`sync` to take
        the buffers a task writes from the hardware (block RAM survives a reset).
    """

    def __init__(self, transport, config=DEFAULT_CORE):
        self.transport = check_type("transport", transport, Transport)
        self.config = check_type("config", config, CoreConfig)
        self.shadow = config.zero_buffers()

    def pack(self, desc):
        """The descriptor dict as the integer the task port takes."""
        return pack_desc(desc, self.config.geom)

    def _range(self, buf, base, count):
        depth = self.config.depth(buf)
        if not (0 <= base and count >= 0 and base + count <= depth):
            raise ValueError(f"{buf.name.lower()}[{base!r}:{base + count!r}] is outside the "
                             f"buffer's {depth} elements")

    async def write(self, buf, base, values):
        """Write ``values`` to buffer ``buf`` from element ``base`` (and to the shadow)."""
        buf = _buf(buf)
        values = np.asarray(values).astype(np.uint16).ravel()
        self._range(buf, base, len(values))
        await self.transport.write(buf, base, values)
        self.shadow[buf.name.lower()][base:base + len(values)] = values

    async def read(self, buf, base=0, count=None):
        """``count`` elements (default: to the end) of buffer ``buf`` from ``base``."""
        buf = _buf(buf)
        count = self.config.depth(buf) - base if count is None else count
        self._range(buf, base, count)
        return np.asarray(await self.transport.read(buf, base, count), dtype=np.uint16)

    async def load(self, loads):
        """Write a task's ``loads`` (``{name: (base, values)}``, see ``ganpu.host.lower``)."""
        for name, (base, values) in loads.items():
            await self.write(name, base, values)

    async def sync(self, bufs=TASK_WRITES):
        """Take ``bufs`` (default: those a task writes) from the hardware into the shadow."""
        for buf in map(_buf, bufs):
            self.shadow[buf.name.lower()] = await self.read(buf)

    async def run(self, desc, timeout=DEFAULT_TIMEOUT):
        """Run one task; ``(Error, cycles)``. The shadow of the buffers a task writes is
        not updated: use :meth:`run_checked`, or :meth:`sync` afterwards."""
        return await self.transport.run(self.pack(desc), timeout)

    def expect(self, desc):
        """The model's ``(Error, buffers)`` for ``desc`` on the shadow."""
        return model.run_task(desc, self.shadow, self.config.geom, eors_params=self.config.eors,
                              eors_lanes=self.config.eors_lanes)

    async def run_checked(self, desc, what="task", timeout=DEFAULT_TIMEOUT):
        """Run ``desc`` and compare the error code and every buffer a task can write
        (whole) with the model; raises :class:`ModelMismatch` naming ``what``, else the
        shadow takes the result and ``(Error, cycles)`` is returned."""
        err, cycles = await self.run(desc, timeout)
        exp_err, exp = self.expect(desc)
        if err != exp_err:
            raise ModelMismatch(f"{what}: error {err!r}, model says {exp_err!r} for {desc}")
        for buf in TASK_WRITES:
            name = buf.name.lower()
            got = await self.read(buf)
            bad = np.nonzero(got != exp[name])[0]
            if len(bad):
                raise ModelMismatch(f"{what}: {len(bad)} mismatches in {name}, first at {bad[0]}: "
                                    f"got {got[bad[0]]:#x} expected {exp[name][bad[0]]:#x}; desc {desc}")
        self.shadow = exp
        return err, cycles

    async def run_tasks(self, tasks, timeout=DEFAULT_TIMEOUT):
        """Load and run ``[(name, desc, loads), ...]``, each checked against the model
        and required to be accepted; returns ``[{"name", "cycles"}, ...]``."""
        results = []
        for name, desc, loads in tasks:
            await self.load(loads)
            err, cycles = await self.run_checked(desc, name, timeout)
            if err != Error.OK:
                raise ModelMismatch(f"{name}: refused with {err!r}")
            results.append({"name": name, "cycles": cycles})
        return results

    async def read_output(self, desc):
        """A finished task's ``(out, mask_out)``, each (M, N), read back through OUT's
        strides and the mask's row-major bits."""
        M, N = desc["m"], desc["n"]
        idx = desc["o_base"] + np.arange(M)[:, None] * desc["o_sm"] + np.arange(N)[None, :] * desc["o_sn"]
        lo, hi = int(idx.min()), int(idx.max()) + 1
        out = (await self.read(Buf.OUT, lo, hi - lo))[idx - lo]
        mask = (await self.read(Buf.MASK_OUT, 0, M * N)).reshape(M, N).astype(bool)
        return out, mask
