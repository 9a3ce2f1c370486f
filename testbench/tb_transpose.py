"""cocotb bench of the DMA's transpose buffer (``Transpose``): runs of steps after a
restart, each cycle a step with probability ``p`` (else idle), every step's output
compared the cycle after it with :meth:`Transpose.model` (from the W-th step of a run
on), and ``o_data`` checked to hold between steps.

Environment: GANPU_CASE (pickle: ``{"words": W, "runs": [{"name", "vectors": (S, W)
array, "p"}]}``).
"""

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from blockwrap import load_case, uint
from ganpu.processor.transpose import Transpose


def _pack(vector):
    return sum(int(v) << (16 * j) for j, v in enumerate(vector))


def _unpack(word, W):
    return [word >> (16 * j) & 0xFFFF for j in range(W)]


@cocotb.test()
async def runs(dut):
    case = load_case()
    W = case["words"]
    rng = np.random.default_rng(5)
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    dut.restart.value = dut.step.value = 0
    dut.i_data.value = 0
    for _ in range(3):
        await FallingEdge(dut.clk)
    dut.rst.value = 0
    for run in case["runs"]:
        vectors, p = run["vectors"], run["p"]
        want = Transpose.model(vectors, W)
        await FallingEdge(dut.clk)
        dut.restart.value = 1
        await FallingEdge(dut.clk)
        dut.restart.value = 0
        got, s, held, stepped = [], 0, None, False
        for cycle in range(20 * len(vectors) + 20):
            await FallingEdge(dut.clk)
            # the registers changed at the rising edge: the previous cycle's step's output
            out = uint(dut.o_data.value)
            if stepped:
                got.append(_unpack(out, W))
            elif held is not None:
                assert out == held, f"{run['name']}: o_data changed at idle cycle {cycle}"
            held = out
            if s == len(vectors):
                break
            stepped = rng.random() < p
            dut.step.value = int(stepped)
            dut.i_data.value = _pack(vectors[s]) if stepped else int(rng.integers(0, 1 << 16))
            s += stepped
        dut.step.value = 0
        assert s == len(vectors), f"{run['name']}: only {s} of {len(vectors)} steps"
        got = np.array(got[W:], dtype=np.int64)
        bad = np.argwhere(got != want)
        assert not bad.size, (f"{run['name']}: step {int(bad[0][0]) + W} lane {int(bad[0][1])}: "
                              f"{got[tuple(bad[0])]:#06x}, model {int(want[tuple(bad[0])]):#06x}")
    dut._log.info("%d runs of the %dx%d transpose buffer equal to the model", len(case["runs"]), W, W)
