"""cocotb bench: training steps of a GAN with every gemm and every weight update on the
processor's generated Verilog (through the package's driver and
:func:`ganpu.host.compiler.run_step_driver`), against the golden ``GAN.step``: after
each step the losses, and after the last every master, momentum and binary16 weight
read back from the GBUF, bit for bit.

Environment: GANPU_STEPS (default 2).
"""

import os

import cocotb
import numpy as np

from ganpu.host.compiler import compile_gan, run_step_driver
from ganpu.processor.program import Policy
from ganpu.sim.cocotb_bus import attach

from trainnets import CFG, tiny_gan

STEPS = int(os.environ.get("GANPU_STEPS", "2"))


@cocotb.test()
async def train_steps(dut):
    drv, _ = await attach(dut, CFG)
    ref, hw = tiny_gan(), tiny_gan()
    program = compile_gan(CFG, hw, update=True)
    policies = [Policy.ADAPTIVE, Policy.TEMPORAL, Policy.SPATIAL]
    for s in range(STEPS):
        want = ref.step()
        got, _, counters = await run_step_driver(drv, program, hw, policies[s % 3], read_back=False,
                                                 weights=s == 0, sync=s == STEPS - 1)
        assert got == want, f"step {s}: losses {got} != {want}"
        dut._log.info(f"step {s} ({policies[s % 3].name}): {got}, {counters['cycles']} cycles")
    for net in ("G", "D"):
        opt_r, opt_h = (ref.opt_g, hw.opt_g) if net == "G" else (ref.opt_d, hw.opt_d)
        for a, b in zip(getattr(ref, net).layers, getattr(hw, net).layers):
            for t in ("w", "b"):
                for what, x, y in (("master", getattr(a, f"{t}32"), getattr(b, f"{t}32")),
                                   ("momentum", opt_r.v[(a.name, f"{t}32")], opt_h.v[(b.name, f"{t}32")]),
                                   ("binary16 copy", getattr(a, f"{t}16"), getattr(b, f"{t}16"))):
                    x, y = np.asarray(x), np.asarray(y)
                    assert np.array_equal(x.view(np.uint16 if x.dtype == np.uint16 else np.uint32),
                                          y.view(np.uint16 if y.dtype == np.uint16 else np.uint32)), \
                        f"{net}.{a.name}.{t}: {what} differs after {STEPS} steps"
