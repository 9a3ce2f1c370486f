"""cocotb bench that runs a list of core tasks and checks each against the model.

Environment: GANPU_TASKFILE (a pickle of ``[(name, desc, loads), ...]``), GANPU_RESULTS
(JSON written here: each task's name, measured ``cycles`` and the speculator's
``eors_cycles``), GANPU_CORE or GANPU_EORS_LANES (the simulated core's configuration, for the model, see
:func:`ganpu.sim.cocotb_transport.config_from_env`; default the :class:`CoreConfig`
default). Every task must be accepted and match
:func:`ganpu.core.model.run_task` bit for bit in every buffer it can write. Used by the
real-data tests and by ``ganpu bench core|eors``; the runner puts this folder on the
simulator's PYTHONPATH, so no source checkout is needed.
"""

import json
import os
import pickle

import cocotb

from ganpu.sim.cocotb_transport import attach, config_from_env


@cocotb.test()
async def task_list(dut):
    with open(os.environ["GANPU_TASKFILE"], "rb") as f:
        tasks = pickle.load(f)
    drv = await attach(dut, config_from_env())
    await drv.sync()
    results = []
    for task in tasks:
        (row,) = await drv.run_tasks([task])
        row["eors_cycles"] = drv.transport.eors_cycles
        results.append(row)
        dut._log.info("%s: %d cycles, bit-exact", row["name"], row["cycles"])
    with open(os.environ["GANPU_RESULTS"], "w") as f:
        json.dump(results, f)
