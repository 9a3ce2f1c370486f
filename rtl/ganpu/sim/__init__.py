"""Simulation of the generated Verilog, with no source checkout needed.

``runner`` builds a design for Icarus or Verilator (digest-cached, locked against
concurrent builds, waveforms with ``GANPU_WAVES=1``) and runs a cocotb bench on it;
``cocotb_transport`` is :class:`ganpu.host.transport.Transport` on a core's ports and
``cocotb_bus`` the processor's bus transport, both in a cocotb bench. The benches the
runner finds here by module name: ``bench_tasks`` (a task list on the core, checked
against the model: ``ganpu bench core|eors``, the real-data tests) and
``bench_step_rtl`` (a training step on the processor: ``ganpu bench step``). Only the
modules that run inside the simulator import cocotb.
"""
