"""cocotb bench that runs a list of core tasks (GANPU_TASKFILE, a pickle of
``[(name, desc, loads), ...]``), checks each against the model bit for bit, and
writes each task's measured cycles (and the speculator's issue cycles) to
GANPU_RESULTS (JSON). Used by the real-data
tests and by ``ganpu bench core``."""

import json
import os
import pickle

import cocotb

from tb_core import Shadow, start, run_and_compare


@cocotb.test()
async def task_list(dut):
    with open(os.environ["GANPU_TASKFILE"], "rb") as f:
        tasks = pickle.load(f)
    drv = await start(dut)
    shadow = Shadow()
    await shadow.sync(drv)
    results = []
    for name, desc, loads in tasks:
        await shadow.load(drv, loads)
        err, cycles = await run_and_compare(drv, shadow, desc, name)
        assert err.value == 0, f"{name}: refused with {err!r}"
        results.append({"name": name, "cycles": cycles,
                        "eors_cycles": dut.eors_cycles.value.to_unsigned()})
        dut._log.info("%s: %d cycles, bit-exact", name, cycles)
    with open(os.environ["GANPU_RESULTS"], "w") as f:
        json.dump(results, f)
