"""The compute core on generated Verilog against its bit-exact model, both simulators."""

import numpy as np
import pytest

import harness
from ganpu.core import Core, Geometry
from ganpu.core import model
from ganpu.core.descriptor import Error


# Verilator takes the long random sweep; Icarus runs every bench, with fewer tasks.
TASKS = {"verilator": 40, "icarus": 6}


@pytest.mark.parametrize("sim", harness.SIMULATORS)
def test_core(sim):
    ntasks = max(1, int(TASKS[sim] * harness.scale()))
    harness.run(sim, Core(lanes=4), "ganpu_core", "tb_core",
                env={"GANPU_SEED": 11, "GANPU_TASKS": ntasks,
                     "GANPU_ERRORS": 1 if sim == "verilator" else 0})


def test_parameters_are_validated():
    with pytest.raises(ValueError, match=r"lanes must be an integer in 1\.\.16, not 0"):
        Core(lanes=0)
    with pytest.raises(ValueError, match=r"a_bits must be an integer in 1\.\.16, not 20"):
        Geometry(a_bits=20)
    with pytest.raises(TypeError, match="geom must be a Geometry"):
        Core(geom=12)


def test_model_check_order():
    """The model's checker reports the first failing check (the hardware's order)."""
    g = Geometry()
    desc = dict(op=3, act=3, m=0, n=1, k=1, a_base=0, a_sm=0, a_sk=0, b_base=0, b_sn=0,
                b_sk=0, o_base=0, o_sm=0, o_sn=0, bias_base=0)
    assert model.check(desc, g) == Error.BAD_OP
    assert model.check({**desc, "op": 0}, g) == Error.BAD_ACT
    assert model.check({**desc, "op": 0, "act": 0}, g) == Error.ZERO_DIM
    assert model.check({**desc, "op": 0, "act": 0, "m": 1}, g) == Error.OK
