"""cocotb bench of the processor's EORS calibration counter bank (``docs/memory-map.md``,
``docs/eors.md``) against :func:`ganpu.processor.model.eors_bank`.

Programs (pickled by ``test_eors_csr.py``: random records with EORS tasks, random
slots and levels, on operands that include tiny values, so false zeros occur; and
real FP ReLU gemms of the MLP GAN, one slot per layer) run each under the three
policies in turn; after DONE the bench compares every GBUF word with
:func:`ganpu.processor.model.run_program` (sampling leaves the results alone) and the
whole bank, read through the driver, with the model (no schedule: sampling is a pure
function of each record's key, the row and the word, so every policy must give the
same counts), carried from run to run (no clear), then the driver's read with clear and
an empty bank after it. Refusals: writes to counter CSRs and reads beyond the last slot
get ``error`` and set BUS_ERROR, and change nothing.

Environment: GANPU_PROGRAMFILE (the pickle), GANPU_CORES, GANPU_GBUF_BITS,
GANPU_SAMPLE_LOG2, GANPU_HOST_WORDS (the test config: ``small`` with scale-aware cores
sampling 1 in 2**r, a host port of that many elements), GANPU_TRAIN_CONFIG (1:
``trainnets.CFG`` instead).
"""

import os
import pickle

import cocotb
import numpy as np

from ganpu.core.model import EORS_COUNTERS
from ganpu.processor.model import run_program, eors_bank
from ganpu.processor.program import Policy, Csr, ProgramError, EORS_SLOTS, EORS_BANK_WORDS, eors_csr
from ganpu.sim.cocotb_bus import attach


def config_from_env():
    """The test config: ``small`` (cores and GBUF bits from the environment) whose cores
    predict in scale-aware mode, sample 1 in 2**GANPU_SAMPLE_LOG2 and have a host port
    of GANPU_HOST_WORDS elements (default ``small``'s); with
    GANPU_TRAIN_CONFIG=1 test_train's (``trainnets.CFG``, such a config), whose build the
    test shares."""
    import dataclasses
    if int(os.environ.get("GANPU_TRAIN_CONFIG", "0")):
        from trainnets import CFG
        return CFG
    from tb_processor_programs import config_from_env as small
    from ganpu.model.eors import EorsParams
    cfg = small()
    core = dataclasses.replace(cfg.core, eors=EorsParams(threshold=0, rel=9),
                               eors_sample_log2=int(os.environ.get("GANPU_SAMPLE_LOG2", "2")),
                               host_words=int(os.environ.get("GANPU_HOST_WORDS",
                                                             cfg.core.host_words)))
    return dataclasses.replace(cfg, core=core)


CFG = config_from_env()
EMPTY = [dict.fromkeys(EORS_COUNTERS, 0) for _ in range(EORS_SLOTS)]
# What the GBUF holds: block RAM starts at 0 and keeps its words across the resets
# between the tests of one simulation.
SHADOW = np.zeros(CFG.gbuf_depth, dtype=np.uint16)


def _programs():
    with open(os.environ["GANPU_PROGRAMFILE"], "rb") as f:
        return pickle.load(f)


async def _run_all(dut, programs):
    drv, _ = await attach(dut, CFG)
    bank = EMPTY
    for name, gbuf, records, policy in programs:
        diff = np.flatnonzero(gbuf != SHADOW)
        await drv.write_gbuf_words(diff, gbuf[diff])
        await drv.run(records, Policy(policy))
        err, task, _, want = run_program(CFG, gbuf, records)
        assert err == ProgramError.OK, (name, err, task)
        got = await drv.read_gbuf(0, CFG.gbuf_depth)
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, f"{name}: {bad.size} GBUF words differ, first at {bad[:8].tolist()}"
        SHADOW[:] = got
        bank = eors_bank(CFG, gbuf, records, bank=bank)
        have = await drv.read_eors_bank(clear=False)
        assert have == bank, f"{name} ({Policy(policy).name}): bank {have} != model {bank}"
        dut._log.info(f"{name}: {Policy(policy).name}, bank total "
                      f"{ {k: sum(s[k] for s in bank) for k in EORS_COUNTERS} }")
    assert await drv.read_eors_bank(clear=True) == bank
    assert await drv.read_eors_bank(clear=False) == EMPTY
    return drv


@cocotb.test()
async def bank_against_model(dut):
    await _run_all(dut, _programs())


@cocotb.test()
async def refused_accesses(dut):
    """Counter CSRs are read only, the bank ends at its last slot: such accesses are
    refused, set BUS_ERROR and change nothing; CTRL bit 3 empties the bank."""
    drv, _ = await attach(dut, CFG)
    name, gbuf, records, policy = _programs()[-1]
    diff = np.flatnonzero(gbuf != SHADOW)
    await drv.write_gbuf_words(diff, gbuf[diff])
    SHADOW[:] = gbuf
    await drv.run(records, Policy(policy))
    SHADOW[:] = run_program(CFG, gbuf, records)[3]
    before = await drv.read_eors_bank(clear=False)
    assert before != EMPTY
    for s, j, hi in [(0, 0, 0), (0, 0, 1), (EORS_SLOTS - 1, 3, 1), (3, 2, 0)]:
        await drv.clear()
        with_error = await drv._access(drv_addr(eors_csr(s, j, hi)), 1, 0x1234, check=False)
        assert with_error[1] == 1, f"write of EORS slot {s} counter {j} hi={hi} accepted"
        assert await drv.read_csr(Csr.BUS_ERROR) == 1
    for off in (Csr.EORS.value + EORS_SLOTS * EORS_BANK_WORDS, 255, (1 << 22) - 1):
        await drv.clear()
        _, err = await drv._access(drv_addr(off), 0, check=False)
        assert err == 1, f"read of CSR {off} beyond the bank accepted"
        assert await drv.read_csr(Csr.BUS_ERROR) == 1
    await drv.clear()
    assert await drv.read_csr(Csr.BUS_ERROR) == 0
    assert await drv.read_eors_bank(clear=False) == before
    await drv.clear_eors()
    assert await drv.read_eors_bank(clear=False) == EMPTY


def drv_addr(offset):
    from ganpu.host.processor_driver import address
    from ganpu.processor.program import Region
    return address(Region.CSR, offset)
