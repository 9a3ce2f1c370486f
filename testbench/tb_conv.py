"""cocotb bench of convolution tasks on the whole core: each task of the task file is
loaded and run through the host driver, and its error code and every buffer a task can
write must equal :func:`ganpu.core.model.run_task` (accepted tasks bit-exact; malformed
ones refused with the model's code, OUT, MASK_OUT and MASK_IN unchanged).

Environment: GANPU_TASKFILE (pickle of ``[(name, desc, loads, expect_ok), ...]``),
GANPU_CORE / GANPU_EORS_LANES (the core's configuration, see
:func:`ganpu.sim.cocotb_transport.config_from_env`).
"""

import os
import pickle

import cocotb
import numpy as np

from ganpu.core.descriptor import Error
from ganpu.sim.cocotb_transport import attach, config_from_env


@cocotb.test()
async def conv_tasks(dut):
    with open(os.environ["GANPU_TASKFILE"], "rb") as f:
        tasks = pickle.load(f)
    config = config_from_env()
    drv = await attach(dut, config)
    rng = np.random.default_rng(5)
    # known, non-zero contents, so "wrote nothing" is visible
    await drv.load({name: (0, rng.integers(0, 1 << 16 if name == "out" else 2,
                                           config.depth(name)).astype(np.uint16))
                    for name in ("out", "mask_out", "mask_in")})
    await drv.sync()
    refused = 0
    for name, desc, loads, expect_ok in tasks:
        await drv.load(loads)
        err, cycles = await drv.run_checked(desc, name)
        assert (err == Error.OK) == expect_ok, f"{name}: {err!r}"
        refused += err != Error.OK
        dut._log.info("%s: %s, %d cycles, as the model", name, err.name, cycles)
    dut._log.info("%d conv tasks as the model (%d refused, buffers intact)", len(tasks), refused)
