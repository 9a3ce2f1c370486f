"""Bit-exact model of a program on the processor, record packing, and the scheduler's
pure dispatch rules (``docs/processor.md``, ``docs/program.md``).

:func:`run_program` is the reference the processor's bench compares every GBUF word
with. It checks the whole program first, with the same checks as the hardware's
:class:`~ganpu.processor.checker.ProgramChecker` in the same order, then runs the
UPDATE records with the update unit's model (:func:`run_update`) and the GEMM
records in program order with :func:`ganpu.core.model.run_task` on core buffers
gathered from the GBUF exactly as the DMA lays them out (row-major, contiguous, bases
0), and scatters OUT (and MASK_OUT with ``store_mask``) back. A program whose
dependencies order every pair of records that touch a common GBUF word (one writes
what the other reads or writes) has the same result under any schedule the hardware
picks, and so the same as program order. The rows of a task are independent, so a
task split over several cores computes the same words as on one.

Records are dicts of :func:`~ganpu.processor.program.task_layout` fields; operands are
nested dicts (``{"base":, "s0":, "s1":}``), ``deps`` a list of ``{"valid":, "index":}``
(or plain indices), missing fields are 0.
"""

import numpy as np
from amaranth.lib import data, enum

from ..core import model as core_model
from ..core.descriptor import Op, Act, Error
from ..host.lower import bw_image
from .config import ProcessorConfig
from .program import TaskKind, ProgramError, Policy, task_layout, record_layout, record_words

__all__ = ["normalize", "pack_record", "unpack_record", "record_bus_words", "core_descriptor",
           "reads_mask_in", "eors_active", "operand_ranges", "check_program", "run_program",
           "split_rows", "cores_for", "adaptive_cores", "compute_bound", "MIN_WORK", "MIN_SPLIT", "update_ranges", "run_update",
           "UPDATE_WORDS", "eors_bank"]

# GBUF words an UPDATE moves per parameter each way: master and momentum (2 words each)
# and the gradient read; master, momentum and working copy written.
UPDATE_WORDS = 5

# The adaptive policy gives a task one core per MIN_WORK core cycles of work (at least
# one): below that a core's start-up and the DMA's per-core A transfers outweigh the gain.
MIN_WORK = 256

# Time multiplexing (every task over every core) pays only when a core's share of the
# program's average task is at least MIN_SPLIT core cycles: below that a task's fixed
# costs (the core's start and drain, its DMA passes and store job) dominate and running
# tasks side by side hides them better than splitting each (docs/astm.md).
MIN_SPLIT = 1024


def _check_cfg(cfg):
    if not isinstance(cfg, ProcessorConfig):
        raise TypeError(f"cfg must be a ProcessorConfig, not {cfg!r}")


def _blank(layout):
    """All-zero values shaped like ``layout`` (nested dicts and lists)."""
    if isinstance(layout, data.StructLayout):
        return {name: _blank(f.shape) for name, f in layout}
    if isinstance(layout, data.ArrayLayout):
        return [_blank(layout.elem_shape) for _ in range(layout.length)]
    return 0


def _kind(rec):
    k = rec.get("kind", 0)
    return int(k.value if isinstance(k, enum.Enum) else k)


def normalize(cfg, rec):
    """``rec`` with every field of its layout present (:func:`~ganpu.processor.program.update_layout`
    for an UPDATE record, else ``task_layout``), enums as ints, deps as ``cfg.deps`` dicts."""
    _check_cfg(cfg)
    layout = record_layout(cfg, _kind(rec))
    out = _blank(layout)
    for name, value in rec.items():
        if name not in out:
            raise KeyError(f"Unknown task record field {name!r}")
        if name == "deps":
            if len(value) > cfg.deps:
                raise ValueError(f"{len(value)} dependencies do not fit {cfg.deps} slots: {value!r}")
            for i, d in enumerate(value):
                out["deps"][i] = {"valid": 1, "index": int(d)} if isinstance(d, (int, np.integer)) \
                    else {"valid": int(d.get("valid", 1)), "index": int(d.get("index", 0))}
        elif isinstance(out[name], dict):
            for f, v in value.items():
                if f not in out[name]:
                    raise KeyError(f"Unknown field {f!r} of operand {name!r}")
                out[name][f] = int(v)
        else:
            out[name] = int(value.value if isinstance(value, enum.Enum) else value)
    return out


def _fields(layout, offset=0):
    """``(path, offset, width, shape)`` of every leaf field of ``layout``."""
    if isinstance(layout, data.StructLayout):
        for name, f in layout:
            yield from (((name,) + p, o, w, s) for p, o, w, s in _fields(f.shape, offset + f.offset))
    elif isinstance(layout, data.ArrayLayout):
        w = data.Layout.cast(layout.elem_shape).size
        for i in range(layout.length):
            yield from (((i,) + p, o, ww, s) for p, o, ww, s in _fields(layout.elem_shape, offset + i * w))
    else:
        yield (), offset, data.Layout.cast(layout).size if isinstance(layout, data.Layout) \
            else _width(layout), layout


def _width(shape):
    from amaranth.hdl import Shape
    return Shape.cast(shape).width


def _get(rec, path):
    for p in path:
        rec = rec[p]
    return rec


def pack_record(cfg, rec):
    """The record as an integer, through ``task_layout(cfg).const(...)`` (or
    ``update_layout`` for an UPDATE record).

    An enum field holding a value its enum does not define (an unknown kind, a bad
    op: malformed programs the checker must refuse) cannot go through ``const``; it is
    packed as 0 there and its raw bits are placed at the layout's offset of the field.
    """
    layout = record_layout(cfg, _kind(rec))
    r = normalize(cfg, rec)
    raw = []
    for name, f in layout:
        shape = f.shape
        if isinstance(shape, enum.EnumMeta) and r[name] not in {m.value for m in shape}:
            raw.append((f.offset, _width(shape), r[name]))
            r[name] = 0
    for path, _, width, _ in _fields(layout):
        v = _get(r, path)
        if not 0 <= v < (1 << width):
            raise ValueError(f"Task record field {'.'.join(map(str, path))}={v!r} does not fit "
                             f"in {width} bits")
    value = layout.const(r).as_value().value
    for offset, width, v in raw:
        value |= v << offset
    return value


def unpack_record(cfg, value):
    """The record dict (enums as ints) of the integer ``value``, read with the layout
    of its kind."""
    layout = record_layout(cfg, value & ((1 << _width(TaskKind)) - 1))
    r = _blank(layout)
    for path, offset, width, _ in _fields(layout):
        target = r
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = (value >> offset) & ((1 << width) - 1)
    return r


def record_bus_words(cfg, rec):
    """The ``record_words(cfg)`` 16-bit bus words of a record, word 0 first: word ``i``
    of record ``t`` goes to PROGRAM address ``t * record_words(cfg) + i``."""
    value = pack_record(cfg, rec)
    return [(value >> (16 * i)) & 0xFFFF for i in range(record_words(cfg))]


def eors_active(rec):
    return bool(rec["eors"]) and rec["op"] == Op.FP.value and rec["act"] == Act.RELU.value


def reads_mask_in(rec):
    """The core reads MASK_IN: FP with ``use_mask``, BP with a non-identity activation."""
    return bool((rec["op"] == Op.FP.value and rec["use_mask"]) or
                (rec["op"] == Op.BP.value and rec["act"] != Act.IDENTITY.value))


def core_descriptor(rec, m=None, m0=0):
    """The descriptor a core runs for ``m`` rows (default: all) of GEMM record ``rec``
    from row ``m0``: operands contiguous in its buffers from address 0, the sampling
    key that of row ``m0`` (``eors_key + m0`` mod 2**16, so a task's sample set does
    not depend on how its rows are split, ``docs/eors.md``)."""
    K, N = rec["k"], rec["n"]
    return dict(op=rec["op"], act=rec["act"], slope=rec["slope"], use_mask=rec["use_mask"],
                bias=rec["bias"], eors=rec["eors"], m=rec["m"] if m is None else m, n=N, k=K,
                a_base=0, a_sm=K, a_sk=1, b_base=0, b_sn=K, b_sk=1,
                o_base=0, o_sm=N, o_sn=1, bias_base=0, eors_rel=rec.get("eors_rel", 0),
                eors_key=(rec.get("eors_key", 0) + m0) & 0xFFFF)


def operand_ranges(rec):
    """``[(name, last GBUF word), ...]`` of the operands a GEMM record uses, in the
    checker's order (A, B, OUT, BIAS, MASK_IN, MASK_OUT); empty when a dimension is 0
    (the core's check then refuses the task)."""
    M, N, K = rec["m"], rec["n"], rec["k"]
    if 0 in (M, N, K):
        return []
    a, b, o = rec["a"], rec["b"], rec["out"]
    out = [("a", a["base"] + (M - 1) * a["s0"] + (K - 1) * a["s1"]),
           ("b", b["base"] + (N - 1) * b["s0"] + (K - 1) * b["s1"]),
           ("out", o["base"] + (M - 1) * o["s0"] + (N - 1) * o["s1"])]
    if rec["bias"]:
        out.append(("bias", rec["bias_base"] + N - 1))
    if reads_mask_in(rec):
        out.append(("mask_in", rec["mask_in_base"] + M * N - 1))
    if rec["store_mask"]:
        out.append(("mask_out", rec["mask_out_base"] + M * N - 1))
    return out


def update_ranges(rec):
    """``[(name, first, last GBUF word), ...]`` of the regions an UPDATE record uses,
    in the checker's order: masters ``w``, momenta ``v`` (2 words per parameter),
    gradients ``g``, working copies ``w16``."""
    c = rec["count"]
    return [("w", rec["w_base"], rec["w_base"] + 2 * c - 1),
            ("v", rec["v_base"], rec["v_base"] + 2 * c - 1),
            ("g", rec["g_base"], rec["g_base"] + c - 1),
            ("w16", rec["w16_base"], rec["w16_base"] + c - 1)]


def run_update(rec, gbuf):
    """Run UPDATE record ``rec`` (normalized) on ``gbuf`` in place: the update unit's
    model (:func:`ganpu.model.sgd.update`) on every parameter."""
    from ..model.sgd import update
    c = rec["count"]
    i = np.arange(c)

    def f32(base):
        return gbuf[base + 2 * i].astype(np.uint32) | (gbuf[base + 2 * i + 1].astype(np.uint32) << 16)
    w, v, w16 = update(f32(rec["w_base"]), f32(rec["v_base"]), gbuf[rec["g_base"] + i],
                       np.uint32(rec["lr"]), np.uint32(rec["mu"]), np.uint32(rec["inv_scale"]))
    for base, x in ((rec["w_base"], w), (rec["v_base"], v)):
        gbuf[base + 2 * i] = (x & 0xFFFF).astype(np.uint16)
        gbuf[base + 2 * i + 1] = (x >> 16).astype(np.uint16)
    gbuf[rec["w16_base"] + i] = w16


def check_program(cfg, records):
    """``(ProgramError, task, core Error)``: the first failing check, records in order.

    EMPTY (no record, or more than the table holds) comes first; then per record: an
    unknown kind (BAD_KIND), a valid dependency on itself or a later record (BAD_DEP),
    for GEMM records an operand beyond the GBUF (GBUF_RANGE), then the core's own
    check of :func:`core_descriptor` for the full M (CORE, with the core's code); for
    UPDATE records a count of 0 (COUNT), then a region beyond the GBUF (GBUF_RANGE).
    """
    _check_cfg(cfg)
    if not 1 <= len(records) <= cfg.program_depth:
        return ProgramError.EMPTY, 0, Error.OK
    for t, rec in enumerate(records):
        rec = normalize(cfg, rec)
        if rec["kind"] not in {k.value for k in TaskKind}:
            return ProgramError.BAD_KIND, t, Error.OK
        if any(d["valid"] and d["index"] >= t for d in rec["deps"]):
            return ProgramError.BAD_DEP, t, Error.OK
        if rec["kind"] == TaskKind.UPDATE.value:
            if rec["count"] == 0:
                return ProgramError.COUNT, t, Error.OK
            if any(last >= cfg.gbuf_depth for _, _, last in update_ranges(rec)):
                return ProgramError.GBUF_RANGE, t, Error.OK
            continue
        if rec["kind"] != TaskKind.GEMM.value:
            continue
        if any(last >= cfg.gbuf_depth for _, last in operand_ranges(rec)):
            return ProgramError.GBUF_RANGE, t, Error.OK
        err = core_model.check(core_descriptor(rec), cfg.core.geom, cfg.core.eors_lanes)
        if err != Error.OK:
            return ProgramError.CORE, t, err
    return ProgramError.OK, 0, Error.OK


def gather(cfg, rec, gbuf, m0=0, m1=None):
    """Core buffers for rows ``m0..m1-1`` of GEMM record ``rec``, as the DMA loads them."""
    rec = normalize(cfg, rec)
    P = cfg.core.eors_lanes
    M, N, K = rec["m"], rec["n"], rec["k"]
    m1 = M if m1 is None else m1
    bufs = cfg.core.zero_buffers()
    mi = np.arange(m0, m1)[:, None]
    ni = np.arange(N)[:, None]
    ki = np.arange(K)[None, :]
    a, b = rec["a"], rec["b"]
    A = gbuf[a["base"] + mi * a["s0"] + ki * a["s1"]]
    B = gbuf[b["base"] + ni * b["s0"] + ki * b["s1"]]
    bufs["a"][:A.size] = A.ravel()
    bufs["b"][:B.size] = B.ravel()
    if eors_active(rec):
        bw = bw_image(B, P)
        bufs["bw"][:bw.size] = bw
    if rec["bias"]:
        bufs["bias"][:N] = gbuf[rec["bias_base"] + np.arange(N)]
    if reads_mask_in(rec):
        rows = (m1 - m0) * N
        bufs["mask_in"][:rows] = gbuf[rec["mask_in_base"] + m0 * N + np.arange(rows)] & 1
    return bufs


def scatter(cfg, rec, gbuf, bufs, m0=0, m1=None):
    """Write rows ``m0..m1-1`` of OUT (and MASK_OUT with ``store_mask``) into ``gbuf``."""
    rec = normalize(cfg, rec)
    N = rec["n"]
    m1 = rec["m"] if m1 is None else m1
    o = rec["out"]
    mi = np.arange(m0, m1)[:, None]
    ni = np.arange(N)[None, :]
    rows = (m1 - m0) * N
    gbuf[(o["base"] + mi * o["s0"] + ni * o["s1"]).ravel()] = bufs["out"][:rows]
    if rec["store_mask"]:
        gbuf[rec["mask_out_base"] + m0 * N + np.arange(rows)] = bufs["mask_out"][:rows] & 1


def run_program(cfg, gbuf, records, on_pause=None, on_task=None):
    """``(ProgramError, error task, core Error, new gbuf)`` of running ``records``.

    A program that fails :func:`check_program` leaves the GBUF unchanged. PAUSE record
    ``t`` calls ``on_pause(t, gbuf)`` (the host's work), which may change ``gbuf`` in
    place or return a new array. ``on_task(t, rec, gbuf)`` (if given) sees the GBUF
    before each GEMM record ``t`` runs (it must not change it).
    """
    _check_cfg(cfg)
    gbuf = np.array(gbuf, dtype=np.uint16, copy=True)
    if gbuf.shape != (cfg.gbuf_depth,):
        raise ValueError(f"gbuf must hold {cfg.gbuf_depth} words, not shape {gbuf.shape!r}")
    err, task, core_err = check_program(cfg, records)
    if err != ProgramError.OK:
        return err, task, core_err, gbuf
    geom, P = cfg.core.geom, cfg.core.eors_lanes
    for t, rec in enumerate(records):
        rec = normalize(cfg, rec)
        if rec["kind"] == TaskKind.PAUSE.value:
            if on_pause is not None:
                new = on_pause(t, gbuf)
                if new is not None:
                    gbuf = np.array(new, dtype=np.uint16, copy=True)
            continue
        if rec["kind"] == TaskKind.UPDATE.value:
            run_update(rec, gbuf)
            continue
        if on_task is not None:
            on_task(t, rec, gbuf)
        bufs = gather(cfg, rec, gbuf)
        e, bufs = core_model.run_task(core_descriptor(rec), bufs, geom, cfg.core.eors, P)
        assert e == Error.OK, (t, e)  # the program check ran the same check
        scatter(cfg, rec, gbuf, bufs)
    return ProgramError.OK, 0, Error.OK, gbuf


def run_program_eors(cfg, gbuf, records, on_pause=None, bank=None):
    """:func:`run_program` that also adds every EORS task's calibration counters into
    the counter bank (``docs/eors.md``, ``docs/memory-map.md``): ``(error, task,
    core_error, gbuf, bank)``.

    Each EORS record adds :func:`ganpu.core.model.eors_counts` of its whole task, on
    the GBUF as program order leaves it before that record (the result of any schedule
    the dependencies allow), into slot ``eors_slot`` of ``bank`` (default empty), modulo
    2**32. Sampling is a pure function of the record's key, the row and the mask word,
    so this is the bank of every schedule: no dispatch order is needed. ``bank``:
    ``EORS_SLOTS`` dicts over :data:`ganpu.core.model.EORS_COUNTERS`. A refused program
    adds nothing."""
    from .program import EORS_SLOTS
    _check_cfg(cfg)
    bank = [dict.fromkeys(core_model.EORS_COUNTERS, 0) for _ in range(EORS_SLOTS)] \
        if bank is None else [dict(s) for s in bank]
    added = [dict.fromkeys(core_model.EORS_COUNTERS, 0) for _ in range(EORS_SLOTS)]

    def count(t, rec, g):
        if eors_active(rec):
            counts = core_model.eors_counts(core_descriptor(rec), gather(cfg, rec, g), cfg.core)
            for k, v in counts.items():
                added[rec["eors_slot"]][k] += v
    err, task, core_err, out = run_program(cfg, gbuf, records, on_pause, on_task=count)
    if err == ProgramError.OK:
        for s, a in zip(bank, added):
            for k, v in a.items():
                s[k] = (s[k] + v) & 0xFFFFFFFF
    return err, task, core_err, out, bank


def eors_bank(cfg, gbuf, records, on_pause=None, bank=None):
    """The EORS calibration counter bank after running ``records`` from ``gbuf``
    (:func:`run_program_eors`'s ``bank``): a function of the program and the data alone,
    the same under every policy and schedule."""
    return run_program_eors(cfg, gbuf, records, on_pause, bank)[4]


# --- the scheduler's dispatch rules (the hardware builds the same functions)

def split_rows(m, k):
    """Row ranges ``[(m0, m1), ...]`` of ``m`` rows over ``k`` cores: ``m // k`` each and
    one more for the first ``m % k``; cores past ``m`` rows get none (empty list items
    are dropped)."""
    q, r = divmod(m, k)
    out, m0 = [], 0
    for j in range(k):
        rows = q + (j < r)
        if rows:
            out.append((m0, m0 + rows))
        m0 += rows
    return out


def compute_bound(records, cores, dma_width):
    """The adaptive policy's regime for a program on a config: True (time
    multiplexing) when the program is *compute-bound* with tasks worth splitting, over
    its ``n`` GEMM records: their ``work`` (core cycles on one core) spread over all
    ``cores`` outlasts the DMA moving their ``words`` at ``dma_width`` words per cycle,
    ``sum(work) * dma_width > sum(words) * cores``, and a core's share of the average
    task is more than ``MIN_SPLIT`` cycles, ``sum(work) > n * cores * MIN_SPLIT``. The
    scheduler sums the three while the program is checked (``dma_width`` is the
    config's ``host_words``, a power of two, and ``MIN_SPLIT`` one: shifts) and compares
    once (``docs/astm.md`` has the measurements that chose the rule)."""
    work = words = n = 0
    for r in records:
        if _kind(r) == TaskKind.GEMM.value:
            work += int(r.get("work", 0))
            words += int(r.get("words", 0))
            n += 1
    return work * dma_width > words * cores and work > n * cores * MIN_SPLIT


def adaptive_cores(free, ready, m, work, min_work=MIN_WORK, *, cores=None, bound=False):
    """Cores the adaptive policy gives a task (0: wait).

    In a compute-bound program (``bound``, :func:`compute_bound`) time multiplexing:
    the task waits until ``min(cores, m)`` cores are free and takes them (TEMPORAL,
    except that a task of fewer rows than cores need not wait for every core).
    Otherwise the DMA bounds the step and the free cores are shared among the ready
    tasks, so one task's transfers overlap another's compute: ``k = min(free,
    max(1, free // ready), m, max(1, ceil(work / min_work)))``, ``ready`` counting the
    ready GEMM records in the window, this one included.
    """
    if bound:
        if cores is None:
            raise ValueError("a compute-bound program needs the core count, not cores=None")
        k = min(cores, m)
        return k if free >= k else 0
    if free == 0:
        return 0
    return max(1, min(free, max(1, free // max(1, ready)), m, max(1, -(-work // min_work))))


def cores_for(policy, cores, free, ready, m, work, min_work=MIN_WORK, bound=False):
    """Cores a ready GEMM record gets under ``policy`` given ``free`` free cores of
    ``cores`` (0: it waits). TEMPORAL waits for every core and uses ``min(cores, m)``;
    SPATIAL uses one; ADAPTIVE :func:`adaptive_cores` (``bound``: the program is
    compute-bound, :func:`compute_bound`)."""
    policy = Policy(policy)
    if policy == Policy.TEMPORAL:
        return min(cores, m) if free == cores else 0
    if policy == Policy.SPATIAL:
        return 1 if free else 0
    return adaptive_cores(free, ready, m, work, min_work, cores=cores, bound=bound)
