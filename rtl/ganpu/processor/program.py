"""The program format and the memory map: the contract between the processor's gateware
and the host (compiler, driver). Defined once here as ``lib.data`` layouts and
``lib.enum`` enums; the host packs records with ``layout.const(...)``
(``docs/program.md``).

A *program* is a list of task records in the task table. Record ``t`` may depend only
on records ``< t`` (so no dependency cycle can form). A GEMM record describes one
``out[m, n] = epilogue(init[n] + sum_k A[m, k] B[n, k])`` over tensors in the global
buffer (GBUF), addressed with a base and strides in 16-bit words:

* ``A[m, k]``      at ``a.base + m*a.s_m + k*a.s_k``
* ``B[n, k]``      at ``b.base + n*b.s_n + k*b.s_k``
* ``bias[n]``      at ``bias_base + n`` (when ``bias``)
* ``mask_in[m, n]`` at ``mask_in_base + m*N + n`` (bit 0 of the word; when the core
  reads it: FP with ``use_mask``, BP with a non-identity activation)
* ``out[m, n]``    at ``out.base + m*out.s_m + n*out.s_n``
* ``mask_out[m, n]`` at ``mask_out_base + m*N + n`` (when ``store_mask``)

The DMA gathers A, B (and BW, B regrouped for EORS), BIAS and MASK_IN into a core's
buffers contiguously (row-major) and scatters OUT and MASK_OUT back, so every core runs
the derived descriptor ``a_sm = K, a_sk = 1, b_sn = K, b_sk = 1, o_sm = N, o_sn = 1``
with all bases 0. A task split over ``c`` cores in time (temporal mode) gives each core
a contiguous range of rows ``m``; B, BIAS and BW are read once and written to all of them.

A PAUSE record stops the program once its dependencies are done, with status PAUSED,
until the host writes ``CTRL.resume``: the host's part of a step (loss, its gradient,
tanh) happens there, through the same bus, on the same GBUF.

An UPDATE record (:func:`update_layout`: the same bits read with other fields after
``deps``) runs SGD with momentum on ``count`` parameters in the update unit
(``docs/update.md``): binary32 masters and momenta at ``w_base + 2i`` / ``v_base + 2i``
(low half first), the binary16 gradient at ``g_base + i``, the new binary16 working
copy to ``w16_base + i``.
"""

from amaranth.lib import data, enum

from .config import ProcessorConfig

__all__ = ["TaskKind", "ProgramError", "Policy", "State", "Region", "Csr",
           "EORS_SLOTS", "EORS_SLOT_BITS", "EORS_BANK_WORDS", "eors_csr",
           "task_layout", "update_layout", "record_layout", "operand2_layout", "record_words", "bus_request_layout",
           "bus_response_layout", "BUS_ADDR_BITS", "REGION_SHIFT"]


class TaskKind(enum.Enum, shape=2):
    GEMM = 0
    PAUSE = 1
    UPDATE = 2       # SGD with momentum on a parameter tensor (``update_layout``)


class ProgramError(enum.Enum, shape=4):
    """Verdict of the program check (run before any task; anything but OK means the
    program wrote nothing)."""
    OK = 0
    EMPTY = 1        # zero tasks, or more than the task table holds
    BAD_KIND = 2     # a record's kind is not a TaskKind
    BAD_DEP = 3      # a dependency on the record itself or a later one
    GBUF_RANGE = 4   # an operand's last element lies beyond the GBUF
    CORE = 5         # the core's descriptor check refuses the task (code in ERROR_CORE)
    COUNT = 6        # an UPDATE record's count is 0


class Policy(enum.Enum, shape=2):
    """How the scheduler gives cores to ready tasks (selectable per run)."""
    TEMPORAL = 0     # every task gets all cores, its rows split between them
    SPATIAL = 1      # every task gets one core; independent tasks run side by side
    ADAPTIVE = 2     # cores per task chosen at dispatch from work, words and free cores


class State(enum.Enum, shape=3):
    IDLE = 0
    CHECKING = 1
    RUNNING = 2
    PAUSED = 3
    DONE = 4
    ERROR = 5


def operand2_layout(gbuf_bits):
    """A 2-D operand in the GBUF: a base and two strides, in words."""
    return data.StructLayout({"base": gbuf_bits, "s0": gbuf_bits, "s1": gbuf_bits})


def task_layout(cfg):
    """One record of the task table for ``cfg`` (a :class:`ProcessorConfig`)."""
    if not isinstance(cfg, ProcessorConfig):
        raise TypeError(f"cfg must be a ProcessorConfig, not {cfg!r}")
    from ..core.descriptor import Op, Act
    d = cfg.core.geom.dim_bits
    g = cfg.gbuf_bits
    return data.StructLayout({
        **_head(cfg),
        # the core descriptor's fields that are not addresses
        "op": Op, "act": Act, "slope": 16, "use_mask": 1, "bias": 1, "eors": 1,
        "store_mask": 1,
        "m": d, "n": d, "k": d,
        "a": operand2_layout(g),        # s0 = s_m, s1 = s_k
        "b": operand2_layout(g),        # s0 = s_n, s1 = s_k
        "out": operand2_layout(g),      # s0 = s_m, s1 = s_n
        "bias_base": g, "mask_in_base": g, "mask_out_base": g,
        # the compiler's estimates, read by the adaptive policy
        "work": 24,                     # core cycles of the whole task on one core
        "words": 24,                    # GBUF words the task moves (loads + stores)
        # EORS self-calibration (docs/eors.md): the task's scale-aware level (0 = the
        # cores' configured one), the counter bank slot its counters add up in and the
        # sampling key of its row 0 (a part from row m0 runs with key + m0)
        "eors_rel": 5,
        "eors_slot": EORS_SLOT_BITS,
        "eors_key": 16,
    })


#: Slots of the EORS calibration counter bank (one per ReLU layer of a step,
#: ``docs/memory-map.md``); a record's ``eors_slot`` field names one.
EORS_SLOT_BITS = 3
EORS_SLOTS = 1 << EORS_SLOT_BITS
#: CSR words per slot: four 32-bit counters (``ganpu.core.model.EORS_COUNTERS`` order),
#: each a LO/HI pair.
EORS_BANK_WORDS = 8


def _head(cfg):
    """The fields every kind of record starts with: ``kind`` and ``deps``."""
    dep = data.StructLayout({"valid": 1, "index": cfg.program_bits})
    return {"kind": TaskKind, "deps": data.ArrayLayout(dep, cfg.deps)}


def update_layout(cfg):
    """An UPDATE record for ``cfg``: the record's bits read with the update's fields
    after ``kind`` and ``deps`` (same offsets as in :func:`task_layout`).

    ``count`` parameters; binary32 masters ``w`` and momenta ``v`` at ``w_base + 2i``
    and ``v_base + 2i`` (bits 0..15) and ``+ 2i + 1`` (bits 16..31); the binary16
    gradient at ``g_base + i``; the binary16 working copy written to ``w16_base + i``;
    the hyperparameters ``lr``, ``mu``, ``inv_scale`` as binary32 bits
    (:func:`ganpu.processor.update.hyper_layout`).
    """
    if not isinstance(cfg, ProcessorConfig):
        raise TypeError(f"cfg must be a ProcessorConfig, not {cfg!r}")
    g = cfg.gbuf_bits
    return data.StructLayout({
        **_head(cfg),
        "count": 24, "w_base": g, "v_base": g, "g_base": g, "w16_base": g,
        "lr": 32, "mu": 32, "inv_scale": 32,
    })


def record_layout(cfg, kind):
    """The layout a record of ``kind`` (a TaskKind or its value) is read with."""
    return update_layout(cfg) if int(getattr(kind, "value", kind)) == TaskKind.UPDATE.value \
        else task_layout(cfg)


def record_words(cfg):
    """16-bit bus words per task-table record (a power of two)."""
    size = max(task_layout(cfg).size, update_layout(cfg).size)
    words = 1
    while words * 16 < size:
        words *= 2
    return words


# --- the host bus: one response per request, in order
BUS_ADDR_BITS = 24
REGION_SHIFT = 22  # addr[22:24] selects the region


class Region(enum.Enum, shape=2):
    GBUF = 0         # word w of the GBUF at w
    PROGRAM = 1      # word i of record t at t * record_words + i
    CSR = 2          # registers below


class Csr(enum.Enum, shape=8):
    """16-bit control/status registers (offsets in the CSR region)."""
    CTRL = 0         # write: bit 0 start, bit 1 resume (from PAUSED), bit 2 clear errors,
                     # bit 3 clear the EORS counter bank
    POLICY = 1       # a Policy, read at start
    NTASKS = 2       # tasks in the program
    STATE = 3        # a State (read only)
    ERROR = 4        # a ProgramError (read only)
    ERROR_TASK = 5   # record the error refers to
    ERROR_CORE = 6   # the core's Error code when ERROR is CORE
    PAUSED_AT = 7    # record index of the PAUSE being served
    BUS_ERROR = 8    # sticky: a refused bus access (bad address, or memory while running)
    CYCLES_LO = 9    # cycles from start to DONE
    CYCLES_HI = 10
    DMA_LO = 11      # cycles the DMA moved words
    DMA_HI = 12
    DONE_TASKS = 13  # tasks completed
    CORE_BUSY = 16   # CORE_BUSY + 2c (+1): busy cycles of core c, lo and hi halves
    EORS = 64        # EORS + 8s + 2j (+1): counter j of calibration slot s, lo and hi
                     # halves (only when the cores sample, CoreConfig.eors_sample_log2 > 0)


def eors_csr(slot, counter, hi=False):
    """CSR offset of calibration counter ``counter`` (index into
    ``ganpu.core.model.EORS_COUNTERS`` or its name) of bank slot ``slot``, low or high half."""
    from ..core.model import EORS_COUNTERS
    j = EORS_COUNTERS.index(counter) if counter in EORS_COUNTERS else counter
    if not isinstance(j, int) or not 0 <= slot < EORS_SLOTS or not 0 <= j < len(EORS_COUNTERS):
        raise ValueError(f"no EORS counter {counter!r} in slot {slot!r} (slots 0..{EORS_SLOTS - 1})")
    return Csr.EORS.value + EORS_BANK_WORDS * slot + 2 * j + int(bool(hi))


def bus_request_layout():
    return data.StructLayout({"addr": BUS_ADDR_BITS, "write": 1, "data": 16})


def bus_response_layout():
    """``error`` refuses the access (nothing happened); a write's response carries no data."""
    return data.StructLayout({"data": 16, "error": 1})
