"""The two ports through which a processor drives a compute core (``docs/core.md``).

Both signatures are written from the driver's side (a DMA engine, a scheduler, a test
bench): the core takes them as ``In(HostPort(config))`` and ``In(TaskPort(config))``,
so in generated Verilog the core's ports are ``host__buf``, ``host__addr``, ...,
``task__desc``, ``task__start``, ...
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import Buf, CoreConfig, check_type
from .descriptor import Error, descriptor_layout
from .model import EORS_COUNTERS

__all__ = ["HostPort", "TaskPort"]


class HostPort(wiring.Signature):
    """Memory-like access to every :class:`Buf` of a core, one access per cycle.

    The port moves ``W = config.host_words`` elements per access (1 by default): the
    buffers are read and written as aligned words of W elements, the word that holds
    element ``addr`` (``addr``'s low ``log2 W`` bits select no element; lane ``j`` of
    ``wdata``/``rdata``, bits ``16j .. 16j+15``, is element ``(addr & ~(W-1)) + j``).
    BIAS and BW (words of ``eors_lanes`` >= W elements) are reached the same way.

    Timing contract
    ---------------
    * Read: ``rdata`` returns the word addressed by ``buf``/``addr`` exactly
      :attr:`read_latency` cycles earlier (reads are free-running: every cycle reads).
      Each buffer's block-RAM output is registered, then a wide word's part is
      selected, then the buffer: the latency is the same for every buffer. A mask
      element reads as a 0/1 lane.
    * Write: ``we`` bit ``j`` writes lane ``j`` of ``wdata`` to element
      ``(addr & ~(W-1)) + j`` at the next clock edge (with W = 1, ``we`` writes
      ``wdata`` at ``addr``). Masks store bit 0 of a lane. Writes are allowed only
      while the core is idle (the task port's ``busy`` = 0); OUT, MASK_OUT and MASK_IN
      are written by a running task.
    * Two buffer sets (``config.buffer_sets`` = 2): element ``e`` of set ``s`` of a
      buffer is at ``addr = s * depth + e`` (:meth:`CoreConfig.depth`; the set is the
      address bit above the buffer's depth). While ``busy``, reads and writes of the
      set the task does not run in behave as when idle; a write to the running set is
      refused as above. With one set every address below the depth is set 0.
    * Errors: a write to an address beyond the buffer's depth
      (:meth:`CoreConfig.host_depth`) or a write while ``busy`` (to the running set)
      sets ``err`` and changes nothing. ``err`` stays set
      until the task port's next accepted ``start``; reads never set it.

    Members (driver's view)
    -----------------------
    buf : Out(Buf), addr : Out(16), we : Out(W), wdata : Out(16 * W)
    rdata : In(16 * W), err : In(1)
    """

    read_latency = 4

    def __init__(self, config=None):
        if config is None:
            config = CoreConfig()
        self.config = check_type("config", config, CoreConfig)
        W = config.host_words
        super().__init__({
            "buf": Out(Buf), "addr": Out(16), "we": Out(W), "wdata": Out(16 * W),
            "rdata": In(16 * W), "err": In(1),
        })

    def __eq__(self, other):
        return type(other) is HostPort and self.config == other.config

    def __repr__(self):
        return f"HostPort({self.config!r})"


class TaskPort(wiring.Signature):
    """Start one task (a descriptor) on a core and read its status.

    Timing contract
    ---------------
    * ``start`` is a one-cycle pulse taken only while ``busy`` = 0; ``desc`` is
      sampled in that cycle (the core keeps its own copy). ``start`` while busy is
      ignored.
    * With two buffer sets (``config.buffer_sets`` = 2) ``set`` is sampled with
      ``desc``: the buffer set the task reads its operands from and writes OUT,
      MASK_OUT and MASK_IN to, for its whole run. The member exists only then: a
      one-set core's port is unchanged.
    * ``busy`` rises the cycle after an accepted ``start`` and falls when every output
      of the task is written (or right after the check when it refused the task).
    * When ``busy`` falls, ``error`` holds the descriptor checker's verdict (anything
      but ``Error.OK`` means the task wrote nothing) and ``cycles`` the task's length
      from ``start`` to the fall of ``busy``; ``eors_cycles`` counts the cycles the
      speculator spent issuing predictions. All three hold until the next ``start``.
    * ``eors_live``, ``eors_false_live``, ``eors_sampled``, ``eors_false_zero``: the
      self-calibration counters of the last EORS task (``docs/eors.md``,
      "Self-calibration"; :func:`ganpu.core.model.eors_counts`), valid when ``busy``
      falls, cleared by the next accepted ``start``; 0 after other tasks.

    Members (driver's view)
    -----------------------
    desc : Out(descriptor_layout(config.geom)), start : Out(1)
    set : Out(1) (only with ``buffer_sets`` = 2)
    busy : In(1), error : In(Error), cycles : In(32), eors_cycles : In(32)
    eors_live, eors_false_live, eors_sampled, eors_false_zero : In(mask_bits + 1)
    """

    def __init__(self, config=None):
        if config is None:
            config = CoreConfig()
        self.config = check_type("config", config, CoreConfig)
        sets = {"set": Out(1)} if config.buffer_sets > 1 else {}
        super().__init__({
            "desc": Out(descriptor_layout(config.geom)), "start": Out(1), **sets,
            "busy": In(1), "error": In(Error), "cycles": In(32), "eors_cycles": In(32),
            **{f"eors_{name}": In(config.geom.mask_bits + 1) for name in EORS_COUNTERS},
        })

    def __eq__(self, other):
        return type(other) is TaskPort and self.config == other.config

    def __repr__(self):
        return f"TaskPort({self.config!r})"
