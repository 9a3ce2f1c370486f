"""cocotb bench for free-running pipelines packed with :class:`ganpu.arith.packed.PackedCopies`.

Parameters arrive as environment variables set by the pytest entry point:
GANPU_VECTORS (an .npz with one array per input port), GANPU_BLOCK (``module:Class`` of
the block, whose static ``model`` gives the expected outputs), GANPU_COPIES.
Inputs change every cycle; each output is read exactly ``latency`` cycles later and
compared bit for bit with the model.
"""

import importlib
import os

import cocotb
import numpy as np
from amaranth.lib import wiring
from cocotb.clock import Clock
from cocotb.triggers import FallingEdge

from packing import pack, unpack


def _load():
    mod, cls = os.environ["GANPU_BLOCK"].split(":")
    block = getattr(importlib.import_module(mod), cls)
    vec = np.load(os.environ["GANPU_VECTORS"])
    inputs = {k: vec[k] for k in vec.files}
    return block, inputs, int(os.environ["GANPU_COPIES"])


@cocotb.test()
async def pipeline_matches_model(dut):
    block, inputs, copies = _load()
    expected = block.model(**inputs)
    if not isinstance(expected, dict):
        # a single-output block: its one Out port carries the model's result
        outs = [n for n, mb in block.__annotations__.items()
                if isinstance(mb, wiring.Member) and mb.flow == wiring.Out]
        assert len(outs) == 1, f"{block.__name__} has outputs {outs}; its model must return a dict"
        expected = {outs[0]: expected}
    proto_widths = {name: len(getattr(dut, name)) // copies for name in [*inputs, *expected]}
    total = len(next(iter(inputs.values())))
    beats = -(-total // copies)
    latency = int(os.environ["GANPU_LATENCY"])
    padded = {k: np.concatenate([v, np.zeros(beats * copies - total, v.dtype)]) for k, v in inputs.items()}

    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 0
    got = {k: [] for k in expected}
    for it in range(beats + latency):
        # Outputs and inputs both change away from the rising edge: read the registered
        # outputs, then present the next operands for the coming edge.
        await FallingEdge(dut.clk)
        if it >= latency:
            for name in expected:
                got[name].extend(unpack(getattr(dut, name).value.to_unsigned(), proto_widths[name], copies))
        if it < beats:
            for name, arr in padded.items():
                getattr(dut, name).value = pack(arr[it * copies:(it + 1) * copies], proto_widths[name])
    for name, exp in expected.items():
        res = np.array(got[name][:total], dtype=np.uint64)
        exp = np.asarray(exp).astype(np.uint64)
        bad = np.nonzero(res != exp)[0]
        if len(bad):
            i = bad[0]
            ins = {k: hex(int(v[i])) for k, v in inputs.items()}
            raise AssertionError(f"{len(bad)} of {total} mismatches on {name}; first at {i}: "
                                 f"inputs {ins} got {hex(int(res[i]))} expected {hex(int(exp[i]))}")
    dut._log.info("%d vectors bit-exact", total)
