"""The processor's blocks without a simulator: parameter messages, transaction-level
models against the program model, and the docs' tables against the formats."""

import gc

import numpy as np
import pytest

from ganpu.processor import config
from ganpu.processor.bus import BusFrontEnd, csr_names
from ganpu.processor.checker import ProgramChecker
from ganpu.processor.dma import Dma
from ganpu.processor.gbuf import Gbuf
from ganpu.processor.model import (normalize, gather, scatter, split_rows, record_bus_words,
                                   pack_record, reads_mask_in, eors_active, check_program)
from ganpu.processor.processor import Processor
from ganpu.processor.program import Region, State, Csr, ProgramError, task_layout, record_words
from ganpu.processor.scheduler import Scheduler
from ganpu.processor.task_table import TaskTable

from tb_processor_programs import random_program
from doctables import doc_table

CFG = config("small")


@pytest.fixture
def unused_is_an_error():
    """A refused component must never exist: after an elaboration Amaranth warns about
    every component that was built and never used, and the collection at the end makes
    such a leftover fail this test rather than whichever test the collector runs in."""
    from amaranth.hdl import Fragment
    from ganpu.arith.widen import Fp16ToFp32
    Fragment.get(Fp16ToFp32(), None)
    yield
    gc.collect()


@pytest.mark.parametrize("cls", [Gbuf, TaskTable, BusFrontEnd, ProgramChecker, Dma, Scheduler])
def test_cfg_is_validated(cls, unused_is_an_error):
    with pytest.raises(TypeError, match="cfg must be a ProcessorConfig, not 'small'"):
        cls("small")


def test_processor_cfg(unused_is_an_error):
    with pytest.raises(KeyError, match="Unknown processor config 'huge'"):
        Processor("huge")
    with pytest.raises(TypeError, match="cfg must be a ProcessorConfig, not 3"):
        Processor(3)


def test_dma_model_is_gather_and_scatter():
    """A load job split over the cores and one store job per core move the words the
    program model gathers and scatters."""
    rng = np.random.default_rng(3)
    gbuf, recs, _ = random_program(CFG, rng, 10, pause=False)
    for rec in recs:
        r = normalize(CFG, rec)
        parts = split_rows(r["m"], CFG.cores)
        rows = [{"m0": m0, "mc": m1 - m0} for m0, m1 in parts] + \
            [{"m0": 0, "mc": 0}] * (CFG.cores - len(parts))
        job = {"group": (1 << len(parts)) - 1, "rows": rows, "n": r["n"], "k": r["k"],
               "a": r["a"], "b": r["b"], "bias": r["bias"], "bias_base": r["bias_base"],
               "mask_in": int(reads_mask_in(r)), "mask_in_base": r["mask_in_base"],
               "bw": int(eors_active(r))}
        cores = [CFG.core.zero_buffers() for _ in range(CFG.cores)]
        Dma.model(CFG, "load", job, gbuf, cores)
        for c, (m0, m1) in enumerate(parts):
            want = gather(CFG, r, gbuf, m0, m1)
            for name in ("a", "b", "bias", "mask_in", "bw"):
                np.testing.assert_array_equal(cores[c][name], want[name], err_msg=name)
        out_model, out_dma = gbuf.copy(), gbuf.copy()
        for c, (m0, m1) in enumerate(parts):
            cores[c]["out"][:] = rng.integers(0, 1 << 16, cores[c]["out"].size)
            cores[c]["mask_out"][:] = rng.integers(0, 2, cores[c]["mask_out"].size)
            scatter(CFG, r, out_model, cores[c], m0, m1)
            Dma.model(CFG, "store", {"core": c, "m0": m0, "mc": m1 - m0, "n": r["n"], "out": r["out"],
                                "store_mask": r["store_mask"], "mask_out_base": r["mask_out_base"]},
                      out_dma, cores)
        np.testing.assert_array_equal(out_dma, out_model)


def test_task_table_model():
    rng = np.random.default_rng(4)
    _, recs, _ = random_program(CFG, rng, 4)
    W = record_words(CFG)
    writes = [(t * W + i, w) for t, rec in enumerate(recs) for i, w in enumerate(record_bus_words(CFG, rec))]
    got = TaskTable.model(CFG, [0] * CFG.program_depth, writes)
    assert got[:len(recs)] == [pack_record(CFG, r) for r in recs]


def test_bus_refusals():
    bus = _Bound(BusFrontEnd.model, CFG)
    assert not bus.model(State.IDLE, Region.GBUF, CFG.gbuf_depth - 1, 1)
    assert bus.model(State.IDLE, Region.GBUF, CFG.gbuf_depth, 0)
    assert bus.model(State.RUNNING, Region.GBUF, 0, 0)
    assert not bus.model(State.PAUSED, Region.PROGRAM, 0, 1)
    assert bus.model(State.CHECKING, Region.PROGRAM, 0, 0)
    assert not bus.model(State.RUNNING, Region.CSR, Csr.CTRL.value, 1)
    assert bus.model(State.RUNNING, Region.CSR, Csr.POLICY.value, 1)
    assert bus.model(State.IDLE, Region.CSR, Csr.STATE.value, 1)
    assert not bus.model(State.IDLE, Region.CSR, Csr.CORE_BUSY.value + 2 * CFG.cores - 1, 0)
    assert bus.model(State.IDLE, Region.CSR, Csr.CORE_BUSY.value + 2 * CFG.cores, 0)
    assert bus.model(State.IDLE, 3, 0, 0)


def test_checker_model():
    rng = np.random.default_rng(5)
    _, recs, _ = random_program(CFG, rng, 4)
    assert ProgramChecker.model(CFG, recs) == check_program(CFG, recs)
    assert ProgramChecker.model(CFG, [])[0] == ProgramError.EMPTY


class _Bound:
    def __init__(self, fn, cfg):
        self.fn, self.cfg = fn, cfg

    def model(self, *args):
        return self.fn(self.cfg, *args)




def test_docs_tables():
    rows = doc_table("program.md")
    layout = task_layout(config("sim"))
    want = {name: [str(f.width), str(f.offset)] for name, f in layout}
    assert {n: rows[n][:2] for n in want if n in rows} == want, "docs/program.md: record table"
    want = {e.name: str(e.value) for e in ProgramError}
    assert {n: rows[n][0] for n in want if n in rows} == want, "docs/program.md: error table"
    rows = doc_table("processor.md")
    want = {c.name: str(c.value) for c in Csr}
    assert {n: rows[n][0] for n in want if n in rows} == want, "docs/processor.md: CSR table"
    assert set(csr_names(CFG).values()) >= {c.name for c in Csr if c not in (Csr.CORE_BUSY, Csr.EORS)}


@pytest.mark.parametrize("sets", [1, 2])
@pytest.mark.parametrize("cores", [1, 2, 3])
@pytest.mark.parametrize("cls", [Dma, Scheduler, BusFrontEnd])
def test_blocks_elaborate_for_any_core_count(cls, cores, sets):
    """With one core the per-core loops are empty: no condition may fall back on a Python
    int (``~0`` is a signed -1, which Amaranth warns about and a warning fails here);
    with one and two buffer sets per core."""
    from dataclasses import replace
    from amaranth.hdl import Fragment
    cfg = replace(CFG, cores=cores, core=replace(CFG.core, buffer_sets=sets))
    Fragment.get(cls(cfg), None)
