"""cocotb fuzzer of the processor (:class:`ganpu.processor.processor.Processor`, the
``small`` config or a variant) against :func:`ganpu.processor.model.run_program`:
many short random programs, every GBUF word read back after each.

Three kinds of program, at random:

* ``program``: :func:`tb_processor_programs.random_program` (1..5 records: GEMMs of
  every op, activation, EORS and mask option, PAUSE records served by the host,
  UPDATE records), under a random policy;
* ``malformed``: one record of such a program broken
  (:func:`tb_processor_programs.malformed`: a dependency on itself or a later
  record, an operand past the GBUF, an undefined kind, a combination or a size the
  core refuses, an UPDATE with count 0 or a region past the GBUF): the verdict,
  record and core code must be the model's and the GBUF unchanged;
* ``field``: a one-GEMM program with one to three fields of its record (any field of
  :func:`~ganpu.processor.program.task_layout`) set to a random value or an edge (0, 1,
  the top of its width, the GBUF's last word and one past it, a core buffer's depth
  and one past it), run on one core (SPATIAL: with one record and one core the
  result does not depend on the schedule, whatever the operands overlap); accepted or
  refused, the result must be the model's.

A program that does not finish within the driver's polls counts as a hang: the
design is reset and the GBUF re-read. Results (counts by kind and verdict,
mismatches, hangs, cycles) go to ``GANPU_FUZZ_RESULTS`` as JSON; the test asserts
on them.

Environment: GANPU_SEED, GANPU_PROGRAMS, GANPU_CORES and GANPU_GBUF_BITS (the small
config with that many cores or GBUF address bits, as built), GANPU_FUZZ_RESULTS.
"""

import json
import os
import random
from collections import Counter

import cocotb
import numpy as np
from amaranth.lib import data
from cocotb.triggers import FallingEdge
from cocotb.utils import get_sim_time

from ganpu.core.descriptor import Error
from ganpu.host.processor_driver import ProgramFailed
from ganpu.processor.model import normalize, record_bus_words, run_program
from ganpu.processor.program import Policy, ProgramError, TaskKind, task_layout
from ganpu.sim.cocotb_bus import CLOCK_NS, attach

from tb_processor_programs import (UPDATE_MALFORMATIONS, config_from_env, malformed, pause_negate,
                                   random_program)

CFG = config_from_env()
SEED = int(os.environ.get("GANPU_SEED", "1"))
PROGRAMS = int(os.environ.get("GANPU_PROGRAMS", "20"))
RESULTS = os.environ.get("GANPU_FUZZ_RESULTS")

MALFORMATIONS = ("self_dep", "later_dep", "gbuf_range", "kind", "core", "core_range") + UPDATE_MALFORMATIONS
# polls of 16 cycles before a program counts as hung: far beyond the longest program
# here (five records of at most 8 x 8 x 8, or 24-parameter updates)
POLLS = 4000

__all__ = ["field_paths", "mutate_fields", "fuzz_program", "host_work"]


def field_paths(cfg):
    """``[(path, width), ...]`` of every leaf field of a GEMM record, deps included."""
    out = []

    def walk(layout, path):
        if isinstance(layout, data.StructLayout):
            for name, f in layout:
                walk(f.shape, path + (name,))
        elif isinstance(layout, data.ArrayLayout):
            for i in range(layout.length):
                walk(layout.elem_shape, path + (i,))
        else:
            out.append((path, data.Layout.cast(layout).size if isinstance(layout, data.Layout)
                        else _width(layout)))
    walk(task_layout(cfg), ())
    return out


def _width(shape):
    from amaranth.hdl import Shape
    return Shape.cast(shape).width


def _edge(cfg, rng, width):
    g = cfg.core.geom
    top = (1 << width) - 1
    cands = [0, 1, top, rng.randrange(top + 1)]
    for v in (cfg.gbuf_depth - 1, cfg.gbuf_depth, g.depth("a"), g.depth("a") + 1,
              g.depth("out"), g.depth("out") + 1):
        if v <= top:
            cands.append(v)
    return rng.choice(cands)


def mutate_fields(cfg, rng, rec):
    """``rec`` (normalized) with one to three random fields set to random or edge values;
    ``kind`` only to GEMM, PAUSE or an undefined code (an UPDATE reads other fields)."""
    rec = normalize(cfg, rec)
    paths = field_paths(cfg)
    for _ in range(rng.randrange(1, 4)):
        path, width = rng.choice(paths)
        if path == ("kind",):
            value = rng.choice([TaskKind.GEMM.value, TaskKind.PAUSE.value, 3])
        else:
            value = _edge(cfg, rng, width)
        target = rec
        for p in path[:-1]:
            target = target[p]
        target[path[-1]] = value
    return rec


def fuzz_program(cfg, rng, nprng):
    """``(kind, gbuf image, records, pauses, policy)`` of one random program whose
    records fit the table's fields (a malformation may name an address one past a
    field's width: drawn again)."""
    while True:
        prog = _fuzz_program(cfg, rng, nprng)
        try:
            for rec in prog[2]:
                record_bus_words(cfg, rec)
        except ValueError:
            continue
        return prog


def _fuzz_program(cfg, rng, nprng):
    r = rng.random()
    if r < 0.5:
        image, recs, pauses = random_program(cfg, nprng, rng.randrange(1, 6), update=True)
        return "program", image, recs, pauses, rng.choice(list(Policy))
    if r < 0.7:
        image, recs, _ = random_program(cfg, nprng, rng.randrange(2, 6), pause=False)
        bad, _ = malformed(cfg, nprng, recs, rng.choice(MALFORMATIONS))
        return "malformed", image, bad, {}, rng.choice(list(Policy))
    image, recs, _ = random_program(cfg, nprng, 1, pause=False)
    return "field", image, [mutate_fields(cfg, rng, recs[0])], {}, Policy.SPATIAL


def host_work(pauses):
    """The model's host work at a PAUSE: :func:`pause_negate` for the generator's
    PAUSE records, nothing for one a field mutation made."""
    negate = pause_negate(pauses)

    def on_pause(t, gbuf):
        if t in pauses:
            negate(t, gbuf)
    return on_pause


class Shadow:
    """What the GBUF holds (block RAM keeps its words across resets)."""

    def __init__(self, drv):
        self.drv = drv
        self.words = np.zeros(CFG.gbuf_depth, dtype=np.uint16)

    async def put(self, image):
        diff = np.flatnonzero(image != self.words)
        await self.drv.write_gbuf_words(diff, image[diff])
        self.words = np.array(image, dtype=np.uint16)

    async def read(self):
        self.words = await self.drv.read_gbuf(0, CFG.gbuf_depth)
        return self.words


@cocotb.test()
async def fuzz_programs(dut):
    rng = random.Random(SEED)
    nprng = np.random.default_rng(SEED)
    drv, t = await attach(dut, CFG)
    shadow = Shadow(drv)
    stats = Counter()
    verdicts = Counter()
    failures = []
    start = get_sim_time("ns")
    for p in range(PROGRAMS):
        kind, image, recs, pauses, policy = fuzz_program(CFG, rng, nprng)
        err, task, core_err, expect = run_program(CFG, image, recs, host_work(pauses))
        verdicts[err.name if err != ProgramError.CORE else f"CORE.{core_err.name}"] += 1
        stats[kind] += 1
        await shadow.put(image)

        async def on_pause(at, d):
            if at not in pauses:        # a PAUSE made by a field mutation: no host work
                return
            src, dst, words = pauses[at]
            got = await d.read_gbuf(src, words)
            await d.write_gbuf(dst, got ^ 0x8000)

        got_err = (ProgramError.OK, 0, Error.OK)
        try:
            await drv.run(recs, policy, on_pause, polls=POLLS)
        except ProgramFailed as e:
            got_err = (e.error, e.task, e.core_error)
        except TimeoutError:
            stats["hangs"] += 1
            failures.append(f"program {p} ({kind}, {policy.name}): hang")
            await t.reset()
            await shadow.read()
            continue
        if got_err != (err, task, core_err):
            stats["wrong_verdicts"] += 1
            failures.append(f"program {p} ({kind}): verdict {got_err}, model {(err, task, core_err)}")
        words = await shadow.read()
        bad = np.flatnonzero(words != expect)
        if bad.size:
            stats["mismatches"] += 1
            failures.append(f"program {p} ({kind}, {policy.name}, {err.name}): {bad.size} GBUF words "
                            f"differ, first at {bad[:6].tolist()}: got {words[bad[:6]].tolist()} "
                            f"expected {expect[bad[:6]].tolist()}")
            shadow.words = words
    await FallingEdge(dut.clk)
    result = {"programs": PROGRAMS, "kinds": {k: stats[k] for k in ("program", "malformed", "field")},
              "verdicts": dict(verdicts), "mismatches": stats["mismatches"],
              "wrong_verdicts": stats["wrong_verdicts"], "hangs": stats["hangs"],
              "cycles": int((get_sim_time("ns") - start) // CLOCK_NS),
              "failures": failures[:20]}
    if RESULTS:
        with open(RESULTS, "w") as f:
            json.dump(result, f)
    dut._log.info(json.dumps({k: v for k, v in result.items() if k != "failures"}))
    assert not failures, "\n".join(failures[:20])
