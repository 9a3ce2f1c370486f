"""Random programs for the processor's tests: random dependency graphs, sizes, strides,
operations, and the host's work at PAUSE records; and malformed variants.

Every record writes a fresh GBUF region and reads initial data or the outputs of
records it depends on (directly), so any schedule that honours the dependencies gives
the program-order result of :func:`ganpu.processor.model.run_program`. An UPDATE record
updates masters and momenta of its own (random binary32 patterns, ordinary values
among them), reads its gradients like a GEMM reads its operands and writes a fresh
working copy, which later records may read.
"""

import numpy as np

from ganpu import numerics
from ganpu.core.descriptor import Op, Act
from ganpu.processor.program import TaskKind

__all__ = ["random_program", "pause_negate", "malformed", "random_hyper", "sets_variant"]


def _with_sets(cfg, sets):
    import dataclasses
    return dataclasses.replace(cfg, core=dataclasses.replace(cfg.core, buffer_sets=sets))


def config_from_env():
    """The processor config a bench simulates: ``small``, with ``GANPU_CORES`` cores,
    ``GANPU_GBUF_BITS`` GBUF address bits and ``GANPU_SETS`` buffer sets per core when
    the test asks for another size."""
    import dataclasses
    import os
    from ganpu.processor.config import config
    cfg = config("small")
    if os.environ.get("GANPU_CORES"):
        cfg = dataclasses.replace(cfg, cores=int(os.environ["GANPU_CORES"]))
    if os.environ.get("GANPU_GBUF_BITS"):
        cfg = dataclasses.replace(cfg, gbuf_bits=int(os.environ["GANPU_GBUF_BITS"]))
    if os.environ.get("GANPU_SETS"):
        cfg = _with_sets(cfg, int(os.environ["GANPU_SETS"]))
    return cfg


def sets_variant(cfg, name, run, env):
    """``(cfg, name)`` with ``run["sets"]`` buffer sets per core (if given and not the
    config's), passed to the bench as GANPU_SETS and appended to the build ``name``
    (the companion of ``harness.processor_variant``)."""
    sets = run.get("sets", cfg.core.buffer_sets)
    if sets == cfg.core.buffer_sets:
        return cfg, name
    env["GANPU_SETS"] = sets
    return _with_sets(cfg, sets), f"{name}_sets{sets}"


def random_hyper(rng):
    """SGD hyperparameters as binary32 bits: the training loop's kind, or random bits."""
    if rng.random() < 0.7:
        lr, mu = rng.choice([0.05, 0.01, 0.5]), rng.choice([0.0, 0.5, 0.9])
        scale = float(2.0 ** -int(rng.integers(0, 8)))
        return {k: int(numerics.f32_bits(np.float32(x))) for k, x in
                (("lr", lr), ("mu", mu), ("inv_scale", scale))}
    return {k: int(rng.integers(0, 1 << 32)) for k in ("lr", "mu", "inv_scale")}


def _f32_words(rng, n):
    """``2n`` words of ``n`` binary32 values (low half first): ordinary values, -0.0 and
    random bit patterns."""
    x = numerics.f32_bits(rng.normal(0, 1, n).astype(np.float32)).astype(np.uint32)
    x = np.where(rng.random(n) < 0.2, np.uint32(0x80000000), x)
    x = np.where(rng.random(n) < 0.1, rng.integers(0, 1 << 32, n).astype(np.uint32), x)
    return np.stack([x & 0xFFFF, x >> 16], axis=1).ravel().astype(np.uint16)


def _values(rng, n):
    v = numerics.f16_bits(rng.normal(0, 1, n).astype(np.float16))
    v = np.where(rng.random(n) < 0.3, np.uint16(0), v)
    return v.astype(np.uint16)


class _Alloc:
    def __init__(self, depth):
        self.top = 0
        self.depth = depth

    def take(self, n, rng, gap=3):
        start = self.top + int(rng.integers(0, gap + 1))
        if start + n > self.depth:
            raise MemoryError
        self.top = start + n
        return start


def _operand(rng, rows, cols, start):
    """Base and strides of a (rows, cols) operand starting at ``start``: row-major or
    transposed, with random padding; returns (operand dict, words spanned)."""
    pad = int(rng.integers(0, 3))
    if rng.random() < 0.5:
        s0, s1 = cols + pad, 1
    else:
        s0, s1 = 1, rows + pad
    span = (rows - 1) * s0 + (cols - 1) * s1 + 1
    return {"base": start, "s0": s0, "s1": s1}, span


def random_program(cfg, rng, ntasks, pause=True, update=False):
    """``(gbuf, records, pauses)``: initial GBUF image, records, and for each PAUSE index
    ``(src, dst, words)`` for :func:`pause_negate`. Record 0 is a GEMM; UPDATE records
    come with ``update``."""
    g = cfg.core.geom
    lanes = cfg.core.lanes
    alloc = _Alloc(cfg.gbuf_depth)
    gbuf = np.zeros(cfg.gbuf_depth, dtype=np.uint16)
    # initial data: one region of values and one of mask bits
    ninit = min(cfg.gbuf_depth // 4, 512)
    init = alloc.take(ninit, rng)
    gbuf[init:init + ninit] = _values(rng, ninit)
    nmask = min(cfg.gbuf_depth // 8, g.depth("mask"))
    minit = alloc.take(nmask, rng)
    gbuf[minit:minit + nmask] = rng.integers(0, 4, nmask)  # bit 0 is the mask, bit 1 ignored
    # (producer index, start, words) of every value/mask region written by a record
    values, masks = [], []
    records, pauses = [], {}
    for t in range(ntasks):
        deps = set()
        if pause and t > 0 and rng.random() < 0.12 and values:
            src = values[int(rng.integers(len(values)))]
            words = min(src[2], 16)
            try:
                dst = alloc.take(words, rng)
            except MemoryError:
                break
            deps = {src[0]}
            if len(deps) < cfg.deps and rng.random() < 0.5:
                deps.add(int(rng.integers(t)))
            records.append({"kind": TaskKind.PAUSE.value, "deps": sorted(deps)})
            pauses[t] = (src[1], dst, words)
            values.append((t, dst, words))
            continue
        if update and t > 0 and rng.random() < 0.15:
            count = int(rng.integers(1, 25))
            try:
                w_base = alloc.take(2 * count, rng)
                v_base = alloc.take(2 * count, rng)
                w16_base = alloc.take(count, rng)
            except MemoryError:
                break
            gbuf[w_base:w_base + 2 * count] = _f32_words(rng, count)
            gbuf[v_base:v_base + 2 * count] = _f32_words(rng, count)
            deps = set()
            cands = [p for p in values if p[2] >= count]
            if cands and rng.random() < 0.7:
                p = cands[int(rng.integers(len(cands)))]
                deps.add(p[0])
                g_base = p[1] + int(rng.integers(0, p[2] - count + 1))
            else:
                g_base = init + int(rng.integers(0, ninit - count + 1))
            if len(deps) < cfg.deps and rng.random() < 0.4:
                deps.add(int(rng.integers(t)))
            records.append({"kind": TaskKind.UPDATE.value, "deps": sorted(deps), "count": count,
                            "w_base": w_base, "v_base": v_base, "g_base": g_base,
                            "w16_base": w16_base, **random_hyper(rng)})
            values.append((t, w16_base, count))
            continue
        op = Op(int(rng.integers(3)))
        act = Act.IDENTITY if op == Op.WG else Act(int(rng.integers(3)))
        for _ in range(20):
            M, N, K = (int(x) for x in rng.integers(1, 9, 3))
            if M * K <= g.depth("a") and M * N <= min(g.depth("out"), g.depth("mask")) \
                    and N * K <= g.depth("b") and N <= g.depth("bias"):
                break
        rec = {"kind": TaskKind.GEMM.value, "op": op.value, "act": act.value, "m": M, "n": N, "k": K,
               "store_mask": int(rng.random() < 0.5)}
        if act == Act.LEAKY:
            rec["slope"] = int(numerics.f16_bits(np.float16(rng.choice([0.01, 0.2, -0.5]))))
        if op == Op.FP and act == Act.RELU:
            choice = rng.random()
            rec["eors"] = int(choice < 0.3)
            rec["use_mask"] = int(0.3 <= choice < 0.6)
        if rng.random() < 0.5:
            rec["bias"] = 1

        def source(words, pool, fallback):
            """A region of at least ``words`` words: an earlier record's (adding the
            dependency, if a slot is left) or the initial data."""
            cands = [p for p in pool if p[2] >= words and (p[0] in deps or len(deps) < cfg.deps)]
            if cands and rng.random() < 0.7:
                p = cands[int(rng.integers(len(cands)))]
                deps.add(p[0])
                return p[1] + int(rng.integers(0, p[2] - words + 1))
            return fallback + int(rng.integers(0, fallback_words(fallback) - words + 1))

        def fallback_words(base):
            return ninit if base == init else nmask

        pa = _operand(rng, M, K, 0)
        rec["a"], span = pa
        rec["a"]["base"] = source(span, values, init)
        pb = _operand(rng, N, K, 0)
        rec["b"], span = pb
        rec["b"]["base"] = source(span, values, init)
        if rec.get("bias"):
            rec["bias_base"] = source(N, values, init)
        if (op == Op.FP and rec.get("use_mask")) or (op == Op.BP and act != Act.IDENTITY):
            rec["mask_in_base"] = source(M * N, masks + values, minit)
        if t and len(deps) < cfg.deps and rng.random() < 0.4:
            deps.add(int(rng.integers(t)))
        rec["out"], span = _operand(rng, M, N, 0)
        try:
            rec["out"]["base"] = alloc.take(span, rng)
            out_words = span
            if rec["store_mask"]:
                rec["mask_out_base"] = alloc.take(M * N, rng)
        except MemoryError:
            break
        values.append((t, rec["out"]["base"], out_words))
        if rec["store_mask"]:
            masks.append((t, rec["mask_out_base"], M * N))
        rec["deps"] = sorted(deps)
        rec["work"] = M * N * K // lanes + 16
        rec["words"] = M * K + N * K + 2 * M * N
        if rng.random() < 0.3:
            rec["work"] *= 64  # big enough for the adaptive policy to split it
        records.append(rec)
    return gbuf, records, pauses


def pause_negate(pauses):
    """The host's work at a PAUSE: ``dst[i] = -src[i]`` (sign bit flipped)."""
    def on_pause(t, gbuf):
        src, dst, words = pauses[t]
        gbuf[dst:dst + words] = gbuf[src:src + words] ^ 0x8000
    return on_pause


UPDATE_MALFORMATIONS = ("update_count", "update_w", "update_v", "update_g", "update_w16")


def malformed(cfg, rng, records, what):
    """A copy of ``records`` with one record broken: ``what`` in "self_dep", "later_dep",
    "gbuf_range", "kind", "core" (a combination the core refuses), "core_range" (A beyond the
    core's buffer), or one of :data:`UPDATE_MALFORMATIONS` (a record turned into an
    UPDATE with count 0, or with one region ending beyond the GBUF); returns
    ``(records, index)``."""
    recs = [dict(r) for r in records]
    gemms = [i for i, r in enumerate(recs) if r["kind"] == TaskKind.GEMM.value]
    t = int(rng.choice(gemms))
    r = recs[t] = dict(recs[t])
    if what in UPDATE_MALFORMATIONS:
        count = int(rng.integers(2, 9))
        u = {"kind": TaskKind.UPDATE.value, "deps": r["deps"], "count": count, "w_base": 0,
             "v_base": 2 * count, "g_base": 4 * count, "w16_base": 5 * count, **random_hyper(rng)}
        if what == "update_count":
            u["count"] = 0
        else:
            # the region's first word inside the GBUF (the field holds it), its last beyond
            region = what.split("_")[1]
            words = 2 * count if region in ("w", "v") else count
            u[f"{region}_base"] = cfg.gbuf_depth - words + 1 + int(rng.integers(0, words - 1))
        recs[t] = u
        return recs, t
    if what == "self_dep":
        r["deps"] = [t]
    elif what == "later_dep":
        r["deps"] = [min(len(recs) - 1, t + 1 + int(rng.integers(2))) if t + 1 < len(recs) else t]
    elif what == "gbuf_range":
        r["out"] = dict(r["out"], base=cfg.gbuf_depth - 1)
    elif what == "kind":
        r["kind"] = 3
    elif what == "core":
        r.update(op=Op.WG.value, act=Act.RELU.value, use_mask=0, eors=0)  # WG is identity only
    elif what == "core_range":
        # A no longer fits the core's buffer (zero strides keep the GBUF ranges small)
        r.update(op=Op.FP.value, act=Act.IDENTITY.value, use_mask=0, eors=0, store_mask=0,
                 m=cfg.core.geom.depth("a") // r["k"] + 1)
        r["out"] = {"base": 0, "s0": 0, "s1": 0}
        r["a"] = {"base": 0, "s0": 0, "s1": 0}
    else:
        raise ValueError(f"Unknown malformation {what!r}")
    return recs, t
