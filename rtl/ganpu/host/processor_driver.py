"""The typed host driver of the processor, over any :class:`BusTransport`
(``docs/processor.md``).

The driver speaks the processor's memory map by name: GBUF word ranges, task records
(dicts of :func:`~ganpu.processor.program.task_layout` fields, packed with the layout),
the run's :class:`~ganpu.processor.program.Policy`, start, resume, status and counters.
It never imports cocotb: the same driver runs on a cocotb bench
(:class:`ganpu.sim.cocotb_bus.CocotbBusTransport` on the bus ports), on the host link
(:class:`ganpu.host.link.LinkBusTransport`, ``docs/link.md``: a board's serial port,
``ganpu sim``'s socket, or a bench's byte channel) and on any link that carries bus
requests. Word ranges go to the transport as one list, so a link can send them as
bursts; :func:`ganpu.host.link.connect` gives a blocking driver for scripts.
"""

from abc import ABC, abstractmethod

import numpy as np

from ..core.config import check_type
from ..core.descriptor import Error
from ..processor.config import ProcessorConfig
from ..processor.model import record_bus_words
from ..processor.program import (Region, Csr, State, Policy, ProgramError, REGION_SHIFT,
                                 record_words, EORS_SLOTS, EORS_BANK_WORDS)

__all__ = ["BusTransport", "ProcessorDriver", "BusError", "ProgramFailed", "DEFAULT_POLLS"]

DEFAULT_POLLS = 20000


class BusTransport(ABC):
    """A link that carries one bus request and returns its response."""

    @abstractmethod
    async def request(self, addr, write, data=0):
        """``(data, error)`` of one request (``write`` 0 or 1; ``data`` 16 bits)."""

    async def requests(self, reqs):
        """``[(data, error), ...]`` of ``reqs`` = ``[(addr, write, data), ...]``, in order
        (a link may pipeline them)."""
        return [await self.request(*r) for r in reqs]

    async def idle(self, cycles):
        """Let ``cycles`` clock cycles pass (a link without a clock may just return)."""


class BusError(RuntimeError):
    """The processor refused a bus access (``error`` in its response)."""


class ProgramFailed(RuntimeError):
    """The program check refused the program (State ERROR)."""

    def __init__(self, error, task, core_error):
        self.error, self.task, self.core_error = error, task, core_error
        detail = f" (core: {core_error.name})" if error == ProgramError.CORE else ""
        super().__init__(f"program refused: {error.name} at record {task}{detail}")


def address(region, offset):
    """The bus address of ``offset`` in :class:`Region` ``region``."""
    return (Region(region).value << REGION_SHIFT) | offset


class ProcessorDriver:
    """Host API of one processor for ``cfg`` over ``transport``.

    ``cache_program``: the driver remembers the record words it wrote and
    :meth:`load_program` sends only the records that differ (a training loop loads the
    same program every step). Only for a driver that is the task table's one writer:
    a second driver, a reset of the device, or a write of the PROGRAM region by other
    means leaves the memory stale (:meth:`forget_program` empties it).
    """

    def __init__(self, transport, cfg, *, cache_program=False):
        self.t = transport
        self.cfg = check_type("cfg", cfg, ProcessorConfig)
        self.cache_program = check_type("cache_program", cache_program, bool)
        self._table = {}     # record index -> the words this driver wrote there

    async def _access(self, addr, write, data=0, check=True):
        value, error = await self.t.request(addr, write, data)
        if error and check:
            raise BusError(f"bus access refused: {'write' if write else 'read'} of address {addr:#x}")
        return value, error

    def _gbuf_range(self, base, count):
        if base < 0 or count < 0 or base + count > self.cfg.gbuf_depth:
            raise ValueError(f"GBUF range {base}..{base + count} exceeds its {self.cfg.gbuf_depth} words")

    async def write_gbuf(self, base, words):
        """GBUF words ``base ..`` become ``words`` (uint16)."""
        words = np.asarray(words).ravel()
        self._gbuf_range(base, words.size)
        a0 = address(Region.GBUF, base)   # once: a Region lookup per word is slow
        vals = (words.astype(np.int64) & 0xFFFF).tolist()
        await self._burst([(a0 + i, 1, w) for i, w in enumerate(vals)])

    async def write_gbuf_words(self, addrs, words):
        """GBUF word ``addrs[i]`` becomes ``words[i]`` (scattered writes)."""
        for a in addrs:
            self._gbuf_range(int(a), 1)
        await self._burst([(address(Region.GBUF, int(a)), 1, int(w) & 0xFFFF)
                           for a, w in zip(addrs, words)])

    async def _burst(self, reqs):
        out = await self.t.requests(reqs)
        for (addr, write, _), (_, error) in zip(reqs, out):
            if error:
                raise BusError(f"bus access refused: {'write' if write else 'read'} of address {addr:#x}")
        return [v for v, _ in out]

    async def read_gbuf(self, base, count):
        """``count`` GBUF words from ``base`` (uint16 array)."""
        self._gbuf_range(base, count)
        a0 = address(Region.GBUF, base)
        out = await self._burst([(a0 + i, 0, 0) for i in range(count)])
        return np.array(out, dtype=np.uint16)

    def _record_requests(self, index, rec):
        if not 0 <= index < self.cfg.program_depth:
            raise ValueError(f"record index {index!r} beyond the table's {self.cfg.program_depth}")
        W = record_words(self.cfg)
        return [(address(Region.PROGRAM, index * W + i), 1, w)
                for i, w in enumerate(record_bus_words(self.cfg, rec))]

    async def _write_records(self, reqs_by_index, tail=()):
        """One burst of every record's writes (consecutive records make long frames)
        and ``tail``; the cache forgets the records first, so a refused write leaves
        nothing remembered that the table may not hold."""
        for t in reqs_by_index:
            self._table.pop(t, None)
        await self._burst([r for reqs in reqs_by_index.values() for r in reqs] + list(tail))
        if self.cache_program:
            self._table.update({t: [w for _, _, w in reqs] for t, reqs in reqs_by_index.items()})

    async def write_record(self, index, rec):
        """Record ``index`` of the task table becomes ``rec``."""
        await self._write_records({index: self._record_requests(index, rec)})

    def forget_program(self):
        """Empty the memory of written records (``cache_program``): the next
        :meth:`load_program` writes every record."""
        self._table = {}

    async def read_record_words(self, index):
        W = record_words(self.cfg)
        return await self._burst([(address(Region.PROGRAM, index * W + i), 0, 0) for i in range(W)])

    async def load_program(self, records, policy=None):
        """Write every record and NTASKS (and POLICY, with ``policy``) in one burst of
        requests: a link sends them as a few long frames, not a round trip per record.
        With ``cache_program``, records whose words this driver wrote last are not
        sent again."""
        if len(records) > self.cfg.program_depth:
            raise ValueError(f"{len(records)} records do not fit the table's {self.cfg.program_depth}")
        reqs = {t: self._record_requests(t, rec) for t, rec in enumerate(records)}
        if self.cache_program:
            reqs = {t: r for t, r in reqs.items() if self._table.get(t) != [w for _, _, w in r]}
        # POLICY and NTASKS are neighbours: one frame
        tail = [] if policy is None else [(address(Region.CSR, Csr.POLICY.value), 1, Policy(policy).value)]
        tail.append((address(Region.CSR, Csr.NTASKS.value), 1, len(records)))
        await self._write_records(reqs, tail)

    async def write_csr(self, csr, value):
        await self._access(address(Region.CSR, Csr(csr).value if isinstance(csr, Csr) else csr), 1, value)

    async def read_csr(self, csr):
        return (await self._access(address(Region.CSR, Csr(csr).value if isinstance(csr, Csr) else csr), 0))[0]

    async def set_policy(self, policy):
        await self.write_csr(Csr.POLICY, Policy(policy).value)

    async def start(self):
        await self.write_csr(Csr.CTRL, 1)

    async def resume(self):
        await self.write_csr(Csr.CTRL, 2)

    async def clear(self):
        await self.write_csr(Csr.CTRL, 4)

    async def clear_eors(self):
        """Empty the EORS calibration counter bank (CTRL bit 3)."""
        await self.write_csr(Csr.CTRL, 8)

    async def read_eors_bank(self, clear=True):
        """The EORS calibration counter bank (``docs/memory-map.md``): a list of
        ``EORS_SLOTS`` dicts over :data:`ganpu.core.model.EORS_COUNTERS` (``live``,
        ``false_live``, ``sampled``, ``false_zero``), read in one burst of CSR reads;
        then, with ``clear``, the bank is emptied (CTRL bit 3). Read it while no
        program runs (DONE, PAUSED, IDLE): a running program adds counts between the
        reads of a LO/HI pair, and between the reads and the clear. :class:`BusError`
        when the config has no bank (its cores do not sample)."""
        from ..core.model import EORS_COUNTERS
        first = Csr.EORS.value
        words = await self._burst([(address(Region.CSR, first + i), 0, 0)
                                   for i in range(EORS_SLOTS * EORS_BANK_WORDS)])
        if clear:
            await self.clear_eors()
        return [{name: words[s * EORS_BANK_WORDS + 2 * j] | words[s * EORS_BANK_WORDS + 2 * j + 1] << 16
                 for j, name in enumerate(EORS_COUNTERS)} for s in range(EORS_SLOTS)]

    async def state(self):
        return State(await self.read_csr(Csr.STATE))

    async def wait(self, until=(State.DONE, State.PAUSED), polls=DEFAULT_POLLS, interval=16):
        """Poll STATE until it is one of ``until``; raises :class:`ProgramFailed` on ERROR
        (unless ERROR is in ``until``) and :class:`TimeoutError` after ``polls`` polls."""
        for _ in range(polls):
            s = await self.state()
            if s in until:
                return s
            if s == State.ERROR:
                raise ProgramFailed(*await self.error())
            await self.t.idle(interval)
        raise TimeoutError(f"processor still {s.name} after {polls} polls of {interval} cycles "
                           f"(waiting for {', '.join(u.name for u in until)})")

    async def error(self):
        """``(ProgramError, task, core Error)`` of the last check."""
        return (ProgramError(await self.read_csr(Csr.ERROR)), await self.read_csr(Csr.ERROR_TASK),
                Error(await self.read_csr(Csr.ERROR_CORE)))

    async def run(self, records=None, policy=Policy.ADAPTIVE, on_pause=None, **wait_kw):
        """Load ``records`` (if given), start under ``policy`` and serve PAUSE records
        with ``await on_pause(index, driver)`` until DONE."""
        if records is not None:
            await self.load_program(records, policy)
        else:
            await self.set_policy(policy)
        await self.start()
        while True:
            s = await self.wait(**wait_kw)
            if s == State.DONE:
                return
            at = await self.read_csr(Csr.PAUSED_AT)
            if on_pause is not None:
                await on_pause(at, self)
            await self.resume()

    async def counter(self, lo):
        return (await self.read_csr(lo)) | ((await self.read_csr(lo + 1)) << 16)

    async def counters(self):
        """``{"cycles", "dma", "done_tasks", "core_busy": [...]}`` (two bursts of CSR reads:
        CYCLES_LO .. DONE_TASKS and the CORE_BUSY pairs)."""
        first, last = Csr.CYCLES_LO.value, Csr.DONE_TASKS.value
        v = dict(zip(range(first, last + 1), await self._burst(
            [(address(Region.CSR, o), 0, 0) for o in range(first, last + 1)])))
        busy = await self._burst([(address(Region.CSR, Csr.CORE_BUSY.value + i), 0, 0)
                                  for i in range(2 * self.cfg.cores)])
        return {"cycles": v[Csr.CYCLES_LO.value] | v[Csr.CYCLES_HI.value] << 16,
                "dma": v[Csr.DMA_LO.value] | v[Csr.DMA_HI.value] << 16,
                "done_tasks": v[Csr.DONE_TASKS.value],
                "core_busy": [busy[2 * c] | busy[2 * c + 1] << 16 for c in range(self.cfg.cores)]}
