"""Simulation of the generated Verilog, with no source checkout needed.

``runner`` builds a design for Icarus or Verilator (digest-cached, locked against
concurrent builds, waveforms with ``GANPU_WAVES=1``) and runs a cocotb bench on it;
``cocotb_transport`` is :class:`ganpu.host.transport.Transport` on a core's ports in a
cocotb bench; ``bench_tasks`` is the cocotb bench that runs a task list on the core and
checks it against the model (``ganpu bench``, the real-data tests). Only the modules
that run inside the simulator import cocotb.
"""
