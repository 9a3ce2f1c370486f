"""cocotb bench of EORS self-calibration on the whole core: the sampled outputs and
the four per-task counters against :func:`ganpu.core.model.eors_counts`.

The pytest entry point (``test_eors_core.py``) pickles ``[(name, desc, loads), ...]``
(GANPU_TASKFILE) and passes the core's configuration (GANPU_CORE). Per task the bench
loads the operands through the host port, runs the task with the package's driver and
checks

* the error code and every buffer a task writes (OUT, MASK_OUT, MASK_IN), bit for bit,
  with :func:`ganpu.core.model.run_task`: a sampled output is computed but still
  written +0 with mask 0, so results do not depend on sampling;
* the counters ``eors_live``, ``eors_false_live``, ``eors_sampled`` and
  ``eors_false_zero`` of the task port with :func:`ganpu.core.model.eors_counts`
  (sampling with each descriptor's ``eors_key``: nothing carried between tasks).
"""

import os
import pickle

import cocotb

from ganpu.core.model import eors_counts, EORS_COUNTERS
from ganpu.sim.cocotb_transport import attach, config_from_env

CONFIG = config_from_env()


@cocotb.test()
async def calibration_counters(dut):
    with open(os.environ["GANPU_TASKFILE"], "rb") as f:
        tasks = pickle.load(f)
    drv = await attach(dut, CONFIG)
    await drv.sync()
    port = drv.transport.p
    totals = dict.fromkeys(EORS_COUNTERS, 0)
    for name, desc, loads in tasks:
        await drv.load(loads)
        want = eors_counts(desc, drv.shadow, CONFIG)
        await drv.run_checked(desc, name)
        got = {k: port[f"eors_{k}"].value.to_unsigned() for k in EORS_COUNTERS}
        assert got == want, f"{name}: counters {got}, model {want}"
        for k in totals:
            totals[k] += got[k]
    dut._log.info("%d tasks bit-exact, counters equal: %s", len(tasks), totals)
