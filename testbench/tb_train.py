"""cocotb bench: training steps of a GAN with every gemm and every weight update on the
processor's generated Verilog (through the package's driver and
:func:`ganpu.host.compiler.run_step_driver`), against a reference: after each step the
losses, and after the last every master, momentum and binary16 weight read back from
the GBUF, bit for bit.

* ``train_steps``: the tiny GAN without EORS against the golden ``GAN.step``.
* ``train_calibrated``: the tiny GAN with EORS on scale-aware, sampling cores and
  self-calibration between steps (``docs/eors.md``, "Calibration in the training
  loop"): each step's counter bank read and cleared over the bus feeds an
  :class:`~ganpu.host.calibrate.EorsCalibration`, which writes the levels and sampling
  keys of the next step; against ``DeviceTrainer(..., "model", calibrate=...)`` on the
  program model. The policy changes every step (adaptive, temporal, spatial): the
  bank, hence the levels chosen after every step, must be the model's.

Environment: GANPU_STEPS (default 2), GANPU_CAL_STEPS (default 2).
"""

import os

import cocotb
import numpy as np

from ganpu.gan.train import DeviceTrainer
from ganpu.host.calibrate import EorsCalibration
from ganpu.host.compiler import compile_gan, run_step_driver
from ganpu.processor.program import Policy
from ganpu.sim.cocotb_bus import attach

from trainnets import CFG, tiny_gan, calibrator

STEPS = int(os.environ.get("GANPU_STEPS", "2"))
CAL_STEPS = int(os.environ.get("GANPU_CAL_STEPS", "2"))
POLICIES = [Policy.ADAPTIVE, Policy.TEMPORAL, Policy.SPATIAL]


def same_state(ref, hw, steps):
    """Every master, momentum and binary16 weight of ``hw`` equals ``ref``'s."""
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
                        f"{net}.{a.name}.{t}: {what} differs after {steps} steps"


@cocotb.test()
async def train_steps(dut):
    drv, _ = await attach(dut, CFG)
    ref, hw = tiny_gan(), tiny_gan()
    program = compile_gan(CFG, hw, update=True)
    for s in range(STEPS):
        want = ref.step()
        got, _, counters = await run_step_driver(drv, program, hw, POLICIES[s % 3], read_back=False,
                                                 weights=s == 0, sync=s == STEPS - 1)
        assert got == want, f"step {s}: losses {got} != {want}"
        dut._log.info(f"step {s} ({POLICIES[s % 3].name}): {got}, {counters['cycles']} cycles")
    same_state(ref, hw, STEPS)


@cocotb.test()
async def train_calibrated(dut):
    drv, _ = await attach(dut, CFG)
    ref, hw = tiny_gan(eors=CFG.core.eors), tiny_gan(eors=CFG.core.eors)
    with DeviceTrainer(ref, "model", CFG, calibrate=calibrator()) as tr:
        want = tr.train(CAL_STEPS)
        want_levels = tr.levels
    program = compile_gan(CFG, hw, update=True)
    cal = EorsCalibration(program, calibrator())
    await drv.clear_eors()
    for s in range(CAL_STEPS):
        got, _, counters = await run_step_driver(drv, program, hw, POLICIES[s % 3], read_back=False,
                                                 weights=s == 0, sync=s == CAL_STEPS - 1)
        assert got == want[s], f"step {s}: losses {got} != {want[s]}"
        levels = await cal.step_driver(drv)
        assert levels == want_levels[s], f"step {s}: levels {levels} != model {want_levels[s]}"
        dut._log.info(f"calibrated step {s} ({POLICIES[s % 3].name}): {got}, levels {levels}, "
                      f"{counters['cycles']} cycles")
    start = CFG.core.eors.rel
    assert any(q != start for lv in want_levels for q in lv.values()), \
        f"the levels never left {start}: {want_levels}"
    same_state(ref, hw, CAL_STEPS)
