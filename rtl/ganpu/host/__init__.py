"""Host side of the accelerator: everything that runs on the computer driving it.

``lower`` turns layer phases into core tasks and packs descriptors; ``tasks`` turns
golden-model records into tasks (the host's tiling); ``driver`` is the typed driver of
one core (buffers by name, tasks, results checked against the model) over a
``transport`` (three async calls: write, read, run). No module here imports cocotb or
the testbench; gateware folders never import this one.
"""
